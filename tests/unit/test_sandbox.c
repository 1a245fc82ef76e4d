/* test_sandbox.c: escape and abuse attempts against the policy sandbox; each
 * must end in a clear deny, quickly, with the engine and other tenants unharmed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>
#include "mcplink.h"
#include "testutil.h"
#include "policy.h"

static tu_env env;
static mcpl_engine *eng;
static lua_State *E; /* stands in for an engine Lua state */
static char qbuf[8192];

static const char HELPERS[] =
  "function show(v)\n"
  "  if type(v) ~= 'table' then return tostring(v) end\n"
  "  local ks = {} for k in pairs(v) do ks[#ks + 1] = k end\n"
  "  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)\n"
  "  local out = {} for _, k in ipairs(ks) do out[#out + 1] = tostring(k) .. '=' .. show(v[k]) end\n"
  "  return '{' .. table.concat(out, ',') .. '}'\n"
  "end\n"
  "function runq(code) local a, b = assert(load(code))() return show(a) .. '|' .. show(b) end\n"
  "INPUT = {n = 1, host = 'a.example', list = {'p', 'q'}, settings = {nested = {x = 5}}}\n";

/* Runs a chunk in E; returns "show(first)|show(second)". */
static const char *q(const char *code) {
  lua_settop(E, 0);
  lua_getglobal(E, "runq");
  lua_pushstring(E, code);
  if (lua_pcall(E, 1, 1, 0) != LUA_OK) snprintf(qbuf, sizeof qbuf, "LUAERR %s", lua_tostring(E, -1));
  else snprintf(qbuf, sizeof qbuf, "%s", lua_tostring(E, -1));
  lua_settop(E, 0);
  return qbuf;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int group_setup(void **st) {
  (void)st;
  tu_paths(&env);
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", env.db);
  mcpl_options_set(o, "key_file", env.key);
  mcpl_options_set(o, "policies", "tests/fixtures/policies-sandbox");
  mcpl_options_set(o, "log_level", "error"); /* the denials are expected */
  char *err = NULL;
  eng = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!eng) { fprintf(stderr, "mcpl_open: %s\n", err ? err : "?"); return -1; }
  E = luaL_newstate();
  luaL_openlibs(E);
  mcpl_engine_bind(E, eng);
  luaL_requiref(E, "policy", luaopen_mcpl_policy, 1);
  lua_pop(E, 1);
  if (luaL_dostring(E, HELPERS) != LUA_OK) return -1;
  return 0;
}

static int group_teardown(void **st) {
  (void)st;
  lua_close(E);
  tu_close(&env, eng);
  return 0;
}

/* The engine still decides normally, for the default and for a tenant. */
static void assert_engine_works(void) {
  assert_string_equal(q("return policy.call(nil, 'ok', {n = 2})"), "{allow=true,n=2}|nil");
  assert_string_equal(q("return policy.call('acme', 'ok', {n = 3})"),
                      "{allow=true,n=3,tenant=acme}|nil");
  assert_string_equal(q("return policy.call('other', 'ok', {n = 4})"), "{allow=true,n=4}|nil");
}

struct attempt {
  const char *fname;
  const char *reason; /* substring of the deny reason */
};

/* Calls one abuse function: it must be denied (nil, reason), and the engine
 * must keep working afterwards. The time bound tests containment (a limit
 * that did not trip would run on far longer), with room for a loaded host. */
static void run_attempt(void **st) {
  const struct attempt *a = *st;
  char code[256];
  snprintf(code, sizeof code, "return policy.call(nil, '%s', INPUT)", a->fname);
  double t0 = now_s();
  const char *r = q(code);
  double dt = now_s() - t0;
  if (strncmp(r, "nil|", 4) != 0 || !strstr(r, a->reason))
    fail_msg("%s: expected deny with '%s', got '%s'", a->fname, a->reason, r);
  if (dt > 10.0) fail_msg("%s: containment took %.2f s", a->fname, dt);
  assert_engine_works();
}

static const char BUDGET[] = "nil|instruction budget exceeded";
static const char MEMORY[] = "nil|memory limit exceeded";

