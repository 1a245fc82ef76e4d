/* bind_store.c: the Lua `store` module: generic tenant-scoped records over
 * the schema in store_schema.c, asked of a backend (store_backend.h). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "crypto.h"
#include "fmt.h"
#include "keyring.h"
#include "store.h"

#define LIST_DEFAULT 50
#define LIST_MAX 500
#define JENC_KEY "mcpl.store.json_encode"
#define JDEC_KEY "mcpl.store.json_decode"
#define JOPT_KEY "mcpl.store.json_options"
#define ARRAY_MT "mcpl.json.array"

/* ---- small helpers ------------------------------------------------------------ */

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

static void add_cond(lua_State *L, store_select *q, const char *col, store_cop op, store_val v) {
  if (q->ncond >= STORE_MAX_CONDS) mcpl_lua_error(L, "invalid_argument", "store: too many conditions");
  q->cond[q->ncond++] = (store_cond){col, op, v};
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

/* The tenant scoping, in one place: every request of a tenant actor on a
 * scoped table carries "tenant_id = <the actor's tenant>" as its first
 * condition, before any condition the caller chose. */
static void scope(lua_State *L, store_select *q, const actor_t *a) {
  if (q->t->scoped && !a->system) add_cond(L, q, "tenant_id", SC_EQ, store_v_str(a->tenant_id));
}

/* ---- the read cache (store_cache.c) ------------------------------------------------ */

typedef struct {
  char s[2048];
  size_t n;
  int overflow;
} keybuf;

static void kb_add(keybuf *k, const char *s, size_t n) {
  if (k->overflow || k->n + n > sizeof k->s) { k->overflow = 1; return; }
  memcpy(k->s + k->n, s, n);
  k->n += n;
}

static void kb_str(keybuf *k, const char *s) { kb_add(k, s, strlen(s)); }

/* decimal, then the terminator c (formatted by hand: a key is built on
 * every cached read) */
static void kb_int(keybuf *k, long long v, char c) {
  char b[24], *e = b + sizeof b;
  e[-1] = c;
  char *p = fmt_int_back(e - 1, v);
  kb_add(k, p, (size_t)(e - p));
}

/* values are length-prefixed, so no text can make two requests' keys equal */
static void kb_val(keybuf *k, store_val v) {
  if (v.kind == SV_NULL) kb_add(k, "N", 1);
  else if (v.kind == SV_INT) { kb_add(k, "I", 1); kb_int(k, v.i, ';'); }
  else { kb_add(k, "T", 1); kb_int(k, (long long)v.n, ':'); kb_add(k, v.s, v.n); }
}

/* May this read use the cache: a tenant actor's read of a versioned table,
 * outside any transaction, in an op that resolved this actor's tenant and
 * has written nothing yet. */
static int cacheable(store_conn *c, const store_table *t, const actor_t *a) {
  return !a->system && store_table_cached(t) && store_cache_usable(c, a->tenant_id);
}

/* be->select, through the cache when the read may use it. 0 or -1 (c->err). */
static int select_rows(store_conn *c, const store_select *q, const actor_t *a, store_rows *r) {
  if (!a || !cacheable(c, q->t, a)) return c->be->select(c, q, r);
  keybuf k = {.n = 0};
  /* schema names hold no '|': the fields cannot run into each other */
  kb_add(&k, "S|", 2);
  kb_str(&k, q->t->name);
  kb_add(&k, "|", 1);
  kb_int(&k, (int)q->proj, '|');
  kb_str(&k, q->col ? q->col : "");
  kb_add(&k, "|", 1);
  kb_int(&k, q->with_seq, ',');
  kb_int(&k, q->ordered, '|');
  kb_int(&k, q->limit, '|');
  for (int i = 0; i < q->ncond; i++) {
    kb_str(&k, q->cond[i].col);
    kb_int(&k, (int)q->cond[i].op, '=');
    kb_val(&k, q->cond[i].v);
  }
  if (k.overflow) return c->be->select(c, q, r);
  if (store_cache_get(c, k.s, k.n, r)) return 0;
  store_rows fresh;
  if (c->be->select(c, q, &fresh) != 0) return -1;
  return store_cache_fill(c, k.s, k.n, &fresh, r);
}

/* A write on this connection: from here on the op reads the database. */
static void writing(store_conn *c) { store_cache_stop(c); }

/* ---- values ----------------------------------------------------------------------- */

/* JSON columns hold the canonical encoding (object keys sorted): equal
 * values are equal text, so a caller can compare a value with a stored one
 * without decoding it (store.list's raw_json). */
static void json_encode_push(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_getfield(L, LUA_REGISTRYINDEX, JENC_KEY);
  lua_pushvalue(L, idx);
  lua_getfield(L, LUA_REGISTRYINDEX, JOPT_KEY);
  lua_call(L, 2, 1);
}

/* Converts the Lua value at idx for a non-secret column; json encodings are
 * left on the stack (the caller keeps them until the request ran). */
static store_val to_val(lua_State *L, const store_col *col, int idx) {
  int ty = lua_type(L, idx);
  if (ty == LUA_TNIL || is_null(L, idx)) return store_v_null();
  switch (col->type) {
  case ST_TEXT: {
    if (ty != LUA_TSTRING) raise_field(L, "invalid_argument", col->name, "'%s' must be a string", col->name);
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    return store_v_lstr(s, n);
  }
  case ST_INT:
    if (!lua_isinteger(L, idx)) {
      lua_Integer i;
      if (ty == LUA_TNUMBER && lua_numbertointeger(lua_tonumber(L, idx), &i)) return store_v_int(i);
      raise_field(L, "invalid_argument", col->name, "'%s' must be an integer", col->name);
    }
    return store_v_int(lua_tointeger(L, idx));
  case ST_BOOL:
    if (ty != LUA_TBOOLEAN) raise_field(L, "invalid_argument", col->name, "'%s' must be a boolean", col->name);
    return store_v_int(lua_toboolean(L, idx));
  case ST_JSON: {
    json_encode_push(L, idx);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    return store_v_lstr(s, n);
  }
  case ST_SECRET:
    break;
  }
  mcpl_lua_error(L, "internal", "store: secret column handled elsewhere");
  return store_v_null();
}

/* Pushes the current row as a table. Columns in t->select_list order; NULLs
 * are absent; secrets appear only as <col>_set. */
static void push_row_as(lua_State *L, const store_table *t, store_rows *r, int raw_json) {
  const store_rows_ops *o = r->ops;
  size_t n;
  lua_createtable(L, 0, t->ncols + 4);
  int i = 0;
  lua_pushstring(L, o->get_text(r, i++, NULL));
  lua_setfield(L, -2, "id");
  if (t->scoped) {
    if (!o->is_null(r, i)) {
      lua_pushstring(L, o->get_text(r, i, NULL));
      lua_setfield(L, -2, "tenant_id");
    }
    i++;
  }
  lua_pushinteger(L, o->get_int(r, i++));
  lua_setfield(L, -2, "created_at");
  lua_pushinteger(L, o->get_int(r, i++));
  lua_setfield(L, -2, "updated_at");
  for (const store_col *c = t->cols; c->name; c++, i++) {
    if (c->type == ST_SECRET) {
      char key[80];
      snprintf(key, sizeof key, "%s_set", c->name);
      lua_pushboolean(L, o->get_int(r, i) != 0);
      lua_setfield(L, -2, key);
      continue;
    }
    if (o->is_null(r, i)) continue;
    switch (c->type) {
    case ST_INT: lua_pushinteger(L, o->get_int(r, i)); break;
    case ST_BOOL: lua_pushboolean(L, o->get_int(r, i) != 0); break;
    case ST_JSON: {
      if (raw_json) { /* the stored text, not decoded (store.list's raw_json) */
        const char *s = o->get_text(r, i, &n);
        lua_pushlstring(L, s, n);
        break;
      }
      lua_getfield(L, LUA_REGISTRYINDEX, JDEC_KEY);
      const char *s = o->get_text(r, i, &n);
      lua_pushlstring(L, s, n);
      if (lua_pcall(L, 1, 1, 0) != LUA_OK) { lua_pop(L, 1); continue; }
      break;
    }
    default: {
      const char *s = o->get_text(r, i, &n);
      lua_pushlstring(L, s, n);
    }
    }
    lua_setfield(L, -2, c->name);
  }
}

static void push_row(lua_State *L, const store_table *t, store_rows *r) { push_row_as(L, t, r, 0); }

#define ID_RANDOM 20

/* prefix + 20 random base32 characters from r (ID_RANDOM bytes) */
static void id_from(const char *prefix, const unsigned char *r, char *out, size_t outn) {
  static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
  size_t n = (size_t)snprintf(out, outn, "%s", prefix);
  for (size_t i = 0; i < ID_RANDOM && n + 1 < outn; i++) out[n++] = b32[r[i] & 31];
  out[n] = 0;
}

static void gen_id(const char *prefix, char *out, size_t outn) {
  unsigned char r[ID_RANDOM];
  if (crypto_random(r, sizeof r) != 0) abort(); /* no randomness: nothing is safe */
  id_from(prefix, r, out, outn);
}

/* Runs q; returns 1 with r on its first row (the caller ends r), 0 when there
 * is none (r already ended). Raises on failure. */
static int first_row(lua_State *L, store_conn *c, const store_select *q, const actor_t *a,
                     store_rows *r) {
  if (select_rows(c, q, a, r) != 0) return store_raise(L, c, q->t, 0, 0);
  int got = r->ops->next(r);
  if (got == 1) return 1;
  r->ops->done(r);
  if (got < 0) store_raise(L, c, q->t, 0, 0);
  return 0;
}

static void select_by_id(store_select *q, const store_table *t, store_proj proj, const char *id) {
  memset(q, 0, sizeof *q);
  q->t = t;
  q->proj = proj;
  q->cond[q->ncond++] = (store_cond){"id", SC_EQ, store_v_str(id)};
}

/* Pushes the row with this id (no scoping: the caller has checked). */
static void push_by_id(lua_State *L, store_conn *c, const store_table *t, const char *id) {
  store_select q;
  store_rows r;
  select_by_id(&q, t, SP_ROW, id);
  if (!first_row(L, c, &q, NULL, &r)) mcpl_lua_error(L, "not_found", "%s not found", t->noun);
  push_row(L, t, &r);
  r.ops->done(&r);
}

/* A referenced row must exist in the same tenant: ids of another tenant are
 * as absent as ids that never existed. */
static void check_ref(lua_State *L, store_conn *c, const store_col *col, const char *tid, int vidx) {
  if (lua_type(L, vidx) != LUA_TSTRING) return; /* null, or a type error reported later */
  store_table *rt = store_table_find(col->ref);
  store_select q;
  store_rows r;
  select_by_id(&q, rt, SP_EXISTS, lua_tostring(L, vidx));
  if (rt->scoped) add_cond(L, &q, "tenant_id", SC_EQ, store_v_str(tid));
  if (!first_row(L, c, &q, NULL, &r))
    raise_field(L, "not_found", col->name, "%s '%.200s' not found", rt->noun, lua_tostring(L, vidx));
  r.ops->done(&r);
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

/* Adds the conditions of a {col=value} table (equality; json.null means IS
 * NULL) after the actor's tenant. */
static void add_where(lua_State *L, store_select *q, const actor_t *a, int widx) {
  const store_table *t = q->t;
  scope(L, q, a);
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
  /* a fixed column order keeps the SQL text, and so the prepared statement, stable */
  static const store_col id_col = {"id", ST_TEXT, NULL}, tenant_col = {"tenant_id", ST_TEXT, NULL};
  luaL_checkstack(L, STORE_MAX_CONDS + 8, "store where");
  for (int pass = 0; pass < 3; pass++) {
    const store_col *cs = pass == 0 ? &id_col : pass == 1 ? &tenant_col : t->cols;
    for (; cs->name; cs++) {
      lua_getfield(L, widx, cs->name);
      if (lua_isnil(L, -1)) { lua_pop(L, 1); if (pass < 2) break; continue; }
      /* the value stays on the stack until the request ran */
      add_cond(L, q, cs->name, SC_EQ, is_null(L, -1) ? store_v_null() : to_val(L, cs, -1));
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
  writing(c);
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
    if (tid && !t->null_tenant) {
      /* the tenant itself must exist (the system actor names it) */
      static const store_col tcol = {"tenant_id", ST_TEXT, "tenants"};
      lua_pushstring(L, tid);
      check_ref(L, c, &tcol, NULL, lua_gettop(L));
    }
  }
  char id[64];
  gen_id(t->prefix, id, sizeof id);
  long long now = store_now_ms();
  store_set set[STORE_MAX_SET];
  int n = 0;
  set[n++] = (store_set){"id", store_v_str(id)};
  if (t->scoped) set[n++] = (store_set){"tenant_id", store_v_str(tid)};
  set[n++] = (store_set){"created_at", store_v_int(now)};
  set[n++] = (store_set){"updated_at", store_v_int(now)};
  for (const store_col *col = t->cols; col->name; col++) {
    lua_getfield(L, 3, col->name);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); continue; }
    if (n >= STORE_MAX_SET) mcpl_lua_error(L, "internal", "store: too many columns");
    if (col->ref) check_ref(L, c, col, tid, lua_gettop(L));
    store_val v;
    if (col->type == ST_SECRET && !is_null(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING)
        raise_field(L, "invalid_argument", col->name, "'%s' must be a string", col->name);
      store_seal_push(L, c, -1, tid, t->name, id, col->name);
      v = store_v_str(lua_tostring(L, -1));
    } else if (col->type == ST_SECRET) v = store_v_null();
    else v = to_val(L, col, -1);
    set[n++] = (store_set){col->name, v};
  }
  if (c->be->insert(c, t, set, n) != 0) return store_raise(L, c, t, 3, 0);
  if (!returning) {
    lua_pushstring(L, id);
    return 1;
  }
  push_by_id(L, c, t, id);
  return 1;
}

/* store.insert_many(actor, table, rows [, {json_text=true}]) -> the number of
 * rows inserted. Rows as store.insert's (nothing read back), each with the
 * same columns; json_text: JSON columns come as their canonical text
 * (json.canonical's, what store.list's raw_json gives back), stored as is;
 * all or none are written (a savepoint inside a transaction). The tenant and
 * each distinct referenced id are checked once, JSON values encoded once per
 * row even when two columns hold the same table (discovery's definition and
 * approved definition), and the backend writes many rows per statement. */
#define BULK_ROWS 64

typedef struct {
  unsigned char random[BULK_ROWS * ID_RANDOM]; /* one draw per batch, not per row */
  char id[BULK_ROWS][64];
  store_val v[BULK_ROWS * (STORE_MAX_SET + 4)];
} bulk_batch;

static int bulk_flush(lua_State *L, store_conn *c, const store_table *t, const char *const *cols,
                      int ncols, bulk_batch *b, int nrows, int base) {
  if (nrows == 0) return 0;
  if (c->be->insert_many(c, t, cols, ncols, b->v, nrows) != 0) return store_raise(L, c, t, 0, 0);
  lua_settop(L, base);
  return 0;
}

/* A bulk row whose columns are not the first row's: a key that is no
 * writable column is named as a single insert names it, else the row is. */
static void bulk_other_columns(lua_State *L, const store_table *t, int row, lua_Integer i) {
  check_columns(L, t, row, 0);
  mcpl_lua_error(L, "invalid_argument", "store: insert_many row %lld has other columns than the first", (long long)i);
}

static int insert_many_body(lua_State *L) {
  actor_t a;
  check_actor(L, 1, &a);
  store_table *t = check_table(L, 2, &a);
  store_conn *c = store_conn_of(L);
  int json_text = lua_toboolean(L, 4);
  lua_settop(L, 3);
  lua_Integer nrows = (lua_Integer)lua_rawlen(L, 3);
  const char *tid = NULL;
  if (t->scoped) {
    if (a.system) mcpl_lua_error(L, "invalid_argument", "store: insert_many needs a tenant actor");
    tid = a.tenant_id;
    static const store_col tcol = {"tenant_id", ST_TEXT, "tenants"};
    lua_pushstring(L, tid);
    check_ref(L, c, &tcol, NULL, lua_gettop(L));
    lua_pop(L, 1);
  }
  /* the columns: those of the first row, in schema order */
  const store_col *use[STORE_MAX_SET];
  const char *cols[STORE_MAX_SET + 4];
  int nuse = 0, ncols = 0;
  cols[ncols++] = "id";
  if (t->scoped) cols[ncols++] = "tenant_id";
  cols[ncols++] = "created_at";
  cols[ncols++] = "updated_at";
  if (nrows > 0) {
    lua_rawgeti(L, 3, 1);
    if (!lua_istable(L, -1)) mcpl_lua_error(L, "invalid_argument", "store: insert_many rows must be tables");
    for (const store_col *col = t->cols; col->name; col++) {
      lua_getfield(L, -1, col->name);
      if (!lua_isnil(L, -1)) {
        if (col->type == ST_SECRET)
          raise_field(L, "invalid_argument", col->name, "store: insert_many cannot write secret '%s'", col->name);
        if (nuse >= STORE_MAX_SET) mcpl_lua_error(L, "internal", "store: too many columns");
        use[nuse++] = col;
        cols[ncols++] = col->name;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  bulk_batch *b = lua_newuserdatauv(L, sizeof *b, 0); /* freed with the stack */
  /* referenced ids checked so far: the last one of each column */
  lua_createtable(L, 0, nuse);
  int checked = lua_gettop(L);
  int base = lua_gettop(L);
  long long now = store_now_ms();
  int inbatch = 0;
  /* a batch is what one statement takes: every full batch is the same
   * statement (prepared once), none split in two */
  int per = STORE_BULK_PARAMS / ncols;
  if (per > BULK_ROWS) per = BULK_ROWS;
  if (per < 1) per = 1;
  for (lua_Integer i = 1; i <= nrows; i++) {
    luaL_checkstack(L, 2 * STORE_MAX_SET + 8, "store insert_many");
    lua_rawgeti(L, 3, i);
    int row = lua_gettop(L);
    if (!lua_istable(L, row)) mcpl_lua_error(L, "invalid_argument", "store: insert_many rows must be tables");
    /* every row has exactly the first row's columns: as many keys, and each
     * of those columns set (read below). That leaves no room for another key,
     * so only a row that differs is checked key by key (bulk_other_columns) */
    int nkeys = 0;
    lua_pushnil(L);
    while (lua_next(L, row)) { lua_pop(L, 1); nkeys++; }
    if (nkeys != nuse) bulk_other_columns(L, t, row, i);
    store_val *v = b->v + (size_t)inbatch * (size_t)ncols;
    char *id = b->id[inbatch];
    if (inbatch == 0 && crypto_random(b->random, sizeof b->random) != 0) abort(); /* as gen_id */
    id_from(t->prefix, b->random + (size_t)inbatch * ID_RANDOM, id, sizeof b->id[inbatch]);
    int k = 0;
    v[k++] = store_v_str(id);
    if (t->scoped) v[k++] = store_v_str(tid);
    v[k++] = store_v_int(now);
    v[k++] = store_v_int(now);
    int prev_json = 0, prev_enc = 0; /* the last JSON value and its encoding */
    for (int u = 0; u < nuse; u++) {
      const store_col *col = use[u];
      lua_getfield(L, row, col->name);
      int vi = lua_gettop(L);
      if (lua_isnil(L, vi)) bulk_other_columns(L, t, row, i);
      if (col->ref && lua_type(L, vi) == LUA_TSTRING) {
        lua_getfield(L, checked, col->name);
        int same = lua_rawequal(L, -1, vi);
        lua_pop(L, 1);
        if (!same) {
          check_ref(L, c, col, tid, vi);
          lua_pushvalue(L, vi);
          lua_setfield(L, checked, col->name);
        }
      }
      if (col->type == ST_JSON && json_text && !is_null(L, vi)) {
        if (lua_type(L, vi) != LUA_TSTRING)
          raise_field(L, "invalid_argument", col->name, "'%s' must be JSON text (json_text)", col->name);
        size_t n;
        const char *s = lua_tolstring(L, vi, &n);
        v[k++] = store_v_lstr(s, n);
        continue;
      }
      if (col->type == ST_JSON && prev_json && lua_type(L, vi) == LUA_TTABLE && lua_rawequal(L, vi, prev_json)) {
        size_t n;
        const char *s = lua_tolstring(L, prev_enc, &n);
        v[k++] = store_v_lstr(s, n);
        continue;
      }
      v[k++] = to_val(L, col, vi);
      if (col->type == ST_JSON && lua_type(L, vi) == LUA_TTABLE) { prev_json = vi; prev_enc = lua_gettop(L); }
    }
    assert(k == ncols);
    if (++inbatch == per) {
      bulk_flush(L, c, t, cols, ncols, b, inbatch, base);
      inbatch = 0;
    }
  }
  bulk_flush(L, c, t, cols, ncols, b, inbatch, base);
  lua_pushinteger(L, nrows);
  return 1;
}

static int l_insert_many(lua_State *L) {
  luaL_checktype(L, 3, LUA_TTABLE);
  int json_text = 0;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "json_text");
    json_text = lua_toboolean(L, -1);
  }
  lua_settop(L, 3);
  lua_pushboolean(L, json_text);
  store_conn *c = store_conn_of(L);
  writing(c);
  if (store_tx_begin(c) != 0) return store_raise(L, c, NULL, 0, 0);
  lua_pushcfunction(L, insert_many_body);
  lua_insert(L, 1);
  if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
    store_tx_finish(c, 0);
    return lua_error(L);
  }
  if (store_tx_finish(c, 1) != 0) return store_raise(L, c, NULL, 0, 0);
  return 1;
}

/* Finds the row's tenant (copied into tid) under the actor's scope. */
static int locate(lua_State *L, store_conn *c, const store_table *t, const actor_t *a, const char *id,
                  char *tid, size_t tidn) {
  store_select q;
  store_rows r;
  select_by_id(&q, t, SP_TENANT, id);
  scope(L, &q, a);
  if (!first_row(L, c, &q, NULL, &r)) return 0;
  snprintf(tid, tidn, "%s", r.ops->is_null(&r, 0) ? "" : r.ops->get_text(&r, 0, NULL));
  r.ops->done(&r);
  return 1;
}

/* store.get(actor, table, id) -> row; not_found "<noun> not found" */
static int l_get(lua_State *L) {
  actor_t a;
  check_actor(L, 1, &a);
  store_table *t = check_table(L, 2, &a);
  const char *id = luaL_checkstring(L, 3);
  store_conn *c = store_conn_of(L);
  store_select q;
  store_rows r;
  select_by_id(&q, t, SP_ROW, id);
  scope(L, &q, &a);
  if (!first_row(L, c, &q, &a, &r)) return raise_field(L, "not_found", "id", "%s not found", t->noun);
  push_row(L, t, &r);
  r.ops->done(&r);
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
  store_select q = {.t = t, .proj = SP_ROW, .ordered = 1, .limit = 1};
  store_rows r;
  add_where(L, &q, &a, 3);
  if (!first_row(L, c, &q, &a, &r)) { lua_pushnil(L); return 1; }
  push_row(L, t, &r);
  r.ops->done(&r);
  return 1;
}

/* store.count(actor, table [, where]) -> n */
static int l_count(lua_State *L) {
  actor_t a;
  check_actor(L, 1, &a);
  store_table *t = check_table(L, 2, &a);
  lua_settop(L, 3);
  store_conn *c = store_conn_of(L);
  store_select q = {.t = t, .proj = SP_COUNT};
  store_rows r;
  add_where(L, &q, &a, 3);
  if (!first_row(L, c, &q, &a, &r)) return mcpl_lua_error(L, "internal", "store: count returned no row");
  lua_pushinteger(L, r.ops->get_int(&r, 0));
  r.ops->done(&r);
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

/* store.list(actor, table [, {where=, limit=, cursor=, raw_json=}]) -> {items, next_cursor};
 * raw_json: JSON columns as their stored (canonical) text, not decoded */
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
  lua_getfield(L, 3, "raw_json"); /* 7 */
  int raw_json = lua_toboolean(L, 7);
  lua_Integer limit = LIST_DEFAULT;
  if (!lua_isnil(L, 5) && !is_null(L, 5)) {
    if (!lua_isinteger(L, 5) || lua_tointeger(L, 5) < 1 || lua_tointeger(L, 5) > LIST_MAX)
      return raise_field(L, "invalid_argument", "limit", "'limit' must be an integer from 1 to %d", LIST_MAX);
    limit = lua_tointeger(L, 5);
  }
  int has_cursor = !lua_isnil(L, 6) && !is_null(L, 6);
  if (has_cursor && lua_type(L, 6) != LUA_TSTRING) return raise_field(L, "invalid_argument", "cursor", "invalid cursor");
  long long after = has_cursor ? parse_cursor(L, 6) : 0;
  store_select q = {.t = t, .proj = SP_ROW, .with_seq = 1, .ordered = 1, .limit = limit + 1};
  add_where(L, &q, &a, lua_isnil(L, 4) ? 0 : 4);
  if (has_cursor) add_cond(L, &q, "seq", SC_SEQ_AFTER, store_v_int(after));
  store_rows r;
  if (select_rows(c, &q, &a, &r) != 0) return store_raise(L, c, t, 0, 0);
  int seqcol = 3 + t->scoped + t->ncols, got;
  lua_createtable(L, 0, 2);
  lua_createtable(L, (int)limit, 0);
  luaL_setmetatable(L, ARRAY_MT);
  lua_Integer n = 0;
  long long last = 0;
  int more = 0;
  while ((got = r.ops->next(&r)) == 1) {
    if (n == limit) { more = 1; break; }
    push_row_as(L, t, &r, raw_json);
    lua_rawseti(L, -2, ++n);
    last = r.ops->get_int(&r, seqcol);
  }
  r.ops->done(&r);
  if (got < 0) return store_raise(L, c, t, 0, 0);
  lua_setfield(L, -2, "items");
  if (more) {
    lua_pushfstring(L, "s%I", (lua_Integer)last);
    lua_setfield(L, -2, "next_cursor");
  }
  return 1;
}

/* store.update(actor, table, id, fields [, {returning=false}]) -> row (or nothing) */
static int l_update(lua_State *L) {
  actor_t a;
  check_actor(L, 1, &a);
  store_table *t = check_table(L, 2, &a);
  const char *id = luaL_checkstring(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  /* opts {returning=false}: return nothing, without reading the row back
   * (a long text written again, such as a capability list) */
  int returning = 1;
  if (lua_istable(L, 5)) {
    lua_getfield(L, 5, "returning");
    if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) returning = 0;
    lua_pop(L, 1);
  }
  lua_settop(L, 4);
  luaL_checkstack(L, 80, "store update");
  if (t->append_only) return mcpl_lua_error(L, "invalid_argument", "%ss cannot be changed", t->noun);
  store_conn *c = store_conn_of(L);
  writing(c);
  check_columns(L, t, 4, 0);
  char tid[128];
  if (!locate(L, c, t, &a, id, tid, sizeof tid))
    return raise_field(L, "not_found", "id", "%s not found", t->noun);
  const char *tidp = t->scoped && tid[0] ? tid : NULL;
  store_set set[STORE_MAX_SET];
  int n = 0;
  set[n++] = (store_set){"updated_at", store_v_int(store_now_ms())};
  int secret_set = 0;
  for (const store_col *col = t->cols; col->name; col++) {
    lua_getfield(L, 4, col->name);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); continue; }
    if (n >= STORE_MAX_SET) mcpl_lua_error(L, "internal", "store: too many columns");
    if (col->ref) check_ref(L, c, col, tidp, lua_gettop(L));
    secret_set |= col->type == ST_SECRET;
    store_val v;
    if (col->type == ST_SECRET && !is_null(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING)
        raise_field(L, "invalid_argument", col->name, "'%s' must be a string", col->name);
      store_seal_push(L, c, -1, tidp, t->name, id, col->name);
      v = store_v_str(lua_tostring(L, -1));
    } else if (col->type == ST_SECRET) v = store_v_null();
    else v = to_val(L, col, -1);
    set[n++] = (store_set){col->name, v};
  }
  store_cond w = {"id", SC_EQ, store_v_str(id)};
  if (c->be->update(c, t, &w, 1, set, n, NULL) != 0) return store_raise(L, c, t, 4, 0);
  if (secret_set) keyring_forget(c->e, t->name, id);  /* its old plaintext goes now */
  if (!returning) return 0;
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
  writing(c);
  store_select q;
  select_by_id(&q, t, SP_EXISTS, id);
  scope(L, &q, &a);
  long long changed = 0;
  if (c->be->remove(c, t, q.cond, q.ncond, &changed) != 0) return store_raise(L, c, t, 0, 1);
  if (changed == 0) return raise_field(L, "not_found", "id", "%s not found", t->noun);
  for (const store_col *col = t->cols; col->name; col++)
    if (col->type == ST_SECRET) { keyring_forget(c->e, t->name, id); break; }
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
  store_select q;
  store_rows r;
  select_by_id(&q, t, SP_SEALED, id);
  q.col = col->name;
  scope(L, &q, &a);
  if (!first_row(L, c, &q, &a, &r)) return raise_field(L, "not_found", "id", "%s not found", t->noun);
  if (r.ops->is_null(&r, 2)) { r.ops->done(&r); lua_pushnil(L); return 1; }
  const char *tv = r.ops->is_null(&r, 1) ? "" : r.ops->get_text(&r, 1, NULL);
  lua_pushstring(L, tv);                              /* tenant */
  lua_pushstring(L, r.ops->get_text(&r, 2, NULL));    /* sealed */
  r.ops->done(&r);
  int top = lua_gettop(L);
  store_open_push(L, c, lua_tostring(L, top), t->scoped && *lua_tostring(L, top - 1) ? lua_tostring(L, top - 1) : NULL,
                  t->name, id, col->name);
  return 1;
}

