/* Unit tests for pkg/sniff: a table of synthetic headers for every format and every
 * refusal, real images made here with qemu-img, mkfs, sgdisk, sfdisk, genisoimage and the
 * compressors, and the replay reader against every read size. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "digest/digest.h"
#include "sniff/sniff.h"
#include "source/source.h"

/* ---- readers: memory (with a per-read chunk limit) and a real file ---- */

struct mem_source {
  const unsigned char *data;
  size_t len, pos, chunk;
  size_t served;        /* bytes handed out: must equal len, no second read */
  int reads_after_end;  /* reads after it returned 0 once */
  bool ended;
  size_t fail_at;       /* SIZE_MAX: never */
  bool *closed;
  int *reads_after_end_out;
};

static ssize_t mem_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct mem_source *m = r->state;
  if (m->ended)
    m->reads_after_end++;
  size_t n = m->len - m->pos;
  if (n > len)
    n = len;
  if (n > m->chunk)
    n = m->chunk;
  if (m->fail_at != SIZE_MAX && m->pos + n > m->fail_at)
    return verr_set(err, VERR_IO, "injected read failure at byte %zu", m->fail_at);
  memcpy(buf, m->data + m->pos, n);
  m->pos += n;
  m->served += n;
  if (n == 0)
    m->ended = true;
  return (ssize_t)n;
}

static void mem_close(struct vreader *r)
{
  struct mem_source *m = r->state;
  if (m->closed != NULL)
    *m->closed = true;
  if (m->reads_after_end_out != NULL)
    *m->reads_after_end_out = m->reads_after_end;
  free(m);
  free(r);
}

static const struct vreader_ops mem_ops = { .name = "mem", .read = mem_read, .close = mem_close };

static struct vreader *mem_reader(const void *data, size_t len, size_t chunk)
{
  struct vreader *r = calloc(1, sizeof *r);
  struct mem_source *m = calloc(1, sizeof *m);
  cr_assert(r != NULL && m != NULL);
  *m = (struct mem_source){ .data = data, .len = len, .chunk = chunk, .fail_at = SIZE_MAX };
  r->ops = &mem_ops;
  r->state = m;
  return r;
}

/* ---- the real file source (pkg/source) ---- */

static struct vreader *file_reader(const char *path)
{
  struct source_opts opts = { .url = path };
  struct vreader *r = NULL;
  struct verr err = { 0 };
  cr_assert(source_open(&opts, &r, &err) == 0, "open %s: %s", path, err.message);
  return r;
}

/* ---- synthetic headers ---- */

static unsigned char *zeros(size_t len)
{
  unsigned char *p = calloc(1, len ? len : 1);
  cr_assert(p != NULL);
  return p;
}

static void put_be32(unsigned char *p, uint32_t v)
{
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
  put_be32(p, (uint32_t)(v >> 32));
  put_be32(p + 4, (uint32_t)v);
}

