#include "stream.h"

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

static const struct vsink_ops tee_ops = {
  .name = "tee",
  .data = tee_data,
  .zero = tee_zero,
};

void vsink_tee_init(struct vsink *tee, struct vsink_tee_state *state, struct vsink *first,
                    struct vsink *second)
{
  state->first = first;
  state->second = second;
  tee->ops = &tee_ops;
  tee->state = state;
}
