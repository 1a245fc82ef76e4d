/* engine_bench.c: the engine side of the benchmarks, through the public C API (and the CLI):
 * tool.call sequential and threaded, discovery with persistence, policy and secret costs. */
/* Usage (each mode in a fresh process, so peak RSS belongs to that mode alone):
 *   engine_bench call URL [--threads T] [--n N] [--ca F] [--api-key K] [--label L] [--db URI]
 *   engine_bench discover URL [--ca F] [--label L] [--reps R] [--expect N]  (N: tools the server lists;
 *     LABEL_changed: the URL saved again with ?rev=7, where the fixture changed tool 7 (N > 7);
 *     on SQLite, LABEL_persist_floor: the same rows written again by SQLite alone)
 *   engine_bench cli URL --bin MCPLINK [--n N] [--ca F] [--api-key K] [--label L]
 *   engine_bench policy [--n N] [--label L]
 *   engine_bench secret [--n N] [--label L]
 * Every run uses a new temporary SQLite database (or --db URI: a new, empty PostgreSQL
 * database) with the repository's policies (policies/, run from the top of the tree), the
 * default audit, and an API-key server as the spec's flow sets it up.
 * Result lines: "@ LABEL key=value ..." (see bench/run.sh). */
#include <ftw.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <sqlite3.h>
#include "bench_util.h"
#include "engine.h"
#include "mcplink.h"

extern char **environ;

typedef struct {
  const char *url, *ca, *key, *label, *bin, *db;
  int threads, n, reps, expect;
} eb_opts;

static char eb_dir[] = "/tmp/mcplink-bench-XXXXXX", eb_db[160], eb_keyf[160];
static const mcpl_actor eb_sys = {NULL, NULL, 1}, eb_ada = {"bench", "ada", 0}, eb_mo = {"bench", "mo", 0};

static char *eb_must(mcpl_engine *e, const mcpl_actor *a, const char *op, const char *args) {
  char *res = NULL;
  if (mcpl_op(e, a, op, args, &res) != MCPL_OK) {
    fprintf(stderr, "engine_bench: %s failed: %s\n", op, res);
    exit(1);
  }
  return res;
}

/* the string value of the first "key":"..." in json */
static void eb_field(const char *json, const char *key, char *out, size_t n) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char *p = strstr(json, pat);
  if (!p) { fprintf(stderr, "engine_bench: no %s in %.300s\n", key, json); exit(1); }
  p += strlen(pat);
  size_t i = 0;
  while (p[i] && p[i] != '"' && i + 1 < n) { out[i] = p[i]; i++; }
  out[i] = 0;
}

/* the first id with this prefix ("ast_", "srv_") in json */
static void eb_id(const char *json, const char *prefix, char *out, size_t n) {
  char pat[32];
  snprintf(pat, sizeof pat, "\"id\":\"%s", prefix);
  const char *p = strstr(json, pat);
  if (!p) { fprintf(stderr, "engine_bench: no %s id in %.300s\n", prefix, json); exit(1); }
  eb_field(p, "id", out, n);
}

static int eb_rm(const char *p, const struct stat *s, int f, struct FTW *w) {
  (void)s; (void)f; (void)w;
  return remove(p);
}

static void eb_cleanup(void) { nftw(eb_dir, eb_rm, 8, FTW_DEPTH | FTW_PHYS); }

static mcpl_engine *eb_open(const eb_opts *o, int pool) {
  if (!eb_db[0]) {
    if (!mkdtemp(eb_dir)) { perror("mkdtemp"); exit(1); }
    atexit(eb_cleanup);
    snprintf(eb_db, sizeof eb_db, "%s/b.db", eb_dir);
    snprintf(eb_keyf, sizeof eb_keyf, "%s/b.key", eb_dir);
  }
  mcpl_options *op = mcpl_options_new();
  mcpl_options_set(op, "db", o->db ? o->db : eb_db);
  mcpl_options_set(op, "key_file", eb_keyf);
  mcpl_options_set(op, "policies", "policies");
  if (o->ca) mcpl_options_set(op, "ca_file", o->ca);
  if (pool > 0) {
    char p[16];
    snprintf(p, sizeof p, "%d", pool);
    mcpl_options_set(op, "pool_size", p);
  }
  char *err = NULL;
  mcpl_engine *e = mcpl_open(op, &err);
  mcpl_options_free(op);
  if (!e) { fprintf(stderr, "engine_bench: open: %s\n", err); exit(1); }
  return e;
}

