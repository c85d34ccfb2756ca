/* vimport: a small work queue; see workq.h. */
#include "workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

enum slot_state { SLOT_FREE, SLOT_TAKEN, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE };

struct slot {
  void *job;
  enum slot_state state; /* under the lock */
  uint64_t seq;          /* queue order: workers take the oldest */
};

struct workq {
  struct workq_ops ops;
  void *opaque;
  struct slot *slots;
  size_t nslots;
  uint64_t next_seq;

  pthread_mutex_t lock;
  pthread_cond_t queued;   /* a job was queued, or stopping */
  pthread_cond_t finished; /* a job finished */
  size_t busy;             /* slots QUEUED or RUNNING */
  bool stopping;
  pthread_t *workers;
  unsigned nworkers;
};

static struct slot *oldest_queued(struct workq *q)
{
  struct slot *best = NULL;
  for (size_t i = 0; i < q->nslots; i++)
    if (q->slots[i].state == SLOT_QUEUED && (best == NULL || q->slots[i].seq < best->seq))
      best = &q->slots[i];
  return best;
}

static void *worker_main(void *arg)
{
  struct workq *q = arg;
  void *worker = q->ops.worker_init != NULL ? q->ops.worker_init(q->opaque) : NULL;
  pthread_mutex_lock(&q->lock);
  for (;;) {
    struct slot *s = NULL;
    while (!q->stopping && (s = oldest_queued(q)) == NULL)
      pthread_cond_wait(&q->queued, &q->lock);
    if (s == NULL)
      break;
    s->state = SLOT_RUNNING;
    pthread_mutex_unlock(&q->lock);
    q->ops.run(q->opaque, worker, s->job);
    pthread_mutex_lock(&q->lock);
    s->state = SLOT_DONE;
    q->busy--;
    pthread_cond_signal(&q->finished);
  }
  pthread_mutex_unlock(&q->lock);
  if (q->ops.worker_fini != NULL)
    q->ops.worker_fini(q->opaque, worker);
  return NULL;
}

static struct slot *slot_of(struct workq *q, void *job)
{
  for (size_t i = 0; i < q->nslots; i++)
    if (q->slots[i].job == job)
      return &q->slots[i];
  abort(); /* not one of this queue's jobs: a bug in the owner */
}

/* Hand every finished job to `done`. Workers never touch a DONE slot's job. */
static int reap_done(struct workq *q)
{
  for (size_t i = 0; i < q->nslots; i++) {
    pthread_mutex_lock(&q->lock);
    bool done = q->slots[i].state == SLOT_DONE;
    pthread_mutex_unlock(&q->lock);
    if (!done)
      continue;
    int r = q->ops.done(q->opaque, q->slots[i].job);
    pthread_mutex_lock(&q->lock);
    q->slots[i].state = SLOT_FREE;
    pthread_mutex_unlock(&q->lock);
    if (r != 0)
      return r;
  }
  return 0;
}

int workq_take(struct workq *q, void **job)
{
  for (;;) {
    struct slot *s = NULL;
    bool any_done = false;
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < q->nslots && s == NULL; i++) {
      if (q->slots[i].state == SLOT_FREE)
        s = &q->slots[i];
      any_done |= q->slots[i].state == SLOT_DONE;
    }
    if (s == NULL && !any_done && q->busy == 0) {
      pthread_mutex_unlock(&q->lock);
      return EINVAL; /* every job is taken and none submitted: a bug in the owner */
    }
    if (s == NULL && !any_done)
      pthread_cond_wait(&q->finished, &q->lock);
    if (s != NULL)
      s->state = SLOT_TAKEN;
    pthread_mutex_unlock(&q->lock);
    if (s != NULL) {
      *job = s->job;
      return 0;
    }
    int r = reap_done(q);
    if (r != 0)
      return r;
  }
}

void workq_submit(struct workq *q, void *job)
{
  pthread_mutex_lock(&q->lock);
  struct slot *s = slot_of(q, job);
  s->state = SLOT_QUEUED;
  s->seq = q->next_seq++;
  q->busy++;
  pthread_cond_signal(&q->queued);
  pthread_mutex_unlock(&q->lock);
}

int workq_reap(struct workq *q, bool all)
{
  if (all) {
    pthread_mutex_lock(&q->lock);
    while (q->busy > 0)
      pthread_cond_wait(&q->finished, &q->lock);
    pthread_mutex_unlock(&q->lock);
  }
  return reap_done(q);
}

void workq_free(struct workq *q)
{
  if (q == NULL)
    return;
  pthread_mutex_lock(&q->lock);
  q->stopping = true;
  pthread_cond_broadcast(&q->queued);
  pthread_mutex_unlock(&q->lock);
  for (unsigned i = 0; i < q->nworkers; i++)
    pthread_join(q->workers[i], NULL);
  free(q->workers);
  free(q->slots);
  pthread_mutex_destroy(&q->lock);
  pthread_cond_destroy(&q->queued);
  pthread_cond_destroy(&q->finished);
  free(q);
}

int workq_new(const struct workq_ops *ops, void *opaque, unsigned threads, void *const *jobs,
              size_t njobs, struct workq **out)
{
  if (threads < 1 || njobs < 1 || ops->run == NULL || ops->done == NULL)
    return EINVAL;
  struct workq *q = calloc(1, sizeof *q);
  if (q == NULL)
    return ENOMEM;
  q->ops = *ops;
  q->opaque = opaque;
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->queued, NULL);
  pthread_cond_init(&q->finished, NULL);
  q->slots = calloc(njobs, sizeof *q->slots);
  q->workers = calloc(threads, sizeof *q->workers);
  int r = q->slots == NULL || q->workers == NULL ? ENOMEM : 0;
  for (size_t i = 0; r == 0 && i < njobs; i++)
    q->slots[i].job = jobs[i];
  q->nslots = njobs;
  for (unsigned i = 0; r == 0 && i < threads; i++) {
    r = pthread_create(&q->workers[i], NULL, worker_main, q);
    if (r == 0)
      q->nworkers++;
  }
  if (r != 0) {
    workq_free(q);
    return r;
  }
  *out = q;
  return 0;
}
