/* vimport source: declarations shared by the files of this stage only. Not part of
 * the stage's contract (that is source.h); nothing outside pkg/source includes this. */
#ifndef VIMPORT_SOURCE_INTERNAL_H
#define VIMPORT_SOURCE_INTERNAL_H

#include "source/source.h"

/* http.c: the http/https source. Same contracts as the public functions. */
int source_http_open(const struct source_opts *opts, struct vreader **out, struct verr *err);
int source_http_is(const struct vreader *r);
const struct source_info *source_http_info(struct vreader *r);
struct vzeros source_http_zeros(struct vreader *r);
int source_http_digest(struct vreader *r, unsigned char *md, unsigned *md_len, uint64_t *bytes,
                       struct verr *err);
int source_http_pread(struct vreader *r, void *buf, size_t len, uint64_t offset,
                      struct verr *err);

/* tls.c: the CA bundle for opts->ca_dir / opts->ca_file, as one PEM blob for
 * CURLOPT_CAINFO_BLOB: libcurl's default bundle (so custom CAs add to the system trust,
 * as CDI does) followed by every PEM file of the directory. *blob is malloc'd. */
int source_tls_load_cas(const char *default_bundle, const char *ca_dir, const char *ca_file,
                        char **blob, size_t *blob_len, struct verr *err);

#endif
