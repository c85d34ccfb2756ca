/* vimport openpgp: ASCII armor, CRC-24 and the clearsigned message format. See
 * openpgp.h.
 *
 * Everything here walks lines of untrusted text with explicit lengths: the text need
 * not be NUL-terminated and may hold any byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "openpgp.h"

#define CRC24_INIT 0xB704CEu
#define CRC24_POLY 0x1864CFBu

uint32_t openpgp_crc24(const unsigned char *data, size_t len)
{
  uint32_t crc = CRC24_INIT;
  for (size_t i = 0; i < len; i++) {
    crc ^= (uint32_t)data[i] << 16;
    for (int b = 0; b < 8; b++) {
      crc <<= 1;
      if (crc & 0x1000000u)
        crc ^= CRC24_POLY;
    }
  }
  return crc & 0xFFFFFFu;
}

/* One line of `text` starting at `pos`: [*start, *start + *n) without its "\n" or
 * "\r\n"; returns the offset of the next line. */
static size_t line_at(const char *text, size_t len, size_t pos, size_t *n)
{
  size_t e = pos;
  while (e < len && text[e] != '\n')
    e++;
  size_t l = e - pos;
  if (l > 0 && text[pos + l - 1] == '\r')
    l--;
  *n = l;
  return e < len ? e + 1 : e;
}

/* Length without trailing spaces, tabs and CRs: armor lines may carry them. */
static size_t rtrim(const char *s, size_t n)
{
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    n--;
  return n;
}

static bool line_is(const char *s, size_t n, const char *want)
{
  size_t w = strlen(want);
  return rtrim(s, n) == w && memcmp(s, want, w) == 0;
}

/* Base64 decoder state: bits gathered across lines. */
struct b64 {
  unsigned char *out;
  size_t used, cap;
  uint32_t acc;
  int bits;
  bool padded; /* '=' seen: only more '=' may follow */
};

static int b64_feed(struct b64 *d, const char *s, size_t n, struct verr *err)
{
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || c == '\t')
      continue;
    if (c == '=') {
      d->padded = true;
      continue;
    }
    int v = base64_digit_value(c);
    if (v < 0 || d->padded)
      return verr_set(err, VERR_FORMAT, "OpenPGP armor: invalid base64 character 0x%02x; "
                      "the file is damaged", c);
    d->acc = (d->acc << 6) | (uint32_t)v;
    d->bits += 6;
    if (d->bits >= 8) {
      d->bits -= 8;
      if (d->used == d->cap)
        return verr_set(err, VERR_FORMAT, "OpenPGP armor: larger than %u bytes",
                        OPENPGP_MAX_INPUT);
      d->out[d->used++] = (unsigned char)(d->acc >> d->bits);
    }
  }
  return 0;
}

/* The 4-character "=XXXX" CRC line, decoded. */
static int crc_line(const char *s, size_t n, uint32_t *crc, struct verr *err)
{
  n = rtrim(s, n);
  uint32_t v = 0;
  if (n != 5)
    return verr_set(err, VERR_FORMAT, "OpenPGP armor: malformed CRC line; the file is "
                    "damaged");
  for (size_t i = 1; i < 5; i++) {
    int x = base64_digit_value((unsigned char)s[i]);
    if (x < 0)
      return verr_set(err, VERR_FORMAT, "OpenPGP armor: malformed CRC line; the file is "
                      "damaged");
    v = (v << 6) | (uint32_t)x;
  }
  *crc = v;
  return 0;
}

/* Find "-----BEGIN <label>-----" (or any "-----BEGIN PGP ...-----" when label is NULL)
 * from `pos`; returns the offset after it and the label found, or len when none. */
static size_t find_begin(const char *text, size_t len, size_t pos, const char *label,
                         char *found, size_t found_size)
{
  while (pos < len) {
    size_t n, next = line_at(text, len, pos, &n);
    const char *s = text + pos;
    n = rtrim(s, n);
    if (n > 20 && memcmp(s, "-----BEGIN PGP ", 15) == 0 && memcmp(s + n - 5, "-----", 5) == 0) {
      size_t ln = n - 16; /* "PGP ..." between the dashes */
      if (ln < found_size && (label == NULL || (strlen(label) == ln &&
                                                memcmp(s + 11, label, ln) == 0))) {
        memcpy(found, s + 11, ln);
        found[ln] = '\0';
        return next;
      }
    }
    pos = next;
  }
  return len;
}

