/* test_policy.c: the policy runner through the `policy` Lua module: reload with
 * self-check, tenant files and `default`, results, the state cache, threads. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>
#include "mcplink.h"
#include "testutil.h"
#include "policy.h"

static const char HELPERS[] =
  "function show(v)\n"
  "  if type(v) ~= 'table' then return tostring(v) end\n"
  "  local ks = {} for k in pairs(v) do ks[#ks + 1] = k end\n"
  "  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)\n"
  "  local out = {} for _, k in ipairs(ks) do out[#out + 1] = tostring(k) .. '=' .. show(v[k]) end\n"
  "  return '{' .. table.concat(out, ',') .. '}'\n"
  "end\n"
  "function runq(code) local a, b = assert(load(code))() return show(a) .. '|' .. show(b) end\n";

typedef struct {
  tu_env env;
  char pdir[128];
  mcpl_engine *e;
} fx;

static void put(fx *f, const char *rel, const char *content) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", f->pdir, rel);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(content, fp);
  fclose(fp);
}

/* Reload failures are expected here; keep them out of the TAP stream. */
static void quiet(void *ud, const char *level, const char *msg) { (void)ud; (void)level; (void)msg; }

static mcpl_engine *open_opts(tu_env *env, const char *pdir, char **err) {
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set_log(o, quiet, NULL);
  mcpl_options_set(o, "db", env->db);
  mcpl_options_set(o, "key_file", env->key);
  if (pdir) mcpl_options_set(o, "policies", pdir);
  mcpl_options_set(o, "log_level", "error");
  mcpl_engine *e = mcpl_open(o, err);
  mcpl_options_free(o);
  return e;
}

/* A policy directory with a default and the given tenant files. */
static void fx_open(fx *f, const char *default_src) {
  tu_paths(&f->env);
  snprintf(f->pdir, sizeof f->pdir, "%s/pol", f->env.dir);
  mkdir(f->pdir, 0700);
  char t[160];
  snprintf(t, sizeof t, "%s/tenants", f->pdir);
  mkdir(t, 0700);
  if (default_src) put(f, "default.lua", default_src);
  char *err = NULL;
  f->e = open_opts(&f->env, f->pdir, &err);
  if (!f->e) fail_msg("mcpl_open: %s", err ? err : "?");
}

static void fx_close(fx *f) { tu_close(&f->env, f->e); }

static lua_State *new_E(mcpl_engine *e) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  mcpl_engine_bind(L, e);
  luaL_requiref(L, "policy", luaopen_mcpl_policy, 1);
  lua_pop(L, 1);
  if (luaL_dostring(L, HELPERS) != LUA_OK) abort();
  return L;
}

/* Runs a chunk in L; "show(first)|show(second)" in buf. */
static const char *q(lua_State *L, const char *code, char *buf, size_t n) {
  lua_settop(L, 0);
  lua_getglobal(L, "runq");
  lua_pushstring(L, code);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) snprintf(buf, n, "LUAERR %s", lua_tostring(L, -1));
  else snprintf(buf, n, "%s", lua_tostring(L, -1));
  lua_settop(L, 0);
  return buf;
}

static char qb[4096];
#define Q(L, code) q(L, code, qb, sizeof qb)

static const char DEF_V1[] =
  "-- default v1\n"
  "return {\n"
  "  f = function() return { v = 1 } end,\n"
  "  url = function(req) return { allow = req.host ~= 'bad.example', reason = 'default' } end,\n"
  "  other = function() return { other = true } end,\n"
  "}\n";

