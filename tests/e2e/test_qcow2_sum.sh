#!/usr/bin/env bash
# `vimport sum IMAGE.qcow2` hashes the guest content: it must equal the hash of the raw
# image `qemu-img convert -O raw` makes of it, for every image of the qcow2 corpus
# (compressed, v2, extended L2, 512 B / 2 MiB clusters, resized, snapshotted, ...).
# With blksum installed, the raw hash is also checked against it.
set -euo pipefail
: "${VIMPORT:?set VIMPORT to the vimport binary}" "${VIMPORT_TOP:?set VIMPORT_TOP to the repo root}"
command -v qemu-img >/dev/null || { echo "skip: qemu-img not installed" >&2; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
timeout 300 "$VIMPORT_TOP/hack/make-qcow2-corpus.sh" "$work" >/dev/null

failed=0 count=0
for img in "$work"/*.qcow2; do
  name=$(basename "$img" .qcow2)
  got=$(timeout 60 "$VIMPORT" sum "$img" | cut -d' ' -f1)
  want=$(timeout 60 "$VIMPORT" sum "$work/$name.raw" | cut -d' ' -f1)
  if [[ -z "$got" || "$got" != "$want" ]]; then
    echo "FAIL $name: qcow2 $got, raw $want" >&2
    failed=1
  fi
  if command -v blksum >/dev/null; then
    ref=$(timeout 60 blksum "$work/$name.raw" | cut -d' ' -f1)
    [[ "$ref" == "$want" ]] || { echo "FAIL $name: blksum says $ref, vimport $want" >&2; failed=1; }
  fi
  count=$((count + 1))
done
[[ $count -ge 10 ]] || { echo "FAIL: only $count corpus images" >&2; exit 1; }

# A refused image fails with its message, not a hash.
cp "$work/plain.qcow2" "$work/broken.qcow2"
printf '\x02' | dd of="$work/broken.qcow2" bs=1 seek=79 conv=notrunc status=none # corrupt bit
if out=$(timeout 60 "$VIMPORT" sum "$work/broken.qcow2" 2>&1); then
  echo "FAIL: sum accepted an image marked corrupt: $out" >&2
  failed=1
elif ! grep -q "marked corrupt" <<<"$out"; then
  echo "FAIL: unexpected message for a corrupt image: $out" >&2
  failed=1
fi
exit $failed
