/* vimport registry: the client, over libcurl (see registry.h). Documents (the ping,
 * tokens, manifests, configs) are small and read whole, bounded; layer blobs are not
 * read here: registry_blob_request() says how, and the registry source streams them. */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/bodybuf.h"
#include "core/log.h"
#include "registry.h"

#define ACCEPT_MANIFESTS                                                                  \
  "Accept: application/vnd.oci.image.index.v1+json, "                                     \
  "application/vnd.docker.distribution.manifest.list.v2+json, "                           \
  "application/vnd.oci.image.manifest.v1+json, "                                          \
  "application/vnd.docker.distribution.manifest.v2+json"

struct registry_client {
  struct registry_ref ref;
  char scheme[8];          /* "https", or "http" for an insecure registry without TLS */
  char display[600];
  char *user, *password;   /* owned, wiped */
  char *ca_blob;           /* owned copy */
  size_t ca_blob_len;
  bool insecure;
  char architecture[32];
  bool architecture_given;
  unsigned connect_timeout_s, timeout_s, stall_timeout_s;
  unsigned retries, retry_delay_ms;
  const volatile sig_atomic_t *stop;
  enum registry_auth_scheme auth;
  char token[4000];        /* the bearer token (secret) */
  /* Connections and TLS sessions kept between the documents' requests: the ping, the
   * manifests and the config go over one connection, not one handshake each (with the
   * system CA bundle parsed again for each). Locked, though one thread asks today. */
  CURLSH *share;
  pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
  bool share_locks_made;
};

/* One response, read whole. */
struct response {
  long status;
  struct body_buf doc; /* the document, at most REGISTRY_MAX_DOCUMENT bytes */
  char content_type[256];
  char challenge[2048];
  const volatile sig_atomic_t *stop;
  CURLcode rc; /* of the transfer, when get_once() failed */
};

/* `line` starts with header `name` (case-insensitive): the value, trimmed, into out. */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t size)
{
  size_t nlen = strlen(name);
  if (len <= nlen || strncasecmp(line, name, nlen) != 0)
    return;
  const char *v = line + nlen;
  size_t vlen = len - nlen;
  while (vlen > 0 && (*v == ' ' || *v == '\t'))
    v++, vlen--;
  while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
    vlen--;
  if (out[0] == '\0')
    snprintf(out, size, "%.*s", (int)vlen, v);
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *opaque)
{
  struct response *r = opaque;
  size_t n = size * nmemb;
  if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response (after a redirect) */
    r->content_type[0] = r->challenge[0] = '\0';
    return n;
  }
  header_value(line, n, "Content-Type:", r->content_type, sizeof r->content_type);
  header_value(line, n, "WWW-Authenticate:", r->challenge, sizeof r->challenge);
  return n;
}

static int on_progress(void *opaque, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
  (void)a, (void)b, (void)c, (void)d;
  const struct response *r = opaque;
  return r->stop != NULL && *r->stop ? 1 : 0;
}

static void response_free(struct response *r)
{
  free(r->doc.data);
  r->doc.data = NULL;
}

static void redact(const char *url, char *out, size_t size)
{
  verr_redact_url(url, out, size);
}

static int setup(const struct registry_client *c, CURL *h, const char *url,
                 struct curl_slist *headers, bool with_auth, struct response *r)
{
  CURLcode rc = CURLE_OK;
#define SET(opt, val) \
  if (rc == CURLE_OK) \
  rc = curl_easy_setopt(h, opt, val)
  SET(CURLOPT_URL, url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, 1L);
  SET(CURLOPT_MAXREDIRS, 10L);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_CONNECTTIMEOUT, (long)c->connect_timeout_s);
  SET(CURLOPT_TIMEOUT, (long)c->timeout_s);
  SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
  SET(CURLOPT_LOW_SPEED_TIME, (long)c->stall_timeout_s);
  SET(CURLOPT_USERAGENT, "vimport");
  SET(CURLOPT_WRITEFUNCTION, body_buf_append);
  SET(CURLOPT_WRITEDATA, &r->doc);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, r);
  SET(CURLOPT_NOPROGRESS, 0L);
  SET(CURLOPT_XFERINFOFUNCTION, on_progress);
  SET(CURLOPT_XFERINFODATA, r);
  if (c->share != NULL)
    SET(CURLOPT_SHARE, c->share);
  if (headers != NULL)
    SET(CURLOPT_HTTPHEADER, headers);
  if (with_auth && c->user != NULL) {
    SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    SET(CURLOPT_USERNAME, c->user);
    SET(CURLOPT_PASSWORD, c->password);
  }
  if (c->insecure) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (c->ca_blob != NULL) {
    struct curl_blob blob = { c->ca_blob, c->ca_blob_len, CURL_BLOB_COPY };
    SET(CURLOPT_CAINFO_BLOB, &blob);
  }
