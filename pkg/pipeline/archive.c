/* vimport pipeline, contentType archive (CDI: pkg/importer TransferDataDir, which pipes
 * the source into `tar -x` in /data):
 *
 *   source -> digest tap -> [signature tap] -> sniff -> [decompress -> sniff]
 *     -> tar reader -> extractor -> staging dir in /data -> checksum, signature -> commit
 *
 * The input side is input.c's, so the source checksum and signature see every byte in
 * the same pass. Nothing becomes visible in the volume before both passed: a failed,
 * cancelled or hostile archive leaves the volume as it was. */
#include <stdio.h>
#include <string.h>

#include "archive/archive.h"
#include "core/log.h"
#include "run.h"

/* The directory that receives the entries: the one that would hold disk.img (/data). */
static void target_dir(const struct import_spec *spec, char *out, size_t size)
{
  const char *path = spec->target.path;
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    snprintf(out, size, ".");
  else if (slash == path)
    snprintf(out, size, "/");
  else
    snprintf(out, size, "%.*s", (int)(slash - path), path);
}

static int archive_refusals(const struct import_spec *spec, struct verr *err)
{
  if (spec->source.kind == SPEC_SOURCE_BLANK) /* CDI's words: cmd/cdi-importer/importer.go */
    return verr_set(err, VERR_USAGE, "Cannot create empty disk with content type archive: a "
                    "blank source makes a disk; use contentType kubevirt");
  if (spec->source.kind == SPEC_SOURCE_NBD)
    return verr_set(err, VERR_USAGE, "contentType archive needs an http or file source, not an "
                    "NBD export: import the export as a disk (contentType kubevirt)");
  if (spec_target_is_block(spec))
    return verr_set(err, VERR_USAGE, "contentType archive unpacks files and needs a filesystem "
                    "volume: a Block volume cannot hold them; use volumeMode Filesystem, or "
                    "contentType kubevirt for a disk image");
  return 0;
}

/* The sniffed source must be a tar, plain or under one compression layer. */
static int check_tar(struct import_run *run, struct verr *err)
{
  run->res->content[0] = '\0'; /* what raw bytes hold: no meaning for an archive */
  if (run->sniff.format == SNIFF_FORMAT_TAR)
    return 0;
  char what[256];
  sniff_describe(&run->sniff, what, sizeof what);
  return verr_set(err, VERR_FORMAT, "contentType archive needs a tar archive (plain, or "
                  "compressed with gzip, xz or zstd), but the source%s%s is %s: import it "
                  "with contentType kubevirt if it is a disk image, or check the URL",
                  run->res->compression[0] ? " once decompressed from " : "",
                  run->res->compression, what);
}

static int unpack(struct import_run *run, struct archive_stage *stage,
                  const struct archive_limits *limits, struct verr *err)
{
  struct tar_reader *tar = NULL;
  struct archive_stats stats = { 0 };
  if (tar_reader_new(run->chain, &tar, err) < 0)
    return -1;
  int r = archive_extract(tar, archive_stage_fd(stage), limits, &stats, err);
  if (r == 0)
    r = tar_drain(tar, err); /* the digest covers the archive's padding too */
  tar_reader_free(tar);
  run->res->archive_files = stats.files;
  run->res->archive_bytes = stats.bytes;
  if (r == 0)
    vlog_info("archive", "unpacked %llu entries: %llu regular files, %llu bytes",
              (unsigned long long)stats.entries, (unsigned long long)stats.files,
              (unsigned long long)stats.bytes);
  return r;
}

int archive_import(struct import_run *run, struct verr *err)
{
  const struct import_spec *spec = run->spec;
  if (archive_refusals(spec, err) < 0)
    return -1;
  char dir[1024];
  target_dir(spec, dir, sizeof dir);
  snprintf(run->res->target_path, sizeof run->res->target_path, "%s", dir);
  run->res->archive = true;
  struct archive_stage *stage = NULL;
  struct archive_limits limits = { .cancelled = run->opts.cancelled };
  if (archive_stage_new(dir, &stage, &limits, err) < 0)
    return -1;
  vlog_info("archive", "unpacking into %s: %llu bytes and %llu inodes free", dir,
            (unsigned long long)limits.max_bytes, (unsigned long long)limits.max_entries);
  /* a tar holds headers and padding besides the files: bound the plain stream loosely;
   * the extractor's own budget is the exact one */
  run->plain_bound = limits.max_bytes > UINT64_MAX / 4 ? UINT64_MAX / 2 : 2 * limits.max_bytes
                                                                             + (64u << 20);
  int r = input_open(run, err);
  if (r == 0)
    r = check_tar(run, err);
  if (r == 0)
    r = unpack(run, stage, &limits, err);
  /* the checksum and signature decide before anything is visible in the volume */
  if (r == 0)
    r = input_check_checksum(run, err);
  if (r == 0)
    r = input_check_signature(run, err);
  if (r == 0)
    r = archive_stage_commit(stage, err);
  archive_stage_free(stage);
  return r;
}
