/* vimport nodepull: CDI's registry node pull ("pullMethod: node"), both sides.
 *
 * CDI does not pull the containerDisk itself in a node pull: it runs the image as a
 * container of the importer pod, so the kubelet pulls it, and serves its disk to the
 * importer over loopback (pkg/controller/import-controller.go):
 *
 *   init container (importer image)    sh -c "cp /usr/bin/cdi-containerimage-server /shared/server"
 *   "server" container (containerDisk) /shared/server -p 8100 -image-dir /disk
 *                                        -ready-file /shared/ready -done-file /shared/done
 *   importer container                 IMPORTER_SOURCE=http
 *                                      IMPORTER_ENDPOINT=http://localhost:8100/disk.img
 *                                      IMPORTER_READY_FILE=/shared/ready
 *                                      IMPORTER_DONE_FILE=/shared/done
 *                                      IMPORTER_PULL_METHOD=node
 *
 * The server side (server.c, request.c), CDI's tools/cdi-containerimage-server:
 *   - refuses a bootc image (a directory /sysroot or /ostree) with CDI's message, prints
 *     the image directory's tree, and needs exactly one entry in it that is not a
 *     directory ("Invalid container image" otherwise): the disk file;
 *   - listens on 127.0.0.1:<port> (Go's "localhost:<port>"), then writes the disk file's
 *     name (nothing else, mode 0600) to the ready file;
 *   - serves GET and HEAD of /<name> as Go's http.ServeContent does: Accept-Ranges,
 *     Last-Modified, Content-Length; one "Range: bytes=" range (a-b, a-, -n) answered 206
 *     with Content-Range, or 416 with "Content-Range: bytes * /<size>" (no space) when it
 *     starts past the end or is malformed; If-Range equal to the Last-Modified it sent
 *     keeps the range, any other If-Range gets the whole file (200);
 *   - serves GET /info as {"env":["NAME=value",...]} (CDI's common.ServerInfo: the
 *     server's environment, i.e. the containerDisk image's ENV, which the importer turns
 *     into the termination message's labels);
 *   - polls for the done file once a second; when it appears, removes it, stops
 *     accepting, lets the responses in flight finish (at most
 *     NODEPULL_SHUTDOWN_SECONDS), removes the ready file and returns 0.
 *   Differs from Go's http.FileServer, on paths nothing of CDI asks for: "/" is 404,
 *   not a directory listing; methods other than GET and HEAD are 405; the Content-Type
 *   is always application/octet-stream (Go sniffs the first 512 bytes: the same for a
 *   disk image, application/x-gzip for a gzip file); a request with several ranges gets
 *   the whole file (200, which RFC 9110 allows) rather than multipart/byteranges;
 *   If-Modified-Since, If-None-Match and the other preconditions are not evaluated.
 *   At most NODEPULL_MAX_CONNECTIONS connections are served at once (Go: no limit);
 *   the request head must arrive within 10 s (Go's ReadHeaderTimeout in CDI) and fit
 *   in NODEPULL_MAX_HEAD bytes (Go: 1 MiB, 431 past it).
 *
 * The importer side (handoff.c), CDI's cmd/cdi-importer/importer.go:
 *   - waitForReadyFile: before any source other than a blank one, wait for the ready
 *     file: a stat once a second, 60 times; then the plain termination message
 *     "Timeout waiting for file <path>" and exit 1 (the caller writes it);
 *   - getHTTPEp: for an http source, a non-empty ready file names the disk file: the
 *     endpoint loses a trailing "disk.img" and gets that name instead;
 *   - touchDoneFile: create the done file (O_CREAT|O_EXCL, 0666) after an import that
 *     succeeded or asked for scratch space, before the termination message; not after a
 *     failure or a checksum verdict: CDI's importer exits without it, the pod restarts
 *     the importer and the server keeps serving the retry.
 *
 * Errors: functions returning int return 0, or -1 with `err` filled (VERR_USAGE for a
 * bad image directory or flag, VERR_IO for a file or socket that failed, VERR_SOURCE
 * for a ready file that never came).
 */
#ifndef VIMPORT_NODEPULL_H
#define VIMPORT_NODEPULL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define NODEPULL_DEFAULT_PORT 8100
#define NODEPULL_DEFAULT_READY_FILE "/shared/ready"
#define NODEPULL_DEFAULT_DONE_FILE "/shared/done"
#define NODEPULL_READY_TIMEOUT_SECONDS 60 /* CDI's readyFileTimeoutSeconds */
#define NODEPULL_DISK_IMAGE_NAME "disk.img" /* CDI's common.DiskImageName */
#define NODEPULL_MAX_CONNECTIONS 32
#define NODEPULL_MAX_HEAD 16384
#define NODEPULL_HEADER_TIMEOUT_MS 10000
#define NODEPULL_SHUTDOWN_SECONDS 30