static void test_reload_keeps_old_set(void **st) {
  (void)st;
  fx f;
  fx_open(&f, DEF_V1);
  lua_State *L = new_E(f.e);
  assert_string_equal(Q(L, "return policy.call(nil, 'f', {})"), "{v=1}|nil");
  assert_string_equal(Q(L, "return policy.info().generation"), "1|nil");

  struct { const char *file, *src, *want; } broken[] = {
    {"default.lua", "return {\n  f = function( end\n}\n", "pol/default.lua:2:"},
    {"tenants/acme.lua", "return 42\n", "pol/tenants/acme.lua: must return a plain table of functions"},
    {"tenants/acme.lua", "return { f = 1 }\n", "pol/tenants/acme.lua: must return a table of functions (bad entry f)"},
    {"tenants/acme.lua", "local x = nil\nreturn x.y\n", "pol/tenants/acme.lua:2:"},
    {"tenants/acme.lua", "while true do end\n", "pol/tenants/acme.lua: instruction budget exceeded"},
    {"tenants/acme.lua", "local t = {} for i = 1, 1e9 do t[i] = i end\n", "pol/tenants/acme.lua: memory limit exceeded"},
  };
  for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
    put(&f, broken[i].file, broken[i].src);
    const char *r = Q(L, "return policy.reload()");
    if (strncmp(r, "nil|", 4) != 0 || !strstr(r, broken[i].want))
      fail_msg("broken %s: want '%s', got '%s'", broken[i].file, broken[i].want, r);
    /* the old set still answers, for the default and for the tenant */
    assert_string_equal(Q(L, "return policy.call(nil, 'f', {})"), "{v=1}|nil");
    assert_string_equal(Q(L, "return policy.call('acme', 'f', {})"), "{v=1}|nil");
    assert_string_equal(Q(L, "return policy.info().generation"), "1|nil");
    if (strcmp(broken[i].file, "default.lua") == 0) put(&f, "default.lua", DEF_V1);
  }
  /* fixed: the new set replaces the old and cached states are dropped */
  put(&f, "tenants/acme.lua", "return { f = function() return { v = 'acme' } end }\n");
  put(&f, "default.lua", "return { f = function() return { v = 2 } end }\n");
  assert_true(pol_cached_states(f.e) > 0);
  assert_string_equal(Q(L, "return policy.reload()"), "true|nil");
  assert_int_equal(pol_cached_states(f.e), 0);
  assert_string_equal(Q(L, "return policy.info().generation"), "2|nil");
  assert_string_equal(Q(L, "return policy.call(nil, 'f', {})"), "{v=2}|nil");
  assert_string_equal(Q(L, "return policy.call('acme', 'f', {})"), "{v=acme}|nil");
  lua_close(L);
  fx_close(&f);
}

static void test_tenant_default_delegation(void **st) {
  (void)st;
  fx f;
  fx_open(&f, DEF_V1);
  put(&f, "tenants/acme.lua",
      "-- narrows the default\n"
      "return { url = function(req)\n"
      "  local d = default.url(req)\n"
      "  if req.host:sub(-13) ~= '.acme.example' then d.allow = false; d.reason = 'acme only' end\n"
      "  return d\n"
      "end }\n");
  put(&f, "tenants/all.lua", "return default\n");
  put(&f, "tenants/acme_test.lua", "this is a test script, not a policy\n");
  put(&f, "tenants/no name.lua", "not loaded either\n");
  lua_State *L = new_E(f.e);
  assert_string_equal(Q(L, "return policy.reload()"), "true|nil");
  assert_string_equal(Q(L, "return policy.call('acme', 'url', {host = 'x.acme.example'})"),
                      "{allow=true,reason=default}|nil");
  assert_string_equal(Q(L, "return policy.call('acme', 'url', {host = 'x.other.example'})"),
                      "{allow=false,reason=acme only}|nil");
  assert_string_equal(Q(L, "return policy.call('acme', 'url', {host = 'bad.example'})"),
                      "{allow=false,reason=acme only}|nil");
  /* a tenant without a file gets the default; `return default` delegates all */
  assert_string_equal(Q(L, "return policy.call('zeta', 'url', {host = 'x.other.example'})"),
                      "{allow=true,reason=default}|nil");
  assert_string_equal(Q(L, "return policy.call('all', 'other', {})"), "{other=true}|nil");
  /* the tenant file replaces the default: its missing functions are missing */
  assert_string_equal(Q(L, "return policy.call('acme', 'other', {})"), "nil|no_function");
  assert_string_equal(Q(L, "return policy.call(nil, 'nope', {})"), "nil|no_function");
  assert_string_equal(Q(L, "return policy.has('acme', 'url'), policy.has('acme', 'other')"),
                      "true|false");
  assert_string_equal(Q(L, "return policy.has(nil, 'other'), policy.has('zeta', 'nope')"),
                      "true|false");
  assert_string_equal(Q(L, "return policy.has('../x', 'url')"), "false|nil");
  const char *info = Q(L, "local i = policy.info() return i.files, i.builtin_default");
  assert_non_null(strstr(info, "pol/default.lua"));
  assert_non_null(strstr(info, "pol/tenants/acme.lua"));
  assert_non_null(strstr(info, "pol/tenants/all.lua"));
  assert_null(strstr(info, "acme_test"));
  assert_null(strstr(info, "no name"));
  assert_non_null(strstr(info, "|false"));
  lua_close(L);
  fx_close(&f);
}

