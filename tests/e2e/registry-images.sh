#!/usr/bin/env bash
# registry-images.sh: the containerDisk images of the registry source's tests, built once
# and cached, then pushed to the registries of tests/e2e/registry-fixture.sh.
#
#   registry-images.sh build CACHE_DIR          make everything (no-op when CACHE_DIR/done)
#   registry-images.sh push CACHE_DIR HOST:PORT [SKOPEO_DEST_ARGS...]
#                                               push every image (below) to that registry;
#                                               SKOPEO_DEST_ARGS e.g. --dest-cert-dir DIR
#                                               --dest-creds U:P or --dest-tls-verify=false;
#                                               REGISTRY_PUSH_ONLY="disk/gzip ..." for some
#   registry-images.sh tamper STORAGE_ROOT DIGEST
#                                               flip one byte in the middle of that blob in
#                                               a registry's storage (its size stays)
#
# The disks (CACHE_DIR/disks): disk.qcow2 (16 MiB virtual, 5 MiB of random data, made
# by qemu-img convert), disk.raw (qemu-img convert -O raw of it: the byte-for-byte
# oracle), disk-arm64.qcow2/.raw (other random data: tells which platform was picked),
# disk2.qcow2 (a second disk). Images are built with `podman build` (FROM scratch,
# ADD disk.qcow2 /disk/, as KubeVirt's containerDisk docs do) in a podman storage of
# their own under CACHE_DIR (vfs driver: nothing of the machine's podman storage is
# touched), copied to an OCI layout with skopeo; the hostile ones are written by
# tests/e2e/regcraft.py. Pushed as (REPO:v1):
#   disk/gzip       OCI manifest, one gzip layer: /disk/disk.qcow2
#   disk/zstd       the same disk, zstd layer (skopeo --dest-compress-format zstd)
#   disk/docker     the same as a Docker schema 2 manifest (--format v2s2)
#   disk/multi      Docker schema 2, three layers: disk in the lowest, then /extra/notes.txt,
#                   then /etc/hostname
#   disk/index      OCI index: linux/amd64 (disk.qcow2) and linux/arm64 (disk-arm64.qcow2)
#   disk/list       the same as a Docker manifest list (v2s2)
#   disk/nodisk     no /disk at all (/etc/hostname only)
#   disk/twofiles   /disk/disk.qcow2 and /disk/disk2.qcow2 in one layer
#   disk/env        ENV INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE=u1.small and
#                   PREFERENCE_KUBEVIRT_IO_DEFAULT_PREFERENCE=fedora, OTHER=1
#   disk/bootc      LABEL containers.bootc=1
#   disk/ostree     LABEL ostree.bootable=1
#   public/gzip     = disk/gzip (the token issuer grants anonymous pull on public/...)
#   hostile/tampered    one gzip layer used by no other image (/disk/tampered.qcow2): a
#                       test alters it on the registry's storage with `tamper`
#   hostile/dotdot hostile/absolute hostile/symlink hostile/hardlink hostile/bomb
#                       regcraft.py recipes (bomb: 1 GiB of zeros in a ~1 MiB gzip layer)
# CACHE_DIR/disk.sha256: the sha256 of disk.qcow2 (the disk file's bytes in every image).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "registry-images: $*" >&2; exit 1; }

podman_in() { # podman with a storage of its own under $cache (runroot: podman wants it short)
  podman --root "$cache/storage" --runroot "$runroot" --storage-driver vfs \
    --runtime runc --cgroup-manager=cgroupfs "$@"
}

storage_ref() { echo "containers-storage:[vfs@$cache/storage+$runroot]$1"; }

