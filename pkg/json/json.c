/* vimport json: the reader (see json.h for the contract). Recursive descent, the
 * recursion bounded by max_depth. */
#include <stdlib.h>
#include <string.h>

#include "json.h"

struct parser {
  const unsigned char *p;
  size_t len, pos;
  unsigned depth;
  size_t values;
  struct json_limits lim;
  struct verr *err;
};

static int fail(struct parser *ps, const char *what)
{
  return verr_set(ps->err, VERR_FORMAT, "not valid JSON: %s at byte %zu", what, ps->pos);
}

static int nomem(struct parser *ps)
{
  return verr_set(ps->err, VERR_NOMEM, "out of memory reading a JSON document");
}

static void skip_ws(struct parser *ps)
{
  while (ps->pos < ps->len && (ps->p[ps->pos] == ' ' || ps->p[ps->pos] == '\t' ||
                               ps->p[ps->pos] == '\n' || ps->p[ps->pos] == '\r'))
    ps->pos++;
}

static bool eat(struct parser *ps, const char *word)
{
  size_t n = strlen(word);
  if (ps->len - ps->pos < n || memcmp(ps->p + ps->pos, word, n) != 0)
    return false;
  ps->pos += n;
  return true;
}

/* ---- strings ---------------------------------------------------------------------------- */

static int hex4(struct parser *ps, unsigned *out)
{
  if (ps->len - ps->pos < 4)
    return fail(ps, "a \\u escape is cut short");
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = ps->p[ps->pos++];
    unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
               : c >= 'a' && c <= 'f' ? c - 'a' + 10u
               : c >= 'A' && c <= 'F' ? c - 'A' + 10u : 16u;
    if (d == 16)
      return fail(ps, "a \\u escape has a character that is not a hex digit");
    v = v << 4 | d;
  }
  *out = v;
  return 0;
}

static size_t put_utf8(unsigned char *o, unsigned cp)
{
  if (cp < 0x80)
    return o[0] = (unsigned char)cp, 1;
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xc0 | cp >> 6);
    o[1] = (unsigned char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xe0 | cp >> 12);
    o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (unsigned char)(0xf0 | cp >> 18);
  o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
  o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
  o[3] = (unsigned char)(0x80 | (cp & 0x3f));
  return 4;
}

