/* Test helpers shared by the pkg/source unit tests (test_source.c, test_source_digest.c,
 * test_source_tls.c): the per-test fixture (a temporary directory with DATA_SIZE
 * deterministic bytes in it, made by setup(), removed by teardown() with any faultserver
 * or nginx it started), tests/e2e/faultserver.py serving that directory, source options
 * for a test URL, and readers that open a source or check it delivers the whole object.
 * Header-only: each test binary includes it once.
 */
#ifndef VIMPORT_TESTS_SOURCE_FIXTURES_H
#define VIMPORT_TESTS_SOURCE_FIXTURES_H

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
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

static inline const char *top(void)
{
  const char *t = getenv("VIMPORT_TOP");
  return t != NULL ? t : ".";
}

/* Deterministic bytes, so a splice or a repeat shows as a mismatch. */
static inline void make_data(void)
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

static inline void setup(void)
{
  memset(&fx, 0, sizeof fx);
  strcpy(fx.dir, "/tmp/vimport-test-source.XXXXXX");
  cr_assert_not_null(mkdtemp(fx.dir));
  make_data();
}

static inline void stop_faultserver(void)
{
  if (fx.server > 0) {
    kill(fx.server, SIGTERM);
    waitpid(fx.server, NULL, 0);
    fx.server = 0;
  }
}

static inline void stop_nginx(void)
{
  if (fx.nginx_state[0] != '\0') {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s/tests/e2e/nginx-fixture.sh' stop '%s'", top(),
             fx.nginx_state);
    cr_expect_eq(system(cmd), 0);
    fx.nginx_state[0] = '\0';
  }
}

static inline void teardown(void)
{
  stop_faultserver();
  stop_nginx();
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx.dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", fx.dir);
  free(fx.data);
}

static inline int read_port_file(const char *path)
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
static inline void start_faultserver(void)
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

static inline void url(char *out, size_t size, const char *query)
{
  snprintf(out, size, "http://127.0.0.1:%d/img.bin%s%s", fx.port, query[0] ? "?" : "", query);
}

static inline struct source_opts test_opts(const char *u)
{
  return (struct source_opts){
    .url = u, .retries = 3, .retry_delay_ms = 10, .stall_timeout_s = 5,
    .connect_timeout_s = 5,
  };
}

/* Read the whole stream into a fresh buffer. Returns the byte count, or -1 with `err`
 * filled; *got_bytes always says how many bytes arrived before the end or the error. */
static inline ssize_t read_all(struct vreader *r, unsigned char **out, size_t *got_bytes,
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

static inline void expect_whole_object(struct vreader *r)
{
  CLEANUP_FREE unsigned char *buf = NULL;
  size_t got;
  struct verr err = { 0 };
  ssize_t n = read_all(r, &buf, &got, &err);
  cr_assert_eq(n, (ssize_t)DATA_SIZE, "read %zd bytes (%zu arrived): %s", n, got, err.message);
  cr_assert(memcmp(buf, fx.data, DATA_SIZE) == 0, "bytes differ from the file");
}

static inline struct vreader *open_ok(const struct source_opts *o)
{
  struct vreader *r = NULL;
  struct verr err = { 0 };
  int rc = source_open(o, &r, &err);
  cr_assert_eq(rc, 0, "source_open(%s): %s", o->url, err.message);
  cr_assert_not_null(r);
  return r;
}

#endif
