/* store_secret.c: secret columns at rest: sealing and opening with the AAD
 * of their row, and key rotation / retirement over the whole database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "crypto.h"
#include "store.h"

#define AAD_MAX 512

/* tenant | table | row id | column: a sealed value moved anywhere else
 * fails authentication. */
static size_t make_aad(char *aad, const char *tenant_id, const char *table, const char *id,
                       const char *col) {
  int n = snprintf(aad, AAD_MAX, "mcplink/v1|%s|%s|%s|%s", tenant_id ? tenant_id : "-", table, id, col);
  return n < 0 ? 0 : (size_t)n >= AAD_MAX ? AAD_MAX - 1 : (size_t)n;
}

/* The first sealed value in the database (its key id into kid), if any. */
static int find_sealed(store_conn *c, char kid[CRYPTO_KID_MAX]) {
  int nt;
  store_table *ts = store_tables(&nt);
  for (int i = 0; i < nt; i++)
    for (const store_col *col = ts[i].cols; col->name; col++) {
      if (col->type != ST_SECRET) continue;
      char sql[256];
      snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE %s IS NOT NULL LIMIT 1", col->name,
               ts[i].name, col->name);
      sqlite3_stmt *st = store_prepare(c, sql);
      if (!st) continue;
      int found = sqlite3_step(st) == SQLITE_ROW;
      if (found && crypto_sealed_kid((const char *)sqlite3_column_text(st, 0), kid) != 0)
        snprintf(kid, CRYPTO_KID_MAX, "?");
      sqlite3_reset(st);
      if (found) return 1;
    }
  return 0;
}

/* Loads the key ring; creates a fresh one only when the database holds no
 * sealed value yet, so a lost key file never silently becomes a new key. */
static void ensure_ring(lua_State *L, store_conn *c) {
  if (crypto_ring_loaded(c->e)) return;
  char err[CRYPTO_ERR_MAX], kid[CRYPTO_KID_MAX];
  int have = find_sealed(c, kid);
  int rc = crypto_ring_load(c->e, !have, err, sizeof err);
  if (rc == MCPL_OK) return;
  if (have) mcpl_lua_error(L, "key_unavailable", "key '%s' is unavailable: %s", kid, err);
  mcpl_lua_error(L, mcpl_code_name(rc), "%s", err);
}

void store_seal_push(lua_State *L, store_conn *c, int idx, const char *tenant_id,
                     const char *table, const char *id, const char *col) {
  char aad[AAD_MAX], err[CRYPTO_ERR_MAX], *out = NULL;
  size_t n;
  const char *pt = lua_tolstring(L, idx, &n);
  ensure_ring(L, c);
  size_t an = make_aad(aad, tenant_id, table, id, col);
  int rc = crypto_seal(c->e, aad, an, (const unsigned char *)pt, n, &out, err, sizeof err);
  if (rc != MCPL_OK) mcpl_lua_error(L, mcpl_code_name(rc), "%s", err);
  lua_pushstring(L, out);
  free(out);
}

void store_open_push(lua_State *L, store_conn *c, const char *sealed, const char *tenant_id,
                     const char *table, const char *id, const char *col) {
  char aad[AAD_MAX], err[CRYPTO_ERR_MAX];
  unsigned char *pt = NULL;
  size_t n = 0;
  size_t an = make_aad(aad, tenant_id, table, id, col);
  int rc = crypto_open(c->e, aad, an, sealed, &pt, &n, err, sizeof err);
  if (rc != MCPL_OK) mcpl_lua_error(L, mcpl_code_name(rc), "%s", err);
  /* Lua interns its own copy (it cannot be wiped; it lives until collected);
   * ours is cleansed at once. */
  lua_pushlstring(L, (const char *)pt, n);
  crypto_wipe_free(pt, n + 1);
}

/* ---- key management --------------------------------------------------------- */

static long long count_kid(store_conn *c, const char *kid) {
  char prefix[CRYPTO_KID_MAX + 8];
  snprintf(prefix, sizeof prefix, "%s%s:", CRYPTO_SEAL_PREFIX, kid);
  long long total = 0;
  int nt;
  store_table *ts = store_tables(&nt);
  for (int i = 0; i < nt; i++)
    for (const store_col *col = ts[i].cols; col->name; col++) {
      if (col->type != ST_SECRET) continue;
      char sql[256];
      snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE substr(%s, 1, ?1) = ?2", ts[i].name, col->name);
      sqlite3_stmt *st = store_prepare(c, sql);
      if (!st) return -1;
      sqlite3_bind_int(st, 1, (int)strlen(prefix));
      sqlite3_bind_text(st, 2, prefix, -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) == SQLITE_ROW) total += sqlite3_column_int64(st, 0);
      sqlite3_reset(st);
    }
  return total;
}

