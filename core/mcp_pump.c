/* mcp_pump.c: streamed exchanges ("pumps") that a thread of their own reads once parked, so
 * a handshake-era call's stream stays open while its continuation waits for the user. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <lauxlib.h>
#include "mcp_pump.h"
#include "sse.h"

#define PUMP_MT "mcpl.mcp_pump"
#define PUMP_MAX_LINES 64
#define PUMP_MAX_PARKED 256        /* parked calls per engine */
#define PUMP_NOTICE_MS 2000        /* the notice that a parked call was abandoned */
#define PUMP_WAIT_STEP_MS 50       /* next() checks its call's cancellation this often */

typedef struct pump_item {
  struct pump_item *next;
  char *event, *data, *id;
  size_t data_len;
  int has_id;
} pump_item;

/* A wake two pumps share (pump:share_wake), so one reader can wait on both:
 * each pump's thread rings it after whatever it hands over. */
typedef struct pump_bell {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned long seq;           /* rings so far */
  void *wake;                  /* a lazy pump's transfer its reader waits in (http_wake) */
  int refs;
} pump_bell;

typedef struct mcp_pump {
  mcpl_engine *e;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t th;
  int started;                 /* the thread runs (join it) */
  int lazy;                    /* no thread yet: the reader runs the transfer (next) */
  int begun;                   /* run was started (else the thread starts it) */
  http_run *run;               /* the transfer while it runs: one thread steps it at a time */
  mcpl_cancel cancel;          /* close, expiry, engine close */
  void *wake;                  /* the transfer's wake handle while it runs (under mu) */
  pump_bell *bell;             /* set once (under mu), released when the pump is freed */
  /* the request, owned */
  http_url *url;
  char **lines;
  size_t nlines;
  char *body;
  size_t body_len;
  http_request rq;
  /* what arrived (under mu) */
  sse_parser sse;              /* the thread's own */
  int sse_mode, head;          /* response headers seen */
  long status;
  pump_item *first, *last;
  size_t queued, max_queued;
  char *text;                  /* a body that is not SSE */
  size_t text_len, text_cap;
  int overflow, sse_rc;
  int done;                    /* the transfer ended; rs is final */
  http_response rs;
  /* parking (under the registry's mutex) */
  struct mcp_pump *next_parked;
  char *key;
  int parked;
  long expires_ms;             /* (atomic) */
  int keep;                    /* (atomic) parked without a notice: a session's kept stream */
  long ends_ms;                /* when the transfer's own time limit ends it */
  char *notice_url, *notice_body;
  char **notice_lines;
  size_t notice_nlines;
  addr_guard notice_guard;
  int notice_http;
} mcp_pump;

typedef struct {
  pthread_mutex_t mu;
  mcp_pump *parked;
  int n;
} pump_registry;

static long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void lines_free(char **l, size_t n) {
  for (size_t i = 0; i < n; i++) free(l[i]);
  free(l);
}

static void bell_ring(pump_bell *b) {
  if (!b) return;
  pthread_mutex_lock(&b->mu);
  b->seq++;
  pthread_cond_broadcast(&b->cv);
  http_wake(b->wake);
  pthread_mutex_unlock(&b->mu);
}

static void bell_unref(pump_bell *b) {
  if (!b) return;
  pthread_mutex_lock(&b->mu);
  int last = --b->refs == 0;
  pthread_mutex_unlock(&b->mu);
  if (!last) return;
  pthread_mutex_destroy(&b->mu);
  pthread_cond_destroy(&b->cv);
  free(b);
}

/* ---- the thread ------------------------------------------------------------ */

static int on_response(void *ud, const http_response *rs) {
  mcp_pump *p = ud;
  const char *ct = http_response_header(rs, "content-type");
  pthread_mutex_lock(&p->mu);
  p->sse_mode = rs->status >= 200 && rs->status < 300 && ct && strncasecmp(ct, "text/event-stream", 17) == 0;
  p->status = rs->status;
  p->head = 1;
  pthread_cond_broadcast(&p->cv);
  pump_bell *b = p->bell;
  pthread_mutex_unlock(&p->mu);
  bell_ring(b);
  return 0;
}

