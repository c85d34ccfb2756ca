/* The raw decoder: guest content is the stream itself. */
#include <stdlib.h>

#include "blkhash/blkhash.h"
#include "core/cleanup.h"
#include "pipeline.h"

/* Big enough that per-call costs vanish, small enough to stay in cache. */
#define RAW_CHUNK (1u << 20)

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

int raw_decode(struct vreader *in, struct vsink *out, size_t block_size, uint64_t max_size,
               uint64_t *size, struct verr *err)
{
  CLEANUP_FREE unsigned char *buf = NULL;
  if (posix_memalign((void **)&buf, 4096, RAW_CHUNK) != 0)
    return verr_set(err, VERR_NOMEM, "out of memory for the raw decoder's %u-byte buffer", RAW_CHUNK);
  uint64_t offset = 0;
  for (;;) {
    /* Full chunks keep zero detection aligned to blocks whatever the source's read sizes. */
    ssize_t n = vreader_read_full(in, buf, RAW_CHUNK, err);
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    if (max_size != 0 && (uint64_t)n > max_size - offset)
      return verr_set(err, VERR_TARGET_TOO_SMALL,
                      "A larger PVC is required: the image is larger than the target's %llu "
                      "bytes; request more storage for the DataVolume",
                      (unsigned long long)max_size);
    if (raw_emit(out, offset, buf, (size_t)n, block_size, err) < 0)
      return -1;
    offset += (uint64_t)n;
    if ((size_t)n < RAW_CHUNK)
      break;
  }
  *size = offset;
  return 0;
}
