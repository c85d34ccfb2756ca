/* Unit tests of the raw decoder (pkg/raw). Whatever sizes the reader hands
 * out, and whether it lends its own memory (as the HTTP source's ring does) or reads into
 * the decoder's buffer, the stream must come out byte for byte, each byte once, all-zero
 * blocks as zero extents, and a fixed VHD's footer dropped. */
#include <criterion/criterion.h>

#include <sys/stat.h>

#include "core/zero.h"
#include "raw/raw.h"
#include "sniff/sniff.h"
#include "lend_reader.h"
#include "stream_check.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define BLOCK (64 * KiB)

/* The image sink, plus which blocks arrived as zero extents. */
struct zero_tracking_sink {
  struct image_sink image;
  struct vsink inner;
  uint8_t *zero_block; /* per BLOCK: covered entirely by one zero extent */
};

static int tracking_data(struct vsink *s, uint64_t off, const void *buf, size_t len,
                         struct verr *err)
{
  struct zero_tracking_sink *t = s->state;
  return vsink_data(&t->inner, off, buf, len, err);
}

static int tracking_zero(struct vsink *s, uint64_t off, uint64_t len, struct verr *err)
{
  struct zero_tracking_sink *t = s->state;
  for (uint64_t b = (off + BLOCK - 1) / BLOCK; (b + 1) * BLOCK <= off + len; b++)
    t->zero_block[b] = 1;
  return vsink_zero(&t->inner, off, len, err);
}

static const struct vsink_ops tracking_ops = {
  .name = "test-zero-tracking", .data = tracking_data, .zero = tracking_zero,
};

/* Data, zero blocks (one on each side of the 1 MiB mark, where views end), a zero block
 * cut by the end, and non-zero bytes late in an otherwise zero block. */
static uint8_t *make_stream(size_t size)
{
  uint8_t *s = calloc(1, size);
  cr_assert_not_null(s);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t b = 0; b * BLOCK < size; b++) {
    if (b % 5 == 1 || b == 15 || b == 16 || b == 40)
      continue; /* all zeros */
    size_t end = (b + 1) * BLOCK < size ? (b + 1) * BLOCK : size;
    size_t start = b % 7 == 3 ? end - 100 : b * BLOCK; /* mostly zero, data at the end */
    for (size_t i = start; i < end; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      s[i] = (uint8_t)(x | 1);
    }
  }
  return s;
}

struct decoded {
  uint64_t size;
  bool vhd_footer;
  uint8_t *zero_block;
};

/* Decode `stream` through `r`, whose views inside `zeros` are zeros, into a sink sized
 * `guest_size`; check every guest byte came once and equals `stream`. */
static struct decoded decode_zeros_and_check(struct vreader *r, struct vzeros zeros,
                                             const uint8_t *stream, size_t guest_size,
                                             const char *what)
{
  struct zero_tracking_sink t = { 0 };
  image_sink_init(&t.image, guest_size, 0);
  t.inner = (struct vsink){ .ops = &image_sink_ops, .state = &t.image };
  t.zero_block = calloc(guest_size / BLOCK + 2, 1);
  struct vsink out = { .ops = &tracking_ops, .state = &t };
  struct decoded d = { 0 };
  struct verr err = { 0 };
  cr_assert_eq(raw_decode(r, zeros, &out, BLOCK, 0, &d.size, &d.vhd_footer, &err), 0, "%s: %s",
               what, err.message);
  cr_assert_eq(d.size, guest_size, "%s: %llu guest bytes", what, (unsigned long long)d.size);
  image_sink_expect(&t.image, stream, guest_size, what);
  image_sink_fini(&t.image);
  d.zero_block = t.zero_block;
  return d;
}

static struct decoded decode_and_check(struct vreader *r, const uint8_t *stream, size_t guest_size,
                                       const char *what)
{
  return decode_zeros_and_check(r, (struct vzeros){ 0 }, stream, guest_size, what);
}

static void expect_zero_blocks_found(const struct decoded *d, const uint8_t *stream, size_t size,
                                     const char *what)
{
  for (size_t b = 0; (b + 1) * BLOCK <= size; b++)
    if (mem_is_zero(stream + b * BLOCK, BLOCK))
      cr_expect(d->zero_block[b], "%s: zero block %zu was emitted as data", what, b);
}

