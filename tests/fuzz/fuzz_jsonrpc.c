/* fuzz_jsonrpc.c: libFuzzer target for the MCP client's message handling:
 * bytes as an SSE stream (or a JSON body) through the C SSE parser, then the
 * engine's own lua/mcp/jsonrpc.lua on its json module. Run from the repository top. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "../../core/sse.c" /* one translation unit: the fuzz rule links no engine */
#include "json_stub.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *FL;

/* The engine's json and errors modules, then mcp.jsonrpc, and a
 * checker: every outcome is a list of messages or an upstream_error. */
static const char prelude[] =
  "local json = require 'json'\n"
  "package.loaded.errors = dofile('lua/errors.lua')\n"
  "local rpc = dofile('lua/mcp/jsonrpc.lua')\n"
  "local errors = package.loaded.errors\n"
  "return function(text)\n"
  "  local ok, list = pcall(rpc.parse, text)\n"
  "  if not ok then\n"
  "    if not (errors.is(list) and list.code == 'upstream_error') then error('bad failure: ' .. tostring(list)) end\n"
  "  else\n"
  "    assert(type(list) == 'table' and #list >= 1)\n"
  "    for _, m in ipairs(list) do\n"
  "      local k = rpc.kind(m)\n"
  "      assert(k == 'response' or k == 'request' or k == 'notification')\n"
  "      rpc.same_id(m.id, 1)\n"
  "      if k == 'response' and type(m.error) == 'table' then\n"
  "        local ok2, e = pcall(rpc.raise_rpc, m.error, 400, 'm')\n"
  "        assert(not ok2 and errors.is(e) and e.code == 'upstream_error')\n"
  "      end\n"
  "    end\n"
  "  end\n"
  "  rpc.body_error(text)\n"
  "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  FL = luaL_newstate();
  luaL_openlibs(FL);
  luaL_getsubtable(FL, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(FL, luaopen_mcpl_json);
  lua_setfield(FL, -2, "json");
  lua_pop(FL, 1);
  if (luaL_loadstring(FL, prelude) != LUA_OK || lua_pcall(FL, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_jsonrpc: %s (run from the repository top)\n", lua_tostring(FL, -1));
    abort();
  }
  lua_setglobal(FL, "check");
  return 0;
}

static void check(const char *s, size_t n) {
  lua_getglobal(FL, "check");
  lua_pushlstring(FL, s, n);
  if (lua_pcall(FL, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_jsonrpc: %s\n", lua_tostring(FL, -1));
    abort();
  }
}

static int on_event(void *ud, const sse_event *ev) {
  (void)ud;
  if (ev->data_len) check(ev->data, ev->data_len);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size >= 5 && memcmp(data, "data:", 5) == 0) {
    sse_parser p;
    sse_init(&p, 64 * 1024);
    sse_feed(&p, (const char *)data, size, on_event, NULL);
    sse_free(&p);
  } else {
    check((const char *)data, size);
  }
  lua_gc(FL, LUA_GCCOLLECT);
  return 0;
}
