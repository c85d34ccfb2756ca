#!/usr/bin/env bash
# `vimport sum` and `vimport verify` only (W5 of the benchmark suite): against
# `openssl dgst -sha256` on a 2 GiB random file and the 6 GiB raw image, verify against
# an O_DIRECT read, a 100 GiB sparse file, peak RSS. See hack/bench-suite.sh; env RUNS,
# BENCH_DIR, VIMPORT. The report goes to build/bench/benchmarks-sum.md, not docs/.
#   usage: hack/bench-sum.sh [VIMPORT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
[ $# -eq 0 ] || export VIMPORT=$1
BENCH_WORKLOADS=W5 BENCH_DOC=${BENCH_DOC:-$top/build/bench/benchmarks-sum.md} \
  exec bash "$here/bench-suite.sh"
