/* pkg/blkhash: pinned vectors from tests/data/blkhash.tsv (made with the reference
 * blksum), thread-count independence, the zero() path, odd update sizes, bad options. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkhash/blkhash.h"
#include "core/zero.h"
#include "core/error.h"
#include "core/stream.h"
#include "patgen.h"

struct feed {
  struct blkhash *h;
  int use_zero; /* feed z segments through blkhash_zero() */
  unsigned char *inplace; /* not NULL: data goes through blkhash_update_inplace() from here */
};

static int feed_emit(void *opaque, int from_zero, const unsigned char *buf, size_t len)
{
  struct feed *f = opaque;
  if (from_zero && f->use_zero)
    return blkhash_zero(f->h, len);
  if (f->inplace == NULL)
    return blkhash_update(f->h, buf, len);
  /* The caller's memory, lent until blkhash_settle(); poisoned once it is given back, so
   * a worker still reading it would change the digest. */
  memcpy(f->inplace, buf, len);
  int r = blkhash_update_inplace(f->h, f->inplace, len);
  if (r == 0)
    r = blkhash_settle(f->h);
  memset(f->inplace, 0xa5, len);
  return r;
}


/* Hash `pattern` and return the hex digest in `hex`. */
static void hash_pattern(const char *digest, size_t block_size, const char *pattern, unsigned threads,
                         int use_zero, size_t chunk, char *hex)
{
  struct blkhash_opts opts = { .digest_name = digest, .block_size = block_size, .threads = threads };
  struct feed f = { .use_zero = use_zero };
  cr_assert_eq(blkhash_new(&opts, &f.h), 0, "blkhash_new(%s, %zu)", digest, block_size);
  cr_assert_eq(patgen_walk(pattern, chunk, feed_emit, &f), 0, "pattern %s", pattern);
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len = 0;
  cr_assert_eq(blkhash_final(f.h, md, &md_len), 0);
  blkhash_hex(md, md_len, hex);
  blkhash_free(f.h);
}

struct vector {
  char digest[32];
  size_t block_size;
  char expected[2 * BLKHASH_MAX_MD_SIZE + 1];
  char pattern[256];
};

static size_t load_vectors(struct vector *v, size_t max)
{
  const char *top = getenv("VIMPORT_TOP");
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/data/blkhash.tsv", top ? top : ".");
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "cannot open %s (run from the repo root or set VIMPORT_TOP)", path);
  char line[1024];
  size_t n = 0;
  do /* the provenance comments, then the header */
    cr_assert_not_null(fgets(line, sizeof line, f));
  while (line[0] == '#');
  while (n < max && fgets(line, sizeof line, f)) {
    if (sscanf(line, "%31s %zu %128s %255s", v[n].digest, &v[n].block_size, v[n].expected,
               v[n].pattern) == 4)
      n++;
  }
  fclose(f);
  cr_assert_gt(n, 20, "expected the full vector file, read %zu lines", n);
  return n;
}

static void hash_pattern_inplace(const struct vector *v, unsigned threads, size_t chunk, char *hex)
{
  struct blkhash_opts opts = { .digest_name = v->digest, .block_size = v->block_size,
                               .threads = threads };
  struct feed f = { .use_zero = 1, .inplace = malloc(chunk) };
  cr_assert_not_null(f.inplace);
  cr_assert_eq(blkhash_new(&opts, &f.h), 0);
  cr_assert_eq(patgen_walk(v->pattern, chunk, feed_emit, &f), 0, "pattern %s", v->pattern);
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len = 0;
  cr_assert_eq(blkhash_final(f.h, md, &md_len), 0);
  blkhash_hex(md, md_len, hex);
  blkhash_free(f.h);
  free(f.inplace);
}

/* Big vectors are skipped only in the combinations that would copy a GiB per run. */
static int big(const char *pattern)
{
  return strstr(pattern, "G") != NULL || strstr(pattern, "64M") != NULL;
}

