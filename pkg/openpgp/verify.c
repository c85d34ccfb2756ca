/* vimport openpgp: verifying signatures over data (RFC 4880 5.2.4, 7). See openpgp.h.
 *
 * The public-key operation is OpenSSL's; this file decides what is hashed (the data, in
 * binary, text or cleartext canonical form, then the signature's hashed part and
 * trailer), which key may have made the signature, and whether that key was valid when
 * it did.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>

#include "internal.h"

/* ---- hashes ---------------------------------------------------------------------- */

static const struct {
  unsigned id;
  const char *name;    /* ours, lowercase */
  const char *armor;   /* the clearsign "Hash:" spelling */
  const char *refused; /* NULL: accepted */
} hashes[] = {
  { 1, "md5", "MD5", "MD5 is broken" },
  { 2, "sha1", "SHA1", "SHA-1 is broken (chosen-prefix collisions since 2020)" },
  { 3, "ripemd160", "RIPEMD160", "RIPEMD-160 is too weak" },
  { 8, "sha256", "SHA256", NULL },
  { 9, "sha384", "SHA384", NULL },
  { 10, "sha512", "SHA512", NULL },
  { 11, "sha224", "SHA224", NULL },
  { 12, "sha3-256", "SHA3-256", NULL },
  { 14, "sha3-512", "SHA3-512", NULL },
};

static int hash_index(unsigned halg)
{
  for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++)
    if (hashes[i].id == halg)
      return (int)i;
  return -1;
}

const EVP_MD *pgp_hash_md(unsigned halg, bool allow_sha1, const char **name,
                          const char **refused)
{
  int i = hash_index(halg);
  *name = i < 0 ? "unknown" : hashes[i].name;
  *refused = i < 0 ? "the hash algorithm is unknown" : hashes[i].refused;
  if (i >= 0 && halg == 2 && allow_sha1)
    *refused = NULL;
  if (*refused != NULL)
    return NULL;
  const EVP_MD *md = EVP_get_digestbyname(hashes[i].name);
  if (md == NULL)
    *refused = "OpenSSL lacks the hash";
  return md;
}

int pgp_hash_key(EVP_MD_CTX *ctx, const struct pgp_key *key)
{
  size_t n = key->body_len;
  unsigned char v4[3] = { 0x99, (unsigned char)(n >> 8), (unsigned char)n };
  unsigned char v6[5] = { 0x9B, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n };
  bool six = key->version == 6;
  if (EVP_DigestUpdate(ctx, six ? v6 : v4, six ? 5 : 3) != 1 ||
      EVP_DigestUpdate(ctx, key->body, key->body_len) != 1)
    return -1;
  return 0;
}

/* RFC 9580 5.2.4: a v6 signature's salt has the size the hash gives it. */
static size_t salt_size(unsigned halg)
{
  switch (halg) {
  case 9: return 24;  /* SHA-384 */
  case 10: return 32; /* SHA-512 */
  case 14: return 32; /* SHA3-512 */
  default: return 16; /* SHA-256, SHA-224, SHA3-256 */
  }
}

int pgp_hash_start(EVP_MD_CTX *ctx, const EVP_MD *md, const struct pgp_sig *sig)
{
  if (EVP_DigestInit_ex(ctx, md, NULL) != 1)
    return -1;
  if (sig->version != 6)
    return 1;
  if (sig->salt_len != salt_size(sig->halg))
    return 0;
  return EVP_DigestUpdate(ctx, sig->salt, sig->salt_len) == 1 ? 1 : -1;
}

/* ---- the public-key operation ---------------------------------------------------- */

static size_t be2(const unsigned char *p)
{
  return (size_t)p[0] << 8 | p[1];
}

/* The MPI at *at, without leading zeros. 0: malformed. */
static bool sig_mpi(const struct pgp_sig *sig, size_t *at, const unsigned char **v, size_t *n)
{
  if (sig->mpis_len - *at < 2)
    return false;
  size_t bytes = (be2(sig->mpis + *at) + 7) / 8;
  *at += 2;
  if (bytes > sig->mpis_len - *at)
    return false;
  *v = sig->mpis + *at;
  *n = bytes;
  *at += bytes;
  while (*n > 0 && **v == 0)
    (*v)++, (*n)--;
  return true;
}

