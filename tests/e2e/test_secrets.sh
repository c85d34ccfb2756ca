#!/usr/bin/env bash
# Secrets never leave vimport: imports that carry credentials in every way CDI and
# vimport accept them, on success and on failure, and a grep of stderr (every log line),
# the termination message and the progress metric for every secret value (and for the
# base64 form basic auth sends). Each run must also have reached the server with the right credentials
# (the fault server answers 401/403 otherwise), so the secrets were really in play.
#
#   - spec secretRef: basic auth from files under vimport.mounts.secret
#   - spec secretExtraHeaders: "X-Token: <value>" from mounts.extraHeaders/<name>/
#   - plain extraHeaders whose name looks like a credential (Authorization-like)
#   - CDI env contract: IMPORTER_ACCESS_KEY_ID / IMPORTER_SECRET_KEY, IMPORTER_EXTRA_HEADER_0
#   - a URL with userinfo (user:password@) and a token in the query string
#   - failures carrying all of the above: 401 (wrong password), 404, a TLS certificate
#     from an unknown CA, a connection reset past the retry budget, a header file with a
#     line break (refused at spec load)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd python3 base64
tmp=$(e2e_tmpdir)
srv=$tmp/srv
mkdir -p "$srv"
"$VIMPORT_TOP/hack/make-test-image.sh" "$srv/disk.raw" 12 /usr/share/doc/bash
target=$tmp/target.img

