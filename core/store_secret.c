/* store_secret.c: secret columns at rest: sealing and opening with the AAD
 * of their row, and key rotation / retirement over the whole database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "keyring.h"
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
      store_select q = {.t = &ts[i], .proj = SP_SEALED, .col = col->name, .limit = 1, .ncond = 1};
      q.cond[0] = (store_cond){col->name, SC_NOT_NULL, store_v_null()};
      store_rows r;
      if (c->be->select(c, &q, &r) != 0) continue;
      int found = r.ops->next(&r) == 1;
      if (found && crypto_sealed_kid(r.ops->get_text(&r, 2, NULL), kid) != 0)
        snprintf(kid, CRYPTO_KID_MAX, "?");
      r.ops->done(&r);
      if (found) return 1;
    }
  return 0;
}

/* Loads the key ring; creates a fresh one only when the database holds no
 * sealed value yet, so a lost key file never silently becomes a new key. */
static void ensure_ring(lua_State *L, store_conn *c) {
  if (keyring_loaded(c->e)) return;
  char err[CRYPTO_ERR_MAX], kid[CRYPTO_KID_MAX];
  int have = find_sealed(c, kid);
  int rc = keyring_load(c->e, !have, err, sizeof err);
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
  int rc = keyring_seal(c->e, aad, an, (const unsigned char *)pt, n, &out, err, sizeof err);
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
  int rc = keyring_open_kept(c->e, aad, an, sealed, &pt, &n, err, sizeof err);
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
      store_select q = {.t = &ts[i], .proj = SP_COUNT, .ncond = 1};
      q.cond[0] = (store_cond){col->name, SC_PREFIX, store_v_str(prefix)};
      store_rows r;
      if (c->be->select(c, &q, &r) != 0) return -1;
      if (r.ops->next(&r) == 1) total += r.ops->get_int(&r, 0);
      r.ops->done(&r);
    }
  return total;
}

/* store.keys_list() -> {{kid, created_at, current, secrets}, ...} */
static int l_keys_list(lua_State *L) {
  store_conn *c = store_conn_of(L);
  char err[CRYPTO_ERR_MAX];
  keyring_load(c->e, 0, err, sizeof err);
  keyring_key_info keys[64];
  int n = keyring_list(c->e, keys, 64);
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

/* Re-seals every secret of one column under the current key. Returns an
 * mcpl_code; err names the key or the failing row. */
static int reseal_column(store_conn *c, const store_table *t, const char *col, long long *count,
                         char *err, size_t errn) {
  /* Read everything first: no statement stays open while rows change. */
  store_select q = {.t = t, .proj = SP_SEALED, .col = col, .ncond = 1};
  q.cond[0] = (store_cond){col, SC_NOT_NULL, store_v_null()};
  store_rows r;
  if (c->be->select(c, &q, &r) != 0) { snprintf(err, errn, "%s", c->err.msg); return MCPL_E_INTERNAL; }
  size_t cap = 0, n = 0;
  char **rows = NULL; /* id, tenant, sealed triples */
  int rc = MCPL_OK, s;
  while ((s = r.ops->next(&r)) == 1) {
    if (n + 3 > cap) {
      cap = cap ? cap * 2 : 48;
      char **nr = realloc(rows, cap * sizeof *rows);
      if (!nr) { rc = MCPL_E_INTERNAL; snprintf(err, errn, "out of memory"); break; }
      rows = nr;
    }
    for (int k = 0; k < 3; k++) rows[n++] = r.ops->is_null(&r, k) ? NULL : strdup(r.ops->get_text(&r, k, NULL));
  }
  r.ops->done(&r);
  if (rc == MCPL_OK && s < 0) { rc = MCPL_E_INTERNAL; snprintf(err, errn, "%s", c->err.msg); }
  for (size_t i = 0; rc == MCPL_OK && i < n; i += 3) {
    char aad[AAD_MAX], *sealed = NULL;
    unsigned char *pt = NULL;
    size_t ptn = 0;
    if (!rows[i] || !rows[i + 2]) { rc = MCPL_E_INTERNAL; snprintf(err, errn, "out of memory"); break; }
    size_t an = make_aad(aad, rows[i + 1], t->name, rows[i], col);
    rc = keyring_open(c->e, aad, an, rows[i + 2], &pt, &ptn, err, errn);
    if (rc == MCPL_OK) {
      rc = keyring_seal(c->e, aad, an, pt, ptn, &sealed, err, errn);
      crypto_wipe_free(pt, ptn + 1);
    }
    if (rc != MCPL_OK) {
      size_t l = strlen(err);
      snprintf(err + l, errn - l, " (%s %s, %s)", t->noun, rows[i], col);
      break;
    }
    store_set set = {col, store_v_str(sealed)};
    store_cond w = {"id", SC_EQ, store_v_str(rows[i])};
    if (c->be->update(c, t, &w, 1, &set, 1, NULL) != 0) {
      rc = c->err.code == SE_UNAVAILABLE ? MCPL_E_UNAVAILABLE : MCPL_E_INTERNAL;
      snprintf(err, errn, "%s", c->err.msg);
    }
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
  if (store_tx_begin(c) != 0) return store_raise(L, c, NULL, 0, 0);
  /* inside the writers' lock: rotations of other processes and instances
   * wait for us (they would otherwise race on the key file) */
  char k0[CRYPTO_KID_MAX];
  int have = find_sealed(c, k0);
  int code = keyring_load(c->e, !have, err, sizeof err);
  keyring_key_info keys[64];
  long long count = 0;
  if (code == MCPL_OK) {
    int n = keyring_list(c->e, keys, 64);
    for (int i = 0; i < n && i < 64; i++) if (keys[i].current) memcpy(prev, keys[i].kid, sizeof prev);
    code = keyring_add(c->e, kid, err, sizeof err);
  }
  int nt;
  store_table *ts = store_tables(&nt);
  for (int i = 0; code == MCPL_OK && i < nt; i++)
    for (const store_col *col = ts[i].cols; code == MCPL_OK && col->name; col++)
      if (col->type == ST_SECRET) code = reseal_column(c, &ts[i], col->name, &count, err, sizeof err);
  if (code != MCPL_OK) {
    store_tx_finish(c, 0);
    return mcpl_lua_error(L, mcpl_code_name(code), "key rotation failed, nothing changed: %s", err);
  }
  if (store_tx_finish(c, 1) != 0) return store_raise(L, c, NULL, 0, 0);
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
  if (store_tx_begin(c) != 0) return store_raise(L, c, NULL, 0, 0);
  int code = keyring_load(c->e, 0, err, sizeof err);
  keyring_key_info keys[64];
  int nk = code == MCPL_OK ? keyring_list(c->e, keys, 64) : 0;
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
  if (code == MCPL_OK) code = keyring_remove(c->e, kid, err, sizeof err);
  store_tx_finish(c, 0); /* nothing was written to the database */
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
