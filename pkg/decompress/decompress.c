/* vimport decompress: the reader filter, the input buffer and the output bound.
 * The codecs live in codec_*.c; see codec.h for the split. */

#include "decompress.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "core/cleanup.h"

/* A codec that neither consumes nor produces this many times in a row with input
 * available is a bug, not a slow stream. */
#define DECOMP_MAX_STALLS 4

static const struct codec_ops *decomp_codec_of(enum decompress_kind kind)
{
  switch (kind) {
  case DECOMPRESS_GZIP: return &codec_gzip;
  case DECOMPRESS_XZ: return &codec_xz;
  case DECOMPRESS_ZSTD: return &codec_zstd;
  }
  return NULL;
}

const char *decompress_kind_name(enum decompress_kind kind)
{
  const struct codec_ops *codec = decomp_codec_of(kind);
  return codec ? codec->name : "unknown";
}

/* Read more compressed bytes behind the unconsumed ones, compacting the buffer. */
static int decomp_refill(struct decomp *d, struct verr *err)
{
  if (d->in_pos > 0) {
    memmove(d->in, d->in + d->in_pos, decomp_avail(d));
    d->in_len -= d->in_pos;
    d->in_pos = 0;
  }
  if (d->in_len == DECOMPRESS_INPUT_BUFFER || d->lower_eof)
    return 0;
  ssize_t n = d->lower->ops->read(d->lower, d->in + d->in_len,
                                  DECOMPRESS_INPUT_BUFFER - d->in_len, err);
  if (n < 0)
    return -1;
  if (n == 0)
    d->lower_eof = true;
  d->in_len += (size_t)n;
  d->in_total += (uint64_t)n;
  return 0;
}

ssize_t decomp_peek(struct decomp *d, size_t want, struct verr *err)
{
  if (want > DECOMPRESS_INPUT_BUFFER)
    want = DECOMPRESS_INPUT_BUFFER;
  while (decomp_avail(d) < want && !d->lower_eof) {
    if (decomp_refill(d, err) < 0)
      return -1;
  }
  return (ssize_t)decomp_avail(d);
}

int decomp_next_stream(struct decomp *d, size_t magic_len,
                       bool (*starts_stream)(const unsigned char *p, size_t n),
                       struct verr *err)
{
  ssize_t avail = decomp_peek(d, magic_len, err);
  if (avail < 0)
    return -1;
  if (avail == 0)
    return CODEC_END;
  if ((size_t)avail >= magic_len && starts_stream(decomp_input(d), magic_len))
    return CODEC_MORE;
  return verr_set(err, VERR_FORMAT,
                  "the %s data is followed by bytes that are not another %s stream "
                  "(trailing garbage at compressed byte %" PRIu64 "): the file is corrupt "
                  "or something was appended to it; check the source and its checksum",
                  d->codec->name, d->codec->name, decomp_offset(d));
}

int decomp_corrupt(struct decomp *d, struct verr *err, const char *detail)
{
  return verr_set(err, VERR_FORMAT,
                  "the %s data is corrupt near compressed byte %" PRIu64 " (%s): the "
                  "download is damaged or the source is not really %s; check the source "
                  "and its checksum",
                  d->codec->name, decomp_offset(d), detail, d->codec->name);
}

int decomp_memlimit(struct decomp *d, struct verr *err, uint64_t needed)
{
  if (needed > 0)
    return verr_set(err, VERR_FORMAT,
                    "the %s stream needs %" PRIu64 " MiB of decoder memory, more than the "
                    "limit of %" PRIu64 " MiB: raise the decompression memory limit or "
                    "recompress the image with a smaller window",
                    d->codec->name, (needed + (1u << 20) - 1) >> 20, d->opts.memlimit >> 20);
  return verr_set(err, VERR_FORMAT,
                  "the %s stream needs more decoder memory than the limit of %" PRIu64
                  " MiB: raise the decompression memory limit or recompress the image "
                  "with a smaller window",
                  d->codec->name, d->opts.memlimit >> 20);
}

static int decomp_truncated(struct decomp *d, struct verr *err)
{
  return verr_set(err, VERR_SOURCE,
                  "the %s stream ends early, after %" PRIu64 " compressed bytes: the "
                  "download is truncated or corrupt; retry it and check the source checksum",
                  d->codec->name, d->in_total);
}

