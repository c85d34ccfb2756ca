#!/usr/bin/env bash
# nginx-fixture.sh: a throwaway nginx on 127.0.0.1 serving a directory over HTTP and
# HTTPS, with its own test CA. Used by tests/e2e/lib.sh (nginx_start) and by unit tests
# that need a real TLS server (tests/unit/test_source_tls.c).
#
#   nginx-fixture.sh start STATE_DIR SERVE_DIR    start; write STATE_DIR/env
#   nginx-fixture.sh stop STATE_DIR               stop (idempotent)
#
# STATE_DIR (created if missing) holds everything: nginx.conf, pid, logs, temp paths,
# and tls/ (ca.pem, ca.key, server.pem, server.key). The server certificate is for
# localhost and 127.0.0.1. STATE_DIR/env is sourceable shell:
#   NGINX_PORT=...       HTTP port
#   NGINX_TLS_PORT=...   HTTPS port
#   TEST_CA=...          the CA certificate (PEM)
#   TEST_CA_DIR=...      a directory holding only that PEM (like a CDI certConfigMap)
# nginx runs as root with `daemon on` and a pid file, and is killed after
# NGINX_LIFETIME seconds (default 900) even if nobody calls stop.
set -euo pipefail

nginx_bin=${NGINX:-/usr/sbin/nginx}

die() { echo "nginx-fixture: $*" >&2; exit 1; }
# shellcheck source=tests/e2e/tls-lib.sh
. "$(dirname "$0")/tls-lib.sh"

write_conf() {
  local state=$1 serve=$2 port=$3 tls_port=$4
  local mime=""
  [ -r /etc/nginx/mime.types ] && mime="include /etc/nginx/mime.types;"
  cat >"$state/nginx.conf" <<EOF
daemon on;
user root;
worker_processes 1;
pid $state/nginx.pid;
error_log $state/error.log warn;
events { worker_connections 128; }
http {
  $mime
  default_type application/octet-stream;
  access_log $state/access.log;
  client_body_temp_path $state/tmp/body;
  proxy_temp_path $state/tmp/proxy;
  fastcgi_temp_path $state/tmp/fastcgi;
  uwsgi_temp_path $state/tmp/uwsgi;
  scgi_temp_path $state/tmp/scgi;
  sendfile on;
  server {
    listen 127.0.0.1:$port;
    listen 127.0.0.1:$tls_port ssl;
    server_name localhost;
    ssl_certificate $state/tls/server.pem;
    ssl_certificate_key $state/tls/server.key;
    root $serve;
  }
}
EOF
}

start() {
  local state=$1 serve
  serve=$(cd "$2" && pwd)
  mkdir -p "$state/tmp"
  state=$(cd "$state" && pwd)
  test_ca_make "$state/tls" "vimport test CA" || die "no test CA"
  local try port tls_port
  for try in 1 2 3 4 5; do
    port=$(free_port)
    tls_port=$(free_port)
    [ "$port" != "$tls_port" ] || continue
    write_conf "$state" "$serve" "$port" "$tls_port"
    if "$nginx_bin" -p "$state" -e "$state/error.log" -c "$state/nginx.conf" 2>>"$state/start.log"; then
      # bounded: an nginx nobody stops dies by itself
      local lifetime=${NGINX_LIFETIME:-900}
      setsid bash -c "sleep $lifetime; kill \$(cat '$state/nginx.pid' 2>/dev/null) 2>/dev/null" \
        </dev/null >/dev/null 2>&1 &
      echo $! >"$state/watchdog.pid"
      cat >"$state/env" <<EOF
NGINX_PORT=$port
NGINX_TLS_PORT=$tls_port
TEST_CA=$state/tls/ca.pem
TEST_CA_DIR=$state/tls/ca-dir
EOF
      return 0
    fi
    grep -q "Address already in use" "$state/start.log" || break
  done
  die "nginx did not start; see $state/start.log and $state/error.log: $(tail -n 3 "$state/start.log" 2>/dev/null)"
}

stop() {
  local state=$1 pid
  if [ -s "$state/nginx.pid" ]; then
    pid=$(cat "$state/nginx.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$state/nginx.pid"
  fi
  if [ -s "$state/watchdog.pid" ]; then
    kill -- "-$(cat "$state/watchdog.pid")" 2>/dev/null || true
    rm -f "$state/watchdog.pid"
  fi
}

case "${1:-}" in
  start) [ $# -eq 3 ] || die "usage: $0 start STATE_DIR SERVE_DIR"; start "$2" "$3" ;;
  stop) [ $# -eq 2 ] || die "usage: $0 stop STATE_DIR"; stop "$2" ;;
  *) die "usage: $0 start STATE_DIR SERVE_DIR | stop STATE_DIR" ;;
esac
