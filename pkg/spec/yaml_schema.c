/* vimport spec: the DataVolume schema the YAML walker (yaml.c) follows.
 *
 * One table of keys per YAML mapping, at the bottom of this file, with the handlers of
 * values that need more than the walker's plain ones. Mounted secrets are read after the
 * walk (yaml_schema_finish), because the mount directories they live in
 * (vimport.mounts) may come later in the file than the secret names.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "registry/registry.h"
#include "spec-internal.h"
#include "spec.h"

/* ---- Specific handlers -------------------------------------------------------------- */

static int parse_object_name(struct yaml_walk *w, yaml_node_t *value, const char *path)
{
  const char *s;
  if (yaml_want_string(w, value, path, &s) == -1)
    return -1;
  if (!spec_valid_object_name(s))
    return yaml_walk_error(w, value, path, "\"%.64s\" is not a Kubernetes object name; use "
                           "lowercase letters, digits, '-' and '.'", s);
  return 0;
}

static YAML_HANDLER(parse_url)
{
  const char *s;
  if (yaml_want_string(w, value, path, &s) == -1)
    return -1;
  if (!spec_valid_http_url(s))
    return yaml_walk_error(w, value, path, "not an http:// or https:// URL with a host (spaces "
                           "must be percent-encoded)");
  return yaml_parse_string(w, value, path, k);
}

/* spec.source.registry.url: a reference the registry client takes (pkg/registry). */
static YAML_HANDLER(parse_registry_url)
{
  const char *s;
  if (yaml_want_string(w, value, path, &s) == -1)
    return -1;
  struct registry_ref ref;
  if (registry_parse_ref(s, &ref, w->err) == -1)
    return yaml_prefixed(w, value, path, -1);
  return yaml_parse_string(w, value, path, k);
}

/* spec.source.gcs.url: gs://BUCKET/OBJECT or https://HOST/BUCKET/OBJECT (CDI's two
 * forms; checked whole by the source, pkg/source/gcs_parse.c). */
static YAML_HANDLER(parse_gcs_url)
{
  const char *s;
  if (yaml_want_string(w, value, path, &s) == -1)
    return -1;
  if (strncmp(s, "gs://", 5) != 0 && !spec_valid_http_url(s))
    return yaml_walk_error(w, value, path, "not gs://BUCKET/OBJECT or "
                           "https://HOST/BUCKET/OBJECT");
  return yaml_parse_string(w, value, path, k);
}

/* CDI's pullMethod: "pod" (the importer pulls, which is what vimport does) or "node"
 * (the controller runs the image on the node; the importer then reads http). */
static YAML_HANDLER(parse_pull_method)
{
  (void)k;
  const char *s;
  if (yaml_want_string(w, value, path, &s) == -1)
    return -1;
  if (strcmp(s, "pod") == 0)
    return 0;
  if (strcmp(s, "node") == 0)
    return yaml_walk_error(w, value, path, "node pull is done by CDI's controller, which runs "
                           "the image and points the importer at it over http; a spec pulls "
                           "from the registry itself: use pod");
  return yaml_walk_error(w, value, path, "\"%.32s\" is not a pull method; use pod", s);
}

static YAML_HANDLER(parse_architecture)
{
  const char *s;
  if (yaml_want_string(w, value, path, &s) == -1)
    return -1;
  size_t len = strlen(s);
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')) || len > 31)
      return yaml_walk_error(w, value, path, "\"%.32s\" is not an architecture name such as "
                             "amd64, arm64 or s390x", s);
  return yaml_parse_string(w, value, path, k);
}

static YAML_HANDLER(parse_checksum)
{
  const char *s;
  if (yaml_want_string(w, value, path, &s) == -1)
    return -1;
  return yaml_prefixed(w, value, path,
                       spec_parse_checksum(s, &w->spec->source.checksum, w->err));
}

/* Named, not just unknown: a user who sets a checksum must learn why it cannot apply. */
static YAML_HANDLER(parse_checksum_refused)
{
  (void)k;
  return yaml_walk_error(w, value, path, "a %s source has no served bytes to check (vimport "
                         "checks the block hash it writes); drop the checksum, or give "
                         "vimport.expectedBlockHash", w->source_kind ? w->source_kind : "?");
}

static int add_header_line(struct import_spec *spec, const char *s, struct verr *err)
{
  return spec_add_header_line(spec, s, strlen(s), false, err);
}

