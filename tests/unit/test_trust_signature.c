/* Unit tests for pkg/trust's image signatures.
 *
 * Keys, certificates and signatures are made IN THE TEST with the openssl command line,
 * for every key type and form; an image file is streamed through the signature tap from
 * pkg/source's file reader. Each case also checks that a flipped byte in the image, a
 * flipped byte in the signature and a signature from another key of the same type fail
 * with a clear message and nothing reported as verified. Certificate chains, expired and
 * wrong-usage certificates, Glance's signature properties, a signature fetched over HTTP
 * and a checksum file's signature.
 *
 * Each test runs in its own process (Criterion) with its own temporary directory.
 */
#include "core/cleanup.h"
#include "trust/trust.h"
#include "trust_fixtures.h"

#define IMAGE_SIZE ((1u << 20) + 4321) /* not a multiple of any chunk size */

TestSuite(signature, .init = setup, .fini = teardown, .timeout = 180);

static void flip_byte(const char *from, const char *to, long at_from_end_or_mid)
{
  FILE *f = fopen(path_in(from), "rb");
  cr_assert_not_null(f, "%s", from);
  unsigned char *buf = malloc(IMAGE_SIZE + 65536);
  size_t n = fread(buf, 1, IMAGE_SIZE + 65536, f);
  fclose(f);
  cr_assert_gt(n, 0);
  size_t at = at_from_end_or_mid < 0 ? n / 2 : (size_t)at_from_end_or_mid;
  buf[at] ^= 0x01;
  write_file(to, buf, n);
  free(buf);
}

/* ---- signatures ---------------------------------------------------------------------- */

/* Stream `image` through a signature tap over pkg/source's file reader. */
static int verify_image(const struct signature_opts *opts, const char *image,
                        struct signature_result *res, struct verr *err)
{
  memset(res, 0, sizeof *res);
  memset(err, 0, sizeof *err);
  struct source_opts so = { .url = path_in(image) };
  struct vreader *src = NULL, *tap = NULL;
  cr_assert_eq(source_open(&so, &src, err), 0, "%s", err->message);
  if (signature_tap_new(src, opts, &tap, err) == -1)
    return -1;
  static unsigned char buf[7777]; /* odd size: reads straddle every boundary */
  ssize_t n;
  while ((n = tap->ops->read(tap, buf, sizeof buf, err)) > 0)
    ;
  cr_assert_eq(n, 0, "%s", err->message);
  cr_expect_eq(signature_tap_bytes(tap), IMAGE_SIZE);
  int rc = signature_tap_final(tap, res, err);
  vreader_close(tap);
  return rc;
}

static void expect_verified(const struct signature_opts *opts, const char *image,
                            const char *key_type_prefix)
{
  struct signature_result res;
  struct verr err;
  cr_assert_eq(verify_image(opts, image, &res, &err), 0, "%s", err.message);
  cr_expect(res.verified);
  cr_expect_eq(res.bytes, IMAGE_SIZE);
  cr_expect(strncmp(res.key_type, key_type_prefix, strlen(key_type_prefix)) == 0,
            "key type \"%s\", expected \"%s...\"", res.key_type, key_type_prefix);
  cr_expect(strncmp(res.key_fingerprint, "sha256:", 7) == 0 &&
            strlen(res.key_fingerprint) == 7 + 64, "%s", res.key_fingerprint);
}

static void expect_mismatch(const struct signature_opts *opts, const char *image,
                            const char *what)
{
  struct signature_result res;
  struct verr err;
  cr_assert_eq(verify_image(opts, image, &res, &err), -1, "%s verified", what);
  cr_expect(!res.verified, "%s: reported as verified", what);
  cr_expect_eq(res.key_fingerprint[0], '\0', "%s: a key was reported", what);
  cr_expect_eq(err.code, VERR_VERIFY, "%s: code %d: %s", what, err.code, err.message);
  cr_expect(strstr(err.message, "signature does not match the image") != NULL, "%s: %s", what,
            err.message);
}

/* Fails before any byte with `code` and `needle` in the message. */
static void expect_setup_error(const struct signature_opts *opts, enum verr_code code,
                               const char *needle)
{
  struct signature_result res;
  struct verr err;
  cr_assert_eq(verify_image(opts, "img", &res, &err), -1, "expected \"%s\"", needle);
  cr_expect(!res.verified);
  cr_expect_eq(err.code, code, "code %d: %s", err.code, err.message);
  cr_expect(strstr(err.message, needle) != NULL, "\"%s\" not in: %s", needle, err.message);
}

