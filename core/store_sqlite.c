/* store_sqlite.c: the SQLite backend: one file, WAL, a cached prepared
 * statement per SQL text, writers serialised by BEGIN IMMEDIATE. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include "store.h"

#define BUSY_TIMEOUT_MS 5000
#define STMT_CACHE 256

typedef struct {
  char *sql;
  sqlite3_stmt *st;
} slot;

/* The last actor row this connection read (resolve_actor), and the
 * database's change mark when it was read: PRAGMA data_version (commits of
 * any other connection, in this process or another) and
 * sqlite3_total_changes64 (this connection's own writes). While the mark
 * stands nothing in the file has changed, and the row is answered from here:
 * reading the mark costs a fifth of the query. */
#define ACTOR_COLS 7
typedef struct {
  int valid, found;
  long long dv, tc;
  char *key; /* tenant NUL user */
  size_t keylen;
  char *col[ACTOR_COLS]; /* NULL: SQL NULL */
} sq_actor;

typedef struct {
  int nstmt;
  slot stmts[STMT_CACHE];
  sq_actor actor;
} sq_impl;

#define DB(c) ((sqlite3 *)(c)->db)

/* ---- errors ------------------------------------------------------------------ */

/* "UNIQUE constraint failed: servers.tenant_id, servers.name" -> "name":
 * the last column that is not the tenant. */
static void conflict_column(const char *msg, char *out, size_t outn) {
  out[0] = 0;
  const char *p = strstr(msg, "failed: ");
  if (!p) return;
  p += 8;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *dot = memchr(p, '.', n);
    const char *col = dot ? dot + 1 : p;
    size_t cn = n - (size_t)(col - p);
    if (!(cn == 9 && strncmp(col, "tenant_id", 9) == 0) && cn < outn) {
      memcpy(out, col, cn);
      out[cn] = 0;
    }
    if (!end) break;
    p = end + 1;
    while (*p == ' ') p++;
  }
}

/* Fills c->err for a failed call; returns -1. */
static int sq_fail(store_conn *c, int rc) {
  char msg[512], col[64];
  snprintf(msg, sizeof msg, "%s", c->db ? sqlite3_errmsg(DB(c)) : "no connection");
  /* ON DELETE RESTRICT reports through the trigger code; the text is stable */
  if (strcmp(msg, "FOREIGN KEY constraint failed") == 0) rc = SQLITE_CONSTRAINT_FOREIGNKEY;
  switch (rc) {
  case SQLITE_CONSTRAINT_UNIQUE:
  case SQLITE_CONSTRAINT_PRIMARYKEY:
    conflict_column(msg, col, sizeof col);
    store_err_set(&c->err, SE_UNIQUE, col, "%s", msg);
    break;
  case SQLITE_CONSTRAINT_NOTNULL: {
    const char *dot = strrchr(msg, '.');
    store_err_set(&c->err, SE_NOT_NULL, dot ? dot + 1 : "?", "%s", msg);
    break;
  }
  case SQLITE_CONSTRAINT_CHECK: {
    const char *p = strstr(msg, "failed: ");
    store_err_set(&c->err, SE_CHECK, p ? p + 8 : "?", "%s", msg);
    break;
  }
  case SQLITE_CONSTRAINT_FOREIGNKEY: store_err_set(&c->err, SE_FOREIGN_KEY, NULL, "%s", msg); break;
  case SQLITE_CONSTRAINT_TRIGGER: store_err_set(&c->err, SE_REFUSED, NULL, "%s", msg); break;
  case SQLITE_BUSY:
  case SQLITE_BUSY_SNAPSHOT:
  case SQLITE_BUSY_RECOVERY:
  case SQLITE_LOCKED:
    store_err_set(&c->err, SE_BUSY, NULL, "%s", msg);
    break;
  default: store_err_set(&c->err, SE_INTERNAL, NULL, "%s", msg);
  }
  return -1;
}

/* ---- statements -------------------------------------------------------------- */

static void cache_clear(sq_impl *m) {
  for (int i = 0; i < STMT_CACHE; i++) {
    if (m->stmts[i].st) sqlite3_finalize(m->stmts[i].st);
    free(m->stmts[i].sql);
    m->stmts[i].st = NULL;
    m->stmts[i].sql = NULL;
  }
  m->nstmt = 0;
}

