/* Unit tests of pkg/target: real files on the test machine's filesystem, and a real
 * loop device when running as root. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkhash/blkhash.h"
#include "core/zero.h"
#include "target/target.h"
#include "verify/verify.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

static char tmpdir[64];

static void make_tmpdir(void)
{
  strcpy(tmpdir, "/var/tmp/test_target.XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (tmpdir[0] != '\0' && system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", tmpdir);
}

TestSuite(target, .init = make_tmpdir, .fini = remove_tmpdir, .timeout = 60);

static void tmp_path(char *out, size_t size, const char *name)
{
  snprintf(out, size, "%s/%s", tmpdir, name);
}

/* Deterministic non-zero bytes, different per seed. */
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

static unsigned char *read_all(const char *path, uint64_t len)
{
  unsigned char *buf = malloc(len);
  cr_assert_not_null(buf);
  int fd = open(path, O_RDONLY);
  cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
  uint64_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, buf + done, len - done, (off_t)done);
    cr_assert(n > 0, "read %s at %llu: %s", path, (unsigned long long)done, strerror(errno));
    done += (uint64_t)n;
  }
  close(fd);
  return buf;
}

static void write_file(const char *path, uint64_t len, unsigned char byte)
{
  unsigned char chunk[64 * 1024];
  memset(chunk, byte, sizeof chunk);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  cr_assert(fd >= 0);
  for (uint64_t off = 0; off < len; off += sizeof chunk) {
    size_t n = len - off < sizeof chunk ? (size_t)(len - off) : sizeof chunk;
    cr_assert_eq(pwrite(fd, chunk, n, (off_t)off), (ssize_t)n);
  }
  cr_assert_eq(fsync(fd), 0);
  close(fd);
}

static struct stat stat_path(const char *path)
{
  struct stat st;
  cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
  return st;
}

static struct target *open_file_target(const char *path, uint64_t requested, bool prealloc)
{
  struct target_opts opts = {.path = path, .requested_size = requested,
                             .fs_overhead = 0.055, .preallocate = prealloc};
  struct target *t = NULL;
  struct verr err = {0};
  cr_assert_eq(target_open(&opts, &t, &err), 0, "target_open: %s", err.message);
  return t;
}