/* A \uXXXX escape (the backslash and 'u' taken), with its low surrogate if any. */
static int unicode_escape(struct parser *ps, unsigned *cp)
{
  unsigned hi;
  if (hex4(ps, &hi) < 0)
    return -1;
  if (hi >= 0xdc00 && hi <= 0xdfff)
    return fail(ps, "a lone low surrogate escape");
  if (hi < 0xd800 || hi > 0xdbff) {
    *cp = hi;
    return 0;
  }
  unsigned lo;
  if (!eat(ps, "\\u") || hex4(ps, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
    return fail(ps, "a high surrogate escape without its low surrogate");
  *cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
  return 0;
}

/* The length of the valid UTF-8 sequence at p (at most `left` bytes), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
  unsigned c = p[0];
  size_t n;
  unsigned min;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef)
    n = 3, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4)
    n = 4, min = 0x10000;
  else
    return 0;
  if (left < n)
    return 0;
  unsigned cp = c & (0x3fu >> (n - 1));
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (p[i] & 0x3fu);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

static int escape(struct parser *ps, unsigned char *o, size_t *n)
{
  if (ps->pos >= ps->len)
    return fail(ps, "a string is cut short");
  unsigned char c = ps->p[ps->pos++];
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *hit = c != '\0' ? strchr(from, c) : NULL;
  if (hit != NULL) {
    o[(*n)++] = (unsigned char)to[hit - from];
    return 0;
  }
  if (c != 'u')
    return fail(ps, "an unknown escape in a string");
  unsigned cp = 0;
  if (unicode_escape(ps, &cp) < 0)
    return -1;
  if (cp == 0)
    return fail(ps, "a string holds U+0000");
  *n += put_utf8(o + *n, cp);
  return 0;
}

/* A string at ps->pos (at its opening quote), unescaped into a new buffer. Unescaping
 * never makes a string longer than its source, so one allocation of that size holds it. */
static int parse_string(struct parser *ps, char **out, size_t *out_len)
{
  ps->pos++; /* the quote */
  size_t start = ps->pos, end = start;
  while (end < ps->len && ps->p[end] != '"')
    end += ps->p[end] == '\\' ? 2 : 1;
  if (end >= ps->len)
    return fail(ps, "a string is not closed");
  unsigned char *o = malloc(end - start + 1);
  if (o == NULL)
    return nomem(ps);
  size_t n = 0;
  while (ps->pos < end) {
    unsigned char c = ps->p[ps->pos];
    if (c < 0x20) {
      free(o);
      return fail(ps, c == 0 ? "a string holds U+0000" : "a control character in a string");
    }
    if (c == '\\') {
      ps->pos++;
      if (escape(ps, o, &n) < 0)
        return free(o), -1;
      continue;
    }
    size_t seq = c < 0x80 ? 1 : utf8_seq(ps->p + ps->pos, end - ps->pos);
    if (seq == 0) {
      free(o);
      return fail(ps, "invalid UTF-8 in a string");
    }
    memcpy(o + n, ps->p + ps->pos, seq);
    n += seq;
    ps->pos += seq;
  }
  ps->pos = end + 1;
  o[n] = '\0';
  *out = (char *)o;
  *out_len = n;
  return 0;
}

/* ---- numbers ---------------------------------------------------------------------------- */

static bool is_digit(struct parser *ps)
{
  return ps->pos < ps->len && ps->p[ps->pos] >= '0' && ps->p[ps->pos] <= '9';
}

static int parse_number(struct parser *ps, struct json_value *v)
{
  v->type = JSON_NUMBER;
  v->negative = eat(ps, "-");
  if (!is_digit(ps))
    return fail(ps, "a number without digits");
  bool fits = true;
  if (ps->p[ps->pos] == '0' && (ps->pos++, is_digit(ps)))
    return fail(ps, "a number with a leading zero");
  while (is_digit(ps)) {
    unsigned d = (unsigned)(ps->p[ps->pos++] - '0');
    if (v->magnitude > (UINT64_MAX - d) / 10)
      fits = false;
    else
      v->magnitude = v->magnitude * 10 + d;
  }
  bool integral = true;
  if (eat(ps, ".")) {
    integral = false;
    if (!is_digit(ps))
      return fail(ps, "a number with no digit after its point");
    while (is_digit(ps))
      ps->pos++;
  }
  if (ps->pos < ps->len && (ps->p[ps->pos] == 'e' || ps->p[ps->pos] == 'E')) {
    integral = false;
    ps->pos++;
    if (!eat(ps, "+"))
      eat(ps, "-");
    if (!is_digit(ps))
      return fail(ps, "a number with no digit in its exponent");
    while (is_digit(ps))
      ps->pos++;
  }
  if (v->negative && v->magnitude > (uint64_t)INT64_MAX + 1)
    fits = false;
  v->is_int = integral && fits;
  if (!v->is_int)
    v->magnitude = 0, v->negative = false;
  return 0;
}

/* ---- arrays and objects ----------------------------------------------------------------- */

static int parse_value(struct parser *ps, struct json_value **out);

static int grow(struct parser *ps, void **arr, size_t *cap, size_t count, size_t size)
{
  if (count < *cap)
    return 0;
  size_t ncap = *cap ? *cap * 2 : 4;
  void *n = realloc(*arr, ncap * size);
  if (n == NULL)
    return nomem(ps);
  *arr = n;
  *cap = ncap;
  return 0;
}

static int parse_array(struct parser *ps, struct json_value *v)
{
  v->type = JSON_ARRAY;
  ps->pos++;
  skip_ws(ps);
  if (eat(ps, "]"))
    return 0;
  size_t cap = 0;
  for (;;) {
    if (grow(ps, (void **)&v->items, &cap, v->count, sizeof *v->items) < 0)
      return -1;
    int r = parse_value(ps, &v->items[v->count]);
    if (v->items[v->count] != NULL)
      v->count++; /* also on failure, so json_free frees it */
    if (r < 0)
      return -1;
    skip_ws(ps);
    if (eat(ps, "]"))
      return 0;
    if (!eat(ps, ","))
      return fail(ps, "an array item is followed by neither ',' nor ']'");
  }
}

static int member_cmp(const void *a, const void *b)
{
  const struct json_member *x = *(struct json_member *const *)a;
  const struct json_member *y = *(struct json_member *const *)b;
  return strcmp(x->key, y->key);
}

/* Sort the members for lookups, refusing a key given twice. */
static int index_members(struct parser *ps, struct json_value *v)
{
  if (v->count == 0)
    return 0;
  v->sorted = malloc(v->count * sizeof *v->sorted);
  if (v->sorted == NULL)
    return nomem(ps);
  for (size_t i = 0; i < v->count; i++)
    v->sorted[i] = &v->members[i];
  qsort(v->sorted, v->count, sizeof *v->sorted, member_cmp);
  for (size_t i = 1; i < v->count; i++)
    if (strcmp(v->sorted[i - 1]->key, v->sorted[i]->key) == 0)
      return verr_set(ps->err, VERR_FORMAT, "not valid JSON here: the key \"%.64s\" appears "
                      "twice in one object, so readers could disagree on its value",
                      v->sorted[i]->key);
  return 0;
}

static int parse_member(struct parser *ps, struct json_member *m)
{
  skip_ws(ps);
  if (ps->pos >= ps->len || ps->p[ps->pos] != '"')
    return fail(ps, "an object key is not a string");
  if (parse_string(ps, &m->key, &m->key_len) < 0)
    return -1;
  skip_ws(ps);
  if (!eat(ps, ":"))
    return fail(ps, "an object key is not followed by ':'");
  return parse_value(ps, &m->value);
}

static int parse_object(struct parser *ps, struct json_value *v)
{
  v->type = JSON_OBJECT;
  ps->pos++;
  skip_ws(ps);
  if (eat(ps, "}"))
    return 0;
  size_t cap = 0;
  for (;;) {
    if (grow(ps, (void **)&v->members, &cap, v->count, sizeof *v->members) < 0)
      return -1;
    v->members[v->count] = (struct json_member){ 0 };
    v->count++; /* counted before parsing, so a failure frees what it holds */
    if (parse_member(ps, &v->members[v->count - 1]) < 0)
      return -1;
    skip_ws(ps);
    if (eat(ps, "}"))
      return index_members(ps, v);
    if (!eat(ps, ","))
      return fail(ps, "an object member is followed by neither ',' nor '}'");
  }
}

static int parse_inner(struct parser *ps, struct json_value *v)
{
  unsigned char c = ps->p[ps->pos];
  if (c == '{' || c == '[') {
    if (++ps->depth > ps->lim.max_depth)
      return fail(ps, "nesting deeper than the limit");
    int r = c == '{' ? parse_object(ps, v) : parse_array(ps, v);
    ps->depth--;
    return r;
  }
  if (c == '"')
    return v->type = JSON_STRING, parse_string(ps, &v->str, &v->str_len);
  if (c == '-' || (c >= '0' && c <= '9'))
    return parse_number(ps, v);
  if (eat(ps, "true"))
    return v->type = JSON_BOOL, v->boolean = true, 0;
  if (eat(ps, "false"))
    return v->type = JSON_BOOL, 0;
  if (eat(ps, "null"))
    return v->type = JSON_NULL, 0;
  return fail(ps, "an unexpected character");
}

static int parse_value(struct parser *ps, struct json_value **out)
{
  skip_ws(ps);
  if (ps->pos >= ps->len)
    return *out = NULL, fail(ps, "the document ends where a value should be");
  if (++ps->values > ps->lim.max_values)
    return *out = NULL, fail(ps, "more values than the limit");
  struct json_value *v = calloc(1, sizeof *v);
  if ((*out = v) == NULL)
    return nomem(ps);
  return parse_inner(ps, v);
}

int json_parse(const void *buf, size_t len, const struct json_limits *limits,
               struct json_value **out, struct verr *err)
{
  struct parser ps = { .p = buf, .len = len, .err = err };
  if (limits != NULL)
    ps.lim = *limits;
  if (ps.lim.max_bytes == 0)
    ps.lim.max_bytes = JSON_DEFAULT_MAX_BYTES;
  if (ps.lim.max_depth == 0)
    ps.lim.max_depth = JSON_DEFAULT_MAX_DEPTH;
  if (ps.lim.max_values == 0)
    ps.lim.max_values = JSON_DEFAULT_MAX_VALUES;
  *out = NULL;
  if (len > ps.lim.max_bytes)
    return verr_set(err, VERR_FORMAT, "a JSON document of %zu bytes is larger than the "
                    "limit of %zu bytes", len, ps.lim.max_bytes);
  struct json_value *doc = NULL;
  int r = parse_value(&ps, &doc);
  if (r == 0) {
    skip_ws(&ps);
    if (ps.pos != len)
      r = fail(&ps, "bytes after the document");
  }
  if (r < 0) {
    json_free(doc);
    return -1;
  }
  *out = doc;
  return 0;
}

void json_free(struct json_value *v)
{
  if (v == NULL)
    return;
  free(v->str);
  for (size_t i = 0; v->type == JSON_ARRAY && i < v->count; i++)
    json_free(v->items[i]);
  for (size_t i = 0; v->type == JSON_OBJECT && i < v->count; i++) {
    free(v->members[i].key);
    json_free(v->members[i].value);
  }
  free(v->items);
  free(v->members);
  free(v->sorted);
  free(v);
}

/* ---- accessors ---------------------------------------------------------------------------- */

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
  if (!json_is(obj, JSON_OBJECT) || obj->sorted == NULL)
    return NULL;
  size_t lo = 0, hi = obj->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(key, obj->sorted[mid]->key);
    if (c == 0)
      return obj->sorted[mid]->value;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

const struct json_value *json_at(const struct json_value *arr, size_t i)
{
  return json_is(arr, JSON_ARRAY) && i < arr->count ? arr->items[i] : NULL;
}

size_t json_count(const struct json_value *v)
{
  return json_is(v, JSON_ARRAY) || json_is(v, JSON_OBJECT) ? v->count : 0;
}

const char *json_str(const struct json_value *v)
{
  return json_is(v, JSON_STRING) ? v->str : NULL;
}

bool json_int64(const struct json_value *v, int64_t *out)
{
  if (!json_is(v, JSON_NUMBER) || !v->is_int)
    return false;
  if (v->negative) {
    *out = v->magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v->magnitude;
    return true;
  }
  if (v->magnitude > INT64_MAX)
    return false;
  *out = (int64_t)v->magnitude;
  return true;
}

bool json_uint64(const struct json_value *v, uint64_t *out)
{
  if (!json_is(v, JSON_NUMBER) || !v->is_int || (v->negative && v->magnitude != 0))
    return false;
  *out = v->magnitude;
  return true;
}
