/* vimport openpgp: keyrings (RFC 4880 11.1 transferable public keys). See openpgp.h.
 *
 * One pass over the packets. Self-signatures (user ID certifications, direct-key
 * signatures, revocations, subkey bindings and their back-signatures) are verified as
 * they are met, because each follows the key it is about; signatures by other keys
 * (third-party certifications, of which distribution keys carry many) are skipped
 * without any public-key operation, so a large keyring costs little.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "internal.h"

/* Where the packets being read belong. */
enum where { AT_NONE, AT_PRIMARY, AT_UID, AT_OTHER, AT_SUBKEY, AT_SKIP };

struct walk {
  struct openpgp_keyring *kr;
  enum where at;
  size_t primary;              /* index of the current primary key */
  size_t subkey;               /* index of the current subkey */
  const unsigned char *uid;
  size_t uid_len;
  char skipped[sizeof ((struct verr *)0)->message]; /* why the last key was skipped */
};

static int add_key(struct openpgp_keyring *kr, const struct pgp_key *key, struct verr *err)
{
  if (kr->n == OPENPGP_MAX_KEYS)
    return verr_set(err, VERR_FORMAT, "keyring with more than %u keys and subkeys; give "
                    "only the distribution's key", OPENPGP_MAX_KEYS);
  if (kr->n == kr->cap) {
    size_t cap = kr->cap ? kr->cap * 2 : 8;
    struct pgp_key *k = realloc(kr->keys, cap * sizeof *k);
    if (k == NULL)
      return verr_set(err, VERR_NOMEM, "out of memory reading the keyring");
    kr->keys = k;
    kr->cap = cap;
  }
  kr->keys[kr->n++] = *key;
  return 0;
}

/* Verify a self-signature by `signer` over primary [, subkey] [, user ID]. 1 valid. */
static int self_sig_valid(const struct pgp_key *primary, const struct pgp_key *sub,
                          const unsigned char *uid, size_t uid_len,
                          const struct pgp_sig *sig, const struct pgp_key *signer,
                          struct verr *err)
{
  const char *name, *refused;
  /* SHA-1 self-signatures are still accepted: keys made before 2019 carry them, and
   * forging one needs a second preimage, not a collision. Data signatures refuse it. */
  const EVP_MD *md = pgp_hash_md(sig->halg, true, &name, &refused);
  if (md == NULL || sig->unknown_critical || sig->created < primary->created)
    return 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int started = ctx ? pgp_hash_start(ctx, md, sig) : -1;
  if (started == 0) { /* a v6 salt of the wrong size: not a valid signature */
    EVP_MD_CTX_free(ctx);
    return 0;
  }
  if (started < 0 || pgp_hash_key(ctx, primary) < 0 ||
      (sub != NULL && pgp_hash_key(ctx, sub) < 0)) {
    EVP_MD_CTX_free(ctx);
    return verr_set(err, VERR_INTERNAL, "OpenSSL cannot hash a key");
  }
  if (uid != NULL) {
    unsigned char head[5] = { 0xB4, (unsigned char)(uid_len >> 24),
                              (unsigned char)(uid_len >> 16), (unsigned char)(uid_len >> 8),
                              (unsigned char)uid_len };
    if (EVP_DigestUpdate(ctx, head, 5) != 1 || EVP_DigestUpdate(ctx, uid, uid_len) != 1) {
      EVP_MD_CTX_free(ctx);
      return verr_set(err, VERR_INTERNAL, "OpenSSL cannot hash a user ID");
    }
  }
  const char *why;
  int r = pgp_sig_check(ctx, sig, signer, &why, err);
  EVP_MD_CTX_free(ctx);
  return r;
}

/* A newer valid self-signature replaces what an older one said. */
static void take_self_sig(struct pgp_key *key, const struct pgp_sig *sig)
{
  if (key->certified && sig->created < key->cert_time)
    return;
  key->certified = true;
  key->cert_time = sig->created;
  key->expires = sig->has_key_expires ? sig->key_expires : 0;
  key->has_flags = sig->has_key_flags;
  key->flags = sig->key_flags;
}

static void take_revocation(struct pgp_key *key, const struct pgp_sig *sig)
{
  /* superseded (1) and retired (3) are soft: earlier signatures stay good */
  bool soft = sig->has_reason && (sig->reason == 1 || sig->reason == 3);
  if (!key->revoked || sig->created < key->revoked_at)
    key->revoked_at = sig->created;
  key->revoked = true;
  key->hard_revoked = key->hard_revoked || !soft;
}

static void take_user_id(struct pgp_key *key, const struct walk *w, const struct pgp_sig *sig)
{
  if (key->user_id[0] != '\0' && !sig->primary_uid)
    return;
  size_t n = w->uid_len < sizeof key->user_id - 1 ? w->uid_len : sizeof key->user_id - 1;
  for (size_t i = 0; i < n; i++) /* a user ID is any bytes: keep messages printable */
    key->user_id[i] = w->uid[i] >= 0x20 && w->uid[i] != 0x7F ? (char)w->uid[i] : '?';
  key->user_id[n] = '\0';
}

