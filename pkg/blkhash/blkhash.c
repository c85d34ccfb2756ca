/* vimport blkhash: see blkhash.h for the contract.
 *
 * Data is copied into a ring of slots, each a batch of whole blocks. Worker threads take
 * submitted slots in order and hash their blocks; the caller's thread folds finished
 * slots into the outer digest strictly in slot order, so the result cannot depend on
 * which worker finished first. A run of known-zero blocks travels as one slot without
 * data. With threads <= 1 the caller's thread hashes each slot as it is submitted.
 */
#include "blkhash.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/hugebuf.h"
#include "core/zero.h"
#include "internal.h"

/* A batch this large keeps lock traffic far below hashing time (16 blocks of 64 KiB). */
#define BATCH_BYTES (1u << 20)

struct slot {
  unsigned char *buf;   /* nblocks * block_size bytes; NULL until first used */
  const unsigned char *inplace; /* not NULL: the data is the caller's, here (not buf) */
  size_t len;           /* bytes of data in buf */
  uint64_t zero_blocks; /* > 0: a run of full zero blocks and no data */
  bool done;            /* hashed; digests valid */
  unsigned char *mds;   /* one digest per block in the batch */
};

struct blkhash {
  const EVP_MD *md_type;
  unsigned md_len;
  size_t block_size;
  size_t batch_blocks;
  unsigned threads;
  void (*on_block)(void *opaque, uint64_t index, const unsigned char *md, unsigned md_len);
  void *on_block_opaque;

  EVP_MD_CTX *outer;      /* folds block digests, caller's thread only */
  EVP_MD_CTX *inline_ctx; /* hashes blocks when there are no workers */
  unsigned char zero_md[BLKHASH_MAX_MD_SIZE]; /* H(zeros(block_size)) */
  uint64_t length;        /* bytes accepted so far */
  uint64_t blocks_folded; /* block index of the next digest to fold */
  bool finalized;

  /* The ring. Counters only grow; slot of counter c is slots[c % nslots]. */
  struct slot *slots;
  size_t nslots;
  unsigned char *bufs; /* every slot's buf, one arena (core/hugebuf.h), made on first use */
  uint64_t submitted; /* slots handed to workers; slots[submitted % nslots] is filling */
  uint64_t taken;     /* slots a worker has started */
  uint64_t folded;    /* slots folded and free again */

  pthread_mutex_t lock;
  pthread_cond_t work_ready; /* submitted advanced, or stopping */
  pthread_cond_t work_done;  /* a slot became done */
  bool stopping;
  int worker_error; /* first errno a worker hit */
  pthread_t *workers;
  unsigned nworkers_started;
};

void blkhash_hex(const unsigned char *md, unsigned len, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (unsigned i = 0; i < len; i++) {
    out[2 * i] = digits[md[i] >> 4];
    out[2 * i + 1] = digits[md[i] & 15];
  }
  out[2 * len] = '\0';
}

/* "null" is blksum's digest that hashes nothing (EVP_md_null, an empty result): it
 * measures the reading alone. OpenSSL knows it by no name. */
const EVP_MD *blkhash_digest_by_name(const char *name)
{
  if (name != NULL && strcmp(name, "null") == 0)
    return EVP_md_null();
  return name != NULL ? EVP_get_digestbyname(name) : NULL;
}

int blkhash_digest_known(const char *name)
{
  return blkhash_digest_by_name(name) != NULL;
}

/* Hash every block of a data slot into slot->mds. */
static int slot_hash(const struct blkhash *h, EVP_MD_CTX *ctx, struct slot *s)
{
  size_t nblocks = (s->len + h->block_size - 1) / h->block_size;
  const unsigned char *data = s->inplace != NULL ? s->inplace : s->buf;
  for (size_t i = 0; i < nblocks; i++) {
    const unsigned char *block = data + i * h->block_size;
    size_t len = s->len - i * h->block_size;
    if (len > h->block_size)
      len = h->block_size;
    unsigned char *md = s->mds + i * h->md_len;
    if (len == h->block_size && mem_is_zero(block, len)) {
      memcpy(md, h->zero_md, h->md_len);
      continue;
    }
    int r = blkhash_digest(ctx, h->md_type, block, len, md);
    if (r != 0)
      return r;
  }
  return 0;
}

