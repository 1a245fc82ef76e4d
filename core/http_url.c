/* http_url.c: URL parsing for outbound requests with libcurl's URL API.
 * Refuses what could make the judged URL differ from the fetched one. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http.h"

#define URL_MAX 8192

static void fail(char *reason, size_t rn, const char *r, char *msg, size_t mn, const char *m) {
  if (reason && rn) snprintf(reason, rn, "%s", r);
  if (msg && mn) snprintf(msg, mn, "%s", m);
}

/* Checks on the raw text, before any parser sees it: parsers disagree about
 * NULs, backslashes, whitespace and raw non-ASCII, so none of them pass. */
static int raw_ok(const char *s, size_t len, char *reason, size_t rn, char *msg, size_t mn) {
  if (len == 0 || len > URL_MAX) {
    fail(reason, rn, "invalid_url", msg, mn, len ? "URL is too long" : "URL is empty");
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == 0) { fail(reason, rn, "invalid_url", msg, mn, "URL contains a NUL byte"); return 0; }
    if (c == '\\') { fail(reason, rn, "invalid_url", msg, mn, "URL contains a backslash"); return 0; }
    if (c <= 0x20 || c >= 0x7f) {
      fail(reason, rn, "invalid_url", msg, mn,
           "URL contains whitespace, control or non-ASCII characters (percent-encode them, punycode for hosts)");
      return 0;
    }
  }
  return 1;
}

