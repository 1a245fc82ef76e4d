/* fuzz_json.c: libFuzzer target for the engine's JSON decoder and encoder
 * (core/bind_json.c, every server message and op argument goes through it):
 * any bytes either decode or raise invalid_argument, and what decodes
 * encodes to text whose round trips keep it (once invalid UTF-8 is replaced). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "json_stub.h" /* core/bind_json.c itself: the fuzz rule links no engine */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *FL;

static const char check[] =
  "local json = ...\n"
  "-- the array under the key a deferred (json.decode's lazy option): the text\n"
  "-- is refused alike, or the items come out as a full decode's\n"
  "local function lazily(text, ok, v)\n"
  "  local okl, lv = pcall(json.decode, text, { lazy = { 'a' } })\n"
  "  assert(okl == ok, 'the lazy decode accepted differently')\n"
  "  if not ok then assert(lv.message == v.message, 'the lazy decode refused differently'); return end\n"
  "  if type(lv) ~= 'table' or not json.is_lazy(lv.a) then return end\n"
  "  local items = json.array()\n"
  "  for i, item in json.items(lv.a) do items[i] = item end\n"
  "  assert(#items == #lv.a and #items == #v.a, 'the lazy array counts otherwise')\n"
  "  local oka, a = pcall(json.encode, items, { sort = true })\n"
  "  local okb, b = pcall(json.encode, v.a, { sort = true })\n"
  "  assert(oka == okb and (not oka or a == b), 'the lazy items differ')\n"
  "end\n"
  "return function(text)\n"
  "  local ok, v = pcall(json.decode, text)\n"
  "  lazily(text, ok, v)\n"
  "  if not ok then\n"
  "    assert(type(v) == 'table' and v.code == 'invalid_argument', 'bad failure')\n"
  "    assert(v.message:find('invalid JSON', 1, true) or v.message:find('json nesting', 1, true), v.message)\n"
  "    return\n"
  "  end\n"
  "  local ok2, once = pcall(json.encode, v, { sort = true })\n"
  "  if not ok2 then\n"
  "    -- NaN/inf cannot come out of the decoder; only nesting past the encoder's bound may fail\n"
  "    assert(type(once) == 'table' and once.message:find('too deep', 1, true), tostring(once.message))\n"
  "    return\n"
  "  end\n"
  "  -- invalid UTF-8 is written as \\ufffd, which decodes to U+FFFD itself: from\n"
  "  -- the second encoding on, the text is stable\n"
  "  local twice = json.encode(json.decode(once), { sort = true })\n"
  "  local thrice = json.encode(json.decode(twice), { sort = true })\n"
  "  assert(twice == thrice, 'the encoding changed on a round trip')\n"
  "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  FL = luaL_newstate();
  luaL_openlibs(FL);
  if (luaL_loadstring(FL, check) != LUA_OK) abort();
  luaopen_mcpl_json(FL);
  lua_call(FL, 1, 1);
  lua_setglobal(FL, "CHECK");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_getglobal(FL, "CHECK");
  lua_pushlstring(FL, (const char *)data, size);
  if (lua_pcall(FL, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_json: %s\n", lua_tostring(FL, -1));
    abort();
  }
  lua_settop(FL, 0);
  return 0;
}
