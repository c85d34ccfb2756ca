/* Unit tests for pkg/decompress: round trips against the real gzip, xz and zstd tools.
 *
 * Each test writes plain data to a temp file, compresses it with the CLI, opens the
 * result as a vreader over a real file descriptor (with a chosen maximum read size, so
 * stream boundaries land across refills), decompresses with pkg/decompress and compares.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/stream.h"
#include "decompress/decompress.h"

/* ---- a vreader over a real file, with short reads of at most `max_read` bytes ---- */

struct file_reader {
  int fd;
  size_t max_read;
};

static ssize_t file_reader_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct file_reader *f = r->state;
  if (len > f->max_read)
    len = f->max_read;
  ssize_t n = read(f->fd, buf, len);
  if (n < 0)
    return verr_sys(err, VERR_IO, errno, "reading the test input");
  return n;
}

static void file_reader_close(struct vreader *r)
{
  struct file_reader *f = r->state;
  close(f->fd);
  free(f);
  free(r);
}

static const struct vreader_ops file_reader_ops = {
  .name = "test-file", .read = file_reader_read, .close = file_reader_close,
};

static struct vreader *file_reader_open(const char *path, size_t max_read)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
  struct file_reader *f = malloc(sizeof *f);
  struct vreader *r = malloc(sizeof *r);
  cr_assert(f && r);
  f->fd = fd;
  f->max_read = max_read;
  r->ops = &file_reader_ops;
  r->state = f;
  return r;
}

/* ---- temp files and the CLI tools ---- */

static char tmpdir[64];

static void make_tmpdir(void)
{
  snprintf(tmpdir, sizeof tmpdir, "/tmp/vimport-decomp-XXXXXX");
  cr_assert(mkdtemp(tmpdir) != NULL);
}

static void remove_tmpdir(void)
{
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  cr_assert(system(cmd) == 0);
}

TestSuite(decompress, .init = make_tmpdir, .fini = remove_tmpdir, .timeout = 120);

static void tmp_path(char *out, size_t size, const char *name)
{
  snprintf(out, size, "%s/%s", tmpdir, name);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
  char cmd[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int status = system(cmd);
  cr_assert(status == 0, "command failed (%d): %s", status, cmd);
}

static void write_file(const char *path, const void *data, size_t len)
{
  FILE *f = fopen(path, "wb");
  cr_assert(f != NULL);
  cr_assert(len == 0 || fwrite(data, 1, len, f) == len);
  cr_assert(fclose(f) == 0);
}

static void append_file(const char *path, const void *data, size_t len)
{
  FILE *f = fopen(path, "ab");
  cr_assert(f != NULL);
  cr_assert(fwrite(data, 1, len, f) == len);
  cr_assert(fclose(f) == 0);
}

static off_t file_size(const char *path)
{
  struct stat st;
  cr_assert(stat(path, &st) == 0);
  return st.st_size;
}

enum pattern { PAT_RANDOM, PAT_ZERO, PAT_MIXED };

/* Deterministic data: random bytes, zeros, or 64 KiB runs of each alternating. */
static unsigned char *make_data(enum pattern pat, size_t len, uint64_t seed)
{
  unsigned char *p = malloc(len ? len : 1);
  cr_assert(p);
  uint64_t x = seed * 0x9e3779b97f4a7c15u + 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    bool zero = pat == PAT_ZERO || (pat == PAT_MIXED && (i / 65536) % 2 == 1);
    p[i] = zero ? 0 : (unsigned char)x;
  }
  return p;
}

/* Single-block xz, unless a test asks for what `xz -T` writes (each test is a process). */
static const char *xz_cmd = "xz -c -T1";

static const char *tool_cmd(enum decompress_kind kind)
{
  switch (kind) {
  case DECOMPRESS_GZIP: return "gzip -c";
  case DECOMPRESS_XZ: return xz_cmd;
  case DECOMPRESS_ZSTD: return "zstd -q -c";
  }
  return "false";
}

/* Compress `plain` with the CLI for `kind` into `out` (truncating it). */
static void compress_file(enum decompress_kind kind, const char *plain, const char *out)
{
  sh("%s < '%s' > '%s'", tool_cmd(kind), plain, out);
}

