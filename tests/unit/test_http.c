/* test_http.c: the guarded HTTP client against loopback fixture servers
 * (tests/fixtures/http/server.mjs, the test CA): redirects, credentials,
 * limits, proxies, cancellation, DNS answers chosen by an injected resolver. */
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <lauxlib.h>
#include "testutil.h"
#include "engine.h"
#include "http.h"

static pid_t srv_pid = -1;
static int srv_in = -1;
static int port_https, port_http, canary;
static char certdir[64];
static tu_env env;
static mcpl_engine *E;
static lua_State *L;

/* ---- fixture lifecycle ---------------------------------------------------- */

static int start_server(void) {
  char cmd[256];
  strcpy(certdir, "/tmp/mcplink-http-XXXXXX");
  if (!mkdtemp(certdir)) return -1;
  snprintf(cmd, sizeof cmd, "sh tests/tools/mkcerts.sh %s >/dev/null", certdir);
  if (system(cmd) != 0) return -1;
  int in[2], out[2];
  if (pipe(in) || pipe(out)) return -1;
  srv_pid = fork();
  if (srv_pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    execlp("node", "node", "tests/fixtures/http/server.mjs", certdir, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  srv_in = in[1];
  char line[256];
  FILE *f = fdopen(out[0], "r");
  if (!f || !fgets(line, sizeof line, f)) return -1;
  fclose(f);
  char c[8] = "";
  if (sscanf(line, "{\"https\":%d,\"http\":%d,\"canary\":%7[a-z]}", &port_https, &port_http, c) != 3)
    return -1;
  canary = strcmp(c, "true") == 0;
  return 0;
}

static mcpl_engine *open_engine(tu_env *te, const char *ca) {
  tu_paths(te);
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", te->db);
  mcpl_options_set(o, "key_file", te->key);
  mcpl_options_set(o, "policies", "policies");
  if (ca) mcpl_options_set(o, "ca_file", ca);
  char *err = NULL;
  mcpl_engine *e = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!e) fprintf(stderr, "# mcpl_open: %s\n", err ? err : "?");
  mcpl_free(err);
  return e;
}

static void set_settings(const char *json) {
  mcpl_actor sys = {NULL, NULL, 1};
  char *res = NULL;
  int rc = mcpl_op(E, &sys, "settings.set", json, &res);
  if (rc != MCPL_OK) fprintf(stderr, "# settings.set: %s\n", res);
  mcpl_free(res);
  assert_int_equal(rc, MCPL_OK);
}

static int setup(void **st) {
  (void)st;
  if (start_server() != 0) { fprintf(stderr, "# fixture server did not start\n"); return -1; }
  char ca[128];
  snprintf(ca, sizeof ca, "%s/ca.pem", certdir);
  E = open_engine(&env, ca);
  if (!E) return -1;
  set_settings("{\"allow_private_urls\":true}");  /* the fixtures live on 127.0.0.1 */
  char *err = NULL;
  L = mcpl_state_engine(E, &err);
  if (!L) { fprintf(stderr, "# state: %s\n", err); mcpl_free(err); return -1; }
  return 0;
}

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *w) {
  (void)sb; (void)f; (void)w;
  return remove(p);
}

static int teardown(void **st) {
  (void)st;
  mcpl_state_close(L);
  if (E) tu_close(&env, E);
  if (srv_in >= 0) close(srv_in);
  if (srv_pid > 0) { kill(srv_pid, SIGTERM); waitpid(srv_pid, NULL, 0); }
  nftw(certdir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
  return 0;
}

/* ---- running Lua in an engine state ------------------------------------------ */

static const char PRELUDE[] =
  "local net = require 'net'; local http = require 'http'; local json = require 'json'\n"
  "local core = require 'core'\n"
  "local S, P = ...\n"  /* https://127.0.0.1:port, http://127.0.0.1:port */
  "local ctx = { actor = { system = true } }\n"
  "local function fails(req, code, reason)\n"
  "  local ok, e = pcall(net.request, ctx, req)\n"
  "  if ok then return 'expected ' .. code .. ', got HTTP ' .. e.status end\n"
  "  if type(e) ~= 'table' then return 'raised ' .. tostring(e) end\n"
  "  if e.code ~= code then return 'code ' .. tostring(e.code) .. ': ' .. tostring(e.message) end\n"
  "  if reason and not tostring(e.reason):find(reason, 1, true) then\n"
  "    return 'reason ' .. tostring(e.reason) .. ': ' .. tostring(e.message) end\n"
  "end\n";

/* Runs code (which returns nil/"ok" on success or a failure text). */
static void lua_ok(const char *code) {
  char s[128], p[128];
  size_t n = strlen(PRELUDE) + strlen(code) + 1;
  char *chunk = malloc(n);
  snprintf(chunk, n, "%s%s", PRELUDE, code);
  lua_settop(L, 0);
  int rc = luaL_loadbufferx(L, chunk, strlen(chunk), "=test", "t");
  free(chunk);
  if (rc != LUA_OK) fail_msg("load: %s", lua_tostring(L, -1));
  snprintf(s, sizeof s, "https://127.0.0.1:%d", port_https);
  snprintf(p, sizeof p, "http://127.0.0.1:%d", port_http);
  lua_pushstring(L, s);
  lua_pushstring(L, p);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    const char *m = lua_tostring(L, -1);
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "message");
      m = lua_tostring(L, -1);
    }
    fail_msg("error: %s", m ? m : "?");
  }
  if (!lua_isnil(L, -1) && strcmp(lua_tostring(L, -1), "ok") != 0)
    fail_msg("%s", lua_tostring(L, -1));
}

/* ---- Lua-level behaviour ----------------------------------------------------- */

static void test_https_h2_echo(void **st) {
  (void)st;
  lua_ok("local r = net.request(ctx, { url = S .. '/echo', headers = { ['X-Test'] = 'one' } })\n"
         "if r.status ~= 200 then return 'status ' .. r.status end\n"
         "if r.http_version ~= 2 then return 'not HTTP/2: ' .. r.http_version end\n"
         "if r.primary_ip ~= '127.0.0.1' then return 'ip ' .. r.primary_ip end\n"
         "if r.headers['x-fixture'] ~= 'yes' then return 'missing response header' end\n"
         "local b = json.decode(r.body)\n"
         "if b.method ~= 'GET' or b.headers['x-test'] ~= 'one' then return 'echo: ' .. r.body end\n"
         "local r2 = net.request(ctx, { url = S .. '/echo', method = 'POST', body = '{\"a\":1}',\n"
         "  headers = { ['Content-Type'] = 'application/json' } })\n"
         "local b2 = json.decode(r2.body)\n"
         "if b2.method ~= 'POST' or b2.body ~= '{\"a\":1}' then return 'post: ' .. r2.body end\n");
}

/* The MCP transfer (mcp.stream) sends each request header as given; a header
 * that does not map a name to a string is refused by name. */
static void test_mcp_stream_headers(void **st) {
  (void)st;
  lua_ok("local mcp = require 'mcp'\n"
         "local u = net.parse(S .. '/echo')\n"
         "local d = net.decide(ctx, u, 'mcp')\n"
         "local lim = { timeout_ms = 5000, connect_timeout_ms = 5000, max_bytes = 1048576, max_header_bytes = 65536 }\n"
         "local h = { ['Content-Type'] = 'application/json', ['X-One'] = '1', ['X-Two'] = 'two words: and a colon' }\n"
         "for i = 1, 20 do h['X-N' .. i] = string.rep('v', i) end\n"
         "local r = mcp.stream({ url = u, method = 'POST', body = '{}', guard = d.guard, headers = h, limits = lim })\n"
         "local b = json.decode(r.body)\n"
         "if b.headers['x-one'] ~= '1' or b.headers['x-two'] ~= 'two words: and a colon' then return 'sent: ' .. r.body end\n"
         "for i = 1, 20 do if b.headers['x-n' .. i] ~= string.rep('v', i) then return 'x-n' .. i .. ': ' .. r.body end end\n"
         "r = mcp.stream({ url = u, method = 'GET', guard = d.guard, limits = lim })\n"
         "if r.status ~= 200 then return 'no headers: ' .. r.status end\n"
         "local ok, e = pcall(mcp.stream, { url = u, method = 'GET', guard = d.guard, limits = lim, headers = { ['X-N'] = 1 } })\n"
         "if ok or not tostring(e.message):find('headers must map names to strings', 1, true) then return 'number value: ' .. tostring(e and e.message) end\n");
}

/* Transfers reuse the engine's easy handles (reset in between): nothing of
 * one request (method, body, headers, custom verb) reaches the next. */
