#!/usr/bin/env bash
# vimport import end to end, raw images, against real nginx on 127.0.0.1 (HTTP and TLS
# with a test CA) and the fault server: raw, raw.gz, raw.xz, raw.zst; checksum right and
# wrong; an HTML page served with 200; file and loop-device targets; a reset mid-body;
# the CDI environment contract. Each import's target is compared with cmp and its block
# hash with `vimport sum` of the source image.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
tmp=$(e2e_tmpdir)
srv=$tmp/srv
mkdir -p "$srv"

"$VIMPORT_TOP/hack/make-test-image.sh" "$srv/disk.raw" 48 /usr/share/doc/bash
gzip -k -c "$srv/disk.raw" >"$srv/disk.raw.gz"
xz -k -T1 -c "$srv/disk.raw" >"$srv/disk.raw.xz"
zstd -q -c "$srv/disk.raw" >"$srv/disk.raw.zst"
printf '<!DOCTYPE html><html><body><h1>Login</h1></body></html>\n' >"$srv/login.html"
image_size=$(stat -c %s "$srv/disk.raw")
blockhash=sha256:$("$VIMPORT" sum "$srv/disk.raw" | cut -d' ' -f1)

nginx_start "$srv"

# write_spec FILE URL CHECKSUM TARGET [YAML lines appended under vimport:]
# TARGET is a file path, or block:DEVICE for a Block volume.
write_spec() {
  local file=$1 url=$2 checksum=$3 target=$4
  shift 4
  {
    echo "apiVersion: cdi.kubevirt.io/v1beta1"
    echo "kind: DataVolume"
    echo "metadata: {name: e2e}"
    echo "spec:"
    case $target in block:*) printf '  storage:\n    volumeMode: Block\n' ;; esac
    echo "  source:"
    echo "    http:"
    echo "      url: \"$url\""
    [ -z "$checksum" ] || echo "      checksum: \"$checksum\""
    echo "vimport:"
    echo "  terminationMessagePath: $tmp/termination-log"
    case $target in
      block:*) echo "  target: {blockDevice: ${target#block:}}" ;;
      *) echo "  target: {path: $target}" ;;
    esac
    for line in "$@"; do echo "  $line"; done
  } >"$file"
}

# import SPEC: run vimport import, keep its exit code in $rc and message in $msg
import() {
  rm -f "$tmp/termination-log"
  set +e
  "$VIMPORT" import --spec "$1" 2>"$tmp/stderr"
  rc=$?
  set -e
  msg=$(cat "$tmp/termination-log" 2>/dev/null || echo "(no termination message)")
}

json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$tmp/termination-log" "$1"; }

expect_complete() {
  local what=$1 target=$2
  [ "$rc" -eq 0 ] || fail "$what: exit $rc: $msg; stderr: $(tail -3 "$tmp/stderr")"
  assert_eq "Import Complete" "$(json '["message"]')" "$what: message"
  # the image's hash; blockHash covers the volume when CDI's resize grew it past the image
  assert_eq "$blockhash" "$(json '["vimport"].get("imageBlockHash", d["vimport"]["blockHash"])')" \
    "$what: block hash vs vimport sum"
  # on a file, blockHash is the whole file's (a device past the image is not hashed)
  [ -b "$target" ] || assert_eq "sha256:$("$VIMPORT" sum "$target" | cut -d' ' -f1)" \
    "$(json '["vimport"]["blockHash"]')" "$what: blockHash is the target's"
  cmp -n "$image_size" "$target" "$srv/disk.raw" || fail "$what: target differs from the source image"
}

# 1. every wrapper over plain HTTP, with the right checksum and the expected block hash
for f in disk.raw disk.raw.gz disk.raw.xz disk.raw.zst; do
  sum=sha256:$(sha256sum "$srv/$f" | cut -d' ' -f1)
  write_spec "$tmp/spec.yaml" "$NGINX_URL/$f" "$sum" "$tmp/$f.target" "expectedBlockHash: \"$blockhash\""
  import "$tmp/spec.yaml"
  expect_complete "$f" "$tmp/$f.target"
  assert_eq "$sum" "$(json '["vimport"]["sourceDigest"]')" "$f: source digest"
  verified=$(json '["vimport"]["verified"]')
  assert_eq "['checksum', 'blockhash-readback', 'expected-blockhash']" "$verified" "$f: verified stages"
  rm -f "$tmp/$f.target"
done

# 2. a wrong checksum fails with CDI's wording, exit 0 (the controller marks it failed)
bad=sha256:$(printf '%064d' 0)
write_spec "$tmp/spec.yaml" "$NGINX_URL/disk.raw.xz" "$bad" "$tmp/bad.target"
import "$tmp/spec.yaml"
assert_eq 0 "$rc" "exit code of a checksum mismatch"
real=sha256:$(sha256sum "$srv/disk.raw.xz" | cut -d' ' -f1)
assert_eq "Unable to process data: checksum mismatch: expected $bad, calculated $real" \
  "$(json '["message"]')" "mismatch message"
[ ! -e "$tmp/bad.target" ] || fail "the image file is left after a checksum mismatch (CDI removes it)"

# md5 and sha512 checksums work the same way
for alg in md5 sha512; do
  sum=$alg:$("${alg}sum" "$srv/disk.raw.gz" | cut -d' ' -f1)
  write_spec "$tmp/spec.yaml" "$NGINX_URL/disk.raw.gz" "$sum" "$tmp/alg.target"
  import "$tmp/spec.yaml"
  expect_complete "$alg checksum" "$tmp/alg.target"
  rm -f "$tmp/alg.target"
done

