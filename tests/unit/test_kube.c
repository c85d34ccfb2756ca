/* pkg/kube: the pure parts of cdi-source-update-poller's API calls: CDI's JSON patch as
 * Go's json.Marshal writes it, the object path and its name checks, the annotation
 * lookup, and the in-cluster configuration from a service-account directory. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/kube.h"

Test(kube, the_patch_cdi_sends)
{
  const struct kube_annotation ops[] = {
    { "cdi.kubevirt.io/storage.import.lastCronTime", "2026-12-05T09:00:00Z" },
    { "cdi.kubevirt.io/storage.import.sourceDesiredDigest", "sha256:0123abcd" },
  };
  char *one = kube_annotation_patch(ops, 1);
  cr_assert_str_eq(one, "[{\"op\":\"add\",\"path\":\"/metadata/annotations/cdi.kubevirt.io~1"
                        "storage.import.lastCronTime\",\"value\":\"2026-12-05T09:00:00Z\"}]");
  free(one);
  char *two = kube_annotation_patch(ops, 2);
  cr_assert_str_eq(two, "[{\"op\":\"add\",\"path\":\"/metadata/annotations/cdi.kubevirt.io~1"
                        "storage.import.lastCronTime\",\"value\":\"2026-12-05T09:00:00Z\"},"
                        "{\"op\":\"add\",\"path\":\"/metadata/annotations/cdi.kubevirt.io~1"
                        "storage.import.sourceDesiredDigest\",\"value\":\"sha256:0123abcd\"}]");
  free(two);
}

Test(kube, keys_and_values_are_escaped_as_go_escapes_them)
{
  const struct kube_annotation ops[] = { { "a~b/c\"d", "<x>&\"\\\n\x01\xe2\x80\xa8" } };
  char *p = kube_annotation_patch(ops, 1);
  cr_assert_str_eq(p, "[{\"op\":\"add\",\"path\":\"/metadata/annotations/a~0b~1c\\\"d\","
                      "\"value\":\"\\u003cx\\u003e\\u0026\\\"\\\\\\n\\u0001\\u2028\"}]");
  free(p);
}

Test(kube, the_dataimportcron_path_and_its_names)
{
  char path[512];
  struct verr err = { 0 };
  cr_assert_eq(kube_dataimportcron_path("golden-images", "fedora.v1", path, sizeof path, &err), 0);
  cr_assert_str_eq(path, "/apis/cdi.kubevirt.io/v1beta1/namespaces/golden-images/dataimportcrons/fedora.v1");
  const char *bad_ns[] = { "", "Upper", "a/b", "-a", "a.b", "a?x=1", "..",
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
  for (size_t i = 0; i < sizeof bad_ns / sizeof *bad_ns; i++)
    cr_assert_eq(kube_dataimportcron_path(bad_ns[i], "x", path, sizeof path, &err), -1, "%s", bad_ns[i]);
  const char *bad_name[] = { "", "a..b", ".a", "a.", "a/b", "%2e", "a b" };
  for (size_t i = 0; i < sizeof bad_name / sizeof *bad_name; i++)
    cr_assert_eq(kube_dataimportcron_path("ns", bad_name[i], path, sizeof path, &err), -1, "%s",
                 bad_name[i]);
  cr_assert(strstr(err.message, "DNS-1123") != NULL, "%s", err.message);
}

Test(kube, the_annotation_of_an_object)
{
  const char *doc = "{\"kind\":\"DataImportCron\",\"metadata\":{\"name\":\"c\",\"annotations\":"
                    "{\"cdi.kubevirt.io/storage.import.sourceDesiredDigest\":\"sha256:aa\"}}}";
  struct json_value *v = NULL;
  struct verr err = { 0 };
  cr_assert_eq(json_parse(doc, strlen(doc), NULL, &v, &err), 0, "%s", err.message);
  cr_assert_str_eq(kube_annotation(v, "cdi.kubevirt.io/storage.import.sourceDesiredDigest"), "sha256:aa");
  cr_assert_null(kube_annotation(v, "cdi.kubevirt.io/storage.import.lastCronTime"));
  json_free(v);
  const char *none = "{\"metadata\":{\"name\":\"c\"}}";
  cr_assert_eq(json_parse(none, strlen(none), NULL, &v, &err), 0);
  cr_assert_null(kube_annotation(v, "x"));
  json_free(v);
}

static void write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

Test(kube, the_in_cluster_configuration)
{
  char dir[] = "/tmp/vimport-kube-XXXXXX", token[64], ca[64], env_dir[96];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(token, sizeof token, "%s/token", dir);
  snprintf(ca, sizeof ca, "%s/ca.crt", dir);
  snprintf(env_dir, sizeof env_dir, "VIMPORT_SERVICEACCOUNT_DIR=%s", dir);
  char *envp[] = { "KUBERNETES_SERVICE_HOST=fd00::1", "KUBERNETES_SERVICE_PORT=443", env_dir, NULL };
  struct kube_client *k = NULL;
  struct verr err = { 0 };
  cr_assert_eq(kube_in_cluster(envp, &k, &err), -1, "no ca.crt");
  write_file(ca, "-----BEGIN CERTIFICATE-----\n");
  cr_assert_eq(kube_in_cluster(envp, &k, &err), -1, "no token");
  write_file(token, "secret-token\nsecond line\n");
  cr_assert_eq(kube_in_cluster(envp, &k, &err), -1, "a token with a line break");
  cr_assert_null(strstr(err.message, "secret-token"), "the token leaked: %s", err.message);
  write_file(token, "  secret-token\n");
  cr_assert_eq(kube_in_cluster(envp, &k, &err), 0, "%s", err.message);
  cr_assert_str_eq(kube_server(k), "https://[fd00::1]:443");
  kube_free(k);
  char *no_host[] = { "KUBERNETES_SERVICE_PORT=443", env_dir, NULL };
  cr_assert_eq(kube_in_cluster(no_host, &k, &err), -1);
  cr_assert(strstr(err.message, "KUBERNETES_SERVICE_HOST") != NULL, "%s", err.message);
  unlink(token);
  unlink(ca);
  rmdir(dir);
}
