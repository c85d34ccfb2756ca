/* vimport vdi: the VDI decoder (see vdi.h for the format and contract).
 *
 * What is VDI's own is here: the header, checked like qemu checks it, and how a block map
 * entry places a block (offset_data + entry * block size). The phases over the stream,
 * the block map, the block order and the copy are pkg/blocktable's.
 */
#include "vdi.h"

#include <inttypes.h>
#include <stddef.h>

#include "blocktable/blocktable.h"

#define SECTOR 512u
#define SIGNATURE 0xbeda107fu
#define VERSION_1_1 0x00010001u
#define BLOCK_SIZE (1024u * 1024u) /* the only size VirtualBox and qemu use */
#define TYPE_DYNAMIC 1
#define TYPE_STATIC 2
#define MAP_FIRST_UNUSED 0xfffffffeu /* 0xfffffffe discarded, 0xffffffff unallocated */

struct header {
  uint32_t version;
  uint32_t type;
  uint32_t offset_bmap;
  uint32_t offset_data;
  uint32_t sector_size;
  uint64_t disk_size;   /* rounded up to sectors */
  uint32_t block_size;
  uint32_t blocks;      /* entries in the block map */
};

static uint32_t le32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p + 4) << 32 | le32(p); }

static int all_zero(const uint8_t *p, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (p[i])
      return 0;
  return 1;
}

/* ---- the header ---- */

static int check_type(const uint8_t *h, uint32_t type, struct verr *err)
{
  if (!all_zero(h + 424, 16) || !all_zero(h + 440, 16) || type > TYPE_STATIC)
    return verr_set(err, VERR_FORMAT,
                    "the VDI (type %" PRIu32 ") is a differencing or undo image with a "
                    "parent that is not part of the source: clone it to a standalone image "
                    "(VBoxManage clonemedium) and import that", type);
  if (type < TYPE_DYNAMIC)
    return verr_set(err, VERR_FORMAT,
                    "the VDI has unknown image type %" PRIu32 ": the header is damaged", type);
  return 0;
}

static int check_layout(const struct header *hd, struct verr *err)
{
  if (hd->sector_size != SECTOR || hd->block_size != BLOCK_SIZE)
    return verr_set(err, VERR_FORMAT,
                    "the VDI has %" PRIu32 "-byte sectors and %" PRIu32 "-byte blocks; only "
                    "512 and 1 MiB are supported (as in qemu)", hd->sector_size,
                    hd->block_size);
  if (hd->offset_bmap % SECTOR || hd->offset_data % SECTOR)
    return verr_set(err, VERR_FORMAT,
                    "the VDI block map (offset %" PRIu32 ") or data (offset %" PRIu32 ") is "
                    "not sector-aligned: the header is damaged", hd->offset_bmap,
                    hd->offset_data);
  if (hd->disk_size > (uint64_t)hd->blocks * hd->block_size)
    return verr_set(err, VERR_FORMAT,
                    "the VDI disk of %" PRIu64 " bytes is larger than its block map of "
                    "%" PRIu32 " blocks: the header is damaged", hd->disk_size, hd->blocks);
  if (hd->offset_bmap < VDI_HEADER_BYTES ||
      hd->offset_data < (uint64_t)hd->offset_bmap + (uint64_t)hd->blocks * 4)
    return verr_set(err, VERR_FORMAT,
                    "the VDI block map (offset %" PRIu32 ", %" PRIu32 " entries) and data "
                    "(offset %" PRIu32 ") are not in header, map, data order: not streamable "
                    "in one pass; read it through qemu-nbd", hd->offset_bmap, hd->blocks,
                    hd->offset_data);
  return 0;
}

