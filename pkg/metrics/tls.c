/* vimport metrics: the throwaway certificate for the HTTPS endpoint.
 *
 * CDI's controller scrapes the importer with certificate verification off, so the
 * certificate only has to exist: it is made fresh at every start, lives in memory and
 * dies with the process. No key ever reaches the disk or the log.
 */
#include "internal.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/error.h"

#define CERT_LIFETIME_SECONDS (24 * 60 * 60)

static int tls_error(struct verr *err, const char *what)
{
  char why[256] = "no detail";
  unsigned long e = ERR_get_error();
  if (e != 0)
    ERR_error_string_n(e, why, sizeof why);
  ERR_clear_error();
  return verr_set(err, VERR_INTERNAL, "OpenSSL failed to %s for the progress metric "
                  "endpoint (%s): check the OpenSSL installation, or disable the metric "
                  "with port 0", what, why);
}

/* A random positive 63-bit serial: two certificates from two starts must differ. */
static int tls_set_serial(X509 *cert)
{
  BIGNUM *bn = BN_new();
  int ok = bn != NULL && BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
           BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
  BN_free(bn);
  return ok ? 0 : -1;
}

static int tls_fill_cert(X509 *cert, EVP_PKEY *key)
{
  X509_NAME *name = X509_get_subject_name(cert);
  if (X509_set_version(cert, 2) != 1 || tls_set_serial(cert) < 0 ||
      X509_gmtime_adj(X509_getm_notBefore(cert), 0) == NULL ||
      X509_gmtime_adj(X509_getm_notAfter(cert), CERT_LIFETIME_SECONDS) == NULL ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"vimport",
                                 -1, -1, 0) != 1 ||
      X509_set_issuer_name(cert, name) != 1 || X509_set_pubkey(cert, key) != 1 ||
      X509_sign(cert, key, EVP_sha256()) <= 0)
    return -1;
  return 0;
}

static int tls_ctx_configure(SSL_CTX *ctx, X509 *cert, EVP_PKEY *key)
{
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1)
    return -1;
  /* one short request per connection: no session cache, no renegotiation */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  return 0;
}

SSL_CTX *metrics_tls_new(struct verr *err)
{
  ERR_clear_error();
  EVP_PKEY *key = EVP_EC_gen("P-256");
  if (key == NULL) {
    tls_error(err, "generate an EC P-256 key");
    return NULL;
  }
  X509 *cert = X509_new();
  SSL_CTX *ctx = NULL;
  if (cert == NULL || tls_fill_cert(cert, key) < 0)
    tls_error(err, "make a self-signed certificate");
  else if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
    tls_error(err, "create a TLS server context");
  else if (tls_ctx_configure(ctx, cert, key) < 0) {
    tls_error(err, "load the certificate into the TLS server context");
    SSL_CTX_free(ctx);
    ctx = NULL;
  }
  /* the context holds its own references */
  X509_free(cert);
  EVP_PKEY_free(key);
  return ctx;
}
