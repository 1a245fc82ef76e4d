/* luastate.c: builds the engine's Lua states from an allow list.
 * Engine Lua gets the core bindings; operator scripts get the op API only. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <lauxlib.h>
#include <lualib.h>
#include "embed.h"
#include "engine.h"

#define MAX_MODULE_BYTES (4 * 1024 * 1024)

static const char CANCEL_KEY = 0; /* its address keys the state's mcpl_cancel */

/* The engine of a state is kept in the state's extra space (the bindings
 * ask for it several times per op; a coroutine gets a copy of its main
 * thread's when it is made). */
_Static_assert(LUA_EXTRASPACE >= sizeof(mcpl_engine *), "Lua's extra space holds a pointer");

void mcpl_engine_bind(lua_State *L, mcpl_engine *e) {
  memcpy(lua_getextraspace(L), &e, sizeof e);
}

mcpl_engine *mcpl_engine_of(lua_State *L) {
  mcpl_engine *e;
  memcpy(&e, lua_getextraspace(L), sizeof e);
  return e;
}

void mcpl_state_set_cancel(lua_State *L, mcpl_cancel *c) {
  lua_pushlightuserdata(L, c);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &CANCEL_KEY);
  if (c) {
    c->arm = mcpl_state_arm;
    atomic_store(&c->L, L);
  }
}

mcpl_cancel *mcpl_state_cancel(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &CANCEL_KEY);
  mcpl_cancel *c = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return c;
}

static const char CALL_KEY = 0; /* its address keys the state's call handle */

void mcpl_state_set_call(lua_State *L, mcpl_call *c) {
  lua_pushlightuserdata(L, c);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &CALL_KEY);
}

mcpl_call *mcpl_state_call(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &CALL_KEY);
  mcpl_call *c = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return c;
}

int mcpl_lua_cancelled(lua_State *L) {
  return mcpl_cancel_requested(mcpl_engine_of(L), mcpl_state_cancel(L));
}

int mcpl_lua_raise_cancelled(lua_State *L) {
  /* the op has been told: the hook does not raise it a second time, so the
   * op's own handling (a notice to the server that the call was cancelled)
   * is not cut short */
  mcpl_cancel *c = mcpl_state_cancel(L);
  if (c && atomic_load_explicit(&c->requested, memory_order_relaxed)) c->raised = 1;
  mcpl_push_error(L, "timeout", "operation cancelled");
  lua_pushliteral(L, "cancelled");
  lua_setfield(L, -2, "reason");
  return lua_error(L);
}

void mcpl_push_error(lua_State *L, const char *code, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, buf);
  lua_setfield(L, -2, "message");
}

int mcpl_lua_error(lua_State *L, const char *code, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  mcpl_push_error(L, code, "%s", buf);
  return lua_error(L);
}

/* ---- module sources ------------------------------------------------------ */

static char *read_file(const char *path, size_t max) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
    fclose(f);
    return NULL;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  if (buf) {
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    buf[n] = 0;
  }
  fclose(f);
  return buf;
}

static int valid_module_name(const char *name) {
  if (!name || !*name || strlen(name) > 200) return 0;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '_' || (*p == '.' && p != name && p[1] && p[1] != '.')))
      return 0;
  return 1;
}

char *mcpl_module_source(mcpl_engine *e, const char *name, char **chunkname) {
  *chunkname = NULL;
  if (!valid_module_name(name)) return NULL;
  const char *dir = mcpl_engine_opt(e, "lua_dir");
  if (dir && *dir) {
    size_t n = strlen(dir) + strlen(name) + 8;
    char *path = malloc(n);
    if (!path) return NULL;
    snprintf(path, n, "%s/%s", dir, name);
    for (char *p = path + strlen(dir) + 1; *p; p++) if (*p == '.') *p = '/';
    strcat(path, ".lua");
    char *src = read_file(path, MAX_MODULE_BYTES);
    if (!src) { free(path); return NULL; }
    *chunkname = malloc(strlen(path) + 2);
    if (*chunkname) sprintf(*chunkname, "@%s", path);
    free(path);
    return src;
  }
  for (const struct mcpl_embedded *m = mcpl_embedded_lua; m->name; m++) {
    if (strcmp(m->name, name) == 0) {
      *chunkname = strdup(m->chunk);
      return strdup(m->src);
    }
  }
  return NULL;
}

