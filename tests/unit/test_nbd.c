/* Unit tests of pkg/nbd against real NBD servers: a private qemu-nbd started by libnbd
 * (socket activation) on every corpus variant of hack/make-format-corpus.sh (vmdk
 * monolithicSparse and streamOptimized, vpc dynamic and fixed, vhdx, vdi dynamic and
 * static), and nbdkit serving a raw file on a unix socket and on loopback TCP. Each walk
 * is written to a file and compared byte for byte with `qemu-img convert -O raw`. */
#include <criterion/criterion.h>

#include "corpus.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blkhash/blkhash.h"
#include "core/cleanup.h"
#include "core/error.h"
#include "core/stream.h"
#include "nbd/nbd.h"

TestSuite(nbd, .timeout = 180);

/* ---- the corpus (built once per script version, shared between runs) ---- */

static const char *corpus_dir(void)
{
  static char dir[1024];
  return test_corpus_dir(dir, sizeof dir, "hack/make-format-corpus.sh", "format", "32");
}

static void corpus_path(char *out, size_t size, const char *name)
{
  snprintf(out, size, "%s/%s", corpus_dir(), name);
}


/* ---- a sink that checks the order promise and builds the image in memory ---- */

struct image_sink {
  unsigned char *img; /* `size` bytes, zero-filled: zero extents write nothing */
  uint64_t size;
  uint64_t next;       /* extents must arrive in order, without gaps */
  bool last_was_zero;  /* neighbouring zero extents must have been merged */
  uint64_t data_bytes, zero_bytes;
  unsigned zero_extents;
};

static int image_sink_data(struct vsink *s, uint64_t off, const void *buf, size_t len,
                           struct verr *err)
{
  struct image_sink *st = s->state;
  (void)err;
  cr_assert_eq(off, st->next, "data at %llu, expected %llu", (unsigned long long)off,
               (unsigned long long)st->next);
  cr_assert(len > 0 && off + len <= st->size);
  memcpy(st->img + off, buf, len);
  st->next += len;
  st->data_bytes += len;
  st->last_was_zero = false;
  return 0;
}

static int image_sink_zero(struct vsink *s, uint64_t off, uint64_t len, struct verr *err)
{
  struct image_sink *st = s->state;
  (void)err;
  cr_assert_eq(off, st->next, "zero at %llu, expected %llu", (unsigned long long)off,
               (unsigned long long)st->next);
  cr_assert(len > 0 && off + len <= st->size);
  cr_assert(!st->last_was_zero, "two zero extents in a row at %llu", (unsigned long long)off);
  st->next += len;
  st->zero_bytes += len;
  st->zero_extents++;
  st->last_was_zero = true;
  return 0;
}

static const struct vsink_ops image_sink_ops = {
  .name = "test-image",
  .data = image_sink_data,
  .zero = image_sink_zero,
};

static void image_sink_init(struct vsink *sink, struct image_sink *st, uint64_t size)
{
  memset(st, 0, sizeof *st);
  st->img = calloc(1, size ? size : 1);
  cr_assert(st->img);
  st->size = size;
  sink->ops = &image_sink_ops;
  sink->state = st;
}

/* Walk `opts` into memory; check the result equals the file `oracle`. */
static void check_walk(const struct nbd_guest_opts *opts, const char *oracle,
                       struct image_sink *st)
{
  struct nbd_guest *g = NULL;
  struct verr err = { 0 };
  cr_assert_eq(nbd_guest_open(opts, &g, &err), 0, "open: %s", err.message);
  uint64_t want_size = 0;
  CLEANUP_FREE unsigned char *want = test_read_whole(oracle, &want_size);
  cr_assert_eq(nbd_guest_size(g), want_size, "export size %llu, oracle %llu",
               (unsigned long long)nbd_guest_size(g), (unsigned long long)want_size);
  struct vsink sink;
  image_sink_init(&sink, st, want_size);
  cr_assert_eq(nbd_guest_walk(g, &sink, &err), 0, "walk: %s", err.message);
  cr_assert_eq(st->next, want_size, "the walk stopped at %llu of %llu",
               (unsigned long long)st->next, (unsigned long long)want_size);
  cr_assert_eq(nbd_guest_zero_bytes(g), st->zero_bytes);
  cr_assert(nbd_guest_bytes_read(g) >= st->data_bytes);
  for (uint64_t i = 0; i < want_size; i++)
    cr_assert_eq(st->img[i], want[i], "byte %llu differs from %s", (unsigned long long)i,
                 oracle);
  nbd_guest_free(g);
  free(st->img);
  st->img = NULL;
}

