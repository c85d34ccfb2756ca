#!/usr/bin/env bash
# pkg/target + pkg/verify on real storage: an image made with qemu-img/qemu-io is written
# through the target writer (extents in scrambled order, zeros detected) to a loop device
# full of old random bytes and to a file, read back with pkg/verify, and checked with
# cmp and qemu-img compare. A too-small device must be refused without a byte written.
#
# Until `vimport import` can write to a device, a small driver compiled from the library
# (below) does the writing; it is the same code path the import pipeline calls.
set -euo pipefail

top=${VIMPORT_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
skip() { echo "SKIP: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "loop devices need root"
[ -w /dev/loop-control ] || skip "no /dev/loop-control"
for tool in losetup qemu-img qemu-io cc cmp; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done

tmp=$(mktemp -d /var/tmp/test_target_loop.XXXXXX)
loops=()
cleanup() {
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# ---- the driver ---------------------------------------------------------------------
cat >"$tmp/driver.c" <<'EOF'
/* driver IMAGE TARGET [REQUESTED]: write raw IMAGE to TARGET through pkg/target in
 * 1 MiB extents in a scrambled order, then read TARGET back with pkg/verify.
 * Prints "<write-time hex> <read-back hex>". Exit 3: target too small; 1: other error. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "blkhash/blkhash.h"
#include "core/zero.h"
#include "target/target.h"
#include "verify/verify.h"

#define CHUNK (1024 * 1024)

static int die(const struct verr *err)
{
  fprintf(stderr, "driver: %s\n", err->message);
  return err->code == VERR_TARGET_TOO_SMALL ? 3 : 1;
}

int main(int argc, char **argv)
{
  if (argc < 3)
    return 2;
  int in = open(argv[1], O_RDONLY);
  struct stat st;
  if (in < 0 || fstat(in, &st) < 0)
    return 1;
  uint64_t size = (uint64_t)st.st_size, chunks = (size + CHUNK - 1) / CHUNK;
  struct target_opts opts = {.path = argv[2], .fs_overhead = 0.055,
                             .requested_size = argc > 3 ? strtoull(argv[3], NULL, 10) : 0};
  struct target *t = NULL;
  struct verr err = {0};
  if (target_open(&opts, &t, &err) < 0)
    return die(&err);
  if (target_check_fits(t, size, &err) < 0)
    return die(&err);
  static unsigned char buf[CHUNK];
  /* Odd chunks first, then even ones: out of order like a qcow2 decoder. */
  for (int pass = 1; pass >= 0; pass--)
    for (uint64_t c = (uint64_t)pass; c < chunks; c += 2) {
      uint64_t off = c * CHUNK, n = size - off < CHUNK ? size - off : CHUNK;
      if (pread(in, buf, n, (off_t)off) != (ssize_t)n)
        return 1;
      int r = mem_is_zero(buf, n) ? vsink_zero(target_sink(t), off, n, &err)
                                      : vsink_data(target_sink(t), off, buf, n, &err);
      if (r < 0)
        return die(&err);
    }
  if (target_finish(t, &err) < 0)
    return die(&err);
  struct target_info info;
  target_get_info(t, &info);
  fprintf(stderr, "driver: written %llu, zeroed %llu, skipped %llu\n",
          (unsigned long long)info.bytes_written, (unsigned long long)info.zero_bytes_zeroed,
          (unsigned long long)info.zero_bytes_skipped);
  target_free(t);

  /* write-time hash: the image bytes in order */
  struct blkhash *h = NULL;
  unsigned char md[BLKHASH_MAX_MD_SIZE], rmd[BLKHASH_MAX_MD_SIZE];
  unsigned md_len, rmd_len;
  if (blkhash_new(NULL, &h) != 0)
    return 1;
  for (uint64_t off = 0; off < size; off += CHUNK) {
    uint64_t n = size - off < CHUNK ? size - off : CHUNK;
    if (pread(in, buf, n, (off_t)off) != (ssize_t)n || blkhash_update(h, buf, n) != 0)
      return 1;
  }
  if (blkhash_final(h, md, &md_len) != 0)
    return 1;
  blkhash_free(h);
  struct verify_result res;
  if (verify_readback(argv[2], size, NULL, rmd, &rmd_len, &res, &err) < 0)
    return die(&err);
  if (verify_compare(md, rmd, md_len, NULL, NULL, size, &err) < 0)
    return die(&err);
  char hex[2 * BLKHASH_MAX_MD_SIZE + 1], rhex[2 * BLKHASH_MAX_MD_SIZE + 1];
  blkhash_hex(md, md_len, hex);
  blkhash_hex(rmd, rmd_len, rhex);
  printf("%s %s\n", hex, rhex);
  fprintf(stderr, "driver: read back %llu bytes (holes %llu, direct %d)\n",
          (unsigned long long)res.bytes_read, (unsigned long long)res.hole_bytes,
          res.direct_io);
  return 0;
}
EOF
cflags="-std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O2 -I$top/pkg"
if [ -f "$top/build/libvimport.a" ] &&
   cc $cflags -o "$tmp/driver" "$tmp/driver.c" "$top/build/libvimport.a" \
     $(pkg-config --libs libcurl libnbd libcrypto yaml-0.1 zlib liblzma libzstd 2>/dev/null) \
     -lpthread 2>/dev/null; then
  :
else # the library is not built (or another stage is mid-edit): build just what we need
  cc $cflags -o "$tmp/driver" "$tmp/driver.c" "$top"/pkg/core/*.c "$top/pkg/blkhash/blkhash.c" \
    "$top"/pkg/target/*.c "$top"/pkg/verify/*.c -lcrypto -lpthread ||
    fail "cannot build the target driver"
fi

# ---- a source image made by the real tools -------------------------------------------
qemu-img create -q -f qcow2 "$tmp/src.qcow2" 48M
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' -c 'write -P 0x11 5M 3M' \
  -c 'write -P 0x77 20M 64k' -c 'write -z 21M 1M' -c 'write -P 0x33 47M 1M' \
  "$tmp/src.qcow2" >/dev/null
qemu-img convert -f qcow2 -O raw "$tmp/src.qcow2" "$tmp/src.raw"
size=$(stat -c %s "$tmp/src.raw")

# ---- 1. block device holding old random bytes ----------------------------------------
head -c 64M /dev/urandom >"$tmp/backing.raw"
cp "$tmp/backing.raw" "$tmp/backing.orig"
loop=$(losetup -f --show "$tmp/backing.raw") || skip "no free loop device"
loops+=("$loop")
out=$("$tmp/driver" "$tmp/src.raw" "$loop") || fail "driver failed on $loop"
read -r wsum rsum <<<"$out"
[ "$wsum" = "$rsum" ] || fail "read-back hash $rsum != write-time hash $wsum"
cmp -n "$size" "$tmp/src.raw" "$loop" || fail "$loop does not hold the image"
cmp -i "$size" -n $((64 * 1024 * 1024 - size)) "$tmp/backing.orig" "$loop" ||
  fail "bytes past the image on $loop were touched"
if [ -x "${VIMPORT:-}" ] && "$VIMPORT" sum "$tmp/src.raw" >/dev/null 2>&1; then
  other=$("$VIMPORT" sum "$tmp/src.raw" | cut -d' ' -f1)
  [ "$other" = "$wsum" ] || fail "vimport sum $other != pkg/verify $wsum"
fi
losetup -d "$loop" && loops=()

# ---- 2. a device too small is refused before any write --------------------------------
head -c 32M /dev/urandom >"$tmp/small.raw"
cp "$tmp/small.raw" "$tmp/small.orig"
loop=$(losetup -f --show "$tmp/small.raw") || skip "no free loop device"
loops+=("$loop")
rc=0
"$tmp/driver" "$tmp/src.raw" "$loop" 2>"$tmp/err" >/dev/null || rc=$?
[ "$rc" -eq 3 ] || fail "a 32 MiB device took a 48 MiB image (exit $rc): $(cat "$tmp/err")"
grep -q "A larger PVC is required" "$tmp/err" || fail "unclear refusal: $(cat "$tmp/err")"
losetup -d "$loop" && loops=()
cmp "$tmp/small.orig" "$tmp/small.raw" || fail "the refused device was written to"

# ---- 3. a file target over an old file, checked by qemu-img ---------------------------
head -c 60M /dev/urandom >"$tmp/disk.img"
out=$("$tmp/driver" "$tmp/src.raw" "$tmp/disk.img") || fail "driver failed on a file"
read -r wsum rsum <<<"$out"
[ "$wsum" = "$rsum" ] || fail "file read-back hash $rsum != write-time hash $wsum"
[ "$(stat -c %s "$tmp/disk.img")" -eq "$size" ] || fail "file not cut to the image size"
qemu-img compare -q -f raw -F qcow2 "$tmp/disk.img" "$tmp/src.qcow2" ||
  fail "qemu-img compare: the file differs from the source image"
alloc=$(($(stat -c %b "$tmp/disk.img") * 512))
[ "$alloc" -lt $((16 * 1024 * 1024)) ] || fail "zeros were not punched: $alloc bytes allocated"

echo "target_loop: block device, refusal and file target verified" >&2
