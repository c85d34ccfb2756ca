/* Unit tests for pkg/digest: published vectors, the tap against one-shot hashing and
 * against the coreutils *sum tools on a real file, checksum parsing and CDI's mismatch
 * wording. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/cleanup.h"
#include "digest/digest.h"
#include "source/source.h"

/* ---- a memory reader that serves at most `chunk` bytes per read ---- */

struct mem_source {
  const unsigned char *data;
  size_t len, pos, chunk;
  size_t fail_at; /* fail the read that would pass this offset; SIZE_MAX never */
  bool *closed;   /* set on close, so tests see ownership work */
};

static ssize_t mem_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct mem_source *m = r->state;
  size_t n = m->len - m->pos;
  if (n > len)
    n = len;
  if (n > m->chunk)
    n = m->chunk;
  if (m->fail_at != SIZE_MAX && m->pos + n > m->fail_at)
    return verr_set(err, VERR_IO, "injected read failure at byte %zu", m->fail_at);
  memcpy(buf, m->data + m->pos, n);
  m->pos += n;
  return (ssize_t)n;
}

static void mem_close(struct vreader *r)
{
  struct mem_source *m = r->state;
  if (m->closed != NULL)
    *m->closed = true;
  free(m);
  free(r);
}

static const struct vreader_ops mem_ops = { .name = "mem", .read = mem_read, .close = mem_close };

static struct vreader *mem_reader(const void *data, size_t len, size_t chunk, bool *closed)
{
  struct vreader *r = calloc(1, sizeof *r);
  struct mem_source *m = calloc(1, sizeof *m);
  cr_assert(r != NULL && m != NULL);
  *m = (struct mem_source){ .data = data, .len = len, .chunk = chunk, .fail_at = SIZE_MAX,
                            .closed = closed };
  r->ops = &mem_ops;
  r->state = m;
  return r;
}

/* ---- the real file source (pkg/source) ---- */

static struct vreader *file_reader(const char *path)
{
  struct source_opts opts = { .url = path };
  struct vreader *r = NULL;
  struct verr err = { 0 };
  cr_assert(source_open(&opts, &r, &err) == 0, "open %s: %s", path, err.message);
  return r;
}

/* Read the whole stream through `r` with reads of `step` bytes, into `copy` if not NULL. */
static size_t drain(struct vreader *r, size_t step, unsigned char *copy, size_t copy_size)
{
  CLEANUP_FREE unsigned char *buf = malloc(step);
  size_t total = 0;
  struct verr err = { 0 };
  for (;;) {
    ssize_t n = r->ops->read(r, buf, step, &err);
    cr_assert(n >= 0, "read failed: %s", err.message);
    if (n == 0)
      return total;
    if (copy != NULL) {
      cr_assert(total + (size_t)n <= copy_size);
      memcpy(copy + total, buf, (size_t)n);
    }
    total += (size_t)n;
  }
}

static void tap_digest(const void *data, size_t len, size_t chunk, size_t step,
                       const char *alg, char *out)
{
  struct verr err = { 0 };
  struct vreader *tap = NULL;
  cr_assert(digest_tap_new(mem_reader(data, len, chunk, NULL), alg, &tap, &err) == 0,
            "%s", err.message);
  cr_assert(drain(tap, step, NULL, 0) == len);
  cr_assert(digest_tap_bytes(tap) == len);
  cr_assert(digest_tap_final(tap, out, CHECKSUM_STRING_MAX, &err) == 0, "%s", err.message);
  vreader_close(tap);
}

static void one_shot(const void *data, size_t len, const char *alg, char *out)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned md_len = 0;
  cr_assert(EVP_Digest(data, len, md, &md_len, EVP_get_digestbyname(alg), NULL) == 1);
  int n = snprintf(out, CHECKSUM_STRING_MAX, "%s:", alg);
  for (unsigned i = 0; i < md_len; i++)
    n += snprintf(out + n, CHECKSUM_STRING_MAX - (size_t)n, "%02x", md[i]);
}

static const char *const algorithms[] = { "md5", "sha1", "sha256", "sha512" };

/* ---- known vectors ---- */

