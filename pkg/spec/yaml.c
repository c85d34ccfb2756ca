/* vimport spec: the DataVolume-style YAML loader.
 *
 * libyaml builds the document tree; the key tables of yaml_schema.c (one table per YAML
 * mapping) walk it, with the handlers for plain values here. Unknown keys, duplicate
 * keys, missing required keys and wrong types are errors that name the file, the line
 * and the dotted key path. The interface between the two files is in spec-internal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "spec-internal.h"
#include "spec.h"

/* ---- Errors ------------------------------------------------------------------------ */

unsigned long yaml_node_line(const yaml_node_t *node)
{
  return (unsigned long)node->start_mark.line + 1;
}

int yaml_walk_error(struct yaml_walk *w, const yaml_node_t *node, const char *path,
                      const char *fmt, ...)
{
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return verr_set(w->err, VERR_USAGE, "%s:%lu: %s: %s", w->spec->origin, yaml_node_line(node),
                  path[0] != '\0' ? path : "(document)", what);
}

/* Put "origin:line: path" before a message a value parser already wrote. */
int yaml_walk_prefix(struct yaml_walk *w, const yaml_node_t *node, const char *path)
{
  return verr_prefix(w->err, "%s:%lu: %s", w->spec->origin, yaml_node_line(node), path);
}

/* ---- Scalars ------------------------------------------------------------------------ */

enum scalar_kind { SCALAR_STRING, SCALAR_NULL, SCALAR_BOOL, SCALAR_NUMBER };

const char *yaml_scalar_text(const yaml_node_t *node)
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
  const char *s = yaml_scalar_text(node);
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
  return strlen(yaml_scalar_text(node)) != node->data.scalar.length;
}

/* A scalar of any YAML type except null (quantities may be numbers or strings). */
int yaml_want_scalar(struct yaml_walk *w, yaml_node_t *node, const char *path,
                       const char *what, const char **out)
{
  if (node->type != YAML_SCALAR_NODE || scalar_kind(node) == SCALAR_NULL)
    return yaml_walk_error(w, node, path, "expected %s, got %s", what, node_type_name(node));
  if (scalar_has_nul(node))
    return yaml_walk_error(w, node, path, "the value holds a NUL byte; remove it");
  *out = yaml_scalar_text(node);
  return 0;
}

int yaml_want_string(struct yaml_walk *w, yaml_node_t *node, const char *path,
                       const char **out)
{
  if (node->type == YAML_SCALAR_NODE && scalar_kind(node) != SCALAR_STRING &&
      scalar_kind(node) != SCALAR_NULL)
    return yaml_walk_error(w, node, path, "expected a string, got %s; put it in quotes",
                           node_type_name(node));
  if (yaml_want_scalar(w, node, path, "a string", out) == -1)
    return -1;
  if (**out == '\0')
    return yaml_walk_error(w, node, path, "empty string; give a value or drop the key");
  return 0;
}

void *yaml_field(struct yaml_walk *w, size_t offset)
{
  return (char *)w->spec + offset;
}

/* ---- Generic handlers --------------------------------------------------------------- */

YAML_HANDLER(yaml_parse_ignore) { return 0; }

YAML_HANDLER(yaml_parse_mapping) { return yaml_walk_mapping(w, value, path, k->children); }

YAML_HANDLER(yaml_parse_any_mapping)
{
  if (value->type != YAML_MAPPING_NODE)
    return yaml_walk_error(w, value, path, "expected a mapping, got %s", node_type_name(value));
  return 0;
}

YAML_HANDLER(yaml_parse_string)
{
  const char *s;
  if (yaml_want_string(w, value, path, &s) == -1)
    return -1;
  return spec_set_string(yaml_field(w, k->offset), s, strlen(s), w->err);
}

YAML_HANDLER(yaml_parse_bool)
{
  if (value->type != YAML_SCALAR_NODE || scalar_kind(value) != SCALAR_BOOL)
    return yaml_walk_error(w, value, path, "expected true or false, got %s", node_type_name(value));
  *(bool *)yaml_field(w, k->offset) =
      text_in(yaml_scalar_text(value), yaml_true, sizeof yaml_true / sizeof yaml_true[0]);
  return 0;
}

/* A value parser's result: its message gets "origin:line: path" in front. */
int yaml_prefixed(struct yaml_walk *w, yaml_node_t *value, const char *path, int r)
{
  return r == -1 ? yaml_walk_prefix(w, value, path) : 0;
}

YAML_HANDLER(yaml_parse_quantity)
{
  const char *s;
  if (yaml_want_scalar(w, value, path, "a quantity such as 10Gi", &s) == -1)
    return -1;
  return yaml_prefixed(w, value, path, spec_parse_quantity(s, yaml_field(w, k->offset), w->err));
}

