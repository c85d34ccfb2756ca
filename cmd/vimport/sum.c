/* vimport sum: blksum-compatible block hash of images, like sha256sum.
 *
 *   vimport sum [-d DIGEST] [-t THREADS] [--block-size N] [-p] [FILE|-]...
 *   vimport sum [-d DIGEST] ... --check LIST
 *
 * Regular files are walked with SEEK_DATA/SEEK_HOLE so holes are never read (and their
 * data extents mapped and hashed in place, see hash_range_mapped); block
 * devices are read to their BLKGETSIZE64 size; "-" is stdin, hashed as exact bytes;
 * qcow2 files (by magic) are hashed as their guest-visible content, the digest of the
 * raw image qemu-img would convert them to.
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
#include "qcow2/qcow2.h"
#include "verify/verify.h"

/* Large enough that syscalls cost little, small enough to stay in cache while hashed. */

struct sum_opts {
  struct blkhash_opts hash;
  bool progress;
  const char *manifest; /* --manifest OUT, or NULL */
};

struct progress {
  bool on;
  const char *name;
  uint64_t total; /* 0 when unknown (stdin) */
  uint64_t done;
  struct timespec last;
};

static void progress_update(struct progress *p, uint64_t done)
{
  p->done = done;
  if (!p->on)
    return;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double since = (double)(now.tv_sec - p->last.tv_sec) + (double)(now.tv_nsec - p->last.tv_nsec) / 1e9;
  if (since < 0.2)
    return;
  p->last = now;
  if (p->total > 0)
    fprintf(stderr, "\r%s: %5.1f%%", p->name, 100.0 * (double)done / (double)p->total);
  else
    fprintf(stderr, "\r%s: %llu MiB", p->name, (unsigned long long)(done >> 20));
}

static void progress_end(struct progress *p)
{
  if (p->on)
    fprintf(stderr, "\r\033[K");
}

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
                      struct progress *p, struct verr *err)
{
  while (len > 0) {
    ssize_t n = read_into_hash(fd, (int64_t)offset, len, h, err);
    if (n < 0)
      return -1;
    if (n == 0)
      return verr_set(err, VERR_IO, "file ended at byte %llu while reading: it shrank during hashing",
                      (unsigned long long)offset);
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
};

static void window_unmap(struct window *w)
{
  if (w->addr != NULL)
    munmap(w->addr, w->len);
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
                             struct progress *p, struct verr *err)
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
    window_unmap(&hashing);
    if (r < 0 && mapped)
      window_unmap(&next);
    if (r < 0)
      break;
    if (!mapped)
      return hash_range(fd, offset, len, h, p, err);
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
  window_unmap(&hashing);
  return r;
}

