/* vimport qcow2: compressed clusters decompressed on worker threads. Decompression is
 * most of the work of a compressed image, each cluster is independent, and the sink
 * takes extents in any order: so clusters are queued (a copy of their compressed bytes)
 * and their output emitted on the decoder's thread as they finish. The threads and the
 * job life cycle are pkg/core/workq. */
#include "internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "blkhash/blkhash.h"
#include "core/hugebuf.h"
#include "core/stream.h"
#include "core/workq.h"

/* Memory for the jobs' buffers (their clusters out, about as much in, each). */
#define INFLATE_POOL_BYTES (16u << 20)
/* Clusters are queued in batches of about this many output bytes: one hand-over (a lock
 * and a wake-up on each side) per MiB rather than per 64 KiB cluster, which perf showed
 * costing the decoder's thread more than the copying. */
#define INFLATE_BATCH_BYTES (1u << 20)

struct inflate_cluster {
  uint64_t host, guest, guest_len;
  size_t in_off, in_len; /* in the job's `in` */
  size_t consumed;       /* set by the worker: see qcow2_inflate */
};

struct inflate_job {
  struct inflate_cluster *clusters; /* batch entries, owned */
  size_t n;
  uint8_t *in; /* the clusters' compressed bytes, back to back, owned, in_cap bytes */
  size_t in_len, in_cap;
  uint8_t *out; /* batch clusters, in the pool's arena */
  unsigned char *mds; /* with hashing: blocks_per_cluster digests per cluster, owned */
  int failed;
  struct verr err;
};

struct qcow2_inflate_pool {
  struct qcow2_layout lay;
  /* With block hashing: the options each worker hashes with, and a hasher of the
   * caller's thread that only describes the digests. blocks NULL: no hashing. */
  struct blkhash_opts hash_opts;
  struct blkhash_blocks *blocks;
  size_t blocks_per_cluster;
  size_t cluster_mds; /* digest bytes per cluster */
  size_t batch; /* clusters per job */
  struct inflate_job *jobs;
  size_t njobs;
  uint8_t *outs; /* every job's out, one arena (core/hugebuf.h) */
  size_t job_bytes;
  struct inflate_job *filling; /* taken, not yet submitted */
  struct workq *q;
  qcow2_emit_fn emit;
  void *emit_opaque;
  struct verr err; /* the first error a finished job reported */
};

/* What each worker thread owns. */
struct inflate_worker {
  struct qcow2_inflater *z;
  struct blkhash_blocks *blocks; /* NULL without hashing */
};

static void worker_fini(void *opaque, void *worker)
{
  (void)opaque;
  struct inflate_worker *w = worker;
  if (w == NULL)
    return;
  qcow2_inflater_free(w->z);
  blkhash_blocks_free(w->blocks);
  free(w);
}

static void *worker_init(void *opaque)
{
  struct qcow2_inflate_pool *p = opaque;
  struct verr ignored;
  struct inflate_worker *w = calloc(1, sizeof *w);
  if (w == NULL || qcow2_inflater_new(&p->lay, &w->z, &ignored) < 0 ||
      (p->blocks != NULL && blkhash_blocks_new(&p->hash_opts, &w->blocks) != 0)) {
    worker_fini(p, w);
    return NULL;
  }
  return w;
}

/* A whole cluster (not clipped by the virtual size) is a whole number of blocks. */
static bool hashed(const struct qcow2_inflate_pool *p, const struct inflate_cluster *c)
{
  return p->blocks != NULL && c->guest_len == p->lay.cluster_size;
}

