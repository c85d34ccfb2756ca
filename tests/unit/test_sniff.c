/* Unit tests for pkg/sniff on synthetic headers: a table for every format and every
 * refusal (HTML, JSON, XML, text, a Content-Type alone or mislabelled), and the stable
 * names of formats and contents. Real images are tested in test_sniff_real.c, the replay
 * reader in test_sniff_replay.c.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "sniff/sniff.h"

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