static void on_wake(void *ud, void *handle) {
  mcp_pump *p = ud;
  pthread_mutex_lock(&p->mu);
  p->wake = handle;
  pthread_mutex_unlock(&p->mu);
}

/* A kept stream (parked without a notice) ends itself once its TTL is over,
 * even when nothing else looks at the registry meanwhile. */
static int on_tick(void *ud) {
  mcp_pump *p = ud;
  return __atomic_load_n(&p->parked, __ATOMIC_ACQUIRE) && __atomic_load_n(&p->keep, __ATOMIC_ACQUIRE) &&
         mono_ms() > __atomic_load_n(&p->expires_ms, __ATOMIC_ACQUIRE);
}

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) { memcpy(d, s, n); d[n] = 0; }
  return d;
}

static int on_event(void *ud, const sse_event *ev) {
  mcp_pump *p = ud;
  pump_item *it = calloc(1, sizeof *it);
  if (it) {
    it->event = strdup(ev->event);
    it->data = dupn(ev->data, ev->data_len);
    it->id = strdup(ev->id);
    it->data_len = ev->data_len;
    it->has_id = ev->has_id;
  }
  if (!it || !it->event || !it->data || !it->id) {
    if (it) { free(it->event); free(it->data); free(it->id); free(it); }
    p->sse_rc = SSE_NOMEM;
    return 1;
  }
  pthread_mutex_lock(&p->mu);
  int full = p->queued + ev->data_len > p->max_queued;
  if (!full) {
    if (p->last) p->last->next = it; else p->first = it;
    p->last = it;
    p->queued += ev->data_len;
    pthread_cond_broadcast(&p->cv);
  }
  pump_bell *b = p->bell;
  pthread_mutex_unlock(&p->mu);
  if (!full) bell_ring(b);
  if (full) {
    free(it->event); free(it->data); free(it->id); free(it);
    p->overflow = 1;
    return 1;
  }
  return 0;
}

static int on_body(void *ud, const char *data, size_t len) {
  mcp_pump *p = ud;
  if (p->sse_mode) {
    int rc = sse_feed(&p->sse, data, len, on_event, p);
    if (rc == SSE_OK) return 0;
    if (rc != SSE_STOP && !p->sse_rc) p->sse_rc = rc;
    return 1;
  }
  /* the transfer layer enforces max_body on what it hands us */
  if (p->text_len + len + 1 > p->text_cap) {
    size_t cap = p->text_cap ? p->text_cap : 4096;
    while (cap < p->text_len + len + 1) cap *= 2;
    char *nt = realloc(p->text, cap);
    if (!nt) { p->sse_rc = SSE_NOMEM; return 1; }
    p->text = nt;
    p->text_cap = cap;
  }
  memcpy(p->text + p->text_len, data, len);
  p->text_len += len;
  return 0;
}

/* The notice a parked call's server gets when nobody carried the call on
 * before its deadline (or the engine closed): notifications/cancelled. */
static void send_notice(mcp_pump *p) {
  char reason[64], msg[256];
  http_url *u = http_url_parse(p->notice_url, strlen(p->notice_url), reason, sizeof reason, msg, sizeof msg);
  if (!u) return;
  http_request rq;
  memset(&rq, 0, sizeof rq);
  rq.url = u;
  rq.method = "POST";
  rq.headers = (const char *const *)p->notice_lines;
  rq.nheaders = p->notice_nlines;
  rq.body = p->notice_body;
  rq.body_len = strlen(p->notice_body);
  rq.guard = p->notice_guard;
  rq.allow_http = p->notice_http;
  rq.limits.connect_timeout_ms = PUMP_NOTICE_MS;
  rq.limits.timeout_ms = PUMP_NOTICE_MS;
  rq.limits.max_body = 64 * 1024;
  http_response rs;
  if (http_perform(p->e, &rq, &rs) != 0)
    mcpl_log(p->e, "debug", "mcp: the notice for an abandoned call failed: %s", rs.message);
  http_response_free(&rs);
  http_url_free(u);
}

