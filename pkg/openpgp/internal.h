/* vimport openpgp: parsed packets shared by the files of pkg/openpgp. Not public. */
#ifndef VIMPORT_OPENPGP_INTERNAL_H
#define VIMPORT_OPENPGP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "openpgp.h"

enum {
  PGP_TAG_SIGNATURE = 2,
  PGP_TAG_PUBLIC_KEY = 6,
  PGP_TAG_MARKER = 10,
  PGP_TAG_TRUST = 12,
  PGP_TAG_USER_ID = 13,
  PGP_TAG_PUBLIC_SUBKEY = 14,
  PGP_TAG_USER_ATTRIBUTE = 17,
};

enum {
  PGP_PK_RSA = 1,
  PGP_PK_RSA_SIGN = 3,
  PGP_PK_ECDSA = 19,
  PGP_PK_EDDSA_LEGACY = 22,
  PGP_PK_ED25519 = 27,
};

enum {
  PGP_SIG_BINARY = 0x00,
  PGP_SIG_TEXT = 0x01,
  PGP_SIG_CERT_FIRST = 0x10,
  PGP_SIG_CERT_LAST = 0x13,
  PGP_SIG_SUBKEY_BINDING = 0x18,
  PGP_SIG_PRIMARY_BINDING = 0x19,
  PGP_SIG_DIRECT_KEY = 0x1F,
  PGP_SIG_KEY_REVOCATION = 0x20,
  PGP_SIG_SUBKEY_REVOCATION = 0x28,
};

#define PGP_KEY_FLAG_SIGN 0x02

/* A v4 or v6 signature packet, pointing into the packet buffer it was parsed from. */
struct pgp_sig {
  unsigned version, type, pkalg, halg;
  const unsigned char *hashed;  /* version byte .. end of hashed subpackets */
  size_t hashed_len;
  unsigned char left16[2];
  const unsigned char *mpis;    /* the algorithm-specific signature fields */
  size_t mpis_len;
  bool has_created;
  uint32_t created;
  uint32_t sig_expires;         /* seconds after created; 0: never */
  bool has_key_expires;
  uint32_t key_expires;         /* seconds after the key's creation; 0: never */
  bool has_issuer, has_issuer_fpr;
  unsigned char issuer[8];
  unsigned char issuer_fpr[32];
  size_t issuer_fpr_len;        /* 20 (v4 key) or 32 (v6 key) */
  const unsigned char *salt;    /* v6: hashed before the data */
  size_t salt_len;
  bool has_key_flags;
  unsigned key_flags;
  bool has_reason;
  unsigned reason;
  bool primary_uid;
  bool unknown_critical;        /* an unknown critical subpacket in the hashed area */
  const unsigned char *embedded; /* embedded signature (0x19 back-signature) or NULL */
  size_t embedded_len;
};

/* A v4 or v6 public key or subkey. */
struct pgp_key {
  unsigned version;             /* 4 or 6 */
  const unsigned char *body;    /* the packet body, in the keyring's buffer */
  size_t body_len;
  uint32_t created;
  unsigned alg;
  unsigned char fpr[32];        /* v4: SHA-1, 20 bytes; v6: SHA-256, 32 bytes */
  size_t fpr_len;
  char fpr_hex[65];
  EVP_PKEY *pkey;               /* owned; NULL when the algorithm cannot sign here */
  char desc[32];                /* "RSA-3072", "Ed25519", "ECDSA P-256", "algorithm 16" */
  const char *unusable;         /* why pkey is NULL (static text), or NULL */
  size_t primary;               /* index of its primary key (itself for a primary) */
  bool is_subkey;
  /* from verified self-signatures: the newest one wins */
  bool certified;               /* primary: a valid self-signed user ID; subkey: a
                                 * valid binding (and back-signature when it signs) */
  uint32_t cert_time;           /* creation time of that newest signature */
  uint32_t expires;             /* seconds after creation; 0: never */
  bool has_flags;
  unsigned flags;
  bool revoked;
  bool hard_revoked;            /* revoked for every signature */
  uint32_t revoked_at;
  char user_id[256];
};

struct openpgp_keyring {
  unsigned char *buf;           /* owned: the dearmored packets keys point into */
  size_t len;
  struct pgp_key *keys;         /* owned */
  size_t n, cap;
  size_t primaries;
};

/* packet.c */
int pgp_sig_parse(const unsigned char *body, size_t len, struct pgp_sig *sig,
                  struct verr *err);
int pgp_key_parse(const unsigned char *body, size_t len, struct pgp_key *key,
                  struct verr *err);
void pgp_hex(const unsigned char *b, size_t n, char *out);
/* Does `sig` name `key` as its issuer (fingerprint, else key ID)? No issuer: false. */
bool pgp_sig_names_key(const struct pgp_sig *sig, const struct pgp_key *key);

/* verify.c */
/* The OpenSSL digest for an OpenPGP hash id; NULL with the reason when refused. SHA-1
 * only when `allow_sha1` (self-signatures on keys). */
const EVP_MD *pgp_hash_md(unsigned halg, bool allow_sha1, const char **name,
                          const char **refused);
/* Hash the key packet as signatures over keys do (v4: 0x99, 2-byte length, body; v6:
 * 0x9B, 4-byte length, body). */
int pgp_hash_key(EVP_MD_CTX *ctx, const struct pgp_key *key);
/* Start the hash of `sig`: init with `md`, then the v6 salt (whose length must be the
 * one RFC 9580 gives the hash). 1 started, 0 bad salt, -1 OpenSSL failure. */
int pgp_hash_start(EVP_MD_CTX *ctx, const EVP_MD *md, const struct pgp_sig *sig);
/* Finish `ctx` (already fed the signed data) with the signature's trailer and check the
 * signature with `key`. 1 valid, 0 invalid (*why says so), -1 OpenSSL failure. */
int pgp_sig_check(EVP_MD_CTX *ctx, const struct pgp_sig *sig, const struct pgp_key *key,
                  const char **why, struct verr *err);

#endif
