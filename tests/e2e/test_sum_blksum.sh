#!/usr/bin/env bash
# vimport sum as a drop-in for blksum 0.11: its documented options (-d with null, -l,
# -c/--cache, -t, -q, -r, -p, -h and their long forms) against the pinned reference
# digests of tests/data/blkhash.tsv; NBD URLs (qemu-nbd serving raw and qcow2 over TCP
# and a unix socket); the formats qemu reads (and the qemu-nbd fallback for an image too
# scattered to hash in one pass); SIGTERM's message and death by the signal.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd qemu-nbd qemu-img qemu-io
tmp=$(e2e_tmpdir)
cc -std=c11 -O2 -Wall -Wextra -Werror -I"$VIMPORT_TOP/tests/unit" -o "$tmp/patgen" \
  "$VIMPORT_TOP/tests/data/patgen.c"

# 1. blksum's options, short and long, on pinned vectors (default block size 64 KiB)
n=0
while IFS=$'\t' read -r digest bs expected pattern; do
  case $digest in digest | '#'*) continue ;; esac
  case $pattern in *G* | *64M*) continue ;; esac
  [ "$bs" = 65536 ] || continue
  "$tmp/patgen" "$pattern" >"$tmp/v.img"
  for opts in "-d $digest" "--digest=$digest -c" "-d $digest -t 1 -q 1 -r 4k" \
    "-d $digest --threads 2 --queue-depth 32 --read-size 1m --cache --progress" \
    "-d $digest -p -r 512"; do
    # shellcheck disable=SC2086 # the options are words
    line=$("$VIMPORT" sum $opts "$tmp/v.img")
    assert_eq "$expected  $tmp/v.img" "$line" "sum $opts of $pattern"
  done
  got=$("$VIMPORT" sum -d "$digest" <"$tmp/v.img")
  assert_eq "$expected  -" "$got" "sum -d $digest of $pattern on stdin"
  n=$((n + 1))
done <"$VIMPORT_TOP/tests/data/blkhash.tsv"
[ "$n" -ge 10 ] || fail "only $n vectors checked"

# 2. -d null hashes nothing and prints an empty hash; -l lists null and sha256
assert_eq "  $tmp/v.img" "$("$VIMPORT" sum -d null "$tmp/v.img")" "sum -d null"
"$VIMPORT" sum -l | grep -qx null || fail "-l does not list null"
"$VIMPORT" sum --list-digests | grep -qx sha256 || fail "--list-digests does not list sha256"
"$VIMPORT" sum -l | while read -r d; do
  "$VIMPORT" sum -d "$d" "$tmp/v.img" >/dev/null || fail "-l lists $d, which sum refuses"
done
# -h to stdout, exit 0; a bad option exits 2; an unknown digest exits 1
"$VIMPORT" sum -h | grep -q -- "--list-digests" || fail "-h does not describe -l"
set +e
"$VIMPORT" sum --bogus "$tmp/v.img" >/dev/null 2>&1; rc_opt=$?
"$VIMPORT" sum -d nosuch "$tmp/v.img" >/dev/null 2>&1; rc_digest=$?
"$VIMPORT" sum "$tmp/missing" >/dev/null 2>&1; rc_missing=$?
set -e
assert_eq 2 "$rc_opt" "exit code of a bad option"
assert_eq 1 "$rc_digest" "exit code of an unknown digest"
assert_eq 1 "$rc_missing" "exit code of a missing file"
# -c is --cache, never --check: the image is hashed, not read as a list
"$VIMPORT" sum -c "$tmp/v.img" | grep -q "  $tmp/v.img\$" || fail "-c read the image as a list"

