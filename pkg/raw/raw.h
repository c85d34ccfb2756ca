/* vimport raw: the raw decoder. Guest content is the stream itself, from offset 0.
 *
 * raw_decode() copies `in` to `out` in guest order, turning every all-zero block of
 * `block_size` bytes into a zero extent, until `in` ends. It looks at the stream through
 * vreader_view(), so bytes a reader lends (the HTTP source's ring) go to `out` in place,
 * without a copy. Views of `in` inside `zeros` (source_zeros() of the reader at the
 * bottom of `in`; {NULL, 0}: none) count as zeros without a look.
 *
 * A stream that ends with a fixed-VHD footer (sniff_vhd_fixed_footer) describing exactly
 * the bytes before it is a fixed VHD: the footer is not guest content and is dropped,
 * and *vhd_footer says so.
 *
 * Contract (core/stream.h): every guest byte in [0, *size) is covered exactly once, by a
 * data extent or a zero extent, in rising offsets. Data buffers belong to the decoder (or
 * to the reader that lent them) and are only valid during the call. Fails with
 * VERR_TARGET_TOO_SMALL when the stream is longer than `max_size` (0: no bound), before
 * the extent that would pass it; reader and sink errors pass through unchanged.
 * *size is the number of guest bytes produced. Memory: one 1 MiB buffer and a carry of
 * under 1 MiB.
 */
#ifndef VIMPORT_RAW_H
#define VIMPORT_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"

int raw_decode(struct vreader *in, struct vzeros zeros, struct vsink *out, size_t block_size,
               uint64_t max_size, uint64_t *size, bool *vhd_footer, struct verr *err);

#endif
