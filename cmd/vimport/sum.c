/* vimport sum: blksum-compatible block hash of images, like sha256sum, and a drop-in
 * for blksum 0.11's command line (docs: vimport-sum(1), docs/man/vimport-sum.1).
 *
 *   vimport sum [-d DIGEST] [-t THREADS] [-q DEPTH] [-r SIZE] [-c] [-p] [-l] [FILE|URL|-]...
 *   vimport sum [-d DIGEST] ... --check LIST
 *
 * Regular files are walked with SEEK_DATA/SEEK_HOLE so holes are never read (and their
 * data extents mapped and hashed in place, see hash_range_mapped); block
 * devices are read to their BLKGETSIZE64 size; "-" is stdin, hashed as exact bytes.
 * Files and devices holding an image format are hashed as their guest-visible content,
 * the digest of the raw image qemu-img would convert them to, by the import's own
 * decoders: qcow2 by pkg/qcow2; streamOptimized vmdk, dynamic vhd and vdi by their
 * streamed rows of pkg/decode, in one pass into an unordered block hash (hash_streamed);
 * a fixed vhd as the raw bytes ahead of its footer, as the import's raw row reads it;
 * the other formats qemu reads (vhdx, sparse vmdk, ...) through a private qemu-nbd, as
 * the import's qemu row does (pkg/decode/nbd.c). NBD URLs are read with libnbd using
 * block status (pkg/nbd), so holes are never read.
 *
 * --manifest OUT (one input only) also writes a per-block digest manifest that
 * `vimport verify --manifest` uses to name the byte ranges that changed (format and
 * writer in pkg/verify).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blkhash/blkhash.h"
#include "commands.h"
#include "core/cleanup.h"
#include "core/error.h"
#include "core/stream.h"
#include "decode/decode.h"
#include "metrics/metrics.h"
#include "nbd/nbd.h"
#include "qcow2/qcow2.h"
#include "sniff/sniff.h"
#include "verify/verify.h"

/* Large enough that syscalls cost little, small enough to stay in cache while hashed. */

struct sum_opts {
  struct blkhash_opts hash;
  bool progress;
  bool cache;           /* -c/--cache: leave what was read in the page cache */
  size_t read_size;     /* -r: bytes per read (pread, NBD); 0: the hasher's batch */
  unsigned queue_depth; /* -q: NBD reads in flight (NBD URLs, images read by qemu-nbd) */
  const char *manifest; /* --manifest OUT, or NULL */
};

struct progress {
  bool on;
  const char *name;
  uint64_t total; /* 0 when unknown (stdin) */
  uint64_t done;
  struct timespec start;
  struct timespec last;
};

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
  return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void progress_update(struct progress *p, uint64_t done)
{
  p->done = done;
  if (!p->on)
    return;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (seconds_between(&p->last, &now) < 0.2)
    return;
  p->last = now;
  char stage[96], line[256];
  snprintf(stage, sizeof stage, "vimport sum: hashing %s", p->name);
  progress_text(line, sizeof line, stage, done, p->total, seconds_between(&p->start, &now));
  fprintf(stderr, "\r\033[K%s", line);
}

static void progress_end(struct progress *p)
{
  if (p->on)
    fprintf(stderr, "\r\033[K");
}

/* Without -c/--cache blksum reads with O_DIRECT, so hashing a large image does not
 * evict everything else from the page cache. Reads here go through the cache (mapped
 * windows need it), so the pages read are dropped once hashed: the same effect. */
static void drop_cached(int fd, const struct sum_opts *opts, uint64_t offset, uint64_t len)
{
  if (!opts->cache && len > 0)
    posix_fadvise(fd, (off_t)offset, (off_t)len, POSIX_FADV_DONTNEED);
}

/* SIGTERM or SIGINT while a private qemu-nbd serves an input (hash_image): that child runs with
 * --persistent and would outlive a process that dies in the handler, so the handler only
 * sets sum_stop; the walk stops at its next extent (progress_sink_*), nbd_guest_free()
 * kills the child, and stop_if_signalled() then says so and dies by the signal. File-scope
 * state of the command, the one place a signal handler can reach (as import.c's). */
static volatile sig_atomic_t sum_child_running;
static volatile sig_atomic_t sum_stop; /* the signal to die by once the child is stopped */

static const char sigterm_message[] = "vimport sum: Terminated by signal 15\n";

