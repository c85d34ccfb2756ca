/* vimport decode: the rows of the block-table formats that keep their tables ahead of
 * their data (streamOptimized vmdk, dynamic vhd, vdi): they stream like qcow2, in one
 * pass with no copy on disk, and say the exact guest size (qemu's rules: a vhd's CHS
 * geometry can exceed its footer's size) only at their end. */
#include "decode.h"

#include <string.h>

#include "core/log.h"
#include "vdi/vdi.h"
#include "vhd/vhd.h"
#include "vmdk/vmdk.h"

static bool vmdk_accepts(const struct sniff_result *s)
{
  return s->format == SNIFF_FORMAT_VMDK && strcmp(s->subformat, "streamOptimized") == 0;
}

static bool vhd_accepts(const struct sniff_result *s)
{
  return s->format == SNIFF_FORMAT_VHD && strcmp(s->subformat, "dynamic") == 0;
}

static bool vdi_accepts(const struct sniff_result *s) { return s->format == SNIFF_FORMAT_VDI; }

/* `r` is the decoder's return; `size` its info's virtual size, read only after it ran. */
static int streamed(int r, const uint64_t *size, const char *name, const struct decode_ctx *ctx,
                    struct decode_result *res)
{
  if (r < 0)
    return -1;
  res->size = *size;
  if (!ctx->quiet)
    vlog_info("decode", "%s streamed in one pass: %llu guest bytes", name,
              (unsigned long long)res->size);
  return 0;
}

static int vmdk_run(const struct decode_ctx *ctx, struct vsink *out, struct decode_result *res,
                    struct verr *err)
{
  struct vmdk_info info = { 0 };
  return streamed(vmdk_stream_decode(ctx->in, out, NULL, &info, err), &info.virtual_size, "vmdk", ctx,
                  res);
}

static int vhd_run(const struct decode_ctx *ctx, struct vsink *out, struct decode_result *res,
                   struct verr *err)
{
  struct vhd_info info = { 0 };
  return streamed(vhd_stream_decode(ctx->in, out, NULL, &info, err), &info.virtual_size, "vhd", ctx,
                  res);
}

static int vdi_run(const struct decode_ctx *ctx, struct vsink *out, struct decode_result *res,
                   struct verr *err)
{
  struct vdi_info info = { 0 };
  return streamed(vdi_stream_decode(ctx->in, out, NULL, &info, err), &info.virtual_size, "vdi", ctx,
                  res);
}

const struct decoder vmdk_decoder = {
  .name        = "vmdk",
  .accepts     = vmdk_accepts,
  .decode      = vmdk_run,
  .guest_order = false,
  .input       = DECODER_INPUT_STREAM,
  .size        = DECODER_SIZE_AT_END,
};

const struct decoder vhd_decoder = {
  .name        = "vhd",
  .accepts     = vhd_accepts,
  .decode      = vhd_run,
  .guest_order = false,
  .input       = DECODER_INPUT_STREAM,
  .size        = DECODER_SIZE_AT_END,
};

const struct decoder vdi_decoder = {
  .name        = "vdi",
  .accepts     = vdi_accepts,
  .decode      = vdi_run,
  .guest_order = false,
  .input       = DECODER_INPUT_STREAM,
  .size        = DECODER_SIZE_AT_END,
};
