/* Unit tests of pkg/vdi, the VDI decoder, on images made by real qemu-img
 * (hack/make-format-corpus.sh: dynamic and static, plus edited variants made here):
 * decoded through a real pipe with odd read sizes and compared byte for byte with
 * `qemu-img convert -O raw` of the same file, every guest byte covered exactly once;
 * hand-broken headers and maps refused with VERR_FORMAT. */
#include <criterion/criterion.h>

#include "stream_check.h"

#include "vdi/vdi.h"

TestSuite(vdi, .timeout = 120);

#define MIB (1024u * 1024u)

/* ---- decoding helpers ---- */

static int decode_file(const char *path, uint64_t expect_size, struct image_sink *s,
                       struct vdi_info *info, struct verr *err)
{
  image_sink_init(s, expect_size, VDI_MAX_EXTENT);
  struct pipe_reader pr;
  struct vreader in;
  pipe_reader_open(&pr, &in, path);
  struct vsink out = { &image_sink_ops, s };
  int r = vdi_stream_decode(&in, &out, NULL, info, err);
  pipe_reader_close(&pr);
  return r;
}

/* `path` decodes to exactly what qemu-img makes of it. */
static void expect_like_qemu(const char *path, struct vdi_info *info)
{
  char raw_path[PATH_MAX + 8], cmd[3 * PATH_MAX];
  snprintf(raw_path, sizeof raw_path, "%s.raw", path);
  snprintf(cmd, sizeof cmd, "timeout 60 qemu-img convert -f vdi -O raw '%s' '%s'", path,
           raw_path);
  cr_assert(system(cmd) == 0, "%s", cmd);
  uint64_t raw_size, img_size;
  CLEANUP_FREE uint8_t *raw = test_read_whole(raw_path, &raw_size);
  CLEANUP_FREE uint8_t *img = test_read_whole(path, &img_size);
  unlink(raw_path);
  struct image_sink s;
  struct verr err = { 0 };
  cr_assert(vdi_stream_probe(img, img_size, &err) == 0, "probe %s: %s", path, err.message);
  int r = decode_file(path, raw_size, &s, info, &err);
  cr_assert(r == 0, "%s: %s", path, err.message);
  image_sink_expect(&s, raw, raw_size, path);
  cr_expect_eq(info->virtual_size, raw_size);
  cr_expect_eq(info->source_bytes, img_size, "read %llu of %llu bytes",
               (unsigned long long)info->source_bytes, (unsigned long long)img_size);
  cr_expect_eq(info->data_bytes + info->zero_bytes, raw_size);
  image_sink_fini(&s);
}

static void write_temp(char *path, const uint8_t *img, size_t size)
{
  strcpy(path, "/tmp/vimport-vdi-test-XXXXXX");
  CLEANUP_CLOSE int fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert(write(fd, img, size) == (ssize_t)size);
}

static void expect_refused_with(const uint8_t *img, size_t size,
                                const struct vdi_stream_opts *opts, const char *what)
{
  struct image_sink s;
  image_sink_init(&s, 64u * MIB, 0);
  struct mem_reader m = { img, size, 0, 0, 0 };
  struct vreader in = { &mem_reader_ops, &m };
  struct vsink out = { &image_sink_ops, &s };
  struct verr err = { 0 };
  int r = vdi_stream_decode(&in, &out, opts, NULL, &err);
  cr_expect(r < 0 && err.code == VERR_FORMAT && strstr(err.message, what),
            "want a format error with \"%s\", got %d (%s): %s", what, r,
            verr_code_name(err.code), err.message);
  cr_expect(r == 0 || s.calls == 0, "nothing may be emitted before the map is checked");
  image_sink_fini(&s);
}

static void expect_refused(const uint8_t *img, size_t size, const char *what)
{
  expect_refused_with(img, size, NULL, what);
}

static uint8_t *load(const char *name, uint64_t *size)
{
  return format_corpus_load(name, size);
}

static uint32_t map_offset(const uint8_t *img) { return get_le32(img + 340); }
static uint32_t data_offset(const uint8_t *img) { return get_le32(img + 344); }

/* ---- images qemu-img made ---- */

static void check_corpus(const char *name, const char *raw_name, uint32_t type)
{
  char path[PATH_MAX];
  format_corpus_path(path, sizeof path, name);
  uint64_t raw_size;
  CLEANUP_FREE uint8_t *raw = format_corpus_load(raw_name, &raw_size);
  struct image_sink s;
  struct vdi_info info;
  struct verr err = { 0 };
  cr_assert(decode_file(path, raw_size, &s, &info, &err) == 0, "%s: %s", name, err.message);
  image_sink_expect(&s, raw, raw_size, name);
  cr_expect_eq(info.virtual_size, raw_size);
  cr_expect_eq(info.image_type, type);
  cr_expect_eq(info.block_size, MIB);
  cr_expect_eq(info.data_bytes + info.zero_bytes, raw_size);
  if (type == 1)
    cr_expect(info.zero_bytes > 0, "%s should be sparse", name);
  else
    cr_expect_eq(info.blocks, raw_size / MIB, "%s maps every block", name);
  image_sink_fini(&s);
}

