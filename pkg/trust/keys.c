/* vimport trust: public keys, certificates and the names of key types and hashes.
 *
 * A key comes from a mounted file: a PEM (or DER) public key, or a PEM certificate
 * (leaf first, then any intermediates) that must chain to a CA bundle, be valid now
 * and, when it has a key-usage extension, allow digitalSignature. Files are read
 * whole with a size cap and parsed from memory; messages name paths, never contents.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/cleanup.h"
#include "internal.h"
#include "trust.h"

static void cleanup_bio(BIO **b) { BIO_free(*b); }
static void cleanup_x509(X509 **x) { X509_free(*x); }
static void cleanup_x509_stack(STACK_OF(X509) **s) { sk_X509_pop_free(*s, X509_free); }
static void cleanup_store(X509_STORE **s) { X509_STORE_free(*s); }
static void cleanup_store_ctx(X509_STORE_CTX **c) { X509_STORE_CTX_free(*c); }
#define CLEANUP_BIO __attribute__((cleanup(cleanup_bio)))
#define CLEANUP_X509 __attribute__((cleanup(cleanup_x509)))
#define CLEANUP_X509_STACK __attribute__((cleanup(cleanup_x509_stack)))
#define CLEANUP_STORE __attribute__((cleanup(cleanup_store)))
#define CLEANUP_STORE_CTX __attribute__((cleanup(cleanup_store_ctx)))

/* ---- names ---- */

static const struct {
  const char *glance; /* img_signature_key_type */
  const char *curve;  /* OpenSSL short name */
} glance_curves[] = {
  { "ECC_SECP256R1", "prime256v1" }, /* not in cursive's list; accepted as an extension */
  { "ECC_SECP384R1", "secp384r1" },
  { "ECC_SECP521R1", "secp521r1" },
  { "ECC_SECT409K1", "sect409k1" },
  { "ECC_SECT409R1", "sect409r1" },
  { "ECC_SECT571K1", "sect571k1" },
  { "ECC_SECT571R1", "sect571r1" },
};

static const struct {
  const char *name;
  enum trust_key_kind kind;
  bool glance; /* one of Glance's img_signature_key_type values */
} key_type_names[] = {
  { "RSA-PSS",   TRUST_KEY_RSA_PSS,   true },
  { "DSA",       TRUST_KEY_DSA,       true },
  { "RSA",       TRUST_KEY_RSA_PKCS1, false },
  { "RSA-PKCS1", TRUST_KEY_RSA_PKCS1, false },
  { "ECDSA",     TRUST_KEY_ECDSA,     false },
  { "Ed25519",   TRUST_KEY_ED25519,   false },
};

#define KEY_TYPES_ACCEPTED "RSA, RSA-PSS, ECDSA, Ed25519, DSA or ECC_SECP256R1/384R1/521R1"
#define GLANCE_KEY_TYPES "RSA-PSS, DSA, ECC_SECP256R1, ECC_SECP384R1, ECC_SECP521R1, " \
                         "ECC_SECT409K1, ECC_SECT409R1, ECC_SECT571K1 or ECC_SECT571R1"

static int glance_curve(const char *name, struct trust_key_type *out)
{
  for (size_t i = 0; i < sizeof glance_curves / sizeof glance_curves[0]; i++)
    if (strcmp(name, glance_curves[i].glance) == 0) {
      out->kind = TRUST_KEY_ECDSA;
      out->curve_nid = OBJ_sn2nid(glance_curves[i].curve);
      return out->curve_nid == NID_undef ? -1 : 0;
    }
  return -1;
}

int trust_key_type_parse(const char *name, bool glance, struct trust_key_type *out,
                         struct verr *err)
{
  *out = (struct trust_key_type){ TRUST_KEY_ANY, 0 };
  if (name == NULL)
    return glance ? verr_set(err, VERR_USAGE, "a Glance signature needs its "
                             "img_signature_key_type as keyType: %s", GLANCE_KEY_TYPES)
                  : 0;
  if (glance_curve(name, out) == 0)
    return 0;
  for (size_t i = 0; i < sizeof key_type_names / sizeof key_type_names[0]; i++) {
    bool match = glance ? strcmp(name, key_type_names[i].name) == 0
                        : strcasecmp(name, key_type_names[i].name) == 0;
    if (match && (!glance || key_type_names[i].glance)) {
      out->kind = key_type_names[i].kind;
      return 0;
    }
  }
  return verr_set(err, VERR_USAGE, "signature keyType \"%.40s\" is not one of %s", name,
                  glance ? GLANCE_KEY_TYPES : KEY_TYPES_ACCEPTED);
}

