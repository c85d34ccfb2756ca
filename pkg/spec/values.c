/* vimport spec: parsers for single values (quantities, checksums, block hashes, booleans,
 * names, URLs), shared by the YAML and environment loaders. No allocation here. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "spec-internal.h"
#include "spec.h"

/* ---- Kubernetes quantities ---------------------------------------------------------- */

struct quantity_suffix {
  const char *text;
  unsigned base;  /* 10 or 1024 */
  int power;      /* multiplier is base^power */
};

static const struct quantity_suffix quantity_suffixes[] = {
  { "",   10,   0 }, { "m",  10,  -3 },
  { "k",  10,   3 }, { "M",  10,   6 }, { "G",  10,   9 },
  { "T",  10,  12 }, { "P",  10,  15 }, { "E",  10,  18 },
  { "Ki", 1024, 1 }, { "Mi", 1024, 2 }, { "Gi", 1024, 3 },
  { "Ti", 1024, 4 }, { "Pi", 1024, 5 }, { "Ei", 1024, 6 },
};

#define QUANTITY_HINT "give a whole number of bytes such as 1073741824, 10Gi or 1.5G"

static int quantity_error(struct verr *err, const char *s, const char *why)
{
  return verr_set(err, VERR_USAGE, "quantity \"%.64s\": %s; %s", s, why, QUANTITY_HINT);
}

/* n = n * 10 + digit, or -1 when that does not fit. */
static int append_digit(uint64_t *n, char digit)
{
  unsigned d = (unsigned)(digit - '0');
  if (*n > UINT64_MAX / 10 || (*n == UINT64_MAX / 10 && d > UINT64_MAX % 10))
    return -1;
  *n = *n * 10 + d;
  return 0;
}

static int mul_pow10(uint64_t *n, int times)
{
  for (int i = 0; i < times && *n != 0; i++) {
    if (*n > UINT64_MAX / 10)
      return -1;
    *n *= 10;
  }
  return 0;
}

static int div_pow10_exact(uint64_t *n, int times)
{
  for (int i = 0; i < times && *n != 0; i++) {
    if (*n % 10 != 0)
      return -1;
    *n /= 10;
  }
  return 0;
}

/* "e<n>" or "E<n>" with an optional sign; saturates |n| at 1000, which already
 * overflows (or underflows to a fraction) any nonzero mantissa. */
static bool parse_exponent(const char *p, int *exp)
{
  if (*p != 'e' && *p != 'E')
    return false;
  p++;
  int sign = 1;
  if (*p == '+' || *p == '-')
    sign = *p++ == '-' ? -1 : 1;
  if (!isdigit((unsigned char)*p))
    return false;
  int v = 0;
  for (; isdigit((unsigned char)*p); p++)
    if (v < 1000)
      v = v * 10 + (*p - '0');
  if (*p != '\0')
    return false;
  *exp = sign * (v > 1000 ? 1000 : v);
  return true;
}

static const struct quantity_suffix *find_suffix(const char *p)
{
  for (size_t i = 0; i < sizeof quantity_suffixes / sizeof quantity_suffixes[0]; i++)
    if (strcmp(p, quantity_suffixes[i].text) == 0)
      return &quantity_suffixes[i];
  return NULL;
}

/* mantissa * 1024^power / 10^frac_digits, exactly. */
static int scale_binary(uint64_t *n, int power, int frac_digits)
{
  for (int i = 0; i < frac_digits; i++) {
    if (*n % 5 != 0)
      return -1;
    *n /= 5;
  }
  int shift = 10 * power - frac_digits;
  if (*n == 0)
    return 0;
  if (shift >= 0) {
    if (shift >= 64 || *n > (UINT64_MAX >> shift))
      return -2;
    *n <<= shift;
    return 0;
  }
  uint64_t mask = (UINT64_C(1) << -shift) - 1; /* -shift <= 20: frac_digits <= 20 */
  if ((*n & mask) != 0)
    return -1;
  *n >>= -shift;
  return 0;
}

