/* vimport spec: helpers shared by the YAML and environment loaders, and the YAML
 * walker's interface to its schema. Not public. */
#ifndef VIMPORT_SPEC_INTERNAL_H
#define VIMPORT_SPEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "spec.h"

/* A new spec with every default filled in. `origin` is copied. */
int spec_new_defaults(const char *origin, struct import_spec **out, struct verr *err);

/* Replace *slot with a copy of s[0..len) (NUL bytes refused by callers). */
int spec_set_string(char **slot, const char *s, size_t len, struct verr *err);

/* Append one header parsed from "Name: value". `len` bytes of `line`; trailing
 * whitespace and line ends are dropped. Messages do not include the value. */
int spec_add_header_line(struct import_spec *spec, const char *line, size_t len, bool secret,
                         struct verr *err);

/* Go strconv.ParseBool spellings: 1 t T TRUE true True / 0 f F FALSE false False. */
int spec_parse_bool(const char *s, bool *out);

/* Whether `s` is a Kubernetes object name (DNS-1123 subdomain): safe as a path part. */
bool spec_valid_object_name(const char *s);

/* Whether `url` starts with http:// or https:// and has a host. */
bool spec_valid_http_url(const char *url);

/* What the CDI source kind `name` is (a source vimport refuses), for the refusal:
 * "oVirt/RHV disks through ovirt-imageio (CDI's imageio source)"; NULL when unknown. */
const char *spec_refused_source_feature(const char *name);
/* Whether the source kind fetches over http(s) with the http options (TLS, proxies,
 * credentials): http, registry, s3. */
bool spec_source_is_http(enum spec_source_kind kind);

/* Power of two between 512 B and 64 MiB, as pkg/blkhash accepts. */
bool spec_valid_block_size(uint64_t size);

/* Read basic auth from `dir`/accessKeyId and `dir`/secretKey. */
int spec_read_basic_auth(struct import_spec *spec, const char *dir, struct verr *err);

/* A gcs secretRef: `dir`/credentials.json (CDI's key in the secret) must be readable;
 * its path, not its content, goes into the spec (the source reads the key). */
int spec_gcs_credentials(struct import_spec *spec, const char *dir, struct verr *err);

/* Append one secret header per regular file in `dir` (names starting with '.' skipped,
 * files taken in name order). */
int spec_read_secret_header_dir(struct import_spec *spec, const char *dir, struct verr *err);

/* Secret headers of the env contract: the files directly in `root`, then those of each
 * subdirectory (one per mounted secret), in name order. A missing `root` means none. */
int spec_read_secret_header_tree(struct import_spec *spec, const char *root, struct verr *err);

/* Check that `dir` is a directory (for certConfigMap). */
int spec_check_dir(const char *dir, struct verr *err);

/* Append a copy of `name` to allowed_formats after checking spec_format_known(). */
int spec_add_allowed_format(struct import_spec *spec, const char *name, struct verr *err);

/* Final cross-field checks shared by both loaders. */
int spec_check_complete(const struct import_spec *spec, struct verr *err);

/* ---- The YAML loader ---------------------------------------------------------------
 *
 * yaml.c is a table-driven walker of libyaml's document tree; yaml_schema.c is the
 * DataVolume schema it walks: one table of keys per YAML mapping. Each key names a
 * handler and, for plain values, the offset of the field it fills, so a new key is one
 * table line. Handlers report errors with yaml_walk_error(), which names the file, the
 * line and the dotted key path. */

#include <yaml.h>

struct yaml_walk;
struct yaml_key;
struct yaml_choice;

typedef int (*yaml_key_fn)(struct yaml_walk *w, yaml_node_t *value, const char *path,
                           const struct yaml_key *k);

struct yaml_table {
  const struct yaml_key *keys;
  size_t n_keys;
};

#define YAML_TABLE_MAX_KEYS 32

