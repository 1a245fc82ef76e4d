/* test_store_harness.h: helpers for the store/crypto unit tests: an engine
 * booted with a one-line init (so only the C bindings are under test) and a
 * test Lua state bound to it with json, store and crypto as globals.
 * MCPLINK_TEST_BACKEND=pg runs the same cases on PostgreSQL: each case gets
 * fresh databases in the test cluster (tests/tools/pg.sh, MCPLINK_TEST_PG_*),
 * dropped at teardown; raw inspection (sql, dump, ...) works on either. */
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
#include <libpq-fe.h>
#include "engine.h"
#include "keyring.h"
#include "store_backend.h"

#define SH_MAX_DBS 16
typedef struct {
  char dir[64], db[512], key[128], lua[128];
  int pg;                       /* PostgreSQL backend */
  char dbs[SH_MAX_DBS][64];     /* PostgreSQL databases made for this case */
  int ndbs;
  int ndbs_at;                  /* databases made by db_at (their file names) */
  mcpl_engine *e;
  lua_State *L;
} sh_env;

static inline int sh_is_uri(const char *t) {
  return strncmp(t, "postgresql://", 13) == 0 || strncmp(t, "postgres://", 11) == 0;
}

/* The URI of database name in the test cluster (maintenance: "postgres"). */
static inline void sh_pg_uri(const char *name, char *out, size_t n) {
  const char *dir = getenv("MCPLINK_TEST_PG_HOST"), *port = getenv("MCPLINK_TEST_PG_PORT");
  const char *user = getenv("MCPLINK_TEST_PG_USER");
  if (!dir || !port || !user) {
    fprintf(stderr, "MCPLINK_TEST_BACKEND=pg needs a cluster (tests/tools/pg.sh start)\n");
    abort();
  }
  snprintf(out, n, "postgresql://%s@/%s?host=%s&port=%s", user, name, dir, port);
}

/* Runs one statement on a PostgreSQL URI; NULL and *err on failure. */
static inline PGresult *sh_pg_run(const char *uri, const char *sql, char *err, size_t errn) {
  PGconn *pg = PQconnectdb(uri);
  PGresult *res = NULL;
  if (PQstatus(pg) != CONNECTION_OK) snprintf(err, errn, "%s", PQerrorMessage(pg));
  else {
    res = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      snprintf(err, errn, "%s", PQresultErrorMessage(res));
      PQclear(res);
      res = NULL;
    }
  }
  PQfinish(pg);
  return res;
}

/* A new empty database of this case: a file path, or a PostgreSQL URI. */
static inline void sh_newdb(sh_env *env, const char *label, char *out, size_t n) {
  if (!env->pg) { snprintf(out, n, "%s/%s.db", env->dir, label); return; }
  if (env->ndbs >= SH_MAX_DBS) abort();
  char *name = env->dbs[env->ndbs++], maint[512], sql[128], err[512];
  unsigned char r[5];
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(r, 1, sizeof r, f) != sizeof r) abort();
  fclose(f);
  snprintf(name, 64, "t_%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4]);
  sh_pg_uri("postgres", maint, sizeof maint);
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
  PGresult *res = sh_pg_run(maint, sql, err, sizeof err);
  if (!res) { fprintf(stderr, "create database: %s\n", err); abort(); }
  PQclear(res);
  sh_pg_uri(name, out, n);
}

static inline int sh_rm(const char *p, const struct stat *sb, int f, struct FTW *w) {
  (void)sb; (void)f; (void)w;
  return remove(p);
}

/* opened_count() -> secrets the engine keeps opened (keyring.c) */
static inline int sh_l_opened_count(lua_State *L) {
  sh_env *env = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushinteger(L, env->e ? keyring_opened_count(env->e) : 0);
  return 1;
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

/* sql(db, text) -> rows joined by "\n", columns by "|" (nil when there
 * are none): a raw connection for tampering and inspection. */
static inline int sh_l_sql(lua_State *L) {
  const char *path = luaL_checkstring(L, 1), *q = luaL_checkstring(L, 2);
  luaL_Buffer b;
  int rows = 0, ncol = 0;
  if (sh_is_uri(path)) {
    char err[1024];
    PGresult *res = sh_pg_run(path, q, err, sizeof err);
    if (!res) return luaL_error(L, "sql: %s", err);
    luaL_buffinit(L, &b);
    ncol = PQnfields(res);
    for (rows = 0; rows < PQntuples(res); rows++) {
      if (rows) luaL_addchar(&b, '\n');
      for (int i = 0; i < ncol; i++) {
        if (i) luaL_addchar(&b, '|');
        luaL_addstring(&b, PQgetvalue(res, rows, i));
      }
    }
    PQclear(res);
  } else {
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
    luaL_buffinit(L, &b);
    int rc;
    ncol = sqlite3_column_count(st);
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
  }
  luaL_pushresult(&b);
  if (rows == 0 || (rows == 1 && ncol == 1 && lua_rawlen(L, -1) == 0)) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return 1;
}

static inline void sh_add_file(luaL_Buffer *b, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) luaL_addlstring(b, buf, n);
  fclose(f);
}

