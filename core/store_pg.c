/* store_pg.c: the PostgreSQL backend (libpq): one connection per engine Lua
 * state with prepared statements, reconnected when lost; several instances. */
#include <assert.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dynlib_pq.h"
#include "store.h"

#define STMT_CACHE 256
#define SQL_MAX 8192

/* Server-side limits on every session: no statement runs longer than 30 s,
 * no lock is awaited longer than 10 s (a writer holding the writers' lock
 * too long gets "busy", not a hang), and a transaction left idle (its
 * instance stuck) is ended after 60 s so it cannot hold locks forever.
 * synchronous_commit on, whatever the server's default: an acknowledged write
 * is on disk (the same promise as SQLite's synchronous=FULL). */
#define SESSION_SETUP \
  "SET statement_timeout = 30000; SET lock_timeout = 10000; SET synchronous_commit = on; " \
  "SET idle_in_transaction_session_timeout = 60000; SET client_min_messages = warning"

typedef struct {
  char *sql;
  char name[16];
} pslot;

typedef struct {
  char *target;          /* the URI, password included: used only to connect */
  int nstmt;
  unsigned next;         /* statement names m1, m2, ... */
  pslot stmts[STMT_CACHE];
} pg_impl;

#define PG(c) ((PGconn *)(c)->db)

/* ---- passwords never leave this file ------------------------------------------ */

/* Replaces every occurrence of needle in s (in place, bounded) with "***". */
static void blank_out(char *s, size_t cap, const char *needle) {
  size_t nl = needle ? strlen(needle) : 0;
  if (nl == 0) return;
  char *p;
  while ((p = strstr(s, needle)) != NULL) {
    size_t tail = strlen(p + nl);
    if ((size_t)(p - s) + 3 + tail + 1 > cap) { *p = 0; return; }
    memmove(p + 3, p + nl, tail + 1);
    memcpy(p, "***", 3);
  }
}

/* A libpq message made safe to show: libpq may quote the URI (or a piece of
 * it) back in parse errors, so the URI, its password as written and as
 * decoded, and any password= value are blanked. */
static void scrub(const char *target, const char *msg, char *out, size_t outn) {
  snprintf(out, outn, "%s", msg ? msg : "");
  size_t n = strlen(out);
  while (n && (out[n - 1] == '\n' || out[n - 1] == ' ')) out[--n] = 0;
  if (!target) return;
  blank_out(out, outn, target);
  char *err = NULL;
  PQconninfoOption *opts = PQconninfoParse(target, &err);
  if (opts) {
    for (PQconninfoOption *o = opts; o->keyword; o++)
      if (strcmp(o->keyword, "password") == 0 && o->val) blank_out(out, outn, o->val);
    PQconninfoFree(opts);
  }
  PQfreemem(err);
  /* the raw text too: between "user:" and "@", and after "password=" */
  const char *p = strstr(target, "://");
  if (p) {
    p += 3;
    size_t alen = strcspn(p, "/?#");
    const char *at = NULL, *colon;
    for (const char *q = p; q < p + alen; q++) if (*q == '@') at = q;
    if (at && (colon = memchr(p, ':', (size_t)(at - p))) != NULL) {
      char raw[512];
      snprintf(raw, sizeof raw, "%.*s", (int)(at - colon - 1), colon + 1);
      blank_out(out, outn, raw);
    }
  }
  for (const char *q = target; (q = strstr(q, "password=")) != NULL;) {
    q += 9;
    char raw[512];
    snprintf(raw, sizeof raw, "%.*s", (int)strcspn(q, "&#"), q);
    blank_out(out, outn, raw);
  }
}

static int fail_unavailable(store_conn *c, const char *why) {
  char safe[400];
  pg_impl *m = c->impl;
  scrub(m ? m->target : NULL, why, safe, sizeof safe);
  store_err_set(&c->err, SE_UNAVAILABLE, NULL, "%s", safe);
  return -1;
}

/* "Key (tenant_id, name)=(...) already exists." -> "name": the last key
 * column that is not the tenant (the values are never copied). */
