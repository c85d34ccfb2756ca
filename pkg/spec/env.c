/* vimport spec: CDI's importer environment contract.
 *
 * The CDI controller configures its importer pod through IMPORTER_* variables (and a few
 * unprefixed ones). vimport reads the same names so it can stand in for the importer,
 * plus VIMPORT_* overrides that let tests and Jobs move the paths. Variables that only
 * apply to http sources are ignored for other sources, as CDI's importer does, except
 * IMPORTER_CHECKSUM: it is checked for every source that streams bytes and refused for
 * a blank one, so that no checksum is ever silently dropped.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "spec-internal.h"
#include "spec.h"

#define ENV_ORIGIN "environment"
#define EXTRA_HEADER_PREFIX "IMPORTER_EXTRA_HEADER_"
#define EXTRA_HEADER_MAX_INDEX 9999

/* The value of `name` in envp (the first one wins, as with getenv), or NULL. */
static const char *env_get(char *const envp[], const char *name)
{
  size_t len = strlen(name);
  for (; envp != NULL && *envp != NULL; envp++)
    if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
      return *envp + len + 1;
  return NULL;
}

/* Like env_get, but an empty value counts as unset (CDI sets some variables to ""). */
static const char *env_value(char *const envp[], const char *name)
{
  const char *v = env_get(envp, name);
  return v != NULL && *v != '\0' ? v : NULL;
}

