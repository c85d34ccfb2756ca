#!/usr/bin/env bash
# The man pages (docs/man/*.1): each renders without a groff warning (man --warnings),
# the SYNOPSIS of each command's page holds exactly the words of its `--help` usage,
# and every option `--help` lists is described on the page; `make install` installs
# the binary, CDI's program names as links to it, and the pages (PREFIX, DESTDIR).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd man col make
tmp=$(e2e_tmpdir)
man_dir=$VIMPORT_TOP/docs/man

render() { LC_ALL=C.UTF-8 MANWIDTH=300 man -l "$1" 2>/dev/null | col -b; }

# words: the whitespace-separated words of stdin, one per line, sorted
words() { tr -s ' \t' '\n\n' | sed '/^$/d' | sort; }

for page in "$man_dir"/*.1; do
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  [ -z "$warnings" ] || fail "$(basename "$page"): $warnings"
done

# check_synopsis PAGE HELP_ARGS...: the page's SYNOPSIS words are the usage's words
check_synopsis() {
  local page=$man_dir/$1
  shift
  "$VIMPORT" "$@" --help >"$tmp/help"
  sed -n '/^usage:/,/^$/p' "$tmp/help" | sed 's/^usage://' | words >"$tmp/help.words"
  render "$page" >"$tmp/page"
  sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' "$tmp/page" | sed '1d;$d' | words >"$tmp/page.words"
  diff -u "$tmp/help.words" "$tmp/page.words" >"$tmp/diff" ||
    fail "$(basename "$page") SYNOPSIS differs from 'vimport $* --help': $(cat "$tmp/diff")"
  # every option --help describes is on the page
  grep -oE '(^|[ ,\[])--?[a-zA-Z][a-zA-Z-]*' "$tmp/help" | sed 's/^[ ,\[]//' | sort -u |
    while read -r opt; do
      grep -qF -- "$opt" "$tmp/page" || fail "$(basename "$page") does not describe $opt"
    done
}
check_synopsis vimport-sum.1 sum
check_synopsis vimport-import.1 import
check_synopsis vimport-verify.1 verify
# vimport(1): the top-level usage, and every command it lists has an entry
"$VIMPORT" --help | sed -n '1s/^usage://p' | words >"$tmp/help.words"
render "$man_dir/vimport.1" >"$tmp/page"
sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' "$tmp/page" | sed '1d;$d' | words >"$tmp/page.words"
diff -u "$tmp/help.words" "$tmp/page.words" || fail "vimport.1 SYNOPSIS differs from 'vimport --help'"
for cmd in import sum verify sniff size-detection version; do
  grep -qE "^ {7}$cmd( |$)" "$tmp/page" || fail "vimport.1 has no entry for $cmd"
done

# make install: into DESTDIR under PREFIX, the binary once and the rest as links
make -s -C "$VIMPORT_TOP" install DESTDIR="$tmp/root" PREFIX=/opt/vi >"$tmp/install.log" 2>&1 ||
  fail "make install failed: $(tail -5 "$tmp/install.log")"
bin=$tmp/root/opt/vi/bin
[ -x "$bin/vimport" ] && [ ! -L "$bin/vimport" ] || fail "no vimport binary in $bin"
for name in cdi-image-size-detection cdi-containerimage-server cdi-source-update-poller; do
  assert_eq vimport "$(readlink "$bin/$name")" "$name link"
done
"$bin/cdi-image-size-detection" -h >/dev/null 2>&1 || true
for page in vimport vimport-import vimport-sum vimport-verify; do
  [ -f "$tmp/root/opt/vi/share/man/man1/$page.1" ] || fail "$page.1 not installed"
done
MANPATH=$tmp/root/opt/vi/share/man man -w vimport-sum >/dev/null || fail "man cannot find the installed vimport-sum"
pass
