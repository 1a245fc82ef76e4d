/* engine.h: internal engine interface shared by the core bindings.
 * Not installed; hosts use mcplink.h only. */
#ifndef MCPL_ENGINE_H
#define MCPL_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <lua.h>
#include "mcplink.h"

/* The floors, each using only those below it: errors.c and engine_base.c
 * (the engine's facts), luastate.c (Lua states), the areas (bind_<area>.c
 * with their C sides), engine.c (open, close, the pool, mcpl_op). */

/* Areas: one C binding each, exposed to engine Lua as a module of that name.
 * Each may keep engine-wide shared state in its slot. */
enum mcpl_area {
  MCPL_AREA_JSON,
  MCPL_AREA_LOG,
  MCPL_AREA_CRYPTO,
  MCPL_AREA_STORE,
  MCPL_AREA_HTTP,
  MCPL_AREA_MCP,
  MCPL_AREA_POLICY,
  MCPL_AREA_CORE,
  MCPL_AREA_CALL,
  MCPL_AREA_COUNT
};

typedef struct {
  const char *name;                                /* Lua module name */
  int (*open)(lua_State *L);                       /* pushes the module table */
  int (*engine_init)(mcpl_engine *e, char **err);  /* optional: once per engine */
  void (*engine_fini)(mcpl_engine *e);             /* optional */
} mcpl_area_def;

/* Each area's Lua module (bind_<area>.c), and the hooks that make and free
 * its engine-wide state, where the area's C side lives: keyring.c (crypto),
 * store_db.c, http_transfer.c, bind_mcp.c, bind_policy.c. engine.c lists
 * them in its table of areas. */
int luaopen_mcpl_json(lua_State *L);
int luaopen_mcpl_log(lua_State *L);
int luaopen_mcpl_crypto(lua_State *L);
int luaopen_mcpl_store(lua_State *L);
int luaopen_mcpl_http(lua_State *L);
int luaopen_mcpl_mcp(lua_State *L);
int luaopen_mcpl_policy(lua_State *L);
int luaopen_mcpl_core(lua_State *L);
int luaopen_mcpl_call(lua_State *L);
/* The input kinds a table names ({elicitation=true, ...}) as MCPL_INPUT_* bits. */
unsigned call_methods(lua_State *L, int idx);
int keyring_engine_init(mcpl_engine *e, char **err);
void keyring_engine_fini(mcpl_engine *e);
int store_engine_init(mcpl_engine *e, char **err);
void store_engine_fini(mcpl_engine *e);
int http_engine_init(mcpl_engine *e, char **err);
void http_engine_fini(mcpl_engine *e);
int mcp_engine_init(mcpl_engine *e, char **err);
void mcp_engine_fini(mcpl_engine *e);
int policy_engine_init(mcpl_engine *e, char **err);
void policy_engine_fini(mcpl_engine *e);

/* ---- error codes and error JSON (errors.c) ---------------------------- */

/* Map between code names and mcpl_code (mcpl_code_name is public). */
int mcpl_code_from_name(const char *name);
/* JSON string escaping into a malloc'd buffer (for C-built error JSON). */
char *mcpl_json_error(const char *code, const char *message, const char *field);
/* The same with a reason ({"error":{code, message, reason}}). */
char *mcpl_json_error_reason(const char *code, const char *message, const char *reason);

/* ---- the engine's facts (engine_base.c) ------------------------------- */

void *mcpl_engine_slot(mcpl_engine *e, enum mcpl_area a);
void mcpl_engine_set_slot(mcpl_engine *e, enum mcpl_area a, void *p);
/* The engine's table of areas (MCPL_AREA_COUNT entries), for its states. */
const mcpl_area_def *mcpl_engine_areas(mcpl_engine *e);

/* Option values (NULL when unset). */
const char *mcpl_engine_opt(mcpl_engine *e, const char *name);

/* Interrupt: set from a signal handler (REPL Ctrl-C); long-running work
 * (Lua hooks, HTTP progress) checks it and stops with a "cancelled" error. */
void mcpl_engine_interrupt(mcpl_engine *e);
void mcpl_engine_clear_interrupt(mcpl_engine *e);
int mcpl_engine_interrupted(mcpl_engine *e);

/* Cancellation of one call. Each pool slot owns one; it is cleared when an
 * op starts on the slot and set from any thread (mcpl_close sets every busy
 * slot's; a per-call cancel only has to set its own call's). Every wait
 * started on the slot's Lua state observes it, besides the engine-wide
 * interrupt: transfers, name lookups, the session claim, core.sleep_ms and
 * the Lua count hook (which raises it once per op, so the op's own error
 * handling still runs; the waits keep failing fast). */
typedef struct mcpl_cancel {
  atomic_int requested;  /* any thread */
  int raised;            /* the hook raised it during this op (the slot's thread) */
  struct lua_State *_Atomic L; /* the state observing it (a pool slot's), or NULL */
  void (*arm)(struct lua_State *L); /* arms L's hook (set with L) */
} mcpl_cancel;

