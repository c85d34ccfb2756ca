#!/usr/bin/env bash
# Turn the measurements of hack/bench-suite.sh into the table (stdout), a Markdown
# report and its plot (gnuplot, stacked bars of seconds per stage).
#
#   usage: hack/bench-report.sh RESULTS.tsv MACHINE.txt OUT.md
#          (the plot is OUT.md with .png instead of .md; the Markdown embeds it)
#
# RESULTS.tsv has one line per measurement, "RUN<TAB>KEY<TAB>VALUE" (bench_record in
# hack/bench-lib.sh); every number shown is the median over the runs of its key, and
# every ratio is the median of the per-run ratio's parts (a median of totals, not a sum
# of medians of stages). Rerun it on build/bench/last-results.tsv to redo the report
# without measuring again (make bench keeps them as build/bench/benchmarks-results.tsv
# and benchmarks-machine.txt).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 RESULTS.tsv MACHINE.txt OUT.md" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "bench-report: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
results=$1 machine=$2 md=$3
png=${md%.md}.png
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$results" "$machine" "$md" "$png" "$work" <<'EOF'
import collections, os, statistics, subprocess, sys

results, machine_file, md_path, png_path, work = sys.argv[1:]
samples = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(results):
    run, key, value = line.rstrip("\n").split("\t")
    samples[key][int(run)].append(float(value))
# key -> run -> value; a key timed several times in one run (W5) counts as their median
vals = {k: {r: statistics.median(v) for r, v in d.items()} for k, d in samples.items()}
runs = max((r for d in vals.values() for r in d), default=0)
machine = [l.rstrip("\n") for l in open(machine_file)]

def med(key):
    d = vals.get(key)
    return statistics.median(d.values()) if d else None

def fmt(x, spec="%.2f"):
    return "-" if x is None else spec % x

def mib(key):
    v = med(key)
    return None if v is None else v / 1024

IMPORTS = [  # name, what
    ("W1", "W1 qcow2 import (6 GiB virtual, 1 GiB data)"),
    ("W2", "W2 compressed qcow2 import"),
    ("W3", "W3 raw import (6 GiB, mostly zeros)"),
    ("W4xz", "W4 raw.xz import"),
    ("W4zst", "W4 raw.zst import"),
    ("R1", "R1 W1 as a containerDisk (gzip layer) from a registry"),
]
STAGES = [  # key suffix, legend
    ("base.download", "baseline: curl | tee scratch | sha256sum (R1: skopeo copy to dir:)"),
    ("base.extract", "baseline: tar -xzf the layer (R1)"),
    ("base.convert", "baseline: qemu-img convert (xz/zstd -dc | dd)"),
    ("base.blockhash", "baseline: vimport sum target"),
    ("ours.stream", "vimport: fetch, digest, decode, write, hash"),
    ("ours.readback", "vimport: fsync + O_DIRECT read-back"),
    ("ours.other", "vimport: start-up, report"),
    ("limit.fetch", "limit: curl -o /dev/null"),
    ("limit.sha256", "limit: openssl dgst -sha256"),
    ("limit.odirect", "limit: O_DIRECT read of the data"),
]

rows = []  # what, ours, base, base_label, limit, rss, target, ok

def verdict(ok):
    return "-" if ok is None else ("PASS" if ok else "MISS")

import_rss = []
for name, what in IMPORTS:
    o, b, l = med(name + ".ours.total"), med(name + ".base.total"), med(name + ".limit.total")
    if o is None:
        continue
    rss = mib(name + ".ours.total.rss_kb")
    import_rss.append(rss)
    target, ok = "-", None
    if name in ("W1", "W2"):
        target, ok = "<= 0.33 of baseline", o / b <= 0.33
    elif name == "W3":
        target, ok = "<= 0.15 of baseline", o / b <= 0.15
    elif name == "R1":
        target, ok = "<= 0.3 of baseline", o / b <= 0.3
    rows.append((what, o, b, l, rss, target, ok))
    if name == "W1":
        rows.append(("W1 against the limit", o, None, l, None, "<= 1.3x limit", o / l <= 1.3))
s3_total, s3_http = med("S1.s3.total"), med("S1.http.total")
if s3_total is not None:
    rows.append(("S1 W1 from S3 (moto, SigV4; baseline: the same import from nginx)", s3_total,
                 s3_http, None, mib("S1.s3.total.rss_kb"), "<= 1.2x http",
                 s3_http is not None and s3_total / s3_http <= 1.2))
