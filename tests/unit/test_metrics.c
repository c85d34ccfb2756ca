/* Unit tests for pkg/metrics: the real HTTPS server on 127.0.0.1, scraped with libcurl.
 * They pin CDI's exposition text byte for byte, check the served certificate (X509,
 * CN vimport, EC P-256, self-signed, one day), the 404 path, that an idle or non-TLS
 * client costs at most the client timeout, that stop is prompt with a client hanging,
 * and the progress reader over a real file. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/cleanup.h"
#include "metrics/metrics.h"
#include "source/source.h"

#define HELP_AND_TYPE                                                                     \
  "# HELP kubevirt_cdi_import_progress_total The import progress in percentage\n"         \
  "# TYPE kubevirt_cdi_import_progress_total counter\n"

/* ---- helpers ---- */

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A port the kernel just called free (bind to 0, read it, close). */
static unsigned free_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert(fd >= 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
  close(fd);
  return ntohs(a.sin_port);
}

static struct metrics *start(const char *owner_uid, unsigned client_timeout_ms)
{
  struct metrics_opts o = {
    .owner_uid = owner_uid,
    .port = free_port(),
    .bind_addr = "127.0.0.1",
    .client_timeout_ms = client_timeout_ms,
  };
  struct metrics *m = NULL;
  struct verr err = { 0 };
  cr_assert_eq(metrics_start(&o, &m, &err), 0, "metrics_start: %s", err.message);
  cr_assert_eq(metrics_port(m), o.port);
  return m;
}

struct body {
  char data[8192];
  size_t len;
};

static size_t body_write(char *p, size_t size, size_t n, void *arg)
{
  struct body *b = arg;
  size_t len = size * n;
  if (b->len + len >= sizeof b->data)
    return 0;
  memcpy(b->data + b->len, p, len);
  b->len += len;
  b->data[b->len] = '\0';
  return len;
}

struct scrape {
  long status;
  struct body body;
  char cert_pem[8192]; /* the server's certificate, from CURLINFO_CERTINFO */
};

/* One HTTPS request to 127.0.0.1:port; fails the test on a transport error. */
static void scrape_path(struct metrics *m, const char *path, const char *post, struct scrape *s)
{
  char url[256];
  snprintf(url, sizeof url, "https://127.0.0.1:%u%s", metrics_port(m), path);
  memset(s, 0, sizeof *s);
  CURL *h = curl_easy_init();
  cr_assert_not_null(h);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L); /* self-signed by design */
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 15000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s->body);
  if (post != NULL)
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
  CURLcode rc = curl_easy_perform(h);
  cr_assert_eq(rc, CURLE_OK, "scraping %s: %s", url, curl_easy_strerror(rc));
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &s->status);
  struct curl_certinfo *ci = NULL;
  curl_easy_getinfo(h, CURLINFO_CERTINFO, &ci);
  for (struct curl_slist *l = ci != NULL && ci->num_of_certs > 0 ? ci->certinfo[0] : NULL;
       l != NULL; l = l->next)
    if (strncmp(l->data, "Cert:", 5) == 0)
      snprintf(s->cert_pem, sizeof s->cert_pem, "%s", l->data + 5);
  curl_easy_cleanup(h);
}

static void scrape(struct metrics *m, struct scrape *s)
{
  scrape_path(m, "/metrics", NULL, s);
  cr_assert_eq(s->status, 200, "GET /metrics: HTTP %ld", s->status);
}

/* The full exposition for `uid` (already escaped) and `value`. */
static void expect_body(const struct scrape *s, const char *uid, const char *value)
{
  char want[1024];
  snprintf(want, sizeof want,
           HELP_AND_TYPE "kubevirt_cdi_import_progress_total{ownerUID=\"%s\"} %s\n", uid, value);
  cr_assert_str_eq(s->body.data, want);
}

/* Connect to the server and send nothing (or `bytes`). Returns the fd. */
static int idle_client(struct metrics *m, const char *bytes)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {
    .sin_family = AF_INET,
    .sin_port = htons((uint16_t)metrics_port(m)),
    .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
  };
  cr_assert(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  if (bytes != NULL)
    cr_assert(write(fd, bytes, strlen(bytes)) == (ssize_t)strlen(bytes));
  return fd;
}

