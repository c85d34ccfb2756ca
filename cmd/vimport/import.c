/* vimport import: run the import pipeline and leave CDI's termination message.
 *
 *   vimport import --spec FILE    a DataVolume-style YAML spec (see docs/spec.md)
 *   vimport import FILE.yaml      the same (a .yaml or .yml argument)
 *   vimport import                CDI's IMPORTER_* environment contract
 *   vimport import SOURCE TARGET [--checksum ALG:HEX] [--format F] [--size N] [--cert-dir D]
 *                                 the one-line import for people at a terminal: the
 *                                 spec is written from the arguments (oneline.c) and
 *                                 loaded as a spec file is, so every check is the same;
 *                                 the result is one summary line on stdout, no
 *                                 termination message, exit 0 or 1 (a checksum verdict
 *                                 is a failure here: no controller reads a message)
 *
 * The termination message and exit code follow CDI's importer (cmd/cdi-importer/
 * importer.go handleImport, newDataSource), case by case in docs/cdi.md:
 *   success, scratch space required   JSON, exit 0
 *   a verification verdict            JSON whose message is "Unable to process data: ..."
 *                                     and holds "checksum mismatch", exit 0: the
 *                                     controller marks that fatal; the image file is removed
 *   the source cannot be reached      "Unable to connect to <kind> data source: <cause>", exit 1
 *   a bad spec or environment         the plain cause, exit 1 (also a setting the
 *                                     pipeline refuses, e.g. blank with contentType archive)
 *   every other failure               "Unable to process data: <cause>", exit 1
 * 2 for a bad command line.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "oneline.h"
#include "core/log.h"
#include "metrics/metrics.h"
#include "nodepull/nodepull.h"
#include "pipeline/pipeline.h"
#include "report/report.h"
#include "spec/spec.h"

extern char **environ;

/* Set by SIGTERM/SIGINT; the pipeline checks it before every write. File-scope state of
 * the command, the one place a signal handler can reach. */
static volatile sig_atomic_t import_cancelled;

static void on_stop_signal(int sig)
{
  (void)sig;
  /* atomic (lock-free, so safe here): other threads read it too (pkg/source/ring.c) */
  __atomic_store_n(&import_cancelled, 1, __ATOMIC_RELAXED);
}

