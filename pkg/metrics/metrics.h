/* vimport metrics: CDI's import progress contract.
 *
 * CDI's controller scrapes https://<importer pod>:8443/metrics and reads
 *
 *   kubevirt_cdi_import_progress_total{ownerUID="<OWNER_UID>"} <percent>
 *
 * (name, help text, type and label as in CDI's pkg/monitoring/metrics/cdi-importer).
 * metrics_start() makes a throwaway self-signed certificate in memory (EC P-256, CN
 * vimport, valid one day; nothing is written to disk) and serves that one metric over
 * HTTPS from one thread, one connection at a time. The pipeline only touches two atomic
 * counters, so a slow or stuck scraper can never block or slow the import: each
 * connection gets `client_timeout_ms` in total (handshake, request, response), then it
 * is dropped.
 *
 * Percent is done/total*100 truncated to two decimals ("42.17"), capped at 100.00, and
 * never decreases (CDI exposes it as a counter). With an unknown total it reads 0.00
 * until metrics_finish().
 *
 *   struct metrics *m;
 *   struct metrics_opts o = { .owner_uid = getenv("OWNER_UID"), .port = port };
 *   if (metrics_start(&o, &m, &err) < 0) ...
 *   metrics_set_total(m, content_length);
 *   metrics_progress_reader_new(source, m, &source, &err);   // counts every byte read
 *   ... import ...
 *   metrics_finish(m);
 *   metrics_stop(m);
 *
 * The progress counter (progress.c) is the one place that counts the source bytes read:
 * a vreader filter with observers. The metric is one observer; a terminal progress line
 * (pkg/pipeline) is another, so both show the same count and the hot path pays for one
 * filter: a plain add and one call per observer per read, no locks.
 */
#ifndef VIMPORT_METRICS_METRICS_H
#define VIMPORT_METRICS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"

#define METRICS_DEFAULT_PORT 8443
#define METRICS_DEFAULT_CLIENT_TIMEOUT_MS 5000

struct metrics;

struct metrics_opts {
  const char *owner_uid;      /* label value; NULL means "" (escaped, any bytes allowed) */
  unsigned port;              /* 0 means METRICS_DEFAULT_PORT (8443) */
  const char *bind_addr;      /* numeric IPv4 or IPv6; NULL means 0.0.0.0 */
  unsigned client_timeout_ms; /* per connection, in total; 0 means 5000 */
};

/* Create the certificate, bind and listen (so the port is open when this returns), and
 * start the server thread. Logs one line naming the address and port. On success *out
 * owns everything; release it with metrics_stop(). On failure *out is NULL and `err`
 * says why (VERR_USAGE for a bad address or a port in use). */
int metrics_start(const struct metrics_opts *opts, struct metrics **out, struct verr *err);

/* The port actually listened on (for logs and tests). 0 for NULL. */
unsigned metrics_port(const struct metrics *m);

/* The source's size in bytes; 0 means unknown. Safe from any thread; NULL is a no-op. */
void metrics_set_total(struct metrics *m, uint64_t total_bytes);

/* Count `bytes` more of the source as read. Atomic and lock-free, meant for the
 * pipeline thread; NULL is a no-op. */
void metrics_add_done(struct metrics *m, uint64_t bytes);

/* The whole source was read: report 100.00 from now on, even with an unknown total.
 * NULL is a no-op. */
void metrics_finish(struct metrics *m);

/* The value the server would expose now, in hundredths of a percent (0..10000). */
unsigned metrics_progress_hundredths(struct metrics *m);

/* ---- the progress counter ---- */

/* One consumer of the count of source bytes read. */
struct progress_observer {
  /* After each read or view of the filter that returned bytes, in the reading thread:
   * `added` bytes more, `done` in all. Runs once per read: keep it cheap and lock-free. */
  void (*on_count)(void *opaque, uint64_t added, uint64_t done);
  /* When the filter closes, or when progress_counter_new() fails; may be NULL. An
   * observer that owns `opaque` frees it here. */
  void (*on_close)(void *opaque);
  void *opaque;
};

#define PROGRESS_MAX_OBSERVERS 4

/* A vreader filter that passes `lower`'s bytes through unchanged and tells each of the
 * `n` `observers` (copied; at most PROGRESS_MAX_OBSERVERS) how many were read. Owns
 * `lower` and the observers from the call on: they are closed with the filter, and also
 * when this fails (VERR_NOMEM). */
int progress_counter_new(struct vreader *lower, const struct progress_observer *observers,
                         size_t n, struct vreader **out, struct verr *err);

/* The metric as an observer: each count goes to metrics_add_done(m, added). `m` is not
 * owned and must outlive the filter. */
struct progress_observer metrics_progress_observer(struct metrics *m);

/* progress_counter_new() with the metric as the one observer; NULL `m` makes a plain
 * pass-through. */
int metrics_progress_reader_new(struct vreader *lower, struct metrics *m, struct vreader **out,
                                struct verr *err);

/* Stop the server (promptly, even with a client connected), join its thread, free
 * everything. NULL is fine. */
void metrics_stop(struct metrics *m);

/* The text of a terminal progress line: "STAGE: DONE of TOTAL (P%), RATE/s, ETA H:MM:SS"
 * (without "of TOTAL", the share and ETA when `total` is 0: unknown), `done` bytes in
 * `seconds` since the stage began; the rate is "--" until something was done. Always NUL-terminates `buf` (truncating). Shared by
 * `vimport import` (pkg/pipeline/progress.c) and `vimport sum`. */
void progress_text(char *buf, size_t size, const char *stage, uint64_t done, uint64_t total,
                   double seconds);

#endif
