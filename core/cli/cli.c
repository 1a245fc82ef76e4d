/* cli.c: what the commands of the command line share (main.c, repl.c,
 * oauth_connect.c): the operator-script state, actors, JSON and errors. */
#include <stdio.h>
#include <stdlib.h>
#include <lauxlib.h>
#include "cli.h"
#include "engine.h"

void cli_push_actor(lua_State *L, const mcpl_actor *a) {
  lua_createtable(L, 0, 3);
  if (a->system) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "system");
  } else {
    lua_pushstring(L, a->tenant);
    lua_setfield(L, -2, "tenant");
    lua_pushstring(L, a->user);
    lua_setfield(L, -2, "user");
  }
}

lua_State *cli_script_state(cli_ctx *c) {
  char *err = NULL;
  lua_State *L = mcpl_state_script(c->engine, &err);
  if (!L) {
    cli_print_json(c->compact, err ? err : "{\"error\":{\"code\":\"internal\",\"message\":\"no script state\"}}",
                   stderr);
    mcpl_free(err);
    return NULL;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "mcpl.script");
  return L;
}

/* Prints JSON with its keys sorted: indented, or on one line with --compact,
 * so scripts and diffs see the same order every time. A bare Lua state with
 * the engine's json module does it (no engine needed: an engine that failed
 * to open still gets its error printed this way). Text that is not JSON is
 * printed as it is. */
void cli_print_json(int compact, const char *json, FILE *out) {
  lua_State *L = luaL_newstate();
  int done = 0;
  if (L) {
    luaL_requiref(L, "json", luaopen_mcpl_json, 0);
    lua_getfield(L, -1, "encode");
    lua_getfield(L, -2, "decode");
    lua_pushstring(L, json);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
      lua_createtable(L, 0, 2);
      lua_pushboolean(L, !compact);
      lua_setfield(L, -2, "pretty");
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "sort");
      if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_isstring(L, -1)) {
        fprintf(out, "%s\n", lua_tostring(L, -1));
        done = 1;
      }
    }
    lua_close(L);
  }
  if (!done) fprintf(out, "%s\n", json);
  fflush(out);
}

/* One error as JSON on stderr: {"error":{"code","message"}}. */
void cli_print_error(int compact, const char *code, const char *message) {
  char *j = mcpl_json_error(code, message, NULL);
  cli_print_json(compact, j ? j : "{\"error\":{\"code\":\"internal\"}}", stderr);
  free(j);
}
