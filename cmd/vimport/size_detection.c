/* cdi-image-size-detection: the virtual size of an image on a volume, for CDI's
 * host-assisted clone.
 *
 *   cdi-image-size-detection -image-path /data/disk.img [-scheme file://]
 *   vimport size-detection   -image-path /data/disk.img
 *
 * CDI's clone controller runs this from the importer image (pkg/controller/datavolume/
 * pvc-clone-controller.go, makeSizeDetectionContainerSpec) and reads the termination
 * message as a decimal integer when the exit code is 0, or the exit code as the reason
 * otherwise (handleSizeDetectionError). The contract is CDI's tools/cdi-image-size-
 * detection/main.go: Go's flag syntax (-name value, -name=value, --name), the size
 * qemu-img info reports, the message written as one line, and its exit codes
 * (pkg/controller/common/util.go):
 *   0 written; 1 ErrBadArguments (no -image-path); 2 ErrInvalidFile (not an image whose
 *   size can be read, a scheme other than file://); 3 ErrInvalidPath (unused: Go's
 *   url.Parse accepts nearly anything); 4 ErrBadTermFile (the message cannot be written).
 * An unknown flag exits 2 with the usage, as Go's flag.Parse does; -h exits 0.
 *
 * The message goes to /dev/termination-log, or to VIMPORT_TERMINATION_MESSAGE_PATH when
 * set (tests, and the same variable `vimport import` honours).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "core/goflag.h"
#include "core/log.h"
#include "report/report.h"
#include "sniff/sniff.h"

enum {
  SIZE_OK = 0,
  SIZE_BAD_ARGUMENTS = 1,
  SIZE_INVALID_FILE = 2,
  SIZE_INVALID_PATH = 3,
  SIZE_BAD_TERM_FILE = 4,
};

struct size_args {
  const char *image_path;
  const char *scheme;
};

static void size_usage(FILE *out)
{
  fputs("usage: cdi-image-size-detection -image-path PATH [-scheme file://]\n"
        "\n"
        "Write the virtual size of the disk image at PATH, in bytes, to the termination\n"
        "message (CDI's host-assisted clone reads it).\n"
        "  -image-path string   (Mandatory) URL address of the virtual image.\n"
        "  -scheme string       (Optional) Virtual image's URI scheme. (default \"file://\")\n",
        out);
}

/* Returns GOFLAG_CONTINUE to go on, or the exit code. */
static int parse_args(int argc, char **argv, struct size_args *args)
{
  const struct goflag flags[] = {
    { .name = "image-path", .str = &args->image_path },
    { .name = "scheme", .str = &args->scheme },
  };
  int next;
  return goflag_parse(argc, argv, flags, sizeof flags / sizeof flags[0], size_usage, &next);
}

/* CDI's WriteTerminationMessageToFile: the message as the file's only content, mode 0600. */
static int write_message(const char *text)
{
  const char *path = getenv("VIMPORT_TERMINATION_MESSAGE_PATH");
  if (path == NULL || *path == '\0')
    path = REPORT_DEFAULT_PATH;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  size_t len = strlen(text);
  if (fd < 0 || write(fd, text, len) != (ssize_t)len || close(fd) < 0) {
    vlog_error("size-detection", "Unable to write to termination file %s: %s", path,
               strerror(errno));
    return -1;
  }
  return 0;
}

int cmd_size_detection(int argc, char **argv)
{
  struct size_args args = { .image_path = NULL, .scheme = "file://" };
  int code = parse_args(argc, argv, &args);
  if (code != GOFLAG_CONTINUE)
    return code;
  if (args.image_path == NULL || *args.image_path == '\0') {
    vlog_error("size-detection", "One or more mandatory parameters are missing: give "
               "-image-path PATH (CDI passes /data/disk.img)");
    return SIZE_BAD_ARGUMENTS;
  }
  /* qemu.go Info: only file:// (and nbd+unix, which this importer does not serve) */
  if (strcmp(args.scheme, "file://") != 0 && strcmp(args.scheme, "") != 0) {
    vlog_error("size-detection", "Unable to extract information from '%s': not valid schema "
               "%s (only file:// is read here)", args.image_path, args.scheme);
    return SIZE_INVALID_FILE;
  }
  struct sniff_local local;
  struct verr err = { 0 };
  if (sniff_local_file(args.image_path, &local, &err) < 0) {
    vlog_error("size-detection", "Unable to extract information from '%s': %s",
               args.image_path, err.message);
    return SIZE_INVALID_FILE;
  }
  vlog_info("size-detection", "%s: %s, virtual size %" PRIu64 " bytes (from the %s)",
            args.image_path, local.format, local.virtual_size, local.size_from);
  char text[32];
  snprintf(text, sizeof text, "%" PRIu64, local.virtual_size);
  return write_message(text) < 0 ? SIZE_BAD_TERM_FILE : SIZE_OK;
}