static luaL_Buffer *sh_dump_buf;
static inline int sh_dump_file(const char *p, const struct stat *sb, int f, struct FTW *w) {
  (void)w;
  if (f == FTW_F && S_ISREG(sb->st_mode)) sh_add_file(sh_dump_buf, p);
  return 0;
}

/* dump(db) -> every byte the database keeps on disk (for secrets that must
 * not be there): SQLite: the file and its WAL; PostgreSQL: after a
 * checkpoint, the database's files and the cluster's WAL. */
static inline int sh_l_dump(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (!sh_is_uri(path)) {
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", path);
    sh_add_file(&b, path);
    sh_add_file(&b, wal);
  } else {
    char err[1024], dir[1024];
    PGresult *res = sh_pg_run(path, "CHECKPOINT", err, sizeof err);
    if (res) PQclear(res);
    res = sh_pg_run(path, "SELECT oid FROM pg_database WHERE datname = current_database()", err, sizeof err);
    if (!res) return luaL_error(L, "dump: %s", err);
    const char *data = getenv("MCPLINK_TEST_PG_DIR");
    snprintf(dir, sizeof dir, "%s/data/base/%s", data ? data : "/nonexistent", PQgetvalue(res, 0, 0));
    PQclear(res);
    sh_dump_buf = &b;
    if (nftw(dir, sh_dump_file, 8, FTW_PHYS) != 0) return luaL_error(L, "dump: cannot read %s", dir);
    snprintf(dir, sizeof dir, "%s/data/pg_wal", data);
    nftw(dir, sh_dump_file, 8, FTW_PHYS);
  }
  luaL_pushresult(&b);
  return 1;
}

/* snapshot(db) -> what must stay the same when nothing may change:
 * SQLite: every byte of the file and its WAL; PostgreSQL: pg_dump's text of
 * the schema and the data (its files change on reads too: hint bits). */
static inline int sh_l_snapshot(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (!sh_is_uri(path)) return sh_l_dump(L);
  const char *bin = getenv("MCPLINK_TEST_PG_BIN");
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s/pg_dump' --no-sync -d '%s'", bin ? bin : "/usr/bin", path);
  FILE *p = popen(cmd, "r");
  if (!p) return luaL_error(L, "snapshot: cannot run pg_dump");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char line[65536];
  /* newer pg_dump guards its output with a random \restrict key: not data */
  while (fgets(line, sizeof line, p))
    if (strncmp(line, "\\restrict ", 10) != 0 && strncmp(line, "\\unrestrict ", 12) != 0) luaL_addstring(&b, line);
  if (pclose(p) != 0) return luaL_error(L, "snapshot: pg_dump failed");
  luaL_pushresult(&b);
  return 1;
}

/* newdb(label) -> a new empty database (path or URI) */
static inline int sh_l_newdb(lua_State *L) {
  sh_env *env = lua_touserdata(L, lua_upvalueindex(1));
  char out[512];
  sh_newdb(env, luaL_checkstring(L, 1), out, sizeof out);
  lua_pushstring(L, out);
  return 1;
}

/* The rows of the version-1 fixture (also tests/data/v1.db): one of each
 * kind of record, in standard SQL. */
static const char SH_V1_ROWS[] =
  "INSERT INTO tenants (id, name, settings, created_at, updated_at) "
  "  VALUES ('ten_legacy000000000000', 'legacy', '{}', 1000, 1000);"
  "INSERT INTO users (id, tenant_id, name, role, created_at, updated_at) "
  "  VALUES ('usr_legacy000000000000', 'ten_legacy000000000000', 'root', 'admin', 1000, 1000);"
  "INSERT INTO classifications (id, tenant_id, name, level, created_at, updated_at) "
  "  VALUES ('cls_legacy000000000000', 'ten_legacy000000000000', 'public', 0, 1000, 1000);"
  "INSERT INTO servers (id, tenant_id, name, description, description_source, url, auth_type, "
  "  classification_id, capabilities_status, created_at, updated_at) "
  "  VALUES ('srv_legacy000000000000', 'ten_legacy000000000000', 'old-server', 'kept across upgrade', "
  "  'admin', 'https://mcp.example.com/', 'none', 'cls_legacy000000000000', 'ok', 1000, 1000);"
  "INSERT INTO capabilities (id, tenant_id, server_id, kind, name, definition, hash, "
  "  approved_definition, approved_hash, status, created_at, updated_at) "
  "  VALUES ('cap_legacy000000000000', 'ten_legacy000000000000', 'srv_legacy000000000000', 'tool', "
  "  'echo', '{\"name\":\"echo\",\"tags\":[]}', 'h1', '{\"name\":\"echo\",\"tags\":[]}', 'h1', "
  "  'approved', 1000, 1000);";

