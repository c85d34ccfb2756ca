/* Tests for pkg/source against real servers: tests/e2e/faultserver.py for HTTP faults
 * and tests/e2e/nginx-fixture.sh for TLS. Each test runs in its own process (Criterion)
 * with its own server, data file and temporary directory.
 *
 * The repo root comes from VIMPORT_TOP, else the current directory (make runs tests
 * from the top). Tests that need nginx or python3 skip when those are missing.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/cleanup.h"
#include "digest/digest.h"
#include "source/source.h"

#define DATA_SIZE (2u << 20)

/* Per-test state: one process per test, so a file-scope fixture is private. */
static struct {
  char dir[256];
  char data_path[512];
  unsigned char *data;
  pid_t server;
  int port;
  char log_path[512];
  char nginx_state[512];
  int nginx_port, nginx_tls_port;
  char ca_pem[1024], ca_dir[1024];
} fx;

static const char *top(void)
{
  const char *t = getenv("VIMPORT_TOP");
  return t != NULL ? t : ".";
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Deterministic bytes, so a splice or a repeat shows as a mismatch. */
static void make_data(void)
{
  fx.data = malloc(DATA_SIZE);
  cr_assert_not_null(fx.data);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < DATA_SIZE; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    fx.data[i] = (unsigned char)x;
  }
  snprintf(fx.data_path, sizeof fx.data_path, "%s/img.bin", fx.dir);
  FILE *f = fopen(fx.data_path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(fx.data, 1, DATA_SIZE, f), DATA_SIZE);
  fclose(f);
}

static void setup(void)
{
  memset(&fx, 0, sizeof fx);
  strcpy(fx.dir, "/tmp/vimport-test-source.XXXXXX");
  cr_assert_not_null(mkdtemp(fx.dir));
  make_data();
}

static void stop_faultserver(void)
{
  if (fx.server > 0) {
    kill(fx.server, SIGTERM);
    waitpid(fx.server, NULL, 0);
    fx.server = 0;
  }
}

static void stop_nginx(void)
{
  if (fx.nginx_state[0] != '\0') {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s/tests/e2e/nginx-fixture.sh' stop '%s'", top(),
             fx.nginx_state);
    cr_expect_eq(system(cmd), 0);
    fx.nginx_state[0] = '\0';
  }
}

static void teardown(void)
{
  stop_faultserver();
  stop_nginx();
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx.dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", fx.dir);
  free(fx.data);
}

static int read_port_file(const char *path)
{
  int port = 0;
  FILE *f = fopen(path, "r");
  if (f != NULL) {
    if (fscanf(f, "%d", &port) != 1)
      port = 0;
    fclose(f);
  }
  return port;
}

/* Start faultserver.py serving fx.dir; waits (at most 10 s) for its port. */
static void start_faultserver(void)
{
  char script[512], port_file[512];
  snprintf(script, sizeof script, "%s/tests/e2e/faultserver.py", top());
  snprintf(port_file, sizeof port_file, "%s/port", fx.dir);
  snprintf(fx.log_path, sizeof fx.log_path, "%s/requests.log", fx.dir);
  if (access(script, R_OK) != 0)
    cr_skip_test("%s not found: run from the repo root or set VIMPORT_TOP", script);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    execlp("python3", "python3", script, "--root", fx.dir, "--port-file", port_file, "--log",
           fx.log_path, "--timeout", "120", (char *)NULL);
    _exit(127);
  }
  fx.server = pid;
  for (int i = 0; i < 200 && fx.port == 0; i++) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      fx.server = 0;
      cr_skip_test("python3 faultserver.py did not start (exit %d)", WEXITSTATUS(status));
    }
    fx.port = read_port_file(port_file);
    if (fx.port == 0)
      usleep(50000);
  }
  cr_assert_gt(fx.port, 0, "faultserver did not report its port within 10 s");
}

static void url(char *out, size_t size, const char *query)
{
  snprintf(out, size, "http://127.0.0.1:%d/img.bin%s%s", fx.port, query[0] ? "?" : "", query);
}

static struct source_opts test_opts(const char *u)
{
  return (struct source_opts){
    .url = u, .retries = 3, .retry_delay_ms = 10, .stall_timeout_s = 5,
    .connect_timeout_s = 5,
  };
}

/* Read the whole stream into a fresh buffer. Returns the byte count, or -1 with `err`
 * filled; *got_bytes always says how many bytes arrived before the end or the error. */
static ssize_t read_all(struct vreader *r, unsigned char **out, size_t *got_bytes,
                        struct verr *err)
{
  size_t cap = DATA_SIZE + (1u << 20), got = 0;
  unsigned char *buf = malloc(cap);
  cr_assert_not_null(buf);
  ssize_t n;
  while ((n = r->ops->read(r, buf + got, got + 65536 <= cap ? 65536 : cap - got, err)) > 0) {
    got += (size_t)n;
    cr_assert_lt(got, cap, "the source delivered more bytes than the object has");
  }
  *out = buf;
  *got_bytes = got;
  return n < 0 ? -1 : (ssize_t)got;
}

