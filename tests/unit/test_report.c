/* Unit tests for pkg/report: the CDI termination message.
 *
 * Every rendered message is checked by a real JSON parser (python3's json module, strict
 * UTF-8 decoding) and by assertions on the parsed values, written in Python and run on
 * the parsed object `d` with the raw bytes in `raw`.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "report/report.h"

static char tmpdir[64];

static void make_tmpdir(void)
{
  snprintf(tmpdir, sizeof tmpdir, "/tmp/vimport-report-XXXXXX");
  cr_assert(mkdtemp(tmpdir) != NULL);
}

static void remove_tmpdir(void)
{
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  cr_assert(system(cmd) == 0);
}

TestSuite(report, .init = make_tmpdir, .fini = remove_tmpdir, .timeout = 60);

static void write_file(const char *path, const void *data, size_t len)
{
  FILE *f = fopen(path, "wb");
  cr_assert(f != NULL);
  cr_assert(len == 0 || fwrite(data, 1, len, f) == len);
  cr_assert(fclose(f) == 0);
}

/* The checker: every line of the file must be one JSON object of at most 4096 bytes
 * (newline included) in strict UTF-8, and `check` (a Python expression over d and raw)
 * must hold for each. Exit 0 on success, 3 when `check` fails, else parse errors. */
static const char checker[] =
    "import json, sys\n"
    "data = open(sys.argv[1], 'rb').read()\n"
    "check = open(sys.argv[2]).read()\n"
    "lines = data.split(b'\\n')\n"
    "assert lines[-1] == b'', 'missing final newline'\n"
    "for raw in lines[:-1]:\n"
    "    assert len(raw) + 1 <= 4096, 'too long: %d' % len(raw)\n"
    "    d = json.loads(raw.decode('utf-8'))\n"
    "    assert isinstance(d, dict)\n"
    "    if not eval(check):\n"
    "        print('check failed on', raw[:300], file=sys.stderr)\n"
    "        sys.exit(3)\n";

/* Run the checker on `lines` (newline-terminated JSON lines). */
static void expect_json(const char *lines, size_t len, const char *check)
{
  char data[128], prog[128], expr[128], cmd[512];
  snprintf(data, sizeof data, "%s/lines.json", tmpdir);
  snprintf(prog, sizeof prog, "%s/check.py", tmpdir);
  snprintf(expr, sizeof expr, "%s/expr.py", tmpdir);
  write_file(data, lines, len);
  write_file(prog, checker, strlen(checker));
  write_file(expr, check, strlen(check));
  snprintf(cmd, sizeof cmd, "python3 '%s' '%s' '%s'", prog, data, expr);
  int status = system(cmd);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "JSON check failed (status %d) for: %.400s\ncheck: %s", status, lines, check);
}

/* Render r into a newline-terminated line and check it. */
static void expect_report(const struct report *r, const char *check)
{
  char buf[REPORT_MAX_JSON + 1];
  ssize_t n = report_to_json(r, buf, REPORT_MAX_JSON);
  cr_assert(n > 0 && n <= REPORT_MAX_JSON - 1, "to_json returned %zd", n);
  cr_assert(strlen(buf) == (size_t)n);
  cr_assert(memchr(buf, '\n', (size_t)n) == NULL, "the JSON must be one line");
  buf[n] = '\n';
  expect_json(buf, (size_t)n + 1, check);
}

static struct report *new_report(void)
{
  struct report *r = NULL;
  struct verr err;
  cr_assert(report_new(&r, &err) == 0);
  return r;
}

