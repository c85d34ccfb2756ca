/* vimport spec: lifecycle, defaults, headers and the loggable summary. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>

#include "core/cleanup.h"
#include "spec-internal.h"
#include "spec.h"

int spec_set_string(char **slot, const char *s, size_t len, struct verr *err)
{
  char *copy = strndup(s, len);
  if (copy == NULL)
    return verr_sys(err, VERR_NOMEM, errno, "cannot copy a spec value");
  free(*slot);
  *slot = copy;
  return 0;
}

static int set_default(char **slot, const char *value, struct verr *err)
{
  return spec_set_string(slot, value, strlen(value), err);
}

int spec_new_defaults(const char *origin, struct import_spec **out, struct verr *err)
{
  struct import_spec *spec = calloc(1, sizeof *spec);
  if (spec == NULL)
    return verr_sys(err, VERR_NOMEM, errno, "cannot allocate the import spec");
  spec->content_type = SPEC_CONTENT_KUBEVIRT;
  spec->target.filesystem_overhead = -1;
  spec->block_hash.block_size = SPEC_DEFAULT_BLOCK_SIZE;
  spec->window_size = SPEC_DEFAULT_WINDOW_SIZE;
  spec->retries = SPEC_DEFAULT_RETRIES;
  spec->stall_timeout_seconds = SPEC_DEFAULT_STALL_TIMEOUT_SECONDS;
  if (set_default(&spec->origin, origin, err) == -1 ||
      set_default(&spec->target.path, SPEC_DEFAULT_TARGET_PATH, err) == -1 ||
      set_default(&spec->target.block_device, SPEC_DEFAULT_TARGET_BLOCK_DEVICE, err) == -1 ||
      set_default(&spec->termination_message_path, SPEC_DEFAULT_TERMINATION_MESSAGE_PATH,
                  err) == -1 ||
      set_default(&spec->block_hash.digest, SPEC_DEFAULT_BLOCK_HASH_DIGEST, err) == -1 ||
      set_default(&spec->mounts.certs, SPEC_DEFAULT_MOUNT_CERTS, err) == -1 ||
      set_default(&spec->mounts.secret, SPEC_DEFAULT_MOUNT_SECRET, err) == -1 ||
      set_default(&spec->mounts.extra_headers, SPEC_DEFAULT_MOUNT_EXTRA_HEADERS, err) == -1 ||
      set_default(&spec->mounts.proxy_certs, SPEC_DEFAULT_MOUNT_PROXY_CERTS, err) == -1) {
    spec_free(spec);
    return -1;
  }
  *out = spec;
  return 0;
}

/* Free a string that may hold a secret, wiping it first. */
static void free_secret(char *s)
{
  if (s != NULL)
    explicit_bzero(s, strlen(s));
  free(s);
}

static void free_http(struct spec_http *http)
{
  free(http->url);
  for (size_t i = 0; i < http->n_headers; i++) {
    free(http->headers[i].name);
    free_secret(http->headers[i].value);
  }
  free(http->headers);
  free_secret(http->basic_auth_user);
  free_secret(http->basic_auth_password);
  free(http->cert_dir);
  free_secret(http->http_proxy);
  free_secret(http->https_proxy);
  free(http->no_proxy);
}

static void free_signature(struct spec_signature *sig)
{
  free_secret(sig->url); /* may hold userinfo or a token in the query */
  free(sig->path);
  free(sig->public_key);
  free(sig->certificate);
  free(sig->ca_bundle);
  free(sig->hash_method);
  free(sig->key_type);
}

