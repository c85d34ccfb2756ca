/* LD_PRELOAD shim for tests/e2e/test_faults_target.sh: storage that returns other bytes
 * than were written. Every pread of the file or device READBACK_FLIP_PATH through a
 * read-only descriptor (the import's read-back; the writer's descriptors are writable)
 * gets the byte at READBACK_FLIP_OFFSET inverted in the caller's buffer, and the line
 * "flipped <offset>" is appended to READBACK_FLIP_MARK, so the test knows the shim was
 * in place. The storage itself is never changed. Without READBACK_FLIP_PATH the shim
 * does nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);

static int is_readback_fd(int fd, const char *path)
{
  struct stat want, got;
  return (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY && stat(path, &want) == 0 &&
         fstat(fd, &got) == 0 && want.st_dev == got.st_dev && want.st_ino == got.st_ino;
}

static void mark(long long off)
{
  const char *path = getenv("READBACK_FLIP_MARK");
  if (path == NULL)
    return;
  char line[64];
  int n = snprintf(line, sizeof line, "flipped %lld\n", off);
  int mfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (mfd < 0 || write(mfd, line, (size_t)n) != n || close(mfd) != 0)
    abort();
}

static ssize_t flipping_pread(const char *real_name, int fd, void *buf, size_t len, off_t off)
{
  pread_fn real = (pread_fn)dlsym(RTLD_NEXT, real_name);
  ssize_t n = real(fd, buf, len, off);
  const char *path = getenv("READBACK_FLIP_PATH");
  const char *at = getenv("READBACK_FLIP_OFFSET");
  if (n <= 0 || path == NULL || at == NULL)
    return n;
  long long flip = strtoll(at, NULL, 10);
  if (flip < off || flip >= off + n || !is_readback_fd(fd, path))
    return n;
  ((unsigned char *)buf)[flip - off] ^= 0xff;
  mark(flip);
  return n;
}

/* vimport is built with _FILE_OFFSET_BITS=64, so it calls pread64; both are caught. */
ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
  return flipping_pread("pread", fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
  return flipping_pread("pread64", fd, buf, len, off);
}
