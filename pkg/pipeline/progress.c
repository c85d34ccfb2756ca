/* A human progress line on a terminal: a reader filter right above the source that
 * rewrites one stderr line, at most five times a second, with the share of the source
 * read. Only used when stderr is a terminal (cmd/ decides); logs stay one line each. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pipeline.h"

struct progress {
  struct vreader *lower;
  uint64_t total; /* 0: unknown */
  uint64_t done;
  struct timespec last;
};

static void progress_print(struct progress *p, bool final)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double since = (double)(now.tv_sec - p->last.tv_sec) + (double)(now.tv_nsec - p->last.tv_nsec) / 1e9;
  if (!final && since < 0.2)
    return;
  p->last = now;
  if (final)
    fprintf(stderr, "\r\033[K");
  else if (p->total > 0)
    fprintf(stderr, "\r\033[Kvimport: %5.1f%% of %.1f MiB read", 100.0 * (double)p->done / (double)p->total,
            (double)p->total / 1048576.0);
  else
    fprintf(stderr, "\r\033[Kvimport: %.1f MiB read", (double)p->done / 1048576.0);
}

static ssize_t progress_count(struct progress *p, ssize_t n)
{
  if (n > 0) {
    p->done += (uint64_t)n;
    progress_print(p, false);
  }
  return n;
}

static ssize_t progress_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct progress *p = r->state;
  return progress_count(p, p->lower->ops->read(p->lower, buf, len, err));
}

static ssize_t progress_view(struct vreader *r, const void **view, size_t len, void *scratch,
                             struct verr *err)
{
  struct progress *p = r->state;
  return progress_count(p, vreader_view(p->lower, view, len, scratch, err));
}

static void progress_close(struct vreader *r)
{
  struct progress *p = r->state;
  progress_print(p, true);
  vreader_close(p->lower);
  free(p);
  free(r);
}

static const struct vreader_ops progress_ops = {
  .name = "progress",
  .read = progress_read,
  .view = progress_view,
  .close = progress_close,
};

int progress_reader_new(struct vreader *lower, uint64_t total, struct vreader **out, struct verr *err)
{
  struct progress *p = calloc(1, sizeof *p);
  struct vreader *r = calloc(1, sizeof *r);
  if (p == NULL || r == NULL) {
    free(p);
    free(r);
    vreader_close(lower);
    return verr_set(err, VERR_NOMEM, "out of memory");
  }
  *p = (struct progress){ .lower = lower, .total = total };
  *r = (struct vreader){ .ops = &progress_ops, .state = p };
  *out = r;
  return 0;
}
