/* vimport source, the gcs kind: an object of Google Cloud Storage (or of an endpoint
 * that serves its JSON API), streamed like http (gcs.h):
 *
 *   location -> bucket, object, endpoint (gs:// is storage.googleapis.com)
 *   key file -> bearer token (gcs_auth.c), or anonymous
 *   GET /storage/v1/b/B/o/O                 -> generation, size, crc32c, md5Hash
 *   GET /storage/v1/b/B/o/O?alt=media&generation=N
 *       through the http kind: ring, zero runs, resume with Range, retries, TLS. The
 *       generation in the URL pins every request (resumes, re-reads) to the object the
 *       import started with: a replaced object answers 404 and the import fails.
 *       The transfer thread feeds each byte once to crc32c and md5 (object_bytes) and,
 *       at the end, compares them and the length with the metadata (object_end), so
 *       the reader never sees the end of an object that does not match.
 *
 * CDI reads the object with Google's client (gcs-datasource.go), unchecked, through
 * scratch for every format but raw; where vimport differs: docs/cdi.md.
 */
#include "source/gcs.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/log.h"
#include "source/http.h"
#include "source/internal.h"

#define META_RING (64u << 10) /* the smallest ring: the metadata is a few hundred bytes */

struct gcs_source {
  struct gcs_location loc;
  struct gcs_object_meta meta;
  struct gcs_auth *auth; /* NULL: anonymous */
  void *http;            /* the http kind's state for the object's bytes */
  char display[1200];    /* the location as given, redacted */
  /* the object check: the transfer thread's until object_end, then (lock) */
  pthread_mutex_t lock;
  uint32_t crc;
  EVP_MD_CTX *md5;
  uint64_t hashed;
  int out_of_order;
  char checked[SOURCE_INFO_STR]; /* (lock) */
};

/* The JSON API's object path segment: every byte but the unreserved ones escaped, so
 * "a/b.img" is one segment (a%2Fb.img), as Google's clients send it. */
static void escape_segment(const char *s, char *out, size_t size)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p && o + 4 < size; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '.' || *p == '_' || *p == '~') {
      out[o++] = (char)*p;
    } else {
      out[o++] = '%';
      out[o++] = hex[*p >> 4];
      out[o++] = hex[*p & 15];
    }
  }
  out[o] = '\0';
}

static void object_url(const struct gcs_source *g, const char *query, char *out, size_t size)
{
  char bucket[800], object[3200];
  escape_segment(g->loc.bucket, bucket, sizeof bucket);
  escape_segment(g->loc.object, object, sizeof object);
  snprintf(out, size, "%s/storage/v1/b/%s/o/%s%s", g->loc.base, bucket, object, query);
}

/* ---- the object check (transfer thread) ----------------------------------------------- */

static void check_bytes(void *ctx, uint64_t offset, const void *buf, size_t len)
{
  struct gcs_source *g = ctx;
  if (offset == 0 && g->hashed != 0) { /* a transfer nothing was read from started over */
    g->crc = 0;
    g->hashed = 0;
    EVP_DigestInit_ex(g->md5, EVP_md5(), NULL);
  }
  if (offset != g->hashed) {
    g->out_of_order = 1; /* cannot happen with the transfer's contract; refuse, never guess */
    return;
  }
  g->crc = crc32c_update(g->crc, buf, len);
  EVP_DigestUpdate(g->md5, buf, len);
  g->hashed += len;
}

static int check_end(void *ctx, uint64_t length, struct verr *err)
{
  struct gcs_source *g = ctx;
  unsigned char md5[16];
  unsigned n = 0;
  EVP_DigestFinal_ex(g->md5, md5, &n);
  const char *what = g->display;
  long long gen = (long long)g->meta.generation;
  if (g->out_of_order || g->hashed != length)
    return verr_set(err, VERR_INTERNAL, "%s: the object's bytes did not arrive in order", what);
  if (length != (uint64_t)g->meta.size)
    return verr_set(err, VERR_CHECKSUM, "checksum mismatch: %s generation %lld: %llu bytes "
                    "read, its metadata says %lld", what, gen, (unsigned long long)length,
                    (long long)g->meta.size);
  if (g->meta.has_crc32c && g->crc != g->meta.crc32c)
    return verr_set(err, VERR_CHECKSUM, "checksum mismatch: %s generation %lld: crc32c of the "
                    "bytes read is %08x, its metadata says %08x (%s): the storage or "
                    "something on the way altered them; retry the import", what, gen, g->crc,
                    g->meta.crc32c, g->meta.crc32c_b64);
  if (g->meta.has_md5 && memcmp(md5, g->meta.md5, sizeof md5) != 0)
    return verr_set(err, VERR_CHECKSUM, "checksum mismatch: %s generation %lld: md5 of the "
                    "bytes read differs from its md5Hash %s: the storage or something on "
                    "the way altered them; retry the import", what, gen, g->meta.md5_b64);
  pthread_mutex_lock(&g->lock);
  snprintf(g->checked, sizeof g->checked, "%.300s generation %lld: %llu bytes%s%s%s%s", what, gen,
           (unsigned long long)length, g->meta.has_crc32c ? ", crc32c " : "",
           g->meta.has_crc32c ? g->meta.crc32c_b64 : "", g->meta.has_md5 ? ", md5Hash " : "",
           g->meta.has_md5 ? g->meta.md5_b64 : "");
  pthread_mutex_unlock(&g->lock);
  if (!g->meta.has_crc32c && !g->meta.has_md5)
    vlog_warn("source", "%s has neither crc32c nor md5Hash: only its length was checked", what);
  return 0;
}

