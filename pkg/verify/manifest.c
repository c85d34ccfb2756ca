/* vimport verify: the per-block digest manifest file. verify.h states the format; this
 * file is the only one that writes or reads it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/cleanup.h"
#include "verify.h"

#define MANIFEST_MAX_RANGES 8

/* H(zeros(len)) for blocks a manifest leaves out. */
static int zero_digest(const EVP_MD *type, size_t len, unsigned char *md, unsigned *md_len)
{
  CLEANUP_FREE unsigned char *zeros = calloc(1, len ? len : 1);
  if (zeros == NULL)
    return -1;
  return EVP_Digest(zeros, len, md, md_len, type, NULL) == 1 ? 0 : -1;
}

/* ---- writing -------------------------------------------------------------------------- */

struct manifest_writer {
  FILE *f;
  char *path, *tmp;
  unsigned char zero_md[EVP_MAX_MD_SIZE]; /* H(zeros(block_size)): blocks left out */
  unsigned zero_md_len;
};

static void manifest_writer_free(struct manifest_writer *m)
{
  free(m->path);
  free(m->tmp);
  free(m);
}

int manifest_writer_open(const char *path, const char *digest_name, size_t block_size,
                         struct manifest_writer **out, struct verr *err)
{
  *out = NULL;
  size_t bs = block_size ? block_size : BLKHASH_DEFAULT_BLOCK_SIZE;
  struct manifest_writer *m = calloc(1, sizeof *m);
  if (m == NULL || (m->path = strdup(path)) == NULL || asprintf(&m->tmp, "%s.tmp", path) < 0) {
    if (m != NULL)
      m->tmp = NULL, manifest_writer_free(m);
    return verr_set(err, VERR_NOMEM, "out of memory");
  }
  const EVP_MD *type = EVP_get_digestbyname(digest_name);
  if (type == NULL || zero_digest(type, bs, m->zero_md, &m->zero_md_len) < 0) {
    manifest_writer_free(m);
    return verr_set(err, VERR_INTERNAL, "cannot compute the digest of a zero block");
  }
  m->f = fopen(m->tmp, "w");
  if (m->f == NULL) {
    int e = errno;
    verr_sys(err, VERR_IO, e, "cannot create the manifest %s", m->tmp);
    manifest_writer_free(m);
    return -1;
  }
  fprintf(m->f, "vimport-manifest 1\ndigest %s\nblock-size %zu\n", digest_name, bs);
  *out = m;
  return 0;
}

static void manifest_writer_on_block(void *opaque, uint64_t index, const unsigned char *md,
                                     unsigned md_len)
{
  struct manifest_writer *m = opaque;
  if (md_len == m->zero_md_len && memcmp(md, m->zero_md, md_len) == 0)
    return;
  char hex[2 * BLKHASH_MAX_MD_SIZE + 1];
  blkhash_hex(md, md_len, hex);
  fprintf(m->f, "%llu %s\n", (unsigned long long)index, hex); /* errors: see ferror() */
}

void manifest_writer_attach(struct manifest_writer *m, struct blkhash_opts *opts)
{
  opts->on_block = manifest_writer_on_block;
  opts->on_block_opaque = m;
}

int manifest_writer_close(struct manifest_writer *m, bool ok, uint64_t length, const char *hex,
                          struct verr *err)
{
  if (m == NULL)
    return 0;
  if (ok)
    fprintf(m->f, "length %llu\nblockhash %s\n", (unsigned long long)length, hex);
  int bad = fflush(m->f) != 0 || ferror(m->f) || fsync(fileno(m->f)) != 0;
  int saved = errno;
  fclose(m->f);
  int r = 0;
  if (ok && !bad && rename(m->tmp, m->path) == 0) {
    manifest_writer_free(m);
    return 0;
  }
  int e = bad ? saved : errno;
  unlink(m->tmp);
  if (ok)
    r = verr_sys(err, VERR_IO, e, "cannot write the manifest %s", m->path);
  manifest_writer_free(m);
  return r;
}

/* ---- reading, in step with the hasher ----------------------------------------------- */

