/* Unit tests of pkg/vmdk, the streamOptimized decoder, on images made by real qemu-img
 * (hack/make-format-corpus.sh): decoded through a real pipe with odd read sizes and
 * compared byte for byte with `qemu-img convert -O raw`, every guest byte covered
 * exactly once; qemu's layout (tables ahead of the grains, no end-of-stream marker: the
 * zero sector after its last grain is padding) and the VMware layout (tables and footer
 * after the grains) built from the qemu image; monolithicSparse and hand-broken images
 * refused with VERR_FORMAT. */
#include <criterion/criterion.h>

#include "stream_check.h"

#include "vmdk/vmdk.h"

TestSuite(vmdk, .timeout = 120);

#define SECTOR 512u

/* ---- decoding helpers ---- */

static int decode_mem(const uint8_t *img, size_t size, const struct vmdk_stream_opts *opts,
                      struct image_sink *s, struct vmdk_info *info, struct verr *err)
{
  uint64_t vsize = get_le64(img + 12) * SECTOR;
  image_sink_init(s, size >= SECTOR && vsize <= (64u << 20) ? vsize : 0, VMDK_MAX_EXTENT);
  struct mem_reader m = { img, size, 0, 0, 0 };
  struct vreader in = { &mem_reader_ops, &m };
  struct vsink out = { &image_sink_ops, s };
  int r = vmdk_stream_decode(&in, &out, opts, info, err);
  if (r == 0)
    cr_assert_eq(m.at, size, "decoder stopped at %zu of %zu bytes", m.at, size);
  return r;
}

/* Decodes and matches the oracle of the streamOptimized corpus image. */
static void expect_decodes(const uint8_t *img, size_t size, const char *what)
{
  uint64_t raw_size;
  CLEANUP_FREE uint8_t *raw = format_corpus_load("streamOptimized-vmdk.raw", &raw_size);
  struct image_sink s;
  struct vmdk_info info;
  struct verr err = { 0 };
  int r = decode_mem(img, size, NULL, &s, &info, &err);
  cr_assert(r == 0, "%s: %s", what, err.message);
  image_sink_expect(&s, raw, raw_size, what);
  cr_assert_eq(info.source_bytes, size);
  image_sink_fini(&s);
}

/* Refused with VERR_FORMAT and a message containing `what`. */
static void expect_refused(const uint8_t *img, size_t size, const char *what)
{
  struct image_sink s;
  struct verr err = { 0 };
  int r = decode_mem(img, size, NULL, &s, NULL, &err);
  image_sink_fini(&s);
  cr_expect(r < 0 && err.code == VERR_FORMAT && strstr(err.message, what),
            "want a format error with \"%s\", got %d (%s): %s", what, r,
            verr_code_name(err.code), err.message);
}

/* ---- the qemu-img image through a pipe ---- */

Test(vmdk, stream_optimized_through_a_pipe)
{
  char path[PATH_MAX];
  format_corpus_path(path, sizeof path, "streamOptimized.vmdk");
  uint64_t raw_size, img_size;
  CLEANUP_FREE uint8_t *raw = format_corpus_load("streamOptimized-vmdk.raw", &raw_size);
  CLEANUP_FREE uint8_t *img = format_corpus_load("streamOptimized.vmdk", &img_size);
  struct image_sink s;
  image_sink_init(&s, raw_size, VMDK_MAX_EXTENT);
  struct pipe_reader pr;
  struct vreader in;
  pipe_reader_open(&pr, &in, path);
  struct vsink out = { &image_sink_ops, &s };
  struct vmdk_info info;
  struct verr err = { 0 };
  cr_assert(vmdk_stream_probe(img, img_size, &err) == 0, "probe: %s", err.message);
  int r = vmdk_stream_decode(&in, &out, NULL, &info, &err);
  pipe_reader_close(&pr);
  cr_assert(r == 0, "%s", err.message);
  image_sink_expect(&s, raw, raw_size, "streamOptimized.vmdk");
  cr_expect_eq(info.virtual_size, raw_size);
  cr_expect_eq(info.grain_size, 65536);
  cr_expect_eq(info.version, 3);
  cr_expect_eq(info.source_bytes, img_size, "read %llu of %llu bytes",
               (unsigned long long)info.source_bytes, (unsigned long long)img_size);
  cr_expect_eq(info.data_bytes + info.zero_bytes, raw_size);
  cr_expect(info.grains > 0 && info.zero_bytes > 0, "the image should be sparse");
  cr_expect_eq(info.data_bytes, info.grains * 65536);
  image_sink_fini(&s);
}

