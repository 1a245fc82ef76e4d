/* bind_store.c: the Lua `store` module: generic tenant-scoped records over
 * the schema in store_schema.c. SQL never leaves this binding. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "crypto.h"
#include "store.h"

#define SQL_MAX 4096
#define MAX_BINDS 64
#define LIST_DEFAULT 50
#define LIST_MAX 500
#define JENC_KEY "mcpl.store.json_encode"
#define JDEC_KEY "mcpl.store.json_decode"
#define ARRAY_MT "mcpl.json.array"

/* ---- small helpers ------------------------------------------------------------ */

typedef struct {
  char s[SQL_MAX];
  size_t n;
  int overflow;
} sqlbuf;

static void sb_add(sqlbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sqlbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= sizeof b->s - b->n) b->overflow = 1;
  else b->n += (size_t)w;
}

enum { BV_NULL, BV_INT, BV_STR };
typedef struct {
  int kind;
  lua_Integer i;
  const char *s;
  size_t n;
} bval;

typedef struct {
  bval v[MAX_BINDS];
  int n;
} binds;

static void bind_null(binds *b) { b->v[b->n++] = (bval){BV_NULL, 0, NULL, 0}; }
static void bind_int(binds *b, lua_Integer i) { b->v[b->n++] = (bval){BV_INT, i, NULL, 0}; }
static void bind_str(binds *b, const char *s) { b->v[b->n++] = (bval){BV_STR, 0, s, s ? strlen(s) : 0}; }
static void bind_lstr(binds *b, const char *s, size_t n) { b->v[b->n++] = (bval){BV_STR, 0, s, n}; }

static sqlite3_stmt *prepare(lua_State *L, store_conn *c, sqlbuf *q, binds *b) {
  if (q->overflow) mcpl_lua_error(L, "internal", "store: statement too long");
  sqlite3_stmt *st = store_prepare(c, q->s);
  if (!st) return (store_raise_sqlite(L, c, NULL, sqlite3_extended_errcode(c->db), NULL, 0, 0), NULL);
  for (int i = 0; b && i < b->n; i++) {
    bval *v = &b->v[i];
    if (v->kind == BV_NULL) sqlite3_bind_null(st, i + 1);
    else if (v->kind == BV_INT) sqlite3_bind_int64(st, i + 1, v->i);
    else sqlite3_bind_text(st, i + 1, v->s, (int)v->n, SQLITE_TRANSIENT);
  }
  return st;
}

