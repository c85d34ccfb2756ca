/* vimport: verified disk-image importer for Kubernetes/KubeVirt.
 * main() only dispatches to one file per subcommand.
 *
 * One binary, several programs: CDI runs other programs than the importer from the
 * importer image, by path, so the image carries this binary under their names too and
 * the name it is started by picks the program. */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"

static void usage(FILE *out)
{
  fputs("usage: vimport COMMAND [OPTIONS]\n"
        "\n"
        "commands:\n"
        "  import SOURCE TARGET [--checksum ALG:HEX] [--format F] [--size N] [-p]\n"
        "                         fetch, verify, convert and write a disk image, then read it back\n"
        "  import [--spec] FILE.yaml | import\n"
        "                         the same from a spec, or from CDI's IMPORTER_* environment\n"
        "  sum [-d DIGEST] [-t N] [-q N] [-r N] [-c] [-p] [-l] [--check LIST] [FILE|URL|-]...\n"
        "                         blksum-compatible block hash of images and NBD exports\n"
        "  sniff [--json] FILE|URL|-\n"
        "                         say what a source is: format, compression, content, size\n"
        "  verify --spec FILE [--manifest FILE]\n"
        "                         read a volume back and compare its block hash with the spec's\n"
        "  verify-checksum-file FILE [--signature SIG] --keyring KEYS\n"
        "                         check a checksum file's OpenPGP signature, print the signed\n"
        "                         lines\n"
        "  size-detection -image-path PATH\n"
        "                         CDI's cdi-image-size-detection: the virtual size of an image\n"
        "                         into the termination message (also run by that name)\n"
        "  version                print the version\n"
        "\n"
        "Run 'vimport COMMAND --help' for a command's options.\n",
        out);
}

/* The programs CDI starts by path, and the command each one is. */
static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
} programs[] = {
  { "cdi-image-size-detection", cmd_size_detection },
  { "cdi-containerimage-server", cmd_containerimage_server },
  /* CDI's init container copies that program to /shared/server, and the containerDisk
   * runs it by this name */
  { "server", cmd_containerimage_server },
  { "cdi-source-update-poller", cmd_source_update_poller },
};

int main(int argc, char **argv)
{
  char self[256];
  snprintf(self, sizeof self, "%s", argc > 0 && argv[0] ? argv[0] : "vimport");
  const char *name = basename(self);
  for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++)
    if (strcmp(name, programs[i].name) == 0)
      return programs[i].run(argc, argv);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "import") == 0)
    return cmd_import(argc - 1, argv + 1);
  /* CDI's controller starts its importer image with only "-v=N" (no command): as the
   * importer image, that is an import configured from the IMPORTER_* environment. */
  if (strncmp(cmd, "-v=", 3) == 0 && argc == 2)
    return cmd_import(1, argv + 1);
  if (strcmp(cmd, "sum") == 0)
    return cmd_sum(argc - 1, argv + 1);
  if (strcmp(cmd, "sniff") == 0)
    return cmd_sniff(argc - 1, argv + 1);
  if (strcmp(cmd, "verify") == 0)
    return cmd_verify(argc - 1, argv + 1);
  if (strcmp(cmd, "verify-checksum-file") == 0)
    return cmd_verify_checksum_file(argc - 1, argv + 1);
  if (strcmp(cmd, "size-detection") == 0)
    return cmd_size_detection(argc - 1, argv + 1);
  if (strcmp(cmd, "containerimage-server") == 0)
    return cmd_containerimage_server(argc - 1, argv + 1);
  if (strcmp(cmd, "source-update-poller") == 0)
    return cmd_source_update_poller(argc - 1, argv + 1);
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("vimport %s\n", VIMPORT_VERSION);
    return 0;
  }
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "vimport: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
