/* cdi-source-update-poller: tell a DataImportCron the digest its registry source has now.
 *
 *   /usr/bin/cdi-source-update-poller -ns NS -cron NAME -url docker://... [-certdir DIR]
 *
 * CDI's DataImportCron controller runs this from the importer image in a CronJob
 * (dataimportcron-controller.go InitPollerPod), with IMPORTER_ACCESS_KEY_ID /
 * IMPORTER_SECRET_KEY from the source's secret, INSECURE_TLS for an insecure registry,
 * the certConfigMap at -certdir and the cluster's proxy CAs at /proxycerts. As CDI's
 * tools/cdi-source-update-poller/main.go it:
 *   1. reads the digest of the image's manifest (of the index for a multi-arch image,
 *      what containers/image's GetManifest(nil) returns) from the registry (pkg/registry);
 *   2. GETs the DataImportCron through the in-cluster API (pkg/kube);
 *   3. PATCHes it with a JSON patch: "add" of cdi.kubevirt.io/storage.import.lastCronTime
 *      (now, RFC 3339), then of cdi.kubevirt.io/storage.import.sourceDesiredDigest when
 *      the digest differs from the annotation's value.
 * Exit 0 after the patch, 1 for any failure (Go's log.Fatal), 2 for a bad flag.
 * Differs: the registry client also reads the image config and picks the machine's
 * platform of an index (CDI's digest lookup reads only the top manifest), so an image
 * that vimport could not import (no platform for this architecture, a bootc image)
 * fails here already, naming why, rather than at the import. -kubeconfig, -server and
 * KUBECONFIG (CDI's ways of running outside a cluster) are refused: only the in-cluster
 * configuration is read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "core/goflag.h"
#include "core/log.h"
#include "kube/kube.h"
#include "registry/registry.h"
#include "source/source.h"

extern char **environ;

#define STAGE "source-update-poller"
#define ANN_LAST_CRON_TIME "cdi.kubevirt.io/storage.import.lastCronTime"
#define ANN_SOURCE_DESIRED_DIGEST "cdi.kubevirt.io/storage.import.sourceDesiredDigest"
#define PROXY_CERT_DIR "/proxycerts" /* CDI's common.ImporterProxyCertDir */

struct poller_args {
  const char *ns, *cron, *url, *certdir, *kubeconfig, *server;
};

static void poller_usage(FILE *out)
{
  fputs("Usage of cdi-source-update-poller:\n"
        "  -certdir string\n"
        "    \tregistry certificates path.\n"
        "  -cron string\n"
        "    \tDataImportCron name.\n"
        "  -ns string\n"
        "    \tDataImportCron namespace.\n"
        "  -url string\n"
        "    \tregistry source url.\n"
        "(-kubeconfig and -server are refused: the in-cluster configuration is used)\n",
        out);
}

/* Go's strconv.ParseBool, for INSECURE_TLS. Returns -1 for any other text. */
static int parse_go_bool(const char *v)
{
  static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
  static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
  for (size_t i = 0; i < 6; i++) {
    if (strcmp(v, yes[i]) == 0)
      return 1;
    if (strcmp(v, no[i]) == 0)
      return 0;
  }
  return -1;
}

/* The digest CDI's poller reads: of the manifest the tag names (an index's own). */
static int image_digest(const struct poller_args *a, char *digest, size_t size, struct verr *err)
{
  const char *insecure_text = getenv("INSECURE_TLS");
  int insecure = insecure_text && *insecure_text ? parse_go_bool(insecure_text) : 0;
  if (insecure < 0)
    return verr_set(err, VERR_USAGE, "INSECURE_TLS: \"%.32s\" is not a boolean; use true or "
                    "false", insecure_text);
  char *ca = NULL;
  size_t ca_len = 0;
  if (!insecure && source_ca_blob(PROXY_CERT_DIR, a->certdir, &ca, &ca_len, err) < 0)
    return -1;
  struct registry_opts o = { .url = a->url, .user = getenv("IMPORTER_ACCESS_KEY_ID"),
                             .password = getenv("IMPORTER_SECRET_KEY"), .ca_blob = ca,
                             .ca_blob_len = ca_len, .insecure = insecure };
  struct registry_client *c = NULL;
  struct registry_image img = { 0 };
  int rc = registry_open(&o, &c, err);
  free(ca);
  if (rc == 0)
    rc = registry_resolve(c, &img, err);
  if (rc == 0)
    snprintf(digest, size, "%s", img.index_digest[0] ? img.index_digest : img.manifest_digest);
  registry_image_free(&img);
  registry_close(c);
  return rc;
}

