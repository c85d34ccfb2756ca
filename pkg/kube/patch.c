/* kube: the pure parts: names, paths, CDI's JSON patch, annotation lookup (kube.h). */
#include "kube/kube.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63. */
static bool dns_label(const char *s, size_t n)
{
  if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
      return false;
  return true;
}

/* DNS-1123 subdomain: labels joined by '.', at most 253. */
static bool dns_subdomain(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > 253)
    return false;
  for (const char *p = s;;) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    if (!dns_label(p, len))
      return false;
    if (dot == NULL)
      return true;
    p = dot + 1;
  }
}

int kube_dataimportcron_path(const char *ns, const char *name, char *out, size_t size,
                             struct verr *err)
{
  if (!dns_label(ns, strlen(ns)))
    return verr_set(err, VERR_USAGE, "namespace \"%.64s\" is not a DNS-1123 label (lowercase "
                    "letters, digits and '-', at most 63)", ns);
  if (!dns_subdomain(name))
    return verr_set(err, VERR_USAGE, "DataImportCron name \"%.64s\" is not a DNS-1123 "
                    "subdomain (lowercase letters, digits, '-' and '.', at most 253)", name);
  int n = snprintf(out, size, "/apis/cdi.kubevirt.io/v1beta1/namespaces/%s/dataimportcrons/%s",
                   ns, name);
  if (n < 0 || (size_t)n >= size)
    return verr_set(err, VERR_USAGE, "the DataImportCron's API path is too long");
  return 0;
}

/* Append the characters of s as Go's json.Marshal writes them inside a string
 * (HTML-safe escaping); with `pointer`, first as a JSON pointer token (RFC 6901,
 * openapicommon.EscapeJsonPointer), whose "~0" and "~1" need no JSON escape. */
static void go_json_chars(FILE *f, const char *s, bool pointer)
{
  static const char hex[] = "0123456789abcdef";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (pointer && *p == '~')
      fputs("~0", f); /* RFC 6901, as openapicommon.EscapeJsonPointer */
    else if (pointer && *p == '/')
      fputs("~1", f);
    else if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p == '\n')
      fputs("\\n", f);
    else if (*p == '\r')
      fputs("\\r", f);
    else if (*p == '\t')
      fputs("\\t", f);
    else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&')
      fprintf(f, "\\u00%c%c", hex[*p >> 4], hex[*p & 15]);
    else if (*p == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
      fprintf(f, "\\u202%c", p[2] == 0xa8 ? '8' : '9'), p += 2;
    else
      fputc(*p, f);
  }
}

char *kube_annotation_patch(const struct kube_annotation *ops, size_t n)
{
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  if (f == NULL)
    return NULL;
  fputc('[', f);
  for (size_t i = 0; i < n; i++) {
    fputs(i ? ",{\"op\":\"add\",\"path\":\"/metadata/annotations/"
            : "{\"op\":\"add\",\"path\":\"/metadata/annotations/", f);
    go_json_chars(f, ops[i].key, true);
    fputs("\",\"value\":\"", f);
    go_json_chars(f, ops[i].value, false);
    fputs("\"}", f);
  }
  fputc(']', f);
  if (fclose(f) != 0) {
    free(text);
    return NULL;
  }
  return text;
}

const char *kube_annotation(const struct json_value *doc, const char *key)
{
  return json_str(json_get(json_get(json_get(doc, "metadata"), "annotations"), key));
}
