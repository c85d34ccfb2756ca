/* vimport source: http and https through libcurl.
 *
 * A transfer thread runs curl_easy_perform() and copies the body into a bounded ring
 * buffer; read() drains it, or view() lends the reader the ring's bytes in place. The
 * ring is the only buffer between the network and the pipeline, so memory is
 * opts.buffer_size plus libcurl's receive buffer. Runs of zeros are not copied: the
 * ring flags them per 64 KiB granule, and view() lends them from a buffer of zeros.
 *
 * The thread owns `received`: the count of distinct object bytes put in the ring. Each
 * attempt asks for bytes [received, end). When an attempt fails after the first response
 * was accepted, the next one sends "Range: bytes=<received>-" with "If-Range: <validator>"
 * and accepts only a 206 starting exactly at `received`, so every byte reaches the reader
 * once and all of them come from the same object.
 *
 * Stall detection is ours rather than CURLOPT_LOW_SPEED_*: the write callback blocks
 * while the ring is full (a slow pipeline), and libcurl's speed check would take that
 * for a slow server. The progress callback measures time since the last body byte
 * *received*, with the time spent waiting for the reader excluded.
 */
#include "source/internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cleanup.h"
#include "core/hugebuf.h"
#include "core/log.h"
#include "core/zero.h"

/* Zero granules of the ring (ring_fill) and the run of zeros lent for them at most. */
#define RING_GRANULE ((size_t)64 << 10)
#define RING_ZEROS ((size_t)1 << 20)

#define MIN_BUFFER_SIZE (64u << 10)

enum attempt_outcome {
  ATTEMPT_DONE,      /* the whole object (or range) arrived */
  ATTEMPT_RETRY,     /* transient: try again (resume) after a backoff */
  ATTEMPT_FATAL,     /* give up with the attempt's error */
  ATTEMPT_CANCELLED, /* the reader was closed */
};

/* Options copied at open; read-only afterwards, shared by the thread and pread. */
struct http_config {
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
  const volatile sig_atomic_t *stop; /* opts.stop */
};

struct http_source {
  struct http_config cfg;

  pthread_mutex_t lock;
  pthread_cond_t data_ready;  /* reader waits: bytes, end, error, first response */
  pthread_cond_t space_ready; /* thread waits: ring space, cancel */
  pthread_cond_t digest_ready; /* digest thread waits: bytes to hash, end, cancel */
  pthread_t thread;
  int thread_started;

  /* Under `lock`. */
  unsigned char *ring;
  size_t ring_size;
  /* Zero granules (ring_fill): 0 when the ring is too small for them. A granule's flag
   * changes only while no consumer may look at any of its bytes (ring_room), so a
   * consumer reads the flags of its unread bytes, like the bytes, outside the lock. */
  size_t gran;
  atomic_uchar *gran_zero;   /* per granule: its bytes are zeros, left out of the ring */
  const unsigned char *zeros; /* RING_ZEROS bytes of zeros, lent for zero granules;
                               * never written: the raw decoder and the digest trust a
                               * view inside it to be zeros (source_zeros()) */
  size_t ring_head; /* next byte for read() */
  size_t ring_len;
  uint64_t consumed; /* bytes taken by read() or lent by view() */
  int taking;        /* read() is copying out of the ring */
  size_t lent;       /* bytes at ring_head that view() lent the reader: still in ring_len,
                      * so the transfer cannot overwrite them, until the reader's next call */
  uint64_t received; /* object bytes put in the ring (written by the thread only) */
  int opened;        /* the first response was accepted */
  int done;
  int failed;
  int cancelled;
  struct verr error;
  struct source_info info;
  char validator[SOURCE_INFO_STR]; /* If-Range value, "" if the server gave none */
  int64_t total;                   /* object size, -1 if unknown */

  /* The object's digest (opts.digest): a second consumer of the ring, on a thread of
   * its own, hashes the bytes in place, so the reader's thread neither hashes nor copies
   * for it. Both consumers' unread bytes end at the ring's tail; the longer of the two
   * runs is what the ring holds. Under `lock`, except digest_ctx while `digesting`. */
  const EVP_MD *digest_md;
  EVP_MD_CTX *digest_ctx;
  size_t digest_len;      /* ring bytes before the tail not hashed yet */
  int digesting;          /* the digest thread is hashing ring bytes outside the lock */
  int digest_ended;       /* the digest thread stopped: the transfer ended or failed */
  int digest_failed;      /* OpenSSL refused an update */
  uint64_t digested;      /* object bytes hashed */
  pthread_t digest_thread;
  int digest_started;

  struct source_info snapshot; /* returned by source_info(), reader's thread only */
  CURL *pread_handle;          /* reader's thread only */
};

struct http_attempt;

static int http_wait_data(struct http_source *src);
static int http_stop_error(const struct http_source *src, struct verr *err);

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
};

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double since_s(const struct timespec *t)
{
  return now_s() - ((double)t->tv_sec + (double)t->tv_nsec / 1e9);
}

static void effective_url(struct http_attempt *a, char *out, size_t out_size)
{
  char *url = NULL;
  curl_easy_getinfo(a->h, CURLINFO_EFFECTIVE_URL, &url);
  verr_redact_url(url != NULL ? url : a->src->cfg.url, out, out_size);
}

static int attempt_verdict(struct http_attempt *a, enum attempt_outcome v)
{
  a->verdict = v;
  a->has_verdict = 1;
  return -1;
}

/* ---- the ring buffer ---------------------------------------------------------- */

/* Bytes the ring holds for its consumers: the reader's and the digest's unread runs
 * both end at the tail, so the longer one. */
static size_t ring_used(const struct http_source *src)
{
  return src->ring_len > src->digest_len ? src->ring_len : src->digest_len;
}

/* libcurl hands over body bytes in pieces of a few KiB; waking a consumer for each costs
 * more in context switches than the consumer then does. A consumer that found the ring
 * (nearly) empty sleeps until this many bytes wait for it, or the transfer ends. On W3
 * (6 GiB) a 256 KiB mark meant 37,000 context switches, 1 MiB 22,000. */
static size_t ring_wake_bytes(const struct http_source *src)
{
  return src->ring_size / 4 < (1u << 20) ? src->ring_size / 4 : (1u << 20);
}

