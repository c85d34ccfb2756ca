/* Unit tests for pkg/qcow2 against images made by the real qemu tools.
 *
 * hack/make-qcow2-corpus.sh builds the corpus (once per script version, into
 * $TMPDIR) with qemu-img/qemu-io, each image beside `qemu-img convert -O raw` of it.
 * Both readers must reproduce that raw image byte for byte, covering every guest byte
 * exactly once. The stream decoder reads through a pipe-like reader with odd read sizes
 * (it cannot seek); with a tiny window it must re-read exactly what it dropped through
 * pread (and refuse a re-read that differs), and without pread report
 * VERR_SCRATCH_REQUIRED. Hand-broken headers and tables must each be refused with
 * their own message.
 */
#include <criterion/criterion.h>

#include "corpus.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "blkhash/blkhash.h"
#include "core/stream.h"
#include "qcow2/qcow2.h"
#include "lend_reader.h"

/* ---- the corpus ---- */

static const char *corpus_dir(void)
{
  static char dir[1024];
  return test_corpus_dir(dir, sizeof dir, "hack/make-qcow2-corpus.sh", "qcow2", "");
}

static void corpus_path(char *out, size_t size, const char *name, const char *ext)
{
  snprintf(out, size, "%s/%s.%s", corpus_dir(), name, ext);
}


/* ---- a sink that builds the guest image and checks coverage ---- */

struct image_sink {
  uint64_t size;
  uint8_t *img;
  uint8_t *cover; /* how many extents covered each byte */
  int want_order; /* extents must come in increasing offset order */
  uint64_t next;  /* with want_order: end of the previous extent */
  int bad;        /* an extent outside [0, size), empty, or out of order */
  char why[200];
};

static int sink_mark(struct image_sink *s, uint64_t off, uint64_t len)
{
  if (len == 0 || off > s->size || len > s->size - off) {
    s->bad = 1;
    snprintf(s->why, sizeof s->why, "extent %llu+%llu outside %llu or empty",
             (unsigned long long)off, (unsigned long long)len, (unsigned long long)s->size);
    return -1;
  }
  if (s->want_order && off != s->next) {
    s->bad = 1;
    snprintf(s->why, sizeof s->why, "extent at %llu, expected %llu (in order)",
             (unsigned long long)off, (unsigned long long)s->next);
  }
  s->next = off + len;
  for (uint64_t i = 0; i < len; i++)
    if (s->cover[off + i] < 255)
      s->cover[off + i]++;
  return 0;
}

static int sink_data(struct vsink *vs, uint64_t off, const void *buf, size_t len,
                     struct verr *err)
{
  struct image_sink *s = vs->state;
  if (len > QCOW2_MAX_EXTENT)
    return verr_set(err, VERR_INTERNAL, "data extent of %zu bytes", len);
  if (sink_mark(s, off, len) < 0)
    return verr_set(err, VERR_INTERNAL, "%s", s->why);
  memcpy(s->img + off, buf, len);
  return 0;
}

static int sink_zero(struct vsink *vs, uint64_t off, uint64_t len, struct verr *err)
{
  struct image_sink *s = vs->state;
  if (sink_mark(s, off, len) < 0)
    return verr_set(err, VERR_INTERNAL, "%s", s->why);
  memset(s->img + off, 0, len);
  return 0;
}

static const struct vsink_ops image_sink_ops = { .name = "test-image", .data = sink_data,
                                                 .zero = sink_zero };

static void image_sink_init(struct image_sink *s, uint64_t size, int want_order)
{
  memset(s, 0, sizeof *s);
  s->size = size;
  s->want_order = want_order;
  s->img = malloc(size + 1);
  s->cover = calloc(size + 1, 1);
  cr_assert(s->img && s->cover);
  memset(s->img, 0xee, size); /* anything not written shows up */
}

static void image_sink_fini(struct image_sink *s)
{
  free(s->img);
  free(s->cover);
}