static void test_reused_handles_carry_nothing(void **st) {
  (void)st;
  lua_ok("local seq = {\n"
         "  { method = 'POST', body = 'first', headers = { ['X-One'] = '1', ['Content-Type'] = 'text/plain' } },\n"
         "  { },\n"
         "  { method = 'DELETE', headers = { ['X-Two'] = '2' } },\n"
         "  { },\n"
         "  { method = 'POST', body = 'second' },\n"
         "  { method = 'HEAD' },\n"
         "  { },\n"
         "  { method = 'PUT', body = 'third' },\n"
         "  { method = 'DELETE' },\n"
         "  { method = 'HEAD' },\n"
         "  { method = 'POST', body = 'fourth' },\n"
         "}\n"
         "for round = 1, 3 do for i, q in ipairs(seq) do\n"
         "  q.url = S .. '/echo'\n"
         "  local r = net.request(ctx, q)\n"
         "  if r.status ~= 200 then return i .. ': status ' .. r.status end\n"
         "  if q.method == 'HEAD' then\n"
         "    if r.body ~= '' then return i .. ': HEAD got a body' end\n"
         "  else\n"
         "    local b = json.decode(r.body)\n"
         "    local want = q.method or 'GET'\n"
         "    if b.method ~= want then return i .. ': method ' .. tostring(b.method) .. ', not ' .. want end\n"
         "    if (b.body or '') ~= (q.body or '') then return i .. ': body ' .. tostring(b.body) end\n"
         "    for _, h in ipairs({ 'x-one', 'x-two' }) do\n"
         "      local sent = q.headers and (q.headers['X-One'] and h == 'x-one' or q.headers['X-Two'] and h == 'x-two')\n"
         "      if (b.headers[h] ~= nil) ~= (sent and true or false) then return i .. ': header ' .. h .. ' leaked' end\n"
         "    end\n"
         "  end\n"
         "end end\n");
}

static void test_private_blocked_by_default(void **st) {
  (void)st;
  set_settings("{\"allow_private_urls\":false}");
  lua_ok("return fails({ url = S .. '/echo' }, 'url_blocked', 'private_address 127.0.0.1')");
  set_settings("{\"allow_private_urls\":true}");
  /* link-local (cloud metadata) stays shut even with allow_private_urls */
  lua_ok("return fails({ url = 'https://169.254.169.254/latest/meta-data/' }, 'url_blocked', 'private_address 169.254.169.254')");
  lua_ok("return fails({ url = P .. '/echo' }, 'url_blocked', 'scheme')");
}

static void test_redirect_hops_rechecked(void **st) {
  (void)st;
  lua_ok("return fails({ url = S .. '/redirect?to=https://169.254.169.254/x' }, 'url_blocked', 'private_address 169.254.169.254')");
  lua_ok("return fails({ url = S .. '/redirect?to=https://[::ffff:a9fe:a9fe]/' }, 'url_blocked', 'private_address')");
  lua_ok("return fails({ url = S .. '/redirect?to=' .. P .. '/echo' }, 'url_blocked', 'scheme')");
  lua_ok("return fails({ url = S .. '/redirect?to=ftp://127.0.0.1/' }, 'url_blocked', 'scheme')");
  lua_ok("return fails({ url = S .. '/redirect?to=https://u:p@127.0.0.1/' }, 'url_blocked', 'userinfo')");
  lua_ok("return fails({ url = S .. '/loop' }, 'upstream_error', 'too_many_redirects')");
  /* a followed redirect, and purpose token that does not follow */
  lua_ok("local r = net.request(ctx, { url = S .. '/redirect?to=/echo' })\n"
         "if r.status ~= 200 or r.redirects ~= 1 then return 'followed: ' .. r.status end\n"
         "local t = net.request(ctx, { url = S .. '/redirect?to=/echo', purpose = 'token', method = 'POST', body = 'x' })\n"
         "if t.status ~= 302 or t.redirects ~= 0 then return 'token followed: ' .. t.status end\n");
  /* with http allowed, the same http hop goes through */
  set_settings("{\"allow_http\":true}");
  lua_ok("local r = net.request(ctx, { url = S .. '/redirect?to=' .. P .. '/echo' })\n"
         "if r.status ~= 200 or r.http_version ~= 1 then return 'http hop: ' .. r.status end\n");
  set_settings("{\"allow_http\":false}");
}

static void test_credentials_dropped_across_origins(void **st) {
  (void)st;
  lua_ok("local H = { Authorization = 'Bearer s3cret', ['X-Api-Key'] = 'k', ['X-Other'] = 'o' }\n"
         "local same = net.request(ctx, { url = S .. '/redirect?to=/echo', headers = H, sensitive_headers = { 'x-api-key' } })\n"
         "local b = json.decode(same.body)\n"
         "if b.headers.authorization ~= 'Bearer s3cret' then return 'same origin lost Authorization' end\n"
         "local other = 'https://localhost:' .. S:match(':(%d+)$') .. '/echo'\n"
         "local r = net.request(ctx, { url = S .. '/redirect?to=' .. other, headers = H, sensitive_headers = { 'x-api-key' } })\n"
         "local b2 = json.decode(r.body)\n"
         "if r.url ~= other then return 'did not reach ' .. other .. ' but ' .. r.url end\n"
         "if b2.headers.authorization then return 'Authorization crossed origins' end\n"
         "if b2.headers['x-api-key'] then return 'sensitive header crossed origins' end\n"
         "if b2.headers['x-other'] ~= 'o' then return 'ordinary header lost' end\n"
         /* and stays dropped when the chain comes back to the first origin */
         "local back = 'https://localhost:' .. S:match(':(%d+)$') .. '/redirect?to=' .. S .. '/echo'\n"
         "local r3 = net.request(ctx, { url = S .. '/redirect?to=' .. back:gsub('[?=/:&]', function(c) return string.format('%%%02X', c:byte()) end), headers = H })\n"
         "if json.decode(r3.body).headers.authorization then return 'Authorization came back' end\n");
}

static void test_proxy_env_ignored(void **st) {
  (void)st;
  const char *vars[] = {"https_proxy", "HTTPS_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"};
  for (size_t i = 0; i < 5; i++) setenv(vars[i], "http://127.0.0.1:9", 1);
  lua_ok("local r = net.request(ctx, { url = S .. '/echo' })\n"
         "if r.status ~= 200 or r.primary_ip ~= '127.0.0.1' then return 'via proxy?' end\n");
  for (size_t i = 0; i < 5; i++) unsetenv(vars[i]);
}

static void test_limits(void **st) {
  (void)st;
  lua_ok("local e = fails({ url = S .. '/forever', max_bytes = 1048576 }, 'too_large') if e then return e end\n"
         "e = fails({ url = S .. '/big?n=2000000', max_bytes = 1000000 }, 'too_large') if e then return e end\n"
         "local r = net.request(ctx, { url = S .. '/big?n=1000000', max_bytes = 1000000 })\n"
         "if #r.body ~= 1000000 then return 'exact limit refused' end\n"
         "e = fails({ url = S .. '/bigheaders', max_header_bytes = 16384 }, 'too_large', 'headers') if e then return e end\n"
         /* the trickle never ends: only the 1 s timeout can stop it (with room for a loaded host) */
         "local t0 = core.mono_ms()\n"
         "e = fails({ url = S .. '/trickle', timeout_ms = 1000 }, 'timeout') if e then return e end\n"
         "local dt = core.mono_ms() - t0\n"
         "if dt < 900 or dt > 8000 then return 'trickle stopped after ' .. dt .. ' ms' end\n"
         /* a request may lower a purpose limit, never raise it */
         "e = fails({ url = S .. '/big?n=70000', purpose = 'client_metadata', max_bytes = 100000000 }, 'too_large')\n"
         "if e then return e end\n");
}

/* An MCP transfer's response headers are a view read by name (no Lua value
 * per header until asked): the same answers as net.request's table, a
 * repeated field joined with ", ", pairs() walking them all. */
static void test_stream_header_view(void **st) {
  (void)st;
  lua_ok("local mcp = require 'mcp'\n"
         "local u = net.parse(S .. '/repeat')\n"
         "local lim = { timeout_ms = 5000, connect_timeout_ms = 5000, max_bytes = 1048576, max_header_bytes = 65536 }\n"
         "local r = mcp.stream({ url = u, method = 'GET', guard = net.decide(ctx, u, 'mcp').guard, limits = lim })\n"
         "local h = r.headers\n"
         "if type(h) ~= 'userdata' then return 'a ' .. type(h) end\n"
         "if h['x-rep'] ~= 'a, b' then return 'repeated: ' .. tostring(h['x-rep']) end\n"
         "if h['x-one'] ~= '1' or h['content-type'] ~= 'text/plain' then return 'fields' end\n"
         "if h['X-One'] ~= nil or h.absent ~= nil or h[1] ~= nil then return 'names are lowercase strings' end\n"
         "local all, n = {}, 0\n"
         "for k, v in pairs(h) do all[k] = v; n = n + 1 end\n"
         "if all['x-rep'] ~= 'a, b' or all['x-one'] ~= '1' or all['content-type'] ~= 'text/plain' then return 'pairs' end\n"
         "local plain = net.request(ctx, { url = S .. '/repeat' }).headers\n"
         "local m = 0\n"
         "for k, v in pairs(plain) do m = m + 1; if all[k] ~= v then return 'differs from net.request at ' .. k end end\n"
         "if m ~= n then return n .. ' fields, net.request ' .. m end\n"
         "if getmetatable(h) ~= false then return 'its metatable shows' end\n"
         "if pcall(function() h.x = 1 end) then return 'written to' end\n");
}

