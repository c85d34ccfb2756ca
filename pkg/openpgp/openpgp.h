/* vimport openpgp: OpenPGP signatures over published checksum files (RFC 4880 v4).
 *
 * A distribution signs its checksum file, not its images: Fedora and CentOS Stream
 * clearsign CHECKSUM, Debian publishes SHA512SUMS + SHA512SUMS.sign (detached, armored),
 * Ubuntu SHA256SUMS + SHA256SUMS.gpg (detached, binary). This stage checks those
 * signatures against a keyring the user supplies (`gpg --export [--armor]` output, one or
 * several keys), so that a mirror replacing both image and checksum file is caught.
 *
 * What it reads, all of it untrusted and bounded by the limits below:
 *   armor      "-----BEGIN PGP ...-----", headers, base64, the optional "=XXXX" CRC24
 *              (checked when present: a wrong CRC is refused), "-----END ...-----";
 *              several blocks in one file are concatenated (keyrings);
 *   packets    old and new framing; partial and indeterminate lengths are refused (no
 *              key or signature packet may use them);
 *   keys       v4 and v6 public keys and subkeys: RSA (2048 bits and up), ECDSA
 *              P-256/384/521,
 *              EdDSA Ed25519 (legacy algorithm 22 and RFC 9580 algorithm 27); other
 *              algorithms (DSA, ElGamal, ECDH) are kept so their packets parse, but never
 *              verify anything;
 *   signatures v4 and v6 (RFC 9580: salted, v6 keys only), types 0x00 (binary) and 0x01
 *              (text); hashes SHA-224/256/384/512 and SHA3-256/512. MD5, SHA-1 and
 *              RIPEMD-160 signatures are refused with that reason, whatever key made
 *              them. v3 and v5 packets are refused.
 *
 * A key verifies a data signature only when, at the signature's creation time:
 *   the primary key has a valid self-signature on a user ID (gpg's rule) or a valid
 *   direct-key self-signature (RFC 9580's rule for v6 keys), is not
 *   revoked and has not expired (the newest self-signature's key expiration), and
 *   was created no later than the signature; a signing subkey in addition has a valid
 *   binding signature (0x18) from its primary with the signing key flag and an embedded
 *   primary-key binding signature (0x19, "cross-certification") made by the subkey, and
 *   is itself neither revoked nor expired. A revocation with reason "superseded" or
 *   "retired" counts from its own creation time; any other reason (or none) revokes
 *   the key for every signature, past ones too, because the key may be compromised.
 *   Unknown critical subpackets in the hashed area make a signature invalid.
 *
 * Several signatures over one file (two signing keys) pass when at least one verifies
 * with a key from the keyring, as Sequoia's sqv decides; the result names that key.
 *
 * OpenSSL does the mathematics (EVP); this stage only parses and hashes. No global
 * state. Buffers: every function that returns memory says who frees it. Errors follow
 * pkg/core/error.h: VERR_FORMAT malformed input, VERR_VERIFY a signature that does not
 * verify (bad, wrong key, expired, revoked, weak hash), VERR_USAGE a keyring without
 * usable keys, VERR_IO an unreadable file. Messages name the key by fingerprint and
 * user ID, never key material.
 */
#ifndef VIMPORT_OPENPGP_H
#define VIMPORT_OPENPGP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Largest keyring, signature or signed file handled (a distribution keyring with many
 * certifications is a few hundred KiB). */
#define OPENPGP_MAX_INPUT (8u << 20)
/* Most packets read from one input. */
#define OPENPGP_MAX_PACKETS 65536
/* Most keys (primary and subkeys) held in one keyring. */
#define OPENPGP_MAX_KEYS 1024
/* Most signature packets considered over one file. */
#define OPENPGP_MAX_SIGNATURES 16
/* Largest RSA modulus accepted, in bits (bounds the cost of each verification). */
#define OPENPGP_RSA_MAX_BITS 16384
/* Seconds a signature may seem to come from the future (clocks differ); beyond, refused
 * as sqv refuses it: a key valid now says nothing about a date that has not come. */
#define OPENPGP_CLOCK_SKEW 300
/* Smallest RSA modulus trusted, in bits. */
#define OPENPGP_RSA_MIN_BITS 2048

/* ---- armor ------------------------------------------------------------------------ */

/* Decode the first armored block found in `text` (`len` bytes). `label` is the block
 * kind wanted ("PGP SIGNATURE", "PGP PUBLIC KEY BLOCK") or NULL for any. On success
 * *out is a malloc'ed buffer of *out_len bytes the caller frees, and *end (if not NULL)
 * the offset just past the END line. Returns 1 when a block was decoded, 0 when `text`
 * holds no BEGIN line for `label`, -1 with VERR_FORMAT for a malformed block (bad base64,
 * CRC24 mismatch, no END line, mismatched labels). */
int openpgp_armor_decode(const char *text, size_t len, const char *label,
                         unsigned char **out, size_t *out_len, size_t *end,
                         struct verr *err);

