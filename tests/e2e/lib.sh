# tests/e2e/lib.sh: helpers for e2e tests. Source it first thing:
#
#   . "$VIMPORT_TOP/tests/e2e/lib.sh"     (or "$(dirname "$0")/lib.sh")
#
# A test exits 0 (pass), 77 (skip) or anything else (fail); run.sh bounds its time.
#
#   e2e_tmpdir                 print the test's private dir under /tmp (also in E2E_TMP,
#                              made when lib.sh is sourced, so "$(e2e_tmpdir)" works); it
#                              and every server below go away on exit
#   e2e_on_exit CMD...         run CMD at exit (before the tmpdir is removed)
#   require_cmd CMD...         skip unless every CMD is on PATH
#   nginx_start DIR            nginx on 127.0.0.1 serving DIR over HTTP and HTTPS with a
#                              fresh test CA (cert for localhost and 127.0.0.1); exports
#                              NGINX_PORT, NGINX_TLS_PORT, NGINX_URL (http://127.0.0.1:P),
#                              NGINX_TLS_URL (https://localhost:P), TEST_CA (PEM file),
#                              TEST_CA_DIR (dir holding only that PEM, like a certConfigMap)
#   faultserver_start DIR [ARGS...]
#                              tests/e2e/faultserver.py serving DIR (ARGS go to it, e.g.
#                              --fault 'reset=1000'); exports FAULT_PORT, FAULT_URL and
#                              FAULT_LOG (one JSON line per request). See faultserver.py
#                              for the fault list (URL query: ?reset=N&times=K ...)
#   registry_start MODE...     tests/e2e/registry-fixture.sh: Debian's docker-registry on
#                              127.0.0.1, one per MODE (anon, basic, token, http) with a
#                              fresh test CA; exports what its env file holds (REGISTRY_CA,
#                              REGISTRY_CA_DIR, REGISTRY_USER, REGISTRY_PASS, REGISTRY_ANON=
#                              127.0.0.1:PORT, REGISTRY_ANON_ROOT, ...; see the fixture)
#   registry_images            build the test containerDisks once (tests/e2e/registry-images.sh,
#                              cached in build/e2e/registry-images-KEY, KEY from the scripts
#                              that make them); exports REGISTRY_IMAGES (that directory)
#   registry_push MODE [REPO...]
#                              push the test images (all, or those REPOs, e.g. disk/gzip) to
#                              the MODE registry of registry_start (repositories: see
#                              registry-images.sh; each is tagged v1)
#   regproxy_start HOST:PORT [ARGS...]
#                              tests/e2e/regproxy.py: HTTPS in front of that registry (of
#                              registry_start: same CA), with faults on blob downloads (ARGS,
#                              e.g. --reset-at 100000, --stall 30 --stall-at 0,
#                              --redirect-blobs); exports REGPROXY (127.0.0.1:PORT), REGPROXY_LOG
#   s3_start                   tests/e2e/s3-fixture.sh: moto_server on 127.0.0.1 with its
#                              IAM signature checks on, started once per test file; exports
#                              S3_ENDPOINT (http://127.0.0.1:PORT), S3_PORT, S3_KEY_ID,
#                              S3_SECRET, S3_PYTHON; skips when moto or boto3 is missing
#   s3tool CMD ARGS...         tests/e2e/s3tool.py CMD $S3_ENDPOINT ARGS... (signed with that
#                              key; bounded by 120 s), e.g. s3tool put BUCKET KEY FILE
#   s3proxy_start [ARGS...]    tests/e2e/s3proxy.py: a TCP proxy in front of that server
#                              (Host and signatures pass unchanged) with faults mid-body
#                              (ARGS, e.g. --reset-at 2000000 [--hold-file F]); exports
#                              S3PROXY_PORT, S3PROXY_LOG
#   env_import VAR=VALUE...    `vimport import` configured only by CDI's environment (env -i:
#                              what the importer pod has), e.g. IMPORTER_SOURCE=registry
#                              IMPORTER_ENDPOINT=docker://...; the target is
#                              $E2E_TMP/disk.img unless VIMPORT_TARGET_PATH is given; bounded
#                              by IMPORT_TIMEOUT (120 s); sets IMPORT_RC, IMPORT_MSG,
#                              IMPORT_RSS_KB like import_run; stderr in $E2E_TMP/import.stderr
#   fail MSG                   print "FAIL: MSG" and exit 1
#   skip REASON                print "SKIP: REASON" and exit 77
#   pass [MSG]                 exit 0
#   assert_eq EXPECTED ACTUAL [WHAT]    fail unless equal
#   import_spec FILE SOURCE CHECKSUM TARGET [LINE...]
#                              write a DataVolume spec: SOURCE is an http(s) URL or a file
#                              path ("-" is stdin); CHECKSUM may be ""; LINEs go under
#                              vimport: (e.g. "windowSize: 8Mi"); the termination message
#                              goes to $E2E_TMP/termination-log
#   import_run SPEC [STDIN_FILE]
#                              run `vimport import --spec SPEC` (STDIN_FILE fed through a
#                              real pipe); sets IMPORT_RC, IMPORT_MSG (termination message),
#                              IMPORT_RSS_KB (peak RSS from /usr/bin/time, "" without it);
#                              stderr in $E2E_TMP/import.stderr
#   import_json EXPR           print field EXPR (Python subscripts, e.g. '["vimport"]["blockHash"]')
#                              of the last termination message
#   import_message             print the last message's text: "message" of a JSON one, else
#                              the plain text (CDI's importer writes plain text on failure)
#   expect_text_failure WHAT [ERE]
#                              fail unless the last import exited 1 with CDI's plain-text
#                              message: one line under 4096 bytes without control characters,
#                              not JSON, that starts with "Unable to process data: " (or
#                              matches ERE when given)
#   expect_message_shape WHAT [RC]
#                              fail unless the last message has CDI's shape for exit RC
#                              (default IMPORT_RC): after 1, expect_text_failure with
#                              CDI_FAILURE_ERE; after 0, one line of JSON of at most 4096
#                              bytes with a non-empty "message"
#   expect_checksum_verdict WHAT
#                              fail unless the last import exited 0 with CDI's fatal verdict:
#                              JSON whose message starts "Unable to process data: " and holds
#                              "checksum mismatch"
#
# Environment from tests/e2e/run.sh: VIMPORT (the binary), VIMPORT_TOP (repo root).

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/tls-lib.sh
. "$E2E_LIB_DIR/tls-lib.sh"
VIMPORT_TOP=${VIMPORT_TOP:-$(cd "$E2E_LIB_DIR/../.." && pwd)}
VIMPORT=${VIMPORT:-$VIMPORT_TOP/build/vimport}
export VIMPORT VIMPORT_TOP

