/* pkg/archive: the tar reader, the safe extractor and the staging directory, on archives
 * built byte by byte (tests/unit/tar_builder.h), the hostile ones included. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive.h"
#include "tar_builder.h"

/* ---- a reader over memory, with short reads as a network source gives ---- */

struct mem {
  const unsigned char *p;
  size_t len, at;
};

static ssize_t mem_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  (void)err;
  struct mem *m = r->state;
  size_t n = m->len - m->at < len ? m->len - m->at : len;
  n = n > 777 ? 777 : n;
  memcpy(buf, m->p + m->at, n);
  m->at += n;
  return (ssize_t)n;
}

static const struct vreader_ops mem_ops = { .name = "mem", .read = mem_read };

/* ---- fixtures: a fresh directory per test ---- */

static char dir[] = "/tmp/vimport-test-archive-XXXXXX";

static void make_dir(void)
{
  strcpy(dir, "/tmp/vimport-test-archive-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

TestSuite(archive, .init = make_dir, .fini = remove_dir);

static const struct archive_limits roomy = { .max_bytes = 1ull << 30, .block_size = 4096 };

/* Extract `b` beneath `dir` directly (no stage). */
static int extract(const struct tarb *b, const struct archive_limits *limits,
                   struct archive_stats *stats, struct verr *err)
{
  struct mem m = { .p = b->p, .len = b->len };
  struct vreader r = { .ops = &mem_ops, .state = &m };
  struct tar_reader *t = NULL;
  cr_assert_eq(tar_reader_new(&r, &t, err), 0);
  int root = open(dir, O_RDONLY | O_DIRECTORY);
  cr_assert_geq(root, 0);
  memset(stats, 0, sizeof *stats);
  int rc = archive_extract(t, root, limits, stats, err);
  if (rc == 0)
    cr_assert_eq(tar_drain(t, err), 0);
  close(root);
  tar_reader_free(t);
  return rc;
}

static void expect_refused(struct tarb *b, enum verr_code code, const char *words)
{
  struct archive_stats st;
  struct verr err = { 0 };
  cr_assert_eq(extract(b, &roomy, &st, &err), -1, "the archive was accepted");
  cr_expect_eq(err.code, code, "code %d: %s", err.code, err.message);
  cr_expect_not_null(strstr(err.message, words), "message: %s", err.message);
  free(b->p);
}

static char *slurp(const char *rel)
{
  static char buf[4096];
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

static bool exists(const char *rel)
{
  char path[512];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  return lstat(path, &st) == 0;
}

static unsigned count_entries(const char *path)
{
  DIR *d = opendir(path);
  cr_assert_not_null(d);
  unsigned n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
  closedir(d);
  return n;
}

/* ---- what is accepted ---- */

Test(archive, ustar_files_dirs_symlinks_and_prefix)
{
  struct tarb b = { 0 };
  tarb_header(&b, "etc/", '5', 0, NULL, 0755);
  tarb_file(&b, "etc/hosts", "127.0.0.1 localhost\n");
  tarb_header_prefix(&b, "deep/er", "name.txt", '0', 3, NULL, 0600);
  tarb_data(&b, "abc", 3);
  tarb_header(&b, "etc/link", '2', 0, "hosts", 0777);
  tarb_header(&b, "top-link", '2', 0, "etc/../etc/hosts", 0777); /* '..' after a name */
  tarb_end(&b);
  struct archive_stats st;
  struct verr err = { 0 };
  /* the '..' after a name is refused: only a leading run of '..' is allowed */
  cr_assert_eq(extract(&b, &roomy, &st, &err), -1);
  cr_expect_not_null(strstr(err.message, "points outside"), "%s", err.message);
  free(b.p);

  b = (struct tarb){ 0 };
  tarb_header(&b, "etc/", '5', 0, NULL, 0755);
  tarb_file(&b, "etc/hosts", "127.0.0.1 localhost\n");
  tarb_header_prefix(&b, "deep/er", "name.txt", '0', 3, NULL, 0600);
  tarb_data(&b, "abc", 3);
  tarb_header(&b, "etc/sub/up", '2', 0, "../../etc/hosts", 0777);
  tarb_header(&b, "./etc/link", '2', 0, "hosts", 0777);
  tarb_end(&b);
  cr_assert_eq(extract(&b, &roomy, &st, &err), 0, "%s", err.message);
  cr_expect_str_eq(slurp("etc/hosts"), "127.0.0.1 localhost\n");
  cr_expect_str_eq(slurp("deep/er/name.txt"), "abc");
  cr_expect_str_eq(slurp("etc/link"), "127.0.0.1 localhost\n");
  cr_expect_str_eq(slurp("etc/sub/up"), "127.0.0.1 localhost\n");
  cr_expect_eq(st.files, 2);
  cr_expect_eq(st.bytes, 23);
  free(b.p);
}

Test(archive, gnu_long_names_and_link_names)
{
  char longname[301], longlink[301];
  memset(longname, 'n', 300);
  longname[300] = '\0';
  longname[100] = '/'; /* a directory with a 100-byte name, then a 199-byte file name */
  snprintf(longlink, sizeof longlink, "%s", longname);
  struct tarb b = { 0 };
  tarb_meta(&b, 'L', longname, strlen(longname) + 1);
  tarb_header(&b, "truncated-name", '0', 4, NULL, 0644);
  tarb_data(&b, "long", 4);
  tarb_meta(&b, 'K', longlink, strlen(longlink));
  tarb_header(&b, "short-link", '2', 0, "truncated-link", 0777);
  tarb_end(&b);
  struct archive_stats st;
  struct verr err = { 0 };
  cr_assert_eq(extract(&b, &roomy, &st, &err), 0, "%s", err.message);
  cr_expect_str_eq(slurp(longname), "long");
  cr_expect_str_eq(slurp("short-link"), "long");
  cr_expect_not(exists("truncated-name"));
  free(b.p);
}

Test(archive, pax_path_linkpath_and_size)
{
  char rec[512], pax[1024] = "";
  tarb_pax_record(rec, sizeof rec, "path", "pax/ünïcode name.txt");
  strcat(pax, rec);
  tarb_pax_record(rec, sizeof rec, "mtime", "1700000000.5");
  strcat(pax, rec);
  tarb_pax_record(rec, sizeof rec, "size", "5");
  strcat(pax, rec);
  struct tarb b = { 0 };
  tarb_meta(&b, 'g', "19 comment=ignored\n", 19); /* a global header: read, ignored */
  tarb_meta(&b, 'x', pax, strlen(pax));
  tarb_header(&b, "ustar-name", '0', 0, NULL, 0644); /* the pax size (5) wins */
  tarb_data(&b, "hello", 5);
  tarb_pax_record(rec, sizeof rec, "linkpath", "ünïcode name.txt"); /* beside the link */
  tarb_meta(&b, 'x', rec, strlen(rec));
  tarb_header(&b, "pax/link", '2', 0, "other", 0777);
  tarb_end(&b);
  struct archive_stats st;
  struct verr err = { 0 };
  cr_assert_eq(extract(&b, &roomy, &st, &err), 0, "%s", err.message);
  cr_expect_str_eq(slurp("pax/ünïcode name.txt"), "hello");
  cr_expect_str_eq(slurp("pax/link"), "hello");
  cr_expect_eq(st.bytes, 5);
  free(b.p);
}

Test(archive, hard_link_to_an_earlier_file)
{
  struct tarb b = { 0 };
  tarb_file(&b, "a/file", "same inode");
  tarb_header(&b, "b", '1', 0, "a/file", 0644);
  tarb_end(&b);
  struct archive_stats st;
  struct verr err = { 0 };
  cr_assert_eq(extract(&b, &roomy, &st, &err), 0, "%s", err.message);
  char path[512];
  struct stat s;
  snprintf(path, sizeof path, "%s/b", dir);
  cr_assert_eq(stat(path, &s), 0);
  cr_expect_eq(s.st_nlink, 2);
  cr_expect_eq(st.files, 1, "a hard link is not another regular file");
  free(b.p);
}

Test(archive, modes_are_masked)
{
  struct tarb b = { 0 };
  tarb_header(&b, "suid", '0', 1, NULL, 04755);
  tarb_data(&b, "x", 1);
  tarb_header(&b, "ro-dir", '5', 0, NULL, 01555);
  tarb_end(&b);
  struct archive_stats st;
  struct verr err = { 0 };
  cr_assert_eq(extract(&b, &roomy, &st, &err), 0, "%s", err.message);
  char path[512];
  struct stat s;
  snprintf(path, sizeof path, "%s/suid", dir);
  cr_assert_eq(stat(path, &s), 0);
  cr_expect_eq(s.st_mode & 07777, 0755);
  snprintf(path, sizeof path, "%s/ro-dir", dir);
  cr_assert_eq(stat(path, &s), 0);
  cr_expect_eq(s.st_mode & 07777, 0755, "sticky dropped, u+rwx kept: %o", s.st_mode & 07777);
  free(b.p);
}

/* ---- what is refused ---- */

Test(archive, bad_checksum)
{
  struct tarb b = { 0 };
  tarb_file(&b, "f", "data");
  b.p[0] = 'g'; /* the name changes, the stored checksum does not */
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "wrong checksum");
}

Test(archive, truncated_data_header_and_end_marker)
{
  struct tarb b = { 0 };
  tarb_file(&b, "f", "0123456789");
  b.len -= 512 - 4; /* the data stops after 4 bytes */
  expect_refused(&b, VERR_FORMAT, "truncated");
  b = (struct tarb){ 0 };
  tarb_file(&b, "f", "x");
  b.len += 0;
  tarb_grow(&b, 100); /* part of a header */
  expect_refused(&b, VERR_FORMAT, "truncated");
  b = (struct tarb){ 0 };
  tarb_file(&b, "f", "x"); /* no end marker at all */
  expect_refused(&b, VERR_FORMAT, "without its end marker");
}

Test(archive, dotdot_and_absolute_names)
{
  struct tarb b = { 0 };
  tarb_file(&b, "a/../../escape", "x");
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "'..'");
  b = (struct tarb){ 0 };
  tarb_file(&b, "/etc/passwd", "x");
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "absolute");
  char rec[256];
  b = (struct tarb){ 0 };
  tarb_pax_record(rec, sizeof rec, "path", "../pax-escape");
  tarb_meta(&b, 'x', rec, strlen(rec));
  tarb_file(&b, "innocent", "x");
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "'..'");
  cr_expect(!exists("../pax-escape") && count_entries(dir) == 0);
}