def med_diff(a, b):
    """The median over the runs of a - b, for runs that have both."""
    da, db = vals.get(a, {}), vals.get(b, {})
    d = [da[r] - db[r] for r in da if r in db]
    return statistics.median(d) if d else None

# moto answers a GET once it has read the whole object (seconds); nginx at once. What
# the S3 path itself costs is the time after the server's first byte.
s3_after, http_after = med_diff("S1.s3.total", "S1.s3.first_byte"), med_diff("S1.http.total", "S1.http.first_byte")
if s3_after is not None and http_after is not None:
    rows.append(("S1 after the server's first byte (moto %s s to it, nginx %s s)" %
                 (fmt(med("S1.s3.first_byte")), fmt(med("S1.http.first_byte"))),
                 s3_after, http_after, None, None, "<= 1.2x http", s3_after / http_after <= 1.2))
if med("S1.s3.server_fetch") is not None:
    rows.append(("S1 servers alone, curl to /dev/null: moto %s s (first byte %s s), nginx %s s" %
                 (fmt(med("S1.s3.server_fetch")), fmt(med("S1.s3.server_first_byte")),
                  fmt(med("S1.http.server_fetch"))), None, None, None, None, "-", None))
r1_scratch = mib("R1.ours.scratch_kb"), mib("R1.base.scratch_kb")
if r1_scratch[0] is not None:
    rows.append(("R1 scratch used: vimport %s MiB, baseline %s MiB" %
                 (fmt(r1_scratch[0], "%.0f"), fmt(r1_scratch[1], "%.0f")),
                 None, None, None, None, "none", r1_scratch[0] == 0))
if import_rss:
    m = max(import_rss)
    rows.append(("vimport import peak RSS, worst workload", None, None, None, m,
                 "<= 128 MiB", m <= 128))

sum_rss = []
def w5(what, key, base_key=None, limit_key=None, target="-", check=None):
    o = med(key)
    if o is None:
        return
    b = med(base_key) if base_key else None
    l = med(limit_key) if limit_key else None
    rss = mib(key + ".rss_kb")
    if rss is not None:
        sum_rss.append(rss)
    rows.append((what, o, b, l, rss, target, check(o, b) if check else None))

w5("W5 sum -t 2, 2 GiB random (baseline: openssl dgst)", "W5.random.sum_t2", "W5.random.openssl",
   target=">= 1.8x openssl throughput", check=lambda o, b: b / o >= 1.8)
w5("W5 sum -t 1, 2 GiB random (baseline: openssl dgst)", "W5.random.sum_t1", "W5.random.openssl")
w5("W5 sum -t 2, 6 GiB raw target (baseline: openssl dgst)", "W5.raw6.sum_t2", "W5.raw6.openssl")
w5("W5 verify, 6 GiB raw target (limit: O_DIRECT read)", "W5.raw6.verify", limit_key="W5.raw6.odirect")
w5("W5 verify, 2 GiB random (limit: O_DIRECT read)", "W5.random.verify", limit_key="W5.random.odirect")
w5("W5 sum, 100 GiB sparse file", "W5.sparse100g.sum", target="< 1 s", check=lambda o, b: o < 1)
if sum_rss:
    m = max(sum_rss)
    rows.append(("vimport sum / verify peak RSS, worst case", None, None, None, m, "<= 64 MiB", m <= 64))

HEAD = ["what", "ours s", "baseline s", "ours/baseline", "limit s", "ours/limit",
        "peak RSS MiB", "target", "result"]

def cells(r):
    what, o, b, l, rss, target, ok = r
    return [what, fmt(o), fmt(b), fmt(o / b if o is not None and b else None),
            fmt(l), fmt(o / l if o is not None and l else None), fmt(rss, "%.0f"), target, verdict(ok)]

table = [cells(r) for r in rows]

def text_table(head, body):
    w = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda r: "  ".join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i]) for i, c in enumerate(r))
    return "\n".join([line(head), line(["-" * n for n in w])] + [line(r) for r in body])

def md_table(head, body):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
    return "\n".join(out)

