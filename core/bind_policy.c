/* bind_policy.c: the Lua `policy` module: the engine-wide policy set (each
 * file compiled and self-checked on its own) and the LRU cache of per-tenant sandbox states. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <lauxlib.h>
#include "policy.h"

#define POL_MAX_FILE (1024 * 1024)
#define POL_MAX_TENANT_FILES 10000
#define POL_WHY 512
#define POL_MAX_ERR 400 /* a load error as kept and shown */

static const char BUILTIN_NAME[] = "[built-in default.lua]";

/* A policy file's text as it was checked, shared between the sets that keep
 * it in force (a reload that keeps a previous version takes a reference). */
struct pol_src {
  atomic_int refs;
  size_t len;
  char *chunk; /* "@tenants/acme.lua": errors name the file relative to the directory */
  char *text;
};

/* What happened to a file at the last (re)load. */
enum { POL_LOADED = 0, POL_FAILED = 1, POL_KEPT = 2 };
static const char *const POL_STATUS[] = {"loaded", "failed", "kept_previous"};

struct pol_file {
  char *tenant;         /* NULL for the default */
  char *name;           /* "default.lua", "tenants/acme.lua" or BUILTIN_NAME */
  int status;
  int builtin;
  char *err;            /* why the file on disk did not load (failed, kept_previous) */
  struct pol_src *src;  /* the version in force; NULL: the file fails closed */
  struct pol_src *base; /* tenant files: the default checked beneath it */
  char *base_err;       /* tenant files without a base: why the default failed */
  char **fns;           /* function names found by the self-check */
  atomic_int pending;   /* read, not yet checked (see pol_ensure_checked); cleared,
                         * with release, once the fields above are settled */
};

/* An immutable, refcounted policy set: a reload builds a new one. */
struct pol_set {
  int refs;
  long gen;
  long long loaded_at; /* ms since the epoch */
  char *dir;
  struct pol_file def;
  struct pol_file *tenants; /* sorted by name */
  size_t ntenants;
  int defer;                /* load: read the files, check them on first use */
  size_t npending;          /* files still pending (under reload_mu) */
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
  atomic_int pending; /* some of cur's files are read but not yet checked */
} pol_engine;

int policy_valid_tenant(const char *t) {
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

/* ---- sources and files ------------------------------------------------------ */

static char *pol_fmt(const char *a, const char *b, const char *c) {
  size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s%s%s", a, b, c);
  return s;
}

/* Takes ownership of text. NULL on out of memory (text freed). */
static struct pol_src *pol_src_new(char *text, size_t len, const char *chunk) {
  struct pol_src *s = calloc(1, sizeof *s);
  if (s) s->chunk = strdup(chunk);
  if (!s || !s->chunk) {
    if (s) free(s);
    free(text);
    return NULL;
  }
  atomic_init(&s->refs, 1);
  s->text = text;
  s->len = len;
  return s;
}

static struct pol_src *pol_src_ref(struct pol_src *s) {
  if (s) atomic_fetch_add(&s->refs, 1);
  return s;
}

static void pol_src_unref(struct pol_src *s) {
  if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
    free(s->chunk);
    free(s->text);
    free(s);
  }
}

static void pol_fns_free(char **fns) {
  for (char **p = fns; p && *p; p++) free(*p);
  free(fns);
}

static char **pol_fns_copy(char **fns) {
  size_t n = 0;
  while (fns && fns[n]) n++;
  char **c = calloc(n + 1, sizeof *c);
  for (size_t i = 0; c && i < n; i++) {
    if (!(c[i] = strdup(fns[i]))) { pol_fns_free(c); return NULL; }
  }
  return c;
}

static void pol_file_free(struct pol_file *f) {
  free(f->tenant);
  free(f->name);
  free(f->err);
  free(f->base_err);
  pol_src_unref(f->src);
  pol_src_unref(f->base);
  pol_fns_free(f->fns);
}

static void pol_set_free(struct pol_set *s) {
  if (!s) return;
  pol_file_free(&s->def);
  for (size_t i = 0; i < s->ntenants; i++) pol_file_free(&s->tenants[i]);
  free(s->tenants);
  free(s->dir);
  free(s);
}

/* A load error as shown: "tenants/a.lua:3: x" -> "line 3: x", "tenants/a.lua: x"
 * -> "x" (the file is named beside it), cut to POL_MAX_ERR bytes. */