/* `added` bytes were just put in the ring: wake a consumer whose run crossed the mark. */
static void ring_wake_consumers(struct http_source *src, size_t added)
{
  size_t mark = ring_wake_bytes(src);
  if (src->ring_len >= mark && src->ring_len - added < mark)
    pthread_cond_broadcast(&src->data_ready);
  if (src->digest_len >= mark && src->digest_len - added < mark)
    pthread_cond_signal(&src->digest_ready);
}

/* The ring's tail: where the transfer puts the next byte. */
static size_t ring_tail(const struct http_source *src)
{
  return (src->ring_head + src->ring_len) % src->ring_size;
}

/* Free bytes from the tail on. With zero granules, only up to the granule of the oldest
 * unread byte: the transfer then starts a granule only when all of it is free, and a
 * consumer never sees the flag of a byte it may read change. */
static size_t ring_room(const struct http_source *src)
{
  size_t used = ring_used(src);
  size_t room = src->ring_size - used;
  if (src->gran == 0 || room == 0)
    return room;
  size_t oldest = (ring_tail(src) + room) % src->ring_size;
  size_t cut = oldest % src->gran;
  return room > cut ? room - cut : 0;
}

/* Put buf[0..len) at ring offset `at` (no wrap), outside the lock, into free space.
 * Zeros are left out of the ring: on W3 (6 GiB, 5 of them zeros) the copy out of
 * libcurl's buffer was 1.2 CPU-seconds. They are found here, while libcurl's buffer is
 * still in this core's cache, and the consumers read them from `zeros`, which stays in
 * theirs. libcurl hands over a few KiB at a time, so a granule is filled by many calls:
 * its flag says "zeros so far" from its first byte on, and the first piece that is not
 * zero writes the zeros before it into the ring, then clears the flag (release: a
 * consumer that sees the flag clear sees those zeros). */
static void ring_fill(struct http_source *src, size_t at, const char *buf, size_t len)
{
  if (src->gran == 0) {
    memcpy(src->ring + at, buf, len);
    return;
  }
  while (len > 0) {
    size_t g = at / src->gran, in = at % src->gran;
    size_t n = src->gran - in < len ? src->gran - in : len;
    int zero = in == 0 || atomic_load_explicit(&src->gran_zero[g], memory_order_relaxed);
    zero = zero && mem_is_zero(buf, n);
    if (in == 0)
      atomic_store_explicit(&src->gran_zero[g], (unsigned char)zero, memory_order_relaxed);
    if (!zero) {
      memcpy(src->ring + at, buf, n);
      if (in > 0 && atomic_load_explicit(&src->gran_zero[g], memory_order_relaxed)) {
        memset(src->ring + at - in, 0, in);
        atomic_store_explicit(&src->gran_zero[g], 0, memory_order_release);
      }
    }
    at += n;
    buf += n;
    len -= n;
  }
}

/* The run of ring bytes at offset `at`, at most `max` of them, that are all zero
 * granules (returns the length, *zero = 1) or all in the ring (*zero = 0). */
static size_t ring_run(const struct http_source *src, size_t at, size_t max, int *zero)
{
  if (src->gran == 0) {
    *zero = 0;
    return max;
  }
  size_t g = at / src->gran;
  *zero = atomic_load_explicit(&src->gran_zero[g], memory_order_acquire);
  size_t n = src->gran - at % src->gran;
  while (n < max && atomic_load_explicit(&src->gran_zero[++g], memory_order_acquire) == *zero)
    n += src->gran;
  if (*zero && n > RING_ZEROS)
    n = RING_ZEROS;
  return n < max ? n : max;
}

/* Copy body bytes into the ring, waiting for the reader while it is full. Time spent
 * waiting does not count toward the stall timeout. Returns -1 if cancelled.
 * One producer (this thread) and one consumer (read()): each copies outside the lock
 * into or out of the part of the ring only it may touch, then commits under the lock. */
static int ring_put(struct http_attempt *a, const char *buf, size_t len)
{
  struct http_source *src = a->src;
  int cancelled = 0;
  pthread_mutex_lock(&src->lock);
  while (len > 0) {
    size_t room;
    while ((room = ring_room(src)) == 0 && !src->cancelled)
      pthread_cond_wait(&src->space_ready, &src->lock);
    if ((cancelled = src->cancelled))
      break;
    size_t tail = ring_tail(src);
    size_t chunk = src->ring_size - tail < room ? src->ring_size - tail : room;
    if (chunk > len)
      chunk = len;
    pthread_mutex_unlock(&src->lock);
    ring_fill(src, tail, buf, chunk);
    pthread_mutex_lock(&src->lock);
    src->ring_len += chunk;
    if (src->digest_md != NULL)
      src->digest_len += chunk;
    src->received += chunk;
    src->info.bytes_received = src->received;
    buf += chunk;
    len -= chunk;
    ring_wake_consumers(src, chunk);
  }
  pthread_mutex_unlock(&src->lock);
  clock_gettime(CLOCK_MONOTONIC, &a->last_byte);
  return cancelled ? -1 : 0;
}

/* Called and returns with src->lock held; copies with it released. src->taking tells
 * the transfer that bytes are on their way to the reader (no restart from byte 0). */
static size_t ring_take(struct http_source *src, unsigned char *buf, size_t len)
{
  size_t chunk = src->ring_size - src->ring_head;
  if (chunk > src->ring_len)
    chunk = src->ring_len;
  if (chunk > len)
    chunk = len;
  size_t head = src->ring_head;
  src->taking = 1;
  pthread_mutex_unlock(&src->lock);
  for (size_t done = 0, n; done < chunk; done += n) {
    int zero;
    n = ring_run(src, head + done, chunk - done, &zero);
    if (zero)
      memset(buf + done, 0, n);
    else
      memcpy(buf + done, src->ring + head + done, n);
  }
  pthread_mutex_lock(&src->lock);
  src->taking = 0;
  src->ring_head = (src->ring_head + chunk) % src->ring_size;
  src->ring_len -= chunk;
  src->consumed += chunk;
  return chunk;
}

/* Lend the reader up to `len` contiguous bytes at the head, without copying; they stay
 * in the ring until ring_return(). Lock held. */
static size_t ring_lend(struct http_source *src, const void **view, size_t len)
{
  size_t chunk = src->ring_size - src->ring_head;
  if (chunk > src->ring_len)
    chunk = src->ring_len;
  if (chunk > len)
    chunk = len;
  int zero;
  chunk = ring_run(src, src->ring_head, chunk, &zero);
  *view = zero ? src->zeros : src->ring + src->ring_head;
  src->lent = chunk;
  src->consumed += chunk;
  return chunk;
}

