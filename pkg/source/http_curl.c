/* vimport source, the http kind: libcurl. The options of a handle, one request and
 * its callbacks, and what a failed request means (retry or give up, and what to do).
 *
 * Stall detection is ours rather than CURLOPT_LOW_SPEED_*: the body callback blocks
 * while the ring is full (a slow pipeline), and libcurl's speed check would take that
 * for a slow server. The progress callback measures time since the last body byte
 * *received*, with the time spent waiting for the reader excluded.
 */
#include "source/http.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double since_s(const struct timespec *t)
{
  return now_s() - ((double)t->tv_sec + (double)t->tv_nsec / 1e9);
}

void http_effective_url(struct http_attempt *a, char *out, size_t out_size)
{
  char *url = NULL;
  curl_easy_getinfo(a->h, CURLINFO_EFFECTIVE_URL, &url);
  verr_redact_url(url != NULL ? url : a->src->cfg.url, out, out_size);
}

int http_verdict(struct http_attempt *a, enum attempt_outcome v)
{
  a->verdict = v;
  a->has_verdict = 1;
  return -1;
}

/* ---- libcurl callbacks ------------------------------------------------------- */

static size_t http_on_header(char *line, size_t size, size_t nmemb, void *opaque)
{
  struct http_attempt *a = opaque;
  source_http_parse_line(&a->resp, line, size * nmemb);
  return size * nmemb;
}

static int http_status_is_redirect(int status)
{
  return status >= 300 && status < 400;
}

/* Whether a refused response's body is kept for the kind to explain (S3's XML error). */
static int http_wants_error_body(const struct http_attempt *a)
{
  const struct http_hooks *hk = a->src->cfg.hooks;
  return hk != NULL && hk->explain != NULL && a->resp.status >= 300 &&
         (hk->no_redirects || !http_status_is_redirect(a->resp.status));
}

/* Keep the head of a refused response's body; the verdict waits for its end. */
static size_t http_collect_error(struct http_attempt *a, const char *buf, size_t len)
{
  a->collecting = 1;
  size_t room = sizeof a->error_body - a->error_len;
  size_t n = len < room ? len : room;
  memcpy(a->error_body + a->error_len, buf, n);
  a->error_len += n;
  return len;
}

static size_t http_on_body(char *buf, size_t size, size_t nmemb, void *opaque)
{
  struct http_attempt *a = opaque;
  size_t len = size * nmemb;
  if (!a->checked && http_wants_error_body(a))
    return http_collect_error(a, buf, len);
  /* the body of a redirect libcurl follows is not the object */
  if (http_status_is_redirect(a->resp.status))
    return len;
  if (!a->checked) {
    a->checked = 1;
    if (a->ops->check(a) < 0)
      return 0;
  }
  if (a->resp.content_length >= 0 && a->body_bytes + len > (uint64_t)a->resp.content_length) {
    char url[2048];
    http_effective_url(a, url, sizeof url);
    verr_set(&a->err, VERR_SOURCE,
             "%s sent more bytes than its Content-Length (%lld): the server or a proxy "
             "is broken; the import must restart once it is fixed",
             url, (long long)a->resp.content_length);
    http_verdict(a, ATTEMPT_FATAL);
    return 0;
  }
  if (a->ops->deliver(a, buf, len) < 0)
    return 0;
  a->body_bytes += len;
  return len;
}

static int http_on_progress(void *opaque, curl_off_t dltotal, curl_off_t dlnow,
                            curl_off_t ultotal, curl_off_t ulnow)
{
  struct http_attempt *a = opaque;
  (void)dltotal, (void)ultotal, (void)ulnow;
  if (ring_cancelled(&a->src->ring))
    return 1;
  if (dlnow != a->last_dlnow) {
    a->last_dlnow = dlnow;
    clock_gettime(CLOCK_MONOTONIC, &a->last_byte);
    return 0;
  }
  if (since_s(&a->last_byte) >= a->src->cfg.stall_timeout_s) {
    a->stalled = 1;
    return 1;
  }
  return 0;
}

/* ---- one request -------------------------------------------------------------- */

