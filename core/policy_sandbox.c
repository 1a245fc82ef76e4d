/* policy_sandbox.c: the policy sandbox: an allow-listed Lua state with a
 * memory-capped allocator, a sticky instruction budget, frozen inputs and plain-data results. */
#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lauxlib.h>
#include <lualib.h>
#include "fmt.h"
#include "policy.h"

#define SB_HOOK_EVERY 1000          /* instructions between budget checks */
#define SB_MAX_DEPTH 32             /* nesting of inputs and results */
#define SB_MAX_IN_ITEMS 100000      /* values copied into a call */
#define SB_MAX_OUT_ITEMS 10000      /* values in a result */
#define SB_MAX_OUT_BYTES (1u << 20) /* string bytes in a result */
#define SB_MAX_SUBJECT 65536        /* pattern functions: subject bytes */
#define SB_MAX_PATTERN 512          /* pattern functions: pattern bytes */
#define SB_PATTERN_UNITS 100.0      /* matcher steps charged as one instruction */
#define SB_MAX_STRING (1u << 20)    /* string.rep / gsub output estimate */
#define SB_MAX_REP_COUNT 1000000    /* string.rep iterations (even of "") */
#define SB_MAX_FORMAT 4096          /* string.format format length */
#define SB_MAX_TABLE_N 100000       /* table.concat/sort/insert/remove/unpack */

/* Kill reasons. Short strings (<= 40 bytes) are interned by Lua; they are
 * kept alive in the registry so raising them later allocates nothing, which
 * matters once the allocator refuses every growth. */
static const char WHY_BUDGET[] = "instruction budget exceeded";
static const char WHY_MEMORY[] = "memory limit exceeded";
static const char WHY_CANCEL[] = "cancelled";
static const char WHY_CLOSING[] = "state closing";

/* Per-state control block; it is the allocator's ud, so every coroutine of
 * the state reaches the same counters through lua_getallocf. */
typedef struct {
  mcpl_engine *e;
  size_t used, cap;
  long long steps, budget; /* one counter per call, shared by all coroutines */
  int refused;             /* last growth was refused (emergency GC pending) */
  int killed;              /* sticky: once set the state is discarded */
  const char *why;
  int incached;            /* inputs in the frozen-input cache */
} sb_ctl;

static sb_ctl *sb_ctl_of(lua_State *L) {
  void *ud = NULL;
  lua_getallocf(L, &ud);
  return ud;
}

static void sb_kill(sb_ctl *c, const char *why) {
  if (!c->killed) { c->killed = 1; c->why = why; }
}

/* Refuses growth beyond the cap. The first refusal lets Lua run its
 * emergency collection and retry; a second refusal in a row is a real
 * overrun and kills the state. After a kill nothing may grow. */
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  sb_ctl *c = ud;
  size_t old = ptr ? osize : 0;
  assert(c->used >= old);  /* every block Lua hands back was counted when it was made */
  if (nsize == 0) {
    free(ptr);
    c->used -= old;
    return NULL;
  }
  if (nsize > old && (c->killed || c->used - old + nsize > c->cap)) {
    if (c->refused) sb_kill(c, WHY_MEMORY);
    c->refused = 1;
    return NULL;
  }
  void *np = realloc(ptr, nsize);
  if (!np) return NULL;
  c->used = c->used - old + nsize;
  if (nsize > old) c->refused = 0;
  return np;
}

/* Raises the kill reason and makes the kill sticky for this thread: every
 * following instruction traps again, so pcall/xpcall only delay the unwind. */
static int sb_raise_kill(lua_State *L, sb_ctl *c) {
  lua_sethook(L, lua_gethook(L), LUA_MASKCOUNT, 1);
  lua_pushstring(L, c->why);
  return lua_error(L);
}

static void sb_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  sb_ctl *c = sb_ctl_of(L);
  if (!c->killed) {
    c->steps += SB_HOOK_EVERY;
    if (c->steps > c->budget) sb_kill(c, WHY_BUDGET);
    else if (mcpl_engine_interrupted(c->e)) sb_kill(c, WHY_CANCEL);
    else return;
  }
  sb_raise_kill(L, c);
}

/* Charges C work (pattern matching) against the instruction budget. */
static void sb_charge(lua_State *L, double instructions) {
  sb_ctl *c = sb_ctl_of(L);
  if (!c->killed) {
    if (instructions > (double)(c->budget - c->steps)) sb_kill(c, WHY_BUDGET);
    else c->steps += (long long)instructions;
  }
  if (c->killed) sb_raise_kill(L, c);
}

int policy_sandbox_killed(lua_State *P) { return sb_ctl_of(P)->killed; }

/* Error value to text without calling any metamethod. */
static void sb_errtext(lua_State *L, int idx, char *buf, size_t n) {
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING) {
    snprintf(buf, n, "%s", lua_tostring(L, idx));
  } else if (t == LUA_TTABLE) {
    lua_pushliteral(L, "message");
    lua_rawget(L, idx < 0 ? idx - 1 : idx);
    if (lua_type(L, -1) == LUA_TSTRING) snprintf(buf, n, "%s", lua_tostring(L, -1));
    else snprintf(buf, n, "(error object is a table value)");
    lua_pop(L, 1);
  } else if (t == LUA_TNUMBER && lua_isinteger(L, idx)) {
    snprintf(buf, n, "%lld", (long long)lua_tointeger(L, idx));
  } else if (t == LUA_TNUMBER) {
    snprintf(buf, n, "%.14g", (double)lua_tonumber(L, idx));
  } else {
    snprintf(buf, n, "(error object is a %s value)", lua_typename(L, t));
  }
}

