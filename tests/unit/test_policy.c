/* test_policy.c: the policy runner through the `policy` Lua module and the C API:
 * files loaded one by one (a broken file fails closed for its tenant alone, a reload keeps
 * its last good version), tenant files and `default`, results, the state cache, threads. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
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

static const char DEF_V2[] =
  "return {\n"
  "  f = function() return { v = 2 } end,\n"
  "  url = function(req) return { allow = true, reason = 'default v2' } end,\n"
  "}\n";

/* Runs code and fails unless its show() output contains every needle. */
static void want(lua_State *L, const char *code, const char *n1, const char *n2) {
  const char *r = Q(L, code);
  if (!strstr(r, n1) || (n2 && !strstr(r, n2)))
    fail_msg("%s\n  got:  %s\n  want: %s%s%s", code, r, n1, n2 ? " and " : "", n2 ? n2 : "");
}

/* The status of one file, as "status|error". */
#define FILE_STATE(file)                                                              \
  "for _, f in ipairs(policy.status().files) do if f.file == '" file "' then "         \
  "return f.status, f.error end end return 'absent'"

/* A reload applies per file: one that now fails keeps its last good version
 * (and says so), the files that changed and load are in force at once. */
static void test_reload_per_file(void **st) {
  (void)st;
  fx f;
  fx_open(&f, DEF_V1);
  put(&f, "tenants/acme.lua", "return { f = function() return { v = 'acme1', d = default.f().v } end }\n");
  put(&f, "tenants/beta.lua", "return { f = function() return { v = 'beta1' } end }\n");
  lua_State *L = new_E(f.e);
  assert_string_equal(Q(L, "return policy.reload().failed"), "0|nil");
  assert_string_equal(Q(L, "return policy.call('acme', 'f', {})"), "{d=1,v=acme1}|nil");

  struct { const char *src, *err; } broken[] = {
    {"return {\n  f = function( end\n}\n", "line 2: "},
    {"return 42\n", "must return a plain table of functions"},
    {"return { f = 1 }\n", "must return a table of functions (bad entry f)"},
    {"local x = nil\nreturn x.y\n", "line 2: attempt to index a nil value"},
    {"while true do end\n", "instruction budget exceeded"},
    {"local t = {} for i = 1, 1e9 do t[i] = i end\n", "memory limit exceeded"},
  };
  for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
    /* acme breaks while beta and the default change: those two are reloaded */
    put(&f, "tenants/acme.lua", broken[i].src);
    put(&f, "tenants/beta.lua", i % 2 ? "return { f = function() return { v = 'beta1' } end }\n"
                                      : "return { f = function() return { v = 'beta2' } end }\n");
    put(&f, "default.lua", i % 2 ? DEF_V1 : DEF_V2);
    const char *r = Q(L, "local s = policy.reload() local a for _, x in ipairs(s.files) do "
                         "if x.tenant == 'acme' then a = x end end return a, s.failed");
    if (!strstr(r, "status=kept_previous") || !strstr(r, broken[i].err) || !strstr(r, "|1"))
      fail_msg("broken acme #%zu: want kept_previous with '%s', got '%s'", i, broken[i].err, r);
    want(L, FILE_STATE("tenants/acme.lua"), "kept_previous|", broken[i].err);
    want(L, FILE_STATE("tenants/beta.lua"), "loaded|nil", NULL);
    want(L, FILE_STATE("default.lua"), "loaded|nil", NULL);
    /* acme's last good version still answers, on the default now in force */
    char exp[64];
    snprintf(exp, sizeof exp, "{d=%d,v=acme1}|nil", i % 2 ? 1 : 2);
    assert_string_equal(Q(L, "return policy.call('acme', 'f', {})"), exp);
    snprintf(exp, sizeof exp, "{v=beta%d}|nil", i % 2 ? 1 : 2);
    assert_string_equal(Q(L, "return policy.call('beta', 'f', {})"), exp);
    snprintf(exp, sizeof exp, "{v=%d}|nil", i % 2 ? 1 : 2);
    assert_string_equal(Q(L, "return policy.call(nil, 'f', {})"), exp);
    assert_string_equal(Q(L, "return policy.call('zeta', 'f', {})"), exp);
  }
  /* fixed: loaded again, and the new version replaces the kept one */
  put(&f, "tenants/acme.lua", "return { f = function() return { v = 'acme2' } end }\n");
  assert_true(policy_cached_states(f.e) > 0);
  assert_string_equal(Q(L, "return policy.reload().failed"), "0|nil");
  assert_int_equal(policy_cached_states(f.e), 0);
  want(L, FILE_STATE("tenants/acme.lua"), "loaded|nil", NULL);
  assert_string_equal(Q(L, "return policy.call('acme', 'f', {})"), "{v=acme2}|nil");

  /* a new file that never loaded has no previous version: it fails closed */
  put(&f, "tenants/gamma.lua", "return { f = function() return { v = 'gamma' } end\n");
  assert_string_equal(Q(L, "return policy.reload().failed"), "1|nil");
  want(L, FILE_STATE("tenants/gamma.lua"), "failed|line ", NULL);
  want(L, "return policy.call('gamma', 'f', {})", "nil|tenants/gamma.lua failed to load: line ", NULL);
  assert_string_equal(Q(L, "return policy.has('gamma', 'f')"), "false|nil");
  assert_string_equal(Q(L, "return policy.call('acme', 'f', {})"), "{v=acme2}|nil");

  /* a broken default keeps its last good version too */
  put(&f, "default.lua", "return { f = function() return { v = 3 } end\n");
  assert_string_equal(Q(L, "return policy.reload().failed"), "2|nil");
  want(L, FILE_STATE("default.lua"), "kept_previous|line ", NULL);
  assert_string_equal(Q(L, "return policy.call(nil, 'f', {})"), "{v=1}|nil");
  assert_string_equal(Q(L, "return policy.call('zeta', 'f', {})"), "{v=1}|nil");

  /* a file removed from the directory is no longer listed, and its tenant
   * falls back to the default */
  char path[256];
  snprintf(path, sizeof path, "%s/tenants/gamma.lua", f.pdir);
  assert_int_equal(unlink(path), 0);
  assert_string_equal(Q(L, "return policy.reload().failed"), "1|nil");
  assert_string_equal(Q(L, FILE_STATE("tenants/gamma.lua")), "absent|nil");
  assert_string_equal(Q(L, "return policy.call('gamma', 'f', {})"), "{v=1}|nil");
  /* generations count every reload */
  assert_string_equal(Q(L, "return policy.status().generation"), "12|nil");
  lua_close(L);
  fx_close(&f);
}

