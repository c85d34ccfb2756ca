/* Tests for pkg/source's TLS against a real nginx (tests/e2e/nginx-fixture.sh): CA
 * directories, ConfigMap mounts and CA files trusted, an unknown CA refused, a CA
 * directory without PEM files as a usage error, insecureSkipVerify, and nginx's plain
 * HTTP range reads. Each test runs in its own process (Criterion) with its own server
 * and temporary directory; tests skip when nginx is missing.
 */
#include "source_fixtures.h"

TestSuite(source, .init = setup, .fini = teardown, .timeout = 60);

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

/* CDI's /proxycerts: trusted as well, and what cannot be used there is skipped, not
 * fatal (http-datasource.go createCertPool). */
Test(source, tls_trusts_the_proxy_ca_directory_and_skips_its_junk)
{
  start_nginx();
  char proxy[600], cmd[8192];
  snprintf(proxy, sizeof proxy, "%s/proxycerts", fx.dir);
  snprintf(cmd, sizeof cmd, "mkdir '%s' && cp '%s' '%s/ca-bundle.crt' && echo junk > '%s/junk' "
           "&& ln -s /nonexistent '%s/dangling' && mkdir '%s/subdir'",
           proxy, fx.ca_pem, proxy, proxy, proxy, proxy);
  cr_assert_eq(system(cmd), 0);
  char u[256];
  tls_url(u, sizeof u, "localhost");
  struct source_opts o = test_opts(u);
  o.proxy_ca_dir = proxy;
  struct vreader *r = open_ok(&o);
  expect_whole_object(r);
  vreader_close(r);

  /* a proxy directory that is absent changes nothing: the unknown CA is still refused */
  snprintf(proxy, sizeof proxy, "%s/absent", fx.dir);
  o.proxy_ca_dir = proxy;
  struct verr err = { 0 };
  r = NULL;
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert(strstr(err.message, "not trusted") != NULL, "%s", err.message);
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
