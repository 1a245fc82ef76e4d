/* bind_mcp.c: the Lua `mcp` module: streamed exchanges, the SSE parser, and
 * the engine-wide era/session cache shared by every Lua state (one mutex). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lauxlib.h>
#include "engine.h"
#include "http.h"
#include "http_stream.h"
#include "mcp_pump.h"
#include "sse.h"

#define MCP_MAX_ENTRIES 4096      /* cache entries; the oldest idle go first */
#define MCP_BUCKETS 8192          /* the key index: a lookup costs the same at 10 entries or 4096 */
#define MCP_CLOSE_TIMEOUT_MS 2000 /* per session DELETE (all at once at engine close) */
#define MCP_CLOSE_BATCH 32        /* DELETEs run side by side, this many at a time */
#define MCP_WAIT_STEP_MS 50       /* a claim waiter checks its call's cancellation this often */

/* A session's goodbye, kept so the engine can end it at close without Lua. */
typedef struct {
  char *url;
  char **lines;  /* "Name: value" */
  size_t nlines;
  addr_guard guard;
  int allow_http;
} mcp_close;

typedef struct mcp_entry {
  struct mcp_entry *next, *prev; /* the cache's list, newest first */
  struct mcp_entry *hnext;       /* its bucket's chain */
  unsigned hash;
  char *key;
  char *value;       /* NULL while claimed and not yet put */
  int claimed;       /* someone is creating the value (e.g. initialize) */
  long used_ms;      /* monotonic, last get/put */
  mcp_close *close;
} mcp_entry;

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  mcp_entry *head;
  mcp_entry *bucket[MCP_BUCKETS];
  size_t n;
  void *pumps;       /* parked calls (mcp_pump.c) */
  long swept_ms;     /* monotonic, the last throttled sweep (0: none yet) */
} mcp_cache;

static long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void close_free(mcp_close *c) {
  if (!c) return;
  for (size_t i = 0; i < c->nlines; i++) free(c->lines[i]);
  free(c->lines);
  free(c->url);
  free(c);
}

static void entry_free(mcp_entry *e) {
  free(e->key);
  free(e->value);
  close_free(e->close);
  free(e);
}

int mcp_engine_init(mcpl_engine *e, char **err) {
  (void)err;
  mcp_cache *c = calloc(1, sizeof *c);
  if (!c) return -1;
  if (mcp_pump_init(&c->pumps) != 0) { free(c); return -1; }
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  mcpl_engine_set_slot(e, MCPL_AREA_MCP, c);
  return 0;
}

/* Ends legacy sessions with DELETE, side by side; best effort, each bounded
 * by MCP_CLOSE_TIMEOUT_MS, so closing an engine with many sessions to a
 * server that stopped answering costs that once, not once per session. */
static void send_closes(mcpl_engine *e, mcp_close *const *cs, size_t n, const mcpl_cancel *cancel) {
  /* nothing to end (every stateless session, every command that reached no
   * server): allocating the batch would cost more than all of it, as the
   * allocator first consolidates what the engine's states just freed */
  if (n == 0) return;
  http_request *rq = calloc(MCP_CLOSE_BATCH, sizeof *rq);
  http_response *rs = calloc(MCP_CLOSE_BATCH, sizeof *rs);
  http_url **u = calloc(MCP_CLOSE_BATCH, sizeof *u);
  for (size_t at = 0; rq && rs && u && at < n; at += MCP_CLOSE_BATCH) {
    size_t m = 0;
    for (size_t i = at; i < n && i < at + MCP_CLOSE_BATCH; i++) {
      const mcp_close *c = cs[i];
      char reason[64], msg[256];
      u[m] = http_url_parse(c->url, strlen(c->url), reason, sizeof reason, msg, sizeof msg);
      if (!u[m]) continue;
      memset(&rq[m], 0, sizeof rq[m]);
      rq[m].url = u[m];
      rq[m].method = "DELETE";
      rq[m].headers = (const char *const *)c->lines;
      rq[m].nheaders = c->nlines;
      rq[m].guard = c->guard;
      rq[m].allow_http = c->allow_http;
      rq[m].cancel = cancel;
      rq[m].limits.connect_timeout_ms = MCP_CLOSE_TIMEOUT_MS;
      rq[m].limits.timeout_ms = MCP_CLOSE_TIMEOUT_MS;
      rq[m].limits.max_body = 64 * 1024;
      m++;
    }
    if (m) http_perform_many(e, rq, rs, m);
    for (size_t j = 0; j < m; j++) {
      if (rs[j].code) mcpl_log(e, "debug", "mcp: session DELETE failed: %s", rs[j].message);
      http_response_free(&rs[j]);
      http_url_free(u[j]);
    }
  }
  free(rq);
  free(rs);
  free(u);
}

