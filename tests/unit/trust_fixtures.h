/* Test helpers shared by the pkg/trust unit tests (test_trust_checksum.c,
 * test_trust_signature.c): one temporary directory per test (fx.dir, made by setup(),
 * removed by teardown() with the faultserver it may have started), paths in it, shell
 * commands run there, whole-file writes and reads, and tests/e2e/faultserver.py serving
 * fx.dir over HTTP. Header-only: each test binary includes it once.
 */
#ifndef VIMPORT_TESTS_TRUST_FIXTURES_H
#define VIMPORT_TESTS_TRUST_FIXTURES_H

#include <criterion/criterion.h>

#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "source/source.h"

static struct {
  char dir[256];
  pid_t server;
  int port;
} fx;

static inline const char *top(void)
{
  const char *t = getenv("VIMPORT_TOP");
  return t != NULL ? t : ".";
}

static inline void setup(void)
{
  memset(&fx, 0, sizeof fx);
  strcpy(fx.dir, "/tmp/vimport-test-trust.XXXXXX");
  cr_assert_not_null(mkdtemp(fx.dir));
}

static inline void teardown(void)
{
  if (fx.server > 0) {
    kill(fx.server, SIGTERM);
    waitpid(fx.server, NULL, 0);
  }
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx.dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", fx.dir);
}

/* A path in fx.dir that stays valid for the whole test (one process per test). */
static inline char *path_in(const char *name)
{
  static char buf[1024][384];
  static size_t next;
  cr_assert_lt(next, sizeof buf / sizeof buf[0], "path_in: too many paths in one test");
  char *p = buf[next++];
  snprintf(p, sizeof buf[0], "%s/%s", fx.dir, name);
  return p;
}

/* Run shell commands in fx.dir (bash -e, at most 120 s); fail the test with the log. */
static inline void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void sh(const char *fmt, ...)
{
  char script[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(script, sizeof script, fmt, ap);
  va_end(ap);
  FILE *f = fopen(path_in("cmd.sh"), "w");
  cr_assert_not_null(f);
  fprintf(f, "set -euo pipefail\ncd '%s'\n%s\n", fx.dir, script);
  fclose(f);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "timeout 120 bash '%s/cmd.sh' >'%s/cmd.log' 2>&1", fx.dir, fx.dir);
  int rc = system(cmd);
  if (rc != 0) {
    char log[2048] = "";
    FILE *l = fopen(path_in("cmd.log"), "r");
    if (l != NULL) {
      size_t n = fread(log, 1, sizeof log - 1, l);
      log[n] = '\0';
      fclose(l);
    }
    cr_assert_fail("command failed (%d):\n%s\n%s", rc, script, log);
  }
}

static inline void write_file(const char *name, const void *data, size_t len)
{
  FILE *f = fopen(path_in(name), "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(data, 1, len, f), len);
  fclose(f);
}

static inline char *slurp(const char *name)
{
  FILE *f = fopen(path_in(name), "rb");
  cr_assert_not_null(f, "%s", name);
  char *buf = calloc(1, 1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static inline void start_faultserver(void)
{
  char script[512], port_file[512];
  snprintf(script, sizeof script, "%s/tests/e2e/faultserver.py", top());
  snprintf(port_file, sizeof port_file, "%s/port", fx.dir);
  if (access(script, R_OK) != 0)
    cr_skip_test("%s not found: run from the repo root or set VIMPORT_TOP", script);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    execlp("python3", "python3", script, "--root", fx.dir, "--port-file", port_file,
           "--timeout", "120", (char *)NULL);
    _exit(127);
  }
  fx.server = pid;
  for (int i = 0; i < 200 && fx.port == 0; i++) {
    FILE *f = fopen(port_file, "r");
    if (f != NULL) {
      if (fscanf(f, "%d", &fx.port) != 1)
        fx.port = 0;
      fclose(f);
    }
    if (fx.port == 0)
      usleep(50000);
  }
  cr_assert_gt(fx.port, 0, "faultserver did not report its port within 10 s");
}

static inline struct source_opts fetch_opts(const char *u)
{
  return (struct source_opts){ .url = u, .retries = SOURCE_RETRIES_NONE, .stall_timeout_s = 5,
                               .connect_timeout_s = 5 };
}

#endif
