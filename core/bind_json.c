/* bind_json.c: the Lua `json` module: lua-cjson decodes (its setters never
 * exposed); encoding is ours, so empty arrays, integers and key order survive. */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <lauxlib.h>
#include <lua-cjson.h>
#include "engine.h"

#define JSON_MAX_DEPTH 200
#define ARRAY_MT "mcpl.json.array"
#define OBJECT_MT "mcpl.json.object"
#define DECODER_KEY "mcpl.json.cjson_decode"

/* Empty arrays cannot be told from empty objects once cjson has made them
 * Lua tables, so before decoding each `[]` is replaced by a string no input
 * can guess (random per process) and turned back into a marked table. */
static char sentinel[40];
static size_t sentinel_len;
static pthread_once_t sentinel_once = PTHREAD_ONCE_INIT;

static void sentinel_init(void) {
  unsigned char r[12];
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
    /* fall back to address entropy; still unknown to remote input */
    uintptr_t a = (uintptr_t)&r;
    for (size_t i = 0; i < sizeof r; i++) r[i] = (unsigned char)(a >> (i % 8 * 8));
  }
  int n = snprintf(sentinel, sizeof sentinel, "\x01[]");
  for (size_t i = 0; i < sizeof r; i++) n += snprintf(sentinel + n, sizeof sentinel - (size_t)n, "%02x", r[i]);
  sentinel_len = (size_t)n;
}

/* ---- decode ------------------------------------------------------------- */

/* Returns a malloc'd copy of s with every empty array outside strings
 * replaced by the sentinel string literal, or NULL if there is none. */
static char *mark_empty_arrays(const char *s, size_t n, size_t *outn) {
  size_t count = 0;
  int in_str = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\') i++;
      else if (c == '"') in_str = 0;
    } else if (c == '"') in_str = 1;
    else if (c == '[') {
      size_t j = i + 1;
      while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r')) j++;
      if (j < n && s[j] == ']') count++;
    }
  }
  if (!count) return NULL;
  /* the literal is "\u0001[]<hex>": 6 bytes for the escape + rest + quotes */
  size_t lit = sentinel_len - 1 + 6 + 2;
  char *out = malloc(n + count * lit + 1);
  if (!out) return NULL;
  size_t o = 0;
  in_str = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in_str) {
      out[o++] = c;
      if (c == '\\' && i + 1 < n) out[o++] = s[++i];
      else if (c == '"') in_str = 0;
      continue;
    }
    if (c == '"') { in_str = 1; out[o++] = c; continue; }
    if (c == '[') {
      size_t j = i + 1;
      while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r')) j++;
      if (j < n && s[j] == ']') {
        o += (size_t)sprintf(out + o, "\"\\u0001%s\"", sentinel + 1);
        i = j;
        continue;
      }
    }
    out[o++] = c;
  }
  out[o] = 0;
  *outn = o;
  return out;
}

static int is_sentinel(lua_State *L, int idx) {
  size_t n;
  if (lua_type(L, idx) != LUA_TSTRING) return 0;
  const char *s = lua_tolstring(L, idx, &n);
  return n == sentinel_len && memcmp(s, sentinel, n) == 0;
}

static void push_marked(lua_State *L, const char *mt) {
  lua_newtable(L);
  luaL_setmetatable(L, mt);
}

/* Walks a decoded value (at top): integral floats become integers, sentinel
 * strings become marked empty arrays. Returns 1 when the value at top was
 * replaced (a table is fixed in place: only changed entries are written back,
 * so the walk over a large list allocates nothing for ordinary values). */
static int fix_value(lua_State *L, int depth) {
  int t = lua_type(L, -1);
  if (t == LUA_TNUMBER) {
    if (lua_isinteger(L, -1)) return 0;
    lua_Number d = lua_tonumber(L, -1);
    if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
      lua_pop(L, 1);
      lua_pushinteger(L, (lua_Integer)d);
      return 1;
    }
  } else if (t == LUA_TSTRING) {
    if (is_sentinel(L, -1)) {
      lua_pop(L, 1);
      push_marked(L, ARRAY_MT);
      return 1;
    }
  } else if (t == LUA_TTABLE && depth < JSON_MAX_DEPTH) {
    luaL_checkstack(L, 4, "json nesting");
    int tbl = lua_gettop(L);
    int n = (int)lua_rawlen(L, tbl);
    if (n > 0) luaL_setmetatable(L, ARRAY_MT);
    lua_pushnil(L);
    while (lua_next(L, tbl)) {
      int vt = lua_type(L, -1);
      if ((vt == LUA_TTABLE || vt == LUA_TSTRING || vt == LUA_TNUMBER) && fix_value(L, depth + 1)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, tbl); /* replacing an existing key is allowed during next */
      } else lua_pop(L, 1);
    }
  }
  return 0;
}