/* Decompress `path` fully; returns 0 and the output, or -1 with err. */
static int decompress_all(const char *path, enum decompress_kind kind,
                          const struct decompress_opts *opts, size_t lower_read,
                          size_t read_size, unsigned char **out, size_t *out_len,
                          struct verr *err)
{
  struct vreader *r = NULL;
  int rc = decompress_reader_new_opts(file_reader_open(path, lower_read), kind, opts, &r, err);
  cr_assert(rc == 0, "reader_new: %s", err->message);
  size_t cap = 1 << 20, len = 0;
  unsigned char *buf = malloc(cap);
  cr_assert(buf);
  for (;;) {
    if (cap - len < read_size) {
      cap = cap * 2 + read_size;
      buf = realloc(buf, cap);
      cr_assert(buf);
    }
    ssize_t n = r->ops->read(r, buf + len, read_size, err);
    if (n < 0) {
      /* errors are sticky: a second read repeats the failure */
      struct verr again;
      cr_assert(r->ops->read(r, buf, read_size, &again) == -1);
      cr_assert_str_eq(again.message, err->message);
      free(buf);
      vreader_close(r);
      return -1;
    }
    if (n == 0)
      break;
    cr_assert((size_t)n <= read_size);
    len += (size_t)n;
  }
  cr_assert(decompress_reader_output_bytes(r) == len);
  cr_assert(r->ops->read(r, buf, read_size, err) == 0, "read after the end must be 0");
  vreader_close(r);
  *out = buf;
  *out_len = len;
  return 0;
}

static void expect_roundtrip(enum decompress_kind kind, enum pattern pat, size_t size,
                             size_t lower_read, size_t read_size)
{
  char plain[128], comp[128];
  tmp_path(plain, sizeof plain, "plain");
  tmp_path(comp, sizeof comp, "comp");
  CLEANUP_FREE unsigned char *data = make_data(pat, size, size + pat);
  write_file(plain, data, size);
  compress_file(kind, plain, comp);

  struct verr err = { 0 };
  CLEANUP_FREE unsigned char *out = NULL;
  size_t out_len = 0;
  int rc = decompress_all(comp, kind, NULL, lower_read, read_size, &out, &out_len, &err);
  cr_assert(rc == 0, "%s pattern %d size %zu read %zu: %s", decompress_kind_name(kind), pat,
            size, read_size, err.message);
  cr_assert(out_len == size, "%s: got %zu bytes, want %zu", decompress_kind_name(kind),
            out_len, size);
  cr_assert(size == 0 || memcmp(out, data, size) == 0, "%s: content differs",
            decompress_kind_name(kind));
}

static const enum decompress_kind kinds[] = { DECOMPRESS_GZIP, DECOMPRESS_XZ, DECOMPRESS_ZSTD };
#define FOR_EACH_KIND(k) for (size_t k##_i = 0; k##_i < 3 && ((k) = kinds[k##_i], 1); k##_i++)

Test(decompress, roundtrip_sizes_and_patterns)
{
  static const size_t sizes[] = { 0, 1, 4095, 65536 + 7, 3 * 1024 * 1024 + 5 };
  enum decompress_kind kind;
  FOR_EACH_KIND(kind) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      for (int pat = PAT_RANDOM; pat <= PAT_MIXED; pat++)
        expect_roundtrip(kind, (enum pattern)pat, sizes[s], 1 << 20, 1 << 16);
  }
}

Test(decompress, roundtrip_read_sizes)
{
  static const size_t read_sizes[] = { 1, 2, 7, 4096, 65537, 4u << 20 };
  enum decompress_kind kind;
  FOR_EACH_KIND(kind) {
    for (size_t i = 0; i < sizeof read_sizes / sizeof read_sizes[0]; i++) {
      size_t size = read_sizes[i] < 8 ? 200000 : 2 * 1024 * 1024 + 3;
      expect_roundtrip(kind, PAT_MIXED, size, 1 << 20, read_sizes[i]);
    }
  }
}

Test(decompress, roundtrip_short_lower_reads)
{
  /* The lower reader returns 1 or 3 bytes at a time: magics and headers straddle
   * every possible refill boundary. */
  enum decompress_kind kind;
  FOR_EACH_KIND(kind) {
    expect_roundtrip(kind, PAT_RANDOM, 70000, 1, 4096);
    expect_roundtrip(kind, PAT_MIXED, 200000, 3, 1000);
  }
}

/* Two (or more) compressed streams of different data, concatenated, must decompress to
 * the concatenation -- the same bytes as the CLI's own decompression. */
