/* Test helper: the byte patterns that tests/data/blkhash.tsv names (tests/data/README),
 * generated in C; tests/data/patgen.c writes them to a file.
 *
 * A pattern is comma-separated segments: z:LEN (zeros), bHH:LEN (byte 0xHH),
 * rSEED:LEN (splitmix64 words, little-endian, last cut short); LEN takes K/M/G suffixes
 * (powers of 1024); "-" is empty. patgen_walk() calls `emit` with pieces of at most
 * `chunk` bytes, telling it whether a piece came from a z segment, so a test can feed
 * holes through blkhash_zero(). Returns 0, or -1 on a malformed pattern.
 */
#ifndef VIMPORT_TESTS_PATGEN_H
#define VIMPORT_TESTS_PATGEN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int (*patgen_emit_fn)(void *opaque, int from_zero_segment, const unsigned char *buf,
                              size_t len);

static inline uint64_t patgen_splitmix64(uint64_t *state)
{
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline int patgen_parse_len(const char *s, uint64_t *out)
{
  char *end;
  uint64_t n = strtoull(s, &end, 10);
  if (end == s)
    return -1;
  if (*end == 'K') n <<= 10, end++;
  else if (*end == 'M') n <<= 20, end++;
  else if (*end == 'G') n <<= 30, end++;
  if (*end != '\0' && *end != ',')
    return -1;
  *out = n;
  return 0;
}

static inline int patgen_walk(const char *pattern, size_t chunk, patgen_emit_fn emit, void *opaque)
{
  if (strcmp(pattern, "-") == 0)
    return 0;
  unsigned char *buf = malloc(chunk);
  if (buf == NULL)
    return -1;
  int rc = 0;
  for (const char *seg = pattern; rc == 0 && seg != NULL && *seg; ) {
    const char *colon = strchr(seg, ':');
    uint64_t n;
    if (colon == NULL || patgen_parse_len(colon + 1, &n) != 0) {
      rc = -1;
      break;
    }
    int zero = seg[0] == 'z';
    int random = seg[0] == 'r';
    uint64_t state = random ? strtoull(seg + 1, NULL, 10) : 0;
    int value = seg[0] == 'b' ? (int)strtol(seg + 1, NULL, 16) : 0;
    if (!zero && !random && seg[0] != 'b') {
      rc = -1;
      break;
    }
    while (rc == 0 && n > 0) {
      /* random pieces stay multiples of 8 so words continue across chunks */
      size_t k = n < chunk ? (size_t)n : chunk & ~(size_t)7;
      if (random) {
        for (size_t i = 0; i < k; i += 8) {
          uint64_t w = patgen_splitmix64(&state);
          for (size_t j = 0; j < 8 && i + j < k; j++)
            buf[i + j] = (unsigned char)(w >> (8 * j));
        }
      } else {
        memset(buf, value, k);
      }
      rc = emit(opaque, zero, buf, k);
      n -= k;
    }
    seg = strchr(colon, ',');
    if (seg != NULL)
      seg++;
  }
  free(buf);
  return rc;
}

#endif
