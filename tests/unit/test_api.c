/* test_api.c: the public C API: open, op, errors, options, concurrency. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <lauxlib.h>
#include "engine.h"
#include "mcplink.h"
#include "testutil.h"

/* An engine on a fresh database and one engine Lua state of it. */
static lua_State *engine_state(tu_env *env, mcpl_engine **e) {
  char *err = NULL;
  *e = tu_open(env, NULL);
  lua_State *L = mcpl_state_engine(*e, &err);
  assert_non_null(L);
  return L;
}

static void test_version(void **st) {
  (void)st;
  assert_non_null(mcpl_version());
  assert_true(strlen(mcpl_version()) > 0);
}

static void test_options_reject_unknown(void **st) {
  (void)st;
  mcpl_options *o = mcpl_options_new();
  assert_int_equal(mcpl_options_set(o, "no_such_option", "x"), MCPL_E_INVALID_ARGUMENT);
  assert_int_equal(mcpl_options_set(o, "pool_size", "0"), MCPL_E_INVALID_ARGUMENT);
  assert_int_equal(mcpl_options_set(o, "pool_size", "abc"), MCPL_E_INVALID_ARGUMENT);
  assert_int_equal(mcpl_options_set(o, "pool_size", "4"), MCPL_OK);
  assert_int_equal(mcpl_options_set(o, "log_level", "loud"), MCPL_E_INVALID_ARGUMENT);
  mcpl_options_free(o);
}

static void test_op_list_and_errors(void **st) {
  (void)st;
  tu_env env;
  mcpl_engine *e = tu_open(&env, NULL);
  mcpl_actor sys = {NULL, NULL, 1};
  char *res = NULL;
  assert_int_equal(mcpl_op(e, &sys, "op.list", "{}", &res), MCPL_OK);
  assert_non_null(strstr(res, "\"engine.info\""));
  mcpl_free(res);

  assert_int_equal(mcpl_op(e, &sys, "no.such", NULL, &res), MCPL_E_NOT_FOUND);
  assert_non_null(strstr(res, "\"code\":\"not_found\""));
  mcpl_free(res);

  assert_int_equal(mcpl_op(e, &sys, "engine.info", "{\"bogus\":1}", &res), MCPL_E_INVALID_ARGUMENT);
  assert_non_null(strstr(res, "\"field\":\"bogus\""));
  mcpl_free(res);

  assert_int_equal(mcpl_op(e, &sys, "engine.info", "[1,2]", &res), MCPL_E_INVALID_ARGUMENT);
  mcpl_free(res);
  assert_int_equal(mcpl_op(e, &sys, "engine.info", "{\"a\":", &res), MCPL_E_INVALID_ARGUMENT);
  mcpl_free(res);
  assert_int_equal(mcpl_op(e, NULL, NULL, NULL, &res), MCPL_E_INVALID_ARGUMENT);
  mcpl_free(res);
  tu_close(&env, e);
}

/* Error JSON names the machine-readable reason beside the code when there is one. */
static void test_error_reason(void **st) {
  (void)st;
  tu_env env;
  mcpl_engine *e = tu_open(&env, NULL);
  mcpl_actor sys = {NULL, NULL, 1}, admin = {"acme", "ann", 0};
  char *res = NULL;
  assert_int_equal(mcpl_op(e, &sys, "tenant.create", "{\"name\":\"acme\"}", &res), MCPL_OK);
  mcpl_free(res);
  assert_int_equal(mcpl_op(e, &sys, "user.create", "{\"tenant\":\"acme\",\"name\":\"ann\",\"role\":\"admin\"}", &res), MCPL_OK);
  mcpl_free(res);
  assert_int_equal(mcpl_op(e, &admin, "server.create", "{\"name\":\"s\"}", &res), MCPL_OK);
  mcpl_free(res);
  assert_int_equal(mcpl_op(e, &admin, "server.update", "{\"id\":\"s\",\"url\":\"https://169.254.169.254/mcp\"}", &res),
                   MCPL_E_URL_BLOCKED);
  assert_non_null(strstr(res, "\"code\":\"url_blocked\""));
  assert_non_null(strstr(res, "\"reason\":\"private_address 169.254.169.254\""));
  mcpl_free(res);
  /* no reason, no field: a plain not_found */
  assert_int_equal(mcpl_op(e, &admin, "server.get", "{\"id\":\"nope\"}", &res), MCPL_E_NOT_FOUND);
  assert_null(strstr(res, "\"reason\""));
  mcpl_free(res);
  tu_close(&env, e);
}