static void make_image(void)
{
  sh("head -c %u /dev/urandom > img", IMAGE_SIZE);
}

/* openssl genpkey arguments per key kind */
static const char *genpkey_args(const char *kind)
{
  if (strcmp(kind, "p256") == 0)
    return "-algorithm EC -pkeyopt ec_paramgen_curve:P-256";
  if (strcmp(kind, "p384") == 0)
    return "-algorithm EC -pkeyopt ec_paramgen_curve:P-384";
  if (strcmp(kind, "ed25519") == 0)
    return "-algorithm ed25519";
  if (strcmp(kind, "rsa") == 0)
    return "-algorithm RSA -pkeyopt rsa_keygen_bits:2048";
  if (strcmp(kind, "rsa-pss") == 0)
    return "-algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048";
  if (strcmp(kind, "dsa") == 0)
    return "-paramfile dsa.param";
  cr_assert_fail("unknown key kind %s", kind);
  return NULL;
}

/* Make key pair `name` of `kind` (name.key, name.pub). */
static void make_key(const char *kind, const char *name)
{
  if (strcmp(kind, "dsa") == 0 && access(path_in("dsa.param"), R_OK) != 0)
    sh("openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 "
       "-pkeyopt dsa_paramgen_q_bits:256 -out dsa.param");
  sh("openssl genpkey %s -out %s.key\nopenssl pkey -in %s.key -pubout -out %s.pub",
     genpkey_args(kind), name, name, name);
}

/* Sign `image` with `key` into `out`: `how` is "dgst -sha256 [-sigopt ...]" or "pkeyutl"
 * (Ed25519, pure). `form` "der", "base64" (one line, as cosign prints it) or "wrapped"
 * (openssl base64, 64 columns). */
static void make_signature(const char *key, const char *how, const char *image,
                           const char *form, const char *out)
{
  if (strcmp(how, "pkeyutl") == 0)
    sh("openssl pkeyutl -sign -rawin -inkey %s.key -in %s -out %s.raw", key, image, out);
  else
    sh("openssl %s -sign %s.key -out %s.raw %s", how, key, out, image);
  if (strcmp(form, "der") == 0)
    sh("mv %s.raw %s", out, out);
  else if (strcmp(form, "base64") == 0)
    sh("base64 -w0 %s.raw > %s", out, out);
  else
    sh("openssl base64 -in %s.raw -out %s", out, out);
}

struct sig_case {
  const char *kind;     /* genpkey kind */
  const char *how;      /* signing command */
  const char *form;     /* der | base64 | wrapped */
  enum signature_format format;
  const char *hash;     /* hashMethod option */
  const char *key_type; /* keyType option */
  const char *expect;   /* result key_type prefix */
};

/* Sign with the openssl CLI, verify; then flip an image byte, flip a signature byte and
 * use another key's signature: each must fail with nothing verified. */
static void run_case(const struct sig_case *c)
{
  make_image();
  make_key(c->kind, "k1");
  make_key(c->kind, "k2");
  make_signature("k1", c->how, "img", c->form, "good.sig");
  make_signature("k2", c->how, "img", c->form, "other.sig");
  struct signature_opts o = {
    .signature_path = path_in("good.sig"), .public_key_path = path_in("k1.pub"),
    .format = c->format, .hash_method = c->hash, .key_type = c->key_type,
  };
  expect_verified(&o, "img", c->expect);

  flip_byte("img", "img.flipped", -1);
  expect_mismatch(&o, "img.flipped", "flipped image byte");

  if (strcmp(c->form, "der") == 0) {
    flip_byte("good.sig", "bad.sig", -1);
  } else {
    /* change one base64 digit in the middle: still base64, other bytes */
    CLEANUP_FREE char *text = slurp("good.sig");
    size_t mid = strlen(text) / 2;
    while (text[mid] == '\n')
      mid++;
    text[mid] = text[mid] == 'A' ? 'B' : 'A';
    write_file("bad.sig", text, strlen(text));
  }
  o.signature_path = path_in("bad.sig");
  expect_mismatch(&o, "img", "flipped signature byte");

  o.signature_path = path_in("other.sig");
  expect_mismatch(&o, "img", "signature from another key");
}

#define SIG_CASE(name, ...)                                                                 \
  Test(signature, name)                                                                     \
  {                                                                                         \
    const struct sig_case c = { __VA_ARGS__ };                                              \
    run_case(&c);                                                                           \
  }