Test(archive, symlink_escapes)
{
  struct tarb b = { 0 };
  tarb_header(&b, "evil", '2', 0, "/etc", 0777);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "points outside");
  b = (struct tarb){ 0 };
  tarb_header(&b, "d/evil", '2', 0, "../../x", 0777);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "points outside");
  /* a chain: each link alone looks inside, together they climb out */
  b = (struct tarb){ 0 };
  tarb_header(&b, "sub/s2", '2', 0, "..", 0777);
  tarb_header(&b, "s1", '2', 0, "sub/s2/../..", 0777);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "points outside");
  /* deeper: a/b/x -> .. is a; a/b/l -> x/../.. counts two '..' for two levels, but
   * through x it is a/../.., above the root: a '..' after a name is refused */
  b = (struct tarb){ 0 };
  tarb_header(&b, "a/b/x", '2', 0, "..", 0777);
  tarb_header(&b, "a/b/l", '2', 0, "x/../..", 0777);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "points outside");
  /* an inside link, then a name through it: never followed when writing */
  b = (struct tarb){ 0 };
  tarb_header(&b, "sub/", '5', 0, NULL, 0755);
  tarb_header(&b, "via", '2', 0, "sub", 0777);
  tarb_file(&b, "via/file", "x");
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "through a symlink");
  cr_expect_not(exists("sub/file"));
}