/* Starts the transfer (rs is final at once when it cannot start). */
static void pump_begin(mcp_pump *p) {
  p->begun = 1;
  p->run = http_run_start(p->e, &p->rq, &p->rs, 1);
  if (!p->run) {
    pthread_mutex_lock(&p->mu);
    p->done = 1;
    pthread_mutex_unlock(&p->mu);
  }
}

/* The transfer ended (or is ended now): rs is final and the reader told. */
static void pump_end(mcp_pump *p) {
  http_run_end(p->run);
  p->run = NULL;
  pthread_mutex_lock(&p->mu);
  p->done = 1;
  pthread_cond_broadcast(&p->cv);
  pump_bell *b = p->bell;
  pthread_mutex_unlock(&p->mu);
  bell_ring(b);
}

static void *pump_main(void *arg) {
  mcp_pump *p = arg;
  if (!p->begun) pump_begin(p);
  if (p->run) {
    while (!http_run_step(p->run, -1)) {}
    pump_end(p);
  }
  /* a parked call whose stream ended without its answer being taken: the
   * call timed out or the engine is closing, and the server is told */
  if (__atomic_load_n(&p->parked, __ATOMIC_ACQUIRE) && p->notice_url && p->rs.code) send_notice(p);
  return NULL;
}

/* A lazy pump gets its thread, which carries its transfer on from where
 * the reader left it (the reader steps it no more). -> 0, or -1 (no thread). */
static int pump_adopt(mcp_pump *p) {
  if (!p->lazy) return 0;
  if (p->run && pthread_create(&p->th, NULL, pump_main, p) != 0) return -1;
  p->started = p->run != NULL;
  p->lazy = 0;
  return 0;
}

/* The reader of a lazy pump runs its transfer for up to ms; a ring of the
 * bell it shares (another pump's thread handed something over) cuts the
 * wait short. */
static void lazy_step(mcp_pump *p, pump_bell *b, unsigned long seen, long ms) {
  if (b) {
    pthread_mutex_lock(&b->mu);
    if (b->seq != seen) ms = 0;
    else b->wake = p->wake;
    pthread_mutex_unlock(&b->mu);
  }
  int ended = http_run_step(p->run, ms);
  if (b) {
    pthread_mutex_lock(&b->mu);
    b->wake = NULL;
    pthread_mutex_unlock(&b->mu);
  }
  if (ended) pump_end(p);
}

static void pump_free(mcp_pump *p) {
  if (!p) return;
  if (p->lazy && p->run) {
    atomic_store(&p->cancel.requested, 1);
    http_run_end(p->run);
    p->run = NULL;
  }
  if (p->started) {
    /* an idle stream's transfer is woken to see it, not left to its poll step */
    atomic_store(&p->cancel.requested, 1);
    pthread_mutex_lock(&p->mu);
    http_wake(p->wake);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
  }
  for (pump_item *it = p->first; it;) {
    pump_item *n = it->next;
    free(it->event); free(it->data); free(it->id); free(it);
    it = n;
  }
  sse_free(&p->sse);
  http_response_free(&p->rs);
  http_url_free(p->url);
  lines_free(p->lines, p->nlines);
  lines_free(p->notice_lines, p->notice_nlines);
  free(p->body);
  free(p->text);
  free(p->key);
  free(p->notice_url);
  free(p->notice_body);
  bell_unref(p->bell);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
}

/* ---- the registry of parked pumps ----------------------------------------- */

int mcp_pump_init(void **slot) {
  pump_registry *r = calloc(1, sizeof *r);
  if (!r) return -1;
  pthread_mutex_init(&r->mu, NULL);
  *slot = r;
  return 0;
}

/* At engine close every parked call is cancelled: each thread tells its
 * server (side by side, each within PUMP_NOTICE_MS), then they are freed. */