static int env_error(struct verr *err, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int env_error(struct verr *err, const char *name, const char *fmt, ...)
{
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return verr_set(err, VERR_USAGE, ENV_ORIGIN ": %s: %s", name, what);
}

static int env_prefix(struct verr *err, const char *name)
{
  return verr_prefix(err, ENV_ORIGIN ": %s", name);
}

static int env_string(char *const envp[], const char *name, char **slot, struct verr *err)
{
  const char *v = env_value(envp, name);
  if (v == NULL)
    return 0;
  return spec_set_string(slot, v, strlen(v), err);
}

static int env_bool(char *const envp[], const char *name, bool *out, struct verr *err)
{
  const char *v = env_value(envp, name);
  if (v != NULL && spec_parse_bool(v, out) == -1)
    return env_error(err, name, "\"%.32s\" is not a boolean; use true or false", v);
  return 0;
}

/* ---- Source --------------------------------------------------------------------------- */

static int env_source_kind(char *const envp[], struct import_spec *spec, struct verr *err)
{
  const char *v = env_value(envp, "IMPORTER_SOURCE");
  if (v == NULL)
    return env_error(err, "IMPORTER_SOURCE", "not set; set it to http, s3, none or file as CDI "
                     "does, or run with --spec FILE");
  if (strcmp(v, "http") == 0)
    spec->source.kind = SPEC_SOURCE_HTTP;
  else if (strcmp(v, "none") == 0 || strcmp(v, "blank") == 0)
    spec->source.kind = SPEC_SOURCE_BLANK;
  else if (strcmp(v, "file") == 0)
    spec->source.kind = SPEC_SOURCE_FILE;
  else if (strcmp(v, "registry") == 0)
    spec->source.kind = SPEC_SOURCE_REGISTRY;
  else if (strcmp(v, "s3") == 0)
    spec->source.kind = SPEC_SOURCE_S3;
  else if (strcmp(v, "gcs") == 0)
    spec->source.kind = SPEC_SOURCE_GCS;
  const char *feature = spec_refused_source_feature(v);
  if (feature != NULL)
    return env_error(err, "IMPORTER_SOURCE", "the %s source is %s: vimport does not replace "
                     "that CDI feature; run CDI's own importer for it", v, feature);
  /* CDI's words (importer.go newDataSource), then the variable and what vimport takes */
  if (spec->source.kind == SPEC_SOURCE_NONE)
    return verr_set(err, VERR_USAGE, "Unknown data source: %.32s (IMPORTER_SOURCE); vimport "
                    "imports http, s3, gcs, registry, none (blank) and file", v);
  return 0;
}

static int env_endpoint(char *const envp[], struct import_spec *spec, struct verr *err)
{
  if (spec->source.kind == SPEC_SOURCE_BLANK)
    return 0;
  const char *v = env_value(envp, "IMPORTER_ENDPOINT");
  if (v == NULL)
    return env_error(err, "IMPORTER_ENDPOINT", "not set; a %s source needs one",
                     spec_source_kind_name(spec->source.kind));
  if (spec->source.kind == SPEC_SOURCE_FILE)
    return spec_set_string(&spec->source.file_path, v, strlen(v), err);
  if (spec->source.kind == SPEC_SOURCE_REGISTRY) {
    if (strncmp(v, "docker://", 9) != 0)
      return env_error(err, "IMPORTER_ENDPOINT", "a registry source needs a docker://HOST/"
                       "REPOSITORY[:TAG|@sha256:DIGEST] reference (oci-archive: is not "
                       "supported)");
    return spec_set_string(&spec->source.http.url, v, strlen(v), err);
  }
  if (spec->source.kind == SPEC_SOURCE_GCS && strncmp(v, "gs://", 5) != 0 &&
      !spec_valid_http_url(v))
    return env_error(err, "IMPORTER_ENDPOINT", "a gcs source needs gs://BUCKET/OBJECT or "
                     "https://HOST/BUCKET/OBJECT");
  if (spec->source.kind != SPEC_SOURCE_GCS && !spec_valid_http_url(v))
    return env_error(err, "IMPORTER_ENDPOINT", spec->source.kind == SPEC_SOURCE_S3
                     ? "not an http:// or https:// URL with a host; an s3 source takes "
                       "http(s)://HOST[:PORT]/BUCKET/KEY (path style)"
                     : "not an http:// or https:// URL with a host");
  return spec_set_string(&spec->source.http.url, v, strlen(v), err);
}

/* Every source that streams bytes can be checked; a blank one has none. */
static int env_checksum(char *const envp[], struct import_spec *spec, struct verr *err)
{
  const char *checksum = env_value(envp, "IMPORTER_CHECKSUM");
  if (checksum == NULL)
    return 0;
  if (spec->source.kind == SPEC_SOURCE_BLANK)
    return env_error(err, "IMPORTER_CHECKSUM", "a blank image (IMPORTER_SOURCE=none) has no "
                     "source bytes to check; unset it");
  if (spec_parse_checksum(checksum, &spec->source.checksum, err) == -1)
    return env_prefix(err, "IMPORTER_CHECKSUM");
  return 0;
}

/* ---- http details --------------------------------------------------------------------- */

static int env_basic_auth(char *const envp[], struct spec_http *http, bool sign,
                          struct verr *err)
{
  const char *user = env_value(envp, "IMPORTER_ACCESS_KEY_ID");
  const char *password = env_value(envp, "IMPORTER_SECRET_KEY");
  if (user == NULL && password == NULL)
    return 0;
  /* CDI's http source sends basic auth only when both keys are non-empty
   * (http-datasource.go createHTTPReader): half a secret means an anonymous request. */
  if (user == NULL || password == NULL) {
    vlog_warn("spec", "%s is empty while %s is set: no credentials are sent, as CDI does; "
              "give the secret both accessKeyId and secretKey to authenticate",
              user == NULL ? "IMPORTER_ACCESS_KEY_ID" : "IMPORTER_SECRET_KEY",
              user == NULL ? "IMPORTER_SECRET_KEY" : "IMPORTER_ACCESS_KEY_ID");
    return 0;
  }
  if (!sign && strchr(user, ':') != NULL) /* an s3 key id signs, it is never sent as basic */
    return env_error(err, "IMPORTER_ACCESS_KEY_ID", "holds ':', which basic auth cannot carry "
                     "in a user name");
  if (spec_set_string(&http->basic_auth_user, user, strlen(user), err) == -1 ||
      spec_set_string(&http->basic_auth_password, password, strlen(password), err) == -1)
    return -1;
  return 0;
}

/* IMPORTER_EXTRA_HEADER_<n>, in order of n. CDI numbers them from 0 without gaps, but
 * a gap must not silently drop the headers after it, so every index is looked for. */
static int env_extra_headers(char *const envp[], struct import_spec *spec, struct verr *err)
{
  size_t prefix_len = strlen(EXTRA_HEADER_PREFIX);
  long next = 0;
  for (;;) {
    long lowest = -1;
    const char *line = NULL;
    for (char *const *e = envp; e != NULL && *e != NULL; e++) {
      if (strncmp(*e, EXTRA_HEADER_PREFIX, prefix_len) != 0)
        continue;
      char *end;
      const char *digits = *e + prefix_len;
      long n = strtol(digits, &end, 10);
      if (end == digits || *end != '=' || *digits < '0' || *digits > '9' || n < 0 ||
          n > EXTRA_HEADER_MAX_INDEX)
        return env_error(err, EXTRA_HEADER_PREFIX "<n>", "\"%.*s\" is not followed by a number "
                         "from 0 to %d", (int)strcspn(*e, "="), *e, EXTRA_HEADER_MAX_INDEX);
      if (n >= next && (lowest == -1 || n < lowest)) {
        lowest = n;
        line = end + 1;
      }
    }
    if (lowest == -1)
      return 0;
    if (spec_add_header_line(spec, line, strlen(line), false, err) == -1)
      return verr_prefix(err, ENV_ORIGIN ": " EXTRA_HEADER_PREFIX "%ld", lowest);
    next = lowest + 1;
  }
}

/* Lowercase wins over uppercase, as in curl. */
static int env_proxy(char *const envp[], const char *lower, const char *upper, char **slot,
                     struct verr *err)
{
  const char *v = env_value(envp, lower);
  if (v == NULL)
    v = env_value(envp, upper);
  if (v == NULL)
    return 0;
  return spec_set_string(slot, v, strlen(v), err);
}

/* What CDI gives a registry source: the http variables less the extra headers (CDI
 * has none for a registry), plus the architecture to pick from an index. */
static int env_registry_arch(char *const envp[], struct import_spec *spec, struct verr *err)
{
  const char *arch = env_value(envp, "IMPORTER_REGISTRY_IMAGE_ARCHITECTURE");
  if (arch == NULL)
    return 0;
  for (const char *p = arch; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) || p - arch >= 31)
      return env_error(err, "IMPORTER_REGISTRY_IMAGE_ARCHITECTURE", "\"%.32s\" is not an "
                       "architecture name such as amd64, arm64 or s390x", arch);
  return spec_set_string(&spec->source.registry_architecture, arch, strlen(arch), err);
}

