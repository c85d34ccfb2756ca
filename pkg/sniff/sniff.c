/* vimport sniff: see sniff.h for the contract.
 *
 * Classification runs in a fixed order, most specific evidence first:
 *   1. container and wrapper magic at fixed offsets (qcow2, vmdk, vhdx, vdi, vhd, gzip, ...);
 *   2. raw content signatures (ISO 9660, LUKS, XFS, GPT, MBR, LVM, ext, btrfs);
 *   3. text bodies (HTML, XML, JSON, plain text): refused;
 *   4. a text Content-Type on bytes without any signature: refused;
 *   5. otherwise raw, with an empty first sector or no known signature.
 * A VMDK descriptor and a VDI header are text at their start, so magic must come before
 * the text test. Every read of the buffer goes through has()/magic_at(), which check
 * bounds, because the buffer is whatever the network sent (see tests/fuzz/fuzz_sniff.c).
 */
#include "sniff.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct bytes {
  const unsigned char *p;
  size_t len;
};

static bool has(const struct bytes *b, size_t off, size_t n)
{
  return off <= b->len && n <= b->len - off;
}

static bool magic_at(const struct bytes *b, size_t off, const char *magic, size_t n)
{
  return has(b, off, n) && memcmp(b->p + off, magic, n) == 0;
}

/* Callers check has() first. */
static uint32_t be32(const struct bytes *b, size_t off)
{
  const unsigned char *p = b->p + off;
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const struct bytes *b, size_t off)
{
  return (uint64_t)be32(b, off) << 32 | be32(b, off + 4);
}

static uint16_t le16(const struct bytes *b, size_t off)
{
  return (uint16_t)(b->p[off] | b->p[off + 1] << 8);
}

static uint32_t le32(const struct bytes *b, size_t off)
{
  return (uint32_t)le16(b, off) | (uint32_t)le16(b, off + 2) << 16;
}

static uint64_t le64(const struct bytes *b, size_t off)
{
  return (uint64_t)le32(b, off) | (uint64_t)le32(b, off + 4) << 32;
}

static bool all_zero(const unsigned char *p, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (p[i] != 0)
      return false;
  return true;
}

