/* vimport report: bounded JSON string output. See jsonw.h. */

#include "jsonw.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The longest escape of one unit: "\u00XX" or "\ufffd", or 4 bytes of UTF-8. */
#define JSONW_UNIT_MAX 6

static void jsonw_bytes(struct jsonw *w, const char *p, size_t n)
{
  if (w->len < w->size) {
    size_t room = w->size - w->len;
    memcpy(w->buf + w->len, p, n < room ? n : room);
  }
  w->len += n;
}

void jsonw_raw(struct jsonw *w, const char *s)
{
  jsonw_bytes(w, s, strlen(s));
}

void jsonw_u64(struct jsonw *w, uint64_t v)
{
  char num[24];
  int n = snprintf(num, sizeof num, "%" PRIu64, v);
  jsonw_bytes(w, num, (size_t)n);
}

static bool is_cont(unsigned char c)
{
  return (c & 0xc0) == 0x80;
}

/* Length of the valid UTF-8 sequence at s[0..n) (2 to 4), or 0 if it is not valid:
 * overlong forms, surrogates and code points past U+10FFFF are invalid (RFC 3629). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
  unsigned char c = s[0];
  unsigned char lo = 0x80, hi = 0xbf;
  size_t len;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0)
      lo = 0xa0; /* overlong */
    if (c == 0xed)
      hi = 0x9f; /* surrogates */
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0)
      lo = 0x90; /* overlong */
    if (c == 0xf4)
      hi = 0x8f; /* past U+10FFFF */
  } else
    return 0;
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (!is_cont(s[i]))
      return 0;
  return len;
}

/* Escape the unit (one character, or one invalid byte) at s[0..n) into out. Returns
 * the escaped length and sets *consumed to the input bytes it stands for. */
static size_t jsonw_escape_unit(const unsigned char *s, size_t n, size_t *consumed,
                                char out[JSONW_UNIT_MAX])
{
  unsigned char c = s[0];
  *consumed = 1;
  if (c >= 0x80) {
    size_t len = utf8_seq_len(s, n);
    if (len == 0) {
      memcpy(out, "\\ufffd", 6);
      return 6;
    }
    memcpy(out, s, len);
    *consumed = len;
    return len;
  }
  const char *short_escape = NULL;
  switch (c) {
  case '"': short_escape = "\\\""; break;
  case '\\': short_escape = "\\\\"; break;
  case '\b': short_escape = "\\b"; break;
  case '\f': short_escape = "\\f"; break;
  case '\n': short_escape = "\\n"; break;
  case '\r': short_escape = "\\r"; break;
  case '\t': short_escape = "\\t"; break;
  default: break;
  }
  if (short_escape) {
    memcpy(out, short_escape, 2);
    return 2;
  }
  if (c < 0x20) {
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "\\u00", 4);
    out[4] = hex[c >> 4];
    out[5] = hex[c & 15];
    return 6;
  }
  out[0] = (char)c;
  return 1;
}

size_t jsonw_escaped_len(const char *s, size_t n)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t total = 0, i = 0;
  char unit[JSONW_UNIT_MAX];
  while (i < n) {
    size_t used;
    total += jsonw_escape_unit(p + i, n - i, &used, unit);
    i += used;
  }
  return total;
}

/* Write the units of s[0..n) whose escaped span lies in [0, head) or [from, end): the
 * head runs up to the first unit that would cross `head`, the tail starts at the first
 * unit boundary at or after `from`. The marker goes between them. */
static void jsonw_cut(struct jsonw *w, const unsigned char *p, size_t n, size_t head,
                      size_t from)
{
  size_t at = 0; /* escaped length of the units before p[i] */
  size_t i = 0;
  bool in_head = true;
  char unit[JSONW_UNIT_MAX];
  while (i < n) {
    size_t used;
    size_t ulen = jsonw_escape_unit(p + i, n - i, &used, unit);
    if (in_head && at + ulen > head) {
      jsonw_bytes(w, JSONW_MARKER, JSONW_MARKER_LEN);
      in_head = false;
    }
    if (in_head || at >= from)
      jsonw_bytes(w, unit, ulen);
    at += ulen;
    i += used;
  }
}

void jsonw_string(struct jsonw *w, const char *s, size_t n, size_t cap)
{
  const unsigned char *p = (const unsigned char *)s;
  jsonw_bytes(w, "\"", 1);
  size_t escaped = cap == JSONW_NO_CAP ? 0 : jsonw_escaped_len(s, n);
  if (cap == JSONW_NO_CAP || escaped <= cap) {
    jsonw_cut(w, p, n, SIZE_MAX, 0);
  } else {
    /* Keep two thirds from the head and one from the tail: an error message starts
     * with what vimport was doing and ends with the cause. */
    size_t budget = cap > JSONW_MARKER_LEN ? cap - JSONW_MARKER_LEN : 0;
    size_t tail = budget / 3;
    jsonw_cut(w, p, n, budget - tail, escaped - tail);
  }
  jsonw_bytes(w, "\"", 1);
}
