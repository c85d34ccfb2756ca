/* vimport core: see hugebuf.h. Buffers are anonymous mappings of their own, not heap
 * memory: the alignment costs no waste once the slack is unmapped, and giving one back
 * returns it to the kernel at once. Under AddressSanitizer they are heap memory. */
#include "hugebuf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Small buffers keep to small pages: a huge page would make each cost 2 MiB. */
static size_t page_for(size_t size)
{
  return size >= HUGEBUF_PAGE ? HUGEBUF_PAGE : 4096;
}

#ifdef HUGEBUF_ON_HEAP
/* Under AddressSanitizer: heap memory, whose redzones catch an access past either end of
 * a buffer (ASan does not guard mappings). No huge pages then; nothing needs them. */
static void *buffer_map(size_t size)
{
  void *p = NULL;
  int r = posix_memalign(&p, page_for(size), size);
  if (r != 0) {
    errno = r;
    return NULL;
  }
  return memset(p, 0, size);
}

void hugebuf_free(void *p, size_t size)
{
  (void)size;
  free(p);
}
#else
static size_t mapped_size(size_t size)
{
  size_t page = page_for(size);
  return (size + page - 1) / page * page;
}

static void *buffer_map(size_t size)
{
  size_t len = mapped_size(size);
  size_t slack = page_for(size) - 4096; /* mmap gives 4096-aligned addresses */
  unsigned char *map = mmap(NULL, len + slack, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED)
    return NULL;
  uintptr_t at = ((uintptr_t)map + slack) / page_for(size) * page_for(size);
  unsigned char *p = (unsigned char *)at;
  if (p > map)
    munmap(map, (size_t)(p - map));
  if (map + len + slack > p + len)
    munmap(p + len, (size_t)(map + len + slack - (p + len)));
  if (len >= HUGEBUF_PAGE)
    (void)madvise(p, len, MADV_HUGEPAGE); /* EINVAL where THP is off: small pages then */
  return p;
}

void hugebuf_free(void *p, size_t size)
{
  if (p != NULL)
    munmap(p, mapped_size(size));
}
#endif

void *hugebuf_alloc(size_t size)
{
  if (size == 0 || size > SIZE_MAX - 2 * HUGEBUF_PAGE) {
    errno = size == 0 ? EINVAL : ENOMEM;
    return NULL;
  }
  return buffer_map(size);
}
