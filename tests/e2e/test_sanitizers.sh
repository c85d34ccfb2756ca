#!/usr/bin/env bash
# vimport built with a sanitizer runs full commands with no report:
#   - import raw.xz over HTTPS (test CA, checksum, expected block hash, read-back)
#   - import a compressed qcow2 over HTTP, and the same qcow2 through gzip from stdin
#   - import with a connection reset and a Range resume
#   - failing imports: a 404, a decompression bomb, a stalled source stopped by SIGTERM
#   - vimport sum (raw, qcow2, stdin), vimport verify (when cmd/vimport/verify.c exists)
#   - registry imports from the real registry (tests/e2e/registry-fixture.sh): gzip and zstd
#     layers (the read-ahead thread inflating beside the reader), a hostile layer refused
#     while the read-ahead runs, a SIGTERM while a layer's download stalls, and a reset
#     mid-layer resumed with Range
# SANITIZER=address (the default): AddressSanitizer + UndefinedBehaviorSanitizer with
# LeakSanitizer on, binary build/asan-bin/vimport (or VIMPORT_ASAN if set).
# SANITIZER=thread (test_sanitizers_thread.sh): ThreadSanitizer, binary
# build/tsan-bin/vimport (or VIMPORT_TSAN): these commands run every thread vimport has
# (transfer, source digest, digest tap, block hash workers, qcow2 decompression workers).
# The binary is made here with the Makefile (BUILD=build/<dir> CFLAGS=<sanitizer>).
# Reports exit with 86 (ASan/LSan), 87 (UBSan) or 88 (TSan); vimport itself uses 0/1/2.
# stderr is searched for sanitizer reports as well.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd python3 qemu-img xz gzip timeout
tmp=$(e2e_tmpdir)
srv=$tmp/srv
mkdir -p "$srv"

case ${SANITIZER:-address} in
  address)
    san_flags='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all'
    san_dir=asan-bin san_bin=${VIMPORT_ASAN:-} san_name=ASan/UBSan/LSan
    san_report='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer'
    ;;
  thread)
    san_flags='-O1 -g -fsanitize=thread'
    san_dir=tsan-bin san_bin=${VIMPORT_TSAN:-} san_name=TSan
    san_report='WARNING: ThreadSanitizer|SUMMARY: ThreadSanitizer'
    ;;
  *) fail "SANITIZER=$SANITIZER: use address or thread" ;;
esac
if [ -z "$san_bin" ]; then
  make -C "$VIMPORT_TOP" --no-print-directory -j"$(nproc)" BUILD="build/$san_dir" \
    CFLAGS="$san_flags" "build/$san_dir/vimport" >"$tmp/build.log" 2>&1 ||
    fail "the sanitizer build failed: $(grep -m3 -E 'error' "$tmp/build.log")"
  san_bin=$VIMPORT_TOP/build/$san_dir/vimport
fi
VIMPORT=$san_bin
export ASAN_OPTIONS=detect_leaks=1:exitcode=86:abort_on_error=0:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87
export LSAN_OPTIONS=exitcode=86
export TSAN_OPTIONS=exitcode=88:halt_on_error=0:second_deadlock_stack=1

"$VIMPORT_TOP/hack/make-test-image.sh" "$srv/disk.raw" 24 /usr/share/doc/bash
xz -T1 -k -c "$srv/disk.raw" >"$srv/disk.raw.xz"
qemu-img convert -q -c -f raw -O qcow2 "$srv/disk.raw" "$srv/disk.qcow2"
gzip -c "$srv/disk.qcow2" >"$srv/disk.qcow2.gz"
head -c $((64 << 20)) /dev/zero | gzip -1 >"$srv/bomb.raw.gz"
nginx_start "$srv"
faultserver_start "$srv"
target=$tmp/target.img
checked=0

# sanitized WHAT EXPECTED_RC CMD...: run CMD, fail on a sanitizer report or another rc.
# With TERM_AFTER=S, CMD gets SIGTERM after S seconds; stdin is SAN_STDIN (/dev/null).
sanitized() {
  local what=$1 want=$2 rc=0 pid
  shift 2
  timeout -k 5 300 "$@" <"${SAN_STDIN:-/dev/null}" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  if [ -n "${TERM_AFTER:-}" ]; then
    sleep "$TERM_AFTER"
    kill -TERM "$pid" # timeout passes it on to vimport
  fi
  wait "$pid" || rc=$?
  if grep -qE "$san_report" "$tmp/err"; then
    fail "$what: sanitizer report: $(grep -m1 -A12 -E "$san_report" "$tmp/err")"
  fi
  case $rc in
    86 | 87 | 88) fail "$what: sanitizer exit $rc: $(tail -20 "$tmp/err")" ;;
    124 | 137) fail "$what: hung" ;;
  esac
  [ "$rc" -eq "$want" ] || fail "$what: exit $rc, expected $want: $(tail -3 "$tmp/err")"
  checked=$((checked + 1))
  echo "clean: $what"
}

spec() { # SOURCE [vimport lines...]
  import_spec "$tmp/spec.yaml" "$1" "" "$target" "${@:2}"
}

blockhash=sha256:$("$VIMPORT" sum "$srv/disk.raw" | cut -d' ' -f1)