/* The log of an engine, kept for the test to read. */
static char logbuf[8192];
static void keep_log(void *ud, const char *level, const char *msg) {
  (void)ud;
  size_t n = strlen(logbuf);
  snprintf(logbuf + n, sizeof logbuf - n, "%s: %s\n", level, msg);
}

/* A policy directory with a default and two tenant files, one broken, made
 * before the engine opens; the engine's log kept in logbuf. */
static void fx_open_checked_later(fx *f) {
  tu_paths(&f->env);
  snprintf(f->pdir, sizeof f->pdir, "%s/pol", f->env.dir);
  mkdir(f->pdir, 0700);
  char t[160];
  snprintf(t, sizeof t, "%s/tenants", f->pdir);
  mkdir(t, 0700);
  put(f, "default.lua", DEF_V1);
  put(f, "tenants/acme.lua", "return { f = function() return { v = 'acme1' } end }\n");
  put(f, "tenants/bad.lua", "return { f = function( end }\n");
  logbuf[0] = 0;
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set_log(o, keep_log, NULL);
  mcpl_options_set(o, "db", f->env.db);
  mcpl_options_set(o, "key_file", f->env.key);
  mcpl_options_set(o, "policies", f->pdir);
  mcpl_options_set(o, "log_level", "info");
  char *err = NULL;
  f->e = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!f->e) fail_msg("mcpl_open: %s", err ? err : "?");
}

/* The engine opens with its policy files read, not checked: a decision
 * checks what it runs on (the default, its tenant's file) and logs it; the
 * other tenants' files wait for their own first decision, policy.status or
 * a reload. All on the text read at open (a file edited since then waits
 * for a reload, as before). */
static void test_checked_on_first_use(void **st) {
  (void)st;
  fx f;
  fx_open_checked_later(&f);
  if (!strstr(logbuf, "policies in force (generation 1): directory "))
    fail_msg("the open names the directory in force; log:\n%s", logbuf);
  if (strstr(logbuf, "tenants/bad.lua"))
    fail_msg("a file was checked at open, before any decision; log:\n%s", logbuf);
  put(&f, "tenants/acme.lua", "return { f = function() return { v = 'acme2' } end }\n");
  put(&f, "default.lua", "return { f = function( end }\n");
  lua_State *L = new_E(f.e);
  assert_string_equal(Q(L, "return policy.call('acme', 'f', {})"), "{v=acme1}|nil");
  assert_string_equal(Q(L, "return policy.call(nil, 'f', {})"), "{v=1}|nil");
  if (!strstr(logbuf, "policy file tenants/acme.lua: loaded") || !strstr(logbuf, "policy file default.lua: loaded"))
    fail_msg("a decision logs the files it runs on; log:\n%s", logbuf);
  if (strstr(logbuf, "tenants/bad.lua"))
    fail_msg("another tenant's file waits for that tenant's decision; log:\n%s", logbuf);
  want(L, "return policy.has('bad', 'f')", "false", NULL);
  if (!strstr(logbuf, "policy file tenants/bad.lua failed to load, tenant bad fails closed"))
    fail_msg("policy.has for a tenant checks its file and logs the failure; log:\n%s", logbuf);
  want(L, "return policy.call('bad', 'f', {})", "nil|tenants/bad.lua failed to load: line 1", NULL);
  want(L, FILE_STATE("tenants/bad.lua"), "failed|line 1", NULL);
  /* the edits take effect on a reload: the broken default keeps the version read at open */
  want(L, "return policy.reload().failed", "2|nil", NULL);
  want(L, FILE_STATE("default.lua"), "kept_previous|line 1", NULL);
  assert_string_equal(Q(L, "return policy.call('acme', 'f', {})"), "{v=acme2}|nil");
  lua_close(L);
  fx_close(&f);
}

/* policy.call's key: the sandbox keeps the input's frozen copy by the
 * caller's key instead of walking the input (lua/net.lua passes one for a
 * URL decision); the policy itself still runs on every call. */
static void test_call_key(void **st) {
  (void)st;
  fx f;
  fx_open(&f, "local n = 0\nreturn { f = function(req) n = n + 1; return { n = n, v = req.v } end }\n");
  lua_State *L = new_E(f.e);
  assert_string_equal(Q(L, "return policy.call(nil, 'f', { v = 'a' }, 'k1')"), "{n=1,v=a}|nil");
  /* the same key: the copy kept under it (the caller said the inputs are equal), the policy run again */
  assert_string_equal(Q(L, "return policy.call(nil, 'f', { v = 'b' }, 'k1')"), "{n=2,v=a}|nil");
  assert_string_equal(Q(L, "return policy.call(nil, 'f', { v = 'b' }, 'k2')"), "{n=3,v=b}|nil");
  /* without a key the input is walked: its own content, every time */
  assert_string_equal(Q(L, "return policy.call(nil, 'f', { v = 'c' })"), "{n=4,v=c}|nil");
  assert_string_equal(Q(L, "return policy.call(nil, 'f', { v = 'd' })"), "{n=5,v=d}|nil");
  want(L, "return pcall(policy.call, nil, 'f', {}, 42)", "false", NULL);
  lua_close(L);
  fx_close(&f);
}

