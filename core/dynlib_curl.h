/* dynlib_curl.h: libcurl through a table of pointers filled by dlopen on first
 * use; included instead of <curl/curl.h>, so calls read as libcurl's own. */
#ifndef MCPL_DYNLIB_CURL_H
#define MCPL_DYNLIB_CURL_H

/* curl.h's type-checking wrappers (GCC) call the functions by name; the
 * names below are macros into the table instead. `make lint` compiles the
 * callers once more with DYNLIB_CURL_TYPECHECK, which keeps those wrappers
 * and leaves the names alone, so curl_easy_setopt's arguments are still
 * checked (that object is not linked). */
#ifndef DYNLIB_CURL_TYPECHECK
#define CURL_DISABLE_TYPECHECK 1
#endif
#include <curl/curl.h>
#include <openssl/ssl.h>

/* Every libcurl function the engine calls. One used elsewhere but not
 * listed here is an undefined reference when mcplink or libmcplink.so is
 * linked (neither links libcurl): add it to both lists. The last entry is
 * libssl's, the one libcurl itself uses (libssl.so.3 comes with libcurl and is
 * found through it): only a TLS context libcurl made ever needs it, so
 * neither links libssl either. */
#define DYNLIB_CURL_SYMBOLS(X) \
  X(curl_global_init) X(curl_free) X(curl_easy_init) X(curl_easy_cleanup) X(curl_easy_reset) \
  X(curl_easy_duphandle) X(curl_easy_pause) X(curl_easy_setopt) X(curl_easy_getinfo) \
  X(curl_easy_strerror) X(curl_multi_init) X(curl_multi_cleanup) X(curl_multi_setopt) \
  X(curl_multi_add_handle) X(curl_multi_remove_handle) X(curl_multi_perform) X(curl_multi_poll) \
  X(curl_multi_wait) X(curl_multi_timeout) X(curl_multi_wakeup) X(curl_multi_info_read) \
  X(curl_multi_strerror) X(curl_share_init) X(curl_share_cleanup) X(curl_share_setopt) \
  X(curl_slist_append) X(curl_slist_free_all) X(curl_url) X(curl_url_cleanup) X(curl_url_dup) \
  X(curl_url_get) X(curl_url_set) X(curl_url_strerror) X(SSL_CTX_set_cert_store)

typedef struct {
#define DYNLIB_CURL_FIELD(f) __typeof__(f) *p_##f;
  DYNLIB_CURL_SYMBOLS(DYNLIB_CURL_FIELD)
#undef DYNLIB_CURL_FIELD
} dynlib_curl_api;

/* Loads libcurl once (the first caller of either function, from any
 * thread; the others wait). dynlib_curl_ready: 0, or -1 with why in err
 * ("libcurl.so.4 could not be loaded ..."). An entry point checks it before
 * the first call; dynlib_curl() itself aborts when the library is not there. */
int dynlib_curl_ready(char *err, size_t en);
const dynlib_curl_api *dynlib_curl(void);

#ifndef DYNLIB_CURL_TYPECHECK
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_share_setopt
#undef curl_multi_setopt
#define curl_global_init (*dynlib_curl()->p_curl_global_init)
#define curl_free (*dynlib_curl()->p_curl_free)
#define curl_easy_init (*dynlib_curl()->p_curl_easy_init)
#define curl_easy_cleanup (*dynlib_curl()->p_curl_easy_cleanup)
#define curl_easy_reset (*dynlib_curl()->p_curl_easy_reset)
#define curl_easy_duphandle (*dynlib_curl()->p_curl_easy_duphandle)
#define curl_easy_pause (*dynlib_curl()->p_curl_easy_pause)
#define curl_easy_setopt (*dynlib_curl()->p_curl_easy_setopt)
#define curl_easy_getinfo (*dynlib_curl()->p_curl_easy_getinfo)
#define curl_easy_strerror (*dynlib_curl()->p_curl_easy_strerror)
#define curl_multi_init (*dynlib_curl()->p_curl_multi_init)
#define curl_multi_cleanup (*dynlib_curl()->p_curl_multi_cleanup)
#define curl_multi_setopt (*dynlib_curl()->p_curl_multi_setopt)
#define curl_multi_add_handle (*dynlib_curl()->p_curl_multi_add_handle)
#define curl_multi_remove_handle (*dynlib_curl()->p_curl_multi_remove_handle)
#define curl_multi_perform (*dynlib_curl()->p_curl_multi_perform)
#define curl_multi_poll (*dynlib_curl()->p_curl_multi_poll)
#define curl_multi_wait (*dynlib_curl()->p_curl_multi_wait)
#define curl_multi_timeout (*dynlib_curl()->p_curl_multi_timeout)
#define curl_multi_wakeup (*dynlib_curl()->p_curl_multi_wakeup)
#define curl_multi_info_read (*dynlib_curl()->p_curl_multi_info_read)
#define curl_multi_strerror (*dynlib_curl()->p_curl_multi_strerror)
#define curl_share_init (*dynlib_curl()->p_curl_share_init)
#define curl_share_cleanup (*dynlib_curl()->p_curl_share_cleanup)
#define curl_share_setopt (*dynlib_curl()->p_curl_share_setopt)
#define curl_slist_append (*dynlib_curl()->p_curl_slist_append)
#define curl_slist_free_all (*dynlib_curl()->p_curl_slist_free_all)
#define curl_url (*dynlib_curl()->p_curl_url)
#define curl_url_cleanup (*dynlib_curl()->p_curl_url_cleanup)
#define curl_url_dup (*dynlib_curl()->p_curl_url_dup)
#define curl_url_get (*dynlib_curl()->p_curl_url_get)
#define curl_url_set (*dynlib_curl()->p_curl_url_set)
#define curl_url_strerror (*dynlib_curl()->p_curl_url_strerror)
#define SSL_CTX_set_cert_store (*dynlib_curl()->p_SSL_CTX_set_cert_store)
#endif

#endif
