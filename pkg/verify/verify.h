/* vimport verify: read a written target back from storage, hash it, and say which
 * blocks differ.
 *
 * verify_readback() drops the target's cached pages, reads it with O_DIRECT where the
 * filesystem allows it, skips holes of regular files (SEEK_DATA/SEEK_HOLE, hashed as
 * zeros without reading), and returns its blkhash. Memory: one 4 MiB aligned buffer plus
 * the hasher's own bound.
 *
 * A blockmap is a manifest of block digests, filled from blkhash's on_block callback
 * (attach it to the write-time hasher and to the read-back hasher). It keeps an 8-byte
 * fingerprint per non-zero block; all-zero blocks cost nothing. Its size is bounded by
 * `max_entries`: past it, neighbouring blocks are folded into granules of 2, 4, 8...
 * blocks, so a mismatch is still localised, only more coarsely.
 * verify_compare() turns two manifests into a message naming the differing byte ranges.
 *
 * A manifest file (manifest.c, the one place that writes or reads the format) keeps the
 * per-block digests of an image on disk: `vimport sum --manifest` writes one,
 * `vimport verify --manifest` compares a volume with it to name the byte ranges that
 * changed. See "Manifest files" below for the format.
 */
#ifndef VIMPORT_VERIFY_H
#define VIMPORT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "blkhash/blkhash.h"
#include "core/error.h"

#define VERIFY_READ_SIZE (4u * 1024u * 1024u) /* bytes per read */
#define BLOCKMAP_DEFAULT_MAX_ENTRIES (1u << 20) /* 16 MiB: 64 GiB of data block by block */

struct verify_result {
  bool direct_io;          /* read with O_DIRECT; false: page cache dropped, then buffered */
  uint64_t bytes_read;     /* data bytes read from storage */
  uint64_t hole_bytes;     /* bytes hashed as zeros from holes, never read */
};

/* Read the first `length` bytes of `path` (regular file or block device) back from
 * storage and compute their block hash with `opts` (digest, block size, threads,
 * optional on_block callback, e.g. a blockmap via blockmap_attach()). Writes the digest
 * to `md` (BLKHASH_MAX_MD_SIZE bytes) and its length to *md_len; `result` (may be NULL)
 * says how the bytes were read.
 * Before reading, the file is fsynced and its cached pages dropped so the bytes come
 * from storage, not from memory. When O_DIRECT is refused (tmpfs, some FUSE and network
 * filesystems) reading falls back to buffered I/O and result->direct_io says so.
 * Errors: VERR_IO (open, read; a target shorter than `length`), VERR_USAGE (bad digest
 * or block size), VERR_NOMEM. */
int verify_readback(const char *path, uint64_t length, const struct blkhash_opts *opts,
                    unsigned char *md, unsigned *md_len, struct verify_result *result,
                    struct verr *err);

/* A volume larger than the image written to it (CDI grows a file to the requested size;
 * a block device is what it is): the image's hash over its first `image_length` bytes
 * comes out of the same pass as the volume's. */
struct verify_span {
  uint64_t image_length;   /* V; V >= length: the image is the whole length */
  bool zeros_after_image;  /* [V, length) must read as zeros, else VERR_VERIFY naming the
                            * first non-zero byte and its block (a file grown with a hole) */
  unsigned char image_md[BLKHASH_MAX_MD_SIZE]; /* out: the block hash of [0, V) */
  unsigned image_md_len;
};

/* verify_readback() that also fills `span` (NULL: the same as verify_readback()).
 * Holes past V are hashed as zeros without being read. */
int verify_readback_span(const char *path, uint64_t length, const struct blkhash_opts *opts,
                         struct verify_span *span, unsigned char *md, unsigned *md_len,
                         struct verify_result *result, struct verr *err);

struct blockmap;

/* A manifest for blocks of `block_size` bytes (0 = BLKHASH_DEFAULT_BLOCK_SIZE) hashed
 * with `digest_name` (NULL = sha256), holding at most `max_entries` (0 = default)
 * fingerprints. On success *out owns it (free with blockmap_free).
 * Errors: VERR_USAGE (unknown digest, bad block size), VERR_NOMEM. */
int blockmap_new(const char *digest_name, size_t block_size, size_t max_entries,
                 struct blockmap **out, struct verr *err);

/* Point opts->on_block at `m` (and set opts->on_block_opaque). `m` must outlive every
 * hasher created from `opts`. A map takes one hasher's blocks: use one map per hash. */
void blockmap_attach(struct blockmap *m, struct blkhash_opts *opts);

