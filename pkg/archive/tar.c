/* vimport archive: the streaming tar reader (see archive.h). Every header field comes
 * from the source, so each is parsed within its own bytes and checked before use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"

#define SKIP_BUFFER (TAR_META_MAX + TAR_BLOCK) /* also the largest metadata payload, padded */
#define MAX_SIZE ((uint64_t)INT64_MAX)
/* Metadata headers (pax, long names) allowed before one entry: a stream of nothing but
 * them would otherwise be read without end and without a byte charged to the volume */
#define MAX_META_HEADERS 16

struct tar_reader {
  struct vreader *in;   /* borrowed */
  uint64_t offset;      /* stream bytes consumed */
  uint64_t remaining;   /* data bytes of the current entry not yet read */
  uint64_t padding;     /* zero bytes after them, up to the next block */
  bool ended;           /* the end marker was read */
  unsigned char *buf;   /* SKIP_BUFFER bytes: skipping, draining, pax and long names */
};

/* What the metadata entries (pax 'x', GNU 'L' and 'K') set for the next real entry. */
struct tar_pending {
  bool has_name, has_link, has_size, sparse;
  char name[TAR_NAME_MAX + 1];
  char link[TAR_NAME_MAX + 1];
  uint64_t size;
};

int tar_reader_new(struct vreader *in, struct tar_reader **out, struct verr *err)
{
  struct tar_reader *t = calloc(1, sizeof *t);
  if (t == NULL || (t->buf = malloc(SKIP_BUFFER)) == NULL) {
    free(t);
    return verr_set(err, VERR_NOMEM, "out of memory for the tar reader");
  }
  t->in = in;
  *out = t;
  return 0;
}

void tar_reader_free(struct tar_reader *t)
{
  if (t == NULL)
    return;
  free(t->buf);
  free(t);
}

uint64_t tar_offset(const struct tar_reader *t)
{
  return t->offset;
}

static int truncated(const struct tar_reader *t, const char *what, struct verr *err)
{
  return verr_set(err, VERR_FORMAT, "the tar archive ends inside %s at offset %llu: the "
                  "download is truncated or the file is not a whole tar; fetch it again",
                  what, (unsigned long long)t->offset);
}

/* Exactly `len` bytes, or VERR_FORMAT naming `what` when the stream ends first. */
static int read_exact(struct tar_reader *t, void *buf, size_t len, const char *what,
                      struct verr *err)
{
  ssize_t n = vreader_read_full(t->in, buf, len, err);
  if (n < 0)
    return -1;
  t->offset += (uint64_t)n;
  return (size_t)n < len ? truncated(t, what, err) : 0;
}

static int skip(struct tar_reader *t, uint64_t len, const char *what, struct verr *err)
{
  while (len > 0) {
    size_t n = len < SKIP_BUFFER ? (size_t)len : SKIP_BUFFER;
    if (read_exact(t, t->buf, n, what, err) < 0)
      return -1;
    len -= n;
  }
  return 0;
}

static uint64_t padding_of(uint64_t size)
{
  return (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
}

/* ---- header fields ---------------------------------------------------------------------- */

/* An octal field (leading spaces, digits, then NUL or space to the end) or a GNU
 * base-256 one (first byte 0x80). False when malformed or above MAX_SIZE. */
static bool parse_number(const unsigned char *p, size_t n, uint64_t *out)
{
  uint64_t v = 0;
  if (p[0] == 0x80) { /* base-256, positive */
    for (size_t i = 1; i < n; i++) {
      if (v > (MAX_SIZE >> 8))
        return false;
      v = v << 8 | p[i];
    }
    *out = v;
    return true;
  }
  size_t i = 0;
  while (i < n && p[i] == ' ')
    i++;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
    if (v > (MAX_SIZE >> 3))
      return false;
    v = v << 3 | (uint64_t)(p[i] - '0');
  }
  for (; i < n; i++) /* the terminator: NULs or spaces only */
    if (p[i] != '\0' && p[i] != ' ')
      return false;
  *out = v;
  return true;
}

static bool all_zero(const unsigned char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0)
      return false;
  return true;
}

/* The checksum covers the header with its own field as spaces; old tars summed signed
 * chars, so either sum is accepted, as GNU tar does. */
static bool checksum_ok(const unsigned char *h)
{
  uint64_t stored;
  if (!parse_number(h + 148, 8, &stored))
    return false;
  int64_t sum_u = 0, sum_s = 0;
  for (size_t i = 0; i < TAR_BLOCK; i++) {
    unsigned char c = i >= 148 && i < 156 ? ' ' : h[i];
    sum_u += c;
    sum_s += (signed char)c;
  }
  return (int64_t)stored == sum_u || (int64_t)stored == sum_s;
}

static enum tar_type type_of(char flag)
{
  switch (flag) {
  case '0': case '\0': case '7': return TAR_REGULAR;
  case '1': return TAR_HARDLINK;
  case '2': return TAR_SYMLINK;
  case '3': return TAR_CHAR;
  case '4': return TAR_BLOCKDEV;
  case '5': return TAR_DIRECTORY;
  case '6': return TAR_FIFO;
  default: return TAR_OTHER;
  }
}

