/* bind_crypto.c: the Lua `crypto` module (placeholder until its issue lands).
 * Engine-wide state lives in the engine's crypto slot. */
#include <lauxlib.h>
#include "engine.h"

int crypto_engine_init(mcpl_engine *e, char **err) { (void)e; (void)err; return 0; }
void crypto_engine_fini(mcpl_engine *e) { (void)e; }

int luaopen_mcpl_crypto(lua_State *L) {
  lua_newtable(L);
  return 1;
}