static int is_null(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

static int raise_field(lua_State *L, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int raise_field(lua_State *L, const char *code, const char *field, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  mcpl_push_error(L, code, "%s", buf);
  if (field) { lua_pushstring(L, field); lua_setfield(L, -2, "field"); }
  return lua_error(L);
}

/* ---- actor and table -------------------------------------------------------------- */

typedef struct {
  int system;
  const char *tenant_id;
} actor_t;

static void check_actor(lua_State *L, int idx, actor_t *a) {
  if (!lua_istable(L, idx)) mcpl_lua_error(L, "internal", "store: the actor must be a table");
  lua_getfield(L, idx, "system");
  a->system = lua_toboolean(L, -1);
  lua_getfield(L, idx, "tenant_id");
  a->tenant_id = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 2); /* the string stays referenced by the actor table */
  if (!a->system && !a->tenant_id)
    mcpl_lua_error(L, "internal", "store: a tenant actor needs tenant_id (resolve it first)");
}

static store_table *check_table(lua_State *L, int idx, const actor_t *a) {
  const char *name = luaL_checkstring(L, idx);
  store_table *t = store_table_find(name);
  if (!t) raise_field(L, "invalid_argument", "table", "store: unknown table '%.100s'", name);
  if (t->system_only && !a->system)
    mcpl_lua_error(L, "forbidden", "%ss are managed by the system administrator", t->noun);
  return t;
}

/* Does this actor's query need "tenant_id = ?" */
static int scoped_for(const store_table *t, const actor_t *a) { return t->scoped && !a->system; }

/* ---- values ----------------------------------------------------------------------- */

static void json_encode_push(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_getfield(L, LUA_REGISTRYINDEX, JENC_KEY);
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
}

/* Converts the Lua value at idx for a non-secret column into a bind; json
 * encodings are left on the stack (caller keeps them until the step). */
static void to_bind(lua_State *L, binds *b, const store_col *col, int idx) {
  int ty = lua_type(L, idx);
  if (ty == LUA_TNIL || is_null(L, idx)) { bind_null(b); return; }
  switch (col->type) {
  case ST_TEXT:
    if (ty != LUA_TSTRING) raise_field(L, "invalid_argument", col->name, "'%s' must be a string", col->name);
    { size_t n; const char *s = lua_tolstring(L, idx, &n); bind_lstr(b, s, n); }
    return;
  case ST_INT:
    if (!lua_isinteger(L, idx)) {
      lua_Integer i;
      if (ty == LUA_TNUMBER && lua_numbertointeger(lua_tonumber(L, idx), &i)) { bind_int(b, i); return; }
      raise_field(L, "invalid_argument", col->name, "'%s' must be an integer", col->name);
    }
    bind_int(b, lua_tointeger(L, idx));
    return;
  case ST_BOOL:
    if (ty != LUA_TBOOLEAN) raise_field(L, "invalid_argument", col->name, "'%s' must be a boolean", col->name);
    bind_int(b, lua_toboolean(L, idx));
    return;
  case ST_JSON: {
    json_encode_push(L, idx);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    bind_lstr(b, s, n);
    return;
  }
  case ST_SECRET:
    break;
  }
  mcpl_lua_error(L, "internal", "store: secret column handled elsewhere");
}

/* Pushes one row as a table. Columns in t->select_list order; NULLs are
 * absent; secrets appear only as <col>_set. */
static void push_row(lua_State *L, const store_table *t, sqlite3_stmt *st) {
  lua_createtable(L, 0, t->ncols + 4);
  int i = 0;
  lua_pushstring(L, (const char *)sqlite3_column_text(st, i++));
  lua_setfield(L, -2, "id");
  if (t->scoped) {
    if (sqlite3_column_type(st, i) != SQLITE_NULL) {
      lua_pushstring(L, (const char *)sqlite3_column_text(st, i));
      lua_setfield(L, -2, "tenant_id");
    }
    i++;
  }
  lua_pushinteger(L, sqlite3_column_int64(st, i++));
  lua_setfield(L, -2, "created_at");
  lua_pushinteger(L, sqlite3_column_int64(st, i++));
  lua_setfield(L, -2, "updated_at");
  for (const store_col *c = t->cols; c->name; c++, i++) {
    if (c->type == ST_SECRET) {
      char key[80];
      snprintf(key, sizeof key, "%s_set", c->name);
      lua_pushboolean(L, sqlite3_column_int(st, i));
      lua_setfield(L, -2, key);
      continue;
    }
    if (sqlite3_column_type(st, i) == SQLITE_NULL) continue;
    switch (c->type) {
    case ST_INT: lua_pushinteger(L, sqlite3_column_int64(st, i)); break;
    case ST_BOOL: lua_pushboolean(L, sqlite3_column_int(st, i)); break;
    case ST_JSON:
      lua_getfield(L, LUA_REGISTRYINDEX, JDEC_KEY);
      lua_pushlstring(L, (const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
      if (lua_pcall(L, 1, 1, 0) != LUA_OK) { lua_pop(L, 1); continue; }
      break;
    default:
      lua_pushlstring(L, (const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
    }
    lua_setfield(L, -2, c->name);
  }
}

static void gen_id(const char *prefix, char *out, size_t outn) {
  static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
  unsigned char r[20];
  if (crypto_random(r, sizeof r) != 0) abort(); /* no randomness: nothing is safe */
  size_t n = (size_t)snprintf(out, outn, "%s", prefix);
  for (size_t i = 0; i < sizeof r && n + 1 < outn; i++) out[n++] = b32[r[i] & 31];
  out[n] = 0;
}

/* Pushes the row with this id (no scoping: the caller has checked). */
static void push_by_id(lua_State *L, store_conn *c, const store_table *t, const char *id) {
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "SELECT %s FROM %s WHERE id = ?", t->select_list, t->name);
  bind_str(&b, id);
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    if (rc == SQLITE_DONE) { sqlite3_reset(st); mcpl_lua_error(L, "not_found", "%s not found", t->noun); }
    store_raise_sqlite(L, c, st, rc, t, 0, 0);
  }
  push_row(L, t, st);
  sqlite3_reset(st);
}

/* A referenced row must exist in the same tenant: ids of another tenant are
 * as absent as ids that never existed. */
static void check_ref(lua_State *L, store_conn *c, const store_col *col, const char *tid, int vidx) {
  if (lua_type(L, vidx) != LUA_TSTRING) return; /* null, or a type error reported later */
  store_table *r = store_table_find(col->ref);
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "SELECT 1 FROM %s WHERE id = ?", r->name);
  bind_str(&b, lua_tostring(L, vidx));
  if (r->scoped) {
    sb_add(&q, " AND tenant_id IS ?");
    if (tid) bind_str(&b, tid); else bind_null(&b);
  }
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_DONE)
    raise_field(L, "not_found", col->name, "%s '%.200s' not found", r->noun, lua_tostring(L, vidx));
  if (rc != SQLITE_ROW) store_raise_sqlite(L, c, NULL, rc, r, 0, 0);
}

/* Every key of the table at idx must be a writable column. */
static void check_columns(lua_State *L, const store_table *t, int idx, int allow_tenant) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      mcpl_lua_error(L, "invalid_argument", "store: column names must be strings");
    const char *k = lua_tostring(L, -1);
    if (allow_tenant && t->scoped && strcmp(k, "tenant_id") == 0) continue;
    if (!store_col_find(t, k)) {
      if (!strcmp(k, "id") || !strcmp(k, "tenant_id") || !strcmp(k, "created_at") || !strcmp(k, "updated_at"))
        raise_field(L, "invalid_argument", k, "'%s' is set by the store and cannot be written", k);
      raise_field(L, "invalid_argument", k, "store: table '%s' has no column '%.100s'", t->name, k);
    }
  }
}

