#!/usr/bin/env bash
# Run each libFuzzer binary for SECONDS with its seeds from tests/fuzz/corpus/<name>/
# (copied to a scratch corpus so runs do not grow the committed seeds). A crash, leak or
# hang fails the run; the reproducer goes to build/fuzz/crashes/<name>/.
# FUZZ_JOBS targets run at once (default: the CPUs), each on one CPU for its SECONDS, so
# every target gets the same fuzzing time and the wall time of `make test` shrinks.
#   usage: tests/fuzz/run.sh SECONDS FUZZ_BINARY...
set -u
seconds=${1:?usage: run.sh SECONDS BINARY...}
shift
top=$(cd "$(dirname "$0")/../.." && pwd)
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: FUZZ_JOBS must be a positive number, not '$jobs'" >&2; exit 2; }

# fuzz_one BINARY: one target; its verdict line goes to build/fuzz/<target>.verdict
fuzz_one() {
  local bin=$1 name target work crashes log
  name=$(basename "$bin") # fuzz_<target>
  target=${name#fuzz_}
  work=$top/build/fuzz/work/$target
  crashes=$top/build/fuzz/crashes/$target
  log=$top/build/fuzz/$target.log
  rm -rf "$work" && mkdir -p "$work" "$crashes"
  [ -d "$top/tests/fuzz/corpus/$target" ] && cp -r "$top/tests/fuzz/corpus/$target/." "$work/"
  if ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
       -artifact_prefix="$crashes/" -print_final_stats=1 "$work" >"$log" 2>&1; then
    echo "ok fuzz $target: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${seconds}s)"
  else
    echo "FAILED fuzz $target: FAILED, see build/fuzz/$target.log and $crashes/"
  fi >"$top/build/fuzz/$target.verdict"
}

mkdir -p "$top/build/fuzz"
running=0
for bin in "$@"; do
  rm -f "$top/build/fuzz/$(basename "$bin" | sed 's/^fuzz_//').verdict"
  fuzz_one "$bin" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

passed=0 failed=0
for bin in "$@"; do
  target=$(basename "$bin" | sed 's/^fuzz_//')
  verdict=$(cat "$top/build/fuzz/$target.verdict" 2>/dev/null || echo "FAILED fuzz $target: FAILED, no verdict (killed?)")
  echo "${verdict#* }"
  case $verdict in
    ok\ *) passed=$((passed + 1)) ;;
    *) failed=$((failed + 1)); tail -n 30 "$top/build/fuzz/$target.log" 2>/dev/null ;;
  esac
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
