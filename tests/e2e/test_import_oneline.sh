#!/usr/bin/env bash
# The one-line import, `vimport import SOURCE TARGET [--checksum] [--format] [--size]
# [--cert-dir]`, from http and https (nginx, the test's CA), a file and stdin, onto files and a loop device: the summary line on stdout, the target's bytes
# and block hash, refusals and their exit codes; `vimport import FILE.yaml`; the
# progress line on a terminal (script(1) gives a pty) and its absence elsewhere.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd qemu-img script
tmp=$(e2e_tmpdir)
srv=$tmp/srv
mkdir -p "$srv"
"$VIMPORT_TOP/hack/make-test-image.sh" "$srv/disk.raw" 48 /usr/share/doc/bash
qemu-img convert -q -f raw -O qcow2 "$srv/disk.raw" "$srv/disk.qcow2"
gzip -k -c "$srv/disk.raw" >"$srv/disk.raw.gz"
size=$(stat -c %s "$srv/disk.raw")
bh=sha256:$("$VIMPORT" sum "$srv/disk.raw" | cut -d' ' -f1)
qsum=sha256:$(sha256sum "$srv/disk.qcow2" | cut -d' ' -f1)
nginx_start "$srv"

# expect_summary TARGET FORMAT SOURCE_DIGEST: the one line of the last import's stdout
expect_summary() {
  local target=$1 format=$2 digest=$3
  assert_eq 1 "$(wc -l <"$tmp/out")" "summary lines for $target"
  grep -qE "^$target: $size bytes \($format\) in [0-9.]+ s, source $digest, block hash $bh\$" \
    "$tmp/out" || fail "summary for $target: $(cat "$tmp/out")"
  cmp -n "$size" "$srv/disk.raw" "$target" || fail "$target differs from the image"
}

# 1. http, with the checksum of the bytes served
timeout 60 "$VIMPORT" import "$NGINX_URL/disk.qcow2" "$tmp/h.img" --checksum "$qsum" \
  >"$tmp/out" 2>"$tmp/err" || fail "http import failed: $(tail -3 "$tmp/err")"
expect_summary "$tmp/h.img" qcow2 "$qsum"
grep -q $'\r' "$tmp/err" && fail "a progress line was written to a stderr that is no terminal"

# 1b. https from a server whose certificate the test's own CA signed: refused without
# --cert-dir (the system CAs do not know it), imported with it
set +e
timeout 60 "$VIMPORT" import "$NGINX_TLS_URL/disk.qcow2" "$tmp/t.img" >"$tmp/out" 2>"$tmp/err"
rc_tls=$?
set -e
assert_eq 1 "$rc_tls" "exit code of https with an unknown CA"
grep -qi "certificate" "$tmp/err" || fail "https with an unknown CA: no word of the certificate: $(cat "$tmp/err")"
[ ! -e "$tmp/t.img" ] || fail "a target was left after the TLS failure"
timeout 60 "$VIMPORT" import "$NGINX_TLS_URL/disk.qcow2" "$tmp/t.img" --cert-dir "$TEST_CA_DIR" \
  >"$tmp/out" 2>"$tmp/err" || fail "https import with --cert-dir failed: $(tail -3 "$tmp/err")"
expect_summary "$tmp/t.img" qcow2 "$qsum"

# 2. a file, --format raw and --size
timeout 60 "$VIMPORT" import "$srv/disk.raw" "$tmp/f.img" --format raw --size 64Mi \
  >"$tmp/out" 2>"$tmp/err" || fail "file import failed: $(tail -3 "$tmp/err")"
grep -qE "^$tmp/f.img: $size bytes \(raw\) in [0-9.]+ s, source sha256:[0-9a-f]{64}, block hash sha256:[0-9a-f]{64}\$" \
  "$tmp/out" || fail "summary of the file import: $(cat "$tmp/out")"
cmp -n "$size" "$srv/disk.raw" "$tmp/f.img" || fail "f.img differs from the image"
[ "$(stat -c %s "$tmp/f.img")" -ge $((60 << 20)) ] || fail "--size 64Mi did not size the disk"

