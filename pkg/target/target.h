/* vimport target: the writer of guest content, as a struct vsink.
 *
 * A target is one of CDI's two volume modes:
 *   - a regular file (Filesystem mode, CDI writes /data/disk.img), or
 *   - a block device (Block mode, CDI writes /dev/cdi-block-volume).
 * target_open() looks at the path to tell which.
 *
 * Lifecycle:
 *   target_open() -> target_check_fits(virtual size) -> extents through target_sink()
 *   -> target_finish() (sizes the file, fsyncs) -> target_free().
 *
 * The sink accepts extents at guest offsets in ANY order (the qcow2 decoder emits
 * clusters out of order). Each guest byte should be sent once; a zero extent is only
 * skipped where the target provably reads zeros already (see "zeros" below), so a
 * later zero extent over earlier data is still honoured.
 *
 * Zeros are never written as data where avoidable:
 *   - file, fresh (did not exist or was empty): a zero extent, or a 64 KiB block of a
 *     data extent that is all zeros, is skipped when nothing was written to that range
 *     yet (tracked as the span of written offsets, O(1) memory); otherwise it is punched.
 *   - file that held data before: zero ranges are punched
 *     (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE), or zeroed in place with
 *     FALLOC_FL_ZERO_RANGE when preallocation was asked for, so old bytes never show
 *     through. Where the filesystem refuses both, zeros are written.
 *   - block device: zero ranges use ioctl BLKZEROOUT; where the device refuses it,
 *     zeros are written in bounded chunks. Nothing is assumed about what the device
 *     held before.
 *
 * Memory: a fixed zero buffer of 1 MiB per target and the O_DIRECT writer's buffers
 * (4 x 1 MiB), nothing proportional to the image.
 * Page cache: data extents aligned to 4 KiB go around it, with O_DIRECT, written in
 * order on a thread of their own (contiguous extents coalesce into writes of up to
 * 1 MiB), so the decoder never waits for the disk and the node's page cache is not
 * touched: buffered writing cost this machine about 1.5 s of CPU per GB more. The rest
 * (unaligned extents, zeros written as data, any data where the filesystem refuses
 * O_DIRECT) goes through the page cache: every `flush_interval` bytes of it, write-back
 * is started (sync_file_range) and the pages whose write-back the previous interval
 * started are dropped (posix_fadvise DONTNEED), so an import holds at most about two
 * intervals of page cache and never waits for the disk mid-stream.
 *
 * Not thread-safe: one thread drives a target.
 */
#ifndef VIMPORT_TARGET_H
#define VIMPORT_TARGET_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"

enum target_kind {
  TARGET_KIND_FILE,  /* regular file on a filesystem PVC */
  TARGET_KIND_BLOCK, /* block device PVC */
};

struct target_opts {
  const char *path;        /* file or block device; a file is created if missing */
  uint64_t requested_size; /* PVC requested size in bytes; 0 means unknown (files only) */
  double fs_overhead;      /* CDI filesystem overhead fraction, e.g. 0.055 (files only) */
  bool preallocate;        /* CDI's preallocation: fallocate the whole file; on a block
                            * device, zeros written where the image has holes */
  uint64_t flush_interval; /* bytes between page cache write-back; 0 = 64 MiB */
};

struct target_info {
  enum target_kind kind;
  uint64_t capacity;          /* most guest bytes this target can hold: CDI's available
                               * space (file) or the device size (block) */
  uint64_t size;              /* file: its size after target_finish; block: device size */
  uint64_t bytes_written;     /* data bytes written with pwrite */
  uint64_t bytes_direct;      /* of those, written with O_DIRECT (the rest: page cache) */
  uint64_t zero_bytes_skipped;/* zero bytes not touched at all (already read as zeros) */
  uint64_t zero_bytes_zeroed; /* zero bytes punched, BLKZEROOUT'd or written as zeros */
  bool existed;               /* file held data before (zeros are punched, not skipped) */
  bool preallocation_applied; /* file: the whole file was fallocated; block: every byte
                               * of the image was written (after target_finish) */
};

