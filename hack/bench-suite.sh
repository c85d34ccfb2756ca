#!/usr/bin/env bash
# The benchmark suite of issue 8 (`make bench`): vimport against what CDI does today,
# and against the machine's limit, on the same images in the same run.
#
#   usage: hack/bench-suite.sh             (make bench runs it through hack/bench.sh)
#   env:   RUNS=3               runs of everything, interleaved (run 1 of every workload,
#                               then run 2, ...), so drift on a noisy machine hits all
#          BENCH_WORKLOADS="W1 W2 W3 W4 W5 R1"
#          BENCH_QUICK=1        RUNS=1, W1 and W3 only; the report goes to
#                               build/bench/benchmarks-quick.md, not docs/
#          BENCH_DIR=build/bench   images (cached, hack/bench-images.sh) and scratch
#          BENCH_DOC=docs/benchmarks.md  the report (its plot: the same name, .png)
#          VIMPORT=build/vimport
#
# Per import workload (W1 qcow2, W2 compressed qcow2, W3 raw, W4 raw.xz and raw.zst),
# all from nginx on 127.0.0.1 with the source in the page cache:
#   baseline  download   curl URL | tee scratch | sha256sum     (CDI: scratch + checksum)
#             convert    qemu-img convert -t writeback -O raw scratch target
#                        (xz/zst: xz -dc / zstd -dc scratch | dd conv=sparse,fsync)
#             blockhash  vimport sum target (the read-back CDI skips; page cache)
#   ours      vimport import --spec (sha256 checksum, fsync, O_DIRECT read-back), split
#             by its log lines into stream (fetch, digest, decode, write, hash: up to
#             "digest: source ..."), read-back (up to "verify: read back ...") and other
#   limit     fetch      curl -o /dev/null URL
#             sha256     openssl dgst -sha256 of the source file (page cache)
#             odirect    O_DIRECT read of the written target's data extents, holes
#                        skipped (bench_odirect_read; no hashing, no page cache)
# W5: vimport sum -t 1/-t 2 and openssl dgst -sha256 of a 2 GiB random file (page
# cache; three turns each per run), vimport sum and verify of the 6 GiB raw target,
# vimport sum of a 100 GiB sparse file; verify against an O_DIRECT read of the same data.
# R1 (issue 22): W1's qcow2 as a containerDisk (podman build, one gzip layer) from Debian's
# docker-registry over TLS on 127.0.0.1 (hack/bench-registry.sh), the registry's blob
# files in the page cache:
#   baseline  download   skopeo copy docker://... dir:SCRATCH     (CDI: pull to scratch)
#             extract    tar -xzf the layer disk/ into SCRATCH
#             convert    qemu-img convert -t writeback -O raw SCRATCH/disk/w1.qcow2 target
#             blockhash  vimport sum target
#   ours      vimport import under CDI's environment (IMPORTER_SOURCE=registry, ...; every
#             blob digest-checked as it streams, no scratch), one stage
#   scratch   the baseline's SCRATCH after the extract (du), and vimport's scratchPath
#             (VIMPORT_SCRATCH_DIR) sampled every 0.2 s during the import (peak):
#             R1.base/ours.scratch_kb
# S1 (the s3 source): W1's qcow2 as an object of moto's S3 server on 127.0.0.1 with its
# signature checks on (tests/e2e/s3-fixture.sh; uploaded once per suite), imported by
# `vimport import --spec` with spec.source.s3 (every request SigV4-signed), next to the
# same bytes from nginx with spec.source.http; both with the same sha256 checksum, both
# read back. The target: the S3 import within 1.2x of the http one (S1.s3/http.total).
# moto answers a GET only once it has read the whole object into memory (seconds for W1;
# nginx: at once), so the report also compares the two after the server's first byte
# (S1.*.first_byte, from vimport's "source: opened" line), and shows the server alone:
# curl's first byte and whole fetch (S1.*.server_first_byte, S1.*.server_fetch).
# Every run checks that the baseline and vimport produced the same disk (block hash).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/bench-lib.sh
. "$top/hack/bench-lib.sh"