void spec_free(struct import_spec *spec)
{
  if (spec == NULL)
    return;
  free(spec->origin);
  free(spec->name);
  free_http(&spec->source.http);
  free(spec->source.file_path);
  free(spec->source.nbd_uri);
  free(spec->source.registry_architecture);
  free(spec->source.gcs_credentials);
  free(spec->target.path);
  free(spec->target.owner_uid);
  free(spec->target.block_device);
  free(spec->block_hash.digest);
  free(spec->mounts.certs);
  free(spec->mounts.secret);
  free(spec->mounts.extra_headers);
  free(spec->mounts.proxy_certs);
  free(spec->termination_message_path);
  free(spec->scratch_path);
  for (size_t i = 0; i < spec->n_allowed_formats; i++)
    free(spec->allowed_formats[i]);
  free(spec->allowed_formats);
  free_secret(spec->checksum_url); /* may hold userinfo */
  free(spec->checksum_name);
  free_signature(&spec->signature);
  free_signature(&spec->checksum_signature.detached);
  free(spec->checksum_signature.keyring);
  free_secret(spec->block_hash_url);
  free_signature(&spec->block_hash_signature.detached);
  free(spec->block_hash_signature.keyring);
  free(spec->node_pull.ready_file);
  free(spec->node_pull.done_file);
  free(spec);
}

/* ---- Headers ------------------------------------------------------------------------- */

