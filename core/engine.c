/* engine.c: engine lifecycle, the Lua state pool and mcpl_op: the top floor.
 * Every front end (C API, CLI, REPL, scripts) enters the ops through here. */
#include <assert.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "engine_base.h"
#include "store.h"

#define POOL_DEFAULT 8

struct pool_slot {
  lua_State *L;
  int busy;
  mcpl_cancel cancel;  /* the call running on this slot (see engine.h) */
};

struct mcpl_engine {
  struct mcpl_engine_base base;  /* first: engine_base.c reads it from an mcpl_engine * */

  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct pool_slot *pool;  /* never reallocated: states keep &pool[i].cancel */
  int npool, maxpool;
  int closing;
  int calls;               /* threads inside mcpl_op (close waits for them) */
  int inited[MCPL_AREA_COUNT];
};
_Static_assert(offsetof(struct mcpl_engine, base) == 0, "the base comes first");

static int open_core(lua_State *L);
static int open_call(lua_State *L);

static const mcpl_area_def areas[MCPL_AREA_COUNT] = {
  [MCPL_AREA_JSON] = {"json", luaopen_mcpl_json, NULL, NULL},
  [MCPL_AREA_LOG] = {"log", luaopen_mcpl_log, NULL, NULL},
  [MCPL_AREA_CRYPTO] = {"crypto", luaopen_mcpl_crypto, keyring_engine_init, keyring_engine_fini},
  [MCPL_AREA_STORE] = {"store", luaopen_mcpl_store, store_engine_init, store_engine_fini},
  [MCPL_AREA_HTTP] = {"http", luaopen_mcpl_http, http_engine_init, http_engine_fini},
  [MCPL_AREA_MCP] = {"mcp", luaopen_mcpl_mcp, mcp_engine_init, mcp_engine_fini},
  [MCPL_AREA_POLICY] = {"policy", luaopen_mcpl_policy, policy_engine_init, policy_engine_fini},
  [MCPL_AREA_CORE] = {"core", open_core, NULL, NULL},
  [MCPL_AREA_CALL] = {"call", open_call, NULL, NULL},
};

/* The pool as it stands: configured size, Lua states built, states in use. */
static void pool_stats(mcpl_engine *e, int *size, int *states, int *busy) {
  *size = *states = *busy = 0;
  if (!e) return;
  pthread_mutex_lock(&e->mu);
  *size = e->maxpool;
  for (int i = 0; i < e->npool; i++) {
    *states += e->pool[i].L != NULL;
    *busy += e->pool[i].busy;
  }
  pthread_mutex_unlock(&e->mu);
}

/* A call that starts once mcpl_close has begun never gets a Lua state. */
static char *closing_error(void) {
  return mcpl_json_error_reason("timeout", "the engine is closing: the call was not started",
                                "engine_closing");
}

/* ---- open / close ----------------------------------------------------- */

static void set_err(char **err, const char *code, const char *msg) {
  if (err) *err = mcpl_json_error(code, msg, NULL);
}

void mcpl_state_abandon(lua_State *L) {
  if (!L) return;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  mcpl_state_close(L); /* the sanitizers' leak check sees every state freed */
#else
  store_conn_close(L);
#endif
}

/* Calls in flight are cancelled, not awaited to their timeouts: every wait
 * on a slot observes its flag, so they end promptly (timeout, reason
 * cancelled); callers still waiting for a state get the closing error. Only
 * then is anything freed. */