static const struct attempt attempts[] = {
  {"loop", BUDGET},                              /* 1 infinite loop */
  {"loop_pcall", BUDGET},                        /* 2 loop inside pcall, retried */
  {"loop_xpcall", BUDGET},                       /* 3 kill swallowed by xpcall handler */
  {"loop_coroutine", BUDGET},                    /* 4 loop inside a coroutine */
  {"coroutine_budget", BUDGET},                  /* 5 budget split over coroutines */
  {"coroutines", "exceeded"},                    /* 6 millions of coroutines */
  {"rep_bomb", "string.rep: result too large"},  /* 7 */
  {"rep_empty", "string.rep: result too large"}, /* 8 rep("") loops without memory */
  {"concat_bomb", "__len"},                      /* 9 lying __len for table.concat */
  {"concat_range", "range too long"},            /* 10 */
  {"unpack_bomb", "range too long"},             /* 11 */
  {"memory", MEMORY},                            /* 12 memory growth */
  {"memory_pcall", MEMORY},                      /* 13 memory error swallowed by pcall */
  {"gc", "__gc are not allowed"},                /* 14 finalizer */
  {"close_late", BUDGET},                        /* 15 __close added after setmetatable */
  {"dump", "dump"},                              /* 16 string.dump */
  {"load_binary", "load"},                       /* 17 load of bytecode */
  {"set_global", "read-only"},                   /* 18 globals persisting across calls */
  {"env_unlock", "protected metatable"},         /* 19 _ENV metatable removal */
  {"string_mt", "attempt to index"},             /* 20 getmetatable("").__index */
  {"lib_tamper", "read-only"},                   /* 21 string.upper = ... */
  {"write_input", "read-only"},                  /* 22 modify frozen input */
  {"write_nested", "read-only"},                 /* 23 modify nested frozen input */
  {"insert_input", "read-only"},                 /* 24 table.insert into frozen input */
  {"unfreeze_input", "protected metatable"},     /* 25 setmetatable(req, nil) */
  {"error_tostring", "(error object is a table value)"}, /* 26 __tostring loop */
  {"error_index", "(error object is a table value)"},    /* 27 __index loop */
  {"ret_function", "function values are not plain data"}, /* 28 */
  {"ret_cycle", "too deep"},                     /* 29 cyclic result */
  {"ret_huge", "result too big"},                /* 30 */
  {"ret_meta", "metatables are not plain data"}, /* 31 result with __index trap */
  {"ret_coroutine", "thread values are not plain data"}, /* 32 */
  {"ret_nothing", "returned nothing"},           /* 33 */
  {"recurse", "exceeded"},                       /* 34 deep Lua recursion (stack = memory) */
  {"c_recurse", "overflow"},                     /* 35 C stack via __index */
  {"pattern_bomb", BUDGET},                      /* 36 backtracking pattern */
  {"pattern_long", "subject too long"},          /* 37 */
  {"pattern_loop", BUDGET},                      /* 38 cheap-looking matches in a loop */
  {"gsub_bomb", "replacement could produce"},    /* 39 */
  {"format_width", "invalid conversion"},        /* 40 string.format("%99999d") */
  {"format_long", "format too long"},            /* 41 */
  {"yield_top", "yield"},                        /* 42 yield out of the policy */
};

/* 43: nothing dangerous is reachable from the environment. */
static void test_env_probe(void **st) {
  (void)st;
  assert_string_equal(q("return policy.call(nil, 'probe', {})"),
                      "{_G=nil,collectgarbage=nil,debug=nil,dofile=nil,dump=nil,io=nil,"
                      "load=nil,loadfile=nil,os_execute=nil,os_exit=nil,os_getenv=nil,"
                      "package=nil,print=nil,rawset=nil,require=nil,time=number}|nil");
  assert_engine_works();
}

/* 44: the string metatable is hidden and string methods are intact. */
static void test_string_metatable(void **st) {
  (void)st;
  /* both tampering attempts are denied, and change nothing (below) */
  const char *r = q("return policy.call(nil, 'string_mt', {})");
  if (strncmp(r, "nil|", 4) != 0 || !strstr(r, "attempt to index")) fail_msg("string_mt: %s", r);
  r = q("return policy.call(nil, 'lib_tamper', {})");
  if (strncmp(r, "nil|", 4) != 0 || !strstr(r, "read-only")) fail_msg("lib_tamper: %s", r);
  assert_string_equal(q("return policy.call(nil, 'string_mt_kind', {})"),
                      "{kind=string,up=ABC}|nil");
}