static void install_stop_handlers(void)
{
  struct sigaction sa = { .sa_handler = on_stop_signal };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

static void import_usage(FILE *out)
{
  fputs("usage: vimport import SOURCE TARGET [--checksum ALG:HEX] [--format FORMAT] [--size N]\n"
        "                      [--cert-dir DIR] [-p]\n"
        "       vimport import [--spec] FILE.yaml\n"
        "       vimport import\n"
        "\n"
        "Fetch a disk image, check its checksum, convert it to raw on the target, read the\n"
        "target back and compare its block hash.\n"
        "  SOURCE               http(s):// URL, docker:// reference, nbd:// URL, a file, or -\n"
        "                       for stdin; s3://BUCKET/KEY with the AWS CLI's AWS_ENDPOINT_URL,\n"
        "                       AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n"
        "  TARGET               an image file (created or overwritten) or a block device\n"
        "  -c, --checksum ALG:HEX  the source's md5, sha1, sha256 or sha512, as served\n"
        "  -f, --format FORMAT  accept only this source format (raw, qcow2, vmdk, vdi, vhd,\n"
        "                       vhdx); default: any\n"
        "      --size N         size of the disk, a quantity (10Gi, 20G); default: the\n"
        "                       image's virtual size (a block device: its own size)\n"
        "      --cert-dir DIR   trust the CA certificates (PEM) in DIR besides the system's,\n"
        "                       for an https://, docker:// or s3:// source\n"
        "  -p, --progress       show progress on stderr (default when it is a terminal)\n"
        "      --no-progress    show no progress\n"
        "  -s, --spec FILE      DataVolume-style YAML (docs/spec.md); with no argument at all\n"
        "                       the import is configured from CDI's IMPORTER_* environment\n"
        "                       and writes CDI's termination message\n"
        "      --metrics-port N serve CDI's progress metric over HTTPS on port N (also\n"
        "                       VIMPORT_METRICS_PORT; 0 disables; default 8443 under CDI's\n"
        "                       environment contract, off otherwise)\n"
        "  -h, --help           show this help\n",
        out);
}

/* CDI's labels (envsToLabels): a registry source's, or a node pull's (res->image holds
 * only labels then: node_pull_labels). */
static int fill_labels(struct report *rep, const struct source_image *img, struct verr *err)
{
  for (size_t i = 0; i < img->n_labels; i++)
    if (report_set_label(rep, img->labels[i].key, img->labels[i].value, err) < 0)
      return -1;
  return 0;
}

/* A registry source: its labels and what the image was. */
static int fill_image(struct report *rep, const struct source_image *img, struct verr *err)
{
  if (fill_labels(rep, img, err) < 0)
    return -1;
  const char *layers[SOURCE_IMAGE_MAX_LAYERS];
  for (size_t i = 0; i < img->n_layers; i++)
    layers[i] = img->layer_digests[i];
  return report_set_registry(rep, img->manifest_digest, img->index_digest, layers,
                             img->n_layers, img->disk_file,
                             err);
}

static int fill_report(struct report *rep, const struct pipeline_result *res, const struct verr *failure,
                       struct verr *err)
{
  report_set_preallocation_applied(rep, res->preallocation_applied);
  /* report_set_error() sets scratchSpaceRequired itself for VERR_SCRATCH_REQUIRED */
  if (failure == NULL && report_set_message(rep, "Import Complete", err) < 0)
    return -1;
  if (failure != NULL && report_is_verdict(failure->code) &&
      report_set_verdict(rep, failure, err) < 0)
    return -1;
  if (failure != NULL && !report_is_verdict(failure->code) &&
      report_set_error(rep, failure, err) < 0)
    return -1;
  report_set_virtual_size(rep, res->virtual_size);
  report_set_bytes_transferred(rep, res->bytes_transferred);
  if (res->archive)
    report_set_archive(rep, res->archive_files, res->archive_bytes);
  if (res->source_digest[0] && report_set_source_digest(rep, res->source_digest, err) < 0)
    return -1;
  if (res->block_hash[0] && report_set_block_hash(rep, res->block_hash, err) < 0)
    return -1;
  if (res->block_hash[0])
    report_set_block_hash_length(rep, res->block_hash_length);
  if (res->image_block_hash[0] && report_set_image_block_hash(rep, res->image_block_hash, err) < 0)
    return -1;
  if (res->format[0] && report_set_format(rep, res->format, err) < 0)
    return -1;
  if (res->content[0] && report_set_content(rep, res->content, err) < 0)
    return -1;
  if (res->warning[0] && report_set_warning(rep, res->warning, err) < 0)
    return -1;
  if (res->source_checked[0] && report_set_source_checked(rep, res->source_checked, err) < 0)
    return -1;
  if (res->verified_by[0] && report_set_verified_by(rep, res->verified_by, err) < 0)
    return -1;
  for (unsigned i = 0; i < res->n_verified; i++)
    if (report_add_verified(rep, res->verified[i], err) < 0)
      return -1;
  return res->has_image ? fill_image(rep, &res->image, err) : fill_labels(rep, &res->image, err);
}

/* Write the JSON termination message and return the exit code. Failing to write the
 * message is logged and makes the import fail: the controller could not learn the
 * outcome. */
static int write_report(const char *path, const struct pipeline_result *res,
                        const struct verr *failure)
{
  struct report *rep = NULL;
  struct verr err = { 0 };
  int code = 1;
  if (report_new(&rep, &err) < 0 || fill_report(rep, res, failure, &err) < 0 ||
      report_write_file(rep, path, &err) < 0)
    vlog_error("report", "cannot write the termination message: %s", err.message);
  else
    code = report_exit_code(rep);
  report_free(rep);
  return code;
}

/* CDI's plain-text message of a failure that is no verdict; always exit 1. */
static int write_text(const char *path, const char *prefix, const char *cause)
{
  struct verr err = { 0 };
  if (report_write_text(prefix, cause, path, &err) < 0)
    vlog_error("report", "cannot write the termination message: %s", err.message);
  return 1;
}

/* CDI's name of the data source in "Unable to connect to <kind> data source". */
static const char *source_kind_name(enum spec_source_kind kind)
{
  switch (kind) {
  case SPEC_SOURCE_HTTP:
    return "http";
  case SPEC_SOURCE_REGISTRY:
    return "registry";
  case SPEC_SOURCE_S3:
    return "s3";
  case SPEC_SOURCE_GCS:
    return "gcs";
  case SPEC_SOURCE_FILE:
    return "file";
  case SPEC_SOURCE_NBD:
    return "nbd";
  default:
    return "blank";
  }
}

/* CDI's removeDownloadedFileOnChecksumFailure: after a verdict, no image file is left
 * on a Filesystem volume. The pipeline already invalidated it; removing it also frees
 * the space. A block device is left invalidated, as CDI leaves it. */
static void remove_image_file(const struct import_spec *spec, const struct pipeline_result *res)
{
  struct stat st;
  if (res->target_is_block || spec->content_type != SPEC_CONTENT_KUBEVIRT ||
      res->target_path[0] == '\0' || lstat(res->target_path, &st) < 0 || !S_ISREG(st.st_mode))
    return;
  if (unlink(res->target_path) < 0)
    vlog_warn("target", "cannot remove %s after the verification failed: %m", res->target_path);
  else
    vlog_warn("target", "removed %s: the image failed verification", res->target_path);
}

/* The termination message and exit code of a finished import (see the top comment). */
static int write_outcome(const struct import_spec *spec, const struct pipeline_result *res,
                         const struct verr *failure)
{
  const char *path = spec->termination_message_path;
  if (failure == NULL || failure->code == VERR_SCRATCH_REQUIRED)
    return write_report(path, res, failure);
  if (report_is_verdict(failure->code)) {
    remove_image_file(spec, res);
    return write_report(path, res, failure);
  }
  if (res->source_unreachable) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "Unable to connect to %s data source: ",
             source_kind_name(spec->source.kind));
    return write_text(path, prefix, failure->message);
  }
  /* a setting the pipeline refuses is a bad spec, found late: CDI's own checks of its
   * settings (errorEmptyDiskWithContentTypeArchive) write the plain cause */
  if (failure->code == VERR_USAGE)
    return write_text(path, NULL, failure->message);
  return write_text(path, REPORT_PROCESS_PREFIX, failure->message);
}