/* The binary packets of an input that is either binary (its first byte has bit 7 set)
 * or armored (every block concatenated). *out is malloc'ed, the caller frees it. */
int openpgp_dearmor_any(const void *data, size_t len, unsigned char **out,
                        size_t *out_len, struct verr *err);

/* CRC-24 of RFC 4880 6.1 (exposed for the tests). */
uint32_t openpgp_crc24(const unsigned char *data, size_t len);

/* ---- packets ---------------------------------------------------------------------- */

struct openpgp_packet {
  unsigned tag;               /* 2 signature, 6 public key, 13 user ID, 14 subkey, ... */
  const unsigned char *body;  /* points into the caller's buffer */
  size_t len;
};

/* Read the packet at *off in `buf` and advance *off past it. Returns 1 with *pkt set,
 * 0 at the end of the buffer, -1 with VERR_FORMAT (truncated, partial or indeterminate
 * length, bit 7 clear). */
int openpgp_packet_next(const unsigned char *buf, size_t len, size_t *off,
                        struct openpgp_packet *pkt, struct verr *err);

/* ---- keyring ---------------------------------------------------------------------- */

struct openpgp_keyring;

/* Parse a keyring (binary or armored; one or more transferable public keys). Keys with
 * unsupported algorithms are kept but never verify; self-signatures and subkey bindings
 * are verified here, once. VERR_FORMAT for malformed packets, VERR_USAGE when no key at
 * all is found (a secret key or a signature file given as the keyring). */
int openpgp_keyring_parse(const void *data, size_t len, struct openpgp_keyring **out,
                          struct verr *err);

/* Read and parse the keyring file at `path`. */
int openpgp_keyring_load(const char *path, struct openpgp_keyring **out, struct verr *err);

/* Number of primary keys. */
size_t openpgp_keyring_primary_count(const struct openpgp_keyring *kr);

/* The fingerprint (uppercase hex) and the primary user ID ("" if none) of primary key
 * `i`, in keyring order, for listings and messages. NULL past the end. */
const char *openpgp_keyring_fingerprint(const struct openpgp_keyring *kr, size_t i);
const char *openpgp_keyring_user_id(const struct openpgp_keyring *kr, size_t i);

void openpgp_keyring_free(struct openpgp_keyring *kr);

/* ---- clearsigned messages --------------------------------------------------------- */

/* The parts of a clearsigned message (RFC 4880 7). */
struct openpgp_clearsigned {
  char *text;            /* owned: the signed text, dash-escapes removed, trailing
                          * spaces and tabs removed, lines ended by '\n' */
  size_t text_len;
  unsigned char *sig;    /* owned: the signature packets, dearmored */
  size_t sig_len;
  char hash_header[128]; /* the "Hash:" values, comma-separated, "" when absent */
  bool text_outside;     /* non-blank text before BEGIN or after the signature block:
                          * not signed, and not part of `text` */
};

/* Split a clearsigned message. VERR_FORMAT when there is no BEGIN PGP SIGNED MESSAGE
 * line, no signature block, or a malformed header. */
int openpgp_clearsign_parse(const char *msg, size_t len, struct openpgp_clearsigned *out,
                            struct verr *err);
void openpgp_clearsigned_free(struct openpgp_clearsigned *cs);

/* ---- verification ----------------------------------------------------------------- */

/* The key that verified, or the one that failed (for messages). */
struct openpgp_result {
  bool verified;
  char fingerprint[65];     /* the primary key's fingerprint, uppercase hex (40 digits
                             * for a v4 key, 64 for v6) */
  char signing_key[65];     /* the key that signed: the primary or a subkey */
  char user_id[256];        /* the primary user ID, "" if none */
  char algorithm[32];       /* "RSA-3072", "Ed25519", "ECDSA P-256" */
  char hash[16];            /* "sha256" */
  int64_t created;          /* the signature's creation time (Unix seconds) */
};

/* Verify the detached signature(s) in `sig` (binary or armored) over `data`.
 * 0 with res->verified when one verifies; -1 otherwise, with the reason for the most
 * telling failure (a key in the keyring before an unknown key). */
int openpgp_verify_detached(const struct openpgp_keyring *kr, const void *data,
                            size_t len, const void *sig, size_t sig_len,
                            struct openpgp_result *res, struct verr *err);

/* Verify a clearsigned message. On success *text (malloc'ed, NUL-terminated, the caller
 * frees it) is the signed text only: the caller must use nothing else of `msg`. */
int openpgp_verify_clearsigned(const struct openpgp_keyring *kr, const char *msg,
                               size_t len, char **text, size_t *text_len,
                               struct openpgp_result *res, struct verr *err);

/* A checksum file with its detached signature (`sig` != NULL), or clearsigned (`sig`
 * NULL). *text is what was verified (the whole file when detached, the signed text when
 * clearsigned), malloc'ed and NUL-terminated, for the checksum-file parser. */
int openpgp_verify_file(const struct openpgp_keyring *kr, const void *data, size_t len,
                        const void *sig, size_t sig_len, char **text, size_t *text_len,
                        struct openpgp_result *res, struct verr *err);

#endif
