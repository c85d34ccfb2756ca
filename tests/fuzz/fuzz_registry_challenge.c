/* Fuzz the registry's authentication inputs (pkg/registry challenge.c): the bytes as a
 * WWW-Authenticate value and as a token endpoint's answer, and the bytes after the first
 * as an image reference. A Bearer challenge that parses has an http(s) realm; a token
 * is printable ASCII (it goes into a header); a reference that parses has a host, a
 * repository and a tag or a valid digest; never a crash, leak or read out of bounds. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct registry_challenge ch;
  struct verr err = { 0 };
  if (registry_parse_challenge((const char *)data, size, &ch, &err) == 0) {
    assert(ch.scheme == REGISTRY_AUTH_BASIC || ch.scheme == REGISTRY_AUTH_BEARER);
    if (ch.scheme == REGISTRY_AUTH_BEARER)
      assert(strncmp(ch.realm, "http", 4) == 0);
  }
  char token[256];
  if (registry_parse_token(data, size, token, sizeof token, &err) == 0)
    for (const char *p = token; *p; p++)
      assert(*p > 0x20 && *p < 0x7f);
  char *url = malloc(size + 10);
  if (url == NULL)
    return 0;
  memcpy(url, "docker://", 9);
  memcpy(url + 9, data, size);
  url[size + 9] = '\0';
  struct registry_ref ref;
  if (registry_parse_ref(url, &ref, &err) == 0) {
    assert(ref.host[0] != '\0' && ref.repo[0] != '\0');
    assert(ref.tag[0] != '\0' || registry_digest_valid(ref.digest));
  }
  free(url);
  return 0;
}
