/* vimport core: see zero.h. */
#include "core/zero.h"

#include <string.h>

int mem_is_zero(const void *buf, size_t len)
{
  const unsigned char *p = buf;
  /* Check a short head byte by byte, then compare the buffer with itself shifted by 16:
   * memcmp is vectorised, and equal shifted halves plus a zero head mean all zeros. */
  size_t head = len < 16 ? len : 16;
  for (size_t i = 0; i < head; i++)
    if (p[i] != 0)
      return 0;
  return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}