static void engine_close(mcpl_engine *e, void (*close_state)(lua_State *)) {
  if (!e) return;
  pthread_mutex_lock(&e->mu);
  e->closing = 1;
  int inflight = 0;
  for (int i = 0; i < e->npool; i++)
    if (e->pool[i].busy) {
      mcpl_cancel_request(&e->pool[i].cancel);
      inflight++;
    }
  int calls = e->calls;
  pthread_cond_broadcast(&e->cv);  /* callers waiting for a state see closing */
  pthread_mutex_unlock(&e->mu);
  if (calls) mcpl_log(e, "info", "engine closing: cancelling %d call(s) in flight", inflight);
  pthread_mutex_lock(&e->mu);
  while (e->calls > 0) pthread_cond_wait(&e->cv, &e->mu);
  pthread_mutex_unlock(&e->mu);
  e->base.arm_states = NULL;
  for (int i = 0; i < e->npool; i++) {
    atomic_store(&e->pool[i].cancel.L, NULL);
    close_state(e->pool[i].L);
  }
  for (int a = MCPL_AREA_COUNT - 1; a >= 0; a--)
    if (e->inited[a] && areas[a].engine_fini) areas[a].engine_fini(e);
  free(e->pool);
  mcpl_engine_base_fini(&e->base);
  pthread_mutex_destroy(&e->mu);
  pthread_cond_destroy(&e->cv);
  free(e);
}

void mcpl_close(mcpl_engine *e) { engine_close(e, mcpl_state_close); }

void mcpl_close_exiting(mcpl_engine *e) { engine_close(e, mcpl_state_abandon); }

/* The engine interrupt (a signal handler may call it): every pool state's
 * hook is armed, through atomic reads only, no lock. */
static void arm_pool(mcpl_engine *e) {
  for (int i = 0; i < e->maxpool; i++) {
    lua_State *L = atomic_load(&e->pool[i].cancel.L);
    if (L) mcpl_state_arm(L);
  }
}

mcpl_engine *mcpl_open(const mcpl_options *o, char **err) {
  if (err) *err = NULL;
  mcpl_engine *e = calloc(1, sizeof *e);
  if (!e) { set_err(err, "internal", "out of memory"); return NULL; }
  pthread_mutex_init(&e->mu, NULL);
  pthread_cond_init(&e->cv, NULL);
  if (mcpl_engine_base_init(&e->base, o, areas, err) != 0) {
    mcpl_close(e);
    return NULL;
  }
  e->maxpool = mcpl_engine_opt(e, "pool_size") ? atoi(mcpl_engine_opt(e, "pool_size"))
                                                : POOL_DEFAULT;
  e->pool = calloc((size_t)e->maxpool, sizeof *e->pool);
  if (!e->pool) goto oom;
  e->base.arm_states = arm_pool;

  for (int a = 0; a < MCPL_AREA_COUNT; a++) {
    if (!areas[a].engine_init) continue;
    char *aerr = NULL;
    if (areas[a].engine_init(e, &aerr) != 0) {
      if (err) *err = aerr ? aerr : mcpl_json_error("internal", "engine init failed", NULL);
      else free(aerr);
      mcpl_close(e);
      return NULL;
    }
    e->inited[a] = 1;
  }
  /* One state up front: proves the Lua loads (and runs migrations) now,
   * so a broken install fails at open, not at the first call. */
  char *serr = NULL;
  lua_State *L = mcpl_state_engine(e, &serr);
  if (!L) {
    if (err) *err = serr; else free(serr);
    mcpl_close(e);
    return NULL;
  }
  mcpl_state_set_cancel(L, &e->pool[0].cancel);
  e->pool[0].L = L;
  e->npool = 1;
  return e;
oom:
  set_err(err, "internal", "out of memory");
  mcpl_close(e);
  return NULL;
}

/* ---- the pool and mcpl_op ---------------------------------------------- */

/* Marks a slot busy for a new op and clears its cancellation; under e->mu,
 * so a close that has begun either sees the slot busy or keeps the op out. */
static void take(mcpl_engine *e, int i) {
  assert(i >= 0 && i < e->maxpool && !e->pool[i].busy);
  e->pool[i].busy = 1;
  atomic_store(&e->pool[i].cancel.requested, 0);
  e->pool[i].cancel.raised = 0;
}