/* policy.status before any decision checks every file, a tenant's that no
 * decision has needed yet too, and logs each. */
static void test_status_checks_all(void **st) {
  (void)st;
  fx f;
  fx_open_checked_later(&f);
  lua_State *L = new_E(f.e);
  want(L, "return policy.status().failed", "1", NULL);
  want(L, FILE_STATE("tenants/bad.lua"), "failed|line 1", NULL);
  want(L, FILE_STATE("tenants/acme.lua"), "loaded", NULL);
  if (!strstr(logbuf, "policy file tenants/bad.lua failed to load") || !strstr(logbuf, "policy file tenants/acme.lua: loaded"))
    fail_msg("status logs every file it checked; log:\n%s", logbuf);
  lua_close(L);
  fx_close(&f);
}

/* A reload before any decision checks the files read at open first: a file
 * that was broken then has no good version to keep, it fails closed. */
static void test_reload_before_first_use(void **st) {
  (void)st;
  fx f;
  fx_open_checked_later(&f);
  lua_State *L = new_E(f.e);
  want(L, "return policy.reload().failed", "1|nil", NULL);
  want(L, FILE_STATE("tenants/bad.lua"), "failed|line 1", NULL);
  want(L, "return policy.call('bad', 'f', {})", "nil|tenants/bad.lua failed to load: line 1", NULL);
  assert_string_equal(Q(L, "return policy.has('acme', 'f')"), "true|nil");
  lua_close(L);
  fx_close(&f);
}

/* A kept tenant file that no longer loads on the new default keeps the
 * default it last loaded with: a default change never takes its rules away. */
static void test_kept_file_keeps_its_default(void **st) {
  (void)st;
  fx f;
  fx_open(&f, "return { f = function() return { v = 1 } end }\n");
  put(&f, "tenants/acme.lua", "local base = assert(default.f, 'the default has no f')\nreturn { f = function() return { v = 'acme', d = base().v } end }\n");
  lua_State *L = new_E(f.e);
  assert_string_equal(Q(L, "return policy.reload().failed"), "0|nil");
  /* the new default has no f: acme's file (unchanged) no longer loads on it */
  put(&f, "default.lua", "return { g = function() return { v = 2 } end }\n");
  assert_string_equal(Q(L, "return policy.reload().failed"), "1|nil");
  want(L, FILE_STATE("tenants/acme.lua"), "kept_previous|line 1: the default has no f", NULL);
  assert_string_equal(Q(L, "return policy.call('acme', 'f', {})"), "{d=1,v=acme}|nil");
  assert_string_equal(Q(L, "return policy.call(nil, 'g', {})"), "{v=2}|nil");
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
  assert_string_equal(Q(L, "return policy.reload().failed"), "0|nil");
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
  const char *info = Q(L, "local i = policy.status() local t = {} for _, x in ipairs(i.files) do "
                         "t[#t + 1] = x.file .. '=' .. x.status end return table.concat(t, ','), i.builtin_default");
  assert_string_equal(info, "default.lua=loaded,tenants/acme.lua=loaded,tenants/all.lua=loaded|false");
  char real[PATH_MAX];
  assert_non_null(realpath(f.pdir, real));
  char code[PATH_MAX + 64];
  snprintf(code, sizeof code, "return policy.status().dir == '%s'", real);
  assert_string_equal(Q(L, code), "true|nil");
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
  const char *r = Q(L, "local i = policy.status() return i.builtin_default, i.files[1].file .. ' ' .. "
                      "i.files[1].status .. ' ' .. #i.files .. ' ' .. tostring(i.dir)");
  assert_string_equal(r, "true|[built-in default.lua] loaded 1 nil");
  /* whatever the built-in default defines, an unknown function is no_function */
  assert_string_equal(Q(L, "return policy.call(nil, 'no_such_fn', {})"), "nil|no_function");
  lua_close(L);
  tu_close(&env, e);
}

/* ---- through the C API ------------------------------------------------------ */

static char *op_res(mcpl_engine *e, const mcpl_actor *a, const char *name, const char *args, int want_rc) {
  char *res = NULL;
  int rc = mcpl_op(e, a, name, args, &res);
  if (rc != want_rc) fail_msg("%s %s -> %d: %s", name, args, rc, res ? res : "(null)");
  return res;
}

static const mcpl_actor SYS = {NULL, NULL, 1};

/* tenant.create + user.create (admin u) for each name */
static void make_tenants(mcpl_engine *e, const char *const *names) {
  char args[160];
  for (int i = 0; names[i]; i++) {
    snprintf(args, sizeof args, "{\"name\":\"%s\"}", names[i]);
    mcpl_free(op_res(e, &SYS, "tenant.create", args, MCPL_OK));
    snprintf(args, sizeof args, "{\"tenant\":\"%s\",\"name\":\"u\",\"role\":\"admin\"}", names[i]);
    mcpl_free(op_res(e, &SYS, "user.create", args, MCPL_OK));
  }
}

/* url.check as tenant's user u (NULL: the system actor); fails unless the
 * result contains needle. */
static void check_url(mcpl_engine *e, const char *tenant, const char *url, const char *needle) {
  mcpl_actor a = {tenant, "u", tenant == NULL};
  char args[256];
  snprintf(args, sizeof args, "{\"url\":\"%s\",\"resolve\":false}", url);
  char *res = op_res(e, &a, "url.check", args, MCPL_OK);
  if (!strstr(res, needle))
    fail_msg("url.check %s as %s: %s\n  wanted: %s", url, tenant ? tenant : "system", res, needle);
  mcpl_free(res);
}

