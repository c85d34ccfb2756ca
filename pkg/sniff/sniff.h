/* vimport sniff: what the source bytes are, from the first bytes of the stream.
 *
 * The sniffer looks at the first SNIFF_BYTES bytes (fewer when the stream is shorter:
 * it classifies what is there) and, for HTTP sources, the Content-Type. It answers:
 *
 *   - the container format: raw, qcow2, vmdk, vhdx, vdi, vhd (qemu: "vpc"), and the
 *     formats qemu-img knows that CDI refuses: qcow (v1), qed, parallels, bochs, cloop
 *     (and dmg, from its trailer: sniff_dmg_trailer);
 *   - a compression or archive wrapper: gzip, xz, zstd, bzip2, tar (decompress, then
 *     sniff the decompressed stream again);
 *   - for raw bytes, what they hold: MBR or GPT partition table, ISO 9660, a bare ext2/3/4,
 *     XFS or btrfs filesystem, a LUKS volume, an LVM physical volume, or a first sector
 *     of zeros (an empty start is a normal raw disk, not text);
 *   - header details where the format keeps them at the start: qcow2 version, virtual
 *     size, cluster bits, backing file, encryption; vmdk subformat and capacity; vdi and
 *     vhd virtual size and type.
 *
 * What it refuses: a body that is an HTML, XML or JSON document or plain text (an error
 * or login page served with status 200 is the common cause), and a source that names a
 * text Content-Type (any text/ type, application/xhtml+xml, application/json,
 * application/xml, or an application/ type ending in +json or +xml) unless its bytes carry a known image magic:
 * servers mislabel files, magic bytes do not lie. Bytes are "text" when the first 512
 * hold no NUL byte and they either start (after an optional UTF-8 BOM and whitespace)
 * with '<', '{' or '[', or are all printable UTF-8 text.
 *
 * Limits, by design:
 *   - A fixed VHD keeps its only footer at the *end* of the file, so its start is plain
 *     raw bytes: it sniffs as raw (usually with an MBR/GPT). Importing it as raw gives
 *     the guest disk plus a 512-byte footer. Dynamic and differencing VHDs start with a
 *     copy of the footer ("conectix") and sniff as vhd.
 *   - VHDX keeps its virtual size in a metadata region far from the start: not reported.
 *   - A VMDK descriptor file ("# Disk DescriptorFile") only names extent files kept
 *     elsewhere: it is refused with a message saying to import the extent instead.
 *
 * sniff_buffer() is pure: no allocation, no I/O, safe on any input (fuzzed).
 */
#ifndef VIMPORT_SNIFF_H
#define VIMPORT_SNIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"

/* Bytes the sniffer wants: the btrfs superblock magic sits at 0x10040 (8 bytes). ISO
 * 9660 needs SNIFF_ISO_BYTES; every other magic is in the first 4 KiB. */
#define SNIFF_BYTES (0x10040 + 8)
#define SNIFF_ISO_BYTES 0x8006

enum sniff_format {
  SNIFF_FORMAT_RAW = 0, /* no container: copy the bytes as they are (see `content`) */
  SNIFF_FORMAT_QCOW2,
  SNIFF_FORMAT_VMDK,
  SNIFF_FORMAT_VHDX,
  SNIFF_FORMAT_VDI,
  SNIFF_FORMAT_VHD, /* dynamic or differencing; a fixed VHD sniffs as raw */
  /* disk formats qemu-img knows but CDI refuses ("Invalid format <f> for image <url>",
   * pkg/image/qemu.go isSupportedFormat): named so they are not imported as raw */
  SNIFF_FORMAT_QCOW,      /* qcow version 1 ("QFI\xfb", version 1) */
  SNIFF_FORMAT_QED,
  SNIFF_FORMAT_PARALLELS,
  SNIFF_FORMAT_BOCHS,
  SNIFF_FORMAT_CLOOP,
  SNIFF_FORMAT_DMG,       /* told by its "koly" trailer: sniff_dmg_trailer() */
  /* wrappers: decompress or unpack, then sniff again */
  SNIFF_FORMAT_GZIP,
  SNIFF_FORMAT_XZ,
  SNIFF_FORMAT_ZSTD,
  SNIFF_FORMAT_BZIP2,
  SNIFF_FORMAT_TAR,
  /* refused: not a disk image */
  SNIFF_FORMAT_EMPTY, /* zero bytes */
  SNIFF_FORMAT_HTML,
  SNIFF_FORMAT_XML,
  SNIFF_FORMAT_JSON,
  SNIFF_FORMAT_TEXT,
};

