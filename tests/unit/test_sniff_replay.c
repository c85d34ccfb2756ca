/* Unit tests for pkg/sniff's replay reader: exact bytes back for every stream length,
 * chunk and read size from an in-memory reader that counts what it serves, a refused
 * stream closing the reader below, an error from below while sniffing, and a digest tap
 * below the replay hashing each byte once.
 */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "digest/digest.h"
#include "sniff/sniff.h"

/* ---- readers: memory (with a per-read chunk limit) and a real file ---- */

struct mem_source {
  const unsigned char *data;
  size_t len, pos, chunk;
  size_t served;        /* bytes handed out: must equal len, no second read */
  int reads_after_end;  /* reads after it returned 0 once */
  bool ended;
  size_t fail_at;       /* SIZE_MAX: never */
  bool *closed;
  int *reads_after_end_out;
};

static ssize_t mem_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct mem_source *m = r->state;
  if (m->ended)
    m->reads_after_end++;
  size_t n = m->len - m->pos;
  if (n > len)
    n = len;
  if (n > m->chunk)
    n = m->chunk;
  if (m->fail_at != SIZE_MAX && m->pos + n > m->fail_at)
    return verr_set(err, VERR_IO, "injected read failure at byte %zu", m->fail_at);
  memcpy(buf, m->data + m->pos, n);
  m->pos += n;
  m->served += n;
  if (n == 0)
    m->ended = true;
  return (ssize_t)n;
}

static void mem_close(struct vreader *r)
{
  struct mem_source *m = r->state;
  if (m->closed != NULL)
    *m->closed = true;
  if (m->reads_after_end_out != NULL)
    *m->reads_after_end_out = m->reads_after_end;
  free(m);
  free(r);
}

static const struct vreader_ops mem_ops = { .name = "mem", .read = mem_read, .close = mem_close };

static struct vreader *mem_reader(const void *data, size_t len, size_t chunk)
{
  struct vreader *r = calloc(1, sizeof *r);
  struct mem_source *m = calloc(1, sizeof *m);
  cr_assert(r != NULL && m != NULL);
  *m = (struct mem_source){ .data = data, .len = len, .chunk = chunk, .fail_at = SIZE_MAX };
  r->ops = &mem_ops;
  r->state = m;
  return r;
}

/* ---- the replay reader ---- */

static unsigned char *pattern(size_t len)
{
  unsigned char *p = malloc(len ? len : 1);
  cr_assert(p != NULL);
  uint32_t x = 88172645u;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    p[i] = (unsigned char)x;
  }
  if (len > 0)
    p[0] = 0; /* binary from the first byte, so even a 1-byte stream is not text */
  return p;
}

static void replay_check(const unsigned char *data, size_t len, size_t chunk, size_t step)
{
  struct sniff_result r;
  struct verr err = { 0 };
  struct vreader *replay = NULL;
  struct vreader *lower = mem_reader(data, len, chunk);
  struct mem_source *m = lower->state;
  int reads_after_end = 0;
  m->reads_after_end_out = &reads_after_end;
  cr_assert(sniff_reader_new(lower, NULL, &replay, &r, &err) == 0, "%zu: %s", len, err.message);
  cr_assert_eq(r.bytes_seen, len < SNIFF_BYTES ? len : SNIFF_BYTES);
  CLEANUP_FREE unsigned char *got = malloc(len + 1);
  CLEANUP_FREE unsigned char *buf = malloc(step);
  size_t total = 0;
  for (;;) {
    ssize_t n = replay->ops->read(replay, buf, step, &err);
    cr_assert(n >= 0, "%s", err.message);
    cr_assert((size_t)n <= step);
    if (n == 0)
      break;
    cr_assert(total + (size_t)n <= len, "replay returned more bytes than the stream holds");
    memcpy(got + total, buf, (size_t)n);
    total += (size_t)n;
  }
  cr_assert_eq(total, len, "len %zu chunk %zu step %zu", len, chunk, step);
  cr_assert(memcmp(got, data, len) == 0, "len %zu chunk %zu step %zu", len, chunk, step);
  cr_assert_eq(m->served, len, "the source must be read exactly once");
  cr_assert_eq(replay->ops->read(replay, buf, step, &err), 0, "end stays the end");
  vreader_close(replay);
  cr_assert(reads_after_end <= 1, "no reads of lower after it ended during the sniff");
}

