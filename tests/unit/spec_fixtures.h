/* Test helpers shared by the pkg/spec unit tests (test_spec.c, test_spec_yaml.c): the
 * digests of known inputs, a temporary root for secret mounts (made by make_tmp(),
 * removed by remove_tmp()) with files and directories written in it, the full set of
 * mounts the specs refer to (make_mounts()), and a printf into a fresh string.
 * Header-only: each test binary includes it once.
 */
#ifndef VIMPORT_TESTS_SPEC_FIXTURES_H
#define VIMPORT_TESTS_SPEC_FIXTURES_H

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec/spec.h"

#define SHA256_HEX "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define MD5_HEX "d41d8cd98f00b204e9800998ecf8427e"
#define SHA1_HEX "da39a3ee5e6b4b0d3255bfef95601890afd80709"
#define SHA512_HEX                                                                         \
  "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2" \
  "877eec2f63b931bd47417a81a538327af927da3e"

static char tmp_root[64];

static inline void make_tmp(void)
{
  strcpy(tmp_root, "/tmp/vimport-spec-XXXXXX");
  cr_assert_not_null(mkdtemp(tmp_root), "mkdtemp: %s", strerror(errno));
}

static inline int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static inline void remove_tmp(void)
{
  if (tmp_root[0] != '\0')
    nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Path under the temp root; returns a static-per-call heap string the test frees. */
static inline char *tmp_path(const char *rel)
{
  char *p;
  cr_assert_neq(asprintf(&p, "%s/%s", tmp_root, rel), -1);
  return p;
}

static inline void write_file(const char *rel, const char *content)
{
  char *path = tmp_path(rel);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
  fputs(content, f);
  fclose(f);
  free(path);
}

static inline void make_dir(const char *rel)
{
  char *path = tmp_path(rel);
  cr_assert_eq(mkdir(path, 0700), 0, "mkdir %s: %s", path, strerror(errno));
  free(path);
}

static inline char *format(const char *fmt, ...)
{
  char *s;
  va_list ap;
  va_start(ap, fmt);
  cr_assert_neq(vasprintf(&s, fmt, ap), -1);
  va_end(ap);
  return s;
}

static inline void make_mounts(void)
{
  make_dir("certs");
  write_file("certs/ca.crt", "not really a cert\n");
  make_dir("secret");
  write_file("secret/accessKeyId", "alice\n");
  write_file("secret/secretKey", "s3cr3t-password\n");
  make_dir("extraheaders");
  make_dir("extraheaders/hdr-a");
  write_file("extraheaders/hdr-a/token", "X-Token: hidden-token-value\n");
  write_file("extraheaders/hdr-a/.hidden", "X-Ignored: never\n");
  make_dir("extraheaders/hdr-b");
  write_file("extraheaders/hdr-b/b", "X-B:   second-secret\r\n");
  write_file("extraheaders/hdr-b/a", "X-A: first-secret");
}

#endif
