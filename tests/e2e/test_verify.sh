#!/usr/bin/env bash
# vimport verify on a real loop device: a GPT+ext4 image (hack/make-test-image.sh) on a
# loop device, `vimport sum --manifest` of the device, a spec with its expectedBlockHash;
# verify passes (exit 0, "Verification Complete"). Then one byte is corrupted through the
# loop device (dd conv=notrunc, blockdev --flushbufs): verify fails (exit 1) and its
# termination message names the expected and calculated hashes and, with the manifest,
# the 64 KiB block range that holds the byte. Also: a Filesystem volume (a file) with a
# requested size, a spec without expectedBlockHash, a manifest of another block size.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "loop devices need root"
[ -w /dev/loop-control ] || skip "no /dev/loop-control"
require_cmd losetup blockdev dd sgdisk mkfs.ext4 python3
tmp=$(e2e_tmpdir)

"$VIMPORT_TOP/hack/make-test-image.sh" "$tmp/disk.img" 32 /usr/share/common-licenses
loop=$(losetup -f --show "$tmp/disk.img")
e2e_on_exit "losetup -d $loop"

"$VIMPORT" sum --manifest "$tmp/disk.manifest" "$loop" >"$tmp/sum"
hex=$(cut -d' ' -f1 "$tmp/sum")
assert_eq "$hex" "$("$VIMPORT" sum "$tmp/disk.img" | cut -d' ' -f1)" "sum of device vs file"
head -1 "$tmp/disk.manifest" | grep -qx "vimport-manifest 1" || fail "manifest header"
grep -qx "blockhash $hex" "$tmp/disk.manifest" || fail "manifest trailer"
grep -qx "length 33554432" "$tmp/disk.manifest" || fail "manifest length"
cp --sparse=always "$tmp/disk.img" "$tmp/vol.img" # before the corruption below

write_spec() { # write_spec FILE TARGET-LINES...
  local out=$1
  shift
  {
    printf 'apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata:\n  name: verify-test\n'
    printf 'spec:\n  source:\n    blank: {}\n'
    printf '%s\n' "$@"
  } >"$out"
}
message() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["message"])' "$1"; }

write_spec "$tmp/block.yaml" "  storage:" "    volumeMode: Block" "vimport:" \
  "  expectedBlockHash: \"sha256:$hex\"" "  target:" "    blockDevice: $loop" \
  "  terminationMessagePath: $tmp/term-block"

# ---- the untouched volume passes ----------------------------------------------------
"$VIMPORT" verify --spec "$tmp/block.yaml" --manifest "$tmp/disk.manifest" 2>"$tmp/log" ||
  fail "verify of the untouched device failed: $(cat "$tmp/log") $(cat "$tmp/term-block")"
assert_eq "Verification Complete" "$(message "$tmp/term-block")" "termination message"
grep -q "\"blockHash\":\"sha256:$hex\"" "$tmp/term-block" || fail "block hash in $(cat "$tmp/term-block")"
grep -q "expected-blockhash" "$tmp/term-block" || fail "verified list in $(cat "$tmp/term-block")"

# ---- one byte corrupted through the loop device ------------------------------------
off=$((20 * 1048576 + 12345)) # inside 64 KiB block 320: bytes 20971520-21037055
old=$(dd if="$loop" bs=1 skip=$off count=1 status=none | od -An -tu1 | tr -d ' ')
printf "\\$(printf '%03o' $(((old + 1) % 256)))" |
  dd of="$loop" bs=1 seek=$off count=1 conv=notrunc status=none
