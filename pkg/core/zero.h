/* vimport core: zero detection, shared by every stage that skips or lends runs of zeros
 * (the source's ring, the raw decoder, block hashes, the target, NBD).
 *
 * Pure functions: no allocation, no state, no errors.
 */
#ifndef VIMPORT_CORE_ZERO_H
#define VIMPORT_CORE_ZERO_H

#include <stddef.h>

/* Whether buf[0..len) holds only zero bytes (1) or not (0); len 0 is all zeros.
 * Fast: one vectorised memcmp over the buffer, no byte loop past the first 16. */
int mem_is_zero(const void *buf, size_t len);

#endif
