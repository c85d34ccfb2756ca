/* Test helpers shared by unit tests that need images made by real qemu tools.
 *
 * test_corpus_dir() runs a hack/ corpus script once per script version (its size and
 * mtime name the directory under $TMPDIR), under a file lock so parallel test binaries
 * share one build. test_read_whole() reads a file into a malloc'ed buffer. Both abort
 * the test with a message on failure. Header-only: each test binary includes it once.
 */
#ifndef VIMPORT_TESTS_CORPUS_H
#define VIMPORT_TESTS_CORPUS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"

/* Build (once) and return the directory of `script` (relative to the repo root, e.g.
 * "hack/make-qcow2-corpus.sh") run with `args` after the output directory. `dir` is
 * the caller's static buffer: the result is cached there. */
static inline const char *test_corpus_dir(char *dir, size_t dir_size, const char *script_rel,
                                          const char *tag, const char *args)
{
  if (dir[0])
    return dir;
  const char *top = getenv("VIMPORT_TOP") ? getenv("VIMPORT_TOP") : ".";
  char script[1024];
  snprintf(script, sizeof script, "%s/%s", top, script_rel);
  struct stat st;
  cr_assert(stat(script, &st) == 0, "%s: %s (run from the repo root or set VIMPORT_TOP)",
            script, strerror(errno));
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  /* a new script version gets a new corpus */
  snprintf(dir, dir_size, "%s/vimport-%s-corpus-%d-%lld-%lld", tmp, tag, (int)getuid(),
           (long long)st.st_size, (long long)st.st_mtime);
  char lock[1100], stamp[1100], cmd[4 * 1100];
  snprintf(lock, sizeof lock, "%s.lock", dir);
  snprintf(stamp, sizeof stamp, "%s/.done", dir);
  CLEANUP_CLOSE int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  cr_assert(lfd >= 0 && flock(lfd, LOCK_EX) == 0, "lock %s: %s", lock, strerror(errno));
  if (access(stamp, F_OK) != 0) {
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && timeout 300 '%s' '%s' %s && touch '%s'", dir,
             script, dir, args, stamp);
    cr_assert(system(cmd) == 0, "building the %s corpus failed: %s", tag, cmd);
  }
  return dir;
}

/* The whole file at `path`, plus a NUL; *size gets its length. The caller frees it. */
static inline unsigned char *test_read_whole(const char *path, uint64_t *size)
{
  CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
  cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
  struct stat st;
  cr_assert(fstat(fd, &st) == 0);
  unsigned char *buf = malloc((size_t)st.st_size + 1);
  cr_assert(buf);
  size_t done = 0;
  while (done < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
    cr_assert(n > 0, "read %s", path);
    done += (size_t)n;
  }
  buf[done] = 0;
  *size = done;
  return buf;
}

#endif
