/* Unit tests for pkg/spec: quantities, checksums and block-hash algorithms, and the env
 * contract (CDI's importer variables), including that secrets never reach messages.
 * The YAML loader is tested in test_spec_yaml.c. Secret mounts are real files in a temp
 * directory.
 */
#include "spec_fixtures.h"

/* ---- quantities --------------------------------------------------------------------------- */

struct quantity_case {
  const char *text;
  uint64_t bytes;
};

static const struct quantity_case quantities_ok[] = {
  { "0", 0 },
  { "1", 1 },
  { "1024", 1024 },
  { "18446744073709551615", UINT64_MAX },
  { "1k", 1000 },
  { "1M", 1000000 },
  { "10G", 10000000000ull },
  { "1T", 1000000000000ull },
  { "1P", 1000000000000000ull },
  { "1E", 1000000000000000000ull },
  { "1Ki", 1024 },
  { "64Mi", 64ull << 20 },
  { "10Gi", 10ull << 30 },
  { "1Ti", 1ull << 40 },
  { "1Pi", 1ull << 50 },
  { "15Ei", 15ull << 60 },
  { "1.5Gi", 3ull << 29 },
  { "0.5Ki", 512 },
  { "1.25Ki", 1280 },
  { ".5Ki", 512 },
  { "2.500G", 2500000000ull },
  { "1.000000000000000000000000000Gi", 1ull << 30 },
  { "1e3", 1000 },
  { "1E3", 1000 },
  { "5e+2", 500 },
  { "1.5e3", 1500 },
  { "1000e-3", 1 },
  { "0e999999", 0 },
  { "1000m", 1 },
  { "0007", 7 },
};

static const char *const quantities_bad[] = {
  "", "64MB", "10 Gi", " 10Gi", "10Gi ", "-1", "+1", "1e3.5", "abc", "Gi", ".", "1.5",
  "0.5", "1.1Ki", "1500m", "1e-3", "16Ei", "18446744073709551616", "1e20", "20E",
  "99999999999999999999999", "1Kib", "1KI", "1ki", "1e", "1e+", "1..5", "0x10", "1,5Gi",
  "1.0000000000000000000000000001Gi", "1m", "1i",
};

Test(quantity, valid_table)
{
  for (size_t i = 0; i < sizeof quantities_ok / sizeof quantities_ok[0]; i++) {
    struct verr err = { 0 };
    uint64_t v = 42;
    cr_expect_eq(spec_parse_quantity(quantities_ok[i].text, &v, &err), 0, "%s: %s",
                 quantities_ok[i].text, err.message);
    cr_expect_eq(v, quantities_ok[i].bytes, "%s: got %llu", quantities_ok[i].text,
                 (unsigned long long)v);
  }
}

Test(quantity, invalid_table)
{
  for (size_t i = 0; i < sizeof quantities_bad / sizeof quantities_bad[0]; i++) {
    struct verr err = { 0 };
    uint64_t v = 42;
    cr_expect_eq(spec_parse_quantity(quantities_bad[i], &v, &err), -1, "\"%s\" accepted as %llu",
                 quantities_bad[i], (unsigned long long)v);
    cr_expect_eq(v, 42, "\"%s\" wrote the output", quantities_bad[i]);
    cr_expect_eq(err.code, VERR_USAGE);
    cr_expect_neq(err.message[0], '\0');
  }
}

Test(quantity, messages_say_what_to_do)
{
  struct verr err = { 0 };
  uint64_t v;
  spec_parse_quantity("64MB", &v, &err);
  cr_expect_not_null(strstr(err.message, "unknown suffix \"MB\""), "%s", err.message);
  cr_expect_not_null(strstr(err.message, "Ki Mi Gi"), "%s", err.message);
  spec_parse_quantity("-1", &v, &err);
  cr_expect_not_null(strstr(err.message, "negative"), "%s", err.message);
  spec_parse_quantity("10 Gi", &v, &err);
  cr_expect_not_null(strstr(err.message, "spaces"), "%s", err.message);
  spec_parse_quantity("0.5", &v, &err);
  cr_expect_not_null(strstr(err.message, "not a whole number"), "%s", err.message);
  spec_parse_quantity("16Ei", &v, &err);
  cr_expect_not_null(strstr(err.message, "larger than"), "%s", err.message);
}

