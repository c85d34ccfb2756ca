/* The raw decoder: guest content is the stream itself. */
#include <stdlib.h>
#include <string.h>

#include "blkhash/blkhash.h"
#include "core/cleanup.h"
#include "pipeline.h"
#include "sniff/sniff.h"

/* Big enough that per-call costs vanish, small enough to stay in cache. */
#define RAW_CHUNK (1u << 20)

static int raw_emit(struct vsink *out, uint64_t offset, const unsigned char *buf, size_t len,
                    size_t block_size, struct verr *err);

static int raw_emit_checked(struct vsink *out, uint64_t offset, const unsigned char *buf, size_t len,
                            size_t block_size, uint64_t max_size, struct verr *err)
{
  if (max_size != 0 && (offset > max_size || len > max_size - offset))
    return verr_set(err, VERR_TARGET_TOO_SMALL,
                    "A larger PVC is required: the image is larger than the target's %llu "
                    "bytes; request more storage for the DataVolume",
                    (unsigned long long)max_size);
  return raw_emit(out, offset, buf, len, block_size, err);
}

/* Emit `len` bytes at `offset` as alternating data and zero extents, zeros found per
 * block, so the target never writes them and the block hash never hashes them. */
static int raw_emit(struct vsink *out, uint64_t offset, const unsigned char *buf, size_t len,
                    size_t block_size, struct verr *err)
{
  size_t run_start = 0;
  int run_zero = -1; /* unknown until the first block */
  for (size_t pos = 0; pos < len; pos += block_size) {
    size_t n = len - pos < block_size ? len - pos : block_size;
    int zero = n == block_size && blkhash_is_zero(buf + pos, n);
    if (run_zero != -1 && zero != run_zero) {
      int r = run_zero ? vsink_zero(out, offset + run_start, pos - run_start, err)
                       : vsink_data(out, offset + run_start, buf + run_start, pos - run_start, err);
      if (r < 0)
        return -1;
      run_start = pos;
    }
    run_zero = zero;
  }
  if (run_zero == 1)
    return vsink_zero(out, offset + run_start, len - run_start, err);
  if (run_zero == 0)
    return vsink_data(out, offset + run_start, buf + run_start, len - run_start, err);
  return 0;
}

/* A fixed VHD is its guest disk followed by a 512-byte footer. A source that cannot be
 * read by range (stdin) shows the footer only at its very end, so the decoder always
 * holds the last 512 bytes back and drops them if they are that footer. */
enum { HOLD = SNIFF_VHD_FOOTER_BYTES };

int raw_decode(struct vreader *in, struct vsink *out, size_t block_size, uint64_t max_size,
               uint64_t *size, bool *vhd_footer, struct verr *err)
{
  CLEANUP_FREE unsigned char *buf = NULL;
  if (posix_memalign((void **)&buf, 4096, RAW_CHUNK + HOLD) != 0)
    return verr_set(err, VERR_NOMEM, "out of memory for the raw decoder's %u-byte buffer", RAW_CHUNK);
  uint64_t offset = 0;
  size_t held = 0; /* bytes at the start of buf not emitted yet */
  *vhd_footer = false;
  for (;;) {
    /* Emitted pieces stay RAW_CHUNK long so zero detection stays aligned to blocks. */
    ssize_t n = vreader_read_full(in, buf + held, RAW_CHUNK + HOLD - held, err);
    if (n < 0)
      return -1;
    size_t have = held + (size_t)n;
    if (have <= HOLD) {
      uint64_t vsize;
      if (have == HOLD && sniff_vhd_fixed_footer(buf, offset + HOLD, &vsize) && vsize == offset) {
        *vhd_footer = true;
        break;
      }
      if (have > 0 && raw_emit_checked(out, offset, buf, have, block_size, max_size, err) < 0)
        return -1;
      offset += have;
      break;
    }
    size_t emit = have - HOLD;
    if (raw_emit_checked(out, offset, buf, emit, block_size, max_size, err) < 0)
      return -1;
    offset += emit;
    memmove(buf, buf + emit, HOLD);
    held = HOLD;
  }
  *size = offset;
  return 0;
}
