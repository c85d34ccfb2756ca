#!/usr/bin/env bash
# Make one small image of every disk format qemu-img knows and CDI refuses
# (pkg/image/qemu.go isSupportedFormat: only raw, qcow2, vmdk, vdi, vpc, vhdx pass).
#   usage: hack/make-refused-corpus.sh OUTDIR
#
# OUTDIR gets NAME.img files and corpus.tsv, one line per image:
#   FILE  FORMAT  VIRTUAL_SIZE
# where FORMAT is what `qemu-img info` calls the file (checked here, so the corpus is
# what qemu sees, not what vimport thinks) and VIRTUAL_SIZE its virtual size in bytes.
#   qcow, qed, parallels, luks   made by qemu-img create
#   bochs, cloop                 headers written here (qemu-img cannot create them), as
#                                qemu's block/bochs.c and block/cloop.c read them
#   dmg                          a UDIF "koly" trailer behind raw data (not checked with
#                                qemu-img, which knows a DMG only by a ".dmg" name)
set -euo pipefail
out=${1:?usage: make-refused-corpus.sh OUTDIR}
command -v qemu-img >/dev/null || { echo "make-refused-corpus: qemu-img is not installed" >&2; exit 2; }
mkdir -p "$out"
cd "$out"
: >corpus.tsv

qemu-img create -q -f qcow qcow.img 16M
qemu-img create -q -f qed qed.img 16M
qemu-img create -q -f parallels parallels.img 16M
# qemu-img 7.2 sometimes fails its PBKDF2 calibration on a busy 2-core VM: retry.
for try in 1 2 3 4 5; do
  qemu-img create -q -f luks --object secret,id=s0,data=pw -o key-secret=s0,iter-time=10 \
    luks.img 16M 2>/dev/null && break
  [ "$try" -lt 5 ] || exit 1
done

python3 - <<'EOF'
import struct
# bochs "Redolog"/"Growing" v2: magic, type, subtype, version, header size, catalog
# entries, bitmap size, extent size, reserved, disk size; then the catalog (all free).
disk = 16 << 20
extent = 512 * 1024
catalog = disk // extent
hdr = struct.pack("<32s16s16sIIIIIIQ", b"Bochs Virtual HD Image", b"Redolog", b"Growing",
                  0x00020000, 512, catalog, 1, extent, 0, disk)
with open("bochs.img", "wb") as f:
    f.write(hdr.ljust(512, b"\0") + b"\xff\xff\xff\xff" * catalog)
# cloop v2.0: the shell preamble padded to 128 bytes, block size and block count (big
# endian), then n_blocks + 1 offsets (big endian u64), each block a zlib stream.
import zlib
block = 64 * 1024
nblocks = 4
preamble = (b"#!/bin/sh\n#V2.0 Format\n"
            b"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n").ljust(128, b"\0")
data = zlib.compress(bytes(block))
first = 128 + 8 + 8 * (nblocks + 1)
offsets = [first + i * len(data) for i in range(nblocks + 1)]
with open("cloop.img", "wb") as f:
    f.write(preamble + struct.pack(">II", block, nblocks))
    f.write(b"".join(struct.pack(">Q", o) for o in offsets))
    f.write(data * nblocks)
# UDIF: raw data, then the 512-byte koly trailer (big endian): signature, version 4,
# header size 512, ..., sector count at 492.
sectors = 2048
koly = bytearray(512)
struct.pack_into(">4sII", koly, 0, b"koly", 4, 512)
struct.pack_into(">Q", koly, 492, sectors)
with open("dmg.img", "wb") as f:
    f.write(bytes(range(256)) * 4 + bytes(koly))
EOF

for name in qcow qed parallels luks bochs cloop; do
  info=$(qemu-img info --output=json "$name.img")
  fmt=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])' <<<"$info")
  size=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])' <<<"$info")
  [ "$fmt" = "$name" ] || { echo "make-refused-corpus: qemu-img calls $name.img '$fmt'" >&2; exit 1; }
  printf '%s.img\t%s\t%s\n' "$name" "$fmt" "$size" >>corpus.tsv
done
# qemu's dmg driver needs a ".dmg" name to probe and a resource plist to open, so the
# trailer is not cross-checked with qemu-img: its layout is the one block/dmg.c reads.
printf 'dmg.img\tdmg\t%s\n' $((2048 * 512)) >>corpus.tsv
