/* bind_policy.c: the Lua `policy` module: the engine-wide policy set (compiled
 * and self-checked on reload) and the LRU cache of per-tenant sandbox states. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <lauxlib.h>
#include "policy.h"

#define POL_MAX_FILE (1024 * 1024)
#define POL_MAX_TENANT_FILES 10000
#define POL_WHY 512

static const char BUILTIN_CHUNK[] = "=[built-in default.lua]";

struct pol_file {
  char *tenant; /* NULL for the default */
  char *chunk;  /* "@path" */
  char *src;
  size_t len;
  char **fns;   /* function names found by the self-check */
};

/* An immutable, refcounted policy set: a reload builds a new one. */
struct pol_set {
  int refs;
  long gen;
  char *dir;
  int builtin;
  struct pol_file def;
  struct pol_file *tenants; /* sorted by name */
  size_t ntenants;
};

struct pol_entry {
  char key[72]; /* tenant name, "" for the default */
  struct pol_set *set;
  lua_State *P; /* NULL until built, and again after a kill */
  pthread_mutex_t mu;
  int refs;     /* the cache holds one while linked */
  int linked;
  struct pol_entry *prev, *next;
};

typedef struct {
  mcpl_engine *e;
  pthread_mutex_t mu;        /* the set pointer, the cache list, refcounts */
  pthread_mutex_t reload_mu; /* one reload at a time */
  struct pol_set *cur;
  struct pol_entry *head, *tail;
  int n, max;
  long long budget;
  size_t mem;
  long gen;
} pol_engine;

int pol_valid_tenant(const char *t) {
  if (!t || !*t) return 0;
  size_t n = 0;
  for (const char *p = t; *p; p++, n++) {
    int alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
    if (!alnum && (p == t || (*p != '.' && *p != '_' && *p != '-'))) return 0;
  }
  return n <= 64;
}

static pol_engine *pol_of(mcpl_engine *e) {
  return e ? mcpl_engine_slot(e, MCPL_AREA_POLICY) : NULL;
}

/* ---- policy sets ----------------------------------------------------------- */

static void pol_file_free(struct pol_file *f) {
  free(f->tenant);
  free(f->chunk);
  free(f->src);
  for (char **p = f->fns; p && *p; p++) free(*p);
  free(f->fns);
}

static void pol_set_free(struct pol_set *s) {
  if (!s) return;
  pol_file_free(&s->def);
  for (size_t i = 0; i < s->ntenants; i++) pol_file_free(&s->tenants[i]);
  free(s->tenants);
  free(s->dir);
  free(s);
}

static char *pol_fmt(const char *a, const char *b, const char *c) {
  size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s%s%s", a, b, c);
  return s;
}

/* Reads a whole regular file. 0 ok, ENOENT missing, else an error. */
static int pol_read(const char *path, char **out, size_t *len, char *why, size_t n) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return ENOENT;
    snprintf(why, n, "%s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  int rc = -1;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(why, n, "%s: not a regular file", path);
  } else if (st.st_size > POL_MAX_FILE) {
    snprintf(why, n, "%s: larger than %d bytes", path, POL_MAX_FILE);
  } else if (!(*out = malloc((size_t)st.st_size + 1))) {
    snprintf(why, n, "%s: out of memory", path);
  } else {
    *len = fread(*out, 1, (size_t)st.st_size, f);
    (*out)[*len] = 0;
    rc = 0;
  }
  fclose(f);
  return rc;
}

static int pol_builtin(struct pol_file *f) {
  const char *src = "return {}\n";
  for (const struct mcpl_embedded *m = mcpl_embedded_policies; m->name; m++)
    if (strcmp(m->name, "default") == 0) src = m->src;
  f->src = strdup(src);
  f->len = f->src ? strlen(f->src) : 0;
  f->chunk = strdup(BUILTIN_CHUNK);
  return f->src && f->chunk ? 0 : -1;
}

static int pol_cmp_file(const void *a, const void *b) {
  return strcmp(((const struct pol_file *)a)->tenant, ((const struct pol_file *)b)->tenant);
}

/* Tenant files: tenants/<name>.lua with a valid tenant name; *_test.lua
 * are the policy tests run by the test suite, not policies. */