static void refuse(struct sniff_result *r, enum sniff_format format, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(struct sniff_result *r, enum sniff_format format, const char *fmt, ...)
{
  va_list ap;
  r->format = format;
  r->refused = true;
  va_start(ap, fmt);
  vsnprintf(r->message, sizeof r->message, fmt, ap);
  va_end(ap);
}

/* ---- container formats ---- */

static bool sniff_qcow2(const struct bytes *b, struct sniff_result *r)
{
  if (!magic_at(b, 0, "QFI\xfb", 4))
    return false;
  r->format = SNIFF_FORMAT_QCOW2;
  /* qemu's qcow driver takes version 1, qcow2 the rest; the size field is shared */
  if (has(b, 0, 32) && be32(b, 4) == 1) {
    r->format = SNIFF_FORMAT_QCOW;
    r->version = 1;
    r->virtual_size = be64(b, 24);
    r->has_backing_file = be64(b, 8) != 0;
    return true;
  }
  if (!has(b, 0, 72)) /* the version 2 header */
    return true;
  r->version = be32(b, 4);
  r->has_backing_file = be64(b, 8) != 0 && be32(b, 16) != 0;
  r->cluster_bits = be32(b, 20);
  r->virtual_size = be64(b, 24);
  switch (be32(b, 32)) {
  case 0: r->encryption = SNIFF_ENCRYPTION_NONE; break;
  case 1: r->encryption = SNIFF_ENCRYPTION_AES; break;
  case 2: r->encryption = SNIFF_ENCRYPTION_LUKS; break;
  default: r->encryption = SNIFF_ENCRYPTION_UNKNOWN; break;
  }
  /* version 3: the compression type byte exists when header_length reaches it */
  if (r->version >= 3 && has(b, 100, 5) && be32(b, 100) >= 105)
    r->compression_type = b->p[104];
  return true;
}

/* Copy the value of `key="value"` (or key=value) from descriptor text into `out`,
 * keeping only [A-Za-z0-9_] so nothing odd from the source reaches a message. */
static void descriptor_value(const struct bytes *b, size_t off, size_t len, const char *key,
                             char *out, size_t out_size)
{
  size_t key_len = strlen(key);
  if (!has(b, off, len) || out_size == 0)
    return;
  const char *text = (const char *)b->p + off;
  for (size_t i = 0; i + key_len < len; i++) {
    if (memcmp(text + i, key, key_len) != 0)
      continue;
    size_t j = i + key_len;
    while (j < len && (text[j] == ' ' || text[j] == '='))
      j++;
    if (j < len && text[j] == '"')
      j++;
    size_t n = 0;
    while (j < len && n + 1 < out_size && (isalnum((unsigned char)text[j]) || text[j] == '_'))
      out[n++] = text[j++];
    out[n] = '\0';
    return;
  }
}

static void sniff_vmdk_sparse(const struct bytes *b, struct sniff_result *r)
{
  if (!has(b, 0, 79)) /* through compressAlgorithm */
    return;
  uint32_t flags = le32(b, 8);
  uint64_t desc_sector = le64(b, 28);
  uint64_t desc_sectors = le64(b, 36);
  r->version = le32(b, 4);
  r->virtual_size = le64(b, 12) <= UINT64_MAX / 512 ? le64(b, 12) * 512 : 0;
  bool compressed_grains = (flags & (1u << 16)) != 0 && le16(b, 77) == 1;
  snprintf(r->subformat, sizeof r->subformat, "%s",
           compressed_grains ? "streamOptimized" : "monolithicSparse");
  /* the embedded descriptor, when it is in the window, names the type exactly */
  if (desc_sector > 0 && desc_sector < b->len / 512 && desc_sectors > 0) {
    size_t off = (size_t)desc_sector * 512;
    size_t len = desc_sectors < (b->len - off) / 512 ? (size_t)desc_sectors * 512
                                                     : b->len - off;
    char create_type[sizeof r->subformat] = "";
    descriptor_value(b, off, len, "createType", create_type, sizeof create_type);
    if (create_type[0] != '\0')
      memcpy(r->subformat, create_type, sizeof create_type);
  }
}

static bool sniff_vmdk(const struct bytes *b, struct sniff_result *r)
{
  static const char descriptor[] = "# Disk DescriptorFile";
  if (magic_at(b, 0, "KDMV", 4)) {
    r->format = SNIFF_FORMAT_VMDK;
    sniff_vmdk_sparse(b, r);
    return true;
  }
  if (magic_at(b, 0, "COWD", 4)) { /* ESX vmfsSparse, version 1 */
    r->format = SNIFF_FORMAT_VMDK;
    snprintf(r->subformat, sizeof r->subformat, "vmfsSparse");
    return true;
  }
  if (!magic_at(b, 0, descriptor, sizeof descriptor - 1))
    return false;
  descriptor_value(b, 0, b->len < 4096 ? b->len : 4096, "createType", r->subformat,
                   sizeof r->subformat);
  refuse(r, SNIFF_FORMAT_VMDK, "the source is a VMDK descriptor file (createType \"%s\"), "
         "not a disk image: it only names extent files kept elsewhere; import the extent "
         "(e.g. the -flat.vmdk file) or a single-file image made with "
         "\"qemu-img convert -O qcow2\"", r->subformat[0] ? r->subformat : "unknown");
  return true;
}

static bool sniff_vdi(const struct bytes *b, struct sniff_result *r)
{
  if (!has(b, 0x40, 4) || le32(b, 0x40) != 0xbeda107f)
    return false;
  r->format = SNIFF_FORMAT_VDI;
  if (has(b, 0x44, 12)) {
    r->version = le32(b, 0x44);
    uint32_t type = le32(b, 0x4c);
    r->has_backing_file = type == 4;
    snprintf(r->subformat, sizeof r->subformat, "%s",
             type == 1 ? "dynamic" : type == 2 ? "fixed" : type == 4 ? "differencing"
                                                                     : "other");
  }
  if (r->version >= 0x00010001 && has(b, 0x170, 8))
    r->virtual_size = le64(b, 0x170);
  return true;
}

static uint64_t vhd_be(const unsigned char *p, int n);

/* qemu's block/vpc.c: the size is the CHS geometry, except for creators that write the
 * footer's current size ("win ", "qem2", "d2v ", "CTXS", "tap\0") and for the maximum
 * geometry, which would truncate. */
uint64_t sniff_vhd_virtual_size(const unsigned char footer[SNIFF_VHD_FOOTER_BYTES])
{
  static const char size_creators[][4] = { "win ", "qem2", "d2v ", "CTXS", "tap" };
  uint64_t chs = vhd_be(footer + 56, 2) * footer[58] * footer[59];
  bool use_chs = true;
  for (size_t i = 0; i < sizeof size_creators / sizeof size_creators[0]; i++)
    use_chs &= memcmp(footer + 28, size_creators[i], 4) != 0;
  if (!use_chs || chs == 65535ull * 16 * 255)
    return vhd_be(footer + 48, 8) / 512 * 512;
  return chs * 512;
}

static bool sniff_vhd(const struct bytes *b, struct sniff_result *r)
{
  if (!magic_at(b, 0, "conectix", 8))
    return false;
  r->format = SNIFF_FORMAT_VHD;
  if (has(b, 0, SNIFF_VHD_FOOTER_BYTES)) {
    uint32_t type = be32(b, 60);
    r->virtual_size = sniff_vhd_virtual_size(b->p);
    r->has_backing_file = type == 4;
    snprintf(r->subformat, sizeof r->subformat, "%s",
             type == 2 ? "fixed" : type == 3 ? "dynamic" : type == 4 ? "differencing"
                                                                     : "other");
  }
  return true;
}

/* A NUL-terminated string fills the start of a fixed-size header field (qemu's bochs
 * probe compares them with strcmp). */
static bool field_is(const struct bytes *b, size_t off, size_t field, const char *s)
{
  size_t n = strlen(s) + 1;
  return n <= field && magic_at(b, off, s, n);
}

/* The probes of qemu's bochs, cloop, parallels and qed drivers (block/<name>.c), which
 * CDI refuses after qemu-img info names them. */
static bool sniff_qemu_only(const struct bytes *b, struct sniff_result *r)
{
  static const char cloop[] = "#!/bin/sh\n#V2.0 Format\n"
                              "modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";
  if (has(b, 0, 64) && (magic_at(b, 0, "WithoutFreeSpace", 16) ||
                        magic_at(b, 0, "WithouFreSpacExt", 16)) && le32(b, 16) == 2) {
    r->format = SNIFF_FORMAT_PARALLELS;
    r->virtual_size = le64(b, 36) <= UINT64_MAX / 512 ? le64(b, 36) * 512 : 0;
  } else if (has(b, 0, 64) && le32(b, 0) == 0x00444551) { /* 'Q' 'E' 'D' 0 */
    r->format = SNIFF_FORMAT_QED;
    r->virtual_size = le64(b, 48);
  } else if (has(b, 0, 512) && field_is(b, 0, 32, "Bochs Virtual HD Image") &&
             field_is(b, 32, 16, "Redolog") && field_is(b, 48, 16, "Growing") &&
             (le32(b, 64) == 0x00020000 || le32(b, 64) == 0x00010000)) {
    r->format = SNIFF_FORMAT_BOCHS;
    r->version = le32(b, 64) >> 16;
    r->virtual_size = le64(b, r->version == 2 ? 88 : 84);
  } else if (magic_at(b, 0, cloop, sizeof cloop - 1)) {
    r->format = SNIFF_FORMAT_CLOOP;
    if (has(b, 128, 8) && be32(b, 128) != 0 && be32(b, 132) != 0)
      r->virtual_size = (uint64_t)be32(b, 128) * be32(b, 132);
  } else {
    return false;
  }
  return true;
}

static bool sniff_container(const struct bytes *b, struct sniff_result *r)
{
  static const struct {
    size_t offset;
    const char *magic;
    size_t len;
    enum sniff_format format;
  } simple[] = {
    { 0, "vhdxfile", 8, SNIFF_FORMAT_VHDX },
    { 0, "\x1f\x8b\x08", 3, SNIFF_FORMAT_GZIP }, /* deflate is gzip's only method */
    { 0, "\xfd" "7zXZ\0", 6, SNIFF_FORMAT_XZ },
    { 0, "\x28\xb5\x2f\xfd", 4, SNIFF_FORMAT_ZSTD },
    { 257, "ustar", 5, SNIFF_FORMAT_TAR },
  };
  if (sniff_qcow2(b, r) || sniff_vmdk(b, r) || sniff_vdi(b, r) || sniff_vhd(b, r) ||
      sniff_qemu_only(b, r))
    return true;
  for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
    if (magic_at(b, simple[i].offset, simple[i].magic, simple[i].len)) {
      r->format = simple[i].format;
      return true;
    }
  }
  /* "BZh" then the block size digit: the digit keeps text starting "BZh" out */
  if (magic_at(b, 0, "BZh", 3) && has(b, 3, 1) && b->p[3] >= '1' && b->p[3] <= '9') {
    r->format = SNIFF_FORMAT_BZIP2;
    return true;
  }
  return false;
}

