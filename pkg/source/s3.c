/* vimport source, the s3 kind: an object of an S3-compatible store, streamed and
 * resumed by the http transport (http.h: ring, Range, retries, digest lending, zero
 * runs), each request signed with AWS Signature Version 4 (sigv4.c).
 *
 * The location is CDI's IMPORTER_ENDPOINT, "http(s)://host[:port]/bucket/key". It is an
 * ordinary http(s) URL, so this row matches no location: the caller names it
 * (source_opts.kind "s3"), as a spec's s3 source does. CDI's rules
 * (s3-datasource.go): path style, the first path segment is the bucket and the rest the
 * key; the region is extractRegion's; opts.basic_user/basic_password are the access key
 * id and secret key, and without them the requests go unsigned (anonymous).
 *
 * What the hooks change from plain http, and why:
 *   - every request (first, resume, re-read) carries its own signature over Host,
 *     x-amz-content-sha256 and x-amz-date (and x-amz-checksum-mode on the first);
 *   - resumes use If-Match: S3 answers a changed object with 412, never with the new
 *     object's bytes;
 *   - no redirect is followed: a signature is valid for its own host only;
 *   - a refused request's XML (NoSuchKey, AccessDenied, SignatureDoesNotMatch...) becomes
 *     one line naming the bucket and the key, never the secret;
 *   - the object's own digest (x-amz-checksum-sha256, else a single-part ETag: its MD5)
 *     is handed to the import through source_info so it is checked in the same pass.
 */
#include "source/s3.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "source/http.h"

/* ---- pure helpers (s3.h) ------------------------------------------------------------ */

static int is_unreserved(unsigned char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

int s3_uri_encode(const char *s, size_t len, char *out, size_t out_size)
{
  size_t w = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    int n = is_unreserved(c) || c == '/' ? snprintf(out + w, out_size - w, "%c", c)
                                         : snprintf(out + w, out_size - w, "%%%02X", c);
    if (n < 0 || (size_t)n >= out_size - w)
      return -1;
    w += (size_t)n;
  }
  if (w >= out_size)
    return -1;
  out[w] = '\0';
  return 0;
}

void s3_region_of(const char *host, char *out, size_t out_size)
{
  /* CDI: regexp `s3\.(.+)\.amazonaws\.com` (greedy), else strings.Split(host, ".")[0] */
  const char *s3 = strstr(host, "s3.");
  const char *tail = NULL;
  for (const char *p = s3 != NULL ? strstr(s3 + 3, ".amazonaws.com") : NULL; p != NULL;
       p = strstr(p + 1, ".amazonaws.com"))
    if (p > s3 + 3)
      tail = p;
  if (tail != NULL) {
    snprintf(out, out_size, "%.*s", (int)(tail - (s3 + 3)), s3 + 3);
    return;
  }
  snprintf(out, out_size, "%.*s", (int)strcspn(host, "."), host);
}

static int hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decode [s, s+len) into out; -1 on a bad escape, a NUL or no room. */
static int percent_decode(const char *s, size_t len, char *out, size_t out_size)
{
  size_t w = 0;
  for (size_t i = 0; i < len; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
      int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return -1;
      c = hi * 16 + lo;
      i += 2;
    }
    if (c == 0 || w + 1 >= out_size)
      return -1;
    out[w++] = (char)c;
  }
  out[w] = '\0';
  return 0;
}

static int endpoint_error(struct verr *err, const char *url, const char *what)
{
  char redacted[1024];
  verr_redact_url(url, redacted, sizeof redacted);
  return verr_set(err, VERR_USAGE, "s3 endpoint %s: %s; give http(s)://HOST[:PORT]/BUCKET/KEY "
                  "(path style, as CDI takes it)", redacted, what);
}

