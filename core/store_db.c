/* store_db.c: SQLite connections (one per engine Lua state), the prepared
 * statement cache, engine-open migration and SQLite error mapping. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <lauxlib.h>
#include "store.h"

#define BUSY_TIMEOUT_MS 5000
#define CONN_KEY "mcpl.store.conn"
#define CONN_MT "mcpl.store.conn_mt"

long long store_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- engine open ---------------------------------------------------------- */

static int bad_path(const char *p) {
  return !p || !*p || p[0] == ':' || strncmp(p, "file:", 5) == 0;
}

int store_engine_init(mcpl_engine *e, char **err) {
  const char *path = mcpl_engine_opt(e, "db");
  store_schema_init();
  if (!path) return 0; /* no database: store calls raise, the rest works */
  if (bad_path(path)) {
    *err = mcpl_json_error("invalid_argument", "option db must be a file path", "db");
    return -1;
  }
  /* Create the file ourselves so it starts private (SQLite gives its -wal
   * and -shm files the database file's mode). */
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    char msg[1024];
    snprintf(msg, sizeof msg, "cannot open database '%s': %s", path, strerror(errno));
    *err = mcpl_json_error("invalid_argument", msg, "db");
    return -1;
  }
  close(fd);
  sqlite3 *db = NULL;
  char *merr = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "cannot open database '%s': %s", path, db ? sqlite3_errmsg(db) : "?");
    *err = mcpl_json_error("internal", msg, "db");
    sqlite3_close(db);
    return -1;
  }
  sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
  int code = store_migrate(db, 0, &merr);
  if (code == MCPL_OK && sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK) {
    merr = strdup("cannot switch the database to WAL mode");
    code = MCPL_E_INTERNAL;
  }
  sqlite3_close(db);
  if (code != MCPL_OK) {
    char msg[1200];
    snprintf(msg, sizeof msg, "database '%s': %s", path, merr ? merr : "cannot open");
    mcpl_log(e, "error", "%s", msg);
    *err = mcpl_json_error(mcpl_code_name(code), msg, "db");
    free(merr);
    return -1;
  }
  return 0;
}

void store_engine_fini(mcpl_engine *e) { (void)e; }

/* ---- connections ----------------------------------------------------------- */

int store_conn_open(store_conn *c, mcpl_engine *e, const char *path, char **err) {
  memset(c, 0, sizeof *c);
  c->e = e;
  int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) goto fail;
  sqlite3_extended_result_codes(c->db, 1);
  sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
  /* synchronous=FULL: an acknowledged write survives power loss, not just
   * a crash; secure_delete: freed pages are zeroed, not left readable. */
  rc = sqlite3_exec(c->db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; "
                           "PRAGMA secure_delete=ON; PRAGMA trusted_schema=OFF", NULL, NULL, NULL);
  if (rc != SQLITE_OK) goto fail;
  return 0;
fail:
  if (err) {
    char msg[1024];
    snprintf(msg, sizeof msg, "cannot open database '%s': %s", path, c->db ? sqlite3_errmsg(c->db) : "?");
    *err = strdup(msg);
  }
  sqlite3_close(c->db);
  c->db = NULL;
  return -1;
}

static void cache_clear(store_conn *c) {
  for (int i = 0; i < STORE_STMT_CACHE; i++) {
    if (c->stmts[i].st) sqlite3_finalize(c->stmts[i].st);
    free(c->stmts[i].sql);
    c->stmts[i].st = NULL;
    c->stmts[i].sql = NULL;
  }
  c->nstmt = 0;
}

void store_conn_close(store_conn *c) {
  if (!c->db) return;
  cache_clear(c);
  sqlite3_close_v2(c->db); /* an open transaction is rolled back */
  c->db = NULL;
}

static unsigned hash_sql(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

sqlite3_stmt *store_prepare(store_conn *c, const char *sql) {
  unsigned h = hash_sql(sql) % STORE_STMT_CACHE;
  for (unsigned i = 0; i < STORE_STMT_CACHE; i++) {
    store_stmt_slot *s = &c->stmts[(h + i) % STORE_STMT_CACHE];
    if (!s->sql) break;
    if (strcmp(s->sql, sql) == 0) {
      sqlite3_reset(s->st);
      sqlite3_clear_bindings(s->st);
      return s->st;
    }
  }
  /* Statements are built from the schema's fixed names, so the set is
   * bounded; still, never let the cache fill up: start over. */
  if (c->nstmt >= STORE_STMT_CACHE * 3 / 4) cache_clear(c);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) return NULL;
  char *copy = strdup(sql);
  if (!copy) { sqlite3_finalize(st); return NULL; }
  for (unsigned i = 0;; i++) {
    store_stmt_slot *s = &c->stmts[(h + i) % STORE_STMT_CACHE];
    if (!s->sql) { s->sql = copy; s->st = st; c->nstmt++; break; }
  }
  return st;
}

