#!/usr/bin/env bash
# The size of the disk, preallocation and the reported block hash, as CDI v1.66 sizes them
# (kubevirt/containerized-data-importer), under CDI's environment contract:
#   available = min(free bytes of /data's filesystem, requested)   data-processor.go calculateTargetSize
#   fits when virtual size V <= available (no overhead)              image/qemu.go Validate
#   usable    = RoundDown(ceil(available / (1 + overhead)), 1 MiB)   util/util.go GetUsableSpace
#   grown     = max(V, min(usable, requested))                       data-processor.go resize, ResizeImage
#   blank FS  = usable bytes; blank Block: untouched, or zeros with preallocation
#                                                                    cdi-importer/importer.go createBlankImage
# Filesystem volumes are a loop-mounted ext4 (mkfs.ext4 -F -m0), Block volumes a loop device.
# Then the documented verify flow: import, take blockHash and blockHashLength from the
# termination message, `vimport verify` passes; flip a byte of the image, verify fails and,
# with a manifest, names the block.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "loop devices and mounts need root"
[ -w /dev/loop-control ] || skip "no /dev/loop-control"
require_cmd losetup mount umount mkfs.ext4 qemu-img python3 cmp stat du dd

tmp=$(e2e_tmpdir)
MiB=1048576
OVERHEAD=0.055

# ---- CDI's formulas, computed here (float64 like Go) ----------------------------------
usable() { # GetUsableSpace(overhead, available)
  python3 -c 'import math,sys; a=int(sys.argv[1]); o=float(sys.argv[2]); print(int(math.ceil(a/(1+o)))//1048576*1048576)' "$1" "$2"
}
grown() { # ResizeImage: max(V, min(usable, requested))
  python3 -c 'import sys; v,u,r=map(int,sys.argv[1:]); m=min(u,r); print(max(v,m))' "$1" "$2" "$3"
}
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$1" "$2"; }

# ---- volumes --------------------------------------------------------------------------
new_fs() { # new_fs NAME SIZE_MIB: a fresh ext4 mounted at $tmp/NAME
  local dir=$tmp/$1
  mkdir -p "$dir"
  truncate -s "$2M" "$tmp/$1.fs"
  mkfs.ext4 -q -F -m0 "$tmp/$1.fs"
  mount -o loop "$tmp/$1.fs" "$dir"
  e2e_on_exit "umount '$dir'"
}
# new_dev SIZE_MIB PATTERN_BYTE VAR: a loop device full of PATTERN, its path in VAR. Not
# called in $(...): the detach registered here must reach this shell's exit handlers.
new_dev() {
  python3 -c 'import sys; sys.stdout.buffer.write(bytes([int(sys.argv[2])])*(int(sys.argv[1])<<20))' "$1" "$2" >"$tmp/dev$2.raw"
  local l
  l=$(losetup --show -f "$tmp/dev$2.raw")
  e2e_on_exit "losetup -d '$l'"
  printf -v "$3" '%s' "$l"
}
free_bytes() { python3 -c 'import os,sys; s=os.statvfs(sys.argv[1]); print(s.f_bavail*s.f_frsize)' "$1"; }

# ---- images ---------------------------------------------------------------------------
make_image() { # make_image NAME SIZE_MIB: raw with data in a few places, and its qcow2
  local raw=$tmp/$1.raw
  truncate -s "$2M" "$raw"
  printf 'first sector' | dd of="$raw" bs=1 seek=1000 conv=notrunc status=none
  printf 'middle' | dd of="$raw" bs=1 seek=$(($2 * MiB / 2 + 77)) conv=notrunc status=none
  printf 'last' | dd of="$raw" bs=1 seek=$(($2 * MiB - 4)) conv=notrunc status=none
  qemu-img convert -q -f raw -O qcow2 "$raw" "$tmp/$1.qcow2"
}
make_image img4 4
make_image img8 8
make_image img9 9

# run_import TERM [VAR=VALUE...]: vimport import under CDI's env contract
run_import() {
  local term=$1
  shift
  rm -f "$term"
  set +e
  env -i PATH="$PATH" VIMPORT_METRICS_PORT=0 VIMPORT_TERMINATION_MESSAGE_PATH="$term" \
    FILESYSTEM_OVERHEAD=$OVERHEAD VIMPORT_TARGET_BLOCK_DEVICE=/nonexistent "$@" \
    "$VIMPORT" import 2>"$term.log"
  RC=$?
  set -e
}

