/* vimport archive: the safe extractor (see archive.h). Names come from an untrusted
 * archive, so each is walked one component at a time beneath the root fd, never through
 * a symlink, and every entry is created where nothing is followed (O_EXCL, O_NOFOLLOW,
 * symlinkat, linkat without AT_SYMLINK_FOLLOW). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"

#define COPY_BUFFER (256u * 1024u)
#define DEPTH_MAX 256 /* deeper names are refused: removing a tree holds one fd per level */

struct extractor {
  struct tar_reader *t;
  int root_fd;
  const struct archive_limits *limits;
  struct archive_stats *stats;
  uint64_t budget_used; /* whole blocks of data, plus one block per entry */
  unsigned char *buf;   /* COPY_BUFFER bytes */
  const struct tar_entry *e;
  char shown[256];      /* the entry's name, printable, for messages */
};

/* A name from the archive, made safe to print: control and non-ASCII bytes become '?'. */
static void printable(const char *s, char *out, size_t size)
{
  size_t i = 0;
  for (; s[i] != '\0' && i + 4 < size; i++)
    out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  if (s[i] != '\0')
    memcpy(out + i, "...", 3), i += 3;
  out[i] = '\0';
}

static int refuse(struct extractor *x, const char *why, const char *fix, struct verr *err)
{
  return verr_set(err, VERR_FORMAT, "the archive's entry '%s' at offset %llu %s: vimport does "
                  "not unpack it; %s", x->shown, (unsigned long long)x->e->offset, why, fix);
}

static int fs_error(struct extractor *x, int e, const char *what, struct verr *err)
{
  if (e == ENOSPC || e == EDQUOT)
    return verr_set(err, VERR_TARGET_TOO_SMALL, "cannot %s '%s': no space left on device: "
                    "request a bigger volume", what, x->shown);
  return verr_sys(err, VERR_IO, e, "cannot %s '%s' in the volume", what, x->shown);
}

static int cancelled(const struct extractor *x, struct verr *err)
{
  if (x->limits->cancelled == NULL || !*x->limits->cancelled)
    return 0;
  return verr_set(err, VERR_CANCELLED, "the import was stopped by a signal while unpacking "
                  "the archive; nothing was kept");
}

/* ---- names ------------------------------------------------------------------------------- */

/* The next component of `*p` (skipping '/' runs and "."), its length in *len; NULL at
 * the end. */
static const char *next_component(const char **p, size_t *len)
{
  for (;;) {
    while (**p == '/')
      (*p)++;
    if (**p == '\0')
      return NULL;
    const char *c = *p;
    *len = strcspn(c, "/");
    *p += *len;
    if (!(*len == 1 && c[0] == '.'))
      return c;
  }
}

static bool is_dotdot(const char *c, size_t len)
{
  return len == 2 && c[0] == '.' && c[1] == '.';
}

/* Open the directory that holds `path`'s last component, beneath the root, creating the
 * missing directories on the way (0755 before masking: tar does the same). The last
 * component goes to `base` ("" when the name is the root itself), the number of
 * directories above it to *depth. Returns a new fd or -1. */
