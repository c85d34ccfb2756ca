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

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

struct vreader;

struct vreader_ops {
  const char *name;
  /* Read up to `len` bytes into `buf`. Returns the count (> 0), 0 at the end of the
   * stream, or -1 with `err` filled. Short reads are allowed anywhere. */
  ssize_t (*read)(struct vreader *r, void *buf, size_t len, struct verr *err);
  /* Optional zero-copy read (call it through vreader_view()): set *view to the next bytes
   * of the stream, at most `len`, and return their count (> 0), 0 at the end of the
   * stream, or -1 with `err` filled. Fewer than `len` only at the end of the stream or
   * where the reader's own memory wraps around. The bytes lie in the reader's memory, or
   * in `scratch` (the caller's, at least `len` bytes) when a reader below has none to
   * lend; either way they stay valid until the next call on `r`, read() included.
   * Filters that pass bytes through unchanged pass this on with vreader_view(). */
  ssize_t (*view)(struct vreader *r, const void **view, size_t len, void *scratch,
                  struct verr *err);
  /* Release the reader's state, every reader below it, and `r` itself (readers are
   * heap-allocated by their constructors). NULL means plain free(r). */
  void (*close)(struct vreader *r);
};

struct vreader {
  const struct vreader_ops *ops;
  void *state; /* owned by the reader */
};

/* A reader's read-only buffer of zeros. A source that lends runs of zeros from one
 * buffer (the HTTP source, source_zeros()) says where it is, so that a consumer looking
 * for zeros knows a view inside it without reading it: on W3 that skipped 0.3 CPU-seconds
 * of memcmp over 5 GiB. Views stay inside it through filters, since a filter's view()
 * passes the lower reader's bytes on unchanged; a reader that copies them out (read(),
 * a decompressor) lends none of them. */
struct vzeros {
  const unsigned char *buf; /* never written; NULL: the reader lends no zeros */
  size_t len;
};

/* `len` bytes at `p` lie inside z's buffer, so are all zeros. */
static inline bool vzeros_holds(struct vzeros z, const void *p, size_t len)
{
  /* As integers: C leaves `<` between pointers into different objects undefined. */
  uintptr_t at = (uintptr_t)p, start = (uintptr_t)z.buf;
  return z.buf != NULL && at >= start && len <= z.len && at - start <= z.len - len;
}

/* Read exactly `len` bytes unless the stream ends first. Returns bytes read (< len only at
 * the end of the stream) or -1 with `err` filled. */
ssize_t vreader_read_full(struct vreader *r, void *buf, size_t len, struct verr *err);

/* The reader's view operation when it has one, else vreader_read_full() into `scratch`
 * (*view = scratch): a stage that only looks at the bytes calls this and copies nothing
 * where the source can lend its buffer. */
ssize_t vreader_view(struct vreader *r, const void **view, size_t len, void *scratch,
                     struct verr *err);

/* Close and free `r` (NULL is fine). */
void vreader_close(struct vreader *r);

/* A cursor over a reader, for decoders that read a format front to back in one pass
 * (vdi, vhd, vmdk): every read adds the bytes taken to the caller's counter (`*taken`,
 * the stream offset of the next byte), and a short read marks the end of the stream.
 * Borrows `in` and `taken`. */
struct vcursor {
  struct vreader *in;
  const char *format; /* "VDI": names the format in the truncation message */
  uint64_t *taken;
  bool at_end;        /* a read came back short: nothing follows */
};

void vcursor_init(struct vcursor *c, struct vreader *in, const char *format, uint64_t *taken);

/* Exactly `len` bytes. A stream that ends first is VERR_FORMAT: "the <format> stream ends
 * inside the <what> at offset N: the image is truncated; fetch it again". */
int vcursor_read_exact(struct vcursor *c, void *buf, size_t len, const char *what,
                       struct verr *err);

/* Up to `len` bytes; fewer only at the end of the stream (then at_end is set). Returns
 * the count or -1. */
ssize_t vcursor_read_some(struct vcursor *c, void *buf, size_t len, struct verr *err);

/* Read and drop bytes up to stream offset `to` (or the end of the stream), through the
 * caller's `scratch` buffer of `scratch_len` bytes. */
int vcursor_skip_to(struct vcursor *c, uint64_t to, void *scratch, size_t scratch_len,
                    struct verr *err);

/* Read and drop the rest of the stream, so a digest of the whole source sees every byte. */
int vcursor_drain(struct vcursor *c, void *scratch, size_t scratch_len, struct verr *err);

struct vsink;

/* The block-hash digests of a run of whole blocks, made by the decoder (on the threads
 * that produced the bytes, while they are in cache) so that the block hash need not
 * copy and hash them again. Made with blkhash_blocks (blkhash/blkhash.h). */
struct vsink_digests {
  const void *md_type;      /* the OpenSSL EVP_MD they were made with */
  size_t block_size;        /* bytes per block */
  unsigned md_len;          /* bytes per digest */
  const unsigned char *mds; /* one digest per block, back to back */
};

struct vsink_ops {
  const char *name;
  /* Guest bytes [offset, offset+len) are `buf`. The sink must not keep `buf`. */
  int (*data)(struct vsink *s, uint64_t offset, const void *buf, size_t len, struct verr *err);
  /* Guest bytes [offset, offset+len) read as zeros. */
  int (*zero)(struct vsink *s, uint64_t offset, uint64_t len, struct verr *err);
  /* Optional: .data, where `offset` and `len` are whole blocks of `d` and `d` holds
   * their digests. A sink without it gets .data; one with it may still use `buf`. */
  int (*digested)(struct vsink *s, uint64_t offset, const void *buf, size_t len,
                  const struct vsink_digests *d, struct verr *err);
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

/* vsink_data() with the digests of its blocks (see struct vsink_digests). */
static inline int vsink_data_digested(struct vsink *s, uint64_t off, const void *buf, size_t len,
                                      const struct vsink_digests *d, struct verr *err)
{
  if (s->ops->digested != NULL)
    return s->ops->digested(s, off, buf, len, d, err);
  return s->ops->data(s, off, buf, len, err);
}

static inline int vsink_zero(struct vsink *s, uint64_t off, uint64_t len, struct verr *err)
{
  return s->ops->zero(s, off, len, err);
}

/* vsink_zero() for a decoder that counts its zero bytes into `*count`; an empty extent
 * is not passed on. */
static inline int vsink_zero_counted(struct vsink *s, uint64_t off, uint64_t len,
                                     uint64_t *count, struct verr *err)
{
  if (len == 0)
    return 0;
  *count += len;
  return vsink_zero(s, off, len, err);
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
