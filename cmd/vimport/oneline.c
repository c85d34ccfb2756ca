/* The one-line import: the spec its arguments mean (oneline.h). The spec is YAML written
 * here and read by pkg/spec like any spec file: one parser, one set of checks. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "oneline.h"

static bool has_prefix(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- s3://BUCKET/KEY, as the AWS CLI names an object ---- */

/* The S3 endpoint the AWS CLI and SDKs would use, from their environment variables:
 * the service-specific override first, then the global one, then AWS's regional host. */
static int s3_endpoint(char *out, size_t size, struct verr *err)
{
  const char *name = "AWS_ENDPOINT_URL_S3", *url = getenv(name);
  if (url == NULL || *url == '\0')
    name = "AWS_ENDPOINT_URL", url = getenv(name);
  const char *region = getenv("AWS_REGION");
  if (region == NULL || *region == '\0')
    region = getenv("AWS_DEFAULT_REGION");
  if (url == NULL || *url == '\0') {
    if (region == NULL || *region == '\0')
      region = "us-east-1";
    if (strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(region))
      return verr_set(err, VERR_USAGE, "AWS_REGION \"%s\" is not a region name (such as "
                      "eu-west-1)", region);
    snprintf(out, size, "https://s3.%s.amazonaws.com", region);
    return 0;
  }
  const char *host = has_prefix(url, "https://") ? url + 8 : has_prefix(url, "http://") ? url + 7
                                                                                      : NULL;
  size_t host_len = host != NULL ? strcspn(host, "/?#") : 0;
  if (host == NULL || host_len == 0 || strspn(host + host_len, "/") != strlen(host + host_len))
    return verr_set(err, VERR_USAGE, "%s: give the S3 endpoint as http(s)://HOST[:PORT], "
                    "without a path (the bucket comes from s3://BUCKET/KEY)", name);
  if (host_len + (size_t)(host - url) >= size)
    return verr_set(err, VERR_USAGE, "%s: the URL is too long", name);
  snprintf(out, size, "%.*s", (int)(host_len + (size_t)(host - url)), url);
  /* The signing region is the endpoint's, as CDI's extractRegion reads it from the host;
   * a different AWS_REGION beside an endpoint would be ignored, so say so. */
  char expect[128];
  snprintf(expect, sizeof expect, "s3.%s.", region != NULL ? region : "");
  if (region != NULL && *region != '\0' && strstr(out, expect) == NULL)
    vlog_warn("spec", "AWS_REGION/AWS_DEFAULT_REGION %s is not used with %s: the signing "
              "region comes from the endpoint's host name, as CDI's extractRegion reads it",
              region, name);
  return 0;
}

/* Percent-encode `s` into f, keeping '/' when `keep_slash`: S3 keys may hold any byte. */
static void url_encode(FILE *f, const char *s, bool keep_slash)
{
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && keep_slash))
      fputc(c, f);
    else
      fprintf(f, "%%%02X", c);
  }
}

/* s3://BUCKET/KEY as the path-style URL spec.source.s3.url takes; *url is the caller's. */
static int s3_object_url(const char *source, char **url, struct verr *err)
{
  const char *bucket = source + strlen("s3://");
  const char *slash = strchr(bucket, '/');
  if (slash == NULL || slash == bucket || slash[1] == '\0')
    return verr_set(err, VERR_USAGE, "%s: give s3://BUCKET/KEY", source);
  char endpoint[512];
  if (s3_endpoint(endpoint, sizeof endpoint, err) < 0)
    return -1;
  char *bucket_name = strndup(bucket, (size_t)(slash - bucket));
  size_t len = 0;
  FILE *f = bucket_name != NULL ? open_memstream(url, &len) : NULL;
  if (f == NULL) {
    free(bucket_name);
    return verr_set(err, VERR_NOMEM, "out of memory");
  }
  fprintf(f, "%s/", endpoint);
  url_encode(f, bucket_name, false);
  fputc('/', f);
  url_encode(f, slash + 1, true);
  free(bucket_name);
  if (fclose(f) != 0) {
    free(*url);
    *url = NULL;
    return verr_set(err, VERR_NOMEM, "out of memory");
  }
  return 0;
}

/* The AWS CLI's keys: both sign (SigV4), neither means anonymous requests; one alone
 * would be ignored, and a session token would be left out of the signature. */
