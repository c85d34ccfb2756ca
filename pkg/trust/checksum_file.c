/* vimport trust: checksum files (SHA256SUMS, BSD --tag, Fedora CHECKSUM). See trust.h.
 *
 * One pass over the lines: each line is classified (blank, comment, OpenPGP armor, a
 * GNU line, a BSD line) and every sum line is parsed fully, whether or not it names the
 * image, so a damaged file is refused rather than half-read. The lines for the wanted
 * name are kept, strongest algorithm first.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cleanup.h"
#include "trust.h"

/* Algorithms that appear in checksum files, weakest first. `supported`: pkg/digest
 * computes it. */
static const struct {
  const char *name;     /* our name */
  const char *tags[2];  /* BSD tags (coreutils --tag, openssl dgst) */
  size_t hex_length;
  bool supported;
} file_algorithms[] = {
  { "md5",    { "MD5", "MD5" },           32,  true },
  { "sha1",   { "SHA1", "SHA1" },         40,  true },
  { "sha224", { "SHA224", "SHA2-224" },   56,  false },
  { "sha256", { "SHA256", "SHA2-256" },   64,  true },
  { "sha384", { "SHA384", "SHA2-384" },   96,  false },
  { "sha512", { "SHA512", "SHA2-512" },   128, true },
};
#define N_FILE_ALGORITHMS (sizeof file_algorithms / sizeof file_algorithms[0])
#define NO_ALGORITHM ((size_t)-1)
#define NAMES_SHOWN 3

/* One sum line, pointing into the text. */
struct sum_line {
  size_t alg;           /* index in file_algorithms */
  const char *hex;
  size_t hex_len;
  char name[CHECKSUM_NAME_MAX];
  bool name_too_long;
};

struct sum_search {
  const char *want;
  /* the wanted name's line per algorithm: 0 = not seen */
  unsigned long line_of[N_FILE_ALGORITHMS];
  char hex_of[N_FILE_ALGORITHMS][CHECKSUM_HEX_MAX];
  /* a few other names, for the "not listed" message */
  char shown[NAMES_SHOWN][64];
  size_t n_shown;
  size_t n_names;
};

static size_t algorithm_by_hex_length(size_t len)
{
  for (size_t i = 0; i < N_FILE_ALGORITHMS; i++)
    if (file_algorithms[i].hex_length == len)
      return i;
  return NO_ALGORITHM;
}

static size_t algorithm_by_tag(const char *tag, size_t len)
{
  for (size_t i = 0; i < N_FILE_ALGORITHMS; i++)
    for (size_t t = 0; t < 2; t++)
      if (strlen(file_algorithms[i].tags[t]) == len &&
          strncasecmp(file_algorithms[i].tags[t], tag, len) == 0)
        return i;
  return NO_ALGORITHM;
}

static size_t hex_run(const char *s, size_t len)
{
  size_t n = 0;
  while (n < len && isxdigit((unsigned char)s[n]))
    n++;
  return n;
}

/* Copy a name, undoing coreutils' escapes ("\\\\", "\\n", "\\r") when `escaped`. */
static int copy_name(struct sum_line *sl, const char *s, size_t len, bool escaped)
{
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (escaped && c == '\\') {
      if (++i == len)
        return -1;
      c = s[i] == 'n' ? '\n' : s[i] == 'r' ? '\r' : s[i] == '\\' ? '\\' : '\0';
      if (c == '\0')
        return -1;
    }
    if (o + 1 >= sizeof sl->name) {
      sl->name_too_long = true;
      break;
    }
    sl->name[o++] = c;
  }
  sl->name[o] = '\0';
  return o == 0 && !sl->name_too_long ? -1 : 0;
}

/* "<hex>  <name>" or "<hex> *<name>" (one space before the name is read too). */
static int parse_gnu(const char *s, size_t len, bool escaped, struct sum_line *sl)
{
  size_t h = hex_run(s, len);
  if (h == 0 || h >= len || s[h] != ' ')
    return -1;
  sl->alg = algorithm_by_hex_length(h);
  if (sl->alg == NO_ALGORITHM)
    return -1;
  sl->hex = s;
  sl->hex_len = h;
  size_t name_at = h + 1;
  if (name_at < len && (s[name_at] == ' ' || s[name_at] == '*'))
    name_at++;
  return copy_name(sl, s + name_at, len - name_at, escaped);
}

