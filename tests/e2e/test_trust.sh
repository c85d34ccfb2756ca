#!/usr/bin/env bash
# vimport import with published checksum files and detached signatures (issue 9), against
# real nginx on 127.0.0.1. Keys, certificates and signatures are made here with the openssl
# command line, the way people make them:
#   - signatures for every key type and form verify, from a URL and from a mounted file:
#     ECDSA P-256/P-384, Ed25519 (pkeyutl -rawin), RSA PKCS#1 v1.5 and RSA-PSS with
#     SHA-256/384/512; DER (openssl dgst -sign), base64 (cosign sign-blob --key's form),
#     Glance img_signature with a certificate chained to a CA bundle; verifiedBy names the
#     key's SPKI fingerprint or the certificate subject;
#   - a flipped byte in the image (first and last bytes of the stream too) or in the
#     signature, a signature from another key or with another hash, a certificate from
#     another CA or without digitalSignature: exit 1, a clear message, "signature" not
#     reported as verified, the target truncated to 0;
#   - checksum files served by nginx drive the import: GNU (sha256sum, `*` binary mark),
#     BSD (--tag), Fedora CHECKSUM (clearsigned, "# name: N bytes" comments), SHA512SUMS,
#     over https and from a local path; checksumName overrides the name; a wrong sum fails
#     with CDI's mismatch wording; a missing name, a duplicate name and a malformed line
#     are clear errors.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
set -E # lib.sh's ERR trap names a failing command inside functions too
require_cmd openssl python3 sha256sum sha512sum base64 xz qemu-img
tmp=$(e2e_tmpdir)
srv=$tmp/srv # served by nginx
mnt=$tmp/mnt # "mounted" Secrets / ConfigMaps: keys, certificates, signatures
mkdir -p "$srv" "$mnt"

"$VIMPORT_TOP/hack/make-test-image.sh" "$srv/disk.raw" 16 /usr/share/common-licenses
image_size=$(stat -c %s "$srv/disk.raw")
xz -T1 -c "$srv/disk.raw" >"$srv/disk.raw.xz"
qemu-img convert -q -f raw -O qcow2 "$srv/disk.raw" "$srv/disk.qcow2"

# flip FILE OFFSET: xor one byte of FILE in place; OFFSET < 0 counts from the end, "data"
# is the first non-zero byte past 4 MiB (file contents in the ext4 partition)
flip() {
  python3 - "$1" "$2" <<'EOF'
import sys
path, off = sys.argv[1], sys.argv[2]
with open(path, "r+b") as f:
    size = f.seek(0, 2)
    if off == "data":
        f.seek(4 << 20)
        buf = f.read()
        off = (4 << 20) + next(i for i, b in enumerate(buf) if b)
    off = int(off)
    off = off if off >= 0 else size + off
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0x01]))
EOF
}

# Tampered copies of the image: a byte of file data, a zero byte in the middle (a hole the
# target writer skips), the first byte, the last byte.
for at in data:data mid:2000000 first:0 last:-1; do
  cp "$srv/disk.raw" "$srv/disk-${at%%:*}.raw"
  flip "$srv/disk-${at%%:*}.raw" "${at#*:}"
done

nginx_start "$srv"

# ---- keys, certificates, signatures --------------------------------------------------------
cd "$mnt"
genkey() { # genkey NAME ALGORITHM [-pkeyopt ...]
  local name=$1
  shift
  openssl genpkey -algorithm "$@" -out "$name.key" 2>/dev/null
  openssl pkey -in "$name.key" -pubout -out "$name.pub"
}
genkey ec256 EC -pkeyopt ec_paramgen_curve:P-256
genkey ec384 EC -pkeyopt ec_paramgen_curve:P-384
genkey ed Ed25519
genkey rsa RSA -pkeyopt rsa_keygen_bits:2048
genkey other EC -pkeyopt ec_paramgen_curve:P-256
genkey othered Ed25519

# fingerprint NAME: what verifiedBy names a bare key by (SHA-256 of the DER SPKI)
fingerprint() {
  echo "sha256:$(openssl pkey -pubin -in "$mnt/$1.pub" -outform DER | sha256sum | cut -d' ' -f1)"
}

