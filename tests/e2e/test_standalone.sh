#!/usr/bin/env bash
# The repository stands alone: a user's clone builds and passes its unit tests with
# nothing beside it, and the README's map of pkg/ is the real one.
#
#   1. no build or test file names a path outside the tree (the folder beside the
#      repo that CI and the developers have and users do not)
#   2. the README's Layout lists exactly the folders under pkg/, one line each
#   3. the committed HEAD, cloned into an empty temp dir, builds, and the tests that read
#      the project's test data (every unit and e2e test that names tests/data: found by
#      grep, so a new one is included by itself) pass there. The rest of `make test` runs
#      them all in the real tree; a full second `make unit` here took 13 minutes on a
#      loaded 2-core machine. Edits not yet committed are not in the clone: this checks
#      what CI's fresh clone checks.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd git make
tmp=$(e2e_tmpdir)
top=$VIMPORT_TOP

# 1. The patterns are split so that this file does not match them itself.
outside='\.\./share''d|share''d/vectors'
if refs=$(cd "$top" && grep -rnE "$outside" Makefile tests hack .ci cmd pkg \
  --exclude-dir=corpus); then
  fail "files that read outside the tree (users have no such folder): $refs"
fi

# 2. "  <stage>/   what it is" lines under "pkg/" in the Layout section
readme_pkgs=$(sed -n '/^## Layout/,/^## /p' "$top/README.md" |
  sed -n '/^pkg\//,/^[^ ]/s|^  \([a-z0-9_]*\)/ .*|\1|p' | sort)
tree_pkgs=$(cd "$top/pkg" && ls -d -- */ | tr -d / | sort)
[ -n "$readme_pkgs" ] || fail "README.md: no pkg/ folder lines found in the Layout section"
assert_eq "$tree_pkgs" "$readme_pkgs" \
  "folders under pkg/ (left) vs the README's Layout list (right, '  <stage>/  what it is')"

# 3. A clone in a fresh dir: nothing sits beside it, so a file read from outside the
# tree is missing there and the build or a test fails.
git -C "$top" rev-parse --verify -q HEAD >/dev/null || skip "$top is not a git checkout"
head=$(git -C "$top" rev-parse HEAD)
git clone -q --no-checkout "$top" "$tmp/vimport"
git -C "$tmp/vimport" checkout -q --detach "$head"
mkdir "$tmp/tmp"
clone=$tmp/vimport
units=$(cd "$clone" && grep -l 'tests/data' tests/unit/test_*.c | sed 's|tests/unit/\(.*\)\.c|build/tests/\1|')
e2es=$(cd "$clone" && grep -l 'tests/data' tests/e2e/test_*.sh | grep -v test_standalone || true)
[ -n "$units" ] || fail "no unit test reads tests/data: test_blkhash's vectors should"
# Only the clone's own files: no VIMPORT_TOP or binary of the tree under test.
# shellcheck disable=SC2086
if ! (cd "$clone" && env -u VIMPORT_TOP -u VIMPORT TMPDIR="$tmp/tmp" \
  make -j2 --no-print-directory build/vimport $units &&
  env -u VIMPORT_TOP -u VIMPORT TMPDIR="$tmp/tmp" tests/unit/run.sh $units &&
  { [ -z "$e2es" ] || env -u VIMPORT_TOP -u VIMPORT tests/e2e/run.sh $e2es; }) \
  >"$tmp/clone.log" 2>&1; then
  tail -n 40 "$tmp/clone.log" >&2
  fail "the data-reading tests in a fresh clone of $head (log above)"
fi
grep -E '^(unit binaries|e2e):' "$tmp/clone.log"
pass
