/* cdi-containerimage-server: serve a containerDisk's disk to the importer of a node pull.
 *
 *   /shared/server -p 8100 -image-dir /disk -ready-file /shared/ready -done-file /shared/done
 *   /shared/server -h            (exit 0: DataImportCron runs it to learn the image digest)
 *
 * CDI copies this program out of the importer image into a shared volume and runs it
 * inside the containerDisk (pkg/controller/import-controller.go, dataimportcron-
 * controller.go), where there is no libc: the image's binary is static. The contract is
 * CDI's tools/cdi-containerimage-server/main.go; what is served and when, and where it
 * differs, is pkg/nodepull/nodepull.h's. Exit codes: 0 after the done file appeared (or
 * -h), 1 for any failure (Go's log.Fatal), 2 for a bad flag (Go's flag.Parse).
 */
#include <stdio.h>

#include "commands.h"
#include "core/goflag.h"
#include "core/log.h"
#include "nodepull/nodepull.h"

extern char **environ;

static void server_usage(FILE *out)
{
  fputs("Usage of cdi-containerimage-server:\n"
        "  -done-file string\n"
        "    \tfile created when the client is done (default \"/shared/done\")\n"
        "  -image-dir string\n"
        "    \tdirectory to serve (default \".\")\n"
        "  -p int\n"
        "    \tserver port (default 8100)\n"
        "  -ready-file string\n"
        "    \tfile to create when ready for connections (default \"/shared/ready\")\n",
        out);
}

int cmd_containerimage_server(int argc, char **argv)
{
  long port = NODEPULL_DEFAULT_PORT;
  struct nodepull_server_opts o = { .image_dir = ".", .ready_file = NODEPULL_DEFAULT_READY_FILE,
                                    .done_file = NODEPULL_DEFAULT_DONE_FILE, .envp = environ };
  const struct goflag flags[] = {
    { .name = "p", .num = &port },
    { .name = "image-dir", .str = &o.image_dir },
    { .name = "ready-file", .str = &o.ready_file },
    { .name = "done-file", .str = &o.done_file },
  };
  int next, code = goflag_parse(argc, argv, flags, sizeof flags / sizeof flags[0], server_usage, &next);
  if (code != GOFLAG_CONTINUE)
    return code;
  if (port < 1 || port > 65535) {
    vlog_error("containerimage-server", "Failed listening on localhost:%ld: -p must be a port "
               "number 1-65535", port);
    return 1;
  }
  o.port = (unsigned)port;
  struct verr err = { 0 };
  if (nodepull_serve(&o, &err) < 0) {
    vlog_error("containerimage-server", "%s", err.message);
    return 1;
  }
  return 0;
}