/* A regular file: only its data extents are read; holes go to blkhash_zero(). */
static int hash_sparse_file(int fd, uint64_t size, struct blkhash *h, struct progress *p,
                            struct verr *err)
{
  uint64_t pos = 0;
  while (pos < size) {
    off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO)
      data = (off_t)size; /* no data after pos: the rest is a hole */
    else if (data < 0)
      return hash_range(fd, pos, size - pos, h, p, err); /* no SEEK_DATA: read all */
    if ((uint64_t)data > size)
      data = (off_t)size;
    if ((uint64_t)data > pos && hash_zero(h, (uint64_t)data - pos, err) < 0)
      return -1;
    pos = (uint64_t)data;
    if (pos >= size)
      break;
    off_t hole = lseek(fd, (off_t)pos, SEEK_HOLE);
    uint64_t end = hole < 0 || (uint64_t)hole > size ? size : (uint64_t)hole;
    int r = end - pos >= SUM_MAP_MIN ? hash_range_mapped(fd, pos, end - pos, h, p, err)
                                     : hash_range(fd, pos, end - pos, h, p, err);
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

static int is_qcow2(int fd)
{
  unsigned char magic[4];
  return pread(fd, magic, sizeof magic, 0) == (ssize_t)sizeof magic &&
         memcmp(magic, "QFI\xfb", 4) == 0;
}

/* qcow2: hash the guest content, walked in guest order by the qcow2 reader. */
static int hash_qcow2(int fd, struct blkhash *h, struct verr *err)
{
  struct qcow2_file *q = NULL;
  if (qcow2_file_open(fd, &q, err) < 0)
    return -1;
  struct vsink sink;
  struct blkhash_sink_state state;
  blkhash_sink_init(&sink, &state, h);
  int r = qcow2_file_read_guest(q, &sink, err);
  qcow2_file_free(q);
  return r;
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

/* Hash one input. On success writes the hex digest to `hex`. */
static int sum_input(const char *name, const struct sum_opts *opts, char *hex, struct verr *err)
{
  bool is_stdin = strcmp(name, "-") == 0;
  CLEANUP_CLOSE int fd = is_stdin ? dup(STDIN_FILENO) : open(name, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return verr_sys(err, VERR_IO, errno, "cannot open");
  struct stat st;
  if (fstat(fd, &st) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot stat");
  if (S_ISDIR(st.st_mode))
    return verr_set(err, VERR_USAGE, "is a directory; name an image file, a block device or -");

  struct blkhash_opts hash = opts->hash;
  struct manifest_writer *manifest = NULL;
  if (opts->manifest && manifest_writer_open(opts->manifest, hash.digest_name, hash.block_size,
                                             &manifest, err) < 0)
    return -1;
  if (manifest != NULL)
    manifest_writer_attach(manifest, &hash);
  struct blkhash *h = NULL;
  int r = blkhash_new(&hash, &h);
  if (r != 0) {
    manifest_writer_close(manifest, false, 0, NULL, err);
    return verr_sys(err, VERR_USAGE, r, "cannot create the block hash");
  }
  struct progress p = { .on = opts->progress, .name = name };
  bool seekable = !is_stdin && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
  if (seekable && is_qcow2(fd)) {
    r = hash_qcow2(fd, h, err);
  } else if (seekable) {
    uint64_t size = 0;
    r = input_size(fd, &st, &size, err);
    p.total = size;
    if (r == 0 && S_ISREG(st.st_mode))
      r = hash_sparse_file(fd, size, h, &p, err);
    else if (r == 0)
      r = hash_range(fd, 0, size, h, &p, err);
  } else {
    r = hash_stream(fd, h, &p, err);
  }
  progress_end(&p);

  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len = 0;
  if (r == 0 && (r = blkhash_final(h, md, &md_len)) != 0)
    r = verr_sys(err, VERR_INTERNAL, r, "block hash failed");
  uint64_t length = blkhash_length(h);
  blkhash_free(h);
  if (r == 0)
    blkhash_hex(md, md_len, hex);
  if (manifest_writer_close(manifest, r == 0, length, hex, err) < 0)
    r = -1;
  return r;
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
  fputs("usage: vimport sum [-d DIGEST] [-t THREADS] [--block-size N] [-p] [FILE|-]...\n"
        "       vimport sum [options] --check LIST\n"
        "\n"
        "Print the block hash of each input as '<hex>  <name>' (blksum-compatible).\n"
        "  -d, --digest DIGEST   OpenSSL digest name (default sha256)\n"
        "  -t, --threads N       hashing threads (default: online CPUs, at most 16)\n"
        "      --block-size N    block size in bytes, a power of two (default 65536)\n"
        "  -p, --progress        show progress on stderr when it is a terminal\n"
        "  -c, --check LIST      verify the lines of LIST written by 'vimport sum'\n"
        "      --manifest OUT    also write a per-block digest manifest (one input only),\n"
        "                        for 'vimport verify --manifest'\n"
        "Inputs: raw or qcow2 files, block devices, '-' for stdin (default).\n",
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

int cmd_sum(int argc, char **argv)
{
  static const struct option longopts[] = {
    { "digest", required_argument, NULL, 'd' },
    { "threads", required_argument, NULL, 't' },
    { "block-size", required_argument, NULL, 'b' },
    { "progress", no_argument, NULL, 'p' },
    { "check", required_argument, NULL, 'c' },
    { "manifest", required_argument, NULL, 'm' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct sum_opts opts = { .hash = { .digest_name = "sha256", .threads = default_threads() } };
  const char *check = NULL;
  unsigned long long v;
  int c;
  while ((c = getopt_long(argc, argv, "d:t:pc:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'd':
      opts.hash.digest_name = optarg;
      break;
    case 't':
      if (parse_unsigned(optarg, 256, &v) < 0 || v == 0) {
        fprintf(stderr, "vimport sum: --threads must be a number from 1 to 256, not '%s'\n", optarg);
        return 2;
      }
      opts.hash.threads = (unsigned)v;
      break;
    case 'b':
      if (parse_unsigned(optarg, 64u << 20, &v) < 0 || v < 512 || (v & (v - 1)) != 0) {
        fprintf(stderr, "vimport sum: --block-size must be a power of two from 512 to 67108864, not '%s'\n",
                optarg);
        return 2;
      }
      opts.hash.block_size = (size_t)v;
      break;
    case 'p':
      opts.progress = isatty(STDERR_FILENO);
      break;
    case 'c':
      check = optarg;
      break;
    case 'm':
      opts.manifest = optarg;
      break;
    case 'h':
      sum_usage(stdout);
      return 0;
    default:
      sum_usage(stderr);
      return 2;
    }
  }
  if (!blkhash_digest_known(opts.hash.digest_name)) {
    fprintf(stderr, "vimport sum: unknown digest '%s': use an OpenSSL digest name such as sha256, "
                    "sha512, sha1, md5 or blake2b512 (see 'openssl list -digest-algorithms')\n",
            opts.hash.digest_name);
    return 1;
  }
  if (opts.manifest != NULL && (check != NULL || argc - optind != 1)) {
    fprintf(stderr, "vimport sum: --manifest needs exactly one input FILE (not --check)\n");
    return 2;
  }
  struct sigaction sa = { .sa_handler = on_sigbus };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, NULL);
  if (check != NULL)
    return check_list(check, &opts);
  if (optind == argc) {
    char *dash[] = { "-" };
    return sum_files(dash, 1, &opts);
  }
  return sum_files(argv + optind, argc - optind, &opts);
}
