/* store_backend.h: the storage backend interface: a struct of functions a
 * database implements for the store (store_sqlite.c, store_pg.c). */
#ifndef MCPL_STORE_BACKEND_H
#define MCPL_STORE_BACKEND_H

/* Layering. bind_store.c (the Lua `store` module) checks arguments and the
 * actor, adds the tenant conditions and seals secrets; it then asks a backend
 * for plain requests: "rows of table T where these conditions hold". A backend
 * never sees an actor, so it cannot forget a tenant: the scoping is already in
 * the conditions it renders. Secret columns are ordinary text to a backend
 * (sealed above it, store_secret.c), which keeps ciphertexts portable.
 *
 * Most requests render the same standard SQL for every backend (store_sql.c,
 * "?N" parameters); a backend supplies the primitives (connect, exec, the
 * transaction statements, error mapping, migrations) and may override any
 * request where its dialect differs. */

#include <stddef.h>
#include "engine.h"

/* ---- the schema every backend stores (store_schema.c) --------------------- */

typedef enum { ST_TEXT, ST_INT, ST_BOOL, ST_JSON, ST_SECRET } store_type;

typedef struct {
  const char *name;
  store_type type;
  const char *ref;     /* table this column references by id, or NULL */
} store_col;

typedef struct store_table {
  const char *name;    /* SQL and Lua table name */
  const char *noun;    /* for messages: "server not found" */
  const char *prefix;  /* id prefix: "srv_" */
  int scoped;          /* has tenant_id; tenant actors see only their own rows */
  int null_tenant;     /* scoped, but the system actor may write tenant_id = null */
  int system_only;     /* tenant actors may not use it at all */
  int append_only;     /* no update, no delete */
  const store_col *cols; /* writable columns, {NULL} terminated */
  /* derived at first use (store_schema_init) */
  char select_list[2048]; /* "id,tenant_id,created_at,updated_at,name,CASE WHEN api_key..." */
  int ncols;
} store_table;

/* ---- values, conditions, requests ----------------------------------------- */

typedef enum { SV_NULL, SV_INT, SV_TEXT } store_vkind;
typedef struct {
  store_vkind kind;
  long long i;
  const char *s;       /* SV_TEXT: not NUL-terminated necessarily; n bytes */
  size_t n;
} store_val;

typedef enum {
  SC_EQ,        /* col = v (v SV_NULL: col IS NULL) */
  SC_NOT_NULL,  /* col IS NOT NULL */
  SC_PREFIX,    /* col starts with the text v */
  SC_SEQ_AFTER, /* seq > v (keyset pages) */
} store_cop;

typedef struct {
  const char *col;     /* a schema name, never caller text */
  store_cop op;
  store_val v;
} store_cond;

typedef enum {
  SP_ROW,     /* t->select_list (then seq, with_seq) */
  SP_COUNT,   /* count(*) */
  SP_EXISTS,  /* 1 */
  SP_TENANT,  /* tenant_id (NULL for tables without one) */
  SP_SEALED,  /* id, tenant_id, col: the sealed text of a secret column */
} store_proj;

#define STORE_MAX_CONDS 40
#define STORE_MAX_SET 40
/* parameters in one statement of a bulk insert (both databases take more) */
#define STORE_BULK_PARAMS 768

typedef struct {
  const store_table *t;
  store_proj proj;
  const char *col;     /* SP_SEALED: the secret column */
  store_cond cond[STORE_MAX_CONDS];
  int ncond;
  int with_seq;        /* SP_ROW: seq after the other columns (cursors) */
  int ordered;         /* ORDER BY seq */
  long long limit;     /* 0: no limit */
} store_select;

typedef struct {
  const char *col;
  store_val v;
} store_set;

/* Named read queries (store_query.c): one statement each, "?1".."?n" for the
 * params in order; tenant_cond uses "?T" for the actor's tenant. */
#define STORE_QMAX_PARAMS 4
#define STORE_QMAX_OUT 12
typedef struct {
  const char *name;
  store_type type;     /* ST_TEXT, ST_INT, ST_BOOL (0/1) or ST_JSON */
} store_qout;

typedef struct {
  const char *name;
  const char *params[STORE_QMAX_PARAMS];
  const char *sql;          /* up to the end of the WHERE clause */
  const char *tenant_cond;  /* appended for tenant actors */
  const char *order;        /* ORDER BY ... */
  store_qout out[STORE_QMAX_OUT];
} store_named;

static inline store_val store_v_null(void) { return (store_val){SV_NULL, 0, NULL, 0}; }
static inline store_val store_v_int(long long i) { return (store_val){SV_INT, i, NULL, 0}; }
static inline store_val store_v_lstr(const char *s, size_t n) { return (store_val){SV_TEXT, 0, s, n}; }
static inline store_val store_v_str(const char *s) {
  return s ? (store_val){SV_TEXT, 0, s, __builtin_strlen(s)} : store_v_null();
}

/* ---- errors, in the store's terms ------------------------------------------ */

typedef enum {
  SE_OK = 0,
  SE_UNIQUE,       /* col: the conflicting column (not tenant_id), may be "" */
  SE_NOT_NULL,     /* col */
  SE_CHECK,        /* col: the constraint's name */
  SE_FOREIGN_KEY,  /* a referenced row is missing, or a row is still referenced */
  SE_REFUSED,      /* the database refused the change itself (a trigger): msg */
  SE_BUSY,         /* locked or timed out waiting for a lock: try again */
  SE_TIMEOUT,      /* the statement ran out of time */
  SE_UNAVAILABLE,  /* the database cannot be reached: msg (never a password) */
  SE_INTERNAL,     /* anything else: msg (logged, never shown) */
} store_ecode;

