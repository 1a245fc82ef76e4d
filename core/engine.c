/* engine.c: engine lifecycle, options, the Lua state pool and mcpl_op.
 * Every front end (C API, CLI, REPL, scripts) enters the ops through here. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "engine.h"

#define POOL_MAX 256
#define POOL_DEFAULT 8

static const char *const option_names[] = {
  "db", "key_file", "policies", "lua_dir", "ca_file", "pool_size", "log_level",
  "oauth_redirect_uri", "oauth_client_metadata_url", "log_file", NULL
};
#define NOPTS (sizeof option_names / sizeof option_names[0] - 1)

struct mcpl_options {
  char *val[NOPTS];
  mcpl_log_fn log_fn;
  void *log_ud;
  mcpl_input_fn input_fn;  /* the default input handler (mcpl_options_set_input) */
  void *input_ud;
  unsigned input_methods;
};

struct pool_slot {
  lua_State *L;
  int busy;
  mcpl_cancel cancel;  /* the call running on this slot (see engine.h) */
};

struct mcpl_engine {
  char *opt[NOPTS];
  mcpl_log_fn log_fn;
  void *log_ud;
  mcpl_input_fn input_fn;
  void *input_ud;
  unsigned input_methods;
  int log_level;
  FILE *log_file;
  pthread_mutex_t log_mu;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct pool_slot *pool;  /* never reallocated: states keep &pool[i].cancel */
  int npool, maxpool;
  int closing;
  int calls;               /* threads inside mcpl_op (close waits for them) */

  volatile sig_atomic_t interrupted;
  void *slot[MCPL_AREA_COUNT];
  int inited[MCPL_AREA_COUNT];
};

static const mcpl_area_def areas[MCPL_AREA_COUNT] = {
  [MCPL_AREA_JSON] = {"json", luaopen_mcpl_json, NULL, NULL},
  [MCPL_AREA_LOG] = {"log", luaopen_mcpl_log, NULL, NULL},
  [MCPL_AREA_CRYPTO] = {"crypto", luaopen_mcpl_crypto, crypto_engine_init, crypto_engine_fini},
  [MCPL_AREA_STORE] = {"store", luaopen_mcpl_store, store_engine_init, store_engine_fini},
  [MCPL_AREA_HTTP] = {"http", luaopen_mcpl_http, http_engine_init, http_engine_fini},
  [MCPL_AREA_MCP] = {"mcp", luaopen_mcpl_mcp, mcp_engine_init, mcp_engine_fini},
  [MCPL_AREA_POLICY] = {"policy", luaopen_mcpl_policy, policy_engine_init, policy_engine_fini},
  [MCPL_AREA_CORE] = {"core", luaopen_mcpl_core, NULL, NULL},
  [MCPL_AREA_CALL] = {"call", luaopen_mcpl_call, NULL, NULL},
};

const mcpl_area_def *mcpl_areas(void);
const mcpl_area_def *mcpl_areas(void) { return areas; }

static const char *const code_names[] = {
  "ok", "invalid_argument", "not_found", "forbidden", "conflict", "url_blocked",
  "unauthorized", "user_not_authenticated", "upstream_error", "timeout",
  "too_large", "key_unavailable", "internal", "unavailable", NULL
};

const char *mcpl_code_name(int code) {
  if (code < 0 || code > MCPL_E_UNAVAILABLE) return "internal";
  return code_names[code];
}

int mcpl_code_from_name(const char *name) {
  if (!name) return MCPL_E_INTERNAL;
  for (int i = 0; code_names[i]; i++)
    if (strcmp(code_names[i], name) == 0) return i;
  return MCPL_E_INTERNAL;
}

const char *mcpl_version(void) { return MCPL_VERSION; }

void mcpl_free(void *p) { free(p); }

/* ---- options ---------------------------------------------------------- */

static int option_index(const char *name) {
  if (!name) return -1;
  for (size_t i = 0; i < NOPTS; i++)
    if (strcmp(option_names[i], name) == 0) return (int)i;
  return -1;
}

