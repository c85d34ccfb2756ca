/* vimport blkhash: the block hash of a disk image, compatible with blksum (blkhash 0.10+).
 *
 *   H( H(block_0) || H(block_1) || ... || H(block_n-1) || LE64(length) )
 *
 * Blocks are `block_size` bytes (64 KiB by default), the last one may be short, H is
 * any OpenSSL digest by name (sha256 by default). A full block of zeros hashes to the
 * precomputed H(zeros(block_size)) without being read or hashed, so holes cost nothing.
 *
 * Data arrives in order through blkhash_update() and blkhash_zero(). Worker threads
 * hash blocks in parallel; the result never depends on the thread count. Memory is
 * bounded whatever the input size: (2 * threads + 1) batches of max(1 MiB, block_size).
 *
 * Every function returning int returns 0 on success or a positive errno value:
 * EINVAL for bad options (unknown digest name, block size not a power of two between
 * 512 B and 64 MiB), ENOMEM, or EIO when OpenSSL fails.
 */
#ifndef VIMPORT_BLKHASH_H
#define VIMPORT_BLKHASH_H

#include <stddef.h>
#include <stdint.h>

#define BLKHASH_DEFAULT_BLOCK_SIZE (64u * 1024u)
#define BLKHASH_MAX_MD_SIZE 64 /* EVP_MAX_MD_SIZE */

struct blkhash;

struct blkhash_opts {
  const char *digest_name; /* OpenSSL digest name; NULL means "sha256" */
  size_t block_size;       /* 0 means BLKHASH_DEFAULT_BLOCK_SIZE */
  unsigned threads;        /* worker threads; 0 or 1 hashes in the caller's thread */
  /* Optional: called once per block, in block order, from the thread that calls
   * update/zero/final, with that block's digest (zero blocks included). Lets a caller
   * keep a per-block manifest to say *which* blocks differ later. May be NULL. */
  void (*on_block)(void *opaque, uint64_t index, const unsigned char *md, unsigned md_len);
  void *on_block_opaque;
};

/* Create a hasher. On success *out owns it (free with blkhash_free). */
int blkhash_new(const struct blkhash_opts *opts, struct blkhash **out);

/* Hash `len` bytes that follow everything hashed so far. Full blocks that are all
 * zeros are detected and not hashed. The caller keeps `buf`. */
int blkhash_update(struct blkhash *h, const void *buf, size_t len);

/* Zero-copy input, for a caller that reads the bytes into memory anyway (a file, a
 * device): read them straight into the hasher. blkhash_buffer() gives the free part
 * of the batch being filled: *buf and *len (at least 1 byte). Write up to *len bytes
 * there, then blkhash_commit(h, n) with the count written: the same as
 * blkhash_update() of those bytes, without copying them. The buffer is the hasher's
 * and valid until the next call on `h`. It is 4096-byte aligned when everything hashed
 * so far (data and zeros) is a multiple of 4096 bytes, so O_DIRECT reads can use it.
 * blkhash_commit() with n > *len is EINVAL. */
int blkhash_buffer(struct blkhash *h, void **buf, size_t *len);
int blkhash_commit(struct blkhash *h, size_t n);

/* Zero-copy input for bytes the caller has in memory anyway and can keep there (a
 * read-only file mapping): whole blocks are hashed where they lie, by the workers,
 * instead of being copied into the hasher's batches. The same as blkhash_update() of
 * those bytes, but `buf` must stay valid and unchanged until blkhash_settle() returns
 * (or _final, or _free). Without worker threads it is blkhash_update(). */
int blkhash_update_inplace(struct blkhash *h, const void *buf, size_t len);
/* Wait until the hasher reads nothing given to blkhash_update_inplace() anymore (also
 * when it fails: the memory may be given back either way). */
int blkhash_settle(struct blkhash *h);

/* Hash `len` zero bytes without reading anything: a known hole. */
int blkhash_zero(struct blkhash *h, uint64_t len);

/* Finish. Writes the digest to `md` (at least BLKHASH_MAX_MD_SIZE bytes) and its length
 * to *md_len. After this only blkhash_free() is allowed. */
int blkhash_final(struct blkhash *h, unsigned char *md, unsigned *md_len);

/* The digest blkhash_final() would give now, over the blkhash_length() bytes hashed so
 * far, while hashing goes on: a volume larger than its image is hashed once, and both
 * the image's hash (its first V bytes) and the volume's come out. Waits for the
 * workers; the bytes of a partly filled batch (under 1 MiB) are hashed a second time.
 * EINVAL after blkhash_final(). */
int blkhash_snapshot(struct blkhash *h, unsigned char *md, unsigned *md_len);

/* Bytes hashed so far (data and zeros). */
uint64_t blkhash_length(const struct blkhash *h);

