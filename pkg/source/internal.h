/* vimport source: declarations shared by the files of this stage only. Not part of
 * the stage's contract (that is source.h); nothing outside pkg/source includes this.
 *
 * Every kind of source is one table of functions, in the shape of nbdkit's plugins:
 * the kind's file keeps its state private and ends with its `struct source_kind` row;
 * source.c lists the rows and picks the one source_opts.kind names, else the first whose
 * match() takes the location. A new
 * kind is one new file and one row there. Functions a kind cannot do are NULL, and the
 * public can_* queries (source.h) answer from that, never from the kind's name.
 */
#ifndef VIMPORT_SOURCE_INTERNAL_H
#define VIMPORT_SOURCE_INTERNAL_H

#include "source/ring.h"
#include "source/source.h"

struct source_kind {
  const char *name; /* source_info()->kind */
  /* Whether this kind reads `url` (checked in table order); NULL: only when named. */
  int (*match)(const char *url);
  /* Open `opts->url`; *state is the kind's own, freed by close(). Returns 0, or -1
   * with `err` (and nothing to close). */
  int (*open)(const struct source_opts *opts, void **state, struct verr *err);
  /* The next bytes, in order: copied into `buf`... */
  ssize_t (*read)(void *state, void *buf, size_t len, struct verr *err);
  /* ...or lent in place until the next call (struct vreader_ops.view); NULL: no
   * lending, vreader_view() reads into the caller's scratch. */
  ssize_t (*view)(void *state, const void **view, size_t len, struct verr *err);
  /* Re-read exactly `len` bytes at `offset` (source_pread). NULL: never. */
  int (*pread)(void *state, void *buf, size_t len, uint64_t offset, struct verr *err);
  /* Whether pread can serve this very source (a file that can seek, ...). NULL: it can
   * whenever pread is set. */
  int (*can_pread)(void *state);
  /* What is known about the source and how far it went (source_info). */
  void (*info)(void *state, struct source_info *out);
  /* The ring that keeps the bytes (its zeros are lent, a digest may read it in place as
   * its second consumer), or NULL. NULL function: the kind has no ring. */
  struct ring *(*ring)(void *state);
  /* The local path qemu-nbd could open itself, or NULL. NULL function: none. */
  const char *(*local_path)(void *state);
  /* What an image source found (source_image). NULL function: not an image. */
  const struct source_image *(*image)(void *state);
  void (*close)(void *state);
};

/* The rows of source.c's table, one per kind's file. */
extern const struct source_kind source_file_kind;  /* file.c: a path or file:///path */
extern const struct source_kind source_stdin_kind; /* file.c: "-" */
extern const struct source_kind source_http_kind;  /* http.c: http:// and https:// */
extern const struct source_kind source_registry_kind; /* registry.c: docker:// */
extern const struct source_kind source_gcs_kind;      /* gcs.c: gs://, or by name */
extern const struct source_kind source_s3_kind;  /* s3.c: named "s3" (source_opts.kind) */

/* tls.c: the CA bundle for opts->proxy_ca_dir / ca_dir / ca_file, as one PEM blob for
 * CURLOPT_CAINFO_BLOB: libcurl's default bundle (so custom CAs add to the system trust,
 * as CDI does) followed by the PEM files of the proxy directory (what it cannot read is
 * skipped) and of the others. *blob is malloc'd. */
int source_tls_load_cas(const char *default_bundle, const char *proxy_dir, const char *ca_dir,
                        const char *ca_file, char **blob, size_t *blob_len, struct verr *err);

#endif
