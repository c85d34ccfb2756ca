#!/usr/bin/env bash
# qcow2 images whose tables come after the data they map, imported with a window much
# smaller than the out-of-order data, so the decoder must re-read clusters by HTTP Range:
#   resized:  64 MiB of random data in a 64 MiB image (32 KiB clusters), resized to
#             512 MiB (the L1 grows and moves past the data), then 128 MiB more written
#   snapshot: 128 MiB of random data, an internal snapshot, then writes (the active L2
#             tables are copied to the end of the file, after the data they still map)
# Over nginx with vimport.windowSize 8Mi each import must
#   1. give a target byte-identical to `qemu-img convert -O raw`, with the block hash of
#      `vimport sum` of that raw image and the served file's sha256 verified;
#   2. log, in the qcow2 stage, a non-zero number of clusters dropped and of bytes re-read;
#   3. peak under a memory bound (GNU time %M, printed): baseline + window, where the
#      baseline is the peak RSS of importing the same guest data from an image that
#      needs no window (qemu-img convert of the raw oracle: tables before data). That
#      baseline is the streaming pipeline at full throughput -- hash rings of
#      (2 * threads + 1) MiB for the write-time and read-back hashes, the O_DIRECT
#      read-back buffer, curl's buffer -- which a tiny import never fills; it is printed
#      next to a tiny import's RSS and must itself stay within 32 MiB of it, so neither
#      number grows with the data. A control import with a 64 MiB window must peak above
#      the 8 MiB bound, showing the measurement sees the window.
# From a pipe (not seekable, no Range) the same images must end with exit 0 and CDI's
# scratchSpaceRequired: true; given scratch space, they complete, and it holds only the
# clusters that overflowed the window (nothing for an image with its tables first).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd qemu-img qemu-io openssl python3
[ -x /usr/bin/time ] || skip "GNU time is not installed (apt-get install time)"
tmp=$(e2e_tmpdir)
srv=$tmp/srv
mkdir -p "$srv"
window=$((8 << 20))
mib() { echo "scale=1; $1 / 1024" | bc -l; } # KiB -> MiB, one decimal

# ---- images ----------------------------------------------------------------------------
# AES-CTR over zeros: incompressible and fast; two different streams.
# (process substitution: openssl's SIGPIPE when head is done must not trip pipefail)
random64() { head -c $((64 << 20)) < <(openssl enc -aes-128-ctr -pass "pass:$1" -nosalt -pbkdf2 </dev/zero 2>/dev/null); }
random64 resized >"$tmp/r1"
random64 snapshot >"$tmp/r2"
qio() { local img=$1; shift; local a=(); for c in "$@"; do a+=(-c "$c"); done; qemu-io -f qcow2 "${a[@]}" "$img" >/dev/null; }
l1_offset() { python3 -c 'import struct,sys; print(struct.unpack(">Q", open(sys.argv[1],"rb").read(48)[40:48])[0])' "$1"; }

qemu-img create -q -f qcow2 -o cluster_size=32k "$srv/resized.qcow2" 64M
qio "$srv/resized.qcow2" "write -s $tmp/r1 0 64M"
qemu-img resize -q "$srv/resized.qcow2" 512M
qio "$srv/resized.qcow2" "write -s $tmp/r2 100M 64M" "write -s $tmp/r1 400M 64M"
# The point of this image: its L1 sits after the first 64 MiB of data.
[ "$(l1_offset "$srv/resized.qcow2")" -gt $((64 << 20)) ] || fail "resize did not move the L1 table past the data"

qemu-img create -q -f qcow2 "$srv/snapshot.qcow2" 256M
qio "$srv/snapshot.qcow2" "write -s $tmp/r1 0 64M" "write -s $tmp/r2 128M 64M"
qemu-img snapshot -c snap1 "$srv/snapshot.qcow2"
qio "$srv/snapshot.qcow2" 'write -P 0xe1 1M 1M' 'write -P 0xe2 130M 64k' "write -s $tmp/r2 64M 32M"
rm -f "$tmp/r1" "$tmp/r2"

for n in resized snapshot; do
  qemu-img convert -f qcow2 -O raw "$srv/$n.qcow2" "$tmp/$n.raw"
  # the same guest data with every table before the data it maps: needs no window
  qemu-img convert -f raw -O qcow2 "$tmp/$n.raw" "$srv/$n-inorder.qcow2"
