/* pkg/core: hugebuf, the data path's large buffers. Sizes round up to whole pages and
 * come back zeroed and aligned; big ones are marked for huge pages (read back from
 * /proc/self/smaps, where the kernel's THP mode allows it), small ones are not.
 * body_buf, the bounded response body: appends stay NUL-terminated, the bound is exact,
 * and a size that would overflow is refused, not wrapped. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bodybuf.h"
#include "core/hugebuf.h"

static const size_t sizes[] = {
  1, 4096, 4097, (size_t)1 << 20, HUGEBUF_PAGE - 1, HUGEBUF_PAGE, HUGEBUF_PAGE + 1,
  5 * ((size_t)1 << 20), 16 * ((size_t)1 << 20),
};

static bool all_zero(const unsigned char *p, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (p[i] != 0)
      return false;
  return true;
}

Test(hugebuf, aligned_zeroed_and_writable_to_the_last_byte)
{
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    size_t n = sizes[i];
    unsigned char *p = hugebuf_alloc(n);
    cr_assert_not_null(p, "hugebuf_alloc(%zu): %s", n, strerror(errno));
    cr_assert_eq((uintptr_t)p % 4096, 0, "size %zu: %p is not page aligned", n, (void *)p);
    if (n >= HUGEBUF_PAGE)
      cr_assert_eq((uintptr_t)p % HUGEBUF_PAGE, 0, "size %zu: %p is not 2 MiB aligned", n,
                   (void *)p);
    cr_assert(all_zero(p, n), "size %zu: not zero-filled", n);
    memset(p, 0xa5, n);
    cr_assert_eq(p[n - 1], 0xa5);
    hugebuf_free(p, n);
  }
}

Test(hugebuf, refuses_zero_and_impossible_sizes)
{
  errno = 0;
  cr_assert_null(hugebuf_alloc(0));
  cr_assert_eq(errno, EINVAL);
  errno = 0;
  cr_assert_null(hugebuf_alloc(SIZE_MAX));
  cr_assert_eq(errno, ENOMEM);
  hugebuf_free(NULL, 4096); /* nothing to give back: no crash */
}

/* The kernel's THP mode: "always", "madvise" or "never" (the bracketed word). */
static void thp_mode(char *out, size_t size)
{
  snprintf(out, size, "never");
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (f == NULL)
    return;
  char line[128];
  if (fgets(line, sizeof line, f) != NULL) {
    char *open = strchr(line, '['), *close = open ? strchr(open, ']') : NULL;
    if (open != NULL && close != NULL)
      snprintf(out, size, "%.*s", (int)(close - open - 1), open + 1);
  }
  fclose(f);
}

/* THPeligible of the mapping holding p: 1 or 0, -1 when smaps has no such line. */
static int thp_eligible(const void *p)
{
  FILE *f = fopen("/proc/self/smaps", "r");
  cr_assert_not_null(f);
  char line[256];
  int in = 0, eligible = -1;
  while (eligible < 0 && fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) /* a mapping's first line */
      in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    else if (in && sscanf(line, "THPeligible: %d", &eligible) == 1)
      break;
  }
  fclose(f);
  return eligible;
}

Test(hugebuf, big_buffers_ask_for_huge_pages_small_ones_do_not)
{
#ifdef HUGEBUF_ON_HEAP
  cr_skip_test("built with AddressSanitizer: hugebuf gives heap memory, not huge pages");
#endif
  char mode[32];
  thp_mode(mode, sizeof mode);
  if (strcmp(mode, "madvise") != 0 && strcmp(mode, "always") != 0)
    cr_skip_test("transparent huge pages are '%s' here: nothing to ask for", mode);
  size_t big = 16 * ((size_t)1 << 20);
  unsigned char *p = hugebuf_alloc(big);
  cr_assert_not_null(p);
  int e = thp_eligible(p);
  if (e < 0)
    cr_skip_test("this kernel's smaps has no THPeligible line");
  cr_assert_eq(e, 1, "a %zu-byte buffer is not eligible for huge pages", big);
  hugebuf_free(p, big);
  if (strcmp(mode, "madvise") == 0) {
    size_t small = (size_t)1 << 20;
    unsigned char *q = hugebuf_alloc(small);
    cr_assert_not_null(q);
    cr_assert_eq(thp_eligible(q), 0, "a 1 MiB buffer asked for huge pages");
    hugebuf_free(q, small);
  }
}

Test(body_buf, appends_up_to_the_bound_and_stops_past_it)
{
  struct body_buf b = { .max = 8 };
  cr_assert_str_eq(body_buf_text(&b), "", "nothing arrived yet");
  char abc[] = "abc", defgh[] = "defgh", i[] = "i";
  cr_assert_eq(body_buf_append(abc, 1, 3, &b), 3);
  cr_assert_eq(body_buf_append(defgh, 5, 1, &b), 5, "exactly the bound is taken");
  cr_assert_str_eq(body_buf_text(&b), "abcdefgh");
  cr_assert_eq(b.len, 8);
  cr_assert(!b.too_big);
  cr_assert_eq(body_buf_append(i, 1, 1, &b), 0, "one byte past the bound stops the transfer");
  cr_assert(b.too_big);
  cr_assert_str_eq(body_buf_text(&b), "abcdefgh", "what was taken is kept");
  free(b.data);
}

Test(body_buf, a_size_that_would_wrap_is_too_big)
{
  struct body_buf b = { .max = 16 };
  char x[] = "x";
  cr_assert_eq(body_buf_append(x, 1, 1, &b), 1);
  cr_assert_eq(body_buf_append(x, SIZE_MAX, 1, &b), 0);
  cr_assert(b.too_big);
  cr_assert_eq(b.len, 1);
  free(b.data);
}