static void test_code_names(void **st) {
  (void)st;
  assert_string_equal(mcpl_code_name(MCPL_E_URL_BLOCKED), "url_blocked");
  assert_string_equal(mcpl_code_name(MCPL_E_KEY_UNAVAILABLE), "key_unavailable");
  assert_string_equal(mcpl_code_name(MCPL_E_INTERNAL), "internal");
  assert_string_equal(mcpl_code_name(MCPL_E_UNAVAILABLE), "unavailable");
  assert_int_equal(MCPL_E_INTERNAL, 12); /* ABI: existing codes keep their numbers */
  assert_string_equal(mcpl_code_name(999), "internal");
  assert_string_equal(mcpl_code_name(MCPL_CODE_COUNT), "internal");
}

/* One table names the codes: every mcpl_code round-trips through its name,
 * and engine Lua's errors.codes is that table (core.error_codes), no more,
 * no less. */
static void test_code_table(void **st) {
  (void)st;
  for (int i = 0; i < MCPL_CODE_COUNT; i++) {
    assert_true(strlen(mcpl_code_name(i)) > 0);
    assert_int_equal(mcpl_code_from_name(mcpl_code_name(i)), i);
  }
  tu_env env;
  mcpl_engine *e;
  lua_State *L = engine_state(&env, &e);
  assert_int_equal(luaL_dostring(L, "local n, codes = 0, require('errors').codes\n"
                                    "for _ in pairs(codes) do n = n + 1 end\n"
                                    "return n, codes, require('core').error_codes()"), LUA_OK);
  assert_int_equal(lua_tointeger(L, -3), MCPL_CODE_COUNT - 1);  /* every code but ok */
  assert_int_equal(luaL_len(L, -1), MCPL_CODE_COUNT);
  for (int i = 0; i < MCPL_CODE_COUNT; i++) {
    lua_rawgeti(L, -1, i + 1);
    assert_string_equal(lua_tostring(L, -1), mcpl_code_name(i));
    lua_getfield(L, -3, mcpl_code_name(i));
    assert_int_equal(lua_toboolean(L, -1), i != MCPL_OK);
    lua_pop(L, 2);
  }
  mcpl_state_close(L);
  tu_close(&env, e);
}

/* An engine state runs without a Lua hook (a count hook costs a check on
 * every VM instruction); cancelling arms one from another thread, which
 * stops pure Lua (no wait in it) at once, raises once, and disarms. */
struct canceller { mcpl_cancel *c; useconds_t after; };
static void *cancel_later(void *p) {
  struct canceller *k = p;
  usleep(k->after);
  mcpl_cancel_request(k->c);
  return NULL;
}

static void test_cancel_arms_hook(void **st) {
  (void)st;
  tu_env env;
  mcpl_engine *e;
  lua_State *L = engine_state(&env, &e);
  mcpl_cancel c = {0};
  mcpl_state_set_cancel(L, &c);
  assert_ptr_equal(c.L, L);
  assert_null(lua_gethook(L));
  assert_int_equal(lua_gethookmask(L), 0);
  /* an endless loop, then a loop that swallows errors with pcall: both end */
  /* (each gives up after 10 s of CPU, so a broken hook fails rather than hangs) */
  const char *loops[] = {"local t = os.clock() while os.clock() - t < 10 do end return 'not cancelled'",
                         "local t, n = os.clock(), 0 while os.clock() - t < 10 do "
                         "local ok = pcall(function() while os.clock() - t < 10 do n = n + 1 end end) "
                         "if not ok then return 'caught' end end return 'not cancelled'"};
  for (int i = 0; i < 2; i++) {
    atomic_store(&c.requested, 0);
    c.raised = 0;
    struct canceller k = {&c, 50000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &k), 0);
    int rc = luaL_loadstring(L, loops[i]) == LUA_OK ? lua_pcall(L, 0, 1, 0) : -1;
    pthread_join(t, NULL);
    if (i == 0) {
      assert_int_equal(rc, LUA_ERRRUN);
      assert_true(lua_istable(L, -1));
      lua_getfield(L, -1, "reason");
      assert_string_equal(lua_tostring(L, -1), "cancelled");
      lua_pop(L, 2);
    } else {
      /* raised once: the op's own handler (here the pcall) runs to its end */
      assert_int_equal(rc, LUA_OK);
      assert_string_equal(lua_tostring(L, -1), "caught");
      lua_pop(L, 1);
    }
    assert_int_equal(c.raised, 1);
    assert_int_equal(lua_gethookmask(L), 0); /* disarmed again */
  }
  /* a request made while nothing runs is raised at the next instruction */
  atomic_store(&c.requested, 0);
  c.raised = 0;
  mcpl_cancel_request(&c);
  assert_int_not_equal(lua_gethookmask(L), 0);
  assert_int_equal(luaL_loadstring(L, "local x = 1 return x"), LUA_OK);
  assert_int_equal(lua_pcall(L, 0, 1, 0), LUA_ERRRUN);
  lua_pop(L, 1);
  assert_int_equal(lua_gethookmask(L), 0);
  /* a stale arming (the flag was cleared for a new op) only disarms */
  atomic_store(&c.requested, 0);
  c.raised = 0;
  mcpl_cancel_request(&c);
  atomic_store(&c.requested, 0);
  assert_int_equal(luaL_dostring(L, "local x = 1 return x + 1"), LUA_OK);
  assert_int_equal(lua_tointeger(L, -1), 2);
  lua_pop(L, 1);
  assert_int_equal(lua_gethookmask(L), 0);
  /* the engine interrupt (the REPL's Ctrl-C) raises as long as it is set */
  mcpl_engine_interrupt(e);
  mcpl_state_arm(L);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(luaL_loadstring(L, "local t = os.clock() while os.clock() - t < 10 do end"), LUA_OK);
    assert_int_equal(lua_pcall(L, 0, 0, 0), LUA_ERRRUN);
    lua_pop(L, 1);
    assert_int_not_equal(lua_gethookmask(L), 0);
  }
  mcpl_engine_clear_interrupt(e);
  assert_int_equal(luaL_loadstring(L, "local s = 0 for i = 1, 30000 do s = s + i end return s"), LUA_OK);
  assert_int_equal(lua_pcall(L, 0, 1, 0), LUA_OK);
  assert_int_equal(lua_tointeger(L, -1), 450015000);
  lua_pop(L, 1);
  assert_int_equal(lua_gethookmask(L), 0);
  mcpl_state_close(L);
  tu_close(&env, e);
}

