/* vimport target: write guest extents to a file or a block device (see target.h). */
#include "target/target.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/zero.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "internal.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TARGET_ZERO_BUF_SIZE (1024 * 1024)
#define TARGET_ZERO_CHECK_SIZE (64 * 1024) /* granularity of all-zero detection in data */
#define TARGET_DEFAULT_FLUSH_INTERVAL (64 * MiB)
#define SECTOR 512 /* BLKZEROOUT wants 512-byte aligned ranges */

struct target {
  struct vsink sink;
  char *path;
  int fd;
  enum target_kind kind;

  /* what the capacity was computed from, to explain a refusal */
  uint64_t requested;
  uint64_t free_bytes;
  double overhead;
  uint64_t capacity; /* CDI's available space: what an image may need at most */
  uint64_t usable;   /* files: capacity less the overhead (CDI's GetUsableSpace) */

  bool existed;
  bool preallocate;
  bool preallocation_applied;
  bool size_known;   /* target_check_fits() ran */
  uint64_t limit;    /* no extent may end past this */
  uint64_t size;     /* final file size, or device size */
  uint64_t high_end; /* largest extent end seen */

  /* Span of offsets that data was written to: [written_lo, written_hi). On a fresh file a
   * zero range outside it still reads zeros and can be skipped. */
  uint64_t written_lo, written_hi;

  uint64_t flush_interval;
  uint64_t since_flush;

  uint64_t bytes_written;
  uint64_t bytes_direct;
  uint64_t zero_bytes_skipped;
  uint64_t zero_bytes_zeroed;

  unsigned char *zero_buf; /* TARGET_ZERO_BUF_SIZE zeros, for devices that refuse offload */
  struct direct_writer *direct; /* aligned data goes here; NULL: all through the page cache */
};

static const struct vsink_ops target_sink_ops;

static uint64_t round_down(uint64_t n, uint64_t multiple) { return n / multiple * multiple; }

static uint64_t round_up(uint64_t n, uint64_t multiple)
{
  return (n + multiple - 1) / multiple * multiple;
}

/* ceil() for non-negative doubles, saturating; keeps the library free of libm. */
static uint64_t ceil_u64(double x)
{
  if (x >= 18446744073709551615.0)
    return UINT64_MAX;
  uint64_t i = (uint64_t)x;
  return (double)i < x ? i + 1 : i;
}

bool target_overhead_valid(double fs_overhead)
{
  /* CDI's filesystemOverhead is a percentage string validated to [0, 1]. */
  return fs_overhead >= 0.0 && fs_overhead <= 1.0;
}

uint64_t target_available(uint64_t requested, uint64_t free_bytes)
{
  return requested != 0 && requested < free_bytes ? requested : free_bytes;
}

uint64_t target_usable_space(uint64_t available, double fs_overhead)
{
  /* CDI's arithmetic to the bit (float64 division, math.Ceil, then RoundDown): a
   * different rounding could size a disk one MiB off CDI's. */
  uint64_t without_overhead = ceil_u64((double)available / (1.0 + fs_overhead));
  return round_down(without_overhead, MiB);
}

uint64_t target_grown_size(uint64_t virtual_size, uint64_t requested, uint64_t usable)
{
  if (requested == 0)
    return virtual_size;
  uint64_t want = usable < requested ? usable : requested;
  return want > virtual_size ? want : virtual_size;
}

/* ---- opening ---------------------------------------------------------------------- */

static int target_open_block(struct target *t, struct verr *err)
{
  uint64_t size;
  if (ioctl(t->fd, BLKGETSIZE64, &size) == -1)
    return verr_sys(err, VERR_IO, errno, "cannot read the size of block device %s", t->path);
  t->capacity = size;
  t->size = size;
  t->limit = size;
  return 0;
}

static int target_open_file(struct target *t, const struct stat *st, struct verr *err)
{
  struct statvfs vfs;
  if (fstatvfs(t->fd, &vfs) == -1)
    return verr_sys(err, VERR_IO, errno, "cannot read the free space of the filesystem of %s",
                    t->path);
  /* The existing file is overwritten, so the blocks it holds count as free. */
  t->free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize + (uint64_t)st->st_blocks * 512;
  t->existed = st->st_size > 0 || st->st_blocks > 0;
  if (!target_overhead_valid(t->overhead))
    return verr_set(err, VERR_USAGE,
                    "filesystem overhead %g is not a fraction in [0, 1]: set it like CDI's "
                    "filesystemOverhead, e.g. 0.055",
                    t->overhead);
  t->capacity = target_available(t->requested, t->free_bytes);
  t->usable = target_usable_space(t->capacity, t->overhead);
  t->limit = t->capacity;
  return 0;
}

