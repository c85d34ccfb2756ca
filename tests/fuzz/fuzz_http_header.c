/* Fuzz the HTTP response header parsing of pkg/source: the input is a header block as
 * libcurl's header callback would see it, one line at a time, plus the raw input fed to
 * the status-line and Content-Range parsers. Checks the invariants the transfer relies
 * on: a parsed Content-Range is first <= last < total, sizes are never negative except
 * the -1 "unknown", and every kept string is NUL-terminated within its field. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "source/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_response(const struct source_http_response *r)
{
  assert(r->content_length >= -1);
  assert(r->range_total >= -1);
  if (r->has_content_range) {
    assert(r->range_first <= r->range_last);
    assert(r->range_total == -1 || r->range_last < (uint64_t)r->range_total);
  }
  assert(r->status == 0 || (r->status >= 100 && r->status <= 999));
  assert(memchr(r->etag, '\0', sizeof r->etag) != NULL);
  assert(memchr(r->last_modified, '\0', sizeof r->last_modified) != NULL);
  assert(memchr(r->content_type, '\0', sizeof r->content_type) != NULL);
  (void)source_http_etag_is_strong(r->etag);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;
  struct source_http_response resp;
  source_http_response_reset(&resp);
  size_t start = 0;
  for (size_t i = 0; i <= size; i++) {
    if (i == size || text[i] == '\n') {
      size_t end = i < size ? i + 1 : i;
      source_http_parse_line(&resp, text + start, end - start);
      check_response(&resp);
      start = end;
    }
  }
  int status;
  if (source_http_parse_status(text, size, &status) == 0)
    assert(status >= 100 && status <= 999);
  uint64_t first, last;
  int64_t total;
  if (source_http_parse_content_range(text, size, &first, &last, &total) == 0)
    assert(first <= last && (total == -1 || last < (uint64_t)total));
  return 0;
}