static int pol_read_tenants(struct pol_set *s, char *why, size_t n) {
  char *tdir = pol_fmt(s->dir, "/", "tenants");
  if (!tdir) { snprintf(why, n, "out of memory"); return -1; }
  DIR *d = opendir(tdir);
  if (!d) {
    int missing = errno == ENOENT;
    if (!missing) snprintf(why, n, "%s: %s", tdir, strerror(errno));
    free(tdir);
    return missing ? 0 : -1;
  }
  int rc = 0;
  size_t cap = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d))) {
    char name[256];
    size_t len = strlen(de->d_name);
    if (len < 5 || len >= sizeof name || strcmp(de->d_name + len - 4, ".lua") != 0) continue;
    memcpy(name, de->d_name, len - 4);
    name[len - 4] = 0;
    if (!pol_valid_tenant(name) || (len - 4 >= 5 && strcmp(name + len - 9, "_test") == 0)) continue;
    if (s->ntenants >= POL_MAX_TENANT_FILES) {
      snprintf(why, n, "%s: more than %d tenant files", tdir, POL_MAX_TENANT_FILES);
      rc = -1;
      break;
    }
    if (s->ntenants == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      struct pol_file *t = realloc(s->tenants, ncap * sizeof *t);
      if (!t) { snprintf(why, n, "out of memory"); rc = -1; break; }
      s->tenants = t;
      cap = ncap;
    }
    struct pol_file *f = &s->tenants[s->ntenants];
    memset(f, 0, sizeof *f);
    char *path = pol_fmt(tdir, "/", de->d_name);
    f->tenant = strdup(name);
    f->chunk = path ? pol_fmt("@", path, "") : NULL;
    s->ntenants++;
    if (!path || !f->tenant || !f->chunk) { snprintf(why, n, "out of memory"); rc = -1; }
    else if ((rc = pol_read(path, &f->src, &f->len, why, n)) != 0) {
      if (rc == ENOENT) snprintf(why, n, "%s: vanished while reading", path);
      rc = -1;
    }
    free(path);
  }
  closedir(d);
  free(tdir);
  if (rc == 0 && s->ntenants > 1) qsort(s->tenants, s->ntenants, sizeof *s->tenants, pol_cmp_file);
  return rc;
}

/* Loads f (after the default when f is a tenant file) into a fresh
 * sandbox: the file must compile and return a table of functions. */
static int pol_check(pol_engine *pe, struct pol_set *s, struct pol_file *f, char *why, size_t n) {
  lua_State *P = sb_new(pe->e, pe->mem, pe->budget, why, n);
  if (!P) return -1;
  int rc = sb_load(P, s->def.src, s->def.len, s->def.chunk, 0, why, n);
  if (rc == SB_OK && f != &s->def) rc = sb_load(P, f->src, f->len, f->chunk, 1, why, n);
  if (rc == SB_OK && !(f->fns = sb_function_names(P))) { snprintf(why, n, "out of memory"); rc = SB_FAIL; }
  sb_close(P);
  return rc == SB_OK ? 0 : -1;
}

static struct pol_set *pol_set_load(pol_engine *pe, char *why, size_t n) {
  const char *dir = mcpl_engine_opt(pe->e, "policies");
  struct pol_set *s = calloc(1, sizeof *s);
  if (!s) { snprintf(why, n, "out of memory"); return NULL; }
  s->refs = 1;
  if (!dir || !*dir) {
    s->builtin = 1;
    if (pol_builtin(&s->def) != 0) { snprintf(why, n, "out of memory"); goto fail; }
  } else {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
      snprintf(why, n, "policies directory not found: %s", dir);
      goto fail;
    }
    if (!(s->dir = strdup(dir))) { snprintf(why, n, "out of memory"); goto fail; }
    char *path = pol_fmt(dir, "/", "default.lua");
    if (!path) { snprintf(why, n, "out of memory"); goto fail; }
    int r = pol_read(path, &s->def.src, &s->def.len, why, n);
    s->def.chunk = pol_fmt("@", path, "");
    free(path);
    if (r == ENOENT) {
      /* A directory with tenant files only still has a default. */
      free(s->def.chunk);
      s->def.chunk = NULL;
      s->builtin = 1;
      if (pol_builtin(&s->def) != 0) { snprintf(why, n, "out of memory"); goto fail; }
    } else if (r != 0 || !s->def.chunk) {
      if (r == 0) snprintf(why, n, "out of memory");
      goto fail;
    }
    if (pol_read_tenants(s, why, n) != 0) goto fail;
  }
  if (pol_check(pe, s, &s->def, why, n) != 0) goto fail;
  for (size_t i = 0; i < s->ntenants; i++)
    if (pol_check(pe, s, &s->tenants[i], why, n) != 0) goto fail;
  return s;
fail:
  pol_set_free(s);
  return NULL;
}

static struct pol_file *pol_find_file(struct pol_set *s, const char *tenant) {
  if (!tenant || !s->ntenants) return NULL;
  struct pol_file key = {0};
  key.tenant = (char *)tenant;
  return bsearch(&key, s->tenants, s->ntenants, sizeof key, pol_cmp_file);
}