/* The spec's flow: tenant, admin and member, an API-key server on URL (saving it discovers),
 * enabled and attached to an assistant. Fills the server and assistant ids. */
static void eb_setup(mcpl_engine *e, const eb_opts *o, char *sid, char *aid) {
  char args[1024];
  mcpl_free(eb_must(e, &eb_sys, "tenant.create", "{\"name\":\"bench\"}"));
  /* the fixtures listen on 127.0.0.1 (and plain http for the HTTP rows) */
  mcpl_free(eb_must(e, &eb_sys, "settings.set",
                    o->url && strncmp(o->url, "http:", 5) == 0 ? "{\"allow_private_urls\":true,\"allow_http\":true}"
                                                     : "{\"allow_private_urls\":true}"));
  mcpl_free(eb_must(e, &eb_sys, "user.create", "{\"tenant\":\"bench\",\"name\":\"ada\",\"role\":\"admin\"}"));
  mcpl_free(eb_must(e, &eb_sys, "user.create", "{\"tenant\":\"bench\",\"name\":\"mo\",\"role\":\"member\"}"));
  /* a space with a classification, so every call also runs the classification check */
  mcpl_free(eb_must(e, &eb_ada, "classification.set", "{\"name\":\"Internal\",\"level\":1}"));
  mcpl_free(eb_must(e, &eb_ada, "space.create", "{\"name\":\"Bench\",\"classification\":\"Internal\"}"));
  char *r = eb_must(e, &eb_ada, "server.create", "{\"name\":\"bench server\"}");
  eb_id(r, "srv_", sid, 64);
  mcpl_free(r);
  if (!o->url) return;
  if (o->key)
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"url\":\"%s\",\"auth_type\":\"api_key\",\"api_key\":\"%s\","
             "\"classification\":\"Internal\"}", sid, o->url, o->key);
  else
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"url\":\"%s\",\"classification\":\"Internal\"}", sid, o->url);
  r = eb_must(e, &eb_ada, "server.update", args);
  if (!strstr(r, "\"capabilities_status\":\"ok\"")) { fprintf(stderr, "engine_bench: discovery failed: %.500s\n", r); exit(1); }
  mcpl_free(r);
  snprintf(args, sizeof args, "{\"server\":\"%s\"}", sid);
  mcpl_free(eb_must(e, &eb_ada, "tool.enable", args));
  r = eb_must(e, &eb_ada, "assistant.create", "{\"name\":\"bench bot\",\"space\":\"Bench\"}");
  eb_id(r, "ast_", aid, 64);
  mcpl_free(r);
  snprintf(args, sizeof args, "{\"assistant\":\"%s\",\"server\":\"%s\"}", aid, sid);
  mcpl_free(eb_must(e, &eb_ada, "assistant.attach", args));
}

/* ---- tool.call ----------------------------------------------------------------- */

typedef struct {
  mcpl_engine *e;
  const char *args;
  double *lat;
  int n;
} eb_worker;

static void eb_call_once(mcpl_engine *e, const char *args) {
  char *res = NULL;
  int rc = mcpl_op(e, &eb_mo, "tool.call", args, &res);
  if (rc != MCPL_OK || !strstr(res, "\"text\":\"hello\"")) {
    fprintf(stderr, "engine_bench: tool.call: %.300s\n", res);
    exit(1);
  }
  mcpl_free(res);
}

static void *eb_work(void *arg) {
  eb_worker *w = arg;
  for (int i = 0; i < w->n; i++) {
    double s = bu_now_us();
    eb_call_once(w->e, w->args);
    w->lat[i] = bu_now_us() - s;
  }
  return NULL;
}

/* the engine-unique name assistant.tools gives the server's echo tool: the "name" member of
 * the same entry as "tool":"echo" (the entry object around that member) */
static void eb_tool_name(mcpl_engine *e, const char *aid, char *name) {
  char args[256];
  snprintf(args, sizeof args, "{\"assistant\":\"%s\"}", aid);
  char *r = eb_must(e, &eb_mo, "assistant.tools", args);
  const char *p = strstr(r, "\"tool\":\"echo\"");
  if (!p) { fprintf(stderr, "engine_bench: no echo tool: %.300s\n", r); exit(1); }
  const char *start = p;
  for (int depth = 0; start > r; start--) {
    if (*start == '}') depth++;
    else if (*start == '{' && depth-- == 0) break;
  }
  /* the entry's own "name": the one whose value ends in "echo" (the server's is "bench server") */
  const char *nm = NULL;
  for (const char *q = strstr(start, "\"name\":\""); q; q = strstr(q + 8, "\"name\":\"")) {
    const char *v = q + 8, *end = strchr(v, '"');
    if (end && end - v >= 4 && strncmp(end - 4, "echo", 4) == 0) { nm = q; break; }
  }
  if (!nm) { fprintf(stderr, "engine_bench: no name for echo: %.300s\n", start); exit(1); }
  eb_field(nm, "name", name, 128);
  mcpl_free(r);
}

