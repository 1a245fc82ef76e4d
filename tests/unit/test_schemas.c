/* test_schemas.c: the engine's JSON Schema checks, case by case (tests/data/schema_cases.lua) in
 * an engine Lua state: tool output schemas (jsonschema.lua), elicitation forms (mcp/input.lua) and
 * op arguments (schema.lua). */
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

#define CASES "tests/data/schema_cases.lua"

/* The runner, in the engine state: every case of a list, failures as
 * "name: why" lines (empty: all passed). */
static const char RUNNER[] =
  "local cases, kind = ...\n"
  "local json = require 'json'\n"
  "local out = {}\n"
  "local function bad(name, why) out[#out + 1] = name .. ': ' .. why end\n"
  "if kind == 'validate' then\n"
  "  local js = require 'jsonschema'\n"
  "  for _, c in ipairs(cases.validate) do\n"
  "    local name, schema, value, want, paths, unchecked = c[1], c[2], c[3], c[4], c[5], c[6]\n"
  "    local ok, errs, un = js.validate(schema, value)\n"
  "    if ok ~= want then bad(name, 'valid=' .. tostring(ok) .. ' ' .. json.encode(errs)) end\n"
  "    for _, p in ipairs(paths or {}) do\n"
  "      local seen = false\n"
  "      for _, e in ipairs(errs) do if e.path == p then seen = true end end\n"
  "      if not seen then bad(name, 'no error at ' .. p .. ': ' .. json.encode(errs)) end\n"
  "    end\n"
  "    if want and #errs > 0 then bad(name, 'errors on a valid value') end\n"
  "    local got_un = false\n"
  "    for _, u in ipairs(un) do if u.keyword:find(unchecked or '\\0', 1, true) then got_un = true end end\n"
  "    if (unchecked ~= nil) ~= got_un then bad(name, 'unchecked ' .. json.encode(un)) end\n"
  "  end\n"
  "elseif kind == 'args' then\n"
  "  local schema = require 'schema'\n"
  "  for _, c in ipairs(cases.args) do\n"
  "    local name, fields, args, want, expect = c[1], c[2], c[3], c[4], c[5]\n"
  "    local ok, res = pcall(schema.validate_args, fields, args)\n"
  "    if ok ~= want then bad(name, 'ok=' .. tostring(ok) .. ' ' .. tostring(type(res) == 'table' and res.message or json.encode(res)))\n"
  "    elseif ok and json.encode(res, {sort = true}) ~= json.encode(expect, {sort = true}) then\n"
  "      bad(name, 'got ' .. json.encode(res, {sort = true}))\n"
  "    elseif not ok and (res.code ~= 'invalid_argument' or res.field ~= expect[1] or\n"
  "                       not tostring(res.message):find(expect[2], 1, true)) then\n"
  "      bad(name, 'error ' .. tostring(res.code) .. ' ' .. tostring(res.field) .. ': ' .. tostring(res.message))\n"
  "    end\n"
  /* the fast path alone: what it answers is the Lua path's answer; what it
   * refuses it leaves to that path (nothing) or raises as that path would */
  "    local fok, fres = pcall(json.check_fields, schema.list_of(fields), args)\n"
  "    if fok and fres ~= nil and not want then bad(name, 'the fast path took an invalid value')\n"
  "    elseif fok and fres ~= nil and json.encode(fres, {sort = true}) ~= json.encode(expect, {sort = true}) then\n"
  "      bad(name, 'fast path got ' .. json.encode(fres, {sort = true}))\n"
  "    elseif fok and fres == nil and c[6] then bad(name, 'left to the Lua path')\n"
  "    elseif not fok and (want or fres.field ~= expect[1]) then\n"
  "      bad(name, 'fast path raised ' .. tostring(fres.field) .. ': ' .. tostring(fres.message))\n"
  "    end\n"
  "  end\n"
  "elseif kind == 'forms' then\n"
  "  local input = require 'mcp.input'\n"
  "  for _, c in ipairs(cases.forms) do\n"
  "    local ok, why = input.check_form(c[2])\n"
  "    if (ok == true) ~= c[3] then bad(c[1], 'check_form=' .. tostring(ok) .. ' ' .. tostring(why)) end\n"
  "  end\n"
  "else\n"
  "  local input = require 'mcp.input'\n"
  "  for _, c in ipairs(cases.answers) do\n"
  "    local name, schema, content, want, expect = c[1], c[2], c[3], c[4], c[5]\n"
  "    local ok, res = pcall(input.form_content, schema, content, 'c')\n"
  "    if ok ~= want then bad(name, 'ok=' .. tostring(ok) .. ' ' .. tostring(type(res) == 'table' and res.message or json.encode(res)))\n"
  "    elseif ok and expect and json.encode(res, {sort = true}) ~= json.encode(expect, {sort = true}) then\n"
  "      bad(name, 'got ' .. json.encode(res, {sort = true}))\n"
  "    elseif not ok and (res.code ~= 'invalid_argument' or res.field ~= expect) then\n"
  "      bad(name, 'error ' .. tostring(res.code) .. ' field ' .. tostring(res.field))\n"
  "    end\n"
  "  end\n"
  "end\n"
  "return table.concat(out, '\\n')\n";

static void run(const char *kind) { tc_run(CASES, RUNNER, sizeof RUNNER - 1, kind); }

static void test_output_schemas(void **st) { (void)st; run("validate"); }
static void test_form_schemas(void **st) { (void)st; run("forms"); }
static void test_form_answers(void **st) { (void)st; run("answers"); }
static void test_op_arguments(void **st) { (void)st; run("args"); }

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_output_schemas),
    cmocka_unit_test(test_form_schemas),
    cmocka_unit_test(test_form_answers),
    cmocka_unit_test(test_op_arguments),
  };
  return cmocka_run_group_tests(tests, tc_setup, tc_teardown);
}