static int env_http(char *const envp[], struct import_spec *spec, struct verr *err)
{
  struct spec_http *http = &spec->source.http;
  bool registry = spec->source.kind == SPEC_SOURCE_REGISTRY;
  /* CDI's s3 client takes the keys and the CA directory; no extra headers either */
  bool s3 = spec->source.kind == SPEC_SOURCE_S3;
  const char *cert_dir = env_value(envp, "IMPORTER_CERT_DIR");
  if (cert_dir != NULL) {
    if (spec_check_dir(cert_dir, err) == -1)
      return env_prefix(err, "IMPORTER_CERT_DIR");
    if (spec_set_string(&http->cert_dir, cert_dir, strlen(cert_dir), err) == -1)
      return -1;
  }
  if (env_basic_auth(envp, http, s3, err) == -1 ||
      (!registry && !s3 && env_extra_headers(envp, spec, err) == -1) ||
      (registry && env_registry_arch(envp, spec, err) == -1) ||
      env_bool(envp, "INSECURE_TLS", &http->insecure_skip_verify, err) == -1 ||
      env_proxy(envp, "http_proxy", "HTTP_PROXY", &http->http_proxy, err) == -1 ||
      env_proxy(envp, "https_proxy", "HTTPS_PROXY", &http->https_proxy, err) == -1 ||
      env_proxy(envp, "no_proxy", "NO_PROXY", &http->no_proxy, err) == -1)
    return -1;
  if (!registry && !s3 && spec_read_secret_header_tree(spec, spec->mounts.extra_headers, err) == -1)
    return verr_prefix(err, ENV_ORIGIN ": secret extra headers");
  return 0;
}

