/* libFuzzer target for pkg/openpgp: arbitrary bytes as an armored or binary keyring, as
 * a clearsigned message, as a detached signature (over the input itself, with the
 * keyring parsed from it when it parses) and through the raw packet walker. Every
 * failure must explain itself; nothing may crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openpgp/openpgp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must_explain(int r, const struct verr *err)
{
  if (r < 0 && err->message[0] == '\0')
    abort();
}

static void walk_packets(const uint8_t *data, size_t size)
{
  struct openpgp_packet pkt;
  struct verr err = { 0 };
  size_t off = 0;
  int r;
  while ((r = openpgp_packet_next(data, size, &off, &pkt, &err)) == 1)
    if (pkt.body < data || pkt.body + pkt.len > data + size || off > size)
      abort();
  must_explain(r, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* copy so no parser can rely on a NUL after the input */
  char *buf = malloc(size ? size : 1);
  if (buf == NULL)
    return 0;
  memcpy(buf, data, size);
  struct verr err = { 0 };

  walk_packets((const uint8_t *)buf, size);

  unsigned char *bin = NULL;
  size_t bin_len = 0;
  int r = openpgp_dearmor_any(buf, size, &bin, &bin_len, &err);
  must_explain(r, &err);
  free(bin);

  struct openpgp_keyring *kr = NULL;
  err.message[0] = '\0';
  r = openpgp_keyring_parse(buf, size, &kr, &err);
  must_explain(r, &err);

  struct openpgp_clearsigned cs;
  err.message[0] = '\0';
  r = openpgp_clearsign_parse(buf, size, &cs, &err);
  must_explain(r, &err);
  if (r == 0) {
    if (cs.text_len > size)
      abort();
    openpgp_clearsigned_free(&cs);
  }

  if (kr != NULL) {
    struct openpgp_result res;
    char *text = NULL;
    size_t text_len = 0;
    err.message[0] = '\0';
    r = openpgp_verify_file(kr, buf, size, buf, size, &text, &text_len, &res, &err);
    must_explain(r, &err);
    free(text);
    text = NULL;
    err.message[0] = '\0';
    r = openpgp_verify_file(kr, buf, size, NULL, 0, &text, &text_len, &res, &err);
    must_explain(r, &err);
    free(text);
    openpgp_keyring_free(kr);
  }
  free(buf);
  return 0;
}
