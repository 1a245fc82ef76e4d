/* bind_json.c: the Lua `json` module, decoder and encoder both ours, so empty
 * arrays, integers and key order survive a round trip. */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <locale.h>
#include "engine.h"
#include "fmt.h"

#define JSON_MAX_DEPTH 200
#define ARRAY_MT "mcpl.json.array"
#define OBJECT_MT "mcpl.json.object"
#define JBUF_MT "mcpl.json.buffer"
#define LAZY_MT "mcpl.json.lazy"

/* Every function of the module holds the two marks as upvalues 1 and 2 (and
 * the lazy arrays' metatable as 3): no registry lookup by name per table. */
#define UV_ARRAY lua_upvalueindex(1)
#define UV_OBJECT lua_upvalueindex(2)
#define UV_LAZY lua_upvalueindex(3)

/* ---- output buffers ------------------------------------------------------ */

typedef struct {
  char *p;
  size_t n, cap;
} jbuf;

/* room for more bytes: the check inline (every comma and brace asks), the
 * growth out of line */
static void jb_grow(lua_State *L, jbuf *b, size_t more) {
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->n + more) cap *= 2;
  if (cap > (size_t)512 * 1024 * 1024) mcpl_lua_error(L, "too_large", "JSON output too large");
  char *p = realloc(b->p, cap);
  if (!p) mcpl_lua_error(L, "internal", "out of memory encoding JSON");
  b->p = p;
  b->cap = cap;
}

static inline void jb_reserve(lua_State *L, jbuf *b, size_t more) {
  if (b->n + more > b->cap) jb_grow(L, b, more);
}

