/* vimport pipeline, the decoders: guest content out of the sniffed format, into the
 * guarded target and the write-time block hash.
 *
 *   raw    in order, zero blocks found (raw.c); threaded block hash
 *   qcow2  one streaming pass, out of order (pkg/qcow2); clusters past the window are
 *          re-read by range from the source, or from a scratch spool
 *   vmdk, vhd, vhdx, vdi   a complete local copy (the file itself or a scratch copy) read
 *          in order through qemu-nbd (pkg/nbd)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "nbd/nbd.h"
#include "qcow2/qcow2.h"
#include "vdi/vdi.h"
#include "vhd/vhd.h"
#include "vmdk/vmdk.h"
#include "run.h"
#include "source/source.h"
#include "target/target.h"

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
  /* An unwrapped source with a known length is its own size: refuse it before the first
   * write rather than when the writes reach the end of the device. */
  int64_t length = source_info(run->source)->content_length;
  if (run->res->compression[0] == '\0' && length > 0 &&
      run_fit_target(run, (uint64_t)length, err) < 0)
    return -1;
  if (run_new_ordered_hash(run, err) < 0)
    return -1;
  struct vsink hash_sink, tee;
  struct blkhash_sink_state hash_state;
  struct vsink_tee_state tee_state;
  blkhash_sink_init(&hash_sink, &hash_state, run->hash);
  vsink_tee_init(&tee, &tee_state, run_guarded_target(run), &hash_sink);
  struct target_info info;
  target_get_info(run->target, &info);
  uint64_t size = 0;
  bool vhd_footer = false;
  if (raw_decode(run->chain, source_zeros(run->source), &tee, run->hash_opts.block_size,
                 info.capacity, &size, &vhd_footer, err) < 0)
    return -1;
  if (vhd_footer) {
    snprintf(run->res->format, sizeof run->res->format, "vhd");
    vlog_info("raw", "the stream ended with a fixed-VHD footer: %llu guest bytes, footer dropped",
              (unsigned long long)size);
  }
  run->res->virtual_size = size;
  /* A raw stream's size is known only now; the file target is sized to match. */
  return run_fit_target(run, size, err);
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
  return run->res->compression[0] == '\0' && source_can_pread(run->source);
}