static void unique_column(const char *detail, char *out, size_t outn) {
  out[0] = 0;
  const char *p = detail ? strstr(detail, "Key (") : NULL;
  if (!p) return;
  p += 5;
  const char *end = strstr(p, ")=");
  if (!end) return;
  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *stop = comma ? comma : end;
    size_t n = (size_t)(stop - p);
    if (!(n == 9 && strncmp(p, "tenant_id", 9) == 0) && n < outn) {
      memcpy(out, p, n);
      out[n] = 0;
    }
    p = comma ? comma + 1 : end;
    while (*p == ' ') p++;
  }
}

/* Fills c->err from a failed result (or its absence); returns -1. */
static int pg_fail(store_conn *c, const PGresult *res) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  char msg[400];
  pg_impl *m = c->impl;
  scrub(m ? m->target : NULL, primary ? primary : PQerrorMessage(PG(c)), msg, sizeof msg);
  if (!state || PQstatus(PG(c)) == CONNECTION_BAD || strncmp(state, "08", 2) == 0 ||
      !strcmp(state, "57P01") || !strcmp(state, "57P02") || !strcmp(state, "57P03") ||
      !strcmp(state, "53300")) {
    if (!state && PQstatus(PG(c)) != CONNECTION_BAD)
      store_err_set(&c->err, SE_INTERNAL, NULL, "%s", msg);
    else
      store_err_set(&c->err, SE_UNAVAILABLE, NULL, "%s", msg);
    return -1;
  }
  char col[64];
  if (!strcmp(state, "23505")) {
    unique_column(PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL), col, sizeof col);
    store_err_set(&c->err, SE_UNIQUE, col, "%s", msg);
  } else if (!strcmp(state, "23502")) {
    const char *cn = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
    store_err_set(&c->err, SE_NOT_NULL, cn ? cn : "?", "%s", msg);
  } else if (!strcmp(state, "23514")) {
    const char *cn = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    store_err_set(&c->err, SE_CHECK, cn ? cn : "?", "%s", msg);
  } else if (!strcmp(state, "23503")) {
    store_err_set(&c->err, SE_FOREIGN_KEY, NULL, "%s", msg);
  } else if (!strcmp(state, "P0001")) {
    store_err_set(&c->err, SE_REFUSED, NULL, "%s", msg);
  } else if (!strcmp(state, "55P03") || !strcmp(state, "40P01") || !strcmp(state, "40001")) {
    store_err_set(&c->err, SE_BUSY, NULL, "%s", msg);
  } else if (!strcmp(state, "57014")) {
    store_err_set(&c->err, SE_TIMEOUT, NULL, "%s", msg);
  } else if (!strcmp(state, "25P02")) {
    store_err_set(&c->err, SE_INTERNAL, NULL, "a statement failed earlier in this transaction "
                  "(wrap a statement that may fail in its own store.tx): %s", msg);
  } else {
    store_err_set(&c->err, SE_INTERNAL, NULL, "%s (%s)", msg, state);
  }
  return -1;
}

/* ---- connecting ------------------------------------------------------------------ */

/* Defaults that the URI may override (later keywords win with
 * expand_dbname): bounded connect time, TCP keepalives and a user timeout,
 * so a cut network fails a call instead of hanging it. */
static PGconn *pg_open(const char *target) {
  static const char *const kw[] = {
    "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
    "tcp_user_timeout", "application_name", "client_encoding", "dbname", NULL};
  const char *val[] = {"10", "1", "15", "5", "3", "20000", "mcplink", "UTF8", target, NULL};
  return PQconnectdbParams(kw, val, 1);
}

static void stmt_cache_clear(pg_impl *m) {
  for (int i = 0; i < STMT_CACHE; i++) {
    free(m->stmts[i].sql);
    m->stmts[i].sql = NULL;
  }
  m->nstmt = 0;
}