static inline void jb_add(lua_State *L, jbuf *b, const char *s, size_t n) {
  jb_reserve(L, b, n);
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static inline void jb_addc(lua_State *L, jbuf *b, char c) { jb_reserve(L, b, 1); b->p[b->n++] = c; }

/* ---- decode -------------------------------------------------------------
 * RFC 8259 text straight into Lua values: arrays (empty ones too) carry the
 * array mark, objects none; integers within 2^53 (also 1.0 or 1e2) become
 * Lua integers, other numbers floats; null is json.null. Strings are kept
 * as their bytes (\u escapes, surrogate pairs included, become UTF-8).
 * An integer of up to 18 digits is read exactly (ids past 2^53 survive).
 * Errors name the first offending byte. Nesting is bounded (JSON_MAX_DEPTH).
 *
 * Deferred arrays: json.decode(text, {lazy = {k1, k2, ...}}) checks the
 * whole text as usual (the same errors, at the same bytes), but an array
 * found under those object keys is not built: a lazy array stands in for it
 * (the text, kept alive as its user value, and the array's byte range).
 * json.items decodes its items one per step, so a long list's items become
 * garbage one by one instead of all existing at once (mcp.paging). With
 * {lazy = true} the text itself is the array (a stored list: no copy of it
 * under a key to be made). */

#define JSON_MAX_PATH 8

typedef struct {
  lua_State *L;
  const char *s, *p, *e;
  int depth;
  int array_mt; /* stack index of the array metatable */
  char point;   /* the C library's decimal point (strtod follows the locale) */
  int build;    /* 0: the text is only checked, nothing is pushed */
  /* the lazy path: how many of its keys lead to the value read next (-1:
   * none, off the path); its keys (anchored by json.decode's options) */
  int on_path, npath;
  int lazy_root; /* {lazy = true}: the value itself, an array, is left undecoded */
  const char *path[JSON_MAX_PATH];
  size_t pathn[JSON_MAX_PATH];
  int lazy_mt; /* stack index of the lazy array metatable */
  int text;    /* stack index of the text (a lazy array's user value) */
} jdec;

/* A lazy array: the bytes [open, close) of the text, '[' to ']' included. */
typedef struct {
  size_t open, close;
  int depth; /* the array's own nesting depth: its items start below it */
  char point; /* the decimal point when it was made (localeconv, asked once) */
  lua_Integer n;
} jlazy;

static int jd_fail(jdec *d, const char *what) {
  if (d->p >= d->e) return mcpl_lua_error(d->L, "invalid_argument", "invalid JSON: %s at the end of the text", what);
  return mcpl_lua_error(d->L, "invalid_argument", "invalid JSON: %s at byte %zu", what, (size_t)(d->p - d->s) + 1);
}

static void jd_ws(jdec *d) {
  while (d->p < d->e && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r')) d->p++;
}

static int jd_hex4(jdec *d) {
  if (d->e - d->p < 4) jd_fail(d, "a \\u escape needs four hex digits");
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = d->p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else jd_fail(d, "a \\u escape needs four hex digits");
  }
  d->p += 4;
  return v;
}

/* Where a string's decoded bytes go: a Lua buffer (json.decode), an output
 * buffer (json.canonical_items), or nowhere when only checking (NULL). */
typedef struct {
  luaL_Buffer *lb;
  jbuf *jb;
  lua_State *L;
} jsink;

static void jd_add(jsink *b, const char *s, size_t n) {
  if (!b) return;
  if (b->lb) luaL_addlstring(b->lb, s, n);
  else jb_add(b->L, b->jb, s, n);
}

static void jd_utf8(jsink *b, unsigned cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) { u[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { u[0] = (char)(0xC0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | cp >> 12); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    u[0] = (char)(0xF0 | cp >> 18); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  jd_add(b, u, n);
}

/* after a backslash's 'u': the code point of one \u escape or a pair */
static unsigned jd_unicode(jdec *d) {
  unsigned cp = (unsigned)jd_hex4(d);
  if (cp >= 0xDC00 && cp <= 0xDFFF) { d->p -= 6; jd_fail(d, "a \\u escape is a lone low surrogate"); }
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (d->e - d->p < 6 || d->p[0] != '\\' || d->p[1] != 'u') {
      d->p -= 6;
      jd_fail(d, "a high surrogate escape is not followed by a low one");
    }
    d->p += 2;
    unsigned lo = (unsigned)jd_hex4(d);
    if (lo < 0xDC00 || lo > 0xDFFF) { d->p -= 6; jd_fail(d, "a high surrogate escape is not followed by a low one"); }
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  return cp;
}

/* the rest of a string from its first backslash (at d->p; start: the
 * string's first byte), the closing quote included; the bytes go to b */
static void jd_escaped(jdec *d, const char *start, jsink *b) {
  jd_add(b, start, (size_t)(d->p - start));
  for (;;) {
    if (d->p >= d->e) jd_fail(d, "a string is not closed");
    char c = *d->p;
    if (c == '"') { d->p++; break; }
    if (c != '\\') {
      const char *run = d->p;
      while (d->p < d->e && *d->p != '"' && *d->p != '\\') d->p++;
      jd_add(b, run, (size_t)(d->p - run));
      continue;
    }
    if (++d->p >= d->e) jd_fail(d, "a string is not closed");
    c = *d->p++;
    switch (c) {
      case '"': jd_add(b, "\"", 1); break;
      case '\\': jd_add(b, "\\", 1); break;
      case '/': jd_add(b, "/", 1); break;
      case 'b': jd_add(b, "\b", 1); break;
      case 'f': jd_add(b, "\f", 1); break;
      case 'n': jd_add(b, "\n", 1); break;
      case 'r': jd_add(b, "\r", 1); break;
      case 't': jd_add(b, "\t", 1); break;
      case 'u': jd_utf8(b, jd_unicode(d)); break;
      default: d->p -= 2; jd_fail(d, "an unknown escape in a string");
    }
  }
}

/* at the opening quote: d->p past the string's plain start (at its closing
 * quote or first backslash); returns that start */
static const char *jd_plain(jdec *d) {
  const char *start = ++d->p;
  while (d->p < d->e && *d->p != '"' && *d->p != '\\') d->p++;
  if (d->p >= d->e) jd_fail(d, "a string is not closed");
  return start;
}

/* at the opening quote; pushes the string (when building) */
static void jd_string(jdec *d) {
  const char *start = jd_plain(d);
  if (*d->p == '"') { /* no escapes: the bytes as they are */
    if (d->build) lua_pushlstring(d->L, start, (size_t)(d->p - start));
    d->p++;
    return;
  }
  if (!d->build) { jd_escaped(d, start, NULL); return; }
  luaL_Buffer buf;
  luaL_buffinit(d->L, &buf);
  jsink b = {&buf, NULL, d->L};
  jd_escaped(d, start, &b);
  luaL_pushresult(&buf);
}

#define JD_DIGIT(c) ((c) >= '0' && (c) <= '9')

/* at a number: reads it as json.decode makes it, 1 and *iv for an integer
 * (integers within 2^53, also 1.0 or 1e2), 0 and *dv for a float */
static int jd_scan_number(jdec *d, long long *iv, double *dv) {
  const char *start = d->p;
  int neg = 0, frac = 0;
  if (*d->p == '-') { neg = 1; d->p++; }
  if (d->p >= d->e || !JD_DIGIT(*d->p)) jd_fail(d, "a number needs a digit");
  if (*d->p == '0') d->p++;
  else while (d->p < d->e && JD_DIGIT(*d->p)) d->p++;
  size_t ndigits = (size_t)(d->p - start) - (size_t)neg;
  if (d->p < d->e && *d->p == '.') {
    frac = 1;
    d->p++;
    if (d->p >= d->e || !JD_DIGIT(*d->p)) jd_fail(d, "a fraction needs a digit");
    while (d->p < d->e && JD_DIGIT(*d->p)) d->p++;
  }
  if (d->p < d->e && (*d->p == 'e' || *d->p == 'E')) {
    frac = 1;
    d->p++;
    if (d->p < d->e && (*d->p == '+' || *d->p == '-')) d->p++;
    if (d->p >= d->e || !JD_DIGIT(*d->p)) jd_fail(d, "an exponent needs a digit");
    while (d->p < d->e && JD_DIGIT(*d->p)) d->p++;
  }
  if (!frac && ndigits <= 18) { /* below 10^18 < 2^63: exact as an integer */
    long long v = 0;
    for (const char *q = start + neg; q < d->p; q++) v = v * 10 + (*q - '0');
    *iv = neg ? -v : v;
    return 1;
  }
  /* read even when only checking: a number out of range is an error */
  char buf[128];
  size_t n = (size_t)(d->p - start);
  double v;
  if (n < sizeof buf) {
    memcpy(buf, start, n);
    buf[n] = 0;
    if (d->point != '.') { char *dot = strchr(buf, '.'); if (dot) *dot = d->point; }
    v = strtod(buf, NULL);
  } else { /* a very long number: through a Lua string, NUL-terminated */
    lua_pushlstring(d->L, start, n);
    char *t = (char *)lua_tostring(d->L, -1);
    if (d->point != '.') { char *dot = strchr(t, '.'); if (dot) *dot = d->point; }
    v = strtod(t, NULL);
    lua_pop(d->L, 1);
  }
  if (!isfinite(v)) { d->p = start; jd_fail(d, "a number is out of range"); }
  if (v == floor(v) && fabs(v) <= 9007199254740992.0) { *iv = (long long)v; return 1; }
  *dv = v;
  return 0;
}

static void jd_number(jdec *d) {
  long long iv = 0;
  double dv = 0;
  int integer = jd_scan_number(d, &iv, &dv);
  if (!d->build) return;
  if (integer) lua_pushinteger(d->L, (lua_Integer)iv);
  else lua_pushnumber(d->L, dv);
}

static void jd_literal(jdec *d, const char *word, size_t n) {
  if ((size_t)(d->e - d->p) < n || memcmp(d->p, word, n) != 0) jd_fail(d, "expected a value");
  d->p += n;
}

static void jd_value(jdec *d);

/* on_path(d, at): the lazy path's level of the member whose name was just
 * pushed, in an object at level `at` of it (-1: off the path) */
static int jd_member_path(jdec *d, int at) {
  if (at < 0 || at >= d->npath || !d->build) return -1;
  size_t n;
  const char *k = lua_tolstring(d->L, -1, &n);
  return (n == d->pathn[at] && memcmp(k, d->path[at], n) == 0) ? at + 1 : -1;
}

/* A table made as its members come grows by rehashing at each power of
 * two (a 5-member object: 4 times). Members and items therefore wait on the
 * stack, up to JD_BATCH of them, and the table is made at its size when the
 * value ends; a longer one is made then, twice that size, and the rest are
 * set as they come. */
#define JD_BATCH 32

/* the table for the n pending members (or items) above slot, made with
 * room for size of them, put in slot */
static void jd_settle(jdec *d, int slot, int n, int size, int array) {
  lua_State *L = d->L;
  if (array) {
    lua_createtable(L, size, 0);
    lua_pushvalue(L, d->array_mt);
    lua_setmetatable(L, -2);
    for (int i = 1; i <= n; i++) {
      lua_pushvalue(L, slot + i);
      lua_rawseti(L, -2, i);
    }
  } else {
    lua_createtable(L, 0, size);
    for (int i = 0; i < n; i++) {
      lua_pushvalue(L, slot + 1 + 2 * i);
      lua_pushvalue(L, slot + 2 + 2 * i);
      lua_rawset(L, -3); /* a repeated name: the last one counts */
    }
  }
  lua_replace(L, slot);
  lua_settop(L, slot);
}

/* at the '{' or '[' of a value: one level deeper, room for the pending
 * members (or items) and the table's place on the stack when building; the
 * place's index (0 when only checking). *empty: the value closes at once
 * (its table, empty, is in place and the level is left). */
static inline int jd_open(jdec *d, int room, char close, int array, int *empty) {
  if (++d->depth > JSON_MAX_DEPTH) jd_fail(d, "nesting too deep");
  int slot = 0;
  if (d->build) {
    luaL_checkstack(d->L, room, "json nesting");
    lua_pushnil(d->L); /* the table's place */
    slot = lua_gettop(d->L);
  }
  d->p++;
  jd_ws(d);
  *empty = d->p < d->e && *d->p == close;
  if (*empty) {
    d->p++;
    d->depth--;
    if (d->build) jd_settle(d, slot, 0, 0, array);
  }
  return slot;
}

/* at '{'; `at`: the object's level on the lazy path (-1: off it) */
static void jd_object(jdec *d, int at) {
  lua_State *L = d->L;
  int n = 0, made = 0, empty;
  int slot = jd_open(d, 2 * JD_BATCH + 8, '}', 0, &empty);
  if (empty) return;
  for (;;) {
    jd_ws(d);
    if (d->p >= d->e || *d->p != '"') jd_fail(d, "expected a member name (a string)");
    jd_string(d);
    jd_ws(d);
    if (d->p >= d->e || *d->p != ':') jd_fail(d, "expected ':' after a member name");
    d->p++;
    d->on_path = jd_member_path(d, at);
    jd_value(d);
    if (made) lua_rawset(L, slot); /* a repeated name: the last one counts */
    else if (d->build && ++n == JD_BATCH) {
      jd_settle(d, slot, n, 2 * JD_BATCH, 0);
      made = 1;
    }
    jd_ws(d);
    if (d->p < d->e && *d->p == ',') { d->p++; continue; }
    if (d->p < d->e && *d->p == '}') { d->p++; break; }
    jd_fail(d, "expected ',' or '}' in an object");
  }
  if (d->build && !made) jd_settle(d, slot, n, n, 0);
  d->depth--;
}

/* at '['; returns the number of items */
static lua_Integer jd_array(jdec *d) {
  lua_State *L = d->L;
  int made = 0, empty;
  int slot = jd_open(d, JD_BATCH + 8, ']', 1, &empty);
  if (empty) return 0;
  lua_Integer i = 1;
  for (;; i++) {
    jd_value(d);
    if (made) lua_rawseti(L, slot, i);
    else if (d->build && i == JD_BATCH) {
      jd_settle(d, slot, (int)i, 2 * JD_BATCH, 1);
      made = 1;
    }
    jd_ws(d);
    if (d->p < d->e && *d->p == ',') { d->p++; continue; }
    if (d->p < d->e && *d->p == ']') { d->p++; break; }
    jd_fail(d, "expected ',' or ']' in an array");
  }
  if (d->build && !made) jd_settle(d, slot, (int)i, (int)i, 1);
  d->depth--;
  return i;
}

/* at the '[' of the array at the end of the lazy path: the array is checked
 * (not built), a lazy array pushed in its place */
static void jd_lazy(jdec *d) {
  jlazy z;
  z.open = (size_t)(d->p - d->s);
  z.depth = d->depth + 1;
  z.point = d->point;
  d->build = 0;
  z.n = jd_array(d);
  d->build = 1;
  z.close = (size_t)(d->p - d->s);
  jlazy *u = lua_newuserdatauv(d->L, sizeof *u, 1);
  *u = z;
  lua_pushvalue(d->L, d->lazy_mt);
  lua_setmetatable(d->L, -2);
  lua_pushvalue(d->L, d->text);
  lua_setiuservalue(d->L, -2, 1);
}

static void jd_value(jdec *d) {
  int at = d->on_path;
  d->on_path = -1; /* what lies below is off the path, unless an object says otherwise */
  jd_ws(d);
  if (d->p >= d->e) jd_fail(d, "expected a value");
  lua_State *L = d->L;
  switch (*d->p) {
    case '{': jd_object(d, at); return;
    case '[':
      if (at == d->npath && (at > 0 || d->lazy_root) && d->build) jd_lazy(d);
      else jd_array(d);
      return;
    case '"': jd_string(d); return;
    case 't': jd_literal(d, "true", 4); if (d->build) lua_pushboolean(L, 1); return;
    case 'f': jd_literal(d, "false", 5); if (d->build) lua_pushboolean(L, 0); return;
    case 'n': jd_literal(d, "null", 4); if (d->build) lua_pushlightuserdata(L, NULL); return;
    default:
      if (*d->p == '-' || JD_DIGIT(*d->p)) { jd_number(d); return; }
      jd_fail(d, "expected a value");
  }
}

/* the options' lazy path (arg 2: {lazy = {k1, k2, ...}}, read raw) into d;
 * the list stays on the stack, anchoring the keys */
static void jd_path(lua_State *L, jdec *d) {
  if (!lua_istable(L, 2)) return;
  lua_pushliteral(L, "lazy");
  if (lua_rawget(L, 2) == LUA_TNIL) { lua_pop(L, 1); return; }
  if (lua_isboolean(L, -1) && lua_toboolean(L, -1)) { /* the text is the array */
    d->lazy_root = 1;
    d->on_path = 0;
    return;
  }
  if (!lua_istable(L, -1)) mcpl_lua_error(L, "invalid_argument", "json.decode: lazy must be a list of keys, or true");
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  if (n < 1 || n > JSON_MAX_PATH)
    mcpl_lua_error(L, "invalid_argument", "json.decode: lazy needs 1 to %d keys", JSON_MAX_PATH);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, -1, i) != LUA_TSTRING) mcpl_lua_error(L, "invalid_argument", "json.decode: lazy keys must be strings");
    d->path[i - 1] = lua_tolstring(L, -1, &d->pathn[i - 1]);
    lua_pop(L, 1);
  }
  d->npath = (int)n;
  d->on_path = 0;
}