/* CDI's importer always serves its progress on 8443; a workstation run does not open a
 * port unless asked. A metrics server that cannot start is logged, never fatal. */
static struct metrics *start_metrics(const char *port_text, bool cdi_env,
                                     const struct import_spec *spec)
{
  unsigned port = cdi_env ? 8443 : 0;
  if (port_text != NULL) {
    char *end;
    unsigned long v = strtoul(port_text, &end, 10);
    if (*port_text == '\0' || *end != '\0' || v > 65535) {
      vlog_warn("metrics", "ignoring metrics port '%s': not a port number 0-65535", port_text);
      return NULL;
    }
    port = (unsigned)v;
  }
  if (port == 0)
    return NULL;
  /* With --spec the pod's OWNER_UID still names the owner, as CDI sets it for every importer */
  const char *owner = spec->target.owner_uid ? spec->target.owner_uid : getenv("OWNER_UID");
  struct metrics_opts mo = { .owner_uid = owner, .port = port };
  struct metrics *m = NULL;
  struct verr err = { 0 };
  if (metrics_start(&mo, &m, &err) < 0)
    vlog_warn("metrics", "no progress metric: %s", err.message);
  return m;
}

/* CDI's node pull (pkg/nodepull): before a source other than blank, wait for the
 * server's ready file; an http endpoint then names the disk file the ready file names. */
