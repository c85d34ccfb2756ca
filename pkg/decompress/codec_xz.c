/* vimport decompress: xz with liblzma.
 *
 * We decode one .xz stream at a time and handle concatenation here rather than with
 * LZMA_CONCATENATED: with that flag liblzma reports trailing garbage as LZMA_DATA_ERROR,
 * the same as a corrupt block, and a user deserves to know which of the two it is.
 * Between and after streams the format allows stream padding: zero bytes, a multiple of
 * four in total (xz(1), "Stream Padding"); we accept exactly that, as `xz -d` does.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lzma.h>

#include "codec.h"

#define XZ_MAGIC_LEN 6

struct xz_state {
  lzma_stream strm;
  bool stream_ended; /* the previous step finished a stream */
};

static bool xz_starts_stream(const unsigned char *p, size_t n)
{
  static const unsigned char magic[XZ_MAGIC_LEN] = { 0xfd, '7', 'z', 'X', 'Z', 0x00 };
  return n >= XZ_MAGIC_LEN && memcmp(p, magic, XZ_MAGIC_LEN) == 0;
}

/* Threads for liblzma's multi-threaded decoder: one per online CPU, at most 8. */
static uint32_t xz_threads(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 8 ? 8 : (uint32_t)n;
}

static int xz_start_decoder(struct decomp *d, struct xz_state *x, struct verr *err)
{
  /* A stream that `xz -T` wrote is made of independent blocks, which liblzma decodes on
   * several threads. That costs a block's output buffer per thread, so only while the
   * total stays within memlimit_threading (half the limit, at most 64 MiB): past it,
   * liblzma decodes on one thread in the same memory as before, and memlimit_stop stays
   * the hard limit. */
  uint64_t threading = d->opts.memlimit / 2 < (64u << 20) ? d->opts.memlimit / 2 : (64u << 20);
  lzma_mt mt = {
    .threads = xz_threads(),
    .memlimit_threading = threading,
    .memlimit_stop = d->opts.memlimit,
  };
  lzma_ret ret = lzma_stream_decoder_mt(&x->strm, &mt);
  if (ret == LZMA_MEM_ERROR)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the xz decoder");
  if (ret != LZMA_OK)
    return verr_set(err, VERR_INTERNAL, "liblzma refused to start a decoder (error %d)",
                    (int)ret);
  return 0;
}

static int xz_init(struct decomp *d, struct verr *err)
{
  struct xz_state *x = calloc(1, sizeof *x);
  if (x == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the xz decoder");
  x->strm = (lzma_stream)LZMA_STREAM_INIT;
  d->codec_state = x;
  return xz_start_decoder(d, x, err);
}

/* Skip stream padding; returns its length, or -1 if the lower reader fails. */
static int64_t xz_skip_padding(struct decomp *d, struct verr *err)
{
  int64_t padding = 0;
  for (;;) {
    ssize_t avail = decomp_peek(d, 1, err);
    if (avail < 0)
      return -1;
    if (avail == 0 || decomp_input(d)[0] != 0)
      return padding;
    decomp_consume(d, 1);
    padding++;
  }
}

/* At a stream boundary: start the next stream, or end. */
static int xz_next_stream(struct decomp *d, struct xz_state *x, struct verr *err)
{
  int64_t padding = xz_skip_padding(d, err);
  if (padding < 0)
    return -1;
  if (padding % 4 != 0)
    return decomp_corrupt(d, err, "stream padding is not a multiple of four bytes");
  int status = decomp_next_stream(d, XZ_MAGIC_LEN, xz_starts_stream, err);
  if (status != CODEC_MORE)
    return status;
  if (xz_start_decoder(d, x, err) < 0) /* reuses the coder's memory */
    return -1;
  x->stream_ended = false;
  return CODEC_MORE;
}

static int xz_error(struct decomp *d, struct xz_state *x, lzma_ret ret, struct verr *err)
{
  switch (ret) {
  case LZMA_MEMLIMIT_ERROR:
    return decomp_memlimit(d, err, lzma_memusage(&x->strm));
  case LZMA_MEM_ERROR:
    return verr_sys(err, VERR_NOMEM, ENOMEM, "liblzma ran out of memory decoding xz data");
  case LZMA_FORMAT_ERROR:
    return decomp_corrupt(d, err, "no xz stream header");
  case LZMA_OPTIONS_ERROR:
    return decomp_corrupt(d, err, "unsupported xz options");
  case LZMA_DATA_ERROR:
    return decomp_corrupt(d, err, "invalid compressed data or integrity check");
  default:
    return verr_set(err, VERR_INTERNAL, "liblzma returned %d decoding xz data: this is a bug",
                    (int)ret);
  }
}

static int xz_step(struct decomp *d, unsigned char *out, size_t len, size_t *produced,
                   struct verr *err)
{
  struct xz_state *x = d->codec_state;
  if (x->stream_ended) {
    int status = xz_next_stream(d, x, err);
    if (status != CODEC_MORE)
      return status;
  }
  size_t avail_in = decomp_avail(d);
  x->strm.next_in = decomp_input(d);
  x->strm.avail_in = avail_in;
  x->strm.next_out = out;
  x->strm.avail_out = len;

  lzma_ret ret = lzma_code(&x->strm, LZMA_RUN);
  decomp_consume(d, avail_in - x->strm.avail_in);
  *produced = len - x->strm.avail_out;

  switch (ret) {
  case LZMA_OK:
  case LZMA_BUF_ERROR: /* no progress possible now: decompress.c decides if that is EOF */
    return CODEC_MORE;
  case LZMA_STREAM_END:
    x->stream_ended = true;
    return CODEC_MORE;
  default:
    return xz_error(d, x, ret, err);
  }
}

static void xz_fini(struct decomp *d)
{
  struct xz_state *x = d->codec_state;
  if (x == NULL)
    return;
  lzma_end(&x->strm);
  free(x);
  d->codec_state = NULL;
}

const struct codec_ops codec_xz = {
  .name = "xz",
  .init = xz_init,
  .step = xz_step,
  .fini = xz_fini,
};