void mcp_engine_fini(mcpl_engine *e) {
  mcp_cache *c = mcpl_engine_slot(e, MCPL_AREA_MCP);
  if (!c) return;
  /* parked calls first: their notices go into sessions ended just below */
  mcp_pump_fini(c->pumps);
  c->pumps = NULL;
  mcp_close **cs = calloc(c->n ? c->n : 1, sizeof *cs);
  size_t n = 0;
  for (mcp_entry *x = c->head; cs && x; x = x->next)
    if (x->close && n < c->n) cs[n++] = x->close;
  if (cs) send_closes(e, cs, n, NULL);
  free(cs);
  mcp_entry *x = c->head;
  while (x) {
    mcp_entry *next = x->next;
    entry_free(x);
    x = next;
  }
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c);
  mcpl_engine_set_slot(e, MCPL_AREA_MCP, NULL);
}

static mcp_cache *cache_of(lua_State *L) {
  mcp_cache *c = mcpl_engine_slot(mcpl_engine_of(L), MCPL_AREA_MCP);
  if (!c) mcpl_lua_error(L, "internal", "mcp cache not initialised");
  return c;
}

/* ---- the entries: a list (walks, eviction) and a hash index (lookups) --- */

static unsigned key_hash(const char *k) {
  unsigned h = 2166136261u;
  for (; *k; k++) h = (h ^ (unsigned char)*k) * 16777619u;
  return h;
}

static mcp_entry *find(mcp_cache *c, const char *key) {
  unsigned h = key_hash(key);
  for (mcp_entry *x = c->bucket[h % MCP_BUCKETS]; x; x = x->hnext)
    if (x->hash == h && strcmp(x->key, key) == 0) return x;
  return NULL;
}

/* x (its key set) goes in at the head of the list and into its bucket */
static void link_entry(mcp_cache *c, mcp_entry *x) {
  x->hash = key_hash(x->key);
  x->prev = NULL;
  x->next = c->head;
  if (c->head) c->head->prev = x;
  c->head = x;
  mcp_entry **b = &c->bucket[x->hash % MCP_BUCKETS];
  x->hnext = *b;
  *b = x;
  c->n++;
}

static void unlink_entry(mcp_cache *c, mcp_entry *x) {
  if (x->prev) x->prev->next = x->next;
  else c->head = x->next;
  if (x->next) x->next->prev = x->prev;
  for (mcp_entry **pp = &c->bucket[x->hash % MCP_BUCKETS]; *pp; pp = &(*pp)->hnext)
    if (*pp == x) {
      *pp = x->hnext;
      break;
    }
  x->next = x->prev = x->hnext = NULL;
  c->n--;
}

/* Ends the session of an unlinked entry (DELETE, when it has one), pushes
 * {key=, value=} onto the Lua list at idx, then frees the entry. */
static void push_evicted(lua_State *L, int idx, mcp_entry *x) {
  if (x->close) send_closes(mcpl_engine_of(L), &x->close, 1, mcpl_state_cancel(L));
  if (x->value) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, x->key); lua_setfield(L, -2, "key");
    lua_pushstring(L, x->value); lua_setfield(L, -2, "value");
    lua_rawseti(L, idx, (lua_Integer)luaL_len(L, idx) + 1);
  }
  entry_free(x);
}

