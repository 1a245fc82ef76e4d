/* http.h: the engine's one outbound HTTP client (libcurl) with the SSRF guard.
 * Used by the Lua `http` module and by C bindings such as the MCP client. */
#ifndef MCPL_HTTP_H
#define MCPL_HTTP_H

#include <stddef.h>
#include <netdb.h>
#include "dynlib_crypto.h"
#include "dynlib_curl.h"
#include "addr.h"
#include "engine.h"

/* ---- URLs: parsed once with libcurl's URL API; the same CURLU handle is
 * handed to the transfer (CURLOPT_CURLU), so what was judged is fetched. */
typedef struct {
  CURLU *h;
  char *text;      /* normalised URL as curl will send it */
  char *scheme;    /* "https" or "http" (anything else is refused) */
  char *host;      /* lower case, no brackets, no zone id, no trailing dot */
  char *path;
  char *query;     /* NULL when absent */
  int port;        /* explicit or scheme default */
  int host_is_ip;  /* host is an address literal; ip holds it */
  addr_t ip;
} http_url;

/* Parses text (len bytes; embedded NULs are refused). Only http and https
 * schemes parse; whether http is allowed is decided per request. On failure
 * returns NULL and writes a reason word ("invalid_url", "scheme",
 * "userinfo") and a message. */
http_url *http_url_parse(const char *text, size_t len, char *reason, size_t rn, char *msg,
                         size_t mn);
/* Resolves a reference (a redirect's Location) against base. */
http_url *http_url_join(const http_url *base, const char *ref, size_t len, char *reason,
                        size_t rn, char *msg, size_t mn);
void http_url_free(http_url *u);
/* Same scheme, host and port. */
int http_url_same_origin(const http_url *a, const http_url *b);

/* ---- requests ------------------------------------------------------------- */

/* Both time limits are deadlines the transfer loop enforces itself (libcurl
 * gets them too, later, as a backstop): connect_timeout_ms from the start
 * until the request can be sent, timeout_ms from the start to the end. */
typedef struct {
  long connect_timeout_ms;  /* DNS + TCP + TLS; 0 = 10 s */
  long timeout_ms;          /* whole transfer; 0 = 30 s */
  size_t max_body;          /* 0 = 8 MiB */
  size_t max_header;        /* all header bytes of the response; 0 = 64 KiB */
} http_limits;

typedef struct {
  char *name;   /* lower case; one allocation with the value, freed by name */
  char *value;
} http_header;

struct http_response;

typedef struct {
  const http_url *url;
  const char *method;                 /* NULL: GET, or POST when body is set */
  const char *const *headers;         /* "Name: value" lines, nheaders of them */
  size_t nheaders;
  const char *body;
  size_t body_len;
  addr_guard guard;                   /* connect-time decision for this request */
  int allow_http;                     /* plain http permitted for this request */
  http_limits limits;
  /* Streaming (optional). on_response runs once the final response's
   * headers are in; on_body receives body bytes instead of rs->body. A
   * non-zero return from either cancels the transfer. */
  int (*on_response)(void *ud, const struct http_response *rs);
  int (*on_body)(void *ud, const char *data, size_t len);
  void *ud;
  const mcpl_cancel *cancel;          /* optional: the call's cancellation (engine.h) */
  /* optional: polled while the transfer runs (also when no data arrives);
   * a non-zero return cancels it */
  int (*on_tick)(void *ud);
  /* optional: handed the transfer's wake handle once it runs, and NULL
   * before that handle goes away. http_wake(handle), from any thread, makes
   * the transfer look at its cancellation at once, not within its poll step
   * (a thread that ends another's idle stream does not wait for it). */
  void (*on_wake)(void *ud, void *handle);
} http_request;

typedef struct http_response {
  long status;
  int http_version;                   /* 1 (1.x) or 2 */
  char primary_ip[64];                /* the address actually connected to */
  http_header *headers;               /* final response's headers, in order */
  size_t nheaders;
  char *body;                         /* NUL-terminated; NULL when streamed */
  size_t body_len;
  /* Failure: code is an engine code ("url_blocked", "timeout", "too_large",
   * "upstream_error", "invalid_argument"); reason one of "scheme",
   * "userinfo", "private_address <ip>", "dns_failure", "connect_failed",
   * "tls_error", "timeout", "cancelled", "too_large", ... */
  const char *code;
  char reason[128];
  char message[256];
} http_response;