/* The back-signature (0x19) a signing subkey must embed in its binding: it proves the
 * subkey's owner agreed to be bound, so nobody can claim another's key as a subkey. */
static int back_sig_valid(const struct pgp_key *primary, const struct pgp_key *sub,
                          const struct pgp_sig *binding, struct verr *err)
{
  struct pgp_sig back;
  struct verr ignored;
  if (binding->embedded == NULL ||
      pgp_sig_parse(binding->embedded, binding->embedded_len, &back, &ignored) < 0 ||
      back.type != PGP_SIG_PRIMARY_BINDING)
    return 0;
  return self_sig_valid(primary, sub, NULL, 0, &back, sub, err);
}

static int on_signature(struct walk *w, const struct openpgp_packet *pkt, struct verr *err)
{
  struct openpgp_keyring *kr = w->kr;
  struct pgp_sig sig;
  struct verr ignored;
  if (w->at == AT_SKIP || w->at == AT_OTHER)
    return 0;
  if (w->at == AT_NONE)
    return verr_set(err, VERR_USAGE, "the keyring starts with a signature, not a key: "
                    "give the key as `gpg --export KEYID` writes it, not a signature file");
  /* a signature we cannot read (v3, v5) certifies nothing: skip it as gpg does */
  if (pgp_sig_parse(pkt->body, pkt->len, &sig, &ignored) < 0)
    return 0;
  struct pgp_key *primary = &kr->keys[w->primary];
  if (!pgp_sig_names_key(&sig, primary))
    return 0; /* third-party: not needed to trust the key */
  struct pgp_key *sub = w->at == AT_SUBKEY ? &kr->keys[w->subkey] : NULL;
  int r;
  switch (w->at) {
  case AT_PRIMARY:
    if (sig.type != PGP_SIG_DIRECT_KEY && sig.type != PGP_SIG_KEY_REVOCATION)
      return 0;
    if ((r = self_sig_valid(primary, NULL, NULL, 0, &sig, primary, err)) <= 0)
      return r;
    if (sig.type == PGP_SIG_KEY_REVOCATION)
      take_revocation(primary, &sig);
    else /* a direct-key self-signature certifies the key (v6 keys put flags here) */
      take_self_sig(primary, &sig);
    return 0;
  case AT_UID:
    if (sig.type < PGP_SIG_CERT_FIRST || sig.type > PGP_SIG_CERT_LAST)
      return 0;
    if ((r = self_sig_valid(primary, NULL, w->uid, w->uid_len, &sig, primary, err)) <= 0)
      return r;
    take_self_sig(primary, &sig);
    take_user_id(primary, w, &sig);
    return 0;
  case AT_SUBKEY:
    if (sig.type != PGP_SIG_SUBKEY_BINDING && sig.type != PGP_SIG_SUBKEY_REVOCATION)
      return 0;
    if ((r = self_sig_valid(primary, sub, NULL, 0, &sig, primary, err)) <= 0)
      return r;
    if (sig.type == PGP_SIG_SUBKEY_REVOCATION) {
      take_revocation(sub, &sig);
      return 0;
    }
    if (sig.has_key_flags && (sig.key_flags & PGP_KEY_FLAG_SIGN) &&
        (r = back_sig_valid(primary, sub, &sig, err)) <= 0) {
      if (r < 0)
        return r;
      sig.key_flags &= ~(unsigned)PGP_KEY_FLAG_SIGN; /* not cross-certified: no signing */
    }
    take_self_sig(sub, &sig);
    return 0;
  default:
    return 0;
  }
}

static int on_key(struct walk *w, const struct openpgp_packet *pkt, bool subkey,
                  struct verr *err)
{
  struct pgp_key key;
  struct verr why;
  if (subkey && (w->at == AT_NONE || w->at == AT_SKIP))
    return 0; /* a subkey of a key we skipped */
  if (pgp_key_parse(pkt->body, pkt->len, &key, &why) < 0) {
    EVP_PKEY_free(key.pkey);
    snprintf(w->skipped, sizeof w->skipped, "%s", why.message);
    if (why.code != VERR_FORMAT)
      return *err = why, -1;
    if (!subkey)
      w->at = AT_SKIP;
    return 0;
  }
  key.is_subkey = subkey;
  key.primary = subkey ? w->primary : w->kr->n;
  if (add_key(w->kr, &key, err) < 0) {
    EVP_PKEY_free(key.pkey);
    return -1;
  }
  if (subkey) {
    w->subkey = w->kr->n - 1;
    w->at = AT_SUBKEY;
  } else {
    w->primary = w->kr->n - 1;
    w->kr->primaries++;
    w->at = AT_PRIMARY;
  }
  return 0;
}

