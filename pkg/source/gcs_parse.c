/* vimport source, the gcs kind: the parsers of what comes from outside (gcs.h): the
 * object URL, the object's metadata, the key file and the token answer. Pure functions
 * on bounded input; tests/fuzz/fuzz_gcs.c runs them on arbitrary bytes.
 */
#include "source/gcs.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json/json.h"

long gcs_base64_decode(const char *in, unsigned char *out, size_t out_size)
{
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(in), o = 0;
  if (n == 0 || n % 4 != 0)
    return -1;
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (int j = 0; j < 4; j++) {
      char c = in[i + j];
      const char *p = c != '\0' ? strchr(abc, c) : NULL;
      if (c == '=' && i + 4 == n && j >= 2 && (j == 3 || in[i + 3] == '=')) {
        pad++;
        v <<= 6;
        continue;
      }
      if (p == NULL || pad > 0)
        return -1;
      v = (v << 6) | (uint32_t)(p - abc);
    }
    for (int j = 0; j < 3 - pad; j++) {
      if (o >= out_size)
        return -1;
      out[o++] = (unsigned char)(v >> (16 - 8 * j));
    }
  }
  return (long)o;
}

/* ---- the location ---------------------------------------------------------------------- */

static int copy_part(char *dst, size_t size, const char *s, size_t len)
{
  if (len == 0 || len >= size)
    return -1;
  memcpy(dst, s, len);
  dst[len] = '\0';
  return 0;
}

int gcs_parse_location(const char *url, struct gcs_location *out, struct verr *err)
{
  const char *rest;
  memset(out, 0, sizeof *out);
  if (strncmp(url, "gs://", 5) == 0) {
    snprintf(out->base, sizeof out->base, "%s", GCS_DEFAULT_HOST);
    rest = url + 5;
  } else if (strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "http://", 7) == 0) {
    const char *host = strstr(url, "://") + 3;
    size_t hlen = strcspn(host, "/");
    if (hlen == 0 || memchr(host, '@', hlen) != NULL ||
        copy_part(out->base, sizeof out->base, url, (size_t)(host - url) + hlen) < 0)
      return verr_set(err, VERR_USAGE, "a GCS URL needs a host and no user:password@ "
                      "(credentials go in the secret's credentials.json)");
    rest = host[hlen] == '/' ? host + hlen + 1 : host + hlen;
  } else {
    return verr_set(err, VERR_USAGE, "a GCS URL is gs://BUCKET/OBJECT or "
                    "https://HOST/BUCKET/OBJECT");
  }
  if (strpbrk(rest, "?#") != NULL)
    return verr_set(err, VERR_USAGE, "a GCS URL has no query or fragment: give "
                    "gs://BUCKET/OBJECT (a generation is not selectable; the import pins "
                    "the one it finds)");
  size_t blen = strcspn(rest, "/");
  if (copy_part(out->bucket, sizeof out->bucket, rest, blen) < 0 || rest[blen] != '/' ||
      copy_part(out->object, sizeof out->object, rest + blen + 1, strlen(rest + blen + 1)) < 0)
    return verr_set(err, VERR_USAGE, "a GCS URL names a bucket and an object: "
                    "gs://BUCKET/OBJECT or https://HOST/BUCKET/OBJECT (bucket at most %zu "
                    "bytes, object at most %zu)", sizeof out->bucket - 1,
                    sizeof out->object - 1);
  return 0;
}

/* ---- object metadata --------------------------------------------------------------------- */

/* An int64 that Google sends as a decimal string (JSON API's "format: int64"), or a
 * number; >= 0. */
static int int64_field(const struct json_value *doc, const char *key, int64_t *out)
{
  const struct json_value *v = json_get(doc, key);
  const char *s = json_str(v);
  if (s != NULL) {
    int64_t n = 0;
    if (*s == '\0')
      return -1;
    for (; *s; s++) {
      if (!isdigit((unsigned char)*s) || n > (INT64_MAX - (*s - '0')) / 10)
        return -1;
      n = n * 10 + (*s - '0');
    }
    *out = n;
    return 0;
  }
  return json_int64(v, out) && *out >= 0 ? 0 : -1;
}

