/* vimport source, the gcs kind: what gcs.c and gcs_auth.c share, and the parsers of
 * untrusted bytes they use (exposed for tests/fuzz/fuzz_gcs.c and tests/unit/test_gcs.c).
 * Internal to pkg/source and its tests.
 *
 *   gcs.c       the row: gs://bucket/object or https://host/bucket/object (CDI's
 *               extractGcsBucketAndObject / extractGcsBucketObjectAndHost); the object's
 *               metadata (JSON API), then its bytes through the http kind (ring, resume,
 *               retries) from /storage/v1/b/B/o/O?alt=media&generation=N, so a resume
 *               can only continue the generation the import started with; crc32c and
 *               md5Hash checked on the transfer thread as the bytes arrive.
 *   gcs_auth.c  a service-account key file: an RS256 JWT for the devstorage.read_only
 *               scope, exchanged at the file's token_uri for a bearer token, refreshed
 *               before it expires. The private key and the tokens never reach a log or
 *               a message.
 */
#ifndef VIMPORT_SOURCE_GCS_H
#define VIMPORT_SOURCE_GCS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define GCS_DEFAULT_HOST "https://storage.googleapis.com"
#define GCS_SCOPE "https://www.googleapis.com/auth/devstorage.read_only"
#define GCS_MAX_DOC (1u << 20) /* metadata, key file, token answer: a few KiB each */
#define GCS_TOKEN_MAX 2048     /* Google's access tokens are ~200 bytes; room for others */

/* Where an object is: gs://bucket/object -> GCS_DEFAULT_HOST; https://host/bucket/object
 * -> https://host. The object name keeps its slashes. */
struct gcs_location {
  char base[512];   /* scheme://host[:port], no trailing slash */
  char bucket[256]; /* GCS bucket names are at most 222 bytes */
  char object[1025];/* GCS object names are at most 1024 bytes */
};

/* Parse `url`; VERR_USAGE naming what is wrong. */
int gcs_parse_location(const char *url, struct gcs_location *out, struct verr *err);

/* The object's metadata as the JSON API gives it (objects.get). */
struct gcs_object_meta {
  int64_t generation;
  int64_t size;
  bool has_crc32c;
  uint32_t crc32c;            /* from the base64 of its 4 big-endian bytes */
  char crc32c_b64[16];
  bool has_md5;               /* absent for composite objects */
  unsigned char md5[16];
  char md5_b64[32];
};

/* Parse an objects.get answer. generation and size are required (decimal strings, as
 * Google sends int64s, or numbers); crc32c and md5Hash when present must decode to 4 and
 * 16 bytes. VERR_FORMAT naming the field. */
int gcs_parse_object_meta(const void *buf, size_t len, struct gcs_object_meta *out,
                          struct verr *err);

/* A service-account key file, parsed. private_key_pem is a secret. */
struct gcs_key {
  char client_email[256];
  char private_key_id[128];
  char token_uri[512];
  char *private_key_pem; /* malloc'd; wipe with gcs_key_free */
};

/* Parse a key file's JSON: type "service_account", client_email, private_key (PEM),
 * token_uri (http or https; default Google's). Messages never hold the key. */
int gcs_parse_key(const void *buf, size_t len, struct gcs_key *out, struct verr *err);
void gcs_key_free(struct gcs_key *k);

/* Parse a token endpoint's answer: access_token (printable, < GCS_TOKEN_MAX) and
 * expires_in (seconds, >= 1; 3600 when absent). An error answer ({"error": ...,
 * "error_description": ...}) becomes VERR_SOURCE quoting both (bounded; they are the
 * issuer's words, not secrets). */
int gcs_parse_token(const void *buf, size_t len, char *token, size_t token_size,
                    int64_t *expires_in, struct verr *err);

/* ---- the token source (gcs_auth.c) ---- */

struct gcs_auth;

struct gcs_auth_opts {
  const char *key_file;       /* the service-account key file */
  const char *proxy_ca_dir;   /* TLS for the token endpoint: as the source's */
  const char *ca_dir;
  int insecure;
  unsigned connect_timeout_s; /* 0: the source's default */
  const volatile sig_atomic_t *stop; /* source_opts.stop: ends a token request early */
};

/* Read and check the key file (no network yet). */
int gcs_auth_open(const struct gcs_auth_opts *o, struct gcs_auth **out, struct verr *err);
void gcs_auth_free(struct gcs_auth *a);
/* The service account's e-mail, for messages. */
const char *gcs_auth_account(const struct gcs_auth *a);
/* "Authorization: Bearer <token>" (for gcs.c's request hook), fetching or refreshing the
 * token first when it has less than a quarter of its life (at most 60 s) left.
 * Thread-safe. */
int gcs_auth_header(void *auth, char *line, size_t size, struct verr *err);

/* base64 (standard alphabet, padding required) of at most out_size bytes; returns the
 * decoded length or -1. Shared by the two parsers above. */
long gcs_base64_decode(const char *in, unsigned char *out, size_t out_size);

#endif