/* 45: tenant A's state is never visible to tenant B (or the default). */
static void test_tenant_isolation(void **st) {
  (void)st;
  assert_string_equal(q("return policy.call('ta', 'keep', {value = 'secret-a'})"), "{kept=true}|nil");
  assert_string_equal(q("return policy.call('ta', 'peek', {})"), "{value=secret-a}|nil");
  assert_string_equal(q("return policy.call('tb', 'peek', {})"), "{}|nil");
  assert_string_equal(q("return policy.call(nil, 'peek', {})"), "{}|nil");
}

/* 46: a kill discards the tenant state: what it kept is gone after. */
static void test_kill_discards_state(void **st) {
  (void)st;
  assert_string_equal(q("return policy.call('tk', 'keep', {value = 'v1'})"), "{kept=true}|nil");
  assert_string_equal(q("return policy.call('tk', 'loop', {})"), BUDGET);
  assert_string_equal(q("return policy.call('tk', 'peek', {})"), "{}|nil");
  /* A plain error is not a kill: the state (and what it kept) survives. */
  assert_string_equal(q("return policy.call('tk', 'keep', {value = 'v2'})"), "{kept=true}|nil");
  assert_non_null(strstr(q("return policy.call('tk', 'error_message', {})"), "plain message"));
  assert_string_equal(q("return policy.call('tk', 'peek', {})"), "{value=v2}|nil");
}

/* 47: a tenant whose policy always loops does not affect anyone else. */
static void test_looping_tenant(void **st) {
  (void)st;
  for (int i = 0; i < 3; i++) {
    assert_string_equal(q("return policy.call('looper', 'ok', {})"), BUDGET);
    assert_engine_works();
  }
}

/* 48: path traversal and other bad tenant names never reach a file. */
static void test_bad_tenant_names(void **st) {
  (void)st;
  static const char *const names[] = {"../default", "..", "a/b", ".hidden", "", "tenants/acme",
                                      "acme\\x", "a b", "-x", NULL};
  for (int i = 0; names[i]; i++) {
    lua_settop(E, 0);
    lua_getglobal(E, "policy");
    lua_getfield(E, -1, "call");
    lua_pushstring(E, names[i]);
    lua_pushliteral(E, "ok");
    lua_newtable(E);
    assert_int_equal(lua_pcall(E, 3, 2, 0), LUA_OK);
    assert_true(lua_isnil(E, -2));
    assert_string_equal(lua_tostring(E, -1), "invalid tenant name");
    lua_settop(E, 0);
  }
  assert_false(policy_valid_tenant("../x"));
  assert_true(policy_valid_tenant("acme.corp-1_a"));
  assert_engine_works();
}

/* 49: the tenant cannot alter `default` (it is frozen). */
static void test_default_frozen_for_tenant(void **st) {
  (void)st;
  assert_non_null(strstr(q("return policy.call('acme', 'steal', {})"), "read-only"));
  assert_engine_works();
}

/* 50: the budget is per call, not cumulative. */
static void test_budget_per_call(void **st) {
  (void)st;
  for (int i = 0; i < 4; i++)
    assert_string_equal(q("return policy.call('tp', 'budget_half', {})"), "{allow=true}|nil");
}

/* 51: frozen input reads like a table: pairs, #, ipairs, nesting. */
static void test_frozen_reads(void **st) {
  (void)st;
  assert_string_equal(q("return policy.call(nil, 'read_input', INPUT)"),
                      "{deep=5,first=p,ipairs_n=2,keys=host,list,n,settings,mt=frozen,n=2}|nil");
  /* Returning (part of) the input copies the plain data back. */
  assert_string_equal(q("return policy.call(nil, 'ret_input', INPUT)"),
                      "{host=a.example,list={1=p,2=q},n=1,settings={nested={x=5}}}|nil");
}

/* 51b: a frozen copy of an input serves later calls with the same content
 * (the URL policy sees the same request on every call): each call still
 * sees exactly its own input, whatever came before. */
