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

# expect_refused WHAT FORMAT URL_OR_PATH ("-": the format's image through a pipe)
expect_refused() {
  local what=$1 format=$2 src=$3
  rm -f "$tmp/target.img"
  import_spec "$tmp/spec.yaml" "$src" "" "$tmp/target.img"
  if [ "$src" = - ]; then
    import_run "$tmp/spec.yaml" "$corpus/$format.img"
  else
    import_run "$tmp/spec.yaml"
  fi
  expect_text_failure "$what" "^Unable to process data: Invalid format $format for image "
  [ ! -s "$tmp/target.img" ] || fail "$what: a target of $(stat -c %s "$tmp/target.img") bytes was left"
}

n=0
while IFS=$'\t' read -r image format _; do
  case $format in luks | dmg) continue ;; esac # below
  expect_refused "$image over http" "$format" "$NGINX_URL/$image"
  expect_refused "$image.xz over http" "$format" "$NGINX_URL/$image.xz"
  expect_refused "$image from a file" "$format" "$corpus/$image"
  n=$((n + 1))
done <"$corpus/corpus.tsv"
[ "$n" -eq 5 ] || fail "$n formats tried, want 5 (qcow qed parallels bochs cloop)"

# A LUKS volume: qemu-img info says luks, so CDI refuses it; its start tells vimport.
expect_refused "luks.img over http" luks "$NGINX_URL/luks.img"
expect_refused "luks.img from a pipe" luks -
# A DMG: only its trailer tells, so where the end can be read (a file, a server that
# honours Range). CDI would import it as raw bytes (qemu-img knows a DMG by its ".dmg"
# name only, and CDI probes /scratch/tmpimage); vimport refuses it: docs/cdi.md.
expect_refused "dmg.img over http" dmg "$NGINX_URL/dmg.img"
expect_refused "dmg.img from a file" dmg "$corpus/dmg.img"
pass
