/* vimport spec: the DataVolume-style YAML loader.
 *
 * libyaml builds the document tree; a schema of key tables (at the bottom of this file,
 * one table per YAML mapping) walks it. Each key names a handler and, for plain values,
 * the offset of the field it fills, so a new key is one table line. Unknown keys,
 * duplicate keys, missing required keys and wrong types are errors that name the file,
 * the line and the dotted key path.
 *
 * Mounted secrets are read after the walk, because the mount directories they live in
 * (vimport.mounts) may come later in the file than the secret names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <yaml.h>

#include "core/cleanup.h"
#include "spec-internal.h"
#include "spec.h"

struct yaml_walk;
struct yaml_table;

struct yaml_key;
struct yaml_choice;

typedef int (*yaml_key_fn)(struct yaml_walk *w, yaml_node_t *value, const char *path,
                           const struct yaml_key *k);

struct yaml_key {
  const char *name;
  yaml_key_fn parse;
  const struct yaml_table *children; /* for parse_mapping and source kinds */
  size_t offset;                     /* field in struct import_spec, for plain values */
  bool required;
  const struct yaml_choice *choice;  /* for parse_choice */
};

struct yaml_table {
  const struct yaml_key *keys;
  size_t n_keys;
};

#define YAML_TABLE_MAX_KEYS 32

struct yaml_walk {
  yaml_document_t *doc;
  struct import_spec *spec;
  struct verr *err;
  const char *source_kind;         /* the source kind seen, for "more than one" */
  bool has_storage;                /* storage or pvc seen: only one may be */
  yaml_node_t *secret_ref;         /* spec.source.http.secretRef */
  yaml_node_t *cert_config_map;    /* spec.source.http.certConfigMap */
  yaml_node_t *secret_headers;     /* spec.source.http.secretExtraHeaders */
  yaml_node_t *checksum_url;       /* vimport.checksumURL */
  yaml_node_t *checksum_name;      /* vimport.checksumName */
};

/* ---- Errors ------------------------------------------------------------------------ */

static unsigned long node_line(const yaml_node_t *node)
{
  return (unsigned long)node->start_mark.line + 1;
}

static int walk_error(struct yaml_walk *w, const yaml_node_t *node, const char *path,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int walk_error(struct yaml_walk *w, const yaml_node_t *node, const char *path,
                      const char *fmt, ...)
{
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return verr_set(w->err, VERR_USAGE, "%s:%lu: %s: %s", w->spec->origin, node_line(node),
                  path[0] != '\0' ? path : "(document)", what);
}

/* Put "origin:line: path" before a message a value parser already wrote. */
static int walk_prefix(struct yaml_walk *w, const yaml_node_t *node, const char *path)
{
  return verr_prefix(w->err, "%s:%lu: %s", w->spec->origin, node_line(node), path);
}

/* ---- Scalars ------------------------------------------------------------------------ */

enum scalar_kind { SCALAR_STRING, SCALAR_NULL, SCALAR_BOOL, SCALAR_NUMBER };

static const char *scalar_text(const yaml_node_t *node)
{
  return (const char *)node->data.scalar.value;
}

static bool text_in(const char *s, const char *const *set, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, set[i]) == 0)
      return true;
  return false;
}

static const char *const yaml_true[] = { "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
                                         "on", "On", "ON" };
static const char *const yaml_false[] = { "n", "N", "no", "No", "NO", "false", "False", "FALSE",
                                          "off", "Off", "OFF" };

