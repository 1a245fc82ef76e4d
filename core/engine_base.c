/* engine_base.c: the engine's own facts every part reads: options, the log,
 * per-area slots, interrupt and cancellation, call handles. Below the Lua states. */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "engine_base.h"

#define POOL_MAX 256

static const char *const option_names[] = {
  "db", "key_file", "policies", "lua_dir", "ca_file", "pool_size", "log_level",
  "oauth_redirect_uri", "oauth_client_metadata_url", "log_file", NULL
};
#define NOPTS (sizeof option_names / sizeof option_names[0] - 1)
_Static_assert(NOPTS == MCPL_NOPTS, "MCPL_NOPTS counts option_names");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the interrupt flag is set from signal handlers");

struct mcpl_options {
  char *val[NOPTS];
  mcpl_log_fn log_fn;
  void *log_ud;
  mcpl_input_fn input_fn;  /* the default input handler (mcpl_options_set_input) */
  void *input_ud;
  unsigned input_methods;
};

/* struct mcpl_engine (engine.c) starts with its base, checked there. */
static struct mcpl_engine_base *base_of(mcpl_engine *e) {
  return (struct mcpl_engine_base *)(void *)e;
}

const char *mcpl_version(void) { return MCPL_VERSION; }

void mcpl_free(void *p) { free(p); }

/* ---- options ---------------------------------------------------------- */

static int option_index(const char *name) {
  if (!name) return -1;
  for (size_t i = 0; i < NOPTS; i++)
    if (strcmp(option_names[i], name) == 0) return (int)i;
  return -1;
}

mcpl_options *mcpl_options_new(void) { return calloc(1, sizeof(mcpl_options)); }

int mcpl_options_set(mcpl_options *o, const char *name, const char *value) {
  int i = option_index(name);
  if (!o || i < 0) return MCPL_E_INVALID_ARGUMENT;
  if (value && strlen(value) > 4096) return MCPL_E_INVALID_ARGUMENT;
  if (value && strcmp(name, "pool_size") == 0) {
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (errno || *end || n < 1 || n > POOL_MAX) return MCPL_E_INVALID_ARGUMENT;
  }
  if (value && strcmp(name, "log_level") == 0 && strcmp(value, "debug") &&
      strcmp(value, "info") && strcmp(value, "warn") && strcmp(value, "error"))
    return MCPL_E_INVALID_ARGUMENT;
  char *copy = NULL;
  if (value && !(copy = strdup(value))) return MCPL_E_INTERNAL;
  free(o->val[i]);
  o->val[i] = copy;
  return MCPL_OK;
}

void mcpl_options_set_log(mcpl_options *o, mcpl_log_fn fn, void *ud) {
  if (!o) return;
  o->log_fn = fn;
  o->log_ud = ud;
}

void mcpl_options_set_input(mcpl_options *o, mcpl_input_fn fn, void *ud, unsigned methods) {
  if (!o) return;
  o->input_fn = fn;
  o->input_ud = ud;
  o->input_methods = fn ? methods : 0;
}

void mcpl_engine_input(mcpl_engine *e, mcpl_input_fn *fn, void **ud, unsigned *methods) {
  struct mcpl_engine_base *b = base_of(e);
  *fn = b->input_fn;
  *ud = b->input_ud;
  *methods = b->input_methods;
}

void mcpl_options_free(mcpl_options *o) {
  if (!o) return;
  for (size_t i = 0; i < NOPTS; i++) free(o->val[i]);
  free(o);
}

const char *mcpl_engine_opt(mcpl_engine *e, const char *name) {
  int i = option_index(name);
  return (e && i >= 0) ? base_of(e)->opt[i] : NULL;
}

/* ---- slots, areas, interrupt ------------------------------------------ */

void *mcpl_engine_slot(mcpl_engine *e, enum mcpl_area a) {
  assert(a >= 0 && a < MCPL_AREA_COUNT);
  return base_of(e)->slot[a];
}

void mcpl_engine_set_slot(mcpl_engine *e, enum mcpl_area a, void *p) {
  assert(a >= 0 && a < MCPL_AREA_COUNT);
  base_of(e)->slot[a] = p;
}

const mcpl_area_def *mcpl_engine_areas(mcpl_engine *e) { return base_of(e)->areas; }

void mcpl_engine_interrupt(mcpl_engine *e) {
  if (!e) return;
  atomic_store(&base_of(e)->interrupted, 1);
  if (base_of(e)->arm_states) base_of(e)->arm_states(e);
}
void mcpl_engine_clear_interrupt(mcpl_engine *e) {
  if (e) atomic_store_explicit(&base_of(e)->interrupted, 0, memory_order_relaxed);
}
int mcpl_engine_interrupted(mcpl_engine *e) {
  return e ? atomic_load_explicit(&base_of(e)->interrupted, memory_order_relaxed) : 0;
}

void mcpl_cancel_request(mcpl_cancel *c) {
  atomic_store(&c->requested, 1);
  struct lua_State *L = atomic_load(&c->L);
  if (L && c->arm) c->arm(L);
}

