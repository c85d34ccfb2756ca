/* vimport trust: the signature tap. See trust.h for the contract.
 *
 * One vreader filter in the nbdkit shape, like pkg/digest's tap: a state struct, a read
 * that passes the lower reader's bytes through and feeds them to the verifier, a close
 * that frees everything, and the ops table at the bottom. All configuration work (key,
 * certificate chain, signature file) happens in signature_tap_new, before the first
 * image byte; the final check happens in signature_tap_final.
 *
 * The verifier is OpenSSL's EVP_DigestVerify for RSA, ECDSA and DSA, and the streaming
 * Ed25519 check of ed25519.c for Ed25519 (OpenSSL's one is one-shot only).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "core/base64.h"
#include "core/cleanup.h"
#include "internal.h"
#include "trust.h"

struct signature_tap {
  struct vreader *lower;     /* owned */
  struct trust_key key;      /* owned */
  EVP_MD_CTX *ctx;           /* owned; RSA, ECDSA, DSA */
  struct ed25519_stream *ed; /* owned; Ed25519 */
  unsigned char *sig;        /* owned, decoded signature */
  size_t sig_len;
  char where[1024];          /* the signature's path or redacted URL */
  char hash[16];             /* "sha256", "" for Ed25519 */
  char scheme[24];           /* " PKCS#1 v1.5", " PSS", "" */
  uint64_t bytes;
  bool finished;
};

/* ---- signature files ---- */

int signature_format_parse(const char *name, enum signature_format *out, struct verr *err)
{
  static const struct {
    const char *name;
    enum signature_format format;
  } names[] = {
    { "auto", SIGNATURE_FORMAT_AUTO },
    { "der", SIGNATURE_FORMAT_DER },
    { "base64", SIGNATURE_FORMAT_BASE64 },
    { "glance", SIGNATURE_FORMAT_GLANCE },
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(name, names[i].name) == 0) {
      *out = names[i].format;
      return 0;
    }
  return verr_set(err, VERR_USAGE, "signature format \"%.32s\" is not one of der, base64, "
                  "glance", name);
}

/* Decode base64, skipping whitespace; '=' only as padding at the end. Returns the
 * decoded length, or -1 if `in` is not base64 text. `out` holds at least len*3/4+3. */
static ssize_t base64_decode(const char *in, size_t len, unsigned char *out)
{
  size_t o = 0, digits = 0, pad = 0;
  uint32_t acc = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)in[i];
    if (isspace(c))
      continue;
    if (c == '=') {
      pad++;
      continue;
    }
    int v = base64_digit_value(c);
    if (v < 0 || pad > 0)
      return -1;
    acc = acc << 6 | (uint32_t)v;
    if (++digits % 4 == 0) {
      out[o++] = (unsigned char)(acc >> 16);
      out[o++] = (unsigned char)(acc >> 8);
      out[o++] = (unsigned char)acc;
    }
  }
  size_t tail = digits % 4;
  if (digits == 0 || tail == 1 || pad > 2 || (pad > 0 && (tail + pad) % 4 != 0))
    return -1;
  if (tail == 2)
    out[o++] = (unsigned char)(acc >> 4);
  if (tail == 3) {
    out[o++] = (unsigned char)(acc >> 10);
    out[o++] = (unsigned char)(acc >> 2);
  }
  return (ssize_t)o;
}

static int read_signature_bytes(const struct signature_opts *opts, struct signature_tap *t,
                                char **text, size_t *len, struct verr *err)
{
  if ((opts->signature_path == NULL) == (opts->signature_url == NULL))
    return verr_set(err, VERR_USAGE, "give the signature as exactly one of path (a mounted "
                    "file) or url");
  if (opts->signature_path != NULL) {
    snprintf(t->where, sizeof t->where, "%s", opts->signature_path);
    return trust_read_file(opts->signature_path, SIGNATURE_FILE_MAX_BYTES, "signature", text,
                           len, err);
  }
  verr_redact_url(opts->signature_url, t->where, sizeof t->where);
  struct source_opts fetch = { 0 };
  if (opts->fetch != NULL)
    fetch = *opts->fetch;
  fetch.url = opts->signature_url;
  return trust_fetch_all(&fetch, SIGNATURE_FILE_MAX_BYTES, "signature", text, len, err);
}

