/* vimport decompress: zstd with libzstd's streaming API.
 *
 * ZSTD_decompressStream() moves from one frame to the next by itself; we still stop at
 * each frame end to check what follows, so that bytes which are not a frame are named
 * trailing garbage rather than a corrupt frame. The decoder's window, its one large
 * allocation, is capped from the memory limit.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "codec.h"

#define ZSTD_MAGIC_LEN 4

struct zstd_state {
  ZSTD_DCtx *dctx;
  bool frame_ended; /* the previous step finished a frame */
};

/* A zstd frame (28 b5 2f fd) or a skippable frame (5? 2a 4d 18), little-endian magics. */
static bool zstd_starts_frame(const unsigned char *p, size_t n)
{
  if (n < ZSTD_MAGIC_LEN)
    return false;
  if (p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
    return true;
  return (p[0] & 0xf0) == 0x50 && p[1] == 0x2a && p[2] == 0x4d && p[3] == 0x18;
}

/* The largest window log whose window fits in `memlimit`, within libzstd's bounds. */
static int zstd_window_log_for(uint64_t memlimit)
{
  ZSTD_bounds bounds = ZSTD_dParam_getBounds(ZSTD_d_windowLogMax);
  int log = 0;
  while (log < 63 && (UINT64_C(2) << log) <= memlimit)
    log++;
  if (log < bounds.lowerBound)
    log = bounds.lowerBound;
  if (log > bounds.upperBound)
    log = bounds.upperBound;
  return log;
}

static int zstd_init(struct decomp *d, struct verr *err)
{
  struct zstd_state *z = calloc(1, sizeof *z);
  if (z == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the zstd decoder");
  d->codec_state = z;
  z->dctx = ZSTD_createDCtx();
  if (z->dctx == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the zstd decoder");
  size_t ret = ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_windowLogMax,
                                      zstd_window_log_for(d->opts.memlimit));
  if (ZSTD_isError(ret))
    return verr_set(err, VERR_INTERNAL, "setting the zstd window limit failed: %s",
                    ZSTD_getErrorName(ret));
  return 0;
}

static int zstd_error(struct decomp *d, size_t ret, struct verr *err)
{
  switch (ZSTD_getErrorCode(ret)) {
  case ZSTD_error_frameParameter_windowTooLarge:
    return decomp_memlimit(d, err, 0);
  case ZSTD_error_memory_allocation:
    return verr_sys(err, VERR_NOMEM, ENOMEM, "libzstd ran out of memory decoding zstd data");
  default:
    return decomp_corrupt(d, err, ZSTD_getErrorName(ret));
  }
}

static int zstd_step(struct decomp *d, unsigned char *out, size_t len, size_t *produced,
                     struct verr *err)
{
  struct zstd_state *z = d->codec_state;
  if (z->frame_ended) {
    int status = decomp_next_stream(d, ZSTD_MAGIC_LEN, zstd_starts_frame, err);
    if (status != CODEC_MORE)
      return status;
    z->frame_ended = false;
  }
  ZSTD_inBuffer in = { .src = decomp_input(d), .size = decomp_avail(d), .pos = 0 };
  ZSTD_outBuffer outb = { .dst = out, .size = len, .pos = 0 };

  size_t ret = ZSTD_decompressStream(z->dctx, &outb, &in);
  decomp_consume(d, in.pos);
  *produced = outb.pos;
  if (ZSTD_isError(ret))
    return zstd_error(d, ret, err);
  if (ret == 0) /* frame decoded and fully flushed */
    z->frame_ended = true;
  return CODEC_MORE;
}

static void zstd_fini(struct decomp *d)
{
  struct zstd_state *z = d->codec_state;
  if (z == NULL)
    return;
  ZSTD_freeDCtx(z->dctx);
  free(z);
  d->codec_state = NULL;
}

const struct codec_ops codec_zstd = {
  .name = "zstd",
  .init = zstd_init,
  .step = zstd_step,
  .fini = zstd_fini,
};