rnd() { head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
user=vimportuser$(rnd)
pass=Pw-$(rnd)-secret
token=Tok-$(rnd)-secret
query_token=Qt-$(rnd)-secret
wrong_pass=Wrong-$(rnd)-secret
plain_auth=Bearer-$(rnd)-secret
secrets=("$user" "$pass" "$token" "$query_token" "$wrong_pass" "$plain_auth"
  "$(printf '%s:%s' "$user" "$pass" | base64 -w0)"
  "$(printf '%s:%s' "$user" "$wrong_pass" | base64 -w0)")

# the server wants both basic auth and the secret header
faultserver_start "$srv" --fault "auth=$user:$pass&require_header=X-Token:$token"
nginx_start "$srv"

# mounted secrets, as the kubelet lays them out (..data links skipped by vimport)
mkdir -p "$tmp/secret" "$tmp/extraheaders/hdr-secret" "$tmp/bad-secret/hdr-bad"
printf '%s\n' "$user" >"$tmp/secret/accessKeyId"
printf '%s\n' "$pass" >"$tmp/secret/secretKey"
printf 'X-Token: %s\n' "$token" >"$tmp/extraheaders/hdr-secret/token"
printf 'X-Token: %s\r\nX-Evil: %s\n' "$token" "$pass" >"$tmp/bad-secret/hdr-bad/token"

runs=0
# check_no_secrets WHAT: grep stderr and the termination message for every secret
check_no_secrets() {
  local what=$1 s f
  for f in "$tmp/stderr" "$E2E_TMP/termination-log"; do
    [ -e "$f" ] || continue
    for s in "${secrets[@]}"; do
      if grep -qF -- "$s" "$f"; then
        fail "$what: a secret value appears in $(basename "$f"): $(grep -F -- "$s" "$f" | head -c 300)"
      fi
    done
  done
  runs=$((runs + 1))
}

# spec URL [with_secret_ref] [with_secret_headers] [extra vimport/spec lines via sed]
spec() {
  local url=$1 ref=${2:-1} hdrs=${3:-1}
  import_spec "$tmp/spec.yaml" "$url" "" "$target" \
    "mounts: {secret: $tmp/secret, extraHeaders: $tmp/extraheaders, certs: ${TEST_CA_DIR}}" \
    "retries: 1" "stallTimeoutSeconds: 5"
  [ "$ref" = 1 ] && sed -i 's|^      url:.*|&\n      secretRef: basic-auth|' "$tmp/spec.yaml"
  [ "$hdrs" = 1 ] && sed -i 's|^      url:.*|&\n      secretExtraHeaders: [hdr-secret]|' "$tmp/spec.yaml"
  return 0
}

run() {
  rm -f "$E2E_TMP/termination-log" "$target"
  rc=0
  env "$@" timeout -k 5 120 "$VIMPORT" import --spec "$tmp/spec.yaml" </dev/null \
    2>"$tmp/stderr" || rc=$?
  msg=$(cat "$E2E_TMP/termination-log" 2>/dev/null || echo "(none)")
}

expect_ok() {
  [ "$rc" -eq 0 ] || fail "$1: exit $rc: $msg"
  cmp -s -n "$(stat -c %s "$srv/disk.raw")" "$target" "$srv/disk.raw" || fail "$1: wrong bytes"
  check_no_secrets "$1"
}

expect_fail() { # WHAT REGEX
  [ "$rc" -eq 1 ] || fail "$1: expected exit 1, got $rc: $msg"
  grep -qiE -- "$2" "$E2E_TMP/termination-log" || fail "$1: message does not match /$2/: $msg"
  check_no_secrets "$1"
}

# 1. secretRef + secretExtraHeaders from mounted files
spec "$FAULT_URL/disk.raw"
run
expect_ok "secretRef and secretExtraHeaders"

# 2. a plain extraHeaders entry whose name says it is a credential, plus the secrets
spec "$FAULT_URL/disk.raw"
sed -i "s|^      url:.*|&\n      extraHeaders: [\"Authorization-Extra: $plain_auth\"]|" "$tmp/spec.yaml"
run
expect_ok "plain extraHeaders with a credential-like name"

# 3. URL userinfo and a query token (no secretRef: the userinfo is the basic auth)
spec "http://$user:$pass@127.0.0.1:$FAULT_PORT/disk.raw?token=$query_token" 0 1
run
expect_ok "URL userinfo and query token"

# 4. the CDI environment contract
rm -f "$E2E_TMP/termination-log" "$target"
rc=0
env IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$FAULT_URL/disk.raw?token=$query_token" \
  IMPORTER_ACCESS_KEY_ID="$user" IMPORTER_SECRET_KEY="$pass" \
  IMPORTER_EXTRA_HEADER_0="X-Token: $token" IMPORTER_IMAGE_SIZE=64Mi \
  VIMPORT_TARGET_PATH="$target" VIMPORT_TARGET_BLOCK_DEVICE="$tmp/no-such-device" \
  VIMPORT_EXTRA_HEADERS_DIR="$tmp/no-such-dir" \
  VIMPORT_TERMINATION_MESSAGE_PATH="$E2E_TMP/termination-log" \
  timeout -k 5 120 "$VIMPORT" import </dev/null 2>"$tmp/stderr" || rc=$?
msg=$(cat "$E2E_TMP/termination-log" 2>/dev/null || echo "(none)")
expect_ok "CDI env contract IMPORTER_ACCESS_KEY_ID/IMPORTER_SECRET_KEY"

# 5. failures that carry every secret
printf '%s\n' "$wrong_pass" >"$tmp/secret/secretKey"
spec "$FAULT_URL/disk.raw?token=$query_token"
run
expect_fail "401 with a wrong password" "^Unable to connect to http data source: HTTP 401 from"
printf '%s\n' "$pass" >"$tmp/secret/secretKey"

spec "http://$user:$pass@127.0.0.1:$FAULT_PORT/no-such-disk.raw?token=$query_token"
run
expect_fail "404 with userinfo, query token and secrets" "^Unable to connect to http data source: HTTP 404 from"

# nginx's TLS port with no trusted CA: the certificate is refused before any credential
# is sent, and the message must not echo any of them
spec "https://$user:$pass@localhost:$NGINX_TLS_PORT/disk.raw?token=$query_token" 1 1
sed -i '/certs:/s|, certs: [^}]*||' "$tmp/spec.yaml"
run
expect_fail "TLS unknown CA with secrets" "certificate"

spec "$FAULT_URL/disk.raw?reset=100000&times=5&token=$query_token"
run
expect_fail "resets past the retry budget with secrets" "^Unable to process data: giving up"

spec "$FAULT_URL/disk.raw"
sed -i "s|extraHeaders: $tmp/extraheaders|extraHeaders: $tmp/bad-secret|; s|\[hdr-secret\]|[hdr-bad]|" "$tmp/spec.yaml"
run VIMPORT_TERMINATION_MESSAGE_PATH="$E2E_TMP/termination-log"
expect_fail "a secret header file with a line break" "header|line"

# The progress metric, scraped while an import that carries every secret stalls halfway.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
spec "$FAULT_URL/disk.raw?stall=4&at=$(($(stat -c %s "$srv/disk.raw") / 2))&token=$query_token"
rm -f "$E2E_TMP/termination-log" "$target"
OWNER_UID=pvc-uid-1 VIMPORT_METRICS_PORT=$port timeout -k 5 120 "$VIMPORT" import \
  --spec "$tmp/spec.yaml" </dev/null 2>"$tmp/stderr" &
import_pid=$!
scraped=0
for _ in $(seq 40); do
  if curl -sk --max-time 2 "https://127.0.0.1:$port/metrics" >"$tmp/metrics.txt" 2>/dev/null &&
     grep -q kubevirt_cdi_import_progress_total "$tmp/metrics.txt"; then
    scraped=1
    break
  fi
  sleep 0.1
done
rc=0
wait "$import_pid" || rc=$?
[ "$scraped" = 1 ] || fail "the progress metric could not be scraped during the import"
msg=$(cat "$E2E_TMP/termination-log" 2>/dev/null || echo "(none)")
expect_ok "progress metric during an import with secrets"
for s in "${secrets[@]}"; do
  grep -qF -- "$s" "$tmp/metrics.txt" && fail "a secret value appears in the progress metric"
done

pass "secrets: $runs imports (5 completed, 5 failed), no secret in logs, messages or the metric"