/* Free the hasher; joins its workers. NULL is fine. */
void blkhash_free(struct blkhash *h);

/* Whether `name` is a digest this OpenSSL knows, or "null" (blksum's digest of nothing:
 * the result is empty, for measuring reads alone). */
int blkhash_digest_known(const char *name);

/* Lowercase hex of md[0..len) into out (2*len+1 bytes). */
void blkhash_hex(const unsigned char *md, unsigned len, char *out);

/* A struct vsink (pkg/core/stream.h) that feeds `h`. Extents must arrive in offset
 * order with no gap (a decoder walking guest content in order); anything else is an
 * error. The sink keeps a pointer to `h` and to `state`, which the caller owns and
 * must keep alive while the sink is in use. */
struct vsink;
struct blkhash_sink_state {
  struct blkhash *h;
  uint64_t next_offset;
};
void blkhash_sink_init(struct vsink *sink, struct blkhash_sink_state *state, struct blkhash *h);

/* ---- Whole blocks hashed on the caller's own threads ----
 *
 * For a decoder that already runs worker threads (qcow2 decompression): each worker
 * hashes the whole blocks it produced while they are still in its cache, and the
 * digests travel with the bytes (struct vsink_digests, vsink_data_digested()) to
 * blkhash_unordered_digests(), so the block hash neither copies nor hashes them again.
 * A blkhash_blocks is for one thread at a time; its options must be the ones the
 * receiving hasher was made with (the receiver checks the digest and block size). */
struct blkhash_blocks;
struct vsink_digests;
int blkhash_blocks_new(const struct blkhash_opts *opts, struct blkhash_blocks **out);
/* The digests of `nblocks` whole blocks at `buf` into `mds` (nblocks * md_len bytes);
 * all-zero blocks get H(zeros(block_size)) without being hashed. */
int blkhash_blocks_hash(struct blkhash_blocks *b, const void *buf, size_t nblocks,
                        unsigned char *mds);
/* `mds`, made by `b`, described for vsink_data_digested(). */
void blkhash_blocks_describe(const struct blkhash_blocks *b, const unsigned char *mds,
                             struct vsink_digests *d);
size_t blkhash_blocks_block_size(const struct blkhash_blocks *b);
unsigned blkhash_blocks_md_len(const struct blkhash_blocks *b);
void blkhash_blocks_free(struct blkhash_blocks *b);

/* ---- Guest content in any order ----
 *
 * The same block hash for a decoder that emits extents out of guest order (qcow2 data
 * clusters arrive in host order). Each guest byte of [0, length) must arrive exactly
 * once, as data or as zeros. Blocks are hashed as soon as all their bytes are known and
 * folded in order; digests that run ahead of the first incomplete block, and blocks that
 * arrive in pieces, wait in memory bounded by `max_pending` bytes (EFBIG past it).
 * With opts->threads > 1, runs of whole blocks are copied to worker threads (pool.h)
 * and hashed there, which adds threads * 2 + 1 MiB-sized buffers; else hashing runs in
 * the caller's thread. Either way opts->on_block sees
 * every block in order, as with blkhash_new(). Errors are errno values as above, plus
 * EINVAL for bytes that arrive twice, ERANGE for bytes outside [0, length), and EIO from
 * _final when some bytes never arrived. */
struct blkhash_unordered;
int blkhash_unordered_new(const struct blkhash_opts *opts, uint64_t length, size_t max_pending,
                          struct blkhash_unordered **out);
int blkhash_unordered_data(struct blkhash_unordered *u, uint64_t offset, const void *buf, size_t len);
int blkhash_unordered_zero(struct blkhash_unordered *u, uint64_t offset, uint64_t len);
/* Whole blocks [first_block, first_block + count), given by their digests instead of
 * their bytes (blkhash_blocks above, same digest and block size as `u`; none of them
 * the short last block). EINVAL for blocks that arrived before, ERANGE past the end. */
int blkhash_unordered_digests(struct blkhash_unordered *u, uint64_t first_block,
                              const unsigned char *mds, size_t count);
/* For a decoder that learns the guest size only at its end: create the hasher with a
 * length that is an upper bound, then give the real length before _final. ERANGE if
 * bytes already arrived past it. */
int blkhash_unordered_set_length(struct blkhash_unordered *u, uint64_t length);
int blkhash_unordered_final(struct blkhash_unordered *u, unsigned char *md, unsigned *md_len);
void blkhash_unordered_free(struct blkhash_unordered *u);
/* A vsink feeding `u` (owned by `u`); EFBIG becomes VERR_SCRATCH_REQUIRED. It takes
 * .digested extents when their digests match `u`'s, else hashes their bytes. */
struct vsink *blkhash_unordered_sink(struct blkhash_unordered *u);

#endif
