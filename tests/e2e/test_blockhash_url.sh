#!/usr/bin/env bash
# Published block hashes (vimport.blockHashURL, VIMPORT_BLOCK_HASH_URL): a publisher runs
# `vimport sum *.qcow2 > BLKSUMS`, signs it with GnuPG, and serves it over https beside
# the images (nginx on 127.0.0.1). The import looks the image's file name up in it, checks
# the OpenPGP signature with the publisher's key, and the listed hash becomes the
# expected block hash of the volume written:
#   - clearsigned and detached lists pass; verified names blockhash-signature and
#     expected-blockhash; verifiedBy names the key;
#   - a list made with another block size says so in its "# vimport-sum" header;
#   - a signed list whose line for the image holds another image's hash fails the import
#     with a block hash mismatch; an unsigned list with a keyring, and a list signed by
#     another key, are refused before a byte is written;
#   - expectedBlockHash and blockHashURL together are refused.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
set -E
require_cmd gpg python3 qemu-img
tmp=$(e2e_tmpdir)
export GNUPGHOME=$tmp/gnupg
mkdir -m 700 "$GNUPGHOME"
e2e_on_exit "gpgconf --kill all >/dev/null 2>&1 || true"
srv=$tmp/srv
mnt=$tmp/mnt
mkdir -p "$srv" "$mnt"
G=(gpg --batch --yes --quiet --no-tty --pinentry-mode loopback --passphrase '')
"${G[@]}" --quick-gen-key 'Images <images@example.org>' ed25519 sign never 2>/dev/null
"${G[@]}" --quick-gen-key 'Mirror <evil@example.org>' ed25519 sign never 2>/dev/null
FPR=$(gpg --with-colons --list-keys images@example.org | awk -F: '/^fpr/ {print $10; exit}')
gpg --export images@example.org >"$mnt/images.gpg"

"$VIMPORT_TOP/hack/make-test-image.sh" "$tmp/disk.raw" 16 /usr/share/common-licenses
qemu-img convert -q -f raw -O qcow2 "$tmp/disk.raw" "$srv/cloud.qcow2"
cp "$tmp/disk.raw" "$tmp/other.raw"
printf 'OTHER' | dd of="$tmp/other.raw" bs=1 seek=$((6 << 20)) conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 "$tmp/other.raw" "$srv/other.qcow2"

# the publisher's side, as docs/spec.md tells it
(
  cd "$srv"
  "$VIMPORT" sum cloud.qcow2 other.qcow2 >BLKSUMS
  "${G[@]}" -u images@example.org --clearsign -o BLKSUMS.asc BLKSUMS
  "${G[@]}" -u images@example.org --detach-sign --armor -o BLKSUMS.sign BLKSUMS
  { echo "# vimport-sum digest=sha256 block-size=1048576"
    "$VIMPORT" sum --block-size 1048576 cloud.qcow2; } >BLKSUMS-1M
  "${G[@]}" -u images@example.org --clearsign -o BLKSUMS-1M.asc BLKSUMS-1M
  # a list whose line for cloud.qcow2 holds other.qcow2's hash, signed all the same
  "$VIMPORT" sum other.qcow2 | sed 's/other.qcow2$/cloud.qcow2/' >BLKSUMS-wrong
  "${G[@]}" -u images@example.org --clearsign -o BLKSUMS-wrong.asc BLKSUMS-wrong
  "${G[@]}" -u evil@example.org --clearsign -o BLKSUMS-evil.asc BLKSUMS
)
grep -q '^[0-9a-f]\{64\}  cloud.qcow2$' "$srv/BLKSUMS" || fail "vimport sum wrote: $(cat "$srv/BLKSUMS")"