static const char NB_DEFAULT[] =
  "return {\n"
  "  url = function(req) return { allow = true, by = 'default' } end,\n"
  "  f = function() return { by = 'default' } end,\n"
  "}\n";
static const char NB_GOOD[] =
  "return {\n"
  "  url = function(req)\n"
  "    if req.host == 'deny.example' then return { allow = false, reason = 'good says no' } end\n"
  "    local d = default.url(req) d.by = 'good' return d end,\n"
  "  f = function() return { by = 'good' } end,\n"
  "}\n";

/* The neighbours of a broken file decide exactly as before, through the
 * module and through the C API. */
static void assert_neighbours(lua_State *L, mcpl_engine *e) {
  assert_string_equal(Q(L, "return policy.call(nil, 'f', {})"), "{by=default}|nil");
  assert_string_equal(Q(L, "return policy.call('plain', 'f', {})"), "{by=default}|nil");
  assert_string_equal(Q(L, "return policy.call('good', 'f', {})"), "{by=good}|nil");
  assert_string_equal(Q(L, "return policy.call('good', 'url', {host = 'x.example'})"),
                      "{allow=true,by=good}|nil");
  check_url(e, "good", "https://deny.example/", "\"reason\":\"policy: good says no\"");
  check_url(e, "good", "https://fine.example/", "\"allowed\":true");
  check_url(e, "plain", "https://deny.example/", "\"allowed\":true");
  check_url(e, NULL, "https://deny.example/", "\"allowed\":true");
}

/* Writes a Lua binary chunk (refused: text chunks only). */
static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  return fwrite(p, 1, sz, ud) == sz ? 0 : 1;
}

static void put_binary(fx *f, const char *rel) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", f->pdir, rel);
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  lua_State *T = luaL_newstate();
  assert_int_equal(luaL_loadstring(T, "return { url = function() return { allow = true } end }"), LUA_OK);
  assert_int_equal(lua_dump(T, dump_writer, fp, 0), 0);
  lua_close(T);
  fclose(fp);
}

static void put_large(fx *f, const char *rel) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", f->pdir, rel);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  for (int i = 0; i < 1024 * 1024 / 64 + 1; i++) fputs("-- a long comment, line after line, to pass one mebibyte .......\n", fp);
  fputs("return {}\n", fp);
  fclose(fp);
}

enum { K_TEXT, K_BINARY, K_DIR, K_LARGE };

static const struct load_case {
  const char *what, *src;
  int kind;
  const char *err; /* what follows "tenants/bad.lua failed to load: " */
} load_cases[] = {
  {"syntax error", "return {\n  url = function( end\n}\n", K_TEXT, "line 2: "},
  {"runtime error", "local x = nil\nreturn x.y\n", K_TEXT, "line 2: attempt to index a nil value"},
  {"error()", "error('boom at load')\n", K_TEXT, "line 1: boom at load"},
  {"error(msg, 0)", "error('plain words', 0)\n", K_TEXT, "plain words"},
  {"error table", "error({ message = 'from a table' })\n", K_TEXT, "from a table"},
  {"error(nil)", "error(nil)\n", K_TEXT, "(error object is a nil value)"},
  {"late error", "local P = { url = function() return { allow = true } end }\nerror('after defining')\nreturn P\n",
   K_TEXT, "line 2: after defining"},
  {"__tostring raises", "error(setmetatable({}, { __tostring = function() error('inner') end }))\n", K_TEXT,
   "(error object is a table value)"},
  {"__tostring loops", "error(setmetatable({}, { __tostring = function() while true do end end }))\n",
   K_TEXT, "(error object is a table value)"},
  {"endless loop", "while true do end\n", K_TEXT, "instruction budget exceeded"},
  {"loop in pcall", "while true do pcall(function() while true do end end) end\n", K_TEXT,
   "instruction budget exceeded"},
  {"memory", "local t = {} for i = 1, 1e9 do t[i] = i end\n", K_TEXT, "memory limit exceeded"},
  {"string memory", "local s = 'x' while true do s = s .. s end\n", K_TEXT, "memory limit exceeded"},
  {"string.rep", "local s = string.rep('x', 2^40)\n", K_TEXT, "line 1: string.rep: result too large"},
  {"recursion", "local function r(n) return 1 + r(n + 1) end\nreturn r(1)\n", K_TEXT, "memory limit exceeded"},
  {"__gc", "setmetatable({}, { __gc = function() while true do end end })\nreturn {}\n", K_TEXT,
   "line 1: metatables with __gc are not allowed"},
  {"yield", "coroutine.yield(1)\n", K_TEXT, "attempt to yield from outside a coroutine"},
  {"returns a number", "return 42\n", K_TEXT, "must return a plain table of functions"},
  {"returns nothing", "local x = 1\n", K_TEXT, "must return a plain table of functions"},
  {"returns a non-function", "return { url = 'yes' }\n", K_TEXT, "must return a table of functions (bad entry url)"},
  {"returns a list", "return { function() end }\n", K_TEXT, "must return a table of functions (bad entry of type number)"},
  {"returns a metatable", "return setmetatable({}, { __index = function() return function() end end })\n",
   K_TEXT, "must return a plain table of functions"},
  {"changes default", "default.url = nil\nreturn {}\n", K_TEXT, "line 1: attempt to modify a read-only table"},
  {"binary chunk", NULL, K_BINARY, "attempt to load a binary chunk"},
  {"a directory", NULL, K_DIR, "not a regular file"},
  {"too large", NULL, K_LARGE, "larger than 1048576 bytes"},
};

/* Each way a tenant file can fail to load: the engine opens, that tenant
 * alone fails closed with the file and the error as the reason, its
 * functions are not used, and everyone else decides as before. */
