/* vimport metrics: what metrics.c, tls.c and server.c share. Not for other stages. */
#ifndef VIMPORT_METRICS_INTERNAL_H
#define VIMPORT_METRICS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "metrics.h"

/* An owner UID is a Kubernetes UID (36 characters); the bound keeps the response in one
 * fixed buffer. */
#define METRICS_OWNER_UID_MAX 512

struct metrics {
  /* written by the pipeline, read by the server thread */
  _Atomic uint64_t total;
  _Atomic uint64_t done;
  atomic_bool finished;
  atomic_uint high_water; /* the largest value exposed so far: the counter never falls */

  /* fixed at start, then only read by the server thread */
  char *label;            /* owner UID escaped for the text format */
  SSL_CTX *tls;
  int listen_fd;
  int stop_pipe[2];       /* a byte on [1] tells the server thread to return */
  unsigned port;
  int client_timeout_ms;
  pthread_t thread;
  bool thread_started;
};

/* tls.c: a server context holding a fresh self-signed EC P-256 certificate, CN vimport,
 * valid for one day. Nothing touches the disk. */
SSL_CTX *metrics_tls_new(struct verr *err);

/* metrics.c: the Prometheus text exposition into `buf`. Returns the length, or -1 if
 * `size` is too small (cannot happen with METRICS_BODY_MAX). */
#define METRICS_BODY_MAX (2 * METRICS_OWNER_UID_MAX + 512)
int metrics_render(struct metrics *m, char *buf, size_t size);

/* server.c: the server thread's body; returns when a byte arrives on stop_pipe[0]. */
void *metrics_serve(void *arg);

#endif