/* store.keys_list() -> {{kid, created_at, current, secrets}, ...} */
static int l_keys_list(lua_State *L) {
  store_conn *c = store_conn_of(L);
  char err[CRYPTO_ERR_MAX];
  crypto_ring_load(c->e, 0, err, sizeof err);
  crypto_key_info keys[64];
  int n = crypto_ring_list(c->e, keys, 64);
  if (n > 64) n = 64;
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, keys[i].kid);
    lua_setfield(L, -2, "kid");
    lua_pushinteger(L, keys[i].created * 1000);
    lua_setfield(L, -2, "created_at");
    lua_pushboolean(L, keys[i].current);
    lua_setfield(L, -2, "current");
    lua_pushinteger(L, count_kid(c, keys[i].kid));
    lua_setfield(L, -2, "secrets");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int tx_begin(store_conn *c, const char *name) {
  char sql[64];
  if (c->depth == 0) return store_exec(c, "BEGIN IMMEDIATE");
  snprintf(sql, sizeof sql, "SAVEPOINT %s", name);
  return store_exec(c, sql);
}

static int tx_end(store_conn *c, const char *name, int commit) {
  char sql[96];
  if (c->depth == 0) {
    int rc = store_exec(c, commit ? "COMMIT" : "ROLLBACK");
    if (rc != SQLITE_OK && commit) store_exec(c, "ROLLBACK");
    return rc;
  }
  if (!commit) {
    snprintf(sql, sizeof sql, "ROLLBACK TO %s", name);
    store_exec(c, sql);
  }
  snprintf(sql, sizeof sql, "RELEASE %s", name);
  return store_exec(c, sql);
}

/* Re-seals every secret of one column under the current key. Returns an
 * mcpl_code; err names the key or the failing row. */
static int reseal_column(store_conn *c, const store_table *t, const char *col, long long *count,
                         char *err, size_t errn) {
  char sql[256];
  /* Read everything first: updating rows under an open SELECT on the same
   * table is legal in SQLite but needlessly subtle. */
  snprintf(sql, sizeof sql, "SELECT id, %s, %s FROM %s WHERE %s IS NOT NULL",
           t->scoped ? "tenant_id" : "NULL", col, t->name, col);
  sqlite3_stmt *st = store_prepare(c, sql);
  if (!st) { snprintf(err, errn, "%s", sqlite3_errmsg(c->db)); return MCPL_E_INTERNAL; }
  size_t cap = 0, n = 0;
  char **rows = NULL; /* id, tenant, sealed triples */
  int rc = MCPL_OK, s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    if (n + 3 > cap) {
      cap = cap ? cap * 2 : 48;
      char **nr = realloc(rows, cap * sizeof *rows);
      if (!nr) { rc = MCPL_E_INTERNAL; snprintf(err, errn, "out of memory"); break; }
      rows = nr;
    }
    for (int k = 0; k < 3; k++) {
      const char *v = (const char *)sqlite3_column_text(st, k);
      rows[n++] = v ? strdup(v) : NULL;
    }
  }
  if (rc == MCPL_OK && s != SQLITE_DONE) { rc = MCPL_E_INTERNAL; snprintf(err, errn, "%s", sqlite3_errmsg(c->db)); }
  sqlite3_reset(st);
  snprintf(sql, sizeof sql, "UPDATE %s SET %s = ?1 WHERE id = ?2", t->name, col);
  for (size_t i = 0; rc == MCPL_OK && i < n; i += 3) {
    char aad[AAD_MAX], *sealed = NULL;
    unsigned char *pt = NULL;
    size_t ptn = 0;
    if (!rows[i] || !rows[i + 2]) { rc = MCPL_E_INTERNAL; snprintf(err, errn, "out of memory"); break; }
    size_t an = make_aad(aad, rows[i + 1], t->name, rows[i], col);
    rc = crypto_open(c->e, aad, an, rows[i + 2], &pt, &ptn, err, errn);
    if (rc == MCPL_OK) {
      rc = crypto_seal(c->e, aad, an, pt, ptn, &sealed, err, errn);
      crypto_wipe_free(pt, ptn + 1);
    }
    if (rc != MCPL_OK) {
      size_t l = strlen(err);
      snprintf(err + l, errn - l, " (%s %s, %s)", t->noun, rows[i], col);
      break;
    }
    sqlite3_stmt *up = store_prepare(c, sql);
    if (!up) { free(sealed); rc = MCPL_E_INTERNAL; snprintf(err, errn, "%s", sqlite3_errmsg(c->db)); break; }
    sqlite3_bind_text(up, 1, sealed, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(up, 2, rows[i], -1, SQLITE_TRANSIENT);
    if (sqlite3_step(up) != SQLITE_DONE) { rc = MCPL_E_INTERNAL; snprintf(err, errn, "%s", sqlite3_errmsg(c->db)); }
    sqlite3_reset(up);
    free(sealed);
    (*count)++;
  }
  for (size_t i = 0; i < n; i++) free(rows[i]);
  free(rows);
  return rc;
}

