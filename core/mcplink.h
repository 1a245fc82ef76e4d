/* mcplink.h: the public C API of the mcplink engine (the only public header).
 * Connects a multi-tenant assistant platform to remote MCP servers. */
#ifndef MCPLINK_H
#define MCPLINK_H

#ifdef __cplusplus
extern "C" {
#endif

/* Stable result codes. mcpl_op returns one of these; the error JSON carries
 * the same code as text ("invalid_argument", ...). */
typedef enum {
  MCPL_OK = 0,
  MCPL_E_INVALID_ARGUMENT,
  MCPL_E_NOT_FOUND,
  MCPL_E_FORBIDDEN,
  MCPL_E_CONFLICT,
  MCPL_E_URL_BLOCKED,
  MCPL_E_UNAUTHORIZED,
  MCPL_E_USER_NOT_AUTHENTICATED,
  MCPL_E_UPSTREAM_ERROR,
  MCPL_E_TIMEOUT,
  MCPL_E_TOO_LARGE,
  MCPL_E_KEY_UNAVAILABLE,
  MCPL_E_INTERNAL,
  MCPL_E_UNAVAILABLE, /* the database cannot be reached; nothing was changed (added
                       * last so the values above keep their numbers) */
  MCPL_CODE_COUNT     /* not a code: how many there are (a new code goes above) */
} mcpl_code;

typedef struct mcpl_engine mcpl_engine;
typedef struct mcpl_options mcpl_options;

/* Who is calling. A tenant actor names a tenant and a user in it; the system
 * actor (the platform's system administrator) has neither. */
typedef struct {
  const char *tenant;
  const char *user;
  int system; /* non-zero: the system actor; tenant and user are ignored */
} mcpl_actor;

/* Log sink for hosts; level is "debug", "info", "warn" or "error". Log lines
 * never contain secret values. */
typedef void (*mcpl_log_fn)(void *ud, const char *level, const char *msg);

/* Options are set by name so the set can grow without breaking the ABI.
 * Known names (all values are strings):
 *   db                  path of the SQLite database (":memory:"-style paths refused),
 *                       or a PostgreSQL URI (postgresql://... or postgres://...,
 *                       libpq syntax) shared by several engine instances
 *   key_file            path of the key ring (created 0600 on first use)
 *   policies            policy directory ("" = built-in default policy)
 *   lua_dir             load engine Lua from this directory instead of the
 *                       copy built into the library (development)
 *   ca_file             extra CA bundle trusted for outbound HTTPS
 *   pool_size           number of Lua states serving concurrent calls (1..256)
 *   log_level           debug | info | warn | error (default warn)
 *   oauth_redirect_uri  redirect URI the host serves for OAuth callbacks
 *   oauth_client_metadata_url  HTTPS URL where the host publishes the
 *                       engine's OAuth Client ID Metadata Document
 * mcpl_options_set returns MCPL_OK or MCPL_E_INVALID_ARGUMENT for an unknown
 * name or bad value. */
mcpl_options *mcpl_options_new(void);
int mcpl_options_set(mcpl_options *o, const char *name, const char *value);
void mcpl_options_set_log(mcpl_options *o, mcpl_log_fn fn, void *ud);
void mcpl_options_free(mcpl_options *o);

/* Opens an engine. On failure returns NULL and, when err is not NULL, stores
 * an error JSON object in *err (free it with mcpl_free). */
mcpl_engine *mcpl_open(const mcpl_options *o, char **err);

/* Runs one operation. args_json is a JSON object (NULL means {}). On return
 * *result_json holds the result JSON, or {"error":{"code","message","field"?,
 * "reason"?}} when the return value is not MCPL_OK (reason: why, as a word,
 * e.g. "connect_failed"; README "Errors"). Free it with mcpl_free.
 * Safe to call from many threads at once on one engine; every call ends
 * within its time limit. */
int mcpl_op(mcpl_engine *e, const mcpl_actor *actor, const char *op_name,
            const char *args_json, char **result_json);

/* The code's name as used in error JSON ("not_found"...). */
const char *mcpl_code_name(int code);

void mcpl_free(void *p);
/* Closes the engine. Calls other threads have in flight are cancelled (they
 * return promptly with MCPL_E_TIMEOUT, reason "cancelled"); calls that start
 * meanwhile get reason "engine_closing". Returns once all have returned; no
 * call may start after that. */
void mcpl_close(mcpl_engine *e);
const char *mcpl_version(void);

#ifdef __cplusplus
}
#endif
#endif