/* Lua may not be called while the mutex is held (an error would leave it
 * locked), so strings are copied in and out under the lock only. */
static char *xstrdup(lua_State *L, const char *s) {
  char *d = strdup(s);
  if (!d) mcpl_lua_error(L, "internal", "out of memory");
  return d;
}

/* mcp.cache_get(key) -> value | nil */
static int l_cache_get(lua_State *L) {
  const char *key = luaL_checkstring(L, 1);
  mcp_cache *c = cache_of(L);
  char *v = NULL;
  pthread_mutex_lock(&c->mu);
  mcp_entry *x = find(c, key);
  if (x && x->value) {
    x->used_ms = mono_ms();
    v = strdup(x->value);
  }
  pthread_mutex_unlock(&c->mu);
  if (v) { lua_pushstring(L, v); free(v); } else lua_pushnil(L);
  return 1;
}

/* mcp.cache_claim(key, wait_ms) -> value | nil, claimed
 * Returns the value when present. Otherwise, when another caller is creating
 * it, waits up to wait_ms for it; when nobody is, marks the key claimed and
 * returns nil, true: the caller must cache_put or cache_release it. */
static int l_cache_claim(lua_State *L) {
  const char *key = luaL_checkstring(L, 1);
  lua_Integer wait = luaL_optinteger(L, 2, 0);
  mcp_cache *c = cache_of(L);
  mcpl_engine *eng = mcpl_engine_of(L);
  const mcpl_cancel *cancel = mcpl_state_cancel(L);
  char *kcopy = xstrdup(L, key);
  mcp_entry *fresh = calloc(1, sizeof *fresh);
  if (!fresh) { free(kcopy); return mcpl_lua_error(L, "internal", "out of memory"); }
  fresh->key = kcopy;
  long deadline = mono_ms() + (long)(wait < 0 ? 0 : wait);
  char *v = NULL;
  int claimed = 0, cancelled = 0;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    mcp_entry *x = find(c, key);
    if (x && x->value) { x->used_ms = mono_ms(); v = strdup(x->value); break; }
    if (!x) {
      fresh->claimed = 1;
      fresh->used_ms = mono_ms();
      link_entry(c, fresh);
      fresh = NULL;
      claimed = 1;
      break;
    }
    long now = mono_ms();
    if (now >= deadline) break; /* still being created elsewhere */
    if (mcpl_cancel_requested(eng, cancel)) { cancelled = 1; break; }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long left = deadline - now;
    if (left > MCP_WAIT_STEP_MS) left = MCP_WAIT_STEP_MS;
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
  }
  pthread_mutex_unlock(&c->mu);
  if (fresh) entry_free(fresh);
  if (cancelled) return mcpl_lua_raise_cancelled(L);
  if (v) { lua_pushstring(L, v); free(v); lua_pushboolean(L, 0); return 2; }
  lua_pushnil(L);
  lua_pushboolean(L, claimed);
  return 2;
}

static mcp_close *read_close(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return NULL;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "url");
  const char *url = luaL_checkstring(L, -1);
  addr_guard g;
  int allow_http;
  lua_getfield(L, idx, "guard");
  http_lua_guard(L, lua_gettop(L), &g, &allow_http);
  lua_pop(L, 1);
  mcp_close *cl = calloc(1, sizeof *cl);
  if (!cl) mcpl_lua_error(L, "internal", "out of memory");
  cl->guard = g;
  cl->allow_http = allow_http;
  cl->url = strdup(url);
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "headers") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING && cl->nlines < 64) {
        char **nl = realloc(cl->lines, (cl->nlines + 1) * sizeof *nl);
        if (nl) {
          cl->lines = nl;
          size_t kl = strlen(lua_tostring(L, -2)), vl = strlen(lua_tostring(L, -1));
          char *line = malloc(kl + vl + 3);
          if (line) {
            memcpy(line, lua_tostring(L, -2), kl);
            memcpy(line + kl, ": ", 2);
            memcpy(line + kl + 2, lua_tostring(L, -1), vl + 1);
            cl->lines[cl->nlines++] = line;
          }
        }
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (!cl->url) { close_free(cl); mcpl_lua_error(L, "internal", "out of memory"); }
  return cl;
}