static char *pol_err_text(const char *name, const char *err) {
  char buf[POL_MAX_ERR + 16];
  size_t n = strlen(name);
  const char *rest = err;
  if (strncmp(err, name, n) == 0 && err[n] == ':') {
    rest = err + n + 1;
    if (*rest >= '0' && *rest <= '9') {
      snprintf(buf, sizeof buf, "line %.*s", POL_MAX_ERR, rest);
      char *colon = strchr(buf, ':');
      if (colon) {
        char *d = buf + 5;
        while (d < colon && *d >= '0' && *d <= '9') d++;
        if (d == colon) return strdup(buf);
      }
      rest = err;
    } else {
      while (*rest == ' ') rest++;
    }
  }
  snprintf(buf, sizeof buf, "%.*s", POL_MAX_ERR, rest);
  return strdup(buf);
}

/* Reads a whole regular file. 0 ok, ENOENT missing, else an error. */
static int pol_read(const char *path, const char *name, char **out, size_t *len, char *why, size_t n) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return ENOENT;
    snprintf(why, n, "%s: %s", name, strerror(errno));
    return -1;
  }
  struct stat st;
  int rc = -1;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(why, n, "%s: not a regular file", name);
  } else if (st.st_size > POL_MAX_FILE) {
    snprintf(why, n, "%s: larger than %d bytes", name, POL_MAX_FILE);
  } else if (!(*out = malloc((size_t)st.st_size + 1))) {
    snprintf(why, n, "%s: out of memory", name);
  } else {
    *len = fread(*out, 1, (size_t)st.st_size, f);
    (*out)[*len] = 0;
    rc = 0;
  }
  fclose(f);
  return rc;
}

static struct pol_src *pol_builtin_src(void) {
  const char *src = "return {}\n";
  for (const struct mcpl_embedded *m = mcpl_embedded_policies; m->name; m++)
    if (strcmp(m->name, "default") == 0) src = m->src;
  char *text = strdup(src);
  if (!text) return NULL;
  char chunk[sizeof BUILTIN_NAME + 1];
  snprintf(chunk, sizeof chunk, "=%s", BUILTIN_NAME);
  return pol_src_new(text, strlen(src), chunk);
}

static int pol_cmp_file(const void *a, const void *b) {
  return strcmp(((const struct pol_file *)a)->tenant, ((const struct pol_file *)b)->tenant);
}

static struct pol_file *pol_find_file(struct pol_set *s, const char *tenant) {
  if (!s || !tenant || !s->ntenants) return NULL;
  struct pol_file key = {0};
  key.tenant = (char *)tenant;
  return bsearch(&key, s->tenants, s->ntenants, sizeof key, pol_cmp_file);
}

/* ---- checking files --------------------------------------------------------- */

/* Loads, in P, the default beneath a tenant file: its source, or the stand-in
 * that fails every delegation when the default failed to load. */
static int pol_load_base(lua_State *P, struct pol_src *base, const char *base_err, char *why, size_t n) {
  if (base) return policy_sandbox_load(P, base->text, base->len, base->chunk, 0, why, n);
  char msg[POL_MAX_ERR + 64];
  snprintf(msg, sizeof msg, "default.lua failed to load: %s", base_err ? base_err : "?");
  return policy_sandbox_stub_default(P, msg, why, n);
}

/* Loads src in a fresh sandbox (above base for a tenant file): it must
 * compile, run within the limits and return a table of functions. */
static int pol_check(pol_engine *pe, struct pol_src *src, int tenant, struct pol_src *base,
                     const char *base_err, char ***fns, char *why, size_t n) {
  lua_State *P = policy_sandbox_new(pe->e, pe->mem, pe->budget, why, n);
  if (!P) return -1;
  int rc = tenant ? pol_load_base(P, base, base_err, why, n) : SB_OK;
  if (rc == SB_OK) rc = policy_sandbox_load(P, src->text, src->len, src->chunk, tenant, why, n);
  if (rc == SB_OK && !(*fns = policy_sandbox_function_names(P))) {
    snprintf(why, n, "out of memory");
    rc = SB_FAIL;
  }
  policy_sandbox_close(P);
  return rc == SB_OK ? 0 : -1;
}

/* Checks the text read into f (src, NULL when it could not be read: why
 * says why). On failure f keeps the previous version (old, when it had one
 * in force) or fails closed; either way f->err says why. Returns -1 only
 * when out of memory. */