Test(report, cdi_field_names_and_values)
{
  struct report *r = new_report();
  struct verr err;
  cr_assert(report_set_message(r, "Import Complete", &err) == 0);
  report_set_preallocation_applied(r, true);
  cr_assert(report_set_label(r, "cdi.kubevirt.io/storage.import.source", "http", &err) == 0);
  cr_assert(report_set_source_digest(r, "sha256:abc123", &err) == 0);
  cr_assert(report_set_block_hash(r, "sha256:def456", &err) == 0);
  cr_assert(report_set_format(r, "qcow2", &err) == 0);
  report_set_virtual_size(r, UINT64_C(10737418240));
  report_set_bytes_transferred(r, 12345);
  cr_assert(report_add_verified(r, REPORT_VERIFIED_CHECKSUM, &err) == 0);
  cr_assert(report_add_verified(r, REPORT_VERIFIED_READBACK, &err) == 0);
  cr_assert(report_add_verified(r, REPORT_VERIFIED_CHECKSUM, &err) == 0); /* kept once */
  expect_report(r,
      "list(d) == ['message', 'preallocationApplied', 'scratchSpaceRequired', 'labels', 'vimport']"
      " and d['message'] == 'Import Complete'"
      " and d['preallocationApplied'] is True and d['scratchSpaceRequired'] is False"
      " and d['labels'] == {'cdi.kubevirt.io/storage.import.source': 'http'}"
      " and d['vimport'] == {'sourceDigest': 'sha256:abc123', 'blockHash': 'sha256:def456',"
      "   'format': 'qcow2', 'virtualSize': 10737418240, 'bytesTransferred': 12345,"
      "   'verified': ['checksum', 'blockhash-readback']}");
  cr_assert(report_exit_code(r) == 0);

  report_set_deadline_passed(r, true);
  expect_report(r, "d['deadlinePassed'] is True and list(d)[3] == 'deadlinePassed'");
  report_free(r);
}

Test(report, empty_report)
{
  struct report *r = new_report();
  expect_report(r, "d == {'preallocationApplied': False, 'scratchSpaceRequired': False, "
                   "'vimport': {}}");
  report_free(r);
}

Test(report, escapes_quotes_controls_and_unicode)
{
  struct report *r = new_report();
  struct verr err;
  cr_assert(report_set_message(r, "say \"hi\"\\ \n\r\t\b\f\x01\x1f\x7f caf\xc3\xa9 \xf0\x9f\x98\x80",
                               &err) == 0);
  expect_report(r, "d['message'] == 'say \"hi\"\\\\ \\n\\r\\t\\b\\f\\x01\\x1f\\x7f caf\\u00e9 "
                   "\\U0001F600'");
  report_free(r);
}

Test(report, invalid_utf8_becomes_replacement_characters)
{
  struct report *r = new_report();
  struct verr err;
  /* lone continuation, lone lead, overlong '/', surrogate D800, past U+10FFFF, truncated
   * 3-byte sequence at the end: every byte that is not valid UTF-8 is one U+FFFD */
  cr_assert(report_set_message(r, "a\x80" "b\xc3" "c\xc0\xaf" "d\xed\xa0\x80" "e\xf4\x90\x80\x80"
                                  "f\xe2\x82", &err) == 0);
  cr_assert(report_set_label(r, "k\xff", "v\xfe", &err) == 0);
  expect_report(r, "d['message'] == 'a\\ufffdb\\ufffdc\\ufffd\\ufffdd\\ufffd\\ufffd\\ufffd"
                   "e\\ufffd\\ufffd\\ufffd\\ufffdf\\ufffd\\ufffd'"
                   " and d['labels'] == {'k\\ufffd': 'v\\ufffd'}");
  report_free(r);
}

/* A 10 KiB message made of `unit` repeated, with a distinct head and tail. */
static char *long_message(const char *unit)
{
  size_t len = 10 * 1024;
  char *m = malloc(len + 64);
  cr_assert(m);
  strcpy(m, "HEAD:");
  size_t at = 5, ulen = strlen(unit);
  while (at + ulen < len) {
    memcpy(m + at, unit, ulen);
    at += ulen;
  }
  strcpy(m + at, ":TAIL");
  return m;
}

Test(report, long_messages_are_cut_in_the_middle_with_a_marker)
{
  static const char *const units[] = { "x", "\"", "\\", "\n", "\x01", "\xc3\xa9", "\xff",
                                       "\xf0\x9f\x98\x80", "ab\x02\"\xe2\x82\xac" };
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    struct report *r = new_report();
    struct verr err;
    CLEANUP_FREE char *m = long_message(units[i]);
    cr_assert(report_set_message(r, m, &err) == 0);
    cr_assert(report_set_format(r, "raw", &err) == 0);
    expect_report(r, "d['message'].startswith('HEAD:') and d['message'].endswith(':TAIL')"
                     " and '...' in d['message'] and len(raw) > 3500"
                     " and d['vimport']['format'] == 'raw'");
    report_free(r);
  }
}