/* The sink holds exactly the oracle's bytes, each covered once. */
static void image_sink_expect(struct image_sink *s, const char *name)
{
  char raw_path[PATH_MAX];
  corpus_path(raw_path, sizeof raw_path, name, "raw");
  uint64_t raw_size;
  CLEANUP_FREE uint8_t *raw = test_read_whole(raw_path, &raw_size);
  cr_assert(!s->bad, "%s: %s", name, s->why);
  cr_assert_eq(raw_size, s->size, "%s: virtual size %llu, qemu-img says %llu", name,
               (unsigned long long)s->size, (unsigned long long)raw_size);
  for (uint64_t i = 0; i < s->size; i++)
    if (s->cover[i] != 1)
      cr_assert_fail("%s: guest byte %llu covered %u times", name, (unsigned long long)i,
                     s->cover[i]);
  for (uint64_t i = 0; i < s->size; i++)
    if (s->img[i] != raw[i])
      cr_assert_fail("%s: guest byte %llu is 0x%02x, qemu-img says 0x%02x", name,
                     (unsigned long long)i, s->img[i], raw[i]);
}

/* ---- the file reader ---- */

static int run_file(const char *path, struct image_sink *s, struct verr *err)
{
  CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
  cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
  struct qcow2_file *f;
  if (qcow2_file_open(fd, &f, err) < 0)
    return -1;
  image_sink_init(s, qcow2_virtual_size(f), 1);
  struct vsink vs = { &image_sink_ops, s };
  int r = qcow2_file_read_guest(f, &vs, err);
  qcow2_file_free(f);
  return r;
}

static void check_file(const char *name)
{
  char path[PATH_MAX];
  corpus_path(path, sizeof path, name, "qcow2");
  struct image_sink s;
  struct verr err = { 0 };
  int r = run_file(path, &s, &err);
  cr_assert(r == 0, "%s: %s", name, err.message);
  image_sink_expect(&s, name);
  image_sink_fini(&s);
}

/* ---- the stream decoder, through a reader that cannot seek ---- */

struct pipe_reader {
  int fd;
  unsigned step;
};

static ssize_t pipe_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  static const size_t sizes[] = { 1, 7, 4093, 65537, 333, 200000, 512 };
  struct pipe_reader *p = r->state;
  size_t want = sizes[p->step++ % (sizeof sizes / sizeof sizes[0])];
  ssize_t n = read(p->fd, buf, len < want ? len : want);
  if (n < 0)
    return verr_sys(err, VERR_IO, errno, "reading the test image");
  return n;
}

static const struct vreader_ops pipe_reader_ops = { .name = "test-pipe", .read = pipe_read };

struct reread {
  int fd;
  int tamper;     /* flip a byte of every re-read */
  unsigned calls;
};

static int reread_pread(void *opaque, void *buf, size_t len, uint64_t off, struct verr *err)
{
  struct reread *rr = opaque;
  rr->calls++;
  ssize_t n = pread(rr->fd, buf, len, (off_t)off);
  if (n != (ssize_t)len)
    return verr_sys(err, VERR_IO, errno, "test pread %zu at %llu", len, (unsigned long long)off);
  if (rr->tamper)
    ((uint8_t *)buf)[len / 2] ^= 1;
  return 0;
}

struct stream_run {
  uint64_t window;
  unsigned threads; /* decompression threads */
  int with_pread;
  int tamper;
  int lend; /* the reader lends its memory (like the HTTP ring), in odd sizes */
  int hashed; /* the workers hash blocks too: a block hash beside the image sink */
  char hash_hex[2 * BLKHASH_MAX_MD_SIZE + 1];
  unsigned digested_extents; /* extents that came with their blocks' digests */
  struct qcow2_info info;
  unsigned pread_calls;
};

/* Counts the extents that arrive with digests, on their way to the block hash. */
struct digest_counter {
  struct vsink *next;
  unsigned *count;
};

static int counter_data(struct vsink *vs, uint64_t off, const void *buf, size_t len,
                        struct verr *err)
{
  struct digest_counter *c = vs->state;
  return vsink_data(c->next, off, buf, len, err);
}