/* ---- transactions -------------------------------------------------------------- */

/* store.tx(fn, ...) -> fn's results. The backend takes the writers' lock up
 * front; nested calls are savepoints; any error rolls back and is raised
 * again unchanged. */
static int l_tx(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  store_conn *c = store_conn_of(L);
  if (store_tx_begin(c) != 0) return store_raise(L, c, NULL, 0, 0);
  int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  if (st != LUA_OK) {
    store_tx_finish(c, 0);
    return lua_error(L);
  }
  if (store_tx_finish(c, 1) != 0) return store_raise(L, c, NULL, 0, 0);
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
  store_rows r;
  if (c->be->resolve_actor(c, tn, un, &r) != 0) return store_raise(L, c, NULL, 0, 0);
  int got = r.ops->next(&r);
  if (got != 1) {
    r.ops->done(&r);
    if (got < 0) return store_raise(L, c, NULL, 0, 0);
    lua_pushnil(L);
    return 1;
  }
  /* the schema version, read in the same query */
  if (!r.ops->is_null(&r, 6) && store_schema_newer(c, r.ops->get_int(&r, 6))) {
    r.ops->done(&r);
    return store_raise(L, c, NULL, 0, 0);
  }
  lua_createtable(L, 0, 6);
  lua_pushstring(L, r.ops->get_text(&r, 0, NULL)); lua_setfield(L, -2, "tenant_id");
  lua_pushstring(L, r.ops->get_text(&r, 1, NULL)); lua_setfield(L, -2, "user_id");
  lua_pushstring(L, r.ops->get_text(&r, 2, NULL)); lua_setfield(L, -2, "role");
  lua_pushboolean(L, r.ops->is_null(&r, 3) || r.ops->get_int(&r, 3) != 0);
  lua_setfield(L, -2, "mcp_enabled");
  /* the change counters, read in the same query: this op may use rows
   * cached under exactly these */
  store_cache_validate(c, r.ops->get_text(&r, 0, NULL), r.ops->get_int(&r, 4), r.ops->get_int(&r, 5));
  r.ops->done(&r);
  lua_pushvalue(L, 1); lua_setfield(L, -2, "tenant");
  lua_pushvalue(L, 2); lua_setfield(L, -2, "user");
  return 1;
}