/* Appends the where clause for a {col=value} table (equality; json.null
 * means IS NULL) plus the actor's tenant. */
static void add_where(lua_State *L, const store_table *t, const actor_t *a, int widx, sqlbuf *q, binds *b) {
  const char *and = " WHERE ";
  if (scoped_for(t, a)) { sb_add(q, "%stenant_id = ?", and); bind_str(b, a->tenant_id); and = " AND "; }
  if (widx == 0 || lua_isnoneornil(L, widx)) return;
  if (!lua_istable(L, widx)) mcpl_lua_error(L, "invalid_argument", "store: where must be a table");
  lua_pushnil(L);
  while (lua_next(L, widx)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
    const store_col *c = store_col_find(t, k);
    int special = !strcmp(k, "id") || (t->scoped && !strcmp(k, "tenant_id"));
    if (!special && !c) raise_field(L, "invalid_argument", k, "store: table '%s' has no column '%.100s'", t->name, k);
    if (c && (c->type == ST_JSON || c->type == ST_SECRET))
      raise_field(L, "invalid_argument", k, "store: cannot filter on '%s'", k);
  }
  /* a fixed column order keeps the SQL text, and so the cached statement, stable */
  static const store_col id_col = {"id", ST_TEXT, NULL}, tenant_col = {"tenant_id", ST_TEXT, NULL};
  luaL_checkstack(L, 8, "store where");
  for (int pass = 0; pass < 3; pass++) {
    const store_col *cs = pass == 0 ? &id_col : pass == 1 ? &tenant_col : t->cols;
    for (; cs->name; cs++) {
      lua_getfield(L, widx, cs->name);
      if (lua_isnil(L, -1)) { lua_pop(L, 1); if (pass < 2) break; continue; }
      if (is_null(L, -1)) { sb_add(q, "%s%s IS NULL", and, cs->name); lua_pop(L, 1); }
      else {
        sb_add(q, "%s%s = ?", and, cs->name);
        if (b->n >= MAX_BINDS - 2) mcpl_lua_error(L, "invalid_argument", "store: too many conditions");
        to_bind(L, b, cs, -1); /* the value stays referenced by the where table */
        lua_pop(L, 1);
      }
      and = " AND ";
      if (pass < 2) break;
    }
  }
}

/* ---- CRUD ----------------------------------------------------------------------- */

