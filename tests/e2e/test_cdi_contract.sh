#!/usr/bin/env bash
# CDI's importer contract, case by case (docs/cdi.md "Termination message and exit code"),
# driven through CDI's environment variables as its importer pod is:
#   1. a checksum mismatch, over http and on a file source (IMPORTER_CHECKSUM and
#      spec.source.file.checksum), and an expected block hash that differs: exit 0 and
#      JSON whose message starts "Unable to process data: " and holds "checksum
#      mismatch" (the controller's fatal check); the image file is removed
#   2. a 404 and an untrusted TLS server: exit 1, plain "Unable to connect to http data
#      source: <cause>"
#   3. a failure after bytes were read (a qcow v1 image, which CDI refuses): exit 1,
#      plain "Unable to process data: <cause>"
#   4. bad configuration: the plain cause, exit 1; an unknown source in CDI's words; a
#      checksum for a blank image refused by name
#   5. scratch: a vhdx over http asks for scratch space without /scratch, completes with
#      it (VIMPORT_SCRATCH_DIR) and leaves the scratch volume empty; a full scratch
#      volume fails with "no space left on device"
#   6. /proxycerts (IMPORTER_PROXY_CERT_DIR): its CA is trusted without a certConfigMap
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd qemu-img qemu-io python3 sha256sum
tmp=$(e2e_tmpdir)
srv=$tmp/srv
mkdir -p "$srv"

# A small GPT disk with data, so the raw import needs no warning about its content.
qemu-img create -f raw "$srv/disk.raw" 8M >/dev/null
printf 'label: gpt\n,,L\n' | sfdisk -q "$srv/disk.raw" >/dev/null 2>&1 ||
  dd if=/dev/urandom of="$srv/disk.raw" bs=1M count=8 conv=notrunc status=none
qemu-io -f raw -c "write -P 0x5a 1M 2M" "$srv/disk.raw" >/dev/null
good=sha256:$(sha256sum "$srv/disk.raw" | cut -d' ' -f1)
bad=sha256:$(printf '%064d' 0)
qemu-img create -f vhdx "$srv/disk.vhdx" 32M >/dev/null
qemu-io -f vhdx -c "write -P 0x33 4M 3M" "$srv/disk.vhdx" >/dev/null
qemu-img convert -O raw "$srv/disk.vhdx" "$tmp/vhdx.oracle"
qemu-img create -f qcow "$srv/disk.qcow" 8M >/dev/null
nginx_start "$srv"

# env_run VAR=VALUE...: vimport import under CDI's environment contract (env -i: only what
# the pod would have), the message in $E2E_TMP/termination-log; sets IMPORT_RC, IMPORT_MSG.
env_run() {
  rm -f "$E2E_TMP/termination-log"
  set +e
  env -i PATH="$PATH" VIMPORT_METRICS_PORT=0 VIMPORT_TARGET_PATH="$tmp/disk.img" \
    VIMPORT_TARGET_BLOCK_DEVICE="$tmp/no-block-device" VIMPORT_SCRATCH_DIR="$tmp/not-mounted" \
    VIMPORT_TERMINATION_MESSAGE_PATH="$E2E_TMP/termination-log" "$@" \
    "$VIMPORT" import 2>"$E2E_TMP/import.stderr"
  IMPORT_RC=$?
  set -e
  IMPORT_MSG=$(cat "$E2E_TMP/termination-log" 2>/dev/null || echo "(no termination message)")
}

expect_removed() {
  [ ! -e "$tmp/disk.img" ] || fail "$1: the image file is left after a checksum mismatch"
}

# ---- 1. verdicts: JSON, exit 0, fatal phrase, no image left ----------------------------------
env_run IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$NGINX_URL/disk.raw" IMPORTER_CHECKSUM="$bad"
expect_checksum_verdict "http, wrong sha256"
import_message | grep -qF "expected $bad, calculated $good" || fail "http mismatch: $IMPORT_MSG"
assert_eq checksum "$(import_json '["vimport"]["error"]')" "http mismatch: error kind"
expect_removed "http mismatch"

env_run IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$srv/disk.raw" IMPORTER_CHECKSUM="$bad"
expect_checksum_verdict "file source, wrong sha256 (IMPORTER_CHECKSUM)"
expect_removed "file mismatch"

cat >"$tmp/file.yaml" <<EOF
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: contract}
spec:
  source:
    file: {path: "$srv/disk.raw", checksum: "$bad"}
vimport:
  terminationMessagePath: $E2E_TMP/termination-log
  target: {path: $tmp/disk.img}
EOF
import_run "$tmp/file.yaml"
expect_checksum_verdict "file source, wrong sha256 (spec.source.file.checksum)"
expect_removed "file mismatch from a spec"