/* "<TAG> (<name>) = <hex>" or openssl's "<TAG>(<name>)= <hex>". */
static int parse_bsd(const char *s, size_t len, bool escaped, struct sum_line *sl)
{
  size_t tag_len = 0;
  while (tag_len < len && (isalnum((unsigned char)s[tag_len]) || s[tag_len] == '-'))
    tag_len++;
  size_t open = tag_len;
  if (open < len && s[open] == ' ')
    open++;
  if (tag_len == 0 || open >= len || s[open] != '(')
    return -1;
  /* the hex digits end the line; before them "= " or " = " or "=", then ")" */
  size_t end = len;
  while (end > open && isxdigit((unsigned char)s[end - 1]))
    end--;
  size_t p = end;
  if (p > 0 && s[p - 1] == ' ')
    p--;
  if (p == 0 || s[p - 1] != '=')
    return -1;
  p--;
  if (p > 0 && s[p - 1] == ' ')
    p--;
  if (p <= open + 1 || s[p - 1] != ')')
    return -1;
  sl->alg = algorithm_by_tag(s, tag_len);
  sl->hex = s + end;
  sl->hex_len = len - end;
  if (sl->alg == NO_ALGORITHM || sl->hex_len != file_algorithms[sl->alg].hex_length)
    return -1;
  return copy_name(sl, s + open + 1, p - 1 - (open + 1), escaped);
}

static int parse_sum_line(const char *s, size_t len, struct sum_line *sl)
{
  bool escaped = len > 0 && s[0] == '\\';
  if (escaped) {
    s++;
    len--;
  }
  size_t h = hex_run(s, len);
  if (h > 0 && h < len && s[h] == ' ')
    return parse_gnu(s, len, escaped, sl);
  return parse_bsd(s, len, escaped, sl);
}

static int line_error(struct verr *err, unsigned long line, const char *what)
{
  return verr_set(err, VERR_FORMAT, "checksum file line %lu: %s; is the checksumURL right? "
                  "Lines must read \"<hex>  <name>\" or \"SHA256 (<name>) = <hex>\"",
                  line, what);
}

static void remember_name(struct sum_search *s, const char *name)
{
  s->n_names++;
  if (s->n_shown < NAMES_SHOWN)
    snprintf(s->shown[s->n_shown++], sizeof s->shown[0], "%.60s", name);
}

static bool same_name(const char *listed, const char *want)
{
  if (strncmp(listed, "./", 2) == 0)
    listed += 2;
  return strcmp(listed, want) == 0;
}

static int record_line(struct sum_search *s, const struct sum_line *sl, unsigned long line,
                       struct verr *err)
{
  if (sl->name_too_long || !same_name(sl->name, s->want)) {
    remember_name(s, sl->name);
    return 0;
  }
  char hex[CHECKSUM_HEX_MAX];
  for (size_t i = 0; i < sl->hex_len; i++)
    hex[i] = (char)tolower((unsigned char)sl->hex[i]);
  hex[sl->hex_len] = '\0';
  if (s->line_of[sl->alg] != 0 && strcmp(s->hex_of[sl->alg], hex) != 0)
    return verr_set(err, VERR_FORMAT, "checksum file lines %lu and %lu give different %s "
                    "sums for \"%.200s\"; the file is inconsistent: ask its publisher, or "
                    "give the checksum directly", s->line_of[sl->alg], line,
                    file_algorithms[sl->alg].name, s->want);
  s->line_of[sl->alg] = line;
  memcpy(s->hex_of[sl->alg], hex, sl->hex_len + 1);
  return 0;
}

/* OpenPGP clearsigned framing (RFC 4880 7): where we are in it. */
enum armor_state { ARMOR_NONE, ARMOR_HEADERS, ARMOR_TEXT, ARMOR_SIGNATURE };

