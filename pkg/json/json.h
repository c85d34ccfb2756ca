/* vimport json: a bounded reader of JSON documents from untrusted bytes (RFC 8259).
 *
 *   struct json_value *doc;
 *   if (json_parse(bytes, len, NULL, &doc, &err) < 0) ...   // NULL: default limits
 *   const char *media = json_str(json_get(doc, "mediaType"));
 *   json_free(doc);
 *
 * Made for what registries send (manifests, indexes, image configs, token answers):
 * small documents read whole into memory, then looked up by key.
 *
 * The contract:
 *   - Limits: at most `max_bytes` of input, `max_depth` nested arrays/objects and
 *     `max_values` values in all (struct json_limits; 0 means the default). Past any of
 *     them the parse fails: memory and time are bounded by the limits, never by the
 *     bytes (object lookups are O(log n): members are sorted once when the object ends).
 *   - Strict grammar: one value, optional whitespace around it, nothing else; no
 *     comments, no trailing commas, no NaN/Infinity, no leading zeros, no BOM.
 *   - Strings are unescaped into NUL-terminated UTF-8. Invalid UTF-8 (raw or from a
 *     lone surrogate escape) is refused, and so is U+0000 (every consumer here uses C
 *     strings, where it would cut the value short unseen).
 *   - Numbers keep their value when they are integers that fit int64 or uint64
 *     (json_int64/json_uint64); a fraction, an exponent or a larger integer parses
 *     but has no integer value.
 *   - Duplicate keys in one object are refused: parsers disagree on which one wins
 *     (Go takes the last, others the first), and a document that reads differently to
 *     the registry and to us must not be trusted.
 *
 * Errors: json_parse returns 0, or -1 with `err` VERR_FORMAT naming the byte offset and
 * the cause, or VERR_NOMEM. The accessors never fail: a missing key or a value of
 * another type gives NULL (or false), so a chain of lookups is checked once at its end.
 */
#ifndef VIMPORT_JSON_H
#define VIMPORT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define JSON_DEFAULT_MAX_BYTES (4u << 20) /* containers/image reads at most 4 MiB of manifest */
#define JSON_DEFAULT_MAX_DEPTH 64u
#define JSON_DEFAULT_MAX_VALUES (256u * 1024u)

enum json_type {
  JSON_NULL,
  JSON_BOOL,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT,
};

struct json_limits {
  size_t max_bytes;
  unsigned max_depth;
  size_t max_values;
};

struct json_member;

struct json_value {
  enum json_type type;
  bool boolean;          /* JSON_BOOL */
  /* JSON_NUMBER: */
  bool is_int;           /* an integer within [INT64_MIN, UINT64_MAX] */
  bool negative;         /* the integer is -magnitude */
  uint64_t magnitude;
  /* JSON_STRING: */
  char *str;             /* owned, NUL-terminated */
  size_t str_len;
  /* JSON_ARRAY: items; JSON_OBJECT: members, in document order */
  struct json_value **items;     /* owned */
  struct json_member *members;   /* owned */
  struct json_member **sorted;   /* owned: members by key, for lookups */
  size_t count;
};

struct json_member {
  char *key; /* owned, NUL-terminated */
  size_t key_len;
  struct json_value *value; /* owned */
};

/* Parse `len` bytes at `buf` (need not be NUL-terminated). `limits` may be NULL. On
 * success *out owns the document (json_free). */
int json_parse(const void *buf, size_t len, const struct json_limits *limits,
               struct json_value **out, struct verr *err);

/* Free a document (NULL is fine). */
void json_free(struct json_value *v);

/* The member `key` of object `obj`, or NULL (also when obj is NULL or not an object). */
const struct json_value *json_get(const struct json_value *obj, const char *key);

/* Item `i` of array `arr`, or NULL. */
const struct json_value *json_at(const struct json_value *arr, size_t i);

/* The number of items or members of an array or object; 0 for anything else. */
size_t json_count(const struct json_value *v);

/* The string's bytes, or NULL when `v` is not a string. */
const char *json_str(const struct json_value *v);

/* Whether `v` is an integer that fits; then *out is its value. */
bool json_int64(const struct json_value *v, int64_t *out);
bool json_uint64(const struct json_value *v, uint64_t *out);

static inline bool json_is(const struct json_value *v, enum json_type t)
{
  return v != NULL && v->type == t;
}

#endif