/* json.decode(s [, {lazy = {keys}}]) -> value | raises {code="invalid_argument"} */
static int json_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_settop(L, 2);
  jdec d;
  memset(&d, 0, sizeof d);
  d.L = L;
  d.s = d.p = s;
  d.e = s + n;
  d.point = localeconv()->decimal_point[0];
  d.build = 1;
  d.on_path = -1;
  d.text = 1;
  jd_path(L, &d);
  lua_pushvalue(L, UV_ARRAY);
  d.array_mt = lua_gettop(L);
  lua_pushvalue(L, UV_LAZY);
  d.lazy_mt = lua_gettop(L);
  jd_value(&d);
  jd_ws(&d);
  if (d.p < d.e) jd_fail(&d, "unexpected text after the value");
  return 1;
}

/* ---- lazy arrays ----------------------------------------------------------
 * json.items(v) -> iterator: for i, item in json.items(v): the items of a
 * lazy array, decoded one per step, or of a Lua array (as ipairs). */

static jlazy *to_lazy(lua_State *L, int idx) {
  jlazy *z = NULL;
  if (lua_type(L, idx) == LUA_TUSERDATA && lua_getmetatable(L, idx)) {
    if (lua_rawequal(L, -1, UV_LAZY)) z = lua_touserdata(L, idx);
    lua_pop(L, 1);
  }
  return z;
}

/* The iterator of a lazy array; upvalues: the array mark, the lazy array,
 * the offset of the next item, the index of the last. */
static int lazy_next(lua_State *L) {
  jlazy *z = lua_touserdata(L, lua_upvalueindex(2));
  size_t at = (size_t)lua_tointeger(L, lua_upvalueindex(3));
  lua_Integer i = lua_tointeger(L, lua_upvalueindex(4));
  lua_settop(L, 0);
  lua_getiuservalue(L, lua_upvalueindex(2), 1);
  size_t n;
  const char *s = lua_tolstring(L, 1, &n);
  /* the text was checked whole when the lazy array was made; the bounds
   * hold all the same */
  if (!s || z->close > n || at >= z->close) return 0;
  lua_pushvalue(L, UV_ARRAY);
  jdec d;
  memset(&d, 0, sizeof d);
  d.L = L;
  d.s = s;
  d.p = s + at;
  d.e = s + z->close;
  d.depth = z->depth;
  d.array_mt = 2;
  d.point = z->point;
  d.build = 1;
  d.on_path = -1;
  jd_ws(&d);
  if (d.p >= d.e || *d.p == ']') return 0;
  lua_pushinteger(L, i + 1);
  jd_value(&d);
  jd_ws(&d);
  if (d.p < d.e && *d.p == ',') d.p++;
  lua_pushinteger(L, (lua_Integer)(d.p - s));
  lua_replace(L, lua_upvalueindex(3));
  lua_pushinteger(L, i + 1);
  lua_replace(L, lua_upvalueindex(4));
  return 2;
}

/* as ipairs, over a Lua array */
static int array_next(lua_State *L) {
  lua_Integer i = luaL_checkinteger(L, 2) + 1;
  lua_pushinteger(L, i);
  return lua_geti(L, 1, i) == LUA_TNIL ? 1 : 2;
}

static int json_items(lua_State *L) {
  jlazy *z = to_lazy(L, 1);
  if (z) {
    lua_settop(L, 1);
    lua_pushvalue(L, UV_ARRAY);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, (lua_Integer)z->open + 1);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, lazy_next, 4);
    return 1;
  }
  if (!lua_istable(L, 1)) return mcpl_lua_error(L, "invalid_argument", "json.items: expected an array");
  lua_pushcfunction(L, array_next);
  lua_pushvalue(L, 1);
  lua_pushinteger(L, 0);
  return 3;
}

static int json_is_lazy(lua_State *L) {
  lua_pushboolean(L, to_lazy(L, 1) != NULL);
  return 1;
}

/* #v: the lazy array's number of items */
static int lazy_len(lua_State *L) {
  jlazy *z = luaL_checkudata(L, 1, LAZY_MT);
  lua_pushinteger(L, z->n);
  return 1;
}

/* ---- encode ------------------------------------------------------------- */

/* a state's two buffers (state_buffers) */
static int jbuf_gc(lua_State *L) {
  jbuf *b = lua_touserdata(L, 1);
  free(b[0].p);
  free(b[1].p);
  b[0].p = b[1].p = NULL;
  return 0;
}

/* Length of a valid UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s, size_t left) {
  unsigned c = s[0];
  size_t len;
  unsigned min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; c &= 0x1F; }
  else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; c &= 0x0F; }
  else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; c &= 0x07; }
  else return 0;
  if (left < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  return len;
}

/* ASCII from 0x20 on, other than '"' and '\\', is copied as is, in runs. */
static const unsigned char plain_ascii[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
  R16(0), R16(0),
  1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x22 '"' */
  R16(1), R16(1),
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x5c '\\' */
  R16(1), R16(1),
  R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0)
#undef R16
};

/* The string's JSON text, written in place a slice at a time: room for the
 * longest a slice can become (each byte as "\ufffd" or "\u00XX", six bytes;
 * a UTF-8 sequence may run 3 bytes past the slice) is made once per slice,
 * so a long string never reserves six times its size. */
#define JB_SLICE 4096
static void jb_string(lua_State *L, jbuf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  jb_addc(L, b, '"');
  for (size_t i = 0; i < n;) {
    size_t lim = n - i > JB_SLICE ? i + JB_SLICE : n;
    jb_reserve(L, b, 6 * (lim - i) + 24);
    char *o = b->p + b->n;
    while (i < lim) {
      size_t run = i;
      while (run < lim && plain_ascii[(unsigned char)s[run]]) run++;
      if (run > i) {
        memcpy(o, s + i, run - i);
        o += run - i;
        i = run;
        if (i >= lim) break;
      }
      unsigned char c = (unsigned char)s[i];
      if (c == '"' || c == '\\') {
        *o++ = '\\';
        *o++ = (char)c;
        i++;
      } else if (c < 0x20) {
        *o++ = '\\';
        if (c == '\n') *o++ = 'n';
        else if (c == '\r') *o++ = 'r';
        else if (c == '\t') *o++ = 't';
        else {
          *o++ = 'u'; *o++ = '0'; *o++ = '0';
          *o++ = hex[c >> 4];
          *o++ = hex[c & 15];
        }
        i++;
      } else {
        size_t l = utf8_len((const unsigned char *)s + i, n - i);
        if (l) { memcpy(o, s + i, l); o += l; i += l; }
        else { memcpy(o, "\\ufffd", 6); o += 6; i++; }
      }
    }
    b->n = (size_t)(o - b->p);
  }
  jb_addc(L, b, '"');
}

/* a string known to be printable ASCII without '"' or '\\': as jb_string
 * writes it, copied whole */
static void jb_plain(lua_State *L, jbuf *b, const char *s, size_t n) {
  jb_reserve(L, b, n + 2);
  char *o = b->p + b->n;
  o[0] = '"';
  memcpy(o + 1, s, n);
  o[n + 1] = '"';
  b->n += n + 2;
}

static void jb_int(lua_State *L, jbuf *b, long long v) {
  char num[24];
  char *p = fmt_int_back(num + sizeof num, v);
  jb_add(L, b, p, (size_t)(num + sizeof num - p));
}

static void jb_float(lua_State *L, jbuf *b, double d) {
  char num[64];
  if (!isfinite(d)) mcpl_lua_error(L, "invalid_argument", "cannot encode NaN or infinity");
  int k;
  if (d == floor(d) && fabs(d) <= 9007199254740992.0) k = snprintf(num, sizeof num, "%.0f", d);
  else k = snprintf(num, sizeof num, "%.17g", d);
  jb_add(L, b, num, (size_t)k);
}

/* Where the values of chosen members of the top-level object went in the
 * output (json.canonical): [start, end) of each value's text. */
#define CANON_MAX_KEYS 16
typedef struct {
  int n;
  struct {
    const char *k;
    size_t kn, start, end;
    int found;
  } m[CANON_MAX_KEYS];
} jcapture;

typedef struct {
  int pretty;
  int sort;
  jcapture *cap;
  const void *amt, *omt; /* the array and object marks (the functions' upvalues) */
} jopts;

static void opts_marks(lua_State *L, jopts *o) {
  o->amt = lua_topointer(L, UV_ARRAY);
  o->omt = lua_topointer(L, UV_OBJECT);
}

static void jb_indent(lua_State *L, jbuf *b, const jopts *o, int depth) {
  if (!o->pretty) return;
  jb_addc(L, b, '\n');
  for (int i = 0; i < depth; i++) jb_add(L, b, "  ", 2);
}

