/* Fuzz the gcs source's parsers of what comes from outside (pkg/source/gcs.h): the same
 * bytes as an object's metadata, a service-account key file, a token answer and (cut at
 * a NUL) an object URL. Each either fails with a message or fills its struct within
 * bounds: strings NUL-terminated inside their fields, a token without a character a
 * header cannot hold, a crc32c and md5Hash whose base64 decodes to 4 and 16 bytes.
 * Never a crash, leak or read out of bounds. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "source/gcs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_meta(const uint8_t *data, size_t size)
{
  struct gcs_object_meta m;
  struct verr err = { 0 };
  if (gcs_parse_object_meta(data, size, &m, &err) < 0) {
    assert(err.message[0] != '\0');
    return;
  }
  assert(m.generation >= 0 && m.size >= 0);
  unsigned char buf[32];
  if (m.has_crc32c)
    assert(gcs_base64_decode(m.crc32c_b64, buf, sizeof buf) == 4);
  if (m.has_md5)
    assert(gcs_base64_decode(m.md5_b64, buf, sizeof buf) == 16);
}

static void fuzz_key(const uint8_t *data, size_t size)
{
  struct gcs_key k;
  struct verr err = { 0 };
  if (gcs_parse_key(data, size, &k, &err) < 0) {
    assert(k.private_key_pem == NULL);
    return;
  }
  assert(strlen(k.client_email) < sizeof k.client_email);
  assert(strlen(k.token_uri) < sizeof k.token_uri);
  assert(strchr(k.client_email, '"') == NULL); /* it goes into the JWT as is */
  assert(k.private_key_pem != NULL);
  gcs_key_free(&k);
}

static void fuzz_token(const uint8_t *data, size_t size)
{
  char token[GCS_TOKEN_MAX];
  int64_t expires = 0;
  struct verr err = { 0 };
  if (gcs_parse_token(data, size, token, sizeof token, &expires, &err) < 0)
    return;
  assert(expires >= 1 && token[0] != '\0');
  for (const char *p = token; *p; p++)
    assert(*p > 0x20 && *p < 0x7f);
}

static void fuzz_location(const uint8_t *data, size_t size)
{
  char *url = malloc(size + 1);
  assert(url != NULL);
  memcpy(url, data, size);
  url[size] = '\0';
  struct gcs_location loc;
  struct verr err = { 0 };
  if (gcs_parse_location(url, &loc, &err) == 0) {
    assert(loc.bucket[0] != '\0' && loc.object[0] != '\0');
    assert(strchr(loc.bucket, '/') == NULL);
  }
  free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_meta(data, size);
  fuzz_key(data, size);
  fuzz_token(data, size);
  fuzz_location(data, size);
  return 0;
}
