/* pkg/registry without a network: image references, WWW-Authenticate challenges, token
 * answers, manifests, indexes and configs, the platform pick, CDI's labels and the
 * disk rule over tar layers built byte by byte. The client against a real registry:
 * tests/e2e/test_registry_*.sh. */
#include <criterion/criterion.h>
#include <string.h>

#include "registry/registry.h"
#include "tar_builder.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIGEST "sha256:" HEX64

/* ---- references ------------------------------------------------------------------------- */

static struct registry_ref ref_ok(const char *url)
{
  struct registry_ref ref;
  struct verr err = { 0 };
  cr_assert_eq(registry_parse_ref(url, &ref, &err), 0, "%s: %s", url, err.message);
  return ref;
}

static void ref_bad(const char *url, const char *phrase)
{
  struct registry_ref ref;
  struct verr err = { 0 };
  cr_assert_eq(registry_parse_ref(url, &ref, &err), -1, "%s was accepted", url);
  cr_assert_eq(err.code, VERR_USAGE);
  cr_assert(strstr(err.message, phrase) != NULL, "%s: %s", url, err.message);
}

Test(registry_ref, host_port_repo_tag)
{
  struct registry_ref r = ref_ok("docker://127.0.0.1:5000/disk/gzip:v1");
  cr_assert_str_eq(r.host, "127.0.0.1:5000");
  cr_assert_str_eq(r.repo, "disk/gzip");
  cr_assert_str_eq(r.tag, "v1");
  cr_assert_str_eq(r.digest, "");
  cr_assert_str_eq(registry_ref_reference(&r), "v1");
}

Test(registry_ref, default_tag_and_localhost)
{
  struct registry_ref r = ref_ok("docker://localhost/fedora");
  cr_assert_str_eq(r.host, "localhost");
  cr_assert_str_eq(r.repo, "fedora");
  cr_assert_str_eq(r.tag, "latest");
}

Test(registry_ref, digest_wins_over_tag)
{
  struct registry_ref r = ref_ok("docker://quay.io/containerdisks/fedora:39@" DIGEST);
  cr_assert_str_eq(r.host, "quay.io");
  cr_assert_str_eq(r.repo, "containerdisks/fedora");
  cr_assert_str_eq(r.digest, DIGEST);
  cr_assert_str_eq(registry_ref_reference(&r), DIGEST);
  r = ref_ok("docker://reg.example:443/a/b@" DIGEST);
  cr_assert_str_eq(r.tag, "");
}

Test(registry_ref, docker_hub_defaults)
{
  struct registry_ref r = ref_ok("docker://fedora:39");
  cr_assert_str_eq(r.host, "registry-1.docker.io");
  cr_assert_str_eq(r.repo, "library/fedora");
  cr_assert_str_eq(r.tag, "39");
  r = ref_ok("docker://kubevirt/fedora-cloud-container-disk-demo");
  cr_assert_str_eq(r.repo, "kubevirt/fedora-cloud-container-disk-demo");
  r = ref_ok("docker://docker.io/busybox");
  cr_assert_str_eq(r.host, "registry-1.docker.io");
  cr_assert_str_eq(r.repo, "library/busybox");
}

Test(registry_ref, separators_in_repository)
{
  ref_ok("docker://h.io/a_b/c__d/e--f/g.h:x");
  ref_bad("docker://h.io/a_/b", "repository");
  ref_bad("docker://h.io/-a", "repository");
  ref_bad("docker://h.io/a//b", "repository");
  ref_bad("docker://h.io/a___b", "repository");
}

Test(registry_ref, refused)
{
  ref_bad("http://h.io/a", "docker://");
  ref_bad("oci-archive:/x.tar", "docker://");
  ref_bad("docker://h.io/Fedora", "repository");
  ref_bad("docker://h.io/a:.bad", "tag");
  ref_bad("docker://h.io/a:", "tag");
  ref_bad("docker://h.io/a@sha512:abcd", "sha256");
  ref_bad("docker://h.io/a@sha256:ABCDEF", "64 lowercase hex");
  ref_bad("docker://h.io/", "repository");
  ref_bad("docker://h.io:99999999/a", "HOST:PORT");
  ref_bad("docker://h_o.io/a", "HOST");
}