/* 1 = array, 0 = object; raises for tables that are neither. */
static int table_kind(lua_State *L, int idx, const jopts *o, lua_Integer *len) {
  int kind = -1;
  if (lua_getmetatable(L, idx)) {
    const void *mt = lua_topointer(L, -1);
    lua_pop(L, 1);
    kind = mt == o->amt ? 1 : mt == o->omt ? 0 : -1;
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  *len = n;
  if (kind == 0) return 0;
  if (kind == -1 && n == 0) return 0; /* no sequence: an object (or {}), whatever its keys */
  /* count keys: an array has exactly the keys 1..n */
  lua_Integer keys = 0;
  int all_int = 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    keys++;
    if (!lua_isinteger(L, -1)) all_int = 0;
  }
  if (kind == 1) {
    if (keys != n || !all_int)
      mcpl_lua_error(L, "invalid_argument", "cannot encode table marked as array with non-sequence keys");
    return 1;
  }
  if (keys == 0) return 0;
  return (all_int && keys == n) ? 1 : 0;
}

static int cmp_keys(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void encode_value(lua_State *L, jbuf *b, int idx, const jopts *o, int depth);

/* An object's members, for the usual small object: the keys (as strings)
 * and values lie on the Lua stack, which keeps them alive; this array only
 * points at them, so no allocation is made per object. */
#define SMALL_OBJECT 64
typedef struct {
  const char *k;
  size_t n;
  int at; /* stack index of the key; the value is at + 1 */
} jmember;

static int cmp_members(const void *a, const void *b) {
  const jmember *x = a, *y = b;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->k, y->k, n);
  return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* a top-level member's value, written at [start, end) of the text: where
 * the captured member of that name (if any) is */
static void capture_note(jcapture *cap, const char *k, size_t kn, size_t start, size_t end) {
  for (int i = 0; i < cap->n; i++)
    if (cap->m[i].kn == kn && memcmp(cap->m[i].k, k, kn) == 0) {
      cap->m[i].start = start;
      cap->m[i].end = end;
      cap->m[i].found = 1;
    }
}

static void encode_member(lua_State *L, jbuf *b, const jopts *o, int depth, int first,
                          const char *k, size_t kn, int vidx) {
  if (!first) jb_addc(L, b, ',');
  jb_indent(L, b, o, depth + 1);
  jb_string(L, b, k, kn);
  jb_add(L, b, o->pretty ? ": " : ":", o->pretty ? 2 : 1);
  size_t start = b->n;
  encode_value(L, b, vidx, o, depth + 1);
  if (depth == 0 && o->cap) capture_note(o->cap, k, kn, start, b->n);
}

static void encode_object_large(lua_State *L, jbuf *b, int idx, const jopts *o, int depth, size_t nkeys);

static void encode_object(lua_State *L, jbuf *b, int idx, const jopts *o, int depth) {
  /* One walk collects the members of the usual small object: each key is
   * copied (a string: integer keys are written in their decimal form) and
   * kept on the stack with its value. A larger object starts over with the
   * large path. */
  jmember m[SMALL_OBJECT];
  int base = lua_gettop(L);
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int kt = lua_type(L, -2);
    if (kt != LUA_TSTRING && !(kt == LUA_TNUMBER && lua_isinteger(L, -2)))
      mcpl_lua_error(L, "invalid_argument", "cannot encode table key of type %s", luaL_typename(L, -2));
    if (k == SMALL_OBJECT) {
      size_t nkeys = k + 1;
      lua_pop(L, 1);
      while (lua_next(L, idx)) {
        lua_pop(L, 1);
        kt = lua_type(L, -1);
        if (kt != LUA_TSTRING && !(kt == LUA_TNUMBER && lua_isinteger(L, -1)))
          mcpl_lua_error(L, "invalid_argument", "cannot encode table key of type %s", luaL_typename(L, -1));
        nkeys++;
      }
      lua_settop(L, base);
      jb_addc(L, b, '{');
      encode_object_large(L, b, idx, o, depth, nkeys);
      return;
    }
    luaL_checkstack(L, 6, "json object");
    /* key, value -> key copy (a string), value; the original key continues the walk */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    if (kt != LUA_TSTRING) lua_tolstring(L, -2, NULL); /* converts the copy */
    int at = lua_gettop(L) - 1;
    m[k].k = lua_tolstring(L, at, &m[k].n);
    m[k].at = at;
    k++;
    lua_pushvalue(L, at - 1); /* the original key, for lua_next */
  }
  jb_addc(L, b, '{');
  if (k == 0) { jb_addc(L, b, '}'); return; }
  if (o->sort) qsort(m, k, sizeof *m, cmp_members);
  for (size_t i = 0; i < k; i++) encode_member(L, b, o, depth, i == 0, m[i].k, m[i].n, m[i].at + 1);
  lua_settop(L, base);
  jb_indent(L, b, o, depth);
  jb_addc(L, b, '}');
}

/* Objects with many members: the keys are anchored in a helper table. */
static void encode_object_large(lua_State *L, jbuf *b, int idx, const jopts *o, int depth, size_t nkeys) {
  lua_createtable(L, (int)nkeys, 0);
  int keytab = lua_gettop(L);
  const char **keys = lua_newuserdatauv(L, nkeys * sizeof *keys, 0);
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    const char *ks = lua_tostring(L, -1); /* converts the copy, not the key */
    lua_rawseti(L, keytab, (lua_Integer)k + 1);
    keys[k++] = ks;
  }
  if (o->sort) qsort(keys, nkeys, sizeof *keys, cmp_keys);
  for (size_t i = 0; i < nkeys; i++) {
    lua_pushstring(L, keys[i]);
    lua_rawget(L, idx);
    if (lua_isnil(L, -1)) { /* the key was an integer */
      lua_pop(L, 1);
      lua_Integer iv = 0;
      if (lua_stringtonumber(L, keys[i])) {
        iv = lua_tointeger(L, -1);
        lua_pop(L, 1);
      }
      lua_rawgeti(L, idx, iv);
    }
    encode_member(L, b, o, depth, i == 0, keys[i], strlen(keys[i]), lua_gettop(L));
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  jb_indent(L, b, o, depth);
  jb_addc(L, b, '}');
}

static void encode_value(lua_State *L, jbuf *b, int idx, const jopts *o, int depth) {
  if (depth > JSON_MAX_DEPTH) mcpl_lua_error(L, "invalid_argument", "JSON nesting too deep (or a cycle)");
  luaL_checkstack(L, 8, "json nesting");
  switch (lua_type(L, idx)) {
  case LUA_TNIL: jb_add(L, b, "null", 4); break;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) != NULL) mcpl_lua_error(L, "invalid_argument", "cannot encode userdata");
    jb_add(L, b, "null", 4);
    break;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx)) jb_add(L, b, "true", 4); else jb_add(L, b, "false", 5);
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) jb_int(L, b, (long long)lua_tointeger(L, idx));
    else jb_float(L, b, lua_tonumber(L, idx));
    break;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    jb_string(L, b, s, n);
    break;
  }
  case LUA_TTABLE: {
    lua_Integer n;
    if (table_kind(L, idx, o, &n)) {
      jb_addc(L, b, '[');
      for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1) jb_addc(L, b, ',');
        jb_indent(L, b, o, depth + 1);
        lua_rawgeti(L, idx, i);
        encode_value(L, b, lua_gettop(L), o, depth + 1);
        lua_pop(L, 1);
      }
      if (n) jb_indent(L, b, o, depth);
      jb_addc(L, b, ']');
    } else encode_object(L, b, idx, o, depth);
    break;
  }
  default:
    mcpl_lua_error(L, "invalid_argument", "cannot encode a %s", luaL_typename(L, idx));
  }
}

/* Each Lua state keeps two output buffers (its registry holds them, so an
 * error raised halfway leaks nothing): encoding calls no Lua code, so no
 * second encode can start while one runs. json.encode writes the first,
 * json.canonical both (its text and its part): discovery canonicalises every
 * item of a list, and a buffer pair made per call (a userdata with a
 * finalizer, two mallocs) cost more than the encoding of a small tool. A
 * buffer grown past JBUF_KEEP is released after use. */
#define JBUF_KEEP (256 * 1024)
static const char JBUF_KEY = 0;

static jbuf *state_buffers(lua_State *L) {
  jbuf *b;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &JBUF_KEY) == LUA_TUSERDATA) {
    b = lua_touserdata(L, -1);
  } else {
    lua_pop(L, 1);
    b = lua_newuserdatauv(L, 2 * sizeof *b, 0);
    memset(b, 0, 2 * sizeof *b);
    luaL_setmetatable(L, JBUF_MT);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &JBUF_KEY);
  }
  lua_pop(L, 1);
  b[0].n = b[1].n = 0;
  return b;
}

static void buffers_done(jbuf *b) {
  for (int i = 0; i < 2; i++) {
    if (b[i].cap > JBUF_KEEP) {
      free(b[i].p);
      b[i].p = NULL;
      b[i].cap = 0;
    }
    b[i].n = 0;
  }
}

/* json.encode(v [, {pretty=bool, sort=bool}]) -> string */
static int json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  jopts o = {0, 0, NULL, NULL, NULL};
  opts_marks(L, &o);
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "pretty");
    o.pretty = lua_toboolean(L, -1);
    lua_getfield(L, 2, "sort");
    o.sort = lua_toboolean(L, -1) || o.pretty;
    lua_pop(L, 2);
  }
  lua_settop(L, 1);
  jbuf *b = state_buffers(L);
  encode_value(L, b, 1, &o, 0);
  lua_pushlstring(L, b->p ? b->p : "", b->n);
  buffers_done(b);
  return 1;
}