static int parse_header(const uint8_t *h, size_t len, struct header *hd, struct verr *err)
{
  if (len < VDI_HEADER_BYTES)
    return verr_set(err, VERR_FORMAT,
                    "the VDI header is cut short (%zu of %u bytes): the image is truncated",
                    len, VDI_HEADER_BYTES);
  if (le32(h + 64) != SIGNATURE)
    return verr_set(err, VERR_FORMAT,
                    "the source is not a VDI image (signature 0x%08" PRIx32 ", not 0x%08x)",
                    le32(h + 64), SIGNATURE);
  hd->version = le32(h + 68);
  if (hd->version != VERSION_1_1)
    return verr_set(err, VERR_FORMAT,
                    "VDI version %" PRIu32 ".%" PRIu32 " is not supported (only 1.1): "
                    "convert the image with VBoxManage clonemedium", hd->version >> 16,
                    hd->version & 0xffff);
  hd->type = le32(h + 76);
  hd->offset_bmap = le32(h + 340);
  hd->offset_data = le32(h + 344);
  hd->sector_size = le32(h + 360);
  hd->disk_size = le64(h + 368);
  hd->block_size = le32(h + 376);
  hd->blocks = le32(h + 384);
  if (check_type(h, hd->type, err) < 0 || check_layout(hd, err) < 0)
    return -1;
  /* like qemu: odd sizes (VBoxManage convertfromraw) round up to whole sectors; the
   * block map, checked above, is whole blocks and so still covers the result */
  hd->disk_size = (hd->disk_size + SECTOR - 1) / SECTOR * SECTOR;
  return 0;
}

int vdi_stream_probe(const void *head, size_t len, struct verr *err)
{
  struct header hd;
  return parse_header(head, len, &hd, err);
}

/* ---- what the skeleton needs ---- */

static int read_header(struct vcursor *cur, void *scratch, void *info_out,
                       struct blocktable_layout *l, struct verr *err)
{
  (void)scratch;
  struct vdi_info *info = info_out;
  uint8_t h[VDI_HEADER_BYTES];
  struct header hd;
  ssize_t n = vcursor_read_some(cur, h, sizeof h, err);
  if (n < 0 || parse_header(h, (size_t)n, &hd, err) < 0)
    return -1;
  info->virtual_size = hd.disk_size;
  info->block_size = hd.block_size;
  info->image_type = hd.type;
  *l = (struct blocktable_layout){
    .virtual_size = hd.disk_size,
    .block_size = hd.block_size,
    .entries = hd.blocks,
    .table_offset = hd.offset_bmap,
    .big_endian = false,
    .first_unused = MAP_FIRST_UNUSED,
    .data_base = hd.offset_data,
    .data_stride = hd.block_size,
    .short_is_zeros = true, /* qemu reads a file's tail that way */
  };
  return 0;
}

/* The data area follows the map (check_layout), so only two blocks can collide: two
 * guest blocks mapped to one data block. */
static int refuse_overlap(uint64_t prev, uint64_t b, uint32_t entry, uint64_t at,
                          uint64_t free_from, struct verr *err)
{
  (void)at, (void)free_from;
  return verr_set(err, VERR_FORMAT,
                  "VDI blocks %" PRIu64 " and %" PRIu64 " map to the same data block %" PRIu32
                  ": not streamable in one pass; read it through qemu-nbd", prev, b, entry);
}

static const struct blocktable_format vdi_format = {
  .name = "VDI",
  .table_name = "block map",
  .default_table_bytes = VDI_DEFAULT_TABLE_BYTES,
  .info_size = sizeof(struct vdi_info),
  .counts = { offsetof(struct vdi_info, source_bytes), offsetof(struct vdi_info, data_bytes),
              offsetof(struct vdi_info, zero_bytes), offsetof(struct vdi_info, blocks) },
  .header = read_header,
  .refuse_overlap = refuse_overlap,
};

int vdi_stream_decode(struct vreader *in, struct vsink *out,
                      const struct vdi_stream_opts *opts, struct vdi_info *info,
                      struct verr *err)
{
  return blocktable_decode(in, out, &vdi_format, opts ? opts->table_bytes : 0, info, err);
}