static int eb_call(const eb_opts *o) {
  mcpl_engine *e = eb_open(o, o->threads > 8 ? o->threads : 0);
  char sid[64], aid[64], tool[128], args[512];
  eb_setup(e, o, sid, aid);
  eb_tool_name(e, aid, tool);
  snprintf(args, sizeof args, "{\"assistant\":\"%s\",\"tool\":\"%s\",\"arguments\":{\"text\":\"hello\"}}", aid, tool);
  int T = o->threads < 1 ? 1 : o->threads, per = o->n / T;
  if (per < 5) per = 5;
  /* warm every Lua state of the pool: connections, sessions, prepared statements */
  {
    eb_worker w[64];
    pthread_t th[64];
    for (int t = 0; t < T && t < 64; t++) {
      w[t] = (eb_worker){e, args, malloc(sizeof(double) * (size_t)(per / 10 + 5)), per / 10 + 5};
      pthread_create(&th[t], NULL, eb_work, &w[t]);
    }
    for (int t = 0; t < T && t < 64; t++) { pthread_join(th[t], NULL); free(w[t].lat); }
  }
  double *lat = malloc(sizeof(double) * (size_t)(per * T));
  eb_worker w[64];
  pthread_t th[64];
  bu_cpu c0 = bu_cpu_now();
  double t0 = bu_now_us();
  for (int t = 0; t < T && t < 64; t++) {
    w[t] = (eb_worker){e, args, lat + (size_t)t * (size_t)per, per};
    if (T == 1) eb_work(&w[t]);
    else pthread_create(&th[t], NULL, eb_work, &w[t]);
  }
  if (T > 1) for (int t = 0; t < T && t < 64; t++) pthread_join(th[t], NULL);
  double wall = bu_now_us() - t0;
  bu_report_calls(o->label, lat, per * T, wall, bu_cpu_since(c0));
  free(lat);
  mcpl_close(e);
  return 0;
}

/* ---- discovery + persistence ----------------------------------------------------- */

static void eb_sq(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "engine_bench: %s: %s\n", sql, err ? err : "?");
    exit(1);
  }
}

/* The persistence floor: the rows the engine stored for the server's
 * capabilities (its lists, and rows of tools awaiting approval), written
 * again by SQLite alone (a prepared INSERT per table, one transaction) into
 * a copy of the engine's database without them (its schema, indexes,
 * triggers, WAL and connection settings), so the report can say how much
 * of a discovery is storing them at all. */
static const char *const eb_cap_tables[] = {"capability_lists", "capabilities"};
#define EB_NTABLES 2
typedef struct { sqlite3_value **v; size_t n, cap; int ncols; } eb_rows;

