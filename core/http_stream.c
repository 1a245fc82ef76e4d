/* http_stream.c: streamed HTTP exchanges for the MCP client: SSE response
 * bodies are parsed in C and handed to Lua event by event, on http.h. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>
#include <lauxlib.h>
#include "engine.h"
#include "http_stream.h"
#include "sse.h"

#define HS_URL_MT "mcpl.http_url"       /* the http binding's URL userdata */
#define HS_MAX_EVENT_DEFAULT (4 * 1024 * 1024)
#define HS_MAX_HEADERS 64

typedef struct {
  lua_State *L;
  int fn;            /* stack index of on_event (0: none) */
  sse_parser sse;
  int sse_mode;      /* the response is 2xx text/event-stream */
  int stopped;       /* on_event asked to stop: a deliberate end */
  int err_ref;       /* on_event raised: the error value (LUA_NOREF: none) */
  int sse_rc;        /* SSE_TOO_LARGE / SSE_NOMEM when the parser failed */
  char *body;        /* non-SSE bodies are buffered here */
  size_t body_len, body_cap;
  int nomem;
  double drain_until; /* after a stop: read on until then, so the connection survives */
  size_t drained;
} hs_ctx;

/* After the caller has what it wanted, the rest of the stream is read and
 * dropped (servers end a POST's SSE stream after the response), so the
 * connection stays reusable; a stream that goes on is cut after a short
 * grace, costing only that connection. */
#define HS_DRAIN_MS 250.0
#define HS_DRAIN_MAX (64 * 1024)

static double hs_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int hs_on_tick(void *ud) {
  hs_ctx *c = ud;
  return c->stopped && hs_now_ms() > c->drain_until;
}

static int hs_on_response(void *ud, const http_response *rs) {
  hs_ctx *c = ud;
  const char *ct = http_response_header(rs, "content-type");
  c->sse_mode = rs->status >= 200 && rs->status < 300 && ct &&
                strncasecmp(ct, "text/event-stream", 17) == 0;
  return 0;
}

/* Runs on_event({event=, data=, id=, has_id=}) inside a protected call, so
 * a Lua error never unwinds through libcurl. */
static int hs_event(void *ud, const sse_event *ev) {
  hs_ctx *c = ud;
  lua_State *L = c->L;
  if (!c->fn) return 0;
  lua_pushvalue(L, c->fn);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, ev->event); lua_setfield(L, -2, "event");
  lua_pushlstring(L, ev->data, ev->data_len); lua_setfield(L, -2, "data");
  lua_pushstring(L, ev->id); lua_setfield(L, -2, "id");
  lua_pushboolean(L, ev->has_id); lua_setfield(L, -2, "has_id");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    c->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
  }
  int stop = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (stop) {
    c->stopped = 1;
    c->drain_until = hs_now_ms() + HS_DRAIN_MS;
  }
  return stop;
}

static int hs_on_body(void *ud, const char *data, size_t len) {
  hs_ctx *c = ud;
  if (c->sse_mode) {
    if (c->stopped) { /* draining */
      c->drained += len;
      return c->drained > HS_DRAIN_MAX || hs_now_ms() > c->drain_until;
    }
    int rc = sse_feed(&c->sse, data, len, hs_event, c);
    if (rc == SSE_OK || (rc == SSE_STOP && c->stopped)) return 0;
    if (rc != SSE_STOP) c->sse_rc = rc;
    return 1;
  }
  /* the transfer layer enforces max_body on what it hands us */
  if (c->body_len + len + 1 > c->body_cap) {
    size_t cap = c->body_cap ? c->body_cap : 4096;
    while (cap < c->body_len + len + 1) cap *= 2;
    char *nb = mcpl_big_realloc(c->body, c->body_cap, cap);
    if (!nb) { c->nomem = 1; return 1; }
    c->body = nb;
    c->body_cap = cap;
  }
  memcpy(c->body + c->body_len, data, len);
  c->body_len += len;
  return 0;
}

static void push_result(lua_State *L, const hs_ctx *c, const http_response *rs) {
  lua_createtable(L, 0, c->sse_mode ? 8 : 5);
  lua_pushinteger(L, rs->status); lua_setfield(L, -2, "status");
  http_lua_push_header_view(L, rs); lua_setfield(L, -2, "headers");
  lua_pushboolean(L, c->sse_mode); lua_setfield(L, -2, "sse");
  lua_pushstring(L, rs->primary_ip); lua_setfield(L, -2, "primary_ip");
  if (c->sse_mode) { /* what only a stream has */
    lua_pushboolean(L, c->stopped); lua_setfield(L, -2, "stopped");
    lua_pushinteger(L, (lua_Integer)c->sse.events); lua_setfield(L, -2, "events");
    lua_pushstring(L, sse_last_id(&c->sse)); lua_setfield(L, -2, "last_event_id");
    lua_pushinteger(L, sse_retry(&c->sse)); lua_setfield(L, -2, "retry_ms");
  } else {
    lua_pushlstring(L, c->body ? c->body : "", c->body_len);
    lua_setfield(L, -2, "body");
  }
}

static void push_err(lua_State *L, const char *code, const char *reason, const char *msg) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, code); lua_setfield(L, -2, "code");
  lua_pushstring(L, reason); lua_setfield(L, -2, "reason");
  lua_pushstring(L, msg); lua_setfield(L, -2, "message");
}

