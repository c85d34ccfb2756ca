/* vimport qcow2: decompress one cluster, deflate (raw, no zlib header) or zstd.
 *
 * Deflate goes through libdeflate first: a cluster is a whole buffer in and a whole
 * buffer out, which is what libdeflate is built for, and it inflates about twice as fast
 * as zlib (W2 in docs/benchmarks.md). Only a clean result (the stream ends having filled
 * the cluster exactly) is taken from it; anything else is decided by zlib with qemu's
 * own rule, so what is accepted, and every error message, stays qemu's. Both decoders
 * produce the same bytes for a stream that both accept (fuzz_inflate checks this). */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>

#include "core/cleanup.h"

struct qcow2_inflater {
  int zstd;
  struct libdeflate_decompressor *fast;
  z_stream zs;
  int zs_ready;
  ZSTD_DCtx *dctx;
};

int qcow2_inflater_new(const struct qcow2_layout *lay, struct qcow2_inflater **out,
                       struct verr *err)
{
  CLEANUP_FREE struct qcow2_inflater *z = calloc(1, sizeof *z);
  if (z == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the qcow2 decompressor");
  z->zstd = lay->zstd;
  if (z->zstd) {
    z->dctx = ZSTD_createDCtx();
    if (z->dctx == NULL)
      return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the zstd decompressor");
  } else {
    z->fast = libdeflate_alloc_decompressor();
    if (z->fast == NULL)
      return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the deflate decompressor");
    /* negative window bits: raw deflate, as qemu writes it (no zlib header) */
    if (inflateInit2(&z->zs, -12) != Z_OK)
      return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the deflate decompressor");
    z->zs_ready = 1;
  }
  *out = TAKE_PTR(z);
  return 0;
}

void qcow2_inflater_free(struct qcow2_inflater *z)
{
  if (z == NULL)
    return;
  if (z->zs_ready)
    inflateEnd(&z->zs);
  if (z->fast != NULL)
    libdeflate_free_decompressor(z->fast);
  ZSTD_freeDCtx(z->dctx);
  free(z);
}

static int bad_cluster(uint64_t host, const char *how, struct verr *err)
{
  return verr_set(err, VERR_FORMAT,
                  "qcow2 compressed cluster at offset 0x%" PRIx64 " could not be "
                  "decompressed (%s): the image is damaged; try `qemu-img check`",
                  host, how);
}

static int inflate_deflate(struct qcow2_inflater *z, const void *in, size_t in_len, void *out,
                           size_t out_len, uint64_t host, size_t *consumed, struct verr *err)
{
  size_t got = 0, used = 0;
  if (libdeflate_deflate_decompress_ex(z->fast, in, in_len, out, out_len, &used, &got) ==
          LIBDEFLATE_SUCCESS && got == out_len) {
    *consumed = used;
    return 0;
  }
  /* short, long, truncated or damaged: qemu's zlib rule decides */
  if (inflateReset(&z->zs) != Z_OK)
    return bad_cluster(host, "inflateReset failed", err);
  z->zs.next_in = (Bytef *)(uintptr_t)in;
  z->zs.avail_in = (uInt)in_len;
  z->zs.next_out = out;
  z->zs.avail_out = (uInt)out_len;
  int ret = inflate(&z->zs, Z_FINISH);
  /* like qemu: a full cluster of output is success, trailing input is padding. Only a
   * stream that ended says where it ended: zlib may have read ahead of an unfinished one. */
  if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && z->zs.avail_out == 0) {
    if (ret == Z_STREAM_END)
      *consumed = in_len - z->zs.avail_in;
    return 0;
  }
  return bad_cluster(host, ret == Z_DATA_ERROR ? "invalid deflate data" : "short output", err);
}

static int inflate_zstd(struct qcow2_inflater *z, const void *in, size_t in_len, void *out,
                        size_t out_len, uint64_t host, size_t *consumed, struct verr *err)
{
  ZSTD_DCtx_reset(z->dctx, ZSTD_reset_session_only);
  ZSTD_inBuffer input = { in, in_len, 0 };
  ZSTD_outBuffer output = { out, out_len, 0 };
  size_t ret = 1;
  while (output.pos < output.size) {
    size_t in_before = input.pos, out_before = output.pos;
    ret = ZSTD_decompressStream(z->dctx, &output, &input);
    if (ZSTD_isError(ret))
      return bad_cluster(host, ZSTD_getErrorName(ret), err);
    if (input.pos == in_before && output.pos == out_before)
      return bad_cluster(host, "short output", err);
  }
  if (ret == 0) /* the frame ended: its last byte is known */
    *consumed = input.pos;
  return 0;
}

int qcow2_inflate(struct qcow2_inflater *z, const void *in, size_t in_len, void *out,
                  size_t out_len, uint64_t host, size_t *consumed, struct verr *err)
{
  size_t ignored;
  if (consumed == NULL)
    consumed = &ignored;
  *consumed = 0;
  if (z->zstd)
    return inflate_zstd(z, in, in_len, out, out_len, host, consumed, err);
  return inflate_deflate(z, in, in_len, out, out_len, host, consumed, err);
}