/* store.insert(actor, table, row [, {returning=false}]) -> row (or only its id) */
static int l_insert(lua_State *L) {
  actor_t a;
  check_actor(L, 1, &a);
  store_table *t = check_table(L, 2, &a);
  luaL_checktype(L, 3, LUA_TTABLE);
  /* opts {returning=false}: return only the new id, without reading the
   * row back (bulk inserts such as discovery's) */
  int returning = 1;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "returning");
    if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) returning = 0;
    lua_pop(L, 1);
  }
  lua_settop(L, 3);
  luaL_checkstack(L, 80, "store insert");
  store_conn *c = store_conn_of(L);
  check_columns(L, t, 3, 1);
  const char *tid = NULL;
  if (t->scoped) {
    lua_getfield(L, 3, "tenant_id");
    int given = !lua_isnil(L, -1);
    if (a.system) {
      if (lua_type(L, -1) == LUA_TSTRING) tid = lua_tostring(L, -1);
      else if (!(t->null_tenant && is_null(L, -1)))
        raise_field(L, "invalid_argument", "tenant_id", "'tenant_id' is required for the system actor");
    } else {
      if (given && (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), a.tenant_id) != 0))
        raise_field(L, "invalid_argument", "tenant_id", "'tenant_id' must be the actor's own tenant");
      tid = a.tenant_id;
    }
    /* keep it on the stack: it is bound below */
    if (tid && !a.system) { lua_pop(L, 1); lua_pushstring(L, tid); }
    if (tid && t->scoped && !t->null_tenant) {
      /* the tenant itself must exist (the system actor names it) */
      static const store_col tcol = {"tenant_id", ST_TEXT, "tenants"};
      int ti = lua_gettop(L);
      check_ref(L, c, &tcol, NULL, ti);
    }
  }
  char id[64];
  gen_id(t->prefix, id, sizeof id);
  long long now = store_now_ms();
  sqlbuf q = {.n = 0}, vals = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "INSERT INTO %s (id,%screated_at,updated_at", t->name, t->scoped ? "tenant_id," : "");
  sb_add(&vals, "?,%s?,?", t->scoped ? "?," : "");
  bind_str(&b, id);
  if (t->scoped) { if (tid) bind_str(&b, tid); else bind_null(&b); }
  bind_int(&b, now);
  bind_int(&b, now);
  for (const store_col *col = t->cols; col->name; col++) {
    lua_getfield(L, 3, col->name);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); continue; }
    if (col->ref) check_ref(L, c, col, tid, lua_gettop(L));
    sb_add(&q, ",%s", col->name);
    sb_add(&vals, ",?");
    if (col->type == ST_SECRET && !is_null(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING)
        raise_field(L, "invalid_argument", col->name, "'%s' must be a string", col->name);
      store_seal_push(L, c, -1, tid, t->name, id, col->name);
      bind_str(&b, lua_tostring(L, -1));
    } else if (col->type == ST_SECRET) bind_null(&b);
    else to_bind(L, &b, col, -1);
  }
  sb_add(&q, ") VALUES (%s)", vals.s);
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return store_raise_sqlite(L, c, st, rc, t, 3, 0);
  sqlite3_reset(st);
  if (!returning) {
    lua_pushstring(L, id);
    return 1;
  }
  push_by_id(L, c, t, id);
  return 1;
}

/* Finds the row's tenant (copied into tid) under the actor's scope. */
static int locate(lua_State *L, store_conn *c, const store_table *t, const actor_t *a, const char *id,
                  char *tid, size_t tidn) {
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "SELECT %s FROM %s WHERE id = ?", t->scoped ? "tenant_id" : "NULL", t->name);
  bind_str(&b, id);
  if (scoped_for(t, a)) { sb_add(&q, " AND tenant_id = ?"); bind_str(&b, a->tenant_id); }
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) { sqlite3_reset(st); return 0; }
  if (rc != SQLITE_ROW) store_raise_sqlite(L, c, st, rc, t, 0, 0);
  const char *v = (const char *)sqlite3_column_text(st, 0);
  snprintf(tid, tidn, "%s", v ? v : "");
  sqlite3_reset(st);
  return 1;
}

/* store.get(actor, table, id) -> row; not_found "<noun> not found" */
static int l_get(lua_State *L) {
  actor_t a;
  check_actor(L, 1, &a);
  store_table *t = check_table(L, 2, &a);
  const char *id = luaL_checkstring(L, 3);
  store_conn *c = store_conn_of(L);
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "SELECT %s FROM %s WHERE id = ?", t->select_list, t->name);
  bind_str(&b, id);
  if (scoped_for(t, &a)) { sb_add(&q, " AND tenant_id = ?"); bind_str(&b, a.tenant_id); }
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) { sqlite3_reset(st); return raise_field(L, "not_found", "id", "%s not found", t->noun); }
  if (rc != SQLITE_ROW) return store_raise_sqlite(L, c, st, rc, t, 0, 0);
  push_row(L, t, st);
  sqlite3_reset(st);
  return 1;
}

