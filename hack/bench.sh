#!/usr/bin/env bash
# `make bench`: the benchmark suite (hack/bench-suite.sh: every workload of issue 8,
# interleaved runs, the table, docs/benchmarks.md and its plot). BENCH_QUICK=1 for
# one run of W1 and W3 while developing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/bench-suite.sh" "$@"
