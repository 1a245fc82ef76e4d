/* test_outage.c: tool calls from many threads through the C API while the MCP server is killed
 * and restarted on the same port: every call ends within its bound, the pool stays whole. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "mcplink.h"
#include "testutil.h"

#define CALL_TIMEOUT_MS 5000   /* tool.call's timeout_ms while the server dies and comes back */
#define SERVER_TIMEOUT_MS 30000 /* the server's own timeout: calls in flight at close wait on it */
#define MARGIN_MS 9000         /* generous, for a loaded 2-core machine and the sanitizers */
#define BOUND_MS (CALL_TIMEOUT_MS + MARGIN_MS)
#define THREADS 12             /* more than the default pool of 8 */
#define POOL 8
#define FIRST_RECS 1024      /* each caller's record of its calls, grown as it calls */
#define GRACE_MS 500           /* after the restart, calls started later than this must succeed */

static char bindir[512];
static char certdir[600];
static volatile pid_t srv = -1;  /* also read by the SIGALRM watchdog */
static int srv_port;
static char srv_url[128];
static const mcpl_actor ada = {"acme", "ada", 0}, sys = {NULL, NULL, 1};

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- watchdogs: a hang is a failure, never a stuck test --------------------- */

static void die(const char *why) {
  if (srv > 0) kill(srv, SIGKILL);
  fprintf(stderr, "# FAIL: %s\n", why);
  fflush(stderr);
  _exit(1);
}

static void on_alarm(int sig) {
  (void)sig;
  static const char m[] = "# FAIL: test_outage ran past its overall limit (a call or close hung)\n";
  if (srv > 0) kill(srv, SIGKILL);
  ssize_t w = write(2, m, sizeof m - 1);
  (void)w;
  _exit(1);
}

/* ---- the fixture server ----------------------------------------------------- */

static void paths(void) {
  char exe[512];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) die("cannot read /proc/self/exe");
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  *slash = 0;
  snprintf(bindir, sizeof bindir, "%s", exe);
  snprintf(certdir, sizeof certdir, "%s/../certs", bindir);
}

/* Starts bench/fixture_server (HTTPS, the test CA) on port (0: a free one). */
static void start_server(const char *era, int port) {
  char fx[700], pp[16], parent[16];
  snprintf(fx, sizeof fx, "%s/../fixtures/fixture_server", bindir);
  snprintf(pp, sizeof pp, "%d", port);
  snprintf(parent, sizeof parent, "%d", (int)getpid());
  int out[2];
  if (pipe(out) != 0) die("pipe");
  pid_t self = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    /* gone with the test however it ends (a sanitizer's halt, a stopped fixture that cannot
     * run its own parent check), and holding none of the test's descriptors */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != self) _exit(1);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(out[1], 1);
    for (int fd = 3; fd < 1024; fd++) close(fd);
    execl(fx, fx, "--tls", certdir, "--era", era, "--port", pp, "--parent-pid", parent,
          "--max-lifetime-s", "300", (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  srv = pid;
  char line[256] = "";
  FILE *f = fdopen(out[0], "r");
  if (!f || !fgets(line, sizeof line, f)) die("the fixture server did not start");
  fclose(f);
  const char *u = strstr(line, "\"url\":\"");
  if (!u) die("no url in the fixture's ready line");
  u += 7;
  size_t k = 0;
  while (u[k] && u[k] != '"' && k + 1 < sizeof srv_url) { srv_url[k] = u[k]; k++; }
  srv_url[k] = 0;
  const char *colon = strrchr(srv_url, ':');
  srv_port = atoi(colon + 1);
}

static void kill_server(void) {
  if (srv <= 0) return;
  kill(srv, SIGKILL);
  waitpid(srv, NULL, 0);
  srv = -1;
}

/* ---- ops ---------------------------------------------------------------------- */

/* not inlined: GCC 12 reads the failure path (a longjmp) as a dangling pointer */
__attribute__((noinline)) static char *must(mcpl_engine *e, const mcpl_actor *a, const char *op,
                                            const char *args) {
  char *res = NULL;
  int rc = mcpl_op(e, a, op, args, &res);
  if (rc != MCPL_OK) fail_msg("%s: %s", op, res);
  return res;
}

/* the string value of "key":"..." after p, or "" */
static void field(const char *p, const char *key, char *out, size_t n) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  out[0] = 0;
  const char *v = p ? strstr(p, pat) : NULL;
  if (!v) return;
  v += strlen(pat);
  size_t i = 0;
  while (v[i] && v[i] != '"' && i + 1 < n) { out[i] = v[i]; i++; }
  out[i] = 0;
}

