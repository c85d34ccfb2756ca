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
 * hashed is the requested storage size when the spec gives one, else the whole file or
 * device: the expected block hash must have been computed over that same length.
 *
 * --manifest names a per-block digest manifest written by `vimport sum --manifest`
 * (format in cmd/vimport/sum.c). It is compared block by block while the volume is
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

#include <openssl/evp.h>

#include "blkhash/blkhash.h"
#include "commands.h"
#include "core/cleanup.h"
#include "core/error.h"
#include "core/log.h"
#include "report/report.h"
#include "spec/spec.h"
#include "verify/verify.h"

#define MANIFEST_MAX_RANGES 8

/* ---- the manifest, read in step with the hasher ------------------------------------ */

struct manifest_reader {
  FILE *f;
  const char *path;
  char line[512];
  unsigned lineno;
  bool have_entry;        /* `entry_*` holds the next unconsumed block line */
  bool seen_entry;        /* a block line was read: entry_index is the last one's index */
  uint64_t entry_index;
  unsigned char entry_md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len;        /* the digest's size */
  uint64_t block_size, length; /* the hashed length: the last block may be short */
  unsigned char zero_md[BLKHASH_MAX_MD_SIZE];      /* H(zeros(block_size)) */
  unsigned char zero_tail_md[BLKHASH_MAX_MD_SIZE]; /* H(zeros(length % block_size)) */
  bool failed;            /* a malformed line: `error` says which */
  char error[256];
  /* differing blocks, coalesced into ranges */
  uint64_t first[MANIFEST_MAX_RANGES], last[MANIFEST_MAX_RANGES];
  size_t ranges;
  uint64_t more_ranges;
  uint64_t blocks_differ;
  /* trailer */
  uint64_t trailer_length;
  char trailer_hex[2 * BLKHASH_MAX_MD_SIZE + 2]; /* as long as a line's hex field */
};

static int hex_to_bytes(const char *hex, unsigned char *out, unsigned max, unsigned *len)
{
  size_t n = strlen(hex);
  if (n == 0 || n % 2 != 0 || n / 2 > max)
    return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1)
      return -1;
    out[i] = (unsigned char)v;
  }
  *len = (unsigned)(n / 2);
  return 0;
}

static bool manifest_next_line(struct manifest_reader *m)
{
  if (fgets(m->line, sizeof m->line, m->f) == NULL)
    return false;
  m->lineno++;
  m->line[strcspn(m->line, "\r\n")] = '\0';
  return true;
}

static void manifest_fail(struct manifest_reader *m, const char *why)
{
  if (!m->failed)
    snprintf(m->error, sizeof m->error, "%s:%u: %s", m->path, m->lineno, why);
  m->failed = true;
}

/* Read the next block line into entry_*, or the trailer when the blocks end. */
static void manifest_advance(struct manifest_reader *m)
{
  m->have_entry = false;
  while (!m->failed && manifest_next_line(m)) {
    unsigned long long idx, len;
    char hex[2 * BLKHASH_MAX_MD_SIZE + 2];
    unsigned n = 0;
    if (sscanf(m->line, "length %llu", &len) == 1) {
      m->trailer_length = len;
    } else if (sscanf(m->line, "blockhash %129s", hex) == 1) {
      snprintf(m->trailer_hex, sizeof m->trailer_hex, "%s", hex);
    } else if (sscanf(m->line, "%llu %129s", &idx, hex) != 2) {
      manifest_fail(m, "not a manifest line (see 'vimport sum --help')");
    } else if (hex_to_bytes(hex, m->entry_md, sizeof m->entry_md, &n) < 0 || n != m->md_len) {
      manifest_fail(m, "a block digest of the wrong length for the digest");
    } else if (m->seen_entry && idx <= m->entry_index) {
      manifest_fail(m, "block lines out of order");
    } else {
      m->entry_index = idx;
      m->seen_entry = m->have_entry = true;
      return;
    }
  }
}

static void manifest_record(struct manifest_reader *m, uint64_t index)
{
  m->blocks_differ++;
  if (m->ranges > 0 && m->last[m->ranges - 1] + 1 == index) {
    m->last[m->ranges - 1] = index;
    return;
  }
  if (m->ranges == MANIFEST_MAX_RANGES) {
    m->more_ranges++;
    return;
  }
  m->first[m->ranges] = m->last[m->ranges] = index;
  m->ranges++;
}

/* blkhash's on_block: compare block `index` with the manifest's entry for it. */
static void manifest_on_block(void *opaque, uint64_t index, const unsigned char *md,
                              unsigned md_len)
{
  struct manifest_reader *m = opaque;
  while (!m->failed && m->have_entry && m->entry_index < index) {
    manifest_record(m, m->entry_index); /* only reachable through a corrupt manifest */
    manifest_advance(m);
  }
  const unsigned char *want;
  if (m->have_entry && m->entry_index == index) {
    want = m->entry_md;
  } else {
    bool tail = (index + 1) * m->block_size > m->length; /* a short last block */
    want = tail ? m->zero_tail_md : m->zero_md;
  }
  if (md_len != m->md_len || memcmp(md, want, md_len) != 0)
    manifest_record(m, index);
  if (m->have_entry && m->entry_index == index)
    manifest_advance(m);
}

static int zero_digest(const EVP_MD *type, const unsigned char *zeros, size_t len,
                       unsigned char *md)
{
  unsigned n;
  return EVP_Digest(zeros, len, md, &n, type, NULL) == 1 ? 0 : -1;
}