/* Skip armor lines; returns true when the line is armor and was consumed. Dash-escaped
 * text lines ("- ...") are unescaped by moving *s and *len. */
static bool skip_armor(enum armor_state *st, const char **s, size_t *len)
{
  static const char begin_msg[] = "-----BEGIN PGP SIGNED MESSAGE-----";
  static const char begin_sig[] = "-----BEGIN PGP SIGNATURE-----";
  static const char end_sig[] = "-----END PGP SIGNATURE-----";
#define IS(lit) (*len == sizeof(lit) - 1 && memcmp(*s, lit, *len) == 0)
  switch (*st) {
  case ARMOR_NONE:
    if (IS(begin_msg)) {
      *st = ARMOR_HEADERS;
      return true;
    }
    return false;
  case ARMOR_HEADERS: /* "Hash: SHA256" until the blank line */
    if (*len == 0)
      *st = ARMOR_TEXT;
    return true;
  case ARMOR_TEXT:
    if (IS(begin_sig)) {
      *st = ARMOR_SIGNATURE;
      return true;
    }
    if (*len >= 2 && (*s)[0] == '-' && (*s)[1] == ' ') {
      *s += 2;
      *len -= 2;
    }
    return false;
  case ARMOR_SIGNATURE:
    if (IS(end_sig))
      *st = ARMOR_NONE;
    return true;
  }
#undef IS
  return false;
}

static int scan_line(struct sum_search *s, enum armor_state *st, const char *p, size_t len,
                     unsigned long line, struct verr *err)
{
  if (len > 0 && p[len - 1] == '\r')
    len--;
  if (skip_armor(st, &p, &len))
    return 0;
  size_t lead = 0;
  while (lead < len && (p[lead] == ' ' || p[lead] == '\t'))
    lead++;
  if (lead == len || p[lead] == '#')
    return 0;
  struct sum_line sl = { 0 };
  if (parse_sum_line(p, len, &sl) == -1)
    return line_error(err, line, "not a checksum line (or a digest of the wrong length)");
  return record_line(s, &sl, line, err);
}

static int not_listed(const struct sum_search *s, struct verr *err)
{
  if (s->n_names == 0)
    return verr_set(err, VERR_FORMAT, "the checksum file lists no sums; is the checksumURL "
                    "right?");
  char some[NAMES_SHOWN * 72] = "";
  for (size_t i = 0; i < s->n_shown; i++) {
    size_t used = strlen(some);
    snprintf(some + used, sizeof some - used, "%s\"%s\"", i == 0 ? "" : ", ", s->shown[i]);
  }
  return verr_set(err, VERR_USAGE, "the checksum file has no line for \"%.200s\" (it lists "
                  "%zu other name%s: %s%s); set checksumName to the name the file uses",
                  s->want, s->n_names, s->n_names == 1 ? "" : "s", some,
                  s->n_names > s->n_shown ? ", ..." : "");
}

static int pick_strongest(const struct sum_search *s, struct checksum *out, struct verr *err)
{
  size_t unsupported = NO_ALGORITHM;
  for (size_t i = N_FILE_ALGORITHMS; i-- > 0;) {
    if (s->line_of[i] == 0)
      continue;
    if (!file_algorithms[i].supported) {
      unsupported = i;
      continue;
    }
    snprintf(out->algorithm, sizeof out->algorithm, "%s", file_algorithms[i].name);
    snprintf(out->hex, sizeof out->hex, "%s", s->hex_of[i]);
    return 0;
  }
  if (unsupported != NO_ALGORITHM)
    return verr_set(err, VERR_USAGE, "checksum file line %lu: a %s sum for \"%.200s\"; "
                    "vimport checks md5, sha1, sha256 or sha512 sums: use a file that has one",
                    s->line_of[unsupported], file_algorithms[unsupported].name, s->want);
  return not_listed(s, err);
}

