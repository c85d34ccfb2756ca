#!/usr/bin/env bash
# CDI's progress contract, scraped during a real import: the fault server (127.0.0.1)
# serves a 32 MiB image and stalls for a few seconds halfway, and while it stalls we
# scrape https://127.0.0.1:PORT/metrics with curl and check
#
#   1. the exposition byte for byte: HELP, TYPE counter,
#      kubevirt_cdi_import_progress_total{ownerUID="$OWNER_UID"} <percent, two decimals>
#      with 0 < percent <= 50.00 (the share of the source served so far), never falling
#      between scrapes;
#   2. the certificate (openssl s_client): a valid X509, subject CN vimport, EC P-256,
#      self-signed, one day;
#   3. any other path is 404;
#   4. the import still succeeds and the target holds the image;
#   5. VIMPORT_METRICS_PORT (no flag) selects the port the same way; 0 disables the
#      endpoint (no "serving import progress" log line, nothing listening).
#
# Needs `vimport import --metrics-port N`; skips with the reason until the import
# command has it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd python3 openssl curl timeout

"$VIMPORT" import --help 2>&1 | grep -q -- --metrics-port ||
  skip "vimport import --help does not mention --metrics-port: the progress metric is not wired into the import command yet"

tmp=$(e2e_tmpdir)
srv=$tmp/srv
mkdir -p "$srv"
size=$((32 << 20))
half=$((size / 2))
head -c "$size" /dev/urandom >"$srv/disk.raw"
faultserver_start "$srv"
export OWNER_UID=3f1c2a9e-7d4b-4e8a-9b0c-e2e000000001
STALL=${METRICS_STALL_SECONDS:-6}
url="$FAULT_URL/disk.raw?stall=$STALL&at=$half&times=100"

# scrape PORT [PATH]: print the body; fails (non-zero) if nothing answers
scrape() {
  curl -sk --max-time 5 "https://127.0.0.1:$1${2:-/metrics}"
}

# wait_serving PORT PID: wait until the endpoint answers (the import runs as PID)
wait_serving() {
  local _
  for _ in $(seq 100); do
    scrape "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || fail "the import exited before serving metrics: $(cat "$tmp/import.stderr")"
    sleep 0.1
  done
  fail "nothing served https://127.0.0.1:$1/metrics within 10 s of the import start"
}

# start_import PORT_ARGS...: run the import in the background; IMPORT_PID
start_import() {
  import_spec "$tmp/spec.yaml" "$url" "" "$tmp/target.img"
  rm -f "$tmp/target.img"
  timeout 120 "$VIMPORT" import --spec "$tmp/spec.yaml" "$@" </dev/null 2>"$tmp/import.stderr" &
  IMPORT_PID=$!
  e2e_on_exit "kill $IMPORT_PID"
}

finish_import() {
  local rc=0
  wait "$IMPORT_PID" || rc=$?
  [ "$rc" -eq 0 ] || fail "import exited $rc: $(tail -n 5 "$tmp/import.stderr")"
  cmp -s "$srv/disk.raw" "$tmp/target.img" || fail "the target differs from the image"
}

check_exposition() {
  local body=$1 value
  value=$(printf '%s\n' "$body" | sed -n 3p | sed -n 's/^kubevirt_cdi_import_progress_total{ownerUID="'"$OWNER_UID"'"} \([0-9]*\.[0-9][0-9]\)$/\1/p')
  [ -n "$value" ] || fail "unexpected exposition:
$body"
  assert_eq "# HELP kubevirt_cdi_import_progress_total The import progress in percentage" \
    "$(printf '%s\n' "$body" | sed -n 1p)" "HELP line"
  assert_eq "# TYPE kubevirt_cdi_import_progress_total counter" \
    "$(printf '%s\n' "$body" | sed -n 2p)" "TYPE line"
  assert_eq 3 "$(printf '%s\n' "$body" | wc -l)" "line count"
  echo "$value"
}

# ---- 1-4: --metrics-port, scraped during the stall ----
port=$(free_port)
start_import --metrics-port "$port"
wait_serving "$port" "$IMPORT_PID"

# Scrape until the import reaches the stall (progress stops moving), at most STALL+10 s.
last=0.00 value=0.00 steady=0
deadline=$((SECONDS + STALL + 10))
while [ "$SECONDS" -lt "$deadline" ]; do
  body=$(scrape "$port") || fail "scrape failed during the import"
  value=$(check_exposition "$body")
  python3 -c 'import sys; a,b=map(float,sys.argv[1:]); sys.exit(b < a)' "$last" "$value" ||
    fail "progress fell from $last to $value"
  if [ "$value" = "$last" ] && [ "$value" != 0.00 ]; then steady=$((steady + 1)); else steady=0; fi
  last=$value
  [ "$steady" -ge 3 ] && break
  sleep 0.2
done
[ "$steady" -ge 3 ] || fail "progress never settled at the stall (last value $value)"
python3 -c 'import sys; v=float(sys.argv[1]); sys.exit(not (25.0 <= v <= 50.0))' "$value" ||
  fail "during the stall at byte $half of $size the progress is $value, not in [25, 50]"
echo "progress during the stall: $value%" >&2

# 2: the certificate, as a scraper sees it
cert=$tmp/served.pem
openssl s_client -connect "127.0.0.1:$port" </dev/null 2>/dev/null |
  openssl x509 -outform PEM >"$cert" || fail "openssl s_client got no X509 certificate"
subject=$(openssl x509 -in "$cert" -noout -subject -nameopt RFC2253)
assert_eq "subject=CN=vimport" "$subject" "certificate subject"
openssl x509 -in "$cert" -noout -text | grep -q "NIST CURVE: P-256" ||
  fail "the certificate key is not EC P-256: $(openssl x509 -in "$cert" -noout -text | grep -i 'public key')"
openssl verify -CAfile "$cert" -check_ss_sig "$cert" >/dev/null ||
  fail "the certificate is not validly self-signed"
openssl x509 -in "$cert" -noout -checkend 3600 >/dev/null || fail "the certificate expires within an hour"
openssl x509 -in "$cert" -noout -checkend 90000 >/dev/null &&
  fail "the certificate is valid for more than a day"

# 3: everything else is 404
code=$(curl -sk --max-time 5 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/healthz")
assert_eq 404 "$code" "GET /healthz"

# 4
finish_import
grep -q "serving import progress on https://.*:$port/metrics" "$tmp/import.stderr" ||
  fail "no log line announcing the metrics port"

# ---- 5: VIMPORT_METRICS_PORT, and 0 disables ----
port=$(free_port)
VIMPORT_METRICS_PORT=$port start_import
wait_serving "$port" "$IMPORT_PID"
check_exposition "$(scrape "$port")" >/dev/null
finish_import

VIMPORT_METRICS_PORT=0 start_import
sleep 1 # the import is now in its stall, past any place that would start the endpoint
if command -v ss >/dev/null && command -v pgrep >/dev/null; then
  child=$(pgrep -P "$IMPORT_PID" | head -n 1)
  [ -n "$child" ] || fail "cannot find the import process under timeout (pid $IMPORT_PID)"
  ss -Htlnp | grep -q "pid=$child," &&
    fail "VIMPORT_METRICS_PORT=0: the import listens anyway: $(ss -Htlnp | grep "pid=$child,")"
fi
finish_import
grep -q "serving import progress" "$tmp/import.stderr" &&
  fail "VIMPORT_METRICS_PORT=0 still started the metrics endpoint"

pass "progress metric scraped during the import"
