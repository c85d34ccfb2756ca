/* vimport registry: image references (see registry.h). The grammar is the one of
 * github.com/distribution/reference, simplified where it only loosens nothing. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "registry.h"

#define DOCKER_HUB "docker.io"
#define DOCKER_HUB_API "registry-1.docker.io"

bool registry_digest_valid(const char *s)
{
  if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64)
    return false;
  for (const char *p = s + 7; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return false;
  return true;
}

const char *registry_ref_reference(const struct registry_ref *ref)
{
  return ref->digest[0] ? ref->digest : ref->tag;
}

static int bad(struct verr *err, const char *url, const char *why)
{
  return verr_set(err, VERR_USAGE, "invalid image reference \"%.200s\": %s; write "
                  "docker://HOST[:PORT]/REPOSITORY[:TAG|@sha256:DIGEST]", url, why);
}

/* A host: DNS labels or an IP literal, an optional :port. */
static bool host_valid(const char *h, size_t len)
{
  if (len == 0)
    return false;
  size_t i = 0;
  if (h[0] == '[') { /* [IPv6] */
    while (i < len && h[i] != ']')
      if (!(isxdigit((unsigned char)h[i]) || h[i] == ':' || h[i] == '[' || h[i] == '.'))
        return false;
      else
        i++;
    if (i == len)
      return false;
    i++;
  } else {
    for (; i < len && h[i] != ':'; i++)
      if (!(isalnum((unsigned char)h[i]) || h[i] == '-' || h[i] == '.'))
        return false;
    if (i == 0)
      return false;
  }
  if (i == len)
    return true;
  if (h[i] != ':' || i + 1 == len || len - i - 1 > 5)
    return false;
  for (i++; i < len; i++)
    if (!isdigit((unsigned char)h[i]))
      return false;
  return true;
}

/* Path components: [a-z0-9]+ joined by '.', '_', '__' or runs of '-', split by '/'. */
static bool repo_valid(const char *r)
{
  size_t len = strlen(r);
  if (len == 0)
    return false;
  bool after_sep = true;
  for (size_t i = 0; i < len; i++) {
    char c = r[i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      after_sep = false;
      continue;
    }
    if (after_sep)
      return false; /* a component starts with a separator, or is empty */
    if (c == '/') {
      after_sep = true;
    } else if (c == '.' || c == '-' || c == '_') {
      if (i + 1 < len && r[i + 1] == '_' && c == '_')
        i++; /* "__" */
      else if (c == '-')
        while (i + 1 < len && r[i + 1] == '-')
          i++;
      after_sep = true;
    } else {
      return false;
    }
  }
  return !after_sep;
}

static bool tag_valid(const char *t)
{
  size_t len = strlen(t);
  if (len == 0 || len > 128 || t[0] == '.' || t[0] == '-')
    return false;
  for (size_t i = 0; i < len; i++)
    if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
      return false;
  return true;
}

static bool looks_like_host(const char *s, size_t len)
{
  return memchr(s, '.', len) != NULL || memchr(s, ':', len) != NULL ||
         (len == 9 && memcmp(s, "localhost", 9) == 0);
}

/* Split "name[:tag][@digest]" into out->repo, tag, digest. */
static int split_name(const char *url, char *name, struct registry_ref *out, struct verr *err)
{
  char *at = strchr(name, '@');
  if (at != NULL) {
    *at = '\0';
    if (strncmp(at + 1, "sha256:", 7) != 0)
      return bad(err, url, "only sha256 digests can be checked");
    if (!registry_digest_valid(at + 1))
      return bad(err, url, "the digest is not sha256: and 64 lowercase hex digits");
    snprintf(out->digest, sizeof out->digest, "%s", at + 1);
  }
  char *slash = strrchr(name, '/');
  char *colon = strrchr(slash != NULL ? slash : name, ':');
  if (colon != NULL) {
    *colon = '\0';
    if (!tag_valid(colon + 1))
      return bad(err, url, "the tag must be 1-128 letters, digits, '_', '.' or '-', not "
                 "starting with '.' or '-'");
    snprintf(out->tag, sizeof out->tag, "%s", colon + 1);
  } else if (at == NULL) {
    snprintf(out->tag, sizeof out->tag, "latest");
  }
  if (!repo_valid(name))
    return bad(err, url, "the repository must be lowercase letters, digits and separators "
               "('.', '_', '-', '/') between them");
  if (strlen(name) >= sizeof out->repo)
    return bad(err, url, "the repository name is too long");
  memcpy(out->repo, name, strlen(name) + 1); /* the length was checked above */
  return 0;
}

int registry_parse_ref(const char *url, struct registry_ref *out, struct verr *err)
{
  *out = (struct registry_ref){ 0 };
  size_t slen = strlen(REGISTRY_SCHEME);
  if (strncmp(url, REGISTRY_SCHEME, slen) != 0)
    return bad(err, url, "it must start with docker:// (oci-archive: is not supported)");
  const char *rest = url + slen;
  if (strlen(rest) >= 1024)
    return bad(err, url, "it is longer than 1024 characters");
  char name[1024];
  size_t first = strcspn(rest, "/");
  if (rest[first] == '/' && looks_like_host(rest, first)) {
    if (!host_valid(rest, first) || first >= sizeof out->host)
      return bad(err, url, "the registry host is not HOST or HOST:PORT");
    snprintf(out->host, sizeof out->host, "%.*s", (int)first, rest);
    snprintf(name, sizeof name, "%s", rest + first + 1);
  } else {
    snprintf(out->host, sizeof out->host, DOCKER_HUB_API);
    snprintf(name, sizeof name, "%s%s", strchr(rest, '/') == NULL ? "library/" : "", rest);
  }
  if (strcmp(out->host, DOCKER_HUB) == 0) {
    snprintf(out->host, sizeof out->host, DOCKER_HUB_API);
    if (strchr(name, '/') == NULL) {
      char full[1024];
      snprintf(full, sizeof full, "library/%.1000s", name);
      snprintf(name, sizeof name, "%s", full);
    }
  }
  return split_name(url, name, out, err);
}