static void stop_if_signalled(void)
{
  int sig = __atomic_load_n(&sum_stop, __ATOMIC_RELAXED);
  if (sig == 0)
    return;
  if (sig == SIGTERM) {
    ssize_t ignored = write(STDERR_FILENO, sigterm_message, sizeof sigterm_message - 1);
    (void)ignored;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

static int check_stop(struct verr *err)
{
  if (__atomic_load_n(&sum_stop, __ATOMIC_RELAXED))
    return verr_set(err, VERR_IO, "stopped by a signal");
  return 0;
}

/* A sink in front of the block hash's that reports progress: for the inputs decoded
 * into guest extents (qcow2, qemu-nbd, NBD URLs). */
struct progress_sink {
  struct vsink *inner;
  struct progress *p;
};

static int progress_sink_data(struct vsink *s, uint64_t off, const void *buf, size_t len,
                              struct verr *err)
{
  struct progress_sink *ps = s->state;
  if (check_stop(err) < 0 || vsink_data(ps->inner, off, buf, len, err) < 0)
    return -1;
  progress_update(ps->p, off + len);
  return 0;
}

static int progress_sink_zero(struct vsink *s, uint64_t off, uint64_t len, struct verr *err)
{
  struct progress_sink *ps = s->state;
  if (check_stop(err) < 0 || vsink_zero(ps->inner, off, len, err) < 0)
    return -1;
  progress_update(ps->p, off + len);
  return 0;
}

static const struct vsink_ops progress_sink_ops = {
  .name = "sum-progress", .data = progress_sink_data, .zero = progress_sink_zero,
};

static int hash_zero(struct blkhash *h, uint64_t len, struct verr *err)
{
  int r = blkhash_zero(h, len);
  return r == 0 ? 0 : verr_sys(err, VERR_INTERNAL, r, "block hash failed");
}

/* Read up to `want` bytes straight into the hasher's buffer (no copy between the read
 * and the hashing threads): at `offset` with pread, or from the current position when
 * `offset` is negative. Returns the count read, 0 at the end, or -1. */
static ssize_t read_into_hash(int fd, int64_t offset, uint64_t want, struct blkhash *h,
                              struct verr *err)
{
  void *buf;
  size_t room;
  int r = blkhash_buffer(h, &buf, &room);
  if (r != 0)
    return verr_sys(err, VERR_INTERNAL, r, "block hash failed");
  if (want < room)
    room = (size_t)want;
  ssize_t n;
  do
    n = offset < 0 ? read(fd, buf, room) : pread(fd, buf, room, (off_t)offset);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return verr_sys(err, VERR_IO, errno, "read failed at byte %lld", (long long)offset);
  if (n > 0 && (r = blkhash_commit(h, (size_t)n)) != 0)
    return verr_sys(err, VERR_INTERNAL, r, "block hash failed");
  return n;
}

/* Hash bytes [offset, offset+len) of fd, read with pread. */
static int hash_range(int fd, uint64_t offset, uint64_t len, struct blkhash *h,
                      const struct sum_opts *opts, struct progress *p, struct verr *err)
{
  while (len > 0) {
    uint64_t want = opts->read_size > 0 && opts->read_size < len ? opts->read_size : len;
    ssize_t n = read_into_hash(fd, (int64_t)offset, want, h, err);
    if (n < 0)
      return -1;
    if (n == 0)
      return verr_set(err, VERR_IO, "file ended at byte %llu while reading: it shrank during hashing",
                      (unsigned long long)offset);
    drop_cached(fd, opts, offset, (uint64_t)n);
    offset += (uint64_t)n;
    len -= (uint64_t)n;
    progress_update(p, offset);
  }
  return 0;
}

/* Data extents of regular files at least this long are mapped and hashed in place by
 * the hashing threads, SUM_MAP_WINDOW at a time: no copy out of the page cache, which
 * was a fifth of the CPU time of `sum -t 2` (perf). Two windows are mapped at once at
 * most (the next is mapped while the threads finish the last), so the resident set
 * stays bounded whatever the file size. Shorter extents are read with pread. */
#define SUM_MAP_MIN (1u << 20)
#define SUM_MAP_WINDOW (16u << 20)

struct window {
  void *addr; /* the mapping, page aligned; NULL: nothing mapped */
  size_t len;
  uint64_t start; /* the file offset of addr */
};

static void window_unmap(int fd, const struct sum_opts *opts, struct window *w)
{
  if (w->addr != NULL) {
    munmap(w->addr, w->len);
    drop_cached(fd, opts, w->start, w->len);
  }
  w->addr = NULL;
}

/* Map bytes [offset, offset+len) of fd; *data is the first of them. 0, or -1 when the
 * file cannot be mapped (the caller reads it instead). */
static int window_map(int fd, uint64_t offset, size_t len, struct window *w,
                      const unsigned char **data)
{
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  uint64_t start = offset - offset % page;
  w->len = (size_t)(offset - start) + len;
  w->start = start;
  w->addr = mmap(NULL, w->len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)start);
  if (w->addr == MAP_FAILED) {
    w->addr = NULL;
    return -1;
  }
  *data = (const unsigned char *)w->addr + (offset - start);
  return 0;
}

/* A byte past the end of a file that shrank would be SIGBUS in a hashing thread: check
 * before each window (a shrink during one is the SIGBUS handler's, in cmd_sum). */
static int check_not_shrunk(int fd, uint64_t end, struct verr *err)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot stat");
  if ((uint64_t)st.st_size < end)
    return verr_set(err, VERR_IO, "file ended at byte %llu while reading: it shrank during hashing",
                    (unsigned long long)st.st_size);
  return 0;
}