/* The callback itself, for callers that chain their own on_block. `opaque` is the map. */
void blockmap_on_block(void *opaque, uint64_t index, const unsigned char *md,
                       unsigned md_len);

/* Fingerprints held (for tests and memory reports). */
size_t blockmap_entries(const struct blockmap *m);

/* Blocks per fingerprint: 1 until max_entries was reached, then 2, 4, ... */
uint64_t blockmap_granule_blocks(const struct blockmap *m);

/* Free the map (NULL is fine). */
void blockmap_free(struct blockmap *m);

/* Compare the write-time and read-back block hashes of `length` bytes.
 * Equal: returns 0. Different: returns -1 with VERR_VERIFY and a message naming the
 * differing blocks as coalesced byte ranges ("blocks 17-18 (bytes 1114112-1245183)"),
 * at most a handful of ranges then "and N more ranges", when both maps are given and
 * complete; otherwise it says the difference could not be localised.
 * `written` and `readback` may be NULL. */
int verify_compare(const unsigned char *written_md, const unsigned char *readback_md,
                   unsigned md_len, const struct blockmap *written,
                   const struct blockmap *readback, uint64_t length, struct verr *err);

/* ---- Manifest files ----------------------------------------------------------------------
 *
 * Text, one line each, in this order:
 *   vimport-manifest 1
 *   digest <OpenSSL name>
 *   block-size <bytes>
 *   <block index> <hex digest>     one per block that is not all zeros, in index order
 *   length <bytes hashed>
 *   blockhash <hex of the block hash>
 * Blocks left out read as zeros (a short last block: zeros of its length). */

struct manifest_writer;

/* Start writing a manifest of blocks of `block_size` bytes (0 = the default) hashed with
 * `digest_name` to `path`.tmp; manifest_writer_close() renames it to `path` once it is
 * complete, so `path` never holds half a manifest. On success *out owns the writer.
 * Errors: VERR_IO (cannot create the file), VERR_INTERNAL (unknown digest), VERR_NOMEM. */
int manifest_writer_open(const char *path, const char *digest_name, size_t block_size,
                         struct manifest_writer **out, struct verr *err);

/* Point opts->on_block at the writer: one line per non-zero block the hasher reports. */
void manifest_writer_attach(struct manifest_writer *m, struct blkhash_opts *opts);

/* `ok`: the hash completed over `length` bytes with block hash `hex`; write the trailer
 * and move the file into place. Not `ok`: remove the partial file and return 0. Frees the
 * writer either way (NULL is fine). Errors (only when `ok`): VERR_IO, the file removed. */
int manifest_writer_close(struct manifest_writer *m, bool ok, uint64_t length, const char *hex,
                          struct verr *err);

struct manifest_reader;

/* Open the manifest at `path` to compare a hash of `length` bytes with it, streaming
 * (memory does not grow with the manifest). The header must name `digest_name` and
 * `block_size` (what the spec asks for), else VERR_USAGE says how to make a matching one.
 * Lines after the header are read as the hasher reaches them: a malformed one does not
 * fail here but is reported by manifest_reader_finish(). On success *out owns the reader.
 * Errors: VERR_USAGE (cannot open, not a manifest, other digest or block size),
 * VERR_INTERNAL, VERR_NOMEM. */
int manifest_reader_open(const char *path, const char *digest_name, size_t block_size,
                         uint64_t length, struct manifest_reader **out, struct verr *err);

/* The same over an open stream `f` (owned from the call on, closed also on failure),
 * called `name` in messages: for tests and the fuzzer. */
int manifest_reader_open_stream(FILE *f, const char *name, const char *digest_name,
                                size_t block_size, uint64_t length,
                                struct manifest_reader **out, struct verr *err);

/* Point opts->on_block at the reader: each block is compared with its manifest line. */
void manifest_reader_attach(struct manifest_reader *m, struct blkhash_opts *opts);

/* The callback itself. `opaque` is the reader. */
void manifest_reader_on_block(void *opaque, uint64_t index, const unsigned char *md,
                              unsigned md_len);

/* After the hash: read the rest of the manifest and append to the string `out` (`size`
 * bytes in all) what the comparison found: the byte ranges that changed, or why the
 * manifest could not be used, or that it covers another length or another image than the
 * one whose block hash is `expected_hex`. */
void manifest_reader_finish(struct manifest_reader *m, const char *expected_hex, char *out,
                            size_t size);

/* Close and free (NULL is fine). */
void manifest_reader_free(struct manifest_reader *m);

#endif
