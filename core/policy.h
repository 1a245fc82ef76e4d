/* policy.h: the policy runner: the sandbox (policy_sandbox_*, a Lua state per
 * tenant), its net helpers, and the engine-wide policy set and state cache. */
#ifndef MCPL_POLICY_H
#define MCPL_POLICY_H

#include <stddef.h>
#include <lua.h>
#include "engine.h"
#include "embed.h"

#define SB_DEFAULT_BUDGET 1000000LL        /* Lua instructions per call */
#define SB_DEFAULT_MEMORY (8u * 1024 * 1024) /* bytes per state */
#define POL_DEFAULT_MAX_STATES 64          /* cached tenant states (LRU) */

/* Outcome of policy_sandbox_call / policy_call. */
enum { SB_OK = 0, SB_NOFUNC = 1, SB_FAIL = 2, SB_KILLED = 3 };

/* The built-in default policy (policies/default.lua, generated at build time;
 * empty table when that file does not exist). */
extern const struct mcpl_embedded mcpl_embedded_policies[];

/* ---- sandbox (core/policy_sandbox.c) ------------------------------------ */

/* A fresh sandbox state with the allow-listed environment, the memory cap
 * and the instruction budget in force. NULL (and why) on failure. */
lua_State *policy_sandbox_new(mcpl_engine *e, size_t mem_cap, long long budget, char *why, size_t n);
/* Closes a sandbox state; no policy code can run during the close. */
void policy_sandbox_close(lua_State *P);
/* Loads a text chunk as a policy file. with_default: the policy table
 * loaded before (the default) becomes the global `default` of this file.
 * On success the returned table becomes the state's policy table. */
int policy_sandbox_load(lua_State *P, const char *src, size_t len, const char *chunk, int with_default,
            char *why, size_t n);
/* Installs, in place of a default policy that failed to load, a stand-in
 * whose every function raises msg: the `default` a tenant file loaded next
 * sees, so the tenant's own rules still work and delegating fails closed. */
int policy_sandbox_stub_default(lua_State *P, const char *msg, char *why, size_t n);
/* Names of the functions in the state's policy table, as a malloc'd
 * NULL-terminated array of malloc'd strings (NULL on out of memory). */
char **policy_sandbox_function_names(lua_State *P);
/* Calls policy function fname with a frozen deep copy of E's value at
 * input_idx. SB_OK: a plain-data copy of the result is pushed on E.
 * SB_KILLED: budget, memory cap or cancel tripped; the state is unusable.
 * The frozen copies are kept by the input's content (serialized on every
 * call), or, when key_idx is not 0, by the string E holds there: the
 * caller's word that inputs under one key are equal (it skips the walk). */
int policy_sandbox_call(lua_State *P, lua_State *E, const char *fname, int input_idx, int key_idx,
                        char *why, size_t n);
/* True once a limit tripped in this state (sticky). */
int policy_sandbox_killed(lua_State *P);

/* Opens the `net` helper table (core/policy_net.c). */
int policy_net_open(lua_State *L);

/* ---- policy set and tenant states (core/bind_policy.c) ----------------- */

/* Valid tenant name: [A-Za-z0-9][A-Za-z0-9._-]*, at most 64 bytes. */
int policy_valid_tenant(const char *t);
/* Runs tenant's (NULL: the default) policy function; like policy_sandbox_call. */
int policy_call(mcpl_engine *e, lua_State *E, const char *tenant, const char *fname, int input_idx,
                int key_idx, char *why, size_t n);
/* Loads and self-checks the policy directory; on success replaces the set
 * and drops cached states. On failure *err (malloc'd) names file and line. */
int policy_reload(mcpl_engine *e, char **err);
/* Limits for later calls and states (tests); 0 keeps a value. */
void policy_set_limits(mcpl_engine *e, long long budget, size_t mem_cap, int max_states);
/* Number of cached tenant states (tests). */
int policy_cached_states(mcpl_engine *e);

#endif
