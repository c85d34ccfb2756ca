#!/usr/bin/env bash
# Imports whose checksum file is OpenPGP-signed (vimport.checksumSignature, and the
# VIMPORT_CHECKSUM_* environment), served over https by nginx on 127.0.0.1 next to the
# image, as distributions publish them:
#   - a Fedora-style CHECKSUM (BSD lines, "# name: N bytes" comments), clearsigned;
#   - a Debian-style SHA512SUMS with SHA512SUMS.sign (detached, armored);
#   - an Ubuntu-style SHA256SUMS with SHA256SUMS.gpg (detached, binary), from the env;
# each imports with the publisher's key (binary or armored keyring) and names the key's
# fingerprint in verifiedBy. A mirror that swaps the image and the checksum file together
# (the checksum file re-signed by its own key, or left with the old signature) is refused
# before a byte is written, with the key named; so is an unsigned checksum file.
# Published block hashes are tested in test_blockhash_url.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
set -E
require_cmd gpg openssl python3 sha256sum sha512sum qemu-img
tmp=$(e2e_tmpdir)
export GNUPGHOME=$tmp/gnupg
mkdir -m 700 "$GNUPGHOME"
e2e_on_exit "gpgconf --kill all >/dev/null 2>&1 || true"
srv=$tmp/srv   # the real publisher
evil=$tmp/srv/mirror # a mirror that replaced image and checksum files
mnt=$tmp/mnt
mkdir -p "$srv" "$evil" "$mnt"

G=(gpg --batch --yes --quiet --no-tty --pinentry-mode loopback --passphrase '')
fpr() { gpg --with-colons --list-keys "$1" | awk -F: '/^fpr/ {print $10; exit}'; }
"${G[@]}" --quick-gen-key 'Fedora (41) <fedora-41-primary@fedoraproject.org>' ed25519 sign never 2>/dev/null
"${G[@]}" --quick-gen-key 'Debian Cloud Images <cloud@debian.org>' nistp256 sign never 2>/dev/null
"${G[@]}" --quick-gen-key 'Mirror <evil@example.org>' ed25519 sign never 2>/dev/null
FED=$(fpr fedora-41-primary@fedoraproject.org)
DEB=$(fpr cloud@debian.org)
gpg --export fedora-41-primary@fedoraproject.org >"$mnt/fedora.gpg"
gpg --export --armor cloud@debian.org >"$mnt/debian.asc"
gpg --export fedora-41-primary@fedoraproject.org cloud@debian.org >"$mnt/both.gpg"

# the images: the real one, and the mirror's (another image under the same name)
"$VIMPORT_TOP/hack/make-test-image.sh" "$tmp/disk.raw" 16 /usr/share/common-licenses
qemu-img convert -q -f raw -O qcow2 "$tmp/disk.raw" "$srv/cloud.qcow2"
cp "$tmp/disk.raw" "$tmp/evil.raw"
printf 'EVIL' | dd of="$tmp/evil.raw" bs=1 seek=$((5 << 20)) conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 "$tmp/evil.raw" "$evil/cloud.qcow2"

# publish DIR KEY: CHECKSUM (clearsigned), SHA512SUMS(.sign), SHA256SUMS(.gpg) in DIR
publish() {
  local dir=$1 key=$2
  (
    cd "$dir"
    {
      echo "# cloud.qcow2: $(stat -c %s cloud.qcow2) bytes"
      sha256sum --tag cloud.qcow2
    } >CHECKSUM.txt
    "${G[@]}" -u "$key" --clearsign -o CHECKSUM CHECKSUM.txt
    sha512sum cloud.qcow2 >SHA512SUMS
    "${G[@]}" -u "$key" --detach-sign --armor -o SHA512SUMS.sign SHA512SUMS
    sha256sum cloud.qcow2 >SHA256SUMS
    "${G[@]}" -u "$key" --detach-sign -o SHA256SUMS.gpg SHA256SUMS
  )
}
publish "$srv" fedora-41-primary@fedoraproject.org
# Debian's own key signs its SHA512SUMS
"${G[@]}" -u cloud@debian.org --detach-sign --armor -o "$srv/SHA512SUMS.sign" "$srv/SHA512SUMS"
publish "$evil" evil@example.org
# a mirror that keeps the publisher's signature beside its own SHA512SUMS
cp "$srv/SHA512SUMS.sign" "$evil/SHA512SUMS.old.sign"
# an unsigned checksum file with the right sums
cp "$srv/CHECKSUM.txt" "$srv/CHECKSUM.unsigned"