/* ---- frozen tables --------------------------------------------------------
 * A frozen table is an empty proxy whose metatable points at the real table
 * (__index) and refuses writes. The metatable is hidden by __metatable, so
 * policy code never reaches the real table; __pairs iterates through a C
 * function rather than handing out `next, real`. */

/* Pushes the real table of the frozen proxy at idx; 0 if idx is not frozen. */
static int sb_frozen_real(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return 0;
  lua_pushliteral(L, "__frozen");
  lua_rawget(L, -2);
  int frozen = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!frozen) { lua_pop(L, 1); return 0; }
  lua_pushliteral(L, "__index");
  lua_rawget(L, -2);
  lua_remove(L, -2);
  return 1;
}

static int sb_frozen_newindex(lua_State *L) {
  return luaL_error(L, "attempt to modify a read-only table");
}

static int sb_frozen_len(lua_State *L) {
  if (!sb_frozen_real(L, 1)) return luaL_error(L, "not a frozen table");
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

static int sb_frozen_next(lua_State *L) {
  if (!sb_frozen_real(L, 1)) return luaL_error(L, "not a frozen table");
  lua_pushvalue(L, 2);
  if (lua_next(L, -2)) return 2;
  lua_pushnil(L);
  return 1;
}

static int sb_frozen_pairs(lua_State *L) {
  lua_pushcfunction(L, sb_frozen_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/* [-1: real table] -> [-1: its frozen proxy] */
static void sb_freeze(lua_State *L) {
  lua_createtable(L, 0, 0);
  lua_createtable(L, 0, 6);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, sb_frozen_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, sb_frozen_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, sb_frozen_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushliteral(L, "frozen");
  lua_setfield(L, -2, "__metatable");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "__frozen");
  lua_setmetatable(L, -2);
  lua_remove(L, -2);
}

/* ---- limited library functions ------------------------------------------ */

/* Calls the original C function (upvalue 1) with this call's arguments. */
static int sb_call_orig(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* Table functions trust the length they read; a policy __len could lie
 * between two reads, so only plain and frozen tables are accepted. */
static lua_Integer sb_table_len(lua_State *L, int idx) {
  luaL_checktype(L, idx, LUA_TTABLE);
  if (lua_getmetatable(L, idx)) {
    lua_pushliteral(L, "__frozen");
    lua_rawget(L, -2);
    int frozen = lua_toboolean(L, -1);
    lua_pushliteral(L, "__len");
    lua_rawget(L, -3);
    int has_len = !lua_isnil(L, -1);
    lua_pop(L, 3);
    if (has_len && !frozen) luaL_error(L, "table functions do not accept tables with __len");
  }
  lua_Integer n = luaL_len(L, idx);
  if (n > SB_MAX_TABLE_N) luaL_error(L, "table too long for this function (max %d)", SB_MAX_TABLE_N);
  return n;
}

static int sb_table_checked(lua_State *L) {
  sb_table_len(L, 1);
  return sb_call_orig(L);
}

static int sb_table_concat(lua_State *L) {
  lua_Integer n = sb_table_len(L, 1);
  lua_Integer i = luaL_optinteger(L, 3, 1), j = luaL_optinteger(L, 4, n);
  if (i <= j && (j - i >= SB_MAX_TABLE_N || i < -SB_MAX_TABLE_N))
    return luaL_error(L, "table.concat: range too long (max %d)", SB_MAX_TABLE_N);
  return sb_call_orig(L);
}

static int sb_table_unpack(lua_State *L) {
  lua_Integer n = sb_table_len(L, 1);
  lua_Integer i = luaL_optinteger(L, 2, 1), j = luaL_optinteger(L, 3, n);
  if (i <= j && (j - i >= SB_MAX_TABLE_N || i < -SB_MAX_TABLE_N))
    return luaL_error(L, "table.unpack: range too long (max %d)", SB_MAX_TABLE_N);
  return sb_call_orig(L);
}

static int sb_str_rep(lua_State *L) {
  size_t l, ls = 0;
  luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &ls);
  /* Counts iterations too: rep("", 1e9) allocates nothing but loops. */
  if (n > SB_MAX_REP_COUNT || (n > 0 && (double)n * (double)(l + ls) > SB_MAX_STRING))
    return luaL_error(L, "string.rep: result too large (max %d bytes)", (int)SB_MAX_STRING);
  return sb_call_orig(L);
}

static int sb_str_format(lua_State *L) {
  size_t n;
  luaL_checklstring(L, 1, &n);
  if (n > SB_MAX_FORMAT) return luaL_error(L, "string.format: format too long (max %d)", SB_MAX_FORMAT);
  return sb_call_orig(L);
}

/* ---- pattern cost ---------------------------------------------------------
 * Lua's matcher backtracks in C with no instruction count, so each call is
 * charged its worst case up front. A quantified item is "cheap" when what
 * follows cannot match inside its run (a literal outside its class, `$` or
 * the end of the pattern): at most one continuation survives, so it adds a
 * scan rather than multiplying the work. Every other repeat, %b and back
 * reference multiplies the estimate by the subject length. */

static int sb_class_char(int c, int cl) {
  int r;
  switch (tolower(cl)) {
    case 'a': r = isalpha(c); break;
    case 'c': r = iscntrl(c); break;
    case 'd': r = isdigit(c); break;
    case 'g': r = isgraph(c); break;
    case 'l': r = islower(c); break;
    case 'p': r = ispunct(c); break;
    case 's': r = isspace(c); break;
    case 'u': r = isupper(c); break;
    case 'w': r = isalnum(c); break;
    case 'x': r = isxdigit(c); break;
    default: return cl == c;
  }
  if (isupper(cl)) r = !r;
  return r != 0;
}

/* End of the single-character class at p (mirrors the matcher's rules). */
static const char *sb_class_end(const char *p, const char *end) {
  if (*p == '%') return p + 2 <= end ? p + 2 : end;
  if (*p != '[') return p + 1;
  p++;
  if (p < end && *p == '^') p++;
  do {
    if (p >= end) return end;
    if (*p++ == '%' && p < end) p++;
  } while (p < end && *p != ']');
  return p < end ? p + 1 : end;
}

/* Does the class [cs, ce) match character c? */
static int sb_class_has(const char *cs, const char *ce, int c) {
  if (*cs == '.') return 1;
  if (*cs == '%') return cs + 1 < ce ? sb_class_char(c, (unsigned char)cs[1]) : 0;
  if (*cs != '[') return (unsigned char)*cs == c;
  const char *p = cs + 1, *last = ce - 1; /* last is the closing ']' */
  int neg = 0;
  if (p < last && *p == '^') { neg = 1; p++; }
  for (; p < last; p++) {
    if (*p == '%' && p + 1 < last) {
      p++;
      if (sb_class_char(c, (unsigned char)*p)) return !neg;
    } else if (p + 2 < last && p[1] == '-') {
      if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2]) return !neg;
      p += 2;
    } else if ((unsigned char)*p == c) {
      return !neg;
    }
  }
  return neg;
}