Test(report, message_is_shortened_before_other_fields)
{
  struct report *r = new_report();
  struct verr err;
  CLEANUP_FREE char *value = malloc(1001);
  memset(value, 'v', 1000);
  value[1000] = '\0';
  cr_assert(report_set_label(r, "big", value, &err) == 0);
  CLEANUP_FREE char *m = long_message("m");
  cr_assert(report_set_message(r, m, &err) == 0);
  expect_report(r, "d['labels']['big'] == 'v' * 1000 and '...' in d['message']");

  /* a message that fits is left alone */
  cr_assert(report_set_message(r, "short", &err) == 0);
  expect_report(r, "d['message'] == 'short' and '...' not in raw.decode()");
  report_free(r);
}

Test(report, every_field_huge_still_fits)
{
  struct report *r = new_report();
  struct verr err;
  CLEANUP_FREE char *huge = long_message("\"\x01\xff");
  cr_assert(report_set_message(r, huge, &err) == 0);
  cr_assert(report_set_source_digest(r, huge, &err) == 0);
  cr_assert(report_set_block_hash(r, huge, &err) == 0);
  cr_assert(report_set_format(r, huge, &err) == 0);
  cr_assert(report_set_source_checked(r, huge, &err) == 0);
  for (int i = 0; i < REPORT_MAX_LABELS; i++) {
    huge[0] = (char)('a' + i); /* distinct keys */
    cr_assert(report_set_label(r, huge, huge, &err) == 0);
  }
  for (int i = 0; i < REPORT_MAX_VERIFIED; i++) {
    huge[0] = (char)('a' + i);
    cr_assert(report_add_verified(r, huge, &err) == 0);
  }
  struct verr failure;
  verr_set(&failure, VERR_VERIFY, "%s", "read-back block hash differs");
  cr_assert(report_set_error(r, &failure, &err) == 0);
  expect_report(r, "len(d['labels']) == 16 and len(d['vimport']['verified']) == 8"
                   " and d['vimport']['error'] == 'verify'"
                   " and d['message'] == 'read-back block hash differs'");

  /* every buffer size from REPORT_MIN_JSON up renders valid JSON within the size */
  char buf[REPORT_MAX_JSON];
  char *lines = malloc(64u << 20);
  cr_assert(lines);
  size_t used = 0;
  for (size_t size = REPORT_MIN_JSON; size <= REPORT_MAX_JSON; size += 61) {
    ssize_t n = report_to_json(r, buf, size);
    cr_assert(n >= 0 && (size_t)n < size, "size %zu gave %zd", size, n);
    memcpy(lines + used, buf, (size_t)n);
    used += (size_t)n;
    lines[used++] = '\n';
  }
  expect_json(lines, used, "True");
  free(lines);
  cr_assert(report_to_json(r, buf, 10) == -1, "a 10-byte buffer cannot hold the skeleton");
  report_free(r);
}

Test(report, errors_and_exit_codes)
{
  struct report *r = new_report();
  struct verr err, failure;
  verr_set(&failure, VERR_CHECKSUM, "the source sha256 is %s, expected %s", "aa", "bb");
  cr_assert(report_set_error(r, &failure, &err) == 0);
  expect_report(r, "d['vimport']['error'] == 'checksum'"
                   " and d['message'] == 'the source sha256 is aa, expected bb'"
                   " and d['scratchSpaceRequired'] is False");
  cr_assert(report_exit_code(r) == 0, "CDI: a checksum mismatch exits 0");

  verr_set(&failure, VERR_SCRATCH_REQUIRED, "scratch space required and none found");
  cr_assert(report_set_error(r, &failure, &err) == 0);
  expect_report(r, "d['scratchSpaceRequired'] is True and d['vimport']['error'] == 'scratch-required'");
  cr_assert(report_exit_code(r) == 0, "CDI reads scratchSpaceRequired only after exit 0");

  cr_assert(report_set_error(r, NULL, &err) == 0);
  cr_assert(report_exit_code(r) == 0);
  expect_report(r, "'error' not in d['vimport']");

  static const struct { enum verr_code code; int exit; } table[] = {
    { VERR_USAGE, 1 }, { VERR_SOURCE, 1 }, { VERR_FORMAT, 1 }, { VERR_VERIFY, 1 },
    { VERR_TARGET_TOO_SMALL, 1 }, { VERR_IO, 1 }, { VERR_NOMEM, 1 }, { VERR_INTERNAL, 1 },
    { VERR_CANCELLED, 1 }, { VERR_CHECKSUM, 0 }, { VERR_SCRATCH_REQUIRED, 0 },
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    verr_set(&failure, table[i].code, "x");
    cr_assert(report_set_error(r, &failure, &err) == 0);
    cr_assert(report_exit_code(r) == table[i].exit, "%s", verr_code_name(table[i].code));
  }

  /* a verr whose message fills the array without a NUL */
  memset(failure.message, 'z', sizeof failure.message);
  failure.code = VERR_IO;
  cr_assert(report_set_error(r, &failure, &err) == 0);
  expect_report(r, "d['message'] == 'z' * 1024");
  report_free(r);
}

