#!/usr/bin/env bash
# OpenPGP-signed checksum files (pkg/openpgp) with `vimport verify-checksum-file`, every
# verdict cross-checked with GnuPG's gpgv and Sequoia's sqv on the same files.
#
# Keys and signatures are made here by GnuPG in a temporary GNUPGHOME, once for the file:
# RSA-3072, Ed25519 (with an Ed25519 signing subkey), ECDSA P-256, P-384 and P-521. Past
# and future are made with gpg's own --faked-system-time, so no extra tool is needed.
# Cases: each algorithm as clearsigned, detached binary and detached armored; a keyring
# binary and armored, with one and with several keys; wrong key; tampered line; tampered
# signature; corrupted armor CRC; SHA-1 signature; key and subkey expired at signing
# time, and expired only after signing; revoked key and revoked subkey (hard), a subkey
# retired as superseded (good before, refused after); two signatures of
# which one is good; text after a clearsigned signature; trailing whitespace and
# dash-escapes of the clearsign format.
#
# sqv 1.1 reads only detached signatures: a clearsigned case is given to it as the
# signature block over the signed text, extracted here by the rules of RFC 4880 7.1
# (independently of vimport's parser), which hashes identically as a text signature.
#
# gpgv and sqv differ on a few cases; vimport then takes the safer verdict:
#   gpgv accepts SHA-1 data signatures and signatures by expired or revoked keys (it
#     checks no key validity: its keyring is trusted as a whole); sqv and vimport refuse;
#   gpgv refuses two signatures of which one is by a key it lacks (exit 2); sqv and
#     vimport accept when one signature by a keyring key is good (a distribution may sign
#     with its old and new keys while users hold one);
#   sqv ignores a wrong armor CRC-24 (RFC 9580 6.1 lets it); gpgv and vimport refuse it.
# Those divergences are listed in `gpgv_differs` and `sqv_differs` below and asserted,
# not hidden.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
set -E
require_cmd gpg gpgv sqv python3
tmp=$(e2e_tmpdir)
export GNUPGHOME=$tmp/gnupg
mkdir -m 700 "$GNUPGHOME"
e2e_on_exit "gpgconf --kill all >/dev/null 2>&1 || true"
d=$tmp/d
mkdir -p "$d"

G=(gpg --batch --quiet --no-tty --pinentry-mode loopback --passphrase '')
past=(--faked-system-time 20200101T000000!)

genkey() { # genkey UID ALGO [extra gpg args]
  local uid=$1 algo=$2
  shift 2
  "${G[@]}" "$@" --quick-gen-key "$uid" "$algo" sign never 2>/dev/null
}
fpr() { gpg --with-colons --list-keys "$1" | awk -F: '/^fpr/ {print $10; exit}'; }
subfpr() { gpg --with-colons --list-keys "$1" | awk -F: '/^sub/ {s=1} s && /^fpr/ {print $10; exit}'; }

# ---- keys ---------------------------------------------------------------------------
genkey 'RSA Signer <rsa@example.org>' rsa3072
genkey 'Ed Signer <ed@example.org>' ed25519
"${G[@]}" --quick-add-key "$(fpr ed@example.org)" ed25519 sign never 2>/dev/null
genkey 'P256 Signer <p256@example.org>' nistp256
genkey 'P384 Signer <p384@example.org>' nistp384
genkey 'P521 Signer <p521@example.org>' nistp521
genkey 'Other <other@example.org>' ed25519
genkey 'Revoked <revoked@example.org>' ed25519
genkey 'Revsub <revsub@example.org>' ed25519
"${G[@]}" --quick-add-key "$(fpr revsub@example.org)" ed25519 sign never 2>/dev/null
# made in 2020, expiring after the signatures below are made (set afterwards)
genkey 'Expired <expired@example.org>' ed25519 "${past[@]}"
genkey 'Expsub <expsub@example.org>' ed25519 "${past[@]}"
"${G[@]}" "${past[@]}" --quick-add-key "$(fpr expsub@example.org)" ed25519 sign never 2>/dev/null
# a subkey retired ("superseded", a soft revocation) in 2021: good before, not after
genkey 'Softrev <softrev@example.org>' ed25519 "${past[@]}"
"${G[@]}" "${past[@]}" --quick-add-key "$(fpr softrev@example.org)" ed25519 sign never 2>/dev/null

