/* LD_PRELOAD shim for tests/e2e/test_sum.sh: faults in `vimport sum`'s file windows,
 * which are the only mappings it makes with MAP_POPULATE. SUM_MMAP_FAULT picks one;
 * each window the shim sees adds a line "window <file offset> <length> mapped|failed"
 * to the file SUM_MMAP_MARK, so the test knows the shim was in place and what sum asked:
 *   watch      no fault: only the lines
 *   fail       every window mmap fails (ENODEV): sum must fall back to pread
 *   truncate   the second window's file is cut to 4 KiB past the window's start just
 *              before it is mapped: its hashing threads fault (SIGBUS) on bytes past EOF
 *   shrink     the first window's file is cut to 4 KiB past the second window's start:
 *              the check before the second window finds it shorter
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);

/* sum opens its input read-only: cut the file through its /proc name. */
static void cut(int fd, off_t size)
{
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  if (truncate(path, size) != 0)
    abort();
}

static void mark(off_t off, size_t len, int mapped)
{
  const char *path = getenv("SUM_MMAP_MARK");
  if (path == NULL)
    return;
  char line[96];
  int n = snprintf(line, sizeof line, "window %lld %zu %s\n", (long long)off, len,
                   mapped ? "mapped" : "failed");
  int mfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (mfd < 0 || write(mfd, line, (size_t)n) != n || close(mfd) != 0)
    abort();
}

/* vimport is built with _FILE_OFFSET_BITS=64, so it calls mmap64; both are caught. */
static void *faulty_mmap(const char *real_name, void *addr, size_t len, int prot, int flags,
                         int fd, off_t off)
{
  static int windows; /* only sum's main thread maps with MAP_POPULATE */
  mmap_fn real = (mmap_fn)dlsym(RTLD_NEXT, real_name);
  const char *mode = getenv("SUM_MMAP_FAULT");
  if (mode == NULL || !(flags & MAP_POPULATE) || fd < 0)
    return real(addr, len, prot, flags, fd, off);
  windows++;
  void *map = MAP_FAILED;
  int saved = ENODEV;
  if (strcmp(mode, "truncate") == 0 && windows == 2)
    cut(fd, off + 4096);
  if (strcmp(mode, "shrink") == 0 && windows == 1)
    cut(fd, off + (off_t)len + 4096);
  if (strcmp(mode, "fail") != 0) {
    map = real(addr, len, prot, flags, fd, off);
    saved = errno;
  }
  mark(off, len, map != MAP_FAILED);
  errno = saved;
  return map;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
  return faulty_mmap("mmap", addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
  return faulty_mmap("mmap64", addr, len, prot, flags, fd, off);
}