static int sb_special(int c) { return c && strchr("^$*+?.([%-", c) != NULL; }

/* Is the quantified class [cs, ce) followed (at p) by something that stops
 * backtracking into it? */
static int sb_cheap_follow(const char *cs, const char *ce, const char *p, const char *end) {
  while (p < end && (*p == '(' || *p == ')')) p++;
  if (p == end) return 1;
  if (*p == '$' && p + 1 == end) return 1;
  int c;
  const char *q;
  if (*p == '%' && p + 1 < end && !isalnum((unsigned char)p[1])) { c = (unsigned char)p[1]; q = p + 2; }
  else if (!sb_special((unsigned char)*p) && *p != ']') { c = (unsigned char)*p; q = p + 1; }
  else return 0;
  if (q < end && (*q == '*' || *q == '-' || *q == '?')) return 0; /* optional */
  return !sb_class_has(cs, ce, c);
}

static double sb_pattern_cost(const char *p, size_t plen, size_t n, int anchorable) {
  const char *end = p + plen;
  double N = (double)n + 1, mult = 1, items = 1;
  int anchored = 0, additive = 0, optional = 0;
  if (anchorable && p < end && *p == '^') { anchored = 1; p++; }
  while (p < end) {
    if (*p == '(' || *p == ')') { p++; continue; }
    if (*p == '$' && p + 1 == end) break;
    items++;
    if (*p == '%' && p + 1 < end && p[1] == 'b') { mult *= N; p = p + 4 < end ? p + 4 : end; continue; }
    if (*p == '%' && p + 1 < end && p[1] == 'f') {
      p += 2;
      if (p < end) p = sb_class_end(p, end);
      continue;
    }
    if (*p == '%' && p + 1 < end && isdigit((unsigned char)p[1])) { mult *= N; p += 2; continue; }
    const char *cs = p, *ce = sb_class_end(p, end);
    p = ce;
    if (p < end && *p == '?') { optional++; p++; }
    else if (p < end && (*p == '*' || *p == '+' || *p == '-')) {
      p++;
      if (sb_cheap_follow(cs, ce, p, end)) additive = 1; else mult *= N;
    }
    if (mult > 1e30) return 1e30;
  }
  double cost = (anchored ? 1 : N) * mult * (additive ? N : 1) * items;
  return cost * pow(2, optional > 60 ? 60 : optional);
}

enum { PAT_FIND, PAT_MATCH, PAT_GMATCH, PAT_GSUB };

static int sb_pattern(lua_State *L, int kind) {
  size_t n, m;
  luaL_checklstring(L, 1, &n);
  const char *p = luaL_checklstring(L, 2, &m);
  if (n > SB_MAX_SUBJECT)
    return luaL_error(L, "pattern functions: subject too long (%d bytes max)", SB_MAX_SUBJECT);
  if (m > SB_MAX_PATTERN)
    return luaL_error(L, "pattern functions: pattern too long (%d bytes max)", SB_MAX_PATTERN);
  int plain = kind == PAT_FIND && lua_toboolean(L, 4);
  double cost = plain ? ((double)n + 1) * ((double)m + 1)
                      : sb_pattern_cost(p, m, n, kind == PAT_FIND || kind == PAT_MATCH);
  if (kind == PAT_GSUB && lua_type(L, 3) == LUA_TSTRING) {
    size_t r = lua_rawlen(L, 3);
    if ((double)r * ((double)n + 1) > SB_MAX_STRING)
      return luaL_error(L, "string.gsub: replacement could produce more than %d bytes",
                        (int)SB_MAX_STRING);
  }
  sb_charge(L, cost / SB_PATTERN_UNITS);
  return sb_call_orig(L);
}

