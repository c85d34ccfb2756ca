#!/usr/bin/env bash
# vimport import of vmdk (monolithicSparse, streamOptimized), vhd (dynamic, fixed), vhdx and
# vdi (dynamic, static), made by qemu-img convert from a real GPT+ext4 image
# (hack/make-format-corpus.sh): from a pipe and from nginx, each target byte-identical to
# `qemu-img convert -O raw` of the same file and with the block hash of `vimport sum` of
# it (and `vimport sum` of the image itself gives that block hash). Without a scratch path, a format that cannot stream ends with CDI's
# scratchSpaceRequired message and exit 0; streamOptimized vmdk, dynamic vhd and vdi
# stream in one pass with no scratch space at all.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd qemu-img qemu-nbd
tmp=$(e2e_tmpdir)
corpus=$tmp/corpus
"$VIMPORT_TOP/hack/make-format-corpus.sh" "$corpus" 32 >/dev/null
mkdir -p "$tmp/scratch"
nginx_start "$corpus"

n=0
while IFS=$'\t' read -r image _ _ format _ oracle; do
  want=sha256:$("$VIMPORT" sum "$corpus/$oracle" | cut -d' ' -f1)
  # vimport sum of the image itself reads it with the same decoders as the import
  assert_eq "$want" "sha256:$("$VIMPORT" sum "$corpus/$image" | cut -d' ' -f1)" "sum of $image"
  for how in pipe http; do
    rm -f "$tmp/target.img"
    if [ "$how" = pipe ]; then
      import_spec "$tmp/spec.yaml" - "" "$tmp/target.img" "scratchPath: $tmp/scratch"
      import_run "$tmp/spec.yaml" "$corpus/$image"
    else
      sum=sha256:$(sha256sum "$corpus/$image" | cut -d' ' -f1)
      import_spec "$tmp/spec.yaml" "$NGINX_URL/$image" "$sum" "$tmp/target.img" "scratchPath: $tmp/scratch"
      import_run "$tmp/spec.yaml"
    fi
    [ "$IMPORT_RC" -eq 0 ] || fail "$image from $how: exit $IMPORT_RC: $IMPORT_MSG"
    assert_eq "Import Complete" "$(import_json '["message"]')" "$image from $how"
    assert_eq "$format" "$(import_json '["vimport"]["format"]')" "$image from $how: format"
    cmp "$tmp/target.img" "$corpus/$oracle" || fail "$image from $how differs from qemu-img's raw"
    assert_eq "$want" "$(import_json '["vimport"]["blockHash"]')" "$image from $how: block hash"
    [ -z "$(ls -A "$tmp/scratch")" ] || fail "$image from $how left files in the scratch path"
    n=$((n + 1))
  done
done < <(grep -v '^#' "$corpus/corpus.tsv")
[ "$n" -ge 14 ] || fail "only $n imports ran"

# No scratch path: streamOptimized vmdk, dynamic vhd and vdi stream in one pass (their
# tables come first); a vhdx over HTTP needs scratch space and says so as CDI does.
for image in streamOptimized.vmdk dynamic.vhd dynamic.vdi static.vdi; do
  oracle=$(awk -F'\t' -v i="$image" '$1 == i {print $6}' "$corpus/corpus.tsv")
  rm -f "$tmp/target.img"
  import_spec "$tmp/spec.yaml" "$NGINX_URL/$image" "" "$tmp/target.img"
  import_run "$tmp/spec.yaml"
  [ "$IMPORT_RC" -eq 0 ] || fail "$image streamed without scratch: exit $IMPORT_RC: $IMPORT_MSG"
  grep -q "streamed in one pass" "$E2E_TMP/import.stderr" || fail "$image did not stream"
  cmp "$tmp/target.img" "$corpus/$oracle" || fail "$image streamed differs from qemu-img's raw"
done

import_spec "$tmp/spec.yaml" "$NGINX_URL/image.vhdx" "" "$tmp/target.img"
import_run "$tmp/spec.yaml"
assert_eq 0 "$IMPORT_RC" "exit code when scratch space is required"
assert_eq True "$(import_json '["scratchSpaceRequired"]')" "scratchSpaceRequired"
pass "$n imports of vmdk, vhd, vhdx and vdi from a pipe and from nginx"
