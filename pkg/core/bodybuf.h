/* vimport core: a response body kept in memory up to a bound, for the small documents
 * vimport fetches with libcurl (registry manifests and tokens, GCS tokens, the
 * Kubernetes API, a node pull's /info). body_buf_append() is libcurl's
 * CURLOPT_WRITEFUNCTION for it; past `max` bytes it stops the transfer and says so in
 * `too_big`, so a hostile server cannot make vimport hold more. */
#ifndef VIMPORT_CORE_BODYBUF_H
#define VIMPORT_CORE_BODYBUF_H

#include <stdbool.h>
#include <stddef.h>

struct body_buf {
  char *data;   /* owned by the caller, who frees it (and wipes it if it may hold a
                 * secret); NUL-terminated; NULL until the first byte */
  size_t len;
  size_t max;   /* the bound, set by the caller before the transfer */
  bool too_big; /* the transfer was stopped at `max` */
};

/* Append size * n bytes of `p` to the body_buf at `opaque`: the count taken, or 0 to
 * stop the transfer (over the bound, or out of memory). */
size_t body_buf_append(char *p, size_t size, size_t n, void *opaque);

/* `data`, or "" when nothing arrived. */
const char *body_buf_text(const struct body_buf *b);

#endif
