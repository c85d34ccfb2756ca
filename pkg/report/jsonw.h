/* vimport report, internal: a bounded JSON writer for one-line messages.
 * Not part of the stage's contract; only the .c files of pkg/report include it.
 *
 * Strings are escaped so the output is always valid JSON and valid UTF-8 whatever the
 * input bytes: quotes, backslashes and control bytes are escaped, valid UTF-8 passes
 * through, every byte of invalid UTF-8 becomes \ufffd. A string may be given a cap on
 * its escaped length; it is then cut in the middle, between whole escapes and whole
 * code points, keeping its head and its tail around JSONW_MARKER.
 */
#ifndef VIMPORT_REPORT_JSONW_H
#define VIMPORT_REPORT_JSONW_H

#include <stddef.h>
#include <stdint.h>

#define JSONW_MARKER "..."
#define JSONW_MARKER_LEN 3
#define JSONW_NO_CAP SIZE_MAX

/* Output buffer. `len` counts every byte written, also those beyond `size` that were
 * dropped, so a writer with size 0 measures without writing. */
struct jsonw {
  char *buf;
  size_t size;
  size_t len;
};

/* Append `s` as it is (callers pass JSON syntax and ASCII names only). */
void jsonw_raw(struct jsonw *w, const char *s);

/* Append an unsigned decimal number. */
void jsonw_u64(struct jsonw *w, uint64_t v);

/* Length of s[0..n) once escaped, without the quotes. */
size_t jsonw_escaped_len(const char *s, size_t n);

/* Append s[0..n) as a quoted JSON string whose escaped content (quotes excluded) is at
 * most `cap` bytes, or whole if cap is JSONW_NO_CAP. When cut, cap must be at least
 * JSONW_MARKER_LEN. */
void jsonw_string(struct jsonw *w, const char *s, size_t n, size_t cap);

#endif
