/* vimport qcow2: the header and the L1/L2 entry decoding both readers share. */
#include "internal.h"
#include "qcow2.h"

#include <inttypes.h>
#include <string.h>

/* Incompatible feature bits (header byte 72). */
#define INCOMPAT_DIRTY ((uint64_t)1 << 0)
#define INCOMPAT_CORRUPT ((uint64_t)1 << 1)
#define INCOMPAT_DATA_FILE ((uint64_t)1 << 2)
#define INCOMPAT_COMPRESSION ((uint64_t)1 << 3)
#define INCOMPAT_EXTL2 ((uint64_t)1 << 4)
#define INCOMPAT_KNOWN                                                                   \
  (INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION |      \
   INCOMPAT_EXTL2)

/* Header extension types. */
#define EXT_END 0x00000000u
#define EXT_CRYPTO 0x0537be77u
#define EXT_DATA_FILE 0x44415441u

#define V2_HEADER_LENGTH 72u
#define V3_HEADER_LENGTH 104u

#define L2_COMPRESSED (1ull << 62)
#define L2_ZERO ((uint64_t)1 << 0)

static const char remedy_convert[] = "convert it first with `qemu-img convert -O qcow2 SRC OUT`";

int qcow2_probe(const void *buf, size_t len)
{
  return len >= 4 && memcmp(buf, "QFI\xfb", 4) == 0;
}

int qcow2_header_cluster_size(const uint8_t *buf, size_t len, uint32_t *cluster_size,
                              struct verr *err)
{
  if (len < V2_HEADER_LENGTH || !qcow2_probe(buf, len))
    return verr_set(err, VERR_FORMAT, "not a qcow2 image: the source does not start with a "
                                      "qcow2 header (magic \"QFI\\xfb\")");
  uint32_t bits = qcow2_be32(buf + 20);
  if (bits < QCOW2_MIN_CLUSTER_BITS || bits > QCOW2_MAX_CLUSTER_BITS)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 header has cluster_bits %" PRIu32 ", outside 9..21 (512 B .. 2 MiB): "
                    "the image is damaged or not made by qemu",
                    bits);
  *cluster_size = 1u << bits;
  return 0;
}

static int check_version_and_features(const uint8_t *buf, size_t len, struct qcow2_layout *lay,
                                      uint64_t *incompat, struct verr *err)
{
  lay->version = qcow2_be32(buf + 4);
  if (lay->version != 2 && lay->version != 3)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 version %" PRIu32 " is not supported (only 2 and 3): %s",
                    lay->version, remedy_convert);
  *incompat = 0;
  if (lay->version == 2)
    return 0;
  if (len < V3_HEADER_LENGTH)
    return verr_set(err, VERR_FORMAT, "qcow2 v3 header is truncated");
  *incompat = qcow2_be64(buf + 72);
  if (*incompat & INCOMPAT_CORRUPT)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 image is marked corrupt (incompatible feature bit 1): repair it "
                    "with `qemu-img check -r all` before importing");
  if (*incompat & INCOMPAT_DATA_FILE)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 image keeps its data in an external data file, which an import "
                    "cannot fetch: %s",
                    remedy_convert);
  if (*incompat & ~INCOMPAT_KNOWN)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 image uses unknown incompatible feature bits 0x%" PRIx64
                    ": it was made by a newer qemu; %s with compat=1.1",
                    (uint64_t)(*incompat & ~INCOMPAT_KNOWN), remedy_convert);
  return 0;
}

static int check_refusals(const uint8_t *buf, struct verr *err)
{
  if (qcow2_be64(buf + 8) != 0)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 image has a backing file, which an import cannot fetch: flatten "
                    "it first with `qemu-img convert -O qcow2 SRC OUT`");
  uint32_t crypt = qcow2_be32(buf + 32);
  if (crypt == 1)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 image is encrypted (legacy AES): decrypt it first with "
                    "`qemu-img convert --object secret,... -O qcow2`");
  if (crypt == 2)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 image is encrypted (LUKS): decrypt it first with "
                    "`qemu-img convert --object secret,... -O qcow2`");
  if (crypt != 0)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 image uses unknown encryption method %" PRIu32 ": %s", crypt,
                    remedy_convert);
  return 0;
}

static int parse_extensions(const uint8_t *buf, size_t len, size_t at, struct verr *err)
{
  while (at + 8 <= len) {
    uint32_t type = qcow2_be32(buf + at);
    uint32_t ext_len = qcow2_be32(buf + at + 4);
    if (type == EXT_END)
      return 0;
    if (type == EXT_CRYPTO)
      return verr_set(err, VERR_FORMAT,
                      "qcow2 image has an encryption header extension: decrypt it first "
                      "with `qemu-img convert`");
    if (type == EXT_DATA_FILE)
      return verr_set(err, VERR_FORMAT,
                      "qcow2 image names an external data file, which an import cannot "
                      "fetch: %s",
                      remedy_convert);
    uint64_t next = (uint64_t)at + 8 + (((uint64_t)ext_len + 7) & ~7ull);
    if (next > len)
      return verr_set(err, VERR_FORMAT,
                      "qcow2 header extension 0x%08" PRIx32 " runs past the first cluster: "
                      "the image is damaged",
                      type);
    at = (size_t)next;
  }
  return 0;
}

