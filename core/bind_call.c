/* bind_call.c: call handles (mcpl_call_*: cancel one call, its host's event and
 * input callbacks) and the Lua `call` module through which an op reaches its host. */
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "engine.h"

#define CALL_MAX_REPLY (1024 * 1024)

struct mcpl_call {
  pthread_mutex_t mu;
  int cancelled;        /* sticky: mcpl_call_cancel was called */
  int running;          /* an op runs for this handle */
  mcpl_cancel *slot;    /* that op's pool slot flag, while running */
  mcpl_event_fn event_fn;
  void *event_ud;
  mcpl_input_fn input_fn;
  void *input_ud;
  unsigned input_methods;
};

struct mcpl_reply {
  char *json;
};

mcpl_call *mcpl_call_new(void) {
  mcpl_call *c = calloc(1, sizeof *c);
  if (c) pthread_mutex_init(&c->mu, NULL);
  return c;
}

void mcpl_call_free(mcpl_call *c) {
  if (!c) return;
  assert(!c->running);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

int mcpl_call_cancel(mcpl_call *c) {
  if (!c) return MCPL_E_INVALID_ARGUMENT;
  pthread_mutex_lock(&c->mu);
  c->cancelled = 1;
  if (c->slot) atomic_store(&c->slot->requested, 1);
  pthread_mutex_unlock(&c->mu);
  return MCPL_OK;
}

void mcpl_call_set_events(mcpl_call *c, mcpl_event_fn fn, void *ud) {
  if (!c) return;
  c->event_fn = fn;
  c->event_ud = ud;
}

void mcpl_call_set_input(mcpl_call *c, mcpl_input_fn fn, void *ud, unsigned methods) {
  if (!c) return;
  c->input_fn = fn;
  c->input_ud = ud;
  c->input_methods = fn ? methods : 0;
}

int mcpl_reply_set(mcpl_reply *r, const char *json) {
  if (!r || !json || r->json) return MCPL_E_INVALID_ARGUMENT;
  size_t n = strnlen(json, CALL_MAX_REPLY + 1);
  if (n > CALL_MAX_REPLY) return MCPL_E_TOO_LARGE;
  r->json = malloc(n + 1);
  if (!r->json) return MCPL_E_INTERNAL;
  memcpy(r->json, json, n + 1);
  return MCPL_OK;
}

int mcpl_call_attach(mcpl_call *c, mcpl_cancel *slot) {
  pthread_mutex_lock(&c->mu);
  int busy = c->running;
  if (!busy) {
    c->running = 1;
    c->slot = slot;
    if (c->cancelled) atomic_store(&slot->requested, 1);
  }
  pthread_mutex_unlock(&c->mu);
  return busy ? -1 : 0;
}

void mcpl_call_detach(mcpl_call *c) {
  pthread_mutex_lock(&c->mu);
  c->running = 0;
  c->slot = NULL;
  pthread_mutex_unlock(&c->mu);
}

int mcpl_call_cancelled(mcpl_call *c) {
  pthread_mutex_lock(&c->mu);
  int v = c->cancelled;
  pthread_mutex_unlock(&c->mu);
  return v;
}

static const char CALL_KEY = 0; /* its address keys the state's call handle */

void mcpl_state_set_call(lua_State *L, mcpl_call *c) {
  lua_pushlightuserdata(L, c);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &CALL_KEY);
}

mcpl_call *mcpl_state_call(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &CALL_KEY);
  mcpl_call *c = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return c;
}

/* ---- the Lua module ----------------------------------------------------- */

static const struct { const char *name; unsigned bit; } kinds[] = {
  {"elicitation", MCPL_INPUT_ELICITATION}, {"sampling", MCPL_INPUT_SAMPLING},
  {"roots", MCPL_INPUT_ROOTS}, {NULL, 0}};

/* The handler that answers kind for this state's call: the handle's when it
 * covers kind (unless engine_only), else the engine's default when that does. */
