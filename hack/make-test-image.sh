#!/usr/bin/env bash
# Make a real disk image: a GPT partition table and one ext4 partition filled from a
# directory with mkfs.ext4 -d (no loop device, no mount, no root needed).
#   usage: hack/make-test-image.sh OUT.img [SIZE_MIB=64] [SOURCE_DIR=/usr/share/common-licenses]
# The image is raw; most of it is zeros (holes), as with a real freshly built disk.
set -euo pipefail
out=${1:?usage: make-test-image.sh OUT.img [SIZE_MIB] [SOURCE_DIR]}
size_mib=${2:-64}
src=${3:-/usr/share/common-licenses}
[ "$size_mib" -ge 8 ] || { echo "make-test-image: SIZE_MIB must be at least 8" >&2; exit 2; }

rm -f "$out"
truncate -s "${size_mib}M" "$out"
# one Linux partition from 1 MiB to the end of the disk, leaving the backup GPT its 1 MiB
sgdisk --clear --disk-guid=5eed0000-0000-4000-8000-000000000001 --new=1:2048:-1M \
  --typecode=1:8300 --change-name=1:root --partition-guid=1:5eed0000-0000-4000-8000-000000000002 "$out" >/dev/null
part_mib=$((size_mib - 2))
# A fixed UUID and hash seed, and a fixed time, keep the image the same from run to run.
E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext4 -q -F -b 4096 -U 3a5c1e0e-1111-4222-8333-444455556666 \
  -E offset=1048576,hash_seed=3a5c1e0e-1111-4222-8333-444455556666,lazy_itable_init=0,nodiscard \
  -L root -d "$src" "$out" "${part_mib}M" 2>&1 | { grep -v "^$" || true; } >&2
