/* Unit tests for pkg/trust.
 *
 * Checksum files: GNU, BSD, openssl and Fedora CHECKSUM texts written here and files
 * written by the real coreutils and openssl tools, each parsed sum checked against the
 * file's real digest; every error case and its message. Fetching through a real HTTP
 * server (tests/e2e/faultserver.py).
 *
 * Signatures: keys, certificates and signatures are made IN THE TEST with the openssl
 * command line, for every key type and form; an image file is streamed through the
 * signature tap from pkg/source's file reader. Each case also checks that a flipped
 * byte in the image, a flipped byte in the signature and a signature from another key
 * of the same type fail with a clear message and nothing reported as verified. The
 * streaming Ed25519 check is compared with OpenSSL's one-shot verifier on random keys,
 * messages and corruptions.
 *
 * Each test runs in its own process (Criterion) with its own temporary directory.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/cleanup.h"
#include "source/source.h"
#include "spec/spec.h"
#include "trust/internal.h"
#include "trust/trust.h"

#define IMAGE_SIZE ((1u << 20) + 4321) /* not a multiple of any chunk size */

static struct {
  char dir[256];
  pid_t server;
  int port;
} fx;

static const char *top(void)
{
  const char *t = getenv("VIMPORT_TOP");
  return t != NULL ? t : ".";
}

static void setup(void)
{
  memset(&fx, 0, sizeof fx);
  strcpy(fx.dir, "/tmp/vimport-test-trust.XXXXXX");
  cr_assert_not_null(mkdtemp(fx.dir));
}

static void teardown(void)
{
  if (fx.server > 0) {
    kill(fx.server, SIGTERM);
    waitpid(fx.server, NULL, 0);
  }
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx.dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", fx.dir);
}

TestSuite(checksum_file, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(signature, .init = setup, .fini = teardown, .timeout = 180);
TestSuite(ed25519, .timeout = 120);

/* A path in fx.dir that stays valid for the whole test (one process per test). */
static char *path_in(const char *name)
{
  static char buf[1024][384];
  static size_t next;
  cr_assert_lt(next, sizeof buf / sizeof buf[0], "path_in: too many paths in one test");
  char *p = buf[next++];
  snprintf(p, sizeof buf[0], "%s/%s", fx.dir, name);
  return p;
}

/* Run shell commands in fx.dir (bash -e, at most 120 s); fail the test with the log. */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
  char script[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(script, sizeof script, fmt, ap);
  va_end(ap);
  FILE *f = fopen(path_in("cmd.sh"), "w");
  cr_assert_not_null(f);
  fprintf(f, "set -euo pipefail\ncd '%s'\n%s\n", fx.dir, script);
  fclose(f);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "timeout 120 bash '%s/cmd.sh' >'%s/cmd.log' 2>&1", fx.dir, fx.dir);
  int rc = system(cmd);
  if (rc != 0) {
    char log[2048] = "";
    FILE *l = fopen(path_in("cmd.log"), "r");
    if (l != NULL) {
      size_t n = fread(log, 1, sizeof log - 1, l);
      log[n] = '\0';
      fclose(l);
    }
    cr_assert_fail("command failed (%d):\n%s\n%s", rc, script, log);
  }
}