Test(blkhash, all_vectors_threads_1_2_8)
{
  static struct vector v[128];
  size_t n = load_vectors(v, 128);
  const unsigned threads[] = { 1, 2, 8 };
  for (size_t i = 0; i < n; i++) {
    for (size_t t = 0; t < 3; t++) {
      char hex[2 * BLKHASH_MAX_MD_SIZE + 1];
      hash_pattern(v[i].digest, v[i].block_size, v[i].pattern, threads[t], 1, 1 << 20, hex);
      cr_expect_str_eq(hex, v[i].expected, "vector %zu (%s %zu %s) with %u threads via zero()",
                       i + 1, v[i].digest, v[i].block_size, v[i].pattern, threads[t]);
      if (big(v[i].pattern) && threads[t] != 2)
        continue;
      hash_pattern(v[i].digest, v[i].block_size, v[i].pattern, threads[t], 0, 1 << 20, hex);
      cr_expect_str_eq(hex, v[i].expected, "vector %zu (%s) with %u threads, zeros as data",
                       i + 1, v[i].pattern, threads[t]);
    }
  }
}

Test(blkhash, inplace_updates_match_vectors)
{
  static struct vector v[128];
  size_t n = load_vectors(v, 128);
  /* odd sizes: batches half filled by copying, whole blocks in place, short tails */
  const size_t chunks[] = { 4096 + 8, 65536 * 3 + 8, (3 << 20) + 512, 16 << 20 };
  const unsigned threads[] = { 1, 2, 8, 2 };
  for (size_t i = 0; i < n; i++) {
    if (big(v[i].pattern))
      continue;
    for (size_t c = 0; c < 4; c++) {
      char hex[2 * BLKHASH_MAX_MD_SIZE + 1];
      hash_pattern_inplace(&v[i], threads[c], chunks[c], hex);
      cr_expect_str_eq(hex, v[i].expected, "vector %zu (%s) in place, chunk %zu, %u threads",
                       i + 1, v[i].pattern, chunks[c], threads[c]);
    }
  }
}

Test(blkhash, odd_update_sizes)
{
  static struct vector v[128];
  size_t n = load_vectors(v, 128);
  const size_t chunks[] = { 8, 4096 + 8, 65536 + 8, 3 << 20 };
  for (size_t i = 0; i < n; i++) {
    if (big(v[i].pattern))
      continue;
    for (size_t c = 0; c < 4; c++) {
      char hex[2 * BLKHASH_MAX_MD_SIZE + 1];
      hash_pattern(v[i].digest, v[i].block_size, v[i].pattern, 2, c & 1, chunks[c], hex);
      cr_expect_str_eq(hex, v[i].expected, "vector %zu (%s) with chunk %zu", i + 1, v[i].pattern,
                       chunks[c]);
    }
  }
}

Test(blkhash, rejects_bad_options)
{
  struct blkhash *h = NULL;
  struct blkhash_opts unknown = { .digest_name = "no-such-digest" };
  cr_expect_eq(blkhash_new(&unknown, &h), EINVAL);
  struct blkhash_opts odd = { .block_size = 65535 };
  cr_expect_eq(blkhash_new(&odd, &h), EINVAL);
  struct blkhash_opts tiny = { .block_size = 256 };
  cr_expect_eq(blkhash_new(&tiny, &h), EINVAL);
  cr_expect(blkhash_digest_known("sha512"));
  cr_expect(!blkhash_digest_known("sha257"));
}

struct manifest {
  uint64_t next;
  uint64_t count;
};

static void count_block(void *opaque, uint64_t index, const unsigned char *md, unsigned md_len)
{
  struct manifest *m = opaque;
  (void)md;
  cr_assert_eq(index, m->next, "blocks must arrive in order");
  cr_assert_eq(md_len, 32);
  m->next++;
  m->count++;
}

