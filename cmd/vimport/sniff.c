/* vimport sniff: say what a source is, without importing it.
 *
 *   vimport sniff [--json] [--ca-file FILE] [--ca-dir DIR] [--insecure] FILE|URL|-
 *
 * The source is opened like an import source (pkg/source: a path, file://, http(s)://
 * or "-") and its first bytes are classified by pkg/sniff. Wrappers are looked through,
 * at most SNIFF_MAX_LAYERS deep: gzip, xz and zstd are decompressed on the fly
 * (pkg/decompress), a tar archive is entered at its first member. bzip2 is named but not
 * opened (vimport has no bzip2 decoder). Only the first bytes are read.
 *
 * Two things the start of a stream cannot tell, filled in when the source allows it:
 *   - a fixed VHD is raw bytes with a 512-byte "conectix" footer at the end: for a file or
 *     an HTTP server that honours Range, the last 512 bytes are read too, and the
 *     source is called "vhd (fixed)" with the footer's virtual size;
 *   - a VHDX keeps its virtual size far from the start: for a local file it is asked of
 *     qemu-nbd through pkg/nbd (when qemu-nbd is installed).
 *
 * Exit status: 0 when the source may be a disk image, 1 when it is refused (an HTML
 * page, text, ...) or cannot be read, 2 for a bad command line.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "core/error.h"
#include "core/stream.h"
#include "decompress/decompress.h"
#include "nbd/nbd.h"
#include "sniff/sniff.h"
#include "source/source.h"

#define SNIFF_MAX_LAYERS 4
#define TAR_BLOCK 512

struct sniff_report {
  char source[2048];       /* redacted location */
  const char *kind;        /* "file", "http", "stdin" */
  bool local_file;         /* a path qemu-nbd can open itself (source_local_path) */
  int64_t source_size;     /* bytes of the source as served, -1 unknown */
  enum sniff_format wrappers[SNIFF_MAX_LAYERS]; /* outermost first */
  size_t n_wrappers;
  char tar_member[101];    /* first member's name when a tar was entered */
  int64_t tar_member_size;
  struct sniff_result inner; /* the innermost classification */
  bool fixed_vhd;          /* raw start + conectix footer at the end */
  uint64_t virtual_size;   /* best known guest size, 0 unknown */
  const char *size_from;   /* where virtual_size came from */
};

/* ---- looking through wrappers ------------------------------------------------------ */

static bool decompress_kind_of(enum sniff_format f, enum decompress_kind *kind)
{
  switch (f) {
  case SNIFF_FORMAT_GZIP: *kind = DECOMPRESS_GZIP; return true;
  case SNIFF_FORMAT_XZ: *kind = DECOMPRESS_XZ; return true;
  case SNIFF_FORMAT_ZSTD: *kind = DECOMPRESS_ZSTD; return true;
  default: return false;
  }
}

static uint64_t tar_octal(const unsigned char *p, size_t n)
{
  uint64_t v = 0;
  for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '7'; i++)
    v = v * 8 + (uint64_t)(p[i] - '0');
  return v;
}

/* Consume the first tar header of `r`, leaving it at the member's data. */
static int tar_enter(struct vreader *r, struct sniff_report *rep, struct verr *err)
{
  unsigned char hdr[TAR_BLOCK];
  ssize_t n = vreader_read_full(r, hdr, sizeof hdr, err);
  if (n < 0)
    return -1;
  if (n < TAR_BLOCK)
    return verr_set(err, VERR_FORMAT, "the tar archive ends inside its first header");
  size_t len = strnlen((const char *)hdr, 100);
  for (size_t i = 0; i < len; i++) /* a name from the source: printable ASCII only */
    rep->tar_member[i] = hdr[i] >= 0x20 && hdr[i] < 0x7f ? (char)hdr[i] : '?';
  rep->tar_member[len] = '\0';
  rep->tar_member_size = (int64_t)tar_octal(hdr + 124, 12);
  return 0;
}

/* Classify `*r` (owned), then open one wrapper and classify again, up to the limit.
 * On return *r is the top of the reader chain (NULL if it was closed). */
static int sniff_layers(struct vreader **r, const char *content_type, struct sniff_report *rep,
                        struct verr *err)
{
  for (;;) {
    struct vreader *replay = NULL;
    int rc = sniff_reader_new(*r, content_type, &replay, &rep->inner, err);
    *r = replay;
    if (rc < 0)
      return rep->inner.refused ? 0 : -1; /* a refusal is an answer, not an error */
    content_type = NULL; /* the server's type described only the outer layer */
    enum sniff_format f = rep->inner.format;
    enum decompress_kind kind;
    if (!sniff_format_is_wrapper(f) || rep->n_wrappers == SNIFF_MAX_LAYERS)
      return 0;
    if (f == SNIFF_FORMAT_TAR) {
      if (tar_enter(*r, rep, err) < 0)
        return -1;
    } else if (decompress_kind_of(f, &kind)) {
      struct vreader *dec = NULL;
      rc = decompress_reader_new(*r, kind, 0, &dec, err);
      *r = dec;
      if (rc < 0)
        return -1;
    } else {
      return 0; /* bzip2: named, not opened */
    }
    rep->wrappers[rep->n_wrappers++] = f;
  }
}

