/* engine_base.h: the engine's own facts (options, log, area slots, interrupt),
 * kept by engine_base.c; engine.c embeds them first in struct mcpl_engine. */
#ifndef MCPL_ENGINE_BASE_H
#define MCPL_ENGINE_BASE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include "engine.h"

#define MCPL_NOPTS 10  /* the option names engine_base.c knows */

struct mcpl_engine_base {
  char *opt[MCPL_NOPTS];
  mcpl_log_fn log_fn;
  void *log_ud;
  mcpl_input_fn input_fn;  /* the default input handler (mcpl_options_set_input) */
  void *input_ud;
  unsigned input_methods;
  int log_level;
  FILE *log_file;
  pthread_mutex_t log_mu;
  atomic_int interrupted;  /* set from other threads and signal handlers */
  /* arms the hooks of the engine's Lua states at an interrupt (set by the
   * engine; async-signal-safe) */
  void (*arm_states)(mcpl_engine *e);
  void *slot[MCPL_AREA_COUNT];
  const mcpl_area_def *areas;  /* what every Lua state preloads */
};

/* Copies the options (o may be NULL) and opens the log; areas is the
 * engine's table of areas, kept for its Lua states. 0, or -1 with *err (an
 * error JSON) set; fini undoes either outcome. */
int mcpl_engine_base_init(struct mcpl_engine_base *b, const mcpl_options *o,
                          const mcpl_area_def *areas, char **err);
void mcpl_engine_base_fini(struct mcpl_engine_base *b);

#endif