static int open_parent(struct extractor *x, const char *path, bool create, char *base,
                       unsigned *depth, struct verr *err)
{
  if (path[0] == '/')
    return refuse(x, "has an absolute name", "make the archive with relative names "
                  "(tar -C dir .)", err);
  const char *p = path, *c;
  size_t len;
  int fd = dup(x->root_fd);
  if (fd < 0)
    return fs_error(x, errno, "open the staging directory for", err);
  *depth = 0;
  base[0] = '\0';
  while ((c = next_component(&p, &len)) != NULL) {
    if (is_dotdot(c, len))
      close(fd), fd = refuse(x, "has a '..' component", "make the archive without '..' in "
                             "its names", err);
    else if (len > NAME_MAX)
      close(fd), fd = refuse(x, "has a component longer than 255 bytes", "shorten it", err);
    else if (*depth >= DEPTH_MAX)
      close(fd), fd = refuse(x, "is nested more than 256 directories deep", "flatten it", err);
    if (fd < 0)
      return -1;
    if (base[0] != '\0') { /* the previous component was a directory: go down */
      int next = openat(fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0 && errno == ENOENT && create && mkdirat(fd, base, 0755) == 0)
        next = openat(fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      int e = errno;
      close(fd);
      if (next < 0 && (e == ELOOP || e == ENOTDIR))
        return refuse(x, "goes through a symlink or a file", "make the archive without "
                      "names that lead through a link", err);
      if (next < 0 && e == ENOENT)
        return refuse(x, "links to a name that is not in the archive before it",
                      "make the archive without links to files outside it", err);
      if (next < 0)
        return fs_error(x, e, "open the directory above", err);
      fd = next;
      (*depth)++;
    }
    memcpy(base, c, len);
    base[len] = '\0';
  }
  return fd;
}

/* A symlink may point only at a relative target whose '..' components all lead it, no
 * more of them than the directories above the link: resolved from a real directory
 * (the extractor never walks through a link), it then stays beneath the root, and so
 * does every chain of such links. */
static bool symlink_stays_inside(const char *target, unsigned depth)
{
  if (target[0] == '\0' || target[0] == '/')
    return false;
  const char *p = target, *c;
  size_t len;
  unsigned up = 0;
  bool down = false;
  while ((c = next_component(&p, &len)) != NULL) {
    if (!is_dotdot(c, len))
      down = true;
    else if (down || ++up > depth)
      return false;
  }
  return true;
}

/* ---- entries ------------------------------------------------------------------------------ */

/* Make room for `base` in `dir`: a file or link of that name from an earlier entry goes,
 * as tar replaces it; a directory stays (a later entry never replaces one). */
static int replace_old(struct extractor *x, int dir, const char *base, struct verr *err)
{
  if (unlinkat(dir, base, 0) == 0)
    return 0;
  if (errno == EISDIR)
    return refuse(x, "would replace a directory of the same name", "remove the duplicate", err);
  return fs_error(x, errno, "replace", err);
}

static int charge(struct extractor *x, uint64_t bytes, struct verr *err)
{
  const struct archive_limits *l = x->limits;
  uint64_t bs = l->block_size ? l->block_size : 1;
  uint64_t cost = bytes / bs * bs + (bytes % bs ? bs : 0) + bs;
  bool too_many = l->max_entries != 0 && x->stats->entries >= l->max_entries;
  if (cost > l->max_bytes || x->budget_used > l->max_bytes - cost || too_many)
    return verr_set(err, VERR_TARGET_TOO_SMALL, "the archive's content up to '%s' (%llu "
                    "entries, %llu bytes in whole blocks) is larger than the reported "
                    "available space (%llu bytes, %llu inodes) in the volume: request a "
                    "bigger volume", x->shown, (unsigned long long)x->stats->entries + 1,
                    (unsigned long long)(x->budget_used + cost),
                    (unsigned long long)l->max_bytes, (unsigned long long)l->max_entries);
  x->budget_used += cost;
  x->stats->entries++;
  return 0;
}

static int write_all(struct extractor *x, int fd, const unsigned char *p, size_t n,
                     struct verr *err)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return fs_error(x, errno, "write", err);
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int copy_data(struct extractor *x, int fd, struct verr *err)
{
  for (;;) {
    if (cancelled(x, err) < 0)
      return -1;
    ssize_t n = tar_read(x->t, x->buf, COPY_BUFFER, err);
    if (n <= 0)
      return (int)n;
    if (write_all(x, fd, x->buf, (size_t)n, err) < 0)
      return -1;
  }
}

static int create_file(struct extractor *x, int dir, const char *base, struct verr *err)
{
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  int fd = openat(dir, base, flags, 0600);
  if (fd < 0 && errno == EEXIST) {
    if (replace_old(x, dir, base, err) < 0)
      return -1;
    fd = openat(dir, base, flags, 0600);
  }
  if (fd < 0)
    return fs_error(x, errno, "create", err);
  const struct tar_entry *e = x->e;
  struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = e->mtime } };
  int r = copy_data(x, fd, err);
  if (r == 0 && (fchmod(fd, e->mode & 0777) < 0 || futimens(fd, times) < 0))
    r = fs_error(x, errno, "set the mode and time of", err);
  if (close(fd) < 0 && r == 0)
    r = fs_error(x, errno, "write", err);
  if (r == 0) {
    x->stats->files++;
    x->stats->bytes += e->size;
  }
  return r;
}