static int target_open_fd(struct target *t, struct verr *err)
{
  struct stat st;
  bool is_block = stat(t->path, &st) == 0 && S_ISBLK(st.st_mode);
  /* O_EXCL on a block device fails with EBUSY while it is mounted or in use. */
  int flags = is_block ? O_RDWR | O_EXCL | O_CLOEXEC : O_RDWR | O_CREAT | O_CLOEXEC;
  t->fd = open(t->path, flags, 0644);
  if (t->fd == -1)
    return verr_sys(err, VERR_IO, errno,
                    "cannot open target %s for writing (is the volume mounted and writable?)",
                    t->path);
  if (fstat(t->fd, &st) == -1)
    return verr_sys(err, VERR_IO, errno, "cannot stat target %s", t->path);
  if (S_ISBLK(st.st_mode)) {
    t->kind = TARGET_KIND_BLOCK;
    return target_open_block(t, err);
  }
  if (S_ISREG(st.st_mode)) {
    t->kind = TARGET_KIND_FILE;
    return target_open_file(t, &st, err);
  }
  return verr_set(err, VERR_USAGE,
                  "target %s is neither a regular file nor a block device: give the disk "
                  "image path (e.g. /data/disk.img) or the block volume (e.g. "
                  "/dev/cdi-block-volume)",
                  t->path);
}

