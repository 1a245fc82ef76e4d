/* store.h: internal interface of the storage binding: table metadata, the
 * per-state SQLite connection with its statement cache, and migrations. */
#ifndef MCPL_STORE_H
#define MCPL_STORE_H

#include <sqlite3.h>
#include <lua.h>
#include "engine.h"

typedef enum { ST_TEXT, ST_INT, ST_BOOL, ST_JSON, ST_SECRET } store_type;

typedef struct {
  const char *name;
  store_type type;
  const char *ref;     /* table this column references by id, or NULL */
} store_col;

typedef struct {
  const char *name;    /* SQL and Lua table name */
  const char *noun;    /* for messages: "server not found" */
  const char *prefix;  /* id prefix: "srv_" */
  int scoped;          /* has tenant_id; tenant actors see only their own rows */
  int null_tenant;     /* scoped, but the system actor may write tenant_id = null */
  int system_only;     /* tenant actors may not use it at all */
  int append_only;     /* no update, no delete */
  const store_col *cols; /* writable columns, {NULL} terminated */
  /* derived at first use (store_schema_init) */
  char select_list[2048]; /* "id,tenant_id,created_at,updated_at,name,(api_key IS NOT NULL)..." */
  int ncols;
} store_table;

/* Schema (store_schema.c) ---------------------------------------------------- */
void store_schema_init(void);                 /* idempotent, thread-safe */
store_table *store_table_find(const char *name);
const store_col *store_col_find(const store_table *t, const char *name);
store_table *store_tables(int *n);
int store_schema_latest(void);
/* Applies migrations up to target (latest when 0) in one transaction.
 * Refuses a database newer than this code. err: malloc'd message. */
int store_migrate(sqlite3 *db, int target, char **err);

/* Connections (store_db.c) ---------------------------------------------------- */
#define STORE_STMT_CACHE 256

typedef struct {
  char *sql;
  sqlite3_stmt *st;
} store_stmt_slot;

typedef struct {
  sqlite3 *db;
  mcpl_engine *e;
  int depth;              /* store.tx nesting: 0 = no transaction */
  int nstmt;
  store_stmt_slot stmts[STORE_STMT_CACHE];
} store_conn;

/* Opens a connection with the engine's pragmas; version is checked by
 * store_migrate at engine open. */
int store_conn_open(store_conn *c, mcpl_engine *e, const char *path, char **err);
void store_conn_close(store_conn *c);
/* A cached prepared statement, reset and unbound; NULL on error (message in
 * sqlite3_errmsg). */
sqlite3_stmt *store_prepare(store_conn *c, const char *sql);
/* The connection of this engine Lua state (opened on first use). Raises. */
store_conn *store_conn_of(lua_State *L);
/* Raises the Lua error for a failed statement (reset first). t may be NULL;
 * rowidx (or 0) is the Lua table whose values name a conflict. */
int store_raise_sqlite(lua_State *L, store_conn *c, sqlite3_stmt *st, int rc,
                       const store_table *t, int rowidx, int deleting);
/* Runs one statement without results (BEGIN, COMMIT...). */
int store_exec(store_conn *c, const char *sql);
long long store_now_ms(void);

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
