/* vimport sniff: a local image file or block device, named and sized as qemu-img info
 * does (see sniff.h, sniff_local_file). */
#include "sniff.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "nbd/nbd.h"

static int local_size(int fd, const char *path, uint64_t *size, struct verr *err)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot stat %s", path);
  if (S_ISBLK(st.st_mode))
    return ioctl(fd, BLKGETSIZE64, size) == 0
               ? 0
               : verr_sys(err, VERR_IO, errno, "cannot read the size of the device %s", path);
  if (!S_ISREG(st.st_mode))
    return verr_set(err, VERR_USAGE, "%s is neither a file nor a block device", path);
  *size = (uint64_t)st.st_size;
  return 0;
}

/* VHDX keeps its size in a metadata region that only qemu reads here. */
static int ask_qemu(const char *path, struct sniff_local *out, struct verr *err)
{
  struct nbd_guest_opts opts = { .file = path, .format = "vhdx" };
  struct nbd_guest *g = NULL;
  if (nbd_guest_open(&opts, &g, err) < 0)
    return -1;
  out->virtual_size = nbd_guest_size(g);
  out->size_from = "qemu-nbd";
  nbd_guest_free(g);
  return 0;
}

int sniff_local_file(const char *path, struct sniff_local *out, struct verr *err)
{
  memset(out, 0, sizeof *out);
  CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return verr_sys(err, VERR_IO, errno, "cannot open %s", path);
  if (local_size(fd, path, &out->file_size, err) < 0)
    return -1;
  CLEANUP_FREE unsigned char *head = malloc(SNIFF_BYTES);
  if (head == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory reading %s", path);
  ssize_t n = pread(fd, head, SNIFF_BYTES, 0);
  if (n < 0)
    return verr_sys(err, VERR_IO, errno, "cannot read %s", path);
  if (sniff_buffer(head, (size_t)n, NULL, &out->result) < 0)
    return verr_set(err, VERR_FORMAT, "%s", out->result.message);
  out->format = sniff_qemu_driver(out->result.format);
  if (out->result.content == SNIFF_CONTENT_LUKS)
    return verr_set(err, VERR_FORMAT, "%s is a LUKS volume, which qemu-img names \"luks\" "
                    "and sizes by its payload: vimport reads no LUKS headers; decrypt it or "
                    "use qemu-img info", path);
  if (out->result.format == SNIFF_FORMAT_RAW) {
    out->virtual_size = out->file_size;
    out->size_from = "file size";
  } else if (out->result.virtual_size != 0) {
    out->virtual_size = out->result.virtual_size;
    out->size_from = "header";
  } else if (out->result.format == SNIFF_FORMAT_VHDX) {
    return ask_qemu(path, out, err);
  }
  if (out->format == NULL || out->size_from == NULL)
    return verr_set(err, VERR_FORMAT, "%s is %s, which has no virtual size vimport can read: "
                    "convert it with qemu-img convert -O raw", path,
                    sniff_format_name(out->result.format));
  return 0;
}
