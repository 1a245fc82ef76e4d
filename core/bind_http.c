/* bind_http.c: the Lua `http` module: parsed URLs, the address classifier,
 * and guarded requests. Engine Lua (lua/net.lua) decides, this enforces. */
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "http.h"

#define URL_MT "mcpl.http_url"
#define MANY_MAX 64

/* ---- URL userdata ----------------------------------------------------------- */

static http_url **url_check(lua_State *L, int i) {
  http_url **pu = luaL_checkudata(L, i, URL_MT);
  if (!*pu) luaL_argerror(L, i, "freed URL");
  return pu;
}

static void push_url(lua_State *L, http_url *u) {
  http_url **pu = lua_newuserdatauv(L, sizeof *pu, 0);
  *pu = u;
  luaL_setmetatable(L, URL_MT);
}

static int push_url_result(lua_State *L, http_url *u, const char *reason, const char *msg) {
  if (u) { push_url(L, u); return 1; }
  lua_pushnil(L);
  lua_pushstring(L, reason);
  lua_pushstring(L, msg);
  return 3;
}

/* http.url(text) -> url | nil, reason, message */
static int l_url(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char reason[64], msg[256];
  return push_url_result(L, http_url_parse(s, n, reason, sizeof reason, msg, sizeof msg),
                         reason, msg);
}

/* url:join(ref) -> url | nil, reason, message (redirect Location) */
static int l_url_join(lua_State *L) {
  http_url *u = *url_check(L, 1);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  char reason[64], msg[256];
  return push_url_result(L, http_url_join(u, s, n, reason, sizeof reason, msg, sizeof msg),
                         reason, msg);
}

/* url:parts() -> {url, scheme, host, port, path, query, ip} */
static int l_url_parts(lua_State *L) {
  http_url *u = *url_check(L, 1);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, u->text); lua_setfield(L, -2, "url");
  lua_pushstring(L, u->scheme); lua_setfield(L, -2, "scheme");
  lua_pushstring(L, u->host); lua_setfield(L, -2, "host");
  lua_pushinteger(L, u->port); lua_setfield(L, -2, "port");
  lua_pushstring(L, u->path); lua_setfield(L, -2, "path");
  if (u->query) { lua_pushstring(L, u->query); lua_setfield(L, -2, "query"); }
  lua_pushboolean(L, u->host_is_ip); lua_setfield(L, -2, "host_is_ip");
  return 1;
}

static int l_url_text(lua_State *L) {
  lua_pushstring(L, (*url_check(L, 1))->text);
  return 1;
}

static int l_url_same_origin(lua_State *L) {
  lua_pushboolean(L, http_url_same_origin(*url_check(L, 1), *url_check(L, 2)));
  return 1;
}

static int l_url_gc(lua_State *L) {
  http_url **pu = luaL_checkudata(L, 1, URL_MT);
  http_url_free(*pu);
  *pu = NULL;
  return 0;
}

/* ---- classifier ---------------------------------------------------------------- */

static const char *const class_names[] = {"public", "private", "special", "never"};

/* http.classify(text) -> class, block, embedded_ipv4|nil  (nil when not an address) */
static int l_classify(lua_State *L) {
  addr_t a;
  addr_info info;
  int zoned;
  char t[64];
  if (addr_parse(luaL_checkstring(L, 1), &a, &zoned) != 0) { lua_pushnil(L); return 1; }
  addr_classify(&a, &info);
  lua_pushstring(L, class_names[info.cls]);
  lua_pushstring(L, info.block);
  if (info.embedded) lua_pushstring(L, addr_text(&info.v4, t, sizeof t));
  else lua_pushnil(L);
  return 3;
}

/* http.cidr_valid(text) -> bool */
static int l_cidr_valid(lua_State *L) {
  addr_cidr c;
  lua_pushboolean(L, lua_type(L, 1) == LUA_TSTRING && addr_cidr_parse(lua_tostring(L, 1), &c) == 0);
  return 1;
}

/* http.in_cidr(addr, cidr) -> bool (nil when either does not parse) */
static int l_in_cidr(lua_State *L) {
  addr_t a;
  addr_cidr c;
  int zoned;
  if (addr_parse(luaL_checkstring(L, 1), &a, &zoned) != 0 ||
      addr_cidr_parse(luaL_checkstring(L, 2), &c) != 0) { lua_pushnil(L); return 1; }
  lua_pushboolean(L, addr_in_cidr(&a, &c));
  return 1;
}

/* ---- requests ------------------------------------------------------------------ */