stage_head = ["workload"] + [s[0] for s in STAGES] + ["baseline", "ours", "limit"]
stage_body = []
for name, what in IMPORTS:
    if med(name + ".ours.total") is None:
        continue
    stage_body.append([name] + [fmt(med(name + "." + s)) for s, _ in STAGES] +
                      [fmt(med(name + "." + c + ".total")) for c in ("base", "ours", "limit")])

run_head = ["run"] + [n + " " + c for n, _ in IMPORTS if med(n + ".ours.total") is not None
                      for c in ("base", "ours", "limit")]
run_body = []
for r in range(1, runs + 1):
    run_body.append([str(r)] + [fmt(vals.get(n + "." + c + ".total", {}).get(r)) for n, _ in IMPORTS
                                if med(n + ".ours.total") is not None for c in ("base", "ours", "limit")])

title = "vimport benchmarks (median of %d run%s, runs interleaved)" % (runs, "" if runs == 1 else "s")
print("== " + title)
for l in machine:
    print("   " + l)
print()
print(text_table(HEAD, table))
print()
if stage_body:
    print("seconds per stage (medians; a total is the median of the per-run totals):")
    print(text_table(stage_head, stage_body))

# ---- the plot ----------------------------------------------------------------------------
dat = os.path.join(work, "stages.tsv")
with open(dat, "w") as f:
    f.write("\t".join(["what"] + [legend for _, legend in STAGES]) + "\n")
    for name, _ in IMPORTS:
        if med(name + ".ours.total") is None:
            continue
        for c, label in (("base", "baseline"), ("ours", "vimport"), ("limit", "limit")):
            f.write("\t".join([name + " " + label] +
                              [fmt(med(name + "." + s) or 0.0, "%.3f") if s.startswith(c + ".") else "0"
                               for s, _ in STAGES]) + "\n")
        f.write("\t".join([""] + ["0"] * len(STAGES)) + "\n")  # a gap between workloads
gp = os.path.join(work, "plot.gp")
with open(gp, "w") as f:
    f.write("""set terminal pngcairo size 1280,640 font "sans,10"
set output "%s"
set datafile separator "\\t"
set title "%s: seconds per stage, baseline vs vimport vs the machine's limit"
set style data histograms
set style histogram rowstacked
set style fill solid 0.9 border -1
set boxwidth 0.75
set ylabel "seconds (median)"
set yrange [0:*]
set grid ytics
set xtics rotate by -40 nomirror
set key outside right top vertical Left reverse noenhanced
set linetype 1 lc rgb "#9e2a2b"
set linetype 2 lc rgb "#c8553d"
set linetype 3 lc rgb "#e09f3e"
set linetype 4 lc rgb "#f4d58d"
set linetype 5 lc rgb "#1d4e89"
set linetype 6 lc rgb "#4f9dd9"
set linetype 7 lc rgb "#a7d3f5"
set linetype 8 lc rgb "#2d6a4f"
set linetype 9 lc rgb "#74c69d"
set linetype 10 lc rgb "#d8f3dc"
plot for [i=2:%d] "%s" using i:xtic(1) title columnheader(i)
""" % (png_path, title, len(STAGES) + 1, dat))
plotted = bool(stage_body)  # W5 alone has no stages to stack
if plotted:
    subprocess.run(["gnuplot", gp], check=True)