# 3. stdin, gzip-compressed, through a real pipe
gsum=sha256:$(sha256sum "$srv/disk.raw.gz" | cut -d' ' -f1)
cat "$srv/disk.raw.gz" | timeout 60 "$VIMPORT" import - "$tmp/s.img" -c "$gsum" >"$tmp/out" 2>"$tmp/err" ||
  fail "stdin import failed: $(tail -3 "$tmp/err")"
expect_summary "$tmp/s.img" raw "$gsum"

# 3b. a block device target (a loop device, as root): a Block volume, the image at its start
if [ "$(id -u)" -eq 0 ] && truncate -s 64M "$tmp/backing.raw" &&
  loop=$(losetup -f --show "$tmp/backing.raw" 2>/dev/null); then
  e2e_on_exit "losetup -d '$loop'"
  timeout 60 "$VIMPORT" import "$srv/disk.qcow2" "$loop" >"$tmp/out" 2>"$tmp/err" ||
    fail "import onto $loop failed: $(tail -3 "$tmp/err")"
  expect_summary "$loop" qcow2 "$qsum"
  grep -q "volumeMode=Block" "$tmp/err" || fail "a block device target was not a Block volume"
else
  echo "test_import_oneline: no loop device here: the block device target is not tested" >&2
fi

# 3c. a file name YAML would misread (quotes, backslash, colon, hash, newline) is only a name
odd=$tmp/$'we"ird\\ na:me #1\nx.raw'
cp "$srv/disk.raw" "$odd"
timeout 60 "$VIMPORT" import "$odd" "$tmp/odd.img" >"$tmp/out" 2>"$tmp/err" ||
  fail "import of an oddly named file failed: $(tail -3 "$tmp/err")"
cmp "$srv/disk.raw" "$tmp/odd.img" || fail "odd.img differs from the image"
rm -f "$odd"

# 4. refusals: a wrong checksum (exit 1, target removed), a format not allowed, s3:// with
# no key (test_s3_import imports one),
# an unknown scheme, a lone non-YAML argument (usage, exit 2)
bad=sha256:$(printf '0%.0s' $(seq 64))
set +e
timeout 60 "$VIMPORT" import "$NGINX_URL/disk.raw" "$tmp/bad.img" --checksum "$bad" >"$tmp/out" 2>"$tmp/err"
rc_sum=$?
timeout 60 "$VIMPORT" import "$srv/disk.qcow2" "$tmp/fmt.img" --format raw >/dev/null 2>"$tmp/err_fmt"
rc_fmt=$?
"$VIMPORT" import s3://bucket-only "$tmp/x.img" >/dev/null 2>"$tmp/err_s3"
rc_s3=$?
"$VIMPORT" import ftp://host/disk.img "$tmp/x.img" >/dev/null 2>"$tmp/err_ftp"
rc_ftp=$?
"$VIMPORT" import "$srv/disk.raw" >/dev/null 2>&1
rc_one=$?
set -e
assert_eq 1 "$rc_sum" "exit code of a checksum mismatch"
grep -q "vimport import: checksum mismatch" "$tmp/err" || fail "mismatch message: $(tail -2 "$tmp/err")"
[ ! -s "$tmp/out" ] || fail "a summary was printed after a mismatch"
[ ! -e "$tmp/bad.img" ] || fail "the image that failed its checksum was left"
assert_eq 1 "$rc_fmt" "exit code of a format not allowed"
grep -q "allowedFormats does not allow it" "$tmp/err_fmt" || fail "format message: $(tail -1 "$tmp/err_fmt")"
assert_eq 1 "$rc_s3" "exit code of an s3:// source with no key"
assert_eq "vimport import: s3://bucket-only: give s3://BUCKET/KEY" "$(cat "$tmp/err_s3")" "s3 message"
assert_eq 1 "$rc_ftp" "exit code of an ftp:// source"
assert_eq 2 "$rc_one" "exit code of SOURCE without TARGET"
# --cert-dir: refused where no certificate is checked, and when it is no directory
cert_refusal() { # cert_refusal WHAT EXPECTED_MESSAGE SOURCE DIR
  local what=$1 want=$2 rc=0
  "$VIMPORT" import "$3" "$tmp/c.img" --cert-dir "$4" >"$tmp/out" 2>"$tmp/err_cert" || rc=$?
  assert_eq 1 "$rc" "exit code of --cert-dir $what"
  assert_eq "vimport import: $want" "$(cat "$tmp/err_cert")" "message of --cert-dir $what"
  [ ! -e "$tmp/c.img" ] || fail "--cert-dir $what: a target was made"
}
cert_refusal "with a file source" "--cert-dir applies to https://, docker:// and s3:// sources, which verify a server certificate; leave it out for a file or stdin" \
  "$srv/disk.raw" "$TEST_CA_DIR"