Test(report, labels_replace_and_limits)
{
  struct report *r = new_report();
  struct verr err;
  cr_assert(report_set_label(r, "a", "1", &err) == 0);
  cr_assert(report_set_label(r, "a", "2", &err) == 0);
  expect_report(r, "d['labels'] == {'a': '2'}");
  char key[8];
  for (int i = 1; i < REPORT_MAX_LABELS; i++) {
    snprintf(key, sizeof key, "k%d", i);
    cr_assert(report_set_label(r, key, "v", &err) == 0);
  }
  cr_assert(report_set_label(r, "one-too-many", "v", &err) == -1);
  cr_assert(err.code == VERR_USAGE && strstr(err.message, "labels") != NULL);
  for (int i = 0; i < REPORT_MAX_VERIFIED; i++) {
    snprintf(key, sizeof key, "s%d", i);
    cr_assert(report_add_verified(r, key, &err) == 0);
  }
  cr_assert(report_add_verified(r, "s0", &err) == 0, "a duplicate is not a new entry");
  cr_assert(report_add_verified(r, "extra", &err) == -1);
  report_free(r);
}

Test(report, write_file_replaces_content_and_fails_clearly)
{
  char path[128];
  snprintf(path, sizeof path, "%s/termination-log", tmpdir);
  CLEANUP_FREE char *junk = malloc(8192);
  memset(junk, '#', 8192);
  write_file(path, junk, 8192); /* older, longer content must not survive */

  struct report *r = new_report();
  struct verr err;
  CLEANUP_FREE char *m = long_message("\"");
  cr_assert(report_set_message(r, m, &err) == 0);
  cr_assert(report_write_file(r, path, &err) == 0, "%s", err.message);

  struct stat st;
  cr_assert(stat(path, &st) == 0);
  cr_assert(st.st_size <= REPORT_MAX_JSON && st.st_size > 3000, "size %lld", (long long)st.st_size);
  char want[REPORT_MAX_JSON + 1], got[REPORT_MAX_JSON + 1];
  ssize_t n = report_to_json(r, want, REPORT_MAX_JSON);
  want[n] = '\n';
  int fd = open(path, O_RDONLY);
  cr_assert(fd >= 0);
  cr_assert(read(fd, got, sizeof got) == n + 1);
  close(fd);
  cr_assert(memcmp(got, want, (size_t)n + 1) == 0);
  CLEANUP_FREE char *content = malloc((size_t)n + 2);
  memcpy(content, got, (size_t)n + 1);
  expect_json(content, (size_t)n + 1, "d['message'].startswith('HEAD:')");

  cr_assert(report_write_file(r, "/nonexistent-dir/termination-log", &err) == -1);
  cr_assert(err.code == VERR_IO && err.sys_errno == ENOENT);
  cr_assert(strstr(err.message, "/nonexistent-dir/termination-log") != NULL, "%s", err.message);
  report_free(r);
}