nginx_start "$srv"
U=$NGINX_TLS_URL
M=$NGINX_TLS_URL/mirror

n=0
# run_import IMAGE_URL LINE...: LINEs under vimport:, over https with the test CA
run_import() {
  local src=$1
  shift
  n=$((n + 1))
  target=$tmp/target.$n
  import_spec "$tmp/spec.$n.yaml" "$src" "" "$target" "mounts: {certs: $TEST_CA_DIR}" "$@"
  sed -i 's|^      url:.*|&\n      certConfigMap: test-ca|' "$tmp/spec.$n.yaml"
  import_run "$tmp/spec.$n.yaml"
}
verified_by() { import_json '["vimport"].get("verifiedBy", "")' 2>/dev/null || true; }
verified() { import_json '["vimport"].get("verified", [])' 2>/dev/null || true; }

expect_ok() { # expect_ok WHAT FINGERPRINT
  [ "$IMPORT_RC" -eq 0 ] || fail "$1: exit $IMPORT_RC: $IMPORT_MSG; $(tail -3 "$E2E_TMP/import.stderr")"
  case $(verified_by) in *"$2"*) ;; *) fail "$1: verifiedBy '$(verified_by)' lacks $2" ;; esac
  case $(verified) in *"'checksum-signature'"*"'checksum'"*) ;;
    *) fail "$1: verified is $(verified)" ;; esac
  cmp -s "$tmp/disk.raw" "$target" ||
    fail "$1: the target is not the image"
}
# A refused signature is CDI's fatal checksum verdict (exit 0, "Unable to process data:
# checksum mismatch: ..."); a spec error exits 1. Either way: "Unable to ...", no disk.
expect_refused() { # expect_refused WHAT PATTERN
  local msg
  if [ -s "$E2E_TMP/termination-log" ]; then
    msg=$(import_message)
    [[ $msg == "Unable to "* ]] || fail "$1: not refused (exit $IMPORT_RC): $msg"
  else # the spec itself was refused: no termination message path yet, exit 1
    [ "$IMPORT_RC" -eq 1 ] || fail "$1: exit $IMPORT_RC without a termination message"
    msg=$(cat "$E2E_TMP/import.stderr")
  fi
  [[ $msg =~ $2 ]] || fail "$1: message '$msg' does not match /$2/"
  [ ! -s "$target" ] || fail "$1: the target was written ($(stat -c %s "$target") bytes)"
}

# ---- the publisher's files pass -----------------------------------------------------
run_import "$U/cloud.qcow2" "checksumURL: $U/CHECKSUM" "checksumSignature: {keyring: $mnt/fedora.gpg}"
expect_ok "Fedora CHECKSUM, clearsigned" "$FED"
run_import "$U/cloud.qcow2" "checksumURL: $U/SHA512SUMS" \
  "checksumSignature: {url: $U/SHA512SUMS.sign, keyring: $mnt/debian.asc}"
expect_ok "Debian SHA512SUMS + .sign, armored keyring" "$DEB"
run_import "$U/cloud.qcow2" "checksumURL: $U/SHA512SUMS" \
  "checksumSignature: {url: $U/SHA512SUMS.sign, keyring: $mnt/both.gpg}"
expect_ok "keyring with two keys" "$DEB"
cp "$srv/SHA256SUMS.gpg" "$mnt/SHA256SUMS.gpg"
run_import "$U/cloud.qcow2" "checksumURL: $U/SHA256SUMS" \
  "checksumSignature: {path: $mnt/SHA256SUMS.gpg, keyring: $mnt/fedora.gpg}"
