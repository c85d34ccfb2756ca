/* vimport digest: see digest.h for the contract.
 *
 * The tap is one vreader filter in the nbdkit shape: a state struct, a read that passes
 * the lower reader's bytes through and hashes them, a close that frees everything, and
 * the ops table at the bottom. The checksum helpers are plain string functions.
 */
#include "digest.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/cleanup.h"

static const struct {
  const char *name;
  size_t hex_length;
} checksum_algorithms[] = {
  { "md5", 32 },
  { "sha1", 40 },
  { "sha256", 64 },
  { "sha512", 128 },
};

#define ACCEPTED_FORMS "md5:<32 hex digits>, sha1:<40>, sha256:<64> or sha512:<128>"

size_t checksum_hex_length(const char *algorithm)
{
  for (size_t i = 0; i < sizeof checksum_algorithms / sizeof checksum_algorithms[0]; i++)
    if (strcmp(algorithm, checksum_algorithms[i].name) == 0)
      return checksum_algorithms[i].hex_length;
  return 0;
}

static bool all_hex(const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (!isxdigit((unsigned char)s[i]))
      return false;
  return true;
}

static void copy_lowercase(char *out, const char *in, size_t len)
{
  for (size_t i = 0; i < len; i++)
    out[i] = (char)tolower((unsigned char)in[i]);
  out[len] = '\0';
}

int checksum_parse(const char *s, struct checksum *out, struct verr *err)
{
  const char *colon = strchr(s, ':');
  if (colon == NULL)
    return verr_set(err, VERR_USAGE,
                    "checksum has no algorithm prefix: write it as %s", ACCEPTED_FORMS);

  size_t alg_len = (size_t)(colon - s);
  if (alg_len == 0 || alg_len >= sizeof out->algorithm)
    return verr_set(err, VERR_USAGE, "checksum algorithm is not one of md5, sha1, sha256, "
                    "sha512: write the checksum as %s", ACCEPTED_FORMS);
  copy_lowercase(out->algorithm, s, alg_len);

  size_t want = checksum_hex_length(out->algorithm);
  if (want == 0)
    return verr_set(err, VERR_USAGE, "checksum algorithm \"%s\" is not one of md5, sha1, "
                    "sha256, sha512: write the checksum as %s", out->algorithm, ACCEPTED_FORMS);

  const char *hex = colon + 1;
  size_t hex_len = strlen(hex);
  if (hex_len != want || !all_hex(hex, hex_len))
    return verr_set(err, VERR_USAGE, "%s checksum must be exactly %zu hex digits after "
                    "\"%s:\" (got %zu characters%s): accepted forms are %s",
                    out->algorithm, want, out->algorithm, hex_len,
                    all_hex(hex, hex_len) ? "" : ", not all hex digits", ACCEPTED_FORMS);
  copy_lowercase(out->hex, hex, hex_len);
  return 0;
}

int checksum_format(const struct checksum *c, char *out, size_t out_size, struct verr *err)
{
  int n = snprintf(out, out_size, "%s:%s", c->algorithm, c->hex);
  if (n < 0 || (size_t)n >= out_size)
    return verr_set(err, VERR_INTERNAL, "checksum buffer of %zu bytes is too small for "
                    "%s (a bug: use CHECKSUM_STRING_MAX)", out_size, c->algorithm);
  return 0;
}

int checksum_compare(const struct checksum *expected, const char *calculated, struct verr *err)
{
  struct checksum got;
  struct verr why;
  if (checksum_parse(calculated, &got, &why) == -1)
    return verr_set(err, VERR_INTERNAL, "calculated checksum is malformed (a bug): %s",
                    why.message);
  if (strcmp(got.algorithm, expected->algorithm) != 0)
    return verr_set(err, VERR_INTERNAL, "calculated a %s checksum but the expected one is "
                    "%s (a bug: the digest tap must use the expected algorithm)",
                    got.algorithm, expected->algorithm);
  if (strcmp(got.hex, expected->hex) != 0)
    return verr_set(err, VERR_CHECKSUM, "checksum mismatch: expected %s:%s, calculated %s:%s",
                    expected->algorithm, expected->hex, got.algorithm, got.hex);
  return 0;
}

/* ---- the digest tap ---- */