static void scan_dir(lua_State *L, const char *root, const char *rel, int *n) {
  char path[1024];
  snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char sub[1024];
    snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
    size_t len = strlen(sub);
    if (len > 4 && strcmp(sub + len - 4, ".lua") == 0) {
      sub[len - 4] = 0;
      for (char *p = sub; *p; p++) if (*p == '/') *p = '.';
      lua_pushstring(L, sub);
      lua_rawseti(L, -2, ++*n);
    } else {
      char full[2048];
      struct stat st;
      snprintf(full, sizeof full, "%s/%s", root, sub);
      if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) scan_dir(L, root, sub, n);
    }
  }
  closedir(d);
}

void mcpl_push_module_names(lua_State *L) {
  mcpl_engine *e = mcpl_engine_of(L);
  const char *dir = mcpl_engine_opt(e, "lua_dir");
  int n = 0;
  lua_newtable(L);
  if (dir && *dir) scan_dir(L, dir, "", &n);
  else
    for (const struct mcpl_embedded *m = mcpl_embedded_lua; m->name; m++) {
      lua_pushstring(L, m->name);
      lua_rawseti(L, -2, ++n);
    }
}

/* The embedded module of this name, unless lua_dir replaces them all. */
static const struct mcpl_embedded *embedded_module(mcpl_engine *e, const char *name) {
  const char *dir = mcpl_engine_opt(e, "lua_dir");
  if (dir && *dir) return NULL;
  for (const struct mcpl_embedded *m = mcpl_embedded_lua; m->name; m++)
    if (strcmp(m->name, name) == 0) return m;
  return NULL;
}

/* require(name): preloaded C bindings, then engine-owned Lua modules. Text
 * chunks only, except the embedded modules' own bytecode, made from their
 * text at build time; there is no package path and no C module loading. */
static int safe_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "mcpl.loaded");
  lua_getfield(L, 2, name);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "mcpl.preload");
  lua_getfield(L, -1, name);
  if (lua_isfunction(L, -1)) {
    lua_call(L, 0, 1);
  } else {
    lua_pop(L, 2);
    const struct mcpl_embedded *em = embedded_module(mcpl_engine_of(L), name);
    if (em) { /* precompiled at build time (gen_embed): no compiling at start-up */
      if (luaL_loadbufferx(L, em->bc, em->bclen, em->chunk, "b") != LUA_OK) return lua_error(L);
      lua_pushstring(L, name);
      lua_call(L, 1, 1);
      goto loaded;
    }
    char *chunk = NULL;
    char *src = mcpl_module_source(mcpl_engine_of(L), name, &chunk);
    if (!src) {
      free(chunk);
      const char *dir = mcpl_engine_opt(mcpl_engine_of(L), "lua_dir");
      if (dir && *dir) return luaL_error(L, "module '%s' not found in lua_dir %s", name, dir);
      return luaL_error(L, "module '%s' not found", name);
    }
    int st = luaL_loadbufferx(L, src, strlen(src), chunk ? chunk : name, "t");
    free(src);
    free(chunk);
    if (st != LUA_OK) return lua_error(L);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
  }
loaded:
  if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushboolean(L, 1); }
  lua_pushvalue(L, -1);
  lua_setfield(L, 2, name);
  return 1;
}