/* Responses come decoded in any content encoding libcurl knows (gzip is what
 * requests offer; deflate and br sent unasked decode too), on both transfer
 * paths, and a body's limit counts the decoded bytes: a small compressed
 * body that inflates past it is refused (a decompression bomb). */
static void test_compressed_bodies(void **st) {
  (void)st;
  lua_ok("local r = net.request(ctx, { url = S .. '/echo' })\n"
         "local ae = json.decode(r.body).headers['accept-encoding']\n"
         "if ae ~= 'gzip' then return 'offered: ' .. tostring(ae) end\n"
         "for _, enc in ipairs({ 'gzip', 'deflate', 'br' }) do\n"
         "  r = net.request(ctx, { url = S .. '/compressed?n=200000&enc=' .. enc })\n"
         "  if tonumber(r.headers['x-packed-bytes']) >= 10000 then return enc .. ' sent unpacked' end\n"
         "  if r.body ~= string.rep('x', 200000) then return enc .. ': ' .. #r.body .. ' bytes decoded' end\n"
         "end\n"
         "local mcp = require 'mcp'\n"
         "local u = net.parse(S .. '/compressed?n=300000&enc=gzip')\n"
         "local lim = { timeout_ms = 5000, connect_timeout_ms = 5000, max_bytes = 1048576, max_header_bytes = 65536 }\n"
         "r = mcp.stream({ url = u, method = 'GET', guard = net.decide(ctx, u, 'mcp').guard, limits = lim })\n"
         "if r.body ~= string.rep('x', 300000) then return 'mcp.stream: ' .. #r.body .. ' bytes decoded' end\n"
         "local e = fails({ url = S .. '/compressed?n=20000000&enc=gzip', max_bytes = 1000000 }, 'too_large')\n"
         "if e then return 'bomb: ' .. e end\n"
         "u = net.parse(S .. '/compressed?n=20000000&enc=br')\n"
         "local r2, err = mcp.stream({ url = u, method = 'GET', guard = net.decide(ctx, u, 'mcp').guard, limits = lim })\n"
         "if r2 or err.code ~= 'too_large' then return 'mcp.stream bomb: ' .. tostring(r2 and #r2.body or err.code) end\n");
}

/* Concurrency is seen at the server: /barrier answers the six only once all
 * six are in flight together (one after another, each would see just 1). */
static void test_request_many(void **st) {
  (void)st;
  lua_ok("local reqs = {}\n"
         "local b = '/barrier?n=6&max_ms=5000&group=many' .. core.mono_ms() .. '&i='\n"
         "for i = 1, 6 do reqs[i] = { url = S .. b .. i } end\n"
         "reqs[7] = { url = 'https://169.254.0.1/' }  -- blocked even with allow_private_urls\n"
         "reqs[8] = { url = S .. '/redirect?to=/echo?i=8' }\n"
         "reqs[9] = { url = S .. '/trickle', timeout_ms = 800 }\n"
         "local out = net.request_many(ctx, reqs)\n"
         "for i = 1, 6 do\n"
         "  if not out[i].ok then return 'req ' .. i .. ': ' .. tostring(out[i].error.message) end\n"
         "  local r = json.decode(out[i].response.body)\n"
         "  if r.path ~= b .. i then return 'req ' .. i .. ' answered for ' .. tostring(r.path) end\n"
         "  if r.together ~= 6 then return 'req ' .. i .. ' was in flight with ' .. (r.together - 1) .. ' others, not 5' end\n"
         "end\n"
         "if out[7].ok or out[7].error.code ~= 'url_blocked' then return 'blocked one went through' end\n"
         "if not out[8].ok or out[8].response.redirects ~= 1 then return 'redirect in many' end\n"
         "if out[9].ok or out[9].error.code ~= 'timeout' then return 'trickle in many' end\n");
}

static void test_untrusted_certificate(void **st) {
  (void)st;
  tu_env te;
  mcpl_engine *e2 = open_engine(&te, NULL);  /* no extra CA: the test CA is unknown */
  assert_non_null(e2);
  char *err = NULL;
  lua_State *L2 = mcpl_state_engine(e2, &err);
  assert_non_null(L2);
  char url[128], reason[64] = "", msg[256] = "";
  snprintf(url, sizeof url, "https://127.0.0.1:%d/echo", port_https);
  http_url *u = http_url_parse(url, strlen(url), reason, sizeof reason, msg, sizeof msg);
  assert_non_null(u);
  http_request rq;
  memset(&rq, 0, sizeof rq);
  rq.url = u;
  rq.guard.allow_private = 1;
  http_response rs;
  assert_int_equal(http_perform(e2, &rq, &rs), -1);
  assert_string_equal(rs.code, "upstream_error");
  assert_string_equal(rs.reason, "tls_error");
  http_response_free(&rs);
  /* a bad ca_file stops the engine from opening */
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", te.db);
  mcpl_options_set(o, "key_file", te.key);
  mcpl_options_set(o, "ca_file", "/nonexistent/ca.pem");
  mcpl_engine *e3 = mcpl_open(o, &err);
  mcpl_options_free(o);
  assert_null(e3);
  assert_non_null(strstr(err, "ca_file"));
  mcpl_free(err);
  http_url_free(u);
  mcpl_state_close(L2);
  tu_close(&te, e2);
}

/* ---- C API: streaming, cancellation ------------------------------------------ */

struct stream { size_t bytes; int calls; long status; const char *ctype; };

static int st_resp(void *ud, const http_response *rs) {
  struct stream *s = ud;
  s->status = rs->status;
  s->ctype = http_response_header(rs, "content-type");
  s->ctype = s->ctype ? strdup(s->ctype) : NULL;
  return 0;
}

static int st_body(void *ud, const char *d, size_t n) {
  (void)d;
  struct stream *s = ud;
  s->bytes += n;
  s->calls++;
  return 0;
}

static http_url *url_of(const char *host, int port, const char *path) {
  char url[256], reason[64], msg[256];
  snprintf(url, sizeof url, "https://%s:%d%s", host, port, path);
  http_url *u = http_url_parse(url, strlen(url), reason, sizeof reason, msg, sizeof msg);
  assert_non_null(u);
  return u;
}

static void test_c_streaming(void **st) {
  (void)st;
  http_url *u = url_of("127.0.0.1", port_https, "/big?n=300000");
  struct stream s = {0};
  http_request rq;
  memset(&rq, 0, sizeof rq);
  rq.url = u;
  rq.guard.allow_private = 1;
  rq.on_response = st_resp;
  rq.on_body = st_body;
  rq.ud = &s;
  http_response rs;
  assert_int_equal(http_perform(E, &rq, &rs), 0);
  assert_int_equal(s.status, 200);
  assert_string_equal(s.ctype, "application/octet-stream");
  assert_int_equal(s.bytes, 300000);
  assert_true(s.calls > 1);
  assert_null(rs.body);
  free((void *)s.ctype);
  http_response_free(&rs);
  http_url_free(u);
}

static mcpl_cancel cancel_flag;

static void *set_later(void *p) {
  usleep(300 * 1000);
  if (p) mcpl_engine_interrupt(p); else atomic_store(&cancel_flag.requested, 1);
  return NULL;
}

static long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void test_c_cancellation(void **st) {
  (void)st;
  http_url *u = url_of("127.0.0.1", port_https, "/trickle");
  http_request rq;
  memset(&rq, 0, sizeof rq);
  rq.url = u;
  rq.guard.allow_private = 1;
  rq.limits.timeout_ms = 20000;
  rq.cancel = &cancel_flag;
  for (int round = 0; round < 2; round++) {
    pthread_t t;
    atomic_store(&cancel_flag.requested, 0);
    pthread_create(&t, NULL, set_later, round ? (void *)E : NULL);
    long t0 = mono_ms();
    http_response rs;
    assert_int_equal(http_perform(E, &rq, &rs), -1);
    long dt = mono_ms() - t0;
    pthread_join(t, NULL);
    mcpl_engine_clear_interrupt(E);
    assert_string_equal(rs.code, "timeout");
    assert_string_equal(rs.reason, "cancelled");
    /* cancelled after 0.3 s; the 20 s timeout would end it much later */
    if (dt >= 10000) fail_msg("round %d: the cancel took %ld ms", round, dt);
    http_response_free(&rs);
  }
  http_url_free(u);
}

