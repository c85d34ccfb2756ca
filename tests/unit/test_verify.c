/* Unit tests of pkg/verify: real files written through pkg/target, read back from the
 * filesystem, hashed with pkg/blkhash, and compared block by block. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkhash/blkhash.h"
#include "core/zero.h"
#include "target/target.h"
#include "verify/verify.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define BS (64 * KiB)

static char tmpdir[64];
static char img[128];

static void make_tmpdir(void)
{
  strcpy(tmpdir, "/var/tmp/test_verify.XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
  snprintf(img, sizeof img, "%s/disk.img", tmpdir);
}

static void remove_tmpdir(void)
{
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (tmpdir[0] != '\0' && system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", tmpdir);
}

TestSuite(verify, .init = make_tmpdir, .fini = remove_tmpdir, .timeout = 60);

#define CHECK(call)                                                                      \
  do {                                                                                   \
    struct verr err_ = {0};                                                              \
    cr_assert_eq((call), 0, "%s: %s", #call, err_.message);                              \
  } while (0)

static void fill_pattern(unsigned char *buf, size_t len, uint64_t seed)
{
  uint64_t x = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (unsigned char)(x | 1);
  }
}

/* An image of `len` bytes: data in every 4th 64 KiB block from block 1, zeros elsewhere
 * (holes in the target), so data and holes alternate. */
static unsigned char *make_image(uint64_t len)
{
  unsigned char *buf = calloc(1, len);
  cr_assert_not_null(buf);
  for (uint64_t off = BS; off < len; off += 4 * BS) {
    uint64_t n = len - off < BS ? len - off : BS;
    fill_pattern(buf + off, (size_t)n, off);
  }
  return buf;
}

/* Write `buf` through the target as the pipeline would (zero blocks as zero extents),
 * while the write-time hasher sees the same guest bytes in order. */
static void write_image(const unsigned char *buf, uint64_t len, struct blkhash_opts *opts,
                        unsigned char *md, unsigned *md_len)
{
  struct target_opts topts = {.path = img};
  struct target *t = NULL;
  CHECK(target_open(&topts, &t, &err_));
  CHECK(target_check_fits(t, len, &err_));
  struct blkhash *h = NULL;
  cr_assert_eq(blkhash_new(opts, &h), 0);
  for (uint64_t off = 0; off < len; off += BS) {
    size_t n = len - off < BS ? (size_t)(len - off) : BS;
    if (mem_is_zero(buf + off, n)) {
      CHECK(vsink_zero(target_sink(t), off, n, &err_));
      cr_assert_eq(blkhash_zero(h, n), 0);
    } else {
      CHECK(vsink_data(target_sink(t), off, buf + off, n, &err_));
      cr_assert_eq(blkhash_update(h, buf + off, n), 0);
    }
  }
  cr_assert_eq(blkhash_final(h, md, md_len), 0);
  blkhash_free(h);
  CHECK(target_finish(t, &err_));
  target_free(t);
}

static void poke(uint64_t offset, unsigned char byte)
{
  int fd = open(img, O_WRONLY);
  cr_assert(fd >= 0);
  cr_assert_eq(pwrite(fd, &byte, 1, (off_t)offset), 1);
  cr_assert_eq(fsync(fd), 0);
  close(fd);
}

static void flip(uint64_t offset)
{
  int fd = open(img, O_RDONLY);
  unsigned char b;
  cr_assert_eq(pread(fd, &b, 1, (off_t)offset), 1);
  close(fd);
  poke(offset, (unsigned char)(b ^ 0x40));
}

struct compare_run {
  struct blockmap *wmap, *rmap;
  unsigned char wmd[BLKHASH_MAX_MD_SIZE], rmd[BLKHASH_MAX_MD_SIZE];
  unsigned wlen, rlen;
  struct verr err;
  int rc;
};

/* Write the image with a write-time manifest, let `damage` alter the file, read it back
 * with a second manifest and compare. */