int spec_parse_quantity(const char *s, uint64_t *bytes, struct verr *err)
{
  if (s == NULL || *s == '\0')
    return verr_set(err, VERR_USAGE, "empty quantity; %s", QUANTITY_HINT);
  if (*s == '-')
    return quantity_error(err, s, "negative sizes are not allowed");
  if (*s == '+')
    return quantity_error(err, s, "drop the sign");

  /* Mantissa: integer digits, optional fraction, trailing fraction zeros ignored. */
  const char *p = s;
  uint64_t n = 0;
  int digits = 0, frac_digits = 0, pending_zeros = 0;
  bool overflow = false;
  for (; isdigit((unsigned char)*p); p++, digits++)
    overflow |= append_digit(&n, *p) == -1;
  if (*p == '.') {
    for (p++; isdigit((unsigned char)*p); p++, digits++) {
      if (*p == '0') {
        pending_zeros++;
        continue;
      }
      for (; pending_zeros > 0; pending_zeros--, frac_digits++)
        overflow |= mul_pow10(&n, 1) == -1;
      overflow |= append_digit(&n, *p) == -1;
      frac_digits++;
    }
  }
  if (digits == 0)
    return quantity_error(err, s, "no digits");
  if (overflow)
    return quantity_error(err, s, "too many digits to be exact in 64 bits");

  int exponent = 0;
  const struct quantity_suffix *suffix = find_suffix(p);
  if (suffix == NULL && !parse_exponent(p, &exponent)) {
    if (isspace((unsigned char)*p))
      return quantity_error(err, s, "spaces are not allowed");
    return verr_set(err, VERR_USAGE,
                    "quantity \"%.64s\": unknown suffix \"%.16s\"; use k M G T P E (powers of "
                    "1000), Ki Mi Gi Ti Pi Ei (powers of 1024) or an exponent such as 1e9",
                    s, p);
  }

  int rc;
  if (suffix != NULL && suffix->base == 1024) {
    rc = scale_binary(&n, suffix->power, frac_digits);
  } else {
    int power = (suffix != NULL ? suffix->power : exponent) - frac_digits;
    rc = power >= 0 ? (mul_pow10(&n, power) == 0 ? 0 : -2) : div_pow10_exact(&n, -power);
  }
  if (rc == -1)
    return quantity_error(err, s, "not a whole number of bytes");
  if (rc == -2)
    return quantity_error(err, s, "larger than 2^64-1 bytes");
  *bytes = n;
  return 0;
}

/* ---- Checksums ---------------------------------------------------------------------- */

struct checksum_alg_info {
  enum spec_checksum_alg alg;
  const char *name;
  size_t hex_len;
};

static const struct checksum_alg_info checksum_algs[] = {
  { SPEC_CHECKSUM_MD5,    "md5",    32 },
  { SPEC_CHECKSUM_SHA1,   "sha1",   40 },
  { SPEC_CHECKSUM_SHA256, "sha256", 64 },
  { SPEC_CHECKSUM_SHA512, "sha512", 128 },
};

const char *spec_checksum_alg_name(enum spec_checksum_alg alg)
{
  for (size_t i = 0; i < sizeof checksum_algs / sizeof checksum_algs[0]; i++)
    if (checksum_algs[i].alg == alg)
      return checksum_algs[i].name;
  return "none";
}

/* Lowercase copy of `len` hex digits into out (len+1 bytes); -1 on a non-hex digit. */
static int copy_hex_lower(const char *hex, size_t len, char *out)
{
  for (size_t i = 0; i < len; i++) {
    if (!isxdigit((unsigned char)hex[i]))
      return -1;
    out[i] = (char)tolower((unsigned char)hex[i]);
  }
  out[len] = '\0';
  return 0;
}

int spec_parse_checksum(const char *s, struct spec_checksum *out, struct verr *err)
{
  const char *colon = strchr(s, ':');
  if (colon == NULL)
    return verr_set(err, VERR_USAGE,
                    "checksum \"%.40s\" has no algorithm; write it as <algorithm>:<hex>, "
                    "e.g. sha256:<64 hex digits>", s);
  size_t name_len = (size_t)(colon - s);
  const char *hex = colon + 1;
  for (size_t i = 0; i < sizeof checksum_algs / sizeof checksum_algs[0]; i++) {
    const struct checksum_alg_info *a = &checksum_algs[i];
    if (strlen(a->name) != name_len || strncmp(s, a->name, name_len) != 0)
      continue;
    if (strlen(hex) != a->hex_len)
      return verr_set(err, VERR_USAGE,
                      "checksum %s: expected %zu hex digits, got %zu; copy the whole digest",
                      a->name, a->hex_len, strlen(hex));
    if (copy_hex_lower(hex, a->hex_len, out->hex) == -1)
      return verr_set(err, VERR_USAGE,
                      "checksum %s: the digest holds a character that is not a hex digit",
                      a->name);
    out->alg = a->alg;
    return 0;
  }
  return verr_set(err, VERR_USAGE,
                  "checksum algorithm \"%.*s\" is not supported; use md5, sha1, sha256 or sha512",
                  (int)(name_len > 32 ? 32 : name_len), s);
}

