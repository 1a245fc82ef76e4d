/* test_calls.c: the per-call C API against real MCP servers (the SDK v1 and v2
 * fixtures): cancelling one call from another thread, events, input handlers. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <cmocka.h>
#include "mcplink.h"
#include "testutil.h"

#define KEY "sk-calls-test"

typedef struct {
  char url[256], control[256];
  int pid;
} fixture;

static fixture v1, v2;
static char certs[512];
static tu_env env;
static mcpl_engine *eng;
static const mcpl_actor sys = {NULL, NULL, 1};
static const mcpl_actor ann = {"acme", "ann", 0};
static char assistant[64];

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* a string field of a one-line JSON object (no escapes in these values) */
static int json_field(const char *json, const char *name, char *out, size_t n) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", name);
  const char *p = strstr(json, pat);
  if (!p) return -1;
  p += strlen(pat);
  if (*p == '"') p++;
  size_t k = 0;
  while (*p && *p != '"' && *p != ',' && *p != '}' && k + 1 < n) out[k++] = *p++;
  out[k] = 0;
  return 0;
}

static void start_fixture(const char *name, fixture *f) {
  char cmd[512], line[2048];
  snprintf(cmd, sizeof cmd, "sh tests/fixtures/start.sh %s --api-key " KEY, name);
  FILE *p = popen(cmd, "r");
  if (!p || !fgets(line, sizeof line, p)) {
    printf("Bail out! cannot start fixture %s (make fixtures)\n", name);
    exit(1);
  }
  pclose(p);
  char pid[32];
  if (json_field(line, "url", f->url, sizeof f->url) || json_field(line, "control", f->control, sizeof f->control) ||
      json_field(line, "pid", pid, sizeof pid)) {
    printf("Bail out! fixture %s: unexpected ready line %s\n", name, line);
    exit(1);
  }
  f->pid = atoi(pid);
}

/* GET a fixture's control endpoint; returns a malloc'd body */
static char *control_get(const fixture *f, const char *path) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "curl -s --max-time 10 --cacert %s/ca.pem '%s/%s'", certs, f->control, path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t cap = 1 << 20, n = 0;
  char *buf = malloc(cap);
  size_t r;
  while (buf && (r = fread(buf + n, 1, cap - n - 1, p)) > 0) n += r;
  buf[n] = 0;
  pclose(p);
  return buf;
}

/* cancelled calls the fixture saw ({"cancelled":[{id,time},...]}) */
static int cancelled_count(const fixture *f) {
  char *log = control_get(f, "log");
  const char *c = strstr(log, "\"cancelled\":[");
  int n = 0;
  if (c)
    for (c += 13; *c && *c != ']'; c++) n += *c == '{';
  free(log);
  return n;
}

static void op_ok(const mcpl_actor *a, const char *name, const char *args, char *out, size_t n) {
  char *res = NULL;
  int rc = mcpl_op(eng, a, name, args, &res);
  if (rc != MCPL_OK) fprintf(stderr, "%s failed: %s\n", name, res ? res : "?");
  assert_int_equal(rc, MCPL_OK);
  if (out) snprintf(out, n, "%s", res);
  mcpl_free(res);
}

static void add_server(const char *name, const fixture *f) {
  char args[1024], res[8192], id[64];
  snprintf(args, sizeof args, "{\"name\":\"%s\"}", name);
  op_ok(&ann, "server.create", args, res, sizeof res);
  assert_int_equal(json_field(res, "id", id, sizeof id), 0);
  snprintf(args, sizeof args, "{\"id\":\"%s\",\"url\":\"%s\",\"auth_type\":\"api_key\",\"api_key\":\"" KEY "\"}", id, f->url);
  op_ok(&ann, "server.update", args, NULL, 0);
  snprintf(args, sizeof args, "{\"server\":\"%s\"}", id);
  op_ok(&ann, "tool.enable", args, NULL, 0);
  snprintf(args, sizeof args, "{\"assistant\":\"%s\",\"server\":\"%s\"}", assistant, id);
  op_ok(&ann, "assistant.attach", args, NULL, 0);
}

/* ---- the engine's default input handler (set on the options) ------------ */