static void run_compare(struct compare_run *r, const unsigned char *buf, uint64_t len,
                        size_t max_entries, void (*damage)(void))
{
  CHECK(blockmap_new(NULL, 0, max_entries, &r->wmap, &err_));
  CHECK(blockmap_new(NULL, 0, max_entries, &r->rmap, &err_));
  struct blkhash_opts wopts = {.threads = 2}, ropts = {.threads = 2};
  blockmap_attach(r->wmap, &wopts);
  blockmap_attach(r->rmap, &ropts);
  write_image(buf, len, &wopts, r->wmd, &r->wlen);
  if (damage)
    damage();
  CHECK(verify_readback(img, len, &ropts, r->rmd, &r->rlen, NULL, &err_));
  cr_assert_eq(r->wlen, r->rlen);
  r->rc = verify_compare(r->wmd, r->rmd, r->wlen, r->wmap, r->rmap, len, &r->err);
}

static void free_compare(struct compare_run *r)
{
  blockmap_free(r->wmap);
  blockmap_free(r->rmap);
}

Test(verify, readback_equals_blkhash_of_the_same_bytes)
{
  uint64_t len = 8 * MiB + 12345; /* a short last block, unaligned end */
  unsigned char *buf = make_image(len);
  unsigned char wmd[BLKHASH_MAX_MD_SIZE], rmd[BLKHASH_MAX_MD_SIZE];
  unsigned wlen, rlen;
  write_image(buf, len, NULL, wmd, &wlen);

  /* The reference: blkhash over the plain bytes in one call. */
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len;
  struct blkhash *h = NULL;
  cr_assert_eq(blkhash_new(NULL, &h), 0);
  cr_assert_eq(blkhash_update(h, buf, len), 0);
  cr_assert_eq(blkhash_final(h, md, &md_len), 0);
  blkhash_free(h);

  struct verify_result res;
  CHECK(verify_readback(img, len, NULL, rmd, &rlen, &res, &err_));
  cr_assert_eq(rlen, md_len);
  cr_expect_eq(memcmp(rmd, md, md_len), 0, "read-back hash differs from blkhash of the bytes");
  cr_expect_eq(memcmp(wmd, md, md_len), 0, "write-time hash differs from blkhash of the bytes");
  cr_expect_gt(res.hole_bytes, 4 * MiB, "holes must be skipped, not read (%llu)",
               (unsigned long long)res.hole_bytes);
  cr_expect_eq(res.bytes_read + res.hole_bytes, len);
  struct verr err = {0};
  cr_expect_eq(verify_compare(wmd, rmd, wlen, NULL, NULL, len, &err), 0);
  free(buf);
}

Test(verify, readback_with_sha1_and_small_blocks)
{
  uint64_t len = 3 * MiB + 512;
  unsigned char *buf = make_image(len);
  struct blkhash_opts opts = {.digest_name = "sha1", .block_size = 4096, .threads = 2};
  unsigned char wmd[BLKHASH_MAX_MD_SIZE], rmd[BLKHASH_MAX_MD_SIZE];
  unsigned wlen, rlen;
  write_image(buf, len, &opts, wmd, &wlen);
  CHECK(verify_readback(img, len, &opts, rmd, &rlen, NULL, &err_));
  cr_assert_eq(rlen, 20);
  cr_expect_eq(memcmp(wmd, rmd, rlen), 0);
  free(buf);
}

static void flip_block_17(void) { flip(17 * BS + 1000); }

Test(verify, flipped_byte_is_found_and_its_block_named)
{
  uint64_t len = 4 * MiB;
  unsigned char *buf = make_image(len); /* block 17 holds data (17 = 1 + 4*4) */
  struct compare_run r = {0};
  run_compare(&r, buf, len, 0, flip_block_17);
  cr_assert_eq(r.rc, -1);
  cr_expect_eq(r.err.code, VERR_VERIFY);
  cr_expect_not_null(strstr(r.err.message, "block 17 (bytes 1114112-1179647) differ"), "%s",
                     r.err.message);
  cr_expect_null(strstr(r.err.message, "block 16"), "%s", r.err.message);
  free_compare(&r);
  free(buf);
}

/* Block 17 holds data, block 18 a hole: old bytes appearing in a hole are found too. */
static void damage_17_and_18(void)
{
  flip(17 * BS + 5);
  poke(18 * BS + 7, 0x99);
}

Test(verify, adjacent_blocks_coalesce_into_one_range)
{
  uint64_t len = 4 * MiB;
  unsigned char *buf = make_image(len);
  struct compare_run r = {0};
  run_compare(&r, buf, len, 0, damage_17_and_18);
  cr_assert_eq(r.rc, -1);
  cr_expect_not_null(strstr(r.err.message, "blocks 17-18 (bytes 1114112-1245183) differ"),
                     "%s", r.err.message);
  free_compare(&r);
  free(buf);
}

