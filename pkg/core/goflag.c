/* Go's flag syntax: see goflag.h. */
#include "core/goflag.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct goflag *goflag_find(const struct goflag *flags, size_t n, const char *name,
                                        size_t len)
{
  for (size_t i = 0; i < n; i++)
    if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
      return &flags[i];
  return NULL;
}

static int goflag_set(const struct goflag *f, const char *value)
{
  if (f->str != NULL) {
    *f->str = value;
    return 0;
  }
  char *end;
  errno = 0;
  long v = strtol(value, &end, 10);
  if (*value == '\0' || *end != '\0' || errno != 0) {
    fprintf(stderr, "invalid value \"%s\" for flag -%s: parse error\n", value, f->name);
    return -1;
  }
  *f->num = v;
  return 0;
}

/* Go's words: the flag as "-name", whatever dashes and value it was given with. */
static int goflag_bad(void (*usage)(FILE *out), const char *what, const char *name, size_t len)
{
  fprintf(stderr, "%s: -%.*s\n", what, (int)len, name);
  usage(stderr);
  return 2;
}

int goflag_parse(int argc, char **argv, const struct goflag *flags, size_t n_flags,
                 void (*usage)(FILE *out), int *next)
{
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == '\0')
      break;
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    const char *name = a + (a[1] == '-' ? 2 : 1);
    if (*name == '\0' || *name == '-' || *name == '=') {
      fprintf(stderr, "bad flag syntax: %s\n", a);
      usage(stderr);
      return 2;
    }
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct goflag *f = goflag_find(flags, n_flags, name, len);
    if (f == NULL && (strcmp(name, "h") == 0 || strcmp(name, "help") == 0)) {
      usage(stdout);
      return 0;
    }
    if (f == NULL)
      return goflag_bad(usage, "flag provided but not defined", name, len);
    const char *value = eq ? eq + 1 : NULL;
    if (value == NULL && i + 1 >= argc)
      return goflag_bad(usage, "flag needs an argument", name, len);
    if (value == NULL)
      value = argv[++i];
    if (goflag_set(f, value) < 0) {
      usage(stderr);
      return 2;
    }
  }
  *next = i;
  return GOFLAG_CONTINUE;
}