/* Reads guard = {allow_private=, allow_http=, allow_cidrs={...}} at idx. */
void http_lua_guard(lua_State *L, int idx, addr_guard *g, int *allow_http) {
  memset(g, 0, sizeof *g);
  *allow_http = 0;
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "allow_private");
  g->allow_private = lua_toboolean(L, -1);
  lua_getfield(L, idx, "allow_http");
  *allow_http = lua_toboolean(L, -1);
  lua_pop(L, 2);
  if (lua_getfield(L, idx, "allow_cidrs") == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, -1);
    if (n > ADDR_GUARD_MAX_CIDRS) mcpl_lua_error(L, "invalid_argument", "too many allow_cidrs");
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, -1, i);
      const char *s = lua_tostring(L, -1);
      if (!s || addr_cidr_parse(s, &g->cidrs[g->ncidrs]) != 0)
        mcpl_lua_error(L, "invalid_argument", "allow_cidrs entry %d is not an address or CIDR", (int)i);
      g->ncidrs++;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

long http_lua_opt_long(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  long v = (long)luaL_optinteger(L, -1, 0);
  lua_pop(L, 1);
  if (v < 0) mcpl_lua_error(L, "invalid_argument", "%s must not be negative", k);
  return v;
}

/* Header lines built in C are freed by the caller after the transfer. */
typedef struct {
  char **lines;
  size_t n;
} hdrbuf;

static void hdr_free(hdrbuf *hb) {
  for (size_t i = 0; i < hb->n; i++) free(hb->lines[i]);
  free(hb->lines);
  hb->lines = NULL;
  hb->n = 0;
}

static void hdr_add(lua_State *L, hdrbuf *hb, const char *k, const char *v) {
  size_t kl = strlen(k), vl = strlen(v);
  char **nl = realloc(hb->lines, (hb->n + 1) * sizeof *nl);
  if (!nl) mcpl_lua_error(L, "internal", "out of memory");
  hb->lines = nl;
  char *line = malloc(kl + vl + 3);
  if (!line) mcpl_lua_error(L, "internal", "out of memory");
  memcpy(line, k, kl);
  memcpy(line + kl, ": ", 2);
  memcpy(line + kl + 2, v, vl + 1);
  hb->lines[hb->n++] = line;
}

/* Header buffers live in a userdata so an error raised half-way through
 * reading a spec frees them (through __gc) instead of leaking. */
#define HDRS_MT "mcpl.http_hdrs"

static int hdrs_gc(lua_State *L) {
  hdrbuf *hb = luaL_checkudata(L, 1, HDRS_MT);
  for (int i = 0; i < MANY_MAX; i++) hdr_free(&hb[i]);
  return 0;
}

static hdrbuf *new_hdrs(lua_State *L) {
  hdrbuf *hb = lua_newuserdatauv(L, MANY_MAX * sizeof *hb, 0);
  memset(hb, 0, MANY_MAX * sizeof *hb);
  if (luaL_newmetatable(L, HDRS_MT)) {
    lua_pushcfunction(L, hdrs_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return hb;
}

void http_lua_spec(lua_State *L, int idx, http_request *rq) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "method");
  rq->method = lua_tostring(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "body");
  if (!lua_isnil(L, -1)) rq->body = luaL_checklstring(L, -1, &rq->body_len);
  lua_pop(L, 1);
  lua_getfield(L, idx, "guard");
  http_lua_guard(L, lua_gettop(L), &rq->guard, &rq->allow_http);
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "limits") == LUA_TTABLE) {
    int t = lua_gettop(L);
    rq->limits.connect_timeout_ms = http_lua_opt_long(L, t, "connect_timeout_ms");
    rq->limits.timeout_ms = http_lua_opt_long(L, t, "timeout_ms");
    rq->limits.max_body = (size_t)http_lua_opt_long(L, t, "max_bytes");
    rq->limits.max_header = (size_t)http_lua_opt_long(L, t, "max_header_bytes");
  }
  lua_pop(L, 1);
}

/* Fills rq from the spec table at idx; strings stay owned by the table. */
static void read_spec(lua_State *L, int idx, http_request *rq, hdrbuf *hb) {
  luaL_checktype(L, idx, LUA_TTABLE);
  memset(rq, 0, sizeof *rq);
  lua_getfield(L, idx, "url");
  rq->url = *url_check(L, -1);
  lua_pop(L, 1);
  rq->cancel = mcpl_state_cancel(L);
  http_lua_spec(L, idx, rq);
  if (lua_getfield(L, idx, "headers") == LUA_TTABLE) {
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
        hdr_add(L, hb, lua_tostring(L, -2), lua_tostring(L, -1));
      else mcpl_lua_error(L, "invalid_argument", "headers must map names to strings");
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  rq->headers = (const char *const *)hb->lines;
  rq->nheaders = hb->n;
}

static void push_error(lua_State *L, const http_response *rs) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, rs->code); lua_setfield(L, -2, "code");
  lua_pushstring(L, rs->reason); lua_setfield(L, -2, "reason");
  lua_pushstring(L, rs->message); lua_setfield(L, -2, "message");
}