static void expect_whole_object(struct vreader *r)
{
  CLEANUP_FREE unsigned char *buf = NULL;
  size_t got;
  struct verr err = { 0 };
  ssize_t n = read_all(r, &buf, &got, &err);
  cr_assert_eq(n, (ssize_t)DATA_SIZE, "read %zd bytes (%zu arrived): %s", n, got, err.message);
  cr_assert(memcmp(buf, fx.data, DATA_SIZE) == 0, "bytes differ from the file");
}

/* The bytes that did arrive before a failure are a prefix of the object: never spliced. */
static void expect_prefix_then_error(struct vreader *r, struct verr *err)
{
  CLEANUP_FREE unsigned char *buf = NULL;
  size_t got;
  ssize_t n = read_all(r, &buf, &got, err);
  cr_assert_eq(n, -1, "the read succeeded (%zu bytes) but should have failed", got);
  cr_assert_leq(got, DATA_SIZE);
  cr_assert(memcmp(buf, fx.data, got) == 0, "bytes before the error differ: spliced?");
}

static int log_has(const char *needle)
{
  CLEANUP_FREE char *text = NULL;
  size_t len = 0;
  FILE *f = fopen(fx.log_path, "r");
  if (f == NULL)
    return 0;
  ssize_t n = getdelim(&text, &len, '\0', f);
  fclose(f);
  return n > 0 && strstr(text, needle) != NULL;
}

static struct vreader *open_ok(const struct source_opts *o)
{
  struct vreader *r = NULL;
  struct verr err = { 0 };
  int rc = source_open(o, &r, &err);
  cr_assert_eq(rc, 0, "source_open(%s): %s", o->url, err.message);
  cr_assert_not_null(r);
  return r;
}

TestSuite(source, .init = setup, .fini = teardown, .timeout = 60);

/* ---- files and stdin ------------------------------------------------------------ */

Test(source, file_reads_whole_file_and_preads)
{
  struct source_opts o = test_opts(fx.data_path);
  struct vreader *r = open_ok(&o);
  const struct source_info *info = source_info(r);
  cr_assert_str_eq(info->kind, "file");
  cr_assert_eq(info->content_length, (int64_t)DATA_SIZE);
  unsigned char buf[5000];
  struct verr err = { 0 };
  cr_assert_eq(source_pread(r, buf, sizeof buf, 123457, &err), 0, "%s", err.message);
  cr_assert(memcmp(buf, fx.data + 123457, sizeof buf) == 0);
  expect_whole_object(r);
  cr_assert_eq(source_info(r)->bytes_received, DATA_SIZE);
  cr_assert_eq(source_pread(r, buf, sizeof buf, DATA_SIZE - 10, &err), -1);
  vreader_close(r);
}

Test(source, file_url_and_errors)
{
  char u[1024];
  snprintf(u, sizeof u, "file://%s", fx.data_path);
  struct source_opts o = test_opts(u);
  struct vreader *r = open_ok(&o);
  expect_whole_object(r);
  vreader_close(r);

  struct verr err = { 0 };
  o.url = fx.dir;
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert(strstr(err.message, "directory") != NULL, "%s", err.message);
  o.url = "/nonexistent/vimport.img";
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert(strstr(err.message, "/nonexistent/vimport.img") != NULL, "%s", err.message);
  o.url = "ftp://user:pw@example.com/x";
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert_eq(err.code, VERR_USAGE);
  cr_assert(strstr(err.message, "pw") == NULL, "password leaked: %s", err.message);
}

Test(source, stdin_streams_and_refuses_pread)
{
  int p[2];
  cr_assert_eq(pipe(p), 0);
  cr_assert_eq(write(p[1], fx.data, 4096), 4096); /* fits the pipe buffer */
  close(p[1]);
  cr_assert_eq(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
  close(p[0]);
  struct source_opts o = test_opts("-");
  struct vreader *r = open_ok(&o);
  cr_assert_str_eq(source_info(r)->kind, "stdin");
  cr_assert_eq(source_info(r)->content_length, -1);
  unsigned char buf[8192];
  struct verr err = { 0 };
  cr_assert_eq(vreader_read_full(r, buf, sizeof buf, &err), 4096);
  cr_assert(memcmp(buf, fx.data, 4096) == 0);
  cr_assert_eq(source_pread(r, buf, 10, 0, &err), -1);
  cr_assert_eq(err.sys_errno, ENOTSUP);
  vreader_close(r);
}

/* ---- HTTP ------------------------------------------------------------------------ */

Test(source, http_full_read_and_info)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "");
  struct source_opts o = test_opts(u);
  struct vreader *r = open_ok(&o);
  const struct source_info *info = source_info(r);
  cr_assert_str_eq(info->kind, "http");
  cr_assert_eq(info->http_status, 200);
  cr_assert_eq(info->content_length, (int64_t)DATA_SIZE);
  cr_assert_str_eq(info->content_type, "application/octet-stream");
  cr_assert(info->etag[0] == '"', "etag %s", info->etag);
  cr_assert(info->last_modified[0] != '\0');
  cr_assert(info->accepts_ranges);
  expect_whole_object(r);
  info = source_info(r);
  cr_assert_eq(info->bytes_received, DATA_SIZE);
  cr_assert_eq(info->resumes, 0);
  vreader_close(r);
}