Test(report, random_bytes_always_render_valid_json)
{
  char *lines = malloc(400u * REPORT_MAX_JSON);
  cr_assert(lines);
  size_t used = 0;
  uint64_t x = 88172645463325252u;
  for (int round = 0; round < 400; round++) {
    struct report *r = new_report();
    struct verr err;
    char text[3][6000];
    for (int t = 0; t < 3; t++) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      size_t len = (size_t)(x % (round < 200 ? 200 : 5999));
      for (size_t i = 0; i < len; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        text[t][i] = (char)((x % 4 == 0) ? 0x80 + x % 0x80 : 1 + x % 0x7f);
      }
      text[t][len] = '\0';
    }
    cr_assert(report_set_message(r, text[0], &err) == 0);
    cr_assert(report_set_label(r, text[1], text[2], &err) == 0);
    cr_assert(report_set_format(r, text[2], &err) == 0);
    char buf[REPORT_MAX_JSON];
    ssize_t n = report_to_json(r, buf, sizeof buf);
    cr_assert(n > 0 && n < REPORT_MAX_JSON);
    memcpy(lines + used, buf, (size_t)n);
    used += (size_t)n;
    lines[used++] = '\n';
    report_free(r);
  }
  expect_json(lines, used, "'labels' in d and 'message' in d");
  free(lines);
}

/* ---- CDI's importer contract: verdicts as JSON, everything else as one line of text ---- */

Test(report, verdict_is_json_with_cdi_fatal_phrase_and_exits_0)
{
  struct report *r = new_report();
  struct verr err, failure;
  verr_set(&failure, VERR_CHECKSUM, "checksum mismatch: expected sha256:aa, calculated sha256:bb");
  cr_assert(report_set_verdict(r, &failure, &err) == 0, "%s", err.message);
  expect_report(r, "d['message'] == 'Unable to process data: checksum mismatch: expected "
                   "sha256:aa, calculated sha256:bb' and d['vimport']['error'] == 'checksum'");
  cr_assert(report_exit_code(r) == 0);

  /* a verdict whose cause lacks the phrase gets it, so the controller still sees it */
  verr_set(&failure, VERR_VERIFY, "the signing certificate \"x\" is not trusted");
  cr_assert(report_set_verdict(r, &failure, &err) == 0);
  expect_report(r, "d['message'] == 'Unable to process data: checksum mismatch: the signing "
                   "certificate \"x\" is not trusted' and d['vimport']['error'] == 'verify'");
  cr_assert(report_exit_code(r) == 0, "a verification verdict exits 0, as CDI's mismatch");

  /* the same code through report_set_error (vimport verify) still exits 1 */
  cr_assert(report_set_error(r, &failure, &err) == 0);
  cr_assert(report_exit_code(r) == 1);

  verr_set(&failure, VERR_SOURCE, "HTTP 404");
  cr_assert(report_set_verdict(r, &failure, &err) == -1, "a 404 is no verdict");
  cr_assert(err.code == VERR_USAGE);
  cr_assert(!report_is_verdict(VERR_SCRATCH_REQUIRED) && !report_is_verdict(VERR_IO));
  report_free(r);
}

Test(report, text_line_is_one_line_with_prefix)
{
  char buf[REPORT_MAX_JSON];
  ssize_t n = report_text_line(REPORT_PROCESS_PREFIX, "HTTP 500 from x\nretry\tlater", buf,
                               sizeof buf);
  cr_assert_str_eq(buf, "Unable to process data: HTTP 500 from x retry later\n");
  cr_assert(n == (ssize_t)strlen(buf));
  n = report_text_line(NULL, "environment: IMPORTER_SOURCE: not set", buf, sizeof buf);
  cr_assert_str_eq(buf, "environment: IMPORTER_SOURCE: not set\n");
  cr_assert(report_text_line("p", "c", buf, 15) == -1, "too small a buffer is refused");
}

