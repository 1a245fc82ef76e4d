/* dynlib_curl.c: libcurl (libcurl.so.4) opened on first use: a command that
 * sends no request maps neither it nor the libraries it needs. */
#include "dynlib.h"
#include "dynlib_curl.h"

static dynlib dynlib_curl_lib = DYNLIB_INIT("libcurl.so.4", "libcurl4", "MCPLINK_LIBCURL");
static dynlib_curl_api dynlib_curl_table;

static void dynlib_curl_load(void) {
  if (dynlib_open(&dynlib_curl_lib) != 0) return;
#define DYNLIB_CURL_BIND(f) \
  dynlib_curl_table.p_##f = (__typeof__(dynlib_curl_table.p_##f))dynlib_sym(&dynlib_curl_lib, #f);
  DYNLIB_CURL_SYMBOLS(DYNLIB_CURL_BIND)
#undef DYNLIB_CURL_BIND
  dynlib_done(&dynlib_curl_lib);
}

int dynlib_curl_ready(char *err, size_t en) {
  pthread_once(&dynlib_curl_lib.once, dynlib_curl_load);
  return dynlib_status(&dynlib_curl_lib, err, en);
}

const dynlib_curl_api *dynlib_curl(void) {
  pthread_once(&dynlib_curl_lib.once, dynlib_curl_load);
  if (!dynlib_curl_lib.ok) dynlib_unloaded(&dynlib_curl_lib);
  return &dynlib_curl_table;
}