static void *worker_main(void *arg)
{
  struct blkhash *h = arg;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();

  pthread_mutex_lock(&h->lock);
  for (;;) {
    while (!h->stopping && h->taken == h->submitted)
      pthread_cond_wait(&h->work_ready, &h->lock);
    if (h->taken == h->submitted)
      break; /* stopping and nothing left */
    struct slot *s = &h->slots[h->taken % h->nslots];
    h->taken++;
    pthread_mutex_unlock(&h->lock);

    int r = s->zero_blocks > 0 ? 0 : ctx == NULL ? ENOMEM : slot_hash(h, ctx, s);

    pthread_mutex_lock(&h->lock);
    if (r != 0 && h->worker_error == 0)
      h->worker_error = r;
    s->done = true;
    pthread_cond_broadcast(&h->work_done);
  }
  pthread_mutex_unlock(&h->lock);
  EVP_MD_CTX_free(ctx);
  return NULL;
}

static int fold_digest(struct blkhash *h, const unsigned char *md)
{
  if (h->on_block != NULL)
    h->on_block(h->on_block_opaque, h->blocks_folded, md, h->md_len);
  h->blocks_folded++;
  return EVP_DigestUpdate(h->outer, md, h->md_len) == 1 ? 0 : EIO;
}

static int fold_zero_run(struct blkhash *h, uint64_t count)
{
  if (h->on_block != NULL) {
    for (uint64_t i = 0; i < count; i++)
      if (fold_digest(h, h->zero_md) != 0)
        return EIO;
    return 0;
  }
  /* Without a per-block callback, feed the repeated zero digest in large pieces:
   * a 100 GiB hole is 1.6 M digests and must take well under a second. */
  enum { REPEAT = 256 };
  unsigned char run[REPEAT * BLKHASH_MAX_MD_SIZE];
  for (unsigned i = 0; i < REPEAT; i++)
    memcpy(run + i * h->md_len, h->zero_md, h->md_len);
  while (count > 0) {
    uint64_t n = count < REPEAT ? count : REPEAT;
    if (EVP_DigestUpdate(h->outer, run, n * h->md_len) != 1)
      return EIO;
    h->blocks_folded += n;
    count -= n;
  }
  return 0;
}

static int slot_fold(struct blkhash *h, struct slot *s)
{
  if (s->zero_blocks > 0)
    return fold_zero_run(h, s->zero_blocks);
  size_t nblocks = (s->len + h->block_size - 1) / h->block_size;
  for (size_t i = 0; i < nblocks; i++) {
    int r = fold_digest(h, s->mds + i * h->md_len);
    if (r != 0)
      return r;
  }
  return 0;
}

/* Fold the oldest submitted slot, waiting for its worker if needed. */
static int fold_oldest(struct blkhash *h)
{
  struct slot *s = &h->slots[h->folded % h->nslots];
  int r = 0;
  if (h->nworkers_started > 0) {
    pthread_mutex_lock(&h->lock);
    while (!s->done)
      pthread_cond_wait(&h->work_done, &h->lock);
    r = h->worker_error;
    pthread_mutex_unlock(&h->lock);
  }
  if (r == 0)
    r = slot_fold(h, s);
  s->done = false;
  s->len = 0;
  s->zero_blocks = 0;
  s->inplace = NULL;
  h->folded++;
  return r;
}

static struct slot *filling_slot(struct blkhash *h)
{
  return &h->slots[h->submitted % h->nslots];
}

static size_t slot_bytes(const struct blkhash *h)
{
  return h->batch_blocks * h->block_size;
}

/* The arena is page aligned, which makes the copy into a slot markedly faster on x86. */
static int slot_alloc(struct blkhash *h, struct slot *s)
{
  if (s->mds != NULL)
    return 0;
  if (h->bufs == NULL) {
    if ((h->bufs = hugebuf_alloc(h->nslots * slot_bytes(h))) == NULL)
      return ENOMEM;
    for (size_t i = 0; i < h->nslots; i++)
      h->slots[i].buf = h->bufs + i * slot_bytes(h);
  }
  s->mds = malloc(h->batch_blocks * h->md_len);
  return s->mds != NULL ? 0 : ENOMEM;
}

