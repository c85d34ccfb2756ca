/* vimport kube: the Kubernetes API calls of cdi-source-update-poller, from inside a pod.
 *
 *   struct kube_client *k;
 *   if (kube_in_cluster(environ, &k, &err) < 0) ...
 *   kube_dataimportcron_path(ns, name, path, sizeof path, &err);
 *   kube_get(k, path, &doc, &err);                       // the object, parsed (pkg/json)
 *   char *patch = kube_annotation_patch(ops, n);         // CDI's JSON patch
 *   kube_patch(k, path, patch, &err);
 *   kube_free(k);
 *
 * The configuration is client-go's rest.InClusterConfig, which CDI's poller gets from
 * clientcmd.BuildConfigFromFlags("", "") in its pod: https://KUBERNETES_SERVICE_HOST:
 * KUBERNETES_SERVICE_PORT (an IPv6 address in brackets), the bearer token of the
 * service account's `token` file and the CA of its `ca.crt`, both under
 * /var/run/secrets/kubernetes.io/serviceaccount. VIMPORT_SERVICEACCOUNT_DIR moves that
 * directory; it exists for tests, which cannot write under /var/run/secrets. No proxy is
 * used for the API (CDI's poller sets cfg.Proxy to none). The token is read once (the
 * poller lives for seconds) and never appears in a log or message.
 *
 * Requests: GET with "Accept: application/json"; PATCH with "Content-Type:
 * application/json-patch+json" (types.JSONPatchType). Each is bounded
 * (KUBE_TIMEOUT_SECONDS), answers are read up to KUBE_MAX_RESPONSE bytes, and a status
 * other than 2xx is an error naming the status and the API's own "message".
 *
 * kube_annotation_patch() is CDI's patch exactly as Go's json.Marshal writes it:
 *   [{"op":"add","path":"/metadata/annotations/<key, ~ as ~0 and / as ~1>","value":"<v>"}]
 * in the order given; strings escaped as Go escapes them (", \, control characters,
 * <, >, &, U+2028, U+2029).
 *
 * Errors: 0, or -1 with `err`: VERR_USAGE for a missing configuration or a bad name,
 * VERR_IO for an unreadable token or CA file, VERR_SOURCE for the network and HTTP
 * statuses, VERR_FORMAT for an answer that is not JSON, VERR_NOMEM.
 */
#ifndef VIMPORT_KUBE_H
#define VIMPORT_KUBE_H

#include <stddef.h>

#include "core/error.h"
#include "json/json.h"

#define KUBE_SERVICEACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBE_TIMEOUT_SECONDS 30
#define KUBE_MAX_RESPONSE (4u << 20)
#define KUBE_JSON_PATCH "application/json-patch+json"

struct kube_client;

/* The in-cluster configuration, from `envp` ("NAME=value" strings, NULL-terminated). */
int kube_in_cluster(char *const envp[], struct kube_client **out, struct verr *err);
void kube_free(struct kube_client *k);

/* The API server's URL, "https://host:port" (for logs). */
const char *kube_server(const struct kube_client *k);

/* "/apis/cdi.kubevirt.io/v1beta1/namespaces/<ns>/dataimportcrons/<name>". The namespace
 * must be a DNS-1123 label and the name a DNS-1123 subdomain, as the API requires, so
 * nothing else can reach the path. */
int kube_dataimportcron_path(const char *ns, const char *name, char *out, size_t size,
                             struct verr *err);

/* GET `path`; *doc is the parsed answer (json_free). */
int kube_get(struct kube_client *k, const char *path, struct json_value **doc, struct verr *err);

/* PATCH `path` with a JSON patch document. */
int kube_patch(struct kube_client *k, const char *path, const char *patch, struct verr *err);

/* One "add" of an annotation. */
struct kube_annotation {
  const char *key;
  const char *value;
};

/* CDI's JSON patch of `n` annotations (see the top comment), a new string, or NULL when
 * out of memory. */
char *kube_annotation_patch(const struct kube_annotation *ops, size_t n);

/* The annotation `key` of the object `doc` (metadata.annotations), or NULL. */
const char *kube_annotation(const struct json_value *doc, const char *key);

#endif