#undef SET
  return rc == CURLE_OK ? 0 : -1;
}

/* What to check, by what failed: a TLS hint on a reset or a stall sends the user the
 * wrong way. */
static const char *request_hint(CURLcode rc)
{
  switch (rc) {
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CACERT_BADFILE:
    return "check the registry's TLS certificate and the CA given (IMPORTER_CERT_DIR or "
           "certConfigMap), or list the registry in CDIConfig insecureRegistries";
  case CURLE_OPERATION_TIMEDOUT:
    return "the registry sent nothing for too long or answered too slowly: check its load, "
           "or raise stallTimeoutSeconds";
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
    return "check the registry's address and that it is up";
  default:
    return "check that the registry is up and reachable, then retry";
  }
}

/* One GET of `url`. `bearer`: send the client's token; `basic`: its credentials. A
 * transport failure is VERR_SOURCE naming the URL (r->rc says which); any status is
 * returned in r->status. */
static int get_once(const struct registry_client *c, const char *url, const char *accept,
                    bool bearer, bool basic, struct response *r, struct verr *err)
{
  *r = (struct response){ .stop = c->stop, .doc.max = REGISTRY_MAX_DOCUMENT };
  char redacted[1024];
  redact(url, redacted, sizeof redacted);
  CURL *h = curl_easy_init();
  struct curl_slist *headers = NULL;
  char auth[sizeof c->token + 32];
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
  bool oom = h == NULL;
  if (!oom && accept != NULL && (headers = curl_slist_append(headers, accept)) == NULL)
    oom = true;
  struct curl_slist *grown;
  if (!oom && bearer && (grown = curl_slist_append(headers, auth)) == NULL)
    oom = true;
  else if (!oom && bearer)
    headers = grown;
  explicit_bzero(auth, sizeof auth);
  if (oom || setup(c, h, url, headers, basic, r) < 0) {
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return verr_set(err, VERR_NOMEM, "cannot set up a request to %s", redacted);
  }
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
  for (struct curl_slist *l = headers; l != NULL; l = l->next)
    explicit_bzero(l->data, strlen(l->data));
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  r->rc = rc;
  if (rc == CURLE_OK)
    return 0;
  response_free(r);
  if (c->stop != NULL && *c->stop)
    return verr_set(err, VERR_CANCELLED, "stopped while reading %s", redacted);
  if (r->doc.too_big)
    return verr_set(err, VERR_FORMAT, "%s is larger than %u bytes, more than any manifest or "
                    "config should be; the registry is broken or hostile", redacted,
                    REGISTRY_MAX_DOCUMENT);
  return verr_set(err, VERR_SOURCE, "cannot read %s: %s; %s", redacted, curl_easy_strerror(rc),
                  request_hint(rc));
}