Test(source, http_reset_resumes_with_if_range)
{
  start_faultserver();
  char u[256];
  /* twice: the second resume starts at most at the reset byte (a RST may lose bytes in
   * flight, so the client sees the drop at or before it) */
  url(u, sizeof u, "reset=700000&times=2");
  struct source_opts o = test_opts(u);
  struct vreader *r = open_ok(&o);
  char etag[SOURCE_INFO_STR];
  snprintf(etag, sizeof etag, "%s", source_info(r)->etag);
  expect_whole_object(r);
  const struct source_info *info = source_info(r);
  cr_assert_eq(info->resumes, 2, "resumes %u", info->resumes);
  cr_assert_eq(info->bytes_received, DATA_SIZE);
  cr_assert(log_has("\"range\": \"bytes="), "no resume Range in the server log");
  char want[600];
  snprintf(want, sizeof want, "\"if_range\": \"\\\"%.*s\\\"\"", (int)strlen(etag) - 2, etag + 1);
  cr_assert(log_has(want), "no If-Range %s in the server log", want);
  vreader_close(r);
}

Test(source, http_short_body_resumes)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "short=300001");
  struct source_opts o = test_opts(u);
  struct vreader *r = open_ok(&o);
  expect_whole_object(r);
  cr_assert_eq(source_info(r)->resumes, 1);
  vreader_close(r);
}

Test(source, http_stall_resumes)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "stall=20&at=500000");
  struct source_opts o = test_opts(u);
  o.stall_timeout_s = 1;
  double t0 = now_s();
  struct vreader *r = open_ok(&o);
  expect_whole_object(r);
  cr_assert_lt(now_s() - t0, 10.0, "the stall was not cut short");
  cr_assert_eq(source_info(r)->resumes, 1);
  vreader_close(r);
}

/* Small ring: the transfer can only be 64 KiB ahead of the reader, so by the time the
 * connection drops at 1 MB the reader has consumed bytes and a restart is impossible. */
static void expect_resume_refused(const char *query, const char *needle)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, query);
  struct source_opts o = test_opts(u);
  o.buffer_size = 64 << 10;
  struct vreader *r = open_ok(&o);
  struct verr err = { 0 };
  expect_prefix_then_error(r, &err);
  cr_assert_eq(err.code, VERR_SOURCE);
  cr_assert(strstr(err.message, needle) != NULL, "message: %s", err.message);
  cr_assert(strstr(err.message, "restart") != NULL, "message: %s", err.message);
  vreader_close(r);
}

Test(source, http_etag_change_is_never_spliced)
{
  expect_resume_refused("reset=1000000&etag=change", "changed");
}

Test(source, http_200_to_range_is_refused)
{
  expect_resume_refused("reset=1000000&ignore_range=1", "ignores Range");
}

Test(source, http_206_at_wrong_offset_is_refused)
{
  expect_resume_refused("reset=1000000&bad_range=1", "- with bytes ");
}

Test(source, http_more_than_content_length_is_an_error)
{
  expect_resume_refused("extra=10", "more bytes than its Content-Length");
}

Test(source, http_200_to_range_restarts_when_nothing_was_read)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "reset=100000&ignore_range=1");
  struct source_opts o = test_opts(u); /* 4 MiB ring: the whole object fits */
  struct vreader *r = open_ok(&o);
  /* let the drop and the 200 happen before the first read */
  for (int i = 0; i < 100 && source_info(r)->retries == 0; i++)
    usleep(20000);
  usleep(200000);
  expect_whole_object(r);
  cr_assert_eq(source_info(r)->retries, 1);
  vreader_close(r);
}

/* ---- the object's digest, read in place from the source's ring (opts.lend_to_digest) ---- */

/* The source with pkg/digest's tap right above it, as the pipeline builds it. *src is
 * the source (borrowed from the tap, which is returned and owns it). */
static struct vreader *open_digested(struct source_opts *o, struct vreader **src)
{
  struct vreader *tap = NULL;
  struct verr err = { 0 };
  o->lend_to_digest = 1;
  *src = open_ok(o);
  cr_assert_not_null(source_digest_ring(*src), "an http source lends its ring");
  cr_assert_eq(digest_source_tap_new(*src, "sha256", &tap, &err), 0, "%s", err.message);
  return tap;
}

/* The digest the tap reports equals SHA-256 of want[0..size), over exactly size bytes. */
static void expect_digest_of(struct vreader *r, const unsigned char *want_data, size_t size)
{
  unsigned char want[EVP_MAX_MD_SIZE];
  unsigned want_len = 0;
  char got[CHECKSUM_STRING_MAX], want_hex[CHECKSUM_STRING_MAX];
  struct verr err = { 0 };
  cr_assert(EVP_Digest(want_data, size, want, &want_len, EVP_sha256(), NULL) == 1);
  cr_assert_eq(checksum_from_md("sha256", want, want_len, want_hex, sizeof want_hex, &err), 0);
  cr_assert_eq(digest_tap_final(r, got, sizeof got, &err), 0, "%s", err.message);
  cr_assert_eq(digest_tap_bytes(r), size, "hashed %llu bytes",
               (unsigned long long)digest_tap_bytes(r));
  cr_assert_str_eq(got, want_hex, "the digest is not SHA-256 of the object");
}

