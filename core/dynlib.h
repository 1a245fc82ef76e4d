/* dynlib.h: shared libraries opened with dlopen on first need, so a command
 * that sends no request, uses no PostgreSQL and edits no line maps none. */
#ifndef MCPL_DYNLIB_H
#define MCPL_DYNLIB_H

#include <pthread.h>
#include <stddef.h>

/* One library. Each library's module (dynlib_curl.c, dynlib_pq.c,
 * cli/editline.c) holds one of these and a table of its symbols, filled by
 * a load function it runs under `once`: every thread that needs the library
 * calls pthread_once first, so the table is written once and read after. */
typedef struct {
  const char *name;     /* the file dlopen is given: "libcurl.so.4" */
  const char *package;  /* the Debian package that ships it: "libcurl4" */
  const char *env;      /* a variable naming another file to load instead, or NULL */
  pthread_once_t once;
  void *handle;         /* NULL until opened; never closed */
  int ok;               /* opened, and every symbol found */
  char error[512];      /* why not, once tried */
} dynlib;

#define DYNLIB_INIT(name, package, env) {(name), (package), (env), PTHREAD_ONCE_INIT, NULL, 0, ""}

/* Opens d. RTLD_LAZY, as the dynamic loader binds a program's own libraries
 * unless told otherwise: binding every function of libcurl and the thirty
 * libraries it needs at once costs 3.4 M instructions, most never called
 * (the functions mcplink calls are looked up here, so a missing one is
 * still found at once). Returns 0, or -1 with d->error naming the library
 * and the reason. */
int dynlib_open(dynlib *d);
/* The address of symbol sym of the opened d, or NULL with d->error naming
 * the library and the symbol (the first missing one is kept). */
void *dynlib_sym(dynlib *d, const char *sym);
/* After the symbols: marks d usable when nothing was missing. */
void dynlib_done(dynlib *d);
/* 0 when d is usable, else -1 with why in err (en bytes). Call after once. */
int dynlib_status(const dynlib *d, char *err, size_t en);
/* A call through a table whose library did not load: a caller skipped
 * its check (the *_ready function). Says which library and why, aborts. */
_Noreturn void dynlib_unloaded(const dynlib *d);

/* DYNLIB_MODULE(api, ready_fn, table_fn, SYMBOLS, soname, package, env): the
 * body of one library's module: its dynlib and table (of type api), the
 * load run under pthread_once that fills the table from the X-macro list
 * SYMBOLS, ready_fn(err, en) (0, or -1 with why) and table_fn() (the table;
 * aborts when the library is not there). One per file. */
#define DYNLIB_BIND_(f) dl_table.p_##f = (__typeof__(dl_table.p_##f))dynlib_sym(&dl_lib, #f);
#define DYNLIB_MODULE(api, ready_fn, table_fn, SYMBOLS, soname, package, env) \
  static dynlib dl_lib = DYNLIB_INIT(soname, package, env);                    \
  static api dl_table;                                                         \
  static void dl_load(void) {                                                  \
    if (dynlib_open(&dl_lib) != 0) return;                                     \
    SYMBOLS(DYNLIB_BIND_)                                                      \
    dynlib_done(&dl_lib);                                                      \
  }                                                                            \
  int ready_fn(char *err, size_t en) {                                         \
    pthread_once(&dl_lib.once, dl_load);                                       \
    return dynlib_status(&dl_lib, err, en);                                    \
  }                                                                            \
  const api *table_fn(void) {                                                  \
    pthread_once(&dl_lib.once, dl_load);                                       \
    if (!dl_lib.ok) dynlib_unloaded(&dl_lib);                                  \
    return &dl_table;                                                          \
  }

#endif