/* Drops the least recently used settled entry when the cache is full. */
static mcp_entry *evict_lru(mcp_cache *c) {
  mcp_entry *best = NULL;
  for (mcp_entry *x = c->head; x; x = x->next)
    if (!x->claimed && (!best || x->used_ms < best->used_ms)) best = x;
  if (best) unlink_entry(c, best);
  return best;
}

/* Under c->mu: *fresh goes in at the head with *k as its key (both taken
 * over, set to NULL), a full cache first dropping its least recently used
 * entry (*dropped, for the caller to free outside the lock). */
static mcp_entry *link_fresh(mcp_cache *c, mcp_entry **fresh, char **k, mcp_entry **dropped) {
  if (c->n >= MCP_MAX_ENTRIES) *dropped = evict_lru(c);
  mcp_entry *x = *fresh;
  x->key = *k;
  *k = NULL;
  link_entry(c, x);
  *fresh = NULL;
  return x;
}

/* mcp.cache_put(key, value [, close]) -> evicted list
 * close = {url=, headers=, guard=}: the DELETE that ends the session when
 * it is evicted, replaced, swept when idle, or the engine closes. */
static int l_cache_put(lua_State *L) {
  const char *key = luaL_checkstring(L, 1);
  const char *val = luaL_checkstring(L, 2);
  mcp_close *cl = read_close(L, 3);
  mcp_cache *c = cache_of(L);
  char *k = strdup(key), *v = strdup(val);
  mcp_entry *fresh = calloc(1, sizeof *fresh);
  if (!k || !v || !fresh) {
    free(k); free(v); free(fresh); close_free(cl);
    return mcpl_lua_error(L, "internal", "out of memory");
  }
  lua_newtable(L);
  int out = lua_gettop(L);
  mcp_entry *old_close_holder = NULL, *dropped = NULL;
  pthread_mutex_lock(&c->mu);
  mcp_entry *x = find(c, key);
  if (!x) x = link_fresh(c, &fresh, &k, &dropped);
  if (x->close && x->close != cl) {
    /* a replaced session: hand its old value back so it can be ended */
    old_close_holder = calloc(1, sizeof *old_close_holder);
    if (old_close_holder) {
      old_close_holder->key = strdup(x->key);
      old_close_holder->value = x->value ? strdup(x->value) : NULL;
      old_close_holder->close = x->close;
      x->close = NULL;
    }
  }
  free(x->value);
  x->value = v;
  close_free(x->close);
  x->close = cl;
  x->claimed = 0;
  x->used_ms = mono_ms();
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  free(k);
  if (fresh) entry_free(fresh);
  if (old_close_holder) {
    if (old_close_holder->key) push_evicted(L, out, old_close_holder);
    else entry_free(old_close_holder);
  }
  if (dropped) push_evicted(L, out, dropped);
  return 1;
}

/* mcp.cache_add(key, delta) -> n: a counter shared by every Lua state of the
 * engine (e.g. the calls in flight in one session), changed atomically. A
 * counter above 0 is pinned (never evicted nor swept, so it cannot lose
 * count); at 0 its entry is gone. */