Test(raw, lent_views_in_whole_chunks_find_every_zero_block)
{
  size_t size = 3 * MiB + 777;
  CLEANUP_FREE uint8_t *stream = make_stream(size);
  struct lend_reader l;
  struct vreader r;
  lend_reader_init(&l, &r, stream, size, NULL, 0);
  struct decoded d = decode_and_check(&r, stream, size, "whole views");
  cr_expect_not(d.vhd_footer);
  expect_zero_blocks_found(&d, stream, size, "whole views");
  free(d.zero_block);
  lend_reader_fini(&l);
}

Test(raw, lent_views_of_odd_sizes)
{
  size_t size = 3 * MiB + 777;
  CLEANUP_FREE uint8_t *stream = make_stream(size);
  /* A ring that wraps at odd places, and views shorter than the footer the decoder holds. */
  static const size_t sizes[] = { 65608, 1, 511, 513, 200000, 4096, 700001, 3 };
  struct lend_reader l;
  struct vreader r;
  lend_reader_init(&l, &r, stream, size, sizes, sizeof sizes / sizeof sizes[0]);
  struct decoded d = decode_and_check(&r, stream, size, "odd views");
  free(d.zero_block);
  lend_reader_fini(&l);
}

/* A reader that lends its runs of zeros from one separate buffer of zeros, as the HTTP
 * source lends zero granules (source_zeros()): each view is a run of whole 64 KiB
 * granules of one kind, at most ZEROS_LEN bytes, cut short only by `len` or the end. */
#define GRANULE (64 * KiB)
#define ZEROS_LEN MiB

struct zero_lender {
  const uint8_t *data;
  size_t size, at;
  const uint8_t *zeros; /* ZEROS_LEN bytes of zeros */
};

static bool granule_is_zero(const struct zero_lender *z, size_t at)
{
  size_t end = at - at % GRANULE + GRANULE;
  return mem_is_zero(z->data + at, (end < z->size ? end : z->size) - at);
}

static ssize_t zero_lender_view(struct vreader *r, const void **view, size_t len, void *scratch,
                                struct verr *err)
{
  (void)scratch, (void)err;
  struct zero_lender *z = r->state;
  size_t cap = len < ZEROS_LEN ? len : ZEROS_LEN;
  cap = cap < z->size - z->at ? cap : z->size - z->at;
  bool zero = z->at < z->size && granule_is_zero(z, z->at);
  size_t n = 0;
  while (n < cap && granule_is_zero(z, z->at + n) == zero)
    n += GRANULE - (z->at + n) % GRANULE;
  n = n < cap ? n : cap;
  *view = zero ? z->zeros : z->data + z->at;
  z->at += n;
  return (ssize_t)n;
}

static ssize_t zero_lender_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  return read_through_view(zero_lender_view, r, buf, len, err);
}

static const struct vreader_ops zero_lender_ops = {
  .name = "test-zero-lender", .read = zero_lender_read, .view = zero_lender_view,
};

/* The decoder trusts a view inside the reader's zeros; this checks that it trusts
 * nothing else: data views next to zero runs, runs cut by the end, blocks with data only
 * in their last bytes must all come out intact. */
Test(raw, views_inside_the_readers_zeros_count_as_zeros_and_nothing_else)
{
  size_t size = 5 * MiB + 777;
  CLEANUP_FREE uint8_t *stream = make_stream(size);
  memset(stream + 3 * MiB, 0, 2 * MiB); /* runs longer than the zeros buffer */
  CLEANUP_FREE uint8_t *zeros = calloc(1, ZEROS_LEN);
  cr_assert_not_null(zeros);
  struct zero_lender z = { .data = stream, .size = size, .zeros = zeros };
  struct vreader r = { .ops = &zero_lender_ops, .state = &z };
  struct vzeros known = { .buf = zeros, .len = ZEROS_LEN };
  struct decoded d = decode_zeros_and_check(&r, known, stream, size, "zeros lent apart");
  expect_zero_blocks_found(&d, stream, size, "zeros lent apart");
  free(d.zero_block);
}