static int sb_str_find(lua_State *L) { return sb_pattern(L, PAT_FIND); }
static int sb_str_match(lua_State *L) { return sb_pattern(L, PAT_MATCH); }
static int sb_str_gmatch(lua_State *L) { return sb_pattern(L, PAT_GMATCH); }
static int sb_str_gsub(lua_State *L) { return sb_pattern(L, PAT_GSUB); }

/* setmetatable without finalizers: __gc would run policy code at arbitrary
 * points (including state close), outside any call's budget. */
static int sb_setmetatable(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int t = lua_type(L, 2);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (lua_getmetatable(L, 1)) {
    lua_pushliteral(L, "__metatable");
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1)) return luaL_error(L, "cannot change a protected metatable");
    lua_pop(L, 2);
  }
  if (t == LUA_TTABLE) {
    static const char *const refused[] = {"__gc", "__close", "__mode", NULL};
    for (int i = 0; refused[i]; i++) {
      lua_pushstring(L, refused[i]);
      if (lua_rawget(L, 2) != LUA_TNIL)
        return luaL_error(L, "metatables with %s are not allowed in policies", refused[i]);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

static int sb_os_time(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)time(NULL));
  return 1;
}

/* ---- environment --------------------------------------------------------- */

/* Copies the named fields of the table at src into the table on top. */
static void sb_copy_names(lua_State *L, int src, const char *const *names) {
  for (int i = 0; names[i]; i++) {
    lua_getfield(L, src, names[i]);
    if (lua_isnil(L, -1)) luaL_error(L, "sandbox: missing library function %s", names[i]);
    lua_setfield(L, -2, names[i]);
  }
}

/* Sets name = closure(wrapper, original src[name]) in the table on top. */
static void sb_wrap(lua_State *L, int src, const char *name, lua_CFunction fn) {
  lua_getfield(L, src, name);
  lua_pushcclosure(L, fn, 1);
  lua_setfield(L, -2, name);
}

/* Writes to an environment go to its real table (upvalue 1) while the file
 * loads; afterwards (upvalue 2 true) globals are read-only. */
static int sb_env_newindex(lua_State *L) {
  if (lua_toboolean(L, lua_upvalueindex(2)))
    return luaL_error(L, "assignment to global '%s': globals are read-only after load",
                      lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?");
  lua_settop(L, 3);
  lua_rawset(L, lua_upvalueindex(1));
  return 0;
}

/* Pushes a fresh environment: a copy of the allow list in sb.base, plus
 * `default` (frozen) when asked. */
static void sb_push_env(lua_State *L, int with_default) {
  lua_newtable(L); /* real */
  int real = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, "sb.base");
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, real);
  }
  lua_pop(L, 1);
  if (with_default) {
    lua_getfield(L, LUA_REGISTRYINDEX, "sb.policy");
    if (!lua_istable(L, -1)) luaL_error(L, "no default policy loaded");
    sb_freeze(L);
    lua_setfield(L, real, "default");
  }
  lua_createtable(L, 0, 0); /* proxy */
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, real);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, real);
  lua_pushboolean(L, 0);
  lua_pushcclosure(L, sb_env_newindex, 2);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_remove(L, real);
}

static void sb_lock_env(lua_State *L, int env) {
  lua_getmetatable(L, env);
  lua_getfield(L, -1, "__newindex");
  lua_pushboolean(L, 1);
  lua_setupvalue(L, -2, 2);
  lua_pop(L, 2);
}

/* Builds the allow list (registry sb.base) from freshly opened libraries and
 * then cuts every path back to the originals: the globals table is replaced
 * and package.loaded is dropped. */