static void eb_persist_floor(const eb_opts *o, const char *sid) {
  sqlite3 *db = NULL;
  char sql[512];
  eb_rows rows[EB_NTABLES] = {{0}};
  size_t total = 0;
  if (sqlite3_open_v2(eb_db, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    fprintf(stderr, "engine_bench: cannot open %s\n", eb_db);
    exit(1);
  }
  sqlite3_stmt *st;
  for (int t = 0; t < EB_NTABLES; t++) {
    eb_rows *r = &rows[t];
    snprintf(sql, sizeof sql, "SELECT * FROM %s WHERE server_id = ?1 ORDER BY seq", eb_cap_tables[t]);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) { fprintf(stderr, "engine_bench: %s\n", sqlite3_errmsg(db)); exit(1); }
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    r->ncols = sqlite3_column_count(st);
    while (sqlite3_step(st) == SQLITE_ROW) {
      if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = realloc(r->v, r->cap * (size_t)r->ncols * sizeof *r->v);
        if (!r->v) { perror("realloc"); exit(1); }
      }
      for (int i = 0; i < r->ncols; i++) r->v[r->n * (size_t)r->ncols + (size_t)i] = sqlite3_value_dup(sqlite3_column_value(st, i));
      r->n++;
    }
    sqlite3_finalize(st);
    total += r->n;
  }
  /* a compact copy without them (as the engine's file was before its first
   * discovery: no free pages), written to by a connection of its own */
  eb_sq(db, "BEGIN IMMEDIATE");
  for (int t = 0; t < EB_NTABLES; t++) {
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE server_id = '%s'", eb_cap_tables[t], sid);
    eb_sq(db, sql);
  }
  eb_sq(db, "COMMIT");
  char floor_db[200];
  snprintf(floor_db, sizeof floor_db, "%s/floor.db", eb_dir);
  snprintf(sql, sizeof sql, "VACUUM INTO '%s'", floor_db);
  eb_sq(db, sql);
  sqlite3_close(db);
  if (sqlite3_open_v2(floor_db, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    fprintf(stderr, "engine_bench: cannot open %s\n", floor_db);
    exit(1);
  }
  sqlite3_busy_timeout(db, 5000);
  eb_sq(db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON; "
            "PRAGMA trusted_schema=OFF; PRAGMA temp_store=MEMORY");
  bu_cpu c0 = bu_cpu_now();
  double t0 = bu_now_us();
  eb_sq(db, "BEGIN IMMEDIATE");
  for (int t = 0; t < EB_NTABLES; t++) {
    eb_rows *r = &rows[t];
    if (r->n == 0) continue;
    int len = snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (", eb_cap_tables[t]);
    for (int i = 0; i < r->ncols && len < (int)sizeof sql - 4; i++) len += snprintf(sql + len, sizeof sql - (size_t)len, "%s?", i ? "," : "");
    snprintf(sql + len, sizeof sql - (size_t)len, ")");
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) { fprintf(stderr, "engine_bench: %s\n", sqlite3_errmsg(db)); exit(1); }
    for (size_t k = 0; k < r->n; k++) {
      for (int i = 0; i < r->ncols; i++) sqlite3_bind_value(st, i + 1, r->v[k * (size_t)r->ncols + (size_t)i]);
      if (sqlite3_step(st) != SQLITE_DONE) { fprintf(stderr, "engine_bench: insert: %s\n", sqlite3_errmsg(db)); exit(1); }
      sqlite3_reset(st);
    }
    sqlite3_finalize(st);
  }
  eb_sq(db, "COMMIT");
  double wall = bu_now_us() - t0, cpu = bu_cpu_since(c0);
  printf("@ %s_persist_floor wall_ms=%.2f cpu_ms=%.2f rows=%zu\n", o->label, wall / 1000, cpu / 1000, total);
  for (int t = 0; t < EB_NTABLES; t++) {
    for (size_t i = 0; i < rows[t].n * (size_t)rows[t].ncols; i++) sqlite3_value_free(rows[t].v[i]);
    free(rows[t].v);
  }
  sqlite3_close(db);
}