int trust_hash_parse(const char *name, bool glance, char *out, size_t out_size,
                     struct verr *err)
{
  static const char *const glance_names[] = { "SHA-224", "SHA-256", "SHA-384", "SHA-512" };
  out[0] = '\0';
  if (name == NULL)
    return glance ? verr_set(err, VERR_USAGE, "a Glance signature needs its "
                             "img_signature_hash_method as hashMethod: SHA-224, SHA-256, "
                             "SHA-384 or SHA-512") : 0;
  for (size_t i = 0; i < sizeof glance_names / sizeof glance_names[0]; i++) {
    const char *g = glance_names[i];
    char plain[8] = "sha";
    memcpy(plain + 3, g + 4, 4); /* "SHA-256" -> "sha256" */
    bool match = glance ? strcmp(name, g) == 0
                        : strcasecmp(name, g) == 0 || strcasecmp(name, plain) == 0;
    if (match) {
      snprintf(out, out_size, "%s", plain);
      return 0;
    }
  }
  return verr_set(err, VERR_USAGE, "signature hashMethod \"%.40s\" is not one of %s", name,
                  glance ? "SHA-224, SHA-256, SHA-384, SHA-512 (Glance's spelling)"
                         : "sha224, sha256, sha384, sha512");
}

/* ---- files ---- */

int trust_read_file(const char *path, size_t cap, const char *what, char **out, size_t *len,
                    struct verr *err)
{
  CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return verr_sys(err, VERR_IO, errno, "cannot open the %s %s (is it mounted there?)",
                    what, path);
  CLEANUP_FREE char *buf = malloc(cap + 1);
  if (buf == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory reading the %s %s", what, path);
  size_t used = 0;
  for (;;) {
    ssize_t n = read(fd, buf + used, cap + 1 - used);
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1)
      return verr_sys(err, VERR_IO, errno, "cannot read the %s %s", what, path);
    if (n == 0)
      break;
    used += (size_t)n;
    if (used > cap)
      return verr_set(err, VERR_FORMAT, "the %s %s is larger than %zu bytes; is it the "
                      "right file?", what, path, cap);
  }
  buf[used] = '\0';
  *len = used;
  *out = TAKE_PTR(buf);
  return 0;
}

/* Refuse files that hold something else than asked for, with the fix. */
static int check_pem_kind(const char *text, const char *path, bool want_cert, struct verr *err)
{
  if (strstr(text, "PRIVATE KEY-----") != NULL)
    return verr_set(err, VERR_USAGE, "%s holds a private key; mount only the public key or "
                    "certificate (and rotate the key if it was exposed)", path);
  if (!want_cert && strstr(text, "-----BEGIN CERTIFICATE-----") != NULL)
    return verr_set(err, VERR_USAGE, "%s holds a certificate; give it as certificate: with "
                    "caBundle:, not as publicKey:", path);
  return 0;
}

static int openssl_reason(char *out, size_t size)
{
  unsigned long e = ERR_peek_last_error();
  const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;
  snprintf(out, size, "%s", why != NULL ? why : "unknown reason");
  ERR_clear_error();
  return 0;
}