static YAML_HANDLER(parse_extra_headers)
{
  return yaml_each_string(w, value, path, add_header_line);
}

static YAML_HANDLER(parse_secret_extra_headers)
{
  if (yaml_want_sequence(w, value, path) == -1)
    return -1;
  yaml_node_item_t *item = value->data.sequence.items.start;
  for (; item < value->data.sequence.items.top; item++)
    if (parse_object_name(w, yaml_sequence_item(w, item), path) == -1)
      return -1;
  w->secret_headers = value;
  return 0;
}

/* A secret or config map named here and read after the walk: `offset` is the
 * yaml_node_t * of struct yaml_walk that keeps the name's node. */
static YAML_HANDLER(parse_object_ref)
{
  if (parse_object_name(w, value, path) == -1)
    return -1;
  *(yaml_node_t **)((char *)w + k->offset) = value;
  return 0;
}

/* spec.source.<kind>: the table entry's `offset` carries the enum spec_source_kind. */
static YAML_HANDLER(parse_source_kind)
{
  static const char *const names[] = {
    [SPEC_SOURCE_HTTP] = "http", [SPEC_SOURCE_BLANK] = "blank",
    [SPEC_SOURCE_FILE] = "file", [SPEC_SOURCE_NBD] = "nbd",
    [SPEC_SOURCE_REGISTRY] = "registry", [SPEC_SOURCE_S3] = "s3", [SPEC_SOURCE_GCS] = "gcs",
  };
  size_t kind = k->offset;
  const char *name = kind < sizeof names / sizeof names[0] && names[kind] ? names[kind] : "?";
  if (w->source_kind != NULL)
    return yaml_walk_error(w, value, path, "a second source kind after %s; give exactly one source",
                           w->source_kind);
  w->source_kind = name;
  w->spec->source.kind = (enum spec_source_kind)kind;
  return yaml_walk_mapping(w, value, path, k->children);
}

static YAML_HANDLER(parse_source_unsupported)
{
  const char *feature = spec_refused_source_feature(k->name);
  if (feature != NULL)
    return yaml_walk_error(w, value, path, "%s: vimport does not replace that CDI feature; "
                           "run CDI's own importer for it, or import with http, s3, registry, "
                           "blank, file or nbd", feature);
  return yaml_walk_error(w, value, path, "this CDI source kind is not supported by vimport; use "
                         "http, s3, gcs, registry, blank, file or nbd, or CDI's own importer");
}

static YAML_HANDLER(parse_source)
{
  if (yaml_walk_mapping(w, value, path, k->children) == -1)
    return -1;
  if (w->spec->source.kind == SPEC_SOURCE_NONE)
    return yaml_walk_error(w, value, path, "no source kind; give one of http, s3, gcs, registry, "
                           "blank, file or nbd");
  return 0;
}

static YAML_HANDLER(parse_storage)
{
  if (w->has_storage)
    return yaml_walk_error(w, value, path, "both storage and pvc are given; keep one");
  w->has_storage = true;
  return yaml_walk_mapping(w, value, path, k->children);
}

static YAML_HANDLER(parse_expected_block_hash)
{
  const char *s;
  if (yaml_want_string(w, value, path, &s) == -1)
    return -1;
  return yaml_prefixed(w, value, path, spec_parse_block_hash(s, &w->spec->block_hash, w->err));
}

static YAML_HANDLER(parse_block_size)
{
  uint64_t size;
  const char *s;
  if (yaml_want_scalar(w, value, path, "a quantity such as 64Ki", &s) == -1)
    return -1;
  if (spec_parse_quantity(s, &size, w->err) == -1)
    return yaml_walk_prefix(w, value, path);
  if (!spec_valid_block_size(size))
    return yaml_walk_error(w, value, path, "%llu is not a power of two from 512 to 64Mi; the "
                           "default is 64Ki", (unsigned long long)size);
  w->spec->block_hash.block_size = (uint32_t)size;
  return 0;
}

/* The bytes expectedBlockHash covers: the import's blockHashLength (a file's size after
 * CDI's growth, or the image on a block device). */
