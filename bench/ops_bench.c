/* ops_bench.c: warm op latency through the C API against a baseline measured in the
 * same run (engine.info: dispatch only), on SQLite and on PostgreSQL side by side. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_util.h"
#include "mcplink.h"

static char *must(mcpl_engine *e, const mcpl_actor *a, const char *op, const char *args) {
  char *res = NULL;
  if (mcpl_op(e, a, op, args, &res) != MCPL_OK) {
    fprintf(stderr, "%s failed: %s\n", op, res);
    exit(1);
  }
  return res;
}

static void id_of(const char *json, char *out, size_t n) {
  const char *p = strstr(json, "\"id\":\"");
  if (!p) { fprintf(stderr, "no id in %s\n", json); exit(1); }
  p += 6;
  size_t i = 0;
  while (p[i] && p[i] != '"' && i + 1 < n) { out[i] = p[i]; i++; }
  out[i] = 0;
}

/* Runs op `iters` times in `reps` repetitions; returns the median of the
 * per-repetition medians, in microseconds. */
static double measure(mcpl_engine *e, const mcpl_actor *a, const char *op, const char *args,
                      int iters, int reps, double *p99) {
  double *lat = malloc(sizeof(double) * (size_t)iters);
  double *med = malloc(sizeof(double) * (size_t)reps);
  double worst99 = 0;
  for (int r = 0; r < reps; r++) {
    for (int i = 0; i < iters; i++) {
      char *res = NULL;
      double t0 = bu_now_us();
      int rc = mcpl_op(e, a, op, args, &res);
      lat[i] = bu_now_us() - t0;
      if (rc != MCPL_OK) { fprintf(stderr, "%s failed: %s\n", op, res); exit(1); }
      mcpl_free(res);
    }
    qsort(lat, (size_t)iters, sizeof(double), bu_cmp);
    med[r] = lat[iters / 2];
    if (lat[iters * 99 / 100] > worst99) worst99 = lat[iters * 99 / 100];
  }
  qsort(med, (size_t)reps, sizeof(double), bu_cmp);
  double m = med[reps / 2];
  *p99 = worst99;
  free(lat);
  free(med);
  return m;
}

static int rm(const char *p, const struct stat *s, int f, struct FTW *w) {
  (void)s; (void)f; (void)w;
  return remove(p);
}

#define NOPS 5
static const char *const op_names[NOPS] = {"engine.info", "server.get", "server.list", "tool.list",
                                           "assistant.tools"};

/* Sets one database up as a tenant admin would and measures every op on it;
 * med[] and p99[] get each op's figures in op_names order. */
static void run_backend(const char *db, const char *key, int iters, int reps, double *med, double *p99) {
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", db);
  mcpl_options_set(o, "key_file", key);
  char *err = NULL;
  mcpl_engine *e = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!e) { fprintf(stderr, "open: %s\n", err); exit(1); }
  mcpl_actor sys = {NULL, NULL, 1}, ada = {"bench", "ada", 0};
  mcpl_free(must(e, &sys, "tenant.create", "{\"name\":\"bench\"}"));
  /* the server lives on a closed loopback port: nothing leaves the machine */
  mcpl_free(must(e, &sys, "settings.set", "{\"allow_private_urls\":true}"));
  mcpl_free(must(e, &sys, "user.create", "{\"tenant\":\"bench\",\"name\":\"ada\",\"role\":\"admin\"}"));
  char sid[64], aid[64], args[256];
  char *r = must(e, &ada, "server.create", "{\"name\":\"bench server\"}");
  id_of(r, sid, sizeof sid);
  mcpl_free(r);
  snprintf(args, sizeof args, "{\"id\":\"%s\",\"url\":\"https://127.0.0.1:1/mcp\",\"auth_type\":\"api_key\",\"api_key\":\"k\"}", sid);
  mcpl_free(must(e, &ada, "server.update", args));
  snprintf(args, sizeof args, "{\"server\":\"%s\"}", sid);
  mcpl_free(must(e, &ada, "tool.enable", args));
  r = must(e, &ada, "assistant.create", "{\"name\":\"bench bot\"}");
  id_of(r, aid, sizeof aid);
  mcpl_free(r);
  snprintf(args, sizeof args, "{\"assistant\":\"%s\",\"server\":\"%s\"}", aid, sid);
  mcpl_free(must(e, &ada, "assistant.attach", args));
  char op_args[NOPS][128];
  snprintf(op_args[0], 128, "{}");
  snprintf(op_args[1], 128, "{\"id\":\"%s\"}", sid);
  snprintf(op_args[2], 128, "{}");
  snprintf(op_args[3], 128, "{}");
  snprintf(op_args[4], 128, "{\"assistant\":\"%s\"}", aid);
  double w;
  measure(e, &ada, "engine.info", "{}", iters / 5, 1, &w); /* warm-up */
  for (int k = 0; k < NOPS; k++) med[k] = measure(e, &ada, op_names[k], op_args[k], iters, reps, &p99[k]);
  mcpl_close(e);
}

/* ops_bench [ITERS] [--pg URI]: SQLite always (a temporary file); with --pg, the same ops on an
 * empty PostgreSQL database too, side by side (make bench-ops starts a throwaway cluster). */
int main(int argc, char **argv) {
  int iters = 5000, reps = 5;
  const char *pg = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--pg") == 0 && i + 1 < argc) pg = argv[++i];
    else iters = atoi(argv[i]);
  }
  if (iters < 10) iters = 10;
  char dir[] = "/tmp/mcplink-bench-XXXXXX", db[128], key[128], pgkey[128];
  if (!mkdtemp(dir)) return 1;
  snprintf(db, sizeof db, "%s/b.db", dir);
  snprintf(key, sizeof key, "%s/b.key", dir);
  snprintf(pgkey, sizeof pgkey, "%s/pg.key", dir);
  double sm[NOPS], sp[NOPS], pm[NOPS], pp[NOPS];
  run_backend(db, key, iters, reps, sm, sp);
  if (pg) run_backend(pg, pgkey, iters, reps, pm, pp);
  printf("| op (warm, C API, 1 thread, a tenant admin) | SQLite median µs | p99 µs | ratio to engine.info |%s\n",
         pg ? " PostgreSQL median µs | p99 µs | PostgreSQL ÷ SQLite |" : "");
  printf("|---|---:|---:|---:|%s\n", pg ? "---:|---:|---:|" : "");
  for (int k = 0; k < NOPS; k++) {
    printf("| %s%s | %.1f | %.1f | %.2f |", op_names[k], k == 0 ? " (dispatch only)" : "", sm[k], sp[k], sm[k] / sm[0]);
    if (pg) printf(" %.1f | %.1f | %.2f× |", pm[k], pp[k], pm[k] / sm[k]);
    printf("\n");
  }
  printf("(%d calls x %d repetitions each; median of repetition medians; both databases in this run)\n",
         iters, reps);
  nftw(dir, rm, 8, FTW_DEPTH | FTW_PHYS);
  return 0;
}