/* The same for the fixture's file. */
static void expect_source_digest(struct vreader *r)
{
  expect_digest_of(r, fx.data, DATA_SIZE);
}

/* Read `r` to its end in steps of 1 to max_ask bytes (a sequence stepped by `prime`),
 * every third one with read() and the others with view(), pausing now and then after a
 * view so that the transfer and the digest run ahead into the rest of the ring. Every
 * byte must equal want[0..size). Returns the bytes view() lent without copying. */
static size_t read_mixed(struct vreader *r, const unsigned char *want, size_t size,
                         size_t max_ask, unsigned prime)
{
  CLEANUP_FREE unsigned char *scratch = malloc(max_ask);
  cr_assert_not_null(scratch);
  size_t got = 0, lent = 0;
  struct verr err = { 0 };
  for (unsigned step = 0;; step++) {
    size_t ask = 1 + (step * prime) % max_ask;
    const void *view = scratch;
    ssize_t n = step % 3 == 2 ? r->ops->read(r, scratch, ask, &err)
                              : vreader_view(r, &view, ask, scratch, &err);
    cr_assert_geq(n, 0, "%s", err.message);
    if (n == 0)
      break;
    cr_assert_leq((size_t)n, ask);
    cr_assert_leq(got + (size_t)n, size);
    if (view != scratch) {
      lent += (size_t)n;
      if (step % 8 == 0)
        usleep(5000);
    }
    if (memcmp(view, want + got, (size_t)n) != 0) {
      size_t i = 0;
      while (((const unsigned char *)view)[i] == want[got + i])
        i++;
      cr_assert_fail("byte %zu is %#x, not %#x", got + i, ((const unsigned char *)view)[i],
                     want[got + i]);
    }
    got += (size_t)n;
  }
  cr_assert_eq(got, size);
  return lent;
}

Test(source, http_digest_of_the_object)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "");
  struct source_opts o = test_opts(u);
  o.buffer_size = 256u << 10; /* a small ring: the digest and the reader both wrap it */
  struct vreader *src, *r = open_digested(&o, &src);
  expect_whole_object(r);
  expect_source_digest(r);
  vreader_close(r);
}

/* view() lends the ring's own bytes: each stays intact while lent, even with the transfer
 * free to fill the rest of a small ring meanwhile, and mixed with read() every byte of
 * the object arrives once, in order, across resumes; the digest still sees all of them. */
Test(source, http_view_lends_ring_bytes_intact)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "reset=700000");
  struct source_opts o = test_opts(u);
  o.buffer_size = 200u << 10; /* not a multiple of the sizes asked: views stop at its end */
  struct vreader *src, *r = open_digested(&o, &src);
  size_t lent = read_mixed(r, fx.data, DATA_SIZE, 96u << 10, 7919u);
  cr_assert_gt(lent, DATA_SIZE / 2, "only %zu bytes were lent, not copied", lent);
  cr_assert_geq(source_info(src)->resumes, 1);
  expect_source_digest(r);
  vreader_close(r);
}

/* An object of zero runs, for the ring's zero granules (64 KiB; pkg/source/ring.c
 * ring_fill): 4 MiB through a 1 MiB ring, the first MiB random so that every later lap
 * finds the ring's memory dirty. Then granules that are whole zeros, zeros with one byte
 * last or first, half and half either way, zero runs that start and end inside granules,
 * 4 KiB pages that are zero or not at random, single bytes in zeros, and zeros to the end
 * (an object that ends inside a granule). */
#define ZDATA_SIZE ((4u << 20) - 12345)
#define ZGRAN (64u << 10)

static unsigned char *make_zero_runs(const char *path)
{
  unsigned char *d = malloc(ZDATA_SIZE);
  cr_assert_not_null(d);
  uint64_t x = 0x2545f4914f6cdd1dull;
  for (size_t i = 0; i < ZDATA_SIZE; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    d[i] = (unsigned char)(x | 1);
  }
  const size_t mib = 1u << 20, g = ZGRAN;
  memset(d + mib, 0, 4 * g);                      /* whole granules */
  memset(d + mib + 4 * g, 0, g - 1);              /* zeros, then one byte last */
  memset(d + mib + 5 * g + 1, 0, g - 1);          /* one byte first, then zeros */
  memset(d + mib + 6 * g, 0, g / 2);              /* zeros, then bytes */
  memset(d + mib + 7 * g + g / 2, 0, g / 2);      /* bytes, then zeros */
  memset(d + mib + 8 * g + 1000, 0, 3 * g + 5000); /* a run across granules, unaligned */
  for (size_t page = (2 * mib) / 4096; page < (3 * mib) / 4096; page++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    if (x % 3 != 0)
      memset(d + page * 4096, 0, 4096);
  }
  memset(d + 3 * mib, 0, ZDATA_SIZE - 3 * mib);
  for (size_t at = 3 * mib + 777; at < 3 * mib + mib / 2; at += 40009)
    d[at] = 0x5a;                                 /* single bytes in zeros */
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(d, 1, ZDATA_SIZE, f), ZDATA_SIZE);
  fclose(f);
  return d;
}