static int counter_zero(struct vsink *vs, uint64_t off, uint64_t len, struct verr *err)
{
  struct digest_counter *c = vs->state;
  return vsink_zero(c->next, off, len, err);
}

static int counter_digested(struct vsink *vs, uint64_t off, const void *buf, size_t len,
                            const struct vsink_digests *d, struct verr *err)
{
  struct digest_counter *c = vs->state;
  (*c->count)++;
  return vsink_data_digested(c->next, off, buf, len, d, err);
}

static const struct vsink_ops counter_ops = { .name = "test-digest-counter", .data = counter_data,
                                              .zero = counter_zero,
                                              .digested = counter_digested };

static void hash_hex_of(const uint8_t *img, uint64_t size, char *hex)
{
  struct blkhash *h;
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len;
  cr_assert_eq(blkhash_new(NULL, &h), 0);
  cr_assert_eq(blkhash_update(h, img, size), 0);
  cr_assert_eq(blkhash_final(h, md, &md_len), 0);
  blkhash_hex(md, md_len, hex);
  blkhash_free(h);
}

static int run_stream(const char *path, struct stream_run *run, struct image_sink *s,
                      struct verr *err)
{
  CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
  CLEANUP_CLOSE int rfd = open(path, O_RDONLY | O_CLOEXEC);
  cr_assert(fd >= 0 && rfd >= 0, "open %s: %s", path, strerror(errno));
  /* the virtual size, for the sink, straight from the header */
  uint8_t hdr[32];
  cr_assert(pread(fd, hdr, sizeof hdr, 0) == (ssize_t)sizeof hdr);
  uint64_t size = 0;
  for (int i = 24; i < 32; i++)
    size = size << 8 | hdr[i];
  image_sink_init(s, size < (1ull << 30) ? size : 0, 0);
  struct pipe_reader p = { fd, 0 };
  struct vreader in = { &pipe_reader_ops, &p };
  /* Views cut short at odd places, as at the end of the sniffed head or a ring. */
  static const size_t lend_sizes[] = { 65608, 72, 1 << 20, 4096, 65536, 700001, 512, 65536 };
  struct lend_reader lend = { 0 };
  if (run->lend) {
    uint64_t file_size;
    CLEANUP_FREE uint8_t *file = test_read_whole(path, &file_size);
    lend_reader_init(&lend, &in, file, file_size, lend_sizes,
                     sizeof lend_sizes / sizeof lend_sizes[0]);
  }
  struct vsink image = { &image_sink_ops, s }, *vs = &image;
  struct reread rr = { rfd, run->tamper, 0 };
  struct qcow2_stream_opts opts = { .window_bytes = run->window, .threads = run->threads };
  if (run->with_pread) {
    opts.pread = reread_pread;
    opts.pread_opaque = &rr;
  }
  /* With `hashed`: image sink and block hash side by side, as the importer has them. */
  struct blkhash_opts hash_opts = { 0 };
  struct blkhash_unordered *u = NULL;
  struct digest_counter counter;
  struct vsink counted = { &counter_ops, &counter }, tee;
  struct vsink_tee_state tee_state;
  if (run->hashed) {
    cr_assert_eq(blkhash_unordered_new(&hash_opts, size, 256u << 20, &u), 0);
    counter = (struct digest_counter){ blkhash_unordered_sink(u), &run->digested_extents };
    vsink_tee_init(&tee, &tee_state, &image, &counted);
    vs = &tee;
    opts.block_hash = &hash_opts;
  }
  int r = qcow2_stream_decode(&in, vs, &opts, &run->info, err);
  if (u != NULL) {
    unsigned char md[BLKHASH_MAX_MD_SIZE];
    unsigned md_len;
    if (r == 0) {
      cr_assert_eq(blkhash_unordered_final(u, md, &md_len), 0, "the block hash missed bytes");
      blkhash_hex(md, md_len, run->hash_hex);
    }
    blkhash_unordered_free(u);
  }
  lend_reader_fini(&lend);
  run->pread_calls = rr.calls;
  if (r == 0) {
    struct stat st;
    cr_assert(fstat(fd, &st) == 0);
    cr_assert_eq(run->info.source_bytes, (uint64_t)st.st_size, "%s: read %llu of %llu bytes",
                 path, (unsigned long long)run->info.source_bytes,
                 (unsigned long long)st.st_size);
  }
  return r;
}

