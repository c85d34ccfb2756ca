/* The block hash of guest content that arrives in any order: see blkhash.h.
 *
 * Blocks are folded into the outer digest strictly in order at a "frontier". A block
 * whose bytes are all known gets its digest at once; if it is not at the frontier,
 * the digest waits in a min-heap keyed by block index (runs of zero blocks wait as one
 * entry). Blocks that arrive in pieces (clusters smaller than a block) are assembled
 * in a partial-block buffer first. Both kinds of waiting are bounded by max_pending.
 */
#include "blkhash.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/stream.h"
#include "core/zero.h"
#include "internal.h"
#include "pool.h"

/* Bytes of consecutive whole blocks one worker job hashes. */
#define UNORDERED_JOB_BYTES (1u << 20)

struct pending {
  uint64_t block;
  uint64_t count; /* > 1 only for zero runs */
  bool zero;
  unsigned char md[BLKHASH_MAX_MD_SIZE];
};

struct partial {
  uint64_t block;
  size_t filled;
  unsigned char *buf;
};

struct blkhash_unordered {
  const EVP_MD *md_type;
  unsigned md_len;
  size_t block_size;
  uint64_t length, nblocks;
  size_t max_pending;
  void (*on_block)(void *opaque, uint64_t index, const unsigned char *md, unsigned md_len);
  void *on_block_opaque;
  EVP_MD_CTX *outer, *inner;
  unsigned char zero_md[BLKHASH_MAX_MD_SIZE];      /* H(zeros(block_size)) */
  unsigned char zero_tail_md[BLKHASH_MAX_MD_SIZE]; /* H(zeros(last block's length)) */
  uint64_t frontier;                               /* next block to fold */
  struct pending *heap;
  size_t heap_len, heap_cap;
  struct partial *partials; /* sorted by block */
  size_t npartials, partials_cap;
  size_t pending_bytes;     /* memory held by heap entries and partial buffers */
  struct hash_pool *pool;   /* whole blocks are hashed here when threads > 1, else inline */
  struct vsink sink;
};

static int zero_digests(struct blkhash_unordered *u);

static uint64_t block_len(const struct blkhash_unordered *u, uint64_t block)
{
  uint64_t start = block * u->block_size;
  return u->length - start < u->block_size ? u->length - start : u->block_size;
}

static int digest(struct blkhash_unordered *u, const void *buf, size_t len, unsigned char *md)
{
  if (len == u->block_size && mem_is_zero(buf, len)) {
    memcpy(md, u->zero_md, u->md_len);
    return 0;
  }
  return blkhash_digest(u->inner, u->md_type, buf, len, md);
}

static int fold(struct blkhash_unordered *u, const unsigned char *md)
{
  if (u->on_block != NULL)
    u->on_block(u->on_block_opaque, u->frontier, md, u->md_len);
  u->frontier++;
  return EVP_DigestUpdate(u->outer, md, u->md_len) == 1 ? 0 : EIO;
}

static int fold_zeros(struct blkhash_unordered *u, uint64_t count)
{
  for (uint64_t i = 0; i < count; i++) {
    bool tail = block_len(u, u->frontier) != u->block_size;
    int r = fold(u, tail ? u->zero_tail_md : u->zero_md);
    if (r != 0)
      return r;
  }
  return 0;
}

/* ---- the heap of digests that wait for the frontier ---- */

static void heap_swap(struct pending *a, struct pending *b)
{
  struct pending t = *a;
  *a = *b;
  *b = t;
}

static int heap_push(struct blkhash_unordered *u, const struct pending *p)
{
  if (u->heap_len == u->heap_cap) {
    size_t cap = u->heap_cap ? 2 * u->heap_cap : 256;
    struct pending *h = realloc(u->heap, cap * sizeof *h);
    if (h == NULL)
      return ENOMEM;
    u->heap = h;
    u->heap_cap = cap;
  }
  size_t i = u->heap_len++;
  u->heap[i] = *p;
  while (i > 0 && u->heap[(i - 1) / 2].block > u->heap[i].block) {
    heap_swap(&u->heap[(i - 1) / 2], &u->heap[i]);
    i = (i - 1) / 2;
  }
  u->pending_bytes += sizeof *p;
  return 0;
}

static void heap_pop(struct blkhash_unordered *u)
{
  u->heap[0] = u->heap[--u->heap_len];
  u->pending_bytes -= sizeof *u->heap;
  for (size_t i = 0;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < u->heap_len && u->heap[l].block < u->heap[m].block)
      m = l;
    if (r < u->heap_len && u->heap[r].block < u->heap[m].block)
      m = r;
    if (m == i)
      break;
    heap_swap(&u->heap[i], &u->heap[m]);
    i = m;
  }
}

