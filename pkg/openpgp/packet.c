/* vimport openpgp: packet framing, signature and key packets (RFC 4880 4, 5.2, 5.5).
 * See openpgp.h.
 *
 * Every read is checked against the bytes left in its packet, so a length field can
 * never point outside the buffer; lengths are size_t and compared, never added blindly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include "internal.h"

/* ---- framing --------------------------------------------------------------------- */

static int truncated(struct verr *err)
{
  return verr_set(err, VERR_FORMAT, "OpenPGP packet truncated; the file is damaged or "
                  "not OpenPGP");
}

static size_t be(const unsigned char *p, size_t n)
{
  size_t v = 0;
  for (size_t i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

/* New-format body length (RFC 4880 4.2.2). Partial lengths are refused: no key or
 * signature packet may use them, and we read nothing else. */
static int new_length(const unsigned char *p, size_t left, size_t *hdr, size_t *len,
                      struct verr *err)
{
  if (left < 1)
    return truncated(err);
  if (p[0] < 192)
    return *hdr = 1, *len = p[0], 0;
  if (p[0] < 224) {
    if (left < 2)
      return truncated(err);
    return *hdr = 2, *len = ((size_t)(p[0] - 192) << 8) + p[1] + 192, 0;
  }
  if (p[0] == 255) {
    if (left < 5)
      return truncated(err);
    return *hdr = 5, *len = be(p + 1, 4), 0;
  }
  return verr_set(err, VERR_FORMAT, "OpenPGP packet with a partial body length, which "
                  "keys and signatures never use; this is not a key or signature file");
}

int openpgp_packet_next(const unsigned char *buf, size_t len, size_t *off,
                        struct openpgp_packet *pkt, struct verr *err)
{
  size_t at = *off;
  if (at >= len)
    return 0;
  unsigned h = buf[at];
  if (!(h & 0x80))
    return verr_set(err, VERR_FORMAT, "not an OpenPGP packet at byte %zu (header 0x%02x); "
                    "the file is damaged or not OpenPGP", at, h);
  size_t hdr, body;
  const unsigned char *p = buf + at + 1;
  size_t left = len - at - 1;
  if (h & 0x40) {
    pkt->tag = h & 0x3F;
    if (new_length(p, left, &hdr, &body, err) == -1)
      return -1;
  } else {
    pkt->tag = (h >> 2) & 0x0F;
    unsigned lt = h & 3;
    if (lt == 3)
      return verr_set(err, VERR_FORMAT, "OpenPGP packet of indeterminate length; keys and "
                      "signatures never use one");
    hdr = (size_t)1 << lt;
    if (left < hdr)
      return truncated(err);
    body = be(p, hdr);
  }
  if (body > left - hdr)
    return truncated(err);
  pkt->body = p + hdr;
  pkt->len = body;
  *off = at + 1 + hdr + body;
  return 1;
}

void pgp_hex(const unsigned char *b, size_t n, char *out)
{
  static const char digits[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[b[i] >> 4];
    out[2 * i + 1] = digits[b[i] & 15];
  }
  out[2 * n] = '\0';
}

/* ---- signature packets ----------------------------------------------------------- */

enum {
  SUB_CREATED = 2,
  SUB_SIG_EXPIRES = 3,
  SUB_KEY_EXPIRES = 9,
  SUB_ISSUER = 16,
  SUB_PRIMARY_UID = 25,
  SUB_KEY_FLAGS = 27,
  SUB_REASON = 29,
  SUB_EMBEDDED = 32,
  SUB_ISSUER_FPR = 33,
};

/* Subpackets whose meaning we know or that change nothing for a verdict here: a
 * critical one of these is fine; any other critical one voids the signature. */
static bool sub_known(unsigned type)
{
  switch (type) {
  case SUB_CREATED: case SUB_SIG_EXPIRES: case SUB_KEY_EXPIRES: case SUB_ISSUER:
  case SUB_PRIMARY_UID: case SUB_KEY_FLAGS: case SUB_REASON: case SUB_EMBEDDED:
  case SUB_ISSUER_FPR:
  case 4:  /* exportable */
  case 11: case 21: case 22: case 34: case 30: case 23: /* preferences, features */
  case 20: /* notation data: informational */
  case 5: case 6: case 7: /* trust, regex, revocable: third-party certification only */
  case 12: /* revocation key */
    return true;
  default:
    return false;
  }
}

static uint32_t be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int sub_apply(struct pgp_sig *sig, unsigned type, const unsigned char *d,
                     size_t n, bool hashed)
{
  /* only the issuer and the embedded back-signature may sit unhashed (gpg puts the
   * issuer there); everything that decides validity must be hashed */
  if (!hashed && type != SUB_ISSUER && type != SUB_EMBEDDED)
    return 0;
  switch (type) {
  case SUB_CREATED:
    if (n == 4)
      sig->has_created = true, sig->created = be32(d);
    break;
  case SUB_SIG_EXPIRES:
    if (n == 4)
      sig->sig_expires = be32(d);
    break;
  case SUB_KEY_EXPIRES:
    if (n == 4)
      sig->has_key_expires = true, sig->key_expires = be32(d);
    break;
  case SUB_ISSUER:
    if (n == 8)
      sig->has_issuer = true, memcpy(sig->issuer, d, 8);
    break;
  case SUB_ISSUER_FPR:
    if ((n == 21 && d[0] == 4) || (n == 33 && d[0] == 6)) {
      sig->has_issuer_fpr = true;
      sig->issuer_fpr_len = n - 1;
      memcpy(sig->issuer_fpr, d + 1, n - 1);
    }
    break;
  case SUB_KEY_FLAGS:
    if (n >= 1)
      sig->has_key_flags = true, sig->key_flags = d[0];
    break;
  case SUB_REASON:
    if (n >= 1)
      sig->has_reason = true, sig->reason = d[0];
    break;
  case SUB_PRIMARY_UID:
    if (n == 1)
      sig->primary_uid = d[0] != 0;
    break;
  case SUB_EMBEDDED:
    sig->embedded = d, sig->embedded_len = n;
    break;
  default:
    break;
  }
  return 0;
}

static int subpackets(struct pgp_sig *sig, const unsigned char *p, size_t len, bool hashed,
                      struct verr *err)
{
  size_t at = 0;
  while (at < len) {
    size_t hdr, n;
    if (new_length(p + at, len - at, &hdr, &n, err) == -1)
      return verr_prefix(err, "signature subpacket");
    at += hdr;
    if (n == 0 || n > len - at)
      return verr_set(err, VERR_FORMAT, "OpenPGP signature subpacket overruns its area; "
                      "the signature is damaged");
    unsigned type = p[at] & 0x7F;
    if ((p[at] & 0x80) && hashed && !sub_known(type))
      sig->unknown_critical = true;
    sub_apply(sig, type, p + at + 1, n - 1, hashed);
    at += n;
  }
  return 0;
}

/* The subpacket areas: v4 has 2-byte area lengths, v6 4-byte ones. */
static int sig_areas(const unsigned char *body, size_t len, struct pgp_sig *sig, size_t *at,
                     struct verr *err)
{
  size_t lw = sig->version == 6 ? 4 : 2;
  if (len - *at < lw)
    return truncated(err);
  size_t hlen = be(body + *at, lw);
  *at += lw;
  if (hlen > len - *at)
    return truncated(err);
  if (subpackets(sig, body + *at, hlen, true, err) == -1)
    return -1;
  *at += hlen;
  sig->hashed = body;
  sig->hashed_len = *at;
  if (len - *at < lw)
    return truncated(err);
  size_t ulen = be(body + *at, lw);
  *at += lw;
  if (ulen > len - *at)
    return truncated(err);
  if (subpackets(sig, body + *at, ulen, false, err) == -1)
    return -1;
  *at += ulen;
  return 0;
}

int pgp_sig_parse(const unsigned char *body, size_t len, struct pgp_sig *sig,
                  struct verr *err)
{
  memset(sig, 0, sizeof *sig);
  if (len < 1)
    return truncated(err);
  sig->version = body[0];
  if (sig->version != 4 && sig->version != 6)
    return verr_set(err, VERR_FORMAT, "OpenPGP signature version %u is not supported "
                    "(versions 4 and 6 are); ask the publisher for a v4 signature",
                    sig->version);
  if (len < 4)
    return truncated(err);
  sig->type = body[1];
  sig->pkalg = body[2];
  sig->halg = body[3];
  size_t at = 4;
  if (sig_areas(body, len, sig, &at, err) == -1)
    return -1;
  if (len - at < 2)
    return truncated(err);
  memcpy(sig->left16, body + at, 2);
  at += 2;
  if (sig->version == 6) { /* the salt, hashed first */
    if (len - at < 1 || body[at] > len - at - 1)
      return truncated(err);
    sig->salt_len = body[at];
    sig->salt = body + at + 1;
    at += 1 + sig->salt_len;
  }
  sig->mpis = body + at;
  sig->mpis_len = len - at;
  if (!sig->has_created)
    return verr_set(err, VERR_FORMAT, "OpenPGP signature without a hashed creation time; "
                    "RFC 4880 requires one");
  return 0;
}

bool pgp_sig_names_key(const struct pgp_sig *sig, const struct pgp_key *key)
{
  if (sig->has_issuer_fpr)
    return sig->issuer_fpr_len == key->fpr_len &&
           memcmp(sig->issuer_fpr, key->fpr, key->fpr_len) == 0;
  /* the key ID: a v4 fingerprint's last 8 bytes, a v6 one's first 8 */
  if (sig->has_issuer)
    return memcmp(sig->issuer, key->version == 6 ? key->fpr : key->fpr + 12, 8) == 0;
  return false;
}

/* ---- key packets ----------------------------------------------------------------- */

/* One MPI at *at: its bytes without leading zeros. */
static int mpi(const unsigned char *p, size_t len, size_t *at, const unsigned char **v,
               size_t *n, struct verr *err)
{
  if (len - *at < 2)
    return truncated(err);
  size_t bits = be(p + *at, 2);
  size_t bytes = (bits + 7) / 8;
  *at += 2;
  if (bytes > len - *at)
    return truncated(err);
  *v = p + *at;
  *n = bytes;
  *at += bytes;
  while (*n > 0 && **v == 0)
    (*v)++, (*n)--;
  return 0;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
  EVP_PKEY *pkey = NULL;
  if (params != NULL && ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return pkey;
}

static int rsa_key(struct pgp_key *key, const unsigned char *p, size_t len, size_t at,
                   struct verr *err)
{
  const unsigned char *n, *e;
  size_t nl, el;
  if (mpi(p, len, &at, &n, &nl, err) == -1 || mpi(p, len, &at, &e, &el, err) == -1)
    return -1;
  size_t bits = nl * 8;
  for (unsigned char top = nl ? n[0] : 0; nl && !(top & 0x80); top <<= 1)
    bits--;
  snprintf(key->desc, sizeof key->desc, "RSA-%zu", bits);
  if (bits < OPENPGP_RSA_MIN_BITS)
    return key->unusable = "RSA keys shorter than 2048 bits are refused", 0;
  if (bits > OPENPGP_RSA_MAX_BITS)
    return key->unusable = "RSA keys longer than 16384 bits are refused", 0;
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be_ = BN_bin2bn(e, (int)el, NULL);
  if (bld && bn && be_ && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be_))
    key->pkey = from_params("RSA", bld);
  BN_free(bn);
  BN_free(be_);
  OSSL_PARAM_BLD_free(bld);
  if (key->pkey == NULL)
    key->unusable = "OpenSSL refused the RSA key";
  return 0;
}

static const struct {
  unsigned char oid[10];
  size_t len;
  const char *group;
  const char *name;
} curves[] = {
  { { 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07 }, 8, "prime256v1", "P-256" },
  { { 0x2B, 0x81, 0x04, 0x00, 0x22 }, 5, "secp384r1", "P-384" },
  { { 0x2B, 0x81, 0x04, 0x00, 0x23 }, 5, "secp521r1", "P-521" },
};
static const unsigned char ed25519_oid[] = { 0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47,
                                             0x0F, 0x01 };

static int ecdsa_key(struct pgp_key *key, const unsigned char *p, size_t len, size_t at,
                     struct verr *err)
{
  if (len - at < 1 || p[at] == 0 || p[at] == 0xFF || p[at] > len - at - 1)
    return truncated(err);
  size_t ol = p[at];
  const unsigned char *oid = p + at + 1;
  at += 1 + ol;
  const unsigned char *q;
  size_t ql;
  if (mpi(p, len, &at, &q, &ql, err) == -1)
    return -1;
  for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
    if (curves[i].len != ol || memcmp(curves[i].oid, oid, ol) != 0)
      continue;
    snprintf(key->desc, sizeof key->desc, "ECDSA %s", curves[i].name);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                               curves[i].group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, q, ql))
      key->pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (key->pkey == NULL)
      key->unusable = "the ECDSA public point is not on its curve";
    return 0;
  }
  snprintf(key->desc, sizeof key->desc, "ECDSA (other curve)");
  key->unusable = "ECDSA on a curve other than P-256, P-384 or P-521";
  return 0;
}

