#!/usr/bin/env bash
# The registry workload of `make bench` (issue 22, R1): W1 (hack/bench-images.sh's
# w1.qcow2) as a containerDisk with one gzip layer, built once and cached, served by
# Debian's docker-registry over TLS on 127.0.0.1 (tests/e2e/registry-fixture.sh, anon
# mode).
#
#   hack/bench-registry.sh image BENCH_DIR W1_QCOW2     build the image (cached); print
#                                                       its OCI layout directory
#   hack/bench-registry.sh start STATE_DIR LAYOUT       start the registry, push the image
#                                                       as bench/w1:v1; print the registry
#                                                       fixture's env file
#   hack/bench-registry.sh stop STATE_DIR
#
# The image: `podman build` (FROM scratch, ADD w1.qcow2 /disk/, as KubeVirt's
# containerDisk docs do) in a podman storage of its own (vfs, removed after), copied by
# skopeo into an OCI layout with a gzip layer. Cached as BENCH_DIR/registry-w1-<key>,
# <key> from this script and w1.qcow2's size and time; older ones are removed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/bench-lib.sh
. "$top/hack/bench-lib.sh"

image() {
  local dir=$1 qcow2=$2 key layout runroot
  [ -s "$qcow2" ] || bench_die "no $qcow2 (hack/bench-images.sh W1)"
  key=$( { cat "$top/hack/bench-registry.sh"; stat -c '%s %Y' "$qcow2"; } | sha256sum | cut -c1-12)
  layout=$dir/registry-w1-$key
  if [ -e "$layout/done" ]; then echo "$layout/oci"; return 0; fi
  local old
  for old in "$dir"/registry-w1-*; do [ "$old" = "$layout" ] || rm -rf "$old"; done
  echo "bench: making the W1 containerDisk (once; cached in $layout)" >&2
  rm -rf "$layout" && mkdir -p "$layout/ctx"
  runroot=$(mktemp -d /tmp/benchreg.XXXXXX) # podman wants a short runroot
  ln "$qcow2" "$layout/ctx/w1.qcow2" 2>/dev/null || cp "$qcow2" "$layout/ctx/w1.qcow2"
  printf 'FROM scratch\nADD w1.qcow2 /disk/\n' >"$layout/ctx/Containerfile"
  local podman=(podman --root "$layout/storage" --runroot "$runroot" --storage-driver vfs
    --runtime runc --cgroup-manager=cgroupfs)
  "${podman[@]}" build -q --format oci -t localhost/bench/w1:v1 "$layout/ctx" >/dev/null ||
    bench_die "podman build of the W1 containerDisk failed"
  skopeo copy -q "containers-storage:[vfs@$layout/storage+$runroot]localhost/bench/w1:v1" \
    "oci:$layout/oci:w1" || bench_die "skopeo copy of the W1 containerDisk failed"
  rm -rf "$layout/storage" "$runroot" "$layout/ctx"
  touch "$layout/done"
  echo "$layout/oci"
}

start() {
  local state=$1 layout=$2
  REGISTRY_LIFETIME=${REGISTRY_LIFETIME:-7200} "$top/tests/e2e/registry-fixture.sh" start "$state" anon >/dev/null
  # shellcheck disable=SC1091
  . "$state/env"
  skopeo copy -q --dest-cert-dir "$REGISTRY_CA_DIR" "oci:$layout:w1" "docker://$REGISTRY_ANON/bench/w1:v1" ||
    bench_die "pushing the W1 containerDisk to the registry failed"
  echo "$state/env"
}

case "${1:-}" in
  image) [ $# -eq 3 ] || bench_die "usage: $0 image BENCH_DIR W1_QCOW2"; image "$2" "$3" ;;
  start) [ $# -eq 3 ] || bench_die "usage: $0 start STATE_DIR LAYOUT"; start "$2" "$3" ;;
  stop) [ $# -eq 2 ] || bench_die "usage: $0 stop STATE_DIR"; "$top/tests/e2e/registry-fixture.sh" stop "$2" ;;
  *) bench_die "usage: $0 image BENCH_DIR W1_QCOW2 | start STATE_DIR LAYOUT | stop STATE_DIR" ;;
esac