static int manifest_header(struct manifest_reader *m, const struct spec_block_hash *bh,
                           struct verr *err)
{
  char digest[64] = "";
  unsigned long long bs = 0;
  int version = 0;
  if (!manifest_next_line(m) || sscanf(m->line, "vimport-manifest %d", &version) != 1 ||
      version != 1)
    return verr_set(err, VERR_USAGE, "%s is not a vimport manifest version 1: write one with "
                    "'vimport sum --manifest FILE'", m->path);
  if (!manifest_next_line(m) || sscanf(m->line, "digest %63s", digest) != 1 ||
      !manifest_next_line(m) || sscanf(m->line, "block-size %llu", &bs) != 1)
    return verr_set(err, VERR_USAGE, "%s:%u: expected the digest and block-size lines",
                    m->path, m->lineno);
  if (strcmp(digest, bh->digest) != 0 || bs != bh->block_size)
    return verr_set(err, VERR_USAGE, "%s was made with digest %s and block size %llu, the "
                    "spec asks for %s and %u: make it again with 'vimport sum -d %s "
                    "--block-size %u --manifest'", m->path, digest, bs, bh->digest,
                    bh->block_size, bh->digest, bh->block_size);
  return 0;
}

static int manifest_open(struct manifest_reader *m, const char *path,
                         const struct spec_block_hash *bh, uint64_t length, struct verr *err)
{
  m->path = path;
  m->block_size = bh->block_size;
  m->length = length;
  m->f = fopen(path, "r");
  if (m->f == NULL)
    return verr_sys(err, VERR_USAGE, errno, "cannot open the manifest %s", path);
  if (manifest_header(m, bh, err) < 0)
    return -1;
  const EVP_MD *type = EVP_get_digestbyname(bh->digest);
  CLEANUP_FREE unsigned char *zeros = calloc(1, bh->block_size);
  if (zeros == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  m->md_len = type ? (unsigned)EVP_MD_get_size(type) : 0;
  if (type == NULL || zero_digest(type, zeros, bh->block_size, m->zero_md) < 0 ||
      zero_digest(type, zeros, length % bh->block_size, m->zero_tail_md) < 0)
    return verr_set(err, VERR_INTERNAL, "cannot compute the digest of a zero block");
  manifest_advance(m);
  return 0;
}

/* After the walk: the rest of the manifest (blocks past the hashed length, the
 * trailer). Appends to `out` what the comparison found. */
static void manifest_finish(struct manifest_reader *m, uint64_t blocks, const char *expected_hex,
                            char *out, size_t size)
{
  while (!m->failed && m->have_entry) {
    if (m->entry_index < blocks)
      manifest_record(m, m->entry_index);
    manifest_advance(m);
  }
  size_t used = strlen(out);
  if (m->failed) {
    snprintf(out + used, size - used, "; the manifest could not be used: %s", m->error);
    return;
  }
  if (m->trailer_length != m->length)
    used += (size_t)snprintf(out + used, size - used, "; the manifest covers %" PRIu64
                             " bytes, this check %" PRIu64, m->trailer_length, m->length);
  if (used < size && strcmp(m->trailer_hex, expected_hex) != 0)
    used += (size_t)snprintf(out + used, size - used, "; the manifest was made from an image "
                             "whose block hash is not the expected one, so the ranges below "
                             "compare with that image");
  if (m->blocks_differ == 0 || used >= size) {
    if (used < size)
      snprintf(out + used, size - used, "; every block matches the manifest %s "
               "(it was made from another image?)", m->path);
    return;
  }
  used += (size_t)snprintf(out + used, size - used, "; changed since the manifest: ");
  for (size_t i = 0; i < m->ranges && used < size; i++) {
    uint64_t a = m->first[i] * m->block_size;
    uint64_t b = (m->last[i] + 1) * m->block_size;
    b = (b > m->length ? m->length : b) - 1;
    used += (size_t)snprintf(out + used, size - used, "%sbytes %" PRIu64 "-%" PRIu64,
                             i ? ", " : "", a, b);
  }
  if (m->more_ranges && used < size)
    snprintf(out + used, size - used, " and %" PRIu64 " more ranges", m->more_ranges);
}

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
  if (spec->target.requested_size > 0)
    run->length = spec->target.requested_size;
  else if (volume_size(run->path, &run->length, err) < 0)
    return -1;

  struct manifest_reader m = { 0 };
  struct blkhash_opts opts = { .digest_name = bh->digest, .block_size = bh->block_size,
                               .threads = threads };
  int r = manifest_path ? manifest_open(&m, manifest_path, bh, run->length, err) : 0;
  if (r == 0 && manifest_path) {
    opts.on_block = manifest_on_block;
    opts.on_block_opaque = &m;
  }
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
      if (manifest_path)
        manifest_finish(&m, (run->length + bh->block_size - 1) / bh->block_size,
                        bh->expected_hex, detail, sizeof detail);
      r = verr_set(err, VERR_VERIFY, "Verification failed: the block hash of %s is %s, "
                   "expected %s:%s%s", run->path, run->calculated, bh->digest,
                   bh->expected_hex, detail);
    }
  }
  if (m.f != NULL)
    fclose(m.f);
  return r;
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
  int r = verify_volume(spec, manifest_path, threads, &run, &err);
  if (r < 0)
    vlog_error("verify", "%s", err.message);
  else
    vlog_info("verify", "Verification Complete: %s, %" PRIu64 " bytes, block hash %s%s",
              run.path, run.length, run.calculated, run.io.direct_io ? "" : " (buffered I/O)");
  int code = write_report(spec->termination_message_path, &run, r < 0 ? &err : NULL);
  spec_free(spec);
  return r < 0 ? 1 : code;
}