/* ---- challenges and tokens ---------------------------------------------------------------- */

static struct registry_challenge challenge_ok(const char *v)
{
  struct registry_challenge ch;
  struct verr err = { 0 };
  cr_assert_eq(registry_parse_challenge(v, strlen(v), &ch, &err), 0, "%s: %s", v, err.message);
  return ch;
}

Test(registry_challenge, bearer)
{
  struct registry_challenge ch = challenge_ok(
      "Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
      "scope=\"repository:disk/gzip:pull\"");
  cr_assert_eq(ch.scheme, REGISTRY_AUTH_BEARER);
  cr_assert_str_eq(ch.realm, "https://auth.example/token");
  cr_assert_str_eq(ch.service, "registry.example");
  cr_assert_str_eq(ch.scope, "repository:disk/gzip:pull");
}

Test(registry_challenge, case_spaces_tokens_and_escapes)
{
  struct registry_challenge ch = challenge_ok(
      "bearer  REALM = \"https://a/t\" , Service=reg.example, scope=\"a\\\"b\"");
  cr_assert_eq(ch.scheme, REGISTRY_AUTH_BEARER);
  cr_assert_str_eq(ch.realm, "https://a/t");
  cr_assert_str_eq(ch.service, "reg.example");
  cr_assert_str_eq(ch.scope, "a\"b");
}

Test(registry_challenge, basic_and_the_first_known_scheme)
{
  cr_assert_eq(challenge_ok("Basic realm=\"Registry Realm\"").scheme, REGISTRY_AUTH_BASIC);
  struct registry_challenge ch =
      challenge_ok("Negotiate abc==, Bearer realm=\"https://a/t\",service=\"s\"");
  cr_assert_eq(ch.scheme, REGISTRY_AUTH_BEARER);
  cr_assert_str_eq(ch.service, "s");
}

Test(registry_challenge, refused)
{
  struct registry_challenge ch;
  struct verr err = { 0 };
  const char *no_realm = "Bearer service=\"s\"";
  cr_assert_eq(registry_parse_challenge(no_realm, strlen(no_realm), &ch, &err), -1);
  cr_assert(strstr(err.message, "realm") != NULL, "%s", err.message);
  const char *file_realm = "Bearer realm=\"file:///etc/passwd\"";
  cr_assert_eq(registry_parse_challenge(file_realm, strlen(file_realm), &ch, &err), -1);
  const char *unknown = "Negotiate";
  cr_assert_eq(registry_parse_challenge(unknown, strlen(unknown), &ch, &err), -1);
  const char *open_quote = "Bearer realm=\"https://a";
  cr_assert_eq(registry_parse_challenge(open_quote, strlen(open_quote), &ch, &err), -1);
  cr_assert_eq(registry_parse_challenge("", 0, &ch, &err), -1);
}

Test(registry_token, token_or_access_token)
{
  char tok[64];
  struct verr err = { 0 };
  const char *a = "{\"token\":\"abc.def\",\"expires_in\":300}";
  cr_assert_eq(registry_parse_token(a, strlen(a), tok, sizeof tok, &err), 0, "%s", err.message);
  cr_assert_str_eq(tok, "abc.def");
  const char *b = "{\"access_token\":\"xyz\"}";
  cr_assert_eq(registry_parse_token(b, strlen(b), tok, sizeof tok, &err), 0);
  cr_assert_str_eq(tok, "xyz");
  const char *none = "{\"expires_in\":300}";
  cr_assert_eq(registry_parse_token(none, strlen(none), tok, sizeof tok, &err), -1);
  const char *crlf = "{\"token\":\"a\\r\\nX-Evil: 1\"}";
  cr_assert_eq(registry_parse_token(crlf, strlen(crlf), tok, sizeof tok, &err), -1);
  cr_assert_eq(registry_parse_token("nope", 4, tok, sizeof tok, &err), -1);
}

/* ---- manifests -------------------------------------------------------------------------------- */