/* Fold every waiting entry that the frontier has reached. */
static int drain(struct blkhash_unordered *u)
{
  while (u->heap_len > 0 && u->heap[0].block <= u->frontier) {
    struct pending p = u->heap[0];
    if (p.block < u->frontier)
      return EINVAL; /* a block arrived twice */
    heap_pop(u);
    int r = p.zero ? fold_zeros(u, p.count) : fold(u, p.md);
    if (r != 0)
      return r;
  }
  return 0;
}

static int add_block(struct blkhash_unordered *u, uint64_t block, const unsigned char *md)
{
  if (block < u->frontier)
    return EINVAL;
  if (block == u->frontier) {
    int r = fold(u, md);
    return r != 0 ? r : drain(u);
  }
  if (u->pending_bytes + sizeof(struct pending) > u->max_pending)
    return EFBIG;
  struct pending p = { .block = block, .count = 1 };
  memcpy(p.md, md, u->md_len);
  return heap_push(u, &p);
}

static int add_zero_run(struct blkhash_unordered *u, uint64_t block, uint64_t count)
{
  if (block < u->frontier)
    return EINVAL;
  if (block == u->frontier) {
    int r = fold_zeros(u, count);
    return r != 0 ? r : drain(u);
  }
  if (u->pending_bytes + sizeof(struct pending) > u->max_pending)
    return EFBIG;
  struct pending p = { .block = block, .count = count, .zero = true };
  return heap_push(u, &p);
}

/* ---- blocks that arrive in pieces ---- */