static void write_file(const char *name, const void *data, size_t len)
{
  FILE *f = fopen(path_in(name), "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(data, 1, len, f), len);
  fclose(f);
}

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

static char *slurp(const char *name)
{
  FILE *f = fopen(path_in(name), "rb");
  cr_assert_not_null(f, "%s", name);
  char *buf = calloc(1, 1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
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

static void start_faultserver(void)
{
  char script[512], port_file[512];
  snprintf(script, sizeof script, "%s/tests/e2e/faultserver.py", top());
  snprintf(port_file, sizeof port_file, "%s/port", fx.dir);
  if (access(script, R_OK) != 0)
    cr_skip_test("%s not found: run from the repo root or set VIMPORT_TOP", script);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    execlp("python3", "python3", script, "--root", fx.dir, "--port-file", port_file,
           "--timeout", "120", (char *)NULL);
    _exit(127);
  }
  fx.server = pid;
  for (int i = 0; i < 200 && fx.port == 0; i++) {
    FILE *f = fopen(port_file, "r");
    if (f != NULL) {
      if (fscanf(f, "%d", &fx.port) != 1)
        fx.port = 0;
      fclose(f);
    }
    if (fx.port == 0)
      usleep(50000);
  }
  cr_assert_gt(fx.port, 0, "faultserver did not report its port within 10 s");
}

static struct source_opts fetch_opts(const char *u)
{
  return (struct source_opts){ .url = u, .retries = SOURCE_RETRIES_NONE, .stall_timeout_s = 5,
                               .connect_timeout_s = 5 };
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

/* ---- streaming Ed25519 against OpenSSL's one-shot verifier ---------------------------- */

static int openssl_verdict(EVP_PKEY *key, const unsigned char *sig, const unsigned char *msg,
                           size_t len)
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  cr_assert(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1);
  int ok = EVP_DigestVerify(ctx, sig, 64, msg, len) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

static int stream_verdict(EVP_PKEY *key, const unsigned char *sig, const unsigned char *msg,
                          size_t len)
{
  struct ed25519_stream *s = NULL;
  struct verr err;
  cr_assert_eq(ed25519_stream_new(key, sig, 64, &s, &err), 0, "%s", err.message);
  for (size_t at = 0; at < len;) {
    size_t n = 1 + (size_t)(rand() % 700);
    if (n > len - at)
      n = len - at;
    cr_assert_eq(ed25519_stream_update(s, msg + at, n, &err), 0);
    at += n;
  }
  bool valid = false;
  cr_assert_eq(ed25519_stream_final(s, &valid, &err), 0, "%s", err.message);
  ed25519_stream_free(s);
  return valid;
}

/* S + L: the same signature, malleated; both must refuse it (S must be below L). */
static void add_group_order(unsigned char *sig)
{
  static const unsigned char L[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
  };
  unsigned carry = 0;
  for (int i = 0; i < 32; i++) {
    unsigned v = sig[32 + i] + L[i] + carry;
    sig[32 + i] = (unsigned char)v;
    carry = v >> 8;
  }
}

Test(ed25519, matches_openssl)
{
  srand(12345);
  for (int round = 0; round < 24; round++) {
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    cr_assert_not_null(key);
    size_t len = round == 0 ? 0 : (size_t)(rand() % 5000);
    unsigned char *msg = malloc(len + 1);
    RAND_bytes(msg, (int)len + 1);
    unsigned char sig[64];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    cr_assert(EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1);
    cr_assert(EVP_DigestSign(ctx, sig, &sig_len, msg, len) == 1);
    EVP_MD_CTX_free(ctx);

    cr_expect(stream_verdict(key, sig, msg, len), "round %d: a good signature failed", round);
    unsigned char bad[64];
    memcpy(bad, sig, 64);
    bad[rand() % 64] ^= (unsigned char)(1u << (rand() % 8));
    cr_expect_eq(stream_verdict(key, bad, msg, len), openssl_verdict(key, bad, msg, len),
                 "round %d: verdicts differ on a flipped signature bit", round);
    cr_expect(!stream_verdict(key, bad, msg, len), "round %d", round);
    if (len > 0) {
      msg[rand() % len] ^= 0x80;
      cr_expect(!stream_verdict(key, sig, msg, len), "round %d: flipped message verified",
                round);
    }
    memcpy(bad, sig, 64);
    add_group_order(bad);
    cr_expect(!openssl_verdict(key, bad, msg, len));
    cr_expect(!stream_verdict(key, bad, msg, len), "round %d: S + L accepted", round);
    free(msg);
    EVP_PKEY_free(key);
  }
}

/* RFC 8032 7.1, TEST 2 (one byte 0x72). */
Test(ed25519, rfc8032_vector)
{
  static const unsigned char pub[32] = {
    0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc,
    0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c,
  };
  static const unsigned char sig[64] = {
    0x92, 0xa0, 0x09, 0xa9, 0xf0, 0xd4, 0xca, 0xb8, 0x72, 0x0e, 0x82, 0x0b, 0x5f, 0x64, 0x25, 0x40,
    0xa2, 0xb2, 0x7b, 0x54, 0x16, 0x50, 0x3f, 0x8f, 0xb3, 0x76, 0x22, 0x23, 0xeb, 0xdb, 0x69, 0xda,
    0x08, 0x5a, 0xc1, 0xe4, 0x3e, 0x15, 0x99, 0x6e, 0x45, 0x8f, 0x36, 0x13, 0xd0, 0xf1, 0x1d, 0x8c,
    0x38, 0x7b, 0x2e, 0xae, 0xb4, 0x30, 0x2a, 0xee, 0xb0, 0x0d, 0x29, 0x16, 0x12, 0xbb, 0x0c, 0x00,
  };
  unsigned char msg[1] = { 0x72 };
  EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof pub);
  cr_assert_not_null(key);
  cr_expect(stream_verdict(key, sig, msg, 1));
  msg[0] = 0x73;
  cr_expect(!stream_verdict(key, sig, msg, 1));
  EVP_PKEY_free(key);
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
