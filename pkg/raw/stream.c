/* vimport raw: the raw decoder (see raw.h for the contract).
 *
 * It looks at the stream through vreader_view(), so the bytes of an HTTP source go from
 * its ring buffer to the target and the block hash in place, without a copy. Two things
 * need bytes kept from one view to the next: zero detection wants whole blocks at
 * guest-aligned offsets, and a fixed VHD's 512-byte footer can only be told from data at
 * the very end of the stream. So each view is emitted up to the last alignment boundary
 * that leaves at least the footer's 512 bytes behind, and that rest (less than one
 * alignment unit plus 512 bytes) is copied into `carry`, to go out ahead of the next view:
 * about 64 KiB copied per MiB, where reading into a buffer copied every byte.
 */
#include <stdlib.h>
#include <string.h>

#include "core/zero.h"
#include "core/cleanup.h"
#include "raw.h"
#include "sniff/sniff.h"

/* Bytes asked of the stream at a time: big enough that per-call costs vanish. Views end
 * on multiples of it, so that in the common case every emit is block-aligned. */
#define RAW_CHUNK (1u << 20)

/* A fixed VHD is its guest disk followed by a 512-byte footer. */
enum { HOLD = SNIFF_VHD_FOOTER_BYTES };

struct raw_decoder {
  struct vsink *out;
  size_t block_size; /* zero detection granularity */
  size_t align;      /* emits end on multiples of this, except at the end of the stream */
  uint64_t max_size; /* the target's capacity, 0: unbounded */
  struct vzeros zeros; /* views inside it are zeros: no need to look */
  uint64_t offset;   /* stream bytes seen: carry holds [offset - carry_len, offset) */
  unsigned char *carry; /* align + HOLD bytes */
  size_t carry_len;
};

static uint64_t round_down(uint64_t n, uint64_t m) { return n / m * m; }

/* Emit `len` bytes at guest `offset` as alternating data and zero extents, zeros found
 * per guest-aligned block, so the target never writes them and the block hash never
 * hashes them. A block cut by either end of the piece counts as data. */
static int raw_emit(const struct raw_decoder *d, uint64_t offset, const unsigned char *buf,
                    size_t len, struct verr *err)
{
  bool known_zero = vzeros_holds(d->zeros, buf, len);
  if (d->max_size != 0 && (offset > d->max_size || len > d->max_size - offset))
    return verr_set(err, VERR_TARGET_TOO_SMALL,
                    "A larger PVC is required: the image is larger than the target's %llu "
                    "bytes; request more storage for the DataVolume",
                    (unsigned long long)d->max_size);
  size_t run_start = 0;
  int run_zero = -1; /* unknown until the first block */
  for (size_t pos = 0; pos < len;) {
    size_t n = d->block_size - (size_t)((offset + pos) % d->block_size);
    if (n > len - pos)
      n = len - pos;
    int zero = n == d->block_size && (known_zero || mem_is_zero(buf + pos, n));
    if (run_zero != -1 && zero != run_zero) {
      int r = run_zero ? vsink_zero(d->out, offset + run_start, pos - run_start, err)
                       : vsink_data(d->out, offset + run_start, buf + run_start, pos - run_start, err);
      if (r < 0)
        return -1;
      run_start = pos;
    }
    run_zero = zero;
    pos += n;
  }
  if (run_zero == 1)
    return vsink_zero(d->out, offset + run_start, len - run_start, err);
  if (run_zero == 0)
    return vsink_data(d->out, offset + run_start, buf + run_start, len - run_start, err);
  return 0;
}

/* Take the next `n` stream bytes at `view`: emit the carry and the view up to the last
 * boundary that keeps HOLD bytes back, and carry the rest. */
static int raw_step(struct raw_decoder *d, const unsigned char *view, size_t n, struct verr *err)
{
  uint64_t carry_start = d->offset - d->carry_len, end = d->offset + n;
  uint64_t emit_end = end >= HOLD ? round_down(end - HOLD, d->align) : 0;
  if (emit_end < carry_start)
    emit_end = carry_start;
  size_t from_carry = (size_t)((emit_end < d->offset ? emit_end : d->offset) - carry_start);
  if (from_carry > 0 && raw_emit(d, carry_start, d->carry, from_carry, err) < 0)
    return -1;
  size_t from_view = emit_end > d->offset ? (size_t)(emit_end - d->offset) : 0;
  if (from_view > 0 && raw_emit(d, d->offset, view, from_view, err) < 0)
    return -1;
  /* What is left, [emit_end, end), is less than align + HOLD bytes. */
  memmove(d->carry, d->carry + from_carry, d->carry_len - from_carry);
  d->carry_len -= from_carry;
  memcpy(d->carry + d->carry_len, view + from_view, n - from_view);
  d->carry_len += n - from_view;
  d->offset = end;
  return 0;
}

/* The stream ended: the carry is its last bytes. Drop them if they are a fixed VHD's
 * footer that describes exactly the bytes before it. */
static int raw_finish(struct raw_decoder *d, uint64_t *size, bool *vhd_footer, struct verr *err)
{
  uint64_t vsize;
  *vhd_footer = d->carry_len >= HOLD &&
                sniff_vhd_fixed_footer(d->carry + d->carry_len - HOLD, d->offset, &vsize) &&
                vsize == d->offset - HOLD;
  size_t keep = *vhd_footer ? d->carry_len - HOLD : d->carry_len;
  if (keep > 0 && raw_emit(d, d->offset - d->carry_len, d->carry, keep, err) < 0)
    return -1;
  *size = d->offset - (d->carry_len - keep);
  return 0;
}

int raw_decode(struct vreader *in, struct vzeros zeros, struct vsink *out, size_t block_size,
               uint64_t max_size, uint64_t *size, bool *vhd_footer, struct verr *err)
{
  struct raw_decoder d = {
    .out = out,
    .block_size = block_size,
    .align = block_size < RAW_CHUNK / 4 ? block_size : RAW_CHUNK / 4,
    .max_size = max_size,
    .zeros = zeros,
  };
  CLEANUP_FREE unsigned char *carry = malloc(d.align + HOLD);
  /* Only readers that cannot lend their bytes (decompressors, files) read into this. */
  CLEANUP_FREE unsigned char *scratch = NULL;
  if (carry == NULL || posix_memalign((void **)&scratch, 4096, RAW_CHUNK) != 0)
    return verr_set(err, VERR_NOMEM, "out of memory for the raw decoder's %u-byte buffer", RAW_CHUNK);
  d.carry = carry;
  *vhd_footer = false;
  for (;;) {
    const void *view;
    ssize_t n = vreader_view(in, &view, RAW_CHUNK - (size_t)(d.offset % RAW_CHUNK), scratch, err);
    if (n < 0)
      return -1;
    if (n == 0)
      return raw_finish(&d, size, vhd_footer, err);
    if (raw_step(&d, view, (size_t)n, err) < 0)
      return -1;
  }
}
