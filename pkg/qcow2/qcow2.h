/* vimport qcow2: read qcow2 images, from a file or in one streaming pass.
 *
 * Two readers share one header parser and one L2 entry decoder:
 *
 *   - qcow2_file_*: random access to a qcow2 FILE (pread). Emits the guest content in
 *     increasing guest offset order. Used by `vimport sum`.
 *   - qcow2_stream_decode(): the import path. Reads the source ONCE, in order, never
 *     seeks, and emits each data cluster as soon as the table mapping it has passed.
 *
 * Both emit guest content into a `struct vsink` (core/stream.h) and share this
 * contract: every guest byte in [0, virtual size) is covered EXACTLY ONCE, either by a
 * data extent or by a zero extent. Unallocated clusters, zero clusters and zero
 * subclusters become zero extents (never materialised); adjacent zero ranges are
 * merged. Data buffers belong to the reader and are only valid during the call; the
 * sink must copy what it keeps. Data extents are at most QCOW2_MAX_EXTENT bytes.
 *
 * Accepted: versions 2 and 3, cluster sizes 512 B .. 2 MiB, the zero flag, extended L2
 * entries (subclusters), compressed clusters (deflate, zstd), internal snapshots (only
 * the active L1 is read), the dirty bit (only refcounts may be stale; they are not
 * read). Refused (VERR_FORMAT, with a message naming the cause and the remedy): a
 * backing file, an external data file, encryption (AES or LUKS), the corrupt bit,
 * unknown incompatible feature bits, tables or clusters that start outside the file,
 * sizes that do not fit, compressed clusters that do not decompress. Like qemu, bytes a
 * cluster would read past the end of the file read as zeros.
 */
#ifndef VIMPORT_QCOW2_H
#define VIMPORT_QCOW2_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"

#define QCOW2_MAX_EXTENT (1024u * 1024u) /* largest data extent handed to a sink */

/* Whether `buf` (`len` bytes from the start of a source) begins with the qcow2 magic
 * "QFI\xfb". Needs 4 bytes; returns 0 when shorter. */
int qcow2_probe(const void *buf, size_t len);

/* ---- Random access: a qcow2 file ---- */

struct qcow2_file;

/* Parse and validate the header and active L1 table of the qcow2 image open on `fd`
 * (read-only is enough). The caller keeps ownership of `fd` and must keep it open
 * until qcow2_file_free(). On success *out owns the reader; memory is the L1 table
 * plus one cluster and one QCOW2_MAX_EXTENT buffer. On failure returns -1 with `err`
 * filled (VERR_FORMAT for images we refuse, VERR_IO, VERR_NOMEM). */
int qcow2_file_open(int fd, struct qcow2_file **out, struct verr *err);

/* Virtual (guest) size in bytes. */
uint64_t qcow2_virtual_size(const struct qcow2_file *f);

/* Cluster size in bytes. */
uint32_t qcow2_cluster_size(const struct qcow2_file *f);

/* Walk the whole guest disk and emit it to `out` in increasing offset order, each byte
 * exactly once (see the contract above). May be called more than once. Returns 0, or
 * -1 with `err` filled: a sink error is passed through unchanged; a bad table or
 * cluster is VERR_FORMAT, a failed read VERR_IO. */
int qcow2_file_read_guest(struct qcow2_file *f, struct vsink *out, struct verr *err);

/* Free the reader (not the fd). NULL is fine. */
void qcow2_file_free(struct qcow2_file *f);

/* ---- One streaming pass ---- */

#define QCOW2_DEFAULT_WINDOW_BYTES (64ull * 1024 * 1024)
#define QCOW2_DEFAULT_TABLE_BYTES (128ull * 1024 * 1024)

struct blkhash_opts;

struct qcow2_stream_opts {
  /* Bytes that arrive before the table that maps them are kept in memory, keyed by
   * host offset, up to this many bytes. 0 means QCOW2_DEFAULT_WINDOW_BYTES. */
  uint64_t window_bytes;
  /* Bound on the decoder's bookkeeping: the L1 table, mappings that point ahead of the
   * stream, digests of dropped clusters. 0 means QCOW2_DEFAULT_TABLE_BYTES. Exceeding
   * it fails with VERR_SCRATCH_REQUIRED. */
  uint64_t table_bytes;
  /* Optional: re-read `len` bytes at source offset `off` (e.g. an HTTP Range request).
   * Returns 0, or -1 with `err` filled. With it, clusters that do not fit the window
   * are dropped, their SHA-256 remembered, and exactly the ones needed are re-read at
   * the end and checked against that digest, so the source digest taken on the first
   * pass still covers every byte used. Without it (NULL), a full window fails the
   * decode with VERR_SCRATCH_REQUIRED (CDI's scratchSpaceRequired). */
  int (*pread)(void *opaque, void *buf, size_t len, uint64_t off, struct verr *err);
  /* Optional, with pread: keep the `len` bytes at source offset `off` where pread will
   * find them (a scratch file), called for each chunk just before it is dropped, so a
   * source that cannot be re-read (a pipe, a compressed stream) keeps only the chunks
   * that overflow the window, not a copy of everything. NULL: pread reads the source. */
  int (*spill)(void *opaque, const void *buf, size_t len, uint64_t off, struct verr *err);
  void *pread_opaque; /* for pread and spill */
  /* > 1: compressed clusters are decompressed on this many worker threads (started at
   * the first compressed cluster), in parallel with reading and with each other. */
  unsigned threads;
  /* Optional, with threads > 1: the workers also hash the whole block-hash blocks of
   * each cluster they decompressed, with these options, and the clusters go to the sink
   * through vsink_data_digested(), so the block hash need not copy or hash them again.
   * The options must be those of the block hash the sink feeds. NULL: bytes only. */
  const struct blkhash_opts *block_hash;
};

/* What the decoder found and what it cost; filled as far as the decode got. */
struct qcow2_info {
  uint32_t version;           /* 2 or 3 */
  uint32_t cluster_size;      /* bytes */
  uint64_t virtual_size;      /* bytes */
  int compressed_zstd;        /* compression type: 0 deflate, 1 zstd */
  int extended_l2;            /* subclusters */
  uint64_t source_bytes;      /* bytes read from `in`, to its end */
  uint64_t data_bytes;        /* guest bytes emitted as data */
  uint64_t zero_bytes;        /* guest bytes emitted as zeros */
  uint64_t window_peak_bytes; /* most bytes held in the window at once */
  uint64_t used_clusters;     /* kept clusters let go once compressed clusters used them */
  uint64_t dropped_clusters;  /* clusters dropped from a full window (digest kept) */
  uint64_t reread_bytes;      /* bytes re-read through opts->pread */
};

/* Decode the qcow2 image arriving on `in` (read once, in order, to its end; the
 * caller keeps ownership of `in`) into `out`. Extents come in any guest order, every
 * guest byte exactly once (see the contract above). `opts` may be NULL (defaults, no
 * pread); `info` may be NULL. Memory: window_bytes + table_bytes + a few clusters.
 * Returns 0, or -1 with `err` filled: VERR_FORMAT for images we refuse or that are
 * damaged, VERR_SCRATCH_REQUIRED when the image needs more look-ahead than the window
 * and no pread was given, VERR_SOURCE when a re-read differs from the first read,
 * reader and sink errors passed through unchanged. After an error the sink may have
 * received part of the image. */
int qcow2_stream_decode(struct vreader *in, struct vsink *out,
                        const struct qcow2_stream_opts *opts, struct qcow2_info *info,
                        struct verr *err);

#endif
