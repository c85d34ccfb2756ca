/* vimport qcow2: random access to a qcow2 file, guest content emitted in offset order.
 *
 * The walk goes L1 entry by L1 entry, reading one L2 table at a time, and merges
 * guest-adjacent pieces into runs: zero runs of any length, data runs of host-contiguous
 * clusters up to QCOW2_MAX_EXTENT, so an image converted by qemu-img (whose clusters
 * are mostly in guest order) is read in large sequential preads.
 */
#include "internal.h"
#include "qcow2.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"

struct qcow2_file {
  int fd;
  uint64_t file_size;
  struct qcow2_layout lay;
  uint64_t *l1;                 /* l1_used L2 table offsets, 0 = unallocated */
  uint8_t *l2;                  /* one cluster: the L2 table being walked */
  uint8_t *data;                /* QCOW2_MAX_EXTENT: a data run */
  uint8_t *compressed;          /* 2 clusters + a sector: one compressed cluster */
  uint8_t *cluster;             /* one cluster: decompressed output */
  struct qcow2_inflater *inflater;
};

/* The run of guest bytes being merged before it goes to the sink. */
struct run {
  enum { RUN_NONE, RUN_ZERO, RUN_DATA } kind;
  uint64_t guest, len, host;
};

/* Read [off, off+len); bytes past the end of the file read as zeros, as in qemu. */
static int pread_padded(const struct qcow2_file *f, void *buf, size_t len, uint64_t off,
                        struct verr *err)
{
  size_t avail = off >= f->file_size ? 0
                 : f->file_size - off < len ? (size_t)(f->file_size - off)
                                            : len;
  size_t done = 0;
  while (done < avail) {
    ssize_t n = pread(f->fd, (char *)buf + done, avail - done, (off_t)(off + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return verr_sys(err, VERR_IO, errno, "reading qcow2 image at offset %" PRIu64,
                      off + done);
    if (n == 0)
      break; /* the file shrank under us: the rest reads as zeros */
    done += (size_t)n;
  }
  memset((char *)buf + done, 0, len - done);
  return 0;
}

static int outside_file(const struct qcow2_file *f, const char *what, uint64_t off,
                        struct verr *err)
{
  return verr_set(err, VERR_FORMAT,
                  "qcow2 %s at offset 0x%" PRIx64 " is outside the file (%" PRIu64
                  " bytes): the image is truncated or damaged; download it again or run "
                  "`qemu-img check`",
                  what, off, f->file_size);
}

static int load_l1(struct qcow2_file *f, struct verr *err)
{
  const struct qcow2_layout *lay = &f->lay;
  size_t bytes = (size_t)lay->l1_used * 8;
  if (bytes == 0)
    return 0;
  if (lay->l1_offset + bytes > f->file_size)
    return outside_file(f, "L1 table", lay->l1_offset, err);
  CLEANUP_FREE uint8_t *raw = malloc(bytes);
  f->l1 = calloc(lay->l1_used, sizeof *f->l1);
  if (raw == NULL || f->l1 == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the qcow2 L1 table (%zu bytes)", bytes);
  if (pread_padded(f, raw, bytes, lay->l1_offset, err) < 0)
    return -1;
  for (uint32_t i = 0; i < lay->l1_used; i++) {
    if (qcow2_l1_entry(lay, qcow2_be64(raw + (size_t)i * 8), i, &f->l1[i], err) < 0)
      return -1;
    if (f->l1[i] != 0 && f->l1[i] >= f->file_size)
      return outside_file(f, "L2 table", f->l1[i], err);
  }
  return 0;
}

static int alloc_buffers(struct qcow2_file *f, struct verr *err)
{
  size_t cs = f->lay.cluster_size;
  f->l2 = malloc(cs);
  f->data = malloc(QCOW2_MAX_EXTENT);
  f->compressed = malloc(2 * cs + 512);
  f->cluster = malloc(cs);
  if (f->l2 == NULL || f->data == NULL || f->compressed == NULL || f->cluster == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating qcow2 reader buffers");
  return qcow2_inflater_new(&f->lay, &f->inflater, err);
}

/* Read the first cluster (the header and its extensions) and parse it. */
static int load_header(struct qcow2_file *f, struct verr *err)
{
  uint8_t probe[QCOW2_HEADER_PROBE];
  size_t probe_len = f->file_size < sizeof probe ? (size_t)f->file_size : sizeof probe;
  uint32_t cs;
  if (pread_padded(f, probe, sizeof probe, 0, err) < 0 ||
      qcow2_header_cluster_size(probe, probe_len, &cs, err) < 0)
    return -1;
  size_t len = f->file_size < cs ? (size_t)f->file_size : cs;
  CLEANUP_FREE uint8_t *first = malloc(cs);
  if (first == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating a qcow2 cluster");
  if (pread_padded(f, first, len, 0, err) < 0)
    return -1;
  return qcow2_parse_header(first, len, &f->lay, err);
}

int qcow2_file_open(int fd, struct qcow2_file **out, struct verr *err)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return verr_sys(err, VERR_IO, errno, "inspecting the qcow2 image");
  struct qcow2_file *f = calloc(1, sizeof *f);
  if (f == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the qcow2 reader");
  f->fd = fd;
  f->file_size = (uint64_t)st.st_size;
  if (load_header(f, err) < 0 || load_l1(f, err) < 0 || alloc_buffers(f, err) < 0) {
    qcow2_file_free(f);
    return -1;
  }
  *out = f;
  return 0;
}

uint64_t qcow2_virtual_size(const struct qcow2_file *f) { return f->lay.virtual_size; }

uint32_t qcow2_cluster_size(const struct qcow2_file *f) { return f->lay.cluster_size; }

void qcow2_file_free(struct qcow2_file *f)
{
  if (f == NULL)
    return;
  free(f->l1);
  free(f->l2);
  free(f->data);
  free(f->compressed);
  free(f->cluster);
  qcow2_inflater_free(f->inflater);
  free(f);
}

static int flush_run(struct qcow2_file *f, struct run *run, struct vsink *out, struct verr *err)
{
  int r = 0;
  if (run->kind == RUN_ZERO)
    r = vsink_zero(out, run->guest, run->len, err);
  else if (run->kind == RUN_DATA)
    r = pread_padded(f, f->data, (size_t)run->len, run->host, err) < 0
            ? -1
            : vsink_data(out, run->guest, f->data, (size_t)run->len, err);
  run->kind = RUN_NONE;
  return r;
}

static int add_zero(struct qcow2_file *f, struct run *run, uint64_t guest, uint64_t len,
                    struct vsink *out, struct verr *err)
{
  if (run->kind == RUN_ZERO && run->guest + run->len == guest) {
    run->len += len;
    return 0;
  }
  if (flush_run(f, run, out, err) < 0)
    return -1;
  *run = (struct run){ RUN_ZERO, guest, len, 0 };
  return 0;
}

static int add_data(struct qcow2_file *f, struct run *run, uint64_t guest, uint64_t len,
                    uint64_t host, struct vsink *out, struct verr *err)
{
  if (host >= f->file_size)
    return outside_file(f, "data cluster", host, err);
  while (len > 0) {
    int extends = run->kind == RUN_DATA && run->guest + run->len == guest &&
                  run->host + run->len == host && run->len < QCOW2_MAX_EXTENT;
    if (!extends) {
      if (flush_run(f, run, out, err) < 0)
        return -1;
      *run = (struct run){ RUN_DATA, guest, 0, host };
    }
    uint64_t room = QCOW2_MAX_EXTENT - run->len;
    uint64_t n = len < room ? len : room;
    run->len += n;
    guest += n, host += n, len -= n;
  }
  return 0;
}

static int emit_compressed(struct qcow2_file *f, struct run *run, const struct qcow2_piece *p,
                           struct vsink *out, struct verr *err)
{
  if (p->host >= f->file_size)
    return outside_file(f, "compressed cluster", p->host, err);
  if (flush_run(f, run, out, err) < 0 ||
      pread_padded(f, f->compressed, (size_t)p->host_len, p->host, err) < 0 ||
      qcow2_inflate(f->inflater, f->compressed, (size_t)p->host_len, f->cluster,
                    f->lay.cluster_size, p->host, NULL, err) < 0)
    return -1;
  for (uint64_t done = 0; done < p->len; done += QCOW2_MAX_EXTENT) {
    uint64_t n = p->len - done < QCOW2_MAX_EXTENT ? p->len - done : QCOW2_MAX_EXTENT;
    if (vsink_data(out, p->guest + done, f->cluster + done, (size_t)n, err) < 0)
      return -1;
  }
  return 0;
}

static int walk_l2(struct qcow2_file *f, uint32_t l1_index, struct run *run, struct vsink *out,
                   struct verr *err)
{
  const struct qcow2_layout *lay = &f->lay;
  uint64_t base = (uint64_t)l1_index * lay->l2_coverage;
  if (f->l1[l1_index] == 0) {
    uint64_t len = lay->virtual_size - base < lay->l2_coverage ? lay->virtual_size - base
                                                               : lay->l2_coverage;
    return add_zero(f, run, base, len, out, err);
  }
  if (pread_padded(f, f->l2, lay->cluster_size, f->l1[l1_index], err) < 0)
    return -1;
  for (uint32_t i = 0; i < lay->l2_entries; i++) {
    uint64_t guest = base + ((uint64_t)i << lay->cluster_bits);
    if (guest >= lay->virtual_size)
      break;
    struct qcow2_piece pieces[QCOW2_SUBCLUSTERS];
    unsigned count;
    if (qcow2_l2_entry_pieces(lay, f->l2, i, guest, pieces, &count, err) < 0)
      return verr_prefix(err, "L2 table at 0x%" PRIx64, f->l1[l1_index]);
    for (unsigned k = 0; k < count; k++) {
      const struct qcow2_piece *p = &pieces[k];
      int r = p->kind == QCOW2_PIECE_ZERO ? add_zero(f, run, p->guest, p->len, out, err)
              : p->kind == QCOW2_PIECE_DATA
                  ? add_data(f, run, p->guest, p->len, p->host, out, err)
                  : emit_compressed(f, run, p, out, err);
      if (r < 0)
        return -1;
    }
  }
  return 0;
}

int qcow2_file_read_guest(struct qcow2_file *f, struct vsink *out, struct verr *err)
{
  struct run run = { RUN_NONE, 0, 0, 0 };
  for (uint32_t i = 0; i < f->lay.l1_used; i++)
    if (walk_l2(f, i, &run, out, err) < 0)
      return -1;
  return flush_run(f, &run, out, err);
}
