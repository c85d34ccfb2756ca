#!/usr/bin/env bash
# Hostile input: images that lie about their size and error text built to break the
# termination message. Every import runs under `timeout` and /usr/bin/time (peak RSS).
#
#   1. decompression bombs: gzip, xz and zstd streams of 16 GiB of zeros (256
#      concatenated members of 64 MiB each; 0.5-16 MiB on disk), from a file and over
#      HTTP, into a 256 MiB target: exit 1 with "decompression bomb", fast, small RSS,
#      nothing left on the target
#   2. decoder memory: an xz stream that asks for a 1.5 GiB dictionary and a zstd frame
#      with a 2 GiB window: refused before allocating, naming the limit
#   3. qcow2 whose virtual size (1 TiB) exceeds the target: "A larger PVC is required"
#      before any write
#   4. qcow2 whose header says 1 MiB while its tables map 8 MiB: only the virtual size is
#      imported, the same bytes as `qemu-img convert`
#   5. termination message under hostile error text: a 404 on an 8 KiB URL full of
#      quotes, backslashes and percent-encoded control bytes; a URL with raw control
#      bytes; a spec with an 8 KiB unknown key of quotes and control bytes. The message
#      stays one line of plain text (CDI writes text after a failure) under 4096 bytes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd python3 timeout gzip xz zstd qemu-img
[ -x /usr/bin/time ] || skip "GNU time is not installed (apt-get install time): RSS cannot be measured"
tmp=$(e2e_tmpdir)
srv=$tmp/srv
mkdir -p "$srv"
target=$tmp/target.img
MAX_RSS_KB=${MAX_RSS_KB:-262144} # 256 MiB: far below CDI's 600M pod limit
MAX_SECONDS=${MAX_SECONDS:-30}

section() { echo "[${SECONDS}s] $*"; }
message() { import_message; }

# run_import: import $tmp/spec.yaml under a time bound, measuring time and peak RSS;
# sets rc, msg, rss_kb, took; fails on a crash, a hang or a bad termination message
run_import() {
  local start=$SECONDS
  rm -f "$E2E_TMP/termination-log" "$tmp/rss"
  rc=0
  env "$@" /usr/bin/time -f %M -o "$tmp/rss" timeout -k 5 120 "$VIMPORT" import \
    --spec "$tmp/spec.yaml" </dev/null 2>"$tmp/stderr" || rc=$?
  took=$((SECONDS - start))
  rss_kb=$(tail -n 1 "$tmp/rss" 2>/dev/null || echo 0)
  case $rc in
    0 | 1) ;;
    124 | 137) fail "$what: hung" ;;
    *) fail "$what: exit $rc (crash?): $(tail -3 "$tmp/stderr")" ;;
  esac
  # exit 1: one line of plain text (spec errors too, so any text here; the cases check
  # the words); exit 0: one line of valid JSON
  if [ "$rc" -eq 1 ]; then
    IMPORT_RC=1 IMPORT_MSG=$(head -c 600 "$E2E_TMP/termination-log") expect_text_failure "$what" .
  else
    expect_message_shape "$what" "$rc"
  fi
  msg=$(cat "$E2E_TMP/termination-log")
}

expect_bounded() { # error REGEX
  [ "$rc" -eq 1 ] || fail "$what: expected exit 1, got $rc: $msg"
  message | grep -qE "$CDI_FAILURE_ERE" || fail "$what: not CDI's failure message: $msg"
  message | grep -qiE "$1" || fail "$what: message does not match /$1/: $msg"
  [ "$took" -le "$MAX_SECONDS" ] || fail "$what: took ${took}s (bound ${MAX_SECONDS}s)"
  [ "$rss_kb" -le "$MAX_RSS_KB" ] || fail "$what: peak RSS ${rss_kb} KiB (bound ${MAX_RSS_KB} KiB)"
  [ ! -s "$target" ] || fail "$what: $(stat -c %s "$target") bytes left on the target"
  echo "$what: refused in ${took}s, peak RSS $((rss_kb / 1024)) MiB"
}

# spec SOURCE [vimport: lines]: a 256 MiB requested volume
spec() {
  import_spec "$tmp/spec.yaml" "$1" "" "$target" "${@:2}"
  sed -i 's|^spec:|&\n  storage: {resources: {requests: {storage: 256Mi}}}|' "$tmp/spec.yaml"
}

# ---- 1. decompression bombs ---------------------------------------------------------------
section "decompression bombs"
head -c 64M /dev/zero | gzip -9 >"$tmp/z.gz"
head -c 64M /dev/zero | xz -9 -T1 >"$tmp/z.xz"
head -c 64M /dev/zero | zstd -19 -q >"$tmp/z.zst"
for ext in gz xz zst; do
  for _ in $(seq 256); do cat "$tmp/z.$ext"; done >"$srv/bomb.raw.$ext"
done
nginx_start "$srv"
for ext in gz xz zst; do
  for via in file http; do
    what="16 GiB $ext bomb ($(stat -c %s "$srv/bomb.raw.$ext") bytes) via $via"
    rm -f "$target"
    case $via in
      file) spec "$srv/bomb.raw.$ext" ;;
      http) spec "$NGINX_URL/bomb.raw.$ext" ;;
    esac
    run_import
    expect_bounded "larger than the target's capacity.*decompression bomb"
  done
done

