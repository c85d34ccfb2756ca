#!/usr/bin/env bash
# Run every Criterion unit-test binary given; fail if any fails. Prints one summary line
# "unit: N passed, N failed" that CI reads.
set -u
passed=0 failed=0
for t in "$@"; do
  if "$t" --jobs 2; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $t" >&2; fi
done
echo "unit binaries: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