# import over HTTPS with the test CA, checksum and expected block hash
spec "$NGINX_TLS_URL/disk.raw.xz" "mounts: {certs: $TEST_CA_DIR}" "expectedBlockHash: \"$blockhash\""
sed -i "s|^      url:.*|&\n      certConfigMap: test-ca\n      checksum: \"sha256:$(sha256sum "$srv/disk.raw.xz" | cut -d' ' -f1)\"|" "$tmp/spec.yaml"
sanitized "import raw.xz over HTTPS" 0 "$VIMPORT" import --spec "$tmp/spec.yaml"
cmp -s -n "$(stat -c %s "$srv/disk.raw")" "$target" "$srv/disk.raw" || fail "import raw.xz: wrong bytes"
cp "$tmp/spec.yaml" "$tmp/verify.yaml"

# vimport verify of the volume just written
if [ -f "$VIMPORT_TOP/cmd/vimport/verify.c" ]; then
  sanitized "verify" 0 "$VIMPORT" verify --spec "$tmp/verify.yaml"
fi

rm -f "$target"
spec "$NGINX_URL/disk.qcow2" "expectedBlockHash: \"$blockhash\""
sanitized "import compressed qcow2 over HTTP" 0 "$VIMPORT" import --spec "$tmp/spec.yaml"

rm -f "$target"
spec "-" "expectedBlockHash: \"$blockhash\"" "scratchPath: $tmp"
SAN_STDIN=$srv/disk.qcow2.gz sanitized "import qcow2.gz from stdin" 0 \
  "$VIMPORT" import --spec "$tmp/spec.yaml"

rm -f "$target"
spec "$FAULT_URL/disk.raw?reset=$((5 << 20))" "expectedBlockHash: \"$blockhash\""
sanitized "import with a reset and a Range resume" 0 "$VIMPORT" import --spec "$tmp/spec.yaml"

spec "$FAULT_URL/no-such-disk.raw"
sanitized "import of a 404 (fails)" 1 "$VIMPORT" import --spec "$tmp/spec.yaml"

spec "$NGINX_URL/bomb.raw.gz"
sed -i 's|^spec:|&\n  storage: {resources: {requests: {storage: 16Mi}}}|' "$tmp/spec.yaml"
sanitized "import of a decompression bomb (fails)" 1 "$VIMPORT" import --spec "$tmp/spec.yaml"

# SIGTERM while the source stalls: the cancel path frees everything too
spec "$FAULT_URL/disk.raw?stall=10&at=$((3 << 20))" "stallTimeoutSeconds: 60"
TERM_AFTER=3 sanitized "import stopped by SIGTERM (fails)" 1 "$VIMPORT" import --spec "$tmp/spec.yaml"

sanitized "sum raw and qcow2" 0 "$VIMPORT" sum "$srv/disk.raw" "$srv/disk.qcow2"
[ "$(cut -d' ' -f1 <"$tmp/out" | sort -u | wc -l)" -eq 1 ] || fail "sum: raw and qcow2 differ"
SAN_STDIN=$srv/disk.raw sanitized "sum from stdin" 0 "$VIMPORT" sum -
sanitized "sum of a missing file (fails)" 1 "$VIMPORT" sum "$tmp/no-such-file"

# registry: the layer's digest and inflating run on the read-ahead thread
registry_start anon
registry_push anon disk/gzip disk/zstd hostile/dotdot
regimport() { # WHAT RC ENDPOINT: the env contract, as CDI runs the importer
  rm -f "$target" "$tmp/termination-log"
  sanitized "$1" "$2" env -i PATH="$PATH" VIMPORT_METRICS_PORT=0 VIMPORT_TARGET_PATH="$target" \
    VIMPORT_TARGET_BLOCK_DEVICE="$tmp/no-block-device" VIMPORT_SCRATCH_DIR="$tmp/no-scratch" \
    VIMPORT_TERMINATION_MESSAGE_PATH="$tmp/termination-log" IMPORTER_SOURCE=registry \
    IMPORTER_ENDPOINT="docker://$3" IMPORTER_CERT_DIR="$REGISTRY_CA_DIR" \
    ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
    ${LSAN_OPTIONS:+LSAN_OPTIONS="$LSAN_OPTIONS"} ${TSAN_OPTIONS:+TSAN_OPTIONS="$TSAN_OPTIONS"} \
    "$VIMPORT" import
}
disk_oracle=$tmp/registry-oracle.raw
qemu-img convert -q -O raw "$REGISTRY_IMAGES/disks/disk.qcow2" "$disk_oracle"
for repo in disk/gzip disk/zstd; do
  regimport "registry import of $repo" 0 "$REGISTRY_ANON/$repo:v1"
  cmp -s "$target" "$disk_oracle" || fail "registry import of $repo: wrong bytes"
done
regimport "registry import of a layer with a ../ name (fails)" 1 "$REGISTRY_ANON/hostile/dotdot:v1"
regproxy_start "$REGISTRY_ANON" --reset-at 300000 --times 1 --min-length 100000
regimport "registry import with a reset mid-layer" 0 "$REGPROXY/disk/gzip:v1"
cmp -s "$target" "$disk_oracle" || fail "registry import after a reset: wrong bytes"
regproxy_start "$REGISTRY_ANON" --stall 30 --stall-at 300000 --times 1 --min-length 100000
TERM_AFTER=3 regimport "registry import stopped by SIGTERM in a stalled layer (fails)" 1 \
  "$REGPROXY/disk/gzip:v1"

pass "sanitizers: $checked commands with no $san_name report"
