#!/usr/bin/env bash
# vimport sniff on real files made by the real tools: every variant of
# hack/make-format-corpus.sh (qemu-img convert -O vmdk|vpc|vhdx|vdi with subformats), a
# qcow2, ISO files installed on the system (Debian's ipxe ships one), bare ext4, XFS and
# btrfs filesystems (mkfs.*), a LUKS volume (cryptsetup), an LVM physical volume
# (pvcreate on a loop device), gzip/xz/zstd/bzip2 wrappers, tar and tar.gz archives; from a
# file, from stdin (a pipe: the fixed VHD footer cannot be seen there), and from nginx
# (where the footer is fetched with a Range request). An HTML page is refused.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd qemu-img sgdisk mkfs.ext4 gzip xz zstd bzip2 tar
tmp=$(e2e_tmpdir)
"$VIMPORT_TOP/hack/make-format-corpus.sh" "$tmp/c" 32 2>/dev/null

# sniff_json ARGS... -> the JSON line (exit status checked by the caller)
field() { # field JSON KEY -> the value of a top-level key, as JSON text
  python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(v if isinstance(v,str) else json.dumps(v))' "$1" "$2"
}
sniff_opts=()
expect() { # expect FILE FORMAT SUBFORMAT CONTENT [COMPRESSION]
  local out
  out=$("$VIMPORT" sniff --json "${sniff_opts[@]}" "$1") || fail "sniff $1 exited $?: $out"
  assert_eq "$2" "$(field "$out" format)" "$1: format"
  assert_eq "$3" "$(field "$out" subformat)" "$1: subformat"
  assert_eq "$4" "$(field "$out" content)" "$1: content"
  assert_eq "${5:-[]}" "$(field "$out" compression)" "$1: compression"
  echo "ok: $(basename "$1"): $(field "$out" description)"
}

# ---- the corpus: every line of corpus.tsv names what sniff must say ----------------
while IFS=$'\t' read -r name fmt opts sniff_fmt sniff_sub oracle; do
  [ "$sniff_sub" = "-" ] && sniff_sub=""
  content=unknown
  [ "$name" = fixed.vhd ] && content=gpt # a fixed VHD starts with the guest's own bytes
  expect "$tmp/c/$name" "$sniff_fmt" "$sniff_sub" "$content"
  # the virtual size is the oracle's size, wherever it was found (header, footer, qemu-nbd)
  out=$("$VIMPORT" sniff --json "$tmp/c/$name")
  assert_eq "$(stat -c %s "$tmp/c/$oracle")" "$(field "$out" virtualSize)" "$name: virtual size"
done <"$tmp/c/corpus.tsv"
expect "$tmp/c/base.img" raw "" gpt
qemu-img convert -f raw -O qcow2 "$tmp/c/base.img" "$tmp/base.qcow2"
expect "$tmp/base.qcow2" qcow2 "" unknown

# ---- ISO 9660 files on the system --------------------------------------------------
isos=$(find /usr/lib /usr/share -name '*.iso' -size -200M 2>/dev/null | head -5)
[ -n "$isos" ] || fail "no ISO file on the system: apt-get install ipxe"
for iso in $isos; do expect "$iso" raw "" iso9660; done

# ---- bare filesystems, LUKS, LVM ---------------------------------------------------
truncate -s 16M "$tmp/ext4.img" && mkfs.ext4 -q -F "$tmp/ext4.img"
expect "$tmp/ext4.img" raw "" ext
if command -v mkfs.xfs >/dev/null; then
  truncate -s 320M "$tmp/xfs.img" && mkfs.xfs -q -f "$tmp/xfs.img"
  expect "$tmp/xfs.img" raw "" xfs
fi
if command -v mkfs.btrfs >/dev/null; then
  truncate -s 128M "$tmp/btrfs.img" && mkfs.btrfs -q -f "$tmp/btrfs.img" >/dev/null
  expect "$tmp/btrfs.img" raw "" btrfs
fi
if command -v cryptsetup >/dev/null; then
  truncate -s 32M "$tmp/luks.img"
  head -c 32 /dev/urandom >"$tmp/key"
  cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    --key-file "$tmp/key" "$tmp/luks.img" >/dev/null 2>&1
  expect "$tmp/luks.img" raw "" luks
