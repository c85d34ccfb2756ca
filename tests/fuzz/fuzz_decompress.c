/* libFuzzer target for pkg/decompress: arbitrary bytes as a gzip, xz or zstd stream
 * (the first byte picks the kind, and for gzip whether the CRC is skipped), read through
 * a non-seekable reader with short reads.
 *
 * Invariants checked: a failure has a message and repeats on the next read; the output
 * never passes max_output. For gzip, differentially against zlib (what `gzip -d` and the
 * qemu tools use): when zlib reads the input as whole members with nothing after them
 * and within the bound, the reader must succeed with the same bytes; when the reader
 * succeeds with the CRC checked, zlib must have accepted it. With the CRC skipped the
 * reader may accept what zlib refuses for its CRC, never different bytes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "decompress/decompress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "mem_reader.h"

static const struct vreader_ops mem_ops = { .name = "fuzz", .read = mem_read };

#define MAX_OUT (1u << 20)

enum zlib_verdict { ZLIB_OK, ZLIB_BAD, ZLIB_BAD_CRC_ONLY, ZLIB_TOO_BIG };

/* zlib's reading of `data` as gzip members back to back, into out (MAX_OUT + 1 bytes). */
static enum zlib_verdict zlib_gunzip(const uint8_t *data, size_t size, uint8_t *out,
                                     size_t *out_len)
{
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
    abort();
  z.next_in = (Bytef *)data;
  z.avail_in = (uInt)size;
  z.next_out = out;
  z.avail_out = MAX_OUT + 1; /* past the bound by one: then it is too big */
  enum zlib_verdict v = ZLIB_BAD;
  for (;;) {
    int r = inflate(&z, Z_NO_FLUSH);
    if (r == Z_STREAM_END) {
      if (z.avail_in == 0) {
        v = ZLIB_OK;
        break;
      }
      if (z.avail_in < 2 || z.next_in[0] != 0x1f || z.next_in[1] != 0x8b)
        break; /* trailing garbage */
      inflateReset(&z);
      continue;
    }
    if (r == Z_DATA_ERROR && z.msg != NULL && strcmp(z.msg, "incorrect data check") == 0)
      v = ZLIB_BAD_CRC_ONLY;
    else if (r == Z_DATA_ERROR && z.msg != NULL && strcmp(z.msg, "incorrect length check") == 0)
      v = ZLIB_BAD_CRC_ONLY;
    else if ((r == Z_OK || r == Z_BUF_ERROR) && z.avail_out == 0)
      v = ZLIB_TOO_BIG;
    break; /* Z_BUF_ERROR with output room: truncated */
  }
  *out_len = MAX_OUT + 1 - z.avail_out;
  inflateEnd(&z);
  return v;
}

/* The reader's output into out (MAX_OUT bytes); 0, or -1 when it failed. */
static int ours(enum decompress_kind kind, bool skip_crc, const uint8_t *data, size_t size,
                uint8_t *out, size_t *out_len)
{
  struct mem_source m = { .data = data, .size = size };
  struct vreader *lower = malloc(sizeof *lower);
  if (lower == NULL)
    abort();
  *lower = (struct vreader){ .ops = &mem_ops, .state = &m };
  struct decompress_opts opts = { .max_output = MAX_OUT, .memlimit = 32u << 20,
                                  .skip_gzip_crc = skip_crc };
  struct vreader *r = NULL;
  struct verr err = { 0 };
  if (decompress_reader_new_opts(lower, kind, &opts, &r, &err) < 0)
    abort(); /* only an unknown kind or no memory */
  size_t len = 0;
  int result = 0;
  for (;;) {
    ssize_t n = r->ops->read(r, out + len, MAX_OUT - len < 65536 ? MAX_OUT - len + 1 : 65536,
                             &err);
    if (n < 0) {
      struct verr again = { 0 };
      if (err.message[0] == '\0' || r->ops->read(r, out, 1, &again) != -1 ||
          strcmp(again.message, err.message) != 0)
        abort();
      result = -1;
      break;
    }
    if (n == 0)
      break;
    len += (size_t)n;
    if (len > MAX_OUT)
      abort(); /* past max_output */
  }
  vreader_close(r);
  *out_len = len;
  return result;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  static const enum decompress_kind kinds[] = { DECOMPRESS_GZIP, DECOMPRESS_GZIP, DECOMPRESS_XZ,
                                                DECOMPRESS_ZSTD };
  enum decompress_kind kind = kinds[data[0] % 4];
  bool skip_crc = data[0] % 4 == 1;
  data++, size--;
  /* one spare byte: a read may ask for one past the bound, to see it passed */
  uint8_t *got = malloc(MAX_OUT + 1), *want = malloc(MAX_OUT + 1);
  if (got == NULL || want == NULL)
    abort();
  size_t got_len = 0, want_len = 0;
  int r = ours(kind, skip_crc, data, size, got, &got_len);
  if (kind == DECOMPRESS_GZIP) {
    enum zlib_verdict v = zlib_gunzip(data, size, want, &want_len);
    if (v == ZLIB_OK && (r != 0 || got_len != want_len || memcmp(got, want, got_len) != 0))
      abort(); /* zlib reads it whole: so must we, the same bytes */
    if (r == 0 && v != ZLIB_OK && !(skip_crc && v == ZLIB_BAD_CRC_ONLY))
      abort(); /* we accepted what zlib refuses */
    if (r == 0 && skip_crc && v == ZLIB_BAD_CRC_ONLY &&
        (got_len < want_len || memcmp(got, want, want_len) != 0))
      abort(); /* with the CRC skipped: the same bytes as far as zlib got */
  }
  free(got);
  free(want);
  return 0;
}