/* store.find(actor, table, where) -> row | nil */
static int l_find(lua_State *L) {
  actor_t a;
  check_actor(L, 1, &a);
  store_table *t = check_table(L, 2, &a);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  store_conn *c = store_conn_of(L);
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "SELECT %s FROM %s", t->select_list, t->name);
  add_where(L, t, &a, 3, &q, &b);
  sb_add(&q, " ORDER BY seq LIMIT 1");
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) { sqlite3_reset(st); lua_pushnil(L); return 1; }
  if (rc != SQLITE_ROW) return store_raise_sqlite(L, c, st, rc, t, 0, 0);
  push_row(L, t, st);
  sqlite3_reset(st);
  return 1;
}

/* store.count(actor, table [, where]) -> n */
static int l_count(lua_State *L) {
  actor_t a;
  check_actor(L, 1, &a);
  store_table *t = check_table(L, 2, &a);
  lua_settop(L, 3);
  store_conn *c = store_conn_of(L);
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "SELECT count(*) FROM %s", t->name);
  add_where(L, t, &a, 3, &q, &b);
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) return store_raise_sqlite(L, c, st, rc, t, 0, 0);
  lua_pushinteger(L, sqlite3_column_int64(st, 0));
  sqlite3_reset(st);
  return 1;
}

/* Cursors are "s<seq>": opaque to callers, validated strictly. */
static long long parse_cursor(lua_State *L, int idx) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  long long v = 0;
  int ok = s && n >= 2 && n <= 19 && s[0] == 's';
  for (size_t i = 1; ok && i < n; i++) {
    if (s[i] < '0' || s[i] > '9') ok = 0;
    else v = v * 10 + (s[i] - '0');
  }
  if (!ok) raise_field(L, "invalid_argument", "cursor", "invalid cursor");
  return v;
}

/* store.list(actor, table [, {where=, limit=, cursor=}]) -> {items, next_cursor} */
static int l_list(lua_State *L) {
  actor_t a;
  check_actor(L, 1, &a);
  store_table *t = check_table(L, 2, &a);
  lua_settop(L, 3);
  if (lua_isnil(L, 3)) { lua_newtable(L); lua_replace(L, 3); }
  luaL_checktype(L, 3, LUA_TTABLE);
  store_conn *c = store_conn_of(L);
  lua_getfield(L, 3, "where");   /* 4 */
  lua_getfield(L, 3, "limit");   /* 5 */
  lua_getfield(L, 3, "cursor");  /* 6 */
  lua_Integer limit = LIST_DEFAULT;
  if (!lua_isnil(L, 5) && !is_null(L, 5)) {
    if (!lua_isinteger(L, 5) || lua_tointeger(L, 5) < 1 || lua_tointeger(L, 5) > LIST_MAX)
      return raise_field(L, "invalid_argument", "limit", "'limit' must be an integer from 1 to %d", LIST_MAX);
    limit = lua_tointeger(L, 5);
  }
  int has_cursor = !lua_isnil(L, 6) && !is_null(L, 6);
  if (has_cursor && lua_type(L, 6) != LUA_TSTRING) return raise_field(L, "invalid_argument", "cursor", "invalid cursor");
  long long after = has_cursor ? parse_cursor(L, 6) : 0;
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "SELECT %s,seq FROM %s", t->select_list, t->name);
  add_where(L, t, &a, lua_isnil(L, 4) ? 0 : 4, &q, &b);
  if (has_cursor) { sb_add(&q, "%s seq > ?", b.n ? " AND" : " WHERE"); bind_int(&b, after); }
  sb_add(&q, " ORDER BY seq LIMIT ?");
  bind_int(&b, limit + 1);
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int seqcol = 3 + t->scoped + t->ncols, rc;
  lua_createtable(L, 0, 2);
  lua_createtable(L, (int)limit, 0);
  luaL_setmetatable(L, ARRAY_MT);
  lua_Integer n = 0;
  long long last = 0;
  int more = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == limit) { more = 1; break; }
    push_row(L, t, st);
    lua_rawseti(L, -2, ++n);
    last = sqlite3_column_int64(st, seqcol);
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_raise_sqlite(L, c, st, rc, t, 0, 0);
  sqlite3_reset(st);
  lua_setfield(L, -2, "items");
  if (more) {
    lua_pushfstring(L, "s%I", (lua_Integer)last);
    lua_setfield(L, -2, "next_cursor");
  }
  return 1;
}

