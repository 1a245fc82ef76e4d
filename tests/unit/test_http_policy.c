/* test_http_policy.c: URL policies in force for url.check: reload without a
 * restart, a broken file keeps its previous version, failing policies deny. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "testutil.h"

static void write_file(const char *dir, const char *name, const char *text) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static char *op(mcpl_engine *e, const mcpl_actor *a, const char *name, const char *args, int want) {
  char *res = NULL;
  int rc = mcpl_op(e, a, name, args, &res);
  if (rc != want) fail_msg("%s -> %d: %s", name, rc, res);
  return res;
}

static void expect(mcpl_engine *e, const mcpl_actor *a, const char *url, const char *needle) {
  char args[256];
  snprintf(args, sizeof args, "{\"url\":\"%s\",\"resolve\":false}", url);
  char *res = op(e, a, "url.check", args, MCPL_OK);
  if (!strstr(res, needle)) fail_msg("url.check %s: %s (wanted %s)", url, res, needle);
  mcpl_free(res);
}

static void test_reload_and_failures(void **st) {
  (void)st;
  tu_env env;
  tu_paths(&env);
  char pol[128], ten[160];
  snprintf(pol, sizeof pol, "%s/policies", env.dir);
  snprintf(ten, sizeof ten, "%s/tenants", pol);
  assert_int_equal(mkdir(pol, 0700), 0);
  assert_int_equal(mkdir(ten, 0700), 0);
  write_file(pol, "default.lua", "return { url = function(req) return { allow = true } end }\n");
  write_file(ten, "t1.lua",
             "return { url = function(req)\n"
             "  if req.host == 'blocked.example' then return { allow = false, reason = 'v1 says no' } end\n"
             "  return default.url(req) end }\n");
  write_file(ten, "loops.lua", "return { url = function(req) while true do end end }\n");
  write_file(ten, "raises.lua", "return { url = function(req) error('boom') end }\n");
  write_file(ten, "garbage.lua", "return { url = function(req) return { allow = true, allow_cidrs = { 'not-a-cidr' } } end }\n");
  write_file(ten, "notable.lua", "return { url = function(req) return 'yes' end }\n");
  /* one CIDR parser for both: allow_cidrs and net.in_cidr refuse host bits */
  write_file(ten, "hostbits.lua", "return { url = function(req) return { allow = true, allow_cidrs = { '10.1.2.3/8' } } end }\n");
  write_file(ten, "typo.lua",
             "return { url = function(req)\n"
             "  if net.in_cidr(req.host, '10.1.2.3/8') then return { allow = false, reason = 'inside' } end\n"
             "  return { allow = true } end }\n");
  write_file(ten, "truthy.lua", "return { url = function(req) return { allow = 1 } end }\n");

  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", env.db);
  mcpl_options_set(o, "key_file", env.key);
  mcpl_options_set(o, "policies", pol);
  mcpl_options_set(o, "log_level", "error");  /* the denials below are logged as warnings */
  char *err = NULL;
  mcpl_engine *e = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!e) fail_msg("open: %s", err);
  mcpl_actor sys = {NULL, NULL, 1};
  const char *tenants[] = {"t1", "loops", "raises", "garbage", "notable", "truthy", "hostbits", "typo"};
  for (size_t i = 0; i < sizeof tenants / sizeof tenants[0]; i++) {
    char args[128];
    snprintf(args, sizeof args, "{\"name\":\"%s\"}", tenants[i]);
    mcpl_free(op(e, &sys, "tenant.create", args, MCPL_OK));
    snprintf(args, sizeof args, "{\"tenant\":\"%s\",\"name\":\"u\",\"role\":\"member\"}", tenants[i]);
    mcpl_free(op(e, &sys, "user.create", args, MCPL_OK));
  }
  mcpl_actor t1 = {"t1", "u", 0};
  expect(e, &t1, "https://blocked.example/", "\"reason\":\"policy: v1 says no\"");
  expect(e, &t1, "https://fine.example/", "\"allowed\":true");

  /* a failing policy is a deny with the reason, and the engine goes on */
  mcpl_actor lo = {"loops", "u", 0}, ra = {"raises", "u", 0}, ga = {"garbage", "u", 0};
  mcpl_actor nt = {"notable", "u", 0}, tr = {"truthy", "u", 0};
  expect(e, &lo, "https://fine.example/", "\"allowed\":false");
  expect(e, &ra, "https://fine.example/", "\"allowed\":false");
  expect(e, &ra, "https://fine.example/", "\"reason\":\"policy: ");
  expect(e, &ga, "https://fine.example/", "allow_cidrs[1] is not a valid");
  expect(e, &nt, "https://fine.example/", "\"allowed\":false");
  expect(e, &tr, "https://fine.example/", "\"allowed\":false");
  expect(e, &t1, "https://fine.example/", "\"allowed\":true");
  /* a CIDR with host bits set is a typo: refused as a widening, and a policy
   * testing against one fails closed, naming it */
  mcpl_actor hb = {"hostbits", "u", 0}, ty = {"typo", "u", 0};
  expect(e, &hb, "https://fine.example/", "allow_cidrs[1] is not a valid");
  expect(e, &ty, "https://fine.example/", "\"allowed\":false");
  expect(e, &ty, "https://fine.example/", "'10.1.2.3/8' is not an address or a CIDR");

  /* reload picks up a change without a restart */
  write_file(ten, "t1.lua",
             "return { url = function(req)\n"
             "  if req.host == 'fine.example' then return { allow = false, reason = 'v2 says no' } end\n"
             "  return default.url(req) end }\n");
  mcpl_free(op(e, &sys, "policy.reload", "{}", MCPL_OK));
  expect(e, &t1, "https://fine.example/", "\"reason\":\"policy: v2 says no\"");
  expect(e, &t1, "https://blocked.example/", "\"allowed\":true");

  /* a broken file is reported and its previous version stays in force */
  write_file(ten, "t1.lua", "return { url = function(req) return { allow = true } end \n");
  char *res = op(e, &sys, "policy.reload", "{}", MCPL_OK);
  assert_non_null(strstr(res, "\"file\":\"tenants/t1.lua\""));
  assert_non_null(strstr(res, "\"status\":\"kept_previous\""));
  mcpl_free(res);
  expect(e, &t1, "https://fine.example/", "\"reason\":\"policy: v2 says no\"");
  /* and tenants cannot reload */
  mcpl_free(op(e, &t1, "policy.reload", "{}", MCPL_E_FORBIDDEN));
  tu_close(&env, e);
}