static int eb_discover(const eb_opts *o) {
  mcpl_engine *e = eb_open(o, 0);
  char sid[64], args[1024];
  eb_opts o2 = *o;
  o2.url = NULL; /* create the record only: the timed update is the first discovery */
  eb_setup(e, &o2, sid, NULL);
  if (o->key)
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"url\":\"%s\",\"auth_type\":\"api_key\",\"api_key\":\"%s\"}", sid, o->url, o->key);
  else
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"url\":\"%s\"}", sid, o->url);
  bu_cpu c0 = bu_cpu_now();
  double t0 = bu_now_us();
  char *r = eb_must(e, &eb_ada, "server.update", args);
  double wall = bu_now_us() - t0, cpu = bu_cpu_since(c0);
  if (!strstr(r, "\"capabilities_status\":\"ok\"")) { fprintf(stderr, "engine_bench: discovery failed: %.500s\n", r); exit(1); }
  mcpl_free(r);
  printf("@ %s_first wall_ms=%.2f cpu_ms=%.2f rss_kb=%ld\n", o->label, wall / 1000, cpu / 1000, bu_rss_kb());
  snprintf(args, sizeof args, "{\"id\":\"%s\"}", sid);
  for (int i = 0; i < (o->reps < 1 ? 1 : o->reps); i++) {
    c0 = bu_cpu_now();
    t0 = bu_now_us();
    r = eb_must(e, &eb_ada, "server.refresh", args);
    wall = bu_now_us() - t0;
    cpu = bu_cpu_since(c0);
    mcpl_free(r);
    printf("@ %s_refresh wall_ms=%.2f cpu_ms=%.2f rss_kb=%ld\n", o->label, wall / 1000, cpu / 1000, bu_rss_kb());
  }
  /* the server changed one tool's description (the fixture's ?rev=N): the
   * URL saved again discovers it, diffs the whole list against the stored
   * one and holds the changed tool for approval */
  int changed = o->expect > 7;
  if (changed) {
    char uargs[1024];
    snprintf(uargs, sizeof uargs, "{\"id\":\"%s\",\"url\":\"%s%srev=7\"}", sid, o->url, strchr(o->url, '?') ? "&" : "?");
    c0 = bu_cpu_now();
    t0 = bu_now_us();
    r = eb_must(e, &eb_ada, "server.update", uargs);
    wall = bu_now_us() - t0;
    cpu = bu_cpu_since(c0);
    if (!strstr(r, "\"pending\":[\"tool_00007\"]")) { fprintf(stderr, "engine_bench: the changed tool is not pending: %.500s\n", r); exit(1); }
    mcpl_free(r);
    printf("@ %s_changed wall_ms=%.2f cpu_ms=%.2f rss_kb=%ld\n", o->label, wall / 1000, cpu / 1000, bu_rss_kb());
  }
  /* how many tools are stored (each approved once, the changed one pending):
   * proves the whole list was persisted; with --expect a wrong count fails
   * the run */
  r = eb_must(e, &eb_ada, "server.capabilities", args);
  int stored = 0;
  for (const char *p = strstr(r, "\"status\":\"approved\""); p; p = strstr(p + 1, "\"status\":\"approved\"")) stored++;
  for (const char *p = strstr(r, "\"status\":\"pending\""); p; p = strstr(p + 1, "\"status\":\"pending\"")) stored++;
  mcpl_free(r);
  printf("# %s stored: %d tools\n", o->label, stored);
  if (o->expect > 0 && stored != o->expect) {
    fprintf(stderr, "engine_bench: %d tools stored, the server lists %d\n", stored, o->expect);
    exit(1);
  }
  fflush(stdout);
  mcpl_close(e);
  if (!o->db) eb_persist_floor(o, sid);
  return 0;
}

/* ---- CLI one process per call ------------------------------------------------------ */

/* eb_spawn_to: runs argv with its stdout in the file out; its wall time in µs, its CPU and peak RSS */
static double eb_spawn_to(const char *const *argv, const char *out, double *cpu_us, long *rss_kb) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid;
  double t0 = bu_now_us();
  if (posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) != 0) { perror("posix_spawn"); exit(1); }
  int st;
  struct rusage ru;
  if (wait4(pid, &st, 0, &ru) < 0) { perror("wait4"); exit(1); }
  double wall = bu_now_us() - t0;
  posix_spawn_file_actions_destroy(&fa);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "engine_bench: a CLI run failed (%s)\n", argv[0]); exit(1); }
  *cpu_us = (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
  if (ru.ru_maxrss > *rss_kb) *rss_kb = ru.ru_maxrss;
  return wall;
}

static double eb_spawn(const char *const *argv, double *cpu_us, long *rss_kb) {
  return eb_spawn_to(argv, "/dev/null", cpu_us, rss_kb);
}

/* one `mcplink` process per call: `op server.list` and `op tool.call`, and the same in their
 * friendly forms (`server list`, `call ASSISTANT TOOL ARGS`: the CLI start-up rows), on a database the
 * C API set up first; each process starts cold (no Lua state, no connection, no session); then
 * the calls of one `mcplink run` process (label_run: its p50_us is the mean cost of a call in
 * the loop as the script's own clock times it, start-up excluded) */