#define LAYER(mt) "{\"mediaType\":\"" mt "\",\"digest\":\"" DIGEST "\",\"size\":42}"
#define CONFIG "{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" \
               DIGEST "\",\"size\":7}"

static int parse(const char *body, const char *ct, struct registry_manifest *m, struct verr *err)
{
  return registry_parse_manifest(body, strlen(body), ct, m, err);
}

Test(registry_manifest, oci_manifest)
{
  struct registry_manifest m;
  struct verr err = { 0 };
  const char *body = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                     "\"config\":" CONFIG ",\"layers\":[" LAYER("application/vnd.oci.image.layer.v1.tar+gzip")
                     "," LAYER("application/vnd.oci.image.layer.v1.tar+zstd") ","
                     LAYER("application/vnd.oci.image.layer.v1.tar") "]}";
  cr_assert_eq(parse(body, NULL, &m, &err), 0, "%s", err.message);
  cr_assert_not(m.is_index);
  cr_assert_eq(m.n_layers, 3);
  cr_assert_eq(m.layers[0].compression, REGISTRY_LAYER_GZIP);
  cr_assert_eq(m.layers[1].compression, REGISTRY_LAYER_ZSTD);
  cr_assert_eq(m.layers[2].compression, REGISTRY_LAYER_TAR);
  cr_assert_eq(m.layers[0].size, 42);
  cr_assert_str_eq(m.config.digest, DIGEST);
  registry_manifest_free(&m);
}

Test(registry_manifest, docker_v2_by_content_type)
{
  struct registry_manifest m;
  struct verr err = { 0 };
  const char *body = "{\"schemaVersion\":2,\"config\":" CONFIG ",\"layers\":["
                     LAYER("application/vnd.docker.image.rootfs.diff.tar.gzip") "]}";
  cr_assert_eq(parse(body, "application/vnd.docker.distribution.manifest.v2+json; charset=x",
                     &m, &err), 0, "%s", err.message);
  cr_assert_str_eq(m.media_type, "application/vnd.docker.distribution.manifest.v2+json");
  cr_assert_eq(m.layers[0].compression, REGISTRY_LAYER_GZIP);
  registry_manifest_free(&m);
}

static const char *index_body =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
    "1111111111111111111111111111111111111111111111111111111111111111\",\"size\":500,"
    "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
    "2222222222222222222222222222222222222222222222222222222222222222\",\"size\":500,"
    "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
    "3333333333333333333333333333333333333333333333333333333333333333\",\"size\":500,"
    "\"platform\":{\"architecture\":\"s390x\",\"os\":\"windows\"}}]}";

Test(registry_manifest, index_and_platform)
{
  struct registry_manifest m;
  struct verr err = { 0 };
  cr_assert_eq(parse(index_body, NULL, &m, &err), 0, "%s", err.message);
  cr_assert(m.is_index);
  cr_assert_eq(m.n_manifests, 3);
  size_t which = 99;
  cr_assert_eq(registry_pick_platform(&m, "arm64", &which, &err), 0);
  cr_assert_eq(which, 1);
  cr_assert_str_eq(m.manifests[which].variant, "v8");
  cr_assert_eq(registry_pick_platform(&m, "amd64", &which, &err), 0);
  cr_assert_eq(which, 0);
  /* only linux images are disks here */
  cr_assert_eq(registry_pick_platform(&m, "s390x", &which, &err), -1);
  cr_assert_str_eq(err.message, "no image found in image index for architecture \"s390x\", "
                                "variant \"\", OS \"linux\"");
  registry_manifest_free(&m);
}

Test(registry_manifest, index_by_shape_and_list_message)
{
  struct registry_manifest m;
  struct verr err = { 0 };
  const char *list = "{\"schemaVersion\":2,\"mediaType\":"
                     "\"application/vnd.docker.distribution.manifest.list.v2+json\",\"manifests\":[]}";
  cr_assert_eq(parse(list, NULL, &m, &err), 0, "%s", err.message);
  size_t which;
  cr_assert_eq(registry_pick_platform(&m, "arm64", &which, &err), -1);
  cr_assert(strstr(err.message, "no image found in manifest list for architecture \"arm64\"") != NULL,
            "%s", err.message);
  registry_manifest_free(&m);
  const char *bare = "{\"schemaVersion\":2,\"manifests\":[]}";
  cr_assert_eq(parse(bare, "application/json", &m, &err), 0, "%s", err.message);
  cr_assert(m.is_index);
  registry_manifest_free(&m);
}

