/* vimport pipeline: one import, every stage, one pass over the source.
 *
 *   source -> digest tap -> sniff -> [decompress -> sniff] -> decode (a row of the
 *     decoder table, pkg/decode) -> tee( target writer , write-time block hash )
 *   -> target fsync -> read-back block hash from storage -> compare -> result
 *
 * The source is read once, in order, to its end, so the source digest covers every
 * byte exactly as served. Decoders hand guest extents to the target and, in guest
 * order, to the block hash; zero extents are never materialised.
 *
 * When an import fails after it started writing, the target is invalidated
 * (target_invalidate) so that a partial or wrong image never passes for a disk.
 *
 * The pipeline decides nothing about exit codes or the termination message: it fills
 * a `struct pipeline_result` (also on failure, as far as it got) and returns 0 or -1
 * with `err` filled. cmd/ turns both into the report.
 */
#ifndef VIMPORT_PIPELINE_H
#define VIMPORT_PIPELINE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"
#include "source/source.h"
#include "spec/spec.h"

#define PIPELINE_MAX_VERIFIED 8

struct pipeline_result {
  char source_digest[160];   /* "<alg>:<hex>" of the bytes as served; "" if none */
  char block_hash[160];      /* "<digest>:<hex>" of the volume's first block_hash_length
                              * bytes read back (what `vimport verify` computes); "" */
  char image_block_hash[160];/* the same of the image's virtual_size bytes, when the
                              * volume's hashed length differs; else "" */
  uint64_t block_hash_length;/* file: its size after growth; block: virtual_size */
  char format[16];           /* "raw", "qcow2", ... ("" before sniffing) */
  char compression[16];      /* "gzip", "xz", "zstd" or "" */
  char content[16];          /* what raw bytes hold: "gpt", "mbr", "ext", ... */
  char warning[256];         /* a finding that did not fail the import, or "" */
  char source_checked[SOURCE_INFO_STR]; /* the source's own proof (gcs: generation,
                              * length, crc32c, md5Hash), "" when it has none */
  char verified_by[700];     /* who signed the image: certificate subject or key
                              * fingerprint, and key type; "" when unsigned */
  char target_path[1024];
  bool target_is_block;
  uint64_t virtual_size;      /* guest bytes imported */
  uint64_t bytes_transferred; /* source bytes read */
  unsigned resumes;           /* HTTP Range resumes */
  bool preallocation_applied;
  bool scratch_space_required; /* the image cannot be imported without scratch space */
  bool source_unreachable;     /* the source (or its checksum file) failed to open, before
                                * any byte of the image was read: CDI's "Unable to connect
                                * to <kind> data source" */
  bool direct_io;              /* the read-back bypassed the page cache */
  /* contentType archive (pkg/archive): what was unpacked into the target directory */
  bool archive;
  uint64_t archive_files;      /* regular files */
  uint64_t archive_bytes;      /* the sum of their sizes */
  /* stages that passed: "checksum-signature", "blockhash-signature", "checksum",
   * "signature", "expected-blockhash", "blockhash-readback", "object-checksum" (the
   * source's own, source_checked) */
  const char *verified[PIPELINE_MAX_VERIFIED];
  unsigned n_verified;
  /* a registry source: the image, its layers read and its disk file (source_image) */
  bool has_image;
  struct source_image image;
};

struct metrics;

struct pipeline_opts {
  /* Set to non-zero (from a signal handler) to stop the import at the next extent. */
  const volatile sig_atomic_t *cancelled;
  /* CDI's progress metric (pkg/metrics), fed with the source bytes read; NULL: none. */
  struct metrics *metrics;
  /* A human progress line on stderr (the caller checks that stderr is a terminal). */
  bool progress_line;
};

/* Run the import `spec` describes. `opts` may be NULL. Returns 0 when every stage passed; -1 with `err`
 * filled otherwise (VERR_CHECKSUM for a source checksum mismatch, in CDI's wording;
 * VERR_VERIFY for a block hash mismatch, naming the blocks; VERR_SCRATCH_REQUIRED
 * with result->scratch_space_required set; the stage's own code for the rest).
 * `result` is filled as far as the import got. */
int pipeline_import(const struct import_spec *spec, const struct pipeline_opts *opts,
                    struct pipeline_result *result, struct verr *err);

/* The terminal progress line: an observer of pkg/metrics' progress counter that
 * rewrites one stderr line with the share of `total` bytes read (0: unknown), and
 * clears it when the counter closes. *out owns the line's state until it is given to
 * progress_counter_new(), which frees it on close (or on failure). */
struct progress_observer;
int progress_line_new(uint64_t total, struct progress_observer *out, struct verr *err);

/* The scratch spill: an unnamed file under `dir` (gone at spill_free) that keeps byte
 * ranges at their source offsets, written by spill_write() and read back by
 * spill_pread(); only what is written takes space. A full scratch volume is VERR_IO with
 * "no space left on device" in the message (CDI's controller maps that phrase). */
struct spill;
int spill_new(const char *dir, struct spill **out, struct verr *err);
int spill_write(struct spill *s, const void *buf, size_t len, uint64_t off, struct verr *err);
int spill_pread(struct spill *s, void *buf, size_t len, uint64_t off, struct verr *err);
uint64_t spill_bytes(const struct spill *s); /* written, in all */
void spill_free(struct spill *s);
/* Read `in` to its end, keeping nothing (a digest above still sees every byte). */
int spool_drain(struct vreader *in, struct verr *err);
/* Copy the rest of `in` into a new file "vimport-<name>-XXXXXX" under `dir`, named in
 * `path` (`size` bytes) on success; the caller unlinks it. A full scratch volume fails
 * as in spill_write(). */
int spool_to_file(struct vreader *in, const char *dir, const char *name, char *path, size_t size,
                  struct verr *err);

#endif