/* mcp.stream(spec, on_event) -> response | nil, err, partial
 * spec = {url=<http.url>, method=, headers={name=value}, body=, guard=,
 *         limits={connect_timeout_ms, timeout_ms, max_bytes, max_header_bytes},
 *         max_event=, uncancellable=} (the guard and limits come from
 * net.decide/net.LIMITS; uncancellable: the call's cancellation does not end
 * this exchange, for a notice that the call was cancelled).
 * A 2xx text/event-stream body is parsed and each event passed to
 * on_event(ev); a truthy return ends the exchange early (stopped=true). Other
 * bodies are returned whole in response.body. response = {status, headers,
 * sse, primary_ip, and a stream's stopped, events, last_event_id and
 * retry_ms, or another body's body}. On a transport
 * failure (or a stream cut short) err = {code, reason, message} and partial
 * carries what was seen, so the caller can resume or re-issue. */
int http_stream_lua(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int fn = lua_isnoneornil(L, 2) ? 0 : (luaL_checktype(L, 2, LUA_TFUNCTION), 2);
  http_request rq;
  memset(&rq, 0, sizeof rq);
  lua_getfield(L, 1, "url");
  http_url **pu = luaL_checkudata(L, -1, HS_URL_MT);
  if (!*pu) return mcpl_lua_error(L, "invalid_argument", "URL already freed");
  rq.url = *pu;
  lua_pop(L, 1); /* the spec table keeps the URL alive */
  http_lua_spec(L, 1, &rq);
  size_t max_event = (size_t)http_lua_opt_long(L, 1, "max_event");
  /* Header lines ("Name: value") live in one userdata with their pointer
   * array: nothing leaks if an argument error fires. One walk checks and
   * measures, a second copies. */
  size_t nh = 0, bytes = 0;
  int t = lua_getfield(L, 1, "headers") == LUA_TTABLE ? lua_gettop(L) : 0;
  if (t) {
    lua_pushnil(L);
    while (lua_next(L, t)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return mcpl_lua_error(L, "invalid_argument", "headers must map names to strings");
      if (++nh > HS_MAX_HEADERS) return mcpl_lua_error(L, "invalid_argument", "too many headers");
      bytes += strlen(lua_tostring(L, -2)) + strlen(lua_tostring(L, -1)) + 3;
      lua_pop(L, 1);
    }
  }
  const char **hv = lua_newuserdatauv(L, (nh ? nh : 1) * sizeof *hv + bytes, 0);
  char *text = (char *)(hv + (nh ? nh : 1));
  size_t i = 0;
  if (t) {
    lua_pushnil(L);
    while (lua_next(L, t)) { /* the same table, unchanged since: the same nh lines */
      const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
      size_t kn = strlen(k), vn = strlen(v);
      if (i < nh) {
        hv[i++] = text;
        memcpy(text, k, kn);
        memcpy(text + kn, ": ", 2);
        memcpy(text + kn + 2, v, vn + 1);
        text += kn + vn + 3;
      }
      lua_pop(L, 1);
    }
  }
  nh = i;
  rq.headers = hv;
  rq.nheaders = nh;

  hs_ctx c;
  memset(&c, 0, sizeof c);
  c.L = L;
  c.fn = fn;
  c.err_ref = LUA_NOREF;
  sse_init(&c.sse, max_event ? max_event : HS_MAX_EVENT_DEFAULT);
  rq.on_response = hs_on_response;
  rq.on_body = hs_on_body;
  rq.on_tick = hs_on_tick;
  rq.ud = &c;
  /* A goodbye to the server (notifications/cancelled) is sent although its
   * call was cancelled: within its own short limit, the engine's interrupt
   * still ends it. */
  lua_getfield(L, 1, "uncancellable");
  rq.cancel = lua_toboolean(L, -1) ? NULL : mcpl_state_cancel(L);
  lua_pop(L, 1);
  http_response rs;
  int rc = http_perform(mcpl_engine_of(L), &rq, &rs);

  if (c.err_ref != LUA_NOREF) {
    http_response_free(&rs);
    sse_free(&c.sse);
    mcpl_big_free(c.body, c.body_cap);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c.err_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, c.err_ref);
    return lua_error(L);
  }
  int nret = 1;
  if (c.stopped) {
    push_result(L, &c, &rs);
  } else if (c.sse_rc == SSE_TOO_LARGE || c.nomem || c.sse_rc == SSE_NOMEM) {
    lua_pushnil(L);
    if (c.sse_rc == SSE_TOO_LARGE) push_err(L, "too_large", "sse_event", "an SSE event exceeds the size limit");
    else push_err(L, "internal", "nomem", "out of memory");
    push_result(L, &c, &rs);
    nret = 3;
  } else if (rc != 0) {
    lua_pushnil(L);
    push_err(L, rs.code ? rs.code : "upstream_error", rs.reason, rs.message);
    push_result(L, &c, &rs);
    nret = 3;
  } else {
    push_result(L, &c, &rs);
  }
  http_response_free(&rs);
  sse_free(&c.sse);
  mcpl_big_free(c.body, c.body_cap);
  return nret;
}