/* ---- metadata entries -------------------------------------------------------------------- */

static int bad_meta(uint64_t at, const char *why, struct verr *err)
{
  return verr_set(err, VERR_FORMAT, "the tar archive's extended header at offset %llu is "
                  "invalid (%s): the archive is corrupt; create it again",
                  (unsigned long long)at, why);
}

static int set_string(char *dst, const char *src, size_t len, uint64_t at, struct verr *err)
{
  if (len > TAR_NAME_MAX)
    return verr_set(err, VERR_FORMAT, "the tar archive has a name of %zu bytes at offset %llu, "
                    "longer than %d: shorten the paths inside the archive", len,
                    (unsigned long long)at, TAR_NAME_MAX);
  if (memchr(src, '\0', len) != NULL)
    return bad_meta(at, "a name holds a NUL byte", err);
  memcpy(dst, src, len);
  dst[len] = '\0';
  return 0;
}

static bool parse_decimal(const char *p, size_t n, uint64_t *out)
{
  uint64_t v = 0;
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9' || v > (MAX_SIZE - 9) / 10)
      return false;
    v = v * 10 + (uint64_t)(p[i] - '0');
  }
  *out = v;
  return true;
}

/* One "<len> <key>=<value>\n" record of a pax header. */
static int pax_record(uint64_t at, const char *key, size_t klen,
                      const char *value, size_t vlen, struct tar_pending *p, struct verr *err)
{
  if (klen == 4 && memcmp(key, "path", 4) == 0) {
    p->has_name = true;
    return set_string(p->name, value, vlen, at, err);
  }
  if (klen == 8 && memcmp(key, "linkpath", 8) == 0) {
    p->has_link = true;
    return set_string(p->link, value, vlen, at, err);
  }
  if (klen == 4 && memcmp(key, "size", 4) == 0) {
    p->has_size = true;
    return parse_decimal(value, vlen, &p->size) ? 0 : bad_meta(at, "a bad size", err);
  }
  if (klen > 11 && memcmp(key, "GNU.sparse.", 11) == 0)
    p->sparse = true;
  return 0; /* other keys (times, owners, xattrs) do not change what is written */
}

static int parse_pax(uint64_t at, const char *s, size_t n,
                     struct tar_pending *p, struct verr *err)
{
  while (n > 0) {
    size_t digits = 0;
    while (digits < n && digits < 8 && s[digits] >= '0' && s[digits] <= '9')
      digits++;
    uint64_t len;
    if (digits == 0 || digits == n || s[digits] != ' ' || !parse_decimal(s, digits, &len) ||
        len > n || len < digits + 3 || s[len - 1] != '\n')
      return bad_meta(at, "a record's length", err);
    const char *kv = s + digits + 1;
    size_t kvlen = (size_t)len - digits - 2; /* without the space and the newline */
    const char *eq = memchr(kv, '=', kvlen);
    if (eq == NULL || eq == kv)
      return bad_meta(at, "a record without key=value", err);
    size_t klen = (size_t)(eq - kv);
    if (pax_record(at, kv, klen, eq + 1, kvlen - klen - 1, p, err) < 0)
      return -1;
    s += len;
    n -= (size_t)len;
  }
  return 0;
}

/* Read the payload of a metadata entry (bounded) and apply it to `p`. */
static int read_meta(struct tar_reader *t, char flag, uint64_t size, uint64_t at,
                     struct tar_pending *p, struct verr *err)
{
  if (size > TAR_META_MAX)
    return verr_set(err, VERR_FORMAT, "the tar archive's %s at offset %llu is %llu bytes, "
                    "more than vimport reads (%u): the archive is corrupt or hostile",
                    flag == 'L' || flag == 'K' ? "long name" : "extended header",
                    (unsigned long long)at, (unsigned long long)size, TAR_META_MAX);
  char *s = (char *)t->buf;
  /* payload and padding in one read: the buffer is also skip()'s */
  if (read_exact(t, s, (size_t)(size + padding_of(size)), "an extended header", err) < 0)
    return -1;
  if (flag == 'L' || flag == 'K') {
    size_t len = strnlen(s, (size_t)size);
    bool name = flag == 'L';
    *(name ? &p->has_name : &p->has_link) = true;
    return set_string(name ? p->name : p->link, s, len, at, err);
  }
  if (flag == 'g') /* global defaults for every later entry: none of ours applies */
    return 0;
  return parse_pax(at, s, (size_t)size, p, err);
}

/* ---- entries ------------------------------------------------------------------------------ */