/* Sets c's flag and arms the hook of the state observing it, so Lua code
 * running there stops at its next instruction. Engine states run without
 * a hook otherwise (a count hook costs a check on every VM instruction):
 * the caller must keep c->L alive meanwhile (the slot's owner holds e->mu,
 * a call handle its mutex while attached). */
void mcpl_cancel_request(mcpl_cancel *c);
/* Arms the state's hook to look at its cancellation and the engine
 * interrupt (async-signal-safe, as lua_sethook is). */
void mcpl_state_arm(struct lua_State *L);

/* Non-zero when c (may be NULL) is set or the engine is interrupted. */
int mcpl_cancel_requested(mcpl_engine *e, const mcpl_cancel *c);

/* Logging. msg must never contain secret values. */
void mcpl_log(mcpl_engine *e, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int mcpl_log_enabled(mcpl_engine *e, const char *level);

/* ---- Lua states (luastate.c) ------------------------------------------ */

/* The engine a Lua state belongs to (engine, script or policy state). */
mcpl_engine *mcpl_engine_of(lua_State *L);
void mcpl_engine_bind(lua_State *L, mcpl_engine *e);

/* The cancellation a Lua state observes (NULL: only the engine interrupt). */
void mcpl_state_set_cancel(lua_State *L, mcpl_cancel *c);
mcpl_cancel *mcpl_state_cancel(lua_State *L);
/* mcpl_cancel_requested for the state's call; and the error every cancelled
 * wait raises: {code="timeout", reason="cancelled", message=...}. */
int mcpl_lua_cancelled(lua_State *L);
int mcpl_lua_raise_cancelled(lua_State *L);

/* A call handle (engine_base.c): the host's callbacks for one call and
 * its cancellation; read by the `call` module (bind_call.c). */
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

/* Call handles (engine_base.c). While an op runs for a handle, the handle is
 * tied to the pool slot's cancellation: attach returns 0, or -1 when the
 * handle is in use by another call; a handle cancelled before sets the
 * slot's flag at once, and mcpl_call_cancel sets it while attached. */
int mcpl_call_attach(mcpl_call *c, mcpl_cancel *slot);
void mcpl_call_detach(mcpl_call *c);
int mcpl_call_cancelled(mcpl_call *c);
/* The handle (NULL: none) the op running on a Lua state was called with
 * (luastate.c): its host's callbacks answer the `call` module. */
void mcpl_state_set_call(lua_State *L, mcpl_call *c);
mcpl_call *mcpl_state_call(lua_State *L);
/* The engine's default input handler (fn NULL when none was set). */
void mcpl_engine_input(mcpl_engine *e, mcpl_input_fn *fn, void **ud, unsigned *methods);

lua_State *mcpl_state_engine(mcpl_engine *e, char **err);  /* engine Lua */
lua_State *mcpl_state_script(mcpl_engine *e, char **err);  /* operator scripts */
/* Closes a state the two above made (and what its allocator keeps). */
void mcpl_state_close(lua_State *L);
/* For a process about to exit: closes the state's database connection and
 * leaves the rest of it, memory only, to the exit (freeing each of its
 * objects was ~4% of a one-shot command). A sanitizer build closes it in
 * full, so its leak check still sees every state freed. */
void mcpl_state_abandon(lua_State *L);
/* mcpl_close for a process about to exit (the CLI): the same, calls ended,
 * sessions closed, secrets wiped, databases closed, but the pool's states
 * abandoned (mcpl_state_abandon) instead of freed. */
void mcpl_close_exiting(mcpl_engine *e);
/* The bytes of freed small blocks the state keeps for reuse, and their limit. */
size_t mcpl_state_kept(lua_State *L, size_t *limit);
/* Memory for buffers that may grow large (a response body, a Lua string or
 * table of a long list): a block of MCPL_BIG bytes or more is a mapping of
 * its own, grown with mremap and returned to the system when freed, so a
 * large transient never stays in (or fragments) malloc's heap. The caller
 * passes the block's current size (0 for none) on every call. realloc
 * semantics: NULL on failure, the old block untouched. */
#define MCPL_BIG ((size_t)256 * 1024)
void *mcpl_big_realloc(void *p, size_t osize, size_t nsize);
void mcpl_big_free(void *p, size_t size);
/* Loads an engine-owned Lua module's source (lua_dir override or embedded).
 * Returns a malloc'd copy (NULL: no such module) and a malloc'd chunk name
 * in *chunkname; the caller frees both. */
char *mcpl_module_source(mcpl_engine *e, const char *name, char **chunkname);
/* Pushes the names of every engine-owned Lua module (a sequence). */
void mcpl_push_module_names(lua_State *L);

/* Error helpers for bindings: raise {code=..., message=...} as a Lua error. */
int mcpl_lua_error(lua_State *L, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Pushes an error table {code=..., message=...}; for nil, err returns. */
void mcpl_push_error(lua_State *L, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