# 3. an HTML page served with 200 is refused before anything is written
write_spec "$tmp/spec.yaml" "$NGINX_URL/login.html" "" "$tmp/html.target"
import "$tmp/spec.yaml"
assert_eq 1 "$rc" "exit code for an HTML page"
echo "$msg" | grep -q "HTML page, not a disk image" || fail "HTML page not named: $msg"
[ ! -s "$tmp/html.target" ] || fail "the HTML page was written to the target"

# 3b. format policy: vimport.allowedFormats refuses other formats before any write;
#     a raw image with no partition table or filesystem imports with a warning
write_spec "$tmp/spec.yaml" "$NGINX_URL/disk.raw" "" "$tmp/policy.target" "allowedFormats: [qcow2]"
import "$tmp/spec.yaml"
assert_eq 1 "$rc" "exit code for a format the spec does not allow"
echo "$msg" | grep -q "allowedFormats does not allow it" || fail "format policy not named: $msg"
head -c 3145728 /dev/urandom >"$srv/noise.raw"
write_spec "$tmp/spec.yaml" "$NGINX_URL/noise.raw" "" "$tmp/noise.target"
import "$tmp/spec.yaml"
assert_eq 0 "$rc" "exit code for a raw image without a partition table"
json '["vimport"]["warning"]' | grep -q "neither a partition table nor a known filesystem" ||
  fail "no warning for a raw image without a partition table: $msg"
write_spec "$tmp/spec.yaml" "$NGINX_URL/noise.raw" "" "$tmp/noise.target" "requireKnownContent: true"
import "$tmp/spec.yaml"
assert_eq 1 "$rc" "exit code for unknown content with requireKnownContent"
echo "$msg" | grep -q "requireKnownContent is set" || fail "requireKnownContent not named: $msg"
rm -f "$tmp/noise.target" "$tmp/policy.target"

# 4. TLS with the test CA mounted like a certConfigMap; refused without it
write_spec "$tmp/spec.yaml" "$NGINX_TLS_URL/disk.raw.zst" "" "$tmp/tls.target" "mounts: {certs: $TEST_CA_DIR}"
sed -i 's|^      url:.*|&\n      certConfigMap: test-ca|' "$tmp/spec.yaml"
import "$tmp/spec.yaml"
expect_complete "https with the test CA" "$tmp/tls.target"
write_spec "$tmp/spec.yaml" "$NGINX_TLS_URL/disk.raw.zst" "" "$tmp/tls2.target"
import "$tmp/spec.yaml"
assert_eq 1 "$rc" "exit code for an unknown CA"
echo "$msg" | grep -qi "certificate" || fail "an unknown CA was not refused clearly: $msg"

# 5. a loop device target (Block volume mode)
truncate -s 64M "$tmp/loop.backing"
loop=$(losetup -f --show "$tmp/loop.backing") || skip "losetup cannot attach a loop device"
e2e_on_exit losetup -d "$loop"
write_spec "$tmp/spec.yaml" "$NGINX_URL/disk.raw.gz" "" "block:$loop"
import "$tmp/spec.yaml"
expect_complete "loop device target" "$loop"

# 6. the connection is reset in the middle of the body: Range resume, right checksum
faultserver_start "$srv"
sum=sha256:$(sha256sum "$srv/disk.raw" | cut -d' ' -f1)
write_spec "$tmp/spec.yaml" "$FAULT_URL/disk.raw?reset=$((image_size / 2 + 12345))" "$sum" "$tmp/reset.target"
import "$tmp/spec.yaml"
expect_complete "reset mid-body" "$tmp/reset.target"
grep -q '"range": "bytes=' "$FAULT_LOG" || fail "no Range request after the reset"

# 7. the CDI environment contract drives the same import with no spec file
rm -f "$tmp/termination-log"
set +e
env IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$NGINX_URL/disk.raw.xz" \
  IMPORTER_CHECKSUM="sha256:$(sha256sum "$srv/disk.raw.xz" | cut -d' ' -f1)" \
  IMPORTER_IMAGE_SIZE=64Mi OWNER_UID=6a5e0c3e-1f0b-4b9c-9d4e-2a7c1b3e5f60 VIMPORT_TARGET_PATH="$tmp/env.target" \
  VIMPORT_TARGET_BLOCK_DEVICE="$tmp/no-such-block-device" \
  VIMPORT_TERMINATION_MESSAGE_PATH="$tmp/termination-log" "$VIMPORT" import 2>"$tmp/stderr"
rc=$?
set -e
msg=$(cat "$tmp/termination-log")
expect_complete "CDI env contract" "$tmp/env.target"
# IMPORTER_IMAGE_SIZE is the requested size: the file target ends there, past the image
assert_eq $((64 << 20)) "$(stat -c %s "$tmp/env.target")" "size of the target (IMPORTER_IMAGE_SIZE)"
# 8. a human progress line only on a terminal (script(1) gives the import a pty)
write_spec "$tmp/spec.yaml" "$NGINX_URL/disk.raw" "" "$tmp/tty.target"
script -qec "'$VIMPORT' import --spec '$tmp/spec.yaml'" /dev/null >"$tmp/tty.out" 2>&1 ||
  fail "import on a terminal failed: $(tail -3 "$tmp/tty.out")"
tr '\r' '\n' <"$tmp/tty.out" | sed 's/\x1b\[K//g' | grep -qaE "^vimport: importing: [0-9.]+ [KMG]?i?B of [0-9.]+ MiB \([0-9.]+%\)" ||
  fail "no progress line on a terminal: $(head -c 300 "$tmp/tty.out")"
import "$tmp/spec.yaml"
grep -qE "vimport: (importing|verifying):" "$tmp/stderr" && fail "a progress line was written to a non-terminal"
pass
