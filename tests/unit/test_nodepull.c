/* pkg/nodepull: the pure parts of the node pull: the server's request and Range parsing
 * (Go's http.ServeContent rules), the image directory rule, and the importer's
 * endpoint from the ready file (CDI's getHTTPEp) and done file (touchDoneFile). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nodepull/nodepull.h"

static int parse(const char *head, struct nodepull_request *req)
{
  return nodepull_parse_request(head, strlen(head), req);
}

Test(nodepull, requests)
{
  struct nodepull_request r;
  cr_assert_eq(parse("GET /disk.qcow2 HTTP/1.1\r\nHost: x\r\nrange:  bytes=0-9 \r\n"
                     "If-Range: Sat, 05 Dec 2026 09:00:00 GMT\r\n\r\n", &r), 0);
  cr_assert_eq(r.method, NODEPULL_GET);
  cr_assert_str_eq(r.path, "/disk.qcow2");
  cr_assert_str_eq(r.range, "bytes=0-9");
  cr_assert_str_eq(r.if_range, "Sat, 05 Dec 2026 09:00:00 GMT");
  cr_assert(r.keep_alive);
  cr_assert_not(r.has_body);
  cr_assert_eq(parse("HEAD /my%20disk.img?x=1 HTTP/1.0\r\n\r\n", &r), 0);
  cr_assert_eq(r.method, NODEPULL_HEAD);
  cr_assert_str_eq(r.path, "/my disk.img");
  cr_assert_not(r.keep_alive);
  cr_assert_eq(parse("GET /a HTTP/1.1\r\nConnection: Close\r\nContent-Length: 5\r\n\r\n", &r), 0);
  cr_assert_not(r.keep_alive);
  cr_assert(r.has_body);
  cr_assert_eq(parse("POST /a HTTP/1.1\n\n", &r), 0);
  cr_assert_eq(r.method, NODEPULL_OTHER);
  cr_assert_eq(parse("GET /a%00b HTTP/1.1\r\n\r\n", &r), 0);
  cr_assert_str_eq(r.path, "", "a NUL in the path names no file");
  cr_assert_eq(parse("GET /a%zz HTTP/1.1\r\n\r\n", &r), 0);
  cr_assert_str_eq(r.path, "");
  cr_assert_eq(parse("GET http://x/a HTTP/1.1\r\n\r\n", &r), 0);
  cr_assert_str_eq(r.path, "");
  const char *bad[] = { "", "\r\n\r\n", "GET /a\r\n\r\n", "GET /a HTTP/2.0\r\n\r\n",
                        "GET  HTTP/1.1\r\n\r\n", "GET /a HTTP/1.1\r\nHost: x\r\n" };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    cr_assert_eq(parse(bad[i], &r), -1, "%s", bad[i]);
}

Test(nodepull, ranges_as_go_serves_them)
{
  uint64_t s = 0, l = 0;
  cr_assert_eq(nodepull_parse_range("", 100, &s, &l), NODEPULL_RANGE_WHOLE);
  cr_assert_eq(nodepull_parse_range("bytes=0-9", 100, &s, &l), NODEPULL_RANGE_PART);
  cr_assert(s == 0 && l == 10);
  cr_assert_eq(nodepull_parse_range("bytes=90-", 100, &s, &l), NODEPULL_RANGE_PART);
  cr_assert(s == 90 && l == 10);
  cr_assert_eq(nodepull_parse_range("bytes=90-1000", 100, &s, &l), NODEPULL_RANGE_PART);
  cr_assert(s == 90 && l == 10, "an end past the file is cut");
  cr_assert_eq(nodepull_parse_range("bytes=-30", 100, &s, &l), NODEPULL_RANGE_PART);
  cr_assert(s == 70 && l == 30);
  cr_assert_eq(nodepull_parse_range("bytes=-300", 100, &s, &l), NODEPULL_RANGE_PART);
  cr_assert(s == 0 && l == 100, "a suffix longer than the file is the file");
  cr_assert_eq(nodepull_parse_range("bytes= 5-5 ", 100, &s, &l), NODEPULL_RANGE_PART);
  cr_assert(s == 5 && l == 1);
  cr_assert_eq(nodepull_parse_range("bytes=0-1,5-6", 100, &s, &l), NODEPULL_RANGE_WHOLE);
  const char *unsatisfiable[] = { "bytes=100-", "bytes=100-200", "bytes=9-8", "bytes=-0",
                                  "bytes=a-", "bytes=1-b", "items=0-1", "bytes=", "bytes=5",
                                  "bytes=--1", "bytes=99999999999999999999-" };
  for (size_t i = 0; i < sizeof unsatisfiable / sizeof *unsatisfiable; i++)
    cr_assert_eq(nodepull_parse_range(unsatisfiable[i], 100, &s, &l), NODEPULL_RANGE_UNSATISFIABLE,
                 "%s", unsatisfiable[i]);
  cr_assert_eq(nodepull_parse_range("bytes=0-", 0, &s, &l), NODEPULL_RANGE_UNSATISFIABLE);
  cr_assert_eq(nodepull_parse_range("bytes=-5", 0, &s, &l), NODEPULL_RANGE_UNSATISFIABLE);
}

static char *tmpdir(void)
{
  static char dir[64];
  snprintf(dir, sizeof dir, "/tmp/vimport-nodepull-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  return dir;
}

static void write_file(const char *dir, const char *name, const char *text)
{
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

Test(nodepull, the_image_directory_holds_one_file)
{
  char *dir = tmpdir(), name[256], path[256];
  struct verr err = { 0 };
  cr_assert_eq(nodepull_image_name(dir, name, sizeof name, &err), -1, "empty");
  cr_assert(strstr(err.message, "Invalid container image") != NULL, "%s", err.message);
  write_file(dir, "disk.qcow2", "x");
  cr_assert_eq(nodepull_image_name(dir, name, sizeof name, &err), 0, "%s", err.message);
  cr_assert_str_eq(name, "disk.qcow2");
  snprintf(path, sizeof path, "%s/sub", dir);
  mkdir(path, 0700);
  cr_assert_eq(nodepull_image_name(dir, name, sizeof name, &err), -1, "a file and a directory");
  snprintf(path, sizeof path, "rm -rf '%s'", dir);
  cr_assert_eq(system(path), 0);
}

Test(nodepull, the_endpoint_names_the_file_the_ready_file_names)
{
  char *dir = tmpdir(), ready[256], *url = NULL;
  struct verr err = { 0 };
  snprintf(ready, sizeof ready, "%s/ready", dir);
  write_file(dir, "ready", "disk.qcow2");
  cr_assert_eq(nodepull_endpoint("http://localhost:8100/disk.img", ready, &url, &err), 0);
  cr_assert_str_eq(url, "http://localhost:8100/disk.qcow2");
  free(url);
  cr_assert_eq(nodepull_endpoint("http://localhost:8100/", ready, &url, &err), 0);
  cr_assert_str_eq(url, "http://localhost:8100/disk.qcow2", "TrimSuffix: nothing to trim");
  free(url);
  write_file(dir, "ready", "my disk#1.img");
  cr_assert_eq(nodepull_endpoint("http://localhost:8100/disk.img", ready, &url, &err), 0);
  cr_assert_str_eq(url, "http://localhost:8100/my%20disk%231.img");
  free(url);
  write_file(dir, "ready", "");
  cr_assert_eq(nodepull_endpoint("http://localhost:8100/disk.img", ready, &url, &err), 0);
  cr_assert_str_eq(url, "http://localhost:8100/disk.img", "an empty ready file");
  free(url);
  write_file(dir, "ready", "../etc/passwd");
  cr_assert_eq(nodepull_endpoint("http://localhost:8100/disk.img", ready, &url, &err), -1);
  unlink(ready);
  cr_assert_eq(nodepull_endpoint("http://localhost:8100/disk.img", ready, &url, &err), -1);
  cr_assert(strstr(err.message, "Failed reading file") != NULL, "%s", err.message);
  rmdir(dir);
}

Test(nodepull, ready_wait_and_done_file)
{
  char *dir = tmpdir(), ready[256], done[256];
  struct verr err = { 0 };
  snprintf(ready, sizeof ready, "%s/ready", dir);
  snprintf(done, sizeof done, "%s/done", dir);
  cr_assert_eq(nodepull_wait_ready(ready, 1, NULL, &err), -1);
  char want[300];
  snprintf(want, sizeof want, "Timeout waiting for file %s", ready);
  cr_assert_str_eq(err.message, want);
  volatile sig_atomic_t stop = 1;
  cr_assert_eq(nodepull_wait_ready(ready, 5, &stop, &err), -1);
  cr_assert_eq(err.code, VERR_CANCELLED);
  write_file(dir, "ready", "disk.img");
  cr_assert_eq(nodepull_wait_ready(ready, 1, NULL, &err), 0);
  cr_assert_eq(nodepull_touch_done(done, &err), 0);
  struct stat st;
  cr_assert_eq(stat(done, &st), 0);
  cr_assert_eq(nodepull_touch_done(done, &err), -1, "O_EXCL: a done file that is there");
  unlink(ready);
  unlink(done);
  rmdir(dir);
}
