/* nodepull: cdi-containerimage-server, the server side of a node pull (nodepull.h).
 *
 * It runs inside the containerDisk, which has no libc and nothing else of ours: the
 * binary is static and this file needs only the kernel. One accept thread hands each
 * connection to a detached thread of its own (at most NODEPULL_MAX_CONNECTIONS); the
 * caller's thread polls for the done file. Bodies go out with sendfile, so a disk of
 * any size costs no memory.
 */
#include "nodepull/nodepull.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"

#define STAGE "containerimage-server"

/* What every connection thread shares; owned by nodepull_serve's frame. */
struct server {
  const struct nodepull_server_opts *opts;
  char image_name[256];
  int listen_fd;
  atomic_bool stopping;
  pthread_mutex_t lock;
  pthread_cond_t idle; /* signalled when `active` drops */
  unsigned active;     /* connection threads running, under lock */
};

struct connection {
  struct server *srv;
  int fd;
};

/* ---- the image directory ---- */

static bool is_dir(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* CDI's isBootcImage: such an image holds an OS tree, not a disk. */
static int refuse_bootc(const char *root, struct verr *err)
{
  static const char *const dirs[] = { "sysroot", "ostree" };
  for (size_t i = 0; i < 2; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, dirs[i]);
    if (is_dir(path))
      return verr_set(err, VERR_USAGE, "bootc image detected: this image contains an "
                      "ostree-based bootable OS and cannot be imported as a regular container "
                      "disk; bootc-to-disk conversion is not yet implemented (found %s)", path);
  }
  return 0;
}

static int print_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
  (void)st, (void)type, (void)ftw;
  printf("%s\n", path);
  return 0;
}

int nodepull_image_name(const char *dir, char *name, size_t name_size, struct verr *err)
{
  DIR *d = opendir(dir);
  if (d == NULL)
    return verr_sys(err, VERR_USAGE, errno, "Failed get image filename in %s: cannot open it", dir);
  unsigned n = 0;
  bool found_dir = false;
  struct dirent *e;
  name[0] = '\0';
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    struct stat st;
    bool dir_entry = e->d_type == DT_DIR ||
                     (e->d_type == DT_UNKNOWN && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                      S_ISDIR(st.st_mode));
    found_dir |= dir_entry;
    if (n++ == 0)
      snprintf(name, name_size, "%s", e->d_name);
  }
  closedir(d);
  if (n != 1 || found_dir)
    return verr_set(err, VERR_USAGE, "Failed get image filename in %s: Invalid container image: "
                    "it holds %u entries%s; a containerDisk holds exactly one disk file there",
                    dir, n, found_dir ? ", a directory among them" : "");
  if (strlen(name) + 1 >= name_size)
    return verr_set(err, VERR_USAGE, "Failed get image filename in %s: the name of its file is "
                    "longer than %zu bytes", dir, name_size - 2);
  return 0;
}

/* ---- answers ---- */

static void http_date(time_t t, char *out, size_t size)
{
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static int send_all(int fd, const char *buf, size_t len)
{
  while (len > 0) {
    ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    buf += w, len -= (size_t)w;
  }
  return 0;
}

/* A status line, Date, the extra fields (each ending CRLF) and Content-Length. */
static int send_head(int fd, const char *status, const char *fields, uint64_t length,
                     bool keep_alive)
{
  char date[64], head[1024];
  http_date(time(NULL), date, sizeof date);
  int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nDate: %s\r\n%sContent-Length: %" PRIu64
                   "\r\n%s\r\n", status, date, fields, length, keep_alive ? "" : "Connection: close\r\n");
  if (n < 0 || (size_t)n >= sizeof head)
    return -1;
  return send_all(fd, head, (size_t)n);
}

static int send_text(int fd, const char *status, const char *body, const char *extra,
                     const struct nodepull_request *req)
{
  char fields[256];
  snprintf(fields, sizeof fields, "Content-Type: text/plain; charset=utf-8\r\n"
           "X-Content-Type-Options: nosniff\r\n%s", extra);
  if (send_head(fd, status, fields, strlen(body), req->keep_alive) < 0)
    return -1;
  return req->method == NODEPULL_HEAD ? 0 : send_all(fd, body, strlen(body));
}