/* ---- what the start cannot tell ---------------------------------------------------- */

/* A fixed VHD: a footer in the last 512 bytes (sniff_vhd_fixed_footer). */
static void check_vhd_footer(struct vreader *src, const struct source_info *info,
                             struct sniff_report *rep)
{
  unsigned char footer[SNIFF_VHD_FOOTER_BYTES];
  struct verr err = { 0 };
  if (rep->n_wrappers > 0 || rep->inner.format != SNIFF_FORMAT_RAW || rep->inner.refused)
    return;
  if (info->content_length < 1024 || !info->accepts_ranges)
    return;
  if (source_pread(src, footer, sizeof footer, (uint64_t)info->content_length - 512, &err) < 0)
    return; /* not seekable after all: the start is all we know */
  if (!sniff_vhd_fixed_footer(footer, (uint64_t)info->content_length, &rep->virtual_size))
    return;
  rep->fixed_vhd = true;
  rep->size_from = "vhd footer";
}

/* VHDX keeps its size in a metadata region: ask qemu-nbd, for local files only. */
static void ask_qemu_size(struct sniff_report *rep)
{
  if (!rep->local_file || rep->n_wrappers > 0 ||
      rep->inner.format != SNIFF_FORMAT_VHDX)
    return;
  struct nbd_guest_opts opts = { .file = rep->source, .format = "vhdx" };
  struct nbd_guest *g = NULL;
  struct verr err = { 0 };
  if (nbd_guest_open(&opts, &g, &err) < 0) {
    fprintf(stderr, "vimport sniff: no virtual size for the vhdx: %s\n", err.message);
    return;
  }
  rep->virtual_size = nbd_guest_size(g);
  rep->size_from = "qemu-nbd";
  nbd_guest_free(g);
}

static void fill_size(struct sniff_report *rep)
{
  const struct sniff_result *in = &rep->inner;
  if (rep->virtual_size != 0 || in->refused)
    return;
  if (in->virtual_size != 0) {
    rep->virtual_size = in->virtual_size;
    rep->size_from = "header";
  } else if (in->format == SNIFF_FORMAT_RAW && rep->n_wrappers == 0 && rep->source_size > 0) {
    rep->virtual_size = (uint64_t)rep->source_size;
    rep->size_from = "source size";
  } else if (in->format == SNIFF_FORMAT_RAW && rep->tar_member[0] && rep->n_wrappers > 0 &&
             rep->wrappers[rep->n_wrappers - 1] == SNIFF_FORMAT_TAR) {
    rep->virtual_size = (uint64_t)rep->tar_member_size;
    rep->size_from = "tar member size";
  }
}

/* ---- output ----------------------------------------------------------------------- */

static const char *format_name(const struct sniff_report *rep)
{
  return rep->fixed_vhd ? "vhd" : sniff_format_name(rep->inner.format);
}

static const char *subformat(const struct sniff_report *rep)
{
  return rep->fixed_vhd ? "fixed" : rep->inner.subformat;
}

static void describe(const struct sniff_report *rep, char *buf, size_t size)
{
  struct sniff_result r = rep->inner;
  if (rep->fixed_vhd) {
    r.format = SNIFF_FORMAT_VHD;
    snprintf(r.subformat, sizeof r.subformat, "fixed");
  }
  r.virtual_size = rep->virtual_size;
  sniff_describe(&r, buf, size);
  size_t used = strlen(buf);
  if (rep->fixed_vhd && used < size)
    snprintf(buf + used, size - used, ", footer at the end; holds %s",
             sniff_content_name(r.content));
  else if (r.format == SNIFF_FORMAT_VHDX && rep->virtual_size && used < size)
    snprintf(buf + used, size - used, ", virtual size %llu bytes",
             (unsigned long long)rep->virtual_size);
}

static void json_string(const char *s)
{
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20 || c >= 0x7f) /* our strings are ASCII; anything else is escaped */
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static void print_json(const struct sniff_report *rep, const char *desc)
{
  const struct sniff_result *in = &rep->inner;
  const char *driver = rep->fixed_vhd ? "vpc" : sniff_qemu_driver(in->format);
  printf("{\"source\":");
  json_string(rep->source);
  printf(",\"kind\":\"%s\",\"format\":\"%s\",\"subformat\":", rep->kind, format_name(rep));
  json_string(subformat(rep));
  printf(",\"compression\":[");
  for (size_t i = 0; i < rep->n_wrappers; i++)
    printf("%s\"%s\"", i ? "," : "", sniff_format_name(rep->wrappers[i]));
  printf("],\"content\":\"%s\",\"virtualSize\":", sniff_content_name(in->content));
  if (rep->virtual_size)
    printf("%llu,\"virtualSizeFrom\":\"%s\"", (unsigned long long)rep->virtual_size,
           rep->size_from);
  else
    printf("null");
  printf(",\"qemuDriver\":");
  if (driver != NULL && !in->refused)
    printf("\"%s\"", driver);
  else
    printf("null");
  if (rep->tar_member[0]) {
    printf(",\"tarMember\":");
    json_string(rep->tar_member);
  }
  printf(",\"refused\":%s,\"message\":", in->refused ? "true" : "false");
  json_string(in->message);
  printf(",\"description\":");
  json_string(desc);
  printf("}\n");
}