/* The reader's next call: the bytes lent by the previous view() are done with. Lock held. */
static void ring_return(struct http_source *src)
{
  if (src->lent == 0)
    return;
  src->ring_head = (src->ring_head + src->lent) % src->ring_size;
  src->ring_len -= src->lent;
  src->lent = 0;
  pthread_cond_broadcast(&src->space_ready);
}

/* ---- libcurl callbacks ------------------------------------------------------- */

static size_t http_on_header(char *line, size_t size, size_t nmemb, void *opaque)
{
  struct http_attempt *a = opaque;
  source_http_parse_line(&a->resp, line, size * nmemb);
  return size * nmemb;
}

static int http_status_is_redirect(int status)
{
  return status >= 300 && status < 400;
}

static size_t http_on_body(char *buf, size_t size, size_t nmemb, void *opaque)
{
  struct http_attempt *a = opaque;
  size_t len = size * nmemb;
  /* the body of a redirect libcurl follows is not the object */
  if (http_status_is_redirect(a->resp.status))
    return len;
  if (!a->checked) {
    a->checked = 1;
    if (a->ops->check(a) < 0)
      return 0;
  }
  if (a->resp.content_length >= 0 && a->body_bytes + len > (uint64_t)a->resp.content_length) {
    char url[2048];
    effective_url(a, url, sizeof url);
    verr_set(&a->err, VERR_SOURCE,
             "%s sent more bytes than its Content-Length (%lld): the server or a proxy "
             "is broken; the import must restart once it is fixed",
             url, (long long)a->resp.content_length);
    attempt_verdict(a, ATTEMPT_FATAL);
    return 0;
  }
  if (a->ops->deliver(a, buf, len) < 0)
    return 0;
  a->body_bytes += len;
  return len;
}

static int http_on_progress(void *opaque, curl_off_t dltotal, curl_off_t dlnow,
                            curl_off_t ultotal, curl_off_t ulnow)
{
  struct http_attempt *a = opaque;
  (void)dltotal, (void)ultotal, (void)ulnow;
  pthread_mutex_lock(&a->src->lock);
  int cancelled = a->src->cancelled;
  pthread_mutex_unlock(&a->src->lock);
  if (cancelled)
    return 1;
  if (dlnow != a->last_dlnow) {
    a->last_dlnow = dlnow;
    clock_gettime(CLOCK_MONOTONIC, &a->last_byte);
    return 0;
  }
  if (since_s(&a->last_byte) >= a->src->cfg.stall_timeout_s) {
    a->stalled = 1;
    return 1;
  }
  return 0;
}

/* ---- one request -------------------------------------------------------------- */

static int http_setup_handle(struct http_source *src, CURL *h, struct verr *err)
{
  const struct http_config *c = &src->cfg;
  CURLcode rc = CURLE_OK;
#define SET(opt, val) \
  if (rc == CURLE_OK) \
  rc = curl_easy_setopt(h, opt, val)
  SET(CURLOPT_URL, c->url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, 1L);
  SET(CURLOPT_MAXREDIRS, (long)c->max_redirects);
  SET(CURLOPT_NOSIGNAL, 1L); /* we run on our own thread */
  SET(CURLOPT_BUFFERSIZE, (long)SOURCE_DEFAULT_CURL_BUFFER);
  SET(CURLOPT_CONNECTTIMEOUT, (long)c->connect_timeout_s);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_USERAGENT, "vimport");
  SET(CURLOPT_NOPROGRESS, 0L);
  SET(CURLOPT_XFERINFOFUNCTION, http_on_progress);
  SET(CURLOPT_HEADERFUNCTION, http_on_header);
  SET(CURLOPT_WRITEFUNCTION, http_on_body);
  if (c->user != NULL) {
    SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    SET(CURLOPT_USERNAME, c->user);
    SET(CURLOPT_PASSWORD, c->password != NULL ? c->password : "");
  }
  if (c->insecure) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (c->ca_blob != NULL) {
    struct curl_blob blob = { c->ca_blob, c->ca_blob_len, CURL_BLOB_NOCOPY };
    SET(CURLOPT_CAINFO_BLOB, &blob);
  }
#undef SET
  /* proxies: nothing here touches CURLOPT_PROXY/NOPROXY, so libcurl reads http_proxy,
   * https_proxy and no_proxy from the environment */
  if (rc != CURLE_OK)
    return verr_set(err, VERR_INTERNAL, "libcurl refused an option: %s; this libcurl is "
                    "too old or built without http/https/TLS support",
                    curl_easy_strerror(rc));
  return 0;
}

/* curl_slist_append that frees the whole list on failure, so a caller can chain calls
 * and check *oom once. */
static struct curl_slist *slist_append_all_or_nothing(struct curl_slist *list, const char *line,
                                                      int *oom)
{
  if (*oom)
    return NULL;
  struct curl_slist *grown = curl_slist_append(list, line);
  if (grown == NULL) {
    curl_slist_free_all(list);
    *oom = 1;
  }
  return grown;
}

/* The request headers: the extra headers plus If-Range (NULL when there are none). */
static struct curl_slist *http_request_headers(const struct http_source *src,
                                               const char *if_range, int *oom)
{
  struct curl_slist *headers = NULL;
  *oom = 0;
  for (const struct curl_slist *l = src->cfg.headers; l != NULL; l = l->next)
    headers = slist_append_all_or_nothing(headers, l->data, oom);
  if (if_range[0] != '\0')
    headers = slist_append_all_or_nothing(headers, if_range, oom);
  return headers;
}

