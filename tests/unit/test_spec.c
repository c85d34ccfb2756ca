/* Unit tests for pkg/spec: YAML and env loaders, quantities, checksums, mounted secrets,
 * and that secrets never reach spec_describe(). Secret mounts are real files in a temp
 * directory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec/spec.h"

#define SHA256_HEX "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define MD5_HEX "d41d8cd98f00b204e9800998ecf8427e"
#define SHA1_HEX "da39a3ee5e6b4b0d3255bfef95601890afd80709"
#define SHA512_HEX                                                                         \
  "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2" \
  "877eec2f63b931bd47417a81a538327af927da3e"

/* ---- helpers ---------------------------------------------------------------------------- */

static char tmp_root[64];

static void make_tmp(void)
{
  strcpy(tmp_root, "/tmp/vimport-spec-XXXXXX");
  cr_assert_not_null(mkdtemp(tmp_root), "mkdtemp: %s", strerror(errno));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void remove_tmp(void)
{
  if (tmp_root[0] != '\0')
    nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Path under the temp root; returns a static-per-call heap string the test frees. */
static char *tmp_path(const char *rel)
{
  char *p;
  cr_assert_neq(asprintf(&p, "%s/%s", tmp_root, rel), -1);
  return p;
}

static void write_file(const char *rel, const char *content)
{
  char *path = tmp_path(rel);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
  fputs(content, f);
  fclose(f);
  free(path);
}

static void make_dir(const char *rel)
{
  char *path = tmp_path(rel);
  cr_assert_eq(mkdir(path, 0700), 0, "mkdir %s: %s", path, strerror(errno));
  free(path);
}

static char *format(const char *fmt, ...)
{
  char *s;
  va_list ap;
  va_start(ap, fmt);
  cr_assert_neq(vasprintf(&s, fmt, ap), -1);
  va_end(ap);
  return s;
}

static struct import_spec *load_ok(const char *yaml)
{
  struct verr err = { 0 };
  struct import_spec *spec = NULL;
  int rc = spec_load_yaml_buffer(yaml, strlen(yaml), "spec.yaml", &spec, &err);
  cr_assert_eq(rc, 0, "load failed: %s", err.message);
  cr_assert_not_null(spec);
  return spec;
}

static void load_fails(const char *yaml, enum verr_code code, const char *expect)
{
  struct verr err = { 0 };
  struct import_spec *spec = NULL;
  int rc = spec_load_yaml_buffer(yaml, strlen(yaml), "spec.yaml", &spec, &err);
  cr_expect_eq(rc, -1, "loaded but should fail with \"%s\"\n%s", expect, yaml);
  if (rc != -1) {
    spec_free(spec);
    return;
  }
  cr_expect_null(spec);
  cr_expect_eq(err.code, code, "code %s for \"%s\"", verr_code_name(err.code), err.message);
  cr_expect_not_null(strstr(err.message, expect), "message \"%s\"\nlacks \"%s\"", err.message,
                     expect);
}

#define HEAD "apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\n"

/* ---- good YAML -------------------------------------------------------------------------- */

/* Every key, with vimport.mounts after spec so secrets resolve after the walk. */
static char *full_yaml(void)
{
  return format(
      HEAD
      "metadata:\n"
      "  name: fedora\n"
      "  namespace: vms\n"
      "  labels: {app: test}\n"
      "  annotations:\n"
      "    cdi.kubevirt.io/storage.bind.immediate.requested: \"true\"\n"
      "spec:\n"
      "  source:\n"
      "    http:\n"
      "      url: https://user:pw@images.example.com/fedora.qcow2?token=abc\n"
      "      checksum: \"sha256:%s\"\n"
      "      extraHeaders:\n"
      "        - \"X-Plain: visible\"\n"
      "        - \"Authorization: Bearer plaintoken\"\n"
      "      secretExtraHeaders: [hdr-a, hdr-b]\n"
      "      secretRef: basic-auth\n"
      "      certConfigMap: ca-bundle\n"
      "      insecureSkipVerify: true\n"
      "  storage:\n"
      "    volumeMode: Block\n"
      "    accessModes: [ReadWriteOnce]\n"
      "    storageClassName: fast\n"
      "    resources:\n"
      "      requests:\n"
      "        storage: 1.5Gi\n"
      "  preallocation: true\n"
      "  contentType: kubevirt\n"
      "vimport:\n"
      "  expectedBlockHash: \"SHA256:%s\"\n"
      "  blockSize: 128Ki\n"
      "  target:\n"
      "    path: /tmp/x/disk.img\n"
      "    blockDevice: /dev/loop7\n"
      "  terminationMessagePath: /tmp/x/term\n"
      "  memoryLimit: 512Mi\n"
      "  windowSize: 32Mi\n"
      "  scratchPath: /scratch\n"
      "  mounts:\n"
      "    certs: %s/certs\n"
      "    secret: %s/secret\n"
      "    extraHeaders: %s/extraheaders\n"
      "  retries: 3\n"
      "  stallTimeoutSeconds: 30\n"
      "  allowedFormats: [raw, qcow2]\n",
      SHA256_HEX, SHA256_HEX, tmp_root, tmp_root, tmp_root);
}

static void make_mounts(void)
{
  make_dir("certs");
  write_file("certs/ca.crt", "not really a cert\n");
  make_dir("secret");
  write_file("secret/accessKeyId", "alice\n");
  write_file("secret/secretKey", "s3cr3t-password\n");
  make_dir("extraheaders");
  make_dir("extraheaders/hdr-a");
  write_file("extraheaders/hdr-a/token", "X-Token: hidden-token-value\n");
  write_file("extraheaders/hdr-a/.hidden", "X-Ignored: never\n");
  make_dir("extraheaders/hdr-b");
  write_file("extraheaders/hdr-b/b", "X-B:   second-secret\r\n");
  write_file("extraheaders/hdr-b/a", "X-A: first-secret");
}

TestSuite(yaml_good, .init = make_tmp, .fini = remove_tmp);

Test(yaml_good, every_key)
{
  make_mounts();
  char *yaml = full_yaml();
  struct import_spec *s = load_ok(yaml);
  free(yaml);

  cr_expect_str_eq(s->origin, "spec.yaml");
  cr_expect_str_eq(s->name, "fedora");
  cr_expect_eq(s->source.kind, SPEC_SOURCE_HTTP);
  const struct spec_http *h = &s->source.http;
  cr_expect_str_eq(h->url, "https://user:pw@images.example.com/fedora.qcow2?token=abc");
  cr_expect_eq(h->checksum.alg, SPEC_CHECKSUM_SHA256);
  cr_expect_str_eq(h->checksum.hex, SHA256_HEX);
  cr_assert_eq(h->n_headers, 5);
  cr_expect_str_eq(h->headers[0].name, "X-Plain");
  cr_expect_str_eq(h->headers[0].value, "visible");
  cr_expect_not(h->headers[0].secret);
  cr_expect_str_eq(h->headers[1].name, "Authorization");
  /* secret headers: hdr-a then hdr-b, files in name order, dot files skipped */
  cr_expect_str_eq(h->headers[2].name, "X-Token");
  cr_expect_str_eq(h->headers[2].value, "hidden-token-value");
  cr_expect(h->headers[2].secret);
  cr_expect_str_eq(h->headers[3].name, "X-A");
  cr_expect_str_eq(h->headers[3].value, "first-secret");
  cr_expect_str_eq(h->headers[4].name, "X-B");
  cr_expect_str_eq(h->headers[4].value, "second-secret");
  cr_expect_str_eq(h->basic_auth_user, "alice");
  cr_expect_str_eq(h->basic_auth_password, "s3cr3t-password");
  char *certs = tmp_path("certs");
  cr_expect_str_eq(h->cert_dir, certs);
  free(certs);
  cr_expect(h->insecure_skip_verify);

  cr_expect_eq(s->target.volume_mode, SPEC_VOLUME_MODE_BLOCK);
  cr_expect_eq(s->target.requested_size, 1536ull * 1024 * 1024);
  cr_expect(s->target.preallocation);
  cr_expect_eq(s->content_type, SPEC_CONTENT_KUBEVIRT);
  cr_expect_str_eq(s->target.path, "/tmp/x/disk.img");
  cr_expect_str_eq(s->target.block_device, "/dev/loop7");

  cr_expect_str_eq(s->block_hash.digest, "sha256");
  cr_expect(s->block_hash.has_expected);
  cr_expect_eq(s->block_hash.expected_len, 32);
  cr_expect_eq(s->block_hash.expected[0], 0x9f);
  cr_expect_eq(s->block_hash.expected[31], 0x08);
  cr_expect_str_eq(s->block_hash.expected_hex, SHA256_HEX);
  cr_expect_eq(s->block_hash.block_size, 128 * 1024);
  cr_expect_str_eq(s->termination_message_path, "/tmp/x/term");
  cr_expect_eq(s->memory_limit, 512ull << 20);
  cr_expect_eq(s->window_size, 32ull << 20);
  cr_expect_str_eq(s->scratch_path, "/scratch");
  cr_expect_eq(s->retries, 3);
  cr_expect_eq(s->stall_timeout_seconds, 30);
  cr_assert_eq(s->n_allowed_formats, 2);
  cr_expect_str_eq(s->allowed_formats[0], "raw");
  cr_expect_str_eq(s->allowed_formats[1], "qcow2");
  spec_free(s);
}

Test(yaml_good, describe_redacts_secrets)
{
  make_mounts();
  char *yaml = full_yaml();
  struct import_spec *s = load_ok(yaml);
  free(yaml);
  char *text = spec_describe(s);
  cr_assert_not_null(text);
  static const char *const secrets[] = { "hidden-token-value", "first-secret", "second-secret",
                                         "alice", "s3cr3t-password", "plaintoken", "user:pw",
                                         "token=abc", "\n" };
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
    cr_expect_null(strstr(text, secrets[i]), "describe leaks \"%s\": %s", secrets[i], text);
  cr_expect_not_null(strstr(text, "https://images.example.com/fedora.qcow2"), "%s", text);
  cr_expect_not_null(strstr(text, "X-Plain: visible"), "%s", text);
  cr_expect_not_null(strstr(text, "X-Token: <redacted>"), "%s", text);
  cr_expect_not_null(strstr(text, "Authorization: <redacted>"), "%s", text);
  cr_expect_not_null(strstr(text, "basicAuth=<redacted>"), "%s", text);
  free(text);
  spec_free(s);
}

Test(yaml_good, defaults)
{
  struct import_spec *s = load_ok(HEAD "spec:\n  source:\n    blank: {}\n");
  cr_expect_eq(s->source.kind, SPEC_SOURCE_BLANK);
  cr_expect_null(s->name);
  cr_expect_eq(s->target.volume_mode, SPEC_VOLUME_MODE_UNSET);
  cr_expect_eq(s->target.requested_size, 0);
  cr_expect_str_eq(s->target.path, SPEC_DEFAULT_TARGET_PATH);
  cr_expect_str_eq(s->target.block_device, "/dev/cdi-block-volume");
  cr_expect_str_eq(s->termination_message_path, "/dev/termination-log");
  cr_expect_str_eq(s->mounts.certs, "/certs");
  cr_expect_str_eq(s->mounts.secret, "/etc/vimport/secret");
  cr_expect_str_eq(s->mounts.extra_headers, "/extraheaders");
  cr_expect_str_eq(s->block_hash.digest, "sha256");
  cr_expect_eq(s->block_hash.block_size, 65536);
  cr_expect_not(s->block_hash.has_expected);
  cr_expect_eq(s->window_size, 64ull << 20);
  cr_expect_eq(s->memory_limit, 0);
  cr_expect_null(s->scratch_path);
  cr_expect_eq(s->retries, 5);
  cr_expect_eq(s->stall_timeout_seconds, 60);
  cr_expect_eq(s->n_allowed_formats, 0);
  cr_expect_eq(s->content_type, SPEC_CONTENT_KUBEVIRT);
  cr_expect_null(s->target.owner_uid);
  cr_expect(s->target.filesystem_overhead < 0);
  spec_free(s);
}

Test(yaml_good, file_source_pvc_archive_and_other_digest)
{
  struct import_spec *s = load_ok(HEAD
                                  "spec:\n"
                                  "  source:\n"
                                  "    file: {path: \"-\"}\n"
                                  "  pvc:\n"
                                  "    volumeMode: Filesystem\n"
                                  "    resources: {requests: {storage: 1073741824}}\n"
                                  "  contentType: archive\n"
                                  "  preallocation: false\n"
                                  "vimport:\n"
                                  "  expectedBlockHash: md5:" MD5_HEX "\n"
                                  "  blockSize: 4096\n");
  cr_expect_eq(s->source.kind, SPEC_SOURCE_FILE);
  cr_expect_str_eq(s->source.file_path, "-");
  cr_expect_eq(s->target.volume_mode, SPEC_VOLUME_MODE_FILESYSTEM);
  cr_expect_eq(s->target.requested_size, 1073741824ull);
  cr_expect_eq(s->content_type, SPEC_CONTENT_ARCHIVE);
  cr_expect_str_eq(s->block_hash.digest, "md5");
  cr_expect_eq(s->block_hash.expected_len, 16);
  cr_expect_eq(s->block_hash.block_size, 4096);
  spec_free(s);
}

Test(yaml_good, example_files)
{
  static const char *const files[] = { "tests/data/spec/http.yaml", "tests/data/spec/file.yaml" };
  const char *top = getenv("VIMPORT_TOP");
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char *path = format("%s/%s", top != NULL ? top : ".", files[i]);
    struct verr err = { 0 };
    struct import_spec *s = NULL;
    cr_assert_eq(spec_load_yaml_file(path, &s, &err), 0, "%s: %s", path, err.message);
    cr_expect_str_eq(s->origin, path);
    spec_free(s);
    free(path);
  }
}

Test(yaml_good, file_errors_name_the_file)
{
  struct verr err = { 0 };
  struct import_spec *s = NULL;
  cr_assert_eq(spec_load_yaml_file("/nonexistent/dv.yaml", &s, &err), -1);
  cr_expect_eq(err.code, VERR_IO);
  cr_expect_not_null(strstr(err.message, "/nonexistent/dv.yaml"), "%s", err.message);
  write_file("bad.yaml", HEAD "spec:\n  source:\n    blank: {}\n  bogus: 1\n");
  char *path = tmp_path("bad.yaml");
  char *want = format("%s:6: spec.bogus: unknown key", path);
  cr_assert_eq(spec_load_yaml_file(path, &s, &err), -1);
  cr_expect_not_null(strstr(err.message, want), "%s", err.message);
  free(want);
  free(path);
}

/* ---- YAML errors: each names file, line and key path ----------------------------------- */

struct yaml_error_case {
  const char *yaml;
  const char *expect;
};

static const struct yaml_error_case yaml_errors[] = {
  { HEAD "spec:\n  source:\n    http:\n      urll: http://x/\n",
    "spec.yaml:6: spec.source.http.urll: unknown key; did you mean \"url\"?" },
  { HEAD "spec:\n  source:\n    http:\n      checksum: sha256:" SHA256_HEX "\n",
    "spec.yaml:6: spec.source.http: the required key \"url\" is missing" },
  { HEAD "spec:\n  source:\n    http: {url: ftp://x/}\n",
    "spec.yaml:5: spec.source.http.url: not an http:// or https:// URL" },
  { HEAD "spec:\n  source: {}\n", "spec.yaml:4: spec.source: no source kind" },
  { HEAD "spec:\n  source:\n    blank: {}\n    file: {path: /x}\n",
    "spec.yaml:6: spec.source.file: a second source kind after blank" },
  { HEAD "spec:\n  source:\n    s3: {url: x}\n",
    "spec.yaml:5: spec.source.s3: this CDI source kind is not supported" },
  { HEAD "spec:\n  source:\n    blank:\n", "spec.yaml:5: spec.source.blank: expected a mapping, got null" },
  { HEAD "spec:\n  source:\n    blank: {}\n  preallocation: \"true\"\n",
    "spec.yaml:6: spec.preallocation: expected true or false, got a string" },
  { HEAD "spec:\n  source:\n    http: {url: http://x/, checksum: sha256:abc}\n",
    "spec.yaml:5: spec.source.http.checksum: checksum sha256: expected 64 hex digits, got 3" },
  { HEAD "spec:\n  source:\n    http: {url: http://x/, checksum: \"crc32:abcd\"}\n",
    "checksum algorithm \"crc32\" is not supported" },
  { HEAD "spec:\n  source:\n    http:\n      url: http://x/\n      extraHeaders: \"X: y\"\n",
    "spec.yaml:7: spec.source.http.extraHeaders: expected a list, got a string" },
  { HEAD "spec:\n  source:\n    http:\n      url: http://x/\n      extraHeaders:\n"
         "        - \"X-A: 1\"\n        - \"no colon\"\n",
    "spec.yaml:9: spec.source.http.extraHeaders: a header is not of the form" },
  { HEAD "spec:\n  source:\n    http:\n      url: http://x/\n      extraHeaders: [\"X-A: a\\nX-B: b\"]\n",
    "spec.yaml:7: spec.source.http.extraHeaders: the value of header \"X-A\" spans lines" },
  { HEAD "spec:\n  source:\n    http:\n      url: http://x/\n      secretRef: ../../etc\n",
    "spec.yaml:7: spec.source.http.secretRef: \"../../etc\" is not a Kubernetes object name" },
  { HEAD "spec:\n  source:\n    blank: {}\n  storage:\n    resources:\n      requests:\n"
         "        storage: 64MB\n",
    "spec.yaml:9: spec.storage.resources.requests.storage: quantity \"64MB\": unknown suffix" },
  { HEAD "spec:\n  source:\n    blank: {}\n  storage:\n    volumeMode: block\n",
    "spec.yaml:7: spec.storage.volumeMode: \"block\" is not a volume mode; use Filesystem or Block" },
  { HEAD "spec:\n  source:\n    blank: {}\n  storage: {}\n  pvc: {}\n",
    "spec.yaml:7: spec.pvc: both storage and pvc are given" },
  { HEAD "spec:\n  source:\n    blank: {}\n  contentType: iso\n",
    "spec.yaml:6: spec.contentType: \"iso\" is not a content type" },
  { HEAD "spec:\n  source:\n    blank: {}\n  source: {}\n",
    "spec.yaml:6: spec.source: duplicate key" },
  { "apiVersion: v1\nkind: DataVolume\n", "spec.yaml:1: apiVersion: \"v1\" is not supported" },
  { "apiVersion: cdi.kubevirt.io/v1beta1\nkind: PersistentVolumeClaim\n",
    "spec.yaml:2: kind: \"PersistentVolumeClaim\" is not supported" },
  { HEAD "metadata: {name: x}\n", "spec.yaml:1: (document): the required key \"spec\" is missing" },
  { HEAD "status: {}\nspec: {source: {blank: {}}}\n", "spec.yaml:3: status: unknown key" },
  { HEAD "spec: [1, 2]\n", "spec.yaml:3: spec: expected a mapping, got a list" },
  { "- a\n- b\n", "spec.yaml:1: (document): expected a mapping, got a list" },
  { HEAD "spec:\n  source:\n    blank: {}\n vimport: {}\n", "spec.yaml:6:" },
  { HEAD "spec: {source: {blank: {}}}\n---\nkind: x\n", "spec.yaml:4: a second YAML document" },
  { "", "spec.yaml: the spec is empty" },
  { "# only a comment\n", "spec.yaml: the spec is empty" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  retries: many\n",
    "spec.yaml:5: vimport.retries: expected a whole number, got a string" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  retries: 1000\n",
    "spec.yaml:5: vimport.retries: expected a whole number from 0 to 100" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  stallTimeoutSeconds: 0\n",
    "vimport.stallTimeoutSeconds: expected a whole number from 1 to 86400" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  blockSize: 1000\n",
    "spec.yaml:5: vimport.blockSize: 1000 is not a power of two" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  expectedBlockHash: sha256:abcd\n",
    "spec.yaml:5: vimport.expectedBlockHash: block hash sha256: expected 64 hex digits, got 4" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  expectedBlockHash: nosuchdigest:abcd\n",
    "block hash digest \"nosuchdigest\" is unknown to OpenSSL" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  expectedBlockHash: sha1:" SHA256_HEX "\n",
    "block hash sha1: expected 40 hex digits, got 64" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  allowedFormats: [raw, qcow3]\n",
    "spec.yaml:5: vimport.allowedFormats: unknown image format \"qcow3\"" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  windowSize: 1Gi\n  memoryLimit: 512Mi\n",
    "the qcow2 window (1073741824 bytes) exceeds the memory limit" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  target: {pathh: /x}\n",
    "spec.yaml:5: vimport.target.pathh: unknown key; did you mean \"path\"?" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  terminationMessagePath: 42\n",
    "spec.yaml:5: vimport.terminationMessagePath: expected a string, got a number" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  scratchPath: \"\"\n",
    "spec.yaml:5: vimport.scratchPath: empty string" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  zzzzzzzz: 1\n",
    "vimport.zzzzzzzz: unknown key; see docs/spec.md" },
  { HEAD "spec: {source: {blank: {}}}\n? [a, b]\n: 1\n", "keys must be plain names" },
  { HEAD "spec:\n  source:\n    http: {url: \"http://x/\\0\"}\n",
    "spec.yaml:5: spec.source.http.url: the value holds a NUL byte" },
  { HEAD "metadata:\n  annotations: [a]\nspec: {source: {blank: {}}}\n",
    "spec.yaml:4: metadata.annotations: expected a mapping, got a list" },
  { HEAD "spec: {source: {http: {url: \"http://x/\", insecureSkipVerify: 1}}}\n",
    "spec.yaml:3: spec.source.http.insecureSkipVerify: expected true or false, got a number" },
};

Test(yaml_errors, each_case_names_line_and_path)
{
  for (size_t i = 0; i < sizeof yaml_errors / sizeof yaml_errors[0]; i++)
    load_fails(yaml_errors[i].yaml, VERR_USAGE, yaml_errors[i].expect);
}

Test(yaml_errors, syntax_error_has_line_and_column)
{
  load_fails(HEAD "spec:\n  source: [unclosed\n", VERR_USAGE, "spec.yaml:5:1: not valid YAML");
}

Test(yaml_errors, nul_byte_and_size_limit)
{
  struct verr err = { 0 };
  struct import_spec *s = NULL;
  cr_expect_eq(spec_load_yaml_buffer("a: 1\0b", 6, "x.yaml", &s, &err), -1);
  cr_expect_not_null(strstr(err.message, "x.yaml: the spec holds a NUL byte"), "%s", err.message);
  size_t big = SPEC_MAX_YAML_BYTES + 1;
  char *buf = malloc(big);
  memset(buf, '#', big);
  cr_expect_eq(spec_load_yaml_buffer(buf, big, "big.yaml", &s, &err), -1);
  cr_expect_not_null(strstr(err.message, "larger than"), "%s", err.message);
  free(buf);
}

TestSuite(yaml_secrets, .init = make_tmp, .fini = remove_tmp);

Test(yaml_secrets, missing_secret_mount_names_line_and_file)
{
  char *yaml = format(HEAD "spec:\n  source:\n    http:\n      url: http://x/\n"
                           "      secretRef: creds\nvimport:\n  mounts: {secret: %s/nope}\n",
                      tmp_root);
  char *want = format("spec.yaml:7: spec.source.http.secretRef: secret \"creds\": cannot open %s/nope/accessKeyId",
                      tmp_root);
  load_fails(yaml, VERR_IO, want);
  free(yaml);
  free(want);
}

Test(yaml_secrets, secret_key_missing)
{
  make_dir("secret");
  write_file("secret/accessKeyId", "bob");
  char *yaml = format(HEAD "spec:\n  source:\n    http:\n      url: http://x/\n"
                           "      secretRef: creds\nvimport:\n  mounts: {secret: %s/secret}\n",
                      tmp_root);
  load_fails(yaml, VERR_IO, "secret/secretKey");
  free(yaml);
}

Test(yaml_secrets, bad_secret_header_names_file_not_value)
{
  make_dir("eh");
  make_dir("eh/h");
  write_file("eh/h/x", "no-colon-supersecret");
  char *yaml = format(HEAD "spec:\n  source:\n    http:\n      url: http://x/\n"
                           "      secretExtraHeaders: [h]\nvimport:\n  mounts: {extraHeaders: %s/eh}\n",
                      tmp_root);
  char *want = format("spec.yaml:7: spec.source.http.secretExtraHeaders: secret \"h\": %s/eh/h/x: a header is "
                      "not of the form", tmp_root);
  load_fails(yaml, VERR_USAGE, want);
  free(want);
  free(yaml);
  struct verr err = { 0 };
  struct import_spec *s = NULL;
  yaml = format(HEAD "spec:\n  source:\n    http:\n      url: http://x/\n"
                     "      secretExtraHeaders: [h]\nvimport:\n  mounts: {extraHeaders: %s/eh}\n",
                tmp_root);
  spec_load_yaml_buffer(yaml, strlen(yaml), "spec.yaml", &s, &err);
  cr_expect_null(strstr(err.message, "supersecret"), "%s", err.message);
  free(yaml);
}

Test(yaml_secrets, missing_cert_dir)
{
  char *yaml = format(HEAD "spec:\n  source:\n    http:\n      url: http://x/\n"
                           "      certConfigMap: ca\nvimport:\n  mounts: {certs: %s/none}\n",
                      tmp_root);
  load_fails(yaml, VERR_IO, "spec.yaml:7: spec.source.http.certConfigMap: config map \"ca\": cannot find");
  free(yaml);
}

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
  cr_expect_eq(h->checksum.alg, SPEC_CHECKSUM_SHA1);
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
                   "IMPORTER_CHECKSUM=ignored-for-non-http", NULL };
  s = env_ok(file);
  cr_expect_eq(s->source.kind, SPEC_SOURCE_FILE);
  cr_expect_str_eq(s->source.file_path, "/tmp/img.qcow2");
  cr_expect_eq(s->content_type, SPEC_CONTENT_ARCHIVE);
  cr_expect_eq(s->target.requested_size, 0);
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

Test(env, errors)
{
  struct { char *envp[4]; const char *expect; } cases[] = {
    { { "PATH=/bin", NULL }, "environment: IMPORTER_SOURCE: not set" },
    { { "IMPORTER_SOURCE=ftp", NULL }, "environment: IMPORTER_SOURCE: unknown source \"ftp\"" },
    { { "IMPORTER_SOURCE=s3", NULL }, "the s3 source is not supported by vimport" },
    { { "IMPORTER_SOURCE=registry", NULL }, "the registry source is not supported" },
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