static void test_load_failures(void **st) {
  (void)st;
  static const char *const tenants[] = {"bad", "good", "plain", NULL};
  for (size_t i = 0; i < sizeof load_cases / sizeof load_cases[0]; i++) {
    const struct load_case *c = &load_cases[i];
    fx f;
    tu_paths(&f.env);
    snprintf(f.pdir, sizeof f.pdir, "%s/pol", f.env.dir);
    char t[200];
    snprintf(t, sizeof t, "%s/tenants", f.pdir);
    assert_int_equal(mkdir(f.pdir, 0700), 0);
    assert_int_equal(mkdir(t, 0700), 0);
    put(&f, "default.lua", NB_DEFAULT);
    put(&f, "tenants/good.lua", NB_GOOD);
    if (c->kind == K_TEXT) put(&f, "tenants/bad.lua", c->src);
    else if (c->kind == K_BINARY) put_binary(&f, "tenants/bad.lua");
    else if (c->kind == K_LARGE) put_large(&f, "tenants/bad.lua");
    else {
      snprintf(t, sizeof t, "%s/tenants/bad.lua", f.pdir);
      assert_int_equal(mkdir(t, 0700), 0);
    }
    char *err = NULL;
    f.e = open_opts(&f.env, f.pdir, &err);
    if (!f.e) fail_msg("%s: the engine did not open: %s", c->what, err ? err : "?");
    make_tenants(f.e, tenants);
    lua_State *L = new_E(f.e);
    char reason[256];
    snprintf(reason, sizeof reason, "tenants/bad.lua failed to load: %s", c->err);
    const char *r = Q(L, "return policy.call('bad', 'url', {host = 'x.example'})");
    if (strncmp(r, "nil|", 4) != 0 || !strstr(r, reason))
      fail_msg("%s: policy.call: got '%s', want a deny with '%s'", c->what, r, reason);
    assert_string_equal(Q(L, "return policy.call('bad', 'f', {})"), r);
    assert_string_equal(Q(L, "return policy.has('bad', 'url'), policy.has('bad', 'f')"), "false|false");
    char needle[300];
    snprintf(needle, sizeof needle, "\"reason\":\"policy: %s", reason);
    check_url(f.e, "bad", "https://fine.example/", needle);
    check_url(f.e, "bad", "https://deny.example/", "\"allowed\":false");
    want(L, FILE_STATE("tenants/bad.lua"), "failed|", c->err);
    char *res = op_res(f.e, &SYS, "policy.status", "{}", MCPL_OK);
    if (!strstr(res, "\"failed\":1") || !strstr(res, "\"status\":\"failed\"") ||
        !strstr(res, "tenant bad fails closed"))
      fail_msg("%s: policy.status: %s", c->what, res);
    mcpl_free(res);
    assert_neighbours(L, f.e);
    lua_close(L);
    fx_close(&f);
  }
}

/* A broken default.lua at start: the engine opens; the system actor and the
 * tenants without a file of their own fail closed, saying so; a tenant file
 * works, and fails closed only where it delegates to the default. */
static void test_broken_default(void **st) {
  (void)st;
  fx f;
  tu_paths(&f.env);
  snprintf(f.pdir, sizeof f.pdir, "%s/pol", f.env.dir);
  char t[200];
  snprintf(t, sizeof t, "%s/tenants", f.pdir);
  assert_int_equal(mkdir(f.pdir, 0700), 0);
  assert_int_equal(mkdir(t, 0700), 0);
  put(&f, "default.lua", "return {\n\n  x = \n}\n");
  put(&f, "tenants/own.lua", "return { url = function(req) return { allow = true, by = 'own' } end }\n");
  put(&f, "tenants/delegates.lua", "local u = default.url\n"
                                   "return { url = function(req) return u(req) end, f = function() return { by = 'delegates' } end }\n");
  put(&f, "tenants/all.lua", "return default\n");
  char *err = NULL;
  f.e = open_opts(&f.env, f.pdir, &err);
  if (!f.e) fail_msg("a broken default.lua stopped the engine: %s", err ? err : "?");
  static const char *const tenants[] = {"own", "delegates", "all", "plain", NULL};
  make_tenants(f.e, tenants);
  lua_State *L = new_E(f.e);
  want(L, FILE_STATE("default.lua"), "failed|line 4: ", NULL);
  want(L, FILE_STATE("tenants/own.lua"), "loaded|nil", NULL);
  want(L, FILE_STATE("tenants/delegates.lua"), "loaded|nil", NULL);
  want(L, FILE_STATE("tenants/all.lua"), "failed|default.lua failed to load: line 4: ", NULL);
  want(L, "return policy.call(nil, 'url', {})", "nil|default.lua failed to load: line 4: ", NULL);
  want(L, "return policy.call('plain', 'url', {})", "nil|default.lua failed to load: line 4: ", NULL);
  assert_string_equal(Q(L, "return policy.call('own', 'url', {})"), "{allow=true,by=own}|nil");
  assert_string_equal(Q(L, "return policy.call('delegates', 'f', {})"), "{by=delegates}|nil");
  want(L, "return policy.call('delegates', 'url', {})", "nil|default.lua failed to load: line 4: ", NULL);
  check_url(f.e, NULL, "https://fine.example/", "\"reason\":\"policy: default.lua failed to load: line 4: ");
  check_url(f.e, "plain", "https://fine.example/", "\"reason\":\"policy: default.lua failed to load: line 4: ");
  check_url(f.e, "own", "https://fine.example/", "\"allowed\":true");
  check_url(f.e, "delegates", "https://fine.example/", "\"reason\":\"policy: default.lua failed to load: ");
  check_url(f.e, "all", "https://fine.example/", "\"reason\":\"policy: tenants/all.lua failed to load: default.lua failed to load: ");
  char *res = op_res(f.e, &SYS, "policy.status", "{}", MCPL_OK);
  if (!strstr(res, "the system actor and every tenant without a file of its own fail closed"))
    fail_msg("policy.status does not say who fails closed: %s", res);
  mcpl_free(res);
  /* fixed: a reload puts it in force for everyone */
  put(&f, "default.lua", "return { url = function(req) return { allow = true, by = 'default' } end }\n");
  res = op_res(f.e, &SYS, "policy.reload", "{}", MCPL_OK);
  if (!strstr(res, "\"failed\":0")) fail_msg("reload: %s", res);
  mcpl_free(res);
  assert_string_equal(Q(L, "return policy.call('delegates', 'url', {})"), "{allow=true,by=default}|nil");
  assert_string_equal(Q(L, "return policy.call('all', 'url', {})"), "{allow=true,by=default}|nil");
  check_url(f.e, NULL, "https://fine.example/", "\"allowed\":true");
  lua_close(L);
  fx_close(&f);

  /* what still stops the open: a policy directory that is not there */
  tu_env env;
  tu_paths(&env);
  char path[200];
  snprintf(path, sizeof path, "%s/missing", env.dir);
  err = NULL;
  assert_null(open_opts(&env, path, &err));
  assert_non_null(strstr(err, "policies directory not found"));
  mcpl_free(err);
  nftw(env.dir, tu_rm, 8, FTW_DEPTH | FTW_PHYS);
}

