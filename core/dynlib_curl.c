/* dynlib_curl.c: libcurl (libcurl.so.4) opened on first use: a command that
 * sends no request maps neither it nor the libraries it needs. */
#include "dynlib.h"
#include "dynlib_curl.h"

DYNLIB_MODULE(dynlib_curl_api, dynlib_curl_ready, dynlib_curl, DYNLIB_CURL_SYMBOLS,
              "libcurl.so.4", "libcurl4", "MCPLINK_LIBCURL")