# ---- 2. decoder memory ---------------------------------------------------------------------
section "decoder memory"
head -c 16M /dev/zero | xz -T1 --lzma2=preset=0,dict=1536MiB >"$srv/bigdict.raw.xz"
head -c 16M /dev/zero | zstd -q -1 --long=31 >"$srv/bigwindow.raw.zst" 2>/dev/null
for f in bigdict.raw.xz bigwindow.raw.zst; do
  what="$f"
  rm -f "$target"
  spec "$NGINX_URL/$f"
  run_import
  expect_bounded "needs .*(decoder memory|memory).*limit"
done

# ---- 3. qcow2 larger than the target --------------------------------------------------------
section "qcow2 virtual size"
qemu-img create -q -f qcow2 "$srv/huge.qcow2" 1T
what="qcow2 of 1 TiB into 256 MiB"
rm -f "$target"
spec "$NGINX_URL/huge.qcow2"
run_import
expect_bounded "A larger PVC is required"

# ---- 4. qcow2 that maps clusters past its virtual size ---------------------------------------
python3 -c 'import os,sys; open(sys.argv[1],"wb").write(os.urandom(4<<20) + b"A"*(4<<20))' "$tmp/c.raw"
qemu-img convert -q -c -f raw -O qcow2 "$tmp/c.raw" "$srv/lie.qcow2"
python3 - "$srv/lie.qcow2" <<'EOF'
import struct, sys
with open(sys.argv[1], "r+b") as f:  # header "size" field: 1 MiB instead of 8 MiB
    f.seek(24)
    f.write(struct.pack(">Q", 1 << 20))
EOF
qemu-img convert -q -f qcow2 -O raw "$srv/lie.qcow2" "$tmp/lie.raw"
what="qcow2 with a header smaller than its tables"
rm -f "$target"
spec "$NGINX_URL/lie.qcow2"
run_import
[ "$rc" -eq 0 ] || fail "$what: exit $rc: $msg"
assert_eq 1048576 "$(import_json '["vimport"]["virtualSize"]')" "$what: virtual size"
assert_eq "sha256:$("$VIMPORT" sum "$tmp/lie.raw" | cut -d' ' -f1)" \
  "$(import_json '["vimport"].get("imageBlockHash", d["vimport"]["blockHash"])')" \
  "$what: block hash vs qemu-img convert"

# ---- 5. hostile error text in the termination message ---------------------------------------
section "termination message under hostile error text"
faultserver_start "$srv"
# 8 KiB of path: quotes, backslashes, percent-encoded control bytes and UTF-8
evil=$(python3 -c 'print(("q%22%5C%01%0A%7F%E2%80%AE\\x%09\"" * 400)[:8192])')
what="404 on an 8 KiB hostile URL"
rm -f "$target"
spec "$FAULT_URL/$evil"
# the URL must reach YAML intact: write it with a YAML escape for every quote/backslash
python3 - "$tmp/spec.yaml" "$FAULT_URL/$evil" <<'EOF'
import json, re, sys
path, url = sys.argv[1], sys.argv[2]
text = open(path).read()
text = re.sub(r'(?m)^      url: .*$', lambda m: "      url: " + json.dumps(url), text)
open(path, "w").write(text)
EOF
run_import
[ "$rc" -eq 1 ] || fail "$what: exit $rc: $msg"
message | grep -qE "HTTP 404|malformed|URL" || fail "$what: message does not say what happened: $msg"
echo "$what: $(wc -c <"$E2E_TMP/termination-log") bytes of plain text, one line"

what="a URL with raw control bytes and a line break"
rm -f "$target"
spec "$FAULT_URL/x"
python3 - "$tmp/spec.yaml" "$FAULT_URL" <<'EOF'
import json, re, sys
path, base = sys.argv[1], sys.argv[2]
url = base + "/a\"b\\c\x01\x02\x1b[31m\r\nX-Injected: 1\x7f" + "\"" * 3000
text = open(path).read()
text = re.sub(r'(?m)^      url: .*$', lambda m: "      url: " + json.dumps(url), text)
open(path, "w").write(text)
EOF
# a spec the loader refuses: the message goes where the environment says
run_import VIMPORT_TERMINATION_MESSAGE_PATH="$E2E_TMP/termination-log"
[ "$rc" -eq 1 ] || fail "$what: exit $rc: $msg"
if grep -q '"X-Injected"' "$FAULT_LOG" 2>/dev/null; then
  fail "$what: a header was injected into the request"
fi

what="a spec with an 8 KiB unknown key of quotes and control bytes"
import_spec "$tmp/spec.yaml" "$FAULT_URL/disk.raw" "" "$target"
python3 - "$tmp/spec.yaml" <<'EOF'
import json, sys
key = ("k\"\\\x01\x07\x1b\u202e\t" * 1100)[:8192]
with open(sys.argv[1], "a") as f:  # an explicit "? key" (simple keys stop at 1024)
    f.write("  ? " + json.dumps(key) + "\n  : 1\n")
EOF
run_import VIMPORT_TERMINATION_MESSAGE_PATH="$E2E_TMP/termination-log"
[ "$rc" -eq 1 ] || fail "$what: exit $rc: $msg"
message | grep -qi "unknown key" || fail "$what: the message does not name the problem: $msg"

pass "hostile input: bombs stopped at the bound, message stays one line within 4096 bytes"
