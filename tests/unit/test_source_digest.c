/* Tests for the object's digest read in place from pkg/source's ring
 * (opts.lend_to_digest), against tests/e2e/faultserver.py: the digest of the whole
 * object, lent ring bytes arriving intact, zero runs, resumes and restarts that must
 * count each byte once, and a digest asked for before the end or not at all. Each test
 * runs in its own process (Criterion) with its own server, data file and temporary
 * directory.
 */
#include <openssl/evp.h>

#include "digest/digest.h"
#include "source_fixtures.h"

TestSuite(source, .init = setup, .fini = teardown, .timeout = 60);

/* The source with pkg/digest's tap right above it, as the pipeline builds it. *src is
 * the source (borrowed from the tap, which is returned and owns it). */
static struct vreader *open_digested(struct source_opts *o, struct vreader **src)
{
  struct vreader *tap = NULL;
  struct verr err = { 0 };
  o->lend_to_digest = 1;
  *src = open_ok(o);
  cr_assert_not_null(source_digest_ring(*src), "an http source lends its ring");
  cr_assert_eq(digest_source_tap_new(*src, "sha256", &tap, &err), 0, "%s", err.message);
  return tap;
}

/* The digest the tap reports equals SHA-256 of want[0..size), over exactly size bytes. */
static void expect_digest_of(struct vreader *r, const unsigned char *want_data, size_t size)
{
  unsigned char want[EVP_MAX_MD_SIZE];
  unsigned want_len = 0;
  char got[CHECKSUM_STRING_MAX], want_hex[CHECKSUM_STRING_MAX];
  struct verr err = { 0 };
  cr_assert(EVP_Digest(want_data, size, want, &want_len, EVP_sha256(), NULL) == 1);
  cr_assert_eq(checksum_from_md("sha256", want, want_len, want_hex, sizeof want_hex, &err), 0);
  cr_assert_eq(digest_tap_final(r, got, sizeof got, &err), 0, "%s", err.message);
  cr_assert_eq(digest_tap_bytes(r), size, "hashed %llu bytes",
               (unsigned long long)digest_tap_bytes(r));
  cr_assert_str_eq(got, want_hex, "the digest is not SHA-256 of the object");
}

/* The same for the fixture's file. */
static void expect_source_digest(struct vreader *r)
{
  expect_digest_of(r, fx.data, DATA_SIZE);
}

/* Read `r` to its end in steps of 1 to max_ask bytes (a sequence stepped by `prime`),
 * every third one with read() and the others with view(), pausing now and then after a
 * view so that the transfer and the digest run ahead into the rest of the ring. Every
 * byte must equal want[0..size). Returns the bytes view() lent without copying. */
static size_t read_mixed(struct vreader *r, const unsigned char *want, size_t size,
                         size_t max_ask, unsigned prime)
{
  CLEANUP_FREE unsigned char *scratch = malloc(max_ask);
  cr_assert_not_null(scratch);
  size_t got = 0, lent = 0;
  struct verr err = { 0 };
  for (unsigned step = 0;; step++) {
    size_t ask = 1 + (step * prime) % max_ask;
    const void *view = scratch;
    ssize_t n = step % 3 == 2 ? r->ops->read(r, scratch, ask, &err)
                              : vreader_view(r, &view, ask, scratch, &err);
    cr_assert_geq(n, 0, "%s", err.message);
    if (n == 0)
      break;
    cr_assert_leq((size_t)n, ask);
    cr_assert_leq(got + (size_t)n, size);
    if (view != scratch) {
      lent += (size_t)n;
      if (step % 8 == 0)
        usleep(5000);
    }
    if (memcmp(view, want + got, (size_t)n) != 0) {
      size_t i = 0;
      while (((const unsigned char *)view)[i] == want[got + i])
        i++;
      cr_assert_fail("byte %zu is %#x, not %#x", got + i, ((const unsigned char *)view)[i],
                     want[got + i]);
    }
    got += (size_t)n;
  }
  cr_assert_eq(got, size);
  return lent;
}