/* Skip the armor headers ("Key: value" lines) up to the blank line. Some producers omit
 * the blank line when there are no headers: then the first line is already base64. */
static size_t skip_headers(const char *text, size_t len, size_t pos)
{
  size_t p = pos;
  while (p < len) {
    size_t n, next = line_at(text, len, p, &n);
    n = rtrim(text + p, n);
    if (n == 0)
      return next;
    if (memchr(text + p, ':', n) == NULL)
      return p; /* base64 already: no blank line after the headers, or no headers */
    p = next;
  }
  return p;
}

int openpgp_armor_decode(const char *text, size_t len, const char *label,
                         unsigned char **out, size_t *out_len, size_t *end,
                         struct verr *err)
{
  char kind[64];
  size_t pos = find_begin(text, len, 0, label, kind, sizeof kind);
  if (pos >= len)
    return 0;
  pos = skip_headers(text, len, pos);
  char end_line[96];
  snprintf(end_line, sizeof end_line, "-----END %s-----", kind);
  struct b64 d = { .cap = len, .out = malloc(len ? len : 1) };
  if (d.out == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory decoding OpenPGP armor");
  bool have_crc = false;
  uint32_t crc = 0;
  while (pos < len) {
    size_t n, next = line_at(text, len, pos, &n);
    const char *s = text + pos;
    pos = next;
    if (line_is(s, n, end_line)) {
      if (have_crc && openpgp_crc24(d.out, d.used) != crc) {
        free(d.out);
        return verr_set(err, VERR_FORMAT, "OpenPGP armor of the %s: CRC-24 mismatch; "
                        "the file was damaged or altered in transit", kind);
      }
      if (d.used == 0) {
        free(d.out);
        return verr_set(err, VERR_FORMAT, "OpenPGP armor of the %s: no data", kind);
      }
      *out = d.out;
      *out_len = d.used;
      if (end != NULL)
        *end = pos;
      return 1;
    }
    /* "=XXXX" after the data: the CRC (a '=' padding line is never 5 chars alone) */
    if (!have_crc && rtrim(s, n) == 5 && s[0] == '=' && s[1] != '=') {
      if (crc_line(s, n, &crc, err) == -1) {
        free(d.out);
        return -1;
      }
      have_crc = true;
      continue;
    }
    if (have_crc || (n >= 5 && memcmp(s, "-----", 5) == 0)) {
      free(d.out);
      return verr_set(err, VERR_FORMAT, "OpenPGP armor of the %s: expected '%s'; the "
                      "file is truncated or damaged", kind, end_line);
    }
    if (b64_feed(&d, s, n, err) == -1) {
      free(d.out);
      return -1;
    }
  }
  free(d.out);
  return verr_set(err, VERR_FORMAT, "OpenPGP armor of the %s: no '%s' line; the file is "
                  "truncated", kind, end_line);
}

int openpgp_dearmor_any(const void *data, size_t len, unsigned char **out,
                        size_t *out_len, struct verr *err)
{
  const unsigned char *p = data;
  if (len > OPENPGP_MAX_INPUT)
    return verr_set(err, VERR_FORMAT, "OpenPGP data larger than %u bytes",
                    OPENPGP_MAX_INPUT);
  if (len == 0)
    return verr_set(err, VERR_FORMAT, "OpenPGP data: the file is empty");
  if (p[0] & 0x80) { /* a packet header: binary */
    *out = malloc(len);
    if (*out == NULL)
      return verr_set(err, VERR_NOMEM, "out of memory");
    memcpy(*out, p, len);
    *out_len = len;
    return 0;
  }
  unsigned char *all = malloc(len);
  if (all == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  size_t used = 0, pos = 0;
  for (;;) {
    unsigned char *blk;
    size_t blen, end;
    int r = openpgp_armor_decode((const char *)p + pos, len - pos, NULL, &blk, &blen,
                                 &end, err);
    if (r < 0) {
      free(all);
      return -1;
    }
    if (r == 0)
      break;
    /* decoded bytes are at most 3/4 of the text: they always fit */
    memcpy(all + used, blk, blen);
    used += blen;
    free(blk);
    pos += end;
  }
  if (used == 0) {
    free(all);
    return verr_set(err, VERR_FORMAT, "neither OpenPGP packets nor an armored "
                    "'-----BEGIN PGP ...-----' block");
  }
  *out = all;
  *out_len = used;
  return 0;
}

/* ---- clearsigned messages ---------------------------------------------------------- */

static bool blank(const char *s, size_t n)
{
  return rtrim(s, n) == 0;
}

/* The "Hash: A,B" header values, appended comma-separated to cs->hash_header. Other
 * headers are refused, as RFC 4880 7 allows only Hash (gpg refuses others too). */
static int clearsign_header(struct openpgp_clearsigned *cs, const char *s, size_t n,
                            struct verr *err)
{
  n = rtrim(s, n);
  if (n < 6 || memcmp(s, "Hash: ", 6) != 0)
    return verr_set(err, VERR_FORMAT, "clearsigned message: unexpected armor header "
                    "'%.*s' (only 'Hash:' is allowed)", (int)(n > 40 ? 40 : n), s);
  size_t have = strlen(cs->hash_header);
  if (have + n - 6 + 2 > sizeof cs->hash_header)
    return verr_set(err, VERR_FORMAT, "clearsigned message: 'Hash:' header too long");
  if (have > 0)
    cs->hash_header[have++] = ',';
  memcpy(cs->hash_header + have, s + 6, n - 6);
  cs->hash_header[have + n - 6] = '\0';
  return 0;
}

/* Append one signed line: dash-escape removed, trailing whitespace removed (RFC 4880
 * 7.1: the signer hashed it so). */
static void clearsign_append(struct openpgp_clearsigned *cs, const char *s, size_t n)
{
  if (n >= 2 && s[0] == '-' && s[1] == ' ') {
    s += 2;
    n -= 2;
  }
  n = rtrim(s, n);
  memcpy(cs->text + cs->text_len, s, n);
  cs->text_len += n;
  cs->text[cs->text_len++] = '\n';
}

int openpgp_clearsign_parse(const char *msg, size_t len, struct openpgp_clearsigned *out,
                            struct verr *err)
{
  struct openpgp_clearsigned cs = { 0 };
  if (len > OPENPGP_MAX_INPUT)
    return verr_set(err, VERR_FORMAT, "clearsigned message larger than %u bytes",
                    OPENPGP_MAX_INPUT);
  size_t pos = 0;
  for (;;) { /* the BEGIN line; text before it is not signed */
    if (pos >= len)
      return verr_set(err, VERR_FORMAT, "not a clearsigned message: no '-----BEGIN PGP "
                      "SIGNED MESSAGE-----' line; give the detached signature's URL");
    size_t n, next = line_at(msg, len, pos, &n);
    bool begin = line_is(msg + pos, n, "-----BEGIN PGP SIGNED MESSAGE-----");
    if (!begin && !blank(msg + pos, n))
      cs.text_outside = true;
    pos = next;
    if (begin)
      break;
  }
  for (;;) { /* headers up to a blank line */
    if (pos >= len)
      return verr_set(err, VERR_FORMAT, "clearsigned message: truncated in its headers");
    size_t n, next = line_at(msg, len, pos, &n);
    if (blank(msg + pos, n)) {
      pos = next;
      break;
    }
    if (clearsign_header(&cs, msg + pos, n, err) == -1)
      return -1;
    pos = next;
  }
  /* every line gains a '\n' (the last may have had none), then a NUL */
  cs.text = malloc(len - pos + 2);
  if (cs.text == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  size_t sig_at = len;
  while (pos < len) {
    size_t n, next = line_at(msg, len, pos, &n);
    if (line_is(msg + pos, n, "-----BEGIN PGP SIGNATURE-----")) {
      sig_at = pos;
      break;
    }
    clearsign_append(&cs, msg + pos, n);
    pos = next;
  }
  cs.text[cs.text_len] = '\0';
  size_t end = 0;
  int r = sig_at < len ? openpgp_armor_decode(msg + sig_at, len - sig_at, "PGP SIGNATURE",
                                              &cs.sig, &cs.sig_len, &end, err) : 0;
  if (r <= 0) {
    free(cs.text);
    if (r == 0)
      verr_set(err, VERR_FORMAT, "clearsigned message: no '-----BEGIN PGP "
               "SIGNATURE-----' block after the text; the file is truncated");
    return -1;
  }
  for (pos = sig_at + end; pos < len;) {
    size_t n, next = line_at(msg, len, pos, &n);
    if (!blank(msg + pos, n))
      cs.text_outside = true;
    pos = next;
  }
  *out = cs;
  return 0;
}

void openpgp_clearsigned_free(struct openpgp_clearsigned *cs)
{
  if (cs == NULL)
    return;
  free(cs->text);
  free(cs->sig);
  cs->text = NULL;
  cs->sig = NULL;
}