/* load(chunk [, chunkname [, mode [, env]]]) restricted to text chunks. */
static int safe_load(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  const char *name = luaL_optstring(L, 2, "=(load)");
  int has_env = !lua_isnone(L, 4);
  if (luaL_loadbufferx(L, s, n, name, "t") != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  if (has_env) {
    lua_pushvalue(L, 4);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  }
  return 1;
}

/* The call's own cancellation is raised once per op: the op's error
 * handling (audit, the error result) then runs; its waits still fail fast.
 * The hook is armed by mcpl_cancel_request (from any thread: lua_sethook is
 * safe to call asynchronously) and disarms itself once it has nothing to
 * raise, so an engine state runs without any hook until it is cancelled.
 * Disarming is followed by a second look at the flag: a request that came
 * in between is raised now rather than lost. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  mcpl_cancel *c = mcpl_state_cancel(L);
  for (int pass = 0; pass < 2; pass++) {
    if (mcpl_engine_interrupted(mcpl_engine_of(L))) {
      /* the engine interrupt (the REPL's Ctrl-C) raises as long as it is set */
      lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 10000);
      mcpl_lua_raise_cancelled(L);
    }
    if (c && !c->raised && atomic_load(&c->requested)) {
      lua_sethook(L, NULL, 0, 0);
      c->raised = 1;
      mcpl_lua_raise_cancelled(L);
    }
    if (pass == 0) lua_sethook(L, NULL, 0, 0);
  }
}

void mcpl_state_arm(lua_State *L) { lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 1); }


/* Operator scripts (the REPL) get a sticky cancel: until the flag is
 * cleared it raises on every instruction, so a pcall inside a loop cannot
 * swallow it and keep running. Engine states keep the one-shot error that
 * dispatch turns into a timeout result. */
static void script_interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (!mcpl_engine_interrupted(mcpl_engine_of(L))) {
    if (lua_gethookcount(L) == 1) lua_sethook(L, script_interrupt_hook, LUA_MASKCOUNT, 10000);
    return;
  }
  lua_sethook(L, script_interrupt_hook, LUA_MASKCOUNT, 1);
  mcpl_lua_raise_cancelled(L);
}