static int parse_compression(const uint8_t *buf, uint32_t header_length, uint64_t incompat,
                             struct qcow2_layout *lay, struct verr *err)
{
  if (!(incompat & INCOMPAT_COMPRESSION))
    return 0;
  if (header_length <= V3_HEADER_LENGTH)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 header sets the compression type bit but has no compression "
                    "type field: the image is damaged");
  uint8_t type = buf[104];
  if (type > 1)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 image uses unknown compression type %u (known: 0 zlib, 1 zstd): %s",
                    type, remedy_convert);
  lay->zstd = type == 1;
  return 0;
}

static int derive_geometry(const uint8_t *buf, struct qcow2_layout *lay, struct verr *err)
{
  lay->virtual_size = qcow2_be64(buf + 24);
  lay->l1_size = qcow2_be32(buf + 36);
  lay->l1_offset = qcow2_be64(buf + 40);
  lay->refcount_table_offset = qcow2_be64(buf + 48);
  lay->refcount_table_bytes = (uint64_t)qcow2_be32(buf + 56) << lay->cluster_bits;
  lay->l2_entry_size = lay->extended_l2 ? 16 : 8;
  lay->l2_entries = lay->cluster_size / lay->l2_entry_size;
  lay->l2_coverage = (uint64_t)lay->l2_entries << lay->cluster_bits;
  lay->subcluster_size = lay->cluster_size / QCOW2_SUBCLUSTERS;

  /* qemu's own limit on images it creates, 2^63 bytes minus a cluster */
  if (lay->virtual_size > (INT64_MAX & ~((uint64_t)lay->cluster_size - 1)))
    return verr_set(err, VERR_FORMAT,
                    "qcow2 virtual size %" PRIu64 " does not fit in a 63-bit offset: the "
                    "header is damaged",
                    lay->virtual_size);
  uint64_t needed = (lay->virtual_size + lay->l2_coverage - 1) / lay->l2_coverage;
  if (needed > QCOW2_MAX_L1_BYTES / 8)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 virtual size %" PRIu64 " needs an L1 table larger than qemu's "
                    "32 MiB limit: the header is damaged",
                    lay->virtual_size);
  if (lay->l1_size < needed)
    return verr_set(err, VERR_FORMAT,
                    "qcow2 L1 table has %" PRIu32 " entries but the virtual size %" PRIu64
                    " needs %" PRIu64 ": the header is damaged",
                    lay->l1_size, lay->virtual_size, needed);
  lay->l1_used = (uint32_t)needed;
  if (needed > 0 && (lay->l1_offset == 0 || (lay->l1_offset & (lay->cluster_size - 1)) ||
                     lay->l1_offset > INT64_MAX - QCOW2_MAX_L1_BYTES))
    return verr_set(err, VERR_FORMAT,
                    "qcow2 L1 table offset 0x%" PRIx64 " is not a valid cluster offset: the "
                    "header is damaged",
                    lay->l1_offset);
  return 0;
}

int qcow2_parse_header(const uint8_t *buf, size_t len, struct qcow2_layout *lay,
                       struct verr *err)
{
  memset(lay, 0, sizeof *lay);
  if (qcow2_header_cluster_size(buf, len, &lay->cluster_size, err) < 0)
    return -1;
  lay->cluster_bits = (uint32_t)__builtin_ctz(lay->cluster_size);
  if (len > lay->cluster_size)
    len = lay->cluster_size;
  uint64_t incompat = 0;
  if (check_version_and_features(buf, len, lay, &incompat, err) < 0 ||
      check_refusals(buf, err) < 0)
    return -1;
  uint32_t header_length = V2_HEADER_LENGTH;
  if (lay->version == 3) {
    header_length = qcow2_be32(buf + 100);
    if (header_length < V3_HEADER_LENGTH || header_length > len)
      return verr_set(err, VERR_FORMAT,
                      "qcow2 header_length %" PRIu32 " is outside %u..%zu: the header is "
                      "damaged",
                      header_length, V3_HEADER_LENGTH, len);
  }
  lay->extended_l2 = (incompat & INCOMPAT_EXTL2) != 0;
  if (parse_compression(buf, header_length, incompat, lay, err) < 0 ||
      parse_extensions(buf, len, header_length, err) < 0)
    return -1;
  return derive_geometry(buf, lay, err);
}