# ---- the checksum file --------------------------------------------------------------
# dash lines and trailing whitespace exercise the clearsign rules
printf '%s  disk.img\n%s  other.img\n-----not an armor line\n- dash\nspaces   \ntab\t\n' \
  "$(printf 'a%.0s' {1..64})" "$(printf 'b%.0s' {1..64})" >"$d/SUMS"

sign() { # sign OUT MODE KEY [gpg args]: MODE clear|bin|asc
  local out=$1 mode=$2 key=$3
  shift 3
  case $mode in
    clear) "${G[@]}" "$@" -u "$key" --clearsign -o "$out" "$d/SUMS" ;;
    bin) "${G[@]}" "$@" -u "$key" --detach-sign -o "$out" "$d/SUMS" ;;
    asc) "${G[@]}" "$@" -u "$key" --detach-sign --armor -o "$out" "$d/SUMS" ;;
  esac 2>/dev/null
}

for k in rsa ed p256 p384 p521 other revoked; do
  for m in clear bin asc; do sign "$d/$k.$m" $m "$k@example.org"; done
done
for m in clear bin asc; do
  sign "$d/edsub.$m" $m "$(subfpr ed@example.org)!"
  sign "$d/revsub.$m" $m "$(subfpr revsub@example.org)!"
done
sign "$d/sha1.asc" asc ed@example.org --digest-algo SHA1
sign "$d/sha1.clear" clear rsa@example.org --digest-algo SHA1
sign "$d/sha512.clear" clear p256@example.org --digest-algo SHA512
sign "$d/sha224.asc" asc rsa@example.org --digest-algo SHA224
sign "$d/two.asc" asc ed@example.org -u other@example.org
sign "$d/two.clear" clear ed@example.org -u other@example.org
# expired keys: sign in 2020 and in 2022, then set the key to expire at the start of
# 2021 (a self-signature made in 2020 too, newer than the first)
for k in expired expsub; do
  key=$k@example.org
  [ $k = expsub ] && key="$(subfpr expsub@example.org)!"
  sign "$d/$k-before.asc" asc "$key" --faked-system-time 20200601T000000!
  sign "$d/$k-after.asc" asc "$key" --faked-system-time 20220601T000000!
done
"${G[@]}" --faked-system-time 20200102T000000! --quick-set-expire "$(fpr expired@example.org)" 1y 2>/dev/null
"${G[@]}" --faked-system-time 20200102T000000! --quick-set-expire "$(fpr expsub@example.org)" \
  1y "$(subfpr expsub@example.org)" 2>/dev/null
sign "$d/softrev-before.asc" asc "$(subfpr softrev@example.org)!" --faked-system-time 20200601T000000!
sign "$d/softrev-after.asc" asc "$(subfpr softrev@example.org)!" --faked-system-time 20220101T000000!
# --edit-key's reason 2 is "Key is superseded" (RFC 4880 reason 1)
printf 'key 1\nrevkey\ny\n2\n\ny\nsave\n' |
  gpg --batch --no-tty --pinentry-mode loopback --passphrase '' --command-fd 0 \
    --faked-system-time 20210101T000000! --edit-key "$(fpr softrev@example.org)" >/dev/null 2>&1
gpg --with-colons --list-keys softrev@example.org | grep -q '^sub:r:' ||
  fail "the soft subkey revocation was not made"
