/* vimport source, the http kind: what its files share. Internal to pkg/source.
 *
 *   http.c           the reader side: open, read/view from the ring, pread, info, close
 *   http_transfer.c  the streaming transfer and its policy: attempts, resume with
 *                    Range/If-Range and the checks of each answer, retries, backoff
 *   http_curl.c      libcurl: options, the request, the callbacks, error classification
 *   ring.c           the buffer between the transfer thread and the readers
 *
 * The transfer thread owns ring.produced: the count of distinct object bytes put in the
 * ring. Each attempt asks for bytes [produced, end). When an attempt fails after the
 * first response was accepted, the next one sends "Range: bytes=<produced>-" with
 * "If-Range: <validator>" and accepts only a 206 starting exactly there, so every byte
 * reaches the reader once and all of them come from the same object.
 */
#ifndef VIMPORT_SOURCE_HTTP_H
#define VIMPORT_SOURCE_HTTP_H

#include <curl/curl.h>
#include <time.h>

#include "source/internal.h"

enum attempt_outcome {
  ATTEMPT_DONE,      /* the whole object (or range) arrived */
  ATTEMPT_RETRY,     /* transient: try again (resume) after a backoff */
  ATTEMPT_FATAL,     /* give up with the attempt's error */
  ATTEMPT_CANCELLED, /* the reader was closed */
};

/* What a kind built on this transport (s3.c, gcs.c) changes in its requests; the ring,
 * resume, retries, digest lending and zero runs stay the transport's. Every function
 * gets the kind's `arg` (struct http_config.hooks_arg), is called from the transfer
 * thread or the reader's (pread), and must not block for long (a token refresh is a
 * bounded request). */
struct http_hooks {
  /* Append this request's own header lines. Called before every request (the first,
   * each resume, each re-read), so a signature dated now covers each one and a token
   * can be refreshed during a long import. Returns 0, or -1 with `err` (out of memory,
   * no token): the request is not made and the error ends the transfer. `ranged`: a
   * resume or re-read (a Range request). */
  int (*request_headers)(void *arg, int ranged, struct curl_slist **headers,
                         struct verr *err);
  /* Every object byte once and in order, as the transfer receives it (before the
   * ring), at its offset (0 again when a transfer nothing was read from starts over).
   * NULL: not asked. */
  void (*object_bytes)(void *arg, uint64_t offset, const void *buf, size_t len);
  /* The object's end, `length` bytes: 0, or -1 with `err` to fail the transfer, so the
   * reader never sees the end of an object that did not check. NULL: not asked. */
  int (*object_end)(void *arg, uint64_t length, struct verr *err);
  /* A 401 means the kind's token was refused, not that a password is wrong. */
  int bearer;
  /* The first response was accepted as the object: fill what it says beyond http (the
   * object's own checksum). Under the ring lock. NULL: nothing. */
  void (*adopt)(void *arg, const struct source_http_response *resp, struct source_info *info);
  /* A refused response (status >= 300) came with this body (cut to HTTP_ERROR_BODY_MAX):
   * rewrite `err`, whose code and verdict stay, in the words of the server. NULL: the
   * body is not read. */
  void (*explain)(void *arg, int status, const char *body, size_t len, struct verr *err);
  void (*free)(void *arg);
  /* Resume and re-read with If-Match (If-Unmodified-Since for a date) rather than
   * If-Range: a changed object is refused with 412 instead of sent whole. */
  int if_match;
  /* Do not follow redirects: a signed request is valid for its own host only. */
  int no_redirects;
};

#define HTTP_ERROR_BODY_MAX 4096 /* S3's error documents are a few hundred bytes */

/* Options copied at open; read-only afterwards, shared by the thread and pread. */
struct http_config {
  const struct http_hooks *hooks; /* NULL: plain http */
  void *hooks_arg;                /* owned when hooks->free: called at close */
  char *url;
  char redacted[2048];
  char *user;
  char *password;
  struct curl_slist *headers; /* opts.extra_headers */
  char *ca_blob;              /* NULL: libcurl's default trust */
  size_t ca_blob_len;
  int insecure;
  unsigned retries;
  unsigned retry_delay_ms;
  unsigned stall_timeout_s;
  unsigned connect_timeout_s;
  unsigned max_redirects;
};

struct http_source {
  struct http_config cfg;
  struct ring ring; /* its lock also guards the fields marked (ring lock) */
  pthread_t thread;
  int thread_started;
  int opened;                      /* (ring lock) the first response was accepted */
  struct source_info info;         /* (ring lock) */
  char validator[SOURCE_INFO_STR]; /* (ring lock) If-Range value, "" if none */
  int64_t total;                   /* (ring lock) object size, -1 if unknown */
  CURL *pread_handle;              /* reader's thread only */
};

struct http_attempt;

/* What an attempt does with the response: accept or refuse it once its headers are
 * complete, and take its body bytes. Both return 0, or -1 having set the verdict. */
struct attempt_ops {
  int (*check)(struct http_attempt *a);
  int (*deliver)(struct http_attempt *a, const char *buf, size_t len);
};

/* One request and its response. */
struct http_attempt {
  struct http_source *src;
  const struct attempt_ops *ops;
  CURL *h;
  uint64_t first;             /* first object byte asked for */
  int64_t last;               /* last byte asked for, -1: to the end */
  int ranged;                 /* sent Range (and If-Range when there is a validator) */
  void *sink;                 /* pread's buffer */
  struct source_http_response resp;
  int checked;
  enum attempt_outcome verdict;
  int has_verdict;
  struct verr err;
  uint64_t body_bytes;
  int stalled;
  curl_off_t last_dlnow;
  struct timespec last_byte;
  char curl_error[CURL_ERROR_SIZE];
  int collecting;                   /* a refused response's body goes to error_body */
  size_t error_len;
  char error_body[HTTP_ERROR_BODY_MAX];
};

/* http_curl.c */
int http_config_init(struct http_config *c, const struct source_opts *o, struct verr *err);
void http_config_free(struct http_config *c);
int http_setup_handle(struct http_source *src, CURL *h, struct verr *err);
/* Run one request for bytes [a->first, a->last] on a->h. */
CURLcode http_perform(struct http_attempt *a);
/* The URL the attempt ended at, redacted. */
void http_effective_url(struct http_attempt *a, char *out, size_t out_size);
/* Set the attempt's verdict; returns -1. */
int http_verdict(struct http_attempt *a, enum attempt_outcome v);
/* Refuse a non-2xx status with a message that says what to do about it. */
int http_check_status(struct http_attempt *a);
/* What an attempt that ended with `rc` means. */
enum attempt_outcome http_classify(struct http_attempt *a, CURLcode rc);

/* http.c: the reader side, shared by the kinds built on this transport. open takes
 * `hooks` (NULL: plain http) and owns `hooks_arg` from the call on, also on failure. */
int http_open_hooked(const struct source_opts *opts, const char *kind,
                     const struct http_hooks *hooks, void *hooks_arg, void **state,
                     struct verr *err);
ssize_t http_read(void *state, void *buf, size_t len, struct verr *err);
ssize_t http_view(void *state, const void **view, size_t len, struct verr *err);
int http_pread(void *state, void *buf, size_t len, uint64_t offset, struct verr *err);
void http_info(void *state, struct source_info *out);
struct ring *http_ring(void *state);
void http_close(void *state);

/* http_transfer.c */
void *http_transfer_main(void *src);
/* Sleep before retry number `failures` (1, 2, ...); -1 if the reader was closed. */
int http_backoff(struct http_source *src, unsigned failures);

#endif