static void ed25519_raw(struct pgp_key *key, const unsigned char *raw)
{
  snprintf(key->desc, sizeof key->desc, "Ed25519");
  key->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
  if (key->pkey == NULL)
    key->unusable = "OpenSSL refused the Ed25519 key";
}

/* Legacy EdDSA (algorithm 22): the Ed25519 OID and a 0x40-prefixed point. */
static int eddsa_legacy_key(struct pgp_key *key, const unsigned char *p, size_t len,
                            size_t at, struct verr *err)
{
  if (len - at < 1 || p[at] == 0 || p[at] == 0xFF || p[at] > len - at - 1)
    return truncated(err);
  size_t ol = p[at];
  const unsigned char *oid = p + at + 1;
  at += 1 + ol;
  if (len - at < 2)
    return truncated(err);
  size_t bits = be(p + at, 2), bytes = (bits + 7) / 8;
  at += 2;
  if (bytes > len - at)
    return truncated(err);
  snprintf(key->desc, sizeof key->desc, "EdDSA (other curve)");
  if (ol != sizeof ed25519_oid || memcmp(oid, ed25519_oid, ol) != 0)
    return key->unusable = "EdDSA on a curve other than Ed25519", 0;
  if (bytes != 33 || p[at] != 0x40)
    return key->unusable = "malformed Ed25519 point", 0;
  ed25519_raw(key, p + at + 1);
  return 0;
}

