/* conformance.c: `mcplink conformance-client URL`, the client the official MCP
 * conformance suite drives: a temporary engine, plain http and loopback on. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "cli.h"
#include "engine.h"

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb; (void)flag; (void)ftw;
  return remove(p);
}

/* Runs script.conformance.run(url, scenario, context, protocol_version) in a
 * script state of an engine on a fresh temporary database. */
int cli_conformance(const char *ca_file, const char *lua_dir, const char *log_level, int argc,
                    char **argv) {
  if (argc < 1) {
    fprintf(stderr, "usage: mcplink conformance-client URL\n");
    return 2;
  }
  const char *url = argv[argc - 1]; /* the suite appends the URL last */
  int status = 1;
  char dir[] = "/tmp/mcplink-conformance-XXXXXX";
  if (!mkdtemp(dir)) { perror("mcplink: mkdtemp"); return 1; }
  char db[sizeof dir + 16], key[sizeof dir + 16];
  snprintf(db, sizeof db, "%s/c.db", dir);
  snprintf(key, sizeof key, "%s/c.key", dir);
  mcpl_options *o = mcpl_options_new();
  mcpl_engine *e = NULL;
  lua_State *L = NULL;
  char *err = NULL, *res = NULL;
  if (!o) goto done;
  mcpl_options_set(o, "db", db);
  mcpl_options_set(o, "key_file", key);
  if (ca_file) mcpl_options_set(o, "ca_file", ca_file);
  if (lua_dir) mcpl_options_set(o, "lua_dir", lua_dir);
  if (log_level) mcpl_options_set(o, "log_level", log_level);
  /* OAuth scenarios: a loopback redirect URI nobody listens on (the code is
   * read from the authorization endpoint's Location, oauth.headless_authorize)
   * and the client id URL the suite's CIMD scenario expects. */
  mcpl_options_set(o, "oauth_redirect_uri", "http://127.0.0.1/callback");
  mcpl_options_set(o, "oauth_client_metadata_url", "https://conformance-test.local/client-metadata.json");
  e = mcpl_open(o, &err);
  if (!e) { fprintf(stderr, "mcplink: cannot open engine: %s\n", err ? err : "?"); goto done; }
  /* The suite serves plain http on localhost. */
  mcpl_actor sys = {.system = 1};
  if (mcpl_op(e, &sys, "settings.set", "{\"allow_http\":true,\"allow_private_urls\":true}", &res) != MCPL_OK) {
    fprintf(stderr, "mcplink: settings.set failed: %s\n", res ? res : "?");
    goto done;
  }
  L = mcpl_state_script(e, &err);
  if (!L) { fprintf(stderr, "mcplink: cannot start the script environment: %s\n", err ? err : "?"); goto done; }
  lua_getglobal(L, "require");
  lua_pushliteral(L, "script.conformance");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) { fprintf(stderr, "mcplink: %s\n", lua_tostring(L, -1)); goto done; }
  lua_getfield(L, -1, "run");
  lua_pushstring(L, url);
  lua_pushstring(L, getenv("MCP_CONFORMANCE_SCENARIO"));
  lua_pushstring(L, getenv("MCP_CONFORMANCE_CONTEXT"));
  lua_pushstring(L, getenv("MCP_CONFORMANCE_PROTOCOL_VERSION"));
  if (lua_pcall(L, 4, 1, 0) != LUA_OK) fprintf(stderr, "mcplink: %s\n", lua_tostring(L, -1));
  else status = (int)lua_tointeger(L, -1);
done:
  fflush(stdout);
  mcpl_state_close(L);
  mcpl_free(res);
  mcpl_free(err);
  if (e) mcpl_close(e);
  mcpl_options_free(o);
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return status;
}
