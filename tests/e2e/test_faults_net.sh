#!/usr/bin/env bash
# Network faults against the fault server (tests/e2e/faultserver.py) and nginx, all on
# 127.0.0.1. Every import must end either with the right bytes on the target (cmp with
# the image, the checksum verified, the block hash of `vimport sum`) or with exit 1, a
# clear message in valid one-line JSON and a target that cannot pass for a disk (absent
# or 0 bytes). Anything else fails the test: wrong bytes, a crash, a hang (every import
# runs under `timeout`), another exit code, a malformed termination message.
#
#   1. connection resets at seeded random offsets, FAULT_TRIALS (>= 50) trials, each
#      with a random number of resets at that offset against `retries: 2`, FAULT_JOBS
#      (5) at a time: counts the
#      completed imports and the clear "giving up" errors (seed printed; rerun with
#      FAULT_SEED=S to repeat a run)
#   2. a stall longer than stallTimeoutSeconds (resumed), and a server that stalls on
#      every attempt (clear error after the retry budget)
#   3. fewer bytes than Content-Length (resumed), more bytes (refused)
#   4. the object changes between a reset and the resume: a synthetic ETag change, and a
#      real replacement of the file with other content while the transfer stalls
#   5. a Range request answered with 200 and the whole object; a 206 at the wrong offset
#   6. 5xx then success; 5xx past the retry budget; a redirect chain; a redirect loop
#   7. 401, 403, 404: clear messages, nothing written
#   8. TLS: a certificate from an unknown CA, and one of the right CA for another host
#      name: refused, unless insecureSkipVerify: true
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd python3 openssl timeout
tmp=$(e2e_tmpdir)
srv=$tmp/srv
mkdir -p "$srv"

"$VIMPORT_TOP/hack/make-test-image.sh" "$srv/disk.raw" 12 /usr/share/doc/bash
image_size=$(stat -c %s "$srv/disk.raw")
sum=sha256:$(sha256sum "$srv/disk.raw" | cut -d' ' -f1)
blockhash=sha256:$("$VIMPORT" sum "$srv/disk.raw" | cut -d' ' -f1)
target=$tmp/target.img
IMPORT_TIMEOUT=${IMPORT_TIMEOUT:-120}

faultserver_start "$srv"

# spec URL [CHECKSUM] [vimport: lines...]: the spec every case below runs, with
# `retries: $RETRIES` (default 2) and a stall timeout of 2 s
spec() {
  local url=$1 checksum=${2:-}
  shift 2 || shift $#
  import_spec "$tmp/spec.yaml" "$url" "$checksum" "$target" "retries: ${RETRIES:-2}" \
    "stallTimeoutSeconds: 2" "$@"
}

# run: import the spec under a time bound; sets rc, msg; fails on a hang, a crash, an
# exit code other than 0/1, or a termination message not of CDI's shape for the exit
# code (lib.sh expect_message_shape)
run() {
  rm -f "$E2E_TMP/termination-log"
  set +e
  timeout -k 5 "$IMPORT_TIMEOUT" "$VIMPORT" import --spec "$tmp/spec.yaml" </dev/null \
    2>"$tmp/stderr"
  rc=$?
  set -e
  case $rc in
    0 | 1) ;;
    124 | 137) fail "$what: the import hung (killed after ${IMPORT_TIMEOUT}s)" ;;
    *) fail "$what: exit $rc (crash?); stderr: $(tail -5 "$tmp/stderr")" ;;
  esac
  expect_message_shape "$what" "$rc"
  msg=$IMPORT_MSG
}

message() { import_message; }
section() { echo "[${SECONDS}s] $*"; }

# the import completed with exactly the image on the target
expect_complete() {
  [ "$rc" -eq 0 ] || fail "$what: exit $rc: $msg"
  assert_eq "Import Complete" "$(message)" "$what: message"
  assert_eq "$blockhash" "$(import_json '["vimport"]["blockHash"]')" "$what: block hash"
  cmp -s -n "$image_size" "$target" "$srv/disk.raw" || fail "$what: wrong bytes on the target"
}

