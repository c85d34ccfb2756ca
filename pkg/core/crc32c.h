/* vimport core: CRC-32C (Castagnoli, RFC 3720 appendix B.4), the checksum Google Cloud
 * Storage keeps for every object (its "crc32c" metadata: these 4 bytes big-endian,
 * base64). Incremental: start from 0, feed the bytes in order.
 *
 *   uint32_t c = 0;
 *   c = crc32c_update(c, buf1, len1);
 *   c = crc32c_update(c, buf2, len2);   // == crc32c_update(0, buf1 ++ buf2, ...)
 *
 * SSE4.2's crc32 instruction when the CPU has it (about 20x the table's speed), a
 * table otherwise; both give the same value. No state, thread-safe.
 */
#ifndef VIMPORT_CORE_CRC32C_H
#define VIMPORT_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

/* The table path alone, for tests that compare it with the instruction. */
uint32_t crc32c_update_portable(uint32_t crc, const void *buf, size_t len);

#endif
