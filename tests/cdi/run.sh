#!/usr/bin/env bash
# tests/cdi/run.sh [CASE...]: run the built container image with podman the way CDI's
# importer pod runs it, case by case (tests/cdi/cases.sh; README.md there says what each
# shows and which CDI code it follows). Builds build/vimport-static and the image once
# (make static; hack/build-static-image.sh), makes the source images once and serves them
# from nginx (HTTP and HTTPS with a test CA) and from a server without Range, all on
# 127.0.0.1. Each case runs bounded (CDI_CASE_TIMEOUT, default 180 s). Prints
# "PASS name (Ns)" or "FAIL name (Ns): <expected vs got>" per case, then
# "cdi: N passed, N failed, N skipped"; exits 1 when any case failed, 77 when the machine
# cannot run the suite (not root, no podman, no loop devices).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export CDI_TOP=$top
limit=${CDI_CASE_TIMEOUT:-180}

ALL_CASES=(size_detection exact_size_qcow2_filesystem exact_size_qcow2_block grown_qcow2
  preallocated_import verify_filesystem verify_block too_big_image blank_filesystem
  blank_filesystem_preallocated blank_block blank_block_preallocated blank_archive
  checksum_mismatch http_404 parallels_refused dmg_refused archive_tar_gz
  hostile_tar_dotdot hostile_tar_absolute hostile_tar_symlink hostile_tar_device
  vhdx_no_range proxy_ca v_flag)