# expect_error REGEX: exit 1, the message matches REGEX (grep -E, case-insensitive),
# and the target is absent or empty (invalidated)
expect_error() {
  [ "$rc" -eq 1 ] || fail "$what: expected exit 1, got $rc: $msg"
  message | grep -qiE "$1" || fail "$what: message does not match /$1/: $msg"
  [ ! -s "$target" ] || fail "$what: a failed import left $(stat -c %s "$target") bytes on the target"
}

# ---- 1. resets at random offsets -----------------------------------------------------------
# Most of a trial is the importer's backoff between attempts, so FAULT_JOBS trials run at
# once, each in a directory of its own (spec, target, stderr, termination message); the
# fault server keys its counts by the whole URL, and each trial's URL is its own.
section "resets at random offsets"
trials=${FAULT_TRIALS:-50}
jobs=${FAULT_JOBS:-5}
seed=${FAULT_SEED:-$(( $(date +%s) % 32768 ))}
echo "resets: $trials trials, $jobs at a time, seed $seed (FAULT_SEED=$seed repeats this run)"
RANDOM=$seed
trials_dir=$tmp/trials
reset_trial() { # reset_trial I OFF TIMES, in a subshell: its verdict in $trials_dir/I/verdict
  local i=$1 off=$2 times=$3
  tmp=$trials_dir/$i E2E_TMP=$trials_dir/$i target=$trials_dir/$i/target.img
  mkdir -p "$tmp"
  what="reset trial $i (seed $seed, reset at byte $off, $times times)"
  spec "$FAULT_URL/disk.raw?reset=$off&times=$times&trial=$i" "$sum"
  run
  if [ "$rc" -eq 0 ]; then
    expect_complete
    assert_eq "$sum" "$(import_json '["vimport"]["sourceDigest"]')" "$what: source digest"
    echo completed >"$tmp/verdict"
  else
    expect_error "giving up after [0-9]+ failed attempts in a row: .*(reset|recv|closed)"
    echo gave_up >"$tmp/verdict"
  fi
  rm -f "$target"
}
running=0
for ((i = 1; i <= trials; i++)); do
  off=$(( ((RANDOM << 15) | RANDOM) % image_size ))
  times=$(( RANDOM % 5 + 1 ))
  reset_trial "$i" "$off" "$times" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || fail "a reset trial failed (seed $seed): see FAIL above"
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || fail "a reset trial failed (seed $seed): see FAIL above"
  running=$((running - 1))
done
completed=$(cat "$trials_dir"/*/verdict | grep -c '^completed$' || true)
gave_up=$(cat "$trials_dir"/*/verdict | grep -c '^gave_up$' || true)
[ $((completed + gave_up)) -eq "$trials" ] ||
  fail "$((completed + gave_up)) of $trials reset trials left a verdict (seed $seed)"
echo "resets: $completed completed with the right bytes, $gave_up gave up with a clear error"
[ "$completed" -gt 0 ] || fail "no reset trial completed (seed $seed)"

# ---- 2. stalls -----------------------------------------------------------------------------
section "stalls"
what="stall of 5 s > stallTimeoutSeconds 2"
rm -f "$target"
spec "$FAULT_URL/disk.raw?stall=5&at=$((image_size / 3))" "$sum"
run
expect_complete
grep -q "stalled transfer" "$tmp/stderr" || fail "$what: the stall was not logged"

what="a server that stalls on every attempt"
rm -f "$target"
RETRIES=1 spec "$FAULT_URL/disk.raw?stall=20&at=100000&times=10" "$sum"
run
expect_error "giving up after 2 failed attempts in a row: no data from .* for 2 s \(stalled transfer\)"

