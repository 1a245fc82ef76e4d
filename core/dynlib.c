/* dynlib.c: opens a shared library with dlopen and looks up its symbols,
 * with errors that name the library, its package and the missing symbol. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dynlib.h"

/* The file to open: the override variable's value when set and not empty.
 * secure_getenv: a set-user-ID or set-group-ID process ignores it. */
static const char *dynlib_file(const dynlib *d) {
  const char *f = d->env ? secure_getenv(d->env) : NULL;
  return f && *f ? f : d->name;
}

int dynlib_open(dynlib *d) {
  const char *file = dynlib_file(d);
  d->handle = dlopen(file, RTLD_LAZY | RTLD_LOCAL);
  if (d->handle) return 0;
  const char *why = dlerror();
  if (file != d->name)
    snprintf(d->error, sizeof d->error, "%s could not be loaded from %s (set by %s): %s", d->name,
             file, d->env, why ? why : "unknown error");
  else
    snprintf(d->error, sizeof d->error, "%s could not be loaded (Debian package %s): %s", d->name,
             d->package, why ? why : "unknown error");
  return -1;
}

void *dynlib_sym(dynlib *d, const char *sym) {
  if (!d->handle) return NULL;
  dlerror();
  void *p = dlsym(d->handle, sym);
  if (!p && !d->error[0]) {
    const char *why = dlerror();
    snprintf(d->error, sizeof d->error, "%s could not be loaded: it has no symbol %s (%s)", d->name,
             sym, why ? why : "not found");
  }
  return p;
}

void dynlib_done(dynlib *d) { d->ok = d->handle && !d->error[0]; }

int dynlib_status(const dynlib *d, char *err, size_t en) {
  if (d->ok) return 0;
  if (err && en) snprintf(err, en, "%s", d->error[0] ? d->error : "not loaded");
  return -1;
}

_Noreturn void dynlib_unloaded(const dynlib *d) {
  fprintf(stderr, "mcplink: %s used without a check: %s\n", d->name,
          d->error[0] ? d->error : "not loaded");
  abort();
}