/* Every byte of such an object arrives intact through view() and read() alike, across a
 * resume in the middle of the zero runs, and the source digest is SHA-256 of it. */
Test(source, http_zero_runs_arrive_intact_and_digested)
{
  char path[600], u[256];
  snprintf(path, sizeof path, "%s/zeros.bin", fx.dir);
  CLEANUP_FREE unsigned char *d = make_zero_runs(path);
  start_faultserver();
  snprintf(u, sizeof u, "http://127.0.0.1:%d/zeros.bin?reset=2500000", fx.port);
  struct source_opts o = test_opts(u);
  o.buffer_size = 1u << 20; /* the smallest ring that has zero granules */
  struct vreader *src, *r = open_digested(&o, &src);
  read_mixed(r, d, ZDATA_SIZE, 300u << 10, 104729u);
  cr_assert_geq(source_info(src)->resumes, 1);
  expect_digest_of(r, d, ZDATA_SIZE);
  vreader_close(r);
}

Test(source, http_digest_across_resumes_counts_each_byte_once)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "reset=700000&times=2");
  struct source_opts o = test_opts(u);
  struct vreader *src, *r = open_digested(&o, &src);
  expect_whole_object(r);
  cr_assert_eq(source_info(src)->resumes, 2);
  expect_source_digest(r);
  vreader_close(r);
}

Test(source, http_digest_restarts_with_the_transfer)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "stall=1&at=500000&reset=600000&ignore_range=1&times=1");
  struct source_opts o = test_opts(u);
  o.buffer_size = 1u << 20; /* holds the bytes before the drop; wake mark 256 KiB */
  struct vreader *src, *r = open_digested(&o, &src);
  for (int i = 0; i < 100 && source_info(src)->retries == 0; i++)
    usleep(20000);
  usleep(200000);
  expect_whole_object(r);
  cr_assert_eq(source_info(src)->retries, 1);
  /* a 1 s stall at 500000 lets the digest thread hash what came (past its 256 KiB wake
   * mark) before the drop at 600000 and the restart: those bytes must be forgotten */
  expect_source_digest(r);
  vreader_close(r);
}

Test(source, digest_before_the_end_or_without_asking)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "");
  struct source_opts o = test_opts(u);
  struct vreader *src, *r = open_digested(&o, &src);
  unsigned char buf[4096];
  char md[CHECKSUM_STRING_MAX];
  struct verr err = { 0 };
  cr_assert_gt(r->ops->read(r, buf, sizeof buf, &err), 0);
  cr_expect_eq(digest_tap_final(r, md, sizeof md, &err), -1);
  cr_expect_eq(err.code, VERR_INTERNAL, "%s", err.message);
  vreader_close(r);

  o.lend_to_digest = 0; /* not asked for: a digest copies what it reads */
  r = open_ok(&o);
  expect_whole_object(r);
  cr_expect_null(source_digest_ring(r));
  vreader_close(r);

  o.lend_to_digest = 1;
  cr_expect_eq(digest_source_tap_new(open_ok(&o), "no-such-digest", &r, &err), -1);
  cr_expect_eq(err.code, VERR_USAGE, "%s", err.message);
}

Test(source, http_5xx_is_retried)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "status=503&times=2");
  struct source_opts o = test_opts(u);
  struct vreader *r = open_ok(&o);
  expect_whole_object(r);
  cr_assert_eq(source_info(r)->retries, 2);
  vreader_close(r);
}

Test(source, http_5xx_gives_up_after_the_budget)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "status=503&times=100");
  struct source_opts o = test_opts(u);
  o.retries = 2;
  struct vreader *r = NULL;
  struct verr err = { 0 };
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert(strstr(err.message, "HTTP 503") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "giving up after 3") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "retry later") != NULL, "%s", err.message);
}

/* opts.stop (set by cmd/'s SIGTERM handler) ends a read that waits on a stalled
 * server at once, instead of after the stall: Kubernetes SIGKILLs after its grace
 * period, and a killed import cannot invalidate its target. */
