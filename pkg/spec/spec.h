/* vimport spec: the import configuration, from a DataVolume-style YAML file or from
 * CDI's importer environment variables, as one plain struct the pipeline reads.
 *
 *   struct import_spec *spec;
 *   if (spec_load_yaml_file("dv.yaml", &spec, &err) == -1) ...   // vimport import --spec
 *   if (spec_load_env(environ, &spec, &err) == -1) ...           // CDI's env contract
 *   ...read spec->source, spec->target, ...
 *   spec_free(spec);
 *
 * Loading validates everything it can without touching the network: unknown keys, wrong
 * types, quantities, checksums, header syntax, and it reads mounted secrets (basic-auth
 * files, secret extra headers) so a missing mount fails before any byte is fetched.
 * Every key is described in docs/spec.md.
 *
 * Errors: every function returning int returns 0 on success or -1 with `err` filled.
 * The code is VERR_USAGE for bad input (the message names the origin, the line for
 * YAML, the key path, the cause and the fix, e.g.
 *   "dv.yaml:12: spec.source.http.urll: unknown key; did you mean \"url\"?"),
 * VERR_IO when a file or mounted secret cannot be read, VERR_NOMEM on allocation failure.
 * Messages never contain secret values.
 *
 * Secrets: the basic-auth pair and the values of headers read from secrets are held in
 * the struct; never print them yourself, use spec_describe(). spec_free() wipes them.
 */
#ifndef VIMPORT_SPEC_H
#define VIMPORT_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Largest spec file or buffer accepted: a DataVolume is a few hundred bytes. */
#define SPEC_MAX_YAML_BYTES (256u * 1024u)
/* Largest mounted secret file (one header or one credential). */
#define SPEC_MAX_SECRET_FILE_BYTES (64u * 1024u)
/* Most headers in total (extraHeaders + secret headers + env headers). */
#define SPEC_MAX_HEADERS 256u

/* Defaults, also listed in docs/spec.md. */
#define SPEC_DEFAULT_TARGET_PATH "/data/disk.img"
#define SPEC_DEFAULT_TARGET_BLOCK_DEVICE "/dev/cdi-block-volume"
#define SPEC_DEFAULT_TERMINATION_MESSAGE_PATH "/dev/termination-log"
#define SPEC_DEFAULT_MOUNT_CERTS "/certs"
#define SPEC_DEFAULT_MOUNT_SECRET "/etc/vimport/secret"
#define SPEC_DEFAULT_MOUNT_EXTRA_HEADERS "/extraheaders"
#define SPEC_DEFAULT_MOUNT_PROXY_CERTS "/proxycerts" /* CDI: common.ImporterProxyCertDir */
#define SPEC_DEFAULT_SCRATCH_DIR "/scratch" /* CDI: common.ScratchDataDir */
#define SPEC_DEFAULT_BLOCK_HASH_DIGEST "sha256"
#define SPEC_DEFAULT_BLOCK_SIZE (64u * 1024u)
#define SPEC_DEFAULT_WINDOW_SIZE (64ull * 1024 * 1024)
#define SPEC_DEFAULT_RETRIES 5u
#define SPEC_DEFAULT_STALL_TIMEOUT_SECONDS 60u
#define SPEC_DEFAULT_READY_FILE_TIMEOUT_SECONDS 60u /* CDI's readyFileTimeoutSeconds */

enum spec_source_kind {
  SPEC_SOURCE_NONE = 0, /* never in a loaded spec: loading requires exactly one kind */
  SPEC_SOURCE_HTTP,     /* spec.source.http / IMPORTER_SOURCE=http */
  SPEC_SOURCE_BLANK,    /* spec.source.blank / IMPORTER_SOURCE=none|blank */
  SPEC_SOURCE_FILE,     /* spec.source.file (ours) / IMPORTER_SOURCE=file */
  SPEC_SOURCE_NBD,      /* spec.source.nbd (ours): an NBD export */
  SPEC_SOURCE_REGISTRY, /* spec.source.registry / IMPORTER_SOURCE=registry: a containerDisk */
  SPEC_SOURCE_S3,       /* spec.source.s3 / IMPORTER_SOURCE=s3: an object, path-style URL */
  SPEC_SOURCE_GCS,      /* spec.source.gcs / IMPORTER_SOURCE=gcs: a Cloud Storage object */
};

enum spec_volume_mode {
  SPEC_VOLUME_MODE_UNSET = 0, /* not given (always so from the env): the caller decides */
  SPEC_VOLUME_MODE_FILESYSTEM,
  SPEC_VOLUME_MODE_BLOCK,
};