static int pol_settle_file(pol_engine *pe, struct pol_set *s, struct pol_file *f, struct pol_src *src,
                           const struct pol_file *old, char *why) {
  if (src) {
    int tenant = f->tenant != NULL;
    char **fns = NULL;
    if (pol_check(pe, src, tenant, s->def.src, s->def.err, &fns, why, POL_WHY) == 0) {
      f->status = POL_LOADED;
      f->src = src;
      f->fns = fns;
      if (tenant) {
        f->base = pol_src_ref(s->def.src);
        if (!f->base && s->def.err && !(f->base_err = strdup(s->def.err))) return -1;
      }
      return 0;
    }
    pol_src_unref(src);
  }
  if (!(f->err = pol_err_text(f->name, why))) return -1;
  if (!old || !old->src) {
    f->status = POL_FAILED;
    return 0;
  }
  f->status = POL_KEPT;
  f->builtin = old->builtin;
  f->src = pol_src_ref(old->src);
  /* A kept tenant file runs on the default now in force when it still
   * loads there; else on the default it last loaded with, so a change to
   * default.lua never takes a tenant's working rules away. */
  if (f->tenant && pol_check(pe, old->src, 1, s->def.src, s->def.err, &f->fns, why, sizeof why) == 0) {
    f->base = pol_src_ref(s->def.src);
    if (!f->base && s->def.err && !(f->base_err = strdup(s->def.err))) return -1;
    return 0;
  }
  f->base = pol_src_ref(old->base);
  if (old->base_err && !(f->base_err = strdup(old->base_err))) return -1;
  return (f->fns = pol_fns_copy(old->fns)) ? 0 : -1;
}

/* Reads the file at path into f and checks it (pol_settle_file), or, in a
 * deferred set, only reads it: f->src holds the text until it is checked. */
static int pol_load_file(pol_engine *pe, struct pol_set *s, struct pol_file *f, const char *path,
                         const struct pol_file *old) {
  char why[POL_WHY];
  char *text = NULL;
  size_t len = 0;
  struct pol_src *src = NULL;
  int r = pol_read(path, f->name, &text, &len, why, sizeof why);
  if (r == ENOENT) snprintf(why, sizeof why, "%s: vanished while reading", f->name);
  if (r == 0) {
    char *chunk = pol_fmt("@", f->name, "");
    src = chunk ? pol_src_new(text, len, chunk) : NULL;
    if (!chunk) free(text);
    free(chunk);
    if (!src) return -1;
    if (s->defer) {
      f->src = src;
      atomic_store(&f->pending, 1);
      s->npending++;
      return 0;
    }
  }
  return pol_settle_file(pe, s, f, src, old, why);
}

static void pol_log_file(mcpl_engine *e, const struct pol_file *f);

/* Checks one file of a deferred set (the caller holds reload_mu; for a
 * tenant file, the default is settled first: it is checked above it), logs
 * the result, and only then clears its pending flag (release: a reader that
 * sees it clear sees the file settled). A deferred set is only ever the
 * first one, so there is no previous version to keep. */
static void pol_settle_one(pol_engine *pe, struct pol_set *s, struct pol_file *f) {
  char why[POL_WHY];
  if (!atomic_load(&f->pending)) return;
  struct pol_src *src = f->src;
  f->src = NULL;
  if (pol_settle_file(pe, s, f, src, NULL, why) != 0) {
    f->status = POL_FAILED; /* out of memory: fails closed */
    pol_src_unref(f->src);
    f->src = NULL;
  }
  s->npending--;
  atomic_store_explicit(&f->pending, 0, memory_order_release);
  pol_log_file(pe->e, f);
}

/* Checks what a decision needs of a deferred set: the default, then only
 * the file given (NULL: every tenant file). */
static void pol_settle_pending(pol_engine *pe, struct pol_set *s, struct pol_file *only, int all) {
  pol_settle_one(pe, s, &s->def);
  if (only) pol_settle_one(pe, s, only);
  for (size_t i = 0; all && i < s->ntenants; i++) pol_settle_one(pe, s, &s->tenants[i]);
  if (s->npending == 0) s->defer = 0;
}

/* The default: default.lua, or the built-in one when the directory (or the
 * whole option) has none. */