/* ---- raw content ---- */

static bool mbr_entries_sane(const struct bytes *b)
{
  for (int i = 0; i < 4; i++) {
    size_t e = 446 + 16 * (size_t)i;
    unsigned char status = b->p[e];
    unsigned char type = b->p[e + 4];
    if (status != 0x00 && status != 0x80)
      return false;
    if (type != 0 && le32(b, e + 12) == 0) /* a used entry with no sectors */
      return false;
  }
  return true;
}

static bool sniff_lvm(const struct bytes *b)
{
  /* the label may sit in any of the first four sectors */
  for (size_t sector = 0; sector < 4; sector++)
    if (magic_at(b, sector * 512, "LABELONE", 8))
      return true;
  return false;
}

static bool sniff_ext(const struct bytes *b)
{
  /* the 0xEF53 magic alone is two bytes; also require a sane block size (1..64 KiB) */
  return has(b, 1080, 2) && le16(b, 1080) == 0xEF53 && le32(b, 1024 + 24) <= 6;
}

static enum sniff_content sniff_content_of(const struct bytes *b, struct sniff_result *r)
{
  if (magic_at(b, 0x8001, "CD001", 5)) /* before MBR/GPT: hybrid ISOs carry both */
    return SNIFF_CONTENT_ISO9660;
  if (magic_at(b, 0, "LUKS\xba\xbe", 6)) {
    r->encryption = SNIFF_ENCRYPTION_LUKS;
    r->version = has(b, 6, 2) ? (uint32_t)(b->p[6] << 8 | b->p[7]) : 0;
    return SNIFF_CONTENT_LUKS;
  }
  if (magic_at(b, 0, "XFSB", 4))
    return SNIFF_CONTENT_XFS;
  if (magic_at(b, 512, "EFI PART", 8) || magic_at(b, 4096, "EFI PART", 8))
    return SNIFF_CONTENT_GPT;
  if (has(b, 510, 2) && b->p[510] == 0x55 && b->p[511] == 0xAA && mbr_entries_sane(b))
    return SNIFF_CONTENT_MBR;
  if (sniff_lvm(b))
    return SNIFF_CONTENT_LVM;
  if (sniff_ext(b))
    return SNIFF_CONTENT_EXT;
  if (magic_at(b, 0x10040, "_BHRfS_M", 8))
    return SNIFF_CONTENT_BTRFS;
  return SNIFF_CONTENT_UNKNOWN;
}

