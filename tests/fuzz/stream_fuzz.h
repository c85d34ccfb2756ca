/* The libFuzzer harness shared by the streaming disk-format decoders (vmdk, vhd, vdi):
 * arbitrary bytes through the decoder.
 *
 * The input arrives through a non-seekable reader with short reads. Invariants checked:
 * every extent lies inside the virtual size the decoder reports; on success the extents,
 * sorted, tile [0, virtual size) exactly (each guest byte once) and the decoder read the
 * input to its end; a failure always has a message; a header the probe refuses is never
 * decoded.
 *
 * Include it once after defining STREAM_FUZZ_INFO (struct <fmt>_info), STREAM_FUZZ_OPTS
 * (struct <fmt>_stream_opts), STREAM_FUZZ_PROBE and STREAM_FUZZ_DECODE.
 */
#ifndef VIMPORT_TESTS_STREAM_FUZZ_H
#define VIMPORT_TESTS_STREAM_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "mem_reader.h"

struct extent {
  uint64_t off, len;
};

struct cover_sink {
  const STREAM_FUZZ_INFO *info;
  struct extent *v;
  size_t n, cap;
};

static void check_extent(struct cover_sink *s, uint64_t off, uint64_t len)
{
  uint64_t vsize = s->info->virtual_size;
  if (len == 0 || off > vsize || len > vsize - off)
    abort();
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    if ((s->v = realloc(s->v, s->cap * sizeof *s->v)) == NULL)
      abort();
  }
  s->v[s->n++] = (struct extent){ off, len };
}

static int by_off(const void *a, const void *b)
{
  uint64_t x = ((const struct extent *)a)->off, y = ((const struct extent *)b)->off;
  return (x > y) - (x < y);
}

/* Sorted by offset, the extents must tile [0, virtual size): each byte exactly once. */
static void check_tiling(struct cover_sink *s)
{
  qsort(s->v, s->n, sizeof *s->v, by_off);
  uint64_t next = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (s->v[i].off != next)
      abort();
    next += s->v[i].len;
  }
  if (next != s->info->virtual_size)
    abort();
}

static int cover_data(struct vsink *vs, uint64_t off, const void *buf, size_t len,
                      struct verr *err)
{
  (void)buf, (void)err;
  check_extent(vs->state, off, len);
  return 0;
}

static int cover_zero(struct vsink *vs, uint64_t off, uint64_t len, struct verr *err)
{
  (void)err;
  check_extent(vs->state, off, len);
  return 0;
}

static const struct vsink_ops cover_ops = { .name = "fuzz-cover", .data = cover_data,
                                            .zero = cover_zero };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct mem_source m = { data, size, 0 };
  struct vreader in = { &(struct vreader_ops){ .name = "fuzz-mem", .read = mem_read }, &m };
  STREAM_FUZZ_INFO info;
  struct cover_sink s = { &info, NULL, 0, 0 };
  struct vsink out = { &cover_ops, &s };
  STREAM_FUZZ_OPTS opts = { .table_bytes = 1 << 16 };
  struct verr err = { 0 }, probe_err = { 0 };
  int probe = STREAM_FUZZ_PROBE(data, size, &probe_err);
  int r = STREAM_FUZZ_DECODE(&in, &out, &opts, &info, &err);
  if (r < 0 && err.message[0] == '\0')
    abort();
  if (probe < 0 && (probe_err.message[0] == '\0' || r == 0))
    abort();
  if (r == 0 && (m.at != size || info.source_bytes != size))
    abort();
  if (r == 0)
    check_tiling(&s);
  free(s.v);
  return 0;
}

#endif