/* ---- opening --------------------------------------------------------------------------- */

/* The http transfer's options for `url`. */
static struct source_opts http_opts(const struct source_opts *o, const char *url)
{
  struct source_opts h = *o;
  h.url = url;
  h.kind = NULL;
  h.gcs_credentials = NULL;
  h.basic_user = h.basic_password = NULL; /* GCS takes a bearer token only */
  h.extra_headers = NULL;
  h.n_extra_headers = 0;
  return h;
}

/* The bearer token on every request (the hooks' arg is the source). */
static int bearer_header(void *arg, int ranged, struct curl_slist **headers, struct verr *err)
{
  struct gcs_source *g = arg;
  (void)ranged;
  if (g->auth == NULL)
    return 0;
  char line[4096];
  int r = gcs_auth_header(g->auth, line, sizeof line, err);
  struct curl_slist *grown = r == 0 ? curl_slist_append(*headers, line) : NULL;
  explicit_bzero(line, sizeof line);
  if (r < 0)
    return -1;
  if (grown == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory for the request headers");
  *headers = grown;
  return 0;
}

static const struct http_hooks metadata_hooks = {
  .request_headers = bearer_header,
  .bearer = 1,
};

/* The object: the token, and each byte to the crc32c and md5 check. */
static void check_bytes(void *ctx, uint64_t offset, const void *buf, size_t len);
static int check_end(void *ctx, uint64_t length, struct verr *err);
static const struct http_hooks object_hooks = {
  .request_headers = bearer_header,
  .object_bytes = check_bytes,
  .object_end = check_end,
  .bearer = 1,
};

static int read_metadata(struct gcs_source *g, const struct source_opts *o, struct verr *err)
{
  char url[8192];
  object_url(g, "", url, sizeof url);
  struct source_opts h = http_opts(o, url);
  h.lend_to_digest = 0;
  h.buffer_size = META_RING;
  void *state;
  if (http_open_hooked(&h, "gcs", &metadata_hooks, g, &state, err) < 0)
    return -1;
  char *doc = malloc(GCS_MAX_DOC);
  size_t len = 0;
  ssize_t n = doc != NULL ? 1 : verr_set(err, VERR_NOMEM, "out of memory");
  while (n > 0 && len < GCS_MAX_DOC)
    if ((n = http_read(state, doc + len, GCS_MAX_DOC - len, err)) > 0)
      len += (size_t)n;
  http_close(state);
  int r = n < 0 ? -1
          : n > 0 ? verr_set(err, VERR_SOURCE, "the object's metadata is larger than %u "
                             "bytes; is the endpoint a GCS JSON API?", GCS_MAX_DOC)
                  : gcs_parse_object_meta(doc, len, &g->meta, err);
  free(doc);
  return r;
}

static int open_object(struct gcs_source *g, const struct source_opts *o, struct verr *err)
{
  char url[8300], query[64];
  snprintf(query, sizeof query, "?alt=media&generation=%lld", (long long)g->meta.generation);
  object_url(g, query, url, sizeof url);
  struct source_opts h = http_opts(o, url);
  return http_open_hooked(&h, "gcs", &object_hooks, g, &g->http, err);
}

static void gcs_close(void *state)
{
  struct gcs_source *g = state;
  if (g->http != NULL)
    http_close(g->http); /* joins the transfer thread: the hooks are done */
  gcs_auth_free(g->auth);
  EVP_MD_CTX_free(g->md5);
  pthread_mutex_destroy(&g->lock);
  free(g);
}

static int open_auth(struct gcs_source *g, const struct source_opts *o, struct verr *err)
{
  if (o->gcs_credentials == NULL) {
    vlog_info("source", "%s: anonymous requests (no credentials file)", g->display);
    return 0;
  }
  struct gcs_auth_opts ao = { .key_file = o->gcs_credentials, .proxy_ca_dir = o->proxy_ca_dir,
                              .ca_dir = o->ca_dir, .insecure = o->insecure_skip_verify,
                              .connect_timeout_s = o->connect_timeout_s, .stop = o->stop };
  if (gcs_auth_open(&ao, &g->auth, err) < 0)
    return -1;
  vlog_info("source", "%s: as service account %s", g->display, gcs_auth_account(g->auth));
  return 0;
}

/* What to do about a failed metadata request, by who asked. */
static int metadata_failed(const struct gcs_source *g, struct verr *err)
{
  if (g->auth == NULL)
    return verr_prefix(err, "%s: reading the object's metadata anonymously (a private "
                       "object needs the DataVolume's secretRef: a Secret whose "
                       "credentials.json is a service-account key)", g->display);
  return verr_prefix(err, "%s: reading the object's metadata as %s", g->display,
                     gcs_auth_account(g->auth));
}

static int gcs_open(const struct source_opts *o, void **state, struct verr *err)
{
  struct gcs_source *g = calloc(1, sizeof *g);
  if (g == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  pthread_mutex_init(&g->lock, NULL);
  verr_redact_url(o->url, g->display, sizeof g->display);
  g->md5 = EVP_MD_CTX_new();
  int r = g->md5 != NULL && EVP_DigestInit_ex(g->md5, EVP_md5(), NULL) == 1
              ? 0 : verr_set(err, VERR_NOMEM, "cannot set up md5 (OpenSSL)");
  if (r == 0)
    r = gcs_parse_location(o->url, &g->loc, err) < 0 ? verr_prefix(err, "%s", g->display) : 0;
  if (r == 0)
    r = open_auth(g, o, err);
  if (r == 0 && read_metadata(g, o, err) < 0)
    r = metadata_failed(g, err);
  if (r == 0) {
    vlog_info("source", "%s: generation %lld, %lld bytes, crc32c %s, md5Hash %s", g->display,
              (long long)g->meta.generation, (long long)g->meta.size,
              g->meta.has_crc32c ? g->meta.crc32c_b64 : "(none)",
              g->meta.has_md5 ? g->meta.md5_b64 : "(none)");
    r = open_object(g, o, err) < 0 ? verr_prefix(err, "%s generation %lld", g->display,
                                                 (long long)g->meta.generation) : 0;
  }
  if (r < 0) {
    gcs_close(g);
    return -1;
  }
  *state = g;
  return 0;
}

/* ---- reading: the http kind's ----------------------------------------------------------- */

static ssize_t gcs_read(void *state, void *buf, size_t len, struct verr *err)
{
  struct gcs_source *g = state;
  return http_read(g->http, buf, len, err);
}

static ssize_t gcs_view(void *state, const void **view, size_t len, struct verr *err)
{
  struct gcs_source *g = state;
  return http_view(g->http, view, len, err);
}

/* A Range request on the pinned generation: the same object or a clean failure. */
static int gcs_pread(void *state, void *buf, size_t len, uint64_t offset, struct verr *err)
{
  struct gcs_source *g = state;
  return http_pread(g->http, buf, len, offset, err);
}

static struct ring *gcs_ring(void *state)
{
  struct gcs_source *g = state;
  return http_ring(g->http);
}

static void gcs_info(void *state, struct source_info *out)
{
  struct gcs_source *g = state;
  http_info(g->http, out);
  out->kind = "gcs";
  snprintf(out->location, sizeof out->location, "%s", g->display);
  pthread_mutex_lock(&g->lock);
  snprintf(out->checked, sizeof out->checked, "%s", g->checked);
  pthread_mutex_unlock(&g->lock);
}

/* gs:// only: an https://host/bucket/object location is a gcs object when the caller
 * says so (source_opts.kind), since the http row takes it otherwise. */
static int gcs_match(const char *url)
{
  return strncmp(url, "gs://", 5) == 0;
}

const struct source_kind source_gcs_kind = {
  .name  = "gcs",
  .match = gcs_match,
  .open  = gcs_open,
  .read  = gcs_read,
  .view  = gcs_view,
  .pread = gcs_pread,
  .info  = gcs_info,
  .ring  = gcs_ring,
  .close = gcs_close,
};