int s3_parse_endpoint(const char *url, struct s3_endpoint *ep, struct verr *err)
{
  memset(ep, 0, sizeof *ep);
  const char *rest;
  if (strncasecmp(url, "https://", 8) == 0)
    snprintf(ep->scheme, sizeof ep->scheme, "https"), rest = url + 8;
  else if (strncasecmp(url, "http://", 7) == 0)
    snprintf(ep->scheme, sizeof ep->scheme, "http"), rest = url + 7;
  else
    return endpoint_error(err, url, "not an http:// or https:// URL");
  size_t auth_len = strcspn(rest, "/?#");
  const char *at = memchr(rest, '@', auth_len);
  const char *host = at != NULL ? at + 1 : rest; /* userinfo: CDI's client ignores it too */
  size_t host_len = auth_len - (size_t)(host - rest);
  if (host_len == 0 || host_len >= sizeof ep->host)
    return endpoint_error(err, url, "no host, or a host too long");
  memcpy(ep->host, host, host_len);
  const char *path = rest + auth_len;
  size_t path_len = strcspn(path, "?#");
  while (path_len > 0 && *path == '/') /* CDI: strings.Trim(ep.Path, "/") */
    path++, path_len--;
  while (path_len > 0 && path[path_len - 1] == '/')
    path_len--;
  const char *slash = memchr(path, '/', path_len);
  if (slash == NULL)
    return endpoint_error(err, url, "no bucket and key in the path");
  if (percent_decode(path, (size_t)(slash - path), ep->bucket, sizeof ep->bucket) < 0 ||
      percent_decode(slash + 1, path_len - (size_t)(slash + 1 - path), ep->key,
                     sizeof ep->key) < 0)
    return endpoint_error(err, url, "a bad %-escape, or a bucket or key too long");
  if (ep->bucket[0] == '\0' || ep->key[0] == '\0' || strchr(ep->bucket, '/') != NULL)
    return endpoint_error(err, url, "an empty bucket or key");
  s3_region_of(ep->host, ep->region, sizeof ep->region);
  return 0;
}

/* The text of the first <tag>...</tag> in [body, end), printable ASCII with the five
 * XML entities decoded, cut to `size`. */
static int xml_field(const char *body, size_t len, const char *tag, char *out, size_t size)
{
  char open[40], close[40];
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  out[0] = '\0';
  const char *s = memmem(body, len, open, strlen(open));
  if (s == NULL)
    return -1;
  s += strlen(open);
  const char *e = memmem(s, len - (size_t)(s - body), close, strlen(close));
  if (e == NULL)
    return -1;
  static const struct { const char *name; char c; } ents[] = {
    { "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' }, { "&quot;", '"' }, { "&apos;", '\'' },
  };
  size_t w = 0;
  while (s < e && w + 1 < size) {
    char c = *s++;
    for (size_t i = 0; c == '&' && i < sizeof ents / sizeof ents[0]; i++) {
      size_t n = strlen(ents[i].name) - 1;
      if ((size_t)(e - s) >= n && memcmp(s, ents[i].name + 1, n) == 0) {
        c = ents[i].c;
        s += n;
        break;
      }
    }
    out[w++] = c >= 0x20 && c < 0x7f ? c : '?';
  }
  out[w] = '\0';
  return 0;
}

int s3_parse_error(const char *body, size_t len, struct s3_error *out)
{
  memset(out, 0, sizeof *out);
  if (body == NULL)
    return -1;
  xml_field(body, len, "Message", out->message, sizeof out->message);
  xml_field(body, len, "Endpoint", out->endpoint, sizeof out->endpoint);
  return xml_field(body, len, "Code", out->code, sizeof out->code);
}

static int is_hex32(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (hex_value(s[i]) < 0)
      return 0;
  return n == 32;
}

static void hex_lower(const unsigned char *md, size_t n, char *out)
{
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", md[i]);
}

int s3_object_checksum(const char *checksum_sha256_b64, const char *etag, const char *sse,
                       int sse_customer, char *out, size_t out_size, const char **from)
{
  unsigned char raw[48];
  /* a full-object SHA-256 is 44 base64 characters; a composite one ends in "-<parts>" */
  if (checksum_sha256_b64 != NULL && strlen(checksum_sha256_b64) == 44 &&
      EVP_DecodeBlock(raw, (const unsigned char *)checksum_sha256_b64, 44) == 33 &&
      checksum_sha256_b64[43] == '=' && checksum_sha256_b64[42] != '=' && out_size > 72) {
    memcpy(out, "sha256:", 7);
    hex_lower(raw, 32, out + 7);
    *from = "x-amz-checksum-sha256";
    return 0;
  }
  /* SSE-KMS and SSE-C objects have an ETag that is not their MD5; SSE-S3's is */
  int md5_etag = etag != NULL && strlen(etag) == 34 && etag[0] == '"' && etag[33] == '"' &&
                 is_hex32(etag + 1, 32) && !sse_customer &&
                 (sse == NULL || sse[0] == '\0' || strcasecmp(sse, "AES256") == 0);
  if (!md5_etag || out_size < 37)
    return -1;
  memcpy(out, "md5:", 4);
  for (int i = 0; i < 32; i++)
    out[4 + i] = (char)(etag[1 + i] | 0x20);
  out[36] = '\0';
  *from = "ETag";
  return 0;
}