/* Run one request for bytes [a->first, a->last] on a->h. */
static CURLcode http_perform(struct http_attempt *a)
{
  struct http_source *src = a->src;
  char range[64] = "";
  char if_range[SOURCE_INFO_STR + 16] = "";
  if (a->ranged) {
    if (a->last >= 0)
      snprintf(range, sizeof range, "%llu-%lld", (unsigned long long)a->first,
               (long long)a->last);
    else
      snprintf(range, sizeof range, "%llu-", (unsigned long long)a->first);
    pthread_mutex_lock(&src->lock);
    if (src->validator[0] != '\0')
      snprintf(if_range, sizeof if_range, "If-Range: %s", src->validator);
    pthread_mutex_unlock(&src->lock);
  }
  int oom;
  struct curl_slist *headers = http_request_headers(src, if_range, &oom);
  if (oom)
    return CURLE_OUT_OF_MEMORY;
  curl_easy_setopt(a->h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(a->h, CURLOPT_RANGE, a->ranged ? range : NULL);
  curl_easy_setopt(a->h, CURLOPT_HEADERDATA, a);
  curl_easy_setopt(a->h, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(a->h, CURLOPT_XFERINFODATA, a);
  curl_easy_setopt(a->h, CURLOPT_ERRORBUFFER, a->curl_error);
  source_http_response_reset(&a->resp);
  clock_gettime(CLOCK_MONOTONIC, &a->last_byte);
  CURLcode rc = curl_easy_perform(a->h);
  curl_easy_setopt(a->h, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(a->h, CURLOPT_ERRORBUFFER, NULL);
  curl_slist_free_all(headers);
  return rc;
}

/* Refuse a non-2xx status with a message that says what to do about it. */
static int http_check_status(struct http_attempt *a)
{
  int s = a->resp.status;
  char url[2048];
  if (s >= 200 && s < 300)
    return 0;
  effective_url(a, url, sizeof url);
  if (s >= 500 || s == 408 || s == 429) {
    verr_set(&a->err, VERR_SOURCE, "HTTP %d from %s: the server is failing or busy; "
             "retry later", s, url);
    return attempt_verdict(a, ATTEMPT_RETRY);
  }
  const char *what;
  switch (s) {
  case 401:
    what = "the server wants credentials: check the username and password (or token "
           "header) given for the source";
    break;
  case 403:
    what = "the server refused access: check the credentials and that they may read "
           "this object";
    break;
  case 404:
    what = "no object at this URL: check the URL";
    break;
  case 416:
    what = "the object is shorter than the bytes already received, so it changed "
           "since the import started; the import must restart";
    break;
  default:
    what = http_status_is_redirect(s) ? "a redirect without a usable Location: check the URL"
                                      : "the server refused the request: check the URL and "
                                        "the request headers";
  }
  verr_set(&a->err, VERR_SOURCE, "HTTP %d from %s: %s", s, url, what);
  return attempt_verdict(a, ATTEMPT_FATAL);
}

static int curl_error_is_transient(CURLcode rc)
{
  switch (rc) {
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_PARTIAL_FILE:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_HTTP3:
  case CURLE_QUIC_CONNECT_ERROR:
    return 1;
  default:
    return 0;
  }
}

static const char *curl_error_remedy(CURLcode rc)
{
  switch (rc) {
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
    return "the server's TLS certificate is not trusted: give the CA that signed it "
           "(a ConfigMap of PEM files, ca_dir), or for tests only skip verification";
  case CURLE_TOO_MANY_REDIRECTS:
    return "too many redirects (a redirect loop?): check the URL";
  case CURLE_UNSUPPORTED_PROTOCOL:
    return "only http and https are supported, also as redirect targets";
  case CURLE_URL_MALFORMAT:
    return "the URL is malformed: check it";
  case CURLE_LOGIN_DENIED:
    return "the credentials were refused: check them";
  default:
    return "check the URL and the network, then retry";
  }
}

/* Decide what an attempt that ended with `rc` means. */
static enum attempt_outcome http_classify(struct http_attempt *a, CURLcode rc)
{
  char url[2048];
  if (a->has_verdict)
    return a->verdict;
  if (rc == CURLE_OK && !a->checked) {
    a->checked = 1; /* an empty body: the body callback never ran */
    if (a->ops->check(a) < 0)
      return a->verdict;
  }
  effective_url(a, url, sizeof url);
  if (rc == CURLE_OK)
    return ATTEMPT_DONE;
  if (a->stalled) {
    verr_set(&a->err, VERR_SOURCE, "no data from %s for %u s (stalled transfer)", url,
             a->src->cfg.stall_timeout_s);
    return ATTEMPT_RETRY;
  }
  pthread_mutex_lock(&a->src->lock);
  int cancelled = a->src->cancelled;
  pthread_mutex_unlock(&a->src->lock);
  if (cancelled)
    return ATTEMPT_CANCELLED;
  const char *detail = a->curl_error[0] != '\0' ? a->curl_error : curl_easy_strerror(rc);
  if (curl_error_is_transient(rc)) {
    verr_set(&a->err, VERR_SOURCE, "transfer from %s failed: %s", url, detail);
    return ATTEMPT_RETRY;
  }
  if (rc == CURLE_TOO_MANY_REDIRECTS)
    verr_set(&a->err, VERR_SOURCE, "%s redirected more than %u times: %s", url,
             a->src->cfg.max_redirects, curl_error_remedy(rc));
  else
    verr_set(&a->err, VERR_SOURCE, "transfer from %s failed: %s; %s", url, detail,
             curl_error_remedy(rc));
  return ATTEMPT_FATAL;
}

/* Sleep before retry number `failures` (1, 2, ...), doubling from retry_delay_ms.
 * Returns -1 if the reader was closed meanwhile. */
static int http_backoff(struct http_source *src, unsigned failures)
{
  uint64_t ms = src->cfg.retry_delay_ms;
  for (unsigned i = 1; i < failures && ms < SOURCE_MAX_RETRY_DELAY_MS; i++)
    ms *= 2;
  if (ms > SOURCE_MAX_RETRY_DELAY_MS)
    ms = SOURCE_MAX_RETRY_DELAY_MS;
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += (time_t)(ms / 1000);
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&src->lock);
  while (!src->cancelled &&
         pthread_cond_timedwait(&src->space_ready, &src->lock, &until) != ETIMEDOUT)
    ;
  int cancelled = src->cancelled;
  pthread_mutex_unlock(&src->lock);
  return cancelled ? -1 : 0;
}

/* ---- the object's digest ------------------------------------------------------- */

/* Hash the next run of undigested ring bytes; called and returns with the lock held. */
static void digest_step(struct http_source *src)
{
  size_t tail = (src->ring_head + src->ring_len) % src->ring_size;
  size_t start = (tail + src->ring_size - src->digest_len) % src->ring_size;
  size_t chunk = src->ring_size - start < src->digest_len ? src->ring_size - start
                                                          : src->digest_len;
  /* A step at a time, so that the transfer refills what was hashed while the rest is:
   * hashing all there was at once (up to the whole ring) left the transfer blocked on a
   * full ring meanwhile, and then this thread waiting for it. */
  if (chunk > ring_wake_bytes(src))
    chunk = ring_wake_bytes(src);
  src->digesting = 1;
  pthread_mutex_unlock(&src->lock);
  int ok = 1;
  for (size_t done = 0, n; ok && done < chunk; done += n) {
    int zero;
    n = ring_run(src, start + done, chunk - done, &zero);
    ok = EVP_DigestUpdate(src->digest_ctx, zero ? src->zeros : src->ring + start + done, n) == 1;
  }
  pthread_mutex_lock(&src->lock);
  src->digesting = 0;
  if (!ok)
    src->digest_failed = 1;
  src->digest_len -= chunk;
  src->digested += chunk;
  pthread_cond_broadcast(&src->space_ready);
}

static void *digest_main(void *opaque)
{
  struct http_source *src = opaque;
  pthread_mutex_lock(&src->lock);
  for (;;) {
    while (src->digest_len < ring_wake_bytes(src) && !src->done && !src->failed &&
           !src->cancelled)
      pthread_cond_wait(&src->digest_ready, &src->lock);
    if (src->cancelled || src->digest_len == 0)
      break;
    digest_step(src);
  }
  src->digest_ended = 1;
  pthread_cond_broadcast(&src->data_ready);
  pthread_mutex_unlock(&src->lock);
  return NULL;
}

/* The transfer starts over from byte 0: forget what was hashed. Lock held. */
static int digest_restart(struct http_source *src)
{
  if (src->digest_md == NULL)
    return 0;
  while (src->digesting)
    pthread_cond_wait(&src->space_ready, &src->lock);
  src->digest_len = 0;
  src->digested = 0;
  return EVP_DigestInit_ex(src->digest_ctx, src->digest_md, NULL) == 1 ? 0 : -1;
}

static int digest_start(struct http_source *src, const char *algorithm, struct verr *err)
{
  if (algorithm == NULL)
    return 0;
  src->digest_md = EVP_get_digestbyname(algorithm);
  src->digest_ctx = EVP_MD_CTX_new();
  if (src->digest_md == NULL || src->digest_ctx == NULL ||
      EVP_DigestInit_ex(src->digest_ctx, src->digest_md, NULL) != 1)
    return verr_set(err, VERR_USAGE, "OpenSSL cannot compute the source digest %s here (a "
                    "FIPS-only OpenSSL refuses md5 and sha1): use a sha256 or sha512 checksum",
                    algorithm);
  int rc = pthread_create(&src->digest_thread, NULL, digest_main, src);
  if (rc != 0)
    return verr_sys(err, VERR_NOMEM, rc, "cannot start the source digest thread");
  src->digest_started = 1;
  return 0;
}

int source_http_digest(struct vreader *r, unsigned char *md, unsigned *md_len, uint64_t *bytes,
                       struct verr *err)
{
  struct http_source *src = r->state;
  if (src->digest_md == NULL)
    return 0;
  int stopped = 0;
  pthread_mutex_lock(&src->lock);
  int unread = !src->done || src->ring_len > 0;
  while (!unread && !src->digest_ended && !stopped)
    stopped = http_wait_data(src) < 0;
  int failed = src->digest_failed;
  *bytes = src->digested;
  pthread_mutex_unlock(&src->lock);
  if (unread)
    return verr_set(err, VERR_INTERNAL, "the source digest was asked for before %s was read "
                    "to its end (a bug)", src->cfg.redacted);
  if (stopped)
    return http_stop_error(src, err);
  if (failed || EVP_DigestFinal_ex(src->digest_ctx, md, md_len) != 1)
    return verr_set(err, VERR_INTERNAL, "OpenSSL failed to hash the bytes of %s",
                    src->cfg.redacted);
  return 1;
}

/* ---- the streaming transfer ---------------------------------------------------- */

/* Record the object the import reads: the first response to a request from byte 0. */
static void transfer_adopt_object(struct http_attempt *a)
{
  struct http_source *src = a->src;
  const struct source_http_response *r = &a->resp;
  pthread_mutex_lock(&src->lock);
  src->total = r->content_length;
  if (source_http_etag_is_strong(r->etag))
    snprintf(src->validator, sizeof src->validator, "%s", r->etag);
  else
    snprintf(src->validator, sizeof src->validator, "%s", r->last_modified);
  struct source_info *i = &src->info;
  effective_url(a, i->location, sizeof i->location);
  snprintf(i->content_type, sizeof i->content_type, "%s", r->content_type);
  snprintf(i->etag, sizeof i->etag, "%s", r->etag);
  snprintf(i->last_modified, sizeof i->last_modified, "%s", r->last_modified);
  i->content_length = r->content_length;
  i->accepts_ranges = r->accept_ranges;
  i->http_status = r->status;
  src->opened = 1;
  pthread_cond_broadcast(&src->data_ready);
  pthread_mutex_unlock(&src->lock);
  if (src->validator[0] == '\0')
    vlog_warn("source", "%s has no strong ETag and no Last-Modified: a resumed transfer "
              "cannot prove it continues the same object", i->location);
}

/* The server answered a resume with the whole object. Starting over is only honest
 * while the reader has not taken a byte; otherwise the bytes would be spliced. */
static int transfer_restart_or_refuse(struct http_attempt *a)
{
  struct http_source *src = a->src;
  char url[2048];
  pthread_mutex_lock(&src->lock);
  int can_restart = src->consumed == 0 && !src->taking;
  if (can_restart)
    can_restart = digest_restart(src) == 0;
  if (can_restart) {
    src->ring_head = src->ring_len = 0;
    src->received = src->info.bytes_received = 0;
  }
  pthread_mutex_unlock(&src->lock);
  effective_url(a, url, sizeof url);
  if (can_restart) {
    vlog_warn("source", "%s answered a resume with HTTP %d and the whole object; nothing "
              "was read yet, so the transfer starts over", url, a->resp.status);
    a->first = 0;
    transfer_adopt_object(a);
    return 0;
  }
  verr_set(&a->err, VERR_SOURCE,
           "%s answered the request for bytes %llu- with HTTP %d and the whole object: the "
           "object changed since the import started, or the server ignores Range requests; "
           "the bytes cannot be joined, the import must restart",
           url, (unsigned long long)a->first, a->resp.status);
  return attempt_verdict(a, ATTEMPT_FATAL);
}

static int transfer_check_partial(struct http_attempt *a)
{
  const struct source_http_response *r = &a->resp;
  struct http_source *src = a->src;
  char url[2048];
  effective_url(a, url, sizeof url);
  if (!r->has_content_range) {
    verr_set(&a->err, VERR_SOURCE, "%s answered HTTP 206 without a valid Content-Range; "
             "the server is broken, the import must restart", url);
    return attempt_verdict(a, ATTEMPT_FATAL);
  }
  if (r->range_first != a->first ||
      (src->total >= 0 && r->range_total >= 0 && r->range_total != src->total)) {
    verr_set(&a->err, VERR_SOURCE,
             "%s answered the request for bytes %llu- with bytes %llu-%llu/%lld of a "
             "%lld-byte object: the object changed or the server is broken; the import "
             "must restart",
             url, (unsigned long long)a->first, (unsigned long long)r->range_first,
             (unsigned long long)r->range_last, (long long)r->range_total,
             (long long)src->total);
    return attempt_verdict(a, ATTEMPT_FATAL);
  }
  return 0;
}

static int transfer_check(struct http_attempt *a)
{
  if (http_check_status(a) < 0)
    return -1;
  if (a->ranged && a->resp.status == 206)
    return transfer_check_partial(a);
  if (a->ranged)
    return transfer_restart_or_refuse(a);
  if (a->resp.status == 206) {
    char url[2048];
    effective_url(a, url, sizeof url);
    verr_set(&a->err, VERR_SOURCE, "%s answered a plain GET with HTTP 206 (partial "
             "content); the server is broken", url);
    return attempt_verdict(a, ATTEMPT_FATAL);
  }
  transfer_adopt_object(a);
  return 0;
}

static int transfer_deliver(struct http_attempt *a, const char *buf, size_t len)
{
  struct http_source *src = a->src;
  if (src->total >= 0 && src->received + len > (uint64_t)src->total) {
    verr_set(&a->err, VERR_SOURCE, "%s sent more than the %lld bytes of the object; the "
             "server is broken or the object changed, the import must restart",
             src->info.location, (long long)src->total);
    return attempt_verdict(a, ATTEMPT_FATAL);
  }
  if (ring_put(a, buf, len) < 0)
    return attempt_verdict(a, ATTEMPT_CANCELLED);
  return 0;
}

static const struct attempt_ops transfer_ops = {
  .check   = transfer_check,
  .deliver = transfer_deliver,
};

static void transfer_finish(struct http_source *src, enum attempt_outcome how,
                            const struct verr *err)
{
  pthread_mutex_lock(&src->lock);
  if (how == ATTEMPT_DONE)
    src->done = 1;
  else if (!src->failed) {
    src->failed = 1;
    src->error = *err;
  }
  pthread_cond_broadcast(&src->data_ready);
  pthread_cond_signal(&src->digest_ready);
  pthread_mutex_unlock(&src->lock);
}

/* One attempt of the streaming transfer, from src->received on. */
static enum attempt_outcome transfer_attempt(struct http_source *src, CURL *h,
                                             struct verr *err)
{
  struct http_attempt a = { .src = src, .ops = &transfer_ops, .h = h, .last = -1 };
  a.first = src->received;
  a.ranged = a.first > 0;
  CURLcode rc = http_perform(&a);
  enum attempt_outcome how = http_classify(&a, rc);
  if (how == ATTEMPT_DONE && src->total >= 0 && src->received < (uint64_t)src->total) {
    verr_set(&a.err, VERR_SOURCE, "%s closed the transfer after %llu of %lld bytes",
             src->info.location, (unsigned long long)src->received, (long long)src->total);
    how = ATTEMPT_RETRY;
  }
  *err = a.err;
  return how;
}

static void *transfer_main(void *opaque)
{
  struct http_source *src = opaque;
  struct verr err = { 0 };
  enum attempt_outcome how = ATTEMPT_FATAL;
  CURL *h = curl_easy_init();
  if (h == NULL)
    verr_set(&err, VERR_NOMEM, "cannot create a libcurl handle (out of memory?)");
  if (h == NULL || http_setup_handle(src, h, &err) < 0) {
    transfer_finish(src, ATTEMPT_FATAL, &err);
    curl_easy_cleanup(h);
    return NULL;
  }
  unsigned failures = 0;
  for (;;) {
    uint64_t before = src->received;
    how = transfer_attempt(src, h, &err);
    if (how != ATTEMPT_RETRY)
      break;
    failures = src->received > before ? 1 : failures + 1;
    pthread_mutex_lock(&src->lock);
    src->info.retries++;
    pthread_mutex_unlock(&src->lock);
    if (failures > src->cfg.retries) {
      verr_prefix(&err, "giving up after %u failed attempts in a row", failures);
      how = ATTEMPT_FATAL;
      break;
    }
    vlog_warn("source", "%s; retrying from byte %llu", err.message,
              (unsigned long long)src->received);
    if (http_backoff(src, failures) < 0) {
      how = ATTEMPT_CANCELLED;
      break;
    }
    if (src->received > 0) {
      pthread_mutex_lock(&src->lock);
      src->info.resumes++;
      pthread_mutex_unlock(&src->lock);
    }
  }
  if (how == ATTEMPT_CANCELLED)
    verr_set(&err, VERR_CANCELLED, "the transfer was stopped");
  transfer_finish(src, how, &err);
  curl_easy_cleanup(h);
  return NULL;
}

/* ---- the reader ----------------------------------------------------------------- */

static int http_stopped(const struct http_source *src)
{
  return src->cfg.stop != NULL && *src->cfg.stop;
}

/* Wait (lock held) for data_ready. With a stop flag, wake every SOURCE_STOP_POLL_MS to
 * look at it: a signal handler can only set a flag, and a condition wait does not
 * return on signals. Returns -1 once the flag is set. */
static int http_wait_data(struct http_source *src)
{
  if (src->cfg.stop == NULL) {
    pthread_cond_wait(&src->data_ready, &src->lock);
    return 0;
  }
  if (http_stopped(src))
    return -1;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until); /* data_ready uses the default clock */
  until.tv_nsec += SOURCE_STOP_POLL_MS * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_cond_timedwait(&src->data_ready, &src->lock, &until);
  return http_stopped(src) ? -1 : 0;
}

static int http_stop_error(const struct http_source *src, struct verr *err)
{
  return verr_set(err, VERR_CANCELLED, "the import was stopped by a signal (SIGTERM or "
                  "SIGINT) while waiting for %s; a rerun imports from the start",
                  src->cfg.redacted);
}

/* read() and view(): wait for bytes, then take them (copy) or lend them (view). */
static ssize_t http_next(struct http_source *src, void *buf, const void **view, size_t len,
                         struct verr *err)
{
  int stopped = 0;
  size_t enough = len < ring_wake_bytes(src) ? len : ring_wake_bytes(src);
  pthread_mutex_lock(&src->lock);
  ring_return(src);
  while (src->ring_len < enough && !src->done && !src->failed && !stopped)
    stopped = http_wait_data(src) < 0;
  ssize_t n = 0;
  if (src->ring_len == 0 && stopped) {
    n = http_stop_error(src, err);
  } else if (src->ring_len > 0 && view != NULL) {
    n = (ssize_t)ring_lend(src, view, len);
  } else if (src->ring_len > 0) {
    n = (ssize_t)ring_take(src, buf, len);
    pthread_cond_broadcast(&src->space_ready);
  } else if (src->failed) {
    if (err != NULL)
      *err = src->error;
    n = -1;
  }
  pthread_mutex_unlock(&src->lock);
  return n;
}

static ssize_t http_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  return http_next(r->state, buf, NULL, len, err);
}