static void test_results_and_inputs(void **st) {
  (void)st;
  fx f;
  fx_open(&f,
          "local saved = { list = { 'a', 'b' }, nested = { x = 1.5, ok = true }, [7] = 'seven' }\n"
          "return {\n"
          "  saved = function() return saved end,\n"
          "  touch = function(req) req.list[1] = 'changed' end,\n"
          "  echo = function(req) return { got = req, count = #req.list } end,\n"
          "}\n");
  lua_State *L = new_E(f.e);
  /* the result is a copy: changing it in the engine leaves the policy's table alone */
  assert_string_equal(Q(L, "local r = policy.call(nil, 'saved', {}) r.list[1] = 'zzz' r.extra = 1 return r"),
                      "{7=seven,extra=1,list={1=zzz,2=b},nested={ok=true,x=1.5}}|nil");
  assert_string_equal(Q(L, "return policy.call(nil, 'saved', {})"),
                      "{7=seven,list={1=a,2=b},nested={ok=true,x=1.5}}|nil");
  /* the input is a frozen copy: a write fails and the engine's table is untouched */
  const char *r = Q(L, "local t = {list = {'orig'}} local a, b = policy.call(nil, 'touch', t) return t.list[1], b");
  assert_non_null(strstr(r, "orig|"));
  assert_non_null(strstr(r, "read-only"));
  assert_string_equal(Q(L, "return policy.call(nil, 'echo', {list = {1, 2, 3}, s = 'x', n = 2^53, json_null = nil})"),
                      "{count=3,got={list={1=1,2=2,3=3},n=9.007199254741e+15,s=x}}|nil");
  lua_close(L);
  fx_close(&f);
}

static void test_builtin_default(void **st) {
  (void)st;
  tu_env env;
  tu_paths(&env);
  char *err = NULL;
  mcpl_engine *e = open_opts(&env, NULL, &err);
  assert_non_null(e);
  lua_State *L = new_E(e);
  const char *r = Q(L, "local i = policy.info() return i.builtin_default, i.files[1]");
  assert_string_equal(r, "true|[built-in default.lua]");
  /* whatever the built-in default defines, an unknown function is no_function */
  assert_string_equal(Q(L, "return policy.call(nil, 'no_such_fn', {})"), "nil|no_function");
  lua_close(L);
  tu_close(&env, e);
}