/* What a later attempt may get past: the network, a stall, a registry under load. */
static bool transient_status(long status)
{
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

static bool transient_transfer(CURLcode rc)
{
  switch (rc) {
  case CURLE_COULDNT_CONNECT:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return true;
  default:
    return false;
  }
}

static bool stopped(const struct registry_client *c)
{
  return c->stop != NULL && __atomic_load_n(c->stop, __ATOMIC_RELAXED);
}

/* Sleep `ms`, looking at the stop flag every 100 ms. Returns -1 once it is set. */
static int backoff(const struct registry_client *c, unsigned ms)
{
  for (unsigned slept = 0; slept < ms && !stopped(c); slept += 100) {
    struct timespec step = { 0, (long)(ms - slept < 100 ? ms - slept : 100) * 1000000L };
    nanosleep(&step, NULL);
  }
  return stopped(c) ? -1 : 0;
}

/* get_once(), again after a transient failure, as the blobs are retried (a registry
 * behind a load balancer answers 503 now and then). The last failure is reported, or
 * the last transient status returned as any status is. */
static int get(const struct registry_client *c, const char *url, const char *accept,
               bool bearer, bool basic, struct response *r, struct verr *err)
{
  unsigned delay = c->retry_delay_ms;
  for (unsigned attempt = 0;; attempt++) {
    int ret = get_once(c, url, accept, bearer, basic, r, err);
    bool transient = ret < 0 ? err->code == VERR_SOURCE && transient_transfer(r->rc)
                             : transient_status(r->status);
    if (!transient || attempt >= c->retries)
      return ret < 0 && transient && attempt > 0
                 ? verr_prefix(err, "giving up after %u failed attempts", attempt + 1)
                 : ret;
    char redacted[1024];
    redact(url, redacted, sizeof redacted);
    vlog_warn("registry", "%s: %s; retrying in %u ms", redacted,
              ret < 0 ? err->message : "a transient HTTP status", delay);
    if (ret == 0)
      response_free(r);
    if (backoff(c, delay) < 0)
      return verr_set(err, VERR_CANCELLED, "stopped while waiting to retry %s", redacted);
    delay = delay > 15000 ? 30000 : delay * 2;
  }
}

static void url_of(const struct registry_client *c, const char *kind, const char *ref,
                   char *out, size_t size)
{
  snprintf(out, size, "%s://%s/v2/%s/%s/%s", c->scheme, c->ref.host, c->ref.repo, kind, ref);
}

/* ---- authentication ---------------------------------------------------------------------- */

static int url_escape(const char *s, char *out, size_t size)
{
  char *e = curl_easy_escape(NULL, s, 0);
  if (e == NULL)
    return -1;
  snprintf(out, size, "%s", e);
  curl_free(e);
  return 0;
}

static int fetch_token(struct registry_client *c, const struct registry_challenge *ch,
                       struct verr *err)
{
  char service[768], scope[1536], url[4096], own_scope[600];
  snprintf(own_scope, sizeof own_scope, "repository:%s:pull", c->ref.repo);
  if (url_escape(ch->service, service, sizeof service) < 0 ||
      url_escape(ch->scope[0] ? ch->scope : own_scope, scope, sizeof scope) < 0)
    return verr_set(err, VERR_NOMEM, "out of memory");
  snprintf(url, sizeof url, "%s%sservice=%s&scope=%s", ch->realm,
           strchr(ch->realm, '?') != NULL ? "&" : "?", service, scope);
  struct response r;
  if (get(c, url, NULL, false, c->user != NULL, &r, err) < 0)
    return verr_prefix(err, "the registry's token endpoint");
  int ret = 0;
  char redacted[1024];
  redact(ch->realm, redacted, sizeof redacted);
  if (r.status == 401 || r.status == 403)
    ret = verr_set(err, VERR_SOURCE, "the token endpoint %s refused %s (HTTP %ld); check the "
                   "registry user and password (IMPORTER_ACCESS_KEY_ID/IMPORTER_SECRET_KEY, "
                   "secretRef)", redacted, c->user != NULL ? "the credentials" : "anonymous "
                   "access", r.status);
  else if (r.status != 200)
    ret = verr_set(err, VERR_SOURCE, "the token endpoint %s answered HTTP %ld", redacted,
                   r.status);
  else
    ret = registry_parse_token(body_buf_text(&r.doc), r.doc.len, c->token, sizeof c->token, err);
  if (r.doc.data != NULL)
    explicit_bzero(r.doc.data, r.doc.len);
  response_free(&r);
  return ret;
}

/* Answer a 401's challenge: remember the scheme, fetch a token for Bearer. */
static int authenticate(struct registry_client *c, const struct response *r, struct verr *err)
{
  struct registry_challenge ch;
  if (registry_parse_challenge(r->challenge, strlen(r->challenge), &ch, err) < 0)
    return verr_prefix(err, "%s", c->display);
  if (ch.scheme == REGISTRY_AUTH_BASIC && c->user == NULL)
    return verr_set(err, VERR_SOURCE, "%s needs a user and password (HTTP 401); give them "
                    "with IMPORTER_ACCESS_KEY_ID/IMPORTER_SECRET_KEY or secretRef", c->display);
  c->auth = ch.scheme;
  return ch.scheme == REGISTRY_AUTH_BEARER ? fetch_token(c, &ch, err) : 0;
}

/* GET with the client's authentication, answering one 401 challenge. */
static int get_authed(struct registry_client *c, const char *url, const char *accept,
                      struct response *r, struct verr *err)
{
  for (int round = 0;; round++) {
    if (get(c, url, accept, c->auth == REGISTRY_AUTH_BEARER, c->auth == REGISTRY_AUTH_BASIC,
            r, err) < 0)
      return -1;
    if (r->status != 401)
      return 0;
    if (round > 0 || r->challenge[0] == '\0') {
      response_free(r);
      return verr_set(err, VERR_SOURCE, "%s refused %s (HTTP 401); check the registry user "
                      "and password (IMPORTER_ACCESS_KEY_ID/IMPORTER_SECRET_KEY, secretRef)",
                      c->display, c->user != NULL ? "the credentials" : "anonymous access");
    }
    int a = authenticate(c, r, err);
    response_free(r);
    if (a < 0)
      return -1;
  }
}

/* The /v2/ ping: https first; an insecure registry may speak plain http. */
static int ping(struct registry_client *c, struct verr *err)
{
  char url[600];
  struct response r;
  snprintf(url, sizeof url, "%s://%s/v2/", c->scheme, c->ref.host);
  if (get_authed(c, url, NULL, &r, err) < 0) {
    if (!c->insecure || err->code != VERR_SOURCE || c->auth != REGISTRY_AUTH_NONE)
      return -1;
    vlog_warn("registry", "%s: https failed (%s); trying plain http, as the registry is "
              "insecure", c->display, err->message);
    snprintf(c->scheme, sizeof c->scheme, "http");
    snprintf(url, sizeof url, "%s://%s/v2/", c->scheme, c->ref.host);
    if (get_authed(c, url, NULL, &r, err) < 0)
      return -1;
  }
  long status = r.status;
  response_free(&r);
  if (status == 200)
    return 0;
  if (transient_status(status) && c->retries > 0)
    return verr_set(err, VERR_SOURCE, "giving up after %u failed attempts: %s/v2/ answered "
                    "HTTP %ld; the registry is overloaded or failing, retry later",
                    c->retries + 1, c->display, status);
  return verr_set(err, VERR_SOURCE, "%s/v2/ answered HTTP %ld: it is not an OCI registry, or "
                  "it is down", c->display, status);
}

/* ---- documents ------------------------------------------------------------------------------ */

static void sha256_digest(const void *buf, size_t len, char out[REGISTRY_DIGEST_MAX])
{
  unsigned char md[32];
  unsigned n = 0;
  EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL);
  int w = snprintf(out, REGISTRY_DIGEST_MAX, "sha256:");
  for (unsigned i = 0; i < n; i++)
    w += snprintf(out + w, (size_t)(REGISTRY_DIGEST_MAX - w), "%02x", md[i]);
}

