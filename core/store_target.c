/* store_target.c: what the db option names (a SQLite path or a PostgreSQL
 * URI) and how it is shown: never with its password. */
#include <stdio.h>
#include <string.h>
#include "store.h"

int store_target_is_uri(const char *t) {
  return t && (strncmp(t, "postgresql://", 13) == 0 || strncmp(t, "postgres://", 11) == 0);
}

/* Copies target with "***" for its password: the URI's userinfo password
 * (user:secret@host) and any password= query parameter. Paths are copied
 * as they are. */
void store_redact(const char *t, char *out, size_t outn) {
  if (!outn) return;
  out[0] = 0;
  if (!t) return;
  if (!store_target_is_uri(t)) { snprintf(out, outn, "%s", t); return; }
  size_t n = 0;
#define PUT(ch) do { if (n + 1 < outn) out[n++] = (ch); } while (0)
  const char *p = strstr(t, "://") + 3;
  for (const char *q = t; q < p; q++) PUT(*q);
  /* the authority ends at the first '/', '?' or '#'; userinfo at its last '@' */
  size_t alen = strcspn(p, "/?#");
  const char *at = NULL;
  for (const char *q = p; q < p + alen; q++) if (*q == '@') at = q;
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    for (const char *q = p; q < (colon ? colon : at); q++) PUT(*q);
    if (colon) { PUT(':'); PUT('*'); PUT('*'); PUT('*'); }
    p = at;
  }
  /* the rest; a password= parameter's value is replaced */
  for (const char *q = p; *q;) {
    if ((*q == '?' || *q == '&') && strncmp(q + 1, "password=", 9) == 0) {
      for (int k = 0; k < 10; k++) PUT(q[k]);
      PUT('*'); PUT('*'); PUT('*');
      q += 10;
      while (*q && *q != '&' && *q != '#') q++;
      continue;
    }
    PUT(*q);
    q++;
  }
#undef PUT
  out[n] = 0;
}