static void run_job(void *opaque, void *worker, void *job)
{
  struct qcow2_inflate_pool *p = opaque;
  struct inflate_worker *w = worker;
  struct inflate_job *j = job;
  size_t cs = p->lay.cluster_size;
  if (w == NULL) {
    j->failed = verr_sys(&j->err, VERR_NOMEM, ENOMEM, "allocating a qcow2 decompressor");
    return;
  }
  for (size_t i = 0; i < j->n && j->failed == 0; i++) {
    struct inflate_cluster *c = &j->clusters[i];
    uint8_t *out = j->out + i * cs;
    j->failed = qcow2_inflate(w->z, j->in + c->in_off, c->in_len, out, cs, c->host,
                              &c->consumed, &j->err);
    if (j->failed == 0 && hashed(p, c) &&
        blkhash_blocks_hash(w->blocks, out, p->blocks_per_cluster, j->mds + i * p->cluster_mds) != 0)
      j->failed = verr_set(&j->err, VERR_INTERNAL, "block hash failed (OpenSSL)");
  }
}

static int job_done(void *opaque, void *job)
{
  struct qcow2_inflate_pool *p = opaque;
  struct inflate_job *j = job;
  if (j->failed < 0) {
    p->err = j->err;
    return EIO;
  }
  for (size_t i = 0; i < j->n; i++) {
    const struct inflate_cluster *c = &j->clusters[i];
    struct vsink_digests d;
    if (hashed(p, c))
      blkhash_blocks_describe(p->blocks, j->mds + i * p->cluster_mds, &d);
    struct qcow2_emitted e = { .host = c->host, .consumed = c->consumed, .guest = c->guest,
                               .buf = j->out + i * p->lay.cluster_size, .len = c->guest_len,
                               .digests = hashed(p, c) ? &d : NULL };
    if (p->emit(p->emit_opaque, &e, &p->err) < 0)
      return EIO;
  }
  return 0;
}

static const struct workq_ops pool_ops = {
  .worker_init = worker_init,
  .worker_fini = worker_fini,
  .run = run_job,
  .done = job_done,
};

static int pool_error(struct qcow2_inflate_pool *p, int r, struct verr *err)
{
  if (r == EIO) /* a job's or the sink's error, already worded */
    return *err = p->err, -1;
  return verr_sys(err, VERR_INTERNAL, r, "qcow2 decompression threads failed");
}

static void submit_filling(struct qcow2_inflate_pool *p)
{
  if (p->filling != NULL)
    workq_submit(p->q, p->filling);
  p->filling = NULL;
}

int qcow2_inflate_pool_add(struct qcow2_inflate_pool *p, uint64_t host, const uint8_t *in,
                           size_t in_len, uint64_t guest, uint64_t guest_len, struct verr *err)
{
  if (p->filling == NULL) {
    void *taken;
    int r = workq_take(p->q, &taken);
    if (r != 0)
      return pool_error(p, r, err);
    struct inflate_job *j = taken;
    j->n = j->in_len = 0;
    j->failed = 0;
    p->filling = j;
  }
  struct inflate_job *j = p->filling;
  if (in_len > j->in_cap - j->in_len) {
    size_t cap = j->in_len + in_len;
    uint8_t *grown = realloc(j->in, cap);
    if (grown == NULL) /* the slot stays taken: the decode fails and frees the pool */
      return verr_sys(err, VERR_NOMEM, ENOMEM, "copying a qcow2 compressed cluster");
    j->in = grown;
    j->in_cap = cap;
  }
  memcpy(j->in + j->in_len, in, in_len);
  j->clusters[j->n++] = (struct inflate_cluster){ .host = host, .guest = guest,
                                                  .guest_len = guest_len, .in_off = j->in_len,
                                                  .in_len = in_len };
  j->in_len += in_len;
  if (j->n == p->batch)
    submit_filling(p);
  return 0;
}

int qcow2_inflate_pool_drain(struct qcow2_inflate_pool *p, struct verr *err)
{
  submit_filling(p);
  int r = workq_reap(p->q, true);
  return r == 0 ? 0 : pool_error(p, r, err);
}

void qcow2_inflate_pool_free(struct qcow2_inflate_pool *p)
{
  if (p == NULL)
    return;
  workq_free(p->q);
  for (size_t i = 0; p->jobs != NULL && i < p->njobs; i++) {
    free(p->jobs[i].clusters);
    free(p->jobs[i].in);
    free(p->jobs[i].mds);
  }
  free(p->jobs);
  hugebuf_free(p->outs, p->njobs * p->job_bytes);
  blkhash_blocks_free(p->blocks);
  free(p);
}

