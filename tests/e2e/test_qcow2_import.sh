#!/usr/bin/env bash
# vimport import of every image of the qcow2 corpus (hack/make-qcow2-corpus.sh:
# compressed zlib/zstd, v2, extended L2, 512 B and 2 MiB clusters, preallocated
# metadata, random-order writes, resized, snapshotted, discarded, a GPT+ext4 disk), twice:
#   - from a pipe (source.file.path "-", the image on stdin through cat: not seekable)
#   - from real nginx on 127.0.0.1 (source.http.url, with the sha256 of the served file)
# Each target must be byte-identical (cmp) to the raw image `qemu-img convert -O raw`
# made, the termination message must say "Import Complete" with exit 0, and its
# vimport.blockHash must equal `vimport sum` of that raw image. The corpus images are
# small enough that the default 64 MiB window holds everything, so neither path needs
# re-reads; test_qcow2_window.sh covers the images that do.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd qemu-img qemu-io python3
tmp=$(e2e_tmpdir)
srv=$tmp/srv
mkdir -p "$srv"
timeout 300 "$VIMPORT_TOP/hack/make-qcow2-corpus.sh" "$srv" >/dev/null || fail "the qcow2 corpus was not built"
nginx_start "$srv"

# check WHAT NAME TARGET: the import just run must have reproduced NAME.raw exactly
check() {
  local what=$1 name=$2 target=$3 want
  [ "$IMPORT_RC" -eq 0 ] ||
    fail "$what: exit $IMPORT_RC: $IMPORT_MSG; stderr: $(tail -3 "$tmp/import.stderr")"
  assert_eq "Import Complete" "$(import_json '["message"]')" "$what: message"
  assert_eq qcow2 "$(import_json '["vimport"]["format"]')" "$what: format"
  want=sha256:$("$VIMPORT" sum "$srv/$name.raw" | cut -d' ' -f1)
  assert_eq "$want" "$(import_json '["vimport"]["blockHash"]')" "$what: block hash vs vimport sum of the raw image"
  # Same size and same bytes: the target is sized to the virtual size, like the oracle.
  assert_eq "$(stat -c %s "$srv/$name.raw")" "$(stat -c %s "$target")" "$what: target size"
  cmp "$srv/$name.raw" "$target" || fail "$what: target differs from qemu-img convert -O raw"
}

count=0
for img in "$srv"/*.qcow2; do
  name=$(basename "$img" .qcow2)

  import_spec "$tmp/spec.yaml" - "" "$tmp/$name.pipe.target"
  import_run "$tmp/spec.yaml" "$img"
  check "$name from a pipe" "$name" "$tmp/$name.pipe.target"
  assert_eq False "$(import_json '["scratchSpaceRequired"]')" "$name from a pipe: scratchSpaceRequired"
  rm -f "$tmp/$name.pipe.target"

  sum=sha256:$(sha256sum "$img" | cut -d' ' -f1)
  import_spec "$tmp/spec.yaml" "$NGINX_URL/$name.qcow2" "$sum" "$tmp/$name.http.target"
  import_run "$tmp/spec.yaml"
  check "$name over http" "$name" "$tmp/$name.http.target"
  assert_eq "$sum" "$(import_json '["vimport"]["sourceDigest"]')" "$name over http: source digest"
  import_json '["vimport"]["verified"]' | grep -q checksum || fail "$name over http: checksum not verified"
  rm -f "$tmp/$name.http.target"

  echo "ok $name: pipe and http, cmp and block hash match qemu-img" >&2
  count=$((count + 1))
done
# The corpus has 20 images; fewer means the generator lost some (e.g. no sgdisk).
[ "$count" -ge 19 ] || fail "only $count corpus images were imported"

# A wrong checksum on a qcow2 is still CDI's mismatch message with exit 0.
bad=sha256:$(printf '%064d' 0)
import_spec "$tmp/spec.yaml" "$NGINX_URL/zstd.qcow2" "$bad" "$tmp/bad.target"
import_run "$tmp/spec.yaml"
assert_eq 0 "$IMPORT_RC" "exit code of a checksum mismatch"
real=sha256:$(sha256sum "$srv/zstd.qcow2" | cut -d' ' -f1)
assert_eq "Unable to process data: checksum mismatch: expected $bad, calculated $real" \
  "$(import_json '["message"]')" "mismatch message"
pass "$count qcow2 images imported from a pipe and from nginx"