enum spec_content_type {
  SPEC_CONTENT_KUBEVIRT = 0, /* a disk image (default) */
  SPEC_CONTENT_ARCHIVE,      /* a tar archive to unpack into the filesystem */
};

enum spec_checksum_alg {
  SPEC_CHECKSUM_NONE = 0,
  SPEC_CHECKSUM_MD5,    /* 32 hex digits */
  SPEC_CHECKSUM_SHA1,   /* 40 */
  SPEC_CHECKSUM_SHA256, /* 64 */
  SPEC_CHECKSUM_SHA512, /* 128 */
};

/* A checksum of the source bytes exactly as served, e.g. "sha256:<hex>". */
struct spec_checksum {
  enum spec_checksum_alg alg; /* SPEC_CHECKSUM_NONE: no checksum given */
  char hex[129];              /* lowercase hex digits, NUL-terminated; "" when NONE */
};

/* One extra HTTP request header. */
struct spec_header {
  char *name;  /* owned; the field name, e.g. "X-Auth" (token characters only) */
  char *value; /* owned; the field value (no CR, LF or NUL); secret when `secret` */
  bool secret; /* read from a mounted secret: never log `value` */
};

struct spec_http {
  char *url;                    /* owned; http:// or https:// (may hold userinfo: redact) */
  struct spec_header *headers;  /* owned array of n_headers, in the order given */
  size_t n_headers;
  char *basic_auth_user;        /* owned; NULL: no basic auth. Secret (an access key id) */
  char *basic_auth_password;    /* owned; NULL: none. Secret */
  char *cert_dir;               /* owned; directory of CA bundle files; NULL: system CAs */
  bool insecure_skip_verify;    /* do not verify the server's TLS certificate */
  char *http_proxy;             /* owned; NULL if unset (env only). May hold userinfo */
  char *https_proxy;            /* owned; NULL if unset (env only). May hold userinfo */
  char *no_proxy;               /* owned; NULL if unset (env only) */
};

struct spec_source {
  enum spec_source_kind kind;
  /* The expected checksum of the bytes as served, for every streamed kind (http, file,
   * stdin): spec.source.<kind>.checksum / IMPORTER_CHECKSUM. A blank or nbd source has
   * no byte stream to check and refuses one. */
  struct spec_checksum checksum;
  /* kind SPEC_SOURCE_HTTP, and SPEC_SOURCE_REGISTRY: its url is docker://..., its
   * credentials, CAs, TLS and proxies are the registry's; it has no headers; and
   * SPEC_SOURCE_S3: its url is http(s)://host/bucket/key, basic_auth_user/password are
   * the access key id and secret key that sign, it has no headers. Else zeroed */
  struct spec_http http;
  char *gcs_credentials;  /* owned; kind SPEC_SOURCE_GCS: the service-account key file
                           * (GOOGLE_APPLICATION_CREDENTIALS, or secretRef's
                           * credentials.json); NULL: anonymous. Its url is in http.url
                           * (gs://bucket/object or https://host/bucket/object), its CAs
                           * in http.cert_dir, http.insecure_skip_verify applies */
  char *registry_architecture; /* owned; registry: IMPORTER_REGISTRY_IMAGE_ARCHITECTURE /
                                * platform.architecture; NULL: the machine's */
  char *file_path;        /* owned; kind == SPEC_SOURCE_FILE: a path, "-" means stdin */
  char *nbd_uri;          /* owned; kind == SPEC_SOURCE_NBD: nbd://, nbds://, nbd+unix://
                           * (may hold userinfo: redact) */
};

/* Where the guest disk goes. The spec records both paths and the volume mode;
 * the caller decides whether it writes a file or a block device. */
struct spec_target {
  enum spec_volume_mode volume_mode;
  uint64_t requested_size;     /* bytes from storage.resources.requests.storage or
                                * IMPORTER_IMAGE_SIZE; 0 if not given */
  char *path;                  /* owned; the image file on a Filesystem volume */
  char *block_device;          /* owned; the device node of a Block volume */
  bool preallocation;          /* write zeros instead of leaving holes */
  double filesystem_overhead;  /* fraction in [0, 1) reserved for the filesystem;
                                * < 0 if not given (env FILESYSTEM_OVERHEAD only) */
  char *owner_uid;             /* owned; CDI's OWNER_UID: the UID of the PVC that owns the
                                * import, the ownerUID label of the progress metric; NULL */
};

