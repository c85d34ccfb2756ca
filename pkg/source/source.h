/* vimport source: the bytes of an import, in order, from a file, stdin, http(s), a
 * registry image or a Cloud Storage object.
 *
 * source_open() returns a `struct vreader` (pkg/core/stream.h) whose state is the
 * source. The pipeline reads it once, in order; source_pread() re-reads exact ranges
 * of the same object for the qcow2 decoder where source_can_pread() says it can.
 *
 * Each kind sits behind one table of functions (internal.h, struct source_kind), in a
 * file of its own: file.c (a path, file:///path, and "-" for stdin), http.c and its
 * http_*.c (http://, https://), s3.c (http(s)://host/bucket/key with opts.kind "s3": an
 * S3 object at CDI's path-style endpoint, its requests signed by sigv4.c), registry.c
 * (docker://: a containerDisk's disk file, its layer blobs fetched by the http kind and
 * checked against their digests), gcs.c (gs://bucket/object, or
 * https://host/bucket/object with opts.kind "gcs": the object's bytes through the http
 * kind pinned to its generation, with a service account's bearer token, checked against
 * its crc32c and md5Hash). What only some kinds can do is asked through the
 * capability queries below, never by the kind's name. NBD exports are not a kind: they
 * are guest content read with block status (pkg/nbd, the pipeline's decode_nbd), not
 * bytes as served, so nothing here (sniff, digest, re-reads) would apply to them.
 *
 * HTTP and HTTPS go through libcurl on a transfer thread that fills a bounded ring
 * buffer (ring.h, opts.buffer_size) which read() drains (view() lends it, no copy), so
 * the network and the stages below overlap and memory never grows with the image. Runs
 * of zeros are not copied into the ring: view() lends them from a buffer of zeros,
 * which stays in the consumers' caches. The transfer:
 *   - verifies TLS by default; opts.ca_dir adds every PEM file of a directory (CDI
 *     mounts a ConfigMap there) to the system trust; insecure_skip_verify turns
 *     verification off and logs a warning;
 *   - sends basic auth and extra headers, honours http_proxy/https_proxy/no_proxy
 *     from the environment (libcurl does), follows up to max_redirects redirects;
 *   - resumes a dropped, stalled (no byte for stall_timeout_s) or short transfer with
 *     "Range: bytes=<received>-" and "If-Range: <strong ETag or Last-Modified of the
 *     first response>". A 206 continues; a 200 means the object changed or the server
 *     ignores Range: the bytes are never spliced, the read fails (unless the reader has
 *     not taken a byte yet, then the transfer simply starts over);
 *   - retries 5xx, 408, 429 and network errors with exponential backoff, at most
 *     opts.retries times in a row without progress.
 * Every byte of the object reaches the reader exactly once, whatever the resumes.
 *
 * Errors are VERR_SOURCE (network, HTTP status, changed object), VERR_USAGE (bad
 * options), VERR_IO (files) or VERR_NOMEM. Messages name the redacted URL (never
 * userinfo, query strings, passwords or header values) and say what to do.
 */
#ifndef VIMPORT_SOURCE_H
#define VIMPORT_SOURCE_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"

/* The ring between curl and read(). Its slack absorbs the moments when one of its two
 * consumers (the digest thread, the decoder) or the transfer is not scheduled: on W3 the
 * digest thread waited 0.7-1.1 s for bytes with 4 MiB, 0.2-0.5 s with 16 MiB. */
#define SOURCE_DEFAULT_BUFFER_SIZE (16u << 20)
/* CURLOPT_BUFFERSIZE. 2 MiB measured no better on W3 (A/B, 5 runs each). */
#define SOURCE_DEFAULT_CURL_BUFFER (512u << 10)
#define SOURCE_DEFAULT_RETRIES 5
#define SOURCE_DEFAULT_RETRY_DELAY_MS 1000
#define SOURCE_MAX_RETRY_DELAY_MS 30000
#define SOURCE_DEFAULT_STALL_TIMEOUT_S 60
#define SOURCE_DEFAULT_CONNECT_TIMEOUT_S 30
#define SOURCE_DEFAULT_MAX_REDIRECTS 10
#define SOURCE_RETRIES_NONE UINT_MAX /* opts.retries: give up at the first failure */
#define SOURCE_STOP_POLL_MS 100      /* how often a wait looks at opts.stop */

/* Zero-initialise, set `url`, leave the rest 0 for the defaults above. The strings are
 * copied by source_open(); the caller keeps them. */