struct digest_tap {
  struct vreader *lower; /* owned */
  EVP_MD_CTX *ctx;       /* owned */
  char algorithm[CHECKSUM_ALG_MAX];
  uint64_t bytes;
  bool finished; /* digest_tap_final ran: later bytes cannot be hashed */
};

static const struct vreader_ops digest_tap_ops;

static ssize_t digest_tap_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct digest_tap *t = r->state;
  if (t->finished)
    return verr_set(err, VERR_INTERNAL, "read after the source digest was finished: those "
                    "bytes would not be checked (a bug)");
  ssize_t n = t->lower->ops->read(t->lower, buf, len, err);
  if (n <= 0)
    return n;
  if (EVP_DigestUpdate(t->ctx, buf, (size_t)n) != 1)
    return verr_set(err, VERR_INTERNAL, "OpenSSL failed to hash %zd source bytes with %s",
                    n, t->algorithm);
  t->bytes += (uint64_t)n;
  return n;
}

static void digest_tap_close(struct vreader *r)
{
  struct digest_tap *t = r->state;
  if (t != NULL) {
    vreader_close(t->lower);
    EVP_MD_CTX_free(t->ctx);
    free(t);
  }
  free(r);
}

static const struct vreader_ops digest_tap_ops = {
  .name  = "digest",
  .read  = digest_tap_read,
  .close = digest_tap_close,
};

static int digest_tap_start(struct digest_tap *t, const char *algorithm, struct verr *err)
{
  const EVP_MD *md = EVP_get_digestbyname(algorithm);
  t->ctx = EVP_MD_CTX_new();
  if (t->ctx == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory creating the %s source digest", algorithm);
  if (md == NULL || EVP_DigestInit_ex(t->ctx, md, NULL) != 1)
    return verr_set(err, VERR_INTERNAL, "OpenSSL cannot compute %s here (a FIPS-only "
                    "OpenSSL refuses md5 and sha1): use a sha256 or sha512 checksum",
                    algorithm);
  snprintf(t->algorithm, sizeof t->algorithm, "%s", algorithm);
  return 0;
}

int digest_tap_new(struct vreader *lower, const char *algorithm, struct vreader **out,
                   struct verr *err)
{
  *out = NULL;
  if (checksum_hex_length(algorithm) == 0) {
    vreader_close(lower);
    return verr_set(err, VERR_USAGE, "source digest algorithm \"%s\" is not one of md5, "
                    "sha1, sha256, sha512: pick one of those", algorithm);
  }
  CLEANUP_FREE struct vreader *r = calloc(1, sizeof *r);
  struct digest_tap *t = calloc(1, sizeof *t);
  if (r == NULL || t == NULL) {
    free(t);
    vreader_close(lower);
    return verr_set(err, VERR_NOMEM, "out of memory creating the source digest");
  }
  t->lower = lower;
  r->ops = &digest_tap_ops;
  r->state = t;
  if (digest_tap_start(t, algorithm, err) == -1) {
    digest_tap_close(TAKE_PTR(r));
    return -1;
  }
  *out = TAKE_PTR(r);
  return 0;
}

int digest_tap_final(struct vreader *tap, char *out, size_t out_size, struct verr *err)
{
  if (tap == NULL || tap->ops != &digest_tap_ops)
    return verr_set(err, VERR_INTERNAL, "digest_tap_final called on a reader that is not "
                    "a digest tap (a bug)");
  struct digest_tap *t = tap->state;
  if (t->finished)
    return verr_set(err, VERR_INTERNAL, "the source digest was already finished (a bug)");

  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned md_len = 0;
  t->finished = true;
  if (EVP_DigestFinal_ex(t->ctx, md, &md_len) != 1)
    return verr_set(err, VERR_INTERNAL, "OpenSSL failed to finish the %s source digest",
                    t->algorithm);

  struct checksum c;
  snprintf(c.algorithm, sizeof c.algorithm, "%s", t->algorithm);
  for (unsigned i = 0; i < md_len; i++)
    snprintf(c.hex + 2 * i, 3, "%02x", md[i]);
  c.hex[2 * md_len] = '\0';
  return checksum_format(&c, out, out_size, err);
}

uint64_t digest_tap_bytes(const struct vreader *tap)
{
  if (tap == NULL || tap->ops != &digest_tap_ops)
    return 0;
  const struct digest_tap *t = tap->state;
  return t->bytes;
}