/* The ring's own bytes, no copy: the raw decoder reads W3's 6 GiB this way. */
static ssize_t http_view(struct vreader *r, const void **view, size_t len, void *scratch,
                         struct verr *err)
{
  (void)scratch;
  return http_next(r->state, NULL, view, len, err);
}

static void http_config_free(struct http_config *c)
{
  free(c->url);
  free(c->user);
  if (c->password != NULL)
    explicit_bzero(c->password, strlen(c->password));
  free(c->password);
  curl_slist_free_all(c->headers);
  free(c->ca_blob);
}

static void http_source_free(struct http_source *src)
{
  pthread_mutex_lock(&src->lock);
  src->cancelled = 1;
  pthread_cond_broadcast(&src->space_ready);
  pthread_cond_broadcast(&src->data_ready);
  pthread_cond_signal(&src->digest_ready);
  pthread_mutex_unlock(&src->lock);
  if (src->thread_started)
    pthread_join(src->thread, NULL);
  if (src->digest_started)
    pthread_join(src->digest_thread, NULL);
  EVP_MD_CTX_free(src->digest_ctx);
  curl_easy_cleanup(src->pread_handle);
  pthread_cond_destroy(&src->data_ready);
  pthread_cond_destroy(&src->space_ready);
  pthread_cond_destroy(&src->digest_ready);
  pthread_mutex_destroy(&src->lock);
  http_config_free(&src->cfg);
  hugebuf_free(src->ring, src->ring_size);
  free(src->gran_zero);
  hugebuf_free((void *)src->zeros, RING_ZEROS);
  free(src);
}

