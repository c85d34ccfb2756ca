/* patgen: write the bytes a pattern describes to stdout, so that e2e tests can make the
 * files whose block hashes tests/data/blkhash.tsv pins.
 *
 *   usage: patgen PATTERN > out.img
 *
 * A pattern is segments separated by commas, written in order:
 *   z:LEN        LEN zero bytes (the unit tests feed these through blkhash_zero())
 *   bHH:LEN      LEN bytes of value 0xHH (HH in hex: b41 is 'A')
 *   rSEED:LEN    LEN pseudo-random bytes: the splitmix64 sequence seeded with SEED
 *                (decimal), each 64-bit word little-endian, the last word cut short
 *   -            the whole pattern "-" is the empty file
 * LEN is a decimal byte count, optionally followed by K, M or G (powers of 1024).
 * Examples: "b41:64K,z:64K", "r3:100000", "z:64K,r4:64K".
 *
 * The generator itself is tests/unit/patgen.h, which the unit tests walk in memory; this
 * file only gives it a command line. Build: cc -Itests/unit -o patgen tests/data/patgen.c
 */
#include <stdio.h>

#include "patgen.h"

static int write_piece(void *opaque, int from_zero_segment, const unsigned char *buf, size_t len)
{
  (void)from_zero_segment;
  return fwrite(buf, 1, len, opaque) == len ? 0 : -1;
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fputs("usage: patgen PATTERN > out.img (see tests/data/README)\n", stderr);
    return 2;
  }
  if (patgen_walk(argv[1], 1 << 20, write_piece, stdout) != 0 || fflush(stdout) != 0) {
    fprintf(stderr, "patgen: '%s' is not a pattern, or stdout cannot be written\n", argv[1]);
    return 1;
  }
  return 0;
}