/* store.update(actor, table, id, fields) -> row */
static int l_update(lua_State *L) {
  actor_t a;
  check_actor(L, 1, &a);
  store_table *t = check_table(L, 2, &a);
  const char *id = luaL_checkstring(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  lua_settop(L, 4);
  luaL_checkstack(L, 80, "store update");
  if (t->append_only) return mcpl_lua_error(L, "invalid_argument", "%ss cannot be changed", t->noun);
  store_conn *c = store_conn_of(L);
  check_columns(L, t, 4, 0);
  char tid[128];
  if (!locate(L, c, t, &a, id, tid, sizeof tid))
    return raise_field(L, "not_found", "id", "%s not found", t->noun);
  const char *tidp = t->scoped && tid[0] ? tid : NULL;
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "UPDATE %s SET updated_at = ?", t->name);
  bind_int(&b, store_now_ms());
  for (const store_col *col = t->cols; col->name; col++) {
    lua_getfield(L, 4, col->name);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); continue; }
    if (col->ref) check_ref(L, c, col, tidp, lua_gettop(L));
    sb_add(&q, ", %s = ?", col->name);
    if (col->type == ST_SECRET && !is_null(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING)
        raise_field(L, "invalid_argument", col->name, "'%s' must be a string", col->name);
      store_seal_push(L, c, -1, tidp, t->name, id, col->name);
      bind_str(&b, lua_tostring(L, -1));
    } else if (col->type == ST_SECRET) bind_null(&b);
    else to_bind(L, &b, col, -1);
  }
  sb_add(&q, " WHERE id = ?");
  bind_str(&b, id);
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return store_raise_sqlite(L, c, st, rc, t, 4, 0);
  sqlite3_reset(st);
  push_by_id(L, c, t, id);
  return 1;
}

/* store.delete(actor, table, id) */
static int l_delete(lua_State *L) {
  actor_t a;
  check_actor(L, 1, &a);
  store_table *t = check_table(L, 2, &a);
  const char *id = luaL_checkstring(L, 3);
  if (t->append_only) return mcpl_lua_error(L, "invalid_argument", "%ss cannot be deleted", t->noun);
  store_conn *c = store_conn_of(L);
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "DELETE FROM %s WHERE id = ?", t->name);
  bind_str(&b, id);
  if (scoped_for(t, &a)) { sb_add(&q, " AND tenant_id = ?"); bind_str(&b, a.tenant_id); }
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return store_raise_sqlite(L, c, st, rc, t, 0, 1);
  sqlite3_reset(st);
  if (sqlite3_changes(c->db) == 0) return raise_field(L, "not_found", "id", "%s not found", t->noun);
  return 0;
}

/* store.reveal(actor, table, id, field) -> plaintext | nil */
static int l_reveal(lua_State *L) {
  actor_t a;
  check_actor(L, 1, &a);
  store_table *t = check_table(L, 2, &a);
  const char *id = luaL_checkstring(L, 3);
  const char *field = luaL_checkstring(L, 4);
  const store_col *col = store_col_find(t, field);
  if (!col || col->type != ST_SECRET)
    return raise_field(L, "invalid_argument", field, "store: '%.100s' is not a secret column of %s", field, t->name);
  store_conn *c = store_conn_of(L);
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "SELECT %s, %s FROM %s WHERE id = ?", t->scoped ? "tenant_id" : "NULL", col->name, t->name);
  bind_str(&b, id);
  if (scoped_for(t, &a)) { sb_add(&q, " AND tenant_id = ?"); bind_str(&b, a.tenant_id); }
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) { sqlite3_reset(st); return raise_field(L, "not_found", "id", "%s not found", t->noun); }
  if (rc != SQLITE_ROW) return store_raise_sqlite(L, c, st, rc, t, 0, 0);
  if (sqlite3_column_type(st, 1) == SQLITE_NULL) { sqlite3_reset(st); lua_pushnil(L); return 1; }
  const char *tv = (const char *)sqlite3_column_text(st, 0);
  lua_pushstring(L, tv ? tv : "");                             /* tenant */
  lua_pushstring(L, (const char *)sqlite3_column_text(st, 1)); /* sealed */
  sqlite3_reset(st);
  int top = lua_gettop(L);
  store_open_push(L, c, lua_tostring(L, top), t->scoped && *lua_tostring(L, top - 1) ? lua_tostring(L, top - 1) : NULL,
                  t->name, id, col->name);
  return 1;
}

