/* vimport source, the s3 kind: its pure functions, exposed for the unit tests and the
 * fuzz target. Internal to pkg/source (the contract is source.h).
 *
 *   sigv4.c  AWS Signature Version 4 (the Authorization header of a request)
 *   s3.c     the kind: CDI's endpoint (path style), its region, the signed GET, the
 *            error body S3 sends, the object's own checksum
 */
#ifndef VIMPORT_SOURCE_S3_H
#define VIMPORT_SOURCE_S3_H

#include <stddef.h>

#include "core/error.h"

/* The SHA-256 of an empty payload: every GET's x-amz-content-sha256. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGV4_AUTH_MAX 1024 /* an Authorization value, with a long access key id */

/* One signed header: a lowercase name and its value, spaces already trimmed. */
struct sigv4_header {
  const char *name;
  const char *value;
};

/* Everything a signature covers. Strings are used as given: the caller encodes the URI
 * (s3_uri_encode) and sorts the headers by name. */
struct sigv4_request {
  const char *method;          /* "GET" */
  const char *canonical_uri;   /* "/bucket/key", URI-encoded once */
  const char *canonical_query; /* "" for none */
  const struct sigv4_header *headers; /* sorted by name; host and x-amz-date among them */
  size_t n_headers;
  const char *payload_sha256;  /* hex; the x-amz-content-sha256 value */
  const char *region;
  const char *service;         /* "s3" */
  const char *amz_date;        /* "YYYYMMDDTHHMMSSZ", the x-amz-date value */
  const char *access_key_id;
  const char *secret_key;      /* secret: only its HMAC leaves this function */
};

/* The Authorization value "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
 * Signature=<hex>" into `out`. Pure (no clock, no state). Returns 0, or -1 when an input
 * is malformed (a date not 16 characters) or `out` is too small. */
int sigv4_authorization(const struct sigv4_request *req, char *out, size_t out_size);

/* The canonical request and the signing key, exposed for AWS's published vectors. */
int sigv4_canonical_request(const struct sigv4_request *req, char *out, size_t out_size);
/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date8), region), service), "aws4_request") */
int sigv4_signing_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char key[32]);

/* Percent-encode `len` bytes as S3 wants a path: unreserved characters and '/' stay,
 * every other byte becomes %XX (uppercase). Returns 0, or -1 if `out` is too small. */
int s3_uri_encode(const char *s, size_t len, char *out, size_t out_size);

/* CDI's endpoint, path style: http(s)://host[:port]/bucket/key... */
#define S3_NAME_MAX 1025 /* S3 keys are at most 1024 bytes */
struct s3_endpoint {
  char scheme[8];               /* "http" or "https" */
  char host[512];               /* host[:port] as in the URL (IPv6 in brackets) */
  char bucket[256];             /* decoded */
  char key[S3_NAME_MAX];        /* decoded, '/' kept */
  char region[256];             /* CDI's extractRegion */
};

/* Parse `url` (userinfo, query and fragment are ignored, as CDI's client does). Returns 0,
 * or -1 with VERR_USAGE saying what is missing. */
int s3_parse_endpoint(const char *url, struct s3_endpoint *ep, struct verr *err);

/* CDI's extractRegion of a host[:port]: "<r>" of "s3.<r>.amazonaws.com", else the host's
 * first dot-separated label (the port stays when there is no dot, as in CDI). */
void s3_region_of(const char *host, char *out, size_t out_size);

/* What an S3 error body (<Error><Code>..</Code><Message>..</Message>...) says. The
 * fields are printable ASCII, entities decoded, cut to their size; "" when absent. */
struct s3_error {
  char code[64];
  char message[256];
  char endpoint[256]; /* PermanentRedirect's <Endpoint> */
};

/* Parse untrusted bytes. Returns 0 when a <Code> was found, -1 otherwise (out is still
 * valid, all "" or partial). Never reads past `len`. */
int s3_parse_error(const char *body, size_t len, struct s3_error *out);

/* The object's own digest from its response headers, as "sha256:<hex>" or "md5:<hex>":
 * x-amz-checksum-sha256 (base64 of a full-object SHA-256), else a single-part ETag (the
 * MD5 of the bytes unless the object is encrypted with SSE-KMS or SSE-C). *from names
 * the header. Returns 0, or -1 when the object carries neither. */
int s3_object_checksum(const char *checksum_sha256_b64, const char *etag, const char *sse,
                       int sse_customer, char *out, size_t out_size, const char **from);

#endif