static void init_curl(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void fini_curl(void)
{
  curl_global_cleanup();
}

TestSuite(metrics, .init = init_curl, .fini = fini_curl, .timeout = 60);

/* ---- the exposition ---- */

Test(metrics, exposes_cdi_progress_with_two_decimals)
{
  struct metrics *m = start("6b3b7f1e-2c1a-4c5e-9d8e-0a1b2c3d4e5f", 0);
  struct scrape s;
  const char *uid = "6b3b7f1e-2c1a-4c5e-9d8e-0a1b2c3d4e5f";

  scrape(m, &s);
  expect_body(&s, uid, "0.00");

  metrics_set_total(m, 3000);
  metrics_add_done(m, 1000);
  scrape(m, &s);
  expect_body(&s, uid, "33.33"); /* truncated, not rounded */

  metrics_add_done(m, 1000);
  scrape(m, &s);
  expect_body(&s, uid, "66.66");

  metrics_add_done(m, 999);
  scrape(m, &s);
  expect_body(&s, uid, "99.96");

  metrics_add_done(m, 1);
  scrape(m, &s);
  expect_body(&s, uid, "100.00");

  metrics_add_done(m, 5000); /* more than the total: capped */
  scrape(m, &s);
  expect_body(&s, uid, "100.00");
  metrics_stop(m);
}

Test(metrics, huge_total_is_not_100_before_the_last_byte)
{
  struct metrics *m = start("u", 0);
  uint64_t total = UINT64_C(1) << 62;
  metrics_set_total(m, total);
  metrics_add_done(m, total - 1);
  cr_assert_eq(metrics_progress_hundredths(m), 9999);
  metrics_add_done(m, 1);
  cr_assert_eq(metrics_progress_hundredths(m), 10000);
  metrics_stop(m);
}

Test(metrics, unknown_total_reads_zero_until_finished)
{
  struct metrics *m = start("uid", 0);
  struct scrape s;
  metrics_add_done(m, 123456789);
  scrape(m, &s);
  expect_body(&s, "uid", "0.00");
  metrics_finish(m);
  scrape(m, &s);
  expect_body(&s, "uid", "100.00");
  metrics_stop(m);
}

Test(metrics, never_decreases_when_the_total_grows)
{
  struct metrics *m = start("uid", 0);
  struct scrape s;
  metrics_set_total(m, 100);
  metrics_add_done(m, 50);
  scrape(m, &s);
  expect_body(&s, "uid", "50.00");
  metrics_set_total(m, 200); /* 25% now, but CDI's counter must not fall */
  scrape(m, &s);
  expect_body(&s, "uid", "50.00");
  metrics_add_done(m, 70); /* 60% */
  scrape(m, &s);
  expect_body(&s, "uid", "60.00");
  metrics_stop(m);
}

Test(metrics, label_value_is_escaped)
{
  struct metrics *m = start("a\"b\\c\nd", 0);
  struct scrape s;
  scrape(m, &s);
  expect_body(&s, "a\\\"b\\\\c\\nd", "0.00");
  metrics_stop(m);
}

Test(metrics, null_owner_uid_is_empty_label)
{
  struct metrics *m = start(NULL, 0);
  struct scrape s;
  scrape(m, &s);
  expect_body(&s, "", "0.00");
  metrics_stop(m);
}

Test(metrics, query_string_is_accepted)
{
  struct metrics *m = start("q", 0);
  struct scrape s;
  scrape_path(m, "/metrics?name[]=x", NULL, &s);
  cr_assert_eq(s.status, 200);
  expect_body(&s, "q", "0.00");
  metrics_stop(m);
}

/* ---- the certificate ---- */

Test(metrics, serves_self_signed_p256_cert_cn_vimport_valid_one_day)
{
  struct metrics *m = start("uid", 0);
  struct scrape s;
  scrape(m, &s);
  cr_assert(s.cert_pem[0] != '\0', "curl reported no server certificate");

  BIO *bio = BIO_new_mem_buf(s.cert_pem, -1);
  X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  cr_assert_not_null(cert, "the served certificate is not a PEM X509:\n%s", s.cert_pem);

  char cn[64] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  cr_assert_str_eq(cn, "vimport");
  cr_assert_eq(X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)), 0);

  EVP_PKEY *key = X509_get0_pubkey(cert);
  cr_assert_not_null(key);
  cr_assert(EVP_PKEY_is_a(key, "EC"));
  char group[64] = "";
  size_t glen = 0;
  EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &glen);
  cr_assert_str_eq(group, "prime256v1");
  cr_assert_eq(X509_verify(cert, key), 1, "the certificate is not signed by its own key");

  int days = -1, secs = -1;
  cr_assert(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert)));
  cr_assert_eq(days * 86400 + secs, 86400, "validity is %d days %d s, not one day", days, secs);
  cr_assert_eq(X509_cmp_current_time(X509_get0_notBefore(cert)) <= 0, 1);
  cr_assert_eq(X509_cmp_current_time(X509_get0_notAfter(cert)) > 0, 1);
  X509_free(cert);
  metrics_stop(m);
}

