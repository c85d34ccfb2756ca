/* vimport registry: manifests, indexes and image configs (see registry.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "json/json.h"
#include "registry.h"

#define MT_DOCKER_V2 "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"

static const struct {
  const char *media_type;
  enum registry_layer_compression compression;
} layer_types[] = {
  { "application/vnd.oci.image.layer.v1.tar", REGISTRY_LAYER_TAR },
  { "application/vnd.oci.image.layer.v1.tar+gzip", REGISTRY_LAYER_GZIP },
  { "application/vnd.oci.image.layer.v1.tar+zstd", REGISTRY_LAYER_ZSTD },
  { "application/vnd.oci.image.layer.nondistributable.v1.tar", REGISTRY_LAYER_TAR },
  { "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", REGISTRY_LAYER_GZIP },
  { "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", REGISTRY_LAYER_ZSTD },
  { "application/vnd.docker.image.rootfs.diff.tar", REGISTRY_LAYER_TAR },
  { "application/vnd.docker.image.rootfs.diff.tar.gzip", REGISTRY_LAYER_GZIP },
  { "application/vnd.docker.image.rootfs.diff.tar.zstd", REGISTRY_LAYER_ZSTD },
  { "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", REGISTRY_LAYER_GZIP },
};

/* A string member copied into `out`; refused when missing (if required) or too long. */
static int copy_str(const struct json_value *obj, const char *key, bool required, char *out,
                    size_t size, const char *what, struct verr *err)
{
  const struct json_value *v = json_get(obj, key);
  out[0] = '\0';
  if (v == NULL && !required)
    return 0;
  const char *s = json_str(v);
  if (s == NULL)
    return verr_set(err, VERR_FORMAT, "the %s has no string \"%s\"", what, key);
  if (strlen(s) >= size)
    return verr_set(err, VERR_FORMAT, "the %s's \"%s\" is longer than %zu bytes", what, key,
                    size - 1);
  memcpy(out, s, strlen(s) + 1);
  return 0;
}

static int parse_descriptor(const struct json_value *v, const char *what,
                            struct registry_descriptor *d, struct verr *err)
{
  *d = (struct registry_descriptor){ .size = -1 };
  if (!json_is(v, JSON_OBJECT))
    return verr_set(err, VERR_FORMAT, "the manifest's %s is not an object", what);
  if (copy_str(v, "mediaType", false, d->media_type, sizeof d->media_type, what, err) < 0 ||
      copy_str(v, "digest", true, d->digest, sizeof d->digest, what, err) < 0)
    return -1;
  if (!registry_digest_valid(d->digest))
    return verr_set(err, VERR_FORMAT, "the manifest's %s digest \"%.80s\" is not sha256: "
                    "and 64 lowercase hex digits; vimport checks only sha256", what, d->digest);
  const struct json_value *size = json_get(v, "size");
  if (size != NULL && (!json_int64(size, &d->size) || d->size < 0))
    return verr_set(err, VERR_FORMAT, "the manifest's %s size is not a byte count", what);
  const struct json_value *plat = json_get(v, "platform");
  if (plat != NULL &&
      (copy_str(plat, "architecture", false, d->architecture, sizeof d->architecture, what,
                err) < 0 ||
       copy_str(plat, "os", false, d->os, sizeof d->os, what, err) < 0 ||
       copy_str(plat, "variant", false, d->variant, sizeof d->variant, what, err) < 0))
    return -1;
  return 0;
}

static int layer_compression(struct registry_descriptor *d, size_t i, struct verr *err)
{
  for (size_t k = 0; k < sizeof layer_types / sizeof layer_types[0]; k++)
    if (strcmp(d->media_type, layer_types[k].media_type) == 0) {
      d->compression = layer_types[k].compression;
      return 0;
    }
  return verr_set(err, VERR_FORMAT, "layer %zu has media type \"%.100s\", which is not a tar, "
                  "tar+gzip or tar+zstd layer; a containerDisk holds its disk in such layers",
                  i + 1, d->media_type);
}