static int send_file_range(int out, int in, uint64_t start, uint64_t length)
{
  off_t off = (off_t)start;
  while (length > 0) {
    size_t chunk = length > (1u << 30) ? (1u << 30) : (size_t)length;
    ssize_t w = sendfile(out, in, &off, chunk);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1; /* the client went away, or the file shrank: the length told it so */
    length -= (uint64_t)w;
  }
  return 0;
}

/* The disk file as Go's http.ServeContent serves it (nodepull.h). */
static int serve_disk(struct server *srv, int fd, const struct nodepull_request *req)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", srv->opts->image_dir, srv->image_name);
  CLEANUP_CLOSE int file = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (file < 0 || fstat(file, &st) < 0 || !S_ISREG(st.st_mode)) {
    vlog_error(STAGE, "cannot serve %s: %s", path, file < 0 ? strerror(errno) : "not a regular file");
    return send_text(fd, "500 Internal Server Error", "500 Internal Server Error\n", "", req);
  }
  uint64_t size = (uint64_t)st.st_size, start = 0, length = size;
  char modified[64], fields[512];
  http_date(st.st_mtime, modified, sizeof modified);
  enum nodepull_range r = NODEPULL_RANGE_WHOLE;
  if (req->if_range[0] == '\0' || strcmp(req->if_range, modified) == 0)
    r = nodepull_parse_range(req->range, size, &start, &length);
  if (r == NODEPULL_RANGE_UNSATISFIABLE) {
    snprintf(fields, sizeof fields, "Content-Range: bytes */%" PRIu64 "\r\n", size);
    return send_text(fd, "416 Requested Range Not Satisfiable", "invalid range: failed to overlap\n",
                     fields, req);
  }
  int n = snprintf(fields, sizeof fields, "Accept-Ranges: bytes\r\nContent-Type: "
                   "application/octet-stream\r\nLast-Modified: %s\r\n", modified);
  if (r == NODEPULL_RANGE_PART)
    snprintf(fields + n, sizeof fields - (size_t)n, "Content-Range: bytes %" PRIu64 "-%" PRIu64
             "/%" PRIu64 "\r\n", start, start + length - 1, size);
  if (send_head(fd, r == NODEPULL_RANGE_PART ? "206 Partial Content" : "200 OK", fields, length,
                req->keep_alive) < 0)
    return -1;
  return req->method == NODEPULL_HEAD ? 0 : send_file_range(fd, file, start, length);
}

/* Append s as a JSON string: quotes, backslashes and control bytes escaped; other bytes
 * as they are (Go's decoder reads invalid UTF-8 as U+FFFD). */
static size_t json_string(char *out, const char *s)
{
  size_t o = 0;
  out[o++] = '"';
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      out[o++] = '\\', out[o++] = (char)c;
    else if (c < 0x20)
      o += (size_t)sprintf(out + o, "\\u%04x", c);
    else
      out[o++] = (char)c;
  }
  out[o++] = '"';
  return o;
}

/* CDI's /info: common.ServerInfo{Env: os.Environ()} as Go's json encoder writes it. */
static int serve_info(struct server *srv, int fd, const struct nodepull_request *req)
{
  size_t cap = 16;
  for (char *const *e = srv->opts->envp; e && *e; e++)
    cap += strlen(*e) * 6 + 3;
  CLEANUP_FREE char *body = malloc(cap);
  if (body == NULL)
    return send_text(fd, "500 Internal Server Error", "out of memory\n", "", req);
  size_t o = 0;
  bool any = srv->opts->envp && *srv->opts->envp;
  o += (size_t)sprintf(body, any ? "{\"env\":[" : "{");
  for (char *const *e = srv->opts->envp; any && *e; e++) {
    if (e != srv->opts->envp)
      body[o++] = ',';
    o += json_string(body + o, *e);
  }
  o += (size_t)sprintf(body + o, any ? "]}\n" : "}\n");
  if (send_head(fd, "200 OK", "Content-Type: application/json\r\n", o, req->keep_alive) < 0)
    return -1;
  return req->method == NODEPULL_HEAD ? 0 : send_all(fd, body, o);
}

