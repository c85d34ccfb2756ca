#!/usr/bin/env bash
# The gcs source: every format from a Cloud Storage bucket, with CDI's environment
# (IMPORTER_SOURCE=gcs, IMPORTER_ENDPOINT=https://HOST/BUCKET/OBJECT,
# GOOGLE_APPLICATION_CREDENTIALS) and with a spec (spec.source.gcs).
#
# The server is a STAND-IN (tests/e2e/gcs_standin.py): no GCS server can be installed
# here (fake-gcs-server is in neither Debian nor npm; firebase-tools' storage emulator
# needs Java 21, which Debian 12 lacks). It serves the JSON API's object metadata and
# alt=media downloads as Google documents them (generation, crc32c, md5Hash, Range) and
# checks bearer tokens. Its token endpoint is a stand-in for oauth2.googleapis.com for
# the same reason (Google's is not reachable from a test): it verifies each JWT's RS256
# signature with the service account's public key, its issuer, audience, scope and
# lifetime, so a client that signs wrongly is refused by a real signature check.
#
#   1. raw, qcow2, compressed qcow2, streamOptimized vmdk, xz through the store with a
#      service-account key and the test CA: each target equals `qemu-img convert -O raw`,
#      read back, and the report names the generation, crc32c and md5Hash it checked
#   2. a spec: spec.source.gcs with secretRef (credentials.json) and certConfigMap
#   3. anonymous: a public bucket works; a private one fails, saying what to give
#   4. a key the issuer does not know: refused by the issuer, a clear message
#   5. the store's crc32c or md5Hash differs from the bytes: checksum mismatch verdict;
#      an object without md5Hash is checked by crc32c alone
#   6. the private key is in no output, log or message
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gcs_lib.sh"
require_cmd qemu-img xz sgdisk mkfs.ext4 cmp
tmp=$(e2e_tmpdir)
root=$tmp/store
mkdir -p "$root/private/images" "$root/public"

# ---- the images and their oracles ----
"$VIMPORT_TOP/hack/make-test-image.sh" "$tmp/base.img" 24 2>/dev/null
img=$root/private/images
cp "$tmp/base.img" "$img/disk.raw"
qemu-img convert -f raw -O qcow2 "$tmp/base.img" "$img/disk.qcow2"
qemu-img convert -f raw -O qcow2 -c "$tmp/base.img" "$img/disk-compressed.qcow2"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$tmp/base.img" "$img/disk.vmdk"
xz -T1 -1 -c "$tmp/base.img" >"$img/disk.img.xz"
cp "$img/disk.qcow2" "$root/public/disk.qcow2"
for f in disk.raw:raw disk.qcow2:qcow2 disk-compressed.qcow2:qcow2 disk.vmdk:vmdk; do
  qemu-img convert -f "${f#*:}" -O raw "$img/${f%%:*}" "$tmp/${f%%:*}.oracle"
done
cp "$tmp/base.img" "$tmp/disk.img.xz.oracle"

gcs_start "$root" --public-bucket public
ca=(IMPORTER_CERT_DIR="$GCS_CA_DIR")
key=(GOOGLE_APPLICATION_CREDENTIALS="$GCS_SECRET/credentials.json")

# ---- 1. every format, CDI's environment ----
for name in disk.raw disk.qcow2 disk-compressed.qcow2 disk.vmdk disk.img.xz; do
  rm -f "$tmp/disk.img"
  env_import IMPORTER_SOURCE=gcs IMPORTER_ENDPOINT="$GCS_HOST/private/images/$name" "${ca[@]}" "${key[@]}"
  [ "$IMPORT_RC" -eq 0 ] || fail "$name: exit $IMPORT_RC: $IMPORT_MSG"
  assert_eq "Import Complete" "$(import_json '["message"]')" "$name"
  cmp "$tmp/disk.img" "$tmp/$name.oracle" || fail "$name: the target differs from qemu-img's raw"
  gen=$(python3 -c 'import os,sys; print(os.stat(sys.argv[1]).st_mtime_ns // 1000)' "$img/$name")
  checked=$(import_json '["vimport"]["sourceChecked"]')
  case $checked in
    *"/private/images/$name generation $gen: "*crc32c*md5Hash*) ;;
    *) fail "$name: the report does not say what was checked: $checked" ;;
  esac
  verified=$(import_json '["vimport"]["verified"]')
  case $verified in *object-checksum*blockhash-readback* | *blockhash-readback*object-checksum*) ;;
    *) fail "$name: verified is $verified" ;; esac
  grep -q "storage/v1/b/private/o/images%2F$name" "$GCS_LOG" ||
    fail "$name: not fetched through the JSON API with the object name escaped"
done
media=$(grep -c '"query": "alt=media&generation=' "$GCS_LOG")
[ "$media" -ge 5 ] || fail "only $media media downloads pinned to a generation"
# one token for all of them? no: one per import (a new process); each from the issuer
tokens=$(grep -c '"verdict": "ok"' "$GCS_LOG")
[ "$tokens" -ge 5 ] || fail "$tokens tokens issued for 5 authenticated imports"
grep '"method": "GET"' "$GCS_LOG" | grep -q '"auth": "none"' && fail "a request to the private bucket went without a token"

# ---- 2. a spec: secretRef and certConfigMap ----
cat >"$tmp/dv.yaml" <<YAML
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: gcs-e2e}
spec:
  source:
    gcs:
      url: "$GCS_HOST/private/images/disk-compressed.qcow2"
      secretRef: gcs-key
      certConfigMap: gcs-ca
