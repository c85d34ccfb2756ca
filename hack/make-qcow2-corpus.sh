#!/usr/bin/env bash
# Build a corpus of qcow2 images with the real qemu tools, each beside its oracle.
#
#   hack/make-qcow2-corpus.sh OUTDIR
#
# For every NAME.qcow2 written to OUTDIR there is NAME.raw, made by
# `qemu-img convert -O raw`: what any qcow2 reader must reproduce byte for byte.
# The images cover the layouts a streaming decoder finds hard: tables after the data
# they map (resize, snapshot, random-order writes), compression (zlib, zstd), v2,
# extended L2 subclusters, 512 B and 2 MiB clusters, preallocated metadata, discard.
# Everything is a few MiB virtual and the whole run takes a few seconds.
set -euo pipefail

out=${1:?usage: make-qcow2-corpus.sh OUTDIR}
hack=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
cd "$out"

qio() { # qio FORMAT IMAGE COMMAND...: run qemu-io commands quietly
  local fmt=$1 img=$2
  shift 2
  local args=()
  for c in "$@"; do args+=(-c "$c"); done
  qemu-io -f "$fmt" "${args[@]}" "$img" >/dev/null
}

oracle() { # oracle NAME: the raw conversion every reader must match
  qemu-img convert -f qcow2 -O raw "$1.qcow2" "$1.raw"
}

# base.raw, 4 MiB: recognisable patterns, random bytes, compressible text, zeros.
rm -f base.raw
qemu-img create -q -f raw base.raw 4M
qio raw base.raw 'write -P 0x11 0 64k' 'write -P 0x22 192k 4k' 'write -P 0x33 1000k 130k'
dd if=/dev/urandom of=base.raw bs=64k seek=8 count=6 conv=notrunc status=none
for i in $(seq 1 300); do echo "line $i of a compressible text region in the vimport corpus"; done \
  | dd of=base.raw bs=1k seek=2048 conv=notrunc status=none
dd if=/dev/urandom of=base.raw bs=512 seek=7000 count=3 conv=notrunc status=none
qio raw base.raw 'write -P 0x5a 4190208 2048' # last 2 KiB of the disk

convert() { # convert NAME [qemu-img convert options]
  local name=$1
  shift
  qemu-img convert -f raw -O qcow2 "$@" base.raw "$name.qcow2"
  oracle "$name"
}

convert plain
convert zlib -c -o compression_type=zlib
convert zstd -c -o compression_type=zstd
convert v2 -o compat=0.10
convert v2-zlib -c -o compat=0.10
convert extl2 -o extended_l2=on
convert extl2-zstd -c -o extended_l2=on,compression_type=zstd
convert c512 -o cluster_size=512
convert c512-zlib -c -o cluster_size=512
convert c2m -o cluster_size=2M
convert c2m-zlib -c -o cluster_size=2M

# A virtual size that is not a multiple of the cluster size.
qemu-img create -q -f qcow2 odd.qcow2 3000001
qio qcow2 odd.qcow2 'write -P 0x44 0 4k' 'write -P 0x45 2990000 10001'
oracle odd

# Preallocated metadata: every L2 table first, data clusters written later.
qemu-img create -q -f qcow2 -o preallocation=metadata prealloc.qcow2 4M
qio qcow2 prealloc.qcow2 'write -P 0x66 3M 64k' 'write -P 0x67 128k 8k' 'write -z 1M 64k'
oracle prealloc

# Written in descending guest order, with zero clusters (v3 zero flag) in between.
qemu-img create -q -f qcow2 random.qcow2 4M
qio qcow2 random.qcow2 'write -P 0x71 3968k 128k' 'write -P 0x72 2M 64k' \
  'write -P 0x73 1234567 5000' 'write -P 0x74 0 64k' 'write -z 2M 64k' 'write -P 0x75 3M 1k'
oracle random

# Extended L2 with partial subcluster writes and zeroed subclusters.
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=128k subcl.qcow2 4M
qio qcow2 subcl.qcow2 'write -P 0x81 4k 4k' 'write -P 0x82 200k 12k' 'write -P 0x83 1M 128k' \
  'write -z 1032k 8k' 'write -P 0x84 3M 4k' 'write -z 3100k 16k'
oracle subcl