static void test_input_reuse(void **st) {
  (void)st;
  /* the same text with other types is another input */
  assert_string_equal(q("local a = policy.call(nil, 'ret_input', {n = 1, s = 'x'})\n"
                        "local b = policy.call(nil, 'ret_input', {n = '1', s = 'x'})\n"
                        "local c = policy.call(nil, 'ret_input', {n = 1.0, s = 'x'})\n"
                        "local d = policy.call(nil, 'ret_input', {n = 1, s = 'x'})\n"
                        "return math.type(a.n) .. ',' .. type(b.n) .. ',' .. math.type(c.n) .. ',' .. math.type(d.n)"),
                      "integer,string,float,integer|nil");
  /* nested content and keys count: these differ only deep inside */
  assert_string_equal(q("local a = policy.call(nil, 'ret_input', {t = {u = {v = 'p'}}})\n"
                        "local b = policy.call(nil, 'ret_input', {t = {u = {v = 'q'}}})\n"
                        "local c = policy.call(nil, 'ret_input', {t = {u = {w = 'p'}}})\n"
                        "local d = policy.call(nil, 'ret_input', {t = {u = {v = 'p'}, x = true}})\n"
                        "local e = policy.call(nil, 'ret_input', {t = {u = {v = 'p'}, x = false}})\n"
                        "return a.t.u.v .. b.t.u.v .. c.t.u.w .. tostring(d.t.x) .. tostring(e.t.x)"),
                      "pqptruefalse|nil");
  /* strings whose length prefix could be confused with content */
  assert_string_equal(q("local a = policy.call(nil, 'ret_input', {s = '1:', t = 'x'})\n"
                        "local b = policy.call(nil, 'ret_input', {s = '', t = '1:x'})\n"
                        "return a.s .. '/' .. a.t .. '/' .. b.s .. '/' .. b.t"), "1:/x//1:x|nil");
  assert_string_equal(q("local a = policy.call(nil, 'ret_input', {'aI2;Sb'})\n"
                        "local b = policy.call(nil, 'ret_input', {'a', 'b'})\n"
                        "return #a .. a[1] .. '/' .. #b .. b[1] .. b[2]"), "1aI2;Sb/2ab|nil");
  /* many more inputs than are kept, in rounds: every answer is its own */
  assert_string_equal(q("local bad = 0\n"
                        "for round = 1, 3 do for i = 1, 40 do\n"
                        "  local r = policy.call(nil, 'ret_input', {n = i, host = 'h' .. i, list = {i, i + 1}})\n"
                        "  if r.n ~= i or r.host ~= 'h' .. i or r.list[2] ~= i + 1 then bad = bad + 1 end\n"
                        "end end\n"
                        "return bad"), "0|nil");
  /* a reused copy is as frozen as a new one, and unchanged by attempts */
  for (int i = 0; i < 3; i++) {
    const char *r = q("return policy.call(nil, 'write_input', INPUT)");
    assert_true(strncmp(r, "nil|", 4) == 0 && strstr(r, "read-only"));
    assert_string_equal(q("return policy.call(nil, 'ret_input', INPUT)"),
                        "{host=a.example,list={1=p,2=q},n=1,settings={nested={x=5}}}|nil");
  }
  assert_engine_works();
}

/* 52: bad input from the engine side is refused before policy code runs. */
static void test_bad_input(void **st) {
  (void)st;
  assert_string_equal(q("local t = {} t.t = t return policy.call(nil, 'ok', t)"),
                      "nil|input too deep (or cyclic)");
  assert_string_equal(q("return policy.call(nil, 'ok', {f = print})"),
                      "nil|input: function values are not plain data");
  assert_string_equal(q("return policy.call(nil, 'ok', {[{}] = 1})"),
                      "nil|input: keys must be strings or integers");
  assert_engine_works();
}