env_run IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$srv/disk.raw" IMPORTER_CHECKSUM="$good"
[ "$IMPORT_RC" -eq 0 ] || fail "file source, right sha256: exit $IMPORT_RC: $IMPORT_MSG"
assert_eq "Import Complete" "$(import_message)" "file source, right sha256"
import_json '["vimport"]["verified"]' | grep -q checksum || fail "file checksum not verified: $IMPORT_MSG"
cmp -n $((8 << 20)) "$tmp/disk.img" "$srv/disk.raw" || fail "file import differs from the image"
hash=$(import_json '["vimport"]["blockHash"]')

other=sha256:$(printf '%064d' 1)
env_run IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$srv/disk.raw" VIMPORT_EXPECTED_BLOCK_HASH="$other"
expect_checksum_verdict "expected block hash differs"
import_message | grep -q "block hash" || fail "block hash verdict does not name the block hash: $IMPORT_MSG"
import_message | grep -qF "${hash#sha256:}" || fail "block hash verdict lacks the calculated hash: $IMPORT_MSG"
assert_eq verify "$(import_json '["vimport"]["error"]')" "block hash verdict: error kind"
expect_removed "block hash verdict"

# ---- 2. the source cannot be reached: "Unable to connect to http data source" ---------------
env_run IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$NGINX_URL/missing.raw"
expect_text_failure "404" "^Unable to connect to http data source: .*404"
env_run IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$NGINX_TLS_URL/disk.raw"
expect_text_failure "untrusted TLS" "^Unable to connect to http data source: .*not trusted"
env_run IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$srv/missing.raw"
expect_text_failure "missing file" "^Unable to connect to file data source: .*missing.raw"

# ---- 3. a failure after bytes were read: "Unable to process data" ------------------------------
env_run IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$NGINX_URL/disk.qcow"
expect_text_failure "qcow v1" "^Unable to process data: Invalid format qcow for image "

# ---- 4. configuration: the plain cause ----------------------------------------------------------
env_run IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$NGINX_URL/disk.raw" IMPORTER_CHECKSUM=sha256:12
expect_text_failure "malformed checksum" "^environment: IMPORTER_CHECKSUM: checksum sha256: expected 64"
env_run IMPORTER_SOURCE=ftp IMPORTER_ENDPOINT="$NGINX_URL/disk.raw"
expect_text_failure "unknown source" "^Unknown data source: ftp"
env_run IMPORTER_SOURCE=none IMPORTER_IMAGE_SIZE=8Mi IMPORTER_CHECKSUM="$good"
expect_text_failure "checksum for a blank image" "^environment: IMPORTER_CHECKSUM: a blank image"

# ---- 5. scratch space ----------------------------------------------------------------------------
env_run IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$NGINX_URL/disk.vhdx"
[ "$IMPORT_RC" -eq 0 ] || fail "vhdx without scratch: exit $IMPORT_RC: $IMPORT_MSG"
assert_eq True "$(import_json '["scratchSpaceRequired"]')" "vhdx without scratch: scratchSpaceRequired"
mkdir "$tmp/scratch"
env_run IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$NGINX_URL/disk.vhdx" VIMPORT_SCRATCH_DIR="$tmp/scratch"
[ "$IMPORT_RC" -eq 0 ] || fail "vhdx with scratch: exit $IMPORT_RC: $IMPORT_MSG"
assert_eq "Import Complete" "$(import_message)" "vhdx with scratch"
assert_eq False "$(import_json '["scratchSpaceRequired"]')" "vhdx with scratch: scratchSpaceRequired"
cmp -n $((32 << 20)) "$tmp/disk.img" "$tmp/vhdx.oracle" || fail "vhdx with scratch differs from qemu-img's raw"
[ -z "$(ls -A "$tmp/scratch")" ] || fail "the scratch volume is not empty after the import: $(ls -A "$tmp/scratch")"
mkdir "$tmp/small-scratch"
if mount -t tmpfs -o size=1M tmpfs "$tmp/small-scratch" 2>/dev/null; then
  e2e_on_exit "umount '$tmp/small-scratch'"
  env_run IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$NGINX_URL/disk.vhdx" VIMPORT_SCRATCH_DIR="$tmp/small-scratch"
  expect_text_failure "full scratch" "^Unable to process data: .*no space left on device"
  [ -z "$(ls -A "$tmp/small-scratch")" ] || fail "a full scratch volume keeps the partial copy"
else
  echo "note: cannot mount a tmpfs here; the full-scratch case did not run" >&2
fi

# ---- 6. /proxycerts -------------------------------------------------------------------------------
mkdir "$tmp/proxycerts"
cp "$TEST_CA" "$tmp/proxycerts/ca-bundle.crt"
env_run IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$NGINX_TLS_URL/disk.raw" \
  IMPORTER_PROXY_CERT_DIR="$tmp/proxycerts"
[ "$IMPORT_RC" -eq 0 ] || fail "https with the CA in the proxy CA directory: exit $IMPORT_RC: $IMPORT_MSG"
assert_eq "Import Complete" "$(import_message)" "https trusted through the proxy CA directory"
pass "verdicts, connect and process failures, configuration, scratch and /proxycerts as CDI's importer"