Test(raw, vzeros_holds_only_ranges_wholly_inside_the_buffer)
{
  unsigned char area[64] = { 0 };
  struct vzeros z = { .buf = area + 8, .len = 32 };
  cr_expect(vzeros_holds(z, area + 8, 32));
  cr_expect(vzeros_holds(z, area + 39, 1));
  cr_expect(vzeros_holds(z, area + 40, 0));
  cr_expect_not(vzeros_holds(z, area + 9, 32));
  cr_expect_not(vzeros_holds(z, area + 40, 1));
  cr_expect_not(vzeros_holds(z, area + 7, 2));
  cr_expect_not(vzeros_holds(z, area + 8, SIZE_MAX));
  cr_expect_not(vzeros_holds((struct vzeros){ 0 }, area, 1));
}

Test(raw, readers_without_memory_to_lend)
{
  size_t size = 2 * MiB + 4096;
  CLEANUP_FREE uint8_t *stream = make_stream(size);
  struct mem_reader m = { .data = stream, .size = size };
  struct vreader r = { .ops = &mem_reader_ops, .state = &m };
  struct decoded d = decode_and_check(&r, stream, size, "read into the decoder's buffer");
  expect_zero_blocks_found(&d, stream, size, "read into the decoder's buffer");
  free(d.zero_block);
}

Test(raw, streams_shorter_than_the_held_footer)
{
  static const size_t sizes[] = { 0, 1, 511, 512, 513 };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    uint8_t stream[600];
    memset(stream, (int)i + 1, sizeof stream);
    struct lend_reader l;
    struct vreader r;
    lend_reader_init(&l, &r, stream, sizes[i], NULL, 0);
    if (sizes[i] > 0) {
      struct decoded d = decode_and_check(&r, stream, sizes[i], "short stream");
      free(d.zero_block);
    } else {
      uint64_t got = 1;
      bool vhd = true;
      struct verr err = { 0 };
      struct image_sink img;
      image_sink_init(&img, 1, 0);
      struct vsink out = { .ops = &image_sink_ops, .state = &img };
      cr_assert_eq(raw_decode(&r, (struct vzeros){ 0 }, &out, BLOCK, 0, &got, &vhd, &err), 0, "%s",
                   err.message);
      cr_expect_eq(got, 0);
      cr_expect_not(vhd);
      cr_expect_eq(img.calls, 0);
      image_sink_fini(&img);
    }
    lend_reader_fini(&l);
  }
}

Test(raw, fixed_vhd_footer_is_dropped_whatever_the_views)
{
  char dir[] = "/tmp/vimport-test-raw.XXXXXX", cmd[1024], path[128];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/fixed.vhd", dir);
  snprintf(cmd, sizeof cmd, "qemu-img create -q -f vpc -o subformat=fixed '%s' 5M && "
           "qemu-io -f vpc -c 'write -P 0x5a 1M 64k' -c 'write -P 0x11 4608k 5k' '%s' >/dev/null",
           path, path);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  uint64_t file_size;
  CLEANUP_FREE uint8_t *file = test_read_whole(path, &file_size);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
  static const size_t sizes[] = { 300, 1 << 20, 4096, 700, 65536 };
  for (size_t whole = 0; whole < 2; whole++) {
    struct lend_reader l;
    struct vreader r;
    lend_reader_init(&l, &r, file, file_size, whole ? NULL : sizes,
                     whole ? 0 : sizeof sizes / sizeof sizes[0]);
    struct decoded d = decode_and_check(&r, file, file_size - SNIFF_VHD_FOOTER_BYTES, "fixed vhd");
    cr_expect(d.vhd_footer);
    free(d.zero_block);
    lend_reader_fini(&l);
  }
}

Test(raw, longer_than_the_target_is_refused)
{
  size_t size = 2 * MiB;
  CLEANUP_FREE uint8_t *stream = make_stream(size);
  struct lend_reader l;
  struct vreader r;
  lend_reader_init(&l, &r, stream, size, NULL, 0);
  struct image_sink img;
  image_sink_init(&img, size, 0);
  struct vsink out = { .ops = &image_sink_ops, .state = &img };
  uint64_t got;
  bool vhd;
  struct verr err = { 0 };
  cr_assert_eq(raw_decode(&r, (struct vzeros){ 0 }, &out, BLOCK, MiB + 4096, &got, &vhd, &err),
               -1);
  cr_expect_eq(err.code, VERR_TARGET_TOO_SMALL);
  cr_expect(strstr(err.message, "A larger PVC is required") != NULL, "%s", err.message);
  image_sink_fini(&img);
  lend_reader_fini(&l);
}