static void put_le16(unsigned char *p, uint16_t v)
{
  p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v)
{
  put_le16(p, (uint16_t)v);
  put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(unsigned char *p, uint64_t v)
{
  put_le32(p, (uint32_t)v);
  put_le32(p + 4, (uint32_t)(v >> 32));
}

static struct sniff_result sniff_bytes(const void *buf, size_t len, const char *type, int want_rc)
{
  struct sniff_result r;
  int rc = sniff_buffer(buf, len, type, &r);
  cr_assert_eq(rc, want_rc, "sniff_buffer returned %d (%s: %s)", rc,
               sniff_format_name(r.format), r.message);
  cr_assert_eq(r.refused, rc == -1);
  cr_assert_eq(r.bytes_seen, len);
  char line[512];
  sniff_describe(&r, line, sizeof line);
  cr_assert(line[0] != '\0');
  return r;
}

static void expect_raw(const void *buf, size_t len, enum sniff_content content)
{
  struct sniff_result r = sniff_bytes(buf, len, NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_RAW, "got %s", sniff_format_name(r.format));
  cr_assert_eq(r.content, content, "got %s, want %s", sniff_content_name(r.content),
               sniff_content_name(content));
}

Test(sniff_table, qcow2_v3_header_details)
{
  CLEANUP_FREE unsigned char *b = zeros(SNIFF_BYTES);
  memcpy(b, "QFI\xfb", 4);
  put_be32(b + 4, 3);
  put_be32(b + 20, 16);
  put_be64(b + 24, 1ull << 30);
  put_be32(b + 32, 2);   /* luks */
  put_be32(b + 100, 112); /* header_length */
  b[104] = 1;            /* zstd */
  struct sniff_result r = sniff_bytes(b, SNIFF_BYTES, NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_QCOW2);
  cr_assert_eq(r.version, 3);
  cr_assert_eq(r.cluster_bits, 16);
  cr_assert_eq(r.virtual_size, 1ull << 30);
  cr_assert_eq(r.encryption, SNIFF_ENCRYPTION_LUKS);
  cr_assert_eq(r.compression_type, 1);
  cr_assert(!r.has_backing_file);
  char line[512];
  sniff_describe(&r, line, sizeof line);
  cr_assert_str_eq(line, "qcow2 v3, virtual size 1.0 GiB (1073741824 bytes), cluster 64 KiB, "
                         "zstd compression, no backing file, encrypted (luks)");
}

Test(sniff_table, qcow2_v2_backing_and_aes)
{
  CLEANUP_FREE unsigned char *b = zeros(4096);
  memcpy(b, "QFI\xfb", 4);
  put_be32(b + 4, 2);
  put_be64(b + 8, 72);
  put_be32(b + 16, 9);
  put_be32(b + 20, 12);
  put_be64(b + 24, 10ull << 20);
  put_be32(b + 32, 1);
  struct sniff_result r = sniff_bytes(b, 4096, NULL, 0);
  cr_assert_eq(r.version, 2);
  cr_assert(r.has_backing_file);
  cr_assert_eq(r.encryption, SNIFF_ENCRYPTION_AES);
  cr_assert_eq(r.compression_type, 0);
  /* a truncated header still names the format, without details */
  r = sniff_bytes(b, 20, NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_QCOW2);
  cr_assert_eq(r.virtual_size, 0);
}

static void vmdk_sparse(unsigned char *b, uint32_t flags, uint16_t compress)
{
  memcpy(b, "KDMV", 4);
  put_le32(b + 4, 3);
  put_le32(b + 8, flags);
  put_le64(b + 12, 2097152); /* 1 GiB in sectors */
  put_le64(b + 20, 128);
  put_le16(b + 77, compress);
}

Test(sniff_table, vmdk_sparse_subformats)
{
  CLEANUP_FREE unsigned char *b = zeros(4096);
  vmdk_sparse(b, 0x3, 0);
  struct sniff_result r = sniff_bytes(b, 4096, NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_VMDK);
  cr_assert_str_eq(r.subformat, "monolithicSparse");
  cr_assert_eq(r.virtual_size, 1ull << 30);
  cr_assert_eq(r.version, 3);
  vmdk_sparse(b, 0x30001, 1);
  r = sniff_bytes(b, 4096, NULL, 0);
  cr_assert_str_eq(r.subformat, "streamOptimized");
  /* the embedded descriptor names the type exactly when present */
  vmdk_sparse(b, 0x3, 0);
  put_le64(b + 28, 1);
  put_le64(b + 36, 1);
  strcpy((char *)b + 512, "# Disk DescriptorFile\nversion=1\ncreateType=\"twoGbMaxExtentSparse\"\n");
  r = sniff_bytes(b, 4096, NULL, 0);
  cr_assert_str_eq(r.subformat, "twoGbMaxExtentSparse");
}

Test(sniff_table, vmdk_descriptor_is_refused_with_advice)
{
  const char *d = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
                  "createType=\"monolithicFlat\"\nRW 2048 FLAT \"disk-flat.vmdk\" 0\n";
  struct sniff_result r = sniff_bytes(d, strlen(d), NULL, -1);
  cr_assert_eq(r.format, SNIFF_FORMAT_VMDK);
  cr_assert_str_eq(r.subformat, "monolithicFlat");
  cr_assert(strstr(r.message, "VMDK descriptor") != NULL, "%s", r.message);
  cr_assert(strstr(r.message, "import the extent") != NULL, "%s", r.message);
}

Test(sniff_table, vdi_vhd_vhdx)
{
  CLEANUP_FREE unsigned char *b = zeros(4096);
  strcpy((char *)b, "<<< Oracle VM VirtualBox Disk Image >>>\n"); /* text: magic must win */
  put_le32(b + 0x40, 0xbeda107f);
  put_le32(b + 0x44, 0x00010001);
  put_le32(b + 0x4c, 1);
  put_le64(b + 0x170, 64ull << 20);
  struct sniff_result r = sniff_bytes(b, 4096, "text/plain", 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_VDI);
  cr_assert_str_eq(r.subformat, "dynamic");
  cr_assert_eq(r.virtual_size, 64ull << 20);

  memset(b, 0, 4096);
  memcpy(b, "conectix", 8);
  memcpy(b + 28, "win ", 4); /* Hyper-V: qemu takes the footer's current size */
  put_be64(b + 48, 5ull << 30);
  put_be32(b + 60, 3);
  r = sniff_bytes(b, 4096, NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_VHD);
  cr_assert_str_eq(r.subformat, "dynamic");
  cr_assert_eq(r.virtual_size, 5ull << 30);
  memcpy(b + 28, "vpc ", 4); /* Virtual PC: qemu takes the CHS geometry */
  b[56] = 0x3f; b[57] = 0xff; b[58] = 16; b[59] = 63; /* 16383 cylinders */
  r = sniff_bytes(b, 4096, NULL, 0);
  cr_assert_eq(r.virtual_size, 16383ull * 16 * 63 * 512);
  cr_assert_str_eq(sniff_qemu_driver(r.format), "vpc");
  put_be32(b + 60, 4);
  r = sniff_bytes(b, 4096, NULL, 0);
  cr_assert(r.has_backing_file);

  memset(b, 0, 4096);
  memcpy(b, "vhdxfile", 8);
  r = sniff_bytes(b, 4096, NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_VHDX);
}

Test(sniff_table, wrappers)
{
  static const struct {
    size_t offset;
    const char *magic;
    size_t len;
    enum sniff_format format;
  } cases[] = {
    { 0, "\x1f\x8b\x08\x00", 4, SNIFF_FORMAT_GZIP },
    { 0, "\xfd" "7zXZ\0", 6, SNIFF_FORMAT_XZ },
    { 0, "\x28\xb5\x2f\xfd", 4, SNIFF_FORMAT_ZSTD },
    { 0, "BZh9", 4, SNIFF_FORMAT_BZIP2 },
    { 257, "ustar\0" "00", 8, SNIFF_FORMAT_TAR },
    { 257, "ustar  ", 7, SNIFF_FORMAT_TAR },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CLEANUP_FREE unsigned char *b = zeros(1024);
    memcpy(b + cases[i].offset, cases[i].magic, cases[i].len);
    if (cases[i].format == SNIFF_FORMAT_TAR)
      strcpy((char *)b, "disk.img");
    struct sniff_result r = sniff_bytes(b, 1024, NULL, 0);
    cr_assert_eq(r.format, cases[i].format, "case %zu: got %s", i, sniff_format_name(r.format));
    cr_assert(sniff_format_is_wrapper(r.format));
    cr_assert_null(sniff_qemu_driver(r.format));
  }
}

Test(sniff_table, raw_contents)
{
  CLEANUP_FREE unsigned char *b = zeros(SNIFF_BYTES);
  expect_raw(b, SNIFF_BYTES, SNIFF_CONTENT_ZEROS);
  expect_raw(b, 100, SNIFF_CONTENT_ZEROS); /* short and empty is still not text */

  memcpy(b + 0x8001, "CD001", 5);
  expect_raw(b, SNIFF_BYTES, SNIFF_CONTENT_ISO9660);
  expect_raw(b, SNIFF_ISO_BYTES, SNIFF_CONTENT_ISO9660);
  expect_raw(b, SNIFF_ISO_BYTES - 1, SNIFF_CONTENT_ZEROS); /* magic cut off: not seen */
  memset(b, 0, SNIFF_BYTES);

  memcpy(b, "LUKS\xba\xbe\x00\x02", 8);
  expect_raw(b, 4096, SNIFF_CONTENT_LUKS);
  struct sniff_result r = sniff_bytes(b, 4096, NULL, 0);
  cr_assert_eq(r.version, 2);
  cr_assert_eq(r.encryption, SNIFF_ENCRYPTION_LUKS);
  memset(b, 0, SNIFF_BYTES);

  memcpy(b, "XFSB", 4);
  expect_raw(b, 4096, SNIFF_CONTENT_XFS);
  memset(b, 0, SNIFF_BYTES);

  put_le16(b + 1080, 0xEF53);
  put_le32(b + 1024 + 24, 2);
  expect_raw(b, 4096, SNIFF_CONTENT_EXT);
  put_le32(b + 1024 + 24, 99); /* nonsense block size: just two bytes that look like a magic */
  expect_raw(b, 4096, SNIFF_CONTENT_ZEROS);
  memset(b, 0, SNIFF_BYTES);

  memcpy(b + 0x10040, "_BHRfS_M", 8);
  expect_raw(b, SNIFF_BYTES, SNIFF_CONTENT_BTRFS);
  expect_raw(b, SNIFF_BYTES - 1, SNIFF_CONTENT_ZEROS);
  memset(b, 0, SNIFF_BYTES);

  memcpy(b + 512, "LABELONE", 8);
  expect_raw(b, 4096, SNIFF_CONTENT_LVM);
  memset(b, 0, SNIFF_BYTES);

  b[0] = 0xeb; /* a boot sector jump, then an MBR with one Linux partition */
  b[446] = 0x80, b[446 + 4] = 0x83;
  put_le32(b + 446 + 8, 2048), put_le32(b + 446 + 12, 204800);
  b[510] = 0x55, b[511] = 0xAA;
  expect_raw(b, 4096, SNIFF_CONTENT_MBR);
  b[446 + 16] = 0x12; /* insane status byte in entry 2: not a partition table */
  expect_raw(b, 4096, SNIFF_CONTENT_UNKNOWN);
  memset(b, 0, SNIFF_BYTES);

  b[446 + 4] = 0xee; /* protective MBR + GPT header */
  put_le32(b + 446 + 8, 1), put_le32(b + 446 + 12, 0xffffffff);
  b[510] = 0x55, b[511] = 0xAA;
  memcpy(b + 512, "EFI PART", 8);
  expect_raw(b, 4096, SNIFF_CONTENT_GPT);
  memset(b + 512, 0, 8);
  memcpy(b + 4096, "EFI PART", 8); /* 4Kn disk */
  expect_raw(b, 8192, SNIFF_CONTENT_GPT);
}

Test(sniff_table, binary_without_signature_is_raw)
{
  CLEANUP_FREE unsigned char *b = zeros(SNIFF_BYTES);
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < SNIFF_BYTES; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    b[i] = (unsigned char)(x | 1); /* no NUL at all: must still not be text */
  }
  expect_raw(b, SNIFF_BYTES, SNIFF_CONTENT_UNKNOWN);
  struct sniff_result r = sniff_bytes(b, SNIFF_BYTES, "application/octet-stream", 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_RAW);
}