mcpl_options *mcpl_options_new(void) { return calloc(1, sizeof(mcpl_options)); }

int mcpl_options_set(mcpl_options *o, const char *name, const char *value) {
  int i = option_index(name);
  if (!o || i < 0) return MCPL_E_INVALID_ARGUMENT;
  if (value && strlen(value) > 4096) return MCPL_E_INVALID_ARGUMENT;
  if (value && strcmp(name, "pool_size") == 0) {
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (errno || *end || n < 1 || n > POOL_MAX) return MCPL_E_INVALID_ARGUMENT;
  }
  if (value && strcmp(name, "log_level") == 0 && strcmp(value, "debug") &&
      strcmp(value, "info") && strcmp(value, "warn") && strcmp(value, "error"))
    return MCPL_E_INVALID_ARGUMENT;
  char *copy = NULL;
  if (value && !(copy = strdup(value))) return MCPL_E_INTERNAL;
  free(o->val[i]);
  o->val[i] = copy;
  return MCPL_OK;
}

void mcpl_options_set_log(mcpl_options *o, mcpl_log_fn fn, void *ud) {
  if (!o) return;
  o->log_fn = fn;
  o->log_ud = ud;
}

void mcpl_options_set_input(mcpl_options *o, mcpl_input_fn fn, void *ud, unsigned methods) {
  if (!o) return;
  o->input_fn = fn;
  o->input_ud = ud;
  o->input_methods = fn ? methods : 0;
}

void mcpl_engine_input(mcpl_engine *e, mcpl_input_fn *fn, void **ud, unsigned *methods) {
  *fn = e->input_fn;
  *ud = e->input_ud;
  *methods = e->input_methods;
}

void mcpl_options_free(mcpl_options *o) {
  if (!o) return;
  for (size_t i = 0; i < NOPTS; i++) free(o->val[i]);
  free(o);
}

const char *mcpl_engine_opt(mcpl_engine *e, const char *name) {
  int i = option_index(name);
  return (e && i >= 0) ? e->opt[i] : NULL;
}

void *mcpl_engine_slot(mcpl_engine *e, enum mcpl_area a) { return e->slot[a]; }
void mcpl_engine_set_slot(mcpl_engine *e, enum mcpl_area a, void *p) { e->slot[a] = p; }

void mcpl_engine_interrupt(mcpl_engine *e) { if (e) e->interrupted = 1; }
void mcpl_engine_clear_interrupt(mcpl_engine *e) { if (e) e->interrupted = 0; }
int mcpl_engine_interrupted(mcpl_engine *e) { return e ? e->interrupted : 0; }

int mcpl_cancel_requested(mcpl_engine *e, const mcpl_cancel *c) {
  return (c && atomic_load_explicit(&c->requested, memory_order_relaxed)) ||
         mcpl_engine_interrupted(e);
}

