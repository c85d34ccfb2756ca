/* Unit tests for pkg/spec's YAML loader: a spec with every key and its mounted secrets,
 * defaults, file and PVC sources, the example files, and that secrets never reach
 * spec_describe(); each YAML error naming file, line and key path; missing or malformed
 * secret mounts. Secret mounts are real files in a temp directory.
 */
#include "spec_fixtures.h"

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
      "  blockHashLength: 7Mi\n"
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
  cr_expect_eq(s->source.checksum.alg, SPEC_CHECKSUM_SHA256);
  cr_expect_str_eq(s->source.checksum.hex, SHA256_HEX);
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
  cr_expect_eq(s->block_hash.length, 7 * 1024 * 1024);
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
                                  "    file: {path: \"-\", checksum: \"sha256:" SHA256_HEX "\"}\n"
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
  cr_expect_eq(s->source.checksum.alg, SPEC_CHECKSUM_SHA256, "a file source is checked too");
  cr_expect_eq(s->target.volume_mode, SPEC_VOLUME_MODE_FILESYSTEM);
  cr_expect_eq(s->target.requested_size, 1073741824ull);
  cr_expect_eq(s->content_type, SPEC_CONTENT_ARCHIVE);
  cr_expect_str_eq(s->block_hash.digest, "md5");
  cr_expect_eq(s->block_hash.expected_len, 16);
  cr_expect_eq(s->block_hash.block_size, 4096);
  spec_free(s);
}

Test(yaml_good, registry_source)
{
  struct import_spec *s = load_ok(HEAD
                                  "spec:\n"
                                  "  source:\n"
                                  "    registry:\n"
                                  "      url: docker://quay.io/containerdisks/fedora@sha256:" SHA256_HEX "\n"
                                  "      pullMethod: pod\n"
                                  "      platform: {architecture: s390x}\n"
                                  "      checksum: \"sha256:" SHA256_HEX "\"\n");
  cr_expect_eq(s->source.kind, SPEC_SOURCE_REGISTRY);
  cr_expect_str_eq(s->source.http.url, "docker://quay.io/containerdisks/fedora@sha256:" SHA256_HEX);
  cr_expect_str_eq(s->source.registry_architecture, "s390x");
  cr_expect_eq(s->source.checksum.alg, SPEC_CHECKSUM_SHA256);
  cr_expect_null(s->source.http.basic_auth_user);
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
  { HEAD "spec:\n  source:\n    blank: {checksum: \"sha256:" SHA256_HEX "\"}\n",
    "spec.yaml:5: spec.source.blank.checksum: a blank source has no served bytes to check" },
  { HEAD "spec:\n  source:\n    nbd: {uri: \"nbd://x/\", checksum: \"sha256:" SHA256_HEX "\"}\n",
    "spec.yaml:5: spec.source.nbd.checksum: a nbd source has no served bytes to check" },
  { HEAD "spec:\n  source:\n    file: {path: /x, checksum: \"sha1:ab\"}\n",
    "spec.yaml:5: spec.source.file.checksum: checksum sha1: expected 40 hex digits" },
  { HEAD "spec:\n  source:\n    http:\n      urll: http://x/\n",
    "spec.yaml:6: spec.source.http.urll: unknown key; did you mean \"url\"?" },
  { HEAD "spec:\n  source:\n    http:\n      checksum: sha256:" SHA256_HEX "\n",
    "spec.yaml:6: spec.source.http: the required key \"url\" is missing" },
  { HEAD "spec:\n  source:\n    http: {url: ftp://x/}\n",
    "spec.yaml:5: spec.source.http.url: not an http:// or https:// URL" },
  { HEAD "spec:\n  source: {}\n", "spec.yaml:4: spec.source: no source kind" },
  { HEAD "spec:\n  source:\n    blank: {}\n    file: {path: /x}\n",
    "spec.yaml:6: spec.source.file: a second source kind after blank" },
  { HEAD "spec:\n  source:\n    registry: {url: \"docker://quay.io/Fedora\"}\n",
    "spec.yaml:5: spec.source.registry.url: invalid image reference" },
  { HEAD "spec:\n  source:\n    registry: {url: \"https://quay.io/fedora\"}\n",
    "must start with docker://" },
  { HEAD "spec:\n  source:\n    registry: {url: \"docker://q.io/f\", pullMethod: node}\n",
    "spec.yaml:5: spec.source.registry.pullMethod: node pull is done by CDI's controller" },
  { HEAD "spec:\n  source:\n    registry: {url: \"docker://q.io/f\", platform: {arch: x}}\n",
    "spec.source.registry.platform.arch: unknown key" },
  { HEAD "spec:\n  source:\n    registry: {url: \"docker://q.io/f\", extraHeaders: [\"A: b\"]}\n",
    "spec.source.registry.extraHeaders: unknown key" },
  { HEAD "spec:\n  source:\n    s3: {url: x}\n",
    "spec.yaml:5: spec.source.s3.url: not an http:// or https:// URL" },
  { HEAD "spec:\n  source:\n    s3: {url: \"http://h/b/k\", extraHeaders: [\"A: b\"]}\n",
    "spec.source.s3.extraHeaders: unknown key" },
  { HEAD "spec:\n  source:\n    vddk: {url: x}\n",
    "spec.yaml:5: spec.source.vddk: VMware disks read through VMware's VDDK library and its "
    "sidecar image (CDI's vddk source, with its warm migration snapshots): vimport does not "
    "replace that CDI feature" },
  { HEAD "spec:\n  source:\n    imageio: {url: x}\n",
    "spec.source.imageio: oVirt/RHV disks read from the engine through ovirt-imageio" },
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
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  blockHashLength: 8388608\n",
    "spec.yaml: blockHashLength says how many bytes the expected block hash covers, but no "
    "expectedBlockHash is given" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  blockHashLength: 0\n",
    "spec.yaml:5: vimport.blockHashLength: 0 bytes" },
  { HEAD "spec: {source: {blank: {}}}\nvimport:\n  blockHashLength: [1]\n",
    "spec.yaml:5: vimport.blockHashLength: expected a byte count" },
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

/* spec.source.gcs: secretRef names a secret whose credentials.json is the key */
Test(yaml_secrets, gcs_source)
{
  make_dir("secret");
  write_file("secret/credentials.json", "{}");
  char *yaml = format(HEAD "spec:\n  source:\n    gcs:\n      url: gs://bkt/disk.img\n"
                           "      secretRef: gcs-key\nvimport:\n  mounts: {secret: %s/secret}\n",
                      tmp_root);
  struct import_spec *s = load_ok(yaml);
  cr_expect_eq(s->source.kind, SPEC_SOURCE_GCS);
  cr_expect_str_eq(s->source.http.url, "gs://bkt/disk.img");
  cr_expect_not_null(strstr(s->source.gcs_credentials, "/secret/credentials.json"));
  cr_expect_null(s->source.http.basic_auth_user);
  spec_free(s);
  free(yaml);
  yaml = format(HEAD "spec:\n  source:\n    gcs:\n      url: gs://bkt/disk.img\n"
                     "      secretRef: gcs-key\nvimport:\n  mounts: {secret: %s/nope}\n", tmp_root);
  load_fails(yaml, VERR_IO, "spec.source.gcs.secretRef: secret \"gcs-key\": cannot read");
  free(yaml);
  load_fails(HEAD "spec:\n  source:\n    gcs:\n      url: ftp://bkt/disk.img\n", VERR_USAGE,
             "not gs://BUCKET/OBJECT or https://HOST/BUCKET/OBJECT");
}
