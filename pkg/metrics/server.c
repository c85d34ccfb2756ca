/* vimport metrics: the HTTPS server thread.
 *
 * One connection at a time, every socket non-blocking, every wait a poll() on the client
 * socket and the stop pipe with the connection's deadline. So a scraper that connects and
 * says nothing costs at most client_timeout_ms, and metrics_stop() is prompt whatever a
 * client does. The thread reads only the counters' atomics: it cannot slow the pipeline.
 */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#define REQUEST_MAX 4096
#define ACCEPT_BACKOFF_MS 100

struct conn {
  SSL *ssl;
  int fd;
  int stop_fd;
  int64_t deadline_ms;
};

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until `fd` has `events` or `stop_fd` is readable or `timeout_ms` passes (-1: no
 * limit). True only when `fd` is ready and no stop was asked. */
static bool wait_fd(int fd, short events, int stop_fd, int timeout_ms)
{
  struct pollfd p[2] = { { .fd = fd, .events = events }, { .fd = stop_fd, .events = POLLIN } };
  int n;
  while ((n = poll(p, 2, timeout_ms)) < 0 && errno == EINTR)
    ;
  return n > 0 && p[1].revents == 0 && p[0].revents != 0;
}

/* After an SSL call returned `ret`: true if it only needs the socket to be ready again and
 * it became ready before the deadline. */
static bool conn_retry(struct conn *c, int ret)
{
  int e = SSL_get_error(c->ssl, ret);
  if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
    return false;
  int64_t left = c->deadline_ms - now_ms();
  return left > 0 && wait_fd(c->fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, c->stop_fd,
                             (int)left);
}

static int conn_handshake(struct conn *c)
{
  int r;
  while (ERR_clear_error(), (r = SSL_accept(c->ssl)) != 1)
    if (!conn_retry(c, r))
      return -1;
  return 0;
}

/* Read the request head (up to the blank line) so closing does not reset the connection
 * under unread bytes and lose the response. Returns its length, or -1. */
static int conn_read_head(struct conn *c, char *buf, size_t size)
{
  size_t used = 0;
  while (used < size - 1) {
    ERR_clear_error();
    int r = SSL_read(c->ssl, buf + used, (int)(size - 1 - used));
    if (r <= 0) {
      if (conn_retry(c, r))
        continue;
      return -1;
    }
    used += (size_t)r;
    buf[used] = '\0';
    if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
      return (int)used;
  }
  return (int)used; /* an oversized head: answer from its request line anyway */
}

static int conn_write(struct conn *c, const char *buf, size_t len)
{
  size_t sent = 0;
  while (sent < len) {
    ERR_clear_error();
    int r = SSL_write(c->ssl, buf + sent, (int)(len - sent));
    if (r <= 0) {
      if (conn_retry(c, r))
        continue;
      return -1;
    }
    sent += (size_t)r;
  }
  return 0;
}

/* "GET /metrics HTTP/1.1" (a query string is allowed); anything else gets 404. */
static bool is_metrics_request(const char *head)
{
  static const char want[] = "GET /metrics";
  size_t n = sizeof want - 1;
  return strncmp(head, want, n) == 0 && (head[n] == ' ' || head[n] == '?');
}

static int conn_respond(struct conn *c, struct metrics *m, const char *head)
{
  char body[METRICS_BODY_MAX];
  char response[METRICS_BODY_MAX + 256];
  const char *status = "404 Not Found";
  const char *type = "text/plain; charset=utf-8";
  int body_len;
  if (is_metrics_request(head)) {
    status = "200 OK";
    type = "text/plain; version=0.0.4; charset=utf-8";
    body_len = metrics_render(m, body, sizeof body);
  } else {
    body_len = snprintf(body, sizeof body, "not found: the only path is /metrics\n");
  }
  if (body_len < 0)
    return -1;
  int n = snprintf(response, sizeof response,
                   "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                   "Connection: close\r\n\r\n%s", status, type, body_len, body);
  if (n < 0 || (size_t)n >= sizeof response)
    return -1;
  return conn_write(c, response, (size_t)n);
}

/* Serve one connection, then close it. Failures only drop this client. */
static void serve_client(struct metrics *m, int fd)
{
  struct conn c = {
    .ssl = SSL_new(m->tls),
    .fd = fd,
    .stop_fd = m->stop_pipe[0],
    .deadline_ms = now_ms() + m->client_timeout_ms,
  };
  char head[REQUEST_MAX];
  if (c.ssl != NULL && SSL_set_fd(c.ssl, fd) == 1 && conn_handshake(&c) == 0 &&
      conn_read_head(&c, head, sizeof head) > 0 && conn_respond(&c, m, head) == 0) {
    ERR_clear_error();
    SSL_shutdown(c.ssl); /* one try at close_notify; the client already has Content-Length */
  }
  SSL_free(c.ssl);
  ERR_clear_error();
  close(fd);
}

void *metrics_serve(void *arg)
{
  struct metrics *m = arg;
  int stop_fd = m->stop_pipe[0];
  for (;;) {
    bool ready = wait_fd(m->listen_fd, POLLIN, stop_fd, -1);
    struct pollfd s = { .fd = stop_fd, .events = POLLIN };
    if (poll(&s, 1, 0) > 0)
      break;
    if (!ready)
      continue;
    int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
      serve_client(m, fd);
    else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
      wait_fd(-1, 0, stop_fd, ACCEPT_BACKOFF_MS); /* e.g. EMFILE: do not spin */
  }
  return NULL;
}