/* What raw bytes hold, judged from their start (SNIFF_CONTENT_UNKNOWN for other formats). */
enum sniff_content {
  SNIFF_CONTENT_UNKNOWN = 0, /* binary without a known signature: still imported as raw */
  SNIFF_CONTENT_ZEROS,       /* the first 512 bytes are zeros (empty first sector) */
  SNIFF_CONTENT_MBR,
  SNIFF_CONTENT_GPT,
  SNIFF_CONTENT_ISO9660,
  SNIFF_CONTENT_EXT,   /* ext2/3/4 */
  SNIFF_CONTENT_XFS,
  SNIFF_CONTENT_BTRFS,
  SNIFF_CONTENT_LUKS,
  SNIFF_CONTENT_LVM,   /* LVM2 physical volume */
};

enum sniff_encryption {
  SNIFF_ENCRYPTION_NONE = 0,
  SNIFF_ENCRYPTION_AES,     /* qcow2 crypt_method 1 (legacy AES-CBC) */
  SNIFF_ENCRYPTION_LUKS,    /* qcow2 crypt_method 2, or a raw LUKS volume */
  SNIFF_ENCRYPTION_UNKNOWN, /* a crypt_method this sniffer does not know */
};

struct sniff_result {
  enum sniff_format format;
  enum sniff_content content;
  bool refused;          /* not a disk image; `message` says why and what to do */
  char message[320];     /* "" unless refused */
  size_t bytes_seen;     /* bytes classified (<= SNIFF_BYTES; less for a short stream) */
  /* Header details; 0 / false / "" when the format does not record them at the start. */
  uint64_t virtual_size; /* guest disk size in bytes */
  uint32_t version;      /* qcow2 2|3, vmdk 1..3, vdi (major << 16 | minor), luks 1|2 */
  uint32_t cluster_bits; /* qcow2 */
  uint32_t compression_type; /* qcow2 v3: 0 zlib, 1 zstd */
  bool has_backing_file; /* qcow2 backing file, differencing vhd: needs another file */
  enum sniff_encryption encryption;
  char subformat[32];    /* vmdk "monolithicSparse"|"streamOptimized"|createType,
                            vhd "dynamic"|"differencing", vdi "dynamic"|"fixed" */
};

/* Classify `len` bytes from the start of a stream (`len` may be anything, 0 included;
 * pass at least SNIFF_BYTES when the stream is that long). `content_type` is the HTTP
 * Content-Type or NULL. Fills all of *out. Returns 0 when the bytes may be a disk image,
 * -1 when they are refused (out->refused is set and out->message says why and what to
 * do, e.g. "the source is an HTML page, not a disk image (...: check the URL; a login or
 * error page is common)"). Never fails otherwise. */
int sniff_buffer(const void *buf, size_t len, const char *content_type,
                 struct sniff_result *out);

/* Short stable name: "raw", "qcow2", "vmdk", "vhdx", "vdi", "vhd", "qcow", "qed",
 * "parallels", "bochs", "cloop", "dmg", "gzip", "xz", "zstd", "bzip2", "tar", "empty",
 * "html", "xml", "json", "text"; "unknown" out of range. */
const char *sniff_format_name(enum sniff_format format);

/* The qemu block driver name for formats qemu-img/qemu-nbd open ("raw", "qcow2",
 * "vmdk", "vhdx", "vdi", "vpc", and "qcow", "qed", "parallels", "bochs", "cloop",
 * "dmg"), NULL for wrappers and refused formats. */
const char *sniff_qemu_driver(enum sniff_format format);

/* Whether CDI imports `format`: qemu-img calls it raw, qcow2, vmdk, vdi, vpc or vhdx
 * (CDI's isSupportedFormat). Wrappers and refused formats are not disk formats: false. */
bool sniff_format_cdi_accepts(enum sniff_format format);

