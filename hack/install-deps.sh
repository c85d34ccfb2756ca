#!/usr/bin/env bash
# Install every Debian package that vimport's build, tests, demo and benchmarks need.
# Installs only what is missing, runs `apt-get update` at most once, works as root or
# through sudo. Safe to run again: with nothing missing it does nothing and says so.
set -euo pipefail

packages=(
  # build
  build-essential pkg-config clang libclang-rt-14-dev
  libcurl4-openssl-dev libnbd-dev libssl-dev libyaml-dev
  zlib1g-dev libdeflate-dev liblzma-dev libzstd-dev libisal-dev
  # unit tests
  libcriterion-dev
  # e2e tests, demo, benchmarks: the real components
  nginx-light qemu-utils util-linux e2fsprogs fdisk gdisk
  xz-utils zstd gzip bzip2 tar curl openssl python3 file time bc
  genisoimage xfsprogs btrfs-progs cryptsetup-bin nbdkit ipxe lvm2 dmsetup
  # benchmarks (make bench): plots and profiles
  gnuplot-nox linux-perf valgrind
  # static binary (hack/build-static*.sh), container image and podman tests, manifests
  libc-ares-dev autoconf automake libtool dpkg-dev ca-certificates nasm
  podman runc python3-yaml
  # the image's sh and cp, which CDI runs from the importer image (a static busybox)
  busybox-static
  # OpenPGP cross-checks (tests/e2e/test_openpgp.sh): GnuPG makes keys and signatures,
  # gpgv and Sequoia's sqv give the verdicts vimport's must equal
  gnupg gpgv sqv
  # registry source tests and bench: the CNCF distribution registry, an image copier,
  # htpasswd (bcrypt) for its basic auth; python3-jwt/-cryptography sign the test tokens
  docker-registry skopeo apache2-utils python3-jwt python3-cryptography
  # gcs source tests: the stand-in's crc32c (tests/e2e/gcs_standin.py)
  python3-crcmod
  # man pages (docs/man, checked with man --warnings) and the Dockerfile's Debian 12 base
  # image, made locally from this machine's apt sources (tests/e2e/test_dockerfile.sh)
  man-db mmdebstrap
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  echo "install-deps: missing ${missing[*]}; run this script as root or install sudo" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