# ---- exact size: a request equal to the image's virtual size imports -------------------
new_fs exact 64
run_import "$tmp/t-exact" IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$tmp/img8.qcow2" \
  IMPORTER_IMAGE_SIZE=$((8 * MiB)) VIMPORT_TARGET_PATH="$tmp/exact/disk.img"
assert_eq 0 "$RC" "exact size: exit ($(cat "$tmp/t-exact.log" | tail -2))"
assert_eq "Import Complete" "$(json "$tmp/t-exact" '["message"]')" "exact size: message"
# usable(8 MiB) = 7 MiB < V: no growth, no shrink
assert_eq $((8 * MiB)) "$(stat -c %s "$tmp/exact/disk.img")" "exact size: file size"
cmp "$tmp/img8.raw" "$tmp/exact/disk.img" || fail "exact size: content"

# ---- smaller image grown to min(usable, requested), mode 0660 ------------------------
new_fs grow 64
req=$((16 * MiB))
avail=$(python3 -c 'import sys; print(min(map(int, sys.argv[1:])))' "$(free_bytes "$tmp/grow")" "$req")
want=$(grown $((4 * MiB)) "$(usable "$avail" $OVERHEAD)" "$req")
assert_eq $((15 * MiB)) "$want" "CDI's formula: usable(16 MiB) at 0.055"
run_import "$tmp/t-grow" IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$tmp/img4.qcow2" \
  IMPORTER_IMAGE_SIZE=$req VIMPORT_TARGET_PATH="$tmp/grow/disk.img"
assert_eq 0 "$RC" "grow: exit ($(tail -2 "$tmp/t-grow.log"))"
assert_eq "$want" "$(stat -c %s "$tmp/grow/disk.img")" "grow: file size"
assert_eq 660 "$(stat -c %a "$tmp/grow/disk.img")" "grow: mode"
assert_eq "False" "$(json "$tmp/t-grow" '["preallocationApplied"]')" "grow: preallocationApplied"
cmp -n $((4 * MiB)) "$tmp/img4.raw" "$tmp/grow/disk.img" || fail "grow: image content"
cmp -i $((4 * MiB)):0 -n $((want - 4 * MiB)) "$tmp/grow/disk.img" /dev/zero || fail "grow: zeros past the image"
alloc=$(($(stat -c %b "$tmp/grow/disk.img") * 512))
[ "$alloc" -le $((1 * MiB)) ] || fail "grow: the grown part must stay sparse ($alloc bytes allocated)"
# the hashes the import reports are what `vimport sum` computes on the same bytes
assert_eq "$want" "$(json "$tmp/t-grow" '["vimport"]["blockHashLength"]')" "grow: blockHashLength"
assert_eq "sha256:$("$VIMPORT" sum "$tmp/grow/disk.img" | cut -d' ' -f1)" \
  "$(json "$tmp/t-grow" '["vimport"]["blockHash"]')" "grow: blockHash is the volume's"
assert_eq "sha256:$("$VIMPORT" sum "$tmp/img4.qcow2" | cut -d' ' -f1)" \
  "$(json "$tmp/t-grow" '["vimport"]["imageBlockHash"]')" "grow: imageBlockHash is the image's"

# ---- no size requested: no growth -----------------------------------------------------
new_fs noreq 64
run_import "$tmp/t-noreq" IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$tmp/img4.qcow2" \
  VIMPORT_TARGET_PATH="$tmp/noreq/disk.img"
assert_eq 0 "$RC" "no request: exit"
assert_eq $((4 * MiB)) "$(stat -c %s "$tmp/noreq/disk.img")" "no request: the image's size"
case $(cat "$tmp/t-noreq") in *imageBlockHash*) fail "no request: imageBlockHash without growth" ;; esac

# ---- too big: refused with CDI's sentence, nothing left that passes for a disk --------
new_fs big 64
run_import "$tmp/t-big" IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$tmp/img9.qcow2" \
  IMPORTER_IMAGE_SIZE=$((8 * MiB)) VIMPORT_TARGET_PATH="$tmp/big/disk.img"
assert_eq 1 "$RC" "too big: exit"
grep -q "virtual image size $((9 * MiB)) is larger than the reported available storage $((8 * MiB)). A larger PVC is required." \
  "$tmp/t-big" || fail "too big: CDI's sentence missing from $(cat "$tmp/t-big")"
assert_eq 0 "$(stat -c %s "$tmp/big/disk.img" 2>/dev/null || echo 0)" "too big: nothing written"

