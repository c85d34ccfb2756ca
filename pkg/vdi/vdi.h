/* vimport vdi: decode a VirtualBox VDI image (dynamic or static) in one in-order pass.
 *
 * A VDI keeps its tables ahead of its data: a 512-byte header (a text banner, the
 * signature 0xbeda107f, version 1.1, then sizes and offsets), the block map (one
 * little-endian uint32 per 1 MiB guest block: the index of the data block in the file,
 * or 0xffffffff unallocated / 0xfffffffe discarded, both reading as zeros), then the
 * data blocks at offset_data + index * block_size. A static image maps every block, in
 * order; a dynamic one only the blocks written. Once the map has streamed past, the
 * decoder emits zero extents for the unmapped blocks and each mapped block as the stream
 * reaches it, in file order.
 *
 * Read exactly as qemu's vdi driver reads it, so the result is byte-identical to
 * `qemu-img convert -O raw`: the virtual size is the header's disk size rounded up to
 * whole sectors; only version 1.1, 512-byte sectors and 1 MiB blocks are accepted; bytes
 * a block would read past the end of the stream read as zeros (qemu reads a file's tail
 * that way).
 *
 * Contract, shared with pkg/qcow2 (core/stream.h): every guest byte in [0, virtual
 * size) is covered EXACTLY ONCE, by a data extent or a zero extent; zero extents for
 * unmapped blocks come first (adjacent ones merged), then the mapped blocks in file
 * order (not necessarily guest order). Data buffers belong to the decoder and are only
 * valid during the call. Data extents are at most VDI_MAX_EXTENT bytes.
 *
 * Refused with VERR_FORMAT: a bad signature, other versions, sector or block sizes,
 * unaligned offsets, a disk larger than its block map, a link or parent UUID or an
 * undo/differencing type (the image needs another file), a block map over
 * opts->table_bytes, a block map or data area placed before what precedes it, and two
 * guest blocks mapped to the same data block ("not streamable in one pass": the caller
 * falls back to qemu-nbd).
 *
 * The one-pass skeleton (table, block order, copy) is pkg/blocktable's; this package
 * is the VDI header and how its block map places a block.
 */
#ifndef VIMPORT_VDI_H
#define VIMPORT_VDI_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"
#include "blocktable/blocktable.h"

#define VDI_MAX_EXTENT BLOCKTABLE_MAX_EXTENT /* largest data extent handed to a sink */
#define VDI_DEFAULT_TABLE_BYTES (64ull * 1024 * 1024)
#define VDI_HEADER_BYTES 512

/* Whether the first `len` bytes of a source (at least VDI_HEADER_BYTES) start a VDI this
 * decoder accepts. Returns 0 if so; otherwise -1 with `err` filled (VERR_FORMAT). Pure:
 * no allocation, no I/O. */
int vdi_stream_probe(const void *head, size_t len, struct verr *err);

struct vdi_stream_opts {
  /* Bound on the decoder's tables: the block map (4 bytes per block) and the block order
   * (8 bytes per block inside the disk). 0 means VDI_DEFAULT_TABLE_BYTES. A larger map
   * fails with VERR_FORMAT before any output. */
  uint64_t table_bytes;
};

/* What the decoder found; filled as far as the decode got. */
struct vdi_info {
  uint64_t virtual_size;  /* bytes: the header's disk size rounded up to sectors */
  uint32_t block_size;    /* bytes (always 1 MiB) */
  uint32_t image_type;    /* 1 dynamic ("normal"), 2 static ("fixed") */
  uint64_t blocks;        /* mapped blocks inside the virtual size */
  uint64_t source_bytes;  /* bytes read from `in`, to its end */
  uint64_t data_bytes;    /* guest bytes emitted as data */
  uint64_t zero_bytes;    /* guest bytes emitted as zeros (unmapped, or past the end) */
};

/* Decode the VDI arriving on `in` (read once, in order, to its end; the caller keeps
 * ownership of `in`) into `out`, each guest byte exactly once (see the contract above).
 * `opts` and `info` may be NULL. Memory: the block map, the block order and one
 * VDI_MAX_EXTENT buffer. Returns 0, or -1 with `err` filled: VERR_FORMAT for images
 * refused (see above), VERR_NOMEM, reader and sink errors passed through unchanged.
 * Nothing is emitted before the whole block map has been read and checked; after a
 * later error the sink may have received part of the image. */
int vdi_stream_decode(struct vreader *in, struct vsink *out,
                      const struct vdi_stream_opts *opts, struct vdi_info *info,
                      struct verr *err);

#endif