/* Hand the filling slot on and make sure the next one is free to fill. */
static int submit_filling(struct blkhash *h)
{
  struct slot *s = filling_slot(h);
  if (h->nworkers_started == 0) {
    int r = s->zero_blocks > 0 ? 0 : slot_hash(h, h->inline_ctx, s);
    if (r != 0)
      return r;
    s->done = true;
    h->submitted++;
  } else {
    pthread_mutex_lock(&h->lock);
    h->submitted++;
    pthread_cond_signal(&h->work_ready);
    pthread_mutex_unlock(&h->lock);
  }
  while (h->submitted - h->folded >= h->nslots) {
    int r = fold_oldest(h);
    if (r != 0)
      return r;
  }
  /* Without workers nothing runs ahead: fold at once so order is trivially kept. */
  while (h->nworkers_started == 0 && h->folded < h->submitted) {
    int r = fold_oldest(h);
    if (r != 0)
      return r;
  }
  return 0;
}

/* Without workers, whole blocks are hashed straight from the caller's buffer: no copy. */
static int hash_inline_blocks(struct blkhash *h, const unsigned char **p, size_t *len)
{
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  while (*len >= h->block_size) {
    int r = 0;
    if (mem_is_zero(*p, h->block_size))
      memcpy(md, h->zero_md, h->md_len);
    else
      r = blkhash_digest(h->inline_ctx, h->md_type, *p, h->block_size, md);
    if (r == 0)
      r = fold_digest(h, md);
    if (r != 0)
      return r;
    *p += h->block_size;
    *len -= h->block_size;
    h->length += h->block_size;
  }
  return 0;
}

int blkhash_update(struct blkhash *h, const void *buf, size_t len)
{
  if (h->finalized)
    return EINVAL;
  const unsigned char *p = buf;
  size_t batch_bytes = slot_bytes(h);
  while (len > 0) {
    if (h->nworkers_started == 0 && filling_slot(h)->len == 0) {
      int r = hash_inline_blocks(h, &p, &len);
      if (r != 0 || len == 0)
        return r;
    }
    struct slot *s = filling_slot(h);
    int r = slot_alloc(h, s);
    if (r != 0)
      return r;
    size_t n = batch_bytes - s->len;
    if (n > len)
      n = len;
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    p += n;
    len -= n;
    h->length += n;
    if (s->len == batch_bytes && (r = submit_filling(h)) != 0)
      return r;
  }
  return 0;
}

int blkhash_update_inplace(struct blkhash *h, const void *buf, size_t len)
{
  if (h->finalized)
    return EINVAL;
  const unsigned char *p = buf;
  size_t batch_bytes = slot_bytes(h);
  /* A batch already being filled is completed by copying, as blkhash_update() would. */
  size_t filled = filling_slot(h)->len;
  if (filled > 0 || h->nworkers_started == 0) {
    size_t n = h->nworkers_started == 0 ? len : batch_bytes - filled;
    if (n > len)
      n = len;
    int r = blkhash_update(h, p, n);
    if (r != 0)
      return r;
    p += n;
    len -= n;
  }
  /* Whole blocks: batches that point at the caller's bytes. */
  while (len >= h->block_size) {
    size_t n = len < batch_bytes ? len - len % h->block_size : batch_bytes;
    struct slot *s = filling_slot(h);
    int r = slot_alloc(h, s); /* for its digests */
    if (r != 0)
      return r;
    s->inplace = p;
    s->len = n;
    h->length += n;
    if ((r = submit_filling(h)) != 0)
      return r;
    p += n;
    len -= n;
  }
  return len > 0 ? blkhash_update(h, p, len) : 0;
}

int blkhash_settle(struct blkhash *h)
{
  /* Even after an error, wait for every batch: the caller may unmap what they read. */
  int r = 0;
  while (h->folded < h->submitted) {
    int e = fold_oldest(h);
    if (r == 0)
      r = e;
  }
  return r;
}