int target_open(const struct target_opts *opts, struct target **out, struct verr *err)
{
  if (opts == NULL || opts->path == NULL || opts->path[0] == '\0')
    return verr_set(err, VERR_USAGE, "no target path given: set the disk image or block "
                                     "device to write");
  struct target *t = calloc(1, sizeof *t);
  if (t == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory opening target");
  t->fd = -1;
  t->sink.ops = &target_sink_ops;
  t->sink.state = t;
  t->requested = opts->requested_size;
  t->overhead = opts->fs_overhead;
  t->preallocate = opts->preallocate;
  t->flush_interval = opts->flush_interval ? opts->flush_interval : TARGET_DEFAULT_FLUSH_INTERVAL;
  t->path = strdup(opts->path);
  t->zero_buf = calloc(1, TARGET_ZERO_BUF_SIZE);
  if (t->path == NULL || t->zero_buf == NULL) {
    target_free(t);
    return verr_set(err, VERR_NOMEM, "out of memory opening target");
  }
  if (target_open_fd(t, err) == -1) {
    target_free(t);
    return -1;
  }
  t->direct = direct_writer_new(t->path, t->fd);
  if (t->direct == NULL)
    vlog_info("target", "%s cannot be opened with O_DIRECT; writing through the page cache",
              t->path);
  *out = t;
  return 0;
}

/* ---- sizing ----------------------------------------------------------------------- */

static void format_size(uint64_t bytes, char *out, size_t out_size)
{
  bool gib = bytes >= GiB;
  snprintf(out, out_size, "%llu bytes (%.2f %s)", (unsigned long long)bytes,
           (double)bytes / (double)(gib ? GiB : MiB), gib ? "GiB" : "MiB");
}

/* CDI's sentence first (pkg/image/qemu.go checkIfURLIsValid, with ErrLargerPVCRequired):
 * the controller maps "is larger than the reported available" to "DataVolume too small
 * to contain image" (pkg/controller/util.go simplifyKnownMessage). */
#define CDI_TOO_BIG "virtual image size %llu is larger than the reported available storage " \
                    "%llu. A larger PVC is required."

static int target_refuse_file(const struct target *t, uint64_t virtual_size, struct verr *err)
{
  char free_s[64], req_s[64];
  format_size(t->free_bytes, free_s, sizeof free_s);
  format_size(t->requested, req_s, sizeof req_s);
  return verr_set(err, VERR_TARGET_TOO_SMALL,
                  CDI_TOO_BIG " (The available storage is the smaller of the requested size, "
                  "%s, and the %s free on the filesystem of %s.) Request a PVC of at least "
                  "%llu bytes",
                  (unsigned long long)virtual_size, (unsigned long long)t->capacity,
                  t->requested ? req_s : "not given", free_s, t->path,
                  (unsigned long long)virtual_size);
}

static int target_refuse_block(const struct target *t, uint64_t virtual_size, struct verr *err)
{
  return verr_set(err, VERR_TARGET_TOO_SMALL,
                  CDI_TOO_BIG " (The available storage is the size of the block device %s.) "
                  "Request a block volume of at least %llu bytes",
                  (unsigned long long)virtual_size, (unsigned long long)t->capacity, t->path,
                  (unsigned long long)virtual_size);
}

static int target_preallocate(struct target *t, struct verr *err)
{
  if (fallocate(t->fd, 0, 0, (off_t)t->size) == 0) {
    t->preallocation_applied = true;
    return 0;
  }
  if (errno == EOPNOTSUPP) {
    vlog_warn("target", "the filesystem of %s cannot preallocate; continuing sparse", t->path);
    return 0;
  }
  return verr_sys(err, VERR_IO, errno,
                  "cannot preallocate %llu bytes for %s (request a larger PVC or disable "
                  "preallocation)",
                  (unsigned long long)t->size, t->path);
}

int target_check_fits(struct target *t, uint64_t virtual_size, struct verr *err)
{
  if (virtual_size > t->capacity)
    return t->kind == TARGET_KIND_FILE ? target_refuse_file(t, virtual_size, err)
                                       : target_refuse_block(t, virtual_size, err);
  t->size_known = true;
  t->limit = virtual_size;
  if (t->kind == TARGET_KIND_BLOCK)
    return 0;
  /* CDI's resize: the disk grows to min(usable, requested), never shrinks, and keeps
   * the image's size when no size was requested. Sized now, so preallocation covers it. */
  t->size = target_grown_size(virtual_size, t->requested, t->usable);
  if (ftruncate(t->fd, (off_t)t->size) == -1)
    return verr_sys(err, VERR_IO, errno, "cannot size %s to %llu bytes", t->path,
                    (unsigned long long)t->size);
  return t->preallocate ? target_preallocate(t, err) : 0;
}

/* ---- writing ---------------------------------------------------------------------- */

/* Everything queued for O_DIRECT is on storage (or failed). */
static int target_drain(struct target *t, struct verr *err)
{
  return t->direct != NULL ? direct_writer_drain(t->direct, err) : 0;
}

static int target_flush_cache(struct target *t, struct verr *err)
{
  /* Write-behind: wait only for the write-back started one interval ago (it had a whole
   * interval to finish, so the wait is short), drop those now clean pages, and start
   * write-back of what was dirtied since without waiting for it. Waiting for every
   * write here (WAIT_AFTER) stalled the whole pipeline on the disk each interval. */
  unsigned flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE;
  if (sync_file_range(t->fd, 0, 0, flags) == -1)
    return verr_sys(err, VERR_IO, errno, "writing back %s failed", t->path);
  (void)posix_fadvise(t->fd, 0, 0, POSIX_FADV_DONTNEED); /* advice only */
  t->since_flush = 0;
  return 0;
}

static int target_account(struct target *t, uint64_t len, struct verr *err)
{
  t->since_flush += len;
  return t->since_flush >= t->flush_interval ? target_flush_cache(t, err) : 0;
}

static int target_pwrite(struct target *t, uint64_t offset, const void *buf, size_t len,
                         struct verr *err)
{
  const char *p = buf;
  while (len > 0) {
    ssize_t n = pwrite(t->fd, p, len, (off_t)offset);
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1)
      return verr_sys(err, VERR_IO, errno, "write of %zu bytes at offset %llu to %s failed",
                      len, (unsigned long long)offset, t->path);
    p += n;
    offset += (uint64_t)n;
    len -= (size_t)n;
  }
  return 0;
}

static int target_write_zeros(struct target *t, uint64_t offset, uint64_t len, struct verr *err)
{
  while (len > 0) {
    size_t n = len < TARGET_ZERO_BUF_SIZE ? (size_t)len : TARGET_ZERO_BUF_SIZE;
    if (target_pwrite(t, offset, t->zero_buf, n, err) == -1)
      return -1;
    if (target_account(t, n, err) == -1)
      return -1;
    offset += n;
    len -= n;
  }
  return 0;
}

static bool fallocate_unsupported(int e) { return e == EOPNOTSUPP || e == EINVAL || e == ENOSYS; }

static int target_zero_file(struct target *t, uint64_t offset, uint64_t len, struct verr *err)
{
  /* With preallocation the zeroed range must stay allocated: zero it in place, or
   * write zeros, never punch a hole. */
  int first = t->preallocate ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  if (fallocate(t->fd, first, (off_t)offset, (off_t)len) == 0)
    return 0;
  if (!fallocate_unsupported(errno))
    return verr_sys(err, VERR_IO, errno, "cannot zero %llu bytes at offset %llu of %s",
                    (unsigned long long)len, (unsigned long long)offset, t->path);
  if (!t->preallocate && fallocate(t->fd, FALLOC_FL_ZERO_RANGE, (off_t)offset, (off_t)len) == 0)
    return 0;
  return target_write_zeros(t, offset, len, err);
}