/* Decode per the format into t->sig. */
static int decode_signature(struct signature_tap *t, enum signature_format format,
                            const char *text, size_t len, struct verr *err)
{
  t->sig = malloc(len / 4 * 3 + 4);
  if (t->sig == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory decoding the signature");
  ssize_t n = format == SIGNATURE_FORMAT_DER ? -1 : base64_decode(text, len, t->sig);
  if (n < 0 && format != SIGNATURE_FORMAT_AUTO && format != SIGNATURE_FORMAT_DER)
    return verr_set(err, VERR_FORMAT, "the signature %s is not base64 text; if it holds the "
                    "raw bytes written by openssl, set format: der", t->where);
  if (n >= 0) {
    t->sig_len = (size_t)n;
    return 0;
  }
  if (len == 0)
    return verr_set(err, VERR_FORMAT, "the signature %s is empty", t->where);
  free(t->sig);
  t->sig = malloc(len);
  if (t->sig == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory reading the signature");
  memcpy(t->sig, text, len);
  t->sig_len = len;
  return 0;
}

static int load_signature(const struct signature_opts *opts, struct signature_tap *t,
                          struct verr *err)
{
  CLEANUP_FREE char *text = NULL;
  size_t len = 0;
  if (read_signature_bytes(opts, t, &text, &len, err) == -1)
    return -1;
  return decode_signature(t, opts->format, text, len, err);
}

/* ---- the verifier ---- */

/* cursive verifies RSA-PSS with salt_length=PSS.MAX_LENGTH, which pyca/cryptography
 * turns into exactly emLen - hLen - 2 (emLen = ceil((modBits - 1) / 8)), not "any". */
static int glance_pss_salt(EVP_PKEY *pkey, const EVP_MD *md)
{
  int em_len = (EVP_PKEY_get_bits(pkey) + 6) / 8;
  return em_len - EVP_MD_get_size(md) - 2;
}

static int set_rsa_padding(EVP_PKEY_CTX *pctx, EVP_PKEY *pkey, const EVP_MD *md,
                           enum trust_key_kind kind, bool glance)
{
  if (kind == TRUST_KEY_RSA_PKCS1)
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
  if (kind != TRUST_KEY_RSA_PSS)
    return 1;
  int salt = glance ? glance_pss_salt(pkey, md) : RSA_PSS_SALTLEN_AUTO;
  return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) > 0 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt) > 0;
}