static void check_stream(const char *name, struct stream_run *run)
{
  char path[PATH_MAX];
  corpus_path(path, sizeof path, name, "qcow2");
  struct image_sink s;
  struct verr err = { 0 };
  int r = run_stream(path, run, &s, &err);
  cr_assert(r == 0, "%s: %s", name, err.message);
  image_sink_expect(&s, name);
  if (run->hashed) {
    char want[2 * BLKHASH_MAX_MD_SIZE + 1];
    hash_hex_of(s.img, s.size, want);
    cr_assert_str_eq(run->hash_hex, want, "%s: block hash of the decoded stream", name);
  }
  image_sink_fini(&s);
}

/* Compressed images whose clusters are whole 64 KiB blocks: the workers hash those. */
static int corpus_workers_hash(const char *name)
{
  static const char *const hashed[] = { "zlib", "zstd", "v2-zlib", "extl2-zstd", "c2m-zlib" };
  for (size_t i = 0; i < sizeof hashed / sizeof *hashed; i++)
    if (strcmp(name, hashed[i]) == 0)
      return 1;
  return 0;
}

#define CORPUS_TEST(id, name)                                                              \
  Test(qcow2_file, id) { check_file(name); }                                               \
  Test(qcow2_stream, id)                                                                   \
  {                                                                                        \
    struct stream_run run = { 0 };                                                         \
    check_stream(name, &run);                                                              \
  }                                                                                        \
  Test(qcow2_stream_threaded, id)                                                          \
  {                                                                                        \
    struct stream_run run = { .threads = 3 };                                              \
    check_stream(name, &run);                                                              \
  }                                                                                        \
  Test(qcow2_stream_lent, id)                                                              \
  {                                                                                        \
    struct stream_run run = { .threads = 3, .lend = 1 };                                   \
    check_stream(name, &run);                                                              \
  }                                                                                        \
  Test(qcow2_stream_hashed, id)                                                            \
  {                                                                                        \
    struct stream_run run = { .threads = 3, .hashed = 1 };                                 \
    check_stream(name, &run);                                                              \
    cr_expect_eq(run.digested_extents > 0, corpus_workers_hash(name),                      \
                 "%s: %u extents came with digests", name, run.digested_extents);          \
  }

CORPUS_TEST(plain, "plain")
CORPUS_TEST(zlib, "zlib")
CORPUS_TEST(zstd, "zstd")
CORPUS_TEST(v2, "v2")
CORPUS_TEST(v2_zlib, "v2-zlib")
CORPUS_TEST(extl2, "extl2")
CORPUS_TEST(extl2_zstd, "extl2-zstd")
CORPUS_TEST(c512, "c512")
CORPUS_TEST(c512_zlib, "c512-zlib")
CORPUS_TEST(c2m, "c2m")
CORPUS_TEST(c2m_zlib, "c2m-zlib")
CORPUS_TEST(odd, "odd")
CORPUS_TEST(prealloc, "prealloc")
CORPUS_TEST(random, "random")
CORPUS_TEST(subcl, "subcl")
CORPUS_TEST(resized, "resized")
CORPUS_TEST(resized_4k, "resized-4k")
CORPUS_TEST(snapshot, "snapshot")
CORPUS_TEST(discard, "discard")
CORPUS_TEST(late_zlib, "late-zlib")
CORPUS_TEST(late_zstd, "late-zstd")
CORPUS_TEST(gpt_ext4, "gpt-ext4")

