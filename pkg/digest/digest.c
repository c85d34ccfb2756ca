/* vimport digest: see digest.h for the contract.
 *
 * The tap is one vreader filter in the nbdkit shape: a state struct, a read that passes
 * the lower reader's bytes through and queues them for its hashing thread, a close that
 * stops the thread and frees everything, and the ops table at the bottom. The checksum
 * helpers are plain string functions.
 */
#include "digest.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/cleanup.h"
#include "source/ring.h"
#include "source/source.h"

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

int checksum_from_md(const char *algorithm, const unsigned char *md, unsigned md_len, char *out,
                     size_t out_size, struct verr *err)
{
  struct checksum c;
  if (2 * (size_t)md_len >= sizeof c.hex)
    return verr_set(err, VERR_INTERNAL, "a %u-byte digest is too long (a bug)", md_len);
  snprintf(c.algorithm, sizeof c.algorithm, "%s", algorithm);
  for (unsigned i = 0; i < md_len; i++)
    snprintf(c.hex + 2 * i, 3, "%02x", md[i]);
  c.hex[2 * md_len] = '\0';
  return checksum_format(&c, out, out_size, err);
}

/* ---- the digest tap ---- */

/* The tap hashes on its own thread so that hashing the source overlaps decoding and
 * writing: on a 2-core pod SHA-256 of the source is the largest single cost of a raw
 * import. read() copies what it passes up into a ring of slots (the caller's buffer is
 * reused as soon as read() returns); the hasher takes full slots in order. A copy costs
 * a small fraction of hashing the same bytes. Memory: DIGEST_TAP_SLOTS * DIGEST_TAP_SLOT. */
#define DIGEST_TAP_SLOT (512u << 10)
#define DIGEST_TAP_SLOTS 8

struct digest_slot {
  unsigned char *buf; /* DIGEST_TAP_SLOT bytes, owned */
  size_t len;
};

struct digest_tap {
  struct vreader *lower; /* owned */
  struct ring *ring;     /* the source's ring, read in place; NULL: copy into slots */
  const EVP_MD *md;
  EVP_MD_CTX *ctx;       /* owned; the hasher thread's alone while it runs */
  char algorithm[CHECKSUM_ALG_MAX];
  uint64_t bytes;
  bool finished; /* digest_tap_final ran: later bytes cannot be hashed */

  struct digest_slot slots[DIGEST_TAP_SLOTS];
  /* Counters only grow; the slot of counter c is slots[c % DIGEST_TAP_SLOTS]. */
  uint64_t submitted; /* slots handed to the hasher; slots[submitted % N] is filling */
  uint64_t hashed;    /* slots the hasher finished */
  pthread_mutex_t lock;
  pthread_cond_t work_ready; /* submitted advanced, or stopping */
  pthread_cond_t work_done;  /* hashed advanced */
  bool stopping;
  bool hash_failed; /* EVP_DigestUpdate failed on the hasher thread */
  bool thread_started;
  pthread_t thread;
};

static const struct vreader_ops digest_tap_ops;

static void *digest_tap_hasher(void *arg)
{
  struct digest_tap *t = arg;
  pthread_mutex_lock(&t->lock);
  for (;;) {
    while (!t->stopping && t->hashed == t->submitted)
      pthread_cond_wait(&t->work_ready, &t->lock);
    if (t->hashed == t->submitted)
      break; /* stopping and nothing left */
    struct digest_slot *s = &t->slots[t->hashed % DIGEST_TAP_SLOTS];
    pthread_mutex_unlock(&t->lock);
    bool ok = EVP_DigestUpdate(t->ctx, s->buf, s->len) == 1;
    pthread_mutex_lock(&t->lock);
    if (!ok)
      t->hash_failed = true;
    t->hashed++;
    pthread_cond_signal(&t->work_done);
  }
  pthread_mutex_unlock(&t->lock);
  return NULL;
}

/* The hasher of a source that lends its ring: the ring's second consumer, hashing the
 * bytes where they lie (runs of zeros from the ring's zeros), no copy. A rewind means the
 * transfer started over from byte 0 before the reader took any: hash from scratch. */
