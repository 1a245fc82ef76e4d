/* cases.h: case tables run in an engine Lua state (test_json, test_schemas).
 * A Lua file of cases (returning a table) and a runner chunk called as
 * runner(cases, kind) that returns its failures as "name: why" lines (empty:
 * all passed). Include after cmocka.h, lauxlib.h, engine.h and testutil.h. */
#ifndef MCPL_CASES_H
#define MCPL_CASES_H

static tu_env tc_env;
static mcpl_engine *tc_eng;
static lua_State *tc_L;

/* setup and teardown of the group: an engine on a fresh database and one engine state */
static int tc_setup(void **st) {
  (void)st;
  tc_eng = tu_open(&tc_env, "1");
  char *err = NULL;
  tc_L = mcpl_state_engine(tc_eng, &err);
  if (!tc_L) { fprintf(stderr, "engine state: %s\n", err ? err : "?"); return -1; }
  return 0;
}

static int tc_teardown(void **st) {
  (void)st;
  mcpl_state_close(tc_L);
  tu_close(&tc_env, tc_eng);
  return 0;
}

/* what a failed pcall left: an engine error's message, or the text */
static const char *tc_err_text(lua_State *L) {
  if (lua_istable(L, -1)) lua_getfield(L, -1, "message");
  return lua_tostring(L, -1);
}

/* runs the runner over the cases of kind in the file at path; fails the test
 * with the runner's failures */
static void tc_run(const char *path, const char *runner, size_t runner_len, const char *kind) {
  lua_State *L = tc_L;
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static char src[1 << 16];
  size_t n = fread(src, 1, sizeof src - 1, f);
  fclose(f);
  src[n] = 0;
  char chunk[200];
  snprintf(chunk, sizeof chunk, "@%s", path);
  assert_int_equal(luaL_loadbufferx(L, src, n, chunk, "t"), LUA_OK);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) fail_msg("cases: %s", tc_err_text(L));
  assert_int_equal(luaL_loadbufferx(L, runner, runner_len, "=runner", "t"), LUA_OK);
  lua_insert(L, -2);
  lua_pushstring(L, kind);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) fail_msg("runner: %s", tc_err_text(L));
  const char *failures = lua_tostring(L, -1);
  if (failures && *failures) fail_msg("%s", failures);
  lua_pop(L, 1);
}

#endif
