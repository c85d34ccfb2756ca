/* vimport source: the ring; see ring.h for the contract. */
#include "source/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hugebuf.h"
#include "core/zero.h"
#include "source/source.h"

int ring_init(struct ring *r, size_t size, int second, const char *name,
              const volatile sig_atomic_t *stop)
{
  *r = (struct ring){ .size = size < RING_MIN_SIZE ? RING_MIN_SIZE : size,
                      .has_second = second, .name = name, .stop = stop };
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->data_ready, NULL);
  pthread_cond_init(&r->space_ready, &attr);
  pthread_cond_init(&r->second_ready, NULL);
  pthread_condattr_destroy(&attr);
  r->buf = hugebuf_alloc(r->size);
  if (r->size % RING_GRANULE == 0 && r->size >= 16 * RING_GRANULE) {
    r->gran = RING_GRANULE;
    r->gran_zero = calloc(r->size / RING_GRANULE, sizeof *r->gran_zero);
    r->zeros = hugebuf_alloc(RING_ZEROS);
  }
  if (r->buf == NULL || (r->gran != 0 && (r->gran_zero == NULL || r->zeros == NULL)))
    return -1;
  return 0;
}

void ring_destroy(struct ring *r)
{
  pthread_cond_destroy(&r->data_ready);
  pthread_cond_destroy(&r->space_ready);
  pthread_cond_destroy(&r->second_ready);
  pthread_mutex_destroy(&r->lock);
  hugebuf_free(r->buf, r->size);
  free(r->gran_zero);
  hugebuf_free((void *)r->zeros, RING_ZEROS);
}

/* ---- room and wake-ups ---- */

/* Bytes the ring holds: both consumers' unread runs end at the tail, so the longer. */
static size_t ring_used(const struct ring *r)
{
  return r->len > r->second_len ? r->len : r->second_len;
}

/* libcurl hands over body bytes in pieces of a few KiB; waking a consumer for each costs
 * more in context switches than the consumer then does. A consumer that found the ring
 * (nearly) empty sleeps until this many bytes wait for it, or the transfer ends. On W3
 * (6 GiB) a 256 KiB mark meant 37,000 context switches, 1 MiB 22,000. */
static size_t ring_wake_bytes(const struct ring *r)
{
  return r->size / 4 < (1u << 20) ? r->size / 4 : (1u << 20);
}

/* `added` bytes were just put in: wake a consumer whose run crossed the mark. */
static void ring_wake_consumers(struct ring *r, size_t added)
{
  size_t mark = ring_wake_bytes(r);
  if (r->len >= mark && r->len - added < mark)
    pthread_cond_broadcast(&r->data_ready);
  if (r->second_len >= mark && r->second_len - added < mark)
    pthread_cond_signal(&r->second_ready);
}

static size_t ring_tail(const struct ring *r)
{
  return (r->head + r->len) % r->size;
}

/* Free bytes from the tail on. With zero granules, only up to the granule of the oldest
 * unread byte: the producer then starts a granule only when all of it is free, and a
 * consumer never sees the flag of a byte it may read change. */
static size_t ring_room(const struct ring *r)
{
  size_t room = r->size - ring_used(r);
  if (r->gran == 0 || room == 0)
    return room;
  size_t oldest = (ring_tail(r) + room) % r->size;
  size_t cut = oldest % r->gran;
  return room > cut ? room - cut : 0;
}

/* ---- the producer ---- */

/* Put buf[0..len) at ring offset `at` (no wrap), outside the lock, into free space.
 * Zeros are left out of the ring: on W3 (6 GiB, 5 of them zeros) the copy out of
 * libcurl's buffer was 1.2 CPU-seconds. They are found here, while libcurl's buffer is
 * still in this core's cache, and the consumers read them from `zeros`, which stays in
 * theirs. libcurl hands over a few KiB at a time, so a granule is filled by many calls:
 * its flag says "zeros so far" from its first byte on, and the first piece that is not
 * zero writes the zeros before it into the ring, then clears the flag (release: a
 * consumer that sees the flag clear sees those zeros). */
static void ring_fill(struct ring *r, size_t at, const char *buf, size_t len)
{
  if (r->gran == 0) {
    memcpy(r->buf + at, buf, len);
    return;
  }
  while (len > 0) {
    size_t g = at / r->gran, in = at % r->gran;
    size_t n = r->gran - in < len ? r->gran - in : len;
    int zero = in == 0 || atomic_load_explicit(&r->gran_zero[g], memory_order_relaxed);
    zero = zero && mem_is_zero(buf, n);
    if (in == 0)
      atomic_store_explicit(&r->gran_zero[g], (unsigned char)zero, memory_order_relaxed);
    if (!zero) {
      memcpy(r->buf + at, buf, n);
      if (in > 0 && atomic_load_explicit(&r->gran_zero[g], memory_order_relaxed)) {
        memset(r->buf + at - in, 0, in);
        atomic_store_explicit(&r->gran_zero[g], 0, memory_order_release);
      }
    }
    at += n;
    buf += n;
    len -= n;
  }
}

