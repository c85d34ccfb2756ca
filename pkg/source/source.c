/* vimport source: opening a source by its location, and the file and stdin sources.
 *
 * "http://" and "https://" go to http.c; "file://" + absolute path, "-" and plain paths
 * are read with read(2), which needs no buffer of our own: the page cache and the
 * readers above already buffer.
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
  struct source_info snapshot;
};

static ssize_t fd_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct fd_source *s = r->state;
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

static void fd_close(struct vreader *r)
{
  struct fd_source *s = r->state;
  if (s->owns_fd)
    close(s->fd);
  free(s);
  free(r);
}

static const struct vreader_ops file_ops = {
  .name  = "source-file",
  .read  = fd_read,
  .close = fd_close,
};

static const struct vreader_ops stdin_ops = {
  .name  = "source-stdin",
  .read  = fd_read,
  .close = fd_close,
};

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
                         const struct vreader_ops *ops, struct vreader **out, struct verr *err)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot stat %s", location);
  if (S_ISDIR(st.st_mode))
    return verr_set(err, VERR_USAGE, "%s is a directory; give the image file", location);
  CLEANUP_FREE struct fd_source *s = calloc(1, sizeof *s);
  CLEANUP_FREE struct vreader *r = malloc(sizeof *r);
  if (s == NULL || r == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "opening %s", location);
  s->fd = fd;
  s->owns_fd = owns_fd;
  s->info.kind = kind;
  snprintf(s->info.location, sizeof s->info.location, "%s", location);
  s->info.content_length = fd_size(fd, &st);
  s->seekable = s->info.content_length >= 0;
  s->info.accepts_ranges = s->seekable;
  if (S_ISREG(st.st_mode))
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  *r = (struct vreader){ .ops = ops, .state = TAKE_PTR(s) };
  *out = TAKE_PTR(r);
  return 0;
}

static int file_open(const char *path, struct vreader **out, struct verr *err)
{
  CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return verr_sys(err, errno == ENOENT || errno == EACCES ? VERR_USAGE : VERR_IO, errno,
                    "cannot open the source %s (check the path and its permissions)", path);
  if (fd_source_new(fd, 1, "file", path, &file_ops, out, err) < 0)
    return -1;
  fd = -1; /* the reader owns it now */
  return 0;
}

static int is_http_url(const char *url)
{
  return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

static int source_open_any(const struct source_opts *opts, struct vreader **out,
                           struct verr *err)
{
  const char *url = opts->url;
  if (url == NULL || url[0] == '\0')
    return verr_set(err, VERR_USAGE, "no source given; give a URL, a path or \"-\" for stdin");
  if (is_http_url(url))
    return source_http_open(opts, out, err);
  if (strcmp(url, "-") == 0)
    return fd_source_new(STDIN_FILENO, 0, "stdin", "-", &stdin_ops, out, err);
  if (strncasecmp(url, "file://", 7) == 0) {
    if (url[7] != '/')
      return verr_set(err, VERR_USAGE, "file URL %s has a host or a relative path; use "
                      "file:///absolute/path", url);
    return file_open(url + 7, out, err);
  }
  if (strstr(url, "://") != NULL) {
    char redacted[2048];
    verr_redact_url(url, redacted, sizeof redacted);
    return verr_set(err, VERR_USAGE, "unsupported source %s: use http://, https://, "
                    "file:///path, a path, or \"-\" for stdin", redacted);
  }
  return file_open(url, out, err);
}

int source_open(const struct source_opts *opts, struct vreader **out, struct verr *err)
{
  if (source_open_any(opts, out, err) < 0)
    return -1;
  if (!source_http_is(*out))
    ((struct fd_source *)(*out)->state)->stop = opts->stop;
  return 0;
}

const struct source_info *source_info(struct vreader *r)
{
  if (r == NULL)
    return NULL;
  if (source_http_is(r))
    return source_http_info(r);
  if (r->ops != &file_ops && r->ops != &stdin_ops)
    return NULL;
  struct fd_source *s = r->state;
  s->snapshot = s->info;
  return &s->snapshot;
}

struct vzeros source_zeros(struct vreader *r)
{
  if (r == NULL || !source_http_is(r))
    return (struct vzeros){ 0 };
  return source_http_zeros(r);
}

int source_digest(struct vreader *r, unsigned char *md, unsigned *md_len, uint64_t *bytes,
                  struct verr *err)
{
  if (r == NULL || !source_http_is(r))
    return 0;
  return source_http_digest(r, md, md_len, bytes, err);
}

static int fd_pread(struct fd_source *s, void *buf, size_t len, uint64_t offset,
                    struct verr *err)
{
  size_t got = 0;
  if (offset > INT64_MAX - len)
    return verr_set(err, VERR_INTERNAL, "re-read offset %llu out of range",
                    (unsigned long long)offset);
  while (got < len) {
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

int source_pread(struct vreader *r, void *buf, size_t len, uint64_t offset, struct verr *err)
{
  if (source_http_is(r))
    return source_http_pread(r, buf, len, offset, err);
  if (r->ops != &file_ops && r->ops != &stdin_ops)
    return verr_set(err, VERR_INTERNAL, "source_pread on a %s reader, not a source",
                    r->ops->name);
  struct fd_source *s = r->state;
  if (!s->seekable)
    return verr_sys(err, VERR_SOURCE, ENOTSUP, "%s is a stream and cannot be re-read at an "
                    "offset; give a file or an http(s) URL instead",
                    s->info.location);
  return fd_pread(s, buf, len, offset, err);
}