static unsigned hash_sql(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* A cached prepared statement, reset and unbound; NULL on error. */
static sqlite3_stmt *prepare(store_conn *c, const char *sql) {
  sq_impl *m = c->impl;
  unsigned h = hash_sql(sql) % STMT_CACHE;
  for (unsigned i = 0; i < STMT_CACHE; i++) {
    slot *s = &m->stmts[(h + i) % STMT_CACHE];
    if (!s->sql) break;
    if (strcmp(s->sql, sql) == 0) {
      sqlite3_reset(s->st);
      sqlite3_clear_bindings(s->st);
      return s->st;
    }
  }
  /* Statements are built from the schema's fixed names, so the set is
   * bounded; still, never let the cache fill up: start over. */
  if (m->nstmt >= STMT_CACHE * 3 / 4) cache_clear(m);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v3(DB(c), sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) return NULL;
  char *copy = strdup(sql);
  if (!copy) { sqlite3_finalize(st); return NULL; }
  for (unsigned i = 0;; i++) {
    slot *s = &m->stmts[(h + i) % STMT_CACHE];
    if (!s->sql) { s->sql = copy; s->st = st; m->nstmt++; break; }
  }
  return st;
}

static int rows_next(store_rows *r) {
  int rc = sqlite3_step(r->p);
  if (rc == SQLITE_ROW) return 1;
  if (rc == SQLITE_DONE) return 0;
  return sq_fail(r->c, sqlite3_extended_errcode(DB(r->c)));
}
static int rows_is_null(store_rows *r, int col) { return sqlite3_column_type(r->p, col) == SQLITE_NULL; }
static long long rows_int(store_rows *r, int col) { return sqlite3_column_int64(r->p, col); }
static const char *rows_text(store_rows *r, int col, size_t *n) {
  const char *s = (const char *)sqlite3_column_text(r->p, col);
  if (n) *n = (size_t)sqlite3_column_bytes(r->p, col);
  return s ? s : "";
}
static void rows_done(store_rows *r) { sqlite3_reset(r->p); }
static const store_rows_ops sq_rows = {rows_next, rows_is_null, rows_int, rows_text, rows_done};

static int sq_exec(store_conn *c, const char *sql, const store_val *v, int n, store_rows *out,
                   long long *changed) {
  sqlite3_stmt *st = prepare(c, sql);
  if (!st) return sq_fail(c, sqlite3_extended_errcode(DB(c)));
  /* a statement run to its end here reads its texts in place (no copy of a
   * long list written whole) and forgets them before it returns; one whose
   * rows the caller reads keeps copies */
  for (int i = 0; i < n; i++) {
    if (v[i].kind == SV_NULL) sqlite3_bind_null(st, i + 1);
    else if (v[i].kind == SV_INT) sqlite3_bind_int64(st, i + 1, v[i].i);
    else sqlite3_bind_text(st, i + 1, v[i].s, (int)v[i].n, out ? SQLITE_TRANSIENT : SQLITE_STATIC);
  }
  if (out) {
    *out = (store_rows){&sq_rows, c, st, 0, 0, sqlite3_column_count(st)};
    return 0;
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {}
  if (rc != SQLITE_DONE) {
    sq_fail(c, sqlite3_extended_errcode(DB(c)));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return -1;
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (changed) *changed = sqlite3_changes64(DB(c));
  return 0;
}

static int sq_run(store_conn *c, const char *sql) { return sq_exec(c, sql, NULL, 0, NULL, NULL); }

/* ---- transactions -------------------------------------------------------------- */

/* BEGIN IMMEDIATE takes the write lock up front, so two writers never
 * deadlock upgrading; nested levels are savepoints. */
/* PRAGMA user_version: the migration step the database is at */
static int sq_schema_version(store_conn *c, int *version) {
  return store_schema_read(c, "PRAGMA user_version", version);
}

static int sq_begin(store_conn *c) {
  char sql[48];
  if (c->depth == 0) {
    if (sq_run(c, "BEGIN IMMEDIATE") != 0) return -1;
    int v = 0;
    if (sq_schema_version(c, &v) == 0 && !store_schema_newer(c, v)) return 0;
    store_err keep = c->err;
    sq_run(c, "ROLLBACK");
    c->err = keep;
    return -1;
  }
  snprintf(sql, sizeof sql, "SAVEPOINT tx%d", c->depth);
  return sq_run(c, sql);
}

static int sq_commit(store_conn *c) {
  char sql[48];
  if (c->depth == 0) {
    if (sq_run(c, "COMMIT") == 0) return 0;
    store_err keep = c->err;
    sq_run(c, "ROLLBACK");
    c->err = keep;
    return -1;
  }
  snprintf(sql, sizeof sql, "RELEASE tx%d", c->depth);
  return sq_run(c, sql);
}

static void sq_rollback(store_conn *c) {
  char sql[48];
  store_err keep = c->err;
  if (c->depth == 0) sq_run(c, "ROLLBACK");
  else {
    snprintf(sql, sizeof sql, "ROLLBACK TO tx%d", c->depth);
    sq_run(c, sql);
    snprintf(sql, sizeof sql, "RELEASE tx%d", c->depth);
    sq_run(c, sql);
  }
  c->err = keep;
}

/* ---- migrations ------------------------------------------------------------------ */

static int user_version(sqlite3 *db, int *v) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    *v = sqlite3_column_int(st, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

/* The rows that refer to a row that does not exist (PRAGMA foreign_key_check),
 * the first named in buf; -1 when the check itself fails. */
static long broken_references(sqlite3 *db, char *buf, size_t n) {
  sqlite3_stmt *st = NULL;
  long count = 0;
  int rc = sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL);
  if (rc == SQLITE_OK)
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
      if (count++ == 0)
        snprintf(buf, n, "row %lld of %s refers to a missing row of %s",
                 (long long)sqlite3_column_int64(st, 1), (const char *)sqlite3_column_text(st, 0),
                 (const char *)sqlite3_column_text(st, 2));
  if (rc != SQLITE_DONE) snprintf(buf, n, "cannot check references: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? count : -1;
}

/* Applies the steps up to target (latest when 0) in one transaction;
 * PRAGMA user_version records the step reached. Refuses a database newer
 * than this code. err: malloc'd message. */
int store_sqlite_migrate(sqlite3 *db, int target, char **err) {
  int v = 0, latest = store_schema_latest();
  char buf[1024];
  *err = NULL;
  if (target <= 0 || target > latest) target = latest;
  /* Reading the version first, before any write or pragma that writes:
   * a newer database must be left exactly as it is. */
  if (user_version(db, &v) != SQLITE_OK) {
    snprintf(buf, sizeof buf, "cannot read the database: %s", sqlite3_errmsg(db));
    *err = strdup(buf);
    return MCPL_E_INTERNAL;
  }
  if (v > latest) {
    snprintf(buf, sizeof buf, "the database has schema version %d, newer than this mcplink "
             "supports (%d): upgrade mcplink; the file was not changed", v, latest);
    *err = strdup(buf);
    return MCPL_E_INVALID_ARGUMENT;
  }
  if (v >= target) return MCPL_OK;
  char *msg = NULL;
  /* A step may rebuild a table (drop the old, rename the new): with foreign
   * keys on, dropping it would cascade into every table that references it.
   * The pragma only takes effect outside a transaction; this connection is
   * the migration's own, closed after it. */
  if (sqlite3_exec(db, "PRAGMA foreign_keys=OFF", NULL, NULL, &msg) != SQLITE_OK) goto fail;
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) goto fail;
  /* another process may have migrated while we waited for the lock */
  if (user_version(db, &v) != SQLITE_OK) goto fail_rb;
  long broken = broken_references(db, buf, sizeof buf), after;
  if (broken < 0) { msg = sqlite3_mprintf("%s", buf); goto fail_rb; }
  for (; v < target; v++) {
    assert(store_migration("sqlite", v + 1));  /* target <= store_schema_latest() */
    if (sqlite3_exec(db, store_migration("sqlite", v + 1), NULL, NULL, &msg) != SQLITE_OK) goto fail_rb;
    char set[64];
    snprintf(set, sizeof set, "PRAGMA user_version = %d", v + 1);
    if (sqlite3_exec(db, set, NULL, NULL, &msg) != SQLITE_OK) goto fail_rb;
  }
  /* ... so every reference is checked here instead, before anything commits:
   * the steps may not leave one broken that was whole before */
  if ((after = broken_references(db, buf, sizeof buf)) < 0 || after > broken) {
    if (after > broken)
      msg = sqlite3_mprintf("the steps broke %ld reference(s), e.g. %s", after - broken, buf);
    else msg = sqlite3_mprintf("%s", buf);
    v = target - 1;
    goto fail_rb;
  }
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) goto fail_rb;
  return MCPL_OK;
fail_rb:
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
fail:
  snprintf(buf, sizeof buf, "database migration %d failed: %s", v + 1, msg ? msg : sqlite3_errmsg(db));
  *err = strdup(buf);
  sqlite3_free(msg);
  return MCPL_E_INTERNAL;
}

static int bad_path(const char *p) {
  return !p || !*p || p[0] == ':' || strncmp(p, "file:", 5) == 0;
}

/* The connection that opened (and migrated) the database stays open for the
 * engine's first Lua state, which takes it instead of opening its own: the
 * schema is read once, and the -wal and -shm files a last connection removes
 * on closing are not made twice. */
typedef struct {
  _Atomic(sqlite3 *) db;  /* NULL once taken */
} sq_spare;

static sqlite3 *take_spare(mcpl_engine *e) {
  sq_spare *sp = e ? mcpl_engine_slot(e, MCPL_AREA_STORE) : NULL;
  return sp ? atomic_exchange(&sp->db, NULL) : NULL;
}

static void sq_engine_close(mcpl_engine *e) {
  sqlite3_close(take_spare(e));
  free(mcpl_engine_slot(e, MCPL_AREA_STORE));
  mcpl_engine_set_slot(e, MCPL_AREA_STORE, NULL);
}

static int sq_engine_open(mcpl_engine *e, const char *path, char **out) {
  char msg[1200];
  if (bad_path(path)) {
    *out = strdup("option db must be a file path or a postgresql:// URI");
    return MCPL_E_INVALID_ARGUMENT;
  }
  /* Create the file ourselves so it starts private (SQLite gives its -wal
   * and -shm files the database file's mode). */
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(msg, sizeof msg, "cannot open database '%s': %s", path, strerror(errno));
    *out = strdup(msg);
    return MCPL_E_INVALID_ARGUMENT;
  }
  close(fd);
  sqlite3 *db = NULL;
  char *merr = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    snprintf(msg, sizeof msg, "cannot open database '%s': %s", path, db ? sqlite3_errmsg(db) : "?");
    *out = strdup(msg);
    sqlite3_close(db);
    return MCPL_E_INTERNAL;
  }
  sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
  int code = store_sqlite_migrate(db, 0, &merr);
  if (code == MCPL_OK && sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK) {
    merr = strdup("cannot switch the database to WAL mode");
    code = MCPL_E_INTERNAL;
  }
  sq_spare *sp = code == MCPL_OK ? calloc(1, sizeof *sp) : NULL;
  if (sp) {
    atomic_init(&sp->db, db);
    mcpl_engine_set_slot(e, MCPL_AREA_STORE, sp);
  } else sqlite3_close(db);
  if (code != MCPL_OK) {
    snprintf(msg, sizeof msg, "database '%s': %s", path, merr ? merr : "cannot open");
    mcpl_log(e, "error", "%s", msg);
    *out = strdup(msg);
  }
  free(merr);
  return code;
}

