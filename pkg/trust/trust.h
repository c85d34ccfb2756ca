/* vimport trust: published checksum files and detached signatures, in the import's one
 * pass over the source.
 *
 * Checksum files
 *   A distribution publishes one file of sums (SHA256SUMS, CHECKSUM) instead of a single
 *   hash. checksum_file_load() fetches it through pkg/source (same TLS and auth options
 *   as the image) and checksum_file_parse() picks the line for the image's file name,
 *   giving a `struct checksum` for pkg/digest's tap, so the check itself is the ordinary
 *   source checksum. Formats read:
 *     GNU coreutils   "<hex>  <name>"  and  "<hex> *<name>"  (a leading '\' escapes names)
 *     BSD / --tag     "SHA256 (<name>) = <hex>"  and openssl's "SHA2-256(<name>)= <hex>"
 *     Fedora CHECKSUM BSD lines inside an OpenPGP clearsigned message, with
 *                     "# <name>: <size> bytes" comments
 *   Blank lines and '#' comments are skipped; the OpenPGP armor and signature block are
 *   skipped (the PGP signature itself is not checked: sign the checksum file with a key
 *   given to signature_verify_buffer() instead). Without a BSD tag the algorithm comes
 *   from the hex length (32 md5, 40 sha1, 64 sha256, 128 sha512). A name listed with
 *   several algorithms yields the strongest one.
 *
 * Signatures
 *   A detached signature over the source bytes exactly as served (before decompression),
 *   checked by a vreader filter shaped like pkg/digest's tap: it sits right above the
 *   source reader (or above the digest tap), passes every byte up unchanged and feeds it
 *   to the verifier, so it costs no second read and no buffer that grows with the image.
 *   Keys: ECDSA (P-256, P-384, P-521), Ed25519, RSA (PKCS#1 v1.5 or PSS), DSA, with
 *   SHA-224/256/384/512. The key is a PEM public key, or a PEM X.509 certificate checked
 *   against a CA bundle (chain, validity dates, key usage digitalSignature when the
 *   certificate has a key-usage extension).
 *   Signature forms:
 *     der     the raw bytes as `openssl dgst -sign` / `openssl pkeyutl -sign` write them
 *             (DER for ECDSA and DSA, the plain block for RSA, 64 bytes for Ed25519);
 *     base64  the same, base64-encoded (what `cosign sign-blob --key` prints);
 *     glance  OpenStack Glance's img_signature: base64, with img_signature_hash_method
 *             ("SHA-256") and img_signature_key_type ("RSA-PSS", "ECC_SECP384R1",
 *             "DSA", ...) required, verified as cursive does: RSA-PSS with MGF1 over the
 *             same hash and a salt of exactly the maximum length.
 *   Ed25519 is pure Ed25519 (RFC 8032) over the whole image, which is what
 *   `openssl pkeyutl -sign -rawin` and `cosign sign-blob` with an Ed25519 key produce
 *   (Ed25519ph is not produced by either). OpenSSL can only verify pure Ed25519 over a
 *   message held in memory, but the verifier, unlike the signer, needs one pass only:
 *   SHA-512(R || A || M) streams, and the curve equation is checked at the end (see
 *   ed25519.c). So Ed25519 also verifies in constant memory, without spooling.
 *
 * Errors follow pkg/core/error.h. VERR_VERIFY: the signature does not match, or the
 * certificate is not trusted. VERR_FORMAT: a malformed checksum file or signature.
 * VERR_USAGE: bad options, a key of the wrong type, a name missing from the checksum
 * file. VERR_IO: a key, certificate or signature file cannot be read. VERR_SOURCE: a
 * fetch failed. Messages never hold key material; they name files by path and URLs
 * redacted.
 */
#ifndef VIMPORT_TRUST_H
#define VIMPORT_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/error.h"
#include "core/stream.h"
#include "digest/digest.h"
#include "source/source.h"

/* Largest checksum file read (a SHA256SUMS of a whole release is a few KiB). */
#define CHECKSUM_FILE_MAX_BYTES (1u << 20)
/* Largest signature file read (a 16384-bit RSA signature in base64 is under 3 KiB). */
#define SIGNATURE_FILE_MAX_BYTES (64u << 10)
/* Largest key, certificate chain or CA bundle file read. */
#define TRUST_PEM_MAX_BYTES (1u << 20)
/* Longest file name looked up in a checksum file, with its NUL. */
#define CHECKSUM_NAME_MAX 1024

/* ---- Checksum files ------------------------------------------------------------------ */

/* Find the sum for `name` in the checksum file `text` (`len` bytes, need not be
 * NUL-terminated; NUL bytes are refused). Every line must parse, whether or not it is
 * the one wanted. On success fills `out` (lowercase algorithm and hex). Errors:
 *   VERR_FORMAT "checksum file line 7: ..." for a malformed line, a NUL byte, an
 *               unterminated PGP signature block, or `name` listed twice with
 *               different sums of the same algorithm (both line numbers named);
 *   VERR_USAGE  `name` is not listed (the message lists a few names that are, and
 *               says to set checksumName), or `name` is empty;
 *   VERR_USAGE  the only sums for `name` use an algorithm pkg/digest does not compute
 *               (sha224, sha384). */
int checksum_file_parse(const char *text, size_t len, const char *name,
                        struct checksum *out, struct verr *err);

/* The file name a checksum file lists an image under: the last path segment of `url`
 * (an http(s) or file URL, or a plain path), without query or fragment, with %XX
 * escapes decoded. VERR_USAGE when there is no name (the URL ends with '/', or the
 * name decodes to a NUL or '/'): then give checksumName. */