/* -1 with *err set when no state can be had (closing: *closing = 1). */
static int acquire(mcpl_engine *e, char **err, int *closing) {
  pthread_mutex_lock(&e->mu);
  for (;;) {
    if (e->closing) {
      pthread_mutex_unlock(&e->mu);
      *err = closing_error();
      *closing = 1;
      return -1;
    }
    for (int i = 0; i < e->npool; i++) {
      if (!e->pool[i].busy && e->pool[i].L) {
        take(e, i);
        pthread_mutex_unlock(&e->mu);
        return i;
      }
    }
    /* an empty slot (its state was discarded or failed to build), else a new one */
    int i = -1;
    for (int k = 0; k < e->npool && i < 0; k++)
      if (!e->pool[k].busy) i = k;
    if (i < 0 && e->npool < e->maxpool) i = e->npool++;
    if (i >= 0) {
      take(e, i);
      pthread_mutex_unlock(&e->mu);
      char *serr = NULL;
      lua_State *L = mcpl_state_engine(e, &serr);
      pthread_mutex_lock(&e->mu);
      if (!L) {
        /* Keep the slot but mark it empty; a later acquire retries it. */
        e->pool[i].busy = 0;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        *err = serr;
        return -1;
      }
      mcpl_state_set_cancel(L, &e->pool[i].cancel);
      e->pool[i].L = L;
      pthread_mutex_unlock(&e->mu);
      return i;
    }
    pthread_cond_wait(&e->cv, &e->mu);
  }
}

static void release(mcpl_engine *e, int i, int discard) {
  pthread_mutex_lock(&e->mu);
  assert(e->pool[i].busy);
  if (discard && e->pool[i].L) {
    atomic_store(&e->pool[i].cancel.L, NULL);
    mcpl_state_close(e->pool[i].L);
    e->pool[i].L = NULL;
  }
  e->pool[i].busy = 0;
  pthread_cond_broadcast(&e->cv);
  pthread_mutex_unlock(&e->mu);
}

/* The end of an mcpl_op: the last touch of e, which close may free next. */
static void leave(mcpl_engine *e) {
  pthread_mutex_lock(&e->mu);
  assert(e->calls > 0);
  if (--e->calls == 0) pthread_cond_broadcast(&e->cv);
  pthread_mutex_unlock(&e->mu);
}

/* Pushes the actor table {system=bool, tenant=?, user=?}. */
static void push_actor(lua_State *L, const mcpl_actor *a) {
  lua_createtable(L, 0, 3);
  lua_pushboolean(L, a && a->system);
  lua_setfield(L, -2, "system");
  if (a && !a->system) {
    if (a->tenant) { lua_pushstring(L, a->tenant); lua_setfield(L, -2, "tenant"); }
    if (a->user) { lua_pushstring(L, a->user); lua_setfield(L, -2, "user"); }
  }
}

int mcpl_op(mcpl_engine *e, const mcpl_actor *actor, const char *op_name,
            const char *args_json, char **result_json) {
  return mcpl_op_call(e, actor, op_name, args_json, NULL, result_json);
}

/* mcpl_op for a call handle: the handle is tied to the slot's cancellation
 * while the op runs, and the state knows it (its host's callbacks). */