#define CHECK(call)                                                                      \
  do {                                                                                   \
    struct verr err_ = {0};                                                              \
    cr_assert_eq((call), 0, "%s: %s", #call, err_.message);                              \
  } while (0)

/* ---- CDI's sizing arithmetic -------------------------------------------------------
 * Pinned values: computed with CDI's own formulas in IEEE double arithmetic, as Go's
 * float64 does them (kubevirt/containerized-data-importer v1.66):
 *   usable:    pkg/util/util.go GetUsableSpace:
 *              RoundDown(int64(math.Ceil(float64(available) / (1 + overhead))), 1 MiB)
 *   available: pkg/importer/data-processor.go calculateTargetSize: min(free, requested)
 *   grown:     pkg/importer/data-processor.go resize / ResizeImage:
 *              min(usable, requested) when larger than the virtual size, never smaller */

Test(target, usable_space_is_cdis_get_usable_space)
{
  static const struct {
    uint64_t available;
    double overhead;
    uint64_t want;
  } rows[] = {
    {10 * GiB, 0.0, 10 * GiB},                        /* no overhead, aligned */
    {10 * GiB, 0.055, UINT64_C(10177478656)},         /* CDI's default overhead */
    {8 * MiB, 0.055, 7 * MiB},                        /* ceil(7951287.2) -> 7 MiB */
    {64 * MiB, 0.055, 60 * MiB},
    {7 * MiB, 0.055, 6 * MiB},
    {5 * MiB + 123, 0.0, 5 * MiB},                    /* rounded down to MiB */
    {MiB - 1, 0.0, 0},                                /* less than a MiB: nothing */
    {100 * GiB + 7, 0.2, UINT64_C(89478135808)},
    {1024 * GiB, 0.055, UINT64_C(1042190172160)},
    {2 * GiB, 1.0, 1 * GiB},                          /* overhead 1: half */
    {0, 0.055, 0},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    uint64_t got = target_usable_space(rows[i].available, rows[i].overhead);
    cr_expect_eq(got, rows[i].want, "row %zu: usable %llu, want %llu", i,
                 (unsigned long long)got, (unsigned long long)rows[i].want);
  }
}

Test(target, available_is_min_of_free_and_requested)
{
  cr_expect_eq(target_available(0, 10 * GiB), 10 * GiB, "no request: the free bytes");
  cr_expect_eq(target_available(1 * GiB, 10 * GiB), 1 * GiB);
  cr_expect_eq(target_available(20 * GiB, 10 * GiB), 10 * GiB);
  cr_expect_eq(target_available(3 * MiB + 5, 100 * MiB), 3 * MiB + 5, "taken as is");
}

Test(target, grown_size_is_cdis_resize)
{
  /* requested 8 MiB on a roomy filesystem, overhead 0.055: usable(8 MiB) = 7 MiB */
  uint64_t usable = target_usable_space(target_available(8 * MiB, 1 * GiB), 0.055);
  cr_expect_eq(target_grown_size(4 * MiB, 8 * MiB, usable), 7 * MiB, "grown to usable");
  cr_expect_eq(target_grown_size(8 * MiB, 8 * MiB, usable), 8 * MiB, "never shrunk");
  cr_expect_eq(target_grown_size(7 * MiB + 512, 8 * MiB, usable), 7 * MiB + 512);
  cr_expect_eq(target_grown_size(4 * MiB, 0, 50 * MiB), 4 * MiB, "no request: no growth");
  cr_expect_eq(target_grown_size(4 * MiB, 6 * MiB, 50 * MiB), 6 * MiB, "min(usable, req)");
}

Test(target, overhead_range)
{
  cr_expect(target_overhead_valid(0.0));
  cr_expect(target_overhead_valid(0.055));
  cr_expect(target_overhead_valid(1.0));
  cr_expect_not(target_overhead_valid(-0.1));
  cr_expect_not(target_overhead_valid(1.01));
  cr_expect_not(target_overhead_valid(0.0 / 0.0));
}

/* ---- file targets ----------------------------------------------------------------- */

Test(target, fresh_file_stays_sparse)
{
  char path[128];
  tmp_path(path, sizeof path, "disk.img");
  struct target *t = open_file_target(path, 0, false);
  uint64_t vsize = 64 * MiB;
  unsigned char *data = malloc(MiB);
  unsigned char *zeros = calloc(1, MiB);
  fill_pattern(data, 64 * KiB, 1);
  CHECK(target_check_fits(t, vsize, &err_));
  struct vsink *s = target_sink(t);
  CHECK(vsink_data(s, 0, data, 64 * KiB, &err_));
  CHECK(vsink_zero(s, 64 * KiB, 32 * MiB - 64 * KiB, &err_));
  CHECK(vsink_data(s, 32 * MiB, zeros, MiB, &err_)); /* all-zero data is not written */
  CHECK(vsink_zero(s, 33 * MiB, vsize - 33 * MiB, &err_));
  CHECK(target_finish(t, &err_));

  struct target_info info;
  target_get_info(t, &info);
  cr_expect_eq(info.kind, TARGET_KIND_FILE);
  cr_expect_eq(info.size, vsize);
  cr_expect_eq(info.bytes_written, 64 * KiB);
  cr_expect_eq(info.zero_bytes_skipped, vsize - 64 * KiB);
  cr_expect_eq(info.zero_bytes_zeroed, 0);
  cr_expect_not(info.existed);
  target_free(t);

  struct stat st = stat_path(path);
  cr_expect_eq((uint64_t)st.st_size, vsize);
  cr_expect_leq((uint64_t)st.st_blocks * 512, 256 * KiB, "%lld bytes allocated",
                (long long)st.st_blocks * 512);
  unsigned char *got = read_all(path, vsize);
  cr_expect_eq(memcmp(got, data, 64 * KiB), 0);
  cr_expect(mem_is_zero(got + 64 * KiB, vsize - 64 * KiB));
  free(got);
  free(data);
  free(zeros);
}

Test(target, out_of_order_writes)
{
  char path[128];
  tmp_path(path, sizeof path, "ooo.img");
  uint64_t vsize = 16 * MiB + 4096;
  unsigned char *want = calloc(1, vsize);
  struct target *t = open_file_target(path, 0, false);
  CHECK(target_check_fits(t, vsize, &err_));
  /* Odd-sized extents in a scrambled order, with a zero extent that lands between data
   * already written (must not disturb it). */
  static const struct { uint64_t off, len; } ext[] = {
    {15 * MiB, MiB + 4096}, {3 * MiB + 17, 70000}, {0, 4096}, {8 * MiB, 2 * MiB},
    {5 * MiB - 1, 1}, {64 * KiB, 64 * KiB},
  };
  for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
    fill_pattern(want + ext[i].off, ext[i].len, i + 10);
    CHECK(vsink_data(target_sink(t), ext[i].off, want + ext[i].off, ext[i].len, &err_));
  }
  /* Data below everything written so far, then a zero extent over it: the zero extent
   * must win even on a fresh file. */
  unsigned char stale[64 * 1024];
  fill_pattern(stale, sizeof stale, 99);
  CHECK(vsink_data(target_sink(t), 12 * MiB, stale, sizeof stale, &err_));
  CHECK(vsink_zero(target_sink(t), 11 * MiB, 3 * MiB, &err_));
  CHECK(target_finish(t, &err_));
  target_free(t);
  unsigned char *got = read_all(path, vsize);
  cr_expect_eq(stat_path(path).st_size, (off_t)vsize);
  cr_expect_eq(memcmp(got, want, vsize), 0);
  free(got);
  free(want);
}