static void push_response(lua_State *L, const http_response *rs) {
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, rs->status); lua_setfield(L, -2, "status");
  lua_pushinteger(L, rs->http_version); lua_setfield(L, -2, "http_version");
  lua_pushstring(L, rs->primary_ip); lua_setfield(L, -2, "primary_ip");
  lua_pushlstring(L, rs->body ? rs->body : "", rs->body_len); lua_setfield(L, -2, "body");
  http_lua_push_headers(L, rs);
  lua_setfield(L, -2, "headers");
  lua_createtable(L, (int)rs->nheaders, 0);
  for (size_t i = 0; i < rs->nheaders; i++) {
    const http_header *h = &rs->headers[i];
    lua_createtable(L, 2, 0);
    lua_pushstring(L, h->name); lua_rawseti(L, -2, 1);
    lua_pushstring(L, h->value); lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "header_list");
}

/* Pushes the response headers as {lowercase name = value}; repeated fields
 * are joined with ", " as HTTP allows. */
void http_lua_push_headers(lua_State *L, const http_response *rs) {
  lua_createtable(L, 0, (int)rs->nheaders);
  for (size_t i = 0; i < rs->nheaders; i++) {
    const http_header *h = &rs->headers[i];
    if (lua_getfield(L, -1, h->name) == LUA_TSTRING) {
      lua_pushstring(L, ", ");
      lua_pushstring(L, h->value);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushstring(L, h->value);
    }
    lua_setfield(L, -2, h->name);
  }
}

/* The headers as a view: one userdata holding every field's name and value
 * in one block (n, then each field's name and value offsets, then the text),
 * read by name on demand, so a response makes no Lua string or table per
 * header it carries. */
#define HVIEW_MT "mcpl.http.header_view"
typedef struct {
  size_t n;
  size_t off[]; /* 2n: name, value; into the text after them */
} hview;

static const char *hv_text(const hview *v) { return (const char *)(v->off + 2 * v->n); }

/* view[name] -> the value of that lowercase field name, repeated fields
 * joined with ", " | nil */
static int hview_index(lua_State *L) {
  const hview *v = luaL_checkudata(L, 1, HVIEW_MT);
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  const char *t = hv_text(v), *first = NULL;
  luaL_Buffer b;
  int many = 0;
  for (size_t i = 0; k && i < v->n; i++) {
    if (strcmp(t + v->off[2 * i], k) != 0) continue;
    const char *val = t + v->off[2 * i + 1];
    if (!first) { first = val; continue; }
    if (!many) { luaL_buffinit(L, &b); luaL_addstring(&b, first); many = 1; }
    luaL_addstring(&b, ", ");
    luaL_addstring(&b, val);
  }
  if (many) luaL_pushresult(&b);
  else if (first) lua_pushstring(L, first);
  else lua_pushnil(L);
  return 1;
}