static void *digest_tap_ring_hasher(void *arg)
{
  struct digest_tap *t = arg;
  bool ok = true;
  for (;;) {
    size_t at = 0;
    ssize_t n = ring_second_claim(t->ring, &at);
    if (n == RING_REWOUND) {
      ok = EVP_DigestInit_ex(t->ctx, t->md, NULL) == 1;
      continue;
    }
    if (n <= 0)
      break;
    for (size_t done = 0, len; ok && done < (size_t)n; done += len) {
      const void *p;
      len = ring_run(t->ring, at + done, (size_t)n - done, &p);
      ok = EVP_DigestUpdate(t->ctx, p, len) == 1;
    }
    ring_second_release(t->ring, (size_t)n); /* even after a failure: never block the ring */
  }
  t->hash_failed = !ok;
  return NULL;
}

/* Hand the filling slot to the hasher and wait until the next one is free. */
static void digest_tap_submit(struct digest_tap *t)
{
  pthread_mutex_lock(&t->lock);
  t->submitted++;
  pthread_cond_signal(&t->work_ready);
  while (t->submitted - t->hashed >= DIGEST_TAP_SLOTS)
    pthread_cond_wait(&t->work_done, &t->lock);
  pthread_mutex_unlock(&t->lock);
  t->slots[t->submitted % DIGEST_TAP_SLOTS].len = 0;
}

static void digest_tap_feed(struct digest_tap *t, const unsigned char *p, size_t len)
{
  while (len > 0) {
    struct digest_slot *s = &t->slots[t->submitted % DIGEST_TAP_SLOTS];
    size_t n = DIGEST_TAP_SLOT - s->len < len ? DIGEST_TAP_SLOT - s->len : len;
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    p += n;
    len -= n;
    if (s->len == DIGEST_TAP_SLOT)
      digest_tap_submit(t);
  }
}

/* Submit the partly filled slot, wait for the hasher to finish everything, stop it. */
static bool digest_tap_drain(struct digest_tap *t)
{
  if (!t->thread_started)
    return false;
  if (t->ring != NULL) { /* the hasher stops at the ring's end */
    pthread_join(t->thread, NULL);
    t->thread_started = false;
    return !t->hash_failed;
  }
  if (t->slots[t->submitted % DIGEST_TAP_SLOTS].len > 0)
    digest_tap_submit(t);
  pthread_mutex_lock(&t->lock);
  t->stopping = true;
  pthread_cond_signal(&t->work_ready);
  pthread_mutex_unlock(&t->lock);
  pthread_join(t->thread, NULL);
  t->thread_started = false;
  return !t->hash_failed;
}

static int digest_tap_check_open(const struct digest_tap *t, struct verr *err)
{
  if (t->finished)
    return verr_set(err, VERR_INTERNAL, "read after the source digest was finished: those "
                    "bytes would not be checked (a bug)");
  return 0;
}

static ssize_t digest_tap_take(struct digest_tap *t, const void *p, ssize_t n)
{
  if (n > 0) {
    if (t->ring == NULL && t->md != NULL)
      digest_tap_feed(t, p, (size_t)n);
    t->bytes += (uint64_t)n;
  }
  return n;
}

static ssize_t digest_tap_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct digest_tap *t = r->state;
  if (digest_tap_check_open(t, err) < 0)
    return -1;
  return digest_tap_take(t, buf, t->lower->ops->read(t->lower, buf, len, err));
}

static ssize_t digest_tap_view(struct vreader *r, const void **view, size_t len, void *scratch,
                               struct verr *err)
{
  struct digest_tap *t = r->state;
  if (digest_tap_check_open(t, err) < 0)
    return -1;
  ssize_t n = vreader_view(t->lower, view, len, scratch, err);
  return digest_tap_take(t, n > 0 ? *view : NULL, n);
}

static void digest_tap_close(struct vreader *r)
{
  struct digest_tap *t = r->state;
  if (t != NULL) {
    if (t->thread_started && t->ring != NULL) {
      ring_second_detach(t->ring);
      pthread_join(t->thread, NULL);
    } else if (t->thread_started) {
      pthread_mutex_lock(&t->lock);
      t->stopping = true;
      pthread_cond_signal(&t->work_ready);
      pthread_mutex_unlock(&t->lock);
      pthread_join(t->thread, NULL);
    }
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->work_ready);
    pthread_cond_destroy(&t->work_done);
    for (size_t i = 0; i < DIGEST_TAP_SLOTS; i++)
      free(t->slots[i].buf);
    vreader_close(t->lower);
    EVP_MD_CTX_free(t->ctx);
    free(t);
  }
  free(r);
}