/* ---- transactions -------------------------------------------------------------- */

/* store.tx(fn, ...) -> fn's results. BEGIN IMMEDIATE (the write lock up
 * front, so two writers never deadlock upgrading); nested calls are
 * savepoints; any error rolls back and is raised again unchanged. */
static int l_tx(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  store_conn *c = store_conn_of(L);
  char sp[32];
  int depth = c->depth, rc;
  snprintf(sp, sizeof sp, "tx%d", depth);
  if (depth == 0) rc = store_exec(c, "BEGIN IMMEDIATE");
  else { char s[48]; snprintf(s, sizeof s, "SAVEPOINT %s", sp); rc = store_exec(c, s); }
  if (rc != SQLITE_OK) return store_raise_sqlite(L, c, NULL, rc, NULL, 0, 0);
  c->depth++;
  int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  c->depth--;
  char s[64];
  if (st != LUA_OK) {
    if (depth == 0) store_exec(c, "ROLLBACK");
    else {
      snprintf(s, sizeof s, "ROLLBACK TO %s", sp); store_exec(c, s);
      snprintf(s, sizeof s, "RELEASE %s", sp); store_exec(c, s);
    }
    return lua_error(L);
  }
  if (depth == 0) rc = store_exec(c, "COMMIT");
  else { snprintf(s, sizeof s, "RELEASE %s", sp); rc = store_exec(c, s); }
  if (rc != SQLITE_OK) {
    if (depth == 0) store_exec(c, "ROLLBACK");
    return store_raise_sqlite(L, c, NULL, rc, NULL, 0, 0);
  }
  return lua_gettop(L);
}

/* store.in_tx() -> bool */
static int l_in_tx(lua_State *L) {
  lua_pushboolean(L, store_conn_of(L)->depth > 0);
  return 1;
}

/* ---- actors, settings, leases ------------------------------------------------------ */

/* store.resolve_actor(tenant_name, user_name) -> {tenant_id, user_id, role,
 * tenant, user, mcp_enabled} | nil; mcp_enabled is the tenant setting (on
 * unless set to false), read in the same query so ops need no second one */
static int l_resolve_actor(lua_State *L) {
  const char *tn = luaL_checkstring(L, 1), *un = luaL_checkstring(L, 2);
  store_conn *c = store_conn_of(L);
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "SELECT t.id, u.id, u.role, json_extract(t.settings, '$.mcp_enabled') "
             "FROM tenants t JOIN users u ON u.tenant_id = t.id WHERE t.name = ? AND u.name = ?");
  bind_str(&b, tn);
  bind_str(&b, un);
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) { sqlite3_reset(st); lua_pushnil(L); return 1; }
  if (rc != SQLITE_ROW) return store_raise_sqlite(L, c, st, rc, NULL, 0, 0);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, (const char *)sqlite3_column_text(st, 0)); lua_setfield(L, -2, "tenant_id");
  lua_pushstring(L, (const char *)sqlite3_column_text(st, 1)); lua_setfield(L, -2, "user_id");
  lua_pushstring(L, (const char *)sqlite3_column_text(st, 2)); lua_setfield(L, -2, "role");
  lua_pushboolean(L, sqlite3_column_type(st, 3) == SQLITE_NULL || sqlite3_column_int(st, 3) != 0);
  lua_setfield(L, -2, "mcp_enabled");
  sqlite3_reset(st);
  lua_pushvalue(L, 1); lua_setfield(L, -2, "tenant");
  lua_pushvalue(L, 2); lua_setfield(L, -2, "user");
  return 1;
}

