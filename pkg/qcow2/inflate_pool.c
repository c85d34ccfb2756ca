/* vimport qcow2: compressed clusters decompressed on worker threads. Decompression is
 * most of the work of a compressed image, each cluster is independent, and the sink
 * takes extents in any order: so clusters are queued (a copy of their compressed bytes)
 * and their output emitted on the decoder's thread as they finish. The threads and the
 * job life cycle are pkg/core/workq. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
};

struct inflate_job {
  struct inflate_cluster *clusters; /* batch entries, owned */
  size_t n;
  uint8_t *in; /* the clusters' compressed bytes, back to back, owned, in_cap bytes */
  size_t in_len, in_cap;
  uint8_t *out; /* batch clusters, owned */
  int failed;
  struct verr err;
};

struct qcow2_inflate_pool {
  struct qcow2_layout lay;
  size_t batch; /* clusters per job */
  struct inflate_job *jobs;
  size_t njobs;
  struct inflate_job *filling; /* taken, not yet submitted */
  struct workq *q;
  qcow2_emit_fn emit;
  void *emit_opaque;
  struct verr err; /* the first error a finished job reported */
};

static void *worker_init(void *opaque)
{
  struct qcow2_inflate_pool *p = opaque;
  struct qcow2_inflater *z = NULL;
  struct verr ignored;
  return qcow2_inflater_new(&p->lay, &z, &ignored) == 0 ? z : NULL;
}

static void worker_fini(void *opaque, void *worker)
{
  (void)opaque;
  qcow2_inflater_free(worker);
}

static void run_job(void *opaque, void *worker, void *job)
{
  struct qcow2_inflate_pool *p = opaque;
  struct inflate_job *j = job;
  size_t cs = p->lay.cluster_size;
  if (worker == NULL) {
    j->failed = verr_sys(&j->err, VERR_NOMEM, ENOMEM, "allocating a qcow2 decompressor");
    return;
  }
  for (size_t i = 0; i < j->n && j->failed == 0; i++) {
    const struct inflate_cluster *c = &j->clusters[i];
    j->failed = qcow2_inflate(worker, j->in + c->in_off, c->in_len, j->out + i * cs, cs, c->host,
                              &j->err);
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
    if (p->emit(p->emit_opaque, c->guest, j->out + i * p->lay.cluster_size, c->guest_len,
                &p->err) < 0)
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
    free(p->jobs[i].out);
  }
  free(p->jobs);
  free(p);
}

int qcow2_inflate_pool_new(const struct qcow2_layout *lay, unsigned threads, qcow2_emit_fn emit,
                           void *emit_opaque, struct qcow2_inflate_pool **out, struct verr *err)
{
  struct qcow2_inflate_pool *p = calloc(1, sizeof *p);
  if (p == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the qcow2 decompression threads");
  p->lay = *lay;
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
  int r = p->jobs == NULL || ptrs == NULL ? ENOMEM : 0;
  for (size_t i = 0; r == 0 && i < p->njobs; i++) {
    ptrs[i] = &p->jobs[i];
    p->jobs[i].out = malloc(job_bytes);
    p->jobs[i].clusters = calloc(p->batch, sizeof *p->jobs[i].clusters);
    if (p->jobs[i].out == NULL || p->jobs[i].clusters == NULL)
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