/* Every image the script makes is tested above: a new one cannot be forgotten. */
Test(qcow2_corpus, every_image_is_tested)
{
  static const char *const tested[] = {
    "plain", "zlib", "zstd", "v2", "v2-zlib", "extl2", "extl2-zstd", "c512", "c512-zlib",
    "c2m", "c2m-zlib", "odd", "prealloc", "random", "subcl", "resized", "resized-4k", "snapshot",
    "discard", "gpt-ext4", "late-zlib", "late-zstd",
  };
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "cd '%s' && ls *.qcow2", corpus_dir());
  FILE *ls = popen(cmd, "r");
  cr_assert(ls);
  char line[256];
  unsigned count = 0;
  while (fgets(line, sizeof line, ls)) {
    line[strcspn(line, "\n")] = 0;
    *strrchr(line, '.') = 0;
    int found = 0;
    for (size_t i = 0; i < sizeof tested / sizeof tested[0]; i++)
      found |= strcmp(line, tested[i]) == 0;
    cr_expect(found, "corpus image %s.qcow2 has no test", line);
    count++;
  }
  pclose(ls);
  cr_assert_eq(count, sizeof tested / sizeof tested[0]);
}

/* ---- tables after data: the window, re-reads, scratch space ---- */

static void check_tiny_window(const char *name, uint64_t window)
{
  struct stream_run run = { .window = window, .with_pread = 1 };
  check_stream(name, &run);
  cr_assert(run.info.dropped_clusters > 0, "%s: nothing dropped, the test tests nothing", name);
  cr_assert(run.info.reread_bytes > 0 && run.pread_calls > 0, "%s: nothing re-read", name);
  cr_assert(run.info.window_peak_bytes <= window, "%s: window peak %llu > %llu", name,
            (unsigned long long)run.info.window_peak_bytes, (unsigned long long)window);

  char path[PATH_MAX];
  corpus_path(path, sizeof path, name, "qcow2");
  struct image_sink s;
  struct verr err = { 0 };
  struct stream_run no_pread = { .window = window };
  cr_assert(run_stream(path, &no_pread, &s, &err) < 0, "%s: decoded without pread", name);
  cr_assert_eq(err.code, VERR_SCRATCH_REQUIRED, "%s: %s", name, err.message);
  cr_assert(strstr(err.message, "scratch space"), "%s: %s", name, err.message);
  image_sink_fini(&s);

  struct stream_run tampered = { .window = window, .with_pread = 1, .tamper = 1 };
  cr_assert(run_stream(path, &tampered, &s, &err) < 0, "%s: tampered re-read accepted", name);
  cr_assert_eq(err.code, VERR_SOURCE, "%s: %s", name, err.message);
  cr_assert(strstr(err.message, "source changed"), "%s: %s", name, err.message);
  image_sink_fini(&s);
}

Test(qcow2_window, resized_rereads) { check_tiny_window("resized", 4096); }
Test(qcow2_window, resized_4k_rereads) { check_tiny_window("resized-4k", 8192); }
Test(qcow2_window, snapshot_rereads) { check_tiny_window("snapshot", 65536); }

/* What the resized image needs fits a generous window: no re-read, no scratch. */
Test(qcow2_window, resized_fits_default_window)
{
  struct stream_run run = { 0 };
  check_stream("resized", &run);
  cr_assert(run.info.window_peak_bytes > 0, "the image has tables after data");
  cr_assert_eq(run.info.dropped_clusters, 0);
  cr_assert_eq(run.info.reread_bytes, 0);
}

/* A table at the end maps a few compressed clusters among many the early tables map.
 * Chunks the early clusters used up are let go, so 8 MiB of window holds the late
 * clusters' chunks of a 15 MiB image without dropping any; the workers (threads 3) hold
 * more until their batches come back, which the window must also allow. Trusting the
 * tables' sector-rounded lengths instead of what the streams used would let go of chunks
 * holding late clusters (hack/qcow2-late-check.py makes sure the image has those), and
 * the decode would fail. */