# A CA, an intermediate, and leaf certificates for signing keys (RFC 5280 extensions).
ca() { # ca NAME SUBJECT
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$1.key" \
    -out "$1.pem" -days 2 -subj "$2" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
cert() { # cert NAME KEY ISSUER SUBJECT [EXTENSIONS]
  local ext=${5:-"basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature"}
  printf '%s\n' "$ext" >"$1.ext"
  openssl req -new -key "$2.key" -subj "$4" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
subject() { openssl x509 -in "$mnt/$1.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }

ca ca "/O=vimport e2e/CN=image signing CA"
ca otherca "/O=somebody else/CN=image signing CA"
genkey glance RSA -pkeyopt rsa_keygen_bits:3072
cert glance glance ca "/O=vimport e2e/OU=images/CN=glance signer"
cert ecsigner ec384 ca "/O=vimport e2e/CN=ecdsa signer"
# an intermediate CA between the CA and the leaf; the certificate file holds leaf then it
genkey inter EC -pkeyopt ec_paramgen_curve:P-256
cert inter inter ca "/O=vimport e2e/CN=intermediate CA" "basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign"
cert leaf ec256 inter "/O=vimport e2e/CN=leaf under intermediate"
cat leaf.pem inter.pem >chain.pem
cert stranger ec256 otherca "/O=somebody else/CN=imposter"
cert nosign ec256 ca "/O=vimport e2e/CN=no digitalSignature" "basicConstraints=critical,CA:FALSE
keyUsage=critical,keyEncipherment"

# sign NAME KEY HASH FILE [SIGOPT...]: DER signature NAME.sig (openssl dgst -sign) and its
# base64 NAME.b64 as cosign sign-blob --key prints it (one line); Ed25519 (HASH "-") signs
# the whole file with pkeyutl -rawin, which is all OpenSSL 3.0 offers for Ed25519.
sign() {
  local name=$1 key=$2 hash=$3 file=$4
  shift 4
  local opts=() o
  for o in "$@"; do opts+=(-sigopt "$o"); done
  if [ "$hash" = - ]; then
    openssl pkeyutl -sign -rawin -inkey "$mnt/$key.key" -in "$file" -out "$mnt/$name.sig"
  else
    openssl dgst "-$hash" -sign "$mnt/$key.key" "${opts[@]}" -out "$mnt/$name.sig" "$file"
  fi
  base64 -w0 "$mnt/$name.sig" >"$mnt/$name.b64"
  cp "$mnt/$name.sig" "$mnt/$name.b64" "$srv/"
}
img=$srv/disk.raw
sign ec256-sha256 ec256 sha256 "$img"
sign ec256-sha512 ec256 sha512 "$img"
sign ec384-sha384 ec384 sha384 "$img"
sign ec384-sha256 ec384 sha256 "$img"
sign ed ed - "$img"
sign rsa-sha256 rsa sha256 "$img"
sign rsa-sha384 rsa sha384 "$img"
sign rsa-sha512 rsa sha512 "$img"
sign pss-sha256 rsa sha256 "$img" rsa_padding_mode:pss rsa_pss_saltlen:digest
sign pss-sha384 rsa sha384 "$img" rsa_padding_mode:pss rsa_pss_saltlen:max
sign pss-sha512 rsa sha512 "$img" rsa_padding_mode:pss rsa_pss_saltlen:0
# Glance's documented recipe: openssl dgst -sha256 -sign KEY -sigopt rsa_padding_mode:pss,
# then base64 -w 0 of it becomes the img_signature property
sign glance-rsa glance sha256 "$img" rsa_padding_mode:pss
sign glance-ec384 ec384 sha384 "$img"
sign leaf ec256 sha256 "$img"
sign other other sha256 "$img"
sign othered othered - "$img"
sign xz ec256 sha256 "$srv/disk.raw.xz"
sign qcow2 ed - "$srv/disk.qcow2"
# a base64 signature wrapped at 64 columns with a trailing newline (openssl base64)
openssl base64 -in "$mnt/rsa-sha256.sig" -out "$mnt/rsa-sha256.wrapped.b64"
cd "$tmp"

# ---- helpers ---------------------------------------------------------------------------------
n=0
# run_import SOURCE [LINE...]: import SOURCE (URL or path) into a fresh target, LINEs under
# vimport:; sets target
run_import() {
  local src=$1
  shift
  n=$((n + 1))
  target=$tmp/target.$n
  import_spec "$tmp/spec.$n.yaml" "$src" "" "$target" "$@"
  import_run "$tmp/spec.$n.yaml"
  read_message
}

# read_message: the fields of the termination message this test looks at, read with one
# python3 (the machine may be busy): R_MESSAGE, R_VERIFIED (space separated), R_BY
# (verifiedBy), R_DIGEST (sourceDigest), R_BYTES (bytesTransferred), R_FORMAT, R_ERROR
# (the error class); "" if absent
read_message() {
  local fields
  # shellcheck disable=SC2016 # python, not shell
  fields=$(python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except OSError:
    d = {}
except ValueError:  # CDI writes plain text after a failure that exits 1
    d = {"message": open(sys.argv[1]).read().strip()}
v = d.get("vimport", {})
for x in (d.get("message", ""), " ".join(v.get("verified", [])), v.get("verifiedBy", ""),
          v.get("sourceDigest", ""), v.get("bytesTransferred", ""), v.get("format", ""),
          v.get("error", "")):
    print(str(x).replace("\n", " "))
print(".")  # $(...) drops trailing newlines: keep the empty fields' "$E2E_TMP/termination-log")
  { read -r R_MESSAGE; read -r R_VERIFIED; read -r R_BY; read -r R_DIGEST; read -r R_BYTES
    read -r R_FORMAT; read -r R_ERROR; } <<<"$fields"
}

# expect_ok WHAT RAW_IMAGE VERIFIED_BY STAGE...: the import passed, verifiedBy starts with
# VERIFIED_BY ("" when no signature), every STAGE is in verified, the target is the image
expect_ok() {
  local what=$1 image=$2 by=$3 stage v
  shift 3
  [ "$IMPORT_RC" -eq 0 ] || fail "$what: exit $IMPORT_RC: $IMPORT_MSG; stderr: $(tail -3 "$tmp/import.stderr")"
  assert_eq "Import Complete" "$R_MESSAGE" "$what: message"
  v=" $R_VERIFIED "
  for stage in "$@"; do
    [[ $v == *" $stage "* ]] || fail "$what: \"$stage\" is not in verified:$v: $IMPORT_MSG"
  done
  if [ -n "$by" ]; then
    [[ $R_BY == "$by"* ]] || fail "$what: verifiedBy '$R_BY' does not name '$by'"
  fi
  cmp -n "$image_size" "$target" "$image" || fail "$what: the target differs from the image"
}

# expect_signed WHAT VERIFIED_BY KEY_DESCRIPTION: a signature verified the raw image
expect_signed() {
  expect_ok "$1" "$srv/disk.raw" "$2" signature blockhash-readback
  [[ $R_BY == *"($3"* ]] || fail "$1: verifiedBy '$R_BY' does not describe the key as '$3'"
}

# expect_refused WHAT EXIT PATTERN: the import failed with EXIT and a message matching the
# grep -E PATTERN, reported "signature" as verified nowhere (and nothing else either, unless
# REFUSED_MAY_LIST is set) and left no disk in the target
expect_refused() {
  local what=$1 rc=$2 pattern=$3
  [ "$IMPORT_RC" -eq "$rc" ] || fail "$what: exit $IMPORT_RC, expected $rc: $IMPORT_MSG"
  grep -Eq -- "$pattern" <<<"$R_MESSAGE" || fail "$what: message does not match /$pattern/: $R_MESSAGE"
  # OpenSSL's cause, if named, is the cause ("bad signature"), not a layer ("RSA lib")
  ! grep -Eq "OpenSSL says [A-Za-z0-9]+ lib(;|$)" <<<"$R_MESSAGE" ||
    fail "$what: the message names an OpenSSL layer, not the cause: $R_MESSAGE"
  [[ " $R_VERIFIED " != *" signature "* ]] || fail "$what: signature reported as verified: $IMPORT_MSG"
  # A stage that did pass before the failure (a checksum) may be listed, if the caller says
  # so; otherwise nothing is.
  [ -n "${REFUSED_MAY_LIST:-}" ] || [ -z "$R_VERIFIED" ] ||
    fail "$what: \"$R_VERIFIED\" reported as verified: $IMPORT_MSG"
  echo "refused: $what: [$R_ERROR] $R_MESSAGE" >>"$tmp/refusals"
  [ ! -s "$target" ] || fail "$what: the target was left with $(stat -c %s "$target") bytes"
  rm -f "$target"
}

U=$NGINX_URL
key() { echo "publicKey: $mnt/$1.pub"; }

# ---- 1. every key type and form verifies -----------------------------------------------------
# signature: {...} lines: (key, hash, form, where) chosen so each key type meets each hash it
# is used with in practice, each form, and both a URL and a mounted path.
check() { # check WHAT KEYDESC VERIFIED_BY SIGNATURE_YAML
  run_import "$U/disk.raw" "signature: {$4}"
  expect_signed "$1" "$3" "$2"
  rm -f "$target"
}
fp_ec256=$(fingerprint ec256) fp_ec384=$(fingerprint ec384) fp_ed=$(fingerprint ed)
fp_rsa=$(fingerprint rsa)
check "ECDSA P-256 SHA-256 DER from a URL" "ECDSA P-256, sha256" "$fp_ec256" \
  "url: $U/ec256-sha256.sig, $(key ec256)"
check "ECDSA P-256 SHA-512 base64 from a path" "ECDSA P-256, sha512" "$fp_ec256" \
  "path: $mnt/ec256-sha512.b64, format: base64, hashMethod: sha512, $(key ec256)"
check "ECDSA P-384 SHA-384 base64 from a URL" "ECDSA P-384, sha384" "$fp_ec384" \
  "url: $U/ec384-sha384.b64, hashMethod: SHA-384, $(key ec384)"
check "ECDSA P-384 SHA-256 DER from a path, keyType ECDSA" "ECDSA P-384, sha256" "$fp_ec384" \
  "path: $mnt/ec384-sha256.sig, format: der, keyType: ECDSA, $(key ec384)"
check "Ed25519 DER from a URL" "Ed25519" "$fp_ed" "url: $U/ed.sig, $(key ed)"
check "Ed25519 base64 from a path" "Ed25519" "$fp_ed" \
  "path: $mnt/ed.b64, format: base64, keyType: Ed25519, $(key ed)"
check "RSA PKCS#1 v1.5 SHA-256 DER from a URL" "RSA-2048 PKCS#1 v1.5, sha256" "$fp_rsa" \
  "url: $U/rsa-sha256.sig, $(key rsa)"
check "RSA PKCS#1 v1.5 SHA-384 base64 from a URL" "RSA-2048 PKCS#1 v1.5, sha384" "$fp_rsa" \
  "url: $U/rsa-sha384.b64, format: base64, hashMethod: sha384, keyType: RSA, $(key rsa)"
check "RSA PKCS#1 v1.5 SHA-512 DER from a path" "RSA-2048 PKCS#1 v1.5, sha512" "$fp_rsa" \
  "path: $mnt/rsa-sha512.sig, hashMethod: sha512, $(key rsa)"
check "RSA PKCS#1 v1.5 base64 wrapped at 64 columns" "RSA-2048 PKCS#1 v1.5, sha256" "$fp_rsa" \
  "path: $mnt/rsa-sha256.wrapped.b64, $(key rsa)"
check "RSA-PSS SHA-256 (salt = digest length) DER from a URL" "RSA-2048 PSS, sha256" "$fp_rsa" \
  "url: $U/pss-sha256.sig, keyType: RSA-PSS, $(key rsa)"
check "RSA-PSS SHA-384 (maximum salt) base64 from a path" "RSA-2048 PSS, sha384" "$fp_rsa" \
  "path: $mnt/pss-sha384.b64, hashMethod: sha384, keyType: RSA-PSS, $(key rsa)"
check "RSA-PSS SHA-512 (no salt) base64 from a URL" "RSA-2048 PSS, sha512" "$fp_rsa" \
  "url: $U/pss-sha512.b64, format: base64, hashMethod: sha512, keyType: RSA-PSS, $(key rsa)"
# a certificate instead of a bare key: verifiedBy names its subject
check "ECDSA P-256 certificate through an intermediate" "ECDSA P-256, sha256" "$(subject leaf)" \
  "url: $U/leaf.sig, certificate: $mnt/chain.pem, caBundle: $mnt/ca.pem"
# Glance img_signature: base64, img_signature_hash_method, img_signature_key_type, certificate
check "Glance RSA-PSS SHA-256 with a certificate" "RSA-3072 PSS, sha256" "$(subject glance)" \
  "path: $mnt/glance-rsa.b64, format: glance, hashMethod: SHA-256, keyType: RSA-PSS, certificate: $mnt/glance.pem, caBundle: $mnt/ca.pem"
check "Glance ECC_SECP384R1 SHA-384 from a URL" "ECDSA P-384, sha384" "$(subject ecsigner)" \
  "url: $U/glance-ec384.b64, format: glance, hashMethod: SHA-384, keyType: ECC_SECP384R1, certificate: $mnt/ecsigner.pem, caBundle: $mnt/ca.pem"

# The signature covers the bytes as served: a compressed image and a qcow2 image (whose
# decoder need not read the file to its end) verify over every byte.
run_import "$U/disk.raw.xz" "signature: {url: $U/xz.sig, $(key ec256)}"
expect_ok "xz-compressed image" "$srv/disk.raw" "$fp_ec256" signature
assert_eq "$(stat -c %s "$srv/disk.raw.xz")" "$R_BYTES" "xz: bytes"
run_import "$U/disk.qcow2" "signature: {url: $U/qcow2.sig, $(key ed)}"
expect_ok "qcow2 image" "$srv/disk.raw" "$fp_ed" signature
assert_eq qcow2 "$R_FORMAT" "qcow2: format"
rm -f "$tmp"/target.*

# ---- 2. tampering is refused -----------------------------------------------------------------
# a verdict: CDI's fatal "checksum mismatch", exit 0
mismatch='^Unable to process data: checksum mismatch: the signature does not match the image: '
# a flipped byte of file data in the image, under each key type and form; a flipped zero byte
# in a hole, the first and the last byte of the stream as well
for c in "ec256-sha256.sig ec256" "ed.sig ed" "rsa-sha512.b64 rsa hashMethod: sha512" \
  "pss-sha384.b64 rsa hashMethod: sha384, keyType: RSA-PSS"; do
  read -r sig k extra <<<"$c"
  run_import "$U/disk-data.raw" "signature: {url: $U/$sig, $(key "$k")${extra:+, $extra}}"
  expect_refused "flipped image byte ($sig)" 0 "$mismatch"
done
for at in mid first last; do
  run_import "$U/disk-$at.raw" "signature: {url: $U/ed.sig, $(key ed)}"
  expect_refused "flipped $at byte of the image (Ed25519)" 0 "$mismatch"
  run_import "$U/disk-$at.raw" "signature: {url: $U/rsa-sha256.sig, $(key rsa)}"
  expect_refused "flipped $at byte of the image (RSA)" 0 "$mismatch"
done
run_import "$U/disk-data.raw" "signature: {path: $mnt/glance-rsa.b64, format: glance, hashMethod: SHA-256, keyType: RSA-PSS, certificate: $mnt/glance.pem, caBundle: $mnt/ca.pem}"
expect_refused "flipped image byte (Glance)" 0 "$mismatch"
# with a checksum file that matches, the signature still decides
sha256sum "$srv/disk-data.raw" | sed 's|  .*/|  |' >"$srv/SUMS-data"
run_import "$U/disk-data.raw" "checksumURL: $U/SUMS-data" "signature: {url: $U/ec256-sha256.sig, $(key ec256)}"
REFUSED_MAY_LIST=1 expect_refused "flipped image byte, checksum file of the flipped image" 0 "$mismatch"

# a flipped byte in the signature: in the RSA block, in ECDSA's s, in Ed25519's S and R
for c in "rsa-sha256 rsa -10" "ec256-sha256 ec256 -1" "ed ed -5" "ed ed 3"; do
  read -r s k at <<<"$c"
  cp "$mnt/$s.sig" "$mnt/bad-$s.sig"
  flip "$mnt/bad-$s.sig" "$at"
  run_import "$U/disk.raw" "signature: {path: $mnt/bad-$s.sig, format: der, $(key "$k")}"
  expect_refused "flipped signature byte ($s at $at)" 0 "$mismatch"
done
# ...and in base64 (a different base64 digit, still valid base64)
python3 - "$mnt/pss-sha256.b64" "$mnt/bad-pss.b64" <<'EOF'
import sys
s = open(sys.argv[1]).read()
i = len(s) // 2
open(sys.argv[2], "w").write(s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:])
EOF
run_import "$U/disk.raw" "signature: {path: $mnt/bad-pss.b64, keyType: RSA-PSS, $(key rsa)}"
expect_refused "flipped base64 digit (RSA-PSS)" 0 "$mismatch"

# a signature from another key of the same type
run_import "$U/disk.raw" "signature: {url: $U/other.sig, $(key ec256)}"
expect_refused "ECDSA signature from another key" 0 "$mismatch"
run_import "$U/disk.raw" "signature: {url: $U/othered.b64, $(key ed)}"
expect_refused "Ed25519 signature from another key" 0 "$mismatch"
# the right key, but the spec names another hash or padding than the signer used
run_import "$U/disk.raw" "signature: {url: $U/ec384-sha384.sig, $(key ec384)}"
expect_refused "ECDSA SHA-384 signature checked as SHA-256" 0 "$mismatch"
run_import "$U/disk.raw" "signature: {url: $U/pss-sha256.sig, $(key rsa)}"
expect_refused "RSA-PSS signature checked as PKCS#1 v1.5" 0 "$mismatch"

# certificates that must not be trusted: refused before any byte is written
run_import "$U/disk.raw" "signature: {url: $U/leaf.sig, certificate: $mnt/stranger.pem, caBundle: $mnt/ca.pem}"
expect_refused "certificate from another CA" 0 "certificate"
run_import "$U/disk.raw" "signature: {url: $U/leaf.sig, certificate: $mnt/leaf.pem, caBundle: $mnt/ca.pem}"
expect_refused "certificate without its intermediate" 0 "certificate"
run_import "$U/disk.raw" "signature: {url: $U/leaf.sig, certificate: $mnt/nosign.pem, caBundle: $mnt/ca.pem}"
expect_refused "certificate without digitalSignature" 0 "digitalSignature"
# the Glance signature verified with a certificate that chains to another CA bundle
run_import "$U/disk.raw" "signature: {path: $mnt/glance-rsa.b64, format: glance, hashMethod: SHA-256, keyType: RSA-PSS, certificate: $mnt/glance.pem, caBundle: $mnt/otherca.pem}"
expect_refused "Glance certificate with the wrong CA bundle" 0 "certificate"
# a key of another type than keyType says, a signature URL that is not there
run_import "$U/disk.raw" "signature: {url: $U/ec256-sha256.sig, keyType: Ed25519, $(key ec256)}"
expect_refused "keyType Ed25519 for an ECDSA key" 1 "Ed25519|ECDSA"
run_import "$U/disk.raw" "signature: {url: $U/no-such.sig, $(key ec256)}"
expect_refused "signature URL answering 404" 1 "404|not found|Not Found"

# ---- 3. checksum files served by nginx -------------------------------------------------------
# expect_summed WHAT IMAGE ALG: the sum from the file was checked, with ALG
expect_summed() {
  expect_ok "$1" "$srv/disk.raw" "" checksum blockhash-readback
  assert_eq "$3:$("${3}sum" "$2" | cut -d' ' -f1)" "$R_DIGEST" "$1: source digest"
}
cd "$srv"
echo "hello" >README.txt
# GNU coreutils, as Ubuntu publishes it: binary mark, several files
sha256sum -b disk.raw.xz disk.qcow2 README.txt disk.raw >SHA256SUMS
run_import "$U/disk.raw" "checksumURL: $U/SHA256SUMS"
expect_summed "GNU SHA256SUMS" "$srv/disk.raw" sha256
run_import "$U/disk.raw.xz" "checksumURL: \"$U/SHA256SUMS\""
expect_summed "GNU SHA256SUMS, xz image" "$srv/disk.raw.xz" sha256
# BSD (sha256sum --tag)
sha256sum --tag README.txt disk.raw disk.qcow2 >SHA256SUMS.bsd
run_import "$U/disk.raw" "checksumURL: $U/SHA256SUMS.bsd"
expect_summed "BSD --tag" "$srv/disk.raw" sha256
# SHA512SUMS (the hex length says sha512)
sha512sum disk.raw.xz disk.raw >SHA512SUMS
run_import "$U/disk.raw" "checksumURL: $U/SHA512SUMS"
expect_summed "SHA512SUMS" "$srv/disk.raw" sha512
# Fedora CHECKSUM: an OpenPGP clearsigned message, "# name: N bytes" comments, BSD lines
fed=Fedora-Cloud-Base-Generic-41-1.4.x86_64
ln disk.raw "$fed.raw"
ln disk.qcow2 "$fed.qcow2"
ln disk.raw.xz "$fed.raw.xz"
{
  printf -- '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n'
  for f in "$fed.qcow2" "$fed.raw.xz" "$fed.raw"; do
    echo "# $f: $(stat -c %s "$f") bytes"
    sha256sum --tag "$f"
  done
  printf -- '-----BEGIN PGP SIGNATURE-----\n\n'
  head -c 566 /dev/urandom | base64 -w 64
  printf '=%s\n-----END PGP SIGNATURE-----\n' "$(head -c 3 /dev/urandom | base64)"
} >"Fedora-Cloud-41-1.4-x86_64-CHECKSUM"
run_import "$U/$fed.raw.xz" "checksumURL: $U/Fedora-Cloud-41-1.4-x86_64-CHECKSUM"
expect_summed "Fedora CHECKSUM" "$srv/disk.raw.xz" sha256
# checksumName: the image is served under another name than the file lists
run_import "$U/disk.qcow2" "checksumURL: $U/Fedora-Cloud-41-1.4-x86_64-CHECKSUM" "checksumName: $fed.qcow2"
expect_summed "checksumName" "$srv/disk.qcow2" sha256
# over https with the test CA (certConfigMap), and a checksum file at a local path
n=$((n + 1))
target=$tmp/target.$n
import_spec "$tmp/spec.$n.yaml" "$NGINX_TLS_URL/disk.raw" "" "$target" \
  "checksumURL: $NGINX_TLS_URL/SHA256SUMS" "mounts: {certs: $TEST_CA_DIR}"
sed -i 's|^      url:.*|&\n      certConfigMap: test-ca|' "$tmp/spec.$n.yaml"
import_run "$tmp/spec.$n.yaml"
read_message
expect_summed "SHA256SUMS over https" "$srv/disk.raw" sha256
run_import "$U/disk.raw" "checksumURL: $srv/SHA256SUMS.bsd"
expect_summed "checksum file at a local path" "$srv/disk.raw" sha256
# the checksum file and a signature together
run_import "$U/disk.raw" "checksumURL: $U/SHA256SUMS" "signature: {url: $U/ed.sig, $(key ed)}"
expect_ok "checksum file and signature" "$srv/disk.raw" "$fp_ed" checksum signature blockhash-readback
rm -f "$tmp"/target.*

# a wrong sum in the file: CDI's mismatch wording, exit 0 (the controller marks it failed)
bad=$(printf '%064d' 0)
{ echo "$bad  disk.raw"; sha256sum README.txt; } >SUMS-wrong
run_import "$U/disk.raw" "checksumURL: $U/SUMS-wrong"
assert_eq 0 "$IMPORT_RC" "exit code of a checksum mismatch"
assert_eq "Unable to process data: checksum mismatch: expected sha256:$bad, calculated sha256:$(sha256sum disk.raw | cut -d' ' -f1)" \
  "$R_MESSAGE" "checksum file mismatch message"
[ ! -s "$target" ] || fail "checksum mismatch: the target was left with data"
# the image's name is not in the file: names what is there, says to set checksumName
run_import "$U/$fed.raw" "checksumURL: $U/SHA256SUMS"
expect_refused "name missing from the checksum file" 1 "no line for \"$fed.raw\".*set checksumName"
grep -q '"disk.qcow2"' <<<"$R_MESSAGE" || fail "missing name: the names listed are not shown: $IMPORT_MSG"
# the name listed twice with different sums: both lines named
{ sha256sum disk.raw; sha256sum README.txt; echo "$bad  disk.raw"; } >SUMS-dup
run_import "$U/disk.raw" "checksumURL: $U/SUMS-dup"
expect_refused "duplicate name" 1 "lines 1 and 3 give different sha256 sums for \"disk.raw\""
# a malformed line anywhere in the file
{ sha256sum disk.raw; echo "this is not a checksum line"; } >SUMS-bad
run_import "$U/disk.raw" "checksumURL: $U/SUMS-bad"
expect_refused "malformed line" 1 "line 2"
# a checksum file URL answering 404
run_import "$U/disk.raw" "checksumURL: $U/NO-SUCH-SUMS"
expect_refused "checksum file URL answering 404" 1 "404|not found|Not Found"

# E2E_VERBOSE=1 shows every refusal message, to judge their wording
[ -z "${E2E_VERBOSE:-}" ] || cat "$tmp/refusals" >&2
pass "trust: $n imports"