/* ---- refusals ---- */

static void expect_refused(const char *body, const char *type, enum sniff_format kind,
                           const char *wording)
{
  struct sniff_result r = sniff_bytes(body, strlen(body), type, -1);
  cr_assert_eq(r.format, kind, "\"%.20s\" got %s", body, sniff_format_name(r.format));
  cr_assert(strstr(r.message, "not a disk image") != NULL, "%s", r.message);
  cr_assert(strstr(r.message, "check the URL") != NULL, "%s", r.message);
  cr_assert(strstr(r.message, wording) != NULL, "want \"%s\" in: %s", wording, r.message);
}

Test(sniff_refuse, html_with_and_without_content_type)
{
  const char *page = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>"
                     "<form action=\"/login\"></form></body></html>\n";
  expect_refused(page, NULL, SNIFF_FORMAT_HTML,
                 "the source is an HTML page, not a disk image (the body starts with an HTML "
                 "tag: check the URL; a login or error page is common)");
  expect_refused(page, "text/html; charset=UTF-8", SNIFF_FORMAT_HTML,
                 "Content-Type text/html: check the URL; a login or error page is common)");
  expect_refused("\xef\xbb\xbf \r\n\t<html>\r\n<head><title>404 Not Found</title>", NULL,
                 SNIFF_FORMAT_HTML, "an HTML page");
  expect_refused("<HTML><BODY>Forbidden</BODY></HTML>", NULL, SNIFF_FORMAT_HTML, "HTML page");
  expect_refused("<h1>Bad Gateway</h1>", NULL, SNIFF_FORMAT_HTML, "HTML page");
}