int http_setup_handle(struct http_source *src, CURL *h, struct verr *err)
{
  const struct http_config *c = &src->cfg;
  CURLcode rc = CURLE_OK;
#define SET(opt, val) \
  if (rc == CURLE_OK) \
  rc = curl_easy_setopt(h, opt, val)
  SET(CURLOPT_URL, c->url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, c->hooks != NULL && c->hooks->no_redirects ? 0L : 1L);
  SET(CURLOPT_MAXREDIRS, (long)c->max_redirects);
  SET(CURLOPT_NOSIGNAL, 1L); /* we run on our own thread */
  SET(CURLOPT_BUFFERSIZE, (long)SOURCE_DEFAULT_CURL_BUFFER);
  SET(CURLOPT_CONNECTTIMEOUT, (long)c->connect_timeout_s);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_USERAGENT, "vimport");
  SET(CURLOPT_NOPROGRESS, 0L);
  SET(CURLOPT_XFERINFOFUNCTION, http_on_progress);
  SET(CURLOPT_HEADERFUNCTION, http_on_header);
  SET(CURLOPT_WRITEFUNCTION, http_on_body);
  if (c->user != NULL) {
    SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    SET(CURLOPT_USERNAME, c->user);
    SET(CURLOPT_PASSWORD, c->password != NULL ? c->password : "");
  }
  if (c->insecure) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (c->ca_blob != NULL) {
    struct curl_blob blob = { c->ca_blob, c->ca_blob_len, CURL_BLOB_NOCOPY };
    SET(CURLOPT_CAINFO_BLOB, &blob);
  }
#undef SET
  /* proxies: nothing here touches CURLOPT_PROXY/NOPROXY, so libcurl reads http_proxy,
   * https_proxy and no_proxy from the environment */
  if (rc != CURLE_OK)
    return verr_set(err, VERR_INTERNAL, "libcurl refused an option: %s; this libcurl is "
                    "too old or built without http/https/TLS support",
                    curl_easy_strerror(rc));
  return 0;
}

/* curl_slist_append that frees the whole list on failure, so a caller can chain calls
 * and check *oom once. */
static struct curl_slist *slist_append_all_or_nothing(struct curl_slist *list, const char *line,
                                                      int *oom)
{
  if (*oom)
    return NULL;
  struct curl_slist *grown = curl_slist_append(list, line);
  if (grown == NULL) {
    curl_slist_free_all(list);
    *oom = 1;
  }
  return grown;
}

/* The request headers: the extra headers, the resume condition and the kind's own
 * (a signature, a bearer token); NULL when there are none. *failed, with `err`, when
 * out of memory or the kind could not make its own (a token it could not refresh). */
static struct curl_slist *http_request_headers(const struct http_source *src, int ranged,
                                               const char *condition, int *failed,
                                               struct verr *err)
{
  struct curl_slist *headers = NULL;
  const struct http_hooks *hk = src->cfg.hooks;
  *failed = 0;
  for (const struct curl_slist *l = src->cfg.headers; l != NULL; l = l->next)
    headers = slist_append_all_or_nothing(headers, l->data, failed);
  if (condition[0] != '\0')
    headers = slist_append_all_or_nothing(headers, condition, failed);
  if (*failed)
    return verr_set(err, VERR_NOMEM, "out of memory for the request headers"), NULL;
  if (hk != NULL && hk->request_headers != NULL &&
      hk->request_headers(src->cfg.hooks_arg, ranged, &headers, err) < 0) {
    curl_slist_free_all(headers);
    *failed = 1;
    return NULL;
  }
  return headers;
}

/* The header that makes a ranged request refer to the object the import began with:
 * If-Range (a changed object comes whole, refused by the checks), or for a kind that
 * asks, If-Match / If-Unmodified-Since (a changed object is refused with 412). */
static void http_condition(struct http_source *src, char *out, size_t size)
{
  int strict = src->cfg.hooks != NULL && src->cfg.hooks->if_match;
  pthread_mutex_lock(&src->ring.lock);
  const char *v = src->validator;
  if (v[0] != '\0' && !strict)
    snprintf(out, size, "If-Range: %s", v);
  else if (v[0] != '\0')
    snprintf(out, size, "%s: %s", v[0] == '"' ? "If-Match" : "If-Unmodified-Since", v);
  pthread_mutex_unlock(&src->ring.lock);
}