/* json.decode(s) -> value | raises {code="invalid_argument"} */
static int json_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  pthread_once(&sentinel_once, sentinel_init);
  size_t mn = 0;
  char *marked = mark_empty_arrays(s, n, &mn);
  lua_getfield(L, LUA_REGISTRYINDEX, DECODER_KEY);
  if (marked) lua_pushlstring(L, marked, mn); else lua_pushvalue(L, 1);
  free(marked);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *m = lua_tostring(L, -1);
    return mcpl_lua_error(L, "invalid_argument", "invalid JSON: %s", m ? m : "?");
  }
  fix_value(L, 0);
  return 1;
}

/* ---- encode ------------------------------------------------------------- */

typedef struct {
  char *p;
  size_t n, cap;
} jbuf;

static int jbuf_gc(lua_State *L) {
  jbuf *b = lua_touserdata(L, 1);
  free(b->p);
  b->p = NULL;
  return 0;
}

#define JBUF2_MT "mcpl.json.jbuf2"
static int jbuf2_gc(lua_State *L) {
  jbuf *b = lua_touserdata(L, 1);
  free(b[0].p);
  free(b[1].p);
  b[0].p = b[1].p = NULL;
  return 0;
}

static void jb_reserve(lua_State *L, jbuf *b, size_t more) {
  if (b->n + more <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->n + more) cap *= 2;
  if (cap > (size_t)512 * 1024 * 1024) mcpl_lua_error(L, "too_large", "JSON output too large");
  char *p = realloc(b->p, cap);
  if (!p) mcpl_lua_error(L, "internal", "out of memory encoding JSON");
  b->p = p;
  b->cap = cap;
}

static void jb_add(lua_State *L, jbuf *b, const char *s, size_t n) {
  jb_reserve(L, b, n);
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void jb_addc(lua_State *L, jbuf *b, char c) { jb_reserve(L, b, 1); b->p[b->n++] = c; }

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

static void jb_string(lua_State *L, jbuf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  jb_reserve(L, b, n + 2);
  b->p[b->n++] = '"';
  for (size_t i = 0; i < n;) {
    /* a run of printable ASCII other than '"' and '\\' is copied as it is */
    size_t j = i;
    while (j < n && (unsigned char)s[j] >= 0x20 && (unsigned char)s[j] < 0x80 && s[j] != '"' && s[j] != '\\') j++;
    if (j > i) {
      jb_add(L, b, s + i, j - i);
      i = j;
      continue;
    }
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      jb_add(L, b, e, 2);
      i++;
    } else if (c < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      if (c == '\n') jb_add(L, b, "\\n", 2);
      else if (c == '\r') jb_add(L, b, "\\r", 2);
      else if (c == '\t') jb_add(L, b, "\\t", 2);
      else jb_add(L, b, e, 6);
      i++;
    } else if (c < 0x80) {
      jb_addc(L, b, (char)c);
      i++;
    } else {
      size_t l = utf8_len((const unsigned char *)s + i, n - i);
      if (l) { jb_add(L, b, s + i, l); i += l; }
      else { jb_add(L, b, "\\ufffd", 6); i++; }
    }
  }
  jb_addc(L, b, '"');
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
} jopts;

static void jb_indent(lua_State *L, jbuf *b, const jopts *o, int depth) {
  if (!o->pretty) return;
  jb_addc(L, b, '\n');
  for (int i = 0; i < depth; i++) jb_add(L, b, "  ", 2);
}

