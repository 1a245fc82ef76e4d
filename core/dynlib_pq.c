/* dynlib_pq.c: libpq (libpq.so.5) opened on first use: a command that
 * uses no PostgreSQL database maps neither it nor what it needs. */
#include "dynlib.h"
#include "dynlib_pq.h"

DYNLIB_MODULE(dynlib_pq_api, dynlib_pq_ready, dynlib_pq, DYNLIB_PQ_SYMBOLS,
              "libpq.so.5", "libpq5", "MCPLINK_LIBPQ")
