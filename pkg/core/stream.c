#include "stream.h"

#include <inttypes.h>
#include <stdlib.h>

ssize_t vreader_read_full(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  size_t done = 0;
  while (done < len) {
    ssize_t n = r->ops->read(r, (char *)buf + done, len - done, err);
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

ssize_t vreader_view(struct vreader *r, const void **view, size_t len, void *scratch,
                     struct verr *err)
{
  if (r->ops->view != NULL)
    return r->ops->view(r, view, len, scratch, err);
  *view = scratch;
  return vreader_read_full(r, scratch, len, err);
}

void vcursor_init(struct vcursor *c, struct vreader *in, const char *format, uint64_t *taken)
{
  *c = (struct vcursor){ .in = in, .format = format, .taken = taken };
}

int vcursor_read_exact(struct vcursor *c, void *buf, size_t len, const char *what,
                       struct verr *err)
{
  uint64_t at = *c->taken;
  ssize_t n = vcursor_read_some(c, buf, len, err);
  if (n < 0)
    return -1;
  if ((size_t)n < len)
    return verr_set(err, VERR_FORMAT,
                    "the %s stream ends inside the %s at offset %" PRIu64 ": the image is "
                    "truncated; fetch it again", c->format, what, at);
  return 0;
}

ssize_t vcursor_read_some(struct vcursor *c, void *buf, size_t len, struct verr *err)
{
  ssize_t n = vreader_read_full(c->in, buf, len, err);
  if (n < 0)
    return -1;
  *c->taken += (uint64_t)n;
  if ((size_t)n < len)
    c->at_end = true;
  return n;
}

int vcursor_skip_to(struct vcursor *c, uint64_t to, void *scratch, size_t scratch_len,
                    struct verr *err)
{
  while (!c->at_end && *c->taken < to) {
    uint64_t left = to - *c->taken;
    if (vcursor_read_some(c, scratch, left < scratch_len ? (size_t)left : scratch_len, err) < 0)
      return -1;
  }
  return 0;
}

int vcursor_drain(struct vcursor *c, void *scratch, size_t scratch_len, struct verr *err)
{
  while (!c->at_end)
    if (vcursor_read_some(c, scratch, scratch_len, err) < 0)
      return -1;
  return 0;
}

void vreader_close(struct vreader *r)
{
  if (r == NULL)
    return;
  if (r->ops->close != NULL)
    r->ops->close(r);
  else
    free(r);
}

static int tee_data(struct vsink *s, uint64_t off, const void *buf, size_t len, struct verr *err)
{
  struct vsink_tee_state *st = s->state;
  if (vsink_data(st->first, off, buf, len, err) < 0)
    return -1;
  return vsink_data(st->second, off, buf, len, err);
}

static int tee_zero(struct vsink *s, uint64_t off, uint64_t len, struct verr *err)
{
  struct vsink_tee_state *st = s->state;
  if (vsink_zero(st->first, off, len, err) < 0)
    return -1;
  return vsink_zero(st->second, off, len, err);
}

static int tee_digested(struct vsink *s, uint64_t off, const void *buf, size_t len,
                        const struct vsink_digests *d, struct verr *err)
{
  struct vsink_tee_state *st = s->state;
  if (vsink_data_digested(st->first, off, buf, len, d, err) < 0)
    return -1;
  return vsink_data_digested(st->second, off, buf, len, d, err);
}

static const struct vsink_ops tee_ops = {
  .name = "tee",
  .data = tee_data,
  .zero = tee_zero,
  .digested = tee_digested,
};

void vsink_tee_init(struct vsink *tee, struct vsink_tee_state *state, struct vsink *first,
                    struct vsink *second)
{
  state->first = first;
  state->second = second;
  tee->ops = &tee_ops;
  tee->state = state;
}
