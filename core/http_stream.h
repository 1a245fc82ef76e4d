/* http_stream.h: streamed HTTP exchanges for the MCP client (SSE bodies
 * parsed as they arrive), on top of the guarded client in http.h. */
#ifndef MCPL_HTTP_STREAM_H
#define MCPL_HTTP_STREAM_H

#include <lua.h>
#include "http.h"

/* mcp.stream(spec, on_event) -> response | nil, err, partial (see .c). */
int http_stream_lua(lua_State *L);

#endif
