#!/usr/bin/env bash
# `make bench`: every benchmark, each printing a table of ratios against its baseline.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for b in "$here"/bench-*.sh; do
  bash "$b"
  echo
done