static void http_close(struct vreader *r)
{
  http_source_free(r->state);
  free(r);
}

static const struct vreader_ops http_ops = {
  .name  = "source-http",
  .read  = http_read,
  .view  = http_view,
  .close = http_close,
};

/* ---- opening ------------------------------------------------------------------ */

static int header_line_is_safe(const char *h)
{
  const char *colon = strchr(h, ':');
  return colon != NULL && colon != h && strpbrk(h, "\r\n") == NULL;
}

static int http_config_init(struct http_config *c, const struct source_opts *o,
                            struct verr *err)
{
#define DUP(dst, s) \
  if ((s) != NULL && ((dst) = strdup(s)) == NULL) \
  return verr_sys(err, VERR_NOMEM, ENOMEM, "copying the source options")
  DUP(c->url, o->url);
  DUP(c->user, o->basic_user);
  DUP(c->password, o->basic_password);
#undef DUP
  verr_redact_url(o->url, c->redacted, sizeof c->redacted);
  for (size_t i = 0; i < o->n_extra_headers; i++) {
    if (!header_line_is_safe(o->extra_headers[i]))
      return verr_set(err, VERR_USAGE, "extra header %zu is not one \"Name: value\" line; "
                      "fix the header list", i + 1);
    struct curl_slist *l = curl_slist_append(c->headers, o->extra_headers[i]);
    if (l == NULL)
      return verr_sys(err, VERR_NOMEM, ENOMEM, "copying the extra headers");
    c->headers = l;
  }
  c->insecure = o->insecure_skip_verify;
  c->retries = o->retries == SOURCE_RETRIES_NONE ? 0
               : o->retries                     ? o->retries
                                                : SOURCE_DEFAULT_RETRIES;
  c->stop = o->stop;
  c->retry_delay_ms = o->retry_delay_ms ? o->retry_delay_ms : SOURCE_DEFAULT_RETRY_DELAY_MS;
  c->stall_timeout_s = o->stall_timeout_s ? o->stall_timeout_s : SOURCE_DEFAULT_STALL_TIMEOUT_S;
  c->connect_timeout_s =
      o->connect_timeout_s ? o->connect_timeout_s : SOURCE_DEFAULT_CONNECT_TIMEOUT_S;
  c->max_redirects = o->max_redirects ? o->max_redirects : SOURCE_DEFAULT_MAX_REDIRECTS;
  if (c->insecure) {
    vlog_warn("source", "TLS verification is OFF for %s: anyone on the path can serve "
              "other bytes; use only for tests", c->redacted);
    return 0;
  }
  if (o->ca_dir == NULL && o->ca_file == NULL)
    return 0;
  char *default_bundle = NULL;
  CURL *probe = curl_easy_init();
  if (probe != NULL)
    curl_easy_getinfo(probe, CURLINFO_CAINFO, &default_bundle);
  int rc = source_tls_load_cas(default_bundle, o->ca_dir, o->ca_file, &c->ca_blob,
                               &c->ca_blob_len, err);
  curl_easy_cleanup(probe);
  return rc;
}

