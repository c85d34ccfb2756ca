/* vimport archive: CDI's `contentType: archive`, a tar unpacked into the volume, safely.
 *
 *   reader (plain tar bytes, in order) -> tar reader (tar.c) -> extractor (extract.c)
 *     -> staging dir ".vimport-archive-XXXXXX" inside the target directory (stage.c)
 *     -> commit: every top-level entry renamed into the target directory
 *
 * The tar reader (tar.c) reads one stream front to back: ustar, GNU long names and link
 * names (typeflags L and K), pax extended headers (path, linkpath, size; global headers
 * are read and ignored). Every header's checksum is verified, every numeric field is
 * parsed within its bytes (octal, or GNU base-256 for big sizes), every name is bounded
 * by TAR_NAME_MAX, every pax or long-name payload by TAR_META_MAX. A stream that ends
 * before the end-of-archive marker (a zero block) is VERR_FORMAT: a truncated download.
 *
 * The extractor (extract.c) writes only beneath one directory fd and never follows a
 * symlink while writing (each component is opened with O_NOFOLLOW, the last one
 * created with O_EXCL). It accepts regular files, directories, symlinks whose target
 * stays inside (relative, '..' only as a leading run that does not climb above the
 * root: then no chain of such links can leave it), and hard links to an earlier entry
 * of the same archive. It refuses, with VERR_FORMAT naming the entry: absolute names,
 * '..' components, a name that goes through a symlink, device nodes, fifos, GNU sparse
 * files and every other type; and more bytes or entries than the volume has free.
 * Modes are masked to 0777 (no setuid, setgid or sticky bit; directories keep u+rwx);
 * owners are never set (tar --no-same-owner), mtimes of regular files are kept.
 *
 * The stage (stage.c) makes the result all or nothing: the archive is unpacked into a
 * fresh staging directory next to the target, and only archive_stage_commit() moves
 * its top-level entries into the target directory (renameat2 RENAME_NOREPLACE: a name
 * that already exists there is refused, and the entries already moved go back).
 * archive_stage_free() removes whatever is still staged, so a failed, cancelled or
 * hostile archive leaves nothing in the volume.
 *
 * Errors: functions returning int return 0 on success or -1 with `err` filled (tar_next
 * returns 1 for an entry and 0 at the end). VERR_FORMAT for a bad or refused archive,
 * VERR_IO for the filesystem (errno kept), VERR_TARGET_TOO_SMALL when it does not fit,
 * VERR_NOMEM, and the reader's own code for a failing source.
 */
#ifndef VIMPORT_ARCHIVE_H
#define VIMPORT_ARCHIVE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"
#include "core/stream.h"

#define TAR_BLOCK 512
#define TAR_NAME_MAX 4096           /* longest path or link name accepted (PATH_MAX) */
#define TAR_META_MAX (1024u * 1024u) /* largest pax header or GNU long name payload */

enum tar_type {
  TAR_REGULAR,   /* '0', '\0', '7' */
  TAR_HARDLINK,  /* '1' */
  TAR_SYMLINK,   /* '2' */
  TAR_CHAR,      /* '3' */
  TAR_BLOCKDEV,  /* '4' */
  TAR_DIRECTORY, /* '5' */
  TAR_FIFO,      /* '6' */
  TAR_OTHER,     /* any other typeflag: see tar_entry.typeflag */
};

struct tar_entry {
  char name[TAR_NAME_MAX + 1];     /* NUL-terminated, as written (not yet checked) */
  char linkname[TAR_NAME_MAX + 1]; /* for links; "" otherwise */
  enum tar_type type;
  char typeflag;                   /* the raw typeflag byte */
  uint64_t size;                   /* data bytes that follow (0 for links, dirs...) */
  uint32_t mode;                   /* the header's mode bits, unmasked */
  int64_t mtime;                   /* seconds since the epoch */
  bool sparse;                     /* a pax header announced a GNU sparse file */
  uint64_t offset;                 /* stream offset of the entry's (first) header */
};

struct tar_reader;

/* A reader of the tar stream `in`, which it borrows (the caller closes it after
 * tar_reader_free). Errors: VERR_NOMEM. */
int tar_reader_new(struct vreader *in, struct tar_reader **out, struct verr *err);

/* Skip what is left of the current entry's data and read the next entry into `e`.
 * Returns 1 for an entry, 0 at the end-of-archive marker, -1 with `err` filled. */
int tar_next(struct tar_reader *t, struct tar_entry *e, struct verr *err);

/* Up to `len` bytes of the current entry's data: the count, 0 at its end, or -1. */
ssize_t tar_read(struct tar_reader *t, void *buf, size_t len, struct verr *err);

/* Bytes of the stream consumed so far. */
uint64_t tar_offset(const struct tar_reader *t);

/* Read the rest of the stream after the end marker (a digest above it sees every byte). */
int tar_drain(struct tar_reader *t, struct verr *err);

void tar_reader_free(struct tar_reader *t);

/* What was unpacked. */
struct archive_stats {
  uint64_t files;   /* regular files (hard links not counted) */
  uint64_t bytes;   /* sum of their sizes */
  uint64_t entries; /* every entry: files, directories, links */
};

struct archive_limits {
  uint64_t max_bytes;   /* the filesystem's free bytes: whole blocks of data + entries */
  uint64_t max_entries; /* the filesystem's free inodes (0: not bounded) */
  uint32_t block_size;  /* the filesystem's block size, for the byte budget (>= 1) */
  /* Set to non-zero (by a signal handler) to stop between writes; may be NULL. */
  const volatile sig_atomic_t *cancelled;
};

/* Unpack every entry of `t` beneath the directory `root_fd` (which must be empty) up to
 * the end marker, within `limits`. `stats` counts as it goes (also on failure). */
int archive_extract(struct tar_reader *t, int root_fd, const struct archive_limits *limits,
                    struct archive_stats *stats, struct verr *err);

struct archive_stage;

/* Create the staging directory ".vimport-archive-XXXXXX" inside `dir` (the directory
 * that will receive the entries) and fill `limits` from dir's filesystem (statvfs).
 * Staging directories left in `dir` by a killed import are removed first.
 * Errors: VERR_IO naming `dir`, VERR_NOMEM. */
int archive_stage_new(const char *dir, struct archive_stage **out, struct archive_limits *limits,
                      struct verr *err);

/* The staging directory's fd, for archive_extract(); owned by the stage. */
int archive_stage_fd(const struct archive_stage *s);

/* Flush the staged tree to storage (syncfs), then move each top-level entry into the
 * target directory with RENAME_NOREPLACE. A name that exists there already is
 * VERR_FORMAT naming it, and nothing is moved. The staging directory is then removed. */
int archive_stage_commit(struct archive_stage *s, struct verr *err);

/* Remove whatever is still staged (never following a symlink), the staging directory,
 * and free `s`. NULL is fine. */
void archive_stage_free(struct archive_stage *s);

#endif
