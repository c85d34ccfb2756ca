/* Unit tests of pkg/vhd, the dynamic VHD decoder, on images made by real qemu-img
 * (hack/make-format-corpus.sh, plus force_size and edited variants made here): decoded
 * through a real pipe with odd read sizes and compared byte for byte with
 * `qemu-img convert -O raw` of the same file, every guest byte covered exactly once;
 * fixed, differencing and hand-broken images refused with VERR_FORMAT. */
#include <criterion/criterion.h>

#include "stream_check.h"

#include "vhd/vhd.h"

TestSuite(vhd, .timeout = 120);

#define SECTOR 512u

/* ---- decoding helpers ---- */

static int decode_file(const char *path, uint64_t expect_size, struct image_sink *s,
                       struct vhd_info *info, struct verr *err)
{
  image_sink_init(s, expect_size, VHD_MAX_EXTENT);
  struct pipe_reader pr;
  struct vreader in;
  pipe_reader_open(&pr, &in, path);
  struct vsink out = { &image_sink_ops, s };
  int r = vhd_stream_decode(&in, &out, NULL, info, err);
  pipe_reader_close(&pr);
  return r;
}

static int decode_mem(const uint8_t *img, size_t size, const struct vhd_stream_opts *opts,
                      struct image_sink *s, struct verr *err)
{
  image_sink_init(s, 64u << 20, 0); /* refusals only: the size is not checked */
  struct mem_reader m = { img, size, 0, 0, 0 };
  struct vreader in = { &mem_reader_ops, &m };
  struct vsink out = { &image_sink_ops, s };
  return vhd_stream_decode(&in, &out, opts, NULL, err);
}

/* `path` decodes to exactly what qemu-img makes of it. */
static void expect_like_qemu(const char *path, struct vhd_info *info)
{
  char raw_path[PATH_MAX + 8], cmd[3 * PATH_MAX];
  snprintf(raw_path, sizeof raw_path, "%s.raw", path);
  snprintf(cmd, sizeof cmd, "timeout 60 qemu-img convert -f vpc -O raw '%s' '%s'", path,
           raw_path);
  cr_assert(system(cmd) == 0, "%s", cmd);
  uint64_t raw_size, img_size;
  CLEANUP_FREE uint8_t *raw = test_read_whole(raw_path, &raw_size);
  CLEANUP_FREE uint8_t *img = test_read_whole(path, &img_size);
  unlink(raw_path);
  struct image_sink s;
  struct verr err = { 0 };
  cr_assert(vhd_stream_probe(img, img_size, &err) == 0, "probe %s: %s", path, err.message);
  int r = decode_file(path, raw_size, &s, info, &err);
  cr_assert(r == 0, "%s: %s", path, err.message);
  image_sink_expect(&s, raw, raw_size, path);
  cr_expect_eq(info->virtual_size, raw_size);
  cr_expect_eq(info->source_bytes, img_size, "read %llu of %llu bytes",
               (unsigned long long)info->source_bytes, (unsigned long long)img_size);
  cr_expect_eq(info->data_bytes + info->zero_bytes, raw_size);
  image_sink_fini(&s);
}

/* A private copy of `img` in a temporary file; the caller unlinks `path`. */
static void write_temp(char *path, const uint8_t *img, size_t size)
{
  strcpy(path, "/tmp/vimport-vhd-test-XXXXXX");
  CLEANUP_CLOSE int fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert(write(fd, img, size) == (ssize_t)size);
}

static void expect_refused(const uint8_t *img, size_t size, const char *what)
{
  struct image_sink s;
  struct verr err = { 0 };
  int r = decode_mem(img, size, NULL, &s, &err);
  cr_expect(r < 0 && err.code == VERR_FORMAT && strstr(err.message, what),
            "want a format error with \"%s\", got %d (%s): %s", what, r,
            verr_code_name(err.code), err.message);
  cr_expect(r == 0 || s.calls == 0, "nothing may be emitted before the tables are checked");
  image_sink_fini(&s);
}

/* Refused, but only once the data has started (the sink may have received part). */
static void expect_refused_after_data(const uint8_t *img, size_t size, const char *what)
{
  struct image_sink s;
  struct verr err = { 0 };
  int r = decode_mem(img, size, NULL, &s, &err);
  cr_expect(r < 0 && err.code == VERR_FORMAT && strstr(err.message, what),
            "want a format error with \"%s\", got %d (%s): %s", what, r,
            verr_code_name(err.code), err.message);
  image_sink_fini(&s);
}