int checksum_file_name_from_url(const char *url, char *out, size_t out_size,
                                struct verr *err);

/* Fetch the checksum file at `fetch->url` (http, https, file; the TLS, proxy and auth
 * options of `fetch` apply, as for the image; only send credentials to the host they
 * belong to) and pick the line for `name` as checksum_file_parse() does. At most
 * CHECKSUM_FILE_MAX_BYTES are read; a larger file is refused (VERR_FORMAT). */
int checksum_file_load(const struct source_opts *fetch, const char *name,
                       struct checksum *out, struct verr *err);

/* Read a whole small object (a checksum or signature file) through pkg/source: at most
 * `cap` bytes, else VERR_FORMAT naming `what`. On success *out is a malloc'ed buffer of
 * *len bytes plus a NUL the caller frees. */
int trust_fetch_all(const struct source_opts *fetch, size_t cap, const char *what,
                    char **out, size_t *len, struct verr *err);

/* ---- Signatures ---------------------------------------------------------------------- */

enum signature_format {
  SIGNATURE_FORMAT_AUTO = 0, /* base64 when the file is only base64 text, else der */
  SIGNATURE_FORMAT_DER,      /* raw bytes as openssl writes them */
  SIGNATURE_FORMAT_BASE64,   /* base64 of those bytes; whitespace and line ends ignored */
  SIGNATURE_FORMAT_GLANCE,   /* Glance img_signature: base64, hash_method and key_type
                              * required, Glance's names, cursive's RSA-PSS rules */
};

/* Zero-initialise, then set one signature source, one key source and what applies.
 * Strings are read during signature_tap_new(); the caller keeps them. */
struct signature_opts {
  const char *signature_path;  /* mounted file holding the signature, or NULL */
  const char *signature_url;   /* or an http(s) URL to fetch it from, or NULL */
  const struct source_opts *fetch; /* TLS/auth/proxy options for signature_url (its
                                    * `url` is ignored); NULL: defaults */
  enum signature_format format;
  const char *public_key_path;  /* PEM (or DER) SubjectPublicKeyInfo, or NULL */
  const char *certificate_path; /* or a PEM certificate, followed by any intermediates */
  const char *ca_bundle_path;   /* PEM CA bundle the certificate must chain to;
                                 * required with certificate_path */
  const char *hash_method;      /* "sha256" | "sha384" | "sha512" | "sha224", either
                                 * case, "SHA-256" spelling too; NULL: sha256 (none for
                                 * Ed25519, which must leave it NULL). Glance: required */
  const char *key_type;         /* NULL: from the key (RSA keys then use PKCS#1 v1.5).
                                 * "RSA" (PKCS#1 v1.5) | "RSA-PSS" | "ECDSA" | "Ed25519" |
                                 * "DSA" | Glance's "ECC_SECP256R1" "ECC_SECP384R1"
                                 * "ECC_SECP521R1" ... (the curve must match the key).
                                 * Glance: required, Glance's names only */
  time_t verify_time;           /* check certificate validity at this time; 0: now */
};

/* What verified the image. Filled by signature_tap_final(). */
struct signature_result {
  bool verified;           /* true only when the signature matched every byte */
  char key_type[80];       /* "ECDSA P-256", "Ed25519", "RSA-3072 PKCS#1 v1.5",
                            * "RSA-2048 PSS", "DSA-2048" */
  char hash[16];           /* "sha256"; "" for Ed25519 */
  char key_fingerprint[72]; /* "sha256:<hex>" of the DER SubjectPublicKeyInfo */
  char subject[512];       /* the certificate subject (RFC 2253), "" for a bare key */
  uint64_t bytes;          /* bytes verified */
};

/* Create a signature tap over `lower`. Before returning it loads the key (and checks
 * the certificate chain), reads and decodes the signature (fetching signature_url), and
 * checks the key type and hash method, so every configuration error surfaces here,
 * before any image byte is consumed. The tap owns `lower` from this call on, also on
 * failure (it is then closed). Reading from *out reads from `lower` into the caller's
 * buffer and feeds the bytes to the verifier; closing *out closes `lower`. */
int signature_tap_new(struct vreader *lower, const struct signature_opts *opts,
                      struct vreader **out, struct verr *err);

/* Finish verification of every byte read through `tap` (call it once, after the stream
 * ended). `res` is cleared first and res->verified is set only on success. On success
 * returns 0 with the key described in `res`. On a mismatch returns -1 with VERR_VERIFY:
 *   "checksum mismatch: the signature does not match the image: <key>; the image
 *    (N bytes) or the signature was changed, or it was made with another key"
 * After it, reading from `tap` fails with VERR_INTERNAL. `tap` must come from
 * signature_tap_new (else VERR_INTERNAL). Still close `tap` with vreader_close(). */
int signature_tap_final(struct vreader *tap, struct signature_result *res,
                        struct verr *err);

/* Bytes read (and verified) through `tap` so far; 0 if `tap` is not a signature tap. */
uint64_t signature_tap_bytes(const struct vreader *tap);

/* Verify a detached signature over a buffer held in memory (a checksum file), with the
 * same options and results as the tap. */
int signature_verify_buffer(const struct signature_opts *opts, const void *data,
                            size_t len, struct signature_result *res, struct verr *err);

/* Parse a signature format name: "der", "base64", "glance" (or "auto"). */
int signature_format_parse(const char *name, enum signature_format *out, struct verr *err);

#endif
