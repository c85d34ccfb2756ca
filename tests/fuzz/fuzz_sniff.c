/* libFuzzer target for sniff_buffer: arbitrary bytes, with and without a Content-Type.
 *
 * The first run sniffs the whole input with no Content-Type. The second takes a
 * Content-Type from the input (up to the first NUL within 64 bytes) and sniffs the rest,
 * so content-type parsing and the text rules are fuzzed together. Every result is also
 * described, into a buffer of a size taken from the input, to fuzz the line builder's
 * truncation. Invariants checked: refusal and return code agree, a refusal has a
 * message, bytes_seen is the input length, and names are never NULL.
 */
#include <stdlib.h>
#include <string.h>

#include "sniff/sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size, const char *type, size_t line_size)
{
  struct sniff_result r;
  int rc = sniff_buffer(data, size, type, &r);
  if ((rc == -1) != r.refused || (r.refused && r.message[0] == '\0') || r.bytes_seen != size)
    abort();
  if (sniff_format_name(r.format) == NULL || sniff_content_name(r.content) == NULL)
    abort();
  char line[600];
  sniff_describe(&r, line, line_size);
  if (line_size > 0 && strlen(line) >= line_size)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  size_t line_size = size > 0 ? data[0] % 600 : 600;
  check(data, size, NULL, 600);

  char type[65];
  size_t n = 0;
  while (n < size && n < 64 && data[n] != 0)
    n++;
  memcpy(type, data, n);
  type[n] = '\0';
  size_t skip = n < size ? n + 1 : n;
  check(data + skip, size - skip, type, line_size);
  return 0;
}