static void expect_concatenated(enum decompress_kind kind, size_t lower_read,
                                const struct decompress_opts *opts)
{
  char p1[128], p2[128], p3[128], c1[128], c2[128], c3[128], cat[128], want[128];
  tmp_path(p1, sizeof p1, "p1");
  tmp_path(p2, sizeof p2, "p2");
  tmp_path(p3, sizeof p3, "p3");
  tmp_path(c1, sizeof c1, "c1");
  tmp_path(c2, sizeof c2, "c2");
  tmp_path(c3, sizeof c3, "c3");
  tmp_path(cat, sizeof cat, "cat");
  tmp_path(want, sizeof want, "want");
  CLEANUP_FREE unsigned char *d1 = make_data(PAT_RANDOM, 100000, 1);
  CLEANUP_FREE unsigned char *d2 = make_data(PAT_MIXED, 300000, 2);
  write_file(p1, d1, 100000);
  write_file(p2, d2, 300000);
  write_file(p3, "", 0); /* an empty member/stream/frame in the middle */
  compress_file(kind, p1, c1);
  compress_file(kind, p2, c2);
  compress_file(kind, p3, c3);
  sh("cat '%s' '%s' '%s' > '%s'", c1, c3, c2, cat);
  sh("cat '%s' '%s' > '%s'", p1, p2, want);

  struct verr err = { 0 };
  CLEANUP_FREE unsigned char *out = NULL;
  size_t out_len = 0;
  cr_assert(decompress_all(cat, kind, opts, lower_read, 8192, &out, &out_len, &err) == 0,
            "%s concatenated: %s", decompress_kind_name(kind), err.message);
  cr_assert(out_len == 400000);
  cr_assert(memcmp(out, d1, 100000) == 0);
  cr_assert(memcmp(out + 100000, d2, 300000) == 0);
}

Test(decompress, multi_member_gzip_and_concatenated_xz_zstd)
{
  enum decompress_kind kind;
  FOR_EACH_KIND(kind) {
    expect_concatenated(kind, 1 << 20, NULL);
    expect_concatenated(kind, 5, NULL);
  }
  /* skip_gzip_crc reads each trailer past itself, part of it maybe already in ISA-L's
   * bit buffer: every split of the input must still find the next member */
  struct decompress_opts skip = { .skip_gzip_crc = true };
  static const size_t splits[] = { 1, 3, 7, 8, 13 };
  for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++)
    expect_concatenated(DECOMPRESS_GZIP, splits[i], &skip);
  expect_concatenated(DECOMPRESS_GZIP, 1 << 20, &skip);
}

Test(decompress, xz_stream_padding)
{
  char plain[128], comp[128];
  tmp_path(plain, sizeof plain, "plain");
  tmp_path(comp, sizeof comp, "comp");
  CLEANUP_FREE unsigned char *data = make_data(PAT_RANDOM, 5000, 9);
  write_file(plain, data, 5000);
  compress_file(DECOMPRESS_XZ, plain, comp);
  static const unsigned char zeros[8] = { 0 };
  append_file(comp, zeros, 8); /* valid padding: a multiple of four */
  sh("xz -dc '%s' > /dev/null", comp);

  struct verr err = { 0 };
  CLEANUP_FREE unsigned char *out = NULL;
  size_t out_len = 0;
  cr_assert(decompress_all(comp, DECOMPRESS_XZ, NULL, 1 << 20, 4096, &out, &out_len, &err) == 0,
            "%s", err.message);
  cr_assert(out_len == 5000 && memcmp(out, data, 5000) == 0);

  append_file(comp, zeros, 1); /* 9 bytes: invalid, and `xz -d` refuses it too */
  sh("! xz -dc '%s' > /dev/null 2>&1", comp);
  cr_assert(decompress_all(comp, DECOMPRESS_XZ, NULL, 1 << 20, 4096, &out, &out_len, &err) < 0);
  cr_assert(err.code == VERR_FORMAT);
  cr_assert(strstr(err.message, "padding") != NULL, "%s", err.message);
}

