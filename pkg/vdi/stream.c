/* vimport vdi: the VDI decoder (see vdi.h for the format and contract).
 *
 * Three phases over one stream: the header (checked like qemu checks it), the block map
 * (read whole; the mapped blocks inside the disk are sorted by file position and checked
 * to lie after the map and to be distinct), then the blocks in that order, each copied
 * through one VDI_MAX_EXTENT buffer. What follows the last block is read and dropped.
 */
#include "vdi.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"

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

struct decoder {
  struct vcursor cur; /* the source, counted into info->source_bytes */
  struct vsink *out;
  struct vdi_info *info;
  struct header hd;
  uint64_t nblocks;  /* blocks inside the virtual size */
  uint32_t *map;
  uint64_t *order;   /* mapped blocks (< nblocks): map entry << 32 | block, sorted */
  uint64_t norder;
  uint8_t *buf;      /* VDI_MAX_EXTENT */
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

/* ---- output ---- */

static int emit_zero(struct decoder *d, uint64_t off, uint64_t len, struct verr *err)
{
  return vsink_zero_counted(d->out, off, len, &d->info->zero_bytes, err);
}

/* Guest bytes of block `b`, clipped to the disk. */
static uint64_t block_len(const struct decoder *d, uint64_t b)
{
  uint64_t left = d->hd.disk_size - b * d->hd.block_size;
  return left < d->hd.block_size ? left : d->hd.block_size;
}

/* Zero extents for every unmapped block inside the disk, adjacent ones merged. */
static int emit_unmapped(struct decoder *d, struct verr *err)
{
  uint64_t run_start = 0, run_len = 0;
  for (uint64_t b = 0; b < d->nblocks; b++) {
    if (d->map[b] < MAP_FIRST_UNUSED)
      continue;
    uint64_t off = b * d->hd.block_size;
    if (run_len > 0 && run_start + run_len != off) {
      if (emit_zero(d, run_start, run_len, err) < 0)
        return -1;
      run_len = 0;
    }
    if (run_len == 0)
      run_start = off;
    run_len += block_len(d, b);
  }
  return emit_zero(d, run_start, run_len, err);
}

/* Copy block `b` to the sink; what lies past the end of the stream reads as zeros. */
static int copy_block(struct decoder *d, uint64_t b, struct verr *err)
{
  uint64_t guest = b * d->hd.block_size;
  uint64_t len = block_len(d, b);
  uint64_t at = d->hd.offset_data + (uint64_t)d->map[b] * d->hd.block_size;
  if (vcursor_skip_to(&d->cur, at, d->buf, VDI_MAX_EXTENT, err) < 0)
    return -1;
  uint64_t done = 0;
  while (done < len && !d->cur.at_end) {
    uint64_t want = len - done < VDI_MAX_EXTENT ? len - done : VDI_MAX_EXTENT;
    ssize_t n = vcursor_read_some(&d->cur, d->buf, (size_t)want, err);
    if (n < 0)
      return -1;
    if (n > 0 && vsink_data(d->out, guest + done, d->buf, (size_t)n, err) < 0)
      return -1;
    d->info->data_bytes += (uint64_t)n;
    done += (uint64_t)n;
  }
  return emit_zero(d, guest + done, len - done, err);
}

/* ---- the block map ---- */

static int read_map(struct decoder *d, uint64_t table_bytes, struct verr *err)
{
  uint64_t need = (uint64_t)d->hd.blocks * 4 + d->nblocks * 8;
  if (need > table_bytes)
    return verr_set(err, VERR_FORMAT,
                    "the VDI block map of %" PRIu32 " entries needs %" PRIu64 " bytes of "
                    "memory, more than the limit of %" PRIu64 ": the header is damaged or the "
                    "limit too low", d->hd.blocks, need, table_bytes);
  size_t bytes = (size_t)d->hd.blocks * 4;
  d->map = malloc(bytes ? bytes : 1);
  d->order = malloc(d->nblocks ? (size_t)d->nblocks * sizeof *d->order : 1);
  if (d->map == NULL || d->order == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the VDI block map");
  if (vcursor_skip_to(&d->cur, d->hd.offset_bmap, d->buf, VDI_MAX_EXTENT, err) < 0 ||
      vcursor_read_exact(&d->cur, d->map, bytes, "block map", err) < 0)
    return -1;
  for (uint32_t i = 0; i < d->hd.blocks; i++)
    d->map[i] = le32((const uint8_t *)&d->map[i]);
  return 0;
}

static int by_entry(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The mapped blocks in file order (data offset grows with the entry), each distinct. */
static int order_blocks(struct decoder *d, struct verr *err)
{
  for (uint64_t b = 0; b < d->nblocks; b++)
    if (d->map[b] < MAP_FIRST_UNUSED)
      d->order[d->norder++] = (uint64_t)d->map[b] << 32 | b;
  qsort(d->order, (size_t)d->norder, sizeof *d->order, by_entry);
  for (uint64_t i = 1; i < d->norder; i++)
    if (d->order[i] >> 32 == d->order[i - 1] >> 32)
      return verr_set(err, VERR_FORMAT,
                      "VDI blocks %" PRIu32 " and %" PRIu32 " map to the same data block "
                      "%" PRIu64 ": not streamable in one pass; read it through qemu-nbd",
                      (uint32_t)d->order[i - 1], (uint32_t)d->order[i], d->order[i] >> 32);
  d->info->blocks = d->norder;
  return 0;
}

/* ---- setup ---- */

static int read_header(struct decoder *d, struct verr *err)
{
  uint8_t h[VDI_HEADER_BYTES];
  ssize_t n = vcursor_read_some(&d->cur, h, sizeof h, err);
  if (n < 0)
    return -1;
  if (parse_header(h, (size_t)n, &d->hd, err) < 0)
    return -1;
  d->info->virtual_size = d->hd.disk_size;
  d->info->block_size = d->hd.block_size;
  d->info->image_type = d->hd.type;
  d->nblocks = (d->hd.disk_size + d->hd.block_size - 1) / d->hd.block_size;
  return 0;
}

static void decoder_fini(struct decoder *d)
{
  free(d->map);
  free(d->order);
  free(d->buf);
}

int vdi_stream_decode(struct vreader *in, struct vsink *out,
                      const struct vdi_stream_opts *opts, struct vdi_info *info,
                      struct verr *err)
{
  struct vdi_info scratch_info;
  __attribute__((cleanup(decoder_fini))) struct decoder d = { .out = out };
  d.info = info ? info : &scratch_info;
  memset(d.info, 0, sizeof *d.info);
  vcursor_init(&d.cur, in, "VDI", &d.info->source_bytes);
  uint64_t table_bytes = opts && opts->table_bytes ? opts->table_bytes
                                                   : VDI_DEFAULT_TABLE_BYTES;
  d.buf = malloc(VDI_MAX_EXTENT);
  if (d.buf == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the VDI decoder buffer");
  if (read_header(&d, err) < 0 || read_map(&d, table_bytes, err) < 0 ||
      order_blocks(&d, err) < 0 || emit_unmapped(&d, err) < 0)
    return -1;
  for (uint64_t i = 0; i < d.norder; i++)
    if (copy_block(&d, (uint32_t)d.order[i], err) < 0)
      return -1;
  return vcursor_drain(&d.cur, d.buf, VDI_MAX_EXTENT, err);
}
