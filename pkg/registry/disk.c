/* vimport registry: CDI's disk rule over one layer's tar entries (see registry.h). */
#include <string.h>

#include "registry.h"

#define DISK_DIR "disk/"
#define WHITEOUT ".wh."

/* The name without a leading "./", or NULL when it is not under disk/. */
static const char *disk_name(const char *name)
{
  if (strncmp(name, "./", 2) == 0)
    name += 2;
  return strncmp(name, DISK_DIR, strlen(DISK_DIR)) == 0 ? name : NULL;
}

static bool is_whiteout(const char *name)
{
  const char *base = strrchr(name, '/');
  return strncmp(base != NULL ? base + 1 : name, WHITEOUT, strlen(WHITEOUT)) == 0;
}

static bool has_dotdot(const char *name)
{
  for (const char *p = name; (p = strstr(p, "..")) != NULL; p += 2)
    if ((p == name || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
      return true;
  return false;
}

int registry_disk_entry(const struct tar_entry *e, const char **name, struct verr *err)
{
  *name = disk_name(e->name);
  if (*name == NULL || is_whiteout(*name) || e->type == TAR_DIRECTORY)
    return 0;
  if (has_dotdot(*name))
    /* CDI's words (transport.go safeJoinPaths) */
    return verr_set(err, VERR_FORMAT, "Error sanitizing archive path: content filepath is "
                    "tainted: %.200s", *name);
  if (strchr(*name + strlen(DISK_DIR), '/') != NULL)
    /* CDI's words (registry-datasource.go getImageFileName) */
    return verr_set(err, VERR_FORMAT, "image directory contains another directory: %.200s; "
                    "a containerDisk holds exactly one file in disk/", *name);
  if (e->type == TAR_SYMLINK || e->type == TAR_HARDLINK)
    return verr_set(err, VERR_FORMAT, "the disk file %.200s is a %s link to %.200s; put the "
                    "disk image itself in disk/", *name,
                    e->type == TAR_SYMLINK ? "symbolic" : "hard", e->linkname);
  if (e->type != TAR_REGULAR || e->sparse)
    return verr_set(err, VERR_FORMAT, "the disk file %.200s is not a regular file (tar type "
                    "'%c'); put the disk image itself in disk/", *name,
                    e->typeflag ? e->typeflag : '0');
  return 1;
}

int registry_disk_find(struct tar_reader *t, struct tar_entry *e, struct verr *err)
{
  for (;;) {
    int r = tar_next(t, e, err);
    if (r <= 0)
      return r;
    const char *name;
    int c = registry_disk_entry(e, &name, err);
    if (c != 0)
      return c;
  }
}

int registry_disk_rest(struct tar_reader *t, struct tar_entry *e, const char *disk_file,
                       struct verr *err)
{
  for (;;) {
    int r = tar_next(t, e, err);
    if (r <= 0)
      return r;
    const char *name;
    int c = registry_disk_entry(e, &name, err);
    if (c < 0)
      return -1;
    if (c == 1)
      return verr_set(err, VERR_FORMAT, "image directory contains more than one file: %.200s "
                      "and %.200s; a containerDisk holds exactly one disk in disk/", disk_file,
                      name);
  }
}
