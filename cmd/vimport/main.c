/* vimport: verified disk-image importer for Kubernetes/KubeVirt.
 * main() only dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static void usage(FILE *out)
{
  fputs("usage: vimport COMMAND [OPTIONS]\n"
        "\n"
        "commands:\n"
        "  import [--spec FILE]   fetch, verify, convert and write a disk image, then read it back\n"
        "                         (without --spec: configured from CDI's IMPORTER_* environment)\n"
        "  sum [-d DIGEST] [-t N] [--block-size N] [-p] [--check FILE] [FILE|-]...\n"
        "                         blksum-compatible block hash of raw or qcow2 images\n"
        "  sniff [--json] FILE|URL|-\n"
        "                         say what a source is: format, compression, content, size\n"
        "  verify --spec FILE [--manifest FILE]\n"
        "                         read a volume back and compare its block hash with the spec's\n"
        "  version                print the version\n"
        "\n"
        "Run 'vimport COMMAND --help' for a command's options.\n",
        out);
}

int main(int argc, char **argv)
{
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