Test(blkhash, on_block_sees_every_block_in_order)
{
  struct manifest m = { 0 };
  struct blkhash_opts opts = { .threads = 2, .on_block = count_block, .on_block_opaque = &m };
  struct blkhash *h;
  cr_assert_eq(blkhash_new(&opts, &h), 0);
  static unsigned char data[200000];
  memset(data, 7, sizeof data);
  cr_assert_eq(blkhash_update(h, data, sizeof data), 0);
  cr_assert_eq(blkhash_zero(h, 10 * 65536 + 5), 0);
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned len;
  cr_assert_eq(blkhash_final(h, md, &len), 0);
  cr_expect_eq(blkhash_length(h), 200000 + 10 * 65536 + 5);
  /* 200000 + 655365 bytes = 855365 -> 14 blocks (13 full, one short) */
  cr_expect_eq(m.count, 14);
  blkhash_free(h);
}

Test(blkhash, is_zero)
{
  static unsigned char buf[65536];
  cr_expect(mem_is_zero(buf, sizeof buf));
  cr_expect(mem_is_zero(buf, 0));
  cr_expect(mem_is_zero(buf, 3));
  buf[65535] = 1;
  cr_expect(!mem_is_zero(buf, sizeof buf));
  buf[65535] = 0;
  buf[5] = 1;
  cr_expect(!mem_is_zero(buf, sizeof buf));
  cr_expect(!mem_is_zero(buf, 6));
}

/* ---- any order ---- */

struct collected {
  unsigned char *bytes;
  unsigned char *is_zero; /* per byte: came from a z segment */
  size_t len, cap;
};

static int collect(void *opaque, int from_zero, const unsigned char *buf, size_t len)
{
  struct collected *c = opaque;
  if (c->len + len > c->cap) {
    c->cap = (c->len + len) * 2;
    c->bytes = realloc(c->bytes, c->cap);
    c->is_zero = realloc(c->is_zero, c->cap);
    cr_assert(c->bytes && c->is_zero);
  }
  memcpy(c->bytes + c->len, buf, len);
  memset(c->is_zero + c->len, from_zero, len);
  c->len += len;
  return 0;
}

/* The bytes of a pattern, and where its zero segments are. Free with collected_free. */
static void collect_pattern(const char *pattern, struct collected *c)
{
  *c = (struct collected){ 0 };
  cr_assert_eq(patgen_walk(pattern, 1 << 20, collect, c), 0, "pattern %s", pattern);
}

static void collected_free(struct collected *c)
{
  free(c->bytes);
  free(c->is_zero);
}

/* Cut [0, len) into extents of pseudo-random sizes (1 byte to 200 KiB), shuffle them, and
 * feed each as data or, where the pattern had zeros, as a zero extent. */
static void hash_unordered(const struct vector *v, const struct collected *c, uint64_t seed,
                           unsigned threads, char *hex)
{
  enum { MAX_EXTENTS = 8192 };
  static uint64_t starts[MAX_EXTENTS], lens[MAX_EXTENTS];
  size_t n = 0;
  uint64_t state = seed;
  for (uint64_t off = 0; off < c->len && n < MAX_EXTENTS;) {
    uint64_t want = 1 + patgen_splitmix64(&state) % (200 * 1024);
    if (want > c->len - off || n == MAX_EXTENTS - 1)
      want = c->len - off;
    /* an extent is data or zero throughout */
    uint64_t k = 1;
    while (k < want && c->is_zero[off + k] == c->is_zero[off])
      k++;
    starts[n] = off;
    lens[n++] = k;
    off += k;
  }
  for (size_t i = n; i > 1; i--) {
    size_t j = patgen_splitmix64(&state) % i;
    uint64_t s = starts[i - 1], l = lens[i - 1];
    starts[i - 1] = starts[j], lens[i - 1] = lens[j];
    starts[j] = s, lens[j] = l;
  }
  struct blkhash_opts opts = { .digest_name = v->digest, .block_size = v->block_size,
                               .threads = threads };
  struct blkhash_unordered *u;
  cr_assert_eq(blkhash_unordered_new(&opts, c->len, 256u << 20, &u), 0);
  for (size_t i = 0; i < n; i++) {
    int r = c->is_zero[starts[i]] ? blkhash_unordered_zero(u, starts[i], lens[i])
                                  : blkhash_unordered_data(u, starts[i], c->bytes + starts[i], lens[i]);
    cr_assert_eq(r, 0, "extent %zu", i);
  }
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len;
  cr_assert_eq(blkhash_unordered_final(u, md, &md_len), 0);
  blkhash_hex(md, md_len, hex);
  blkhash_unordered_free(u);
}