static YAML_HANDLER(parse_block_hash_length)
{
  uint64_t length;
  const char *s;
  if (yaml_want_scalar(w, value, path, "a byte count such as 8388608", &s) == -1)
    return -1;
  if (spec_parse_quantity(s, &length, w->err) == -1)
    return yaml_walk_prefix(w, value, path);
  if (length == 0)
    return yaml_walk_error(w, value, path, "0 bytes: give the blockHashLength of the "
                           "import's termination message, or leave the key out");
  w->spec->block_hash.length = length;
  return 0;
}

static YAML_HANDLER(parse_retries)
{
  return yaml_parse_count(w, value, path, 0, 100, &w->spec->retries);
}

static YAML_HANDLER(parse_stall_timeout)
{
  return yaml_parse_count(w, value, path, 1, 86400, &w->spec->stall_timeout_seconds);
}

static YAML_HANDLER(parse_allowed_formats)
{
  return yaml_each_string(w, value, path, spec_add_allowed_format);
}

/* ---- Trust: checksum files and signatures (pkg/trust) ------------------------------- */

/* An http(s) URL, a file:// URL or an absolute path (a mounted file). */
static YAML_HANDLER(parse_url_or_path)
{
  const char *s;
  if (yaml_want_string(w, value, path, &s) == -1)
    return -1;
  if (!spec_valid_http_url(s) && s[0] != '/' && strncmp(s, "file:///", 8) != 0)
    return yaml_walk_error(w, value, path, "not an http:// or https:// URL with a host, a "
                           "file:/// URL or an absolute path");
  return yaml_parse_string(w, value, path, k);
}

static YAML_HANDLER(parse_checksum_url)
{
  w->checksum_url = value;
  return parse_url_or_path(w, value, path, k);
}

static YAML_HANDLER(parse_checksum_name)
{
  w->checksum_name = value;
  if (yaml_parse_string(w, value, path, k) == -1)
    return -1;
  if (strchr(w->spec->checksum_name, '\n') != NULL)
    return yaml_walk_error(w, value, path, "a file name in a checksum file is one line");
  return 0;
}

/* A file the signature check reads; it must be there when the spec loads. */
static YAML_HANDLER(parse_mounted_file)
{
  if (yaml_parse_string(w, value, path, k) == -1)
    return -1;
  const char *file = *(char **)yaml_field(w, k->offset);
  if (access(file, R_OK) != 0)
    return yaml_walk_error(w, value, path, "cannot read %.300s (is the secret or config map "
                           "mounted there?): %s", file, strerror(errno));
  return 0;
}

static int check_signature(struct yaml_walk *w, yaml_node_t *value, const char *path)
{
  const struct spec_signature *sig = &w->spec->signature;
  if ((sig->url == NULL) == (sig->path == NULL))
    return yaml_walk_error(w, value, path, "give exactly one of url or path (where the "
                           "signature is)");
  if ((sig->public_key == NULL) == (sig->certificate == NULL))
    return yaml_walk_error(w, value, path, "give exactly one of publicKey or certificate");
  if ((sig->certificate == NULL) != (sig->ca_bundle == NULL))
    return yaml_walk_error(w, value, path, sig->certificate != NULL
                           ? "certificate needs caBundle, the CA certificates it must chain to"
                           : "caBundle applies only with certificate");
  if (sig->format == SPEC_SIGNATURE_GLANCE && (sig->hash_method == NULL || sig->key_type == NULL))
    return yaml_walk_error(w, value, path, "format glance needs hashMethod and keyType (Glance's "
                           "img_signature_hash_method and img_signature_key_type)");
  return 0;
}

static YAML_HANDLER(parse_signature)
{
  w->spec->signature.given = true;
  if (yaml_walk_mapping(w, value, path, k->children) == -1)
    return -1;
  return check_signature(w, value, path);
}

/* vimport.checksumSignature: OpenPGP with a keyring (url/path optional: absent means
 * clearsigned), or a raw/X.509 detached signature checked as vimport.signature is. */