/* (Re)connects c; 0 or -1 (unavailable, scrubbed). */
static int reconnect(store_conn *c) {
  pg_impl *m = c->impl;
  if (c->db) PQfinish(PG(c));
  c->db = NULL;
  stmt_cache_clear(m);
  PGconn *pg = pg_open(m->target);
  if (!pg) return fail_unavailable(c, "out of memory");
  c->db = pg;
  if (PQstatus(pg) != CONNECTION_OK) {
    fail_unavailable(c, PQerrorMessage(pg));
    PQfinish(pg);
    c->db = NULL;
    return -1;
  }
  PGresult *res = PQexec(pg, SESSION_SETUP);
  int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  if (!ok) pg_fail(c, res);
  PQclear(res);
  return ok ? 0 : -1;
}

static int pg_connect(store_conn *c, const char *target) {
  char why[512];
  if (dynlib_pq_ready(why, sizeof why) != 0) {
    store_err_set(&c->err, SE_UNAVAILABLE, NULL, "%s", why);
    return -1;
  }
  pg_impl *m = calloc(1, sizeof *m);
  if (!m || !(m->target = strdup(target))) {
    free(m);
    store_err_set(&c->err, SE_INTERNAL, NULL, "out of memory");
    return -1;
  }
  c->impl = m;
  if (reconnect(c) == 0) return 0;
  store_err keep = c->err;
  free(m->target);
  free(m);
  c->impl = NULL;
  c->err = keep;
  return -1;
}

static void pg_disconnect(store_conn *c) {
  pg_impl *m = c->impl;
  if (!m) return;
  if (c->db) PQfinish(PG(c)); /* an open transaction is rolled back by the server */
  c->db = NULL;
  stmt_cache_clear(m);
  free(m->target);
  free(m);
  c->impl = NULL;
}

/* Before a request outside a transaction: a connection the server closed
 * (restart, pg_terminate_backend, idle timeout) has its last words (a FATAL
 * message) and then end of input waiting on the socket; an idle healthy one
 * has nothing. So: if the socket is readable, read until it is not, and
 * reconnect when the server has gone, before the request is sent: the
 * request runs on a live connection and nothing is sent twice. One poll()
 * per request when all is well. */
