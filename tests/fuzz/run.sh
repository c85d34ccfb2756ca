#!/usr/bin/env bash
# Run each libFuzzer binary for SECONDS with its seeds from tests/fuzz/corpus/<name>/
# (copied to a scratch corpus so runs do not grow the committed seeds). A crash, leak or
# hang fails the run; the reproducer goes to build/fuzz/crashes/<name>/.
#   usage: tests/fuzz/run.sh SECONDS FUZZ_BINARY...
set -u
seconds=${1:?usage: run.sh SECONDS BINARY...}
shift
top=$(cd "$(dirname "$0")/../.." && pwd)
passed=0 failed=0
for bin in "$@"; do
  name=$(basename "$bin")          # fuzz_<target>
  target=${name#fuzz_}
  work=$top/build/fuzz/work/$target
  crashes=$top/build/fuzz/crashes/$target
  rm -rf "$work" && mkdir -p "$work" "$crashes"
  [ -d "$top/tests/fuzz/corpus/$target" ] && cp -r "$top/tests/fuzz/corpus/$target/." "$work/"
  if ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
       -artifact_prefix="$crashes/" -print_final_stats=1 "$work" >"$top/build/fuzz/$target.log" 2>&1; then
    passed=$((passed + 1))
    echo "fuzz $target: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$top/build/fuzz/$target.log" | grep -o '[0-9]*$') runs in ${seconds}s)"
  else
    failed=$((failed + 1))
    echo "fuzz $target: FAILED, see build/fuzz/$target.log and $crashes/"
    tail -n 30 "$top/build/fuzz/$target.log"
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