/* ---- checksums and block hashes --------------------------------------------------------- */

Test(checksum, algorithms_and_lengths)
{
  struct { const char *text; enum spec_checksum_alg alg; const char *name; } ok[] = {
    { "md5:" MD5_HEX, SPEC_CHECKSUM_MD5, "md5" },
    { "sha1:" SHA1_HEX, SPEC_CHECKSUM_SHA1, "sha1" },
    { "sha256:" SHA256_HEX, SPEC_CHECKSUM_SHA256, "sha256" },
    { "sha512:" SHA512_HEX, SPEC_CHECKSUM_SHA512, "sha512" },
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    struct spec_checksum c = { 0 };
    struct verr err = { 0 };
    cr_expect_eq(spec_parse_checksum(ok[i].text, &c, &err), 0, "%s", err.message);
    cr_expect_eq(c.alg, ok[i].alg);
    cr_expect_str_eq(c.hex, strchr(ok[i].text, ':') + 1);
    cr_expect_str_eq(spec_checksum_alg_name(c.alg), ok[i].name);
  }
}

Test(checksum, uppercase_hex_is_lowered)
{
  struct spec_checksum c = { 0 };
  struct verr err = { 0 };
  cr_assert_eq(spec_parse_checksum("md5:D41D8CD98F00B204E9800998ECF8427E", &c, &err), 0);
  cr_expect_str_eq(c.hex, MD5_HEX);
}

Test(checksum, refused)
{
  static const char *const bad[] = {
    SHA256_HEX, "sha256:", "sha256:" MD5_HEX, "md5:" SHA256_HEX, "sha384:" SHA256_HEX,
    "SHA256:" SHA256_HEX, "sha256:" SHA256_HEX "0", "md5:d41d8cd98f00b204e9800998ecf8427g",
    ":" MD5_HEX, "md5: " MD5_HEX,
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct spec_checksum c = { 0 };
    struct verr err = { 0 };
    cr_expect_eq(spec_parse_checksum(bad[i], &c, &err), -1, "accepted %s", bad[i]);
    cr_expect_eq(c.alg, SPEC_CHECKSUM_NONE, "%s", bad[i]);
  }
}

Test(block_hash, any_openssl_digest)
{
  struct spec_block_hash bh = { 0 };
  struct verr err = { 0 };
  cr_assert_eq(spec_parse_block_hash("sha512:" SHA512_HEX, &bh, &err), 0, "%s", err.message);
  cr_expect_str_eq(bh.digest, "sha512");
  cr_expect_eq(bh.expected_len, 64);
  cr_expect_eq(bh.expected[0], 0xcf);
  cr_expect_eq(bh.expected[63], 0x3e);
  char blake[2 * 64 + 16] = "blake2b512:";
  memset(blake + strlen(blake), 'A', 128);
  blake[11 + 128] = '\0';
  cr_assert_eq(spec_parse_block_hash(blake, &bh, &err), 0, "%s", err.message);
  cr_expect_str_eq(bh.digest, "blake2b512");
  cr_expect_eq(bh.expected[5], 0xaa);
  cr_expect_eq(spec_parse_block_hash("sha256", &bh, &err), -1);
  cr_expect_eq(spec_parse_block_hash(":abcd", &bh, &err), -1);
  cr_expect_eq(spec_parse_block_hash("sha256:" SHA256_HEX "zz", &bh, &err), -1);
  free(bh.digest);
}

/* ---- env contract ----------------------------------------------------------------------- */

