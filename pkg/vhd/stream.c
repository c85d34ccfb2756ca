/* vimport vhd: the dynamic VHD decoder (see vhd.h for the format and contract).
 *
 * Three phases over one stream: the footer copy and dynamic header (checked like qemu
 * checks them), the BAT (read whole; the allocated blocks inside the disk are sorted by
 * file offset and checked to lie after the BAT and not to overlap), then the blocks in
 * that order, each copied through one VHD_MAX_EXTENT buffer. The stream is read to its
 * end (the trailing footer copy) and not otherwise checked there.
 */
#include "vhd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"

#define SECTOR 512u
#define DYN_HEADER_BYTES 1024u
#define DISK_FIXED 2
#define DISK_DYNAMIC 3
#define DISK_DIFFERENCING 4
#define BAT_UNUSED 0xffffffffu
#define MAX_GEOMETRY (65535ull * 16 * 255)
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

struct decoder {
  struct vcursor cur; /* the source, counted into info->source_bytes */
  struct vsink *out;
  struct vhd_info *info;
  struct footer ft;
  struct dyn_header dh;
  uint64_t virtual_size;
  uint64_t nblocks;  /* blocks inside the virtual size */
  uint32_t *bat;
  uint64_t *order;   /* allocated blocks (< nblocks): sector << 32 | block, sorted */
  uint64_t norder;
  uint8_t *buf;      /* VHD_MAX_EXTENT */
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

/* qemu's rule for the size: CHS geometry unless the creator uses current_size. */
static uint64_t footer_total_sectors(const uint8_t *f, const struct footer *ft)
{
  static const char *const size_creators[] = { "win ", "qem2", "d2v ", "CTXS" };
  uint64_t chs = (uint64_t)(f[56] << 8 | f[57]) * f[58] * f[59];
  int use_chs = memcmp(ft->creator, "tap", 4) != 0; /* "tap\0" */
  for (size_t i = 0; i < sizeof size_creators / sizeof size_creators[0]; i++)
    use_chs &= memcmp(ft->creator, size_creators[i], 4) != 0;
  if (!use_chs || chs == MAX_GEOMETRY)
    return ft->current_size / SECTOR;
  return chs;
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
  ft->total_sectors = footer_total_sectors(f, ft);
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

/* ---- output ---- */

static int emit_zero(struct decoder *d, uint64_t off, uint64_t len, struct verr *err)
{
  return vsink_zero_counted(d->out, off, len, &d->info->zero_bytes, err);
}

/* Guest range of block `b`, clipped to the disk. */
static uint64_t block_len(const struct decoder *d, uint64_t b)
{
  uint64_t off = b * d->dh.block_size;
  uint64_t left = d->virtual_size - off;
  return left < d->dh.block_size ? left : d->dh.block_size;
}

/* Zero extents for every unallocated block inside the disk, adjacent ones merged. */
static int emit_unallocated(struct decoder *d, struct verr *err)
{
  uint64_t run_start = 0, run_len = 0;
  for (uint64_t b = 0; b < d->nblocks; b++) {
    if (d->bat[b] != BAT_UNUSED)
      continue;
    uint64_t off = b * d->dh.block_size;
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

/* Copy block `b` (its bitmap is next in the stream) to the sink. A stream that ends
 * inside a block is refused, as qemu refuses the file ("the image has been truncated"). */
static int copy_block(struct decoder *d, uint64_t b, struct verr *err)
{
  uint64_t guest = b * d->dh.block_size;
  uint64_t len = block_len(d, b);
  uint64_t at = (uint64_t)d->bat[b] * SECTOR;
  if (vcursor_skip_to(&d->cur, at + d->dh.bitmap_bytes, d->buf, VHD_MAX_EXTENT, err) < 0)
    return -1;
  for (uint64_t done = 0; done < len;) {
    uint64_t want = len - done < VHD_MAX_EXTENT ? len - done : VHD_MAX_EXTENT;
    ssize_t n = vcursor_read_some(&d->cur, d->buf, (size_t)want, err);
    if (n < 0)
      return -1;
    if ((uint64_t)n < want)
      return verr_set(err, VERR_FORMAT,
                      "the VHD stream ends inside block %" PRIu64 " (at offset %" PRIu64
                      "): the image is truncated; fetch it again", b, at);
    if (vsink_data(d->out, guest + done, d->buf, (size_t)n, err) < 0)
      return -1;
    d->info->data_bytes += (uint64_t)n;
    done += (uint64_t)n;
  }
  return 0;
}

/* ---- the BAT ---- */

static int check_table_bound(const struct decoder *d, uint64_t table_bytes, struct verr *err)
{
  uint64_t need = (uint64_t)d->dh.max_entries * 4 + d->nblocks * 8;
  if (need > table_bytes)
    return verr_set(err, VERR_FORMAT,
                    "the VHD block table of %" PRIu32 " entries needs %" PRIu64 " bytes of "
                    "memory, more than the limit of %" PRIu64 ": the header is damaged or the "
                    "limit too low", d->dh.max_entries, need, table_bytes);
  return 0;
}

static int read_bat(struct decoder *d, struct verr *err)
{
  size_t bytes = (size_t)d->dh.max_entries * 4;
  d->bat = malloc(bytes ? bytes : 1);
  d->order = malloc(d->nblocks ? (size_t)d->nblocks * sizeof *d->order : 1);
  if (d->bat == NULL || d->order == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the VHD block table");
  if (vcursor_skip_to(&d->cur, d->dh.table_offset, d->buf, VHD_MAX_EXTENT, err) < 0 ||
      vcursor_read_exact(&d->cur, d->bat, bytes, "block allocation table", err) < 0)
    return -1;
  for (uint32_t i = 0; i < d->dh.max_entries; i++)
    d->bat[i] = be32((const uint8_t *)&d->bat[i]);
  return 0;
}

static int by_offset(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The allocated blocks in file order, each after the BAT and clear of the next one.
 * Sorted as (sector << 32 | block) so one plain qsort needs no context. */
static int order_blocks(struct decoder *d, struct verr *err)
{
  for (uint64_t b = 0; b < d->nblocks; b++)
    if (d->bat[b] != BAT_UNUSED)
      d->order[d->norder++] = (uint64_t)d->bat[b] << 32 | b;
  qsort(d->order, (size_t)d->norder, sizeof *d->order, by_offset);
  uint64_t free_from = d->info->source_bytes; /* the end of the BAT */
  uint64_t span = d->dh.bitmap_bytes + d->dh.block_size;
  for (uint64_t i = 0; i < d->norder; i++) {
    uint64_t at = (d->order[i] >> 32) * SECTOR;
    if (at < free_from)
      return verr_set(err, VERR_FORMAT,
                      "VHD block %" PRIu32 " at offset %" PRIu64 " starts before the end of "
                      "the %s (offset %" PRIu64 "): it is not streamable in one pass; read it "
                      "through qemu-nbd", (uint32_t)d->order[i], at,
                      i == 0 ? "block table" : "previous block", free_from);
    free_from = at + span;
  }
  d->info->blocks = d->norder;
  return 0;
}

/* ---- setup ---- */

static int read_headers(struct decoder *d, struct verr *err)
{
  uint8_t f[SECTOR], h[DYN_HEADER_BYTES];
  ssize_t n = vcursor_read_some(&d->cur, f, sizeof f, err);
  if (n < 0)
    return -1;
  if (parse_footer(f, (size_t)n, &d->ft, err) < 0)
    return -1;
  d->virtual_size = d->ft.total_sectors * SECTOR;
  d->info->virtual_size = d->virtual_size;
  d->info->current_size = d->ft.current_size;
  memcpy(d->info->creator_app, d->ft.creator, sizeof d->info->creator_app);
  if (vcursor_skip_to(&d->cur, d->ft.data_offset, d->buf, VHD_MAX_EXTENT, err) < 0 ||
      vcursor_read_exact(&d->cur, h, sizeof h, "dynamic disk header", err) < 0)
    return -1;
  if (parse_dyn_header(h, &d->ft, &d->dh, err) < 0)
    return -1;
  d->info->block_size = d->dh.block_size;
  d->nblocks = (d->virtual_size + d->dh.block_size - 1) / d->dh.block_size;
  return 0;
}

static void decoder_fini(struct decoder *d)
{
  free(d->bat);
  free(d->order);
  free(d->buf);
}

int vhd_stream_decode(struct vreader *in, struct vsink *out,
                      const struct vhd_stream_opts *opts, struct vhd_info *info,
                      struct verr *err)
{
  struct vhd_info scratch_info;
  __attribute__((cleanup(decoder_fini))) struct decoder d = { .out = out };
  d.info = info ? info : &scratch_info;
  memset(d.info, 0, sizeof *d.info);
  vcursor_init(&d.cur, in, "VHD", &d.info->source_bytes);
  uint64_t table_bytes = opts && opts->table_bytes ? opts->table_bytes
                                                   : VHD_DEFAULT_TABLE_BYTES;
  d.buf = malloc(VHD_MAX_EXTENT);
  if (d.buf == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the VHD decoder buffer");
  if (read_headers(&d, err) < 0 || check_table_bound(&d, table_bytes, err) < 0 ||
      read_bat(&d, err) < 0 || order_blocks(&d, err) < 0 || emit_unallocated(&d, err) < 0)
    return -1;
  for (uint64_t i = 0; i < d.norder; i++)
    if (copy_block(&d, (uint32_t)d.order[i], err) < 0)
      return -1;
  return vcursor_drain(&d.cur, d.buf, VHD_MAX_EXTENT, err);
}
