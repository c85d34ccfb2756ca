#!/usr/bin/env bash
# Build the FROM scratch image (Containerfile.scratch) from build/vimport-static and the
# host's CA bundle, with podman, without any registry:
#
#   hack/build-static-image.sh [BUILD] [TAG]     (defaults: build localhost/vimport:latest;
#                                                  `make image` calls it)
#
# The context is a directory holding only those files, Debian's static busybox (for the
# sh and cp CDI runs from the importer image) and Debian's qemu-nbd with the libraries
# and loader it needs (hack/image-qemu-nbd-files.sh: vimport reads vhdx and sparse vmdk
# through it), so nothing else of the tree can end up in the image.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
tag=${2:-${VIMPORT_IMAGE:-localhost/vimport:latest}}
# deploy/ refers to the version tag, so a cluster that loads this image finds it.
cd "$top"
version=$(sed -n 's/^#define VIMPORT_VERSION "\(.*\)"/\1/p' cmd/vimport/commands.h)

die() { echo "build-static-image: $*" >&2; exit 1; }

command -v podman >/dev/null || die "podman is not installed; run hack/install-deps.sh (podman runc)"
[[ -x $build/vimport-static ]] || die "$build/vimport-static is missing; run make static"
ca=/etc/ssl/certs/ca-certificates.crt
[[ -s $ca ]] || die "$ca is missing; apt-get install ca-certificates"
busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
  die "$busybox is missing or not static; apt-get install busybox-static"
[[ -x /usr/bin/qemu-nbd ]] ||
  die "/usr/bin/qemu-nbd is missing; the image needs it for vhdx and sparse vmdk: run hack/install-deps.sh (qemu-utils)"

ctx=$build/image-context
rm -rf "$ctx"
mkdir -p "$ctx"
# Debug info stays in build/vimport-static; the image gets the same code without it.
strip -o "$ctx/vimport-static" "$build/vimport-static"
cp "$ca" "$ctx/ca-certificates.crt"
cp "$busybox" "$ctx/busybox"
chmod 755 "$ctx/vimport-static" "$ctx/busybox"
chmod 644 "$ctx/ca-certificates.crt"
hack/image-links.sh "$ctx/links"
mkdir "$ctx/qemu-nbd"
hack/image-qemu-nbd-files.sh "$ctx/qemu-nbd" || die "copying qemu-nbd and its libraries failed"
podman build -q -f Containerfile.scratch -t "$tag" "$ctx" >/dev/null ||
  die "podman build of $tag failed"
if [[ $tag == localhost/vimport:latest && -n $version ]]; then
  podman tag "$tag" "localhost/vimport:$version"
  tag="$tag and localhost/vimport:$version"
fi
echo "build-static-image: built $tag" >&2