Test(archive, symlink_then_file_of_the_same_name_is_not_followed)
{
  char outside[600];
  snprintf(outside, sizeof outside, "%s-outside", dir);
  struct tarb b = { 0 };
  tarb_header(&b, "x", '2', 0, "y", 0777);
  tarb_file(&b, "x", "replaces the link, never writes through it");
  tarb_end(&b);
  struct archive_stats st;
  struct verr err = { 0 };
  cr_assert_eq(extract(&b, &roomy, &st, &err), 0, "%s", err.message);
  struct stat s;
  char path[600];
  snprintf(path, sizeof path, "%s/x", dir);
  cr_assert_eq(lstat(path, &s), 0);
  cr_expect(S_ISREG(s.st_mode));
  cr_expect_not(exists("y"));
  free(b.p);
}

Test(archive, devices_fifos_sparse_and_unknown_types)
{
  struct tarb b = { 0 };
  tarb_header(&b, "sda", '4', 0, NULL, 0600);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "device node");
  b = (struct tarb){ 0 };
  tarb_header(&b, "tty", '3', 0, NULL, 0600);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "device node");
  b = (struct tarb){ 0 };
  tarb_header(&b, "pipe", '6', 0, NULL, 0600);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "fifo");
  b = (struct tarb){ 0 };
  tarb_header(&b, "sparse", 'S', 0, NULL, 0600);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "sparse");
  b = (struct tarb){ 0 };
  tarb_header(&b, "label", 'V', 0, NULL, 0600);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "unsupported type 'V'");
  cr_expect_eq(count_entries(dir), 0);
}