Test(source, http_stop_flag_ends_a_stalled_read)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "stall=20&at=500000");
  struct source_opts o = test_opts(u);
  o.stall_timeout_s = 60;
  volatile sig_atomic_t stop = 0;
  o.stop = &stop;
  struct vreader *r = open_ok(&o);
  CLEANUP_FREE unsigned char *buf = malloc(65536);
  cr_assert_not_null(buf);
  size_t got = 0;
  struct verr err = { 0 };
  while (got < 500000) {
    ssize_t n = r->ops->read(r, buf, 500000 - got < 65536 ? 500000 - got : 65536, &err);
    cr_assert_gt(n, 0, "read before the stall: %s", err.message);
    got += (size_t)n;
  }
  stop = 1; /* as the signal handler would, while the server stalls */
  double t0 = now_s();
  cr_assert_eq(r->ops->read(r, buf, 65536, &err), -1);
  cr_assert_lt(now_s() - t0, 2.0, "the stop flag did not end the wait");
  cr_assert_eq(err.code, VERR_CANCELLED, "%s", err.message);
  cr_assert(strstr(err.message, "rerun") != NULL, "%s", err.message);
  vreader_close(r);
}

/* SOURCE_RETRIES_NONE (a spec's "retries: 0") gives up at the first failure; 0 would
 * mean the default budget. */
Test(source, http_retries_none_gives_up_at_once)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "status=503&times=100");
  struct source_opts o = test_opts(u);
  o.retries = SOURCE_RETRIES_NONE;
  struct vreader *r = NULL;
  struct verr err = { 0 };
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert(strstr(err.message, "giving up after 1 failed") != NULL, "%s", err.message);
}

Test(source, http_404_names_status_and_redacted_url)
{
  start_faultserver();
  char u[256];
  snprintf(u, sizeof u, "http://alice:s3cret-pw@127.0.0.1:%d/missing.bin?token=t0ps3cret",
           fx.port);
  struct source_opts o = test_opts(u);
  struct vreader *r = NULL;
  struct verr err = { 0 };
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert_eq(err.code, VERR_SOURCE);
  cr_assert(strstr(err.message, "HTTP 404") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "127.0.0.1") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "/missing.bin") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "check the URL") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "s3cret") == NULL, "secret leaked: %s", err.message);
  cr_assert(strstr(err.message, "t0ps3cret") == NULL, "token leaked: %s", err.message);
}

Test(source, http_basic_auth)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "auth=alice:s3cret-pw");
  struct source_opts o = test_opts(u);
  struct vreader *r = NULL;
  struct verr err = { 0 };
  o.basic_user = "alice";
  o.basic_password = "wrong-pw";
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert(strstr(err.message, "HTTP 401") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "credentials") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "wrong-pw") == NULL, "password leaked: %s", err.message);
  cr_assert(strstr(err.message, "alice") == NULL, "user leaked: %s", err.message);
  o.basic_password = "s3cret-pw";
  r = open_ok(&o);
  expect_whole_object(r);
  vreader_close(r);
}

Test(source, http_extra_headers)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "require_header=X-Token:abc123");
  struct source_opts o = test_opts(u);
  struct vreader *r = NULL;
  struct verr err = { 0 };
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert(strstr(err.message, "HTTP 403") != NULL, "%s", err.message);
  const char *headers[] = { "X-Token: abc123", "X-Other: 1" };
  o.extra_headers = headers;
  o.n_extra_headers = 2;
  r = open_ok(&o);
  expect_whole_object(r);
  vreader_close(r);
  const char *bad[] = { "X-Token: abc\r\nX-Injected: 1" };
  o.extra_headers = bad;
  o.n_extra_headers = 1;
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert_eq(err.code, VERR_USAGE);
  cr_assert(strstr(err.message, "abc") == NULL, "header value leaked: %s", err.message);
}

Test(source, http_redirects_followed_and_loop_refused)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "redirect=3");
  struct source_opts o = test_opts(u);
  struct vreader *r = open_ok(&o);
  expect_whole_object(r);
  vreader_close(r);
  url(u, sizeof u, "redirect=loop");
  struct verr err = { 0 };
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert(strstr(err.message, "redirect") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "10 times") != NULL, "%s", err.message);
}

Test(source, http_html_error_page_reports_its_type)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "html=1");
  struct source_opts o = test_opts(u);
  struct vreader *r = open_ok(&o);
  cr_assert(strncmp(source_info(r)->content_type, "text/html", 9) == 0);
  vreader_close(r);
}

Test(source, http_pread_reads_exact_ranges)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "");
  struct source_opts o = test_opts(u);
  o.buffer_size = 64 << 10;
  struct vreader *r = open_ok(&o);
  unsigned char buf[70000];
  struct verr err = { 0 };
  cr_assert_eq(source_pread(r, buf, sizeof buf, 1234567, &err), 0, "%s", err.message);
  cr_assert(memcmp(buf, fx.data + 1234567, sizeof buf) == 0);
  expect_whole_object(r); /* the stream is untouched by the re-read */
  cr_assert_eq(source_pread(r, buf, 1, DATA_SIZE - 1, &err), 0, "%s", err.message);
  cr_assert_eq(buf[0], fx.data[DATA_SIZE - 1]);
  cr_assert_eq(source_pread(r, buf, 2, DATA_SIZE - 1, &err), -1);
  cr_assert(log_has("\"range\": \"bytes=1234567-1304566\""));
  vreader_close(r);
}

