/* vimport source: the bounded ring between a network transfer and its readers.
 *
 * One producer (a transfer thread) puts bytes at the tail; the reader takes them from
 * the head, by copy (read) or in place (view, no copy); an optional second consumer
 * (pkg/digest's hashing thread) reads the same bytes in place with a cursor of its own.
 * A byte leaves the ring once both consumers are done with it, so memory is the ring's
 * size whatever the image. Any kind that streams from the network can sit on it.
 *
 * Runs of zeros are not copied in: the ring flags them per RING_GRANULE granule (when
 * its size is a multiple of it and at least 16 of them) and both consumers are lent
 * them from a buffer of zeros that is never written (ring_zeros()), which stays in the
 * consumers' caches.
 *
 * Locking: `lock` guards the ring and, by convention, the owning kind's own state that
 * its transfer thread and reader share (the first response, counters), so that one
 * condition (data_ready) wakes the reader for either. Functions say when they expect
 * it held; the others take it. The producer and each consumer copy or hash outside the
 * lock, in the part of the ring only they may touch.
 */
#ifndef VIMPORT_SOURCE_RING_H
#define VIMPORT_SOURCE_RING_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"
#include "core/stream.h"

#define RING_GRANULE ((size_t)64 << 10) /* zero granule */
#define RING_ZEROS ((size_t)1 << 20)    /* the run of zeros lent at most */
#define RING_MIN_SIZE ((size_t)64 << 10)
#define RING_REWOUND (-2)               /* ring_second_claim(): the producer started over */

struct ring {
  pthread_mutex_t lock;
  pthread_cond_t data_ready;   /* reader waits: bytes, the end, the owner's state */
  pthread_cond_t space_ready;  /* producer waits: room, cancel (CLOCK_MONOTONIC) */
  pthread_cond_t second_ready; /* second consumer waits: bytes, the end, detach */

  unsigned char *buf;
  size_t size;
  /* A granule's flag changes only while no consumer may look at any of its bytes
   * (ring_room), so a consumer reads the flags of its unread bytes, like the bytes,
   * outside the lock. 0 / NULL when the ring is too small for granules. */
  size_t gran;
  atomic_uchar *gran_zero;
  const unsigned char *zeros; /* RING_ZEROS bytes of zeros, never written */

  /* Under `lock`. */
  size_t head;        /* next byte for the reader */
  size_t len;         /* the reader's unread bytes, ending at the tail */
  size_t lent;        /* bytes at head that view() lent, still in `len` until the next call */
  int taking;         /* read() is copying out of the ring */
  uint64_t consumed;  /* bytes taken or lent to the reader */
  uint64_t produced;  /* bytes put since the start (or the last rewind) */
  int has_second;     /* a second consumer reads every byte too */
  size_t second_len;  /* its unread bytes, ending at the tail */
  int second_busy;    /* it is reading claimed bytes outside the lock */
  unsigned rewinds;   /* ring_rewind() calls, so the second consumer sees each */
  unsigned second_seen;
  int done, failed, cancelled;
  struct verr error;  /* when failed */

  const char *name;                  /* the redacted location, for messages; not owned */
  const volatile sig_atomic_t *stop; /* set from a signal handler: stop waiting */
};

/* Set up an empty ring of `size` bytes (at least RING_MIN_SIZE); `second`: a second
 * consumer will read every byte (ring_second_claim), so bytes wait for it from the
 * first on. Returns 0, or -1 when out of memory (then call ring_destroy). */
int ring_init(struct ring *r, size_t size, int second, const char *name,
              const volatile sig_atomic_t *stop);
void ring_destroy(struct ring *r);

/* ---- the producer ---- */

/* Copy `len` bytes in, waiting while the ring is full. Returns 0, or -1 once cancelled. */
int ring_put(struct ring *r, const char *buf, size_t len);
/* Forget every byte and start over from byte 0, if the reader has taken none yet
 * (returns 0; the second consumer is told with RING_REWOUND), else -1. */
int ring_rewind(struct ring *r);
/* The end: err NULL for a complete stream, else the failure the reader gets once it has
 * taken every byte put before it. Later calls keep the first failure. */
void ring_finish(struct ring *r, const struct verr *err);
/* Stop everyone: the producer's ring_put and ring_sleep return -1 from now on. */
void ring_cancel(struct ring *r);
int ring_cancelled(struct ring *r);
/* Sleep `ms` milliseconds unless cancelled meanwhile (returns -1 then). */
int ring_sleep(struct ring *r, unsigned ms);

/* ---- the reader ---- */

/* read() (buf, view NULL) or view() (view non-NULL): wait for bytes, then copy them
 * to `buf` or lend them in place (until the next call). Returns the count, 0 at the
 * end, -1 with `err` (the producer's failure, or VERR_CANCELLED when opts.stop). */
ssize_t ring_next(struct ring *r, void *buf, const void **view, size_t len, struct verr *err);
/* Lock held: wait for data_ready, waking every SOURCE_STOP_POLL_MS to look at the stop
 * flag (a condition wait does not return on a signal). Returns -1 once it is set. */
int ring_wait(struct ring *r);
/* The VERR_CANCELLED error for a stop while waiting. Returns -1. */
int ring_stop_error(const struct ring *r, struct verr *err);
/* Lock held: wake the reader (the owner changed state it waits for). */
void ring_wake_reader(struct ring *r);
/* The zeros the consumers are lent runs of zeros from ({NULL, 0}: none). */
struct vzeros ring_zeros(const struct ring *r);
/* Whether the stream ended complete and the reader took every byte. */
int ring_drained(struct ring *r);

/* ---- the second consumer ---- */

/* Wait for the next bytes: returns how many (contiguous, from ring offset *at) the
 * consumer may now read in place with ring_run(), then must hand back with
 * ring_second_release(); 0 at the end (or detached, or cancelled); RING_REWOUND when
 * the producer started over since the last claim: forget what was read, claim again. */
ssize_t ring_second_claim(struct ring *r, size_t *at);
/* The run of claimed (or lent) bytes at ring offset `at`, at most `max`, that are all
 * zeros (*p inside ring_zeros()) or all in the ring. Returns its length. No lock. */
size_t ring_run(const struct ring *r, size_t at, size_t max, const void **p);
void ring_second_release(struct ring *r, size_t n);
/* The consumer goes away: the ring keeps no more bytes for it; its claims return 0. */
void ring_second_detach(struct ring *r);

#endif
