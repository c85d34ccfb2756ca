/* nodepull: the importer's side of a node pull, CDI's waitForReadyFile, getHTTPEp and
 * touchDoneFile (nodepull.h). */
#include "nodepull/nodepull.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"

#define READY_FILE_MAX 4096

int nodepull_wait_ready(const char *ready_file, unsigned timeout_seconds,
                        volatile sig_atomic_t *cancelled, struct verr *err)
{
  struct stat st;
  for (unsigned i = 0; i < timeout_seconds; i++) {
    if (stat(ready_file, &st) == 0)
      return 0;
    if (cancelled != NULL && *cancelled)
      return verr_set(err, VERR_CANCELLED, "stopped by a signal while waiting for %s", ready_file);
    sleep(1);
  }
  return verr_set(err, VERR_SOURCE, "Timeout waiting for file %s", ready_file);
}

/* The ready file's content, which the server wrote: the disk file's name. */
static int read_name(const char *ready_file, char *name, size_t size, struct verr *err)
{
  CLEANUP_CLOSE int fd = open(ready_file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return verr_sys(err, VERR_SOURCE, errno, "Failed reading file %s", ready_file);
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, name + have, size - 1 - have);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return verr_sys(err, VERR_SOURCE, errno, "Failed reading file %s", ready_file);
    if (r == 0)
      break;
    have += (size_t)r;
    if (have == size - 1)
      return verr_set(err, VERR_SOURCE, "Failed reading file %s: longer than %zu bytes, "
                      "which no file name is", ready_file, size - 2);
  }
  name[have] = '\0';
  if (memchr(name, '\0', have) != NULL || strchr(name, '/') != NULL)
    return verr_set(err, VERR_SOURCE, "Failed reading file %s: it must hold the disk file's "
                    "name as cdi-containerimage-server writes it", ready_file);
  return 0;
}

/* Percent-encode what cannot stand in a URL path as it is. */
static void append_escaped(char *out, const char *name)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t o = strlen(out);
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        strchr("-._~", *p) != NULL) {
      out[o++] = (char)*p;
    } else {
      out[o++] = '%';
      out[o++] = hex[*p >> 4];
      out[o++] = hex[*p & 15];
    }
  }
  out[o] = '\0';
}

int nodepull_endpoint(const char *endpoint, const char *ready_file, char **out,
                      struct verr *err)
{
  char name[READY_FILE_MAX + 1];
  if (read_name(ready_file, name, sizeof name, err) < 0)
    return -1;
  size_t elen = strlen(endpoint), slen = strlen(NODEPULL_DISK_IMAGE_NAME);
  /* An empty file leaves the endpoint alone; a name replaces a trailing "disk.img"
   * (strings.TrimSuffix: an endpoint without one just gets the name appended) */
  size_t keep = elen;
  if (name[0] != '\0' && elen >= slen && strcmp(endpoint + elen - slen, NODEPULL_DISK_IMAGE_NAME) == 0)
    keep = elen - slen;
  char *url = malloc(keep + 3 * strlen(name) + 1);
  if (url == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  memcpy(url, endpoint, keep);
  url[keep] = '\0';
  append_escaped(url, name);
  *out = url;
  return 0;
}

int nodepull_touch_done(const char *done_file, struct verr *err)
{
  int fd = open(done_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0)
    return verr_sys(err, VERR_IO, errno, "Failed creating file %s", done_file);
  close(fd);
  return 0;
}