static int hview_next(lua_State *L) {
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

/* pairs(view): over a table of them all, as http_lua_push_headers makes */
static int hview_pairs(lua_State *L) {
  const hview *v = luaL_checkudata(L, 1, HVIEW_MT);
  const char *t = hv_text(v);
  lua_pushcfunction(L, hview_next);
  lua_createtable(L, 0, (int)v->n);
  for (size_t i = 0; i < v->n; i++) {
    const char *name = t + v->off[2 * i];
    if (lua_getfield(L, -1, name) == LUA_TSTRING) {
      lua_pushstring(L, ", ");
      lua_pushstring(L, t + v->off[2 * i + 1]);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushstring(L, t + v->off[2 * i + 1]);
    }
    lua_setfield(L, -2, name);
  }
  lua_pushnil(L);
  return 3;
}

void http_lua_push_header_view(lua_State *L, const http_response *rs) {
  size_t text = 0;
  for (size_t i = 0; i < rs->nheaders; i++)
    text += strlen(rs->headers[i].name) + strlen(rs->headers[i].value) + 2;
  hview *v = lua_newuserdatauv(L, sizeof *v + 2 * rs->nheaders * sizeof v->off[0] + text, 0);
  v->n = rs->nheaders;
  char *t = (char *)(v->off + 2 * v->n);
  size_t at = 0;
  for (size_t i = 0; i < rs->nheaders; i++) {
    size_t nl = strlen(rs->headers[i].name) + 1, vl = strlen(rs->headers[i].value) + 1;
    v->off[2 * i] = at;
    memcpy(t + at, rs->headers[i].name, nl);
    at += nl;
    v->off[2 * i + 1] = at;
    memcpy(t + at, rs->headers[i].value, vl);
    at += vl;
  }
  if (luaL_newmetatable(L, HVIEW_MT)) {
    lua_pushcfunction(L, hview_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, hview_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
  }
  lua_setmetatable(L, -2);
}

/* http.request(spec) -> response | nil, {code, reason, message} */
static int l_request(lua_State *L) {
  http_request rq;
  http_response rs;
  hdrbuf *hb = new_hdrs(L);
  read_spec(L, 1, &rq, hb);
  int rc = http_perform(mcpl_engine_of(L), &rq, &rs);
  hdr_free(hb);
  if (rc != 0) {
    lua_pushnil(L);
    push_error(L, &rs);
    http_response_free(&rs);
    return 2;
  }
  push_response(L, &rs);
  http_response_free(&rs);
  return 1;
}

/* http.request_many({spec, ...}) -> {{response=...} | {error=...}, ...} */
static int l_request_many(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  if (n < 0 || n > MANY_MAX) return mcpl_lua_error(L, "invalid_argument", "at most %d requests at once", MANY_MAX);
  http_request rq[MANY_MAX];
  http_response rs[MANY_MAX];
  hdrbuf *hb = new_hdrs(L);
  for (lua_Integer i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    /* The specs stay referenced by argument 1, which keeps their strings. */
    if (!lua_istable(L, -1))
      return mcpl_lua_error(L, "invalid_argument", "request %d is not a table", (int)i + 1);
    read_spec(L, lua_gettop(L), &rq[i], &hb[i]);
    lua_pop(L, 1);
  }
  http_perform_many(mcpl_engine_of(L), rq, rs, (size_t)n);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 0; i < n; i++) {
    hdr_free(&hb[i]);
    lua_createtable(L, 0, 1);
    if (rs[i].code) push_error(L, &rs[i]); else push_response(L, &rs[i]);
    lua_setfield(L, -2, rs[i].code ? "error" : "response");
    lua_rawseti(L, -2, i + 1);
    http_response_free(&rs[i]);
  }
  return 1;
}

/* http.judge(url, guard, timeout_ms) -> {allowed, code, reason, message, addresses} */
static int l_judge(lua_State *L) {
  http_url *u = *url_check(L, 1);
  addr_guard g;
  int allow_http;
  http_lua_guard(L, 2, &g, &allow_http);
  long timeout = (long)luaL_optinteger(L, 3, 5000);
  char addrs[HTTP_MAX_ADDRS][64];
  size_t n = 0;
  http_response rs;
  int rc;
  if (strcmp(u->scheme, "https") != 0 && !allow_http) {
    memset(&rs, 0, sizeof rs);
    rs.code = "url_blocked";
    strcpy(rs.reason, "scheme");
    strcpy(rs.message, "only https is allowed");
    rc = -1;
  } else {
    rc = http_judge(mcpl_engine_of(L), u, &g, timeout, mcpl_state_cancel(L), addrs, HTTP_MAX_ADDRS,
                    &n, &rs);
  }
  lua_createtable(L, 0, 5);
  lua_pushboolean(L, rc == 0); lua_setfield(L, -2, "allowed");
  if (rc != 0) {
    lua_pushstring(L, rs.code); lua_setfield(L, -2, "code");
    lua_pushstring(L, rs.reason); lua_setfield(L, -2, "reason");
    lua_pushstring(L, rs.message); lua_setfield(L, -2, "message");
  }
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, addrs[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "addresses");
  return 1;
}

int luaopen_mcpl_http(lua_State *L) {
  static const luaL_Reg url_methods[] = {
    {"parts", l_url_parts}, {"text", l_url_text}, {"join", l_url_join},
    {"same_origin", l_url_same_origin}, {NULL, NULL}};
  static const luaL_Reg fns[] = {
    {"url", l_url}, {"classify", l_classify}, {"cidr_valid", l_cidr_valid},
    {"in_cidr", l_in_cidr}, {"request", l_request}, {"request_many", l_request_many},
    {"judge", l_judge}, {NULL, NULL}};
  if (luaL_newmetatable(L, URL_MT)) {
    luaL_newlib(L, url_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_url_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_url_text);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  return 1;
}