static int hash_settle(struct blkhash *h, struct verr *err)
{
  int r = blkhash_settle(h);
  return r == 0 ? 0 : verr_sys(err, VERR_INTERNAL, r, "block hash failed");
}

/* hash_range() of a regular file through windows mapped in turn. */
static int hash_range_mapped(int fd, uint64_t offset, uint64_t len, struct blkhash *h,
                             const struct sum_opts *opts, struct progress *p, struct verr *err)
{
  struct window hashing = { 0 }; /* given to the hasher, maybe still being read */
  int r = 0;
  while (r == 0 && len > 0) {
    size_t n = len < SUM_MAP_WINDOW ? (size_t)len : SUM_MAP_WINDOW;
    struct window next;
    const unsigned char *data;
    if ((r = check_not_shrunk(fd, offset + n, err)) < 0)
      break;
    bool mapped = window_map(fd, offset, n, &next, &data) == 0;
    r = hash_settle(h, err);
    window_unmap(fd, opts, &hashing);
    if (r < 0 && mapped)
      window_unmap(fd, opts, &next);
    if (r < 0)
      break;
    if (!mapped)
      return hash_range(fd, offset, len, h, opts, p, err);
    hashing = next;
    int e = blkhash_update_inplace(h, data, n);
    if (e != 0)
      r = verr_sys(err, VERR_INTERNAL, e, "block hash failed");
    offset += n;
    len -= n;
    progress_update(p, offset);
  }
  if (hash_settle(h, r < 0 ? &(struct verr){ 0 } : err) < 0)
    r = -1;
  window_unmap(fd, opts, &hashing);
  return r;
}

/* A regular file: only its data extents are read; holes go to blkhash_zero(). */
static int hash_sparse_file(int fd, uint64_t size, struct blkhash *h, const struct sum_opts *opts,
                            struct progress *p, struct verr *err)
{
  uint64_t pos = 0;
  while (pos < size) {
    off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO)
      data = (off_t)size; /* no data after pos: the rest is a hole */
    else if (data < 0)
      return hash_range(fd, pos, size - pos, h, opts, p, err); /* no SEEK_DATA: read all */
    if ((uint64_t)data > size)
      data = (off_t)size;
    if ((uint64_t)data > pos && hash_zero(h, (uint64_t)data - pos, err) < 0)
      return -1;
    pos = (uint64_t)data;
    if (pos >= size)
      break;
    off_t hole = lseek(fd, (off_t)pos, SEEK_HOLE);
    uint64_t end = hole < 0 || (uint64_t)hole > size ? size : (uint64_t)hole;
    int r = end - pos >= SUM_MAP_MIN ? hash_range_mapped(fd, pos, end - pos, h, opts, p, err)
                                     : hash_range(fd, pos, end - pos, h, opts, p, err);
    if (r < 0)
      return -1;
    pos = end;
  }
  return 0;
}

/* A stream of unknown length (stdin, a pipe): exact bytes until EOF. */
static int hash_stream(int fd, struct blkhash *h, struct progress *p, struct verr *err)
{
  uint64_t total = 0;
  for (;;) {
    ssize_t n = read_into_hash(fd, -1, SIZE_MAX, h, err);
    if (n <= 0)
      return (int)n;
    total += (uint64_t)n;
    progress_update(p, total);
  }
}

/* The qemu driver of an image format in fd, or NULL for raw bytes (also for anything
 * the sniffer refuses: blksum hashes every file's bytes that qemu calls raw). */
static const char *input_format(int fd)
{
  unsigned char *head = malloc(SNIFF_BYTES);
  if (head == NULL)
    return NULL;
  ssize_t n = pread(fd, head, SNIFF_BYTES, 0);
  struct sniff_result s;
  const char *driver = NULL;
  if (n > 0 && sniff_buffer(head, (size_t)n, NULL, &s) == 0)
    driver = sniff_qemu_driver(s.format);
  free(head);
  return driver != NULL && strcmp(driver, "raw") == 0 ? NULL : driver;
}

/* qcow2: hash the guest content, walked in guest order by the qcow2 reader. */
static int hash_qcow2(int fd, struct vsink *sink, struct verr *err)
{
  struct qcow2_file *q = NULL;
  if (qcow2_file_open(fd, &q, err) < 0)
    return -1;
  int r = qcow2_file_read_guest(q, sink, err);
  qcow2_file_free(q);
  return r;
}

/* An NBD export (opts->uri) or an image file served by a private qemu-nbd (opts->file,
 * opts->format): the guest content, holes found by block status and never read. */
static int hash_nbd(const struct nbd_guest_opts *o, struct vsink *sink, struct progress *p,
                    struct verr *err)
{
  struct nbd_guest *g = NULL;
  if (nbd_guest_open(o, &g, err) < 0)
    return -1;
  p->total = nbd_guest_size(g);
  int r = nbd_guest_walk(g, sink, err);
  nbd_guest_free(g);
  return r;
}

