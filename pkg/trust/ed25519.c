/* vimport trust: pure Ed25519 verification in one streaming pass.
 *
 * Why this file exists: OpenSSL verifies pure Ed25519 (RFC 8032) only one-shot, over a
 * message held in memory, because the signer needs two passes. The verifier does not:
 * with signature (R, S) and public key A it computes k = SHA-512(R || A || M) mod L,
 * which streams, and then checks [S]B - [k]A == R on the curve. OpenSSL has no public
 * Edwards-curve arithmetic, so the check is done here with BIGNUMs in affine
 * coordinates, using the complete twisted Edwards addition law (a = -1, d not a square:
 * no exceptional cases, doubling included). Only public data is involved, so constant
 * time does not matter; the ~500 additions take a few milliseconds, once per import.
 *
 * The check is OpenSSL's cofactorless one: S must be below L, A must decode to a curve
 * point (canonical y), and [S]B - [k]A must encode to exactly the 32 bytes of R (so
 * non-canonical R is refused as OpenSSL refuses it). The unit tests compare verdicts
 * with OpenSSL's EVP_DigestVerify on random keys, messages and corruptions.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "internal.h"

/* The curve constants and scratch numbers of one verification. */
struct ed_math {
  BN_CTX *bn;
  BIGNUM *p, *d, *L;
  BIGNUM *t[6]; /* scratch for point_add and decode */
};

struct ed_point {
  BIGNUM *x, *y;
};

struct ed25519_stream {
  EVP_MD_CTX *sha512; /* SHA-512(R || A || M) so far */
  unsigned char sig[ED25519_SIGNATURE_BYTES];
  unsigned char key[ED25519_KEY_BYTES];
};

/* ---- arithmetic mod p ---- */

static void ed_math_free(struct ed_math *m)
{
  BN_free(m->p);
  BN_free(m->d);
  BN_free(m->L);
  for (size_t i = 0; i < sizeof m->t / sizeof m->t[0]; i++)
    BN_free(m->t[i]);
  BN_CTX_free(m->bn);
}

static bool ed_math_init(struct ed_math *m)
{
  memset(m, 0, sizeof *m);
  m->bn = BN_CTX_new();
  m->p = BN_new();
  m->d = BN_new();
  m->L = BN_new();
  bool ok = m->bn && m->p && m->d && m->L;
  for (size_t i = 0; i < sizeof m->t / sizeof m->t[0]; i++)
    ok = (m->t[i] = BN_new()) != NULL && ok;
  if (!ok)
    return false;
  BIGNUM *n = m->t[0], *q = m->t[1];
  /* p = 2^255 - 19; d = -121665 / 121666 mod p; L = 2^252 + 2774...8493 */
  ok = BN_set_bit(m->p, 255) && BN_sub_word(m->p, 19) &&
       BN_set_word(n, 121666) && BN_mod_inverse(q, n, m->p, m->bn) != NULL &&
       BN_set_word(n, 121665) && BN_mod_mul(m->d, n, q, m->p, m->bn) &&
       BN_mod_sub(m->d, m->p, m->d, m->p, m->bn) &&
       BN_dec2bn(&n, "27742317777372353535851937790883648493") &&
       BN_set_bit(m->L, 252) && BN_add(m->L, m->L, n);
  return ok;
}

static bool point_init(struct ed_point *pt)
{
  pt->x = BN_new();
  pt->y = BN_new();
  return pt->x != NULL && pt->y != NULL;
}

static void point_free(struct ed_point *pt)
{
  BN_free(pt->x);
  BN_free(pt->y);
}

/* r = a + b (r may be a or b). x3 = (x1y2 + y1x2) / (1 + d x1x2y1y2),
 * y3 = (y1y2 + x1x2) / (1 - d x1x2y1y2). */
