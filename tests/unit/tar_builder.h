/* Test helper: build tar archives in memory, byte by byte, so that tests can make the
 * hostile ones no tar tool writes (names with '..', links out, bad checksums). Header
 * only: each test binary includes it once.
 */
#ifndef VIMPORT_TESTS_TAR_BUILDER_H
#define VIMPORT_TESTS_TAR_BUILDER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tarb {
  unsigned char *p;
  size_t len, cap;
};

static inline unsigned char *tarb_grow(struct tarb *b, size_t n)
{
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->p = realloc(b->p, b->cap);
    if (b->p == NULL)
      abort();
  }
  unsigned char *at = b->p + b->len;
  memset(at, 0, n);
  b->len += n;
  return at;
}

/* Data padded to whole blocks. */
static inline void tarb_data(struct tarb *b, const void *data, size_t n)
{
  unsigned char *at = tarb_grow(b, (n + 511) / 512 * 512);
  memcpy(at, data, n);
}

/* An octal field of `n` bytes: n-1 zero-padded digits and a NUL (values must fit). */
static inline void tarb_octal(unsigned char *at, size_t n, uint64_t v)
{
  for (size_t i = n - 1; i-- > 0; v >>= 3)
    at[i] = (unsigned char)('0' + (v & 7));
  at[n - 1] = '\0';
}

/* A ustar header (POSIX magic); `name` may be up to 100 bytes, `prefix` up to 155. */
static inline unsigned char *tarb_header_prefix(struct tarb *b, const char *prefix,
                                                const char *name, char type, uint64_t size,
                                                const char *link, unsigned mode)
{
  unsigned char *h = tarb_grow(b, 512);
  memcpy(h, name, strnlen(name, 100));
  tarb_octal(h + 100, 8, mode);
  tarb_octal(h + 108, 8, 0);
  tarb_octal(h + 116, 8, 0);
  tarb_octal(h + 124, 12, size);
  tarb_octal(h + 136, 12, 1700000000u);
  h[156] = (unsigned char)type;
  if (link != NULL)
    memcpy(h + 157, link, strnlen(link, 100));
  memcpy(h + 257, "ustar\0" "00", 8);
  if (prefix != NULL)
    memcpy(h + 345, prefix, strnlen(prefix, 155));
  unsigned sum = 0;
  memset(h + 148, ' ', 8);
  for (int i = 0; i < 512; i++)
    sum += h[i];
  tarb_octal(h + 148, 7, sum);
  h[155] = ' ';
  return h;
}

static inline unsigned char *tarb_header(struct tarb *b, const char *name, char type,
                                         uint64_t size, const char *link, unsigned mode)
{
  return tarb_header_prefix(b, NULL, name, type, size, link, mode);
}

static inline void tarb_file(struct tarb *b, const char *name, const char *content)
{
  tarb_header(b, name, '0', strlen(content), NULL, 0644);
  tarb_data(b, content, strlen(content));
}

/* A metadata entry ('x' pax, 'L' or 'K' GNU long name) with its payload. */
static inline void tarb_meta(struct tarb *b, char type, const char *payload, size_t n)
{
  tarb_header(b, "././@LongLink", type, n, NULL, 0644);
  tarb_data(b, payload, n);
}

/* One pax record "<len> key=value\n", its length counting itself. */
static inline void tarb_pax_record(char *out, size_t size, const char *key, const char *value)
{
  size_t body = strlen(key) + strlen(value) + 3; /* ' ', '=', '\n' */
  size_t len = body + 1;
  while (snprintf(NULL, 0, "%zu", len) + body > len)
    len++;
  snprintf(out, size, "%zu %s=%s\n", len, key, value);
}

static inline void tarb_end(struct tarb *b)
{
  tarb_grow(b, 1024);
}

#endif