Test(digest, abc_vectors)
{
  static const char *const expect[] = {
    "md5:900150983cd24fb0d6963f7d28e17f72",
    "sha1:a9993e364706816aba3e25717850c26c9cd0d89d",
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    ("sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
  };
  for (size_t i = 0; i < 4; i++) {
    char got[CHECKSUM_STRING_MAX];
    tap_digest("abc", 3, 1, 1, algorithms[i], got); /* one byte per read */
    cr_assert_str_eq(got, expect[i]);
    tap_digest("abc", 3, 3, 4096, algorithms[i], got);
    cr_assert_str_eq(got, expect[i]);
  }
}

Test(digest, empty_stream_vectors)
{
  char got[CHECKSUM_STRING_MAX];
  tap_digest("", 0, 1, 16, "md5", got);
  cr_assert_str_eq(got, "md5:d41d8cd98f00b204e9800998ecf8427e");
  tap_digest("", 0, 1, 16, "sha256", got);
  cr_assert_str_eq(got, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(digest, two_block_sha256_vector)
{
  /* FIPS 180-2 example: 448-bit message spanning two blocks */
  static const char msg[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  char got[CHECKSUM_STRING_MAX];
  tap_digest(msg, sizeof msg - 1, 5, 3, "sha256", got);
  cr_assert_str_eq(got, "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* ---- the tap against one-shot hashing ---- */

Test(digest, multi_chunk_stream_equals_one_shot)
{
  size_t len = 3 * 1024 * 1024 + 12345;
  CLEANUP_FREE unsigned char *data = malloc(len);
  CLEANUP_FREE unsigned char *copy = malloc(len);
  cr_assert(data != NULL && copy != NULL);
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < len; i++) { /* xorshift: deterministic, not compressible */
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    data[i] = (unsigned char)x;
  }
  static const size_t chunks[] = { 1, 511, 4096, 65537, SIZE_MAX };
  static const size_t steps[] = { 3, 4096, 1 << 20 };
  for (size_t a = 0; a < 4; a++) {
    char want[CHECKSUM_STRING_MAX];
    one_shot(data, len, algorithms[a], want);
    for (size_t c = 0; c < 5; c++) {
      for (size_t s = 0; s < 3; s++) {
        if (chunks[c] == 1 && steps[s] != 3)
          continue; /* 1-byte chunks are slow; once is enough */
        struct verr err = { 0 };
        struct vreader *tap = NULL;
        cr_assert(digest_tap_new(mem_reader(data, len, chunks[c], NULL), algorithms[a], &tap,
                                 &err) == 0);
        memset(copy, 0, len);
        cr_assert(drain(tap, steps[s], copy, len) == len);
        cr_assert(memcmp(copy, data, len) == 0, "the tap must pass bytes through unchanged");
        char got[CHECKSUM_STRING_MAX];
        cr_assert(digest_tap_final(tap, got, sizeof got, &err) == 0);
        cr_assert_str_eq(got, want, "%s chunk %zu step %zu", algorithms[a], chunks[c], steps[s]);
        vreader_close(tap);
      }
    }
  }
}

/* The tap on a real file agrees with coreutils md5sum/sha1sum/sha256sum/sha512sum. */
Test(digest, real_file_matches_coreutils)
{
  char dir[] = "/tmp/vimport-test-digest-XXXXXX";
  cr_assert(mkdtemp(dir) != NULL);
  char path[256], cmd[512];
  snprintf(path, sizeof path, "%s/data", dir);
  snprintf(cmd, sizeof cmd, "head -c 5000123 /dev/urandom > %s", path);
  cr_assert(system(cmd) == 0);
  for (size_t a = 0; a < 4; a++) {
    char want[CHECKSUM_STRING_MAX] = "", line[256] = "";
    snprintf(cmd, sizeof cmd, "%ssum %s", algorithms[a], path);
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL && fgets(line, sizeof line, p) != NULL);
    cr_assert(pclose(p) == 0);
    line[strcspn(line, " ")] = '\0';
    snprintf(want, sizeof want, "%s:%s", algorithms[a], line);

    struct verr err = { 0 };
    struct vreader *tap = NULL;
    cr_assert(digest_tap_new(file_reader(path), algorithms[a], &tap, &err) == 0);
    cr_assert(drain(tap, 65536, NULL, 0) == 5000123);
    char got[CHECKSUM_STRING_MAX];
    cr_assert(digest_tap_final(tap, got, sizeof got, &err) == 0);
    cr_assert_str_eq(got, want);
    vreader_close(tap);
  }
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert(system(cmd) == 0);
}

/* ---- tap lifecycle and errors ---- */

Test(digest, unknown_algorithm_closes_lower)
{
  bool closed = false;
  struct verr err = { 0 };
  struct vreader *tap = (struct vreader *)1;
  cr_assert(digest_tap_new(mem_reader("x", 1, 1, &closed), "crc32", &tap, &err) == -1);
  cr_assert(tap == NULL);
  cr_assert(closed, "the tap owns lower even on failure");
  cr_assert_eq(err.code, VERR_USAGE);
  cr_assert(strstr(err.message, "md5, sha1, sha256, sha512") != NULL, "%s", err.message);
}

Test(digest, close_closes_lower)
{
  bool closed = false;
  struct verr err = { 0 };
  struct vreader *tap = NULL;
  cr_assert(digest_tap_new(mem_reader("x", 1, 1, &closed), "sha256", &tap, &err) == 0);
  vreader_close(tap);
  cr_assert(closed);
}

Test(digest, lower_error_propagates_and_is_not_hashed)
{
  struct verr err = { 0 };
  struct vreader *tap = NULL;
  struct vreader *lower = mem_reader("abcdef", 6, 2, NULL);
  ((struct mem_source *)lower->state)->fail_at = 3;
  cr_assert(digest_tap_new(lower, "sha256", &tap, &err) == 0);
  char buf[8];
  cr_assert(tap->ops->read(tap, buf, sizeof buf, &err) == 2);
  cr_assert(tap->ops->read(tap, buf, sizeof buf, &err) == -1);
  cr_assert_eq(err.code, VERR_IO);
  cr_assert(strstr(err.message, "injected") != NULL);
  cr_assert(digest_tap_bytes(tap) == 2);
  vreader_close(tap);
}

Test(digest, read_after_final_fails)
{
  struct verr err = { 0 };
  struct vreader *tap = NULL;
  cr_assert(digest_tap_new(mem_reader("abcdef", 6, 3, NULL), "sha1", &tap, &err) == 0);
  char buf[8], out[CHECKSUM_STRING_MAX];
  cr_assert(tap->ops->read(tap, buf, sizeof buf, &err) == 3);
  cr_assert(digest_tap_final(tap, out, sizeof out, &err) == 0);
  cr_assert(tap->ops->read(tap, buf, sizeof buf, &err) == -1);
  cr_assert_eq(err.code, VERR_INTERNAL);
  cr_assert(digest_tap_final(tap, out, sizeof out, &err) == -1, "final twice is a bug");
  vreader_close(tap);
}

Test(digest, final_checks_reader_and_buffer)
{
  struct verr err = { 0 };
  char out[CHECKSUM_STRING_MAX];
  struct vreader *plain = mem_reader("x", 1, 1, NULL);
  cr_assert(digest_tap_final(plain, out, sizeof out, &err) == -1);
  cr_assert_eq(err.code, VERR_INTERNAL);
  cr_assert(digest_tap_bytes(plain) == 0);
  vreader_close(plain);

  struct vreader *tap = NULL;
  cr_assert(digest_tap_new(mem_reader("x", 1, 1, NULL), "sha256", &tap, &err) == 0);
  char small[20];
  cr_assert(digest_tap_final(tap, small, sizeof small, &err) == -1);
  cr_assert_eq(err.code, VERR_INTERNAL);
  vreader_close(tap);
}

/* ---- checksum_parse ---- */

Test(checksum, parse_accepts_and_normalises)
{
  struct checksum c;
  struct verr err = { 0 };
  cr_assert(checksum_parse("SHA256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                           &c, &err) == 0, "%s", err.message);
  cr_assert_str_eq(c.algorithm, "sha256");
  cr_assert_str_eq(c.hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  cr_assert(checksum_parse("md5:900150983cd24fb0d6963f7d28e17f72", &c, &err) == 0);
  cr_assert(checksum_parse("sha1:A9993E364706816ABA3E25717850C26C9CD0D89D", &c, &err) == 0);
  cr_assert_str_eq(c.hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
  char s[CHECKSUM_STRING_MAX];
  cr_assert(checksum_format(&c, s, sizeof s, &err) == 0);
  cr_assert_str_eq(s, "sha1:a9993e364706816aba3e25717850c26c9cd0d89d");
  char sha512[200];
  snprintf(sha512, sizeof sha512, "sha512:%0128d", 7);
  cr_assert(checksum_parse(sha512, &c, &err) == 0);
  cr_assert_eq(strlen(c.hex), 128);
}

Test(checksum, parse_errors_say_what_is_accepted)
{
  static const char *const bad[] = {
    "",                                          /* nothing */
    "ba7816bf8f01cfea414140de5dae2223",          /* no algorithm */
    ":900150983cd24fb0d6963f7d28e17f72",         /* empty algorithm */
    "crc32:900150983cd24fb0d6963f7d28e17f72",    /* unknown algorithm */
    "sha256abcdefghijk:00",                      /* algorithm too long */
    "md5:900150983cd24fb0d6963f7d28e17f7",       /* 31 digits */
    "md5:900150983cd24fb0d6963f7d28e17f722",     /* 33 digits */
    "sha256:900150983cd24fb0d6963f7d28e17f72",   /* md5 length for sha256 */
    "md5:900150983cd24fb0d6963f7d28e17fzz",      /* not hex */
    "md5: 900150983cd24fb0d6963f7d28e17f7",      /* space */
    "md5:900150983cd24fb0d6963f7d28e17f72\n",    /* trailing newline */
    "md5:",                                      /* no digits */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct checksum c;
    struct verr err = { 0 };
    cr_assert(checksum_parse(bad[i], &c, &err) == -1, "accepted \"%s\"", bad[i]);
    cr_assert_eq(err.code, VERR_USAGE);
    cr_assert(strstr(err.message, "sha256:<64>") != NULL, "\"%s\" -> %s", bad[i], err.message);
  }
  struct checksum c;
  struct verr err = { 0 };
  checksum_parse("md5:900150983cd24fb0d6963f7d28e17f7", &c, &err);
  cr_assert(strstr(err.message, "exactly 32 hex digits") != NULL, "%s", err.message);
  checksum_parse("crc32:00", &c, &err);
  cr_assert(strstr(err.message, "\"crc32\"") != NULL, "%s", err.message);
}

/* ---- checksum_compare ---- */

Test(checksum, compare_match_and_cdi_mismatch_wording)
{
  struct checksum expected;
  struct verr err = { 0 };
  const char *abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  cr_assert(checksum_parse("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                           &expected, &err) == 0);
  cr_assert(checksum_compare(&expected, abc, &err) == 0);

  char calculated[CHECKSUM_STRING_MAX];
  tap_digest("abd", 3, 2, 2, "sha256", calculated);
  cr_assert(checksum_compare(&expected, calculated, &err) == -1);
  cr_assert_eq(err.code, VERR_CHECKSUM);
  char want[512];
  snprintf(want, sizeof want, "checksum mismatch: expected %s, calculated %s", abc, calculated);
  cr_assert_str_eq(err.message, want);
}

Test(checksum, compare_other_algorithm_is_a_bug)
{
  struct checksum expected;
  struct verr err = { 0 };
  cr_assert(checksum_parse("md5:900150983cd24fb0d6963f7d28e17f72", &expected, &err) == 0);
  cr_assert(checksum_compare(&expected, "sha1:a9993e364706816aba3e25717850c26c9cd0d89d",
                             &err) == -1);
  cr_assert_eq(err.code, VERR_INTERNAL);
  cr_assert(checksum_compare(&expected, "garbage", &err) == -1);
  cr_assert_eq(err.code, VERR_INTERNAL);
}
