/* test_store_crash.c: crash safety. A child process makes acknowledged
 * writes (single inserts with secrets, and two-row transactions) and is
 * killed with SIGKILL at random moments, many times; after each kill the
 * database passes integrity_check and holds every acknowledged write. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "test_store_harness.h"

#define ROUNDS 30
/* lookups go through the (tenant_id, name) unique index */
#define TENANT "(SELECT id FROM tenants WHERE name = 'crash')"

static const char CHILD_LUA[] =
  "local round, ack = ...\n"
  "local SYS = { system = true }\n"
  "local t = store.find(SYS, 'tenants', { name = 'crash' })\n"
  "local i = 0\n"
  "while true do\n"
  "  i = i + 1\n"
  "  local name = round .. '-' .. i\n"
  "  if i % 3 == 0 then\n"
  "    store.tx(function()\n"
  "      store.insert(SYS, 'servers', { tenant_id = t.id, name = name, api_key = 'k' .. name })\n"
  "      store.insert(SYS, 'servers', { tenant_id = t.id, name = name .. '-pair' })\n"
  "    end)\n"
  "  else\n"
  "    store.insert(SYS, 'servers', { tenant_id = t.id, name = name, api_key = 'k' .. name })\n"
  "  end\n"
  "  ack(name)\n"  /* only after the commit returned */
  "end\n";

static int l_ack(lua_State *L) {
  int fd = (int)lua_tointeger(L, lua_upvalueindex(1));
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char line[128];
  int m = snprintf(line, sizeof line, "%.*s\n", (int)n, s);
  /* one write() under PIPE_BUF is atomic: a kill never leaves half a name */
  if (write(fd, line, (size_t)m) != m) _exit(3);
  return 0;
}

static void child(sh_env *env, int round, int fd) {
  char *err = NULL;
  mcpl_engine *e = sh_engine(env, env->db, env->key, &err);
  if (!e) { fprintf(stderr, "child open: %s\n", err ? err : "?"); _exit(2); }
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  mcpl_engine_bind(L, e);
  sh_global_module(L, "json", luaopen_mcpl_json);
  sh_global_module(L, "store", luaopen_mcpl_store);
  if (luaL_loadstring(L, CHILD_LUA) != LUA_OK) _exit(4);
  lua_pushinteger(L, round);
  lua_pushinteger(L, fd);
  lua_pushcclosure(L, l_ack, 1);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    const char *m = lua_tostring(L, -1);
    if (!m && lua_istable(L, -1)) { lua_getfield(L, -1, "message"); m = lua_tostring(L, -1); }
    fprintf(stderr, "child: %s\n", m ? m : "?");
  }
  _exit(5);
}

static long long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads acks from fd into buf for wait_ms at most, or until EOF. */
static void read_acks(int fd, char *buf, size_t *len, size_t cap, int wait_ms) {
  struct pollfd p = {fd, POLLIN, 0};
  long long end = mono_ms() + wait_ms;
  for (;;) {
    long long left = end - mono_ms();
    if (left <= 0 || *len + 1 >= cap) return;
    if (poll(&p, 1, (int)left) <= 0) return;
    ssize_t n = read(fd, buf + *len, cap - *len - 1);
    if (n <= 0) return;
    *len += (size_t)n;
    buf[*len] = 0;
  }
}