int ring_put(struct ring *r, const char *buf, size_t len)
{
  int cancelled = 0;
  pthread_mutex_lock(&r->lock);
  while (len > 0) {
    size_t room;
    while ((room = ring_room(r)) == 0 && !r->cancelled)
      pthread_cond_wait(&r->space_ready, &r->lock);
    if ((cancelled = r->cancelled))
      break;
    size_t tail = ring_tail(r);
    size_t chunk = r->size - tail < room ? r->size - tail : room;
    if (chunk > len)
      chunk = len;
    pthread_mutex_unlock(&r->lock);
    ring_fill(r, tail, buf, chunk);
    pthread_mutex_lock(&r->lock);
    r->len += chunk;
    if (r->has_second)
      r->second_len += chunk;
    r->produced += chunk;
    buf += chunk;
    len -= chunk;
    ring_wake_consumers(r, chunk);
  }
  pthread_mutex_unlock(&r->lock);
  return cancelled ? -1 : 0;
}

int ring_rewind(struct ring *r)
{
  pthread_mutex_lock(&r->lock);
  int can = r->consumed == 0 && !r->taking;
  while (can && r->second_busy)
    pthread_cond_wait(&r->space_ready, &r->lock);
  if (can) {
    r->head = r->len = r->second_len = 0;
    r->produced = 0;
    r->rewinds++;
  }
  pthread_mutex_unlock(&r->lock);
  return can ? 0 : -1;
}

void ring_finish(struct ring *r, const struct verr *err)
{
  pthread_mutex_lock(&r->lock);
  if (err == NULL)
    r->done = 1;
  else if (!r->failed) {
    r->failed = 1;
    r->error = *err;
  }
  pthread_cond_broadcast(&r->data_ready);
  pthread_cond_signal(&r->second_ready);
  pthread_mutex_unlock(&r->lock);
}

void ring_cancel(struct ring *r)
{
  pthread_mutex_lock(&r->lock);
  r->cancelled = 1;
  pthread_cond_broadcast(&r->space_ready);
  pthread_cond_broadcast(&r->data_ready);
  pthread_cond_signal(&r->second_ready);
  pthread_mutex_unlock(&r->lock);
}

int ring_cancelled(struct ring *r)
{
  pthread_mutex_lock(&r->lock);
  int cancelled = r->cancelled;
  pthread_mutex_unlock(&r->lock);
  return cancelled;
}

static void add_ms(struct timespec *t, uint64_t ms)
{
  t->tv_sec += (time_t)(ms / 1000);
  t->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (t->tv_nsec >= 1000000000L) {
    t->tv_sec++;
    t->tv_nsec -= 1000000000L;
  }
}

int ring_sleep(struct ring *r, unsigned ms)
{
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  add_ms(&until, ms);
  pthread_mutex_lock(&r->lock);
  while (!r->cancelled &&
         pthread_cond_timedwait(&r->space_ready, &r->lock, &until) != ETIMEDOUT)
    ;
  int cancelled = r->cancelled;
  pthread_mutex_unlock(&r->lock);
  return cancelled ? -1 : 0;
}

/* ---- the reader ---- */

size_t ring_run(const struct ring *r, size_t at, size_t max, const void **p)
{
  *p = r->buf + at;
  if (r->gran == 0)
    return max;
  size_t g = at / r->gran;
  int zero = atomic_load_explicit(&r->gran_zero[g], memory_order_acquire);
  size_t n = r->gran - at % r->gran;
  while (n < max && atomic_load_explicit(&r->gran_zero[++g], memory_order_acquire) == zero)
    n += r->gran;
  if (zero) {
    *p = r->zeros;
    n = n < RING_ZEROS ? n : RING_ZEROS;
  }
  return n < max ? n : max;
}

/* Contiguous unread bytes at the head, at most `len`. Lock held. */
static size_t ring_head_span(const struct ring *r, size_t len)
{
  size_t chunk = r->size - r->head;
  if (chunk > r->len)
    chunk = r->len;
  return chunk < len ? chunk : len;
}

/* Copy out of the head. Called and returns with the lock held; copies with it released.
 * `taking` tells the producer that bytes are on their way to the reader (no rewind). */
static size_t ring_take(struct ring *r, unsigned char *buf, size_t len)
{
  size_t chunk = ring_head_span(r, len), head = r->head;
  r->taking = 1;
  pthread_mutex_unlock(&r->lock);
  for (size_t done = 0, n; done < chunk; done += n) {
    const void *p;
    n = ring_run(r, head + done, chunk - done, &p);
    if (p == r->zeros)
      memset(buf + done, 0, n);
    else
      memcpy(buf + done, p, n);
  }
  pthread_mutex_lock(&r->lock);
  r->taking = 0;
  r->head = (r->head + chunk) % r->size;
  r->len -= chunk;
  r->consumed += chunk;
  pthread_cond_broadcast(&r->space_ready);
  return chunk;
}

/* Lend the reader a run at the head without copying; it stays in the ring until
 * ring_return(). Lock held. */