/* store.setting_get(key) -> value | nil */
static int l_setting_get(lua_State *L) {
  const char *k = luaL_checkstring(L, 1);
  store_conn *c = store_conn_of(L);
  store_rows r;
  int rc;
  if (store_cache_usable(c, NULL)) {
    /* keyed by the settings version the op read with its actor */
    keybuf kb = {.n = 0};
    kb_add(&kb, "G|", 2);
    kb_add(&kb, k, strlen(k));
    rc = 0;
    if (kb.overflow) rc = c->be->setting_get(c, k, &r);
    else if (!store_cache_get(c, kb.s, kb.n, &r)) {
      store_rows fresh;
      rc = c->be->setting_get(c, k, &fresh);
      if (rc == 0) rc = store_cache_fill(c, kb.s, kb.n, &fresh, &r);
    }
  } else rc = c->be->setting_get(c, k, &r);
  if (rc != 0) return store_raise(L, c, NULL, 0, 0);
  int got = r.ops->next(&r);
  if (got != 1) {
    r.ops->done(&r);
    if (got < 0) return store_raise(L, c, NULL, 0, 0);
    lua_pushnil(L);
    return 1;
  }
  size_t n;
  const char *s = r.ops->get_text(&r, 0, &n);
  lua_getfield(L, LUA_REGISTRYINDEX, JDEC_KEY);
  lua_pushlstring(L, s, n);
  r.ops->done(&r);
  lua_call(L, 1, 1);
  return 1;
}