int mcpl_op_call(mcpl_engine *e, const mcpl_actor *actor, const char *op_name,
                 const char *args_json, mcpl_call *call, char **result_json) {
  char *err = NULL;
  if (!result_json) return MCPL_E_INVALID_ARGUMENT;
  *result_json = NULL;
  if (!e || !op_name) {
    *result_json = mcpl_json_error("invalid_argument", "engine and op name are required", NULL);
    return MCPL_E_INVALID_ARGUMENT;
  }
  if (call && mcpl_call_cancelled(call)) {
    *result_json = mcpl_json_error_reason("timeout", "the call was cancelled before it started", "cancelled");
    return MCPL_E_TIMEOUT;
  }
  pthread_mutex_lock(&e->mu);
  if (e->closing) {
    pthread_mutex_unlock(&e->mu);
    *result_json = closing_error();
    return MCPL_E_TIMEOUT;
  }
  e->calls++;
  pthread_mutex_unlock(&e->mu);
  int closing = 0;
  int slot = acquire(e, &err, &closing);
  if (slot < 0) {
    *result_json = err ? err : mcpl_json_error("internal", "no Lua state available", NULL);
    leave(e);
    return closing ? MCPL_E_TIMEOUT : MCPL_E_INTERNAL;
  }
  if (call && mcpl_call_attach(call, &e->pool[slot].cancel) != 0) {
    release(e, slot, 0);
    leave(e);
    *result_json = mcpl_json_error("invalid_argument", "this call handle is in use by another call", NULL);
    return MCPL_E_INVALID_ARGUMENT;
  }
  lua_State *L = e->pool[slot].L;
  mcpl_state_set_call(L, call);
  int top = lua_gettop(L);
  int rc = MCPL_E_INTERNAL, discard = 0;
  lua_getfield(L, LUA_REGISTRYINDEX, "mcpl.dispatch");
  push_actor(L, actor);
  lua_pushstring(L, op_name);
  if (args_json) lua_pushstring(L, args_json); else lua_pushnil(L);
  int st = lua_pcall(L, 3, 2, 0);
  int was_cancel = 0;
  if (st != LUA_OK && lua_istable(L, -1)) {
    lua_pushliteral(L, "reason");  /* raw: no metamethod runs outside a protected call */
    was_cancel = lua_rawget(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "cancelled") == 0;
  }
  if (was_cancel) {
    /* a cancellation raised by the hook after the op's own error handling
     * (a call cancelled as it finished): the state is sound */
    *result_json = mcpl_json_error_reason("timeout", "operation cancelled", "cancelled");
    rc = MCPL_E_TIMEOUT;
  } else if (st != LUA_OK) {
    lua_settop(L, top + 1);
    /* dispatch catches op errors itself; reaching here means the state is
     * broken (out of memory, error in the error handler): rebuild it. */
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(non-string error)";
    mcpl_log(e, "error", "dispatch failed for %s: %s", op_name, m);
    *result_json = mcpl_json_error("internal", "internal error (see log)", NULL);
    discard = 1;
  } else {
    size_t n;
    const char *s = lua_tolstring(L, -2, &n);
    const char *code = lua_tostring(L, -1);
    *result_json = s ? malloc(n + 1) : NULL;
    if (*result_json) {
      memcpy(*result_json, s, n + 1);
      rc = code ? mcpl_code_from_name(code) : MCPL_OK;
    } else {
      *result_json = mcpl_json_error("internal", "dispatch returned no result", NULL);
    }
  }
  lua_settop(L, top);
  mcpl_state_set_call(L, NULL);
  if (call) mcpl_call_detach(call);
  release(e, slot, discard);
  leave(e);
  return rc;
}

/* ---- what only the engine can tell its Lua ------------------------------ */

/* core.pool() -> {size, states, busy}: the engine's pool of Lua states. */
static int core_pool(lua_State *L) {
  int size, states, busy;
  pool_stats(mcpl_engine_of(L), &size, &states, &busy);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, size); lua_setfield(L, -2, "size");
  lua_pushinteger(L, states); lua_setfield(L, -2, "states");
  lua_pushinteger(L, busy); lua_setfield(L, -2, "busy");
  return 1;
}

/* core.op(actor, name, args_json) -> result_json, code|nil: used by operator
 * scripts, which run in their own state and enter the registry like any
 * other front end. */
static int core_op(lua_State *L) {
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
  char *res = NULL;
  int rc = mcpl_op(mcpl_engine_of(L), &a, name, args, &res);
  lua_pushstring(L, res ? res : "{}");
  mcpl_free(res);
  if (rc == MCPL_OK) lua_pushnil(L); else lua_pushstring(L, mcpl_code_name(rc));
  return 2;
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
static int call_op(lua_State *L) {
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
    if (lua_getfield(L, 4, "methods") == LUA_TTABLE) methods = call_methods(L, -1);
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

/* The `call` module (bind_call.c) plus call.op, which needs the pool. */
static int open_call(lua_State *L) {
  luaopen_mcpl_call(L);
  lua_pushcfunction(L, call_op);
  lua_setfield(L, -2, "op");
  return 1;
}

/* The `core` module (bind_core.c) plus the functions that need the pool. */
static int open_core(lua_State *L) {
  luaopen_mcpl_core(L);
  lua_pushcfunction(L, core_pool);
  lua_setfield(L, -2, "pool");
  lua_pushcfunction(L, core_op);
  lua_setfield(L, -2, "op");
  return 1;
}
