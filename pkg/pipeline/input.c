/* vimport pipeline, the input side: the source and the filters over it, in order:
 *
 *   source -> digest tap -> [signature tap] -> sniff -> [decompress -> sniff]
 *
 * Both taps sit right above the source, so they see the bytes exactly as served. The
 * expected checksum comes from the spec or from a published checksum file, fetched
 * before the image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "decompress/decompress.h"
#include "metrics/metrics.h"
#include "openpgp/openpgp.h"
#include "run.h"
#include "source/source.h"
#include "target/target.h"

/* "Name: value" lines for the source; the returned array and strings are owned. */
static char **header_lines(const struct spec_http *http, struct verr *err)
{
  char **lines = calloc(http->n_headers + 1, sizeof *lines);
  if (lines == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory"), NULL;
  for (size_t i = 0; i < http->n_headers; i++) {
    if (asprintf(&lines[i], "%s: %s", http->headers[i].name, http->headers[i].value) < 0) {
      lines[i] = NULL;
      verr_set(err, VERR_NOMEM, "out of memory");
      for (size_t j = 0; j < i; j++)
        free(lines[j]);
      free(lines);
      return NULL;
    }
  }
  return lines;
}

static void free_lines(char **lines, size_t n)
{
  for (size_t i = 0; lines != NULL && i < n; i++) {
    explicit_bzero(lines[i], strlen(lines[i])); /* header values may be secrets */
    free(lines[i]);
  }
  free(lines);
}

/* A registry layer's tar holds the disk file and little else: what decompresses past
 * the target's capacity and some room for other files is a bomb. */
static uint64_t layer_bound(const struct import_run *run)
{
  struct target_info info = { 0 };
  if (run->target != NULL)
    target_get_info(run->target, &info);
  return info.capacity == 0 ? 0 : info.capacity + (64ull << 20);
}

/* The pkg/source row that must read `url` where its scheme cannot say: an s3 object, and
 * a gcs object at another endpoint, are http(s) URLs. Only the image itself is such an
 * object; a checksumURL beside it is plain http. NULL: by scheme. */
static const char *named_kind(const struct import_spec *spec, const char *url)
{
  const char *image = spec->source.http.url;
  if (url == NULL || image == NULL || strcmp(url, image) != 0)
    return NULL;
  if (spec->source.kind == SPEC_SOURCE_S3)
    return "s3";
  return spec->source.kind == SPEC_SOURCE_GCS ? "gcs" : NULL;
}

/* The source options the spec gives: TLS, retries, and (for the image's own host only)
 * credentials and headers. `lines` receives the header lines to free with free_lines. */
static int source_options(const struct import_run *run, const char *url, bool with_credentials,
                          struct source_opts *opts, char ***lines, struct verr *err)
{
  const struct import_spec *spec = run->spec;
  /* A spec's "retries: 0" means none; the source's 0 means its default. SIGTERM ends a
   * transfer that waits on a stalled server instead of waiting for its next byte. */
  *opts = (struct source_opts){ .url = url,
                                .kind = named_kind(spec, url),
                                .retries = spec->retries ? spec->retries : SOURCE_RETRIES_NONE,
                                .stall_timeout_s = spec->stall_timeout_seconds,
                                .stop = run->opts.cancelled };
  *lines = NULL;
  const struct spec_http *http = &spec->source.http;
  if (spec->source.kind == SPEC_SOURCE_GCS) {
    if (with_credentials && opts->kind != NULL) /* the object itself, not a checksumURL */
      opts->gcs_credentials = spec->source.gcs_credentials;
    opts->proxy_ca_dir = spec->mounts.proxy_certs;
    opts->ca_dir = http->cert_dir;
    opts->insecure_skip_verify = http->insecure_skip_verify;
    return 0;
  }
  if (spec->source.kind != SPEC_SOURCE_HTTP && spec->source.kind != SPEC_SOURCE_REGISTRY &&
      spec->source.kind != SPEC_SOURCE_S3)
    return 0;
  opts->registry_architecture = spec->source.registry_architecture;
  opts->max_layer_bytes = layer_bound(run);
  opts->proxy_ca_dir = spec->mounts.proxy_certs;
  opts->ca_dir = http->cert_dir;
  opts->insecure_skip_verify = http->insecure_skip_verify;
  if (!with_credentials)
    return 0;
  if ((*lines = header_lines(http, err)) == NULL)
    return -1;
  opts->basic_user = http->basic_auth_user;
  opts->basic_password = http->basic_auth_password;
  opts->extra_headers = (const char *const *)*lines;
  opts->n_extra_headers = http->n_headers;
  return 0;
}

static size_t n_header_lines(const struct import_spec *spec)
{
  return spec->source.kind == SPEC_SOURCE_HTTP ? spec->source.http.n_headers : 0;
}

static const char *image_url(const struct import_spec *spec)
{
  return spec->source.kind == SPEC_SOURCE_FILE ? spec->source.file_path : spec->source.http.url;
}

/* scheme://host[:port] of a URL without userinfo, for "same host" decisions. */
static void url_origin(const char *url, char *out, size_t size)
{
  const char *p = strstr(url, "://");
  if (p == NULL) {
    snprintf(out, size, "%s", "");
    return;
  }
  const char *host = p + 3;
  size_t len = strcspn(host, "/?#");
  const char *at = memchr(host, '@', len);
  if (at != NULL) { /* drop "user:pass@" */
    len -= (size_t)(at + 1 - host);
    host = at + 1;
  }
  snprintf(out, size, "%.*s://%.*s", (int)(p - url), url, (int)len, host);
}

/* Credentials and headers go only to the host they were given for; an s3 source's keys
 * only sign its own requests: sent to a checksum or signature URL on the same host as
 * basic auth, the secret key itself would travel. */
static bool credentials_go_to(const struct import_spec *spec, const char *url)
{
  if (spec->source.kind == SPEC_SOURCE_S3)
    return false;
  char oa[512], ob[512];
  url_origin(url, oa, sizeof oa);
  url_origin(image_url(spec), ob, sizeof ob);
  return oa[0] != '\0' && strcasecmp(oa, ob) == 0;
}

static const char *checksum_algorithm(const struct import_run *run);
static enum signature_format signature_format_of(enum spec_signature_format f);

static int open_source(struct import_run *run, struct verr *err)
{
  const struct import_spec *spec = run->spec;
  struct source_opts opts;
  char **lines;
  if (source_options(run, image_url(spec), true, &opts, &lines, err) < 0)
    return -1;
  /* The digest tap (open_chain) always follows: a source that keeps a ring lets it hash
   * there in place, which on two cores takes the largest single cost of an import off
   * the decoder without a copy. */
  opts.lend_to_digest = 1;
  int r = source_open(&opts, &run->source, err);
  free_lines(lines, n_header_lines(spec));
  /* CDI's registry source connects nothing when it is made (NewRegistryDataSource), so
   * its every failure is "Unable to process data", never "Unable to connect" */
  if (r < 0)
    return run->res->source_unreachable = spec->source.kind != SPEC_SOURCE_REGISTRY, -1;
  run->chain = run->source;
  const struct source_info *info = source_info(run->source);
  vlog_info("source", "opened %s %s: content type '%s', length %lld", info->kind, info->location,
            info->content_type, (long long)info->content_length);
  return 0;
}

/* ---- the expected checksum ------------------------------------------------------------ */

/* Fetch a small object (checksum file, detached signature) at `url` (or a mounted path)
 * with the source's TLS options; credentials only to the image's own origin. */
static int fetch_small(struct import_run *run, const char *url, size_t cap, const char *what,
                       char **out, size_t *len, struct verr *err)
{
  struct source_opts opts;
  char **lines;
  bool creds = credentials_go_to(run->spec, url);
  if (source_options(run, url, creds, &opts, &lines, err) < 0)
    return -1;
  int r = trust_fetch_all(&opts, cap, what, out, len, err);
  free_lines(lines, creds ? n_header_lines(run->spec) : 0);
  if (r < 0)
    run->res->source_unreachable = err->code == VERR_SOURCE;
  return r;
}

/* Append "<what> signed by <who>" to verifiedBy ("; " between). */
static void add_signer(struct import_run *run, const char *what, const char *who)
{
  char *by = run->res->verified_by;
  size_t at = strlen(by);
  snprintf(by + at, sizeof run->res->verified_by - at, "%s%s signed by %s", at ? "; " : "",
           what, who);
}

/* OpenPGP: the file clearsigned, or with its detached signature, checked with the
 * mounted keyring. *text becomes the signed text only (for a clearsigned file, nothing
 * outside the signature may be used). */
static int verify_openpgp(struct import_run *run, const struct spec_checksum_signature *cs,
                          const char *what, char **text, size_t *len, struct verr *err)
{
  const char *where = cs->detached.url ? cs->detached.url : cs->detached.path;
  char *sig = NULL, *signed_text = NULL;
  size_t sig_len = 0, signed_len = 0;
  if (where != NULL && fetch_small(run, where, SIGNATURE_FILE_MAX_BYTES, "signature", &sig,
                                   &sig_len, err) < 0)
    return -1;
  struct openpgp_keyring *kr = NULL;
  struct openpgp_result res;
  int r = openpgp_keyring_load(cs->keyring, &kr, err);
  if (r == 0)
    r = openpgp_verify_file(kr, *text, *len, sig, sig_len, &signed_text, &signed_len, &res, err);
  openpgp_keyring_free(kr);
  free(sig);
  if (r < 0)
    return verr_prefix(err, "the %s is not signed by a key of %s", what, cs->keyring);
  free(*text);
  *text = signed_text;
  *len = signed_len;
  char who[512];
  snprintf(who, sizeof who, "OpenPGP key %s \"%.200s\" (%s, %s)", res.fingerprint,
           res.user_id, res.algorithm, res.hash);
  add_signer(run, what, who);
  return 0;
}

/* pkg/trust's options for the spec's signature settings, its URL fetched with `fetch`. */
static struct signature_opts signature_opts_of(const struct spec_signature *sig,
                                               const struct source_opts *fetch)
{
  return (struct signature_opts){
    .signature_path = sig->path,
    .signature_url = sig->url,
    .fetch = fetch,
    .format = signature_format_of(sig->format),
    .public_key_path = sig->public_key,
    .certificate_path = sig->certificate,
    .ca_bundle_path = sig->ca_bundle,
    .hash_method = sig->hash_method,
    .key_type = sig->key_type,
  };
}

/* A raw-key or X.509 detached signature over the file, as vimport.signature is over the
 * image. */
static int verify_detached_x509(struct import_run *run, const struct spec_signature *sig,
                                const char *what, const char *text, size_t len,
                                struct verr *err)
{
  struct source_opts fetch;
  char **lines;
  bool creds = sig->url != NULL && credentials_go_to(run->spec, sig->url);
  if (source_options(run, sig->url, creds, &fetch, &lines, err) < 0)
    return -1;
  struct signature_opts opts = signature_opts_of(sig, &fetch);
  struct signature_result res;
  int r = signature_verify_buffer(&opts, text, len, &res, err);
  free_lines(lines, creds ? n_header_lines(run->spec) : 0);
  if (r < 0)
    return verr_prefix(err, "the %s's signature", what);
  char who[700];
  snprintf(who, sizeof who, "%.500s (%s%s%s)", res.subject[0] ? res.subject : res.key_fingerprint,
           res.key_type, res.hash[0] ? ", " : "", res.hash);
  add_signer(run, what, who);
  return 0;
}

/* Fetch the file at `url` and, when `cs` is given, check its signature; *text is what
 * may be trusted (malloc'ed). */
static int fetch_verified(struct import_run *run, const char *url,
                          const struct spec_checksum_signature *cs, const char *what,
                          const char *option, char **text, size_t *len, struct verr *err)
{
  if (fetch_small(run, url, CHECKSUM_FILE_MAX_BYTES, what, text, len, err) < 0)
    return -1;
  if (!cs->given)
    return 0;
  int r = cs->keyring != NULL ? verify_openpgp(run, cs, what, text, len, err)
                              : verify_detached_x509(run, &cs->detached, what, *text, *len, err);
  if (r < 0) {
    free(*text);
    *text = NULL;
    return verr_prefix(err, "%s", option);
  }
  return 0;
}

/* The checksum file, its signature checked before the image is opened, so a refused
 * file fails the import before a byte is written. */
static int load_signed_checksum_file(struct import_run *run, const char *wanted,
                                     struct verr *err)
{
  const struct import_spec *spec = run->spec;
  char *text = NULL;
  size_t len = 0;
  if (fetch_verified(run, spec->checksum_url, &spec->checksum_signature, "checksum file",
                     "vimport.checksumSignature", &text, &len, err) < 0)
    return -1;
  int r = checksum_file_parse(text, len, wanted, &run->expected, err);
  if (r < 0) {
    char where[1024];
    verr_redact_url(spec->checksum_url, where, sizeof where);
    verr_prefix(err, "%s", where);
  }
  free(text);
  if (r < 0)
    return -1;
  vlog_info("trust", "%s", run->res->verified_by);
  run_add_verified(run->res, "checksum-signature");
  return 0;
}

/* The "# vimport-sum digest=D block-size=N" header of a published block hash list: how
 * the list was made when not with `vimport sum`'s defaults. Other comments are ignored. */
static int block_hash_header(const char *text, char *digest, size_t digest_size,
                             uint32_t *block_size, struct verr *err)
{
  for (const char *line = text; line != NULL && *line; line = strchr(line, '\n'), line += !!line) {
    if (strncmp(line, "# vimport-sum ", 14) != 0)
      continue;
    size_t n = strcspn(line, "\n");
    char head[256];
    snprintf(head, sizeof head, "%.*s", (int)(n < 255 ? n : 255), line);
    char *d = strstr(head, "digest="), *b = strstr(head, "block-size=");
    if (d != NULL)
      snprintf(digest, digest_size, "%.*s", (int)strcspn(d + 7, " \t\r"), d + 7);
    if (b != NULL) {
      char *end;
      unsigned long v = strtoul(b + 11, &end, 10);
      if (v < 512 || v > (64u << 20) || (v & (v - 1)) != 0)
        return verr_set(err, VERR_FORMAT, "block hash list header: block-size=%.20s is not a "
                        "power of two from 512 to 64Mi", b + 11);
      *block_size = (uint32_t)v;
    }
  }
  return 0;
}

/* vimport.blockHashURL: a list in `vimport sum`'s format ("<hex>  <name>"), its
 * signature checked like a checksum file's; the line for the image's file name becomes
 * the import's expected block hash. */
static int load_block_hash_list(struct import_run *run, struct verr *err)
{
  const struct import_spec *spec = run->spec;
  char name[1024];
  if (checksum_file_name_from_url(image_url(spec), name, sizeof name, err) < 0)
    return verr_prefix(err, "vimport.blockHashURL");
  char *text = NULL;
  size_t len = 0;
  if (fetch_verified(run, spec->block_hash_url, &spec->block_hash_signature,
                     "block hash list", "vimport.blockHashSignature", &text, &len, err) < 0)
    return -1;
  struct checksum listed;
  char digest[64] = "", hash[200];
  uint32_t block_size = run->block_hash.block_size;
  int r = block_hash_header(text, digest, sizeof digest, &block_size, err);
  if (r == 0)
    r = checksum_file_parse(text, len, name, &listed, err);
  free(text);
  if (r == 0) {
    snprintf(hash, sizeof hash, "%s:%s", digest[0] ? digest : listed.algorithm, listed.hex);
    r = spec_parse_block_hash(hash, &run->block_hash, err);
  }
  char where[1024];
  verr_redact_url(spec->block_hash_url, where, sizeof where);
  if (r < 0)
    return verr_prefix(err, "vimport.blockHashURL %s", where);
  run->block_hash.block_size = block_size;
  vlog_info("trust", "block hash list %s lists %s (block size %u) for %s", where, hash,
            block_size, name);
  if (spec->block_hash_signature.given)
    run_add_verified(run->res, "blockhash-signature");
  return 0;
}

static int load_checksum_file(struct import_run *run, struct verr *err)
{
  const struct import_spec *spec = run->spec;
  char name[1024];
  const char *wanted = spec->checksum_name;
  if (wanted == NULL) {
    if (checksum_file_name_from_url(image_url(spec), name, sizeof name, err) < 0)
      return verr_prefix(err, "vimport.checksumURL");
    wanted = name;
  }
  if (spec->checksum_signature.given) {
    if (load_signed_checksum_file(run, wanted, err) < 0)
      return -1;
  } else {
    struct source_opts opts;
    char **lines;
    bool creds = credentials_go_to(spec, spec->checksum_url);
    if (source_options(run, spec->checksum_url, creds, &opts, &lines, err) < 0)
      return -1;
    int r = checksum_file_load(&opts, wanted, &run->expected, err);
    free_lines(lines, creds ? n_header_lines(spec) : 0);
    /* CDI has no checksum file; its nearest case is a source it cannot reach */
    if (r < 0)
      return run->res->source_unreachable = err->code == VERR_SOURCE, -1;
  }
  char redacted[1024];
  verr_redact_url(spec->checksum_url, redacted, sizeof redacted);
  vlog_info("trust", "checksum file %s lists %s:%s for %s", redacted, run->expected.algorithm,
            run->expected.hex, wanted);
  return 0;
}

static int load_expected_checksum(struct import_run *run, struct verr *err)
{
  const struct import_spec *spec = run->spec;
  if (spec->block_hash_url != NULL && load_block_hash_list(run, err) < 0)
    return -1;
  if (spec->checksum_url != NULL)
    return run->has_expected = true, load_checksum_file(run, err);
  /* every streamed kind: the spec refuses a checksum where no bytes stream */
  if (spec->source.checksum.alg == SPEC_CHECKSUM_NONE)
    return 0;
  char text[CHECKSUM_STRING_MAX];
  snprintf(text, sizeof text, "%s:%s", spec_checksum_alg_name(spec->source.checksum.alg),
           spec->source.checksum.hex);
  run->has_expected = true;
  return checksum_parse(text, &run->expected, err);
}

/* Progress, for people (a terminal line) and for CDI (the metric): the share of the
 * source read, counted once right above the source and shown by both. */
static int open_progress(struct import_run *run, struct verr *err)
{
  int64_t length = source_info(run->source)->content_length;
  uint64_t total = length > 0 ? (uint64_t)length : 0;
  struct progress_observer observers[2];
  size_t n = 0;
  if (run->opts.metrics != NULL) {
    metrics_set_total(run->opts.metrics, total);
    observers[n++] = metrics_progress_observer(run->opts.metrics);
  }
  if (run->opts.progress_line && progress_line_new(total, &observers[n++], err) < 0)
    return -1;
  return n == 0 ? 0 : progress_counter_new(run->chain, observers, n, &run->chain, err);
}

/* ---- the signature ----------------------------------------------------------------------- */

static enum signature_format signature_format_of(enum spec_signature_format f)
{
  switch (f) {
  case SPEC_SIGNATURE_DER:
    return SIGNATURE_FORMAT_DER;
  case SPEC_SIGNATURE_BASE64:
    return SIGNATURE_FORMAT_BASE64;
  case SPEC_SIGNATURE_GLANCE:
    return SIGNATURE_FORMAT_GLANCE;
  default:
    return SIGNATURE_FORMAT_AUTO;
  }
}

static int open_signature_tap(struct import_run *run, struct verr *err)
{
  const struct spec_signature *sig = &run->spec->signature;
  if (!sig->given)
    return 0;
  struct source_opts fetch;
  char **lines;
  bool creds = sig->url != NULL && credentials_go_to(run->spec, sig->url);
  if (source_options(run, sig->url, creds, &fetch, &lines, err) < 0)
    return -1;
  struct signature_opts opts = signature_opts_of(sig, &fetch);
  int r = signature_tap_new(run->chain, &opts, &run->sigtap, err);
  free_lines(lines, creds ? n_header_lines(run->spec) : 0);
  if (r < 0)
    return -1;
  run->chain = run->sigtap;
  return 0;
}

/* The algorithm of the source digest, or NULL for none. Every kind's bytes are hashed for
 * sourceDigest even when nothing checks them, except a registry's: each of its blobs is
 * already hashed and checked against the manifest's digest as it streams, so a second
 * sha256 of the disk file inside would prove nothing more (on W1, 0.65 s of CPU); it is
 * computed when a checksum asks for it. */
static const char *checksum_algorithm(const struct import_run *run)
{
  if (run->has_expected)
    return run->expected.algorithm;
  return run->spec->source.kind == SPEC_SOURCE_REGISTRY ? NULL : "sha256";
}

/* Raw bytes can still be a fixed VHD or a DMG: each signs only its last 512 bytes. Where
 * the source can be read by range, look there before anything is written. */
static void detect_trailer(struct import_run *run)
{
  const struct source_info *info = source_info(run->source);
  unsigned char tail[SNIFF_VHD_FOOTER_BYTES];
  struct verr err = { 0 };
  uint64_t size;
  if (run->sniff.format != SNIFF_FORMAT_RAW || run->res->compression[0] != '\0' ||
      info->content_length < 2 * SNIFF_VHD_FOOTER_BYTES || !source_can_pread(run->source) ||
      !info->accepts_ranges)
    return;
  uint64_t length = (uint64_t)info->content_length;
  if (source_pread(run->source, tail, sizeof tail, length - sizeof tail, &err) < 0) {
    /* not fatal: the stream is still read in full; only its end went unchecked */
    vlog_warn("sniff", "cannot read the source's last 512 bytes, so a fixed VHD or a DMG "
              "would be taken for raw: %s", err.message);
    return;
  }
  if (sniff_vhd_fixed_footer(tail, length, &size)) {
    run->sniff.format = SNIFF_FORMAT_VHD;
    snprintf(run->sniff.subformat, sizeof run->sniff.subformat, "fixed");
  } else if (sniff_dmg_trailer(tail, length, &size)) {
    run->sniff.format = SNIFF_FORMAT_DMG; /* refused by the decoder table */
  } else {
    return;
  }
  run->sniff.virtual_size = size;
}

/* The spec's allowedFormats (empty: every disk format CDI imports), and a warning for
 * raw bytes that hold neither a partition table nor a filesystem we know. */
static int check_policy(struct import_run *run, struct verr *err)
{
  const struct import_spec *spec = run->spec;
  const char *format = run->res->format;
  bool allowed = spec->n_allowed_formats == 0;
  for (size_t i = 0; i < spec->n_allowed_formats && !allowed; i++)
    allowed = strcmp(spec->allowed_formats[i], format) == 0;
  if (!allowed)
    return verr_set(err, VERR_FORMAT, "the source is a %s image and vimport.allowedFormats does "
                    "not allow it: add \"%s\" to the list or import another image", format, format);
  enum sniff_content c = run->sniff.content;
  /* qemu-img info names a LUKS volume "luks", which CDI refuses (qemu.go checkIfURLIsValid) */
  if (run->sniff.format == SNIFF_FORMAT_RAW && c == SNIFF_CONTENT_LUKS)
    return verr_set(err, VERR_FORMAT, "Invalid format luks for image %s: like CDI, vimport "
                    "does not import a LUKS volume as a disk; import the image inside it, or "
                    "the whole volume after converting it (qemu-img convert -O qcow2)",
                    source_info(run->source)->location);
  bool unknown = run->sniff.format == SNIFF_FORMAT_RAW &&
                 (c == SNIFF_CONTENT_UNKNOWN || c == SNIFF_CONTENT_ZEROS);
  if (unknown && spec->require_known_content)
    return verr_set(err, VERR_FORMAT, "the raw image has neither a partition table nor a known "
                    "filesystem at its start and vimport.requireKnownContent is set: check the "
                    "URL, or drop the setting to import it anyway");
  if (unknown) {
    snprintf(run->res->warning, sizeof run->res->warning,
             "the raw image has neither a partition table nor a known filesystem at its start "
             "(%s): check that it is the disk you meant", c == SNIFF_CONTENT_ZEROS
                                                            ? "its first sector is zeros"
                                                            : "unrecognised bytes");
    vlog_warn("sniff", "%s", run->res->warning);
  }
  return 0;
}

/* Put the digest tap right above the source, then sniff; unwrap one compression layer. */
int run_chain_lost(struct import_run *run)
{
  run->chain = NULL;
  run->tap = NULL;
  run->sigtap = NULL;
  run->source = NULL;
  return -1;
}

static int open_chain(struct import_run *run, struct verr *err)
{
  /* pkg/digest hashes every kind; it reads a source's ring in place where it has one. */
  if (digest_source_tap_new(run->chain, checksum_algorithm(run), &run->tap, err) < 0)
    return run_chain_lost(run);
  run->chain = run->tap;
  if (open_signature_tap(run, err) < 0 || open_progress(run, err) < 0)
    return run_chain_lost(run);
  const char *content_type = source_info(run->source)->content_type;
  struct vreader *sniffed;
  if (sniff_reader_new(run->chain, content_type, &sniffed, &run->sniff, err) < 0)
    return run_chain_lost(run);
  run->chain = sniffed;

  enum sniff_format f = run->sniff.format;
  if (f == SNIFF_FORMAT_GZIP || f == SNIFF_FORMAT_XZ || f == SNIFF_FORMAT_ZSTD) {
    enum decompress_kind kind = f == SNIFF_FORMAT_GZIP ? DECOMPRESS_GZIP
                                : f == SNIFF_FORMAT_XZ ? DECOMPRESS_XZ
                                                       : DECOMPRESS_ZSTD;
    snprintf(run->res->compression, sizeof run->res->compression, "%s", sniff_format_name(f));
    /* Output past the target's capacity is a decompression bomb: stop there. */
    struct target_info info = { .capacity = run->plain_bound };
    if (run->target != NULL)
      target_get_info(run->target, &info);
    struct decompress_opts opts = { .max_output = info.capacity,
                                    .max_output_name = run->target != NULL
                                                         ? "the target's capacity"
                                                         : "twice the volume's free space" };
    struct vreader *plain;
    if (decompress_reader_new_opts(run->chain, kind, &opts, &plain, err) < 0)
      return run_chain_lost(run);
    if (sniff_reader_new(plain, NULL, &run->chain, &run->sniff, err) < 0)
      return run_chain_lost(run);
  }
  detect_trailer(run);
  snprintf(run->res->format, sizeof run->res->format, "%s", sniff_format_name(run->sniff.format));
  /* a disk format policy; an archive's sniff is judged by archive.c */
  if (run->spec->content_type != SPEC_CONTENT_ARCHIVE && check_policy(run, err) < 0)
    return -1;
  snprintf(run->res->content, sizeof run->res->content, "%s",
           sniff_content_name(run->sniff.content));
  char what[256];
  sniff_describe(&run->sniff, what, sizeof what);
  vlog_info("sniff", "%s%s%s", run->res->compression, run->res->compression[0] ? ", " : "", what);
  return 0;
}

/* A store that keeps its own digest of the object (S3's x-amz-checksum-sha256, or a
 * single-part ETag) lets the digest tap check it in the same pass; a checksum the spec
 * gives wins, so that no hash is computed twice. */
static int adopt_object_checksum(struct import_run *run, struct verr *err)
{
  const struct source_info *info = source_info(run->source);
  if (info->object_checksum[0] == '\0')
    return 0;
  if (run->has_expected) {
    vlog_info("trust", "%s names %s; the spec's checksum is checked instead",
              info->object_checksum_from, info->object_checksum);
    return 0;
  }
  if (checksum_parse(info->object_checksum, &run->expected, err) < 0)
    return verr_prefix(err, "the object's %s", info->object_checksum_from);
  run->has_expected = run->expected_from_object = true;
  vlog_info("trust", "the object's %s names %s: checked in the same pass",
            info->object_checksum_from, info->object_checksum);
  return 0;
}

int input_open(struct import_run *run, struct verr *err)
{
  if (load_expected_checksum(run, err) < 0 || open_source(run, err) < 0 ||
      adopt_object_checksum(run, err) < 0)
    return -1;
  return open_chain(run, err);
}

/* The digest of the source's bytes, from the tap right above the source. */
static int source_digest_final(struct import_run *run, struct verr *err)
{
  run->res->bytes_transferred = digest_tap_bytes(run->tap);
  return digest_tap_final(run->tap, run->res->source_digest, sizeof run->res->source_digest,
                          err);
}

void input_record_image(struct import_run *run)
{
  const struct source_image *image = source_image(run->source);
  if (image == NULL)
    return;
  run->res->has_image = true;
  run->res->image = *image;
}

/* What the source received: more than was read where a transfer ran ahead of a
 * failure (the part a rerun would fetch again). */
uint64_t input_bytes_read(struct import_run *run)
{
  const struct source_info *info = run->source != NULL ? source_info(run->source) : NULL;
  return info != NULL ? info->bytes_received : 0;
}

int input_check_checksum(struct import_run *run, struct verr *err)
{
  if (source_digest_final(run, err) < 0)
    return -1;
  const struct source_info *info = source_info(run->source);
  run->res->resumes = info->resumes;
  vlog_info("digest", "source %s, %llu bytes, %u resumes",
            run->res->source_digest[0] ? run->res->source_digest
                                       : "proven by its blob digests, not hashed again",
            (unsigned long long)run->res->bytes_transferred, info->resumes);
  if (info->checked[0] != '\0') { /* the source ended, so its own check passed */
    snprintf(run->res->source_checked, sizeof run->res->source_checked, "%s", info->checked);
    run_add_verified(run->res, "object-checksum");
  }
  if (!run->has_expected)
    return 0;
  if (checksum_compare(&run->expected, run->res->source_digest, err) < 0)
    return run->expected_from_object
           ? verr_prefix(err, "the store's own digest of the object (%s)",
                         source_info(run->source)->object_checksum_from)
           : -1;
  run_add_verified(run->res, run->expected_from_object ? "object-checksum" : "checksum");
  return 0;
}

int input_check_signature(struct import_run *run, struct verr *err)
{
  if (run->sigtap == NULL)
    return 0;
  struct signature_result res;
  if (signature_tap_final(run->sigtap, &res, err) < 0)
    return -1;
  /* after the checksum file's signer, when there is one */
  size_t at = strlen(run->res->verified_by);
  snprintf(run->res->verified_by + at, sizeof run->res->verified_by - at, "%s%s (%s%s%s)",
           at ? "; image signed by " : "", res.subject[0] ? res.subject : res.key_fingerprint,
           res.key_type, res.hash[0] ? ", " : "", res.hash);
  vlog_info("trust", "signature verified over %llu bytes by %s", (unsigned long long)res.bytes,
            run->res->verified_by);
  run_add_verified(run->res, "signature");
  return 0;
}