struct target;

/* CDI's sizing of a filesystem PVC, pure, no I/O (kubevirt/containerized-data-importer):
 *   available = min(free bytes, requested); requested 0 (unknown) gives the free bytes
 *               (pkg/importer/data-processor.go calculateTargetSize). An image fits when
 *               its virtual size <= available: no overhead in that check
 *               (pkg/image/qemu.go Validate).
 *   usable    = ceil(available / (1 + overhead)) rounded down to 1 MiB
 *               (pkg/util/util.go GetUsableSpace, float64 arithmetic as in Go).
 *   grown     = the file size after conversion: max(virtual size, min(usable, requested)),
 *               or the virtual size when no size was requested (data-processor.go resize,
 *               ResizeImage: grow, never shrink).
 * An overhead is valid in [0, 1] (CDI's filesystemOverhead). */
bool target_overhead_valid(double fs_overhead);
uint64_t target_available(uint64_t requested, uint64_t free_bytes);
uint64_t target_usable_space(uint64_t available, double fs_overhead);
uint64_t target_grown_size(uint64_t virtual_size, uint64_t requested, uint64_t usable);

/* Open the target at opts->path. A block device is sized with BLKGETSIZE64; a file is
 * created if missing (never truncated here) and its capacity computed from the free
 * space of its filesystem (statvfs, plus the space the existing file already holds,
 * since it is overwritten) and the requested size with target_available(). Nothing is
 * written yet.
 * On success *out owns the target (free with target_free).
 * Errors: VERR_USAGE (bad options, path is neither a file nor a block device),
 * VERR_IO (open, stat, ioctl), VERR_NOMEM. */
int target_open(const struct target_opts *opts, struct target **out, struct verr *err);

/* Refuse, before any write, an image whose virtual size exceeds the capacity:
 * VERR_TARGET_TOO_SMALL, the message starting with CDI's own sentence ("virtual image
 * size V is larger than the reported available storage A. A larger PVC is required.").
 * On success records the virtual size; a file is sized now to target_grown_size() and,
 * with preallocation, fallocated over that whole size (holes are never punched in it
 * afterwards). A block device keeps its size.
 * Errors: VERR_TARGET_TOO_SMALL, VERR_IO (ftruncate, fallocate). */
int target_check_fits(struct target *t, uint64_t virtual_size, struct verr *err);

/* The sink that writes guest extents into this target. Owned by `t`, valid until
 * target_free(). Extents past the virtual size (or the capacity, before
 * target_check_fits) fail with VERR_INTERNAL: a decoder bug, never a truncated image. */
struct vsink *target_sink(struct target *t);

/* Make the content durable: a file is sized (ftruncate) to its final size, which is
 * never smaller than the image, and given mode 0660 (as CDI leaves disk.img); then
 * fsync. A block device with preallocation had every byte of the image written (zeros
 * with BLKZEROOUT, which never unmaps), so preallocation_applied becomes true. After this the target may be read
 * back (pkg/verify). Errors: VERR_IO. */
int target_finish(struct target *t, struct verr *err);

/* After a failed or cancelled import, make sure the partial content cannot pass for a
 * disk: a file is truncated to 0 bytes; a block device gets its first and last MiB
 * zeroed (partition tables, GPT backup, filesystem superblocks), so nothing boots or
 * mounts from it. A rerun writes every byte again. Then fsync. Errors: VERR_IO. */
int target_invalidate(struct target *t, struct verr *err);

/* Counters and facts for the report. Always succeeds. */
void target_get_info(const struct target *t, struct target_info *info);

/* The size of a blank disk (CDI: cmd/cdi-importer/importer.go createBlankImage): a file,
 * target_usable_space(available); a block device, min(device size, requested size). */
uint64_t target_blank_size(const struct target *t);

/* Path given at open (owned by `t`). */
const char *target_path(const struct target *t);

/* Close the file descriptor and free `t` (NULL is fine). Does not fsync: call
 * target_finish() first if the content matters. */
void target_free(struct target *t);

#endif