Test(blkhash, unordered_matches_vectors)
{
  static struct vector v[128];
  size_t n = load_vectors(v, 128);
  for (size_t i = 0; i < n; i++) {
    if (big(v[i].pattern))
      continue;
    struct collected c;
    collect_pattern(v[i].pattern, &c);
    static const unsigned threads[] = { 0, 2, 8 };
    for (uint64_t seed = 1; seed <= 3; seed++) {
      for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        char hex[2 * BLKHASH_MAX_MD_SIZE + 1];
        hash_unordered(&v[i], &c, seed, threads[t], hex);
        cr_expect_str_eq(hex, v[i].expected, "vector %zu (%s) in shuffled order, seed %llu, "
                         "%u threads", i + 1, v[i].pattern, (unsigned long long)seed, threads[t]);
      }
    }
    collected_free(&c);
  }
}

/* Whole blocks hashed elsewhere (blkhash_blocks, as the qcow2 workers do) and handed
 * over as digests, last block first: directly, through the sink, and through the sink
 * with digests it must not trust (another block size: it hashes the bytes instead). */
static void hash_by_digests(const struct vector *v, const struct collected *c, char *hex)
{
  struct blkhash_opts opts = { .digest_name = v->digest, .block_size = v->block_size };
  struct blkhash_unordered *u;
  struct blkhash_blocks *b;
  cr_assert_eq(blkhash_unordered_new(&opts, c->len, 256u << 20, &u), 0);
  cr_assert_eq(blkhash_blocks_new(&opts, &b), 0);
  size_t bs = v->block_size, nblocks = (c->len + bs - 1) / bs;
  unsigned char md[BLKHASH_MAX_MD_SIZE], garbage[BLKHASH_MAX_MD_SIZE] = { 0xa5 };
  struct vsink *sink = blkhash_unordered_sink(u);
  for (size_t i = nblocks; i-- > 0;) {
    const unsigned char *block = c->bytes + i * bs;
    if ((i + 1) * bs > c->len) { /* the short last block: bytes only */
      cr_assert_eq(blkhash_unordered_data(u, i * bs, block, c->len - i * bs), 0);
      continue;
    }
    cr_assert_eq(blkhash_blocks_hash(b, block, 1, md), 0);
    struct vsink_digests d;
    blkhash_blocks_describe(b, md, &d);
    struct verr err = { 0 };
    switch (i % 3) {
    case 0: cr_assert_eq(blkhash_unordered_digests(u, i, md, 1), 0, "block %zu", i); break;
    case 1: cr_assert_eq(vsink_data_digested(sink, i * bs, block, bs, &d, &err), 0, "%s", err.message); break;
    case 2:
      d.block_size = bs / 2;
      d.mds = garbage;
      cr_assert_eq(vsink_data_digested(sink, i * bs, block, bs, &d, &err), 0, "%s", err.message);
      break;
    }
  }
  unsigned char out[BLKHASH_MAX_MD_SIZE];
  unsigned out_len;
  cr_assert_eq(blkhash_unordered_final(u, out, &out_len), 0);
  blkhash_hex(out, out_len, hex);
  blkhash_blocks_free(b);
  blkhash_unordered_free(u);
}

Test(blkhash, unordered_takes_digests_of_whole_blocks)
{
  static struct vector v[128];
  size_t n = load_vectors(v, 128);
  for (size_t i = 0; i < n; i++) {
    if (big(v[i].pattern))
      continue;
    struct collected c;
    collect_pattern(v[i].pattern, &c);
    char hex[2 * BLKHASH_MAX_MD_SIZE + 1];
    hash_by_digests(&v[i], &c, hex);
    cr_expect_str_eq(hex, v[i].expected, "vector %zu (%s) from block digests", i + 1, v[i].pattern);
    collected_free(&c);
  }
}