Test(metrics, each_start_makes_a_new_certificate)
{
  struct metrics *a = start("a", 0), *b = start("b", 0);
  struct scrape sa, sb;
  scrape(a, &sa);
  scrape(b, &sb);
  cr_assert(sa.cert_pem[0] != '\0' && sb.cert_pem[0] != '\0');
  cr_assert_str_neq(sa.cert_pem, sb.cert_pem);
  metrics_stop(a);
  metrics_stop(b);
}

/* ---- everything else is 404 ---- */

Test(metrics, other_paths_and_methods_are_404)
{
  struct metrics *m = start("uid", 0);
  struct scrape s;
  const char *paths[] = { "/", "/metricsx", "/metrics/", "/healthz", "/Metrics" };
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    scrape_path(m, paths[i], NULL, &s);
    cr_assert_eq(s.status, 404, "GET %s: HTTP %ld", paths[i], s.status);
    cr_assert_null(strstr(s.body.data, "kubevirt_cdi"));
  }
  scrape_path(m, "/metrics", "x=1", &s);
  cr_assert_eq(s.status, 404, "POST /metrics: HTTP %ld", s.status);
  scrape(m, &s); /* still serving */
  metrics_stop(m);
}

/* ---- clients that misbehave ---- */

Test(metrics, idle_client_delays_a_scrape_at_most_the_timeout)
{
  const unsigned timeout_ms = 1000;
  struct metrics *m = start("uid", timeout_ms);
  int idle = idle_client(m, NULL);
  usleep(100 * 1000); /* let the server take the idle one first */
  int64_t t0 = now_ms();
  struct scrape s;
  scrape(m, &s);
  int64_t took = now_ms() - t0;
  expect_body(&s, "uid", "0.00");
  cr_assert_lt(took, timeout_ms + 2000, "a scrape behind an idle client took %lld ms",
               (long long)took);
  close(idle);
  metrics_stop(m);
}

