/* errors.c: the stable error codes (the one table of their names) and error
 * JSON built in C, for failures that happen before or outside Lua. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"

/* Every mcpl_code by its value. Engine Lua's errors.lua takes its list from
 * here (core.error_codes()); the Python binding's tests check theirs against
 * it (mcpl_code_name). */
static const char *const code_names[] = {
  [MCPL_OK] = "ok",
  [MCPL_E_INVALID_ARGUMENT] = "invalid_argument",
  [MCPL_E_NOT_FOUND] = "not_found",
  [MCPL_E_FORBIDDEN] = "forbidden",
  [MCPL_E_CONFLICT] = "conflict",
  [MCPL_E_URL_BLOCKED] = "url_blocked",
  [MCPL_E_UNAUTHORIZED] = "unauthorized",
  [MCPL_E_USER_NOT_AUTHENTICATED] = "user_not_authenticated",
  [MCPL_E_UPSTREAM_ERROR] = "upstream_error",
  [MCPL_E_TIMEOUT] = "timeout",
  [MCPL_E_TOO_LARGE] = "too_large",
  [MCPL_E_KEY_UNAVAILABLE] = "key_unavailable",
  [MCPL_E_INTERNAL] = "internal",
  [MCPL_E_UNAVAILABLE] = "unavailable",
};
/* A code added to mcplink.h without its name here (or the reverse) does not
 * compile. */
_Static_assert(sizeof code_names / sizeof code_names[0] == MCPL_CODE_COUNT,
               "every mcpl_code has its name in code_names");

const char *mcpl_code_name(int code) {
  if (code < 0 || code >= MCPL_CODE_COUNT) return "internal";
  return code_names[code];
}

int mcpl_code_from_name(const char *name) {
  if (!name) return MCPL_E_INTERNAL;
  for (int i = 0; i < MCPL_CODE_COUNT; i++)
    if (strcmp(code_names[i], name) == 0) return i;
  return MCPL_E_INTERNAL;
}

/* ---- error JSON built in C (when Lua could not build it) -------------- */

static void json_escape_into(char *out, size_t *n, const char *s) {
  static const char hex[] = "0123456789abcdef";
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') { out[(*n)++] = '\\'; out[(*n)++] = (char)c; }
    else if (c < 0x20) {
      out[(*n)++] = '\\'; out[(*n)++] = 'u'; out[(*n)++] = '0'; out[(*n)++] = '0';
      out[(*n)++] = hex[c >> 4]; out[(*n)++] = hex[c & 15];
    } else out[(*n)++] = (char)c;
  }
}

static char *json_error(const char *code, const char *message, const char *field,
                        const char *reason) {
  size_t need = 80 + 6 * (strlen(code ? code : "") + strlen(message ? message : "") +
                          strlen(field ? field : "") + strlen(reason ? reason : ""));
  char *out = malloc(need);
  if (!out) return NULL;
  size_t n = 0;
  n += (size_t)sprintf(out, "{\"error\":{\"code\":\"");
  json_escape_into(out, &n, code ? code : "internal");
  memcpy(out + n, "\",\"message\":\"", 13); n += 13;
  json_escape_into(out, &n, message ? message : "");
  out[n++] = '"';
  if (field) {
    memcpy(out + n, ",\"field\":\"", 10); n += 10;
    json_escape_into(out, &n, field);
    out[n++] = '"';
  }
  if (reason) {
    memcpy(out + n, ",\"reason\":\"", 11); n += 11;
    json_escape_into(out, &n, reason);
    out[n++] = '"';
  }
  memcpy(out + n, "}}", 3);
  return out;
}

char *mcpl_json_error(const char *code, const char *message, const char *field) {
  return json_error(code, message, field, NULL);
}

char *mcpl_json_error_reason(const char *code, const char *message, const char *reason) {
  return json_error(code, message, NULL, reason);
}
