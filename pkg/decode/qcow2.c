/* vimport decode: the qcow2 row. One streaming pass, out of guest order (pkg/qcow2);
 * clusters that arrive before their tables and do not fit the window are re-read
 * through ctx->pread: the source by range, or the pipeline's scratch spill, which
 * ctx->spill fills with exactly those clusters. */
#include "decode.h"

#include "core/log.h"
#include "qcow2/qcow2.h"

static bool qcow2_accepts(const struct sniff_result *s) { return s->format == SNIFF_FORMAT_QCOW2; }

static int qcow2_run(const struct decode_ctx *ctx, struct vsink *out, struct decode_result *res,
                     struct verr *err)
{
  struct qcow2_stream_opts opts = {
    .window_bytes = ctx->window_bytes,
    .pread = ctx->pread,
    .spill = ctx->spill,
    .pread_opaque = ctx->pread_opaque,
    .threads = ctx->block_hash->threads,
    .block_hash = ctx->block_hash,
  };
  struct qcow2_info info = { 0 };
  int r = qcow2_stream_decode(ctx->in, out, &opts, &info, err);
  vlog_info("qcow2", "v%u, cluster %u, %llu data bytes, %llu zero bytes; window peak %llu bytes, "
            "%llu clusters let go once used, %llu clusters dropped, %llu bytes re-read",
            info.version, info.cluster_size, (unsigned long long)info.data_bytes,
            (unsigned long long)info.zero_bytes, (unsigned long long)info.window_peak_bytes,
            (unsigned long long)info.used_clusters, (unsigned long long)info.dropped_clusters,
            (unsigned long long)info.reread_bytes);
  res->size = ctx->sniff->virtual_size;
  return r;
}

const struct decoder qcow2_decoder = {
  .name        = "qcow2",
  .accepts     = qcow2_accepts,
  .decode      = qcow2_run,
  .guest_order = false,
  .input       = DECODER_INPUT_REREAD,
  .size        = DECODER_SIZE_SNIFFED,
};