/* 1 = array, 0 = object; raises for tables that are neither. */
static int table_kind(lua_State *L, int idx, lua_Integer *len) {
  int kind = -1;
  if (lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, ARRAY_MT);
    if (lua_rawequal(L, -1, -2)) kind = 1;
    lua_pop(L, 1);
    luaL_getmetatable(L, OBJECT_MT);
    if (lua_rawequal(L, -1, -2)) kind = 0;
    lua_pop(L, 2);
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  *len = n;
  if (kind == 0) return 0;
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

static void encode_member(lua_State *L, jbuf *b, const jopts *o, int depth, int first,
                          const char *k, size_t kn, int vidx) {
  if (!first) jb_addc(L, b, ',');
  jb_indent(L, b, o, depth + 1);
  jb_string(L, b, k, kn);
  jb_add(L, b, o->pretty ? ": " : ":", o->pretty ? 2 : 1);
  size_t start = b->n;
  encode_value(L, b, vidx, o, depth + 1);
  if (depth == 0 && o->cap) {
    for (int i = 0; i < o->cap->n; i++)
      if (o->cap->m[i].kn == kn && memcmp(o->cap->m[i].k, k, kn) == 0) {
        o->cap->m[i].start = start;
        o->cap->m[i].end = b->n;
        o->cap->m[i].found = 1;
      }
  }
}

static void encode_object_large(lua_State *L, jbuf *b, int idx, const jopts *o, int depth, size_t nkeys);

static void encode_object(lua_State *L, jbuf *b, int idx, const jopts *o, int depth) {
  /* Count keys: strings, or integers (written in their decimal form). */
  size_t nkeys = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int kt = lua_type(L, -1);
    if (kt != LUA_TSTRING && !(kt == LUA_TNUMBER && lua_isinteger(L, -1)))
      mcpl_lua_error(L, "invalid_argument", "cannot encode table key of type %s", luaL_typename(L, -1));
    nkeys++;
  }
  jb_addc(L, b, '{');
  if (nkeys == 0) { jb_addc(L, b, '}'); return; }
  if (nkeys > SMALL_OBJECT) { encode_object_large(L, b, idx, o, depth, nkeys); return; }
  jmember m[SMALL_OBJECT];
  int base = lua_gettop(L);
  luaL_checkstack(L, (int)nkeys * 3 + 4, "json object");
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    /* key, value -> key copy (a string), value; the original key continues the walk */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    if (lua_type(L, -2) != LUA_TSTRING) lua_tolstring(L, -2, NULL); /* converts the copy */
    int at = lua_gettop(L) - 1;
    m[k].k = lua_tolstring(L, at, &m[k].n);
    m[k].at = at;
    k++;
    lua_pushvalue(L, at - 1); /* the original key, for lua_next */
  }
  assert(k == nkeys);
  if (o->sort) qsort(m, nkeys, sizeof *m, cmp_members);
  for (size_t i = 0; i < nkeys; i++) encode_member(L, b, o, depth, i == 0, m[i].k, m[i].n, m[i].at + 1);
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
  char num[64];
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
    if (lua_isinteger(L, idx)) {
      int k = snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, idx));
      jb_add(L, b, num, (size_t)k);
    } else {
      lua_Number d = lua_tonumber(L, idx);
      if (!isfinite(d)) mcpl_lua_error(L, "invalid_argument", "cannot encode NaN or infinity");
      int k;
      if (d == floor(d) && fabs(d) <= 9007199254740992.0) k = snprintf(num, sizeof num, "%.0f", d);
      else k = snprintf(num, sizeof num, "%.17g", d);
      jb_add(L, b, num, (size_t)k);
    }
    break;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    jb_string(L, b, s, n);
    break;
  }
  case LUA_TTABLE: {
    lua_Integer n;
    if (table_kind(L, idx, &n)) {
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

/* json.encode(v [, {pretty=bool, sort=bool}]) -> string */
static int json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  jopts o = {0, 0, NULL};
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "pretty");
    o.pretty = lua_toboolean(L, -1);
    lua_getfield(L, 2, "sort");
    o.sort = lua_toboolean(L, -1) || o.pretty;
    lua_pop(L, 2);
  }
  lua_settop(L, 1);
  jbuf *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  lua_newtable(L);
  lua_pushcfunction(L, jbuf_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  encode_value(L, b, 1, &o, 0);
  lua_pushlstring(L, b->p ? b->p : "", b->n);
  free(b->p);
  b->p = NULL;
  return 1;
}

