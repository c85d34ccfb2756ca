/* vimport source, the http kind: the streaming transfer and its policy.
 *
 * A thread of its own runs attempts until the object is complete: the first from byte
 * 0, each later one from the first byte the ring has not got ("Range: bytes=N-", with
 * If-Range naming the object's validator). Each answer is checked before a byte of it
 * is taken: a 206 must continue exactly where the ring stopped, of an object of the
 * same size; a 200 to a resume means the object changed (or Range is ignored), which
 * may start over only while the reader has taken nothing. Failed attempts that brought
 * no new byte are retried with exponential backoff, opts.retries times in a row.
 */
#include "source/http.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"

/* Sleep before retry number `failures` (1, 2, ...), doubling from retry_delay_ms.
 * Returns -1 if the reader was closed meanwhile. */
int http_backoff(struct http_source *src, unsigned failures)
{
  uint64_t ms = src->cfg.retry_delay_ms;
  for (unsigned i = 1; i < failures && ms < SOURCE_MAX_RETRY_DELAY_MS; i++)
    ms *= 2;
  if (ms > SOURCE_MAX_RETRY_DELAY_MS)
    ms = SOURCE_MAX_RETRY_DELAY_MS;
  return ring_sleep(&src->ring, (unsigned)ms);
}

/* Record the object the import reads: the first response to a request from byte 0. */
static void transfer_adopt_object(struct http_attempt *a)
{
  struct http_source *src = a->src;
  const struct source_http_response *r = &a->resp;
  pthread_mutex_lock(&src->ring.lock);
  src->total = r->content_length;
  if (source_http_etag_is_strong(r->etag))
    snprintf(src->validator, sizeof src->validator, "%s", r->etag);
  else
    snprintf(src->validator, sizeof src->validator, "%s", r->last_modified);
  struct source_info *i = &src->info;
  http_effective_url(a, i->location, sizeof i->location);
  snprintf(i->content_type, sizeof i->content_type, "%s", r->content_type);
  snprintf(i->etag, sizeof i->etag, "%s", r->etag);
  snprintf(i->last_modified, sizeof i->last_modified, "%s", r->last_modified);
  i->content_length = r->content_length;
  i->accepts_ranges = r->accept_ranges;
  i->http_status = r->status;
  if (src->cfg.hooks != NULL && src->cfg.hooks->adopt != NULL)
    src->cfg.hooks->adopt(src->cfg.hooks_arg, r, i);
  src->opened = 1;
  ring_wake_reader(&src->ring);
  pthread_mutex_unlock(&src->ring.lock);
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
  int can_restart = ring_rewind(&src->ring) == 0;
  http_effective_url(a, url, sizeof url);
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
  return http_verdict(a, ATTEMPT_FATAL);
}

static int transfer_check_partial(struct http_attempt *a)
{
  const struct source_http_response *r = &a->resp;
  struct http_source *src = a->src;
  char url[2048];
  http_effective_url(a, url, sizeof url);
  if (!r->has_content_range) {
    verr_set(&a->err, VERR_SOURCE, "%s answered HTTP 206 without a valid Content-Range; "
             "the server is broken, the import must restart", url);
    return http_verdict(a, ATTEMPT_FATAL);
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
    return http_verdict(a, ATTEMPT_FATAL);
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
    http_effective_url(a, url, sizeof url);
    verr_set(&a->err, VERR_SOURCE, "%s answered a plain GET with HTTP 206 (partial "
             "content); the server is broken", url);
    return http_verdict(a, ATTEMPT_FATAL);
  }
  transfer_adopt_object(a);
  return 0;
}

static int transfer_deliver(struct http_attempt *a, const char *buf, size_t len)
{
  struct http_source *src = a->src;
  if (src->total >= 0 && src->ring.produced + len > (uint64_t)src->total) {
    verr_set(&a->err, VERR_SOURCE, "%s sent more than the %lld bytes of the object; the "
             "server is broken or the object changed, the import must restart",
             src->info.location, (long long)src->total);
    return http_verdict(a, ATTEMPT_FATAL);
  }
  const struct http_hooks *hk = src->cfg.hooks;
  if (hk != NULL && hk->object_bytes != NULL) /* each byte once: what extends the ring */
    hk->object_bytes(src->cfg.hooks_arg, src->ring.produced, buf, len);
  if (ring_put(&src->ring, buf, len) < 0)
    return http_verdict(a, ATTEMPT_CANCELLED);
  clock_gettime(CLOCK_MONOTONIC, &a->last_byte); /* waiting for the reader is no stall */
  return 0;
}

static const struct attempt_ops transfer_ops = {
  .check   = transfer_check,
  .deliver = transfer_deliver,
};

static void transfer_finish(struct http_source *src, enum attempt_outcome how,
                            const struct verr *err)
{
  ring_finish(&src->ring, how == ATTEMPT_DONE ? NULL : err);
}

/* One attempt of the streaming transfer, from src->ring.produced on. */
static enum attempt_outcome transfer_attempt(struct http_source *src, CURL *h,
                                             struct verr *err)
{
  struct http_attempt a = { .src = src, .ops = &transfer_ops, .h = h, .last = -1 };
  a.first = src->ring.produced;
  a.ranged = a.first > 0;
  CURLcode rc = http_perform(&a);
  enum attempt_outcome how = http_classify(&a, rc);
  if (how == ATTEMPT_DONE && src->total >= 0 && src->ring.produced < (uint64_t)src->total) {
    verr_set(&a.err, VERR_SOURCE, "%s closed the transfer after %llu of %lld bytes",
             src->info.location, (unsigned long long)src->ring.produced, (long long)src->total);
    how = ATTEMPT_RETRY;
  }
  *err = a.err;
  return how;
}

void *http_transfer_main(void *opaque)
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
    uint64_t before = src->ring.produced;
    how = transfer_attempt(src, h, &err);
    if (how != ATTEMPT_RETRY)
      break;
    failures = src->ring.produced > before ? 1 : failures + 1;
    pthread_mutex_lock(&src->ring.lock);
    src->info.retries++;
    pthread_mutex_unlock(&src->ring.lock);
    if (failures > src->cfg.retries) {
      verr_prefix(&err, "giving up after %u failed attempts in a row", failures);
      how = ATTEMPT_FATAL;
      break;
    }
    vlog_warn("source", "%s; retrying from byte %llu", err.message,
              (unsigned long long)src->ring.produced);
    if (http_backoff(src, failures) < 0) {
      how = ATTEMPT_CANCELLED;
      break;
    }
    if (src->ring.produced > 0) {
      pthread_mutex_lock(&src->ring.lock);
      src->info.resumes++;
      pthread_mutex_unlock(&src->ring.lock);
    }
  }
  if (how == ATTEMPT_CANCELLED)
    verr_set(&err, VERR_CANCELLED, "the transfer was stopped");
  /* the kind's check of the whole object, before the reader may see its end */
  const struct http_hooks *hk = src->cfg.hooks;
  if (how == ATTEMPT_DONE && hk != NULL && hk->object_end != NULL &&
      hk->object_end(src->cfg.hooks_arg, src->ring.produced, &err) < 0)
    how = ATTEMPT_FATAL;
  transfer_finish(src, how, &err);
  curl_easy_cleanup(h);
  return NULL;
}

