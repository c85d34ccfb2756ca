/* vimport metrics: see metrics.h for the contract.
 *
 * This file holds the lifecycle (start: certificate, socket, thread; stop), the two
 * counters the pipeline bumps, the text exposition the server thread sends, and the
 * metric as an observer of the progress counter (progress.c). tls.c makes the
 * certificate, server.c answers requests.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"

#define METRIC_NAME "kubevirt_cdi_import_progress_total"
#define LISTEN_BACKLOG 8

/* ---- counters ---- */

void metrics_set_total(struct metrics *m, uint64_t total_bytes)
{
  if (m != NULL)
    atomic_store_explicit(&m->total, total_bytes, memory_order_relaxed);
}

void metrics_add_done(struct metrics *m, uint64_t bytes)
{
  if (m != NULL)
    atomic_fetch_add_explicit(&m->done, bytes, memory_order_relaxed);
}

void metrics_finish(struct metrics *m)
{
  if (m != NULL)
    atomic_store(&m->finished, true);
}

unsigned metrics_port(const struct metrics *m)
{
  return m != NULL ? m->port : 0;
}

/* done/total in hundredths of a percent, truncated so 100.00 means every byte. */
static unsigned progress_now(struct metrics *m)
{
  if (atomic_load(&m->finished))
    return 10000;
  uint64_t total = atomic_load_explicit(&m->total, memory_order_relaxed);
  uint64_t done = atomic_load_explicit(&m->done, memory_order_relaxed);
  if (total == 0)
    return 0;
  if (done >= total)
    return 10000;
  double h = (double)done / (double)total * 10000.0;
  /* the cast truncates; rounding of huge values must not claim 100.00 before the last byte */
  return h >= 9999.0 ? 9999 : (unsigned)h;
}

unsigned metrics_progress_hundredths(struct metrics *m)
{
  unsigned now = progress_now(m);
  unsigned seen = atomic_load(&m->high_water);
  /* CDI exposes a counter: a total that grows later must not make it fall */
  while (now > seen && !atomic_compare_exchange_weak(&m->high_water, &seen, now))
    ;
  return now > seen ? now : seen;
}

int metrics_render(struct metrics *m, char *buf, size_t size)
{
  unsigned h = metrics_progress_hundredths(m);
  int n = snprintf(buf, size,
                   "# HELP " METRIC_NAME " The import progress in percentage\n"
                   "# TYPE " METRIC_NAME " counter\n"
                   METRIC_NAME "{ownerUID=\"%s\"} %u.%02u\n",
                   m->label, h / 100, h % 100);
  return n < 0 || (size_t)n >= size ? -1 : n;
}

/* ---- start and stop ---- */

/* Label values escape backslash, double quote and newline (Prometheus text format). */
static char *escape_label(const char *value)
{
  size_t len = strlen(value);
  char *out = malloc(2 * len + 1);
  if (out == NULL)
    return NULL;
  char *p = out;
  for (const char *s = value; *s; s++) {
    if (*s == '\\' || *s == '"' || *s == '\n')
      *p++ = '\\';
    *p++ = *s == '\n' ? 'n' : *s;
  }
  *p = '\0';
  return out;
}

static void metrics_free(struct metrics *m)
{
  if (m->listen_fd >= 0)
    close(m->listen_fd);
  for (int i = 0; i < 2; i++)
    if (m->stop_pipe[i] >= 0)
      close(m->stop_pipe[i]);
  SSL_CTX_free(m->tls);
  free(m->label);
  free(m);
}

static struct metrics *metrics_alloc(const struct metrics_opts *opts, struct verr *err)
{
  const char *uid = opts->owner_uid != NULL ? opts->owner_uid : "";
  if (strlen(uid) > METRICS_OWNER_UID_MAX) {
    verr_set(err, VERR_USAGE, "OWNER_UID is %zu bytes long, more than the %d a progress "
             "metric label may have: pass the owning object's Kubernetes UID",
             strlen(uid), METRICS_OWNER_UID_MAX);
    return NULL;
  }
  struct metrics *m = calloc(1, sizeof *m);
  if (m == NULL) {
    verr_set(err, VERR_NOMEM, "out of memory starting the progress metric endpoint");
    return NULL;
  }
  m->listen_fd = m->stop_pipe[0] = m->stop_pipe[1] = -1;
  m->client_timeout_ms = opts->client_timeout_ms != 0 ? (int)opts->client_timeout_ms
                                                      : METRICS_DEFAULT_CLIENT_TIMEOUT_MS;
  m->label = escape_label(uid);
  if (m->label == NULL) {
    metrics_free(m);
    verr_set(err, VERR_NOMEM, "out of memory starting the progress metric endpoint");
    return NULL;
  }
  return m;
}