/* The block hash of the guest-visible content (see pkg/blkhash). */
struct spec_block_hash {
  char *digest;                /* owned; OpenSSL digest name; "sha256" by default, or the
                                * one named by expectedBlockHash */
  uint32_t block_size;         /* power of two, 512 B .. 64 MiB; 64 KiB by default */
  bool has_expected;           /* expectedBlockHash was given */
  unsigned char expected[64];  /* its bytes when has_expected */
  unsigned expected_len;       /* digest size in bytes when has_expected, else 0 */
  char expected_hex[129];      /* its lowercase hex when has_expected, else "" */
  uint64_t length;             /* vimport.blockHashLength: bytes the expected hash covers;
                                * 0: not given (verify hashes the whole file or device,
                                * import accepts the image's or the volume's length).
                                * Refused without expectedBlockHash */
};

/* Directories where Kubernetes mounts what the spec refers to by name. */
struct spec_mounts {
  char *certs;         /* owned; CA bundles of certConfigMap (CDI: /certs) */
  char *secret;        /* owned; files accessKeyId and secretKey of secretRef */
  char *extra_headers; /* owned; one subdirectory per secretExtraHeaders secret */
  char *proxy_certs;   /* owned; the cluster-wide proxy CA bundle (CDI: /proxycerts),
                        * trusted for every https fetch when the directory exists */
};

/* vimport.signature: a detached signature over the source bytes as served, checked by
 * pkg/trust's signature tap. The enum follows pkg/trust's enum signature_format. Paths
 * are mounted files (a Secret or ConfigMap); they were readable when the spec loaded. */
enum spec_signature_format {
  SPEC_SIGNATURE_AUTO = 0, /* base64 text or raw bytes, detected */
  SPEC_SIGNATURE_DER,
  SPEC_SIGNATURE_BASE64,
  SPEC_SIGNATURE_GLANCE,   /* Glance img_signature; hash_method and key_type required */
};

struct spec_signature {
  bool given;                        /* vimport.signature is present */
  char *url;                         /* owned; http(s) URL of the signature, or NULL */
  char *path;                        /* owned; or a mounted file; exactly one is set */
  enum spec_signature_format format;
  char *public_key;                  /* owned; PEM public key file, or NULL */
  char *certificate;                 /* owned; or PEM certificate file; exactly one */
  char *ca_bundle;                   /* owned; PEM CA bundle; set iff certificate is */
  char *hash_method;                 /* owned; as written ("sha256", "SHA-256"), or NULL */
  char *key_type;                    /* owned; as written ("RSA-PSS", "ECC_SECP384R1"), or NULL */
};

/* vimport.checksumSignature: the signature of the checksum file itself, so that a mirror
 * that replaces the image and the checksum file together is caught. Either OpenPGP (a
 * keyring; no url/path means the checksum file is clearsigned) or, as vimport.signature
 * over the image, a detached raw/X.509 signature (publicKey or certificate + caBundle,
 * url or path required). */
struct spec_checksum_signature {
  bool given;                        /* vimport.checksumSignature or its env is present */
  struct spec_signature detached;    /* url, path, format, publicKey, certificate, caBundle,
                                      * hashMethod, keyType, as in vimport.signature */
  char *keyring;                     /* owned; OpenPGP public keys (gpg --export [--armor])
                                      * in a mounted file, or NULL */
};

/* CDI's registry node pull (pkg/nodepull): set only from the environment, where CDI's
 * controller sets them for `pullMethod: node` (import-controller.go
 * setRegistryNodeImportEnvVars). The spec records them; cmd/vimport import acts. */
struct spec_node_pull {
  char *ready_file; /* owned; IMPORTER_READY_FILE: wait for it before a non-blank source
                     * (and, for http, it names the disk file); NULL: none */
  char *done_file;  /* owned; IMPORTER_DONE_FILE: created after a successful import; NULL */
  bool node;        /* IMPORTER_PULL_METHOD=node: the labels come from the server's /info */
  unsigned ready_timeout_seconds; /* VIMPORT_READY_FILE_TIMEOUT (tests); CDI's 60 */
};