Test(source, http_digest_of_the_object)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "");
  struct source_opts o = test_opts(u);
  o.buffer_size = 256u << 10; /* a small ring: the digest and the reader both wrap it */
  struct vreader *src, *r = open_digested(&o, &src);
  expect_whole_object(r);
  expect_source_digest(r);
  vreader_close(r);
}

/* view() lends the ring's own bytes: each stays intact while lent, even with the transfer
 * free to fill the rest of a small ring meanwhile, and mixed with read() every byte of
 * the object arrives once, in order, across resumes; the digest still sees all of them. */
Test(source, http_view_lends_ring_bytes_intact)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "reset=700000");
  struct source_opts o = test_opts(u);
  o.buffer_size = 200u << 10; /* not a multiple of the sizes asked: views stop at its end */
  struct vreader *src, *r = open_digested(&o, &src);
  size_t lent = read_mixed(r, fx.data, DATA_SIZE, 96u << 10, 7919u);
  cr_assert_gt(lent, DATA_SIZE / 2, "only %zu bytes were lent, not copied", lent);
  cr_assert_geq(source_info(src)->resumes, 1);
  expect_source_digest(r);
  vreader_close(r);
}

/* An object of zero runs, for the ring's zero granules (64 KiB; pkg/source/ring.c
 * ring_fill): 4 MiB through a 1 MiB ring, the first MiB random so that every later lap
 * finds the ring's memory dirty. Then granules that are whole zeros, zeros with one byte
 * last or first, half and half either way, zero runs that start and end inside granules,
 * 4 KiB pages that are zero or not at random, single bytes in zeros, and zeros to the end
 * (an object that ends inside a granule). */
#define ZDATA_SIZE ((4u << 20) - 12345)
#define ZGRAN (64u << 10)

static unsigned char *make_zero_runs(const char *path)
{
  unsigned char *d = malloc(ZDATA_SIZE);
  cr_assert_not_null(d);
  uint64_t x = 0x2545f4914f6cdd1dull;
  for (size_t i = 0; i < ZDATA_SIZE; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    d[i] = (unsigned char)(x | 1);
  }
  const size_t mib = 1u << 20, g = ZGRAN;
  memset(d + mib, 0, 4 * g);                      /* whole granules */
  memset(d + mib + 4 * g, 0, g - 1);              /* zeros, then one byte last */
  memset(d + mib + 5 * g + 1, 0, g - 1);          /* one byte first, then zeros */
  memset(d + mib + 6 * g, 0, g / 2);              /* zeros, then bytes */
  memset(d + mib + 7 * g + g / 2, 0, g / 2);      /* bytes, then zeros */
  memset(d + mib + 8 * g + 1000, 0, 3 * g + 5000); /* a run across granules, unaligned */
  for (size_t page = (2 * mib) / 4096; page < (3 * mib) / 4096; page++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    if (x % 3 != 0)
      memset(d + page * 4096, 0, 4096);
  }
  memset(d + 3 * mib, 0, ZDATA_SIZE - 3 * mib);
  for (size_t at = 3 * mib + 777; at < 3 * mib + mib / 2; at += 40009)
    d[at] = 0x5a;                                 /* single bytes in zeros */
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(d, 1, ZDATA_SIZE, f), ZDATA_SIZE);
  fclose(f);
  return d;
}

/* Every byte of such an object arrives intact through view() and read() alike, across a
 * resume in the middle of the zero runs, and the source digest is SHA-256 of it. */
