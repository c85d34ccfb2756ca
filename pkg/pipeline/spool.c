/* The scratch spool: a reader filter that keeps a copy of every byte it passes in an
 * unnamed file under the scratch directory, so a decoder can re-read earlier bytes of a
 * source that itself cannot be re-read (stdin, a compressed wrapper). It is CDI's
 * scratch space, filled while streaming instead of in a download pass first. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "pipeline.h"

struct spool {
  struct vreader *lower;
  int fd;
  uint64_t size; /* bytes passed and kept */
  char dir[1024];
};

static ssize_t spool_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct spool *s = r->state;
  ssize_t n = s->lower->ops->read(s->lower, buf, len, err);
  for (ssize_t done = 0; n > 0 && done < n;) {
    ssize_t w = pwrite(s->fd, (char *)buf + done, (size_t)(n - done), (off_t)(s->size + (uint64_t)done));
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return verr_sys(err, errno == ENOSPC ? VERR_SCRATCH_REQUIRED : VERR_IO, errno,
                      "cannot write the scratch copy in %s (request more scratch space)", s->dir);
    done += w;
  }
  if (n > 0)
    s->size += (uint64_t)n;
  return n;
}

static void spool_close(struct vreader *r)
{
  struct spool *s = r->state;
  vreader_close(s->lower);
  close(s->fd); /* O_TMPFILE: the space is freed here */
  free(s);
  free(r);
}

static const struct vreader_ops spool_ops = {
  .name = "spool",
  .read = spool_read,
  .close = spool_close,
};

int spool_reader_new(struct vreader *lower, const char *dir, struct vreader **out, struct verr *err)
{
  CLEANUP_CLOSE int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    vreader_close(lower);
    return verr_sys(err, VERR_IO, errno, "cannot create a scratch file in %s (is the scratch "
                                         "volume mounted and writable?)", dir);
  }
  struct spool *s = calloc(1, sizeof *s);
  struct vreader *r = calloc(1, sizeof *r);
  if (s == NULL || r == NULL) {
    free(s);
    free(r);
    vreader_close(lower);
    return verr_set(err, VERR_NOMEM, "out of memory");
  }
  s->lower = lower;
  s->fd = TAKE_FD(fd);
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  r->ops = &spool_ops;
  r->state = s;
  *out = r;
  return 0;
}

int spool_pread(struct vreader *r, void *buf, size_t len, uint64_t offset, struct verr *err)
{
  struct spool *s = r->state;
  if (offset > s->size || len > s->size - offset)
    return verr_set(err, VERR_INTERNAL, "scratch re-read of %zu bytes at %llu is past the %llu "
                    "bytes kept; please report this bug", len, (unsigned long long)offset,
                    (unsigned long long)s->size);
  for (size_t done = 0; done < len;) {
    ssize_t n = pread(s->fd, (char *)buf + done, len - done, (off_t)(offset + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return verr_sys(err, VERR_IO, n < 0 ? errno : EIO, "cannot read the scratch copy in %s", s->dir);
    done += (size_t)n;
  }
  return 0;
}