static int handler_for(lua_State *L, unsigned bit, int engine_only, mcpl_input_fn *fn, void **ud) {
  mcpl_call *c = engine_only ? NULL : mcpl_state_call(L);
  if (c && c->input_fn && (c->input_methods & bit)) {
    *fn = c->input_fn;
    *ud = c->input_ud;
    return 1;
  }
  unsigned m;
  mcpl_engine_input(mcpl_engine_of(L), fn, ud, &m);
  return *fn && (m & bit);
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
 * default handler alone (what a session shared by every caller may declare). */
static int l_host(lua_State *L) {
  int engine_only = lua_toboolean(L, 1);
  mcpl_call *c = engine_only ? NULL : mcpl_state_call(L);
  lua_createtable(L, 0, 4);
  lua_pushboolean(L, c && c->event_fn);
  lua_setfield(L, -2, "events");
  for (int i = 0; kinds[i].name; i++) {
    mcpl_input_fn fn;
    void *ud;
    lua_pushboolean(L, handler_for(L, kinds[i].bit, engine_only, &fn, &ud));
    lua_setfield(L, -2, kinds[i].name);
  }
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
  if (!handler_for(L, bit, 0, &fn, &ud)) { lua_pushnil(L); return 1; }
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

/* The hooks of an operator script's op (call.op): Lua functions of the
 * script's state, run on this thread while that state waits in call.op. */
typedef struct {
  lua_State *L;
  mcpl_engine *e;
  int input;  /* stack index of fn(request_json) -> result_json|nil, or 0 */
  int event;  /* stack index of fn(event_json), or 0 */
} script_hooks;

static void hook_input(void *ud, const char *req, mcpl_reply *reply) {
  script_hooks *h = ud;
  lua_State *L = h->L;
  lua_pushvalue(L, h->input);
  lua_pushstring(L, req);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    mcpl_log(h->e, "warn", "the script's input hook failed: %s",
             lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(error object)");
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    mcpl_reply_set(reply, lua_tostring(L, -1));
  }
  lua_pop(L, 1);
}

static void hook_event(void *ud, const char *ev) {
  script_hooks *h = ud;
  lua_State *L = h->L;
  lua_pushvalue(L, h->event);
  lua_pushstring(L, ev);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
}

/* call.op(actor, name, args_json [, hooks]) -> result_json, code|nil
 * hooks = {input = fn, methods = {elicitation=true, ...}, event = fn}:
 * an operator script's op with its own input handler and event hook. */
static int l_op(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *name = luaL_checkstring(L, 2);
  const char *args = luaL_optstring(L, 3, NULL);
  mcpl_actor a = {0};
  lua_getfield(L, 1, "system");
  a.system = lua_toboolean(L, -1);
  lua_getfield(L, 1, "tenant");
  a.tenant = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
  lua_getfield(L, 1, "user");
  a.user = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
  script_hooks h = {L, mcpl_engine_of(L), 0, 0};
  unsigned methods = 0;
  if (lua_istable(L, 4)) {
    if (lua_getfield(L, 4, "input") == LUA_TFUNCTION) h.input = lua_gettop(L);
    else lua_pop(L, 1);
    if (lua_getfield(L, 4, "event") == LUA_TFUNCTION) h.event = lua_gettop(L);
    else lua_pop(L, 1);
    if (lua_getfield(L, 4, "methods") == LUA_TTABLE) {
      for (int i = 0; kinds[i].name; i++) {
        lua_getfield(L, -1, kinds[i].name);
        if (lua_toboolean(L, -1)) methods |= kinds[i].bit;
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  mcpl_call *c = mcpl_call_new();
  if (!c) return mcpl_lua_error(L, "internal", "out of memory");
  if (h.input) mcpl_call_set_input(c, hook_input, &h, methods ? methods : MCPL_INPUT_ELICITATION);
  if (h.event) mcpl_call_set_events(c, hook_event, &h);
  char *res = NULL;
  int rc = mcpl_op_call(h.e, &a, name, args, c, &res);
  mcpl_call_free(c);
  lua_pushstring(L, res ? res : "{}");
  mcpl_free(res);
  if (rc == MCPL_OK) lua_pushnil(L); else lua_pushstring(L, mcpl_code_name(rc));
  return 2;
}

int luaopen_mcpl_call(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"host", l_host}, {"ask", l_ask}, {"emit", l_emit}, {"op", l_op}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
