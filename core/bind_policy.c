/* bind_policy.c: the Lua `policy` module (placeholder until its issue lands).
 * Engine-wide state lives in the engine's policy slot. */
#include <lauxlib.h>
#include "engine.h"

int policy_engine_init(mcpl_engine *e, char **err) { (void)e; (void)err; return 0; }
void policy_engine_fini(mcpl_engine *e) { (void)e; }

int luaopen_mcpl_policy(lua_State *L) {
  lua_newtable(L);
  return 1;
}
