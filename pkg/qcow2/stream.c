/* vimport qcow2: decode an image in one in-order pass over a non-seekable source.
 *
 * The source is consumed in host clusters ("chunks"). Everything the decoder has
 * learned it must read is a *need*: the L1 table, an L2 table, a data range, a
 * compressed range, the refcount table and refcount blocks (needed only to know they
 * can be skipped). A need ahead of the stream waits in a min-heap keyed by host offset
 * and is served as its bytes stream past (a need spanning chunks collects them in its
 * own buffer). A need behind the stream is served from the window of kept chunks.
 *
 * A chunk no need claimed whole is kept in the window while some L2 table is still
 * unseen: a later table may map it. Once the L1 and every L2 table it names are parsed
 * ("tables complete"), the window is freed and unclaimed chunks are skipped. When the
 * window is full, a chunk is either dropped with its SHA-256 remembered (the source can
 * be re-read: opts->pread) or the decode fails with VERR_SCRATCH_REQUIRED. Dropped
 * chunks that turn out to be needed are re-read at the end and checked.
 *
 * Compressed clusters share chunks, so they claim none; but once decompressed, each says
 * exactly which bytes its stream used (qcow2_inflate's consumed, not the table's length,
 * which rounds up to sectors and can reach into the next cluster). A kept chunk whose
 * every byte some cluster used is let go: in a sound image no later table maps a byte
 * twice. (An image that does is refused when the second use comes, as for data
 * clusters.) Without this, an image with a few tables at its end (qemu-img convert -c
 * writes some) holds a full window of compressed chunks that nothing will need.
 */
#include "internal.h"
#include "qcow2.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"

enum need_kind { NEED_L1, NEED_L2, NEED_DATA, NEED_COMPRESSED, NEED_REFTABLE, NEED_SKIP };

static const char *const need_names[] = {
  [NEED_L1] = "L1 table",          [NEED_L2] = "L2 table",
  [NEED_DATA] = "data cluster",    [NEED_COMPRESSED] = "compressed cluster",
  [NEED_REFTABLE] = "refcount table", [NEED_SKIP] = "refcount block",
};

struct need {
  uint64_t host;      /* first host byte */
  uint64_t len;       /* host bytes */
  uint64_t guest;     /* DATA, COMPRESSED: guest offset; L2: guest offset it maps from */
  uint64_t guest_len; /* COMPRESSED: guest bytes to emit from the decompressed cluster */
  enum need_kind kind;
};

struct active { /* a need whose bytes started streaming past */
  struct need need;
  uint8_t *buf;
};

struct kept { /* a chunk in the window */
  uint64_t host;
  size_t len;
  size_t used; /* bytes decompressed clusters used: at len, nothing can need the chunk */
  uint8_t *buf;
};

struct dropped { /* a chunk dropped from a full window */
  uint64_t host;
  size_t len;
  unsigned char md[32];
};

/* A growable array; its bytes count against opts.table_bytes. */
#define VEC(T) struct { T *v; size_t len, cap; }

struct decoder {
  struct qcow2_layout lay;
  struct qcow2_stream_opts opts;
  struct vsink *out;
  struct qcow2_info *info;
  struct qcow2_inflater *inflater;
  struct qcow2_inflate_pool *pool; /* with opts.threads > 1, from the first compressed cluster */
  uint8_t *cluster;        /* one decompressed cluster */
  uint8_t *reread;         /* one chunk re-read through opts.pread */
  VEC(struct need) heap;   /* needs ahead of the stream, min-heap on host */
  VEC(struct active) active;
  VEC(struct kept) window; /* sorted by host (chunks arrive in order) */
  VEC(struct dropped) dropped;
  VEC(struct need) deferred; /* needs behind the stream waiting for a re-read */
  uint64_t window_used;
  uint64_t table_used;
  const uint8_t *cur;      /* the chunk being processed, or NULL */
  uint64_t cur_host;
  size_t cur_len;
  uint64_t pos;            /* needs at or after pos are ahead of the stream */
  int at_end;
  int cur_claimed;         /* a need owns the current chunk: do not keep it */
  size_t cur_used;         /* the current chunk's bytes decompressed clusters used */
  int l1_done;
  uint64_t l2_pending;
  int tables_complete;
  uint64_t zero_start, zero_len; /* zero run being merged */
};

