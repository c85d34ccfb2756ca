/* vimport decode: the table (see decode.h). Order matters: a format with a streaming
 * row and a qemu-nbd fallback lists the streaming row first. */
#include "decode.h"

#include <stddef.h>

static const struct decoder *const decoders[] = {
  &raw_decoder, &qcow2_decoder, &vmdk_decoder, &vhd_decoder, &vdi_decoder, &qemu_decoder,
};

const struct decoder *decoder_for(const struct sniff_result *s)
{
  for (size_t i = 0; i < sizeof decoders / sizeof decoders[0]; i++)
    if (decoders[i]->accepts(s))
      return decoders[i];
  return NULL;
}
