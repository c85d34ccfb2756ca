/* vimport pipeline: see pipeline.h. Each step is one function over `struct import_run`,
 * which owns everything the import holds; import_run_free() releases it in one place. */
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkhash/blkhash.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "decompress/decompress.h"
#include "digest/digest.h"
#include "nbd/nbd.h"
#include "qcow2/qcow2.h"
#include "sniff/sniff.h"
#include "source/source.h"
#include "target/target.h"
#include "verify/verify.h"

struct import_run {
  const struct import_spec *spec;
  struct pipeline_opts opts;
  struct pipeline_result *res;
  struct vreader *chain;  /* the top reader; owns every reader below it */
  struct vreader *source; /* borrowed from the chain: for source_info() */
  struct vreader *tap;    /* borrowed from the chain: the source digest */
  struct sniff_result sniff;
  struct target *target;
  /* Write-time block hash of the guest content: `hash` for decoders that emit in guest
   * order (raw), `unordered` for those that do not (qcow2). One of them is set. */
  struct blkhash *hash;
  struct blkhash_unordered *unordered;
  struct blockmap *written_map;
  struct blkhash_opts hash_opts;
  struct vsink guard;    /* the target sink behind a check for cancellation */
  bool writing_started;  /* some extent reached the target */
};

static void import_run_free(struct import_run *run)
{
  vreader_close(run->chain);
  target_free(run->target);
  blkhash_free(run->hash);
  blkhash_unordered_free(run->unordered);
  blockmap_free(run->written_map);
}

static unsigned hash_threads(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 2 ? 2 : n > 8 ? 8 : (unsigned)n;
}

static void add_verified(struct pipeline_result *res, const char *stage)
{
  if (res->n_verified < PIPELINE_MAX_VERIFIED)
    res->verified[res->n_verified++] = stage;
}

/* ---- source ------------------------------------------------------------------------- */