static int node_pull_wait(struct import_spec *spec, struct verr *err)
{
  const struct spec_node_pull *np = &spec->node_pull;
  if (np->ready_file == NULL || spec->source.kind == SPEC_SOURCE_BLANK)
    return 0;
  vlog_info("nodepull", "waiting up to %us for %s", np->ready_timeout_seconds, np->ready_file);
  if (nodepull_wait_ready(np->ready_file, np->ready_timeout_seconds, &import_cancelled, err) < 0)
    return -1;
  if (spec->source.kind != SPEC_SOURCE_HTTP)
    return 0;
  char *url;
  if (nodepull_endpoint(spec->source.http.url, np->ready_file, &url, err) < 0)
    return -1;
  free(spec->source.http.url);
  spec->source.http.url = url;
  char shown[2048];
  verr_redact_url(url, shown, sizeof shown);
  vlog_info("nodepull", "the server is ready: reading %s", shown);
  return 0;
}

/* CDI's touchDoneFile, after an import that succeeded or asked for scratch space and
 * before the termination message: it tells the server it may stop. */
static void node_pull_done(const struct import_spec *spec, const struct verr *failure)
{
  const char *done = spec->node_pull.done_file;
  struct verr err = { 0 };
  if (done == NULL || (failure != NULL && failure->code != VERR_SCRATCH_REQUIRED))
    return;
  if (nodepull_touch_done(done, &err) < 0)
    vlog_error("nodepull", "%s", err.message);
}

/* CDI's GetTerminationMessage for a node pull (IMPORTER_PULL_METHOD=node): the labels of
 * the server's /info, as a registry pull has them from the image config. A failure is
 * logged and leaves no labels, as in CDI. */
static void node_pull_labels(const struct import_spec *spec, struct pipeline_result *res)
{
  if (!spec->node_pull.node || spec->source.kind != SPEC_SOURCE_HTTP || res->has_image)
    return;
  struct nodepull_label labels[NODEPULL_MAX_LABELS];
  size_t n = 0;
  struct verr err = { 0 };
  if (nodepull_info_labels(spec->source.http.url, labels, &n, &err) < 0) {
    vlog_error("nodepull", "%s", err.message);
    return;
  }
  _Static_assert(sizeof labels[0].key == sizeof res->image.labels[0].key &&
                 sizeof labels[0].value == sizeof res->image.labels[0].value &&
                 NODEPULL_MAX_LABELS <= SOURCE_IMAGE_MAX_LABELS, "label sizes differ");
  for (size_t i = 0; i < n; i++) {
    memcpy(res->image.labels[i].key, labels[i].key, sizeof labels[i].key);
    memcpy(res->image.labels[i].value, labels[i].value, sizeof labels[i].value);
  }
  res->image.n_labels = n;
}

static double seconds_since(const struct timespec *start)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* The one line a person reads at the end of an import: what was written, how much, how
 * fast, and the digests that prove it (the source's as served, the target's block hash
 * as read back: `vimport sum TARGET` prints the same). */
static void cli_summary(const struct pipeline_result *res, double secs)
{
  /* a registry's disk file is hashed only for a checksum: its blobs' digests prove it */
  const char *source = res->source_digest[0] ? "source" : res->has_image ? "image" : "source";
  const char *digest = res->source_digest[0] ? res->source_digest
                       : res->has_image      ? res->image.manifest_digest
                                             : "(none)";
  printf("%s: %llu bytes (%s) in %.1f s, %s %s, block hash %s\n", res->target_path,
         (unsigned long long)res->virtual_size, res->format[0] ? res->format : "raw", secs,
         source, digest, res->block_hash[0] ? res->block_hash : "(none)");
  fflush(stdout);
}

/* A one-line import's outcome: the summary and exit 0, or the cause on stderr and exit 1
 * (a verdict too: nobody reads a termination message here). A target file the import
 * created is removed when it failed: a person retries with the same line, and an empty
 * or partial file left behind would pass for a disk. */