# ---- blank Filesystem: sparse usable bytes; with preallocation: allocated -------------
for pre in false true; do
  new_fs "blank$pre" 64
  avail=$(python3 -c 'import sys; print(min(map(int, sys.argv[1:])))' "$(free_bytes "$tmp/blank$pre")" $((32 * MiB)))
  want=$(usable "$avail" $OVERHEAD)
  run_import "$tmp/t-blank$pre" IMPORTER_SOURCE=none IMPORTER_IMAGE_SIZE=$((32 * MiB)) \
    PREALLOCATION=$pre VIMPORT_TARGET_PATH="$tmp/blank$pre/disk.img"
  assert_eq 0 "$RC" "blank FS prealloc=$pre: exit ($(tail -2 "$tmp/t-blank$pre.log"))"
  assert_eq "$want" "$(stat -c %s "$tmp/blank$pre/disk.img")" "blank FS prealloc=$pre: size"
  assert_eq 660 "$(stat -c %a "$tmp/blank$pre/disk.img")" "blank FS prealloc=$pre: mode"
  alloc=$(($(stat -c %b "$tmp/blank$pre/disk.img") * 512))
  if [ $pre = true ]; then
    [ "$alloc" -ge "$want" ] || fail "blank FS preallocated: only $alloc of $want bytes allocated"
    assert_eq True "$(json "$tmp/t-blank$pre" '["preallocationApplied"]')" "blank FS: preallocationApplied"
  else
    [ "$(du -B1 "$tmp/blank$pre/disk.img" | cut -f1)" -le $((64 * 1024)) ] ||
      fail "blank FS: not sparse ($(du -B1 "$tmp/blank$pre/disk.img"))"
    assert_eq False "$(json "$tmp/t-blank$pre" '["preallocationApplied"]')" "blank FS: preallocationApplied"
  fi
  cmp -n "$want" "$tmp/blank$pre/disk.img" /dev/zero || fail "blank FS prealloc=$pre: not zeros"
done

# ---- blank with contentType archive: CDI's refusal (importer.go errorEmptyDiskWithContentTypeArchive)
run_import "$tmp/t-barch" IMPORTER_SOURCE=none IMPORTER_IMAGE_SIZE=$((32 * MiB)) \
  IMPORTER_CONTENTTYPE=archive VIMPORT_TARGET_PATH="$tmp/blankfalse/archive.img"
assert_eq 1 "$RC" "blank archive: exit"
grep -q "Cannot create empty disk with content type archive" "$tmp/t-barch" ||
  fail "blank archive: $(cat "$tmp/t-barch")"
[ ! -e "$tmp/blankfalse/archive.img" ] || fail "blank archive: a file was created"

# ---- blank Block: untouched without preallocation, zeros with it ----------------------
new_dev 16 165 dev # 0xa5 everywhere
run_import "$tmp/t-bblank" IMPORTER_SOURCE=none IMPORTER_IMAGE_SIZE=$((16 * MiB)) \
  VIMPORT_TARGET_BLOCK_DEVICE="$dev"
assert_eq 0 "$RC" "blank block: exit ($(tail -2 "$tmp/t-bblank.log"))"
assert_eq "Import Complete" "$(json "$tmp/t-bblank" '["message"]')" "blank block: message"
cmp "$dev" "$tmp/dev165.raw" || fail "blank block without preallocation: the device was written"
case $(cat "$tmp/t-bblank") in *blockHash*) fail "blank block: a block hash of nothing read" ;; esac
grep -q "read back" "$tmp/t-bblank.log" && fail "blank block: the device was read back"
run_import "$tmp/t-bblankp" IMPORTER_SOURCE=none IMPORTER_IMAGE_SIZE=$((16 * MiB)) \
  PREALLOCATION=true VIMPORT_TARGET_BLOCK_DEVICE="$dev"
assert_eq 0 "$RC" "blank block preallocated: exit ($(tail -2 "$tmp/t-bblankp.log"))"
cmp -n $((16 * MiB)) "$dev" /dev/zero || fail "blank block preallocated: not all zeros"
assert_eq True "$(json "$tmp/t-bblankp" '["preallocationApplied"]')" "blank block: preallocationApplied"

# ---- preallocation on import: file fully allocated; block holes zeroed -----------------
new_fs pre 64
run_import "$tmp/t-pre" IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$tmp/img4.qcow2" \
  IMPORTER_IMAGE_SIZE=$((16 * MiB)) PREALLOCATION=true VIMPORT_TARGET_PATH="$tmp/pre/disk.img"