/* Read until the server closes; returns how long that took. */
static int64_t ms_until_closed(int fd)
{
  char buf[256];
  struct timeval tv = { .tv_sec = 10 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int64_t t0 = now_ms();
  while (read(fd, buf, sizeof buf) > 0)
    ;
  return now_ms() - t0;
}

Test(metrics, torn_handshake_is_dropped_at_the_timeout)
{
  /* a TLS record header announcing 512 bytes, then silence: the server must give up */
  struct metrics *m = start("uid", 500);
  int fd = idle_client(m, "\x16\x03\x01\x02\x00\x01\x00");
  int64_t took = ms_until_closed(fd);
  close(fd);
  cr_assert_geq(took, 300, "dropped after %lld ms, before the timeout", (long long)took);
  cr_assert_lt(took, 3000, "the server kept a stalled client %lld ms", (long long)took);
  struct scrape s;
  scrape(m, &s);
  metrics_stop(m);
}

Test(metrics, plain_http_client_is_dropped_at_once)
{
  struct metrics *m = start("uid", 30000);
  int fd = idle_client(m, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  int64_t took = ms_until_closed(fd);
  close(fd);
  cr_assert_lt(took, 2000, "a non-TLS client was kept %lld ms", (long long)took);
  struct scrape s;
  scrape(m, &s);
  metrics_stop(m);
}

Test(metrics, stop_is_prompt_with_a_client_hanging)
{
  struct metrics *m = start("uid", 60000);
  int idle = idle_client(m, NULL);
  usleep(100 * 1000);
  int64_t t0 = now_ms();
  metrics_stop(m);
  int64_t took = now_ms() - t0;
  cr_assert_lt(took, 1000, "metrics_stop took %lld ms with a client connected", (long long)took);
  close(idle);
}

Test(metrics, stop_is_prompt_when_idle_and_null_is_fine)
{
  struct metrics *m = start("uid", 0);
  int64_t t0 = now_ms();
  metrics_stop(m);
  cr_assert_lt(now_ms() - t0, 1000);
  metrics_stop(NULL);
  metrics_set_total(NULL, 1);
  metrics_add_done(NULL, 1);
  metrics_finish(NULL);
  cr_assert_eq(metrics_port(NULL), 0);
}

Test(metrics, client_hanging_up_mid_response_does_not_kill_the_process)
{
  struct metrics *m = start("uid", 1000);
  for (int i = 0; i < 20; i++)
    close(idle_client(m, "\x16\x03\x01\x00\x05hello")); /* a torn ClientHello, then gone */
  struct scrape s;
  scrape(m, &s);
  expect_body(&s, "uid", "0.00");
  metrics_stop(m);
}

/* ---- concurrency: the pipeline thread adds while scrapes read ---- */

struct adder {
  struct metrics *m;
  uint64_t chunks;
};

static void *adder_run(void *arg)
{
  struct adder *a = arg;
  for (uint64_t i = 0; i < a->chunks; i++) {
    metrics_add_done(a->m, 1024);
    if (i % 256 == 0)
      usleep(1000);
  }
  return NULL;
}

Test(metrics, scrapes_during_adds_never_go_down)
{
  struct metrics *m = start("uid", 0);
  struct adder a = { .m = m, .chunks = 20000 };
  metrics_set_total(m, a.chunks * 1024);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, adder_run, &a), 0);
  double last = -1;
  for (int i = 0; i < 15; i++) {
    struct scrape s;
    scrape(m, &s);
    const char *v = strrchr(s.body.data, ' ');
    cr_assert_not_null(v);
    double now = strtod(v + 1, NULL);
    cr_assert_geq(now, last, "progress fell from %.2f to %.2f", last, now);
    last = now;
  }
  pthread_join(t, NULL);
  struct scrape s;
  scrape(m, &s);
  expect_body(&s, "uid", "100.00");
  metrics_stop(m);
}

/* ---- start failures ---- */

Test(metrics, port_in_use_is_a_usage_error_that_says_what_to_do)
{
  struct metrics *a = start("uid", 0);
  struct metrics_opts o = { .port = metrics_port(a), .bind_addr = "127.0.0.1" };
  struct metrics *b = (struct metrics *)0x1;
  struct verr err = { 0 };
  cr_assert_eq(metrics_start(&o, &b, &err), -1);
  cr_assert_null(b);
  cr_assert_eq(err.code, VERR_USAGE);
  cr_assert_not_null(strstr(err.message, "in use"), "%s", err.message);
  cr_assert_not_null(strstr(err.message, "VIMPORT_METRICS_PORT"), "%s", err.message);
  metrics_stop(a);
}

Test(metrics, bad_bind_address_is_a_usage_error)
{
  struct metrics_opts o = { .port = free_port(), .bind_addr = "localhost" };
  struct metrics *m = NULL;
  struct verr err = { 0 };
  cr_assert_eq(metrics_start(&o, &m, &err), -1);
  cr_assert_eq(err.code, VERR_USAGE);
  cr_assert_not_null(strstr(err.message, "numeric"), "%s", err.message);
  o.port = 70000;
  cr_assert_eq(metrics_start(&o, &m, &err), -1);
  cr_assert_eq(err.code, VERR_USAGE);
}

Test(metrics, oversized_owner_uid_is_refused)
{
  char uid[600];
  memset(uid, 'x', sizeof uid - 1);
  uid[sizeof uid - 1] = '\0';
  struct metrics_opts o = { .owner_uid = uid, .port = free_port(), .bind_addr = "127.0.0.1" };
  struct metrics *m = NULL;
  struct verr err = { 0 };
  cr_assert_eq(metrics_start(&o, &m, &err), -1);
  cr_assert_eq(err.code, VERR_USAGE);
}

