/* vimport blocktable: the skeleton (see blocktable.h).
 *
 * Three phases over one stream: the format's header, the table (read whole; the mapped
 * blocks inside the disk sorted as entry << 32 | block, so one plain qsort needs no
 * context, and checked not to overlap), then the blocks in that order, each copied
 * through one BLOCKTABLE_MAX_EXTENT buffer. What follows the last block is read and
 * dropped.
 */
#include "blocktable.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct decoder {
  const struct blocktable_format *f;
  struct blocktable_layout l;
  struct vcursor cur;
  struct vsink *out;
  uint64_t *source_bytes, *data_bytes, *zero_bytes, *blocks; /* in the format's info */
  uint64_t nblocks; /* blocks inside the virtual size */
  uint32_t *table;
  uint64_t *order;  /* mapped blocks (< nblocks): entry << 32 | block, sorted */
  uint64_t norder;
  uint8_t *buf;     /* BLOCKTABLE_MAX_EXTENT */
};

static uint64_t *count(void *info, size_t offset) { return (uint64_t *)((char *)info + offset); }

static uint32_t entry_of(const uint8_t *p, bool big_endian)
{
  if (big_endian)
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- output ---- */

int blocktable_zero_runs(struct vsink *out, uint64_t nblocks, uint64_t block_size,
                         uint64_t virtual_size, bool (*unmapped)(const void *ctx, uint64_t b),
                         const void *ctx, uint64_t *zero_bytes, struct verr *err)
{
  uint64_t run_start = 0, run_len = 0;
  for (uint64_t b = 0; b < nblocks; b++) {
    if (!unmapped(ctx, b))
      continue;
    uint64_t off = b * block_size;
    if (run_len > 0 && run_start + run_len != off) {
      if (vsink_zero_counted(out, run_start, run_len, zero_bytes, err) < 0)
        return -1;
      run_len = 0;
    }
    if (run_len == 0)
      run_start = off;
    run_len += virtual_size - off < block_size ? virtual_size - off : block_size;
  }
  return vsink_zero_counted(out, run_start, run_len, zero_bytes, err);
}

static bool unmapped(const void *ctx, uint64_t b)
{
  const struct decoder *d = ctx;
  return d->table[b] >= d->l.first_unused;
}

static uint64_t data_at(const struct decoder *d, uint32_t entry)
{
  return d->l.data_base + (uint64_t)entry * d->l.data_stride;
}

/* Copy block `b` to the sink. A stream that ends inside it is refused, unless the format
 * reads what is missing as zeros. */
static int copy_block(struct decoder *d, uint64_t b, uint32_t entry, struct verr *err)
{
  uint64_t guest = b * d->l.block_size;
  uint64_t left = d->l.virtual_size - guest;
  uint64_t len = left < d->l.block_size ? left : d->l.block_size;
  if (vcursor_skip_to(&d->cur, data_at(d, entry), d->buf, BLOCKTABLE_MAX_EXTENT, err) < 0)
    return -1;
  uint64_t done = 0;
  while (done < len) {
    uint64_t want = len - done < BLOCKTABLE_MAX_EXTENT ? len - done : BLOCKTABLE_MAX_EXTENT;
    ssize_t n = d->cur.at_end ? 0 : vcursor_read_some(&d->cur, d->buf, (size_t)want, err);
    if (n < 0)
      return -1;
    if ((uint64_t)n < want && !d->l.short_is_zeros)
      return verr_set(err, VERR_FORMAT,
                      "the %s stream ends inside block %" PRIu64 " (at offset %" PRIu64
                      "): the image is truncated; fetch it again", d->f->name, b,
                      data_at(d, entry) - d->l.data_lead);
    if (n > 0 && vsink_data(d->out, guest + done, d->buf, (size_t)n, err) < 0)
      return -1;
    *d->data_bytes += (uint64_t)n;
    done += (uint64_t)n;
    if ((uint64_t)n < want)
      break;
  }
  return vsink_zero_counted(d->out, guest + done, len - done, d->zero_bytes, err);
}

/* ---- the table ---- */

static int read_table(struct decoder *d, uint64_t table_bytes, struct verr *err)
{
  uint64_t need = (uint64_t)d->l.entries * 4 + d->nblocks * 8;
  if (need > table_bytes)
    return verr_set(err, VERR_FORMAT,
                    "the %s %s of %" PRIu32 " entries needs %" PRIu64 " bytes of memory, more "
                    "than the limit of %" PRIu64 ": the header is damaged or the limit too low",
                    d->f->name, d->f->table_name, d->l.entries, need, table_bytes);
  size_t bytes = (size_t)d->l.entries * 4;
  d->table = malloc(bytes ? bytes : 1);
  d->order = malloc(d->nblocks ? (size_t)d->nblocks * sizeof *d->order : 1);
  if (d->table == NULL || d->order == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the %s %s", d->f->name, d->f->table_name);
  if (vcursor_skip_to(&d->cur, d->l.table_offset, d->buf, BLOCKTABLE_MAX_EXTENT, err) < 0 ||
      vcursor_read_exact(&d->cur, d->table, bytes, d->f->table_name, err) < 0)
    return -1;
  for (uint32_t i = 0; i < d->l.entries; i++)
    d->table[i] = entry_of((const uint8_t *)&d->table[i], d->l.big_endian);
  return 0;
}

static int by_entry(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The mapped blocks in file order, each after the table and clear of the one before. */
static int order_blocks(struct decoder *d, struct verr *err)
{
  for (uint64_t b = 0; b < d->nblocks; b++)
    if (!unmapped(d, b))
      d->order[d->norder++] = (uint64_t)d->table[b] << 32 | b;
  qsort(d->order, (size_t)d->norder, sizeof *d->order, by_entry);
  uint64_t free_from = *d->source_bytes; /* the end of the table */
  uint64_t prev = UINT64_MAX;
  for (uint64_t i = 0; i < d->norder; i++) {
    uint32_t entry = (uint32_t)(d->order[i] >> 32), b = (uint32_t)d->order[i];
    uint64_t at = data_at(d, entry) - d->l.data_lead;
    if (at < free_from)
      return d->f->refuse_overlap(prev, b, entry, at, free_from, err);
    free_from = data_at(d, entry) + d->l.block_size;
    prev = b;
  }
  *d->blocks = d->norder;
  return 0;
}

/* ---- the whole ---- */

static void decoder_fini(struct decoder *d)
{
  free(d->table);
  free(d->order);
  free(d->buf);
}

static int decode(struct decoder *d, uint64_t table_bytes, void *info, struct verr *err)
{
  d->buf = malloc(BLOCKTABLE_MAX_EXTENT);
  if (d->buf == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the %s decoder buffer", d->f->name);
  if (d->f->header(&d->cur, d->buf, info, &d->l, err) < 0)
    return -1;
  d->nblocks = (d->l.virtual_size + d->l.block_size - 1) / d->l.block_size;
  if (read_table(d, table_bytes ? table_bytes : d->f->default_table_bytes, err) < 0 ||
      order_blocks(d, err) < 0 ||
      blocktable_zero_runs(d->out, d->nblocks, d->l.block_size, d->l.virtual_size, unmapped, d,
                           d->zero_bytes, err) < 0)
    return -1;
  for (uint64_t i = 0; i < d->norder; i++)
    if (copy_block(d, (uint32_t)d->order[i], (uint32_t)(d->order[i] >> 32), err) < 0)
      return -1;
  return vcursor_drain(&d->cur, d->buf, BLOCKTABLE_MAX_EXTENT, err);
}

int blocktable_decode(struct vreader *in, struct vsink *out, const struct blocktable_format *f,
                      uint64_t table_bytes, void *info, struct verr *err)
{
  void *scratch_info = info != NULL ? NULL : calloc(1, f->info_size);
  if (info == NULL && scratch_info == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the %s decoder", f->name);
  info = info != NULL ? memset(info, 0, f->info_size) : scratch_info;
  __attribute__((cleanup(decoder_fini))) struct decoder d = {
    .f = f,
    .out = out,
    .source_bytes = count(info, f->counts.source_bytes),
    .data_bytes = count(info, f->counts.data_bytes),
    .zero_bytes = count(info, f->counts.zero_bytes),
    .blocks = count(info, f->counts.blocks),
  };
  vcursor_init(&d.cur, in, f->name, d.source_bytes);
  int r = decode(&d, table_bytes, info, err);
  free(scratch_info);
  return r;
}