int blkhash_buffer(struct blkhash *h, void **buf, size_t *len)
{
  if (h->finalized)
    return EINVAL;
  struct slot *s = filling_slot(h);
  int r = slot_alloc(h, s);
  if (r != 0)
    return r;
  *buf = s->buf + s->len;
  *len = slot_bytes(h) - s->len;
  return 0;
}

int blkhash_commit(struct blkhash *h, size_t n)
{
  struct slot *s = filling_slot(h);
  size_t batch_bytes = slot_bytes(h);
  if (h->finalized || s->mds == NULL || n > batch_bytes - s->len)
    return EINVAL;
  s->len += n;
  h->length += n;
  if (s->len == batch_bytes)
    return submit_filling(h);
  return 0;
}

/* Append `len` zeros to the filling slot's data (len fits in the slot). */
static int fill_zeros(struct blkhash *h, size_t len)
{
  struct slot *s = filling_slot(h);
  int r = slot_alloc(h, s);
  if (r != 0)
    return r;
  memset(s->buf + s->len, 0, len);
  s->len += len;
  h->length += len;
  if (s->len == slot_bytes(h))
    return submit_filling(h);
  return 0;
}

int blkhash_zero(struct blkhash *h, uint64_t len)
{
  if (h->finalized)
    return EINVAL;
  int r;
  /* Complete a partly filled block with real zeros: its digest needs the bytes. */
  size_t partial = filling_slot(h)->len % h->block_size;
  if (partial != 0) {
    uint64_t n = h->block_size - partial;
    if (n > len)
      n = len;
    if ((r = fill_zeros(h, (size_t)n)) != 0)
      return r;
    len -= n;
  }
  uint64_t whole = len / h->block_size;
  if (whole > 0) {
    if (filling_slot(h)->len > 0 && (r = submit_filling(h)) != 0)
      return r;
    filling_slot(h)->zero_blocks = whole;
    h->length += whole * h->block_size;
    if ((r = submit_filling(h)) != 0)
      return r;
    len -= whole * h->block_size;
  }
  if (len > 0)
    return fill_zeros(h, (size_t)len);
  return 0;
}

int blkhash_final(struct blkhash *h, unsigned char *md, unsigned *md_len)
{
  if (h->finalized)
    return EINVAL;
  h->finalized = true;
  int r = 0;
  if (filling_slot(h)->len > 0)
    r = submit_filling(h);
  while (r == 0 && h->folded < h->submitted)
    r = fold_oldest(h);
  if (r != 0)
    return r;
  unsigned char le[8];
  for (int i = 0; i < 8; i++)
    le[i] = (unsigned char)(h->length >> (8 * i));
  if (EVP_DigestUpdate(h->outer, le, sizeof le) != 1 || EVP_DigestFinal_ex(h->outer, md, md_len) != 1)
    return EIO;
  return 0;
}

/* The digests of the filling slot's bytes folded into `outer` (a copy), the last block
 * short: what blkhash_final() would fold, without submitting the slot. */
static int fold_filling_copy(struct blkhash *h, EVP_MD_CTX *outer)
{
  const struct slot *s = filling_slot(h);
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  for (size_t off = 0; off < s->len; off += h->block_size) {
    size_t len = s->len - off < h->block_size ? s->len - off : h->block_size;
    int r = 0;
    if (len == h->block_size && mem_is_zero(s->buf + off, len))
      memcpy(md, h->zero_md, h->md_len);
    else
      r = blkhash_digest(h->inline_ctx, h->md_type, s->buf + off, len, md);
    if (r != 0)
      return r;
    if (EVP_DigestUpdate(outer, md, h->md_len) != 1)
      return EIO;
  }
  return 0;
}

