/* vimport verify: read an existing volume back, compare its block hash with the one the
 * spec expects, and leave CDI's termination message. For a Kubernetes Job or CronJob
 * that checks a volume written earlier.
 *
 *   vimport verify --spec FILE [--manifest FILE] [-t THREADS]
 *
 * The volume is the spec's target, chosen as import chooses it: volumeMode Block, or no
 * volumeMode and an existing block device at vimport.target.blockDevice, means the
 * device; otherwise vimport.target.path. It is read with pkg/verify's verify_readback()
 * (page cache dropped, O_DIRECT where allowed, holes of files never read). The length
 * hashed is vimport.blockHashLength (or VIMPORT_BLOCK_HASH_LENGTH, which overrides it)
 * when given, else the whole file or device: the expected block hash must have been
 * computed over that same length. An import reports both as blockHash and
 * blockHashLength, so a verify Job takes them from its termination message. The
 * requested storage size plays no part: a provisioner may give more than requested.
 *
 * --manifest names a per-block digest manifest written by `vimport sum --manifest`
 * (format and reader in pkg/verify). It is compared block by block while the volume is
 * hashed, streaming (memory does not grow with the volume), so a mismatch names the
 * byte ranges that changed.
 *
 * Exit status: 0 when the block hash matches ("Verification Complete"), 1 on a mismatch
 * or any error (the message says which), 2 for a bad command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkhash/blkhash.h"
#include "commands.h"
#include "core/cleanup.h"
#include "core/error.h"
#include "core/log.h"
#include "report/report.h"
#include "spec/spec.h"
#include "verify/verify.h"

/* ---- the volume ------------------------------------------------------------------- */

static int volume_size(const char *path, uint64_t *size, struct verr *err)
{
  CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot open the volume %s (is it mounted "
                    "into the pod?)", path);
  if (S_ISREG(st.st_mode)) {
    *size = (uint64_t)st.st_size;
    return 0;
  }
  if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, size) == 0)
    return 0;
  return verr_sys(err, VERR_IO, S_ISBLK(st.st_mode) ? errno : 0,
                  "%s is neither a regular file nor a block device", path);
}

static unsigned online_cpus(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 16 ? 16 : (unsigned)n;
}

struct verify_run {
  const char *path;
  uint64_t length;
  char calculated[2 * BLKHASH_MAX_MD_SIZE + 80]; /* "<digest>:<hex>" */
  struct verify_result io;
};

/* Hash the volume and compare. 0: match; -1: `err` says why (VERR_VERIFY: mismatch). */
static int verify_volume(const struct import_spec *spec, const char *manifest_path,
                         unsigned threads, struct verify_run *run, struct verr *err)
{
  const struct spec_block_hash *bh = &spec->block_hash;
  if (!bh->has_expected)
    return verr_set(err, VERR_USAGE, "%s gives no expected block hash: add "
                    "vimport.expectedBlockHash: \"<digest>:<hex>\" (as printed by "
                    "'vimport sum' of the image) to the spec", spec->origin);
  run->path = spec_target_is_block(spec) ? spec->target.block_device : spec->target.path;
  if (bh->length > 0)
    run->length = bh->length; /* a shorter volume fails in verify_readback, saying so */
  else if (volume_size(run->path, &run->length, err) < 0)
    return -1;

  struct manifest_reader *m = NULL;
  struct blkhash_opts opts = { .digest_name = bh->digest, .block_size = bh->block_size,
                               .threads = threads };
  int r = manifest_path ? manifest_reader_open(manifest_path, bh->digest, bh->block_size,
                                               run->length, &m, err) : 0;
  if (m != NULL)
    manifest_reader_attach(m, &opts);
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len = 0;
  if (r == 0)
    r = verify_readback(run->path, run->length, &opts, md, &md_len, &run->io, err);
  if (r == 0) {
    char hex[2 * BLKHASH_MAX_MD_SIZE + 1];
    blkhash_hex(md, md_len, hex);
    snprintf(run->calculated, sizeof run->calculated, "%s:%s", bh->digest, hex);
    if (md_len != bh->expected_len || memcmp(md, bh->expected, md_len) != 0) {
      char detail[700] = "";
      if (m != NULL)
        manifest_reader_finish(m, bh->expected_hex, detail, sizeof detail);
      r = verr_set(err, VERR_VERIFY, "Verification failed: the block hash of %s is %s, "
                   "expected %s:%s%s", run->path, run->calculated, bh->digest,
                   bh->expected_hex, detail);
    }
  }
  manifest_reader_free(m);
  return r;
}