vimport=${VIMPORT:-$top/build/vimport}
dir=${BENCH_DIR:-$top/build/bench}
runs=${RUNS:-3}
workloads=${BENCH_WORKLOADS:-W1 W2 W3 W4 W5 R1 S1}
doc=${BENCH_DOC:-$top/docs/benchmarks.md}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  runs=1 workloads=${BENCH_WORKLOADS:-W1 W3} doc=${BENCH_DOC:-$dir/benchmarks-quick.md}
fi
[ -x "$vimport" ] || bench_die "$vimport is missing; run 'make' first"
[[ " $workloads " != *" S1 "* ]] || bench_need timeout
bench_need curl qemu-img openssl xz zstd dd python3 sha256sum tee gnuplot /usr/bin/time /usr/sbin/nginx
[[ " $workloads " != *" R1 "* ]] || bench_need skopeo podman tar /usr/bin/docker-registry
mkdir -p "$dir"

# ---- the machine, described before the images or anything else loads it ----------------
describe_machine() {
  local dev
  dev=$(findmnt -no SOURCE --target "$dir" | head -n 1)
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel: $(uname -sr)"
  echo "disk: $dev ($(findmnt -no FSTYPE --target "$dir" | head -n 1)," \
    "$(lsblk -dno SIZE,ROTA "$dev" 2>/dev/null |
      awk '{ printf "%s, %s", $1, ($2 == 1 ? "rotational" : "non-rotational") }'))"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "vimport: $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
    [ -n "$(git -C "$top" status --porcelain -- pkg cmd 2>/dev/null)" ] && echo " + uncommitted changes")"
  echo "tools: $(curl --version | head -n 1 | cut -d' ' -f1-2), $(qemu-img --version | head -n 1),"\
    "$(openssl version | cut -d' ' -f1-2), $(xz --version | head -n 1), zstd $(zstd -V | grep -o 'v[0-9.]*' | head -n 1),"\
    "$(/usr/sbin/nginx -v 2>&1 | cut -d: -f2 | sed 's/^ *//')"
}

# The baseline writes its scratch copy and its target through the page cache; vimport
# writes around it. How fast this VM fills the page cache moves from hour to hour (seen
# here: 6 GiB of zeros in 31.8 s with 30.7 s of system time after hours of benchmarks,
# while 1 GiB right after a run took 0.7 s), and the baseline with it: the report shows
# it at the start and at the end, so a reader can tell such a run apart. 4 GiB, because
# memory freed a moment ago is fast to reuse and hides the slow case.
probe_page_cache() {
  local f=$dir/probe.$$ t
  sync
  t=$( { /usr/bin/time -f "%e %S" dd if=/dev/zero of="$f" bs=1M count=4096 conv=fsync status=none; } 2>&1)
  rm -f "$f"
  echo "$t" | awk '{ printf "%.2f s (%.2f s of it system time)", $1, $2 }'
}

