/* vimport target, internal: the O_DIRECT writer behind target.c. Not part of the stage's
 * contract (that is target.h); nothing outside pkg/target includes this.
 *
 * Why: writing through the page cache costs this machine more CPU than everything else
 * the import does to a byte but hashing it (1.25 GB buffered plus fsync: 2.0-2.5 s with
 * 1.7-2.2 s of system time; with O_DIRECT: 0.6-0.9 s, 0.2-0.4 s of system time), and
 * the read-back reads from storage anyway, so cached pages are never used.
 *
 * A direct writer owns a second descriptor of the target, opened with O_DIRECT, a few
 * aligned buffers and one thread. direct_writer_write() copies an aligned extent into
 * the buffer being filled (extents that follow each other share a buffer, so writes are
 * large whatever the decoder's extent size) and hands full buffers to the thread, which
 * writes them in order while the decoder goes on. The caller must drain the writer
 * before anything else touches the bytes it may still hold: zeroing, unaligned writes
 * through the page cache, sizing, fsync.
 */
#ifndef VIMPORT_TARGET_INTERNAL_H
#define VIMPORT_TARGET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define DIRECT_ALIGN 4096u             /* fits every logical block size */
#define DIRECT_BUF_SIZE (1u << 20)     /* bytes per write, at most */
#define DIRECT_BUFS 4                  /* one filling, the rest queued or being written */

struct direct_writer;

/* A writer for the file or block device at `path` (borrowed, for messages), or NULL
 * when O_DIRECT cannot be had (the filesystem refuses it, or memory is short): then
 * the caller writes through the page cache. `buffered_fd` (borrowed) is the caller's
 * own descriptor of the same file: if a write with O_DIRECT is refused after the open
 * succeeded (EINVAL; some FUSE and network filesystems), that write and all after it
 * go through it instead. */
struct direct_writer *direct_writer_new(const char *path, int buffered_fd);

/* Whether [offset, offset + len) may go through the writer: both ends aligned. */
bool direct_writer_accepts(uint64_t offset, size_t len);

/* Queue `len` bytes of `buf` (copied; the caller keeps buf) for `offset`. May wait for
 * a free buffer. Fails (VERR_IO, naming the extent and the errno) when an earlier write
 * failed: a write error surfaces at the next call, at the latest at the drain. */
int direct_writer_write(struct direct_writer *w, uint64_t offset, const void *buf, size_t len,
                        struct verr *err);

/* Write everything queued and wait for it. Returns 0, or -1 with the first write error. */
int direct_writer_drain(struct direct_writer *w, struct verr *err);

/* Stop the thread (after what is queued) and free everything. NULL is fine. */
void direct_writer_free(struct direct_writer *w);

#endif