# ---- 3. fewer and more bytes than Content-Length -------------------------------------------
section "fewer and more bytes than Content-Length"
what="fewer bytes than Content-Length"
rm -f "$target"
spec "$FAULT_URL/disk.raw?short=$((image_size / 2 + 7))" "$sum"
run
expect_complete

what="more bytes than Content-Length"
rm -f "$target"
spec "$FAULT_URL/disk.raw?extra=4096" "$sum"
run
expect_error "more bytes than its Content-Length"

# ---- 4. the object changes between a reset and the resume ----------------------------------
section "the object changes between a reset and the resume"
what="ETag changes between a reset and the resume"
rm -f "$target"
spec "$FAULT_URL/disk.raw?etag=change&reset=$((image_size / 2))" "$sum"
run
expect_error "changed"

# A real replacement: the file is renamed over while the transfer stalls, so the resume
# finds another object (other bytes, other ETag). Never a splice: either an error, or
# (a restart) exactly the new object.
what="the object is replaced while the transfer stalls"
cp "$srv/disk.raw" "$srv/moving.raw"
touch -d '2020-01-01 00:00:00' "$srv/moving.raw"
"$VIMPORT_TOP/hack/make-test-image.sh" "$tmp/other.raw" 12 /usr/share/doc/coreutils
cmp -s "$tmp/other.raw" "$srv/moving.raw" && fail "the replacement image equals the original"
rm -f "$target" "$FAULT_LOG"
spec "$FAULT_URL/moving.raw?stall=4&at=$((image_size / 2))"
rm -f "$E2E_TMP/termination-log"
timeout -k 5 "$IMPORT_TIMEOUT" "$VIMPORT" import --spec "$tmp/spec.yaml" </dev/null \
  2>"$tmp/stderr" &
import_pid=$!
for _ in $(seq 100); do grep -q moving.raw "$FAULT_LOG" 2>/dev/null && break; sleep 0.1; done
cp "$tmp/other.raw" "$srv/moving.raw.new"
mv "$srv/moving.raw.new" "$srv/moving.raw" # the server still sends the old file's bytes
rc=0
wait "$import_pid" || rc=$?
[ "$rc" -le 1 ] || fail "$what: exit $rc"
msg=$(cat "$E2E_TMP/termination-log")
if [ "$rc" -eq 0 ]; then
  cmp -s -n "$image_size" "$target" "$tmp/other.raw" || fail "$what: spliced or wrong bytes: $msg"
  echo "object replaced: the import restarted and wrote the new object whole"
else
  expect_error "changed"
  echo "object replaced: the import failed without splicing ($(message | cut -c1-120)...)"
fi

# ---- 5. broken Range handling --------------------------------------------------------------
section "broken Range handling"
# Past the 4 MiB source ring, so the reader has taken bytes and a restart would need
# them back: refused. (A 200 before the reader took a byte restarts cleanly: either way
# never a splice, so a completed import must have exactly the image.)
what="200 with the whole object for a Range request"
rm -f "$target"
# (times=5: the pipeline's best-effort footer probe, a Range request of the last 512
# bytes, may take the first faulty answer. reset_times=1: a resume starts at the reset
# offset, and a second reset there could throw away the faulty headers in flight, so
# the client would see a reset rather than the fault under test.)
spec "$FAULT_URL/disk.raw?ignore_range=1&reset=$((image_size * 3 / 4))&times=5&reset_times=1" "$sum"
run
if [ "$rc" -eq 0 ]; then
  expect_complete
  echo "200 to a Range request: restarted from byte 0 before the reader took a byte"
else
  expect_error "HTTP 200 and the whole object"
fi

what="206 at the wrong offset"
rm -f "$target"
spec "$FAULT_URL/disk.raw?bad_range=1&reset=$((image_size / 3))&times=5&reset_times=1" "$sum"
run
expect_error "answered the request for bytes [0-9]+- with bytes"