# What makes the baseline's page-cache writes dear on a VM, read from sysfs (nothing is
# changed): virtio-balloon free page reporting hands freed memory back to the host, so
# the next page the kernel hands out from it faults in the host first; and a DAMON
# scheme may page out cold page cache by itself. Both were on where this suite was
# written, and together they made the baseline 2-3x slower from hour to hour.
reported_kib() { cat /sys/module/page_reporting/parameters/reported_kib 2>/dev/null || echo -; }
describe_reclaim() {
  local d feat on=no k s f age aggr filters
  for d in /sys/bus/virtio/devices/*; do
    [ "$(cat "$d/device" 2>/dev/null)" = 0x0005 ] || continue
    feat=$(cat "$d/features" 2>/dev/null)
    [ "${feat:5:1}" = 1 ] && on=yes # VIRTIO_BALLOON_F_REPORTING is feature bit 5
  done
  echo "free page reporting to the host (virtio-balloon): $on$(
    [ -r /sys/module/page_reporting/parameters/page_reporting_order ] &&
      echo ", blocks of 2^$(cat /sys/module/page_reporting/parameters/page_reporting_order) pages")$(
    [ "$(reported_kib)" != - ] &&
      awk -v k="$(reported_kib)" 'BEGIN { printf ", %.0f GiB reported since boot", k / 1048576 }')"
  for k in /sys/kernel/mm/damon/admin/kdamonds/[0-9]*; do
    [ "$(cat "$k/state" 2>/dev/null)" = on ] || continue
    for s in "$k"/contexts/*/schemes/[0-9]*; do
      [ -d "$s" ] || continue
      age=$(cat "$s/access_pattern/age/min") aggr=$(cat "$s/../../monitoring_attrs/intervals/aggr_us")
      filters=$(for f in "$s"/ops_filters/[0-9]*; do
        [ -d "$f" ] && printf ' %s%s' "$([ "$(cat "$f/allow")" = Y ] && echo + || echo -)" "$(cat "$f/type")"
      done)
      echo "DAMON (kdamond $(basename "$k")): $(cat "$s/action") of memory idle for" \
        "$((age * aggr / 1000000)) s or more, at most $(($(cat "$s/quotas/bytes") >> 20)) MiB per" \
        "$(cat "$s/quotas/reset_interval_ms") ms${filters:+ (filters:$filters)}"
    done
  done
}

BENCH_WORK=$(mktemp -d "$dir/run.XXXXXX")
BENCH_RESULTS=$BENCH_WORK/results.tsv
nginx_state=$BENCH_WORK/nginx
registry_state=$BENCH_WORK/registry
s3_state=$BENCH_WORK/s3
cleanup() {
  [ ! -d "$registry_state" ] || "$top/hack/bench-registry.sh" stop "$registry_state" >/dev/null 2>&1 || true
  [ ! -d "$s3_state" ] || "$top/tests/e2e/s3-fixture.sh" stop "$s3_state" >/dev/null 2>&1 || true
  bench_nginx_stop "$nginx_state"
  rm -rf "$BENCH_WORK"
}
trap cleanup EXIT
describe_machine >"$BENCH_WORK/machine.txt"
describe_reclaim >>"$BENCH_WORK/machine.txt"
reported_at_start=$(reported_kib)
echo "page cache, 4 GiB written (dd, buffered + fsync) at the start: $(probe_page_cache)" >>"$BENCH_WORK/machine.txt"

# R1 and S1 are made from W1's image
image_workloads=$(for w in $workloads; do case $w in R1 | S1) echo W1 ;; *) echo "$w" ;; esac; done | sort -u)
# shellcheck disable=SC2086
cache=$("$top/hack/bench-images.sh" $image_workloads)
serve=$cache/serve
bench_nginx_start "$serve" "$nginx_state"
if [[ " $workloads " == *" R1 "* ]]; then
  r1_layout=$("$top/hack/bench-registry.sh" image "$dir" "$serve/w1.qcow2")
  # shellcheck disable=SC1090
  . "$("$top/hack/bench-registry.sh" start "$registry_state" "$r1_layout")"
  r1_blobs=$REGISTRY_ANON_ROOT/docker/registry/v2/blobs
  echo "registry: $(/usr/bin/docker-registry --version 2>/dev/null | head -n 1), $(skopeo --version), $(podman --version)" \
    >>"$BENCH_WORK/machine.txt"
fi

if [[ " $workloads " == *" S1 "* ]]; then
  "$top/tests/e2e/s3-fixture.sh" start "$s3_state" || bench_die "S1: the S3 server (moto) did not start"
  # shellcheck disable=SC1091
  . "$s3_state/env"
  S3_KEY_ID=$S3_KEY_ID S3_SECRET=$S3_SECRET "$S3_PYTHON" "$top/tests/e2e/s3tool.py" mkbucket "$S3_ENDPOINT" bench &&
    S3_KEY_ID=$S3_KEY_ID S3_SECRET=$S3_SECRET timeout 600 "$S3_PYTHON" "$top/tests/e2e/s3tool.py" put \
      "$S3_ENDPOINT" bench w1.qcow2 "$serve/w1.qcow2" >/dev/null || bench_die "S1: uploading w1.qcow2 failed"
  mkdir -p "$s3_state/secret"
  printf %s "$S3_KEY_ID" >"$s3_state/secret/accessKeyId"
  printf %s "$S3_SECRET" >"$s3_state/secret/secretKey"
  echo "s3: moto $("$S3_PYTHON" -c 'import moto; print(moto.__version__)') (moto_server, IAM signature checks on)" \
    >>"$BENCH_WORK/machine.txt"