static int fill_entry(const unsigned char *h, uint64_t size,
                      const struct tar_pending *p, struct tar_entry *e, struct verr *err)
{
  uint64_t mode, mtime;
  if (!parse_number(h + 100, 8, &mode) || !parse_number(h + 136, 12, &mtime))
    return verr_set(err, VERR_FORMAT, "the tar header at offset %llu has a bad mode or time "
                    "field: the archive is corrupt; create it again",
                    (unsigned long long)e->offset);
  e->mode = (uint32_t)(mode & 07777);
  e->mtime = (int64_t)mtime;
  e->typeflag = (char)h[156];
  e->type = type_of(e->typeflag);
  e->size = size;
  e->sparse = p->sparse;
  if (p->has_name) {
    memcpy(e->name, p->name, sizeof e->name);
  } else {
    /* POSIX ustar keeps a prefix at 345; GNU's "ustar  " uses those bytes otherwise */
    bool posix = memcmp(h + 257, "ustar\0", 6) == 0;
    size_t plen = posix ? strnlen((const char *)h + 345, 155) : 0;
    size_t nlen = strnlen((const char *)h, 100);
    int w = snprintf(e->name, sizeof e->name, "%.*s%s%.*s", (int)plen, (const char *)h + 345,
                     plen ? "/" : "", (int)nlen, (const char *)h);
    (void)w; /* at most 155 + 1 + 100 bytes: always fits */
  }
  if (p->has_link)
    memcpy(e->linkname, p->link, sizeof e->linkname);
  else
    snprintf(e->linkname, sizeof e->linkname, "%.*s", (int)strnlen((const char *)h + 157, 100),
             (const char *)h + 157);
  return 0;
}

static int header_checked(const unsigned char *h, uint64_t at, struct verr *err)
{
  if (checksum_ok(h))
    return 0;
  return verr_set(err, VERR_FORMAT, "the tar header at offset %llu has a wrong checksum: "
                  "the archive is corrupt%s; fetch or create it again", (unsigned long long)at,
                  at == 0 ? " or not a tar" : "");
}

int tar_next(struct tar_reader *t, struct tar_entry *e, struct verr *err)
{
  if (t->ended)
    return 0;
  if (skip(t, t->remaining + t->padding, "a file's data", err) < 0)
    return -1;
  t->remaining = t->padding = 0;
  struct tar_pending *p = calloc(1, sizeof *p); /* 8 KiB: not on the stack */
  if (p == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory for the tar reader");
  unsigned char h[TAR_BLOCK];
  int r = -1;
  for (unsigned metas = 0;; metas++) {
    uint64_t at = t->offset;
    if (metas > MAX_META_HEADERS) {
      verr_set(err, VERR_FORMAT, "the tar archive has more than %d extended headers in a row "
               "at offset %llu: the archive is corrupt or hostile", MAX_META_HEADERS,
               (unsigned long long)at);
      break;
    }
    ssize_t n = vreader_read_full(t->in, h, sizeof h, err);
    if (n < 0)
      break;
    t->offset += (uint64_t)n;
    if (n == 0) {
      verr_set(err, VERR_FORMAT, "the tar archive ends at offset %llu without its end marker: "
               "the download is truncated; fetch it again", (unsigned long long)at);
      break;
    }
    if (n < TAR_BLOCK) {
      truncated(t, "a header", err);
      break;
    }
    if (all_zero(h, sizeof h)) {
      t->ended = true;
      r = 0;
      break;
    }
    uint64_t size;
    if (header_checked(h, at, err) < 0)
      break;
    if (!parse_number(h + 124, 12, &size)) {
      verr_set(err, VERR_FORMAT, "the tar header at offset %llu has a bad size field: the "
               "archive is corrupt; create it again", (unsigned long long)at);
      break;
    }
    char flag = (char)h[156];
    if (flag == 'x' || flag == 'g' || flag == 'L' || flag == 'K') {
      if (read_meta(t, flag, size, at, p, err) < 0)
        break;
      continue;
    }
    if (p->has_size)
      size = p->size;
    /* No data follows links, directories, devices and fifos (POSIX pax) */
    enum tar_type type = type_of(flag);
    if (type != TAR_REGULAR && type != TAR_OTHER)
      size = 0;
    e->offset = at;
    if (fill_entry(h, size, p, e, err) < 0)
      break;
    t->remaining = size;
    t->padding = padding_of(size);
    r = 1;
    break;
  }
  free(p);
  return r;
}

ssize_t tar_read(struct tar_reader *t, void *buf, size_t len, struct verr *err)
{
  if (t->remaining == 0)
    return 0;
  size_t n = len < t->remaining ? len : (size_t)t->remaining;
  ssize_t got = t->in->ops->read(t->in, buf, n, err);
  if (got < 0)
    return -1;
  if (got == 0)
    return truncated(t, "a file's data", err);
  t->offset += (uint64_t)got;
  t->remaining -= (uint64_t)got;
  return got;
}

int tar_drain(struct tar_reader *t, struct verr *err)
{
  for (;;) {
    ssize_t n = vreader_read_full(t->in, t->buf, SKIP_BUFFER, err);
    if (n < 0)
      return -1;
    t->offset += (uint64_t)n;
    if (n < (ssize_t)SKIP_BUFFER)
      return 0;
  }
}