/* store.settings_version() -> the settings version this op read with its
 * actor (the counter every settings change bumps, on any instance), or nil
 * when the op must read the settings afresh (no actor resolved yet, or it
 * wrote, or runs a transaction). Never opens a connection. */
static int l_settings_version(lua_State *L) {
  store_conn *c = store_conn_peek(L);
  long long v;
  if (c && store_cache_settings_version(c, &v)) lua_pushinteger(L, (lua_Integer)v);
  else lua_pushnil(L);
  return 1;
}

/* store.cache_version(tenant_id) -> text naming the tenant's and the
 * settings' change counters this op read with its actor, or nil when the op
 * must read afresh: what is derived from that tenant's rows may be kept
 * under it (a change anywhere gives another text). Never opens a connection. */
static int l_cache_version(lua_State *L) {
  const char *tid = luaL_checkstring(L, 1);
  store_conn *c = store_conn_peek(L);
  const char *p = c ? store_cache_prefix(c, tid) : NULL;
  if (p) lua_pushstring(L, p);
  else lua_pushnil(L);
  return 1;
}

/* store.setting_set(key, value): nil or json.null removes the setting. */
static int l_setting_set(lua_State *L) {
  const char *k = luaL_checkstring(L, 1);
  lua_settop(L, 2);
  store_conn *c = store_conn_of(L);
  writing(c);
  const char *json = NULL;
  if (!lua_isnil(L, 2) && !is_null(L, 2)) {
    json_encode_push(L, 2);
    json = lua_tostring(L, -1);
  }
  if (c->be->setting_set(c, k, json, store_now_ms()) != 0) return store_raise(L, c, NULL, 0, 0);
  return 0;
}