static int start_evp(struct signature_tap *t, enum trust_key_kind kind, bool glance,
                     struct verr *err)
{
  const EVP_MD *md = EVP_get_digestbyname(t->hash);
  EVP_PKEY_CTX *pctx = NULL;
  t->ctx = EVP_MD_CTX_new();
  if (t->ctx == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory starting signature verification");
  if (md == NULL || EVP_DigestVerifyInit(t->ctx, &pctx, md, NULL, t->key.pkey) != 1 ||
      !set_rsa_padding(pctx, t->key.pkey, md, kind, glance)) {
    ERR_clear_error();
    return verr_set(err, VERR_USAGE, "OpenSSL cannot verify %s signatures with %s%s; pick "
                    "another hashMethod or keyType", t->key.description, t->hash, t->scheme);
  }
  return 0;
}

static int start_verifier(struct signature_tap *t, const struct signature_opts *opts,
                          struct verr *err)
{
  bool glance = opts->format == SIGNATURE_FORMAT_GLANCE;
  struct trust_key_type want;
  enum trust_key_kind kind;
  if (trust_key_type_parse(opts->key_type, glance, &want, err) == -1 ||
      trust_hash_parse(opts->hash_method, glance, t->hash, sizeof t->hash, err) == -1 ||
      trust_key_load(opts, &t->key, err) == -1 ||
      trust_key_check(&t->key, &want, &kind, err) == -1)
    return -1;
  if (kind == TRUST_KEY_ED25519) {
    if (t->hash[0] != '\0')
      return verr_set(err, VERR_USAGE, "an Ed25519 signature covers the image itself, not a "
                      "%s digest of it; drop hashMethod", t->hash);
    return ed25519_stream_new(t->key.pkey, t->sig, t->sig_len, &t->ed, err);
  }
  if (t->hash[0] == '\0')
    snprintf(t->hash, sizeof t->hash, "sha256");
  if (kind == TRUST_KEY_RSA_PKCS1 || kind == TRUST_KEY_RSA_PSS)
    snprintf(t->scheme, sizeof t->scheme, "%s",
             kind == TRUST_KEY_RSA_PSS ? " PSS" : " PKCS#1 v1.5");
  return start_evp(t, kind, glance, err);
}

/* ---- the tap ---- */

static const struct vreader_ops signature_tap_ops;

static int feed(struct signature_tap *t, const void *buf, size_t len, struct verr *err)
{
  if (t->ed != NULL)
    return ed25519_stream_update(t->ed, buf, len, err);
  if (EVP_DigestVerifyUpdate(t->ctx, buf, len) != 1)
    return verr_set(err, VERR_INTERNAL, "OpenSSL failed to hash %zu bytes for the signature",
                    len);
  return 0;
}

static int signature_tap_check_open(const struct signature_tap *t, struct verr *err)
{
  if (t->finished)
    return verr_set(err, VERR_INTERNAL, "read after the signature was checked: those bytes "
                    "would not be covered (a bug)");
  return 0;
}

static ssize_t signature_tap_take(struct signature_tap *t, const void *p, ssize_t n,
                                  struct verr *err)
{
  if (n <= 0)
    return n;
  if (feed(t, p, (size_t)n, err) == -1)
    return -1;
  t->bytes += (uint64_t)n;
  return n;
}

static ssize_t signature_tap_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct signature_tap *t = r->state;
  if (signature_tap_check_open(t, err) < 0)
    return -1;
  return signature_tap_take(t, buf, t->lower->ops->read(t->lower, buf, len, err), err);
}

static ssize_t signature_tap_view(struct vreader *r, const void **view, size_t len,
                                  void *scratch, struct verr *err)
{
  struct signature_tap *t = r->state;
  if (signature_tap_check_open(t, err) < 0)
    return -1;
  ssize_t n = vreader_view(t->lower, view, len, scratch, err);
  return signature_tap_take(t, n > 0 ? *view : NULL, n, err);
}

static void signature_tap_free(struct signature_tap *t)
{
  vreader_close(t->lower);
  trust_key_clear(&t->key);
  EVP_MD_CTX_free(t->ctx);
  ed25519_stream_free(t->ed);
  free(t->sig);
  free(t);
}

static void signature_tap_close(struct vreader *r)
{
  if (r->state != NULL)
    signature_tap_free(r->state);
  free(r);
}

static const struct vreader_ops signature_tap_ops = {
  .name  = "signature",
  .read  = signature_tap_read,
  .view  = signature_tap_view,
  .close = signature_tap_close,
};

int signature_tap_new(struct vreader *lower, const struct signature_opts *opts,
                      struct vreader **out, struct verr *err)
{
  *out = NULL;
  CLEANUP_FREE struct vreader *r = calloc(1, sizeof *r);
  struct signature_tap *t = calloc(1, sizeof *t);
  if (r == NULL || t == NULL) {
    free(t);
    vreader_close(lower);
    return verr_set(err, VERR_NOMEM, "out of memory creating the signature check");
  }
  t->lower = lower;
  r->ops = &signature_tap_ops;
  r->state = t;
  if (load_signature(opts, t, err) == -1 || start_verifier(t, opts, err) == -1) {
    signature_tap_close(TAKE_PTR(r));
    return verr_prefix(err, "signature check");
  }
  *out = TAKE_PTR(r);
  return 0;
}