static bool is_token_char(unsigned char c)
{
  return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int append_header(struct spec_http *http, const char *name, size_t name_len,
                         const char *value, size_t value_len, bool secret, struct verr *err)
{
  if (http->n_headers >= SPEC_MAX_HEADERS)
    return verr_set(err, VERR_USAGE, "more than %u extra headers; merge or drop some",
                    SPEC_MAX_HEADERS);
  struct spec_header *grown = realloc(http->headers, (http->n_headers + 1) * sizeof *grown);
  if (grown == NULL)
    return verr_sys(err, VERR_NOMEM, errno, "cannot grow the header list");
  http->headers = grown;
  struct spec_header *h = &http->headers[http->n_headers];
  h->name = strndup(name, name_len);
  h->value = strndup(value, value_len);
  h->secret = secret;
  if (h->name == NULL || h->value == NULL) {
    free(h->name);
    free_secret(h->value);
    return verr_sys(err, VERR_NOMEM, errno, "cannot copy a header");
  }
  http->n_headers++;
  return 0;
}

int spec_add_header_line(struct import_spec *spec, const char *line, size_t len, bool secret,
                         struct verr *err)
{
  while (len > 0 && isspace((unsigned char)line[len - 1]))
    len--;
  const char *colon = memchr(line, ':', len);
  if (colon == NULL || colon == line)
    return verr_set(err, VERR_USAGE,
                    "a header is not of the form \"Name: value\"; write e.g. \"X-Token: abc\"");
  size_t name_len = (size_t)(colon - line);
  for (size_t i = 0; i < name_len; i++)
    if (!is_token_char((unsigned char)line[i]))
      return verr_set(err, VERR_USAGE,
                      "header name \"%.*s\" holds a character not allowed in HTTP field names",
                      (int)(name_len > 64 ? 64 : name_len), line);
  const char *value = colon + 1;
  size_t value_len = len - name_len - 1;
  while (value_len > 0 && (*value == ' ' || *value == '\t')) {
    value++;
    value_len--;
  }
  for (size_t i = 0; i < value_len; i++)
    if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
      return verr_set(err, VERR_USAGE,
                      "the value of header \"%.*s\" spans lines or holds a NUL; a header "
                      "must be one line",
                      (int)(name_len > 64 ? 64 : name_len), line);
  return append_header(&spec->source.http, line, name_len, value, value_len, secret, err);
}

int spec_add_allowed_format(struct import_spec *spec, const char *name, struct verr *err)
{
  if (!spec_format_known(name))
    return verr_set(err, VERR_USAGE,
                    "unknown image format \"%.32s\"; use raw, qcow2, vmdk, vdi, vhd, vhdx or qed",
                    name);
  char **grown = realloc(spec->allowed_formats, (spec->n_allowed_formats + 1) * sizeof *grown);
  if (grown == NULL)
    return verr_sys(err, VERR_NOMEM, errno, "cannot grow the format list");
  spec->allowed_formats = grown;
  spec->allowed_formats[spec->n_allowed_formats] = NULL;
  if (set_default(&spec->allowed_formats[spec->n_allowed_formats], name, err) == -1)
    return -1;
  spec->n_allowed_formats++;
  return 0;
}

int spec_check_complete(const struct import_spec *spec, struct verr *err)
{
  if (spec->block_hash.length != 0 && !spec->block_hash.has_expected)
    return verr_set(err, VERR_USAGE,
                    "%s: blockHashLength says how many bytes the expected block hash covers, "
                    "but no expectedBlockHash is given; add vimport.expectedBlockHash (the "
                    "blockHash of the import's termination message) or drop blockHashLength",
                    spec->origin);
  /* CDI unpacks archives from http sources only; a containerDisk holds a disk image */
  if (spec->source.kind == SPEC_SOURCE_REGISTRY && spec->content_type == SPEC_CONTENT_ARCHIVE)
    return verr_set(err, VERR_USAGE, "%s: a registry source imports a containerDisk's disk "
                    "image; contentType archive is for http sources; use kubevirt",
                    spec->origin);
  if ((spec->source.kind == SPEC_SOURCE_S3 || spec->source.kind == SPEC_SOURCE_GCS) &&
      spec->content_type == SPEC_CONTENT_ARCHIVE)
    return verr_set(err, VERR_USAGE, "%s: CDI unpacks archives from http sources only; an %s "
                    "source imports a disk image: use contentType kubevirt", spec->origin,
                    spec_source_kind_name(spec->source.kind));
  if (spec->memory_limit != 0 && spec->window_size > spec->memory_limit)
    return verr_set(err, VERR_USAGE,
                    "%s: the qcow2 window (%llu bytes) exceeds the memory limit (%llu bytes); "
                    "lower windowSize or raise memoryLimit",
                    spec->origin, (unsigned long long)spec->window_size,
                    (unsigned long long)spec->memory_limit);
  return 0;
}

/* ---- Loggable summary ---------------------------------------------------------------- */

bool spec_source_is_http(enum spec_source_kind kind)
{
  return kind == SPEC_SOURCE_HTTP || kind == SPEC_SOURCE_REGISTRY || kind == SPEC_SOURCE_S3;
}

const char *spec_refused_source_feature(const char *name)
{
  static const struct { const char *name, *feature; } refused[] = {
    { "imageio", "oVirt/RHV disks read from the engine through ovirt-imageio (CDI's imageio "
                 "source, with its warm migration checkpoints)" },
    { "vddk", "VMware disks read through VMware's VDDK library and its sidecar image (CDI's "
              "vddk source, with its warm migration snapshots)" },
    { "upload", "images pushed through CDI's upload proxy (virtctl image-upload), which the "
                "upload server receives" },
    { "glance", "OpenStack Glance images" },
    { "pvc", "clones of another PersistentVolumeClaim (CDI's clone controller)" },
    { "snapshot", "clones of a VolumeSnapshot (CDI's clone controller)" },
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    if (strcmp(name, refused[i].name) == 0)
      return refused[i].feature;
  return NULL;
}

const char *spec_source_kind_name(enum spec_source_kind kind)
{
  switch (kind) {
  case SPEC_SOURCE_HTTP: return "http";
  case SPEC_SOURCE_REGISTRY: return "registry";
  case SPEC_SOURCE_S3: return "s3";
  case SPEC_SOURCE_GCS: return "gcs";
  case SPEC_SOURCE_BLANK: return "blank";
  case SPEC_SOURCE_FILE: return "file";
  case SPEC_SOURCE_NBD: return "nbd";
  case SPEC_SOURCE_NONE: break;
  }
  return "none";
}

static const char *volume_mode_name(enum spec_volume_mode mode)
{
  switch (mode) {
  case SPEC_VOLUME_MODE_FILESYSTEM: return "Filesystem";
  case SPEC_VOLUME_MODE_BLOCK: return "Block";
  case SPEC_VOLUME_MODE_UNSET: break;
  }
  return "unset";
}

/* Header names whose values are credentials even when given in plain extraHeaders. */
static bool header_looks_sensitive(const char *name)
{
  static const char *const words[] = { "auth", "token", "key", "secret", "cookie",
                                       "password", "session", "signature", "credential" };
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strcasestr(name, words[i]) != NULL)
      return true;
  return false;
}

static void describe_url(FILE *f, const char *label, const char *url)
{
  if (url == NULL)
    return;
  char redacted[1024];
  verr_redact_url(url, redacted, sizeof redacted);
  fprintf(f, " %s=%s", label, redacted);
}

static void describe_http(FILE *f, const struct spec_http *http)
{
  describe_url(f, "url", http->url);
  for (size_t i = 0; i < http->n_headers; i++) {
    const struct spec_header *h = &http->headers[i];
    bool hide = h->secret || header_looks_sensitive(h->name);
    fprintf(f, " header=\"%s: %s\"", h->name, hide ? "<redacted>" : h->value);
  }
  if (http->basic_auth_user != NULL)
    fprintf(f, " basicAuth=<redacted>:<redacted>");
  if (http->cert_dir != NULL)
    fprintf(f, " certDir=%s", http->cert_dir);
  if (http->insecure_skip_verify)
    fprintf(f, " insecureSkipVerify=true");
  describe_url(f, "httpProxy", http->http_proxy);
  describe_url(f, "httpsProxy", http->https_proxy);
  if (http->no_proxy != NULL)
    fprintf(f, " noProxy=%s", http->no_proxy);
}

/* Paths and names only: the key material stays in its files. */
static void describe_signature(FILE *f, const struct spec_signature *sig)
{
  static const char *const formats[] = { "auto", "der", "base64", "glance" };
  if (!sig->given)
    return;
  describe_url(f, "signatureURL", sig->url);
  if (sig->path != NULL)
    fprintf(f, " signaturePath=%s", sig->path);
  fprintf(f, " signatureFormat=%s", formats[sig->format]);
  if (sig->public_key != NULL)
    fprintf(f, " publicKey=%s", sig->public_key);
  if (sig->certificate != NULL)
    fprintf(f, " certificate=%s caBundle=%s", sig->certificate, sig->ca_bundle);
  if (sig->hash_method != NULL)
    fprintf(f, " hashMethod=%s", sig->hash_method);
  if (sig->key_type != NULL)
    fprintf(f, " keyType=%s", sig->key_type);
}

static void describe_vimport(FILE *f, const struct import_spec *spec)
{
  const struct spec_block_hash *bh = &spec->block_hash;
  fprintf(f, " blockHash=%s/%u", bh->digest, bh->block_size);
  if (bh->has_expected)
    fprintf(f, " expectedBlockHash=%s:%s", bh->digest, bh->expected_hex);
  if (bh->length != 0)
    fprintf(f, " blockHashLength=%llu", (unsigned long long)bh->length);
  fprintf(f, " terminationMessagePath=%s window=%llu", spec->termination_message_path,
          (unsigned long long)spec->window_size);
  if (spec->memory_limit != 0)
    fprintf(f, " memoryLimit=%llu", (unsigned long long)spec->memory_limit);
  if (spec->scratch_path != NULL)
    fprintf(f, " scratch=%s", spec->scratch_path);
  fprintf(f, " retries=%u stallTimeout=%us", spec->retries, spec->stall_timeout_seconds);
  for (size_t i = 0; i < spec->n_allowed_formats; i++)
    fprintf(f, "%s%s", i == 0 ? " allowedFormats=" : ",", spec->allowed_formats[i]);
  describe_url(f, "checksumURL", spec->checksum_url);
  if (spec->checksum_name != NULL)
    fprintf(f, " checksumName=%s", spec->checksum_name);
  describe_signature(f, &spec->signature);
  describe_url(f, "blockHashURL", spec->block_hash_url);
  if (spec->block_hash_signature.given && spec->block_hash_signature.keyring != NULL)
    fprintf(f, " blockHashSignature: keyring=%s", spec->block_hash_signature.keyring);
  const struct spec_checksum_signature *cs = &spec->checksum_signature;
  if (cs->given) {
    fprintf(f, " checksumSignature:");
    if (cs->keyring != NULL)
      fprintf(f, " keyring=%s%s", cs->keyring,
              cs->detached.url || cs->detached.path ? "" : " (clearsigned)");
    describe_url(f, "signatureURL", cs->detached.url);
    if (cs->detached.path != NULL)
      fprintf(f, " signaturePath=%s", cs->detached.path);
    if (cs->detached.public_key != NULL)
      fprintf(f, " publicKey=%s", cs->detached.public_key);
    if (cs->detached.certificate != NULL)
      fprintf(f, " certificate=%s caBundle=%s", cs->detached.certificate,
              cs->detached.ca_bundle);
  }
  const struct spec_node_pull *np = &spec->node_pull;
  if (np->ready_file != NULL)
    fprintf(f, " readyFile=%s (wait %us)", np->ready_file, np->ready_timeout_seconds);
  if (np->done_file != NULL)
    fprintf(f, " doneFile=%s", np->done_file);
  if (np->node)
    fprintf(f, " pullMethod=node");
}

char *spec_describe(const struct import_spec *spec)
{
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  if (f == NULL)
    return NULL;
  fprintf(f, "origin=%s", spec->origin);
  if (spec->name != NULL)
    fprintf(f, " name=%s", spec->name);
  fprintf(f, " source=%s", spec_source_kind_name(spec->source.kind));
  if (spec_source_is_http(spec->source.kind) || spec->source.kind == SPEC_SOURCE_GCS)
    describe_http(f, &spec->source.http);
  if (spec->source.gcs_credentials != NULL) /* a path: the key stays in the file */
    fprintf(f, " credentials=%s", spec->source.gcs_credentials);
  if (spec->source.registry_architecture != NULL)
    fprintf(f, " architecture=%s", spec->source.registry_architecture);
  if (spec->source.file_path != NULL)
    fprintf(f, " path=%s", spec->source.file_path);
  if (spec->source.checksum.alg != SPEC_CHECKSUM_NONE)
    fprintf(f, " checksum=%s:%s", spec_checksum_alg_name(spec->source.checksum.alg),
            spec->source.checksum.hex);
  describe_url(f, "uri", spec->source.nbd_uri);
  fprintf(f, " contentType=%s volumeMode=%s",
          spec->content_type == SPEC_CONTENT_ARCHIVE ? "archive" : "kubevirt",
          volume_mode_name(spec->target.volume_mode));
  if (spec->target.requested_size != 0)
    fprintf(f, " size=%llu", (unsigned long long)spec->target.requested_size);
  fprintf(f, " targetPath=%s blockDevice=%s", spec->target.path, spec->target.block_device);
  if (spec->target.preallocation)
    fprintf(f, " preallocation=true");
  if (spec->target.filesystem_overhead >= 0)
    fprintf(f, " filesystemOverhead=%g", spec->target.filesystem_overhead);
  if (spec->target.owner_uid != NULL)
    fprintf(f, " ownerUid=%s", spec->target.owner_uid);
  describe_vimport(f, spec);
  if (fclose(f) != 0) {
    free(text);
    return NULL;
  }
  /* one log line: fold anything a value smuggled in */
  for (char *p = text; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  return text;
}

bool spec_target_is_block(const struct import_spec *spec)
{
  if (spec->target.volume_mode != SPEC_VOLUME_MODE_UNSET)
    return spec->target.volume_mode == SPEC_VOLUME_MODE_BLOCK;
  struct stat st;
  return stat(spec->target.block_device, &st) == 0 && S_ISBLK(st.st_mode);
}
