/* vimport nbd: see nbd.h for the contract.
 *
 * The walk alternates two NBD commands: block status for the next span (at most
 * NBD_GUEST_STATUS_SPAN bytes, copied into a bounded extent list inside the callback,
 * because libnbd forbids issuing commands from a callback), then pread for the data
 * extents of that list. Zero extents wait in `pending_zero` so neighbours merge into
 * one before they reach the sink.
 */
#include "nbd.h"

#include <errno.h>
#include <libnbd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/zero.h"
#include "core/cleanup.h"

struct nbd_extent {
  uint64_t length;
  uint32_t flags;
};

struct nbd_guest {
  struct nbd_handle *h;
  char where[512]; /* redacted URI or file, for messages */
  uint64_t size;
  bool block_status;
  unsigned char *buf; /* queue_depth slots of request_size bytes */
  size_t request_size;
  unsigned queue_depth; /* reads in flight at most */
  /* the current block-status reply */
  struct nbd_extent status[NBD_GUEST_MAX_STATUS];
  size_t n_status;
  /* zeros not yet emitted: [zero_start, zero_start + zero_len) */
  uint64_t zero_start, zero_len;
  uint64_t bytes_read, zero_bytes;
};

static int nbd_guest_fail(struct nbd_guest *g, const char *what, struct verr *err)
{
  const char *why = nbd_get_error();
  return verr_set(err, VERR_SOURCE, "NBD %s of %s failed: %s; check that the server is "
                  "running and serves that export", what, g->where, why ? why : "unknown error");
}

/* ---- connecting ------------------------------------------------------------------- */

static bool is_uri(const char *s)
{
  return strncmp(s, "nbd://", 6) == 0 || strncmp(s, "nbds://", 7) == 0 ||
         strncmp(s, "nbd+unix://", 11) == 0 || strncmp(s, "nbds+unix://", 12) == 0;
}

/* libnbd parses URIs only when built with libxml2, which the static build leaves out:
 * there, the two plain forms are taken apart here (no TLS, no percent-escapes). */
static int nbd_guest_connect_plain_uri(struct nbd_guest *g, const char *uri, struct verr *err)
{
  char host[256] = "", port[16] = "10809", export[512] = "", socket_path[1024] = "";
  const char *rest;
  if (strncmp(uri, "nbd+unix://", 11) == 0) {
    rest = uri + 11;
    const char *q = strstr(rest, "?socket=");
    if (q == NULL)
      return verr_set(err, VERR_USAGE, "%s: nbd+unix:// needs ?socket=PATH", g->where);
    snprintf(socket_path, sizeof socket_path, "%s", q + 8);
    const char *name = rest[0] == '/' ? rest + 1 : rest; /* nbd+unix:///EXPORT?socket= */
    snprintf(export, sizeof export, "%.*s", (int)(q - name), name);
  } else if (strncmp(uri, "nbd://", 6) == 0) {
    rest = uri + 6;
    size_t hl = strcspn(rest, ":/?");
    snprintf(host, sizeof host, "%.*s", (int)hl, rest);
    rest += hl;
    if (*rest == ':') {
      size_t pl = strcspn(rest + 1, "/?");
      snprintf(port, sizeof port, "%.*s", (int)pl, rest + 1);
      rest += 1 + pl;
    }
    if (*rest == '/')
      snprintf(export, sizeof export, "%.*s", (int)strcspn(rest + 1, "?"), rest + 1);
  } else {
    return verr_set(err, VERR_USAGE, "%s: this build of vimport has no TLS for NBD; use nbd:// "
                    "or nbd+unix://", g->where);
  }
  if (nbd_set_export_name(g->h, export) == -1)
    return nbd_guest_fail(g, "connection", err);
  int r = socket_path[0] ? nbd_connect_unix(g->h, socket_path) : nbd_connect_tcp(g->h, host, port);
  return r == -1 ? nbd_guest_fail(g, "connection", err) : 0;
}

static int nbd_guest_connect_uri(struct nbd_guest *g, const char *uri, struct verr *err)
{
  verr_redact_url(uri, g->where, sizeof g->where);
  if (uri[0] == '/' && !is_uri(uri)) {
    if (nbd_connect_unix(g->h, uri) == -1)
      return nbd_guest_fail(g, "connection", err);
    return 0;
  }
  if (!is_uri(uri))
    return verr_set(err, VERR_USAGE, "\"%s\" is not an NBD URI: use nbd://HOST[:PORT]/EXPORT, "
                    "nbds://..., nbd+unix:///EXPORT?socket=PATH or a socket path", g->where);
  if (nbd_supports_uri(g->h) == 1) {
    if (nbd_connect_uri(g->h, uri) == -1)
      return nbd_guest_fail(g, "connection", err);
    return 0;
  }
  return nbd_guest_connect_plain_uri(g, uri, err);
}