static int mismatch(struct signature_tap *t, struct verr *err)
{
  /* The earliest error is the cause ("bad signature", "block type is not 01"); the last
   * one is only the layer that passed it up ("RSA lib"), which tells the user nothing. */
  unsigned long e = ERR_peek_error();
  const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  return verr_set(err, VERR_VERIFY, "checksum mismatch: the signature does not match the "
                  "image: %s was not made "
                  "by %s%s%s%s (key %s) over these %llu bytes%s%s; the image or the signature "
                  "was changed, or it was made with another key or hash",
                  t->where, t->key.description, t->scheme, t->key.subject[0] ? ", " : "",
                  t->key.subject, t->key.fingerprint, (unsigned long long)t->bytes,
                  why != NULL ? ": OpenSSL says " : "", why != NULL ? why : "");
}

static void fill_result(const struct signature_tap *t, struct signature_result *res)
{
  snprintf(res->key_type, sizeof res->key_type, "%s%s", t->key.description, t->scheme);
  snprintf(res->hash, sizeof res->hash, "%s", t->ed != NULL ? "" : t->hash);
  snprintf(res->key_fingerprint, sizeof res->key_fingerprint, "%s", t->key.fingerprint);
  snprintf(res->subject, sizeof res->subject, "%s", t->key.subject);
  res->bytes = t->bytes;
  res->verified = true;
}

int signature_tap_final(struct vreader *tap, struct signature_result *res, struct verr *err)
{
  memset(res, 0, sizeof *res);
  if (tap == NULL || tap->ops != &signature_tap_ops)
    return verr_set(err, VERR_INTERNAL, "signature_tap_final called on a reader that is not "
                    "a signature tap (a bug)");
  struct signature_tap *t = tap->state;
  if (t->finished)
    return verr_set(err, VERR_INTERNAL, "the signature was already checked (a bug)");
  t->finished = true;
  bool valid = false;
  if (t->ed != NULL) {
    if (ed25519_stream_final(t->ed, &valid, err) == -1)
      return -1;
  } else {
    ERR_clear_error();
    valid = EVP_DigestVerifyFinal(t->ctx, t->sig, t->sig_len) == 1;
  }
  if (!valid)
    return mismatch(t, err);
  ERR_clear_error();
  fill_result(t, res);
  return 0;
}

uint64_t signature_tap_bytes(const struct vreader *tap)
{
  if (tap == NULL || tap->ops != &signature_tap_ops)
    return 0;
  const struct signature_tap *t = tap->state;
  return t->bytes;
}

/* ---- buffers ---- */

struct buffer_reader {
  const unsigned char *data;
  size_t len, pos;
};

static ssize_t buffer_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  (void)err;
  struct buffer_reader *b = r->state;
  size_t n = b->len - b->pos < len ? b->len - b->pos : len;
  memcpy(buf, b->data + b->pos, n);
  b->pos += n;
  return (ssize_t)n;
}

static void buffer_close(struct vreader *r)
{
  free(r->state);
  free(r);
}

static const struct vreader_ops buffer_ops = {
  .name  = "buffer",
  .read  = buffer_read,
  .close = buffer_close,
};

int signature_verify_buffer(const struct signature_opts *opts, const void *data,
                            size_t len, struct signature_result *res, struct verr *err)
{
  memset(res, 0, sizeof *res);
  struct vreader *r = calloc(1, sizeof *r);
  struct buffer_reader *b = calloc(1, sizeof *b);
  if (r == NULL || b == NULL) {
    free(r);
    free(b);
    return verr_set(err, VERR_NOMEM, "out of memory verifying a signature");
  }
  *b = (struct buffer_reader){ .data = data, .len = len };
  *r = (struct vreader){ .ops = &buffer_ops, .state = b };
  struct vreader *tap = NULL;
  if (signature_tap_new(r, opts, &tap, err) == -1)
    return -1;
  unsigned char chunk[16384];
  ssize_t n;
  while ((n = tap->ops->read(tap, chunk, sizeof chunk, err)) > 0)
    ;
  int rc = n < 0 ? -1 : signature_tap_final(tap, res, err);
  vreader_close(tap);
  return rc;
}
