/* instance.c: one engine instance for the multi-instance tests: opens an engine through the
 * public C API and runs the ops it reads on stdin, each on its own thread, as a host would. */
/* Usage: mcplink-instance --db DB [--key-file F] [--ca-file F] [--pool N] [--policies DIR]
 *                          [--log-file F] [--log-level L] [--oauth-redirect-uri URI]
 * Prints "ready {"pid":N}" once open (or "fail ERROR-JSON" and exits 1). Each stdin line
 *   ID ACTOR OP [JSON]      ACTOR: system | TENANT/USER
 * runs OP at once on a new thread and prints "ID CODE RESULT-JSON" when it ends (CODE: ok or
 * the error code). "ID wait" prints "ID ok {}" when every op started before it has ended; "ID
 * exit" (or end of input) waits for them, closes the engine and exits 0. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mcplink.h"

#define MAX_LINE 65536
#define MAX_INFLIGHT 64

static mcpl_engine *engine;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int inflight;

typedef struct {
  char id[64], tenant[256], user[256], op[128];
  int system;
  char *args;
} job;

static void emit(const char *id, const char *code, const char *json) {
  pthread_mutex_lock(&mu);
  /* one line per result: the JSON of mcpl_op has no raw newlines */
  printf("%s %s %s\n", id, code, json ? json : "{}");
  fflush(stdout);
  pthread_mutex_unlock(&mu);
}

static void *run(void *p) {
  job *j = p;
  mcpl_actor a = {j->system ? NULL : j->tenant, j->system ? NULL : j->user, j->system};
  char *res = NULL;
  int rc = mcpl_op(engine, &a, j->op, j->args, &res);
  emit(j->id, rc == MCPL_OK ? "ok" : mcpl_code_name(rc), res);
  mcpl_free(res);
  free(j->args);
  free(j);
  pthread_mutex_lock(&mu);
  inflight--;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void wait_all(void) {
  pthread_mutex_lock(&mu);
  while (inflight > 0) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
}

/* "ID ACTOR OP [JSON]" -> a job; NULL when the line is not one. */
static job *parse(char *line) {
  char *save = NULL, *id = strtok_r(line, " ", &save), *actor = strtok_r(NULL, " ", &save);
  char *op = strtok_r(NULL, " ", &save), *rest = strtok_r(NULL, "", &save);
  if (!id || !actor || !op) return NULL;
  job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  snprintf(j->id, sizeof j->id, "%s", id);
  snprintf(j->op, sizeof j->op, "%s", op);
  if (strcmp(actor, "system") == 0) j->system = 1;
  else {
    char *slash = strchr(actor, '/');
    if (!slash) { free(j); return NULL; }
    *slash = 0;
    snprintf(j->tenant, sizeof j->tenant, "%s", actor);
    snprintf(j->user, sizeof j->user, "%s", slash + 1);
  }
  j->args = strdup(rest ? rest : "{}");
  return j;
}

int main(int argc, char **argv) {
  mcpl_options *o = mcpl_options_new();
  static const char *const names[][2] = {
    {"--db", "db"}, {"--key-file", "key_file"}, {"--ca-file", "ca_file"}, {"--pool", "pool_size"},
    {"--policies", "policies"}, {"--log-file", "log_file"}, {"--log-level", "log_level"},
    {"--oauth-redirect-uri", "oauth_redirect_uri"}};
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *opt = NULL;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
      if (strcmp(argv[i], names[k][0]) == 0) opt = names[k][1];
    if (!opt || mcpl_options_set(o, opt, argv[i + 1]) != MCPL_OK) {
      fprintf(stderr, "mcplink-instance: bad option %s\n", argv[i]);
      return 2;
    }
  }
  char *err = NULL;
  engine = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!engine) {
    printf("fail %s\n", err ? err : "{}");
    return 1;
  }
  printf("ready {\"pid\":%d}\n", (int)getpid());
  fflush(stdout);
  static char line[MAX_LINE];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    char id[64] = "", word[16] = "";
    if (sscanf(line, "%63s %15s", id, word) == 2 && strcmp(word, "wait") == 0) {
      wait_all();
      emit(id, "ok", "{}");
      continue;
    }
    if (strcmp(word, "exit") == 0) break;
    job *j = parse(line);
    if (!j) { emit(id[0] ? id : "?", "invalid_argument", "{\"error\":\"bad command line\"}"); continue; }
    pthread_mutex_lock(&mu);
    while (inflight >= MAX_INFLIGHT) pthread_cond_wait(&cv, &mu);
    inflight++;
    pthread_mutex_unlock(&mu);
    pthread_t t;
    if (pthread_create(&t, NULL, run, j) != 0) {
      emit(j->id, "internal", "{\"error\":\"no thread\"}");
      free(j->args);
      free(j);
      pthread_mutex_lock(&mu);
      inflight--;
      pthread_mutex_unlock(&mu);
      continue;
    }
    pthread_detach(t);
  }
  wait_all();
  mcpl_close(engine);
  return 0;
}