/* ---- qemu-nbd by socket activation, every format of the corpus ---- */

static void check_variant(const char *name, const char *format, const char *oracle_name)
{
  char file[1200], oracle[1200];
  corpus_path(file, sizeof file, name);
  corpus_path(oracle, sizeof oracle, oracle_name);
  struct nbd_guest_opts opts = { .file = file, .format = format };
  struct image_sink st;
  check_walk(&opts, oracle, &st);
  /* a 32 MiB disk with a few MiB of files: block status must have skipped the rest */
  cr_assert(st.zero_bytes > st.size / 2, "%s: only %llu of %llu bytes were zero extents",
            name, (unsigned long long)st.zero_bytes, (unsigned long long)st.size);
}

Test(nbd, vmdk_monolithic_sparse)
{
  check_variant("monolithicSparse.vmdk", "vmdk", "monolithicSparse-vmdk.raw");
}

Test(nbd, vmdk_stream_optimized)
{
  check_variant("streamOptimized.vmdk", "vmdk", "streamOptimized-vmdk.raw");
}

Test(nbd, vhd_dynamic) { check_variant("dynamic.vhd", "vpc", "dynamic-vpc.raw"); }
Test(nbd, vhd_fixed) { check_variant("fixed.vhd", "vpc", "fixed-vpc.raw"); }
Test(nbd, vhdx) { check_variant("image.vhdx", "vhdx", "image-vhdx.raw"); }
Test(nbd, vdi_dynamic) { check_variant("dynamic.vdi", "vdi", "dynamic-vdi.raw"); }
Test(nbd, vdi_static) { check_variant("static.vdi", "vdi", "static-vdi.raw"); }

/* The in-order promise lets pkg/blkhash's sink take the walk directly; its hash must be
 * the hash of the oracle's bytes. */
Test(nbd, blkhash_sink_matches_oracle)
{
  char file[1200], oracle[1200];
  corpus_path(file, sizeof file, "streamOptimized.vmdk");
  corpus_path(oracle, sizeof oracle, "streamOptimized-vmdk.raw");
  struct blkhash_opts hopts = { .threads = 2 };
  struct blkhash *h = NULL;
  cr_assert_eq(blkhash_new(&hopts, &h), 0);
  struct vsink sink;
  struct blkhash_sink_state state;
  blkhash_sink_init(&sink, &state, h);
  struct verr err = { 0 };
  uint64_t size = 0;
  cr_assert_eq(nbd_guest_read_file(file, "vmdk", &sink, &size, &err), 0, "%s", err.message);
  unsigned char got[BLKHASH_MAX_MD_SIZE], want[BLKHASH_MAX_MD_SIZE];
  unsigned got_len, want_len;
  cr_assert_eq(blkhash_final(h, got, &got_len), 0);
  blkhash_free(h);

  uint64_t osize = 0;
  CLEANUP_FREE unsigned char *raw = test_read_whole(oracle, &osize);
  cr_assert_eq(size, osize);
  cr_assert_eq(blkhash_new(&hopts, &h), 0);
  cr_assert_eq(blkhash_update(h, raw, osize), 0);
  cr_assert_eq(blkhash_final(h, want, &want_len), 0);
  blkhash_free(h);
  cr_assert_eq(got_len, want_len);
  cr_assert(memcmp(got, want, got_len) == 0, "block hash over NBD differs from the oracle's");
}

