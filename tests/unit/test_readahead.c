/* pkg/core/readahead: every byte once and in order whatever the chunk and read sizes,
 * the lower reader's error after the bytes before it, memory bounded by depth * chunk,
 * readahead_stop() handing `lower` back where the worker left it, and close()
 * interrupting a read that would otherwise wait forever. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/readahead.h"

/* A stream of `total` bytes (byte i is i * 7 + i / 251, truncated), in reads of at most
 * `step`; fails with VERR_SOURCE after `fail_at` bytes when it is set. */
struct pattern {
  uint64_t total, pos, fail_at;
  size_t step;
  atomic_uint_fast64_t consumed; /* bytes the test took through the read-ahead */
  uint64_t max_ahead;            /* the most pos - consumed seen by a read */
  bool closed;
};

static unsigned char byte_at(uint64_t i)
{
  return (unsigned char)(i * 7 + i / 251);
}

static ssize_t pattern_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct pattern *p = r->state;
  if (p->fail_at != 0 && p->pos >= p->fail_at)
    return verr_set(err, VERR_SOURCE, "pattern failed at %llu", (unsigned long long)p->pos);
  uint64_t ahead = p->pos - atomic_load(&p->consumed);
  if (ahead > p->max_ahead)
    p->max_ahead = ahead;
  uint64_t left = (p->fail_at != 0 ? p->fail_at : p->total) - p->pos;
  size_t n = len < p->step ? len : p->step;
  if (n > left)
    n = (size_t)left;
  for (size_t i = 0; i < n; i++)
    ((unsigned char *)buf)[i] = byte_at(p->pos + i);
  p->pos += n;
  return (ssize_t)n;
}

static void pattern_close(struct vreader *r)
{
  struct pattern *p = r->state;
  p->closed = true;
  free(r);
}

static const struct vreader_ops pattern_ops = { "pattern", pattern_read, NULL, pattern_close };

static struct vreader *pattern_new(struct pattern *p)
{
  struct vreader *r = malloc(sizeof *r);
  cr_assert_not_null(r);
  *r = (struct vreader){ .ops = &pattern_ops, .state = p };
  return r;
}

/* Read `ra` to its end in reads of `len`, checking each byte; returns the count. */
static uint64_t drain_checked(struct vreader *ra, struct pattern *p, uint64_t from, size_t len,
                              struct verr *err, ssize_t *last)
{
  unsigned char *buf = malloc(len);
  cr_assert_not_null(buf);
  uint64_t got = 0;
  ssize_t n;
  while ((n = ra->ops->read(ra, buf, len, err)) > 0) {
    for (ssize_t i = 0; i < n; i++)
      cr_assert_eq(buf[i], byte_at(from + got + (uint64_t)i), "byte %llu differs",
                   (unsigned long long)(from + got + (uint64_t)i));
    got += (uint64_t)n;
    atomic_store(&p->consumed, from + got);
  }
  *last = n;
  free(buf);
  return got;
}

Test(readahead, every_byte_once_in_order)
{
  static const struct { uint64_t total; size_t step, chunk, read; unsigned depth; } cases[] = {
    { 0, 4096, 4096, 4096, 2 },               /* empty */
    { 4096 * 8, 4096, 4096, 4096, 2 },        /* whole chunks: no short last chunk */
    { 1000003, 777, 65536, 1000, 3 },         /* small reads below, a short last chunk */
    { 3 << 20, 1 << 20, 65536, 100000, 4 },   /* reads below bigger than a chunk */
    { 12345, 1, 100, 7, 1 },                  /* one chunk deep */
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    struct pattern p = { .total = cases[c].total, .step = cases[c].step };
    struct readahead_opts o = { .chunk = cases[c].chunk, .depth = cases[c].depth };
    struct vreader *ra;
    struct verr err = { 0 };
    cr_assert_eq(readahead_new(pattern_new(&p), &o, &ra, &err), 0, "%s", err.message);
    ssize_t last;
    uint64_t got = drain_checked(ra, &p, 0, cases[c].read, &err, &last);
    cr_assert_eq(last, 0, "case %zu: %s", c, err.message);
    cr_assert_eq(got, cases[c].total, "case %zu: %llu of %llu bytes", c,
                 (unsigned long long)got, (unsigned long long)cases[c].total);
    cr_assert_leq(p.max_ahead, (uint64_t)o.chunk * (o.depth + 1), "case %zu: read %llu "
                  "bytes ahead, more than depth + 1 chunks", c,
                  (unsigned long long)p.max_ahead);
    vreader_close(ra);
    cr_assert(p.closed, "case %zu: lower not closed", c);
  }
}

