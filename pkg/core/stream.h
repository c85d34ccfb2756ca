/* vimport: the two interfaces that join pipeline stages.
 *
 * Byte streams flow *in order* through readers (source -> digest tap -> sniff replay ->
 * decompressor). Each reader is one struct of operations plus its private state, like an
 * nbdkit filter: a filter reader owns the reader below it and closes it when closed.
 *
 * Guest content flows out of a decoder as extents into a sink (target writer, block hash
 * tee). A decoder may emit extents in any offset order unless the sink says otherwise;
 * zero extents are never materialised as buffers.
 */
#ifndef VIMPORT_CORE_STREAM_H
#define VIMPORT_CORE_STREAM_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

struct vreader;

struct vreader_ops {
  const char *name;
  /* Read up to `len` bytes into `buf`. Returns the count (> 0), 0 at the end of the
   * stream, or -1 with `err` filled. Short reads are allowed anywhere. */
  ssize_t (*read)(struct vreader *r, void *buf, size_t len, struct verr *err);
  /* Release the reader's state, every reader below it, and `r` itself (readers are
   * heap-allocated by their constructors). NULL means plain free(r). */
  void (*close)(struct vreader *r);
};

struct vreader {
  const struct vreader_ops *ops;
  void *state; /* owned by the reader */
};

/* Read exactly `len` bytes unless the stream ends first. Returns bytes read (< len only at
 * the end of the stream) or -1 with `err` filled. */
ssize_t vreader_read_full(struct vreader *r, void *buf, size_t len, struct verr *err);

/* Close and free `r` (NULL is fine). */
void vreader_close(struct vreader *r);

struct vsink;

struct vsink_ops {
  const char *name;
  /* Guest bytes [offset, offset+len) are `buf`. The sink must not keep `buf`. */
  int (*data)(struct vsink *s, uint64_t offset, const void *buf, size_t len, struct verr *err);
  /* Guest bytes [offset, offset+len) read as zeros. */
  int (*zero)(struct vsink *s, uint64_t offset, uint64_t len, struct verr *err);
};

struct vsink {
  const struct vsink_ops *ops;
  void *state; /* not owned by the sink struct; the stage that made it frees it */
};

static inline int vsink_data(struct vsink *s, uint64_t off, const void *buf, size_t len,
                             struct verr *err)
{
  return s->ops->data(s, off, buf, len, err);
}

static inline int vsink_zero(struct vsink *s, uint64_t off, uint64_t len, struct verr *err)
{
  return s->ops->zero(s, off, len, err);
}

/* A sink that hands every extent to `first`, then to `second` (e.g. the target writer
 * and the write-time block hash). The state lives in the caller's `tee_state`. */
struct vsink_tee_state {
  struct vsink *first;
  struct vsink *second;
};
void vsink_tee_init(struct vsink *tee, struct vsink_tee_state *state, struct vsink *first,
                    struct vsink *second);

#endif
