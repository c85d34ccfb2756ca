/* vimport: a small work queue. A fixed set of job slots, filled on the owner's thread,
 * run by worker threads, and handed back to the owner's thread when finished, in any
 * order. For stages whose jobs are independent and whose results may arrive out of
 * order: block hashing of out-of-order content, qcow2 cluster decompression.
 *
 * The owner allocates its jobs (any struct) and passes one pointer per slot; the
 * queue never looks inside. A job is, in turn: free -> taken by the owner (workq_take)
 * -> submitted (workq_submit) -> run on a worker -> finished -> given back through the
 * owner's `done` callback (workq_take or workq_reap) -> free. Memory is the owner's
 * jobs, fixed at creation: nothing grows with the input.
 *
 * Functions return 0, or a positive errno value (pthread_create's, ENOMEM), or what
 * the `done` callback returned (it stops the reaping).
 */
#ifndef VIMPORT_CORE_WORKQ_H
#define VIMPORT_CORE_WORKQ_H

#include <stdbool.h>
#include <stddef.h>

struct workq;

struct workq_ops {
  /* Per-worker state (an OpenSSL context, a decompressor), made on the worker's thread;
   * NULL is allowed and passed on to run(). */
  void *(*worker_init)(void *opaque);
  void (*worker_fini)(void *opaque, void *worker);
  /* Run one job on a worker thread. Errors go into the job, for `done` to see. */
  void (*run)(void *opaque, void *worker, void *job);
  /* A finished job, on the owner's thread; non-zero stops reaping and is returned. */
  int (*done)(void *opaque, void *job);
};

/* `jobs`: njobs pointers, owned by the caller, who frees them after workq_free(). */
int workq_new(const struct workq_ops *ops, void *opaque, unsigned threads, void *const *jobs,
              size_t njobs, struct workq **out);

/* A free job for the owner to fill. Finished jobs are handed to `done` while waiting
 * for one. */
int workq_take(struct workq *q, void **job);

/* Queue a job from workq_take for the workers. */
void workq_submit(struct workq *q, void *job);

/* Hand the finished jobs to `done`. With `all`, first wait until every submitted job
 * finished. */
int workq_reap(struct workq *q, bool all);

/* Stop and join the workers; jobs not reaped are dropped. NULL is fine. */
void workq_free(struct workq *q);

#endif