_e2e_exit_cmds=()
E2E_TMP=$(mktemp -d /tmp/vimport-e2e.XXXXXX) || { echo "FAIL: mktemp failed" >&2; exit 1; }
export E2E_TMP

_e2e_cleanup() {
  local i
  for ((i = ${#_e2e_exit_cmds[@]} - 1; i >= 0; i--)); do
    eval "${_e2e_exit_cmds[$i]}" >/dev/null 2>&1 || true
  done
  [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ] && rm -rf "$E2E_TMP"
}
trap _e2e_cleanup EXIT
trap 'exit 130' INT TERM
# Under `set -e` a failing command ends the test silently: name it.
# (Only under errexit: with `set +e` a failing command is the test's to judge.)
trap 'rc_=$?; [[ $- == *e* ]] && echo "FAIL: ${BASH_SOURCE[0]##*/}:$LINENO: exit $rc_ from: $BASH_COMMAND" >&2' ERR

e2e_on_exit() {
  _e2e_exit_cmds+=("$*")
}

e2e_tmpdir() {
  echo "$E2E_TMP"
}

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

skip() {
  echo "SKIP: $*" >&2
  exit 77
}

pass() {
  [ $# -gt 0 ] && echo "PASS: $*" >&2
  exit 0
}

assert_eq() {
  [ "$1" = "$2" ] || fail "${3:-value}: expected '$1', got '$2'"
}

require_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
  done
}

nginx_start() {
  local serve=$1 state
  [ -x "${NGINX:-/usr/sbin/nginx}" ] || skip "nginx is not installed (apt-get install nginx-light)"
  require_cmd openssl python3
  state=$(mktemp -d "$E2E_TMP/nginx.XXXXXX")
  "$E2E_LIB_DIR/nginx-fixture.sh" start "$state" "$serve" || fail "nginx did not start"
  e2e_on_exit "'$E2E_LIB_DIR/nginx-fixture.sh' stop '$state'"
  # shellcheck disable=SC1091
  . "$state/env"
  NGINX_URL=http://127.0.0.1:$NGINX_PORT
  NGINX_TLS_URL=https://localhost:$NGINX_TLS_PORT
  export NGINX_PORT NGINX_TLS_PORT NGINX_URL NGINX_TLS_URL TEST_CA TEST_CA_DIR
}

# e2e_wait_port NAME PID STATE: wait (10 s at most) for the server PID started with
# --port-file STATE/port to write its port; fail naming NAME, with its output
# (STATE/out.log), when it exits or does not come up.
e2e_wait_port() {
  local name=$1 pid=$2 state=$3 _
  for _ in $(seq 100); do
    [ -s "$state/port" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "$name exited: $(cat "$state/out.log")"
    sleep 0.1
  done
  fail "$name did not start within 10 s"
}

faultserver_start() {
  local serve=$1 state pid
  shift
  require_cmd python3
  state=$(mktemp -d "$E2E_TMP/faultserver.XXXXXX")
  python3 "$E2E_LIB_DIR/faultserver.py" --root "$serve" --port-file "$state/port" \
    --log "$state/requests.log" --timeout "${FAULTSERVER_TIMEOUT:-900}" "$@" \
    </dev/null >"$state/out.log" 2>&1 &
  pid=$!
  e2e_on_exit "kill $pid"
  e2e_wait_port "faultserver" "$pid" "$state"
  FAULT_PORT=$(cat "$state/port")
  FAULT_URL=http://127.0.0.1:$FAULT_PORT
  FAULT_LOG=$state/requests.log
  export FAULT_PORT FAULT_URL FAULT_LOG
}

registry_start() {
  local state
  [ -x "${DOCKER_REGISTRY:-/usr/bin/docker-registry}" ] ||
    skip "docker-registry is not installed (hack/install-deps.sh)"
  require_cmd openssl python3 htpasswd curl
  /usr/bin/python3 -c 'import jwt, cryptography' 2>/dev/null ||
    skip "python3-jwt and python3-cryptography are not installed (hack/install-deps.sh)"
  state=$(mktemp -d "$E2E_TMP/registry.XXXXXX")
  e2e_on_exit "'$E2E_LIB_DIR/registry-fixture.sh' stop '$state'"
  "$E2E_LIB_DIR/registry-fixture.sh" start "$state" "$@" || fail "the registry fixture did not start"
  set -a
  # shellcheck disable=SC1091
  . "$state/env"
  set +a
  REGISTRY_STATE=$state
  export REGISTRY_STATE
}

registry_images() {
  local key
  require_cmd podman skopeo qemu-img openssl flock
  key=$(cat "$E2E_LIB_DIR/registry-images.sh" "$E2E_LIB_DIR/regcraft.py" | sha256sum | cut -c1-12)
  REGISTRY_IMAGES=${VIMPORT_REGISTRY_IMAGES:-$VIMPORT_TOP/build/e2e/registry-images-$key}
  export REGISTRY_IMAGES
  [ -e "$REGISTRY_IMAGES/done" ] && return 0
  mkdir -p "$(dirname "$REGISTRY_IMAGES")"
  # older keys: images of scripts that changed since
  local old
  for old in "$(dirname "$REGISTRY_IMAGES")"/registry-images-*; do
    [ "$old" = "$REGISTRY_IMAGES" ] || rm -rf "$old"
  done
  "$E2E_LIB_DIR/registry-images.sh" build "$REGISTRY_IMAGES" >"$E2E_TMP/registry-images.log" 2>&1 ||
    fail "building the registry test images failed: $(tail -n 5 "$E2E_TMP/registry-images.log")"
}

registry_push() {
  local mode=$1 var host args=()
  shift
  var=REGISTRY_${mode^^}
  host=${!var:?registry_push: no $mode registry (registry_start $mode)}
  [ -n "${REGISTRY_IMAGES:-}" ] || registry_images
  case $mode in
    http) args=(--dest-tls-verify=false) ;;
    *) args=(--dest-cert-dir "$REGISTRY_CA_DIR" --dest-creds "$REGISTRY_USER:$REGISTRY_PASS") ;;
  esac
  REGISTRY_PUSH_ONLY="$*" "$E2E_LIB_DIR/registry-images.sh" push "$REGISTRY_IMAGES" "$host" "${args[@]}" \
    >"$E2E_TMP/registry-push-$mode.log" 2>&1 ||
    fail "pushing the test images to the $mode registry failed: $(tail -n 5 "$E2E_TMP/registry-push-$mode.log")"
}

regproxy_start() {
  local upstream=$1 state pid
  shift
  state=$(mktemp -d "$E2E_TMP/regproxy.XXXXXX")
  python3 "$E2E_LIB_DIR/regproxy.py" --upstream "https://$upstream" --ca "$REGISTRY_CA" \
    --tls-cert "$REGISTRY_STATE/tls/server.pem" --tls-key "$REGISTRY_STATE/tls/server.key" \
    --port-file "$state/port" --log "$state/requests.log" --timeout "${FAULTSERVER_TIMEOUT:-900}" \
    "$@" </dev/null >"$state/out.log" 2>&1 &
  pid=$!
  e2e_on_exit "kill $pid"
  e2e_wait_port "regproxy" "$pid" "$state"
  REGPROXY=127.0.0.1:$(cat "$state/port")
  REGPROXY_LOG=$state/requests.log
  export REGPROXY REGPROXY_LOG
}

s3_start() {
  local state=$E2E_TMP/s3 rc=0
  e2e_on_exit "'$E2E_LIB_DIR/s3-fixture.sh' stop '$state'"
  "$E2E_LIB_DIR/s3-fixture.sh" start "$state" || rc=$?
  [ "$rc" -eq 77 ] && skip "moto_server (with boto3) is not installed"
  [ "$rc" -eq 0 ] || fail "the S3 fixture did not start: $(tail -n 5 "$state/moto.log" 2>/dev/null)"
  set -a
  . "$state/env"
  set +a
}

s3tool() {
  local cmd=$1
  shift
  S3_KEY_ID=$S3_KEY_ID S3_SECRET=$S3_SECRET timeout 120 "$S3_PYTHON" "$E2E_LIB_DIR/s3tool.py" \
    "$cmd" "$S3_ENDPOINT" "$@"
}

s3proxy_start() {
  local state pid
  state=$(mktemp -d "$E2E_TMP/s3proxy.XXXXXX")
  python3 "$E2E_LIB_DIR/s3proxy.py" --upstream "$S3_PORT" --port-file "$state/port" \
    --log "$state/requests.log" --timeout "${FAULTSERVER_TIMEOUT:-900}" "$@" \
    </dev/null >"$state/out.log" 2>&1 &
  pid=$!
  e2e_on_exit "kill $pid"
  e2e_wait_port "s3proxy" "$pid" "$state"
  S3PROXY_PORT=$(cat "$state/port")
  S3PROXY_LOG=$state/requests.log
  export S3PROXY_PORT S3PROXY_LOG
}

import_spec() {
  local file=$1 src=$2 checksum=$3 target=$4
  shift 4
  {
    echo "apiVersion: cdi.kubevirt.io/v1beta1"
    echo "kind: DataVolume"
    echo "metadata: {name: e2e}"
    echo "spec:"
    echo "  source:"
    case $src in
      http://* | https://*)
        echo "    http:"
        echo "      url: \"$src\""
        [ -z "$checksum" ] || echo "      checksum: \"$checksum\""
        ;;
      *)
        echo "    file:"
        echo "      path: \"$src\""
        ;;
    esac
    echo "vimport:"
    echo "  terminationMessagePath: $E2E_TMP/termination-log"
    echo "  target: {path: $target}"
    local line
    for line in "$@"; do echo "  $line"; done
  } >"$file"
}

# shellcheck disable=SC2034 # IMPORT_* are for the caller
import_run() {
  local spec=$1 input=${2:-} timer=() rss=$E2E_TMP/import.rss errexit=
  [[ $- == *e* ]] && errexit=1
  rm -f "$E2E_TMP/termination-log" "$rss"
  # GNU time writes the peak RSS (KiB) to its own file, apart from vimport's stderr.
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -f %M -o "$rss")
  set +e
  if [ -n "$input" ]; then
    # cat makes stdin a pipe: not seekable, no size, like a container's stdin.
    # shellcheck disable=SC2002
    cat "$input" | "${timer[@]}" "$VIMPORT" import --spec "$spec" 2>"$E2E_TMP/import.stderr"
    IMPORT_RC=${PIPESTATUS[1]}
  else
    "${timer[@]}" "$VIMPORT" import --spec "$spec" </dev/null 2>"$E2E_TMP/import.stderr"
    IMPORT_RC=$?
  fi
  [ -z "$errexit" ] || set -e
  IMPORT_MSG=$(cat "$E2E_TMP/termination-log" 2>/dev/null || echo "(no termination message)")
  IMPORT_RSS_KB=$(tail -n 1 "$rss" 2>/dev/null || true)
}