/* v1_fixture() -> a database at schema version 1 holding SH_V1_ROWS:
 * SQLite: a copy of tests/data/v1.db (written by an old release, frozen);
 * PostgreSQL: a new database migrated to step 1 with the same rows. */
static inline int sh_l_v1_fixture(lua_State *L) {
  sh_env *env = lua_touserdata(L, lua_upvalueindex(1));
  char out[512], err[1024];
  sh_newdb(env, "old", out, sizeof out);
  if (!env->pg) {
    FILE *in = fopen("tests/data/v1.db", "rb"), *o = fopen(out, "wb");
    if (!in || !o) return luaL_error(L, "v1_fixture: cannot copy tests/data/v1.db");
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, o);
    fclose(in);
    fclose(o);
  } else {
    char *msg = NULL;
    if (store_pg_migrate(out, 1, &msg) != MCPL_OK) {
      lua_pushfstring(L, "v1_fixture: %s", msg ? msg : "?");
      free(msg);
      return lua_error(L);
    }
    PGresult *res = sh_pg_run(out, SH_V1_ROWS, err, sizeof err);
    if (!res) return luaL_error(L, "v1_fixture: %s", err);
    PQclear(res);
  }
  lua_pushstring(L, out);
  return 1;
}

/* db_at(step) -> a new empty database at schema version step, as this code's
 * migrations 1..step leave it (on either backend): the previous version, for
 * the migration cases. */
static inline int sh_l_db_at(lua_State *L) {
  sh_env *env = lua_touserdata(L, lua_upvalueindex(1));
  int step = (int)luaL_checkinteger(L, 1);
  char out[512], label[32], *msg = NULL;
  int rc;
  snprintf(label, sizeof label, "at%d", env->ndbs_at++);
  sh_newdb(env, label, out, sizeof out);
  if (env->pg) rc = store_pg_migrate(out, step, &msg);
  else {
    sqlite3 *db = NULL;
    rc = sqlite3_open(out, &db) == SQLITE_OK ? store_sqlite_migrate(db, step, &msg) : MCPL_E_INTERNAL;
    sqlite3_close(db);
  }
  if (rc != MCPL_OK) {
    lua_pushfstring(L, "db_at(%d): %s", step, msg ? msg : "cannot open");
    free(msg);
    return lua_error(L);
  }
  lua_pushstring(L, out);
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
  const char *be = getenv("MCPLINK_TEST_BACKEND");
  env->pg = be && strcmp(be, "pg") == 0;
  strcpy(env->dir, "/tmp/mcplink-store-XXXXXX");
  if (!mkdtemp(env->dir)) { perror("mkdtemp"); abort(); }
  sh_newdb(env, "t", env->db, sizeof env->db);
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
  lua_pushcfunction(L, sh_l_dump);
  lua_setglobal(L, "dump");
  lua_pushcfunction(L, sh_l_snapshot);
  lua_setglobal(L, "snapshot");
  lua_pushlightuserdata(L, env);
  lua_pushcclosure(L, sh_l_newdb, 1);
  lua_setglobal(L, "newdb");
  lua_pushlightuserdata(L, env);
  lua_pushcclosure(L, sh_l_v1_fixture, 1);
  lua_setglobal(L, "v1_fixture");
  lua_pushlightuserdata(L, env);
  lua_pushcclosure(L, sh_l_db_at, 1);
  lua_setglobal(L, "db_at");
  lua_pushstring(L, env->pg ? "pg" : "sqlite");
  lua_setglobal(L, "BACKEND");
  lua_pushcfunction(L, sh_l_now);
  lua_setglobal(L, "now_ms");
  lua_pushlightuserdata(L, env);
  lua_pushcclosure(L, sh_l_opened_count, 1);
  lua_setglobal(L, "opened_count");
  lua_pushstring(L, env->dir); lua_setglobal(L, "DIR");
  lua_pushstring(L, env->db); lua_setglobal(L, "DB");
  lua_pushstring(L, env->key); lua_setglobal(L, "KEY");
}

static inline void sh_teardown(sh_env *env) {
  if (env->L) lua_close(env->L);
  if (env->e) mcpl_close(env->e);
  nftw(env->dir, sh_rm, 8, FTW_DEPTH | FTW_PHYS);
  char maint[512], sql[128], err[512];
  for (int i = 0; i < env->ndbs; i++) {
    sh_pg_uri("postgres", maint, sizeof maint);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", env->dbs[i]);
    PGresult *res = sh_pg_run(maint, sql, err, sizeof err);
    if (res) PQclear(res);
  }
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