static int pol_load_default(pol_engine *pe, struct pol_set *s, const struct pol_set *old, char *why,
                            size_t n) {
  struct pol_file *f = &s->def;
  char *path = s->dir ? pol_fmt(s->dir, "/", "default.lua") : NULL;
  struct stat st;
  if (path && (stat(path, &st) == 0 || errno != ENOENT)) {
    f->name = strdup("default.lua");
    int rc = f->name ? pol_load_file(pe, s, f, path, old ? &old->def : NULL) : -1;
    free(path);
    if (rc != 0) snprintf(why, n, "out of memory");
    return rc;
  }
  free(path);
  f->builtin = 1;
  f->name = strdup(BUILTIN_NAME);
  f->src = pol_builtin_src();
  if (f->name && f->src && s->defer) {
    atomic_store(&f->pending, 1);
    s->npending++;
    return 0;
  }
  if (f->name && f->src && pol_check(pe, f->src, 0, NULL, NULL, &f->fns, why, n) == 0) return 0;
  if (!f->name || !f->src) snprintf(why, n, "out of memory");
  return -1; /* the build's own default is broken: nothing sensible to fall back to */
}

/* Tenant files: tenants/<name>.lua with a valid tenant name; *_test.lua
 * are the policy tests run by the test suite, not policies. */
static int pol_load_tenants(pol_engine *pe, struct pol_set *s, struct pol_set *old, char *why,
                            size_t n) {
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
    if (!policy_valid_tenant(name) || (len - 4 >= 5 && strcmp(name + len - 9, "_test") == 0)) continue;
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
    struct pol_file *f = &s->tenants[s->ntenants++];
    memset(f, 0, sizeof *f);
    char *path = pol_fmt(tdir, "/", de->d_name);
    f->tenant = strdup(name);
    f->name = pol_fmt("tenants/", de->d_name, "");
    if (!path || !f->tenant || !f->name ||
        pol_load_file(pe, s, f, path, pol_find_file(old, name)) != 0) {
      snprintf(why, n, "out of memory");
      rc = -1;
    }
    free(path);
  }
  closedir(d);
  free(tdir);
  if (rc == 0 && s->ntenants > 1) qsort(s->tenants, s->ntenants, sizeof *s->tenants, pol_cmp_file);
  return rc;
}

static long long pol_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Builds a new set from the directory. A file that fails to load does not
 * fail the set: it keeps its version in old, or fails closed. NULL (and why)
 * only when the directory itself cannot be read. */
static struct pol_set *pol_set_load(pol_engine *pe, struct pol_set *old, int defer, char *why,
                                    size_t n) {
  const char *dir = mcpl_engine_opt(pe->e, "policies");
  struct pol_set *s = calloc(1, sizeof *s);
  if (!s) { snprintf(why, n, "out of memory"); return NULL; }
  s->refs = 1;
  s->defer = defer;
  s->loaded_at = pol_now_ms();
  if (dir && *dir) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
      snprintf(why, n, "policies directory not found: %s", dir);
      goto fail;
    }
    /* the absolute path, for the log and policy.status */
    if (!(s->dir = realpath(dir, NULL)) && !(s->dir = strdup(dir))) {
      snprintf(why, n, "out of memory");
      goto fail;
    }
  }
  if (pol_load_default(pe, s, old, why, n) != 0) goto fail;
  if (s->dir && pol_load_tenants(pe, s, old, why, n) != 0) goto fail;
  return s;
fail:
  pol_set_free(s);
  return NULL;
}

static void pol_ensure_checked(pol_engine *pe);
static void pol_ensure_file(pol_engine *pe, struct pol_set *s, const char *tenant);

/* ---- the state cache (callers hold pe->mu) --------------------------------- */

