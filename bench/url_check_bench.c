/* url_check_bench.c: warm url.check latency, default and tenant policy:
 * the policy decision alone (net.decide, policy.call) and the whole op. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <lauxlib.h>
#include "bench_util.h"
#include "engine.h"

#define N 20001

static double median(double *v) {
  qsort(v, N, sizeof *v, bu_cmp);
  return v[N / 2];
}

static double samples[N];

/* Median of calling the Lua function on top of L's stack N times. */
static double time_lua(lua_State *L) {
  for (int i = 0; i < N; i++) {
    lua_pushvalue(L, -1);
    double t0 = bu_now_us();
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) { fprintf(stderr, "lua: %s\n", lua_tostring(L, -1)); exit(1); }
    samples[i] = bu_now_us() - t0;
  }
  lua_pop(L, 1);
  return median(samples);
}

static double time_op(mcpl_engine *e, const mcpl_actor *a, const char *args) {
  for (int i = 0; i < N; i++) {
    char *res = NULL;
    double t0 = bu_now_us();
    int rc = mcpl_op(e, a, "url.check", args, &res);
    samples[i] = bu_now_us() - t0;
    if (rc != MCPL_OK || !strstr(res, "\"allowed\":true")) { fprintf(stderr, "op: %s\n", res); exit(1); }
    mcpl_free(res);
  }
  return median(samples);
}

static void fn(lua_State *L, const char *code) {
  if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "load: %s\n", lua_tostring(L, -1));
    exit(1);
  }
}

int main(void) {
  char dir[] = "/tmp/mcplink-bench-XXXXXX", db[128], key[128];
  if (!mkdtemp(dir)) return 1;
  snprintf(db, sizeof db, "%s/b.db", dir);
  snprintf(key, sizeof key, "%s/b.key", dir);
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", db);
  mcpl_options_set(o, "key_file", key);
  mcpl_options_set(o, "policies", "policies");
  mcpl_options_set(o, "pool_size", "1");
  char *err = NULL;
  mcpl_engine *e = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!e) { fprintf(stderr, "open: %s\n", err); return 1; }
  mcpl_actor sys = {NULL, NULL, 1}, lab = {"lab", "li", 0};
  char *res = NULL;
  mcpl_op(e, &sys, "tenant.create", "{\"name\":\"lab\"}", &res); mcpl_free(res);
  mcpl_op(e, &sys, "user.create", "{\"tenant\":\"lab\",\"name\":\"li\",\"role\":\"member\"}", &res); mcpl_free(res);
  lua_State *L = mcpl_state_engine(e, &err);
  if (!L) return 1;

  const char *req =
    "local r = { url='https://10.20.1.5/mcp', scheme='https', host='10.20.1.5', port=443, path='/mcp',"
    " purpose='mcp', settings={allow_private_urls=false, allow_http=false} }\n";
  char code[1024];
  printf("warm url.check, median of %d calls (no DNS: literal address, resolve=false)\n", N);
  snprintf(code, sizeof code, "%s local p = require 'policy' return function() p.call(nil, 'url', r) end", req);
  fn(L, code);
  double pd = time_lua(L);
  snprintf(code, sizeof code, "%s r.tenant='lab' local p = require 'policy' return function() p.call('lab', 'url', r) end", req);
  fn(L, code);
  double pt = time_lua(L);
  fn(L, "local net = require 'net' local c = {actor={system=true}} return function() net.decide(c, 'https://10.20.1.5/mcp', 'mcp') end");
  double dd = time_lua(L);
  fn(L, "local net = require 'net' local c = {actor={tenant='lab'}} return function() net.decide(c, 'https://10.20.1.5/mcp', 'mcp') end");
  double dt = time_lua(L);
  const char *args = "{\"url\":\"https://8.8.8.8/mcp\",\"resolve\":false}";
  const char *largs = "{\"url\":\"https://10.20.1.5/mcp\",\"resolve\":false}";
  double od = time_op(e, &sys, args), ot = time_op(e, &lab, largs);
  printf("%-44s %8s %8s\n", "", "default", "tenant");
  printf("%-44s %7.2fus %7.2fus\n", "policy.call url() (the policy decision)", pd, pt);
  printf("%-44s %7.2fus %7.2fus\n", "net.decide (parse + settings + policy)", dd, dt);
  printf("%-44s %7.2fus %7.2fus\n", "url.check op through mcpl_op", od, ot);
  mcpl_state_close(L);
  mcpl_close(e);
  char rm[160];
  snprintf(rm, sizeof rm, "rm -rf %s", dir);
  return system(rm) == 0 ? 0 : 1;
}
