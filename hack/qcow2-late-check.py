#!/usr/bin/env python3
"""Check that a corpus image made by make-qcow2-corpus.sh has the layout its tests need.

usage: qcow2-late-check.py IMAGE.qcow2

The image must have an L2 table after compressed clusters it maps ("late"), and at least
one of those clusters must start inside the byte range that the table entry of another,
earlier-known cluster gives (its length rounded up to whole 512-byte sectors). A decoder
that trusted those rounded lengths would think that late cluster's bytes were used up.
Exits 1, saying which property is missing, so the corpus cannot silently stop testing it.
"""
import struct
import sys


def compressed_ranges(f, cluster_bits, l2_offset):
    """(host start, rounded end) of every compressed cluster an L2 table maps."""
    cs = 1 << cluster_bits
    f.seek(l2_offset)
    table = f.read(cs)
    x = 62 - (cluster_bits - 8)
    out = []
    for (entry,) in struct.iter_unpack(">Q", table):
        if not entry & (1 << 62):
            continue
        host = entry & ((1 << x) - 1)
        sectors = (entry >> x) & ((1 << (cluster_bits - 8)) - 1)
        out.append((host, (host & ~511) + (sectors + 1) * 512))
    return out


def main():
    path = sys.argv[1]
    with open(path, "rb") as f:
        hdr = f.read(104)
        cluster_bits = struct.unpack(">I", hdr[20:24])[0]
        l1_size = struct.unpack(">I", hdr[36:40])[0]
        l1_offset = struct.unpack(">Q", hdr[40:48])[0]
        f.seek(l1_offset)
        l1 = [e & 0x00FFFFFFFFFFFE00 for (e,) in struct.iter_unpack(">Q", f.read(8 * l1_size))]
        tables = {l2: compressed_ranges(f, cluster_bits, l2) for l2 in l1 if l2}
    late = {l2: r for l2, r in tables.items() if r and l2 > max(end for _, end in r)}
    if not late:
        sys.exit(f"{path}: no L2 table comes after the compressed clusters it maps")
    early = [r for l2, rs in tables.items() if l2 not in late for r in rs]
    inside = [h for rs in late.values() for h, _ in rs
              if any(start < h < end for start, end in early)]
    if not inside:
        sys.exit(f"{path}: no late cluster starts inside an early cluster's rounded length")
    print(f"{path}: {len(late)} late L2 table(s); {len(inside)} late cluster(s) start "
          "inside an early cluster's rounded length")


main()
