#!/usr/bin/env bash
# Benchmark `vimport sum` against `openssl dgst -sha256` on the same files, in the same
# run, and print ratios (medians of RUNS runs; these machines are noisy, so absolute
# numbers mean little). Also: a 100 GiB sparse file, and peak RSS on a 4 GiB file.
#   usage: hack/bench-sum.sh [VIMPORT]   (env: RUNS=5, BENCH_DIR=build/bench)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vimport=${1:-$top/build/vimport}
runs=${RUNS:-5}
dir=${BENCH_DIR:-$top/build/bench}
mkdir -p "$dir"

random=$dir/random-1g.img
if [ ! -s "$random" ] || [ "$(stat -c %s "$random")" -ne $((1 << 30)) ]; then
  # AES-CTR over zeros: incompressible bytes, much faster than /dev/urandom
  # head closes the pipe at 1 GiB and openssl dies of SIGPIPE: expected
  { openssl enc -aes-128-ctr -pass pass:vimport-bench -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } |
    head -c $((1 << 30)) >"$random"
fi
sparse=$dir/sparse-100g.img
rm -f "$sparse" && truncate -s 100G "$sparse"
big=$dir/data-4g.img
if [ ! -s "$big" ] || [ "$(stat -c %s "$big")" -ne $((4 << 30)) ]; then
  for _ in 1 2 3 4; do cat "$random"; done >"$big"
fi

# median wall-clock seconds of `runs` runs of a command (output discarded)
median() {
  local times=()
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'
}

cat "$random" >/dev/null # warm the page cache: every contender reads from memory
openssl_s=$(median openssl dgst -sha256 "$random")
t1_s=$(median "$vimport" sum -t 1 "$random")
t2_s=$(median "$vimport" sum -t 2 "$random")
sparse_s=$(median "$vimport" sum "$sparse")
rss_kb=$( { /usr/bin/time -f '%M' "$vimport" sum -t 2 "$big" >/dev/null; } 2>&1 | tail -n 1)

ratio() { echo "scale=2; $1 / $2" | bc -l; }
echo "== vimport sum ($(nproc) CPUs, median of $runs runs, 1 GiB random file in page cache)"
printf '%-44s %8s  %s\n' "what" "seconds" "throughput vs openssl dgst -sha256"
printf '%-44s %8s  %s\n' "openssl dgst -sha256 (baseline)" "$openssl_s" "1.00x"
printf '%-44s %8s  %sx\n' "vimport sum -t 1" "$t1_s" "$(ratio "$openssl_s" "$t1_s")"
printf '%-44s %8s  %sx\n' "vimport sum -t 2" "$t2_s" "$(ratio "$openssl_s" "$t2_s")"
printf '%-44s %8s  %s\n' "vimport sum, 100 GiB sparse file" "$sparse_s" "(goal: < 1 s)"
printf '%-44s %8s  %s\n' "vimport sum -t 2, 4 GiB file: peak RSS MiB" "$((rss_kb / 1024))" "(goal: < 64)"
rm -f "$sparse"