struct yaml_key {
  const char *name;
  yaml_key_fn parse;
  const struct yaml_table *children; /* for yaml_parse_mapping and source kinds */
  size_t offset;                     /* field in struct import_spec, for plain values */
  bool required;
  const struct yaml_choice *choice;  /* for yaml_parse_choice */
};

/* What one load keeps besides the spec: what the schema checks after the walk. */
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
  yaml_node_t *checksum_signature; /* vimport.checksumSignature */
  yaml_node_t *block_hash_url;     /* vimport.blockHashURL */
  yaml_node_t *block_hash_signature; /* vimport.blockHashSignature */
};

/* yaml_parse_choice: one of a fixed set of strings (the key's `choice`); a bad value is
 * quoted in the message "\"value\" is not <what>; <hint>". */
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

/* Every key handler has this signature (yaml_key_fn); most use only some parameters. */
#define YAML_HANDLER(fn)                                                                   \
  int fn(struct yaml_walk *w __attribute__((unused)),                                      \
         yaml_node_t *value __attribute__((unused)),                                       \
         const char *path __attribute__((unused)),                                         \
         const struct yaml_key *k __attribute__((unused)))

/* Handlers for plain values (yaml.c). */
YAML_HANDLER(yaml_parse_ignore);      /* anything, unchecked */
YAML_HANDLER(yaml_parse_mapping);     /* a mapping walked with k->children */
YAML_HANDLER(yaml_parse_any_mapping); /* a mapping, unchecked */
YAML_HANDLER(yaml_parse_string);      /* a non-empty string, copied to the char * field */
YAML_HANDLER(yaml_parse_bool);        /* true or false into the bool field */
YAML_HANDLER(yaml_parse_quantity);    /* a quantity (10Gi) into the uint64_t field */
YAML_HANDLER(yaml_parse_choice);      /* one of k->choice's names */

/* "origin:line: path: <fmt>" as a VERR_USAGE error; returns -1. */
int yaml_walk_error(struct yaml_walk *w, const yaml_node_t *node, const char *path,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Put "origin:line: path" before a message a value parser already wrote; returns -1. */
int yaml_walk_prefix(struct yaml_walk *w, const yaml_node_t *node, const char *path);
/* yaml_walk_prefix() when `r` is -1; else 0. */
int yaml_prefixed(struct yaml_walk *w, yaml_node_t *value, const char *path, int r);

unsigned long yaml_node_line(const yaml_node_t *node);
const char *yaml_scalar_text(const yaml_node_t *node);
void *yaml_field(struct yaml_walk *w, size_t offset); /* the spec's field at `offset` */

/* A scalar of any YAML type except null, described as `what` in the error. */
int yaml_want_scalar(struct yaml_walk *w, yaml_node_t *node, const char *path,
                     const char *what, const char **out);
/* A non-empty string scalar (not a number, boolean or null). */
int yaml_want_string(struct yaml_walk *w, yaml_node_t *node, const char *path,
                     const char **out);
int yaml_want_sequence(struct yaml_walk *w, yaml_node_t *value, const char *path);
yaml_node_t *yaml_sequence_item(struct yaml_walk *w, yaml_node_item_t *item);
/* A whole number within [min, max]. */
int yaml_parse_count(struct yaml_walk *w, yaml_node_t *value, const char *path,
                     unsigned min, unsigned max, unsigned *out);
/* A list of strings, each given to `add` (its message prefixed). */
int yaml_each_string(struct yaml_walk *w, yaml_node_t *value, const char *path,
                     int (*add)(struct import_spec *spec, const char *s, struct verr *err));
/* Walk mapping `node` with `table`: unknown, duplicate and missing required keys are
 * errors. */
int yaml_walk_mapping(struct yaml_walk *w, yaml_node_t *node, const char *path,
                      const struct yaml_table *table);

/* The schema (yaml_schema.c): the document's table, and the checks and mounted secrets
 * that need the whole document walked first. */
extern const struct yaml_table yaml_top_table;
int yaml_schema_finish(struct yaml_walk *w);

#endif