Test(sniff_refuse, content_type_alone_refuses_unrecognised_binary)
{
  CLEANUP_FREE unsigned char *b = zeros(4096);
  for (size_t i = 0; i < 4096; i += 7)
    b[i] = 0xa5;
  struct sniff_result r = sniff_bytes(b, 4096, "Text/HTML", -1);
  cr_assert_eq(r.format, SNIFF_FORMAT_HTML);
  cr_assert(strstr(r.message, "the server answered with Content-Type text/html") != NULL, "%s",
            r.message);
  r = sniff_bytes(b, 4096, "application/xhtml+xml", -1);
  cr_assert_eq(r.format, SNIFF_FORMAT_HTML);
  r = sniff_bytes(b, 4096, "application/json", -1);
  cr_assert_eq(r.format, SNIFF_FORMAT_JSON);
  r = sniff_bytes(b, 4096, "application/problem+json", -1);
  cr_assert_eq(r.format, SNIFF_FORMAT_JSON);
  r = sniff_bytes(b, 4096, "application/xml", -1);
  cr_assert_eq(r.format, SNIFF_FORMAT_XML);
  r = sniff_bytes(b, 4096, "text/plain", -1);
  cr_assert_eq(r.format, SNIFF_FORMAT_TEXT);
  /* a content type with odd bytes is quoted only up to its first unsafe byte */
  r = sniff_bytes(b, 4096, "text/html\x1b[31m", -1);
  cr_assert(strchr(r.message, '\x1b') == NULL);
  /* binary types pass */
  r = sniff_bytes(b, 4096, "application/octet-stream", 0);
  r = sniff_bytes(b, 4096, "", 0);
}

Test(sniff_refuse, magic_beats_a_mislabelled_content_type)
{
  CLEANUP_FREE unsigned char *b = zeros(4096);
  memcpy(b, "QFI\xfb", 4);
  struct sniff_result r = sniff_bytes(b, 4096, "text/plain", 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_QCOW2);
  memset(b, 0, 4096);
  memcpy(b + 512, "EFI PART", 8);
  r = sniff_bytes(b, 4096, "text/html", 0);
  cr_assert_eq(r.content, SNIFF_CONTENT_GPT);
}