Test(sniff_replay, exact_bytes_for_every_length_chunk_and_read_size)
{
  static const size_t lengths[] = { 1, 100, 4096, SNIFF_BYTES - 1, SNIFF_BYTES,
                                    SNIFF_BYTES + 1, 3 * SNIFF_BYTES + 17 };
  static const size_t chunks[] = { 1, 4093, SIZE_MAX };
  CLEANUP_FREE unsigned char *data = pattern(3 * SNIFF_BYTES + 17);
  for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++)
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++)
      for (size_t step = 1; step <= 67; step++)
        replay_check(data, lengths[l], chunks[c], step);
  static const size_t big_steps[] = { 4095, 4096, 65536, SNIFF_BYTES, SNIFF_BYTES + 1, 1 << 20 };
  for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++)
    for (size_t s = 0; s < sizeof big_steps / sizeof big_steps[0]; s++)
      replay_check(data, lengths[l], 65537, big_steps[s]);
}

Test(sniff_replay, refused_stream_closes_lower)
{
  const char *page = "<html><body>login</body></html>";
  bool closed = false;
  struct vreader *lower = mem_reader(page, strlen(page), 5);
  ((struct mem_source *)lower->state)->closed = &closed;
  struct sniff_result r;
  struct verr err = { 0 };
  struct vreader *replay = (struct vreader *)1;
  cr_assert(sniff_reader_new(lower, "text/html", &replay, &r, &err) == -1);
  cr_assert_null(replay);
  cr_assert(closed);
  cr_assert_eq(err.code, VERR_FORMAT);
  cr_assert_eq(r.format, SNIFF_FORMAT_HTML);
  cr_assert(strstr(err.message, "an HTML page, not a disk image") != NULL, "%s", err.message);

  closed = false;
  lower = mem_reader("", 0, 5);
  ((struct mem_source *)lower->state)->closed = &closed;
  cr_assert(sniff_reader_new(lower, NULL, &replay, &r, &err) == -1);
  cr_assert(closed);
  cr_assert_eq(r.format, SNIFF_FORMAT_EMPTY);
}

Test(sniff_replay, lower_error_while_sniffing)
{
  CLEANUP_FREE unsigned char *data = pattern(SNIFF_BYTES * 2);
  struct vreader *lower = mem_reader(data, SNIFF_BYTES * 2, 4096);
  ((struct mem_source *)lower->state)->fail_at = 10000;
  struct sniff_result r;
  struct verr err = { 0 };
  struct vreader *replay = NULL;
  cr_assert(sniff_reader_new(lower, NULL, &replay, &r, &err) == -1);
  cr_assert_null(replay);
  cr_assert_eq(err.code, VERR_IO);
  cr_assert(strstr(err.message, "start of the source") != NULL, "%s", err.message);
}

/* The pipeline's order: source -> digest tap -> sniff replay. The digest covers every
 * byte exactly once even though the sniffer read ahead. */
Test(sniff_replay, digest_below_replay_hashes_each_byte_once)
{
  size_t len = 2 * SNIFF_BYTES + 999;
  CLEANUP_FREE unsigned char *data = pattern(len);
  struct verr err = { 0 };
  struct vreader *tap = NULL, *replay = NULL;
  cr_assert(digest_tap_new(mem_reader(data, len, 3000), "sha256", &tap, &err) == 0);
  struct vreader *tap_view = tap;
  struct sniff_result r;
  cr_assert(sniff_reader_new(TAKE_PTR(tap), NULL, &replay, &r, &err) == 0, "%s", err.message);
  CLEANUP_FREE unsigned char *got = malloc(len);
  cr_assert(vreader_read_full(replay, got, len, &err) == (ssize_t)len);
  char buf[1];
  cr_assert(replay->ops->read(replay, buf, 1, &err) == 0);
  cr_assert(digest_tap_bytes(tap_view) == len);
  char calculated[CHECKSUM_STRING_MAX];
  cr_assert(digest_tap_final(tap_view, calculated, sizeof calculated, &err) == 0);
  vreader_close(replay);

  struct vreader *one = NULL;
  cr_assert(digest_tap_new(mem_reader(data, len, SIZE_MAX), "sha256", &one, &err) == 0);
  cr_assert(vreader_read_full(one, got, len, &err) == (ssize_t)len);
  char expected[CHECKSUM_STRING_MAX];
  cr_assert(digest_tap_final(one, expected, sizeof expected, &err) == 0);
  vreader_close(one);
  cr_assert_str_eq(calculated, expected);
}
