/* vimport source, the gcs kind: a service account's bearer token (gcs.h).
 *
 * Google's flow for a key file (RFC 7523, "Using OAuth 2.0 for Server to Server
 * Applications"): a JWT {iss: client_email, scope, aud: token_uri, iat, exp}, signed
 * RS256 with the file's private key, is POSTed to token_uri as
 * grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>; the answer's
 * access_token is sent as "Authorization: Bearer" until shortly before expires_in.
 *
 * The token is shared by the transfer thread and pread (the reader's thread): one mutex
 * guards it, and a refresh happens under it, so two requests never both fetch one.
 */
#include "source/gcs.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/bodybuf.h"
#include "core/log.h"
#include "json/json.h"
#include "source/source.h"

#define TOKEN_TIMEOUT_S 60   /* the whole token request */
#define TOKEN_ATTEMPTS 3     /* a failing issuer (5xx, network) is asked this often */
#define JWT_LIFETIME_S 3600  /* Google's maximum */

struct gcs_auth {
  struct gcs_key key;
  EVP_PKEY *pkey;
  char *ca_blob; /* NULL: libcurl's trust */
  size_t ca_blob_len;
  int insecure;
  unsigned connect_timeout_s;
  const volatile sig_atomic_t *stop;
  pthread_mutex_t lock;
  char token[GCS_TOKEN_MAX]; /* (lock) "" until fetched */
  struct timespec refresh_at;   /* (lock) monotonic */
};

const char *gcs_auth_account(const struct gcs_auth *a)
{
  return a->key.client_email;
}

/* ---- the key file ------------------------------------------------------------------- */

static int read_file(const char *path, char **buf, size_t *len, struct verr *err)
{
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return verr_sys(err, VERR_IO, errno, "cannot read the GCS credentials file %s: mount "
                    "the DataVolume's secret (key credentials.json) there", path);
  *buf = malloc(GCS_MAX_DOC + 1);
  *len = *buf != NULL ? fread(*buf, 1, GCS_MAX_DOC + 1, f) : 0;
  int bad = ferror(f);
  fclose(f);
  if (*buf == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  if (bad || *len > GCS_MAX_DOC) {
    explicit_bzero(*buf, *len);
    free(*buf);
    return verr_set(err, VERR_IO, "the GCS credentials file %s is unreadable or larger "
                    "than %u bytes; it should be a service-account key (a few KiB)", path,
                    GCS_MAX_DOC);
  }
  return 0;
}

static EVP_PKEY *load_private_key(const char *pem)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *k = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  if (k != NULL && EVP_PKEY_base_id(k) != EVP_PKEY_RSA) {
    EVP_PKEY_free(k);
    k = NULL;
  }
  return k;
}

static int load_key(struct gcs_auth *a, const char *path, struct verr *err)
{
  char *buf = NULL;
  size_t len = 0;
  if (read_file(path, &buf, &len, err) < 0)
    return -1;
  int r = gcs_parse_key(buf, len, &a->key, err);
  explicit_bzero(buf, len);
  free(buf);
  if (r < 0)
    return verr_prefix(err, "GCS credentials file %s", path);
  a->pkey = load_private_key(a->key.private_key_pem);
  if (a->pkey == NULL)
    return verr_set(err, VERR_USAGE, "GCS credentials file %s: private_key is not a PEM RSA "
                    "private key; download a new JSON key for %s", path, a->key.client_email);
  return 0;
}

/* ---- the JWT ------------------------------------------------------------------------ */

static size_t base64url(const unsigned char *in, size_t len, char *out, size_t size)
{
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  for (size_t i = 0; i < len && o + 5 < size; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len)
      v |= in[i + 2];
    out[o++] = abc[(v >> 18) & 63];
    out[o++] = abc[(v >> 12) & 63];
    if (i + 1 < len)
      out[o++] = abc[(v >> 6) & 63];
    if (i + 2 < len)
      out[o++] = abc[v & 63];
  }
  out[o] = '\0';
  return o;
}