struct import_spec {
  char *origin;                   /* owned; file name given to the loader, or "environment" */
  char *name;                     /* owned; metadata.name, NULL if not given */
  enum spec_content_type content_type;
  struct spec_source source;
  struct spec_target target;
  struct spec_block_hash block_hash;
  struct spec_mounts mounts;
  char *termination_message_path; /* owned; CDI reads the first line, <= 4096 bytes */
  char *scratch_path;             /* owned; NULL: no scratch space */
  uint64_t window_size;           /* bytes the qcow2 decoder may hold out of order */
  uint64_t memory_limit;          /* overall buffer budget in bytes; 0 if not given.
                                   * When given, window_size <= memory_limit */
  unsigned retries;               /* source retries after a transient failure */
  unsigned stall_timeout_seconds; /* abort a transfer that moves no byte this long */
  char **allowed_formats;         /* owned array of n_allowed_formats owned names
                                   * (spec_format_known()); empty: any format */
  size_t n_allowed_formats;
  bool require_known_content;     /* vimport.requireKnownContent: refuse a raw image with
                                   * neither a partition table nor a known filesystem
                                   * (default false: only a warning in the message) */
  char *checksum_url;             /* owned; vimport.checksumURL: a SHA256SUMS / CHECKSUM file
                                   * (http(s) URL or local path, may hold userinfo: redact);
                                   * NULL: none. Excludes spec.source.<kind>.checksum */
  char *checksum_name;            /* owned; vimport.checksumName: the name to look up in it;
                                   * NULL: the last path segment of the source URL or path */
  struct spec_signature signature; /* vimport.signature */
  struct spec_checksum_signature checksum_signature; /* vimport.checksumSignature */
  char *block_hash_url;           /* owned; vimport.blockHashURL: a list in `vimport sum`'s
                                   * format (http(s) URL or local path, may hold userinfo:
                                   * redact) whose line for the image's file name becomes
                                   * the expected block hash; excludes expectedBlockHash */
  struct spec_checksum_signature block_hash_signature; /* vimport.blockHashSignature: as
                                   * checksumSignature, over the blockHashURL list */
  struct spec_node_pull node_pull;   /* environment only */
};

/* Parse the YAML file at `path` (at most SPEC_MAX_YAML_BYTES). On success *out owns a
 * new spec (free with spec_free). Messages start with "<path>:<line>: ". */
int spec_load_yaml_file(const char *path, struct import_spec **out, struct verr *err);

/* Same for an in-memory document of `len` bytes (need not be NUL-terminated; NUL bytes
 * are refused). `name` is the origin used in messages. Mounted secrets named by the
 * document are read from the mount directories, as from a file. */
int spec_load_yaml_buffer(const char *buf, size_t len, const char *name,
                          struct import_spec **out, struct verr *err);

/* Build the spec from CDI's importer environment: `envp` is a NULL-terminated array of
 * "NAME=value" strings (pass `environ`, or an array in tests). IMPORTER_* variables,
 * INSECURE_TLS, PREALLOCATION, FILESYSTEM_OVERHEAD, OWNER_UID, the proxy variables and
 * VIMPORT_* overrides are read; see docs/spec.md. Secret extra headers mounted under
 * the extra-headers directory are read too. Messages start with "environment: NAME: ". */
int spec_load_env(char *const envp[], struct import_spec **out, struct verr *err);

/* Whether the volume is the block device rather than the image file, as CDI decides:
 * the volume mode when the spec gives one, else whether target.block_device exists and
 * is a block device (CDI mounts /dev/cdi-block-volume only for Block volumes). */
bool spec_target_is_block(const struct import_spec *spec);

/* Free the spec and every string it owns, wiping secrets first. NULL is fine. */
void spec_free(struct import_spec *spec);

/* A one-line, loggable summary of the spec: URLs without userinfo or query, secret
 * values and sensitive-looking header values shown as "<redacted>". Returns a string the
 * caller frees, or NULL when out of memory. */
char *spec_describe(const struct import_spec *spec);

/* Parse a Kubernetes quantity as a whole number of bytes: digits with an optional
 * decimal fraction, then an optional suffix: k M G T P E (powers of 1000), Ki Mi Gi Ti
 * Pi Ei (powers of 1024), m (1/1000), or an exponent e<n> / E<n> ("1e3"). The result
 * must be an exact whole number that fits in 64 bits ("1.5Gi" yes, "0.5" no). Refused:
 * signs, spaces, "64MB", empty strings. */
int spec_parse_quantity(const char *s, uint64_t *bytes, struct verr *err);

/* Parse "<alg>:<hex>" the way CDI's webhook does: alg md5|sha1|sha256|sha512, hex of
 * 32/40/64/128 digits in either case. Fills *out with the lowercase form. */
int spec_parse_checksum(const char *s, struct spec_checksum *out, struct verr *err);

/* Parse "<digest>:<hex>" where digest is any OpenSSL digest name and the hex length is
 * twice that digest's size. Fills bh->digest (replacing it), has_expected, expected,
 * expected_len and expected_hex. */
int spec_parse_block_hash(const char *s, struct spec_block_hash *bh, struct verr *err);

/* Name of a checksum algorithm ("sha256"), "none" for SPEC_CHECKSUM_NONE. */
const char *spec_checksum_alg_name(enum spec_checksum_alg alg);

/* "http", "registry", "gcs", "blank", "file", "nbd" ("none" for SPEC_SOURCE_NONE). */
const char *spec_source_kind_name(enum spec_source_kind kind);

/* Whether `name` is an image format allowedFormats accepts ("raw", "qcow2", ...). */
bool spec_format_known(const char *name);

#endif