# shellcheck disable=SC2034 # IMPORT_* are for the caller
env_import() {
  local timer=() rss=$E2E_TMP/import.rss errexit=
  [[ $- == *e* ]] && errexit=1
  rm -f "$E2E_TMP/termination-log" "$rss"
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -f %M -o "$rss")
  set +e
  timeout --kill-after=5 "${IMPORT_TIMEOUT:-120}" "${timer[@]}" env -i PATH="$PATH" \
    VIMPORT_METRICS_PORT=0 VIMPORT_TARGET_PATH="$E2E_TMP/disk.img" \
    VIMPORT_TARGET_BLOCK_DEVICE="$E2E_TMP/no-block-device" \
    VIMPORT_SCRATCH_DIR="$E2E_TMP/no-scratch" \
    VIMPORT_TERMINATION_MESSAGE_PATH="$E2E_TMP/termination-log" "$@" \
    "$VIMPORT" import </dev/null 2>"$E2E_TMP/import.stderr"
  IMPORT_RC=$?
  [ -z "$errexit" ] || set -e
  IMPORT_MSG=$(cat "$E2E_TMP/termination-log" 2>/dev/null || echo "(no termination message)")
  IMPORT_RSS_KB=$(tail -n 1 "$rss" 2>/dev/null || true)
  case $IMPORT_RC in
    124 | 137) fail "vimport import did not end within ${IMPORT_TIMEOUT:-120} s: $*" ;;
  esac
}