# 3. images in other formats hash as their guest content (qemu-img's raw conversion), by
# the import's decoders: streamOptimized vmdk, dynamic vhd and vdi in process (the
# streamed rows of pkg/decode), the rest through a private qemu-nbd. A qemu-nbd first
# on PATH records each start and runs the real one, so the test sees which way each went.
"$tmp/patgen" "r1:1M,z:3M,r2:2M" >"$tmp/g.raw"
truncate -s 8M "$tmp/g.raw"
mkdir -p "$tmp/bin"
real_nbd=$(command -v qemu-nbd)
printf '#!/bin/sh\necho started >>"%s"\nexec "%s" "$@"\n' "$tmp/nbd-starts" "$real_nbd" >"$tmp/bin/qemu-nbd"
chmod +x "$tmp/bin/qemu-nbd"
while read -r name fmt opts way; do
  qemu-img convert -q -f raw -O "$fmt" $opts "$tmp/g.raw" "$tmp/$name"
  qemu-img convert -q -f "$fmt" -O raw "$tmp/$name" "$tmp/$name.raw"
  want=$("$VIMPORT" sum "$tmp/$name.raw" | cut -d' ' -f1)
  rm -f "$tmp/nbd-starts"
  got=$(PATH="$tmp/bin:$PATH" "$VIMPORT" sum "$tmp/$name" 2>"$tmp/err" | cut -d' ' -f1) || fail "sum of $name: $(cat "$tmp/err")"
  assert_eq "$want" "$got" "sum of $name vs its raw conversion"
  got=$("$VIMPORT" sum -r 4k -t 1 "$tmp/$name" | cut -d' ' -f1)
  assert_eq "$want" "$got" "sum -r 4k -t 1 of $name"
  [ ! -s "$tmp/err" ] || fail "sum of $name wrote to stderr: $(cat "$tmp/err")"
  starts=0
  [ ! -f "$tmp/nbd-starts" ] || starts=$(wc -l <"$tmp/nbd-starts")
  case $way in
  streamed) assert_eq 0 "$starts" "qemu-nbd started for $name (it has a streamed decoder)" ;;
  qemu-nbd) assert_eq 1 "$starts" "qemu-nbd started for $name" ;;
  *) assert_eq 0 "$starts" "qemu-nbd started for $name (read by pkg/qcow2, or raw)" ;;
  esac
done <<'EOF_FORMATS'
g.qcow2 qcow2 -ocompression_type=zlib qcow2
g.vmdk vmdk -osubformat=monolithicSparse qemu-nbd
g.so.vmdk vmdk -osubformat=streamOptimized streamed
g.vhdx vhdx -osubformat=dynamic qemu-nbd
g.vdi vdi -ostatic=off streamed
g.static.vdi vdi -ostatic=on streamed
g.vpc vpc -osubformat=dynamic streamed
g.fixed.vpc vpc -osubformat=fixed raw
EOF_FORMATS
# 3b. a vdi whose blocks lie in reverse guest order, hashed with 64 MiB blocks: five blocks
# held in part at once pass the streamed hash's 256 MiB, so sum says so and reads the
# image again through qemu-nbd, in guest order, to the same digest as its raw conversion
qemu-img create -q -f vdi "$tmp/rev.vdi" 320M
for mib in 256 192 128 64 0; do
  qemu-io -f vdi -c "write -P $((mib / 64 + 1)) ${mib}M 1M" "$tmp/rev.vdi" >/dev/null
done
qemu-img convert -q -f vdi -O raw "$tmp/rev.vdi" "$tmp/rev.raw"
want=$("$VIMPORT" sum --block-size 67108864 "$tmp/rev.raw" | cut -d' ' -f1)
rm -f "$tmp/nbd-starts"
got=$(PATH="$tmp/bin:$PATH" "$VIMPORT" sum --block-size 67108864 "$tmp/rev.vdi" 2>"$tmp/err" | cut -d' ' -f1) ||
  fail "sum of the reversed vdi: $(cat "$tmp/err")"
assert_eq "$want" "$got" "sum of the reversed vdi vs its raw conversion"
assert_eq "vimport sum: $tmp/rev.vdi: this vdi image's blocks are too far out of guest order to hash in one pass in 256 MiB; reading it again through qemu-nbd" \
  "$(cat "$tmp/err")" "the reversed vdi's fallback message"
assert_eq 1 "$(wc -l <"$tmp/nbd-starts")" "qemu-nbd starts for the reversed vdi"
want=$("$VIMPORT" sum "$tmp/g.raw" | cut -d' ' -f1)