void mcpl_engine_pool_stats(mcpl_engine *e, int *size, int *states, int *busy) {
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

/* ---- logging ---------------------------------------------------------- */

static int level_num(const char *l) {
  if (!l) return 2;
  if (strcmp(l, "debug") == 0) return 0;
  if (strcmp(l, "info") == 0) return 1;
  if (strcmp(l, "warn") == 0) return 2;
  return 3;
}

int mcpl_log_enabled(mcpl_engine *e, const char *level) {
  return e && level_num(level) >= e->log_level;
}

void mcpl_log(mcpl_engine *e, const char *level, const char *fmt, ...) {
  if (!mcpl_log_enabled(e, level)) return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&e->log_mu);
  if (e->log_fn) e->log_fn(e->log_ud, level, buf);
  else {
    FILE *f = e->log_file ? e->log_file : stderr;
    fprintf(f, "mcplink: %s: %s\n", level, buf);
    fflush(f);
  }
  pthread_mutex_unlock(&e->log_mu);
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

/* A call that starts once mcpl_close has begun never gets a Lua state. */
static char *closing_error(void) {
  return mcpl_json_error_reason("timeout", "the engine is closing: the call was not started",
                                "engine_closing");
}

/* ---- open / close ----------------------------------------------------- */

static void set_err(char **err, const char *code, const char *msg) {
  if (err) *err = mcpl_json_error(code, msg, NULL);
}

/* Calls in flight are cancelled, not awaited to their timeouts: every wait
 * on a slot observes its flag, so they end promptly (timeout, reason
 * cancelled); callers still waiting for a state get the closing error. Only
 * then is anything freed. */
void mcpl_close(mcpl_engine *e) {
  if (!e) return;
  pthread_mutex_lock(&e->mu);
  e->closing = 1;
  int inflight = 0;
  for (int i = 0; i < e->npool; i++)
    if (e->pool[i].busy) {
      atomic_store(&e->pool[i].cancel.requested, 1);
      inflight++;
    }
  int calls = e->calls;
  pthread_cond_broadcast(&e->cv);  /* callers waiting for a state see closing */
  pthread_mutex_unlock(&e->mu);
  if (calls) mcpl_log(e, "info", "engine closing: cancelling %d call(s) in flight", inflight);
  pthread_mutex_lock(&e->mu);
  while (e->calls > 0) pthread_cond_wait(&e->cv, &e->mu);
  pthread_mutex_unlock(&e->mu);
  for (int i = 0; i < e->npool; i++) lua_close(e->pool[i].L);
  for (int a = MCPL_AREA_COUNT - 1; a >= 0; a--)
    if (e->inited[a] && areas[a].engine_fini) areas[a].engine_fini(e);
  free(e->pool);
  for (size_t i = 0; i < NOPTS; i++) free(e->opt[i]);
  if (e->log_file) fclose(e->log_file);
  pthread_mutex_destroy(&e->log_mu);
  pthread_mutex_destroy(&e->mu);
  pthread_cond_destroy(&e->cv);
  free(e);
}

mcpl_engine *mcpl_open(const mcpl_options *o, char **err) {
  if (err) *err = NULL;
  mcpl_engine *e = calloc(1, sizeof *e);
  if (!e) { set_err(err, "internal", "out of memory"); return NULL; }
  pthread_mutex_init(&e->mu, NULL);
  pthread_cond_init(&e->cv, NULL);
  pthread_mutex_init(&e->log_mu, NULL);
  e->log_level = 2;
  if (o) {
    for (size_t i = 0; i < NOPTS; i++)
      if (o->val[i] && !(e->opt[i] = strdup(o->val[i]))) goto oom;
    e->log_fn = o->log_fn;
    e->log_ud = o->log_ud;
    e->input_fn = o->input_fn;
    e->input_ud = o->input_ud;
    e->input_methods = o->input_methods;
  }
  if (mcpl_engine_opt(e, "log_level")) e->log_level = level_num(mcpl_engine_opt(e, "log_level"));
  if (mcpl_engine_opt(e, "log_file")) {
    e->log_file = fopen(mcpl_engine_opt(e, "log_file"), "a");
    if (!e->log_file) {
      set_err(err, "invalid_argument", "cannot open log_file");
      mcpl_close(e);
      return NULL;
    }
  }
  e->maxpool = mcpl_engine_opt(e, "pool_size") ? atoi(mcpl_engine_opt(e, "pool_size"))
                                                : POOL_DEFAULT;
  e->pool = calloc((size_t)e->maxpool, sizeof *e->pool);
  if (!e->pool) goto oom;

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
  if (discard && e->pool[i].L) {
    lua_close(e->pool[i].L);
    e->pool[i].L = NULL;
  }
  e->pool[i].busy = 0;
  pthread_cond_broadcast(&e->cv);
  pthread_mutex_unlock(&e->mu);
}

/* The end of an mcpl_op: the last touch of e, which close may free next. */
static void leave(mcpl_engine *e) {
  pthread_mutex_lock(&e->mu);
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
