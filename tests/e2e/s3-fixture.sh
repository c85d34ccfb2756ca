#!/usr/bin/env bash
# s3-fixture.sh: a throwaway S3 server on 127.0.0.1 that checks every signature, for the
# s3 source's tests: moto's server (moto_server, Python) with its IAM checks on.
#
#   s3-fixture.sh start STATE_DIR    start it; write STATE_DIR/env
#   s3-fixture.sh stop STATE_DIR     stop it (idempotent)
#
# INITIAL_NO_AUTH_ACTION_COUNT=3: moto lets the first three requests through unchecked;
# tests/e2e/s3tool.py setup spends them on CreateUser, PutUserPolicy (s3:*) and
# CreateAccessKey. Every later request, the tests' uploads included, is signature-checked
# against that key: a wrong secret gets SignatureDoesNotMatch, no signature AccessDenied.
#
# STATE_DIR/env is sourceable shell:
#   S3_ENDPOINT=http://127.0.0.1:PORT   S3_PORT=PORT
#   S3_KEY_ID=...  S3_SECRET=...        the user's access key (the secret is a test's only)
#   S3_PYTHON=...                       the python that has boto3 (for s3tool.py)
# The server is killed after S3_LIFETIME seconds (default 900) even if nobody calls stop.
# Every wait is bounded. Missing moto or boto3: exit 77 (the tests skip).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "s3-fixture: $*" >&2; exit 1; }

find_moto() {
  local m
  for m in "${MOTO_SERVER:-}" "$(command -v moto_server || true)" /root/.pyenv/shims/moto_server; do
    [ -n "$m" ] && [ -x "$m" ] && { echo "$m"; return 0; }
  done
  return 1
}

find_python() {
  local p
  for p in "${S3_PYTHON:-}" python3 /root/.pyenv/shims/python3; do
    [ -n "$p" ] && "$p" -c 'import boto3, moto' 2>/dev/null && { command -v "$p"; return 0; }
  done
  return 1
}

# shellcheck source=tests/e2e/tls-lib.sh
. "$here/tls-lib.sh"

start() {
  local state=$1 moto py port pid i
  mkdir -p "$state"
  moto=$(find_moto) || { echo "s3-fixture: moto_server not found" >&2; exit 77; }
  py=$(find_python) || { echo "s3-fixture: no python with boto3 and moto" >&2; exit 77; }
  port=$(free_port)
  INITIAL_NO_AUTH_ACTION_COUNT=3 setsid timeout "${S3_LIFETIME:-900}" \
    "$moto" -H 127.0.0.1 -p "$port" </dev/null >"$state/moto.log" 2>&1 &
  pid=$!
  echo "$pid" >"$state/pid"
  for i in $(seq 150); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/moto-api/" && break
    kill -0 "$pid" 2>/dev/null || die "moto_server exited: $(tail -n 5 "$state/moto.log")"
    sleep 0.1
  done
  [ "$i" -lt 150 ] || die "moto_server did not answer within 15 s"
  local keys
  keys=$(timeout 60 "$py" "$here/s3tool.py" setup "http://127.0.0.1:$port") ||
    die "creating the test user and key failed"
  {
    echo "S3_ENDPOINT=http://127.0.0.1:$port"
    echo "S3_PORT=$port"
    echo "S3_KEY_ID=${keys%% *}"
    echo "S3_SECRET=${keys#* }"
    echo "S3_PYTHON=$py"
  } >"$state/env"
}

stop() {
  local state=$1
  [ -s "$state/pid" ] || return 0
  kill -- "-$(cat "$state/pid")" 2>/dev/null || kill "$(cat "$state/pid")" 2>/dev/null || true
  rm -f "$state/pid"
}

case ${1:-} in
  start) start "${2:?state dir}" ;;
  stop) stop "${2:?state dir}" ;;
  *) die "usage: s3-fixture.sh start|stop STATE_DIR" ;;
esac