static bool looks_numeric(const char *s)
{
  if (*s == '+' || *s == '-')
    s++;
  if (strcmp(s, ".inf") == 0 || strcmp(s, ".Inf") == 0 || strcmp(s, ".INF") == 0)
    return true;
  bool digit = false;
  for (; *s >= '0' && *s <= '9'; s++)
    digit = true;
  if (*s == '.')
    for (s++; *s >= '0' && *s <= '9'; s++)
      digit = true;
  if (digit && (*s == 'e' || *s == 'E')) {
    s++;
    if (*s == '+' || *s == '-')
      s++;
    if (!(*s >= '0' && *s <= '9'))
      return false;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  return digit && *s == '\0';
}

/* How YAML (as Kubernetes reads it, YAML 1.1) types a scalar: quoted ones are strings. */
static enum scalar_kind scalar_kind(const yaml_node_t *node)
{
  if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return SCALAR_STRING;
  const char *s = scalar_text(node);
  static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
  if (text_in(s, nulls, sizeof nulls / sizeof nulls[0]))
    return SCALAR_NULL;
  if (text_in(s, yaml_true, sizeof yaml_true / sizeof yaml_true[0]) ||
      text_in(s, yaml_false, sizeof yaml_false / sizeof yaml_false[0]))
    return SCALAR_BOOL;
  if (looks_numeric(s))
    return SCALAR_NUMBER;
  return SCALAR_STRING;
}

static const char *node_type_name(const yaml_node_t *node)
{
  switch (node->type) {
  case YAML_MAPPING_NODE: return "a mapping";
  case YAML_SEQUENCE_NODE: return "a list";
  case YAML_SCALAR_NODE: break;
  case YAML_NO_NODE: return "nothing";
  }
  switch (scalar_kind(node)) {
  case SCALAR_NULL: return "null";
  case SCALAR_BOOL: return "a boolean";
  case SCALAR_NUMBER: return "a number";
  case SCALAR_STRING: break;
  }
  return "a string";
}

static bool scalar_has_nul(const yaml_node_t *node)
{
  return strlen(scalar_text(node)) != node->data.scalar.length;
}

/* A scalar of any YAML type except null (quantities may be numbers or strings). */
static int want_scalar(struct yaml_walk *w, yaml_node_t *node, const char *path,
                       const char *what, const char **out)
{
  if (node->type != YAML_SCALAR_NODE || scalar_kind(node) == SCALAR_NULL)
    return walk_error(w, node, path, "expected %s, got %s", what, node_type_name(node));
  if (scalar_has_nul(node))
    return walk_error(w, node, path, "the value holds a NUL byte; remove it");
  *out = scalar_text(node);
  return 0;
}

static int want_string(struct yaml_walk *w, yaml_node_t *node, const char *path,
                       const char **out)
{
  if (node->type == YAML_SCALAR_NODE && scalar_kind(node) != SCALAR_STRING &&
      scalar_kind(node) != SCALAR_NULL)
    return walk_error(w, node, path, "expected a string, got %s; put it in quotes",
                      node_type_name(node));
  if (want_scalar(w, node, path, "a string", out) == -1)
    return -1;
  if (**out == '\0')
    return walk_error(w, node, path, "empty string; give a value or drop the key");
  return 0;
}

static void *field(struct yaml_walk *w, size_t offset)
{
  return (char *)w->spec + offset;
}

/* ---- Generic handlers --------------------------------------------------------------- */

static int walk_mapping(struct yaml_walk *w, yaml_node_t *node, const char *path,
                        const struct yaml_table *table);

/* Every key handler has this signature (yaml_key_fn); most use only some parameters. */
#define HANDLER(fn)                                                                        \
  static int fn(struct yaml_walk *w __attribute__((unused)),                               \
                yaml_node_t *value __attribute__((unused)),                                \
                const char *path __attribute__((unused)),                                  \
                const struct yaml_key *k __attribute__((unused)))

HANDLER(parse_ignore) { return 0; }

HANDLER(parse_mapping) { return walk_mapping(w, value, path, k->children); }

HANDLER(parse_any_mapping)
{
  if (value->type != YAML_MAPPING_NODE)
    return walk_error(w, value, path, "expected a mapping, got %s", node_type_name(value));
  return 0;
}

HANDLER(parse_string)
{
  const char *s;
  if (want_string(w, value, path, &s) == -1)
    return -1;
  return spec_set_string(field(w, k->offset), s, strlen(s), w->err);
}

HANDLER(parse_bool)
{
  if (value->type != YAML_SCALAR_NODE || scalar_kind(value) != SCALAR_BOOL)
    return walk_error(w, value, path, "expected true or false, got %s", node_type_name(value));
  *(bool *)field(w, k->offset) =
      text_in(scalar_text(value), yaml_true, sizeof yaml_true / sizeof yaml_true[0]);
  return 0;
}

/* A value parser's result: its message gets "origin:line: path" in front. */
static int prefixed(struct yaml_walk *w, yaml_node_t *value, const char *path, int r)
{
  return r == -1 ? walk_prefix(w, value, path) : 0;
}

HANDLER(parse_quantity)
{
  const char *s;
  if (want_scalar(w, value, path, "a quantity such as 10Gi", &s) == -1)
    return -1;
  return prefixed(w, value, path, spec_parse_quantity(s, field(w, k->offset), w->err));
}

/* A whole number within [min, max], stored as unsigned. */
static int parse_count(struct yaml_walk *w, yaml_node_t *value, const char *path,
                       unsigned min, unsigned max, unsigned *out)
{
  if (value->type != YAML_SCALAR_NODE || scalar_kind(value) != SCALAR_NUMBER)
    return walk_error(w, value, path, "expected a whole number, got %s", node_type_name(value));
  const char *s = scalar_text(value);
  unsigned long long n = 0;
  bool ok = *s != '\0';
  for (; ok && *s; s++) {
    ok = *s >= '0' && *s <= '9' && n <= max;
    n = n * 10 + (unsigned)(*s - '0');
  }
  if (!ok || n < min || n > max)
    return walk_error(w, value, path, "expected a whole number from %u to %u", min, max);
  *out = (unsigned)n;
  return 0;
}

/* One of a fixed set of strings (the key's `choice`); a bad value is quoted in the
 * message "\"value\" is not <what>; <hint>". */
struct yaml_choice {
  const char *const *names; /* NULL entries are skipped (enum values with no name) */
  size_t n_names;
  enum {
    CHOICE_CHECK, /* only check the value */
    CHOICE_INDEX, /* store the name's index in the int-sized enum field at `offset` */
    CHOICE_TEXT,  /* store the string as written at `offset`; names match in any case */
  } store;
  int quote;        /* how much of a bad value the message quotes */
  const char *what, *hint;
};

#define CHOICE(list, how, quote, what, hint) \
  { (list), sizeof (list) / sizeof (list)[0], (how), (quote), (what), (hint) }

static void set_enum(void *slot, size_t value)
{
  int v = (int)value;
  memcpy(slot, &v, sizeof v);
}

HANDLER(parse_choice)
{
  const struct yaml_choice *c = k->choice;
  const char *s;
  if (c->store == CHOICE_TEXT ? parse_string(w, value, path, k) == -1
                              : want_string(w, value, path, &s) == -1)
    return -1;
  if (c->store == CHOICE_TEXT)
    s = *(char **)field(w, k->offset);
  for (size_t i = 0; i < c->n_names; i++) {
    if (c->names[i] == NULL ||
        (c->store == CHOICE_TEXT ? strcasecmp(s, c->names[i]) : strcmp(s, c->names[i])) != 0)
      continue;
    if (c->store == CHOICE_INDEX)
      set_enum(field(w, k->offset), i);
    return 0;
  }
  return walk_error(w, value, path, "\"%.*s\" is not %s; %s", c->quote, s, c->what, c->hint);
}

static int want_sequence(struct yaml_walk *w, yaml_node_t *value, const char *path)
{
  if (value->type != YAML_SEQUENCE_NODE)
    return walk_error(w, value, path, "expected a list, got %s", node_type_name(value));
  return 0;
}

static yaml_node_t *sequence_item(struct yaml_walk *w, yaml_node_item_t *item)
{
  return yaml_document_get_node(w->doc, *item);
}

/* A list of strings, each given to `add`. */
static int each_string(struct yaml_walk *w, yaml_node_t *value, const char *path,
                       int (*add)(struct import_spec *spec, const char *s, struct verr *err))
{
  if (want_sequence(w, value, path) == -1)
    return -1;
  yaml_node_item_t *item = value->data.sequence.items.start;
  for (; item < value->data.sequence.items.top; item++) {
    yaml_node_t *node = sequence_item(w, item);
    const char *s;
    if (want_string(w, node, path, &s) == -1 ||
        prefixed(w, node, path, add(w->spec, s, w->err)) == -1)
      return -1;
  }
  return 0;
}

/* ---- Specific handlers -------------------------------------------------------------- */

static int parse_object_name(struct yaml_walk *w, yaml_node_t *value, const char *path)
{
  const char *s;
  if (want_string(w, value, path, &s) == -1)
    return -1;
  if (!spec_valid_object_name(s))
    return walk_error(w, value, path, "\"%.64s\" is not a Kubernetes object name; use lowercase "
                      "letters, digits, '-' and '.'", s);
  return 0;
}

HANDLER(parse_url)
{
  const char *s;
  if (want_string(w, value, path, &s) == -1)
    return -1;
  if (!spec_valid_http_url(s))
    return walk_error(w, value, path, "not an http:// or https:// URL with a host (spaces must "
                      "be percent-encoded)");
  return parse_string(w, value, path, k);
}

HANDLER(parse_checksum)
{
  const char *s;
  if (want_string(w, value, path, &s) == -1)
    return -1;
  return prefixed(w, value, path,
                  spec_parse_checksum(s, &w->spec->source.http.checksum, w->err));
}

static int add_header_line(struct import_spec *spec, const char *s, struct verr *err)
{
  return spec_add_header_line(spec, s, strlen(s), false, err);
}

HANDLER(parse_extra_headers) { return each_string(w, value, path, add_header_line); }

HANDLER(parse_secret_extra_headers)
{
  if (want_sequence(w, value, path) == -1)
    return -1;
  yaml_node_item_t *item = value->data.sequence.items.start;
  for (; item < value->data.sequence.items.top; item++)
    if (parse_object_name(w, sequence_item(w, item), path) == -1)
      return -1;
  w->secret_headers = value;
  return 0;
}

/* A secret or config map named here and read after the walk: `offset` is the
 * yaml_node_t * of struct yaml_walk that keeps the name's node. */
HANDLER(parse_object_ref)
{
  if (parse_object_name(w, value, path) == -1)
    return -1;
  *(yaml_node_t **)((char *)w + k->offset) = value;
  return 0;
}

/* spec.source.<kind>: the table entry's `offset` carries the enum spec_source_kind. */
HANDLER(parse_source_kind)
{
  static const char *const names[] = {
    [SPEC_SOURCE_HTTP] = "http", [SPEC_SOURCE_BLANK] = "blank",
    [SPEC_SOURCE_FILE] = "file", [SPEC_SOURCE_NBD] = "nbd",
  };
  size_t kind = k->offset;
  const char *name = kind < sizeof names / sizeof names[0] && names[kind] ? names[kind] : "?";
  if (w->source_kind != NULL)
    return walk_error(w, value, path, "a second source kind after %s; give exactly one source",
                      w->source_kind);
  w->source_kind = name;
  w->spec->source.kind = (enum spec_source_kind)kind;
  return walk_mapping(w, value, path, k->children);
}

HANDLER(parse_source_unsupported)
{
  return walk_error(w, value, path, "this CDI source kind is not supported by vimport; use "
                    "http, blank, file or nbd, or CDI's own importer");
}

HANDLER(parse_source)
{
  if (walk_mapping(w, value, path, k->children) == -1)
    return -1;
  if (w->spec->source.kind == SPEC_SOURCE_NONE)
    return walk_error(w, value, path, "no source kind; give one of http, blank, file or nbd");
  return 0;
}

HANDLER(parse_storage)
{
  if (w->has_storage)
    return walk_error(w, value, path, "both storage and pvc are given; keep one");
  w->has_storage = true;
  return walk_mapping(w, value, path, k->children);
}

HANDLER(parse_expected_block_hash)
{
  const char *s;
  if (want_string(w, value, path, &s) == -1)
    return -1;
  return prefixed(w, value, path, spec_parse_block_hash(s, &w->spec->block_hash, w->err));
}

HANDLER(parse_block_size)
{
  uint64_t size;
  const char *s;
  if (want_scalar(w, value, path, "a quantity such as 64Ki", &s) == -1)
    return -1;
  if (spec_parse_quantity(s, &size, w->err) == -1)
    return walk_prefix(w, value, path);
  if (!spec_valid_block_size(size))
    return walk_error(w, value, path, "%llu is not a power of two from 512 to 64Mi; the "
                      "default is 64Ki", (unsigned long long)size);
  w->spec->block_hash.block_size = (uint32_t)size;
  return 0;
}

HANDLER(parse_retries) { return parse_count(w, value, path, 0, 100, &w->spec->retries); }

HANDLER(parse_stall_timeout)
{
  return parse_count(w, value, path, 1, 86400, &w->spec->stall_timeout_seconds);
}

HANDLER(parse_allowed_formats) { return each_string(w, value, path, spec_add_allowed_format); }

/* ---- Trust: checksum files and signatures (pkg/trust) ------------------------------- */

/* An http(s) URL, a file:// URL or an absolute path (a mounted file). */
HANDLER(parse_url_or_path)
{
  const char *s;
  if (want_string(w, value, path, &s) == -1)
    return -1;
  if (!spec_valid_http_url(s) && s[0] != '/' && strncmp(s, "file:///", 8) != 0)
    return walk_error(w, value, path, "not an http:// or https:// URL with a host, a "
                      "file:/// URL or an absolute path");
  return parse_string(w, value, path, k);
}

HANDLER(parse_checksum_url)
{
  w->checksum_url = value;
  return parse_url_or_path(w, value, path, k);
}

HANDLER(parse_checksum_name)
{
  w->checksum_name = value;
  if (parse_string(w, value, path, k) == -1)
    return -1;
  if (strchr(w->spec->checksum_name, '\n') != NULL)
    return walk_error(w, value, path, "a file name in a checksum file is one line");
  return 0;
}

/* A file the signature check reads; it must be there when the spec loads. */
HANDLER(parse_mounted_file)
{
  if (parse_string(w, value, path, k) == -1)
    return -1;
  const char *file = *(char **)field(w, k->offset);
  if (access(file, R_OK) != 0)
    return walk_error(w, value, path, "cannot read %.300s (is the secret or config map "
                      "mounted there?): %s", file, strerror(errno));
  return 0;
}

static int check_signature(struct yaml_walk *w, yaml_node_t *value, const char *path)
{
  const struct spec_signature *sig = &w->spec->signature;
  if ((sig->url == NULL) == (sig->path == NULL))
    return walk_error(w, value, path, "give exactly one of url or path (where the "
                      "signature is)");
  if ((sig->public_key == NULL) == (sig->certificate == NULL))
    return walk_error(w, value, path, "give exactly one of publicKey or certificate");
  if ((sig->certificate == NULL) != (sig->ca_bundle == NULL))
    return walk_error(w, value, path, sig->certificate != NULL
                      ? "certificate needs caBundle, the CA certificates it must chain to"
                      : "caBundle applies only with certificate");
  if (sig->format == SPEC_SIGNATURE_GLANCE && (sig->hash_method == NULL || sig->key_type == NULL))
    return walk_error(w, value, path, "format glance needs hashMethod and keyType (Glance's "
                      "img_signature_hash_method and img_signature_key_type)");
  return 0;
}

HANDLER(parse_signature)
{
  w->spec->signature.given = true;
  if (walk_mapping(w, value, path, k->children) == -1)
    return -1;
  return check_signature(w, value, path);
}

/* Cross-field rules of checksumURL, checked after the whole document was walked. */
static int check_trust(struct yaml_walk *w)
{
  const struct import_spec *spec = w->spec;
  if (w->checksum_name != NULL && w->checksum_url == NULL)
    return walk_error(w, w->checksum_name, "vimport.checksumName", "applies only with "
                      "checksumURL");
  if (w->checksum_url == NULL)
    return 0;
  if (spec->source.kind == SPEC_SOURCE_BLANK || spec->source.kind == SPEC_SOURCE_NBD)
    return walk_error(w, w->checksum_url, "vimport.checksumURL", "a blank or nbd source has no "
                      "served bytes to check; drop it");
  if (spec->source.http.checksum.alg != SPEC_CHECKSUM_NONE)
    return walk_error(w, w->checksum_url, "vimport.checksumURL", "give either "
                      "spec.source.http.checksum or checksumURL, not both");
  if (spec->source.kind == SPEC_SOURCE_FILE && spec->source.file_path != NULL &&
      strcmp(spec->source.file_path, "-") == 0 && spec->checksum_name == NULL)
    return walk_error(w, w->checksum_url, "vimport.checksumURL", "stdin has no file name to "
                      "look up; set checksumName");
  return 0;
}

/* ---- Mapping walk ------------------------------------------------------------------- */

static size_t edit_distance(const char *a, const char *b)
{
  size_t la = strnlen(a, 64), lb = strnlen(b, 64);
  size_t row[65];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

static int unknown_key(struct yaml_walk *w, const yaml_node_t *key, const char *path,
                       const struct yaml_table *table)
{
  const char *name = scalar_text(key);
  const char *best = NULL;
  size_t best_distance = 3; /* suggest only close spellings */
  for (size_t i = 0; i < table->n_keys; i++) {
    size_t d = edit_distance(name, table->keys[i].name);
    if (d < best_distance) {
      best_distance = d;
      best = table->keys[i].name;
    }
  }
  if (best != NULL)
    return walk_error(w, key, path, "unknown key; did you mean \"%s\"?", best);
  return walk_error(w, key, path, "unknown key; see docs/spec.md for the keys allowed here");
}

static int find_key(const struct yaml_table *table, const char *name)
{
  for (size_t i = 0; i < table->n_keys; i++)
    if (strcmp(table->keys[i].name, name) == 0)
      return (int)i;
  return -1;
}

static void child_path(char *out, size_t size, const char *path, const char *key)
{
  snprintf(out, size, "%s%s%.64s", path, path[0] != '\0' ? "." : "", key);
}

static int walk_pair(struct yaml_walk *w, yaml_node_pair_t *pair, const char *path,
                     const struct yaml_table *table, bool *seen)
{
  yaml_node_t *key = yaml_document_get_node(w->doc, pair->key);
  yaml_node_t *value = yaml_document_get_node(w->doc, pair->value);
  if (key == NULL || value == NULL)
    return verr_set(w->err, VERR_INTERNAL, "%s: libyaml returned a pair without a node",
                    w->spec->origin);
  if (key->type != YAML_SCALAR_NODE || scalar_has_nul(key))
    return walk_error(w, key, path, "keys must be plain names, got %s", node_type_name(key));
  char sub[256];
  child_path(sub, sizeof sub, path, scalar_text(key));
  int i = find_key(table, scalar_text(key));
  if (i == -1)
    return unknown_key(w, key, sub, table);
  if (seen[i])
    return walk_error(w, key, sub, "duplicate key; give it once");
  seen[i] = true;
  const struct yaml_key *k = &table->keys[i];
  return k->parse(w, value, sub, k);
}

static int walk_mapping(struct yaml_walk *w, yaml_node_t *node, const char *path,
                        const struct yaml_table *table)
{
  if (node->type != YAML_MAPPING_NODE)
    return walk_error(w, node, path, "expected a mapping, got %s", node_type_name(node));
  bool seen[YAML_TABLE_MAX_KEYS] = { false };
  yaml_node_pair_t *pair = node->data.mapping.pairs.start;
  for (; pair < node->data.mapping.pairs.top; pair++)
    if (walk_pair(w, pair, path, table, seen) == -1)
      return -1;
  for (size_t i = 0; i < table->n_keys; i++)
    if (table->keys[i].required && !seen[i])
      return walk_error(w, node, path, "the required key \"%s\" is missing",
                        table->keys[i].name);
  return 0;
}

/* ---- Secrets named by the document -------------------------------------------------- */

static int mount_subdir(struct yaml_walk *w, const char *mount, const yaml_node_t *name_node,
                        char **out)
{
  if (asprintf(out, "%s/%s", mount, scalar_text(name_node)) == -1) {
    *out = NULL;
    return verr_sys(w->err, VERR_NOMEM, errno, "cannot build a mount path");
  }
  return 0;
}

/* "origin:line: path: secret \"name\": " before a message about a mounted object. */
static int mount_prefix(struct yaml_walk *w, const yaml_node_t *name_node, const char *path,
                        const char *what)
{
  return verr_prefix(w->err, "%s:%lu: %s: %s \"%s\"", w->spec->origin, node_line(name_node),
                     path, what, scalar_text(name_node));
}

static int resolve_secret_headers(struct yaml_walk *w)
{
  yaml_node_t *list = w->secret_headers;
  const char *path = "spec.source.http.secretExtraHeaders";
  yaml_node_item_t *item = list->data.sequence.items.start;
  for (; item < list->data.sequence.items.top; item++) {
    yaml_node_t *node = sequence_item(w, item);
    CLEANUP_FREE char *dir = NULL;
    if (mount_subdir(w, w->spec->mounts.extra_headers, node, &dir) == -1)
      return -1;
    if (spec_read_secret_header_dir(w->spec, dir, w->err) == -1)
      return mount_prefix(w, node, path, "secret");
  }
  return 0;
}

static int resolve_mounts(struct yaml_walk *w)
{
  struct import_spec *spec = w->spec;
  if (w->secret_ref != NULL &&
      spec_read_basic_auth(spec, spec->mounts.secret, w->err) == -1)
    return mount_prefix(w, w->secret_ref, "spec.source.http.secretRef", "secret");
  if (w->cert_config_map != NULL) {
    if (spec_check_dir(spec->mounts.certs, w->err) == -1)
      return mount_prefix(w, w->cert_config_map, "spec.source.http.certConfigMap",
                          "config map");
    if (spec_set_string(&spec->source.http.cert_dir, spec->mounts.certs,
                        strlen(spec->mounts.certs), w->err) == -1)
      return -1;
  }
  if (w->secret_headers != NULL)
    return resolve_secret_headers(w);
  return 0;
}

/* ---- The schema --------------------------------------------------------------------- */

#define TABLE(keys) { (keys), sizeof (keys) / sizeof (keys)[0] }
#define AT(member) offsetof(struct import_spec, member)
#define AT_WALK(member) offsetof(struct yaml_walk, member) /* for parse_object_ref */

_Static_assert(sizeof(enum spec_volume_mode) == sizeof(int) &&
               sizeof(enum spec_content_type) == sizeof(int) &&
               sizeof(enum spec_signature_format) == sizeof(int),
               "parse_choice stores enum values as int");

static const char *const api_versions[] = { "cdi.kubevirt.io/v1beta1" };
static const struct yaml_choice api_version_choice =
    CHOICE(api_versions, CHOICE_CHECK, 64, "supported", "use cdi.kubevirt.io/v1beta1");
static const char *const kinds[] = { "DataVolume" };
static const struct yaml_choice kind_choice =
    CHOICE(kinds, CHOICE_CHECK, 64, "supported", "use DataVolume");
static const char *const volume_modes[] = {
  [SPEC_VOLUME_MODE_FILESYSTEM] = "Filesystem", [SPEC_VOLUME_MODE_BLOCK] = "Block",
};
static const struct yaml_choice volume_mode_choice =
    CHOICE(volume_modes, CHOICE_INDEX, 32, "a volume mode", "use Filesystem or Block");
static const char *const content_types[] = {
  [SPEC_CONTENT_KUBEVIRT] = "kubevirt", [SPEC_CONTENT_ARCHIVE] = "archive",
};
static const struct yaml_choice content_type_choice =
    CHOICE(content_types, CHOICE_INDEX, 32, "a content type", "use kubevirt or archive");
static const char *const signature_formats[] = {
  [SPEC_SIGNATURE_AUTO] = "auto", [SPEC_SIGNATURE_DER] = "der",
  [SPEC_SIGNATURE_BASE64] = "base64", [SPEC_SIGNATURE_GLANCE] = "glance",
};
static const struct yaml_choice signature_format_choice =
    CHOICE(signature_formats, CHOICE_INDEX, 32, "a signature format",
           "use der, base64 or glance (default: detect der or base64)");
static const char *const hash_methods[] = { "sha224", "sha256", "sha384", "sha512", "SHA-224",
                                            "SHA-256", "SHA-384", "SHA-512" };
static const struct yaml_choice hash_method_choice =
    CHOICE(hash_methods, CHOICE_TEXT, 32, "a hash method",
           "use sha224, sha256, sha384 or sha512 (Glance: SHA-256 ...)");
static const char *const key_types[] = { "RSA", "RSA-PKCS1", "RSA-PSS", "ECDSA", "Ed25519",
                                         "DSA", "ECC_SECP256R1", "ECC_SECP384R1",
                                         "ECC_SECP521R1", "ECC_SECT409K1", "ECC_SECT409R1",
                                         "ECC_SECT571K1", "ECC_SECT571R1" };
static const struct yaml_choice key_type_choice =
    CHOICE(key_types, CHOICE_TEXT, 32, "a key type",
           "use RSA, RSA-PSS, ECDSA, Ed25519, DSA or Glance's ECC_SECP384R1 ...");

static const struct yaml_key ignored_keys[] = { { "", parse_ignore, NULL, 0, false, NULL } };
static const struct yaml_table empty_table = { ignored_keys, 0 };

static const struct yaml_key metadata_keys[] = {
  { "name",            parse_string,      NULL, AT(name), false, NULL },
  { "namespace",       parse_ignore,      NULL, 0,        false, NULL },
  { "labels",          parse_any_mapping, NULL, 0,        false, NULL },
  { "annotations",     parse_any_mapping, NULL, 0,        false, NULL },
};
static const struct yaml_table metadata_table = TABLE(metadata_keys);

static const struct yaml_key http_keys[] = {
  { "url",                parse_url,                  NULL, AT(source.http.url), true, NULL },
  { "checksum",           parse_checksum,             NULL, 0, false, NULL },
  { "extraHeaders",       parse_extra_headers,        NULL, 0, false, NULL },
  { "secretExtraHeaders", parse_secret_extra_headers, NULL, 0, false, NULL },
  { "secretRef",          parse_object_ref, NULL, AT_WALK(secret_ref), false, NULL },
  { "certConfigMap",      parse_object_ref, NULL, AT_WALK(cert_config_map), false, NULL },
  { "insecureSkipVerify", parse_bool, NULL, AT(source.http.insecure_skip_verify), false, NULL },
};
static const struct yaml_table http_table = TABLE(http_keys);

static const struct yaml_key file_keys[] = {
  { "path", parse_string, NULL, AT(source.file_path), true, NULL },
};
static const struct yaml_table file_table = TABLE(file_keys);

static const struct yaml_key nbd_keys[] = {
  { "uri", parse_string, NULL, AT(source.nbd_uri), true, NULL },
};
static const struct yaml_table nbd_table = TABLE(nbd_keys);

static const struct yaml_key source_keys[] = {
  { "http",     parse_source_kind,        &http_table,  SPEC_SOURCE_HTTP,  false, NULL },
  { "blank",    parse_source_kind,        &empty_table, SPEC_SOURCE_BLANK, false, NULL },
  { "file",     parse_source_kind,        &file_table,  SPEC_SOURCE_FILE,  false, NULL },
  { "nbd",      parse_source_kind,        &nbd_table,   SPEC_SOURCE_NBD,   false, NULL },
  { "s3",       parse_source_unsupported, NULL,         0, false, NULL },
  { "gcs",      parse_source_unsupported, NULL,         0, false, NULL },
  { "registry", parse_source_unsupported, NULL,         0, false, NULL },
  { "imageio",  parse_source_unsupported, NULL,         0, false, NULL },
  { "vddk",     parse_source_unsupported, NULL,         0, false, NULL },
  { "pvc",      parse_source_unsupported, NULL,         0, false, NULL },
  { "snapshot", parse_source_unsupported, NULL,         0, false, NULL },
  { "upload",   parse_source_unsupported, NULL,         0, false, NULL },
};
static const struct yaml_table source_table = TABLE(source_keys);

static const struct yaml_key requests_keys[] = {
  { "storage", parse_quantity, NULL, AT(target.requested_size), false, NULL },
};
static const struct yaml_table requests_table = TABLE(requests_keys);

static const struct yaml_key resources_keys[] = {
  { "requests", parse_mapping,     &requests_table, 0, false, NULL },
  { "limits",   parse_any_mapping, NULL,            0, false, NULL },
};
static const struct yaml_table resources_table = TABLE(resources_keys);

static const struct yaml_key storage_keys[] = {
  { "volumeMode", parse_choice, NULL, AT(target.volume_mode), false, &volume_mode_choice },
  { "resources",        parse_mapping, &resources_table, 0, false, NULL },
  { "accessModes",      parse_ignore,  NULL,             0, false, NULL },
  { "storageClassName", parse_ignore,  NULL,             0, false, NULL },
};
static const struct yaml_table storage_table = TABLE(storage_keys);

static const struct yaml_key spec_keys[] = {
  { "source",        parse_source,  &source_table,  0, true,  NULL },
  { "storage",       parse_storage, &storage_table, 0, false, NULL },
  { "pvc",           parse_storage, &storage_table, 0, false, NULL },
  { "preallocation", parse_bool,    NULL, AT(target.preallocation), false, NULL },
  { "contentType",   parse_choice,  NULL, AT(content_type), false, &content_type_choice },
};
static const struct yaml_table spec_table = TABLE(spec_keys);

static const struct yaml_key target_keys[] = {
  { "path",        parse_string, NULL, AT(target.path),         false, NULL },
  { "blockDevice", parse_string, NULL, AT(target.block_device), false, NULL },
};
static const struct yaml_table target_table = TABLE(target_keys);

static const struct yaml_key mounts_keys[] = {
  { "certs",        parse_string, NULL, AT(mounts.certs),         false, NULL },
  { "secret",       parse_string, NULL, AT(mounts.secret),        false, NULL },
  { "extraHeaders", parse_string, NULL, AT(mounts.extra_headers), false, NULL },
};
static const struct yaml_table mounts_table = TABLE(mounts_keys);

static const struct yaml_key signature_keys[] = {
  { "url",         parse_url,          NULL, AT(signature.url),         false, NULL },
  { "path",        parse_mounted_file, NULL, AT(signature.path),        false, NULL },
  { "format", parse_choice, NULL, AT(signature.format), false, &signature_format_choice },
  { "publicKey",   parse_mounted_file, NULL, AT(signature.public_key),  false, NULL },
  { "certificate", parse_mounted_file, NULL, AT(signature.certificate), false, NULL },
  { "caBundle",    parse_mounted_file, NULL, AT(signature.ca_bundle),   false, NULL },
  { "hashMethod", parse_choice, NULL, AT(signature.hash_method), false, &hash_method_choice },
  { "keyType",    parse_choice, NULL, AT(signature.key_type),    false, &key_type_choice },
};
static const struct yaml_table signature_table = TABLE(signature_keys);

static const struct yaml_key vimport_keys[] = {
  { "expectedBlockHash",      parse_expected_block_hash, NULL, 0, false, NULL },
  { "blockSize",              parse_block_size,      NULL, 0, false, NULL },
  { "target",                 parse_mapping,         &target_table, 0, false, NULL },
  { "terminationMessagePath", parse_string, NULL, AT(termination_message_path), false, NULL },
  { "memoryLimit",            parse_quantity,        NULL, AT(memory_limit), false, NULL },
  { "windowSize",             parse_quantity,        NULL, AT(window_size), false, NULL },
  { "scratchPath",            parse_string,          NULL, AT(scratch_path), false, NULL },
  { "mounts",                 parse_mapping,         &mounts_table, 0, false, NULL },
  { "retries",                parse_retries,         NULL, 0, false, NULL },
  { "stallTimeoutSeconds",    parse_stall_timeout,   NULL, 0, false, NULL },
  { "allowedFormats",         parse_allowed_formats, NULL, 0, false, NULL },
  { "requireKnownContent",    parse_bool, NULL, AT(require_known_content), false, NULL },
  { "checksumURL",            parse_checksum_url,    NULL, AT(checksum_url), false, NULL },
  { "checksumName",           parse_checksum_name,   NULL, AT(checksum_name), false, NULL },
  { "signature",              parse_signature,       &signature_table, 0, false, NULL },
};
static const struct yaml_table vimport_table = TABLE(vimport_keys);

static const struct yaml_key top_keys[] = {
  { "apiVersion", parse_choice,  NULL,            0, true,  &api_version_choice },
  { "kind",       parse_choice,  NULL,            0, true,  &kind_choice },
  { "metadata",   parse_mapping, &metadata_table, 0, false, NULL },
  { "spec",       parse_mapping, &spec_table,     0, true,  NULL },
  { "vimport",    parse_mapping, &vimport_table,  0, false, NULL },
};
static const struct yaml_table top_table = TABLE(top_keys);

_Static_assert(sizeof vimport_keys / sizeof vimport_keys[0] <= YAML_TABLE_MAX_KEYS,
               "walk_mapping's seen[] is too small for the largest table");
_Static_assert(sizeof source_keys / sizeof source_keys[0] <= YAML_TABLE_MAX_KEYS,
               "walk_mapping's seen[] is too small for the largest table");

/* ---- Loading ------------------------------------------------------------------------ */

static void cleanup_parser(yaml_parser_t *p) { yaml_parser_delete(p); }
static void cleanup_document(yaml_document_t *d) { yaml_document_delete(d); }
static void cleanup_spec(struct import_spec **s) { spec_free(*s); }
#define CLEANUP_PARSER __attribute__((cleanup(cleanup_parser)))
#define CLEANUP_DOCUMENT __attribute__((cleanup(cleanup_document)))
#define CLEANUP_SPEC __attribute__((cleanup(cleanup_spec)))

static int syntax_error(const yaml_parser_t *parser, const char *name, struct verr *err)
{
  return verr_set(err, VERR_USAGE, "%s:%lu:%lu: not valid YAML: %s%s%s; fix the syntax",
                  name, (unsigned long)parser->problem_mark.line + 1,
                  (unsigned long)parser->problem_mark.column + 1,
                  parser->problem != NULL ? parser->problem : "unknown problem",
                  parser->context != NULL ? " " : "",
                  parser->context != NULL ? parser->context : "");
}

/* Load the one document in the buffer; a second document is an error. */
static int load_document(yaml_parser_t *parser, yaml_document_t *doc, const char *name,
                         struct verr *err)
{
  if (!yaml_parser_load(parser, doc))
    return syntax_error(parser, name, err);
  if (yaml_document_get_root_node(doc) == NULL)
    return verr_set(err, VERR_USAGE, "%s: the spec is empty; see docs/spec.md for an example",
                    name);
  CLEANUP_DOCUMENT yaml_document_t next;
  memset(&next, 0, sizeof next);
  if (!yaml_parser_load(parser, &next))
    return syntax_error(parser, name, err);
  if (yaml_document_get_root_node(&next) != NULL)
    return verr_set(err, VERR_USAGE, "%s:%lu: a second YAML document; put one DataVolume per "
                    "spec file", name, (unsigned long)next.start_mark.line + 1);
  return 0;
}

int spec_load_yaml_buffer(const char *buf, size_t len, const char *name,
                          struct import_spec **out, struct verr *err)
{
  if (len > SPEC_MAX_YAML_BYTES)
    return verr_set(err, VERR_USAGE, "%s: the spec is larger than %u bytes; is it the right "
                    "file?", name, SPEC_MAX_YAML_BYTES);
  if (memchr(buf, '\0', len) != NULL)
    return verr_set(err, VERR_USAGE, "%s: the spec holds a NUL byte; it must be YAML text",
                    name);

  CLEANUP_PARSER yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser))
    return verr_set(err, VERR_NOMEM, "cannot initialise the YAML parser");
  yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
  CLEANUP_DOCUMENT yaml_document_t doc;
  memset(&doc, 0, sizeof doc);
  if (load_document(&parser, &doc, name, err) == -1)
    return -1;

  CLEANUP_SPEC struct import_spec *spec = NULL;
  if (spec_new_defaults(name, &spec, err) == -1)
    return -1;
  struct yaml_walk w = { .doc = &doc, .spec = spec, .err = err };
  if (walk_mapping(&w, yaml_document_get_root_node(&doc), "", &top_table) == -1 ||
      resolve_mounts(&w) == -1 || check_trust(&w) == -1 ||
      spec_check_complete(spec, err) == -1)
    return -1;
  *out = TAKE_PTR(spec);
  return 0;
}

/* Reads any file type (a pipe from `--spec <(...)` too), at most one byte more than
 * the limit so an oversized spec is refused rather than cut. */
int spec_load_yaml_file(const char *path, struct import_spec **out, struct verr *err)
{
  CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return verr_sys(err, VERR_IO, errno, "cannot open the spec %s", path);
  size_t cap = (size_t)SPEC_MAX_YAML_BYTES + 1;
  CLEANUP_FREE char *buf = malloc(cap);
  if (buf == NULL)
    return verr_sys(err, VERR_NOMEM, errno, "cannot read the spec %s", path);
  size_t used = 0;
  while (used < cap) {
    ssize_t n = read(fd, buf + used, cap - used);
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1)
      return verr_sys(err, VERR_IO, errno, "cannot read the spec %s", path);
    if (n == 0)
      break;
    used += (size_t)n;
  }
  return spec_load_yaml_buffer(buf, used, path, out, err);
}