static int cmp_capture_keys(const void *a, const void *b) {
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  return strcmp(x, y);
}

/* the keys (a list of strings at idx, anchored there) into cap, sorted as
 * encode_object sorts them */
static void capture_keys(lua_State *L, int idx, jcapture *cap, const char *who) {
  const char *sorted[CANON_MAX_KEYS];
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer nk = (lua_Integer)lua_rawlen(L, idx);
  if (nk > CANON_MAX_KEYS) mcpl_lua_error(L, "invalid_argument", "%s: at most %d keys", who, CANON_MAX_KEYS);
  cap->n = 0;
  for (lua_Integer i = 1; i <= nk; i++) {
    if (lua_rawgeti(L, idx, i) != LUA_TSTRING) mcpl_lua_error(L, "invalid_argument", "%s: keys must be strings", who);
    size_t kl;
    sorted[cap->n] = lua_tolstring(L, -1, &kl);
    if (strlen(sorted[cap->n]) != kl) mcpl_lua_error(L, "invalid_argument", "%s: a key holds a NUL", who);
    lua_pop(L, 1);
    cap->n++;
  }
  qsort(sorted, (size_t)cap->n, sizeof *sorted, cmp_capture_keys);
  for (int i = 0; i < cap->n; i++) {
    cap->m[i].k = sorted[i];
    cap->m[i].kn = strlen(sorted[i]);
    cap->m[i].found = 0;
  }
}

/* the part (json.canonical's second result) into pb: the captured members
 * of the text in b, in key order */
static void capture_part(lua_State *L, const jbuf *b, jbuf *pb, const jcapture *cap) {
  jb_addc(L, pb, '{');
  int first = 1;
  for (int i = 0; i < cap->n; i++) {
    if (!cap->m[i].found || (i > 0 && strcmp(cap->m[i].k, cap->m[i - 1].k) == 0)) continue;
    if (!first) jb_addc(L, pb, ',');
    first = 0;
    jb_string(L, pb, cap->m[i].k, cap->m[i].kn);
    jb_addc(L, pb, ':');
    jb_add(L, pb, b->p + cap->m[i].start, cap->m[i].end - cap->m[i].start);
  }
  jb_addc(L, pb, '}');
}

/* json.canonical(v [, keys]) -> text [, part]: text is json.encode(v,
 * {sort=true}); with keys (a list of strings), part is the same encoding of
 * the object holding only those members of v (json.encode(p, {sort=true})
 * where p[k] = v[k] for each key), cut out of text rather than encoded
 * again: one walk gives what is stored and what is hashed (discovery's
 * approval pin). v must encode as an object when keys are given. */
static int json_canonical(lua_State *L) {
  luaL_checkany(L, 1);
  jcapture cap;
  cap.n = 0;
  int want = !lua_isnoneornil(L, 2);
  if (want) {
    capture_keys(L, 2, &cap, "json.canonical");
    if (lua_type(L, 1) != LUA_TTABLE)
      return mcpl_lua_error(L, "invalid_argument", "json.canonical: keys need an object");
  }
  jopts o = {0, 1, want ? &cap : NULL, NULL, NULL};
  opts_marks(L, &o);
  if (want) {
    lua_Integer len;
    if (table_kind(L, 1, &o, &len))
      return mcpl_lua_error(L, "invalid_argument", "json.canonical: keys need an object");
  }
  lua_settop(L, 2); /* the keys table stays: it anchors the key strings */
  jbuf *b = state_buffers(L), *pb = b + 1;
  encode_value(L, b, 1, &o, 0);
  lua_pushlstring(L, b->p ? b->p : "", b->n);
  if (!want) {
    buffers_done(b);
    return 1;
  }
  capture_part(L, b, pb, &cap);
  lua_pushlstring(L, pb->p, pb->n);
  buffers_done(b);
  return 2; /* text, part */
}

/* ---- find_key ------------------------------------------------------------
 * json.find_key(v, key, max_depth, max_nodes) -> true | false | nil: whether
 * a table within v (v itself, and the tables among the values of each table
 * walked, not its keys) has the string key `key`. nil when the walk stops
 * before it is complete: more than max_nodes tables, or a table deeper than
 * max_depth (v is at depth 0). false therefore says no such key exists and
 * v holds at most max_nodes tables, none deeper than max_depth. */
typedef struct {
  int nodes, max_depth, max_nodes;
} jfind;

static int find_key_walk(lua_State *L, int idx, int key, int depth, jfind *f) {
  if (depth > f->max_depth || ++f->nodes > f->max_nodes) return -1;
  luaL_checkstack(L, 4, "json.find_key");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -2, key)) { lua_pop(L, 2); return 1; }
    if (lua_type(L, -1) == LUA_TTABLE) {
      int r = find_key_walk(L, lua_gettop(L), key, depth + 1, f);
      if (r != 0) { lua_pop(L, 2); return r; }
    }
    lua_pop(L, 1);
  }
  return 0;
}

static int json_find_key(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TSTRING);
  lua_Integer md = luaL_checkinteger(L, 3), mn = luaL_checkinteger(L, 4);
  jfind f = {0, md < 0 ? -1 : md > JSON_MAX_DEPTH ? JSON_MAX_DEPTH : (int)md,
             mn < 0 ? 0 : mn > INT32_MAX ? INT32_MAX : (int)mn};
  lua_settop(L, 2);
  int r = find_key_walk(L, 1, 2, 0, &f);
  if (r < 0) lua_pushnil(L);
  else lua_pushboolean(L, r);
  return 1;
}

/* ---- canonical_items ------------------------------------------------------
 * json.canonical_items(list [, opts]) -> iterator:
 *   for i, text, part, name, found in json.canonical_items(list, opts)
 * The items of a list (a lazy array or a Lua array), each as json.canonical
 * gives it: text = json.canonical(item), part = its second result for
 * opts.keys (objects only; nil otherwise). name: the item's member opts.name
 * when it is a string. found (opts.find = {key, max_depth, max_nodes}, as
 * json.find_key's arguments): false when the item surely holds no such key
 * within those bounds (json.find_key's false); true or nil when it may (look
 * at the decoded item).
 * text = false: no text is given (nil), where only the part or the name is
 * wanted.
 * into (a json.list_builder()): each item's text is also appended to it, and
 * text is then given only where found is not false (where the caller may
 * have to look at the item); the caller takes an item it does not keep back
 * out with b:drop().
 * A lazy array's items go from their text straight to canonical text: each
 * is read into a tree of C nodes (a per-state scratch, no Lua value per
 * member) and written out sorted, byte for byte what decoding it and
 * json.canonical would give. Discovery canonicalises every item of every
 * list this way. */

enum { CN_STR, CN_NUM_INT, CN_NUM_FLOAT, CN_TRUE, CN_FALSE, CN_NULL, CN_ARR, CN_OBJ };

/* a node: a string's bytes ([a, a+n) of the text when esc is 0, of the
 * scratch's string buffer when 1; plain: printable ASCII without '"' or
 * '\\', written out as it is), a number, or a container (its children at
 * kids[a..a+n), an object's as key, value pairs: 2n slots) */
typedef struct {
  unsigned char t, esc, plain;
  size_t a, n;
  long long iv;
  double dv;
} cnode;

typedef struct {
  const char *k;
  size_t kn;
  size_t v, i; /* the value's node, the member's place in the object */
  int plain;   /* the name's node's */
} cmember;

typedef struct {
  cnode *nodes;
  size_t nn, ncap;
  size_t *kids, nk, kcap; /* the containers' children, each container's in a row */
  size_t *tmp, nt, tcap;  /* children waiting for their container to close */
  cmember *mem;           /* an object's members while they are sorted (a stack) */
  size_t nm, mcap;
  jbuf sb;                /* decoded strings that held escapes */
  /* the find option: the key, the walk's bounds, what the read saw */
  const char *fk;
  size_t fkn;
  int found, tables, deepest;
} cscratch;

#define CSCRATCH_MT "mcpl.json.cscratch"
#define CSCRATCH_KEEP (256 * 1024)

static int cscratch_gc(lua_State *L) {
  cscratch *c = lua_touserdata(L, 1);
  free(c->nodes);
  free(c->kids);
  free(c->tmp);
  free(c->mem);
  free(c->sb.p);
  memset(c, 0, sizeof *c);
  return 0;
}

/* grows an array to hold one more element (raises when out of memory) */
static void *cs_grow(lua_State *L, void *p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return p;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  void *q = realloc(p, c * size);
  if (!q) mcpl_lua_error(L, "internal", "out of memory reading JSON");
  *cap = c;
  return q;
}

static size_t cs_node(jdec *d, cscratch *c, unsigned char t) {
  c->nodes = cs_grow(d->L, c->nodes, &c->ncap, c->nn + 1, sizeof *c->nodes);
  cnode *n = &c->nodes[c->nn];
  memset(n, 0, sizeof *n);
  n->t = t;
  return c->nn++;
}

static void cs_wait(jdec *d, cscratch *c, size_t v) {
  c->tmp = cs_grow(d->L, c->tmp, &c->tcap, c->nt + 1, sizeof *c->tmp);
  c->tmp[c->nt++] = v;
}

