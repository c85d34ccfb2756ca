/* vimport digest: the source checksum, computed while the source streams past.
 *
 * The digest tap is a vreader filter: it sits right above the source reader, hands
 * every byte up unchanged (it reads into the caller's buffer) and hashes each byte
 * exactly once, in order. So the digest covers the bytes exactly as served, before
 * sniffing or decompression, and costs no second read of the source. The hashing runs
 * on a thread of the tap's own, from a copy (a ring of 8 x 512 KiB): it overlaps
 * decoding and writing instead of adding to them. A source that keeps its bytes in a
 * ring of its own (pkg/source, source_digest_ring()) needs no copy: the tap's thread
 * reads that ring in place as its second consumer. digest_source_tap_new() picks the
 * way by that capability; all the hashing of the source is here, whatever its kind.
 *
 * Checksums use CDI's "<algorithm>:<hex>" form, e.g. "sha256:9f86d0...". Accepted
 * algorithms are md5, sha1, sha256 and sha512 (OpenSSL libcrypto EVP). The hex part is
 * always printed in lowercase.
 *
 * Errors follow pkg/core/error.h: functions return 0 (or a count) on success and -1
 * with `err` filled on failure.
 */
#ifndef VIMPORT_DIGEST_H
#define VIMPORT_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"

/* Longest algorithm name ("sha256") plus NUL. */
#define CHECKSUM_ALG_MAX 8
/* Longest hex digest (sha512: 128 digits) plus NUL. */
#define CHECKSUM_HEX_MAX 129
/* Buffer size that holds any "<alg>:<hex>" string with its NUL ("sha512:" + 128 + 1). */
#define CHECKSUM_STRING_MAX (CHECKSUM_ALG_MAX + CHECKSUM_HEX_MAX)

/* A parsed, normalised checksum: algorithm in lowercase, hex in lowercase. */
struct checksum {
  char algorithm[CHECKSUM_ALG_MAX]; /* "md5" | "sha1" | "sha256" | "sha512" */
  char hex[CHECKSUM_HEX_MAX];       /* 32 | 40 | 64 | 128 lowercase hex digits */
};

/* Whether `algorithm` is one of md5, sha1, sha256, sha512 (lowercase). Returns the
 * digest length in hex digits (32, 40, 64, 128), or 0 when it is not accepted. */
size_t checksum_hex_length(const char *algorithm);

/* Parse CDI's "<alg>:<hex>" form into `out`. The algorithm name and the hex digits are
 * case-insensitive and normalised to lowercase; nothing else is allowed (no spaces, no
 * other separator). On failure returns -1 with VERR_USAGE and a message that says what
 * is accepted; `out` is then unspecified. */
int checksum_parse(const char *s, struct checksum *out, struct verr *err);

/* Write `c` as "<alg>:<hex>" to `out` (at least CHECKSUM_STRING_MAX bytes is always
 * enough). Returns -1 with VERR_INTERNAL when `out_size` is too small. */
int checksum_format(const struct checksum *c, char *out, size_t out_size, struct verr *err);

/* Write a raw digest `md` (md_len bytes) of `algorithm` as "<alg>:<hex>" to `out`.
 * Returns -1 with VERR_INTERNAL when `out_size` is too small or md_len does not fit. */
int checksum_from_md(const char *algorithm, const unsigned char *md, unsigned md_len, char *out,
                     size_t out_size, struct verr *err);

/* Compare the expected checksum with a calculated "<alg>:<hex>" string (as written by
 * digest_tap_final). Returns 0 when they are equal. On a mismatch returns -1 with
 * VERR_CHECKSUM and CDI's wording:
 *   "checksum mismatch: expected sha256:X, calculated sha256:Y"
 * When `calculated` does not parse or uses another algorithm, returns -1 with
 * VERR_INTERNAL (the caller hashed with the wrong algorithm: a bug). */
int checksum_compare(const struct checksum *expected, const char *calculated, struct verr *err);

/* Create a digest tap over `lower`, hashing with `algorithm` (md5|sha1|sha256|sha512).
 * The tap owns `lower` from this call on, also on failure (it is then closed). Reading
 * from *out reads from `lower` into the caller's buffer and hashes what was read;
 * closing *out closes `lower`. Errors: VERR_USAGE for an algorithm not in the list,
 * VERR_NOMEM, VERR_INTERNAL when OpenSSL refuses the digest (e.g. md5 in FIPS mode). */
int digest_tap_new(struct vreader *lower, const char *algorithm, struct vreader **out,
                   struct verr *err);

/* The same over a source reader (pkg/source) that the tap sits right above: when the
 * source lends its ring to a digest (it was opened with opts.lend_to_digest), the tap
 * hashes the ring's bytes in place on its thread, else it copies like digest_tap_new.
 * digest_tap_final then needs the source read to its end (else VERR_INTERNAL).
 * `algorithm` NULL makes a tap that only counts (digest_tap_bytes) and hashes nothing,
 * for a source whose bytes are proven another way (a registry's blob digests): no
 * thread, no copy, a lent ring released at once; digest_tap_final then writes "". */
int digest_source_tap_new(struct vreader *source, const char *algorithm, struct vreader **out,
                          struct verr *err);

/* Finish the digest of every byte read through `tap` so far and write it as
 * "<alg>:<hex>" to `out` (CHECKSUM_STRING_MAX bytes is always enough), or "" for a tap
 * that only counts. Call it once,
 * normally after the stream reached its end; after it, reading from `tap` fails with
 * VERR_INTERNAL (those bytes could not be hashed). `tap` must come from
 * digest_tap_new (else VERR_INTERNAL). Still close `tap` with vreader_close(). */
int digest_tap_final(struct vreader *tap, char *out, size_t out_size, struct verr *err);

/* Bytes read (and hashed) through `tap` so far; 0 if `tap` is not a digest tap. */
uint64_t digest_tap_bytes(const struct vreader *tap);

#endif