/* ---- the state cache (callers hold pe->mu) --------------------------------- */

static void pol_entry_free(struct pol_entry *en) {
  sb_close(en->P);
  pthread_mutex_destroy(&en->mu);
  free(en);
}

static void pol_set_unref(struct pol_set *s) {
  if (s && --s->refs == 0) pol_set_free(s);
}

/* Drops one reference; returns the entry when the caller must free it
 * (after unlocking: closing a state is not instant). */
static struct pol_entry *pol_entry_unref(struct pol_entry *en) {
  if (--en->refs > 0) return NULL;
  pol_set_unref(en->set);
  en->set = NULL;
  return en;
}

static void pol_unlink(pol_engine *pe, struct pol_entry *en) {
  if (en->prev) en->prev->next = en->next; else pe->head = en->next;
  if (en->next) en->next->prev = en->prev; else pe->tail = en->prev;
  en->prev = en->next = NULL;
  en->linked = 0;
  pe->n--;
}

static void pol_push_front(pol_engine *pe, struct pol_entry *en) {
  en->prev = NULL;
  en->next = pe->head;
  if (pe->head) pe->head->prev = en; else pe->tail = en;
  pe->head = en;
  en->linked = 1;
  pe->n++;
}

/* Unlinks every cached state (reload, limit change, close); states in use
 * are freed by their last user. Returns a list (via next) to free. */
static struct pol_entry *pol_drop_all(pol_engine *pe) {
  struct pol_entry *dead = NULL;
  while (pe->head) {
    struct pol_entry *en = pe->head;
    pol_unlink(pe, en);
    if (pol_entry_unref(en)) { en->next = dead; dead = en; }
  }
  return dead;
}

static void pol_free_list(struct pol_entry *en) {
  while (en) {
    struct pol_entry *next = en->next;
    pol_entry_free(en);
    en = next;
  }
}

/* Finds or creates the entry for key, most recently used first; evicts the
 * least recently used beyond the bound. The caller gets one reference. */
static struct pol_entry *pol_acquire(pol_engine *pe, const char *key, long long *budget,
                                     size_t *mem) {
  struct pol_entry *en, *dead = NULL;
  pthread_mutex_lock(&pe->mu);
  for (en = pe->head; en && strcmp(en->key, key) != 0; en = en->next) {}
  if (en) {
    pol_unlink(pe, en);
  } else if ((en = calloc(1, sizeof *en))) {
    snprintf(en->key, sizeof en->key, "%s", key);
    pthread_mutex_init(&en->mu, NULL);
    en->set = pe->cur;
    en->set->refs++;
    en->refs = 1; /* the cache's */
  }
  if (en) {
    pol_push_front(pe, en);
    en->refs++;
  }
  while (pe->n > pe->max && pe->tail != en) {
    struct pol_entry *v = pe->tail;
    pol_unlink(pe, v);
    if (pol_entry_unref(v)) { v->next = dead; dead = v; }
  }
  *budget = pe->budget;
  *mem = pe->mem;
  pthread_mutex_unlock(&pe->mu);
  pol_free_list(dead);
  return en;
}

static void pol_release(pol_engine *pe, struct pol_entry *en) {
  pthread_mutex_lock(&pe->mu);
  struct pol_entry *dead = pol_entry_unref(en);
  pthread_mutex_unlock(&pe->mu);
  if (dead) pol_entry_free(dead);
}

/* Builds the tenant's state: the default file, then the tenant's own file
 * (with `default`) when it has one. */
static lua_State *pol_build(pol_engine *pe, struct pol_entry *en, long long budget, size_t mem,
                            char *why, size_t n) {
  struct pol_set *s = en->set;
  lua_State *P = sb_new(pe->e, mem, budget, why, n);
  if (!P) return NULL;
  struct pol_file *f = en->key[0] ? pol_find_file(s, en->key) : NULL;
  int rc = sb_load(P, s->def.src, s->def.len, s->def.chunk, 0, why, n);
  if (rc == SB_OK && f) rc = sb_load(P, f->src, f->len, f->chunk, 1, why, n);
  if (rc != SB_OK) { sb_close(P); return NULL; }
  return P;
}

