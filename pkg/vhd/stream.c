/* vimport vhd: the dynamic VHD decoder (see vhd.h for the format and contract).
 *
 * What is VHD's own is here: the footer copy and the dynamic header, checked like qemu
 * checks them, and how a BAT entry places a block (a sector number; the block's sector
 * bitmap comes first and is skipped). The phases over the stream, the BAT, the block
 * order and the copy are pkg/blocktable's.
 */
#include "vhd.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "blocktable/blocktable.h"
#include "sniff/sniff.h"

#define SECTOR 512u
#define DYN_HEADER_BYTES 1024u
#define DISK_FIXED 2
#define DISK_DYNAMIC 3
#define DISK_DIFFERENCING 4
#define BAT_UNUSED 0xffffffffu
#define MAX_SECTORS 0xff000000ull /* qemu's limit: 2040 GiB */

struct footer {
  uint64_t data_offset;
  uint64_t current_size;
  uint64_t total_sectors; /* the virtual size qemu uses, in sectors */
  uint32_t disk_type;
  char creator[5];
};

struct dyn_header {
  uint64_t table_offset;
  uint32_t max_entries;
  uint32_t block_size;
  uint64_t bitmap_bytes; /* sector bitmap in front of each block */
};

static uint32_t be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

/* ---- footer and dynamic header ---- */

static uint32_t footer_checksum(const uint8_t *f)
{
  uint32_t sum = 0;
  for (unsigned i = 0; i < SECTOR; i++)
    if (i < 64 || i >= 68) /* the checksum field itself counts as zero */
      sum += f[i];
  return ~sum;
}

static int check_disk_type(uint32_t type, struct verr *err)
{
  if (type == DISK_DYNAMIC)
    return 0;
  if (type == DISK_DIFFERENCING)
    return verr_set(err, VERR_FORMAT,
                    "the VHD is a differencing disk: it holds only the changes to a parent "
                    "image that is not part of the source; merge it first (qemu-img convert "
                    "with the parent beside it) and import the result");
  return verr_set(err, VERR_FORMAT,
                  "the VHD has disk type %" PRIu32 " (%s), not dynamic: it is not streamable; "
                  "it has to be read through qemu-nbd from a local copy", type,
                  type == DISK_FIXED ? "fixed" : "unknown");
}

static int parse_footer(const uint8_t *f, size_t len, struct footer *ft, struct verr *err)
{
  if (len < SECTOR || memcmp(f, "conectix", 8) != 0)
    return verr_set(err, VERR_FORMAT,
                    "the source does not start with a VHD footer copy (\"conectix\"): it is "
                    "not a dynamic VHD, which is the only kind that is streamable (a fixed "
                    "VHD is raw data with its footer at the end)");
  if (be32(f + 64) != footer_checksum(f))
    return verr_set(err, VERR_FORMAT,
                    "the VHD footer checksum is 0x%08" PRIx32 ", its bytes sum to 0x%08" PRIx32
                    ": the image is damaged", be32(f + 64), footer_checksum(f));
  ft->data_offset = be64(f + 16);
  ft->current_size = be64(f + 48);
  ft->disk_type = be32(f + 60);
  memcpy(ft->creator, f + 28, 4);
  ft->creator[4] = '\0';
  if (check_disk_type(ft->disk_type, err) < 0)
    return -1;
  ft->total_sectors = sniff_vhd_virtual_size(f) / SECTOR; /* qemu's CHS rule */
  if (ft->total_sectors > MAX_SECTORS)
    return verr_set(err, VERR_FORMAT,
                    "the VHD says %" PRIu64 " sectors, more than the 2040 GiB qemu reads: the "
                    "footer is damaged", ft->total_sectors);
  if (ft->data_offset < SECTOR || ft->data_offset > UINT64_MAX / 2)
    return verr_set(err, VERR_FORMAT,
                    "the VHD dynamic header offset %" PRIu64 " lies inside the footer copy or "
                    "out of range: the footer is damaged", ft->data_offset);
  return 0;
}