# revocations: the key by the certificate gpg wrote at key generation; the subkey by
# --edit-key's revkey (reason 0, no reason: a hard revocation)
rev=$GNUPGHOME/openpgp-revocs.d/$(fpr revoked@example.org).rev
sed 's/^:-----BEGIN/-----BEGIN/' "$rev" | "${G[@]}" --import 2>/dev/null
printf 'key 1\nrevkey\ny\n0\n\ny\nsave\n' |
  gpg --batch --no-tty --pinentry-mode loopback --passphrase '' --command-fd 0 \
    --status-fd 2 --edit-key "$(fpr revsub@example.org)" >/dev/null 2>&1
gpg --with-colons --list-keys revsub@example.org | grep -q '^sub:r:' ||
  fail "the subkey revocation was not made"

# ---- keyrings -----------------------------------------------------------------------
signers=(rsa ed p256 p384 p521 revoked revsub expired expsub softrev)
all=()
for k in "${signers[@]}"; do all+=("$k@example.org"); done
gpg --export "${all[@]}" >"$d/all.gpg"
gpg --export --armor "${all[@]}" >"$d/all.asc"
gpg --export ed@example.org >"$d/ed-only.gpg"
gpg --export --armor ed@example.org >"$d/ed-only.asc"
gpg --export other@example.org >"$d/other.gpg"

# ---- tampering ----------------------------------------------------------------------
sed 's/^aaaa/aaab/' "$d/ed.clear" >"$d/ed-line.clear"
sed 's/^aaaa/aaab/' "$d/SUMS" >"$d/SUMS.tampered"
python3 - "$d/ed.bin" "$d/ed-sigflip.bin" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[-10] ^= 0x01  # inside the signature value (S)
open(sys.argv[2], "wb").write(b)
EOF
# a wrong CRC line: its last base64 digit changed
awk '/^=/ && !done {c = substr($0, 5, 1); $0 = substr($0, 1, 4) (c == "A" ? "B" : "A"); done = 1} {print}' \
  "$d/rsa.asc" >"$d/rsa-crc.asc"
cmp -s "$d/rsa.asc" "$d/rsa-crc.asc" && fail "the CRC line was not changed"
{ cat "$d/ed.clear"; printf 'cafe  evil.img\n'; } >"$d/ed-after.clear"
# trailing whitespace added to a signed line after signing: still the same signed text
sed 's/^tab\t$/tab   \t /' "$d/ed.clear" >"$d/ed-ws.clear"
# a dash-escaped line unescaped: a different line, refused
sed 's/^- - dash$/ - dash/' "$d/ed.clear" >"$d/ed-dash.clear"

# ---- verdicts -----------------------------------------------------------------------
# the signed text of a clearsigned file, for sqv: RFC 4880 7.1 by hand
clear_split() { # clear_split FILE TEXT SIG
  python3 - "$1" "$2" "$3" <<'EOF'
import sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
i = lines.index(b"-----BEGIN PGP SIGNED MESSAGE-----") + 1
while lines[i].strip():
    i += 1
i += 1
text = []
while lines[i].rstrip() != b"-----BEGIN PGP SIGNATURE-----":
    l = lines[i]
    if l.startswith(b"- "):
        l = l[2:]
    text.append(l.rstrip(b" \t\r"))
    i += 1
sig = []
while True:
    sig.append(lines[i])
    if lines[i].rstrip() == b"-----END PGP SIGNATURE-----":
        break
    i += 1
open(sys.argv[2], "wb").write(b"\n".join(text))
open(sys.argv[3], "wb").write(b"\n".join(sig) + b"\n")
EOF
}

