/* vimport vmdk: the streamOptimized decoder (see vmdk.h for the format and contract).
 *
 * The stream is walked one 512-byte sector at a time: the header, then whatever sits
 * before the first marker (descriptor, and qemu's tables), then each sector starts a
 * marker. A grain marker's compressed bytes are read whole into one buffer, inflated
 * into a grain buffer and emitted; metadata is read past. A bitmap with one bit per
 * grain records what arrived, so a repeated grain is refused and the zero extents at
 * the end cover exactly what never arrived.
 *
 * qemu (7.2 at least) puts the grain directory and tables ahead of the grains and
 * writes no footer and no end-of-stream marker: its stream just stops after the last
 * grain. Its tables are kept when they fit the table bound (they lie in bytes read
 * anyway), so such a stream may end at a marker boundary once every grain its tables
 * list has arrived, and each grain must sit where its table entry says (qemu reads
 * through the tables, so a grain they do not name is not part of its disk).
 */
#include "vmdk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "blocktable/blocktable.h"

#define SECTOR 512u
#define FLAG_COMPRESSED (1u << 16)
#define FLAG_MARKERS (1u << 17)
#define COMPRESS_DEFLATE 1
#define MARKER_HEAD 12 /* lba (8) + size (4) in front of a grain's compressed bytes */
/* keeps capacity * 512 and grain arithmetic far from overflow (2^54 bytes = 16 PiB) */
#define MAX_CAPACITY_SECTORS (1ull << 45)

#define GD_AT_END UINT64_MAX /* the header's gdOffset when the tables follow the grains */
enum marker_type { MARKER_EOS = 0, MARKER_GT = 1, MARKER_GD = 2, MARKER_FOOTER = 3 };

struct header {
  uint32_t version;
  uint32_t flags;
  uint64_t capacity;      /* sectors */
  uint64_t grain_sectors;
  uint32_t gtes_per_gt;   /* entries in each grain table */
  uint64_t gd_offset;     /* sector of the grain directory, or GD_AT_END */
  uint64_t overhead;      /* sectors before the first marker */
  uint16_t compress;
};