/* The scheme, lower-cased into buf; 0 when the text has none. */
static int scheme_of(const char *s, size_t len, char *buf, size_t n) {
  size_t i = 0;
  if (len == 0 || !isalpha((unsigned char)s[0])) return 0;
  while (i < len && i + 1 < n &&
         (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')) {
    buf[i] = (char)tolower((unsigned char)s[i]);
    i++;
  }
  if (i >= len || s[i] != ':') return 0;
  buf[i] = 0;
  return 1;
}

void http_url_free(http_url *u) {
  if (!u) return;
  if (u->h) curl_url_cleanup(u->h);
  curl_free(u->text);
  curl_free(u->scheme);
  free(u->host);
  curl_free(u->path);
  curl_free(u->query);
  free(u);
}

static int has_part(CURLU *h, CURLUPart p) {
  char *v = NULL;
  CURLUcode rc = curl_url_get(h, p, &v, 0);
  curl_free(v);
  return rc == CURLUE_OK;
}

/* Fills u from u->h; 0 or -1 with reason. */
static int fill(http_url *u, char *reason, size_t rn, char *msg, size_t mn) {
  char *host = NULL, *port = NULL;
  int rc = -1;
  if (has_part(u->h, CURLUPART_USER) || has_part(u->h, CURLUPART_PASSWORD) ||
      has_part(u->h, CURLUPART_OPTIONS)) {
    fail(reason, rn, "userinfo", msg, mn, "URL must not contain credentials (userinfo)");
    goto out;
  }
  if (has_part(u->h, CURLUPART_ZONEID)) {
    fail(reason, rn, "invalid_url", msg, mn, "URL must not contain an IPv6 zone id");
    goto out;
  }
  if (curl_url_get(u->h, CURLUPART_SCHEME, &u->scheme, 0) != CURLUE_OK ||
      (strcmp(u->scheme, "https") != 0 && strcmp(u->scheme, "http") != 0)) {
    fail(reason, rn, "scheme", msg, mn, "only https URLs are allowed");
    goto out;
  }
  if (curl_url_get(u->h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
    fail(reason, rn, "invalid_url", msg, mn, "URL has no host");
    goto out;
  }
  /* The fragment is never sent; drop it so the text is what goes out. */
  curl_url_set(u->h, CURLUPART_FRAGMENT, NULL, 0);
  if (curl_url_get(u->h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
      curl_url_get(u->h, CURLUPART_PATH, &u->path, 0) != CURLUE_OK ||
      curl_url_get(u->h, CURLUPART_URL, &u->text, 0) != CURLUE_OK) {
    fail(reason, rn, "invalid_url", msg, mn, "URL cannot be parsed");
    goto out;
  }
  if (curl_url_get(u->h, CURLUPART_QUERY, &u->query, 0) != CURLUE_OK) u->query = NULL;
  u->port = atoi(port);
  size_t hl = strlen(host);
  const char *hs = host;
  if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { hs++; hl -= 2; }
  if (hl > 1 && hs[hl - 1] == '.') hl--;
  u->host = malloc(hl + 1);
  if (!u->host) { fail(reason, rn, "invalid_url", msg, mn, "out of memory"); goto out; }
  for (size_t i = 0; i < hl; i++) u->host[i] = (char)tolower((unsigned char)hs[i]);
  u->host[hl] = 0;
  if (!*u->host || u->port <= 0 || u->port > 65535) {
    fail(reason, rn, "invalid_url", msg, mn, "URL has no usable host or port");
    goto out;
  }
  int zoned = 0;
  u->host_is_ip = addr_parse(u->host, &u->ip, &zoned) == 0;
  rc = 0;
out:
  curl_free(host);
  curl_free(port);
  return rc;
}

http_url *http_url_parse(const char *text, size_t len, char *reason, size_t rn, char *msg,
                         size_t mn) {
  char scheme[32], buf[URL_MAX + 1];
  if (!text || !raw_ok(text, len, reason, rn, msg, mn)) return NULL;
  if (!scheme_of(text, len, scheme, sizeof scheme)) {
    fail(reason, rn, "invalid_url", msg, mn, "not an absolute URL");
    return NULL;
  }
  if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
    fail(reason, rn, "scheme", msg, mn, "only https URLs are allowed");
    return NULL;
  }
  /* Belt and braces: an '@' anywhere in the authority is userinfo, whatever
   * a parser would make of it. */
  const char *auth = memchr(text, ':', len);
  if (auth && (size_t)(auth - text) + 3 <= len && auth[1] == '/' && auth[2] == '/') {
    for (const char *p = auth + 3; p < text + len && *p != '/' && *p != '?' && *p != '#'; p++)
      if (*p == '@') {
        fail(reason, rn, "userinfo", msg, mn, "URL must not contain credentials (userinfo)");
        return NULL;
      }
  } else {
    fail(reason, rn, "invalid_url", msg, mn, "URL must have the form scheme://host/...");
    return NULL;
  }
  /* libcurl is opened here, by the first URL any request needs */
  char why[512];
  if (dynlib_curl_ready(why, sizeof why) != 0) {
    fail(reason, rn, "unavailable", msg, mn, why);
    return NULL;
  }
  memcpy(buf, text, len);
  buf[len] = 0;
  http_url *u = calloc(1, sizeof *u);
  if (!u || !(u->h = curl_url())) {
    http_url_free(u);
    fail(reason, rn, "invalid_url", msg, mn, "out of memory");
    return NULL;
  }
  CURLUcode uc = curl_url_set(u->h, CURLUPART_URL, buf, 0);
  if (uc != CURLUE_OK) {
    char m[160];
    snprintf(m, sizeof m, "URL cannot be parsed: %s", curl_url_strerror(uc));
    fail(reason, rn, "invalid_url", msg, mn, m);
    http_url_free(u);
    return NULL;
  }
  if (fill(u, reason, rn, msg, mn) != 0) { http_url_free(u); return NULL; }
  return u;
}

http_url *http_url_join(const http_url *base, const char *ref, size_t len, char *reason,
                        size_t rn, char *msg, size_t mn) {
  char buf[URL_MAX + 1];
  char *joined = NULL;
  if (!base || !ref || !raw_ok(ref, len, reason, rn, msg, mn)) return NULL;
  memcpy(buf, ref, len);
  buf[len] = 0;
  CURLU *h = curl_url_dup(base->h);
  if (!h) { fail(reason, rn, "invalid_url", msg, mn, "out of memory"); return NULL; }
  CURLUcode uc = curl_url_set(h, CURLUPART_URL, buf, CURLU_NON_SUPPORT_SCHEME);
  if (uc == CURLUE_OK) uc = curl_url_get(h, CURLUPART_URL, &joined, 0);
  curl_url_cleanup(h);
  if (uc != CURLUE_OK) {
    char m[160];
    snprintf(m, sizeof m, "redirect target cannot be parsed: %s", curl_url_strerror(uc));
    fail(reason, rn, "invalid_url", msg, mn, m);
    return NULL;
  }
  /* The joined text goes through the full parse, so a redirect target
   * passes exactly the checks a caller's URL does. */
  http_url *u = http_url_parse(joined, strlen(joined), reason, rn, msg, mn);
  curl_free(joined);
  return u;
}

int http_url_same_origin(const http_url *a, const http_url *b) {
  return a && b && a->port == b->port && strcmp(a->scheme, b->scheme) == 0 &&
         strcmp(a->host, b->host) == 0;
}
