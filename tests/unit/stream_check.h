/* Test helpers for streaming decoders (vmdk, vhd, vdi): non-seekable readers that hand out
 * odd read sizes, and a sink that rebuilds the guest image and counts how often each byte
 * was covered, so a test can demand "every byte exactly once" and compare with the
 * `qemu-img convert -O raw` oracle. Header-only: each test binary includes it once.
 */
#ifndef VIMPORT_TESTS_STREAM_CHECK_H
#define VIMPORT_TESTS_STREAM_CHECK_H

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/stream.h"
#include "corpus.h"

/* Odd read sizes, as a network source or a decompressor gives them. */
static const size_t stream_check_sizes[] = { 1, 7, 4093, 65537, 333, 200000, 512, 3 };
#define STREAM_CHECK_NSIZES (sizeof stream_check_sizes / sizeof stream_check_sizes[0])

/* ---- a real pipe: `cat FILE |` ---- */

struct pipe_reader {
  FILE *p;
  unsigned step;
};

static inline ssize_t pipe_reader_read(struct vreader *r, void *buf, size_t len,
                                       struct verr *err)
{
  struct pipe_reader *pr = r->state;
  size_t want = stream_check_sizes[pr->step++ % STREAM_CHECK_NSIZES];
  ssize_t n = read(fileno(pr->p), buf, len < want ? len : want);
  if (n < 0)
    return verr_sys(err, VERR_IO, errno, "reading the test pipe");
  return n;
}

static const struct vreader_ops pipe_reader_ops = { .name = "test-pipe", .read = pipe_reader_read };

static inline void pipe_reader_open(struct pipe_reader *pr, struct vreader *r,
                                    const char *path)
{
  char cmd[PATH_MAX + 32];
  snprintf(cmd, sizeof cmd, "cat '%s'", path);
  pr->p = popen(cmd, "r");
  pr->step = 0;
  cr_assert(pr->p, "popen %s", cmd);
  r->ops = &pipe_reader_ops;
  r->state = pr;
}

static inline void pipe_reader_close(struct pipe_reader *pr)
{
  cr_assert_eq(pclose(pr->p), 0, "cat failed");
}

/* ---- an in-memory image (for hand-broken copies) ---- */

struct mem_reader {
  const uint8_t *data;
  size_t size, at;
  unsigned step;
  size_t fail_at; /* 0: never; else fail with VERR_IO once `at` reaches it */
};

static inline ssize_t mem_reader_read(struct vreader *r, void *buf, size_t len,
                                      struct verr *err)
{
  struct mem_reader *m = r->state;
  if (m->fail_at && m->at >= m->fail_at)
    return verr_set(err, VERR_IO, "test reader failure at %zu", m->at);
  size_t want = stream_check_sizes[m->step++ % STREAM_CHECK_NSIZES];
  size_t n = m->size - m->at;
  n = n < len ? n : len;
  n = n < want ? n : want;
  memcpy(buf, m->data + m->at, n);
  m->at += n;
  return (ssize_t)n;
}

static const struct vreader_ops mem_reader_ops = { .name = "test-mem", .read = mem_reader_read };

/* ---- the sink: guest image plus a cover count per byte ---- */

struct image_sink {
  uint64_t size;
  uint8_t *img;
  uint8_t *cover;
  size_t max_extent;
  unsigned calls;
  int bad;
  char why[200];
};

static inline int image_sink_mark(struct image_sink *s, uint64_t off, uint64_t len)
{
  s->calls++;
  if (len == 0 || off > s->size || len > s->size - off) {
    s->bad = 1;
    snprintf(s->why, sizeof s->why, "extent %llu+%llu outside %llu or empty",
             (unsigned long long)off, (unsigned long long)len, (unsigned long long)s->size);
    return -1;
  }
  for (uint64_t i = 0; i < len; i++)
    if (s->cover[off + i] < 255)
      s->cover[off + i]++;
  return 0;
}

static inline int image_sink_data(struct vsink *vs, uint64_t off, const void *buf, size_t len,
                           struct verr *err)
{
  struct image_sink *s = vs->state;
  if (s->max_extent && len > s->max_extent)
    return verr_set(err, VERR_INTERNAL, "data extent of %zu bytes", len);
  if (image_sink_mark(s, off, len) < 0)
    return verr_set(err, VERR_INTERNAL, "%s", s->why);
  memcpy(s->img + off, buf, len);
  return 0;
}

static inline int image_sink_zero(struct vsink *vs, uint64_t off, uint64_t len,
                                  struct verr *err)
{
  struct image_sink *s = vs->state;
  if (image_sink_mark(s, off, len) < 0)
    return verr_set(err, VERR_INTERNAL, "%s", s->why);
  memset(s->img + off, 0, len);
  return 0;
}

static const struct vsink_ops image_sink_ops = { .name = "test-image",
                                                 .data = image_sink_data,
                                                 .zero = image_sink_zero };

/* `size` is what the test expects the virtual size to be (the oracle's length). */
static inline void image_sink_init(struct image_sink *s, uint64_t size, size_t max_extent)
{
  memset(s, 0, sizeof *s);
  s->size = size;
  s->max_extent = max_extent;
  s->img = malloc(size + 1);
  s->cover = calloc(size + 1, 1);
  cr_assert(s->img && s->cover);
  memset(s->img, 0xee, size); /* anything not written shows up */
}

static inline void image_sink_fini(struct image_sink *s)
{
  free(s->img);
  free(s->cover);
  s->img = s->cover = NULL;
}

/* The sink holds exactly `raw` (the oracle), each byte covered once. */
static inline void image_sink_expect(const struct image_sink *s, const uint8_t *raw,
                                     uint64_t raw_size,
                              const char *name)
{
  cr_assert(!s->bad, "%s: %s", name, s->why);
  cr_assert_eq(raw_size, s->size, "%s: size %llu, qemu-img says %llu", name,
               (unsigned long long)s->size, (unsigned long long)raw_size);
  for (uint64_t i = 0; i < s->size; i++)
    if (s->cover[i] != 1)
      cr_assert_fail("%s: guest byte %llu covered %u times", name, (unsigned long long)i,
                     s->cover[i]);
  for (uint64_t i = 0; i < s->size; i++)
    if (s->img[i] != raw[i])
      cr_assert_fail("%s: guest byte %llu is 0x%02x, qemu-img says 0x%02x", name,
                     (unsigned long long)i, s->img[i], raw[i]);
}

/* ---- the format corpus (hack/make-format-corpus.sh) ---- */

static inline const char *format_corpus_dir(void)
{
  static char dir[1024];
  return test_corpus_dir(dir, sizeof dir, "hack/make-format-corpus.sh", "format", "32");
}

static inline void format_corpus_path(char *out, size_t size, const char *name)
{
  snprintf(out, size, "%s/%s", format_corpus_dir(), name);
}

static inline uint8_t *format_corpus_load(const char *name, uint64_t *size)
{
  char path[PATH_MAX];
  format_corpus_path(path, sizeof path, name);
  return test_read_whole(path, size);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++, v >>= 8)
    p[i] = (uint8_t)v;
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++, v >>= 8)
    p[i] = (uint8_t)v;
}

static inline uint32_t get_le32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
  return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
  for (int i = 3; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static inline uint32_t get_be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t get_be64(const uint8_t *p)
{
  return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

#endif
