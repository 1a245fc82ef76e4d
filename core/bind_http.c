/* bind_http.c: the Lua `http` module (placeholder until its issue lands).
 * Engine-wide state lives in the engine's http slot. */
#include <lauxlib.h>
#include "engine.h"

int http_engine_init(mcpl_engine *e, char **err) { (void)e; (void)err; return 0; }
void http_engine_fini(mcpl_engine *e) { (void)e; }

int luaopen_mcpl_http(lua_State *L) {
  lua_newtable(L);
  return 1;
}
