/* vimport source: the table of kinds, and the one reader every kind is read through.
 *
 * source_open() picks the first row whose match() takes the location; the reader it
 * returns dispatches to that row. What only some kinds can do is asked of the row
 * (NULL functions) or of the kind's state (can_pread), never by the kind's name.
 */
#include "source/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"

/* In match order: "-" and the network schemes before the file kind, which takes any
 * location without a scheme. */
static const struct source_kind *const source_kinds[] = {
  &source_http_kind,
  &source_s3_kind,
  &source_registry_kind,
  &source_gcs_kind,
  &source_stdin_kind,
  &source_file_kind,
};

struct source {
  const struct source_kind *kind;
  void *state; /* the kind's */
  struct source_info snapshot;
};

static ssize_t source_read(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  struct source *s = r->state;
  return s->kind->read(s->state, buf, len, err);
}

static ssize_t source_view(struct vreader *r, const void **view, size_t len, void *scratch,
                           struct verr *err)
{
  struct source *s = r->state;
  (void)scratch;
  return s->kind->view(s->state, view, len, err);
}

static void source_close(struct vreader *r)
{
  struct source *s = r->state;
  s->kind->close(s->state);
  free(s);
  free(r);
}

/* Two tables, so that a kind without view() gets vreader_view()'s full reads. */
static const struct vreader_ops source_ops = {
  .name  = "source",
  .read  = source_read,
  .close = source_close,
};

static const struct vreader_ops source_lending_ops = {
  .name  = "source",
  .read  = source_read,
  .view  = source_view,
  .close = source_close,
};

/* The row named `name` (source_opts.kind), or NULL. */
static const struct source_kind *source_kind_named(const char *name, struct verr *err)
{
  for (size_t i = 0; i < sizeof source_kinds / sizeof source_kinds[0]; i++)
    if (strcmp(source_kinds[i]->name, name) == 0)
      return source_kinds[i];
  return verr_set(err, VERR_INTERNAL, "no source kind named %.32s", name), NULL;
}

static const struct source_kind *source_kind_of(const char *url, const char *kind,
                                                struct verr *err)
{
  if (url == NULL || url[0] == '\0')
    return verr_set(err, VERR_USAGE, "no source given; give a URL, a path or \"-\" for "
                    "stdin"), NULL;
  if (kind != NULL)
    return source_kind_named(kind, err);
  for (size_t i = 0; i < sizeof source_kinds / sizeof source_kinds[0]; i++)
    if (source_kinds[i]->match != NULL && source_kinds[i]->match(url))
      return source_kinds[i];
  char redacted[2048];
  verr_redact_url(url, redacted, sizeof redacted);
  return verr_set(err, VERR_USAGE, "unsupported source %s: use http://, https://, "
                  "docker://, gs://, file:///path, a path, or \"-\" for stdin", redacted), NULL;
}

int source_open(const struct source_opts *opts, struct vreader **out, struct verr *err)
{
  const struct source_kind *kind = source_kind_of(opts->url, opts->kind, err);
  if (kind == NULL)
    return -1;
  CLEANUP_FREE struct source *s = calloc(1, sizeof *s);
  CLEANUP_FREE struct vreader *r = malloc(sizeof *r);
  if (s == NULL || r == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "opening the source");
  s->kind = kind;
  if (kind->open(opts, &s->state, err) < 0)
    return -1;
  *r = (struct vreader){ .ops = kind->view != NULL ? &source_lending_ops : &source_ops,
                         .state = TAKE_PTR(s) };
  *out = TAKE_PTR(r);
  return 0;
}

/* The source behind reader `r`, or NULL when `r` is not a source. */
static struct source *source_of(struct vreader *r)
{
  if (r == NULL || (r->ops != &source_ops && r->ops != &source_lending_ops))
    return NULL;
  return r->state;
}

const struct source_info *source_info(struct vreader *r)
{
  struct source *s = source_of(r);
  if (s == NULL)
    return NULL;
  s->kind->info(s->state, &s->snapshot);
  return &s->snapshot;
}

int source_can_pread(struct vreader *r)
{
  struct source *s = source_of(r);
  if (s == NULL || s->kind->pread == NULL)
    return 0;
  return s->kind->can_pread == NULL || s->kind->can_pread(s->state);
}

int source_pread(struct vreader *r, void *buf, size_t len, uint64_t offset, struct verr *err)
{
  struct source *s = source_of(r);
  if (s == NULL)
    return verr_set(err, VERR_INTERNAL, "source_pread on a %s reader, not a source",
                    r->ops->name);
  if (s->kind->pread == NULL)
    return verr_sys(err, VERR_SOURCE, ENOTSUP, "a %s source cannot be re-read at an "
                    "offset; give a file or an http(s) URL instead", s->kind->name);
  return s->kind->pread(s->state, buf, len, offset, err);
}

struct ring *source_digest_ring(struct vreader *r)
{
  struct source *s = source_of(r);
  struct ring *ring = s != NULL && s->kind->ring != NULL ? s->kind->ring(s->state) : NULL;
  return ring != NULL && ring->has_second ? ring : NULL;
}

struct vzeros source_zeros(struct vreader *r)
{
  struct source *s = source_of(r);
  struct ring *ring = s != NULL && s->kind->ring != NULL ? s->kind->ring(s->state) : NULL;
  return ring != NULL ? ring_zeros(ring) : (struct vzeros){ 0 };
}

const char *source_local_path(struct vreader *r)
{
  struct source *s = source_of(r);
  return s != NULL && s->kind->local_path != NULL ? s->kind->local_path(s->state) : NULL;
}

const struct source_image *source_image(struct vreader *r)
{
  struct source *s = source_of(r);
  return s != NULL && s->kind->image != NULL ? s->kind->image(s->state) : NULL;
}

void source_interrupt(struct vreader *r)
{
  struct source *s = source_of(r);
  struct ring *ring = s != NULL && s->kind->ring != NULL ? s->kind->ring(s->state) : NULL;
  if (ring != NULL)
    ring_cancel(ring);
}