static int check_checksum_signature(struct yaml_walk *w, yaml_node_t *value, const char *path,
                                    const struct spec_checksum_signature *cs)
{
  const struct spec_signature *d = &cs->detached;
  if (d->url != NULL && d->path != NULL)
    return yaml_walk_error(w, value, path, "give at most one of url or path (where the "
                           "detached signature is)");
  int keys = (cs->keyring != NULL) + (d->public_key != NULL) + (d->certificate != NULL);
  if (keys != 1)
    return yaml_walk_error(w, value, path, "give exactly one of keyring (OpenPGP: the "
                           "publisher's gpg --export), publicKey or certificate");
  if (cs->keyring != NULL) {
    if (d->ca_bundle || d->hash_method || d->key_type || d->format != SPEC_SIGNATURE_AUTO)
      return yaml_walk_error(w, value, path, "caBundle, format, hashMethod and keyType apply "
                             "only with publicKey or certificate, not with an OpenPGP keyring");
    return 0;
  }
  if (d->url == NULL && d->path == NULL)
    return yaml_walk_error(w, value, path, "publicKey or certificate needs url or path (the "
                           "detached signature of the checksum file)");
  if ((d->certificate == NULL) != (d->ca_bundle == NULL))
    return yaml_walk_error(w, value, path, d->certificate != NULL
                           ? "certificate needs caBundle, the CA certificates it must chain to"
                           : "caBundle applies only with certificate");
  return 0;
}

static YAML_HANDLER(parse_checksum_signature)
{
  w->spec->checksum_signature.given = true;
  w->checksum_signature = value;
  if (yaml_walk_mapping(w, value, path, k->children) == -1)
    return -1;
  return check_checksum_signature(w, value, path, &w->spec->checksum_signature);
}

static YAML_HANDLER(parse_block_hash_url)
{
  w->block_hash_url = value;
  return parse_url_or_path(w, value, path, k);
}

static YAML_HANDLER(parse_block_hash_signature)
{
  w->spec->block_hash_signature.given = true;
  w->block_hash_signature = value;
  if (yaml_walk_mapping(w, value, path, k->children) == -1)
    return -1;
  return check_checksum_signature(w, value, path, &w->spec->block_hash_signature);
}

/* Cross-field rules of checksumURL, checked after the whole document was walked. */
static int check_trust(struct yaml_walk *w)
{
  const struct import_spec *spec = w->spec;
  if (w->checksum_name != NULL && w->checksum_url == NULL)
    return yaml_walk_error(w, w->checksum_name, "vimport.checksumName", "applies only with "
                           "checksumURL");
  if (w->checksum_signature != NULL && w->checksum_url == NULL)
    return yaml_walk_error(w, w->checksum_signature, "vimport.checksumSignature", "applies "
                           "only with checksumURL (the file it signs)");
  if (w->block_hash_signature != NULL && w->block_hash_url == NULL)
    return yaml_walk_error(w, w->block_hash_signature, "vimport.blockHashSignature", "applies "
                           "only with blockHashURL (the list it signs)");
  if (w->block_hash_url != NULL && spec->block_hash.has_expected)
    return yaml_walk_error(w, w->block_hash_url, "vimport.blockHashURL", "give either "
                           "expectedBlockHash or blockHashURL, not both");
  if (w->block_hash_url != NULL &&
      (spec->source.kind == SPEC_SOURCE_BLANK || spec->source.kind == SPEC_SOURCE_NBD ||
       spec->content_type == SPEC_CONTENT_ARCHIVE))
    return yaml_walk_error(w, w->block_hash_url, "vimport.blockHashURL", "applies only to an "
                           "image fetched by URL or path (not a blank or nbd source, not an "
                           "archive); give expectedBlockHash instead");
  if (w->block_hash_url != NULL && spec->block_hash.length != 0)
    return yaml_walk_error(w, w->block_hash_url, "vimport.blockHashURL", "blockHashLength "
                           "does not apply: a published list hashes the whole image");
  if (w->checksum_url == NULL)
    return 0;
  if (spec->source.kind == SPEC_SOURCE_BLANK || spec->source.kind == SPEC_SOURCE_NBD)
    return yaml_walk_error(w, w->checksum_url, "vimport.checksumURL", "a blank or nbd source "
                           "has no served bytes to check; drop it");
  if (spec->source.checksum.alg != SPEC_CHECKSUM_NONE)
    return yaml_walk_error(w, w->checksum_url, "vimport.checksumURL", "give either "
                           "spec.source.%s.checksum or checksumURL, not both", w->source_kind);
  if (spec->source.kind == SPEC_SOURCE_FILE && spec->source.file_path != NULL &&
      strcmp(spec->source.file_path, "-") == 0 && spec->checksum_name == NULL)
    return yaml_walk_error(w, w->checksum_url, "vimport.checksumURL", "stdin has no file name to "
                           "look up; set checksumName");
  return 0;
}