/* A TLS handshake that never completes: the kernel accepts the connection (the backlog), nobody
 * answers the ClientHello. The transfer loop's own connect deadline ends it, well before
 * libcurl's (a backstop, seconds later), and a cancelled call's transfer ends at once. */
static void test_c_stalled_handshake(void **st) {
  (void)st;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(ls, 16), 0);
  assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
  http_url *u = url_of("127.0.0.1", ntohs(sa.sin_port), "/mcp");
  http_request rq[2];
  http_response rs[2];
  memset(rq, 0, sizeof rq);
  for (int i = 0; i < 2; i++) {
    rq[i].url = u;
    rq[i].guard.allow_private = 1;
    rq[i].limits.timeout_ms = 20000;
  }
  rq[0].limits.connect_timeout_ms = 600;
  rq[1].limits.connect_timeout_ms = 900;
  long t0 = mono_ms();
  assert_int_equal(http_perform_many(E, rq, rs, 2), 2);
  long dt = mono_ms() - t0;
  for (int i = 0; i < 2; i++) {
    assert_string_equal(rs[i].code, "timeout");
    assert_string_equal(rs[i].reason, "timeout");
    assert_non_null(strstr(rs[i].message, "no connection to 127.0.0.1 within"));
    http_response_free(&rs[i]);
  }
  assert_true(dt >= 800 && dt < 4000);
  /* cancelled while stuck in the handshake: ends at once, however long its limits */
  pthread_t t;
  atomic_store(&cancel_flag.requested, 0);
  rq[0].limits.connect_timeout_ms = 20000;
  rq[0].cancel = &cancel_flag;
  pthread_create(&t, NULL, set_later, NULL);
  t0 = mono_ms();
  assert_int_equal(http_perform(E, &rq[0], &rs[0]), -1);
  dt = mono_ms() - t0;
  pthread_join(t, NULL);
  assert_string_equal(rs[0].code, "timeout");
  assert_string_equal(rs[0].reason, "cancelled");
  assert_true(dt < 3000);
  http_response_free(&rs[0]);
  http_url_free(u);
  close(ls);
}

/* ---- DNS answers chosen by the test ----------------------------------------- */

enum { R_REAL, R_PRIVATE, R_MIXED, R_REBIND, R_FIXED, R_SLOW };
static int r_mode;
static int r_calls;
static const char *r_fixed;

static struct addrinfo *ai_v4(const char *ip, const char *port, struct addrinfo *next) {
  struct addrinfo *ai = calloc(1, sizeof *ai);
  struct sockaddr_in *sa = calloc(1, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)atoi(port));
  inet_pton(AF_INET, ip, &sa->sin_addr);
  ai->ai_family = AF_INET;
  ai->ai_socktype = SOCK_STREAM;
  ai->ai_protocol = IPPROTO_TCP;
  ai->ai_addr = (struct sockaddr *)sa;
  ai->ai_addrlen = sizeof *sa;
  ai->ai_next = next;
  ai->ai_flags = 0x4000;  /* marks lists built here (fake_free) */
  return ai;
}

static int fake_resolve(const char *host, const char *port, const struct addrinfo *hints,
                        struct addrinfo **res) {
  /* lookups run on threads of their own, and a slow one may outlive its test */
  int mode = __atomic_load_n(&r_mode, __ATOMIC_SEQ_CST);
  if (strcmp(host, "localhost") != 0 || mode == R_REAL) return getaddrinfo(host, port, hints, res);
  int calls = __atomic_add_fetch(&r_calls, 1, __ATOMIC_SEQ_CST);
  switch (mode) {
  case R_PRIVATE: *res = ai_v4("10.0.0.7", port, NULL); break;
  case R_MIXED: *res = ai_v4("127.0.0.1", port, ai_v4("10.0.0.1", port, NULL)); break;
  case R_REBIND: *res = ai_v4(calls == 1 ? "127.0.0.1" : "127.0.0.2", port, NULL); break;
  case R_SLOW: usleep(2500 * 1000); *res = ai_v4("127.0.0.1", port, NULL); break;
  default: *res = ai_v4(r_fixed, port, NULL);
  }
  return 0;
}

static void fake_free(struct addrinfo *ai) {
  if (!ai || ai->ai_flags != 0x4000) { if (ai) freeaddrinfo(ai); return; }
  while (ai) {
    struct addrinfo *n = ai->ai_next;
    free(ai->ai_addr);
    free(ai);
    ai = n;
  }
}

static int fetch(const char *host, const char *path, const addr_guard *g, http_response *rs) {
  http_url *u = url_of(host, port_https, path);
  http_request rq;
  memset(&rq, 0, sizeof rq);
  rq.url = u;
  rq.guard = *g;
  int rc = http_perform(E, &rq, rs);
  http_url_free(u);
  return rc;
}

static int canary_count(void) {
  addr_guard g;
  memset(&g, 0, sizeof g);
  g.allow_private = 1;
  http_response rs;
  int n = -1;
  int saved = __atomic_load_n(&r_mode, __ATOMIC_SEQ_CST);
  __atomic_store_n(&r_mode, R_REAL, __ATOMIC_SEQ_CST);
  if (fetch("127.0.0.1", "/stats", &g, &rs) == 0 && rs.body) {
    const char *p = strstr(rs.body, "\"127.0.0.2\":");
    n = p ? atoi(p + 12) : 0;
  }
  __atomic_store_n(&r_mode, saved, __ATOMIC_SEQ_CST);
  http_response_free(&rs);
  return n;
}

static void test_dns_answers(void **st) {
  (void)st;
  http_set_resolver(fake_resolve, fake_free);
  http_response rs;

  /* a name with a private answer is blocked before any connection */
  set_settings("{\"allow_private_urls\":false}");
  __atomic_store_n(&r_mode, R_PRIVATE, __ATOMIC_SEQ_CST);
  addr_guard none;
  memset(&none, 0, sizeof none);
  assert_int_equal(fetch("localhost", "/echo", &none, &rs), -1);
  assert_string_equal(rs.code, "url_blocked");
  assert_string_equal(rs.reason, "private_address 10.0.0.7");
  http_response_free(&rs);
  lua_ok("local r = net.check(ctx, 'https://localhost/', 'mcp')\n"
         "if r.allowed or r.reason ~= 'private_address 10.0.0.7' then return 'url.check: ' .. tostring(r.reason) end\n"
         "if r.addresses[1] ~= '10.0.0.7' then return 'addresses' end\n");
  set_settings("{\"allow_private_urls\":true}");

  /* mixed answers: one allowed, one not: the whole name is refused */
  __atomic_store_n(&r_mode, R_MIXED, __ATOMIC_SEQ_CST);
  addr_guard only_lo;
  memset(&only_lo, 0, sizeof only_lo);
  addr_cidr_parse("127.0.0.0/8", &only_lo.cidrs[only_lo.ncidrs++]);
  assert_int_equal(fetch("localhost", "/echo", &only_lo, &rs), -1);
  assert_string_equal(rs.code, "url_blocked");
  assert_string_equal(rs.reason, "private_address 10.0.0.1");
  http_response_free(&rs);
}

/* Undoes what a DNS test set, also when it failed half way. */
static int dns_reset(void **st) {
  (void)st;
  __atomic_store_n(&r_mode, R_REAL, __ATOMIC_SEQ_CST);
  http_set_resolver(NULL, NULL);
  set_settings("{\"allow_private_urls\":true}");
  return 0;
}

/* rebinding: the first lookup is allowed, the second turns to another
 * address; the second request is refused and nothing connects to it. The
 * fixture's canary listener on 127.0.0.2 tells; without it this cannot be
 * shown, which is a failure, not a skip. */
static void test_dns_rebinding(void **st) {
  (void)st;
  if (!canary) fail_msg("the fixture could not listen on 127.0.0.2 (its canary): rebinding cannot be shown");
  http_set_resolver(fake_resolve, fake_free);
  addr_guard g;
  memset(&g, 0, sizeof g);
  g.allow_private = 1;
  http_response rs;
  int before = canary_count();
  assert_true(before >= 0);
  addr_guard one;
  memset(&one, 0, sizeof one);
  addr_cidr_parse("127.0.0.1/32", &one.cidrs[one.ncidrs++]);
  __atomic_store_n(&r_mode, R_REBIND, __ATOMIC_SEQ_CST);
  __atomic_store_n(&r_calls, 0, __ATOMIC_SEQ_CST);
  assert_int_equal(fetch("localhost", "/echo", &one, &rs), 0);
  assert_int_equal(rs.status, 200);
  assert_string_equal(rs.primary_ip, "127.0.0.1");
  http_response_free(&rs);
  assert_int_equal(fetch("localhost", "/echo", &one, &rs), -1);
  assert_string_equal(rs.reason, "private_address 127.0.0.2");
  http_response_free(&rs);
  assert_int_equal(__atomic_load_n(&r_calls, __ATOMIC_SEQ_CST), 2);  /* one lookup per request: curl never looked up again */
  assert_int_equal(canary_count(), before);
  /* control: when the guard does allow 127.0.0.2, the canary sees it */
  __atomic_store_n(&r_mode, R_REAL, __ATOMIC_SEQ_CST);
  assert_int_equal(fetch("127.0.0.2", "/echo", &g, &rs), -1);  /* cert is not for .2 */
  http_response_free(&rs);
  assert_int_equal(canary_count(), before + 1);
}