/* CDI's gcs source: the key file it mounts at /google/credentials.json when the
 * DataVolume has a secret (anonymous without). vimport also honours the certificate
 * directory, TLS and proxy variables for a gcs endpoint, which CDI's client ignores
 * (docs/cdi.md). */
static int env_gcs(char *const envp[], struct import_spec *spec, struct verr *err)
{
  struct spec_http *http = &spec->source.http;
  const char *key = env_value(envp, "GOOGLE_APPLICATION_CREDENTIALS");
  if (key != NULL && access(key, R_OK) != 0)
    return env_error(err, "GOOGLE_APPLICATION_CREDENTIALS", "cannot read %.300s (is the "
                     "DataVolume's secret mounted there, with a key credentials.json?): %s",
                     key, strerror(errno));
  if (key != NULL && spec_set_string(&spec->source.gcs_credentials, key, strlen(key), err) == -1)
    return -1;
  const char *cert_dir = env_value(envp, "IMPORTER_CERT_DIR");
  if (cert_dir != NULL && spec_check_dir(cert_dir, err) == -1)
    return env_prefix(err, "IMPORTER_CERT_DIR");
  if (cert_dir != NULL && spec_set_string(&http->cert_dir, cert_dir, strlen(cert_dir), err) == -1)
    return -1;
  if (env_bool(envp, "INSECURE_TLS", &http->insecure_skip_verify, err) == -1 ||
      env_proxy(envp, "http_proxy", "HTTP_PROXY", &http->http_proxy, err) == -1 ||
      env_proxy(envp, "https_proxy", "HTTPS_PROXY", &http->https_proxy, err) == -1 ||
      env_proxy(envp, "no_proxy", "NO_PROXY", &http->no_proxy, err) == -1)
    return -1;
  return 0;
}

/* ---- Target --------------------------------------------------------------------------- */

/* A decimal fraction such as "0.055", exactly as written, in [0, 1]: CDIConfig's
 * filesystemOverhead is a Percent ("0" to "1"), and 1 doubles the space set aside. */
static int env_fraction(const char *name, const char *s, double *out, struct verr *err)
{
  uint64_t mantissa = 0;
  double scale = 1;
  int digits = 0;
  const char *p = s;
  for (; *p >= '0' && *p <= '9'; p++, digits++)
    mantissa = mantissa * 10 + (uint64_t)(*p - '0');
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
      mantissa = mantissa * 10 + (uint64_t)(*p - '0');
      scale *= 10;
    }
  if (digits == 0 || digits > 18 || *p != '\0')
    return env_error(err, name, "\"%.32s\" is not a decimal fraction such as 0.055", s);
  double v = (double)mantissa / scale;
  if (v > 1)
    return env_error(err, name, "%.32s is above 1; the overhead is a fraction of the "
                     "volume, such as 0.055", s);
  *out = v;
  return 0;
}

/* CDI sets OWNER_UID to the owning PVC's metadata.uid (a UUID) and uses it only as the
 * ownerUID label of the progress metric: accept what can be a label value. */
static int env_owner_uid(const char *name, const char *s, char **out, struct verr *err)
{
  size_t len = strlen(s);
  if (len == 0 || len > 128)
    return env_error(err, name, "must be 1 to 128 characters (CDI sets the PVC's UID)");
  for (const char *p = s; *p; p++)
    if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\')
      return env_error(err, name, "\"%.32s\" has a character a metric label cannot hold; CDI "
                       "sets the PVC's UID, e.g. 0f9a2c1e-...", s);
  *out = strdup(s);
  return *out != NULL ? 0 : verr_set(err, VERR_NOMEM, "out of memory");
}

static int env_target(char *const envp[], struct import_spec *spec, struct verr *err)
{
  struct spec_target *t = &spec->target;
  const char *size = env_value(envp, "IMPORTER_IMAGE_SIZE");
  if (size != NULL && spec_parse_quantity(size, &t->requested_size, err) == -1)
    return env_prefix(err, "IMPORTER_IMAGE_SIZE");
  const char *overhead = env_value(envp, "FILESYSTEM_OVERHEAD");
  if (overhead != NULL &&
      env_fraction("FILESYSTEM_OVERHEAD", overhead, &t->filesystem_overhead, err) == -1)
    return -1;
  const char *uid = env_value(envp, "OWNER_UID");
  if (uid != NULL && env_owner_uid("OWNER_UID", uid, &t->owner_uid, err) == -1)
    return -1;
  if (env_bool(envp, "PREALLOCATION", &t->preallocation, err) == -1 ||
      env_string(envp, "VIMPORT_TARGET_PATH", &t->path, err) == -1 ||
      env_string(envp, "VIMPORT_TARGET_BLOCK_DEVICE", &t->block_device, err) == -1)
    return -1;
  return 0;
}

