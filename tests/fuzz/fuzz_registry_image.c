/* Fuzz what a registry sends about an image (pkg/registry image.c): the bytes as a
 * manifest or index (the first byte picks the Content-Type it came with) and as an image
 * config; the platform pick over a parsed index. A parse fails with a message or gives
 * descriptors whose digests are sha256:<64 hex> and whose layers have a known
 * compression; labels are NUL-terminated; never a crash, leak or hang. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "registry/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = {
  NULL,
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
  "text/html",
};

static void check_manifest(const struct registry_manifest *m)
{
  if (m->is_index) {
    for (size_t i = 0; i < m->n_manifests; i++)
      assert(registry_digest_valid(m->manifests[i].digest));
    size_t which;
    struct verr err = { 0 };
    if (registry_pick_platform(m, "amd64", &which, &err) == 0)
      assert(which < m->n_manifests && strcmp(m->manifests[which].architecture, "amd64") == 0);
    return;
  }
  assert(registry_digest_valid(m->config.digest));
  assert(m->n_layers <= REGISTRY_MAX_LAYERS);
  for (size_t i = 0; i < m->n_layers; i++) {
    assert(registry_digest_valid(m->layers[i].digest));
    assert(m->layers[i].compression <= REGISTRY_LAYER_ZSTD);
    assert(m->layers[i].size >= -1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  const char *ct = content_types[data[0] % (sizeof content_types / sizeof content_types[0])];
  struct registry_manifest m;
  struct verr err = { 0 };
  if (registry_parse_manifest(data + 1, size - 1, ct, &m, &err) == 0) {
    check_manifest(&m);
    registry_manifest_free(&m);
  } else {
    assert(err.message[0] != '\0' && m.layers == NULL && m.manifests == NULL);
  }
  struct registry_config c;
  if (registry_parse_config(data + 1, size - 1, &c, &err) == 0) {
    assert(c.n_labels <= REGISTRY_MAX_LABELS);
    for (size_t i = 0; i < c.n_labels; i++) {
      assert(memchr(c.labels[i].key, '\0', sizeof c.labels[i].key) != NULL);
      assert(strstr(c.labels[i].key, "kubevirt.io/") != NULL);
    }
    (void)registry_check_architecture(&c, "amd64", &err);
  }
  return 0;
}