static int default_calls;
static void default_input(void *ud, const char *req, mcpl_reply *reply) {
  (void)ud;
  default_calls++;
  if (strstr(req, "\"sampling/createMessage\""))
    mcpl_reply_set(reply, "{\"role\":\"assistant\",\"content\":{\"type\":\"text\",\"text\":\"from the engine handler\"},\"model\":\"m\"}");
  else if (strstr(req, "\"mode\":\"form\""))
    mcpl_reply_set(reply, "{\"action\":\"accept\",\"content\":{\"name\":\"Default\"}}");
}

static int setup(void **st) {
  (void)st;
  const char *b = getenv("MCPLINK_BUILD");
  const char *fc = getenv("FIXTURE_CERTS");
  if (fc) snprintf(certs, sizeof certs, "%s", fc);
  else snprintf(certs, sizeof certs, "%s/certs", b ? b : "build");
  setenv("FIXTURE_CERTS", certs, 1);
  char pid[32];
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  setenv("FIXTURE_PARENT_PID", pid, 1);
  start_fixture("server-v1", &v1);
  start_fixture("server-v2", &v2);
  tu_paths(&env);
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", env.db);
  mcpl_options_set(o, "key_file", env.key);
  mcpl_options_set(o, "policies", "");
  char ca[600];
  snprintf(ca, sizeof ca, "%s/ca.pem", certs);
  mcpl_options_set(o, "ca_file", ca);
  mcpl_options_set_input(o, default_input, NULL, MCPL_INPUT_SAMPLING);
  char *err = NULL;
  eng = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!eng) { printf("Bail out! mcpl_open: %s\n", err ? err : "?"); exit(1); }
  char res[8192];
  op_ok(&sys, "settings.set", "{\"allow_private_urls\":true}", NULL, 0);
  op_ok(&sys, "tenant.create", "{\"name\":\"acme\"}", NULL, 0);
  op_ok(&sys, "user.create", "{\"tenant\":\"acme\",\"name\":\"ann\",\"role\":\"admin\"}", NULL, 0);
  op_ok(&ann, "assistant.create", "{\"name\":\"bot\"}", res, sizeof res);
  assert_int_equal(json_field(res, "id", assistant, sizeof assistant), 0);
  add_server("v1", &v1);
  add_server("v2", &v2);
  return 0;
}

static int teardown(void **st) {
  (void)st;
  tu_close(&env, eng);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "sh tests/fixtures/stop.sh %d %d", v1.pid, v2.pid);
  if (system(cmd) != 0) fprintf(stderr, "stop.sh failed\n");
  return 0;
}

static char *tool_args(const char *tool, const char *arguments) {
  static __thread char buf[1024];
  snprintf(buf, sizeof buf, "{\"assistant\":\"%s\",\"tool\":\"%s\",\"arguments\":%s}", assistant, tool, arguments);
  return buf;
}

/* ---- cancellation -------------------------------------------------------- */

static void test_cancel_before_start(void **st) {
  (void)st;
  mcpl_call *c = mcpl_call_new();
  assert_non_null(c);
  assert_int_equal(mcpl_call_cancel(c), MCPL_OK);
  char *res = NULL;
  assert_int_equal(mcpl_op_call(eng, &sys, "engine.info", NULL, c, &res), MCPL_E_TIMEOUT);
  assert_non_null(strstr(res, "\"reason\":\"cancelled\""));
  mcpl_free(res);
  /* a cancelled handle stays cancelled */
  assert_int_equal(mcpl_op_call(eng, &sys, "engine.info", NULL, c, &res), MCPL_E_TIMEOUT);
  mcpl_free(res);
  mcpl_call_free(c);
  /* a fresh handle runs; NULL is mcpl_op */
  c = mcpl_call_new();
  assert_int_equal(mcpl_op_call(eng, &sys, "engine.info", NULL, c, &res), MCPL_OK);
  mcpl_free(res);
  assert_int_equal(mcpl_op_call(eng, &sys, "engine.info", NULL, NULL, &res), MCPL_OK);
  mcpl_free(res);
  mcpl_call_free(c);
  assert_int_equal(mcpl_call_cancel(NULL), MCPL_E_INVALID_ARGUMENT);
}

typedef struct {
  mcpl_call *c;
  const char *tool, *arguments;
  int rc;
  char *res;
  long took_ms;
} runner;