/* Copies a file of the sandbox fixture into the policy directory. */
static void copy_fixture(fx *f, const char *rel) {
  char path[256], buf[65536];
  snprintf(path, sizeof path, "tests/fixtures/policies-sandbox/%s", rel);
  FILE *in = fopen(path, "rb");
  if (!in) fail_msg("%s: missing (run the tests from the top of the tree)", path);
  size_t n = fread(buf, 1, sizeof buf - 1, in);
  fclose(in);
  buf[n] = 0;
  put(f, rel, buf);
}

/* The sandbox fixture's escape and abuse attempts (test_sandbox.c runs them
 * as calls), run instead while a tenant file loads: each file fails closed
 * for its own tenant, and the fixture's own tenants behave as before. */
static void test_sandbox_attempts_at_load(void **st) {
  (void)st;
  static const struct { const char *fn, *reason; } at_load[] = {
    {"loop", "instruction budget exceeded"}, {"loop_pcall", "instruction budget exceeded"},
    {"loop_xpcall", "instruction budget exceeded"}, {"loop_coroutine", "instruction budget exceeded"},
    {"coroutine_budget", "instruction budget exceeded"}, {"coroutines", "exceeded"},
    {"rep_bomb", "string.rep: result too large"}, {"rep_empty", "string.rep: result too large"},
    {"concat_bomb", "__len"}, {"concat_range", "range too long"}, {"unpack_bomb", "range too long"},
    {"memory", "memory limit exceeded"}, {"memory_pcall", "memory limit exceeded"},
    {"gc", "__gc are not allowed"}, {"close_late", "instruction budget exceeded"},
    {"dump", "dump"}, {"load_binary", "load"}, {"env_unlock", "protected metatable"},
    {"string_mt", "attempt to index"}, {"lib_tamper", "read-only"},
    {"error_tostring", "(error object is a table value)"}, {"error_index", "(error object is a table value)"},
    {"recurse", "exceeded"}, {"c_recurse", "overflow"}, {"pattern_bomb", "instruction budget exceeded"},
    {"pattern_long", "subject too long"}, {"pattern_loop", "instruction budget exceeded"},
    {"gsub_bomb", "replacement could produce"}, {"format_width", "invalid conversion"},
    {"format_long", "format too long"}, {"yield_top", "yield"},
    /* what the file returns: the result of an attempt */
    {"=ret_meta", "must return a plain table of functions"}, {"=ret_cycle", "bad entry t"},
    {"=ret_nothing", "must return a plain table of functions"},
  };
  enum { N = sizeof at_load / sizeof at_load[0] };
  fx f;
  tu_paths(&f.env);
  snprintf(f.pdir, sizeof f.pdir, "%s/pol", f.env.dir);
  char path[200], src[256], code[256], want_reason[256];
  snprintf(path, sizeof path, "%s/tenants", f.pdir);
  assert_int_equal(mkdir(f.pdir, 0700), 0);
  assert_int_equal(mkdir(path, 0700), 0);
  copy_fixture(&f, "default.lua");
  copy_fixture(&f, "tenants/acme.lua");
  copy_fixture(&f, "tenants/looper.lua");
  for (size_t i = 0; i < N; i++) {
    const char *fn = at_load[i].fn;
    if (*fn == '=') snprintf(src, sizeof src, "return default.%s()\n", fn + 1);
    else snprintf(src, sizeof src, "default.%s({ n = 1, host = 'a.example', list = { 'p' }, settings = { nested = { x = 5 } } })\n"
                                   "return { ok = default.ok }\n", fn);
    snprintf(path, sizeof path, "tenants/t_%s.lua", *fn == '=' ? fn + 1 : fn);
    put(&f, path, src);
  }
  char *err = NULL;
  f.e = open_opts(&f.env, f.pdir, &err);
  if (!f.e) fail_msg("the engine did not open: %s", err ? err : "?");
  lua_State *L = new_E(f.e);
  for (size_t i = 0; i < N; i++) {
    const char *fn = *at_load[i].fn == '=' ? at_load[i].fn + 1 : at_load[i].fn;
    snprintf(code, sizeof code, "return policy.call('t_%s', 'ok', {n = 1})", fn);
    snprintf(want_reason, sizeof want_reason, "nil|tenants/t_%s.lua failed to load: ", fn);
    const char *r = Q(L, code);
    if (strncmp(r, want_reason, strlen(want_reason)) != 0 || !strstr(r, at_load[i].reason))
      fail_msg("%s at load: got '%s', want '%s...%s'", fn, r, want_reason, at_load[i].reason);
  }
  assert_string_equal(Q(L, "return policy.status().failed"), "34|nil");
  /* the fixture's own tenants, the default and a tenant without a file */
  assert_string_equal(Q(L, "return policy.call(nil, 'ok', {n = 2})"), "{allow=true,n=2}|nil");
  assert_string_equal(Q(L, "return policy.call('acme', 'ok', {n = 3})"), "{allow=true,n=3,tenant=acme}|nil");
  assert_string_equal(Q(L, "return policy.call('other', 'ok', {n = 4})"), "{allow=true,n=4}|nil");
  assert_string_equal(Q(L, "return policy.call('looper', 'ok', {})"), "nil|instruction budget exceeded");
  assert_string_equal(Q(L, "return policy.call('acme', 'ok', {n = 5})"), "{allow=true,n=5,tenant=acme}|nil");
  lua_close(L);
  fx_close(&f);
}