/* Runs one request; 0 on success (any HTTP status), -1 with rs->code set. */
int http_perform(mcpl_engine *e, const http_request *rq, http_response *rs);
/* Runs n requests concurrently through one multi handle; returns the number
 * that failed. Each rs[i] is filled as by http_perform. */
int http_perform_many(mcpl_engine *e, const http_request *rq, http_response *rs, size_t n);
void http_response_free(http_response *rs);
/* The same transfers driven a step at a time by the caller: a thread may
 * run a transfer for a while and hand it to another between steps (never
 * two at once), e.g. a streamed exchange read on the caller's thread until
 * it must outlive the call. rq and rs stay the caller's and must outlive the
 * run. start returns NULL (every rs[i] failed) when nothing could start;
 * step runs what is ready, then waits up to wait_ms (-1: the loop's own poll
 * step) for more, and returns 1 once every transfer has ended; end ends
 * those still running (as cancelled), frees the run and returns the number
 * that failed. */
typedef struct http_run http_run;
http_run *http_run_start(mcpl_engine *e, const http_request *rq, http_response *rs, size_t n);
int http_run_step(http_run *r, long wait_ms);
int http_run_end(http_run *r);
/* Wakes the transfer loop that owns handle (see http_request.on_wake). */
void http_wake(void *handle);
/* First header of that (lower-case) name, or NULL. */
const char *http_response_header(const http_response *rs, const char *name);

/* Resolves the URL's host and judges every answer against the guard without
 * connecting. Fills up to max addresses (text) into addrs, *naddrs. Returns 0
 * when all pass, else -1 with code/reason/message in rs. */
int http_judge(mcpl_engine *e, const http_url *u, const addr_guard *g, long timeout_ms,
               const mcpl_cancel *cancel, char (*addrs)[64], size_t max, size_t *naddrs,
               http_response *rs);

/* ---- resolver (tests inject their own; NULL restores getaddrinfo) ---------- */
typedef int (*http_resolve_fn)(const char *host, const char *port, const struct addrinfo *hints,
                               struct addrinfo **res);
typedef void (*http_free_fn)(struct addrinfo *res);
void http_set_resolver(http_resolve_fn fn, http_free_fn free_fn);

/* Internal to http_*.c: a lookup bounded by a deadline and cancellation. */
int http_resolve(mcpl_engine *e, const char *host, int port, long timeout_ms,
                 const mcpl_cancel *cancel, addr_t *out, size_t max, size_t *n, char *reason,
                 size_t rn);

/* The same, split so many lookups run at once: start returns NULL on
 * failure (wait then reports dns_failure); wait consumes the lookup. */
struct http_lookup;
struct http_lookup *http_lookup_start(const char *host, int port);
int http_lookup_wait(struct http_lookup *lk, mcpl_engine *e, long deadline_ms,
                     const mcpl_cancel *cancel, addr_t *out, size_t max, size_t *n,
                     char *reason, size_t rn);
long http_now_ms(void);  /* monotonic */
#define HTTP_MAX_ADDRS 32

/* The engine-wide state (connection share, extra CA certificates, trust
 * store) lives in the engine's HTTP slot, made by http_engine_init
 * (engine.h) in http_transfer.c. */

/* Lua-side helpers shared by the bindings that start transfers (bind_http.c,
 * http_stream.c, mcp_pump.c): a guard table {allow_private=, allow_http=, allow_cidrs=}
 * at idx, and a non-negative integer field k of the table at idx (0 if absent). */
void http_lua_guard(lua_State *L, int idx, addr_guard *g, int *allow_http);
long http_lua_opt_long(lua_State *L, int idx, const char *k);
/* What every reader of a request spec table at idx (http.request, mcp.stream,
 * mcp.pump) takes alike into rq: method (NULL if absent), body (a string
 * the table owns, or none), guard and limits; the URL, headers and
 * cancellation are each reader's own. */
void http_lua_spec(lua_State *L, int idx, http_request *rq);
/* Pushes a response's headers as {lowercase name = value, repeated joined}. */
void http_lua_push_headers(lua_State *L, const http_response *rs);
/* Pushes them as a read-only view that answers the same by name
 * (view[name]; pairs(view) walks such a table), made without a Lua string
 * per header: the MCP transfers' responses (mcp.stream, mcp.pump). */
void http_lua_push_header_view(lua_State *L, const http_response *rs);

#endif