static int target_zero_block(struct target *t, uint64_t offset, uint64_t len, struct verr *err)
{
  uint64_t end = offset + len;
  uint64_t start_aligned = round_up(offset, SECTOR);
  uint64_t end_aligned = round_down(end, SECTOR);
  if (start_aligned >= end_aligned)
    return target_write_zeros(t, offset, len, err);
  if (target_write_zeros(t, offset, start_aligned - offset, err) == -1)
    return -1;
  uint64_t range[2] = {start_aligned, end_aligned - start_aligned};
  if (ioctl(t->fd, BLKZEROOUT, range) == -1) {
    if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOTTY)
      return verr_sys(err, VERR_IO, errno, "cannot zero %llu bytes at offset %llu of %s",
                      (unsigned long long)range[1], (unsigned long long)range[0], t->path);
    if (target_write_zeros(t, range[0], range[1], err) == -1)
      return -1;
  }
  return target_write_zeros(t, end_aligned, end - end_aligned, err);
}

static bool target_range_untouched(const struct target *t, uint64_t offset, uint64_t len)
{
  return t->written_lo >= t->written_hi || offset + len <= t->written_lo ||
         offset >= t->written_hi;
}

static int target_write_zero_range(struct target *t, uint64_t offset, uint64_t len,
                                   struct verr *err)
{
  if (len == 0)
    return 0;
  if (t->kind == TARGET_KIND_FILE && !t->existed && target_range_untouched(t, offset, len)) {
    t->zero_bytes_skipped += len;
    return 0;
  }
  if (target_drain(t, err) == -1)
    return -1;
  int r = t->kind == TARGET_KIND_FILE ? target_zero_file(t, offset, len, err)
                                      : target_zero_block(t, offset, len, err);
  if (r == 0)
    t->zero_bytes_zeroed += len;
  return r;
}

/* Aligned data goes to the O_DIRECT writer; the rest through the page cache, once the
 * writer holds nothing that could land after it. */
static int target_write_data(struct target *t, uint64_t offset, const void *buf, size_t len,
                             struct verr *err)
{
  if (t->direct != NULL && direct_writer_accepts(offset, len)) {
    t->bytes_direct += len;
    return direct_writer_write(t->direct, offset, buf, len, err);
  }
  if (target_drain(t, err) == -1 || target_pwrite(t, offset, buf, len, err) == -1)
    return -1;
  return target_account(t, len, err);
}

static int target_write_data_range(struct target *t, uint64_t offset, const void *buf,
                                   size_t len, struct verr *err)
{
  if (len == 0)
    return 0;
  if (target_write_data(t, offset, buf, len, err) == -1)
    return -1;
  if (t->written_lo >= t->written_hi) {
    t->written_lo = offset;
    t->written_hi = offset + len;
  } else {
    t->written_lo = offset < t->written_lo ? offset : t->written_lo;
    t->written_hi = offset + len > t->written_hi ? offset + len : t->written_hi;
  }
  t->bytes_written += len;
  return 0;
}

static int target_check_range(struct target *t, uint64_t offset, uint64_t len, struct verr *err)
{
  if (offset > t->limit || len > t->limit - offset)
    return verr_set(err, VERR_INTERNAL,
                    "extent [%llu, +%llu) ends past the %s of %s (%llu bytes): the decoder "
                    "produced an offset outside the image; please report this bug",
                    (unsigned long long)offset, (unsigned long long)len,
                    t->size_known ? "virtual size" : "capacity", t->path,
                    (unsigned long long)t->limit);
  if (offset + len > t->high_end)
    t->high_end = offset + len;
  return 0;
}

static int target_sink_zero(struct vsink *s, uint64_t offset, uint64_t len, struct verr *err)
{
  struct target *t = s->state;
  if (target_check_range(t, offset, len, err) == -1)
    return -1;
  return target_write_zero_range(t, offset, len, err);
}

/* Split a data extent at 64 KiB guest boundaries; runs of all-zero pieces become zero
 * ranges, runs of data pieces are written with one pwrite each. */
