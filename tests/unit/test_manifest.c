/* Unit tests of pkg/verify's manifest files: written from a real block hash, read back
 * while the same or changed bytes are hashed, and every malformed file refused with a
 * message that names it. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkhash/blkhash.h"
#include "verify/verify.h"

#define BS 4096u
#define BLOCKS 6u
#define LEN (BLOCKS * BS)

static char tmpdir[64];
static char path[128];
static unsigned char image[LEN];
static char image_hex[2 * BLKHASH_MAX_MD_SIZE + 1];

/* Hash `len` bytes of `buf` with sha256/BS, reporting blocks to on_block via `opts`. */
static void hash(const unsigned char *buf, size_t len, struct blkhash_opts *opts, char *hex)
{
  opts->digest_name = "sha256";
  opts->block_size = BS;
  struct blkhash *h = NULL;
  cr_assert_eq(blkhash_new(opts, &h), 0);
  cr_assert_eq(blkhash_update(h, buf, len), 0);
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len = 0;
  cr_assert_eq(blkhash_final(h, md, &md_len), 0);
  blkhash_free(h);
  blkhash_hex(md, md_len, hex);
}

/* The image: distinct bytes in every block but block 1, which is zeros. */
static void write_manifest(void)
{
  strcpy(tmpdir, "/var/tmp/test_manifest.XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
  snprintf(path, sizeof path, "%s/disk.manifest", tmpdir);
  for (size_t i = 0; i < LEN; i++)
    image[i] = i / BS == 1 ? 0 : (unsigned char)(i * 7 + i / BS);
  struct manifest_writer *w = NULL;
  struct verr err = { 0 };
  cr_assert_eq(manifest_writer_open(path, "sha256", BS, &w, &err), 0, "%s", err.message);
  struct blkhash_opts opts = { 0 };
  manifest_writer_attach(w, &opts);
  hash(image, LEN, &opts, image_hex);
  cr_assert_eq(manifest_writer_close(w, true, LEN, image_hex, &err), 0, "%s", err.message);
}

static void remove_tmpdir(void)
{
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (tmpdir[0] != '\0' && system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", tmpdir);
}

TestSuite(manifest, .init = write_manifest, .fini = remove_tmpdir, .timeout = 30);

/* Compare `buf` (len bytes) with the manifest `text` (or the file written, when NULL) and
 * return what manifest_reader_finish() appended. */
static char *compare(const char *text, const unsigned char *buf, size_t len)
{
  struct manifest_reader *m = NULL;
  struct verr err = { 0 };
  int r = text == NULL
              ? manifest_reader_open(path, "sha256", BS, len, &m, &err)
              : manifest_reader_open_stream(fmemopen((void *)text, strlen(text), "r"), "m.txt",
                                            "sha256", BS, len, &m, &err);
  cr_assert_eq(r, 0, "%s", err.message);
  struct blkhash_opts opts = { 0 };
  manifest_reader_attach(m, &opts);
  char hex[2 * BLKHASH_MAX_MD_SIZE + 1];
  hash(buf, len, &opts, hex);
  static char out[700];
  out[0] = '\0';
  manifest_reader_finish(m, image_hex, out, sizeof out);
  manifest_reader_free(m);
  return out;
}

/* The error of opening `text` as a manifest (which must fail). */
static char *refusal(const char *text, const char *digest, size_t block_size)
{
  struct manifest_reader *m = NULL;
  static struct verr err;
  memset(&err, 0, sizeof err);
  FILE *f = fmemopen((void *)text, strlen(text), "r");
  cr_assert_eq(manifest_reader_open_stream(f, "m.txt", digest, block_size, LEN, &m, &err), -1);
  cr_assert_null(m);
  return err.message;
}

static char *read_all(const char *p)
{
  static char text[4096];
  FILE *f = fopen(p, "r");
  cr_assert_not_null(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

Test(manifest, written_file_has_header_nonzero_blocks_and_trailer)
{
  char *text = read_all(path);
  cr_assert(strncmp(text, "vimport-manifest 1\ndigest sha256\nblock-size 4096\n0 ", 50) == 0,
            "%s", text);
  cr_assert_null(strstr(text, "\n1 "), "the zero block 1 must be left out: %s", text);
  cr_assert_not_null(strstr(text, "\n5 "));
  char trailer[200];
  snprintf(trailer, sizeof trailer, "length %u\nblockhash %s\n", LEN, image_hex);
  cr_assert_str_eq(text + strlen(text) - strlen(trailer), trailer);
  char tmp[160];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  cr_assert_neq(access(tmp, F_OK), 0, "the .tmp file must be renamed");
}

Test(manifest, failed_hash_leaves_no_file)
{
  char other[160], tmp[170];
  snprintf(other, sizeof other, "%s/other.manifest", tmpdir);
  snprintf(tmp, sizeof tmp, "%s.tmp", other);
  struct manifest_writer *w = NULL;
  struct verr err = { 0 };
  cr_assert_eq(manifest_writer_open(other, "sha256", BS, &w, &err), 0);
  cr_assert_eq(access(tmp, F_OK), 0);
  cr_assert_eq(manifest_writer_close(w, false, 0, NULL, &err), 0);
  cr_assert_neq(access(tmp, F_OK), 0);
  cr_assert_neq(access(other, F_OK), 0);
}

Test(manifest, writer_in_a_missing_directory_names_the_file)
{
  struct manifest_writer *w = NULL;
  struct verr err = { 0 };
  cr_assert_eq(manifest_writer_open("/nonexistent/dir/m", "sha256", BS, &w, &err), -1);
  cr_assert_null(w);
  cr_assert_not_null(strstr(err.message, "cannot create the manifest /nonexistent/dir/m.tmp"),
                     "%s", err.message);
}

Test(manifest, round_trip_of_the_same_image_matches_every_block)
{
  char *out = compare(NULL, image, LEN);
  cr_assert_not_null(strstr(out, "; every block matches the manifest"), "%s", out);
  cr_assert_null(strstr(out, "covers"), "%s", out);
}

Test(manifest, changed_blocks_are_named_as_byte_ranges)
{
  static unsigned char changed[LEN];
  memcpy(changed, image, LEN);
  changed[2 * BS + 5] ^= 1;
  changed[3 * BS] ^= 1;
  changed[1 * BS + 9] = 1; /* the block the manifest left out as zeros */
  char *out = compare(NULL, changed, LEN);
  cr_assert_str_eq(out, "; changed since the manifest: bytes 4096-16383", "%s", out);
}

Test(manifest, a_short_last_block_compares_with_zeros_of_its_length)
{
  static unsigned char zeros[LEN];
  const char *text = "vimport-manifest 1\ndigest sha256\nblock-size 4096\n"
                     "length 5000\nblockhash 00\n";
  char *out = compare(text, zeros, 5000);
  cr_assert_not_null(strstr(out, "every block matches"), "%s", out);
  zeros[4999] = 1;
  out = compare(text, zeros, 5000);
  cr_assert_not_null(strstr(out, "bytes 4096-4999"), "%s", out);
}

Test(manifest, many_ranges_are_bounded)
{
  static unsigned char zeros[64 * BS];
  const char *text = "vimport-manifest 1\ndigest sha256\nblock-size 4096\n"
                     "length 262144\nblockhash 00\n";
  for (size_t b = 0; b < 64; b += 2)
    zeros[b * BS] = 1;
  char *out = compare(text, zeros, sizeof zeros);
  cr_assert_not_null(strstr(out, "bytes 57344-61439 and 24 more ranges"), "%s", out);
}

Test(manifest, truncated_file_says_so)
{
  char *text = read_all(path);
  *strstr(text, "length ") = '\0';
  char *out = compare(text, image, LEN);
  cr_assert_not_null(strstr(out, "; the manifest covers 0 bytes, this check 24576"), "%s", out);
  cr_assert_not_null(strstr(out, "; the manifest was made from an image whose block hash is "
                                 "not the expected one"), "%s", out);
}

Test(manifest, other_length_is_reported)
{
  char *out = compare(NULL, image, LEN - 100);
  cr_assert_not_null(strstr(out, "; the manifest covers 24576 bytes, this check 24476"), "%s",
                     out);
}

static void expect_unusable(const char *text, const char *why)
{
  char *out = compare(text, image, LEN);
  cr_assert_not_null(strstr(out, "; the manifest could not be used: m.txt:"), "%s", out);
  cr_assert_not_null(strstr(out, why), "want \"%s\" in %s", why, out);
}

#define HEADER "vimport-manifest 1\ndigest sha256\nblock-size 4096\n"
#define MD64 "0000000000000000000000000000000000000000000000000000000000000000"

Test(manifest, malformed_lines_are_named)
{
  expect_unusable(HEADER "0 zz\n", "m.txt:4: a block digest of the wrong length");
  expect_unusable(HEADER "0 0000\n", "m.txt:4: a block digest of the wrong length");
  expect_unusable(HEADER "what\n", "m.txt:4: not a manifest line (see 'vimport sum --help')");
  expect_unusable(HEADER "3 " MD64 "\n2 " MD64 "\n", "m.txt:5: block lines out of order");
  expect_unusable(HEADER "3 " MD64 "\n3 " MD64 "\n", "m.txt:5: block lines out of order");
}

Test(manifest, trailing_garbage_is_refused)
{
  char *text = read_all(path);
  strcat(text, "garbage\n");
  expect_unusable(text, "not a manifest line");
}

Test(manifest, header_refusals)
{
  cr_assert_str_eq(refusal("", "sha256", BS), "m.txt is not a vimport manifest version 1: "
                   "write one with 'vimport sum --manifest FILE'");
  cr_assert_str_eq(refusal("vimport-manifest 2\n", "sha256", BS),
                   "m.txt is not a vimport manifest version 1: write one with 'vimport sum "
                   "--manifest FILE'");
  cr_assert_str_eq(refusal("vimport-manifest 1\ndigest sha256\n", "sha256", BS),
                   "m.txt:2: expected the digest and block-size lines");
  cr_assert_str_eq(refusal("vimport-manifest 1\nblock-size 4096\n", "sha256", BS),
                   "m.txt:2: expected the digest and block-size lines");
  cr_assert_str_eq(refusal(HEADER, "sha1", BS), "m.txt was made with digest sha256 and block "
                   "size 4096, the spec asks for sha1 and 4096: make it again with 'vimport "
                   "sum -d sha1 --block-size 4096 --manifest'");
  cr_assert_str_eq(refusal(HEADER, "sha256", 65536), "m.txt was made with digest sha256 and "
                   "block size 4096, the spec asks for sha256 and 65536: make it again with "
                   "'vimport sum -d sha256 --block-size 65536 --manifest'");
}

Test(manifest, a_missing_file_is_a_usage_error)
{
  struct manifest_reader *m = NULL;
  struct verr err = { 0 };
  cr_assert_eq(manifest_reader_open("/nonexistent/m", "sha256", BS, LEN, &m, &err), -1);
  cr_assert_eq(err.code, VERR_USAGE);
  cr_assert_not_null(strstr(err.message, "cannot open the manifest /nonexistent/m"), "%s",
                     err.message);
}
