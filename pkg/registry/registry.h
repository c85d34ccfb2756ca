/* vimport registry: a client of the OCI distribution protocol, for containerDisks.
 *
 *   registry_parse_ref()      docker://host[:port]/repo[:tag|@sha256:hex]
 *   registry_open()           a client for one image reference (no network yet)
 *   registry_resolve()        /v2/ ping and authentication, the manifest (an index or
 *                             manifest list picks the platform by architecture), the
 *                             image config; every check CDI makes before a layer is read
 *   registry_blob_request()   the URL and the credentials that fetch one blob
 *
 * It knows the protocol and nothing of what follows: the layer bytes are fetched,
 * checked against their digest and unpacked by the registry source (pkg/source).
 *
 * References (ref.c): "docker://" then an optional host (a first component with '.' or
 * ':', or "localhost"; else Docker Hub: docker.io, with "library/" before a one-part
 * repository, fetched from registry-1.docker.io), a repository of lowercase path
 * components, then ":tag" (default "latest") and/or "@sha256:<64 hex>". With a digest,
 * the manifest's bytes must hash to it (a tag given with it is ignored, as docker does).
 * Other algorithms than sha256 are refused: they could not be checked.
 *
 * Authentication (client.c): the /v2/ ping answers 200 (anonymous), or 401 with a
 * WWW-Authenticate challenge: Basic (the credentials are sent, libcurl's basic auth),
 * or Bearer realm/service/scope (challenge.c): a token is fetched from the realm with
 * the credentials when given (anonymous otherwise), scope "repository:<repo>:pull",
 * then every request carries "Authorization: Bearer <token>". Blob downloads that the
 * registry redirects elsewhere (blob storage) must not carry that header: libcurl
 * drops custom Authorization headers and basic credentials when a redirect changes the
 * host, port or scheme (since 7.58 and 7.83), and the registry source relies on it.
 *
 * TLS: https by default, verified against the caller's CA blob (system trust plus the
 * configured directories, pkg/source/tls.c). With `insecure`, verification is off and
 * a registry that does not speak TLS is reached over plain http, as containers/image
 * does for CDI's insecureRegistries.
 *
 * Manifests (image.c): Docker schema 2 and OCI image manifests, Docker manifest lists
 * and OCI indexes (one level: an index inside an index is refused). The media type is
 * the body's "mediaType" when present, else the Content-Type. Schema 1 is refused. The
 * platform is the index entry with os "linux" (or none) and the wanted architecture
 * (default: the machine's, in Go's names: amd64, arm64, ...); none is containers/image's
 * "no image found in manifest list for architecture ..." message. When the architecture
 * was given and the image is a single manifest, its config must name it: CDI's
 * validateImagePlatformMatch message. Layers: tar, tar+gzip, tar+zstd in the Docker and
 * OCI spellings (also "nondistributable" and Docker "foreign" layers); any other media
 * type is refused naming it. Every digest is "sha256:<64 lowercase hex>".
 *
 * The config: Labels "containers.bootc" or "ostree.bootable" equal to "1" are CDI's
 * ErrBootcImageDetected; Env entries whose name contains "KUBEVIRT_IO_" become labels
 * as CDI's envsToLabels makes them (registry_env_label()).
 *
 * Limits: manifests and configs at most REGISTRY_MAX_DOCUMENT bytes (containers/image's
 * 4 MiB), REGISTRY_MAX_LAYERS layers, REGISTRY_MAX_LABELS labels.
 *
 * Errors: 0, or -1 with `err`: VERR_USAGE for a bad reference or option, VERR_SOURCE
 * for the network, HTTP statuses and authentication (naming the redacted URL and what
 * to do), VERR_FORMAT for a manifest or config that is not what it must be (also a
 * missing platform and a bootc image), VERR_CHECKSUM when the manifest does not match
 * the reference's digest, VERR_NOMEM. Credentials and tokens never appear in messages
 * or logs.
 */
#ifndef VIMPORT_REGISTRY_H
#define VIMPORT_REGISTRY_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive/archive.h"
#include "core/error.h"

#define REGISTRY_MAX_DOCUMENT (4u << 20)
#define REGISTRY_MAX_LAYERS 128u
#define REGISTRY_MAX_LABELS 16u
#define REGISTRY_DIGEST_MAX 72 /* "sha256:" + 64 hex + NUL, rounded */
#define REGISTRY_SCHEME "docker://"