struct decoder {
  struct vcursor cur; /* the source, counted into info->source_bytes */
  struct vsink *out;
  struct vmdk_info *info;
  struct header hd;
  uint64_t virtual_size;
  size_t grain_bytes;
  uint64_t ngrains;
  uint8_t *seen;     /* one bit per grain: its marker arrived */
  uint8_t *grain;    /* one inflated grain; also the scratch buffer for skipping */
  uint8_t *comp;     /* one grain marker: head, compressed bytes, padding */
  uint8_t *tables;   /* the sectors before the first marker, when they hold the grain
                      * directory and tables (qemu's layout); else NULL */
  uint64_t listed;   /* grains the tables name */
  uint64_t arrived;  /* of those, grains that arrived */
  size_t comp_cap;
  z_stream zs;
  int zs_ready;
};

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p)
{
  return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const uint8_t *p)
{
  return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* ---- the header ---- */

static int refuse_magic(const uint8_t *h, struct verr *err)
{
  if (memcmp(h, "# Disk DescriptorFile", 21) == 0)
    return verr_set(err, VERR_FORMAT,
                    "the source is a vmdk descriptor file, which only names extent files kept "
                    "elsewhere and is not streamable: import the extent file itself");
  return verr_set(err, VERR_FORMAT,
                  "the source is not a vmdk sparse extent (no KDMV magic at offset 0)");
}

static int parse_header(const uint8_t *h, size_t len, struct header *hd, struct verr *err)
{
  if (len < SECTOR)
    return verr_set(err, VERR_FORMAT,
                    "the vmdk header is cut short (%zu of %u bytes): the image is truncated",
                    len, SECTOR);
  if (memcmp(h, "KDMV", 4) != 0)
    return refuse_magic(h, err);
  hd->version = le32(h + 4);
  hd->flags = le32(h + 8);
  hd->capacity = le64(h + 12);
  hd->grain_sectors = le64(h + 20);
  hd->gtes_per_gt = le32(h + 44);
  hd->gd_offset = le64(h + 56);
  hd->overhead = le64(h + 64);
  hd->compress = le16(h + 77);
  if (hd->version < 1 || hd->version > 3)
    return verr_set(err, VERR_FORMAT,
                    "vmdk sparse extent version %" PRIu32 " is not supported (1..3): convert "
                    "the image with qemu-img convert -O qcow2 and import that", hd->version);
  if ((hd->flags & (FLAG_COMPRESSED | FLAG_MARKERS)) != (FLAG_COMPRESSED | FLAG_MARKERS))
    return verr_set(err, VERR_FORMAT,
                    "this vmdk (flags 0x%" PRIx32 ") has no compressed grain markers: it is "
                    "monolithicSparse or similar, which is not streamable; it has to be read "
                    "through qemu-nbd from a local copy", hd->flags);
  if (hd->compress != COMPRESS_DEFLATE)
    return verr_set(err, VERR_FORMAT,
                    "vmdk compression algorithm %u is not supported (only 1, deflate): the "
                    "header is damaged or the image comes from an unknown writer",
                    (unsigned)hd->compress);
  if (hd->grain_sectors == 0 || hd->grain_sectors > VMDK_MAX_GRAIN_BYTES / SECTOR)
    return verr_set(err, VERR_FORMAT,
                    "vmdk grain size of %" PRIu64 " sectors is outside 1..%u: the header is "
                    "damaged", hd->grain_sectors, VMDK_MAX_GRAIN_BYTES / SECTOR);
  if (hd->capacity > MAX_CAPACITY_SECTORS)
    return verr_set(err, VERR_FORMAT,
                    "vmdk capacity of %" PRIu64 " sectors is more than %llu: the header is "
                    "damaged", hd->capacity, (unsigned long long)MAX_CAPACITY_SECTORS);
  if (hd->overhead == 0 || hd->overhead > MAX_CAPACITY_SECTORS)
    return verr_set(err, VERR_FORMAT,
                    "vmdk overhead of %" PRIu64 " sectors (where the grains start) is out of "
                    "range: the header is damaged", hd->overhead);
  return 0;
}

int vmdk_stream_probe(const void *head, size_t len, struct verr *err)
{
  struct header hd;
  return parse_header(head, len, &hd, err);
}

/* ---- reading the stream ---- */

static int skip(struct decoder *d, uint64_t len, const char *what, struct verr *err)
{
  while (len > 0) {
    size_t n = len < d->grain_bytes ? (size_t)len : d->grain_bytes;
    if (vcursor_read_exact(&d->cur, d->grain, n, what, err) < 0)
      return -1;
    len -= n;
  }
  return 0;
}

/* Past the end-of-stream marker only zero padding may follow: anything else means
 * markers this decoder would have missed. */
static int drain_zeros(struct decoder *d, struct verr *err)
{
  for (;;) {
    uint64_t at = d->info->source_bytes;
    ssize_t n = vcursor_read_some(&d->cur, d->grain, d->grain_bytes, err);
    if (n < 0)
      return -1;
    if (n == 0)
      return 0;
    for (ssize_t i = 0; i < n; i++)
      if (d->grain[i] != 0)
        return verr_set(err, VERR_FORMAT,
                        "the vmdk stream has data at offset %" PRIu64 " after its "
                        "end-of-stream marker: the image is damaged or not streamOptimized",
                        at + (uint64_t)i);
  }
}

/* ---- qemu's tables ahead of the grains ---- */

static bool tables_ahead(const struct header *hd)
{
  return hd->gd_offset != GD_AT_END && hd->gd_offset > 0 && hd->gd_offset < hd->overhead &&
         hd->gtes_per_gt > 0;
}

/* The table entry of grain g: the sector of its marker, 0 (or 1, qemu's zeroed grain)
 * for none. The directory and tables were checked to lie inside d->tables. */
static uint32_t table_entry(const struct decoder *d, uint64_t g)
{
  uint32_t gt = le32(d->tables + d->hd.gd_offset * SECTOR + 4 * (g / d->hd.gtes_per_gt));
  return gt == 0 ? 0 : le32(d->tables + (uint64_t)gt * SECTOR + 4 * (g % d->hd.gtes_per_gt));
}

/* Every table inside the bytes kept; count the grains they name, each past them. */
static int check_tables(struct decoder *d, uint64_t kept, struct verr *err)
{
  uint64_t ntables = (d->ngrains + d->hd.gtes_per_gt - 1) / d->hd.gtes_per_gt;
  uint64_t gt_bytes = (uint64_t)d->hd.gtes_per_gt * 4;
  if (ntables > (kept - d->hd.gd_offset * SECTOR) / 4)
    return verr_set(err, VERR_FORMAT,
                    "the vmdk grain directory at sector %" PRIu64 " runs past where the "
                    "grains start (sector %" PRIu64 "): the image is damaged",
                    d->hd.gd_offset, d->hd.overhead);
  for (uint64_t t = 0; t < ntables; t++) {
    uint32_t gt = le32(d->tables + d->hd.gd_offset * SECTOR + 4 * t);
    if (gt != 0 && ((uint64_t)gt * SECTOR > kept || gt_bytes > kept - (uint64_t)gt * SECTOR))
      return verr_set(err, VERR_FORMAT,
                      "the vmdk grain table %" PRIu64 " at sector %" PRIu32 " runs past where "
                      "the grains start (sector %" PRIu64 "): the image is damaged", t, gt,
                      d->hd.overhead);
  }
  for (uint64_t g = 0; g < d->ngrains; g++) {
    uint32_t at = table_entry(d, g);
    if (at > 1 && at < d->hd.overhead)
      return verr_set(err, VERR_FORMAT,
                      "the vmdk grain table places guest grain %" PRIu64 " at sector %" PRIu32
                      ", before the grains start (sector %" PRIu64 "): the image is damaged",
                      g, at, d->hd.overhead);
    d->listed += at > 1;
  }
  return 0;
}

/* The bytes between the header and the first marker: kept when they hold the tables
 * and fit the table bound next to the grain bitmap, else read past. */
static int read_overhead(struct decoder *d, const uint8_t *head, uint64_t room, struct verr *err)
{
  uint64_t bytes = d->hd.overhead * SECTOR;
  const char *what = "descriptor and tables before the grains";
  if (!tables_ahead(&d->hd) || bytes > room)
    return skip(d, bytes - SECTOR, what, err);
  d->tables = malloc((size_t)bytes);
  if (d->tables == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the vmdk grain tables");
  memcpy(d->tables, head, SECTOR);
  if (vcursor_read_exact(&d->cur, d->tables + SECTOR, (size_t)(bytes - SECTOR), what, err) < 0)
    return -1;
  return check_tables(d, bytes, err);
}

/* The stream is over (`eos`: at its end-of-stream marker): every grain the tables
 * name must have arrived; without tables, only the marker says the stream is whole. */
static int check_complete(const struct decoder *d, bool eos, uint64_t at, struct verr *err)
{
  if (d->tables == NULL && !eos)
    return verr_set(err, VERR_FORMAT,
                    "the vmdk stream ends at offset %" PRIu64 " with no end-of-stream marker "
                    "(and no grain tables ahead of the grains to say what it holds): the "
                    "image is truncated; fetch it again", at);
  if (d->tables != NULL && d->arrived != d->listed)
    return verr_set(err, VERR_FORMAT,
                    "the vmdk stream ends at offset %" PRIu64 " after %" PRIu64 " of the %"
                    PRIu64 " grains its grain tables name: the image is truncated; fetch it "
                    "again", at, d->arrived, d->listed);
  return 0;
}

/* ---- output ---- */

static int emit_data(struct decoder *d, uint64_t guest, const uint8_t *buf, uint64_t len,
                     struct verr *err)
{
  d->info->data_bytes += len;
  for (uint64_t done = 0; done < len; done += VMDK_MAX_EXTENT) {
    uint64_t n = len - done < VMDK_MAX_EXTENT ? len - done : VMDK_MAX_EXTENT;
    if (vsink_data(d->out, guest + done, buf + done, (size_t)n, err) < 0)
      return -1;
  }
  return 0;
}

static int is_seen(const struct decoder *d, uint64_t g)
{
  return d->seen[g / 8] >> (g % 8) & 1;
}

static bool is_missing(const void *ctx, uint64_t g) { return !is_seen(ctx, g); }

/* Every grain no marker supplied, as merged zero extents, clipped to the disk. */
static int emit_missing(struct decoder *d, struct verr *err)
{
  return blocktable_zero_runs(d->out, d->ngrains, d->grain_bytes, d->virtual_size, is_missing, d,
                              &d->info->zero_bytes, err);
}

/* ---- markers ---- */

static int inflate_grain(struct decoder *d, uint32_t size, uint64_t at, uint64_t guest,
                         size_t want, struct verr *err)
{
  if (inflateReset(&d->zs) != Z_OK)
    return verr_set(err, VERR_INTERNAL, "inflateReset failed");
  d->zs.next_in = d->comp + MARKER_HEAD;
  d->zs.avail_in = size;
  d->zs.next_out = d->grain;
  d->zs.avail_out = (uInt)d->grain_bytes;
  int ret = inflate(&d->zs, Z_FINISH);
  size_t got = d->grain_bytes - d->zs.avail_out;
  if (ret == Z_STREAM_END && got >= want)
    return 0;
  return verr_set(err, VERR_FORMAT,
                  "the vmdk grain at offset %" PRIu64 " (guest offset %" PRIu64 ") does not "
                  "inflate (%s): the image is damaged; check it with `qemu-img check`", at,
                  guest,
                  ret == Z_STREAM_END ? "it is shorter than its grain"
                  : ret == Z_BUF_ERROR && d->zs.avail_out == 0 ? "it is larger than a grain"
                  : ret == Z_BUF_ERROR ? "the compressed bytes end early"
                                       : "invalid zlib data");
}

static int check_grain_lba(const struct decoder *d, uint64_t lba, uint64_t at,
                           struct verr *err)
{
  if (lba >= d->hd.capacity || lba % d->hd.grain_sectors != 0)
    return verr_set(err, VERR_FORMAT,
                    "the vmdk grain marker at offset %" PRIu64 " names sector %" PRIu64 ", %s "
                    "(capacity %" PRIu64 " sectors, grains of %" PRIu64 "): the image is "
                    "damaged", at, lba,
                    lba >= d->hd.capacity ? "outside the disk" : "not at a grain boundary",
                    d->hd.capacity, d->hd.grain_sectors);
  uint64_t g = lba / d->hd.grain_sectors;
  if (is_seen(d, g))
    return verr_set(err, VERR_FORMAT,
                    "the vmdk grain marker at offset %" PRIu64 " gives guest sector %" PRIu64
                    " a second time: the image is damaged", at, lba);
  uint32_t listed = d->tables != NULL ? table_entry(d, g) : 0;
  if (d->tables != NULL && (uint64_t)listed * SECTOR != at)
    return verr_set(err, VERR_FORMAT,
                    "the vmdk grain marker at offset %" PRIu64 " gives guest sector %" PRIu64
                    ", which the grain table places %s%" PRIu64 ": the image is damaged", at,
                    lba, listed > 1 ? "at offset " : "nowhere (entry ", (uint64_t)listed *
                    (listed > 1 ? SECTOR : 1));
  return 0;
}

/* A grain marker whose first sector is `sector` (already read, at stream offset `at`). */
static int read_grain(struct decoder *d, const uint8_t *sector, uint64_t at, struct verr *err)
{
  uint64_t lba = le64(sector);
  uint32_t size = le32(sector + 8);
  if (check_grain_lba(d, lba, at, err) < 0)
    return -1;
  uint64_t total = ((uint64_t)MARKER_HEAD + size + SECTOR - 1) / SECTOR * SECTOR;
  if (total > d->comp_cap)
    return verr_set(err, VERR_FORMAT,
                    "the vmdk grain marker at offset %" PRIu64 " says %" PRIu32 " compressed "
                    "bytes, more than a grain of %zu bytes can take: the image is damaged",
                    at, size, d->grain_bytes);
  memcpy(d->comp, sector, SECTOR);
  if (vcursor_read_exact(&d->cur, d->comp + SECTOR, (size_t)total - SECTOR, "compressed grain", err) < 0)
    return -1;
  uint64_t guest = lba * SECTOR;
  uint64_t want = d->virtual_size - guest < d->grain_bytes ? d->virtual_size - guest
                                                          : d->grain_bytes;
  if (inflate_grain(d, size, at, guest, (size_t)want, err) < 0)
    return -1;
  uint64_t g = lba / d->hd.grain_sectors;
  d->seen[g / 8] |= (uint8_t)(1u << (g % 8));
  d->info->grains++;
  d->arrived += d->tables != NULL;
  return emit_data(d, guest, d->grain, want, err);
}

static int read_footer(struct decoder *d, uint64_t nsec, uint64_t at, struct verr *err)
{
  uint8_t footer[SECTOR];
  struct header fh;
  if (nsec != 1)
    return verr_set(err, VERR_FORMAT,
                    "the vmdk footer marker at offset %" PRIu64 " spans %" PRIu64 " sectors, "
                    "not 1: the image is damaged", at, nsec);
  if (vcursor_read_exact(&d->cur, footer, sizeof footer, "footer", err) < 0)
    return -1;
  if (parse_header(footer, sizeof footer, &fh, err) < 0)
    return verr_prefix(err, "in the vmdk footer at offset %" PRIu64, at + SECTOR);
  if (fh.capacity != d->hd.capacity || fh.grain_sectors != d->hd.grain_sectors)
    return verr_set(err, VERR_FORMAT,
                    "the vmdk footer at offset %" PRIu64 " gives %" PRIu64 " sectors in "
                    "grains of %" PRIu64 ", the header %" PRIu64 " in grains of %" PRIu64
                    ": the image is damaged", at + SECTOR, fh.capacity, fh.grain_sectors,
                    d->hd.capacity, d->hd.grain_sectors);
  return 0;
}

/* A metadata marker (size 0). Returns 1 at the end-of-stream marker, 0 to go on. */
static int read_metadata(struct decoder *d, const uint8_t *sector, uint64_t at,
                         struct verr *err)
{
  uint64_t nsec = le64(sector);
  uint32_t type = le32(sector + 12);
  switch (type) {
  case MARKER_EOS:
    return check_complete(d, true, at, err) < 0 ? -1 : 1;
  case MARKER_GT:
  case MARKER_GD:
    if (nsec > UINT64_MAX / SECTOR)
      return verr_set(err, VERR_FORMAT,
                      "the vmdk table marker at offset %" PRIu64 " spans %" PRIu64 " sectors: "
                      "the image is damaged", at, nsec);
    return skip(d, nsec * SECTOR, type == MARKER_GT ? "grain table" : "grain directory", err);
  case MARKER_FOOTER:
    return read_footer(d, nsec, at, err);
  default:
    return verr_set(err, VERR_FORMAT,
                    "the vmdk marker at offset %" PRIu64 " has unknown type %" PRIu32 ": the "
                    "image is damaged or from a newer writer; read it through qemu-nbd",
                    at, type);
  }
}

static int read_markers(struct decoder *d, struct verr *err)
{
  uint8_t sector[SECTOR];
  for (;;) {
    uint64_t at = d->info->source_bytes;
    ssize_t n = vcursor_read_some(&d->cur, sector, sizeof sector, err);
    if (n < 0)
      return -1;
    if (n == 0)
      return check_complete(d, false, at, err);
    if ((size_t)n < sizeof sector)
      return verr_set(err, VERR_FORMAT,
                      "the vmdk stream ends inside the marker at offset %" PRIu64 ": the "
                      "image is truncated; fetch it again", at);
    int r = le32(sector + 8) != 0 ? read_grain(d, sector, at, err)
                                  : read_metadata(d, sector, at, err);
    if (r != 0)
      return r < 0 ? -1 : 0;
  }
}

/* ---- setup ---- */

static uint64_t table_bound(const struct vmdk_stream_opts *opts)
{
  return opts && opts->table_bytes ? opts->table_bytes : VMDK_DEFAULT_TABLE_BYTES;
}

static int decoder_alloc(struct decoder *d, const struct vmdk_stream_opts *opts,
                         struct verr *err)
{
  uint64_t table_bytes = table_bound(opts);
  d->grain_bytes = (size_t)(d->hd.grain_sectors * SECTOR);
  d->ngrains = (d->hd.capacity + d->hd.grain_sectors - 1) / d->hd.grain_sectors;
  uint64_t bitmap = (d->ngrains + 7) / 8 + 1;
  if (bitmap > table_bytes)
    return verr_set(err, VERR_FORMAT,
                    "the vmdk disk of %" PRIu64 " bytes in grains of %zu bytes needs a "
                    "%" PRIu64 "-byte grain map, more than the limit of %" PRIu64 " bytes: "
                    "the header is damaged or the limit too low", d->virtual_size,
                    d->grain_bytes, bitmap, table_bytes);
  /* zlib's worst case for incompressible data, plus the marker head and padding */
  size_t bound = (size_t)compressBound((uLong)d->grain_bytes) + MARKER_HEAD + 64;
  d->comp_cap = (bound + SECTOR - 1) / SECTOR * SECTOR;
  d->seen = calloc((size_t)bitmap, 1);
  d->grain = malloc(d->grain_bytes);
  d->comp = malloc(d->comp_cap);
  if (d->seen == NULL || d->grain == NULL || d->comp == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the vmdk decoder buffers");
  if (inflateInit(&d->zs) != Z_OK)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the vmdk inflater");
  d->zs_ready = 1;
  return 0;
}

static void decoder_fini(struct decoder *d)
{
  if (d->zs_ready)
    inflateEnd(&d->zs);
  free(d->seen);
  free(d->grain);
  free(d->comp);
  free(d->tables);
}

int vmdk_stream_decode(struct vreader *in, struct vsink *out,
                       const struct vmdk_stream_opts *opts, struct vmdk_info *info,
                       struct verr *err)
{
  struct vmdk_info scratch_info;
  __attribute__((cleanup(decoder_fini))) struct decoder d = { .out = out };
  d.info = info ? info : &scratch_info;
  memset(d.info, 0, sizeof *d.info);
  vcursor_init(&d.cur, in, "vmdk", &d.info->source_bytes);
  uint8_t head[SECTOR];
  ssize_t n = vcursor_read_some(&d.cur, head, sizeof head, err);
  if (n < 0)
    return -1;
  if (parse_header(head, (size_t)n, &d.hd, err) < 0)
    return -1;
  d.virtual_size = d.hd.capacity * SECTOR;
  d.info->version = d.hd.version;
  d.info->grain_size = (uint32_t)(d.hd.grain_sectors * SECTOR);
  d.info->virtual_size = d.virtual_size;
  if (decoder_alloc(&d, opts, err) < 0)
    return -1;
  uint64_t bitmap = (d.ngrains + 7) / 8 + 1;
  if (read_overhead(&d, head, table_bound(opts) - bitmap, err) < 0 || read_markers(&d, err) < 0 ||
      drain_zeros(&d, err) < 0)
    return -1;
  return emit_missing(&d, err);
}