/* store.lease_acquire(key, holder, ttl_ms) -> bool: true when this holder
 * now holds the lease (free, expired, or already its own). A row in the
 * database, so it works across processes and instances. */
static int l_lease_acquire(lua_State *L) {
  const char *k = luaL_checkstring(L, 1), *h = luaL_checkstring(L, 2);
  lua_Integer ttl = luaL_checkinteger(L, 3);
  if (ttl < 1) return raise_field(L, "invalid_argument", "ttl_ms", "lease ttl must be positive");
  store_conn *c = store_conn_of(L);
  /* a lease is taken to wait for another instance's work: what follows
   * must see that work, not rows cached before it */
  writing(c);
  int got = 0;
  if (c->be->lease_acquire(c, k, h, store_now_ms(), ttl, &got) != 0) return store_raise(L, c, NULL, 0, 0);
  lua_pushboolean(L, got);
  return 1;
}

/* store.lease_release(key, holder) */
static int l_lease_release(lua_State *L) {
  const char *k = luaL_checkstring(L, 1), *h = luaL_checkstring(L, 2);
  store_conn *c = store_conn_of(L);
  writing(c);
  if (c->be->lease_release(c, k, h) != 0) return store_raise(L, c, NULL, 0, 0);
  return 0;
}

/* store.op_end(): an op is over; the next one reads its counters afresh
 * (the registry calls it; it never opens a connection). */