/* ---- connections ------------------------------------------------------------------ */

static int sq_connect(store_conn *c, const char *path) {
  sqlite3 *db = NULL;
  c->impl = calloc(1, sizeof(sq_impl));
  int rc = !c->impl ? SQLITE_NOMEM : (db = take_spare(c->e)) ? SQLITE_OK
         : sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  c->db = db;
  if (rc != SQLITE_OK) goto fail;
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
  /* synchronous=FULL: an acknowledged write survives power loss, not just
   * a crash; secure_delete: freed pages are zeroed, not left readable.
   * temp_store=MEMORY: statement journals (what undoes one statement of a
   * transaction, e.g. a bulk insert's, whose trigger makes each a
   * multi-row change) stay in memory instead of a temporary file; they
   * hold only what one statement changed and are never durable anyway.
   * Writing them to a file was most of a 10,001-tool discovery's writes. */
  rc = sqlite3_exec(db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; "
                        "PRAGMA secure_delete=ON; PRAGMA trusted_schema=OFF; PRAGMA temp_store=MEMORY",
                    NULL, NULL, NULL);
  if (rc != SQLITE_OK) goto fail;
  return 0;
fail:
  store_err_set(&c->err, SE_INTERNAL, NULL, "cannot open database '%s': %s", path,
                db ? sqlite3_errmsg(db) : "out of memory");
  sqlite3_close(db);
  free(c->impl);
  c->impl = NULL;
  c->db = NULL;
  return -1;
}