/* a reused connection is re-checked against the new request's guard:
 * localhost:port is connected (127.0.0.1) under a guard allowing it, then
 * asked for under a guard that allows only 127.0.0.3 */
static void test_reused_connection_rechecked(void **st) {
  (void)st;
  http_set_resolver(fake_resolve, fake_free);
  addr_guard g;
  memset(&g, 0, sizeof g);
  g.allow_private = 1;
  http_response rs;
  __atomic_store_n(&r_mode, R_FIXED, __ATOMIC_SEQ_CST);
  r_fixed = "127.0.0.1";
  assert_int_equal(fetch("localhost", "/echo", &g, &rs), 0);
  http_response_free(&rs);
  r_fixed = "127.0.0.3";
  addr_guard three;
  memset(&three, 0, sizeof three);
  addr_cidr_parse("127.0.0.3/32", &three.cidrs[three.ncidrs++]);
  assert_int_equal(fetch("localhost", "/echo", &three, &rs), -1);
  assert_string_equal(rs.code, "url_blocked");
  http_response_free(&rs);
}

/* The operator-local anycast addresses and 6to4, as a name's answers and as literals: refused
 * with allow_private_urls on (judged, nothing connects); a guard naming them lets them through. */
static void test_anycast_and_6to4_judged(void **st) {
  (void)st;
  http_set_resolver(fake_resolve, fake_free);
  __atomic_store_n(&r_mode, R_FIXED, __ATOMIC_SEQ_CST);
  static const char *const v4[] = {"192.0.0.9", "192.0.0.10", "192.0.0.200"};
  for (size_t i = 0; i < 3; i++) {
    r_fixed = v4[i];
    char code[600];
    snprintf(code, sizeof code,
             "local r = net.check(ctx, 'https://localhost/', 'mcp')\n"
             "if r.allowed or r.reason ~= 'private_address %s' then return '%s: ' .. tostring(r.reason) end\n"
             "local j = http.judge(http.url('https://localhost/'), { allow_cidrs = { '192.0.0.0/24' } }, 5000)\n"
             "if not j.allowed then return '%s under allow_cidrs: ' .. tostring(j.reason) end\n",
             v4[i], v4[i], v4[i]);
    lua_ok(code);
  }
  __atomic_store_n(&r_mode, R_REAL, __ATOMIC_SEQ_CST);
  http_set_resolver(NULL, NULL);
  lua_ok("for _, a in ipairs({ '2002:7f00:1::', '2002:808:808::1', '2001:1::1', '2001:1::2' }) do\n"
         "  local r = net.check(ctx, 'https://[' .. a .. ']/', 'mcp')\n"
         "  if r.allowed or r.reason ~= 'private_address ' .. a then return a .. ': ' .. tostring(r.reason) end\n"
         "end\n"
         "local j = http.judge(http.url('https://[2002:808:808::1]/'), { allow_cidrs = { '8.8.8.0/24' } }, 0)\n"
         "if j.allowed then return '6to4 opened by the IPv4 it carries' end\n"
         "j = http.judge(http.url('https://[2002:808:808::1]/'), { allow_cidrs = { '2002::/16' } }, 0)\n"
         "if not j.allowed then return '6to4 under allow_cidrs 2002::/16: ' .. tostring(j.reason) end\n");
}

/* ---- every wait on a call's Lua state observes the call's cancellation ----------- */

static mcpl_cancel call_cancel;

static void *cancel_call_later(void *p) {
  (void)p;
  usleep(300 * 1000);
  mcpl_cancel_request(&call_cancel); /* as every canceller does: the flag, and the state's hook armed */
  return NULL;
}

/* Runs code in Ls with its call cancelled 300 ms in: it must fail with reason cancelled,
 * within a bound far below what it would otherwise wait. */
static void cancelled_within(lua_State *Ls, const char *what, const char *code) {
  atomic_store(&call_cancel.requested, 0);
  call_cancel.raised = 0;
  pthread_t t;
  pthread_create(&t, NULL, cancel_call_later, NULL);
  long t0 = mono_ms();
  int rc = luaL_loadbufferx(Ls, code, strlen(code), what, "t");
  if (rc == LUA_OK) rc = lua_pcall(Ls, 0, 0, 0);
  long dt = mono_ms() - t0;
  pthread_join(t, NULL);
  if (rc == LUA_OK) fail_msg("%s: not cancelled", what);
  const char *reason = NULL;
  if (lua_istable(Ls, -1)) {
    lua_getfield(Ls, -1, "reason");
    reason = lua_tostring(Ls, -1);
  }
  if (!reason || strcmp(reason, "cancelled") != 0) {
    luaL_tolstring(Ls, lua_istable(Ls, -1) ? -2 : -1, NULL);
    fail_msg("%s: failed otherwise: %s", what, lua_tostring(Ls, -1));
  }
  if (dt > 2000) fail_msg("%s: took %ld ms to notice the cancellation", what, dt);
  lua_settop(Ls, 0);
}

/* mcp.cache_add: a counter every state shares; pinned while above 0 (an
 * eviction sweep leaves it), gone at 0. */
static void test_cache_counter(void **st) {
  (void)st;
  lua_ok("local mcp = require 'mcp'\n"
         "if mcp.cache_add('calls:t', 1) ~= 1 then return 'first add' end\n"
         "if mcp.cache_add('calls:t', 2) ~= 3 then return 'second add' end\n"
         "if mcp.cache_get('calls:t') ~= '3' then return 'get: ' .. tostring(mcp.cache_get('calls:t')) end\n"
         "mcp.cache_evict('calls:')\n"
         "if mcp.cache_add('calls:t', -1) ~= 2 then return 'an eviction lost the count' end\n"
         "if mcp.cache_add('calls:t', -5) ~= 0 then return 'not 0 below 0' end\n"
         "if mcp.cache_get('calls:t') ~= nil then return 'the entry stays at 0' end\n"
         "local _, claimed = mcp.cache_claim('calls:t', 0)\n"
         "if not claimed then return 'the key is not free' end\n"
         "mcp.cache_release('calls:t')\n");
}

/* The engine's cache by many keys: each found by its own key (the index),
 * replaced in place, gone when deleted, evicted by prefix, and at its bound
 * (4,096 entries) the least recently used one makes room. */
static void test_cache_many_keys(void **st) {
  (void)st;
  lua_ok("local mcp = require 'mcp'\n"
         "local core = require 'core'\n"
         "for i = 1, 3000 do mcp.cache_put('many:' .. i, 'v' .. i) end\n"
         "for i = 1, 3000, 7 do if mcp.cache_get('many:' .. i) ~= 'v' .. i then return 'lookup ' .. i end end\n"
         "if mcp.cache_get('many:3001') ~= nil or mcp.cache_get('many:') ~= nil then return 'a key never put' end\n"
         "mcp.cache_put('many:5', 'again')\n"
         "if mcp.cache_get('many:5') ~= 'again' then return 'replaced' end\n"
         "if mcp.cache_del('many:2999') ~= 'v2999' or mcp.cache_get('many:2999') ~= nil then return 'deleted' end\n"
         "if mcp.cache_get('many:2997') ~= 'v2997' then return 'a neighbour of the deleted one' end\n"
         "if #mcp.cache_evict('many:2999') ~= 0 then return 'a deleted entry is still walked' end\n"
         "if #mcp.cache_evict('many:2998') ~= 1 or #mcp.cache_evict('many:2998') ~= 0 then return 'evicted once' end\n"
         "if mcp.cache_add('many:cnt', 2) ~= 2 or mcp.cache_add('many:cnt', -2) ~= 0 then return 'count' end\n"
         "if mcp.cache_get('many:cnt') ~= nil then return 'a count at 0 is gone' end\n"
         "local gone = mcp.cache_evict('many:1')\n"
         "if #gone ~= 1 + 10 + 100 + 1000 then return 'evicted by prefix: ' .. #gone end\n"
         "if #mcp.cache_evict('many:') ~= 3000 - 1111 - 2 then return 'the rest by their prefix' end\n"
         "if mcp.cache_get('many:1999') ~= nil or mcp.cache_get('many:2997') ~= nil then return 'after the prefix' end\n"
         "-- at the bound: the least recently used entry makes room\n"
         "mcp.cache_evict('')\n"
         "mcp.cache_put('lru:a', 'a')\n"
         "core.sleep_ms(3)\n"
         "mcp.cache_put('lru:b', 'b')\n"
         "core.sleep_ms(3)\n"
         "for i = 1, 4094 do mcp.cache_put('fill:' .. i, 'f') end\n"
         "core.sleep_ms(3)\n"
         "if mcp.cache_get('lru:a') ~= 'a' then return 'full, nothing evicted yet' end\n"
         "mcp.cache_put('one:more', 'm')\n"
         "if mcp.cache_get('lru:b') ~= nil then return 'the least recently used entry stays' end\n"
         "if mcp.cache_get('lru:a') ~= 'a' or mcp.cache_get('one:more') ~= 'm' or mcp.cache_get('fill:1') ~= 'f' then\n"
         "  return 'a used entry was evicted' end\n"
         "mcp.cache_evict('')\n");
}

