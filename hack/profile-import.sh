#!/usr/bin/env bash
# Where does an import spend its time? Runs one W1 import (the benchmark's qcow2: GPT +
# ext4, 6 GiB virtual, 1 GiB data, served by nginx on 127.0.0.1) under
# `perf record -g` and prints the hottest symbols, self time and with children.
# Where perf cannot record (no perf_event access, e.g. in some containers), it runs
# `valgrind --tool=callgrind` on a smaller image (256 MiB, /usr/share/doc) instead:
# callgrind is ~50x slower, counts instructions, not time, and OpenSSL under valgrind may
# take another code path than on the CPU (no SHA extensions), so hashing looks heavier.
#
#   usage: hack/profile-import.sh [VIMPORT]
#   env:   PROFILE_TOOL=perf|callgrind   (default: perf when it works)
#          PROFILE_CALLGRAPH=fp|dwarf    (default fp; dwarf unwinds code built without
#                                         frame pointers better, but writes GiBs)
#          PROFILE_TOP=40                symbols to print
#          BENCH_DIR=build/bench         images are shared with hack/bench-suite.sh
# The raw profile stays in build/bench/profile/ (perf.data or callgrind.out) for
# `perf report -i ...` or `callgrind_annotate`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/bench-lib.sh
. "$top/hack/bench-lib.sh"
vimport=${1:-${VIMPORT:-$top/build/vimport}}
dir=${BENCH_DIR:-$top/build/bench}
ntop=${PROFILE_TOP:-40}
[ -x "$vimport" ] || bench_die "$vimport is missing; run 'make' first"
bench_need curl python3 /usr/sbin/nginx
out=$dir/profile
mkdir -p "$out"

tool=${PROFILE_TOOL:-}
if [ -z "$tool" ]; then
  if command -v perf >/dev/null && perf record -q -o "$out/probe.data" -- true >/dev/null 2>&1; then
    tool=perf
  elif command -v valgrind >/dev/null; then
    echo "profile-import: perf cannot record here; using valgrind --tool=callgrind on a smaller image" >&2
    tool=callgrind
  else
    bench_die "neither perf nor valgrind works; apt-get install linux-perf valgrind"
  fi
  rm -f "$out/probe.data"
fi

BENCH_WORK=$(mktemp -d "$dir/profile-run.XXXXXX")
cleanup() {
  bench_nginx_stop "$BENCH_WORK/nginx"
  rm -rf "$BENCH_WORK"
}
trap cleanup EXIT

if [ "$tool" = perf ]; then
  cache=$("$top/hack/bench-images.sh" W1)
  serve=$cache/serve file=w1.qcow2
else # callgrind: the same kind of image, small enough to finish in minutes
  serve=$out/small
  file=small.qcow2
  if [ ! -s "$serve/$file" ]; then
    mkdir -p "$serve"
    "$top/hack/make-test-image.sh" "$serve/small.raw" 256 /usr/share/doc
    qemu-img convert -f raw -O qcow2 "$serve/small.raw" "$serve/$file"
    rm -f "$serve/small.raw"
  fi
fi
bench_nginx_start "$serve" "$BENCH_WORK/nginx"
cat "$serve/$file" >/dev/null
cat >"$BENCH_WORK/spec.yaml" <<EOF
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: profile}
spec:
  source:
    http:
      url: "$BENCH_URL/$file"
      checksum: "sha256:$(sha256sum "$serve/$file" | cut -d' ' -f1)"
vimport:
  terminationMessagePath: $BENCH_WORK/termination-log
  target: {path: $BENCH_WORK/target.img}
EOF

case $tool in
  perf)
    # -F 999: about 1000 samples a second per thread, enough for a 10 s import
    perf record -q -F 999 --call-graph "${PROFILE_CALLGRAPH:-fp}" -o "$out/perf.data" -- \
      "$vimport" import --spec "$BENCH_WORK/spec.yaml" 2>"$BENCH_WORK/import.log" ||
      bench_die "the import failed: $(tail -n 3 "$BENCH_WORK/import.log")"
    # libcrypto's assembly has no symbols in Debian's stripped library: its samples are
    # summed per library ("[addresses in ...]") instead of one line per address.
    report() { perf report -i "$out/perf.data" --stdio -g none "$@" 2>/dev/null | grep -v -e '^#' -e '^$' || true; }
    echo "== $file: where the samples fall, by library"
    report --no-children --sort dso | head -n 12
    echo
    echo "== top $ntop symbols by self time (perf report --no-children)"
    report --no-children --sort dso,sym -F overhead,dso,sym >"$BENCH_WORK/self.txt"
    awk '$4 ~ /^0x/ { un[$2] += $1; next } { print } END { for (d in un) printf "    %5.2f%%  %-20s  [addresses in %s, no symbols]\n", un[d], d, d }' \
      "$BENCH_WORK/self.txt" | sort -t% -k1,1 -g -r | head -n "$ntop" || true
    echo
    echo "== by thread (perf report --sort pid: thread id and name)"
    report --no-children --sort pid | head -n 10
    echo
    echo "== symbols with their callees (perf report --children; >= 2%)"
    report --children --sort sym --percent-limit 2 | head -n "$ntop"
    echo
    echo "profile: $out/perf.data (perf report -i $out/perf.data)"
    ;;
  callgrind)
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" --separate-threads=no \
      "$vimport" import --spec "$BENCH_WORK/spec.yaml" 2>"$BENCH_WORK/import.log" ||
      bench_die "the import failed under callgrind: $(tail -n 3 "$BENCH_WORK/import.log")"
    echo "== $file: top $ntop functions by instructions (callgrind_annotate)"
    callgrind_annotate "$out/callgrind.out" 2>/dev/null | sed -n '/^Ir/,$p' | head -n $((ntop + 2))
    echo
    echo "profile: $out/callgrind.out (callgrind_annotate --inclusive=yes $out/callgrind.out)"
    ;;
  *) bench_die "PROFILE_TOOL must be perf or callgrind, not '$tool'" ;;
esac
grep -q '"message":"Import Complete"' "$BENCH_WORK/termination-log" ||
  bench_die "the profiled import did not complete: $(cat "$BENCH_WORK/termination-log")"
