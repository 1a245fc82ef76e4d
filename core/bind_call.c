/* bind_call.c: the Lua `call` module through which an op reaches its host: the
 * event and input callbacks of its call handle (engine_base.c) or engine. */
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "engine.h"

/* ---- the Lua module ----------------------------------------------------- */

static const struct { const char *name; unsigned bit; } kinds[] = {
  {"elicitation", MCPL_INPUT_ELICITATION}, {"sampling", MCPL_INPUT_SAMPLING},
  {"roots", MCPL_INPUT_ROOTS}, {NULL, 0}};

/* Who may answer input requests for this state's call: its handle (NULL
 * when engine_only) and the engine's default handler, looked up once. */
typedef struct {
  mcpl_call *c;
  mcpl_input_fn efn;
  void *eud;
  unsigned emethods;
} answerers;

static answerers answerers_of(lua_State *L, int engine_only) {
  answerers a = {engine_only ? NULL : mcpl_state_call(L), NULL, NULL, 0};
  mcpl_engine_input(mcpl_engine_of(L), &a.efn, &a.eud, &a.emethods);
  return a;
}

/* The handler that answers kind: the handle's when it covers kind, else the
 * engine's default when that does. */
static int handler_for(const answerers *a, unsigned bit, mcpl_input_fn *fn, void **ud) {
  if (a->c && a->c->input_fn && (a->c->input_methods & bit)) {
    *fn = a->c->input_fn;
    *ud = a->c->input_ud;
    return 1;
  }
  *fn = a->efn;
  *ud = a->eud;
  return a->efn && (a->emethods & bit);
}

static unsigned kind_bit(lua_State *L, int idx) {
  const char *k = luaL_checkstring(L, idx);
  for (int i = 0; kinds[i].name; i++)
    if (strcmp(kinds[i].name, k) == 0) return kinds[i].bit;
  return (unsigned)luaL_argerror(L, idx, "elicitation, sampling or roots");
}

/* call.host([engine_only]) -> {events=bool, elicitation=bool, sampling=bool,
 * roots=bool}: what the host of the running op does: see events, answer each
 * kind of input request now (synchronously). engine_only: the engine's
 * default handler alone (what a session shared by every caller may declare).
 * The 16 possible tables are made once per state (its registry keeps them)
 * and shared: callers read them, never change them (an MCP request asks
 * twice: its progress token, its client capabilities). */
static const char HOST_KEY = 0;

static int l_host(lua_State *L) {
  int engine_only = lua_toboolean(L, 1);
  answerers a = answerers_of(L, engine_only);
  int mask = (a.c && a.c->event_fn) ? 1 : 0;
  for (int i = 0; kinds[i].name; i++) {
    mcpl_input_fn fn;
    void *ud;
    if (handler_for(&a, kinds[i].bit, &fn, &ud)) mask |= 2 << i;
  }
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &HOST_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 16, 0);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &HOST_KEY);
  }
  if (lua_rawgeti(L, -1, mask + 1) == LUA_TTABLE) return 1;
  lua_pop(L, 1);
  lua_createtable(L, 0, 4);
  lua_pushboolean(L, mask & 1);
  lua_setfield(L, -2, "events");
  for (int i = 0; kinds[i].name; i++) {
    lua_pushboolean(L, (mask >> (i + 1)) & 1);
    lua_setfield(L, -2, kinds[i].name);
  }
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, mask + 1);
  return 1;
}

/* call.ask(kind, request_json) -> result_json | nil (no handler for kind,
 * or the handler gave no answer). The host's handler runs now, on this
 * thread; the call's cancellation is looked at when it returns. */
static int l_ask(lua_State *L) {
  unsigned bit = kind_bit(L, 1);
  const char *req = luaL_checkstring(L, 2);
  mcpl_input_fn fn;
  void *ud;
  answerers a = answerers_of(L, 0);
  if (!handler_for(&a, bit, &fn, &ud)) { lua_pushnil(L); return 1; }
  mcpl_reply r = {NULL};
  fn(ud, req, &r);
  if (r.json) { lua_pushstring(L, r.json); free(r.json); } else lua_pushnil(L);
  if (mcpl_lua_cancelled(L)) return mcpl_lua_raise_cancelled(L);
  return 1;
}

/* call.emit(event_json): hands an event to the host (nothing without one). */
static int l_emit(lua_State *L) {
  const char *ev = luaL_checkstring(L, 1);
  mcpl_call *c = mcpl_state_call(L);
  if (c && c->event_fn) c->event_fn(c->event_ud, ev);
  return 0;
}

unsigned call_methods(lua_State *L, int idx) {
  unsigned methods = 0;
  for (int i = 0; kinds[i].name; i++) {
    lua_getfield(L, idx, kinds[i].name);
    if (lua_toboolean(L, -1)) methods |= kinds[i].bit;
    lua_pop(L, 1);
  }
  return methods;
}

int luaopen_mcpl_call(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"host", l_host}, {"ask", l_ask}, {"emit", l_emit}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