# verdict TOOL KEYRING FILE [SIG]: prints accept or refuse
verdict() {
  local tool=$1 kr=$2 file=$3 sig=${4:-} rc
  set +e
  case $tool in
    vimport)
      if [ -n "$sig" ]; then
        "$VIMPORT" verify-checksum-file "$file" --signature "$sig" --keyring "$kr" \
          >"$d/out" 2>"$d/err"
      else
        "$VIMPORT" verify-checksum-file "$file" --keyring "$kr" >"$d/out" 2>"$d/err"
      fi
      rc=$? ;;
    gpgv) # gpgv reads binary keyrings only: the .gpg twin of an armored one
      [[ $kr != *.asc ]] || kr=${kr%.asc}.gpg
      if [ -n "$sig" ]; then gpgv --keyring "$kr" "$sig" "$file" >/dev/null 2>"$d/gpgv.err"
      else gpgv --keyring "$kr" "$file" >/dev/null 2>"$d/gpgv.err"; fi
      rc=$? ;;
    sqv)
      if [ -z "$sig" ]; then
        clear_split "$file" "$d/sqv.text" "$d/sqv.sig"
        file=$d/sqv.text sig=$d/sqv.sig
      fi
      sqv --keyring "$kr" "$sig" "$file" >/dev/null 2>"$d/sqv.err"
      rc=$? ;;
  esac
  set -e
  [ $rc -eq 0 ] && echo accept || echo refuse
}

# gpgv's known, deliberate differences: case name -> gpgv's verdict
declare -A gpgv_differs=(
  [sha1-detached]=accept [sha1-clear]=accept
  [expired-after]=accept [expsub-after]=accept
  [revoked-key]=accept [revoked-key-clear]=accept [revoked-subkey]=accept
  [softrev-after]=accept
  [two-one-good]=refuse [two-one-good-clear]=refuse
)
# sqv's: RFC 9580 6.1 tells readers to ignore the armor CRC, sqv does; vimport checks it
# as gpg does (a damaged download says so at once) -> sqv's verdict
declare -A sqv_differs=(
  [corrupted-crc]=accept
)
cases=0
# check NAME EXPECT KEYRING FILE [SIG] [MESSAGE-PATTERN]
check() {
  local name=$1 want=$2 kr=$3 file=$4 sig=${5:-} pattern=${6:-} v g s
  v=$(verdict vimport "$kr" "$file" "$sig")
  g=$(verdict gpgv "$kr" "$file" "$sig")
  s=$(verdict sqv "$kr" "$file" "$sig")
  [ "$v" = "$want" ] || fail "$name: vimport says $v, expected $want: $(cat "$d/err")"
  [ "$s" = "${sqv_differs[$name]:-$want}" ] || fail "$name: sqv says $s, expected ${sqv_differs[$name]:-$want}: $(cat "$d/sqv.err")"
  [ "$g" = "${gpgv_differs[$name]:-$want}" ] || fail "$name: gpgv says $g, expected ${gpgv_differs[$name]:-$want}: $(cat "$d/gpgv.err")"
  if [ -n "$pattern" ]; then
    grep -Eq "$pattern" "$d/err" || fail "$name: message '$(cat "$d/err")' lacks /$pattern/"
  fi
  cases=$((cases + 1))
}

ED=$(fpr ed@example.org)
for k in rsa ed p256 p384 p521; do
  for kr in all.gpg all.asc; do
    check "$k-clear-$kr" accept "$d/$kr" "$d/$k.clear" "" "good signature by [0-9A-F]{40}"
    check "$k-bin-$kr" accept "$d/$kr" "$d/SUMS" "$d/$k.bin"
    check "$k-asc-$kr" accept "$d/$kr" "$d/SUMS" "$d/$k.asc"
  done
done
for m in clear bin asc; do
  f=$d/SUMS s=$d/edsub.$m
  [ $m = clear ] && f=$d/edsub.clear s=
  check "edsub-$m" accept "$d/ed-only.gpg" "$f" "$s" "subkey $(subfpr ed@example.org)"