expect_ok "Ubuntu-style SHA256SUMS + mounted .gpg" "$FED"

# the environment: VIMPORT_CHECKSUM_URL, _SIGNATURE_URL, _KEYRING
env_import IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$U/cloud.qcow2" IMPORTER_CERT_DIR="$TEST_CA_DIR" \
  VIMPORT_CHECKSUM_URL="$U/SHA256SUMS" VIMPORT_CHECKSUM_SIGNATURE_URL="$U/SHA256SUMS.gpg" \
  VIMPORT_CHECKSUM_KEYRING="$mnt/fedora.gpg"
target=$E2E_TMP/disk.img
expect_ok "env: SHA256SUMS + .gpg" "$FED"
rm -f "$E2E_TMP/disk.img"
env_import IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$U/cloud.qcow2" IMPORTER_CERT_DIR="$TEST_CA_DIR" \
  VIMPORT_CHECKSUM_SIGNATURE_URL="$U/SHA256SUMS.gpg"
[ "$IMPORT_RC" -ne 0 ] && import_message | grep -q "VIMPORT_CHECKSUM_SIGNATURE_URL: applies only with VIMPORT_CHECKSUM_URL" ||
  fail "a signature URL without a checksum URL was not refused: $(import_message)"

# ---- the mirror swapped image and checksum files -----------------------------------
run_import "$M/cloud.qcow2" "checksumURL: $M/CHECKSUM" "checksumSignature: {keyring: $mnt/fedora.gpg}"
expect_refused "mirror: CHECKSUM re-signed by its own key" "made by key [0-9A-F]{40}, which is not in the keyring"
cp -r "$tmp" /tmp/dbg-import; 
run_import "$M/cloud.qcow2" "checksumURL: $M/SHA512SUMS" \
  "checksumSignature: {url: $M/SHA512SUMS.old.sign, keyring: $mnt/debian.asc}"
expect_refused "mirror: SHA512SUMS with the publisher's old signature" "$DEB.*Debian Cloud Images.*(does not match|differ)"
run_import "$U/cloud.qcow2" "checksumURL: $U/CHECKSUM.unsigned" "checksumSignature: {keyring: $mnt/fedora.gpg}"
expect_refused "unsigned CHECKSUM" "not a clearsigned message"
# the wrong key for a good file
run_import "$U/cloud.qcow2" "checksumURL: $U/CHECKSUM" "checksumSignature: {keyring: $mnt/debian.asc}"
expect_refused "Fedora CHECKSUM, Debian's keyring" "not in the keyring"
# the raw-key detached signature of vimport.signature, over the checksum file instead
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ec.key" 2>/dev/null
openssl ec -in "$tmp/ec.key" -pubout -out "$mnt/ec.pub" 2>/dev/null
openssl dgst -sha256 -sign "$tmp/ec.key" -out "$srv/SHA256SUMS.sig" "$srv/SHA256SUMS"
run_import "$U/cloud.qcow2" "checksumURL: $U/SHA256SUMS" \
  "checksumSignature: {url: $U/SHA256SUMS.sig, publicKey: $mnt/ec.pub}"
expect_ok "SHA256SUMS with an ECDSA detached signature (publicKey)" "ECDSA P-256"
openssl dgst -sha256 -sign "$tmp/ec.key" -out "$evil/SHA256SUMS.sig" "$srv/SHA512SUMS"
run_import "$M/cloud.qcow2" "checksumURL: $M/SHA256SUMS" \
  "checksumSignature: {url: $M/SHA256SUMS.sig, publicKey: $mnt/ec.pub}"
expect_refused "mirror: SHA256SUMS, raw-key signature over another file" "signature"
# spec errors say what to do
run_import "$U/cloud.qcow2" "checksumSignature: {keyring: $mnt/fedora.gpg}"
expect_refused "checksumSignature without checksumURL" "applies only with checksumURL"
run_import "$U/cloud.qcow2" "checksumURL: $U/CHECKSUM" "checksumSignature: {url: $U/x.sign}"
expect_refused "checksumSignature without a key" "exactly one of keyring"

pass "signed checksum files: $n imports"
