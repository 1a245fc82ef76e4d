/* store_query.c: named read queries for hot or multi-table reads, one standard
 * SQL statement each: Lua asks for "assistant_tools" and never sees SQL. */
#include <stdio.h>
#include <string.h>
#include <lauxlib.h>
#include "store.h"

#define ATTACHED_SERVERS                                                            \
  " FROM attachments a JOIN servers s ON s.id = a.server_id"                        \
  " LEFT JOIN classifications c ON c.id = s.classification_id"                      \
  " LEFT JOIN enablements e ON e.server_id = s.id"

static const store_named queries[] = {
  /* what a server record shows beside its own columns */
  {"server_meta", {"server_id"},
   "SELECT CASE WHEN e.id IS NULL THEN 0 ELSE 1 END, c.id, c.name, c.level, c.description FROM servers s"
   " LEFT JOIN enablements e ON e.server_id = s.id"
   " LEFT JOIN classifications c ON c.id = s.classification_id WHERE s.id = ?1",
   " AND s.tenant_id = ?T", "",
   {{"enabled", ST_BOOL}, {"classification_id", ST_TEXT}, {"classification_name", ST_TEXT},
    {"classification_level", ST_INT}, {"classification_description", ST_TEXT}, {NULL, ST_TEXT}}},
  /* the servers attached to an assistant, with what usability checks need */
  {"assistant_servers", {"assistant_id"},
   "SELECT a.id, s.id, s.name, CASE WHEN s.url IS NULL THEN 0 ELSE 1 END, s.auth_type, s.capabilities_status, "
   "s.classification_id, c.level, c.name, CASE WHEN e.id IS NULL THEN 0 ELSE 1 END" ATTACHED_SERVERS
   " WHERE a.assistant_id = ?1", " AND a.tenant_id = ?T", " ORDER BY a.seq",
   {{"attachment_id", ST_TEXT}, {"server_id", ST_TEXT}, {"server_name", ST_TEXT},
    {"url_set", ST_BOOL}, {"auth_type", ST_TEXT}, {"capabilities_status", ST_TEXT},
    {"classification_id", ST_TEXT}, {"classification_level", ST_INT},
    {"classification_name", ST_TEXT}, {"enabled", ST_BOOL}, {NULL, ST_TEXT}}},
  /* the tool lists of the servers attached to an assistant (lua/capabilities.lua) */
  {"assistant_tool_lists", {"assistant_id"},
   "SELECT a.server_id, l.items FROM attachments a"
   " JOIN capability_lists l ON l.server_id = a.server_id AND l.kind = 'tool'"
   " WHERE a.assistant_id = ?1", " AND a.tenant_id = ?T", " ORDER BY a.seq",
   {{"server_id", ST_TEXT}, {"items", ST_TEXT}, {NULL, ST_TEXT}}},
  /* their tools awaiting an admin's approval, with the approved definition */
  {"assistant_pending_tools", {"assistant_id"},
   "SELECT a.server_id, cap.name, cap.approved_definition FROM attachments a"
   " JOIN capabilities cap ON cap.server_id = a.server_id AND cap.kind = 'tool' AND cap.status = 'pending'"
   " WHERE a.assistant_id = ?1", " AND a.tenant_id = ?T", " ORDER BY a.seq, cap.seq",
   {{"server_id", ST_TEXT}, {"name", ST_TEXT}, {"approved_definition", ST_JSON}, {NULL, ST_TEXT}}},
};

/* store.query(actor, name, params) -> array of rows */
int store_query(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *name = luaL_checkstring(L, 2);
  lua_settop(L, 3);
  if (lua_isnil(L, 3)) { lua_newtable(L); lua_replace(L, 3); }
  luaL_checktype(L, 3, LUA_TTABLE);
  const store_named *nq = NULL;
  for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++)
    if (strcmp(queries[i].name, name) == 0) nq = &queries[i];
  if (!nq) return mcpl_lua_error(L, "invalid_argument", "store: unknown query '%.100s'", name);
  lua_getfield(L, 1, "system");
  int system = lua_toboolean(L, -1);
  lua_getfield(L, 1, "tenant_id");
  const char *tid = lua_tostring(L, -1);
  if (!system && !tid) return mcpl_lua_error(L, "internal", "store: a tenant actor needs tenant_id");
  const char *params[STORE_QMAX_PARAMS] = {NULL};
  for (int i = 0; i < STORE_QMAX_PARAMS && nq->params[i]; i++) {
    lua_getfield(L, 3, nq->params[i]); /* stays on the stack until the query ran */
    if (lua_type(L, -1) != LUA_TSTRING) {
      mcpl_push_error(L, "invalid_argument", "query %s needs '%s'", name, nq->params[i]);
      lua_pushstring(L, nq->params[i]);
      lua_setfield(L, -2, "field");
      return lua_error(L);
    }
    params[i] = lua_tostring(L, -1);
  }
  store_conn *c = store_conn_of(L);
  store_rows r;
  /* the system actor sees every tenant; anyone else only its own. Every
   * table these queries join is versioned, so a tenant actor's result may
   * come from the read cache (store_cache.c). */
  int rc;
  char key[1200];
  size_t kn = (size_t)snprintf(key, sizeof key, "Q|%s|", name);
  for (int i = 0; i < STORE_QMAX_PARAMS && params[i] && kn < sizeof key; i++)
    kn += (size_t)snprintf(key + kn, sizeof key - kn, "%zu:%s|", strlen(params[i]), params[i]);
  if (!system && kn < sizeof key && store_cache_usable(c, tid)) {
    rc = 0;
    if (!store_cache_get(c, key, kn, &r)) {
      store_rows fresh;
      rc = c->be->query(c, nq, params, tid, &fresh);
      if (rc == 0) rc = store_cache_fill(c, key, kn, &fresh, &r);
    }
  } else rc = c->be->query(c, nq, params, system ? NULL : tid, &r);
  if (rc != 0) return store_raise(L, c, NULL, 0, 0);
  lua_newtable(L);
  luaL_setmetatable(L, "mcpl.json.array");
  int got, n = 0, ncols = 0;
  size_t len;
  while (ncols < STORE_QMAX_OUT && nq->out[ncols].name) ncols++;
  while ((got = r.ops->next(&r)) == 1) {
    /* sized for this query's columns: a row of 6 takes 8 slots, not the 16
     * STORE_QMAX_OUT would (discovery reads 10,000 rows at once) */
    lua_createtable(L, 0, ncols);
    for (int k = 0; k < STORE_QMAX_OUT && nq->out[k].name; k++) {
      if (r.ops->is_null(&r, k)) continue;
      switch (nq->out[k].type) {
      case ST_INT: lua_pushinteger(L, r.ops->get_int(&r, k)); break;
      case ST_BOOL: lua_pushboolean(L, r.ops->get_int(&r, k) != 0); break;
      case ST_JSON: {
        lua_getfield(L, LUA_REGISTRYINDEX, "mcpl.store.json_decode");
        const char *s = r.ops->get_text(&r, k, &len);
        lua_pushlstring(L, s, len);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) { lua_pop(L, 1); continue; }
        break;
      }
      default: {
        const char *s = r.ops->get_text(&r, k, &len);
        lua_pushlstring(L, s, len);
      }
      }
      lua_setfield(L, -2, nq->out[k].name);
    }
    lua_rawseti(L, -2, ++n);
  }
  r.ops->done(&r);
  if (got < 0) return store_raise(L, c, NULL, 0, 0);
  return 1;
}