static int serve(struct decoder *d, const struct need *n, const uint8_t *buf,
                 struct verr *err);

/* ---- bookkeeping memory, bounded by opts.table_bytes ---- */

static int charge(struct decoder *d, uint64_t bytes, struct verr *err)
{
  if (d->table_used + bytes > d->opts.table_bytes)
    return verr_set(err, VERR_SCRATCH_REQUIRED,
                    "qcow2 stream decoder needs more than %" PRIu64 " bytes of table memory "
                    "(its tables map far ahead of the data or the window dropped many "
                    "clusters): give the import scratch space or raise the table limit",
                    d->opts.table_bytes);
  d->table_used += bytes;
  return 0;
}

static int grow(struct decoder *d, void **v, size_t *cap, size_t elem, struct verr *err)
{
  size_t new_cap = *cap ? *cap * 2 : 16;
  if (charge(d, (uint64_t)(new_cap - *cap) * elem, err) < 0)
    return -1;
  void *nv = realloc(*v, new_cap * elem);
  if (nv == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "growing qcow2 decoder tables");
  *v = nv;
  *cap = new_cap;
  return 0;
}

#define VEC_PUSH(d, vec, item, err)                                                        \
  (((vec).len == (vec).cap &&                                                              \
    grow((d), (void **)&(vec).v, &(vec).cap, sizeof *(vec).v, (err)) < 0)                  \
       ? -1                                                                                \
       : ((vec).v[(vec).len++] = (item), 0))

/* ---- the heap of needs ahead of the stream ---- */

static void heap_swap(struct need *a, struct need *b)
{
  struct need t = *a;
  *a = *b;
  *b = t;
}

static int heap_push(struct decoder *d, const struct need *n, struct verr *err)
{
  if (VEC_PUSH(d, d->heap, *n, err) < 0)
    return -1;
  for (size_t i = d->heap.len - 1; i > 0 && d->heap.v[(i - 1) / 2].host > d->heap.v[i].host;
       i = (i - 1) / 2)
    heap_swap(&d->heap.v[i], &d->heap.v[(i - 1) / 2]);
  return 0;
}

static struct need heap_pop(struct decoder *d)
{
  struct need *h = d->heap.v;
  struct need top = h[0];
  h[0] = h[--d->heap.len];
  for (size_t i = 0;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < d->heap.len && h[l].host < h[m].host)
      m = l;
    if (r < d->heap.len && h[r].host < h[m].host)
      m = r;
    if (m == i)
      break;
    heap_swap(&h[i], &h[m]);
    i = m;
  }
  return top;
}

/* ---- output ---- */

static int flush_zero(struct decoder *d, struct verr *err)
{
  if (d->zero_len == 0)
    return 0;
  uint64_t len = d->zero_len;
  d->zero_len = 0;
  return vsink_zero(d->out, d->zero_start, len, err);
}

static int emit_zero(struct decoder *d, uint64_t guest, uint64_t len, struct verr *err)
{
  d->info->zero_bytes += len;
  if (d->zero_len > 0 && d->zero_start + d->zero_len == guest) {
    d->zero_len += len;
    return 0;
  }
  if (flush_zero(d, err) < 0)
    return -1;
  d->zero_start = guest;
  d->zero_len = len;
  return 0;
}

/* Guest data, cut into extents of at most QCOW2_MAX_EXTENT, with its blocks' digests
 * when `digests` is not NULL (whole blocks, each extent a whole number of them). */
