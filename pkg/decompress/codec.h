/* vimport decompress, internal: what decompress.c shares with the codec files.
 * Not part of the stage's contract; only the .c files of pkg/decompress include it.
 *
 * decompress.c owns the input buffer, the output bound and the reader interface. A
 * codec (codec_gzip.c, codec_xz.c, codec_zstd.c) only turns buffered input into output
 * and says where streams end; it consumes input with decomp_consume() and looks ahead
 * across buffer refills with decomp_peek().
 */
#ifndef VIMPORT_DECOMPRESS_CODEC_H
#define VIMPORT_DECOMPRESS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"
#include "core/stream.h"
#include "decompress.h"

struct decomp;

enum codec_status {
  CODEC_MORE = 0, /* call again (more output, more input, or the next stream follows) */
  CODEC_END = 1,  /* the last stream ended and nothing follows it */
};

struct codec_ops {
  const char *name; /* "gzip": used in every message */
  /* Set up d->codec_state. */
  int (*init)(struct decomp *d, struct verr *err);
  /* Decode buffered input into out[0..len), setting *produced. Returns enum
   * codec_status or -1 with err filled. Must not report the end of the input as an
   * error: decompress.c sees a step that makes no progress at EOF as truncation. */
  int (*step)(struct decomp *d, unsigned char *out, size_t len, size_t *produced,
              struct verr *err);
  /* Free d->codec_state (may be NULL after a failed init). */
  void (*fini)(struct decomp *d);
};

extern const struct codec_ops codec_gzip;
extern const struct codec_ops codec_xz;
extern const struct codec_ops codec_zstd;

struct decomp {
  struct vreader *lower; /* owned */
  const struct codec_ops *codec;
  void *codec_state; /* owned by the codec */
  struct decompress_opts opts;

  unsigned char *in; /* owned, DECOMPRESS_INPUT_BUFFER bytes */
  size_t in_pos;     /* next unconsumed byte */
  size_t in_len;     /* bytes valid in `in` */
  bool lower_eof;
  uint64_t in_total; /* compressed bytes read from lower so far */

  uint64_t out_total; /* decompressed bytes handed to the caller */
  bool ended;
  bool failed;
  struct verr failure; /* replayed on every read after a failure */
};

static inline const unsigned char *decomp_input(const struct decomp *d)
{
  return d->in + d->in_pos;
}

static inline size_t decomp_avail(const struct decomp *d)
{
  return d->in_len - d->in_pos;
}

static inline void decomp_consume(struct decomp *d, size_t n)
{
  d->in_pos += n;
}

/* Offset in the compressed stream of the next unconsumed byte (for messages). */
static inline uint64_t decomp_offset(const struct decomp *d)
{
  return d->in_total - decomp_avail(d);
}

/* Make at least `want` (<= DECOMPRESS_INPUT_BUFFER) bytes available unless the input ends
 * first. Returns the bytes available, or -1 with err filled if the lower reader fails. */
ssize_t decomp_peek(struct decomp *d, size_t want, struct verr *err);

/* After a complete stream: decide whether another one follows. Returns CODEC_END at the
 * end of the input, CODEC_MORE when `starts_stream` accepts the bytes ahead, or -1 with
 * a trailing-garbage error. `starts_stream` sees up to `magic_len` bytes. */
int decomp_next_stream(struct decomp *d, size_t magic_len,
                       bool (*starts_stream)(const unsigned char *p, size_t n),
                       struct verr *err);

/* Fill err with "the <format> data is corrupt ..." (VERR_FORMAT) and return -1. */
int decomp_corrupt(struct decomp *d, struct verr *err, const char *detail);

/* Fill err with a decoder-memory-limit error (VERR_FORMAT) and return -1. */
int decomp_memlimit(struct decomp *d, struct verr *err, uint64_t needed);

#endif