static int s3_keys_from_env(struct spec_http *http, struct verr *err)
{
  const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
  const char *token = getenv("AWS_SESSION_TOKEN");
  bool has_id = id != NULL && *id != '\0', has_secret = secret != NULL && *secret != '\0';
  if (token != NULL && *token != '\0')
    return verr_set(err, VERR_USAGE, "AWS_SESSION_TOKEN is set: temporary credentials are not "
                    "supported; use a user's access key, or unset it for anonymous access");
  if (has_id != has_secret)
    return verr_set(err, VERR_USAGE, "%s is set but %s is not: set both to sign the requests, "
                    "or neither for anonymous access",
                    has_id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                    has_id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
  if (!has_id)
    return 0;
  http->basic_auth_user = strdup(id);
  http->basic_auth_password = strdup(secret);
  if (http->basic_auth_user == NULL || http->basic_auth_password == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  return 0;
}

/* ---- the spec ---- */

/* `s` as a YAML double-quoted scalar: quotes, backslashes and control bytes escaped, so
 * no argument can add a key to the spec. */
static void yaml_quoted(FILE *f, const char *s)
{
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      fprintf(f, "\\x%02x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

/* The spec.source mapping of SOURCE, by its scheme. */
static int cli_source_yaml(FILE *f, const struct cli_import *c, struct verr *err)
{
  const char *kind = "file", *key = "path", *value = c->source;
  char *s3_url = NULL;
  if (has_prefix(c->source, "s3://")) {
    if (s3_object_url(c->source, &s3_url, err) < 0)
      return -1;
    kind = "s3", key = "url", value = s3_url;
  } else if (has_prefix(c->source, "http://") || has_prefix(c->source, "https://"))
    kind = "http", key = "url";
  else if (has_prefix(c->source, "docker://"))
    kind = "registry", key = "url";
  else if (has_prefix(c->source, "nbd://") || has_prefix(c->source, "nbds://") ||
           has_prefix(c->source, "nbd+unix://") || has_prefix(c->source, "nbds+unix://"))
    kind = "nbd", key = "uri";
  else if (strstr(c->source, "://") != NULL)
    return verr_set(err, VERR_USAGE, "%s: unknown URL scheme; use http://, https://, docker://, "
                    "nbd://, s3://, a file path or - for stdin", c->source);
  fprintf(f, "  source:\n    %s:\n      %s: ", kind, key);
  yaml_quoted(f, value);
  free(s3_url);
  if (c->checksum != NULL) {
    fputs("\n      checksum: ", f);
    yaml_quoted(f, c->checksum);
  }
  fputc('\n', f);
  return 0;
}

/* The DataVolume spec the arguments mean, as YAML (see docs/spec.md); *out is the
 * caller's to free. A block device target is a Block volume; anything else a file. */
static int cli_spec_yaml(const struct cli_import *c, char **out, size_t *len, struct verr *err)
{
  struct stat st;
  bool block = stat(c->target, &st) == 0 && S_ISBLK(st.st_mode);
  FILE *f = open_memstream(out, len);
  if (f == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  fputs("apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata:\n  name: cli\nspec:\n", f);
  int r = cli_source_yaml(f, c, err);
  fprintf(f, "  storage:\n    volumeMode: %s\n", block ? "Block" : "Filesystem");
  if (c->size != NULL) {
    fputs("    resources:\n      requests:\n        storage: ", f);
    yaml_quoted(f, c->size);
    fputc('\n', f);
  }
  fprintf(f, "vimport:\n  terminationMessagePath: /dev/null\n  target:\n    %s: ",
          block ? "blockDevice" : "path");
  yaml_quoted(f, c->target);
  fputc('\n', f);
  if (c->format != NULL) {
    fputs("  allowedFormats: [", f);
    yaml_quoted(f, c->format);
    fputs("]\n", f);
  }
  if (fclose(f) != 0 && r == 0)
    r = verr_set(err, VERR_NOMEM, "out of memory");
  if (r < 0) {
    free(*out);
    *out = NULL;
  }
  return r;
}

/* The spec keys the arguments become, and the argument a person typed for each. */
static const struct {
  const char *key;
  const char *arg;
} cli_keys[] = {
  { "spec.source.http.checksum", "--checksum" },  { "spec.source.file.checksum", "--checksum" },
  { "spec.source.registry.checksum", "--checksum" }, { "spec.source.nbd.checksum", "--checksum" },
  { "spec.source.s3.checksum", "--checksum" },    { "spec.source.s3.url", "SOURCE" },
  { "spec.source.http.url", "SOURCE" },           { "spec.source.registry.url", "SOURCE" },
  { "spec.source.nbd.uri", "SOURCE" },            { "spec.source.file.path", "SOURCE" },
  { "spec.storage", "--size" },                   { "vimport.allowedFormats", "--format" },
  { "vimport.target", "TARGET" },
};

/* A spec message ("command line:LINE: KEY: cause") in the command line's words
 * ("--checksum: cause"): the YAML was written by cli_spec_yaml, not by the user. */
static void cli_reword(struct verr *err)
{
  const char *p = err->message;
  if (strncmp(p, "command line:", 13) != 0)
    return;
  p += 13 + strspn(p + 13, "0123456789");
  if (strncmp(p, ": ", 2) != 0)
    return;
  p += 2;
  const char *arg = NULL;
  for (size_t i = 0; i < sizeof cli_keys / sizeof cli_keys[0] && arg == NULL; i++)
    if (strncmp(p, cli_keys[i].key, strlen(cli_keys[i].key)) == 0)
      arg = cli_keys[i].arg;
  const char *cause = strstr(p, ": ");
  char text[sizeof err->message];
  if (arg != NULL && cause != NULL)
    snprintf(text, sizeof text, "%s%s", arg, cause);
  else
    snprintf(text, sizeof text, "%s", p);
  snprintf(err->message, sizeof err->message, "%s", text);
}

/* --cert-dir: what IMPORTER_CERT_DIR is to CDI's environment, for the sources that
 * verify a server certificate. A plain http:// URL verifies none: refused, as a CA
 * directory that does nothing would leave the person believing the server was checked. */
static int cli_cert_dir(const struct cli_import *c, struct import_spec *spec, struct verr *err)
{
  if (c->cert_dir == NULL)
    return 0;
  enum spec_source_kind kind = spec->source.kind;
  const char *url = spec->source.http.url;
  if (kind != SPEC_SOURCE_HTTP && kind != SPEC_SOURCE_REGISTRY && kind != SPEC_SOURCE_S3)
    return verr_set(err, VERR_USAGE, "--cert-dir applies to https://, docker:// and s3:// "
                    "sources, which verify a server certificate; leave it out for %s",
                    kind == SPEC_SOURCE_NBD ? "an NBD URL" : "a file or stdin");
  if (kind != SPEC_SOURCE_REGISTRY && url != NULL && has_prefix(url, "http://"))
    return verr_set(err, VERR_USAGE, "--cert-dir: the source is plain http (%s), which "
                    "checks no certificate; use https:// or leave --cert-dir out",
                    kind == SPEC_SOURCE_S3 ? "its endpoint URL" : "SOURCE");
  struct stat st;
  if (stat(c->cert_dir, &st) < 0)
    return verr_set(err, VERR_USAGE, "--cert-dir %s: %s; give a directory of PEM CA "
                    "certificates", c->cert_dir, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return verr_set(err, VERR_USAGE, "--cert-dir %s: not a directory; give a directory of PEM "
                    "CA certificates (the CA file's folder)", c->cert_dir);
  free(spec->source.http.cert_dir);
  spec->source.http.cert_dir = strdup(c->cert_dir);
  if (spec->source.http.cert_dir == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  return 0;
}

int oneline_load_spec(const struct cli_import *c, struct import_spec **spec, struct verr *err)
{
  char *yaml = NULL;
  size_t len = 0;
  if (cli_spec_yaml(c, &yaml, &len, err) < 0)
    return -1;
  int r = spec_load_yaml_buffer(yaml, len, "command line", spec, err);
  free(yaml);
  if (r < 0) {
    cli_reword(err);
    return r;
  }
  if (((*spec)->source.kind == SPEC_SOURCE_S3 && s3_keys_from_env(&(*spec)->source.http, err) < 0) ||
      cli_cert_dir(c, *spec, err) < 0) {
    spec_free(*spec);
    *spec = NULL;
    return -1;
  }
  return 0;
}

