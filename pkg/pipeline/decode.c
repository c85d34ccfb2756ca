/* vimport pipeline, the decode step: drive one row of the decoder table (pkg/decode).
 *
 * The row turns its input into guest extents; everything around it is done here, the
 * same way for every row: the input the row declares (re-reads of passed bytes, or a
 * complete local copy), the fit of the target to the guest size (before or after, as
 * the row knows it), the write-time block hash (ordered when the row emits in guest
 * order, else unordered) and the one tee that feeds it beside the guarded target.
 *
 *   pipeline.c -> decode.c -> pkg/decode -> the format packages; never back.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "run.h"
#include "source/source.h"
#include "target/target.h"

/* ---- the target, behind a check for cancellation ------------------------------------ */

static int fit_target(void *opaque, uint64_t size, struct verr *err)
{
  struct import_run *run = opaque;
  if (target_check_fits(run->target, size, err) < 0)
    return -1;
  run->target_touched = true; /* a file target is sized now */
  return 0;
}

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
  run->target_touched = true;
  return vsink_data(target_sink(run->target), off, buf, len, err);
}

static int guard_zero(struct vsink *s, uint64_t off, uint64_t len, struct verr *err)
{
  struct import_run *run = s->state;
  if (check_cancelled(run, err) < 0)
    return -1;
  run->target_touched = true;
  return vsink_zero(target_sink(run->target), off, len, err);
}

static const struct vsink_ops guard_ops = {
  .name = "guard",
  .data = guard_data,
  .zero = guard_zero,
};

/* ---- the write-time block hash ----------------------------------------------------- */

static unsigned hash_threads(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 2 ? 2 : n > 8 ? 8 : (unsigned)n;
}

/* Ordered for a row that emits in guest order; else unordered over `length` bytes, its
 * digests of blocks that run ahead waiting in memory (about 90 bytes a block), bounded by
 * the spec's memory limit or else the default window size. */
static int new_hash(struct import_run *run, const struct decoder *row, uint64_t length,
                    struct verr *err)
{
  const struct spec_block_hash *bh = &run->block_hash;
  run->hash_opts = (struct blkhash_opts){
    .digest_name = bh->digest, .block_size = bh->block_size, .threads = hash_threads()
  };
  if (blockmap_new(bh->digest, bh->block_size, 0, &run->written_map, err) < 0)
    return -1;
  struct blkhash_opts opts = run->hash_opts;
  blockmap_attach(run->written_map, &opts);
  uint64_t bound = run->spec->memory_limit ? run->spec->memory_limit : SPEC_DEFAULT_WINDOW_SIZE;
  int r = row->guest_order ? blkhash_new(&opts, &run->hash)
                           : blkhash_unordered_new(&opts, length, (size_t)bound, &run->unordered);
  return r == 0 ? 0 : verr_sys(err, VERR_USAGE, r, "cannot create the block hash '%s' with "
                               "%u-byte blocks", bh->digest, bh->block_size);
}

/* ---- the input a row declares --------------------------------------------------------- */

static int reread_source(void *opaque, void *buf, size_t len, uint64_t off, struct verr *err)
{
  struct import_run *run = opaque;
  return source_pread(run->source, buf, len, off, err);
}

static int reread_spill(void *opaque, void *buf, size_t len, uint64_t off, struct verr *err)
{
  struct import_run *run = opaque;
  return spill_pread(run->spill, buf, len, off, err);
}

static int spill_chunk(void *opaque, const void *buf, size_t len, uint64_t off, struct verr *err)
{
  struct import_run *run = opaque;
  return spill_write(run->spill, buf, len, off, err);
}

/* Re-reads address the bytes as served, so only an unwrapped file or HTTP source can;
 * else the scratch spill keeps what the decoder lets go of; else there is no way back. */
static int open_reread(struct import_run *run, struct decode_ctx *ctx, struct verr *err)
{
  ctx->pread_opaque = run;
  if (run->res->compression[0] == '\0' && source_can_pread(run->source)) {
    ctx->pread = reread_source;
    return 0;
  }
  if (run->spec->scratch_path == NULL)
    return 0;
  if (spill_new(run->spec->scratch_path, &run->spill, err) < 0)
    return -1;
  ctx->pread = reread_spill;
  ctx->spill = spill_chunk;
  return 0;
}

/* The spill's space is freed now; what it held is said, since scratch space is CDI's. */
static void close_reread(struct import_run *run)
{
  if (run->spill == NULL)
    return;
  if (spill_bytes(run->spill) > 0)
    vlog_info(run->res->format, "kept %llu bytes in scratch space (%s): clusters that arrived "
              "before their tables and overflowed the window",
              (unsigned long long)spill_bytes(run->spill), run->spec->scratch_path);
  spill_free(run->spill);
  run->spill = NULL;
}

/* A complete local copy for qemu: the source file itself when it is a plain local file
 * (the chain is still read to its end, for the source digest), else a copy in the
 * scratch directory, named in `path`, which the caller unlinks when *copied. */
static int open_file(struct import_run *run, char *path, size_t size, bool *copied,
                     struct verr *err)
{
  const struct import_spec *spec = run->spec;
  *copied = false;
  if (spec->source.kind == SPEC_SOURCE_FILE && strcmp(spec->source.file_path, "-") != 0 &&
      run->res->compression[0] == '\0') {
    snprintf(path, size, "%s", spec->source.file_path);
    return spool_drain(run->chain, err);
  }
  if (spec->scratch_path == NULL)
    return verr_set(err, VERR_SCRATCH_REQUIRED,
                    "a %s image cannot be converted while it streams: it needs scratch space for "
                    "a complete copy; give the import a scratch volume (CDI mounts one at /scratch; "
                    "with --spec: vimport.scratchPath)",
                    run->res->format);
  if (spool_to_file(run->chain, spec->scratch_path, run->res->format, path, size, err) < 0)
    return -1;
  *copied = true;
  return 0;
}