/* What url() is given: the tenant, the purpose and the settings in force at
 * each decision, whatever an earlier decision on the same URL was given
 * (lua/net.lua keeps the input per URL, tenant, purpose and settings). */
static void test_policy_input_follows(void **st) {
  (void)st;
  tu_env env;
  tu_paths(&env);
  char pol[128];
  snprintf(pol, sizeof pol, "%s/policies", env.dir);
  assert_int_equal(mkdir(pol, 0700), 0);
  write_file(pol, "default.lua",
             "return { url = function(req) return { allow = false, reason = 'saw ' .. tostring(req.tenant) .. ' ' ..\n"
             "  req.purpose .. ' ' .. tostring(req.settings.allow_http) .. ' ' .. tostring(req.settings.allow_private_urls) ..\n"
             "  ' ' .. req.host } end }\n");
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", env.db);
  mcpl_options_set(o, "key_file", env.key);
  mcpl_options_set(o, "policies", pol);
  mcpl_options_set(o, "log_level", "error");
  char *err = NULL;
  mcpl_engine *e = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!e) fail_msg("open: %s", err);
  mcpl_actor sys = {NULL, NULL, 1};
  mcpl_free(op(e, &sys, "tenant.create", "{\"name\":\"acme\"}", MCPL_OK));
  mcpl_free(op(e, &sys, "user.create", "{\"tenant\":\"acme\",\"name\":\"u\",\"role\":\"member\"}", MCPL_OK));
  mcpl_actor u = {"acme", "u", 0};
  expect(e, &sys, "https://a.example/", "saw nil mcp false false a.example");
  expect(e, &u, "https://a.example/", "saw acme mcp false false a.example");
  mcpl_free(op(e, &sys, "settings.set", "{\"allow_http\":true}", MCPL_OK));
  expect(e, &sys, "https://a.example/", "saw nil mcp true false a.example");
  mcpl_free(op(e, &sys, "settings.set", "{\"allow_private_urls\":true}", MCPL_OK));
  expect(e, &u, "https://a.example/", "saw acme mcp true true a.example");
  char *res = op(e, &u, "url.check", "{\"url\":\"https://a.example/\",\"purpose\":\"token\",\"resolve\":false}", MCPL_OK);
  if (!strstr(res, "saw acme token true true")) fail_msg("the purpose: %s", res);
  mcpl_free(res);
  expect(e, &u, "https://b.example/", "saw acme mcp true true b.example");
  tu_close(&env, e);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_reload_and_failures),
                                     cmocka_unit_test(test_policy_input_follows)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
