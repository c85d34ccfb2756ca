/* vimport core: the data path's large buffers (the HTTP ring, hash and write buffers),
 * on transparent huge pages where the kernel offers them. Every byte of the source
 * passes through such buffers two or three times, on threads of different cores; with
 * 4 KiB pages each pass walks the page table once per page, with 2 MiB pages once per
 * 512. Measured on W3 (6 GiB through the HTTP ring): the stream stage 5.63 -> 5.21 s,
 * CPU 10.4 -> 9.5 s, from the ring alone.
 *
 * The first touch of a huge page is dearer where freed memory goes back to a hypervisor
 * (about 10 ms a page on the benchmark VM, 19 pages per compressed-qcow2 import); the
 * measurements above are net of it.
 *
 * Debian's default THP mode is "madvise": only regions marked MADV_HUGEPAGE get huge
 * pages. Where THP is off, or the kernel has no 2 MiB page free, the same mapping
 * works with small pages: nothing here depends on getting huge pages.
 *
 * hugebuf_alloc(size): `size` bytes, zero-filled, aligned to 4096 (so usable for
 * O_DIRECT) and, when size is at least HUGEBUF_PAGE, to HUGEBUF_PAGE. NULL with errno
 * set when there is no memory. The caller owns it and gives it back with
 * hugebuf_free(p, size), the same size; hugebuf_free(NULL, size) does nothing.
 *
 * Memory: the mapping is rounded up to whole huge pages, and a huge page is resident
 * as a whole once touched, so ask for buffers that are used in full (one arena for a
 * pool's jobs rather than many small buffers).
 */
#ifndef VIMPORT_CORE_HUGEBUF_H
#define VIMPORT_CORE_HUGEBUF_H

#include <stddef.h>

#define HUGEBUF_PAGE ((size_t)2 << 20)

/* Under AddressSanitizer buffers come from the heap instead, so that its redzones catch
 * an access past either end (it does not guard mappings); no huge pages then. */
#if defined(__SANITIZE_ADDRESS__)
#define HUGEBUF_ON_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HUGEBUF_ON_HEAP 1
#endif
#endif

void *hugebuf_alloc(size_t size);
void hugebuf_free(void *p, size_t size);

#endif