static int env_content_type(char *const envp[], struct import_spec *spec, struct verr *err)
{
  const char *v = env_value(envp, "IMPORTER_CONTENTTYPE");
  if (v == NULL || strcmp(v, "kubevirt") == 0)
    spec->content_type = SPEC_CONTENT_KUBEVIRT;
  else if (strcmp(v, "archive") == 0)
    spec->content_type = SPEC_CONTENT_ARCHIVE;
  else
    return env_error(err, "IMPORTER_CONTENTTYPE", "\"%.32s\" is not a content type; use "
                     "kubevirt or archive", v);
  return 0;
}

/* ---- scratch space ---------------------------------------------------------------------- */

/* CDI mounts a scratch volume at /scratch only after the importer asked for one
 * (scratchSpaceRequired). So it is used when it is there, and asked for when it is not:
 * asking while it is mounted would restart the pod forever. VIMPORT_SCRATCH_DIR moves
 * the path (tests); it too counts as mounted only when it is a directory. */
static int env_scratch(char *const envp[], struct import_spec *spec, struct verr *err)
{
  const char *dir = env_value(envp, "VIMPORT_SCRATCH_DIR");
  if (dir == NULL)
    dir = SPEC_DEFAULT_SCRATCH_DIR;
  struct stat st;
  if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
    return 0;
  return spec_set_string(&spec->scratch_path, dir, strlen(dir), err);
}

/* ---- vimport extensions --------------------------------------------------------------- */

static int env_vimport(char *const envp[], struct import_spec *spec, struct verr *err)
{
  const char *hash = env_value(envp, "VIMPORT_EXPECTED_BLOCK_HASH");
  if (hash != NULL && spec_parse_block_hash(hash, &spec->block_hash, err) == -1)
    return env_prefix(err, "VIMPORT_EXPECTED_BLOCK_HASH");
  const char *length = env_value(envp, "VIMPORT_BLOCK_HASH_LENGTH");
  if (length != NULL && spec_parse_quantity(length, &spec->block_hash.length, err) == -1)
    return env_prefix(err, "VIMPORT_BLOCK_HASH_LENGTH");
  if (env_string(envp, "VIMPORT_TERMINATION_MESSAGE_PATH", &spec->termination_message_path,
                 err) == -1 ||
      env_string(envp, "VIMPORT_EXTRA_HEADERS_DIR", &spec->mounts.extra_headers, err) == -1 ||
      /* CDI's controller names the mount it made; its importer reads /proxycerts anyway */
      env_string(envp, "IMPORTER_PROXY_CERT_DIR", &spec->mounts.proxy_certs, err) == -1)
    return -1;
  return 0;
}

/* ---- published checksum files and their OpenPGP signature ------------------------------ */

/* VIMPORT_CHECKSUM_URL (and _NAME), VIMPORT_CHECKSUM_SIGNATURE_URL,
 * VIMPORT_CHECKSUM_KEYRING: vimport.checksumURL and an OpenPGP checksumSignature. The
 * cross-field rules are the YAML ones; none is silently dropped. */