/* 53: pattern functions still work for ordinary policy matching. */
static void test_patterns_usable(void **st) {
  (void)st;
  lua_State *P;
  char why[256];
  P = policy_sandbox_new(NULL, 0, 0, why, sizeof why);
  assert_non_null(P);
  static const char src[] =
    "return { f = function(r)\n"
    "  local scheme, host, rest = r.url:match('^(%w+)://([^/:]+)(.*)$')\n"
    "  local n = 0 for _ in r.url:gmatch('[^/]+') do n = n + 1 end\n"
    "  return { scheme = scheme, host = host, rest = rest, parts = n,\n"
    "           sub = r.host:gsub('%.', '_'), suffix = r.host:find('%.example%.com$') ~= nil,\n"
    "           cidr = net.in_cidr('10.20.3.4', '10.20.0.0/16'), v6 = net.in_cidr('fd00::1', 'fd00::/8'),\n"
    "           notcidr = net.in_cidr('10.21.0.1', '10.20.0.0/16'), bad = net.in_cidr('x', '10.0.0.0/8'),\n"
    "           mixed = net.in_cidr('10.0.0.1', '::/0'),\n"
    "           sub1 = net.host_matches('API.Example.com', '*.example.com'),\n"
    "           apex = net.host_matches('example.com', '*.example.com'),\n"
    "           exact = net.host_matches('Example.COM.', 'example.com'),\n"
    "           evil = net.host_matches('evilexample.com', '*.example.com') }\n"
    "end }\n";
  assert_int_equal(policy_sandbox_load(P, src, strlen(src), "=t", 0, why, sizeof why), SB_OK);
  lua_settop(E, 0);
  lua_newtable(E);
  lua_pushliteral(E, "https://api.example.com/v1/mcp");
  lua_setfield(E, -2, "url");
  lua_pushliteral(E, "api.example.com");
  lua_setfield(E, -2, "host");
  assert_int_equal(policy_sandbox_call(P, E, "f", 1, 0, why, sizeof why), SB_OK);
  lua_getglobal(E, "show");
  lua_insert(E, -2);
  lua_call(E, 1, 1);
  assert_string_equal(lua_tostring(E, -1),
                      "{apex=false,bad=false,cidr=true,evil=false,exact=true,host=api.example.com,"
                      "mixed=false,notcidr=false,parts=4,rest=/v1/mcp,scheme=https,"
                      "sub=api_example_com,sub1=true,suffix=true,v6=true}");
  lua_settop(E, 0);
  policy_sandbox_close(P);
}

/* 53b: net.in_cidr reads a CIDR with the parser the SSRF guard uses for
 * allow_cidrs (addr.c): a CIDR that is not one (host bits set, a bad length)
 * fails the call (a deny naming it), never a silent true or false; an
 * address that is not one is in no range. */
static void test_in_cidr(void **st) {
  (void)st;
  static const struct { const char *args, *want; } cases[] = {
    {"'10.9.9.9', '10.0.0.0/8'", "true"},
    {"'11.0.0.1', '10.0.0.0/8'", "false"},
    {"'1.2.3.4', '1.2.3.4'", "true"},                 /* a bare address: one host */
    {"'1.2.3.5', '1.2.3.4'", "false"},
    {"'fd00::1', 'fd00::/8'", "true"},
    {"'::ffff:10.0.0.1', '10.0.0.0/8'", "false"},     /* families must agree */
    {"'10.0.0.1', '::/0'", "false"},
    {"'x', '10.0.0.0/8'", "false"},                   /* a host name is in no range */
    {"nil, '10.0.0.0/8'", "false"},
    {"'10.0.0.1/32', '10.0.0.0/8'", "false"},         /* a range is not an address */
    {"'10.0.0.1\\0junk', '10.0.0.0/8'", "false"},     /* a NUL does not cut it short */
    {"'10.9.9.9', '10.1.2.3/8'", "ERR '10.1.2.3/8' is not an address or a CIDR"},
    {"'10.9.9.9', '10/8'", "ERR '10/8' is not"},
    {"'10.9.9.9', '10.0.0.0/08'", "ERR '10.0.0.0/08' is not"},
    {"'10.9.9.9', '10.0.0.0/33'", "ERR '10.0.0.0/33' is not"},
    {"'10.9.9.9', '10.0.0.0/8\\0'", "ERR argument 2 is not an address or a CIDR"},
    {"'10.9.9.9', 'secret token'", "ERR argument 2 is not an address or a CIDR"},
    {"'10.9.9.9', nil", "ERR argument 2 is not"},
  };
  char why[256], src[256];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lua_State *P = policy_sandbox_new(NULL, 0, 0, why, sizeof why);
    assert_non_null(P);
    snprintf(src, sizeof src, "return { f = function() return { r = net.in_cidr(%s) } end }", cases[i].args);
    assert_int_equal(policy_sandbox_load(P, src, strlen(src), "=t", 0, why, sizeof why), SB_OK);
    lua_settop(E, 0);
    lua_newtable(E);
    int rc = policy_sandbox_call(P, E, "f", 1, 0, why, sizeof why);
    if (strncmp(cases[i].want, "ERR ", 4) == 0) {
      if (rc != SB_FAIL || !strstr(why, cases[i].want + 4))
        fail_msg("in_cidr(%s): wanted an error with \"%s\", got %d: %s", cases[i].args, cases[i].want + 4, rc, why);
      if (strstr(why, "secret")) fail_msg("in_cidr(%s): the text is repeated: %s", cases[i].args, why);
    } else {
      if (rc != SB_OK) fail_msg("in_cidr(%s): %s", cases[i].args, why);
      lua_getfield(E, -1, "r");
      if (strcmp(lua_toboolean(E, -1) ? "true" : "false", cases[i].want) != 0)
        fail_msg("in_cidr(%s) is not %s", cases[i].args, cases[i].want);
    }
    lua_settop(E, 0);
    policy_sandbox_close(P);
  }
}

