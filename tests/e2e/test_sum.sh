#!/usr/bin/env bash
# vimport sum: pinned blksum vectors as files, thread independence, holes, stdin, block
# devices (loop), qcow2 (same digest as qemu-img's raw conversion), --check, errors, RSS.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
tmp=$(e2e_tmpdir)
# tests/data/patgen.c writes the bytes of the patterns tests/data/blkhash.tsv names
cc -std=c11 -O2 -Wall -Wextra -Werror -I"$VIMPORT_TOP/tests/unit" -o "$tmp/patgen" \
  "$VIMPORT_TOP/tests/data/patgen.c"
patgen=$tmp/patgen

# 1. every vector small enough to write quickly, with 1, 2 and 8 threads
n=0
while IFS=$'\t' read -r digest bs expected pattern; do
  case $digest in digest | '#'*) continue ;; esac
  case $pattern in *G*|*64M*) continue ;; esac
  $patgen "$pattern" >"$tmp/v.img"
  for t in 1 2 8; do
    got=$("$VIMPORT" sum -d "$digest" --block-size "$bs" -t "$t" "$tmp/v.img" | cut -d' ' -f1)
    assert_eq "$expected" "$got" "vector $pattern ($digest, $bs) with -t $t"
  done
  n=$((n + 1))
done <"$VIMPORT_TOP/tests/data/blkhash.tsv"
[ "$n" -ge 25 ] || fail "only $n vectors checked"

# 2. a sparse file: holes are skipped, the digest equals that of the same bytes on stdin
truncate -s 1G "$tmp/sparse.img"
$patgen r7:100000 | dd of="$tmp/sparse.img" bs=1M seek=300 conv=notrunc status=none
file_sum=$("$VIMPORT" sum "$tmp/sparse.img" | cut -d' ' -f1)
stdin_sum=$(cat "$tmp/sparse.img" | "$VIMPORT" sum | cut -d' ' -f1)
assert_eq "$stdin_sum" "$file_sum" "sparse file vs the same bytes on stdin"
"$VIMPORT" sum - <"$tmp/sparse.img" | grep -q "  -\$" || fail "stdin is not named '-'"

# 2b. data extents of regular files are mapped and hashed in place, 16 MiB at a time:
# extents that start off a page and end off a block, across window edges, against the
# same bytes read from stdin (never mapped)
truncate -s 200M "$tmp/mapped.img"
$patgen r3:37M | dd of="$tmp/mapped.img" bs=4096 seek=3 conv=notrunc status=none
$patgen r4:17M | dd of="$tmp/mapped.img" bs=1M seek=$((100 << 20 | 4097)) oflag=seek_bytes conv=notrunc status=none
truncate -s $((200 << 20 | 777)) "$tmp/mapped.img"
stdin_sum=$("$VIMPORT" sum -t 2 <"$tmp/mapped.img" | cut -d' ' -f1)
for t in 1 2 8; do
  got=$("$VIMPORT" sum -t "$t" "$tmp/mapped.img" | cut -d' ' -f1)
  assert_eq "$stdin_sum" "$got" "mapped file with -t $t vs the same bytes on stdin"
done
rm -f "$tmp/mapped.img"

# 2c. faults in the mapped path, made by an LD_PRELOAD shim (tests/e2e/shims): a file
# that cannot be mapped is read instead; a file cut short between windows, or under a
# window while its threads hash it (SIGBUS), fails with a message that says so
cc -shared -fPIC -o "$tmp/shim.so" "$VIMPORT_TOP/tests/e2e/shims/sum_mmap_fault.c" -ldl
$patgen r5:48M >"$tmp/fault.img"
want=$("$VIMPORT" sum -t 2 <"$tmp/fault.img" | cut -d' ' -f1)
got=$(LD_PRELOAD=$tmp/shim.so SUM_MMAP_FAULT=fail SUM_MMAP_MARK=$tmp/mark "$VIMPORT" sum -t 2 \
  "$tmp/fault.img" | cut -d' ' -f1)
assert_eq "$want" "$got" "a file that cannot be mapped, read with pread instead"
assert_eq 1 "$(wc -l <"$tmp/mark")" "window mappings tried before falling back to pread"
for mode in shrink truncate; do
  cp "$tmp/fault.img" "$tmp/cut.img"
  set +e
  LD_PRELOAD=$tmp/shim.so SUM_MMAP_FAULT=$mode "$VIMPORT" sum -t 2 "$tmp/cut.img" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  set -e
  assert_eq 1 "$rc" "exit code for a file cut short ($mode)"
  [ ! -s "$tmp/out" ] || fail "a digest was printed for a file cut short ($mode): $(cat "$tmp/out")"
  case $mode in
    shrink) want_msg="cut.img: file ended at byte $(((16 << 20) + 4096)) while reading: it shrank during hashing" ;;
    truncate) want_msg="a file shrank (was truncated) while it was being hashed; hash it again" ;;
  esac
  grep -qF "$want_msg" "$tmp/err" || fail "$mode: expected '$want_msg', got: $(cat "$tmp/err")"
done
rm -f "$tmp/fault.img" "$tmp/cut.img"