static struct import_spec *env_ok(char *const envp[])
{
  struct verr err = { 0 };
  struct import_spec *s = NULL;
  cr_assert_eq(spec_load_env(envp, &s, &err), 0, "%s", err.message);
  return s;
}

static void env_fails(char *const envp[], const char *expect)
{
  struct verr err = { 0 };
  struct import_spec *s = NULL;
  cr_assert_eq(spec_load_env(envp, &s, &err), -1, "accepted, expected \"%s\"", expect);
  cr_assert_null(s);
  cr_expect_not_null(strstr(err.message, expect), "message \"%s\"\nlacks \"%s\"", err.message,
                     expect);
}

TestSuite(env, .init = make_tmp, .fini = remove_tmp);

Test(env, full_http_contract)
{
  make_mounts();
  char *certs = tmp_path("certs");
  char *cert_env = format("IMPORTER_CERT_DIR=%s", certs);
  char *eh_env = format("VIMPORT_EXTRA_HEADERS_DIR=%s/extraheaders", tmp_root);
  char *envp[] = {
    "PATH=/usr/bin",
    "IMPORTER_SOURCE=http",
    "IMPORTER_ENDPOINT=https://images.example.com/disk.img.xz",
    "IMPORTER_CONTENTTYPE=kubevirt",
    "IMPORTER_IMAGE_SIZE=10Gi",
    "IMPORTER_CHECKSUM=sha1:" SHA1_HEX,
    cert_env,
    "IMPORTER_ACCESS_KEY_ID=ak",
    "IMPORTER_SECRET_KEY=sk-secret",
    "IMPORTER_EXTRA_HEADER_1=X-Second: 2",
    "IMPORTER_EXTRA_HEADER_0=X-First: 1",
    "IMPORTER_EXTRA_HEADER_3=X-Fourth: 4",
    "INSECURE_TLS=true",
    "PREALLOCATION=True",
    "FILESYSTEM_OVERHEAD=0.055",
    "OWNER_UID=6a5e0c3e-1f0b-4b9c-9d4e-2a7c1b3e5f60",
    "HTTP_PROXY=http://upper:3128",
    "http_proxy=http://lower:3128",
    "HTTPS_PROXY=http://u:p@proxy:3128",
    "NO_PROXY=.svc,10.0.0.0/8",
    "VIMPORT_EXPECTED_BLOCK_HASH=sha256:" SHA256_HEX,
    "VIMPORT_TERMINATION_MESSAGE_PATH=/tmp/t/term",
    "VIMPORT_TARGET_PATH=/tmp/t/disk.img",
    "VIMPORT_TARGET_BLOCK_DEVICE=/dev/loop3",
    eh_env,
    NULL,
  };
  struct import_spec *s = env_ok(envp);
  cr_expect_str_eq(s->origin, "environment");
  cr_expect_eq(s->source.kind, SPEC_SOURCE_HTTP);
  const struct spec_http *h = &s->source.http;
  cr_expect_str_eq(h->url, "https://images.example.com/disk.img.xz");
  cr_expect_eq(s->content_type, SPEC_CONTENT_KUBEVIRT);
  cr_expect_eq(s->target.requested_size, 10ull << 30);
  cr_expect_eq(s->source.checksum.alg, SPEC_CHECKSUM_SHA1);
  cr_expect_str_eq(h->cert_dir, certs);
  cr_expect_str_eq(h->basic_auth_user, "ak");
  cr_expect_str_eq(h->basic_auth_password, "sk-secret");
  cr_assert_eq(h->n_headers, 6);
  cr_expect_str_eq(h->headers[0].name, "X-First");
  cr_expect_str_eq(h->headers[1].name, "X-Second");
  cr_expect_str_eq(h->headers[2].name, "X-Fourth");
  cr_expect_str_eq(h->headers[3].name, "X-Token");
  cr_expect(h->headers[3].secret);
  cr_expect_str_eq(h->headers[5].value, "second-secret");
  cr_expect(h->insecure_skip_verify);
  cr_expect(s->target.preallocation);
  cr_expect_float_eq(s->target.filesystem_overhead, 0.055, 1e-12);
  cr_expect_str_eq(s->target.owner_uid, "6a5e0c3e-1f0b-4b9c-9d4e-2a7c1b3e5f60");
  cr_expect_str_eq(h->http_proxy, "http://lower:3128");
  cr_expect_str_eq(h->https_proxy, "http://u:p@proxy:3128");
  cr_expect_str_eq(h->no_proxy, ".svc,10.0.0.0/8");
  cr_expect(s->block_hash.has_expected);
  cr_expect_str_eq(s->termination_message_path, "/tmp/t/term");
  cr_expect_str_eq(s->target.path, "/tmp/t/disk.img");
  cr_expect_str_eq(s->target.block_device, "/dev/loop3");
  cr_expect_eq(s->target.volume_mode, SPEC_VOLUME_MODE_UNSET);

  char *text = spec_describe(s);
  cr_assert_not_null(text);
  cr_expect_null(strstr(text, "sk-secret"), "%s", text);
  cr_expect_null(strstr(text, "u:p@"), "%s", text);
  cr_expect_null(strstr(text, "hidden-token-value"), "%s", text);
  cr_expect_not_null(strstr(text, "ownerUid=6a5e0c3e-1f0b-4b9c-9d4e-2a7c1b3e5f60"), "%s", text);
  free(text);
  spec_free(s);
  free(certs);
  free(cert_env);
  free(eh_env);
}