/* header.claims.signature, RS256 */
static int make_jwt(struct gcs_auth *a, char *jwt, size_t size, struct verr *err)
{
  char header[256], claims[2048];
  int hn = snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                    a->key.private_key_id);
  time_t now = time(NULL);
  int cn = snprintf(claims, sizeof claims, "{\"iss\":\"%s\",\"scope\":\"%s\",\"aud\":\"%s\","
                    "\"iat\":%lld,\"exp\":%lld}", a->key.client_email, GCS_SCOPE,
                    a->key.token_uri, (long long)now, (long long)now + JWT_LIFETIME_S);
  if (hn < 0 || (size_t)hn >= sizeof header || cn < 0 || (size_t)cn >= sizeof claims)
    return verr_set(err, VERR_INTERNAL, "JWT fields too long");
  size_t o = base64url((unsigned char *)header, (size_t)hn, jwt, size);
  jwt[o++] = '.';
  o += base64url((unsigned char *)claims, (size_t)cn, jwt + o, size - o);
  unsigned char sig[1024];
  size_t sig_len = sizeof sig;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, a->pkey) == 1 &&
           EVP_DigestSign(md, sig, &sig_len, (unsigned char *)jwt, o) == 1;
  EVP_MD_CTX_free(md);
  if (!ok || o + 2 + sig_len * 4 / 3 + 4 > size)
    return verr_set(err, VERR_INTERNAL, "cannot sign the token request with the key of %s "
                    "(OpenSSL failed)", a->key.client_email);
  jwt[o++] = '.';
  base64url(sig, sig_len, jwt + o, size - o);
  return 0;
}

/* ---- the exchange ------------------------------------------------------------------- */

/* SIGTERM ends a token request instead of waiting for its timeout */
static int on_progress(void *opaque, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
  const struct gcs_auth *auth = opaque;
  (void)a, (void)b, (void)c, (void)d;
  return auth->stop != NULL && *auth->stop;
}

static CURLcode post_assertion(struct gcs_auth *a, CURL *h, const char *body, struct body_buf *ans,
                               long *status, char *cerr)
{
  curl_easy_setopt(h, CURLOPT_URL, a->key.token_uri);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)TOKEN_TIMEOUT_S);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)a->connect_timeout_s);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "vimport");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_buf_append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, ans);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, a);
  if (a->insecure) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (a->ca_blob != NULL) {
    struct curl_blob blob = { a->ca_blob, a->ca_blob_len, CURL_BLOB_NOCOPY };
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
  }
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  return rc;
}

/* One POST; 1: worth another try (network, 5xx), 0: done (token or refusal). */
static int exchange_once(struct gcs_auth *a, const char *body, char *token, int64_t *expires,
                         struct verr *err)
{
  struct body_buf ans = { .max = GCS_MAX_DOC };
  char cerr[CURL_ERROR_SIZE] = "";
  long status = 0;
  CURL *h = curl_easy_init();
  if (h == NULL)
    return verr_set(err, VERR_NOMEM, "cannot create a libcurl handle"), 0;
  CURLcode rc = post_assertion(a, h, body, &ans, &status, cerr);
  curl_easy_cleanup(h);
  int again = 0;
  if (rc != CURLE_OK) {
    verr_set(err, VERR_SOURCE, "the token endpoint %s failed: %s; check the key file's "
             "token_uri, the network and the CA that signs the endpoint", a->key.token_uri,
             ans.too_big ? "answer too large" : cerr[0] ? cerr : curl_easy_strerror(rc));
    again = rc != CURLE_PEER_FAILED_VERIFICATION && !ans.too_big;
  } else if (gcs_parse_token(body_buf_text(&ans), ans.len, token, GCS_TOKEN_MAX,
                             expires, err) < 0) {
    verr_prefix(err, "the token endpoint %s answered HTTP %ld for %s", a->key.token_uri,
                status, a->key.client_email);
    again = status >= 500;
  } else if (status != 200) {
    verr_set(err, VERR_SOURCE, "the token endpoint %s answered HTTP %ld with a token",
             a->key.token_uri, status);
    explicit_bzero(token, GCS_TOKEN_MAX);
  }
  if (ans.data != NULL)
    explicit_bzero(ans.data, ans.len);
  free(ans.data);
  return again;
}