int qcow2_l1_entry(const struct qcow2_layout *lay, uint64_t entry, uint32_t index,
                   uint64_t *l2_offset, struct verr *err)
{
  uint64_t off = entry & QCOW2_OFFSET_MASK;
  if (off & (lay->cluster_size - 1))
    return verr_set(err, VERR_FORMAT,
                    "qcow2 L1 entry %" PRIu32 " points to unaligned offset 0x%" PRIx64
                    ": the image is damaged; try `qemu-img check -r all`",
                    index, off);
  *l2_offset = off;
  return 0;
}

static void add_piece(struct qcow2_piece *pieces, unsigned *count, enum qcow2_piece_kind kind,
                      uint64_t guest, uint64_t len, uint64_t host)
{
  if (*count > 0) {
    struct qcow2_piece *last = &pieces[*count - 1];
    int contiguous = last->kind == kind && last->guest + last->len == guest &&
                     (kind != QCOW2_PIECE_DATA || last->host + last->len == host);
    if (contiguous) {
      last->len += len;
      last->host_len = last->len;
      return;
    }
  }
  pieces[(*count)++] =
      (struct qcow2_piece){ .kind = kind, .guest = guest, .len = len, .host = host,
                            .host_len = len };
}

static int compressed_piece(const struct qcow2_layout *lay, uint64_t entry, uint64_t guest,
                            uint64_t len, struct qcow2_piece *pieces, unsigned *count)
{
  /* bits 0..x-1 offset, x..61 extra 512 B sectors, x = 62 - (cluster_bits - 8) */
  unsigned x = 62 - (lay->cluster_bits - 8);
  uint64_t host = entry & ((1ull << x) - 1);
  uint64_t sectors = ((entry >> x) & ((1ull << (lay->cluster_bits - 8)) - 1)) + 1;
  pieces[(*count)++] = (struct qcow2_piece){
    .kind = QCOW2_PIECE_COMPRESSED, .guest = guest, .len = len, .host = host,
    .host_len = sectors * 512 - (host & 511),
  };
  return 0;
}

static int subcluster_pieces(const struct qcow2_layout *lay, uint64_t host, uint64_t bitmap,
                             uint64_t guest, uint64_t len, uint32_t index,
                             struct qcow2_piece *pieces, unsigned *count, struct verr *err)
{
  for (unsigned i = 0; i < QCOW2_SUBCLUSTERS; i++) {
    uint64_t at = (uint64_t)i * lay->subcluster_size;
    if (at >= len)
      break;
    uint64_t n = len - at < lay->subcluster_size ? len - at : lay->subcluster_size;
    int allocated = (bitmap >> i) & 1, zero = (bitmap >> (32 + i)) & 1;
    if (allocated && (zero || host == 0))
      return verr_set(err, VERR_FORMAT,
                      "qcow2 L2 entry %" PRIu32 " has subcluster %u %s: the image is "
                      "damaged; try `qemu-img check -r all`",
                      index, i, zero ? "both allocated and zero" : "allocated without a cluster");
    if (allocated)
      add_piece(pieces, count, QCOW2_PIECE_DATA, guest + at, n, host + at);
    else
      add_piece(pieces, count, QCOW2_PIECE_ZERO, guest + at, n, 0);
  }
  return 0;
}

int qcow2_l2_entry_pieces(const struct qcow2_layout *lay, const uint8_t *l2, uint32_t index,
                          uint64_t guest, struct qcow2_piece *pieces, unsigned *count,
                          struct verr *err)
{
  const uint8_t *p = l2 + (size_t)index * lay->l2_entry_size;
  uint64_t entry = qcow2_be64(p);
  uint64_t len = lay->virtual_size - guest;
  if (len > lay->cluster_size)
    len = lay->cluster_size;
  *count = 0;
  if (entry & L2_COMPRESSED)
    return compressed_piece(lay, entry, guest, len, pieces, count);
  uint64_t host = entry & QCOW2_OFFSET_MASK;
  if (host & (lay->cluster_size - 1))
    return verr_set(err, VERR_FORMAT,
                    "qcow2 L2 entry %" PRIu32 " points to unaligned offset 0x%" PRIx64
                    ": the image is damaged; try `qemu-img check -r all`",
                    index, host);
  if (lay->extended_l2)
    return subcluster_pieces(lay, host, qcow2_be64(p + 8), guest, len, index, pieces, count,
                             err);
  /* no backing file, so an unallocated cluster reads as zeros too */
  if ((entry & L2_ZERO) || host == 0)
    add_piece(pieces, count, QCOW2_PIECE_ZERO, guest, len, 0);
  else
    add_piece(pieces, count, QCOW2_PIECE_DATA, guest, len, host);
  return 0;
}
