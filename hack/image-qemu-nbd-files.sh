#!/usr/bin/env bash
# Debian's qemu-nbd and exactly what the dynamic loader needs to start it, for the
# FROM scratch image: vimport serves vhdx and sparse vmdk through qemu-nbd (pkg/nbd/nbd.c,
# pkg/sniff/local.c), which libnbd finds on PATH.
#
#   hack/image-qemu-nbd-files.sh --list          the files, one absolute path a line
#   hack/image-qemu-nbd-files.sh DIR             copies them to DIR at the same paths
#
# The files: /usr/bin/qemu-nbd, every library of its `ldd` closure at the path ldd names
# (the loader searches those directories when there is no ld.so.cache), and the loader
# at the path its PT_INTERP names. Symbolic links are followed, so the image holds plain
# files. hack/build-static-image.sh (Containerfile.scratch) and the Dockerfile's build
# stage both call this, so the two images carry the same files.
set -euo pipefail

qemu_nbd=${QEMU_NBD:-/usr/bin/qemu-nbd}
die() { echo "image-qemu-nbd-files: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 --list | DIR"
[[ -x $qemu_nbd ]] || die "$qemu_nbd is missing; run hack/install-deps.sh (Debian package qemu-utils)"
command -v readelf >/dev/null || die "readelf is missing; apt-get install binutils"

# The loader the kernel starts: it must exist at exactly this path in the image.
interp=$(readelf -l "$qemu_nbd" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')
[[ $interp == /* ]] || die "$qemu_nbd names no program interpreter; is it a dynamic ELF binary?"

# ldd prints "name => /path (addr)", "/path (addr)" for the loader, and no path for the
# vDSO, which the kernel provides. A missing library would fail in the image, so stop.
ldd_out=$(ldd "$qemu_nbd") || die "ldd $qemu_nbd failed"
if grep -q 'not found' <<<"$ldd_out"; then
  die "$qemu_nbd needs libraries this machine lacks: $(grep 'not found' <<<"$ldd_out" | tr -s ' \t' ' ')"
fi
mapfile -t libs < <(sed -n 's/^[[:space:]]*[^[:space:]]* => \(\/[^[:space:]]*\) (0x[0-9a-f]*)$/\1/p' <<<"$ldd_out")
[[ ${#libs[@]} -gt 0 ]] || die "ldd $qemu_nbd listed no libraries; output: $ldd_out"

files=("$qemu_nbd" "${libs[@]}" "$interp")
if [[ $1 == --list ]]; then
  printf '%s\n' "${files[@]}" | sort -u
  exit 0
fi

dest=$1
[[ -d $dest ]] || die "$dest is not a directory"
for f in $(printf '%s\n' "${files[@]}" | sort -u); do
  mkdir -p "$dest$(dirname "$f")"
  cp -L "$f" "$dest$f" || die "cannot copy $f to $dest$f"
  chmod 755 "$dest$f"
done