static int env_checksum_file(char *const envp[], struct import_spec *spec, struct verr *err)
{
  const char *url = env_value(envp, "VIMPORT_CHECKSUM_URL");
  const char *sig = env_value(envp, "VIMPORT_CHECKSUM_SIGNATURE_URL");
  const char *keyring = env_value(envp, "VIMPORT_CHECKSUM_KEYRING");
  const char *name = env_value(envp, "VIMPORT_CHECKSUM_NAME");
  if (url == NULL) {
    const char *stray = sig ? "VIMPORT_CHECKSUM_SIGNATURE_URL" : keyring ?
                        "VIMPORT_CHECKSUM_KEYRING" : name ? "VIMPORT_CHECKSUM_NAME" : NULL;
    return stray ? env_error(err, stray, "applies only with VIMPORT_CHECKSUM_URL") : 0;
  }
  if (!spec_valid_http_url(url) && url[0] != '/' && strncmp(url, "file:///", 8) != 0)
    return env_error(err, "VIMPORT_CHECKSUM_URL", "not an http(s) URL, a file:/// URL or an "
                     "absolute path");
  if (spec->source.checksum.alg != SPEC_CHECKSUM_NONE)
    return env_error(err, "VIMPORT_CHECKSUM_URL", "give either IMPORTER_CHECKSUM or "
                     "VIMPORT_CHECKSUM_URL, not both");
  if (spec->source.kind == SPEC_SOURCE_BLANK || spec->source.kind == SPEC_SOURCE_NBD)
    return env_error(err, "VIMPORT_CHECKSUM_URL", "a blank or nbd source has no served "
                     "bytes to check; drop it");
  if (sig != NULL && keyring == NULL)
    return env_error(err, "VIMPORT_CHECKSUM_SIGNATURE_URL", "needs VIMPORT_CHECKSUM_KEYRING "
                     "(the publisher's OpenPGP key) to check it with");
  if (sig != NULL && !spec_valid_http_url(sig))
    return env_error(err, "VIMPORT_CHECKSUM_SIGNATURE_URL", "not an http(s) URL");
  if (keyring != NULL && access(keyring, R_OK) != 0)
    return env_error(err, "VIMPORT_CHECKSUM_KEYRING", "cannot read %.300s (is the secret or "
                     "config map mounted there?): %s", keyring, strerror(errno));
  struct spec_checksum_signature *cs = &spec->checksum_signature;
  cs->given = keyring != NULL;
  if (spec_set_string(&spec->checksum_url, url, strlen(url), err) == -1 ||
      (name && spec_set_string(&spec->checksum_name, name, strlen(name), err) == -1) ||
      (sig && spec_set_string(&cs->detached.url, sig, strlen(sig), err) == -1) ||
      (keyring && spec_set_string(&cs->keyring, keyring, strlen(keyring), err) == -1))
    return -1;
  return 0;
}

/* VIMPORT_BLOCK_HASH_URL, with VIMPORT_BLOCK_HASH_SIGNATURE_URL and
 * VIMPORT_BLOCK_HASH_KEYRING: vimport.blockHashURL and its OpenPGP signature. */
static int env_block_hash_url(char *const envp[], struct import_spec *spec, struct verr *err)
{
  const char *url = env_value(envp, "VIMPORT_BLOCK_HASH_URL");
  const char *sig = env_value(envp, "VIMPORT_BLOCK_HASH_SIGNATURE_URL");
  const char *keyring = env_value(envp, "VIMPORT_BLOCK_HASH_KEYRING");
  if (url == NULL) {
    const char *stray = sig ? "VIMPORT_BLOCK_HASH_SIGNATURE_URL" : keyring ?
                        "VIMPORT_BLOCK_HASH_KEYRING" : NULL;
    return stray ? env_error(err, stray, "applies only with VIMPORT_BLOCK_HASH_URL") : 0;
  }
  if (!spec_valid_http_url(url) && url[0] != '/' && strncmp(url, "file:///", 8) != 0)
    return env_error(err, "VIMPORT_BLOCK_HASH_URL", "not an http(s) URL, a file:/// URL or "
                     "an absolute path");
  if (spec->block_hash.has_expected)
    return env_error(err, "VIMPORT_BLOCK_HASH_URL", "give either VIMPORT_EXPECTED_BLOCK_HASH "
                     "or VIMPORT_BLOCK_HASH_URL, not both");
  if (spec->source.kind == SPEC_SOURCE_BLANK || spec->source.kind == SPEC_SOURCE_NBD ||
      spec->content_type == SPEC_CONTENT_ARCHIVE)
    return env_error(err, "VIMPORT_BLOCK_HASH_URL", "applies only to an image fetched by URL "
                     "(not a blank source, not an archive); give VIMPORT_EXPECTED_BLOCK_HASH");
  if (sig != NULL && keyring == NULL)
    return env_error(err, "VIMPORT_BLOCK_HASH_SIGNATURE_URL", "needs "
                     "VIMPORT_BLOCK_HASH_KEYRING (the publisher's OpenPGP key)");
  if (sig != NULL && !spec_valid_http_url(sig))
    return env_error(err, "VIMPORT_BLOCK_HASH_SIGNATURE_URL", "not an http(s) URL");
  if (keyring != NULL && access(keyring, R_OK) != 0)
    return env_error(err, "VIMPORT_BLOCK_HASH_KEYRING", "cannot read %.300s (is the secret "
                     "or config map mounted there?): %s", keyring, strerror(errno));
  struct spec_checksum_signature *bs = &spec->block_hash_signature;
  bs->given = keyring != NULL;
  if (spec_set_string(&spec->block_hash_url, url, strlen(url), err) == -1 ||
      (sig && spec_set_string(&bs->detached.url, sig, strlen(sig), err) == -1) ||
      (keyring && spec_set_string(&bs->keyring, keyring, strlen(keyring), err) == -1))
    return -1;
  return 0;
}