/* the integer value of "key": after p, or -1 */
static long ifield(const char *p, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *v = p ? strstr(p, pat) : NULL;
  return v ? atol(v + strlen(pat)) : -1;
}

static void (*_Atomic log_hook)(const char *msg);  /* set by the test, read by callers' logs */

static void test_log(void *ud, const char *level, const char *msg) {
  (void)ud;
  void (*hook)(const char *) = atomic_load(&log_hook);
  if (hook) hook(msg);
  if (strcmp(level, "error") == 0) fprintf(stderr, "# engine error: %s\n", msg);
}

static mcpl_engine *open_engine(tu_env *env) {
  tu_paths(env);
  char ca[700];
  snprintf(ca, sizeof ca, "%s/ca.pem", certdir);
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", env->db);
  mcpl_options_set(o, "key_file", env->key);
  mcpl_options_set(o, "policies", "policies");
  mcpl_options_set(o, "ca_file", ca);
  mcpl_options_set(o, "log_level", "info");
  mcpl_options_set_log(o, test_log, NULL);
  char *err = NULL;
  mcpl_engine *e = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!e) fail_msg("mcpl_open: %s", err ? err : "?");
  return e;
}

/* The spec's flow: a tenant admin saves the server (discovery), enables it and attaches it to
 * an assistant. Returns the tool.call arguments for the echo tool (without timeout_ms). */
static void setup_flow(mcpl_engine *e, char *call_prefix, size_t n) {
  char args[1024], sid[64], aid[64], tool[128];
  mcpl_free(must(e, &sys, "tenant.create", "{\"name\":\"acme\"}"));
  mcpl_free(must(e, &sys, "settings.set", "{\"allow_private_urls\":true}")); /* 127.0.0.1 */
  mcpl_free(must(e, &sys, "user.create", "{\"tenant\":\"acme\",\"name\":\"ada\",\"role\":\"admin\"}"));
  char *r = must(e, &ada, "server.create", "{\"name\":\"fixture\"}");
  field(r, "id", sid, sizeof sid);
  mcpl_free(r);
  snprintf(args, sizeof args, "{\"id\":\"%s\",\"url\":\"%s\",\"timeout_ms\":%d}", sid, srv_url,
           SERVER_TIMEOUT_MS);
  r = must(e, &ada, "server.update", args);
  if (!strstr(r, "\"capabilities_status\":\"ok\"")) fail_msg("discovery failed: %.400s", r);
  mcpl_free(r);
  snprintf(args, sizeof args, "{\"server\":\"%s\"}", sid);
  mcpl_free(must(e, &ada, "tool.enable", args));
  r = must(e, &ada, "assistant.create", "{\"name\":\"bot\"}");
  field(r, "id", aid, sizeof aid);
  mcpl_free(r);
  snprintf(args, sizeof args, "{\"assistant\":\"%s\",\"server\":\"%s\"}", aid, sid);
  mcpl_free(must(e, &ada, "assistant.attach", args));
  snprintf(args, sizeof args, "{\"assistant\":\"%s\"}", aid);
  r = must(e, &ada, "assistant.tools", args);
  /* the engine-unique name of the server's echo tool: the one "name" that ends in echo */
  tool[0] = 0;
  for (const char *q = strstr(r, "\"name\":\""); q && !tool[0]; q = strstr(q + 8, "\"name\":\"")) {
    char v[128];
    field(q, "name", v, sizeof v);
    size_t l = strlen(v);
    if (l >= 4 && strcmp(v + l - 4, "echo") == 0) snprintf(tool, sizeof tool, "%s", v);
  }
  mcpl_free(r);
  if (!tool[0]) fail_msg("no name for the echo tool");
  snprintf(call_prefix, n, "{\"assistant\":\"%s\",\"tool\":\"%s\",\"arguments\":{\"text\":\"hi\"}", aid, tool);
}