/* Short stable name: "unknown", "zeros", "mbr", "gpt", "iso9660", "ext", "xfs", "btrfs",
 * "luks", "lvm". */
const char *sniff_content_name(enum sniff_content content);

/* Whether `format` is a compression or archive wrapper (gzip, xz, zstd, bzip2, tar). */
bool sniff_format_is_wrapper(enum sniff_format format);

/* One human line, e.g. "qcow2 v3, virtual size 10.0 GiB (10737418240 bytes), cluster
 * 64 KiB, no backing file, not encrypted". Always NUL-terminates (truncates to fit). */
void sniff_describe(const struct sniff_result *r, char *buf, size_t buf_size);

#define SNIFF_VHD_FOOTER_BYTES 512

/* The virtual size qemu gives a VHD (qemu-img's "vpc") from its footer: the CHS
 * geometry (cylinders * heads * sectors * 512) unless the creator application writes
 * the footer's current size ("win ", "qem2", "d2v ", "CTXS", "tap\0") or the geometry
 * is the maximum 65535/16/255. CDI sizes and resizes by this number. Pure. */
uint64_t sniff_vhd_virtual_size(const unsigned char footer[SNIFF_VHD_FOOTER_BYTES]);

/* A fixed VHD is raw bytes with a 512-byte "conectix" footer at the very end, which
 * the start cannot show. Given the last 512 bytes of a `total_size`-byte source that
 * sniffed as raw, return true when they are a fixed-disk footer (cookie, disk type 2,
 * valid checksum) and set *virtual_size to qemu's size (sniff_vhd_virtual_size). Pure. */
bool sniff_vhd_fixed_footer(const unsigned char footer[SNIFF_VHD_FOOTER_BYTES], uint64_t total_size,
                            uint64_t *virtual_size);

/* An Apple disk image (UDIF, "DMG") keeps its only signature, the 512-byte "koly"
 * trailer, at the very end; its start is compressed chunks or raw data. Given the last
 * 512 bytes of a `total_size`-byte source, return true when they are a koly trailer
 * (magic, version 4, header size 512) and set *virtual_size to its sector count * 512
 * (0 when that overflows). qemu-img itself knows a DMG only by a ".dmg" file name. Pure. */
bool sniff_dmg_trailer(const unsigned char trailer[SNIFF_VHD_FOOTER_BYTES], uint64_t total_size,
                       uint64_t *virtual_size);

/* Sniff a stream without a second read and without seeking: read the first SNIFF_BYTES
 * of `lower` (fewer if it ends), classify them into *result, and return in *out a reader
 * that first replays exactly those bytes and then continues with `lower`.
 * Ownership: *out owns `lower` from this call on; on failure `lower` is closed and *out
 * is NULL. Memory: one SNIFF_BYTES buffer, freed as soon as it has been replayed.
 * Errors: whatever `lower` returns while reading; VERR_NOMEM; VERR_FORMAT with
 * result->message when the bytes are refused (*result is filled in that case too, so
 * `vimport sniff` can still describe them). */
int sniff_reader_new(struct vreader *lower, const char *content_type, struct vreader **out,
                     struct sniff_result *result, struct verr *err);

/* What a local image file or block device is, as `qemu-img info` (no -f) names it. */
struct sniff_local {
  struct sniff_result result; /* the start, classified */
  const char *format;         /* qemu's driver name ("raw", "qcow2", "vpc", "qed", ...) */
  uint64_t file_size;         /* bytes of the file or device */
  uint64_t virtual_size;      /* the guest disk's size in bytes */
  const char *size_from;      /* "header", "file size" or "qemu-nbd" */
};

/* Name and size the file or block device at `path` as `qemu-img info` without -f does,
 * which is how CDI sees it: from its start (qemu probes no trailer, so a fixed VHD or a
 * DMG is raw of its file size), the device or file size for raw, and qemu-nbd (pkg/nbd)
 * for VHDX, whose size lies in a metadata region. Errors: VERR_IO (open, read), VERR_FORMAT (refused bytes, with the
 * sniffer's message, a LUKS volume, or a format whose size vimport cannot read), VERR_NOMEM, and
 * pkg/nbd's for VHDX. */
int sniff_local_file(const char *path, struct sniff_local *out, struct verr *err);

#endif