/* ---- references (ref.c) ----------------------------------------------------------------- */

struct registry_ref {
  char host[256];   /* where to connect: "host[:port]" (Docker Hub: registry-1.docker.io) */
  char repo[256];   /* "library/fedora" */
  char tag[129];    /* "" when only a digest was given */
  char digest[REGISTRY_DIGEST_MAX]; /* "sha256:<hex>" or "" */
};

int registry_parse_ref(const char *url, struct registry_ref *out, struct verr *err);

/* The tag or digest to ask the manifest for: the digest when there is one. */
const char *registry_ref_reference(const struct registry_ref *ref);

/* Whether `s` is "sha256:" followed by exactly 64 lowercase hex digits. */
bool registry_digest_valid(const char *s);

/* ---- WWW-Authenticate (challenge.c) ------------------------------------------------------ */

enum registry_auth_scheme {
  REGISTRY_AUTH_NONE = 0,
  REGISTRY_AUTH_BASIC,
  REGISTRY_AUTH_BEARER,
};

struct registry_challenge {
  enum registry_auth_scheme scheme;
  char realm[1024]; /* Bearer: the token endpoint (an http(s) URL) */
  char service[256];
  char scope[512];
};

/* Parse one WWW-Authenticate value (`len` bytes, not NUL-terminated): the first
 * challenge whose scheme is Bearer or Basic (case-insensitive), its auth-params
 * (token or quoted-string values, backslash escapes) read into `out`. A Bearer challenge
 * needs an http(s) realm. Pure; VERR_SOURCE naming what is wrong. */
int registry_parse_challenge(const char *value, size_t len, struct registry_challenge *out,
                             struct verr *err);

/* The token of a token endpoint's JSON answer ("token", else "access_token"), copied
 * into `out` (at most `size` - 1 bytes of printable ASCII, else refused). */
int registry_parse_token(const void *body, size_t len, char *out, size_t size, struct verr *err);

/* ---- manifests and configs (image.c) ----------------------------------------------------- */

enum registry_layer_compression {
  REGISTRY_LAYER_TAR,
  REGISTRY_LAYER_GZIP,
  REGISTRY_LAYER_ZSTD,
};

struct registry_descriptor {
  char media_type[128];
  char digest[REGISTRY_DIGEST_MAX];
  int64_t size;                  /* -1 if the manifest gave none (an index entry) */
  char architecture[32];         /* index entries: platform.architecture, or "" */
  char os[32];
  char variant[32];
  enum registry_layer_compression compression; /* layers only */
};

struct registry_manifest {
  bool is_index;                 /* a manifest list or OCI index: see `manifests` */
  char media_type[128];
  struct registry_descriptor config;      /* an image manifest's config */
  struct registry_descriptor *layers;     /* owned, n_layers, in order (lowest first) */
  size_t n_layers;
  struct registry_descriptor *manifests;  /* owned, an index's entries */
  size_t n_manifests;
};

/* Parse a manifest or index body; `content_type` is the response's (may be NULL). */
int registry_parse_manifest(const void *body, size_t len, const char *content_type,
                            struct registry_manifest *out, struct verr *err);
void registry_manifest_free(struct registry_manifest *m);

/* The index entry for `architecture` (os linux or unset); *which is its position. */
int registry_pick_platform(const struct registry_manifest *index, const char *architecture,
                           size_t *which, struct verr *err);

/* The machine's architecture in Go's (and OCI's) names: "amd64", "arm64", "s390x"... */
const char *registry_machine_architecture(void);

struct registry_label {
  char key[256];
  char value[512];
};

struct registry_config {
  char architecture[32];
  char os[32];
  bool bootc;          /* containers.bootc=1 or ostree.bootable=1 */
  struct registry_label labels[REGISTRY_MAX_LABELS]; /* from KUBEVIRT_IO_ env, by key */
  size_t n_labels;
};

/* Parse an image config. Env entries that are not "NAME=value" strings are skipped, as
 * CDI skips them; more than REGISTRY_MAX_LABELS kubevirt labels is VERR_FORMAT. */
int registry_parse_config(const void *body, size_t len, struct registry_config *out,
                          struct verr *err);