struct manifest_reader {
  FILE *f;
  char *name;
  char line[512];
  unsigned lineno;
  bool have_entry;        /* `entry_*` holds the next unconsumed block line */
  bool seen_entry;        /* a block line was read: entry_index is the last one's index */
  uint64_t entry_index;
  unsigned char entry_md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len;        /* the digest's size */
  uint64_t block_size, length; /* the hashed length: the last block may be short */
  unsigned char zero_md[EVP_MAX_MD_SIZE];      /* H(zeros(block_size)) */
  unsigned char zero_tail_md[EVP_MAX_MD_SIZE]; /* H(zeros(length % block_size)) */
  bool failed;            /* a malformed line: `error` says which */
  char error[256];
  /* differing blocks, coalesced into ranges */
  uint64_t first[MANIFEST_MAX_RANGES], last[MANIFEST_MAX_RANGES];
  size_t ranges;
  uint64_t more_ranges;
  uint64_t blocks_differ;
  /* trailer */
  uint64_t trailer_length;
  char trailer_hex[2 * BLKHASH_MAX_MD_SIZE + 2]; /* as long as a line's hex field */
};

static int hex_to_bytes(const char *hex, unsigned char *out, unsigned max, unsigned *len)
{
  size_t n = strlen(hex);
  if (n == 0 || n % 2 != 0 || n / 2 > max)
    return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1)
      return -1;
    out[i] = (unsigned char)v;
  }
  *len = (unsigned)(n / 2);
  return 0;
}

static bool next_line(struct manifest_reader *m)
{
  if (fgets(m->line, sizeof m->line, m->f) == NULL)
    return false;
  m->lineno++;
  m->line[strcspn(m->line, "\r\n")] = '\0';
  return true;
}

static void reader_fail(struct manifest_reader *m, const char *why)
{
  if (!m->failed)
    snprintf(m->error, sizeof m->error, "%s:%u: %s", m->name, m->lineno, why);
  m->failed = true;
}

/* Read the next block line into entry_*, or the trailer when the blocks end. */
static void advance(struct manifest_reader *m)
{
  m->have_entry = false;
  while (!m->failed && next_line(m)) {
    unsigned long long idx, len;
    char hex[2 * BLKHASH_MAX_MD_SIZE + 2];
    unsigned n = 0;
    if (sscanf(m->line, "length %llu", &len) == 1) {
      m->trailer_length = len;
    } else if (sscanf(m->line, "blockhash %129s", hex) == 1) {
      snprintf(m->trailer_hex, sizeof m->trailer_hex, "%s", hex);
    } else if (sscanf(m->line, "%llu %129s", &idx, hex) != 2) {
      reader_fail(m, "not a manifest line (see 'vimport sum --help')");
    } else if (hex_to_bytes(hex, m->entry_md, sizeof m->entry_md, &n) < 0 || n != m->md_len) {
      reader_fail(m, "a block digest of the wrong length for the digest");
    } else if (m->seen_entry && idx <= m->entry_index) {
      reader_fail(m, "block lines out of order");
    } else {
      m->entry_index = idx;
      m->seen_entry = m->have_entry = true;
      return;
    }
  }
}

static void record(struct manifest_reader *m, uint64_t index)
{
  m->blocks_differ++;
  if (m->ranges > 0 && m->last[m->ranges - 1] + 1 == index) {
    m->last[m->ranges - 1] = index;
    return;
  }
  if (m->ranges == MANIFEST_MAX_RANGES) {
    m->more_ranges++;
    return;
  }
  m->first[m->ranges] = m->last[m->ranges] = index;
  m->ranges++;
}

void manifest_reader_on_block(void *opaque, uint64_t index, const unsigned char *md,
                              unsigned md_len)
{
  struct manifest_reader *m = opaque;
  while (!m->failed && m->have_entry && m->entry_index < index) {
    record(m, m->entry_index); /* only reachable through a corrupt manifest */
    advance(m);
  }
  const unsigned char *want;
  if (m->have_entry && m->entry_index == index) {
    want = m->entry_md;
  } else {
    bool tail = (index + 1) * m->block_size > m->length; /* a short last block */
    want = tail ? m->zero_tail_md : m->zero_md;
  }
  if (md_len != m->md_len || memcmp(md, want, md_len) != 0)
    record(m, index);
  if (m->have_entry && m->entry_index == index)
    advance(m);
}

void manifest_reader_attach(struct manifest_reader *m, struct blkhash_opts *opts)
{
  opts->on_block = manifest_reader_on_block;
  opts->on_block_opaque = m;
}

static int read_header(struct manifest_reader *m, const char *digest_name, size_t block_size,
                       struct verr *err)
{
  char digest[64] = "";
  unsigned long long bs = 0;
  int version = 0;
  if (!next_line(m) || sscanf(m->line, "vimport-manifest %d", &version) != 1 || version != 1)
    return verr_set(err, VERR_USAGE, "%s is not a vimport manifest version 1: write one with "
                    "'vimport sum --manifest FILE'", m->name);
  if (!next_line(m) || sscanf(m->line, "digest %63s", digest) != 1 ||
      !next_line(m) || sscanf(m->line, "block-size %llu", &bs) != 1)
    return verr_set(err, VERR_USAGE, "%s:%u: expected the digest and block-size lines",
                    m->name, m->lineno);
  if (strcmp(digest, digest_name) != 0 || bs != block_size)
    return verr_set(err, VERR_USAGE, "%s was made with digest %s and block size %llu, the "
                    "spec asks for %s and %zu: make it again with 'vimport sum -d %s "
                    "--block-size %zu --manifest'", m->name, digest, bs, digest_name,
                    block_size, digest_name, block_size);
  return 0;
}