Test(target, existing_file_old_data_is_punched)
{
  char path[128];
  tmp_path(path, sizeof path, "old.img");
  uint64_t vsize = 8 * MiB;
  write_file(path, 12 * MiB, 0xAA); /* longer than the image, full of old bytes */
  unsigned char *want = calloc(1, vsize);
  fill_pattern(want + MiB, 128 * KiB, 3);
  unsigned char *zeros = calloc(1, 2 * MiB);

  struct target *t = open_file_target(path, 0, false);
  struct target_info info;
  target_get_info(t, &info);
  cr_expect(info.existed);
  CHECK(target_check_fits(t, vsize, &err_));
  struct vsink *s = target_sink(t);
  CHECK(vsink_zero(s, 0, MiB, &err_));
  CHECK(vsink_data(s, MiB, want + MiB, 128 * KiB, &err_));
  CHECK(vsink_data(s, MiB + 128 * KiB, zeros, 2 * MiB, &err_)); /* zero data over old data */
  CHECK(vsink_zero(s, 3 * MiB + 128 * KiB, vsize - (3 * MiB + 128 * KiB), &err_));
  CHECK(target_finish(t, &err_));
  target_get_info(t, &info);
  cr_expect_eq(info.bytes_written, 128 * KiB);
  cr_expect_eq(info.zero_bytes_zeroed, vsize - 128 * KiB);
  cr_expect_eq(info.zero_bytes_skipped, 0);
  target_free(t);

  struct stat st = stat_path(path);
  cr_expect_eq((uint64_t)st.st_size, vsize, "the old tail must be cut off");
  cr_expect_leq((uint64_t)st.st_blocks * 512, MiB, "holes punched: %lld bytes allocated",
                (long long)st.st_blocks * 512);
  unsigned char *got = read_all(path, vsize);
  cr_expect_eq(memcmp(got, want, vsize), 0, "old 0xAA bytes must not show through");
  free(got);
  free(want);
  free(zeros);
}

Test(target, preallocation)
{
  char path[128];
  tmp_path(path, sizeof path, "prealloc.img");
  struct target *t = open_file_target(path, 16 * MiB, true);
  CHECK(target_check_fits(t, 8 * MiB, &err_));
  unsigned char block[4096];
  fill_pattern(block, sizeof block, 7);
  CHECK(vsink_data(target_sink(t), 4 * MiB, block, sizeof block, &err_));
  CHECK(vsink_zero(target_sink(t), 0, 4 * MiB, &err_));
  CHECK(target_finish(t, &err_));
  struct target_info info;
  target_get_info(t, &info);
  cr_expect(info.preallocation_applied);
  /* grown to usable(16 MiB) = 15 MiB at overhead 0.055 (CDI's resize) */
  cr_expect_eq(info.size, 15 * MiB, "a file grows to min(usable, requested)");
  target_free(t);
  struct stat st = stat_path(path);
  cr_expect_eq((uint64_t)st.st_size, 15 * MiB);
  cr_expect_eq(st.st_mode & 07777, 0660, "mode %o", st.st_mode & 07777);
  cr_expect_geq((uint64_t)st.st_blocks * 512, 15 * MiB, "only %lld bytes allocated",
                (long long)st.st_blocks * 512);
  unsigned char *got = read_all(path, 15 * MiB);
  cr_expect_eq(memcmp(got + 4 * MiB, block, sizeof block), 0);
  cr_expect(mem_is_zero(got, 4 * MiB));
  free(got);
}