static int sb_setup(lua_State *L) {
  static const char *const whys[] = {WHY_BUDGET, WHY_MEMORY, WHY_CANCEL, WHY_CLOSING, NULL};
  lua_newtable(L);
  for (int i = 0; whys[i]; i++) { lua_pushstring(L, whys[i]); lua_rawseti(L, -2, i + 1); }
  lua_setfield(L, LUA_REGISTRYINDEX, "sb.why");

  static const char *const base_names[] = {
    "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "rawequal",
    "rawget", "rawlen", "select", "tonumber", "tostring", "type", "xpcall", NULL};
  static const char *const str_names[] = {"byte", "char", "len", "lower", "reverse", "sub",
                                          "upper", NULL};
  static const char *const tab_names[] = {"pack", NULL};
  static const char *const math_names[] = {
    "abs", "ceil", "floor", "fmod", "huge", "max", "maxinteger", "min", "mininteger", "modf",
    "pi", "sqrt", "tointeger", "type", "ult", "exp", "log", "sin", "cos", "tan", "asin",
    "acos", "atan", NULL};
  static const char *const co_names[] = {"create", "resume", "running", "status", "wrap",
                                         "yield", "isyieldable", "close", NULL};

  luaL_requiref(L, "_G", luaopen_base, 0);
  int g = lua_gettop(L);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
  int s = lua_gettop(L);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);
  int t = lua_gettop(L);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0);
  int m = lua_gettop(L);
  luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 0);
  int co = lua_gettop(L);

  lua_newtable(L); /* the allow list */
  int base = lua_gettop(L);
  sb_copy_names(L, g, base_names);
  lua_pushcfunction(L, sb_setmetatable);
  lua_setfield(L, base, "setmetatable");
  lua_pushliteral(L, LUA_VERSION);
  lua_setfield(L, base, "_VERSION");

  lua_newtable(L);
  sb_copy_names(L, s, str_names);
  sb_wrap(L, s, "rep", sb_str_rep);
  sb_wrap(L, s, "format", sb_str_format);
  sb_wrap(L, s, "find", sb_str_find);
  sb_wrap(L, s, "match", sb_str_match);
  sb_wrap(L, s, "gmatch", sb_str_gmatch);
  sb_wrap(L, s, "gsub", sb_str_gsub);
  sb_freeze(L);
  /* Methods on strings ("x"):find(...) go through the same limited table,
   * and the string metatable is hidden so it cannot be retargeted. */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  lua_setfield(L, base, "string");

  lua_newtable(L);
  sb_copy_names(L, t, tab_names);
  sb_wrap(L, t, "concat", sb_table_concat);
  sb_wrap(L, t, "unpack", sb_table_unpack);
  sb_wrap(L, t, "insert", sb_table_checked);
  sb_wrap(L, t, "remove", sb_table_checked);
  sb_wrap(L, t, "sort", sb_table_checked);
  sb_freeze(L);
  lua_setfield(L, base, "table");

  lua_newtable(L);
  sb_copy_names(L, m, math_names);
  sb_freeze(L);
  lua_setfield(L, base, "math");

  lua_newtable(L);
  sb_copy_names(L, co, co_names);
  sb_freeze(L);
  lua_setfield(L, base, "coroutine");

  lua_newtable(L);
  lua_pushcfunction(L, sb_os_time);
  lua_setfield(L, -2, "time");
  sb_freeze(L);
  lua_setfield(L, base, "os");

  policy_net_open(L);
  sb_freeze(L);
  lua_setfield(L, base, "net");

  lua_pushvalue(L, base);
  lua_setfield(L, LUA_REGISTRYINDEX, "sb.base");

  /* Anything that falls back to the global table sees a locked copy of the
   * allow list, never the table luaopen_base filled. */
  sb_push_env(L, 0);
  sb_lock_env(L, lua_gettop(L));
  lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  return 0;
}

lua_State *policy_sandbox_new(mcpl_engine *e, size_t mem_cap, long long budget, char *why, size_t n) {
  sb_ctl *c = calloc(1, sizeof *c);
  if (!c) { snprintf(why, n, "out of memory"); return NULL; }
  c->e = e;
  c->cap = mem_cap ? mem_cap : SB_DEFAULT_MEMORY;
  c->budget = budget > 0 ? budget : SB_DEFAULT_BUDGET;
  lua_State *P = lua_newstate(sb_alloc, c);
  if (!P) { free(c); snprintf(why, n, "out of memory"); return NULL; }
  lua_pushcfunction(P, sb_setup);
  if (lua_pcall(P, 0, 0, 0) != LUA_OK) {
    snprintf(why, n, "sandbox setup failed");
    policy_sandbox_close(P);
    return NULL;
  }
  /* The budget is in force before any policy code exists in the state;
   * coroutines inherit the hook from the thread that creates them. */
  lua_sethook(P, sb_hook, LUA_MASKCOUNT, SB_HOOK_EVERY);
  return P;
}

void policy_sandbox_close(lua_State *P) {
  if (!P) return;
  sb_ctl *c = sb_ctl_of(P);
  /* Nothing may run while closing: any code reached would trap at once. */
  sb_kill(c, WHY_CLOSING);
  lua_sethook(P, sb_hook, LUA_MASKCOUNT, 1);
  lua_close(P);
  free(c);
}

/* ---- loading policy files ----------------------------------------------- */

struct sb_load_args {
  const char *src, *chunk;
  size_t len;
  int with_default;
};

static const char *sb_display(const char *chunk) {
  return (*chunk == '@' || *chunk == '=') ? chunk + 1 : chunk;
}

static int sb_load_run(lua_State *L) {
  struct sb_load_args *a = lua_touserdata(L, 1);
  if (luaL_loadbufferx(L, a->src, a->len, a->chunk, "t") != LUA_OK) return lua_error(L);
  int fn = lua_gettop(L);
  sb_push_env(L, a->with_default);
  int env = lua_gettop(L);
  lua_pushvalue(L, env);
  lua_setupvalue(L, fn, 1);
  lua_pushvalue(L, fn);
  lua_call(L, 0, 1);
  int res = lua_gettop(L);
  if (sb_frozen_real(L, res)) res = lua_gettop(L); /* e.g. `return default` */
  if (a->with_default) {
    /* `return default` while the default failed to load: say why */
    lua_getfield(L, LUA_REGISTRYINDEX, "sb.stub");
    lua_getfield(L, LUA_REGISTRYINDEX, "sb.policy");
    if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, res, -1)) {
      lua_pop(L, 1);
      return lua_error(L);
    }
    lua_pop(L, 2);
  }
  if (!lua_istable(L, res) || lua_getmetatable(L, res))
    return luaL_error(L, "%s: must return a plain table of functions", sb_display(a->chunk));
  lua_pushnil(L);
  while (lua_next(L, res)) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isfunction(L, -1))
      return luaL_error(L, "%s: must return a table of functions (bad entry %s%s)",
                        sb_display(a->chunk), lua_type(L, -2) == LUA_TSTRING ? "" : "of type ",
                        lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                       : luaL_typename(L, -2));
    lua_pop(L, 1);
  }
  sb_lock_env(L, env);
  lua_pushvalue(L, res);
  lua_setfield(L, LUA_REGISTRYINDEX, "sb.policy");
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "sb.stub");
  return 0;
}