static int answer(struct server *srv, int fd, const struct nodepull_request *req)
{
  char disk_path[sizeof srv->image_name + 1];
  snprintf(disk_path, sizeof disk_path, "/%s", srv->image_name);
  if (req->method == NODEPULL_OTHER)
    return send_text(fd, "405 Method Not Allowed", "405 method not allowed\n",
                     "Allow: GET, HEAD\r\n", req);
  if (strcmp(req->path, "/info") == 0)
    return serve_info(srv, fd, req);
  if (strcmp(req->path, disk_path) == 0)
    return serve_disk(srv, fd, req);
  return send_text(fd, "404 Not Found", "404 page not found\n", "", req);
}

/* ---- connections ---- */

static uint64_t now_ms(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Read one request head into buf, within NODEPULL_HEADER_TIMEOUT_MS in all (a client
 * trickling bytes gets no more). Returns its length, 0 when the connection ended, idled
 * out or was too slow (or the server stops), -1 for a head that is too large. */
static long read_head(struct server *srv, int fd, char *buf, size_t size, size_t *have)
{
  uint64_t deadline = now_ms() + NODEPULL_HEADER_TIMEOUT_MS;
  for (;;) {
    char *end = *have >= 4 ? memmem(buf, *have, "\r\n\r\n", 4) : NULL;
    if (end != NULL)
      return end + 4 - buf;
    if (*have == size)
      return -1;
    if (now_ms() >= deadline)
      return 0; /* Go's ReadHeaderTimeout: the connection is closed, no answer */
    if (atomic_load(&srv->stopping) && *have == 0)
      return 0;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int ready = poll(&p, 1, 200);
    if (ready < 0 && errno != EINTR)
      return 0;
    if (ready <= 0)
      continue;
    ssize_t r = recv(fd, buf + *have, size - *have, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return 0;
    *have += (size_t)r;
  }
}

static void serve_connection(struct server *srv, int fd)
{
  CLEANUP_FREE char *buf = malloc(NODEPULL_MAX_HEAD);
  size_t have = 0;
  while (buf != NULL) {
    long head = read_head(srv, fd, buf, NODEPULL_MAX_HEAD, &have);
    if (head <= 0) {
      if (head < 0) {
        static const char too_big[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                      "Content-Length: 0\r\nConnection: close\r\n\r\n";
        send_all(fd, too_big, sizeof too_big - 1);
      }
      return;
    }
    struct nodepull_request req;
    if (nodepull_parse_request(buf, (size_t)head, &req) < 0) {
      static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                "Connection: close\r\n\r\n";
      send_all(fd, bad, sizeof bad - 1);
      return;
    }
    bool again = req.keep_alive && !req.has_body && !atomic_load(&srv->stopping);
    req.keep_alive = again;
    if (answer(srv, fd, &req) < 0 || !again)
      return;
    memmove(buf, buf + head, have - (size_t)head);
    have -= (size_t)head;
  }
}

static void *connection_thread(void *arg)
{
  struct connection *c = arg;
  struct server *srv = c->srv;
  serve_connection(srv, c->fd);
  close(c->fd);
  free(c);
  pthread_mutex_lock(&srv->lock);
  srv->active--;
  pthread_cond_broadcast(&srv->idle);
  pthread_mutex_unlock(&srv->lock);
  return NULL;
}

/* Start a thread for the connection, or close it when too many are open. */
static void hand_off(struct server *srv, int fd)
{
  struct connection *c = malloc(sizeof *c);
  pthread_mutex_lock(&srv->lock);
  bool room = c != NULL && srv->active < NODEPULL_MAX_CONNECTIONS;
  if (room)
    srv->active++;
  pthread_mutex_unlock(&srv->lock);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (room) {
    *c = (struct connection){ .srv = srv, .fd = fd };
    if (pthread_create(&t, &attr, connection_thread, c) == 0) {
      pthread_attr_destroy(&attr);
      return;
    }
    pthread_mutex_lock(&srv->lock);
    srv->active--;
    pthread_mutex_unlock(&srv->lock);
  }
  pthread_attr_destroy(&attr);
  if (room)
    vlog_warn(STAGE, "refused a connection: no thread could be started for it");
  else
    vlog_warn(STAGE, "refused a connection: %u are being served already (or out of memory)",
              NODEPULL_MAX_CONNECTIONS);
  free(c);
  close(fd);
}

static void *accept_thread(void *arg)
{
  struct server *srv = arg;
  while (!atomic_load(&srv->stopping)) {
    struct pollfd p = { .fd = srv->listen_fd, .events = POLLIN };
    if (poll(&p, 1, 200) <= 0)
      continue;
    int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
      hand_off(srv, fd);
  }
  return NULL;
}

/* ---- the server's life ---- */

static int listen_loopback(unsigned port, int *out, struct verr *err)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return verr_sys(err, VERR_IO, errno, "cannot make a socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) {
    int e = errno;
    close(fd);
    return verr_sys(err, VERR_IO, e, "Failed listening on localhost:%u err", port);
  }
  *out = fd;
  return 0;
}

static int write_ready(const char *path, const char *name, struct verr *err)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  size_t len = strlen(name);
  if (fd < 0 || write(fd, name, len) != (ssize_t)len || close(fd) < 0)
    return verr_sys(err, VERR_IO, errno, "Failed creating \"ready\" file %s", path);
  return 0;
}

static void wait_for_done(const struct nodepull_server_opts *o)
{
  struct stat st;
  while (stat(o->done_file, &st) != 0)
    usleep((o->poll_ms ? o->poll_ms : 1000) * 1000u);
}

/* Stop accepting, then give the connections in flight a bounded time to finish.
 * Returns whether none is left. */
static bool stop(struct server *srv, pthread_t acceptor)
{
  atomic_store(&srv->stopping, true);
  pthread_join(acceptor, NULL);
  close(srv->listen_fd);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += NODEPULL_SHUTDOWN_SECONDS;
  pthread_mutex_lock(&srv->lock);
  while (srv->active > 0 && pthread_cond_timedwait(&srv->idle, &srv->lock, &until) == 0)
    ;
  if (srv->active > 0)
    vlog_warn(STAGE, "Shutdown: %u connections still open after %d s, leaving them",
              srv->active, NODEPULL_SHUTDOWN_SECONDS);
  bool none_left = srv->active == 0;
  pthread_mutex_unlock(&srv->lock);
  return none_left;
}

/* The listener and the ready file; on failure nothing is left open. */
static int start(struct server *srv, pthread_t *acceptor, struct verr *err)
{
  const struct nodepull_server_opts *o = srv->opts;
  if (nodepull_image_name(o->image_dir, srv->image_name, sizeof srv->image_name, err) < 0 ||
      listen_loopback(o->port, &srv->listen_fd, err) < 0)
    return -1;
  if (write_ready(o->ready_file, srv->image_name, err) < 0) {
    close(srv->listen_fd);
    return -1;
  }
  if (pthread_create(acceptor, NULL, accept_thread, srv) != 0) {
    close(srv->listen_fd);
    unlink(o->ready_file);
    return verr_set(err, VERR_IO, "cannot start the accept thread");
  }
  return 0;
}

int nodepull_serve(const struct nodepull_server_opts *opts, struct verr *err)
{
  if (opts->port == 0 || opts->port > 65535)
    return verr_set(err, VERR_USAGE, "port %u is not 1-65535", opts->port);
  if (refuse_bootc(opts->bootc_root ? opts->bootc_root : "", err) < 0)
    return -1;
  /* CDI prints the tree for the pod's log, whatever it holds; the check comes next */
  nftw(opts->image_dir, print_entry, 16, FTW_PHYS);
  fflush(stdout);
  /* On the heap: a connection thread still stuck in a send after the shutdown bound
   * keeps using it, so it is freed only when none is left. */
  struct server *srv = calloc(1, sizeof *srv);
  if (srv == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  *srv = (struct server){ .opts = opts, .lock = PTHREAD_MUTEX_INITIALIZER,
                          .idle = PTHREAD_COND_INITIALIZER };
  pthread_t acceptor;
  if (start(srv, &acceptor, err) < 0) {
    free(srv);
    return -1;
  }
  vlog_info(STAGE, "Serving %s on HTTP port: %u", opts->image_dir, opts->port);
  wait_for_done(opts);
  unlink(opts->done_file);
  if (stop(srv, acceptor))
    free(srv);
  unlink(opts->ready_file);
  vlog_info(STAGE, "Importer has completed");
  return 0;
}