SIG_CASE(ecdsa_p256_sha256_der, "p256", "dgst -sha256", "der", SIGNATURE_FORMAT_DER, "sha256",
         NULL, "ECDSA P-256")
SIG_CASE(ecdsa_p256_sha512_der, "p256", "dgst -sha512", "der", SIGNATURE_FORMAT_DER, "SHA-512",
         "ECDSA", "ECDSA P-256")
SIG_CASE(ecdsa_p384_sha384_base64, "p384", "dgst -sha384", "base64", SIGNATURE_FORMAT_BASE64,
         "sha384", NULL, "ECDSA P-384")
SIG_CASE(ecdsa_p256_cosign_style_auto, "p256", "dgst -sha256", "base64", SIGNATURE_FORMAT_AUTO,
         NULL, NULL, "ECDSA P-256")
SIG_CASE(ecdsa_p384_der_auto, "p384", "dgst -sha256", "der", SIGNATURE_FORMAT_AUTO, NULL, NULL,
         "ECDSA P-384")
SIG_CASE(ed25519_der, "ed25519", "pkeyutl", "der", SIGNATURE_FORMAT_DER, NULL, NULL, "Ed25519")
SIG_CASE(ed25519_wrapped_base64, "ed25519", "pkeyutl", "wrapped", SIGNATURE_FORMAT_BASE64, NULL,
         "Ed25519", "Ed25519")
SIG_CASE(rsa_pkcs1_sha256_der, "rsa", "dgst -sha256", "der", SIGNATURE_FORMAT_DER, NULL, NULL,
         "RSA-2048 PKCS#1 v1.5")
SIG_CASE(rsa_pkcs1_sha512_base64, "rsa", "dgst -sha512", "base64", SIGNATURE_FORMAT_BASE64,
         "sha512", "RSA", "RSA-2048 PKCS#1 v1.5")
SIG_CASE(rsa_pss_max_salt, "rsa", "dgst -sha256 -sigopt rsa_padding_mode:pss", "der",
         SIGNATURE_FORMAT_DER, "sha256", "RSA-PSS", "RSA-2048 PSS")
SIG_CASE(rsa_pss_digest_salt_sha384, "rsa",
         "dgst -sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest", "base64",
         SIGNATURE_FORMAT_BASE64, "sha384", "rsa-pss", "RSA-2048 PSS")
SIG_CASE(rsa_pss_key, "rsa-pss", "dgst -sha256", "der", SIGNATURE_FORMAT_DER, NULL, NULL,
         "RSA-2048 PSS")
SIG_CASE(dsa_sha256, "dsa", "dgst -sha256", "der", SIGNATURE_FORMAT_DER, "sha256", "DSA",
         "DSA-2048")

/* The right signature checked with the wrong hash or padding fails as a mismatch. */
Test(signature, wrong_hash_or_padding)
{
  make_image();
  make_key("rsa", "k1");
  make_signature("k1", "dgst -sha256", "img", "der", "pkcs1.sig");
  struct signature_opts o = { .signature_path = path_in("pkcs1.sig"),
                              .public_key_path = path_in("k1.pub"), .hash_method = "sha512" };
  expect_mismatch(&o, "img", "wrong hash");
  o.hash_method = NULL;
  o.key_type = "RSA-PSS";
  expect_mismatch(&o, "img", "PKCS#1 signature checked as PSS");
}