/* ---- layout of the corpus image, for building variants ---- */

/* Offset of the end-of-stream marker; *first_grain gets the first marker's offset. */
static size_t find_eos(const uint8_t *img, size_t size, size_t *first_grain)
{
  size_t p = (size_t)get_le64(img + 64) * SECTOR;
  if (first_grain)
    *first_grain = p;
  while (p + SECTOR <= size) {
    uint32_t len = get_le32(img + p + 8);
    if (len != 0)
      p += (12 + len + SECTOR - 1) / SECTOR * SECTOR;
    else if (get_le32(img + p + 12) == 0)
      return p;
    else
      p += SECTOR + (size_t)get_le64(img + p) * SECTOR;
  }
  cr_assert_fail("no end-of-stream marker in the corpus image");
  return 0;
}

static uint8_t *load(uint64_t *size)
{
  return format_corpus_load("streamOptimized.vmdk", size);
}

/* The grain table entry of guest grain g in qemu's tables ahead of the grains. */
static uint8_t *table_entry(uint8_t *img, uint64_t g)
{
  uint64_t gd = get_le64(img + 56);
  uint32_t per_gt = get_le32(img + 44);
  uint32_t gt = get_le32(img + gd * SECTOR + 4 * (g / per_gt));
  cr_assert(gt != 0, "grain %llu has no table in the corpus image", (unsigned long long)g);
  return img + (uint64_t)gt * SECTOR + 4 * (g % per_gt);
}

static size_t marker_len(const uint8_t *img, size_t at)
{
  return (12 + get_le32(img + at + 8) + SECTOR - 1) / SECTOR * SECTOR;
}

static void put_marker(uint8_t *p, uint64_t nsec, uint32_t type)
{
  memset(p, 0, SECTOR);
  put_le64(p, nsec);
  put_le32(p + 12, type);
}

/* The VMware layout: gdOffset = GD_AT_END in the header; after the grains a grain table
 * marker and table, a directory marker and directory, the footer marker and footer (the
 * header with the real gdOffset), the end-of-stream marker. `footer_capacity` 0 keeps
 * the header's. Returns a new buffer, *out_size its length. */
static uint8_t *vmware_layout(uint64_t footer_capacity, size_t *out_size)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t eos = find_eos(img, size, NULL);
  size_t n = eos + (1 + 4) * SECTOR + (1 + 1) * SECTOR + (1 + 1) * SECTOR + SECTOR;
  uint8_t *v = calloc(n, 1);
  cr_assert(v);
  memcpy(v, img, eos);
  put_le64(v + 56, UINT64_MAX); /* GD_AT_END */
  uint8_t *p = v + eos;
  put_marker(p, 4, 1), p += 5 * SECTOR; /* a grain table (contents not read) */
  put_marker(p, 1, 2), p += 2 * SECTOR; /* the grain directory */
  put_marker(p, 1, 3);
  memcpy(p + SECTOR, img, SECTOR);
  put_le64(p + SECTOR + 56, eos / SECTOR + 6);
  if (footer_capacity)
    put_le64(p + SECTOR + 12, footer_capacity);
  p += 2 * SECTOR;
  put_marker(p, 0, 0);
  *out_size = n;
  return v;
}

Test(vmdk, vmware_layout_with_footer)
{
  size_t n;
  CLEANUP_FREE uint8_t *v = vmware_layout(0, &n);
  expect_decodes(v, n, "GD_AT_END layout");
}

/* Swap the first two grain markers; with `fix_tables` their table entries follow. */
static void swap_first_grains(uint8_t *img, uint64_t size, bool fix_tables)
{
  size_t g0;
  find_eos(img, size, &g0);
  size_t len0 = marker_len(img, g0), g1 = g0 + len0, len1 = marker_len(img, g1);
  uint64_t grain_sectors = get_le64(img + 20);
  uint64_t guest0 = get_le64(img + g0) / grain_sectors, guest1 = get_le64(img + g1) / grain_sectors;
  CLEANUP_FREE uint8_t *tmp = malloc(len0 + len1);
  cr_assert(tmp);
  memcpy(tmp, img + g1, len1);
  memcpy(tmp + len1, img + g0, len0);
  memcpy(img + g0, tmp, len0 + len1);
  if (fix_tables) {
    put_le32(table_entry(img, guest1), (uint32_t)(g0 / SECTOR));
    put_le32(table_entry(img, guest0), (uint32_t)((g0 + len1) / SECTOR));
  }
}