Test(metrics, ipv6_loopback_works)
{
  struct metrics_opts o = { .owner_uid = "v6", .port = free_port(), .bind_addr = "::1" };
  struct metrics *m = NULL;
  struct verr err = { 0 };
  if (metrics_start(&o, &m, &err) < 0)
    cr_skip_test("no IPv6 loopback here: %s", err.message);
  char url[128];
  snprintf(url, sizeof url, "https://[::1]:%u/metrics", metrics_port(m));
  struct body b = { .len = 0 };
  CURL *h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 15000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  cr_assert_eq(curl_easy_perform(h), CURLE_OK);
  curl_easy_cleanup(h);
  cr_assert_not_null(strstr(b.data, "{ownerUID=\"v6\"} 0.00\n"), "%s", b.data);
  metrics_stop(m);
}

/* ---- the progress reader ---- */

Test(metrics, progress_reader_counts_every_byte_of_a_real_file)
{
  char path[] = "/tmp/vimport-metrics-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  static unsigned char data[300000];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (unsigned char)(i * 7 + 3);
  cr_assert_eq(write(fd, data, sizeof data), (ssize_t)sizeof data);
  close(fd);

  struct metrics *m = start("file", 0);
  metrics_set_total(m, sizeof data);
  struct source_opts so = { .url = path };
  struct vreader *src = NULL, *r = NULL;
  struct verr err = { 0 };
  cr_assert_eq(source_open(&so, &src, &err), 0, "%s", err.message);
  cr_assert_eq(metrics_progress_reader_new(src, m, &r, &err), 0, "%s", err.message);

  static unsigned char got[sizeof data];
  size_t used = 0;
  bool saw_partial = false;
  ssize_t n;
  while ((n = r->ops->read(r, got + used, 4096 < sizeof got - used ? 4096 : sizeof got - used,
                           &err)) > 0) {
    used += (size_t)n;
    unsigned h = metrics_progress_hundredths(m);
    cr_assert_eq(h, used == sizeof data ? 10000 : (unsigned)((double)used / sizeof data * 10000));
    saw_partial |= h > 0 && h < 10000;
  }
  cr_assert_eq(n, 0, "%s", err.message);
  cr_assert_eq(used, sizeof data);
  cr_assert_eq(memcmp(got, data, sizeof data), 0, "the filter changed the bytes");
  cr_assert(saw_partial);

  struct scrape s;
  scrape(m, &s);
  expect_body(&s, "file", "100.00");
  vreader_close(r); /* closes the file source too (ASan would see a leak otherwise) */
  metrics_stop(m);
  unlink(path);
}

/* A lower reader whose reads fail: the error passes through, nothing is counted. */
static bool failing_closed;

static ssize_t failing_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  (void)r, (void)buf, (void)len;
  return verr_set(err, VERR_IO, "injected read failure");
}

static void failing_close(struct vreader *r)
{
  failing_closed = true;
  free(r);
}

static const struct vreader_ops failing_ops = {
  .name = "failing", .read = failing_read, .close = failing_close,
};

Test(metrics, progress_reader_passes_errors_and_owns_lower)
{
  struct vreader *lower = calloc(1, sizeof *lower);
  lower->ops = &failing_ops;
  struct metrics *m = start("e", 0);
  struct vreader *r = NULL;
  struct verr err = { 0 };
  cr_assert_eq(metrics_progress_reader_new(lower, m, &r, &err), 0);
  char buf[16];
  cr_assert_eq(r->ops->read(r, buf, sizeof buf, &err), -1);
  cr_assert_eq(err.code, VERR_IO);
  cr_assert_str_eq(err.message, "injected read failure");
  cr_assert_eq(metrics_progress_hundredths(m), 0);
  failing_closed = false;
  vreader_close(r);
  cr_assert(failing_closed, "closing the filter did not close the reader below");
  metrics_stop(m);
}

Test(metrics, progress_reader_without_metrics_is_a_pass_through)
{
  struct vreader *lower = calloc(1, sizeof *lower);
  lower->ops = &failing_ops;
  struct vreader *r = NULL;
  struct verr err = { 0 };
  cr_assert_eq(metrics_progress_reader_new(lower, NULL, &r, &err), 0);
  char buf[16];
  cr_assert_eq(r->ops->read(r, buf, sizeof buf, &err), -1);
  vreader_close(r);
}

/* ---- the progress counter with more than one observer ---- */

/* A lower reader handing out `left` bytes of 'x', at most 1000 per read. */
static ssize_t counted_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  (void)err;
  size_t *left = r->state;
  size_t n = len < *left ? len : *left;
  n = n < 1000 ? n : 1000;
  memset(buf, 'x', n);
  *left -= n;
  return (ssize_t)n;
}