struct worker { mcpl_engine *e; int id; int failures; };

/* Each thread mixes reads and writes through the store: its own servers
 * (unique names), lists, gets, and engine-only ops. */
static void *worker_main(void *p) {
  struct worker *w = p;
  mcpl_actor sys = {NULL, NULL, 1}, admin = {"acme", "ann", 0};
  for (int i = 0; i < 60; i++) {
    char *res = NULL, args[128];
    int rc;
    switch (i % 4) {
    case 0:
      snprintf(args, sizeof args, "{\"name\":\"t%d-s%d\"}", w->id, i);
      rc = mcpl_op(w->e, &admin, "server.create", args, &res);
      break;
    case 1: rc = mcpl_op(w->e, &admin, "server.list", "{\"limit\":5}", &res); break;
    case 2: rc = mcpl_op(w->e, &sys, "engine.info", NULL, &res); break;
    default: rc = mcpl_op(w->e, &admin, "audit.list", "{\"limit\":3}", &res); break;
    }
    if (rc != MCPL_OK || !strchr(res, '{')) {
      fprintf(stderr, "thread %d op %d: %s\n", w->id, i, res ? res : "(null)");
      w->failures++;
    }
    mcpl_free(res);
  }
  return NULL;
}

/* The engine states' allocator keeps the small blocks an op freed for the
 * next op, never more than its limit, and hands them out again. */
/* Big blocks (mcpl_big_realloc): content survives every crossing of the
 * MCPL_BIG line, both ways, and a Lua string that large round-trips. */
static void test_big_blocks(void **st) {
  (void)st;
  size_t small = 1000, big = MCPL_BIG + 12345, bigger = 3 * MCPL_BIG;
  unsigned char *p = mcpl_big_realloc(NULL, 0, small);
  assert_non_null(p);
  for (size_t i = 0; i < small; i++) p[i] = (unsigned char)(i * 7);
  p = mcpl_big_realloc(p, small, big);
  assert_non_null(p);
  for (size_t i = 0; i < small; i++) assert_int_equal(p[i], (unsigned char)(i * 7));
  for (size_t i = 0; i < big; i++) p[i] = (unsigned char)(i * 13);
  p = mcpl_big_realloc(p, big, bigger);
  assert_non_null(p);
  for (size_t i = 0; i < big; i++) assert_int_equal(p[i], (unsigned char)(i * 13));
  p[bigger - 1] = 42;
  p = mcpl_big_realloc(p, bigger, small);
  assert_non_null(p);
  for (size_t i = 0; i < small; i++) assert_int_equal(p[i], (unsigned char)(i * 13));
  assert_null(mcpl_big_realloc(p, small, 0));
  tu_env env;
  mcpl_engine *e;
  lua_State *L = engine_state(&env, &e);
  assert_int_equal(luaL_dostring(L, "local s = string.rep('ab', 400000) .. 'z'\n"
                                    "local t = {} for i = 1, 100000 do t[i] = i end\n"
                                    "s = s .. s\n"
                                    "return #s, s:sub(-3), t[100000], s:sub(1, 4)"), LUA_OK);
  assert_int_equal(lua_tointeger(L, -4), 1600002);
  assert_string_equal(lua_tostring(L, -3), "abz");
  assert_int_equal(lua_tointeger(L, -2), 100000);
  assert_string_equal(lua_tostring(L, -1), "abab");
  mcpl_state_close(L);
  tu_close(&env, e);
}