/* The idle-session sweep that every client asks for walks the engine's cache
 * at most once per every_ms; without every_ms it always walks. */
static void test_session_sweep_throttled(void **st) {
  (void)st;
  lua_ok("local mcp = require 'mcp'\n"
         "local core = require 'core'\n"
         "mcp.cache_put('swp:a', 'x')\n"
         "core.sleep_ms(5)\n"
         "local gone = mcp.cache_sweep(1, 'swp:', 1)\n"
         "if #gone ~= 1 or mcp.cache_get('swp:a') then return 'a sweep that is due removes the idle entry' end\n"
         "mcp.cache_put('swp:b', 'y')\n"
         "core.sleep_ms(5)\n"
         "gone = mcp.cache_sweep(1, 'swp:', 60000)\n"
         "if #gone ~= 0 or not mcp.cache_get('swp:b') then return 'a second sweep within every_ms walks nothing' end\n"
         "core.sleep_ms(5)\n"
         "gone = mcp.cache_sweep(1, 'swp:')\n"
         "if #gone ~= 1 or mcp.cache_get('swp:b') then return 'an unthrottled sweep always walks' end\n");
}

/* A Lua state asks the engine to sweep at most once per SWEEP_ASK_MS: a
 * call in between walks nothing (the entry stays); once the time is up the
 * next call walks again. */
static void test_session_sweep_asked_seldom(void **st) {
  (void)st;
  lua_ok("local mcp = require 'mcp'\n"
         "local core = require 'core'\n"
         "local legacy = require 'mcp.legacy'\n"
         "local idle, every, ask = legacy.SESSION_IDLE_MS, legacy.SWEEP_EVERY_MS, legacy.SWEEP_ASK_MS\n"
         "legacy.SESSION_IDLE_MS, legacy.SWEEP_EVERY_MS, legacy.SWEEP_ASK_MS = 1, 0, 0\n"
         "mcp.cache_put('noget:a', 'x')\n"
         "core.sleep_ms(5)\n"
         "legacy.sweep()\n"
         "if mcp.cache_get('noget:a') then return 'a sweep when asked removes the idle entry' end\n"
         "legacy.SWEEP_ASK_MS = 60000\n"
         "core.sleep_ms(2)\n"
         "legacy.sweep()\n"
         "mcp.cache_put('noget:b', 'y')\n"
         "core.sleep_ms(5)\n"
         "legacy.sweep()\n"
         "local kept = mcp.cache_get('noget:b') ~= nil\n"
         "legacy.SESSION_IDLE_MS, legacy.SWEEP_EVERY_MS, legacy.SWEEP_ASK_MS = idle, every, ask\n"
         "mcp.cache_evict('noget:')\n"
         "if not kept then return 'a second sweep within SWEEP_ASK_MS asks nothing' end\n");
}

static int module_loaded(lua_State *Ls, const char *name) {
  lua_getfield(Ls, LUA_REGISTRYINDEX, "mcpl.loaded");
  lua_getfield(Ls, -1, name);
  int loaded = !lua_isnil(Ls, -1);
  lua_pop(Ls, 2);
  return loaded;
}

static void run_in(lua_State *Ls, const char *code) {
  if (luaL_dostring(Ls, code) != LUA_OK) fail_msg("%s", lua_tostring(Ls, -1));
  if (lua_gettop(Ls) > 0 && lua_isstring(Ls, -1)) fail_msg("%s", lua_tostring(Ls, -1));
  lua_settop(Ls, 0);
}

/* jsonrpc.parse hands back each message's kind beside it (the readers of
 * a response use it instead of classifying every message again). */
static void test_jsonrpc_parse_kinds(void **st) {
  (void)st;
  lua_ok("local jsonrpc = require 'mcp.jsonrpc'\n"
         "local list, kinds = jsonrpc.parse('[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}},'\n"
         "  .. '{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"},'\n"
         "  .. '{\"jsonrpc\":\"2.0\",\"id\":\"r\",\"method\":\"elicitation/create\"}]')\n"
         "if #list ~= 3 or #kinds ~= 3 then return 'three messages, three kinds' end\n"
         "for i, want in ipairs({ 'response', 'notification', 'request' }) do\n"
         "  if kinds[i] ~= want or jsonrpc.kind(list[i]) ~= want then return 'message ' .. i .. ': ' .. tostring(kinds[i]) end\n"
         "end\n"
         "local one, k1 = jsonrpc.parse('{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":1,\"message\":\"m\"}}')\n"
         "if #one ~= 1 or k1[1] ~= 'response' then return 'a single error response' end\n"
         "if pcall(jsonrpc.parse, '[{\"x\":1}]') then return 'not a message: refused' end\n"
         /* the kinds json.messages gives (C) are kind()'s (Lua), message by message */
         "local json = require 'json'\n"
         "local texts = { '{\"id\":1,\"result\":{}}', '{\"id\":\"a\",\"result\":null}', '{\"id\":1.5,\"result\":{}}',\n"
         "  '{\"id\":null,\"error\":{}}', '{\"error\":{}}', '{\"error\":\"x\",\"id\":1}', '{\"id\":true,\"method\":\"m\"}',\n"
         "  '{\"method\":\"m\"}', '{\"method\":\"m\",\"id\":null}', '{\"method\":5,\"id\":1,\"result\":1}',\n"
         "  '{\"method\":\"m\",\"id\":7}', '{\"id\":1}', '5', '\"s\"', '[[1]]', '[{\"id\":2,\"result\":0},{\"id\":{},\"result\":0}]' }\n"
         "for _, t in ipairs(texts) do\n"
         "  local v = json.decode(t)\n"
         "  local msgs = (type(v) == 'table' and json.is_array(v)) and v or { v }\n"
         "  local want = true\n"
         "  for _, m in ipairs(msgs) do if not jsonrpc.kind(m) then want = false end end\n"
         "  local ok, list, kinds = pcall(jsonrpc.parse, t)\n"
         "  if ok ~= want then return t .. ': parsed=' .. tostring(ok) end\n"
         "  if ok then for i, m in ipairs(msgs) do\n"
         "    if kinds[i] ~= jsonrpc.kind(m) then return t .. ': kind ' .. tostring(kinds[i]) end\n"
         "  end end\n"
         "  if not ok and list.reason ~= 'invalid_message' then return t .. ': ' .. tostring(list.reason) end\n"
         "end\n"
         "local ok, e = pcall(jsonrpc.parse, '[]')\n"
         "if ok or not tostring(e.message):find('empty JSON-RPC batch', 1, true) then return 'empty batch' end\n"
         "ok, e = pcall(jsonrpc.parse, '{\"id\":1,')\n"
         "if ok or e.reason ~= 'invalid_json' then return 'invalid JSON' end");
}

/* A state's clients ask for the sweep from SWEEP_FIRST_MS after its first
 * client on (lua/mcp/client.lua): before then no sweep, and mcp.legacy is
 * not even loaded; after, an idle entry is swept as mcp.legacy.sweep does. */