/* ---- Expected block hash ------------------------------------------------------------ */

static int hex_to_bytes(const char *hex, size_t n_bytes, unsigned char *out)
{
  for (size_t i = 0; i < n_bytes; i++) {
    char pair[3] = { hex[2 * i], hex[2 * i + 1], '\0' };
    out[i] = (unsigned char)strtoul(pair, NULL, 16);
  }
  return 0;
}

int spec_parse_block_hash(const char *s, struct spec_block_hash *bh, struct verr *err)
{
  const char *colon = strchr(s, ':');
  if (colon == NULL || colon == s)
    return verr_set(err, VERR_USAGE,
                    "block hash \"%.40s\": write it as <digest>:<hex>, e.g. sha256:<64 hex "
                    "digits> as printed by `vimport sum` or `blksum`", s);
  char name[64];
  size_t name_len = (size_t)(colon - s);
  if (name_len >= sizeof name)
    return verr_set(err, VERR_USAGE, "block hash digest name is too long; use e.g. sha256");
  for (size_t i = 0; i < name_len; i++)
    name[i] = (char)tolower((unsigned char)s[i]);
  name[name_len] = '\0';

  const EVP_MD *md = EVP_get_digestbyname(name);
  if (md == NULL)
    return verr_set(err, VERR_USAGE,
                    "block hash digest \"%s\" is unknown to OpenSSL; use a name from "
                    "`openssl list -digest-algorithms`, e.g. sha256", name);
  int md_size = EVP_MD_size(md);
  if (md_size <= 0 || (size_t)md_size > sizeof bh->expected)
    return verr_set(err, VERR_USAGE, "block hash digest \"%s\" has no usable fixed size; "
                    "use e.g. sha256", name);
  const char *hex = colon + 1;
  size_t want = 2 * (size_t)md_size;
  if (strlen(hex) != want)
    return verr_set(err, VERR_USAGE,
                    "block hash %s: expected %zu hex digits, got %zu; copy the whole digest",
                    name, want, strlen(hex));
  char lower[sizeof bh->expected_hex];
  if (copy_hex_lower(hex, want, lower) == -1)
    return verr_set(err, VERR_USAGE,
                    "block hash %s: the digest holds a character that is not a hex digit", name);
  if (spec_set_string(&bh->digest, name, name_len, err) == -1)
    return -1;
  memcpy(bh->expected_hex, lower, want + 1);
  hex_to_bytes(lower, (size_t)md_size, bh->expected);
  bh->expected_len = (unsigned)md_size;
  bh->has_expected = true;
  return 0;
}

/* ---- Small validators ---------------------------------------------------------------- */

int spec_parse_bool(const char *s, bool *out)
{
  static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
  static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcmp(s, yes[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcmp(s, no[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  return -1;
}

bool spec_valid_object_name(const char *s)
{
  size_t len = strlen(s);
  if (len == 0 || len > 253)
    return false;
  if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
    return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    bool ok = (c >= 'a' && c <= 'z') || isdigit(c) || c == '-' || c == '.';
    if (!ok || (c == '.' && s[i + 1] == '.'))
      return false;
  }
  return true;
}

bool spec_valid_http_url(const char *url)
{
  const char *host;
  if (strncasecmp(url, "http://", 7) == 0)
    host = url + 7;
  else if (strncasecmp(url, "https://", 8) == 0)
    host = url + 8;
  else
    return false;
  if (*host == '\0' || *host == '/')
    return false;
  for (const char *p = url; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      return false;
  return true;
}

bool spec_valid_block_size(uint64_t size)
{
  return size >= 512 && size <= 64u * 1024 * 1024 && (size & (size - 1)) == 0;
}

bool spec_format_known(const char *name)
{
  /* Formats the sniff stage names. Extend here when a decoder learns a new one. */
  static const char *const formats[] = { "raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx", "qed" };
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
    if (strcmp(name, formats[i]) == 0)
      return true;
  return false;
}