done
check ed-only-armored accept "$d/ed-only.asc" "$d/SUMS" "$d/ed.bin" "Ed Signer <ed@example.org>"
check wrong-key refuse "$d/other.gpg" "$d/SUMS" "$d/ed.bin" "not in the keyring"
check wrong-key-several refuse "$d/all.gpg" "$d/SUMS" "$d/other.asc" "not in the keyring"
check tampered-line-clear refuse "$d/all.gpg" "$d/ed-line.clear" "" "$ED.*Ed Signer"
check tampered-line-detached refuse "$d/all.gpg" "$d/SUMS.tampered" "$d/rsa.asc" "$(fpr rsa@example.org).*RSA Signer"
check tampered-signature refuse "$d/all.gpg" "$d/SUMS" "$d/ed-sigflip.bin" "does not match"
check corrupted-crc refuse "$d/all.gpg" "$d/SUMS" "$d/rsa-crc.asc" "CRC-24"
check sha1-detached refuse "$d/all.gpg" "$d/SUMS" "$d/sha1.asc" "SHA-1"
check sha1-clear refuse "$d/all.gpg" "$d/sha1.clear" "" "SHA-1"
check sha512-clear accept "$d/all.gpg" "$d/sha512.clear"
check sha224-detached accept "$d/all.gpg" "$d/SUMS" "$d/sha224.asc"
check expired-before accept "$d/all.gpg" "$d/SUMS" "$d/expired-before.asc"
check expired-after refuse "$d/all.gpg" "$d/SUMS" "$d/expired-after.asc" "expired"
check expsub-before accept "$d/all.gpg" "$d/SUMS" "$d/expsub-before.asc"
check expsub-after refuse "$d/all.gpg" "$d/SUMS" "$d/expsub-after.asc" "subkey had expired"
check revoked-key refuse "$d/all.gpg" "$d/SUMS" "$d/revoked.asc" "revoked"
check revoked-key-clear refuse "$d/all.gpg" "$d/revoked.clear" "" "revoked"
check revoked-subkey refuse "$d/all.gpg" "$d/SUMS" "$d/revsub.asc" "subkey was revoked"
check softrev-before accept "$d/all.gpg" "$d/SUMS" "$d/softrev-before.asc"
check softrev-after refuse "$d/all.gpg" "$d/SUMS" "$d/softrev-after.asc" "subkey was revoked"
check two-one-good accept "$d/ed-only.gpg" "$d/SUMS" "$d/two.asc"
check two-one-good-clear accept "$d/ed-only.gpg" "$d/two.clear"
check ws-trailing accept "$d/all.gpg" "$d/ed-ws.clear"
check dash-unescaped refuse "$d/all.gpg" "$d/ed-dash.clear"

# Text after the signature is not signed: the signature is good (all three agree), but
# vimport prints only the signed lines, so the appended line is never used.
check text-after accept "$d/all.gpg" "$d/ed-after.clear"
grep -q evil.img "$d/out" && fail "text after the signature was printed as verified"
grep -q 'disk.img' "$d/out" || fail "the signed lines were not printed"
# dash-escapes undone and trailing whitespace stripped in what is printed
"$VIMPORT" verify-checksum-file "$d/ed.clear" --keyring "$d/all.gpg" >"$d/out" 2>/dev/null
grep -qx -- '-----not an armor line' "$d/out" || fail "dash-escape not undone"
grep -qx 'spaces' "$d/out" || fail "trailing whitespace kept"

# command-line and keyring errors say what to do
set +e
"$VIMPORT" verify-checksum-file "$d/SUMS" --keyring "$d/all.gpg" 2>"$d/err"; rc=$?
set -e
assert_eq 1 "$rc" "unsigned file"
grep -q "not a clearsigned message" "$d/err" || fail "unsigned: $(cat "$d/err")"
set +e
"$VIMPORT" verify-checksum-file "$d/SUMS" --signature "$d/ed.bin" --keyring "$d/ed.bin" 2>"$d/err"; rc=$?
set -e
assert_eq 1 "$rc" "signature as keyring"
grep -q "not a key" "$d/err" || fail "signature as keyring: $(cat "$d/err")"
set +e
"$VIMPORT" verify-checksum-file "$d/SUMS" 2>/dev/null; rc=$?
set -e
assert_eq 2 "$rc" "no --keyring"

pass "$cases OpenPGP cases: vimport, gpgv and sqv agree except the listed divergences"