int gcs_parse_object_meta(const void *buf, size_t len, struct gcs_object_meta *out,
                          struct verr *err)
{
  struct json_value *doc;
  memset(out, 0, sizeof *out);
  if (json_parse(buf, len, NULL, &doc, err) < 0)
    return verr_prefix(err, "the object's metadata is not JSON");
  int r = -1;
  const char *crc = json_str(json_get(doc, "crc32c"));
  const char *md5 = json_str(json_get(doc, "md5Hash"));
  unsigned char c[8];
  if (!json_is(doc, JSON_OBJECT))
    verr_set(err, VERR_FORMAT, "the object's metadata is not a JSON object");
  else if (int64_field(doc, "generation", &out->generation) < 0)
    verr_set(err, VERR_FORMAT, "the object's metadata has no valid \"generation\"");
  else if (int64_field(doc, "size", &out->size) < 0)
    verr_set(err, VERR_FORMAT, "the object's metadata has no valid \"size\"");
  else if (crc != NULL && (strlen(crc) >= sizeof out->crc32c_b64 ||
                           gcs_base64_decode(crc, c, sizeof c) != 4))
    verr_set(err, VERR_FORMAT, "the object's \"crc32c\" is not the base64 of 4 bytes");
  else if (md5 != NULL && (strlen(md5) >= sizeof out->md5_b64 ||
                           gcs_base64_decode(md5, out->md5, sizeof out->md5) != 16))
    verr_set(err, VERR_FORMAT, "the object's \"md5Hash\" is not the base64 of 16 bytes");
  else
    r = 0;
  if (r == 0 && crc != NULL) {
    out->has_crc32c = true;
    out->crc32c = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
    snprintf(out->crc32c_b64, sizeof out->crc32c_b64, "%s", crc);
  }
  if (r == 0 && md5 != NULL) {
    out->has_md5 = true;
    snprintf(out->md5_b64, sizeof out->md5_b64, "%s", md5);
  }
  json_free(doc);
  return r;
}

/* ---- key file, token answer -------------------------------------------------------------- */

static int copy_field(const struct json_value *doc, const char *key, char *dst, size_t size)
{
  const char *s = json_str(json_get(doc, key));
  if (s == NULL || *s == '\0' || strlen(s) >= size)
    return -1;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\') /* they go into the JWT */
      return -1;
  memcpy(dst, s, strlen(s) + 1);
  return 0;
}

