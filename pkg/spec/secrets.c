/* vimport spec: reading what Kubernetes mounts for the spec (secrets, CA directory).
 *
 * Secrets are read at load time so a missing or wrong mount fails before any byte is
 * fetched. Kubernetes mounts each key of a secret as a file (a symlink into a hidden
 * "..data" directory), so names starting with '.' are skipped and symlinks followed.
 * Messages name paths, never contents.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "spec-internal.h"
#include "spec.h"

/* Most files read from one secret directory. */
#define SECRET_DIR_MAX_FILES 64

static void wipe_free(char *buf, size_t size)
{
  if (buf != NULL)
    explicit_bzero(buf, size);
  free(buf);
}

/* Read a small regular file whole into a new NUL-terminated buffer (*out, *len),
 * trailing whitespace and line ends removed. */
static int read_small_file(const char *path, char **out, size_t *len, struct verr *err)
{
  /* O_NONBLOCK: a FIFO planted where a secret should be must not hang the load */
  CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd == -1)
    return verr_sys(err, VERR_IO, errno, "cannot open %s (is the secret mounted there?)",
                    path);
  struct stat st;
  if (fstat(fd, &st) == -1)
    return verr_sys(err, VERR_IO, errno, "cannot stat %s", path);
  if (!S_ISREG(st.st_mode))
    return verr_set(err, VERR_USAGE, "%s is not a regular file; mount the secret's keys as files",
                    path);
  if (st.st_size > (off_t)SPEC_MAX_SECRET_FILE_BYTES)
    return verr_set(err, VERR_USAGE, "%s is larger than %u bytes; a secret file holds one "
                    "header or one credential", path, SPEC_MAX_SECRET_FILE_BYTES);
  size_t cap = (size_t)st.st_size + 1;
  char *buf = malloc(cap);
  if (buf == NULL)
    return verr_sys(err, VERR_NOMEM, errno, "cannot read %s", path);
  size_t used = 0;
  for (;;) {
    ssize_t n = read(fd, buf + used, cap - 1 - used);
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1) {
      int saved = errno;
      wipe_free(buf, cap);
      return verr_sys(err, VERR_IO, saved, "cannot read %s", path);
    }
    if (n == 0 || (used += (size_t)n) == cap - 1)
      break;
  }
  while (used > 0 && (buf[used - 1] == '\n' || buf[used - 1] == '\r' || buf[used - 1] == ' ' ||
                      buf[used - 1] == '\t'))
    used--;
  buf[used] = '\0';
  *out = buf;
  *len = used;
  return 0;
}

static int read_credential(const char *dir, const char *file, char **slot, struct verr *err)
{
  CLEANUP_FREE char *path = NULL;
  if (asprintf(&path, "%s/%s", dir, file) == -1) {
    path = NULL;
    return verr_sys(err, VERR_NOMEM, errno, "cannot build a secret path");
  }
  char *value;
  size_t len;
  if (read_small_file(path, &value, &len, err) == -1)
    return -1;
  if (len == 0 || memchr(value, '\0', len) != NULL || strpbrk(value, "\r\n") != NULL) {
    wipe_free(value, len + 1);
    return verr_set(err, VERR_USAGE, "%s must hold one non-empty line", path);
  }
  *slot = value;
  return 0;
}

int spec_read_basic_auth(struct import_spec *spec, const char *dir, struct verr *err)
{
  struct spec_http *http = &spec->source.http;
  if (read_credential(dir, "accessKeyId", &http->basic_auth_user, err) == -1 ||
      read_credential(dir, "secretKey", &http->basic_auth_password, err) == -1)
    return -1;
  if (strchr(http->basic_auth_user, ':') != NULL)
    return verr_set(err, VERR_USAGE, "%s/accessKeyId holds ':', which basic auth cannot carry "
                    "in a user name", dir);
  return 0;
}

int spec_gcs_credentials(struct import_spec *spec, const char *dir, struct verr *err)
{
  char *path;
  if (asprintf(&path, "%s/credentials.json", dir) == -1)
    return verr_set(err, VERR_NOMEM, "out of memory");
  if (access(path, R_OK) != 0) {
    int e = errno;
    verr_sys(err, VERR_IO, e, "cannot read %s: the secret needs a key credentials.json, a "
             "service account's JSON key", path);
    free(path);
    return -1;
  }
  free(spec->source.gcs_credentials);
  spec->source.gcs_credentials = path;
  return 0;
}

static int compare_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

struct name_list {
  char *names[SECRET_DIR_MAX_FILES];
  size_t count;
};

static void name_list_free(struct name_list *list)
{
  for (size_t i = 0; i < list->count; i++)
    free(list->names[i]);
}

