/* The scratch spool: a reader filter that keeps a copy of every byte it passes in an
 * unnamed file under the scratch directory, so a decoder can re-read earlier bytes of a
 * source that itself cannot be re-read (stdin, a compressed wrapper). It is CDI's
 * scratch space, filled while streaming instead of in a download pass first. For a
 * decoder that needs a file (qemu), spool_to_file() makes a named complete copy. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "pipeline.h"

/* A full scratch volume is not "scratch required": it is there, and asking again would
 * restart the pod with the same volume. CDI's controller shows a message holding "no
 * space left on device" (lower case) as "DataVolume too small to contain image"
 * (pkg/controller/util.go simplifyKnownMessage). */
static int scratch_full(const char *dir, struct verr *err)
{
  verr_set(err, VERR_IO, "cannot write the scratch copy in %s: no space left on device; the "
           "scratch volume is smaller than the image: give the DataVolume (and so its "
           "scratch volume) more space, or a storage class with more room", dir);
  err->sys_errno = ENOSPC;
  return -1;
}

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
    if (w < 0 && errno == ENOSPC)
      return scratch_full(s->dir, err);
    if (w < 0)
      return verr_sys(err, VERR_IO, errno, "cannot write the scratch copy in %s", s->dir);
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

/* ---- a complete copy, for readers that need a file (qemu) ------------------------------ */

int spool_drain(struct vreader *in, struct verr *err)
{
  CLEANUP_FREE unsigned char *buf = malloc(1u << 20);
  if (buf == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  ssize_t n;
  while ((n = in->ops->read(in, buf, 1u << 20, err)) > 0)
    ;
  return n < 0 ? -1 : 0;
}

int spool_to_file(struct vreader *in, const char *dir, const char *name, char *path, size_t size,
                  struct verr *err)
{
  snprintf(path, size, "%s/vimport-%s-XXXXXX", dir, name);
  CLEANUP_CLOSE int fd = mkstemp(path);
  if (fd < 0)
    return verr_sys(err, VERR_IO, errno, "cannot create a scratch file in %s (is the scratch "
                    "volume mounted and writable?)", dir);
  CLEANUP_FREE unsigned char *buf = malloc(1u << 20);
  ssize_t n = buf == NULL ? verr_set(err, VERR_NOMEM, "out of memory") : 0;
  while (n >= 0 && (n = in->ops->read(in, buf, 1u << 20, err)) > 0)
    for (ssize_t done = 0, w; n > 0 && done < n; done += w)
      if ((w = write(fd, buf + done, (size_t)(n - done))) < 0)
        return unlink(path), errno == ENOSPC ? scratch_full(dir, err)
                                             : verr_sys(err, VERR_IO, errno, "cannot write "
                                                        "the scratch copy in %s", dir);
  if (n < 0)
    unlink(path);
  return n < 0 ? -1 : 0;
}
