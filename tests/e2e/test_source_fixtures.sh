#!/usr/bin/env bash
# The e2e test infrastructure itself (lib.sh, nginx-fixture.sh, faultserver.py), checked
# with the curl CLI so that other tests can trust it: nginx serves a file over HTTP and
# HTTPS, the test CA is accepted and required, faultserver serves ranges and faults.
. "$(dirname "$0")/lib.sh"
require_cmd curl cmp

tmp=$(e2e_tmpdir)
mkdir "$tmp/www"
head -c 300000 /dev/urandom >"$tmp/www/img.raw"

nginx_start "$tmp/www"
curl -sf -o "$tmp/http.raw" "$NGINX_URL/img.raw" || fail "nginx HTTP download failed"
cmp -s "$tmp/http.raw" "$tmp/www/img.raw" || fail "nginx HTTP bytes differ"
curl -sf --cacert "$TEST_CA" -o "$tmp/tls.raw" "$NGINX_TLS_URL/img.raw" || fail "HTTPS with TEST_CA failed"
cmp -s "$tmp/tls.raw" "$tmp/www/img.raw" || fail "nginx HTTPS bytes differ"
curl -sf --capath "$TEST_CA_DIR" -o /dev/null "https://127.0.0.1:$NGINX_TLS_PORT/img.raw" 2>/dev/null ||
  curl -sf --cacert "$TEST_CA_DIR/ca.crt" -o /dev/null "https://127.0.0.1:$NGINX_TLS_PORT/img.raw" ||
  fail "HTTPS by IP with the CA of TEST_CA_DIR failed"
if curl -sf -o /dev/null "$NGINX_TLS_URL/img.raw" 2>/dev/null; then
  fail "HTTPS without the test CA was accepted"
fi

faultserver_start "$tmp/www"
curl -sf -o "$tmp/fs.raw" "$FAULT_URL/img.raw" || fail "faultserver download failed"
cmp -s "$tmp/fs.raw" "$tmp/www/img.raw" || fail "faultserver bytes differ"
got=$(curl -sf -r 1000-1999 "$FAULT_URL/img.raw" | wc -c)
assert_eq 1000 "$got" "ranged bytes"
curl -s -o "$tmp/cut.raw" "$FAULT_URL/img.raw?reset=5000"
assert_eq 5000 "$(stat -c %s "$tmp/cut.raw")" "bytes before the reset"
code=$(curl -s -o /dev/null -w '%{http_code}' "$FAULT_URL/img.raw?status=503&times=1")
assert_eq 503 "$code" "first status"
code=$(curl -s -o /dev/null -w '%{http_code}' "$FAULT_URL/img.raw?status=503&times=1")
assert_eq 200 "$code" "status after the fault"
grep -q '"range": "bytes=1000-1999"' "$FAULT_LOG" || fail "faultserver log lacks the Range request"
pass