static void test_session_sweep_from_first_client(void **st) {
  (void)st;
  char *err = NULL;
  lua_State *Ls = mcpl_state_engine(E, &err);
  assert_non_null(Ls);
  run_in(Ls, "local client = require 'mcp.client'\n"
             "client.SWEEP_FIRST_MS = 60000\n"
             "client.new({ actor = { system = true } }, { url = 'https://127.0.0.1:1/mcp', key = 'sweep-a' })");
  if (module_loaded(Ls, "mcp.legacy")) fail_msg("a state's first client loads mcp.legacy (a one-shot call pays for it)");
  run_in(Ls, "local mcp, core = require 'mcp', require 'core'\n"
             "local client, legacy = require 'mcp.client', require 'mcp.legacy'\n"
             "sweep_saved = { legacy.SESSION_IDLE_MS, legacy.SWEEP_EVERY_MS, legacy.SWEEP_ASK_MS }\n"
             "legacy.SESSION_IDLE_MS, legacy.SWEEP_EVERY_MS, legacy.SWEEP_ASK_MS = 1, 0, 0\n"
             "mcp.cache_put('noget:first', 'x')\n"
             "core.sleep_ms(5)\n"
             "client.new({ actor = { system = true } }, { url = 'https://127.0.0.1:1/mcp', key = 'sweep-b' })\n"
             "if not mcp.cache_get('noget:first') then return 'a client within SWEEP_FIRST_MS swept' end\n"
             "client.SWEEP_FIRST_MS = 0\n"
             "core.sleep_ms(5) -- idle again since the read above\n"
             "client.new({ actor = { system = true } }, { url = 'https://127.0.0.1:1/mcp', key = 'sweep-c' })\n"
             "local kept = mcp.cache_get('noget:first')\n"
             "legacy.SESSION_IDLE_MS, legacy.SWEEP_EVERY_MS, legacy.SWEEP_ASK_MS = table.unpack(sweep_saved)\n"
             "client.SWEEP_FIRST_MS = 1000\n"
             "mcp.cache_evict('noget:')\n"
             "if kept then return 'a client after SWEEP_FIRST_MS does not sweep' end");
  mcpl_state_close(Ls);
}

/* A Lua state keeps one client per server and credential between calls
 * (lua/connection.lua), renewed for each: the call's context, the era read
 * again from the engine's cache (a forgotten era is not carried over); a
 * change to the server's URL, name or timeout makes a new one. */
static void test_kept_client_renewed(void **st) {
  (void)st;
  lua_ok("local json, mcp = require 'json', require 'mcp'\n"
         "local connection = require 'connection'\n"
         "local s = { id = 'srv_kept', url = 'https://127.0.0.1:1/mcp', name = 'kept', auth_type = 'none',\n"
         "            protocol_era = json.null, timeout_ms = json.null }\n"
         "local ctx1, ctx2 = { actor = { system = true } }, { actor = { system = true } }\n"
         "local c1, key = connection.open(ctx1, s)\n"
         "if c1.era ~= nil then return 'a new client knows no era' end\n"
         "c1:remember({ era = 'modern', protocol_version = '2026-07-28' })\n"
         "local c2 = connection.open(ctx2, s)\n"
         "if c2 ~= c1 then return 'the same server and credential: the kept client' end\n"
         "if c2.ctx ~= ctx2 then return 'a kept client gets the call context' end\n"
         "if c2.era ~= 'modern' or c2.version ~= '2026-07-28' then return 'and the era cached since' end\n"
         "c2.version = '2025-11-25' -- what a call may set on it\n"
         "mcp.cache_evict('era:' .. key)\n"
         "local c3 = connection.open(ctx1, s)\n"
         "if c3.era ~= nil or c3.version ~= nil then return 'a forgotten era is not carried over: ' .. tostring(c3.era) end\n"
         "s.protocol_era = 'legacy'\n"
         "if connection.open(ctx1, s).era ~= 'legacy' then return 'without a cached era, the stored hint' end\n"
         "for field, v in pairs({ url = 'https://127.0.0.1:2/mcp', name = 'renamed', timeout_ms = 5000 }) do\n"
         "  local before = connection.open(ctx1, s)\n"
         "  s[field] = v\n"
         "  local after = connection.open(ctx1, s)\n"
         "  if after == before then return 'a changed ' .. field .. ' keeps the old client' end\n"
         "  if after.url ~= s.url or after.server.name ~= s.name then return 'the new client has the new ' .. field end\n"
         "end\n"
         "local k = connection.open(ctx1, s)\n"
         "if connection.open(ctx1, s, { fresh = true }) == k then return 'fresh makes a new client' end\n"
         "mcp.cache_evict('era:srv_kept')\n");
}

/* An API-key server's headers are kept per Lua state (lua/credentials.lua):
 * the same headers while the change counters stay and KEEP_MS has not run
 * out; a change to the key, or the end of KEEP_MS, makes them again. */
static void test_api_key_headers_kept(void **st) {
  (void)st;
  lua_ok("local registry = require 'registry'\n"
         "local auth = require 'auth'\n"
         "local store = require 'store'\n"
         "local credentials = require 'credentials'\n"
         "local SYS = { system = true }\n"
         "local function op(actor, name, args)\n"
         "  local out, code = registry.dispatch(actor, name, json.encode(args))\n"
         "  if code then error(name .. ': ' .. out) end\n"
         "  return json.decode(out)\n"
         "end\n"
         "op(SYS, 'tenant.create', { name = 'keep' })\n"
         "op(SYS, 'user.create', { tenant = 'keep', name = 'ann', role = 'admin' })\n"
         "local ann = { tenant = 'keep', user = 'ann' }\n"
         "local s = op(ann, 'server.create', { name = 'kept' })\n"
         "op(ann, 'server.update', { id = s.id, auth_type = 'api_key', api_key = 'sk-one' })\n"
         "local function headers()\n"
         "  local a = auth.resolve(ann)\n"
         "  local row = store.find(a, 'servers', { id = s.id })\n"
         "  local h, fp = credentials.for_server({ actor = a }, row)\n"
         "  store.op_end()\n"
         "  return h, fp\n"
         "end\n"
         "local h1, fp1 = headers()\n"
         "if h1.Authorization ~= 'Bearer sk-one' then return 'the key as a bearer token' end\n"
         "local h2, fp2 = headers()\n"
         "if not rawequal(h1, h2) or fp1 ~= fp2 then return 'the second call gets the kept headers' end\n"
         "op(ann, 'server.update', { id = s.id, api_key = 'sk-two' })\n"
         "local h3, fp3 = headers()\n"
         "if h3.Authorization ~= 'Bearer sk-two' then return 'a changed key is made again' end\n"
         "if fp3 == fp1 then return 'with its own fingerprint' end\n"
         "local keep = credentials.KEEP_MS\n"
         "credentials.KEEP_MS = 0\n"
         "local h4 = headers()\n"
         "local h5 = headers()\n"
         "credentials.KEEP_MS = keep\n"
         "if rawequal(h4, h5) then return 'past KEEP_MS the headers are made again' end\n"
         "if h5.Authorization ~= 'Bearer sk-two' then return 'the same key, made again' end\n"
         "credentials.forget()\n");
}

/* json.find_key, the x-mcp-header screen's fast path: true where the key is
 * in any table of the value, false where it is nowhere and the walk was
 * complete, nil where a bound stopped it. */
static void test_json_find_key(void **st) {
  (void)st;
  lua_ok("local json = require 'json'\n"
         "local nested = { a = { b = { json.array({ { ['x-k'] = 1 } }) } } }\n"
         "if json.find_key(nested, 'x-k', 10, 100) ~= true then return 'a key four tables down is found' end\n"
         "if json.find_key(nested, 'y-k', 10, 100) ~= false then return 'a key nowhere is not found' end\n"
         "if json.find_key({ [{ ['x-k'] = 1 }] = true }, 'x-k', 10, 100) ~= false then return 'keys are not walked' end\n"
         "if json.find_key({ a = 'x-k', 'x-k' }, 'x-k', 10, 100) ~= false then return 'a value is not a key' end\n"
         "if json.find_key(nested, 'y-k', 4, 100) ~= false then return 'depth 4 within a bound of 4' end\n"
         "if json.find_key(nested, 'y-k', 3, 100) ~= nil then return 'deeper than the bound: incomplete' end\n"
         "if json.find_key(nested, 'y-k', 10, 5) ~= false then return '5 tables within a bound of 5' end\n"
         "if json.find_key(nested, 'y-k', 10, 4) ~= nil then return 'more tables than the bound: incomplete' end\n"
         "if json.find_key(nested, 'x-k', 10, 4) ~= nil then return 'a bound met before the key' end\n"
         "local chain = {}\n"
         "for _ = 1, 300 do chain = { c = chain } end\n"
         "if json.find_key(chain, 'x-k', 1000, 1000) ~= nil then return 'depth capped at the decoder limit' end\n"
         "if pcall(json.find_key, 'x', 'k', 1, 1) then return 'a value that is no table is refused' end\n");
}

/* The screen's verdicts with and without the fast path: a schema without
 * headers still fails on the walk's bounds (depth 32, 5000 tables), and
 * every bad header is still found. */