static void *run_call(void *p) {
  runner *r = p;
  long t0 = now_ms();
  r->rc = mcpl_op_call(eng, &ann, "tool.call", tool_args(r->tool, r->arguments), r->c, &r->res);
  r->took_ms = now_ms() - t0;
  return NULL;
}

/* A call cancelled from another thread returns at once, and its server
 * stops working on it: v1 gets notifications/cancelled, v2 sees the
 * request's stream closed. Both fixtures log the tool call they abandoned. */
static void cancel_from_thread(const fixture *f, const char *tool) {
  int before = cancelled_count(f);
  runner r = {mcpl_call_new(), tool, "{\"ms\":30000}", -1, NULL, 0};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, run_call, &r), 0);
  usleep(700 * 1000); /* the call is at the server by now */
  /* the handle is in use: another call with it is refused */
  char *res = NULL;
  assert_int_equal(mcpl_op_call(eng, &sys, "engine.info", NULL, r.c, &res), MCPL_E_INVALID_ARGUMENT);
  mcpl_free(res);
  long t0 = now_ms();
  assert_int_equal(mcpl_call_cancel(r.c), MCPL_OK);
  pthread_join(t, NULL);
  long after_cancel = now_ms() - t0;
  assert_int_equal(r.rc, MCPL_E_TIMEOUT);
  assert_non_null(strstr(r.res, "\"reason\":\"cancelled\""));
  assert_true(after_cancel < 5000); /* a 30 s call; generous for a loaded machine */
  mcpl_free(r.res);
  mcpl_call_free(r.c);
  int after = before;
  for (int i = 0; i < 50 && after == before; i++) {
    usleep(100 * 1000);
    after = cancelled_count(f);
  }
  assert_int_equal(after, before + 1);
}

static void test_cancel_v1(void **st) { (void)st; cancel_from_thread(&v1, "v1__slow"); }
static void test_cancel_v2(void **st) { (void)st; cancel_from_thread(&v2, "v2__slow"); }

/* ---- events ------------------------------------------------------------- */

typedef struct {
  int n;
  char first[1024];
} events_seen;

static void on_event(void *ud, const char *ev) {
  events_seen *e = ud;
  if (e->n++ == 0) snprintf(e->first, sizeof e->first, "%s", ev);
}

static void events_of(const char *tool) {
  events_seen seen = {0, ""};
  mcpl_call *c = mcpl_call_new();
  mcpl_call_set_events(c, on_event, &seen);
  char *res = NULL;
  int rc = mcpl_op_call(eng, &ann, "tool.call", tool_args(tool, "{\"steps\":3}"), c, &res);
  if (rc != MCPL_OK) fprintf(stderr, "%s: %s\n", tool, res);
  assert_int_equal(rc, MCPL_OK);
  assert_non_null(strstr(res, "done after 3 steps"));
  mcpl_free(res);
  mcpl_call_free(c);
  assert_int_equal(seen.n, 3);
  assert_non_null(strstr(seen.first, "\"type\":\"progress\""));
  assert_non_null(strstr(seen.first, "\"progress\":1"));
  assert_non_null(strstr(seen.first, "\"total\":3"));
  assert_non_null(strstr(seen.first, "\"name\":\"v"));  /* marked with its server */
}

static void test_events(void **st) {
  (void)st;
  events_of("v1__progress");
  events_of("v2__progress");
}

/* ---- input handlers ------------------------------------------------------ */

typedef struct {
  const char *answer;  /* the reply, or NULL for none */
  int n;
  char req[4096];
  int second_set;      /* what a second mcpl_reply_set returned */
} asker;

static void per_call_input(void *ud, const char *req, mcpl_reply *reply) {
  asker *a = ud;
  a->n++;
  snprintf(a->req, sizeof a->req, "%s", req);
  if (!a->answer) return;
  assert_int_equal(mcpl_reply_set(reply, a->answer), MCPL_OK);
  a->second_set = mcpl_reply_set(reply, a->answer);
}

static char *call_with(const char *tool, asker *a, int *rc) {
  mcpl_call *c = mcpl_call_new();
  if (a) mcpl_call_set_input(c, per_call_input, a, MCPL_INPUT_ELICITATION);
  char *res = NULL;
  *rc = mcpl_op_call(eng, &ann, "tool.call", tool_args(tool, "{}"), c, &res);
  mcpl_call_free(c);
  return res;
}

