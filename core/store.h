/* store.h: internals of the Lua `store` module above the backends: the
 * schema, the per-state connection, errors, secrets and named queries. */
#ifndef MCPL_STORE_H
#define MCPL_STORE_H

#include <lua.h>
#include "store_backend.h"

/* Schema (store_schema.c) ---------------------------------------------------- */
void store_schema_init(void);                 /* idempotent, thread-safe */
store_table *store_table_find(const char *name);
const store_col *store_col_find(const store_table *t, const char *name);
store_table *store_tables(int *n);
int store_schema_latest(void);
/* Is v, the schema version the database records, newer than this code's?
 * Then another instance has upgraded the database under this one (a later
 * step may have moved data this code would read or write wrongly): 1 with
 * c->err set (unavailable, saying so). Checked with every op's actor and
 * at the start of every transaction. */
struct store_conn;
int store_schema_newer(struct store_conn *c, long long v);
/* The schema version a backend's statement reads (its first row's first
 * column) into *version: 0, or -1 with c->err set (no row: internal). */
int store_schema_read(struct store_conn *c, const char *sql, int *version);
/* Migration step (1-based) in a dialect ("sqlite", "postgresql"); NULL past
 * the latest. The steps are the same in both: append only, never edited. */
const char *store_migration(const char *dialect, int step);
/* Do changes to this table move tenants.version (may reads be cached)? */
int store_table_cached(const store_table *t);

/* Targets (store_target.c) ---------------------------------------------------- */
/* Is the db option value a postgresql:// or postgres:// URI? */
int store_target_is_uri(const char *target);
/* target without its password (URI userinfo and password= parameter), for
 * messages, logs and engine.info. */
void store_redact(const char *target, char *out, size_t outn);

/* Connections (store_db.c) ---------------------------------------------------- */
/* The read cache of a connection (store_cache.c). */
typedef struct store_cache store_cache;

struct store_conn {
  const store_backend *be;
  mcpl_engine *e;
  void *db;               /* the backend's handle */
  void *impl;             /* the backend's private state (statement cache) */
  int depth;              /* store.tx nesting: 0 = no transaction */
  int lost;               /* the connection broke inside a transaction: refuse
                           * everything until the transaction has unwound */
  store_err err;          /* the last failure */
  store_cache *cache;     /* rows read in earlier ops, keyed by change counters */
};

/* The backend for a db option value: a postgresql:// or postgres:// URI is
 * PostgreSQL, anything else a SQLite path. */
const store_backend *store_backend_for(const char *target);
/* The connection of this engine Lua state (opened on first use, made ready
 * before each request outside a transaction). Raises. */
store_conn *store_conn_of(lua_State *L);
/* This state's connection if it has one; never opens one. */
store_conn *store_conn_peek(lua_State *L);
/* Closes this state's connection now, if it has one (what its finalizer
 * does; the finalizer then has nothing left to do). */
void store_conn_close(lua_State *L);
/* Raises the Lua error for c->err. t may be NULL; rowidx (or 0) is the Lua
 * table whose values name a conflict; deleting: a foreign key failure means
 * "still in use". */
int store_raise(lua_State *L, store_conn *c, const store_table *t, int rowidx, int deleting);
/* Transactions at the current depth (store.tx and key rotation). */
int store_tx_begin(store_conn *c);
int store_tx_finish(store_conn *c, int commit);
long long store_now_ms(void);

/* Read cache (store_cache.c) ------------------------------------------------------
 * Rows an op read are kept per connection under the change counters the op
 * read with its actor (tenants.version, the settings version); a later op
 * uses them only when its own read of the counters matches, so a change
 * committed anywhere is seen by the next op everywhere. Within an op, the
 * cache stops at the first write, transaction or lease on the connection
 * (the op then reads its own writes and others' fresh). */
/* An op resolved its actor: counters for this op. */
void store_cache_validate(store_conn *c, const char *tenant_id, long long tenant_version,
                          long long settings_version);
/* The rest of this op reads the database (writes, transactions, leases, op end). */
void store_cache_stop(store_conn *c);
/* May a read for this tenant (NULL: the system settings) use the cache now? */
int store_cache_usable(store_conn *c, const char *tenant_id);
/* 1 and *v = the settings version this op read with its actor, while the
 * cache is usable; 0 otherwise (read the settings afresh). */
int store_cache_settings_version(store_conn *c, long long *v);
/* "tenant|tenant version|settings version|" while this tenant's reads may
 * use the cache; NULL otherwise. */
const char *store_cache_prefix(store_conn *c, const char *tenant_id);
/* 1 and out replays the rows cached under key; 0 when there are none. */
int store_cache_get(store_conn *c, const char *key, size_t keylen, store_rows *out);
/* Reads all of rows (a backend result, ended here) into the cache under key
 * and replays them through out. 0, or -1 on a read error (c->err). */
int store_cache_fill(store_conn *c, const char *key, size_t keylen, store_rows *rows, store_rows *out);
void store_cache_free(store_conn *c);

/* Secrets (store_secret.c) ---------------------------------------------------- */
/* Seals the Lua string at idx for (tenant, table, id, col); pushes the sealed
 * text. Raises key_unavailable etc. */
void store_seal_push(lua_State *L, store_conn *c, int idx, const char *tenant_id,
                     const char *table, const char *id, const char *col);
/* Opens sealed text and pushes the plaintext (wiped from C memory after). */
void store_open_push(lua_State *L, store_conn *c, const char *sealed, const char *tenant_id,
                     const char *table, const char *id, const char *col);
/* Adds keys_list, keys_rotate and keys_retire to the table on top. */
void store_keys_register(lua_State *L);

/* Named queries (store_query.c): store.query(actor, name, params). */
int store_query(lua_State *L);

#endif