Test(archive, hard_links_outside_or_to_nothing)
{
  struct tarb b = { 0 };
  tarb_header(&b, "h", '1', 0, "/etc/passwd", 0644);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "absolute");
  b = (struct tarb){ 0 };
  tarb_header(&b, "h", '1', 0, "../x", 0644);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "'..'");
  b = (struct tarb){ 0 };
  tarb_header(&b, "h", '1', 0, "not-there", 0644);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "not a file unpacked before it");
  b = (struct tarb){ 0 };
  tarb_header(&b, "l", '2', 0, "sub", 0777);
  tarb_header(&b, "h", '1', 0, "l/x", 0644); /* through a link */
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "through a symlink");
}

Test(archive, sizes_bounded_by_the_volume)
{
  static char big[20000];
  memset(big, 'z', sizeof big - 1);
  struct tarb b = { 0 };
  tarb_file(&b, "small", "x");
  tarb_file(&b, "big", big);
  tarb_end(&b);
  struct archive_limits tight = { .max_bytes = 16384, .block_size = 4096 };
  struct archive_stats st;
  struct verr err = { 0 };
  cr_assert_eq(extract(&b, &tight, &st, &err), -1);
  cr_expect_eq(err.code, VERR_TARGET_TOO_SMALL);
  cr_expect_not_null(strstr(err.message, "is larger than the reported available"), "%s",
                     err.message);
  cr_expect_not(exists("big"), "nothing of the file that does not fit is written");
  /* a size field far beyond any volume is refused before a byte of it is read */
  free(b.p);
  b = (struct tarb){ 0 };
  unsigned char *h = tarb_header(&b, "huge", '0', 0, NULL, 0644);
  memset(h + 124, 0, 12);
  h[124] = 0x80; /* GNU base-256: 2^62 bytes */
  h[128] = 0x40;
  memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < 512; i++)
    sum += h[i];
  tarb_octal(h + 148, 7, sum);
  tarb_end(&b);
  cr_assert_eq(extract(&b, &roomy, &st, &err), -1);
  cr_expect_eq(err.code, VERR_TARGET_TOO_SMALL, "%s", err.message);
  free(b.p);
  /* and so are more entries than the volume has inodes */
  b = (struct tarb){ 0 };
  tarb_file(&b, "1", "a");
  tarb_file(&b, "2", "b");
  tarb_end(&b);
  struct archive_limits few = { .max_bytes = 1 << 20, .max_entries = 1, .block_size = 512 };
  cr_assert_eq(extract(&b, &few, &st, &err), -1);
  cr_expect_eq(err.code, VERR_TARGET_TOO_SMALL, "%s", err.message);
  free(b.p);
}

Test(archive, oversized_metadata_and_names)
{
  struct tarb b = { 0 };
  tarb_header(&b, "././@LongLink", 'L', TAR_META_MAX + 1, NULL, 0644);
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "more than vimport reads");
  static char name[TAR_NAME_MAX + 10];
  memset(name, 'a', sizeof name - 1);
  b = (struct tarb){ 0 };
  tarb_meta(&b, 'L', name, strlen(name));
  tarb_file(&b, "x", "x");
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "longer than");
  b = (struct tarb){ 0 };
  tarb_meta(&b, 'x', "99 path=x\n", 10); /* a record longer than the header */
  tarb_file(&b, "x", "x");
  tarb_end(&b);
  expect_refused(&b, VERR_FORMAT, "record's length");
}

