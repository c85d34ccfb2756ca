#!/usr/bin/env bash
# The import workloads of the benchmark suite only (W1 qcow2, W2 compressed qcow2,
# W3 raw, W4 raw.xz and raw.zst), against CDI's download + convert + block hash and
# against the machine's limit. See hack/bench-suite.sh; env RUNS, BENCH_DIR, VIMPORT.
# The report goes to build/bench/benchmarks-import.md, not docs/.
#   usage: hack/bench-import.sh [VIMPORT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
[ $# -eq 0 ] || export VIMPORT=$1
BENCH_WORKLOADS=${BENCH_WORKLOADS:-W1 W2 W3 W4} BENCH_DOC=${BENCH_DOC:-$top/build/bench/benchmarks-import.md} \
  exec bash "$here/bench-suite.sh"