/* Run one request for bytes [a->first, a->last] on a->h. */
CURLcode http_perform(struct http_attempt *a)
{
  struct http_source *src = a->src;
  char range[64] = "";
  char condition[SOURCE_INFO_STR + 32] = "";
  if (a->ranged) {
    if (a->last >= 0)
      snprintf(range, sizeof range, "%llu-%lld", (unsigned long long)a->first,
               (long long)a->last);
    else
      snprintf(range, sizeof range, "%llu-", (unsigned long long)a->first);
    http_condition(src, condition, sizeof condition);
  }
  int failed;
  struct curl_slist *headers = http_request_headers(src, a->ranged, condition, &failed,
                                                    &a->err);
  if (failed) /* the verdict is set: http_classify returns it */
    return http_verdict(a, ATTEMPT_FATAL), CURLE_ABORTED_BY_CALLBACK;
  curl_easy_setopt(a->h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(a->h, CURLOPT_RANGE, a->ranged ? range : NULL);
  curl_easy_setopt(a->h, CURLOPT_HEADERDATA, a);
  curl_easy_setopt(a->h, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(a->h, CURLOPT_XFERINFODATA, a);
  curl_easy_setopt(a->h, CURLOPT_ERRORBUFFER, a->curl_error);
  source_http_response_reset(&a->resp);
  clock_gettime(CLOCK_MONOTONIC, &a->last_byte);
  CURLcode rc = curl_easy_perform(a->h);
  curl_easy_setopt(a->h, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(a->h, CURLOPT_ERRORBUFFER, NULL);
  for (struct curl_slist *l = headers; l != NULL; l = l->next)
    explicit_bzero(l->data, strlen(l->data)); /* tokens and secret header values */
  curl_slist_free_all(headers);
  return rc;
}

/* Refuse a non-2xx status with a message that says what to do about it. */
int http_check_status(struct http_attempt *a)
{
  int s = a->resp.status;
  char url[2048];
  if (s >= 200 && s < 300)
    return 0;
  http_effective_url(a, url, sizeof url);
  if (s >= 500 || s == 408 || s == 429) {
    verr_set(&a->err, VERR_SOURCE, "HTTP %d from %s: the server is failing or busy; "
             "retry later", s, url);
    return http_verdict(a, ATTEMPT_RETRY);
  }
  const char *what;
  switch (s) {
  case 401:
    /* a kind that signs its requests (gcs) sent a token the server did not take */
    what = a->src->cfg.hooks != NULL && a->src->cfg.hooks->bearer
               ? "the server refused the access token: check that the key's account may "
                 "read this object and that the key is current"
               : "the server wants credentials: check the username and password (or token "
                 "header) given for the source";
    break;
  case 403:
    what = "the server refused access: check the credentials and that they may read "
           "this object";
    break;
  case 404:
    /* a resume's 404: the object (for gcs, the generation the URL pins) is gone */
    what = a->ranged ? "the object is gone since the import started (deleted or replaced "
                       "by a new version); the import must restart"
                     : "no object at this URL: check the URL";
    break;
  case 412:
    what = "the object changed since the import started (it no longer matches the ETag "
           "or date the import began with); the import must restart";
    break;
  case 416:
    what = "the object is shorter than the bytes already received, so it changed "
           "since the import started; the import must restart";
    break;
  default:
    what = http_status_is_redirect(s) ? "a redirect without a usable Location: check the URL"
                                      : "the server refused the request: check the URL and "
                                        "the request headers";
  }
  verr_set(&a->err, VERR_SOURCE, "HTTP %d from %s: %s", s, url, what);
  return http_verdict(a, ATTEMPT_FATAL);
}

static int curl_error_is_transient(CURLcode rc)
{
  switch (rc) {
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_PARTIAL_FILE:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_HTTP3:
  case CURLE_QUIC_CONNECT_ERROR:
    return 1;
  default:
    return 0;
  }
}

static const char *curl_error_remedy(CURLcode rc)
{
  switch (rc) {
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
    return "the server's TLS certificate is not trusted: give the CA that signed it "
           "(a ConfigMap of PEM files, ca_dir), or for tests only skip verification";
  case CURLE_TOO_MANY_REDIRECTS:
    return "too many redirects (a redirect loop?): check the URL";
  case CURLE_UNSUPPORTED_PROTOCOL:
    return "only http and https are supported, also as redirect targets";
  case CURLE_URL_MALFORMAT:
    return "the URL is malformed: check it";
  case CURLE_LOGIN_DENIED:
    return "the credentials were refused: check them";
  default:
    return "check the URL and the network, then retry";
  }
}

/* Decide what an attempt that ended with `rc` means. */
enum attempt_outcome http_classify(struct http_attempt *a, CURLcode rc)
{
  char url[2048];
  if (a->has_verdict)
    return a->verdict;
  if ((rc == CURLE_OK || a->collecting) && !a->checked) {
    a->checked = 1; /* an empty or kept body: the body callback did not check */
    if (a->ops->check(a) < 0) {
      const struct http_hooks *hk = a->src->cfg.hooks;
      if (hk != NULL && hk->explain != NULL && a->resp.status >= 300)
        hk->explain(a->src->cfg.hooks_arg, a->resp.status, a->error_body, a->error_len,
                    &a->err);
      return a->verdict;
    }
  }
  http_effective_url(a, url, sizeof url);
  if (rc == CURLE_OK)
    return ATTEMPT_DONE;
  if (a->stalled) {
    verr_set(&a->err, VERR_SOURCE, "no data from %s for %u s (stalled transfer)", url,
             a->src->cfg.stall_timeout_s);
    return ATTEMPT_RETRY;
  }
  if (ring_cancelled(&a->src->ring))
    return ATTEMPT_CANCELLED;
  const char *detail = a->curl_error[0] != '\0' ? a->curl_error : curl_easy_strerror(rc);
  if (curl_error_is_transient(rc)) {
    verr_set(&a->err, VERR_SOURCE, "transfer from %s failed: %s", url, detail);
    return ATTEMPT_RETRY;
  }
  if (rc == CURLE_TOO_MANY_REDIRECTS)
    verr_set(&a->err, VERR_SOURCE, "%s redirected more than %u times: %s", url,
             a->src->cfg.max_redirects, curl_error_remedy(rc));
  else
    verr_set(&a->err, VERR_SOURCE, "transfer from %s failed: %s; %s", url, detail,
             curl_error_remedy(rc));
  return ATTEMPT_FATAL;
}

void http_config_free(struct http_config *c)
{
  free(c->url);
  free(c->user);
  if (c->password != NULL)
    explicit_bzero(c->password, strlen(c->password));
  free(c->password);
  curl_slist_free_all(c->headers);
  free(c->ca_blob);
  if (c->hooks != NULL && c->hooks->free != NULL)
    c->hooks->free(c->hooks_arg);
  c->hooks = NULL;
}

static int header_line_is_safe(const char *h)
{
  const char *colon = strchr(h, ':');
  return colon != NULL && colon != h && strpbrk(h, "\r\n") == NULL;
}

int http_config_init(struct http_config *c, const struct source_opts *o,
                            struct verr *err)
{
#define DUP(dst, s) \
  if ((s) != NULL && ((dst) = strdup(s)) == NULL) \
  return verr_sys(err, VERR_NOMEM, ENOMEM, "copying the source options")
  DUP(c->url, o->url);
  DUP(c->user, o->basic_user);
  DUP(c->password, o->basic_password);
#undef DUP
  verr_redact_url(o->url, c->redacted, sizeof c->redacted);
  for (size_t i = 0; i < o->n_extra_headers; i++) {
    if (!header_line_is_safe(o->extra_headers[i]))
      return verr_set(err, VERR_USAGE, "extra header %zu is not one \"Name: value\" line; "
                      "fix the header list", i + 1);
    struct curl_slist *l = curl_slist_append(c->headers, o->extra_headers[i]);
    if (l == NULL)
      return verr_sys(err, VERR_NOMEM, ENOMEM, "copying the extra headers");
    c->headers = l;
  }
  c->insecure = o->insecure_skip_verify;
  c->retries = o->retries == SOURCE_RETRIES_NONE ? 0
               : o->retries                     ? o->retries
                                                : SOURCE_DEFAULT_RETRIES;
  c->retry_delay_ms = o->retry_delay_ms ? o->retry_delay_ms : SOURCE_DEFAULT_RETRY_DELAY_MS;
  c->stall_timeout_s = o->stall_timeout_s ? o->stall_timeout_s : SOURCE_DEFAULT_STALL_TIMEOUT_S;
  c->connect_timeout_s =
      o->connect_timeout_s ? o->connect_timeout_s : SOURCE_DEFAULT_CONNECT_TIMEOUT_S;
  c->max_redirects = o->max_redirects ? o->max_redirects : SOURCE_DEFAULT_MAX_REDIRECTS;
  if (c->insecure) {
    vlog_warn("source", "TLS verification is OFF for %s: anyone on the path can serve "
              "other bytes; use only for tests", c->redacted);
    return 0;
  }
  /* CDI builds its own pool only when one of these is given (createHTTPClient) */
  struct stat st;
  const char *proxy = o->proxy_ca_dir != NULL && stat(o->proxy_ca_dir, &st) == 0 &&
                      S_ISDIR(st.st_mode) ? o->proxy_ca_dir : NULL;
  if (o->ca_dir == NULL && o->ca_file == NULL && proxy == NULL)
    return 0;
  char *default_bundle = NULL;
  CURL *probe = curl_easy_init();
  if (probe != NULL)
    curl_easy_getinfo(probe, CURLINFO_CAINFO, &default_bundle);
  int rc = source_tls_load_cas(default_bundle, proxy, o->ca_dir, o->ca_file, &c->ca_blob,
                               &c->ca_blob_len, err);
  curl_easy_cleanup(probe);
  return rc;
}

