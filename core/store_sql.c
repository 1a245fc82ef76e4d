/* store_sql.c: the store's requests rendered as standard SQL with "?N"
 * parameters, shared by the backends (each runs it through its exec). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "store.h"

#define SQL_MAX 8192
#define MAX_BINDS 96

typedef struct {
  char s[SQL_MAX];
  size_t n;
  int overflow;
} sqlbuf;

typedef struct {
  store_val v[MAX_BINDS];
  int n;
  int overflow;
} binds;

static void sb_add(sqlbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sqlbuf *b, const char *fmt, ...) {
  if (b->overflow) return;
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= sizeof b->s - b->n) b->overflow = 1;
  else b->n += (size_t)w;
}

/* Buffers are large: only the header is cleared (no memset per request). */
static void sb_init(sqlbuf *b) {
  b->n = 0;
  b->overflow = 0;
  b->s[0] = 0;
}

/* Appends "?N" (no printf: a bulk insert writes hundreds per statement). */
static void sb_param(sqlbuf *b, int n) {
  char d[12];
  int k = 0;
  do { d[k++] = (char)('0' + n % 10); n /= 10; } while (n > 0 && k < (int)sizeof d);
  if (b->overflow || b->n + (size_t)k + 2 >= sizeof b->s) { b->overflow = 1; return; }
  b->s[b->n++] = '?';
  while (k > 0) b->s[b->n++] = d[--k];
  b->s[b->n] = 0;
}

static void sb_char(sqlbuf *b, char ch) {
  if (b->overflow || b->n + 2 >= sizeof b->s) { b->overflow = 1; return; }
  b->s[b->n++] = ch;
  b->s[b->n] = 0;
}

/* Adds a parameter; returns its number (?N). */
static int bind(binds *b, store_val v) {
  if (b->n >= MAX_BINDS) { b->overflow = 1; return MAX_BINDS; }
  b->v[b->n++] = v;
  return b->n;
}