static void counted_close(struct vreader *r)
{
  failing_closed = true;
  free(r);
}

static const struct vreader_ops counted_ops = {
  .name = "counted", .read = counted_read, .close = counted_close,
};

struct seen {
  uint64_t added, done, calls;
  unsigned closed;
};

static void seen_count(void *opaque, uint64_t added, uint64_t done)
{
  struct seen *s = opaque;
  s->added += added;
  s->done = done;
  s->calls++;
}

static void seen_close(void *opaque)
{
  ((struct seen *)opaque)->closed++;
}

Test(metrics, progress_counter_tells_every_observer_the_same_count)
{
  static size_t left = 10500;
  struct vreader *lower = calloc(1, sizeof *lower);
  *lower = (struct vreader){ .ops = &counted_ops, .state = &left };
  struct metrics *m = start("two", 0);
  metrics_set_total(m, 10500);
  struct seen a = { 0 }, b = { 0 };
  struct progress_observer obs[] = {
    { .on_count = seen_count, .on_close = seen_close, .opaque = &a },
    metrics_progress_observer(m),
    { .on_count = seen_count, .on_close = seen_close, .opaque = &b },
  };
  struct vreader *r = NULL;
  struct verr err = { 0 };
  cr_assert_eq(progress_counter_new(lower, obs, 3, &r, &err), 0, "%s", err.message);
  char buf[4096];
  ssize_t n;
  while ((n = r->ops->read(r, buf, sizeof buf, &err)) > 0)
    ;
  cr_assert_eq(n, 0);
  cr_assert_eq(a.added, 10500);
  cr_assert_eq(a.done, 10500);
  cr_assert_eq(a.calls, 11);
  cr_assert_eq(b.added, a.added);
  cr_assert_eq(b.calls, a.calls);
  cr_assert_eq(metrics_progress_hundredths(m), 10000);
  cr_assert_eq(a.closed + b.closed, 0);
  failing_closed = false;
  vreader_close(r);
  cr_assert_eq(a.closed, 1);
  cr_assert_eq(b.closed, 1);
  cr_assert(failing_closed, "closing the counter did not close the reader below");
  metrics_stop(m);
}

Test(metrics, progress_counter_failing_closes_lower_and_observers)
{
  struct vreader *lower = calloc(1, sizeof *lower);
  lower->ops = &failing_ops;
  struct seen a = { 0 };
  struct progress_observer obs[PROGRESS_MAX_OBSERVERS + 1];
  for (size_t i = 0; i < PROGRESS_MAX_OBSERVERS + 1; i++)
    obs[i] = (struct progress_observer){ .on_count = seen_count, .on_close = seen_close,
                                         .opaque = &a };
  struct vreader *r = NULL;
  struct verr err = { 0 };
  failing_closed = false;
  cr_assert_eq(progress_counter_new(lower, obs, PROGRESS_MAX_OBSERVERS + 1, &r, &err), -1);
  cr_assert_null(r);
  cr_assert_eq(err.code, VERR_INTERNAL);
  cr_assert_eq(a.closed, PROGRESS_MAX_OBSERVERS + 1);
  cr_assert(failing_closed);
}

/* The terminal line's text: bytes in binary units, the share, the rate and the ETA;
 * without a total only the bytes and the rate; never more than the buffer. */
Test(metrics, progress_text_says_bytes_rate_and_eta)
{
  char line[160];
  progress_text(line, sizeof line, "vimport: importing", 512ull << 20, 2ull << 30, 4.0);
  cr_assert_str_eq(line, "vimport: importing: 512.0 MiB of 2.0 GiB (25.0%), 128.0 MiB/s, ETA 0:00:12");
  progress_text(line, sizeof line, "sum", 1000, 0, 2.0);
  cr_assert_str_eq(line, "sum: 1000 B, 500 B/s");
  progress_text(line, sizeof line, "sum", 0, 1 << 20, 0.0);
  cr_assert_str_eq(line, "sum: 0 B of 1.0 MiB (0.0%), -- B/s, ETA --:--");
  char tiny[8];
  progress_text(tiny, sizeof tiny, "a long stage name", 1, 2, 1.0);
  cr_assert_eq(strlen(tiny), sizeof tiny - 1);
}
