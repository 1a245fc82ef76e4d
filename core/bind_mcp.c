/* bind_mcp.c: the Lua `mcp` module (placeholder until its issue lands).
 * Engine-wide state lives in the engine's mcp slot. */
#include <lauxlib.h>
#include "engine.h"

int mcp_engine_init(mcpl_engine *e, char **err) { (void)e; (void)err; return 0; }
void mcp_engine_fini(mcpl_engine *e) { (void)e; }

int luaopen_mcpl_mcp(lua_State *L) {
  lua_newtable(L);
  return 1;
}
