/* Scratch space, used only as much as a decoder needs it. The spill keeps, in an unnamed
 * file under the scratch directory, exactly the bytes a streaming decoder lets go of and
 * may need again (qcow2 clusters that overflow its window before their tables arrive),
 * so a source that cannot be re-read (stdin, a compressed stream, a registry layer) needs
 * no copy of the rest: a well-ordered image uses none. For a decoder that needs a file
 * (qemu), spool_to_file() makes a named complete copy. */
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

struct spill {
  int fd;
  uint64_t bytes; /* kept, in all */
  uint64_t end;   /* past the last byte kept */
  char dir[1024];
};

int spill_new(const char *dir, struct spill **out, struct verr *err)
{
  CLEANUP_CLOSE int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    return verr_sys(err, VERR_IO, errno, "cannot create a scratch file in %s (is the scratch "
                                         "volume mounted and writable?)", dir);
  struct spill *s = calloc(1, sizeof *s);
  if (s == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  s->fd = TAKE_FD(fd);
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  *out = s;
  return 0;
}

int spill_write(struct spill *s, const void *buf, size_t len, uint64_t off, struct verr *err)
{
  for (size_t done = 0; done < len;) {
    ssize_t w = pwrite(s->fd, (const char *)buf + done, len - done, (off_t)(off + done));
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && errno == ENOSPC)
      return scratch_full(s->dir, err);
    if (w < 0)
      return verr_sys(err, VERR_IO, errno, "cannot write the scratch copy in %s", s->dir);
    done += (size_t)w;
  }
  s->bytes += len;
  if (off + len > s->end)
    s->end = off + len;
  return 0;
}

int spill_pread(struct spill *s, void *buf, size_t len, uint64_t off, struct verr *err)
{
  if (off > s->end || len > s->end - off)
    return verr_set(err, VERR_INTERNAL, "scratch re-read of %zu bytes at %llu is past the %llu "
                    "bytes kept; please report this bug", len, (unsigned long long)off,
                    (unsigned long long)s->end);
  for (size_t done = 0; done < len;) {
    ssize_t n = pread(s->fd, (char *)buf + done, len - done, (off_t)(off + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return verr_sys(err, VERR_IO, n < 0 ? errno : EIO, "cannot read the scratch copy in %s",
                      s->dir);
    done += (size_t)n;
  }
  return 0;
}

uint64_t spill_bytes(const struct spill *s)
{
  return s->bytes;
}

void spill_free(struct spill *s)
{
  if (s == NULL)
    return;
  close(s->fd); /* O_TMPFILE: the space is freed here */
  free(s);
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