int store_exec(store_conn *c, const char *sql) {
  sqlite3_stmt *st = store_prepare(c, sql);
  if (!st) return sqlite3_extended_errcode(c->db);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int conn_gc(lua_State *L) {
  store_conn *c = luaL_checkudata(L, 1, CONN_MT);
  store_conn_close(c);
  return 0;
}

store_conn *store_conn_of(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, CONN_KEY);
  store_conn *c = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (c && c->db) return c;
  mcpl_engine *e = mcpl_engine_of(L);
  const char *path = e ? mcpl_engine_opt(e, "db") : NULL;
  if (!path || bad_path(path))
    mcpl_lua_error(L, "internal", "no database configured (engine option db)");
  c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  if (luaL_newmetatable(L, CONN_MT)) {
    lua_pushcfunction(L, conn_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  char *err = NULL;
  if (store_conn_open(c, e, path, &err) != 0) {
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", err ? err : "cannot open database");
    free(err);
    mcpl_lua_error(L, "internal", "%s", msg);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, CONN_KEY);
  return c;
}

/* ---- errors ------------------------------------------------------------------ */

static const char *article(const char *noun) {
  return strchr("aeiouAEIOU", noun[0]) ? "an" : "a";
}

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

int store_raise_sqlite(lua_State *L, store_conn *c, sqlite3_stmt *st, int rc,
                       const store_table *t, int rowidx, int deleting) {
  char msg[512], col[64];
  snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(c->db));
  if (st) sqlite3_reset(st);
  const char *noun = t ? t->noun : "record";
  /* ON DELETE RESTRICT reports through the trigger code; the text is stable */
  if (strcmp(msg, "FOREIGN KEY constraint failed") == 0) rc = SQLITE_CONSTRAINT_FOREIGNKEY;
  switch (rc) {
  case SQLITE_CONSTRAINT_UNIQUE:
  case SQLITE_CONSTRAINT_PRIMARYKEY: {
    conflict_column(msg, col, sizeof col);
    const char *v = NULL;
    if (rowidx && col[0]) {
      lua_getfield(L, rowidx, col);
      if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) v = lua_tostring(L, -1);
    }
    if (v && strcmp(col, "name") == 0)
      mcpl_push_error(L, "conflict", "%s %s named '%.200s' already exists", article(noun), noun, v);
    else if (v)
      mcpl_push_error(L, "conflict", "%s %s with %s '%.200s' already exists", article(noun), noun, col, v);
    else
      mcpl_push_error(L, "conflict", "%s %s with this %s already exists", article(noun), noun,
                      col[0] ? col : "value");
    if (col[0]) { lua_pushstring(L, col); lua_setfield(L, -2, "field"); }
    return lua_error(L);
  }
  case SQLITE_CONSTRAINT_NOTNULL: {
    const char *dot = strrchr(msg, '.');
    snprintf(col, sizeof col, "%s", dot ? dot + 1 : "?");
    mcpl_push_error(L, "invalid_argument", "'%s' is required", col);
    lua_pushstring(L, col);
    lua_setfield(L, -2, "field");
    return lua_error(L);
  }
  case SQLITE_CONSTRAINT_CHECK: {
    const char *p = strstr(msg, "failed: ");
    snprintf(col, sizeof col, "%s", p ? p + 8 : "?");
    mcpl_push_error(L, "invalid_argument", "'%s' has a value that is not allowed", col);
    lua_pushstring(L, col);
    lua_setfield(L, -2, "field");
    return lua_error(L);
  }
  case SQLITE_CONSTRAINT_FOREIGNKEY:
    if (deleting) return mcpl_lua_error(L, "conflict", "this %s is still in use by other records", noun);
    return mcpl_lua_error(L, "invalid_argument", "a record this %s refers to does not exist", noun);
  case SQLITE_CONSTRAINT_TRIGGER:
    return mcpl_lua_error(L, "invalid_argument", "%s", msg);
  case SQLITE_BUSY:
  case SQLITE_BUSY_SNAPSHOT:
  case SQLITE_BUSY_RECOVERY:
  case SQLITE_LOCKED:
    return mcpl_lua_error(L, "timeout", "the database is busy; try again");
  default:
    mcpl_log(c->e, "error", "database error %d: %s", rc, msg);
    return mcpl_lua_error(L, "internal", "database error: %s", msg);
  }
}
