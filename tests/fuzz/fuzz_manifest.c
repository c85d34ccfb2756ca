/* libFuzzer target for pkg/verify's manifest reader: arbitrary bytes as a manifest file
 * (a user hands it to `vimport verify --manifest`), compared with the block hash of the
 * same bytes as an image. Opening must succeed or fail with a message, and the comparison
 * must end in a message; never crash, leak, hang or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkhash/blkhash.h"
#include "verify/verify.h"

#define FUZZ_BLOCK_SIZE 512u
#define FUZZ_MAX_IMAGE 8192u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* copy so the reader cannot rely on a NUL after the text */
  char *text = malloc(size ? size : 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  FILE *f = fmemopen(text, size ? size : 1, "r");
  if (f == NULL) {
    free(text);
    return 0;
  }
  if (size == 0)
    fgetc(f); /* fmemopen wants a non-empty buffer: read it empty instead */
  size_t length = size < FUZZ_MAX_IMAGE ? size : FUZZ_MAX_IMAGE;
  struct manifest_reader *m = NULL;
  struct verr err = { 0 };
  if (manifest_reader_open_stream(f, "fuzz", "sha256", FUZZ_BLOCK_SIZE, length, &m, &err) < 0) {
    if (err.message[0] == '\0')
      abort(); /* every refusal must explain itself */
    free(text);
    return 0;
  }
  struct blkhash_opts opts = { .digest_name = "sha256", .block_size = FUZZ_BLOCK_SIZE };
  manifest_reader_attach(m, &opts);
  struct blkhash *h = NULL;
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len = 0;
  if (blkhash_new(&opts, &h) != 0 || blkhash_update(h, data, length) != 0 ||
      blkhash_final(h, md, &md_len) != 0)
    abort();
  blkhash_free(h);
  char out[700] = "";
  manifest_reader_finish(m, "00", out, sizeof out);
  if (strnlen(out, sizeof out) == sizeof out || out[0] != ';')
    abort(); /* the comparison always says what it found */
  manifest_reader_free(m);
  free(text);
  return 0;
}