/* ---- registry node pull ------------------------------------------------------------- */

/* CDI's controller sets these in the importer of a node pull; the server container
 * writes the ready file (pkg/nodepull). */
static int env_node_pull(char *const envp[], struct import_spec *spec, struct verr *err)
{
  struct spec_node_pull *np = &spec->node_pull;
  np->ready_timeout_seconds = SPEC_DEFAULT_READY_FILE_TIMEOUT_SECONDS;
  if (env_string(envp, "IMPORTER_READY_FILE", &np->ready_file, err) == -1 ||
      env_string(envp, "IMPORTER_DONE_FILE", &np->done_file, err) == -1)
    return -1;
  const char *method = env_value(envp, "IMPORTER_PULL_METHOD");
  if (method != NULL && strcmp(method, "node") != 0 && strcmp(method, "pod") != 0)
    return env_error(err, "IMPORTER_PULL_METHOD", "\"%.32s\" is not a pull method; CDI sets "
                     "node or pod", method);
  np->node = method != NULL && strcmp(method, "node") == 0;
  const char *timeout = env_value(envp, "VIMPORT_READY_FILE_TIMEOUT");
  if (timeout != NULL) {
    char *end;
    unsigned long v = strtoul(timeout, &end, 10);
    if (*end != '\0' || v == 0 || v > 3600 || timeout[0] == '-')
      return env_error(err, "VIMPORT_READY_FILE_TIMEOUT", "\"%.32s\" is not a number of "
                       "seconds 1-3600", timeout);
    np->ready_timeout_seconds = (unsigned)v;
  }
  return 0;
}

static void cleanup_spec(struct import_spec **s) { spec_free(*s); }

int spec_load_env(char *const envp[], struct import_spec **out, struct verr *err)
{
  __attribute__((cleanup(cleanup_spec))) struct import_spec *spec = NULL;
  if (spec_new_defaults(ENV_ORIGIN, &spec, err) == -1)
    return -1;
  if (env_vimport(envp, spec, err) == -1 ||
      env_source_kind(envp, spec, err) == -1 ||
      env_endpoint(envp, spec, err) == -1 ||
      env_checksum(envp, spec, err) == -1 ||
      env_checksum_file(envp, spec, err) == -1 ||
      (spec_source_is_http(spec->source.kind) && env_http(envp, spec, err) == -1) ||
      (spec->source.kind == SPEC_SOURCE_GCS && env_gcs(envp, spec, err) == -1) ||
      env_content_type(envp, spec, err) == -1 ||
      env_block_hash_url(envp, spec, err) == -1 ||
      env_target(envp, spec, err) == -1 ||
      env_scratch(envp, spec, err) == -1 ||
      env_node_pull(envp, spec, err) == -1 ||
      spec_check_complete(spec, err) == -1)
    return -1;
  *out = TAKE_PTR(spec);
  return 0;
}
