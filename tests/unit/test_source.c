/* Tests for pkg/source against real servers: files and stdin, HTTP reads, resumes and
 * refused splices, retries and their budget, errors that name the status and a redacted
 * URL, auth, headers, redirects, pread, proxies and prompt stops, all through
 * tests/e2e/faultserver.py; and the HTTP header parsers. The object's digest is tested
 * in test_source_digest.c, TLS in test_source_tls.c. Each test runs in its own process
 * (Criterion) with its own server, data file and temporary directory.
 *
 * The repo root comes from VIMPORT_TOP, else the current directory (make runs tests
 * from the top). Tests that need python3 skip when it is missing.
 */
#include <time.h>

#include "core/crc32c.h"
#include "source/http.h"
#include "source_fixtures.h"

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

/* ---- header parsing ---------------------------------------------------------------- */

#define SIGV4_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- the s3 kind over the http transport (a signature-checking server: test_s3_import.sh) */

/* fx.data as the object bkt/dir/img.bin, and its http:// location (opened with kind "s3"). */
static void s3_object(char *u, size_t size, const char *key)
{
  char dir[600], obj[700];
  snprintf(dir, sizeof dir, "%s/bkt", fx.dir);
  cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST);
  snprintf(dir, sizeof dir, "%s/bkt/dir", fx.dir);
  cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST);
  snprintf(obj, sizeof obj, "%s/img.bin", dir);
  cr_assert(link(fx.data_path, obj) == 0 || errno == EEXIST);
  snprintf(u, size, "http://127.0.0.1:%d/bkt/%s", fx.port, key);
}

Test(source, s3_signs_every_request_and_streams_through_the_ring)
{
  start_faultserver();
  char u[256];
  s3_object(u, sizeof u, "dir/img.bin");
  struct source_opts o = test_opts(u);
  o.kind = "s3";
  o.basic_user = "AKIDEXAMPLE";
  o.basic_password = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  o.lend_to_digest = 0;
  struct vreader *r = open_ok(&o);
  const struct source_info *info = source_info(r);
  cr_assert_str_eq(info->kind, "s3");
  cr_assert_eq(info->content_length, (int64_t)DATA_SIZE);
  cr_assert_str_eq(info->object_checksum, "", "faultserver's ETag is no MD5");
  unsigned char tail[16];
  struct verr err = { 0 };
  cr_assert(source_can_pread(r));
  cr_assert_eq(source_pread(r, tail, sizeof tail, DATA_SIZE - sizeof tail, &err), 0, "%s",
               err.message);
  cr_assert(memcmp(tail, fx.data + DATA_SIZE - sizeof tail, sizeof tail) == 0);
  expect_whole_object(r);
  vreader_close(r);
  /* the first GET and the re-read: each signed, neither carries the secret */
  cr_assert(log_has("\"authorization\": true"), "no Authorization in the server log");
  cr_assert(!log_has("\"authorization\": false"), "an unsigned request");
  cr_assert(log_has("\"x-amz-content-sha256\": \"" SIGV4_EMPTY), "no x-amz-content-sha256");
  cr_assert(log_has("\"range\": \"bytes=2097136-2097151\""), "no re-read");
  cr_assert(!log_has("wJalrXUtnFEMI"), "the secret reached the server");
}

Test(source, s3_anonymous_and_errors_name_bucket_and_key)
{
  start_faultserver();
  char u[256];
  s3_object(u, sizeof u, "dir/img.bin");
  struct source_opts o = test_opts(u);
  o.kind = "s3";
  struct vreader *r = open_ok(&o);
  expect_whole_object(r);
  vreader_close(r);
  cr_assert(log_has("\"authorization\": false"), "an anonymous request was signed");
  s3_object(u, sizeof u, "dir/missing.bin");
  o = test_opts(u);
  o.kind = "s3";
  struct verr err = { 0 };
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert(strstr(err.message, "S3 object \"dir/missing.bin\" in bucket \"bkt\"") != NULL,
            "%s", err.message);
  cr_assert(strstr(err.message, "HTTP 404") != NULL, "%s", err.message);
  snprintf(u, sizeof u, "http://127.0.0.1:%d/onlybucket", fx.port);
  o = test_opts(u);
  o.kind = "s3";
  cr_assert_eq(source_open(&o, &r, &err), -1);
  cr_assert_eq(err.code, VERR_USAGE);
  cr_assert(strstr(err.message, "BUCKET/KEY") != NULL, "%s", err.message);
}

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