Test(report, text_line_is_cut_under_4096_at_a_character)
{
  /* 3000 two-byte characters: 6000 bytes, cut with "..." between whole characters */
  char *cause = malloc(6001);
  cr_assert(cause);
  for (int i = 0; i < 3000; i++)
    memcpy(cause + 2 * i, "\xc3\xa9", 2);
  cause[6000] = '\0';
  char buf[8192];
  ssize_t n = report_text_line(REPORT_PROCESS_PREFIX, cause, buf, sizeof buf);
  cr_assert(n > 4000 && n <= REPORT_MAX_JSON - 1, "length %zd", n);
  cr_assert(buf[n - 1] == '\n' && memchr(buf, '\n', (size_t)n - 1) == NULL);
  cr_assert(memcmp(buf + n - 4, "...", 3) == 0);
  cr_assert(strncmp(buf, REPORT_PROCESS_PREFIX, strlen(REPORT_PROCESS_PREFIX)) == 0);
  /* every byte between the prefix and the marker belongs to a whole "é" */
  size_t body = (size_t)n - 4 - strlen(REPORT_PROCESS_PREFIX);
  cr_assert(body % 2 == 0, "a character was split: %zu bytes", body);
  /* every smaller buffer too */
  for (size_t size = 16; size < 200; size++) {
    n = report_text_line(REPORT_PROCESS_PREFIX, cause, buf, size);
    cr_assert(n >= 0 && (size_t)n < size && buf[n] == '\0' && buf[n - 1] == '\n');
  }
  free(cause);

  char path[128];
  snprintf(path, sizeof path, "%s/termination-log", tmpdir);
  struct verr err;
  cr_assert(report_write_text("Unable to connect to http data source: ", "HTTP 404 from u",
                              path, &err) == 0, "%s", err.message);
  FILE *f = fopen(path, "r");
  cr_assert(f);
  char line[256] = "";
  cr_assert(fgets(line, sizeof line, f) != NULL);
  fclose(f);
  cr_assert_str_eq(line, "Unable to connect to http data source: HTTP 404 from u\n");
}

/* vimport.registry: the manifest, every layer read (in order), the disk file; with 16
 * layers and 16 labels of long values the line still fits and stays valid JSON. */
Test(report, registry_image)
{
  struct report *r = new_report();
  struct verr err;
  const char *layers[REPORT_MAX_LAYERS];
  char digests[REPORT_MAX_LAYERS][80];
  for (int i = 0; i < REPORT_MAX_LAYERS; i++) {
    snprintf(digests[i], sizeof digests[i], "sha256:%064d", i);
    layers[i] = digests[i];
  }
  cr_assert_eq(report_set_registry(r, "sha256:" "ab", NULL, layers, 2, "disk/disk.qcow2", &err), 0);
  cr_assert_eq(report_set_label(r, "instancetype.kubevirt.io/default-instancetype", "u1.small",
                                &err), 0);
  expect_report(r, "d['vimport']['registry'] == {'manifestDigest': 'sha256:ab', 'layerDigests': "
                   "['sha256:' + '0' * 64, 'sha256:' + '0' * 63 + '1'], 'diskFile': "
                   "'disk/disk.qcow2'} and d['labels'] == "
                   "{'instancetype.kubevirt.io/default-instancetype': 'u1.small'}");
  cr_assert_eq(report_set_registry(r, "sha256:cd", "sha256:ef", layers, REPORT_MAX_LAYERS,
                                   "disk/x", &err), 0);
  char key[64], value[300];
  memset(value, 'v', sizeof value - 1);
  value[sizeof value - 1] = '\0';
  for (int i = 0; i < REPORT_MAX_LABELS - 1; i++) { /* one is set above */
    snprintf(key, sizeof key, "k%d.kubevirt.io/x", i);
    cr_assert_eq(report_set_label(r, key, value, &err), 0);
  }
  expect_report(r, "len(d['vimport']['registry']['layerDigests']) == 16 and len(d['labels']) == 16 "
                   "and d['vimport']['registry']['indexDigest'] == 'sha256:ef'");
  cr_assert_eq(report_set_registry(r, "x", "", layers, REPORT_MAX_LAYERS + 1, "d", &err), -1);
  report_free(r);
}

/* A gcs source's own proof: vimport.sourceChecked, with the object-checksum stage. */
Test(report, source_checked)
{
  struct report *r = new_report();
  struct verr err;
  cr_assert(report_set_message(r, "Import Complete", &err) == 0);
  cr_assert(report_add_verified(r, REPORT_VERIFIED_OBJECT, &err) == 0);
  cr_assert(report_set_source_checked(r, "gs://b/o generation 7: 9 bytes, crc32c 4waSgw==",
                                      &err) == 0);
  expect_report(r, "d['vimport'] == {"
                   " 'verified': ['object-checksum'],"
                   " 'sourceChecked': 'gs://b/o generation 7: 9 bytes, crc32c 4waSgw=='}");
  report_free(r);
}