/* ---- the server: cdi-containerimage-server ---- */

struct nodepull_server_opts {
  unsigned port;          /* 1..65535 */
  const char *image_dir;  /* the directory holding the one disk file */
  const char *ready_file; /* written with the disk file's name once listening */
  const char *done_file;  /* its appearance stops the server */
  char *const *envp;      /* served at /info (pass environ) */
  unsigned poll_ms;       /* done-file poll interval; 0 means 1000 (CDI's) */
  const char *bootc_root; /* where /sysroot and /ostree are looked for; NULL means "/" */
};

/* CDI's getImageFilename: the one entry of `dir`, which must not be a directory (a
 * symlink counts as a file, as Go's DirEntry.IsDir says). Writes its name to `name`. */
int nodepull_image_name(const char *dir, char *name, size_t name_size, struct verr *err);

/* Everything the server does, from the bootc check to the removal of the ready file
 * after the done file appeared (see the top comment). Blocks until then. */
int nodepull_serve(const struct nodepull_server_opts *opts, struct verr *err);

/* ---- the request, parsed (pure functions: request.c) ---- */

enum nodepull_method { NODEPULL_GET, NODEPULL_HEAD, NODEPULL_OTHER };

struct nodepull_request {
  enum nodepull_method method;
  char path[1024];      /* percent-decoded, query dropped; "" when too long or invalid */
  char range[256];      /* the Range value, "" when absent (or too long: then ignored) */
  char if_range[128];   /* the If-Range value, "" when absent */
  bool keep_alive;      /* HTTP/1.1 without "Connection: close" */
  bool has_body;        /* Content-Length > 0 or Transfer-Encoding: the connection
                         * is closed after the answer rather than reading the body */
};

/* Parse a request head (request line and header fields, up to and including the blank
 * line; `len` bytes, need not be NUL-terminated). Returns 0, or -1 for a head that is
 * not HTTP/1.x (the caller answers 400 and closes). */
int nodepull_parse_request(const char *head, size_t len, struct nodepull_request *req);

enum nodepull_range {
  NODEPULL_RANGE_WHOLE,         /* no usable single range: 200 with the whole file */
  NODEPULL_RANGE_PART,          /* 206 with [*start, *start + *length) */
  NODEPULL_RANGE_UNSATISFIABLE, /* 416 */
};

/* Go's parseRange for a file of `size` bytes and a Range value (see the top comment). */
enum nodepull_range nodepull_parse_range(const char *value, uint64_t size, uint64_t *start,
                                         uint64_t *length);

/* ---- the importer side (handoff.c) ---- */

/* Wait for `ready_file` to exist: a stat every second, at most `timeout_seconds` times,
 * stopping early when *cancelled becomes non-zero. VERR_SOURCE with CDI's message
 * "Timeout waiting for file <path>" when it never came, VERR_CANCELLED when stopped. */
int nodepull_wait_ready(const char *ready_file, unsigned timeout_seconds,
                        volatile sig_atomic_t *cancelled, struct verr *err);

/* CDI's getHTTPEp: the endpoint with a trailing "disk.img" replaced by the disk file's
 * name read from `ready_file` (at most 4096 bytes), or the endpoint as it is when the
 * file is empty. *out is a new string the caller frees. */
int nodepull_endpoint(const char *endpoint, const char *ready_file, char **out,
                      struct verr *err);

#define NODEPULL_MAX_LABELS 16
#define NODEPULL_INFO_MAX (1u << 20)
#define NODEPULL_INFO_TIMEOUT_SECONDS 30

struct nodepull_label {
  char key[256];
  char value[512];
};

/* The labels of the server's /info for `endpoint` (http://host:port/...). *n of them are
 * written to `labels` (at most NODEPULL_MAX_LABELS). VERR_SOURCE for the request or its
 * status, VERR_FORMAT for an answer that is not CDI's ServerInfo JSON. */
int nodepull_info_labels(const char *endpoint, struct nodepull_label *labels, size_t *n,
                         struct verr *err);

/* CDI's touchDoneFile: create `done_file` (O_CREAT|O_EXCL, 0666). A file that is already
 * there is an error, as CDI logs it; the caller logs and goes on. */
int nodepull_touch_done(const char *done_file, struct verr *err);

#endif
