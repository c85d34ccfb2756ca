/* libFuzzer target for pkg/spec: arbitrary bytes as a spec file, and the first line as a
 * quantity, a checksum and a block hash. Loading must fail cleanly or produce a spec
 * whose summary can be built; never crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_values(const uint8_t *data, size_t size)
{
  size_t len = 0;
  while (len < size && len < 256 && data[len] != '\n')
    len++;
  char line[257];
  memcpy(line, data, len);
  line[len] = '\0';
  struct verr err;
  uint64_t bytes;
  struct spec_checksum checksum = { 0 };
  struct spec_block_hash bh = { 0 };
  spec_parse_quantity(line, &bytes, &err);
  spec_parse_checksum(line, &checksum, &err);
  spec_parse_block_hash(line, &bh, &err);
  free(bh.digest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_values(data, size);
  struct verr err;
  struct import_spec *spec = NULL;
  if (spec_load_yaml_buffer((const char *)data, size, "fuzz.yaml", &spec, &err) == 0) {
    free(spec_describe(spec));
    spec_free(spec);
  } else if (strlen(err.message) == 0) {
    abort(); /* every failure must explain itself */
  }
  return 0;
}
