#!/usr/bin/env bash
# Run every tests/e2e/test_*.sh (or those named) against build/vimport, each bounded in
# time. A test exits 0 (pass), 77 (skip, with its reason on stderr) or anything else (fail).
# Prints "e2e: N passed, N failed, N skipped" last.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export VIMPORT="${VIMPORT:-$top/build/vimport}"
export VIMPORT_TOP="$top"
limit=${E2E_TEST_TIMEOUT:-900}
passed=0 failed=0 skipped=0
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=("$here"/test_*.sh)
for t in "${tests[@]}"; do
  name=$(basename "$t" .sh)
  start=$(date +%s)
  timeout --kill-after=10 "$limit" bash "$t"
  rc=$?
  took=$(($(date +%s) - start))
  case $rc in
    0) passed=$((passed + 1)); echo "PASS $name (${took}s)" ;;
    77) skipped=$((skipped + 1)); echo "SKIP $name" ;;
    124|137) failed=$((failed + 1)); echo "FAIL $name: timed out after ${limit}s" ;;
    *) failed=$((failed + 1)); echo "FAIL $name (exit $rc, ${took}s)" ;;
  esac
done
echo "e2e: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