void mcp_pump_fini(void *slot) {
  pump_registry *r = slot;
  if (!r) return;
  for (mcp_pump *p = r->parked; p; p = p->next_parked) atomic_store(&p->cancel.requested, 1);
  while (r->parked) {
    mcp_pump *p = r->parked;
    r->parked = p->next_parked;
    pump_free(p);
  }
  pthread_mutex_destroy(&r->mu);
  free(r);
}

/* The engine's registry, as mcp_pump_register left it in the state's
 * registry (the mcp area keeps it; this file does not reach into that). */
static pump_registry *registry_of(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "mcpl.pumps");
  pump_registry *r = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!r) mcpl_lua_error(L, "internal", "pump registry not initialised");
  return r;
}

/* Unlinks parked pumps whose deadline has passed and whose transfer has
 * ended (they told their server); the caller frees them outside the lock.
 * One past its deadline whose transfer still runs (a session's stream kept
 * between calls outlives its own transfer limit) is told to end now. */
static mcp_pump *take_expired(pump_registry *r) {
  long now = mono_ms();
  mcp_pump *gone = NULL;
  for (mcp_pump **pp = &r->parked; *pp;) {
    mcp_pump *p = *pp;
    long expires = __atomic_load_n(&p->expires_ms, __ATOMIC_ACQUIRE);
    pthread_mutex_lock(&p->mu);
    int dead = p->done && now > expires;
    if (!p->done && now > expires && __atomic_load_n(&p->keep, __ATOMIC_ACQUIRE)) {
      atomic_store(&p->cancel.requested, 1);
      http_wake(p->wake);
    }
    pthread_mutex_unlock(&p->mu);
    if (dead) {
      *pp = p->next_parked;
      r->n--;
      p->next_parked = gone;
      gone = p;
    } else pp = &p->next_parked;
  }
  return gone;
}

static void free_list(mcp_pump *p) {
  while (p) {
    mcp_pump *n = p->next_parked;
    pump_free(p);
    p = n;
  }
}

/* ---- Lua ------------------------------------------------------------------- */

static mcp_pump **check(lua_State *L) {
  mcp_pump **pp = luaL_checkudata(L, 1, PUMP_MT);
  if (!*pp) mcpl_lua_error(L, "internal", "the pump was parked or closed");
  return pp;
}