struct source_opts {
  const char *url;          /* http://, https://, file:///path, a plain path, or "-" (stdin) */
  const char *ca_dir;       /* directory of PEM CA files added to the system trust, or NULL */
  const char *ca_file;      /* one PEM CA bundle file added the same way, or NULL */
  const char *proxy_ca_dir; /* CDI's cluster-wide proxy CA directory (/proxycerts), or NULL:
                             * its PEM files are added the same way when it exists; a
                             * missing directory or an unreadable or certificate-less file
                             * in it is skipped, as CDI's createCertPool does */
  int insecure_skip_verify; /* no TLS verification at all (logged as a warning) */
  const char *basic_user;   /* HTTP basic auth, or NULL; for s3, the access key id and
                             * (basic_password) the secret key that sign the requests */
  const char *basic_password;
  const char *const *extra_headers; /* "Name: value" lines, sent on every request */
  size_t n_extra_headers;
  unsigned retries;          /* retries after failed attempts that brought no new byte,
                              * in a row, before giving up; 0: default;
                              * SOURCE_RETRIES_NONE: none (a spec's "retries: 0") */
  unsigned retry_delay_ms;   /* first backoff delay, doubled each time; 0: default */
  unsigned stall_timeout_s;  /* no byte for this long counts as a drop; 0: default */
  unsigned connect_timeout_s;
  unsigned max_redirects;    /* 0: default */
  size_t buffer_size;        /* ring buffer bytes; 0: default; at least 64 KiB */
  /* Keep every byte until a digest (pkg/digest's tap, given source_digest_ring())
   * has read it in place as the ring's second consumer, so the reader's thread neither
   * hashes nor copies for it. A kind without a ring ignores it (the tap copies). Set it
   * only when a tap will be made: otherwise the ring fills and the transfer waits. */
  int lend_to_digest;
  /* Set to non-zero (from a signal handler) to stop: source_open() and read() stop
   * waiting for a stalled server or pipe within SOURCE_STOP_POLL_MS and fail with
   * VERR_CANCELLED. A condition wait does not return on a signal, so without this a
   * SIGTERM during a stall would wait for the server. NULL: never. */
  const volatile sig_atomic_t *stop;
  /* A registry source (docker://, registry.c): the architecture to pick from an index
   * (NULL: the machine's, and no check of a single manifest), and the most bytes one
   * layer may decompress to (a gzip bomb; 0: unbounded). basic_user/basic_password are
   * the registry's credentials; extra_headers are not sent to a registry. */
  const char *registry_architecture;
  uint64_t max_layer_bytes;
  /* Pick the row by its name ("s3", "gcs") instead of by the location's scheme: an s3
   * object and a gcs one at another endpoint (CDI's https://host/bucket/object) are
   * http(s) URLs, which the http row would take. NULL: by scheme. */
  const char *kind;
  /* A gcs source (gcs.c): the service-account key file (CDI's
   * GOOGLE_APPLICATION_CREDENTIALS), or NULL for anonymous requests. */
  const char *gcs_credentials;
};

#define SOURCE_INFO_STR 512

/* What is known about the source. For HTTP the fields describe the first response
 * (the object being imported), except the counters. */
struct source_info {
  const char *kind;                   /* "http", "s3", "gcs", "registry", "file", "stdin" */
  char location[2048];                /* final URL, redacted; or the path; or "-" */
  char content_type[SOURCE_INFO_STR]; /* "" if unknown */
  int64_t content_length;             /* object size in bytes, -1 if unknown */
  char etag[SOURCE_INFO_STR];         /* "" if none */
  char last_modified[SOURCE_INFO_STR];
  int accepts_ranges;                 /* the server said "Accept-Ranges: bytes" */
  int http_status;                    /* status of the first response, 0 for files */
  uint64_t bytes_received;            /* distinct object bytes received so far */
  unsigned resumes;                   /* Range requests made to continue the transfer */
  unsigned retries;                   /* failed attempts so far (all kinds) */
  char checked[SOURCE_INFO_STR];      /* what the source itself proved of the bytes, for
                                       * the report ("crc32c and md5Hash of gs://b/o
                                       * generation N"), "" when nothing */
  /* The digest the store keeps of the object ("sha256:<hex>", "md5:<hex>"), which the
   * import may check in the same pass, and the header it came from; "" when none (every
   * kind but s3). */
  char object_checksum[160];
  char object_checksum_from[64];
};

struct ring;

/* What a registry source found (source_image()): the image, and where its disk was. */
#define SOURCE_IMAGE_MAX_LAYERS 16 /* layer digests kept for the report */
#define SOURCE_IMAGE_MAX_LABELS 16
#define SOURCE_IMAGE_NAME_MAX 4097 /* a tar name (pkg/archive TAR_NAME_MAX) and its NUL */
struct source_image {
  char manifest_digest[80];           /* the image manifest's "sha256:<hex>" */
  char index_digest[80];              /* the index it was picked from, or "" */
  char layer_digests[SOURCE_IMAGE_MAX_LAYERS][80]; /* the layers read, in order */
  size_t n_layers;
  char disk_file[SOURCE_IMAGE_NAME_MAX]; /* the disk's name in its layer, "disk/NAME" */
  struct {
    char key[256];
    char value[512];
  } labels[SOURCE_IMAGE_MAX_LABELS];  /* CDI's envsToLabels of the config's env */
  size_t n_labels;
};

/* Open the source `opts->url`. For HTTP this waits for the first response's headers,
 * so a wrong URL, bad credentials, a refused certificate or a redirect loop fail here.
 * On success *out owns the reader: close it with vreader_close(), which stops the
 * transfer thread. Returns 0, or -1 with `err` filled. */