cert_refusal "with plain http" "--cert-dir: the source is plain http (SOURCE), which checks no certificate; use https:// or leave --cert-dir out" \
  "$NGINX_URL/disk.raw" "$TEST_CA_DIR"
cert_refusal "naming a file" "--cert-dir $TEST_CA: not a directory; give a directory of PEM CA certificates (the CA file's folder)" \
  "$NGINX_TLS_URL/disk.raw" "$TEST_CA"
cert_refusal "naming nothing" "--cert-dir $tmp/nowhere: No such file or directory; give a directory of PEM CA certificates" \
  "$NGINX_TLS_URL/disk.raw" "$tmp/nowhere"
set +e
"$VIMPORT" import --cert-dir "$TEST_CA_DIR" "$tmp/dv.yaml" >/dev/null 2>&1
rc_yaml=$?
set -e
assert_eq 2 "$rc_yaml" "exit code of --cert-dir with a spec file"
# a spec error names the argument, not the YAML key it became
set +e
"$VIMPORT" import "$srv/disk.raw" "$tmp/x.img" --checksum md5:00 >/dev/null 2>"$tmp/err_arg"
rc_arg=$?
set -e
assert_eq 1 "$rc_arg" "exit code of a malformed --checksum"
assert_eq "vimport import: --checksum: checksum md5: expected 32 hex digits, got 2; copy the whole digest" \
  "$(cat "$tmp/err_arg")" "message of a malformed --checksum"

# 5. vimport import FILE.yaml is --spec FILE.yaml
import_spec "$tmp/dv.yaml" "$srv/disk.raw" "" "$tmp/y.img"
timeout 60 "$VIMPORT" import "$tmp/dv.yaml" 2>"$tmp/err" || fail "import FILE.yaml failed: $(tail -3 "$tmp/err")"
grep -q '"message":"Import Complete"' "$tmp/termination-log" || fail "no termination message from FILE.yaml"

# 6. progress: one line rewritten in place on a terminal, with bytes, rate and ETA;
# none under CDI's environment contract even on a terminal
script -qec "timeout 60 '$VIMPORT' import '$NGINX_URL/disk.raw' '$tmp/p.img' >/dev/null" /dev/null >"$tmp/tty"
grep -qaE $'\r\e\\[Kvimport: importing: [0-9.]+ [KMG]?i?B of 48.0 MiB \\([0-9.]+%\\), (-- |[0-9.]+ [KMG]?i?)B/s, ETA' \
  "$tmp/tty" || fail "no import progress line on a terminal: $(tr '\r' '\n' <"$tmp/tty" | head -3)"
grep -qaE $'\r\e\\[Kvimport: verifying: [0-9.]+ [KMG]?i?B of 48.0 MiB' "$tmp/tty" ||
  fail "no read-back stage on the progress line: $(tr '\r' '\n' <"$tmp/tty" | grep -a vimport: | head -3)"
script -qec "'$VIMPORT' sum '$srv/disk.raw' >/dev/null" /dev/null >"$tmp/tty"
grep -qa "vimport sum: hashing $srv/disk.raw: " "$tmp/tty" || fail "no sum progress on a terminal"
script -qec "IMPORTER_SOURCE=http '$VIMPORT' sum '$srv/disk.raw' >/dev/null" /dev/null >"$tmp/tty"
grep -qa "hashing" "$tmp/tty" && fail "sum showed progress under CDI's environment"
script -qec "'$VIMPORT' sum --no-progress '$srv/disk.raw' >/dev/null" /dev/null >"$tmp/tty"
grep -qa "hashing" "$tmp/tty" && fail "sum --no-progress showed progress"
pass