static size_t partial_find(const struct blkhash_unordered *u, uint64_t block)
{
  size_t lo = 0, hi = u->npartials;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (u->partials[mid].block < block)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int partial_get(struct blkhash_unordered *u, uint64_t block, struct partial **out)
{
  size_t i = partial_find(u, block);
  if (i < u->npartials && u->partials[i].block == block) {
    *out = &u->partials[i];
    return 0;
  }
  if (u->pending_bytes + u->block_size > u->max_pending)
    return EFBIG;
  if (u->npartials == u->partials_cap) {
    size_t cap = u->partials_cap ? 2 * u->partials_cap : 16;
    struct partial *p = realloc(u->partials, cap * sizeof *p);
    if (p == NULL)
      return ENOMEM;
    u->partials = p;
    u->partials_cap = cap;
  }
  unsigned char *buf = malloc(u->block_size);
  if (buf == NULL)
    return ENOMEM;
  memmove(&u->partials[i + 1], &u->partials[i], (u->npartials - i) * sizeof *u->partials);
  u->partials[i] = (struct partial){ .block = block, .buf = buf };
  u->npartials++;
  u->pending_bytes += u->block_size;
  *out = &u->partials[i];
  return 0;
}

static void partial_remove(struct blkhash_unordered *u, struct partial *p)
{
  size_t i = (size_t)(p - u->partials);
  free(p->buf);
  memmove(&u->partials[i], &u->partials[i + 1], (u->npartials - i - 1) * sizeof *u->partials);
  u->npartials--;
  u->pending_bytes -= u->block_size;
}

/* `len` bytes at `off` within `block`; buf NULL means zeros. */
static int add_piece(struct blkhash_unordered *u, uint64_t block, size_t off, const unsigned char *buf,
                     size_t len)
{
  size_t blen = (size_t)block_len(u, block);
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  if (off == 0 && len == blen) {
    if (buf == NULL)
      return add_zero_run(u, block, 1);
    int r = digest(u, buf, len, md);
    return r != 0 ? r : add_block(u, block, md);
  }
  struct partial *p;
  int r = partial_get(u, block, &p);
  if (r != 0)
    return r;
  if (buf != NULL)
    memcpy(p->buf + off, buf, len);
  else
    memset(p->buf + off, 0, len);
  p->filled += len;
  if (p->filled > blen)
    return EINVAL; /* bytes arrived twice */
  if (p->filled < blen)
    return 0;
  r = digest(u, p->buf, blen, md);
  partial_remove(u, p);
  return r != 0 ? r : add_block(u, block, md);
}

static int check_range(const struct blkhash_unordered *u, uint64_t offset, uint64_t len)
{
  return offset > u->length || len > u->length - offset ? ERANGE : 0;
}

/* Full-size whole blocks at the start of [offset, offset+len): how many. */
static size_t whole_blocks(const struct blkhash_unordered *u, uint64_t offset, size_t len)
{
  if (offset % u->block_size != 0)
    return 0;
  uint64_t n = len / u->block_size;
  uint64_t full = u->length / u->block_size; /* blocks that are not a short last block */
  uint64_t first = offset / u->block_size;
  if (first + n > full)
    n = first < full ? full - first : 0;
  return (size_t)n;
}

int blkhash_unordered_data(struct blkhash_unordered *u, uint64_t offset, const void *buf, size_t len)
{
  int r = check_range(u, offset, len);
  const unsigned char *p = buf;
  while (r == 0 && len > 0) {
    uint64_t block = offset / u->block_size;
    size_t off = (size_t)(offset % u->block_size);
    size_t n = u->block_size - off < len ? u->block_size - off : len;
    size_t whole = u->pool != NULL ? whole_blocks(u, offset, len) : 0;
    if (whole > 0) {
      if (block < u->frontier)
        return EINVAL; /* bytes arrived twice */
      n = whole * u->block_size;
      r = hash_pool_add(u->pool, block, p, whole);
    } else {
      r = add_piece(u, block, off, p, n);
    }
    offset += n;
    p += n;
    len -= n;
  }
  return r;
}

int blkhash_unordered_digests(struct blkhash_unordered *u, uint64_t first_block,
                              const unsigned char *mds, size_t count)
{
  uint64_t full = u->length / u->block_size; /* blocks that are not a short last block */
  if (first_block > full || count > full - first_block)
    return ERANGE;
  int r = 0;
  for (size_t i = 0; r == 0 && i < count; i++)
    r = add_block(u, first_block + i, mds + i * u->md_len);
  return r;
}

int blkhash_unordered_zero(struct blkhash_unordered *u, uint64_t offset, uint64_t len)
{
  int r = check_range(u, offset, len);
  while (r == 0 && len > 0) {
    uint64_t block = offset / u->block_size;
    size_t off = (size_t)(offset % u->block_size);
    uint64_t whole = off == 0 ? len / u->block_size : 0;
    if (whole > 0) {
      /* A run of whole zero blocks is one entry, however long: holes cost nothing. */
      r = add_zero_run(u, block, whole);
      offset += whole * u->block_size;
      len -= whole * u->block_size;
      continue;
    }
    uint64_t n = u->block_size - off < len ? u->block_size - off : len;
    if (off == 0 && n == block_len(u, block))
      r = add_zero_run(u, block, 1); /* the short last block */
    else
      r = add_piece(u, block, off, NULL, (size_t)n);
    offset += n;
    len -= n;
  }
  return r;
}

/* Bring the pool's digests in: every block added so far is then folded or waiting. */
static int reap_all(struct blkhash_unordered *u)
{
  return u->pool != NULL ? hash_pool_reap(u->pool, true) : 0;
}

int blkhash_unordered_set_length(struct blkhash_unordered *u, uint64_t length)
{
  int r = reap_all(u);
  if (r != 0)
    return r;
  if (length > u->length || length < u->frontier * u->block_size)
    return ERANGE;
  u->length = length;
  u->nblocks = (length + u->block_size - 1) / u->block_size;
  if (zero_digests(u) != 0)
    return EIO;
  /* The last block is shorter than it looked: it may be complete now. */
  uint64_t last = u->nblocks ? u->nblocks - 1 : 0;
  size_t i = partial_find(u, last);
  if (u->nblocks == 0 || i >= u->npartials || u->partials[i].block != last)
    return 0;
  struct partial *p = &u->partials[i];
  size_t blen = (size_t)block_len(u, last);
  if (p->filled != blen)
    return p->filled > blen ? EINVAL : 0;
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  r = digest(u, p->buf, blen, md);
  partial_remove(u, p);
  return r != 0 ? r : add_block(u, last, md);
}

int blkhash_unordered_final(struct blkhash_unordered *u, unsigned char *md, unsigned *md_len)
{
  int r = reap_all(u);
  if (r != 0)
    return r;
  if (u->frontier != u->nblocks || u->npartials != 0 || u->heap_len != 0)
    return EIO; /* some guest bytes never arrived */
  unsigned char le[8];
  for (int i = 0; i < 8; i++)
    le[i] = (unsigned char)(u->length >> (8 * i));
  if (EVP_DigestUpdate(u->outer, le, sizeof le) != 1 || EVP_DigestFinal_ex(u->outer, md, md_len) != 1)
    return EIO;
  return 0;
}

void blkhash_unordered_free(struct blkhash_unordered *u)
{
  if (u == NULL)
    return;
  hash_pool_free(u->pool);
  for (size_t i = 0; i < u->npartials; i++)
    free(u->partials[i].buf);
  free(u->partials);
  free(u->heap);
  EVP_MD_CTX_free(u->outer);
  EVP_MD_CTX_free(u->inner);
  free(u);
}

static int zero_digests(struct blkhash_unordered *u)
{
  unsigned char *zeros = calloc(1, u->block_size);
  if (zeros == NULL)
    return ENOMEM;
  size_t tail = (size_t)(u->length % u->block_size);
  int r = EIO;
  if (EVP_DigestInit_ex(u->inner, u->md_type, NULL) == 1 &&
      EVP_DigestUpdate(u->inner, zeros, u->block_size) == 1 &&
      EVP_DigestFinal_ex(u->inner, u->zero_md, NULL) == 1 &&
      EVP_DigestInit_ex(u->inner, u->md_type, NULL) == 1 &&
      EVP_DigestUpdate(u->inner, zeros, tail) == 1 &&
      EVP_DigestFinal_ex(u->inner, u->zero_tail_md, NULL) == 1)
    r = 0;
  free(zeros);
  return r;
}

static int sink_data(struct vsink *s, uint64_t offset, const void *buf, size_t len, struct verr *err);
static int sink_zero(struct vsink *s, uint64_t offset, uint64_t len, struct verr *err);

static int sink_digested(struct vsink *s, uint64_t offset, const void *buf, size_t len,
                         const struct vsink_digests *d, struct verr *err);

static const struct vsink_ops unordered_sink_ops = {
  .name = "blkhash-unordered",
  .data = sink_data,
  .zero = sink_zero,
  .digested = sink_digested,
};

static int reap_block(void *opaque, uint64_t block, const unsigned char *md)
{
  return add_block(opaque, block, md);
}

static int start_pool(struct blkhash_unordered *u, unsigned threads)
{
  size_t job_bytes = u->block_size >= UNORDERED_JOB_BYTES ? u->block_size : UNORDERED_JOB_BYTES;
  struct hash_pool_opts o = {
    .md_type = u->md_type, .block_size = u->block_size, .zero_md = u->zero_md,
    .threads = threads, .job_bytes = job_bytes, .reap = reap_block, .reap_opaque = u,
  };
  return hash_pool_new(&o, &u->pool);
}

int blkhash_unordered_new(const struct blkhash_opts *opts, uint64_t length, size_t max_pending,
                          struct blkhash_unordered **out)
{
  const EVP_MD *type;
  size_t bs;
  if (blkhash_resolve_opts(opts, &type, &bs) != 0)
    return EINVAL;
  struct blkhash_unordered *u = calloc(1, sizeof *u);
  if (u == NULL)
    return ENOMEM;
  *u = (struct blkhash_unordered){
    .md_type = type,
    .md_len = (unsigned)EVP_MD_size(type),
    .block_size = bs,
    .length = length,
    .nblocks = (length + bs - 1) / bs,
    .max_pending = max_pending,
    .on_block = opts ? opts->on_block : NULL,
    .on_block_opaque = opts ? opts->on_block_opaque : NULL,
    .outer = EVP_MD_CTX_new(),
    .inner = EVP_MD_CTX_new(),
    .sink = { .ops = &unordered_sink_ops, .state = u },
  };
  int r = u->outer == NULL || u->inner == NULL ? ENOMEM : 0;
  if (r == 0 && EVP_DigestInit_ex(u->outer, type, NULL) != 1)
    r = EIO;
  if (r == 0)
    r = zero_digests(u);
  if (r == 0 && opts != NULL && opts->threads > 1)
    r = start_pool(u, opts->threads);
  if (r != 0) {
    blkhash_unordered_free(u);
    return r;
  }
  *out = u;
  return 0;
}

static int sink_error(int r, struct verr *err)
{
  if (r == EFBIG)
    return verr_set(err, VERR_SCRATCH_REQUIRED,
                    "the block hash has too much out-of-order content waiting (the image was "
                    "written in a scattered order); raise vimport.memoryLimit");
  if (r == EINVAL || r == ERANGE)
    return verr_set(err, VERR_INTERNAL,
                    "the decoder sent guest bytes twice or outside the image; please report this bug");
  return verr_sys(err, VERR_INTERNAL, r, "block hash failed");
}

static int sink_data(struct vsink *s, uint64_t offset, const void *buf, size_t len, struct verr *err)
{
  int r = blkhash_unordered_data(s->state, offset, buf, len);
  return r == 0 ? 0 : sink_error(r, err);
}

static int sink_zero(struct vsink *s, uint64_t offset, uint64_t len, struct verr *err)
{
  int r = blkhash_unordered_zero(s->state, offset, len);
  return r == 0 ? 0 : sink_error(r, err);
}

static int sink_digested(struct vsink *s, uint64_t offset, const void *buf, size_t len,
                         const struct vsink_digests *d, struct verr *err)
{
  struct blkhash_unordered *u = s->state;
  size_t bs = u->block_size;
  /* Digests made another way than ours, or blocks not whole: hash the bytes instead. */
  if (d->md_type != (const void *)u->md_type || d->block_size != bs || d->md_len != u->md_len ||
      len % bs != 0 || whole_blocks(u, offset, len) != len / bs)
    return sink_data(s, offset, buf, len, err);
  int r = blkhash_unordered_digests(u, offset / bs, d->mds, len / bs);
  return r == 0 ? 0 : sink_error(r, err);
}

struct vsink *blkhash_unordered_sink(struct blkhash_unordered *u)
{
  return &u->sink;
}