Test(env, blank_and_file_and_defaults)
{
  char *blank[] = { "IMPORTER_SOURCE=none", "VIMPORT_EXTRA_HEADERS_DIR=/nonexistent", NULL };
  struct import_spec *s = env_ok(blank);
  cr_expect_eq(s->source.kind, SPEC_SOURCE_BLANK);
  cr_expect_eq(s->content_type, SPEC_CONTENT_KUBEVIRT);
  cr_expect_str_eq(s->target.path, "/data/disk.img");
  cr_expect_null(s->target.owner_uid);
  spec_free(s);
  char *file[] = { "IMPORTER_SOURCE=file", "IMPORTER_ENDPOINT=/tmp/img.qcow2",
                   "IMPORTER_CONTENTTYPE=archive", "IMPORTER_IMAGE_SIZE=", "INSECURE_TLS=",
                   "IMPORTER_CHECKSUM=", NULL };
  s = env_ok(file);
  cr_expect_eq(s->source.kind, SPEC_SOURCE_FILE);
  cr_expect_str_eq(s->source.file_path, "/tmp/img.qcow2");
  cr_expect_eq(s->content_type, SPEC_CONTENT_ARCHIVE);
  cr_expect_eq(s->target.requested_size, 0);
  cr_expect_eq(s->source.checksum.alg, SPEC_CHECKSUM_NONE, "an empty IMPORTER_CHECKSUM is unset");
  spec_free(s);
}

