/* vimport: a reader that reads ahead of its consumer on a thread of its own.
 *
 * A filter that costs CPU (inflating a registry layer: 3.2 s for W1's 562 MB gzip
 * layer) runs on the consumer's thread otherwise, in series with everything the
 * consumer does with the bytes (tar, decode, write). Put this above it and the two
 * overlap: the worker reads `lower` into at most `depth` chunks of `chunk` bytes, the
 * consumer takes them in order. Memory is depth * chunk, whatever the stream's size.
 *
 * The worker alone touches `lower` until it has stopped: readahead_stop() waits for
 * that (the read in progress completes; nothing is interrupted), after which the owner
 * may read what is below `lower` itself. Closing the reader interrupts the read in
 * progress with the `interrupt` callback (a source's transfer stops, its read fails),
 * joins the worker and closes `lower`.
 *
 * Errors from `lower` reach the consumer after every byte read before them, unchanged.
 */
#ifndef VIMPORT_CORE_READAHEAD_H
#define VIMPORT_CORE_READAHEAD_H

#include <stddef.h>

#include "core/error.h"
#include "core/stream.h"

struct readahead_opts {
  size_t chunk;    /* bytes per read of `lower`; 0: 1 MiB */
  unsigned depth;  /* chunks read ahead at most; 0: 4 */
  /* Called from close() while the worker may be blocked in a read of `lower`: make
   * that read return soon (with an error). NULL: close() waits for the read. */
  void (*interrupt)(void *arg);
  void *interrupt_arg;
};

/* A reader over `lower`, which it owns from now on (closed here on failure too).
 * Returns 0, or -1 with `err` (VERR_NOMEM, or the thread could not start). */
int readahead_new(struct vreader *lower, const struct readahead_opts *opts,
                  struct vreader **out, struct verr *err);

/* Stop the worker after its read in progress and join it; what it read stays for the
 * consumer. Idempotent; any other reader (or NULL) is left alone. */
void readahead_stop(struct vreader *r);

#endif