int pol_call(mcpl_engine *e, lua_State *E, const char *tenant, const char *fname, int input_idx,
             char *why, size_t n) {
  pol_engine *pe = pol_of(e);
  long long budget;
  size_t mem;
  int rc = SB_FAIL;
  input_idx = lua_absindex(E, input_idx);
  if (!pe) { snprintf(why, n, "policy runner not initialised"); return SB_FAIL; }
  if (tenant && !pol_valid_tenant(tenant)) {
    snprintf(why, n, "invalid tenant name");
    mcpl_log(e, "warn", "policy %s: refused: invalid tenant name", fname);
    return SB_FAIL;
  }
  struct pol_entry *en = pol_acquire(pe, tenant ? tenant : "", &budget, &mem);
  if (!en) { snprintf(why, n, "out of memory"); return SB_FAIL; }
  pthread_mutex_lock(&en->mu);
  if (!en->P) en->P = pol_build(pe, en, budget, mem, why, n);
  if (en->P) {
    rc = sb_call(en->P, E, fname, input_idx, why, n);
    /* After any kill the state is suspect: rebuilt on next use. */
    if (rc == SB_KILLED || sb_killed(en->P)) {
      rc = SB_KILLED;
      sb_close(en->P);
      en->P = NULL;
    }
  }
  pthread_mutex_unlock(&en->mu);
  pol_release(pe, en);
  if (rc == SB_FAIL || rc == SB_KILLED)
    mcpl_log(e, "warn", "policy %s for %s denied: %s", fname, tenant ? tenant : "(default)", why);
  return rc;
}

int pol_reload(mcpl_engine *e, char **err) {
  pol_engine *pe = pol_of(e);
  char why[POL_WHY];
  *err = NULL;
  if (!pe) { *err = strdup("policy runner not initialised"); return -1; }
  pthread_mutex_lock(&pe->reload_mu);
  struct pol_set *s = pol_set_load(pe, why, sizeof why);
  if (!s) {
    pthread_mutex_unlock(&pe->reload_mu);
    mcpl_log(e, "error", "policy reload failed, keeping the previous policies: %s", why);
    *err = strdup(why);
    return -1;
  }
  pthread_mutex_lock(&pe->mu);
  struct pol_set *old = pe->cur;
  s->gen = ++pe->gen;
  pe->cur = s;
  struct pol_entry *dead = pol_drop_all(pe);
  pol_set_unref(old);
  pthread_mutex_unlock(&pe->mu);
  pthread_mutex_unlock(&pe->reload_mu);
  pol_free_list(dead);
  mcpl_log(e, "info", "policies loaded: generation %ld, %zu tenant file(s)%s", s->gen,
           s->ntenants, s->builtin ? ", built-in default" : "");
  return 0;
}

void pol_set_limits(mcpl_engine *e, long long budget, size_t mem_cap, int max_states) {
  pol_engine *pe = pol_of(e);
  if (!pe) return;
  pthread_mutex_lock(&pe->mu);
  if (budget > 0) pe->budget = budget;
  if (mem_cap > 0) pe->mem = mem_cap;
  if (max_states > 0) pe->max = max_states;
  struct pol_entry *dead = pol_drop_all(pe);
  pthread_mutex_unlock(&pe->mu);
  pol_free_list(dead);
}

int pol_cached_states(mcpl_engine *e) {
  pol_engine *pe = pol_of(e);
  if (!pe) return 0;
  pthread_mutex_lock(&pe->mu);
  int n = pe->n;
  pthread_mutex_unlock(&pe->mu);
  return n;
}

/* ---- engine lifecycle ------------------------------------------------------- */

static void pol_destroy(pol_engine *pe) {
  struct pol_entry *dead = pol_drop_all(pe);
  pol_free_list(dead);
  pol_set_unref(pe->cur);
  pthread_mutex_destroy(&pe->mu);
  pthread_mutex_destroy(&pe->reload_mu);
  free(pe);
}

int policy_engine_init(mcpl_engine *e, char **err) {
  pol_engine *pe = calloc(1, sizeof *pe);
  if (!pe) { *err = mcpl_json_error("internal", "out of memory", NULL); return -1; }
  pe->e = e;
  pe->max = POL_DEFAULT_MAX_STATES;
  pe->budget = SB_DEFAULT_BUDGET;
  pe->mem = SB_DEFAULT_MEMORY;
  pthread_mutex_init(&pe->mu, NULL);
  pthread_mutex_init(&pe->reload_mu, NULL);
  mcpl_engine_set_slot(e, MCPL_AREA_POLICY, pe);
  char *why = NULL;
  /* A broken policy set fails the open, like broken engine Lua: better
   * than an engine whose every decision is a deny nobody expected. */
  if (pol_reload(e, &why) != 0) {
    *err = mcpl_json_error("invalid_argument", why ? why : "policies failed to load", "policies");
    free(why);
    mcpl_engine_set_slot(e, MCPL_AREA_POLICY, NULL);
    pol_destroy(pe);
    return -1;
  }
  return 0;
}