Test(target, existing_preallocated_file_zeroed_in_place)
{
  char path[128];
  tmp_path(path, sizeof path, "prealloc-old.img");
  write_file(path, 4 * MiB, 0x55);
  struct target *t = open_file_target(path, 0, true);
  CHECK(target_check_fits(t, 4 * MiB, &err_));
  CHECK(vsink_zero(target_sink(t), 0, 4 * MiB, &err_));
  CHECK(target_finish(t, &err_));
  target_free(t);
  struct stat st = stat_path(path);
  cr_expect_geq((uint64_t)st.st_blocks * 512, 4 * MiB, "zeroing must keep the allocation");
  unsigned char *got = read_all(path, 4 * MiB);
  cr_expect(mem_is_zero(got, 4 * MiB));
  free(got);
}

Test(target, too_small_is_refused_before_any_write)
{
  char path[128];
  tmp_path(path, sizeof path, "small.img");
  struct target *t = open_file_target(path, 2 * MiB, false);
  struct verr err = {0};
  cr_assert_eq(target_check_fits(t, 10 * MiB, &err), -1);
  cr_expect_eq(err.code, VERR_TARGET_TOO_SMALL);
  /* CDI's sentence (pkg/image/qemu.go checkIfURLIsValid), first: no overhead applied */
  cr_expect_eq(strncmp(err.message, "virtual image size 10485760 is larger than the reported "
                       "available storage 2097152. A larger PVC is required.", 99), 0,
               "%s", err.message);
  cr_expect_not_null(strstr(err.message, "at least 10485760 bytes"), "%s", err.message);
  target_free(t);
  cr_expect_eq(stat_path(path).st_size, 0, "nothing may be written before the refusal");
}

Test(target, extent_past_virtual_size_is_an_error)
{
  char path[128];
  tmp_path(path, sizeof path, "bounds.img");
  struct target *t = open_file_target(path, 0, false);
  CHECK(target_check_fits(t, MiB, &err_));
  unsigned char b[512] = {1};
  struct verr err = {0};
  cr_expect_eq(vsink_data(target_sink(t), MiB - 256, b, sizeof b, &err), -1);
  cr_expect_eq(err.code, VERR_INTERNAL);
  cr_expect_eq(vsink_zero(target_sink(t), UINT64_MAX - 10, 100, &err), -1);
  cr_expect_eq(vsink_data(target_sink(t), MiB - 512, b, sizeof b, &err), 0, "%s", err.message);
  target_free(t);
}

Test(target, refuses_a_directory)
{
  struct target_opts opts = {.path = tmpdir};
  struct target *t = NULL;
  struct verr err = {0};
  cr_expect_eq(target_open(&opts, &t, &err), -1);
  cr_expect_null(t);
  cr_expect(err.code == VERR_USAGE || err.code == VERR_IO, "%s", err.message);
}

/* ---- block device (loop device, root only) ---------------------------------------- */

static char loop_dev[64];
static int loop_holder = -1;

static void loop_detach(void)
{
  if (loop_holder >= 0)
    close(loop_holder); /* autoclear detaches when the last opener goes */
  loop_holder = -1;
  if (loop_dev[0] != '\0') {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "losetup -d %s 2>/dev/null", loop_dev);
    if (system(cmd) != 0) {
      /* already gone through autoclear */
    }
  }
  loop_dev[0] = '\0';
  remove_tmpdir();
}

/* Attach `backing` to a free loop device; the holder fd with LO_FLAGS_AUTOCLEAR makes
 * sure it is detached even if the test dies. Returns false when loop devices are not
 * available (not root, no loop driver). */
static bool loop_attach(const char *backing)
{
  if (geteuid() != 0 || access("/dev/loop-control", W_OK) != 0)
    return false;
  char cmd[256];
  snprintf(cmd, sizeof cmd, "losetup -f --show '%s' 2>/dev/null", backing);
  FILE *p = popen(cmd, "r");
  if (p == NULL)
    return false;
  bool ok = fgets(loop_dev, sizeof loop_dev, p) != NULL;
  if (pclose(p) != 0 || !ok) {
    loop_dev[0] = '\0';
    return false;
  }
  loop_dev[strcspn(loop_dev, "\n")] = '\0';
  loop_holder = open(loop_dev, O_RDONLY | O_CLOEXEC);
  cr_assert(loop_holder >= 0, "open %s: %s", loop_dev, strerror(errno));
  struct loop_info64 info;
  if (ioctl(loop_holder, LOOP_GET_STATUS64, &info) == 0) {
    info.lo_flags |= LO_FLAGS_AUTOCLEAR;
    (void)ioctl(loop_holder, LOOP_SET_STATUS64, &info);
  }
  return true;
}