static bool point_add(struct ed_math *m, struct ed_point *r, const struct ed_point *a,
                      const struct ed_point *b)
{
  BIGNUM *xx = m->t[0], *yy = m->t[1], *dxy = m->t[2], *num = m->t[3], *den = m->t[4],
         *tmp = m->t[5];
  BN_CTX *c = m->bn;
  if (!BN_mod_mul(xx, a->x, b->x, m->p, c) || !BN_mod_mul(yy, a->y, b->y, m->p, c) ||
      !BN_mod_mul(dxy, xx, yy, m->p, c) || !BN_mod_mul(dxy, dxy, m->d, m->p, c))
    return false;
  /* y3 first: it only needs xx, yy and dxy, then x3 may overwrite a or b */
  if (!BN_mod_add(num, yy, xx, m->p, c) || !BN_one(tmp) ||
      !BN_mod_sub(den, tmp, dxy, m->p, c) || BN_mod_inverse(den, den, m->p, c) == NULL ||
      !BN_mod_mul(yy, num, den, m->p, c))
    return false;
  if (!BN_mod_mul(num, a->x, b->y, m->p, c) || !BN_mod_mul(tmp, a->y, b->x, m->p, c) ||
      !BN_mod_add(num, num, tmp, m->p, c) || !BN_one(tmp) ||
      !BN_mod_add(den, tmp, dxy, m->p, c) || BN_mod_inverse(den, den, m->p, c) == NULL ||
      !BN_mod_mul(r->x, num, den, m->p, c))
    return false;
  return BN_copy(r->y, yy) != NULL;
}

/* r = [k]p, double-and-add from the top bit (r must not be p). */
static bool point_mul(struct ed_math *m, struct ed_point *r, const struct ed_point *pt,
                      const BIGNUM *k)
{
  BN_zero(r->x);
  if (!BN_one(r->y))
    return false;
  for (int i = BN_num_bits(k) - 1; i >= 0; i--) {
    if (!point_add(m, r, r, r))
      return false;
    if (BN_is_bit_set(k, i) && !point_add(m, r, r, pt))
      return false;
  }
  return true;
}

/* RFC 8032 5.1.3. Returns 1 decoded, 0 not a valid encoding, -1 OpenSSL failure. */
static int point_decode(struct ed_math *m, struct ed_point *pt, const unsigned char in[32])
{
  unsigned char le[32];
  memcpy(le, in, 32);
  int sign = le[31] >> 7;
  le[31] &= 0x7f;
  if (BN_lebin2bn(le, 32, pt->y) == NULL)
    return -1;
  if (BN_cmp(pt->y, m->p) >= 0)
    return 0;
  BIGNUM *yy = m->t[0], *u = m->t[1], *v = m->t[2];
  BN_CTX *c = m->bn;
  /* x^2 = (y^2 - 1) / (d y^2 + 1) */
  if (!BN_mod_sqr(yy, pt->y, m->p, c) || !BN_copy(u, yy) || !BN_sub_word(u, 1) ||
      !BN_nnmod(u, u, m->p, c) || !BN_mod_mul(v, yy, m->d, m->p, c) || !BN_add_word(v, 1) ||
      !BN_nnmod(v, v, m->p, c) || BN_mod_inverse(v, v, m->p, c) == NULL ||
      !BN_mod_mul(u, u, v, m->p, c))
    return -1;
  if (BN_mod_sqrt(pt->x, u, m->p, c) == NULL) {
    ERR_clear_error(); /* not a square: not a point */
    return 0;
  }
  if (BN_is_zero(pt->x) && sign)
    return 0;
  if (BN_is_odd(pt->x) != sign && !BN_sub(pt->x, m->p, pt->x))
    return -1;
  return 1;
}

static bool point_encode(const struct ed_point *pt, unsigned char out[32])
{
  if (BN_bn2lebinpad(pt->y, out, 32) != 32)
    return false;
  out[31] |= (unsigned char)(BN_is_odd(pt->x) << 7);
  return true;
}

/* ---- the check ---- */

/* The base point B: y = 4/5, x even. */
static const unsigned char ed25519_base[32] = {
  0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
  0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
};

static void cleanup_bn(BIGNUM **b) { BN_free(*b); }
static void cleanup_point(struct ed_point *pt) { point_free(pt); }
#define CLEANUP_BN __attribute__((cleanup(cleanup_bn)))
#define CLEANUP_POINT __attribute__((cleanup(cleanup_point)))