import_json() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' \
    "$E2E_TMP/termination-log" "$1"
}

import_message() {
  python3 - "$E2E_TMP/termination-log" <<'EOF'
import json, sys
raw = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
try:
    print(json.loads(raw)["message"])
except ValueError:
    print(raw.rstrip("\n"))
EOF
}

# The shape of CDI's plain-text failure message (cmd/cdi-importer/importer.go handleImport).
expect_text_failure() {
  local what=$1 ere=${2:-^Unable to process data: } f=$E2E_TMP/termination-log
  [ "$IMPORT_RC" -eq 1 ] || fail "$what: exit $IMPORT_RC, want 1: $IMPORT_MSG"
  [ -s "$f" ] || fail "$what: no termination message"
  python3 - "$f" <<'EOF' || fail "$what: not CDI's plain-text message: $(head -c 600 "$f" | cat -v)"
import json, sys
raw = open(sys.argv[1], "rb").read()
assert len(raw) < 4096, "%d bytes" % len(raw)
assert raw.endswith(b"\n") and b"\n" not in raw[:-1], "not one line"
assert not any(c < 0x20 or c == 0x7f for c in raw[:-1]), "control characters"
try:
    json.loads(raw)
except ValueError:
    pass
else:
    raise AssertionError("JSON: CDI writes plain text after a failure")
EOF
  grep -qE -- "$ere" "$f" || fail "$what: message does not match /$ere/: $IMPORT_MSG"
}