static int status_error(const struct registry_client *c, const char *what, const char *ref,
                        long status, struct verr *err)
{
  if (status == 404)
    return verr_set(err, VERR_SOURCE, "%s has no %s %s (HTTP 404); check the repository, "
                    "tag or digest", c->display, what, ref);
  if (status == 403)
    return verr_set(err, VERR_SOURCE, "%s denied access to the %s %s (HTTP 403); check the "
                    "credentials' permissions", c->display, what, ref);
  if (transient_status(status) && c->retries > 0)
    return verr_set(err, VERR_SOURCE, "giving up after %u failed attempts: %s answered HTTP "
                    "%ld for the %s %s; the registry is overloaded or failing, retry later",
                    c->retries + 1, c->display, status, what, ref);
  return verr_set(err, VERR_SOURCE, "%s answered HTTP %ld for the %s %s", c->display, status,
                  what, ref);
}

/* A manifest by tag or digest; its digest in `digest`; `want`: the digest it must have. */
static int get_manifest(struct registry_client *c, const char *ref, const char *want,
                        struct registry_manifest *m, char *digest, struct verr *err)
{
  char url[2048];
  struct response r;
  url_of(c, "manifests", ref, url, sizeof url);
  if (get_authed(c, url, ACCEPT_MANIFESTS, &r, err) < 0)
    return -1;
  if (r.status != 200) {
    response_free(&r);
    return status_error(c, "manifest", ref, r.status, err);
  }
  sha256_digest(body_buf_text(&r.doc), r.doc.len, digest);
  int ret = 0;
  if (want != NULL && strcmp(digest, want) != 0)
    ret = verr_set(err, VERR_CHECKSUM, "checksum mismatch: the manifest of %s is %s, the "
                   "reference asks for %s", c->display, digest, want);
  else
    ret = registry_parse_manifest(body_buf_text(&r.doc), r.doc.len, r.content_type, m, err);
  response_free(&r);
  return ret;
}

