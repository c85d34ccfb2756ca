/* Tests for pkg/source/ring.c without a network: a producer thread, the reader (read
 * and view mixed) and a second consumer (as pkg/digest's hasher) over one ring. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/stream.h"
#include "source/ring.h"

#define SIZE ((3u << 20) + 4321)

static unsigned char *pattern(void)
{
  unsigned char *d = malloc(SIZE);
  cr_assert_not_null(d);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < SIZE; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    d[i] = (unsigned char)(x | 1);
  }
  memset(d + (1u << 20), 0, 5 * RING_GRANULE + 77);      /* whole and partial granules */
  memset(d + (2u << 20) + 1000, 0, 3 * RING_GRANULE);    /* unaligned */
  memset(d + SIZE - RING_GRANULE / 2, 0, RING_GRANULE / 2); /* zeros to the end */
  return d;
}

struct producer {
  struct ring *ring;
  const unsigned char *data;
};

/* Puts the pattern in pieces of a few KiB, as libcurl hands them over. */
static void *produce(void *arg)
{
  struct producer *p = arg;
  for (size_t at = 0, n; at < SIZE; at += n) {
    n = SIZE - at < 7001 ? SIZE - at : 7001;
    if (ring_put(p->ring, (const char *)p->data + at, n) < 0)
      return NULL;
  }
  ring_finish(p->ring, NULL);
  return NULL;
}

struct second {
  struct ring *ring;
  unsigned char *copy;
  size_t got;
  unsigned rewinds;
};

static void *consume_second(void *arg)
{
  struct second *c = arg;
  for (;;) {
    size_t at = 0;
    ssize_t n = ring_second_claim(c->ring, &at);
    if (n == RING_REWOUND) {
      c->got = 0;
      c->rewinds++;
      continue;
    }
    if (n <= 0)
      return NULL;
    for (size_t done = 0, len; done < (size_t)n; done += len) {
      const void *p;
      len = ring_run(c->ring, at + done, (size_t)n - done, &p);
      memcpy(c->copy + c->got, p, len);
      c->got += len;
    }
    ring_second_release(c->ring, (size_t)n);
  }
}

TestSuite(ring, .timeout = 60);

Test(ring, both_consumers_get_every_byte_and_zeros_are_lent)
{
  unsigned char *data = pattern(), *got = malloc(SIZE), *scratch = malloc(300000);
  struct second sec = { .copy = malloc(SIZE) };
  cr_assert(got != NULL && scratch != NULL && sec.copy != NULL);
  struct ring ring;
  cr_assert_eq(ring_init(&ring, 1u << 20, 1, "test", NULL), 0);
  struct vzeros zeros = ring_zeros(&ring);
  cr_assert_not_null(zeros.buf, "a 1 MiB ring has zero granules");
  sec.ring = &ring;
  struct producer prod = { &ring, data };
  pthread_t pt, st;
  pthread_create(&pt, NULL, produce, &prod);
  pthread_create(&st, NULL, consume_second, &sec);
  size_t have = 0, lent_zeros = 0;
  struct verr err = { 0 };
  for (unsigned step = 0;; step++) {
    size_t ask = 1 + (step * 104729u) % 300000;
    const void *view = scratch;
    ssize_t n = step % 3 == 2 ? ring_next(&ring, scratch, NULL, ask, &err)
                              : ring_next(&ring, NULL, &view, ask, &err);
    cr_assert_geq(n, 0, "%s", err.message);
    if (n == 0)
      break;
    cr_assert_leq(have + (size_t)n, SIZE);
    memcpy(got + have, view, (size_t)n);
    if (vzeros_holds(zeros, view, (size_t)n))
      lent_zeros += (size_t)n;
    have += (size_t)n;
  }
  pthread_join(pt, NULL);
  pthread_join(st, NULL);
  cr_assert_eq(have, SIZE);
  cr_assert(memcmp(got, data, SIZE) == 0, "the reader's bytes differ");
  cr_assert_eq(sec.got, SIZE);
  cr_assert(memcmp(sec.copy, data, SIZE) == 0, "the second consumer's bytes differ");
  cr_assert_gt(lent_zeros, 0, "no run of zeros was lent from the zeros");
  cr_assert(ring_drained(&ring));
  ring_destroy(&ring);
  free(data), free(got), free(scratch), free(sec.copy);
}

Test(ring, rewind_only_before_the_reader_took_a_byte)
{
  struct ring ring;
  cr_assert_eq(ring_init(&ring, 1u << 20, 1, "test", NULL), 0);
  char buf[4096];
  memset(buf, 'a', sizeof buf);
  cr_assert_eq(ring_put(&ring, buf, sizeof buf), 0);
  size_t at;
  cr_assert_eq(ring_rewind(&ring), 0);
  cr_assert_eq(ring_second_claim(&ring, &at), RING_REWOUND, "the second consumer is told");
  cr_assert_eq(ring_put(&ring, buf, 100), 0);
  ring_finish(&ring, NULL);
  cr_assert_eq(ring_second_claim(&ring, &at), 100, "only the bytes after the rewind");
  ring_second_release(&ring, 100);
  struct verr err = { 0 };
  cr_assert_eq(ring_next(&ring, buf, NULL, 10, &err), 10);
  cr_assert_eq(ring_rewind(&ring), -1, "the reader took bytes: no starting over");
  ring_destroy(&ring);
}

Test(ring, failure_after_the_bytes_and_detach_frees_the_producer)
{
  struct ring ring;
  cr_assert_eq(ring_init(&ring, RING_MIN_SIZE, 1, "test", NULL), 0);
  static char buf[RING_MIN_SIZE];
  cr_assert_eq(ring_put(&ring, buf, sizeof buf), 0);
  struct verr err = { 0 }, why = { 0 };
  /* the reader takes it all, but the ring still keeps it for the second consumer */
  cr_assert_eq(ring_next(&ring, buf, NULL, sizeof buf, &err), (ssize_t)sizeof buf);
  ring_second_detach(&ring);
  cr_assert_eq(ring_put(&ring, buf, 10), 0, "detached: the bytes no longer wait for it");
  verr_set(&why, VERR_SOURCE, "the server went away");
  ring_finish(&ring, &why);
  cr_assert_eq(ring_next(&ring, buf, NULL, 100, &err), 10);
  cr_assert_eq(ring_next(&ring, buf, NULL, 100, &err), -1);
  cr_assert_eq(err.code, VERR_SOURCE);
  cr_assert_str_eq(err.message, "the server went away");
  ring_destroy(&ring);
}