void policy_engine_fini(mcpl_engine *e) {
  pol_engine *pe = pol_of(e);
  if (!pe) return;
  mcpl_engine_set_slot(e, MCPL_AREA_POLICY, NULL);
  pol_destroy(pe);
}

/* ---- the Lua module ------------------------------------------------------------ */

static pol_engine *pol_check_engine(lua_State *L) {
  pol_engine *pe = pol_of(mcpl_engine_of(L));
  if (!pe) mcpl_lua_error(L, "internal", "policy runner not initialised");
  return pe;
}

static const char *pol_opt_tenant(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return NULL;
  if (lua_type(L, idx) != LUA_TSTRING) mcpl_lua_error(L, "invalid_argument", "tenant must be a string or nil");
  return lua_tostring(L, idx);
}

/* policy.call(tenant, fname, input) -> result | nil, reason */
static int l_call(lua_State *L) {
  pol_check_engine(L);
  const char *tenant = pol_opt_tenant(L, 1);
  const char *fname = luaL_checkstring(L, 2);
  lua_settop(L, 3);
  char why[POL_WHY];
  int rc = pol_call(mcpl_engine_of(L), L, tenant, fname, 3, why, sizeof why);
  if (rc == SB_OK) return 1;
  lua_pushnil(L);
  lua_pushstring(L, why);
  return 2;
}

/* policy.reload() -> true | nil, error */
static int l_reload(lua_State *L) {
  pol_check_engine(L);
  char *err = NULL;
  if (pol_reload(mcpl_engine_of(L), &err) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, err ? err : "out of memory");
  free(err);
  return 2;
}

/* Takes a reference to the current set (so no lock is held while Lua
 * allocates, which may raise). */
static struct pol_set *pol_cur_ref(pol_engine *pe) {
  pthread_mutex_lock(&pe->mu);
  struct pol_set *s = pe->cur;
  s->refs++;
  pthread_mutex_unlock(&pe->mu);
  return s;
}

static void pol_cur_unref(pol_engine *pe, struct pol_set *s) {
  pthread_mutex_lock(&pe->mu);
  pol_set_unref(s);
  pthread_mutex_unlock(&pe->mu);
}

static int l_info_build(lua_State *L) {
  struct pol_set *s = lua_touserdata(L, 1);
  lua_createtable(L, 0, 4);
  if (s->dir) { lua_pushstring(L, s->dir); lua_setfield(L, -2, "dir"); }
  lua_pushinteger(L, s->gen);
  lua_setfield(L, -2, "generation");
  lua_pushboolean(L, s->builtin);
  lua_setfield(L, -2, "builtin_default");
  lua_createtable(L, (int)s->ntenants + 1, 0);
  lua_pushstring(L, s->builtin ? BUILTIN_CHUNK + 1 : s->def.chunk + 1);
  lua_rawseti(L, -2, 1);
  for (size_t i = 0; i < s->ntenants; i++) {
    lua_pushstring(L, s->tenants[i].chunk + 1);
    lua_rawseti(L, -2, (lua_Integer)i + 2);
  }
  lua_setfield(L, -2, "files");
  return 1;
}

/* policy.info() -> {dir=, files={...}, generation=n, builtin_default=bool} */
static int l_info(lua_State *L) {
  pol_engine *pe = pol_check_engine(L);
  struct pol_set *s = pol_cur_ref(pe);
  lua_pushcfunction(L, l_info_build);
  lua_pushlightuserdata(L, s);
  int st = lua_pcall(L, 1, 1, 0);
  pol_cur_unref(pe, s);
  if (st != LUA_OK) return lua_error(L);
  return 1;
}

/* policy.has(tenant, fname) -> boolean: does the policy that applies to
 * the tenant define fname? */
static int l_has(lua_State *L) {
  pol_engine *pe = pol_check_engine(L);
  const char *tenant = pol_opt_tenant(L, 1);
  const char *fname = luaL_checkstring(L, 2);
  int found = 0;
  if (!tenant || pol_valid_tenant(tenant)) {
    pthread_mutex_lock(&pe->mu);
    struct pol_file *f = pol_find_file(pe->cur, tenant);
    if (!f) f = &pe->cur->def;
    for (char **p = f->fns; p && *p && !found; p++) found = strcmp(*p, fname) == 0;
    pthread_mutex_unlock(&pe->mu);
  }
  lua_pushboolean(L, found);
  return 1;
}

int luaopen_mcpl_policy(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"call", l_call}, {"reload", l_reload}, {"info", l_info}, {"has", l_has}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