# 2d. on a filesystem of 1 KiB blocks SEEK_DATA finds extents that start off a page: a
# window maps from the page below and hashes from the right byte (the shim records that
# both windows were mapped, not read with pread after a refused mmap)
if { truncate -s 128M "$tmp/fs1k.img" && mkfs.ext4 -q -F -b 1024 "$tmp/fs1k.img" &&
  mkdir -p "$tmp/fs1k" && mount -o loop "$tmp/fs1k.img" "$tmp/fs1k"; } 2>"$tmp/err"; then
  e2e_on_exit umount "$tmp/fs1k"
  f=$tmp/fs1k/offpage.img
  truncate -s 64M "$f"
  $patgen r6:20M | dd of="$f" bs=1024 seek=$((3 * 1024 + 3)) conv=notrunc status=none
  sync
  data=$(python3 -c 'import os,sys; print(os.lseek(os.open(sys.argv[1], os.O_RDONLY), 0, os.SEEK_DATA))' "$f")
  assert_eq $(((3 << 20) + 3072)) "$data" "where the 1 KiB-block filesystem puts the data extent"
  want=$("$VIMPORT" sum -t 2 <"$f" | cut -d' ' -f1)
  rm -f "$tmp/mark"
  got=$(LD_PRELOAD=$tmp/shim.so SUM_MMAP_FAULT=watch SUM_MMAP_MARK=$tmp/mark "$VIMPORT" sum -t 2 \
    "$f" | cut -d' ' -f1)
  assert_eq "$want" "$got" "extents off a page, mapped, vs the same bytes on stdin"
  assert_eq "window $((3 << 20)) $(((16 << 20) + 3072)) mapped
window $((19 << 20)) $(((4 << 20) + 3072)) mapped" "$(cat "$tmp/mark")" "the windows sum mapped"
  umount "$tmp/fs1k"
else
  fail "cannot make and mount a 1 KiB-block ext4 on a loop device: $(cat "$tmp/err")"
fi

# 3. a 100 GiB sparse file takes well under a second (it is never read)
truncate -s 100G "$tmp/huge.img"
start=$(date +%s%N)
"$VIMPORT" sum "$tmp/huge.img" >/dev/null
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -lt 1000 ] || fail "100 GiB sparse file took ${ms} ms"
rm -f "$tmp/huge.img"

# 4. a block device: size from BLKGETSIZE64, same digest as its backing file
if loop=$(losetup -f --show "$tmp/sparse.img" 2>/dev/null); then
  e2e_on_exit losetup -d "$loop"
  dev_sum=$("$VIMPORT" sum "$loop" | cut -d' ' -f1)
  assert_eq "$file_sum" "$dev_sum" "loop device vs its backing file"
else
  echo "note: losetup unavailable, block device case not run" >&2
fi

# 5. qcow2: the guest-visible content, equal to qemu-img's raw conversion
$patgen r1:3M,z:5M,b41:1M,r2:100000 >"$tmp/base.raw"
for opts in "-O qcow2" "-O qcow2 -c" "-O qcow2 -o compat=0.10" "-O qcow2 -o cluster_size=4096"; do
  # shellcheck disable=SC2086
  qemu-img convert -f raw $opts "$tmp/base.raw" "$tmp/img.qcow2"
  qemu-img convert -f qcow2 -O raw "$tmp/img.qcow2" "$tmp/oracle.raw"
  want=$("$VIMPORT" sum "$tmp/oracle.raw" | cut -d' ' -f1)
  got=$("$VIMPORT" sum "$tmp/img.qcow2" | cut -d' ' -f1)
  assert_eq "$want" "$got" "qcow2 ($opts) vs qemu-img convert -O raw"
done

# 6. --check: OK lines, a changed file fails with exit 1
(cd "$tmp" && "$VIMPORT" sum base.raw img.qcow2 >list && "$VIMPORT" sum --check list >out) ||
  fail "--check of an unchanged list failed"
grep -q "^base.raw: OK$" "$tmp/out" || fail "--check did not print OK"
printf 'x' | dd of="$tmp/base.raw" bs=1 seek=10 conv=notrunc status=none
if (cd "$tmp" && "$VIMPORT" sum --check list >out 2>err); then fail "--check passed a changed file"; fi
grep -q "^base.raw: FAILED$" "$tmp/out" || fail "--check did not say FAILED"
grep -q "^img.qcow2: OK$" "$tmp/out" || fail "--check lost the other line"

# 7. errors: the unreadable input is named, the others still get their line, exit 1
set +e
"$VIMPORT" sum "$tmp/missing.img" "$tmp/base.raw" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
assert_eq 1 "$rc" "exit code with an unreadable input"
grep -q "missing.img: cannot open: No such file or directory" "$tmp/err" || fail "no clear error: $(cat "$tmp/err")"
grep -q "  $tmp/base.raw\$" "$tmp/out" || fail "the readable input lost its line"
set +e
"$VIMPORT" sum -d sha257 "$tmp/base.raw" >/dev/null 2>"$tmp/err"
rc=$?
set -e
assert_eq 1 "$rc" "exit code with an unknown digest"
grep -q "unknown digest 'sha257'" "$tmp/err" || fail "unknown digest not named"

# 8. peak RSS on a 4 GiB file stays under 64 MiB (memory does not grow with the input)
# (head closes the pipe at 4 GiB, so openssl dies of SIGPIPE: not an error here)
{ openssl enc -aes-128-ctr -pass pass:x -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } |
  head -c $((4 << 30)) >"$tmp/big.img"
assert_eq $((4 << 30)) "$(stat -c %s "$tmp/big.img")" "size of the 4 GiB test file"
rss_kb=$( { /usr/bin/time -f '%M' "$VIMPORT" sum -t 2 "$tmp/big.img" >/dev/null; } 2>&1 | tail -n 1)
echo "vimport sum -t 2 on 4 GiB: peak RSS $((rss_kb / 1024)) MiB"
[ "$rss_kb" -lt $((64 * 1024)) ] || fail "peak RSS ${rss_kb} KiB is over 64 MiB"
pass