fi
if command -v pvcreate >/dev/null && [ "$(id -u)" -eq 0 ] && [ -w /dev/loop-control ]; then
  truncate -s 16M "$tmp/lvm.img"
  loop=$(losetup -f --show "$tmp/lvm.img")
  e2e_on_exit "losetup -d $loop"
  pvcreate -ff -y --config 'activation { udev_sync = 0 udev_rules = 0 } devices {
    obtain_device_list_from_udev = 0 use_devicesfile = 0 }' "$loop" >/dev/null 2>&1 </dev/null
  losetup -d "$loop"
  expect "$tmp/lvm.img" raw "" lvm
fi

# ---- wrappers: sniff looks inside -------------------------------------------------
gzip -c "$tmp/c/streamOptimized.vmdk" >"$tmp/s.vmdk.gz"
expect "$tmp/s.vmdk.gz" vmdk streamOptimized unknown '["gzip"]'
xz -T1 -1 -c "$tmp/c/dynamic.vhd" >"$tmp/d.vhd.xz"
expect "$tmp/d.vhd.xz" vhd dynamic unknown '["xz"]'
zstd -q -c "$tmp/base.qcow2" >"$tmp/b.qcow2.zst"
expect "$tmp/b.qcow2.zst" qcow2 "" unknown '["zstd"]'
bzip2 -c "$tmp/c/dynamic.vdi" >"$tmp/d.vdi.bz2"
expect "$tmp/d.vdi.bz2" bzip2 "" unknown
(cd "$tmp/c" && tar cf "$tmp/disk.tar" base.img && tar czf "$tmp/disk.tar.gz" base.img)
expect "$tmp/disk.tar" raw "" gpt '["tar"]'
expect "$tmp/disk.tar.gz" raw "" gpt '["gzip", "tar"]'
out=$("$VIMPORT" sniff --json "$tmp/disk.tar.gz")
assert_eq base.img "$(field "$out" tarMember)" "tar member"
assert_eq 33554432 "$(field "$out" virtualSize)" "tar member size"

# ---- stdin ------------------------------------------------------------------------
out=$("$VIMPORT" sniff --json - <"$tmp/c/image.vhdx")
assert_eq vhdx "$(field "$out" format)" "stdin: vhdx"
out=$({ cat "$tmp/c/streamOptimized.vmdk" || true; } | "$VIMPORT" sniff --json -)
assert_eq streamOptimized "$(field "$out" subformat)" "pipe: vmdk subformat"
# from a pipe the footer is out of reach: a fixed VHD is its raw content
out=$({ cat "$tmp/c/fixed.vhd" || true; } | "$VIMPORT" sniff --json -)
assert_eq raw "$(field "$out" format)" "pipe: fixed vhd"
# redirected from the file, stdin can seek: the footer is found
out=$("$VIMPORT" sniff --json - <"$tmp/c/fixed.vhd")
assert_eq vhd "$(field "$out" format)" "stdin file: fixed vhd"

# ---- text output -------------------------------------------------------------------
"$VIMPORT" sniff "$tmp/c/fixed.vhd" >"$tmp/text"
grep -q '^format: *vhd$' "$tmp/text" || fail "text output: $(cat "$tmp/text")"
grep -q '^subformat: *fixed$' "$tmp/text" || fail "text output: $(cat "$tmp/text")"

# ---- over HTTP: the fixed VHD footer comes with a Range request ---------------------
if [ -x "${NGINX:-/usr/sbin/nginx}" ]; then
  cp "$tmp/d.vhd.xz" "$tmp/c/"
  printf '<!DOCTYPE html><html><body>Please log in</body></html>\n' >"$tmp/c/login.html"
  nginx_start "$tmp/c"
  expect "$NGINX_URL/fixed.vhd" vhd fixed gpt
  expect "$NGINX_URL/streamOptimized.vmdk" vmdk streamOptimized unknown
  sniff_opts=(--ca-file "$TEST_CA")
  expect "$NGINX_TLS_URL/d.vhd.xz" vhd dynamic unknown '["xz"]'
  sniff_opts=()
  rc=0
  out=$("$VIMPORT" sniff --json "$NGINX_URL/login.html") || rc=$?
  assert_eq 1 "$rc" "an HTML page: exit status"
  assert_eq html "$(field "$out" format)" "an HTML page: format"
  assert_eq true "$(field "$out" refused)" "an HTML page: refused"
fi

# ---- usage and errors --------------------------------------------------------------
rc=0
"$VIMPORT" sniff >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "no argument"
rc=0
"$VIMPORT" sniff "$tmp/missing.img" 2>"$tmp/err" || rc=$?
assert_eq 1 "$rc" "a missing file"
grep -q "cannot open" "$tmp/err" || fail "missing file message: $(cat "$tmp/err")"
pass "sniff names every format"