/* A data block read back as zeros (a lost write) has no read-back entry at all. */
static void zero_block_5(void)
{
  unsigned char zeros[BS] = {0};
  int fd = open(img, O_WRONLY);
  cr_assert_eq(pwrite(fd, zeros, sizeof zeros, 5 * BS), (ssize_t)sizeof zeros);
  fsync(fd);
  close(fd);
}

Test(verify, lost_block_is_named)
{
  uint64_t len = 2 * MiB;
  unsigned char *buf = make_image(len);
  struct compare_run r = {0};
  run_compare(&r, buf, len, 0, zero_block_5);
  cr_assert_eq(r.rc, -1);
  cr_expect_not_null(strstr(r.err.message, "block 5 (bytes 327680-393215)"), "%s",
                     r.err.message);
  free_compare(&r);
  free(buf);
}

static void damage_last_short_block(void) { flip(2 * MiB + 100); }

Test(verify, short_last_block_range_ends_at_the_length)
{
  uint64_t len = 2 * MiB + 1000; /* block 32 is 1000 bytes long */
  unsigned char *buf = make_image(len);
  fill_pattern(buf + 2 * MiB, 1000, 5);
  struct compare_run r = {0};
  run_compare(&r, buf, len, 0, damage_last_short_block);
  cr_assert_eq(r.rc, -1);
  cr_expect_not_null(strstr(r.err.message, "block 32 (bytes 2097152-2098151)"), "%s",
                     r.err.message);
  free_compare(&r);
  free(buf);
}

static void damage_many(void)
{
  for (uint64_t b = 1; b < 64; b += 4)
    flip(b * BS + 3);
}

Test(verify, long_lists_are_bounded)
{
  uint64_t len = 4 * MiB;
  unsigned char *buf = make_image(len);
  struct compare_run r = {0};
  run_compare(&r, buf, len, 0, damage_many);
  cr_assert_eq(r.rc, -1);
  /* 16 separate ranges: 6 shown, 10 counted */
  cr_expect_not_null(strstr(r.err.message, "and 10 more ranges"), "%s", r.err.message);
  cr_expect_lt(strlen(r.err.message), sizeof r.err.message - 1, "message was cut");
  free_compare(&r);
  free(buf);
}

Test(verify, bounded_manifest_still_localises)
{
  uint64_t len = 8 * MiB; /* 32 data blocks */
  unsigned char *buf = make_image(len);
  struct compare_run r = {0};
  run_compare(&r, buf, len, 4, flip_block_17);
  cr_expect_leq(blockmap_entries(r.wmap), 4);
  cr_expect_gt(blockmap_granule_blocks(r.wmap), 1);
  cr_assert_eq(r.rc, -1);
  /* Granules of 32 blocks: block 17 lies in blocks 0-31. */
  uint64_t g = blockmap_granule_blocks(r.wmap);
  char want[96];
  snprintf(want, sizeof want, "blocks %llu-%llu", (unsigned long long)(17 / g * g),
           (unsigned long long)(17 / g * g + g - 1));
  cr_expect_not_null(strstr(r.err.message, want), "want %s in: %s", want, r.err.message);
  free_compare(&r);
  free(buf);
}

Test(verify, equal_images_compare_equal)
{
  uint64_t len = 2 * MiB;
  unsigned char *buf = make_image(len);
  struct compare_run r = {0};
  run_compare(&r, buf, len, 0, NULL);
  cr_expect_eq(r.rc, 0, "%s", r.err.message);
  cr_expect_eq(blockmap_entries(r.wmap), 8, "one entry per data block, none for zeros");
  free_compare(&r);
  free(buf);
}

Test(verify, without_manifests_the_mismatch_is_still_reported)
{
  unsigned char a[32] = {1}, b[32] = {2};
  struct verr err = {0};
  cr_assert_eq(verify_compare(a, b, 32, NULL, NULL, MiB, &err), -1);
  cr_expect_eq(err.code, VERR_VERIFY);
  cr_expect_not_null(strstr(err.message, "not recorded"), "%s", err.message);
}