int checksum_file_parse(const char *text, size_t len, const char *name,
                        struct checksum *out, struct verr *err)
{
  if (name == NULL || name[0] == '\0')
    return verr_set(err, VERR_USAGE, "no file name to look up in the checksum file; set "
                    "checksumName");
  if (memchr(text, '\0', len) != NULL)
    return verr_set(err, VERR_FORMAT, "the checksum file holds a NUL byte: it is not a text "
                    "checksum file; is the checksumURL right?");
  struct sum_search s = { .want = name };
  enum armor_state st = ARMOR_NONE;
  unsigned long line = 1;
  for (size_t at = 0; at < len; line++) {
    const char *nl = memchr(text + at, '\n', len - at);
    size_t line_len = nl != NULL ? (size_t)(nl - (text + at)) : len - at;
    if (scan_line(&s, &st, text + at, line_len, line, err) == -1)
      return -1;
    at += line_len + (nl != NULL);
  }
  if (st == ARMOR_HEADERS || st == ARMOR_SIGNATURE)
    return verr_set(err, VERR_FORMAT, "the checksum file ends inside its PGP %s; it was cut "
                    "short: fetch it again", st == ARMOR_HEADERS ? "header" : "signature");
  return pick_strongest(&s, out, err);
}

static int hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)tolower((unsigned char)c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int checksum_file_name_from_url(const char *url, char *out, size_t out_size,
                                struct verr *err)
{
  size_t end = strcspn(url, "?#");
  size_t start = end;
  while (start > 0 && url[start - 1] != '/')
    start--;
  size_t o = 0;
  for (size_t i = start; i < end; i++) {
    int c = (unsigned char)url[i];
    if (c == '%' && i + 2 < end && hex_value(url[i + 1]) >= 0 && hex_value(url[i + 2]) >= 0) {
      c = hex_value(url[i + 1]) * 16 + hex_value(url[i + 2]);
      i += 2;
    }
    if (c == '\0' || c == '/' || o + 1 >= out_size)
      return verr_set(err, VERR_USAGE, "cannot take a file name from the source URL for the "
                      "checksum file; set checksumName");
    out[o++] = (char)c;
  }
  if (o == 0)
    return verr_set(err, VERR_USAGE, "the source URL ends without a file name; set "
                    "checksumName to the name the checksum file lists");
  out[o] = '\0';
  return 0;
}

int trust_fetch_all(const struct source_opts *fetch, size_t cap, const char *what,
                    char **out, size_t *len, struct verr *err)
{
  char where[1024];
  verr_redact_url(fetch->url, where, sizeof where);
  struct vreader *r = NULL;
  if (source_open(fetch, &r, err) == -1)
    return verr_prefix(err, "cannot fetch the %s %s", what, where);
  CLEANUP_FREE char *buf = malloc(cap + 1);
  if (buf == NULL) {
    vreader_close(r);
    return verr_set(err, VERR_NOMEM, "out of memory reading the %s", what);
  }
  size_t used = 0;
  for (;;) {
    char probe;
    /* read up to cap, then one more byte to tell "exactly cap" from "more" */
    ssize_t n = used < cap ? r->ops->read(r, buf + used, cap - used, err)
                           : r->ops->read(r, &probe, 1, err);
    if (n < 0) {
      vreader_close(r);
      return verr_prefix(err, "cannot read the %s %s", what, where);
    }
    if (n == 0)
      break;
    if (used == cap) {
      vreader_close(r);
      return verr_set(err, VERR_FORMAT, "the %s %s is larger than %zu bytes; is the URL "
                      "right?", what, where, cap);
    }
    used += (size_t)n;
  }
  vreader_close(r);
  buf[used] = '\0';
  *len = used;
  *out = TAKE_PTR(buf);
  return 0;
}

int checksum_file_load(const struct source_opts *fetch, const char *name,
                       struct checksum *out, struct verr *err)
{
  CLEANUP_FREE char *text = NULL;
  size_t len = 0;
  if (trust_fetch_all(fetch, CHECKSUM_FILE_MAX_BYTES, "checksum file", &text, &len,
                      err) == -1)
    return -1;
  if (checksum_file_parse(text, len, name, out, err) == -1) {
    char where[1024];
    verr_redact_url(fetch->url, where, sizeof where);
    return verr_prefix(err, "%s", where);
  }
  return 0;
}