static void form_answers(const char *server) {
  char tool[64];
  int rc;
  snprintf(tool, sizeof tool, "%s__ask_form", server);
  /* accept: the content goes back with the defaults of fields left out */
  asker a = {"{\"action\":\"accept\",\"content\":{\"name\":\"Ann\",\"color\":\"blue\"}}", 0, "", 0};
  char *res = call_with(tool, &a, &rc);
  assert_int_equal(rc, MCPL_OK);
  assert_int_equal(a.n, 1);
  assert_int_equal(a.second_set, MCPL_E_INVALID_ARGUMENT);
  assert_non_null(strstr(a.req, "\"mode\":\"form\""));
  assert_non_null(strstr(a.req, "\"server\":{"));
  assert_non_null(strstr(res, "\\\"name\\\":\\\"Ann\\\""));
  assert_non_null(strstr(res, "\\\"color\\\":\\\"blue\\\""));
  assert_non_null(strstr(res, "\\\"age\\\":30"));  /* a default (SEP-1034) */
  mcpl_free(res);
  /* decline and cancel reach the server as such */
  a = (asker){"{\"action\":\"decline\"}", 0, "", 0};
  res = call_with(tool, &a, &rc);
  assert_int_equal(rc, MCPL_OK);
  assert_non_null(strstr(res, "\\\"action\\\":\\\"decline\\\""));
  mcpl_free(res);
  a = (asker){NULL, 0, "", 0}; /* no reply: cancel */
  res = call_with(tool, &a, &rc);
  assert_int_equal(rc, MCPL_OK);
  assert_int_equal(a.n, 1);
  assert_non_null(strstr(res, "\\\"action\\\":\\\"cancel\\\""));
  mcpl_free(res);
  /* an answer that does not fit the form fails the call, naming the field */
  a = (asker){"{\"action\":\"accept\",\"content\":{\"name\":\"Ann\",\"age\":\"old\"}}", 0, "", 0};
  res = call_with(tool, &a, &rc);
  assert_int_equal(rc, MCPL_E_INVALID_ARGUMENT);
  assert_non_null(strstr(res, "content.age"));
  mcpl_free(res);
  a = (asker){"{\"action\":\"accept\",\"content\":{\"color\":\"red\"}}", 0, "", 0};
  res = call_with(tool, &a, &rc);
  assert_int_equal(rc, MCPL_E_INVALID_ARGUMENT);
  assert_non_null(strstr(res, "content.name"));
  assert_non_null(strstr(res, "is required"));
  mcpl_free(res);
}

static void test_form_v1(void **st) { (void)st; form_answers("v1"); }
static void test_form_v2(void **st) { (void)st; form_answers("v2"); }

/* the URL of URL mode reaches the host as data, marked with its server */
static void test_url_mode(void **st) {
  (void)st;
  const char *servers[] = {"v1", "v2"};
  for (int i = 0; i < 2; i++) {
    char tool[64];
    int rc;
    snprintf(tool, sizeof tool, "%s__ask_url", servers[i]);
    asker a = {"{\"action\":\"accept\"}", 0, "", 0};
    char *res = call_with(tool, &a, &rc);
    assert_int_equal(rc, MCPL_OK);
    assert_non_null(strstr(a.req, "\"mode\":\"url\""));
    assert_non_null(strstr(a.req, "\"url\":\"https://auth.example.com/connect?flow=42\""));
    assert_non_null(strstr(a.req, "\"url_host\":\"auth.example.com\""));
    assert_non_null(strstr(a.req, "\"name\":\"v"));
    assert_non_null(strstr(res, "url: {\\\"action\\\":\\\"accept\\\"}"));
    mcpl_free(res);
  }
}

/* Sampling is answered by the engine's default handler (it declared it);
 * roots nobody answers: refused with the spec's error (legacy), and a
 * 2026-07-28 server may not even ask (it was not declared). */