/* time.Now().Format(time.RFC3339) in a pod, whose zone is UTC. */
static void rfc3339_now(char *out, size_t size)
{
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Steps 2 and 3 of the top comment. */
static int patch_cron(const struct poller_args *a, const char *digest, struct verr *err)
{
  char path[512];
  if (kube_dataimportcron_path(a->ns, a->cron, path, sizeof path, err) < 0)
    return -1;
  struct kube_client *k = NULL;
  struct json_value *cron = NULL;
  if (kube_in_cluster(environ, &k, err) < 0)
    return -1;
  if (kube_get(k, path, &cron, err) < 0) {
    kube_free(k);
    return verr_prefix(err, "Failed getting DataImportCron %s/%s", a->ns, a->cron);
  }
  char now[32];
  rfc3339_now(now, sizeof now);
  struct kube_annotation ops[2] = { { ANN_LAST_CRON_TIME, now }, { ANN_SOURCE_DESIRED_DIGEST, digest } };
  const char *current = kube_annotation(cron, ANN_SOURCE_DESIRED_DIGEST);
  size_t n = digest[0] != '\0' && (current == NULL || strcmp(current, digest) != 0) ? 2 : 1;
  vlog_info(STAGE, n == 2 ? "Digest updated" : "No digest update");
  char *patch = kube_annotation_patch(ops, n);
  int rc = patch ? kube_patch(k, path, patch, err) : verr_set(err, VERR_NOMEM, "out of memory");
  if (rc < 0)
    verr_prefix(err, "Failed patching DataImportCron %s/%s", a->ns, a->cron);
  free(patch);
  json_free(cron);
  kube_free(k);
  return rc;
}

int cmd_source_update_poller(int argc, char **argv)
{
  struct poller_args a = { .ns = "", .cron = "", .url = "", .certdir = "", .kubeconfig = "",
                           .server = "" };
  const struct goflag flags[] = {
    { .name = "ns", .str = &a.ns },           { .name = "cron", .str = &a.cron },
    { .name = "url", .str = &a.url },         { .name = "certdir", .str = &a.certdir },
    { .name = "kubeconfig", .str = &a.kubeconfig }, { .name = "server", .str = &a.server },
  };
  int next, code = goflag_parse(argc, argv, flags, sizeof flags / sizeof flags[0], poller_usage, &next);
  if (code != GOFLAG_CONTINUE)
    return code;
  if (*a.url == '\0' || *a.ns == '\0' || *a.cron == '\0') {
    vlog_error(STAGE, "One or more mandatory parameters are missing: give -ns, -cron and -url");
    return 1;
  }
  /* CDI's -kubeconfig defaults to $KUBECONFIG: that too would name another cluster */
  const char *kubeconfig_env = getenv("KUBECONFIG");
  if (*a.kubeconfig != '\0' || *a.server != '\0' || (kubeconfig_env && *kubeconfig_env)) {
    vlog_error(STAGE, "-kubeconfig, -server and KUBECONFIG are not supported: this poller "
               "reads the in-cluster configuration (KUBERNETES_SERVICE_HOST, the service "
               "account); unset them");
    return 1;
  }
  if (*a.certdir == '\0')
    a.certdir = NULL;
  char digest[REGISTRY_DIGEST_MAX];
  struct verr err = { 0 };
  if (image_digest(&a, digest, sizeof digest, &err) < 0) {
    vlog_error(STAGE, "Failed to get image digest: %s", err.message);
    return 1;
  }
  vlog_info(STAGE, "Digest is %s", digest);
  if (patch_cron(&a, digest, &err) < 0) {
    vlog_error(STAGE, "%s", err.message);
    return 1;
  }
  return 0;
}