static int l_cache_add(lua_State *L) {
  const char *key = luaL_checkstring(L, 1);
  lua_Integer d = luaL_checkinteger(L, 2);
  mcp_cache *c = cache_of(L);
  char *k = strdup(key), *v = NULL;
  mcp_entry *fresh = calloc(1, sizeof *fresh), *drop = NULL, *dropped = NULL;
  if (!k || !fresh) {
    free(k); free(fresh);
    return mcpl_lua_error(L, "internal", "out of memory");
  }
  pthread_mutex_lock(&c->mu);
  mcp_entry *x = find(c, key);
  long long n = x && x->value ? strtoll(x->value, NULL, 10) : 0;
  n += (long long)d;
  if (n <= 0) {
    n = 0;
    if (x) { unlink_entry(c, x); drop = x; }
  } else {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", n);
    v = strdup(buf);
    if (v) {
      if (!x) x = link_fresh(c, &fresh, &k, &dropped);
      free(x->value);
      x->value = v;
      x->claimed = 1;
      x->used_ms = mono_ms();
    }
  }
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  int nomem = n > 0 && !v;
  free(k);
  if (fresh) entry_free(fresh);
  if (drop) entry_free(drop);
  if (dropped) {
    lua_newtable(L);
    push_evicted(L, lua_gettop(L), dropped);
    lua_pop(L, 1);
  }
  if (nomem) return mcpl_lua_error(L, "internal", "out of memory");
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* mcp.cache_release(key): gives up a claim without a value. */
static int l_cache_release(lua_State *L) {
  const char *key = luaL_checkstring(L, 1);
  mcp_cache *c = cache_of(L);
  mcp_entry *drop = NULL;
  pthread_mutex_lock(&c->mu);
  mcp_entry *x = find(c, key);
  if (x) {
    x->claimed = 0;
    if (!x->value) { unlink_entry(c, x); drop = x; }
  }
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (drop) entry_free(drop);
  return 0;
}

/* Unlinks entries under prefix (all of them when idle_ms < 0, else those
 * idle longer than idle_ms), ends their sessions and returns them as a Lua
 * list {key=, value=}. */
static int remove_where(lua_State *L, const char *prefix, long idle_ms) {
  mcp_cache *c = cache_of(L);
  size_t pl = strlen(prefix);
  long now = mono_ms();
  mcp_entry *gone = NULL;
  pthread_mutex_lock(&c->mu);
  for (mcp_entry *x = c->head, *next; x; x = next) {
    next = x->next;
    int hit = strncmp(x->key, prefix, pl) == 0 &&
              (idle_ms < 0 || (x->value && now - x->used_ms > idle_ms));
    if (hit && !x->claimed) {
      unlink_entry(c, x);
      x->next = gone; /* the list of those gone */
      gone = x;
    }
  }
  pthread_mutex_unlock(&c->mu);
  lua_newtable(L);
  int out = lua_gettop(L);
  while (gone) {
    mcp_entry *next = gone->next;
    push_evicted(L, out, gone);
    gone = next;
  }
  return 1;
}

/* mcp.cache_evict(prefix) -> {{key=, value=}, ...} */
static int l_cache_evict(lua_State *L) {
  return remove_where(L, luaL_checkstring(L, 1), -1);
}

/* mcp.cache_sweep(idle_ms, prefix [, every_ms]) -> {{key=, value=}, ...}:
 * entries under prefix idle longer than idle_ms (sessions evicted when
 * idle). With every_ms, the walk runs at most once in that time, engine-wide
 * (an empty list otherwise): calls may ask on every request and pay a
 * clock read, not a walk of the whole cache under its lock. */
static int l_cache_sweep(lua_State *L) {
  lua_Integer idle = luaL_checkinteger(L, 1);
  const char *prefix = luaL_checkstring(L, 2);
  lua_Integer every = luaL_optinteger(L, 3, 0);
  if (every > 0) {
    mcp_cache *c = cache_of(L);
    long now = mono_ms();
    pthread_mutex_lock(&c->mu);
    int due = c->swept_ms == 0 || now - c->swept_ms >= (long)every;
    if (due) c->swept_ms = now;
    pthread_mutex_unlock(&c->mu);
    if (!due) {
      lua_newtable(L);
      return 1;
    }
  }
  return remove_where(L, prefix, (long)(idle < 0 ? 0 : idle));
}

/* mcp.cache_del(key) -> value | nil (the entry is gone; no DELETE sent:
 * for sessions the server already ended, or ones the caller ends itself) */
static int l_cache_del(lua_State *L) {
  const char *key = luaL_checkstring(L, 1);
  mcp_cache *c = cache_of(L);
  mcp_entry *drop = NULL;
  pthread_mutex_lock(&c->mu);
  mcp_entry *x = find(c, key);
  if (x && !x->claimed) { unlink_entry(c, x); drop = x; }
  pthread_mutex_unlock(&c->mu);
  if (drop && drop->value) lua_pushstring(L, drop->value); else lua_pushnil(L);
  if (drop) entry_free(drop);
  return 1;
}

/* ---- SSE parser userdata (tests, fuzzing, callers with their own bytes) ---- */

#define SSE_MT "mcpl.sse_parser"

static int collect_event(void *ud, const sse_event *ev) {
  lua_State *L = ud;
  lua_createtable(L, 0, 4);
  lua_pushstring(L, ev->event); lua_setfield(L, -2, "event");
  lua_pushlstring(L, ev->data, ev->data_len); lua_setfield(L, -2, "data");
  lua_pushstring(L, ev->id); lua_setfield(L, -2, "id");
  lua_pushboolean(L, ev->has_id); lua_setfield(L, -2, "has_id");
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  return 0;
}

/* mcp.sse_parser([max_event]) -> parser; parser:feed(bytes) -> {events} */
static int l_sse_new(lua_State *L) {
  lua_Integer max = luaL_optinteger(L, 1, 0);
  if (max < 0) return mcpl_lua_error(L, "invalid_argument", "max_event must not be negative");
  sse_parser *p = lua_newuserdatauv(L, sizeof *p, 0);
  sse_init(p, (size_t)max);
  luaL_setmetatable(L, SSE_MT);
  return 1;
}

static int l_sse_feed(lua_State *L) {
  sse_parser *p = luaL_checkudata(L, 1, SSE_MT);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  lua_newtable(L);
  int rc = sse_feed(p, s, n, collect_event, L);
  if (rc == SSE_TOO_LARGE) return mcpl_lua_error(L, "too_large", "an SSE event exceeds the size limit");
  if (rc == SSE_NOMEM) return mcpl_lua_error(L, "internal", "out of memory");
  return 1;
}

static int l_sse_state(lua_State *L) {
  sse_parser *p = luaL_checkudata(L, 1, SSE_MT);
  lua_pushstring(L, sse_last_id(p));
  lua_pushinteger(L, sse_retry(p));
  return 2;
}

static int l_sse_gc(lua_State *L) {
  sse_free(luaL_checkudata(L, 1, SSE_MT));
  return 0;
}

int luaopen_mcpl_mcp(lua_State *L) {
  mcp_cache *cache = mcpl_engine_slot(mcpl_engine_of(L), MCPL_AREA_MCP);
  mcp_pump_register(L, cache ? cache->pumps : NULL);
  if (luaL_newmetatable(L, SSE_MT)) {
    static const luaL_Reg m[] = {{"feed", l_sse_feed}, {"state", l_sse_state}, {NULL, NULL}};
    luaL_newlib(L, m);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_sse_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {
    {"stream", http_stream_lua},
    {"pump", mcp_l_pump},
    {"unpark", mcp_l_unpark},
    {"park_drop", mcp_l_park_drop},
    {"sse_parser", l_sse_new},
    {"cache_get", l_cache_get},
    {"cache_claim", l_cache_claim},
    {"cache_put", l_cache_put},
    {"cache_release", l_cache_release},
    {"cache_add", l_cache_add},
    {"cache_evict", l_cache_evict},
    {"cache_sweep", l_cache_sweep},
    {"cache_del", l_cache_del},
    {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
