#!/usr/bin/env bash
# Benchmark `vimport import` of a qcow2 served by nginx on 127.0.0.1 against what CDI
# does for the same image, plus the read-back vimport also does, in the same run:
#
#   baseline  curl URL | tee scratch | sha256sum          download to scratch, checksum
#             qemu-img convert -t writeback -O raw scratch target
#             vimport sum target                          block hash of the result
#   ours      vimport import (same URL, sha256 checksum): one pass, no scratch, then
#             fsync and an O_DIRECT read-back hash of the target
#
# The image: GPT + ext4, about 1 GiB of files (/usr/share, topped up with random files)
# in 6 GiB virtual, as qcow2; cached under BENCH_DIR so reruns skip building it.
# Prints medians of RUNS runs (baseline per stage), and the ratio ours/baseline.
# The baseline's `vimport sum` reads the target from the page cache, vimport's
# read-back reads it from the disk (O_DIRECT), so the comparison favours the baseline.
#   usage: hack/bench-import.sh [VIMPORT]   (env: RUNS=3, BENCH_DIR=build/bench)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vimport=${1:-$top/build/vimport}
runs=${RUNS:-3}
dir=${BENCH_DIR:-$top/build/bench}
for c in qemu-img curl sgdisk mkfs.ext4 /usr/sbin/nginx openssl bc; do
  command -v "$c" >/dev/null || { echo "bench-import: $c is not installed (make deps)" >&2; exit 1; }
done
mkdir -p "$dir/import-serve"
image=$dir/import-serve/disk-6g.qcow2

# ---- the image (cached) ------------------------------------------------------------------
build_image() {
  local tree=$dir/import-tree raw=$dir/import-6g.raw have need i=0
  rm -rf "$tree" && mkdir -p "$tree"
  # hard links: a real tree of mixed files for free (falls back to a copy across filesystems)
  cp -al /usr/share "$tree/share" 2>/dev/null || cp -a /usr/share "$tree/share"
  have=$(du -sb "$tree" | cut -f1)
  need=$((1 << 30))
  while [ "$have" -lt "$need" ]; do # incompressible top-up, 64 MiB files
    head -c $((64 << 20)) < <(openssl enc -aes-128-ctr -pass "pass:bench-$i" -nosalt -pbkdf2 </dev/zero 2>/dev/null) \
      >"$tree/random-$i.bin"
    have=$((have + (64 << 20))) i=$((i + 1))
  done
  "$top/hack/make-test-image.sh" "$raw" 6144 "$tree"
  qemu-img convert -f raw -O qcow2 "$raw" "$image.tmp"
  mv "$image.tmp" "$image"
  rm -rf "$tree" "$raw"
}
if [ ! -s "$image" ]; then
  echo "bench-import: building $image (once; cached)" >&2
  build_image
fi
checksum=sha256:$(sha256sum "$image" | cut -d' ' -f1)

# ---- nginx -------------------------------------------------------------------------------
work=$(mktemp -d "$dir/import-run.XXXXXX")
state=$work/nginx
cleanup() {
  "$top/tests/e2e/nginx-fixture.sh" stop "$state" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
NGINX_LIFETIME=900 "$top/tests/e2e/nginx-fixture.sh" start "$state" "$dir/import-serve" >/dev/null
# shellcheck disable=SC1091
. "$state/env"
url=http://127.0.0.1:$NGINX_PORT/$(basename "$image")

cat >"$work/spec.yaml" <<EOF
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: bench}
spec:
  source:
    http:
      url: "$url"
      checksum: "$checksum"
vimport:
  terminationMessagePath: $work/termination-log
  target: {path: $work/ours.img}
EOF

now() { date +%s.%N; }
sub() { echo "$1 - $2" | bc -l; }

# one baseline run: appends seconds to the stage arrays
dl=() conv=() hash=() base=() ours=() rss=()
baseline_run() {
  rm -f "$work/scratch.qcow2" "$work/base.img"
  local t0 t1 t2 t3 got
  t0=$(now)
  got=$(curl -sSf "$url" | tee "$work/scratch.qcow2" | sha256sum | cut -d' ' -f1)
  t1=$(now)
  [ "sha256:$got" = "$checksum" ] || { echo "bench-import: baseline download checksum mismatch" >&2; exit 1; }
  qemu-img convert -t writeback -f qcow2 -O raw "$work/scratch.qcow2" "$work/base.img"
  t2=$(now)
  base_hash=$("$vimport" sum "$work/base.img" | cut -d' ' -f1)
  t3=$(now)
  dl+=("$(sub "$t1" "$t0")") conv+=("$(sub "$t2" "$t1")") hash+=("$(sub "$t3" "$t2")")
  base+=("$(sub "$t3" "$t0")")
}

ours_run() {
  rm -f "$work/ours.img" "$work/termination-log" "$work/rss"
  local t0 t1
  t0=$(now)
  /usr/bin/time -f %M -o "$work/rss" "$vimport" import --spec "$work/spec.yaml" 2>"$work/ours.log" ||
    { echo "bench-import: vimport import failed: $(tail -3 "$work/ours.log")" >&2; exit 1; }
  t1=$(now)
  grep -q '"message":"Import Complete"' "$work/termination-log" ||
    { echo "bench-import: vimport import did not complete: $(cat "$work/termination-log")" >&2; exit 1; }
  ours+=("$(sub "$t1" "$t0")") rss+=("$(tail -n 1 "$work/rss")")
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}'; }

cat "$image" >/dev/null # nginx serves both contenders from the page cache
for _ in $(seq "$runs"); do # interleaved, so drift on a noisy machine hits both
  baseline_run
  ours_run
done
# both must have produced the same disk
ours_hash=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vimport"]["blockHash"])' "$work/termination-log")
[ "$ours_hash" = "sha256:$base_hash" ] ||
  { echo "bench-import: results differ: vimport $ours_hash, qemu-img sha256:$base_hash" >&2; exit 1; }

size=$(stat -c %s "$image")
b=$(median "${base[@]}") o=$(median "${ours[@]}")
echo "== vimport import vs CDI's download + convert + hash ($(nproc) CPUs, median of $runs runs)"
echo "   qcow2 $((size >> 20)) MiB from nginx on 127.0.0.1; GPT+ext4, 6 GiB virtual"
printf '%-52s %8s\n' "what" "seconds"
printf '%-52s %8s\n' "baseline: curl | tee scratch | sha256sum" "$(median "${dl[@]}")"
printf '%-52s %8s\n' "baseline: qemu-img convert -t writeback -O raw" "$(median "${conv[@]}")"
printf '%-52s %8s\n' "baseline: vimport sum target (page cache)" "$(median "${hash[@]}")"
printf '%-52s %8s\n' "baseline total" "$b"
printf '%-52s %8s\n' "vimport import (checksum, fsync, O_DIRECT read-back)" "$o"
printf '%-52s %8s\n' "ratio ours / baseline (lower is better)" "$(printf "%.2f" "$(echo "$o / $b" | bc -l)")"
printf '%-52s %8s\n' "vimport import peak RSS MiB (no scratch space used)" "$(($(median "${rss[@]}" | cut -d. -f1) / 1024))"
printf '%-52s %8s\n' "baseline scratch space MiB" "$((size >> 20))"
