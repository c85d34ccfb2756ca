/* nodepull: the request head and the Range header, parsed without I/O (nodepull.h).
 * Every byte here comes from a client, so every field is bounded and anything odd is
 * either refused (the head) or read as "no range" (the whole file). */
#include "nodepull/nodepull.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* The next line of the head: [*pos, end of line) without CR LF. Returns its length, or
 * -1 when no LF is left. */
static long next_line(const char *head, size_t len, size_t *pos, const char **line)
{
  const char *start = head + *pos;
  const char *lf = memchr(start, '\n', len - *pos);
  if (lf == NULL)
    return -1;
  size_t n = (size_t)(lf - start);
  *pos += n + 1;
  if (n > 0 && start[n - 1] == '\r')
    n--;
  *line = start;
  return (long)n;
}

static int hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)tolower((unsigned char)c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode the path of a request target (query dropped) into out. An invalid
 * escape, a NUL or a path too long leaves out empty: such a path names no file. */
static void decode_path(const char *target, size_t n, char *out, size_t size)
{
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n && target[i] != '?' && target[i] != '#'; i++) {
    char c = target[i];
    if (c == '%') {
      int hi = i + 2 < n ? hex_value(target[i + 1]) : -1;
      int lo = i + 2 < n ? hex_value(target[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
        return (void)(out[0] = '\0');
      c = (char)(hi * 16 + lo);
      i += 2;
    }
    if (o + 1 >= size)
      return (void)(out[0] = '\0');
    out[o++] = c;
  }
  out[o] = '\0';
}

static int parse_request_line(const char *line, size_t n, struct nodepull_request *req)
{
  const char *sp1 = memchr(line, ' ', n);
  if (sp1 == NULL)
    return -1;
  size_t mlen = (size_t)(sp1 - line);
  const char *target = sp1 + 1;
  const char *sp2 = memchr(target, ' ', n - mlen - 1);
  if (sp2 == NULL || sp2 == target)
    return -1;
  size_t tlen = (size_t)(sp2 - target);
  const char *version = sp2 + 1;
  size_t vlen = n - mlen - 1 - tlen - 1;
  if (vlen != 8 || strncmp(version, "HTTP/1.", 7) != 0 || (version[7] != '0' && version[7] != '1'))
    return -1;
  req->keep_alive = version[7] == '1';
  if (mlen == 3 && strncmp(line, "GET", 3) == 0)
    req->method = NODEPULL_GET;
  else if (mlen == 4 && strncmp(line, "HEAD", 4) == 0)
    req->method = NODEPULL_HEAD;
  else
    req->method = NODEPULL_OTHER;
  if (target[0] == '/')
    decode_path(target, tlen, req->path, sizeof req->path);
  return 0;
}

/* Copy a header value, trimmed, when it fits; else leave `out` empty. */
static void copy_value(const char *v, size_t n, char *out, size_t size)
{
  while (n > 0 && (*v == ' ' || *v == '\t'))
    v++, n--;
  while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    n--;
  if (n >= size)
    n = 0;
  memcpy(out, v, n);
  out[n] = '\0';
}

static bool value_is(const char *v, size_t n, const char *word)
{
  char tmp[64];
  copy_value(v, n, tmp, sizeof tmp);
  return strcasecmp(tmp, word) == 0;
}

static void parse_field(const char *line, size_t n, struct nodepull_request *req)
{
  const char *colon = memchr(line, ':', n);
  if (colon == NULL)
    return;
  size_t klen = (size_t)(colon - line);
  const char *v = colon + 1;
  size_t vlen = n - klen - 1;
#define FIELD_IS(name) (klen == sizeof(name) - 1 && strncasecmp(line, name, klen) == 0)
  if (FIELD_IS("Range"))
    copy_value(v, vlen, req->range, sizeof req->range);
  else if (FIELD_IS("If-Range"))
    copy_value(v, vlen, req->if_range, sizeof req->if_range);
  else if (FIELD_IS("Connection") && value_is(v, vlen, "close"))
    req->keep_alive = false;
  else if (FIELD_IS("Transfer-Encoding"))
    req->has_body = true;
  else if (FIELD_IS("Content-Length") && !value_is(v, vlen, "0"))
    req->has_body = true;
#undef FIELD_IS
}

int nodepull_parse_request(const char *head, size_t len, struct nodepull_request *req)
{
  memset(req, 0, sizeof *req);
  size_t pos = 0;
  const char *line;
  long n = next_line(head, len, &pos, &line);
  if (n <= 0 || parse_request_line(line, (size_t)n, req) < 0)
    return -1;
  while ((n = next_line(head, len, &pos, &line)) > 0)
    parse_field(line, (size_t)n, req);
  return n == 0 ? 0 : -1; /* the head ends with an empty line */
}

/* A decimal number of at most 19 digits (so it fits in int64, as Go's ParseInt needs). */
static bool parse_u63(const char *s, size_t n, uint64_t *v)
{
  if (n == 0 || n > 19)
    return false;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    x = x * 10 + (uint64_t)(s[i] - '0');
  }
  if (x > INT64_MAX)
    return false;
  *v = x;
  return true;
}

enum nodepull_range nodepull_parse_range(const char *value, uint64_t size, uint64_t *start,
                                         uint64_t *length)
{
  if (value[0] == '\0')
    return NODEPULL_RANGE_WHOLE;
  if (strncmp(value, "bytes=", 6) != 0)
    return NODEPULL_RANGE_UNSATISFIABLE; /* Go: "invalid range" */
  const char *spec = value + 6;
  while (*spec == ' ')
    spec++;
  size_t n = strlen(spec);
  while (n > 0 && spec[n - 1] == ' ')
    n--;
  if (memchr(spec, ',', n) != NULL)
    return NODEPULL_RANGE_WHOLE; /* several ranges: the whole file (see nodepull.h) */
  const char *dash = memchr(spec, '-', n);
  if (dash == NULL)
    return NODEPULL_RANGE_UNSATISFIABLE;
  size_t first_len = (size_t)(dash - spec), last_len = n - first_len - 1;
  uint64_t first, last;
  if (first_len == 0) { /* a suffix: the last N bytes */
    if (!parse_u63(dash + 1, last_len, &last) || last == 0)
      return NODEPULL_RANGE_UNSATISFIABLE;
    *length = last < size ? last : size;
    *start = size - *length;
    return size == 0 ? NODEPULL_RANGE_UNSATISFIABLE : NODEPULL_RANGE_PART;
  }
  if (!parse_u63(spec, first_len, &first) || first >= size)
    return NODEPULL_RANGE_UNSATISFIABLE;
  *start = first;
  if (last_len == 0) {
    *length = size - first;
    return NODEPULL_RANGE_PART;
  }
  if (!parse_u63(dash + 1, last_len, &last) || last < first)
    return NODEPULL_RANGE_UNSATISFIABLE;
  *length = (last >= size ? size - 1 : last) - first + 1;
  return NODEPULL_RANGE_PART;
}