done
"$VIMPORT_TOP/hack/make-qcow2-corpus.sh" "$tmp/corpus" >/dev/null
cp "$tmp/corpus/plain.qcow2" "$srv/tiny.qcow2"
nginx_start "$srv"

# http_import NAME WINDOW: import NAME.qcow2 from nginx with its sha256 into $tmp/target
http_import() {
  local name=$1 win=$2 sum
  sum=sha256:$(sha256sum "$srv/$name.qcow2" | cut -d' ' -f1)
  rm -f "$tmp/target"
  import_spec "$tmp/spec.yaml" "$NGINX_URL/$name.qcow2" "$sum" "$tmp/target" "windowSize: $win"
  import_run "$tmp/spec.yaml"
  [ "$IMPORT_RC" -eq 0 ] || fail "$name: exit $IMPORT_RC: $IMPORT_MSG; stderr: $(tail -3 "$tmp/import.stderr")"
  assert_eq "Import Complete" "$(import_json '["message"]')" "$name: message"
  assert_eq "$sum" "$(import_json '["vimport"]["sourceDigest"]')" "$name: source digest"
  [ -n "$IMPORT_RSS_KB" ] || fail "$name: no peak RSS from /usr/bin/time"
}

# check_content NAME RAW: the target and its block hash match qemu-img's conversion
check_content() {
  local name=$1 raw=$2 want
  want=sha256:$("$VIMPORT" sum "$raw" | cut -d' ' -f1)
  assert_eq "$want" "$(import_json '["vimport"]["blockHash"]')" "$name: block hash vs vimport sum of the raw image"
  cmp "$raw" "$tmp/target" || fail "$name: target differs from qemu-img convert -O raw"
}

# qcow2_log FIELD: a number from the qcow2 stage's summary line
#   "... window peak P bytes, U clusters let go once used, N clusters dropped, B bytes re-read"
qcow2_log() {
  local line
  line=$(grep ' qcow2: v[0-9]' "$tmp/import.stderr" | tail -n 1) || fail "no qcow2 log line in stderr"
  case $1 in
    peak) sed -n 's/.*window peak \([0-9]*\) bytes.*/\1/p' <<<"$line" ;;
    clusters) sed -n 's/.* \([0-9]*\) clusters dropped.*/\1/p' <<<"$line" ;;
    bytes) sed -n 's/.* \([0-9]*\) bytes re-read.*/\1/p' <<<"$line" ;;
  esac
}

# ---- baselines -------------------------------------------------------------------------
declare -A base_kb # image name -> peak RSS (KiB) of importing its data in order
http_import tiny 8Mi
tiny_kb=$IMPORT_RSS_KB
echo "peak RSS, tiny import (plain.qcow2, 1 MiB of data): $(mib "$tiny_kb") MiB" >&2
for n in resized snapshot; do
  http_import "$n-inorder" 8Mi
  check_content "$n-inorder" "$tmp/$n.raw"
  assert_eq 0 "$(qcow2_log clusters)" "$n-inorder: clusters dropped (tables come first)"
  base_kb[$n]=$IMPORT_RSS_KB
  echo "peak RSS, $n data in order (no window needed): $(mib "$IMPORT_RSS_KB") MiB" >&2
  [ "$IMPORT_RSS_KB" -le $((tiny_kb + 32 * 1024)) ] ||
    fail "$n-inorder: streaming alone took $(mib $((IMPORT_RSS_KB - tiny_kb))) MiB over a tiny import (bound 32 MiB)"
done

# ---- the out-of-order images over HTTP, window 8 MiB -----------------------------------
for n in resized snapshot; do
  http_import "$n" 8Mi
  check_content "$n" "$tmp/$n.raw"
  clusters=$(qcow2_log clusters) bytes=$(qcow2_log bytes) peak=$(qcow2_log peak)
  if [ -z "$clusters" ] || [ "$clusters" -eq 0 ] || [ "$bytes" -eq 0 ]; then
    fail "$n: the qcow2 stage re-read nothing: $(grep ' qcow2: ' "$tmp/import.stderr")"
  fi
  [ "$peak" -le "$window" ] || fail "$n: window peak $peak bytes is over the configured $window"
  bound_kb=$((base_kb[$n] + window / 1024))
  echo "peak RSS, $n, window 8 MiB: $(mib "$IMPORT_RSS_KB") MiB (bound $(mib "$bound_kb") MiB =" \
    "in-order $(mib "${base_kb[$n]}") + window 8); $clusters clusters dropped, $((bytes >> 20)) MiB re-read," \
    "window peak $((peak >> 20)) MiB" >&2
  [ "$IMPORT_RSS_KB" -le "$bound_kb" ] ||
    fail "$n: peak RSS $(mib "$IMPORT_RSS_KB") MiB is over the bound $(mib "$bound_kb") MiB"