int policy_sandbox_load(lua_State *P, const char *src, size_t len, const char *chunk, int with_default,
            char *why, size_t n) {
  sb_ctl *c = sb_ctl_of(P);
  struct sb_load_args a = {src, chunk, len, with_default};
  if (c->killed) { snprintf(why, n, "%s", c->why); return SB_KILLED; }
  c->steps = 0;
  lua_settop(P, 0);
  lua_pushcfunction(P, sb_load_run);
  lua_pushlightuserdata(P, &a);
  int st = lua_pcall(P, 1, 0, 0);
  int rc = SB_OK;
  if (c->killed) { snprintf(why, n, "%s: %s", sb_display(chunk), c->why); rc = SB_KILLED; }
  else if (st != LUA_OK) { sb_errtext(P, -1, why, n); rc = SB_FAIL; }
  lua_settop(P, 0);
  return rc;
}

/* The stand-in for a default policy that failed to load: every field read
 * from it is a function that raises the load error (upvalue 1). */
static int sb_stub_fn(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  return lua_error(L);
}

static int sb_stub_index(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, sb_stub_fn, 1);
  return 1;
}

static int sb_stub_run(lua_State *L) {
  const char *msg = lua_touserdata(L, 1);
  lua_newtable(L);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, msg);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "sb.stub");
  lua_pushcclosure(L, sb_stub_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "sb.policy");
  return 0;
}

int policy_sandbox_stub_default(lua_State *P, const char *msg, char *why, size_t n) {
  sb_ctl *c = sb_ctl_of(P);
  if (c->killed) { snprintf(why, n, "%s", c->why); return SB_KILLED; }
  lua_settop(P, 0);
  lua_pushcfunction(P, sb_stub_run);
  lua_pushlightuserdata(P, (void *)msg);
  int st = lua_pcall(P, 1, 0, 0);
  lua_settop(P, 0);
  if (st != LUA_OK || c->killed) { snprintf(why, n, "out of memory"); return SB_FAIL; }
  return SB_OK;
}

char **policy_sandbox_function_names(lua_State *P) {
  size_t cnt = 0, i = 0;
  lua_getfield(P, LUA_REGISTRYINDEX, "sb.policy");
  if (lua_istable(P, -1)) {
    lua_pushnil(P);
    while (lua_next(P, -2)) { cnt++; lua_pop(P, 1); }
  }
  char **names = calloc(cnt + 1, sizeof *names);
  if (names && lua_istable(P, -1)) {
    lua_pushnil(P);
    while (lua_next(P, -2)) {
      if (i < cnt && lua_type(P, -2) == LUA_TSTRING) names[i++] = strdup(lua_tostring(P, -2));
      lua_pop(P, 1);
    }
  }
  lua_settop(P, 0);
  return names;
}

/* ---- calls ----------------------------------------------------------------- */

struct sb_call_args {
  lua_State *E;
  int eidx;
  const char *fname;
  int nofunc;
  int items;
  const char *key; /* the caller's key for the input (policy_sandbox_call), or NULL */
  size_t keylen;
};

/* Deep-copies E's value at idx into L as frozen data. Reads E only through
 * calls that cannot raise; every error is raised in L (inside its pcall). */
static void sb_copy_in(lua_State *L, struct sb_call_args *a, int idx, int depth) {
  lua_State *E = a->E;
  size_t n;
  const char *s;
  switch (lua_type(E, idx)) {
    case LUA_TNIL: lua_pushnil(L); return;
    case LUA_TBOOLEAN: lua_pushboolean(L, lua_toboolean(E, idx)); return;
    case LUA_TNUMBER:
      if (lua_isinteger(E, idx)) lua_pushinteger(L, lua_tointeger(E, idx));
      else lua_pushnumber(L, lua_tonumber(E, idx));
      return;
    case LUA_TSTRING:
      s = lua_tolstring(E, idx, &n);
      lua_pushlstring(L, s, n);
      return;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(E, idx) == NULL) { lua_pushnil(L); return; } /* json.null */
      break;
    case LUA_TTABLE:
      if (depth >= SB_MAX_DEPTH) luaL_error(L, "input too deep (or cyclic)");
      if (!lua_checkstack(E, 4)) luaL_error(L, "input too deep");
      luaL_checkstack(L, 6, "input too deep");
      lua_newtable(L);
      lua_pushnil(E);
      while (lua_next(E, idx)) {
        if (++a->items > SB_MAX_IN_ITEMS) luaL_error(L, "input too big");
        int kt = lua_type(E, -2);
        if (kt == LUA_TSTRING) {
          s = lua_tolstring(E, -2, &n);
          lua_pushlstring(L, s, n);
        } else if (kt == LUA_TNUMBER && lua_isinteger(E, -2)) {
          lua_pushinteger(L, lua_tointeger(E, -2));
        } else {
          luaL_error(L, "input: keys must be strings or integers");
        }
        sb_copy_in(L, a, lua_gettop(E), depth + 1);
        if (lua_isnil(L, -1)) lua_pop(L, 2);
        else lua_rawset(L, -3);
        lua_pop(E, 1);
      }
      sb_freeze(L);
      return;
    default: break;
  }
  luaL_error(L, "input: %s values are not plain data", luaL_typename(E, idx));
}

