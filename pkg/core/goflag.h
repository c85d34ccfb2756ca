/* vimport: Go's flag package syntax, for the programs CDI starts by name from the
 * importer image (cdi-image-size-detection, cdi-containerimage-server,
 * cdi-source-update-poller). CDI writes those programs in Go and calls them with Go's
 * flag forms, so their command lines parse here as Go's flag.Parse would:
 *
 *   -name value   --name value   -name=value   --name=value
 *
 * Parsing stops at the first argument that is not a flag ("-" alone or no leading
 * dash) or after "--". -h, -help and --help print the usage and end with exit code 0,
 * as flag.ExitOnError does for flag.ErrHelp. An unknown flag, a flag without its value
 * or an int flag whose value is not a whole number ends with exit code 2 after one line
 * naming it ("flag provided but not defined: -x") and the usage, both on stderr.
 * Differs from Go: int values are decimal only (Go also takes 0x.., 0o.., 1_000).
 *
 *   const char *dir = ".";  long port = 8100;
 *   const struct goflag flags[] = {
 *     { .name = "image-dir", .str = &dir },
 *     { .name = "p", .num = &port },
 *   };
 *   int next, code = goflag_parse(argc, argv, flags, 2, my_usage, &next);
 *   if (code != GOFLAG_CONTINUE) return code;
 */
#ifndef VIMPORT_CORE_GOFLAG_H
#define VIMPORT_CORE_GOFLAG_H

#include <stddef.h>
#include <stdio.h>

#define GOFLAG_CONTINUE (-1)

/* One flag. Exactly one of `str` and `num` is set; it holds the default on entry and
 * the value given on return (`str` then points into argv). */
struct goflag {
  const char *name; /* without dashes, e.g. "image-dir" */
  const char **str; /* a string flag */
  long *num;        /* an int flag (decimal, optional sign) */
};

/* Parse argv[1..argc) against `flags`. Returns GOFLAG_CONTINUE with *next set to the
 * index of the first argument that is not a flag, or the exit code the program must end
 * with: 0 after a help flag (usage(stdout) was called), 2 after a bad flag (the cause and
 * usage(stderr) were printed). */
int goflag_parse(int argc, char **argv, const struct goflag *flags, size_t n_flags,
                 void (*usage)(FILE *out), int *next);

#endif
