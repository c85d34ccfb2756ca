/* vimport registry: WWW-Authenticate challenges (RFC 9110 11.6.1) and token answers
 * (the distribution token spec). Pure functions over untrusted bytes. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "json/json.h"
#include "registry.h"

struct cursor {
  const char *p;
  size_t len, pos;
};

static bool is_tchar(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void skip_ows(struct cursor *c)
{
  while (c->pos < c->len && (c->p[c->pos] == ' ' || c->p[c->pos] == '\t'))
    c->pos++;
}

/* A token; returns its length (0: none). */
static size_t token(struct cursor *c, const char **start)
{
  *start = c->p + c->pos;
  size_t n = 0;
  while (c->pos < c->len && is_tchar(c->p[c->pos]))
    c->pos++, n++;
  return n;
}

/* A token68 value may end in '=' padding: take it with the token. */
static size_t token68_tail(struct cursor *c)
{
  size_t n = 0;
  while (c->pos < c->len && (c->p[c->pos] == '=' || c->p[c->pos] == '/'))
    c->pos++, n++;
  return n;
}

/* A quoted-string into out (unescaped, cut to size - 1). -1 if it is not closed. */
static int quoted(struct cursor *c, char *out, size_t size)
{
  size_t n = 0;
  c->pos++; /* the quote */
  while (c->pos < c->len && c->p[c->pos] != '"') {
    if (c->p[c->pos] == '\\' && ++c->pos == c->len)
      return -1;
    if (n + 1 < size)
      out[n++] = c->p[c->pos];
    c->pos++;
  }
  if (c->pos == c->len)
    return -1;
  c->pos++;
  out[n] = '\0';
  return 0;
}

static void set_param(struct registry_challenge *ch, const char *name, size_t nlen,
                      const char *value)
{
  char *slot = NULL;
  size_t size = 0;
  if (nlen == 5 && strncasecmp(name, "realm", 5) == 0)
    slot = ch->realm, size = sizeof ch->realm;
  else if (nlen == 7 && strncasecmp(name, "service", 7) == 0)
    slot = ch->service, size = sizeof ch->service;
  else if (nlen == 5 && strncasecmp(name, "scope", 5) == 0)
    slot = ch->scope, size = sizeof ch->scope;
  if (slot != NULL)
    snprintf(slot, size, "%s", value);
}

/* One auth-param "name=value" at c. Returns 1 if read, 0 if what follows is not a
 * param (the next challenge's scheme), -1 if malformed. */
static int param(struct cursor *c, struct registry_challenge *ch)
{
  size_t save = c->pos;
  const char *name;
  size_t nlen = token(c, &name);
  skip_ows(c);
  if (nlen == 0 || c->pos >= c->len || c->p[c->pos] != '=') {
    c->pos = save;
    return nlen == 0 ? -1 : 0;
  }
  c->pos++;
  skip_ows(c);
  if (c->pos >= c->len || c->p[c->pos] == '=' || c->p[c->pos] == ',') {
    /* not a param: a token68 ("abc==") after a scheme vimport does not use */
    while (c->pos < c->len && c->p[c->pos] == '=')
      c->pos++;
    return 1;
  }
  char value[1024];
  if (c->pos < c->len && c->p[c->pos] == '"') {
    if (quoted(c, value, sizeof value) < 0)
      return -1;
  } else {
    const char *v;
    size_t vlen = token(c, &v);
    if (vlen == 0)
      return -1;
    snprintf(value, sizeof value, "%.*s", (int)vlen, v);
  }
  set_param(ch, name, nlen, value);
  return 1;
}

/* The params of one challenge, up to the next challenge or the end. */
static int params(struct cursor *c, struct registry_challenge *ch)
{
  for (;;) {
    skip_ows(c);
    while (c->pos < c->len && c->p[c->pos] == ',') {
      c->pos++;
      skip_ows(c);
    }
    if (c->pos >= c->len)
      return 0;
    int r = param(c, ch);
    if (r <= 0)
      return r;
  }
}

static bool realm_valid(const char *realm)
{
  return strncmp(realm, "https://", 8) == 0 || strncmp(realm, "http://", 7) == 0;
}

int registry_parse_challenge(const char *value, size_t len, struct registry_challenge *out,
                             struct verr *err)
{
  struct cursor c = { value, len, 0 };
  for (;;) {
    *out = (struct registry_challenge){ 0 };
    skip_ows(&c);
    while (c.pos < c.len && (c.p[c.pos] == ',' || c.p[c.pos] == ' '))
      c.pos++;
    if (c.pos >= c.len)
      break;
    const char *scheme;
    size_t slen = token(&c, &scheme);
    if (slen == 0)
      break;
    token68_tail(&c);
    if (slen == 6 && strncasecmp(scheme, "Bearer", 6) == 0)
      out->scheme = REGISTRY_AUTH_BEARER;
    else if (slen == 5 && strncasecmp(scheme, "Basic", 5) == 0)
      out->scheme = REGISTRY_AUTH_BASIC;
    if (params(&c, out) < 0)
      break;
    if (out->scheme == REGISTRY_AUTH_BEARER && !realm_valid(out->realm))
      return verr_set(err, VERR_SOURCE, "the registry asks for a bearer token but its "
                      "WWW-Authenticate challenge names no http(s) realm to get it from");
    if (out->scheme != REGISTRY_AUTH_NONE)
      return 0;
  }
  *out = (struct registry_challenge){ 0 };
  return verr_set(err, VERR_SOURCE, "the registry's WWW-Authenticate header offers neither "
                  "Basic nor Bearer authentication in a form vimport reads");
}

int registry_parse_token(const void *body, size_t len, char *out, size_t size, struct verr *err)
{
  struct json_value *doc;
  struct json_limits lim = { .max_bytes = 1u << 20, .max_depth = 8 };
  if (json_parse(body, len, &lim, &doc, err) < 0)
    return verr_prefix(err, "the registry's token endpoint answered");
  const char *tok = json_str(json_get(doc, "token"));
  if (tok == NULL || *tok == '\0')
    tok = json_str(json_get(doc, "access_token"));
  int r = 0;
  if (tok == NULL || *tok == '\0')
    r = verr_set(err, VERR_SOURCE, "the registry's token endpoint answered without a token");
  else if (strlen(tok) >= size)
    r = verr_set(err, VERR_SOURCE, "the registry's token is longer than %zu bytes", size - 1);
  for (const char *p = tok; r == 0 && *p; p++)
    if (*p < 0x21 || *p > 0x7e)
      r = verr_set(err, VERR_SOURCE, "the registry's token holds a character a header "
                   "cannot carry");
  if (r == 0)
    snprintf(out, size, "%s", tok);
  if (tok != NULL) /* the document's copy of the secret */
    explicit_bzero((char *)tok, strlen(tok));
  json_free(doc);
  return r;
}
