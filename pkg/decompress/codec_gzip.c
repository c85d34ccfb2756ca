/* vimport decompress: gzip with ISA-L's inflate (igzip).
 *
 * ISA-L inflates the same deflate data as zlib in about 40% of zlib's CPU time on this
 * project's images (W1's containerDisk layer: 2.6 s of zlib, 1.1 s here), and inflating
 * is what a registry import spends most on after SHA-256. zlib stays for qcow2's
 * compressed clusters (pkg/qcow2, beside libdeflate) and the gzip writer of the tests.
 *
 * A gzip file may hold several members back to back (`cat a.gz b.gz`, pigz, bgzip);
 * `gzip -d` outputs them all, and so do we: at each member end we look at the next
 * bytes and start over if they are another gzip header. Anything else after a member
 * is refused -- `gzip -d` only warns about it, but a disk image with bytes of unknown
 * origin behind it is not one we want to write.
 *
 * ISA-L parses the header and checks the CRC-32 and length of each member (ISAL_GZIP).
 * With skip_gzip_crc the header is parsed by isal_read_gzip_header(), the deflate data
 * inflated raw (no CRC computed) and the 8-byte trailer read past unchecked.
 */

#include <errno.h>
#include <isa-l/igzip_lib.h>
#include <stdbool.h>
#include <stdlib.h>

#include "codec.h"

#define GZIP_TRAILER 8 /* CRC-32 and ISIZE, little-endian */

enum gzip_phase {
  GZIP_HEADER,  /* skip_gzip_crc only: the member's header, parsed by us */
  GZIP_DEFLATE, /* the deflate data (with ISAL_GZIP: header and trailer too) */
  GZIP_TRAILER_SKIP, /* skip_gzip_crc only: the trailer, read past */
  GZIP_ENDED,   /* the member ended: another may follow */
};

struct gzip_state {
  struct inflate_state st;
  struct isal_gzip_header hdr; /* skip_gzip_crc: fields not kept (no buffers) */
  enum gzip_phase phase;
  size_t trailer_left;
  bool flags_checked; /* this member's FLG byte was looked at */
};

