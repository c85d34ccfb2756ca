/* vimport spec: helpers shared by the YAML and environment loaders. Not public. */
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

/* Power of two between 512 B and 64 MiB, as pkg/blkhash accepts. */
bool spec_valid_block_size(uint64_t size);

/* Read basic auth from `dir`/accessKeyId and `dir`/secretKey. */
int spec_read_basic_auth(struct import_spec *spec, const char *dir, struct verr *err);

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

#endif
