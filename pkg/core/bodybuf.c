/* vimport core: a bounded in-memory response body (bodybuf.h). */
#include "core/bodybuf.h"

#include <stdlib.h>
#include <string.h>

size_t body_buf_append(char *p, size_t size, size_t n, void *opaque)
{
  struct body_buf *b = opaque;
  size_t len = size * n;
  if (len > b->max || b->len > b->max - len) {
    b->too_big = true;
    return 0;
  }
  char *grown = realloc(b->data, b->len + len + 1);
  if (grown == NULL)
    return 0;
  memcpy(grown + b->len, p, len);
  b->data = grown;
  b->len += len;
  b->data[b->len] = '\0';
  return len;
}

const char *body_buf_text(const struct body_buf *b)
{
  return b->data != NULL ? b->data : "";
}