/* at the opening quote: a string node */
static size_t cs_string(jdec *d, cscratch *c) {
  /* most names and values are printable ASCII: seen so here, they are
   * copied out as they are, without jb_string's look at each byte */
  const char *begin = d->p + 1, *p = begin;
  while (p < d->e && plain_ascii[(unsigned char)*p]) p++;
  int plain = p < d->e && *p == '"';
  if (plain) d->p = p;
  else begin = jd_plain(d);
  size_t id = cs_node(d, c, CN_STR);
  if (*d->p == '"') {
    c->nodes[id].a = (size_t)(begin - d->s);
    c->nodes[id].n = (size_t)(d->p - begin);
    c->nodes[id].plain = (unsigned char)plain;
    d->p++;
    return id;
  }
  size_t at = c->sb.n;
  jsink b = {NULL, &c->sb, d->L};
  jd_escaped(d, begin, &b);
  c->nodes[id].esc = 1;
  c->nodes[id].a = at;
  c->nodes[id].n = c->sb.n - at;
  return id;
}

static const char *cs_bytes(const jdec *d, const cscratch *c, const cnode *n) {
  return n->esc ? c->sb.p + n->a : d->s + n->a;
}

/* the value at d->p (valid JSON: the text was checked whole), read into
 * nodes; depth: its nesting within the item (the item: 0) */
static size_t cs_value(jdec *d, cscratch *c, int depth) {
  jd_ws(d);
  if (d->p >= d->e) jd_fail(d, "expected a value");
  char ch = *d->p;
  if (ch == '{' || ch == '[') {
    int obj = ch == '{';
    if (depth > JSON_MAX_DEPTH) jd_fail(d, "nesting too deep");
    c->tables++;
    if (depth > c->deepest) c->deepest = depth;
    size_t id = cs_node(d, c, obj ? CN_OBJ : CN_ARR), base = c->nt, n = 0;
    d->p++;
    jd_ws(d);
    if (d->p < d->e && *d->p == (obj ? '}' : ']')) d->p++;
    else for (;;) {
      if (obj) {
        jd_ws(d);
        if (d->p >= d->e || *d->p != '"') jd_fail(d, "expected a member name (a string)");
        size_t k = cs_string(d, c);
        if (c->fk && c->nodes[k].n == c->fkn && memcmp(cs_bytes(d, c, &c->nodes[k]), c->fk, c->fkn) == 0)
          c->found = 1;
        cs_wait(d, c, k);
        jd_ws(d);
        if (d->p >= d->e || *d->p != ':') jd_fail(d, "expected ':' after a member name");
        d->p++;
      }
      size_t v = cs_value(d, c, depth + 1);
      cs_wait(d, c, v);
      n++;
      jd_ws(d);
      if (d->p < d->e && *d->p == ',') { d->p++; continue; }
      if (d->p < d->e && *d->p == (obj ? '}' : ']')) { d->p++; break; }
      jd_fail(d, obj ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array");
    }
    size_t slots = c->nt - base;
    c->kids = cs_grow(d->L, c->kids, &c->kcap, c->nk + slots, sizeof *c->kids);
    if (slots) memcpy(c->kids + c->nk, c->tmp + base, slots * sizeof *c->kids);
    c->nodes[id].a = c->nk;
    c->nodes[id].n = n;
    c->nk += slots;
    c->nt = base;
    return id;
  }
  if (ch == '"') return cs_string(d, c);
  if (ch == 't') { jd_literal(d, "true", 4); return cs_node(d, c, CN_TRUE); }
  if (ch == 'f') { jd_literal(d, "false", 5); return cs_node(d, c, CN_FALSE); }
  if (ch == 'n') { jd_literal(d, "null", 4); return cs_node(d, c, CN_NULL); }
  if (ch != '-' && !JD_DIGIT(ch)) jd_fail(d, "expected a value");
  long long iv = 0;
  double dv = 0;
  int integer = jd_scan_number(d, &iv, &dv);
  size_t id = cs_node(d, c, integer ? CN_NUM_INT : CN_NUM_FLOAT);
  c->nodes[id].iv = iv;
  c->nodes[id].dv = dv;
  return id;
}

static int cmp_cmembers(const void *a, const void *b) {
  const cmember *x = a, *y = b;
  size_t n = x->kn < y->kn ? x->kn : y->kn;
  int r = memcmp(x->k, y->k, n);
  if (r) return r;
  if (x->kn != y->kn) return x->kn < y->kn ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i; /* a repeated name: the last one counts */
}

/* writes node id as encode_value writes its decoded value ({sort = true});
 * depth 0 records the captured members' places */
static void cs_emit(lua_State *L, const jdec *d, cscratch *c, jbuf *b, size_t id, jcapture *cap, int depth) {
  const cnode *n = &c->nodes[id];
  switch (n->t) {
  case CN_STR:
    if (n->plain) jb_plain(L, b, d->s + n->a, n->n);
    else jb_string(L, b, cs_bytes(d, c, n), n->n);
    return;
  case CN_NUM_INT: jb_int(L, b, n->iv); return;
  case CN_NUM_FLOAT: jb_float(L, b, n->dv); return;
  case CN_TRUE: jb_add(L, b, "true", 4); return;
  case CN_FALSE: jb_add(L, b, "false", 5); return;
  case CN_NULL: jb_add(L, b, "null", 4); return;
  case CN_ARR: {
    size_t a = n->a, k = n->n;
    jb_addc(L, b, '[');
    for (size_t i = 0; i < k; i++) {
      if (i) jb_addc(L, b, ',');
      cs_emit(L, d, c, b, c->kids[a + i], NULL, depth + 1);
    }
    jb_addc(L, b, ']');
    return;
  }
  default: break;
  }
  /* an object: its members sorted by name, a repeated name once (its last) */
  size_t a = n->a, k = n->n, base = c->nm;
  c->mem = cs_grow(L, c->mem, &c->mcap, base + k, sizeof *c->mem);
  for (size_t i = 0; i < k; i++) {
    const cnode *kn = &c->nodes[c->kids[a + 2 * i]];
    cmember *m = &c->mem[base + i];
    m->k = cs_bytes(d, c, kn);
    m->kn = kn->n;
    m->v = c->kids[a + 2 * i + 1];
    m->i = i;
    m->plain = kn->plain;
  }
  c->nm = base + k;
  /* most objects have a few members: sorted in place, without qsort's
   * call per comparison */
  cmember *ms = c->mem + base;
  if (k <= 8) {
    for (size_t i = 1; i < k; i++) {
      cmember x = ms[i];
      size_t j = i;
      for (; j > 0 && cmp_cmembers(&ms[j - 1], &x) > 0; j--) ms[j] = ms[j - 1];
      ms[j] = x;
    }
  } else qsort(ms, k, sizeof *ms, cmp_cmembers);
  jb_addc(L, b, '{');
  int first = 1;
  for (size_t i = 0; i < k; i++) {
    cmember m = c->mem[base + i]; /* a copy: the array may move below */
    if (i + 1 < k) {
      const cmember *next = &c->mem[base + i + 1];
      if (next->kn == m.kn && memcmp(next->k, m.k, m.kn) == 0) continue;
    }
    if (!first) jb_addc(L, b, ',');
    first = 0;
    if (m.plain) jb_plain(L, b, m.k, m.kn);
    else jb_string(L, b, m.k, m.kn);
    jb_addc(L, b, ':');
    size_t start = b->n;
    cs_emit(L, d, c, b, m.v, NULL, depth + 1);
    if (depth == 0 && cap) capture_note(cap, m.k, m.kn, start, b->n);
  }
  c->nm = base;
  jb_addc(L, b, '}');
}

static cscratch *state_scratch(lua_State *L) {
  static const char key = 0;
  cscratch *c;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key) == LUA_TUSERDATA) {
    c = lua_touserdata(L, -1);
  } else {
    lua_pop(L, 1);
    c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CSCRATCH_MT);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key);
  }
  lua_pop(L, 1);
  c->nn = c->nk = c->nt = c->nm = c->sb.n = 0;
  c->found = c->tables = 0;
  c->deepest = -1;
  return c;
}

/* a scratch grown past CSCRATCH_KEEP by one large item gives it back */
static void scratch_done(cscratch *c) {
  if (c->ncap * sizeof *c->nodes > CSCRATCH_KEEP) { free(c->nodes); c->nodes = NULL; c->ncap = 0; }
  if (c->kcap * sizeof *c->kids > CSCRATCH_KEEP) { free(c->kids); c->kids = NULL; c->kcap = 0; }
  if (c->tcap * sizeof *c->tmp > CSCRATCH_KEEP) { free(c->tmp); c->tmp = NULL; c->tcap = 0; }
  if (c->mcap * sizeof *c->mem > CSCRATCH_KEEP) { free(c->mem); c->mem = NULL; c->mcap = 0; }
  if (c->sb.cap > CSCRATCH_KEEP) { free(c->sb.p); c->sb.p = NULL; c->sb.cap = 0; }
}

/* ---- list builders ------------------------------------------------------
 * json.list_builder() -> b: the text of a JSON array built from the items
 * json.canonical_items gives (its `into` option), without a Lua string per
 * item: each one's canonical text is appended as it is read. b:drop() takes
 * the item appended last out again (once); b:count() -> how many it holds;
 * b:text() -> "[item,item,...]", after which the builder is empty again. A
 * list of thousands of definitions is one text to store and compare. */
#define JLIST_MT "mcpl.json.list_builder"
typedef struct {
  jbuf b;         /* "[" and the items, comma separated */
  size_t last;    /* where the last item (with its comma) starts */
  lua_Integer count;
  int droppable;
} jlist;

static jlist *check_jlist(lua_State *L, int idx) { return luaL_checkudata(L, idx, JLIST_MT); }

