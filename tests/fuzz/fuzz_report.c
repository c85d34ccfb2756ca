/* libFuzzer target for pkg/report: arbitrary bytes as message, labels, digests and
 * error -> the termination message is always valid JSON in strict UTF-8, one line, and
 * shorter than REPORT_MAX_JSON, for every buffer size from REPORT_MIN_JSON up.
 *
 * Input layout: byte 0 picks the buffer size and flags; the rest is split at 0x00
 * bytes into strings: message, then (key, value) label pairs, with the last string
 * also used as format, digest, and verified stage.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "report/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- a minimal strict JSON validator (RFC 8259 + strict UTF-8) ---- */

struct jv {
  const unsigned char *p;
  const unsigned char *end;
  int depth;
};

static bool jv_value(struct jv *v);

static void jv_ws(struct jv *v)
{
  while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r'))
    v->p++;
}

static bool jv_lit(struct jv *v, const char *lit)
{
  size_t n = strlen(lit);
  if ((size_t)(v->end - v->p) < n || memcmp(v->p, lit, n) != 0)
    return false;
  v->p += n;
  return true;
}

static bool jv_hex4(struct jv *v, unsigned *out)
{
  unsigned x = 0;
  for (int i = 0; i < 4; i++) {
    if (v->p >= v->end)
      return false;
    unsigned c = *v->p++;
    if (c >= '0' && c <= '9') x = x * 16 + (c - '0');
    else if (c >= 'a' && c <= 'f') x = x * 16 + (c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') x = x * 16 + (c - 'A' + 10);
    else return false;
  }
  *out = x;
  return true;
}

/* One UTF-8 sequence starting with a byte >= 0x80, strictly (no overlongs, surrogates). */
static bool jv_utf8(struct jv *v)
{
  unsigned c = *v->p;
  size_t len;
  unsigned cp;
  if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
  else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
  else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
  else return false;
  if ((size_t)(v->end - v->p) < len)
    return false;
  for (size_t i = 1; i < len; i++) {
    if ((v->p[i] & 0xc0) != 0x80)
      return false;
    cp = (cp << 6) | (v->p[i] & 0x3f);
  }
  static const unsigned min[] = { 0, 0, 0x80, 0x800, 0x10000 };
  if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return false;
  v->p += len;
  return true;
}

static bool jv_string(struct jv *v)
{
  if (v->p >= v->end || *v->p != '"')
    return false;
  v->p++;
  while (v->p < v->end) {
    unsigned c = *v->p;
    if (c == '"') {
      v->p++;
      return true;
    }
    if (c < 0x20)
      return false;
    if (c >= 0x80) {
      if (!jv_utf8(v))
        return false;
      continue;
    }
    v->p++;
    if (c != '\\')
      continue;
    if (v->p >= v->end)
      return false;
    c = *v->p++;
    if (c == 'u') {
      unsigned cp;
      if (!jv_hex4(v, &cp))
        return false;
      if (cp >= 0xd800 && cp <= 0xdfff) /* we never emit surrogate escapes */
        return false;
    } else if (!strchr("\"\\/bfnrt", (int)c)) {
      return false;
    }
  }
  return false;
}

static bool jv_number(struct jv *v)
{
  const unsigned char *start = v->p;
  if (v->p < v->end && *v->p == '-')
    v->p++;
  if (v->p < v->end && *v->p == '0')
    v->p++;
  else {
    if (v->p >= v->end || *v->p < '1' || *v->p > '9')
      return false;
    while (v->p < v->end && *v->p >= '0' && *v->p <= '9')
      v->p++;
  }
  return v->p > start; /* we only emit non-negative integers */
}

static bool jv_members(struct jv *v, char close, bool keyed)
{
  v->p++; /* the opening bracket */
  jv_ws(v);
  if (v->p < v->end && *v->p == close) {
    v->p++;
    return true;
  }
  for (;;) {
    jv_ws(v);
    if (keyed) {
      if (!jv_string(v))
        return false;
      jv_ws(v);
      if (v->p >= v->end || *v->p++ != ':')
        return false;
    }
    if (!jv_value(v))
      return false;
    jv_ws(v);
    if (v->p >= v->end)
      return false;
    char c = (char)*v->p++;
    if (c == close)
      return true;
    if (c != ',')
      return false;
  }
}

static bool jv_value(struct jv *v)
{
  if (++v->depth > 16)
    return false;
  jv_ws(v);
  bool ok;
  if (v->p >= v->end)
    ok = false;
  else if (*v->p == '{')
    ok = jv_members(v, '}', true);
  else if (*v->p == '[')
    ok = jv_members(v, ']', false);
  else if (*v->p == '"')
    ok = jv_string(v);
  else if (*v->p == 't')
    ok = jv_lit(v, "true");
  else if (*v->p == 'f')
    ok = jv_lit(v, "false");
  else if (*v->p == 'n')
    ok = jv_lit(v, "null");
  else
    ok = jv_number(v);
  v->depth--;
  return ok;
}

/* Whether buf[0..len) is exactly one JSON object and nothing else. */
static bool json_valid_object(const char *buf, size_t len)
{
  struct jv v = { (const unsigned char *)buf, (const unsigned char *)buf + len, 0 };
  jv_ws(&v);
  if (v.p >= v.end || *v.p != '{' || !jv_value(&v))
    return false;
  jv_ws(&v);
  return v.p == v.end;
}

/* ---- the target ---- */

/* Next NUL-separated string of the input, copied (the report needs C strings). */
static char *next_string(const uint8_t **p, const uint8_t *end)
{
  const uint8_t *start = *p;
  const uint8_t *nul = memchr(start, 0, (size_t)(end - start));
  size_t n = nul ? (size_t)(nul - start) : (size_t)(end - start);
  *p = nul ? nul + 1 : end;
  char *s = malloc(n + 1);
  if (s == NULL)
    abort();
  memcpy(s, start, n);
  s[n] = '\0';
  return s;
}

static void check_render(const struct report *r, size_t size)
{
  static char buf[REPORT_MAX_JSON];
  memset(buf, 'Z', sizeof buf);
  ssize_t n = report_to_json(r, buf, size);
  if (n < 0 || (size_t)n >= size || buf[n] != '\0' || strlen(buf) != (size_t)n ||
      memchr(buf, '\n', (size_t)n) != NULL || !json_valid_object(buf, (size_t)n)) {
    fprintf(stderr, "bad report JSON (size %zu, n %zd): %.*s\n", size, n,
            n > 0 ? (int)n : 0, buf);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  uint8_t control = data[0];
  const uint8_t *p = data + 1, *end = data + size;
  struct report *r = NULL;
  struct verr err;
  if (report_new(&r, &err) < 0)
    abort();
  report_set_preallocation_applied(r, control & 1);
  report_set_deadline_passed(r, control & 2);

  char *message = next_string(&p, end);
  report_set_message(r, message, &err);
  char *last = NULL;
  while (p < end) {
    char *key = next_string(&p, end);
    char *value = next_string(&p, end);
    report_set_label(r, key, value, &err); /* past the label limit: a clean error */
    report_add_verified(r, value, &err);
    free(key);
    free(last);
    last = value;
  }
  if (last) {
    report_set_format(r, last, &err);
    report_set_source_digest(r, last, &err);
    report_set_block_hash(r, message, &err);
  }
  if (control & 4) {
    struct verr failure;
    verr_set(&failure, (enum verr_code)(control >> 4), "%s", message);
    report_set_error(r, &failure, &err);
  }
  report_set_virtual_size(r, (uint64_t)size << 40);

  check_render(r, REPORT_MAX_JSON);
  check_render(r, REPORT_MIN_JSON + (size_t)control * 11);
  free(message);
  free(last);
  report_free(r);
  return 0;
}