static int emit_data_digested(struct decoder *d, uint64_t guest, const uint8_t *buf, uint64_t len,
                              const struct vsink_digests *digests, struct verr *err)
{
  d->info->data_bytes += len;
  struct vsink_digests part = digests != NULL ? *digests : (struct vsink_digests){ 0 };
  for (uint64_t done = 0; done < len; done += QCOW2_MAX_EXTENT) {
    uint64_t n = len - done < QCOW2_MAX_EXTENT ? len - done : QCOW2_MAX_EXTENT;
    int r;
    if (digests != NULL) {
      part.mds = digests->mds + done / digests->block_size * digests->md_len;
      r = vsink_data_digested(d->out, guest + done, buf + done, (size_t)n, &part, err);
    } else {
      r = vsink_data(d->out, guest + done, buf + done, (size_t)n, err);
    }
    if (r < 0)
      return -1;
  }
  return 0;
}

static int emit_data(struct decoder *d, uint64_t guest, const uint8_t *buf, uint64_t len,
                     struct verr *err)
{
  return emit_data_digested(d, guest, buf, len, NULL, err);
}

/* ---- the window and the dropped chunks ---- */

static void release_window(struct decoder *d)
{
  for (size_t i = 0; i < d->window.len; i++)
    free(d->window.v[i].buf);
  d->window.len = 0;
  d->window_used = 0;
}

static void maybe_complete(struct decoder *d)
{
  if (d->tables_complete || !d->l1_done || d->l2_pending > 0)
    return;
  /* every need behind the stream has been served or deferred: nothing else is wanted */
  d->tables_complete = 1;
  release_window(d);
}

static int sha256(const void *buf, size_t len, unsigned char md[32], struct verr *err)
{
  if (EVP_Digest(buf, len, md, NULL, EVP_sha256(), NULL) != 1)
    return verr_set(err, VERR_INTERNAL, "OpenSSL could not compute SHA-256");
  return 0;
}

static int keep_chunk(struct decoder *d, uint64_t host, const uint8_t *buf, size_t len,
                      struct verr *err)
{
  if (d->cur_used >= len) {
    d->info->used_clusters++;
    return 0;
  }
  if (d->window_used + len <= d->opts.window_bytes) {
    uint8_t *copy = malloc(len);
    if (copy == NULL)
      return verr_sys(err, VERR_NOMEM, ENOMEM, "keeping a qcow2 cluster in the window");
    memcpy(copy, buf, len);
    struct kept k = { host, len, d->cur_used, copy };
    if (VEC_PUSH(d, d->window, k, err) < 0) {
      free(copy);
      return -1;
    }
    d->window_used += len;
    if (d->window_used > d->info->window_peak_bytes)
      d->info->window_peak_bytes = d->window_used;
    return 0;
  }
  if (d->opts.pread == NULL)
    return verr_set(err, VERR_SCRATCH_REQUIRED,
                    "qcow2 image needs more than %" PRIu64 " bytes of look-ahead: clusters "
                    "arrive before the tables that map them (a resized, snapshotted or "
                    "guest-written image); give the import scratch space, serve the image "
                    "with HTTP Range support, or `qemu-img convert -O qcow2` it first",
                    d->opts.window_bytes);
  struct dropped dr = { .host = host, .len = len };
  if (d->opts.spill != NULL && d->opts.spill(d->opts.pread_opaque, buf, len, host, err) < 0)
    return -1;
  if (sha256(buf, len, dr.md, err) < 0 || VEC_PUSH(d, d->dropped, dr, err) < 0)
    return -1;
  d->info->dropped_clusters++;
  return 0;
}

/* Binary search over an array of structs sorted by their `host` member. */
#define FIND_CHUNK(vec, chunk_host, found)                                                 \
  do {                                                                                     \
    size_t lo_ = 0, hi_ = (vec).len;                                                       \
    (found) = NULL;                                                                        \
    while (lo_ < hi_) {                                                                    \
      size_t mid_ = lo_ + (hi_ - lo_) / 2;                                                 \
      if ((vec).v[mid_].host < (chunk_host))                                               \
        lo_ = mid_ + 1;                                                                    \
      else                                                                                 \
        hi_ = mid_;                                                                        \
    }                                                                                      \
    if (lo_ < (vec).len && (vec).v[lo_].host == (chunk_host))                              \
      (found) = &(vec).v[lo_];                                                             \
  } while (0)

