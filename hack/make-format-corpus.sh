#!/usr/bin/env bash
# Make a corpus of every non-qcow2 disk format CDI accepts, from one real GPT+ext4 image.
#   usage: hack/make-format-corpus.sh OUTDIR [SIZE_MIB=32]
#
# OUTDIR gets:
#   base.img                      the raw GPT+ext4 image (hack/make-test-image.sh), holding
#                                 /usr/share/common-licenses and the qemu-img binary
#   NAME.EXT                      base.img converted with qemu-img convert -O FORMAT -o ...
#   NAME.raw                      the oracle: `qemu-img convert -O raw NAME.EXT`, i.e. the
#                                 guest content every importer must reproduce byte for byte
#                                 (vpc may round the size up to a CHS geometry, so each
#                                 variant has its own oracle)
#   corpus.tsv                    one line per variant: NAME.EXT, qemu format, subformat,
#                                 what `vimport sniff` must call it
set -euo pipefail
out=${1:?usage: make-format-corpus.sh OUTDIR [SIZE_MIB]}
size_mib=${2:-32}
here=$(cd "$(dirname "$0")" && pwd)
for tool in qemu-img sgdisk mkfs.ext4; do
  command -v "$tool" >/dev/null || { echo "make-format-corpus: $tool is not installed" >&2; exit 2; }
done
mkdir -p "$out"
# A bounded file set, so the image fits SIZE_MIB whatever is installed: text that
# compresses and a binary that does not.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cp -r /usr/share/common-licenses "$src/licenses"
cp "$(command -v qemu-img)" "$src/qemu-img.bin"
"$here/make-test-image.sh" "$out/base.img" "$size_mib" "$src"

# name        qemu format  -o options                  sniff says (format / subformat)
variants=(
  "monolithicSparse.vmdk vmdk subformat=monolithicSparse vmdk monolithicSparse"
  "streamOptimized.vmdk  vmdk subformat=streamOptimized  vmdk streamOptimized"
  "dynamic.vhd           vpc  subformat=dynamic          vhd  dynamic"
  "fixed.vhd             vpc  subformat=fixed            vhd  fixed"
  "image.vhdx            vhdx subformat=dynamic          vhdx -"
  "dynamic.vdi           vdi  static=off                 vdi  dynamic"
  "static.vdi            vdi  static=on                  vdi  fixed"
)
: >"$out/corpus.tsv"
for v in "${variants[@]}"; do
  read -r name fmt opts sniff_fmt sniff_sub <<<"$v"
  qemu-img convert -f raw -O "$fmt" -o "$opts" "$out/base.img" "$out/$name"
  qemu-img convert -f "$fmt" -O raw "$out/$name" "$out/${name%.*}-${fmt}.raw"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$fmt" "$opts" "$sniff_fmt" "$sniff_sub" \
    "${name%.*}-${fmt}.raw" >>"$out/corpus.tsv"
done
echo "make-format-corpus: $(wc -l <"$out/corpus.tsv") variants in $out" >&2