static char **copy_lines(lua_State *L, int idx, size_t *n) {
  *n = 0;
  char **out = calloc(PUMP_MAX_LINES, sizeof *out);
  if (!out) return NULL;
  if (lua_getfield(L, idx, "headers") == LUA_TTABLE) {
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING && *n < PUMP_MAX_LINES) {
        size_t kl, vl;
        const char *k = lua_tolstring(L, -2, &kl), *v = lua_tolstring(L, -1, &vl);
        char *line = malloc(kl + vl + 3);
        if (line) {
          memcpy(line, k, kl);
          memcpy(line + kl, ": ", 2);
          memcpy(line + kl + 2, v, vl + 1);
          out[(*n)++] = line;
        }
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return out;
}

/* mcp.pump(spec) -> pump: the exchange mcp.stream would run, on a thread of
 * its own; spec as for mcp.stream, but url is the URL's text (the pump parses
 * its own copy: it may outlive the Lua state that started it). spec.lazy:
 * no thread until the pump is parked; until then pump:next runs the
 * transfer on the reader's thread (a call that is never parked costs no
 * thread and no hand-over between threads). */
static int l_pump(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  pump_registry *reg = registry_of(L);
  pthread_mutex_lock(&reg->mu);
  mcp_pump *gone = take_expired(reg);
  pthread_mutex_unlock(&reg->mu);
  free_list(gone);
  mcp_pump **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = NULL;
  luaL_setmetatable(L, PUMP_MT);
  mcp_pump *p = calloc(1, sizeof *p);
  if (!p) return mcpl_lua_error(L, "internal", "out of memory");
  *ud = p;
  p->e = mcpl_engine_of(L);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  lua_getfield(L, 1, "url");
  size_t ul;
  const char *utext = luaL_checklstring(L, -1, &ul);
  char reason[64], msg[256];
  p->url = http_url_parse(utext, ul, reason, sizeof reason, msg, sizeof msg);
  lua_pop(L, 1);
  if (!p->url) return mcpl_lua_error(L, "invalid_argument", "pump: %s", msg);
  http_request *rq = &p->rq;
  http_lua_spec(L, 1, rq);
  /* the transfer outlives this call: its body and header lines are the pump's own */
  if (rq->body) {
    p->body_len = rq->body_len;
    p->body = dupn(rq->body, p->body_len);
    if (!p->body) return mcpl_lua_error(L, "internal", "out of memory");
  }
  p->lines = copy_lines(L, 1, &p->nlines);
  if (!p->lines) return mcpl_lua_error(L, "internal", "out of memory");
  rq->url = p->url;
  rq->method = rq->method && strcmp(rq->method, "GET") == 0 ? "GET" : "POST";
  rq->headers = (const char *const *)p->lines;
  rq->nheaders = p->nlines;
  rq->body = p->body;
  rq->body_len = p->body_len;
  size_t max_event = (size_t)http_lua_opt_long(L, 1, "max_event");
  sse_init(&p->sse, max_event ? max_event : 4 * 1024 * 1024);
  p->max_queued = rq->limits.max_body ? rq->limits.max_body : 16 * 1024 * 1024;
  rq->on_response = on_response;
  rq->on_body = on_body;
  rq->on_wake = on_wake;
  rq->on_tick = on_tick;
  rq->ud = p;
  p->ends_ms = mono_ms() + (rq->limits.timeout_ms > 0 ? rq->limits.timeout_ms : 30000);
  rq->cancel = &p->cancel;
  lua_getfield(L, 1, "lazy");
  p->lazy = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (p->lazy) {
    pump_begin(p);
    return 1;
  }
  if (pthread_create(&p->th, NULL, pump_main, p) != 0) return mcpl_lua_error(L, "internal", "cannot start a thread");
  p->started = 1;
  return 1;
}

static void push_end(lua_State *L, mcp_pump *p) {
  lua_createtable(L, 0, 10);
  lua_pushliteral(L, "end"); lua_setfield(L, -2, "kind");
  lua_pushinteger(L, p->rs.status); lua_setfield(L, -2, "status");
  http_lua_push_header_view(L, &p->rs); lua_setfield(L, -2, "headers");
  lua_pushboolean(L, p->sse_mode); lua_setfield(L, -2, "sse");
  lua_pushstring(L, sse_last_id(&p->sse)); lua_setfield(L, -2, "last_event_id");
  lua_pushinteger(L, sse_retry(&p->sse)); lua_setfield(L, -2, "retry_ms");
  lua_pushstring(L, p->rs.primary_ip); lua_setfield(L, -2, "primary_ip");
  if (!p->sse_mode) {
    lua_pushlstring(L, p->text ? p->text : "", p->text_len);
    lua_setfield(L, -2, "body");
  }
  const char *code = NULL, *reason = NULL, *msg = NULL;
  if (p->overflow || p->sse_rc == SSE_TOO_LARGE) code = "too_large", reason = "sse_event", msg = "an SSE event exceeds the size limit";
  else if (p->sse_rc == SSE_NOMEM) code = "internal", reason = "nomem", msg = "out of memory";
  else if (p->rs.code) code = p->rs.code, reason = p->rs.reason, msg = p->rs.message;
  if (code) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, code); lua_setfield(L, -2, "code");
    lua_pushstring(L, reason); lua_setfield(L, -2, "reason");
    lua_pushstring(L, msg); lua_setfield(L, -2, "message");
    lua_setfield(L, -2, "err");
  }
}

/* take(L, p): with p->mu held, pushes p's next item and unlocks -> 1, or
 * -> 0 (nothing yet; still locked). */