Test(vmdk, grains_out_of_order)
{
  /* extents come out of order, coverage still exact */
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  swap_first_grains(img, size, true);
  expect_decodes(img, size, "two grains swapped");
}

Test(vmdk, grain_not_where_its_table_says)
{
  /* qemu reads through the tables: a grain they place elsewhere is not its disk's */
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  swap_first_grains(img, size, false);
  expect_refused(img, size, "which the grain table places at offset");
}

Test(vmdk, grain_the_tables_do_not_name)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t g0;
  find_eos(img, size, &g0);
  put_le32(table_entry(img, get_le64(img + g0) / get_le64(img + 20)), 0);
  expect_refused(img, size, "which the grain table places nowhere");
}

Test(vmdk, zero_padding_after_eos)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t eos = find_eos(img, size, NULL);
  cr_assert(size > eos + SECTOR, "qemu pads its streamOptimized images: test needs that");
  expect_decodes(img, size, "zero padding");
  expect_decodes(img, eos + SECTOR, "no padding");
}

/* ---- refused: not streamable ---- */

Test(vmdk, monolithic_sparse_is_not_streamable)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = format_corpus_load("monolithicSparse.vmdk", &size);
  struct verr err = { 0 };
  cr_assert(vmdk_stream_probe(img, size, &err) < 0);
  cr_expect(err.code == VERR_FORMAT && strstr(err.message, "not streamable"), "%s",
            err.message);
  struct image_sink s;
  memset(&err, 0, sizeof err);
  cr_assert(decode_mem(img, size, NULL, &s, NULL, &err) < 0);
  cr_expect(err.code == VERR_FORMAT && strstr(err.message, "not streamable"), "%s",
            err.message);
  cr_expect_eq(s.calls, 0, "nothing may be emitted for a refused header");
  image_sink_fini(&s);
}

Test(vmdk, descriptor_file_is_not_streamable)
{
  static const char desc[] =
      "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\n";
  uint8_t buf[SECTOR] = { 0 };
  memcpy(buf, desc, sizeof desc - 1);
  struct verr err = { 0 };
  cr_assert(vmdk_stream_probe(buf, sizeof buf, &err) < 0);
  cr_expect(strstr(err.message, "descriptor file") && strstr(err.message, "not streamable"),
            "%s", err.message);
}

/* ---- refused: hand-broken headers and streams ---- */

Test(vmdk, bad_magic)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  img[0] = 'X';
  expect_refused(img, size, "no KDMV magic");
}

Test(vmdk, short_header)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  expect_refused(img, 100, "cut short");
}

Test(vmdk, unknown_version)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  put_le32(img + 4, 4);
  expect_refused(img, size, "version 4 is not supported");
}

Test(vmdk, unknown_compression)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  img[77] = 2;
  expect_refused(img, size, "compression algorithm 2");
}

Test(vmdk, grain_size_zero_and_huge)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  put_le64(img + 20, 0);
  expect_refused(img, size, "grain size of 0 sectors");
  put_le64(img + 20, 1ull << 40);
  expect_refused(img, size, "grain size of");
}

Test(vmdk, capacity_overflow)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  put_le64(img + 12, UINT64_MAX / 256);
  expect_refused(img, size, "capacity of");
}

Test(vmdk, grain_map_over_the_table_bound)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  struct vmdk_stream_opts opts = { .table_bytes = 4 }; /* 32 MiB needs 64 bits */
  struct image_sink s;
  struct verr err = { 0 };
  cr_assert(decode_mem(img, size, &opts, &s, NULL, &err) < 0);
  cr_expect(err.code == VERR_FORMAT && strstr(err.message, "grain map"), "%s", err.message);
  cr_expect_eq(s.calls, 0);
  image_sink_fini(&s);
}

Test(vmdk, grain_outside_the_disk)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t g0;
  find_eos(img, size, &g0);
  put_le64(img + g0, get_le64(img + 12)); /* lba = capacity */
  expect_refused(img, size, "outside the disk");
}

Test(vmdk, grain_not_aligned)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t g0;
  find_eos(img, size, &g0);
  put_le64(img + g0, get_le64(img + g0) + 1);
  expect_refused(img, size, "not at a grain boundary");
}

Test(vmdk, grain_given_twice)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t g0;
  find_eos(img, size, &g0);
  size_t len0 = (12 + get_le32(img + g0 + 8) + SECTOR - 1) / SECTOR * SECTOR;
  put_le64(img + g0 + len0, get_le64(img + g0)); /* the second grain says the first's lba */
  expect_refused(img, size, "a second time");
}

