/* dynlib_pq.c: libpq (libpq.so.5) opened on first use: a command that
 * uses no PostgreSQL database maps neither it nor what it needs. */
#include "dynlib.h"
#include "dynlib_pq.h"

static dynlib dynlib_pq_lib = DYNLIB_INIT("libpq.so.5", "libpq5", "MCPLINK_LIBPQ");
static dynlib_pq_api dynlib_pq_table;

static void dynlib_pq_load(void) {
  if (dynlib_open(&dynlib_pq_lib) != 0) return;
#define DYNLIB_PQ_BIND(f) \
  dynlib_pq_table.p_##f = (__typeof__(dynlib_pq_table.p_##f))dynlib_sym(&dynlib_pq_lib, #f);
  DYNLIB_PQ_SYMBOLS(DYNLIB_PQ_BIND)
#undef DYNLIB_PQ_BIND
  dynlib_done(&dynlib_pq_lib);
}

int dynlib_pq_ready(char *err, size_t en) {
  pthread_once(&dynlib_pq_lib.once, dynlib_pq_load);
  return dynlib_status(&dynlib_pq_lib, err, en);
}

const dynlib_pq_api *dynlib_pq(void) {
  pthread_once(&dynlib_pq_lib.once, dynlib_pq_load);
  if (!dynlib_pq_lib.ok) dynlib_unloaded(&dynlib_pq_lib);
  return &dynlib_pq_table;
}
