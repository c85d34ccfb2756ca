/* libFuzzer target for pkg/trust's checksum-file parser: arbitrary bytes as a checksum
 * file, looked up under a name taken from the first line (or a fixed one), and the first
 * line as a URL for checksum_file_name_from_url. Parsing must succeed with a well-formed
 * checksum or fail with a message; never crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trust/trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  size_t len = 0;
  while (len < size && len < 256 && data[len] != '\n')
    len++;
  char line[257];
  memcpy(line, data, len);
  line[len] = '\0';

  struct verr err;
  char name[CHECKSUM_NAME_MAX];
  if (checksum_file_name_from_url(line, name, sizeof name, &err) == -1 && err.message[0] == '\0')
    abort();

  /* copy so the parser cannot rely on a NUL after the text */
  char *text = malloc(size ? size : 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  const char *names[] = { "disk.img", line[0] ? line : "x" };
  for (size_t i = 0; i < 2; i++) {
    struct checksum c;
    if (checksum_file_parse(text, size, names[i], &c, &err) == 0) {
      size_t want = checksum_hex_length(c.algorithm);
      if (want == 0 || strlen(c.hex) != want)
        abort(); /* a result pkg/digest cannot use */
    } else if (err.message[0] == '\0') {
      abort(); /* every failure must explain itself */
    }
  }
  free(text);
  return 0;
}