/* ---- text bodies and text Content-Types ---- */

/* Length of the valid UTF-8 sequence of printable text at p (1..4), or 0. A sequence cut
 * by the end of the window counts as valid: the window, not the text, ended. */
static size_t text_char_length(const unsigned char *p, size_t avail)
{
  unsigned char c = p[0];
  if ((c >= 0x20 && c < 0x7f) || c == '\t' || c == '\n' || c == '\r' || c == '\f')
    return 1;
  size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
             : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n == 0)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if (i >= avail)
      return i;
    if ((p[i] & 0xc0) != 0x80)
      return 0;
  }
  return n;
}

static bool all_printable_text(const unsigned char *p, size_t len)
{
  for (size_t i = 0; i < len;) {
    size_t n = text_char_length(p + i, len - i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

static bool contains_nocase(const unsigned char *p, size_t len, const char *needle)
{
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= len; i++)
    if (strncasecmp((const char *)p + i, needle, n) == 0)
      return true;
  return false;
}

/* What kind of text the body is, or SNIFF_FORMAT_RAW when it is binary. */
static enum sniff_format text_kind(const struct bytes *b)
{
  size_t head = b->len < 512 ? b->len : 512;
  size_t window = b->len < 4096 ? b->len : 4096;
  if (memchr(b->p, 0, head) != NULL)
    return SNIFF_FORMAT_RAW;
  size_t i = magic_at(b, 0, "\xef\xbb\xbf", 3) ? 3 : 0;
  while (i < window && isspace(b->p[i]))
    i++;
  const unsigned char *start = b->p + i;
  size_t rest = window - i;
  if (rest > 0 && start[0] == '<') {
    if (contains_nocase(start, rest, "<html") || contains_nocase(start, rest, "<!doctype html")
        || contains_nocase(start, rest, "<body") || contains_nocase(start, rest, "<head"))
      return SNIFF_FORMAT_HTML;
    if (rest >= 5 && strncasecmp((const char *)start, "<?xml", 5) == 0)
      return SNIFF_FORMAT_XML;
    return contains_nocase(start, rest, "<?xml") ? SNIFF_FORMAT_XML : SNIFF_FORMAT_HTML;
  }
  if (rest > 0 && (start[0] == '{' || start[0] == '['))
    return SNIFF_FORMAT_JSON;
  if (all_printable_text(b->p, window))
    return SNIFF_FORMAT_TEXT;
  return SNIFF_FORMAT_RAW;
}

/* The media type of a Content-Type ("Text/HTML; charset=utf-8" -> "text/html"), lowercase
 * and limited to visible characters so it is safe to quote. */
static void media_type(const char *content_type, char *out, size_t out_size)
{
  size_t n = 0;
  const char *p = content_type;
  while (*p == ' ' || *p == '\t')
    p++;
  for (; *p && *p != ';' && *p > ' ' && *p < 0x7f && n + 1 < out_size; p++)
    out[n++] = (char)tolower((unsigned char)*p);
  out[n] = '\0';
}

static bool ends_with(const char *s, const char *suffix)
{
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The refused kind a media type names, or SNIFF_FORMAT_RAW when it is not a text type. */
static enum sniff_format content_type_kind(const char *type)
{
  bool application = strncmp(type, "application/", 12) == 0;
  if (strcmp(type, "text/html") == 0 || strcmp(type, "application/xhtml+xml") == 0)
    return SNIFF_FORMAT_HTML;
  if (strcmp(type, "application/json") == 0 || (application && ends_with(type, "+json")))
    return SNIFF_FORMAT_JSON;
  if (strcmp(type, "text/xml") == 0 || strcmp(type, "application/xml") == 0
      || (application && ends_with(type, "+xml")))
    return SNIFF_FORMAT_XML;
  if (strncmp(type, "text/", 5) == 0)
    return SNIFF_FORMAT_TEXT;
  return SNIFF_FORMAT_RAW;
}

static void refuse_text(struct sniff_result *r, enum sniff_format kind, const char *type,
                        bool from_body)
{
  static const struct {
    const char *what;
    const char *body_sign;
    const char *common;
  } kinds[] = {
    [SNIFF_FORMAT_HTML] = { "an HTML page", "the body starts with an HTML tag",
                            "a login or error page is common" },
    [SNIFF_FORMAT_XML] = { "an XML document", "the body starts with '<'",
                           "an object store's error response (AccessDenied, NoSuchKey) is "
                           "common" },
    [SNIFF_FORMAT_JSON] = { "a JSON document", "the body starts with '{' or '['",
                            "an API error response is common" },
    [SNIFF_FORMAT_TEXT] = { "plain text", "the body is all printable text",
                            "an error message or a checksum file is common" },
  };
  char why[160];
  if (!from_body)
    snprintf(why, sizeof why, "the server answered with Content-Type %s", type);
  else if (type[0] != '\0')
    snprintf(why, sizeof why, "%s, Content-Type %s", kinds[kind].body_sign, type);
  else
    snprintf(why, sizeof why, "%s", kinds[kind].body_sign);
  refuse(r, kind, "the source is %s, not a disk image (%s: check the URL; %s)",
         kinds[kind].what, why, kinds[kind].common);
}

int sniff_buffer(const void *buf, size_t len, const char *content_type,
                 struct sniff_result *out)
{
  struct bytes b = { .p = buf, .len = len };
  char type[64] = "";
  memset(out, 0, sizeof *out);
  out->bytes_seen = len;
  if (content_type != NULL)
    media_type(content_type, type, sizeof type);

  if (len == 0) {
    refuse(out, SNIFF_FORMAT_EMPTY, "the source is empty (0 bytes), not a disk image: "
           "check the URL or the file");
    return -1;
  }
  if (sniff_container(&b, out))
    return out->refused ? -1 : 0;
  out->format = SNIFF_FORMAT_RAW;
  out->content = sniff_content_of(&b, out);
  if (out->content != SNIFF_CONTENT_UNKNOWN)
    return 0;

  enum sniff_format text = text_kind(&b);
  if (text != SNIFF_FORMAT_RAW) {
    refuse_text(out, text, type, true);
    return -1;
  }
  enum sniff_format declared = content_type_kind(type);
  if (declared != SNIFF_FORMAT_RAW) {
    refuse_text(out, declared, type, false);
    return -1;
  }
  if (all_zero(b.p, len < 512 ? len : 512))
    out->content = SNIFF_CONTENT_ZEROS;
  return 0;
}

/* ---- names and descriptions ---- */

const char *sniff_format_name(enum sniff_format format)
{
  static const char *const names[] = {
    [SNIFF_FORMAT_RAW] = "raw",     [SNIFF_FORMAT_QCOW2] = "qcow2",
    [SNIFF_FORMAT_VMDK] = "vmdk",   [SNIFF_FORMAT_VHDX] = "vhdx",
    [SNIFF_FORMAT_VDI] = "vdi",     [SNIFF_FORMAT_VHD] = "vhd",
    [SNIFF_FORMAT_GZIP] = "gzip",   [SNIFF_FORMAT_XZ] = "xz",
    [SNIFF_FORMAT_ZSTD] = "zstd",   [SNIFF_FORMAT_BZIP2] = "bzip2",
    [SNIFF_FORMAT_TAR] = "tar",     [SNIFF_FORMAT_EMPTY] = "empty",
    [SNIFF_FORMAT_HTML] = "html",   [SNIFF_FORMAT_XML] = "xml",
    [SNIFF_FORMAT_JSON] = "json",   [SNIFF_FORMAT_TEXT] = "text",
    [SNIFF_FORMAT_QCOW] = "qcow",   [SNIFF_FORMAT_QED] = "qed",
    [SNIFF_FORMAT_PARALLELS] = "parallels", [SNIFF_FORMAT_BOCHS] = "bochs",
    [SNIFF_FORMAT_CLOOP] = "cloop", [SNIFF_FORMAT_DMG] = "dmg",
  };
  if ((size_t)format < sizeof names / sizeof names[0] && names[format] != NULL)
    return names[format];
  return "unknown";
}

const char *sniff_qemu_driver(enum sniff_format format)
{
  switch (format) {
  case SNIFF_FORMAT_RAW: return "raw";
  case SNIFF_FORMAT_QCOW2: return "qcow2";
  case SNIFF_FORMAT_VMDK: return "vmdk";
  case SNIFF_FORMAT_VHDX: return "vhdx";
  case SNIFF_FORMAT_VDI: return "vdi";
  case SNIFF_FORMAT_VHD: return "vpc";
  case SNIFF_FORMAT_QCOW: return "qcow";
  case SNIFF_FORMAT_QED: return "qed";
  case SNIFF_FORMAT_PARALLELS: return "parallels";
  case SNIFF_FORMAT_BOCHS: return "bochs";
  case SNIFF_FORMAT_CLOOP: return "cloop";
  case SNIFF_FORMAT_DMG: return "dmg";
  default: return NULL;
  }
}

bool sniff_format_cdi_accepts(enum sniff_format format)
{
  switch (format) {
  case SNIFF_FORMAT_RAW:
  case SNIFF_FORMAT_QCOW2:
  case SNIFF_FORMAT_VMDK:
  case SNIFF_FORMAT_VHDX:
  case SNIFF_FORMAT_VDI:
  case SNIFF_FORMAT_VHD:
    return true;
  default:
    return false;
  }
}

const char *sniff_content_name(enum sniff_content content)
{
  static const char *const names[] = {
    [SNIFF_CONTENT_UNKNOWN] = "unknown", [SNIFF_CONTENT_ZEROS] = "zeros",
    [SNIFF_CONTENT_MBR] = "mbr",         [SNIFF_CONTENT_GPT] = "gpt",
    [SNIFF_CONTENT_ISO9660] = "iso9660", [SNIFF_CONTENT_EXT] = "ext",
    [SNIFF_CONTENT_XFS] = "xfs",         [SNIFF_CONTENT_BTRFS] = "btrfs",
    [SNIFF_CONTENT_LUKS] = "luks",       [SNIFF_CONTENT_LVM] = "lvm",
  };
  if ((size_t)content < sizeof names / sizeof names[0] && names[content] != NULL)
    return names[content];
  return "unknown";
}

bool sniff_format_is_wrapper(enum sniff_format format)
{
  return format == SNIFF_FORMAT_GZIP || format == SNIFF_FORMAT_XZ
         || format == SNIFF_FORMAT_ZSTD || format == SNIFF_FORMAT_BZIP2
         || format == SNIFF_FORMAT_TAR;
}

/* A line being built: appends clamp at the end and keep it NUL-terminated. */
struct line {
  char *buf;
  size_t size;
  size_t used;
};

static void line_add(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line_add(struct line *l, const char *fmt, ...)
{
  if (l->used + 1 >= l->size)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(l->buf + l->used, l->size - l->used, fmt, ap);
  va_end(ap);
  if (n > 0)
    l->used = (size_t)n < l->size - l->used ? l->used + (size_t)n : l->size - 1;
}

static void line_add_size(struct line *l, uint64_t bytes)
{
  static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
  double value = (double)bytes;
  int unit = -1;
  while (value >= 1024 && unit + 1 < (int)(sizeof units / sizeof units[0])) {
    value /= 1024;
    unit++;
  }
  if (unit < 0)
    line_add(l, ", virtual size %llu bytes", (unsigned long long)bytes);
  else
    line_add(l, ", virtual size %.1f %s (%llu bytes)", value, units[unit],
             (unsigned long long)bytes);
}

static void describe_qcow2(const struct sniff_result *r, struct line *l)
{
  static const char *const encryption[] = {
    [SNIFF_ENCRYPTION_NONE] = "not encrypted", [SNIFF_ENCRYPTION_AES] = "encrypted (aes)",
    [SNIFF_ENCRYPTION_LUKS] = "encrypted (luks)",
    [SNIFF_ENCRYPTION_UNKNOWN] = "encrypted (unknown method)",
  };
  line_add(l, " v%u", r->version);
  line_add_size(l, r->virtual_size);
  if (r->cluster_bits >= 9 && r->cluster_bits <= 30)
    line_add(l, ", cluster %u KiB", (1u << r->cluster_bits) / 1024);
  else
    line_add(l, ", cluster bits %u (invalid)", r->cluster_bits);
  if (r->compression_type == 1)
    line_add(l, ", zstd compression");
  line_add(l, ", %s, %s", r->has_backing_file ? "backing file" : "no backing file",
           encryption[r->encryption]);
}

static void describe_raw(const struct sniff_result *r, struct line *l)
{
  static const char *const content[] = {
    [SNIFF_CONTENT_UNKNOWN] = "no known signature",
    [SNIFF_CONTENT_ZEROS] = "first sector empty",
    [SNIFF_CONTENT_MBR] = "MBR partition table",
    [SNIFF_CONTENT_GPT] = "GPT partition table",
    [SNIFF_CONTENT_ISO9660] = "ISO 9660 image",
    [SNIFF_CONTENT_EXT] = "bare ext2/3/4 filesystem",
    [SNIFF_CONTENT_XFS] = "bare XFS filesystem",
    [SNIFF_CONTENT_BTRFS] = "bare btrfs filesystem",
    [SNIFF_CONTENT_LUKS] = "LUKS encrypted volume",
    [SNIFF_CONTENT_LVM] = "LVM physical volume",
  };
  line_add(l, ", %s", content[r->content]);
  if (r->content == SNIFF_CONTENT_LUKS)
    line_add(l, " v%u", r->version);
  if (r->bytes_seen < SNIFF_BYTES)
    line_add(l, ", stream of only %zu bytes", r->bytes_seen);
}

void sniff_describe(const struct sniff_result *r, char *buf, size_t buf_size)
{
  struct line l = { .buf = buf, .size = buf_size, .used = 0 };
  if (buf_size == 0)
    return;
  buf[0] = '\0';
  if (r->refused) {
    line_add(&l, "%s, refused: %s", sniff_format_name(r->format), r->message);
    return;
  }
  line_add(&l, "%s", sniff_format_name(r->format));
  if (r->subformat[0] != '\0')
    line_add(&l, " (%s)", r->subformat);
  switch (r->format) {
  case SNIFF_FORMAT_QCOW2:
    describe_qcow2(r, &l);
    break;
  case SNIFF_FORMAT_RAW:
    describe_raw(r, &l);
    break;
  case SNIFF_FORMAT_VMDK:
  case SNIFF_FORMAT_VDI:
  case SNIFF_FORMAT_VHD:
  case SNIFF_FORMAT_QCOW:
  case SNIFF_FORMAT_QED:
  case SNIFF_FORMAT_PARALLELS:
  case SNIFF_FORMAT_BOCHS:
  case SNIFF_FORMAT_CLOOP:
  case SNIFF_FORMAT_DMG:
    if (r->virtual_size != 0)
      line_add_size(&l, r->virtual_size);
    if (r->has_backing_file)
      line_add(&l, ", needs a parent image");
    break;
  case SNIFF_FORMAT_TAR:
    line_add(&l, " archive: unpack, then sniff the disk image inside");
    break;
  default:
    if (sniff_format_is_wrapper(r->format))
      line_add(&l, "-compressed: decompress, then sniff the content");
    break;
  }
}

static uint64_t vhd_be(const unsigned char *p, int n)
{
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

/* Microsoft's VHD specification, "Hard Disk Footer Format": cookie at 0, current size at
 * 48, disk type at 60, checksum at 64 = one's complement of the sum of the other bytes. */
bool sniff_vhd_fixed_footer(const unsigned char footer[SNIFF_VHD_FOOTER_BYTES], uint64_t total_size,
                            uint64_t *virtual_size)
{
  if (total_size < 2 * SNIFF_VHD_FOOTER_BYTES || memcmp(footer, "conectix", 8) != 0 ||
      vhd_be(footer + 60, 4) != 2)
    return false;
  uint32_t sum = 0;
  for (int i = 0; i < SNIFF_VHD_FOOTER_BYTES; i++)
    if (i < 64 || i >= 68)
      sum += footer[i];
  if ((uint32_t)~sum != (uint32_t)vhd_be(footer + 64, 4))
    return false;
  *virtual_size = sniff_vhd_virtual_size(footer);
  return true;
}

/* Apple's UDIF trailer ("koly" block): signature, version 4 and header size 512 big
 * endian at 0, 4 and 8; the sector count at 492. */
bool sniff_dmg_trailer(const unsigned char trailer[SNIFF_VHD_FOOTER_BYTES], uint64_t total_size,
                       uint64_t *virtual_size)
{
  if (total_size < SNIFF_VHD_FOOTER_BYTES || memcmp(trailer, "koly", 4) != 0 ||
      vhd_be(trailer + 4, 4) != 4 || vhd_be(trailer + 8, 4) != 512)
    return false;
  uint64_t sectors = vhd_be(trailer + 492, 8);
  *virtual_size = sectors <= UINT64_MAX / 512 ? sectors * 512 : 0;
  return true;
}
