/* vimport metrics: the progress counter, the one place that counts source bytes read.
 * See metrics.h for the contract; the CDI metric (metrics.c) and the terminal line
 * (pkg/pipeline/progress.c) are observers of its count. */
#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"

struct progress_counter {
  struct vreader *lower; /* owned */
  uint64_t done;         /* only the reading thread touches it */
  struct progress_observer observers[PROGRESS_MAX_OBSERVERS];
  size_t n_observers;
};

static ssize_t counter_count(struct progress_counter *c, ssize_t n)
{
  if (n > 0) {
    c->done += (uint64_t)n;
    for (size_t i = 0; i < c->n_observers; i++)
      c->observers[i].on_count(c->observers[i].opaque, (uint64_t)n, c->done);
  }
  return n;
}

static ssize_t counter_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct progress_counter *c = r->state;
  return counter_count(c, c->lower->ops->read(c->lower, buf, len, err));
}

static ssize_t counter_view(struct vreader *r, const void **view, size_t len, void *scratch,
                            struct verr *err)
{
  struct progress_counter *c = r->state;
  return counter_count(c, vreader_view(c->lower, view, len, scratch, err));
}

static void close_observers(const struct progress_observer *observers, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (observers[i].on_close != NULL)
      observers[i].on_close(observers[i].opaque);
}

static void counter_close(struct vreader *r)
{
  struct progress_counter *c = r->state;
  close_observers(c->observers, c->n_observers);
  vreader_close(c->lower);
  free(c);
  free(r);
}

static const struct vreader_ops counter_ops = {
  .name  = "progress",
  .read  = counter_read,
  .view  = counter_view,
  .close = counter_close,
};

int progress_counter_new(struct vreader *lower, const struct progress_observer *observers,
                         size_t n, struct vreader **out, struct verr *err)
{
  *out = NULL;
  struct vreader *r = NULL;
  struct progress_counter *c = NULL;
  if (n <= PROGRESS_MAX_OBSERVERS) {
    r = calloc(1, sizeof *r);
    c = calloc(1, sizeof *c);
  }
  if (r == NULL || c == NULL) {
    free(r);
    free(c);
    close_observers(observers, n);
    vreader_close(lower);
    return n > PROGRESS_MAX_OBSERVERS
               ? verr_set(err, VERR_INTERNAL, "%zu progress observers, more than the %d "
                          "the counter holds (a bug)", n, PROGRESS_MAX_OBSERVERS)
               : verr_set(err, VERR_NOMEM, "out of memory creating the progress reader");
  }
  c->lower = lower;
  for (size_t i = 0; i < n; i++)
    c->observers[i] = observers[i];
  c->n_observers = n;
  *r = (struct vreader){ .ops = &counter_ops, .state = c };
  *out = r;
  return 0;
}

/* Bytes as a person reads them: binary units, three significant digits. */
static void human_bytes(char *buf, size_t size, double bytes)
{
  static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
  size_t u = 0;
  while (bytes >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
    bytes /= 1024.0;
    u++;
  }
  snprintf(buf, size, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
}

void progress_text(char *buf, size_t size, const char *stage, uint64_t done, uint64_t total,
                   double seconds)
{
  char d[32], t[32], r[32];
  double rate = seconds > 0.05 ? (double)done / seconds : 0.0;
  human_bytes(d, sizeof d, (double)done);
  human_bytes(t, sizeof t, (double)total);
  if (rate > 0.0)
    human_bytes(r, sizeof r, rate);
  else /* too early to tell */
    snprintf(r, sizeof r, "-- B");
  if (total == 0) {
    snprintf(buf, size, "%s: %s, %s/s", stage, d, r);
    return;
  }
  double left = total > done ? (double)(total - done) : 0.0;
  char eta[32] = "--:--";
  if (rate > 0.0) {
    unsigned long s = (unsigned long)(left / rate + 0.5);
    snprintf(eta, sizeof eta, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
  }
  snprintf(buf, size, "%s: %s of %s (%.1f%%), %s/s, ETA %s", stage, d, t,
           100.0 * (double)done / (double)total, r, eta);
}