static int cli_outcome(const struct import_spec *spec, const struct pipeline_result *res,
                       const struct verr *failure, double secs, const char *created)
{
  if (failure == NULL) {
    cli_summary(res, secs);
    return 0;
  }
  struct stat st;
  if (report_is_verdict(failure->code))
    remove_image_file(spec, res);
  else if (created != NULL && lstat(created, &st) == 0 && S_ISREG(st.st_mode))
    unlink(created);
  if (failure->code == VERR_SCRATCH_REQUIRED)
    fprintf(stderr, "vimport import: this image cannot be streamed: import it from a file, "
                    "or with a spec that sets vimport.scratchPath\n");
  else
    fprintf(stderr, "vimport import: %s\n", failure->message);
  return 1;
}

/* How an import is configured: see the top of this file. */
enum import_mode { MODE_ENV, MODE_SPEC, MODE_CLI };

struct import_args {
  enum import_mode mode;
  const char *spec_path;
  const char *metrics_port;
  int progress; /* 1 on, 0 off, -1 the default */
  struct cli_import cli;
};

static bool is_yaml_name(const char *s)
{
  size_t n = strlen(s);
  return (n > 5 && strcmp(s + n - 5, ".yaml") == 0) || (n > 4 && strcmp(s + n - 4, ".yml") == 0);
}

/* Whether an option that only the one-line import takes was given. */
static bool cli_options(const struct cli_import *c)
{
  return c->checksum != NULL || c->format != NULL || c->size != NULL || c->cert_dir != NULL;
}

/* The positional arguments: none, FILE.yaml, or SOURCE TARGET. 0, or an exit code. */
static int import_positional(int n, char **args, struct import_args *a)
{
  if (n == 0 && !cli_options(&a->cli)) {
    a->mode = a->spec_path != NULL ? MODE_SPEC : MODE_ENV;
    return 0;
  }
  if (n == 1 && a->spec_path == NULL && is_yaml_name(args[0]) && !cli_options(&a->cli)) {
    a->mode = MODE_SPEC;
    a->spec_path = args[0];
    return 0;
  }
  if (n == 2 && a->spec_path == NULL) {
    a->mode = MODE_CLI;
    a->cli.source = args[0];
    a->cli.target = args[1];
    return 0;
  }
  fprintf(stderr, "vimport import: give SOURCE and TARGET, or a spec (FILE.yaml or --spec "
                  "FILE), or nothing for CDI's environment; --checksum, --format, --size and "
                  "--cert-dir go with SOURCE TARGET only\n");
  import_usage(stderr);
  return 2;
}

enum { OPT_METRICS_PORT = 256, OPT_SIZE, OPT_CERT_DIR, OPT_NO_PROGRESS };

