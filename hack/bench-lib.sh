# shellcheck shell=bash
# hack/bench-lib.sh: helpers shared by the benchmark scripts. Sourced, never run.
#
#   bench_die MSG...            print "bench: MSG" and exit 1
#   bench_need CMD...           exit with a message naming the first missing command
#   bench_now                   wall-clock seconds (date +%s.%N)
#   bench_sub A B               A - B, 3 decimals
#   bench_record KEY VALUE      append "RUN<TAB>KEY<TAB>VALUE" to $BENCH_RESULTS
#   bench_time KEY CMD...       run CMD (stdout discarded), record its seconds as KEY
#   bench_time_rss KEY CMD...   the same under /usr/bin/time: also records KEY.rss_kb
#   bench_odirect_read FILE     read FILE's data extents (SEEK_DATA/SEEK_HOLE, holes
#                               skipped) with O_DIRECT, 4 MiB reads; print the bytes read
#   bench_import_spec SPEC URL SHA256 TARGET TERMLOG
#                               write the spec of one benchmark import: the source over
#                               HTTP with its sha256 checksum, a file target
#   bench_log_seconds LOG STAGE PATTERN
#                               epoch seconds of the first vimport log line of STAGE whose
#                               message matches PATTERN ("" when there is none)
#   bench_nginx_start SERVE_DIR STATE_DIR   nginx on 127.0.0.1; sets BENCH_URL
#   bench_nginx_stop STATE_DIR
#
# Results are one line per measurement so that runs can be interleaved and the report
# (hack/bench-report.sh) takes medians per key afterwards.

bench_top=${bench_top:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

bench_die() {
  echo "bench: $*" >&2
  exit 1
}

bench_need() {
  local c
  for c; do
    command -v "$c" >/dev/null || bench_die "$c is not installed; run 'make deps' (hack/install-deps.sh)"
  done
}

bench_now() { date +%s.%N; }

bench_sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

bench_record() {
  printf '%s\t%s\t%s\n' "${BENCH_RUN:-1}" "$1" "$2" >>"${BENCH_RESULTS:?BENCH_RESULTS is not set}"
}

bench_time() {
  local key=$1 t0 t1
  shift
  t0=$(bench_now)
  "$@" >/dev/null
  t1=$(bench_now)
  bench_record "$key" "$(bench_sub "$t1" "$t0")"
}

# Peak RSS from GNU time (kB). The command's own stderr goes to $BENCH_WORK/last.log so
# that a failure can be shown; time writes to its own file (-o), not into that log.
bench_time_rss() {
  local key=$1 t0 t1 rc=0
  shift
  t0=$(bench_now)
  /usr/bin/time -f %M -o "$BENCH_WORK/last.rss" "$@" >/dev/null 2>"$BENCH_WORK/last.log" || rc=$?
  t1=$(bench_now)
  if [ "$rc" -ne 0 ]; then
    echo "bench: '$*' failed (exit $rc):" >&2
    tail -n 5 "$BENCH_WORK/last.log" >&2
    return "$rc"
  fi
  bench_record "$key" "$(bench_sub "$t1" "$t0")"
  bench_record "$key.rss_kb" "$(tail -n 1 "$BENCH_WORK/last.rss")"
  # shellcheck disable=SC2034 # for the caller: when the command started
  BENCH_T0=$t0
}

# The machine's limit for reading back what was written: only the data extents, each
# read once from the device (O_DIRECT: no page cache), no hashing. Python because dd
# cannot skip holes; with 4 MiB reads the interpreter costs a few hundred syscalls.
bench_odirect_read() {
  python3 - "$1" <<'EOF'
import mmap, os, sys
bs = 4 << 20
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, bs)  # page-aligned, as O_DIRECT needs
view = memoryview(buf)
size = os.fstat(fd).st_size
off = total = 0
while off < size:
    try:
        data = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:  # ENXIO: no data after off
        break
    hole = os.lseek(fd, data, os.SEEK_HOLE)
    pos = data - data % 4096
    while pos < hole:
        want = min(bs, -(-(hole - pos) // 4096) * 4096)
        n = os.preadv(fd, [view[:want]], pos)
        if n <= 0:
            break
        pos += n
        total += n
    off = hole
print(total)
EOF
}

bench_import_spec() {
  cat >"$1" <<EOF
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: bench}
spec:
  source:
    http:
      url: "$2"
      checksum: "sha256:$3"
vimport:
  terminationMessagePath: $5
  target: {path: $4}
EOF
}

# vimport logs "<UTC time with ms> <level> <stage>: <message>" (pkg/core/log.h).
bench_log_seconds() {
  local log=$1 stage=$2 pattern=$3 when
  when=$(grep -m1 -E "^[0-9T:.-]+Z [a-z]+ $stage: $pattern" "$log" | cut -d' ' -f1) || true
  [ -n "$when" ] || return 0
  date -d "$when" +%s.%N
}

bench_nginx_start() {
  local serve=$1 state=$2
  NGINX_LIFETIME=${NGINX_LIFETIME:-3600} "$bench_top/tests/e2e/nginx-fixture.sh" start "$state" "$serve" >/dev/null
  # shellcheck disable=SC1091
  . "$state/env"
  # shellcheck disable=SC2034 # for the caller
  BENCH_URL=http://127.0.0.1:$NGINX_PORT
}

bench_nginx_stop() {
  "$bench_top/tests/e2e/nginx-fixture.sh" stop "$1" >/dev/null 2>&1 || true
}