static uint8_t *load(uint64_t *size)
{
  return format_corpus_load("dynamic.vhd", size);
}

static void fix_checksum(uint8_t *f)
{
  uint32_t sum = 0;
  for (unsigned i = 0; i < SECTOR; i++)
    if (i < 64 || i >= 68)
      sum += f[i];
  put_be32(f + 64, ~sum);
}

static uint64_t dyn_header(const uint8_t *img) { return get_be64(img + 16); }
static uint64_t bat_offset(const uint8_t *img) { return get_be64(img + dyn_header(img) + 16); }
static uint32_t block_size(const uint8_t *img) { return get_be32(img + dyn_header(img) + 32); }

/* ---- images qemu-img made ---- */

Test(vhd, dynamic_through_a_pipe)
{
  char path[PATH_MAX];
  format_corpus_path(path, sizeof path, "dynamic.vhd");
  uint64_t raw_size;
  CLEANUP_FREE uint8_t *raw = format_corpus_load("dynamic-vpc.raw", &raw_size);
  struct image_sink s;
  struct vhd_info info;
  struct verr err = { 0 };
  cr_assert(decode_file(path, raw_size, &s, &info, &err) == 0, "%s", err.message);
  image_sink_expect(&s, raw, raw_size, "dynamic.vhd");
  cr_expect_str_eq(info.creator_app, "qemu");
  cr_expect_eq(info.virtual_size, raw_size, "CHS geometry gives the size for creator qemu");
  cr_expect_eq(info.block_size, 2u << 20);
  cr_expect(info.blocks > 0 && info.zero_bytes > 0, "the image should be sparse");
  cr_expect_eq(info.data_bytes + info.zero_bytes, raw_size);
  image_sink_fini(&s);
}

Test(vhd, dynamic_matches_qemu_img)
{
  char path[PATH_MAX];
  format_corpus_path(path, sizeof path, "dynamic.vhd");
  struct vhd_info info;
  expect_like_qemu(path, &info);
}

Test(vhd, force_size_uses_current_size)
{
  /* creator "qem2": qemu takes the footer's current size, not the CHS geometry */
  char dir[] = "/tmp/vimport-vhd-XXXXXX", base[PATH_MAX], path[PATH_MAX], cmd[3 * PATH_MAX];
  cr_assert(mkdtemp(dir));
  format_corpus_path(base, sizeof base, "base.img");
  snprintf(path, sizeof path, "%s/force.vhd", dir);
  snprintf(cmd, sizeof cmd,
           "timeout 60 qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "
           "'%s' '%s'", base, path);
  cr_assert(system(cmd) == 0, "%s", cmd);
  struct vhd_info info;
  expect_like_qemu(path, &info);
  cr_expect_str_eq(info.creator_app, "qem2");
  cr_expect_eq(info.virtual_size, 32u << 20);
  unlink(path);
  rmdir(dir);
}

Test(vhd, hyper_v_creator_uses_current_size)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  memcpy(img + 28, "win ", 4);
  put_be64(img + 48, 20u << 20); /* inside the BAT's reach, unlike CHS */
  fix_checksum(img);
  char path[PATH_MAX];
  write_temp(path, img, size);
  struct vhd_info info;
  expect_like_qemu(path, &info);
  cr_expect_eq(info.virtual_size, 20u << 20);
  unlink(path);
}

Test(vhd, blocks_out_of_guest_order)
{
  /* swap the file positions of the first two allocated blocks */
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  uint8_t *bat = img + bat_offset(img);
  int a = -1, b = -1;
  for (int i = 0; i < 16 && b < 0; i++)
    if (get_be32(bat + 4 * i) != 0xffffffffu)
      *(a < 0 ? &a : &b) = i;
  cr_assert(b >= 0, "the corpus image needs two allocated blocks");
  uint32_t sa = get_be32(bat + 4 * a), sb = get_be32(bat + 4 * b);
  size_t span = SECTOR + block_size(img);
  CLEANUP_FREE uint8_t *tmp = malloc(span);
  cr_assert(tmp);
  memcpy(tmp, img + (size_t)sa * SECTOR, span);
  memcpy(img + (size_t)sa * SECTOR, img + (size_t)sb * SECTOR, span);
  memcpy(img + (size_t)sb * SECTOR, tmp, span);
  put_be32(bat + 4 * a, sb);
  put_be32(bat + 4 * b, sa);
  char path[PATH_MAX];
  write_temp(path, img, size);
  struct vhd_info info;
  expect_like_qemu(path, &info);
  unlink(path);
}