static const struct vreader_ops digest_tap_ops = {
  .name  = "digest",
  .read  = digest_tap_read,
  .view  = digest_tap_view,
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
  t->md = md;
  if (t->ring != NULL) {
    int r = pthread_create(&t->thread, NULL, digest_tap_ring_hasher, t);
    if (r != 0)
      return verr_sys(err, VERR_NOMEM, r, "cannot start the %s source digest thread", algorithm);
    t->thread_started = true;
    return 0;
  }
  for (size_t i = 0; i < DIGEST_TAP_SLOTS; i++)
    if ((t->slots[i].buf = malloc(DIGEST_TAP_SLOT)) == NULL)
      return verr_set(err, VERR_NOMEM, "out of memory creating the %s source digest", algorithm);
  int r = pthread_create(&t->thread, NULL, digest_tap_hasher, t);
  if (r != 0)
    return verr_sys(err, VERR_NOMEM, r, "cannot start the %s source digest thread", algorithm);
  t->thread_started = true;
  return 0;
}

static int digest_tap_make(struct vreader *lower, struct ring *ring, const char *algorithm,
                           struct vreader **out, struct verr *err)
{
  *out = NULL;
  if (algorithm != NULL && checksum_hex_length(algorithm) == 0) {
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
  t->ring = algorithm != NULL ? ring : NULL;
  if (algorithm == NULL && ring != NULL)
    ring_second_detach(ring); /* lent for a digest nobody asked for: never wait for it */
  pthread_mutex_init(&t->lock, NULL);
  pthread_cond_init(&t->work_ready, NULL);
  pthread_cond_init(&t->work_done, NULL);
  r->ops = &digest_tap_ops;
  r->state = t;
  if (algorithm != NULL && digest_tap_start(t, algorithm, err) == -1) {
    digest_tap_close(TAKE_PTR(r));
    return -1;
  }
  *out = TAKE_PTR(r);
  return 0;
}

int digest_tap_new(struct vreader *lower, const char *algorithm, struct vreader **out,
                   struct verr *err)
{
  return digest_tap_make(lower, NULL, algorithm, out, err);
}

int digest_source_tap_new(struct vreader *source, const char *algorithm, struct vreader **out,
                          struct verr *err)
{
  return digest_tap_make(source, source_digest_ring(source), algorithm, out, err);
}

int digest_tap_final(struct vreader *tap, char *out, size_t out_size, struct verr *err)
{
  if (tap == NULL || tap->ops != &digest_tap_ops)
    return verr_set(err, VERR_INTERNAL, "digest_tap_final called on a reader that is not "
                    "a digest tap (a bug)");
  struct digest_tap *t = tap->state;
  if (t->finished)
    return verr_set(err, VERR_INTERNAL, "the source digest was already finished (a bug)");
  /* The ring's hasher ends with the transfer, which waits for the reader: finishing
   * before the reader took the last byte would wait forever. */
  if (t->md == NULL) { /* counting only */
    if (out_size == 0)
      return verr_set(err, VERR_INTERNAL, "no room for the source digest (a bug)");
    t->finished = true;
    out[0] = '\0';
    return 0;
  }
  if (t->ring != NULL && !ring_drained(t->ring))
    return verr_set(err, VERR_INTERNAL, "the source digest was asked for before the source "
                    "was read to its end (a bug)");

  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned md_len = 0;
  t->finished = true;
  if (!digest_tap_drain(t) || EVP_DigestFinal_ex(t->ctx, md, &md_len) != 1)
    return verr_set(err, VERR_INTERNAL, "OpenSSL failed to finish the %s source digest",
                    t->algorithm);

  return checksum_from_md(t->algorithm, md, md_len, out, out_size, err);
}

uint64_t digest_tap_bytes(const struct vreader *tap)
{
  if (tap == NULL || tap->ops != &digest_tap_ops)
    return 0;
  const struct digest_tap *t = tap->state;
  return t->bytes;
}
