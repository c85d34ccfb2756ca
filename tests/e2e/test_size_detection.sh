#!/usr/bin/env bash
# cdi-image-size-detection (the binary run by that name, as CDI's clone controller runs
# it from the importer image): for every image of hack/make-format-corpus.sh and
# hack/make-refused-corpus.sh, the termination message is the virtual size `qemu-img info`
# reports (CDI's tool asks qemu-img, without -f: a fixed VHD is raw to it), and the exit
# codes are CDI's
# (pkg/controller/common/util.go: 1 ErrBadArguments, 2 ErrInvalidFile, 4 ErrBadTermFile).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd qemu-img qemu-nbd
tmp=$(e2e_tmpdir)
"$VIMPORT_TOP/hack/make-format-corpus.sh" "$tmp/formats" 16 >/dev/null
"$VIMPORT_TOP/hack/make-refused-corpus.sh" "$tmp/refused" >/dev/null
ln -s "$VIMPORT" "$tmp/cdi-image-size-detection"
detect=$tmp/cdi-image-size-detection
export VIMPORT_TERMINATION_MESSAGE_PATH=$tmp/termination-log

qemu_size() {
  qemu-img info --output=json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}

# detect ARGS... : sets RC and MSG (the termination message, "" when none was written)
detect() {
  rm -f "$VIMPORT_TERMINATION_MESSAGE_PATH"
  RC=0
  "$detect" "$@" 2>"$tmp/stderr" || RC=$?
  MSG=$(cat "$VIMPORT_TERMINATION_MESSAGE_PATH" 2>/dev/null || true)
}

n=0
images=("$tmp/formats/base.img")
while IFS=$'\t' read -r image _; do images+=("$tmp/formats/$image"); done \
  < <(grep -v '^#' "$tmp/formats/corpus.tsv")
for img in "${images[@]}"; do
  detect -image-path "$img"
  assert_eq 0 "$RC" "$(basename "$img"): exit ($(cat "$tmp/stderr"))"
  assert_eq "$(qemu_size "$img")" "$MSG" "$(basename "$img"): virtual size"
  n=$((n + 1))
done
while IFS=$'\t' read -r image format _; do
  detect -image-path="$tmp/refused/$image"
  if [ "$format" = luks ]; then
    # vimport reads no LUKS header, so it cannot give qemu's payload size: ErrInvalidFile
    assert_eq 2 "$RC" "$image: exit"
    grep -q 'LUKS volume' "$tmp/stderr" || fail "$image: $(cat "$tmp/stderr")"
  else
    # dmg.img too: without a ".dmg" name qemu-img, and so CDI, sizes it as raw
    assert_eq 0 "$RC" "$image: exit ($(cat "$tmp/stderr"))"
    assert_eq "$(qemu_size "$tmp/refused/$image")" "$MSG" "$image: virtual size"
  fi
  n=$((n + 1))
done <"$tmp/refused/corpus.tsv"
[ "$n" -ge 15 ] || fail "only $n images were sized"

# the size of the file CDI's clone reads, written by stat, through Go's other flag forms
truncate -s 5G "$tmp/disk.img"
detect --image-path "$tmp/disk.img" -scheme file://
assert_eq "0 5368709120" "$RC $MSG" "sparse raw disk.img"
[ "$(stat -c %a "$VIMPORT_TERMINATION_MESSAGE_PATH")" = 600 ] || fail "termination message mode"

detect
assert_eq "1 " "$RC $MSG" "no -image-path: ErrBadArguments"
detect -image-path "$tmp/nonexistent.img"
assert_eq "2 " "$RC $MSG" "missing file: ErrInvalidFile"
printf '<html>Not Found</html>\n' >"$tmp/page.img"
detect -image-path "$tmp/page.img"
assert_eq "2 " "$RC $MSG" "an HTML page: ErrInvalidFile"
detect -image-path "$tmp/disk.img" -scheme http://
assert_eq "2 " "$RC $MSG" "a scheme qemu.go refuses: ErrInvalidFile"
detect -no-such-flag
assert_eq 2 "$RC" "an unknown flag exits as Go's flag.Parse does"
grep -q 'flag provided but not defined: -no-such-flag' "$tmp/stderr" || fail "unknown flag: $(cat "$tmp/stderr")"
detect -h
assert_eq 0 "$RC" "-h"
VIMPORT_TERMINATION_MESSAGE_PATH=$tmp/no/such/dir/log detect -image-path "$tmp/disk.img"
assert_eq 4 "$RC" "unwritable termination message: ErrBadTermFile"
# the subcommand form runs the same program
"$VIMPORT" size-detection -image-path "$tmp/disk.img"
assert_eq 5368709120 "$(cat "$VIMPORT_TERMINATION_MESSAGE_PATH")" "vimport size-detection"