static void actor_clear(sq_actor *a) {
  free(a->key);
  for (int i = 0; i < ACTOR_COLS; i++) free(a->col[i]);
  memset(a, 0, sizeof *a);
}

static void sq_disconnect(store_conn *c) {
  if (!c->db) return;
  cache_clear(c->impl);
  actor_clear(&((sq_impl *)c->impl)->actor);
  sqlite3_close_v2(DB(c)); /* an open transaction is rolled back */
  free(c->impl);
  c->impl = NULL;
  c->db = NULL;
}

static int sq_ready(store_conn *c) { (void)c; return 0; }

/* ---- dialect ------------------------------------------------------------------------ */

/* the kept actor row, replayed */
static int actor_next(store_rows *r) {
  if (r->i >= r->n) return 0;
  r->i++;
  return 1;
}
static int actor_is_null(store_rows *r, int col) { return ((sq_actor *)r->p)->col[col] == NULL; }
static long long actor_int(store_rows *r, int col) {
  const char *v = ((sq_actor *)r->p)->col[col];
  return v ? strtoll(v, NULL, 10) : 0;
}
static const char *actor_text(store_rows *r, int col, size_t *n) {
  const char *v = ((sq_actor *)r->p)->col[col];
  if (n) *n = v ? strlen(v) : 0;
  return v ? v : "";
}
static void actor_done(store_rows *r) { (void)r; }
static const store_rows_ops actor_rows = {actor_next, actor_is_null, actor_int, actor_text, actor_done};