nginx_start "$srv"
U=$NGINX_TLS_URL
n=0
run_import() {
  n=$((n + 1))
  target=$tmp/target.$n
  import_spec "$tmp/spec.$n.yaml" "$U/cloud.qcow2" "" "$target" "mounts: {certs: $TEST_CA_DIR}" "$@"
  sed -i 's|^      url:.*|&\n      certConfigMap: test-ca|' "$tmp/spec.$n.yaml"
  import_run "$tmp/spec.$n.yaml"
}
vfield() { import_json "[\"vimport\"].get(\"$1\", \"\")" 2>/dev/null || true; }
expect_ok() { # expect_ok WHAT [SIGNED]
  [ "$IMPORT_RC" -eq 0 ] || fail "$1: exit $IMPORT_RC: $IMPORT_MSG"
  [ "$(import_message)" = "Import Complete" ] || fail "$1: $(import_message)"
  case $(vfield verified) in *expected-blockhash*) ;; *) fail "$1: verified $(vfield verified)" ;; esac
  if [ -n "${2:-}" ]; then
    case $(vfield verified) in *blockhash-signature*) ;; *) fail "$1: verified $(vfield verified)" ;; esac
    case $(vfield verifiedBy) in *"$FPR"*) ;; *) fail "$1: verifiedBy $(vfield verifiedBy)" ;; esac
  fi
  cmp -s "$tmp/disk.raw" "$target" || fail "$1: the target is not the image"
}
expect_refused() { # expect_refused WHAT PATTERN [WRITTEN]
  local msg
  if [ -s "$E2E_TMP/termination-log" ]; then
    msg=$(import_message)
  else
    msg=$(cat "$E2E_TMP/import.stderr")
  fi
  [[ $msg == *"Import Complete"* ]] && fail "$1: the import passed"
  [[ $msg =~ $2 ]] || fail "$1: message '$msg' does not match /$2/"
  [ -n "${3:-}" ] || [ ! -s "$target" ] || fail "$1: the target was written"
}

run_import "blockHashURL: $U/BLKSUMS"
expect_ok "unsigned list, no keyring"
run_import "blockHashURL: $U/BLKSUMS.asc" "blockHashSignature: {keyring: $mnt/images.gpg}"
expect_ok "clearsigned list" signed
run_import "blockHashURL: $U/BLKSUMS" "blockHashSignature: {url: $U/BLKSUMS.sign, keyring: $mnt/images.gpg}"
expect_ok "detached signature" signed
run_import "blockHashURL: $U/BLKSUMS-1M.asc" "blockHashSignature: {keyring: $mnt/images.gpg}"
expect_ok "1 MiB blocks, from the header" signed
case $(vfield blockHash) in sha256:*) ;; *) fail "blockHash $(vfield blockHash)" ;; esac

rm -f "$E2E_TMP/disk.img"
env_import IMPORTER_SOURCE=http IMPORTER_ENDPOINT="$U/cloud.qcow2" IMPORTER_CERT_DIR="$TEST_CA_DIR" \
  VIMPORT_BLOCK_HASH_URL="$U/BLKSUMS" VIMPORT_BLOCK_HASH_SIGNATURE_URL="$U/BLKSUMS.sign" \
  VIMPORT_BLOCK_HASH_KEYRING="$mnt/images.gpg"
target=$E2E_TMP/disk.img
expect_ok "env: VIMPORT_BLOCK_HASH_URL" signed

# the line for the image holds another image's hash: written, then refused (the block
# hash is known only once the image is written), the target invalidated
run_import "blockHashURL: $U/BLKSUMS-wrong.asc" "blockHashSignature: {keyring: $mnt/images.gpg}"
expect_refused "a line for another image" "block hash expected sha256:" written
run_import "blockHashURL: $U/BLKSUMS" "blockHashSignature: {keyring: $mnt/images.gpg}"
expect_refused "unsigned list with a keyring" "not a clearsigned message"
run_import "blockHashURL: $U/BLKSUMS-evil.asc" "blockHashSignature: {keyring: $mnt/images.gpg}"
expect_refused "list signed by another key" "not in the keyring"
run_import "blockHashURL: $U/BLKSUMS" "expectedBlockHash: sha256:$(head -c 64 "$srv/BLKSUMS")"
expect_refused "expectedBlockHash and blockHashURL" "either expectedBlockHash or blockHashURL"

pass "published block hashes: $n imports"
