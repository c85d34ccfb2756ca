#!/usr/bin/env bash
# contentType archive end to end (CDI: pkg/importer TransferDataDir, util.UnArchiveTar):
# a tree made with GNU tar, served plain, gz, xz and zst by nginx on 127.0.0.1 and read
# from a file, is unpacked into the volume's directory exactly (diff -r, modes, links);
# the termination message counts the regular files and their bytes and carries the
# source digest; a right checksum is checked, a wrong one leaves nothing; hostile tars
# (made with Python's tarfile) are refused and leave nothing; a non-tar, an existing
# name, a Block volume and a blank source are refused, the last with CDI's words.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd tar gzip xz zstd python3 diff sha256sum
tmp=$(e2e_tmpdir)
srv=$tmp/srv
tree=$tmp/tree
mkdir -p "$srv" "$tree/etc/deep/er" "$tree/empty-dir"

# ---- the tree: files, a long name, an executable, links, a 3 MiB file ----
printf 'hello\n' >"$tree/etc/hosts"
head -c 3145728 /dev/urandom >"$tree/etc/deep/er/big.bin"
printf '#!/bin/sh\n' >"$tree/run.sh" && chmod 0755 "$tree/run.sh"
long=$(printf 'n%.0s' $(seq 150))
printf 'long\n' >"$tree/etc/$long"
ln -s ../hosts "$tree/etc/deep/to-hosts"
ln "$tree/etc/hosts" "$tree/hosts-hardlink"
tar --format=gnu -C "$tree" -cf "$srv/tree.tar" .
tar --format=pax -C "$tree" -cf "$srv/tree-pax.tar" .
gzip -k -c "$srv/tree.tar" >"$srv/tree.tar.gz"
xz -T1 -k -c "$srv/tree.tar" >"$srv/tree.tar.xz"
zstd -q -c "$srv/tree.tar" >"$srv/tree.tar.zst"
head -c 1048576 /dev/urandom >"$srv/disk.raw"

# what CDI's tar would count: the regular-file members and their sizes
read -r want_files want_bytes < <(python3 -c '
import sys, tarfile
m = [x for x in tarfile.open(sys.argv[1]) if x.isreg()]
print(len(m), sum(x.size for x in m))' "$srv/tree.tar")

nginx_start "$srv"

# spec FILE SOURCE VOLUME_DIR [LINE...]: an archive import; LINEs go under spec:
spec() {
  local file=$1 src=$2 vol=$3
  shift 3
  {
    echo "apiVersion: cdi.kubevirt.io/v1beta1"
    echo "kind: DataVolume"
    echo "spec:"
    echo "  contentType: archive"
    local line
    for line in "$@"; do echo "  $line"; done
    case $src in
      blank) echo "  source: {blank: {}}" ;;
      http://*) echo "  source: {http: {url: \"$src\"}}" ;;
      *) echo "  source: {file: {path: \"$src\"}}" ;;
    esac
    echo "  storage: {resources: {requests: {storage: 64Mi}}}"
    echo "vimport:"
    echo "  terminationMessagePath: $tmp/termination-log"
    echo "  target: {path: $vol/disk.img}"
  } >"$file"
}

# volume: a fresh, empty directory standing for /data
volume() { mktemp -d "$tmp/vol.XXXXXX"; }

expect_empty() { # VOL WHAT
  local left
  left=$(find "$1" -mindepth 1 | head -5)
  [ -z "$left" ] || fail "$2: the volume is not empty: $left"
}

expect_tree() { # VOL WHAT
  diff -r --no-dereference "$tree" "$1" >"$tmp/diff" 2>&1 || fail "$2: differs: $(head -5 "$tmp/diff")"
  [ -z "$(find "$1" -maxdepth 1 -name '.vimport-archive-*')" ] || fail "$2: staging dir left"
  [ ! -e "$1/disk.img" ] || fail "$2: a disk.img was written"
  assert_eq 755 "$(stat -c %a "$1/run.sh")" "$2: mode of run.sh"
  assert_eq 700 "$(stat -c %a "$1")" "$2: the volume's own mode (the tar's ./ is 755)"
  assert_eq 2 "$(stat -c %h "$1/hosts-hardlink")" "$2: hard link count"
  assert_eq ../hosts "$(readlink "$1/etc/deep/to-hosts")" "$2: symlink target"
}

