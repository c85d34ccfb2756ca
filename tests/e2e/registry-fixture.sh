#!/usr/bin/env bash
# registry-fixture.sh: throwaway OCI registries on 127.0.0.1 for the registry source's
# tests: Debian's docker-registry (the CNCF distribution registry 2.8,
# `/usr/bin/docker-registry serve CONFIG`), one instance per mode, with their own test CA.
#
#   registry-fixture.sh start STATE_DIR MODE...   start each MODE; write STATE_DIR/env
#   registry-fixture.sh stop STATE_DIR            stop all (idempotent)
#
# MODEs (each its own registry process, port and storage):
#   anon    HTTPS, anonymous pull and push
#   basic   HTTPS + htpasswd basic auth (bcrypt), user REGISTRY_USER / REGISTRY_PASS
#   token   HTTPS + `auth: token`: the registry sends clients to tests/e2e/regtoken.py
#           (standing in for a registry's token service, e.g. auth.docker.io), which
#           checks basic credentials and signs ES256 JWTs with a key whose certificate is
#           the registry's rootcertbundle; the registry verifies every token. Without
#           credentials the issuer grants pull on public/... repositories only.
#   http    plain HTTP, anonymous (for INSECURE_TLS / CDI's insecureRegistries)
#
# STATE_DIR/env is sourceable shell:
#   REGISTRY_CA=...        the test CA (PEM) that signed every server certificate
#   REGISTRY_CA_DIR=...    a directory holding only ca.crt (a CDI certConfigMap, and
#                          skopeo's --dest-cert-dir / --src-cert-dir)
#   REGISTRY_USER=... REGISTRY_PASS=...   credentials of the basic and token modes
#   REGISTRY_<MODE>=127.0.0.1:PORT        e.g. REGISTRY_ANON, REGISTRY_TOKEN
#   REGISTRY_<MODE>_ROOT=...              its storage rootdirectory (blobs live under
#                                         docker/registry/v2/blobs/sha256/XX/HEX/data)
#   REGISTRY_TOKEN_REALM=https://127.0.0.1:PORT/token   REGISTRY_TOKEN_LOG=...
#                                         (token mode: the issuer and its request log)
# The server certificate is for localhost and 127.0.0.1. Every process is killed after
# REGISTRY_LIFETIME seconds (default 900) even if nobody calls stop. Every wait is bounded.
set -euo pipefail

registry_bin=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
# Debian's python3, whose python3-jwt and python3-cryptography the token issuer needs
# (a python3 earlier on PATH, e.g. pyenv's, does not have them)
debian_python=${REGISTRY_PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "registry-fixture: $*" >&2; exit 1; }
# shellcheck source=tests/e2e/tls-lib.sh
. "$here/tls-lib.sh"

make_certs() {
  local tls=$1
  test_ca_make "$tls" "vimport registry test CA" || die "no test CA"
  [ -s "$tls/token.pem" ] && return 0
  # the token signing key: its self-signed certificate is the registry's rootcertbundle
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=vimport test token issuer" \
    -keyout "$tls/token.key" -out "$tls/token.pem" 2>/dev/null
}

# write_config DIR MODE PORT [REALM]
write_config() {
  local dir=$1 mode=$2 port=$3 realm=${4:-} tls=$STATE/tls
  {
    cat <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
EOF
    if [ "$mode" != http ]; then
      cat <<EOF
  tls:
    certificate: $tls/server.pem
    key: $tls/server.key
EOF
    fi
    case $mode in
      basic)
        cat <<EOF
auth:
  htpasswd:
    realm: vimport-test
    path: $STATE/htpasswd
EOF
        ;;
      token)
        cat <<EOF
auth:
  token:
    realm: $realm
    service: vimport-test-registry
    issuer: vimport-test-issuer
    rootcertbundle: $tls/token.pem
EOF
        ;;
    esac
  } >"$dir/config.yml"
}

# watchdog PIDFILE: kill the pid in PIDFILE after the lifetime, whoever forgets stop
watchdog() {
  local pidfile=$1 lifetime=${REGISTRY_LIFETIME:-900}
  setsid bash -c "sleep $lifetime; kill \$(cat '$pidfile' 2>/dev/null) 2>/dev/null" \
    </dev/null >/dev/null 2>&1 &
  echo $! >>"$STATE/watchdogs"
}