static int parse_dyn_header(const uint8_t *h, const struct footer *ft, struct dyn_header *dh,
                            struct verr *err)
{
  if (memcmp(h, "cxsparse", 8) != 0)
    return verr_set(err, VERR_FORMAT,
                    "no VHD dynamic disk header (\"cxsparse\") at offset %" PRIu64 ": the "
                    "image is damaged", ft->data_offset);
  dh->table_offset = be64(h + 16);
  dh->max_entries = be32(h + 28);
  dh->block_size = be32(h + 32);
  uint32_t bs = dh->block_size;
  if (bs < SECTOR || (bs & (bs - 1)) != 0)
    return verr_set(err, VERR_FORMAT,
                    "the VHD block size %" PRIu32 " is not a power of two of at least 512: "
                    "the dynamic header is damaged", bs);
  if ((uint64_t)dh->max_entries * bs < ft->total_sectors * SECTOR)
    return verr_set(err, VERR_FORMAT,
                    "the VHD block table has %" PRIu32 " entries of %" PRIu32 " bytes, too "
                    "few for a disk of %" PRIu64 " bytes: the image is damaged",
                    dh->max_entries, bs, ft->total_sectors * SECTOR);
  if (dh->table_offset < ft->data_offset + DYN_HEADER_BYTES ||
      dh->table_offset > UINT64_MAX / 2)
    return verr_set(err, VERR_FORMAT,
                    "the VHD block table at offset %" PRIu64 " does not follow the dynamic "
                    "header at %" PRIu64 ": it is not streamable in one pass; read it through "
                    "qemu-nbd", dh->table_offset, ft->data_offset);
  dh->bitmap_bytes = ((uint64_t)bs / (8 * SECTOR) + SECTOR - 1) / SECTOR * SECTOR;
  return 0;
}

int vhd_stream_probe(const void *head, size_t len, struct verr *err)
{
  const uint8_t *h = head;
  struct footer ft;
  struct dyn_header dh;
  if (parse_footer(h, len, &ft, err) < 0)
    return -1;
  if (ft.data_offset > len || len - ft.data_offset < DYN_HEADER_BYTES)
    return 0;
  return parse_dyn_header(h + ft.data_offset, &ft, &dh, err);
}

/* ---- what the skeleton needs ---- */

static int read_header(struct vcursor *cur, void *scratch, void *info_out,
                       struct blocktable_layout *l, struct verr *err)
{
  struct vhd_info *info = info_out;
  uint8_t f[SECTOR], h[DYN_HEADER_BYTES];
  struct footer ft;
  struct dyn_header dh;
  ssize_t n = vcursor_read_some(cur, f, sizeof f, err);
  if (n < 0 || parse_footer(f, (size_t)n, &ft, err) < 0)
    return -1;
  info->virtual_size = ft.total_sectors * SECTOR;
  info->current_size = ft.current_size;
  memcpy(info->creator_app, ft.creator, sizeof info->creator_app);
  if (vcursor_skip_to(cur, ft.data_offset, scratch, BLOCKTABLE_MAX_EXTENT, err) < 0 ||
      vcursor_read_exact(cur, h, sizeof h, "dynamic disk header", err) < 0 ||
      parse_dyn_header(h, &ft, &dh, err) < 0)
    return -1;
  info->block_size = dh.block_size;
  *l = (struct blocktable_layout){
    .virtual_size = info->virtual_size,
    .block_size = dh.block_size,
    .entries = dh.max_entries,
    .table_offset = dh.table_offset,
    .big_endian = true,
    .first_unused = BAT_UNUSED,
    .data_base = dh.bitmap_bytes,
    .data_stride = SECTOR,
    .data_lead = dh.bitmap_bytes,
    .short_is_zeros = false, /* qemu: "the image has been truncated" */
  };
  return 0;
}

static int refuse_overlap(uint64_t prev, uint64_t b, uint32_t entry, uint64_t at,
                          uint64_t free_from, struct verr *err)
{
  (void)entry;
  return verr_set(err, VERR_FORMAT,
                  "VHD block %" PRIu64 " at offset %" PRIu64 " starts before the end of the %s "
                  "(offset %" PRIu64 "): it is not streamable in one pass; read it through "
                  "qemu-nbd", b, at, prev == UINT64_MAX ? "block table" : "previous block",
                  free_from);
}

static const struct blocktable_format vhd_format = {
  .name = "VHD",
  .table_name = "block allocation table",
  .default_table_bytes = VHD_DEFAULT_TABLE_BYTES,
  .info_size = sizeof(struct vhd_info),
  .counts = { offsetof(struct vhd_info, source_bytes), offsetof(struct vhd_info, data_bytes),
              offsetof(struct vhd_info, zero_bytes), offsetof(struct vhd_info, blocks) },
  .header = read_header,
  .refuse_overlap = refuse_overlap,
};

int vhd_stream_decode(struct vreader *in, struct vsink *out,
                      const struct vhd_stream_opts *opts, struct vhd_info *info,
                      struct verr *err)
{
  return blocktable_decode(in, out, &vhd_format, opts ? opts->table_bytes : 0, info, err);
}
