/* mcp_pump.h: streamed MCP exchanges read by a thread of their own once parked (mcp_pump.c),
 * so a call that waits for its user can be parked with its stream still open. */
#ifndef MCPL_MCP_PUMP_H
#define MCPL_MCP_PUMP_H

#include <lua.h>
#include "http.h"

/* The registry, made at engine open; at close every parked pump is
 * cancelled (its server told), joined and freed. */
int mcp_pump_init(void **slot);
void mcp_pump_fini(void *slot);
/* The pump metatable, and the mcp module's functions pump, unpark and park_drop;
 * registry is the engine's (mcp_pump_init), kept in the Lua state. */
void mcp_pump_register(lua_State *L, void *registry);
int mcp_l_pump(lua_State *L);
int mcp_l_unpark(lua_State *L);
int mcp_l_park_drop(lua_State *L);

#endif