static int take(lua_State *L, mcp_pump *p) {
  if (p->head == 1) {
    p->head = 2;
    long st = p->status;
    int sse = p->sse_mode;
    pthread_mutex_unlock(&p->mu);
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "head"); lua_setfield(L, -2, "kind");
    lua_pushinteger(L, st); lua_setfield(L, -2, "status");
    lua_pushboolean(L, sse); lua_setfield(L, -2, "sse");
    return 1;
  }
  pump_item *it = p->first;
  if (it) {
    p->first = it->next;
    if (!p->first) p->last = NULL;
    p->queued -= it->data_len;
    pthread_mutex_unlock(&p->mu);
    lua_createtable(L, 0, 5);
    lua_pushliteral(L, "event"); lua_setfield(L, -2, "kind");
    lua_pushstring(L, it->event); lua_setfield(L, -2, "event");
    lua_pushlstring(L, it->data, it->data_len); lua_setfield(L, -2, "data");
    lua_pushstring(L, it->id); lua_setfield(L, -2, "id");
    lua_pushboolean(L, it->has_id); lua_setfield(L, -2, "has_id");
    free(it->event); free(it->data); free(it->id); free(it);
    return 1;
  }
  if (p->done) {
    pthread_mutex_unlock(&p->mu);
    push_end(L, p);
    return 1;
  }
  return 0;
}