Test(vhd, truncated_block_is_refused_like_qemu)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  size_t cut = size - block_size(img) / 2 - 512; /* half the last block gone */
  char path[PATH_MAX], cmd[2 * PATH_MAX];
  write_temp(path, img, cut);
  snprintf(cmd, sizeof cmd,
           "timeout 60 qemu-img convert -f vpc -O raw '%s' /dev/null 2>/dev/null", path);
  cr_expect(system(cmd) != 0, "qemu-img accepts the truncated image: the decoder should too");
  unlink(path);
  expect_refused_after_data(img, cut, "ends inside block");
}

/* ---- refused ---- */

Test(vhd, fixed_is_not_streamable)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = format_corpus_load("fixed.vhd", &size);
  struct verr err = { 0 };
  cr_assert(vhd_stream_probe(img, size, &err) < 0);
  cr_expect(strstr(err.message, "not a dynamic VHD"), "%s", err.message);
  expect_refused(img, size, "only kind that is streamable");
}

Test(vhd, differencing_needs_its_parent)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  put_be32(img + 60, 4);
  fix_checksum(img);
  expect_refused(img, size, "differencing disk");
}

Test(vhd, fixed_type_with_footer_copy)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  put_be32(img + 60, 2);
  fix_checksum(img);
  expect_refused(img, size, "(fixed), not dynamic");
}

Test(vhd, bad_checksum)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  img[100] ^= 1;
  expect_refused(img, size, "checksum");
}

Test(vhd, short_footer)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  expect_refused(img, 300, "footer copy");
}

Test(vhd, no_dynamic_header)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  img[dyn_header(img)] = 'X';
  expect_refused(img, size, "cxsparse");
}

Test(vhd, dynamic_header_inside_footer)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  put_be64(img + 16, 100);
  fix_checksum(img);
  expect_refused(img, size, "inside the footer copy");
}

Test(vhd, block_size_not_power_of_two)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  put_be32(img + dyn_header(img) + 32, 3u << 20);
  expect_refused(img, size, "not a power of two");
}

Test(vhd, table_too_small)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  put_be32(img + dyn_header(img) + 28, 2);
  expect_refused(img, size, "too few");
}

Test(vhd, table_over_the_bound)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  struct vhd_stream_opts opts = { .table_bytes = 64 };
  struct image_sink s;
  struct verr err = { 0 };
  cr_assert(decode_mem(img, size, &opts, &s, &err) < 0);
  cr_expect(err.code == VERR_FORMAT && strstr(err.message, "more than the limit"), "%s",
            err.message);
  cr_expect_eq(s.calls, 0);
  image_sink_fini(&s);
}

Test(vhd, table_before_header)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  put_be64(img + dyn_header(img) + 16, 512);
  expect_refused(img, size, "does not follow the dynamic header");
}

Test(vhd, block_inside_the_table)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  put_be32(img + bat_offset(img), (uint32_t)(bat_offset(img) / SECTOR));
  expect_refused(img, size, "before the end of the block table");
}

Test(vhd, blocks_overlap)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  uint8_t *bat = img + bat_offset(img);
  put_be32(bat + 4, get_be32(bat) + 8); /* block 1 starts inside block 0 */
  expect_refused(img, size, "before the end of the previous block");
}

Test(vhd, too_large)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  memcpy(img + 28, "win ", 4);
  put_be64(img + 48, 3ull << 40);
  fix_checksum(img);
  expect_refused(img, size, "2040 GiB");
}

Test(vhd, truncated_table)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  expect_refused(img, bat_offset(img) + 20, "ends inside the block allocation table");
}

Test(vhd, reader_errors_pass_through)
{
  uint64_t size;
  CLEANUP_FREE uint8_t *img = load(&size);
  struct image_sink s;
  image_sink_init(&s, 64u << 20, 0);
  struct mem_reader m = { img, size, 0, 0, 3000000 };
  struct vreader in = { &mem_reader_ops, &m };
  struct vsink out = { &image_sink_ops, &s };
  struct verr err = { 0 };
  cr_assert(vhd_stream_decode(&in, &out, NULL, NULL, &err) < 0);
  cr_expect(err.code == VERR_IO && strstr(err.message, "test reader failure"), "%s",
            err.message);
  image_sink_fini(&s);
}