static int load_public_key(const char *path, EVP_PKEY **out, struct verr *err)
{
  CLEANUP_FREE char *text = NULL;
  size_t len = 0;
  if (trust_read_file(path, TRUST_PEM_MAX_BYTES, "public key", &text, &len, err) == -1 ||
      check_pem_kind(text, path, false, err) == -1)
    return -1;
  CLEANUP_BIO BIO *bio = BIO_new_mem_buf(text, (int)len);
  if (bio == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory reading %s", path);
  *out = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  if (*out == NULL) {
    const unsigned char *der = (const unsigned char *)text;
    *out = d2i_PUBKEY(NULL, &der, (long)len);
  }
  if (*out == NULL) {
    char why[128];
    openssl_reason(why, sizeof why);
    return verr_set(err, VERR_USAGE, "%s is not a PEM or DER public key (%s); write it with "
                    "`openssl pkey -pubout`", path, why);
  }
  return 0;
}

/* ---- certificates ---- */

static int read_cert_chain(const char *path, X509 **leaf, STACK_OF(X509) **rest,
                           struct verr *err)
{
  CLEANUP_FREE char *text = NULL;
  size_t len = 0;
  if (trust_read_file(path, TRUST_PEM_MAX_BYTES, "certificate", &text, &len, err) == -1 ||
      check_pem_kind(text, path, true, err) == -1)
    return -1;
  CLEANUP_BIO BIO *bio = BIO_new_mem_buf(text, (int)len);
  *rest = sk_X509_new_null();
  if (bio == NULL || *rest == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory reading %s", path);
  *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  if (*leaf == NULL) {
    ERR_clear_error();
    return verr_set(err, VERR_USAGE, "%s holds no PEM certificate; give the signing "
                    "certificate (-----BEGIN CERTIFICATE-----), then any intermediates", path);
  }
  X509 *x;
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
    if (!sk_X509_push(*rest, x)) {
      X509_free(x);
      return verr_set(err, VERR_NOMEM, "out of memory reading %s", path);
    }
  ERR_clear_error(); /* the end of the file */
  return 0;
}

static int load_ca_bundle(const char *path, X509_STORE **out, struct verr *err)
{
  CLEANUP_FREE char *text = NULL;
  size_t len = 0;
  if (trust_read_file(path, TRUST_PEM_MAX_BYTES, "CA bundle", &text, &len, err) == -1)
    return -1;
  CLEANUP_BIO BIO *bio = BIO_new_mem_buf(text, (int)len);
  *out = X509_STORE_new();
  if (bio == NULL || *out == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory reading %s", path);
  unsigned n = 0;
  X509 *x;
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    int ok = X509_STORE_add_cert(*out, x);
    X509_free(x);
    if (!ok)
      return verr_set(err, VERR_NOMEM, "cannot add a CA of %s to the trust store", path);
    n++;
  }
  ERR_clear_error();
  if (n == 0)
    return verr_set(err, VERR_USAGE, "the CA bundle %s holds no PEM certificate", path);
  return 0;
}

static void subject_of(X509 *cert, char *out, size_t size)
{
  out[0] = '\0';
  BIO *bio = BIO_new(BIO_s_mem());
  if (bio == NULL)
    return;
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  int n = BIO_read(bio, out, (int)size - 1);
  out[n > 0 ? n : 0] = '\0';
  BIO_free(bio);
}

static int verify_chain(X509 *leaf, STACK_OF(X509) *rest, X509_STORE *store,
                        const struct signature_opts *opts, const char *subject,
                        struct verr *err)
{
  CLEANUP_STORE_CTX X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  if (ctx == NULL || X509_STORE_CTX_init(ctx, store, leaf, rest) != 1)
    return verr_set(err, VERR_NOMEM, "cannot set up certificate verification");
  if (opts->verify_time != 0)
    X509_STORE_CTX_set_time(ctx, 0, opts->verify_time);
  if (X509_verify_cert(ctx) == 1)
    return 0;
  int code = X509_STORE_CTX_get_error(ctx);
  ERR_clear_error();
  return verr_set(err, VERR_VERIFY, "the signing certificate \"%.200s\" (%s) is not trusted "
                  "by the CA bundle %s: %s (depth %d); renew it, or give the CA that issued it",
                  subject, opts->certificate_path, opts->ca_bundle_path,
                  X509_verify_cert_error_string(code), X509_STORE_CTX_get_error_depth(ctx));
}

static int check_key_usage(X509 *leaf, const char *subject, struct verr *err)
{
  /* RFC 5280 4.2.1.3: without the extension any usage is allowed */
  if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) == 0 ||
      (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) != 0)
    return 0;
  return verr_set(err, VERR_VERIFY, "the signing certificate \"%.200s\" does not allow "
                  "digitalSignature in its key usage, so it may not sign images; issue one "
                  "that does", subject);
}

static int load_certificate(const struct signature_opts *opts, struct trust_key *out,
                            struct verr *err)
{
  CLEANUP_X509 X509 *leaf = NULL;
  CLEANUP_X509_STACK STACK_OF(X509) *rest = NULL;
  CLEANUP_STORE X509_STORE *store = NULL;
  if (read_cert_chain(opts->certificate_path, &leaf, &rest, err) == -1 ||
      load_ca_bundle(opts->ca_bundle_path, &store, err) == -1)
    return -1;
  subject_of(leaf, out->subject, sizeof out->subject);
  if (verify_chain(leaf, rest, store, opts, out->subject, err) == -1 ||
      check_key_usage(leaf, out->subject, err) == -1)
    return -1;
  out->pkey = X509_get_pubkey(leaf);
  if (out->pkey == NULL)
    return verr_set(err, VERR_USAGE, "the public key of certificate %s is of a kind OpenSSL "
                    "cannot use", opts->certificate_path);
  return 0;
}

/* ---- description ---- */