Test(blkhash, unordered_digests_refuses_twice_and_past_the_end)
{
  struct blkhash_unordered *u;
  struct blkhash_blocks *b;
  static unsigned char data[65536 * 2 + 100];
  unsigned char md[2 * BLKHASH_MAX_MD_SIZE];
  memset(data, 7, sizeof data);
  cr_assert_eq(blkhash_unordered_new(NULL, sizeof data, 1 << 20, &u), 0);
  cr_assert_eq(blkhash_blocks_new(NULL, &b), 0);
  cr_assert_eq(blkhash_blocks_hash(b, data, 2, md), 0);
  cr_expect_eq(blkhash_unordered_digests(u, 1, md, 2), ERANGE, "block 2 is the short last one");
  cr_expect_eq(blkhash_unordered_digests(u, 0, md, 2), 0);
  cr_expect_eq(blkhash_unordered_digests(u, 1, md, 1), EINVAL, "block 1 arrived twice");
  blkhash_blocks_free(b);
  blkhash_unordered_free(u);
  struct blkhash_opts bad = { .digest_name = "no-such-digest" };
  cr_expect_eq(blkhash_blocks_new(&bad, &b), EINVAL);
}

Test(blkhash, unordered_refuses_twice_missing_and_overflow)
{
  struct blkhash_unordered *u;
  static unsigned char data[65536 * 3];
  memset(data, 1, sizeof data);
  cr_assert_eq(blkhash_unordered_new(NULL, sizeof data, 1 << 20, &u), 0);
  cr_expect_eq(blkhash_unordered_zero(u, 0, sizeof data + 1), ERANGE, "past the end");
  cr_expect_eq(blkhash_unordered_data(u, 65536, data, 100), 0);
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned len;
  cr_expect_eq(blkhash_unordered_final(u, md, &len), EIO, "blocks 0 to 2 never came whole");
  blkhash_unordered_free(u);

  /* a block twice is found when the frontier reaches it */
  cr_assert_eq(blkhash_unordered_new(NULL, sizeof data, 1 << 20, &u), 0);
  cr_expect_eq(blkhash_unordered_data(u, 65536, data, 65536), 0);
  cr_expect_eq(blkhash_unordered_zero(u, 65536, 65536), 0);
  cr_expect_eq(blkhash_unordered_data(u, 0, data, 65536), EINVAL, "block 1 arrived twice");
  blkhash_unordered_free(u);

  /* with worker threads the same block twice is found when the workers' digests come in */
  struct blkhash_opts threaded = { .threads = 2 };
  cr_assert_eq(blkhash_unordered_new(&threaded, sizeof data, 1 << 20, &u), 0);
  cr_expect_eq(blkhash_unordered_data(u, 65536, data, 65536), 0);
  cr_expect_eq(blkhash_unordered_zero(u, 65536, 65536), 0);
  int r = blkhash_unordered_data(u, 0, data, 65536);
  if (r == 0)
    r = blkhash_unordered_final(u, md, &len);
  cr_expect_eq(r, EINVAL, "block 1 arrived twice (threaded)");
  blkhash_unordered_free(u);

  /* a bound of one pending digest: the third out-of-order block does not fit */
  cr_assert_eq(blkhash_unordered_new(NULL, 65536 * 4, 100, &u), 0);
  cr_expect_eq(blkhash_unordered_data(u, 65536 * 3, data, 65536), 0);
  cr_expect_eq(blkhash_unordered_data(u, 65536 * 2, data, 65536), EFBIG);
  blkhash_unordered_free(u);
}

/* Hash `len` bytes of `data` then `zeros` zero bytes in one go: the reference. */
static void hash_whole(const unsigned char *data, size_t len, uint64_t zeros, unsigned threads,
                       unsigned char *md, unsigned *md_len)
{
  struct blkhash_opts opts = { .threads = threads };
  struct blkhash *h;
  cr_assert_eq(blkhash_new(&opts, &h), 0);
  cr_assert_eq(blkhash_update(h, data, len), 0);
  cr_assert_eq(blkhash_zero(h, zeros), 0);
  cr_assert_eq(blkhash_final(h, md, md_len), 0);
  blkhash_free(h);
}