static void let_go(struct decoder *d, struct kept *k)
{
  free(k->buf);
  d->window_used -= k->len;
  size_t after = d->window.len - (size_t)(k - d->window.v) - 1;
  memmove(k, k + 1, after * sizeof *k);
  d->window.len--;
  d->info->used_clusters++;
}

/* A decompressed cluster's stream was host bytes [host, host + len). */
static void mark_used(struct decoder *d, uint64_t host, size_t len)
{
  uint64_t cs = d->lay.cluster_size, end = host + len;
  for (uint64_t at = host; at < end;) {
    uint64_t chunk = at & ~(cs - 1);
    uint64_t stop = chunk + cs < end ? chunk + cs : end;
    size_t part = (size_t)(stop - at);
    at = stop;
    if (d->cur != NULL && chunk == d->cur_host) { /* not kept yet: keep_chunk decides */
      d->cur_used += part;
      continue;
    }
    struct kept *k;
    FIND_CHUNK(d->window, chunk, k);
    if (k != NULL && (k->used += part) >= k->len)
      let_go(d, k);
  }
}

static int reread_chunk(struct decoder *d, const struct dropped *dr, struct verr *err)
{
  unsigned char md[32];
  /* Allocated at first use: tables that complete at the end of the stream can need a
   * dropped chunk before the deferred needs are served. */
  if (d->reread == NULL && (d->reread = malloc(d->lay.cluster_size)) == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the qcow2 re-read buffer");
  if (d->opts.pread(d->opts.pread_opaque, d->reread, dr->len, dr->host, err) < 0)
    return verr_prefix(err, "re-reading qcow2 bytes %" PRIu64 "..%" PRIu64, dr->host,
                       dr->host + dr->len);
  d->info->reread_bytes += dr->len;
  if (sha256(d->reread, dr->len, md, err) < 0)
    return -1;
  if (memcmp(md, dr->md, sizeof md) != 0)
    return verr_set(err, VERR_SOURCE,
                    "the source changed between the first read and the re-read of bytes "
                    "%" PRIu64 "..%" PRIu64 ": it must not change during an import; retry",
                    dr->host, dr->host + dr->len);
  return 0;
}

/* Where the chunk at `host` is now: the current chunk, the window, a re-read (only at the
 * end). Returns 0 with *buf, *len set; 1 if it was dropped and the end is not reached
 * yet; -1 if it is gone (needed twice, or the image is damaged). */
static int find_chunk(struct decoder *d, const struct need *n, uint64_t host,
                      const uint8_t **buf, size_t *len, struct verr *err)
{
  if (d->cur != NULL && host == d->cur_host) {
    *buf = d->cur, *len = d->cur_len;
    if (n->kind != NEED_COMPRESSED)
      d->cur_claimed = 1;
    return 0;
  }
  struct kept *k;
  FIND_CHUNK(d->window, host, k);
  if (k != NULL) {
    *buf = k->buf, *len = k->len;
    return 0;
  }
  struct dropped *dr;
  FIND_CHUNK(d->dropped, host, dr);
  if (dr != NULL && !d->at_end)
    return 1;
  if (dr != NULL) {
    int r = reread_chunk(d, dr, err);
    *buf = d->reread, *len = dr->len;
    return r;
  }
  return verr_set(err, VERR_FORMAT,
                  "qcow2 %s at offset 0x%" PRIx64 " is needed after its bytes streamed past "
                  "and were used for something else: the image maps one cluster twice or "
                  "is damaged; run `qemu-img check`",
                  need_names[n->kind], n->host);
}

/* Copy the bytes of need `n`, all behind the stream, into `dst`. Bytes past the end of
 * the stream read as zeros, as qemu reads past the end of a file. Returns 0, 1 when
 * some were dropped and must wait for the end, or -1. */
static int gather(struct decoder *d, const struct need *n, uint8_t *dst, struct verr *err)
{
  uint64_t cs = d->lay.cluster_size;
  uint64_t end = n->host + n->len;
  for (uint64_t at = n->host; at < end;) {
    uint64_t chunk = at & ~(cs - 1);
    uint64_t stop = chunk + cs < end ? chunk + cs : end;
    if (d->at_end && at >= d->pos) {
      memset(dst + (at - n->host), 0, (size_t)(end - at));
      return 0;
    }
    const uint8_t *buf = NULL;
    size_t len = 0;
    int r = find_chunk(d, n, chunk, &buf, &len, err);
    if (r != 0)
      return r;
    uint64_t have = chunk + len < stop ? chunk + len : stop;
    if (have > at)
      memcpy(dst + (at - n->host), buf + (at - chunk), (size_t)(have - at));
    if (have < stop)
      memset(dst + (have - n->host), 0, (size_t)(stop - have));
    at = stop;
  }
  return 0;
}

static int outside_stream(struct decoder *d, const struct need *n, struct verr *err)
{
  return verr_set(err, VERR_FORMAT,
                  "qcow2 %s at offset 0x%" PRIx64 " is outside the file (%" PRIu64
                  " bytes): the image is truncated or damaged; download it again or run "
                  "`qemu-img check`",
                  need_names[n->kind], n->host, d->pos);
}

static int serve_past(struct decoder *d, const struct need *n, struct verr *err)
{
  if (n->kind == NEED_SKIP)
    return 0;
  if (d->at_end && n->host >= d->pos)
    return outside_stream(d, n, err);
  CLEANUP_FREE uint8_t *buf = malloc(n->len ? n->len : 1);
  if (buf == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "reading a qcow2 %s", need_names[n->kind]);
  int r = gather(d, n, buf, err);
  if (r < 0)
    return -1;
  if (r == 1)
    return VEC_PUSH(d, d->deferred, *n, err);
  return serve(d, n, buf, err);
}

static int add_need(struct decoder *d, const struct need *n, struct verr *err)
{
  if (!d->at_end && n->host >= d->pos)
    return heap_push(d, n, err);
  return serve_past(d, n, err);
}

/* ---- parsing tables ---- */

static int parse_l1(struct decoder *d, const uint8_t *buf, struct verr *err)
{
  const struct qcow2_layout *lay = &d->lay;
  for (uint32_t i = 0; i < lay->l1_used; i++) {
    uint64_t l2, guest = (uint64_t)i * lay->l2_coverage;
    if (qcow2_l1_entry(lay, qcow2_be64(buf + (size_t)i * 8), i, &l2, err) < 0)
      return -1;
    if (l2 == 0) {
      uint64_t left = lay->virtual_size - guest;
      if (emit_zero(d, guest, left < lay->l2_coverage ? left : lay->l2_coverage, err) < 0)
        return -1;
      continue;
    }
    struct need n = { .host = l2, .len = lay->cluster_size, .guest = guest, .kind = NEED_L2 };
    d->l2_pending++;
    if (add_need(d, &n, err) < 0)
      return -1;
  }
  d->l1_done = 1;
  maybe_complete(d);
  return 0;
}

static int add_piece_need(struct decoder *d, const struct qcow2_piece *p, struct verr *err)
{
  if (p->kind == QCOW2_PIECE_ZERO)
    return emit_zero(d, p->guest, p->len, err);
  struct need n = { .host = p->host, .len = p->host_len, .guest = p->guest,
                    .guest_len = p->len,
                    .kind = p->kind == QCOW2_PIECE_DATA ? NEED_DATA : NEED_COMPRESSED };
  return add_need(d, &n, err);
}

static int parse_l2(struct decoder *d, const struct need *table, const uint8_t *buf,
                    struct verr *err)
{
  const struct qcow2_layout *lay = &d->lay;
  for (uint32_t i = 0; i < lay->l2_entries; i++) {
    uint64_t guest = table->guest + ((uint64_t)i << lay->cluster_bits);
    if (guest >= lay->virtual_size)
      break;
    struct qcow2_piece pieces[QCOW2_SUBCLUSTERS];
    unsigned count;
    if (qcow2_l2_entry_pieces(lay, buf, i, guest, pieces, &count, err) < 0)
      return verr_prefix(err, "L2 table at 0x%" PRIx64, table->host);
    for (unsigned k = 0; k < count; k++)
      if (add_piece_need(d, &pieces[k], err) < 0)
        return -1;
  }
  d->l2_pending--;
  maybe_complete(d);
  return 0;
}

/* Refcount blocks are never read; knowing where they are lets the window skip them. */
static int parse_reftable(struct decoder *d, const struct need *table, const uint8_t *buf,
                          struct verr *err)
{
  uint64_t cs = d->lay.cluster_size;
  for (uint64_t i = 0; i + 8 <= table->len; i += 8) {
    uint64_t block = qcow2_be64(buf + i) & ~(cs - 1);
    struct need n = { .host = block, .len = cs, .kind = NEED_SKIP };
    if (block != 0 && block >= d->pos && heap_push(d, &n, err) < 0)
      return -1;
  }
  return 0;
}

/* A decompressed cluster, with the digests of its blocks when the workers hashed it. */
static int emit_decompressed(void *opaque, const struct qcow2_emitted *e, struct verr *err)
{
  struct decoder *d = opaque;
  const struct vsink_digests *digests = e->digests;
  if (digests != NULL && QCOW2_MAX_EXTENT % digests->block_size != 0)
    digests = NULL; /* extents would cut blocks */
  mark_used(d, e->host, e->consumed);
  return emit_data_digested(d, e->guest, e->buf, e->len, digests, err);
}

static int serve_compressed(struct decoder *d, const struct need *n, const uint8_t *buf,
                            struct verr *err)
{
  if (d->pool == NULL && d->opts.threads > 1 &&
      qcow2_inflate_pool_new(&d->lay, d->opts.threads, d->opts.block_hash, emit_decompressed, d,
                             &d->pool, err) < 0)
    return -1;
  if (d->pool != NULL)
    return qcow2_inflate_pool_add(d->pool, n->host, buf, (size_t)n->len, n->guest, n->guest_len,
                                  err);
  size_t consumed;
  if (qcow2_inflate(d->inflater, buf, (size_t)n->len, d->cluster, d->lay.cluster_size,
                    n->host, &consumed, err) < 0)
    return -1;
  mark_used(d, n->host, consumed);
  return emit_data(d, n->guest, d->cluster, n->guest_len, err);
}

static int serve(struct decoder *d, const struct need *n, const uint8_t *buf,
                 struct verr *err)
{
  switch (n->kind) {
  case NEED_L1: return parse_l1(d, buf, err);
  case NEED_L2: return parse_l2(d, n, buf, err);
  case NEED_DATA: return emit_data(d, n->guest, buf, n->len, err);
  case NEED_COMPRESSED: return serve_compressed(d, n, buf, err);
  case NEED_REFTABLE: return parse_reftable(d, n, buf, err);
  case NEED_SKIP: return 0;
  }
  return verr_set(err, VERR_INTERNAL, "qcow2 decoder: unknown need kind %d", (int)n->kind);
}

/* ---- the pass over the stream ---- */

static int start_active(struct decoder *d, const struct need *n, struct verr *err)
{
  if (charge(d, n->len, err) < 0)
    return -1;
  struct active a = { *n, malloc(n->len) };
  if (a.buf == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "collecting a qcow2 %s (%" PRIu64 " bytes)",
                    need_names[n->kind], n->len);
  if (VEC_PUSH(d, d->active, a, err) < 0) {
    free(a.buf);
    return -1;
  }
  return 0;
}

static int finish_active(struct decoder *d, size_t i, struct verr *err)
{
  struct active a = d->active.v[i];
  d->active.v[i] = d->active.v[--d->active.len];
  int r = serve(d, &a.need, a.buf, err);
  free(a.buf);
  d->table_used -= a.need.len;
  return r;
}

/* Copy the current chunk's share of each need that spans chunks; serve the complete. */
static int feed_active(struct decoder *d, struct verr *err)
{
  uint64_t h = d->cur_host, end = h + d->cur_len;
  for (size_t i = 0; i < d->active.len;) {
    struct active *a = &d->active.v[i];
    uint64_t from = a->need.host > h ? a->need.host : h;
    uint64_t to = a->need.host + a->need.len < end ? a->need.host + a->need.len : end;
    if (to > from)
      memcpy(a->buf + (from - a->need.host), d->cur + (from - h), (size_t)(to - from));
    if (from < to && a->need.kind != NEED_COMPRESSED)
      d->cur_claimed = 1;
    if (a->need.host + a->need.len > end) {
      i++;
      continue;
    }
    if (finish_active(d, i, err) < 0)
      return -1;
  }
  return 0;
}

static int process_chunk(struct decoder *d, uint64_t host, const uint8_t *buf, size_t len,
                         struct verr *err)
{
  d->cur = buf, d->cur_host = host, d->cur_len = len;
  d->pos = host + len;
  d->cur_claimed = 0;
  d->cur_used = 0;
  if (feed_active(d, err) < 0)
    return -1;
  while (d->heap.len > 0 && d->heap.v[0].host < d->pos) {
    struct need n = heap_pop(d);
    if (n.kind != NEED_COMPRESSED)
      d->cur_claimed = 1;
    int r = n.host + n.len <= d->pos ? serve(d, &n, buf + (n.host - host), err)
                                     : start_active(d, &n, err);
    if (r < 0)
      return -1;
    if (n.host + n.len > d->pos) {
      struct active *a = &d->active.v[d->active.len - 1];
      memcpy(a->buf, buf + (n.host - host), (size_t)(d->pos - n.host));
    }
  }
  int r = 0;
  if (!d->tables_complete && !d->cur_claimed)
    r = keep_chunk(d, host, buf, len, err);
  d->cur = NULL;
  return r;
}

static int finish_stream(struct decoder *d, struct verr *err)
{
  d->at_end = 1;
  d->info->source_bytes = d->pos;
  /* needs cut short by the end of the stream: the rest reads as zeros, as in qemu */
  while (d->active.len > 0) {
    struct active *a = &d->active.v[0];
    uint64_t have = d->pos - a->need.host;
    memset(a->buf + have, 0, (size_t)(a->need.len - have));
    if (finish_active(d, 0, err) < 0)
      return -1;
  }
  while (d->heap.len > 0) {
    struct need n = heap_pop(d);
    if (n.kind != NEED_SKIP)
      return outside_stream(d, &n, err);
  }
  for (size_t i = 0; i < d->deferred.len; i++) {
    struct need n = d->deferred.v[i];
    if (serve_past(d, &n, err) < 0)
      return -1;
  }
  if (!d->l1_done || d->l2_pending > 0)
    return verr_set(err, VERR_INTERNAL, "qcow2 decoder ended with tables unread");
  if (d->pool != NULL && qcow2_inflate_pool_drain(d->pool, err) < 0)
    return -1;
  return flush_zero(d, err);
}

static int read_header(struct decoder *d, struct vreader *in, uint8_t **chunk, size_t *len,
                       struct verr *err)
{
  uint8_t probe[QCOW2_HEADER_PROBE];
  ssize_t got = vreader_read_full(in, probe, sizeof probe, err);
  uint32_t cs;
  if (got < 0 || qcow2_header_cluster_size(probe, (size_t)got, &cs, err) < 0)
    return -1;
  *chunk = malloc(cs);
  if (*chunk == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating a qcow2 cluster");
  memcpy(*chunk, probe, (size_t)got);
  ssize_t rest = 0;
  if ((size_t)got == sizeof probe && cs > sizeof probe &&
      (rest = vreader_read_full(in, *chunk + got, cs - (size_t)got, err)) < 0)
    return -1;
  *len = (size_t)got + (size_t)rest;
  return qcow2_parse_header(*chunk, *len, &d->lay, err);
}

static int setup(struct decoder *d, struct verr *err)
{
  const struct qcow2_layout *lay = &d->lay;
  d->info->version = lay->version;
  d->info->cluster_size = lay->cluster_size;
  d->info->virtual_size = lay->virtual_size;
  d->info->compressed_zstd = lay->zstd;
  d->info->extended_l2 = lay->extended_l2;
  d->cluster = malloc(lay->cluster_size);
  if (d->cluster == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating a qcow2 cluster");
  if (qcow2_inflater_new(lay, &d->inflater, err) < 0)
    return -1;
  struct need header = { .host = 0, .len = lay->cluster_size, .kind = NEED_SKIP };
  struct need l1 = { .host = lay->l1_offset, .len = (uint64_t)lay->l1_used * 8,
                     .kind = NEED_L1 };
  struct need reftable = { .host = lay->refcount_table_offset,
                           .len = lay->refcount_table_bytes, .kind = NEED_REFTABLE };
  if (heap_push(d, &header, err) < 0)
    return -1;
  if (lay->l1_used == 0) {
    d->l1_done = 1;
    maybe_complete(d);
  } else if (heap_push(d, &l1, err) < 0)
    return -1;
  /* only a plausible refcount table; a damaged one just means less is skipped */
  int reftable_ok = reftable.host != 0 && (reftable.host & (lay->cluster_size - 1)) == 0 &&
                    reftable.len > 0 && reftable.len <= d->opts.table_bytes / 4;
  return reftable_ok ? heap_push(d, &reftable, err) : 0;
}

static void decoder_free(struct decoder *d)
{
  release_window(d);
  for (size_t i = 0; i < d->active.len; i++)
    free(d->active.v[i].buf);
  free(d->active.v);
  free(d->window.v);
  free(d->heap.v);
  free(d->dropped.v);
  free(d->deferred.v);
  free(d->cluster);
  free(d->reread);
  qcow2_inflate_pool_free(d->pool);
  qcow2_inflater_free(d->inflater);
}

/* The next host cluster, in the reader's own memory where it lends it (the HTTP ring:
 * no copy on the way to the target), else in `chunk`. A view cut short (the end of the
 * lender's memory, or of the sniffed head) is completed in `chunk`. Valid until the next
 * call. Returns the bytes there: the cluster size, fewer only at the end of the stream. */
static ssize_t next_cluster(const struct decoder *d, struct vreader *in, uint8_t *chunk,
                            const uint8_t **cluster, struct verr *err)
{
  size_t cs = d->lay.cluster_size;
  const void *view;
  ssize_t got = vreader_view(in, &view, cs, chunk, err);
  if (got <= 0 || (size_t)got == cs) {
    *cluster = view;
    return got;
  }
  if (view != chunk)
    memcpy(chunk, view, (size_t)got);
  ssize_t rest = vreader_read_full(in, chunk + got, cs - (size_t)got, err);
  *cluster = chunk;
  return rest < 0 ? -1 : got + rest;
}

static int decode(struct decoder *d, struct vreader *in, struct verr *err)
{
  CLEANUP_FREE uint8_t *chunk = NULL;
  size_t len = 0;
  if (read_header(d, in, &chunk, &len, err) < 0 || setup(d, err) < 0 ||
      process_chunk(d, 0, chunk, len, err) < 0)
    return -1;
  uint64_t host = len;
  while (len == d->lay.cluster_size) {
    const uint8_t *cluster;
    ssize_t got = next_cluster(d, in, chunk, &cluster, err);
    if (got < 0)
      return -1;
    len = (size_t)got;
    if (len > 0 && process_chunk(d, host, cluster, len, err) < 0)
      return -1;
    host += len;
  }
  return finish_stream(d, err);
}

int qcow2_stream_decode(struct vreader *in, struct vsink *out,
                        const struct qcow2_stream_opts *opts, struct qcow2_info *info,
                        struct verr *err)
{
  struct qcow2_info scratch_info;
  struct decoder d = { .out = out, .info = info ? info : &scratch_info };
  memset(d.info, 0, sizeof *d.info);
  if (opts != NULL)
    d.opts = *opts;
  if (d.opts.window_bytes == 0)
    d.opts.window_bytes = QCOW2_DEFAULT_WINDOW_BYTES;
  if (d.opts.table_bytes == 0)
    d.opts.table_bytes = QCOW2_DEFAULT_TABLE_BYTES;
  int r = decode(&d, in, err);
  decoder_free(&d);
  return r;
}
