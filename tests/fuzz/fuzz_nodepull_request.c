/* libFuzzer target for pkg/nodepull's request parsing: the bytes a client of
 * cdi-containerimage-server sends, as a request head, and the first line of them also as
 * a Range value against a file size taken from the input.
 *
 * Invariants checked: a parsed path is NUL-terminated, starts with '/' or is empty, and
 * holds no NUL; the Range and If-Range values fit their fields; a partial range lies
 * inside the file and is not empty. Never crash or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nodepull/nodepull.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nodepull_request req;
  char *head = malloc(size ? size : 1); /* exactly `size` bytes: ASan sees any overread */
  if (head == NULL)
    return 0;
  memcpy(head, data, size);
  if (nodepull_parse_request(head, size, &req) == 0) {
    size_t n = strnlen(req.path, sizeof req.path);
    if (n == sizeof req.path || (n > 0 && req.path[0] != '/'))
      abort();
    if (strnlen(req.range, sizeof req.range) == sizeof req.range ||
        strnlen(req.if_range, sizeof req.if_range) == sizeof req.if_range)
      abort();
  }
  free(head);

  uint64_t file_size = 0;
  for (size_t i = 0; i < size && i < 8; i++)
    file_size = file_size << 8 | data[i];
  file_size >>= 1; /* below 2^63, as a file's size is */
  char value[300];
  size_t len = size > 8 ? size - 8 : 0;
  if (len >= sizeof value)
    len = sizeof value - 1;
  memcpy(value, data + (size > 8 ? 8 : size), len);
  value[len] = '\0';
  uint64_t start = 0, length = 0;
  if (nodepull_parse_range(value, file_size, &start, &length) == NODEPULL_RANGE_PART &&
      (length == 0 || start >= file_size || length > file_size - start))
    abort();
  return 0;
}
