#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void verr_vset(struct verr *err, enum verr_code code, int sys_errno, const char *fmt,
                      va_list ap)
{
  err->code = code;
  err->sys_errno = sys_errno;
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  if (sys_errno != 0) {
    size_t used = strlen(err->message);
    snprintf(err->message + used, sizeof err->message - used, ": %s", strerror(sys_errno));
  }
}

int verr_set(struct verr *err, enum verr_code code, const char *fmt, ...)
{
  if (err == NULL)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  verr_vset(err, code, 0, fmt, ap);
  va_end(ap);
  return -1;
}

int verr_sys(struct verr *err, enum verr_code code, int sys_errno, const char *fmt, ...)
{
  if (err == NULL)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  verr_vset(err, code, sys_errno, fmt, ap);
  va_end(ap);
  return -1;
}

int verr_prefix(struct verr *err, const char *fmt, ...)
{
  if (err == NULL)
    return -1;
  char prefix[512];
  char old[sizeof err->message];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err->message, sizeof old);
  /* The prefix goes first; the old message keeps whatever room is left. */
  size_t used = strlen(prefix);
  if (used > sizeof err->message - 3)
    used = sizeof err->message - 3;
  memcpy(err->message, prefix, used);
  memcpy(err->message + used, ": ", 2);
  used += 2;
  size_t rest = strnlen(old, sizeof old);
  if (rest > sizeof err->message - 1 - used)
    rest = sizeof err->message - 1 - used;
  memcpy(err->message + used, old, rest);
  err->message[used + rest] = '\0';
  return -1;
}

const char *verr_code_name(enum verr_code code)
{
  static const char *const names[] = {
    [VERR_OK] = "ok",
    [VERR_USAGE] = "usage",
    [VERR_IO] = "io",
    [VERR_NOMEM] = "nomem",
    [VERR_SOURCE] = "source",
    [VERR_FORMAT] = "format",
    [VERR_CHECKSUM] = "checksum",
    [VERR_VERIFY] = "verify",
    [VERR_TARGET_TOO_SMALL] = "target-too-small",
    [VERR_SCRATCH_REQUIRED] = "scratch-required",
    [VERR_INTERNAL] = "internal",
    [VERR_CANCELLED] = "cancelled",
  };
  if ((size_t)code < sizeof names / sizeof names[0] && names[code] != NULL)
    return names[code];
  return "unknown";
}

void verr_redact_url(const char *url, char *out, size_t out_size)
{
  if (out_size == 0)
    return;
  const char *scheme_end = strstr(url, "://");
  const char *host = scheme_end ? scheme_end + 3 : url;
  size_t authority_len = strcspn(host, "/?#");
  const char *at = memchr(host, '@', authority_len);
  size_t query_at = strcspn(url, "?#");
  /* keep scheme://, drop "userinfo@", keep the rest up to the query */
  size_t head = (size_t)(host - url);
  const char *rest = at ? at + 1 : host;
  size_t rest_len = query_at > (size_t)(rest - url) ? query_at - (size_t)(rest - url) : 0;
  snprintf(out, out_size, "%.*s%.*s%s", (int)head, url, (int)rest_len, rest,
           url[query_at] == '?' ? "?<redacted>" : "");
}