/* CDI's envToLabel: "INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE" ->
 * "instancetype.kubevirt.io/default-instancetype". `name` must contain "KUBEVIRT_IO_".
 * Returns 0, or -1 when it does not fit `size`. */
int registry_env_label(const char *name, char *out, size_t size);

/* CDI's validateImagePlatformMatch, for a single manifest when an architecture was
 * asked for. */
int registry_check_architecture(const struct registry_config *config, const char *wanted,
                                struct verr *err);

/* ---- the disk rule (disk.c) ---------------------------------------------------------------
 * CDI's: the disk is a file under disk/ or ./disk/; whiteouts (".wh." names) and
 * directories are skipped. Refused, VERR_FORMAT: a name with a '..' component (CDI's
 * "content filepath is tainted"), a file in a subdirectory of disk/ (CDI's "image
 * directory contains another directory"), a symbolic or hard link, or any other
 * non-regular type there (CDI would copy a link as an empty file: no disk can be one),
 * and a second file under disk/ in the same layer (CDI keeps the first in tar order;
 * two disks are ambiguous, docs/cdi.md). */

/* Whether tar entry `e` is the disk (1, *name its "disk/..." name inside e), is not (0),
 * or is refused (-1). */
int registry_disk_entry(const struct tar_entry *e, const char **name, struct verr *err);

/* Read entries of `t` up to the disk file: 1 (its data is next: tar_read), 0 at the end
 * of the layer, -1. */
int registry_disk_find(struct tar_reader *t, struct tar_entry *e, struct verr *err);

/* After the disk file `disk_file`: the rest of the layer's entries, refusing another
 * file under disk/. 0 at the end marker, or -1. */
int registry_disk_rest(struct tar_reader *t, struct tar_entry *e, const char *disk_file,
                       struct verr *err);

/* ---- the client (client.c) --------------------------------------------------------------- */

#define REGISTRY_RETRIES_NONE UINT_MAX

struct registry_opts {
  const char *url;           /* docker://... */
  const char *user;          /* both or neither, as CDI sends credentials */
  const char *password;
  const char *ca_blob;       /* PEM CAs for CURLOPT_CAINFO_BLOB, or NULL: libcurl's trust */
  size_t ca_blob_len;
  bool insecure;             /* no TLS verification; plain http allowed */
  const char *architecture;  /* NULL or "": the machine's, and no config check */
  unsigned connect_timeout_s; /* 0: 30 */
  unsigned timeout_s;        /* whole request for documents; 0: 120 */
  unsigned stall_timeout_s;  /* no byte of a document for this long fails it; 0: 60 */
  /* A document request that failed on the network, stalled or got 408, 429 or 5xx is
   * made again after retry_delay_ms (doubled each time, at most 30 s), `retries` times
   * at most: 0: 5; REGISTRY_RETRIES_NONE: never (the blobs' source_opts semantics). */
  unsigned retries;
  unsigned retry_delay_ms;   /* 0: 1000 */
  const volatile sig_atomic_t *stop; /* non-zero: abort requests (VERR_CANCELLED) */
};

/* What registry_resolve() found. */
struct registry_image {
  char manifest_digest[REGISTRY_DIGEST_MAX]; /* of the image manifest's bytes */
  char index_digest[REGISTRY_DIGEST_MAX];    /* of the index, or "" */
  struct registry_manifest manifest;         /* the image manifest (owned) */
  struct registry_config config;
};

struct registry_client;

int registry_open(const struct registry_opts *opts, struct registry_client **out,
                  struct verr *err);
void registry_close(struct registry_client *c);

/* The redacted "docker://host/repo:tag" for messages. */
const char *registry_display(const struct registry_client *c);

/* Authenticate and read the manifest (and platform) and the config, with every check
 * above. *img is owned by the caller: registry_image_free(). */
int registry_resolve(struct registry_client *c, struct registry_image *img, struct verr *err);
void registry_image_free(struct registry_image *img);

/* How to fetch blob `digest`: its URL, and either an "Authorization: Bearer ..." header
 * line (`header`, "" when none) or basic credentials (*user, *password point into the
 * client, NULL when none). The header is a secret: wipe it after use. */
struct registry_blob_request {
  char url[2048];
  char header[4096];
  const char *user;
  const char *password;
};
int registry_blob_request(const struct registry_client *c, const char *digest,
                          struct registry_blob_request *out, struct verr *err);

#endif