Test(vmdk, grain_does_not_inflate)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t g0;
  find_eos(img, size, &g0);
  memset(img + g0 + 12, 0xff, 16);
  expect_refused(img, size, "does not inflate");
}

Test(vmdk, grain_size_larger_than_a_grain_can_take)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t g0;
  find_eos(img, size, &g0);
  put_le32(img + g0 + 8, 1u << 30);
  expect_refused(img, size, "more than a grain");
}

Test(vmdk, truncated_inside_a_grain)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t g;
  find_eos(img, size, &g);
  while (get_le32(img + g + 8) < 1000) /* a grain spanning more than one sector */
    g += (12 + get_le32(img + g + 8) + SECTOR - 1) / SECTOR * SECTOR;
  expect_refused(img, g + 600, "ends inside the compressed grain");
}

Test(vmdk, qemu_layout_ends_after_its_last_grain)
{
  /* qemu-img 7.2 writes no end-of-stream marker: its image may stop right there */
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t eos = find_eos(img, size, NULL);
  expect_decodes(img, eos, "qemu's layout, no padding");
}

Test(vmdk, qemu_layout_truncated_at_a_marker_boundary)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t g0;
  find_eos(img, size, &g0);
  expect_refused(img, g0 + marker_len(img, g0), "after 1 of the");
  expect_refused(img, g0, "after 0 of the");
  /* an end-of-stream marker does not make up for grains the tables name */
  memset(img + g0 + marker_len(img, g0), 0, SECTOR);
  expect_refused(img, g0 + marker_len(img, g0) + SECTOR, "after 1 of the");
  expect_refused(img, g0 + 100, "ends inside the marker");
}

Test(vmdk, no_end_of_stream_marker)
{
  /* tables after the grains (GD_AT_END): only the marker says the stream is whole */
  size_t n;
  CLEANUP_FREE uint8_t *v = vmware_layout(0, &n);
  expect_refused(v, n - SECTOR, "no end-of-stream marker");
}

Test(vmdk, tables_over_the_bound_are_read_past)
{
  /* tables that do not fit the bound are not kept: then the end-of-stream marker
   * (here qemu's padding) is what says the stream is whole */
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t eos = find_eos(img, size, NULL);
  struct vmdk_stream_opts opts = { .table_bytes = 4096 };
  struct image_sink s;
  struct verr err = { 0 };
  cr_assert(decode_mem(img, size, &opts, &s, NULL, &err) == 0, "%s", err.message);
  image_sink_fini(&s);
  cr_assert(decode_mem(img, eos, &opts, &s, NULL, &err) < 0);
  cr_expect(strstr(err.message, "no end-of-stream marker"), "%s", err.message);
  image_sink_fini(&s);
}

Test(vmdk, grain_table_past_the_grains)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  put_le32(img + get_le64(img + 56) * SECTOR, (uint32_t)get_le64(img + 64));
  expect_refused(img, size, "runs past where the grains start");
  CLEANUP_FREE uint8_t *again = load(&size);
  put_le64(again + 56, get_le64(again + 64) - 1); /* the directory in the last sector */
  put_le32(again + 44, 1);                        /* one entry per table: many tables */
  expect_refused(again, size, "grain directory");
}

Test(vmdk, data_after_end_of_stream)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t eos = find_eos(img, size, NULL);
  img[eos + SECTOR + 5] = 1;
  expect_refused(img, size, "after its end-of-stream marker");
}

Test(vmdk, unknown_marker_type)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t eos = find_eos(img, size, NULL);
  put_marker(img + eos, 0, 7);
  expect_refused(img, size, "unknown type 7");
}

Test(vmdk, footer_contradicts_header)
{
  size_t n;
  CLEANUP_FREE uint8_t *v = vmware_layout(12345, &n);
  expect_refused(v, n, "the vmdk footer");
}

Test(vmdk, reader_errors_pass_through)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  struct image_sink s;
  image_sink_init(&s, get_le64(img + 12) * SECTOR, 0);
  struct mem_reader m = { img, size, 0, 0, 300000 };
  struct vreader in = { &mem_reader_ops, &m };
  struct vsink out = { &image_sink_ops, &s };
  struct verr err = { 0 };
  cr_assert(vmdk_stream_decode(&in, &out, NULL, NULL, &err) < 0);
  cr_expect(err.code == VERR_IO && strstr(err.message, "test reader failure"), "%s",
            err.message);
  image_sink_fini(&s);
}