done

# Control: with a 64 MiB window the same import holds far more, so RSS must show it.
http_import snapshot 64Mi
check_content "snapshot, window 64 MiB" "$tmp/snapshot.raw"
echo "peak RSS, snapshot, window 64 MiB (control): $(mib "$IMPORT_RSS_KB") MiB" >&2
[ "$IMPORT_RSS_KB" -gt $((base_kb[snapshot] + window / 1024)) ] ||
  fail "control: a 64 MiB window peaked at $(mib "$IMPORT_RSS_KB") MiB, within the 8 MiB bound: RSS does not see the window"

# ---- the same images from a pipe: no Range, so scratch space is required --------------
for n in resized snapshot; do
  rm -f "$tmp/target"
  import_spec "$tmp/spec.yaml" - "" "$tmp/target" "windowSize: 8Mi"
  import_run "$tmp/spec.yaml" "$srv/$n.qcow2"
  assert_eq 0 "$IMPORT_RC" "$n from a pipe: exit code"
  assert_eq True "$(import_json '["scratchSpaceRequired"]')" "$n from a pipe: scratchSpaceRequired ($IMPORT_MSG)"
  import_json '["message"]' | grep -qi scratch || fail "$n from a pipe: message does not say scratch space: $IMPORT_MSG"
  echo "$n from a pipe, window 8 MiB: exit 0, scratchSpaceRequired, peak RSS $(mib "$IMPORT_RSS_KB") MiB" >&2
done
# ---- from a pipe with scratch space: only the overflow goes there --------------------
# The clusters that overflow the window are kept in the scratch directory and re-read
# from it (checked against the digest taken when they streamed past); the rest of the
# stream never touches it, and an image with its tables first puts nothing there.
mkdir -p "$tmp/scratch"
for n in resized snapshot resized-inorder; do
  rm -f "$tmp/target"
  import_spec "$tmp/spec.yaml" - "" "$tmp/target" "windowSize: 8Mi" "scratchPath: $tmp/scratch"
  import_run "$tmp/spec.yaml" "$srv/$n.qcow2"
  [ "$IMPORT_RC" -eq 0 ] || fail "$n from a pipe with scratch: exit $IMPORT_RC: $IMPORT_MSG"
  assert_eq "Import Complete" "$(import_json '["message"]')" "$n from a pipe with scratch"
  check_content "$n from a pipe with scratch" "$tmp/${n%-inorder}.raw"
  kept=$(sed -n 's/.* qcow2: kept \([0-9]*\) bytes in scratch space.*/\1/p' "$tmp/import.stderr")
  bytes=$(qcow2_log bytes)
  if [ "$n" = resized-inorder ]; then
    [ -z "$kept" ] || fail "$n: tables first, yet $kept bytes went to scratch"
    continue
  fi
  [ -n "$kept" ] || fail "$n from a pipe with scratch: no 'kept N bytes in scratch space' line"
  [ "$bytes" -gt 0 ] && [ "$bytes" -le "$kept" ] ||
    fail "$n: $bytes bytes re-read, $kept kept in scratch: the re-reads must come from what was kept"
  [ "$kept" -lt "$(stat -c %s "$srv/$n.qcow2")" ] || fail "$n: scratch kept $kept bytes, the whole image"
  [ -z "$(ls -A "$tmp/scratch")" ] || fail "$n: the scratch directory is not empty: $(ls -A "$tmp/scratch")"
  echo "$n from a pipe with scratch: $((kept >> 20)) MiB kept in scratch of a $(($(stat -c %s "$srv/$n.qcow2") >> 20)) MiB image, $((bytes >> 20)) MiB re-read" >&2
done
pass "resized and snapshotted qcow2 imported over HTTP within window + baseline; from a pipe, scratch holds only the overflow"