static int pg_ready(store_conn *c) {
  if (!c->db || PQstatus(PG(c)) != CONNECTION_OK) return reconnect(c);
  for (int i = 0; i < 8; i++) {
    struct pollfd p = {PQsocket(PG(c)), POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (PQconsumeInput(PG(c)) != 1 || PQstatus(PG(c)) != CONNECTION_OK) return reconnect(c);
    PGnotify *n;
    while ((n = PQnotifies(PG(c))) != NULL) PQfreemem(n);
  }
  return 0;
}

/* ---- statements -------------------------------------------------------------------- */

static unsigned hash_sql(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* "?N" -> "$N" outside quoted text. */
static int to_dollars(const char *sql, char *out, size_t outn) {
  size_t n = 0;
  char quote = 0;
  for (const char *p = sql; *p; p++) {
    char ch = *p;
    if (quote) { if (ch == quote) quote = 0; }
    else if (ch == '\'' || ch == '"') quote = ch;
    else if (ch == '?' && p[1] >= '0' && p[1] <= '9') ch = '$';
    if (n + 1 >= outn) return -1;
    out[n++] = ch;
  }
  out[n] = 0;
  return 0;
}

/* The name of the prepared statement for sql, preparing it once per
 * connection; NULL on error (c->err). */
static const char *prepared(store_conn *c, const char *sql, int nparams) {
  pg_impl *m = c->impl;
  unsigned h = hash_sql(sql) % STMT_CACHE;
  for (unsigned i = 0; i < STMT_CACHE; i++) {
    pslot *s = &m->stmts[(h + i) % STMT_CACHE];
    if (!s->sql) break;
    if (strcmp(s->sql, sql) == 0) return s->name;
  }
  if (m->nstmt >= STMT_CACHE * 3 / 4) {
    /* bounded by the schema; should it ever fill, forget them all */
    PGresult *r = PQexec(PG(c), "DEALLOCATE ALL");
    PQclear(r);
    stmt_cache_clear(m);
  }
  char text[SQL_MAX];
  if (to_dollars(sql, text, sizeof text) != 0) {
    store_err_set(&c->err, SE_INTERNAL, NULL, "store: statement too long");
    return NULL;
  }
  pslot *slot = NULL;
  for (unsigned i = 0;; i++) {
    slot = &m->stmts[(h + i) % STMT_CACHE];
    if (!slot->sql) break;
  }
  snprintf(slot->name, sizeof slot->name, "m%u", ++m->next);
  PGresult *res = PQprepare(PG(c), slot->name, text, nparams, NULL);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    pg_fail(c, res);
    PQclear(res);
    return NULL;
  }
  PQclear(res);
  if (!(slot->sql = strdup(sql))) {
    store_err_set(&c->err, SE_INTERNAL, NULL, "out of memory");
    return NULL;
  }
  m->nstmt++;
  return slot->name;
}

static int rows_next(store_rows *r) {
  if (r->i + 1 >= r->n) return 0;
  r->i++;
  return 1;
}
static int rows_is_null(store_rows *r, int col) { return PQgetisnull(r->p, (int)r->i, col); }
static long long rows_int(store_rows *r, int col) { return strtoll(PQgetvalue(r->p, (int)r->i, col), NULL, 10); }
static const char *rows_text(store_rows *r, int col, size_t *n) {
  if (n) *n = (size_t)PQgetlength(r->p, (int)r->i, col);
  return PQgetvalue(r->p, (int)r->i, col);
}
static void rows_done(store_rows *r) { PQclear(r->p); r->p = NULL; }
static const store_rows_ops pg_rows = {rows_next, rows_is_null, rows_int, rows_text, rows_done};

#define MAX_PARAMS 128

static int exec_params(store_conn *c, const char *sql, const store_val *v, int n, store_rows *out,
                       long long *changed, const char **vals, char (*ints)[24]);

/* Up to MAX_PARAMS parameters on the stack; a bulk insert's batch (up to
 * STORE_BULK_PARAMS) on the heap. */
static int exec_once(store_conn *c, const char *sql, const store_val *v, int n, store_rows *out,
                     long long *changed) {
  if (n <= MAX_PARAMS) {
    const char *vals[MAX_PARAMS];
    char ints[MAX_PARAMS][24];
    return exec_params(c, sql, v, n, out, changed, vals, ints);
  }
  if (n > STORE_BULK_PARAMS) { store_err_set(&c->err, SE_INTERNAL, NULL, "store: too many parameters"); return -1; }
  const char **vals = malloc((size_t)n * sizeof *vals);
  char (*ints)[24] = malloc((size_t)n * sizeof *ints);
  int rc = -1;
  if (!vals || !ints) store_err_set(&c->err, SE_INTERNAL, NULL, "out of memory");
  else rc = exec_params(c, sql, v, n, out, changed, vals, ints);
  free(vals);
  free(ints);
  return rc;
}

static int exec_params(store_conn *c, const char *sql, const store_val *v, int n, store_rows *out,
                       long long *changed, const char **vals, char (*ints)[24]) {
  for (int i = 0; i < n; i++) {
    if (v[i].kind == SV_NULL) vals[i] = NULL;
    else if (v[i].kind == SV_INT) { snprintf(ints[i], sizeof ints[i], "%lld", v[i].i); vals[i] = ints[i]; }
    else {
      /* text parameters end at NUL: a value holding one would be cut short
       * without a word, so it is refused */
      if (memchr(v[i].s, 0, v[i].n)) {
        store_err_set(&c->err, SE_REFUSED, NULL, "text values must not contain NUL bytes");
        return -1;
      }
      vals[i] = v[i].s;
    }
  }
  const char *name = prepared(c, sql, n);
  if (!name) return -1;
  PGresult *res = PQexecPrepared(PG(c), name, n, vals, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    pg_fail(c, res);
    PQclear(res);
    return -1;
  }
  if (out) {
    *out = (store_rows){&pg_rows, c, res, -1, PQntuples(res), PQnfields(res)};
    return 0;
  }
  if (changed) *changed = strtoll(PQcmdTuples(res), NULL, 10);
  PQclear(res);
  return 0;
}

/* A read outside a transaction that finds the connection gone is run once
 * more on a new one: it changed nothing, so nothing can happen twice. A
 * write is never repeated (it may have committed before the answer was
 * lost); it fails with unavailable. */
static int pg_exec(store_conn *c, const char *sql, const store_val *v, int n, store_rows *out,
                   long long *changed) {
  if (!c->db && (c->depth > 0 || reconnect(c) != 0)) {
    if (c->depth > 0) fail_unavailable(c, "no connection");
    return -1;
  }
  int rc = exec_once(c, sql, v, n, out, changed);
  if (rc != 0 && c->err.code == SE_UNAVAILABLE && c->depth == 0 && out &&
      PQstatus(PG(c)) == CONNECTION_BAD && reconnect(c) == 0)
    rc = exec_once(c, sql, v, n, out, changed);
  return rc;
}

static int run(store_conn *c, const char *sql) { return pg_exec(c, sql, NULL, 0, NULL, NULL); }

/* ---- transactions --------------------------------------------------------------- */

/* A transaction takes the writers' lock first: the one mcplink_meta row,
 * FOR UPDATE. Every instance's transactions then run one at a time, as
 * SQLite's BEGIN IMMEDIATE makes them, so read-then-write work (discovery,
 * classification.set, key rotation) never interleaves with another writer;
 * single statements outside transactions do not wait for it. The row lock
 * ends with the transaction, also when its connection or instance dies. */
static int pg_begin(store_conn *c) {
  char sql[48];
  if (c->depth > 0) {
    snprintf(sql, sizeof sql, "SAVEPOINT tx%d", c->depth);
    return run(c, sql);
  }
  if (run(c, "BEGIN") != 0) return -1;
  store_rows r;
  int newer = 0;
  if (pg_exec(c, "SELECT schema_version FROM mcplink_meta WHERE id = 1 FOR UPDATE", NULL, 0, &r, NULL) == 0) {
    if (r.ops->next(&r) == 1) newer = store_schema_newer(c, r.ops->get_int(&r, 0));
    r.ops->done(&r);
    if (!newer) return 0;
  }
  store_err keep = c->err;
  run(c, "ROLLBACK");
  c->err = keep;
  return -1;
}

static int pg_commit(store_conn *c) {
  char sql[48];
  if (c->depth > 0) {
    snprintf(sql, sizeof sql, "RELEASE SAVEPOINT tx%d", c->depth);
    return run(c, sql);
  }
  /* COMMIT of a transaction a failed statement aborted answers ROLLBACK
   * without an error: that is a failure here */
  PGresult *res = PQexec(PG(c), "COMMIT");
  int rc = 0;
  if (PQresultStatus(res) != PGRES_COMMAND_OK) rc = pg_fail(c, res);
  else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
    store_err_set(&c->err, SE_INTERNAL, NULL, "the transaction was rolled back: a statement in it failed");
    rc = -1;
  }
  PQclear(res);
  return rc;
}