Test(signature, configuration_errors)
{
  make_image();
  make_key("p256", "k1");
  make_key("ed25519", "ed");
  make_signature("k1", "dgst -sha256", "img", "der", "good.sig");
  struct signature_opts o = { .signature_path = path_in("good.sig"),
                              .public_key_path = path_in("k1.pub") };

  o.key_type = "RSA";
  expect_setup_error(&o, VERR_USAGE, "does not fit keyType");
  o.key_type = "ECC_SECP384R1";
  expect_setup_error(&o, VERR_USAGE, "does not fit keyType");
  o.key_type = "ElGamal";
  expect_setup_error(&o, VERR_USAGE, "is not one of");
  o.key_type = NULL;
  o.hash_method = "md5";
  expect_setup_error(&o, VERR_USAGE, "hashMethod");
  o.hash_method = NULL;

  o.public_key_path = path_in("k1.key");
  expect_setup_error(&o, VERR_USAGE, "holds a private key");
  o.public_key_path = path_in("missing.pub");
  expect_setup_error(&o, VERR_IO, "missing.pub");
  write_file("notakey", "hello\n", 6);
  o.public_key_path = path_in("notakey");
  expect_setup_error(&o, VERR_USAGE, "is not a PEM or DER public key");
  o.public_key_path = path_in("k1.pub");

  o.certificate_path = path_in("k1.pub");
  expect_setup_error(&o, VERR_USAGE, "exactly one of publicKey");
  o.certificate_path = NULL;
  o.ca_bundle_path = path_in("k1.pub");
  expect_setup_error(&o, VERR_USAGE, "caBundle applies only");
  o.ca_bundle_path = NULL;

  o.signature_path = NULL;
  expect_setup_error(&o, VERR_USAGE, "exactly one of path");
  o.signature_path = path_in("good.sig");
  o.format = SIGNATURE_FORMAT_BASE64;
  expect_setup_error(&o, VERR_FORMAT, "not base64");
  o.format = SIGNATURE_FORMAT_DER;

  o.public_key_path = path_in("ed.pub");
  o.hash_method = "sha256";
  expect_setup_error(&o, VERR_USAGE, "drop hashMethod");
  o.hash_method = NULL;
  expect_setup_error(&o, VERR_FORMAT, "Ed25519 signature is 64 bytes");

  /* no key material in messages */
  CLEANUP_FREE char *pem = slurp("k1.pub");
  struct signature_result res;
  struct verr err;
  o.public_key_path = path_in("k1.key");
  cr_assert_eq(verify_image(&o, "img", &res, &err), -1);
  cr_expect(strstr(err.message, "BEGIN") == NULL && strstr(err.message, pem + 27) == NULL,
            "%s", err.message);
}

/* ---- certificates ---- */

static const char ca_conf[] =
    "[ca]\ndefault_ca = test\n"
    "[test]\ndir = .\ndatabase = index.txt\nnew_certs_dir = newcerts\nserial = serial\n"
    "certificate = ca.pem\nprivate_key = ca.key\ndefault_md = sha256\npolicy = any\n"
    "copy_extensions = none\nunique_subject = no\n"
    "[any]\ncommonName = supplied\norganizationName = optional\n"
    "[signer]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n";

/* A root CA (ca.pem), an intermediate (int.pem) and a P-256 signer issued by it with
 * keyUsage digitalSignature (signer.pem = signer + intermediate). */
static void make_pki(void)
{
  sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3 "
     "-subj '/CN=vimport test root' -addext 'basicConstraints=critical,CA:TRUE' "
     "-addext 'keyUsage=critical,keyCertSign,cRLSign' -keyout ca.key -out ca.pem 2>/dev/null\n"
     "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=vimport "
     "test intermediate' -keyout int.key -out int.csr 2>/dev/null\n"
     "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign\\n' > int.ext\n"
     "openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 3 "
     "-extfile int.ext -out int.pem 2>/dev/null\n"
     "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
     "-subj '/O=vimport test/CN=image signer' -keyout signer.key -out signer.csr 2>/dev/null\n"
     "printf 'basicConstraints=CA:FALSE\\nkeyUsage=critical,digitalSignature\\n' > signer.ext\n"
     "openssl x509 -req -in signer.csr -CA int.pem -CAkey int.key -set_serial 3 -days 2 "
     "-extfile signer.ext -out signer.leaf 2>/dev/null\n"
     "cat signer.leaf int.pem > signer.pem\n");
}