/* Parse the command line into *a; returns -1 to go on, or the exit code to stop with. */
static int import_parse(int argc, char **argv, struct import_args *a)
{
  static const struct option longopts[] = {
    { "spec", required_argument, NULL, 's' },
    { "help", no_argument, NULL, 'h' },
    { "metrics-port", required_argument, NULL, OPT_METRICS_PORT },
    { "checksum", required_argument, NULL, 'c' },
    { "format", required_argument, NULL, 'f' },
    { "size", required_argument, NULL, OPT_SIZE },
    { "cert-dir", required_argument, NULL, OPT_CERT_DIR },
    { "progress", no_argument, NULL, 'p' },
    { "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
    { NULL, 0, NULL, 0 },
  };
  int c;
  while ((c = getopt_long(argc, argv, "s:hc:f:p", longopts, NULL)) != -1) {
    switch (c) {
    case OPT_METRICS_PORT: a->metrics_port = optarg; break;
    case 's': a->spec_path = optarg; break;
    case 'c': a->cli.checksum = optarg; break;
    case 'f': a->cli.format = optarg; break;
    case OPT_SIZE: a->cli.size = optarg; break;
    case OPT_CERT_DIR: a->cli.cert_dir = optarg; break;
    case 'p': a->progress = 1; break;
    case OPT_NO_PROGRESS: a->progress = 0; break;
    case 'h':
      import_usage(stdout);
      return 0;
    default:
      import_usage(stderr);
      return 2;
    }
  }
  int code = import_positional(argc - optind, argv + optind, a);
  return code != 0 ? code : -1;
}

static int load_spec(const struct import_args *a, struct import_spec **spec, struct verr *err)
{
  if (a->mode == MODE_CLI)
    return oneline_load_spec(&a->cli, spec, err);
  if (a->mode == MODE_SPEC)
    return spec_load_yaml_file(a->spec_path, spec, err);
  return spec_load_env(environ, spec, err);
}

/* The terminal line: on a terminal unless asked otherwise, never under CDI's environment
 * contract (its logs are collected; a line rewritten in place is noise there). */
static bool progress_wanted(const struct import_args *a)
{
  if (a->mode == MODE_ENV || !isatty(STDERR_FILENO))
    return false;
  return a->progress != 0;
}

static void log_complete(const struct pipeline_result *res)
{
  if (res->archive)
    vlog_info("import", "Import Complete: %llu files, %llu bytes unpacked into %s",
              (unsigned long long)res->archive_files, (unsigned long long)res->archive_bytes,
              res->target_path);
  else if (res->block_hash[0])
    vlog_info("import", "Import Complete: %s, block hash %s", res->target_path, res->block_hash);
  else
    vlog_info("import", "Import Complete: %s", res->target_path); /* blank Block: nothing read back */
}

int cmd_import(int argc, char **argv)
{
  struct import_args a = { .metrics_port = getenv("VIMPORT_METRICS_PORT"), .progress = -1 };
  int code = import_parse(argc, argv, &a);
  if (code >= 0)
    return code;

  struct import_spec *spec = NULL;
  struct verr err = { 0 };
  struct pipeline_result res = { 0 };
  if (load_spec(&a, &spec, &err) < 0 && a.mode == MODE_CLI) {
    fprintf(stderr, "vimport import: %s\n", err.message);
    return 1;
  }
  if (spec == NULL) {
    vlog_error("spec", "%s", err.message);
    /* The spec names the message path; without one, CDI's default is all we know. */
    const char *path = getenv("VIMPORT_TERMINATION_MESSAGE_PATH");
    /* a bad spec is never a verdict: the plain cause, as CDI's own checks write it */
    return write_text(path ? path : REPORT_DEFAULT_PATH, NULL, err.message);
  }
  char *summary = spec_describe(spec);
  vlog_info("spec", "%s", summary ? summary : "(out of memory)");
  free(summary);

  struct stat st;
  const char *created = /* the one-line import's target file, if this import makes it */
    a.mode == MODE_CLI && lstat(a.cli.target, &st) < 0 && errno == ENOENT ? a.cli.target : NULL;
  install_stop_handlers();
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  struct pipeline_opts opts = { .cancelled = &import_cancelled,
                                .metrics = start_metrics(a.metrics_port, a.mode == MODE_ENV, spec),
                                .progress_line = progress_wanted(&a) };
  if (node_pull_wait(spec, &err) < 0) {
    metrics_stop(opts.metrics);
    vlog_error("nodepull", "%s", err.message);
    /* CDI writes "Timeout waiting for file <path>" as it is, and exits 1 */
    code = write_text(spec->termination_message_path, NULL, err.message);
    spec_free(spec);
    return code;
  }
  int r = pipeline_import(spec, &opts, &res, &err);
  metrics_finish(opts.metrics);
  metrics_stop(opts.metrics);
  if (r < 0)
    vlog_error("import", "%s", err.message);
  else
    log_complete(&res);
  if (a.mode == MODE_CLI) {
    code = cli_outcome(spec, &res, r < 0 ? &err : NULL, seconds_since(&start), created);
    spec_free(spec);
    return code;
  }
  if (r == 0 || err.code == VERR_SCRATCH_REQUIRED)
    node_pull_labels(spec, &res);
  node_pull_done(spec, r < 0 ? &err : NULL);
  code = write_outcome(spec, &res, r < 0 ? &err : NULL);
  spec_free(spec);
  return code;
}