static struct http_source *http_source_new(size_t ring_size)
{
  struct http_source *src = calloc(1, sizeof *src);
  if (src == NULL)
    return NULL;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_mutex_init(&src->lock, NULL);
  pthread_cond_init(&src->data_ready, NULL);
  pthread_cond_init(&src->space_ready, &attr);
  pthread_cond_init(&src->digest_ready, NULL);
  pthread_condattr_destroy(&attr);
  src->total = -1;
  src->info.kind = "http";
  src->info.content_length = -1;
  src->ring_size = ring_size;
  src->ring = hugebuf_alloc(ring_size);
  if (ring_size % RING_GRANULE == 0 && ring_size >= 16 * RING_GRANULE) {
    src->gran = RING_GRANULE;
    src->gran_zero = calloc(ring_size / RING_GRANULE, sizeof *src->gran_zero);
    src->zeros = hugebuf_alloc(RING_ZEROS);
  }
  if (src->ring == NULL || (src->gran != 0 && (src->gran_zero == NULL || src->zeros == NULL))) {
    http_source_free(src);
    return NULL;
  }
  return src;
}

/* Wait for the first response (or the failure to get one). */
static int http_wait_opened(struct http_source *src, struct verr *err)
{
  int stopped = 0;
  pthread_mutex_lock(&src->lock);
  while (!src->opened && !src->failed && !stopped)
    stopped = http_wait_data(src) < 0;
  int failed = !src->opened;
  if (failed && stopped)
    http_stop_error(src, err);
  else if (failed && err != NULL)
    *err = src->error;
  pthread_mutex_unlock(&src->lock);
  return failed ? -1 : 0;
}