/* Whether [S]B + [k](-A) encodes to R. Returns 1 yes, 0 no, -1 OpenSSL failure. */
static int check_equation(struct ed_math *m, const unsigned char sig[64],
                          const unsigned char key[32], const unsigned char h[64])
{
  CLEANUP_POINT struct ed_point base = { 0 }, a = { 0 }, sb = { 0 }, ka = { 0 };
  CLEANUP_BN BIGNUM *s = BN_lebin2bn(sig + 32, 32, NULL);
  CLEANUP_BN BIGNUM *k = BN_lebin2bn(h, 64, NULL);
  if (s == NULL || k == NULL || !point_init(&base) || !point_init(&a) || !point_init(&sb) ||
      !point_init(&ka) || !BN_nnmod(k, k, m->L, m->bn))
    return -1;
  if (BN_cmp(s, m->L) >= 0)
    return 0;
  int decoded = point_decode(m, &a, key);
  if (decoded != 1)
    return decoded;
  if (point_decode(m, &base, ed25519_base) != 1)
    return -1;
  if (!BN_is_zero(a.x) && !BN_sub(a.x, m->p, a.x)) /* -A */
    return -1;
  unsigned char r[32];
  if (!point_mul(m, &sb, &base, s) || !point_mul(m, &ka, &a, k) ||
      !point_add(m, &sb, &sb, &ka) || !point_encode(&sb, r))
    return -1;
  return memcmp(r, sig, 32) == 0;
}

/* ---- the stream ---- */

int ed25519_stream_new(EVP_PKEY *key, const unsigned char *sig, size_t sig_len,
                       struct ed25519_stream **out, struct verr *err)
{
  *out = NULL;
  if (sig_len != ED25519_SIGNATURE_BYTES)
    return verr_set(err, VERR_FORMAT, "an Ed25519 signature is %d bytes, this one is %zu: "
                    "is it the signature file for this key (or base64 given as der)?",
                    ED25519_SIGNATURE_BYTES, sig_len);
  struct ed25519_stream *s = calloc(1, sizeof *s);
  if (s == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory starting Ed25519 verification");
  size_t key_len = sizeof s->key;
  memcpy(s->sig, sig, sizeof s->sig);
  s->sha512 = EVP_MD_CTX_new();
  if (s->sha512 == NULL || EVP_PKEY_get_raw_public_key(key, s->key, &key_len) != 1 ||
      key_len != sizeof s->key || EVP_DigestInit_ex(s->sha512, EVP_sha512(), NULL) != 1 ||
      EVP_DigestUpdate(s->sha512, s->sig, 32) != 1 ||
      EVP_DigestUpdate(s->sha512, s->key, sizeof s->key) != 1) {
    ed25519_stream_free(s);
    return verr_set(err, VERR_INTERNAL, "OpenSSL could not start Ed25519 verification");
  }
  *out = s;
  return 0;
}

int ed25519_stream_update(struct ed25519_stream *s, const void *buf, size_t len,
                          struct verr *err)
{
  if (EVP_DigestUpdate(s->sha512, buf, len) != 1)
    return verr_set(err, VERR_INTERNAL, "OpenSSL failed to hash %zu bytes for Ed25519", len);
  return 0;
}

int ed25519_stream_final(struct ed25519_stream *s, bool *valid, struct verr *err)
{
  *valid = false;
  unsigned char h[64];
  unsigned h_len = 0;
  if (EVP_DigestFinal_ex(s->sha512, h, &h_len) != 1 || h_len != sizeof h)
    return verr_set(err, VERR_INTERNAL, "OpenSSL failed to finish SHA-512 for Ed25519");
  struct ed_math m;
  int ok = ed_math_init(&m) ? check_equation(&m, s->sig, s->key, h) : -1;
  ed_math_free(&m);
  if (ok == -1)
    return verr_set(err, VERR_NOMEM, "OpenSSL big-number arithmetic failed while checking "
                    "the Ed25519 signature (out of memory?)");
  *valid = ok == 1;
  return 0;
}

void ed25519_stream_free(struct ed25519_stream *s)
{
  if (s == NULL)
    return;
  EVP_MD_CTX_free(s->sha512);
  free(s);
}
