/* vimport source: the CA bundle for a custom trust (CDI's certConfigMap).
 *
 * CDI mounts a ConfigMap as a directory of PEM files. CURLOPT_CAINFO takes one file
 * and CURLOPT_CAPATH needs c_rehash'd names the mount does not have, so every file is
 * concatenated into one memory blob for CURLOPT_CAINFO_BLOB. The blob starts with
 * libcurl's default bundle because the blob replaces CURLOPT_CAINFO: CDI adds the
 * ConfigMap to the system pool rather than replacing it, and so do we. CDI also adds
 * the cluster-wide proxy CA bundle it mounts at /proxycerts, skipping what it cannot
 * read there (http-datasource.go createCertPool); so does the proxy directory here.
 */
#include "source/internal.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/cleanup.h"
#include "core/log.h"

#define CA_FILE_MAX (4u << 20)   /* a PEM file bigger than this is not a CA bundle */
#define CA_TOTAL_MAX (32u << 20) /* bound on the whole blob */
#define PEM_CERT_MARK "-----BEGIN CERTIFICATE-----"

struct ca_blob {
  char *data;
  size_t len;
  unsigned n_files; /* files that held at least one PEM certificate */
};

static int ca_blob_append(struct ca_blob *b, const char *data, size_t len, struct verr *err)
{
  if (b->len + len + 1 > CA_TOTAL_MAX)
    return verr_set(err, VERR_USAGE,
                    "the CA certificates add up to more than %u MiB; give only the CA "
                    "files the source needs",
                    CA_TOTAL_MAX >> 20);
  char *grown = realloc(b->data, b->len + len + 2);
  if (grown == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "loading CA certificates");
  b->data = grown;
  memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len++] = '\n'; /* a file without a final newline must not glue PEM blocks */
  b->data[b->len] = '\0';
  return 0;
}

/* Read a whole regular file of at most CA_FILE_MAX bytes. */
static int read_small_file(const char *path, char **out, size_t *out_len, struct verr *err)
{
  CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return verr_sys(err, VERR_USAGE, errno, "cannot open CA file %s", path);
  struct stat st;
  if (fstat(fd, &st) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot stat CA file %s", path);
  if (st.st_size > (off_t)CA_FILE_MAX)
    return verr_set(err, VERR_USAGE, "CA file %s is larger than %u MiB; is it a PEM file?",
                    path, CA_FILE_MAX >> 20);
  CLEANUP_FREE char *buf = malloc((size_t)st.st_size + 1);
  if (buf == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "reading CA file %s", path);
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return verr_sys(err, VERR_IO, errno, "cannot read CA file %s", path);
    if (n == 0)
      break;
    got += (size_t)n;
  }
  buf[got] = '\0';
  *out = TAKE_PTR(buf);
  *out_len = got;
  return 0;
}

/* Append `path` if it holds PEM certificates. Returns 1 if appended, 0 if skipped. */
static int ca_blob_add_file(struct ca_blob *b, const char *path, struct verr *err)
{
  CLEANUP_FREE char *pem = NULL;
  size_t len = 0;
  if (read_small_file(path, &pem, &len, err) < 0)
    return -1;
  if (strstr(pem, PEM_CERT_MARK) == NULL)
    return 0;
  if (ca_blob_append(b, pem, len, err) < 0)
    return -1;
  b->n_files++;
  return 1;
}

static void ca_blob_cleanup(struct ca_blob *b)
{
  free(b->data);
}

static int entry_cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* `lenient`: a file that cannot be read is logged and skipped (the proxy directory). */
static int ca_blob_add_dir_entry(struct ca_blob *b, const char *dir, const char *name,
                                 bool lenient, struct verr *err)
{
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
    return 0;
  int added = ca_blob_add_file(b, path, err);
  if (added < 0 && lenient) {
    vlog_warn("source", "CA directory %s: %s skipped: %s", dir, name, err->message);
    return 0;
  }
  if (added == 0)
    vlog_info("source", "CA directory %s: %s holds no PEM certificate, skipped", dir, name);
  return added < 0 ? -1 : 0;
}

/* Every regular file of `dir` (following symlinks: a ConfigMap mount's files are links
 * into "..data/"), in name order so the result does not depend on readdir. Hidden
 * entries ("..data", "..2024_...") are skipped: they are the same files again. */
static int ca_blob_add_dir(struct ca_blob *b, const char *dir, bool lenient, struct verr *err)
{
  DIR *d = opendir(dir);
  if (d == NULL)
    return verr_sys(err, VERR_USAGE, errno, "cannot open the CA directory %s", dir);
  char *names[1024];
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < sizeof names / sizeof names[0]) {
    if (e->d_name[0] == '.')
      continue;
    names[n] = strdup(e->d_name);
    if (names[n] != NULL)
      n++;
  }
  closedir(d);
  qsort(names, n, sizeof names[0], entry_cmp);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    if (rc == 0)
      rc = ca_blob_add_dir_entry(b, dir, names[i], lenient, err);
    free(names[i]);
  }
  return rc;
}

int source_tls_load_cas(const char *default_bundle, const char *proxy_dir, const char *ca_dir,
                        const char *ca_file, char **blob, size_t *blob_len, struct verr *err)
{
  __attribute__((cleanup(ca_blob_cleanup))) struct ca_blob b = { 0 };
  if (default_bundle != NULL && access(default_bundle, R_OK) == 0 &&
      ca_blob_add_file(&b, default_bundle, err) < 0)
    return -1;
  unsigned system_files = b.n_files;
  if (proxy_dir != NULL && ca_blob_add_dir(&b, proxy_dir, true, err) < 0)
    vlog_warn("source", "the proxy CA directory %s is skipped: %s", proxy_dir, err->message);
  if (ca_file != NULL) {
    int added = ca_blob_add_file(&b, ca_file, err);
    if (added < 0)
      return -1;
    if (added == 0)
      return verr_set(err, VERR_USAGE,
                      "CA file %s holds no PEM certificate (\"" PEM_CERT_MARK "\"); give "
                      "the CA certificate in PEM form",
                      ca_file);
  }
  if (ca_dir != NULL) {
    unsigned before = b.n_files;
    if (ca_blob_add_dir(&b, ca_dir, false, err) < 0)
      return -1;
    if (b.n_files == before)
      return verr_set(err, VERR_USAGE,
                      "the CA directory %s holds no PEM certificate; the ConfigMap must "
                      "hold the CA in PEM form (\"" PEM_CERT_MARK "\")",
                      ca_dir);
  }
  vlog_info("source", "trusting %u CA file(s) besides the system trust",
            b.n_files - system_files);
  *blob_len = b.len;
  *blob = TAKE_PTR(b.data);
  return 0;
}

int source_ca_blob(const char *proxy_ca_dir, const char *ca_dir, char **blob, size_t *blob_len,
                   struct verr *err)
{
  struct stat st;
  const char *proxy = proxy_ca_dir != NULL && stat(proxy_ca_dir, &st) == 0 &&
                      S_ISDIR(st.st_mode) ? proxy_ca_dir : NULL;
  *blob = NULL;
  *blob_len = 0;
  if (proxy == NULL && ca_dir == NULL)
    return 0;
  char *default_bundle = NULL;
  CURL *probe = curl_easy_init();
  if (probe != NULL)
    curl_easy_getinfo(probe, CURLINFO_CAINFO, &default_bundle);
  int rc = source_tls_load_cas(default_bundle, proxy, ca_dir, NULL, blob, blob_len, err);
  curl_easy_cleanup(probe);
  return rc;
}
