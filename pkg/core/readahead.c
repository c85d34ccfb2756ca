/* vimport: a reader that reads ahead on a worker thread (readahead.h). */
#include "core/readahead.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define READAHEAD_DEFAULT_CHUNK ((size_t)1 << 20)
#define READAHEAD_DEFAULT_DEPTH 4u

struct readahead {
  struct vreader *lower; /* owned; the worker's alone until it stopped */
  struct readahead_opts opts;
  unsigned char **bufs;  /* depth chunks, owned */
  size_t *lens;

  pthread_mutex_t lock;
  pthread_cond_t changed; /* a chunk filled or freed, the end, a stop */
  /* Under `lock`. The consumer owns chunks head .. head+count-1; the worker fills
   * chunk (head+count) % depth, which nobody else touches meanwhile. */
  unsigned head, count;
  bool ended;       /* the worker read its last chunk (the end, an error, a stop) */
  bool failed;      /* ...and `error` is why */
  bool quit;        /* readahead_stop() or close() asked the worker to stop */
  struct verr error;

  size_t taken;     /* the consumer's bytes taken from chunk `head` (its own) */
  pthread_t thread;
  bool joined;
};

/* Fill one chunk from `lower`: up to its size, fewer at the end. */
static ssize_t fill(struct readahead *ra, unsigned char *buf, struct verr *err)
{
  size_t got = 0;
  while (got < ra->opts.chunk) {
    ssize_t n = ra->lower->ops->read(ra->lower, buf + got, ra->opts.chunk - got, err);
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

/* The free chunk to fill next, or -1 when asked to stop. */
static int next_free(struct readahead *ra)
{
  pthread_mutex_lock(&ra->lock);
  while (ra->count == ra->opts.depth && !ra->quit)
    pthread_cond_wait(&ra->changed, &ra->lock);
  int slot = ra->quit ? -1 : (int)((ra->head + ra->count) % ra->opts.depth);
  pthread_mutex_unlock(&ra->lock);
  return slot;
}

static void *worker(void *arg)
{
  struct readahead *ra = arg;
  struct verr err = { 0 };
  ssize_t n = 1;
  int slot;
  while (n > 0 && (slot = next_free(ra)) >= 0) {
    n = fill(ra, ra->bufs[slot], &err);
    pthread_mutex_lock(&ra->lock);
    if (n > 0) {
      ra->lens[slot] = (size_t)n;
      ra->count++;
    }
    if (n < 0) {
      ra->failed = true;
      ra->error = err;
    }
    if (n > 0 && (size_t)n < ra->opts.chunk)
      n = 0; /* a short chunk is the last one: fill() read to the end */
    pthread_cond_broadcast(&ra->changed);
    pthread_mutex_unlock(&ra->lock);
  }
  pthread_mutex_lock(&ra->lock);
  ra->ended = true;
  pthread_cond_broadcast(&ra->changed);
  pthread_mutex_unlock(&ra->lock);
  return NULL;
}

static ssize_t readahead_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct readahead *ra = r->state;
  pthread_mutex_lock(&ra->lock);
  while (ra->count == 0 && !ra->ended)
    pthread_cond_wait(&ra->changed, &ra->lock);
  unsigned head = ra->head;
  bool have = ra->count > 0;
  ssize_t result = 0;
  if (!have && ra->failed) {
    *err = ra->error;
    result = -1;
  }
  pthread_mutex_unlock(&ra->lock);
  if (!have)
    return result;
  size_t left = ra->lens[head] - ra->taken;
  size_t n = len < left ? len : left;
  memcpy(buf, ra->bufs[head] + ra->taken, n);
  ra->taken += n;
  if (ra->taken == ra->lens[head]) {
    pthread_mutex_lock(&ra->lock);
    ra->head = (ra->head + 1) % ra->opts.depth;
    ra->count--;
    ra->taken = 0;
    pthread_cond_broadcast(&ra->changed);
    pthread_mutex_unlock(&ra->lock);
  }
  return (ssize_t)n;
}

static void join(struct readahead *ra, bool interrupt)
{
  if (ra->joined)
    return;
  pthread_mutex_lock(&ra->lock);
  ra->quit = true;
  bool ended = ra->ended;
  pthread_cond_broadcast(&ra->changed);
  pthread_mutex_unlock(&ra->lock);
  if (!ended && interrupt && ra->opts.interrupt != NULL)
    ra->opts.interrupt(ra->opts.interrupt_arg);
  pthread_join(ra->thread, NULL);
  ra->joined = true;
}

static const struct vreader_ops readahead_ops;

void readahead_stop(struct vreader *r)
{
  if (r != NULL && r->ops == &readahead_ops)
    join(r->state, false);
}

static void free_state(struct readahead *ra)
{
  for (unsigned i = 0; ra->bufs != NULL && i < ra->opts.depth; i++)
    free(ra->bufs[i]);
  free(ra->bufs);
  free(ra->lens);
  pthread_cond_destroy(&ra->changed);
  pthread_mutex_destroy(&ra->lock);
  free(ra);
}

static void readahead_close(struct vreader *r)
{
  struct readahead *ra = r->state;
  join(ra, true);
  vreader_close(ra->lower);
  free_state(ra);
  free(r);
}

static const struct vreader_ops readahead_ops = {
  .name = "read-ahead",
  .read = readahead_read,
  .close = readahead_close,
};

static struct readahead *alloc_state(struct vreader *lower, const struct readahead_opts *o)
{
  struct readahead *ra = calloc(1, sizeof *ra);
  if (ra == NULL)
    return NULL;
  ra->lower = lower;
  ra->opts = *o;
  if (ra->opts.chunk == 0)
    ra->opts.chunk = READAHEAD_DEFAULT_CHUNK;
  if (ra->opts.depth == 0)
    ra->opts.depth = READAHEAD_DEFAULT_DEPTH;
  pthread_mutex_init(&ra->lock, NULL);
  pthread_cond_init(&ra->changed, NULL);
  ra->bufs = calloc(ra->opts.depth, sizeof *ra->bufs);
  ra->lens = calloc(ra->opts.depth, sizeof *ra->lens);
  bool ok = ra->bufs != NULL && ra->lens != NULL;
  for (unsigned i = 0; ok && i < ra->opts.depth; i++)
    ok = (ra->bufs[i] = malloc(ra->opts.chunk)) != NULL;
  if (!ok) {
    free_state(ra);
    return NULL;
  }
  return ra;
}

int readahead_new(struct vreader *lower, const struct readahead_opts *opts,
                  struct vreader **out, struct verr *err)
{
  static const struct readahead_opts defaults = { 0 };
  struct readahead *ra = alloc_state(lower, opts != NULL ? opts : &defaults);
  struct vreader *r = ra != NULL ? malloc(sizeof *r) : NULL;
  if (r == NULL) {
    if (ra != NULL)
      free_state(ra);
    vreader_close(lower);
    return verr_set(err, VERR_NOMEM, "out of memory for the read-ahead buffers");
  }
  int rc = pthread_create(&ra->thread, NULL, worker, ra);
  if (rc != 0) {
    free_state(ra);
    free(r);
    vreader_close(lower);
    return verr_sys(err, VERR_NOMEM, rc, "cannot start the read-ahead thread");
  }
  *r = (struct vreader){ .ops = &readahead_ops, .state = ra };
  *out = r;
  return 0;
}