typedef struct {
  store_ecode code;
  char col[64];
  char msg[512];
} store_err;

/* ---- result rows ------------------------------------------------------------- */

typedef struct store_conn store_conn;
typedef struct store_rows store_rows;

typedef struct {
  int (*next)(store_rows *r);               /* 1: a row, 0: the end, -1: error (c->err) */
  int (*is_null)(store_rows *r, int col);
  long long (*get_int)(store_rows *r, int col);
  const char *(*get_text)(store_rows *r, int col, size_t *n); /* NUL-terminated */
  void (*done)(store_rows *r);              /* always called, also after an error */
} store_rows_ops;

struct store_rows {
  const store_rows_ops *ops;
  store_conn *c;
  void *p;          /* the backend's result (statement, PGresult, cache entry) */
  long long i, n;   /* row cursor, for backends that need one */
  int ncols;        /* columns in each row */
};

/* ---- the interface ------------------------------------------------------------- */

typedef struct store_backend {
  const char *name;   /* "sqlite", "postgresql" */
  /* Engine open: checks the target, creates or migrates the schema (serialised
   * in the database; a newer schema is refused and left untouched). Returns an
   * mcpl_code; msg (malloc'd, no password) says why. */
  int (*engine_open)(mcpl_engine *e, const char *target, char **msg);
  /* Engine close (may be NULL): frees what engine_open kept. */
  void (*engine_close)(mcpl_engine *e);
  /* Per connection (one per engine Lua state). */
  int (*connect)(store_conn *c, const char *target);
  void (*disconnect)(store_conn *c);
  /* Called before each request outside a transaction: make sure the
   * connection is usable (reconnect a lost one). 0 or -1 (c->err). */
  int (*ready)(store_conn *c);
  /* The primitive: one statement with "?N" parameters. With out, rows are
   * read through it (ops->done ends them); else *changed (may be NULL) gets
   * the number of rows written. 0 or -1 (c->err). */
  int (*exec)(store_conn *c, const char *sql, const store_val *v, int n, store_rows *out,
              long long *changed);
  /* Transactions: c->depth is the nesting before the call (0: a transaction,
   * deeper: a savepoint). Transactions take the writers' lock up front, so
   * read-then-write work never interleaves with another writer's. */
  int (*begin)(store_conn *c);
  int (*commit)(store_conn *c);
  void (*rollback)(store_conn *c);
  /* Requests (store_sql.c renders them for both dialects). */
  int (*select)(store_conn *c, const store_select *q, store_rows *out);
  int (*insert)(store_conn *c, const store_table *t, const store_set *set, int n);
  /* nrows rows of the same ncols columns, v row after row (ncols * nrows
   * values); inside the caller's transaction */
  int (*insert_many)(store_conn *c, const store_table *t, const char *const *cols, int ncols,
                     const store_val *v, int nrows);
  int (*update)(store_conn *c, const store_table *t, const store_cond *where, int nw,
                const store_set *set, int ns, long long *changed);
  int (*remove)(store_conn *c, const store_table *t, const store_cond *where, int nw,
                long long *changed);
  /* tenant_id NULL: the system actor (no tenant condition) */
  int (*query)(store_conn *c, const store_named *q, const char *const *params,
               const char *tenant_id, store_rows *out);
  /* Actors, settings, leases (rows with an expiry, never locks held by a
   * process: a holder that dies loses its lease when it expires). */
  /* rows: tenant_id, user_id, role, mcp_enabled (NULL: unset), tenant
   * version, settings version */
  int (*resolve_actor)(store_conn *c, const char *tenant, const char *user, store_rows *out);
  int (*setting_get)(store_conn *c, const char *key, store_rows *out);
  int (*setting_set)(store_conn *c, const char *key, const char *json, long long now); /* json NULL: delete */
  int (*lease_acquire)(store_conn *c, const char *key, const char *holder, long long now,
                       long long ttl_ms, int *got);
  int (*lease_release)(store_conn *c, const char *key, const char *holder);
  int (*schema_version)(store_conn *c, int *version);
} store_backend;

extern const store_backend store_sqlite_backend;
extern const store_backend store_pg_backend;
/* PostgreSQL migrations of the database at a URI, up to step (latest: 0);
 * an mcpl_code, *msg (malloc'd, no password) says why on failure. */
int store_pg_migrate(const char *target, int step, char **msg);
/* SQLite migrations on an open handle (also makes the version-1 test fixture). */
struct sqlite3;
int store_sqlite_migrate(struct sqlite3 *db, int target, char **err);

/* Shared request implementations over be->exec (store_sql.c). */
int store_sql_select(store_conn *c, const store_select *q, store_rows *out);
int store_sql_insert(store_conn *c, const store_table *t, const store_set *set, int n);
int store_sql_insert_many(store_conn *c, const store_table *t, const char *const *cols, int ncols,
                          const store_val *v, int nrows);
int store_sql_update(store_conn *c, const store_table *t, const store_cond *where, int nw,
                     const store_set *set, int ns, long long *changed);
int store_sql_remove(store_conn *c, const store_table *t, const store_cond *where, int nw,
                     long long *changed);
int store_sql_query(store_conn *c, const store_named *q, const char *const *params,
                    const char *tenant_id, store_rows *out);
int store_sql_setting_get(store_conn *c, const char *key, store_rows *out);
int store_sql_setting_set(store_conn *c, const char *key, const char *json, long long now);
int store_sql_lease_acquire(store_conn *c, const char *key, const char *holder, long long now,
                            long long ttl_ms, int *got);
int store_sql_lease_release(store_conn *c, const char *key, const char *holder);

/* Error helpers for backends. */
void store_err_set(store_err *e, store_ecode code, const char *col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
