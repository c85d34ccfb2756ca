/* vimport decompress: gzip with zlib.
 *
 * A gzip file may hold several members back to back (`cat a.gz b.gz`, pigz, bgzip);
 * `gzip -d` outputs them all, and so do we: at each member end we look at the next
 * bytes and start over if they are another gzip header. Anything else after a member
 * is refused -- `gzip -d` only warns about it, but a disk image with bytes of unknown
 * origin behind it is not one we want to write.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <zlib.h>

#include "codec.h"

struct gzip_state {
  z_stream strm;
  bool initialised;
  bool member_ended; /* the previous step finished a member */
};

static bool gzip_starts_member(const unsigned char *p, size_t n)
{
  return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

static int gzip_init(struct decomp *d, struct verr *err)
{
  struct gzip_state *g = calloc(1, sizeof *g);
  if (g == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the gzip decoder");
  d->codec_state = g;
  /* 16 + MAX_WBITS: gzip wrapper only, so zlib or raw deflate data is "corrupt". */
  int ret = inflateInit2(&g->strm, 16 + MAX_WBITS);
  if (ret != Z_OK)
    return verr_set(err, ret == Z_MEM_ERROR ? VERR_NOMEM : VERR_INTERNAL,
                    "initialising zlib failed (%s): out of memory or a broken zlib",
                    g->strm.msg ? g->strm.msg : zError(ret));
  g->initialised = true;
  /* kept by inflateReset() between members */
  if (d->opts.skip_gzip_crc && inflateValidate(&g->strm, 0) != Z_OK)
    return verr_set(err, VERR_INTERNAL, "zlib refused inflateValidate(): a broken zlib");
  return 0;
}

/* At a member boundary: start the next member, or end. */
static int gzip_next_member(struct decomp *d, struct gzip_state *g, struct verr *err)
{
  int status = decomp_next_stream(d, 2, gzip_starts_member, err);
  if (status != CODEC_MORE)
    return status;
  if (inflateReset(&g->strm) != Z_OK)
    return verr_set(err, VERR_INTERNAL, "resetting zlib between gzip members failed");
  g->member_ended = false;
  return CODEC_MORE;
}

static int gzip_step(struct decomp *d, unsigned char *out, size_t len, size_t *produced,
                     struct verr *err)
{
  struct gzip_state *g = d->codec_state;
  if (g->member_ended) {
    int status = gzip_next_member(d, g, err);
    if (status != CODEC_MORE)
      return status;
  }
  size_t avail_in = decomp_avail(d);
  /* zlib counts in uInt; clamp instead of wrapping for huge caller buffers. */
  uInt in_chunk = avail_in > UINT32_MAX ? UINT32_MAX : (uInt)avail_in;
  uInt out_chunk = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
  g->strm.next_in = (Bytef *)decomp_input(d);
  g->strm.avail_in = in_chunk;
  g->strm.next_out = out;
  g->strm.avail_out = out_chunk;

  int ret = inflate(&g->strm, Z_NO_FLUSH);
  decomp_consume(d, in_chunk - g->strm.avail_in);
  *produced = out_chunk - g->strm.avail_out;

  switch (ret) {
  case Z_OK:
  case Z_BUF_ERROR: /* no progress possible now: needs input or output space */
    return CODEC_MORE;
  case Z_STREAM_END:
    g->member_ended = true;
    return CODEC_MORE;
  case Z_DATA_ERROR:
    return decomp_corrupt(d, err, g->strm.msg ? g->strm.msg : "invalid deflate data");
  case Z_MEM_ERROR:
    return verr_sys(err, VERR_NOMEM, ENOMEM, "zlib ran out of memory decoding gzip data");
  default:
    return verr_set(err, VERR_INTERNAL, "zlib inflate returned %d (%s): this is a bug",
                    ret, g->strm.msg ? g->strm.msg : zError(ret));
  }
}

static void gzip_fini(struct decomp *d)
{
  struct gzip_state *g = d->codec_state;
  if (g == NULL)
    return;
  if (g->initialised)
    inflateEnd(&g->strm);
  free(g);
  d->codec_state = NULL;
}

const struct codec_ops codec_gzip = {
  .name = "gzip",
  .init = gzip_init,
  .step = gzip_step,
  .fini = gzip_fini,
};