static int eb_cli(const eb_opts *o) {
  mcpl_engine *e = eb_open(o, 0);
  char sid[64], aid[64], tool[128], args[512];
  eb_setup(e, o, sid, aid);
  eb_tool_name(e, aid, tool);
  mcpl_close(e);
  snprintf(args, sizeof args, "{\"assistant\":\"%s\",\"tool\":\"%s\",\"arguments\":{\"text\":\"hello\"}}", aid, tool);
  const char *list[] = {o->bin, "--db", eb_db, "--key-file", eb_keyf, "--policies", "policies",
                        "--tenant", "bench", "--user", "mo", "op", "server.list", "{}", NULL};
  const char *call[] = {o->bin, "--db", eb_db, "--key-file", eb_keyf, "--policies", "policies",
                        "--ca-file", o->ca ? o->ca : "/dev/null", "--tenant", "bench", "--user", "mo",
                        "op", "tool.call", args, NULL};
  char targs[256];
  snprintf(targs, sizeof targs, "{\"text\":\"hello\"}");
  /* the friendly forms people type: `server list`, `call ASSISTANT TOOL ARGS` */
  const char *flist[] = {o->bin, "--db", eb_db, "--key-file", eb_keyf, "--policies", "policies",
                         "--tenant", "bench", "--user", "mo", "server", "list", NULL};
  const char *fcall[] = {o->bin, "--db", eb_db, "--key-file", eb_keyf, "--policies", "policies",
                         "--ca-file", o->ca ? o->ca : "/dev/null", "--tenant", "bench", "--user", "mo",
                         "call", aid, tool, targs, NULL};
  /* this machine's floors for a process: a program that does nothing, and Debian's curl printing
   * its version (the dynamic loader binding libcurl and what it needs, as a mcplink command that
   * sends a request does when it opens libcurl; `server list` does not) */
  const char *nothing[] = {"/bin/true", NULL};
  const char *curlv[] = {"/usr/bin/curl", "--version", NULL};
  /* and Debian's curl making the call `mcplink call` makes, as one process: the same HTTPS POST
   * (headers, body with its _meta, API key), the server's answer required (--fail): what a
   * process that sends this request at all costs here */
  char auth[300], body[600];
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->key ? o->key : "");
  snprintf(body, sizeof body,
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\","
           "\"arguments\":{\"text\":\"hello\"},\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
           "\"io.modelcontextprotocol/clientInfo\":{\"name\":\"curl\",\"version\":\"1\"},"
           "\"io.modelcontextprotocol/clientCapabilities\":{}}}}");
  const char *curlc[] = {"/usr/bin/curl", "-sS", "--fail", "--cacert", o->ca ? o->ca : "/dev/null",
                         "-H", "Content-Type: application/json", "-H", "Accept: application/json, text/event-stream",
                         "-H", "MCP-Protocol-Version: 2026-07-28", "-H", "Mcp-Method: tools/call",
                         "-H", "Mcp-Name: echo", "-H", auth, "--data-binary", body, o->url, NULL};
  const char *const *which[7] = {list, call, flist, fcall, nothing, curlv, curlc};
  const char *names[7] = {"server_list", "tool_call", "start_server_list", "start_call", "exec_true",
                          "exec_curl_version", "exec_curl_call"};
  int n = o->n < 3 ? 3 : o->n;
  double *lat = malloc(sizeof(double) * (size_t)n);
  for (int k = 0; k < 7; k++) {
    if (access(which[k][0], X_OK) != 0) continue; /* no curl here: no such row */
    double cpu = 0, c;
    long rss = 0;
    eb_spawn(which[k], &c, &rss); /* warm the page cache */
    rss = 0;
    double t0 = bu_now_us();
    for (int i = 0; i < n; i++) {
      lat[i] = eb_spawn(which[k], &c, &rss);
      cpu += c;
    }
    double wall = bu_now_us() - t0;
    char label[128];
    snprintf(label, sizeof label, "%s_%s", o->label, names[k]);
    qsort(lat, (size_t)n, sizeof *lat, bu_cmp);
    printf("@ %s calls_s=%.1f p50_us=%.1f p99_us=%.1f cpu_us=%.1f rss_kb=%ld n=%d\n", label, n / (wall / 1e6),
           lat[n / 2], lat[(n * 99) / 100], cpu / n, rss, n);
  }
  free(lat);
  /* one `mcplink run` process calling tool.call in a loop: the script makes one call (start-up,
   * the first connection), then calls until at least min_ms have passed on its own clock and
   * prints how many calls it made, in how long, with how much CPU; three such processes, the
   * median kept. Timed inside the process, the figure cannot go below zero the way a difference
   * of two processes' wall times did on a loaded machine. */
  char script[200], outf[200];
  snprintf(script, sizeof script, "%s/loop.lua", eb_dir);
  snprintf(outf, sizeof outf, "%s/loop.out", eb_dir);
  FILE *f = fopen(script, "w");
  if (!f) { perror(script); exit(1); }
  fprintf(f, "local min_ms = tonumber(arg[1])\n"
             "local function one()\n"
             "  local r, e = mcplink.op('tool.call', { assistant = '%s', tool = '%s', arguments = { text = 'hello' } })\n"
             "  if not r then error('tool.call: ' .. tostring(e and e.message)) end\n"
             "end\n"
             "one()\n"
             "local t0, c0, n = mcplink.now_ms(), os.clock(), 0\n"
             "repeat one(); n = n + 1 until mcplink.now_ms() - t0 >= min_ms or n >= 1000000\n"
             "print(string.format('loop n=%%d ms=%%d cpu_s=%%.6f', n, mcplink.now_ms() - t0, os.clock() - c0))\n",
          aid, tool);
  fclose(f);
  char minb[32];
  snprintf(minb, sizeof minb, "%d", n >= 30 ? 1000 : 100); /* quick runs: 0.1 s, 1 ms of clock = 1% */
  const char *loop[] = {o->bin, "--db", eb_db, "--key-file", eb_keyf, "--policies", "policies",
                        "--ca-file", o->ca ? o->ca : "/dev/null", "--tenant", "bench", "--user", "mo",
                        "run", script, minb, NULL};
  double per[3], cpu_per[3];
  long rss = 0, calls = 0;
  for (int k = 0; k < 3; k++) {
    double c;
    eb_spawn_to(loop, outf, &c, &rss);
    long ln = 0, ms = 0;
    double cs = 0;
    FILE *r = fopen(outf, "r");
    if (!r || fscanf(r, "loop n=%ld ms=%ld cpu_s=%lf", &ln, &ms, &cs) != 3 || ln <= 0 || ms <= 0) {
      fprintf(stderr, "engine_bench: the `mcplink run` loop printed no count and time (%s)\n", outf);
      exit(1);
    }
    fclose(r);
    per[k] = ms * 1000.0 / ln;
    cpu_per[k] = cs * 1e6 / ln;
    calls += ln;
  }
  qsort(per, 3, sizeof *per, bu_cmp);
  qsort(cpu_per, 3, sizeof *cpu_per, bu_cmp);
  printf("@ %s_run calls_s=%.1f p50_us=%.1f cpu_us=%.1f rss_kb=%ld n=%ld\n", o->label, 1e6 / per[1], per[1],
         cpu_per[1], rss, calls);
  fflush(stdout);
  return 0;
}