static void pg_rollback(store_conn *c) {
  char sql[64];
  store_err keep = c->err;
  if (c->depth == 0) run(c, "ROLLBACK");
  else {
    snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT tx%d", c->depth);
    run(c, sql);
    snprintf(sql, sizeof sql, "RELEASE SAVEPOINT tx%d", c->depth);
    run(c, sql);
  }
  c->err = keep;
}

/* ---- migrations ---------------------------------------------------------------------- */

/* The schema version lives in a one-row table; its row is also the writers'
 * lock (pg_begin) and what serialises migrations: two instances opening a
 * fresh database at once migrate it once. */
#define META_CREATE \
  "CREATE TABLE mcplink_meta (id INTEGER PRIMARY KEY CHECK (id = 1), " \
  "schema_version INTEGER NOT NULL); INSERT INTO mcplink_meta VALUES (1, 0)"

/* Reads the version without writing anything: -1 no table yet, -2 error. */
static int read_version(PGconn *pg, const char *target, char *msg, size_t msgn) {
  PGresult *res = PQexec(pg, "SELECT schema_version FROM mcplink_meta WHERE id = 1");
  int v = -2;
  if (PQresultStatus(res) == PGRES_TUPLES_OK) v = PQntuples(res) ? atoi(PQgetvalue(res, 0, 0)) : 0;
  else {
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (st && strcmp(st, "42P01") == 0) v = -1;
    else scrub(target, PQerrorMessage(pg), msg, msgn);
  }
  PQclear(res);
  return v;
}