assert_eq 0 "$RC" "preallocation: exit ($(tail -2 "$tmp/t-pre.log"))"
size=$(stat -c %s "$tmp/pre/disk.img")
assert_eq $((15 * MiB)) "$size" "preallocation: grown size"
alloc=$(($(stat -c %b "$tmp/pre/disk.img") * 512))
[ "$alloc" -ge "$size" ] || fail "preallocation: only $alloc of $size bytes allocated"
assert_eq True "$(json "$tmp/t-pre" '["preallocationApplied"]')" "preallocation: preallocationApplied"
cmp -n $((4 * MiB)) "$tmp/img4.raw" "$tmp/pre/disk.img" || fail "preallocation: content"
new_dev 16 90 bdev # 'Z' everywhere: the image's holes must read zeros
run_import "$tmp/t-bpre" IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$tmp/img4.qcow2" \
  PREALLOCATION=true VIMPORT_TARGET_BLOCK_DEVICE="$bdev"
assert_eq 0 "$RC" "block preallocation: exit ($(tail -2 "$tmp/t-bpre.log"))"
cmp -n $((4 * MiB)) "$tmp/img4.raw" "$bdev" || fail "block preallocation: content"
assert_eq True "$(json "$tmp/t-bpre" '["preallocationApplied"]')" "block preallocation: preallocationApplied"

# ---- the documented flow: import, verify with the reported hash and length ------------
verify_spec() { # verify_spec FILE TERM HASH LENGTH TARGET-LINES...
  local f=$1 term=$2 hash=$3 len=$4
  shift 4
  {
    printf 'apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: v}\n'
    printf 'spec:\n  source: {blank: {}}\n'
    printf 'vimport:\n  expectedBlockHash: "%s"\n' "$hash"
    [ -z "$len" ] || printf '  blockHashLength: %s\n' "$len"
    printf '  terminationMessagePath: %s\n' "$term"
    local l
    for l in "$@"; do printf '  %s\n' "$l"; done
  } >"$f"
}
flip() { # flip FILE-OR-DEVICE OFFSET: invert one byte in place
  python3 - "$1" "$2" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR); off = int(sys.argv[2])
b = os.pread(fd, 1, off); os.pwrite(fd, bytes([b[0] ^ 0xff]), off); os.fsync(fd); os.close(fd)
EOF
}
message() { json "$1" '["message"]'; }

# Filesystem, larger than the image (the volume of "grow" above)
hash=$(json "$tmp/t-grow" '["vimport"]["blockHash"]')
len=$(json "$tmp/t-grow" '["vimport"]["blockHashLength"]')
verify_spec "$tmp/v-fs.yaml" "$tmp/vt-fs" "$hash" "$len" "target: {path: $tmp/grow/disk.img}"
"$VIMPORT" verify --spec "$tmp/v-fs.yaml" 2>"$tmp/vt-fs.log" ||
  fail "verify of the untouched Filesystem volume: $(cat "$tmp/vt-fs")"
assert_eq "Verification Complete" "$(message "$tmp/vt-fs")" "verify FS: message"
# without blockHashLength verify hashes the whole file: the same here
verify_spec "$tmp/v-fs2.yaml" "$tmp/vt-fs2" "$hash" "" "target: {path: $tmp/grow/disk.img}"
"$VIMPORT" verify --spec "$tmp/v-fs2.yaml" 2>/dev/null || fail "verify FS without length: $(cat "$tmp/vt-fs2")"
"$VIMPORT" sum --manifest "$tmp/fs.manifest" "$tmp/grow/disk.img" >/dev/null
off=$((2 * MiB + 77)) # the middle of the image: 64 KiB block 32
flip "$tmp/grow/disk.img" "$off"
rc=0
"$VIMPORT" verify --spec "$tmp/v-fs.yaml" --manifest "$tmp/fs.manifest" 2>/dev/null || rc=$?
assert_eq 1 "$rc" "verify FS after a flipped byte: exit"
case $(message "$tmp/vt-fs") in
  *"Verification failed"*"changed since the manifest: bytes 2097152-2162687"*) ;;
  *) fail "verify FS: the block is not named: $(message "$tmp/vt-fs")" ;;
esac

# Block, larger than the image: the image's bytes are hashed, the rest is not ours
new_dev 16 51 bver
run_import "$tmp/t-bver" IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$tmp/img4.qcow2" \
  IMPORTER_IMAGE_SIZE=$((16 * MiB)) VIMPORT_TARGET_BLOCK_DEVICE="$bver"
