#!/usr/bin/env bash
# Make the benchmark workloads (issue 8) once and cache them; print the cache directory.
#
#   usage: hack/bench-images.sh [WORKLOAD...]     (default: W1 W2 W3 W4 W5)
#   env:   BENCH_DIR=build/bench
#
# The cache is BENCH_DIR/images-<key>, where <key> is taken from the SHA-256 of this
# script and of hack/make-test-image.sh: editing either makes new images, and older
# images-* directories are removed (they are 10+ GiB). Inside it:
#
#   serve/w3.raw      GPT + ext4 filled by mkfs.ext4 -d from /usr/share (hard-linked
#                     copy) topped up with incompressible files to 1 GiB of data;
#                     6 GiB virtual, sparse on disk (the base of all the others)
#   serve/w1.qcow2    qemu-img convert -O qcow2 of it
#   serve/w2.qcow2    qemu-img convert -c -O qcow2 (deflate-compressed clusters)
#   serve/w4.raw.xz   xz -T2 -3 (multi-block, as xz -T makes)
#   serve/w4.raw.zst  zstd -T2 -3
#   random-2g.img     2 GiB of AES-CTR keystream: incompressible, like random data
#   SHA256SUMS        of every file under serve/, for the importers' checksums
#
# Each file is written under a .tmp name and renamed when complete, so an interrupted
# run leaves nothing that looks finished. Only the files the named workloads need are
# made (W1 needs w3.raw and w1.qcow2, and so on).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/bench-lib.sh
. "$top/hack/bench-lib.sh"
bench_need qemu-img sgdisk mkfs.ext4 xz zstd openssl sha256sum

dir=${BENCH_DIR:-$top/build/bench}
key=$(cat "$top/hack/bench-images.sh" "$top/hack/make-test-image.sh" | sha256sum | cut -c1-12)
cache=$dir/images-$key
serve=$cache/serve
mkdir -p "$serve"

# Old keys and the caches of the scripts this suite replaced: many GiB of stale images.
for old in "$dir"/images-* "$dir/import-serve" "$dir/random-1g.img" "$dir/data-4g.img"; do
  [ -e "$old" ] && [ "$old" != "$cache" ] && rm -rf "$old"
done

say() { echo "bench-images: $*" >&2; }

# 64 MiB of keystream per file; the seed makes every file different and reproducible.
keystream() { # keystream SEED BYTES
  { openssl enc -aes-128-ctr -pass "pass:$1" -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } |
    head -c "$2"
}

make_raw() {
  local tree=$cache/tree have i=0
  rm -rf "$tree" && mkdir -p "$tree"
  # hard links: a real tree of mixed files at no copying cost (a copy across filesystems)
  cp -al /usr/share "$tree/share" 2>/dev/null || cp -a /usr/share "$tree/share"
  have=$(du -sb "$tree" | cut -f1)
  while [ "$have" -lt $((1 << 30)) ]; do
    keystream "bench-$i" $((64 << 20)) >"$tree/random-$i.bin"
    have=$((have + (64 << 20))) i=$((i + 1))
  done
  "$top/hack/make-test-image.sh" "$serve/w3.raw.tmp" 6144 "$tree"
  rm -rf "$tree"
  mv "$serve/w3.raw.tmp" "$serve/w3.raw"
}

make_one() { # make_one NAME COMMAND... (COMMAND writes NAME.tmp)
  local name=$1
  shift
  [ -s "$name" ] && return 0
  say "making $(basename "$name") (once; cached in $cache)"
  "$@"
  mv "$name.tmp" "$name"
}

qcow2() { qemu-img convert -f raw -O qcow2 "$serve/w3.raw" "$serve/w1.qcow2.tmp"; }
qcow2_c() { qemu-img convert -c -f raw -O qcow2 "$serve/w3.raw" "$serve/w2.qcow2.tmp"; }
raw_xz() { xz -T2 -3 -c "$serve/w3.raw" >"$serve/w4.raw.xz.tmp"; }
raw_zst() { zstd -q -T2 -3 -c "$serve/w3.raw" >"$serve/w4.raw.zst.tmp"; }
random2g() { keystream bench-random-2g $((2 << 30)) >"$cache/random-2g.img.tmp"; }

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(W1 W2 W3 W4 W5)
[ -s "$serve/w3.raw" ] || { say "making w3.raw (once; cached in $cache)"; make_raw; }
for w in "${wanted[@]}"; do
  case $w in
    W1) make_one "$serve/w1.qcow2" qcow2 ;;
    W2) make_one "$serve/w2.qcow2" qcow2_c ;;
    W3) ;;
    W4) make_one "$serve/w4.raw.xz" raw_xz && make_one "$serve/w4.raw.zst" raw_zst ;;
    W5) make_one "$cache/random-2g.img" random2g ;;
    *) bench_die "unknown workload '$w' (W1..W5)" ;;
  esac
done

# checksums of what is served, computed once per file
touch "$cache/SHA256SUMS"
for f in "$serve"/*; do
  case $f in *.tmp) continue ;; esac
  grep -q "  $(basename "$f")\$" "$cache/SHA256SUMS" ||
    (cd "$serve" && sha256sum "$(basename "$f")") >>"$cache/SHA256SUMS"
done
echo "$cache"
