/* libFuzzer target for pkg/qcow2's cluster decompression (inflate.c), against qemu's rule
 * run on zlib alone: the first byte picks a cluster size (512 B to 2 MiB), the rest is the
 * compressed cluster.
 *
 * Invariants checked: whenever zlib with qemu's rule accepts a cluster, vimport accepts it
 * and produces the same bytes; whenever vimport refuses one, zlib refuses it too, and the
 * error has a message. (libdeflate, tried first, also takes a few degenerate Huffman codes
 * that zlib refuses, such as an empty distance code that is then used; no encoder writes
 * them, and inflate.c's comment says so. That direction is not asserted.)
 * When vimport says where the stream ended (consumed > 0) and zlib accepts the cluster,
 * zlib must find the stream's end exactly there, with the same bytes: the stream decoder
 * lets go of host bytes on that word.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "qcow2/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* qemu's qcow2_zlib_decompress(): raw deflate, 4 KiB window, one call with Z_FINISH; a
 * full cluster of output is success, whatever input is left. */
static int qemu_rule(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, -12) != Z_OK)
    abort();
  zs.next_in = (Bytef *)(uintptr_t)in;
  zs.avail_in = (uInt)in_len;
  zs.next_out = out;
  zs.avail_out = (uInt)out_len;
  int ret = inflate(&zs, Z_FINISH);
  int ok = (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && zs.avail_out == 0;
  inflateEnd(&zs);
  return ok;
}

/* Does the raw deflate stream in[0..len) end exactly at its last byte, giving `want`? */
static int zlib_ends_at(const uint8_t *in, size_t len, const uint8_t *want, size_t out_len)
{
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  uint8_t *out = malloc(out_len);
  if (out == NULL || inflateInit2(&zs, -12) != Z_OK)
    abort();
  zs.next_in = (Bytef *)(uintptr_t)in;
  zs.avail_in = (uInt)len;
  zs.next_out = out;
  zs.avail_out = (uInt)out_len;
  int ends = inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.avail_in == 0 && zs.avail_out == 0 &&
             memcmp(out, want, out_len) == 0;
  inflateEnd(&zs);
  free(out);
  return ends;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  size_t cluster = (size_t)512 << (data[0] % 13);
  const uint8_t *in = data + 1;
  size_t in_len = size - 1;

  struct qcow2_layout lay = { .cluster_size = (uint32_t)cluster };
  struct qcow2_inflater *z = NULL;
  struct verr err = { 0 };
  if (qcow2_inflater_new(&lay, &z, &err) < 0)
    abort();
  uint8_t *ours = malloc(cluster), *theirs = malloc(cluster);
  if (ours == NULL || theirs == NULL)
    abort();
  size_t consumed = 0;
  int ours_ok = qcow2_inflate(z, in, in_len, ours, cluster, 0x10000, &consumed, &err) == 0;
  int zlib_ok = qemu_rule(in, in_len, theirs, cluster);
  if (consumed > 0 && (!ours_ok || consumed > in_len))
    abort();
  if (consumed > 0 && zlib_ok && !zlib_ends_at(in, consumed, ours, cluster))
    abort(); /* the stream does not end where vimport says */
  if (zlib_ok && (!ours_ok || memcmp(ours, theirs, cluster) != 0))
    abort(); /* qemu's bytes, or a refusal of a cluster qemu reads */
  if (!ours_ok && (zlib_ok || err.message[0] == '\0'))
    abort();
  free(ours);
  free(theirs);
  qcow2_inflater_free(z);
  return 0;
}