static int decomp_bomb(struct decomp *d, struct verr *err)
{
  const char *bound = d->opts.max_output_name ? d->opts.max_output_name
                                              : "the configured maximum output";
  return verr_set(err, VERR_FORMAT,
                  "the decompressed %s data is larger than %s (%" PRIu64 " bytes): refusing "
                  "a possible decompression bomb; check that the source is the image you "
                  "meant, or raise the bound",
                  d->codec->name, bound, d->opts.max_output);
}

/* Account for `n` new output bytes against the bound. */
static int decomp_count_output(struct decomp *d, size_t n, struct verr *err)
{
  uint64_t total = d->out_total + n;
  if (d->opts.max_output != 0 && total > d->opts.max_output)
    return decomp_bomb(d, err);
  d->out_total = total;
  return 0;
}

/* One read: step the codec until it produces output, ends, or fails. */
static ssize_t decomp_read_once(struct decomp *d, void *buf, size_t len, struct verr *err)
{
  unsigned stalls = 0;
  for (;;) {
    if (decomp_avail(d) == 0 && !d->lower_eof && decomp_refill(d, err) < 0)
      return -1;
    size_t pos_before = d->in_pos;
    size_t produced = 0;
    int status = d->codec->step(d, buf, len, &produced, err);
    if (status < 0)
      return -1;
    if (produced > 0) {
      if (decomp_count_output(d, produced, err) < 0)
        return -1;
      return (ssize_t)produced;
    }
    if (status == CODEC_END) {
      d->ended = true;
      return 0;
    }
    if (d->in_pos != pos_before) {
      stalls = 0;
      continue;
    }
    if (decomp_avail(d) == 0 && d->lower_eof)
      return decomp_truncated(d, err);
    if (decomp_avail(d) > 0 && ++stalls >= DECOMP_MAX_STALLS)
      return verr_set(err, VERR_INTERNAL,
                      "the %s decoder stopped making progress at compressed byte %" PRIu64
                      ": this is a bug in vimport, please report it with the source image",
                      d->codec->name, decomp_offset(d));
  }
}

static ssize_t decomp_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct decomp *d = r->state;
  if (d->failed) {
    if (err)
      *err = d->failure;
    return -1;
  }
  if (d->ended || len == 0)
    return 0;
  struct verr local;
  struct verr *e = err ? err : &local;
  ssize_t n = decomp_read_once(d, buf, len, e);
  if (n < 0) {
    /* A codec cannot resume after an error, so later reads repeat this one. */
    d->failed = true;
    d->failure = *e;
  }
  return n;
}

static void decomp_free(struct decomp *d)
{
  if (d == NULL)
    return;
  if (d->codec)
    d->codec->fini(d);
  vreader_close(d->lower);
  free(d->in);
  free(d);
}

static void decomp_close(struct vreader *r)
{
  decomp_free(r->state);
  free(r);
}

static const struct vreader_ops decomp_reader_ops = {
  .name  = "decompress",
  .read  = decomp_read,
  .close = decomp_close,
};

int decompress_reader_new_opts(struct vreader *lower, enum decompress_kind kind,
                               const struct decompress_opts *opts, struct vreader **out,
                               struct verr *err)
{
  const struct codec_ops *codec = decomp_codec_of(kind);
  if (codec == NULL) {
    vreader_close(lower);
    return verr_set(err, VERR_USAGE,
                    "unknown compression kind %d: use gzip, xz or zstd", (int)kind);
  }
  struct decomp *d = calloc(1, sizeof *d);
  if (d == NULL) {
    vreader_close(lower);
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the %s decompressor", codec->name);
  }
  d->lower = lower;
  if (opts)
    d->opts = *opts;
  if (d->opts.memlimit == 0)
    d->opts.memlimit = DECOMPRESS_DEFAULT_MEMLIMIT;

  CLEANUP_FREE struct vreader *r = calloc(1, sizeof *r);
  d->in = malloc(DECOMPRESS_INPUT_BUFFER);
  if (r == NULL || d->in == NULL) {
    decomp_free(d);
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the %s decompressor", codec->name);
  }
  d->codec = codec;
  if (codec->init(d, err) < 0) {
    decomp_free(d);
    return -1;
  }
  r->ops = &decomp_reader_ops;
  r->state = d;
  *out = TAKE_PTR(r);
  return 0;
}

int decompress_reader_new(struct vreader *lower, enum decompress_kind kind, uint64_t max_output,
                          struct vreader **out, struct verr *err)
{
  struct decompress_opts opts = { .max_output = max_output };
  return decompress_reader_new_opts(lower, kind, &opts, out, err);
}

uint64_t decompress_reader_output_bytes(const struct vreader *r)
{
  const struct decomp *d = r->state;
  return d->out_total;
}