Test(source, http_pread_refuses_a_changed_object)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "etag=change"); /* the first response's ETag is never seen again */
  struct source_opts o = test_opts(u);
  struct vreader *r = open_ok(&o);
  unsigned char buf[1000];
  struct verr err = { 0 };
  cr_assert_eq(source_pread(r, buf, sizeof buf, 4096, &err), -1);
  cr_assert(strstr(err.message, "changed") != NULL, "%s", err.message);
  vreader_close(r);
}

Test(source, http_proxy_from_environment)
{
  start_faultserver();
  char proxy[64];
  snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", fx.port);
  setenv("http_proxy", proxy, 1);
  unsetenv("no_proxy");
  unsetenv("NO_PROXY");
  /* only the proxy can answer for this name */
  struct source_opts o = test_opts("http://vimport-proxy-test.invalid/img.bin");
  struct vreader *r = open_ok(&o);
  expect_whole_object(r);
  vreader_close(r);
}

Test(source, close_stops_a_stalled_transfer_promptly)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "stall=30&at=300000");
  struct source_opts o = test_opts(u);
  o.stall_timeout_s = 60;
  struct vreader *r = open_ok(&o);
  unsigned char buf[65536];
  struct verr err = { 0 };
  cr_assert_eq(vreader_read_full(r, buf, sizeof buf, &err), (ssize_t)sizeof buf);
  usleep(300000);
  double t0 = now_s();
  vreader_close(r);
  cr_assert_lt(now_s() - t0, 3.0, "close waited for the stalled transfer");
}

Test(source, http_connection_refused_is_retried_then_reported)
{
  struct source_opts o = test_opts("http://127.0.0.1:1/img.bin");
  o.retries = 1;
  struct vreader *r = NULL;
  struct verr err = { 0 };
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert_eq(err.code, VERR_SOURCE);
  cr_assert(strstr(err.message, "127.0.0.1:1") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "giving up after 2") != NULL, "%s", err.message);
}

/* ---- TLS against nginx ----------------------------------------------------------- */

static void start_nginx(void)
{
  char fixture[512], serve[512], cmd[2048], env_path[600];
  snprintf(fixture, sizeof fixture, "%s/tests/e2e/nginx-fixture.sh", top());
  if (access("/usr/sbin/nginx", X_OK) != 0 || access(fixture, X_OK) != 0)
    cr_skip_test("nginx or %s missing", fixture);
  snprintf(serve, sizeof serve, "%s", fx.dir);
  snprintf(fx.nginx_state, sizeof fx.nginx_state, "%s/nginx", fx.dir);
  snprintf(cmd, sizeof cmd, "NGINX_LIFETIME=120 '%s' start '%s' '%s'", fixture, fx.nginx_state,
           serve);
  if (system(cmd) != 0) {
    fx.nginx_state[0] = '\0';
    cr_assert_fail("nginx-fixture.sh start failed");
  }
  snprintf(env_path, sizeof env_path, "%s/env", fx.nginx_state);
  FILE *f = fopen(env_path, "r");
  cr_assert_not_null(f);
  char line[1024];
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    if (sscanf(line, "NGINX_PORT=%d", &fx.nginx_port) == 1 ||
        sscanf(line, "NGINX_TLS_PORT=%d", &fx.nginx_tls_port) == 1)
      continue;
    if (strncmp(line, "TEST_CA=", 8) == 0)
      snprintf(fx.ca_pem, sizeof fx.ca_pem, "%s", line + 8);
    if (strncmp(line, "TEST_CA_DIR=", 12) == 0)
      snprintf(fx.ca_dir, sizeof fx.ca_dir, "%s", line + 12);
  }
  fclose(f);
  cr_assert(fx.nginx_tls_port > 0 && fx.ca_pem[0] && fx.ca_dir[0]);
}

static void tls_url(char *out, size_t size, const char *host)
{
  snprintf(out, size, "https://%s:%d/img.bin", host, fx.nginx_tls_port);
}

Test(source, tls_trusts_a_ca_directory)
{
  start_nginx();
  char u[256];
  tls_url(u, sizeof u, "localhost");
  struct source_opts o = test_opts(u);
  o.ca_dir = fx.ca_dir;
  struct vreader *r = open_ok(&o);
  expect_whole_object(r);
  vreader_close(r);
}

/* The layout kubelet gives a ConfigMap volume: files are symlinks into ..data/. */
Test(source, tls_trusts_a_configmap_mount)
{
  start_nginx();
  char cm[600], cmd[4096];
  snprintf(cm, sizeof cm, "%s/certs", fx.dir);
  snprintf(cmd, sizeof cmd,
           "set -e; mkdir -p '%s/..2024_01_01_00_00_00.1' && cd '%s' && "
           "cp '%s' ..2024_01_01_00_00_00.1/ca.crt && echo 'not a cert' > "
           "..2024_01_01_00_00_00.1/README && ln -s ..2024_01_01_00_00_00.1 ..data && "
           "ln -s ..data/ca.crt ca.crt && ln -s ..data/README README",
           cm, cm, fx.ca_pem);
  cr_assert_eq(system(cmd), 0);
  char u[256];
  tls_url(u, sizeof u, "127.0.0.1");
  struct source_opts o = test_opts(u);
  o.ca_dir = cm;
  struct vreader *r = open_ok(&o);
  expect_whole_object(r);
  vreader_close(r);
}