static int key_material(struct pgp_key *key, const unsigned char *p, size_t len,
                        size_t at, struct verr *err)
{
  switch (key->alg) {
  case PGP_PK_RSA:
  case PGP_PK_RSA_SIGN:
    return rsa_key(key, p, len, at, err);
  case PGP_PK_ECDSA:
    return ecdsa_key(key, p, len, at, err);
  case PGP_PK_EDDSA_LEGACY:
    return eddsa_legacy_key(key, p, len, at, err);
  case PGP_PK_ED25519:
    if (len - at < 32)
      return truncated(err);
    ed25519_raw(key, p + at);
    return 0;
  default:
    snprintf(key->desc, sizeof key->desc, "algorithm %u", key->alg);
    key->unusable = "its public-key algorithm cannot sign here (RSA, ECDSA and Ed25519 "
                    "can)";
    return 0;
  }
}

/* The fingerprint: v4 SHA-1(0x99, 2-byte length, body), v6 SHA-256(0x9B, 4-byte
 * length, body) (RFC 4880 12.2, RFC 9580 5.5.4). */
static int fingerprint(struct pgp_key *key, struct verr *err)
{
  size_t n = key->body_len;
  unsigned char v4[3] = { 0x99, (unsigned char)(n >> 8), (unsigned char)n };
  unsigned char v6[5] = { 0x9B, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n };
  bool six = key->version == 6;
  unsigned int fl = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx && EVP_DigestInit_ex(ctx, six ? EVP_sha256() : EVP_sha1(), NULL) == 1 &&
           EVP_DigestUpdate(ctx, six ? v6 : v4, six ? 5 : 3) == 1 &&
           EVP_DigestUpdate(ctx, key->body, n) == 1 &&
           EVP_DigestFinal_ex(ctx, key->fpr, &fl) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok)
    return verr_set(err, VERR_INTERNAL, "OpenSSL cannot compute a key fingerprint");
  key->fpr_len = fl;
  pgp_hex(key->fpr, fl, key->fpr_hex);
  return 0;
}

int pgp_key_parse(const unsigned char *body, size_t len, struct pgp_key *key,
                  struct verr *err)
{
  memset(key, 0, sizeof *key);
  if (len < 6)
    return truncated(err);
  key->version = body[0];
  if (key->version != 4 && key->version != 6)
    return verr_set(err, VERR_FORMAT, "OpenPGP key version %u is not supported (versions "
                    "4 and 6 are); export the key with gpg --export", body[0]);
  if (key->version == 4 && len > 0xFFFF)
    return verr_set(err, VERR_FORMAT, "OpenPGP v4 key packet longer than 65535 bytes");
  key->body = body;
  key->body_len = len;
  key->created = be32(body + 1);
  key->alg = body[5];
  if (fingerprint(key, err) < 0)
    return -1;
  size_t at = 6;
  if (key->version == 6) { /* the key material's length, then the material */
    if (len < 10 || be32(body + 6) != len - 10)
      return verr_set(err, VERR_FORMAT, "OpenPGP v6 key: its key material length does not "
                      "match the packet");
    at = 10;
  }
  return key_material(key, body, len, at, err);
}
