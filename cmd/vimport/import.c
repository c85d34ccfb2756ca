/* vimport import: run the import pipeline and leave CDI's termination message.
 *
 *   vimport import --spec FILE    a DataVolume-style YAML spec (see docs/spec.md)
 *   vimport import                CDI's IMPORTER_* environment contract
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
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
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
  fputs("usage: vimport import [--spec FILE]\n"
        "\n"
        "Fetch a disk image, check its checksum, convert it to raw on the target, read the\n"
        "target back and compare its block hash, then write CDI's termination message.\n"
        "  -s, --spec FILE   DataVolume-style YAML (docs/spec.md); without it the import is\n"
        "                    configured from CDI's IMPORTER_* environment variables\n"
        "      --metrics-port N  serve CDI's progress metric over HTTPS on port N (also\n"
        "                    VIMPORT_METRICS_PORT; 0 disables; default 8443 under CDI's\n"
        "                    environment contract, off with --spec)\n",
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

static int load_spec(const char *spec_path, struct import_spec **spec, struct verr *err)
{
  if (spec_path != NULL)
    return spec_load_yaml_file(spec_path, spec, err);
  return spec_load_env(environ, spec, err);
}

int cmd_import(int argc, char **argv)
{
  static const struct option longopts[] = {
    { "spec", required_argument, NULL, 's' },
    { "help", no_argument, NULL, 'h' },
    { "metrics-port", required_argument, NULL, 'm' },
    { NULL, 0, NULL, 0 },
  };
  const char *spec_path = NULL;
  const char *metrics_port = getenv("VIMPORT_METRICS_PORT");
  int c;
  while ((c = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
    if (c == 'm') {
      metrics_port = optarg;
    } else if (c == 's') {
      spec_path = optarg;
    } else if (c == 'h') {
      import_usage(stdout);
      return 0;
    } else {
      import_usage(stderr);
      return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "vimport import: unexpected argument '%s'\n", argv[optind]);
    import_usage(stderr);
    return 2;
  }

  struct import_spec *spec = NULL;
  struct verr err = { 0 };
  struct pipeline_result res = { 0 };
  if (load_spec(spec_path, &spec, &err) < 0) {
    vlog_error("spec", "%s", err.message);
    /* The spec names the message path; without one, CDI's default is all we know. */
    const char *path = getenv("VIMPORT_TERMINATION_MESSAGE_PATH");
    /* a bad spec is never a verdict: the plain cause, as CDI's own checks write it */
    return write_text(path ? path : REPORT_DEFAULT_PATH, NULL, err.message);
  }
  char *summary = spec_describe(spec);
  vlog_info("spec", "%s", summary ? summary : "(out of memory)");
  free(summary);

  install_stop_handlers();
  struct pipeline_opts opts = { .cancelled = &import_cancelled,
                                .metrics = start_metrics(metrics_port, spec_path == NULL, spec),
                                .progress_line = isatty(STDERR_FILENO) };
  if (node_pull_wait(spec, &err) < 0) {
    metrics_stop(opts.metrics);
    vlog_error("nodepull", "%s", err.message);
    /* CDI writes "Timeout waiting for file <path>" as it is, and exits 1 */
    int code = write_text(spec->termination_message_path, NULL, err.message);
    spec_free(spec);
    return code;
  }
  int r = pipeline_import(spec, &opts, &res, &err);
  metrics_finish(opts.metrics);
  metrics_stop(opts.metrics);
  if (r < 0)
    vlog_error("import", "%s", err.message);
  else if (res.archive)
    vlog_info("import", "Import Complete: %llu files, %llu bytes unpacked into %s",
              (unsigned long long)res.archive_files, (unsigned long long)res.archive_bytes,
              res.target_path);
  else if (res.block_hash[0])
    vlog_info("import", "Import Complete: %s, block hash %s", res.target_path, res.block_hash);
  else
    vlog_info("import", "Import Complete: %s", res.target_path); /* blank Block: nothing read back */
  if (r == 0 || err.code == VERR_SCRATCH_REQUIRED)
    node_pull_labels(spec, &res);
  node_pull_done(spec, r < 0 ? &err : NULL);
  int code = write_outcome(spec, &res, r < 0 ? &err : NULL);
  spec_free(spec);
  return code;
}
