#!/usr/bin/env bash
# Two vimport binaries against each other on one benchmark image: the way a change to
# the data path is judged on this noisy machine. Runs are interleaved (A, B, A, B, ...),
# each after a `sync` with the source in the page cache, and the medians are printed:
# wall seconds, the stream and read-back stages (from vimport's log lines, as in
# hack/bench-suite.sh), CPU seconds (user + system) and peak RSS.
#
#   usage: hack/bench-ab.sh BINARY_A BINARY_B [IMAGE] [RUNS]
#          IMAGE: w1.qcow2 (default), w2.qcow2, w3.raw, w4.raw.xz, w4.raw.zst
#          RUNS:  per binary, default 5
#   env:   BENCH_DIR=build/bench   (images: hack/bench-images.sh, made on first use)
#
# Example: git stash; make; cp build/vimport /tmp/a; git stash pop; make;
#          hack/bench-ab.sh /tmp/a build/vimport w3.raw 7
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/bench-lib.sh
. "$top/hack/bench-lib.sh"
[ $# -ge 2 ] || bench_die "usage: hack/bench-ab.sh BINARY_A BINARY_B [IMAGE] [RUNS]"
bin_a=$1 bin_b=$2 image=${3:-w1.qcow2} runs=${4:-5}
for b in "$bin_a" "$bin_b"; do [ -x "$b" ] || bench_die "$b is not an executable"; done
bench_need python3 /usr/bin/time /usr/sbin/nginx
case $image in
  w1.qcow2) workload=W1 ;; w2.qcow2) workload=W2 ;; w3.raw) workload=W3 ;;
  w4.raw.xz | w4.raw.zst) workload=W4 ;;
  *) bench_die "unknown image '$image' (w1.qcow2, w2.qcow2, w3.raw, w4.raw.xz, w4.raw.zst)" ;;
esac
dir=${BENCH_DIR:-$top/build/bench}
mkdir -p "$dir"
cache=$("$top/hack/bench-images.sh" "$workload")
work=$(mktemp -d "$dir/ab.XXXXXX")
cleanup() {
  bench_nginx_stop "$work/nginx"
  rm -rf "$work"
}
trap cleanup EXIT
bench_nginx_start "$cache/serve" "$work/nginx"
sha=$(awk -v f="$image" '$2 == f { print $1 }' "$cache/SHA256SUMS")
bench_import_spec "$work/spec.yaml" "$BENCH_URL/$image" "$sha" "$work/target.img" "$work/termination-log"

one_run() { # one_run LABEL BINARY: appends "LABEL wall stream readback cpu rss_kb"
  local t0 t1
  rm -f "$work/target.img"
  sync
  cat "$cache/serve/$image" >/dev/null
  t0=$(bench_now)
  /usr/bin/time -f "%U %S %M" -o "$work/time" "$2" import --spec "$work/spec.yaml" 2>"$work/log" ||
    bench_die "$2 failed: $(tail -n 3 "$work/log")"
  t1=$(bench_now)
  python3 - "$1" "$t0" "$t1" "$work/log" "$work/time" >>"$work/results" <<'EOF'
import datetime, sys
label, t0, t1, log, tm = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
def when(stage):
    for line in open(log):
        if f" {stage}" in line:
            return datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
    sys.exit(f"bench-ab: no '{stage}' line in the log")
digest, read = when("digest: source"), when("verify: read back")
user, sys_, rss = open(tm).read().split()[-3:]
print(label, t1 - t0, digest - t0, read - digest, float(user) + float(sys_), rss)
EOF
}

for i in $(seq "$runs"); do
  one_run A "$bin_a"
  one_run B "$bin_b"
  echo "bench-ab: run $i/$runs done" >&2
done
echo "$image, $runs interleaved runs each, medians (min-max of wall):"
python3 - "$work/results" "$bin_a" "$bin_b" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for label, name in (("A", sys.argv[2]), ("B", sys.argv[3])):
    r = [list(map(float, x[1:])) for x in rows if x[0] == label]
    med = lambda i: statistics.median(v[i] for v in r)
    walls = [v[0] for v in r]
    print(f"{label} {name}: wall {med(0):.2f} s ({min(walls):.2f}-{max(walls):.2f}), "
          f"stream {med(1):.2f}, read-back {med(2):.2f}, cpu {med(3):.2f} s, "
          f"peak RSS {med(4) / 1024:.0f} MiB")
EOF