/* A tenant whose file fails to load gets no validation() override (not even
 * the default's: its own file replaces the default); its neighbours do. */
static void test_validation_override_unused(void **st) {
  (void)st;
  fx f;
  fx_open(&f, "return { validation = function(i) return { detail = 'default advice' } end }\n");
  put(&f, "tenants/good.lua", "return { validation = function(i) return { detail = 'good advice' } end }\n");
  put(&f, "tenants/bad.lua", "local P = { validation = function(i) return { detail = 'bad advice' } end }\n"
                             "error('fails after defining validation')\nreturn P\n");
  char *err = NULL;
  assert_int_equal(policy_reload(f.e, &err), 0);
  static const char *const tenants[] = {"good", "bad", "plain", NULL};
  make_tenants(f.e, tenants);
  struct { const char *tenant, *detail; } cases[] = {
    {"good", "\"detail\":\"good advice\""},
    {"plain", "\"detail\":\"default advice\""},
    {"bad", "\"detail\":\"Server URL is not set"},
  };
  for (size_t i = 0; i < 3; i++) {
    mcpl_actor a = {cases[i].tenant, "u", 0};
    mcpl_free(op_res(f.e, &a, "server.create", "{\"name\":\"s\"}", MCPL_OK));
    char *res = op_res(f.e, &a, "server.validate", "{\"id\":\"s\"}", MCPL_OK);
    if (!strstr(res, cases[i].detail) || !strstr(res, "\"status\":\"Server URL not set\""))
      fail_msg("validate as %s: %s (wanted %s)", cases[i].tenant, res, cases[i].detail);
    mcpl_free(res);
  }
  fx_close(&f);
}

static void test_lru_bound(void **st) {
  (void)st;
  fx f;
  fx_open(&f, "local kept\nreturn { keep = function(r) kept = r.v return {} end,\n"
              "  peek = function() return { v = kept } end }\n");
  policy_set_limits(f.e, 0, 0, 4);
  lua_State *L = new_E(f.e);
  char code[128];
  for (int i = 0; i < 10; i++) {
    snprintf(code, sizeof code, "return policy.call('t%d', 'keep', {v = %d})", i, i);
    assert_string_equal(Q(L, code), "{}|nil");
  }
  assert_int_equal(policy_cached_states(f.e), 4);
  /* the most recent keep their state; the evicted ones start afresh */
  assert_string_equal(Q(L, "return policy.call('t9', 'peek', {})"), "{v=9}|nil");
  assert_string_equal(Q(L, "return policy.call('t6', 'peek', {})"), "{v=6}|nil");
  assert_string_equal(Q(L, "return policy.call('t0', 'peek', {})"), "{}|nil");
  assert_int_equal(policy_cached_states(f.e), 4);
  lua_close(L);
  fx_close(&f);
}

struct worker {
  mcpl_engine *e;
  fx *f;
  int id, failures, reloader;
};

static const char FLIP_GOOD[] = "return { url = function(r) return { allow = true, flip = r.n } end }\n";
static const char FLIP_BROKEN[] = "return { url = function(r) return { allow = true, flip = r.n } end\n";

/* The reloader breaks and mends flip.lua between reloads: each reload says
 * so (broken.lua always fails, flip.lua is kept half of the time). */
static int reloader_step(fx *f, lua_State *L, int i, char *buf, size_t n) {
  put(f, "tenants/flip.lua", i % 2 ? FLIP_BROKEN : FLIP_GOOD);
  return strcmp(q(L, "return policy.reload().failed", buf, n), i % 2 ? "2|nil" : "1|nil") != 0;
}

static void *worker_main(void *p) {
  struct worker *w = p;
  lua_State *L = new_E(w->e);
  char code[200], buf[512], want[64];
  for (int i = 0; i < 300; i++) {
    if (w->reloader) {
      w->failures += reloader_step(w->f, L, i, buf, sizeof buf);
      continue;
    }
    int t = (w->id + i) % 8;
    if (i % 50 == 7) { /* a kill now and then must not disturb the others */
      snprintf(code, sizeof code, "return policy.call('t%d', 'spin', {})", t);
      if (!strstr(q(L, code, buf, sizeof buf), "instruction budget exceeded")) w->failures++;
      continue;
    }
    if (t == 6) { /* the tenant whose file never loads: denied, always with the reason */
      if (!strstr(q(L, "return policy.call('broken', 'url', {})", buf, sizeof buf),
                  "nil|tenants/broken.lua failed to load: line 1: ")) {
        fprintf(stderr, "worker %d: broken: %s\n", w->id, buf);
        w->failures++;
      }
      continue;
    }
    if (t == 7) { /* the flipping file: its last good version answers throughout */
      snprintf(code, sizeof code, "return policy.call('flip', 'url', {n = %d})", i);
      snprintf(want, sizeof want, "{allow=true,flip=%d}|nil", i);
    } else {
      snprintf(code, sizeof code, "return policy.call(%s, 'url', {host = 'h%d', n = %d})",
               t == 5 ? "nil" : (t % 2 ? "'acme'" : "'t'"), i, i);
      snprintf(want, sizeof want, "{allow=true,host=h%d,n=%d%s}|nil", i, i,
               t != 5 && t % 2 ? ",tenant=acme" : "");
    }
    if (strcmp(q(L, code, buf, sizeof buf), want) != 0) {
      fprintf(stderr, "worker %d: %s != %s\n", w->id, buf, want);
      w->failures++;
    }
  }
  lua_close(L);
  return NULL;
}

