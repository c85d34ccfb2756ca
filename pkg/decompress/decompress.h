/* vimport decompress: streaming decompression as a vreader filter.
 *
 *   lower reader (compressed bytes, in order) -> decompress reader (plain bytes)
 *
 * One reader per compressed source, like an nbdkit filter: it owns the reader below it
 * and closes it when closed. Supported: gzip (ISA-L's igzip inflate; multi-member files
 * as `gzip -d` reads them), xz (liblzma; concatenated streams and stream padding), zstd (libzstd
 * streaming API; several frames, skippable frames).
 *
 * What the reader refuses, each with one sentence naming the cause and what to do:
 *   - input that ends inside a compressed stream: VERR_SOURCE ("truncated download");
 *   - bytes after the last complete stream that do not start another one: VERR_FORMAT;
 *   - corrupt data (bad header, CRC, block): VERR_FORMAT, naming the format;
 *   - more output than `max_output`: VERR_FORMAT, a decompression bomb, naming the bound;
 *   - an xz/zstd stream that needs more decoder memory than `memlimit`: VERR_FORMAT.
 *
 * Memory is bounded by the options, never by the image: one input buffer
 * (DECOMPRESS_INPUT_BUFFER bytes) plus the codec state (gzip: ~90 KiB; xz and zstd: at
 * most `memlimit`). Output goes straight into the caller's buffer. Multi-block xz (what
 * `xz -T` writes) is decoded on one thread per CPU while that fits in half of
 * `memlimit` (at most 64 MiB), else on one thread.
 */
#ifndef VIMPORT_DECOMPRESS_H
#define VIMPORT_DECOMPRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"

enum decompress_kind {
  DECOMPRESS_GZIP,
  DECOMPRESS_XZ,
  DECOMPRESS_ZSTD,
};

#define DECOMPRESS_INPUT_BUFFER (1024u * 1024u)

/* Default decoder memory limit for xz and zstd. xz -9 needs 65 MiB and zstd's default
 * window limit is 128 MiB; CDI's importer pod has 600M for everything. */
#define DECOMPRESS_DEFAULT_MEMLIMIT (128u * 1024u * 1024u)

struct decompress_opts {
  /* Stop with an error once the output would exceed this many bytes. 0 = unbounded. */
  uint64_t max_output;
  /* Names the bound in the error, e.g. "the target size" or "the virtual size".
   * NULL means "the configured maximum output". The caller keeps the string; it must
   * live as long as the reader. */
  const char *max_output_name;
  /* Decoder memory limit in bytes for xz and zstd (zstd rounds it down to a power of
   * two, at least 1 KiB). 0 means DECOMPRESS_DEFAULT_MEMLIMIT. */
  uint64_t memlimit;
  /* The compressed bytes are checked against a digest of their own before anything
   * trusts the output (a registry blob against its descriptor): gzip then neither
   * computes nor checks its CRC-32 of the output (with zlib that was 14% of the time
   * of inflating W1's containerDisk layer). xz and zstd check as always. */
  bool skip_gzip_crc;
};

/* Create a reader that decompresses `lower`. `max_output` as in decompress_opts; the
 * other options take their defaults.
 *
 * Ownership: takes `lower` in every case -- on failure it is closed too, so the caller
 * never closes it after this call. On success *out owns the new reader (close it with
 * vreader_close). Errors: VERR_USAGE for an unknown kind, VERR_NOMEM. */
int decompress_reader_new(struct vreader *lower, enum decompress_kind kind, uint64_t max_output,
                          struct vreader **out, struct verr *err);

/* Same with every option. `opts` may be NULL (all defaults); it is copied. */
int decompress_reader_new_opts(struct vreader *lower, enum decompress_kind kind,
                               const struct decompress_opts *opts, struct vreader **out,
                               struct verr *err);

/* Decompressed bytes returned so far by `r`, which must come from this module. */
uint64_t decompress_reader_output_bytes(const struct vreader *r);

/* "gzip", "xz", "zstd", or "unknown". */
const char *decompress_kind_name(enum decompress_kind kind);

#endif