# CDI's fatal checksum verdict (pkg/controller/import-controller.go updatePvcFromPod).
expect_checksum_verdict() {
  local what=$1 msg
  [ "$IMPORT_RC" -eq 0 ] || fail "$what: exit $IMPORT_RC, CDI's contract is 0: $IMPORT_MSG"
  msg=$(import_json '["message"]') || fail "$what: the verdict is not JSON: $IMPORT_MSG"
  [[ $msg == "Unable to process data: "* ]] || fail "$what: message: $msg"
  [[ $msg == *"checksum mismatch"* ]] || fail "$what: no 'checksum mismatch' in: $msg"
}

# Every plain-text failure of an import starts with one of CDI's two phrases.
CDI_FAILURE_ERE='^Unable to (process data|connect to [a-z0-9]+ data source): '

expect_message_shape() {
  local what=$1 rc=${2:-$IMPORT_RC}
  IMPORT_MSG=$(cat "$E2E_TMP/termination-log" 2>/dev/null) || fail "$what: no termination message"
  if [ "$rc" -eq 1 ]; then
    IMPORT_RC=1 expect_text_failure "$what" "$CDI_FAILURE_ERE"
    return
  fi
  python3 - "$E2E_TMP/termination-log" <<'EOF' || fail "$what: bad termination message: $IMPORT_MSG"
import json, sys
raw = open(sys.argv[1], "rb").read()
assert len(raw) <= 4096, "longer than 4096 bytes"
assert raw.count(b"\n") <= 1 and b"\n" not in raw.rstrip(b"\n"), "not one line"
d = json.loads(raw)
assert isinstance(d.get("message"), str) and d["message"], "no message"
EOF
}