static int parse_list(const struct json_value *arr, const char *what, size_t max,
                      struct registry_descriptor **out, size_t *n, struct verr *err)
{
  if (!json_is(arr, JSON_ARRAY))
    return verr_set(err, VERR_FORMAT, "the manifest has no \"%s\" array", what);
  size_t count = json_count(arr);
  if (count > max)
    return verr_set(err, VERR_FORMAT, "the manifest lists %zu %s, more than the %zu vimport "
                    "reads", count, what, max);
  *out = calloc(count ? count : 1, sizeof **out);
  if (*out == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  for (*n = 0; *n < count; (*n)++)
    if (parse_descriptor(json_at(arr, *n), what, &(*out)[*n], err) < 0)
      return -1;
  return 0;
}

/* The media type: the body's own, else the response's; an OCI document may carry
 * neither, then its shape says which it is. */
static int media_type(const struct json_value *doc, const char *content_type, char *out,
                      size_t size, struct verr *err)
{
  if (copy_str(doc, "mediaType", false, out, size, "manifest", err) < 0)
    return -1;
  if (out[0] == '\0' && content_type != NULL) {
    size_t n = strcspn(content_type, ";");
    while (n > 0 && content_type[n - 1] == ' ')
      n--;
    snprintf(out, size, "%.*s", (int)n, content_type);
  }
  bool known = strcmp(out, MT_DOCKER_V2) == 0 || strcmp(out, MT_OCI_MANIFEST) == 0 ||
               strcmp(out, MT_DOCKER_LIST) == 0 || strcmp(out, MT_OCI_INDEX) == 0 ||
               strncmp(out, MT_DOCKER_V1, strlen(MT_DOCKER_V1)) == 0;
  if (!known && json_get(doc, "manifests") != NULL)
    snprintf(out, size, "%s", MT_OCI_INDEX);
  else if (!known && json_get(doc, "layers") != NULL)
    snprintf(out, size, "%s", MT_OCI_MANIFEST);
  return 0;
}

static int parse_image_manifest(const struct json_value *doc, struct registry_manifest *m,
                                struct verr *err)
{
  int64_t version;
  if (!json_int64(json_get(doc, "schemaVersion"), &version) || version != 2)
    return verr_set(err, VERR_FORMAT, "the manifest's schemaVersion is not 2");
  if (parse_descriptor(json_get(doc, "config"), "config", &m->config, err) < 0 ||
      parse_list(json_get(doc, "layers"), "layers", REGISTRY_MAX_LAYERS, &m->layers,
                 &m->n_layers, err) < 0)
    return -1;
  for (size_t i = 0; i < m->n_layers; i++)
    if (layer_compression(&m->layers[i], i, err) < 0)
      return -1;
  return 0;
}

int registry_parse_manifest(const void *body, size_t len, const char *content_type,
                            struct registry_manifest *m, struct verr *err)
{
  *m = (struct registry_manifest){ 0 };
  struct json_value *doc;
  struct json_limits lim = { .max_bytes = REGISTRY_MAX_DOCUMENT };
  if (json_parse(body, len, &lim, &doc, err) < 0)
    return verr_prefix(err, "the registry's manifest is unreadable");
  int r = media_type(doc, content_type, m->media_type, sizeof m->media_type, err);
  if (r == 0 && strncmp(m->media_type, MT_DOCKER_V1, strlen(MT_DOCKER_V1)) == 0)
    r = verr_set(err, VERR_FORMAT, "the image has a Docker schema 1 manifest, which vimport "
                 "does not read; push it again with a current podman, skopeo or docker");
  else if (r == 0 && (strcmp(m->media_type, MT_DOCKER_LIST) == 0 ||
                      strcmp(m->media_type, MT_OCI_INDEX) == 0)) {
    m->is_index = true;
    r = parse_list(json_get(doc, "manifests"), "manifests", 1024, &m->manifests,
                   &m->n_manifests, err);
  } else if (r == 0 && (strcmp(m->media_type, MT_DOCKER_V2) == 0 ||
                        strcmp(m->media_type, MT_OCI_MANIFEST) == 0)) {
    r = parse_image_manifest(doc, m, err);
  } else if (r == 0) {
    r = verr_set(err, VERR_FORMAT, "the manifest's media type \"%.100s\" is neither an image "
                 "manifest nor an index", m->media_type);
  }
  json_free(doc);
  if (r < 0)
    registry_manifest_free(m);
  return r;
}

void registry_manifest_free(struct registry_manifest *m)
{
  free(m->layers);
  free(m->manifests);
  m->layers = m->manifests = NULL;
  m->n_layers = m->n_manifests = 0;
}

const char *registry_machine_architecture(void)
{
  static const char *const names[][2] = {
    { "x86_64", "amd64" }, { "aarch64", "arm64" }, { "s390x", "s390x" },
    { "ppc64le", "ppc64le" }, { "riscv64", "riscv64" }, { "i686", "386" },
    { "i386", "386" }, { "armv7l", "arm" }, { "mips64", "mips64" },
  };
  struct utsname u;
  if (uname(&u) == 0)
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
      if (strcmp(u.machine, names[i][0]) == 0)
        return names[i][1];
  return "amd64";
}

int registry_pick_platform(const struct registry_manifest *index, const char *architecture,
                           size_t *which, struct verr *err)
{
  for (size_t i = 0; i < index->n_manifests; i++) {
    const struct registry_descriptor *d = &index->manifests[i];
    if (strcmp(d->architecture, architecture) == 0 && (d->os[0] == '\0' || strcmp(d->os, "linux") == 0)) {
      *which = i;
      return 0;
    }
  }
  /* containers/image's words (manifest/docker_schema2_list.go, oci_index.go) */
  return verr_set(err, VERR_FORMAT, "no image found in %s for architecture \"%.32s\", variant "
                  "\"\", OS \"linux\"",
                  strcmp(index->media_type, MT_DOCKER_LIST) == 0 ? "manifest list"
                                                                 : "image index",
                  architecture);
}

/* ---- the config ----------------------------------------------------------------------------- */

#define KUBEVIRT_ENV "KUBEVIRT_IO_"
#define KUBEVIRT_LABEL "kubevirt.io/"

static int append(char *out, size_t size, size_t *n, const char *s, size_t len)
{
  if (*n + len >= size)
    return -1;
  memcpy(out + *n, s, len);
  *n += len;
  out[*n] = '\0';
  return 0;
}

/* `len` bytes of `s` with every '_' made `sep`. */
static int append_mapped(char *out, size_t size, size_t *n, const char *s, size_t len, char sep)
{
  for (size_t i = 0; i < len; i++) {
    char c = s[i] == '_' ? sep : s[i];
    if (append(out, size, n, &c, 1) < 0)
      return -1;
  }
  return 0;
}

int registry_env_label(const char *name, char *out, size_t size)
{
  const char *hit = strstr(name, KUBEVIRT_ENV);
  if (hit == NULL || size == 0)
    return -1;
  size_t n = 0;
  out[0] = '\0';
  /* the part before: TrimSuffix "_", split on "_", joined with "." plus a final "." */
  size_t before = (size_t)(hit - name);
  if (before > 0 && name[before - 1] == '_')
    before--;
  /* Go drops the whole prefix when its first element is empty (a leading '_') */
  if (before > 0 && name[0] != '_' && (append_mapped(out, size, &n, name, before, '.') < 0 ||
                     append(out, size, &n, ".", 1) < 0))
    return -1;
  const char *after = hit + strlen(KUBEVIRT_ENV);
  if (append(out, size, &n, KUBEVIRT_LABEL, strlen(KUBEVIRT_LABEL)) < 0 ||
      append_mapped(out, size, &n, after, strlen(after), '-') < 0)
    return -1;
  for (char *p = out; *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
  return 0;
}

/* Set (or replace: a later variable wins, as in CDI's map) one label. */
static int put_label(struct registry_config *cfg, const char *key, const char *value,
                     struct verr *err)
{
  size_t i = 0;
  while (i < cfg->n_labels && strcmp(cfg->labels[i].key, key) != 0)
    i++;
  if (i == REGISTRY_MAX_LABELS)
    return verr_set(err, VERR_FORMAT, "the image config sets more than %u KUBEVIRT_IO_ "
                    "variables, more than the termination message can carry",
                    REGISTRY_MAX_LABELS);
  if (strlen(value) >= sizeof cfg->labels[i].value)
    return verr_set(err, VERR_FORMAT, "the image config's variable for label %.200s has a "
                    "value longer than %zu bytes", key, sizeof cfg->labels[i].value - 1);
  snprintf(cfg->labels[i].key, sizeof cfg->labels[i].key, "%s", key);
  snprintf(cfg->labels[i].value, sizeof cfg->labels[i].value, "%s", value);
  if (i == cfg->n_labels)
    cfg->n_labels++;
  return 0;
}

static int env_labels(const struct json_value *env, struct registry_config *cfg,
                      struct verr *err)
{
  for (size_t i = 0; i < json_count(env); i++) {
    const char *e = json_str(json_at(env, i));
    const char *eq = e != NULL ? strchr(e, '=') : NULL;
    if (eq == NULL)
      continue;
    char name[512];
    if ((size_t)(eq - e) >= sizeof name)
      continue;
    snprintf(name, sizeof name, "%.*s", (int)(eq - e), e);
    if (strstr(name, KUBEVIRT_ENV) == NULL)
      continue;
    char key[256];
    if (registry_env_label(name, key, sizeof key) < 0)
      return verr_set(err, VERR_FORMAT, "the image config's variable %.200s makes a label "
                      "longer than %zu bytes", name, sizeof key - 1);
    if (put_label(cfg, key, eq + 1, err) < 0)
      return -1;
  }
  return 0;
}

static bool label_is_one(const struct json_value *labels, const char *key)
{
  const char *v = json_str(json_get(labels, key));
  return v != NULL && strcmp(v, "1") == 0;
}

int registry_parse_config(const void *body, size_t len, struct registry_config *cfg,
                          struct verr *err)
{
  *cfg = (struct registry_config){ 0 };
  struct json_value *doc;
  struct json_limits lim = { .max_bytes = REGISTRY_MAX_DOCUMENT };
  if (json_parse(body, len, &lim, &doc, err) < 0)
    return verr_prefix(err, "the image config is unreadable");
  int r = 0;
  if (!json_is(doc, JSON_OBJECT))
    r = verr_set(err, VERR_FORMAT, "the image config is not a JSON object");
  if (r == 0)
    r = copy_str(doc, "architecture", false, cfg->architecture, sizeof cfg->architecture,
                 "image config", err);
  if (r == 0)
    r = copy_str(doc, "os", false, cfg->os, sizeof cfg->os, "image config", err);
  const struct json_value *inner = json_get(doc, "config");
  const struct json_value *labels = json_get(inner, "Labels");
  cfg->bootc = label_is_one(labels, "containers.bootc") || label_is_one(labels, "ostree.bootable");
  if (r == 0)
    r = env_labels(json_get(inner, "Env"), cfg, err);
  json_free(doc);
  return r;
}

int registry_check_architecture(const struct registry_config *config, const char *wanted,
                                struct verr *err)
{
  if (strcmp(config->architecture, wanted) == 0)
    return 0;
  /* CDI's words (transport.go copyRegistryImage, validateImagePlatformMatch) */
  return verr_set(err, VERR_FORMAT, "Error validating architecture: manifest image "
                  "architecture: \"%.32s\" doesn't match requested architecture: \"%.32s\"",
                  config->architecture, wanted);
}
