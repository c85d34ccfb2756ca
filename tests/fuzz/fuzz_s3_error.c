/* Fuzz the s3 kind's parsers of untrusted bytes (pkg/source/s3.c): the bytes as the body
 * of an S3 error response, as an endpoint URL, and as the object's checksum and ETag
 * headers. An error's fields are printable ASCII within their size; an endpoint that
 * parses has a bucket and a key; a checksum is "sha256:" or "md5:" and hex; never a
 * crash, leak or read out of bounds. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "source/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void assert_printable(const char *s, size_t room)
{
  size_t n = strlen(s);
  assert(n < room);
  for (size_t i = 0; i < n; i++)
    assert(s[i] >= 0x20 && s[i] < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct s3_error e;
  s3_parse_error((const char *)data, size, &e);
  assert_printable(e.code, sizeof e.code);
  assert_printable(e.message, sizeof e.message);
  assert_printable(e.endpoint, sizeof e.endpoint);

  char *s = malloc(size + 1);
  if (s == NULL)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  struct s3_endpoint ep;
  struct verr err = { 0 };
  if (s3_parse_endpoint(s, &ep, &err) == 0) {
    assert(ep.bucket[0] != '\0' && ep.key[0] != '\0' && ep.host[0] != '\0');
    char path[4 * sizeof ep.key];
    assert(s3_uri_encode(ep.key, strlen(ep.key), path, sizeof path) == 0);
  }
  char out[160];
  const char *from = NULL;
  char *half = s + size / 2;
  if (s3_object_checksum(s, half, NULL, 0, out, sizeof out, &from) == 0) {
    assert(strncmp(out, "sha256:", 7) == 0 || strncmp(out, "md5:", 4) == 0);
    assert(from != NULL);
  }
  free(s);
  return 0;
}
