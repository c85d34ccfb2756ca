/* Unit tests for pkg/trust's checksum files.
 *
 * GNU, BSD, openssl and Fedora CHECKSUM texts written here and files written by the real
 * coreutils and openssl tools, each parsed sum checked against the file's real digest;
 * every error case and its message. Fetching through a real HTTP server
 * (tests/e2e/faultserver.py). The spec keys that ask for a checksum or a signature
 * (pkg/spec) and what they load.
 *
 * Each test runs in its own process (Criterion) with its own temporary directory.
 */
#include <openssl/evp.h>

#include "core/cleanup.h"
#include "spec/spec.h"
#include "trust/trust.h"
#include "trust_fixtures.h"

TestSuite(checksum_file, .init = setup, .fini = teardown, .timeout = 60);

/* ---- checksum files ------------------------------------------------------------------ */

static const char *const SUM_A =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
static const char *const SUM_B =
    "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

static int parse(const char *text, const char *name, struct checksum *c, struct verr *err)
{
  memset(err, 0, sizeof *err);
  return checksum_file_parse(text, strlen(text), name, c, err);
}

static void expect_sum(const char *text, const char *name, const char *alg, const char *hex)
{
  struct checksum c;
  struct verr err;
  cr_assert_eq(parse(text, name, &c, &err), 0, "%s", err.message);
  cr_expect_str_eq(c.algorithm, alg);
  cr_expect_str_eq(c.hex, hex);
}

static void expect_error(const char *text, const char *name, enum verr_code code,
                         const char *needle)
{
  struct checksum c;
  struct verr err;
  cr_assert_eq(parse(text, name, &c, &err), -1, "parsed, expected \"%s\"", needle);
  cr_expect_eq(err.code, code, "code %d: %s", err.code, err.message);
  cr_expect(strstr(err.message, needle) != NULL, "\"%s\" not in: %s", needle, err.message);
}

Test(checksum_file, gnu_text_and_binary_mode)
{
  char text[1024];
  snprintf(text, sizeof text, "%s  disk-a.img\n%s *disk-b.img\n", SUM_A, SUM_B);
  expect_sum(text, "disk-a.img", "sha256", SUM_A);
  expect_sum(text, "disk-b.img", "sha256", SUM_B);
}

Test(checksum_file, uppercase_hex_crlf_and_dot_slash)
{
  expect_sum("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08  ./x.img\r\n",
             "x.img", "sha256", SUM_A);
}