static void print_text(const struct sniff_report *rep, const char *desc)
{
  const struct sniff_result *in = &rep->inner;
  printf("source:       %s (%s", rep->source, rep->kind);
  if (rep->source_size >= 0)
    printf(", %lld bytes", (long long)rep->source_size);
  printf(")\nformat:       %s\n", format_name(rep));
  if (subformat(rep)[0])
    printf("subformat:    %s\n", subformat(rep));
  printf("compression:  ");
  if (rep->n_wrappers == 0)
    printf("none");
  for (size_t i = 0; i < rep->n_wrappers; i++)
    printf("%s%s", i ? " > " : "", sniff_format_name(rep->wrappers[i]));
  if (rep->tar_member[0])
    printf(" (first member %s, %lld bytes)", rep->tar_member, (long long)rep->tar_member_size);
  printf("\ncontent:      %s\n", sniff_content_name(in->content));
  if (rep->virtual_size)
    printf("virtual size: %llu (from the %s)\n", (unsigned long long)rep->virtual_size,
           rep->size_from);
  printf("description:  %s\n", desc);
}

/* ---- the command ------------------------------------------------------------------ */

static int sniff_source(const struct source_opts *sopts, struct sniff_report *rep,
                        struct verr *err)
{
  struct vreader *r = NULL;
  if (source_open(sopts, &r, err) < 0)
    return -1;
  struct vreader *src = r; /* borrowed: the reader chain owns it from here on */
  const struct source_info *info = source_info(src);
  snprintf(rep->source, sizeof rep->source, "%s", info->location);
  rep->kind = info->kind;
  rep->local_file = source_local_path(src) != NULL;
  rep->source_size = info->content_length;
  char content_type[SOURCE_INFO_STR];
  snprintf(content_type, sizeof content_type, "%s", info->content_type);
  int rc = sniff_layers(&r, content_type[0] ? content_type : NULL, rep, err);
  if (rc == 0 && r != NULL) { /* r == NULL: refused, and the source is closed already */
    check_vhd_footer(src, source_info(src), rep);
    ask_qemu_size(rep);
    fill_size(rep);
  }
  vreader_close(r);
  return rc;
}

static void sniff_usage(FILE *out)
{
  fputs("usage: vimport sniff [--json] [--ca-file FILE] [--ca-dir DIR] [--insecure] FILE|URL|-\n"
        "\n"
        "Say what a source is: format and subformat, compression, partition table or\n"
        "filesystem, virtual size. Reads only the first bytes (and, for a possible fixed\n"
        "VHD, the last 512).\n"
        "  -j, --json          one line of JSON instead of text\n"
        "      --ca-file FILE  extra PEM CA bundle for https\n"
        "      --ca-dir DIR    directory of extra PEM CA files for https\n"
        "  -k, --insecure      do not verify the https certificate\n"
        "Exit status: 0 a possible disk image, 1 refused or unreadable, 2 bad usage.\n",
        out);
}

int cmd_sniff(int argc, char **argv)
{
  static const struct option longopts[] = {
    { "json", no_argument, NULL, 'j' },
    { "ca-file", required_argument, NULL, 'C' },
    { "ca-dir", required_argument, NULL, 'D' },
    { "insecure", no_argument, NULL, 'k' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct source_opts sopts = { 0 };
  bool json = false;
  int c;
  while ((c = getopt_long(argc, argv, "jkh", longopts, NULL)) != -1) {
    switch (c) {
    case 'j': json = true; break;
    case 'C': sopts.ca_file = optarg; break;
    case 'D': sopts.ca_dir = optarg; break;
    case 'k': sopts.insecure_skip_verify = 1; break;
    case 'h': sniff_usage(stdout); return 0;
    default: sniff_usage(stderr); return 2;
    }
  }
  if (argc - optind != 1) {
    sniff_usage(stderr);
    return 2;
  }
  sopts.url = argv[optind];
  struct sniff_report rep = { .kind = "" };
  struct verr err = { 0 };
  if (sniff_source(&sopts, &rep, &err) < 0) {
    char where[2048];
    verr_redact_url(sopts.url, where, sizeof where);
    fprintf(stderr, "vimport sniff: %s: %s\n", where, err.message);
    return 1;
  }
  char desc[512];
  describe(&rep, desc, sizeof desc);
  if (json)
    print_json(&rep, desc);
  else
    print_text(&rep, desc);
  return rep.inner.refused ? 1 : 0;
}