/* ---- callers -------------------------------------------------------------------- */

typedef struct {
  long t0, t1;
  int rc;
  char code[24], reason[48];
} call_rec;

typedef struct {
  mcpl_engine *e;
  const char *args;
  int id, once;
  call_rec *recs;         /* every call it made, n of them (cap allocated) */
  int n, cap, overflow;   /* overflow: a record could not grow, so a call went unchecked */
  atomic_long busy_since;  /* start of the call in flight; 0 when none */
} caller;

static atomic_int stop_callers;

static void one_call(caller *c) {
  if (c->n == c->cap) { /* the caller's own array: nobody reads it before the join */
    call_rec *more = realloc(c->recs, sizeof *more * (size_t)c->cap * 2);
    if (more) c->recs = more, c->cap *= 2;
  }
  call_rec *r = &c->recs[c->n < c->cap ? c->n : c->cap - 1];
  char *res = NULL;
  r->t0 = now_ms();
  atomic_store(&c->busy_since, r->t0);
  r->rc = mcpl_op(c->e, &ada, "tool.call", c->args, &res);
  r->t1 = now_ms();
  atomic_store(&c->busy_since, 0);
  r->code[0] = r->reason[0] = 0;
  if (r->rc != MCPL_OK) {
    field(res, "code", r->code, sizeof r->code);
    field(res, "reason", r->reason, sizeof r->reason);
  } else if (!res || !strstr(res, "\"text\":\"hi\"")) {
    r->rc = -1;
    snprintf(r->code, sizeof r->code, "bad_result");
  }
  mcpl_free(res);
  if (c->n < c->cap) c->n++;
  else c->overflow = 1;
  if (r->rc != MCPL_OK) usleep(2000); /* a host backs off a little after a failure */
}

static void *caller_main(void *p) {
  caller *c = p;
  do one_call(c); while (!c->once && !atomic_load(&stop_callers));
  return NULL;
}

/* Watches the callers for up to ms: any call older than its bound fails the test at once. */
static void watch(caller *cs, int n, long ms) {
  long end = now_ms() + ms;
  do {
    long now = now_ms();
    for (int i = 0; i < n; i++) {
      long s = atomic_load(&cs[i].busy_since);
      if (s && now - s > BOUND_MS) {
        char m[160];
        snprintf(m, sizeof m, "a tool.call in thread %d has not returned after %ld ms (bound %d ms)", i,
                 now - s, BOUND_MS);
        die(m);
      }
    }
    usleep(20 * 1000);
  } while (now_ms() < end);
}

static int all_idle(caller *cs, int n) {
  for (int i = 0; i < n; i++)
    if (atomic_load(&cs[i].busy_since)) return 0;
  return 1;
}

/* Waits (watching the bound) until every caller has ended its last call, then joins them. */
static void finish_callers(caller *cs, pthread_t *t, int n) {
  atomic_store(&stop_callers, 1);
  long end = now_ms() + BOUND_MS + 2000;
  while (!all_idle(cs, n)) {
    if (now_ms() > end) die("callers did not finish");
    watch(cs, n, 50);
  }
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  atomic_store(&stop_callers, 0);
}

static void start_callers(caller *cs, pthread_t *t, int n, mcpl_engine *e, const char *args,
                          int once) {
  for (int i = 0; i < n; i++) {
    cs[i].e = e;
    cs[i].args = args;
    cs[i].id = i;
    cs[i].once = once;
    cs[i].n = 0;
    if (!cs[i].recs) {
      cs[i].cap = FIRST_RECS;
      cs[i].recs = calloc(FIRST_RECS, sizeof(call_rec));
      assert_non_null(cs[i].recs);
    }
    atomic_store(&cs[i].busy_since, 0);
    assert_int_equal(pthread_create(&t[i], NULL, caller_main, &cs[i]), 0);
  }
}

