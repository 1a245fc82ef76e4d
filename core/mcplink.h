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
 * never contain secret values. It is called from whichever engine thread
 * logs, one call at a time (the engine serialises them, so a sink needs no
 * lock of its own); keep it quick, and do not call the engine from it (an
 * mcpl_* call made inside the sink may wait on the thread that is logging). */
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

/* ---- Interactive calls: a call handle, its events and input requests -------
 * A call to an MCP server (tool.call, prompt.get, resource.read, and the
 * *.continue ops) may report progress and log lines while it runs, and the
 * server may ask the user something before it can answer (elicitation: a
 * form or a URL to open; sampling and roots, deprecated in 2026-07-28). A
 * host sees those through callbacks set on a call handle or, for input
 * requests, on the engine options. Every callback runs on the thread that
 * called mcpl_op_call (or mcpl_op), while that call waits; the strings it
 * gets are valid during the callback only. A callback may call the engine,
 * which then uses another pool state (so not with pool_size 1). README
 * "Interactive calls" has the JSON shapes. */

/* An event of a call, as it arrives: {"type":"progress","progress","total"?,
 * "message"?,"server":{...}} or {"type":"log","level","logger"?,"data",
 * "server":{...}}. */
typedef void (*mcpl_event_fn)(void *ud, const char *event_json);

/* An input request the host answers now. request_json: {"key","method",
 * "server":{"id","name","url"}, and for elicitation "mode" ("form"|"url"),
 * "message", "schema" (form: the requested schema, defaults filled in) or
 * "url" (never opened or fetched by the engine)}. The handler answers by
 * calling mcpl_reply_set(reply, result_json) before it returns (the engine
 * copies the text): an elicitation result {"action":"accept","content":{}}
 * (missing fields with a default get it; the content is checked against the
 * schema), {"action":"decline"} or {"action":"cancel"}; a sampling or roots
 * result as the MCP spec defines it. Returning without a reply is "cancel"
 * (elicitation) or a refusal (sampling, roots). */
typedef struct mcpl_reply mcpl_reply;
typedef void (*mcpl_input_fn)(void *ud, const char *request_json, mcpl_reply *reply);
/* MCPL_OK, MCPL_E_INVALID_ARGUMENT (NULL, or a reply already set) or
 * MCPL_E_TOO_LARGE (more than 1 MiB). */
int mcpl_reply_set(mcpl_reply *reply, const char *result_json);

/* Which requests an input handler answers (bits). Only what some handler
 * answers is declared to servers as a client capability: elicitation is
 * always declared (without a handler a call answers resumably, see below);
 * sampling and roots only when a handler answers them, else servers that
 * ask anyway are refused with the error the MCP spec gives. */
#define MCPL_INPUT_ELICITATION 1u
#define MCPL_INPUT_SAMPLING 2u
#define MCPL_INPUT_ROOTS 4u

/* The engine's default input handler, for calls whose handle sets none (and
 * for mcpl_op). Without any handler, an elicitation makes tool.call (and
 * prompt.get, resource.read) answer {"resultType":"input_required",
 * "input_requests":[...],"continuation":"..."}: the host asks its user when
 * it likes and calls tool.continue {continuation, input_responses}. */
void mcpl_options_set_input(mcpl_options *o, mcpl_input_fn fn, void *ud, unsigned methods);

/* A call handle: one call at a time (it may be reused for the next call).
 * mcpl_call_cancel is thread-safe and may be called at any time, also before
 * the call starts: the call then returns MCPL_E_TIMEOUT with reason
 * "cancelled" promptly (a legacy server is sent notifications/cancelled, a
 * 2026-07-28 server sees its request's stream closed). A cancelled handle
 * stays cancelled. A running input handler is not interrupted: the call ends
 * when it returns. Free the handle only when no call uses it. */
typedef struct mcpl_call mcpl_call;
mcpl_call *mcpl_call_new(void);
void mcpl_call_free(mcpl_call *c);
int mcpl_call_cancel(mcpl_call *c);
void mcpl_call_set_events(mcpl_call *c, mcpl_event_fn fn, void *ud);
void mcpl_call_set_input(mcpl_call *c, mcpl_input_fn fn, void *ud, unsigned methods);

/* mcpl_op with a call handle (c may be NULL: then it is mcpl_op). A handle
 * already in use by another call is refused (MCPL_E_INVALID_ARGUMENT). */
int mcpl_op_call(mcpl_engine *e, const mcpl_actor *actor, const char *op_name,
                 const char *args_json, mcpl_call *c, char **result_json);

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