static int l_op_end(lua_State *L) {
  store_conn *c = store_conn_peek(L);
  if (c) store_cache_stop(c);
  return 0;
}

/* store.schema_version() -> version of the database, latest this code knows */
static int l_schema_version(lua_State *L) {
  store_conn *c = store_conn_of(L);
  int v = 0;
  if (c->be->schema_version(c, &v) != 0) return store_raise(L, c, NULL, 0, 0);
  lua_pushinteger(L, v);
  lua_pushinteger(L, store_schema_latest());
  return 2;
}

int luaopen_mcpl_store(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"insert", l_insert}, {"insert_many", l_insert_many}, {"get", l_get}, {"find", l_find}, {"list", l_list}, {"count", l_count},
    {"update", l_update}, {"delete", l_delete}, {"reveal", l_reveal}, {"tx", l_tx},
    {"in_tx", l_in_tx}, {"resolve_actor", l_resolve_actor}, {"setting_get", l_setting_get},
    {"settings_version", l_settings_version}, {"cache_version", l_cache_version},
    {"setting_set", l_setting_set}, {"lease_acquire", l_lease_acquire},
    {"lease_release", l_lease_release}, {"schema_version", l_schema_version},
    {"query", store_query}, {"op_end", l_op_end}, {NULL, NULL}};
  store_schema_init();
  /* our own handle on json encode/decode, independent of require */
  lua_pushcfunction(L, luaopen_mcpl_json);
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "encode");
  lua_setfield(L, LUA_REGISTRYINDEX, JENC_KEY);
  lua_getfield(L, -1, "decode");
  lua_setfield(L, LUA_REGISTRYINDEX, JDEC_KEY);
  lua_createtable(L, 0, 1);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "sort");
  lua_setfield(L, LUA_REGISTRYINDEX, JOPT_KEY);
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  store_keys_register(L);
  return 1;
}
