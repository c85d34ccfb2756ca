/* vimport decode: the decoder table. Every kind of guest content vimport imports is one
 * row, a `struct decoder` with the same few members, in the style of nbdkit's plugins:
 *
 *   row                 accepts (sniffed)              order  input   size known
 *   raw_decoder         raw                            guest  stream  at the end
 *   qcow2_decoder       qcow2                          any    reread  sniffed
 *   vmdk_decoder        vmdk streamOptimized           any    stream  at the end
 *   vhd_decoder         vhd dynamic                    any    stream  at the end
 *   vdi_decoder         vdi                            any    stream  at the end
 *   qemu_decoder        vmdk, vhd, vhdx (the rest)     guest  file    at open
 *   nbd_export_decoder  (an NBD source, not sniffed)   guest  none    at open
 *   blank_decoder       (a blank image, not sniffed)   guest  none    at open
 *
 * decoder_for() picks the row of a sniff result. The pipeline drives the row: it prepares
 * the input the row declares, fits the target to the guest size, builds the write-time
 * block hash (ordered for rows that emit in guest order, unordered for the rest) and the
 * one tee that feeds it beside the target, and hands the row that tee as `out`. A row
 * only turns its input into guest extents on `out` (core/stream.h: each guest byte
 * exactly once) and says what it found in `struct decode_result`.
 *
 * Dependencies run one way: pkg/pipeline -> pkg/decode -> pkg/raw, pkg/qcow2, pkg/vmdk,
 * pkg/vhd, pkg/vdi, pkg/nbd (-> pkg/blocktable) -> pkg/core. Nothing here includes
 * pkg/pipeline: what a row needs of the import comes in `struct decode_ctx`, and the one
 * thing a row tells the import while it runs, the guest size, goes through ctx->fit.
 */
#ifndef VIMPORT_DECODE_H
#define VIMPORT_DECODE_H

#include <stdbool.h>
#include <stdint.h>

#include "blkhash/blkhash.h"
#include "core/error.h"
#include "core/stream.h"
#include "sniff/sniff.h"

/* What a row reads. */
enum decoder_input {
  DECODER_INPUT_STREAM, /* ctx->in, once, in order, to its end */
  DECODER_INPUT_REREAD, /* ctx->in, plus ctx->pread for bytes already passed (when set) */
  DECODER_INPUT_FILE,   /* ctx->file, a complete local copy (ctx->in was read to its end) */
  DECODER_INPUT_NONE,   /* no source stream: an NBD export (ctx->nbd_uri) or nothing */
};

/* When a row knows the guest size, which decides when the pipeline fits the target. */
enum decoder_size {
  DECODER_SIZE_SNIFFED, /* the sniffed virtual size is the guest size: fitted before */
  DECODER_SIZE_AT_END,  /* only at the end (res->size): fitted after; until then the
                         * target's capacity bounds the writes and the hash */
  DECODER_SIZE_AT_OPEN, /* the row calls ctx->fit before its first extent */
};

typedef int decode_pread_fn(void *opaque, void *buf, size_t len, uint64_t off, struct verr *err);

struct decode_ctx {
  struct vreader *in;         /* the content (after decompression); borrowed */
  struct vzeros zeros;        /* views of `in` inside it are zeros (raw) */
  uint64_t stream_length;     /* the bytes `in` will give, when the source says; else 0 */
  uint64_t capacity;          /* the target's capacity: no guest byte goes past it */
  const struct sniff_result *sniff;
  decode_pread_fn *pread;     /* DECODER_INPUT_REREAD: re-read passed bytes; NULL: cannot */
  /* With pread, for a source that cannot be re-read: keep bytes the decoder is about to
   * let go of and may need again, where pread finds them (the scratch spill). NULL: pread
   * re-reads the source itself. */
  int (*spill)(void *opaque, const void *buf, size_t len, uint64_t off, struct verr *err);
  void *pread_opaque;
  const char *file;           /* DECODER_INPUT_FILE */
  const char *nbd_uri;        /* nbd_export_decoder */
  uint64_t blank_size;        /* blank_decoder */
  uint64_t window_bytes;      /* qcow2: the reorder window (0: its default) */
  const struct blkhash_opts *block_hash; /* the write-time hash's options (block size) */
  bool quiet;                 /* log nothing (vimport sum: its stderr is blksum's) */
  /* The guest size is `size` bytes: fails with VERR_TARGET_TOO_SMALL unless the target
   * holds them, and sizes a file target to them. */
  int (*fit)(void *opaque, uint64_t size, struct verr *err);
  void *fit_opaque;
};

struct decode_result {
  uint64_t size;            /* guest bytes; set as far as the row got */
  const char *format;       /* the format found, when not the sniffed one; else NULL */
  char source_digest[160];  /* "sha256:<hex>" of content with no source stream; else "" */
  uint64_t source_bytes;    /* bytes read, for content with no source stream */
};

struct decoder {
  const char *name;
  /* Whether the row decodes what the sniff found; NULL: never picked by a sniff. */
  bool (*accepts)(const struct sniff_result *s);
  int (*decode)(const struct decode_ctx *ctx, struct vsink *out, struct decode_result *res,
                struct verr *err);
  bool guest_order; /* extents come in rising guest offsets: an ordered block hash */
  enum decoder_input input;
  enum decoder_size size;
};

extern const struct decoder raw_decoder;
extern const struct decoder qcow2_decoder;
extern const struct decoder vmdk_decoder;
extern const struct decoder vhd_decoder;
extern const struct decoder vdi_decoder;
extern const struct decoder qemu_decoder;
extern const struct decoder nbd_export_decoder;
extern const struct decoder blank_decoder;

/* The first row of the table that accepts `s`; NULL when none does. */
const struct decoder *decoder_for(const struct sniff_result *s);

#endif