# ---- every compression, over http and from a file ----
for src in "$NGINX_URL/tree.tar" "$NGINX_URL/tree.tar.gz" "$NGINX_URL/tree.tar.xz" \
           "$NGINX_URL/tree.tar.zst" "$NGINX_URL/tree-pax.tar" "$srv/tree.tar.zst"; do
  vol=$(volume)
  spec "$tmp/s.yaml" "$src" "$vol"
  import_run "$tmp/s.yaml"
  [ "$IMPORT_RC" = 0 ] || fail "$src: exit $IMPORT_RC: $IMPORT_MSG"
  assert_eq "Import Complete" "$(import_json '["message"]')" "$src: message"
  expect_tree "$vol" "$src"
  assert_eq "$want_files" "$(import_json '["vimport"]["archiveFiles"]')" "$src: archiveFiles"
  assert_eq "$want_bytes" "$(import_json '["vimport"]["archiveBytes"]')" "$src: archiveBytes"
  served=$srv/${src##*/}
  assert_eq "sha256:$(sha256sum "$served" | cut -d' ' -f1)" \
    "$(import_json '["vimport"]["sourceDigest"]')" "$src: sourceDigest"
done

# ---- the source checksum: right, then wrong (nothing is left) ----
sum=$(sha256sum "$srv/tree.tar.gz" | cut -d' ' -f1)
vol=$(volume)
spec "$tmp/s.yaml" "$NGINX_URL/tree.tar.gz" "$vol"
sed -i "s|url: \"$NGINX_URL/tree.tar.gz\"|url: \"$NGINX_URL/tree.tar.gz\", checksum: \"sha256:$sum\"|" "$tmp/s.yaml"
import_run "$tmp/s.yaml"
[ "$IMPORT_RC" = 0 ] || fail "right checksum: exit $IMPORT_RC: $IMPORT_MSG"
import_json '["vimport"]["verified"]' | grep -q checksum || fail "checksum not verified: $IMPORT_MSG"
expect_tree "$vol" "right checksum"

vol=$(volume)
spec "$tmp/s.yaml" "$NGINX_URL/tree.tar.gz" "$vol"
bad=$(printf '%064d' 0)
sed -i "s|url: \"$NGINX_URL/tree.tar.gz\"|url: \"$NGINX_URL/tree.tar.gz\", checksum: \"sha256:$bad\"|" "$tmp/s.yaml"
import_run "$tmp/s.yaml"
grep -qi "checksum" <<<"$IMPORT_MSG" || fail "wrong checksum: $IMPORT_MSG"
if grep -q "Import Complete" <<<"$IMPORT_MSG"; then fail "wrong checksum completed: $IMPORT_MSG"; fi
expect_empty "$vol" "wrong checksum"

# ---- hostile tars: refused, nothing left, nothing written outside ----
python3 - "$srv" <<'EOF'
import io, sys, tarfile
def make(name, *members):
    with tarfile.open(f"{sys.argv[1]}/{name}.tar", "w", format=tarfile.GNU_FORMAT) as t:
        # a harmless file first: it must not survive the refusal either
        data = b"first\n"
        ti = tarfile.TarInfo("ok-first"); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
def reg(name, data=b"x\n"):
    ti = tarfile.TarInfo(name); ti.size = len(data); return ti, data
def typed(name, type_, link=""):
    ti = tarfile.TarInfo(name); ti.type = type_; ti.linkname = link; return ti, None
make("dotdot", reg("a/../../escaped"))
make("absolute", reg("/tmp/vimport-e2e-absolute"))
make("symlink-out", typed("out", tarfile.SYMTYPE, "../../.."))
make("symlink-through", typed("d", tarfile.SYMTYPE, "."), reg("d/through"))
make("device", typed("sda", tarfile.BLKTYPE))
make("fifo", typed("pipe", tarfile.FIFOTYPE))
make("hardlink-out", typed("h", tarfile.LNKTYPE, "../outside-file"))
EOF
for case_ in "dotdot:'..'" "absolute:absolute" "symlink-out:points outside" \
             "symlink-through:through a symlink" "device:device node" "fifo:fifo" \
             "hardlink-out:'..'"; do
  name=${case_%%:*} words=${case_#*:}
  vol=$(volume)
  spec "$tmp/s.yaml" "$NGINX_URL/$name.tar" "$vol"
  import_run "$tmp/s.yaml"
  if grep -q "Import Complete" <<<"$IMPORT_MSG"; then fail "$name: accepted"; fi
  grep -q "$words" <<<"$IMPORT_MSG" || fail "$name: message lacks \"$words\": $IMPORT_MSG"
  expect_empty "$vol" "$name"
done
[ ! -e "$tmp/escaped" ] && [ ! -e /tmp/vimport-e2e-absolute ] || fail "a hostile entry escaped"

# ---- a non-tar, an existing name, a Block volume, a blank source ----
vol=$(volume)
spec "$tmp/s.yaml" "$NGINX_URL/disk.raw" "$vol"
import_run "$tmp/s.yaml"
grep -q "needs a tar archive" <<<"$IMPORT_MSG" || fail "non-tar: $IMPORT_MSG"
expect_empty "$vol" "non-tar"

vol=$(volume)
printf 'mine\n' >"$vol/run.sh"
spec "$tmp/s.yaml" "$NGINX_URL/tree.tar" "$vol"
import_run "$tmp/s.yaml"
grep -q "already exists" <<<"$IMPORT_MSG" || fail "existing name: $IMPORT_MSG"
assert_eq "mine" "$(cat "$vol/run.sh")" "the existing file"
assert_eq 1 "$(find "$vol" -mindepth 1 | wc -l)" "entries after a refused commit"

vol=$(volume)
spec "$tmp/s.yaml" "$NGINX_URL/tree.tar" "$vol" "storage: {volumeMode: Block}"
sed -i '/storage: {resources/d' "$tmp/s.yaml"
import_run "$tmp/s.yaml"
grep -q "needs a filesystem volume" <<<"$IMPORT_MSG" || fail "Block: $IMPORT_MSG"
[ "$IMPORT_RC" = 1 ] || fail "Block: exit $IMPORT_RC"

vol=$(volume)
spec "$tmp/s.yaml" blank "$vol"
import_run "$tmp/s.yaml"
grep -q "Cannot create empty disk with content type archive" <<<"$IMPORT_MSG" ||
  fail "blank: $IMPORT_MSG"
[ "$IMPORT_RC" = 1 ] || fail "blank: exit $IMPORT_RC"
expect_empty "$vol" "blank"

pass "archive: tar/gz/xz/zst/pax over http and file, counts, checksum, hostile tars, refusals"