static void test_sampling_and_roots(void **st) {
  (void)st;
  int before = default_calls, rc;
  char *res = call_with("v1__ask_sampling", NULL, &rc);
  assert_int_equal(rc, MCPL_OK);
  assert_non_null(strstr(res, "from the engine handler"));
  assert_int_equal(default_calls, before + 1);
  mcpl_free(res);
  res = call_with("v2__ask_sampling", NULL, &rc);
  assert_int_equal(rc, MCPL_OK);
  assert_non_null(strstr(res, "from the engine handler"));
  mcpl_free(res);
  res = call_with("v1__ask_roots", NULL, &rc);
  assert_int_equal(rc, MCPL_OK);
  assert_non_null(strstr(res, "roots refused: -32601"));
  mcpl_free(res);
  res = call_with("v2__ask_roots", NULL, &rc);
  assert_int_equal(rc, MCPL_E_UPSTREAM_ERROR);
  assert_non_null(strstr(res, "-32021"));
  mcpl_free(res);
}

/* Without a handler the call waits for its user (a continuation); a
 * handshake-era server's stream is held open meanwhile. One is answered; one
 * is left for mcpl_close, which cancels it and tells the server. */
static void test_continuations(void **st) {
  (void)st;
  const char *servers[] = {"v1", "v2"};
  for (int i = 0; i < 2; i++) {
    char tool[64], cont[128], key[64], args[1024];
    int rc;
    snprintf(tool, sizeof tool, "%s__ask_form", servers[i]);
    char *res = call_with(tool, NULL, &rc);
    assert_int_equal(rc, MCPL_OK);
    assert_non_null(strstr(res, "\"resultType\":\"input_required\""));
    assert_int_equal(json_field(res, "continuation", cont, sizeof cont), 0);
    assert_int_equal(json_field(res, "key", key, sizeof key), 0);
    mcpl_free(res);
    snprintf(args, sizeof args, "{\"continuation\":\"%s\",\"input_responses\":{\"%s\":{\"action\":\"accept\","
             "\"content\":{\"name\":\"Cee\"}}}}", cont, key);
    op_ok(&ann, "tool.continue", args, NULL, 0);
    res = call_with(tool, NULL, &rc); /* left unanswered: teardown closes the engine */
    assert_int_equal(rc, MCPL_OK);
    assert_non_null(strstr(res, "\"continuation\""));
    mcpl_free(res);
  }
}

/* ---- threads of a handshake-era call ------------------------------------------- */