/* Hash on the workers when the clusters are whole blocks; else leave it to the sink. */
static int start_hashing(struct qcow2_inflate_pool *p, const struct blkhash_opts *block_hash)
{
  if (block_hash == NULL)
    return 0;
  p->hash_opts = (struct blkhash_opts){ .digest_name = block_hash->digest_name,
                                        .block_size = block_hash->block_size };
  int r = blkhash_blocks_new(&p->hash_opts, &p->blocks);
  if (r != 0)
    return r;
  size_t bs = blkhash_blocks_block_size(p->blocks);
  if (p->lay.cluster_size % bs != 0) {
    blkhash_blocks_free(p->blocks);
    p->blocks = NULL;
    return 0;
  }
  p->blocks_per_cluster = p->lay.cluster_size / bs;
  p->cluster_mds = p->blocks_per_cluster * blkhash_blocks_md_len(p->blocks);
  return 0;
}

int qcow2_inflate_pool_new(const struct qcow2_layout *lay, unsigned threads,
                           const struct blkhash_opts *block_hash, qcow2_emit_fn emit,
                           void *emit_opaque, struct qcow2_inflate_pool **out, struct verr *err)
{
  struct qcow2_inflate_pool *p = calloc(1, sizeof *p);
  if (p == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the qcow2 decompression threads");
  p->lay = *lay;
  int r = start_hashing(p, block_hash);
  if (r != 0) {
    qcow2_inflate_pool_free(p);
    return verr_sys(err, r == ENOMEM ? VERR_NOMEM : VERR_INTERNAL, r,
                    "starting the block hash on the qcow2 decompression threads");
  }
  p->emit = emit;
  p->emit_opaque = emit_opaque;
  p->batch = INFLATE_BATCH_BYTES / lay->cluster_size;
  if (p->batch == 0)
    p->batch = 1;
  size_t job_bytes = p->batch * (size_t)lay->cluster_size;
  /* Two jobs per worker keep every worker busy while the decoder fills the next; with
   * large clusters, fewer jobs and workers keep the pool within INFLATE_POOL_BYTES. */
  size_t fit = INFLATE_POOL_BYTES / (2 * job_bytes);
  p->njobs = 2 * (size_t)threads + 1;
  if (p->njobs > fit)
    p->njobs = fit < 2 ? 2 : fit;
  if (threads > p->njobs - 1)
    threads = (unsigned)(p->njobs - 1);
  p->jobs = calloc(p->njobs, sizeof *p->jobs);
  void **ptrs = calloc(p->njobs, sizeof *ptrs);
  p->job_bytes = job_bytes;
  p->outs = hugebuf_alloc(p->njobs * job_bytes);
  r = p->jobs == NULL || ptrs == NULL || p->outs == NULL ? ENOMEM : 0;
  for (size_t i = 0; r == 0 && i < p->njobs; i++) {
    ptrs[i] = &p->jobs[i];
    p->jobs[i].out = p->outs + i * job_bytes;
    p->jobs[i].clusters = calloc(p->batch, sizeof *p->jobs[i].clusters);
    if (p->blocks != NULL)
      p->jobs[i].mds = malloc(p->batch * p->cluster_mds);
    if (p->jobs[i].clusters == NULL ||
        (p->blocks != NULL && p->jobs[i].mds == NULL))
      r = ENOMEM;
  }
  if (r == 0)
    r = workq_new(&pool_ops, p, threads, ptrs, p->njobs, &p->q);
  free(ptrs);
  if (r != 0) {
    qcow2_inflate_pool_free(p);
    return verr_sys(err, VERR_NOMEM, r, "starting %u qcow2 decompression threads", threads);
  }
  *out = p;
  return 0;
}
