/* vimport blkhash: worker threads for the out-of-order hasher; see pool.h. The threads
 * and the job life cycle are pkg/core/workq; this file is what a job is. */
#include "pool.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blkhash.h"
#include "core/hugebuf.h"
#include "core/workq.h"
#include "internal.h"

struct job {
  uint64_t block;     /* first block index */
  size_t nblocks;
  unsigned char *buf; /* job_bytes, owned */
  unsigned char *mds; /* one digest per block, owned */
  int error;
};

struct hash_pool {
  struct hash_pool_opts o;
  unsigned md_len;
  size_t job_blocks;
  struct job *jobs;
  size_t njobs;
  unsigned char *bufs; /* one arena (core/hugebuf.h) for every job's buf */
  struct job *filling; /* taken from the queue, being filled; caller's thread only */
  struct workq *q;
};

static void *worker_init(void *opaque)
{
  const struct hash_pool *p = opaque;
  struct blkhash_blocks *b = NULL;
  return blkhash_blocks_from(p->o.md_type, p->o.block_size, p->o.zero_md, &b) == 0 ? b : NULL;
}

static void worker_fini(void *opaque, void *worker)
{
  (void)opaque;
  blkhash_blocks_free(worker);
}

static void run_job(void *opaque, void *worker, void *job)
{
  (void)opaque;
  struct job *j = job;
  j->error = worker == NULL ? ENOMEM : blkhash_blocks_hash(worker, j->buf, j->nblocks, j->mds);
}

static int job_done(void *opaque, void *job)
{
  const struct hash_pool *p = opaque;
  const struct job *j = job;
  int r = j->error;
  for (size_t i = 0; r == 0 && i < j->nblocks; i++)
    r = p->o.reap(p->o.reap_opaque, j->block + i, j->mds + i * p->md_len);
  return r;
}

static const struct workq_ops pool_ops = {
  .worker_init = worker_init,
  .worker_fini = worker_fini,
  .run = run_job,
  .done = job_done,
};

static void submit_filling(struct hash_pool *p)
{
  if (p->filling != NULL)
    workq_submit(p->q, p->filling);
  p->filling = NULL;
}

int hash_pool_add(struct hash_pool *p, uint64_t block, const unsigned char *buf, size_t nblocks)
{
  size_t bs = p->o.block_size;
  while (nblocks > 0) {
    struct job *j = p->filling;
    if (j != NULL && (j->block + j->nblocks != block || j->nblocks == p->job_blocks)) {
      submit_filling(p);
      j = NULL;
    }
    if (j == NULL) {
      void *taken;
      int r = workq_take(p->q, &taken);
      if (r != 0)
        return r;
      j = p->filling = taken;
      j->block = block;
      j->nblocks = 0;
    }
    size_t n = p->job_blocks - j->nblocks < nblocks ? p->job_blocks - j->nblocks : nblocks;
    memcpy(j->buf + j->nblocks * bs, buf, n * bs);
    j->nblocks += n;
    block += n;
    buf += n * bs;
    nblocks -= n;
  }
  return 0;
}

int hash_pool_reap(struct hash_pool *p, bool all)
{
  if (all)
    submit_filling(p);
  return workq_reap(p->q, all);
}

void hash_pool_free(struct hash_pool *p)
{
  if (p == NULL)
    return;
  workq_free(p->q);
  for (size_t i = 0; p->jobs != NULL && i < p->njobs; i++)
    free(p->jobs[i].mds);
  free(p->jobs);
  hugebuf_free(p->bufs, p->njobs * p->o.job_bytes);
  free(p);
}

static int alloc_jobs(struct hash_pool *p, void ***ptrs)
{
  /* Two jobs per worker keep every worker busy while the caller fills the next. */
  p->njobs = 2 * (size_t)p->o.threads + 1;
  p->jobs = calloc(p->njobs, sizeof *p->jobs);
  *ptrs = calloc(p->njobs, sizeof **ptrs);
  if (p->jobs == NULL || *ptrs == NULL)
    return ENOMEM;
  if (p->o.job_bytes > SIZE_MAX / p->njobs ||
      (p->bufs = hugebuf_alloc(p->njobs * p->o.job_bytes)) == NULL)
    return ENOMEM;
  for (size_t i = 0; i < p->njobs; i++) {
    (*ptrs)[i] = &p->jobs[i];
    p->jobs[i].buf = p->bufs + i * p->o.job_bytes;
    if ((p->jobs[i].mds = malloc(p->job_blocks * p->md_len)) == NULL)
      return ENOMEM;
  }
  return 0;
}

int hash_pool_new(const struct hash_pool_opts *opts, struct hash_pool **out)
{
  if (opts->threads < 1 || opts->block_size == 0 || opts->job_bytes < opts->block_size ||
      opts->job_bytes % opts->block_size != 0)
    return EINVAL;
  struct hash_pool *p = calloc(1, sizeof *p);
  if (p == NULL)
    return ENOMEM;
  p->o = *opts;
  p->md_len = (unsigned)EVP_MD_size(opts->md_type);
  p->job_blocks = opts->job_bytes / opts->block_size;
  void **ptrs = NULL;
  int r = alloc_jobs(p, &ptrs);
  if (r == 0)
    r = workq_new(&pool_ops, p, opts->threads, ptrs, p->njobs, &p->q);
  free(ptrs);
  if (r != 0) {
    hash_pool_free(p);
    return r;
  }
  *out = p;
  return 0;
}