/* ---- the frozen-input cache ------------------------------------------------
 * A policy is asked about the same small input again and again (the URL of a
 * server on every call). A frozen copy cannot be changed by policy code, so
 * the copy made for one call serves the next one whose input has the same
 * content: the input is written out as a key (every value tagged with its
 * type, strings with their length, so different inputs never share a key)
 * and looked up among the last SB_IN_CACHE inputs. */
#define SB_IN_CACHE 16
#define SB_IN_KEY_MAX 1024
#define SB_IN_KEY_ITEMS 64
static const char SB_INCACHE_KEY = 0;

typedef struct {
  char s[SB_IN_KEY_MAX];
  size_t n;
  int items;
} sb_key;

static int sb_key_add(sb_key *k, const char *s, size_t n) {
  if (k->n + n > sizeof k->s) return 0;
  memcpy(k->s + k->n, s, n);
  k->n += n;
  return 1;
}

/* 1 when E's value at idx could be written as a key; reads E through calls
 * that cannot raise (lua_next on a plain table, type checks). */
/* a tag, then v in decimal, then ';' */
static int sb_key_int(sb_key *k, char tag, long long v) {
  char b[24], *e = b + sizeof b;
  e[-1] = ';';
  char *p = fmt_int_back(e - 1, v);
  *--p = tag;
  return sb_key_add(k, p, (size_t)(e - p));
}

static int sb_key_of(lua_State *E, int idx, int depth, sb_key *k) {
  size_t n;
  const char *s;
  double d;
  if (++k->items > SB_IN_KEY_ITEMS) return 0;
  switch (lua_type(E, idx)) {
    case LUA_TBOOLEAN: return sb_key_add(k, lua_toboolean(E, idx) ? "T" : "F", 1);
    case LUA_TNUMBER:
      if (lua_isinteger(E, idx)) return sb_key_int(k, 'I', (long long)lua_tointeger(E, idx));
      d = (double)lua_tonumber(E, idx); /* its bytes: exact, and no two floats share them */
      return sb_key_add(k, "D", 1) && sb_key_add(k, (const char *)&d, sizeof d);
    case LUA_TSTRING:
      s = lua_tolstring(E, idx, &n);
      return sb_key_int(k, 'S', (long long)n) && sb_key_add(k, s, n);
    case LUA_TTABLE:
      if (depth >= 4) return 0;
      if (lua_getmetatable(E, idx)) { lua_pop(E, 1); return 0; }
      if (!lua_checkstack(E, 4) || !sb_key_add(k, "{", 1)) return 0;
      lua_pushnil(E);
      while (lua_next(E, idx)) {
        int kt = lua_type(E, -2);
        if ((kt != LUA_TSTRING && !(kt == LUA_TNUMBER && lua_isinteger(E, -2))) ||
            !sb_key_of(E, lua_absindex(E, -2), depth + 1, k) ||
            !sb_key_of(E, lua_absindex(E, -1), depth + 1, k)) {
          lua_pop(E, 2);
          return 0;
        }
        lua_pop(E, 1);
      }
      return sb_key_add(k, "}", 1);
    default: return 0; /* nil, json.null, anything else: copied every time */
  }
}

static int sb_call_run(lua_State *L) {
  struct sb_call_args *a = lua_touserdata(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "sb.policy");
  if (!lua_istable(L, -1)) return luaL_error(L, "no policy loaded");
  lua_pushstring(L, a->fname);
  if (lua_rawget(L, -2) != LUA_TFUNCTION) { a->nofunc = 1; return 0; }
  sb_key k = {.n = 0};
  if (a->key) { /* the caller's key: "K" + it, never a walked key (those start with a type letter) */
    if (a->keylen > sizeof k.s - 1) a->key = NULL;
    else {
      k.s[0] = 'K';
      memcpy(k.s + 1, a->key, a->keylen);
      k.n = a->keylen + 1;
    }
  }
  if (!a->key && !sb_key_of(a->E, a->eidx, 0, &k)) {
    sb_copy_in(L, a, a->eidx, 0);
  } else {
    sb_ctl *c = sb_ctl_of(L);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SB_INCACHE_KEY) != LUA_TTABLE || c->incached >= SB_IN_CACHE) {
      lua_pop(L, 1);
      lua_createtable(L, 0, SB_IN_CACHE);
      lua_pushvalue(L, -1);
      lua_rawsetp(L, LUA_REGISTRYINDEX, &SB_INCACHE_KEY);
      c->incached = 0;
    }
    int cache = lua_gettop(L);
    luaL_checkstack(L, 4, "input too deep");
    lua_pushlstring(L, k.s, k.n);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, cache) == LUA_TTABLE) {
      lua_remove(L, -2); /* the key */
    } else {
      lua_pop(L, 1);
      sb_copy_in(L, a, a->eidx, 0);
      lua_pushvalue(L, -1);
      lua_insert(L, -3); /* frozen, key, frozen */
      lua_rawset(L, cache);
      c->incached++;
    }
    lua_remove(L, cache);
  }
  lua_call(L, 1, 1);
  return 1;
}