static void test_tool_header_screen(void **st) {
  (void)st;
  lua_ok("local headers = require 'mcp.headers'\n"
         "local function specs(schema) return headers.specs({ name = 't', inputSchema = schema }) end\n"
         "local function deep(n) local s = { type = 'string' } for _ = 1, n do s = { anyOf = { s } } end return s end\n"
         "local sp, why = specs(deep(15))\n"
         "if not sp or #sp ~= 0 then return 'a deep schema within the bound passes: ' .. tostring(why) end\n"
         "sp, why = specs(deep(17))\n"
         "if sp or why ~= 'schema too deep or too large' then return 'too deep without a header: ' .. tostring(why) end\n"
         "local wide = { type = 'object', properties = {} }\n"
         "for i = 1, 5000 do wide.properties['p' .. i] = { type = 'string' } end\n"
         "sp, why = specs(wide)\n"
         "if sp or why ~= 'schema too deep or too large' then return 'too large without a header: ' .. tostring(why) end\n"
         "wide.properties.p1 = nil\n"
         "sp, why = specs(wide)\n"
         "if not sp or #sp ~= 0 then return '5000 tables pass (the properties map is not one): ' .. tostring(why) end\n"
         "sp = specs({ type = 'object', properties = { r = { type = 'string', ['x-mcp-header'] = 'R' } } })\n"
         "if #sp ~= 1 or sp[1].header ~= 'R' then return 'a header is found' end\n"
         "local bad = {\n"
         "  [{ type = 'string', ['x-mcp-header'] = 'R' }] = 'x-mcp-header on the schema root',\n"
         "  [{ items = { ['x-mcp-header'] = 'R', type = 'string' } }] = 'x-mcp-header outside a properties chain',\n"
         "  [{ properties = { a = { type = 'object', ['x-mcp-header'] = 'R' } } }] = 'x-mcp-header on a non-primitive parameter',\n"
         "  [{ properties = { a = { type = 'string', ['x-mcp-header'] = 'a b' } } }] = \"x-mcp-header 'a b' is not a header token\",\n"
         "  [{ properties = { a = { type = 'string', ['x-mcp-header'] = '' } } }] = 'x-mcp-header must be a non-empty string',\n"
         "  [{ properties = { a = { type = 'string', ['x-mcp-header'] = 'R' },\n"
         "    b = { type = 'string', ['x-mcp-header'] = 'r' } } }] = \"duplicate x-mcp-header '\",\n"
         "}\n"
         "for schema, want in pairs(bad) do\n"
         "  sp, why = specs(schema)\n"
         "  if sp or not tostring(why):find(want, 1, true) then return 'refused: ' .. want .. ' (got ' .. tostring(why) .. ')' end\n"
         "end\n");
}

/* The x-mcp-header specs a tools list leaves for tools/call: the tools that
 * declare headers, by name; any other tool has none. */
static void test_tool_header_specs(void **st) {
  (void)st;
  lua_ok("local headers = require 'mcp.headers'\n"
         "local keep, done = headers.screen('spec-test')\n"
         "keep({ name = 'plain', inputSchema = { type = 'object', properties = { a = { type = 'string' } } } })\n"
         "keep({ name = 'routed', inputSchema = { type = 'object', properties = {\n"
         "  region = { type = 'string', ['x-mcp-header'] = 'Region' } } } })\n"
         "done()\n"
         "local r = headers.of_tool('spec-test', 'routed')\n"
         "if #r ~= 1 or r[1].header ~= 'Region' or r[1].path[1] ~= 'region' then return 'routed keeps its header' end\n"
         "if #headers.of_tool('spec-test', 'plain') ~= 0 then return 'plain has none' end\n"
         "if #headers.of_tool('spec-test', 'unlisted') ~= 0 then return 'an unlisted tool has none' end\n"
         "local h = headers.params(r, { region = 'eu' })\n"
         "if h['Mcp-Param-Region'] ~= 'eu' then return 'the argument is mirrored' end\n"
         "local keep2, done2 = headers.screen('spec-test')\n"
         "keep2({ name = 'routed', inputSchema = { type = 'object' } })\n"
         "done2()\n"
         "if #headers.of_tool('spec-test', 'routed') ~= 0 then return 'a relisted tool without headers has none' end\n");
}

/* A URL text is parsed once per state; what is refused is refused every time,
 * and the decision on a parsed URL is made again on every request. */
static void test_parsed_urls_kept(void **st) {
  (void)st;
  lua_ok("local net = require 'net'\n"
         "local a, b = net.parse('https://example.com/kept'), net.parse('https://example.com/kept')\n"
         "if a ~= b then return 'the same text gives the parsed URL kept' end\n"
         "if a:parts().host ~= 'example.com' then return 'its parts' end\n"
         "for i = 1, 2 do\n"
         "  local ok, e = pcall(net.parse, 'https://user:pw@example.com/kept')\n"
         "  if ok or e.code ~= 'url_blocked' then return 'userinfo refused every time (' .. i .. ')' end\n"
         "end\n"
         "local c = { actor = { system = true } }\n"
         "for i = 1, 2 do\n"
         "  local d = net.decide(c, 'http://example.com/kept', 'mcp')\n"
         "  if d.allow or d.reason ~= 'scheme' then return 'plain http decided and refused every time (' .. i .. ')' end\n"
         "end\n");
}

static void test_waits_observe_cancel(void **st) {
  (void)st;
  char *err = NULL;
  lua_State *Ls = mcpl_state_engine(E, &err);
  assert_non_null(Ls);
  mcpl_state_set_cancel(Ls, &call_cancel);
  /* the engine-wide session claim: another state is creating the entry and never finishes */
  lua_ok("local mcp = require 'mcp'\n"
         "local v, claimed = mcp.cache_claim('sess:cancel-test', 0)\n"
         "if not claimed then return 'could not claim' end\n");
  cancelled_within(Ls, "claim", "require('mcp').cache_claim('sess:cancel-test', 20000)");
  lua_ok("require('mcp').cache_release('sess:cancel-test')");
  /* polling sleeps (a lease held elsewhere, a server's retry delay) */
  cancelled_within(Ls, "sleep", "for i = 1, 20 do require('core').sleep_ms(1000) end");
  /* Lua that runs on without waiting: the hook the cancel arms raises it (once per call) */
  cancelled_within(Ls, "hook", "local core = require 'core' local t = core.mono_ms() + 5000\n"
                               "while core.mono_ms() < t do end");
  /* a name lookup that takes long */
  char code[400];
  snprintf(code, sizeof code,
           "require('net').request({ actor = { system = true } }, { url = 'https://localhost:%d/echo' })",
           port_https);
  http_set_resolver(fake_resolve, fake_free);
  __atomic_store_n(&r_mode, R_SLOW, __ATOMIC_SEQ_CST);
  cancelled_within(Ls, "lookup", code);
  /* a transfer stuck waiting for a response */
  __atomic_store_n(&r_mode, R_REAL, __ATOMIC_SEQ_CST);
  snprintf(code, sizeof code,
           "require('net').request({ actor = { system = true } }, { url = 'https://127.0.0.1:%d/trickle',\n"
           "  timeout_ms = 5000 })",
           port_https);
  cancelled_within(Ls, "transfer", code);
  http_set_resolver(NULL, NULL);
  mcpl_state_close(Ls);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_https_h2_echo),
    cmocka_unit_test(test_mcp_stream_headers),
    cmocka_unit_test(test_reused_handles_carry_nothing),
    cmocka_unit_test(test_private_blocked_by_default),
    cmocka_unit_test(test_redirect_hops_rechecked),
    cmocka_unit_test(test_credentials_dropped_across_origins),
    cmocka_unit_test(test_proxy_env_ignored),
    cmocka_unit_test(test_limits),
    cmocka_unit_test(test_request_many),
    cmocka_unit_test(test_compressed_bodies),
    cmocka_unit_test(test_stream_header_view),
    cmocka_unit_test(test_untrusted_certificate),
    cmocka_unit_test(test_c_streaming),
    cmocka_unit_test(test_c_cancellation),
    cmocka_unit_test_teardown(test_dns_answers, dns_reset),
    cmocka_unit_test_teardown(test_dns_rebinding, dns_reset),
    cmocka_unit_test_teardown(test_reused_connection_rechecked, dns_reset),
    cmocka_unit_test(test_c_stalled_handshake),
    cmocka_unit_test(test_cache_counter),
    cmocka_unit_test(test_waits_observe_cancel),
    cmocka_unit_test(test_cache_many_keys),
    cmocka_unit_test(test_session_sweep_throttled),
    cmocka_unit_test(test_session_sweep_asked_seldom),
      cmocka_unit_test(test_jsonrpc_parse_kinds),
      cmocka_unit_test(test_session_sweep_from_first_client),
      cmocka_unit_test(test_kept_client_renewed),
    cmocka_unit_test(test_api_key_headers_kept),
    cmocka_unit_test(test_tool_header_specs),
    cmocka_unit_test(test_json_find_key),
    cmocka_unit_test(test_tool_header_screen),
    cmocka_unit_test(test_parsed_urls_kept),
    cmocka_unit_test_teardown(test_anycast_and_6to4_judged, dns_reset),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