/* Many engine threads call into shared tenant states while another thread
 * reloads the set (one file failing every other time, one always) and some
 * calls get killed. */
static void test_concurrency(void **st) {
  (void)st;
  fx f;
  fx_open(&f, "return { url = function(r) return { allow = true, host = r.host, n = r.n } end,\n"
              "  spin = function() while true do end end }\n");
  put(&f, "tenants/acme.lua",
      "return { url = function(r) local d = default.url(r) d.tenant = 'acme' return d end,\n"
      "  spin = default.spin }\n");
  put(&f, "tenants/broken.lua", "return { url = }\n");
  put(&f, "tenants/flip.lua", FLIP_GOOD);
  char *err = NULL;
  assert_int_equal(policy_reload(f.e, &err), 0);
  policy_set_limits(f.e, 200000, 0, 3);
  enum { NT = 7 };
  pthread_t th[NT];
  struct worker w[NT];
  for (int i = 0; i < NT; i++) {
    w[i] = (struct worker){f.e, &f, i, 0, i == NT - 1};
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

struct api_worker {
  mcpl_engine *e;
  fx *f;
  int id, failures, reloader;
};

/* Through the C API: url.check from several threads for a tenant whose file
 * fails, one whose file flips, and their neighbours, while policy.reload
 * runs as the system actor. */
static void *api_worker_main(void *p) {
  struct api_worker *w = p;
  static const char *const tenants[] = {"good", "bad", "plain", "flip", NULL};
  static const char *const hosts[] = {"deny.example", "fine.example"};
  for (int i = 0; i < 120; i++) {
    char *res = NULL;
    if (w->reloader) {
      put(w->f, "tenants/flip.lua", i % 2 ? "return { url = function( end }\n" : NB_GOOD);
      if (mcpl_op(w->e, &SYS, "policy.reload", "{}", &res) != MCPL_OK ||
          !strstr(res, i % 2 ? "\"failed\":2" : "\"failed\":1")) {
        fprintf(stderr, "reload %d: %s\n", i, res);
        w->failures++;
      }
      mcpl_free(res);
      continue;
    }
    const char *tenant = tenants[(w->id + i) % 4];
    const char *host = hosts[i % 2];
    mcpl_actor a = {tenant, "u", 0};
    char args[128];
    snprintf(args, sizeof args, "{\"url\":\"https://%s/\",\"resolve\":false}", host);
    const char *needle;
    if (strcmp(tenant, "bad") == 0) needle = "\"reason\":\"policy: tenants/bad.lua failed to load: line 2: '}' expected";
    else if (strcmp(tenant, "plain") == 0 || i % 2) needle = "\"allowed\":true";
    else needle = "\"reason\":\"policy: good says no\"";
    if (mcpl_op(w->e, &a, "url.check", args, &res) != MCPL_OK || !strstr(res, needle)) {
      fprintf(stderr, "%s %s: %s (wanted %s)\n", tenant, host, res, needle);
      w->failures++;
    }
    mcpl_free(res);
  }
  return NULL;
}

static void test_api_threads(void **st) {
  (void)st;
  fx f;
  tu_paths(&f.env);
  snprintf(f.pdir, sizeof f.pdir, "%s/pol", f.env.dir);
  char t[200];
  snprintf(t, sizeof t, "%s/tenants", f.pdir);
  assert_int_equal(mkdir(f.pdir, 0700), 0);
  assert_int_equal(mkdir(t, 0700), 0);
  put(&f, "default.lua", NB_DEFAULT);
  put(&f, "tenants/good.lua", NB_GOOD);
  put(&f, "tenants/flip.lua", NB_GOOD);
  put(&f, "tenants/bad.lua", "return { url = function() while true do end end\n");
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set_log(o, quiet, NULL);
  mcpl_options_set(o, "db", f.env.db);
  mcpl_options_set(o, "key_file", f.env.key);
  mcpl_options_set(o, "policies", f.pdir);
  mcpl_options_set(o, "pool_size", "4");
  char *err = NULL;
  f.e = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!f.e) fail_msg("open: %s", err ? err : "?");
  static const char *const tenants[] = {"good", "bad", "plain", "flip", NULL};
  make_tenants(f.e, tenants);
  enum { NT = 5 };
  pthread_t th[NT];
  struct api_worker w[NT];
  for (int i = 0; i < NT; i++) {
    w[i] = (struct api_worker){f.e, &f, i, 0, i == NT - 1};
    pthread_create(&th[i], NULL, api_worker_main, &w[i]);
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
    cmocka_unit_test(test_reload_per_file),
    cmocka_unit_test(test_kept_file_keeps_its_default),
    cmocka_unit_test(test_checked_on_first_use),
    cmocka_unit_test(test_call_key),
    cmocka_unit_test(test_status_checks_all),
      cmocka_unit_test(test_reload_before_first_use),
    cmocka_unit_test(test_tenant_default_delegation),
    cmocka_unit_test(test_results_and_inputs),
    cmocka_unit_test(test_builtin_default),
    cmocka_unit_test(test_load_failures),
    cmocka_unit_test(test_broken_default),
    cmocka_unit_test(test_sandbox_attempts_at_load),
    cmocka_unit_test(test_validation_override_unused),
    cmocka_unit_test(test_lru_bound),
    cmocka_unit_test(test_concurrency),
    cmocka_unit_test(test_api_threads),
  };
  return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
