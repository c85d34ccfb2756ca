/* The in-memory source every streaming fuzz target reads its input through: not
 * seekable, and short reads (at most 777 bytes) as a network source gives them, so the
 * parsers' refill paths run on every input. */
#ifndef VIMPORT_TESTS_MEM_READER_H
#define VIMPORT_TESTS_MEM_READER_H

#include <stdint.h>
#include <string.h>

#include "core/stream.h"

struct mem_source {
  const uint8_t *data;
  size_t size, at;
};

static ssize_t mem_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  (void)err;
  struct mem_source *m = r->state;
  size_t n = m->size - m->at < len ? m->size - m->at : len;
  if (n > 777)
    n = 777;
  memcpy(buf, m->data + m->at, n);
  m->at += n;
  return (ssize_t)n;
}

#endif