/* ---- warm policy decision and secret decryption (engine Lua state) --------------------- */

static double eb_time_lua(lua_State *L, int n) {
  double *lat = malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) {
    lua_pushvalue(L, -1);
    double t0 = bu_now_us();
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) { fprintf(stderr, "engine_bench: lua: %s\n", lua_tostring(L, -1)); exit(1); }
    lat[i] = bu_now_us() - t0;
  }
  lua_pop(L, 1);
  qsort(lat, (size_t)n, sizeof *lat, bu_cmp);
  double m = lat[n / 2];
  free(lat);
  return m;
}

static void eb_lua_fn(lua_State *L, const char *code) {
  if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "engine_bench: load: %s\n", lua_tostring(L, -1));
    exit(1);
  }
}

/* median µs of n mcpl_op calls */
static double eb_time_op(mcpl_engine *e, const mcpl_actor *a, const char *op, const char *args, const char *want, int n) {
  double *lat = malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) {
    char *res = NULL;
    double t0 = bu_now_us();
    int rc = mcpl_op(e, a, op, args, &res);
    lat[i] = bu_now_us() - t0;
    if (rc != MCPL_OK || (want && !strstr(res, want))) { fprintf(stderr, "engine_bench: %s: %.300s\n", op, res); exit(1); }
    mcpl_free(res);
  }
  qsort(lat, (size_t)n, sizeof *lat, bu_cmp);
  double m = lat[n / 2];
  free(lat);
  return m;
}