/* ---- Secrets named by the document -------------------------------------------------- */

static int mount_subdir(struct yaml_walk *w, const char *mount, const yaml_node_t *name_node,
                        char **out)
{
  if (asprintf(out, "%s/%s", mount, yaml_scalar_text(name_node)) == -1) {
    *out = NULL;
    return verr_sys(w->err, VERR_NOMEM, errno, "cannot build a mount path");
  }
  return 0;
}

/* "origin:line: path: secret \"name\": " before a message about a mounted object. */
static int mount_prefix(struct yaml_walk *w, const yaml_node_t *name_node, const char *path,
                        const char *what)
{
  return verr_prefix(w->err, "%s:%lu: %s: %s \"%s\"", w->spec->origin, yaml_node_line(name_node),
                     path, what, yaml_scalar_text(name_node));
}

static int resolve_secret_headers(struct yaml_walk *w)
{
  yaml_node_t *list = w->secret_headers;
  const char *path = "spec.source.http.secretExtraHeaders";
  yaml_node_item_t *item = list->data.sequence.items.start;
  for (; item < list->data.sequence.items.top; item++) {
    yaml_node_t *node = yaml_sequence_item(w, item);
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
  char path[64];
  snprintf(path, sizeof path, "spec.source.%s.secretRef", w->source_kind);
  if (w->secret_ref != NULL && spec->source.kind == SPEC_SOURCE_GCS) {
    if (spec_gcs_credentials(spec, spec->mounts.secret, w->err) == -1)
      return mount_prefix(w, w->secret_ref, path, "secret");
  } else if (w->secret_ref != NULL &&
             spec_read_basic_auth(spec, spec->mounts.secret, w->err) == -1) {
    return mount_prefix(w, w->secret_ref, path, "secret");
  }
  if (w->cert_config_map != NULL) {
    snprintf(path, sizeof path, "spec.source.%s.certConfigMap", w->source_kind);
    if (spec_check_dir(spec->mounts.certs, w->err) == -1)
      return mount_prefix(w, w->cert_config_map, path, "config map");
    if (spec_set_string(&spec->source.http.cert_dir, spec->mounts.certs,
                        strlen(spec->mounts.certs), w->err) == -1)
      return -1;
  }
  if (w->secret_headers != NULL)
    return resolve_secret_headers(w);
  return 0;
}

/* After the walk: the mounted objects the document names, then the trust rules. */
int yaml_schema_finish(struct yaml_walk *w)
{
  return resolve_mounts(w) == -1 || check_trust(w) == -1 ? -1 : 0;
}

/* ---- The schema --------------------------------------------------------------------- */

#define TABLE(keys) { (keys), sizeof (keys) / sizeof (keys)[0] }
#define AT(member) offsetof(struct import_spec, member)
#define AT_WALK(member) offsetof(struct yaml_walk, member) /* for parse_object_ref */

_Static_assert(sizeof(enum spec_volume_mode) == sizeof(int) &&
               sizeof(enum spec_content_type) == sizeof(int) &&
               sizeof(enum spec_signature_format) == sizeof(int),
               "yaml_parse_choice stores enum values as int");

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

static const struct yaml_key metadata_keys[] = {
  { "name",        yaml_parse_string,      NULL, AT(name), false, NULL },
  { "namespace",   yaml_parse_ignore,      NULL, 0,        false, NULL },
  { "labels",      yaml_parse_any_mapping, NULL, 0,        false, NULL },
  { "annotations", yaml_parse_any_mapping, NULL, 0,        false, NULL },
};
static const struct yaml_table metadata_table = TABLE(metadata_keys);

static const struct yaml_key http_keys[] = {
  { "url",                parse_url,                  NULL, AT(source.http.url), true, NULL },
  { "checksum",           parse_checksum,             NULL, 0, false, NULL },
  { "extraHeaders",       parse_extra_headers,        NULL, 0, false, NULL },
  { "secretExtraHeaders", parse_secret_extra_headers, NULL, 0, false, NULL },
  { "secretRef",          parse_object_ref,           NULL, AT_WALK(secret_ref), false, NULL },
  { "certConfigMap",      parse_object_ref,           NULL, AT_WALK(cert_config_map), false,
    NULL },
  { "insecureSkipVerify", yaml_parse_bool,            NULL,
    AT(source.http.insecure_skip_verify), false, NULL },
};
static const struct yaml_table http_table = TABLE(http_keys);

static const struct yaml_key platform_keys[] = {
  { "architecture", parse_architecture, NULL, AT(source.registry_architecture), false, NULL },
};
static const struct yaml_table platform_table = TABLE(platform_keys);

static const struct yaml_key registry_keys[] = {
  { "url",           parse_registry_url, NULL, AT(source.http.url), true, NULL },
  { "checksum",      parse_checksum,     NULL, 0, false, NULL },
  { "secretRef",     parse_object_ref,   NULL, AT_WALK(secret_ref), false, NULL },
  { "certConfigMap", parse_object_ref,   NULL, AT_WALK(cert_config_map), false, NULL },
  { "pullMethod",    parse_pull_method,  NULL, 0, false, NULL },
  { "platform",      yaml_parse_mapping, &platform_table, 0, false, NULL },
  { "imageStream",   parse_source_unsupported, NULL, 0, false, NULL },
};
static const struct yaml_table registry_table = TABLE(registry_keys);

/* CDI's DataVolumeSourceS3, plus vimport's checksum */
static const struct yaml_key s3_keys[] = {
  { "url",           parse_url,        NULL, AT(source.http.url), true, NULL },
  { "checksum",      parse_checksum,   NULL, 0, false, NULL },
  { "secretRef",     parse_object_ref, NULL, AT_WALK(secret_ref), false, NULL },
  { "certConfigMap", parse_object_ref, NULL, AT_WALK(cert_config_map), false, NULL },
};
static const struct yaml_table s3_table = TABLE(s3_keys);

/* CDI's DataVolumeSourceGCS has url and secretRef; checksum and certConfigMap are
 * vimport's, as for the other streamed kinds (docs/spec.md). */
static const struct yaml_key gcs_keys[] = {
  { "url",           parse_gcs_url,    NULL, AT(source.http.url), true, NULL },
  { "secretRef",     parse_object_ref, NULL, AT_WALK(secret_ref), false, NULL },
  { "checksum",      parse_checksum,   NULL, 0, false, NULL },
  { "certConfigMap", parse_object_ref, NULL, AT_WALK(cert_config_map), false, NULL },
};
static const struct yaml_table gcs_table = TABLE(gcs_keys);

static const struct yaml_key file_keys[] = {
  { "path",     yaml_parse_string, NULL, AT(source.file_path), true, NULL },
  { "checksum", parse_checksum,    NULL, 0, false, NULL },
};
static const struct yaml_table file_table = TABLE(file_keys);

static const struct yaml_key blank_keys[] = {
  { "checksum", parse_checksum_refused, NULL, 0, false, NULL },
};
static const struct yaml_table blank_table = TABLE(blank_keys);

static const struct yaml_key nbd_keys[] = {
  { "uri",      yaml_parse_string,      NULL, AT(source.nbd_uri), true, NULL },
  { "checksum", parse_checksum_refused, NULL, 0, false, NULL },
};
static const struct yaml_table nbd_table = TABLE(nbd_keys);

static const struct yaml_key source_keys[] = {
  { "http",     parse_source_kind,        &http_table,  SPEC_SOURCE_HTTP,  false, NULL },
  { "blank",    parse_source_kind,        &blank_table, SPEC_SOURCE_BLANK, false, NULL },
  { "file",     parse_source_kind,        &file_table,  SPEC_SOURCE_FILE,  false, NULL },
  { "nbd",      parse_source_kind,        &nbd_table,   SPEC_SOURCE_NBD,   false, NULL },
  { "s3",       parse_source_kind,        &s3_table,    SPEC_SOURCE_S3,    false, NULL },
  { "gcs",      parse_source_kind,        &gcs_table,   SPEC_SOURCE_GCS,   false, NULL },
  { "registry", parse_source_kind,        &registry_table, SPEC_SOURCE_REGISTRY, false, NULL },
  { "imageio",  parse_source_unsupported, NULL,         0,                 false, NULL },
  { "vddk",     parse_source_unsupported, NULL,         0,                 false, NULL },
  { "pvc",      parse_source_unsupported, NULL,         0,                 false, NULL },
  { "snapshot", parse_source_unsupported, NULL,         0,                 false, NULL },
  { "upload",   parse_source_unsupported, NULL,         0,                 false, NULL },
};
static const struct yaml_table source_table = TABLE(source_keys);

static const struct yaml_key requests_keys[] = {
  { "storage", yaml_parse_quantity, NULL, AT(target.requested_size), false, NULL },
};
static const struct yaml_table requests_table = TABLE(requests_keys);

static const struct yaml_key resources_keys[] = {
  { "requests", yaml_parse_mapping,     &requests_table, 0, false, NULL },
  { "limits",   yaml_parse_any_mapping, NULL,            0, false, NULL },
};
static const struct yaml_table resources_table = TABLE(resources_keys);

static const struct yaml_key storage_keys[] = {
  { "volumeMode",       yaml_parse_choice,  NULL, AT(target.volume_mode), false,
    &volume_mode_choice },
  { "resources",        yaml_parse_mapping, &resources_table, 0, false, NULL },
  { "accessModes",      yaml_parse_ignore,  NULL, 0, false, NULL },
  { "storageClassName", yaml_parse_ignore,  NULL, 0, false, NULL },
};
static const struct yaml_table storage_table = TABLE(storage_keys);

static const struct yaml_key spec_keys[] = {
  { "source",        parse_source,      &source_table,  0, true,  NULL },
  { "storage",       parse_storage,     &storage_table, 0, false, NULL },
  { "pvc",           parse_storage,     &storage_table, 0, false, NULL },
  { "preallocation", yaml_parse_bool,   NULL, AT(target.preallocation), false, NULL },
  { "contentType",   yaml_parse_choice, NULL, AT(content_type), false, &content_type_choice },
};
static const struct yaml_table spec_table = TABLE(spec_keys);

static const struct yaml_key target_keys[] = {
  { "path",        yaml_parse_string, NULL, AT(target.path),         false, NULL },
  { "blockDevice", yaml_parse_string, NULL, AT(target.block_device), false, NULL },
};
static const struct yaml_table target_table = TABLE(target_keys);

static const struct yaml_key mounts_keys[] = {
  { "certs",        yaml_parse_string, NULL, AT(mounts.certs),         false, NULL },
  { "secret",       yaml_parse_string, NULL, AT(mounts.secret),        false, NULL },
  { "extraHeaders", yaml_parse_string, NULL, AT(mounts.extra_headers), false, NULL },
  { "proxyCerts",   yaml_parse_string, NULL, AT(mounts.proxy_certs),   false, NULL },
};
static const struct yaml_table mounts_table = TABLE(mounts_keys);

static const struct yaml_key signature_keys[] = {
  { "url",         parse_url,          NULL, AT(signature.url),         false, NULL },
  { "path",        parse_mounted_file, NULL, AT(signature.path),        false, NULL },
  { "format",      yaml_parse_choice,  NULL, AT(signature.format),      false,
    &signature_format_choice },
  { "publicKey",   parse_mounted_file, NULL, AT(signature.public_key),  false, NULL },
  { "certificate", parse_mounted_file, NULL, AT(signature.certificate), false, NULL },
  { "caBundle",    parse_mounted_file, NULL, AT(signature.ca_bundle),   false, NULL },
  { "hashMethod",  yaml_parse_choice,  NULL, AT(signature.hash_method), false,
    &hash_method_choice },
  { "keyType",     yaml_parse_choice,  NULL, AT(signature.key_type),    false,
    &key_type_choice },
};
static const struct yaml_table signature_table = TABLE(signature_keys);

#define CS(member) AT(checksum_signature.detached.member)
static const struct yaml_key checksum_signature_keys[] = {
  { "url",         parse_url,          NULL, CS(url),         false, NULL },
  { "path",        parse_mounted_file, NULL, CS(path),        false, NULL },
  { "keyring",     parse_mounted_file, NULL, AT(checksum_signature.keyring), false, NULL },
  { "format",      yaml_parse_choice,  NULL, CS(format),      false, &signature_format_choice },
  { "publicKey",   parse_mounted_file, NULL, CS(public_key),  false, NULL },
  { "certificate", parse_mounted_file, NULL, CS(certificate), false, NULL },
  { "caBundle",    parse_mounted_file, NULL, CS(ca_bundle),   false, NULL },
  { "hashMethod",  yaml_parse_choice,  NULL, CS(hash_method), false, &hash_method_choice },
  { "keyType",     yaml_parse_choice,  NULL, CS(key_type),    false, &key_type_choice },
};
#undef CS
static const struct yaml_table checksum_signature_table = TABLE(checksum_signature_keys);

#define BS(member) AT(block_hash_signature.detached.member)
static const struct yaml_key block_hash_signature_keys[] = {
  { "url",         parse_url,          NULL, BS(url),         false, NULL },
  { "path",        parse_mounted_file, NULL, BS(path),        false, NULL },
  { "keyring",     parse_mounted_file, NULL, AT(block_hash_signature.keyring), false, NULL },
  { "format",      yaml_parse_choice,  NULL, BS(format),      false, &signature_format_choice },
  { "publicKey",   parse_mounted_file, NULL, BS(public_key),  false, NULL },
  { "certificate", parse_mounted_file, NULL, BS(certificate), false, NULL },
  { "caBundle",    parse_mounted_file, NULL, BS(ca_bundle),   false, NULL },
  { "hashMethod",  yaml_parse_choice,  NULL, BS(hash_method), false, &hash_method_choice },
  { "keyType",     yaml_parse_choice,  NULL, BS(key_type),    false, &key_type_choice },
};
#undef BS
static const struct yaml_table block_hash_signature_table = TABLE(block_hash_signature_keys);

static const struct yaml_key vimport_keys[] = {
  { "expectedBlockHash",      parse_expected_block_hash, NULL, 0, false, NULL },
  { "blockSize",              parse_block_size,          NULL, 0, false, NULL },
  { "blockHashLength",        parse_block_hash_length,   NULL, 0, false, NULL },
  { "target",                 yaml_parse_mapping,        &target_table, 0, false, NULL },
  { "terminationMessagePath", yaml_parse_string,         NULL, AT(termination_message_path),
    false, NULL },
  { "memoryLimit",            yaml_parse_quantity,       NULL, AT(memory_limit), false, NULL },
  { "windowSize",             yaml_parse_quantity,       NULL, AT(window_size), false, NULL },
  { "scratchPath",            yaml_parse_string,         NULL, AT(scratch_path), false, NULL },
  { "mounts",                 yaml_parse_mapping,        &mounts_table, 0, false, NULL },
  { "retries",                parse_retries,             NULL, 0, false, NULL },
  { "stallTimeoutSeconds",    parse_stall_timeout,       NULL, 0, false, NULL },
  { "allowedFormats",         parse_allowed_formats,     NULL, 0, false, NULL },
  { "requireKnownContent",    yaml_parse_bool,           NULL, AT(require_known_content), false,
    NULL },
  { "checksumURL",            parse_checksum_url,        NULL, AT(checksum_url), false, NULL },
  { "checksumName",           parse_checksum_name,       NULL, AT(checksum_name), false, NULL },
  { "signature",              parse_signature,           &signature_table, 0, false, NULL },
  { "checksumSignature",      parse_checksum_signature,  &checksum_signature_table, 0, false,
    NULL },
  { "blockHashURL",           parse_block_hash_url,      NULL, AT(block_hash_url), false, NULL },
  { "blockHashSignature",     parse_block_hash_signature, &block_hash_signature_table, 0,
    false, NULL },
};
static const struct yaml_table vimport_table = TABLE(vimport_keys);

static const struct yaml_key top_keys[] = {
  { "apiVersion", yaml_parse_choice,  NULL,            0, true,  &api_version_choice },
  { "kind",       yaml_parse_choice,  NULL,            0, true,  &kind_choice },
  { "metadata",   yaml_parse_mapping, &metadata_table, 0, false, NULL },
  { "spec",       yaml_parse_mapping, &spec_table,     0, true,  NULL },
  { "vimport",    yaml_parse_mapping, &vimport_table,  0, false, NULL },
};
const struct yaml_table yaml_top_table = TABLE(top_keys);

_Static_assert(sizeof vimport_keys / sizeof vimport_keys[0] <= YAML_TABLE_MAX_KEYS,
               "yaml_walk_mapping's seen[] is too small for the largest table");
_Static_assert(sizeof source_keys / sizeof source_keys[0] <= YAML_TABLE_MAX_KEYS,
               "yaml_walk_mapping's seen[] is too small for the largest table");
