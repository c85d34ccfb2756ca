/* vimport vhd: decode a dynamic VHD (qemu "vpc") in one in-order pass.
 *
 * A dynamic VHD keeps its tables ahead of its data: a copy of the 512-byte footer at
 * offset 0, the 1024-byte dynamic disk header (at the footer's data offset), the block
 * allocation table (BAT, at the header's table offset), then the blocks, each a sector
 * bitmap followed by the block's data, and the footer again at the very end. Once the
 * BAT has streamed past, the decoder knows where every block sits; it emits zero extents
 * for the unallocated blocks at once and each allocated block's data as the stream
 * reaches it, in file order.
 *
 * Read exactly as qemu's vpc driver reads it, so the result is byte-identical to
 * `qemu-img convert -O raw`:
 *   - the virtual size is the CHS geometry (cylinders * heads * sectors * 512) unless the
 *     creator application is one that uses the footer's current size ("win ", "qem2",
 *     "d2v ", "CTXS", "tap\0") or the geometry is the maximum (65535/16/255);
 *   - the sector bitmaps are skipped, not consulted: an allocated block reads as its
 *     data whatever its bitmap says;
 *   - a stream that ends inside a block is refused (qemu: "the image has been
 *     truncated"); the trailing footer copy is read past, not checked.
 *
 * Contract, shared with pkg/qcow2 (core/stream.h): every guest byte in [0, virtual
 * size) is covered EXACTLY ONCE, by a data extent or a zero extent; zero extents for
 * unallocated blocks come first (adjacent ones merged), then the allocated blocks in
 * file order (not necessarily guest order). Data buffers belong to the decoder and are
 * only valid during the call. Data extents are at most VHD_MAX_EXTENT bytes.
 *
 * Refused with VERR_FORMAT: a source without the footer copy at offset 0 (a fixed VHD
 * is raw data with a footer at the end: "not streamable", import it as raw or through
 * qemu-nbd), a fixed or unknown disk type, a differencing VHD (it needs its parent), a
 * bad footer checksum, a missing "cxsparse" header, a block size that is not a power of
 * two >= 512, a BAT too small for the disk or over opts->table_bytes, disks over qemu's
 * 2040 GiB limit, the dynamic header or BAT placed before what precedes it, a truncated
 * block, and a block
 * that starts before the end of the BAT or overlaps another block ("not streamable in
 * one pass": the caller falls back to qemu-nbd).
 *
 * The one-pass skeleton (table, block order, copy) is pkg/blocktable's; this package
 * is the VHD footer and dynamic header and how a BAT entry places a block.
 */
#ifndef VIMPORT_VHD_H
#define VIMPORT_VHD_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"
#include "blocktable/blocktable.h"

#define VHD_MAX_EXTENT BLOCKTABLE_MAX_EXTENT /* largest data extent handed to a sink */
#define VHD_DEFAULT_TABLE_BYTES (64ull * 1024 * 1024)
#define VHD_FOOTER_BYTES 512

/* Whether the first `len` bytes of a source start a dynamic VHD this decoder accepts:
 * the footer copy at offset 0 (needs VHD_FOOTER_BYTES) and, when `len` reaches past it,
 * the dynamic disk header. Returns 0 if so; otherwise -1 with `err` filled
 * (VERR_FORMAT). Pure: no allocation, no I/O. */
int vhd_stream_probe(const void *head, size_t len, struct verr *err);

struct vhd_stream_opts {
  /* Bound on the decoder's tables: the BAT (4 bytes per entry) and the block order
   * (8 bytes per block inside the disk). 0 means VHD_DEFAULT_TABLE_BYTES. A larger BAT fails
   * with VERR_FORMAT before any output. */
  uint64_t table_bytes;
};

/* What the decoder found; filled as far as the decode got. */
struct vhd_info {
  uint64_t virtual_size;  /* bytes, as qemu computes it (see above) */
  uint64_t current_size;  /* the footer's current size field, bytes */
  uint32_t block_size;    /* bytes */
  char creator_app[5];    /* the footer's creator application, NUL-terminated */
  uint64_t blocks;        /* allocated blocks inside the virtual size */
  uint64_t source_bytes;  /* bytes read from `in`, to its end */
  uint64_t data_bytes;    /* guest bytes emitted as data */
  uint64_t zero_bytes;    /* guest bytes emitted as zeros */
};

/* Decode the dynamic VHD arriving on `in` (read once, in order, to its end; the caller
 * keeps ownership of `in`) into `out`, each guest byte exactly once (see the contract
 * above). `opts` and `info` may be NULL. Memory: the BAT, the block order and one
 * VHD_MAX_EXTENT buffer. Returns 0, or -1 with `err` filled: VERR_FORMAT for images
 * refused or damaged (see above), VERR_NOMEM, reader and sink errors passed through
 * unchanged. Nothing is emitted before the whole BAT has been read and checked; after a
 * later error the sink may have received part of the image. */
int vhd_stream_decode(struct vreader *in, struct vsink *out,
                      const struct vhd_stream_opts *opts, struct vhd_info *info,
                      struct verr *err);

#endif
