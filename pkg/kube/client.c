/* kube: the in-cluster configuration and the two requests (kube.h). */
#include "kube/kube.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bodybuf.h"
#include "core/cleanup.h"

#define TOKEN_MAX 16384

struct kube_client {
  char server[300];  /* https://host:port */
  char ca_file[4096];
  char *auth_header; /* "Authorization: Bearer <token>": a secret, wiped on free */
};

static const char *env_lookup(char *const envp[], const char *name)
{
  size_t len = strlen(name);
  for (; envp != NULL && *envp != NULL; envp++)
    if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=' && (*envp)[len + 1] != '\0')
      return *envp + len + 1;
  return NULL;
}

#define BEARER "Authorization: Bearer "

/* The header line carrying the token file's content without surrounding whitespace;
 * printable ASCII only, so it cannot smuggle another header line. */
static int read_token_header(const char *path, char **out, struct verr *err)
{
  CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return verr_sys(err, VERR_IO, errno, "cannot read the service account token %s", path);
  char *buf = calloc(1, TOKEN_MAX + 1);
  if (buf == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  ssize_t n = read(fd, buf, TOKEN_MAX + 1);
  size_t start = 0, end = n > 0 ? (size_t)n : 0;
  while (start < end && (buf[start] == ' ' || buf[start] == '\n' || buf[start] == '\r'))
    start++;
  while (end > start && (buf[end - 1] == ' ' || buf[end - 1] == '\n' || buf[end - 1] == '\r'))
    end--;
  bool printable = end > start && n <= TOKEN_MAX;
  for (size_t i = start; printable && i < end; i++)
    printable = buf[i] > 0x20 && buf[i] < 0x7f;
  if (!printable) {
    explicit_bzero(buf, TOKEN_MAX + 1);
    free(buf);
    return verr_set(err, VERR_IO, "the service account token %s is empty, longer than %u bytes "
                    "or not printable ASCII", path, TOKEN_MAX);
  }
  char *header = malloc(strlen(BEARER) + end - start + 1);
  if (header != NULL) {
    memcpy(header, BEARER, strlen(BEARER));
    memcpy(header + strlen(BEARER), buf + start, end - start);
    header[strlen(BEARER) + end - start] = '\0';
  }
  explicit_bzero(buf, TOKEN_MAX + 1);
  free(buf);
  if (header == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  *out = header;
  return 0;
}

int kube_in_cluster(char *const envp[], struct kube_client **out, struct verr *err)
{
  const char *host = env_lookup(envp, "KUBERNETES_SERVICE_HOST");
  const char *port = env_lookup(envp, "KUBERNETES_SERVICE_PORT");
  if (host == NULL || port == NULL)
    return verr_set(err, VERR_USAGE, "unable to load in-cluster configuration, "
                    "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined (the "
                    "kubelet sets them in every pod)");
  const char *dir = env_lookup(envp, "VIMPORT_SERVICEACCOUNT_DIR");
  if (dir == NULL)
    dir = KUBE_SERVICEACCOUNT_DIR;
  struct kube_client *k = calloc(1, sizeof *k);
  if (k == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  bool v6 = strchr(host, ':') != NULL;
  snprintf(k->server, sizeof k->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
  snprintf(k->ca_file, sizeof k->ca_file, "%s/ca.crt", dir);
  char token_path[4096];
  snprintf(token_path, sizeof token_path, "%s/token", dir);
  struct stat st;
  if (stat(k->ca_file, &st) < 0)
    verr_sys(err, VERR_IO, errno, "cannot read the API server's CA %s", k->ca_file);
  else
    read_token_header(token_path, &k->auth_header, err);
  if (k->auth_header == NULL) {
    kube_free(k);
    return -1;
  }
  *out = k;
  return 0;
}

void kube_free(struct kube_client *k)
{
  if (k == NULL)
    return;
  if (k->auth_header != NULL) {
    explicit_bzero(k->auth_header, strlen(k->auth_header));
    free(k->auth_header);
  }
  free(k);
}

const char *kube_server(const struct kube_client *k)
{
  return k->server;
}

/* The API's own words from a Status answer, or "". */
static void status_message(const struct body_buf *b, char *out, size_t size)
{
  struct json_value *doc = NULL;
  out[0] = '\0';
  if (b->data != NULL && json_parse(b->data, b->len, NULL, &doc, NULL) == 0) {
    const char *m = json_str(json_get(doc, "message"));
    if (m != NULL)
      snprintf(out, size, ": %s", m);
  }
  json_free(doc);
}

/* One request; the answer's body in *b (the caller frees b->data). */
static int request(struct kube_client *k, const char *method, const char *path,
                   const char *patch, struct body_buf *b, struct verr *err)
{
  char url[2048];
  snprintf(url, sizeof url, "%s%s", k->server, path);
  CURL *h = curl_easy_init();
  struct curl_slist *headers = NULL;
  headers = curl_slist_append(headers, "Accept: application/json");
  if (patch != NULL)
    headers = curl_slist_append(headers, "Content-Type: " KUBE_JSON_PATCH);
  headers = curl_slist_append(headers, k->auth_header);
  if (h == NULL || headers == NULL) {
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return verr_set(err, VERR_NOMEM, "out of memory");
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_CAINFO, k->ca_file);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* CDI's poller: no proxy for the API */
  curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)KUBE_TIMEOUT_SECONDS);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_buf_append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
  if (patch != NULL)
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, patch);
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers); /* holds the token: libcurl copies nothing we must wipe */
  curl_easy_cleanup(h);
  if (rc != CURLE_OK)
    return verr_set(err, VERR_SOURCE, "%s %s: %s%s", method, url,
                    b->too_big ? "the answer is larger than 4 MiB" : curl_easy_strerror(rc),
                    rc == CURLE_PEER_FAILED_VERIFICATION ? " (the server's certificate is not "
                    "signed by the service account's ca.crt)" : "");
  if (status < 200 || status > 299) {
    char why[600];
    status_message(b, why, sizeof why);
    return verr_set(err, VERR_SOURCE, "%s %s: HTTP %ld%s", method, url, status, why);
  }
  return 0;
}

int kube_get(struct kube_client *k, const char *path, struct json_value **doc, struct verr *err)
{
  struct body_buf b = { .max = KUBE_MAX_RESPONSE };
  int rc = request(k, "GET", path, NULL, &b, err);
  if (rc == 0 && json_parse(body_buf_text(&b), b.len, NULL, doc, err) < 0)
    rc = verr_prefix(err, "GET %s%s: the answer is not JSON", k->server, path);
  free(b.data);
  return rc;
}

int kube_patch(struct kube_client *k, const char *path, const char *patch, struct verr *err)
{
  struct body_buf b = { .max = KUBE_MAX_RESPONSE };
  int rc = request(k, "PATCH", path, patch, &b, err);
  free(b.data);
  return rc;
}