static void test_state_allocator(void **st) {
  (void)st;
  tu_env env;
  mcpl_engine *e;
  lua_State *L = engine_state(&env, &e);
  size_t limit = 0;
  /* garbage of every small size and far more of it than the limit keeps */
  assert_int_equal(luaL_dostring(L, "local keep = {} collectgarbage('stop')\n"
                                    "for i = 1, 200000 do local t = {i, tostring(i), {x = i}}\n"
                                    "  if i % 1000 == 0 then keep[#keep + 1] = t end end\n"
                                    "collectgarbage('restart') collectgarbage()\n"
                                    "return #keep"), LUA_OK);
  assert_int_equal(lua_tointeger(L, -1), 200);
  lua_pop(L, 1);
  size_t kept = mcpl_state_kept(L, &limit);
  assert_true(kept <= limit);
  if (limit > 0) {
    assert_true(kept > limit / 2); /* the collection freed more than the limit: it is kept full */
    /* new objects come from the kept blocks */
    assert_int_equal(luaL_dostring(L, "_G.live = {} for i = 1, 2000 do live[i] = {i} end"), LUA_OK);
    assert_true(mcpl_state_kept(L, NULL) < kept);
    /* values made from reused blocks are intact */
    assert_int_equal(luaL_dostring(L, "local s = 0 for i = 1, 2000 do s = s + live[i][1] end return s"), LUA_OK);
    assert_int_equal(lua_tointeger(L, -1), 2000 * 2001 / 2);
    lua_pop(L, 1);
  }
  mcpl_state_close(L);
  tu_close(&env, e);
}

/* Many threads on one engine with a pool smaller than the thread count. */
static void test_concurrent_ops(void **st) {
  (void)st;
  tu_env env;
  mcpl_engine *e = tu_open(&env, "3");
  mcpl_actor sys = {NULL, NULL, 1};
  char *res = NULL;
  assert_int_equal(mcpl_op(e, &sys, "tenant.create", "{\"name\":\"acme\"}", &res), MCPL_OK);
  mcpl_free(res);
  assert_int_equal(mcpl_op(e, &sys, "user.create", "{\"tenant\":\"acme\",\"name\":\"ann\",\"role\":\"admin\"}", &res), MCPL_OK);
  mcpl_free(res);
  enum { N = 8 };
  pthread_t t[N];
  struct worker w[N];
  for (int i = 0; i < N; i++) {
    w[i].e = e;
    w[i].id = i;
    w[i].failures = 0;
    assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
  }
  int fails = 0;
  for (int i = 0; i < N; i++) { pthread_join(t[i], NULL); fails += w[i].failures; }
  assert_int_equal(fails, 0);
  /* every acknowledged create is there: 8 threads x 15 servers */
  mcpl_actor admin = {"acme", "ann", 0};
  int total = 0;
  char cursor[256] = "";
  for (int guard = 0; guard < 50; guard++) {
    char args[400];
    if (*cursor) snprintf(args, sizeof args, "{\"limit\":500,\"cursor\":\"%s\"}", cursor);
    else snprintf(args, sizeof args, "{\"limit\":500}");
    assert_int_equal(mcpl_op(e, &admin, "server.list", args, &res), MCPL_OK);
    for (const char *q = res; (q = strstr(q, "\"id\":\"srv_")); q++) total++;
    const char *c = strstr(res, "\"next_cursor\":\"");
    if (c) {
      c += 15;
      size_t k = 0;
      while (c[k] && c[k] != '"' && k + 1 < sizeof cursor) { cursor[k] = c[k]; k++; }
      cursor[k] = 0;
    } else cursor[0] = 0;
    mcpl_free(res);
    if (!*cursor) break;
  }
  assert_int_equal(total, N * 15);
  tu_close(&env, e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_version),
    cmocka_unit_test(test_options_reject_unknown),
    cmocka_unit_test(test_op_list_and_errors),
    cmocka_unit_test(test_code_names),
    cmocka_unit_test(test_code_table),
    cmocka_unit_test(test_cancel_arms_hook),
    cmocka_unit_test(test_error_reason),
    cmocka_unit_test(test_state_allocator),
    cmocka_unit_test(test_big_blocks),
    cmocka_unit_test(test_concurrent_ops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