static int create_dir(struct extractor *x, int dir, const char *base, struct verr *err)
{
  if (mkdirat(dir, base, 0700) < 0 && errno != EEXIST)
    return fs_error(x, errno, "create the directory", err);
  int fd = openat(dir, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && (errno == ENOTDIR || errno == ELOOP)) { /* a file or link of that name */
    if (replace_old(x, dir, base, err) < 0)
      return -1;
    if (mkdirat(dir, base, 0700) < 0)
      return fs_error(x, errno, "create the directory", err);
    fd = openat(dir, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0)
    return fs_error(x, errno, "open the directory", err);
  /* u+rwx stays: the tree must remain writable until it is committed or removed */
  int r = fchmod(fd, (x->e->mode & 0777) | 0700) < 0 ? fs_error(x, errno, "chmod", err) : 0;
  close(fd);
  return r;
}

static int create_symlink(struct extractor *x, int dir, const char *base, unsigned depth,
                          struct verr *err)
{
  if (!symlink_stays_inside(x->e->linkname, depth))
    return refuse(x, "is a symlink that points outside the archive (absolute, or '..' "
                  "beyond its top)", "make the link relative and inside the archive", err);
  if (symlinkat(x->e->linkname, dir, base) == 0)
    return 0;
  if (errno != EEXIST)
    return fs_error(x, errno, "create the symlink", err);
  if (replace_old(x, dir, base, err) < 0)
    return -1;
  return symlinkat(x->e->linkname, dir, base) == 0 ? 0 : fs_error(x, errno, "create the symlink", err);
}

static int create_hardlink(struct extractor *x, int dir, const char *base, struct verr *err)
{
  char target_base[NAME_MAX + 1];
  unsigned depth;
  int tdir = open_parent(x, x->e->linkname, false, target_base, &depth, err);
  if (tdir < 0)
    return verr_prefix(err, "hard link target");
  struct stat st;
  int r = 0;
  if (target_base[0] == '\0' || fstatat(tdir, target_base, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
      S_ISDIR(st.st_mode))
    r = refuse(x, "is a hard link to a name that is not a file unpacked before it",
               "make the archive without links to files outside it", err);
  if (r == 0 && linkat(tdir, target_base, dir, base, 0) < 0) {
    if (errno != EEXIST)
      r = fs_error(x, errno, "link", err);
    else if (replace_old(x, dir, base, err) < 0)
      r = -1;
    else if (linkat(tdir, target_base, dir, base, 0) < 0)
      r = fs_error(x, errno, "link", err);
  }
  close(tdir);
  return r;
}

static int refuse_type(struct extractor *x, struct verr *err)
{
  const struct tar_entry *e = x->e;
  const char *fix = "remove it from the archive (only regular files, directories and links "
                    "are unpacked)";
  if (e->sparse || e->typeflag == 'S')
    return refuse(x, "is a GNU sparse file", "make the archive without --sparse", err);
  switch (e->type) {
  case TAR_CHAR:
  case TAR_BLOCKDEV:
    return refuse(x, "is a device node", fix, err);
  case TAR_FIFO:
    return refuse(x, "is a fifo", fix, err);
  default: {
    char why[64];
    snprintf(why, sizeof why, "has the unsupported type '%c' (0x%02x)",
             e->typeflag >= 0x20 && e->typeflag < 0x7f ? e->typeflag : '?',
             (unsigned char)e->typeflag);
    return refuse(x, why, fix, err);
  }
  }
}

static int extract_entry(struct extractor *x, struct verr *err)
{
  const struct tar_entry *e = x->e;
  printable(e->name, x->shown, sizeof x->shown);
  bool supported = !e->sparse && (e->type == TAR_REGULAR || e->type == TAR_DIRECTORY ||
                                  e->type == TAR_SYMLINK || e->type == TAR_HARDLINK);
  if (!supported)
    return refuse_type(x, err);
  if (cancelled(x, err) < 0 || charge(x, e->type == TAR_REGULAR ? e->size : 0, err) < 0)
    return -1;
  char base[NAME_MAX + 1];
  unsigned depth;
  int dir = open_parent(x, e->name, true, base, &depth, err);
  if (dir < 0)
    return -1;
  int r;
  if (base[0] == '\0') /* "." or "./": the root itself, which stays as it is */
    r = e->type == TAR_DIRECTORY ? 0 : refuse(x, "names the archive's root", "rename it", err);
  else if (e->type == TAR_REGULAR)
    r = create_file(x, dir, base, err);
  else if (e->type == TAR_DIRECTORY)
    r = create_dir(x, dir, base, err);
  else if (e->type == TAR_SYMLINK)
    r = create_symlink(x, dir, base, depth, err);
  else
    r = create_hardlink(x, dir, base, err);
  close(dir);
  return r;
}

int archive_extract(struct tar_reader *t, int root_fd, const struct archive_limits *limits,
                    struct archive_stats *stats, struct verr *err)
{
  struct extractor x = { .t = t, .root_fd = root_fd, .limits = limits, .stats = stats };
  struct tar_entry *e = malloc(sizeof *e);
  x.buf = malloc(COPY_BUFFER);
  int r = -1;
  if (e == NULL || x.buf == NULL) {
    verr_set(err, VERR_NOMEM, "out of memory for the archive extractor");
  } else {
    x.e = e;
    while ((r = tar_next(t, e, err)) == 1)
      if (extract_entry(&x, err) < 0) {
        r = -1;
        break;
      }
  }
  free(e);
  free(x.buf);
  return r;
}