/* PRAGMA data_version; -1 when it cannot be read (the row is then not kept) */
static int data_version(store_conn *c, long long *dv) {
  sqlite3_stmt *st = prepare(c, "PRAGMA data_version");
  if (!st) return -1;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *dv = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : -1;
}

/* mcp_enabled: the tenant setting, read in the same query so ops need no
 * second one (NULL when unset: on by default). The mark is read before the
 * query: a commit between the two moves it, so the row is read again next
 * time rather than kept stale. Inside a transaction nothing is kept. */
static int sq_resolve_actor(store_conn *c, const char *tenant, const char *user, store_rows *out) {
  sq_actor *a = &((sq_impl *)c->impl)->actor;
  size_t tl = strlen(tenant), ul = strlen(user);
  long long dv = 0, tc = sqlite3_total_changes64(DB(c));
  int marked = c->depth == 0 && data_version(c, &dv) == 0;
  if (marked && a->valid && a->dv == dv && a->tc == tc && a->keylen == tl + 1 + ul &&
      memcmp(a->key, tenant, tl + 1) == 0 && memcmp(a->key + tl + 1, user, ul) == 0) {
    *out = (store_rows){&actor_rows, c, a, 0, a->found, ACTOR_COLS};
    return 0;
  }
  actor_clear(a);
  store_val v[2] = {store_v_str(tenant), store_v_str(user)};
  store_rows q;
  if (sq_exec(c, "SELECT t.id, u.id, u.role, json_extract(t.settings, '$.mcp_enabled'), t.version, "
                 "(SELECT n FROM store_versions WHERE name = 'settings'), "
                 "(SELECT user_version FROM pragma_user_version) "
                 "FROM tenants t JOIN users u ON u.tenant_id = t.id WHERE t.name = ?1 AND u.name = ?2",
              v, 2, &q, NULL) != 0)
    return -1;
  int got = q.ops->next(&q), oom = 0;
  for (int i = 0; got == 1 && i < ACTOR_COLS; i++)
    if (!q.ops->is_null(&q, i) && !(a->col[i] = strdup(q.ops->get_text(&q, i, NULL)))) oom = 1;
  q.ops->done(&q);
  if (got < 0) {
    actor_clear(a);
    return -1;
  }
  if (oom || !(a->key = malloc(tl + 1 + ul))) {
    actor_clear(a);
    store_err_set(&c->err, SE_INTERNAL, NULL, "store: out of memory (actor)");
    return -1;
  }
  memcpy(a->key, tenant, tl + 1);
  memcpy(a->key + tl + 1, user, ul);
  a->keylen = tl + 1 + ul;
  a->found = got;
  a->dv = dv;
  a->tc = tc;
  a->valid = marked;
  *out = (store_rows){&actor_rows, c, a, 0, a->found, ACTOR_COLS};
  return 0;
}

const store_backend store_sqlite_backend = {
  .name = "sqlite",
  .engine_open = sq_engine_open,
  .engine_close = sq_engine_close,
  .connect = sq_connect,
  .disconnect = sq_disconnect,
  .ready = sq_ready,
  .exec = sq_exec,
  .begin = sq_begin,
  .commit = sq_commit,
  .rollback = sq_rollback,
  .select = store_sql_select,
  .insert = store_sql_insert,
  .insert_many = store_sql_insert_many,
  .update = store_sql_update,
  .remove = store_sql_remove,
  .query = store_sql_query,
  .resolve_actor = sq_resolve_actor,
  .setting_get = store_sql_setting_get,
  .setting_set = store_sql_setting_set,
  .lease_acquire = store_sql_lease_acquire,
  .lease_release = store_sql_lease_release,
  .schema_version = sq_schema_version,
};