Test(sniff_refuse, json_xml_text_empty)
{
  expect_refused("{\"kind\":\"Status\",\"status\":\"Failure\",\"code\":403}", NULL,
                 SNIFF_FORMAT_JSON, "a JSON document, not a disk image");
  expect_refused("  [1,2,3]", NULL, SNIFF_FORMAT_JSON, "API error response");
  expect_refused("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                 "</Error>", "application/xml", SNIFF_FORMAT_XML, "an XML document");
  expect_refused("Not Found\n", NULL, SNIFF_FORMAT_TEXT, "plain text");
  expect_refused("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  disk.img\n",
                 NULL, SNIFF_FORMAT_TEXT, "a checksum file is common");
  expect_refused("Fehler: Datei nicht gefunden – überprüfen Sie die URL\n", NULL,
                 SNIFF_FORMAT_TEXT, "plain text");
  struct sniff_result r = sniff_bytes("", 0, NULL, -1);
  cr_assert_eq(r.format, SNIFF_FORMAT_EMPTY);
  cr_assert(strstr(r.message, "empty") != NULL);
}

Test(sniff_refuse, text_rules_need_no_nul_in_first_512)
{
  CLEANUP_FREE unsigned char *b = zeros(4096);
  memcpy(b, "<html>", 6); /* a NUL at byte 6: binary that starts with '<' */
  expect_raw(b, 4096, SNIFF_CONTENT_UNKNOWN);
  memset(b, 'A', 4096); /* text for 1000 bytes, then a NUL past 512: the window says text */
  b[1000] = 0;
  struct sniff_result r = sniff_bytes(b, 4096, NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_RAW, "a NUL inside the 4 KiB window is not text");
  b[1000] = 'A';
  r = sniff_bytes(b, 4096, NULL, -1);
  cr_assert_eq(r.format, SNIFF_FORMAT_TEXT);
  b[3000] = 0x01; /* a control character */
  expect_raw(b, 4096, SNIFF_CONTENT_UNKNOWN);
}

Test(sniff_names, names_are_stable)
{
  cr_assert_str_eq(sniff_format_name(SNIFF_FORMAT_RAW), "raw");
  cr_assert_str_eq(sniff_format_name(SNIFF_FORMAT_VHD), "vhd");
  cr_assert_str_eq(sniff_format_name(SNIFF_FORMAT_TEXT), "text");
  cr_assert_str_eq(sniff_format_name((enum sniff_format)99), "unknown");
  cr_assert_str_eq(sniff_content_name(SNIFF_CONTENT_ISO9660), "iso9660");
  cr_assert_str_eq(sniff_content_name((enum sniff_content)99), "unknown");
  cr_assert_str_eq(sniff_qemu_driver(SNIFF_FORMAT_QCOW2), "qcow2");
  cr_assert_null(sniff_qemu_driver(SNIFF_FORMAT_HTML));
  struct sniff_result r;
  sniff_buffer("QFI\xfb", 4, NULL, &r);
  char tiny[6];
  sniff_describe(&r, tiny, sizeof tiny);
  cr_assert_str_eq(tiny, "qcow2");
}

/* ---- real images ---- */

struct scratch {
  char dir[64];
};

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void run(const char *fmt, ...)
{
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char quiet[2100];
  snprintf(quiet, sizeof quiet, "(%s) >/dev/null 2>&1", cmd);
  cr_assert(system(quiet) == 0, "command failed: %s", cmd);
}

static bool have(const char *tool)
{
  char cmd[256];
  snprintf(cmd, sizeof cmd, "PATH=$PATH:/usr/sbin:/sbin command -v %s >/dev/null 2>&1", tool);
  return system(cmd) == 0;
}

static void scratch_make(struct scratch *s)
{
  snprintf(s->dir, sizeof s->dir, "/tmp/vimport-test-sniff-XXXXXX");
  cr_assert(mkdtemp(s->dir) != NULL);
}

static void scratch_remove(struct scratch *s)
{
  run("rm -rf '%s'", s->dir);
}

/* Sniff a file through the replay reader and check the replay gives back the whole
 * file unchanged. */
static struct sniff_result sniff_file(const char *dir, const char *name, const char *type,
                                      int want_rc)
{
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct stat st;
  cr_assert(stat(path, &st) == 0, "%s missing", path);
  struct sniff_result r;
  struct verr err = { 0 };
  struct vreader *replay = NULL;
  int rc = sniff_reader_new(file_reader(path), type, &replay, &r, &err);
  cr_assert_eq(rc, want_rc, "%s: %s", name, err.message);
  if (rc == 0) {
    /* the replayed stream is the file, byte for byte */
    CLEANUP_FREE unsigned char *want = malloc((size_t)st.st_size + 1);
    CLEANUP_FREE unsigned char *got = malloc((size_t)st.st_size + 1);
    int fd = open(path, O_RDONLY);
    cr_assert(read(fd, want, (size_t)st.st_size) == st.st_size);
    close(fd);
    cr_assert(vreader_read_full(replay, got, (size_t)st.st_size + 1, &err)
              == (ssize_t)st.st_size);
    cr_assert(memcmp(want, got, (size_t)st.st_size) == 0);
    vreader_close(replay);
  } else {
    cr_assert_null(replay);
    cr_assert_eq(err.code, VERR_FORMAT);
    cr_assert_str_eq(err.message, r.message);
  }
  char line[512];
  sniff_describe(&r, line, sizeof line);
  cr_log_info("%s: %s", name, line);
  return r;
}

Test(sniff_real, qemu_img_formats)
{
  struct scratch s;
  scratch_make(&s);
  const char *d = s.dir;
  run("cd %s && qemu-img create -f qcow2 a.qcow2 64M", d);
  run("cd %s && qemu-img create -f qcow2 -o compat=0.10,cluster_size=4096 v2.qcow2 32M", d);
  run("cd %s && qemu-img create -f qcow2 -b a.qcow2 -F qcow2 child.qcow2", d);
  run("cd %s && qemu-img create -f qcow2 -o compression_type=zstd z.qcow2 16M", d);
  /* qemu-img 7.2 times its PBKDF2 calibration with the thread's CPU clock and gives up
   * ("Unable to get accurate CPU usage") when a round measures 0 ms: about one run in
   * six on this 2-core VM. A few tries make the fixture dependable. */
  run("cd %s && for try in 1 2 3 4 5; do qemu-img create -f qcow2 --object secret,id=s0,"
      "data=pw -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 luks.qcow2 "
      "16M && exit 0; done; exit 1", d);
  run("cd %s && qemu-img create -f vmdk a.vmdk 64M", d);
  run("cd %s && qemu-img create -f vmdk -o subformat=streamOptimized so.vmdk 64M", d);
  run("cd %s && qemu-img create -f vmdk -o subformat=monolithicFlat flat.vmdk 1M", d);
  run("cd %s && qemu-img create -f vpc a.vhd 64M", d);
  run("cd %s && qemu-img create -f vpc -o subformat=fixed fixed.vhd 8M", d);
  run("cd %s && qemu-img create -f vhdx a.vhdx 64M", d);
  run("cd %s && qemu-img create -f vdi a.vdi 64M", d);
  run("cd %s && qemu-img create -f vdi -o static=on static.vdi 4M", d);

  struct sniff_result r = sniff_file(d, "a.qcow2", NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_QCOW2);
  cr_assert_eq(r.version, 3);
  cr_assert_eq(r.virtual_size, 64ull << 20);
  cr_assert_eq(r.cluster_bits, 16);
  cr_assert(!r.has_backing_file);
  cr_assert_eq(r.encryption, SNIFF_ENCRYPTION_NONE);
  r = sniff_file(d, "v2.qcow2", NULL, 0);
  cr_assert_eq(r.version, 2);
  cr_assert_eq(r.cluster_bits, 12);
  r = sniff_file(d, "child.qcow2", NULL, 0);
  cr_assert(r.has_backing_file);
  cr_assert_eq(r.virtual_size, 64ull << 20);
  r = sniff_file(d, "z.qcow2", NULL, 0);
  cr_assert_eq(r.compression_type, 1);
  r = sniff_file(d, "luks.qcow2", NULL, 0);
  cr_assert_eq(r.encryption, SNIFF_ENCRYPTION_LUKS);

  r = sniff_file(d, "a.vmdk", NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_VMDK);
  cr_assert_str_eq(r.subformat, "monolithicSparse");
  cr_assert_eq(r.virtual_size, 64ull << 20);
  r = sniff_file(d, "so.vmdk", "application/octet-stream", 0);
  cr_assert_str_eq(r.subformat, "streamOptimized");
  cr_assert_eq(r.virtual_size, 64ull << 20);
  r = sniff_file(d, "flat.vmdk", NULL, -1);
  cr_assert_str_eq(r.subformat, "monolithicFlat");
  r = sniff_file(d, "flat-flat.vmdk", NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_RAW);
  cr_assert_eq(r.content, SNIFF_CONTENT_ZEROS);

  r = sniff_file(d, "a.vhd", NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_VHD);
  cr_assert_str_eq(r.subformat, "dynamic");
  cr_assert(r.virtual_size >= 64ull << 20 && r.virtual_size < 65ull << 20,
            "qemu rounds vhd sizes to CHS geometry: %llu", (unsigned long long)r.virtual_size);
  r = sniff_file(d, "fixed.vhd", NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_RAW, "a fixed VHD has its footer at the end only");

  r = sniff_file(d, "a.vhdx", NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_VHDX);
  r = sniff_file(d, "a.vdi", NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_VDI);
  cr_assert_str_eq(r.subformat, "dynamic");
  cr_assert_eq(r.virtual_size, 64ull << 20);
  r = sniff_file(d, "static.vdi", NULL, 0);
  cr_assert_str_eq(r.subformat, "fixed");
  scratch_remove(&s);
}

Test(sniff_real, partitions_filesystems_and_converted_images)
{
  struct scratch s;
  scratch_make(&s);
  const char *d = s.dir;
  if (!have("sgdisk") || !have("sfdisk") || !have("mkfs.ext4"))
    cr_skip_test("needs sgdisk, sfdisk, mkfs.ext4 (gdisk, fdisk, e2fsprogs)");
  run("cd %s && truncate -s 64M gpt.raw && sgdisk -n 1:2048:+16M gpt.raw", d);
  run("cd %s && truncate -s 64M mbr.raw && echo 'start=2048, size=20480, type=83' | "
      "sfdisk mbr.raw", d);
  run("cd %s && truncate -s 64M ext.raw && PATH=$PATH:/usr/sbin mkfs.ext4 -q -F ext.raw", d);
  run("cd %s && qemu-img convert -f raw -O qcow2 gpt.raw gpt.qcow2", d);
  run("cd %s && qemu-img convert -f raw -O vmdk -o subformat=streamOptimized mbr.raw mbr.vmdk", d);
  run("cd %s && qemu-img convert -f qcow2 -O raw gpt.qcow2 back.raw", d);

  struct sniff_result r = sniff_file(d, "gpt.raw", NULL, 0);
  cr_assert_eq(r.content, SNIFF_CONTENT_GPT);
  r = sniff_file(d, "mbr.raw", NULL, 0);
  cr_assert_eq(r.content, SNIFF_CONTENT_MBR);
  r = sniff_file(d, "ext.raw", NULL, 0);
  cr_assert_eq(r.content, SNIFF_CONTENT_EXT);
  r = sniff_file(d, "gpt.qcow2", NULL, 0);
  cr_assert_eq(r.format, SNIFF_FORMAT_QCOW2);
  cr_assert_eq(r.virtual_size, 64ull << 20);
  r = sniff_file(d, "mbr.vmdk", NULL, 0);
  cr_assert_str_eq(r.subformat, "streamOptimized");
  r = sniff_file(d, "back.raw", NULL, 0);
  cr_assert_eq(r.content, SNIFF_CONTENT_GPT);
  scratch_remove(&s);
}

Test(sniff_real, optional_tools_iso_xfs_btrfs_luks)
{
  struct scratch s;
  scratch_make(&s);
  const char *d = s.dir;
  int ran = 0;
  struct sniff_result r;
  if (have("genisoimage")) {
    run("cd %s && mkdir iso && echo hi > iso/readme && genisoimage -quiet -o a.iso iso", d);
    r = sniff_file(d, "a.iso", NULL, 0);
    cr_assert_eq(r.content, SNIFF_CONTENT_ISO9660);
    ran++;
  }
  if (have("mkfs.xfs")) {
    run("cd %s && truncate -s 320M x.raw && PATH=$PATH:/usr/sbin mkfs.xfs -q x.raw", d);
    r = sniff_file(d, "x.raw", NULL, 0);
    cr_assert_eq(r.content, SNIFF_CONTENT_XFS);
    ran++;
  }
  if (have("mkfs.btrfs")) {
    run("cd %s && truncate -s 128M b.raw && PATH=$PATH:/usr/sbin mkfs.btrfs -q b.raw", d);
    r = sniff_file(d, "b.raw", NULL, 0);
    cr_assert_eq(r.content, SNIFF_CONTENT_BTRFS);
    ran++;
  }
  if (have("cryptsetup")) {
    run("cd %s && truncate -s 32M l.raw && printf pw | PATH=$PATH:/usr/sbin cryptsetup -q "
        "luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 l.raw -", d);
    r = sniff_file(d, "l.raw", NULL, 0);
    cr_assert_eq(r.content, SNIFF_CONTENT_LUKS);
    cr_assert_eq(r.version, 2);
    ran++;
  }
  scratch_remove(&s);
  if (ran == 0)
    cr_skip_test("none of genisoimage, xfsprogs, btrfs-progs, cryptsetup-bin is installed");
}

Test(sniff_real, compressed_wrappers_and_tar)
{
  struct scratch s;
  scratch_make(&s);
  const char *d = s.dir;
  run("cd %s && qemu-img create -f qcow2 a.qcow2 16M", d);
  run("cd %s && gzip -k a.qcow2 && xz -k a.qcow2 && zstd -q a.qcow2 && bzip2 -k a.qcow2 && "
      "tar cf a.tar a.qcow2", d);
  static const struct {
    const char *name;
    enum sniff_format format;
  } cases[] = {
    { "a.qcow2.gz", SNIFF_FORMAT_GZIP },   { "a.qcow2.xz", SNIFF_FORMAT_XZ },
    { "a.qcow2.zst", SNIFF_FORMAT_ZSTD },  { "a.qcow2.bz2", SNIFF_FORMAT_BZIP2 },
    { "a.tar", SNIFF_FORMAT_TAR },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct sniff_result r = sniff_file(d, cases[i].name, "application/x-gzip", 0);
    cr_assert_eq(r.format, cases[i].format, "%s: %s", cases[i].name,
                 sniff_format_name(r.format));
  }
  scratch_remove(&s);
}

/* ---- the replay reader ---- */

static unsigned char *pattern(size_t len)
{
  unsigned char *p = malloc(len ? len : 1);
  cr_assert(p != NULL);
  uint32_t x = 88172645u;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    p[i] = (unsigned char)x;
  }
  if (len > 0)
    p[0] = 0; /* binary from the first byte, so even a 1-byte stream is not text */
  return p;
}