Test(source, http_zero_runs_arrive_intact_and_digested)
{
  char path[600], u[256];
  snprintf(path, sizeof path, "%s/zeros.bin", fx.dir);
  CLEANUP_FREE unsigned char *d = make_zero_runs(path);
  start_faultserver();
  snprintf(u, sizeof u, "http://127.0.0.1:%d/zeros.bin?reset=2500000", fx.port);
  struct source_opts o = test_opts(u);
  o.buffer_size = 1u << 20; /* the smallest ring that has zero granules */
  struct vreader *src, *r = open_digested(&o, &src);
  read_mixed(r, d, ZDATA_SIZE, 300u << 10, 104729u);
  cr_assert_geq(source_info(src)->resumes, 1);
  expect_digest_of(r, d, ZDATA_SIZE);
  vreader_close(r);
}

Test(source, http_digest_across_resumes_counts_each_byte_once)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "reset=700000&times=2");
  struct source_opts o = test_opts(u);
  struct vreader *src, *r = open_digested(&o, &src);
  expect_whole_object(r);
  cr_assert_eq(source_info(src)->resumes, 2);
  expect_source_digest(r);
  vreader_close(r);
}

Test(source, http_digest_restarts_with_the_transfer)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "stall=1&at=500000&reset=600000&ignore_range=1&times=1");
  struct source_opts o = test_opts(u);
  o.buffer_size = 1u << 20; /* holds the bytes before the drop; wake mark 256 KiB */
  struct vreader *src, *r = open_digested(&o, &src);
  for (int i = 0; i < 100 && source_info(src)->retries == 0; i++)
    usleep(20000);
  usleep(200000);
  expect_whole_object(r);
  cr_assert_eq(source_info(src)->retries, 1);
  /* a 1 s stall at 500000 lets the digest thread hash what came (past its 256 KiB wake
   * mark) before the drop at 600000 and the restart: those bytes must be forgotten */
  expect_source_digest(r);
  vreader_close(r);
}

Test(source, digest_before_the_end_or_without_asking)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "");
  struct source_opts o = test_opts(u);
  struct vreader *src, *r = open_digested(&o, &src);
  unsigned char buf[4096];
  char md[CHECKSUM_STRING_MAX];
  struct verr err = { 0 };
  cr_assert_gt(r->ops->read(r, buf, sizeof buf, &err), 0);
  cr_expect_eq(digest_tap_final(r, md, sizeof md, &err), -1);
  cr_expect_eq(err.code, VERR_INTERNAL, "%s", err.message);
  vreader_close(r);

  o.lend_to_digest = 0; /* not asked for: a digest copies what it reads */
  r = open_ok(&o);
  expect_whole_object(r);
  cr_expect_null(source_digest_ring(r));
  vreader_close(r);

  o.lend_to_digest = 1;
  cr_expect_eq(digest_source_tap_new(open_ok(&o), "no-such-digest", &r, &err), -1);
  cr_expect_eq(err.code, VERR_USAGE, "%s", err.message);
}

/* A tap that only counts (algorithm NULL, as for a registry source): the ring lent for a
 * digest is released at once, so a ring much smaller than the object never waits for a
 * second consumer that does not exist; every byte arrives and is counted, none hashed. */
Test(source, counting_tap_releases_the_lent_ring)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "");
  struct source_opts o = test_opts(u);
  o.buffer_size = 256u << 10;
  o.lend_to_digest = 1;
  struct vreader *r = NULL;
  struct verr err = { 0 };
  struct vreader *src = open_ok(&o);
  cr_assert_not_null(source_digest_ring(src));
  cr_assert_eq(digest_source_tap_new(src, NULL, &r, &err), 0, "%s", err.message);
  expect_whole_object(r);
  char md[CHECKSUM_STRING_MAX] = "not written";
  cr_assert_eq(digest_tap_final(r, md, sizeof md, &err), 0, "%s", err.message);
  cr_expect_str_empty(md, "a counting tap reports no digest");
  cr_expect_eq(digest_tap_bytes(r), DATA_SIZE, "counted %llu bytes",
               (unsigned long long)digest_tap_bytes(r));
  vreader_close(r);
}
