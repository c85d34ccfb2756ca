#!/usr/bin/env bash
# CDI's registry node pull, both sides, from the built binary (pkg/nodepull/nodepull.h):
#   1. the server as CDI runs it: copied to <dir>/server (the name CDI's init container
#      gives it) and as cdi-containerimage-server: -h exits 0 (DataImportCron runs it),
#      an unknown flag 2, an image directory with other than one file 1 and no ready file
#   2. the importer started first, under CDI's environment for a node pull
#      (IMPORTER_SOURCE=http, IMPORTER_ENDPOINT=http://localhost:<port>/disk.img,
#      IMPORTER_READY_FILE, IMPORTER_DONE_FILE, IMPORTER_PULL_METHOD=node): it waits for
#      the ready file, reads the file the ready file names (disk.qcow2, not disk.img),
#      and the result is byte for byte `qemu-img convert -O raw` of it; it touches the
#      done file, and the server removes it and its ready file and exits 0; the labels
#      come from the server's /info (its KUBEVIRT_IO_ environment), as CDI's
#      GetTerminationMessage makes them
#   3. a failed import (a checksum verdict) touches no done file: the server keeps
#      serving, and the retry succeeds and stops it, as a restarted importer container
#      does in CDI's pod
#   4. no ready file within the wait: CDI's "Timeout waiting for file <path>", exit 1
#   5. what the server answers, read with curl: Range (206, suffix, open-ended, past the
#      end 416), HEAD, If-Range, /info with the server's environment, 404 elsewhere
#   6. vimport's own Range re-reads (with If-Range) from the server: a qcow2 whose L1
#      table moved past its data, imported with a 1 MiB window, byte for byte qemu-img's
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd qemu-img qemu-io python3 curl cmp openssl
tmp=$(e2e_tmpdir)

# A qcow2 containerDisk file with data in two places.
mkdir -p "$tmp/disk" "$tmp/shared"
qemu-img create -f qcow2 "$tmp/disk/disk.qcow2" 64M >/dev/null
qemu-io -f qcow2 -c "write -P 0x5a 1M 3M" -c "write -P 0xa5 40M 1M" "$tmp/disk/disk.qcow2" >/dev/null
qemu-img convert -O raw "$tmp/disk/disk.qcow2" "$tmp/oracle.raw"
cp "$VIMPORT" "$tmp/server"
ln -s "$VIMPORT" "$tmp/cdi-containerimage-server"

# ---- 1. the server's command line ------------------------------------------------------------
"$tmp/server" -h >/dev/null 2>&1 || fail "/shared/server -h exits $?, CDI's DataImportCron needs 0"
"$tmp/cdi-containerimage-server" -h >/dev/null 2>&1 || fail "cdi-containerimage-server -h exits $?"
set +e
"$tmp/server" -no-such-flag 2>"$tmp/flag.err"; rc=$?
set -e
assert_eq 2 "$rc" "an unknown flag"
grep -q 'flag provided but not defined: -no-such-flag' "$tmp/flag.err" || fail "unknown flag: $(cat "$tmp/flag.err")"

mkdir -p "$tmp/two" "$tmp/empty"
touch "$tmp/two/a.img" "$tmp/two/b.img"
for dir in two empty; do
  set +e
  timeout 20 "$tmp/server" -p "$(free_port)" -image-dir "$tmp/$dir" -ready-file "$tmp/bad.ready" \
    -done-file "$tmp/bad.done" >/dev/null 2>"$tmp/bad.err"
  rc=$?
  set -e
  assert_eq 1 "$rc" "a server on an image directory '$dir'"
  grep -q "Invalid container image" "$tmp/bad.err" || fail "$dir: $(cat "$tmp/bad.err")"
  [ ! -e "$tmp/bad.ready" ] || fail "$dir: a ready file was written for an invalid image"
done

# ---- helpers ---------------------------------------------------------------------------------
SERVER_PID=
# start_server PORT: the server on the disk directory, as CDI's "server" container runs it.
start_server() {
  "$tmp/server" -p "$1" -image-dir "$tmp/disk" -ready-file "$tmp/shared/ready" \
    -done-file "$tmp/shared/done" >"$tmp/server.out" 2>"$tmp/server.err" &
  SERVER_PID=$!
  e2e_on_exit "kill $SERVER_PID"
}

