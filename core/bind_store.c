/* bind_store.c: the Lua `store` module (placeholder until its issue lands).
 * Engine-wide state lives in the engine's store slot. */
#include <lauxlib.h>
#include "engine.h"

int store_engine_init(mcpl_engine *e, char **err) { (void)e; (void)err; return 0; }
void store_engine_fini(mcpl_engine *e) { (void)e; }

int luaopen_mcpl_store(lua_State *L) {
  lua_newtable(L);
  return 1;
}