skip() { echo "SKIP: cdi suite: $*" >&2; echo "cdi: 0 passed, 0 failed, ${#ALL_CASES[@]} skipped"; exit 77; }
die() { echo "FAIL: cdi suite setup: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (loop devices, mount, rootful podman)"
for c in podman qemu-img qemu-io mkfs.ext4 losetup blockdev python3 openssl tar; do
  command -v "$c" >/dev/null || skip "$c is not installed (hack/install-deps.sh)"
done
[ -w /dev/loop-control ] || skip "no /dev/loop-control"
[ -x "${NGINX:-/usr/sbin/nginx}" ] || skip "nginx is not installed (hack/install-deps.sh)"

root=$(mktemp -d /var/tmp/vimport-cdi-suite.XXXXXX) || die "mktemp failed"
chmod 755 "$root"
export CDI_ROOT=$root CDI_SRV=$root/srv CDI_RUN_ID=$$
image=localhost/vimport-cdi:$$
# sweep: what a case killed by its timeout may have left (its own trap normally removes
# these): its containers (named cdisuite-<run>-<case>-...), mounts and loop devices under $root.
sweep() {
  local id m l
  for id in $(podman ps -aq --filter "name=^cdisuite-$CDI_RUN_ID-$1" 2>/dev/null); do podman rm -f "$id" >/dev/null 2>&1; done
  for m in $(findmnt -rn -o TARGET | grep "^$root/"); do umount -l "$m" 2>/dev/null; done
  for l in $(losetup -nO NAME,BACK-FILE 2>/dev/null | awk -v r="$root/" 'index($2, r) == 1 {print $1}'); do
    losetup -d "$l" 2>/dev/null
  done
}
cleanup() {
  sweep ""
  [ -n "${norange_pid:-}" ] && kill "$norange_pid" 2>/dev/null
  [ -d "$root/nginx" ] && "$top/tests/e2e/nginx-fixture.sh" stop "$root/nginx"
  podman rmi -f "$image" >/dev/null 2>&1
  rm -rf "$root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the image, built once ------------------------------------------------------------
(cd "$top" && make --no-print-directory static) >"$root/make-static.log" 2>&1 ||
  die "make static failed: $(tail -n 15 "$root/make-static.log")"
"$top/hack/build-static-image.sh" "$top/build" "$image" >"$root/image.log" 2>&1 ||
  die "building the image failed: $(cat "$root/image.log")"
export CDI_IMAGE=$image
read -ra podman_run <<<"${VIMPORT_PODMAN_RUN:-podman --runtime runc --cgroup-manager=cgroupfs run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024}"
probe=$(timeout 60 "${podman_run[@]}" "$image" version 2>&1) || skip "podman cannot run containers here: $probe"

# ---- the sources, made once -----------------------------------------------------------
mib=$((1 << 20))
mkdir -p "$CDI_SRV"
(
  set -e
  cd "$CDI_SRV"
  # 7 MiB: 6 MiB random then 1 MiB of zeros (a hole in the qcow2)
  { head -c $((6 * mib)) /dev/urandom; head -c $mib /dev/zero; } >disk7.raw
  qemu-img convert -q -f raw -O qcow2 disk7.raw disk7.qcow2
  qemu-img convert -q -f raw -O vhdx disk7.raw disk7.vhdx
  # 2 GiB virtual, data at the start, the middle and the last MiB
  qemu-img create -q -f qcow2 exact.qcow2 2G
  qemu-io -f qcow2 -c "write -P 0x5a 0 4M" -c "write -P 0xa5 1G 4M" -c "write -P 0x33 2047M 1M" exact.qcow2 >/dev/null
  # 64 MiB virtual, some data: too big for a 32Mi DataVolume
  qemu-img create -q -f qcow2 big.qcow2 64M
  qemu-io -f qcow2 -c "write -P 0x11 0 1M" big.qcow2 >/dev/null
  # an odd virtual size for cdi-image-size-detection
  qemu-img create -q -f qcow2 odd.qcow2 $((100 * mib + 1536))
  # Parallels and DMG, as hack/make-refused-corpus.sh makes them (qemu-img knows a DMG
  # by its ".dmg" name only)
  "$top/hack/make-refused-corpus.sh" "$root/refused" >/dev/null
  cp "$root/refused/parallels.img" parallels.img
  cp "$root/refused/dmg.img" disk.dmg
  # an archive and the tree it holds; hostile tars (tests/cdi/cdi.py hostile-tar)
  mkdir -p "$root/tree/dir/sub"
  echo "top level" >"$root/tree/top.txt"
  echo "in a dir" >"$root/tree/dir/a.txt"
  head -c 100000 /dev/urandom >"$root/tree/dir/sub/b.bin"
  tar -C "$root/tree" -czf tree.tar.gz .
  for k in dotdot absolute symlink device; do python3 "$here/cdi.py" hostile-tar "$k" "hostile-$k.tar.gz"; done
  chmod -R a+rX "$CDI_SRV" "$root/tree"
) >"$root/fixtures.log" 2>&1 || die "making the source images failed: $(tail -n 10 "$root/fixtures.log")"

# ---- the servers (127.0.0.1 only, each bounded in life) -------------------------------
NGINX_LIFETIME=$((limit * ${#ALL_CASES[@]} + 300)) "$top/tests/e2e/nginx-fixture.sh" start "$root/nginx" "$CDI_SRV" \
  >"$root/nginx.log" 2>&1 || die "nginx did not start: $(cat "$root/nginx.log")"
# shellcheck disable=SC1091
. "$root/nginx/env"
chmod -R a+rX "$TEST_CA_DIR"
export NGINX_URL=http://127.0.0.1:$NGINX_PORT NGINX_TLS_URL=https://localhost:$NGINX_TLS_PORT TEST_CA_DIR
python3 "$here/cdi.py" serve-norange "$CDI_SRV" "$root/norange.port" $((limit * ${#ALL_CASES[@]} + 300)) \
  </dev/null >"$root/norange.log" 2>&1 &
norange_pid=$!
for _ in $(seq 100); do [ -s "$root/norange.port" ] && break; sleep 0.1; done
[ -s "$root/norange.port" ] || die "the server without Range did not start in 10 s: $(cat "$root/norange.log")"
NORANGE_URL=http://127.0.0.1:$(cat "$root/norange.port")
export NORANGE_URL

# ---- the cases ------------------------------------------------------------------------
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("${ALL_CASES[@]}")
passed=0 failed=0 failed_names=()
suite_start=$(date +%s)
for c in "${cases[@]}"; do
  start=$(date +%s)
  timeout --kill-after=15 "$limit" bash "$here/case.sh" "$c" >"$root/case.log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  sweep "$c"
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "PASS $c (${took}s)"
  else
    failed=$((failed + 1))
    failed_names+=("$c")
    case $rc in
      124 | 137) why="timed out after ${limit}s" ;;
      *) why=$(grep -m1 '^FAIL: ' "$root/case.log" | cut -c7-900) ;;
    esac
    [ -n "$why" ] || why="exit $rc: $(tail -n 3 "$root/case.log")"
    echo "FAIL $c (${took}s): $why"
  fi
done
echo "cdi: $passed passed, $failed failed, 0 skipped ($(($(date +%s) - suite_start))s)"
[ "$failed" -eq 0 ] || { echo "cdi: failed: ${failed_names[*]}"; exit 1; }