static int eb_policy(const eb_opts *o) {
  mcpl_engine *e = eb_open(o, 1);
  char sid[64], aid[64];
  eb_setup(e, o, sid, aid);
  int n = o->n < 10 ? 10 : o->n;
  const char *args = "{\"url\":\"https://127.0.0.1:8443/mcp\",\"resolve\":false}";
  double base = eb_time_op(e, &eb_mo, "engine.info", "{}", NULL, n); /* dispatch only */
  double op = eb_time_op(e, &eb_mo, "url.check", args, "\"allowed\":true", n);
  char *err = NULL;
  lua_State *L = mcpl_state_engine(e, &err);
  if (!L) { fprintf(stderr, "engine_bench: state: %s\n", err); return 1; }
  eb_lua_fn(L, "local p = require 'policy' local r = { url='https://127.0.0.1:8443/mcp', scheme='https',"
               " host='127.0.0.1', port=8443, path='/mcp', tenant='bench', purpose='mcp',"
               " settings={allow_private_urls=true, allow_http=false} }"
               " return function() p.call('bench', 'url', r) end");
  double pc = eb_time_lua(L, n);
  eb_lua_fn(L, "local net = require 'net' local c = {actor={tenant='bench'}}"
               " return function() net.decide(c, 'https://127.0.0.1:8443/mcp', 'mcp') end");
  double nd = eb_time_lua(L, n);
  mcpl_state_close(L);
  printf("@ %s_policy_call p50_us=%.2f\n", o->label, pc);
  printf("@ %s_net_decide p50_us=%.2f\n", o->label, nd);
  printf("@ %s_url_check_op p50_us=%.2f\n", o->label, op);
  printf("@ %s_dispatch_op p50_us=%.2f\n", o->label, base);
  fflush(stdout);
  mcpl_close(e);
  return 0;
}

static int eb_secret(const eb_opts *o) {
  mcpl_engine *e = eb_open(o, 1);
  char sid[64], args[512];
  eb_setup(e, o, sid, NULL);
  snprintf(args, sizeof args, "{\"id\":\"%s\",\"auth_type\":\"api_key\",\"api_key\":\"sk-bench-0123456789abcdef\"}", sid);
  mcpl_free(eb_must(e, &eb_ada, "server.update", args));
  int n = o->n < 10 ? 10 : o->n;
  char *err = NULL;
  lua_State *L = mcpl_state_engine(e, &err);
  if (!L) { fprintf(stderr, "engine_bench: state: %s\n", err); return 1; }
  char code[1024];
  /* store.reveal: the row lookup and the AES-256-GCM decryption, as credentials.lua uses it;
   * the baseline reads the same record's plain columns (store.get) */
  snprintf(code, sizeof code,
           "local store = require 'store' local a = require('auth').resolve({tenant='bench', user='ada'})"
           " assert(store.reveal(a, 'servers', '%s', 'api_key') == 'sk-bench-0123456789abcdef')"
           " return function() store.reveal(a, 'servers', '%s', 'api_key') end", sid, sid);
  eb_lua_fn(L, code);
  double rv = eb_time_lua(L, n);
  snprintf(code, sizeof code,
           "local store = require 'store' local a = require('auth').resolve({tenant='bench', user='ada'})"
           " return function() assert(store.get(a, 'servers', '%s')) end", sid);
  eb_lua_fn(L, code);
  double gt = eb_time_lua(L, n);
  mcpl_state_close(L);
  printf("@ %s_reveal p50_us=%.2f\n", o->label, rv);
  printf("@ %s_row_read p50_us=%.2f\n", o->label, gt);
  fflush(stdout);
  mcpl_close(e);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: engine_bench call|discover|cli|policy|secret [URL] [options]\n"); return 2; }
  eb_opts o = {NULL, NULL, NULL, "engine", NULL, NULL, 1, 2000, 1, 0};
  const char *mode = argv[1];
  int i = 2;
  if (argc > 2 && argv[2][0] != '-') o.url = argv[i++];
  for (; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (strcmp(a, "--threads") == 0) o.threads = atoi(v);
    else if (strcmp(a, "--n") == 0) o.n = atoi(v);
    else if (strcmp(a, "--reps") == 0) o.reps = atoi(v);
    else if (strcmp(a, "--expect") == 0) o.expect = atoi(v);
    else if (strcmp(a, "--ca") == 0) o.ca = v;
    else if (strcmp(a, "--api-key") == 0) o.key = v;
    else if (strcmp(a, "--label") == 0) o.label = v;
    else if (strcmp(a, "--bin") == 0) o.bin = v;
    else if (strcmp(a, "--db") == 0) o.db = v;
    else { fprintf(stderr, "engine_bench: unknown option %s\n", a); return 2; }
  }
  if (o.threads > 64) o.threads = 64;
  if (strcmp(mode, "call") == 0 && o.url) return eb_call(&o);
  if (strcmp(mode, "discover") == 0 && o.url) return eb_discover(&o);
  if (strcmp(mode, "cli") == 0 && o.url && o.bin) return eb_cli(&o);
  if (strcmp(mode, "policy") == 0) return eb_policy(&o);
  if (strcmp(mode, "secret") == 0) return eb_secret(&o);
  fprintf(stderr, "engine_bench: bad mode or missing URL/--bin\n");
  return 2;
}