static void replay_check(const unsigned char *data, size_t len, size_t chunk, size_t step)
{
  struct sniff_result r;
  struct verr err = { 0 };
  struct vreader *replay = NULL;
  struct vreader *lower = mem_reader(data, len, chunk);
  struct mem_source *m = lower->state;
  int reads_after_end = 0;
  m->reads_after_end_out = &reads_after_end;
  cr_assert(sniff_reader_new(lower, NULL, &replay, &r, &err) == 0, "%zu: %s", len, err.message);
  cr_assert_eq(r.bytes_seen, len < SNIFF_BYTES ? len : SNIFF_BYTES);
  CLEANUP_FREE unsigned char *got = malloc(len + 1);
  CLEANUP_FREE unsigned char *buf = malloc(step);
  size_t total = 0;
  for (;;) {
    ssize_t n = replay->ops->read(replay, buf, step, &err);
    cr_assert(n >= 0, "%s", err.message);
    cr_assert((size_t)n <= step);
    if (n == 0)
      break;
    cr_assert(total + (size_t)n <= len, "replay returned more bytes than the stream holds");
    memcpy(got + total, buf, (size_t)n);
    total += (size_t)n;
  }
  cr_assert_eq(total, len, "len %zu chunk %zu step %zu", len, chunk, step);
  cr_assert(memcmp(got, data, len) == 0, "len %zu chunk %zu step %zu", len, chunk, step);
  cr_assert_eq(m->served, len, "the source must be read exactly once");
  cr_assert_eq(replay->ops->read(replay, buf, step, &err), 0, "end stays the end");
  vreader_close(replay);
  cr_assert(reads_after_end <= 1, "no reads of lower after it ended during the sniff");
}

