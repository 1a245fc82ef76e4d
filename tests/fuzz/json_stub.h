/* json_stub.h: what core/bind_json.c needs from the engine, for fuzz targets
 * that compile it alone: the error raiser, as luastate.c makes it ({code, message}). */
#include <stdarg.h>
#include <stdio.h>
#include <lua.h>
#include "../../core/bind_json.c"

int mcpl_lua_error(lua_State *L, const char *code, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, buf);
  lua_setfield(L, -2, "message");
  return lua_error(L);
}