static void pol_entry_free(struct pol_entry *en) {
  policy_sandbox_close(en->P);
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

/* Why a file is not in force, for a deny reason: "tenants/a.lua failed to
 * load: line 3: ...". */
static void pol_failed_reason(const char *name, const char *err, char *why, size_t n) {
  snprintf(why, n, "%s failed to load: %s", name, err ? err : "unknown error");
}

/* Builds the tenant's state: the default file, then the tenant's own file
 * (with `default`) when it has one. A file that failed to load builds
 * nothing: the tenant fails closed with the load error. */
static lua_State *pol_build(pol_engine *pe, struct pol_entry *en, long long budget, size_t mem,
                            char *why, size_t n) {
  struct pol_set *s = en->set;
  struct pol_file *f = en->key[0] ? pol_find_file(s, en->key) : NULL;
  struct pol_file *own = f ? f : &s->def;
  if (!own->src) {
    pol_failed_reason(own->name, own->err, why, n);
    return NULL;
  }
  lua_State *P = policy_sandbox_new(pe->e, mem, budget, why, n);
  if (!P) return NULL;
  int rc = f ? pol_load_base(P, f->base, f->base_err, why, n) : SB_OK;
  if (rc == SB_OK)
    rc = policy_sandbox_load(P, own->src->text, own->src->len, own->src->chunk, f != NULL, why, n);
  if (rc != SB_OK) {
    /* it passed its check at load, but not now (different limits, the clock) */
    char *t = pol_err_text(own->name, why);
    pol_failed_reason(own->name, t ? t : why, why, n);
    free(t);
    policy_sandbox_close(P);
    return NULL;
  }
  return P;
}

int policy_call(mcpl_engine *e, lua_State *E, const char *tenant, const char *fname, int input_idx,
                int key_idx, char *why, size_t n) {
  pol_engine *pe = pol_of(e);
  long long budget;
  size_t mem;
  int rc = SB_FAIL, built = 1;
  input_idx = lua_absindex(E, input_idx);
  if (key_idx) key_idx = lua_absindex(E, key_idx);
  if (!pe) { snprintf(why, n, "policy runner not initialised"); return SB_FAIL; }
  if (tenant && !policy_valid_tenant(tenant)) {
    snprintf(why, n, "invalid tenant name");
    mcpl_log(e, "warn", "policy %s: refused: invalid tenant name", fname);
    return SB_FAIL;
  }
  struct pol_entry *en = pol_acquire(pe, tenant ? tenant : "", &budget, &mem);
  if (!en) { snprintf(why, n, "out of memory"); return SB_FAIL; }
  pol_ensure_file(pe, en->set, en->key);
  pthread_mutex_lock(&en->mu);
  if (!en->P) built = (en->P = pol_build(pe, en, budget, mem, why, n)) != NULL;
  if (en->P) {
    rc = policy_sandbox_call(en->P, E, fname, input_idx, key_idx, why, n);
    /* After any kill the state is suspect: rebuilt on next use. */
    if (rc == SB_KILLED || policy_sandbox_killed(en->P)) {
      rc = SB_KILLED;
      policy_sandbox_close(en->P);
      en->P = NULL;
    }
  }
  pthread_mutex_unlock(&en->mu);
  pol_release(pe, en);
  /* A file that failed to load was logged at load; its every deny is not. */
  if (rc == SB_FAIL || rc == SB_KILLED)
    mcpl_log(e, built ? "warn" : "debug", "policy %s for %s denied: %s", fname,
             tenant ? tenant : "(default)", why);
  return rc;
}

/* Says in the log which directory is in force (pol_log_files: which files
 * are, and which failed). */
static void pol_log_dir(mcpl_engine *e, const struct pol_set *s) {
  if (s->dir)
    mcpl_log(e, "info", "policies in force (generation %ld): directory %s, %s and %zu tenant file(s)",
             s->gen, s->dir, s->def.builtin && s->def.status == POL_LOADED ? "the built-in default"
             : "default.lua", s->ntenants);
  else
    mcpl_log(e, "info", "policies in force (generation %ld): no policy directory, the built-in "
             "default policy", s->gen);
}

static void pol_log_files(mcpl_engine *e, const struct pol_set *s) {
  for (size_t i = 0; i <= s->ntenants; i++) pol_log_file(e, i == 0 ? &s->def : &s->tenants[i - 1]);
}

static void pol_log_file(mcpl_engine *e, const struct pol_file *f) {
  if (f->status == POL_LOADED) {
    if (!f->builtin) mcpl_log(e, "info", "policy file %s: loaded", f->name);
  } else if (f->status == POL_KEPT) {
    mcpl_log(e, "error", "policy file %s failed to load, its previous version stays in force: %s",
             f->name, f->err);
  } else if (f->tenant) {
    mcpl_log(e, "error", "policy file %s failed to load, tenant %s fails closed (every outbound "
             "request is denied): %s", f->name, f->tenant, f->err);
  } else {
    mcpl_log(e, "error", "policy file %s failed to load, the system actor and every tenant without "
             "a file of its own fail closed (every outbound request is denied): %s", f->name, f->err);
  }
}

/* Loads the directory again, file by file, and puts the result in force.
 * *out (when given) gets a reference to the new set. defer (the engine's
 * first load only): the files are read now and checked on first use. */
static int pol_reload_set(pol_engine *pe, struct pol_set **out, int defer, char **err) {
  char why[POL_WHY];
  pthread_mutex_lock(&pe->reload_mu);
  pthread_mutex_lock(&pe->mu);
  struct pol_set *old = pe->cur;
  if (old) old->refs++;
  pthread_mutex_unlock(&pe->mu);
  /* a file of the set in force that fails now keeps its last good version:
   * which one that is needs the set in force checked */
  if (old && atomic_load(&pe->pending)) {
    pol_settle_pending(pe, old, NULL, 1);
    atomic_store(&pe->pending, 0);
  }
  struct pol_set *s = pol_set_load(pe, old, defer, why, sizeof why);
  pthread_mutex_lock(&pe->mu);
  if (old) pol_set_unref(old);
  struct pol_entry *dead = NULL;
  if (s) {
    old = pe->cur;
    s->gen = ++pe->gen;
    pe->cur = s;
    dead = pol_drop_all(pe);
    pol_set_unref(old);
    if (out) { s->refs++; *out = s; }
  }
  pthread_mutex_unlock(&pe->mu);
  if (s) pol_log_dir(pe->e, s);
  if (s && defer) atomic_store(&pe->pending, 1);
  else if (s) pol_log_files(pe->e, s);
  pthread_mutex_unlock(&pe->reload_mu);
  pol_free_list(dead);
  if (!s) {
    mcpl_log(pe->e, "error", "policy reload failed, keeping the previous policies: %s", why);
    *err = strdup(why);
    return -1;
  }
  return 0;
}

int policy_reload(mcpl_engine *e, char **err) {
  pol_engine *pe = pol_of(e);
  *err = NULL;
  if (!pe) { *err = strdup("policy runner not initialised"); return -1; }
  return pol_reload_set(pe, NULL, 0, err);
}

/* The engine opens with its policy files read but not yet checked: checking
 * compiles and runs each one in a sandbox of its own, most of what a
 * one-shot command spent on policies, and it grows with the number of
 * tenant files. A decision checks what it runs on, the default and its
 * tenant's own file (pol_ensure_file); policy.status and a reload check
 * them all (pol_ensure_checked). Each file's result is logged when it is
 * checked. What is checked is the text read at open, so a file edited since
 * then still takes effect only on a reload. */
static void pol_ensure_checked(pol_engine *pe) {
  if (!atomic_load(&pe->pending)) return;
  pthread_mutex_lock(&pe->reload_mu);
  if (atomic_load(&pe->pending)) { /* cur changes only under reload_mu */
    pol_settle_pending(pe, pe->cur, NULL, 1);
    atomic_store(&pe->pending, 0);
  }
  pthread_mutex_unlock(&pe->reload_mu);
}

/* What a decision for tenant ("" or NULL: the default) needs of s, a set
 * the caller holds a reference to: no lock once both files are settled. */
static void pol_ensure_file(pol_engine *pe, struct pol_set *s, const char *tenant) {
  struct pol_file *f = tenant && *tenant ? pol_find_file(s, tenant) : NULL;
  if (!atomic_load_explicit(&s->def.pending, memory_order_acquire) &&
      (!f || !atomic_load_explicit(&f->pending, memory_order_acquire)))
    return;
  pthread_mutex_lock(&pe->reload_mu);
  pol_settle_pending(pe, s, f, 0);
  if (s == pe->cur && s->npending == 0) atomic_store(&pe->pending, 0);
  pthread_mutex_unlock(&pe->reload_mu);
}

void policy_set_limits(mcpl_engine *e, long long budget, size_t mem_cap, int max_states) {
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

int policy_cached_states(mcpl_engine *e) {
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
  /* A file that fails to load fails closed for its tenant alone (see
   * pol_settle_file); only a directory that cannot be read fails the open:
   * that is the host's configuration, not one tenant's file. The files are
   * checked on first use (pol_ensure_checked). */
  if (pol_reload_set(pe, NULL, 1, &why) != 0) {
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

/* policy.call(tenant, fname, input [, key]) -> result | nil, reason; key (a
 * string): the caller's word that inputs under one key are equal, so the
 * sandbox keeps the input's frozen copy by it instead of walking the input
 * on every call (lua/net.lua keys a URL decision's input) */
static int l_call(lua_State *L) {
  pol_check_engine(L);
  const char *tenant = pol_opt_tenant(L, 1);
  const char *fname = luaL_checkstring(L, 2);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TSTRING);
  lua_settop(L, 4);
  char why[POL_WHY];
  int rc = policy_call(mcpl_engine_of(L), L, tenant, fname, 3, lua_isstring(L, 4) ? 4 : 0, why, sizeof why);
  if (rc == SB_OK) return 1;
  lua_pushnil(L);
  lua_pushstring(L, why);
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

static void pol_push_file(lua_State *L, const struct pol_file *f) {
  lua_createtable(L, 0, 5);
  lua_pushstring(L, f->name);
  lua_setfield(L, -2, "file");
  if (f->tenant) { lua_pushstring(L, f->tenant); lua_setfield(L, -2, "tenant"); }
  lua_pushstring(L, POL_STATUS[f->status]);
  lua_setfield(L, -2, "status");
  if (f->err) { lua_pushstring(L, f->err); lua_setfield(L, -2, "error"); }
  lua_pushboolean(L, f->builtin);
  lua_setfield(L, -2, "builtin");
}

static int l_status_build(lua_State *L) {
  struct pol_set *s = lua_touserdata(L, 1);
  lua_createtable(L, 0, 6);
  if (s->dir) { lua_pushstring(L, s->dir); lua_setfield(L, -2, "dir"); }
  lua_pushinteger(L, s->gen);
  lua_setfield(L, -2, "generation");
  lua_pushinteger(L, s->loaded_at);
  lua_setfield(L, -2, "loaded_at");
  lua_pushboolean(L, s->def.builtin);
  lua_setfield(L, -2, "builtin_default");
  int failed = 0;
  lua_createtable(L, (int)s->ntenants + 1, 0);
  for (size_t i = 0; i <= s->ntenants; i++) {
    const struct pol_file *f = i == 0 ? &s->def : &s->tenants[i - 1];
    failed += f->status != POL_LOADED;
    pol_push_file(L, f);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "files");
  lua_pushinteger(L, failed);
  lua_setfield(L, -2, "failed");
  return 1;
}

/* Pushes the status of s (the caller holds a reference). */
static int pol_push_status(lua_State *L, pol_engine *pe, struct pol_set *s) {
  lua_pushcfunction(L, l_status_build);
  lua_pushlightuserdata(L, s);
  int st = lua_pcall(L, 1, 1, 0);
  pol_cur_unref(pe, s);
  if (st != LUA_OK) return lua_error(L);
  return 1;
}

/* policy.reload() -> status | nil, error (the directory could not be read) */
static int l_reload(lua_State *L) {
  pol_engine *pe = pol_check_engine(L);
  char *err = NULL;
  struct pol_set *s = NULL;
  if (pol_reload_set(pe, &s, 0, &err) == 0) return pol_push_status(L, pe, s);
  lua_pushnil(L);
  lua_pushstring(L, err ? err : "out of memory");
  free(err);
  return 2;
}

/* policy.status() -> {dir=, generation=n, loaded_at=ms, builtin_default=bool,
 * failed=n, files={{file=, tenant=, status=, error=, builtin=}...}} */
static int l_status(lua_State *L) {
  pol_engine *pe = pol_check_engine(L);
  pol_ensure_checked(pe);
  return pol_push_status(L, pe, pol_cur_ref(pe));
}

/* policy.has(tenant, fname) -> boolean: does the policy that applies to
 * the tenant define fname? (Not when that file failed to load.) */
static int l_has(lua_State *L) {
  pol_engine *pe = pol_check_engine(L);
  const char *tenant = pol_opt_tenant(L, 1);
  const char *fname = luaL_checkstring(L, 2);
  int found = 0;
  if (!tenant || policy_valid_tenant(tenant)) {
    struct pol_set *s = pol_cur_ref(pe);
    pol_ensure_file(pe, s, tenant);
    struct pol_file *f = pol_find_file(s, tenant);
    if (!f) f = &s->def;
    for (char **p = f->src ? f->fns : NULL; p && *p && !found; p++) found = strcmp(*p, fname) == 0;
    pol_cur_unref(pe, s);
  }
  lua_pushboolean(L, found);
  return 1;
}

int luaopen_mcpl_policy(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"call", l_call}, {"reload", l_reload}, {"status", l_status}, {"has", l_has}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
