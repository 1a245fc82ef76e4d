/* test_json.c: json.decode's deferred arrays ({lazy = path}) and json.items, case by case
 * (tests/data/json_lazy_cases.lua) in an engine Lua state, each against a full decode;
 * json.canonical_items over the same arrays, against json.canonical of each decoded item (and
 * joined by json.list_builder, some taken out again); and
 * mcp.paging's lists read through them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <lauxlib.h>
#include "engine.h"
#include "testutil.h"
#include "cases.h"

#define CASES "tests/data/json_lazy_cases.lua"

/* The runner, in the engine state: every case of a list, failures as
 * "name: why" lines (empty: all passed). same() compares two decoded values
 * exactly: types, integer or float, array marks, every member. */
static const char RUNNER[] =
  "local cases, kind = ...\n"
  "local json = require 'json'\n"
  "local out = {}\n"
  "local function bad(name, why) out[#out + 1] = name .. ': ' .. why end\n"
  "local function same(a, b)\n"
  "  if type(a) ~= type(b) or math.type(a) ~= math.type(b) then return false end\n"
  "  if type(a) ~= 'table' then return a == b end\n"
  "  if json.is_array(a) ~= json.is_array(b) then return false end\n"
  "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
  "  for k in pairs(b) do if a[k] == nil then return false end end\n"
  "  return true\n"
  "end\n"
  "local function at(v, path)\n"
  "  for _, k in ipairs(path) do if type(v) ~= 'table' then return nil end v = v[k] end\n"
  "  return v\n"
  "end\n"
  "local function cut(v, path)\n"
  "  local p = v\n"
  "  for i = 1, #path - 1 do p = p[path[i]] end\n"
  "  p[path[#path]] = nil\n"
  "end\n"
  "local checks = kind == 'checks' or kind == 'paging'\n"
  "for _, c in ipairs(not checks and cases[kind] or {}) do\n"
  "  local name, text, path = c[1], c[2], c[3]\n"
  "  local ok1, full = pcall(json.decode, text)\n"
  "  local ok2, v = pcall(json.decode, text, { lazy = path })\n"
  "  if kind == 'bad' then\n"
  "    if ok1 or ok2 then bad(name, 'accepted')\n"
  "    elseif full.code ~= v.code or full.message ~= v.message then\n"
  "      bad(name, tostring(v.message) .. ' instead of ' .. tostring(full.message))\n"
  "    end\n"
  "  elseif not ok1 or not ok2 then bad(name, 'refused: ' .. tostring((ok2 and full or v).message))\n"
  "  elseif kind == 'plain' then\n"
  "    if not same(full, v) then bad(name, 'differs from a full decode') end\n"
  "  else\n"
  "    local z, want = at(v, path), at(full, path)\n"
  "    if not json.is_lazy(z) then bad(name, 'not deferred')\n"
  "    else\n"
  "      local got, n = json.array(), 0\n"
  "      for i, item in json.items(z) do\n"
  "        n = n + 1\n"
  "        if i ~= n then bad(name, 'index ' .. tostring(i) .. ' at step ' .. n) end\n"
  "        got[n] = item\n"
  "      end\n"
  "      if not same(got, want) then bad(name, 'items differ from a full decode') end\n"
  "      if #z ~= #want then bad(name, '#: ' .. #z .. ' for ' .. #want) end\n"
  "      cut(full, path)\n"
  "      cut(v, path)\n"
  "      if not same(full, v) then bad(name, 'the rest differs from a full decode') end\n"
  "    end\n"
  "  end\n"
  "end\n"
  /* canonical: every lazy case's array through json.canonical_items, lazy
   * and as the decoded Lua array, against json.canonical of each decoded
   * item; found against json.find_key (false exactly where it is false),
   * with bounds small enough to be met */
  "local PIN = { 'b', 'a', 'name', 'x' }\n"
  "for _, c in ipairs(kind == 'canonical' and cases.lazy or {}) do\n"
  "  local name, text, path = c[1], c[2], c[3]\n"
  "  local want = at(json.decode(text), path)\n"
  "  for _, list in ipairs({ at(json.decode(text, { lazy = path }), path), want }) do\n"
  "    local how = json.is_lazy(list) and ' (lazy)' or ' (Lua array)'\n"
  "    local n = 0\n"
  "    for i, t, p, nm, found in json.canonical_items(list, { keys = PIN, name = 'name', find = { 'a', 2, 3 } }) do\n"
  "      n = n + 1\n"
  "      local v = want[i]\n"
  "      local obj = type(v) == 'table' and not json.is_array(v)\n"
  "      local et, ep = json.canonical(v, obj and PIN or nil)\n"
  "      local ef = type(v) == 'table' and json.find_key(v, 'a', 2, 3)\n"
  "      if i ~= n then bad(name .. how, 'index ' .. i .. ' at step ' .. n)\n"
  "      elseif t ~= et then bad(name .. how, 'item ' .. i .. ': ' .. t .. ' for ' .. et)\n"
  "      elseif p ~= ep then bad(name .. how, 'item ' .. i .. ' part: ' .. tostring(p) .. ' for ' .. tostring(ep))\n"
  "      elseif nm ~= (obj and type(v.name) == 'string' and v.name or nil) then bad(name .. how, 'item ' .. i .. ' name ' .. tostring(nm))\n"
  "      elseif (found == false) ~= (ef == false) then bad(name .. how, 'item ' .. i .. ' found ' .. tostring(found) .. ' for ' .. tostring(ef)) end\n"
  "    end\n"
  "    if n ~= #want then bad(name .. how, n .. ' items for ' .. #want) end\n"
  /* text = false: no text, the same parts and names */
  "    for i, t, p, nm in json.canonical_items(list, { keys = PIN, name = 'name', text = false }) do\n"
  "      local v = want[i]\n"
  "      local obj = type(v) == 'table' and not json.is_array(v)\n"
  "      local _, ep = json.canonical(v, obj and PIN or nil)\n"
  "      if t ~= nil or p ~= ep or nm ~= (obj and type(v.name) == 'string' and v.name or nil) then\n"
  "        bad(name .. how, 'text = false: item ' .. i .. ' ' .. tostring(t) .. ' ' .. tostring(p))\n"
  "      end\n"
  "    end\n"
  /* into: the same texts joined in a builder, the odd ones dropped again;
   * text given only where found is not false */
  "    local b, kept = json.list_builder(), {}\n"
  "    for i, t, p, nm, found in json.canonical_items(list, { keys = PIN, into = b, find = { 'a', 2, 3 } }) do\n"
  "      local v = want[i]\n"
  "      local et = json.canonical(v)\n"
  "      if (t == nil) ~= (found == false) then bad(name .. how, 'into: item ' .. i .. ' text ' .. tostring(t) .. ' found ' .. tostring(found))\n"
  "      elseif t ~= nil and t ~= et then bad(name .. how, 'into: item ' .. i .. ': ' .. t .. ' for ' .. et) end\n"
  "      if i % 2 == 1 then b:drop() else kept[#kept + 1] = et end\n"
  "    end\n"
  "    if b:count() ~= #kept then bad(name .. how, 'into: count ' .. b:count() .. ' for ' .. #kept) end\n"
  "    local joined = b:text()\n"
  "    if joined ~= '[' .. table.concat(kept, ',') .. ']' then bad(name .. how, 'into: joined ' .. joined:sub(1, 200)) end\n"
  "    if b:count() ~= 0 or b:text() ~= '[]' then bad(name .. how, 'into: the builder is not empty after text()') end\n"
  "  end\n"
  "end\n"
  "for _, c in ipairs(checks and cases[kind] or {}) do\n"
  "  local ok, r = pcall(c[2])\n"
  "  if not ok then bad(c[1], 'raised ' .. tostring(type(r) == 'table' and r.message or r))\n"
  "  elseif r ~= true then bad(c[1], tostring(r)) end\n"
  "end\n"
  "return table.concat(out, '\\n')\n";

static void run(const char *kind) { tc_run(CASES, RUNNER, sizeof RUNNER - 1, kind); }

static void test_deferred(void **st) { (void)st; run("lazy"); }
static void test_not_deferred(void **st) { (void)st; run("plain"); }
static void test_refused_alike(void **st) { (void)st; run("bad"); }
static void test_items(void **st) { (void)st; run("checks"); }
static void test_paging(void **st) { (void)st; run("paging"); }
static void test_canonical(void **st) { (void)st; run("canonical"); }

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_deferred),
    cmocka_unit_test(test_not_deferred),
    cmocka_unit_test(test_refused_alike),
    cmocka_unit_test(test_items),
    cmocka_unit_test(test_paging),
    cmocka_unit_test(test_canonical),
  };
  return cmocka_run_group_tests(tests, tc_setup, tc_teardown);
}