static int key_fields(const struct json_value *doc, struct gcs_key *out, struct verr *err)
{
  const char *type = json_str(json_get(doc, "type"));
  if (type == NULL || strcmp(type, "service_account") != 0)
    return verr_set(err, VERR_USAGE, "\"type\" is %s%.40s%s, not \"service_account\": give "
                    "a service account's JSON key (user credentials and external accounts "
                    "are not supported)", type ? "\"" : "", type ? type : "missing",
                    type ? "\"" : "");
  if (copy_field(doc, "client_email", out->client_email, sizeof out->client_email) < 0)
    return verr_set(err, VERR_USAGE, "no valid \"client_email\"");
  if (json_get(doc, "private_key_id") != NULL &&
      copy_field(doc, "private_key_id", out->private_key_id, sizeof out->private_key_id) < 0)
    return verr_set(err, VERR_USAGE, "\"private_key_id\" is not a short string");
  if (json_get(doc, "token_uri") == NULL)
    snprintf(out->token_uri, sizeof out->token_uri, "https://oauth2.googleapis.com/token");
  else if (copy_field(doc, "token_uri", out->token_uri, sizeof out->token_uri) < 0 ||
           (strncmp(out->token_uri, "https://", 8) != 0 &&
            strncmp(out->token_uri, "http://", 7) != 0))
    return verr_set(err, VERR_USAGE, "\"token_uri\" is not an http(s) URL");
  const char *pem = json_str(json_get(doc, "private_key"));
  if (pem == NULL || strstr(pem, "-----BEGIN") == NULL)
    return verr_set(err, VERR_USAGE, "no \"private_key\" in PEM form");
  if ((out->private_key_pem = strdup(pem)) == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  return 0;
}

int gcs_parse_key(const void *buf, size_t len, struct gcs_key *out, struct verr *err)
{
  struct json_value *doc;
  memset(out, 0, sizeof *out);
  /* the parser's message names an offset, never the bytes: safe with a key inside */
  if (json_parse(buf, len, NULL, &doc, err) < 0)
    return verr_prefix(err, "not a JSON key file");
  int r = json_is(doc, JSON_OBJECT) ? key_fields(doc, out, err)
                                    : verr_set(err, VERR_USAGE, "not a JSON object");
  for (size_t i = 0; json_is(doc, JSON_OBJECT) && i < doc->count; i++) {
    struct json_value *v = doc->members[i].value; /* wipe the key's copy in the tree */
    if (v->type == JSON_STRING)
      explicit_bzero(v->str, v->str_len);
  }
  json_free(doc);
  if (r < 0)
    gcs_key_free(out);
  return r;
}

void gcs_key_free(struct gcs_key *k)
{
  if (k->private_key_pem != NULL) {
    explicit_bzero(k->private_key_pem, strlen(k->private_key_pem));
    free(k->private_key_pem);
  }
  k->private_key_pem = NULL;
}

static void printable(const char *s, char *out, size_t size)
{
  size_t o = 0;
  for (; s != NULL && *s && o + 1 < size; s++)
    out[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
  out[o] = '\0';
}

int gcs_parse_token(const void *buf, size_t len, char *token, size_t token_size,
                    int64_t *expires_in, struct verr *err)
{
  struct json_value *doc;
  token[0] = '\0';
  if (json_parse(buf, len, NULL, &doc, err) < 0)
    return verr_prefix(err, "the answer is not JSON");
  const char *t = json_str(json_get(doc, "access_token"));
  const struct json_value *exp = json_get(doc, "expires_in");
  int r = -1;
  if (json_get(doc, "error") != NULL || t == NULL) {
    char e[80], d[240];
    printable(json_str(json_get(doc, "error")), e, sizeof e);
    printable(json_str(json_get(doc, "error_description")), d, sizeof d);
    verr_set(err, VERR_SOURCE, "no access token: %s%s%s; check that the key is current "
             "(not deleted or rotated) and its account may read the bucket",
             e[0] ? e : "no error given", d[0] ? ": " : "", d);
  } else if (*t == '\0' || strlen(t) >= token_size) {
    verr_set(err, VERR_SOURCE, "the access token is empty or longer than %zu bytes",
             token_size - 1);
  } else if (exp != NULL && (!json_int64(exp, expires_in) || *expires_in < 1)) {
    verr_set(err, VERR_SOURCE, "\"expires_in\" is not a positive number of seconds");
  } else {
    r = 0;
    for (const char *p = t; *p; p++)
      if (*p <= 0x20 || *p >= 0x7f)
        r = verr_set(err, VERR_SOURCE, "the access token holds a character a header cannot");
    if (r == 0) {
      memcpy(token, t, strlen(t) + 1);
      if (exp == NULL)
        *expires_in = 3600;
    }
  }
  for (size_t i = 0; json_is(doc, JSON_OBJECT) && i < doc->count; i++)
    if (doc->members[i].value->type == JSON_STRING)
      explicit_bzero(doc->members[i].value->str, doc->members[i].value->str_len);
  json_free(doc);
  return r;
}