Test(qcow2_window, used_up_compressed_chunks_are_let_go)
{
  static const char *const names[] = { "late-zlib", "late-zstd" };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    for (unsigned threads = 0; threads <= 3; threads += 3) {
      struct stream_run run = { .window = 8u << 20, .threads = threads };
      check_stream(names[i], &run);
      cr_assert(run.info.used_clusters > 0, "%s, threads %u: nothing let go", names[i], threads);
      cr_assert_eq(run.info.dropped_clusters, 0, "%s, threads %u: %llu dropped", names[i],
                   threads, (unsigned long long)run.info.dropped_clusters);
      cr_assert(run.info.window_peak_bytes > 0, "%s, threads %u: the late table's chunks were "
                "not kept", names[i], threads);
    }
  }
}

/* qemu-img convert writes tables before data: one cluster of window is enough. */
Test(qcow2_window, converted_image_streams_in_one_cluster)
{
  static const char *const names[] = { "plain", "zstd", "c2m", "extl2" };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    struct stream_run run = { .window = 1 };
    check_stream(names[i], &run);
    cr_assert_eq(run.info.window_peak_bytes, 0, "%s kept %llu bytes", names[i],
                 (unsigned long long)run.info.window_peak_bytes);
  }
}

/* ---- refused images, each with its own message ---- */

static void put_be64(uint8_t *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
  for (int i = 3; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

/* A copy of corpus image `name` as a buffer to break, written back by write_broken. */
static uint8_t *load_image(const char *name, uint64_t *size)
{
  char path[PATH_MAX];
  corpus_path(path, sizeof path, name, "qcow2");
  return test_read_whole(path, size);
}

/* Offset in the image of L2 entry 0 of the first L2 table. */
static uint64_t first_l2_entry(const uint8_t *img)
{
  uint64_t l1 = get_be64(img + 40);
  uint64_t l2 = get_be64(img + l1) & 0x00fffffffffffe00ull;
  cr_assert(l2 != 0);
  return l2;
}

/* Both readers refuse the image with VERR_FORMAT and a message containing `what`. */
static void expect_refused(const uint8_t *img, uint64_t size, const char *what)
{
  char path[] = "/tmp/vimport-qcow2-broken-XXXXXX";
  CLEANUP_CLOSE int fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert(write(fd, img, size) == (ssize_t)size);
  struct image_sink s;
  struct verr err = { 0 };
  s.img = NULL, s.cover = NULL;
  int r = run_file(path, &s, &err);
  image_sink_fini(&s);
  cr_expect(r < 0 && err.code == VERR_FORMAT && strstr(err.message, what),
            "file reader: want a format error with \"%s\", got %d: %s", what, r, err.message);
  for (unsigned threads = 0; threads <= 2; threads += 2) {
    struct stream_run run = { .threads = threads };
    memset(&err, 0, sizeof err);
    s.img = NULL, s.cover = NULL;
    r = run_stream(path, &run, &s, &err);
    image_sink_fini(&s);
    cr_expect(r < 0 && err.code == VERR_FORMAT && strstr(err.message, what),
              "stream decoder, %u threads: want a format error with \"%s\", got %d: %s",
              threads, what, r, err.message);
  }
  unlink(path);
}

Test(qcow2_refuse, backing_file)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  put_be64(img + 8, 512);
  put_be32(img + 16, 8);
  expect_refused(img, size, "has a backing file");
}

Test(qcow2_refuse, aes_encryption)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  put_be32(img + 32, 1);
  expect_refused(img, size, "encrypted (legacy AES)");
}

Test(qcow2_refuse, luks_encryption)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  put_be32(img + 32, 2);
  expect_refused(img, size, "encrypted (LUKS)");
}

Test(qcow2_refuse, corrupt_bit)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  img[79] |= 2;
  expect_refused(img, size, "marked corrupt");
}

Test(qcow2_refuse, external_data_file)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  img[79] |= 4;
  expect_refused(img, size, "external data file");
}

