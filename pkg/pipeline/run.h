/* vimport pipeline, internal: the state of one import, shared by the pipeline's files.
 *
 *   pipeline.c  the order of the steps, the target, block hashes, read-back, failure
 *   input.c     the source and its filters: digest and signature taps, sniff, decompress,
 *               format policy, the expected checksum (inline or from a checksum file)
 *   decode.c    guest content out of the sniffed format: raw, qcow2, qemu-nbd formats
 *   raw.c, spool.c   the raw decoder and the scratch spool (see pipeline.h)
 *
 * Not a public header: nothing outside pkg/pipeline includes it.
 */
#ifndef VIMPORT_PIPELINE_RUN_H
#define VIMPORT_PIPELINE_RUN_H

#include <stdbool.h>

#include "blkhash/blkhash.h"
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
  bool has_expected;
  struct sniff_result sniff;
  struct target *target;
  /* Write-time block hash of the guest content: `hash` for decoders that emit in guest
   * order, `unordered` for those that do not (qcow2). One of them is set. */
  struct blkhash *hash;
  struct blkhash_unordered *unordered;
  struct blockmap *written_map;
  struct blkhash_opts hash_opts;
  struct vsink guard;    /* the target sink behind a check for cancellation */
  bool target_touched;   /* the target was sized or written: a failure invalidates it */
};

/* input.c */
int input_open(struct import_run *run, struct verr *err);
int input_check_checksum(struct import_run *run, struct verr *err);
/* Source bytes read so far (for a failed import's report). */
uint64_t input_bytes_read(struct import_run *run);
int input_check_signature(struct import_run *run, struct verr *err);
/* A reader constructor that fails closes the reader it was given, and with it every
 * reader below: forget the borrowed pointers into the chain too. Returns -1. */
int run_chain_lost(struct import_run *run);

/* decode.c */
int decode_image(struct import_run *run, struct verr *err);
/* An NBD export: guest content already, read with block status (pkg/nbd). */
int decode_nbd(struct import_run *run, struct verr *err);

/* pipeline.c, for the decoders */
struct vsink *run_guarded_target(struct import_run *run);
/* target_check_fits() for `size` guest bytes; from here on a failure invalidates the target. */
int run_fit_target(struct import_run *run, uint64_t size, struct verr *err);
int run_new_ordered_hash(struct import_run *run, struct verr *err);
int run_new_unordered_hash(struct import_run *run, uint64_t length, struct verr *err);
void run_add_verified(struct pipeline_result *res, const char *stage);

#endif
