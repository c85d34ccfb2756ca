/* vimport source: HTTP response header parsing (status line, Content-Length,
 * Content-Range, ETag, Last-Modified, Content-Type, Accept-Ranges).
 *
 * Input comes from the network, so every function takes an explicit length, never
 * reads past it, and never trusts a number it did not range-check.
 */
#include "source/source.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

void source_http_response_reset(struct source_http_response *resp)
{
  memset(resp, 0, sizeof *resp);
  resp->content_length = -1;
  resp->range_total = -1;
}

static int is_ows(char c)
{
  return c == ' ' || c == '\t';
}

/* Parse decimal digits [*p, end) into *out; rejects empty input and overflow past
 * INT64_MAX so every size fits an int64_t and an off_t. */
static int parse_u63(const char **p, const char *end, uint64_t *out)
{
  const char *s = *p;
  uint64_t v = 0;
  if (s >= end || !isdigit((unsigned char)*s))
    return -1;
  while (s < end && isdigit((unsigned char)*s)) {
    unsigned d = (unsigned)(*s - '0');
    if (v > ((uint64_t)INT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
    s++;
  }
  *p = s;
  *out = v;
  return 0;
}

int source_http_parse_status(const char *line, size_t len, int *status)
{
  const char *p = line, *end = line + len;
  if (len < 5 || memcmp(p, "HTTP/", 5) != 0)
    return -1;
  p += 5;
  while (p < end && (isdigit((unsigned char)*p) || *p == '.'))
    p++;
  if (p >= end || *p != ' ')
    return -1;
  while (p < end && *p == ' ')
    p++;
  if (end - p < 3)
    return -1;
  for (int i = 0; i < 3; i++)
    if (!isdigit((unsigned char)p[i]))
      return -1;
  if (end - p > 3 && !isspace((unsigned char)p[3]))
    return -1;
  int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
  if (code < 100)
    return -1;
  *status = code;
  return 0;
}

int source_http_parse_content_range(const char *value, size_t len, uint64_t *first,
                                    uint64_t *last, int64_t *total)
{
  const char *p = value, *end = value + len;
  uint64_t f, l, t;
  if (len < 6 || strncasecmp(p, "bytes", 5) != 0 || !is_ows(p[5]))
    return -1;
  p += 6;
  while (p < end && is_ows(*p))
    p++;
  if (parse_u63(&p, end, &f) < 0 || p >= end || *p++ != '-')
    return -1;
  if (parse_u63(&p, end, &l) < 0 || p >= end || *p++ != '/')
    return -1;
  if (f > l)
    return -1;
  if (p < end && *p == '*') {
    p++;
    *total = -1;
  } else {
    if (parse_u63(&p, end, &t) < 0 || l >= t)
      return -1;
    *total = (int64_t)t;
  }
  while (p < end && is_ows(*p))
    p++;
  if (p != end)
    return -1;
  *first = f;
  *last = l;
  return 0;
}

int source_http_etag_is_strong(const char *etag)
{
  size_t n = strlen(etag);
  return n >= 2 && etag[0] == '"' && etag[n - 1] == '"';
}

/* Copy a header value into a fixed field; values too long to keep whole are dropped
 * rather than truncated, since a truncated ETag would be a different validator. */
static void copy_value(char *dst, size_t dst_size, const char *v, size_t vlen, int *bad)
{
  if (vlen >= dst_size) {
    dst[0] = '\0';
    *bad = 1;
    return;
  }
  for (size_t i = 0; i < vlen; i++)
    if ((unsigned char)v[i] < 0x20 && v[i] != '\t') {
      dst[0] = '\0';
      *bad = 1;
      return;
    }
  memcpy(dst, v, vlen);
  dst[vlen] = '\0';
}

static int value_is_token(const char *v, size_t vlen, const char *token)
{
  size_t n = strlen(token);
  return vlen == n && strncasecmp(v, token, n) == 0;
}

static void parse_content_length(struct source_http_response *resp, const char *v, size_t vlen)
{
  const char *p = v;
  uint64_t n;
  if (parse_u63(&p, v + vlen, &n) < 0 || p != v + vlen) {
    resp->content_length = -1;
    resp->bad_header = 1;
    return;
  }
  resp->content_length = (int64_t)n;
}

static void parse_header(struct source_http_response *resp, const char *name, size_t nlen,
                         const char *v, size_t vlen)
{
#define IS(h) (nlen == sizeof(h) - 1 && strncasecmp(name, h, nlen) == 0)
  if (IS("content-length")) {
    parse_content_length(resp, v, vlen);
  } else if (IS("content-range")) {
    resp->has_content_range =
        source_http_parse_content_range(v, vlen, &resp->range_first, &resp->range_last,
                                        &resp->range_total) == 0;
    if (!resp->has_content_range)
      resp->bad_header = 1;
  } else if (IS("etag")) {
    copy_value(resp->etag, sizeof resp->etag, v, vlen, &resp->bad_header);
  } else if (IS("last-modified")) {
    copy_value(resp->last_modified, sizeof resp->last_modified, v, vlen, &resp->bad_header);
  } else if (IS("content-type")) {
    copy_value(resp->content_type, sizeof resp->content_type, v, vlen, &resp->bad_header);
  } else if (IS("accept-ranges")) {
    resp->accept_ranges = value_is_token(v, vlen, "bytes");
  } else if (IS("x-amz-checksum-sha256")) {
    copy_value(resp->amz_checksum_sha256, sizeof resp->amz_checksum_sha256, v, vlen,
               &resp->bad_header);
  } else if (IS("x-amz-server-side-encryption")) {
    copy_value(resp->amz_sse, sizeof resp->amz_sse, v, vlen, &resp->bad_header);
  } else if (IS("x-amz-server-side-encryption-customer-algorithm")) {
    resp->amz_sse_customer = 1;
  } else if (IS("transfer-encoding")) {
    resp->chunked = vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0;
  }
#undef IS
}

int source_http_parse_line(struct source_http_response *resp, const char *line, size_t len)
{
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
    len--;
  if (len == 0)
    return 1;
  if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
    int status;
    source_http_response_reset(resp);
    if (source_http_parse_status(line, len, &status) == 0)
      resp->status = status;
    else
      resp->bad_header = 1;
    return 0;
  }
  const char *colon = memchr(line, ':', len);
  if (colon == NULL || colon == line)
    return 0; /* obsolete line folding or junk: nothing we rely on */
  size_t nlen = (size_t)(colon - line);
  const char *v = colon + 1, *end = line + len;
  while (v < end && is_ows(*v))
    v++;
  while (end > v && is_ows(end[-1]))
    end--;
  parse_header(resp, line, nlen, v, (size_t)(end - v));
  return 0;
}