/* ---- close with calls in flight ------------------------------------------------- */

static mcpl_engine *late_engine;
static const char *late_args;
static char late_result[512];
static int late_rc = -1;

/* mcpl_close announces that it is closing (log level info); a call that starts then is refused
 * with a clear error instead of racing the engine's end. */
static void late_call(const char *msg) {
  if (!strstr(msg, "engine closing") || late_rc != -1) return;
  char *res = NULL;
  late_rc = mcpl_op(late_engine, &ada, "tool.call", late_args, &res);
  snprintf(late_result, sizeof late_result, "%s", res ? res : "(null)");
  mcpl_free(res);
}

/* ---- the scenario ---------------------------------------------------------------- */

static void outage(const char *era) {
  alarm(300);
  start_server(era, 0);
  tu_env env;
  mcpl_engine *e = open_engine(&env);
  char prefix[512], args[600], slow[600];
  setup_flow(e, prefix, sizeof prefix);
  snprintf(args, sizeof args, "%s,\"timeout_ms\":%d}", prefix, CALL_TIMEOUT_MS);
  snprintf(slow, sizeof slow, "%s}", prefix);

  /* 1. load, the server killed with calls in flight, down for a while, restarted */
  caller cs[THREADS];
  pthread_t t[THREADS];
  memset(cs, 0, sizeof cs);
  start_callers(cs, t, THREADS, e, args, 0);
  watch(cs, THREADS, 1500);
  long t_kill = now_ms();
  kill_server();
  watch(cs, THREADS, 3000);
  start_server(era, srv_port);
  long t_up = now_ms();
  watch(cs, THREADS, 3000);
  finish_callers(cs, t, THREADS);

  int ok_before = 0, failed = 0, ok_after = 0, total = 0, bad = 0, refused = 0, broken = 0;
  long longest = 0;
  for (int i = 0; i < THREADS; i++) assert_false(cs[i].overflow);
  for (int i = 0; i < THREADS; i++)
    for (int k = 0; k < cs[i].n; k++) {
      call_rec *r = &cs[i].recs[k];
      total++;
      if (r->t1 - r->t0 > longest) longest = r->t1 - r->t0;
      if (r->t1 - r->t0 > BOUND_MS) {
        fprintf(stderr, "# call took %ld ms\n", r->t1 - r->t0);
        bad++;
      }
      if (r->rc == MCPL_OK) {
        if (r->t1 < t_kill) ok_before++;
        if (r->t0 > t_up + GRACE_MS) ok_after++;
        continue;
      }
      failed++;
      /* every failure says why, and a server that is gone is reported as gone: the
       * connection was refused or broke. Never a timeout: nothing here waits that long,
       * unless a transfer was left waiting on a connection that would never come. */
      if (strcmp(r->code, "upstream_error") != 0 ||
          (strcmp(r->reason, "connect_failed") != 0 && strcmp(r->reason, "connection_error") != 0 &&
           strcmp(r->reason, "tls_error") != 0)) {
        fprintf(stderr, "# call failed with code '%s' reason '%s' after %ld ms\n", r->code, r->reason,
                r->t1 - r->t0);
        bad++;
      }
      if (!strcmp(r->reason, "connect_failed")) refused++;
      else if (!strcmp(r->reason, "connection_error")) broken++;
      if (r->t1 < t_kill) { fprintf(stderr, "# a call failed before the kill: %s\n", r->code); bad++; }
      if (r->t0 > t_up + GRACE_MS) {
        fprintf(stderr, "# a call started %ld ms after the restart failed: %s %s\n", r->t0 - t_up,
                r->code, r->reason);
        bad++;
      }
    }
  fprintf(stderr, "# %s: %d calls, %d before the kill, %d failed during the outage (%d refused, %d "
          "broken), %d after the restart; longest %ld ms\n", era, total, ok_before, failed, refused,
          broken, ok_after, longest);
  assert_int_equal(bad, 0);
  assert_true(ok_before > 0);
  assert_true(failed > 0);   /* the outage was seen */
  assert_true(ok_after >= THREADS);

  /* 2. the pool is whole: no state is held by a call that never returned, and as many calls
   *    as the pool holds run side by side and succeed */
  char *r = must(e, &sys, "engine.info", NULL);
  const char *pool = strstr(r, "\"pool\":");
  if (!pool) fail_msg("engine.info has no pool: %.300s", r);
  long busy = ifield(pool, "busy"), states = ifield(pool, "states"), size = ifield(pool, "size");
  mcpl_free(r);
  assert_int_equal(size, POOL);
  assert_int_equal(busy, 1);  /* engine.info itself */
  assert_true(states >= 1 && states <= POOL);
  caller ps[POOL];
  pthread_t pt[POOL];
  memset(ps, 0, sizeof ps);
  start_callers(ps, pt, POOL, e, args, 1);
  finish_callers(ps, pt, POOL);
  for (int i = 0; i < POOL; i++) {
    assert_int_equal(ps[i].n, 1);
    if (ps[i].recs[0].rc != MCPL_OK)
      fail_msg("after the outage, call %d failed: %s %s", i, ps[i].recs[0].code, ps[i].recs[0].reason);
    free(ps[i].recs);
  }

  /* 3. close with calls in flight: the server stops answering (SIGSTOP), calls wait on its 30 s
   *    timeout; close ends them (timeout, reason cancelled) and returns promptly */
  kill(srv, SIGSTOP);
  int wst = 0;  /* stopped for good, every thread: the signal alone is not that yet */
  if (waitpid(srv, &wst, WUNTRACED) != srv || !WIFSTOPPED(wst)) die("the fixture did not stop");
  caller fs[POOL + 2];
  pthread_t ft[POOL + 2];
  memset(fs, 0, sizeof fs);
  start_callers(fs, ft, POOL + 2, e, slow, 1);
  watch(fs, POOL + 2, 700);
  late_engine = e;
  late_args = args;
  late_rc = -1;
  atomic_store(&log_hook, late_call);
  long c0 = now_ms();
  mcpl_close(e);
  long close_ms = now_ms() - c0;
  atomic_store(&log_hook, NULL);
  for (int i = 0; i < POOL + 2; i++) pthread_join(ft[i], NULL);
  kill(srv, SIGCONT);
  kill_server();
  nftw(env.dir, tu_rm, 8, FTW_DEPTH | FTW_PHYS);
  fprintf(stderr, "# close took %ld ms\n", close_ms);
  assert_true(close_ms < 6000);
  int cancelled = 0;
  for (int i = 0; i < POOL + 2; i++) {
    call_rec *c = &fs[i].recs[0];
    assert_int_equal(fs[i].n, 1);
    assert_int_not_equal(c->rc, MCPL_OK);
    assert_string_equal(c->code, "timeout");
    if (strcmp(c->reason, "cancelled") == 0) cancelled++;
    else assert_string_equal(c->reason, "engine_closing"); /* never got a Lua state */
    assert_true(c->t1 - c->t0 < SERVER_TIMEOUT_MS / 2);
    free(fs[i].recs);
  }
  assert_true(cancelled >= 1);
  /* a call that starts once close has begun is refused at once */
  assert_int_equal(late_rc, MCPL_E_TIMEOUT);
  char code[32], reason[48];
  field(late_result, "code", code, sizeof code);
  field(late_result, "reason", reason, sizeof reason);
  assert_string_equal(code, "timeout");
  assert_string_equal(reason, "engine_closing");
  for (int i = 0; i < THREADS; i++) free(cs[i].recs);
  alarm(0);
}

static void test_outage_modern(void **st) {
  (void)st;
  outage("modern");
}

/* legacy sessions: initialize, the engine-wide session claim, DELETE at close */
static void test_outage_legacy(void **st) {
  (void)st;
  outage("legacy");
}

int main(void) {
  signal(SIGALRM, on_alarm);
  signal(SIGPIPE, SIG_IGN);
  paths();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_outage_modern),
    cmocka_unit_test(test_outage_legacy),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  kill_server();
  return rc;
}
