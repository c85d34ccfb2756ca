/* vimport source, the http kind: the reader side and the kind's row.
 *
 * A transfer thread (http_transfer.c) runs curl_easy_perform() and puts the body into a
 * bounded ring (ring.h); read() drains it, or view() lends the reader the ring's bytes
 * in place. The ring is the only buffer between the network and the pipeline, so memory
 * is opts.buffer_size plus libcurl's receive buffer. pread() is a separate Range
 * request on a handle of its own, guarded by If-Range.
 */
#include "source/http.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

ssize_t http_read(void *state, void *buf, size_t len, struct verr *err)
{
  struct http_source *src = state;
  return ring_next(&src->ring, buf, NULL, len, err);
}

/* The ring's own bytes, no copy: the raw decoder reads W3's 6 GiB this way. */
ssize_t http_view(void *state, const void **view, size_t len, struct verr *err)
{
  struct http_source *src = state;
  return ring_next(&src->ring, NULL, view, len, err);
}

void http_info(void *state, struct source_info *out)
{
  struct http_source *src = state;
  pthread_mutex_lock(&src->ring.lock);
  *out = src->info;
  out->bytes_received = src->ring.produced;
  pthread_mutex_unlock(&src->ring.lock);
}

struct ring *http_ring(void *state)
{
  struct http_source *src = state;
  return &src->ring;
}

void http_close(void *state)
{
  struct http_source *src = state;
  ring_cancel(&src->ring);
  if (src->thread_started)
    pthread_join(src->thread, NULL);
  curl_easy_cleanup(src->pread_handle);
  ring_destroy(&src->ring);
  http_config_free(&src->cfg);
  free(src);
}

/* ---- opening ------------------------------------------------------------------ */

/* Wait for the first response (or the failure to get one). */
static int http_wait_opened(struct http_source *src, struct verr *err)
{
  int stopped = 0;
  pthread_mutex_lock(&src->ring.lock);
  while (!src->opened && !src->ring.failed && !stopped)
    stopped = ring_wait(&src->ring) < 0;
  int failed = !src->opened;
  if (failed && stopped)
    ring_stop_error(&src->ring, err);
  else if (failed && err != NULL)
    *err = src->ring.error;
  pthread_mutex_unlock(&src->ring.lock);
  return failed ? -1 : 0;
}

static int http_match(const char *url)
{
  return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

int http_open_hooked(const struct source_opts *opts, const char *kind,
                     const struct http_hooks *hooks, void *hooks_arg, void **state,
                     struct verr *err)
{
  size_t ring_size = opts->buffer_size ? opts->buffer_size : SOURCE_DEFAULT_BUFFER_SIZE;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  struct http_source *src = calloc(1, sizeof *src);
  if (src == NULL) {
    if (hooks != NULL && hooks->free != NULL)
      hooks->free(hooks_arg);
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the source");
  }
  src->cfg.hooks = hooks;
  src->cfg.hooks_arg = hooks_arg;
  src->total = -1;
  src->info.kind = kind;
  src->info.content_length = -1;
  if (ring_init(&src->ring, ring_size, opts->lend_to_digest, src->cfg.redacted,
                opts->stop) < 0) {
    http_close(src);
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating a %zu-byte source buffer", ring_size);
  }
  if (http_config_init(&src->cfg, opts, err) < 0) {
    http_close(src);
    return -1;
  }
  snprintf(src->info.location, sizeof src->info.location, "%s", src->cfg.redacted);
  int rc = pthread_create(&src->thread, NULL, http_transfer_main, src);
  if (rc != 0) {
    http_close(src);
    return verr_sys(err, VERR_NOMEM, rc, "cannot start the transfer thread");
  }
  src->thread_started = 1;
  if (http_wait_opened(src, err) < 0) {
    http_close(src);
    return -1;
  }
  *state = src;
  return 0;
}

static int http_open(const struct source_opts *opts, void **state, struct verr *err)
{
  return http_open_hooked(opts, "http", NULL, NULL, state, err);
}

/* ---- ranged re-reads ------------------------------------------------------------ */

static int pread_check(struct http_attempt *a)
{
  const struct source_http_response *r = &a->resp;
  char url[2048];
  if (http_check_status(a) < 0)
    return -1;
  http_effective_url(a, url, sizeof url);
  if (r->status != 206) {
    verr_set(&a->err, VERR_SOURCE,
             "%s answered the re-read of bytes %llu-%lld with HTTP %d and the whole "
             "object: the object changed since the import started, or the server ignores "
             "Range requests; the import must restart",
             url, (unsigned long long)a->first, (long long)a->last, r->status);
    return http_verdict(a, ATTEMPT_FATAL);
  }
  if (!r->has_content_range || r->range_first != a->first ||
      r->range_last != (uint64_t)a->last) {
    verr_set(&a->err, VERR_SOURCE, "%s answered the re-read of bytes %llu-%lld with "
             "another range; the server is broken, the import must restart",
             url, (unsigned long long)a->first, (long long)a->last);
    return http_verdict(a, ATTEMPT_FATAL);
  }
  return 0;
}

static int pread_deliver(struct http_attempt *a, const char *buf, size_t len)
{
  uint64_t want = (uint64_t)a->last - a->first + 1;
  if (a->body_bytes + len > want) {
    verr_set(&a->err, VERR_SOURCE, "the server sent more bytes than the range asked for; "
             "the server is broken, the import must restart");
    return http_verdict(a, ATTEMPT_FATAL);
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
  pthread_mutex_lock(&src->ring.lock);
  int64_t total = src->total;
  pthread_mutex_unlock(&src->ring.lock);
  if (offset > INT64_MAX - len || (total >= 0 && offset + len > (uint64_t)total))
    return verr_set(err, VERR_INTERNAL, "re-read of bytes %llu+%zu past the end of the "
                    "%lld-byte source", (unsigned long long)offset, len, (long long)total);
  return 0;
}

int http_pread(void *state, void *buf, size_t len, uint64_t offset, struct verr *err)
{
  struct http_source *src = state;
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

const struct source_kind source_http_kind = {
  .name  = "http",
  .match = http_match,
  .open  = http_open,
  .read  = http_read,
  .view  = http_view,
  .pread = http_pread,
  .info  = http_info,
  .ring  = http_ring,
  .close = http_close,
};