fi

# Every contender reads its input from the page cache: the network is loopback and the
# source disk is not part of the comparison. This kernel reclaims cold page cache on its
# own (DAMON, kdamond), so the input is read again right before each contender runs.
# Before that, `sync`: the contender before left dirty pages and freed extents (the
# baseline writes a 6 GiB scratch file and deletes it; this filesystem is mounted with
# `discard`), and their write-back and discards would otherwise land in the next
# contender's time. Measured on W3: vimport right after the baseline 8.16 s, after a
# `sync` 5.79 s, after 20 s of sleep 5.98 s.
warm() {
  sync
  cat "$@" >/dev/null
}

expected_sha256() { awk -v f="$1" '$2 == f { print $1; exit }' "$cache/SHA256SUMS"; }

json_field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$1" "$2"; }

# ---- one import workload: baseline, ours, limit ---------------------------------------
baseline_import() { # baseline_import NAME FILE KIND URL SHA256 -> prints the block hash
  local name=$1 file=$2 kind=$3 url=$4 sha=$5 scratch=$BENCH_WORK/scratch target=$BENCH_WORK/$1-base.img
  local t0 t1 t2 t3 got hash
  rm -f "$scratch" "$target"
  warm "$serve/$file"
  t0=$(bench_now)
  got=$(curl -sSf "$url" | tee "$scratch" | sha256sum | cut -d' ' -f1)
  t1=$(bench_now)
  [ "$got" = "$sha" ] || bench_die "$name baseline: sha256 of the download is $got, expected $sha"
  case $kind in
    qcow2 | raw) qemu-img convert -t writeback -f "$kind" -O raw "$scratch" "$target" ;;
    xz) xz -dc "$scratch" | dd of="$target" bs=1M conv=sparse,fsync status=none ;;
    zst) zstd -qdc "$scratch" | dd of="$target" bs=1M conv=sparse,fsync status=none ;;
  esac
  t2=$(bench_now)
  hash=$("$vimport" sum "$target" | cut -d' ' -f1)
  t3=$(bench_now)
  rm -f "$scratch" "$target"
  bench_record "$name.base.download" "$(bench_sub "$t1" "$t0")"
  bench_record "$name.base.convert" "$(bench_sub "$t2" "$t1")"
  bench_record "$name.base.blockhash" "$(bench_sub "$t3" "$t2")"
  bench_record "$name.base.total" "$(bench_sub "$t3" "$t0")"
  echo "sha256:$hash"
}

ours_import() { # ours_import NAME URL SHA256 TARGET SOURCE_FILE -> prints the block hash
  local spec=$BENCH_WORK/$1.yaml
  bench_import_spec "$spec" "$2" "$3" "$4" "$BENCH_WORK/termination-log"
  ours_run "$1" "$spec" "$4" "$5"
}