/* the threads of this process now */
static int task_count(void) {
  DIR *d = opendir("/proc/self/task");
  assert_non_null(d);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (de->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

typedef struct {
  int n, most;
} tasks_seen;

static void count_tasks(void *ud, const char *ev) {
  (void)ev;
  tasks_seen *t = ud;
  int n = task_count();
  if (n > t->most) t->most = n;
  t->n++;
}

/* A handshake-era call that may wait for its user (no handler for
 * elicitation) reads its stream on the caller's thread: while it runs (its
 * progress events come in) the process has no more threads than before it,
 * however many such calls run one after another. */
static void test_legacy_call_no_thread(void **st) {
  (void)st;
  tasks_seen warm = {0, 0};
  mcpl_call *c = mcpl_call_new();
  mcpl_call_set_events(c, count_tasks, &warm);
  char *res = NULL;
  /* the first call opens the session and its kept GET stream (a thread) */
  assert_int_equal(mcpl_op_call(eng, &ann, "tool.call", tool_args("v1__progress", "{\"steps\":2}"), c, &res), MCPL_OK);
  mcpl_free(res);
  mcpl_call_free(c);
  int before = task_count();
  for (int i = 0; i < 20; i++) {
    tasks_seen t = {0, 0};
    c = mcpl_call_new();
    mcpl_call_set_events(c, count_tasks, &t);
    int rc = mcpl_op_call(eng, &ann, "tool.call", tool_args("v1__progress", "{\"steps\":2}"), c, &res);
    if (rc != MCPL_OK) fprintf(stderr, "v1__progress: %s\n", res);
    assert_int_equal(rc, MCPL_OK);
    mcpl_free(res);
    mcpl_call_free(c);
    assert_int_equal(t.n, 2);
    if (t.most != before) fprintf(stderr, "call %d: %d threads while it ran, %d before\n", i, t.most, before);
    assert_int_equal(t.most, before);
  }
  assert_int_equal(task_count(), before);
}

/* A question on such a call's stream parks the call: its stream is then
 * read by a thread of its own (one more thread while it waits), and the
 * continuation carries it on from there (the thread gone once it ends). */
static void test_parked_call_thread(void **st) {
  (void)st;
  char cont[128], key[64], args[1024];
  int rc;
  int before = task_count();
  char *res = call_with("v1__ask_form", NULL, &rc);
  assert_int_equal(rc, MCPL_OK);
  assert_non_null(strstr(res, "\"resultType\":\"input_required\""));
  assert_int_equal(json_field(res, "continuation", cont, sizeof cont), 0);
  assert_int_equal(json_field(res, "key", key, sizeof key), 0);
  mcpl_free(res);
  assert_int_equal(task_count(), before + 1);
  snprintf(args, sizeof args, "{\"continuation\":\"%s\",\"input_responses\":{\"%s\":{\"action\":\"accept\","
           "\"content\":{\"name\":\"Dee\"}}}}", cont, key);
  char out[8192];
  op_ok(&ann, "tool.continue", args, out, sizeof out);
  assert_non_null(strstr(out, "Dee"));
  assert_int_equal(task_count(), before);
}

/* ---- the system CA bundle, read on first use --------------------------------- */

/* Without --ca-file, the system bundle (here SSL_CERT_FILE: the fixtures' CA)
 * is read when the first chain needs an issuer: several threads whose first
 * connections start together all verify, the bundle read once among them
 * (make tsan runs this file under ThreadSanitizer). */
typedef struct {
  mcpl_engine *e;
  pthread_barrier_t *go;
  const char *args;
  int rc;
  char *res;
} tls_runner;

static void *run_tls(void *p) {
  tls_runner *r = p;
  pthread_barrier_wait(r->go);
  r->rc = mcpl_op(r->e, &sys, "mcp.session", r->args, &r->res);
  return NULL;
}

static void test_bundle_first_use_threads(void **st) {
  (void)st;
  enum { N = 4 };
  tu_env env2;
  tu_paths(&env2);
  char ca[600], args[1024];
  snprintf(ca, sizeof ca, "%s/ca.pem", certs);
  setenv("SSL_CERT_FILE", ca, 1);
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", env2.db);
  mcpl_options_set(o, "key_file", env2.key);
  mcpl_options_set(o, "policies", "");
  mcpl_options_set(o, "pool_size", "4");
  char *err = NULL;
  mcpl_engine *e = mcpl_open(o, &err);
  mcpl_options_free(o);
  assert_non_null(e);
  char *res = NULL;
  assert_int_equal(mcpl_op(e, &sys, "settings.set", "{\"allow_private_urls\":true}", &res), MCPL_OK);
  mcpl_free(res);
  snprintf(args, sizeof args, "{\"url\":\"%s\",\"steps\":[{\"step\":\"discover\"}]}", v2.url);
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, N);
  pthread_t t[N];
  tls_runner r[N];
  for (int i = 0; i < N; i++) {
    r[i] = (tls_runner){e, &go, args, -1, NULL};
    assert_int_equal(pthread_create(&t[i], NULL, run_tls, &r[i]), 0);
  }
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&go);
  /* each reached the server over verified TLS (it asks for the API key this
   * request does not send); an unverified chain is a tls_error instead */
  for (int i = 0; i < N; i++) {
    if (r[i].rc != MCPL_OK || !strstr(r[i].res, "\"http_status\":401")) fprintf(stderr, "thread %d: %s\n", i, r[i].res);
    assert_int_equal(r[i].rc, MCPL_OK);
    assert_non_null(strstr(r[i].res, "\"http_status\":401"));
    assert_null(strstr(r[i].res, "tls_error"));
    mcpl_free(r[i].res);
  }
  tu_close(&env2, e);
  unsetenv("SSL_CERT_FILE");
}

static void test_reply_limits(void **st) {
  (void)st;
  assert_int_equal(mcpl_reply_set(NULL, "{}"), MCPL_E_INVALID_ARGUMENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_cancel_before_start),
    cmocka_unit_test(test_cancel_v1),
    cmocka_unit_test(test_cancel_v2),
    cmocka_unit_test(test_events),
    cmocka_unit_test(test_form_v1),
    cmocka_unit_test(test_form_v2),
    cmocka_unit_test(test_url_mode),
    cmocka_unit_test(test_sampling_and_roots),
    cmocka_unit_test(test_legacy_call_no_thread),
    cmocka_unit_test(test_parked_call_thread),
    cmocka_unit_test(test_continuations),
    cmocka_unit_test(test_bundle_first_use_threads),
    cmocka_unit_test(test_reply_limits),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