/* "/bucket/key", encoded once: the path requested and the one signed. */
static int s3_canonical_uri(const struct s3_endpoint *ep, char *out, size_t size)
{
  size_t b = strlen(ep->bucket);
  if (size < 2)
    return -1;
  out[0] = '/';
  if (s3_uri_encode(ep->bucket, b, out + 1, size - 1) < 0)
    return -1;
  size_t w = strlen(out);
  if (w + 2 >= size)
    return -1;
  out[w++] = '/';
  return s3_uri_encode(ep->key, strlen(ep->key), out + w, size - w);
}

/* ---- the hooks --------------------------------------------------------------------- */

struct s3_signer {
  struct s3_endpoint ep;
  char *access_key_id; /* NULL: anonymous */
  char *secret_key;    /* wiped at free */
};

static int add_line(struct curl_slist **headers, const char *name, const char *value)
{
  char line[SIGV4_AUTH_MAX + 64];
  snprintf(line, sizeof line, "%s: %s", name, value);
  struct curl_slist *l = curl_slist_append(*headers, line);
  if (l == NULL)
    return -1;
  *headers = l;
  return 0;
}

/* Host, dates and, with credentials, the signature of this very request. */
static int s3_headers(struct s3_signer *s, int ranged, struct curl_slist **headers)
{
  char date[32], uri[3 * (256 + S3_NAME_MAX) + 4], auth[SIGV4_AUTH_MAX];
  struct tm tm;
  time_t now = time(NULL);
  strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
  /* the store's checksum comes with the whole object only; a range has none */
  struct sigv4_header h[] = {
    { "host", s->ep.host },
    { "x-amz-checksum-mode", "ENABLED" },
    { "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
    { "x-amz-date", date },
  };
  struct sigv4_header hr[] = { h[0], h[2], h[3] };
  const struct sigv4_header *list = ranged ? hr : h;
  size_t n = ranged ? 3 : 4;
  for (size_t i = 0; i < n; i++)
    if (add_line(headers, list[i].name, list[i].value) < 0)
      return -1;
  if (s->access_key_id == NULL)
    return 0;
  if (s3_canonical_uri(&s->ep, uri, sizeof uri) < 0)
    return -1;
  struct sigv4_request req = {
    .method = "GET", .canonical_uri = uri, .canonical_query = "", .headers = list,
    .n_headers = n, .payload_sha256 = SIGV4_EMPTY_SHA256, .region = s->ep.region,
    .service = "s3", .amz_date = date, .access_key_id = s->access_key_id,
    .secret_key = s->secret_key,
  };
  int rc = sigv4_authorization(&req, auth, sizeof auth) < 0 ? -1
           : add_line(headers, "Authorization", auth);
  OPENSSL_cleanse(auth, sizeof auth);
  return rc;
}

static int s3_request_headers(void *arg, int ranged, struct curl_slist **headers,
                              struct verr *err)
{
  if (s3_headers(arg, ranged, headers) < 0)
    return verr_set(err, VERR_NOMEM, "cannot sign the S3 request: out of memory, or a key "
                    "too long for its URL");
  return 0;
}

static void s3_adopt(void *arg, const struct source_http_response *resp, struct source_info *info)
{
  const char *from = NULL;
  (void)arg;
  if (s3_object_checksum(resp->amz_checksum_sha256, resp->etag, resp->amz_sse,
                         resp->amz_sse_customer, info->object_checksum,
                         sizeof info->object_checksum, &from) == 0)
    snprintf(info->object_checksum_from, sizeof info->object_checksum_from, "%s", from);
}

/* What to do about an S3 error code (the ones a GET of an object meets). */
static const char *s3_remedy(const char *code, int status)
{
  static const struct { const char *code; const char *what; } table[] = {
    { "NoSuchKey", "no such key in the bucket: check the key (the URL's path after the bucket)" },
    { "NoSuchBucket", "no such bucket: check the bucket (the URL's first path segment)" },
    { "AccessDenied", "the credentials may not read this object: check the secret's "
                      "accessKeyId and the bucket's or user's policy" },
    { "SignatureDoesNotMatch", "the store computed another signature: the secretKey does "
                               "not belong to the accessKeyId (or a proxy altered the "
                               "request); check the secret" },
    { "InvalidAccessKeyId", "the store does not know this access key id: check the secret's "
                            "accessKeyId" },
    { "InvalidToken", "the store refused the credentials: check the secret" },
    { "RequestTimeTooSkewed", "this machine's clock is too far from the store's: fix the "
                              "clock (NTP)" },
    { "PreconditionFailed", "the object changed since the import started (its ETag no longer "
                            "matches); the import must restart" },
    { "PermanentRedirect", "the bucket is served by another endpoint: use it in the URL" },
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(code, table[i].code) == 0)
      return table[i].what;
  return status >= 500 ? "the store is failing or busy; retry later"
                       : "check the URL, the credentials and the object";
}

static void s3_explain(void *arg, int status, const char *body, size_t len, struct verr *err)
{
  struct s3_signer *s = arg;
  struct s3_error e;
  if (s3_parse_error(body, len, &e) < 0) { /* no XML (a proxy's page): keep http's words */
    verr_prefix(err, "S3 object \"%s\" in bucket \"%s\"", s->ep.key, s->ep.bucket);
    return;
  }
  verr_set(err, err->code, "S3 object \"%s\" in bucket \"%s\" at %s://%s: HTTP %d %s%s%s%s"
           "%s%s: %s", s->ep.key, s->ep.bucket, s->ep.scheme, s->ep.host, status, e.code,
           e.message[0] ? " (" : "", e.message, e.message[0] ? ")" : "",
           e.endpoint[0] ? ", endpoint " : "", e.endpoint, s3_remedy(e.code, status));
}

static void s3_signer_free(void *arg)
{
  struct s3_signer *s = arg;
  if (s == NULL)
    return;
  if (s->secret_key != NULL)
    OPENSSL_cleanse(s->secret_key, strlen(s->secret_key));
  free(s->secret_key);
  free(s->access_key_id);
  free(s);
}

static const struct http_hooks s3_hooks = {
  .request_headers = s3_request_headers,
  .adopt = s3_adopt,
  .explain = s3_explain,
  .free = s3_signer_free,
  .if_match = 1,
  .no_redirects = 1,
};

/* ---- the kind ---------------------------------------------------------------------- */

static int s3_signer_new(const struct source_opts *opts, struct s3_signer **out, struct verr *err)
{
  struct s3_signer *s = calloc(1, sizeof *s);
  if (s == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the s3 source");
  *out = s;
  if (s3_parse_endpoint(opts->url, &s->ep, err) < 0)
    return -1;
  /* CDI needs both keys; half a secret is anonymous, as for http (the spec warns) */
  if (opts->basic_user == NULL || opts->basic_password == NULL ||
      opts->basic_user[0] == '\0' || opts->basic_password[0] == '\0')
    return 0;
  s->access_key_id = strdup(opts->basic_user);
  s->secret_key = strdup(opts->basic_password);
  if (s->access_key_id == NULL || s->secret_key == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "copying the s3 credentials");
  return 0;
}

static int s3_open(const struct source_opts *opts, void **state, struct verr *err)
{
  struct s3_signer *s = NULL;
  if (s3_signer_new(opts, &s, err) < 0) {
    s3_signer_free(s);
    return -1;
  }
  /* the URL the transport requests is the canonical one the signature covers */
  char url[3 * (256 + S3_NAME_MAX) + 600], path[3 * (256 + S3_NAME_MAX) + 4];
  if (s3_canonical_uri(&s->ep, path, sizeof path) < 0) {
    s3_signer_free(s);
    return verr_set(err, VERR_USAGE, "the s3 bucket and key are too long");
  }
  snprintf(url, sizeof url, "%s://%s%s", s->ep.scheme, s->ep.host, path);
  struct source_opts o = *opts;
  o.url = url;
  o.basic_user = o.basic_password = NULL; /* they sign; they are never sent */
  o.extra_headers = NULL;
  o.n_extra_headers = 0;
  return http_open_hooked(&o, "s3", &s3_hooks, s, state, err);
}

const struct source_kind source_s3_kind = {
  .name  = "s3",
  .match = NULL, /* named only: an s3 endpoint is an http(s) URL */
  .open  = s3_open,
  .read  = http_read,
  .view  = http_view,
  .pread = http_pread,
  .info  = http_info,
  .ring  = http_ring,
  .close = http_close,
};