/* Visible entries of `dir` that are (or point to) regular files, sorted. */
static int list_secret_files(const char *dir, struct name_list *list, struct verr *err)
{
  DIR *d = opendir(dir);
  if (d == NULL)
    return verr_sys(err, VERR_IO, errno, "cannot open the secret directory %s (is the secret "
                    "mounted there?)", dir);
  int rc = 0;
  struct dirent *ent;
  while (rc == 0 && (ent = readdir(d)) != NULL) {
    struct stat st;
    if (ent->d_name[0] == '.')
      continue;
    if (fstatat(dirfd(d), ent->d_name, &st, 0) == -1 || !S_ISREG(st.st_mode))
      continue;
    if (list->count == SECRET_DIR_MAX_FILES)
      rc = verr_set(err, VERR_USAGE, "%s holds more than %d files; a header secret holds one "
                    "header per key", dir, SECRET_DIR_MAX_FILES);
    else if ((list->names[list->count] = strdup(ent->d_name)) == NULL)
      rc = verr_sys(err, VERR_NOMEM, errno, "cannot list %s", dir);
    else
      list->count++;
  }
  closedir(d);
  if (rc == 0)
    qsort(list->names, list->count, sizeof list->names[0], compare_names);
  return rc;
}

static int read_secret_header_file(struct import_spec *spec, const char *dir, const char *name,
                                   struct verr *err)
{
  CLEANUP_FREE char *path = NULL;
  if (asprintf(&path, "%s/%s", dir, name) == -1) {
    path = NULL;
    return verr_sys(err, VERR_NOMEM, errno, "cannot build a secret path");
  }
  char *line;
  size_t len;
  if (read_small_file(path, &line, &len, err) == -1)
    return -1;
  int rc = spec_add_header_line(spec, line, len, true, err);
  wipe_free(line, len + 1);
  if (rc == -1)
    return verr_prefix(err, "%s", path);
  return 0;
}

int spec_read_secret_header_dir(struct import_spec *spec, const char *dir, struct verr *err)
{
  struct name_list list = { .count = 0 };
  int rc = list_secret_files(dir, &list, err);
  for (size_t i = 0; rc == 0 && i < list.count; i++)
    rc = read_secret_header_file(spec, dir, list.names[i], err);
  name_list_free(&list);
  return rc;
}

int spec_check_dir(const char *dir, struct verr *err)
{
  struct stat st;
  if (stat(dir, &st) == -1)
    return verr_sys(err, VERR_IO, errno, "cannot find %s (is the config map mounted there?)",
                    dir);
  if (!S_ISDIR(st.st_mode))
    return verr_set(err, VERR_USAGE, "%s is not a directory; mount the config map there", dir);
  return 0;
}

/* Visible subdirectories of `dir`, sorted. */
static int list_subdirs(const char *dir, struct name_list *list, struct verr *err)
{
  DIR *d = opendir(dir);
  if (d == NULL)
    return verr_sys(err, VERR_IO, errno, "cannot open the extra-headers directory %s", dir);
  int rc = 0;
  struct dirent *ent;
  while (rc == 0 && (ent = readdir(d)) != NULL) {
    struct stat st;
    if (ent->d_name[0] == '.')
      continue;
    if (fstatat(dirfd(d), ent->d_name, &st, 0) == -1 || !S_ISDIR(st.st_mode))
      continue;
    if (list->count == SECRET_DIR_MAX_FILES)
      rc = verr_set(err, VERR_USAGE, "%s holds more than %d secrets; mount fewer header secrets",
                    dir, SECRET_DIR_MAX_FILES);
    else if ((list->names[list->count] = strdup(ent->d_name)) == NULL)
      rc = verr_sys(err, VERR_NOMEM, errno, "cannot list %s", dir);
    else
      list->count++;
  }
  closedir(d);
  if (rc == 0)
    qsort(list->names, list->count, sizeof list->names[0], compare_names);
  return rc;
}

static int read_secret_header_subdir(struct import_spec *spec, const char *root,
                                     const char *name, struct verr *err)
{
  CLEANUP_FREE char *dir = NULL;
  if (asprintf(&dir, "%s/%s", root, name) == -1) {
    dir = NULL;
    return verr_sys(err, VERR_NOMEM, errno, "cannot build a secret path");
  }
  return spec_read_secret_header_dir(spec, dir, err);
}

int spec_read_secret_header_tree(struct import_spec *spec, const char *root, struct verr *err)
{
  struct stat st;
  if (stat(root, &st) == -1 && errno == ENOENT)
    return 0;
  if (spec_read_secret_header_dir(spec, root, err) == -1)
    return -1;
  struct name_list list = { .count = 0 };
  int rc = list_subdirs(root, &list, err);
  for (size_t i = 0; rc == 0 && i < list.count; i++)
    rc = read_secret_header_subdir(spec, root, list.names[i], err);
  name_list_free(&list);
  return rc;
}