static int jlist_gc(lua_State *L) {
  jlist *l = check_jlist(L, 1);
  free(l->b.p);
  memset(l, 0, sizeof *l);
  return 0;
}

static void jlist_add(lua_State *L, jlist *l, const char *s, size_t n) {
  if (l->b.n == 0) jb_addc(L, &l->b, '[');
  l->last = l->b.n;
  if (l->count > 0) jb_addc(L, &l->b, ',');
  jb_add(L, &l->b, s, n);
  l->count++;
  l->droppable = 1;
}

static int jlist_drop(lua_State *L) {
  jlist *l = check_jlist(L, 1);
  if (!l->droppable) return mcpl_lua_error(L, "invalid_argument", "json list builder: no item to drop");
  l->b.n = l->last;
  l->count--;
  l->droppable = 0;
  return 0;
}

static int jlist_count(lua_State *L) {
  lua_pushinteger(L, check_jlist(L, 1)->count);
  return 1;
}

static int jlist_text(lua_State *L) {
  jlist *l = check_jlist(L, 1);
  if (l->b.n == 0) jb_addc(L, &l->b, '[');
  jb_addc(L, &l->b, ']');
  lua_pushlstring(L, l->b.p, l->b.n);
  free(l->b.p);
  memset(l, 0, sizeof *l);
  return 1;
}

static int json_list_builder(lua_State *L) {
  jlist *l = lua_newuserdatauv(L, sizeof *l, 0);
  memset(l, 0, sizeof *l);
  luaL_setmetatable(L, JLIST_MT);
  return 1;
}

/* The iterator's upvalues: the module's three (the marks, the lazy
 * metatable), the list, its settings (read once), and a table anchoring the
 * option strings the settings point at. */
#define CI_LIST lua_upvalueindex(4)
#define CI_ITER lua_upvalueindex(5)
typedef struct {
  jcapture cap;
  int want;
  const char *name, *fk;
  size_t namen, fkn;
  int max_depth, max_nodes, find;
  size_t at;    /* a lazy array: the offset of the next item */
  lua_Integer i; /* the index of the last item given */
  jlist *into;   /* the builder each item's text goes to (opts.into) */
  int no_text;   /* opts.text == false: the caller wants no text */
} citer;

/* pushes the item's text (nil when it went into a builder and the item
 * surely holds no key looked for: found is false) and part */
static void canon_results(lua_State *L, citer *it, jbuf *b, int is_object, int found_false) {
  if (it->into) jlist_add(L, it->into, b[0].p ? b[0].p : "", b[0].n);
  if ((it->into && found_false) || it->no_text) lua_pushnil(L);
  else lua_pushlstring(L, b[0].p ? b[0].p : "", b[0].n);
  if (it->want && is_object) {
    capture_part(L, &b[0], &b[1], &it->cap);
    lua_pushlstring(L, b[1].p, b[1].n);
  } else lua_pushnil(L);
}

static int canon_lazy_step(lua_State *L, citer *it, jlazy *z) {
  lua_getiuservalue(L, CI_LIST, 1);
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (!s || z->close > len || it->at >= z->close) return 0;
  jdec d;
  memset(&d, 0, sizeof d);
  d.L = L;
  d.s = s;
  d.p = s + it->at;
  d.e = s + z->close;
  d.point = z->point;
  d.on_path = -1;
  jd_ws(&d);
  if (d.p >= d.e || *d.p == ']') return 0;
  cscratch *c = state_scratch(L);
  c->fk = it->find ? it->fk : NULL;
  c->fkn = it->fkn;
  size_t root = cs_value(&d, c, 0);
  jd_ws(&d);
  if (d.p < d.e && *d.p == ',') d.p++;
  it->at = (size_t)(d.p - s);
  it->i++;
  for (int j = 0; j < it->cap.n; j++) it->cap.m[j].found = 0;
  jbuf *b = state_buffers(L);
  cs_emit(L, &d, c, &b[0], root, it->want ? &it->cap : NULL, 0);
  const cnode *r = &c->nodes[root];
  int is_object = r->t == CN_OBJ;
  /* found: 1 yes, 0 surely not, -1 past the bounds (may) */
  int found = c->found ? 1 : (c->deepest > it->max_depth || c->tables > it->max_nodes) ? -1 : 0;
  lua_pushinteger(L, it->i);
  canon_results(L, it, b, is_object, found == 0);
  buffers_done(b);
  /* name: the object's last member of that name */
  int named = 0;
  if (is_object && it->name)
    for (size_t k = r->n; k-- > 0 && !named;) {
      const cnode *kn = &c->nodes[c->kids[r->a + 2 * k]];
      if (kn->n == it->namen && memcmp(cs_bytes(&d, c, kn), it->name, it->namen) == 0) {
        const cnode *v = &c->nodes[c->kids[r->a + 2 * k + 1]];
        if (v->t == CN_STR) lua_pushlstring(L, cs_bytes(&d, c, v), v->n);
        else lua_pushnil(L);
        named = 1;
      }
    }
  if (!named) lua_pushnil(L);
  if (found < 0) lua_pushnil(L);
  else lua_pushboolean(L, found);
  scratch_done(c);
  return 5;
}

static int canon_array_step(lua_State *L, citer *it) {
  lua_Integer i = it->i + 1;
  if (lua_geti(L, CI_LIST, i) == LUA_TNIL) return 0;
  int item = lua_gettop(L);
  it->i = i;
  jopts o = {0, 1, NULL, NULL, NULL};
  opts_marks(L, &o);
  int is_object = 0;
  if (lua_istable(L, item)) {
    lua_Integer len;
    is_object = !table_kind(L, item, &o, &len);
  }
  for (int j = 0; j < it->cap.n; j++) it->cap.m[j].found = 0;
  if (it->want && is_object) o.cap = &it->cap;
  jbuf *b = state_buffers(L);
  encode_value(L, &b[0], item, &o, 0);
  int found = 0; /* as the lazy step's */
  if (it->find && lua_istable(L, item)) {
    jfind f = {0, it->max_depth, it->max_nodes};
    lua_pushlstring(L, it->fk, it->fkn);
    int key = lua_gettop(L);
    found = find_key_walk(L, item, key, 0, &f);
    lua_settop(L, key - 1);
  }
  lua_pushinteger(L, i);
  canon_results(L, it, b, is_object, found == 0);
  buffers_done(b);
  if (is_object && it->name) {
    lua_pushlstring(L, it->name, it->namen);
    if (lua_rawget(L, item) != LUA_TSTRING) { lua_pop(L, 1); lua_pushnil(L); }
  } else lua_pushnil(L);
  if (found < 0) lua_pushnil(L);
  else lua_pushboolean(L, found);
  return 5;
}

static int canon_next(lua_State *L) {
  citer *it = lua_touserdata(L, CI_ITER);
  lua_settop(L, 0);
  jlazy *z = to_lazy(L, CI_LIST);
  return z ? canon_lazy_step(L, it, z) : canon_array_step(L, it);
}

static int json_canonical_items(lua_State *L) {
  jlazy *z = to_lazy(L, 1);
  if (!z && !lua_istable(L, 1)) return mcpl_lua_error(L, "invalid_argument", "json.canonical_items: expected an array");
  lua_settop(L, 2);
  citer *it = lua_newuserdatauv(L, sizeof *it, 0);
  memset(it, 0, sizeof *it);
  int iu = lua_gettop(L);
  lua_newtable(L); /* the anchor of the option strings */
  int anchor = lua_gettop(L);
  it->max_depth = JSON_MAX_DEPTH;
  it->max_nodes = INT32_MAX;
  if (!lua_isnil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "keys") != LUA_TNIL) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, anchor, 1);
      capture_keys(L, lua_gettop(L), &it->cap, "json.canonical_items");
      it->want = 1;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "name") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TSTRING) return mcpl_lua_error(L, "invalid_argument", "json.canonical_items: name must be a string");
      it->name = lua_tolstring(L, -1, &it->namen);
      lua_rawseti(L, anchor, 2);
    } else lua_pop(L, 1);
    if (lua_getfield(L, 2, "find") != LUA_TNIL) {
      luaL_checktype(L, -1, LUA_TTABLE);
      int fi = lua_gettop(L);
      if (lua_rawgeti(L, fi, 1) != LUA_TSTRING) return mcpl_lua_error(L, "invalid_argument", "json.canonical_items: find needs a key");
      it->fk = lua_tolstring(L, -1, &it->fkn);
      lua_rawseti(L, anchor, 3);
      lua_rawgeti(L, fi, 2);
      lua_rawgeti(L, fi, 3);
      lua_Integer md = luaL_checkinteger(L, -2), mn = luaL_checkinteger(L, -1);
      it->max_depth = md < 0 ? -1 : md > JSON_MAX_DEPTH ? JSON_MAX_DEPTH : (int)md;
      it->max_nodes = mn < 0 ? 0 : mn > INT32_MAX ? INT32_MAX : (int)mn;
      it->find = 1;
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "text") == LUA_TBOOLEAN && !lua_toboolean(L, -1)) it->no_text = 1;
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "into") != LUA_TNIL) {
      if (!luaL_testudata(L, -1, JLIST_MT))
        return mcpl_lua_error(L, "invalid_argument", "json.canonical_items: into must be a json.list_builder()");
      it->into = lua_touserdata(L, -1);
      lua_rawseti(L, anchor, 4);
    } else lua_pop(L, 1);
  }
  if (z) it->at = z->open + 1;
  lua_pushvalue(L, UV_ARRAY);
  lua_pushvalue(L, UV_OBJECT);
  lua_pushvalue(L, UV_LAZY);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, iu);
  lua_pushvalue(L, anchor);
  lua_pushcclosure(L, canon_next, 6);
  return 1;
}