static int get_config(struct registry_client *c, const struct registry_descriptor *d,
                      struct registry_config *cfg, struct verr *err)
{
  char url[2048], digest[REGISTRY_DIGEST_MAX];
  struct response r;
  url_of(c, "blobs", d->digest, url, sizeof url);
  if (get_authed(c, url, NULL, &r, err) < 0)
    return -1;
  if (r.status != 200) {
    response_free(&r);
    return status_error(c, "image config", d->digest, r.status, err);
  }
  sha256_digest(body_buf_text(&r.doc), r.doc.len, digest);
  int ret;
  if (strcmp(digest, d->digest) != 0)
    ret = verr_set(err, VERR_CHECKSUM, "checksum mismatch: the image config of %s is %s, its "
                   "manifest says %s", c->display, digest, d->digest);
  else
    ret = registry_parse_config(body_buf_text(&r.doc), r.doc.len, cfg, err);
  response_free(&r);
  return ret;
}

/* An index: the platform's manifest, by digest, checked against the index entry. */
static int follow_index(struct registry_client *c, struct registry_image *img, struct verr *err)
{
  size_t which;
  if (registry_pick_platform(&img->manifest, c->architecture, &which, err) < 0)
    return -1;
  char entry[REGISTRY_DIGEST_MAX];
  snprintf(entry, sizeof entry, "%s", img->manifest.manifests[which].digest);
  snprintf(img->index_digest, sizeof img->index_digest, "%s", img->manifest_digest);
  registry_manifest_free(&img->manifest);
  vlog_info("registry", "%s: platform linux/%s is manifest %s", c->display, c->architecture,
            entry);
  if (get_manifest(c, entry, entry, &img->manifest, img->manifest_digest, err) < 0)
    return -1;
  if (img->manifest.is_index)
    return verr_set(err, VERR_FORMAT, "%s: the index entry for %s is itself an index, which "
                    "vimport does not follow", c->display, c->architecture);
  return 0;
}

int registry_resolve(struct registry_client *c, struct registry_image *img, struct verr *err)
{
  *img = (struct registry_image){ 0 };
  if (ping(c, err) < 0 ||
      get_manifest(c, registry_ref_reference(&c->ref), c->ref.digest[0] ? c->ref.digest : NULL,
                   &img->manifest, img->manifest_digest, err) < 0 ||
      (img->manifest.is_index && follow_index(c, img, err) < 0) ||
      get_config(c, &img->manifest.config, &img->config, err) < 0)
    return registry_image_free(img), -1;
  if (c->architecture_given &&
      registry_check_architecture(&img->config, c->architecture, err) < 0)
    return registry_image_free(img), -1;
  if (img->config.bootc) {
    registry_image_free(img);
    /* CDI's ErrBootcImageDetected, word for word */
    return verr_set(err, VERR_FORMAT, "bootc image detected: this image contains an "
                    "ostree-based bootable OS (containers.bootc=1 or ostree.bootable=1) and "
                    "cannot be imported as a regular container disk; bootc-to-disk conversion "
                    "is not yet implemented");
  }
  return 0;
}

void registry_image_free(struct registry_image *img)
{
  registry_manifest_free(&img->manifest);
}