void store_err_set(store_err *e, store_ecode code, const char *col, const char *fmt, ...) {
  e->code = code;
  snprintf(e->col, sizeof e->col, "%s", col ? col : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
}

static int run(store_conn *c, const sqlbuf *q, const binds *b, store_rows *out, long long *changed) {
  if (q->overflow || b->overflow) {
    store_err_set(&c->err, SE_INTERNAL, NULL, "store: statement too long");
    return -1;
  }
  return c->be->exec(c, q->s, b->v, b->n, out, changed);
}

static void where(sqlbuf *q, binds *b, const store_cond *w, int n) {
  for (int i = 0; i < n; i++) {
    const char *and = i ? " AND " : " WHERE ";
    const store_cond *k = &w[i];
    switch (k->op) {
    case SC_EQ:
      if (k->v.kind == SV_NULL) sb_add(q, "%s%s IS NULL", and, k->col);
      else sb_add(q, "%s%s = ?%d", and, k->col, bind(b, k->v));
      break;
    case SC_NOT_NULL:
      sb_add(q, "%s%s IS NOT NULL", and, k->col);
      break;
    case SC_PREFIX: {
      int len = bind(b, store_v_int((long long)k->v.n));
      sb_add(q, "%ssubstr(%s, 1, ?%d) = ?%d", and, k->col, len, bind(b, k->v));
      break;
    }
    case SC_SEQ_AFTER:
      sb_add(q, "%sseq > ?%d", and, bind(b, k->v));
      break;
    }
  }
}

int store_sql_select(store_conn *c, const store_select *s, store_rows *out) {
  sqlbuf q;
  sb_init(&q);
  binds b;
  b.n = b.overflow = 0;
  const store_table *t = s->t;
  switch (s->proj) {
  case SP_ROW: sb_add(&q, "SELECT %s%s", t->select_list, s->with_seq ? ",seq" : ""); break;
  case SP_COUNT: sb_add(&q, "SELECT count(*)"); break;
  case SP_EXISTS: sb_add(&q, "SELECT 1"); break;
  case SP_TENANT: sb_add(&q, "SELECT %s", t->scoped ? "tenant_id" : "NULL"); break;
  case SP_SEALED: sb_add(&q, "SELECT id,%s,%s", t->scoped ? "tenant_id" : "NULL", s->col); break;
  }
  sb_add(&q, " FROM %s", t->name);
  where(&q, &b, s->cond, s->ncond);
  if (s->ordered) sb_add(&q, " ORDER BY seq");
  if (s->limit > 0) sb_add(&q, " LIMIT ?%d", bind(&b, store_v_int(s->limit)));
  return run(c, &q, &b, out, NULL);
}

int store_sql_insert(store_conn *c, const store_table *t, const store_set *set, int n) {
  sqlbuf q, vals;
  sb_init(&q);
  sb_init(&vals);
  binds b;
  b.n = b.overflow = 0;
  sb_add(&q, "INSERT INTO %s (", t->name);
  for (int i = 0; i < n; i++) {
    sb_add(&q, "%s%s", i ? "," : "", set[i].col);
    sb_add(&vals, "%s?%d", i ? "," : "", bind(&b, set[i].v));
  }
  if (vals.overflow) q.overflow = 1;
  sb_add(&q, ") VALUES (%s)", vals.s);
  return run(c, &q, &b, NULL, NULL);
}

/* Many rows in one statement: "INSERT INTO t (cols) VALUES (...),(...)" for up
 * to STORE_BULK_PARAMS parameters, so a bulk insert costs one round trip (and
 * one prepared statement per batch size) instead of one per row. */
int store_sql_insert_many(store_conn *c, const store_table *t, const char *const *cols, int ncols,
                          const store_val *v, int nrows) {
  assert(ncols > 0 && ncols <= STORE_MAX_SET);
  int per = STORE_BULK_PARAMS / ncols;
  if (per < 1) per = 1;
  for (int done = 0; done < nrows; done += per) {
    int k = nrows - done < per ? nrows - done : per;
    sqlbuf q;
    sb_init(&q);
    sb_add(&q, "INSERT INTO %s (", t->name);
    for (int i = 0; i < ncols; i++) sb_add(&q, "%s%s", i ? "," : "", cols[i]);
    sb_add(&q, ") VALUES ");
    for (int r = 0, p = 1; r < k; r++) {
      if (r) sb_char(&q, ',');
      sb_char(&q, '(');
      for (int i = 0; i < ncols; i++, p++) {
        if (i) sb_char(&q, ',');
        sb_param(&q, p);
      }
      sb_char(&q, ')');
    }
    if (q.overflow) {
      store_err_set(&c->err, SE_INTERNAL, NULL, "store: statement too long");
      return -1;
    }
    if (c->be->exec(c, q.s, v + (size_t)done * (size_t)ncols, k * ncols, NULL, NULL) != 0) return -1;
  }
  return 0;
}

int store_sql_update(store_conn *c, const store_table *t, const store_cond *w, int nw,
                     const store_set *set, int ns, long long *changed) {
  sqlbuf q;
  sb_init(&q);
  binds b;
  b.n = b.overflow = 0;
  sb_add(&q, "UPDATE %s SET ", t->name);
  for (int i = 0; i < ns; i++) sb_add(&q, "%s%s = ?%d", i ? ", " : "", set[i].col, bind(&b, set[i].v));
  where(&q, &b, w, nw);
  return run(c, &q, &b, NULL, changed);
}

int store_sql_remove(store_conn *c, const store_table *t, const store_cond *w, int nw, long long *changed) {
  sqlbuf q;
  sb_init(&q);
  binds b;
  b.n = b.overflow = 0;
  sb_add(&q, "DELETE FROM %s", t->name);
  where(&q, &b, w, nw);
  return run(c, &q, &b, NULL, changed);
}

/* The tenant condition's "?T" becomes the parameter after the query's own,
 * so the numbers have no gaps (PostgreSQL infers every parameter's type). */
int store_sql_query(store_conn *c, const store_named *nq, const char *const *params,
                    const char *tenant_id, store_rows *out) {
  sqlbuf q;
  sb_init(&q);
  binds b;
  b.n = b.overflow = 0;
  for (int i = 0; i < STORE_QMAX_PARAMS && nq->params[i]; i++) bind(&b, store_v_str(params[i]));
  sb_add(&q, "%s", nq->sql);
  if (tenant_id) {
    int tn = bind(&b, store_v_str(tenant_id));
    for (const char *p = nq->tenant_cond; *p; p++) {
      if (p[0] == '?' && p[1] == 'T') { sb_add(&q, "?%d", tn); p++; }
      else sb_add(&q, "%c", *p);
    }
  }
  sb_add(&q, "%s", nq->order);
  return run(c, &q, &b, out, NULL);
}

int store_sql_setting_get(store_conn *c, const char *key, store_rows *out) {
  store_val v = store_v_str(key);
  return c->be->exec(c, "SELECT value FROM settings WHERE key = ?1", &v, 1, out, NULL);
}

int store_sql_setting_set(store_conn *c, const char *key, const char *json, long long now) {
  store_val v[3] = {store_v_str(key), store_v_str(json), store_v_int(now)};
  if (!json) return c->be->exec(c, "DELETE FROM settings WHERE key = ?1", v, 1, NULL, NULL);
  return c->be->exec(c, "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                        "updated_at = excluded.updated_at", v, 3, NULL, NULL);
}

/* One statement takes a free or expired lease, or renews the holder's own:
 * the conditional upsert is atomic in both databases, so two instances never
 * both see "taken". */
int store_sql_lease_acquire(store_conn *c, const char *key, const char *holder, long long now,
                            long long ttl_ms, int *got) {
  store_val v[4] = {store_v_str(key), store_v_str(holder), store_v_int(now + ttl_ms), store_v_int(now)};
  long long n = 0;
  int rc = c->be->exec(c, "INSERT INTO leases (key, holder, expires_at) VALUES (?1, ?2, ?3) "
                          "ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, "
                          "expires_at = excluded.expires_at "
                          "WHERE leases.expires_at <= ?4 OR leases.holder = excluded.holder",
                       v, 4, NULL, &n);
  *got = rc == 0 && n > 0;
  return rc;
}

int store_sql_lease_release(store_conn *c, const char *key, const char *holder) {
  store_val v[2] = {store_v_str(key), store_v_str(holder)};
  return c->be->exec(c, "DELETE FROM leases WHERE key = ?1 AND holder = ?2", v, 2, NULL, NULL);
}