Test(source, tls_trusts_a_ca_file)
{
  start_nginx();
  char u[256];
  tls_url(u, sizeof u, "localhost");
  struct source_opts o = test_opts(u);
  o.ca_file = fx.ca_pem;
  struct vreader *r = open_ok(&o);
  expect_whole_object(r);
  vreader_close(r);
}

Test(source, tls_refuses_an_unknown_ca)
{
  start_nginx();
  char u[256];
  tls_url(u, sizeof u, "localhost");
  struct source_opts o = test_opts(u);
  struct vreader *r = NULL;
  struct verr err = { 0 };
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert_eq(err.code, VERR_SOURCE);
  cr_assert(strstr(err.message, "not trusted") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "localhost") != NULL, "%s", err.message);
}

Test(source, tls_ca_dir_without_pem_is_a_usage_error)
{
  start_nginx();
  char empty[600], cmd[2048];
  snprintf(empty, sizeof empty, "%s/nocerts", fx.dir);
  snprintf(cmd, sizeof cmd, "mkdir '%s' && echo junk > '%s/ca.crt'", empty, empty);
  cr_assert_eq(system(cmd), 0);
  char u[256];
  tls_url(u, sizeof u, "localhost");
  struct source_opts o = test_opts(u);
  o.ca_dir = empty;
  struct vreader *r = NULL;
  struct verr err = { 0 };
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert_eq(err.code, VERR_USAGE);
  cr_assert(strstr(err.message, "no PEM certificate") != NULL, "%s", err.message);
}

Test(source, tls_insecure_skip_verify_accepts)
{
  start_nginx();
  char u[256];
  tls_url(u, sizeof u, "localhost");
  struct source_opts o = test_opts(u);
  o.insecure_skip_verify = 1;
  struct vreader *r = open_ok(&o);
  expect_whole_object(r);
  vreader_close(r);
}

Test(source, nginx_plain_http_with_range_reads)
{
  start_nginx();
  char u[256];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/img.bin", fx.nginx_port);
  struct source_opts o = test_opts(u);
  struct vreader *r = open_ok(&o);
  unsigned char buf[4096];
  struct verr err = { 0 };
  cr_assert_eq(source_pread(r, buf, sizeof buf, 999999, &err), 0, "%s", err.message);
  cr_assert(memcmp(buf, fx.data + 999999, sizeof buf) == 0);
  expect_whole_object(r);
  vreader_close(r);
}

/* ---- header parsing ---------------------------------------------------------------- */

Test(source_http_header, content_range)
{
  uint64_t f, l;
  int64_t t;
  cr_assert_eq(source_http_parse_content_range("bytes 10-19/100", 15, &f, &l, &t), 0);
  cr_assert(f == 10 && l == 19 && t == 100);
  cr_assert_eq(source_http_parse_content_range("bytes 0-0/*", 11, &f, &l, &t), 0);
  cr_assert_eq(t, -1);
  const char *bad[] = { "bytes 20-10/100", "bytes 0-100/100", "bytes */100", "bytes 1-2",
                        "items 1-2/3", "bytes 1-2/3x", "bytes 99999999999999999999-1/2",
                        "bytes -1-2/3", "" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_eq(source_http_parse_content_range(bad[i], strlen(bad[i]), &f, &l, &t), -1,
                 "accepted %s", bad[i]);
}

Test(source_http_header, lines)
{
  struct source_http_response resp;
  source_http_response_reset(&resp);
  const char *lines[] = {
    "HTTP/1.1 302 Found\r\n", "Location: /x\r\n", "Content-Length: 5\r\n", "\r\n",
    "HTTP/2 206\r\n", "content-range: bytes 5-9/10\r\n", "ETag:  \"abc\" \r\n",
    "Content-Type: application/octet-stream\r\n", "Accept-Ranges: bytes\r\n",
    "Content-Length: 5\r\n",
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    source_http_parse_line(&resp, lines[i], strlen(lines[i]));
  cr_assert_eq(resp.status, 206);
  cr_assert(resp.has_content_range && resp.range_first == 5 && resp.range_total == 10);
  cr_assert_str_eq(resp.etag, "\"abc\"");
  cr_assert(source_http_etag_is_strong(resp.etag));
  cr_assert(!source_http_etag_is_strong("W/\"abc\""));
  cr_assert_eq(resp.content_length, 5);
  cr_assert(resp.accept_ranges);
  cr_assert_eq(source_http_parse_line(&resp, "\r\n", 2), 1);
  int s;
  cr_assert_eq(source_http_parse_status("HTTP/1.0 99 x", 13, &s), -1);
  cr_assert_eq(source_http_parse_status("HTTP/1.1 2000", 13, &s), -1);
  cr_assert_eq(source_http_parse_status("HTTP/1.1 404 Not Found", 22, &s), 0);
  cr_assert_eq(s, 404);
}