int source_open(const struct source_opts *opts, struct vreader **out, struct verr *err);

/* A snapshot of what is known about source reader `r` (made by source_open), or NULL
 * if `r` is not a source. The pointer stays valid until the next call on `r` or until
 * `r` is closed. Thread-safe against the transfer thread. */
const struct source_info *source_info(struct vreader *r);

/* The ring a digest may read in place as its second consumer (pkg/digest), when the
 * kind keeps its bytes in one and `r` was opened with opts.lend_to_digest; else NULL
 * (hash what read() returns). */
struct ring *source_digest_ring(struct vreader *r);

/* What the registry source `r` found (valid while `r` is open; complete once read()
 * returned 0), or NULL when `r` is not an image from a registry. */
const struct source_image *source_image(struct vreader *r);

/* Make a read of `r` that waits for the network, on another thread, return soon with
 * VERR_CANCELLED, and every later one too: the transfer stops. Only close() may follow.
 * Thread-safe. A kind without a transfer thread (file, stdin) ignores it. */
void source_interrupt(struct vreader *r);

/* Whether source_pread() can serve `r`: a file that can seek, an HTTP object (a Range
 * request, refused cleanly if the server ignores Range); never stdin. */
int source_can_pread(struct vreader *r);

/* The local path of `r` that another program (qemu-nbd) may open itself, or NULL. */
const char *source_local_path(struct vreader *r);

/* The buffer of zeros that view() on source reader `r` lends runs of zeros from
 * (struct vzeros), for as long as `r` is open; {NULL, 0} when it lends none (files,
 * stdin, an HTTP ring too small for zero granules). */
struct vzeros source_zeros(struct vreader *r);

/* Read exactly `len` bytes at `offset` of the same object: plain pread for files; for
 * HTTP a separate Range request guarded by If-Range, which fails if the object changed
 * or the server ignores Range. A stream that cannot seek (stdin from a pipe) fails
 * with VERR_SOURCE and sys_errno ENOTSUP; ask source_can_pread() first.
 * Reading past the end is an error. May be called while read() is in progress, from
 * the reader's thread. Returns 0, or -1 with `err` filled. */
int source_pread(struct vreader *r, void *buf, size_t len, uint64_t offset, struct verr *err);

/* HTTP response header parsing, used by the transfer and exposed for the fuzz target
 * and unit tests. Pure functions, no allocation. */

struct source_http_response {
  int status;             /* from the status line; 0 until one arrived */
  int64_t content_length; /* -1 if absent or unparsable */
  int has_content_range;  /* a parsable "Content-Range: bytes first-last/total" */
  uint64_t range_first, range_last;
  int64_t range_total;    /* -1 for "*" */
  int chunked;            /* "Transfer-Encoding: chunked" */
  int accept_ranges;      /* "Accept-Ranges: bytes" */
  int bad_header;         /* a header we rely on was present but did not parse */
  char etag[SOURCE_INFO_STR];
  char last_modified[SOURCE_INFO_STR];
  char content_type[SOURCE_INFO_STR];
  /* S3's own (s3.c): x-amz-checksum-sha256 (base64), x-amz-server-side-encryption, and
   * whether x-amz-server-side-encryption-customer-algorithm was sent (SSE-C) */
  char amz_checksum_sha256[128];
  char amz_sse[64];
  int amz_sse_customer;
};

/* Forget everything: the state before a response's status line. */
void source_http_response_reset(struct source_http_response *resp);

/* Feed one header line as libcurl's header callback sees it ("HTTP/1.1 200 OK\r\n",
 * "Name: value\r\n", or the empty line). Not NUL-terminated. A status line resets
 * `resp` first (redirects and 1xx send several header blocks). Returns 1 for the empty
 * line that ends a block, 0 otherwise. Never fails: malformed lines are ignored or
 * recorded in resp->bad_header. */
int source_http_parse_line(struct source_http_response *resp, const char *line, size_t len);

/* Parse a status line "HTTP/x[.y] NNN [reason]". Returns 0 and *status, or -1. */
int source_http_parse_status(const char *line, size_t len, int *status);

/* Parse a Content-Range value "bytes first-last/total" ("total" may be "*").
 * Returns 0, or -1 if malformed (including first > last, last >= total, and the
 * unsatisfied form "bytes * /total"). */
int source_http_parse_content_range(const char *value, size_t len, uint64_t *first,
                                    uint64_t *last, int64_t *total);

/* Whether an ETag value is strong (not W/"...") and well-formed ("..."): only strong
 * validators may guard a resume (RFC 9110 13.1.5). */
int source_http_etag_is_strong(const char *etag);

/* The CA trust of an http(s) client that is not a source (the registry's poller): the
 * same as a source's (proxy_ca_dir when it is a directory, lenient; ca_dir strict), as
 * one PEM blob for CURLOPT_CAINFO_BLOB that starts with libcurl's default bundle.
 * *blob is NULL (libcurl's own trust is enough) when neither directory is given;
 * otherwise malloc'd. */
int source_ca_blob(const char *proxy_ca_dir, const char *ca_dir, char **blob, size_t *blob_len,
                   struct verr *err);

#endif
