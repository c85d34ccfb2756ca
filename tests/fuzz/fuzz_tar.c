/* libFuzzer target for pkg/archive: arbitrary bytes as a tar stream, read through a
 * non-seekable reader with short reads and unpacked into a staging directory.
 *
 * Invariants checked: a failure always has a message; the counts agree (files <= entries,
 * bytes only from files); nothing is ever created beside the staging directory (its
 * parent holds exactly it while unpacking); archive_stage_free() leaves the target
 * directory empty, whatever the archive held. Never crash, leak or read out of bounds. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "mem_reader.h"

static const struct vreader_ops mem_ops = { .name = "fuzz", .read = mem_read };

static unsigned entries_in(const char *path)
{
  DIR *d = opendir(path);
  if (d == NULL)
    abort();
  unsigned n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
  closedir(d);
  return n;
}

/* The target directory, made once per process under /dev/shm (or /tmp). */
static const char *target_dir(void)
{
  static char dir[64];
  if (dir[0] == '\0') {
    snprintf(dir, sizeof dir, "%s/vimport-fuzz-tar-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(dir) == NULL)
      abort();
  }
  return dir;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *dir = target_dir();
  struct verr err = { 0 };
  struct archive_stage *stage = NULL;
  struct archive_limits limits = { 0 };
  if (archive_stage_new(dir, &stage, &limits, &err) < 0)
    abort();
  limits.max_bytes = limits.max_bytes < (4u << 20) ? limits.max_bytes : (4u << 20);
  limits.max_entries = 4096;

  struct mem_source m = { .data = data, .size = size };
  struct vreader r = { .ops = &mem_ops, .state = &m };
  struct tar_reader *t = NULL;
  if (tar_reader_new(&r, &t, &err) < 0)
    abort();
  struct archive_stats st = { 0 };
  int rc = archive_extract(t, archive_stage_fd(stage), &limits, &st, &err);
  if (rc == 0)
    rc = tar_drain(t, &err);
  if (rc < 0 && err.message[0] == '\0')
    abort(); /* every failure must explain itself */
  if (st.files > st.entries || (st.files == 0 && st.bytes != 0) || tar_offset(t) > size)
    abort();
  if (entries_in(dir) != 1) /* only the staging directory: nothing escaped it */
    abort();
  tar_reader_free(t);
  archive_stage_free(stage);
  if (entries_in(dir) != 0) /* a removed stage leaves nothing */
    abort();
  return 0;
}