# Resized after creation: the L1 grows and moves past the data and L2 tables it maps.
qemu-img create -q -f qcow2 -o cluster_size=2k resized.qcow2 1M
qio qcow2 resized.qcow2 'write -P 0x91 0 256k' 'write -P 0x92 900k 64k'
qemu-img resize -q resized.qcow2 6M
qio qcow2 resized.qcow2 'write -P 0x93 5M 64k' 'write -P 0x94 100k 8k'
oracle resized

# A small cluster size makes the L1 span several clusters when it moves on resize.
qemu-img create -q -f qcow2 -o cluster_size=4k resized-4k.qcow2 1M
qio qcow2 resized-4k.qcow2 'write -P 0xa1 0 300k' 'write -P 0xa2 700k 20k'
qemu-img resize -q resized-4k.qcow2 12M
qio qcow2 resized-4k.qcow2 'write -P 0xa3 10M 64k' 'write -P 0xa4 8k 8k'
oracle resized-4k

# Internal snapshot, then writes: copied L2 tables come after the data they map.
qemu-img create -q -f qcow2 snapshot.qcow2 4M
qio qcow2 snapshot.qcow2 'write -P 0xb1 0 1M' 'write -P 0xb2 2M 512k'
qemu-img snapshot -c snap1 snapshot.qcow2
qio qcow2 snapshot.qcow2 'write -P 0xb3 64k 64k' 'write -P 0xb4 2304k 4k' 'write -P 0xb5 3M 64k'
qemu-img snapshot -c snap2 snapshot.qcow2
qio qcow2 snapshot.qcow2 'write -P 0xb6 0 4k'
oracle snapshot

# Compressed clusters of two L2 tables interleaved in the file, then one table copied to
# the end by a snapshot, as `qemu-img convert -c` leaves some tables after the data: the
# decoder must keep chunks holding the late table's clusters and may let go of those the
# early clusters used up. The late clusters (one byte repeated) compress to a few dozen
# bytes, so some sit inside the sector rounding of an early cluster's length.
late_image() { # late_image NAME COMPRESSION_TYPE
  local name=$1 late=() i j
  qemu-img create -q -f qcow2 -o cluster_size=16k,compression_type="$2" "$name.qcow2" 48M
  for i in 0 1 2 3 4; do
    head -c $((3 << 20)) /dev/urandom | base64 -w 0 | head -c $((4 << 20)) >"late-src$i"
    late+=("write -c -s late-src$i $((i * 4))M 4M")
    for j in 0 1 2 3; do late+=("write -c -P 0x7$j $((((32 + i) << 20) + j * 16384)) 16k"); done
  done
  qio qcow2 "$name.qcow2" "${late[@]}"
  rm -f late-src?
  qemu-img snapshot -c snap1 "$name.qcow2"
  qio qcow2 "$name.qcow2" 'write -P 0x7f 40M 16k'
  oracle "$name"
  python3 "$hack/qcow2-late-check.py" "$name.qcow2"
}
late_image late-zlib zlib
late_image late-zstd zstd

# Discard, then rewrite elsewhere: freed clusters are reused out of guest order.
qemu-img create -q -f qcow2 discard.qcow2 4M
qio qcow2 discard.qcow2 'write -P 0xc1 0 2M' 'discard 256k 1M' 'write -P 0xc2 3M 512k' \
  'write -P 0xc3 512k 64k'
oracle discard

# A real disk: GPT with one ext4 partition filled from a directory.
if command -v sgdisk >/dev/null && command -v mkfs.ext4 >/dev/null; then
  rm -rf gpt-tree gpt.img
  mkdir -p gpt-tree/etc
  echo "vimport corpus" >gpt-tree/etc/motd
  head -c 300000 /dev/urandom >gpt-tree/blob
  truncate -s 8M gpt.img
  sgdisk -q -n 1:2048:0 -t 1:8300 gpt.img >/dev/null
  mkfs.ext4 -q -F -E offset=$((2048 * 512)) -d gpt-tree gpt.img $(((8 * 1024 - 1024 - 17) )) 2>/dev/null
  qemu-img convert -f raw -O qcow2 gpt.img gpt-ext4.qcow2
  oracle gpt-ext4
  rm -rf gpt-tree gpt.img
fi

rm -f base.raw