int blkhash_snapshot(struct blkhash *h, unsigned char *md, unsigned *md_len)
{
  if (h->finalized)
    return EINVAL;
  int r = blkhash_settle(h);
  if (r != 0)
    return r;
  EVP_MD_CTX *outer = EVP_MD_CTX_new();
  if (outer == NULL)
    return ENOMEM;
  r = EVP_MD_CTX_copy_ex(outer, h->outer) == 1 ? fold_filling_copy(h, outer) : EIO;
  unsigned char le[8];
  for (int i = 0; i < 8; i++)
    le[i] = (unsigned char)(h->length >> (8 * i));
  if (r == 0 && (EVP_DigestUpdate(outer, le, sizeof le) != 1 ||
                 EVP_DigestFinal_ex(outer, md, md_len) != 1))
    r = EIO;
  EVP_MD_CTX_free(outer);
  return r;
}

uint64_t blkhash_length(const struct blkhash *h)
{
  return h->length;
}

static void stop_workers(struct blkhash *h)
{
  pthread_mutex_lock(&h->lock);
  h->stopping = true;
  pthread_cond_broadcast(&h->work_ready);
  pthread_mutex_unlock(&h->lock);
  for (unsigned i = 0; i < h->nworkers_started; i++)
    pthread_join(h->workers[i], NULL);
  h->nworkers_started = 0;
}

void blkhash_free(struct blkhash *h)
{
  if (h == NULL)
    return;
  if (h->workers != NULL)
    stop_workers(h);
  free(h->workers);
  for (size_t i = 0; h->slots != NULL && i < h->nslots; i++)
    free(h->slots[i].mds);
  free(h->slots);
  hugebuf_free(h->bufs, h->nslots * slot_bytes(h));
  EVP_MD_CTX_free(h->outer);
  EVP_MD_CTX_free(h->inline_ctx);
  pthread_mutex_destroy(&h->lock);
  pthread_cond_destroy(&h->work_ready);
  pthread_cond_destroy(&h->work_done);
  free(h);
}

static int init_digests(struct blkhash *h)
{
  h->outer = EVP_MD_CTX_new();
  h->inline_ctx = EVP_MD_CTX_new();
  if (h->outer == NULL || h->inline_ctx == NULL)
    return ENOMEM;
  if (EVP_DigestInit_ex(h->outer, h->md_type, NULL) != 1)
    return EIO;
  unsigned char *zeros = calloc(1, h->block_size);
  if (zeros == NULL)
    return ENOMEM;
  int r = blkhash_digest(h->inline_ctx, h->md_type, zeros, h->block_size, h->zero_md);
  free(zeros);
  return r;
}

static int start_workers(struct blkhash *h)
{
  if (h->threads <= 1)
    return 0;
  h->workers = calloc(h->threads, sizeof *h->workers);
  if (h->workers == NULL)
    return ENOMEM;
  for (unsigned i = 0; i < h->threads; i++) {
    int r = pthread_create(&h->workers[i], NULL, worker_main, h);
    if (r != 0)
      return r;
    h->nworkers_started++;
  }
  return 0;
}

int blkhash_new(const struct blkhash_opts *opts, struct blkhash **out)
{
  const EVP_MD *type;
  size_t block_size;
  if (blkhash_resolve_opts(opts, &type, &block_size) != 0)
    return EINVAL;

  struct blkhash *h = calloc(1, sizeof *h);
  if (h == NULL)
    return ENOMEM;
  h->md_type = type;
  h->md_len = (unsigned)EVP_MD_size(type);
  h->block_size = block_size;
  h->batch_blocks = block_size >= BATCH_BYTES ? 1 : BATCH_BYTES / block_size;
  h->threads = opts ? opts->threads : 0;
  h->on_block = opts ? opts->on_block : NULL;
  h->on_block_opaque = opts ? opts->on_block_opaque : NULL;
  /* Two slots per worker keeps every worker busy while the caller fills the next. */
  h->nslots = h->threads <= 1 ? 1 : 2 * (size_t)h->threads + 1;
  pthread_mutex_init(&h->lock, NULL);
  pthread_cond_init(&h->work_ready, NULL);
  pthread_cond_init(&h->work_done, NULL);
  h->slots = calloc(h->nslots, sizeof *h->slots);
  int r = h->slots == NULL ? ENOMEM : init_digests(h);
  if (r == 0)
    r = start_workers(h);
  if (r != 0) {
    blkhash_free(h);
    return r;
  }
  *out = h;
  return 0;
}