int source_http_open(const struct source_opts *opts, struct vreader **out, struct verr *err)
{
  size_t ring_size = opts->buffer_size ? opts->buffer_size : SOURCE_DEFAULT_BUFFER_SIZE;
  if (ring_size < MIN_BUFFER_SIZE)
    ring_size = MIN_BUFFER_SIZE;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  struct http_source *src = http_source_new(ring_size);
  struct vreader *r = malloc(sizeof *r);
  if (src == NULL || r == NULL) {
    free(r);
    if (src != NULL)
      http_source_free(src);
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating a %zu-byte source buffer", ring_size);
  }
  *r = (struct vreader){ .ops = &http_ops, .state = src };
  if (http_config_init(&src->cfg, opts, err) < 0 || digest_start(src, opts->digest, err) < 0) {
    http_close(r);
    return -1;
  }
  snprintf(src->info.location, sizeof src->info.location, "%s", src->cfg.redacted);
  int rc = pthread_create(&src->thread, NULL, transfer_main, src);
  if (rc != 0) {
    http_close(r);
    return verr_sys(err, VERR_NOMEM, rc, "cannot start the transfer thread");
  }
  src->thread_started = 1;
  if (http_wait_opened(src, err) < 0) {
    http_close(r);
    return -1;
  }
  *out = r;
  return 0;
}

int source_http_is(const struct vreader *r)
{
  return r->ops == &http_ops;
}

const struct source_info *source_http_info(struct vreader *r)
{
  struct http_source *src = r->state;
  pthread_mutex_lock(&src->lock);
  src->snapshot = src->info;
  pthread_mutex_unlock(&src->lock);
  return &src->snapshot;
}

struct vzeros source_http_zeros(struct vreader *r)
{
  const struct http_source *src = r->state;
  return (struct vzeros){ .buf = src->zeros, .len = src->zeros != NULL ? RING_ZEROS : 0 };
}

/* ---- ranged re-reads ------------------------------------------------------------ */

static int pread_check(struct http_attempt *a)
{
  const struct source_http_response *r = &a->resp;
  char url[2048];
  if (http_check_status(a) < 0)
    return -1;
  effective_url(a, url, sizeof url);
  if (r->status != 206) {
    verr_set(&a->err, VERR_SOURCE,
             "%s answered the re-read of bytes %llu-%lld with HTTP %d and the whole "
             "object: the object changed since the import started, or the server ignores "
             "Range requests; the import must restart",
             url, (unsigned long long)a->first, (long long)a->last, r->status);
    return attempt_verdict(a, ATTEMPT_FATAL);
  }
  if (!r->has_content_range || r->range_first != a->first ||
      r->range_last != (uint64_t)a->last) {
    verr_set(&a->err, VERR_SOURCE, "%s answered the re-read of bytes %llu-%lld with "
             "another range; the server is broken, the import must restart",
             url, (unsigned long long)a->first, (long long)a->last);
    return attempt_verdict(a, ATTEMPT_FATAL);
  }
  return 0;
}

static int pread_deliver(struct http_attempt *a, const char *buf, size_t len)
{
  uint64_t want = (uint64_t)a->last - a->first + 1;
  if (a->body_bytes + len > want) {
    verr_set(&a->err, VERR_SOURCE, "the server sent more bytes than the range asked for; "
             "the server is broken, the import must restart");
    return attempt_verdict(a, ATTEMPT_FATAL);
  }
  memcpy((char *)a->sink + a->body_bytes, buf, len);
  return 0;
}

static const struct attempt_ops pread_ops = {
  .check   = pread_check,
  .deliver = pread_deliver,
};

static int pread_range_check(struct http_source *src, size_t len, uint64_t offset,
                             struct verr *err)
{
  pthread_mutex_lock(&src->lock);
  int64_t total = src->total;
  pthread_mutex_unlock(&src->lock);
  if (offset > INT64_MAX - len || (total >= 0 && offset + len > (uint64_t)total))
    return verr_set(err, VERR_INTERNAL, "re-read of bytes %llu+%zu past the end of the "
                    "%lld-byte source", (unsigned long long)offset, len, (long long)total);
  return 0;
}

int source_http_pread(struct vreader *r, void *buf, size_t len, uint64_t offset,
                      struct verr *err)
{
  struct http_source *src = r->state;
  if (len == 0)
    return 0;
  if (pread_range_check(src, len, offset, err) < 0)
    return -1;
  if (src->pread_handle == NULL) {
    src->pread_handle = curl_easy_init();
    if (src->pread_handle == NULL)
      return verr_set(err, VERR_NOMEM, "cannot create a libcurl handle (out of memory?)");
    if (http_setup_handle(src, src->pread_handle, err) < 0)
      return -1;
  }
  size_t got = 0;
  unsigned failures = 0;
  for (;;) {
    struct http_attempt a = {
      .src = src, .ops = &pread_ops, .h = src->pread_handle, .ranged = 1,
      .first = offset + got, .last = (int64_t)(offset + len - 1), .sink = (char *)buf + got,
    };
    enum attempt_outcome how = http_classify(&a, http_perform(&a));
    got += a.body_bytes;
    if (how == ATTEMPT_DONE && got == len)
      return 0;
    if (how == ATTEMPT_DONE) {
      verr_set(&a.err, VERR_SOURCE, "%s closed the re-read after %llu of %zu bytes",
               src->cfg.redacted, (unsigned long long)got, len);
      how = ATTEMPT_RETRY; /* ask for the rest */
    }
    if (how != ATTEMPT_RETRY || ++failures > src->cfg.retries) {
      if (err != NULL)
        *err = a.err;
      return verr_prefix(err, "re-reading bytes %llu+%zu", (unsigned long long)offset, len);
    }
    if (http_backoff(src, failures) < 0)
      return verr_set(err, VERR_CANCELLED, "the transfer was stopped");
  }
}