static void test_open_fails_on_broken_set(void **st) {
  (void)st;
  tu_env env;
  tu_paths(&env);
  char pdir[160], path[200];
  snprintf(pdir, sizeof pdir, "%s/pol", env.dir);
  mkdir(pdir, 0700);
  snprintf(path, sizeof path, "%s/default.lua", pdir);
  FILE *fp = fopen(path, "w");
  fputs("return {\n\n  x = \n}\n", fp);
  fclose(fp);
  char *err = NULL;
  assert_null(open_opts(&env, pdir, &err));
  assert_non_null(err);
  assert_non_null(strstr(err, "default.lua:4:"));
  mcpl_free(err);
  err = NULL;
  snprintf(path, sizeof path, "%s/missing", env.dir);
  assert_null(open_opts(&env, path, &err));
  assert_non_null(strstr(err, "policies directory not found"));
  mcpl_free(err);
  nftw(env.dir, tu_rm, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_lru_bound(void **st) {
  (void)st;
  fx f;
  fx_open(&f, "local kept\nreturn { keep = function(r) kept = r.v return {} end,\n"
              "  peek = function() return { v = kept } end }\n");
  pol_set_limits(f.e, 0, 0, 4);
  lua_State *L = new_E(f.e);
  char code[128];
  for (int i = 0; i < 10; i++) {
    snprintf(code, sizeof code, "return policy.call('t%d', 'keep', {v = %d})", i, i);
    assert_string_equal(Q(L, code), "{}|nil");
  }
  assert_int_equal(pol_cached_states(f.e), 4);
  /* the most recent keep their state; the evicted ones start afresh */
  assert_string_equal(Q(L, "return policy.call('t9', 'peek', {})"), "{v=9}|nil");
  assert_string_equal(Q(L, "return policy.call('t6', 'peek', {})"), "{v=6}|nil");
  assert_string_equal(Q(L, "return policy.call('t0', 'peek', {})"), "{}|nil");
  assert_int_equal(pol_cached_states(f.e), 4);
  lua_close(L);
  fx_close(&f);
}

struct worker {
  mcpl_engine *e;
  int id, failures, reloader;
};

static void *worker_main(void *p) {
  struct worker *w = p;
  lua_State *L = new_E(w->e);
  char code[200], buf[512], want[64];
  for (int i = 0; i < 300; i++) {
    if (w->reloader) {
      if (strcmp(q(L, "return policy.reload()", buf, sizeof buf), "true|nil") != 0) w->failures++;
      continue;
    }
    int t = (w->id + i) % 6;
    if (i % 50 == 7) { /* a kill now and then must not disturb the others */
      snprintf(code, sizeof code, "return policy.call('t%d', 'spin', {})", t);
      if (!strstr(q(L, code, buf, sizeof buf), "instruction budget exceeded")) w->failures++;
      continue;
    }
    snprintf(code, sizeof code, "return policy.call(%s, 'url', {host = 'h%d', n = %d})",
             t == 5 ? "nil" : (t % 2 ? "'acme'" : "'t'"), i, i);
    snprintf(want, sizeof want, "{allow=true,host=h%d,n=%d%s}|nil", i, i,
             t != 5 && t % 2 ? ",tenant=acme" : "");
    if (strcmp(q(L, code, buf, sizeof buf), want) != 0) {
      fprintf(stderr, "worker %d: %s != %s\n", w->id, buf, want);
      w->failures++;
    }
  }
  lua_close(L);
  return NULL;
}

/* Many engine threads call into shared tenant states while another thread
 * reloads the set and some calls get killed. */
static void test_concurrency(void **st) {
  (void)st;
  fx f;
  fx_open(&f, "return { url = function(r) return { allow = true, host = r.host, n = r.n } end,\n"
              "  spin = function() while true do end end }\n");
  put(&f, "tenants/acme.lua",
      "return { url = function(r) local d = default.url(r) d.tenant = 'acme' return d end,\n"
      "  spin = default.spin }\n");
  char *err = NULL;
  assert_int_equal(pol_reload(f.e, &err), 0);
  pol_set_limits(f.e, 200000, 0, 3);
  enum { NT = 7 };
  pthread_t th[NT];
  struct worker w[NT];
  for (int i = 0; i < NT; i++) {
    w[i] = (struct worker){f.e, i, 0, i == NT - 1};
    pthread_create(&th[i], NULL, worker_main, &w[i]);
  }
  int failures = 0;
  for (int i = 0; i < NT; i++) {
    pthread_join(th[i], NULL);
    failures += w[i].failures;
  }
  assert_int_equal(failures, 0);
  fx_close(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_reload_keeps_old_set),
    cmocka_unit_test(test_tenant_default_delegation),
    cmocka_unit_test(test_results_and_inputs),
    cmocka_unit_test(test_builtin_default),
    cmocka_unit_test(test_open_fails_on_broken_set),
    cmocka_unit_test(test_lru_bound),
    cmocka_unit_test(test_concurrency),
  };
  return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