# server_stops: the server must exit 0 within 10 s of the done file.
server_stops() {
  local _
  for _ in $(seq 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  ! kill -0 "$SERVER_PID" 2>/dev/null || fail "the server is still running 10 s after the done file"
  set +e
  wait "$SERVER_PID"
  local rc=$?
  set -e
  assert_eq 0 "$rc" "the server's exit code"
  [ ! -e "$tmp/shared/done" ] || fail "the server left the done file"
  [ ! -e "$tmp/shared/ready" ] || fail "the server left the ready file"
  grep -q "Importer has completed" "$tmp/server.err" || fail "server log: $(cat "$tmp/server.err")"
}

# importer_start PORT VAR=VALUE...: vimport import under CDI's environment for a node pull,
# in the background (env -i: only what the pod would have).
IMPORTER_PID=
importer_start() {
  local port=$1
  shift
  rm -f "$tmp/termination-log" "$tmp/disk.img"
  env -i PATH="$PATH" VIMPORT_METRICS_PORT=0 VIMPORT_TARGET_PATH="$tmp/disk.img" \
    VIMPORT_TARGET_BLOCK_DEVICE="$tmp/no-block-device" VIMPORT_SCRATCH_DIR="$tmp/not-mounted" \
    VIMPORT_TERMINATION_MESSAGE_PATH="$tmp/termination-log" \
    IMPORTER_SOURCE=http IMPORTER_ENDPOINT="http://localhost:$port/disk.img" \
    IMPORTER_READY_FILE="$tmp/shared/ready" IMPORTER_DONE_FILE="$tmp/shared/done" \
    IMPORTER_PULL_METHOD=node IMPORTER_CONTENTTYPE=kubevirt "$@" \
    "$VIMPORT" import 2>"$tmp/import.stderr" &
  IMPORTER_PID=$!
}

importer_wait() {
  set +e
  wait "$IMPORTER_PID"
  IMPORT_RC=$?
  set -e
  cp "$tmp/termination-log" "$E2E_TMP/termination-log" 2>/dev/null || true
  IMPORT_MSG=$(cat "$tmp/termination-log" 2>/dev/null || echo "(no termination message)")
}

# ---- 2. importer first, then the server: the whole hand-off ---------------------------------
port=$(free_port)
importer_start "$port"
sleep 2 # the importer is waiting for the ready file now
[ ! -e "$tmp/termination-log" ] || fail "the importer did not wait for the ready file: $(cat "$tmp/termination-log")"
# the containerDisk's ENV, which the server serves at /info
INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE=u1.small OTHER=1 start_server "$port"
importer_wait
assert_eq 0 "$IMPORT_RC" "the node-pull import: $IMPORT_MSG; $(tail -5 "$tmp/import.stderr")"
assert_eq "Import Complete" "$(import_json '["message"]')" "the message"
assert_eq "{'instancetype.kubevirt.io/default-instancetype': 'u1.small'}" "$(import_json '["labels"]')" \
  "the labels CDI's envsToLabels makes of the server's /info"
cmp "$tmp/oracle.raw" "$tmp/disk.img" || fail "the imported disk differs from qemu-img convert -O raw"
grep -q "reading http://localhost:$port/disk.qcow2" "$tmp/import.stderr" ||
  fail "the importer did not read the file the ready file names: $(grep nodepull "$tmp/import.stderr")"
server_stops
grep -qx "$tmp/disk/disk.qcow2" "$tmp/server.out" || fail "the server did not print the image tree"

# ---- 3. a failed import touches no done file; the retry does -------------------------------
port=$(free_port)
start_server "$port"
importer_start "$port" IMPORTER_CHECKSUM="sha256:$(printf '%064d' 0)"
importer_wait
expect_checksum_verdict "node pull with a wrong checksum"
[ ! -e "$tmp/shared/done" ] || fail "a failed import touched the done file"
sleep 1.5
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server stopped after a failed import"
importer_start "$port"
importer_wait
assert_eq 0 "$IMPORT_RC" "the retry: $IMPORT_MSG"
cmp "$tmp/oracle.raw" "$tmp/disk.img" || fail "the retry's disk differs from qemu-img convert -O raw"
server_stops

# ---- 4. no server: CDI's timeout message ----------------------------------------------------
importer_start "$(free_port)" VIMPORT_READY_FILE_TIMEOUT=2
importer_wait
assert_eq 1 "$IMPORT_RC" "no ready file"
assert_eq "Timeout waiting for file $tmp/shared/ready" "$IMPORT_MSG" "the timeout message"
[ ! -e "$tmp/shared/done" ] || fail "a timed-out import touched the done file"

# ---- 5. what the server answers ---------------------------------------------------------------
port=$(free_port)
KUBEVIRT_IO_TEST_LABEL='a "quoted" value' start_server "$port"
for _ in $(seq 50); do [ -e "$tmp/shared/ready" ] && break; sleep 0.1; done
assert_eq disk.qcow2 "$(cat "$tmp/shared/ready")" "the ready file's content"
url=http://127.0.0.1:$port/disk.qcow2
size=$(stat -c %s "$tmp/disk/disk.qcow2")
slice() { dd if="$tmp/disk/disk.qcow2" bs=1 skip="$1" count="$2" status=none; }
curl -sf -r 100-199 "$url" | cmp - <(slice 100 100) || fail "Range 100-199"
curl -sf -r -50 "$url" | cmp - <(slice $((size - 50)) 50) || fail "a suffix range"
curl -sf -r $((size - 10))- "$url" | cmp - <(slice $((size - 10)) 10) || fail "an open range"
code=$(curl -s -o /dev/null -w '%{http_code}' -r 100-199 "$url")
assert_eq 206 "$code" "Range status"
headers=$(curl -s -D - -o /dev/null -r "$size"- "$url" | tr -d '\r')
grep -q '^HTTP/1.1 416' <<<"$headers" || fail "a range past the end: $headers"
grep -qx "Content-Range: bytes \*/$size" <<<"$headers" || fail "416 Content-Range: $headers"
headers=$(curl -s -I "$url" | tr -d '\r')
grep -qx "Content-Length: $size" <<<"$headers" || fail "HEAD: $headers"
grep -qx "Accept-Ranges: bytes" <<<"$headers" || fail "HEAD: $headers"
modified=$(sed -n 's/^Last-Modified: //p' <<<"$headers")
code=$(curl -s -o /dev/null -w '%{http_code}' -r 0-9 -H "If-Range: $modified" "$url")
assert_eq 206 "$code" "If-Range equal to Last-Modified"
code=$(curl -s -o /dev/null -w '%{http_code}' -r 0-9 -H "If-Range: Mon, 01 Jan 2001 00:00:00 GMT" "$url")
assert_eq 200 "$code" "If-Range of another version"
curl -sf "http://127.0.0.1:$port/info" | python3 -c '
import json, sys
env = json.load(sys.stdin)["env"]
assert "KUBEVIRT_IO_TEST_LABEL=a \"quoted\" value" in env, env' || fail "/info"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/disk.img")
assert_eq 404 "$code" "a file that is not there"
touch "$tmp/shared/done"
server_stops

# ---- 6. Range re-reads from the server: a qcow2 whose L1 table moved past its data, with a
# window smaller than that data, so vimport re-reads clusters with Range + If-Range ------------
rm -f "$tmp/disk/disk.qcow2"
head -c $((16 << 20)) < <(openssl enc -aes-128-ctr -pass pass:nodepull -nosalt -pbkdf2 </dev/zero 2>/dev/null) >"$tmp/r1"
qemu-img create -q -f qcow2 -o cluster_size=32k "$tmp/disk/late.qcow2" 16M
qemu-io -f qcow2 -c "write -s $tmp/r1 0 16M" "$tmp/disk/late.qcow2" >/dev/null
qemu-img resize -q "$tmp/disk/late.qcow2" 256M
qemu-io -f qcow2 -c "write -s $tmp/r1 100M 16M" "$tmp/disk/late.qcow2" >/dev/null
qemu-img convert -O raw "$tmp/disk/late.qcow2" "$tmp/late.raw"
port=$(free_port)
start_server "$port"
for _ in $(seq 50); do [ -e "$tmp/shared/ready" ] && break; sleep 0.1; done
import_spec "$tmp/late.yaml" "http://127.0.0.1:$port/late.qcow2" "" "$tmp/late.img" "windowSize: 1Mi"
import_run "$tmp/late.yaml"
assert_eq 0 "$IMPORT_RC" "the late-table qcow2 from the server: $IMPORT_MSG"
cmp "$tmp/late.raw" "$tmp/late.img" || fail "the late-table qcow2 differs from qemu-img convert -O raw"
reread=$(grep ' qcow2: ' "$E2E_TMP/import.stderr" | tail -n 1 | sed -n 's/.* \([0-9]*\) bytes re-read.*/\1/p')
[ "${reread:-0}" -gt 0 ] || fail "nothing was re-read by Range: $(grep ' qcow2: ' "$E2E_TMP/import.stderr")"
touch "$tmp/shared/done"
server_stops

pass "node pull: server and importer hand-off, done file, retry, timeout, Range"