/* Runs sql (several statements allowed); state (may be NULL) gets the
 * SQLSTATE of a failure. */
static int simple(PGconn *pg, const char *sql, char state[8]) {
  PGresult *res = PQexec(pg, sql);
  ExecStatusType st = PQresultStatus(res);
  int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  if (state) {
    const char *f = ok ? NULL : PQresultErrorField(res, PG_DIAG_SQLSTATE);
    snprintf(state, 8, "%s", f ? f : "");
  }
  PQclear(res);
  return ok ? 0 : -1;
}

static int pg_migrate(PGconn *pg, const char *shown, const char *target, int step_to, char **out) {
  char msg[1600], why[400] = "";
  int latest = store_schema_latest();
  if (step_to <= 0 || step_to > latest) step_to = latest;
  int v = read_version(pg, target, why, sizeof why);
  if (v == -2) {
    snprintf(msg, sizeof msg, "database %s: cannot read the schema version: %s", shown, why);
    *out = strdup(msg);
    return MCPL_E_UNAVAILABLE;
  }
  if (v > latest) goto newer;
  if (v >= step_to) return MCPL_OK;
  if (v == -1) {
    char state[8] = "";
    /* two instances creating it at once: the loser sees a duplicate */
    if (simple(pg, "BEGIN", NULL) == 0 && simple(pg, META_CREATE, state) == 0) simple(pg, "COMMIT", NULL);
    else {
      int dup = !strcmp(state, "42P07") || !strcmp(state, "23505");
      scrub(target, PQerrorMessage(pg), why, sizeof why);
      simple(pg, "ROLLBACK", NULL);
      if (!dup) {
        snprintf(msg, sizeof msg, "database %s: cannot create the schema table: %s", shown, why);
        *out = strdup(msg);
        return MCPL_E_INTERNAL;
      }
    }
  }
  if (simple(pg, "BEGIN", NULL) != 0) goto fail;
  /* the row lock: another migrator waits here, then finds the work done */
  PGresult *res = PQexec(pg, "SELECT schema_version FROM mcplink_meta WHERE id = 1 FOR UPDATE");
  if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) { PQclear(res); goto fail_rb; }
  v = atoi(PQgetvalue(res, 0, 0));
  PQclear(res);
  if (v > latest) { simple(pg, "ROLLBACK", NULL); goto newer; }
  for (; v < step_to; v++) {
    assert(store_migration("postgresql", v + 1));  /* step_to <= store_schema_latest() */
    if (simple(pg, store_migration("postgresql", v + 1), NULL) != 0) goto fail_rb;
    char set[80];
    snprintf(set, sizeof set, "UPDATE mcplink_meta SET schema_version = %d WHERE id = 1", v + 1);
    if (simple(pg, set, NULL) != 0) goto fail_rb;
  }
  if (simple(pg, "COMMIT", NULL) != 0) goto fail;
  return MCPL_OK;
fail_rb:
  scrub(target, PQerrorMessage(pg), why, sizeof why);
  simple(pg, "ROLLBACK", NULL);
  goto report;
fail:
  scrub(target, PQerrorMessage(pg), why, sizeof why);
report:
  snprintf(msg, sizeof msg, "database %s: migration %d failed, nothing was changed: %s", shown, v + 1, why);
  *out = strdup(msg);
  return PQstatus(pg) == CONNECTION_OK ? MCPL_E_INTERNAL : MCPL_E_UNAVAILABLE;
newer:
  snprintf(msg, sizeof msg, "database %s has schema version %d, newer than this mcplink supports "
           "(%d): upgrade mcplink; the database was not changed", shown, v, latest);
  *out = strdup(msg);
  return MCPL_E_INVALID_ARGUMENT;
}

/* Migrates the database at target up to step (latest when 0): engine open,
 * and the version-1 fixture of the tests. */