ours_run() { # ours_run NAME SPEC TARGET WARM_FILE... -> prints the block hash
  local name=$1 spec=$2 log=$BENCH_WORK/$1-ours.log t_digest t_read total
  rm -f "$3" "$BENCH_WORK/termination-log"
  shift 3
  warm "$@"
  bench_time_rss "$name.ours.total" "$vimport" import --spec "$spec" ||
    bench_die "$name: vimport import failed: $(cat "$BENCH_WORK/termination-log" 2>/dev/null)"
  cp "$BENCH_WORK/last.log" "$log"
  grep -q '"message":"Import Complete"' "$BENCH_WORK/termination-log" ||
    bench_die "$name: vimport import did not complete: $(cat "$BENCH_WORK/termination-log")"
  total=$(awk -F'\t' -v r="${BENCH_RUN:-1}" -v k="$name.ours.total" '$1 == r && $2 == k { v = $3 } END { print v }' "$BENCH_RESULTS")
  t_digest=$(bench_log_seconds "$log" digest "source ")
  t_read=$(bench_log_seconds "$log" verify "read back ")
  if [ -n "$t_digest" ] && [ -n "$t_read" ]; then
    local stream readback
    stream=$(bench_sub "$t_digest" "$BENCH_T0") readback=$(bench_sub "$t_read" "$t_digest")
    bench_record "$name.ours.stream" "$stream"
    bench_record "$name.ours.readback" "$readback"
    bench_record "$name.ours.other" "$(awk -v t="$total" -v a="$stream" -v b="$readback" 'BEGIN { printf "%.3f", t - a - b }')"
  else # the log lines changed: the whole import is one stage
    bench_record "$name.ours.stream" "$total"
  fi
  json_field "$BENCH_WORK/termination-log" '["vimport"]["blockHash"]'
}

limit_import() { # limit_import NAME URL SOURCE_FILE TARGET
  local name=$1 t_fetch t_sha t_read
  warm "$3"
  bench_time "$name.limit.fetch" curl -sSf -o /dev/null "$2"
  bench_time "$name.limit.sha256" openssl dgst -sha256 "$3"
  sync "$4" # vimport fsynced already; no dirty page may turn the read into a write
  bench_time "$name.limit.odirect" bench_odirect_read "$4"
  t_fetch=$(grep -P "^${BENCH_RUN:-1}\t$name.limit.fetch\t" "$BENCH_RESULTS" | cut -f3)
  t_sha=$(grep -P "^${BENCH_RUN:-1}\t$name.limit.sha256\t" "$BENCH_RESULTS" | cut -f3)
  t_read=$(grep -P "^${BENCH_RUN:-1}\t$name.limit.odirect\t" "$BENCH_RESULTS" | cut -f3)
  bench_record "$name.limit.total" "$(awk -v a="$t_fetch" -v b="$t_sha" -v c="$t_read" 'BEGIN { printf "%.3f", a + b + c }')"
}

import_workload() { # import_workload NAME FILE KIND
  local name=$1 file=$2 kind=$3 url=$BENCH_URL/$2 sha base ours target=$BENCH_WORK/$1-ours.img
  sha=$(expected_sha256 "$file")
  [ -n "$sha" ] || bench_die "no checksum of $file in $cache/SHA256SUMS"
  echo "bench: run $BENCH_RUN/$runs $name ($file)" >&2
  base=$(baseline_import "$name" "$file" "$kind" "$url" "$sha")
  ours=$(ours_import "$name" "$url" "$sha" "$target" "$serve/$file")
  [ "$ours" = "$base" ] || bench_die "$name: vimport wrote $ours, the baseline $base: not the same disk"
  limit_import "$name" "$url" "$serve/$file" "$target"
  # W5 hashes and verifies the 6 GiB raw target W3 wrote; the others are dropped
  if [ "$name" = W3 ]; then mv "$target" "$BENCH_WORK/raw6-target.img"; else rm -f "$target"; fi
}