Test(verify, truncated_target_is_an_error)
{
  uint64_t len = MiB;
  unsigned char *buf = make_image(len);
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len;
  write_image(buf, len, NULL, md, &md_len);
  cr_assert_eq(truncate(img, len / 2), 0);
  struct verr err = {0};
  cr_expect_eq(verify_readback(img, len, NULL, md, &md_len, NULL, &err), -1);
  cr_expect_eq(err.code, VERR_IO);
  cr_expect_not_null(strstr(err.message, "truncated"), "%s", err.message);
  free(buf);
}

Test(verify, unknown_digest_is_a_usage_error)
{
  struct blockmap *m = NULL;
  struct verr err = {0};
  cr_expect_eq(blockmap_new("no-such-digest", 0, 0, &m, &err), -1);
  cr_expect_eq(err.code, VERR_USAGE, "%s", err.message);
  cr_expect_null(m);
}

/* tmpfs may refuse O_DIRECT (older kernels): either way the hash must be right, and the
 * result must say how the bytes were read. */
Test(verify, readback_on_tmpfs)
{
  if (access("/dev/shm", W_OK) != 0)
    cr_skip_test("no /dev/shm");
  char path[64];
  strcpy(path, "/dev/shm/test_verify.XXXXXX");
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  unsigned char *buf = make_image(MiB + 77);
  cr_assert_eq(write(fd, buf, MiB + 77), (ssize_t)(MiB + 77));
  close(fd);
  unsigned char md[BLKHASH_MAX_MD_SIZE], rmd[BLKHASH_MAX_MD_SIZE];
  unsigned md_len, rmd_len;
  struct blkhash *h = NULL;
  cr_assert_eq(blkhash_new(NULL, &h), 0);
  cr_assert_eq(blkhash_update(h, buf, MiB + 77), 0);
  cr_assert_eq(blkhash_final(h, md, &md_len), 0);
  blkhash_free(h);
  struct verify_result res;
  struct verr err = {0};
  int rc = verify_readback(path, MiB + 77, NULL, rmd, &rmd_len, &res, &err);
  unlink(path);
  cr_assert_eq(rc, 0, "%s", err.message);
  cr_expect_eq(memcmp(md, rmd, md_len), 0);
  cr_log_info("tmpfs read-back direct_io=%d", res.direct_io);
  free(buf);
}

/* A file grown past its image (CDI's resize): one read-back gives the image's hash and
 * the volume's, the grown part is a hole hashed unread, and a non-zero byte past the
 * image fails naming it. */
Test(verify, span_hashes_image_and_volume_and_wants_zeros_past_the_image)
{
  uint64_t v = 3 * MiB + 4096, f = 7 * MiB;
  unsigned char *buf = make_image(v);
  unsigned char wmd[BLKHASH_MAX_MD_SIZE], md[BLKHASH_MAX_MD_SIZE];
  unsigned wlen, md_len;
  write_image(buf, v, NULL, wmd, &wlen);
  cr_assert_eq(truncate(img, (off_t)f), 0);

  unsigned char want_f[BLKHASH_MAX_MD_SIZE];
  unsigned want_f_len;
  struct blkhash *h = NULL;
  cr_assert_eq(blkhash_new(NULL, &h), 0);
  cr_assert_eq(blkhash_update(h, buf, v), 0);
  cr_assert_eq(blkhash_zero(h, f - v), 0);
  cr_assert_eq(blkhash_final(h, want_f, &want_f_len), 0);
  blkhash_free(h);

  struct blkhash_opts opts = {.threads = 2};
  struct verify_span span = {.image_length = v, .zeros_after_image = true};
  struct verify_result res;
  CHECK(verify_readback_span(img, f, &opts, &span, md, &md_len, &res, &err_));
  cr_expect(span.image_md_len == wlen && memcmp(span.image_md, wmd, wlen) == 0,
            "the image's hash differs from the write-time hash");
  cr_expect(md_len == want_f_len && memcmp(md, want_f, md_len) == 0,
            "the volume's hash differs from blkhash of image + zeros");
  cr_expect_geq(res.hole_bytes, f - v - 4096, "the grown part must not be read");

  poke(5 * MiB + 3, 0x01);
  struct verr err = {0};
  cr_expect_eq(verify_readback_span(img, f, &opts, &span, md, &md_len, NULL, &err), -1);
  cr_expect_eq(err.code, VERR_VERIFY);
  cr_expect_not_null(strstr(err.message, "byte 5242883"), "%s", err.message);
  cr_expect_not_null(strstr(err.message, "block 80 "), "%s", err.message);
  free(buf);
}
