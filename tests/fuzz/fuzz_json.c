/* Fuzz pkg/json: arbitrary bytes as a document, with small limits so the limits are hit
 * too. A parse either fails with a message or yields a tree whose every string is
 * NUL-terminated at its length, holds no NUL and is valid UTF-8 (checked by parsing it
 * again as a JSON string), whose objects have no key twice and whose lookups find every
 * member; never a crash, leak, hang or read out of bounds. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A string as the reader made it must read back as itself inside quotes. */
static void check_string(const char *s, size_t len)
{
  assert(strlen(s) == len);
  char *quoted = malloc(len + 3);
  assert(quoted != NULL);
  quoted[0] = '"';
  size_t n = 1;
  for (size_t i = 0; i < len; i++)
    if (s[i] != '"' && s[i] != '\\' && (unsigned char)s[i] >= 0x20)
      quoted[n++] = s[i];
  quoted[n++] = '"';
  struct json_value *v;
  struct verr err = { 0 };
  assert(json_parse(quoted, n, NULL, &v, &err) == 0);
  json_free(v);
  free(quoted);
}

static void check(const struct json_value *v, unsigned depth)
{
  assert(depth <= 16);
  switch (v->type) {
  case JSON_STRING:
    check_string(v->str, v->str_len);
    break;
  case JSON_ARRAY:
    for (size_t i = 0; i < v->count; i++)
      check(json_at(v, i), depth + 1);
    break;
  case JSON_OBJECT:
    for (size_t i = 0; i < v->count; i++) {
      check_string(v->members[i].key, v->members[i].key_len);
      assert(json_get(v, v->members[i].key) == v->members[i].value);
      check(v->members[i].value, depth + 1);
    }
    break;
  case JSON_NUMBER: {
    int64_t i;
    uint64_t u;
    if (json_int64(v, &i) && i >= 0)
      assert(json_uint64(v, &u) && (uint64_t)i == u);
    break;
  }
  default:
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct json_limits lim = { .max_bytes = 64 * 1024, .max_depth = 16, .max_values = 4096 };
  struct json_value *v = NULL;
  struct verr err = { 0 };
  if (json_parse(data, size, &lim, &v, &err) == 0)
    check(v, 0);
  else
    assert(v == NULL && err.message[0] != '\0');
  json_free(v);
  return 0;
}
