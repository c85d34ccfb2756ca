/* nodepull: the labels of a node pull, from the server's /info (nodepull.h). */
#include "nodepull/nodepull.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "core/bodybuf.h"
#include "core/log.h"
#include "json/json.h"
#include "registry/registry.h"

/* "<scheme>://<host>/info" of the endpoint, as CDI builds it from the URL's parts. */
static int info_url(const char *endpoint, char *out, size_t size, struct verr *err)
{
  const char *sep = strstr(endpoint, "://");
  if (sep == NULL)
    return verr_set(err, VERR_USAGE, "the endpoint has no scheme");
  size_t host_end = (size_t)(sep + 3 - endpoint) + strcspn(sep + 3, "/?#");
  if ((size_t)snprintf(out, size, "%.*s/info", (int)host_end, endpoint) >= size)
    return verr_set(err, VERR_USAGE, "the endpoint is too long");
  return 0;
}

static int fetch_info(const char *url, struct body_buf *b, struct verr *err)
{
  CURL *h = curl_easy_init();
  if (h == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* the server is the pod's own localhost */
  curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)NODEPULL_INFO_TIMEOUT_SECONDS);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_buf_append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  if (rc != CURLE_OK)
    return verr_set(err, VERR_SOURCE, "failed request containerimage-server info %s: %s", url,
                    curl_easy_strerror(rc));
  if (status != 200)
    return verr_set(err, VERR_SOURCE, "failed request containerimage-server info: expected "
                    "status code 200, got %ld", status);
  return 0;
}

/* CDI's envsToLabels over ServerInfo.Env. */
static int env_labels(const struct json_value *env, struct nodepull_label *labels, size_t *n)
{
  *n = 0;
  for (size_t i = 0; i < json_count(env); i++) {
    const char *e = json_str(json_at(env, i));
    const char *eq = e != NULL ? strchr(e, '=') : NULL;
    char name[512];
    if (eq == NULL || (size_t)(eq - e) >= sizeof name)
      continue;
    snprintf(name, sizeof name, "%.*s", (int)(eq - e), e);
    if (strstr(name, "KUBEVIRT_IO_") == NULL)
      continue;
    struct nodepull_label l;
    if (registry_env_label(name, l.key, sizeof l.key) < 0 || strlen(eq + 1) >= sizeof l.value) {
      vlog_warn("nodepull", "label of %.200s skipped: longer than the termination message allows",
                name);
      continue;
    }
    snprintf(l.value, sizeof l.value, "%s", eq + 1);
    size_t j = 0;
    while (j < *n && strcmp(labels[j].key, l.key) != 0)
      j++; /* a later variable of the same label wins, as in a Go map */
    if (j == NODEPULL_MAX_LABELS) {
      vlog_warn("nodepull", "label %.200s skipped: more than %d labels", l.key, NODEPULL_MAX_LABELS);
      continue;
    }
    labels[j] = l;
    if (j == *n)
      (*n)++;
  }
  return 0;
}

int nodepull_info_labels(const char *endpoint, struct nodepull_label *labels, size_t *n,
                         struct verr *err)
{
  char url[2048];
  struct body_buf b = { .max = NODEPULL_INFO_MAX };
  struct json_value *doc = NULL;
  *n = 0;
  int rc = info_url(endpoint, url, sizeof url, err);
  if (rc == 0)
    rc = fetch_info(url, &b, err);
  if (rc == 0 && json_parse(body_buf_text(&b), b.len, NULL, &doc, err) < 0)
    rc = verr_prefix(err, "failed to unmarshal body of containerimage-server info request");
  const struct json_value *env = json_get(doc, "env");
  if (rc == 0 && env != NULL && !json_is(env, JSON_ARRAY))
    rc = verr_set(err, VERR_FORMAT, "containerimage-server info: \"env\" is not an array");
  if (rc == 0)
    env_labels(env, labels, n);
  json_free(doc);
  free(b.data);
  return rc;
}