/* A new token into a->token (lock held). */
static int fetch_token(struct gcs_auth *a, struct verr *err)
{
  char jwt[4096], body[4300];
  if (make_jwt(a, jwt, sizeof jwt, err) < 0)
    return -1;
  snprintf(body, sizeof body, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type"
           "%%3Ajwt-bearer&assertion=%s", jwt);
  explicit_bzero(jwt, sizeof jwt);
  char token[GCS_TOKEN_MAX] = "";
  int64_t expires = 0;
  struct verr e = { 0 };
  for (int i = 1; i <= TOKEN_ATTEMPTS; i++) {
    e = (struct verr){ 0 };
    if (!exchange_once(a, body, token, &expires, &e) || i == TOKEN_ATTEMPTS ||
        (a->stop != NULL && *a->stop))
      break;
    vlog_warn("source", "%s; asking again", e.message);
    struct timespec d = { .tv_sec = i };
    nanosleep(&d, NULL); /* bounded: 1 s, then 2 s */
  }
  explicit_bzero(body, sizeof body);
  if (token[0] == '\0') {
    if (err != NULL)
      *err = e;
    return -1;
  }
  memcpy(a->token, token, sizeof token);
  explicit_bzero(token, sizeof token);
  int64_t margin = expires / 4 < 60 ? expires / 4 : 60; /* refresh before it expires */
  clock_gettime(CLOCK_MONOTONIC, &a->refresh_at);
  a->refresh_at.tv_sec += (time_t)(expires - margin);
  if (margin == 0)
    a->refresh_at.tv_nsec = 0;
  vlog_info("source", "GCS: a token for %s from %s, valid %lld s", a->key.client_email,
            a->key.token_uri, (long long)expires);
  return 0;
}

static int token_is_fresh(const struct gcs_auth *a)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return a->token[0] != '\0' &&
         (now.tv_sec < a->refresh_at.tv_sec ||
          (now.tv_sec == a->refresh_at.tv_sec && now.tv_nsec < a->refresh_at.tv_nsec));
}

int gcs_auth_header(void *opaque, char *line, size_t size, struct verr *err)
{
  struct gcs_auth *a = opaque;
  pthread_mutex_lock(&a->lock);
  int r = token_is_fresh(a) ? 0 : fetch_token(a, err);
  if (r == 0 && (size_t)snprintf(line, size, "Authorization: Bearer %s", a->token) >= size)
    r = verr_set(err, VERR_INTERNAL, "the access token is too long for a header");
  pthread_mutex_unlock(&a->lock);
  return r;
}

/* ---- open, free --------------------------------------------------------------------- */

int gcs_auth_open(const struct gcs_auth_opts *o, struct gcs_auth **out, struct verr *err)
{
  struct gcs_auth *a = calloc(1, sizeof *a);
  if (a == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  pthread_mutex_init(&a->lock, NULL);
  a->insecure = o->insecure;
  a->stop = o->stop;
  a->connect_timeout_s = o->connect_timeout_s ? o->connect_timeout_s
                                              : SOURCE_DEFAULT_CONNECT_TIMEOUT_S;
  if (load_key(a, o->key_file, err) < 0 ||
      (!o->insecure && source_ca_blob(o->proxy_ca_dir, o->ca_dir, &a->ca_blob,
                                      &a->ca_blob_len, err) < 0)) {
    gcs_auth_free(a);
    return -1;
  }
  *out = a;
  return 0;
}

void gcs_auth_free(struct gcs_auth *a)
{
  if (a == NULL)
    return;
  gcs_key_free(&a->key);
  EVP_PKEY_free(a->pkey);
  free(a->ca_blob);
  explicit_bzero(a->token, sizeof a->token);
  pthread_mutex_destroy(&a->lock);
  free(a);
}
