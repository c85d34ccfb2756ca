/* pkg/sniff: the disk formats qemu-img knows and CDI refuses are named, not taken for raw.
 *
 * The images come from hack/make-refused-corpus.sh, which makes them with qemu-img (or
 * writes the headers qemu reads) and records what `qemu-img info` calls each one and its
 * virtual size: vimport must agree with qemu on both, since CDI's verdict is qemu's.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "corpus.h"
#include "sniff/sniff.h"

static const char *corpus(void)
{
  static char dir[512];
  return test_corpus_dir(dir, sizeof dir, "hack/make-refused-corpus.sh", "refused", "");
}

struct refused_image {
  char file[64];
  char format[32];
  unsigned long long virtual_size;
};

/* Calls `check` for every line of corpus.tsv; returns the number of lines. */
static int each_image(void (*check)(const struct refused_image *img, const unsigned char *data,
                                    uint64_t size))
{
  char path[700];
  snprintf(path, sizeof path, "%s/corpus.tsv", corpus());
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "cannot open %s", path);
  struct refused_image img;
  int n = 0;
  while (fscanf(f, "%63s %31s %llu", img.file, img.format, &img.virtual_size) == 3) {
    snprintf(path, sizeof path, "%s/%s", corpus(), img.file);
    uint64_t size = 0;
    unsigned char *data = test_read_whole(path, &size);
    check(&img, data, size);
    free(data);
    n++;
  }
  fclose(f);
  return n;
}

static void check_start(const struct refused_image *img, const unsigned char *data, uint64_t size)
{
  struct sniff_result r;
  sniff_buffer(data, size, NULL, &r);
  cr_log_info("%s: %s", img->file, sniff_format_name(r.format));
  if (strcmp(img->format, "dmg") == 0) {
    /* a DMG's start carries no signature: only its trailer tells */
    cr_assert_eq(r.format, SNIFF_FORMAT_RAW);
    return;
  }
  if (strcmp(img->format, "luks") == 0) {
    /* a LUKS volume is raw bytes to vimport's sniffer; the import policy refuses it */
    cr_assert_eq(r.format, SNIFF_FORMAT_RAW);
    cr_assert_eq(r.content, SNIFF_CONTENT_LUKS);
    return;
  }
  cr_assert(!r.refused, "%s: %s", img->file, r.message);
  cr_assert_str_eq(sniff_format_name(r.format), img->format, "%s", img->file);
  cr_assert_str_eq(sniff_qemu_driver(r.format), img->format);
  cr_assert(!sniff_format_cdi_accepts(r.format), "%s", img->file);
  cr_assert_eq(r.virtual_size, img->virtual_size, "%s: %llu, qemu-img says %llu", img->file,
               (unsigned long long)r.virtual_size, img->virtual_size);
}

static void check_trailer(const struct refused_image *img, const unsigned char *data, uint64_t size)
{
  uint64_t vsize = 0;
  cr_assert_geq(size, SNIFF_VHD_FOOTER_BYTES);
  bool dmg = sniff_dmg_trailer(data + size - SNIFF_VHD_FOOTER_BYTES, size, &vsize);
  cr_assert_eq(dmg, strcmp(img->format, "dmg") == 0, "%s", img->file);
  if (dmg)
    cr_assert_eq(vsize, img->virtual_size);
}

Test(sniff_refused, every_qemu_only_format_is_named_with_qemus_size)
{
  cr_assert_eq(each_image(check_start), 7);
}

Test(sniff_refused, only_a_koly_trailer_is_a_dmg)
{
  cr_assert_eq(each_image(check_trailer), 7);
}

Test(sniff_refused, cdi_accepts_exactly_qemus_six)
{
  const enum sniff_format accepted[] = { SNIFF_FORMAT_RAW, SNIFF_FORMAT_QCOW2, SNIFF_FORMAT_VMDK,
                                         SNIFF_FORMAT_VDI, SNIFF_FORMAT_VHD, SNIFF_FORMAT_VHDX };
  for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
    cr_assert(sniff_format_cdi_accepts(accepted[i]));
  cr_assert(!sniff_format_cdi_accepts(SNIFF_FORMAT_GZIP));
  cr_assert(!sniff_format_cdi_accepts(SNIFF_FORMAT_TAR));
  cr_assert(!sniff_format_cdi_accepts(SNIFF_FORMAT_HTML));
}

Test(sniff_refused, qcow_v1_is_not_qcow2)
{
  unsigned char b[512] = "QFI\xfb";
  b[7] = 1; /* version 1, big endian */
  b[31] = 2; /* the low byte of the big-endian size at 24 */
  struct sniff_result r;
  sniff_buffer(b, sizeof b, NULL, &r);
  cr_assert_eq(r.format, SNIFF_FORMAT_QCOW);
  cr_assert_eq(r.virtual_size, 2);
  b[7] = 3;
  sniff_buffer(b, sizeof b, NULL, &r);
  cr_assert_eq(r.format, SNIFF_FORMAT_QCOW2);
}