Test(target, block_device_loop, .fini = loop_detach)
{
  char backing[128];
  tmp_path(backing, sizeof backing, "backing.raw");
  uint64_t dev_size = 64 * MiB, vsize = 40 * MiB;
  write_file(backing, dev_size, 0xAA); /* old content that must not show through */
  if (!loop_attach(backing))
    cr_skip_test("loop devices need root and /dev/loop-control");

  struct target_opts opts = {.path = loop_dev, .requested_size = 1 * MiB, .fs_overhead = 0.5};
  struct target *t = NULL;
  CHECK(target_open(&opts, &t, &err_));
  struct target_info info;
  target_get_info(t, &info);
  cr_expect_eq(info.kind, TARGET_KIND_BLOCK);
  cr_expect_eq(info.capacity, dev_size, "a block device's capacity is its size, no overhead");

  struct verr err = {0};
  cr_expect_eq(target_check_fits(t, dev_size + 512, &err), -1);
  cr_expect_eq(err.code, VERR_TARGET_TOO_SMALL);
  cr_expect_not_null(strstr(err.message, "A larger PVC is required"), "%s", err.message);
  cr_expect_not_null(strstr(err.message, loop_dev), "%s", err.message);
  CHECK(target_check_fits(t, vsize, &err_));

  unsigned char *want = calloc(1, vsize);
  unsigned char *zeros = calloc(1, MiB);
  struct vsink *s = target_sink(t);
  fill_pattern(want + 30 * MiB, MiB, 1);
  CHECK(vsink_data(s, 30 * MiB, want + 30 * MiB, MiB, &err_)); /* out of order first */
  CHECK(vsink_zero(s, 0, 10 * MiB, &err_));
  fill_pattern(want + 10 * MiB + 100, 5000, 2);
  CHECK(vsink_zero(s, 10 * MiB, 100, &err_)); /* unaligned: zeros written, not BLKZEROOUT */
  CHECK(vsink_data(s, 10 * MiB + 100, want + 10 * MiB + 100, 5000, &err_));
  CHECK(vsink_zero(s, 10 * MiB + 5100, 15 * MiB - 5100, &err_));
  CHECK(vsink_data(s, 25 * MiB, zeros, MiB, &err_)); /* all-zero data: zeroed */
  CHECK(vsink_zero(s, 26 * MiB, 4 * MiB, &err_));
  CHECK(vsink_zero(s, 31 * MiB, vsize - 31 * MiB, &err_));
  CHECK(target_finish(t, &err_));
  target_get_info(t, &info);
  cr_expect_eq(info.bytes_written, MiB + 5000);
  cr_expect_eq(info.zero_bytes_zeroed, vsize - MiB - 5000);
  cr_expect_eq(info.zero_bytes_skipped, 0, "nothing is assumed about a device's old bytes");
  cr_expect_not(info.preallocation_applied);
  target_free(t);

  unsigned char *got = read_all(loop_dev, dev_size);
  cr_expect_eq(memcmp(got, want, vsize), 0, "device content differs from what was written");
  for (uint64_t i = vsize; i < dev_size; i++)
    cr_assert_eq(got[i], 0xAA, "byte %llu past the image was touched", (unsigned long long)i);

  /* Reading the device back hashes to the blkhash of the same bytes. */
  unsigned char md[BLKHASH_MAX_MD_SIZE], rmd[BLKHASH_MAX_MD_SIZE];
  unsigned md_len = 0, rmd_len = 0;
  struct blkhash *h = NULL;
  cr_assert_eq(blkhash_new(NULL, &h), 0);
  cr_assert_eq(blkhash_update(h, want, vsize), 0);
  cr_assert_eq(blkhash_final(h, md, &md_len), 0);
  blkhash_free(h);
  struct verify_result res;
  CHECK(verify_readback(loop_dev, vsize, NULL, rmd, &rmd_len, &res, &err_));
  cr_expect_eq(rmd_len, md_len);
  cr_expect_eq(memcmp(md, rmd, md_len), 0);
  cr_expect(res.direct_io, "a block device takes O_DIRECT");
  cr_expect_eq(res.bytes_read, vsize, "a device has no holes to skip");
  free(got);
  free(want);
  free(zeros);
}

