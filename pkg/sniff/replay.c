/* vimport sniff: the replay reader (see sniff_reader_new in sniff.h).
 *
 * Sniffing must not cost a second read of the source (it may be a one-shot HTTP body or
 * stdin) nor a seek. So the reader keeps the bytes it sniffed, hands them out first, and
 * then passes reads straight to the reader below. The head buffer is freed as soon as it
 * has been replayed, so a long import holds no extra memory.
 */
#include "sniff.h"

#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"

struct sniff_replay {
  struct vreader *lower; /* owned */
  unsigned char *head;   /* owned: the sniffed bytes; NULL once replayed */
  size_t head_len;
  size_t head_pos;
  bool lower_ended; /* the sniff read hit the end: do not read `lower` again */
};

/* Up to `len` replayed bytes at *p, or 0 once the head is done (and freed). The head is
 * freed only on the call after its last bytes went out, so that a view of them stays
 * valid until the reader's next call. */
static size_t sniff_replay_head(struct sniff_replay *s, const unsigned char **p, size_t len)
{
  if (s->head != NULL && s->head_pos == s->head_len) {
    free(s->head);
    s->head = NULL;
  }
  if (s->head == NULL)
    return 0;
  size_t n = s->head_len - s->head_pos < len ? s->head_len - s->head_pos : len;
  *p = s->head + s->head_pos;
  s->head_pos += n;
  return n;
}

static ssize_t sniff_replay_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct sniff_replay *s = r->state;
  const unsigned char *p;
  size_t n = sniff_replay_head(s, &p, len);
  if (n > 0) {
    memcpy(buf, p, n);
    return (ssize_t)n;
  }
  if (s->lower_ended || len == 0)
    return 0;
  return s->lower->ops->read(s->lower, buf, len, err);
}

static ssize_t sniff_replay_view(struct vreader *r, const void **view, size_t len, void *scratch,
                                 struct verr *err)
{
  struct sniff_replay *s = r->state;
  const unsigned char *p;
  size_t n = sniff_replay_head(s, &p, len);
  if (n > 0) {
    *view = p;
    return (ssize_t)n;
  }
  if (s->lower_ended || len == 0)
    return 0;
  return vreader_view(s->lower, view, len, scratch, err);
}

static void sniff_replay_close(struct vreader *r)
{
  struct sniff_replay *s = r->state;
  if (s != NULL) {
    vreader_close(s->lower);
    free(s->head);
    free(s);
  }
  free(r);
}

static const struct vreader_ops sniff_replay_ops = {
  .name  = "sniff",
  .read  = sniff_replay_read,
  .view  = sniff_replay_view,
  .close = sniff_replay_close,
};

/* Read the head of the stream into s->head and classify it. */
static int sniff_replay_fill(struct sniff_replay *s, const char *content_type,
                             struct sniff_result *result, struct verr *err)
{
  s->head = malloc(SNIFF_BYTES);
  if (s->head == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory for the %d-byte sniff buffer",
                    SNIFF_BYTES);
  ssize_t n = vreader_read_full(s->lower, s->head, SNIFF_BYTES, err);
  if (n < 0)
    return verr_prefix(err, "while reading the start of the source to learn its format");
  s->head_len = (size_t)n;
  s->lower_ended = s->head_len < SNIFF_BYTES;
  if (s->head_len == 0) {
    free(s->head);
    s->head = NULL;
  }
  if (sniff_buffer(s->head, s->head_len, content_type, result) == -1)
    return verr_set(err, VERR_FORMAT, "%s", result->message);
  return 0;
}

int sniff_reader_new(struct vreader *lower, const char *content_type, struct vreader **out,
                     struct sniff_result *result, struct verr *err)
{
  *out = NULL;
  memset(result, 0, sizeof *result);
  CLEANUP_FREE struct vreader *r = calloc(1, sizeof *r);
  struct sniff_replay *s = calloc(1, sizeof *s);
  if (r == NULL || s == NULL) {
    free(s);
    vreader_close(lower);
    return verr_set(err, VERR_NOMEM, "out of memory creating the sniff reader");
  }
  s->lower = lower;
  r->ops = &sniff_replay_ops;
  r->state = s;
  if (sniff_replay_fill(s, content_type, result, err) == -1) {
    sniff_replay_close(TAKE_PTR(r));
    return -1;
  }
  *out = TAKE_PTR(r);
  return 0;
}