vimport:
  terminationMessagePath: $E2E_TMP/termination-log
  target: {path: $tmp/spec.img}
  mounts: {secret: $GCS_SECRET, certs: $GCS_CA_DIR}
YAML
import_run "$tmp/dv.yaml"
[ "$IMPORT_RC" -eq 0 ] || fail "spec.source.gcs: exit $IMPORT_RC: $IMPORT_MSG"
cmp "$tmp/spec.img" "$tmp/disk-compressed.qcow2.oracle" || fail "spec.source.gcs: the target differs"
cp "$E2E_TMP/import.stderr" "$tmp/spec.stderr"

# ---- 3. anonymous ----
env_import IMPORTER_SOURCE=gcs IMPORTER_ENDPOINT="$GCS_HOST/public/disk.qcow2" "${ca[@]}"
[ "$IMPORT_RC" -eq 0 ] || fail "anonymous, public bucket: exit $IMPORT_RC: $IMPORT_MSG"
cmp "$tmp/disk.img" "$tmp/disk.qcow2.oracle" || fail "anonymous: the target differs"
tail -n 2 "$GCS_LOG" | grep -q '"auth": "none"' || fail "the anonymous import sent a token"
env_import IMPORTER_SOURCE=gcs IMPORTER_ENDPOINT="$GCS_HOST/private/images/disk.raw" "${ca[@]}"
[ "$IMPORT_RC" -ne 0 ] || fail "anonymous read of a private bucket succeeded"
expect_text_failure "anonymous, private bucket" '^Unable to connect to gcs data source: .*anonymously.*secretRef.*HTTP 401'

# ---- 4. a key the issuer does not know ----
env_import IMPORTER_SOURCE=gcs IMPORTER_ENDPOINT="$GCS_HOST/private/images/disk.raw" "${ca[@]}" \
  GOOGLE_APPLICATION_CREDENTIALS="$GCS_WRONG/credentials.json"
[ "$IMPORT_RC" -ne 0 ] || fail "an unknown key was accepted"
expect_text_failure "unknown key" '^Unable to connect to gcs data source: .*token endpoint.*HTTP 400.*invalid_grant: Invalid JWT Signature'
tail -n 3 "$GCS_LOG" | grep -q '"verdict": "bad signature"' || fail "the issuer did not refuse the signature"
cp "$E2E_TMP/import.stderr" "$tmp/wrong.stderr"
env_import IMPORTER_SOURCE=gcs IMPORTER_ENDPOINT="$GCS_HOST/private/images/disk.raw" "${ca[@]}" \
  GOOGLE_APPLICATION_CREDENTIALS="$tmp/missing.json"
[ "$IMPORT_RC" -ne 0 ] || fail "a missing key file was accepted"
grep -q "GOOGLE_APPLICATION_CREDENTIALS: cannot read" "$E2E_TMP/import.stderr" "$E2E_TMP/termination-log" ||
  fail "a missing key file: $IMPORT_MSG"

# ---- 5. the store's checksums do not match the bytes ----
gcs_control private images/disk.qcow2 '{"crc32c": "AAAAAA=="}'
env_import IMPORTER_SOURCE=gcs IMPORTER_ENDPOINT="$GCS_HOST/private/images/disk.qcow2" "${ca[@]}" "${key[@]}"
expect_checksum_verdict "a wrong crc32c"
import_message | grep -q "crc32c of the bytes read is .*its metadata says 00000000" ||
  fail "a wrong crc32c: $(import_message)"
gcs_control private images/disk.qcow2 '{"md5Hash": "AAAAAAAAAAAAAAAAAAAAAA=="}'
env_import IMPORTER_SOURCE=gcs IMPORTER_ENDPOINT="$GCS_HOST/private/images/disk.qcow2" "${ca[@]}" "${key[@]}"
expect_checksum_verdict "a wrong md5Hash"
import_message | grep -q "md5 of the bytes read differs from its md5Hash" || fail "a wrong md5: $(import_message)"
gcs_control private images/disk.qcow2 '{"drop": ["md5Hash"]}'
env_import IMPORTER_SOURCE=gcs IMPORTER_ENDPOINT="$GCS_HOST/private/images/disk.qcow2" "${ca[@]}" "${key[@]}"
[ "$IMPORT_RC" -eq 0 ] || fail "no md5Hash (a composite object): exit $IMPORT_RC: $IMPORT_MSG"
case $(import_json '["vimport"]["sourceChecked"]') in *crc32c*md5Hash*) fail "md5Hash reported but absent" ;; *crc32c*) ;;
  *) fail "no md5Hash: sourceChecked is $(import_json '["vimport"]["sourceChecked"]')" ;; esac
gcs_control private images/disk.qcow2 ''

# ---- 6. the key stays secret ----
for f in "$tmp"/*.stderr "$E2E_TMP"/import.stderr "$E2E_TMP"/termination-log "$GCS_LOG"; do
  ! grep -qF -- "$GCS_KEY_MARK" "$f" || fail "the private key is in $f"
  ! grep -q "PRIVATE KEY" "$f" || fail "a private key is in $f"
  ! grep -q "ya29\.standin" "$f" || fail "an access token is in $f"
done
pass "5 formats through the GCS stand-in with a service-account token, spec, anonymous, refusals"