Test(checksum_file, algorithm_from_hex_length)
{
  const char *text =
      "d41d8cd98f00b204e9800998ecf8427e  md5.img\n"
      "da39a3ee5e6b4b0d3255bfef95601890afd80709  sha1.img\n"
      "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318"
      "d2877eec2f63b931bd47417a81a538327af927da3e  sha512.img\n";
  expect_sum(text, "md5.img", "md5", "d41d8cd98f00b204e9800998ecf8427e");
  expect_sum(text, "sha1.img", "sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  expect_sum(text, "sha512.img", "sha512",
             "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0"
             "ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
}

Test(checksum_file, bsd_and_openssl_tags)
{
  char text[1024];
  snprintf(text, sizeof text, "SHA256 (a (1).img) = %s\nSHA2-256(b.img)= %s\n", SUM_A, SUM_B);
  expect_sum(text, "a (1).img", "sha256", SUM_A);
  expect_sum(text, "b.img", "sha256", SUM_B);
}

Test(checksum_file, strongest_algorithm_wins)
{
  char text[1024];
  snprintf(text, sizeof text, "MD5 (x.img) = d41d8cd98f00b204e9800998ecf8427e\n"
           "SHA256 (x.img) = %s\n", SUM_A);
  expect_sum(text, "x.img", "sha256", SUM_A);
}

Test(checksum_file, escaped_gnu_name)
{
  char text[1024];
  snprintf(text, sizeof text, "\\%s  back\\\\slash\\nnewline.img\n", SUM_A);
  expect_sum(text, "back\\slash\nnewline.img", "sha256", SUM_A);
}

/* Fedora's CHECKSUM files look like this: a clearsigned message around BSD lines. */
static const char fedora_checksum[] =
    "-----BEGIN PGP SIGNED MESSAGE-----\n"
    "Hash: SHA256\n"
    "\n"
    "# Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2: 491126784 bytes\n"
    "SHA256 (Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2) = "
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
    "# Fedora-Cloud-Base-AmazonEC2-41-1.4.x86_64.raw.xz: 398458880 bytes\n"
    "SHA256 (Fedora-Cloud-Base-AmazonEC2-41-1.4.x86_64.raw.xz) = "
    "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752\n"
    "- # a dash-escaped comment line\n"
    "-----BEGIN PGP SIGNATURE-----\n"
    "\n"
    "iQIzBAEBCAAdFiEEmDn/8+W2Jzaa9iCDlnplhxYfOkMFAmcpbkEACgkQlnplhxYf\n"
    "OkMj3Q/+PkK8rYv0Yt0VqV3yJ6ZqZfxs8gQ3n1bQH5dD2v5sVf1fU8ZcV1TzC3Zb\n"
    "=AbCd\n"
    "-----END PGP SIGNATURE-----\n";

Test(checksum_file, fedora_checksum)
{
  expect_sum(fedora_checksum, "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2", "sha256", SUM_A);
  expect_sum(fedora_checksum, "Fedora-Cloud-Base-AmazonEC2-41-1.4.x86_64.raw.xz", "sha256",
             SUM_B);
}

Test(checksum_file, missing_name_lists_others)
{
  expect_error(fedora_checksum, "Fedora-Server.iso", VERR_USAGE, "no line for \"Fedora-Server.iso\"");
  expect_error(fedora_checksum, "Fedora-Server.iso", VERR_USAGE, "checksumName");
  expect_error(fedora_checksum, "x", VERR_USAGE,
               "\"Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2\"");
}

Test(checksum_file, duplicate_names)
{
  char text[1024];
  snprintf(text, sizeof text, "%s  a.img\n# comment\n%s  b.img\n%s  a.img\n", SUM_A, SUM_A,
           SUM_B);
  expect_error(text, "a.img", VERR_FORMAT, "lines 1 and 4");
  /* the same sum twice is not a conflict */
  snprintf(text, sizeof text, "%s  a.img\nSHA256 (a.img) = %s\n", SUM_A, SUM_A);
  expect_sum(text, "a.img", "sha256", SUM_A);
}

Test(checksum_file, malformed_lines_name_the_line)
{
  char text[1024];
  snprintf(text, sizeof text, "%s  a.img\n\n<html>404 Not Found</html>\n", SUM_A);
  expect_error(text, "a.img", VERR_FORMAT, "line 3");
  expect_error("abc123  short.img\n", "short.img", VERR_FORMAT, "line 1");
  expect_error("SHA256 (a.img) = d41d8cd98f00b204e9800998ecf8427e\n", "a.img", VERR_FORMAT,
               "line 1");
  expect_error("SHA256 a.img = 9f86\n", "a.img", VERR_FORMAT, "line 1");
}

Test(checksum_file, other_errors)
{
  expect_error("", "a.img", VERR_FORMAT, "lists no sums");
  expect_error("# only a comment\n", "a.img", VERR_FORMAT, "lists no sums");
  expect_error("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSHA256 (a.img) = "
               "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
               "-----BEGIN PGP SIGNATURE-----\nAAAA\n", "a.img", VERR_FORMAT, "cut short");
  expect_error("SHA384 (a.img) = 38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6"
               "e1da274edebfe76f65fbd51ad2f14898b95b\n", "a.img", VERR_USAGE, "sha384");
  expect_error("x", "", VERR_USAGE, "checksumName");
  struct checksum c;
  struct verr err;
  cr_assert_eq(checksum_file_parse("a\0b", 3, "a", &c, &err), -1);
  cr_expect(strstr(err.message, "NUL") != NULL, "%s", err.message);
}

Test(checksum_file, name_from_url)
{
  char name[CHECKSUM_NAME_MAX];
  struct verr err;
  cr_assert_eq(checksum_file_name_from_url("https://u:p@h/p/Fedora%2BCloud.qcow2?tok=1#x", name,
                                           sizeof name, &err), 0, "%s", err.message);
  cr_expect_str_eq(name, "Fedora+Cloud.qcow2");
  cr_assert_eq(checksum_file_name_from_url("/images/disk.img", name, sizeof name, &err), 0);
  cr_expect_str_eq(name, "disk.img");
  cr_expect_eq(checksum_file_name_from_url("https://h/dir/", name, sizeof name, &err), -1);
  cr_expect(strstr(err.message, "checksumName") != NULL, "%s", err.message);
  cr_expect_eq(checksum_file_name_from_url("https://h/a%2Fb", name, sizeof name, &err), -1);
}

static void file_sha(const char *name, const char *alg, char *hex)
{
  FILE *f = fopen(path_in(name), "rb");
  cr_assert_not_null(f);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  cr_assert(EVP_DigestInit_ex(ctx, EVP_get_digestbyname(alg), NULL) == 1);
  unsigned char buf[65536], md[64];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    EVP_DigestUpdate(ctx, buf, n);
  unsigned md_len;
  EVP_DigestFinal_ex(ctx, md, &md_len);
  EVP_MD_CTX_free(ctx);
  fclose(f);
  for (unsigned i = 0; i < md_len; i++)
    sprintf(hex + 2 * i, "%02x", md[i]);
}

/* Files written by the real tools, each sum checked against the file's digest. */
Test(checksum_file, real_tools)
{
  sh("head -c 300000 /dev/urandom > 'disk one.img'\n"
     "head -c 1000 /dev/urandom > other.img\n"
     "sha256sum 'disk one.img' other.img > SHA256SUMS\n"
     "sha512sum -b other.img 'disk one.img' > SHA512SUMS\n"
     "md5sum 'disk one.img' > MD5SUMS\n"
     "sha256sum --tag other.img 'disk one.img' > TAGGED\n"
     "openssl dgst -sha256 'disk one.img' other.img > OPENSSL\n");
  static const struct { const char *file, *alg; } cases[] = {
    { "SHA256SUMS", "sha256" }, { "SHA512SUMS", "sha512" }, { "MD5SUMS", "md5" },
    { "TAGGED", "sha256" },     { "OPENSSL", "sha256" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CLEANUP_FREE char *text = slurp(cases[i].file);
    char want[129];
    file_sha("disk one.img", cases[i].alg, want);
    expect_sum(text, "disk one.img", cases[i].alg, want);
  }
}

Test(checksum_file, load_over_http)
{
  write_file("CHECKSUM", fedora_checksum, sizeof fedora_checksum - 1);
  start_faultserver();
  char u[256];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/CHECKSUM", fx.port);
  struct source_opts o = fetch_opts(u);
  struct checksum c;
  struct verr err = { 0 };
  cr_assert_eq(checksum_file_load(&o, "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2", &c, &err),
               0, "%s", err.message);
  cr_expect_str_eq(c.hex, SUM_A);

  /* a missing name names the URL too */
  cr_assert_eq(checksum_file_load(&o, "nope.img", &c, &err), -1);
  cr_expect(strstr(err.message, "/CHECKSUM") != NULL, "%s", err.message);

  /* 404 */
  snprintf(u, sizeof u, "http://127.0.0.1:%d/SHA256SUMS?token=secret", fx.port);
  o = fetch_opts(u);
  cr_assert_eq(checksum_file_load(&o, "a.img", &c, &err), -1);
  cr_expect_eq(err.code, VERR_SOURCE, "%s", err.message);
  cr_expect(strstr(err.message, "secret") == NULL, "query leaked: %s", err.message);

  /* larger than the cap */
  char *big = malloc(CHECKSUM_FILE_MAX_BYTES + 1);
  memset(big, '#', CHECKSUM_FILE_MAX_BYTES + 1);
  write_file("BIG", big, CHECKSUM_FILE_MAX_BYTES + 1);
  free(big);
  snprintf(u, sizeof u, "http://127.0.0.1:%d/BIG", fx.port);
  o = fetch_opts(u);
  cr_assert_eq(checksum_file_load(&o, "a.img", &c, &err), -1);
  cr_expect_eq(err.code, VERR_FORMAT, "%s", err.message);
  cr_expect(strstr(err.message, "larger than") != NULL, "%s", err.message);
}

/* ---- the spec keys (pkg/spec) --------------------------------------------------------- */

static int load_spec(const char *vimport_yaml, const char *source_yaml,
                     struct import_spec **spec, struct verr *err)
{
  char doc[4096];
  snprintf(doc, sizeof doc,
           "apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nspec:\n  source:\n%s"
           "vimport:\n%s", source_yaml, vimport_yaml);
  memset(err, 0, sizeof *err);
  return spec_load_yaml_buffer(doc, strlen(doc), "dv.yaml", spec, err);
}

static const char http_source[] = "    http:\n      url: https://u:pw@h/f/disk.qcow2?t=1\n";

Test(checksum_file, spec_keys)
{
  sh("openssl genpkey -algorithm ed25519 -out k.key && openssl pkey -in k.key -pubout -out k.pub");
  char yaml[2048];
  snprintf(yaml, sizeof yaml,
           "  checksumURL: https://u:pw@h/f/CHECKSUM?t=secret\n"
           "  checksumName: disk.qcow2\n"
           "  signature:\n"
           "    url: https://h/f/disk.qcow2.sig\n"
           "    format: base64\n"
           "    publicKey: %s\n", path_in("k.pub"));
  struct import_spec *spec = NULL;
  struct verr err;
  cr_assert_eq(load_spec(yaml, http_source, &spec, &err), 0, "%s", err.message);
  cr_expect_str_eq(spec->checksum_url, "https://u:pw@h/f/CHECKSUM?t=secret");
  cr_expect_str_eq(spec->checksum_name, "disk.qcow2");
  cr_expect(spec->signature.given);
  cr_expect_eq(spec->signature.format, SPEC_SIGNATURE_BASE64);
  cr_expect_str_eq(spec->signature.public_key, path_in("k.pub"));
  char *d = spec_describe(spec);
  cr_assert_not_null(d);
  cr_expect(strstr(d, "pw") == NULL && strstr(d, "secret") == NULL, "%s", d);
  cr_expect(strstr(d, "checksumURL=https://h/f/CHECKSUM") != NULL, "%s", d);
  free(d);
  spec_free(spec);

  static const struct { const char *yaml, *needle; } bad[] = {
    { "  checksumName: x.img\n", "applies only with checksumURL" },
    { "  checksumURL: ftp://h/SUMS\n", "not an http:// or https:// URL" },
    { "  signature:\n    path: /nonexistent/sig\n    publicKey: /etc/hostname\n",
      "cannot read /nonexistent/sig" },
    { "  signature:\n    url: https://h/s\n", "exactly one of publicKey or certificate" },
    { "  signature:\n    url: https://h/s\n    certificate: /etc/hostname\n",
      "needs caBundle" },
    { "  signature:\n    url: https://h/s\n    publicKey: /etc/hostname\n    format: pgp\n",
      "not a signature format" },
    { "  signature:\n    url: https://h/s\n    publicKey: /etc/hostname\n    format: glance\n",
      "needs hashMethod and keyType" },
    { "  signature:\n    url: https://h/s\n    publicKey: /etc/hostname\n    hashMethod: md5\n",
      "not a hash method" },
    { "  signature:\n    url: https://h/s\n    publicKey: /etc/hostname\n    keyType: ElGamal\n",
      "not a key type" },
    { "  signature:\n    publicKey: /etc/hostname\n", "exactly one of url or path" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    spec = NULL;
    cr_expect_eq(load_spec(bad[i].yaml, http_source, &spec, &err), -1, "%s", bad[i].yaml);
    cr_expect(strstr(err.message, bad[i].needle) != NULL, "\"%s\" not in: %s", bad[i].needle,
              err.message);
    cr_expect(strstr(err.message, "dv.yaml:") == err.message, "%s", err.message);
    spec_free(spec);
  }
  spec = NULL;
  cr_expect_eq(load_spec("  checksumURL: /sums/SHA256SUMS\n",
                         "    http:\n      url: https://h/d.img\n      checksum: "
                         "\"md5:d41d8cd98f00b204e9800998ecf8427e\"\n", &spec, &err), -1);
  cr_expect(strstr(err.message, "not both") != NULL, "%s", err.message);
  spec_free(spec);
}