Test(sniff_replay, exact_bytes_for_every_length_chunk_and_read_size)
{
  static const size_t lengths[] = { 1, 100, 4096, SNIFF_BYTES - 1, SNIFF_BYTES,
                                    SNIFF_BYTES + 1, 3 * SNIFF_BYTES + 17 };
  static const size_t chunks[] = { 1, 4093, SIZE_MAX };
  CLEANUP_FREE unsigned char *data = pattern(3 * SNIFF_BYTES + 17);
  for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++)
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++)
      for (size_t step = 1; step <= 67; step++)
        replay_check(data, lengths[l], chunks[c], step);
  static const size_t big_steps[] = { 4095, 4096, 65536, SNIFF_BYTES, SNIFF_BYTES + 1, 1 << 20 };
  for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++)
    for (size_t s = 0; s < sizeof big_steps / sizeof big_steps[0]; s++)
      replay_check(data, lengths[l], 65537, big_steps[s]);
}

Test(sniff_replay, refused_stream_closes_lower)
{
  const char *page = "<html><body>login</body></html>";
  bool closed = false;
  struct vreader *lower = mem_reader(page, strlen(page), 5);
  ((struct mem_source *)lower->state)->closed = &closed;
  struct sniff_result r;
  struct verr err = { 0 };
  struct vreader *replay = (struct vreader *)1;
  cr_assert(sniff_reader_new(lower, "text/html", &replay, &r, &err) == -1);
  cr_assert_null(replay);
  cr_assert(closed);
  cr_assert_eq(err.code, VERR_FORMAT);
  cr_assert_eq(r.format, SNIFF_FORMAT_HTML);
  cr_assert(strstr(err.message, "an HTML page, not a disk image") != NULL, "%s", err.message);

  closed = false;
  lower = mem_reader("", 0, 5);
  ((struct mem_source *)lower->state)->closed = &closed;
  cr_assert(sniff_reader_new(lower, NULL, &replay, &r, &err) == -1);
  cr_assert(closed);
  cr_assert_eq(r.format, SNIFF_FORMAT_EMPTY);
}