# ---- 6. 5xx, redirects ---------------------------------------------------------------------
section "5xx, redirects"
what="503 twice, then success"
rm -f "$target"
spec "$FAULT_URL/disk.raw?status=503&times=2" "$sum"
run
expect_complete
what="500 past the retry budget"
rm -f "$target"
spec "$FAULT_URL/disk.raw?status=500&times=10" "$sum"
run
expect_error "giving up after 3 failed attempts in a row: HTTP 500 .*retry later"
what="three redirects"
rm -f "$target"
spec "$FAULT_URL/disk.raw?redirect=3" "$sum"
run
expect_complete
what="a redirect loop"
rm -f "$target"
spec "$FAULT_URL/disk.raw?redirect=loop" "$sum"
run
expect_error "redirected more than [0-9]+ times.*redirect loop"

# ---- 7. 401, 403, 404 ----------------------------------------------------------------------
section "401, 403, 404"
for code in 401 403 404; do
  what="HTTP $code"
  rm -f "$target"
  spec "$FAULT_URL/disk.raw?status=$code" "$sum"
  run
  case $code in
    401) expect_error "^Unable to connect to http data source: HTTP 401 from .*credentials" ;;
    403) expect_error "^Unable to connect to http data source: HTTP 403 from .*refused access" ;;
    404) expect_error "^Unable to connect to http data source: HTTP 404 from .*check the URL" ;;
  esac
done

# ---- 8. TLS --------------------------------------------------------------------------------
section "TLS"
nginx_start "$srv"
# a certificate signed by the test CA, for another host name, served by the fault server
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=wrong.example" \
  -keyout "$tmp/wrong.key" -out "$tmp/wrong.csr" 2>/dev/null
printf 'subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth\n' >"$tmp/wrong.ext"
openssl x509 -req -in "$tmp/wrong.csr" -CA "$TEST_CA" -CAkey "$(dirname "$TEST_CA")/ca.key" \
  -CAcreateserial -CAserial "$tmp/wrong.srl" -days 2 -extfile "$tmp/wrong.ext" \
  -out "$tmp/wrong.pem" 2>/dev/null
faultserver_start "$srv" --tls-cert "$tmp/wrong.pem" --tls-key "$tmp/wrong.key"
wrong_host_url=https://127.0.0.1:$FAULT_PORT/disk.raw

tls_spec() { # URL with-ca(0|1) insecure(0|1)
  local lines=()
  [ "$2" = 1 ] && lines+=("mounts: {certs: $TEST_CA_DIR}")
  spec "$1" "$sum" "${lines[@]}"
  [ "$2" = 1 ] && sed -i 's|^      url:.*|&\n      certConfigMap: test-ca|' "$tmp/spec.yaml"
  [ "$3" = 1 ] && sed -i 's|^      url:.*|&\n      insecureSkipVerify: true|' "$tmp/spec.yaml"
  return 0
}

what="TLS: certificate from an unknown CA"
rm -f "$target"
tls_spec "$NGINX_TLS_URL/disk.raw" 0 0
run
expect_error "certificate.*not trusted"
what="TLS: unknown CA with insecureSkipVerify"
tls_spec "$NGINX_TLS_URL/disk.raw" 0 1
run
expect_complete
what="TLS: the test CA's certificate for another host name"
rm -f "$target"
tls_spec "$wrong_host_url" 1 0
run
expect_error "(certificate|host ?name|subject).*(not trusted|match)|not trusted"
message | grep -qiE "127\.0\.0\.1|wrong\.example|name" ||
  fail "$what: the message does not say the name is wrong: $msg"
what="TLS: wrong host name with insecureSkipVerify"
tls_spec "$wrong_host_url" 1 1
run
expect_complete
what="TLS: the right host with the test CA (control)"
tls_spec "$NGINX_TLS_URL/disk.raw" 1 0
run
expect_complete

pass "network faults: $completed/$trials reset trials completed, $gave_up gave up cleanly (seed $seed)"