static int on_packet(struct walk *w, const struct openpgp_packet *pkt, struct verr *err)
{
  switch (pkt->tag) {
  case PGP_TAG_PUBLIC_KEY:
    return on_key(w, pkt, false, err);
  case PGP_TAG_PUBLIC_SUBKEY:
    return on_key(w, pkt, true, err);
  case PGP_TAG_SIGNATURE:
    return on_signature(w, pkt, err);
  case PGP_TAG_USER_ID:
    if (w->at != AT_NONE && w->at != AT_SKIP)
      w->at = AT_UID, w->uid = pkt->body, w->uid_len = pkt->len;
    return 0;
  case PGP_TAG_USER_ATTRIBUTE:
    if (w->at != AT_NONE && w->at != AT_SKIP)
      w->at = AT_OTHER;
    return 0;
  case 5:
  case 7:
    return verr_set(err, VERR_USAGE, "the keyring holds a secret key: give only the "
                    "public key (gpg --export KEYID), and never mount a secret key");
  default:
    return 0; /* trust, marker and unknown packets say nothing about keys */
  }
}

void openpgp_keyring_free(struct openpgp_keyring *kr)
{
  if (kr == NULL)
    return;
  for (size_t i = 0; i < kr->n; i++)
    EVP_PKEY_free(kr->keys[i].pkey);
  free(kr->keys);
  free(kr->buf);
  free(kr);
}

int openpgp_keyring_parse(const void *data, size_t len, struct openpgp_keyring **out,
                          struct verr *err)
{
  struct openpgp_keyring *kr = calloc(1, sizeof *kr);
  if (kr == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory reading the keyring");
  struct walk w = { .kr = kr, .at = AT_NONE };
  if (openpgp_dearmor_any(data, len, &kr->buf, &kr->len, err) < 0) {
    openpgp_keyring_free(kr);
    return verr_prefix(err, "keyring");
  }
  size_t off = 0, count = 0;
  struct openpgp_packet pkt;
  int r;
  while ((r = openpgp_packet_next(kr->buf, kr->len, &off, &pkt, err)) == 1) {
    if (++count > OPENPGP_MAX_PACKETS) {
      r = verr_set(err, VERR_FORMAT, "more than %u packets", OPENPGP_MAX_PACKETS);
      break;
    }
    if ((r = on_packet(&w, &pkt, err)) < 0)
      break;
  }
  if (r < 0) {
    openpgp_keyring_free(kr);
    return verr_prefix(err, "keyring");
  }
  if (kr->primaries == 0) {
    openpgp_keyring_free(kr);
    return verr_set(err, VERR_USAGE, "the keyring holds no usable OpenPGP public key%s%s; "
                    "export the distribution's key with gpg --export",
                    w.skipped[0] ? ": " : "", w.skipped);
  }
  *out = kr;
  return 0;
}

int openpgp_keyring_load(const char *path, struct openpgp_keyring **out, struct verr *err)
{
  CLEANUP_FCLOSE FILE *f = fopen(path, "rb");
  if (f == NULL)
    return verr_sys(err, VERR_IO, errno, "cannot open the keyring %s (is the Secret or "
                    "ConfigMap mounted?)", path);
  CLEANUP_FREE unsigned char *buf = malloc(OPENPGP_MAX_INPUT + 1);
  if (buf == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory reading the keyring");
  size_t n = fread(buf, 1, OPENPGP_MAX_INPUT + 1, f);
  if (ferror(f))
    return verr_sys(err, VERR_IO, errno, "cannot read the keyring %s", path);
  if (n > OPENPGP_MAX_INPUT)
    return verr_set(err, VERR_FORMAT, "the keyring %s is larger than %u bytes", path,
                    OPENPGP_MAX_INPUT);
  if (openpgp_keyring_parse(buf, n, out, err) < 0)
    return verr_prefix(err, "%s", path);
  return 0;
}

size_t openpgp_keyring_primary_count(const struct openpgp_keyring *kr)
{
  return kr->primaries;
}

static const struct pgp_key *nth_primary(const struct openpgp_keyring *kr, size_t i)
{
  for (size_t k = 0; k < kr->n; k++)
    if (!kr->keys[k].is_subkey && i-- == 0)
      return &kr->keys[k];
  return NULL;
}

const char *openpgp_keyring_fingerprint(const struct openpgp_keyring *kr, size_t i)
{
  const struct pgp_key *k = nth_primary(kr, i);
  return k ? k->fpr_hex : NULL;
}

const char *openpgp_keyring_user_id(const struct openpgp_keyring *kr, size_t i)
{
  const struct pgp_key *k = nth_primary(kr, i);
  return k ? k->user_id : NULL;
}