# ---- R1: a containerDisk from a registry -------------------------------------------------
baseline_registry() { # -> prints the block hash
  local scratch=$BENCH_WORK/r1-scratch target=$BENCH_WORK/R1-base.img t0 t1 t2 t3 t4 layer hash
  rm -rf "$scratch" "$target" && mkdir -p "$scratch/extracted"
  warm "$r1_blobs"/sha256/*/*/data
  t0=$(bench_now)
  skopeo copy -q --src-cert-dir "$REGISTRY_CA_DIR" "docker://$REGISTRY_ANON/bench/w1:v1" "dir:$scratch/image"
  t1=$(bench_now)
  layer=$(json_field "$scratch/image/manifest.json" '["layers"][0]["digest"][7:]')
  tar -xzf "$scratch/image/$layer" -C "$scratch/extracted" disk/w1.qcow2
  t2=$(bench_now)
  bench_record R1.base.scratch_kb "$(du -sk "$scratch" | cut -f1)"
  qemu-img convert -t writeback -f qcow2 -O raw "$scratch/extracted/disk/w1.qcow2" "$target"
  t3=$(bench_now)
  hash=$("$vimport" sum "$target" | cut -d' ' -f1)
  t4=$(bench_now)
  rm -rf "$scratch" "$target"
  bench_record R1.base.download "$(bench_sub "$t1" "$t0")"
  bench_record R1.base.extract "$(bench_sub "$t2" "$t1")"
  bench_record R1.base.convert "$(bench_sub "$t3" "$t2")"
  bench_record R1.base.blockhash "$(bench_sub "$t4" "$t3")"
  bench_record R1.base.total "$(bench_sub "$t4" "$t0")"
  echo "sha256:$hash"
}

# peak_kib DIR STOPFILE: print the largest `du -sk DIR` seen every 0.2 s until STOPFILE
# exists, less what the empty DIR itself takes
peak_kib() {
  local peak=0 now empty
  empty=$(du -sk "$1" | cut -f1)
  while [ ! -e "$2" ]; do
    now=$(($(du -sk "$1" 2>/dev/null | cut -f1) - empty))
    [ "${now:-0}" -le "$peak" ] || peak=$now
    sleep 0.2
  done
  echo "$peak"
}

ours_registry() { # -> prints the block hash
  local target=$BENCH_WORK/R1-ours.img scratch=$BENCH_WORK/r1-ours-scratch
  local stop=$BENCH_WORK/r1-stop sampler hash
  rm -rf "$scratch" "$stop" "$target" "$BENCH_WORK/termination-log" && mkdir -p "$scratch"
  peak_kib "$scratch" "$stop" >"$BENCH_WORK/r1-scratch-peak" &
  sampler=$!
  warm "$r1_blobs"/sha256/*/*/data
  # CDI's environment, as its importer pod gets it for a registry source
  bench_time_rss R1.ours.total env -i PATH="$PATH" VIMPORT_METRICS_PORT=0 \
    IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_ANON/bench/w1:v1" \
    IMPORTER_CERT_DIR="$REGISTRY_CA_DIR" VIMPORT_TARGET_PATH="$target" \
    VIMPORT_TARGET_BLOCK_DEVICE="$BENCH_WORK/no-block-device" VIMPORT_SCRATCH_DIR="$scratch" \
    VIMPORT_TERMINATION_MESSAGE_PATH="$BENCH_WORK/termination-log" "$vimport" import ||
    bench_die "R1: vimport import failed: $(cat "$BENCH_WORK/termination-log" 2>/dev/null)"
  touch "$stop"
  wait "$sampler"
  grep -q '"message":"Import Complete"' "$BENCH_WORK/termination-log" ||
    bench_die "R1: vimport import did not complete: $(cat "$BENCH_WORK/termination-log")"
  bench_record R1.ours.scratch_kb "$(cat "$BENCH_WORK/r1-scratch-peak")"
  # one stage: the plot stacks it as the stream
  bench_record R1.ours.stream "$(awk -F'\t' -v r="${BENCH_RUN:-1}" '$1 == r && $2 == "R1.ours.total" { v = $3 } END { print v }' "$BENCH_RESULTS")"
  hash=$(json_field "$BENCH_WORK/termination-log" '["vimport"]["blockHash"]')
  rm -rf "$scratch" "$stop" "$target"
  echo "$hash"
}

registry_workload() {
  local base ours
  echo "bench: run $BENCH_RUN/$runs R1 (W1 as a containerDisk from a registry)" >&2
  base=$(baseline_registry)
  ours=$(ours_registry)
  [ "$ours" = "$base" ] || bench_die "R1: vimport wrote $ours, the baseline $base: not the same disk"
}