make_disks() {
  local d=$cache/disks
  mkdir -p "$d"
  # 16 MiB virtual; random data at 1 MiB (3 MiB) and at 10 MiB (2 MiB), zeros elsewhere
  make_one() { # make_one NAME SEED
    qemu-img create -q -f raw "$d/$1.src" 16M
    openssl enc -aes-128-ctr -pass "pass:$2" -nosalt -pbkdf2 </dev/zero 2>/dev/null |
      head -c 5M >"$d/$1.rand" || true
    dd if="$d/$1.rand" of="$d/$1.src" bs=1M count=3 seek=1 conv=notrunc status=none
    dd if="$d/$1.rand" of="$d/$1.src" bs=1M skip=3 count=2 seek=10 conv=notrunc status=none
    qemu-img convert -q -f raw -O qcow2 "$d/$1.src" "$d/$1.qcow2"
    qemu-img convert -q -f qcow2 -O raw "$d/$1.qcow2" "$d/$1.raw"
    rm -f "$d/$1.src" "$d/$1.rand"
  }
  make_one disk regtest-amd64
  make_one disk-arm64 regtest-arm64
  make_one disk2 regtest-second
  sha256sum "$d/disk.qcow2" | cut -d' ' -f1 >"$cache/disk.sha256"
}

# build NAME [PODMAN_BUILD_ARGS...] <<CONTAINERFILE: podman build in a context holding the
# disks, then skopeo copy (with $LAYOUT_ARGS) to the OCI layout (gzip layers by default)
build() {
  local name=$1 ctx=$cache/ctx
  shift
  mkdir -p "$ctx"
  cp -n "$cache/disks/disk.qcow2" "$cache/disks/disk2.qcow2" "$cache/disks/disk-arm64.qcow2" "$ctx/"
  [ -e "$ctx/tampered.qcow2" ] || cp "$cache/disks/disk.qcow2" "$ctx/tampered.qcow2"
  echo "vimport registry test" >"$ctx/notes.txt"
  echo "containerdisk" >"$ctx/hostname"
  cat >"$ctx/Containerfile.$name"
  podman_in build -q --format oci "$@" -f "$ctx/Containerfile.$name" \
    -t "localhost/regtest/$name:v1" "$ctx" >/dev/null ||
    die "podman build of $name failed"
  # shellcheck disable=SC2086 # LAYOUT_ARGS: skopeo options, split on spaces
  skopeo copy -q ${LAYOUT_ARGS:-} "$(storage_ref "localhost/regtest/$name:v1")" "oci:$cache/oci:$name" ||
    die "skopeo copy of $name to the OCI layout failed"
}

build_all() {
  cache=$1
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock -w 600 9 || die "another build holds $cache/.lock for 10 minutes"
  [ -e "$cache/done" ] && return 0
  runroot=$(mktemp -d /tmp/regimg.XXXXXX)
  # shellcheck disable=SC2064 # $runroot is fixed now
  trap "rm -rf '$runroot'" EXIT
  rm -rf "$cache/oci" "$cache/crafted" "$cache/index" "$cache/list"
  make_disks
  build gzip <<'EOF'
FROM scratch
ADD disk.qcow2 /disk/
EOF
  # a layer of its own (another file mode), else skopeo's blob cache substitutes the gzip
  # blob of disk/gzip (same uncompressed digest) when it pushes disk/zstd
  LAYOUT_ARGS="--dest-compress-format zstd" build zstd <<'EOF'
FROM scratch
COPY --chmod=0640 disk.qcow2 /disk/
EOF
  build multi <<'EOF'
FROM scratch
ADD disk.qcow2 /disk/
ADD notes.txt /extra/
ADD hostname /etc/
EOF
  build nodisk <<'EOF'
FROM scratch
ADD hostname /etc/
EOF
  build twofiles <<'EOF'
FROM scratch
COPY disk.qcow2 disk2.qcow2 /disk/
EOF
  build env <<'EOF'
FROM scratch
ENV INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE=u1.small
ENV PREFERENCE_KUBEVIRT_IO_DEFAULT_PREFERENCE=fedora
ENV OTHER=1
ADD disk.qcow2 /disk/
EOF
  build bootc <<'EOF'
FROM scratch
LABEL containers.bootc=1
ADD disk.qcow2 /disk/
EOF
  build ostree <<'EOF'
FROM scratch
LABEL ostree.bootable=1
ADD disk.qcow2 /disk/
EOF
  build tampered <<'EOF'
FROM scratch
ADD tampered.qcow2 /disk/
EOF
  build amd64 --platform linux/amd64 <<'EOF'
FROM scratch
ADD disk.qcow2 /disk/
EOF
  build arm64 --platform linux/arm64 <<'EOF'
FROM scratch
ADD disk-arm64.qcow2 /disk/disk.qcow2
EOF
  podman_in manifest rm localhost/regtest/index:v1 >/dev/null 2>&1 || true
  podman_in manifest create localhost/regtest/index:v1 >/dev/null
  podman_in manifest add localhost/regtest/index:v1 "$(storage_ref localhost/regtest/amd64:v1)" >/dev/null
  podman_in manifest add localhost/regtest/index:v1 "$(storage_ref localhost/regtest/arm64:v1)" >/dev/null
  podman_in manifest push -q --all localhost/regtest/index:v1 "oci:$cache/index:latest" >/dev/null ||
    die "podman manifest push of the index failed"
  local r
  for r in dotdot absolute symlink hardlink plaintar; do
    /usr/bin/python3 "$here/regcraft.py" "$cache/crafted/$r" "$r" "$cache/disks/disk.qcow2"
  done
  /usr/bin/python3 "$here/regcraft.py" "$cache/crafted/bomb" bomb none --bomb-bytes $((1 << 30))
  # the storage is only a step on the way: the OCI layouts are what is pushed
  rm -rf "$cache/storage" "$runroot" "$cache/ctx"
  touch "$cache/done"
}