int mcpl_cancel_requested(mcpl_engine *e, const mcpl_cancel *c) {
  return (c && atomic_load_explicit(&c->requested, memory_order_relaxed)) ||
         mcpl_engine_interrupted(e);
}

/* ---- logging ---------------------------------------------------------- */

static int level_num(const char *l) {
  if (!l) return 2;
  if (strcmp(l, "debug") == 0) return 0;
  if (strcmp(l, "info") == 0) return 1;
  if (strcmp(l, "warn") == 0) return 2;
  return 3;
}

int mcpl_log_enabled(mcpl_engine *e, const char *level) {
  return e && level_num(level) >= base_of(e)->log_level;
}

void mcpl_log(mcpl_engine *e, const char *level, const char *fmt, ...) {
  if (!mcpl_log_enabled(e, level)) return;
  struct mcpl_engine_base *b = base_of(e);
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&b->log_mu);
  if (b->log_fn) b->log_fn(b->log_ud, level, buf);
  else {
    FILE *f = b->log_file ? b->log_file : stderr;
    fprintf(f, "mcplink: %s: %s\n", level, buf);
    fflush(f);
  }
  pthread_mutex_unlock(&b->log_mu);
}

/* ---- set up and tear down --------------------------------------------- */

int mcpl_engine_base_init(struct mcpl_engine_base *b, const mcpl_options *o,
                          const mcpl_area_def *areas, char **err) {
  pthread_mutex_init(&b->log_mu, NULL);
  b->log_level = 2;
  b->areas = areas;
  if (o) {
    for (size_t i = 0; i < NOPTS; i++)
      if (o->val[i] && !(b->opt[i] = strdup(o->val[i]))) {
        if (err) *err = mcpl_json_error("internal", "out of memory", NULL);
        return -1;
      }
    b->log_fn = o->log_fn;
    b->log_ud = o->log_ud;
    b->input_fn = o->input_fn;
    b->input_ud = o->input_ud;
    b->input_methods = o->input_methods;
  }
  const char *level = b->opt[option_index("log_level")];
  const char *file = b->opt[option_index("log_file")];
  if (level) b->log_level = level_num(level);
  if (file && !(b->log_file = fopen(file, "a"))) {
    if (err) *err = mcpl_json_error("invalid_argument", "cannot open log_file", NULL);
    return -1;
  }
  return 0;
}

void mcpl_engine_base_fini(struct mcpl_engine_base *b) {
  for (size_t i = 0; i < NOPTS; i++) free(b->opt[i]);
  if (b->log_file) fclose(b->log_file);
  pthread_mutex_destroy(&b->log_mu);
}

/* ---- call handles ------------------------------------------------------- */

#define CALL_MAX_REPLY (1024 * 1024)

mcpl_call *mcpl_call_new(void) {
  mcpl_call *c = calloc(1, sizeof *c);
  if (c) pthread_mutex_init(&c->mu, NULL);
  return c;
}

void mcpl_call_free(mcpl_call *c) {
  if (!c) return;
  assert(!c->running);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

int mcpl_call_cancel(mcpl_call *c) {
  if (!c) return MCPL_E_INVALID_ARGUMENT;
  pthread_mutex_lock(&c->mu);
  c->cancelled = 1;
  if (c->slot) mcpl_cancel_request(c->slot);
  pthread_mutex_unlock(&c->mu);
  return MCPL_OK;
}

void mcpl_call_set_events(mcpl_call *c, mcpl_event_fn fn, void *ud) {
  if (!c) return;
  c->event_fn = fn;
  c->event_ud = ud;
}

void mcpl_call_set_input(mcpl_call *c, mcpl_input_fn fn, void *ud, unsigned methods) {
  if (!c) return;
  c->input_fn = fn;
  c->input_ud = ud;
  c->input_methods = fn ? methods : 0;
}

int mcpl_reply_set(mcpl_reply *r, const char *json) {
  if (!r || !json || r->json) return MCPL_E_INVALID_ARGUMENT;
  size_t n = strnlen(json, CALL_MAX_REPLY + 1);
  if (n > CALL_MAX_REPLY) return MCPL_E_TOO_LARGE;
  r->json = malloc(n + 1);
  if (!r->json) return MCPL_E_INTERNAL;
  memcpy(r->json, json, n + 1);
  return MCPL_OK;
}

int mcpl_call_attach(mcpl_call *c, mcpl_cancel *slot) {
  pthread_mutex_lock(&c->mu);
  int busy = c->running;
  if (!busy) {
    c->running = 1;
    c->slot = slot;
    if (c->cancelled) mcpl_cancel_request(slot);
  }
  pthread_mutex_unlock(&c->mu);
  return busy ? -1 : 0;
}

void mcpl_call_detach(mcpl_call *c) {
  pthread_mutex_lock(&c->mu);
  c->running = 0;
  c->slot = NULL;
  pthread_mutex_unlock(&c->mu);
}

int mcpl_call_cancelled(mcpl_call *c) {
  pthread_mutex_lock(&c->mu);
  int v = c->cancelled;
  pthread_mutex_unlock(&c->mu);
  return v;
}