/* Opens the allowed standard libraries and strips what is not allowed. */
static void open_safe_libs(lua_State *L) {
  static const luaL_Reg libs[] = {
    {LUA_GNAME, luaopen_base},       {LUA_TABLIBNAME, luaopen_table},
    {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8},  {LUA_COLIBNAME, luaopen_coroutine},
    {LUA_OSLIBNAME, luaopen_os},      {NULL, NULL}};
  for (const luaL_Reg *l = libs; l->name; l++) {
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
  /* os: time only */
  lua_newtable(L);
  lua_getglobal(L, "os");
  static const char *const keep_os[] = {"time", "clock", "date", "difftime", NULL};
  for (int i = 0; keep_os[i]; i++) {
    lua_getfield(L, -1, keep_os[i]);
    lua_setfield(L, -3, keep_os[i]);
  }
  lua_pop(L, 1);
  lua_setglobal(L, "os");
  /* no file access, no bytecode */
  static const char *const drop[] = {"dofile", "loadfile", "require", NULL};
  for (int i = 0; drop[i]; i++) { lua_pushnil(L); lua_setglobal(L, drop[i]); }
  lua_getglobal(L, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  /* package.loaded still references the originals; drop it entirely */
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushcfunction(L, safe_load);
  lua_setglobal(L, "load");
  lua_pushcfunction(L, safe_require);
  lua_setglobal(L, "require");
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "mcpl.loaded");
}

/* ---- the states' allocator ----------------------------------------------
 * An op makes and drops a few hundred small Lua objects (tables, strings,
 * closures); glibc's malloc keeps only a handful of freed blocks of a size at
 * hand, so most of them went through its arena code, under its locks when
 * threads share an arena. Each state keeps the small blocks it freed on lists
 * by size (16-byte steps up to 248 bytes) and hands them out again; a state
 * runs on one thread at a time, so the lists need no lock. At most LA_KEEP
 * bytes are kept per state (a collection frees an op's garbage in bursts of
 * up to about half a MiB); past that, and for larger blocks, blocks go back
 * to malloc. Every block is a malloc'd block of its class's size, so any
 * block can be realloc'd or freed; Lua reports each block's size on every
 * free and realloc (osize), which gives its class. */
#define LA_STEP 16
#define LA_CLASSES 16
#if defined(__SANITIZE_ADDRESS__)
#define LA_KEEP ((size_t)0) /* AddressSanitizer sees every block's end */
#else
#define LA_KEEP ((size_t)1024 * 1024)
#endif

typedef struct la_block {
  struct la_block *next;
} la_block;

typedef struct {
  la_block *free[LA_CLASSES + 1];
  size_t kept;
} la_lists;

/* Class c holds blocks of up to c * 16 - 8 bytes: with malloc's 8-byte
 * header that is a whole chunk of c * 16, the chunk malloc itself would give
 * any size of the class, so the lists cost no memory over plain malloc. */
#define LA_SIZE(c) ((c) * LA_STEP - 8)
static inline size_t la_class(size_t n) {
  return n > 0 && n <= LA_SIZE(LA_CLASSES) ? (n + 8 + LA_STEP - 1) / LA_STEP : 0;
}

/* ---- big blocks -------------------------------------------------------------
 * glibc maps a block of more than its threshold (128 KiB at first) on its
 * own, but raises that threshold to the size of any such block freed: after
 * one long list, the next one's buffers came from the heap and grew it by
 * their size for good (10,001 tools: +3.6 MB at the second refresh). Under
 * AddressSanitizer every block stays a malloc'd one, which it checks. */
#if defined(__SANITIZE_ADDRESS__)
#define BIG_MAPS 0
#else
#define BIG_MAPS 1
#endif

static size_t big_round(size_t n) {
  const size_t page = 4096;
  return (n + page - 1) & ~(page - 1);
}

void *mcpl_big_realloc(void *p, size_t osize, size_t nsize) {
  int was = BIG_MAPS && p && osize >= MCPL_BIG, will = BIG_MAPS && nsize >= MCPL_BIG;
  if (nsize == 0) {
    mcpl_big_free(p, osize);
    return NULL;
  }
  if (!was && !will) return realloc(p, nsize);
  if (was && will) {
    if (big_round(osize) == big_round(nsize)) return p;
    void *q = mremap(p, big_round(osize), big_round(nsize), MREMAP_MAYMOVE);
    return q == MAP_FAILED ? NULL : q;
  }
  void *q;
  if (will) {
    q = mmap(NULL, big_round(nsize), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED) return NULL;
  } else if (!(q = malloc(nsize))) return NULL;
  if (p) memcpy(q, p, osize < nsize ? osize : nsize);
  mcpl_big_free(p, osize);
  return q;
}

void mcpl_big_free(void *p, size_t size) {
  if (!p) return;
  if (BIG_MAPS && size >= MCPL_BIG) munmap(p, big_round(size));
  else free(p);
}

static void *la_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  la_lists *a = ud;
  size_t nc = la_class(nsize);
  if (!ptr) {  /* osize is an object type here, not a size */
    if (nsize == 0) return NULL;
    la_block *b = nc ? a->free[nc] : NULL;
    if (b) {
      a->free[nc] = b->next;
      a->kept -= LA_SIZE(nc);
      return b;
    }
    return mcpl_big_realloc(NULL, 0, nc ? LA_SIZE(nc) : nsize);
  }
  size_t oc = la_class(osize);
  if (nsize == 0) {
    if (oc && a->kept + LA_SIZE(oc) <= LA_KEEP) {
      la_block *b = ptr;
      b->next = a->free[oc];
      a->free[oc] = b;
      a->kept += LA_SIZE(oc);
    } else mcpl_big_free(ptr, osize);
    return NULL;
  }
  if (oc && oc == nc) return ptr;
  /* a class block is a malloc'd block of its class's size */
  return mcpl_big_realloc(ptr, oc ? LA_SIZE(oc) : osize, nc ? LA_SIZE(nc) : nsize);
}

