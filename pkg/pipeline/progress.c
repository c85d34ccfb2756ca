/* A human progress line on a terminal: an observer of the progress counter
 * (pkg/metrics) right above the source that rewrites one stderr line, at most five times
 * a second, with the share of the source read. Only used when stderr is a terminal (cmd/
 * decides); logs stay one line each. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "metrics/metrics.h"
#include "pipeline.h"
#include "run.h"

struct progress_line {
  uint64_t total; /* 0: unknown */
  uint64_t done;
  struct timespec start; /* of the import: the rate and ETA are since then */
  struct timespec last;
};

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
  return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void progress_print(struct progress_line *p, bool final)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (!final && seconds_between(&p->last, &now) < 0.2)
    return;
  p->last = now;
  if (final) {
    fprintf(stderr, "\r\033[K");
    return;
  }
  char line[160];
  progress_text(line, sizeof line, "vimport: importing", p->done, p->total,
                seconds_between(&p->start, &now));
  fprintf(stderr, "\r\033[K%s", line);
}

static void progress_on_count(void *opaque, uint64_t added, uint64_t done)
{
  struct progress_line *p = opaque;
  (void)added;
  p->done = done;
  progress_print(p, false);
}

static void progress_on_close(void *opaque)
{
  progress_print(opaque, true);
  free(opaque);
}

int progress_line_new(uint64_t total, struct progress_observer *out, struct verr *err)
{
  struct progress_line *p = calloc(1, sizeof *p);
  if (p == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  p->total = total;
  clock_gettime(CLOCK_MONOTONIC, &p->start);
  *out = (struct progress_observer){
    .on_count = progress_on_count, .on_close = progress_on_close, .opaque = p,
  };
  return 0;
}

/* Called for every block the read-back hashes, in order, on the read-back's thread. */
static void readback_on_block(void *opaque, uint64_t index, const unsigned char *md,
                              unsigned md_len)
{
  struct readback_line *p = opaque;
  if (p->inner != NULL)
    p->inner(p->inner_opaque, index, md, md_len);
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (seconds_between(&p->last, &now) < 0.2)
    return;
  p->last = now;
  uint64_t done = (index + 1) * (uint64_t)p->block_size;
  char line[160];
  progress_text(line, sizeof line, "vimport: verifying", done < p->total ? done : p->total,
                p->total, seconds_between(&p->start, &now));
  fprintf(stderr, "\r\033[K%s", line);
}

void readback_line_attach(struct readback_line *p, struct blkhash_opts *opts, uint64_t total)
{
  *p = (struct readback_line){ .inner = opts->on_block, .inner_opaque = opts->on_block_opaque,
                               .total = total,
                               .block_size = opts->block_size ? opts->block_size
                                                              : BLKHASH_DEFAULT_BLOCK_SIZE };
  clock_gettime(CLOCK_MONOTONIC, &p->start);
  opts->on_block = readback_on_block;
  opts->on_block_opaque = p;
}

void readback_line_end(const struct readback_line *p)
{
  (void)p;
  fprintf(stderr, "\r\033[K");
}
