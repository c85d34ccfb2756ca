#!/usr/bin/env bash
# The README's `podman build -t vimport .`, for real: the Dockerfile's two-stage build
# (hack/install-deps.sh and `make static` in a Debian 12 build stage, then FROM scratch)
# from a base image made here, then the result through test_container.sh, the tests the
# scratch image passes. No base image can be pulled on this machine, so the one the
# Dockerfile names (FROM ... AS build) is made locally: mmdebstrap from this machine's own
# apt sources, imported with podman under that name. Where no apt source answers, this
# test fails and says so: it is never skipped for it.
# Expensive (the build stage installs every package of install-deps.sh and builds curl
# and libnbd from source): minutes; it prints the time of each step.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "podman runs here as root only"
require_cmd podman mmdebstrap
tmp=$(e2e_tmpdir)
# podman's global flags on this machine (runc, cgroupfs), as VIMPORT_PODMAN_RUN's in
# test_container.sh; the build's RUN steps get the same explicit ulimits.
read -ra PODMAN <<<"${VIMPORT_PODMAN:-podman --runtime runc --cgroup-manager=cgroupfs}"
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
top=$VIMPORT_TOP
base=$(sed -n 's/^FROM \([^ ]*\) AS build$/\1/p' "$top/Dockerfile")
[ -n "$base" ] || fail "the Dockerfile has no 'FROM IMAGE AS build' line"

# 1. The base image: Debian 12 minbase from the apt sources this machine uses (every
# .list/.sources file; the build stage's apt-get then uses them too).
sources=()
[ -s /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list && sources+=(/etc/apt/sources.list)
for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || fail "no apt source on this machine (/etc/apt/sources.list[.d]): the base image cannot be made"
t0=$(date +%s)
timeout 600 mmdebstrap --variant=minbase --mode=root --format=tar bookworm "$tmp/base.tar" \
  "${sources[@]}" >"$tmp/mmdebstrap.log" 2>&1 ||
  fail "mmdebstrap from ${sources[*]} failed (is an apt source reachable?): $(tail -n 5 "$tmp/mmdebstrap.log")"
# the name goes back to the image that held it before, if any, and ours is removed
prev_id=$(podman image inspect --format '{{.Id}}' "$base" 2>/dev/null || true)
base_id=$(podman import -q "$tmp/base.tar") || fail "podman import of the base image failed"
rm -f "$tmp/base.tar"
e2e_on_exit "podman rmi -f '$base_id' >/dev/null 2>&1; [ -z '$prev_id' ] || podman tag '$prev_id' '$base'"
podman tag "$base_id" "$base"
echo "test_dockerfile: base image $base from mmdebstrap in $(($(date +%s) - t0)) s" >&2

# 2. The two-stage build, as the README says, from the source tree.
image=localhost/vimport-dockerfile-e2e:$$
t1=$(date +%s)
timeout 2400 "${PODMAN[@]}" build --layers=false --network host "${LIMITS[@]}" -f "$top/Dockerfile" -t "$image" "$top" \
  >"$tmp/build.log" 2>&1 || fail "podman build of the Dockerfile failed: $(tail -n 20 "$tmp/build.log")"
e2e_on_exit "podman rmi -f '$image' >/dev/null 2>&1"
echo "test_dockerfile: podman build of the Dockerfile in $(($(date +%s) - t1)) s" >&2

# 3. The same container tests as the scratch image.
t2=$(date +%s)
rc=0
VIMPORT_E2E_IMAGE=$image bash "$top/tests/e2e/test_container.sh" || rc=$?
echo "test_dockerfile: test_container.sh on the Dockerfile's image in $(($(date +%s) - t2)) s" >&2
case $rc in
  0) pass ;;
  77) fail "test_container.sh skipped the Dockerfile's image: podman cannot run containers here" ;;
  *) fail "test_container.sh failed on the Dockerfile's image (exit $rc)" ;;
esac