assert_eq 0 "$RC" "block import: exit ($(tail -2 "$tmp/t-bver.log"))"
hash=$(json "$tmp/t-bver" '["vimport"]["blockHash"]')
len=$(json "$tmp/t-bver" '["vimport"]["blockHashLength"]')
assert_eq $((4 * MiB)) "$len" "block: blockHashLength is the image's size"
assert_eq "sha256:$("$VIMPORT" sum "$tmp/img4.qcow2" | cut -d' ' -f1)" "$hash" "block: blockHash is the image's"
verify_spec "$tmp/v-b.yaml" "$tmp/vt-b" "$hash" "$len" "target: {blockDevice: $bver}"
"$VIMPORT" verify --spec "$tmp/v-b.yaml" 2>/dev/null || fail "verify of the untouched block volume: $(cat "$tmp/vt-b")"
# the same length from the environment, the spec without it
verify_spec "$tmp/v-b2.yaml" "$tmp/vt-b2" "$hash" "" "target: {blockDevice: $bver}"
VIMPORT_BLOCK_HASH_LENGTH=$len "$VIMPORT" verify --spec "$tmp/v-b2.yaml" 2>/dev/null ||
  fail "verify with VIMPORT_BLOCK_HASH_LENGTH: $(cat "$tmp/vt-b2")"
rc=0
"$VIMPORT" verify --spec "$tmp/v-b2.yaml" 2>/dev/null || rc=$?
assert_eq 1 "$rc" "verify of the whole device against the image's hash"
"$VIMPORT" sum --manifest "$tmp/b.manifest" "$tmp/img4.qcow2" >/dev/null
flip "$bver" 1000
rc=0
"$VIMPORT" verify --spec "$tmp/v-b.yaml" --manifest "$tmp/b.manifest" 2>/dev/null || rc=$?
assert_eq 1 "$rc" "verify block after a flipped byte: exit"
case $(message "$tmp/vt-b") in
  *"Verification failed"*"changed since the manifest: bytes 0-65535"*) ;;
  *) fail "verify block: the block is not named: $(message "$tmp/vt-b")" ;;
esac

# ---- expectedBlockHash on import: either length matches; another length is refused ----
new_fs exp 64
img_hash=$(json "$tmp/t-grow" '["vimport"]["imageBlockHash"]')
for len in "" $((15 * MiB)); do
  run_import "$tmp/t-exp" IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$tmp/img4.qcow2" \
    IMPORTER_IMAGE_SIZE=$((16 * MiB)) VIMPORT_TARGET_PATH="$tmp/exp/disk.img" \
    VIMPORT_EXPECTED_BLOCK_HASH="$img_hash" ${len:+VIMPORT_BLOCK_HASH_LENGTH=$len}
  if [ -z "$len" ]; then
    assert_eq 0 "$RC" "expected image hash: exit ($(tail -2 "$tmp/t-exp.log"))"
    grep -q expected-blockhash "$tmp/t-exp" || fail "expected image hash: not verified"
  else
    # a verdict: exit 0 and "checksum mismatch", which CDI's controller marks fatal
    assert_eq 0 "$RC" "image hash with the volume's length: exit"
    grep -q "checksum mismatch: block hash" "$tmp/t-exp" || fail "length mismatch: $(cat "$tmp/t-exp")"
  fi
done
run_import "$tmp/t-exp" IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$tmp/img4.qcow2" \
  IMPORTER_IMAGE_SIZE=$((16 * MiB)) VIMPORT_TARGET_PATH="$tmp/exp/disk.img" \
  VIMPORT_EXPECTED_BLOCK_HASH="$img_hash" VIMPORT_BLOCK_HASH_LENGTH=12345
assert_eq 0 "$RC" "blockHashLength of neither length: exit (a verdict, as above)"
grep -q "blockHashLength is 12345 bytes" "$tmp/t-exp" || fail "other length: $(cat "$tmp/t-exp")"
run_import "$tmp/t-exp" IMPORTER_SOURCE=file IMPORTER_ENDPOINT="$tmp/img4.qcow2" \
  VIMPORT_TARGET_PATH="$tmp/exp/disk.img" VIMPORT_BLOCK_HASH_LENGTH=12345
assert_eq 1 "$RC" "blockHashLength without expectedBlockHash: exit"
grep -q "no expectedBlockHash" "$tmp/t-exp" || fail "length alone: $(cat "$tmp/t-exp")"

pass "CDI's sizing, blank and preallocated volumes, and the import-then-verify flow"
