/* test_capabilities.c: how a server's capabilities are stored and diffed (lua/capabilities.lua),
 * case by case (tests/data/capabilities_cases.lua) in an engine Lua state on a fresh database:
 * lists that keep their order, reorder, grow and shrink, pins changed, changed again and changed
 * back, other kinds, a kind emptied. */
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

#define CASES "tests/data/capabilities_cases.lua"

/* The runner, in the engine state: each case is {name, fn}, fn() -> true or
 * what went wrong; failures as "name: why" lines (empty: all passed). */
static const char RUNNER[] =
  "local cases = ...\n"
  "local out = {}\n"
  "for _, c in ipairs(cases) do\n"
  "  local ok, r = pcall(c[2])\n"
  "  if not ok then out[#out + 1] = c[1] .. ': raised ' .. tostring(type(r) == 'table' and r.message or r)\n"
  "  elseif r ~= true then out[#out + 1] = c[1] .. ': ' .. tostring(r) end\n"
  "end\n"
  "return table.concat(out, '\\n')\n";

static void test_cases(void **st) { (void)st; tc_run(CASES, RUNNER, sizeof RUNNER - 1, "all"); }

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_cases),
  };
  return cmocka_run_group_tests(tests, tc_setup, tc_teardown);
}
