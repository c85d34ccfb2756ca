/* Test helper: a reader that lends its own memory through the view op, as the HTTP
 * source lends its ring (pkg/core/stream.h). It hands out `sizes` bytes at a time
 * (cycling; NULL: as much as asked), and overwrites what it lent when the next call
 * comes, so a decoder that keeps a view past its life emits garbage and the test's
 * comparison fails. Header-only: each test binary includes it once.
 */
#ifndef VIMPORT_TESTS_LEND_READER_H
#define VIMPORT_TESTS_LEND_READER_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/stream.h"

struct lend_reader {
  uint8_t *data; /* a private copy of the stream: lent bytes get poisoned */
  size_t size, at;
  const size_t *sizes;
  size_t nsizes;
  unsigned step;
  size_t lent_at, lent_len;
};

static inline ssize_t lend_reader_view(struct vreader *r, const void **view, size_t len,
                                       void *scratch, struct verr *err)
{
  (void)scratch, (void)err;
  struct lend_reader *l = r->state;
  memset(l->data + l->lent_at, 0xa5, l->lent_len);
  size_t n = l->size - l->at < len ? l->size - l->at : len;
  size_t cap = l->nsizes ? l->sizes[l->step++ % l->nsizes] : n;
  n = n < cap ? n : cap;
  *view = l->data + l->at;
  l->lent_at = l->at;
  l->lent_len = n;
  l->at += n;
  return (ssize_t)n;
}

/* read() of a test reader that lends: its own view() of `len` bytes, copied out. */
static inline ssize_t read_through_view(ssize_t (*view)(struct vreader *, const void **, size_t,
                                                        void *, struct verr *),
                                        struct vreader *r, void *buf, size_t len,
                                        struct verr *err)
{
  const void *lent;
  ssize_t n = view(r, &lent, len, NULL, err);
  if (n > 0)
    memcpy(buf, lent, (size_t)n);
  return n;
}

static inline ssize_t lend_reader_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  return read_through_view(lend_reader_view, r, buf, len, err);
}

static const struct vreader_ops lend_reader_ops = {
  .name = "test-lend", .read = lend_reader_read, .view = lend_reader_view,
};

/* A lending reader `r` over a copy of `stream`; free with lend_reader_fini(). */
static inline void lend_reader_init(struct lend_reader *l, struct vreader *r, const void *stream,
                                    size_t size, const size_t *sizes, size_t nsizes)
{
  *l = (struct lend_reader){ .data = malloc(size + 1), .size = size, .sizes = sizes,
                             .nsizes = nsizes };
  cr_assert_not_null(l->data);
  memcpy(l->data, stream, size);
  *r = (struct vreader){ .ops = &lend_reader_ops, .state = l };
}

static inline void lend_reader_fini(struct lend_reader *l)
{
  free(l->data);
  l->data = NULL;
}

#endif