static int target_sink_data(struct vsink *s, uint64_t offset, const void *buf, size_t len,
                            struct verr *err)
{
  struct target *t = s->state;
  if (target_check_range(t, offset, len, err) == -1)
    return -1;
  const unsigned char *base = buf;
  size_t run_start = 0;
  bool run_zero = false;
  size_t pos = 0;
  while (pos < len) {
    uint64_t boundary = round_down(offset + pos, TARGET_ZERO_CHECK_SIZE) + TARGET_ZERO_CHECK_SIZE;
    size_t piece = boundary - (offset + pos) < len - pos ? (size_t)(boundary - (offset + pos))
                                                         : len - pos;
    bool zero = mem_is_zero(base + pos, piece);
    if (pos > run_start && zero != run_zero) {
      int r = run_zero ? target_write_zero_range(t, offset + run_start, pos - run_start, err)
                       : target_write_data_range(t, offset + run_start, base + run_start,
                                                 pos - run_start, err);
      if (r == -1)
        return -1;
      run_start = pos;
    }
    run_zero = zero;
    pos += piece;
  }
  return run_zero ? target_write_zero_range(t, offset + run_start, len - run_start, err)
                  : target_write_data_range(t, offset + run_start, base + run_start,
                                            len - run_start, err);
}

struct vsink *target_sink(struct target *t) { return &t->sink; }

/* ---- finishing -------------------------------------------------------------------- */

int target_finish(struct target *t, struct verr *err)
{
  if (target_drain(t, err) == -1)
    return -1;
  if (t->kind == TARGET_KIND_FILE) {
    /* Without target_check_fits() the image ends where its last extent ends. */
    if (!t->size_known)
      t->size = t->high_end;
    if (ftruncate(t->fd, (off_t)t->size) == -1)
      return verr_sys(err, VERR_IO, errno, "cannot size %s to %llu bytes", t->path,
                      (unsigned long long)t->size);
    /* CDI leaves disk.img rw for the pod's group (the qemu user in virt-launcher). */
    if (fchmod(t->fd, 0660) == -1)
      return verr_sys(err, VERR_IO, errno, "cannot set the mode of %s to 0660", t->path);
  } else if (t->preallocate && t->size_known) {
    /* Every byte of [0, virtual size) was written: data, or zeros through BLKZEROOUT
     * (which never unmaps) or pwrite. */
    t->preallocation_applied = true;
  }
  if (fsync(t->fd) == -1)
    return verr_sys(err, VERR_IO, errno,
                    "fsync of %s failed: the written data may not be on storage; check the "
                    "volume and re-run the import",
                    t->path);
  (void)posix_fadvise(t->fd, 0, 0, POSIX_FADV_DONTNEED); /* advice only */
  return 0;
}

int target_invalidate(struct target *t, struct verr *err)
{
  /* Queued writes land first, or they would land on the invalidated target; their
   * errors (often the reason for the failure, ENOSPC) were reported already. */
  struct verr ignored = { 0 };
  (void)target_drain(t, &ignored);
  if (t->kind == TARGET_KIND_FILE) {
    if (ftruncate(t->fd, 0) == -1)
      return verr_sys(err, VERR_IO, errno, "cannot truncate the incomplete image %s; delete it "
                      "before using the volume", t->path);
  } else {
    uint64_t edge = t->capacity < 2 * MiB ? t->capacity : MiB;
    if (target_zero_block(t, 0, edge, err) == -1 ||
        target_zero_block(t, t->capacity - edge, edge, err) == -1)
      return -1;
  }
  if (fsync(t->fd) == -1)
    return verr_sys(err, VERR_IO, errno, "fsync of %s failed", t->path);
  return 0;
}

void target_get_info(const struct target *t, struct target_info *info)
{
  *info = (struct target_info){
    .kind = t->kind,
    .capacity = t->capacity,
    .size = t->size,
    .bytes_written = t->bytes_written,
    .bytes_direct = t->bytes_direct,
    .zero_bytes_skipped = t->zero_bytes_skipped,
    .zero_bytes_zeroed = t->zero_bytes_zeroed,
    .existed = t->existed,
    .preallocation_applied = t->preallocation_applied,
  };
}

uint64_t target_blank_size(const struct target *t)
{
  if (t->kind == TARGET_KIND_FILE)
    return t->usable;
  return t->requested != 0 && t->requested < t->capacity ? t->requested : t->capacity;
}

const char *target_path(const struct target *t) { return t->path; }

void target_free(struct target *t)
{
  if (t == NULL)
    return;
  direct_writer_free(t->direct);
  if (t->fd >= 0)
    close(t->fd);
  free(t->zero_buf);
  free(t->path);
  free(t);
}

static const struct vsink_ops target_sink_ops = {
  .name = "target",
  .data = target_sink_data,
  .zero = target_sink_zero,
};
