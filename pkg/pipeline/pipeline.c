/* vimport pipeline: see pipeline.h. Each step is one function over `struct import_run`,
 * which owns everything the import holds; import_run_free() releases it in one place. */
#include "run.h"

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
#include "target/target.h"
#include "verify/verify.h"

static void import_run_free(struct import_run *run)
{
  free(run->block_hash.digest);
  vreader_close(run->chain);
  target_free(run->target);
  blkhash_free(run->hash);
  blkhash_unordered_free(run->unordered);
  blockmap_free(run->written_map);
}

/* ---- target ------------------------------------------------------------------------- */

static bool same_file(const struct import_spec *spec, const char *target)
{
  struct stat a, b;
  return spec->source.kind == SPEC_SOURCE_FILE && strcmp(spec->source.file_path, "-") != 0 &&
         stat(spec->source.file_path, &a) == 0 && stat(target, &b) == 0 &&
         a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int open_target(struct import_run *run, struct verr *err)
{
  const struct import_spec *spec = run->spec;
  bool block = spec_target_is_block(spec);
  const char *path = block ? spec->target.block_device : spec->target.path;
  struct target_opts opts = {
    .path = path,
    .requested_size = spec->target.requested_size,
    .fs_overhead = spec->target.filesystem_overhead < 0 ? 0 : spec->target.filesystem_overhead,
    .preallocate = spec->target.preallocation,
  };
  snprintf(run->res->target_path, sizeof run->res->target_path, "%s", path);
  run->res->target_is_block = block;
  if (same_file(spec, path))
    return verr_set(err, VERR_USAGE, "the source %s and the target %s are the same file: "
                    "importing would overwrite the image while reading it; write elsewhere",
                    spec->source.file_path, path);
  if (target_open(&opts, &run->target, err) < 0)
    return -1;
  struct target_info info;
  target_get_info(run->target, &info);
  vlog_info("target", "%s %s, capacity %llu bytes", block ? "block device" : "file", path,
            (unsigned long long)info.capacity);
  return 0;
}

static int final_hash(struct import_run *run, unsigned char *md, unsigned *md_len, struct verr *err)
{
  int r = run->hash != NULL ? blkhash_final(run->hash, md, md_len)
                            : blkhash_unordered_final(run->unordered, md, md_len);
  if (r == EIO && run->unordered != NULL)
    return verr_set(err, VERR_INTERNAL, "the decoder left guest bytes unwritten; please report this bug");
  return r == 0 ? 0 : verr_sys(err, VERR_INTERNAL, r, "block hash failed");
}

/* ---- checks --------------------------------------------------------------------------- */

static void format_hash(const char *digest, const unsigned char *md, unsigned len, char *out,
                        size_t size)
{
  char hex[2 * BLKHASH_MAX_MD_SIZE + 1];
  blkhash_hex(md, len, hex);
  snprintf(out, size, "%s:%s", digest, hex);
}

/* The expected block hash (vimport.expectedBlockHash) names the image's bytes or the
 * volume's: it matches either, or the one of vimport.blockHashLength when that is given. */
static int check_expected(struct import_run *run, const unsigned char *image_md,
                          const unsigned char *volume_md, unsigned md_len, uint64_t volume_len,
                          struct verr *err)
{
  const struct spec_block_hash *bh = &run->block_hash;
  uint64_t image_len = run->res->virtual_size;
  if (!bh->has_expected)
    return 0;
  if (bh->length != 0 && bh->length != image_len && bh->length != volume_len)
    return verr_set(err, VERR_VERIFY,
                    "vimport.blockHashLength is %llu bytes, but the import hashes the %llu "
                    "bytes of the image and the %llu bytes of the volume: the expected block "
                    "hash was computed over another length; take blockHash and "
                    "blockHashLength from an earlier import's termination message",
                    (unsigned long long)bh->length, (unsigned long long)image_len,
                    (unsigned long long)volume_len);
  bool image_ok = (bh->length == 0 || bh->length == image_len) && bh->expected_len == md_len &&
                  memcmp(bh->expected, image_md, md_len) == 0;
  bool volume_ok = (bh->length == 0 || bh->length == volume_len) &&
                   bh->expected_len == md_len && memcmp(bh->expected, volume_md, md_len) == 0;
  if (!image_ok && !volume_ok)
    return verr_set(err, VERR_VERIFY,
                    "checksum mismatch: block hash expected %s:%s, calculated %s over the %llu bytes of "
                    "the volume (%s over the %llu bytes of the image): the image is not the "
                    "one the spec expects; check the URL and vimport.expectedBlockHash",
                    bh->digest, bh->expected_hex, run->res->block_hash,
                    (unsigned long long)volume_len,
                    run->res->image_block_hash[0] ? run->res->image_block_hash
                                                  : run->res->block_hash,
                    (unsigned long long)image_len);
  run_add_verified(run->res, "expected-blockhash");
  return 0;
}

/* The length a later `vimport verify` hashes on the untouched volume: a file's whole size
 * after CDI's growth; on a block device the image (the device past it is not ours). */
static uint64_t volume_hash_length(struct import_run *run)
{
  struct target_info info;
  target_get_info(run->target, &info);
  return info.kind == TARGET_KIND_FILE ? info.size : run->res->virtual_size;
}

/* Read the target back from storage and compare with what was written (and expected).
 * One pass hashes the volume's bytes and, on the way, the image's (verify_span). */
static int readback(struct import_run *run, struct verr *err)
{
  unsigned char written[BLKHASH_MAX_MD_SIZE], read[BLKHASH_MAX_MD_SIZE];
  unsigned written_len = 0, read_len = 0;
  if (final_hash(run, written, &written_len, err) < 0 || target_finish(run->target, err) < 0)
    return -1;

  struct blockmap *read_map = NULL;
  if (blockmap_new(run->hash_opts.digest_name, run->hash_opts.block_size, 0, &read_map, err) < 0)
    return -1;
  struct blkhash_opts opts = run->hash_opts;
  blockmap_attach(read_map, &opts);
  struct verify_result vr = { 0 };
  struct target_info info;
  target_get_info(run->target, &info);
  run->res->preallocation_applied = info.preallocation_applied; /* block: known at finish */
  uint64_t image_len = run->res->virtual_size, volume_len = volume_hash_length(run);
  struct verify_span span = { .image_length = image_len,
                              .zeros_after_image = !run->res->target_is_block };
  struct readback_line line;
  if (run->opts.progress_line)
    readback_line_attach(&line, &opts, volume_len);
  int r = verify_readback_span(run->res->target_path, volume_len, &opts, &span, read, &read_len,
                               &vr, err);
  if (run->opts.progress_line)
    readback_line_end(&line);
  if (r == 0)
    r = verify_compare(written, span.image_md, written_len, run->written_map, read_map,
                       image_len, err);
  blockmap_free(read_map);
  /* "checksum mismatch" is the phrase CDI's controller treats as fatal */
  if (r < 0 && err->code == VERR_VERIFY)
    return verr_prefix(err, "checksum mismatch on the read-back of %s", run->res->target_path);
  if (r < 0)
    return verr_prefix(err, "read-back of %s", run->res->target_path);
  run->res->direct_io = vr.direct_io;
  run->res->block_hash_length = volume_len;
  format_hash(run->hash_opts.digest_name, read, read_len, run->res->block_hash,
              sizeof run->res->block_hash);
  if (volume_len != image_len)
    format_hash(run->hash_opts.digest_name, span.image_md, span.image_md_len,
                run->res->image_block_hash, sizeof run->res->image_block_hash);
  run_add_verified(run->res, "blockhash-readback");
  vlog_info("verify", "read back %llu bytes (%llu in holes)%s: block hash %s of %llu bytes",
            (unsigned long long)vr.bytes_read, (unsigned long long)vr.hole_bytes,
            vr.direct_io ? " with O_DIRECT" : " (page cache dropped; no O_DIRECT)",
            run->res->block_hash, (unsigned long long)volume_len);
  return check_expected(run, span.image_md, read, read_len, volume_len, err);
}

static void record_target(struct import_run *run)
{
  struct target_info info;
  target_get_info(run->target, &info);
  run->res->preallocation_applied = info.preallocation_applied;
  vlog_info("target", "wrote %llu data bytes (%llu with O_DIRECT), %llu zero bytes skipped, "
            "%llu zeroed", (unsigned long long)info.bytes_written,
            (unsigned long long)info.bytes_direct, (unsigned long long)info.zero_bytes_skipped,
            (unsigned long long)info.zero_bytes_zeroed);
}

/* ---- blank ------------------------------------------------------------------------------ */

static int import_blank(struct import_run *run, struct verr *err)
{
  if (run->spec->target.requested_size == 0)
    return verr_set(err, VERR_USAGE, "a blank image needs a size: set spec.storage.resources."
                                     "requests.storage (or IMPORTER_IMAGE_SIZE)");
  snprintf(run->res->format, sizeof run->res->format, "raw");
  if (open_target(run, err) < 0)
    return -1;
  /* CDI: "Blank block without preallocation is exactly an empty PVC" - nothing is
   * written and nothing read back, so there is no block hash to report. */
  if (run->res->target_is_block && !run->spec->target.preallocation) {
    vlog_info("target", "blank block volume without preallocation: %s left as it is",
              run->res->target_path);
    return 0;
  }
  if (decode_run(run, &blank_decoder, err) < 0)
    return -1;
  record_target(run);
  return readback(run, err);
}

/* A failed import must not leave content that passes for a disk. */
static void invalidate_target(struct import_run *run)
{
  struct verr err = { 0 };
  if (run->target == NULL || !run->target_touched)
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
  struct import_run run = { .spec = spec, .res = result, .block_hash = spec->block_hash };
  if (opts != NULL)
    run.opts = *opts;
  run.block_hash.digest = strdup(spec->block_hash.digest);
  if (run.block_hash.digest == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  int r;
  if (spec->content_type == SPEC_CONTENT_ARCHIVE) {
    r = archive_import(&run, err);
  } else if (spec->source.kind == SPEC_SOURCE_BLANK) {
    r = import_blank(&run, err);
  } else if (spec->source.kind == SPEC_SOURCE_NBD) {
    r = open_target(&run, err);
    if (r == 0)
      r = decode_run(&run, &nbd_export_decoder, err);
    if (r == 0)
      record_target(&run);
    if (r == 0)
      r = readback(&run, err);
  } else {
    /* The target opens first so the decompressor knows its bound; nothing is written
     * before the source is sniffed and accepted. */
    r = open_target(&run, err);
    if (r == 0)
      r = input_open(&run, err);
    if (r == 0)
      r = decode_image(&run, err);
    if (r == 0)
      record_target(&run);
    /* The checksum decides before the read-back: a wrong image fails as CDI words it. */
    if (r == 0)
      r = input_check_checksum(&run, err);
    if (r == 0)
      r = input_check_signature(&run, err);
    if (r == 0)
      r = readback(&run, err);
  }
  if (r < 0) {
    if (run.source != NULL)
      result->bytes_transferred = input_bytes_read(&run);
    /* A failed import vouches for nothing, even for the stages that passed before. */
    result->n_verified = 0;
    invalidate_target(&run);
  }
  result->scratch_space_required = r < 0 && err->code == VERR_SCRATCH_REQUIRED;
  if (run.source != NULL)
    input_record_image(&run);
  import_run_free(&run);
  return r;
}