Test(sniff_replay, lower_error_while_sniffing)
{
  CLEANUP_FREE unsigned char *data = pattern(SNIFF_BYTES * 2);
  struct vreader *lower = mem_reader(data, SNIFF_BYTES * 2, 4096);
  ((struct mem_source *)lower->state)->fail_at = 10000;
  struct sniff_result r;
  struct verr err = { 0 };
  struct vreader *replay = NULL;
  cr_assert(sniff_reader_new(lower, NULL, &replay, &r, &err) == -1);
  cr_assert_null(replay);
  cr_assert_eq(err.code, VERR_IO);
  cr_assert(strstr(err.message, "start of the source") != NULL, "%s", err.message);
}

/* The pipeline's order: source -> digest tap -> sniff replay. The digest covers every
 * byte exactly once even though the sniffer read ahead. */
Test(sniff_replay, digest_below_replay_hashes_each_byte_once)
{
  size_t len = 2 * SNIFF_BYTES + 999;
  CLEANUP_FREE unsigned char *data = pattern(len);
  struct verr err = { 0 };
  struct vreader *tap = NULL, *replay = NULL;
  cr_assert(digest_tap_new(mem_reader(data, len, 3000), "sha256", &tap, &err) == 0);
  struct vreader *tap_view = tap;
  struct sniff_result r;
  cr_assert(sniff_reader_new(TAKE_PTR(tap), NULL, &replay, &r, &err) == 0, "%s", err.message);
  CLEANUP_FREE unsigned char *got = malloc(len);
  cr_assert(vreader_read_full(replay, got, len, &err) == (ssize_t)len);
  char buf[1];
  cr_assert(replay->ops->read(replay, buf, 1, &err) == 0);
  cr_assert(digest_tap_bytes(tap_view) == len);
  char calculated[CHECKSUM_STRING_MAX];
  cr_assert(digest_tap_final(tap_view, calculated, sizeof calculated, &err) == 0);
  vreader_close(replay);

  struct vreader *one = NULL;
  cr_assert(digest_tap_new(mem_reader(data, len, SIZE_MAX), "sha256", &one, &err) == 0);
  cr_assert(vreader_read_full(one, got, len, &err) == (ssize_t)len);
  char expected[CHECKSUM_STRING_MAX];
  cr_assert(digest_tap_final(one, expected, sizeof expected, &err) == 0);
  vreader_close(one);
  cr_assert_str_eq(calculated, expected);
}