/* 54: a policy file in bytecode is refused (text chunks only). */
static char dumpbuf[4096];
static size_t dumplen;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L; (void)ud;
  if (dumplen + sz > sizeof dumpbuf) return 1;
  memcpy(dumpbuf + dumplen, p, sz);
  dumplen += sz;
  return 0;
}

static void test_binary_file_refused(void **st) {
  (void)st;
  char why[256];
  lua_State *P = policy_sandbox_new(NULL, 0, 0, why, sizeof why);
  assert_non_null(P);
  lua_State *T = luaL_newstate();
  assert_int_equal(luaL_loadstring(T, "return { ok = function() return {} end }"), LUA_OK);
  dumplen = 0;
  assert_int_equal(lua_dump(T, dump_writer, NULL, 0), 0);
  lua_close(T);
  assert_int_equal(policy_sandbox_load(P, dumpbuf, dumplen, "=bin", 0, why, sizeof why), SB_FAIL);
  assert_non_null(strstr(why, "binary"));
  policy_sandbox_close(P);
}

/* 55: limits tripped while a file loads are reported against that file. */
static void test_load_limits(void **st) {
  (void)st;
  char why[256];
  lua_State *P = policy_sandbox_new(NULL, 0, 0, why, sizeof why);
  static const char loop[] = "while true do end";
  assert_int_equal(policy_sandbox_load(P, loop, strlen(loop), "@x.lua", 0, why, sizeof why), SB_KILLED);
  assert_string_equal(why, "x.lua: instruction budget exceeded");
  policy_sandbox_close(P);
  P = policy_sandbox_new(NULL, 1 << 20, 0, why, sizeof why);
  static const char grow[] = "local t = {} for i = 1, 1e9 do t[i] = i end";
  assert_int_equal(policy_sandbox_load(P, grow, strlen(grow), "@y.lua", 0, why, sizeof why), SB_KILLED);
  assert_string_equal(why, "y.lua: memory limit exceeded");
  policy_sandbox_close(P);
}

static const struct CMUnitTest more[] = {
  cmocka_unit_test(test_env_probe),
  cmocka_unit_test(test_string_metatable),
  cmocka_unit_test(test_tenant_isolation),
  cmocka_unit_test(test_kill_discards_state),
  cmocka_unit_test(test_looping_tenant),
  cmocka_unit_test(test_bad_tenant_names),
  cmocka_unit_test(test_default_frozen_for_tenant),
  cmocka_unit_test(test_budget_per_call),
  cmocka_unit_test(test_frozen_reads),
  cmocka_unit_test(test_input_reuse),
  cmocka_unit_test(test_bad_input),
  cmocka_unit_test(test_patterns_usable),
  cmocka_unit_test(test_in_cidr),
  cmocka_unit_test(test_binary_file_refused),
  cmocka_unit_test(test_load_limits),
};

int main(void) {
  enum { N = sizeof attempts / sizeof attempts[0] };
  enum { M = sizeof more / sizeof more[0] };
  struct CMUnitTest tests[N + M];
  for (size_t i = 0; i < N; i++) {
    tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(run_attempt, (void *)&attempts[i]);
    tests[i].name = attempts[i].fname;
  }
  for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) tests[N + i] = more[i];
  return _cmocka_run_group_tests("sandbox", tests, N + M, group_setup, group_teardown);
}