blockdev --flushbufs "$loop"
rc=0
"$VIMPORT" verify --spec "$tmp/block.yaml" --manifest "$tmp/disk.manifest" 2>"$tmp/log" || rc=$?
assert_eq 1 "$rc" "verify of the corrupted device: exit status"
msg=$(message "$tmp/term-block")
echo "corrupted: $msg"
case $msg in *"expected sha256:$hex"*) ;; *) fail "message does not name the expected hash: $msg" ;; esac
calc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vimport"]["blockHash"])' "$tmp/term-block")
[ "$calc" != "sha256:$hex" ] || fail "calculated hash equals the expected one"
case $msg in *"is $calc"*) ;; *) fail "message does not name the calculated hash $calc: $msg" ;; esac
case $msg in *"bytes 20971520-21037055"*) ;; *) fail "message does not name the corrupted range: $msg" ;; esac
case $msg in *"more ranges"*|*", bytes "*) fail "more than the corrupted range named: $msg" ;; esac

# without the manifest the mismatch is still reported, without ranges
rc=0
"$VIMPORT" verify --spec "$tmp/block.yaml" 2>/dev/null || rc=$?
assert_eq 1 "$rc" "verify without manifest: exit status"
case $(message "$tmp/term-block") in *"expected sha256:$hex"*) ;; *) fail "no-manifest message" ;; esac

# ---- a Filesystem volume: a file, hashed over blockHashLength -------------------------
truncate -s 40M "$tmp/vol.img" # the file is larger than the image: blockHashLength bounds it
write_spec "$tmp/file.yaml" "  storage:" "    volumeMode: Filesystem" "    resources:" \
  "      requests:" "        storage: 32Mi" "vimport:" "  expectedBlockHash: \"sha256:$hex\"" \
  "  blockHashLength: 33554432" \
  "  target:" "    path: $tmp/vol.img" "  terminationMessagePath: $tmp/term-file"
"$VIMPORT" verify --spec "$tmp/file.yaml" 2>"$tmp/log" || fail "file verify: $(cat "$tmp/log")"
assert_eq "Verification Complete" "$(message "$tmp/term-file")" "file volume"
grep -q '"blockHashLength":33554432' "$tmp/term-file" || fail "blockHashLength in $(cat "$tmp/term-file")"
# the requested size plays no part: without blockHashLength the whole 40 MiB file is hashed
write_spec "$tmp/file-all.yaml" "  storage:" "    volumeMode: Filesystem" "    resources:" \
  "      requests:" "        storage: 32Mi" "vimport:" "  expectedBlockHash: \"sha256:$hex\"" \
  "  target:" "    path: $tmp/vol.img" "  terminationMessagePath: $tmp/term-all"
rc=0
"$VIMPORT" verify --spec "$tmp/file-all.yaml" 2>/dev/null || rc=$?
assert_eq 1 "$rc" "whole file against the 32 MiB hash"
grep -q '"blockHashLength":41943040' "$tmp/term-all" || fail "whole-file length in $(cat "$tmp/term-all")"

# ---- errors that say what to do ----------------------------------------------------
write_spec "$tmp/nohash.yaml" "vimport:" "  target:" "    path: $tmp/vol.img" \
  "  terminationMessagePath: $tmp/term-nohash"
rc=0
"$VIMPORT" verify --spec "$tmp/nohash.yaml" 2>/dev/null || rc=$?
assert_eq 1 "$rc" "no expectedBlockHash: exit status"
case $(message "$tmp/term-nohash") in *expectedBlockHash*) ;; *) fail "no-hash message" ;; esac

"$VIMPORT" sum --block-size 4096 --manifest "$tmp/4k.manifest" "$tmp/disk.img" >/dev/null
rc=0
"$VIMPORT" verify --spec "$tmp/file.yaml" --manifest "$tmp/4k.manifest" 2>/dev/null || rc=$?
assert_eq 1 "$rc" "manifest of another block size: exit status"
case $(message "$tmp/term-file") in *"block size 4096"*) ;; *) fail "block size message: $(message "$tmp/term-file")" ;; esac

rc=0
"$VIMPORT" verify 2>/dev/null || rc=$?
assert_eq 2 "$rc" "no --spec"
pass "verify passes an untouched volume and names the corrupted range"
