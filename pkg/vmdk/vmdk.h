/* vimport vmdk: decode a streamOptimized VMDK in one in-order pass.
 *
 * A streamOptimized VMDK (what OVF/OVA exports and cloud images use) is self-describing
 * in stream order: a 512-byte sparse extent header, the embedded descriptor, then a
 * sequence of sector-aligned markers. A grain marker carries the grain's guest sector
 * (LBA) and its zlib-compressed (RFC 1950) bytes; metadata markers frame grain tables,
 * the grain directory and the footer (a copy of the header with the real directory
 * offset) and an end-of-stream marker closes the stream. Because every grain names its
 * own guest offset, the decoder needs no table to place it: each grain is inflated and
 * emitted as it arrives. Tables after the grains (VMware's layout) are skipped. Tables
 * ahead of the grains (qemu's layout, which has no footer and no end-of-stream marker)
 * are kept when they fit opts->table_bytes: each grain must then sit where its table
 * entry says, and the stream may end after the last marker once every grain the tables
 * name has arrived.
 *
 * Contract, shared with pkg/qcow2 (core/stream.h): every guest byte in [0, virtual
 * size) is covered EXACTLY ONCE, by a data extent (a grain, in stream order) or by a
 * zero extent (emitted at the end for every grain no marker supplied, adjacent ranges
 * merged). Extents come in stream order, which is guest order for every writer we
 * know but is not promised. Data buffers belong to the decoder and are only valid
 * during the call. Data extents are at most VMDK_MAX_EXTENT bytes.
 *
 * Accepted: sparse extent versions 1..3 with both the compressed-grain and the marker
 * flag (bits 16 and 17) and deflate compression, grain sizes up to
 * VMDK_MAX_GRAIN_BYTES, GD_AT_END images (tables and footer after the grains) and
 * images whose tables sit ahead of the grains (qemu), zero padding after the
 * end-of-stream marker. A last grain that decompresses short of the grain size is
 * accepted when it covers every guest byte it maps.
 *
 * Refused with VERR_FORMAT: anything that is not a streamOptimized sparse extent
 * (monolithicSparse, twoGbMaxExtent*, a descriptor file, ...: "not streamable", the
 * caller reads those through qemu-nbd instead), unknown compression, sizes that
 * overflow, a grain outside the disk or not grain-aligned, a grain given twice, a grain
 * that does not inflate, a footer that contradicts the header, unknown marker types,
 * non-zero bytes after the end-of-stream marker, a stream that ends early (inside a
 * marker; with no end-of-stream marker when no tables came ahead; before every grain
 * the tables ahead name), a grain not where those tables place it, tables that run past
 * where the grains start.
 */
#ifndef VIMPORT_VMDK_H
#define VIMPORT_VMDK_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"

#define VMDK_MAX_EXTENT (1024u * 1024u)            /* largest data extent handed to a sink */
#define VMDK_MAX_GRAIN_BYTES (16u * 1024u * 1024u) /* VMware and qemu write 64 KiB */
#define VMDK_DEFAULT_TABLE_BYTES (64ull * 1024 * 1024)
#define VMDK_HEADER_BYTES 512

/* Whether the first `len` bytes of a source (at least VMDK_HEADER_BYTES) start a
 * streamOptimized sparse extent this decoder accepts. Returns 0 if so; otherwise -1
 * with `err` filled (VERR_FORMAT; the message says "not streamable" when the image is a
 * VMDK that qemu-nbd can still read). Pure: no allocation, no I/O. */
int vmdk_stream_probe(const void *head, size_t len, struct verr *err);

struct vmdk_stream_opts {
  /* Bound on the decoder's bookkeeping: one bit per grain of the virtual disk (which
   * grains arrived). 0 means VMDK_DEFAULT_TABLE_BYTES (enough for 32 PiB with 64 KiB
   * grains). A larger need fails with VERR_FORMAT before any output. Tables ahead of
   * the grains are kept only within what the bitmap leaves of it (qemu's take 8 bytes a
   * grain: disks to about 500 GiB by default); larger ones are read past, and then
   * only an end-of-stream marker says the stream is whole. */
  uint64_t table_bytes;
};

/* What the decoder found; filled as far as the decode got. */
struct vmdk_info {
  uint32_t version;      /* sparse extent header version, 1..3 */
  uint32_t grain_size;   /* bytes */
  uint64_t virtual_size; /* bytes: header capacity * 512 */
  uint64_t grains;       /* grain markers decoded */
  uint64_t source_bytes; /* bytes read from `in`, to its end */
  uint64_t data_bytes;   /* guest bytes emitted as data */
  uint64_t zero_bytes;   /* guest bytes emitted as zeros */
};

/* Decode the streamOptimized VMDK arriving on `in` (read once, in order, to its end;
 * the caller keeps ownership of `in`) into `out`, each guest byte exactly once (see
 * the contract above). `opts` and `info` may be NULL. Memory: one grain, one compressed
 * grain, the grain bitmap and tables ahead of the grains (together bounded by
 * opts->table_bytes). Returns 0, or -1 with
 * `err` filled: VERR_FORMAT for images refused or damaged (see above), VERR_NOMEM,
 * reader and sink errors passed through unchanged. After an error the sink may have
 * received part of the image; when the error comes from the header (the first 512
 * bytes) nothing was emitted. */
int vmdk_stream_decode(struct vreader *in, struct vsink *out,
                       const struct vmdk_stream_opts *opts, struct vmdk_info *info,
                       struct verr *err);

#endif