static void manifest_bad(const char *body, const char *ct, const char *phrase)
{
  struct registry_manifest m;
  struct verr err = { 0 };
  cr_assert_eq(parse(body, ct, &m, &err), -1, "accepted: %s", body);
  cr_assert(strstr(err.message, phrase) != NULL, "%s", err.message);
  cr_assert_null(m.layers);
}

Test(registry_manifest, refused)
{
  manifest_bad("{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}",
               "application/vnd.docker.distribution.manifest.v1+prettyjws", "schema 1");
  manifest_bad("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
               "\"config\":" CONFIG ",\"layers\":[" LAYER("application/vnd.oci.image.layer.v1.tar+bzip2") "]}",
               NULL, "tar+bzip2");
  manifest_bad("{\"schemaVersion\":2,\"config\":" CONFIG ",\"layers\":[{\"mediaType\":"
               "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha512:ab\"}]}",
               NULL, "sha256");
  manifest_bad("{\"schemaVersion\":2,\"config\":" CONFIG ",\"layers\":[],\"layers\":[]}", NULL,
               "twice");
  manifest_bad("<html>", NULL, "not valid JSON");
  manifest_bad("{\"schemaVersion\":2,\"mediaType\":\"text/plain\"}", NULL, "media type");
  manifest_bad("{\"schemaVersion\":2,\"config\":" CONFIG ",\"layers\":[{\"mediaType\":"
               "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" DIGEST "\",\"size\":-1}]}",
               NULL, "size");
}

Test(registry_manifest, too_many_layers)
{
  char *body = malloc(200000);
  int n = sprintf(body, "{\"schemaVersion\":2,\"config\":%s,\"layers\":[", CONFIG);
  for (unsigned i = 0; i <= REGISTRY_MAX_LAYERS; i++)
    n += sprintf(body + n, "%s%s", i ? "," : "", LAYER("application/vnd.oci.image.layer.v1.tar"));
  sprintf(body + n, "]}");
  manifest_bad(body, NULL, "layers");
  free(body);
}

/* ---- configs and labels --------------------------------------------------------------------- */

static void label_is(const char *env, const char *want)
{
  char out[256];
  cr_assert_eq(registry_env_label(env, out, sizeof out), 0, "%s", env);
  cr_assert_str_eq(out, want, "%s", env);
}

Test(registry_config, env_to_label_as_cdi)
{
  /* pkg/importer/util.go envToLabel, and its tests in util_test.go */
  label_is("INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE", "instancetype.kubevirt.io/default-instancetype");
  label_is("PREFERENCE_KUBEVIRT_IO_DEFAULT_PREFERENCE", "preference.kubevirt.io/default-preference");
  label_is("KUBEVIRT_IO_FOO", "kubevirt.io/foo");
  label_is("A_B_KUBEVIRT_IO_C_D", "a.b.kubevirt.io/c-d");
  label_is("A__KUBEVIRT_IO_X", "a..kubevirt.io/x");
  label_is("_KUBEVIRT_IO_X", "kubevirt.io/x");
  label_is("_A_KUBEVIRT_IO_X", "kubevirt.io/x"); /* Go drops the prefix: its first element is "" */
  char small[8];
  cr_assert_eq(registry_env_label("KUBEVIRT_IO_LONGER", small, sizeof small), -1);
  cr_assert_eq(registry_env_label("NOTHING", small, sizeof small), -1);
}

