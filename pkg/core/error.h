/* vimport: errors that say what happened and what to do next.
 *
 * Every fallible function below cmd/ takes a `struct verr *` last and returns 0 on
 * success or a negative value on failure, having filled the verr. `code` is one of
 * enum verr_code (what kind of failure, for exit codes and the termination message);
 * `message` is one human sentence naming the cause and, where there is one, the
 * remedy. Messages never contain secrets: callers pass URLs through
 * verr_redact_url() before they reach a message.
 */
#ifndef VIMPORT_CORE_ERROR_H
#define VIMPORT_CORE_ERROR_H

#include <stddef.h>

enum verr_code {
  VERR_OK = 0,
  VERR_USAGE,            /* bad command line or spec: the user must fix the input */
  VERR_IO,               /* a read or write failed (errno in `sys_errno`) */
  VERR_NOMEM,            /* allocation failed */
  VERR_SOURCE,           /* the source could not be fetched (network, HTTP status) */
  VERR_FORMAT,           /* the bytes are not an image we accept */
  VERR_CHECKSUM,         /* source checksum differs from the expected one */
  VERR_VERIFY,           /* read-back or expected block hash mismatch */
  VERR_TARGET_TOO_SMALL, /* the target cannot hold the virtual size */
  VERR_SCRATCH_REQUIRED, /* the format needs scratch space (CDI's contract) */
  VERR_INTERNAL,         /* a bug: should not happen */
  VERR_CANCELLED,        /* stopped by a signal */
};

struct verr {
  enum verr_code code;
  int sys_errno;        /* errno at the failure, 0 if none */
  char message[1024];
};

/* Fill `err` (if not NULL) with a printf-style message and return -1. */
int verr_set(struct verr *err, enum verr_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, appending ": strerror(sys_errno)" and recording sys_errno. */
int verr_sys(struct verr *err, enum verr_code code, int sys_errno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prepend context ("while X: ") to an existing message, keeping its code. Returns -1. */
int verr_prefix(struct verr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Short stable name of a code, e.g. "checksum" (for logs and JSON). */
const char *verr_code_name(enum verr_code code);

/* Copy `url` to `out` without userinfo ("user:pass@") and without the query string,
 * which may hold tokens. Always NUL-terminates. */
void verr_redact_url(const char *url, char *out, size_t out_size);

#endif