static int bind_error(struct verr *err, int e, const char *addr, unsigned port)
{
  if (e == EADDRINUSE)
    return verr_set(err, VERR_USAGE, "cannot serve the progress metric on %s port %u: the "
                    "port is in use by another process; pick a free one with --metrics-port "
                    "or VIMPORT_METRICS_PORT (0 disables the metric)", addr, port);
  return verr_sys(err, VERR_USAGE, e, "cannot serve the progress metric on %s port %u (ports "
                  "below 1024 need root; 0 in --metrics-port or VIMPORT_METRICS_PORT disables "
                  "the metric)", addr, port);
}

static int listen_socket(const struct addrinfo *ai, const char *addr, unsigned port,
                         struct verr *err)
{
  CLEANUP_CLOSE int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return verr_sys(err, VERR_IO, errno, "cannot create the progress metric socket");
  int one = 1;
  /* a restarted importer must not wait for TIME_WAIT sockets of the last run */
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
    return bind_error(err, errno, addr, port);
  return TAKE_FD(fd);
}

static int metrics_listen(struct metrics *m, const char *addr, unsigned port, struct verr *err)
{
  char service[16];
  snprintf(service, sizeof service, "%u", port);
  struct addrinfo hints = {
    .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
    .ai_socktype = SOCK_STREAM,
  };
  struct addrinfo *ai = NULL;
  int rc = getaddrinfo(addr, service, &hints, &ai);
  if (rc != 0)
    return verr_set(err, VERR_USAGE, "cannot serve the progress metric on \"%s\" port %u: "
                    "%s; give a numeric IPv4 or IPv6 address", addr, port, gai_strerror(rc));
  m->listen_fd = listen_socket(ai, addr, port, err);
  freeaddrinfo(ai);
  if (m->listen_fd < 0)
    return -1;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(m->listen_fd, (struct sockaddr *)&ss, &len) < 0)
    return verr_sys(err, VERR_IO, errno, "cannot read back the progress metric port");
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return verr_set(err, VERR_INTERNAL, "cannot read back the progress metric port (a bug)");
  m->port = (unsigned)strtoul(serv, NULL, 10);
  return 0;
}

/* The server thread takes no signals: SIGINT/SIGTERM stay with the main thread's handler,
 * and a scraper that hangs up mid-response gives EPIPE instead of killing the import. */
static int metrics_spawn(struct metrics *m, struct verr *err)
{
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&m->thread, NULL, metrics_serve, m);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0)
    return verr_sys(err, VERR_NOMEM, rc, "cannot start the progress metric thread");
  m->thread_started = true;
  return 0;
}

int metrics_start(const struct metrics_opts *opts, struct metrics **out, struct verr *err)
{
  *out = NULL;
  const char *addr = opts->bind_addr != NULL ? opts->bind_addr : "0.0.0.0";
  unsigned port = opts->port != 0 ? opts->port : METRICS_DEFAULT_PORT;
  if (port > 65535)
    return verr_set(err, VERR_USAGE, "progress metric port %u is not a TCP port: use "
                    "1-65535, or 0 in --metrics-port/VIMPORT_METRICS_PORT to disable", port);
  struct metrics *m = metrics_alloc(opts, err);
  if (m == NULL)
    return -1;
  if (pipe2(m->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
    verr_sys(err, VERR_IO, errno, "cannot create the progress metric stop pipe");
  } else if ((m->tls = metrics_tls_new(err)) != NULL &&
             metrics_listen(m, addr, port, err) == 0 && metrics_spawn(m, err) == 0) {
    bool v6 = strchr(addr, ':') != NULL;
    vlog_info("metrics", "serving import progress on https://%s%s%s:%u/metrics "
              "(self-signed certificate, CN vimport)", v6 ? "[" : "", addr, v6 ? "]" : "",
              m->port);
    *out = m;
    return 0;
  }
  metrics_free(m);
  return -1;
}

void metrics_stop(struct metrics *m)
{
  if (m == NULL)
    return;
  if (m->thread_started) {
    /* the pipe is non-blocking and the thread drains nothing: one byte always fits */
    ssize_t n = write(m->stop_pipe[1], "x", 1);
    (void)n;
    pthread_join(m->thread, NULL);
  }
  metrics_free(m);
}

/* ---- the metric as an observer of the progress counter ---- */

static void metrics_on_count(void *opaque, uint64_t added, uint64_t done)
{
  (void)done;
  metrics_add_done(opaque, added);
}

struct progress_observer metrics_progress_observer(struct metrics *m)
{
  return (struct progress_observer){ .on_count = metrics_on_count, .opaque = m };
}

int metrics_progress_reader_new(struct vreader *lower, struct metrics *m, struct vreader **out,
                                struct verr *err)
{
  struct progress_observer o = metrics_progress_observer(m);
  return progress_counter_new(lower, &o, m != NULL ? 1 : 0, out, err);
}