struct sb_out_args {
  lua_State *P;
  int items;
  size_t bytes;
};

/* Deep-copies P's value at idx into E (running in E's pcall): plain data
 * only, read raw, so no metamethod of the policy runs. */
static void sb_copy_out(lua_State *E, struct sb_out_args *o, int idx, int depth) {
  lua_State *P = o->P;
  size_t n;
  const char *s;
  if (++o->items > SB_MAX_OUT_ITEMS) luaL_error(E, "result too big (more than %d values)", SB_MAX_OUT_ITEMS);
  switch (lua_type(P, idx)) {
    case LUA_TBOOLEAN: lua_pushboolean(E, lua_toboolean(P, idx)); return;
    case LUA_TNUMBER:
      if (lua_isinteger(P, idx)) lua_pushinteger(E, lua_tointeger(P, idx));
      else lua_pushnumber(E, lua_tonumber(P, idx));
      return;
    case LUA_TSTRING:
      s = lua_tolstring(P, idx, &n);
      o->bytes += n;
      if (o->bytes > SB_MAX_OUT_BYTES) luaL_error(E, "result too big (more than %u bytes)", SB_MAX_OUT_BYTES);
      lua_pushlstring(E, s, n);
      return;
    case LUA_TTABLE: {
      if (depth >= SB_MAX_DEPTH) luaL_error(E, "result too deep (or cyclic)");
      if (!lua_checkstack(P, 6)) luaL_error(E, "result too deep");
      luaL_checkstack(E, 6, "result too deep");
      int src = idx, pushed = 0;
      if (sb_frozen_real(P, idx)) { src = lua_gettop(P); pushed = 1; }
      else if (lua_getmetatable(P, idx)) luaL_error(E, "result: tables with metatables are not plain data");
      lua_newtable(E);
      lua_pushnil(P);
      while (lua_next(P, src)) {
        if (lua_type(P, -2) == LUA_TSTRING) {
          s = lua_tolstring(P, -2, &n);
          o->bytes += n;
          lua_pushlstring(E, s, n);
        } else if (lua_type(P, -2) == LUA_TNUMBER && lua_isinteger(P, -2)) {
          lua_pushinteger(E, lua_tointeger(P, -2));
        } else {
          luaL_error(E, "result: keys must be strings or integers");
        }
        sb_copy_out(E, o, lua_gettop(P), depth + 1);
        lua_rawset(E, -3);
        lua_pop(P, 1);
      }
      if (pushed) lua_pop(P, 1);
      return;
    }
    case LUA_TNIL: luaL_error(E, "policy returned nothing"); return;
    default: break;
  }
  luaL_error(E, "result: %s values are not plain data", luaL_typename(P, idx));
}

static int sb_copy_out_run(lua_State *E) {
  struct sb_out_args *o = lua_touserdata(E, 1);
  lua_settop(E, 0);
  sb_copy_out(E, o, lua_gettop(o->P), 0);
  return 1;
}

int policy_sandbox_call(lua_State *P, lua_State *E, const char *fname, int input_idx, int key_idx,
                        char *why, size_t n) {
  sb_ctl *c = sb_ctl_of(P);
  if (c->killed) { snprintf(why, n, "%s", c->why); return SB_KILLED; }
  int etop = lua_gettop(E);
  struct sb_call_args a = {E, lua_absindex(E, input_idx), fname, 0, 0, NULL, 0};
  if (key_idx && lua_type(E, key_idx) == LUA_TSTRING) a.key = lua_tolstring(E, key_idx, &a.keylen);
  c->steps = 0;
  lua_settop(P, 0);
  lua_pushcfunction(P, sb_call_run);
  lua_pushlightuserdata(P, &a);
  int st = lua_pcall(P, 1, 1, 0);
  lua_settop(E, etop); /* an error inside the copy may leave E's iteration keys */
  int rc = SB_OK;
  if (c->killed) {
    snprintf(why, n, "%s", c->why);
    rc = SB_KILLED;
  } else if (st != LUA_OK) {
    sb_errtext(P, -1, why, n);
    rc = SB_FAIL;
  } else if (a.nofunc) {
    snprintf(why, n, "no_function");
    rc = SB_NOFUNC;
  } else if (!lua_checkstack(E, 4)) {
    snprintf(why, n, "out of stack");
    rc = SB_FAIL;
  } else {
    struct sb_out_args o = {P, 0, 0};
    lua_pushcfunction(E, sb_copy_out_run);
    lua_pushlightuserdata(E, &o);
    if (lua_pcall(E, 1, 1, 0) != LUA_OK) {
      sb_errtext(E, -1, why, n);
      lua_settop(E, etop);
      rc = SB_FAIL;
    }
  }
  lua_settop(P, 0);
  return rc;
}