static long long count_q(sqlite3 *db, const char *q, const char *arg) {
  sqlite3_stmt *st = NULL;
  long long v = -1;
  if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) return -1;
  if (arg) sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void test_kill_during_writes(void **state) {
  (void)state;
  sh_env env;
  sh_setup(&env);
  assert_int_equal(luaL_dostring(env.L, "store.insert({system=true}, 'tenants', {name='crash'})"), LUA_OK);
  /* the parent holds no connection while children write */
  lua_close(env.L);
  env.L = NULL;
  mcpl_close(env.e);
  env.e = NULL;
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  size_t cap = 4 * 1024 * 1024;
  char *acks = malloc(cap);
  assert_non_null(acks);
  long long total_acked = 0, kills_mid = 0, total_tx = 0;
  for (int round = 1; round <= ROUNDS; round++) {
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { close(pfd[0]); child(&env, round, pfd[1]); }
    close(pfd[1]);
    size_t len = 0;
    acks[0] = 0;
    /* let it run a random while, then kill it: in odd rounds counting its
     * start-up (a kill may land while it opens the store), in even rounds
     * from its first acknowledged write (so that every run, however slow the
     * machine, kills children in the middle of real work) */
    if (round % 2 == 0) {
      long long until = mono_ms() + 30000;
      while (len == 0 && mono_ms() < until) read_acks(pfd[0], acks, &len, cap, 100);
    }
    read_acks(pfd[0], acks, &len, cap, 20 + rand() % 80);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    read_acks(pfd[0], acks, &len, cap, 1000); /* the rest, up to EOF */
    close(pfd[0]);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
      fail_msg("round %d: the child ended by itself (status %d) instead of being killed", round, status);
    kills_mid++;

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(env.db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(count_q(db, "SELECT count(*) FROM pragma_foreign_key_check", NULL), 0);
    /* every acknowledged write is there, whole */
    long long n_round = 0;
    for (char *line = strtok(acks, "\n"); line; line = strtok(NULL, "\n")) {
      n_round++;
      if (count_q(db, "SELECT count(*) FROM servers WHERE tenant_id = " TENANT " AND name = ?1 AND api_key IS NOT NULL", line) != 1)
        fail_msg("round %d: acknowledged write '%s' is missing", round, line);
      int i = atoi(strchr(line, '-') + 1);
      if (i % 3 == 0) {
        total_tx++;
        char pair[128];
        snprintf(pair, sizeof pair, "%s-pair", line);
        if (count_q(db, "SELECT count(*) FROM servers WHERE tenant_id = " TENANT " AND name = ?1", pair) != 1)
          fail_msg("round %d: second row of acknowledged transaction '%s' is missing", round, line);
      }
    }
    /* transactions are atomic even when unacknowledged: a kill between the
     * two inserts of a transaction (every third write) leaves neither row,
     * never the first row without its pair (or the pair alone) */
    long long torn = count_q(db, "SELECT count(*) FROM servers s WHERE s.tenant_id = " TENANT
                                 " AND s.name NOT LIKE '%-pair'"
                                 " AND CAST(substr(s.name, instr(s.name, '-') + 1) AS INTEGER) % 3 = 0"
                                 " AND NOT EXISTS (SELECT 1 FROM servers p WHERE p.tenant_id = s.tenant_id"
                                 " AND p.name = s.name || '-pair')", NULL);
    if (torn != 0) fail_msg("round %d: %lld transaction(s) left their first row without the pair", round, torn);
    long long orphans = count_q(db, "SELECT count(*) FROM servers p WHERE p.tenant_id = " TENANT
                                    " AND p.name LIKE '%-pair' AND NOT EXISTS (SELECT 1 FROM servers s"
                                    " WHERE s.tenant_id = p.tenant_id AND s.name = substr(p.name, 1, length(p.name) - 5))",
                                NULL);
    if (orphans != 0) fail_msg("round %d: %lld pair row(s) without their first row", round, orphans);
    sqlite3_close(db);
    total_acked += n_round;
  }
  printf("# %lld rounds killed mid-run, %lld acknowledged writes verified (%lld transactions)\n",
         kills_mid, total_acked, total_tx);
  assert_true(total_acked > ROUNDS); /* the children did real work */
  assert_true(total_tx > 0);         /* including transactions */
  /* the key ring survived the kills: an acknowledged secret still opens */
  char *err = NULL;
  env.e = sh_engine(&env, env.db, env.key, &err);
  assert_non_null(env.e);
  env.L = luaL_newstate();
  luaL_openlibs(env.L);
  mcpl_engine_bind(env.L, env.e);
  sh_global_module(env.L, "json", luaopen_mcpl_json);
  sh_global_module(env.L, "store", luaopen_mcpl_store);
  int rc = luaL_dostring(env.L,
    "local SYS = {system=true}\n"
    "local s = store.list(SYS, 'servers', {limit = 1}).items[1]\n"
    "assert(store.reveal(SYS, 'servers', s.id, 'api_key') == 'k' .. s.name, 'secret opens')");
  if (rc != LUA_OK) fail_msg("%s", lua_tostring(env.L, -1));
  free(acks);
  sh_teardown(&env);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill_during_writes)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