/* A small request size forces many reads per data extent and keeps the bound. */
Test(nbd, small_requests)
{
  char file[1200], oracle[1200];
  corpus_path(file, sizeof file, "dynamic.vdi");
  corpus_path(oracle, sizeof oracle, "dynamic-vdi.raw");
  struct nbd_guest_opts opts = { .file = file, .format = "vdi", .request_size = 4096 };
  struct image_sink st;
  check_walk(&opts, oracle, &st);
}

/* ---- nbdkit on a unix socket and on loopback TCP ---- */

struct server {
  pid_t pid;
  char dir[64];
  char sock[128];
  int port;
};

static bool have(const char *tool)
{
  char cmd[256];
  snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
  return system(cmd) == 0;
}

/* Start `nbdkit -f [extra] file FILE` on a unix socket (port 0) or 127.0.0.1:port,
 * and wait (at most 10 s) until it accepts connections. */
static void nbdkit_start(struct server *s, const char *file, int port, const char *extra)
{
  memset(s, 0, sizeof *s);
  snprintf(s->dir, sizeof s->dir, "/tmp/vimport-test-nbd-XXXXXX");
  cr_assert(mkdtemp(s->dir) != NULL);
  snprintf(s->sock, sizeof s->sock, "%s/nbd.sock", s->dir);
  s->port = port;
  char port_s[16];
  snprintf(port_s, sizeof port_s, "%d", port);
  s->pid = fork();
  cr_assert(s->pid >= 0);
  if (s->pid == 0) {
    char *argv[16];
    int n = 0;
    argv[n++] = "nbdkit";
    argv[n++] = "-f";
    argv[n++] = "-r";
    if (extra)
      argv[n++] = (char *)extra;
    if (port) {
      argv[n++] = "-i";
      argv[n++] = "127.0.0.1";
      argv[n++] = "-p";
      argv[n++] = port_s;
    } else {
      argv[n++] = "-U";
      argv[n++] = s->sock;
    }
    argv[n++] = "file";
    argv[n++] = (char *)file;
    argv[n] = NULL;
    execvp("nbdkit", argv);
    _exit(127);
  }
  for (int i = 0; i < 200; i++) {
    struct nbd_guest *g = NULL;
    struct nbd_guest_opts opts = { 0 };
    char uri[256];
    if (port)
      snprintf(uri, sizeof uri, "nbd://127.0.0.1:%d/", port);
    else
      snprintf(uri, sizeof uri, "%s", s->sock);
    opts.uri = uri;
    struct verr err = { 0 };
    if ((port || access(s->sock, F_OK) == 0) && nbd_guest_open(&opts, &g, &err) == 0) {
      nbd_guest_free(g);
      return;
    }
    int status;
    cr_assert_eq(waitpid(s->pid, &status, WNOHANG), 0, "nbdkit exited early");
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep(&ts, NULL);
  }
  cr_assert_fail("nbdkit did not accept connections within 10 s");
}

