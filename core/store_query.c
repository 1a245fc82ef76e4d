/* store_query.c: named read queries for hot or multi-table reads (one SQL
 * statement each), so Lua asks for "assistant_tools" and never sees SQL. */
#include <stdio.h>
#include <string.h>
#include <lauxlib.h>
#include "store.h"

#define QMAX_PARAMS 4
#define QMAX_OUT 12

typedef struct {
  const char *name;
  store_type type;  /* ST_TEXT, ST_INT, ST_BOOL or ST_JSON */
} qout;

typedef struct {
  const char *name;
  const char *params[QMAX_PARAMS];  /* required text params, bound ?1.. */
  const char *sql;                  /* up to the end of the WHERE clause */
  const char *tenant_cond;          /* added for tenant actors, binds ?9 */
  const char *order;                /* ORDER BY ... */
  qout out[QMAX_OUT];
} named_query;

#define ATTACHED_SERVERS                                                            \
  " FROM attachments a JOIN servers s ON s.id = a.server_id"                        \
  " LEFT JOIN classifications c ON c.id = s.classification_id"                      \
  " LEFT JOIN enablements e ON e.server_id = s.id"

static const named_query queries[] = {
  /* what a server record shows beside its own columns */
  {"server_meta", {"server_id"},
   "SELECT e.id IS NOT NULL, c.id, c.name, c.level, c.description FROM servers s"
   " LEFT JOIN enablements e ON e.server_id = s.id"
   " LEFT JOIN classifications c ON c.id = s.classification_id WHERE s.id = ?1",
   " AND s.tenant_id = ?9", "",
   {{"enabled", ST_BOOL}, {"classification_id", ST_TEXT}, {"classification_name", ST_TEXT},
    {"classification_level", ST_INT}, {"classification_description", ST_TEXT}, {NULL, ST_TEXT}}},
  /* the servers attached to an assistant, with what usability checks need */
  {"assistant_servers", {"assistant_id"},
   "SELECT a.id, s.id, s.name, s.url IS NOT NULL, s.auth_type, s.capabilities_status, "
   "s.classification_id, c.level, c.name, e.id IS NOT NULL" ATTACHED_SERVERS
   " WHERE a.assistant_id = ?1", " AND a.tenant_id = ?9", " ORDER BY a.seq",
   {{"attachment_id", ST_TEXT}, {"server_id", ST_TEXT}, {"server_name", ST_TEXT},
    {"url_set", ST_BOOL}, {"auth_type", ST_TEXT}, {"capabilities_status", ST_TEXT},
    {"classification_id", ST_TEXT}, {"classification_level", ST_INT},
    {"classification_name", ST_TEXT}, {"enabled", ST_BOOL}, {NULL, ST_TEXT}}},
  /* every tool of every server attached to an assistant */
  {"assistant_tools", {"assistant_id"},
   "SELECT s.id, s.name, s.classification_id, c.level, e.id IS NOT NULL, cap.id, cap.name, "
   "cap.definition, cap.hash, cap.status" ATTACHED_SERVERS
   " JOIN capabilities cap ON cap.server_id = s.id AND cap.kind = 'tool'"
   " WHERE a.assistant_id = ?1", " AND a.tenant_id = ?9", " ORDER BY a.seq, cap.seq",
   {{"server_id", ST_TEXT}, {"server_name", ST_TEXT}, {"classification_id", ST_TEXT},
    {"classification_level", ST_INT}, {"enabled", ST_BOOL}, {"capability_id", ST_TEXT},
    {"name", ST_TEXT}, {"definition", ST_JSON}, {"hash", ST_TEXT}, {"status", ST_TEXT},
    {NULL, ST_TEXT}}},
};

/* store.query(actor, name, params) -> array of rows */
int store_query(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *name = luaL_checkstring(L, 2);
  lua_settop(L, 3);
  if (lua_isnil(L, 3)) { lua_newtable(L); lua_replace(L, 3); }
  luaL_checktype(L, 3, LUA_TTABLE);
  const named_query *nq = NULL;
  for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++)
    if (strcmp(queries[i].name, name) == 0) nq = &queries[i];
  if (!nq) return mcpl_lua_error(L, "invalid_argument", "store: unknown query '%.100s'", name);
  lua_getfield(L, 1, "system");
  int system = lua_toboolean(L, -1);
  lua_getfield(L, 1, "tenant_id");
  const char *tid = lua_tostring(L, -1);
  if (!system && !tid) return mcpl_lua_error(L, "internal", "store: a tenant actor needs tenant_id");
  char sql[2048];
  snprintf(sql, sizeof sql, "%s%s%s", nq->sql, system ? "" : nq->tenant_cond, nq->order);
  store_conn *c = store_conn_of(L);
  sqlite3_stmt *st = store_prepare(c, sql);
  if (!st) return store_raise_sqlite(L, c, NULL, sqlite3_extended_errcode(c->db), NULL, 0, 0);
  for (int i = 0; i < QMAX_PARAMS && nq->params[i]; i++) {
    lua_getfield(L, 3, nq->params[i]);
    if (lua_type(L, -1) != LUA_TSTRING) {
      sqlite3_reset(st);
      mcpl_push_error(L, "invalid_argument", "query %s needs '%s'", name, nq->params[i]);
      lua_pushstring(L, nq->params[i]);
      lua_setfield(L, -2, "field");
      return lua_error(L);
    }
    sqlite3_bind_text(st, i + 1, lua_tostring(L, -1), -1, SQLITE_TRANSIENT);
    lua_pop(L, 1);
  }
  if (!system) sqlite3_bind_text(st, 9, tid, -1, SQLITE_TRANSIENT);
  lua_newtable(L);
  luaL_setmetatable(L, "mcpl.json.array");
  int rc, n = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    lua_createtable(L, 0, QMAX_OUT);
    for (int k = 0; k < QMAX_OUT && nq->out[k].name; k++) {
      if (sqlite3_column_type(st, k) == SQLITE_NULL) continue;
      switch (nq->out[k].type) {
      case ST_INT: lua_pushinteger(L, sqlite3_column_int64(st, k)); break;
      case ST_BOOL: lua_pushboolean(L, sqlite3_column_int(st, k)); break;
      case ST_JSON:
        lua_getfield(L, LUA_REGISTRYINDEX, "mcpl.store.json_decode");
        lua_pushlstring(L, (const char *)sqlite3_column_text(st, k), (size_t)sqlite3_column_bytes(st, k));
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) { lua_pop(L, 1); continue; }
        break;
      default:
        lua_pushlstring(L, (const char *)sqlite3_column_text(st, k), (size_t)sqlite3_column_bytes(st, k));
      }
      lua_setfield(L, -2, nq->out[k].name);
    }
    lua_rawseti(L, -2, ++n);
  }
  if (rc != SQLITE_DONE) return store_raise_sqlite(L, c, st, rc, NULL, 0, 0);
  sqlite3_reset(st);
  return 1;
}