Test(vdi, dynamic_through_a_pipe) { check_corpus("dynamic.vdi", "dynamic-vdi.raw", 1); }
Test(vdi, static_through_a_pipe) { check_corpus("static.vdi", "static-vdi.raw", 2); }

Test(vdi, blocks_out_of_guest_order)
{
  /* swap the map entries of the first two mapped blocks: file order != guest order */
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  uint8_t *map = img + map_offset(img);
  int a = -1, b = -1;
  for (int i = 0; i < 32 && b < 0; i++)
    if (get_le32(map + 4 * i) < 0xfffffffeu)
      *(a < 0 ? &a : &b) = i;
  cr_assert(b >= 0, "the corpus image needs two mapped blocks");
  uint32_t ea = get_le32(map + 4 * a);
  put_le32(map + 4 * a, get_le32(map + 4 * b));
  put_le32(map + 4 * b, ea);
  char path[PATH_MAX];
  write_temp(path, img, size);
  struct vdi_info info;
  expect_like_qemu(path, &info);
  unlink(path);
}

Test(vdi, truncated_reads_as_zeros_like_qemu)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  char path[PATH_MAX];
  write_temp(path, img, size - MIB / 2 - 1000); /* the tail of the last block gone */
  struct vdi_info info;
  expect_like_qemu(path, &info);
  unlink(path);
}

Test(vdi, odd_disk_size_rounds_up_like_qemu)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  put_le64(img + 368, get_le64(img + 368) - 700);
  char path[PATH_MAX];
  write_temp(path, img, size);
  struct vdi_info info;
  expect_like_qemu(path, &info);
  cr_expect_eq(info.virtual_size % 512, 0);
  unlink(path);
}

/* ---- refused ---- */

Test(vdi, bad_signature)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  img[64] ^= 1;
  struct verr err = { 0 };
  cr_assert(vdi_stream_probe(img, size, &err) < 0);
  expect_refused(img, size, "not a VDI image");
}

Test(vdi, short_header)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  expect_refused(img, 200, "cut short");
}

Test(vdi, other_version)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  put_le32(img + 68, 0x00010000);
  expect_refused(img, size, "version 1.0 is not supported");
}

Test(vdi, parent_uuid)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  img[445] = 1;
  expect_refused(img, size, "differencing or undo");
}

Test(vdi, differencing_type)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  put_le32(img + 76, 4);
  expect_refused(img, size, "differencing or undo");
}

Test(vdi, block_size)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  put_le32(img + 376, 2 * MIB);
  expect_refused(img, size, "only 512 and 1 MiB");
}

Test(vdi, unaligned_data)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  put_le32(img + 344, data_offset(img) + 3);
  expect_refused(img, size, "not sector-aligned");
}

Test(vdi, disk_larger_than_map)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  put_le64(img + 368, 33ull * MIB);
  expect_refused(img, size, "larger than its block map");
}

Test(vdi, map_after_data)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  put_le32(img + 340, data_offset(img) + 512);
  expect_refused(img, size, "not streamable in one pass");
}

Test(vdi, map_over_the_bound)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  struct vdi_stream_opts opts = { .table_bytes = 100 };
  expect_refused_with(img, size, &opts, "more than the limit");
}

Test(vdi, two_blocks_share_data)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  uint8_t *map = img + map_offset(img);
  put_le32(map + 4, get_le32(map));
  expect_refused(img, size, "map to the same data block");
}

Test(vdi, truncated_map)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("dynamic.vdi", &size);
  expect_refused(img, map_offset(img) + 10, "ends inside the block map");
}

Test(vdi, reader_errors_pass_through)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load("static.vdi", &size);
  struct image_sink s;
  image_sink_init(&s, 64u * MIB, 0);
  struct mem_reader m = { img, size, 0, 0, 5 * MIB };
  struct vreader in = { &mem_reader_ops, &m };
  struct vsink out = { &image_sink_ops, &s };
  struct verr err = { 0 };
  cr_assert(vdi_stream_decode(&in, &out, NULL, NULL, &err) < 0);
  cr_expect(err.code == VERR_IO && strstr(err.message, "test reader failure"), "%s",
            err.message);
  image_sink_fini(&s);
}