# ---- S1: W1 from an S3 server next to the same bytes from nginx ---------------------------
# KEY.total, and KEY.first_byte: from the start to the source's "opened" line, which
# vimport logs when the server's answer (status and headers) has arrived. moto reads the
# whole object into memory before it answers a GET (seconds for W1), nginx answers at
# once; KEY.total minus KEY.first_byte is the S3 path's own time, what vimport can change.
s3_run() { # s3_run KEY SPEC TARGET -> prints the block hash
  local key=$1 t_open
  rm -f "$3" "$BENCH_WORK/termination-log"
  warm "$serve/w1.qcow2"
  bench_time_rss "$key.total" "$vimport" import --spec "$2" ||
    bench_die "S1: vimport import failed: $(cat "$BENCH_WORK/termination-log" 2>/dev/null)"
  t_open=$(bench_log_seconds "$BENCH_WORK/last.log" source "opened ")
  [ -n "$t_open" ] || bench_die "S1: no 'source: opened' line in vimport's log"
  bench_record "$key.first_byte" "$(bench_sub "$t_open" "$BENCH_T0")"
  json_field "$BENCH_WORK/termination-log" '["vimport"]["blockHash"]'
  rm -f "$3"
}

# The server alone: curl's time to the first byte of a GET of the object, and of the
# whole download to /dev/null; "signed": SigV4 with the bench's key, given to curl in a
# config on stdin (-K -), never on a command line.
s3_server_limit() { # s3_server_limit URL KEY [signed]
  local url=$1 key=$2 out config=""
  local -a sign=()
  if [ "${3:-}" = signed ]; then
    config=$(printf 'user = "%s:%s"' "$S3_KEY_ID" "$S3_SECRET")
    sign=(--aws-sigv4 aws:amz:us-east-1:s3 -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
  fi
  out=$(printf '%s\n' "$config" |
    curl -sf -K - "${sign[@]}" -o /dev/null -w '%{time_starttransfer} %{time_total}' "$url") ||
    bench_die "S1: curl $url failed"
  bench_record "$key.server_first_byte" "${out% *}"
  bench_record "$key.server_fetch" "${out#* }"
}

s3_workload() {
  local sha http s3 target=$BENCH_WORK/S1.img
  sha=$(expected_sha256 w1.qcow2)
  echo "bench: run $BENCH_RUN/$runs S1 (W1 from S3, next to nginx)" >&2
  bench_import_spec "$BENCH_WORK/S1-http.yaml" "$BENCH_URL/w1.qcow2" "$sha" "$target" "$BENCH_WORK/termination-log"
  cat >"$BENCH_WORK/S1-s3.yaml" <<EOF
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: bench-s3}
spec:
  source:
    s3:
      url: "$S3_ENDPOINT/bench/w1.qcow2"
      checksum: "sha256:$sha"
      secretRef: bench
vimport:
  terminationMessagePath: $BENCH_WORK/termination-log
  target: {path: $target}
  mounts: {secret: $s3_state/secret}
EOF
  # alternate which goes first, so that drift does not favour one
  if [ $((BENCH_RUN % 2)) = 1 ]; then
    http=$(s3_run S1.http "$BENCH_WORK/S1-http.yaml" "$target")
    s3=$(s3_run S1.s3 "$BENCH_WORK/S1-s3.yaml" "$target")
  else
    s3=$(s3_run S1.s3 "$BENCH_WORK/S1-s3.yaml" "$target")
    http=$(s3_run S1.http "$BENCH_WORK/S1-http.yaml" "$target")
  fi
  warm "$serve/w1.qcow2"
  s3_server_limit "$BENCH_URL/w1.qcow2" S1.http
  s3_server_limit "$S3_ENDPOINT/bench/w1.qcow2" S1.s3 signed
  [ "$s3" = "$http" ] || bench_die "S1: the S3 import wrote $s3, the http one $http: not the same disk"
}

# ---- W5: sum and verify ------------------------------------------------------------------
write_verify_spec() { # write_verify_spec SPEC TARGET BLOCKHASH
  cat >"$1" <<EOF
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: bench-verify}
spec:
  source:
    blank: {}
