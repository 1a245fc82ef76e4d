/* test_store_harness.h: helpers for the store/crypto unit tests: an engine
 * booted with a one-line init (so only the C bindings are under test) and a
 * test Lua state bound to it with json, store and crypto as globals. */
#ifndef TEST_STORE_HARNESS_H
#define TEST_STORE_HARNESS_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <lauxlib.h>
#include <lualib.h>
#include <sqlite3.h>
#include "engine.h"

typedef struct {
  char dir[64], db[128], key[128], lua[128];
  mcpl_engine *e;
  lua_State *L;
} sh_env;

static inline int sh_rm(const char *p, const struct stat *sb, int f, struct FTW *w) {
  (void)sb; (void)f; (void)w;
  return remove(p);
}

/* Opens an engine on db/key; NULL with *err (JSON, caller frees) on failure. */
static inline mcpl_engine *sh_engine(sh_env *env, const char *db, const char *key, char **err) {
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", db);
  mcpl_options_set(o, "key_file", key);
  mcpl_options_set(o, "lua_dir", env->lua);
  mcpl_options_set(o, "pool_size", "1");
  mcpl_options_set(o, "log_level", "error");
  mcpl_engine *e = mcpl_open(o, err);
  mcpl_options_free(o);
  return e;
}

/* reopen{db=, key=} -> true | nil, error-json: closes the current engine
 * (and this state's connection) and opens another. */
static inline int sh_l_reopen(lua_State *L) {
  sh_env *env = lua_touserdata(L, lua_upvalueindex(1));
  const char *db = env->db, *key = env->key;
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "db");
    if (lua_isstring(L, -1)) db = lua_tostring(L, -1);
    lua_getfield(L, 1, "key");
    if (lua_isstring(L, -1)) key = lua_tostring(L, -1);
  }
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "mcpl.store.conn");
  lua_gc(L, LUA_GCCOLLECT, 0);
  if (env->e) mcpl_close(env->e);
  char *err = NULL;
  env->e = sh_engine(env, db, key, &err);
  mcpl_engine_bind(L, env->e);
  if (!env->e) {
    lua_pushnil(L);
    lua_pushstring(L, err ? err : "?");
    free(err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* sql(path, text) -> rows joined by "\n", columns by "|" (nil when there
 * are none): a raw connection for tampering and inspection. */
static inline int sh_l_sql(lua_State *L) {
  const char *path = luaL_checkstring(L, 1), *q = luaL_checkstring(L, 2);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return luaL_error(L, "sql: cannot open %s", path);
  }
  sqlite3_busy_timeout(db, 5000);
  if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) {
    lua_pushstring(L, sqlite3_errmsg(db));
    sqlite3_close(db);
    return lua_error(L);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int rc, rows = 0, ncol = sqlite3_column_count(st);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (rows++) luaL_addchar(&b, '\n');
    for (int i = 0; i < sqlite3_column_count(st); i++) {
      if (i) luaL_addchar(&b, '|');
      const char *v = (const char *)sqlite3_column_text(st, i);
      if (v) luaL_addstring(&b, v);
    }
  }
  if (rc != SQLITE_DONE) {
    lua_pushstring(L, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return lua_error(L);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  luaL_pushresult(&b);
  if (rows == 0 || (rows == 1 && ncol == 1 && lua_rawlen(L, -1) == 0)) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return 1;
}

static inline int sh_l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec * 1000.0 + (lua_Number)ts.tv_nsec / 1e6);
  return 1;
}

static inline void sh_global_module(lua_State *L, const char *name, lua_CFunction open) {
  lua_pushcfunction(L, open);
  lua_call(L, 0, 1);
  lua_setglobal(L, name);
}

/* A fresh directory, engine and test state. */
static inline void sh_setup(sh_env *env) {
  memset(env, 0, sizeof *env);
  strcpy(env->dir, "/tmp/mcplink-store-XXXXXX");
  if (!mkdtemp(env->dir)) { perror("mkdtemp"); abort(); }
  snprintf(env->db, sizeof env->db, "%s/t.db", env->dir);
  snprintf(env->key, sizeof env->key, "%s/t.key", env->dir);
  snprintf(env->lua, sizeof env->lua, "%s/lua", env->dir);
  mkdir(env->lua, 0700);
  char init[160];
  snprintf(init, sizeof init, "%s/init.lua", env->lua);
  FILE *f = fopen(init, "w");
  if (!f) abort();
  fputs("-- test init: no ops\nreturn function() return '{}' end\n", f);
  fclose(f);
  char *err = NULL;
  env->e = sh_engine(env, env->db, env->key, &err);
  if (!env->e) { fprintf(stderr, "open: %s\n", err ? err : "?"); abort(); }
  lua_State *L = env->L = luaL_newstate();
  luaL_openlibs(L);
  mcpl_engine_bind(L, env->e);
  sh_global_module(L, "json", luaopen_mcpl_json);
  sh_global_module(L, "store", luaopen_mcpl_store);
  sh_global_module(L, "crypto", luaopen_mcpl_crypto);
  lua_pushlightuserdata(L, env);
  lua_pushcclosure(L, sh_l_reopen, 1);
  lua_setglobal(L, "reopen");
  lua_pushcfunction(L, sh_l_sql);
  lua_setglobal(L, "sql");
  lua_pushcfunction(L, sh_l_now);
  lua_setglobal(L, "now_ms");
  lua_pushstring(L, env->dir); lua_setglobal(L, "DIR");
  lua_pushstring(L, env->db); lua_setglobal(L, "DB");
  lua_pushstring(L, env->key); lua_setglobal(L, "KEY");
}

static inline void sh_teardown(sh_env *env) {
  if (env->L) lua_close(env->L);
  if (env->e) mcpl_close(env->e);
  nftw(env->dir, sh_rm, 8, FTW_DEPTH | FTW_PHYS);
}

/* Runs case `name` of the Lua case file; returns NULL or a malloc'd error. */
static inline char *sh_run_case(sh_env *env, const char *file, const char *name) {
  lua_State *L = env->L;
  char *out = NULL;
  if (luaL_loadfile(L, file) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    out = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "cannot load cases");
    lua_pop(L, 1);
    return out;
  }
  lua_getfield(L, -1, name);
  if (!lua_isfunction(L, -1)) return strdup("no such case");
  luaL_loadstring(L, "local f = ...; return xpcall(f, function(e) "
                     "if type(e) == 'table' then e = (e.code or '?') .. ': ' .. tostring(e.message) "
                     ".. (e.field and (' [' .. e.field .. ']') or '') end "
                     "return debug.traceback(tostring(e), 2) end)");
  lua_insert(L, -2);
  lua_call(L, 1, 2);
  if (!lua_toboolean(L, -2)) out = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
  lua_settop(L, 0);
  return out;
}

#endif
