#!/usr/bin/env bash
# Target faults: every failure must exit 1 with a clear termination message and leave
# no target that reads as a complete disk (a file is truncated to 0 bytes; a block
# device has its first MiB zeroed), and a rerun must then import it whole.
#
#   1. target too small: a spec that requests less than the image; a small loop device
#      ("A larger PVC is required", nothing written)
#   2. ENOSPC while writing: a 24 MiB tmpfs that fills up in the middle of the import
#      (the source stalls for 3 s while the test fills the filesystem)
#   3. EIO on read-back: a device-mapper flakey target with error_reads (writes work,
#      reads fail); skipped with the reason where device-mapper is not available
#   4. SIGTERM in the middle of a stalled transfer: exit 1 within 5 s (before a
#      Kubernetes grace period would SIGKILL), message says cancelled and that a rerun
#      starts over, target invalidated; the rerun succeeds. Also on a block device.
#   5. storage corruption between the write and the read-back (an LD_PRELOAD shim,
#      tests/e2e/shims/readback_flip.c, inverts one byte of what the read-back reads):
#      the import fails naming the 64 KiB block, file and block device targets
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd python3 timeout losetup mount
[ "$(id -u)" -eq 0 ] || skip "needs root for loop devices and a tmpfs mount"
tmp=$(e2e_tmpdir)
srv=$tmp/srv
mkdir -p "$srv"

"$VIMPORT_TOP/hack/make-test-image.sh" "$srv/disk.raw" 12 /usr/share/doc/bash
# incompressible data all through, so that every part of the transfer writes
head -c $((16 << 20)) /dev/urandom >"$srv/random.raw"
image_size=$(stat -c %s "$srv/disk.raw")
blockhash=sha256:$("$VIMPORT" sum "$srv/disk.raw" | cut -d' ' -f1)
IMPORT_TIMEOUT=${IMPORT_TIMEOUT:-120}

faultserver_start "$srv"

section() { echo "[${SECONDS}s] $*"; }
message() { import_message; }