Test(registry_config, labels_arch_and_bootc)
{
  struct registry_config c;
  struct verr err = { 0 };
  const char *body = "{\"architecture\":\"arm64\",\"os\":\"linux\",\"config\":{\"Env\":["
                     "\"PATH=/usr/bin\",\"INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE=u1.small\","
                     "\"NOEQUALS_KUBEVIRT_IO_X\",\"X_KUBEVIRT_IO_Y=a=b\","
                     "\"INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE=u1.large\",42],"
                     "\"Labels\":{\"containers.bootc\":\"0\"}}}";
  cr_assert_eq(registry_parse_config(body, strlen(body), &c, &err), 0, "%s", err.message);
  cr_assert_str_eq(c.architecture, "arm64");
  cr_assert_not(c.bootc);
  cr_assert_eq(c.n_labels, 2);
  cr_assert_str_eq(c.labels[0].key, "instancetype.kubevirt.io/default-instancetype");
  cr_assert_str_eq(c.labels[0].value, "u1.large"); /* the later one wins, as in CDI's map */
  cr_assert_str_eq(c.labels[1].key, "x.kubevirt.io/y");
  cr_assert_str_eq(c.labels[1].value, "a=b");
  cr_assert_eq(registry_check_architecture(&c, "arm64", &err), 0);
  cr_assert_eq(registry_check_architecture(&c, "amd64", &err), -1);
  cr_assert_str_eq(err.message, "Error validating architecture: manifest image architecture: "
                                "\"arm64\" doesn't match requested architecture: \"amd64\"");
  const char *bootc = "{\"config\":{\"Labels\":{\"containers.bootc\":\"1\"}}}";
  cr_assert_eq(registry_parse_config(bootc, strlen(bootc), &c, &err), 0);
  cr_assert(c.bootc);
  const char *ostree = "{\"config\":{\"Labels\":{\"ostree.bootable\":\"1\"}}}";
  cr_assert_eq(registry_parse_config(ostree, strlen(ostree), &c, &err), 0);
  cr_assert(c.bootc);
  cr_assert_eq(registry_parse_config("[]", 2, &c, &err), -1);
}

Test(registry_config, machine_architecture_is_a_go_name)
{
  const char *a = registry_machine_architecture();
  cr_assert(strcmp(a, "amd64") == 0 || strcmp(a, "arm64") == 0 || strcmp(a, "s390x") == 0 ||
                strcmp(a, "ppc64le") == 0 || strcmp(a, "riscv64") == 0,
            "%s", a);
}

/* ---- the disk rule ------------------------------------------------------------------------- */

struct mem {
  const unsigned char *p;
  size_t len, at;
};

static ssize_t mem_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  (void)err;
  struct mem *m = r->state;
  size_t n = m->len - m->at < len ? m->len - m->at : len;
  n = n > 333 ? 333 : n; /* short reads, as a network gives */
  memcpy(buf, m->p + m->at, n);
  m->at += n;
  return (ssize_t)n;
}

static const struct vreader_ops mem_ops = { .name = "mem", .read = mem_read };

/* Run the rule over the layer `b`: find, read the disk, then the rest. Returns what the
 * first failing step returned (or 1: found and clean, 0: no disk); *data gets the disk. */
static int run_rule(struct tarb *b, char *name, size_t name_size, char *data, size_t data_size,
                    struct verr *err)
{
  struct mem m = { .p = b->p, .len = b->len };
  struct vreader r = { .ops = &mem_ops, .state = &m };
  struct tar_reader *t = NULL;
  static struct tar_entry e;
  cr_assert_eq(tar_reader_new(&r, &t, err), 0);
  int found = registry_disk_find(t, &e, err);
  if (found == 1) {
    snprintf(name, name_size, "%.60s", e.name);
    size_t got = 0;
    ssize_t n;
    while ((n = tar_read(t, data + got, data_size - 1 - got, err)) > 0)
      got += (size_t)n;
    data[got] = '\0';
    if (n < 0 || registry_disk_rest(t, &e, name, err) < 0)
      found = -1;
  }
  tar_reader_free(t);
  free(b->p);
  return found;
}

Test(registry_disk, the_first_file_under_disk)
{
  struct tarb b = { 0 };
  tarb_header(&b, "etc/", '5', 0, NULL, 0755);
  tarb_file(&b, "etc/hostname", "vm\n");
  tarb_header(&b, "disk/", '5', 0, NULL, 0755);
  tarb_file(&b, "disk/.wh.old.img", "");      /* a whiteout: skipped */
  tarb_file(&b, "disk/disk.qcow2", "QFI\xfb the disk");
  tarb_file(&b, "extra/notes.txt", "after the disk, read too\n");
  tarb_end(&b);
  char name[64], data[64];
  struct verr err = { 0 };
  cr_assert_eq(run_rule(&b, name, sizeof name, data, sizeof data, &err), 1, "%s", err.message);
  cr_assert_str_eq(name, "disk/disk.qcow2");
  cr_assert_str_eq(data, "QFI\xfb the disk");
}