/* A whole number within [min, max], stored as unsigned. */
int yaml_parse_count(struct yaml_walk *w, yaml_node_t *value, const char *path,
                       unsigned min, unsigned max, unsigned *out)
{
  if (value->type != YAML_SCALAR_NODE || scalar_kind(value) != SCALAR_NUMBER)
    return yaml_walk_error(w, value, path, "expected a whole number, got %s",
                           node_type_name(value));
  const char *s = yaml_scalar_text(value);
  unsigned long long n = 0;
  bool ok = *s != '\0';
  for (; ok && *s; s++) {
    ok = *s >= '0' && *s <= '9' && n <= max;
    n = n * 10 + (unsigned)(*s - '0');
  }
  if (!ok || n < min || n > max)
    return yaml_walk_error(w, value, path, "expected a whole number from %u to %u", min, max);
  *out = (unsigned)n;
  return 0;
}

static void set_enum(void *slot, size_t value)
{
  int v = (int)value;
  memcpy(slot, &v, sizeof v);
}

YAML_HANDLER(yaml_parse_choice)
{
  const struct yaml_choice *c = k->choice;
  const char *s;
  if (c->store == CHOICE_TEXT ? yaml_parse_string(w, value, path, k) == -1
                              : yaml_want_string(w, value, path, &s) == -1)
    return -1;
  if (c->store == CHOICE_TEXT)
    s = *(char **)yaml_field(w, k->offset);
  for (size_t i = 0; i < c->n_names; i++) {
    if (c->names[i] == NULL ||
        (c->store == CHOICE_TEXT ? strcasecmp(s, c->names[i]) : strcmp(s, c->names[i])) != 0)
      continue;
    if (c->store == CHOICE_INDEX)
      set_enum(yaml_field(w, k->offset), i);
    return 0;
  }
  return yaml_walk_error(w, value, path, "\"%.*s\" is not %s; %s", c->quote, s, c->what, c->hint);
}

int yaml_want_sequence(struct yaml_walk *w, yaml_node_t *value, const char *path)
{
  if (value->type != YAML_SEQUENCE_NODE)
    return yaml_walk_error(w, value, path, "expected a list, got %s", node_type_name(value));
  return 0;
}

yaml_node_t *yaml_sequence_item(struct yaml_walk *w, yaml_node_item_t *item)
{
  return yaml_document_get_node(w->doc, *item);
}

/* A list of strings, each given to `add`. */
int yaml_each_string(struct yaml_walk *w, yaml_node_t *value, const char *path,
                       int (*add)(struct import_spec *spec, const char *s, struct verr *err))
{
  if (yaml_want_sequence(w, value, path) == -1)
    return -1;
  yaml_node_item_t *item = value->data.sequence.items.start;
  for (; item < value->data.sequence.items.top; item++) {
    yaml_node_t *node = yaml_sequence_item(w, item);
    const char *s;
    if (yaml_want_string(w, node, path, &s) == -1 ||
        yaml_prefixed(w, node, path, add(w->spec, s, w->err)) == -1)
      return -1;
  }
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
  const char *name = yaml_scalar_text(key);
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
    return yaml_walk_error(w, key, path, "unknown key; did you mean \"%s\"?", best);
  return yaml_walk_error(w, key, path, "unknown key; see docs/spec.md for the keys allowed here");
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
    return yaml_walk_error(w, key, path, "keys must be plain names, got %s", node_type_name(key));
  char sub[256];
  child_path(sub, sizeof sub, path, yaml_scalar_text(key));
  int i = find_key(table, yaml_scalar_text(key));
  if (i == -1)
    return unknown_key(w, key, sub, table);
  if (seen[i])
    return yaml_walk_error(w, key, sub, "duplicate key; give it once");
  seen[i] = true;
  const struct yaml_key *k = &table->keys[i];
  return k->parse(w, value, sub, k);
}

int yaml_walk_mapping(struct yaml_walk *w, yaml_node_t *node, const char *path,
                        const struct yaml_table *table)
{
  if (node->type != YAML_MAPPING_NODE)
    return yaml_walk_error(w, node, path, "expected a mapping, got %s", node_type_name(node));
  bool seen[YAML_TABLE_MAX_KEYS] = { false };
  yaml_node_pair_t *pair = node->data.mapping.pairs.start;
  for (; pair < node->data.mapping.pairs.top; pair++)
    if (walk_pair(w, pair, path, table, seen) == -1)
      return -1;
  for (size_t i = 0; i < table->n_keys; i++)
    if (table->keys[i].required && !seen[i])
      return yaml_walk_error(w, node, path, "the required key \"%s\" is missing",
                             table->keys[i].name);
  return 0;
}

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
  if (yaml_walk_mapping(&w, yaml_document_get_root_node(&doc), "", &yaml_top_table) == -1 ||
      yaml_schema_finish(&w) == -1 ||
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