# push_one REPO SKOPEO_ARGS... SRC: copy SRC to $host/REPO:v1, unless $only leaves REPO out
push_one() {
  local repo=$1
  shift
  [ -z "$only" ] || [[ " $only " == *" $repo "* ]] || return 0
  skopeo copy -q --retry-times 2 "${dest_args[@]}" "$@" "docker://$host/$repo:v1" ||
    die "skopeo copy to $host/$repo failed"
}

push_all() {
  cache=$1 host=$2
  shift 2
  dest_args=("$@")
  only=${REGISTRY_PUSH_ONLY:-}
  [ -e "$cache/done" ] || die "$cache is not built (registry-images.sh build $cache)"
  push_one disk/gzip "oci:$cache/oci:gzip"
  push_one public/gzip "oci:$cache/oci:gzip"
  push_one disk/zstd --dest-compress-format zstd "oci:$cache/oci:zstd"
  push_one disk/docker --format v2s2 "oci:$cache/oci:gzip"
  push_one disk/multi --format v2s2 "oci:$cache/oci:multi"
  push_one disk/index --all "oci:$cache/index:latest"
  push_one disk/list --all --format v2s2 "oci:$cache/index:latest"
  local n
  for n in nodisk twofiles env bootc ostree; do
    push_one "disk/$n" "oci:$cache/oci:$n"
  done
  push_one hostile/tampered "oci:$cache/oci:tampered"
  for n in dotdot absolute symlink hardlink bomb; do
    push_one "hostile/$n" "oci:$cache/crafted/$n:latest"
  done
}

tamper() {
  local root=$1 digest=$2 blob size
  blob=$root/docker/registry/v2/blobs/sha256/${digest:7:2}/${digest:7}/data
  [ -f "$blob" ] || die "no blob $digest under $root"
  size=$(stat -c %s "$blob")
  # XOR one byte in the middle with 0xff: same size, other bytes
  python3 - "$blob" $((size / 2)) <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xFF]))
EOF
}

case "${1:-}" in
  build) [ $# -eq 2 ] || die "usage: $0 build CACHE_DIR"; build_all "$2" ;;
  push) [ $# -ge 3 ] || die "usage: $0 push CACHE_DIR HOST:PORT [SKOPEO_ARGS...]"; shift; push_all "$@" ;;
  tamper) [ $# -eq 3 ] || die "usage: $0 tamper STORAGE_ROOT DIGEST"; tamper "$2" "$3" ;;
  *) die "usage: $0 build CACHE_DIR | push CACHE_DIR HOST:PORT [SKOPEO_ARGS...] | tamper STORAGE_ROOT DIGEST" ;;
esac