static bool is_nbd_url(const char *name)
{
  static const char *const schemes[] = { "nbd://", "nbds://", "nbd+unix://", "nbds+unix://" };
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (strncmp(name, schemes[i], strlen(schemes[i])) == 0)
      return true;
  return false;
}

static int input_size(int fd, const struct stat *st, uint64_t *size, struct verr *err)
{
  if (S_ISREG(st->st_mode)) {
    *size = (uint64_t)st->st_size;
    return 0;
  }
  if (ioctl(fd, BLKGETSIZE64, size) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot get the block device size (BLKGETSIZE64)");
  return 0;
}

/* blksum's NBD reads: 256 KiB each, 16 in flight (-q) unless -r says otherwise. */
#define SUM_NBD_READ_SIZE (256u << 10)

static size_t nbd_read_size(const struct sum_opts *opts)
{
  return opts->read_size > 0 ? opts->read_size : SUM_NBD_READ_SIZE;
}

/* A file or block device that holds an image format: its guest content, through a
 * sink that reports progress in front of the block hash's. */
static int hash_image(int fd, const char *name, const char *driver, struct blkhash *h,
                      const struct sum_opts *opts, struct progress *p, struct verr *err)
{
  struct vsink hash_sink;
  struct blkhash_sink_state state;
  blkhash_sink_init(&hash_sink, &state, h);
  struct progress_sink ps = { .inner = &hash_sink, .p = p };
  struct vsink sink = { .ops = &progress_sink_ops, .state = &ps };
  if (strcmp(driver, "qcow2") == 0)
    return hash_qcow2(fd, &sink, err);
  struct nbd_guest_opts o = { .file = name, .format = driver, .request_size = nbd_read_size(opts),
                              .queue_depth = opts->queue_depth };
  __atomic_store_n(&sum_child_running, 1, __ATOMIC_RELAXED);
  int r = hash_nbd(&o, &sink, p, err); /* the child is gone when it returns */
  __atomic_store_n(&sum_child_running, 0, __ATOMIC_RELAXED);
  stop_if_signalled();
  return r;
}

static int hash_nbd_url(const char *url, struct blkhash *h, const struct sum_opts *opts,
                        struct progress *p, struct verr *err)
{
  struct vsink hash_sink;
  struct blkhash_sink_state state;
  blkhash_sink_init(&hash_sink, &state, h);
  struct progress_sink ps = { .inner = &hash_sink, .p = p };
  struct vsink sink = { .ops = &progress_sink_ops, .state = &ps };
  struct nbd_guest_opts o = { .uri = url, .request_size = nbd_read_size(opts),
                              .queue_depth = opts->queue_depth };
  return hash_nbd(&o, &sink, p, err);
}

/* The guest bytes of `size` raw bytes: all of them, unless they end with a fixed VHD's
 * footer that describes exactly the bytes before it, which the import drops
 * (pkg/raw/stream.c, raw_finish) and so does sum, to give the import's block hash. */
static uint64_t guest_size_of_raw(int fd, uint64_t size)
{
  unsigned char footer[SNIFF_VHD_FOOTER_BYTES];
  uint64_t vsize;
  if (size < sizeof footer ||
      pread(fd, footer, sizeof footer, (off_t)(size - sizeof footer)) != (ssize_t)sizeof footer)
    return size;
  bool fixed_vhd = sniff_vhd_fixed_footer(footer, size, &vsize) && vsize == size - sizeof footer;
  return fixed_vhd ? vsize : size;
}

/* Feed everything `name` holds (see the top of this file) into `h`. */
static int hash_input(const char *name, struct blkhash *h, const struct sum_opts *opts,
                      struct progress *p, struct verr *err)
{
  if (is_nbd_url(name))
    return hash_nbd_url(name, h, opts, p, err);
  bool is_stdin = strcmp(name, "-") == 0;
  CLEANUP_CLOSE int fd = is_stdin ? dup(STDIN_FILENO) : open(name, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && strstr(name, "://") != NULL)
    return verr_set(err, VERR_USAGE, "no such file; URLs other than nbd://, nbds://, "
                                     "nbd+unix:// and nbds+unix:// are not read by sum");
  if (fd < 0)
    return verr_sys(err, VERR_IO, errno, "cannot open");
  struct stat st;
  if (fstat(fd, &st) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot stat");
  if (S_ISDIR(st.st_mode))
    return verr_set(err, VERR_USAGE, "is a directory; name an image file, a block device or -");
  bool seekable = !is_stdin && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
  if (!seekable)
    return hash_stream(fd, h, p, err);
  const char *driver = input_format(fd);
  if (driver != NULL)
    return hash_image(fd, name, driver, h, opts, p, err);
  uint64_t size = 0;
  if (input_size(fd, &st, &size, err) < 0)
    return -1;
  size = guest_size_of_raw(fd, size);
  p->total = size;
  if (S_ISREG(st.st_mode))
    return hash_sparse_file(fd, size, h, opts, p, err);
  return hash_range(fd, 0, size, h, opts, p, err);
}

/* ---- images whose decoder emits out of guest order ----------------------------------- */

/* Guest bytes of a streamed image wait for their block's turn in this much memory at
 * most (digests of blocks that run ahead, blocks that arrive in pieces); an image
 * scattered further is read through qemu-nbd instead (sum_input). */
#define SUM_UNORDERED_PENDING (256ull << 20)

/* The guest size of a streamed row is known only at its end: the hash spans this bound
 * until then (nothing is allocated by it). */
#define SUM_UNORDERED_BOUND (UINT64_C(1) << 62)

/* The file's bytes for a streamed decoder, read in order; progress counts them. */
struct sum_file_reader {
  int fd;
  uint64_t done;
  const struct sum_opts *opts;
  struct progress *p;
};

static ssize_t sum_file_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct sum_file_reader *f = r->state;
  if (check_stop(err) < 0)
    return -1;
  if (f->opts->read_size > 0 && len > f->opts->read_size)
    len = f->opts->read_size; /* -r: bytes per read, as for every file */
  ssize_t n;
  do
    n = read(f->fd, buf, len);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return verr_sys(err, VERR_IO, errno, "read failed at byte %llu", (unsigned long long)f->done);
  drop_cached(f->fd, f->opts, f->done, (uint64_t)n);
  f->done += (uint64_t)n;
  progress_update(f->p, f->done);
  return n;
}

static const struct vreader_ops sum_file_reader_ops = { .name = "sum-file", .read = sum_file_read };

/* The streamed row that decodes `name`, or NULL (not a seekable file or device, or not
 * a format with such a row); *s is its sniff result. */
static const struct decoder *streamed_row(const char *name, struct sniff_result *s)
{
  struct stat st;
  /* stat before open: opening a FIFO would take its writer's first bytes away, or
   * leave the writer with no reader once closed */
  if (strcmp(name, "-") == 0 || is_nbd_url(name) || stat(name, &st) < 0 ||
      !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
    return NULL;
  CLEANUP_CLOSE int fd = open(name, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  unsigned char *head = malloc(SNIFF_BYTES);
  if (head == NULL)
    return NULL;
  ssize_t n = pread(fd, head, SNIFF_BYTES, 0);
  bool sniffed = n > 0 && sniff_buffer(head, (size_t)n, NULL, s) == 0;
  free(head);
  const struct decoder *row = sniffed ? decoder_for(s) : NULL;
  return row != NULL && !row->guest_order && row->input == DECODER_INPUT_STREAM ? row : NULL;
}

/* `name` decoded by `row` in one pass into an unordered block hash over `hash`. */
static int hash_streamed(const char *name, const struct decoder *row, const struct sniff_result *s,
                         const struct blkhash_opts *hash, const struct sum_opts *opts,
                         struct progress *p, unsigned char *md, unsigned *md_len,
                         uint64_t *length, struct verr *err)
{
  CLEANUP_CLOSE int fd = open(name, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot open");
  uint64_t size = 0;
  if (input_size(fd, &st, &size, err) < 0)
    return -1;
  p->total = size;
  struct blkhash_unordered *u = NULL;
  int e = blkhash_unordered_new(hash, SUM_UNORDERED_BOUND, SUM_UNORDERED_PENDING, &u);
  if (e != 0)
    return verr_sys(err, VERR_USAGE, e, "cannot create the block hash");
  struct sum_file_reader f = { .fd = fd, .opts = opts, .p = p };
  struct vreader in = { .ops = &sum_file_reader_ops, .state = &f };
  struct decode_ctx ctx = { .in = &in, .stream_length = size, .capacity = SUM_UNORDERED_BOUND,
                            .sniff = s, .block_hash = hash, .quiet = true };
  struct decode_result res = { 0 };
  int r = row->decode(&ctx, blkhash_unordered_sink(u), &res, err);
  if (r == 0 && (e = blkhash_unordered_set_length(u, res.size)) != 0)
    r = verr_sys(err, VERR_INTERNAL, e, "the %s decoder sent bytes past the size it reported; "
                 "please report this bug", row->name);
  if (r == 0 && (e = blkhash_unordered_final(u, md, md_len)) != 0)
    r = verr_sys(err, VERR_INTERNAL, e, "block hash failed");
  *length = res.size;
  blkhash_unordered_free(u);
  return r;
}

/* ---- one input ------------------------------------------------------------------------ */

/* Hash one input with the hasher its content needs: `row` (a streamed row of
 * pkg/decode), or NULL for an ordered block hash. On success writes the hex digest. */
static int sum_attempt(const char *name, const struct decoder *row, const struct sniff_result *s,
                       const struct sum_opts *opts, char *hex, struct verr *err)
{
  struct blkhash_opts hash = opts->hash;
  struct manifest_writer *manifest = NULL;
  if (opts->manifest && manifest_writer_open(opts->manifest, hash.digest_name, hash.block_size,
                                             &manifest, err) < 0)
    return -1;
  if (manifest != NULL)
    manifest_writer_attach(manifest, &hash);
  struct progress p = { .on = opts->progress, .name = name };
  clock_gettime(CLOCK_MONOTONIC, &p.start);
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len = 0;
  uint64_t length = 0;
  int r;
  if (row != NULL) {
    r = hash_streamed(name, row, s, &hash, opts, &p, md, &md_len, &length, err);
  } else {
    struct blkhash *h = NULL;
    r = blkhash_new(&hash, &h);
    if (r != 0) {
      manifest_writer_close(manifest, false, 0, NULL, err);
      return verr_sys(err, VERR_USAGE, r, "cannot create the block hash");
    }
    r = hash_input(name, h, opts, &p, err);
    if (r == 0 && (r = blkhash_final(h, md, &md_len)) != 0)
      r = verr_sys(err, VERR_INTERNAL, r, "block hash failed");
    length = blkhash_length(h);
    blkhash_free(h);
  }
  progress_end(&p);
  if (r == 0)
    blkhash_hex(md, md_len, hex);
  if (manifest_writer_close(manifest, r == 0, length, hex, err) < 0)
    r = -1;
  return r;
}

/* Hash one input. On success writes the hex digest to `hex`. A streamed image scattered
 * further than the hash can hold in memory is hashed again through qemu-nbd, which reads
 * it in guest order: the same digest, in more time. */
static int sum_input(const char *name, const struct sum_opts *opts, char *hex, struct verr *err)
{
  struct sniff_result s;
  const struct decoder *row = streamed_row(name, &s);
  if (row == NULL)
    return sum_attempt(name, NULL, NULL, opts, hex, err);
  struct verr first = { 0 };
  if (sum_attempt(name, row, &s, opts, hex, &first) == 0)
    return 0;
  if (first.code != VERR_SCRATCH_REQUIRED) {
    *err = first;
    return -1;
  }
  fprintf(stderr, "vimport sum: %s: this %s image's blocks are too far out of guest order to "
                  "hash in one pass in %llu MiB; reading it again through qemu-nbd\n",
          name, row->name, SUM_UNORDERED_PENDING >> 20);
  return sum_attempt(name, NULL, NULL, opts, hex, err);
}

static int sum_files(char **names, int count, const struct sum_opts *opts)
{
  int status = 0;
  for (int i = 0; i < count; i++) {
    char hex[2 * BLKHASH_MAX_MD_SIZE + 1];
    struct verr err = { 0 };
    if (sum_input(names[i], opts, hex, &err) < 0) {
      fprintf(stderr, "vimport sum: %s: %s\n", names[i], err.message);
      status = 1;
      continue;
    }
    printf("%s  %s\n", hex, names[i]);
    fflush(stdout);
  }
  return status;
}

/* Split a "<hex>  <name>" (or "<hex> *<name>") line; returns 0 or -1 if malformed. */
static int parse_check_line(char *line, char **hex, char **name)
{
  line[strcspn(line, "\r\n")] = '\0';
  size_t hex_len = strspn(line, "0123456789abcdefABCDEF");
  if (hex_len == 0 || line[hex_len] != ' ' || (line[hex_len + 1] != ' ' && line[hex_len + 1] != '*'))
    return -1;
  line[hex_len] = '\0';
  *hex = line;
  *name = line + hex_len + 2;
  return **name ? 0 : -1;
}

static int check_list(const char *list, const struct sum_opts *opts)
{
  CLEANUP_FCLOSE FILE *f = strcmp(list, "-") == 0 ? fdopen(dup(STDIN_FILENO), "r") : fopen(list, "r");
  if (f == NULL) {
    fprintf(stderr, "vimport sum: %s: cannot open the list: %s\n", list, strerror(errno));
    return 1;
  }
  char line[8192];
  unsigned failed = 0, malformed = 0, lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *hex, *name;
    if (parse_check_line(line, &hex, &name) < 0) {
      fprintf(stderr, "vimport sum: %s:%u: not a '<hex>  <name>' line\n", list, lineno);
      malformed++;
      continue;
    }
    char got[2 * BLKHASH_MAX_MD_SIZE + 1];
    struct verr err = { 0 };
    if (sum_input(name, opts, got, &err) < 0) {
      fprintf(stderr, "vimport sum: %s: %s\n", name, err.message);
      printf("%s: FAILED open or read\n", name);
      failed++;
    } else if (strcasecmp(got, hex) != 0) {
      printf("%s: FAILED\n", name);
      failed++;
    } else {
      printf("%s: OK\n", name);
    }
  }
  if (failed > 0)
    fprintf(stderr, "vimport sum: WARNING: %u computed block hash%s did NOT match\n", failed,
            failed == 1 ? "" : "es");
  if (malformed > 0)
    fprintf(stderr, "vimport sum: WARNING: %u line%s improperly formatted\n", malformed,
            malformed == 1 ? " is" : "s are");
  if (lineno == 0)
    fprintf(stderr, "vimport sum: %s: no properly formatted lines found\n", list);
  return failed > 0 || malformed > 0 || lineno == 0 ? 1 : 0;
}

static void sum_usage(FILE *out)
{
  fputs("usage: vimport sum [-d DIGEST] [-t THREADS] [-q QUEUE_DEPTH] [-r READ_SIZE] [-c] [-p]\n"
        "                   [--block-size N] [--manifest OUT] [FILE|URL|-]...\n"
        "       vimport sum [options] --check LIST\n"
        "       vimport sum -l\n"
        "\n"
        "Print the block hash of each input as '<hex>  <name>'; blksum 0.11's options and output.\n"
        "  -d, --digest DIGEST     OpenSSL digest name, or null (default sha256)\n"
        "  -l, --list-digests      list the digest names and exit\n"
        "  -t, --threads N         hashing threads (default: online CPUs, at most 16)\n"
        "  -q, --queue-depth N     NBD reads in flight, 1..128 (default 16)\n"
        "  -r, --read-size N       bytes per read, file or NBD (suffixes k m; default\n"
        "                          256k for NBD, the hasher's 1 MiB batch for files)\n"
        "  -c, --cache             keep what was read in the page cache (default: drop it)\n"
        "  -p, --progress          show progress on stderr (default when it is a terminal)\n"
        "      --no-progress       show no progress\n"
        "      --block-size N      block size in bytes, a power of two (default 65536)\n"
        "      --check LIST        verify the lines of LIST written by 'vimport sum'\n"
        "                          (long option only: -c is --cache, as in blksum)\n"
        "      --manifest OUT      also write a per-block digest manifest (one input only),\n"
        "                          for 'vimport verify --manifest'\n"
        "  -h, --help              show this help\n"
        "Inputs: raw, qcow2, vmdk, vhd, vhdx, vdi files or block devices; NBD URLs (nbd://,\n"
        "nbds://, nbd+unix:///?socket=PATH); '-' for stdin (default), hashed as raw bytes.\n",
        out);
}

static unsigned default_threads(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 16 ? 16 : (unsigned)n;
}

static int parse_unsigned(const char *s, unsigned long long max, unsigned long long *out)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max)
    return -1;
  *out = v;
  return 0;
}

/* blksum's sizes: a number with an optional k, m or g (powers of 1024). */
static int parse_size(const char *s, unsigned long long max, unsigned long long *out)
{
  char num[32];
  size_t len = strlen(s);
  if (len == 0 || len >= sizeof num)
    return -1;
  memcpy(num, s, len + 1);
  unsigned shift = 0;
  const char *units = "kKmMgG";
  const char *u = strchr(units, num[len - 1]);
  if (u != NULL && num[len - 1] != '\0') {
    shift = (unsigned)(10 * (1 + (u - units) / 2));
    num[len - 1] = '\0';
  }
  unsigned long long v;
  if (parse_unsigned(num, max >> shift, &v) < 0)
    return -1;
  *out = v << shift;
  return 0;
}

/* Regular files are hashed through mappings (hash_range_mapped): a file truncated while
 * it is hashed faults in a hashing thread. Say so instead of dying with "Bus error". */
static void on_sigbus(int sig)
{
  (void)sig;
  static const char msg[] = "vimport sum: a file shrank (was truncated) while it was being "
                            "hashed; hash it again once nothing is writing to it\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  _exit(1);
}

/* blksum says why it stops on SIGTERM, then dies by the signal, so that its parent sees
 * the signal in the status (SA_RESETHAND restored the default action: the raised signal
 * is delivered when the handler returns). SIGINT kills silently, as in blksum. With a
 * qemu-nbd child either death is deferred until the child is stopped (sum_stop above). */
static void on_stop_signal(int sig)
{
  _Static_assert(SIGTERM == 15, "the message names SIGTERM's number");
  if (__atomic_load_n(&sum_child_running, __ATOMIC_RELAXED)) {
    __atomic_store_n(&sum_stop, sig, __ATOMIC_RELAXED);
    return;
  }
  if (sig == SIGTERM) {
    ssize_t ignored = write(STDERR_FILENO, sigterm_message, sizeof sigterm_message - 1);
    (void)ignored;
  }
  raise(sig);
}

static void install_signal_handlers(void)
{
  struct sigaction sa = { .sa_handler = on_sigbus };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, NULL);
  struct sigaction stop = { .sa_handler = on_stop_signal, .sa_flags = SA_RESETHAND };
  sigemptyset(&stop.sa_mask);
  sigaction(SIGTERM, &stop, NULL);
  sigaction(SIGINT, &stop, NULL);
}