static int fingerprint(EVP_PKEY *pkey, char *out, size_t size, struct verr *err)
{
  unsigned char *der = NULL;
  int der_len = i2d_PUBKEY(pkey, &der);
  unsigned char md[32];
  unsigned md_len = 0;
  int ok = der_len > 0 && EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL);
  OPENSSL_free(der);
  if (!ok || size < 8 + 64)
    return verr_set(err, VERR_INTERNAL, "cannot compute the public key's fingerprint");
  memcpy(out, "sha256:", 7);
  for (unsigned i = 0; i < md_len; i++)
    snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
  return 0;
}

static void describe_key(EVP_PKEY *pkey, char *out, size_t size)
{
  char group[64] = "";
  size_t glen = 0;
  switch (EVP_PKEY_get_base_id(pkey)) {
  case EVP_PKEY_RSA:
  case EVP_PKEY_RSA_PSS:
    snprintf(out, size, "RSA-%d", EVP_PKEY_get_bits(pkey));
    return;
  case EVP_PKEY_DSA:
    snprintf(out, size, "DSA-%d", EVP_PKEY_get_bits(pkey));
    return;
  case EVP_PKEY_ED25519:
    snprintf(out, size, "Ed25519");
    return;
  case EVP_PKEY_EC: {
    EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen);
    const char *nist = EC_curve_nid2nist(OBJ_sn2nid(group));
    /* Curve names are short ("brainpoolP512t1"); the bound keeps gcc's truncation check
     * quiet when this is inlined into a caller with a 48-byte description (-O1). */
    snprintf(out, size, "ECDSA %.40s", nist != NULL ? nist : group);
    return;
  }
  default:
    snprintf(out, size, "%s", EVP_PKEY_get0_type_name(pkey));
  }
}

int trust_key_load(const struct signature_opts *opts, struct trust_key *out,
                   struct verr *err)
{
  memset(out, 0, sizeof *out);
  if ((opts->public_key_path == NULL) == (opts->certificate_path == NULL))
    return verr_set(err, VERR_USAGE, "give the signing key as exactly one of publicKey "
                    "(a PEM public key) or certificate (with caBundle)");
  if ((opts->certificate_path != NULL) != (opts->ca_bundle_path != NULL))
    return verr_set(err, VERR_USAGE, opts->certificate_path != NULL
                    ? "a signing certificate needs caBundle, the CA certificates it must "
                      "chain to"
                    : "caBundle applies only to a signing certificate; drop it or give "
                      "certificate instead of publicKey");
  int rc = opts->public_key_path != NULL ? load_public_key(opts->public_key_path, &out->pkey, err)
                                         : load_certificate(opts, out, err);
  if (rc == -1 || fingerprint(out->pkey, out->fingerprint, sizeof out->fingerprint, err) == -1) {
    trust_key_clear(out);
    return -1;
  }
  describe_key(out->pkey, out->description, sizeof out->description);
  return 0;
}

static enum trust_key_kind kind_of(EVP_PKEY *pkey)
{
  switch (EVP_PKEY_get_base_id(pkey)) {
  case EVP_PKEY_RSA: return TRUST_KEY_RSA_PKCS1;
  case EVP_PKEY_RSA_PSS: return TRUST_KEY_RSA_PSS;
  case EVP_PKEY_EC: return TRUST_KEY_ECDSA;
  case EVP_PKEY_ED25519: return TRUST_KEY_ED25519;
  case EVP_PKEY_DSA: return TRUST_KEY_DSA;
  default: return TRUST_KEY_ANY;
  }
}

int trust_key_check(const struct trust_key *key, const struct trust_key_type *want,
                    enum trust_key_kind *kind, struct verr *err)
{
  enum trust_key_kind have = kind_of(key->pkey);
  if (have == TRUST_KEY_ANY)
    return verr_set(err, VERR_USAGE, "the signing key is %s; use an RSA, ECDSA, Ed25519 or "
                    "DSA key", key->description);
  *kind = want->kind == TRUST_KEY_ANY ? have : want->kind;
  /* an RSA key signs with either padding; an RSA-PSS key only with PSS */
  bool fits = *kind == have || (*kind == TRUST_KEY_RSA_PSS && have == TRUST_KEY_RSA_PKCS1);
  if (fits && want->curve_nid != 0) {
    char group[64] = "";
    size_t glen = 0;
    EVP_PKEY_get_group_name(key->pkey, group, sizeof group, &glen);
    fits = OBJ_sn2nid(group) == want->curve_nid;
  }
  if (!fits)
    return verr_set(err, VERR_USAGE, "the signing key is %s (%s), which does not fit "
                    "keyType: fix keyType or give the right key", key->description,
                    key->fingerprint);
  return 0;
}

void trust_key_clear(struct trust_key *key)
{
  EVP_PKEY_free(key->pkey);
  memset(key, 0, sizeof *key);
}
