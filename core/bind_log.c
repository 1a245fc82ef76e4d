/* bind_log.c: the Lua `log` module: log.debug/info/warn/error(fmt, ...).
 * Callers never pass secret values; the engine's log sink is the host's. */
#include <lauxlib.h>
#include "engine.h"

static int log_at(lua_State *L, const char *level) {
  mcpl_engine *e = mcpl_engine_of(L);
  if (!mcpl_log_enabled(e, level)) return 0;
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, ' ');
    size_t len;
    const char *s = luaL_tolstring(L, i, &len); /* pushes; safe for engine values */
    luaL_addvalue(&b);
    (void)s;
    (void)len;
  }
  luaL_pushresult(&b);
  mcpl_log(e, level, "%s", lua_tostring(L, -1));
  return 0;
}

static int log_debug(lua_State *L) { return log_at(L, "debug"); }
static int log_info(lua_State *L) { return log_at(L, "info"); }
static int log_warn(lua_State *L) { return log_at(L, "warn"); }
static int log_error(lua_State *L) { return log_at(L, "error"); }

int luaopen_mcpl_log(lua_State *L) {
  static const luaL_Reg fns[] = {{"debug", log_debug}, {"info", log_info},
                                 {"warn", log_warn},   {"error", log_error}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
