/* vimport nbd: the guest content of an NBD export, as in-order extents, through libnbd.
 *
 *   export (nbd://, nbds://, nbd+unix://, a unix socket path, or a local image file
 *           served by a private qemu-nbd) -> extents -> struct vsink
 *
 * Two uses:
 *   - an NBD source (spec source.nbd.uri): read an export someone else serves;
 *   - formats vimport does not decode itself (vmdk, vhd, vhdx, vdi): libnbd starts
 *     `qemu-nbd -f FORMAT --read-only FILE` as its child with systemd socket activation
 *     (no TCP port, no socket file, the child dies with the handle), and qemu does the
 *     decoding.
 *
 * The walk asks the server for block status (the "base:allocation" context) and reads
 * only extents that may hold data. Extents the server flags NBD_STATE_ZERO are emitted
 * as zero extents and never read. A hole without the ZERO flag is read: the NBD protocol
 * lets such a hole read as anything (a backing file, for instance), only ZERO promises
 * zeros. When the server offers no block status everything is read. Either way, data
 * that reads back as whole NBD_GUEST_ZERO_GRAIN pieces of zeros is emitted as zero
 * extents, so the target stays sparse.
 *
 * Extents reach the sink in increasing offset order with no gap, adjacent zero extents
 * merged, so the sink may be pkg/blkhash's in-order sink (blkhash_sink_init) directly.
 *
 * Memory: `queue_depth` read buffers of `request_size` bytes (clamped to the server's
 * maximum block size) plus at most NBD_GUEST_MAX_STATUS extents of one block-status reply.
 *
 * Errors: VERR_USAGE (bad options), VERR_SOURCE (connect, handshake, a failed NBD
 * command; the message names the redacted URI and libnbd's reason), VERR_NOMEM, and
 * whatever the sink returns (passed through unchanged).
 */
#ifndef VIMPORT_NBD_H
#define VIMPORT_NBD_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"

#define NBD_GUEST_DEFAULT_REQUEST_SIZE (4u << 20) /* bytes per NBD read */
#define NBD_GUEST_MAX_STATUS 1024                 /* extents kept from one status reply */
#define NBD_GUEST_STATUS_SPAN (1u << 30)          /* bytes asked about per status request */
#define NBD_GUEST_ZERO_GRAIN (64u << 10)          /* zero detection granularity in reads */
#define NBD_GUEST_MAX_QUEUE_DEPTH 128             /* reads in flight at most */

/* Zero-initialise and set exactly one of `uri` or `file`. Strings are used during
 * nbd_guest_open() only; the caller keeps them. */
struct nbd_guest_opts {
  /* An NBD URI (nbd://host[:port]/export, nbds://..., nbd+unix:///export?socket=PATH)
   * or the path of a unix socket (anything starting with '/' that is not a URI). */
  const char *uri;
  /* A local image file to serve with a private qemu-nbd (socket activation). */
  const char *file;
  /* The qemu block driver of `file` ("raw", "qcow2", "vmdk", "vpc", "vhdx", "vdi"; see
   * sniff_qemu_driver()). Required with `file`: qemu's own probing is unsafe for raw. */
  const char *format;
  /* The qemu-nbd program; NULL means "qemu-nbd" from PATH. */
  const char *qemu_nbd;
  /* Bytes per NBD read; 0 means NBD_GUEST_DEFAULT_REQUEST_SIZE. */
  size_t request_size;
  /* Reads in flight at most (blksum's --queue-depth), each in its own buffer, emitted in
   * order; 0 means 1. Clamped to NBD_GUEST_MAX_QUEUE_DEPTH. */
  unsigned queue_depth;
};

struct nbd_guest;

/* Connect (and for `file`, start qemu-nbd), negotiate base:allocation and learn the
 * export size. On success *out owns the connection: free it with nbd_guest_free(),
 * which disconnects and stops a qemu-nbd child. */
int nbd_guest_open(const struct nbd_guest_opts *opts, struct nbd_guest **out,
                   struct verr *err);

/* The export's size in bytes: the guest disk's virtual size. */
uint64_t nbd_guest_size(const struct nbd_guest *g);

/* Whether the server answered block status queries (holes will be skipped). */
int nbd_guest_has_block_status(const struct nbd_guest *g);

/* Walk the whole export once, in offset order, into `out` (see the top of this file).
 * Returns 0, or -1 with `err` filled (by this module or by the sink). */
int nbd_guest_walk(struct nbd_guest *g, struct vsink *out, struct verr *err);

/* Bytes read from the server and bytes emitted as zeros by the last walk. */
uint64_t nbd_guest_bytes_read(const struct nbd_guest *g);
uint64_t nbd_guest_zero_bytes(const struct nbd_guest *g);

/* Disconnect and free (NULL is fine). */
void nbd_guest_free(struct nbd_guest *g);

/* Open, walk into `out`, free. *size (may be NULL) receives the export size.
 * `uri_or_socket` as opts.uri; for a local file use nbd_guest_read_file(). */
int nbd_guest_read(const char *uri_or_socket, struct vsink *out, uint64_t *size,
                   struct verr *err);

/* Same for a local image `file` of qemu format `format`, served by a private qemu-nbd. */
int nbd_guest_read_file(const char *file, const char *format, struct vsink *out,
                        uint64_t *size, struct verr *err);

#endif