# spec URL TARGET [YAML lines under spec: first as "spec:LINE"] [vimport: lines...]
spec() {
  local url=$1 target=$2 lines=()
  shift 2
  local l
  for l in "$@"; do [[ $l == spec:* ]] || lines+=("$l"); done
  case $target in
    /dev/*) import_spec "$tmp/spec.yaml" "$url" "" "/nonexistent" "${lines[@]}"
            sed -i "s|target: {path: /nonexistent}|target: {blockDevice: $target}|" "$tmp/spec.yaml" ;;
    *) import_spec "$tmp/spec.yaml" "$url" "" "$target" "${lines[@]}" ;;
  esac
  for l in "$@"; do
    [[ $l == spec:* ]] && sed -i "s|^spec:|&\n  ${l#spec:}|" "$tmp/spec.yaml"
  done
  return 0
}

# run [ENV=VALUE...]: import under a time bound; rc, msg; fails on a hang or a crash
run() {
  rm -f "$E2E_TMP/termination-log"
  rc=0
  env "$@" timeout -k 5 "$IMPORT_TIMEOUT" "$VIMPORT" import --spec "$tmp/spec.yaml" \
    </dev/null 2>"$tmp/stderr" || rc=$?
  check_rc
}

check_rc() {
  case $rc in
    0 | 1) ;;
    124 | 137) fail "$what: the import hung" ;;
    *) fail "$what: exit $rc (crash?): $(tail -3 "$tmp/stderr")" ;;
  esac
  # CDI's importer: JSON after exit 0 (success, a verdict), one line of plain text after exit 1
  expect_message_shape "$what" "$rc"
  msg=$IMPORT_MSG
}

expect_error() { # REGEX
  [ "$rc" -eq 1 ] || fail "$what: expected exit 1, got $rc: $msg"
  message | grep -qiE "$1" || fail "$what: message does not match /$1/: $msg"
}

expect_complete() { # TARGET IMAGE
  [ "$rc" -eq 0 ] || fail "$what: exit $rc: $msg"
  cmp -s -n "$(stat -c %s "$2")" "$1" "$2" || fail "$what: wrong bytes on the target"
}

# a file target that cannot pass for a disk: absent or empty
expect_file_invalid() {
  [ ! -s "$1" ] || fail "$what: the failed import left $(stat -c %s "$1") bytes in $1"
}

# a block device whose first MiB is zeros (no partition table, no superblock)
expect_block_invalid() {
  cmp -s -n $((1 << 20)) "$1" /dev/zero || fail "$what: the first MiB of $1 still holds data"
}

new_loop() { # SIZE_MIB NAME -> prints the device (the caller detaches it at exit)
  local backing=$tmp/$2.backing dev
  truncate -s "${1}M" "$backing"
  dev=$(losetup -f --show "$backing") || skip "losetup cannot attach a loop device"
  echo "$dev"
}

# ---- 1. target too small ---------------------------------------------------------------
section "target too small"
what="requested storage smaller than the image"
rm -f "$tmp/small.img"
spec "$FAULT_URL/disk.raw" "$tmp/small.img" "spec:storage: {resources: {requests: {storage: 8Mi}}}"
run
expect_error "A larger PVC is required"
expect_file_invalid "$tmp/small.img"

what="a loop device smaller than the image"
small_loop=$(new_loop 8 small)
e2e_on_exit losetup -d "$small_loop"
dd if=/dev/urandom of="$small_loop" bs=1M count=1 conv=fsync status=none
head -c 4096 "$small_loop" >"$tmp/small.before"
spec "$FAULT_URL/disk.raw" "$small_loop"
run
expect_error "A larger PVC is required"
# Refused before any write (the device keeps its bytes), or, for a raw stream whose end
# shows only while writing, invalidated (first MiB zeroed): never a truncated disk.
cmp -s -n 4096 "$small_loop" "$tmp/small.before" || expect_block_invalid "$small_loop"

# ---- 2. ENOSPC while writing -------------------------------------------------------------
section "ENOSPC while writing"
mkdir -p "$tmp/tmpfs"
mount -t tmpfs -o size=24m vimport-e2e-enospc "$tmp/tmpfs" || skip "cannot mount a tmpfs"
e2e_on_exit umount -l "$tmp/tmpfs"
what="ENOSPC in the middle of the import"
spec "$FAULT_URL/random.raw?stall=3&at=$((6 << 20))" "$tmp/tmpfs/disk.img" "stallTimeoutSeconds: 30"
rm -f "$E2E_TMP/termination-log" "$FAULT_LOG"
timeout -k 5 "$IMPORT_TIMEOUT" "$VIMPORT" import --spec "$tmp/spec.yaml" </dev/null \
  2>"$tmp/stderr" &
pid=$!
for _ in $(seq 100); do grep -q random.raw "$FAULT_LOG" 2>/dev/null && break; sleep 0.1; done
sleep 1 # the import is now inside the stall, its file sized and partly written
dd if=/dev/zero of="$tmp/tmpfs/fill" bs=1M status=none 2>/dev/null || true
rc=0
wait "$pid" || rc=$?
check_rc
expect_error "No space left on device"
expect_file_invalid "$tmp/tmpfs/disk.img"
rm -f "$tmp/tmpfs/fill"
what="rerun after ENOSPC, with room again"
spec "$FAULT_URL/random.raw" "$tmp/tmpfs/disk.img"
run
expect_complete "$tmp/tmpfs/disk.img" "$srv/random.raw"

# ---- 3. EIO on read-back -------------------------------------------------------------------
section "EIO on read-back"
eio_result="skipped"
if ! command -v dmsetup >/dev/null; then
  eio_result="skipped: dmsetup is not installed (apt-get install dmsetup)"
elif ! dmsetup targets 2>/dev/null | grep -qw flakey; then
  eio_result="skipped: device-mapper (or its flakey target) is not available in this kernel"
else
  eio_loop=$(new_loop 16 eio)
  e2e_on_exit losetup -d "$eio_loop"
  sectors=$((16 << 11))
  dm=vimport-e2e-eio-$$
  # up 0 s, down 1 s: always "down"; error_reads fails every read, writes go through
  if dmsetup create "$dm" --table "0 $sectors flakey $eio_loop 0 0 1 1 error_reads" 2>"$tmp/dm.err"; then
    e2e_on_exit dmsetup remove --retry "$dm"
    what="EIO on read-back"
    spec "$FAULT_URL/disk.raw" "/dev/mapper/$dm"
    run
    expect_error "read-back.*(Input/output error|I/O error|EIO)"
    eio_result="passed"
  else
    eio_result="skipped: dmsetup create flakey with error_reads failed: $(head -c 200 "$tmp/dm.err")"
  fi
fi
echo "EIO on read-back: $eio_result"

# ---- 4. SIGTERM in the middle ----------------------------------------------------------------
# term_case TARGET KIND: the source stalls for 30 s at 6 MiB; TERM after 1 s of stall
term_case() {
  local target=$1 kind=$2 url="$FAULT_URL/disk.raw?stall=30&at=$((6 << 20))&case=$2"
  what="SIGTERM during a stalled transfer ($kind target)"
  spec "$url" "$target" "stallTimeoutSeconds: 60"
  rm -f "$E2E_TMP/termination-log" "$FAULT_LOG"
  "$VIMPORT" import --spec "$tmp/spec.yaml" </dev/null 2>"$tmp/stderr" &
  local pid=$! start waited
  for _ in $(seq 100); do grep -q "case=$kind" "$FAULT_LOG" 2>/dev/null && break; sleep 0.1; done
  sleep 1.5
  start=$SECONDS
  kill -TERM "$pid"
  # bounded wait: 5 s, then the test kills it and fails
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
    fail "$what: still running 5 s after SIGTERM (a stalled source must not delay the stop: Kubernetes SIGKILLs after its grace period and the target stays half-written)"
  fi
  rc=0
  wait "$pid" || rc=$?
  waited=$((SECONDS - start))
  check_rc
  expect_error "stopped by a signal"
  message | grep -qi "rerun" || fail "$what: the message does not say how a rerun behaves: $msg"
  case $kind in
    file) expect_file_invalid "$target" ;;
    block) expect_block_invalid "$target" ;;
  esac
  echo "$kind target: exit 1 ${waited}s after SIGTERM, target invalidated"
  what="rerun after SIGTERM ($kind target)"
  run # the same spec: the stall fired once, so the rerun streams freely
  expect_complete "$target" "$srv/disk.raw"
  assert_eq "$blockhash" "$(import_json '["vimport"]["blockHash"]')" "$what: block hash"
}

section "SIGTERM in the middle"
term_case "$tmp/term.img" file
term_loop=$(new_loop 16 term)
e2e_on_exit losetup -d "$term_loop"
term_case "$term_loop" block

# ---- 5. storage corruption between write and read-back -----------------------------------------
section "storage corruption before the read-back"
cc -shared -fPIC -o "$tmp/flip.so" "$VIMPORT_TOP/tests/e2e/shims/readback_flip.c" -ldl
for target in "$tmp/corrupt.img" "$term_loop"; do
  off=$(( (1 << 20) + 1500 )) # inside the ext4 superblock: data, not a hole
  block=$((off / 65536))
  what="a byte flipped at $off on $target"
  spec "$FAULT_URL/disk.raw" "$target"
  rm -f "$tmp/flip.mark"
  run LD_PRELOAD="$tmp/flip.so" READBACK_FLIP_PATH="$target" READBACK_FLIP_OFFSET=$off \
    READBACK_FLIP_MARK="$tmp/flip.mark"
  # a read-back mismatch is a verdict: CDI's fatal checksum mismatch, exit 0, JSON
  IMPORT_RC=$rc IMPORT_MSG=$msg expect_checksum_verdict "$what"
  message | grep -qE "block $block \(bytes $((block * 65536))-$(((block + 1) * 65536 - 1))\) differ" ||
    fail "$what: the differing block is not named: $msg"
  assert_eq verify "$(import_json '["vimport"]["error"]')" "$what: error kind"
  assert_eq "flipped $off" "$(cat "$tmp/flip.mark" 2>/dev/null)" "$what: the shim's flips"
  case $target in
    /dev/*) expect_block_invalid "$target" ;;
    *) expect_file_invalid "$target" ;;
  esac
done

pass "target faults (EIO on read-back: $eio_result)"
