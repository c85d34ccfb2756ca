/* vimport archive: the staging directory that makes an unpack all or nothing (see
 * archive.h). It lives inside the target directory, so the commit is a rename on one
 * filesystem and the free-space budget is the target's. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "archive.h"
#include "core/log.h"

#define STAGE_PREFIX ".vimport-archive-"

struct archive_stage {
  int dir_fd;     /* the target directory */
  int stage_fd;   /* the staging directory inside it, or -1 once removed */
  char name[64];  /* the staging directory's name in dir_fd */
  char *dir;      /* the target directory's path, for messages */
};

int archive_stage_fd(const struct archive_stage *s)
{
  return s->stage_fd;
}

static int stage_limits(struct archive_stage *s, struct archive_limits *limits, struct verr *err)
{
  struct statvfs st;
  if (fstatvfs(s->dir_fd, &st) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot read the free space of %s", s->dir);
  uint64_t unit = st.f_frsize ? st.f_frsize : st.f_bsize;
  *limits = (struct archive_limits){
    .max_bytes = (uint64_t)st.f_bavail * unit,
    .max_entries = st.f_files ? (uint64_t)st.f_favail : 0, /* 0 files: no inode limit */
    .block_size = unit ? (uint32_t)unit : 1,
    .cancelled = limits->cancelled,
  };
  return 0;
}

static void remove_tree(int parent, const char *name);

/* A staging directory of an import that was killed (SIGKILL, a node lost) holds a
 * partial tree nobody will commit: remove it, so a retried import starts clean and the
 * volume does not keep it. Only real directories with our prefix are touched. */
static void remove_stale_stages(int dir_fd)
{
  int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (d == NULL) {
    if (fd >= 0)
      close(fd);
    return;
  }
  struct dirent *de;
  struct stat st;
  while ((de = readdir(d)) != NULL)
    if (strncmp(de->d_name, STAGE_PREFIX, strlen(STAGE_PREFIX)) == 0 &&
        fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
      vlog_warn("archive", "removing %s, left by an import that was stopped", de->d_name);
      remove_tree(dir_fd, de->d_name);
    }
  closedir(d);
}

int archive_stage_new(const char *dir, struct archive_stage **out, struct archive_limits *limits,
                      struct verr *err)
{
  struct archive_stage *s = calloc(1, sizeof *s);
  char path[PATH_MAX];
  if (s == NULL || (s->dir = strdup(dir)) == NULL) {
    free(s);
    return verr_set(err, VERR_NOMEM, "out of memory for the archive stage");
  }
  s->stage_fd = -1;
  s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dir_fd < 0) {
    verr_sys(err, VERR_IO, errno, "cannot open the target directory %s: mount the volume there "
             "or set the target path inside it", dir);
    free(s->dir);
    free(s);
    return -1;
  }
  remove_stale_stages(s->dir_fd);
  int n = snprintf(path, sizeof path, "%s/" STAGE_PREFIX "XXXXXX", dir);
  if (n < 0 || (size_t)n >= sizeof path || mkdtemp(path) == NULL) {
    verr_sys(err, VERR_IO, n < 0 || (size_t)n >= sizeof path ? ENAMETOOLONG : errno,
             "cannot create a staging directory in %s: the volume must be writable", dir);
    archive_stage_free(s);
    return -1;
  }
  snprintf(s->name, sizeof s->name, "%s", strrchr(path, '/') + 1);
  s->stage_fd = openat(s->dir_fd, s->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (s->stage_fd < 0) {
    verr_sys(err, VERR_IO, errno, "cannot open the staging directory %s", path);
    unlinkat(s->dir_fd, s->name, AT_REMOVEDIR);
    archive_stage_free(s);
    return -1;
  }
  if (stage_limits(s, limits, err) < 0) {
    archive_stage_free(s);
    return -1;
  }
  *out = s;
  return 0;
}

/* ---- removal ---------------------------------------------------------------------------- */

static void remove_children(int fd)
{
  DIR *d = fdopendir(fd); /* takes fd */
  if (d == NULL) {
    close(fd);
    return;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      remove_tree(dirfd(d), de->d_name);
  closedir(d);
}

/* Remove `name` beneath `parent` without following a symlink: the extractor keeps one
 * fd per level only up to its depth bound, so this recursion is bounded the same way. */
static void remove_tree(int parent, const char *name)
{
  if (unlinkat(parent, name, 0) == 0 || (errno != EISDIR && errno != EPERM))
    return;
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return;
  remove_children(fd);
  unlinkat(parent, name, AT_REMOVEDIR);
}

void archive_stage_free(struct archive_stage *s)
{
  if (s == NULL)
    return;
  if (s->stage_fd >= 0) {
    close(s->stage_fd);
    remove_tree(s->dir_fd, s->name);
  }
  if (s->dir_fd >= 0)
    close(s->dir_fd);
  free(s->dir);
  free(s);
}

/* ---- commit -------------------------------------------------------------------------------- */

struct names {
  char **v;
  size_t n, cap;
};

static void names_free(struct names *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
}

static int names_add(struct names *l, const char *name, struct verr *err)
{
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 16;
    char **v = realloc(l->v, cap * sizeof *v);
    if (v == NULL)
      return verr_set(err, VERR_NOMEM, "out of memory listing the archive");
    l->v = v;
    l->cap = cap;
  }
  if ((l->v[l->n] = strdup(name)) == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory listing the archive");
  l->n++;
  return 0;
}

/* The staged top-level names, each checked to be free in the target directory. */
static int list_staged(struct archive_stage *s, struct names *l, struct verr *err)
{
  int fd = openat(s->stage_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    return verr_sys(err, VERR_IO, e, "cannot list the staging directory in %s", s->dir);
  }
  struct dirent *de;
  int r = 0;
  while (r == 0 && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (faccessat(s->dir_fd, de->d_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
      r = verr_set(err, VERR_FORMAT, "the archive holds '%.200s', which already exists in %s: "
                   "vimport does not replace what the volume holds; import into an empty "
                   "volume", de->d_name, s->dir);
    else
      r = names_add(l, de->d_name, err);
  }
  closedir(d);
  return r;
}

int archive_stage_commit(struct archive_stage *s, struct verr *err)
{
  if (syncfs(s->stage_fd) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot flush the unpacked archive to %s", s->dir);
  struct names l = { 0 };
  int r = list_staged(s, &l, err);
  size_t moved = 0;
  for (; r == 0 && moved < l.n; moved++)
    if (renameat2(s->stage_fd, l.v[moved], s->dir_fd, l.v[moved], RENAME_NOREPLACE) < 0)
      r = verr_sys(err, VERR_IO, errno, "cannot move '%.200s' from the staging directory into "
                   "%s", l.v[moved], s->dir);
  if (r < 0) /* put back what moved: a failed commit leaves the volume as it was */
    for (size_t i = 0; i + 1 < moved; i++)
      renameat2(s->dir_fd, l.v[i], s->stage_fd, l.v[i], RENAME_NOREPLACE);
  names_free(&l);
  if (r == 0 && unlinkat(s->dir_fd, s->name, AT_REMOVEDIR) == 0) {
    close(s->stage_fd);
    s->stage_fd = -1;
  }
  if (r == 0 && fsync(s->dir_fd) < 0)
    r = verr_sys(err, VERR_IO, errno, "cannot flush %s", s->dir);
  return r;
}
