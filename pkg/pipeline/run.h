/* vimport pipeline, internal: the state of one import, shared by the pipeline's files.
 *
 *   pipeline.c  the order of the steps, opening the target, the read-back, failure
 *   input.c     the source and its filters: digest and signature taps, sniff, decompress,
 *               format policy, the expected checksum (inline or from a checksum file)
 *   decode.c    drives a row of the decoder table (pkg/decode): the row's input, the fit
 *               of the target, the write-time block hash and its tee, the guard
 *   spool.c     the scratch spool and the scratch copy (see pipeline.h)
 *   archive.c   contentType archive: the source through input.c, unpacked by pkg/archive
 *
 * Calls run one way: pipeline.c -> input.c, decode.c -> pkg/decode; decode.c -> input.c
 * (run_chain_lost) and spool.c; nothing calls back into pipeline.c.
 *
 * Not a public header: nothing outside pkg/pipeline includes it.
 */
#ifndef VIMPORT_PIPELINE_RUN_H
#define VIMPORT_PIPELINE_RUN_H

#include <stdbool.h>
#include <time.h>

#include "blkhash/blkhash.h"
#include "decode/decode.h"
#include "digest/digest.h"
#include "pipeline.h"
#include "sniff/sniff.h"
#include "trust/trust.h"
#include "verify/verify.h"

struct target;

struct import_run {
  const struct import_spec *spec;
  struct pipeline_opts opts;
  struct pipeline_result *res;
  struct vreader *chain;  /* the top reader; owns every reader below it */
  struct vreader *source; /* borrowed from the chain: for source_info() */
  struct vreader *tap;    /* borrowed from the chain: the source digest (pkg/digest) */
  struct vreader *sigtap; /* borrowed from the chain: the signature check, or NULL */
  struct checksum expected; /* the source checksum to meet, when has_expected */
  /* The spec's block hash settings, with the expected hash that vimport.blockHashURL
   * lists when it is given (input_open). `digest` is owned here. */
  struct spec_block_hash block_hash;
  bool has_expected;
  bool expected_from_object; /* `expected` is the store's own digest of the object */
  struct sniff_result sniff;
  struct target *target;
  /* Write-time block hash of the guest content: `hash` for decoders that emit in guest
   * order, `unordered` for those that do not (qcow2). One of them is set. */
  struct blkhash *hash;
  struct blkhash_unordered *unordered;
  struct blockmap *written_map;
  struct blkhash_opts hash_opts;
  struct spill *spill;   /* qcow2 from a source that cannot be re-read: its overflow */
  bool target_touched;   /* the target was sized or written: a failure invalidates it */
  uint64_t plain_bound;  /* with no target (archive): the decompressor's output bound */
};

/* input.c */
int input_open(struct import_run *run, struct verr *err);
int input_check_checksum(struct import_run *run, struct verr *err);
/* What an image source (a registry) found, into the result, as far as it got. */
void input_record_image(struct import_run *run);
/* Source bytes read so far (for a failed import's report). */
uint64_t input_bytes_read(struct import_run *run);
int input_check_signature(struct import_run *run, struct verr *err);
/* A reader constructor that fails closes the reader it was given, and with it every
 * reader below: forget the borrowed pointers into the chain too. Returns -1. */
int run_chain_lost(struct import_run *run);

/* decode.c */
/* The row of the decoder table that accepts the sniffed image, driven; a format no row
 * accepts is refused, saying what to do instead. */
int decode_image(struct import_run *run, struct verr *err);
/* Drive `row`: its input, the target's fit, the block hash and its tee, the guard. */
int decode_run(struct import_run *run, const struct decoder *row, struct verr *err);

/* archive.c */
/* contentType archive: the source's tar unpacked into the target's directory, all or
 * nothing, after its checksum and signature passed. */
int archive_import(struct import_run *run, struct verr *err);

static inline void run_add_verified(struct pipeline_result *res, const char *stage)
{
  if (res->n_verified < PIPELINE_MAX_VERIFIED)
    res->verified[res->n_verified++] = stage;
}

/* The terminal line during the read-back (progress.c): a per-block observer chained in
 * front of the one already in `opts` (the read-back's block map), which it still calls.
 * The caller owns `p` and keeps it alive while `opts` is used; end it once done. */
struct readback_line {
  void (*inner)(void *opaque, uint64_t index, const unsigned char *md, unsigned md_len);
  void *inner_opaque;
  uint64_t total;
  size_t block_size;
  struct timespec start, last;
};
void readback_line_attach(struct readback_line *p, struct blkhash_opts *opts, uint64_t total);
void readback_line_end(const struct readback_line *p);

#endif
