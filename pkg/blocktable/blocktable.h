/* vimport blocktable: the one-pass skeleton of the disk formats that keep a table of
 * their blocks ahead of the data (vdi, dynamic vhd):
 *
 *   header -> table -> data blocks, in file order
 *
 * A format fills a `struct blocktable_format`: it reads and checks its own header(s)
 * and says, in a `struct blocktable_layout`, where the table is and how an entry maps a
 * guest block to its bytes in the file. The skeleton does the rest the same way for
 * every format: it bounds the table's memory, reads the table whole, sorts the mapped
 * blocks inside the disk by file offset and refuses a block that starts before the end
 * of the table or of the block before it (in the format's words: "not streamable in one
 * pass", read it through qemu-nbd instead), emits zero extents for the unmapped blocks
 * (adjacent ones merged), then each mapped block as the stream reaches it, and reads the
 * stream to its end.
 *
 * Contract (core/stream.h): every guest byte in [0, virtual size) is covered exactly
 * once; zero extents first, then the mapped blocks in file order (not guest order); data
 * extents are at most BLOCKTABLE_MAX_EXTENT bytes, in a buffer valid during the call.
 * Nothing is emitted before the whole table has been read and checked.
 *
 * blocktable_zero_runs() is the zero-extent half on its own, for formats whose blocks
 * say where they go as they arrive (vmdk).
 *
 * Depends on pkg/core only; the formats (pkg/vdi, pkg/vhd, pkg/vmdk) depend on it.
 */
#ifndef VIMPORT_BLOCKTABLE_H
#define VIMPORT_BLOCKTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"

#define BLOCKTABLE_MAX_EXTENT (1024u * 1024u) /* largest data extent handed to a sink */

/* What a format's header says. Table entries are 32-bit; entry e of a mapped block puts
 * its data at data_base + e * data_stride, after data_lead bytes of the block that are
 * not guest data (a vhd's sector bitmap). */
struct blocktable_layout {
  uint64_t virtual_size;
  uint32_t block_size;
  uint32_t entries;        /* in the table: at least the blocks inside the disk */
  uint64_t table_offset;   /* stream offset of the table */
  bool big_endian;         /* byte order of the entries */
  uint32_t first_unused;   /* entries from this value up map nothing: the block is zeros */
  uint64_t data_base;
  uint64_t data_stride;
  uint64_t data_lead;
  bool short_is_zeros;     /* a stream that ends inside a block: the rest reads as zeros
                            * (qemu's vdi); else the image is refused as truncated */
};

/* Where a format's info keeps the counts the skeleton fills (offsetof its info). */
struct blocktable_counts {
  size_t source_bytes; /* bytes read from the stream, to its end */
  size_t data_bytes;   /* guest bytes emitted as data */
  size_t zero_bytes;   /* guest bytes emitted as zeros */
  size_t blocks;       /* mapped blocks inside the disk */
};

struct blocktable_format {
  const char *name;       /* "VDI": names the format in messages */
  const char *table_name; /* "block map": names the table in messages */
  uint64_t default_table_bytes; /* the table bound when the caller gives 0 */
  size_t info_size;       /* the format's info struct, zeroed before the header */
  struct blocktable_counts counts;
  /* Read and check the header(s) from `cur` (`scratch`, BLOCKTABLE_MAX_EXTENT bytes, to
   * skip with); fill `layout` and the format's own fields of `info`, its virtual size
   * among them (set before any extent). */
  int (*header)(struct vcursor *cur, void *scratch, void *info, struct blocktable_layout *layout,
                struct verr *err);
  /* Refuse block `b` (entry `entry`, whose bytes start at `at`) that starts before
   * `free_from`: the end of the table when `prev` is UINT64_MAX, else of block `prev`. */
  int (*refuse_overlap)(uint64_t prev, uint64_t b, uint32_t entry, uint64_t at,
                        uint64_t free_from, struct verr *err);
};

/* Decode the image arriving on `in` (read once, in order, to its end; the caller keeps
 * it) into `out` (see the contract above). `info` (f->info_size bytes, may be NULL) is
 * filled as far as the decode got. The table and the block order (4 bytes per entry, 8
 * per block inside the disk) must fit `table_bytes` (0: f->default_table_bytes), else
 * VERR_FORMAT before any output. Returns 0, or -1 with `err` filled: the format's
 * refusals, VERR_FORMAT for a truncated table or block, VERR_NOMEM, reader and sink
 * errors unchanged. */
int blocktable_decode(struct vreader *in, struct vsink *out, const struct blocktable_format *f,
                      uint64_t table_bytes, void *info, struct verr *err);

/* Zero extents for the blocks b in [0, nblocks) for which unmapped(ctx, b), adjacent ones
 * merged, each block `block_size` bytes but the last clipped to `virtual_size`; their
 * bytes are added to *zero_bytes. */
int blocktable_zero_runs(struct vsink *out, uint64_t nblocks, uint64_t block_size,
                         uint64_t virtual_size, bool (*unmapped)(const void *ctx, uint64_t b),
                         const void *ctx, uint64_t *zero_bytes, struct verr *err);

#endif