/* Bytes of `path` in the page cache (mincore over a read-only mapping). */
static uint64_t resident_bytes(const char *path, uint64_t len)
{
  int fd = open(path, O_RDONLY);
  cr_assert(fd >= 0);
  void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
  cr_assert(map != MAP_FAILED);
  size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = (len + page - 1) / page;
  unsigned char *vec = malloc(pages);
  cr_assert_eq(mincore(map, len, vec), 0);
  uint64_t n = 0;
  for (size_t i = 0; i < pages; i++)
    n += vec[i] & 1;
  free(vec);
  munmap(map, len);
  close(fd);
  return n * page;
}

/* Unaligned extents go through the page cache, and do not pile up there. */
Test(target, page_cache_is_written_back_on_the_way)
{
  char path[128];
  tmp_path(path, sizeof path, "flush.img");
  struct target_opts opts = {.path = path, .flush_interval = MiB};
  struct target *t = NULL;
  CHECK(target_open(&opts, &t, &err_));
  CHECK(target_check_fits(t, 8 * MiB, &err_));
  unsigned char *want = malloc(8 * MiB);
  fill_pattern(want, 8 * MiB, 42);
  CHECK(vsink_data(target_sink(t), 0, want, 512, &err_));
  for (uint64_t off = 512; off < 8 * MiB; off += 256 * KiB) {
    uint64_t len = 8 * MiB - off < 256 * KiB ? 8 * MiB - off : 256 * KiB;
    CHECK(vsink_data(target_sink(t), off, want + off, len, &err_));
  }
  /* Before finish: written pages were written back and dropped from the page cache. */
  uint64_t resident = resident_bytes(path, 8 * MiB);
  cr_expect_leq(resident, 2 * MiB, "%llu bytes still cached", (unsigned long long)resident);
  struct target_info info;
  target_get_info(t, &info);
  cr_expect_eq(info.bytes_direct, 0, "unaligned extents cannot go with O_DIRECT");
  CHECK(target_finish(t, &err_));
  target_free(t);
  unsigned char *got = read_all(path, 8 * MiB);
  cr_expect_eq(memcmp(got, want, 8 * MiB), 0);
  free(got);
  free(want);
}

/* Aligned extents go with O_DIRECT on the writer's thread: never in the page cache, and
 * still in order with everything else. Contiguous extents fill several of its buffers;
 * a zero extent over aligned data it still holds, data written again into the zeroed
 * range and an unaligned extent must all land as if written one after the other. */
Test(target, aligned_data_goes_around_the_page_cache)
{
  char path[128];
  tmp_path(path, sizeof path, "direct.img");
  uint64_t vsize = 24 * MiB;
  unsigned char *want = calloc(1, vsize);
  struct target *t = open_file_target(path, 0, false);
  CHECK(target_check_fits(t, vsize, &err_));
  struct vsink *s = target_sink(t);
  uint64_t aligned = 0;
  fill_pattern(want, 12 * MiB, 7);
  for (uint64_t off = 0; off < 12 * MiB; off += 64 * KiB, aligned += 64 * KiB)
    CHECK(vsink_data(s, off, want + off, 64 * KiB, &err_));
  /* The writer still holds the end of that run in the buffer it fills. */
  memset(want + 11 * MiB, 0, 2 * MiB);
  CHECK(vsink_zero(s, 11 * MiB, 2 * MiB, &err_));
  fill_pattern(want + 20 * MiB, MiB, 8); /* not contiguous with the run before */
  CHECK(vsink_data(s, 20 * MiB, want + 20 * MiB, MiB, &err_));
  aligned += MiB;
  fill_pattern(want + 11 * MiB + 64 * KiB, 128 * KiB, 10);
  CHECK(vsink_data(s, 11 * MiB + 64 * KiB, want + 11 * MiB + 64 * KiB, 128 * KiB, &err_));
  aligned += 128 * KiB;
  fill_pattern(want + 21 * MiB, 3000, 9); /* unaligned end: through the page cache */
  CHECK(vsink_data(s, 21 * MiB, want + 21 * MiB, 3000, &err_));
  uint64_t resident = resident_bytes(path, vsize);
  cr_expect_leq(resident, 8 * KiB, "%llu bytes cached", (unsigned long long)resident);
  struct target_info info;
  target_get_info(t, &info);
  cr_expect_eq(info.bytes_direct, aligned, "%llu of %llu aligned bytes went with O_DIRECT",
               (unsigned long long)info.bytes_direct, (unsigned long long)aligned);
  CHECK(target_finish(t, &err_));
  target_free(t);
  unsigned char *got = read_all(path, vsize);
  cr_expect_eq(memcmp(got, want, vsize), 0);
  free(got);
  free(want);
}
