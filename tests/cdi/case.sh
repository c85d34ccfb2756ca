#!/usr/bin/env bash
# tests/cdi/case.sh NAME: run case_NAME of tests/cdi/cases.sh in this process (run.sh
# bounds its time and gives it the shared fixtures through the environment).
set -euo pipefail
CASE_NAME=${1:?usage: case.sh NAME}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cdi/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/cdi/cases.sh
. "$here/cases.sh"
declare -F "case_$CASE_NAME" >/dev/null || fail "no case named $CASE_NAME"
# Under set -e a failing command ends the case: name it.
# shellcheck disable=SC2154 # rc_ is assigned inside the trap string
trap 'rc_=$?; echo "FAIL: $CASE_NAME: line $LINENO: exit $rc_ from: $BASH_COMMAND" >&2' ERR
"case_$CASE_NAME"