vimport:
  expectedBlockHash: "$3"
  terminationMessagePath: $BENCH_WORK/verify-log
  target: {path: $2}
EOF
}

sum_workload() {
  local random=$cache/random-2g.img raw6=$BENCH_WORK/raw6-target.img sparse=$BENCH_WORK/sparse-100g.img
  [ -s "$raw6" ] || raw6=$serve/w3.raw # W3 did not run: the same content, as generated
  echo "bench: run $BENCH_RUN/$runs W5 (sum, verify)" >&2
  # sum and openssl both hash from the page cache. Each lasts about a second, so one
  # preempted second moves it most: they take turns three times in each run, and the run
  # counts the median of each (hack/bench-report.sh).
  local rep
  for rep in 1 2 3; do
    warm "$random" && bench_time W5.random.openssl openssl dgst -sha256 "$random"
    warm "$random" && bench_time_rss W5.random.sum_t1 "$vimport" sum -t 1 "$random"
    warm "$random" && bench_time_rss W5.random.sum_t2 "$vimport" sum -t 2 "$random"
  done
  warm "$raw6" && bench_time W5.raw6.openssl openssl dgst -sha256 "$raw6"
  warm "$raw6" && bench_time_rss W5.raw6.sum_t2 "$vimport" sum -t 2 "$raw6"
  local h
  for pair in "raw6:$raw6" "random:$random"; do
    h=sha256:$("$vimport" sum "${pair#*:}" | cut -d' ' -f1)
    write_verify_spec "$BENCH_WORK/verify.yaml" "${pair#*:}" "$h"
    bench_time_rss "W5.${pair%%:*}.verify" "$vimport" verify -t 2 --spec "$BENCH_WORK/verify.yaml" ||
      bench_die "vimport verify of ${pair#*:} failed: $(cat "$BENCH_WORK/verify-log" 2>/dev/null)"
    bench_time "W5.${pair%%:*}.odirect" bench_odirect_read "${pair#*:}"
  done
  rm -f "$sparse" && truncate -s 100G "$sparse"
  bench_time_rss W5.sparse100g.sum "$vimport" sum -t 2 "$sparse"
  rm -f "$sparse"
}

# ---- the runs, interleaved -------------------------------------------------------------
start=$(bench_now)
for BENCH_RUN in $(seq "$runs"); do
  export BENCH_RUN
  for w in $workloads; do
    case $w in
      W1) import_workload W1 w1.qcow2 qcow2 ;;
      W2) import_workload W2 w2.qcow2 qcow2 ;;
      W3) import_workload W3 w3.raw raw ;;
      W4) import_workload W4xz w4.raw.xz xz && import_workload W4zst w4.raw.zst zst ;;
      W5) sum_workload ;;
      R1) registry_workload ;;
      S1) s3_workload ;;
      *) bench_die "unknown workload '$w' (W1..W5, R1, S1)" ;;
    esac
  done
  rm -f "$BENCH_WORK/raw6-target.img"
done
echo "measured in $(bench_sub "$(bench_now)" "$start") s" >>"$BENCH_WORK/machine.txt"
echo "page cache, 4 GiB written (dd, buffered + fsync) at the end: $(probe_page_cache)" >>"$BENCH_WORK/machine.txt"
if [ "$reported_at_start" != - ]; then
  awk -v a="$reported_at_start" -v b="$(reported_kib)" \
    'BEGIN { printf "memory reported to the host during the run: %.1f GiB\n", (b - a) / 1048576 }' \
    >>"$BENCH_WORK/machine.txt"
fi

# kept per report, so that hack/bench-report.sh can redo that report without measuring
keep=$dir/$(basename "${doc%.md}")
cp "$BENCH_RESULTS" "$keep-results.tsv"
cp "$BENCH_WORK/machine.txt" "$keep-machine.txt"
"$top/hack/bench-report.sh" "$keep-results.tsv" "$keep-machine.txt" "$doc"