/* store.setting_get(key) -> value | nil */
static int l_setting_get(lua_State *L) {
  const char *k = luaL_checkstring(L, 1);
  store_conn *c = store_conn_of(L);
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "SELECT value FROM settings WHERE key = ?");
  bind_str(&b, k);
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) { sqlite3_reset(st); lua_pushnil(L); return 1; }
  if (rc != SQLITE_ROW) return store_raise_sqlite(L, c, st, rc, NULL, 0, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, JDEC_KEY);
  lua_pushlstring(L, (const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
  sqlite3_reset(st);
  lua_call(L, 1, 1);
  return 1;
}

/* store.setting_set(key, value): nil or json.null removes the setting. */
static int l_setting_set(lua_State *L) {
  const char *k = luaL_checkstring(L, 1);
  lua_settop(L, 2);
  store_conn *c = store_conn_of(L);
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  bind_str(&b, k);
  if (lua_isnil(L, 2) || is_null(L, 2)) sb_add(&q, "DELETE FROM settings WHERE key = ?");
  else {
    json_encode_push(L, 2);
    sb_add(&q, "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at");
    bind_str(&b, lua_tostring(L, -1));
    bind_int(&b, store_now_ms());
  }
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return store_raise_sqlite(L, c, st, rc, NULL, 0, 0);
  sqlite3_reset(st);
  return 0;
}

/* store.lease_acquire(key, holder, ttl_ms) -> bool: true when this holder
 * now holds the lease (free, expired, or already its own). Lives in the
 * database so it works across processes. */
static int l_lease_acquire(lua_State *L) {
  const char *k = luaL_checkstring(L, 1), *h = luaL_checkstring(L, 2);
  lua_Integer ttl = luaL_checkinteger(L, 3);
  if (ttl < 1) return raise_field(L, "invalid_argument", "ttl_ms", "lease ttl must be positive");
  store_conn *c = store_conn_of(L);
  long long now = store_now_ms();
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "INSERT INTO leases (key, holder, expires_at) VALUES (?1, ?2, ?3) "
             "ON CONFLICT(key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
             "WHERE leases.expires_at <= ?4 OR leases.holder = excluded.holder");
  bind_str(&b, k);
  bind_str(&b, h);
  bind_int(&b, now + ttl);
  bind_int(&b, now);
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return store_raise_sqlite(L, c, st, rc, NULL, 0, 0);
  sqlite3_reset(st);
  lua_pushboolean(L, sqlite3_changes(c->db) > 0);
  return 1;
}

/* store.lease_release(key, holder) */
static int l_lease_release(lua_State *L) {
  const char *k = luaL_checkstring(L, 1), *h = luaL_checkstring(L, 2);
  store_conn *c = store_conn_of(L);
  sqlbuf q = {.n = 0};
  binds b = {.n = 0};
  sb_add(&q, "DELETE FROM leases WHERE key = ? AND holder = ?");
  bind_str(&b, k);
  bind_str(&b, h);
  sqlite3_stmt *st = prepare(L, c, &q, &b);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return store_raise_sqlite(L, c, st, rc, NULL, 0, 0);
  sqlite3_reset(st);
  return 0;
}

/* store.schema_version() -> version of the database, latest this code knows */
static int l_schema_version(lua_State *L) {
  store_conn *c = store_conn_of(L);
  sqlbuf q = {.n = 0};
  sb_add(&q, "PRAGMA user_version");
  sqlite3_stmt *st = prepare(L, c, &q, NULL);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) return store_raise_sqlite(L, c, st, rc, NULL, 0, 0);
  lua_pushinteger(L, sqlite3_column_int(st, 0));
  sqlite3_reset(st);
  lua_pushinteger(L, store_schema_latest());
  return 2;
}

int luaopen_mcpl_store(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"insert", l_insert}, {"get", l_get}, {"find", l_find}, {"list", l_list}, {"count", l_count},
    {"update", l_update}, {"delete", l_delete}, {"reveal", l_reveal}, {"tx", l_tx},
    {"in_tx", l_in_tx}, {"resolve_actor", l_resolve_actor}, {"setting_get", l_setting_get},
    {"setting_set", l_setting_set}, {"lease_acquire", l_lease_acquire},
    {"lease_release", l_lease_release}, {"schema_version", l_schema_version},
    {"query", store_query}, {NULL, NULL}};
  store_schema_init();
  /* our own handle on json encode/decode, independent of require */
  lua_pushcfunction(L, luaopen_mcpl_json);
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "encode");
  lua_setfield(L, LUA_REGISTRYINDEX, JENC_KEY);
  lua_getfield(L, -1, "decode");
  lua_setfield(L, LUA_REGISTRYINDEX, JDEC_KEY);
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  store_keys_register(L);
  return 1;
}