Test(env, missing_extra_headers_dir_is_fine_but_bad_secret_is_not)
{
  char *ok[] = { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/",
                 "VIMPORT_EXTRA_HEADERS_DIR=/nonexistent/eh", NULL };
  spec_free(env_ok(ok));
  make_dir("eh");
  make_dir("eh/s");
  write_file("eh/s/h", "Bad Header: x");
  char *dir = format("VIMPORT_EXTRA_HEADERS_DIR=%s/eh", tmp_root);
  char *bad[] = { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/", dir, NULL };
  env_fails(bad, "environment: secret extra headers:");
  free(dir);
}

#define SHA256_ZERO_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* IMPORTER_CHECKSUM is checked for every streamed source, not only http */
Test(env, checksum_applies_to_a_file_source)
{
  char *envp[] = { "IMPORTER_SOURCE=file", "IMPORTER_ENDPOINT=/images/disk.img",
                   "IMPORTER_CHECKSUM=sha256:" SHA256_ZERO_HEX, NULL };
  struct import_spec *s = env_ok(envp);
  cr_expect_eq(s->source.kind, SPEC_SOURCE_FILE);
  cr_expect_eq(s->source.checksum.alg, SPEC_CHECKSUM_SHA256);
  cr_expect_str_eq(s->source.checksum.hex, SHA256_ZERO_HEX);
  spec_free(s);
}

/* CDI's registry source: the http variables less the extra headers, plus the platform */
Test(env, registry)
{
  char *envp[] = { "IMPORTER_SOURCE=registry", "IMPORTER_ENDPOINT=docker://quay.io/containerdisks/fedora:41",
                   "IMPORTER_ACCESS_KEY_ID=robot", "IMPORTER_SECRET_KEY=s3cret",
                   "INSECURE_TLS=true", "IMPORTER_REGISTRY_IMAGE_ARCHITECTURE=arm64",
                   "IMPORTER_CHECKSUM=sha256:" SHA256_ZERO_HEX, NULL };
  struct import_spec *s = env_ok(envp);
  cr_expect_eq(s->source.kind, SPEC_SOURCE_REGISTRY);
  cr_expect_str_eq(s->source.http.url, "docker://quay.io/containerdisks/fedora:41");
  cr_expect_str_eq(s->source.http.basic_auth_user, "robot");
  cr_expect_str_eq(s->source.http.basic_auth_password, "s3cret");
  cr_expect(s->source.http.insecure_skip_verify);
  cr_expect_str_eq(s->source.registry_architecture, "arm64");
  cr_expect_eq(s->source.checksum.alg, SPEC_CHECKSUM_SHA256, "the disk file's bytes are checked");
  char *described = spec_describe(s);
  cr_expect(strstr(described, "source=registry") != NULL, "%s", described);
  cr_expect(strstr(described, "s3cret") == NULL, "%s", described);
  free(described);
  spec_free(s);
}

/* CDI mounts /scratch only after scratchSpaceRequired: use it when it is there */
Test(env, scratch_is_used_when_mounted)
{
  make_dir("scratch");
  char *dir = format("VIMPORT_SCRATCH_DIR=%s/scratch", tmp_root);
  char *mounted[] = { "IMPORTER_SOURCE=none", dir, NULL };
  struct import_spec *s = env_ok(mounted);
  cr_assert_not_null(s->scratch_path);
  cr_expect(strstr(s->scratch_path, "/scratch") != NULL, "%s", s->scratch_path);
  spec_free(s);
  char *absent = format("VIMPORT_SCRATCH_DIR=%s/not-mounted", tmp_root);
  char *unmounted[] = { "IMPORTER_SOURCE=none", absent, NULL };
  s = env_ok(unmounted);
  cr_expect_null(s->scratch_path, "no scratch volume: the import asks for one");
  spec_free(s);
  free(dir);
  free(absent);
}

/* CDI's s3 DataVolume: the keys sign (a ':' is fine), no extra headers are read. */
Test(env, s3_source)
{
  char *envp[] = { "IMPORTER_SOURCE=s3", "IMPORTER_ENDPOINT=https://s3.eu-west-1.amazonaws.com/b/k",
                   "IMPORTER_ACCESS_KEY_ID=AKIA:X", "IMPORTER_SECRET_KEY=s3cret",
                   "IMPORTER_CERT_DIR=/", "IMPORTER_EXTRA_HEADER_0=X-A: b", NULL };
  struct import_spec *s = NULL;
  struct verr err = { 0 };
  cr_assert_eq(spec_load_env(envp, &s, &err), 0, "%s", err.message);
  cr_expect_eq(s->source.kind, SPEC_SOURCE_S3);
  cr_expect_str_eq(s->source.http.url, "https://s3.eu-west-1.amazonaws.com/b/k");
  cr_expect_str_eq(s->source.http.basic_auth_user, "AKIA:X");
  cr_expect_str_eq(s->source.http.basic_auth_password, "s3cret");
  cr_expect_str_eq(s->source.http.cert_dir, "/");
  cr_expect_eq(s->source.http.n_headers, 0);
  char *described = spec_describe(s);
  cr_expect(strstr(described, "source=s3") != NULL, "%s", described);
  cr_expect(strstr(described, "s3cret") == NULL, "%s", described);
  free(described);
  spec_free(s);
}

Test(env, errors)
{
  struct { char *envp[4]; const char *expect; } cases[] = {
    { { "PATH=/bin", NULL }, "environment: IMPORTER_SOURCE: not set" },
    { { "IMPORTER_SOURCE=ftp", NULL }, "Unknown data source: ftp (IMPORTER_SOURCE)" },
    { { "IMPORTER_SOURCE=s3", NULL }, "IMPORTER_ENDPOINT: not set; a s3 source needs one" },
    { { "IMPORTER_SOURCE=s3", "IMPORTER_ENDPOINT=s3://bucket/key", NULL },
      "an s3 source takes http(s)://HOST[:PORT]/BUCKET/KEY" },
    { { "IMPORTER_SOURCE=s3", "IMPORTER_ENDPOINT=http://h/b/k", "IMPORTER_CONTENTTYPE=archive" },
      "CDI unpacks archives from http sources only" },
    { { "IMPORTER_SOURCE=imageio", NULL }, "the imageio source is oVirt/RHV disks read from the "
      "engine through ovirt-imageio (CDI's imageio source, with its warm migration checkpoints): "
      "vimport does not replace that CDI feature" },
    { { "IMPORTER_SOURCE=vddk", NULL }, "VMware disks read through VMware's VDDK library" },
    { { "IMPORTER_SOURCE=registry", NULL }, "IMPORTER_ENDPOINT: not set; a registry source" },
    { { "IMPORTER_SOURCE=registry", "IMPORTER_ENDPOINT=https://quay.io/x", NULL },
      "IMPORTER_ENDPOINT: a registry source needs a docker://" },
    { { "IMPORTER_SOURCE=registry", "IMPORTER_ENDPOINT=docker://quay.io/x",
        "IMPORTER_REGISTRY_IMAGE_ARCHITECTURE=ARM 64" },
      "IMPORTER_REGISTRY_IMAGE_ARCHITECTURE: \"ARM 64\" is not an architecture" },
    { { "IMPORTER_SOURCE=registry", "IMPORTER_ENDPOINT=docker://quay.io/x",
        "IMPORTER_CONTENTTYPE=archive" },
      "contentType archive is for http sources" },
    { { "IMPORTER_SOURCE=http", NULL }, "environment: IMPORTER_ENDPOINT: not set" },
    { { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=/x", NULL },
      "IMPORTER_ENDPOINT: not an http:// or https:// URL" },
    { { "IMPORTER_SOURCE=none", "IMPORTER_IMAGE_SIZE=64MB", NULL },
      "environment: IMPORTER_IMAGE_SIZE: quantity \"64MB\": unknown suffix" },
    { { "IMPORTER_SOURCE=none", "IMPORTER_IMAGE_SIZE=1e3.5", NULL }, "IMPORTER_IMAGE_SIZE" },
    { { "IMPORTER_SOURCE=none", "IMPORTER_CONTENTTYPE=iso", NULL },
      "environment: IMPORTER_CONTENTTYPE: \"iso\" is not a content type" },
    { { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/", "IMPORTER_CHECKSUM=sha256:1" },
      "environment: IMPORTER_CHECKSUM: checksum sha256: expected 64" },
    { { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/", "INSECURE_TLS=yes" },
      "environment: INSECURE_TLS: \"yes\" is not a boolean" },
    { { "IMPORTER_SOURCE=none", "PREALLOCATION=maybe", NULL }, "PREALLOCATION: \"maybe\"" },
    { { "IMPORTER_SOURCE=none", "FILESYSTEM_OVERHEAD=1.001", NULL },
      "environment: FILESYSTEM_OVERHEAD: 1.001 is above 1" },
    { { "IMPORTER_SOURCE=none", "FILESYSTEM_OVERHEAD=-0.1", NULL },
      "FILESYSTEM_OVERHEAD: \"-0.1\" is not a decimal fraction" },
    { { "IMPORTER_SOURCE=none", "FILESYSTEM_OVERHEAD=5%", NULL }, "not a decimal fraction" },
    { { "IMPORTER_SOURCE=none", "OWNER_UID=a b", NULL }, "environment: OWNER_UID: \"a b\" has a character" },
    { { "IMPORTER_SOURCE=none", "OWNER_UID=a\"b", NULL }, "OWNER_UID" },
    { { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/", "IMPORTER_EXTRA_HEADER_x=a: b" },
      "\"IMPORTER_EXTRA_HEADER_x\" is not followed by a number" },
    { { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/", "IMPORTER_EXTRA_HEADER_0=bad" },
      "environment: IMPORTER_EXTRA_HEADER_0: a header is not of the form" },
    { { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/", "IMPORTER_CERT_DIR=/nonexistent" },
      "environment: IMPORTER_CERT_DIR: cannot find /nonexistent" },
    { { "IMPORTER_SOURCE=none", "IMPORTER_CHECKSUM=sha256:" SHA256_ZERO_HEX, NULL },
      "environment: IMPORTER_CHECKSUM: a blank image (IMPORTER_SOURCE=none) has no source bytes" },
    { { "IMPORTER_SOURCE=file", "IMPORTER_ENDPOINT=/x", "IMPORTER_CHECKSUM=md5:1" },
      "environment: IMPORTER_CHECKSUM: checksum md5: expected 32" },
    { { "IMPORTER_SOURCE=none", "VIMPORT_EXPECTED_BLOCK_HASH=sha256:ab", NULL },
      "environment: VIMPORT_EXPECTED_BLOCK_HASH: block hash sha256: expected 64" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    env_fails(cases[i].envp, cases[i].expect);
}

/* CDI sends basic auth only with both keys (http-datasource.go createHTTPReader), and
 * CDIConfig's overhead may be 1. */
Test(env, cdi_accepts_half_a_secret_and_an_overhead_of_one)
{
  char *halves[][5] = {
    { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/", "IMPORTER_ACCESS_KEY_ID=a",
      "FILESYSTEM_OVERHEAD=1", NULL },
    { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/", "IMPORTER_SECRET_KEY=topsecret",
      "IMPORTER_ACCESS_KEY_ID=", NULL },
  };
  for (size_t i = 0; i < 2; i++) {
    struct verr err = { 0 };
    struct import_spec *s = NULL;
    cr_assert_eq(spec_load_env(halves[i], &s, &err), 0, "%s", err.message);
    cr_expect_null(s->source.http.basic_auth_user);
    cr_expect_null(s->source.http.basic_auth_password);
    if (i == 0)
      cr_expect_eq(s->target.filesystem_overhead, 1.0);
    spec_free(s);
  }
}

Test(env, secret_values_never_in_messages)
{
  char *envp[] = { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/",
                   "IMPORTER_EXTRA_HEADER_0=Authorization: Bearer tok\rinjected", NULL };
  struct verr err = { 0 };
  struct import_spec *s = NULL;
  cr_assert_eq(spec_load_env(envp, &s, &err), -1);
  cr_expect_null(strstr(err.message, "tok"), "%s", err.message);
  cr_expect_not_null(strstr(err.message, "spans lines"), "%s", err.message);
}

/* CDI's registry node pull: the importer's ready and done files and the pull method
 * (import-controller.go setRegistryNodeImportEnvVars). */
Test(env, node_pull)
{
  char *envp[] = { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://localhost:8100/disk.img",
                   "IMPORTER_READY_FILE=/shared/ready", "IMPORTER_DONE_FILE=/shared/done",
                   "IMPORTER_PULL_METHOD=node", NULL };
  struct import_spec *s = env_ok(envp);
  cr_assert_str_eq(s->node_pull.ready_file, "/shared/ready");
  cr_assert_str_eq(s->node_pull.done_file, "/shared/done");
  cr_assert(s->node_pull.node);
  cr_assert_eq(s->node_pull.ready_timeout_seconds, 60);
  spec_free(s);
  char *plain[] = { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/d.img",
                    "IMPORTER_READY_FILE=", "IMPORTER_DONE_FILE=", "IMPORTER_PULL_METHOD=", NULL };
  s = env_ok(plain);
  cr_assert_null(s->node_pull.ready_file, "CDI sets them empty for other imports");
  cr_assert_null(s->node_pull.done_file);
  cr_assert_not(s->node_pull.node);
  spec_free(s);
  char *pod[] = { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/d.img",
                  "IMPORTER_PULL_METHOD=pod", "VIMPORT_READY_FILE_TIMEOUT=2", NULL };
  s = env_ok(pod);
  cr_assert_not(s->node_pull.node);
  cr_assert_eq(s->node_pull.ready_timeout_seconds, 2);
  spec_free(s);
  char *bad_method[] = { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/d.img",
                         "IMPORTER_PULL_METHOD=Node", NULL };
  env_fails(bad_method, "IMPORTER_PULL_METHOD");
  char *bad_timeout[] = { "IMPORTER_SOURCE=http", "IMPORTER_ENDPOINT=http://x/d.img",
                          "VIMPORT_READY_FILE_TIMEOUT=-1", NULL };
  env_fails(bad_timeout, "VIMPORT_READY_FILE_TIMEOUT");
}

/* CDI's gcs contract: the key file it mounts when the DataVolume has a secret; without
 * one, anonymous. The certificate directory is honoured (beyond CDI, docs/cdi.md). */
Test(env, gcs_contract)
{
  make_dir("google");
  write_file("google/credentials.json", "{}");
  char *key = format("GOOGLE_APPLICATION_CREDENTIALS=%s/google/credentials.json", tmp_root);
  char *certs = format("IMPORTER_CERT_DIR=%s/google", tmp_root);
  char *with_key[] = { "IMPORTER_SOURCE=gcs", "IMPORTER_ENDPOINT=gs://bkt/dir/disk.qcow2", key,
                       certs, NULL };
  struct import_spec *s = env_ok(with_key);
  cr_expect_eq(s->source.kind, SPEC_SOURCE_GCS);
  cr_expect_str_eq(s->source.http.url, "gs://bkt/dir/disk.qcow2");
  cr_expect_not_null(strstr(s->source.gcs_credentials, "/google/credentials.json"));
  cr_expect_not_null(s->source.http.cert_dir);
  spec_free(s);
  char *anonymous[] = { "IMPORTER_SOURCE=gcs", "IMPORTER_ENDPOINT=https://h:4443/b/o.img", NULL };
  s = env_ok(anonymous);
  cr_expect_null(s->source.gcs_credentials);
  spec_free(s);
  char *missing[] = { "IMPORTER_SOURCE=gcs", "IMPORTER_ENDPOINT=gs://b/o",
                      "GOOGLE_APPLICATION_CREDENTIALS=/nonexistent/credentials.json", NULL };
  env_fails(missing, "GOOGLE_APPLICATION_CREDENTIALS: cannot read /nonexistent/credentials.json");
  char *bad_url[] = { "IMPORTER_SOURCE=gcs", "IMPORTER_ENDPOINT=s3://b/o", NULL };
  env_fails(bad_url, "a gcs source needs gs://BUCKET/OBJECT");
  char *archive[] = { "IMPORTER_SOURCE=gcs", "IMPORTER_ENDPOINT=gs://b/o",
                      "IMPORTER_CONTENTTYPE=archive", NULL };
  env_fails(archive, "CDI unpacks archives from http sources only");
  free(key);
  free(certs);
}