/* -l: the digests this OpenSSL offers under the names blksum users type, and null. */
static void list_digests(void)
{
  static const char *const names[] = {
    "blake2b512", "blake2s256", "md5", "md5-sha1", "null", "ripemd160", "sha1", "sha224",
    "sha256", "sha3-224", "sha3-256", "sha3-384", "sha3-512", "sha384", "sha512",
    "sha512-224", "sha512-256", "sm3",
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (blkhash_digest_known(names[i]))
      puts(names[i]);
}

/* Progress is on by default on a terminal, but never under CDI's environment contract,
 * whose logs are collected: a line rewritten in place is noise there. */
static bool progress_default(void)
{
  return isatty(STDERR_FILENO) && getenv("IMPORTER_SOURCE") == NULL;
}

enum { OPT_BLOCK_SIZE = 256, OPT_CHECK, OPT_MANIFEST, OPT_NO_PROGRESS };

/* Apply one option; returns -1 to go on, or the exit code to stop with. */
static int sum_option(int c, const char *arg, struct sum_opts *opts, const char **check)
{
  unsigned long long v;
  switch (c) {
  case 'd':
    opts->hash.digest_name = arg;
    return -1;
  case 't':
    if (parse_unsigned(arg, 256, &v) == 0 && v > 0) {
      opts->hash.threads = (unsigned)v;
      return -1;
    }
    fprintf(stderr, "vimport sum: --threads must be a number from 1 to 256, not '%s'\n", arg);
    return 2;
  case 'q':
    if (parse_unsigned(arg, 128, &v) == 0 && v > 0) {
      opts->queue_depth = (unsigned)v;
      return -1;
    }
    fprintf(stderr, "vimport sum: --queue-depth must be a number from 1 to 128, not '%s'\n", arg);
    return 2;
  case 'r':
    if (parse_size(arg, 32u << 20, &v) == 0 && v >= 512) {
      opts->read_size = (size_t)v;
      return -1;
    }
    fprintf(stderr, "vimport sum: --read-size must be from 512 bytes to 32m (suffixes k, m), "
                    "not '%s'\n", arg);
    return 2;
  case OPT_BLOCK_SIZE:
    if (parse_unsigned(arg, 64u << 20, &v) == 0 && v >= 512 && (v & (v - 1)) == 0) {
      opts->hash.block_size = (size_t)v;
      return -1;
    }
    fprintf(stderr, "vimport sum: --block-size must be a power of two from 512 to 67108864, not '%s'\n",
            arg);
    return 2;
  case 'c':
    opts->cache = true;
    return -1;
  case 'p':
    opts->progress = isatty(STDERR_FILENO);
    return -1;
  case OPT_NO_PROGRESS:
    opts->progress = false;
    return -1;
  case OPT_CHECK:
    *check = arg;
    return -1;
  case OPT_MANIFEST:
    opts->manifest = arg;
    return -1;
  case 'l':
    list_digests();
    return 0;
  case 'h':
    sum_usage(stdout);
    return 0;
  default:
    sum_usage(stderr);
    return 2;
  }
}

int cmd_sum(int argc, char **argv)
{
  static const struct option longopts[] = {
    { "digest", required_argument, NULL, 'd' },
    { "threads", required_argument, NULL, 't' },
    { "queue-depth", required_argument, NULL, 'q' },
    { "read-size", required_argument, NULL, 'r' },
    { "cache", no_argument, NULL, 'c' },
    { "progress", no_argument, NULL, 'p' },
    { "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
    { "list-digests", no_argument, NULL, 'l' },
    { "block-size", required_argument, NULL, OPT_BLOCK_SIZE },
    { "check", required_argument, NULL, OPT_CHECK },
    { "manifest", required_argument, NULL, OPT_MANIFEST },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct sum_opts opts = { .hash = { .digest_name = "sha256", .threads = default_threads() },
                           .progress = progress_default(), .queue_depth = 16 };
  const char *check = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "d:t:q:r:cplh", longopts, NULL)) != -1) {
    int code = sum_option(c, optarg, &opts, &check);
    if (code >= 0)
      return code;
  }
  if (!blkhash_digest_known(opts.hash.digest_name)) {
    fprintf(stderr, "vimport sum: unknown digest '%s': use an OpenSSL digest name such as sha256, "
                    "sha512, sha1, md5 or blake2b512, or null ('vimport sum -l' lists them)\n",
            opts.hash.digest_name);
    return 1;
  }
  if (opts.manifest != NULL && (check != NULL || argc - optind != 1 ||
                                strcmp(opts.hash.digest_name, "null") == 0)) {
    fprintf(stderr, "vimport sum: --manifest needs exactly one input FILE (not --check) and a "
                    "digest other than null\n");
    return 2;
  }
  install_signal_handlers();
  if (check != NULL)
    return check_list(check, &opts);
  if (optind == argc) {
    char *dash[] = { "-" };
    return sum_files(dash, 1, &opts);
  }
  return sum_files(argv + optind, argc - optind, &opts);
}
