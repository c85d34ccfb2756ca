/* vimport qcow2: what the file reader and the stream decoder share. Not public: the
 * stage's contract is qcow2.h. Format reference: qemu docs/interop/qcow2.txt. */
#ifndef VIMPORT_QCOW2_INTERNAL_H
#define VIMPORT_QCOW2_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define QCOW2_HEADER_PROBE 512u /* bytes enough to learn the cluster size */
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES (32u * 1024 * 1024) /* qemu's QCOW_MAX_L1_SIZE */
#define QCOW2_SUBCLUSTERS 32
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull /* bits 9..55 of L1/L2 entries */

/* The header, validated, and the geometry derived from it. */
struct qcow2_layout {
  uint32_t version;
  uint32_t cluster_bits;
  uint32_t cluster_size;
  uint64_t virtual_size;
  uint64_t l1_offset;
  uint32_t l1_size;            /* entries in the header's L1 */
  uint32_t l1_used;            /* entries that map [0, virtual_size) */
  uint64_t refcount_table_offset;
  uint64_t refcount_table_bytes;
  int extended_l2;
  int zstd;                    /* compression type 1 */
  uint32_t l2_entry_size;      /* 8, or 16 with extended L2 */
  uint32_t l2_entries;         /* entries per L2 table */
  uint64_t l2_coverage;        /* guest bytes one L2 table maps */
  uint32_t subcluster_size;    /* cluster_size / 32 with extended L2 */
};

/* From the first QCOW2_HEADER_PROBE bytes (fewer if the source is shorter), the cluster
 * size, so the caller can read the whole first cluster. Returns 0 or -1 (VERR_FORMAT). */
int qcow2_header_cluster_size(const uint8_t *buf, size_t len, uint32_t *cluster_size,
                              struct verr *err);

/* Parse and validate the header and its extensions from the first cluster (`len` may
 * be short if the source is). Refuses what we cannot read faithfully. */
int qcow2_parse_header(const uint8_t *buf, size_t len, struct qcow2_layout *lay,
                       struct verr *err);

/* The L2 table offset in L1 entry `index`, 0 when unallocated. Checks alignment. */
int qcow2_l1_entry(const struct qcow2_layout *lay, uint64_t entry, uint32_t index,
                   uint64_t *l2_offset, struct verr *err);

enum qcow2_piece_kind { QCOW2_PIECE_ZERO, QCOW2_PIECE_DATA, QCOW2_PIECE_COMPRESSED };

/* A run of guest bytes and where they come from. */
struct qcow2_piece {
  enum qcow2_piece_kind kind;
  uint64_t guest;    /* guest offset */
  uint64_t len;      /* guest bytes, clipped to the virtual size */
  uint64_t host;     /* DATA: first host byte; COMPRESSED: first compressed byte */
  uint64_t host_len; /* DATA: == len; COMPRESSED: compressed bytes (may pass EOF) */
};

/* Decode entry `index` of the L2 table `l2` (one cluster), mapping the guest cluster at
 * `guest` (< virtual size), into at most QCOW2_SUBCLUSTERS pieces, in guest order,
 * adjacent pieces of one kind merged. Returns 0 or -1 (VERR_FORMAT). */
int qcow2_l2_entry_pieces(const struct qcow2_layout *lay, const uint8_t *l2, uint32_t index,
                          uint64_t guest, struct qcow2_piece *pieces, unsigned *count,
                          struct verr *err);

/* Decompresses clusters; holds the zlib/zstd contexts so each cluster does not
 * allocate. */
struct qcow2_inflater;

int qcow2_inflater_new(const struct qcow2_layout *lay, struct qcow2_inflater **out,
                       struct verr *err);
void qcow2_inflater_free(struct qcow2_inflater *z);

/* Decompress `in` into exactly `out_len` bytes (one cluster). Trailing input after the
 * compressed stream is ignored (sector padding). `host` is for messages only.
 * *consumed (`consumed` may be NULL) is the exact length of the compressed stream when
 * it ended cleanly within `in`, else 0: qemu rounds a compressed cluster's length up to
 * whole sectors, and the rounding can hold the start of the next cluster, so only this
 * says which bytes the cluster really used. */
int qcow2_inflate(struct qcow2_inflater *z, const void *in, size_t in_len, void *out,
                  size_t out_len, uint64_t host, size_t *consumed, struct verr *err);

/* Compressed clusters decompressed on `threads` worker threads (inflate_pool.c). Each
 * finished cluster goes to `emit` on the caller's thread, in any order: its first
 * guest_len bytes, and how many of its compressed bytes it used (qcow2_inflate's
 * consumed). _add copies `in`; it may wait for a free job, emitting finished ones. _drain
 * waits for every queued cluster and emits it. Errors: a cluster's own (VERR_FORMAT),
 * the emit's, VERR_NOMEM. Clusters go to the workers in batches of about 1 MiB of
 * output (one cluster when clusters are larger). Memory: 2 * threads + 1 batches, each
 * its clusters out and their compressed bytes in, at most 16 MiB: with 2 MiB clusters,
 * 4 jobs on 3 threads. With `block_hash` (non-NULL) and clusters a whole number of its
 * blocks, the workers hash each whole cluster's blocks too and `digests` is their
 * digests; else `digests` is NULL. */
struct vsink_digests;
struct blkhash_opts;
struct qcow2_emitted {
  uint64_t host;    /* first compressed byte */
  size_t consumed;  /* compressed bytes the stream used; 0: not known */
  uint64_t guest;   /* guest offset */
  const uint8_t *buf;
  uint64_t len;     /* guest bytes at buf */
  const struct vsink_digests *digests;
};
typedef int (*qcow2_emit_fn)(void *opaque, const struct qcow2_emitted *e, struct verr *err);
struct qcow2_inflate_pool;
int qcow2_inflate_pool_new(const struct qcow2_layout *lay, unsigned threads,
                           const struct blkhash_opts *block_hash, qcow2_emit_fn emit,
                           void *emit_opaque, struct qcow2_inflate_pool **out, struct verr *err);
int qcow2_inflate_pool_add(struct qcow2_inflate_pool *p, uint64_t host, const uint8_t *in,
                           size_t in_len, uint64_t guest, uint64_t guest_len, struct verr *err);
int qcow2_inflate_pool_drain(struct qcow2_inflate_pool *p, struct verr *err);
void qcow2_inflate_pool_free(struct qcow2_inflate_pool *p);

static inline uint64_t qcow2_be64(const uint8_t *p)
{
  return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) | ((uint64_t)p[2] << 40) |
         ((uint64_t)p[3] << 32) | ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
         ((uint64_t)p[6] << 8) | (uint64_t)p[7];
}

static inline uint32_t qcow2_be32(const uint8_t *p)
{
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
         (uint32_t)p[3];
}

#endif