/* VIMPORT_BLOCK_HASH_LENGTH: the length a Job takes from the import's termination
 * message without editing the spec every volume shares. */
static int length_from_env(struct import_spec *spec, struct verr *err)
{
  const char *v = getenv("VIMPORT_BLOCK_HASH_LENGTH");
  if (v == NULL || *v == '\0')
    return 0;
  if (spec_parse_quantity(v, &spec->block_hash.length, err) < 0)
    return verr_prefix(err, "VIMPORT_BLOCK_HASH_LENGTH");
  return 0;
}

/* ---- report ----------------------------------------------------------------------- */

static int write_report(const char *path, const struct verify_run *run,
                        const struct verr *failure)
{
  struct report *rep = NULL;
  struct verr err = { 0 };
  int code = 1;
  int r = report_new(&rep, &err);
  if (r == 0 && failure == NULL)
    r = report_set_message(rep, "Verification Complete", &err);
  if (r == 0 && failure == NULL)
    r = report_add_verified(rep, REPORT_VERIFIED_EXPECTED, &err);
  if (r == 0 && failure != NULL)
    r = report_set_error(rep, failure, &err);
  if (r == 0 && run->calculated[0])
    r = report_set_block_hash(rep, run->calculated, &err);
  if (r == 0 && run->calculated[0])
    report_set_block_hash_length(rep, run->length);
  if (r == 0 && run->io.bytes_read + run->io.hole_bytes > 0)
    report_set_bytes_transferred(rep, run->io.bytes_read);
  if (r == 0)
    report_set_virtual_size(rep, run->length);
  if (r == 0)
    r = report_write_file(rep, path, &err);
  if (r < 0)
    vlog_error("report", "cannot write the termination message: %s", err.message);
  else
    code = report_exit_code(rep);
  report_free(rep);
  return code;
}

static void verify_usage(FILE *out)
{
  fputs("usage: vimport verify --spec FILE [--manifest FILE] [-t THREADS]\n"
        "\n"
        "Read the spec's target volume back (O_DIRECT), compute its block hash and compare it\n"
        "with vimport.expectedBlockHash; write the termination message. Exit 0 on a match,\n"
        "1 on a mismatch or error.\n"
        "  -s, --spec FILE       DataVolume-style YAML (docs/spec.md)\n"
        "  -m, --manifest FILE   per-block manifest from 'vimport sum --manifest': name the\n"
        "                        byte ranges that changed\n"
        "  -t, --threads N       hashing threads (default: online CPUs, at most 16)\n",
        out);
}

int cmd_verify(int argc, char **argv)
{
  static const struct option longopts[] = {
    { "spec", required_argument, NULL, 's' },
    { "manifest", required_argument, NULL, 'm' },
    { "threads", required_argument, NULL, 't' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *spec_path = NULL, *manifest_path = NULL;
  unsigned threads = online_cpus();
  int c;
  while ((c = getopt_long(argc, argv, "s:m:t:h", longopts, NULL)) != -1) {
    char *end;
    switch (c) {
    case 's': spec_path = optarg; break;
    case 'm': manifest_path = optarg; break;
    case 't':
      threads = (unsigned)strtoul(optarg, &end, 10);
      if (*end != '\0' || threads == 0 || threads > 256) {
        fprintf(stderr, "vimport verify: --threads must be a number from 1 to 256\n");
        return 2;
      }
      break;
    case 'h': verify_usage(stdout); return 0;
    default: verify_usage(stderr); return 2;
    }
  }
  if (spec_path == NULL || optind != argc) {
    verify_usage(stderr);
    return 2;
  }

  struct import_spec *spec = NULL;
  struct verr err = { 0 };
  struct verify_run run = { 0 };
  if (spec_load_yaml_file(spec_path, &spec, &err) < 0) {
    vlog_error("spec", "%s", err.message);
    const char *path = getenv("VIMPORT_TERMINATION_MESSAGE_PATH");
    write_report(path ? path : REPORT_DEFAULT_PATH, &run, &err);
    return 1;
  }
  int r = length_from_env(spec, &err);
  if (r == 0)
    r = verify_volume(spec, manifest_path, threads, &run, &err);
  if (r < 0)
    vlog_error("verify", "%s", err.message);
  else
    vlog_info("verify", "Verification Complete: %s, %" PRIu64 " bytes, block hash %s%s",
              run.path, run.length, run.calculated, run.io.direct_io ? "" : " (buffered I/O)");
  int code = write_report(spec->termination_message_path, &run, r < 0 ? &err : NULL);
  spec_free(spec);
  return r < 0 ? 1 : code;
}
