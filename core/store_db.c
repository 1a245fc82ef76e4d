/* store_db.c: the store above its backends: choosing one by the db option,
 * one connection per engine Lua state, transactions and error mapping. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lauxlib.h>
#include "store.h"

#define CONN_KEY "mcpl.store.conn"
#define CONN_MT "mcpl.store.conn_mt"

long long store_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- backends ---------------------------------------------------------------- */

const store_backend *store_backend_for(const char *target) {
  return store_target_is_uri(target) ? &store_pg_backend : &store_sqlite_backend;
}

/* ---- engine open --------------------------------------------------------------- */

int store_engine_init(mcpl_engine *e, char **err) {
  const char *target = mcpl_engine_opt(e, "db");
  store_schema_init();
  if (!target) return 0; /* no database: store calls raise, the rest works */
  char *msg = NULL;
  int code = store_backend_for(target)->engine_open(e, target, &msg);
  if (code != MCPL_OK) {
    *err = mcpl_json_error(mcpl_code_name(code), msg ? msg : "cannot open the database", "db");
    free(msg);
    return -1;
  }
  free(msg);
  return 0;
}

void store_engine_fini(mcpl_engine *e) {
  const char *target = mcpl_engine_opt(e, "db");
  if (target && store_backend_for(target)->engine_close) store_backend_for(target)->engine_close(e);
}

/* ---- connections ------------------------------------------------------------------ */

static void conn_close(store_conn *c) {
  if (c->be) c->be->disconnect(c);
  c->be = NULL;
  store_cache_free(c);
}

static int conn_gc(lua_State *L) {
  conn_close(luaL_checkudata(L, 1, CONN_MT));
  return 0;
}

void store_conn_close(lua_State *L) {
  store_conn *c = store_conn_peek(L);
  if (c) conn_close(c);
}

store_conn *store_conn_peek(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, CONN_KEY);
  store_conn *c = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return c;
}

store_conn *store_conn_of(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, CONN_KEY);
  store_conn *c = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!c) {
    mcpl_engine *e = mcpl_engine_of(L);
    const char *target = e ? mcpl_engine_opt(e, "db") : NULL;
    if (!target || !*target) mcpl_lua_error(L, "internal", "no database configured (engine option db)");
    c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    if (luaL_newmetatable(L, CONN_MT)) {
      lua_pushcfunction(L, conn_gc);
      lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    c->e = e;
    c->be = store_backend_for(target);
    if (c->be->connect(c, target) != 0) {
      c->be = NULL; /* nothing to close */
      lua_pop(L, 1);
      store_conn tmp = {.e = e, .err = c->err};
      store_raise(L, &tmp, NULL, 0, 0);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, CONN_KEY);
    return c;
  }
  if (c->lost) {
    store_err_set(&c->err, SE_UNAVAILABLE, NULL,
                  "the connection to the database was lost during this transaction");
    store_raise(L, c, NULL, 0, 0);
  }
  if (c->depth == 0 && c->be->ready(c) != 0) store_raise(L, c, NULL, 0, 0);
  return c;
}

/* ---- transactions ------------------------------------------------------------------- */

int store_tx_begin(store_conn *c) {
  store_cache_stop(c);
  if (c->be->begin(c) != 0) {
    if (c->err.code == SE_UNAVAILABLE && c->depth > 0) c->lost = 1;
    return -1;
  }
  c->depth++;
  return 0;
}

int store_tx_finish(store_conn *c, int commit) {
  assert(c->depth > 0);
  c->depth--;
  int rc = 0;
  if (c->lost) {
    /* the database already dropped the transaction with the connection */
    if (c->depth == 0) c->lost = 0;
    store_err_set(&c->err, SE_UNAVAILABLE, NULL, "the connection to the database was lost");
    rc = commit ? -1 : 0;
  } else if (commit) {
    rc = c->be->commit(c);
  } else {
    c->be->rollback(c);
  }
  if (rc != 0 && c->err.code == SE_UNAVAILABLE && c->depth > 0) c->lost = 1;
  return rc;
}

/* ---- errors ------------------------------------------------------------------------------ */

static const char *article(const char *noun) {
  return strchr("aeiouAEIOU", noun[0]) ? "an" : "a";
}

int store_raise(lua_State *L, store_conn *c, const store_table *t, int rowidx, int deleting) {
  store_err *e = &c->err;
  const char *noun = t ? t->noun : "record";
  const char *col = e->col;
  switch (e->code) {
  case SE_UNIQUE: {
    const char *v = NULL;
    if (rowidx && col[0]) {
      lua_getfield(L, rowidx, col);
      if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) v = lua_tostring(L, -1);
    }
    if (v && strcmp(col, "name") == 0)
      mcpl_push_error(L, "conflict", "%s %s named '%.200s' already exists", article(noun), noun, v);
    else if (v)
      mcpl_push_error(L, "conflict", "%s %s with %s '%.200s' already exists", article(noun), noun, col, v);
    else
      mcpl_push_error(L, "conflict", "%s %s with this %s already exists", article(noun), noun,
                      col[0] ? col : "value");
    if (col[0]) { lua_pushstring(L, col); lua_setfield(L, -2, "field"); }
    return lua_error(L);
  }
  case SE_NOT_NULL:
    mcpl_push_error(L, "invalid_argument", "'%s' is required", col);
    lua_pushstring(L, col);
    lua_setfield(L, -2, "field");
    return lua_error(L);
  case SE_CHECK:
    mcpl_push_error(L, "invalid_argument", "'%s' has a value that is not allowed", col);
    lua_pushstring(L, col);
    lua_setfield(L, -2, "field");
    return lua_error(L);
  case SE_FOREIGN_KEY:
    if (deleting) return mcpl_lua_error(L, "conflict", "this %s is still in use by other records", noun);
    return mcpl_lua_error(L, "invalid_argument", "a record this %s refers to does not exist", noun);
  case SE_REFUSED:
    return mcpl_lua_error(L, "invalid_argument", "%s", e->msg);
  case SE_BUSY:
    return mcpl_lua_error(L, "timeout", "the database is busy; try again");
  case SE_TIMEOUT:
    return mcpl_lua_error(L, "timeout", "the database did not answer in time");
  case SE_UNAVAILABLE:
    mcpl_log(c->e, "warn", "database unavailable: %s", e->msg);
    return mcpl_lua_error(L, "unavailable", "the database is unavailable: %s", e->msg);
  case SE_OK:
  case SE_INTERNAL:
    break;
  }
  mcpl_log(c->e, "error", "database error: %s", e->msg);
  return mcpl_lua_error(L, "internal", "database error: %s", e->msg);
}