/* Whether execvp() would find `prog`: libnbd reports a missing program only as the
 * connection failing, which does not say what to install. */
static bool program_on_path(const char *prog)
{
  if (strchr(prog, '/') != NULL)
    return access(prog, X_OK) == 0;
  const char *path = getenv("PATH");
  if (path == NULL)
    path = "/usr/bin:/bin";
  while (*path) {
    size_t n = strcspn(path, ":");
    char candidate[PATH_MAX];
    if (n > 0 && snprintf(candidate, sizeof candidate, "%.*s/%s", (int)n, path, prog) <
                     (int)sizeof candidate &&
        access(candidate, X_OK) == 0)
      return true;
    path += n + (path[n] == ':');
  }
  return false;
}

/* qemu parses "proto:rest" in a file name as a protocol; "./" or "/" in front keeps a
 * name with a colon a file name. */
static char *qemu_safe_path(const char *file)
{
  size_t n = strlen(file) + 3;
  char *p = malloc(n);
  if (p != NULL)
    snprintf(p, n, "%s%s", file[0] == '/' ? "" : "./", file);
  return p;
}

static int nbd_guest_connect_file(struct nbd_guest *g, const struct nbd_guest_opts *opts,
                                  struct verr *err)
{
  snprintf(g->where, sizeof g->where, "%s (%s, via qemu-nbd)", opts->file,
           opts->format ? opts->format : "?");
  if (opts->format == NULL || opts->format[0] == '\0')
    return verr_set(err, VERR_USAGE, "serving %s with qemu-nbd needs its format (raw, qcow2, "
                    "vmdk, vpc, vhdx, vdi): qemu's probing is unsafe for raw images", opts->file);
  struct stat st;
  if (stat(opts->file, &st) == -1)
    return verr_sys(err, VERR_IO, errno, "cannot open %s", opts->file);
  CLEANUP_FREE char *path = qemu_safe_path(opts->file);
  if (path == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  /* --persistent: the server must not exit between libnbd's probes; libnbd kills it
   * when the handle closes. --shared=1: we are the only client. */
  char *argv[] = {
    (char *)(opts->qemu_nbd ? opts->qemu_nbd : "qemu-nbd"),
    "-f", (char *)opts->format, "--read-only", "--persistent", "--shared=1", path, NULL,
  };
  if (!program_on_path(argv[0]))
    return verr_set(err, VERR_USAGE, "%s: %s is not installed or not on PATH: "
                    "install it (Debian: apt-get install qemu-utils; vimport's image carries "
                    "it), or convert the image to qcow2 or raw first", g->where, argv[0]);
  if (nbd_connect_systemd_socket_activation(g->h, argv) == -1)
    return nbd_guest_fail(g, "start of qemu-nbd and connection", err);
  return 0;
}

static int nbd_guest_handshake(struct nbd_guest *g, size_t request_size, unsigned queue_depth,
                               struct verr *err)
{
  int64_t size = nbd_get_size(g->h);
  if (size < 0)
    return nbd_guest_fail(g, "size query", err);
  g->size = (uint64_t)size;
  g->block_status = nbd_can_meta_context(g->h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
  g->request_size = request_size ? request_size : NBD_GUEST_DEFAULT_REQUEST_SIZE;
  int64_t max = nbd_get_block_size(g->h, LIBNBD_SIZE_MAXIMUM);
  if (max > 0 && (uint64_t)max < g->request_size)
    g->request_size = (size_t)max;
  if (g->request_size > 32u << 20) /* the NBD protocol's practical limit */
    g->request_size = 32u << 20;
  g->queue_depth = queue_depth == 0 ? 1 : queue_depth > NBD_GUEST_MAX_QUEUE_DEPTH
                                                      ? NBD_GUEST_MAX_QUEUE_DEPTH : queue_depth;
  g->buf = malloc(g->request_size * g->queue_depth);
  if (g->buf == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory for %u NBD read buffers of %zu bytes",
                    g->queue_depth, g->request_size);
  return 0;
}

int nbd_guest_open(const struct nbd_guest_opts *opts, struct nbd_guest **out,
                   struct verr *err)
{
  if ((opts->uri == NULL) == (opts->file == NULL))
    return verr_set(err, VERR_USAGE, "an NBD source needs exactly one of a URI or a file");
  struct nbd_guest *g = calloc(1, sizeof *g);
  if (g == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  g->h = nbd_create();
  int r = g->h ? 0 : verr_set(err, VERR_NOMEM, "cannot create an NBD handle: %s",
                              nbd_get_error());
  if (r == 0 && nbd_add_meta_context(g->h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1)
    r = nbd_guest_fail(g, "setup", err);
  if (r == 0)
    r = opts->uri ? nbd_guest_connect_uri(g, opts->uri, err)
                  : nbd_guest_connect_file(g, opts, err);
  if (r == 0)
    r = nbd_guest_handshake(g, opts->request_size, opts->queue_depth, err);
  if (r < 0) {
    nbd_guest_free(g);
    return -1;
  }
  *out = g;
  return 0;
}

uint64_t nbd_guest_size(const struct nbd_guest *g) { return g->size; }
int nbd_guest_has_block_status(const struct nbd_guest *g) { return g->block_status; }
uint64_t nbd_guest_bytes_read(const struct nbd_guest *g) { return g->bytes_read; }
uint64_t nbd_guest_zero_bytes(const struct nbd_guest *g) { return g->zero_bytes; }

void nbd_guest_free(struct nbd_guest *g)
{
  if (g == NULL)
    return;
  if (g->h != NULL)
    nbd_close(g->h); /* also kills and reaps a qemu-nbd child */
  free(g->buf);
  free(g);
}

/* ---- emitting --------------------------------------------------------------------- */

static int flush_zero(struct nbd_guest *g, struct vsink *out, struct verr *err)
{
  if (g->zero_len == 0)
    return 0;
  uint64_t start = g->zero_start, len = g->zero_len;
  g->zero_len = 0;
  g->zero_bytes += len;
  return vsink_zero(out, start, len, err);
}

static int emit_zero(struct nbd_guest *g, struct vsink *out, uint64_t off, uint64_t len,
                     struct verr *err)
{
  if (g->zero_len > 0 && g->zero_start + g->zero_len == off) {
    g->zero_len += len;
    return 0;
  }
  if (flush_zero(g, out, err) < 0)
    return -1;
  g->zero_start = off;
  g->zero_len = len;
  return 0;
}

/* Emit a buffer just read: runs of all-zero NBD_GUEST_ZERO_GRAIN pieces become zero
 * extents, so a server without block status (or one that reports big allocated blocks,
 * like vhdx's 32 MiB) still leaves holes in the target. */
static int emit_buffer(struct nbd_guest *g, struct vsink *out, uint64_t off,
                       const unsigned char *buf, size_t len, struct verr *err)
{
  size_t pos = 0;
  while (pos < len) {
    size_t n = len - pos < NBD_GUEST_ZERO_GRAIN ? len - pos : NBD_GUEST_ZERO_GRAIN;
    bool zero = mem_is_zero(buf + pos, n);
    size_t end = pos + n;
    while (end < len) { /* extend the run while pieces stay alike */
      size_t m = len - end < NBD_GUEST_ZERO_GRAIN ? len - end : NBD_GUEST_ZERO_GRAIN;
      if (mem_is_zero(buf + end, m) != zero)
        break;
      end += m;
    }
    if (zero && emit_zero(g, out, off + pos, end - pos, err) < 0)
      return -1;
    if (!zero && (flush_zero(g, out, err) < 0 ||
                  vsink_data(out, off + pos, buf + pos, end - pos, err) < 0))
      return -1;
    pos = end;
  }
  return 0;
}

/* One read in flight: slot i of g->buf. */
struct nbd_read {
  uint64_t off;
  size_t len;
  int64_t cookie;
};

/* Wait until the read `r` completed (libnbd's poll loop; every wait is the connection's,
 * which libnbd bounds only by the server: an NBD server that never answers hangs here,
 * as nbd_pread would). */
static int wait_read(struct nbd_guest *g, const struct nbd_read *r, struct verr *err)
{
  int done;
  while ((done = nbd_aio_command_completed(g->h, r->cookie)) == 0)
    if (nbd_poll(g->h, -1) == -1)
      return nbd_guest_fail(g, "read", err);
  return done == 1 ? 0 : nbd_guest_fail(g, "read", err);
}

/* Read [off, off+len) in requests of at most request_size bytes, up to queue_depth of
 * them in flight (blksum's -q), and emit them in order. On failure reads may still be in
 * flight into g->buf: nbd_guest_free() closes the handle before freeing it. */
static int read_data(struct nbd_guest *g, struct vsink *out, uint64_t off, uint64_t len,
                     struct verr *err)
{
  struct nbd_read q[NBD_GUEST_MAX_QUEUE_DEPTH];
  unsigned head = 0, inflight = 0, depth = g->queue_depth;
  uint64_t next = off, end = off + len;
  while (inflight > 0 || next < end) {
    while (inflight < depth && next < end) {
      unsigned i = (head + inflight) % depth;
      size_t n = end - next < g->request_size ? (size_t)(end - next) : g->request_size;
      q[i] = (struct nbd_read){ .off = next, .len = n };
      q[i].cookie = nbd_aio_pread(g->h, g->buf + (size_t)i * g->request_size, n, next,
                                  NBD_NULL_COMPLETION, 0);
      if (q[i].cookie == -1)
        return nbd_guest_fail(g, "read", err);
      next += n;
      inflight++;
    }
    if (wait_read(g, &q[head], err) < 0)
      return -1;
    g->bytes_read += q[head].len;
    if (emit_buffer(g, out, q[head].off, g->buf + (size_t)head * g->request_size, q[head].len,
                    err) < 0)
      return -1;
    head = (head + 1) % depth;
    inflight--;
  }
  return 0;
}

/* ---- block status ----------------------------------------------------------------- */

static int status_cb(void *opaque, const char *metacontext, uint64_t offset,
                     uint32_t *entries, size_t nr_entries, int *error)
{
  struct nbd_guest *g = opaque;
  (void)offset;
  (void)error;
  if (strcmp(metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;
  for (size_t i = 0; i + 1 < nr_entries && g->n_status < NBD_GUEST_MAX_STATUS; i += 2)
    g->status[g->n_status++] = (struct nbd_extent){ entries[i], entries[i + 1] };
  return 0;
}

/* Fill g->status for the span starting at `off`. */
static int query_status(struct nbd_guest *g, uint64_t off, struct verr *err)
{
  uint64_t span = g->size - off < NBD_GUEST_STATUS_SPAN ? g->size - off : NBD_GUEST_STATUS_SPAN;
  g->n_status = 0;
  nbd_extent_callback cb = { .callback = status_cb, .user_data = g };
  if (nbd_block_status(g->h, span, off, cb, 0) == -1)
    return nbd_guest_fail(g, "block status", err);
  if (g->n_status == 0)
    return verr_set(err, VERR_SOURCE, "the NBD server of %s answered block status at byte "
                    "%llu with no extent: the server is broken; try another one",
                    g->where, (unsigned long long)off);
  return 0;
}

/* Emit the extents of g->status from `*off`, which advances past them. */
static int walk_status(struct nbd_guest *g, struct vsink *out, uint64_t *off, struct verr *err)
{
  for (size_t i = 0; i < g->n_status && *off < g->size; i++) {
    uint64_t len = g->status[i].length;
    if (len == 0)
      return verr_set(err, VERR_SOURCE, "the NBD server of %s answered block status with an "
                      "empty extent: the server is broken; try another one", g->where);
    if (len > g->size - *off) /* the last extent may run past the request */
      len = g->size - *off;
    int r = g->status[i].flags & LIBNBD_STATE_ZERO ? emit_zero(g, out, *off, len, err)
                                                   : read_data(g, out, *off, len, err);
    if (r < 0)
      return -1;
    *off += len;
  }
  return 0;
}

int nbd_guest_walk(struct nbd_guest *g, struct vsink *out, struct verr *err)
{
  uint64_t off = 0;
  g->bytes_read = g->zero_bytes = 0;
  g->zero_len = 0;
  if (!g->block_status) {
    if (read_data(g, out, 0, g->size, err) < 0)
      return -1;
    return flush_zero(g, out, err);
  }
  while (off < g->size) {
    if (query_status(g, off, err) < 0 || walk_status(g, out, &off, err) < 0)
      return -1;
  }
  return flush_zero(g, out, err);
}

/* ---- one call --------------------------------------------------------------------- */

static int nbd_guest_read_opts(const struct nbd_guest_opts *opts, struct vsink *out,
                               uint64_t *size, struct verr *err)
{
  struct nbd_guest *g = NULL;
  if (nbd_guest_open(opts, &g, err) < 0)
    return -1;
  if (size != NULL)
    *size = g->size;
  int r = nbd_guest_walk(g, out, err);
  nbd_guest_free(g);
  return r;
}

int nbd_guest_read(const char *uri_or_socket, struct vsink *out, uint64_t *size,
                   struct verr *err)
{
  struct nbd_guest_opts opts = { .uri = uri_or_socket };
  return nbd_guest_read_opts(&opts, out, size, err);
}

int nbd_guest_read_file(const char *file, const char *format, struct vsink *out,
                        uint64_t *size, struct verr *err)
{
  struct nbd_guest_opts opts = { .file = file, .format = format };
  return nbd_guest_read_opts(&opts, out, size, err);
}