int store_pg_migrate(const char *target, int step, char **out) {
  char shown[1024], msg[1500], why[400], dl[512];
  *out = NULL;
  /* libpq is opened here, by the first engine on a PostgreSQL database */
  if (dynlib_pq_ready(dl, sizeof dl) != 0) {
    *out = strdup(dl);
    return MCPL_E_UNAVAILABLE;
  }
  store_redact(target, shown, sizeof shown);
  PGconn *pg = pg_open(target);
  if (!pg || PQstatus(pg) != CONNECTION_OK) {
    scrub(target, pg ? PQerrorMessage(pg) : "out of memory", why, sizeof why);
    snprintf(msg, sizeof msg, "cannot connect to database %s: %s", shown, why);
    *out = strdup(msg);
    PQfinish(pg);
    return MCPL_E_UNAVAILABLE;
  }
  int code = simple(pg, SESSION_SETUP, NULL) == 0 ? pg_migrate(pg, shown, target, step, out) : MCPL_E_UNAVAILABLE;
  if (code == MCPL_E_UNAVAILABLE && !*out) {
    scrub(target, PQerrorMessage(pg), why, sizeof why);
    snprintf(msg, sizeof msg, "database %s: %s", shown, why);
    *out = strdup(msg);
  }
  PQfinish(pg);
  return code;
}

static int pg_engine_open(mcpl_engine *e, const char *target, char **out) {
  *out = NULL;
  char *perr = NULL, why[512];
  if (dynlib_pq_ready(why, sizeof why) != 0) {
    mcpl_log(e, "error", "%s", why);
    *out = strdup(why);
    return MCPL_E_UNAVAILABLE;
  }
  PQconninfoOption *opts = PQconninfoParse(target, &perr);
  if (!opts) {
    char msg[600];
    scrub(target, perr ? perr : "out of memory", why, sizeof why);
    snprintf(msg, sizeof msg, "option db is not a valid PostgreSQL connection URI: %s", why);
    PQfreemem(perr);
    *out = strdup(msg);
    return MCPL_E_INVALID_ARGUMENT;
  }
  PQconninfoFree(opts);
  int code = store_pg_migrate(target, 0, out);
  if (code != MCPL_OK) mcpl_log(e, "error", "%s", *out ? *out : "cannot open the database");
  return code;
}

/* ---- dialect ------------------------------------------------------------------------- */

static int pg_resolve_actor(store_conn *c, const char *tenant, const char *user, store_rows *out) {
  store_val v[2] = {store_v_str(tenant), store_v_str(user)};
  return pg_exec(c, "SELECT t.id, u.id, u.role, "
                    "CASE WHEN (t.settings::jsonb -> 'mcp_enabled') IN ('false'::jsonb, '0'::jsonb) "
                    "THEN 0 ELSE 1 END, t.version, (SELECT n FROM store_versions WHERE name = 'settings'), "
                    "(SELECT schema_version FROM mcplink_meta WHERE id = 1) "
                    "FROM tenants t JOIN users u ON u.tenant_id = t.id WHERE t.name = ?1 AND u.name = ?2",
                 v, 2, out, NULL);
}

static int pg_schema_version(store_conn *c, int *version) {
  return store_schema_read(c, "SELECT schema_version FROM mcplink_meta WHERE id = 1", version);
}

const store_backend store_pg_backend = {
  .name = "postgresql",
  .engine_open = pg_engine_open,
  .connect = pg_connect,
  .disconnect = pg_disconnect,
  .ready = pg_ready,
  .exec = pg_exec,
  .begin = pg_begin,
  .commit = pg_commit,
  .rollback = pg_rollback,
  .select = store_sql_select,
  .insert = store_sql_insert,
  .insert_many = store_sql_insert_many,
  .update = store_sql_update,
  .remove = store_sql_remove,
  .query = store_sql_query,
  .resolve_actor = pg_resolve_actor,
  .setting_get = store_sql_setting_get,
  .setting_set = store_sql_setting_set,
  .lease_acquire = store_sql_lease_acquire,
  .lease_release = store_sql_lease_release,
  .schema_version = pg_schema_version,
};