/* ---- the stage: all or nothing ---- */

static int stage_run(const struct tarb *b, struct archive_stats *st, struct verr *err)
{
  struct archive_stage *s = NULL;
  struct archive_limits limits = { 0 };
  cr_assert_eq(archive_stage_new(dir, &s, &limits, err), 0, "%s", err->message);
  cr_assert_gt(limits.max_bytes, 0);
  struct mem m = { .p = b->p, .len = b->len };
  struct vreader r = { .ops = &mem_ops, .state = &m };
  struct tar_reader *t = NULL;
  cr_assert_eq(tar_reader_new(&r, &t, err), 0);
  int rc = archive_extract(t, archive_stage_fd(s), &limits, st, err);
  tar_reader_free(t);
  if (rc == 0)
    rc = archive_stage_commit(s, err);
  archive_stage_free(s);
  return rc;
}

Test(archive, stage_commits_every_entry_and_leaves_no_staging_dir)
{
  struct tarb b = { 0 };
  tarb_file(&b, "one", "1");
  tarb_file(&b, "d/two", "22");
  tarb_header(&b, "ln", '2', 0, "d/two", 0777);
  tarb_end(&b);
  struct archive_stats st = { 0 };
  struct verr err = { 0 };
  cr_assert_eq(stage_run(&b, &st, &err), 0, "%s", err.message);
  cr_expect_eq(count_entries(dir), 3, "one, d, ln and no staging directory");
  cr_expect_str_eq(slurp("ln"), "22");
  free(b.p);
}

Test(archive, stage_removes_everything_after_a_hostile_entry)
{
  struct tarb b = { 0 };
  tarb_file(&b, "fine/a", "a");
  tarb_header(&b, "fine/ro", '5', 0, NULL, 0500);
  tarb_file(&b, "fine/ro/inside", "b");
  tarb_header(&b, "fine/l", '2', 0, "a", 0777);
  tarb_file(&b, "../evil", "x");
  tarb_end(&b);
  struct archive_stats st = { 0 };
  struct verr err = { 0 };
  cr_assert_eq(stage_run(&b, &st, &err), -1);
  cr_expect_eq(count_entries(dir), 0, "the staged entries and the staging dir are gone");
  free(b.p);
}

Test(archive, stage_refuses_a_name_that_exists)
{
  char path[512];
  snprintf(path, sizeof path, "%s/keep", dir);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("mine", f);
  fclose(f);
  struct tarb b = { 0 };
  tarb_file(&b, "a-new-one", "n");
  tarb_file(&b, "keep", "theirs");
  tarb_end(&b);
  struct archive_stats st = { 0 };
  struct verr err = { 0 };
  cr_assert_eq(stage_run(&b, &st, &err), -1);
  cr_expect_not_null(strstr(err.message, "already exists"), "%s", err.message);
  cr_expect_str_eq(slurp("keep"), "mine");
  cr_expect_eq(count_entries(dir), 1, "nothing moved, the staging dir removed");
  free(b.p);
}

Test(archive, stage_removes_what_a_killed_import_left)
{
  char cmd[512];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s/.vimport-archive-OLD123/sub' && "
           "touch '%s/.vimport-archive-OLD123/sub/f' '%s/.vimport-archive-file'", dir, dir, dir);
  cr_assert_eq(system(cmd), 0);
  struct tarb b = { 0 };
  tarb_file(&b, "new", "n");
  tarb_end(&b);
  struct archive_stats st = { 0 };
  struct verr err = { 0 };
  cr_assert_eq(stage_run(&b, &st, &err), 0, "%s", err.message);
  cr_expect_not(exists(".vimport-archive-OLD123"), "the stale staging dir is removed");
  cr_expect(exists(".vimport-archive-file"), "a file of that prefix is not ours: kept");
  cr_expect_str_eq(slurp("new"), "n");
  free(b.p);
}