static int cmp_capture_keys(const void *a, const void *b) {
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  return strcmp(x, y);
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
  const char *sorted[CANON_MAX_KEYS];
  int want = !lua_isnoneornil(L, 2);
  if (want) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer nk = (lua_Integer)lua_rawlen(L, 2);
    if (nk > CANON_MAX_KEYS) return mcpl_lua_error(L, "invalid_argument", "json.canonical: at most %d keys", CANON_MAX_KEYS);
    for (lua_Integer i = 1; i <= nk; i++) {
      if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
        return mcpl_lua_error(L, "invalid_argument", "json.canonical: keys must be strings");
      size_t kl;
      sorted[cap.n] = lua_tolstring(L, -1, &kl); /* anchored by the keys table */
      if (strlen(sorted[cap.n]) != kl) return mcpl_lua_error(L, "invalid_argument", "json.canonical: a key holds a NUL");
      lua_pop(L, 1);
      cap.n++;
    }
    qsort(sorted, (size_t)cap.n, sizeof *sorted, cmp_capture_keys);
    for (int i = 0; i < cap.n; i++) {
      cap.m[i].k = sorted[i];
      cap.m[i].kn = strlen(sorted[i]);
      cap.m[i].found = 0;
    }
    if (lua_type(L, 1) != LUA_TTABLE)
      return mcpl_lua_error(L, "invalid_argument", "json.canonical: keys need an object");
    lua_Integer len;
    if (table_kind(L, 1, &len))
      return mcpl_lua_error(L, "invalid_argument", "json.canonical: keys need an object");
  }
  jopts o = {0, 1, want ? &cap : NULL};
  lua_settop(L, 2); /* the keys table stays: it anchors the key strings */
  /* both buffers in one userdata, freed by its (shared) metatable's __gc if
   * encoding raises */
  jbuf *b = lua_newuserdatauv(L, 2 * sizeof *b, 0), *pb = b + 1;
  memset(b, 0, 2 * sizeof *b);
  luaL_setmetatable(L, JBUF2_MT);
  encode_value(L, b, 1, &o, 0);
  lua_pushlstring(L, b->p ? b->p : "", b->n);
  if (!want) {
    free(b->p);
    b->p = NULL;
    return 1;
  }
  /* the part: the captured members in key order (the keys are sorted as
   * encode_object sorts, byte by byte; none holds a NUL) */
  jb_addc(L, pb, '{');
  int first = 1;
  for (int i = 0; i < cap.n; i++) {
    if (!cap.m[i].found || (i > 0 && strcmp(cap.m[i].k, cap.m[i - 1].k) == 0)) continue;
    if (!first) jb_addc(L, pb, ',');
    first = 0;
    jb_string(L, pb, cap.m[i].k, cap.m[i].kn);
    jb_addc(L, pb, ':');
    jb_add(L, pb, b->p + cap.m[i].start, cap.m[i].end - cap.m[i].start);
  }
  jb_addc(L, pb, '}');
  lua_pushlstring(L, pb->p, pb->n);
  free(b->p);
  b->p = NULL;
  free(pb->p);
  pb->p = NULL;
  return 2; /* text, part */
}

/* json.array([t]) / json.object([t]): mark a table's JSON kind. */
static int json_mark(lua_State *L, const char *mt) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setmetatable(L, mt);
  return 1;
}
static int json_array(lua_State *L) { return json_mark(L, ARRAY_MT); }
static int json_object(lua_State *L) { return json_mark(L, OBJECT_MT); }

static int json_is_array(lua_State *L) {
  int r = 0;
  if (lua_istable(L, 1) && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, ARRAY_MT);
    r = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, r);
  return 1;
}

int luaopen_mcpl_json(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"decode", json_decode}, {"encode", json_encode}, {"canonical", json_canonical}, {"array", json_array},
    {"object", json_object}, {"is_array", json_is_array}, {NULL, NULL}};
  luaL_newmetatable(L, ARRAY_MT);
  lua_pushstring(L, "array");
  lua_setfield(L, -2, "__jsontype");
  lua_pop(L, 1);
  luaL_newmetatable(L, OBJECT_MT);
  lua_pushstring(L, "object");
  lua_setfield(L, -2, "__jsontype");
  lua_pop(L, 1);
  luaL_newmetatable(L, JBUF2_MT);
  lua_pushcfunction(L, jbuf2_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  /* A private cjson instance: only its decode function is kept. */
  lua_pushcfunction(L, luaopen_cjson);
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "decode_max_depth");
  lua_pushinteger(L, JSON_MAX_DEPTH);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "decode_invalid_numbers");
  lua_pushboolean(L, 0);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "decode");
  lua_setfield(L, LUA_REGISTRYINDEX, DECODER_KEY);
  lua_getfield(L, -1, "null");
  lua_insert(L, -3);
  lua_pop(L, 2);
  luaL_newlib(L, fns);
  lua_insert(L, -2);
  lua_setfield(L, -2, "null");
  return 1;
}