# 4. NBD URLs: qemu-nbd serving raw over TCP and qcow2 on a unix socket, with block status
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
qemu-nbd -r -t -f raw -b 127.0.0.1 -p "$port" "$tmp/g.raw" &
e2e_on_exit "kill $!"
qemu-nbd -r -t -f qcow2 -k "$tmp/nbd.sock" "$tmp/g.qcow2" &
e2e_on_exit "kill $!"
for _ in $(seq 50); do
  [ -S "$tmp/nbd.sock" ] && nbdinfo_ok=1 && break
  sleep 0.1
done
[ "${nbdinfo_ok:-}" = 1 ] || fail "qemu-nbd did not create its socket in 5 s"
got=""
for _ in $(seq 50); do
  got=$("$VIMPORT" sum "nbd://127.0.0.1:$port/" 2>/dev/null | cut -d' ' -f1) && break
  sleep 0.1
done
assert_eq "$want" "$got" "sum nbd://127.0.0.1:$port/ (raw)"
got=$("$VIMPORT" sum -r 64k "nbd+unix:///?socket=$tmp/nbd.sock")
assert_eq "$want  nbd+unix:///?socket=$tmp/nbd.sock" "$got" "sum nbd+unix:// (qcow2)"
# reads in flight (-q) and their size (-r) never change the digest
for qr in "-q 1 -r 4k" "-q 128 -r 64k" "--queue-depth 7 --read-size 3m"; do
  # shellcheck disable=SC2086 # the options are words
  got=$("$VIMPORT" sum $qr "nbd://127.0.0.1:$port/" | cut -d' ' -f1)
  assert_eq "$want" "$got" "sum $qr nbd://"
  # shellcheck disable=SC2086
  got=$("$VIMPORT" sum $qr "$tmp/g.vhdx" | cut -d' ' -f1)
  assert_eq "$want" "$got" "sum $qr of a vhdx (qemu-nbd)"
done

# 5. SIGTERM: blksum's message, then death by the signal (status 143 from bash). The
# input is a FIFO kept open and empty, so sum is surely still reading when it is signalled.
mkfifo "$tmp/fifo"
"$VIMPORT" sum "$tmp/fifo" >"$tmp/out" 2>"$tmp/err" &
pid=$!
exec 3>"$tmp/fifo"
printf 'some bytes' >&3
sleep 0.3
kill -TERM "$pid"
set +e
timeout 10 tail --pid="$pid" -f /dev/null
wait "$pid"
rc=$?
set -e
exec 3>&-
assert_eq 143 "$rc" "exit status after SIGTERM (128 + 15: died by the signal)"
assert_eq "vimport sum: Terminated by signal 15" "$(cat "$tmp/err")" "stderr after SIGTERM"
[ ! -s "$tmp/out" ] || fail "a digest was printed after SIGTERM"

# 5b. SIGTERM while a private qemu-nbd serves a vhdx: the same message and status, and
# the child does not outlive sum (it runs with --persistent: sum stops it first)
"$tmp/patgen" "r11:400M" >"$tmp/slow.raw"
qemu-img convert -q -f raw -O vhdx "$tmp/slow.raw" "$tmp/slow.vhdx"
rm -f "$tmp/slow.raw"
"$VIMPORT" sum -t 1 -q 1 -r 4k -d sha512 "$tmp/slow.vhdx" >"$tmp/out" 2>"$tmp/err" &
pid=$!
child=""
for _ in $(seq 50); do
  child=$(pgrep -P "$pid" qemu-nbd || true)
  [ -n "$child" ] && break
  sleep 0.1
done
[ -n "$child" ] || fail "no qemu-nbd child of sum within 5 s"
kill -TERM "$pid"
set +e
timeout 10 tail --pid="$pid" -f /dev/null
wait "$pid"
rc=$?
set -e
assert_eq 143 "$rc" "exit status after SIGTERM with a qemu-nbd child"
assert_eq "vimport sum: Terminated by signal 15" "$(cat "$tmp/err")" "stderr after SIGTERM with a qemu-nbd child"
for _ in $(seq 50); do
  kill -0 "$child" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$child" 2>/dev/null; then
  kill "$child"
  fail "qemu-nbd ($child) outlived sum after SIGTERM"
fi
pass
