/* pkg/json: the bounded reader of untrusted JSON (json.h's contract, case by case). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

static struct json_value *ok(const char *text)
{
  struct json_value *v = NULL;
  struct verr err = { 0 };
  cr_assert_eq(json_parse(text, strlen(text), NULL, &v, &err), 0, "%s: %s", text, err.message);
  return v;
}

static void bad(const char *text, const char *phrase)
{
  struct json_value *v = (struct json_value *)1;
  struct verr err = { 0 };
  cr_assert_eq(json_parse(text, strlen(text), NULL, &v, &err), -1, "accepted: %s", text);
  cr_assert_null(v);
  cr_assert_eq(err.code, VERR_FORMAT);
  cr_assert(strstr(err.message, phrase) != NULL, "%s: %s", text, err.message);
}

Test(json, lookups)
{
  struct json_value *v = ok(" {\"b\":[1,true,null,\"x\"],\"a\":{\"c\":-5},\"z\":false} ");
  cr_assert_eq(json_count(v), 3);
  cr_assert_eq(v->members[0].key[0], 'b'); /* document order kept */
  const struct json_value *b = json_get(v, "b");
  cr_assert_eq(json_count(b), 4);
  uint64_t u;
  cr_assert(json_uint64(json_at(b, 0), &u) && u == 1);
  cr_assert(json_is(json_at(b, 1), JSON_BOOL) && json_at(b, 1)->boolean);
  cr_assert(json_is(json_at(b, 2), JSON_NULL));
  cr_assert_str_eq(json_str(json_at(b, 3)), "x");
  cr_assert_null(json_at(b, 4));
  int64_t i;
  cr_assert(json_int64(json_get(json_get(v, "a"), "c"), &i) && i == -5);
  cr_assert_not(json_uint64(json_get(json_get(v, "a"), "c"), &u));
  cr_assert_null(json_get(v, "missing"));
  cr_assert_null(json_get(b, "b")); /* not an object */
  cr_assert_null(json_str(json_get(v, "z")));
  json_free(v);
}

Test(json, numbers)
{
  struct json_value *v = ok("[18446744073709551615,-9223372036854775808,18446744073709551616,"
                            "1.5,1e3,0,-0]");
  uint64_t u;
  int64_t i;
  cr_assert(json_uint64(json_at(v, 0), &u) && u == UINT64_MAX);
  cr_assert_not(json_int64(json_at(v, 0), &i));
  cr_assert(json_int64(json_at(v, 1), &i) && i == INT64_MIN);
  cr_assert_not(json_uint64(json_at(v, 2), &u)); /* too big: a number without a value */
  cr_assert_not(json_int64(json_at(v, 3), &i));
  cr_assert_not(json_int64(json_at(v, 4), &i));
  cr_assert(json_uint64(json_at(v, 5), &u) && u == 0);
  cr_assert(json_uint64(json_at(v, 6), &u) && u == 0);
  json_free(v);
  bad("01", "leading zero");
  bad("1.", "point");
  bad("1e", "exponent");
  bad("-", "without digits");
  bad("NaN", "unexpected");
}

Test(json, strings)
{
  struct json_value *v = ok("[\"a\\\"b\\\\c\\/\\n\",\"\\u00e9\\u20ac\",\"\\ud83d\\ude00\",\"\xc3\xa9\"]");
  cr_assert_str_eq(json_str(json_at(v, 0)), "a\"b\\c/\n");
  cr_assert_str_eq(json_str(json_at(v, 1)), "\xc3\xa9\xe2\x82\xac");
  cr_assert_str_eq(json_str(json_at(v, 2)), "\xf0\x9f\x98\x80");
  cr_assert_str_eq(json_str(json_at(v, 3)), "\xc3\xa9");
  json_free(v);
  bad("\"\\u0000\"", "U+0000");
  bad("\"\\ud83d\"", "surrogate");
  bad("\"\\ude00\"", "surrogate");
  bad("\"\xc3\"", "UTF-8");
  bad("\"\xed\xa0\x80\"", "UTF-8"); /* an encoded surrogate */
  bad("\"\xc0\xaf\"", "UTF-8");     /* overlong */
  bad("\"a\nb\"", "control");
  bad("\"\\x\"", "escape");
  bad("\"open", "not closed");
}

Test(json, grammar)
{
  bad("", "ends");
  bad("{} {}", "after the document");
  bad("[1,]", "unexpected");
  bad("{\"a\":1,}", "not a string");
  bad("{\"a\" 1}", "':'");
  bad("{a:1}", "not a string");
  bad("[1 2]", "neither");
  bad("\xef\xbb\xbf{}", "unexpected"); /* no BOM */
  bad("// c\n{}", "unexpected");
}

Test(json, duplicate_keys_refused)
{
  bad("{\"a\":1,\"b\":2,\"a\":3}", "twice");
  bad("{\"x\":{\"k\":1,\"k\":1}}", "twice");
  json_free(ok("{\"a\":{\"k\":1},\"b\":{\"k\":1}}")); /* same key, different objects */
}

Test(json, limits)
{
  char deep[200];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  struct json_value *v;
  struct verr err = { 0 };
  struct json_limits lim = { .max_depth = 99 };
  cr_assert_eq(json_parse(deep, sizeof deep, &lim, &v, &err), -1);
  cr_assert(strstr(err.message, "nesting") != NULL, "%s", err.message);
  lim.max_depth = 100;
  cr_assert_eq(json_parse(deep, sizeof deep, &lim, &v, &err), 0, "%s", err.message);
  json_free(v);
  struct json_limits small = { .max_bytes = 4 };
  cr_assert_eq(json_parse("[1,2]", 5, &small, &v, &err), -1);
  cr_assert(strstr(err.message, "larger than the limit") != NULL, "%s", err.message);
  struct json_limits few = { .max_values = 3 };
  cr_assert_eq(json_parse("[1,2,3]", 7, &few, &v, &err), -1);
  cr_assert(strstr(err.message, "more values") != NULL, "%s", err.message);
}

Test(json, many_members_are_looked_up_fast)
{
  size_t n = 50000, cap = n * 24 + 16, len = 0;
  char *text = malloc(cap);
  text[len++] = '{';
  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(text + len, cap - len, "%s\"k%zu\":%zu", i ? "," : "", i, i);
  text[len++] = '}';
  struct json_value *v;
  struct verr err = { 0 };
  cr_assert_eq(json_parse(text, len, NULL, &v, &err), 0, "%s", err.message);
  uint64_t u;
  cr_assert(json_uint64(json_get(v, "k31337"), &u) && u == 31337);
  json_free(v);
  free(text);
}
