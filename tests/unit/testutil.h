/* testutil.h: helpers for C unit tests: an engine on a fresh temporary
 * database and key file, removed afterwards. Header-only. */
#ifndef MCPL_TESTUTIL_H
#define MCPL_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mcplink.h"

typedef struct {
  char dir[64];
  char db[128];
  char key[128];
} tu_env;

static inline int tu_rm(const char *p, const struct stat *sb, int f, struct FTW *w) {
  (void)sb; (void)f; (void)w;
  return remove(p);
}

static inline void tu_paths(tu_env *env) {
  strcpy(env->dir, "/tmp/mcplink-unit-XXXXXX");
  if (!mkdtemp(env->dir)) { perror("mkdtemp"); abort(); }
  snprintf(env->db, sizeof env->db, "%s/t.db", env->dir);
  snprintf(env->key, sizeof env->key, "%s/t.key", env->dir);
}

/* Opens an engine on a fresh database; pool_size may be NULL. */
static inline mcpl_engine *tu_open(tu_env *env, const char *pool_size) {
  tu_paths(env);
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", env->db);
  mcpl_options_set(o, "key_file", env->key);
  mcpl_options_set(o, "policies", "policies");
  if (pool_size) mcpl_options_set(o, "pool_size", pool_size);
  char *err = NULL;
  mcpl_engine *e = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!e) { fprintf(stderr, "mcpl_open: %s\n", err ? err : "?"); abort(); }
  return e;
}

static inline void tu_close(tu_env *env, mcpl_engine *e) {
  mcpl_close(e);
  nftw(env->dir, tu_rm, 8, FTW_DEPTH | FTW_PHYS);
}

#endif