# ---- the Markdown ------------------------------------------------------------------------
doc = """# Benchmarks

Written by `make bench` (`hack/bench.sh` -> `hack/bench-suite.sh`, report by
`hack/bench-report.sh`); this is the last run. Issue 8 sets the targets.

**This machine is noisy and shared**: other builds and tests run on it at the same time,
so absolute seconds move from run to run (see the per-run totals below). Runs are
interleaved (run 1 of every workload, then run 2, ...) so that drift hits every
contender alike, and each number is a median; ratios mean more than seconds. The load
average at the start is in the machine's description. This kernel also reclaims cold
page cache by itself (DAMON, `kdamond`), so each contender's input is read into the page
cache again right before it runs, outside its timing.

## Machine

%s

## Results

%s

- **ours**: `vimport import --spec` with a sha256 `checksum`: one pass over the source
  (digest, decode, write, block hash), fsync, O_DIRECT read-back and block-hash compare.
- **baseline** (CDI today plus the read-back it skips): `curl URL | tee scratch | sha256sum`,
  then `qemu-img convert -t writeback -O raw scratch target` (raw.xz / raw.zst:
  `xz -dc` / `zstd -dc scratch | dd conv=sparse,fsync` instead), then `vimport sum target`.
  Its block hash reads the target from the page cache while vimport's read-back reads the
  disk with O_DIRECT, which favours the baseline. Coreutils' `sha256sum` does not use the
  CPU's SHA extensions (OpenSSL does), which slows the baseline's download stage.
- **limit**: `curl -o /dev/null URL` + `openssl dgst -sha256` of the source file (page cache)
  + an O_DIRECT read (4 MiB requests) of the data extents of the target vimport wrote, holes
  skipped (SEEK_DATA/SEEK_HOLE): each byte fetched once, hashed once, read back once.
  It has no decode stage, so for raw.xz / raw.zst (where decompression is most of the
  work) ours/limit says little; the issue's limit target is for W1.
- **R1** (issue 22): W1's qcow2 in a containerDisk (`podman build`, `FROM scratch`,
  `ADD w1.qcow2 /disk/`, one gzip layer) served by Debian's docker-registry over TLS on
  127.0.0.1. Baseline (what CDI does): `skopeo copy docker://... dir:SCRATCH`, `tar -xzf`
  of the layer into SCRATCH, `qemu-img convert`, `vimport sum`. Ours: `vimport import` under
  CDI's environment (`IMPORTER_SOURCE=registry`): the manifest, config and layer digests checked as the bytes
  stream, the layer gunzipped, untarred and decoded in the same pass, no scratch. Scratch
  used: the baseline's SCRATCH after its extract (`du`), vimport's scratch directory sampled
  every 0.2 s.
- Both importers must produce the same disk: every run compares their block hashes.
- The source is served by nginx on 127.0.0.1 from the page cache; the targets are sparse
  files on the disk described above. Peak RSS is GNU time's `%%M` (maximum resident set).
- W5: `vimport sum` against `openssl dgst -sha256` (both from the page cache; throughput
  ratio = openssl seconds / vimport seconds; on the 2 GiB file the three take turns three
  times in each run, and a run counts the median of each, since a run of a second is the
  one a preempted vCPU moves most), `vimport verify -t 2` (O_DIRECT) against an O_DIRECT
  read of the same data, `vimport sum -t 2` of a fresh 100 GiB sparse file.

## Seconds per stage

%s

%s

vimport's stages come from its own log lines: *stream* ends at `digest: source ...` (the
source has been read, decoded, written and hashed), *read-back* ends at `verify: read
back ...`, *other* is the rest (start-up, termination message).

## Where the time went, and what changed it

Profiles (`hack/profile-import.sh`, `perf record` per thread) of W1 and W3 before the
changes below: about half of all CPU time was SHA-256 in libcrypto, a third the kernel
(socket receive, page-cache copies, virtio interrupts), a tenth `memcpy`, 1%% vimport's
own code; the decoder thread did the source digest, the decode, the writes and the
block hash one after the other, so the import used about one of the two cores. What
moved the numbers (full `make bench` runs: 6dd47a1 at load 5-6, then 7f80f96):

| change | measured effect |
|---|---|
| HTTP source hashes its own ring buffer on a digest thread (no copy); other sources hash a copy on the tap's thread | W1 stream 3.5 -> 2.9 s in A/B runs; the digest is no longer on the decoder's thread |
| consumers of the ring woken per MiB, not per libcurl callback | W3 voluntary context switches 67,000 -> 22,000 (17,000 before there was a digest thread) |
| write-behind: wait for the previous interval's write-back, not the current one | the decoder no longer stalls on the disk every 64 MiB |
| out-of-order block hash on worker threads (`pkg/blkhash/pool.c`, `pkg/core/workq`) | W1 stream 2.9 -> 2.4-2.8 s |
| read-back and `vimport sum` read straight into the hasher's buffers (`blkhash_buffer`) | sum -t 2 on 2 GiB: 1.86 s -> 0.94 s (0.86 -> 0.50 of openssl) |
| compressed qcow2 clusters decompressed on worker threads | W2 0.94 -> 0.46 of baseline |
| multi-block xz on liblzma's threaded decoder | W4 raw.xz stream 28 -> 15 s (A/B, one run each) |
| W1 overall | 0.45 -> 0.28 of baseline; 1.60x -> 1.10x the limit |
| qcow2 deflate clusters through libdeflate (zlib decides any cluster it does not decode cleanly) | W2 user time 5.7 -> 3.9 s, stream 3.8 -> 2.7 s (3 runs each) |
| compressed clusters handed to the workers in 1 MiB batches, not one 64 KiB cluster at a time | W2 voluntary context switches 27,000 -> 8,000; stream 3.4-4.1 -> 2.8-2.9 s (3 interleaved runs each) |
| *tried, not kept:* reading the target back behind the writer, during the stream | W2 5.1-7.8 s against 4.9-5.7 s without (interleaved runs): the reads compete with the stream's write-back for the one disk |

Then (measured with `hack/bench-ab.sh`: two binaries interleaved on one image, 5-7 runs
each, medians; and a full `make bench` on c0aff94):

| change | measured effect |
|---|---|
| `sync` before each contender in the suite | vimport's W3 right after the baseline: 8.16 s; after a `sync`: 5.79 s; after 20 s of sleep: 5.98 s. Both contenders now start on a settled disk |
| aligned target writes with O_DIRECT from a writer thread (`pkg/target/direct.c`), unaligned ones through the page cache | `dd` of 1.25 GB here: buffered + fsync 2.0-2.5 s with 1.7-2.2 s of system time, O_DIRECT 0.6-0.9 s with 0.2-0.4 s; with the next row: W1 3.04 -> 2.57 s, W2 3.05 -> 2.78 s, W3 6.30 -> 5.89 s |
| the raw decoder emits the HTTP ring's bytes in place (`vreader_view`) instead of copying them out | within noise on its own (W3 6.82 vs 6.63 s) |
| the source digest hashes the ring a MiB per step, and the ring is 16 MiB, not 4 | instrumented: the digest thread (W3's critical path) waited 0.7-1.1 s for bytes per import, now 0.2-0.5 s; W3 6.36 -> 5.94 s (stream 5.37 -> 4.99), W1 and W2 unchanged within noise |
| the qcow2 decoder takes host clusters from the ring in place | W1 2.84 s both ways (CPU 3.81 vs 3.88 s): within noise |
| *tried, not kept:* read-back with several requests in flight, or larger requests | `fio` on the 1.25 GB image, 5 runs each (MiB/s): 1M x1 1002, 1M x4 911, 2M x2 888, 4M x1 848, 4M x4 858: this disk reads no faster |
| *tried, not kept:* reading back behind the writer, again, now that writes bypass the page cache | `fio` here: writing 1.2 GB with O_DIRECT takes 0.6 s alone, reading 1.2 GB 1.3 s alone, both at once 1.65 s: at most 0.2 s to gain on W1, and a 700 MiB/s O_DIRECT reader beside a W1 import made it 0.3-0.6 s slower, with synchronous and asynchronous (libaio) reads alike |
| *tried, not kept:* `CURLOPT_BUFFERSIZE` 2 MiB instead of 512 KiB | W3 within noise |

Then, on the machine described above (an Intel Xeon with SHA extensions: OpenSSL
hashes 1.88 GB/s per core, 3.6 GB/s on both), measured with `hack/bench-ab.sh`
(interleaved runs, medians) and `vimport sum` against `openssl dgst` run side by side:

| change | measured effect |
|---|---|
| the qcow2 decompression workers also hash the 64 KiB blocks of the clusters they inflate, and hand the digests to the block hash with the bytes (`blkhash_blocks`, `vsink_data_digested`) | W2 CPU 4.11 -> 3.99 s, wall 2.43 -> 2.41 s (5 runs each): the decoder's thread no longer copies a GiB into the hash pool, but the stream stays CPU-bound |
| `vimport sum` maps regular files 16 MiB at a time and its threads hash the mapping in place (`blkhash_update_inplace`), instead of `pread` into the hasher | sum -t 2 of 2 GiB: 0.96-1.03 s -> 0.73-0.88 s (openssl dgst: 1.45-1.49 s), CPU 1.9-2.0 -> 1.4 s; peak RSS 17 -> 45 MiB (two windows mapped) |
| every block digest prefetches 32 KiB ahead of SHA-256 (`pkg/core/prefetch.h`) | without it, hashing the mapping in place was slower than copying (1.8 CPU-s): the SHA extensions stall on a miss at every page |
| *tried, not kept:* the same prefetching in the source digest (HTTP ring, digest tap) | W3 stream 6.14 -> 6.35 s (4 runs each): no gain |
| the HTTP ring, the hash pools' and slots' buffers, the inflate outputs and the O_DIRECT write buffers on transparent huge pages (`pkg/core/hugebuf.h`: one mapping per pool, `MADV_HUGEPAGE`) | the ring alone: W3 stream 5.63 -> 5.21 s, CPU 10.4 -> 9.5 s (4 runs each); all of them against none: W3 6.64 -> 6.32 s, W2 2.52 -> 2.25 s, W1 2.46 -> 2.12 s (5 runs each); all against the ring alone: read-back 0.57-0.73 -> 0.45-0.46 s on each of W1-W3 (the read-back's hash buffers), streams within noise |
| runs of zeros found in libcurl's write callback (64 KiB granules, while its buffer is in cache) and not copied into the HTTP ring: the decoder and the digest thread read them from one buffer of zeros that stays in their caches (`pkg/source/http.c` `ring_fill`) | W3 6.90 -> 5.59 s (stream 6.42 -> 5.06 s, CPU 10.94 -> 9.25 s), W1 2.18 -> 2.05 s, W2 2.34 -> 2.38 s (within noise; 5, 4 and 4 runs each) |
| the raw decoder takes a view that lies inside the HTTP source's buffer of zeros (`source_zeros()`, `struct vzeros`) as zero blocks without a `memcmp`; views pass through the filters unchanged, so where they lie says what they hold | W3 5.71 -> 5.57 s (stream 5.15 -> 4.97 s, CPU 9.45 -> 9.09 s; 5 runs each): `perf` had put 0.31 CPU-s of W3's decoder thread in `memcmp` over the 5 GiB of zeros |
| *tried, not kept:* the buffer of zeros as a never-written read-only mapping (every page the kernel's one zero page, so always in L1) instead of a huge page | W3 5.48 vs 5.55 s (5 runs each): within noise |
| *tried, not kept:* the zero check as a plain 8-byte OR loop instead of `memcmp` of the buffer against itself shifted by 16 | on cached zeros 23-26 GB/s against glibc's AVX-512 `memcmp` at 47-61 GB/s: slower |
| *tried, not kept:* SHA-256 of the source in libcurl's write callback, on bytes still in the receiving core's cache, instead of on the digest thread | W3 CPU 9.91 -> 8.66 s, but wall 6.03 -> 6.83 s (stream 5.50 -> 6.07; 4 runs each): receiving and hashing on one thread made that thread the critical path |
| the qcow2 decoder lets go of a kept chunk once inflated compressed clusters used every byte of it, by the exact end of each stream (libdeflate, zlib and zstd report it; the tables' lengths round up to sectors and can reach into the next cluster) | W2 wall 2.11 -> 2.01 s, CPU 3.56 -> 3.42 s, peak RSS 117 -> 65 MiB (5 runs each). On W2 the decoder now keeps at most 14 MiB (chunks holding clusters of the late tables, and chunks whose clusters are still with the workers), drops none and re-reads none; it kept 64 MiB, dropped 3387 chunks with a SHA-256 each and re-read 11 |
| *tried, not kept:* the data path's buffers on small pages instead of transparent huge pages | `perf` of W3 put 0.4 CPU-s in zeroing huge pages on their first touch, which this VM's host makes dear (by hand, 64 MiB took 0.3-0.5 s to touch on huge pages, 0.02 s on small ones); but on small pages the read-back lost more: W3 5.02 vs 5.24 s (read-back 0.59 vs 0.79 s; 7 runs each), W1 1.99 vs 2.17 s (5 each) |

Then the refactor of issue 20 (sources and decoders behind one table each, the source
digest in pkg/digest, the ring in its own file), which must not cost speed: `make bench`
on ff8a2ea ran on a machine where everything took longer than in the run before, the
parts vimport does not own too (W1's limit: openssl 1.36 s against 0.79 s; O_DIRECT read
0.91 against 0.78 s; read-back 1.35 against 0.46 s), while the page-cache probe read 9 s
instead of 53 s, so the baselines were 2-2.5x faster. So that run's W1-W3 ratios (0.37,
0.34, 0.15) say what the machine did. The same hour, the binaries of 4c7cd10 (before) and
b3a5856 (after) side by side (`hack/bench-ab.sh`, 5 interleaved runs each, medians):

| image | before: wall, stream, read-back, CPU | after: wall, stream, read-back, CPU |
|---|---|---|
| W1 | 2.54 s, 1.54, 1.04, 3.51 s | 2.61 s, 1.53, 1.05, 3.53 s |
| W2 | 3.12 s, 1.99, 1.09, 4.58 s | 3.05 s, 2.01, 1.08, 4.65 s |
| W3 | 6.03 s, 5.46, 0.56, 9.26 s | 5.92 s, 5.37, 0.54, 9.09 s |

Peak RSS the same (46, 65, 47 MiB): the refactor is speed-neutral within noise.

What is still tight, and why:
- **The baseline never waits for the disk; vimport must.** `curl | tee | sha256sum` and
  `qemu-img convert -t writeback` write to the page cache, and the baseline's block hash
  reads the page cache. vimport writes every data byte to the disk and reads it back from
  the disk (the job: a verified import), 1.25 GB each way on W1-W3. The read-back stage
  is 0.45-1.0 s here, at what this disk reads (the limit's O_DIRECT read takes as long),
  and it moves more than anything else from run to run: six interleaved pairs of one
  binary against another gave 0.50-1.01 s for either. Reading back behind the writer
  was tried twice (above) and lost to disk contention.
- **How fast the baseline is depends on the machine more than vimport does.** On the
  AMD EPYC machine of 2026-12-02 the baseline took 9.1 s on W1 and 41.5 s on W3, and
  W1 (0.30) and W3 (0.14) met their targets; on this Intel machine the same baseline
  tools take 6.3-6.8 s and 34 s (faster page-cache writes and coreutils hashing), and
  vimport's own times moved far less. Here 0.33 of W1's baseline (2.1-2.2 s) is about
  W1's limit (a fetch, one SHA-256 and one O_DIRECT read done one after another, 2.2-2.35
  s): W1 landed at 0.32-0.37 from run to run then, on the line; the changes since bring
  it to 0.28-0.31 of that baseline (next point), and this run's limit to 2.17 s.
- **How fast this VM fills the page cache moves the baseline most of all.** The baseline
  writes 2.5 GB (W1, W2) to 12 GB (W3) through the page cache; vimport writes 1.25 GB
  around it and holds little memory. The machine description above says why that is dear
  here, read from sysfs: the VM hands freed memory back to its host (virtio-balloon free
  page reporting, in 2 MiB blocks; 53 GiB of it during the run of 2026-12-03 14:41) and a
  DAMON scheme pages out page cache that sat idle for a minute. A page the kernel then
  hands out again faults in the host on its first touch: by hand, 2 GiB of fresh anonymous
  memory took 1.8-12.9 s to touch and 0.22 s to touch again; 4 GiB of buffered writes
  took 44-49 s, with 42-47 s of system time. The baseline's times follow: on the morning
  of 2026-12-03 it took 6.8 s on W1 and 34 s on W3, in the afternoon 10-40 s and 105-117
  s, while vimport's hardly moved. So ratios from a run whose probe (above) reads tens of
  seconds flatter vimport. In the one fast-probe state seen (that morning, before the
  probe existed), W1 was 0.27, W2 0.32 and W3 0.17 of the baseline, before the zero
  granules (next point) took 1.3 s off W3. Against those baselines (W1 6.75 s, W2 6.56 s,
  W3 33.89 s), this run's medians would be W1 0.28, W2 0.32 and W3 0.14: each under its
  line, though only just for W2 and W3, and across runs, which the targets do not
  count. (The run before the qcow2 decoder let go of used chunks gave W1 0.31, W2 0.34
  and W3 0.16 by the same reckoning.) The bench cannot make that state itself: on 2026-12-03 at 17:20,
  touching 8 GiB of fresh memory took 74-94 s, and right after one such touch a 4 GiB
  page-cache write took 2.5 s instead of 49-53 s; but three 8 GiB touches back to back
  took 74, 76 and 83 s, so memory freed goes back to the host within a second or two. A
  warm-up could only help a contender that fills the page cache in a few seconds, and
  the baseline takes 10 to 100. The fast state is the host's, not something the guest
  can set up.
- **The rest is CPU on two cores.** On W3 the source digest is the critical path: SHA-256
  of 6 GiB cannot be split, and `openssl dgst` alone takes 4.0-4.1 s for it in this run
  (the limit's sha256 stage). Everything else shares the other core. `perf` of one W3
  import (5.8 s under the profiler, 9.35 CPU-seconds) before the zero-view row above:
  the digest thread 4.2 CPU-s (SHA-256 at 1.63 GB/s, against 1.74 GB/s on bytes in
  cache), the transfer thread 2.8 (2.3 of them the kernel's TCP receive and its copy,
  0.35 the copy of the data into the ring, 0.3 the zero check), nginx 0.9, the block
  hash of the 1.25 GB of data 0.8, the decoder 0.6 (half of it the `memcmp` that the
  zero view took away), the read-back's hash 0.75. The stream's share, about 9 CPU-s on
  two cores, puts its floor near 4.5 s (a little lower since the zero view); W3's stream
  took 4.1-4.4 s in this run.
- **W2**'s stream stage is CPU-bound on both cores: inflating (1.1 CPU-seconds), the block
  hash (0.6, now on the inflate workers), the source digest (0.5), the transfer and the
  writes. Less CPU per byte is the only way down, and libdeflate is already the fastest
  inflater we know of. The image's layout cost more until this run: `qemu-img convert -c`
  put 4 of W2's 7 L2 tables at the very end of the file (at 559 of its 560 MiB), so
  until the end the decoder could not tell that a chunk it passed would not be needed
  again. It kept 64 MiB of them (more than half of W2's 117 MiB peak RSS), dropped the
  next 3387 (212 MiB) with a SHA-256 each, and re-read 11 at the end. Now a chunk goes
  once the clusters already inflated used every byte of it (the change table above):
  W2 peaks at 65 MiB.
- **The CPU's speed moves from run to run.** W4's xz import, whose decoder no change
  touched, took 13.3 s in the full run of 2026-12-03 14:41, 12.45 s at 17:34, 11.5 s at
  18:02 and 11.24 s in this one; W2 moved with it (2.47, 2.39 and 2.22 s, then 2.10 s
  with the change above). Compare ratios, not seconds,
  across runs.
- **`sum -t 2`** reaches 1.7x-2.0x of `openssl dgst` here from run to run: two threads
  hashing page-cache pages at about 1.49 GB/s each, against OpenSSL's 1.74 GB/s on 64 KiB
  in cache; the target (1.8x) sits inside that spread. The full run of 17:34 missed with
  1.78x: two of its three `sum -t 2` timings took 0.86 and 1.09 s, where 18 of 20 runs by
  hand took 0.76-0.82 s. So W5 now times each contender three times per run (above). The
  workers are memory-bound: the prefetch instructions hold a tenth of their samples, and
  other prefetch distances (4 KiB steps 16 KiB ahead, 64 KiB steps 64 KiB ahead) measured
  alike (0.77-0.82 s against 0.76-0.87 s).
- This VM's hypervisor takes CPU time from it (top showed 50%% steal during one run), so
  two threads do not always get two cores; the ratios move with that from run to run.

## Every run (totals, seconds)

%s

## Reproduce

```sh
make bench                   # everything, RUNS=3 (10-20 minutes here)
BENCH_QUICK=1 make bench     # 1 run, W1 and W3; writes build/bench/benchmarks-quick.md
RUNS=5 BENCH_WORKLOADS="W1 W5" BENCH_DOC=build/bench/w1w5.md hack/bench-suite.sh
hack/bench-report.sh build/bench/benchmarks-results.tsv build/bench/benchmarks-machine.txt docs/benchmarks.md
hack/profile-import.sh       # perf profile of one W1 import: where the time goes
```

Images are made once by `hack/bench-images.sh` and cached in `build/bench/images-<key>`,
the key taken from the checksum of the generator scripts; making them takes 4-20 minutes
(most of it `xz`), once.
""" % ("\n".join("- " + l for l in machine), md_table(HEAD, table), "![seconds per stage](%s)" % os.path.basename(png_path) if plotted else "(no import workload in this run)",
       md_table(stage_head, stage_body), md_table(run_head, run_body))
with open(md_path, "w") as f:
    f.write(doc)
print()
print("wrote %s%s" % (md_path, " and " + png_path if plotted else ""))
EOF