/* A volume larger than its image: one pass gives the image's hash (snapshot at V) and
 * the volume's (final at F), each equal to a hash of exactly those bytes. */
Test(blkhash, snapshot_is_the_hash_of_the_bytes_so_far)
{
  static const size_t lengths[] = { 7u << 20, (7u << 20) + 512, 3 * 65536 + 1, 100, 0 };
  size_t max = (7u << 20) + 512;
  unsigned char *data = malloc(max);
  cr_assert_not_null(data);
  for (size_t i = 0; i < max; i++)
    data[i] = (unsigned char)(i * 131 + (i >> 16));
  memset(data + (1u << 20), 0, 3u << 16); /* some zero blocks inside */
  for (unsigned threads = 0; threads <= 4; threads += 4) {
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
      size_t v = lengths[k];
      uint64_t tail = (1u << 20) + 4096; /* F - V */
      unsigned char want_v[BLKHASH_MAX_MD_SIZE], want_f[BLKHASH_MAX_MD_SIZE];
      unsigned char got_v[BLKHASH_MAX_MD_SIZE], got_f[BLKHASH_MAX_MD_SIZE];
      unsigned lv, lf, gv, gf;
      hash_whole(data, v, 0, threads, want_v, &lv);
      hash_whole(data, v, tail, threads, want_f, &lf);
      struct blkhash_opts opts = { .threads = threads };
      struct blkhash *h;
      cr_assert_eq(blkhash_new(&opts, &h), 0);
      cr_assert_eq(blkhash_update(h, data, v), 0);
      cr_assert_eq(blkhash_snapshot(h, got_v, &gv), 0);
      cr_assert_eq(blkhash_zero(h, tail), 0);
      cr_assert_eq(blkhash_final(h, got_f, &gf), 0);
      cr_expect(gv == lv && memcmp(got_v, want_v, lv) == 0, "V=%zu threads=%u: snapshot", v,
                threads);
      cr_expect(gf == lf && memcmp(got_f, want_f, lf) == 0, "V=%zu threads=%u: final", v,
                threads);
      cr_expect_neq(memcmp(got_v, got_f, lv), 0, "the two lengths hash differently");
      cr_expect_eq(blkhash_snapshot(h, got_v, &gv), EINVAL, "no snapshot after final");
      blkhash_free(h);
    }
  }
  free(data);
}

/* blksum's "null" digest: nothing is hashed and the result is empty, whatever the
 * input, the thread count or the path the bytes take (data, zeros, in place). */
Test(blkhash, null_digest_is_empty)
{
  cr_assert(blkhash_digest_known("null"));
  cr_assert_not(blkhash_digest_known("nosuch"));
  static const char *const patterns[] = { "-", "z:1", "b41:65537", "r1:1M", "z:64K,r4:64K,z:128K" };
  for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++)
    for (unsigned t = 1; t <= 4; t *= 2)
      for (int use_zero = 0; use_zero <= 1; use_zero++) {
        char hex[2 * BLKHASH_MAX_MD_SIZE + 1] = "x";
        hash_pattern("null", 0, patterns[i], t, use_zero, 100000, hex);
        cr_assert_str_eq(hex, "", "null of %s with %u threads", patterns[i], t);
      }
  /* the other entry points accept it too */
  struct blkhash_opts opts = { .digest_name = "null" };
  struct blkhash_blocks *b = NULL;
  cr_assert_eq(blkhash_blocks_new(&opts, &b), 0);
  cr_assert_eq(blkhash_blocks_md_len(b), 0);
  blkhash_blocks_free(b);
  struct blkhash_unordered *u = NULL;
  cr_assert_eq(blkhash_unordered_new(&opts, 3 << 16, 1 << 20, &u), 0);
  cr_assert_eq(blkhash_unordered_zero(u, 0, 3 << 16), 0);
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len = 99;
  cr_assert_eq(blkhash_unordered_final(u, md, &md_len), 0);
  cr_assert_eq(md_len, 0);
  blkhash_unordered_free(u);
}