static int la_panic(lua_State *L) {
  const char *m = lua_tostring(L, -1);
  fprintf(stderr, "mcplink: unprotected Lua error: %s\n", m ? m : "(not a string)");
  abort();
}

size_t mcpl_state_kept(lua_State *L, size_t *limit) {
  void *ud = NULL;
  if (limit) *limit = LA_KEEP;
  if (lua_getallocf(L, &ud) != la_alloc) return 0;
  return ((la_lists *)ud)->kept;
}

void mcpl_state_close(lua_State *L) {
  if (!L) return;
  void *ud = NULL;
  lua_Alloc f = lua_getallocf(L, &ud);
  lua_close(L);
  if (f != la_alloc) return;
  la_lists *a = ud;
  for (int c = 1; c <= LA_CLASSES; c++)
    for (la_block *b = a->free[c], *next; b; b = next) {
      next = b->next;
      free(b);
    }
  free(a);
}

static lua_State *new_state(mcpl_engine *e) {
  la_lists *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  lua_State *L = lua_newstate(la_alloc, a);
  if (!L) {
    free(a);
    return NULL;
  }
  lua_atpanic(L, la_panic);
  lua_setwarnf(L, NULL, NULL);
  /* Generational collection: an op's garbage (its decoded JSON, requests,
   * rows) dies young, while the loaded modules and caches live as long as
   * the state; the incremental collector marked and swept all of them again
   * every cycle (tool.call: ~9% of the engine's CPU in the collector and
   * the allocator's cold blocks, and its p99). Discovery, which makes and
   * drops a long list in one op, runs incremental (lua/discovery.lua). */
  lua_gc(L, LUA_GCGEN, 0, 0);
  mcpl_engine_bind(L, e);
  open_safe_libs(L);
  return L;
}

static void preload(lua_State *L, const char *const *names) {
  const mcpl_area_def *areas = mcpl_engine_areas(mcpl_engine_of(L));
  lua_newtable(L);
  for (int a = 0; a < MCPL_AREA_COUNT; a++) {
    int want = names == NULL;
    for (int i = 0; names && names[i]; i++) want |= strcmp(names[i], areas[a].name) == 0;
    if (!want) continue;
    lua_pushcfunction(L, areas[a].open);
    lua_setfield(L, -2, areas[a].name);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "mcpl.preload");
}

static lua_State *boot(mcpl_engine *e, const char *const *areas, const char *init,
                       const char *regkey, char **err) {
  lua_State *L = new_state(e);
  if (!L) {
    if (err) *err = mcpl_json_error("internal", "out of memory creating Lua state", NULL);
    return NULL;
  }
  preload(L, areas);
  lua_pushcfunction(L, safe_require);
  lua_pushstring(L, init);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *m = NULL, *code = "internal";
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "message");
      lua_getfield(L, -2, "code");
      if (lua_isstring(L, -1)) code = lua_tostring(L, -1);
      m = lua_tostring(L, -2);
    } else m = lua_tostring(L, -1);
    mcpl_log(e, "error", "engine Lua failed to load: %s", m ? m : "?");
    if (err) *err = mcpl_json_error(code, m ? m : "engine Lua failed to load", NULL);
    mcpl_state_close(L);
    return NULL;
  }
  lua_setfield(L, LUA_REGISTRYINDEX, regkey);
  return L;
}

lua_State *mcpl_state_engine(mcpl_engine *e, char **err) {
  return boot(e, NULL, "init", "mcpl.dispatch", err);
}

lua_State *mcpl_state_script(mcpl_engine *e, char **err) {
  static const char *const script_areas[] = {"json", "log", "core", "call", NULL};
  lua_State *L = boot(e, script_areas, "script.prelude", "mcpl.script", err);
  if (L) lua_sethook(L, script_interrupt_hook, LUA_MASKCOUNT, 10000);
  return L;
}
