/* http_stream.h: streamed HTTP exchanges for the MCP client (SSE bodies
 * parsed as they arrive), on top of the guarded client in http.h. */
#ifndef MCPL_HTTP_STREAM_H
#define MCPL_HTTP_STREAM_H

#include <lua.h>
#include "http.h"

/* mcp.stream(spec, on_event) -> response | nil, err, partial (see .c). */
int hs_l_stream(lua_State *L);

/* Reads a guard table {allow_private=, allow_http=, allow_cidrs=} at idx. */
void hs_read_guard(lua_State *L, int idx, addr_guard *g, int *allow_http);

#endif