start_issuer() {
  local dir=$STATE/token-issuer pid
  mkdir -p "$dir"
  rm -f "$dir/port"
  REGTOKEN_PASSWORD=$REGISTRY_PASS "$debian_python" "$here/regtoken.py" --port-file "$dir/port" --key "$STATE/tls/token.key" \
    --cert "$STATE/tls/token.pem" --issuer vimport-test-issuer \
    --service vimport-test-registry --user "$REGISTRY_USER" \
    --tls-cert "$STATE/tls/server.pem" --tls-key "$STATE/tls/server.key" \
    --log "$dir/requests.log" --timeout "${REGISTRY_LIFETIME:-900}" \
    </dev/null >"$dir/out.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/pid"
  for _ in $(seq 100); do
    [ -s "$dir/port" ] && break
    kill -0 "$pid" 2>/dev/null || die "token issuer exited: $(tail -n 5 "$dir/out.log")"
    sleep 0.1
  done
  [ -s "$dir/port" ] || die "token issuer did not start within 10 s"
  echo "https://127.0.0.1:$(cat "$dir/port")/token"
}

# wait_ready MODE PORT PID LOG: the registry answers /v2/ (200 or 401) within 15 s
wait_ready() {
  local mode=$1 port=$2 pid=$3 log=$4 scheme=https code
  [ "$mode" = http ] && scheme=http
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || return 1
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STATE/tls/ca.pem" \
      "$scheme://127.0.0.1:$port/v2/" 2>/dev/null || true)
    case $code in 200 | 401) return 0 ;; esac
    sleep 0.1
  done
  die "$mode registry did not answer /v2/ within 15 s; see $log: $(tail -n 3 "$log")"
}

start_mode() {
  local mode=$1 dir=$STATE/$1 realm="" port pid upper
  mkdir -p "$dir/storage"
  [ "$mode" = token ] && realm=$(start_issuer)
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    write_config "$dir" "$mode" "$port" "$realm"
    "$registry_bin" serve "$dir/config.yml" </dev/null >"$dir/registry.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid"
    watchdog "$dir/pid"
    if wait_ready "$mode" "$port" "$pid" "$dir/registry.log"; then
      upper=${mode^^}
      {
        echo "REGISTRY_$upper=127.0.0.1:$port"
        echo "REGISTRY_${upper}_ROOT=$dir/storage"
        if [ "$mode" = token ]; then
          echo "REGISTRY_TOKEN_REALM=$realm"
          echo "REGISTRY_TOKEN_LOG=$STATE/token-issuer/requests.log"
        fi
      } >>"$STATE/env"
      return 0
    fi
    grep -q "address already in use" "$dir/registry.log" ||
      die "$mode registry exited: $(tail -n 3 "$dir/registry.log")"
  done
  die "$mode registry: no free port after 5 tries"
}

start() {
  local mode
  mkdir -p "$1"
  STATE=$(cd "$1" && pwd)
  shift
  [ -x "$registry_bin" ] || die "$registry_bin is missing (apt-get install docker-registry)"
  make_certs "$STATE/tls"
  if [ ! -s "$STATE/credentials" ]; then
    echo "REGISTRY_USER=vimport-test" >"$STATE/credentials"
    echo "REGISTRY_PASS=pw-$(head -c 9 /dev/urandom | base64 | tr '+/' '-_')" >>"$STATE/credentials"
  fi
  # shellcheck disable=SC1091
  . "$STATE/credentials"
  htpasswd -bBc "$STATE/htpasswd" "$REGISTRY_USER" "$REGISTRY_PASS" 2>/dev/null ||
    die "htpasswd failed (apt-get install apache2-utils)"
  {
    echo "REGISTRY_CA=$STATE/tls/ca.pem"
    echo "REGISTRY_CA_DIR=$STATE/tls/ca-dir"
    cat "$STATE/credentials"
  } >"$STATE/env"
  for mode in "$@"; do
    case $mode in
      anon | basic | token | http) start_mode "$mode" ;;
      *) die "unknown mode '$mode' (anon, basic, token, http)" ;;
    esac
  done
}

stop_pid() {
  local pidfile=$1 pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

stop() {
  local state=$1 mode w
  for mode in anon basic token http; do stop_pid "$state/$mode/pid"; done
  stop_pid "$state/token-issuer/pid"
  if [ -s "$state/watchdogs" ]; then
    while read -r w; do kill -- "-$w" 2>/dev/null || true; done <"$state/watchdogs"
    rm -f "$state/watchdogs"
  fi
}

case "${1:-}" in
  start) [ $# -ge 3 ] || die "usage: $0 start STATE_DIR MODE..."; shift; start "$@" ;;
  stop) [ $# -eq 2 ] || die "usage: $0 stop STATE_DIR"; stop "$2" ;;
  *) die "usage: $0 start STATE_DIR MODE... | stop STATE_DIR" ;;
esac