Test(signature, certificate_chain)
{
  make_image();
  make_pki();
  make_signature("signer", "dgst -sha256", "img", "der", "img.sig");
  struct signature_opts o = { .signature_path = path_in("img.sig"),
                              .certificate_path = path_in("signer.pem"),
                              .ca_bundle_path = path_in("ca.pem") };
  struct signature_result res;
  struct verr err;
  cr_assert_eq(verify_image(&o, "img", &res, &err), 0, "%s", err.message);
  cr_expect(res.verified);
  cr_expect_str_eq(res.subject, "CN=image signer,O=vimport test");
  cr_expect_str_eq(res.key_type, "ECDSA P-256");

  /* the same certificate's signature over another image */
  flip_byte("img", "img.flipped", -1);
  expect_mismatch(&o, "img.flipped", "flipped image, certificate");

  /* without the intermediate the chain does not close */
  o.certificate_path = path_in("signer.leaf");
  expect_setup_error(&o, VERR_VERIFY, "unable to get local issuer certificate");
  o.certificate_path = path_in("signer.pem");

  /* a CA bundle of another CA */
  sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3 "
     "-subj '/CN=some other CA' -keyout other-ca.key -out other-ca.pem 2>/dev/null");
  o.ca_bundle_path = path_in("other-ca.pem");
  expect_setup_error(&o, VERR_VERIFY, "is not trusted by the CA bundle");
  o.ca_bundle_path = path_in("ca.pem");

  /* checked at a time after the certificate expired, and before it was issued */
  o.verify_time = time(NULL) + 30 * 86400;
  expect_setup_error(&o, VERR_VERIFY, "certificate has expired");
  o.verify_time = time(NULL) - 30 * 86400;
  expect_setup_error(&o, VERR_VERIFY, "not yet valid");
  o.verify_time = 0;

  /* a certificate is not a public key and needs its CA */
  o.ca_bundle_path = NULL;
  expect_setup_error(&o, VERR_USAGE, "needs caBundle");
  o.ca_bundle_path = path_in("ca.pem");
  o.public_key_path = path_in("signer.pem");
  o.certificate_path = NULL;
  o.ca_bundle_path = NULL;
  expect_setup_error(&o, VERR_USAGE, "holds a certificate");
}

/* A really expired certificate (issued with past dates by `openssl ca`). */
Test(signature, expired_certificate)
{
  make_image();
  make_pki();
  write_file("ca.conf", ca_conf, sizeof ca_conf - 1);
  sh("mkdir newcerts && : > index.txt && echo 10 > serial\n"
     "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=old signer' "
     "-keyout old.key -out old.csr 2>/dev/null\n"
     "openssl ca -batch -config ca.conf -extensions signer -startdate 20200101000000Z "
     "-enddate 20210101000000Z -in old.csr -out old.pem 2>/dev/null");
  make_signature("old", "dgst -sha256", "img", "der", "img.sig");
  struct signature_opts o = { .signature_path = path_in("img.sig"),
                              .certificate_path = path_in("old.pem"),
                              .ca_bundle_path = path_in("ca.pem") };
  expect_setup_error(&o, VERR_VERIFY, "certificate has expired");
  /* only the dates fail: the same key as a bare public key verifies */
  sh("openssl x509 -in old.pem -pubkey -noout > old.pub");
  o.certificate_path = o.ca_bundle_path = NULL;
  o.public_key_path = path_in("old.pub");
  expect_verified(&o, "img", "ECDSA P-256");
}

Test(signature, certificate_without_digital_signature_usage)
{
  make_image();
  make_pki();
  sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=key agreement' "
     "-keyout ka.key -out ka.csr 2>/dev/null\n"
     "printf 'basicConstraints=CA:FALSE\\nkeyUsage=critical,keyAgreement\\n' > ka.ext\n"
     "openssl x509 -req -in ka.csr -CA ca.pem -CAkey ca.key -set_serial 9 -days 2 "
     "-extfile ka.ext -out ka.pem 2>/dev/null");
  make_signature("ka", "dgst -sha256", "img", "der", "img.sig");
  struct signature_opts o = { .signature_path = path_in("img.sig"),
                              .certificate_path = path_in("ka.pem"),
                              .ca_bundle_path = path_in("ca.pem") };
  expect_setup_error(&o, VERR_VERIFY, "does not allow digitalSignature");
}

/* ---- Glance ---- */

static void make_rsa_cert(void)
{
  sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=glance signer' "
     "-addext 'keyUsage=critical,digitalSignature' -keyout rsa.key -out rsa.pem 2>/dev/null");
}