/* ---- the client ------------------------------------------------------------------------------ */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *opaque)
{
  (void)h, (void)access;
  pthread_mutex_lock(&((struct registry_client *)opaque)->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *opaque)
{
  (void)h;
  pthread_mutex_unlock(&((struct registry_client *)opaque)->share_locks[data]);
}

/* The connection and TLS session cache of c's requests; false when libcurl cannot make
 * one (out of memory): the caller fails the open. */
static bool share_new(struct registry_client *c)
{
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&c->share_locks[i], NULL);
  c->share_locks_made = true;
  c->share = curl_share_init();
  return c->share != NULL &&
         curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) == CURLSHE_OK &&
         curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) == CURLSHE_OK &&
         curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) == CURLSHE_OK &&
         curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) == CURLSHE_OK &&
         curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) == CURLSHE_OK;
}

static void share_free(struct registry_client *c)
{
  if (c->share != NULL)
    curl_share_cleanup(c->share);
  c->share = NULL;
  if (c->share_locks_made)
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
      pthread_mutex_destroy(&c->share_locks[i]);
  c->share_locks_made = false;
}

static char *dup_secret(const char *s, bool *oom)
{
  char *d = s != NULL ? strdup(s) : NULL;
  if (s != NULL && d == NULL)
    *oom = true;
  return d;
}

int registry_open(const struct registry_opts *o, struct registry_client **out, struct verr *err)
{
  struct registry_client *c = calloc(1, sizeof *c);
  if (c == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  if (registry_parse_ref(o->url, &c->ref, err) < 0)
    return free(c), -1;
  snprintf(c->scheme, sizeof c->scheme, "https");
  snprintf(c->display, sizeof c->display, "docker://%s/%s%s%s", c->ref.host, c->ref.repo,
           c->ref.digest[0] ? "@" : ":", registry_ref_reference(&c->ref));
  bool oom = false;
  bool creds = o->user != NULL && *o->user && o->password != NULL && *o->password;
  c->user = creds ? dup_secret(o->user, &oom) : NULL;
  c->password = creds ? dup_secret(o->password, &oom) : NULL;
  if (o->ca_blob != NULL && (c->ca_blob = malloc(o->ca_blob_len)) == NULL)
    oom = true;
  else if (o->ca_blob != NULL)
    memcpy(c->ca_blob, o->ca_blob, c->ca_blob_len = o->ca_blob_len);
  if (oom || !share_new(c))
    return registry_close(c), verr_set(err, VERR_NOMEM, "out of memory");
  c->insecure = o->insecure;
  c->architecture_given = o->architecture != NULL && *o->architecture;
  snprintf(c->architecture, sizeof c->architecture, "%s",
           c->architecture_given ? o->architecture : registry_machine_architecture());
  c->connect_timeout_s = o->connect_timeout_s ? o->connect_timeout_s : 30;
  c->timeout_s = o->timeout_s ? o->timeout_s : 120;
  c->stall_timeout_s = o->stall_timeout_s ? o->stall_timeout_s : 60;
  c->retries = o->retries == REGISTRY_RETRIES_NONE ? 0 : o->retries ? o->retries : 5;
  c->retry_delay_ms = o->retry_delay_ms ? o->retry_delay_ms : 1000;
  c->stop = o->stop;
  *out = c;
  return 0;
}

static void free_secret(char *s)
{
  if (s != NULL)
    explicit_bzero(s, strlen(s));
  free(s);
}

void registry_close(struct registry_client *c)
{
  if (c == NULL)
    return;
  share_free(c);
  free_secret(c->user);
  free_secret(c->password);
  free(c->ca_blob);
  explicit_bzero(c->token, sizeof c->token);
  free(c);
}

const char *registry_display(const struct registry_client *c)
{
  return c->display;
}

int registry_blob_request(const struct registry_client *c, const char *digest,
                          struct registry_blob_request *out, struct verr *err)
{
  *out = (struct registry_blob_request){ 0 };
  if (!registry_digest_valid(digest))
    return verr_set(err, VERR_FORMAT, "blob digest \"%.80s\" is not sha256:<hex>", digest);
  url_of(c, "blobs", digest, out->url, sizeof out->url);
  if (c->auth == REGISTRY_AUTH_BEARER)
    snprintf(out->header, sizeof out->header, "Authorization: Bearer %s", c->token);
  if (c->auth == REGISTRY_AUTH_BASIC) {
    out->user = c->user;
    out->password = c->password;
  }
  return 0;
}