/* The transfer's hooks for kinds built on it (http.h; s3.c and gcs.c use them): the
 * kind's header lines are asked before every request, resumes included, and the object's
 * bytes reach object_bytes once and in order, then object_end, whose failure fails the
 * read. */
struct hook_state {
  unsigned auth_calls;
  uint64_t next;   /* the offset object_bytes expects */
  int out_of_order;
  uint32_t crc;
  uint64_t ended;  /* the length object_end saw */
  int refuse_end;
};

static int hook_auth(void *ctx, int ranged, struct curl_slist **headers, struct verr *err)
{
  struct hook_state *h = ctx;
  char line[64];
  (void)ranged;
  snprintf(line, sizeof line, "Authorization: Bearer token-%u", ++h->auth_calls);
  struct curl_slist *grown = curl_slist_append(*headers, line);
  if (grown == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  *headers = grown;
  return 0;
}

static void hook_bytes(void *ctx, uint64_t offset, const void *buf, size_t len)
{
  struct hook_state *h = ctx;
  if (offset != h->next)
    h->out_of_order = 1;
  h->crc = crc32c_update(h->crc, buf, len);
  h->next = offset + len;
}

static int hook_end(void *ctx, uint64_t length, struct verr *err)
{
  struct hook_state *h = ctx;
  h->ended = length;
  return h->refuse_end ? verr_set(err, VERR_CHECKSUM, "checksum mismatch: refused by the hook")
                       : 0;
}

static const struct http_hooks test_hooks = {
  .request_headers = hook_auth,
  .object_bytes = hook_bytes,
  .object_end = hook_end,
};

/* The http transfer's state behind a reader, as a kind built on it has it. */
static ssize_t hooked_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  return http_read(r->state, buf, len, err);
}

static void hooked_close(struct vreader *r)
{
  http_close(r->state);
  free(r);
}

static const struct vreader_ops hooked_ops = { "hooked http", hooked_read, NULL, hooked_close };

static struct vreader *open_hooked(const struct source_opts *o, struct hook_state *h)
{
  struct vreader *r = malloc(sizeof *r);
  struct verr err = { 0 };
  cr_assert_not_null(r);
  cr_assert_eq(http_open_hooked(o, "http", &test_hooks, h, &r->state, &err), 0, "%s",
               err.message);
  r->ops = &hooked_ops;
  return r;
}

Test(source, http_hooks_see_every_request_and_byte_once)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "reset=700000&times=2");
  struct hook_state h = { 0 };
  struct source_opts o = test_opts(u);
  struct vreader *r = open_hooked(&o, &h);
  expect_whole_object(r);
  struct source_info info;
  http_info(r->state, &info);
  cr_assert_eq(info.resumes, 2);
  vreader_close(r); /* joins the transfer thread: h is complete */
  cr_assert_eq(h.auth_calls, 3, "Authorization asked %u times for 3 requests", h.auth_calls);
  cr_assert(!h.out_of_order);
  cr_assert_eq(h.next, DATA_SIZE);
  cr_assert_eq(h.ended, DATA_SIZE);
  cr_assert_eq(h.crc, crc32c_update(0, fx.data, DATA_SIZE));
}

Test(source, http_object_end_failure_fails_the_read)
{
  start_faultserver();
  char u[256];
  url(u, sizeof u, "");
  struct hook_state h = { .refuse_end = 1 };
  struct source_opts o = test_opts(u);
  struct vreader *r = open_hooked(&o, &h);
  char buf[65536];
  ssize_t n;
  struct verr err = { 0 };
  while ((n = vreader_read_full(r, buf, sizeof buf, &err)) > 0)
    ;
  cr_assert_eq(n, -1, "the read ended cleanly although object_end refused");
  cr_assert_eq(err.code, VERR_CHECKSUM, "%s", err.message);
  vreader_close(r);
}
