/* A vsink that hashes in-order guest extents: the glue between a decoder and blkhash. */
#include "blkhash.h"

#include <errno.h>

#include "core/stream.h"

static int check_order(const struct blkhash_sink_state *st, uint64_t offset, struct verr *err)
{
  if (offset != st->next_offset)
    return verr_set(err, VERR_INTERNAL,
                    "block hash got guest offset %llu but expected %llu: extents must arrive in "
                    "order (this is a bug in the decoder)",
                    (unsigned long long)offset, (unsigned long long)st->next_offset);
  return 0;
}

static int blkhash_sink_data(struct vsink *s, uint64_t offset, const void *buf, size_t len,
                             struct verr *err)
{
  struct blkhash_sink_state *st = s->state;
  if (check_order(st, offset, err) < 0)
    return -1;
  int r = blkhash_update(st->h, buf, len);
  if (r != 0)
    return verr_sys(err, VERR_INTERNAL, r, "block hash update failed");
  st->next_offset += len;
  return 0;
}

static int blkhash_sink_zero(struct vsink *s, uint64_t offset, uint64_t len, struct verr *err)
{
  struct blkhash_sink_state *st = s->state;
  if (check_order(st, offset, err) < 0)
    return -1;
  int r = blkhash_zero(st->h, len);
  if (r != 0)
    return verr_sys(err, VERR_INTERNAL, r, "block hash update failed");
  st->next_offset += len;
  return 0;
}

static const struct vsink_ops blkhash_sink_ops = {
  .name = "blkhash",
  .data = blkhash_sink_data,
  .zero = blkhash_sink_zero,
};

void blkhash_sink_init(struct vsink *sink, struct blkhash_sink_state *state, struct blkhash *h)
{
  state->h = h;
  state->next_offset = 0;
  sink->ops = &blkhash_sink_ops;
  sink->state = state;
}