static int reader_init(struct manifest_reader *m, const char *digest_name, size_t block_size,
                       uint64_t length, struct verr *err)
{
  m->block_size = block_size;
  m->length = length;
  if (block_size == 0)
    return verr_set(err, VERR_USAGE, "a manifest block size must not be 0");
  if (read_header(m, digest_name, block_size, err) < 0)
    return -1;
  const EVP_MD *type = EVP_get_digestbyname(digest_name);
  unsigned n;
  m->md_len = type ? (unsigned)EVP_MD_get_size(type) : 0;
  if (type == NULL || zero_digest(type, block_size, m->zero_md, &n) < 0 ||
      zero_digest(type, length % block_size, m->zero_tail_md, &n) < 0)
    return verr_set(err, VERR_INTERNAL, "cannot compute the digest of a zero block");
  advance(m);
  return 0;
}

int manifest_reader_open_stream(FILE *f, const char *name, const char *digest_name,
                                size_t block_size, uint64_t length,
                                struct manifest_reader **out, struct verr *err)
{
  *out = NULL;
  struct manifest_reader *m = calloc(1, sizeof *m);
  if (m == NULL || (m->name = strdup(name)) == NULL) {
    free(m);
    fclose(f);
    return verr_set(err, VERR_NOMEM, "out of memory");
  }
  m->f = f;
  if (reader_init(m, digest_name, block_size, length, err) < 0) {
    manifest_reader_free(m);
    return -1;
  }
  *out = m;
  return 0;
}

int manifest_reader_open(const char *path, const char *digest_name, size_t block_size,
                         uint64_t length, struct manifest_reader **out, struct verr *err)
{
  *out = NULL;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return verr_sys(err, VERR_USAGE, errno, "cannot open the manifest %s", path);
  return manifest_reader_open_stream(f, path, digest_name, block_size, length, out, err);
}

/* Append the byte ranges that differed: "; changed since the manifest: bytes a-b, ..." */
static size_t describe_ranges(const struct manifest_reader *m, char *out, size_t used,
                              size_t size)
{
  used += (size_t)snprintf(out + used, size - used, "; changed since the manifest: ");
  for (size_t i = 0; i < m->ranges && used < size; i++) {
    uint64_t a = m->first[i] * m->block_size;
    uint64_t b = (m->last[i] + 1) * m->block_size;
    b = (b > m->length ? m->length : b) - 1;
    used += (size_t)snprintf(out + used, size - used, "%sbytes %" PRIu64 "-%" PRIu64,
                             i ? ", " : "", a, b);
  }
  return used;
}

void manifest_reader_finish(struct manifest_reader *m, const char *expected_hex, char *out,
                            size_t size)
{
  uint64_t blocks = (m->length + m->block_size - 1) / m->block_size;
  while (!m->failed && m->have_entry) {
    if (m->entry_index < blocks)
      record(m, m->entry_index);
    advance(m);
  }
  size_t used = strlen(out);
  if (m->failed) {
    snprintf(out + used, size - used, "; the manifest could not be used: %s", m->error);
    return;
  }
  if (m->trailer_length != m->length)
    used += (size_t)snprintf(out + used, size - used, "; the manifest covers %" PRIu64
                             " bytes, this check %" PRIu64, m->trailer_length, m->length);
  if (used < size && strcmp(m->trailer_hex, expected_hex) != 0)
    used += (size_t)snprintf(out + used, size - used, "; the manifest was made from an image "
                             "whose block hash is not the expected one, so the ranges below "
                             "compare with that image");
  if (m->blocks_differ == 0 || used >= size) {
    if (used < size)
      snprintf(out + used, size - used, "; every block matches the manifest %s "
               "(it was made from another image?)", m->name);
    return;
  }
  used = describe_ranges(m, out, used, size);
  if (m->more_ranges && used < size)
    snprintf(out + used, size - used, " and %" PRIu64 " more ranges", m->more_ranges);
}

void manifest_reader_free(struct manifest_reader *m)
{
  if (m == NULL)
    return;
  if (m->f != NULL)
    fclose(m->f);
  free(m->name);
  free(m);
}