static size_t ring_lend(struct ring *r, const void **view, size_t len)
{
  size_t chunk = ring_run(r, r->head, ring_head_span(r, len), view);
  r->lent = chunk;
  r->consumed += chunk;
  return chunk;
}

/* The reader's next call: the bytes lent by the previous view() are done with. */
static void ring_return(struct ring *r)
{
  if (r->lent == 0)
    return;
  r->head = (r->head + r->lent) % r->size;
  r->len -= r->lent;
  r->lent = 0;
  pthread_cond_broadcast(&r->space_ready);
}

static int ring_stopped(const struct ring *r)
{
  /* An atomic load: the flag is set by a signal handler on the main thread while the
   * reader may be another (a registry layer's read-ahead thread). */
  return r->stop != NULL && __atomic_load_n(r->stop, __ATOMIC_RELAXED);
}

int ring_wait(struct ring *r)
{
  if (r->stop == NULL) {
    pthread_cond_wait(&r->data_ready, &r->lock);
    return 0;
  }
  if (ring_stopped(r))
    return -1;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until); /* data_ready uses the default clock */
  add_ms(&until, SOURCE_STOP_POLL_MS);
  pthread_cond_timedwait(&r->data_ready, &r->lock, &until);
  return ring_stopped(r) ? -1 : 0;
}

int ring_stop_error(const struct ring *r, struct verr *err)
{
  return verr_set(err, VERR_CANCELLED, "the import was stopped by a signal (SIGTERM or "
                  "SIGINT) while waiting for %s; a rerun imports from the start", r->name);
}

ssize_t ring_next(struct ring *r, void *buf, const void **view, size_t len, struct verr *err)
{
  int stopped = 0;
  size_t enough = len < ring_wake_bytes(r) ? len : ring_wake_bytes(r);
  pthread_mutex_lock(&r->lock);
  ring_return(r);
  while (r->len < enough && !r->done && !r->failed && !r->cancelled && !stopped)
    stopped = ring_wait(r) < 0;
  ssize_t n = 0;
  if (r->len == 0 && stopped) {
    n = ring_stop_error(r, err);
  } else if (r->len == 0 && r->cancelled && !r->done && !r->failed) {
    n = verr_set(err, VERR_CANCELLED, "the transfer of %s was interrupted", r->name);
  } else if (r->len > 0 && view != NULL) {
    n = (ssize_t)ring_lend(r, view, len);
  } else if (r->len > 0) {
    n = (ssize_t)ring_take(r, buf, len);
  } else if (r->failed) {
    if (err != NULL)
      *err = r->error;
    n = -1;
  }
  pthread_mutex_unlock(&r->lock);
  return n;
}

void ring_wake_reader(struct ring *r)
{
  pthread_cond_broadcast(&r->data_ready);
}

struct vzeros ring_zeros(const struct ring *r)
{
  return (struct vzeros){ .buf = r->zeros, .len = r->zeros != NULL ? RING_ZEROS : 0 };
}

int ring_drained(struct ring *r)
{
  pthread_mutex_lock(&r->lock);
  int drained = r->done && r->len == 0;
  pthread_mutex_unlock(&r->lock);
  return drained;
}

/* ---- the second consumer ---- */

ssize_t ring_second_claim(struct ring *r, size_t *at)
{
  pthread_mutex_lock(&r->lock);
  while (r->has_second && r->second_seen == r->rewinds &&
         r->second_len < ring_wake_bytes(r) && !r->done && !r->failed && !r->cancelled)
    pthread_cond_wait(&r->second_ready, &r->lock);
  ssize_t n = 0;
  if (r->second_seen != r->rewinds) {
    r->second_seen = r->rewinds;
    n = RING_REWOUND;
  } else if (r->has_second && !r->cancelled && r->second_len > 0) {
    size_t start = (ring_tail(r) + r->size - r->second_len) % r->size;
    size_t chunk = r->size - start < r->second_len ? r->size - start : r->second_len;
    /* A step at a time, so that the producer refills what was read while the rest is:
     * taking all there was at once (up to the whole ring) left the producer blocked on
     * a full ring meanwhile, and then this consumer waiting for it. */
    n = (ssize_t)(chunk < ring_wake_bytes(r) ? chunk : ring_wake_bytes(r));
    *at = start;
    r->second_busy = 1;
  }
  pthread_mutex_unlock(&r->lock);
  return n;
}

void ring_second_release(struct ring *r, size_t n)
{
  pthread_mutex_lock(&r->lock);
  r->second_busy = 0;
  if (r->has_second)
    r->second_len -= n;
  pthread_cond_broadcast(&r->space_ready);
  pthread_mutex_unlock(&r->lock);
}

void ring_second_detach(struct ring *r)
{
  pthread_mutex_lock(&r->lock);
  r->has_second = 0;
  r->second_len = 0;
  pthread_cond_signal(&r->second_ready);
  pthread_cond_broadcast(&r->space_ready);
  pthread_mutex_unlock(&r->lock);
}
