/* vimport source: the file and stdin kinds.
 *
 * A plain path, "file://" + absolute path, or "-" for stdin, read with read(2): no
 * buffer of our own, since the page cache and the readers above already buffer. A file
 * that can seek is re-read with pread(2); stdin never is, even when it is a regular
 * file, because whoever handed it over may read it too.
 */
#include "source/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"

struct fd_source {
  int fd;
  int owns_fd; /* stdin stays open for whoever else reads it */
  int seekable;
  const volatile sig_atomic_t *stop; /* opts.stop */
  struct source_info info;
};

static ssize_t fd_read(void *state, void *buf, size_t len, struct verr *err)
{
  struct fd_source *s = state;
  for (;;) {
    ssize_t n = read(s->fd, buf, len);
    if (n >= 0) {
      s->info.bytes_received += (uint64_t)n;
      return n;
    }
    if (errno != EINTR)
      return verr_sys(err, VERR_IO, errno, "cannot read %s", s->info.location);
    /* the signal that set the stop flag is what interrupted a read of a stalled pipe */
    if (s->stop != NULL && *s->stop)
      return verr_set(err, VERR_CANCELLED, "the import was stopped by a signal (SIGTERM "
                      "or SIGINT) while reading %s; a rerun imports from the start",
                      s->info.location);
  }
}

static void fd_close(void *state)
{
  struct fd_source *s = state;
  if (s->owns_fd)
    close(s->fd);
  free(s);
}

static void fd_info(void *state, struct source_info *out)
{
  const struct fd_source *s = state;
  *out = s->info;
}

/* Size of a regular file or block device, -1 for anything else (pipes, sockets). */
static int64_t fd_size(int fd, const struct stat *st)
{
  if (S_ISREG(st->st_mode))
    return (int64_t)st->st_size;
  if (S_ISBLK(st->st_mode)) {
    off_t end = lseek(fd, 0, SEEK_END);
    if (end >= 0 && lseek(fd, 0, SEEK_SET) == 0)
      return (int64_t)end;
  }
  return -1;
}

static int fd_source_new(int fd, int owns_fd, const char *kind, const char *location,
                         const struct source_opts *opts, void **state, struct verr *err)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot stat %s", location);
  if (S_ISDIR(st.st_mode))
    return verr_set(err, VERR_USAGE, "%s is a directory; give the image file", location);
  struct fd_source *s = calloc(1, sizeof *s);
  if (s == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "opening %s", location);
  s->fd = fd;
  s->owns_fd = owns_fd;
  s->stop = opts->stop;
  s->info.kind = kind;
  snprintf(s->info.location, sizeof s->info.location, "%s", location);
  s->info.content_length = fd_size(fd, &st);
  s->seekable = s->info.content_length >= 0;
  s->info.accepts_ranges = s->seekable;
  if (S_ISREG(st.st_mode))
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  *state = s;
  return 0;
}

static int fd_pread(void *state, void *buf, size_t len, uint64_t offset, struct verr *err)
{
  struct fd_source *s = state;
  if (!s->seekable)
    return verr_sys(err, VERR_SOURCE, ENOTSUP, "%s is a stream and cannot be re-read at an "
                    "offset; give a file or an http(s) URL instead",
                    s->info.location);
  if (offset > INT64_MAX - len)
    return verr_set(err, VERR_INTERNAL, "re-read offset %llu out of range",
                    (unsigned long long)offset);
  for (size_t got = 0; got < len;) {
    ssize_t n = pread(s->fd, (char *)buf + got, len - got, (off_t)(offset + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return verr_sys(err, VERR_IO, errno, "cannot re-read %s at byte %llu",
                      s->info.location, (unsigned long long)(offset + got));
    if (n == 0)
      return verr_set(err, VERR_SOURCE, "%s ends before byte %llu: it shrank while being "
                      "imported; the import must restart",
                      s->info.location, (unsigned long long)(offset + len));
    got += (size_t)n;
  }
  return 0;
}

/* ---- file ---- */

static int file_match(const char *url)
{
  return strncasecmp(url, "file://", 7) == 0 || strstr(url, "://") == NULL;
}

static int file_open(const struct source_opts *opts, void **state, struct verr *err)
{
  const char *path = opts->url;
  if (strncasecmp(path, "file://", 7) == 0) {
    if (path[7] != '/')
      return verr_set(err, VERR_USAGE, "file URL %s has a host or a relative path; use "
                      "file:///absolute/path", path);
    path += 7;
  }
  CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return verr_sys(err, errno == ENOENT || errno == EACCES ? VERR_USAGE : VERR_IO, errno,
                    "cannot open the source %s (check the path and its permissions)", path);
  if (fd_source_new(fd, 1, "file", path, opts, state, err) < 0)
    return -1;
  fd = -1; /* the source owns it now */
  return 0;
}

static int file_can_pread(void *state)
{
  const struct fd_source *s = state;
  return s->seekable;
}

static const char *file_local_path(void *state)
{
  const struct fd_source *s = state;
  return s->info.location;
}

const struct source_kind source_file_kind = {
  .name       = "file",
  .match      = file_match,
  .open       = file_open,
  .read       = fd_read,
  .pread      = fd_pread,
  .can_pread  = file_can_pread,
  .info       = fd_info,
  .local_path = file_local_path,
  .close      = fd_close,
};

/* ---- stdin ---- */

static int stdin_match(const char *url)
{
  return strcmp(url, "-") == 0;
}

static int stdin_open(const struct source_opts *opts, void **state, struct verr *err)
{
  return fd_source_new(STDIN_FILENO, 0, "stdin", "-", opts, state, err);
}

static int stdin_can_pread(void *state)
{
  (void)state;
  return 0;
}

/* pread is kept for source_pread() on a stdin that is a regular file; can_pread says
 * no, so the pipeline never asks. */
const struct source_kind source_stdin_kind = {
  .name      = "stdin",
  .match     = stdin_match,
  .open      = stdin_open,
  .read      = fd_read,
  .pread     = fd_pread,
  .can_pread = stdin_can_pread,
  .info      = fd_info,
  .close     = fd_close,
};
