/* Unit tests for pkg/trust's streaming Ed25519 verifier.
 *
 * Compared with OpenSSL's one-shot verifier on random keys, messages and corruptions
 * (flipped signature bits, flipped message bits, S + L malleation), and checked against
 * an RFC 8032 test vector.
 */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "trust/internal.h"

TestSuite(ed25519, .timeout = 120);

/* ---- streaming Ed25519 against OpenSSL's one-shot verifier ---------------------------- */

static int openssl_verdict(EVP_PKEY *key, const unsigned char *sig, const unsigned char *msg,
                           size_t len)
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  cr_assert(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1);
  int ok = EVP_DigestVerify(ctx, sig, 64, msg, len) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

static int stream_verdict(EVP_PKEY *key, const unsigned char *sig, const unsigned char *msg,
                          size_t len)
{
  struct ed25519_stream *s = NULL;
  struct verr err;
  cr_assert_eq(ed25519_stream_new(key, sig, 64, &s, &err), 0, "%s", err.message);
  for (size_t at = 0; at < len;) {
    size_t n = 1 + (size_t)(rand() % 700);
    if (n > len - at)
      n = len - at;
    cr_assert_eq(ed25519_stream_update(s, msg + at, n, &err), 0);
    at += n;
  }
  bool valid = false;
  cr_assert_eq(ed25519_stream_final(s, &valid, &err), 0, "%s", err.message);
  ed25519_stream_free(s);
  return valid;
}

/* S + L: the same signature, malleated; both must refuse it (S must be below L). */
static void add_group_order(unsigned char *sig)
{
  static const unsigned char L[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
  };
  unsigned carry = 0;
  for (int i = 0; i < 32; i++) {
    unsigned v = sig[32 + i] + L[i] + carry;
    sig[32 + i] = (unsigned char)v;
    carry = v >> 8;
  }
}

Test(ed25519, matches_openssl)
{
  srand(12345);
  for (int round = 0; round < 24; round++) {
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    cr_assert_not_null(key);
    size_t len = round == 0 ? 0 : (size_t)(rand() % 5000);
    unsigned char *msg = malloc(len + 1);
    RAND_bytes(msg, (int)len + 1);
    unsigned char sig[64];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    cr_assert(EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1);
    cr_assert(EVP_DigestSign(ctx, sig, &sig_len, msg, len) == 1);
    EVP_MD_CTX_free(ctx);

    cr_expect(stream_verdict(key, sig, msg, len), "round %d: a good signature failed", round);
    unsigned char bad[64];
    memcpy(bad, sig, 64);
    bad[rand() % 64] ^= (unsigned char)(1u << (rand() % 8));
    cr_expect_eq(stream_verdict(key, bad, msg, len), openssl_verdict(key, bad, msg, len),
                 "round %d: verdicts differ on a flipped signature bit", round);
    cr_expect(!stream_verdict(key, bad, msg, len), "round %d", round);
    if (len > 0) {
      msg[rand() % len] ^= 0x80;
      cr_expect(!stream_verdict(key, sig, msg, len), "round %d: flipped message verified",
                round);
    }
    memcpy(bad, sig, 64);
    add_group_order(bad);
    cr_expect(!openssl_verdict(key, bad, msg, len));
    cr_expect(!stream_verdict(key, bad, msg, len), "round %d: S + L accepted", round);
    free(msg);
    EVP_PKEY_free(key);
  }
}

/* RFC 8032 7.1, TEST 2 (one byte 0x72). */
Test(ed25519, rfc8032_vector)
{
  static const unsigned char pub[32] = {
    0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc,
    0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c,
  };
  static const unsigned char sig[64] = {
    0x92, 0xa0, 0x09, 0xa9, 0xf0, 0xd4, 0xca, 0xb8, 0x72, 0x0e, 0x82, 0x0b, 0x5f, 0x64, 0x25, 0x40,
    0xa2, 0xb2, 0x7b, 0x54, 0x16, 0x50, 0x3f, 0x8f, 0xb3, 0x76, 0x22, 0x23, 0xeb, 0xdb, 0x69, 0xda,
    0x08, 0x5a, 0xc1, 0xe4, 0x3e, 0x15, 0x99, 0x6e, 0x45, 0x8f, 0x36, 0x13, 0xd0, 0xf1, 0x1d, 0x8c,
    0x38, 0x7b, 0x2e, 0xae, 0xb4, 0x30, 0x2a, 0xee, 0xb0, 0x0d, 0x29, 0x16, 0x12, 0xbb, 0x0c, 0x00,
  };
  unsigned char msg[1] = { 0x72 };
  EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof pub);
  cr_assert_not_null(key);
  cr_expect(stream_verdict(key, sig, msg, 1));
  msg[0] = 0x73;
  cr_expect(!stream_verdict(key, sig, msg, 1));
  EVP_PKEY_free(key);
}