static int decode_qcow2(struct import_run *run, struct verr *err)
{
  uint64_t size = run->sniff.virtual_size;
  if (run_fit_target(run, size, err) < 0 || run_new_unordered_hash(run, size, err) < 0)
    return -1;
  struct vsink tee;
  struct vsink_tee_state tee_state;
  vsink_tee_init(&tee, &tee_state, run_guarded_target(run), blkhash_unordered_sink(run->unordered));
  struct qcow2_stream_opts opts = {
    .window_bytes = run->spec->window_size,
    .pread = can_reread(run) ? reread_source : NULL,
    .pread_opaque = run,
    .threads = run->hash_opts.threads,
    .block_hash = &run->hash_opts,
  };
  if (opts.pread == NULL && run->spec->scratch_path != NULL) {
    /* No way back to the source: keep a copy on the scratch volume as it streams. */
    if (spool_reader_new(run->chain, run->spec->scratch_path, &run->chain, err) < 0)
      return run_chain_lost(run);
    opts.pread = reread_spool;
    vlog_info("qcow2", "keeping a scratch copy in %s for clusters that arrive before their "
              "tables", run->spec->scratch_path);
  }
  struct qcow2_info info = { 0 };
  int r = qcow2_stream_decode(run->chain, &tee, &opts, &info, err);
  vlog_info("qcow2", "v%u, cluster %u, %llu data bytes, %llu zero bytes; window peak %llu bytes, "
            "%llu clusters let go once used, %llu clusters dropped, %llu bytes re-read",
            info.version, info.cluster_size, (unsigned long long)info.data_bytes,
            (unsigned long long)info.zero_bytes, (unsigned long long)info.window_peak_bytes,
            (unsigned long long)info.used_clusters, (unsigned long long)info.dropped_clusters,
            (unsigned long long)info.reread_bytes);
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
    r = run_fit_target(run, size, err);
  if (r == 0)
    r = run_new_ordered_hash(run, err);
  if (r == 0) {
    struct vsink hash_sink, tee;
    struct blkhash_sink_state hash_state;
    struct vsink_tee_state tee_state;
    blkhash_sink_init(&hash_sink, &hash_state, run->hash);
    vsink_tee_init(&tee, &tee_state, run_guarded_target(run), &hash_sink);
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

/* streamOptimized vmdk, dynamic vhd and vdi keep their tables ahead of their data: they
 * stream like qcow2, with no copy on disk. Which of them is told by the sniffed header. */
enum streamed { STREAMED_NONE, STREAMED_VMDK, STREAMED_VHD, STREAMED_VDI };

static enum streamed streamable(const struct sniff_result *s)
{
  if (s->format == SNIFF_FORMAT_VMDK && strcmp(s->subformat, "streamOptimized") == 0)
    return STREAMED_VMDK;
  if (s->format == SNIFF_FORMAT_VHD && strcmp(s->subformat, "dynamic") == 0)
    return STREAMED_VHD;
  if (s->format == SNIFF_FORMAT_VDI)
    return STREAMED_VDI;
  return STREAMED_NONE;
}

/* Run one streaming decoder; *size gets the guest size it found. */
static int run_streamed(struct import_run *run, enum streamed kind, struct vsink *out, uint64_t *size,
                        struct verr *err)
{
  int r;
  if (kind == STREAMED_VMDK) {
    struct vmdk_info info = { 0 };
    r = vmdk_stream_decode(run->chain, out, NULL, &info, err);
    *size = info.virtual_size;
  } else if (kind == STREAMED_VHD) {
    struct vhd_info info = { 0 };
    r = vhd_stream_decode(run->chain, out, NULL, &info, err);
    *size = info.virtual_size;
  } else {
    struct vdi_info info = { 0 };
    r = vdi_stream_decode(run->chain, out, NULL, &info, err);
    *size = info.virtual_size;
  }
  return r;
}

static int decode_streamed(struct import_run *run, enum streamed kind, struct verr *err)
{
  /* The decoder says the exact guest size (qemu's rules: a vhd's CHS geometry can exceed
   * its footer's size) only at its end. Until then the target's capacity bounds the
   * writes and the hash; a header that already claims more than that is refused now. */
  struct target_info target;
  target_get_info(run->target, &target);
  if (run->sniff.virtual_size > target.capacity)
    return run_fit_target(run, run->sniff.virtual_size, err);
  if (run_new_unordered_hash(run, target.capacity, err) < 0)
    return -1;
  struct vsink tee;
  struct vsink_tee_state tee_state;
  vsink_tee_init(&tee, &tee_state, run_guarded_target(run), blkhash_unordered_sink(run->unordered));
  uint64_t size = 0;
  if (run_streamed(run, kind, &tee, &size, err) < 0)
    return -1;
  int r = blkhash_unordered_set_length(run->unordered, size);
  if (r != 0)
    return verr_sys(err, VERR_INTERNAL, r, "the %s decoder wrote past the size it reported; "
                    "please report this bug", run->res->format);
  vlog_info("decode", "%s streamed in one pass: %llu guest bytes", run->res->format,
            (unsigned long long)size);
  run->res->virtual_size = size;
  return run_fit_target(run, size, err);
}

int decode_image(struct import_run *run, struct verr *err)
{
  switch (run->sniff.format) {
  case SNIFF_FORMAT_RAW:
    return decode_raw(run, err);
  case SNIFF_FORMAT_QCOW2:
    return decode_qcow2(run, err);
  case SNIFF_FORMAT_VMDK:
  case SNIFF_FORMAT_VHD:
  case SNIFF_FORMAT_VDI:
    if (streamable(&run->sniff) != STREAMED_NONE)
      return decode_streamed(run, streamable(&run->sniff), err);
    return decode_via_qemu(run, err);
  case SNIFF_FORMAT_VHDX:
    return decode_via_qemu(run, err);
  default:
    return refuse_format(run, err);
  }
}


/* ---- NBD exports --------------------------------------------------------------------- */

/* The source digest of an NBD export: its guest bytes, holes hashed as zeros without
 * being read (there are no "bytes as served" but the content itself). */
struct export_digest {
  EVP_MD_CTX *ctx;
};

static int export_digest_data(struct vsink *s, uint64_t off, const void *buf, size_t len,
                              struct verr *err)
{
  (void)off;
  struct export_digest *d = s->state;
  return EVP_DigestUpdate(d->ctx, buf, len) == 1 ? 0 : verr_set(err, VERR_INTERNAL, "sha256 failed");
}

static int export_digest_zero(struct vsink *s, uint64_t off, uint64_t len, struct verr *err)
{
  (void)off;
  static const unsigned char zeros[64 * 1024];
  struct export_digest *d = s->state;
  for (uint64_t n; len > 0; len -= n) {
    n = len < sizeof zeros ? len : sizeof zeros;
    if (EVP_DigestUpdate(d->ctx, zeros, (size_t)n) != 1)
      return verr_set(err, VERR_INTERNAL, "sha256 failed");
  }
  return 0;
}

static const struct vsink_ops export_digest_ops = {
  .name = "export-digest",
  .data = export_digest_data,
  .zero = export_digest_zero,
};

static int walk_export(struct import_run *run, struct nbd_guest *g, EVP_MD_CTX *ctx, struct verr *err)
{
  struct export_digest digest = { .ctx = ctx };
  struct vsink digest_sink = { .ops = &export_digest_ops, .state = &digest };
  struct vsink hash_sink, hashes, tee;
  struct blkhash_sink_state hash_state;
  struct vsink_tee_state hashes_state, tee_state;
  blkhash_sink_init(&hash_sink, &hash_state, run->hash);
  vsink_tee_init(&hashes, &hashes_state, &hash_sink, &digest_sink);
  vsink_tee_init(&tee, &tee_state, run_guarded_target(run), &hashes);
  return nbd_guest_walk(g, &tee, err);
}

int decode_nbd(struct import_run *run, struct verr *err)
{
  struct nbd_guest_opts opts = { .uri = run->spec->source.nbd_uri };
  struct nbd_guest *g = NULL;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int r = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
              ? 0 : verr_set(err, VERR_NOMEM, "cannot start a sha256 digest");
  if (r == 0)
    r = nbd_guest_open(&opts, &g, err);
  uint64_t size = r == 0 ? nbd_guest_size(g) : 0;
  snprintf(run->res->format, sizeof run->res->format, "raw");
  if (r == 0)
    r = run_fit_target(run, size, err);
  if (r == 0)
    r = run_new_ordered_hash(run, err);
  if (r == 0)
    r = walk_export(run, g, ctx, err);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned md_len = 0;
  if (r == 0 && EVP_DigestFinal_ex(ctx, md, &md_len) == 1) {
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    blkhash_hex(md, md_len, hex);
    snprintf(run->res->source_digest, sizeof run->res->source_digest, "sha256:%s", hex);
    run->res->bytes_transferred = nbd_guest_bytes_read(g);
    vlog_info("nbd", "export of %llu bytes: %llu read, %llu in holes never read; sha256:%s",
              (unsigned long long)size, (unsigned long long)nbd_guest_bytes_read(g),
              (unsigned long long)nbd_guest_zero_bytes(g), hex);
  }
  run->res->virtual_size = size;
  nbd_guest_free(g);
  EVP_MD_CTX_free(ctx);
  return r;
}