static bool gzip_starts_member(const unsigned char *p, size_t n)
{
  return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

/* Ready for a member from its first byte. */
static void gzip_member_start(struct decomp *d, struct gzip_state *g)
{
  isal_inflate_reset(&g->st);
  g->flags_checked = false;
  if (d->opts.skip_gzip_crc) {
    isal_gzip_header_init(&g->hdr);
    g->st.crc_flag = ISAL_DEFLATE;
    g->phase = GZIP_HEADER;
  } else {
    g->st.crc_flag = ISAL_GZIP;
    g->phase = GZIP_DEFLATE;
  }
}

static int gzip_init(struct decomp *d, struct verr *err)
{
  struct gzip_state *g = calloc(1, sizeof *g);
  if (g == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the gzip decoder");
  d->codec_state = g;
  isal_inflate_init(&g->st);
  gzip_member_start(d, g);
  return 0;
}

/* ISA-L's verdict on bad data, in the words `gzip -d` users know. */
static int gzip_failed(struct decomp *d, int ret, struct verr *err)
{
  switch (ret) {
  case ISAL_INVALID_BLOCK:
  case ISAL_INVALID_SYMBOL:
  case ISAL_INVALID_LOOKBACK:
    return decomp_corrupt(d, err, "invalid deflate data");
  case ISAL_INVALID_WRAPPER:
    return decomp_corrupt(d, err, "not a valid gzip header");
  case ISAL_UNSUPPORTED_METHOD:
    return decomp_corrupt(d, err, "unknown compression method in the gzip header");
  case ISAL_INCORRECT_CHECKSUM:
    return decomp_corrupt(d, err, "the CRC-32 or length in the gzip trailer does not match");
  case ISAL_NEED_DICT:
    return decomp_corrupt(d, err, "the deflate data needs a preset dictionary");
  default:
    return verr_set(err, VERR_INTERNAL, "ISA-L inflate returned %d: this is a bug", ret);
  }
}

/* ISA-L ignores the reserved bits of a member's FLG byte; zlib and `gzip -d` refuse a
 * header that sets them (RFC 1952: they must be zero), and so do we. */
static int gzip_check_flags(struct decomp *d, struct gzip_state *g, struct verr *err)
{
  ssize_t n = decomp_peek(d, 4, err);
  if (n < 0)
    return -1;
  if (n < 4)
    return 0; /* the input ends inside the header: ISA-L's truncation */
  g->flags_checked = true;
  if (decomp_input(d)[3] & 0xe0)
    return decomp_corrupt(d, err, "the gzip header sets reserved flags (RFC 1952 bits 5-7)");
  return 0;
}

/* One call of ISA-L on the buffered input (the header or the deflate data). */
static int gzip_run(struct decomp *d, struct gzip_state *g, unsigned char *out, size_t len,
                    size_t *produced, struct verr *err)
{
  size_t avail_in = decomp_avail(d);
  /* ISA-L counts in uint32_t; clamp instead of wrapping for huge caller buffers. */
  uint32_t in_chunk = avail_in > UINT32_MAX ? UINT32_MAX : (uint32_t)avail_in;
  uint32_t out_chunk = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
  g->st.next_in = (uint8_t *)decomp_input(d);
  g->st.avail_in = in_chunk;
  g->st.next_out = out;
  g->st.avail_out = out_chunk;
  int ret = g->phase == GZIP_HEADER ? isal_read_gzip_header(&g->st, &g->hdr)
                                    : isal_inflate(&g->st);
  decomp_consume(d, in_chunk - g->st.avail_in);
  *produced = out_chunk - g->st.avail_out;
  if (g->phase == GZIP_HEADER) {
    if (ret == ISAL_DECOMP_OK)
      g->phase = GZIP_DEFLATE;
    return ret == ISAL_DECOMP_OK || ret == ISAL_END_INPUT ? CODEC_MORE : gzip_failed(d, ret, err);
  }
  if (ret != ISAL_DECOMP_OK)
    return gzip_failed(d, ret, err);
  if (g->st.block_state == ISAL_BLOCK_FINISH && d->opts.skip_gzip_crc) {
    /* Raw deflate leaves what ISA-L read past the last block in its bit buffer: whole
     * bytes there are the trailer's first (at most 8: the buffer holds 64 bits). */
    size_t held = g->st.read_in_length > 0 ? (size_t)g->st.read_in_length / 8 : 0;
    g->trailer_left = GZIP_TRAILER - (held < GZIP_TRAILER ? held : GZIP_TRAILER);
    g->phase = GZIP_TRAILER_SKIP;
  } else if (g->st.block_state == ISAL_BLOCK_FINISH) {
    g->phase = GZIP_ENDED;
  }
  return CODEC_MORE;
}

static int gzip_step(struct decomp *d, unsigned char *out, size_t len, size_t *produced,
                     struct verr *err)
{
  struct gzip_state *g = d->codec_state;
  *produced = 0;
  if (g->phase == GZIP_TRAILER_SKIP) {
    size_t n = decomp_avail(d) < g->trailer_left ? decomp_avail(d) : g->trailer_left;
    decomp_consume(d, n);
    g->trailer_left -= n;
    if (g->trailer_left > 0)
      return CODEC_MORE;
    g->phase = GZIP_ENDED;
  }
  if (g->phase == GZIP_ENDED) {
    int status = decomp_next_stream(d, 2, gzip_starts_member, err);
    if (status != CODEC_MORE)
      return status;
    gzip_member_start(d, g);
  }
  if (!g->flags_checked && gzip_check_flags(d, g, err) < 0)
    return -1;
  return gzip_run(d, g, out, len, produced, err);
}

static void gzip_fini(struct decomp *d)
{
  free(d->codec_state);
  d->codec_state = NULL;
}

const struct codec_ops codec_gzip = {
  .name = "gzip",
  .init = gzip_init,
  .step = gzip_step,
  .fini = gzip_fini,
};