/* json.array([t]) / json.object([t]): mark a table's JSON kind. */
static int json_mark(lua_State *L, int mark) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushvalue(L, mark);
  lua_setmetatable(L, 1);
  return 1;
}
static int json_array(lua_State *L) { return json_mark(L, UV_ARRAY); }
static int json_object(lua_State *L) { return json_mark(L, UV_OBJECT); }

static int json_is_array(lua_State *L) {
  int r = 0;
  if (lua_istable(L, 1) && lua_getmetatable(L, 1)) r = lua_topointer(L, -1) == lua_topointer(L, UV_ARRAY);
  lua_pushboolean(L, r);
  return 1;
}

/* The JSON-RPC kind of the message at idx (lua/mcp/jsonrpc.lua, kind):
 * "response", "request", "notification", or NULL when it is none. */
static const char *rpc_kind(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx)) return NULL;
  if (lua_getmetatable(L, idx)) {
    int arr = lua_rawequal(L, -1, UV_ARRAY);
    lua_pop(L, 1);
    if (arr) return NULL;
  }
  lua_pushliteral(L, "id");
  int it = lua_rawget(L, idx);
  int id_ok = it == LUA_TSTRING || lua_isinteger(L, -1);
  int id_null = it == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL;
  lua_pop(L, 1);
  lua_pushliteral(L, "method");
  int mt = lua_rawget(L, idx);
  lua_pop(L, 1);
  if (mt == LUA_TSTRING) {
    if (it == LUA_TNIL) return "notification";
    return id_ok ? "request" : NULL;
  }
  lua_pushliteral(L, "result");
  int rt = lua_rawget(L, idx);
  lua_pop(L, 1);
  lua_pushliteral(L, "error");
  int et = lua_rawget(L, idx);
  lua_pop(L, 1);
  if ((rt != LUA_TNIL || et == LUA_TTABLE) && (id_ok || id_null || it == LUA_TNIL)) return "response";
  return NULL;
}

/* json.messages(text [, {lazy = {keys}}]) -> list, kinds | nil, "empty" |
 * nil, "invalid" | raises as json.decode: what a server sent, decoded as
 * JSON-RPC (lua/mcp/jsonrpc.lua, parse): a batch's messages or the one
 * message in a list, each message's kind at the same index in kinds. */
static int json_messages(lua_State *L) {
  json_decode(L); /* leaves the value on top: arguments at 1 and 2 */
  int v = lua_gettop(L);
  int batch = 0;
  if (lua_istable(L, v) && lua_getmetatable(L, v)) {
    batch = lua_rawequal(L, -1, UV_ARRAY);
    lua_pop(L, 1);
  }
  if (!batch) {
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, v);
    lua_rawseti(L, -2, 1);
    lua_replace(L, v);
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, v);
  if (n == 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "empty");
    return 2;
  }
  lua_createtable(L, (int)(n < 64 ? n : 64), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, v, i);
    const char *k = rpc_kind(L, -1);
    lua_pop(L, 1);
    if (!k) {
      lua_pushnil(L);
      lua_pushliteral(L, "invalid");
      return 2;
    }
    lua_pushstring(L, k);
    lua_rawseti(L, -2, i);
  }
  return 2;
}

/* json.check_fields(list, v [, path]) -> cleaned copy | nothing: the fast path
 * of the op-argument checker (lua/schema.lua, check_fields) for a decoded
 * object. list is schema.lua's compiled field list: n, the names sorted at
 * 1..n, their specs at n+i, kinds (CF_*) at 2n+i, Lua checkers at 3n+i, and
 * fields, the spec's own table. A field of a kind checked here (strings with
 * no enum or pattern, integers, booleans, any, free-form objects) is checked
 * here; any other goes through its Lua checker, which raises as the Lua path
 * would. Whenever a value fails a check made here, or is not a plain decoded
 * table, it answers nothing and raises nothing: the Lua path then runs and
 * names the problem. So it accepts exactly what that path accepts. */
enum { CF_LUA = 0, CF_STRING = 1, CF_INTEGER = 2, CF_BOOLEAN = 3, CF_ANY = 4, CF_OBJECT = 5 };

/* 1 if the table at idx has no metatable or json's object mark: then [k] is
 * a raw get and pairs a raw walk, as in the Lua path */
static int cf_plain(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return 1;
  luaL_getmetatable(L, OBJECT_MT);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

/* the spec's integer limit k (schema.lua makes sure it is one) -> 1, or 0 */
static int cf_limit(lua_State *L, int spec, const char *k, lua_Integer *out) {
  int got = lua_getfield(L, spec, k) != LUA_TNIL;
  if (got) *out = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return got;
}

/* 1 when the value at idx passes the native check of its kind */
static int cf_native(lua_State *L, int kind, int spec, int idx) {
  lua_Integer lim, len;
  switch (kind) {
  case CF_STRING: {
    size_t n;
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &n) : NULL;
    if (!s) return 0;
    for (size_t i = 0; i < n; i++)
      if ((unsigned char)s[i] >= 0x80) return 0; /* UTF-8 checked by Lua */
    len = (lua_Integer)n;
    if (cf_limit(L, spec, "min", &lim) && len < lim) return 0;
    if (cf_limit(L, spec, "max", &lim) && len > lim) return 0;
    return 1;
  }
  case CF_INTEGER:
    if (!lua_isinteger(L, idx)) return 0;
    len = lua_tointeger(L, idx);
    if (cf_limit(L, spec, "min", &lim) && len < lim) return 0;
    if (cf_limit(L, spec, "max", &lim) && len > lim) return 0;
    return 1;
  case CF_BOOLEAN:
    return lua_isboolean(L, idx);
  case CF_ANY:
    return !(lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL);
  case CF_OBJECT:
    return lua_istable(L, idx) && cf_plain(L, idx) && lua_rawlen(L, idx) == 0;
  }
  return 0;
}

static int json_check_fields(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 3);
  if (lua_isnil(L, 3)) { lua_pushliteral(L, ""); lua_replace(L, 3); }
  if (!lua_istable(L, 2) || !cf_plain(L, 2)) return 0;
  lua_getfield(L, 1, "n");
  lua_Integer n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "fields") != LUA_TTABLE) return 0; /* 4 */
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) return 0;
    lua_pushvalue(L, -1);
    if (lua_rawget(L, 4) == LUA_TNIL) return 0;
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, (int)n); /* 5 */
  for (lua_Integer i = 1; i <= n; i++) {
    lua_settop(L, 5);
    lua_rawgeti(L, 1, i);      /* 6: name */
    lua_rawgeti(L, 1, n + i);  /* 7: spec */
    lua_pushvalue(L, 6);
    if (lua_rawget(L, 2) == LUA_TNIL) { /* 8: the value */
      if (lua_getfield(L, 7, "required") != LUA_TNIL && lua_toboolean(L, -1)) return 0;
      if (lua_getfield(L, 7, "default") == LUA_TNIL) continue;
    } else {
      lua_rawgeti(L, 1, 2 * n + i);
      int kind = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
      if (kind == CF_LUA) {
        lua_rawgeti(L, 1, 3 * n + i);
        lua_pushvalue(L, 8);
        lua_pushvalue(L, 3);
        lua_pushvalue(L, 6);
        lua_call(L, 3, 1);
      } else if (!cf_native(L, kind, 7, 8)) return 0;
    }
    lua_pushvalue(L, 6);
    lua_insert(L, -2);
    lua_rawset(L, 5);
  }
  lua_settop(L, 5);
  return 1;
}

int luaopen_mcpl_json(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"decode", json_decode}, {"encode", json_encode}, {"canonical", json_canonical}, {"array", json_array},
    {"object", json_object}, {"is_array", json_is_array}, {"check_fields", json_check_fields},
    {"messages", json_messages}, {"find_key", json_find_key}, {"items", json_items},
    {"is_lazy", json_is_lazy}, {"canonical_items", json_canonical_items}, {"list_builder", json_list_builder},
    {NULL, NULL}};
  static const luaL_Reg list_methods[] = {{"drop", jlist_drop}, {"count", jlist_count}, {"text", jlist_text}, {NULL, NULL}};
  luaL_newmetatable(L, CSCRATCH_MT);
  lua_pushcfunction(L, cscratch_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, JBUF_MT);
  lua_pushcfunction(L, jbuf_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, JLIST_MT);
  lua_pushcfunction(L, jlist_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newlib(L, list_methods);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  luaL_newlibtable(L, fns);
  luaL_newmetatable(L, ARRAY_MT);
  lua_pushstring(L, "array");
  lua_setfield(L, -2, "__jsontype");
  luaL_newmetatable(L, OBJECT_MT);
  lua_pushstring(L, "object");
  lua_setfield(L, -2, "__jsontype");
  luaL_newmetatable(L, LAZY_MT);
  lua_pushcfunction(L, lazy_len);
  lua_setfield(L, -2, "__len");
  lua_pushboolean(L, 0); /* getmetatable(v) gives nothing to call */
  lua_setfield(L, -2, "__metatable");
  luaL_setfuncs(L, fns, 3);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
