/* vimport source: AWS Signature Version 4, the signature S3 (and every AWS-compatible
 * store) checks on each request.
 *
 * Ours rather than libcurl's CURLOPT_AWS_SIGV4: the S3 kind must sign x-amz-checksum-mode
 * and a Host it sets itself, on libcurl 7.88 (Debian 12, and the static build) whose
 * signer neither adds x-amz-content-sha256 for GET nor lets us see what it signed; and a
 * pure function can be checked against AWS's published vectors (tests/unit/test_s3.c).
 * Pure: no clock, no state; the secret leaves only as HMACs and its copies are wiped.
 */
#include "source/s3.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static void hex(const unsigned char *md, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[md[i] >> 4];
    out[2 * i + 1] = digits[md[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hmac(const unsigned char *key, size_t key_len, const char *data,
                unsigned char out[32])
{
  unsigned len = 0;
  return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, strlen(data), out,
              &len) != NULL && len == 32 ? 0 : -1;
}

int sigv4_signing_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char key[32])
{
  char seed[512];
  int n = snprintf(seed, sizeof seed, "AWS4%s", secret);
  if (n < 0 || (size_t)n >= sizeof seed)
    return -1;
  unsigned char k[32];
  int rc = hmac((const unsigned char *)seed, (size_t)n, date8, k) < 0 ||
           hmac(k, 32, region, k) < 0 || hmac(k, 32, service, k) < 0 ||
           hmac(k, 32, "aws4_request", key) < 0 ? -1 : 0;
  OPENSSL_cleanse(seed, sizeof seed);
  OPENSSL_cleanse(k, sizeof k);
  return rc;
}

/* "host;x-amz-date": the names of the signed headers, in order. */
static int signed_header_names(const struct sigv4_request *req, char *out, size_t size)
{
  size_t w = 0;
  out[0] = '\0';
  for (size_t i = 0; i < req->n_headers; i++) {
    int n = snprintf(out + w, size - w, "%s%s", i ? ";" : "", req->headers[i].name);
    if (n < 0 || (size_t)n >= size - w)
      return -1;
    w += (size_t)n;
  }
  return 0;
}

int sigv4_canonical_request(const struct sigv4_request *req, char *out, size_t out_size)
{
  char names[512];
  if (signed_header_names(req, names, sizeof names) < 0)
    return -1;
  int n = snprintf(out, out_size, "%s\n%s\n%s\n", req->method, req->canonical_uri,
                   req->canonical_query);
  for (size_t i = 0; i < req->n_headers && n >= 0 && (size_t)n < out_size; i++)
    n += snprintf(out + n, out_size - (size_t)n, "%s:%s\n", req->headers[i].name,
                  req->headers[i].value);
  if (n >= 0 && (size_t)n < out_size)
    n += snprintf(out + n, out_size - (size_t)n, "\n%s\n%s", names, req->payload_sha256);
  return n >= 0 && (size_t)n < out_size ? 0 : -1;
}

int sigv4_authorization(const struct sigv4_request *req, char *out, size_t out_size)
{
  char canonical[8192], names[512], scope[400], to_sign[1024], canonical_hex[65], sig_hex[65];
  unsigned char md[32], key[32];
  char date8[9];
  if (strlen(req->amz_date) != 16 || sigv4_canonical_request(req, canonical, sizeof canonical) < 0 ||
      signed_header_names(req, names, sizeof names) < 0)
    return -1;
  memcpy(date8, req->amz_date, 8);
  date8[8] = '\0';
  int n = snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date8, req->region,
                   req->service);
  if (n < 0 || (size_t)n >= sizeof scope)
    return -1;
  EVP_Digest(canonical, strlen(canonical), md, NULL, EVP_sha256(), NULL);
  hex(md, 32, canonical_hex);
  n = snprintf(to_sign, sizeof to_sign, "AWS4-HMAC-SHA256\n%s\n%s\n%s", req->amz_date, scope,
               canonical_hex);
  if (n < 0 || (size_t)n >= sizeof to_sign)
    return -1;
  if (sigv4_signing_key(req->secret_key, date8, req->region, req->service, key) < 0 ||
      hmac(key, 32, to_sign, md) < 0) {
    OPENSSL_cleanse(key, sizeof key);
    return -1;
  }
  OPENSSL_cleanse(key, sizeof key);
  hex(md, 32, sig_hex);
  n = snprintf(out, out_size, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
               "Signature=%s", req->access_key_id, scope, names, sig_hex);
  return n >= 0 && (size_t)n < out_size ? 0 : -1;
}