Test(qcow2_refuse, unknown_incompatible_bit)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  img[77] |= 0x10; /* bit 20 */
  expect_refused(img, size, "unknown incompatible feature bits 0x100000");
}

Test(qcow2_refuse, bad_cluster_bits)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  put_be32(img + 20, 30);
  expect_refused(img, size, "cluster_bits 30");
}

Test(qcow2_refuse, virtual_size_overflow)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  put_be64(img + 24, UINT64_MAX - 511);
  expect_refused(img, size, "does not fit in a 63-bit offset");
}

Test(qcow2_refuse, l1_too_small)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  put_be64(img + 24, 1ull << 40); /* 1 TiB needs 2048 L1 entries, the image has 1 */
  expect_refused(img, size, "needs 2048");
}

Test(qcow2_refuse, l1_outside_file)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  put_be64(img + 40, 1ull << 40);
  expect_refused(img, size, "L1 table at offset 0x10000000000 is outside the file");
}

Test(qcow2_refuse, l2_outside_file)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  put_be64(img + get_be64(img + 40), (1ull << 40) | (1ull << 63));
  expect_refused(img, size, "L2 table at offset 0x10000000000 is outside the file");
}

Test(qcow2_refuse, data_cluster_outside_file)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  put_be64(img + first_l2_entry(img), (1ull << 40) | (1ull << 63));
  expect_refused(img, size, "data cluster at offset 0x10000000000 is outside the file");
}

Test(qcow2_refuse, unaligned_data_cluster)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  uint64_t at = first_l2_entry(img);
  put_be64(img + at, get_be64(img + at) + 512);
  expect_refused(img, size, "points to unaligned offset");
}

/* Entry 0 of zlib.qcow2's first L2 table is compressed (the corpus starts with data). */
Test(qcow2_refuse, compressed_cluster_outside_file)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("zlib", &size);
  uint64_t at = first_l2_entry(img);
  uint64_t entry = get_be64(img + at);
  cr_assert(entry & (1ull << 62), "entry 0 is not compressed: 0x%llx", (unsigned long long)entry);
  unsigned x = 62 - (16 - 8);
  uint64_t sectors = entry & ~((1ull << x) - 1);
  put_be64(img + at, sectors | ((size + (1ull << 20)) & ((1ull << x) - 1)));
  expect_refused(img, size, "compressed cluster at offset");
}

Test(qcow2_refuse, compressed_cluster_does_not_fit_its_size)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("zlib", &size);
  uint64_t at = first_l2_entry(img);
  uint64_t entry = get_be64(img + at);
  unsigned x = 62 - (16 - 8);
  /* claim one sector: the deflate stream of 64 KiB of 0x11 needs more, or garbage */
  put_be64(img + at, (entry & ((1ull << x) - 1)) | (1ull << 62));
  uint64_t host = entry & ((1ull << x) - 1);
  memset(img + host, 0xff, 16);
  expect_refused(img, size, "could not be decompressed");
}

/* The dirty bit only means refcounts may be stale: the image still reads. */
Test(qcow2_accept, dirty_bit)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load_image("plain", &size);
  img[79] |= 1;
  char path[] = "/tmp/vimport-qcow2-dirty-XXXXXX";
  CLEANUP_CLOSE int fd = mkstemp(path);
  cr_assert(fd >= 0 && write(fd, img, size) == (ssize_t)size);
  struct image_sink s;
  struct verr err = { 0 };
  cr_assert(run_file(path, &s, &err) == 0, "%s", err.message);
  image_sink_expect(&s, "plain");
  image_sink_fini(&s);
  struct stream_run run = { 0 };
  cr_assert(run_stream(path, &run, &s, &err) == 0, "%s", err.message);
  image_sink_expect(&s, "plain");
  image_sink_fini(&s);
  unlink(path);
}

Test(qcow2_refuse, not_qcow2)
{
  uint8_t img[4096] = "<html>not an image</html>";
  expect_refused(img, sizeof img, "not a qcow2 image");
}