static int rsa_verify(const struct pgp_sig *sig, EVP_PKEY *pkey, const EVP_MD *md,
                      const unsigned char *dg, size_t dl)
{
  const unsigned char *s;
  size_t sl, at = 0;
  int size = EVP_PKEY_get_size(pkey);
  if (!sig_mpi(sig, &at, &s, &sl) || size <= 0 || sl > (size_t)size)
    return 0;
  unsigned char buf[OPENPGP_RSA_MAX_BITS / 8];
  memset(buf, 0, (size_t)size);
  memcpy(buf + (size_t)size - sl, s, sl); /* OpenPGP drops leading zeros; RSA wants them */
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
  int ok = ctx && EVP_PKEY_verify_init(ctx) == 1 &&
           EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
           EVP_PKEY_CTX_set_signature_md(ctx, md) == 1 &&
           EVP_PKEY_verify(ctx, buf, (size_t)size, dg, dl) == 1;
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

static int ecdsa_verify(const struct pgp_sig *sig, EVP_PKEY *pkey, const unsigned char *dg,
                        size_t dl)
{
  const unsigned char *r, *s;
  size_t rl, sl, at = 0;
  if (!sig_mpi(sig, &at, &r, &rl) || !sig_mpi(sig, &at, &s, &sl) || rl > 66 || sl > 66)
    return 0;
  ECDSA_SIG *es = ECDSA_SIG_new();
  BIGNUM *br = BN_bin2bn(r, (int)rl, NULL), *bs = BN_bin2bn(s, (int)sl, NULL);
  if (es == NULL || br == NULL || bs == NULL || ECDSA_SIG_set0(es, br, bs) != 1) {
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(es);
    return 0;
  }
  unsigned char *der = NULL;
  int derlen = i2d_ECDSA_SIG(es, &der);
  ECDSA_SIG_free(es);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
  int ok = derlen > 0 && ctx && EVP_PKEY_verify_init(ctx) == 1 &&
           EVP_PKEY_verify(ctx, der, (size_t)derlen, dg, dl) == 1;
  EVP_PKEY_CTX_free(ctx);
  OPENSSL_free(der);
  return ok;
}

/* Ed25519 signs the hash value (RFC 4880bis / 9580): R and S as two MPIs (legacy 22)
 * or 64 raw bytes (27). */
static int ed25519_verify(const struct pgp_sig *sig, EVP_PKEY *pkey,
                          const unsigned char *dg, size_t dl)
{
  unsigned char rs[64] = { 0 };
  if (sig->pkalg == PGP_PK_ED25519) {
    if (sig->mpis_len != 64)
      return 0;
    memcpy(rs, sig->mpis, 64);
  } else {
    const unsigned char *r, *s;
    size_t rl, sl, at = 0;
    if (!sig_mpi(sig, &at, &r, &rl) || !sig_mpi(sig, &at, &s, &sl) || rl > 32 || sl > 32)
      return 0;
    memcpy(rs + 32 - rl, r, rl);
    memcpy(rs + 64 - sl, s, sl);
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
           EVP_DigestVerify(ctx, rs, 64, dg, dl) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

static bool alg_matches(unsigned sig_alg, unsigned key_alg)
{
  bool rsa_s = sig_alg == PGP_PK_RSA || sig_alg == PGP_PK_RSA_SIGN;
  bool rsa_k = key_alg == PGP_PK_RSA || key_alg == PGP_PK_RSA_SIGN;
  return rsa_s ? rsa_k : sig_alg == key_alg;
}

int pgp_sig_check(EVP_MD_CTX *ctx, const struct pgp_sig *sig, const struct pgp_key *key,
                  const char **why, struct verr *err)
{
  unsigned char trailer[6] = { (unsigned char)sig->version, 0xFF,
                               (unsigned char)(sig->hashed_len >> 24),
                               (unsigned char)(sig->hashed_len >> 16),
                               (unsigned char)(sig->hashed_len >> 8),
                               (unsigned char)sig->hashed_len };
  unsigned char dg[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  if (EVP_DigestUpdate(ctx, sig->hashed, sig->hashed_len) != 1 ||
      EVP_DigestUpdate(ctx, trailer, 6) != 1 || EVP_DigestFinal_ex(ctx, dg, &dl) != 1)
    return verr_set(err, VERR_INTERNAL, "OpenSSL cannot finish a signature hash");
  if (key->pkey == NULL)
    return *why = key->unusable, 0;
  if (!alg_matches(sig->pkalg, key->alg))
    return *why = "the signature's algorithm is not the key's", 0;
  if (sig->version != key->version) /* RFC 9580: v6 keys make v6 signatures only */
    return *why = "the signature's version is not the key's", 0;
  /* the quick check RFC 4880 provides: the data or the signature changed */
  if (memcmp(dg, sig->left16, 2) != 0)
    return *why = "the signed bytes differ from the ones signed", 0;
  int ok;
  const EVP_MD *md = EVP_MD_CTX_get0_md(ctx);
  switch (key->alg) {
  case PGP_PK_RSA:
  case PGP_PK_RSA_SIGN:
    ok = rsa_verify(sig, key->pkey, md, dg, dl);
    break;
  case PGP_PK_ECDSA:
    ok = ecdsa_verify(sig, key->pkey, dg, dl);
    break;
  default:
    ok = ed25519_verify(sig, key->pkey, dg, dl);
    break;
  }
  if (!ok)
    *why = "the signature value does not match (the signature was altered or made with "
           "another key)";
  return ok;
}

/* ---- which key, valid when ------------------------------------------------------- */

/* Why `k` (or its primary) could not make a signature at time `t`; NULL: it could. */
static const char *key_unusable_at(const struct openpgp_keyring *kr, const struct pgp_key *k,
                                   uint32_t t)
{
  const struct pgp_key *chain[2] = { &kr->keys[k->primary], k };
  for (size_t i = 0; i < (k->is_subkey ? 2u : 1u); i++) {
    const struct pgp_key *x = chain[i];
    bool sub = x->is_subkey;
    if (!x->certified)
      return sub ? "the subkey has no valid binding signature from its primary key"
                 : "the key has no valid self-signature on a user ID";
    if (x->revoked && (x->hard_revoked || t >= x->revoked_at))
      return sub ? "the subkey was revoked" : "the key was revoked by its owner";
    if (x->expires != 0 && (uint64_t)x->created + x->expires <= t)
      return sub ? "the subkey had expired when the signature was made"
                 : "the key had expired when the signature was made";
    if (x->created > t)
      return "the signature is older than the key that made it";
  }
  if (k->has_flags && !(k->flags & PGP_KEY_FLAG_SIGN))
    return k->is_subkey ? "the subkey is not certified for signing (key flags, or no "
                          "back-signature)" : "the key is not certified for signing";
  return NULL;
}

static const struct pgp_key *find_key(const struct openpgp_keyring *kr,
                                      const struct pgp_sig *sig)
{
  for (size_t i = 0; i < kr->n; i++)
    if (pgp_sig_names_key(sig, &kr->keys[i]))
      return &kr->keys[i];
  return NULL;
}

/* ---- what is hashed -------------------------------------------------------------- */

enum data_form { FORM_BINARY, FORM_TEXT, FORM_CLEARTEXT };

/* Text signatures hash lines ended by CRLF; cleartext ones (text already stripped of
 * trailing whitespace by the parser, lines ended by '\n') omit the last line end. */
static int hash_data(EVP_MD_CTX *ctx, enum data_form form, const unsigned char *p, size_t n)
{
  if (form == FORM_BINARY)
    return EVP_DigestUpdate(ctx, p, n) == 1 ? 0 : -1;
  size_t at = 0;
  bool first = true;
  while (at < n) {
    const unsigned char *nl = memchr(p + at, '\n', n - at);
    size_t end = nl ? (size_t)(nl - p) : n, l = end - at;
    if (l > 0 && p[at + l - 1] == '\r')
      l--;
    if (form == FORM_CLEARTEXT && !first && EVP_DigestUpdate(ctx, "\r\n", 2) != 1)
      return -1;
    if (EVP_DigestUpdate(ctx, p + at, l) != 1)
      return -1;
    if (form == FORM_TEXT && nl != NULL && EVP_DigestUpdate(ctx, "\r\n", 2) != 1)
      return -1;
    first = false;
    at = nl ? end + 1 : n;
  }
  return 0;
}

/* ---- one signature --------------------------------------------------------------- */

static void describe(struct openpgp_result *res, const struct openpgp_keyring *kr,
                     const struct pgp_key *k)
{
  const struct pgp_key *p = &kr->keys[k->primary];
  snprintf(res->fingerprint, sizeof res->fingerprint, "%s", p->fpr_hex);
  snprintf(res->signing_key, sizeof res->signing_key, "%s", k->fpr_hex);
  snprintf(res->user_id, sizeof res->user_id, "%s", p->user_id);
  snprintf(res->algorithm, sizeof res->algorithm, "%s", k->desc);
}

/* Is the "Hash:" header of a cleartext message consistent with the signature? */
static bool hash_header_lists(const char *header, unsigned halg)
{
  int i = hash_index(halg);
  if (header[0] == '\0')
    return true; /* no header means MD5 in RFC 2440; we refuse MD5 anyway */
  if (i < 0)
    return false;
  const char *p = header;
  while (*p) {
    while (*p == ' ' || *p == ',')
      p++;
    size_t n = strcspn(p, ", ");
    if (n == strlen(hashes[i].armor) && strncasecmp(p, hashes[i].armor, n) == 0)
      return true;
    p += n;
  }
  return false;
}

/* Rank of a failure, to report the most telling one: a key of the keyring that failed
 * beats a key that is not in it. */
enum { FAIL_NONE, FAIL_UNKNOWN_KEY, FAIL_KNOWN_KEY };

static int verify_one(const struct openpgp_keyring *kr, enum data_form form,
                      const char *hash_header, const unsigned char *data, size_t len,
                      const struct openpgp_packet *pkt, struct openpgp_result *res,
                      int *rank, struct verr *err)
{
  struct pgp_sig sig;
  *rank = FAIL_UNKNOWN_KEY;
  if (pgp_sig_parse(pkt->body, pkt->len, &sig, err) < 0)
    return -1;
  char id[65];
  pgp_hex(sig.has_issuer_fpr ? sig.issuer_fpr : sig.issuer,
          sig.has_issuer_fpr ? sig.issuer_fpr_len : 8, id);
  if (!sig.has_issuer_fpr && !sig.has_issuer)
    return verr_set(err, VERR_VERIFY, "the OpenPGP signature names no issuing key");
  const struct pgp_key *k = find_key(kr, &sig);
  if (k == NULL)
    return verr_set(err, VERR_VERIFY, "the OpenPGP signature was made by key %s, which is "
                    "not in the keyring: give the publisher's key", id);
  *rank = FAIL_KNOWN_KEY;
  describe(res, kr, k);
  res->created = sig.created;
  const char *hname, *refused, *why = NULL;
  const EVP_MD *md = pgp_hash_md(sig.halg, false, &hname, &refused);
  snprintf(res->hash, sizeof res->hash, "%s", hname);
  if (sig.type != PGP_SIG_BINARY && sig.type != PGP_SIG_TEXT)
    why = "it is not a signature over a document (type 0x00 or 0x01)";
  else if (md == NULL)
    why = refused;
  else if (sig.unknown_critical)
    why = "it carries an unknown critical subpacket";
  else if (form == FORM_CLEARTEXT && !hash_header_lists(hash_header, sig.halg))
    why = "the message's 'Hash:' header does not name the signature's hash";
  else if (sig.sig_expires != 0 && (int64_t)sig.created + sig.sig_expires <= (int64_t)time(NULL))
    why = "the signature has expired";
  else if ((int64_t)sig.created > (int64_t)time(NULL) + OPENPGP_CLOCK_SKEW)
    why = "the signature claims to be made in the future (check this machine's clock)";
  else
    why = key_unusable_at(kr, k, sig.created);
  if (why == NULL) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    enum data_form f = form == FORM_CLEARTEXT ? form
                       : sig.type == PGP_SIG_TEXT ? FORM_TEXT : FORM_BINARY;
    int started = ctx ? pgp_hash_start(ctx, md, &sig) : -1;
    if (started < 0 || hash_data(ctx, f, data, len) < 0) {
      EVP_MD_CTX_free(ctx);
      return verr_set(err, VERR_INTERNAL, "OpenSSL cannot hash the signed data");
    }
    int ok = started ? pgp_sig_check(ctx, &sig, k, &why, err) : 0;
    if (!started)
      why = "its salt does not have the size RFC 9580 gives its hash";
    EVP_MD_CTX_free(ctx);
    if (ok < 0)
      return -1;
    if (ok == 1)
      return res->verified = true, 0;
  }
  return verr_set(err, VERR_VERIFY, "the OpenPGP signature (%s, %s) by key %s (%s%s%s) "
                  "is refused: %s", res->algorithm, hname, res->fingerprint,
                  res->user_id[0] ? "\"" : "no user ID", res->user_id,
                  res->user_id[0] ? "\"" : "", why);
}

/* Try every signature packet in `sigbuf`; the first that verifies wins. */
static int verify_any(const struct openpgp_keyring *kr, enum data_form form,
                      const char *hash_header, const unsigned char *data, size_t len,
                      const unsigned char *sigbuf, size_t sig_len,
                      struct openpgp_result *res, struct verr *err)
{
  size_t off = 0, count = 0;
  int r, best = FAIL_NONE;
  struct openpgp_packet pkt;
  struct verr e;
  memset(res, 0, sizeof *res);
  while ((r = openpgp_packet_next(sigbuf, sig_len, &off, &pkt, err)) == 1) {
    if (pkt.tag == PGP_TAG_MARKER)
      continue;
    if (pkt.tag != PGP_TAG_SIGNATURE)
      return verr_set(err, VERR_FORMAT, "not a detached OpenPGP signature (it holds a "
                      "packet of type %u)", pkt.tag);
    if (++count > OPENPGP_MAX_SIGNATURES)
      return verr_set(err, VERR_FORMAT, "more than %u OpenPGP signatures",
                      OPENPGP_MAX_SIGNATURES);
    struct openpgp_result one = { 0 };
    int rank;
    e.message[0] = '\0';
    if (verify_one(kr, form, hash_header, data, len, &pkt, &one, &rank, &e) == 0) {
      *res = one;
      return 0;
    }
    if (e.code == VERR_INTERNAL || e.code == VERR_NOMEM)
      return *err = e, -1;
    if (rank > best) {
      best = rank;
      *err = e;
      *res = one;
      res->verified = false;
    }
  }
  if (r < 0)
    return -1;
  if (count == 0)
    return verr_set(err, VERR_FORMAT, "no OpenPGP signature packet found");
  return -1;
}

int openpgp_verify_detached(const struct openpgp_keyring *kr, const void *data,
                            size_t len, const void *sig, size_t sig_len,
                            struct openpgp_result *res, struct verr *err)
{
  unsigned char *bin;
  size_t bin_len;
  memset(res, 0, sizeof *res);
  if (openpgp_dearmor_any(sig, sig_len, &bin, &bin_len, err) < 0)
    return verr_prefix(err, "signature");
  int r = verify_any(kr, FORM_BINARY, "", data, len, bin, bin_len, res, err);
  free(bin);
  return r;
}

int openpgp_verify_clearsigned(const struct openpgp_keyring *kr, const char *msg,
                               size_t len, char **text, size_t *text_len,
                               struct openpgp_result *res, struct verr *err)
{
  struct openpgp_clearsigned cs;
  memset(res, 0, sizeof *res);
  if (openpgp_clearsign_parse(msg, len, &cs, err) < 0)
    return -1;
  int r = verify_any(kr, FORM_CLEARTEXT, cs.hash_header, (const unsigned char *)cs.text,
                     cs.text_len, cs.sig, cs.sig_len, res, err);
  if (r == 0) {
    *text = cs.text; /* ownership moves to the caller */
    *text_len = cs.text_len;
    cs.text = NULL;
  }
  openpgp_clearsigned_free(&cs);
  return r;
}

int openpgp_verify_file(const struct openpgp_keyring *kr, const void *data, size_t len,
                        const void *sig, size_t sig_len, char **text, size_t *text_len,
                        struct openpgp_result *res, struct verr *err)
{
  if (sig == NULL)
    return openpgp_verify_clearsigned(kr, data, len, text, text_len, res, err);
  if (openpgp_verify_detached(kr, data, len, sig, sig_len, res, err) < 0)
    return -1;
  char *copy = malloc(len + 1);
  if (copy == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  memcpy(copy, data, len);
  copy[len] = '\0';
  *text = copy;
  *text_len = len;
  return 0;
}