static void deadline_in(struct timespec *ts, long ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

/* pump:next(wait_ms [, other]) -> item | nil (nothing within wait_ms).
 * item = {kind="head", status, sse} (once, when the response's headers are
 * in), {kind="event", event, data, id, has_id}, or {kind="end", status,
 * headers, sse, last_event_id, retry_ms, body?, err?} (last). With other, a
 * pump that shares this one's wake (pump:share_wake), it also returns nil as
 * soon as other has something to read. The call's cancellation closes the
 * pump and raises. */
static int l_next(lua_State *L) {
  mcp_pump **pp = check(L);
  mcp_pump *p = *pp;
  long wait = (long)luaL_optinteger(L, 2, 0);
  long until = mono_ms() + (wait < 0 ? 0 : wait);
  mcp_pump *o = NULL;
  if (!lua_isnoneornil(L, 3)) {
    mcp_pump **op = luaL_checkudata(L, 3, PUMP_MT);
    o = *op;
  }
  pump_bell *b = NULL;
  if (o && o != p) {
    pthread_mutex_lock(&p->mu);
    b = p->bell;
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_lock(&o->mu);
    if (o->bell != b) b = NULL;
    pthread_mutex_unlock(&o->mu);
  }
  int stepped = 0;
  for (;;) {
    unsigned long seen = 0;
    if (b) {
      pthread_mutex_lock(&b->mu);
      seen = b->seq;
      pthread_mutex_unlock(&b->mu);
    }
    pthread_mutex_lock(&p->mu);
    if (take(L, p)) return 1;
    /* a lazy pump's transfer is run here, outside its lock (its callbacks take it) */
    int lazy = p->lazy && p->run;
    int locked = 1;
    if (b || lazy) {
      pthread_mutex_unlock(&p->mu);
      locked = 0;
    }
    if (b) {
      pthread_mutex_lock(&o->mu);
      int ready = o->head == 1 || o->first || o->done;
      pthread_mutex_unlock(&o->mu);
      if (ready) break;
    }
    long now = mono_ms();
    if (now >= until && (!lazy || stepped)) {
      if (locked) pthread_mutex_unlock(&p->mu);
      break;
    }
    if (mcpl_lua_cancelled(L)) {
      if (locked) pthread_mutex_unlock(&p->mu);
      *pp = NULL;
      pump_free(p);
      return mcpl_lua_raise_cancelled(L);
    }
    long step = until - now < PUMP_WAIT_STEP_MS ? until - now : PUMP_WAIT_STEP_MS;
    if (lazy) {
      lazy_step(p, b, seen, step > 0 ? step : 0);
      stepped = 1;
      continue;
    }
    struct timespec ts;
    deadline_in(&ts, step);
    if (b) {
      pthread_mutex_lock(&b->mu);
      if (b->seq == seen) pthread_cond_timedwait(&b->cv, &b->mu, &ts);
      pthread_mutex_unlock(&b->mu);
    } else {
      pthread_cond_timedwait(&p->cv, &p->mu, &ts);
      pthread_mutex_unlock(&p->mu);
    }
  }
  lua_pushnil(L);
  return 1;
}

/* pump:share_wake(other) -> true | false: this pump's thread also wakes a
 * reader waiting on other (pump:next(ms, other)); false when this pump
 * already shares another's wake. */
static int l_share_wake(lua_State *L) {
  mcp_pump *p = *check(L);
  mcp_pump **op = luaL_checkudata(L, 2, PUMP_MT);
  mcp_pump *o = *op;
  if (!o) return mcpl_lua_error(L, "internal", "the pump was parked or closed");
  if (o == p) { lua_pushboolean(L, 1); return 1; }
  pthread_mutex_lock(&o->mu);
  if (!o->bell) {
    pump_bell *nb = calloc(1, sizeof *nb);
    if (nb) {
      pthread_mutex_init(&nb->mu, NULL);
      pthread_cond_init(&nb->cv, NULL);
      nb->refs = 1;
      o->bell = nb;
    }
  }
  pump_bell *b = o->bell;
  if (b) {
    pthread_mutex_lock(&b->mu);
    b->refs++;
    pthread_mutex_unlock(&b->mu);
  }
  pthread_mutex_unlock(&o->mu);
  if (!b) return mcpl_lua_error(L, "internal", "out of memory");
  pthread_mutex_lock(&p->mu);
  int ok = !p->bell || p->bell == b;
  int adopted = !p->bell;
  if (adopted) p->bell = b;
  pthread_mutex_unlock(&p->mu);
  if (!adopted) bell_unref(b);
  lua_pushboolean(L, ok);
  return 1;
}

/* pump:left_ms() -> ms: how long until the transfer's own time limit ends it. */
static int l_left_ms(lua_State *L) {
  mcp_pump **pp = check(L);
  long left = (*pp)->ends_ms - mono_ms();
  lua_pushinteger(L, left > 0 ? left : 0);
  return 1;
}

/* pump:close(): ends the transfer and frees it (idempotent). */
static int l_close(lua_State *L) {
  mcp_pump **pp = luaL_checkudata(L, 1, PUMP_MT);
  mcp_pump *p = *pp;
  *pp = NULL;
  pump_free(p);
  return 0;
}

/* pump:park(key, ttl_ms [, notice]) -> true | false (no room): hands the
 * pump to the engine under key until mcp.unpark(key) takes it back. Its
 * transfer goes on until its own deadline; if that comes first (or the
 * engine closes), the pump's thread sends notice = {url, headers, body,
 * guard} (notifications/cancelled) to the server. Without a notice (a
 * session's stream kept between calls) the transfer ends itself at ttl_ms
 * if it is still parked then. */
static int l_park(lua_State *L) {
  mcp_pump **pp = check(L);
  const char *key = luaL_checkstring(L, 2);
  lua_Integer ttl = luaL_checkinteger(L, 3);
  int noticed = !lua_isnoneornil(L, 4);
  if (noticed) luaL_checktype(L, 4, LUA_TTABLE);
  pump_registry *reg = registry_of(L);
  mcp_pump *p = *pp;
  free(p->notice_url);
  free(p->notice_body);
  lines_free(p->notice_lines, p->notice_nlines);
  p->notice_url = p->notice_body = NULL;
  p->notice_lines = NULL;
  p->notice_nlines = 0;
  if (noticed) {
    lua_getfield(L, 4, "url");
    lua_getfield(L, 4, "body");
    const char *nurl = luaL_checkstring(L, -2), *nbody = luaL_checkstring(L, -1);
    p->notice_url = strdup(nurl);
    p->notice_body = strdup(nbody);
    lua_pop(L, 2);
    p->notice_lines = copy_lines(L, 4, &p->notice_nlines);
    lua_getfield(L, 4, "guard");
    http_lua_guard(L, lua_gettop(L), &p->notice_guard, &p->notice_http);
    lua_pop(L, 1);
    if (!p->notice_url || !p->notice_body || !p->notice_lines) return mcpl_lua_error(L, "internal", "out of memory");
  }
  free(p->key);
  p->key = strdup(key);
  if (!p->key) return mcpl_lua_error(L, "internal", "out of memory");
  __atomic_store_n(&p->expires_ms, mono_ms() + (long)(ttl < 0 ? 0 : ttl), __ATOMIC_RELEASE);
  __atomic_store_n(&p->keep, !noticed, __ATOMIC_RELEASE);
  /* parked, a lazy pump's transfer goes on without its reader: a thread of its own */
  if (pump_adopt(p) != 0) return mcpl_lua_error(L, "internal", "cannot start a thread");
  pthread_mutex_lock(&reg->mu);
  mcp_pump *gone = take_expired(reg);
  int room = reg->n < PUMP_MAX_PARKED;
  if (room) {
    __atomic_store_n(&p->parked, 1, __ATOMIC_RELEASE);
    p->next_parked = reg->parked;
    reg->parked = p;
    reg->n++;
    *pp = NULL;
  }
  pthread_mutex_unlock(&reg->mu);
  free_list(gone);
  lua_pushboolean(L, room);
  return 1;
}

/* mcp.unpark(key) -> pump | nil: takes a parked pump back (once). */
static int l_unpark(lua_State *L) {
  const char *key = luaL_checkstring(L, 1);
  pump_registry *reg = registry_of(L);
  mcp_pump **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = NULL;
  luaL_setmetatable(L, PUMP_MT);
  pthread_mutex_lock(&reg->mu);
  mcp_pump *found = NULL;
  for (mcp_pump **pp = &reg->parked; *pp; pp = &(*pp)->next_parked)
    if (strcmp((*pp)->key, key) == 0) {
      found = *pp;
      *pp = found->next_parked;
      reg->n--;
      found->next_parked = NULL;
      __atomic_store_n(&found->parked, 0, __ATOMIC_RELEASE);
      break;
    }
  mcp_pump *gone = take_expired(reg);
  pthread_mutex_unlock(&reg->mu);
  free_list(gone);
  if (!found) { lua_pushnil(L); return 1; }
  *ud = found;
  return 1;
}

/* mcp.park_drop(prefix) -> n: closes the parked pumps whose key starts with
 * prefix (a session's kept stream, when the session ends). */
static int l_park_drop(lua_State *L) {
  const char *prefix = luaL_checkstring(L, 1);
  size_t pl = strlen(prefix);
  pump_registry *reg = registry_of(L);
  mcp_pump *gone = NULL;
  lua_Integer n = 0;
  pthread_mutex_lock(&reg->mu);
  for (mcp_pump **pp = &reg->parked; *pp;) {
    mcp_pump *p = *pp;
    if (strncmp(p->key, prefix, pl) == 0) {
      *pp = p->next_parked;
      reg->n--;
      __atomic_store_n(&p->parked, 0, __ATOMIC_RELEASE);
      p->next_parked = gone;
      gone = p;
      n++;
    } else pp = &p->next_parked;
  }
  pthread_mutex_unlock(&reg->mu);
  free_list(gone);
  lua_pushinteger(L, n);
  return 1;
}

static int l_gc(lua_State *L) {
  mcp_pump **pp = luaL_checkudata(L, 1, PUMP_MT);
  pump_free(*pp);
  *pp = NULL;
  return 0;
}

void mcp_pump_register(lua_State *L, void *registry) {
  lua_pushlightuserdata(L, registry);
  lua_setfield(L, LUA_REGISTRYINDEX, "mcpl.pumps");
  if (luaL_newmetatable(L, PUMP_MT)) {
    static const luaL_Reg m[] = {{"next", l_next}, {"close", l_close}, {"park", l_park}, {"left_ms", l_left_ms},
                                   {"share_wake", l_share_wake}, {NULL, NULL}};
    luaL_newlib(L, m);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
}

int mcp_l_pump(lua_State *L) { return l_pump(L); }
int mcp_l_unpark(lua_State *L) { return l_unpark(L); }
int mcp_l_park_drop(lua_State *L) { return l_park_drop(L); }