static void init_ctx(struct import_run *run, struct decode_ctx *ctx)
{
  struct target_info target;
  target_get_info(run->target, &target);
  *ctx = (struct decode_ctx){
    .in = run->chain,
    .capacity = target.capacity,
    .sniff = &run->sniff,
    .nbd_uri = run->spec->source.nbd_uri,
    .blank_size = target_blank_size(run->target),
    .window_bytes = run->spec->window_size,
    .block_hash = &run->hash_opts,
    .fit = fit_target,
    .fit_opaque = run,
  };
  if (run->source == NULL)
    return;
  ctx->zeros = source_zeros(run->source);
  int64_t length = source_info(run->source)->content_length;
  if (run->res->compression[0] == '\0' && length > 0)
    ctx->stream_length = (uint64_t)length;
}

/* ---- driving the row ---------------------------------------------------------------- */

/* Fit what the row knows before it runs, and make the hash: an unordered hash over a size
 * learnt only at the end spans the capacity until then, so a header that already claims
 * more than that is refused now. */
static int before_decode(struct import_run *run, const struct decoder *row,
                         const struct decode_ctx *ctx, struct verr *err)
{
  uint64_t sniffed = run->sniff.virtual_size;
  if (row->size == DECODER_SIZE_SNIFFED)
    return fit_target(run, sniffed, err) < 0 ? -1 : new_hash(run, row, sniffed, err);
  if (row->size == DECODER_SIZE_AT_END && !row->guest_order && sniffed > ctx->capacity &&
      fit_target(run, sniffed, err) < 0)
    return -1;
  return new_hash(run, row, ctx->capacity, err);
}

static int after_decode(struct import_run *run, const struct decoder *row, uint64_t size,
                        struct verr *err)
{
  if (row->size != DECODER_SIZE_AT_END)
    return 0;
  int r = run->unordered != NULL ? blkhash_unordered_set_length(run->unordered, size) : 0;
  if (r != 0)
    return verr_sys(err, VERR_INTERNAL, r, "the %s decoder wrote past the size it reported; "
                    "please report this bug", run->res->format);
  return fit_target(run, size, err);
}

static void take_result(struct import_run *run, const struct decode_result *res)
{
  if (res->format != NULL)
    snprintf(run->res->format, sizeof run->res->format, "%s", res->format);
  if (res->source_digest[0] != '\0') {
    snprintf(run->res->source_digest, sizeof run->res->source_digest, "%s", res->source_digest);
    run->res->bytes_transferred = res->source_bytes;
  }
  run->res->virtual_size = res->size;
}

int decode_run(struct import_run *run, const struct decoder *row, struct verr *err)
{
  struct decode_ctx ctx;
  init_ctx(run, &ctx);
  char path[4096] = "";
  bool copied = false;
  if (row->input == DECODER_INPUT_REREAD && open_reread(run, &ctx, err) < 0)
    return -1;
  if (row->input == DECODER_INPUT_FILE) {
    if (open_file(run, path, sizeof path, &copied, err) < 0)
      return -1;
    ctx.file = path;
  }
  if (before_decode(run, row, &ctx, err) < 0) {
    close_reread(run);
    return -1;
  }
  struct vsink guard = { .ops = &guard_ops, .state = run }, hash_sink, tee;
  struct blkhash_sink_state hash_state;
  struct vsink_tee_state tee_state;
  if (run->hash != NULL)
    blkhash_sink_init(&hash_sink, &hash_state, run->hash);
  vsink_tee_init(&tee, &tee_state, &guard,
                 run->hash != NULL ? &hash_sink : blkhash_unordered_sink(run->unordered));
  struct decode_result res = { 0 };
  int r = row->decode(&ctx, &tee, &res, err);
  close_reread(run);
  if (copied)
    unlink(path);
  take_result(run, &res);
  return r < 0 ? -1 : after_decode(run, row, res.size, err);
}

static int refuse_format(const struct import_run *run, struct verr *err)
{
  const struct sniff_result *s = &run->sniff;
  if (s->format == SNIFF_FORMAT_TAR && run->spec->content_type != SPEC_CONTENT_ARCHIVE)
    return verr_set(err, VERR_FORMAT,
                    "the source is a tar archive, not a disk image: set contentType: archive "
                    "to unpack archives, or point the URL at the image itself");
  /* CDI's own words first (pkg/image/qemu.go checkIfURLIsValid), for a format qemu-img
   * names and CDI refuses, then what to do. */
  if (sniff_qemu_driver(s->format) != NULL && !sniff_format_cdi_accepts(s->format))
    return verr_set(err, VERR_FORMAT,
                    "Invalid format %s for image %s: like CDI, vimport imports only raw, "
                    "qcow2, vmdk, vdi, vpc (vhd) and vhdx images; convert it "
                    "(qemu-img convert -O qcow2) and import that",
                    sniff_qemu_driver(s->format), source_info(run->source)->location);
  return verr_set(err, VERR_FORMAT,
                  "the source is a %s image, which vimport cannot import: convert it to raw or "
                  "qcow2 (qemu-img convert -O qcow2) and import that",
                  sniff_format_name(s->format));
}

int decode_image(struct import_run *run, struct verr *err)
{
  const struct decoder *row = decoder_for(&run->sniff);
  return row != NULL ? decode_run(run, row, err) : refuse_format(run, err);
}
