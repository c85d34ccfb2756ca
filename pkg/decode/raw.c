/* vimport decode: the rows of raw content, a stream (pkg/raw) or a blank image. */
#include "decode.h"

#include "core/log.h"
#include "raw/raw.h"

static bool raw_accepts(const struct sniff_result *s) { return s->format == SNIFF_FORMAT_RAW; }

static int raw_run(const struct decode_ctx *ctx, struct vsink *out, struct decode_result *res,
                   struct verr *err)
{
  /* An unwrapped source with a known length is its own size: refuse it before the first
   * write rather than when the writes reach the end of the device. */
  if (ctx->stream_length > 0 && ctx->fit(ctx->fit_opaque, ctx->stream_length, err) < 0)
    return -1;
  bool vhd_footer = false;
  if (raw_decode(ctx->in, ctx->zeros, out, ctx->block_hash->block_size, ctx->capacity,
                 &res->size, &vhd_footer, err) < 0)
    return -1;
  if (vhd_footer) {
    res->format = "vhd";
    vlog_info("raw", "the stream ended with a fixed-VHD footer: %llu guest bytes, footer dropped",
              (unsigned long long)res->size);
  }
  return 0;
}

/* A blank image: zeros of the requested size. */
static int blank_run(const struct decode_ctx *ctx, struct vsink *out, struct decode_result *res,
                     struct verr *err)
{
  if (ctx->fit(ctx->fit_opaque, ctx->blank_size, err) < 0 ||
      vsink_zero(out, 0, ctx->blank_size, err) < 0)
    return -1;
  res->size = ctx->blank_size;
  return 0;
}

const struct decoder raw_decoder = {
  .name        = "raw",
  .accepts     = raw_accepts,
  .decode      = raw_run,
  .guest_order = true,
  .input       = DECODER_INPUT_STREAM,
  .size        = DECODER_SIZE_AT_END,
};

const struct decoder blank_decoder = {
  .name        = "blank",
  .accepts     = NULL,
  .decode      = blank_run,
  .guest_order = true,
  .input       = DECODER_INPUT_NONE,
  .size        = DECODER_SIZE_AT_OPEN,
};