Test(decompress, zstd_skippable_frame)
{
  char plain[128], comp[128];
  tmp_path(plain, sizeof plain, "plain");
  tmp_path(comp, sizeof comp, "comp");
  CLEANUP_FREE unsigned char *data = make_data(PAT_RANDOM, 5000, 3);
  write_file(plain, data, 5000);
  /* skippable frame: magic 0x184D2A53, LE32 length 5, then 5 bytes to skip */
  static const unsigned char skip[] = { 0x53, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o' };
  write_file(comp, skip, sizeof skip);
  sh("zstd -q -c < '%s' >> '%s'", plain, comp);
  append_file(comp, skip, sizeof skip);
  sh("zstd -dc < '%s' | cmp - '%s'", comp, plain);

  struct verr err = { 0 };
  CLEANUP_FREE unsigned char *out = NULL;
  size_t out_len = 0;
  cr_assert(decompress_all(comp, DECOMPRESS_ZSTD, NULL, 3, 4096, &out, &out_len, &err) == 0,
            "%s", err.message);
  cr_assert(out_len == 5000 && memcmp(out, data, 5000) == 0);
}

/* Compress 300 KB, then expect decompression of a damaged copy to fail with `code`
 * and a message containing `needle`. `damage` edits the compressed file. */
static void expect_failure(enum decompress_kind kind, void (*damage)(const char *path, off_t size),
                           enum verr_code code, const char *needle)
{
  char plain[128], comp[128];
  tmp_path(plain, sizeof plain, "plain");
  tmp_path(comp, sizeof comp, "comp");
  CLEANUP_FREE unsigned char *data = make_data(PAT_RANDOM, 300000, 4);
  write_file(plain, data, 300000);
  compress_file(kind, plain, comp);
  damage(comp, file_size(comp));

  struct verr err = { 0 };
  unsigned char *out = NULL;
  size_t out_len = 0;
  int rc = decompress_all(comp, kind, NULL, 1 << 20, 65536, &out, &out_len, &err);
  cr_assert(rc == -1, "%s: damaged input decompressed without error", decompress_kind_name(kind));
  cr_assert(err.code == code, "%s: code %s, want %s: %s", decompress_kind_name(kind),
            verr_code_name(err.code), verr_code_name(code), err.message);
  cr_assert(strstr(err.message, needle) != NULL, "%s: '%s' lacks '%s'",
            decompress_kind_name(kind), err.message, needle);
  cr_assert(strstr(err.message, decompress_kind_name(kind)) != NULL,
            "message must name the format: %s", err.message);
}

static off_t cut_at;

static void truncate_to(const char *path, off_t size)
{
  (void)size;
  cr_assert(truncate(path, cut_at) == 0);
}

static void truncate_minus_one(const char *path, off_t size)
{
  cr_assert(truncate(path, size - 1) == 0);
}

static void truncate_half(const char *path, off_t size)
{
  cr_assert(truncate(path, size / 2) == 0);
}

Test(decompress, truncated_inputs)
{
  enum decompress_kind kind;
  FOR_EACH_KIND(kind) {
    expect_failure(kind, truncate_minus_one, VERR_SOURCE, "truncated");
    expect_failure(kind, truncate_half, VERR_SOURCE, "truncated");
    static const off_t cuts[] = { 0, 1, 3, 10 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
      cut_at = cuts[i];
      expect_failure(kind, truncate_to, VERR_SOURCE, "truncated");
    }
  }
}

static void append_garbage(const char *path, off_t size)
{
  (void)size;
  append_file(path, "garbage!", 8);
}

static void append_one_byte(const char *path, off_t size)
{
  (void)size;
  append_file(path, "\x1f", 1); /* the first byte of a gzip magic, and nothing else */
}

Test(decompress, trailing_garbage)
{
  enum decompress_kind kind;
  FOR_EACH_KIND(kind) {
    expect_failure(kind, append_garbage, VERR_FORMAT, "trailing garbage");
    expect_failure(kind, append_one_byte, VERR_FORMAT, "trailing garbage");
  }
}

static void flip_byte(const char *path, off_t at)
{
  int fd = open(path, O_RDWR);
  cr_assert(fd >= 0);
  unsigned char b;
  cr_assert(pread(fd, &b, 1, at) == 1);
  b ^= 0x55;
  cr_assert(pwrite(fd, &b, 1, at) == 1);
  close(fd);
}

static void corrupt_magic(const char *path, off_t size)
{
  (void)size;
  flip_byte(path, 1);
}

static void corrupt_middle(const char *path, off_t size)
{
  for (off_t at = size / 3; at < size / 3 + 16; at++)
    flip_byte(path, at);
}

static void corrupt_checksum(const char *path, off_t size)
{
  /* gzip: CRC32 is bytes -8..-5; xz: the index/footer CRCs; zstd: the content checksum
   * is the last 4 bytes. Each decoder must notice. */
  flip_byte(path, size - 6);
}

Test(decompress, corrupted_inputs)
{
  enum decompress_kind kind;
  FOR_EACH_KIND(kind) {
    expect_failure(kind, corrupt_magic, VERR_FORMAT, "corrupt");
    expect_failure(kind, corrupt_middle, VERR_FORMAT, "corrupt");
    expect_failure(kind, corrupt_checksum, VERR_FORMAT, "corrupt");
  }
}

/* Multi-block xz goes through liblzma's threaded decoder: same bytes, same refusals. */
static void set_reserved_gzip_flag(const char *path, off_t size)
{
  (void)size;
  int fd = open(path, O_RDWR);
  cr_assert(fd >= 0);
  unsigned char flg;
  cr_assert(pread(fd, &flg, 1, 3) == 1);
  flg |= 0x20;
  cr_assert(pwrite(fd, &flg, 1, 3) == 1);
  close(fd);
}

/* RFC 1952's reserved FLG bits: zlib and `gzip -d` refuse them; ISA-L would not look. */
Test(decompress, gzip_reserved_header_flags)
{
  expect_failure(DECOMPRESS_GZIP, set_reserved_gzip_flag, VERR_FORMAT, "reserved flags");
}

Test(decompress, xz_multi_block_threaded)
{
  xz_cmd = "xz -c -T2 --block-size=65536";
  char plain[128], comp[128];
  tmp_path(plain, sizeof plain, "blocks");
  tmp_path(comp, sizeof comp, "blocks.xz");
  write_file(plain, "", 0);
  sh("head -c 300000 /dev/urandom > '%s' && %s < '%s' > '%s'", plain, xz_cmd, plain, comp);
  sh("test \"$(xz --robot -l '%s' | awk '$1 == \"totals\" { print $3 }')\" -gt 1", comp);
  expect_roundtrip(DECOMPRESS_XZ, PAT_MIXED, 3 * 1024 * 1024 + 5, 1 << 20, 1 << 16);
  expect_roundtrip(DECOMPRESS_XZ, PAT_RANDOM, 1024 * 1024, 3, 4096);
  expect_failure(DECOMPRESS_XZ, truncate_half, VERR_SOURCE, "truncated");
  expect_failure(DECOMPRESS_XZ, truncate_minus_one, VERR_SOURCE, "truncated");
  expect_failure(DECOMPRESS_XZ, append_garbage, VERR_FORMAT, "trailing garbage");
  expect_failure(DECOMPRESS_XZ, corrupt_middle, VERR_FORMAT, "corrupt");
  expect_failure(DECOMPRESS_XZ, corrupt_checksum, VERR_FORMAT, "corrupt");
}

Test(decompress, bomb_bound)
{
  char plain[128], comp[128];
  tmp_path(plain, sizeof plain, "plain");
  tmp_path(comp, sizeof comp, "comp");
  const size_t size = 8u << 20;
  CLEANUP_FREE unsigned char *data = make_data(PAT_ZERO, size, 0);
  write_file(plain, data, size);
  enum decompress_kind kind;
  FOR_EACH_KIND(kind) {
    compress_file(kind, plain, comp);
    cr_assert(file_size(comp) < 1 << 20, "8 MiB of zeros must compress well");

    struct decompress_opts exact = { .max_output = size };
    struct verr err = { 0 };
    unsigned char *out = NULL;
    size_t out_len = 0;
    cr_assert(decompress_all(comp, kind, &exact, 1 << 20, 1 << 20, &out, &out_len, &err) == 0,
              "a bound equal to the size must pass: %s", err.message);
    cr_assert(out_len == size);
    free(out);

    struct decompress_opts tight = { .max_output = size - 1,
                                     .max_output_name = "the virtual size" };
    cr_assert(decompress_all(comp, kind, &tight, 1 << 20, 1 << 20, &out, &out_len, &err) == -1);
    cr_assert(err.code == VERR_FORMAT);
    cr_assert(strstr(err.message, "decompression bomb") != NULL, "%s", err.message);
    cr_assert(strstr(err.message, "the virtual size (8388607 bytes)") != NULL, "%s",
              err.message);

    /* the three-argument constructor, and the default bound name */
    struct vreader *r = NULL;
    cr_assert(decompress_reader_new(file_reader_open(comp, 1 << 20), kind, 1000, &r, &err) == 0);
    CLEANUP_FREE unsigned char *buf = malloc(4096);
    ssize_t n;
    size_t total = 0;
    while ((n = r->ops->read(r, buf, 4096, &err)) > 0)
      total += (size_t)n;
    cr_assert(n == -1 && total <= 1000);
    cr_assert(strstr(err.message, "the configured maximum output (1000 bytes)") != NULL, "%s",
              err.message);
    vreader_close(r);
  }
}

Test(decompress, memlimit)
{
  char plain[128], comp[128];
  tmp_path(plain, sizeof plain, "plain");
  tmp_path(comp, sizeof comp, "comp");
  CLEANUP_FREE unsigned char *data = make_data(PAT_RANDOM, 100000, 5);
  write_file(plain, data, 100000);
  struct decompress_opts small = { .memlimit = 1u << 20 };
  struct verr err = { 0 };
  unsigned char *out = NULL;
  size_t out_len = 0;

  /* xz -9 wants a 64 MiB dictionary (65 MiB to decode) whatever the input size */
  sh("xz -9 -c -T1 < '%s' > '%s'", plain, comp);
  cr_assert(decompress_all(comp, DECOMPRESS_XZ, &small, 1 << 20, 65536, &out, &out_len, &err) == -1);
  cr_assert(err.code == VERR_FORMAT);
  cr_assert(strstr(err.message, "memory limit") != NULL, "%s", err.message);
  cr_assert(decompress_all(comp, DECOMPRESS_XZ, NULL, 1 << 20, 65536, &out, &out_len, &err) == 0,
            "the default limit must accept xz -9: %s", err.message);
  free(out);

  /* zstd from a pipe cannot shrink its window to the input: --long=24 keeps 16 MiB */
  sh("cat '%s' | zstd -q -c --long=24 > '%s'", plain, comp);
  cr_assert(decompress_all(comp, DECOMPRESS_ZSTD, &small, 1 << 20, 65536, &out, &out_len, &err) == -1);
  cr_assert(err.code == VERR_FORMAT);
  cr_assert(strstr(err.message, "memory limit") != NULL, "%s", err.message);
  cr_assert(decompress_all(comp, DECOMPRESS_ZSTD, NULL, 1 << 20, 65536, &out, &out_len, &err) == 0,
            "%s", err.message);
  free(out);
}

Test(decompress, lower_reader_error_propagates)
{
  /* reading a directory fails with EISDIR: a real I/O error from below */
  struct verr err = { 0 };
  struct vreader *r = NULL;
  cr_assert(decompress_reader_new(file_reader_open(tmpdir, 4096), DECOMPRESS_GZIP, 0, &r, &err) == 0);
  unsigned char buf[16];
  cr_assert(r->ops->read(r, buf, sizeof buf, &err) == -1);
  cr_assert(err.code == VERR_IO && err.sys_errno == EISDIR, "%s", err.message);
  vreader_close(r);
}

Test(decompress, unknown_kind_closes_lower)
{
  struct verr err = { 0 };
  struct vreader *r = NULL;
  /* under ASan a leak here means the lower reader was not closed */
  cr_assert(decompress_reader_new(file_reader_open(tmpdir, 1), (enum decompress_kind)42, 0, &r,
                                  &err) == -1);
  cr_assert(err.code == VERR_USAGE);
  cr_assert_str_eq(decompress_kind_name((enum decompress_kind)42), "unknown");
  cr_assert_str_eq(decompress_kind_name(DECOMPRESS_ZSTD), "zstd");
}

/* skip_gzip_crc: the same bytes out; a CRC-32 that does not match is then not looked
 * at (the caller checks the compressed bytes' digest), while without it it is refused. */
Test(decompress, gzip_crc_skipped_only_when_asked)
{
  char plain[128], comp[128];
  tmp_path(plain, sizeof plain, "plain");
  tmp_path(comp, sizeof comp, "comp");
  const size_t size = 3u << 20;
  CLEANUP_FREE unsigned char *data = make_data(PAT_MIXED, size, 7);
  write_file(plain, data, size);
  compress_file(DECOMPRESS_GZIP, plain, comp);
  corrupt_checksum(comp, file_size(comp));
  struct verr err = { 0 };
  unsigned char *out = NULL;
  size_t out_len = 0;
  struct decompress_opts checked = { 0 };
  cr_assert(decompress_all(comp, DECOMPRESS_GZIP, &checked, 1 << 20, 1 << 20, &out, &out_len,
                           &err) == -1, "a wrong CRC-32 must be refused by default");
  cr_assert(err.code == VERR_FORMAT, "%s", err.message);
  struct decompress_opts skip = { .skip_gzip_crc = true };
  cr_assert(decompress_all(comp, DECOMPRESS_GZIP, &skip, 1 << 20, 1 << 20, &out, &out_len,
                           &err) == 0, "%s", err.message);
  cr_assert(out_len == size && memcmp(out, data, size) == 0, "other bytes came out");
  free(out);
}