/* "Name: value" lines for the source; the returned array and strings are owned. */
static char **header_lines(const struct spec_http *http, struct verr *err)
{
  char **lines = calloc(http->n_headers + 1, sizeof *lines);
  if (lines == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory"), NULL;
  for (size_t i = 0; i < http->n_headers; i++) {
    if (asprintf(&lines[i], "%s: %s", http->headers[i].name, http->headers[i].value) < 0) {
      lines[i] = NULL;
      verr_set(err, VERR_NOMEM, "out of memory");
      for (size_t j = 0; j < i; j++)
        free(lines[j]);
      free(lines);
      return NULL;
    }
  }
  return lines;
}

static void free_lines(char **lines, size_t n)
{
  for (size_t i = 0; lines != NULL && i < n; i++) {
    explicit_bzero(lines[i], strlen(lines[i])); /* header values may be secrets */
    free(lines[i]);
  }
  free(lines);
}

static int open_source(struct import_run *run, struct verr *err)
{
  const struct import_spec *spec = run->spec;
  struct source_opts opts = { .retries = spec->retries, .stall_timeout_s = spec->stall_timeout_seconds };
  char **lines = NULL;
  if (spec->source.kind == SPEC_SOURCE_FILE) {
    opts.url = spec->source.file_path;
  } else {
    const struct spec_http *http = &spec->source.http;
    if ((lines = header_lines(http, err)) == NULL)
      return -1;
    opts.url = http->url;
    opts.ca_dir = http->cert_dir;
    opts.insecure_skip_verify = http->insecure_skip_verify;
    opts.basic_user = http->basic_auth_user;
    opts.basic_password = http->basic_auth_password;
    opts.extra_headers = (const char *const *)lines;
    opts.n_extra_headers = http->n_headers;
  }
  int r = source_open(&opts, &run->source, err);
  free_lines(lines, spec->source.kind == SPEC_SOURCE_HTTP ? spec->source.http.n_headers : 0);
  if (r < 0)
    return -1;
  run->chain = run->source;
  const struct source_info *info = source_info(run->source);
  vlog_info("source", "opened %s %s: content type '%s', length %lld", info->kind, info->location,
            info->content_type, (long long)info->content_length);
  return 0;
}

static const char *checksum_algorithm(const struct import_spec *spec)
{
  if (spec->source.kind == SPEC_SOURCE_HTTP && spec->source.http.checksum.alg != SPEC_CHECKSUM_NONE)
    return spec_checksum_alg_name(spec->source.http.checksum.alg);
  return "sha256"; /* reported even when nothing is expected */
}

/* A fixed VHD starts like any raw disk; its footer is in the last 512 bytes. Where the
 * source can be read by range, look there before anything is written. */
static void detect_fixed_vhd(struct import_run *run)
{
  const struct source_info *info = source_info(run->source);
  unsigned char footer[SNIFF_VHD_FOOTER_BYTES];
  struct verr ignored = { 0 };
  uint64_t size;
  if (run->sniff.format != SNIFF_FORMAT_RAW || run->res->compression[0] != '\0' ||
      info->content_length < 2 * SNIFF_VHD_FOOTER_BYTES || strcmp(info->kind, "stdin") == 0 ||
      (strcmp(info->kind, "http") == 0 && !info->accepts_ranges))
    return;
  uint64_t at = (uint64_t)info->content_length - SNIFF_VHD_FOOTER_BYTES;
  if (source_pread(run->source, footer, sizeof footer, at, &ignored) < 0 ||
      !sniff_vhd_fixed_footer(footer, (uint64_t)info->content_length, &size))
    return;
  run->sniff.format = SNIFF_FORMAT_VHD;
  run->sniff.virtual_size = size;
  snprintf(run->sniff.subformat, sizeof run->sniff.subformat, "fixed");
}

/* The spec's allowedFormats (empty: every disk format CDI imports), and a warning for
 * raw bytes that hold neither a partition table nor a filesystem we know. */
static int check_policy(struct import_run *run, struct verr *err)
{
  const struct import_spec *spec = run->spec;
  const char *format = run->res->format;
  bool allowed = spec->n_allowed_formats == 0;
  for (size_t i = 0; i < spec->n_allowed_formats && !allowed; i++)
    allowed = strcmp(spec->allowed_formats[i], format) == 0;
  if (!allowed)
    return verr_set(err, VERR_FORMAT, "the source is a %s image and vimport.allowedFormats does "
                    "not allow it: add \"%s\" to the list or import another image", format, format);
  enum sniff_content c = run->sniff.content;
  if (run->sniff.format == SNIFF_FORMAT_RAW && (c == SNIFF_CONTENT_UNKNOWN || c == SNIFF_CONTENT_ZEROS)) {
    snprintf(run->res->warning, sizeof run->res->warning,
             "the raw image has neither a partition table nor a known filesystem at its start "
             "(%s): check that it is the disk you meant", c == SNIFF_CONTENT_ZEROS
                                                            ? "its first sector is zeros"
                                                            : "unrecognised bytes");
    vlog_warn("sniff", "%s", run->res->warning);
  }
  return 0;
}

/* Put the digest tap right above the source, then sniff; unwrap one compression layer. */
/* A reader constructor that fails closes the reader it was given, and with it every
 * reader below: forget the borrowed pointers into the chain too. */
static int chain_lost(struct import_run *run)
{
  run->chain = NULL;
  run->tap = NULL;
  run->source = NULL;
  return -1;
}

static int open_chain(struct import_run *run, struct verr *err)
{
  if (digest_tap_new(run->chain, checksum_algorithm(run->spec), &run->tap, err) < 0)
    return chain_lost(run);
  run->chain = run->tap;
  const char *content_type = source_info(run->source)->content_type;
  struct vreader *sniffed;
  if (sniff_reader_new(run->chain, content_type, &sniffed, &run->sniff, err) < 0)
    return chain_lost(run);
  run->chain = sniffed;

  enum sniff_format f = run->sniff.format;
  if (f == SNIFF_FORMAT_GZIP || f == SNIFF_FORMAT_XZ || f == SNIFF_FORMAT_ZSTD) {
    enum decompress_kind kind = f == SNIFF_FORMAT_GZIP ? DECOMPRESS_GZIP
                                : f == SNIFF_FORMAT_XZ ? DECOMPRESS_XZ
                                                       : DECOMPRESS_ZSTD;
    snprintf(run->res->compression, sizeof run->res->compression, "%s", sniff_format_name(f));
    /* Output past the target's capacity is a decompression bomb: stop there. */
    struct target_info info;
    target_get_info(run->target, &info);
    struct decompress_opts opts = { .max_output = info.capacity,
                                    .max_output_name = "the target's capacity" };
    struct vreader *plain;
    if (decompress_reader_new_opts(run->chain, kind, &opts, &plain, err) < 0)
      return chain_lost(run);
    if (sniff_reader_new(plain, NULL, &run->chain, &run->sniff, err) < 0)
      return chain_lost(run);
  }
  detect_fixed_vhd(run);
  snprintf(run->res->format, sizeof run->res->format, "%s", sniff_format_name(run->sniff.format));
  if (check_policy(run, err) < 0)
    return -1;
  snprintf(run->res->content, sizeof run->res->content, "%s",
           sniff_content_name(run->sniff.content));
  char what[256];
  sniff_describe(&run->sniff, what, sizeof what);
  vlog_info("sniff", "%s%s%s", run->res->compression, run->res->compression[0] ? ", " : "", what);
  return 0;
}

/* ---- target ------------------------------------------------------------------------- */

static int target_is_block(const struct import_spec *spec)
{
  if (spec->target.volume_mode != SPEC_VOLUME_MODE_UNSET)
    return spec->target.volume_mode == SPEC_VOLUME_MODE_BLOCK;
  struct stat st;
  return stat(spec->target.block_device, &st) == 0 && S_ISBLK(st.st_mode);
}

static int open_target(struct import_run *run, struct verr *err)
{
  const struct import_spec *spec = run->spec;
  bool block = target_is_block(spec);
  const char *path = block ? spec->target.block_device : spec->target.path;
  struct target_opts opts = {
    .path = path,
    .requested_size = spec->target.requested_size,
    .fs_overhead = spec->target.filesystem_overhead < 0 ? 0 : spec->target.filesystem_overhead,
    .preallocate = spec->target.preallocation,
  };
  snprintf(run->res->target_path, sizeof run->res->target_path, "%s", path);
  run->res->target_is_block = block;
  if (target_open(&opts, &run->target, err) < 0)
    return -1;
  struct target_info info;
  target_get_info(run->target, &info);
  vlog_info("target", "%s %s, capacity %llu bytes", block ? "block device" : "file", path,
            (unsigned long long)info.capacity);
  return 0;
}

/* The block hash options of the spec, with the write-time manifest attached to `with_map`. */
static int hash_options(struct import_run *run, struct blkhash_opts *with_map, struct verr *err)
{
  const struct spec_block_hash *bh = &run->spec->block_hash;
  run->hash_opts = (struct blkhash_opts){
    .digest_name = bh->digest, .block_size = bh->block_size, .threads = hash_threads()
  };
  if (blockmap_new(bh->digest, bh->block_size, 0, &run->written_map, err) < 0)
    return -1;
  *with_map = run->hash_opts;
  blockmap_attach(run->written_map, with_map);
  return 0;
}

static int hash_error(const struct import_run *run, int r, struct verr *err)
{
  return verr_sys(err, VERR_USAGE, r, "cannot create the block hash '%s' with %u-byte blocks",
                  run->spec->block_hash.digest, run->spec->block_hash.block_size);
}

/* ---- the guard in front of the target ------------------------------------------------ */

static int check_cancelled(const struct import_run *run, struct verr *err)
{
  if (run->opts.cancelled != NULL && *run->opts.cancelled)
    return verr_set(err, VERR_CANCELLED,
                    "the import was stopped by a signal (SIGTERM or SIGINT) before it finished; "
                    "the incomplete target was invalidated and a rerun imports it from the start");
  return 0;
}

static int guard_data(struct vsink *s, uint64_t off, const void *buf, size_t len, struct verr *err)
{
  struct import_run *run = s->state;
  if (check_cancelled(run, err) < 0)
    return -1;
  run->writing_started = true;
  return vsink_data(target_sink(run->target), off, buf, len, err);
}

static int guard_zero(struct vsink *s, uint64_t off, uint64_t len, struct verr *err)
{
  struct import_run *run = s->state;
  if (check_cancelled(run, err) < 0)
    return -1;
  run->writing_started = true;
  return vsink_zero(target_sink(run->target), off, len, err);
}

static const struct vsink_ops guard_ops = {
  .name = "guard",
  .data = guard_data,
  .zero = guard_zero,
};

static struct vsink *guarded_target(struct import_run *run)
{
  run->guard = (struct vsink){ .ops = &guard_ops, .state = run };
  return &run->guard;
}

static int new_ordered_hash(struct import_run *run, struct verr *err)
{
  struct blkhash_opts opts;
  if (hash_options(run, &opts, err) < 0)
    return -1;
  int r = blkhash_new(&opts, &run->hash);
  return r == 0 ? 0 : hash_error(run, r, err);
}

/* Digests of blocks that run ahead wait in memory (about 90 bytes a block): the spec's
 * memory limit bounds them, else the default window size does. */
static int new_unordered_hash(struct import_run *run, uint64_t length, struct verr *err)
{
  struct blkhash_opts opts;
  if (hash_options(run, &opts, err) < 0)
    return -1;
  uint64_t bound = run->spec->memory_limit ? run->spec->memory_limit : SPEC_DEFAULT_WINDOW_SIZE;
  int r = blkhash_unordered_new(&opts, length, (size_t)bound, &run->unordered);
  return r == 0 ? 0 : hash_error(run, r, err);
}

static int final_hash(struct import_run *run, unsigned char *md, unsigned *md_len, struct verr *err)
{
  int r = run->hash != NULL ? blkhash_final(run->hash, md, md_len)
                            : blkhash_unordered_final(run->unordered, md, md_len);
  if (r == EIO && run->unordered != NULL)
    return verr_set(err, VERR_INTERNAL, "the decoder left guest bytes unwritten; please report this bug");
  return r == 0 ? 0 : verr_sys(err, VERR_INTERNAL, r, "block hash failed");
}

/* ---- decode ------------------------------------------------------------------------- */

static int refuse_format(const struct import_run *run, struct verr *err)
{
  const struct sniff_result *s = &run->sniff;
  if (s->format == SNIFF_FORMAT_TAR && run->spec->content_type != SPEC_CONTENT_ARCHIVE)
    return verr_set(err, VERR_FORMAT,
                    "the source is a tar archive, not a disk image: set contentType: archive "
                    "to unpack archives, or point the URL at the image itself");
  return verr_set(err, VERR_FORMAT,
                  "the source is a %s image, which vimport cannot import: convert it to raw or "
                  "qcow2 (qemu-img convert -O qcow2) and import that",
                  sniff_format_name(s->format));
}

static int decode_raw(struct import_run *run, struct verr *err)
{
  if (new_ordered_hash(run, err) < 0)
    return -1;
  struct vsink hash_sink, tee;
  struct blkhash_sink_state hash_state;
  struct vsink_tee_state tee_state;
  blkhash_sink_init(&hash_sink, &hash_state, run->hash);
  vsink_tee_init(&tee, &tee_state, guarded_target(run), &hash_sink);
  struct target_info info;
  target_get_info(run->target, &info);
  uint64_t size = 0;
  bool vhd_footer = false;
  if (raw_decode(run->chain, &tee, run->hash_opts.block_size, info.capacity, &size, &vhd_footer,
                 err) < 0)
    return -1;
  if (vhd_footer) {
    snprintf(run->res->format, sizeof run->res->format, "vhd");
    vlog_info("raw", "the stream ended with a fixed-VHD footer: %llu guest bytes, footer dropped",
              (unsigned long long)size);
  }
  run->res->virtual_size = size;
  /* A raw stream's size is known only now; the file target is sized to match. */
  return target_check_fits(run->target, size, err);
}

/* The qcow2 decoder's re-read of clusters that did not fit its window. */
static int reread_source(void *opaque, void *buf, size_t len, uint64_t off, struct verr *err)
{
  struct import_run *run = opaque;
  return source_pread(run->source, buf, len, off, err);
}

static int reread_spool(void *opaque, void *buf, size_t len, uint64_t off, struct verr *err)
{
  struct import_run *run = opaque;
  return spool_pread(run->chain, buf, len, off, err);
}

/* Re-reads address the bytes as served, so only an unwrapped file or HTTP source can. */
static bool can_reread(const struct import_run *run)
{
  return run->res->compression[0] == '\0' && strcmp(source_info(run->source)->kind, "stdin") != 0;
}

static int decode_qcow2(struct import_run *run, struct verr *err)
{
  uint64_t size = run->sniff.virtual_size;
  if (target_check_fits(run->target, size, err) < 0 || new_unordered_hash(run, size, err) < 0)
    return -1;
  struct vsink tee;
  struct vsink_tee_state tee_state;
  vsink_tee_init(&tee, &tee_state, guarded_target(run), blkhash_unordered_sink(run->unordered));
  struct qcow2_stream_opts opts = {
    .window_bytes = run->spec->window_size,
    .pread = can_reread(run) ? reread_source : NULL,
    .pread_opaque = run,
  };
  if (opts.pread == NULL && run->spec->scratch_path != NULL) {
    /* No way back to the source: keep a copy on the scratch volume as it streams. */
    if (spool_reader_new(run->chain, run->spec->scratch_path, &run->chain, err) < 0)
      return chain_lost(run);
    opts.pread = reread_spool;
    vlog_info("qcow2", "keeping a scratch copy in %s for clusters that arrive before their "
              "tables", run->spec->scratch_path);
  }
  struct qcow2_info info = { 0 };
  int r = qcow2_stream_decode(run->chain, &tee, &opts, &info, err);
  vlog_info("qcow2", "v%u, cluster %u, %llu data bytes, %llu zero bytes; window peak %llu bytes, "
            "%llu clusters re-read (%llu bytes)",
            info.version, info.cluster_size, (unsigned long long)info.data_bytes,
            (unsigned long long)info.zero_bytes, (unsigned long long)info.window_peak_bytes,
            (unsigned long long)info.dropped_clusters, (unsigned long long)info.reread_bytes);
  run->res->virtual_size = size;
  return r;
}

/* Read `chain` to its end, discarding: the source digest must still see every byte. */
static int drain_chain(struct import_run *run, struct verr *err)
{
  CLEANUP_FREE unsigned char *buf = malloc(1u << 20);
  if (buf == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  ssize_t n;
  while ((n = run->chain->ops->read(run->chain, buf, 1u << 20, err)) > 0)
    ;
  return n < 0 ? -1 : 0;
}

/* Copy the rest of `chain` into a new file under the scratch directory. On success
 * `path` names it; the caller unlinks it. */
static int spool_to_file(struct import_run *run, char *path, size_t size, struct verr *err)
{
  snprintf(path, size, "%s/vimport-%s-XXXXXX", run->spec->scratch_path, run->res->format);
  CLEANUP_CLOSE int fd = mkstemp(path);
  if (fd < 0)
    return verr_sys(err, VERR_IO, errno, "cannot create a scratch file in %s (is the scratch "
                    "volume mounted and writable?)", run->spec->scratch_path);
  CLEANUP_FREE unsigned char *buf = malloc(1u << 20);
  ssize_t n = buf == NULL ? verr_set(err, VERR_NOMEM, "out of memory") : 0;
  while (n >= 0 && (n = run->chain->ops->read(run->chain, buf, 1u << 20, err)) > 0)
    for (ssize_t done = 0, w; n > 0 && done < n; done += w)
      if ((w = write(fd, buf + done, (size_t)(n - done))) < 0)
        return unlink(path), verr_sys(err, errno == ENOSPC ? VERR_SCRATCH_REQUIRED : VERR_IO, errno,
                                      "cannot write the scratch copy in %s (request more scratch "
                                      "space)", run->spec->scratch_path);
  if (n < 0)
    unlink(path);
  return n < 0 ? -1 : 0;
}

/* vmdk, vhd, vhdx, vdi: their tables may sit anywhere, so qemu reads a complete copy
 * (the source file itself when it is a plain local file, else a scratch copy) through
 * qemu-nbd, and the guest content streams out in order with holes skipped. */
static int decode_via_qemu(struct import_run *run, struct verr *err)
{
  const struct import_spec *spec = run->spec;
  bool local = spec->source.kind == SPEC_SOURCE_FILE && strcmp(spec->source.file_path, "-") != 0 &&
               run->res->compression[0] == '\0';
  char path[4096];
  if (local) {
    snprintf(path, sizeof path, "%s", spec->source.file_path);
    if (drain_chain(run, err) < 0)
      return -1;
  } else if (spec->scratch_path == NULL) {
    return verr_set(err, VERR_SCRATCH_REQUIRED,
                    "a %s image cannot be converted while it streams: it needs scratch space for "
                    "a complete copy; give the import a scratch volume (vimport.scratchPath)",
                    run->res->format);
  } else if (spool_to_file(run, path, sizeof path, err) < 0) {
    return -1;
  }
  struct nbd_guest_opts opts = { .file = path, .format = sniff_qemu_driver(run->sniff.format) };
  struct nbd_guest *g = NULL;
  int r = nbd_guest_open(&opts, &g, err);
  uint64_t size = r == 0 ? nbd_guest_size(g) : 0;
  if (r == 0)
    r = target_check_fits(run->target, size, err);
  if (r == 0)
    r = new_ordered_hash(run, err);
  if (r == 0) {
    struct vsink hash_sink, tee;
    struct blkhash_sink_state hash_state;
    struct vsink_tee_state tee_state;
    blkhash_sink_init(&hash_sink, &hash_state, run->hash);
    vsink_tee_init(&tee, &tee_state, guarded_target(run), &hash_sink);
    r = nbd_guest_walk(g, &tee, err);
    vlog_info("nbd", "qemu-nbd -f %s: %llu bytes read, %llu zero bytes skipped", opts.format,
              (unsigned long long)nbd_guest_bytes_read(g), (unsigned long long)nbd_guest_zero_bytes(g));
  }
  nbd_guest_free(g);
  if (!local)
    unlink(path);
  run->res->virtual_size = size;
  return r;
}

static int decode(struct import_run *run, struct verr *err)
{
  switch (run->sniff.format) {
  case SNIFF_FORMAT_RAW:
    return decode_raw(run, err);
  case SNIFF_FORMAT_QCOW2:
    return decode_qcow2(run, err);
  case SNIFF_FORMAT_VMDK:
  case SNIFF_FORMAT_VHD:
  case SNIFF_FORMAT_VHDX:
  case SNIFF_FORMAT_VDI:
    return decode_via_qemu(run, err);
  default:
    return refuse_format(run, err);
  }
}

/* ---- checks --------------------------------------------------------------------------- */

static int check_source_digest(struct import_run *run, struct verr *err)
{
  if (digest_tap_final(run->tap, run->res->source_digest, sizeof run->res->source_digest, err) < 0)
    return -1;
  const struct source_info *info = source_info(run->source);
  run->res->bytes_transferred = digest_tap_bytes(run->tap);
  run->res->resumes = info->resumes;
  vlog_info("digest", "source %s, %llu bytes, %u resumes", run->res->source_digest,
            (unsigned long long)run->res->bytes_transferred, info->resumes);
  const struct import_spec *spec = run->spec;
  if (spec->source.kind != SPEC_SOURCE_HTTP || spec->source.http.checksum.alg == SPEC_CHECKSUM_NONE)
    return 0;
  struct checksum expected;
  char text[CHECKSUM_STRING_MAX];
  snprintf(text, sizeof text, "%s:%s", spec_checksum_alg_name(spec->source.http.checksum.alg),
           spec->source.http.checksum.hex);
  if (checksum_parse(text, &expected, err) < 0 ||
      checksum_compare(&expected, run->res->source_digest, err) < 0)
    return -1;
  add_verified(run->res, "checksum");
  return 0;
}

static void format_hash(const char *digest, const unsigned char *md, unsigned len, char *out,
                        size_t size)
{
  char hex[2 * BLKHASH_MAX_MD_SIZE + 1];
  blkhash_hex(md, len, hex);
  snprintf(out, size, "%s:%s", digest, hex);
}

/* Tests only: storage corruption between the write and the read-back. */
static int corrupt_for_test(const struct import_run *run, struct verr *err)
{
  int64_t off = run->opts.test_corrupt_offset;
  if (off < 0)
    return 0;
  CLEANUP_CLOSE int fd = open(run->res->target_path, O_RDWR | O_CLOEXEC);
  unsigned char byte;
  if (fd < 0 || pread(fd, &byte, 1, off) != 1)
    return verr_sys(err, VERR_IO, errno, "test hook: cannot read byte %lld of %s", (long long)off,
                    run->res->target_path);
  byte ^= 0xff;
  if (pwrite(fd, &byte, 1, off) != 1 || fsync(fd) < 0)
    return verr_sys(err, VERR_IO, errno, "test hook: cannot flip byte %lld", (long long)off);
  vlog_warn("test", "flipped byte %lld of %s after the write phase", (long long)off,
            run->res->target_path);
  return 0;
}

/* Read the target back from storage and compare with what was written (and expected). */
static int readback(struct import_run *run, struct verr *err)
{
  unsigned char written[BLKHASH_MAX_MD_SIZE], read[BLKHASH_MAX_MD_SIZE];
  unsigned written_len = 0, read_len = 0;
  if (final_hash(run, written, &written_len, err) < 0 || target_finish(run->target, err) < 0 ||
      corrupt_for_test(run, err) < 0)
    return -1;

  struct blockmap *read_map = NULL;
  if (blockmap_new(run->hash_opts.digest_name, run->hash_opts.block_size, 0, &read_map, err) < 0)
    return -1;
  struct blkhash_opts opts = run->hash_opts;
  blockmap_attach(read_map, &opts);
  struct verify_result vr = { 0 };
  uint64_t length = run->res->virtual_size;
  int r = verify_readback(run->res->target_path, length, &opts, read, &read_len, &vr, err);
  if (r == 0)
    r = verify_compare(written, read, written_len, run->written_map, read_map, length, err);
  blockmap_free(read_map);
  if (r < 0)
    return verr_prefix(err, "read-back of %s", run->res->target_path);
  run->res->direct_io = vr.direct_io;
  format_hash(run->hash_opts.digest_name, read, read_len, run->res->block_hash,
              sizeof run->res->block_hash);
  add_verified(run->res, "blockhash-readback");
  vlog_info("verify", "read back %llu bytes (%llu in holes)%s: block hash %s",
            (unsigned long long)vr.bytes_read, (unsigned long long)vr.hole_bytes,
            vr.direct_io ? " with O_DIRECT" : " (page cache dropped; no O_DIRECT)",
            run->res->block_hash);

  const struct spec_block_hash *bh = &run->spec->block_hash;
  if (!bh->has_expected)
    return 0;
  if (bh->expected_len != read_len || memcmp(bh->expected, read, read_len) != 0)
    return verr_set(err, VERR_VERIFY,
                    "block hash mismatch: expected %s:%s, calculated %s: the image is not the "
                    "one the spec expects; check the URL and vimport.expectedBlockHash",
                    bh->digest, bh->expected_hex, run->res->block_hash);
  add_verified(run->res, "expected-blockhash");
  return 0;
}

static void record_target(struct import_run *run)
{
  struct target_info info;
  target_get_info(run->target, &info);
  run->res->preallocation_applied = info.preallocation_applied;
  vlog_info("target", "wrote %llu data bytes, %llu zero bytes skipped, %llu zeroed",
            (unsigned long long)info.bytes_written, (unsigned long long)info.zero_bytes_skipped,
            (unsigned long long)info.zero_bytes_zeroed);
}

/* ---- blank ------------------------------------------------------------------------------ */

static int import_blank(struct import_run *run, struct verr *err)
{
  uint64_t size = run->spec->target.requested_size;
  if (size == 0)
    return verr_set(err, VERR_USAGE, "a blank image needs a size: set spec.storage.resources."
                                     "requests.storage (or IMPORTER_IMAGE_SIZE)");
  snprintf(run->res->format, sizeof run->res->format, "raw");
  if (open_target(run, err) < 0 || new_ordered_hash(run, err) < 0 ||
      target_check_fits(run->target, size, err) < 0)
    return -1;
  struct vsink hash_sink, tee;
  struct blkhash_sink_state hash_state;
  struct vsink_tee_state tee_state;
  blkhash_sink_init(&hash_sink, &hash_state, run->hash);
  vsink_tee_init(&tee, &tee_state, guarded_target(run), &hash_sink);
  if (vsink_zero(&tee, 0, size, err) < 0)
    return -1;
  run->res->virtual_size = size;
  record_target(run);
  return readback(run, err);
}

/* A failed import must not leave content that passes for a disk. */
static void invalidate_target(struct import_run *run)
{
  struct verr err = { 0 };
  if (run->target == NULL || !run->writing_started)
    return;
  if (target_invalidate(run->target, &err) < 0)
    vlog_error("target", "%s", err.message);
  else
    vlog_warn("target", "the import failed: %s was invalidated so that it cannot pass for a disk",
              run->res->target_path);
}

int pipeline_import(const struct import_spec *spec, const struct pipeline_opts *opts,
                    struct pipeline_result *result, struct verr *err)
{
  memset(result, 0, sizeof *result);
  struct import_run run = { .spec = spec, .res = result, .opts = { .test_corrupt_offset = -1 } };
  if (opts != NULL)
    run.opts = *opts;
  int r;
  if (spec->source.kind == SPEC_SOURCE_BLANK) {
    r = import_blank(&run, err);
  } else {
    r = open_source(&run, err);
    if (r == 0)
      r = open_target(&run, err);
    if (r == 0)
      r = open_chain(&run, err);
    if (r == 0)
      r = decode(&run, err);
    if (r == 0)
      record_target(&run);
    /* The checksum decides before the read-back: a wrong image fails as CDI words it. */
    if (r == 0)
      r = check_source_digest(&run, err);
    if (r == 0)
      r = readback(&run, err);
  }
  if (r < 0) {
    if (run.tap != NULL)
      result->bytes_transferred = digest_tap_bytes(run.tap);
    invalidate_target(&run);
  }
  result->scratch_space_required = r < 0 && err->code == VERR_SCRATCH_REQUIRED;
  import_run_free(&run);
  return r;
}