Test(readahead, the_error_comes_after_the_bytes_before_it)
{
  struct pattern p = { .total = 1 << 20, .step = 1000, .fail_at = 300000 };
  struct readahead_opts o = { .chunk = 65536, .depth = 2 };
  struct vreader *ra;
  struct verr err = { 0 };
  cr_assert_eq(readahead_new(pattern_new(&p), &o, &ra, &err), 0);
  ssize_t last;
  uint64_t got = drain_checked(ra, &p, 0, 4096, &err, &last);
  cr_assert_eq(last, -1);
  cr_assert_eq(err.code, VERR_SOURCE);
  cr_assert_str_eq(err.message, "pattern failed at 300000");
  /* bytes of the chunk that failed half way are not delivered: a whole chunk is */
  cr_assert_eq(got, 300000 / 65536 * 65536, "got %llu", (unsigned long long)got);
  vreader_close(ra);
}

Test(readahead, stop_hands_lower_back_where_the_worker_left_it)
{
  struct pattern p = { .total = 5 << 20, .step = 3000 };
  struct readahead_opts o = { .chunk = 65536, .depth = 3 };
  struct vreader *lower = pattern_new(&p), *ra;
  struct verr err = { 0 };
  cr_assert_eq(readahead_new(lower, &o, &ra, &err), 0);
  unsigned char buf[1000];
  cr_assert_eq(ra->ops->read(ra, buf, sizeof buf, &err), (ssize_t)sizeof buf);
  readahead_stop(ra);
  readahead_stop(ra); /* idempotent */
  ssize_t last;
  uint64_t buffered = drain_checked(ra, &p, sizeof buf, 4096, &err, &last);
  cr_assert_eq(last, 0, "after a stop, what was read ahead ends cleanly");
  uint64_t at = sizeof buf + buffered;
  cr_assert_eq(p.pos, at, "the worker read %llu, the consumer got %llu",
               (unsigned long long)p.pos, (unsigned long long)at);
  /* the owner reads on from lower itself, and the stream continues without a gap */
  uint64_t rest = 0;
  ssize_t n;
  while ((n = lower->ops->read(lower, buf, sizeof buf, &err)) > 0) {
    for (ssize_t i = 0; i < n; i++)
      cr_assert_eq(buf[i], byte_at(at + rest + (uint64_t)i));
    rest += (uint64_t)n;
  }
  cr_assert_eq(at + rest, p.total);
  vreader_close(ra);
}

/* A lower reader that waits until interrupted, as a source does for a silent server. */
struct blocked {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool interrupted, reading;
};

static ssize_t blocked_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  (void)buf, (void)len;
  struct blocked *b = r->state;
  pthread_mutex_lock(&b->lock);
  b->reading = true;
  pthread_cond_broadcast(&b->cond);
  while (!b->interrupted)
    pthread_cond_wait(&b->cond, &b->lock);
  pthread_mutex_unlock(&b->lock);
  return verr_set(err, VERR_CANCELLED, "interrupted");
}

static void blocked_interrupt(void *arg)
{
  struct blocked *b = arg;
  pthread_mutex_lock(&b->lock);
  b->interrupted = true;
  pthread_cond_broadcast(&b->cond);
  pthread_mutex_unlock(&b->lock);
}

static const struct vreader_ops blocked_ops = { "blocked", blocked_read, NULL, NULL };

Test(readahead, close_interrupts_a_read_that_waits, .timeout = 20)
{
  struct blocked b = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
  struct vreader *lower = malloc(sizeof *lower), *ra;
  cr_assert_not_null(lower);
  *lower = (struct vreader){ .ops = &blocked_ops, .state = &b };
  struct readahead_opts o = { .interrupt = blocked_interrupt, .interrupt_arg = &b };
  struct verr err = { 0 };
  cr_assert_eq(readahead_new(lower, &o, &ra, &err), 0);
  pthread_mutex_lock(&b.lock);
  while (!b.reading)
    pthread_cond_wait(&b.cond, &b.lock);
  pthread_mutex_unlock(&b.lock);
  vreader_close(ra); /* returns only because the read was interrupted */
  cr_assert(b.interrupted);
}