Test(registry_disk, dot_slash_disk)
{
  struct tarb b = { 0 };
  tarb_header(&b, "./disk/", '5', 0, NULL, 0755);
  tarb_file(&b, "./disk/d.img", "raw");
  tarb_end(&b);
  char name[64], data[64];
  struct verr err = { 0 };
  cr_assert_eq(run_rule(&b, name, sizeof name, data, sizeof data, &err), 1, "%s", err.message);
  cr_assert_str_eq(name, "./disk/d.img");
  cr_assert_str_eq(data, "raw");
}

Test(registry_disk, no_disk_in_this_layer)
{
  struct tarb b = { 0 };
  tarb_file(&b, "diskette.txt", "not in disk/");
  tarb_file(&b, "/disk/abs.img", "an absolute name is not disk/ (CDI's hasPrefix)");
  tarb_header(&b, "disk/", '5', 0, NULL, 0755);
  tarb_file(&b, "disk/.wh..wh..opq", "");
  tarb_end(&b);
  char name[64], data[64];
  struct verr err = { 0 };
  cr_assert_eq(run_rule(&b, name, sizeof name, data, sizeof data, &err), 0, "%s", err.message);
}

static void rule_refuses(struct tarb *b, const char *phrase)
{
  char name[64], data[64];
  struct verr err = { 0 };
  cr_assert_eq(run_rule(b, name, sizeof name, data, sizeof data, &err), -1, "accepted");
  cr_assert_eq(err.code, VERR_FORMAT);
  cr_assert(strstr(err.message, phrase) != NULL, "%s", err.message);
}

Test(registry_disk, two_files_named)
{
  struct tarb b = { 0 };
  tarb_file(&b, "disk/a.img", "a");
  tarb_file(&b, "disk/b.img", "b");
  tarb_end(&b);
  rule_refuses(&b, "more than one file: disk/a.img and disk/b.img");
}

Test(registry_disk, links_and_other_types)
{
  struct tarb b = { 0 };
  tarb_header(&b, "disk/disk.qcow2", '2', 0, "/etc/passwd", 0777);
  tarb_end(&b);
  rule_refuses(&b, "symbolic link to /etc/passwd");
  b = (struct tarb){ 0 };
  tarb_file(&b, "data/disk.qcow2", "x");
  tarb_header(&b, "disk/disk.qcow2", '1', 0, "data/disk.qcow2", 0644);
  tarb_end(&b);
  rule_refuses(&b, "hard link");
  b = (struct tarb){ 0 };
  tarb_header(&b, "disk/fifo", '6', 0, NULL, 0644);
  tarb_end(&b);
  rule_refuses(&b, "not a regular file");
}

Test(registry_disk, subdirectory_and_dotdot)
{
  struct tarb b = { 0 };
  tarb_file(&b, "disk/sub/d.img", "x");
  tarb_end(&b);
  rule_refuses(&b, "image directory contains another directory: disk/sub/d.img");
  b = (struct tarb){ 0 };
  tarb_file(&b, "disk/../../etc/cron.d/x", "x");
  tarb_end(&b);
  rule_refuses(&b, "content filepath is tainted");
}

Test(registry_disk, a_second_file_after_the_disk_in_a_subdirectory)
{
  struct tarb b = { 0 };
  tarb_file(&b, "disk/d.img", "x");
  tarb_file(&b, "disk/more/e.img", "y");
  tarb_end(&b);
  rule_refuses(&b, "another directory");
}

Test(registry_disk, truncated_layer)
{
  struct tarb b = { 0 };
  tarb_file(&b, "disk/d.img", "x");
  /* no end marker: a layer cut short */
  rule_refuses(&b, "end marker");
}