/* store.keys_rotate() -> {kid=new, previous=old|nil, reencrypted=n}: one
 * transaction; on any failure nothing in the database changes. */
static int l_keys_rotate(lua_State *L) {
  store_conn *c = store_conn_of(L);
  char err[CRYPTO_ERR_MAX], kid[CRYPTO_KID_MAX], prev[CRYPTO_KID_MAX] = "";
  int rc = tx_begin(c, "keys_rotate");
  if (rc != SQLITE_OK) return store_raise_sqlite(L, c, NULL, rc, NULL, 0, 0);
  /* inside the write lock: rotations of other processes wait for us */
  char k0[CRYPTO_KID_MAX];
  int have = find_sealed(c, k0);
  int code = crypto_ring_load(c->e, !have, err, sizeof err);
  crypto_key_info keys[64];
  long long count = 0;
  if (code == MCPL_OK) {
    int n = crypto_ring_list(c->e, keys, 64);
    for (int i = 0; i < n && i < 64; i++) if (keys[i].current) memcpy(prev, keys[i].kid, sizeof prev);
    code = crypto_ring_add(c->e, kid, err, sizeof err);
  }
  int nt;
  store_table *ts = store_tables(&nt);
  for (int i = 0; code == MCPL_OK && i < nt; i++)
    for (const store_col *col = ts[i].cols; code == MCPL_OK && col->name; col++)
      if (col->type == ST_SECRET) code = reseal_column(c, &ts[i], col->name, &count, err, sizeof err);
  if (code != MCPL_OK) {
    tx_end(c, "keys_rotate", 0);
    return mcpl_lua_error(L, mcpl_code_name(code), "key rotation failed, nothing changed: %s", err);
  }
  if ((rc = tx_end(c, "keys_rotate", 1)) != SQLITE_OK) return store_raise_sqlite(L, c, NULL, rc, NULL, 0, 0);
  mcpl_log(c->e, "info", "key rotation: new key %s, %lld secrets re-encrypted", kid, count);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, kid);
  lua_setfield(L, -2, "kid");
  if (prev[0]) { lua_pushstring(L, prev); lua_setfield(L, -2, "previous"); }
  lua_pushinteger(L, count);
  lua_setfield(L, -2, "reencrypted");
  return 1;
}

/* store.keys_retire(kid) -> {kid=, retired=true}; refuses while any secret
 * is still sealed with that key, and the current key. */
static int l_keys_retire(lua_State *L) {
  const char *kid = luaL_checkstring(L, 1);
  store_conn *c = store_conn_of(L);
  char err[CRYPTO_ERR_MAX];
  int rc = tx_begin(c, "keys_retire");
  if (rc != SQLITE_OK) return store_raise_sqlite(L, c, NULL, rc, NULL, 0, 0);
  int code = crypto_ring_load(c->e, 0, err, sizeof err);
  crypto_key_info keys[64];
  int nk = code == MCPL_OK ? crypto_ring_list(c->e, keys, 64) : 0;
  for (int i = 0; i < nk && i < 64; i++)
    if (keys[i].current && strcmp(keys[i].kid, kid) == 0) {
      code = MCPL_E_CONFLICT;
      snprintf(err, sizeof err, "key '%s' is the current key: rotate first", kid);
    }
  long long n = code == MCPL_OK ? count_kid(c, kid) : 0;
  if (code == MCPL_OK && n != 0) {
    code = MCPL_E_CONFLICT;
    snprintf(err, sizeof err, "key '%s' still seals %lld secret%s: rotate first", kid, n, n == 1 ? "" : "s");
  }
  if (code == MCPL_OK) code = crypto_ring_remove(c->e, kid, err, sizeof err);
  tx_end(c, "keys_retire", 0); /* nothing was written to the database */
  if (code != MCPL_OK) {
    mcpl_push_error(L, mcpl_code_name(code), "%s", err);
    lua_pushstring(L, "kid");
    lua_setfield(L, -2, "field");
    return lua_error(L);
  }
  mcpl_log(c->e, "info", "key %s retired", kid);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, kid);
  lua_setfield(L, -2, "kid");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "retired");
  return 1;
}

void store_keys_register(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"keys_list", l_keys_list}, {"keys_rotate", l_keys_rotate}, {"keys_retire", l_keys_retire},
    {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
