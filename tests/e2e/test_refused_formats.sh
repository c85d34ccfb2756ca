#!/usr/bin/env bash
# Disk formats qemu-img knows and CDI refuses (pkg/image/qemu.go checkIfURLIsValid: only
# raw, qcow2, vmdk, vdi, vpc and vhdx pass) are refused by the import in CDI's words,
# "Invalid format <f> for image <url>", and never imported as raw bytes: from nginx and
# from a file, plain and xz-compressed. The images are hack/make-refused-corpus.sh's,
# each checked there with `qemu-img info`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd qemu-img xz
tmp=$(e2e_tmpdir)
corpus=$tmp/corpus
"$VIMPORT_TOP/hack/make-refused-corpus.sh" "$corpus" >/dev/null
for f in "$corpus"/*.img; do xz -T1 -0 -k "$f"; done
nginx_start "$corpus"

# expect_refused WHAT FORMAT URL_OR_PATH
expect_refused() {
  local what=$1 format=$2 src=$3
  rm -f "$tmp/target.img"
  import_spec "$tmp/spec.yaml" "$src" "" "$tmp/target.img"
  import_run "$tmp/spec.yaml"
  [ "$IMPORT_RC" -eq 1 ] || fail "$what: exit $IMPORT_RC, want 1: $IMPORT_MSG"
  local msg
  msg=$(import_json '["message"]')
  case $msg in
    *"Invalid format $format for image "*) ;;
    *) fail "$what: message: $msg" ;;
  esac
  [ ! -s "$tmp/target.img" ] || fail "$what: a target of $(stat -c %s "$tmp/target.img") bytes was left"
}

n=0
while IFS=$'\t' read -r image format _; do
  case $format in luks | dmg) continue ;; esac # refused by the policy, below
  expect_refused "$image over http" "$format" "$NGINX_URL/$image"
  expect_refused "$image.xz over http" "$format" "$NGINX_URL/$image.xz"
  expect_refused "$image from a file" "$format" "$corpus/$image"
  n=$((n + 1))
done <"$corpus/corpus.tsv"
[ "$n" -eq 5 ] || fail "$n formats tried, want 5 (qcow qed parallels bochs cloop)"
pass
