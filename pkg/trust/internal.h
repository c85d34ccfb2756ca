/* vimport trust: pieces shared inside pkg/trust. Not public. */
#ifndef VIMPORT_TRUST_INTERNAL_H
#define VIMPORT_TRUST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "core/error.h"

#define ED25519_SIGNATURE_BYTES 64
#define ED25519_KEY_BYTES 32

/* Pure Ed25519 (RFC 8032 5.1.7) verified in one streaming pass. */
struct ed25519_stream;

/* Start verifying `sig` (64 bytes) with the Ed25519 key `key`. The key and signature
 * are copied. Errors: VERR_NOMEM, VERR_INTERNAL. */
int ed25519_stream_new(EVP_PKEY *key, const unsigned char *sig, size_t sig_len,
                       struct ed25519_stream **out, struct verr *err);

/* Feed message bytes, in order. */
int ed25519_stream_update(struct ed25519_stream *s, const void *buf, size_t len,
                          struct verr *err);

/* Finish: *valid is true only when the signature matches every byte fed. A malformed
 * signature or key (S >= L, a point not on the curve) is simply not valid. Returns -1
 * only when OpenSSL fails (VERR_NOMEM / VERR_INTERNAL). */
int ed25519_stream_final(struct ed25519_stream *s, bool *valid, struct verr *err);

void ed25519_stream_free(struct ed25519_stream *s);


/* ---- keys and certificates (keys.c) ---- */

enum trust_key_kind {
  TRUST_KEY_ANY = 0,   /* whatever the key is (an RSA key then means PKCS#1 v1.5) */
  TRUST_KEY_RSA_PKCS1,
  TRUST_KEY_RSA_PSS,
  TRUST_KEY_ECDSA,
  TRUST_KEY_ED25519,
  TRUST_KEY_DSA,
};

/* What the key type option asks for. */
struct trust_key_type {
  enum trust_key_kind kind;
  int curve_nid; /* ECDSA: the curve the key must be on; 0: any */
};

/* A loaded, trusted public key and how to name it. */
struct trust_key {
  EVP_PKEY *pkey;          /* owned */
  char description[48];    /* "ECDSA P-256", "RSA-2048", "Ed25519", "DSA-2048" */
  char fingerprint[72];    /* "sha256:<hex>" of the DER SubjectPublicKeyInfo */
  char subject[512];       /* certificate subject (RFC 2253) or "" */
};

struct signature_opts;

/* Parse the key type option (Glance's names only when `glance`). NULL: TRUST_KEY_ANY. */
int trust_key_type_parse(const char *name, bool glance, struct trust_key_type *out,
                         struct verr *err);

/* Parse the hash method into an OpenSSL digest name ("sha256"). Glance: "SHA-224",
 * "SHA-256", "SHA-384", "SHA-512" exactly, as cursive accepts. NULL: "" (none given). */
int trust_hash_parse(const char *name, bool glance, char *out, size_t out_size,
                     struct verr *err);

/* Load opts->public_key_path, or opts->certificate_path checked against
 * opts->ca_bundle_path (chain, validity at opts->verify_time, key usage). */
int trust_key_load(const struct signature_opts *opts, struct trust_key *out,
                   struct verr *err);

/* Check the key against the requested type and resolve TRUST_KEY_ANY. */
int trust_key_check(const struct trust_key *key, const struct trust_key_type *want,
                    enum trust_key_kind *kind, struct verr *err);

void trust_key_clear(struct trust_key *key);

/* Read a small local file whole (NUL-terminated copy), at most `cap` bytes.
 * `what` names it in messages ("public key"). */
int trust_read_file(const char *path, size_t cap, const char *what, char **out, size_t *len,
                    struct verr *err);

#endif