Test(signature, glance_rsa_pss)
{
  make_image();
  make_rsa_cert();
  /* what Glance users run: openssl dgst -sha256 -sigopt rsa_padding_mode:pss
   * -sigopt rsa_pss_saltlen:max, then base64 into img_signature */
  make_signature("rsa", "dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:max",
                 "img", "base64", "img_signature");
  struct signature_opts o = {
    .signature_path = path_in("img_signature"), .format = SIGNATURE_FORMAT_GLANCE,
    .certificate_path = path_in("rsa.pem"), .ca_bundle_path = path_in("rsa.pem"),
    .hash_method = "SHA-256", .key_type = "RSA-PSS",
  };
  struct signature_result res;
  struct verr err;
  cr_assert_eq(verify_image(&o, "img", &res, &err), 0, "%s", err.message);
  cr_expect_str_eq(res.key_type, "RSA-2048 PSS");
  cr_expect_str_eq(res.subject, "CN=glance signer");
  flip_byte("img", "img.flipped", -1);
  expect_mismatch(&o, "img.flipped", "glance, flipped image");

  /* cursive checks a salt of exactly the maximum length: a digest-length salt fails
   * under glance, though it passes as a plain RSA-PSS signature */
  make_signature("rsa", "dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt "
                 "rsa_pss_saltlen:digest", "img", "base64", "short-salt");
  o.signature_path = path_in("short-salt");
  expect_mismatch(&o, "img", "glance, digest-length salt");
  o.format = SIGNATURE_FORMAT_BASE64;
  expect_verified(&o, "img", "RSA-2048 PSS");

  /* Glance's names only */
  o.format = SIGNATURE_FORMAT_GLANCE;
  o.hash_method = "sha256";
  expect_setup_error(&o, VERR_USAGE, "Glance's spelling");
  o.hash_method = NULL;
  expect_setup_error(&o, VERR_USAGE, "img_signature_hash_method");
  o.hash_method = "SHA-256";
  o.key_type = NULL;
  expect_setup_error(&o, VERR_USAGE, "img_signature_key_type");
  o.key_type = "ECC_SECP384R1";
  expect_setup_error(&o, VERR_USAGE, "does not fit keyType");
}

Test(signature, glance_ecc_and_dsa)
{
  make_image();
  sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -days 2 "
     "-subj '/CN=glance ecc' -keyout ec.key -out ec.pem 2>/dev/null");
  make_signature("ec", "dgst -sha384", "img", "base64", "ec.sig");
  struct signature_opts o = {
    .signature_path = path_in("ec.sig"), .format = SIGNATURE_FORMAT_GLANCE,
    .certificate_path = path_in("ec.pem"), .ca_bundle_path = path_in("ec.pem"),
    .hash_method = "SHA-384", .key_type = "ECC_SECP384R1",
  };
  expect_verified(&o, "img", "ECDSA P-384");
  o.key_type = "ECC_SECP521R1";
  expect_setup_error(&o, VERR_USAGE, "does not fit keyType");

  make_key("dsa", "dsa");
  make_signature("dsa", "dgst -sha256", "img", "base64", "dsa.sig");
  struct signature_opts d = {
    .signature_path = path_in("dsa.sig"), .format = SIGNATURE_FORMAT_GLANCE,
    .public_key_path = path_in("dsa.pub"), .hash_method = "SHA-256", .key_type = "DSA",
  };
  expect_verified(&d, "img", "DSA-2048");
}

/* The signature fetched over HTTP with pkg/source, and a checksum file's signature. */
Test(signature, from_url_and_buffer)
{
  make_image();
  make_key("p256", "k1");
  make_signature("k1", "dgst -sha256", "img", "base64", "img.sig");
  sh("sha256sum img > SHA256SUMS");
  make_signature("k1", "dgst -sha256", "SHA256SUMS", "der", "SHA256SUMS.sig");
  start_faultserver();
  char u[256];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/img.sig", fx.port);
  struct source_opts fetch = fetch_opts(NULL);
  struct signature_opts o = { .signature_url = u, .fetch = &fetch,
                              .public_key_path = path_in("k1.pub") };
  expect_verified(&o, "img", "ECDSA P-256");

  snprintf(u, sizeof u, "http://127.0.0.1:%d/missing.sig?sig=secret", fx.port);
  expect_setup_error(&o, VERR_SOURCE, "missing.sig");

  CLEANUP_FREE char *sums = slurp("SHA256SUMS");
  struct signature_opts b = { .signature_path = path_in("SHA256SUMS.sig"),
                              .public_key_path = path_in("k1.pub") };
  struct signature_result res;
  struct verr err;
  cr_assert_eq(signature_verify_buffer(&b, sums, strlen(sums), &res, &err), 0, "%s",
               err.message);
  cr_expect(res.verified);
  sums[0] ^= 1;
  cr_assert_eq(signature_verify_buffer(&b, sums, strlen(sums), &res, &err), -1);
  cr_expect(!res.verified);
  cr_expect_eq(err.code, VERR_VERIFY, "%s", err.message);
}

Test(signature, format_names)
{
  enum signature_format f;
  struct verr err;
  cr_expect_eq(signature_format_parse("glance", &f, &err), 0);
  cr_expect_eq(f, SIGNATURE_FORMAT_GLANCE);
  cr_expect_eq(signature_format_parse("pgp", &f, &err), -1);
  cr_expect(strstr(err.message, "der, base64, glance") != NULL, "%s", err.message);
}