static void server_stop(struct server *s)
{
  if (s->pid > 0) {
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", s->dir);
}

Test(nbd, nbdkit_unix_socket_uri)
{
  if (!have("nbdkit"))
    cr_skip_test("nbdkit is not installed (apt-get install nbdkit)");
  char base[1200];
  corpus_path(base, sizeof base, "base.img");
  struct server s;
  nbdkit_start(&s, base, 0, NULL);
  char uri[256];
  snprintf(uri, sizeof uri, "nbd+unix:///?socket=%s", s.sock);
  struct nbd_guest_opts opts = { .uri = uri };
  struct image_sink st;
  check_walk(&opts, base, &st);
  cr_assert(st.zero_bytes > st.size / 2, "holes of the file were read");
  /* the bare socket path works too */
  opts.uri = s.sock;
  check_walk(&opts, base, &st);
  server_stop(&s);
}

Test(nbd, nbdkit_tcp_loopback)
{
  if (!have("nbdkit"))
    cr_skip_test("nbdkit is not installed (apt-get install nbdkit)");
  char base[1200];
  corpus_path(base, sizeof base, "base.img");
  struct server s;
  /* a port from the pid keeps parallel runs apart; loopback only */
  int port = 20000 + (int)(getpid() % 20000);
  nbdkit_start(&s, base, port, NULL);
  char uri[256];
  snprintf(uri, sizeof uri, "nbd://127.0.0.1:%d/", port);
  struct nbd_guest_opts opts = { .uri = uri };
  struct image_sink st;
  check_walk(&opts, base, &st);
  server_stop(&s);
}

/* Without structured replies there is no block status: everything is read, and reads
 * of zeros still become zero extents. */
Test(nbd, nbdkit_without_block_status)
{
  if (!have("nbdkit"))
    cr_skip_test("nbdkit is not installed (apt-get install nbdkit)");
  char base[1200];
  corpus_path(base, sizeof base, "base.img");
  struct server s;
  nbdkit_start(&s, base, 0, "--no-sr");
  struct nbd_guest_opts opts = { .uri = s.sock };
  struct nbd_guest *g = NULL;
  struct verr err = { 0 };
  cr_assert_eq(nbd_guest_open(&opts, &g, &err), 0, "%s", err.message);
  cr_assert_not(nbd_guest_has_block_status(g));
  nbd_guest_free(g);
  struct image_sink st;
  check_walk(&opts, base, &st);
  cr_assert(st.zero_bytes > st.size / 2, "zero reads were not turned into zero extents");
  server_stop(&s);
}

/* ---- errors name the cause ---- */

Test(nbd, errors)
{
  struct nbd_guest *g = NULL;
  struct verr err = { 0 };
  struct nbd_guest_opts none = { 0 };
  cr_assert_eq(nbd_guest_open(&none, &g, &err), -1);
  cr_assert_eq(err.code, VERR_USAGE);

  struct nbd_guest_opts no_format = { .file = "/etc/hostname" };
  cr_assert_eq(nbd_guest_open(&no_format, &g, &err), -1);
  cr_assert_eq(err.code, VERR_USAGE);
  cr_assert(strstr(err.message, "format") != NULL, "%s", err.message);

  struct nbd_guest_opts missing = { .file = "/nonexistent/disk.vmdk", .format = "vmdk" };
  cr_assert_eq(nbd_guest_open(&missing, &g, &err), -1);
  cr_assert_eq(err.code, VERR_IO);

  struct nbd_guest_opts bad_uri = { .uri = "http://user:secret@example.com/x" };
  cr_assert_eq(nbd_guest_open(&bad_uri, &g, &err), -1);
  cr_assert_eq(err.code, VERR_USAGE);
  cr_assert(strstr(err.message, "secret") == NULL, "secret leaked: %s", err.message);

  struct nbd_guest_opts no_server = { .uri = "nbd+unix:///?socket=/nonexistent/nbd.sock" };
  cr_assert_eq(nbd_guest_open(&no_server, &g, &err), -1);
  cr_assert_eq(err.code, VERR_SOURCE);
  cr_assert(strstr(err.message, "NBD connection") != NULL, "%s", err.message);

  /* no qemu-nbd: the message says what to install, not only that the connection failed */
  struct nbd_guest_opts no_qemu = { .file = "/etc/hostname", .format = "vhdx",
                                    .qemu_nbd = "/nonexistent/qemu-nbd" };
  cr_assert_eq(nbd_guest_open(&no_qemu, &g, &err), -1);
  cr_assert_eq(err.code, VERR_USAGE, "%s", err.message);
  cr_assert(strstr(err.message, "qemu-utils") != NULL, "%s", err.message);

  /* a file qemu cannot open as the named format */
  struct nbd_guest_opts wrong = { .file = "/etc/hostname", .format = "vmdk" };
  cr_assert_eq(nbd_guest_open(&wrong, &g, &err), -1);
  cr_assert_eq(err.code, VERR_SOURCE, "%s", err.message);
}
