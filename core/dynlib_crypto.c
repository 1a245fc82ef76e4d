/* dynlib_crypto.c: libcrypto (libcrypto.so.3) opened on first use: a command that
 * seals, opens, hashes and signs nothing (server list) never maps it. */
#include "dynlib.h"
#include "dynlib_crypto.h"

static dynlib dynlib_crypto_lib = DYNLIB_INIT("libcrypto.so.3", "libssl3", NULL);
static dynlib_crypto_api dynlib_crypto_table;

static void dynlib_crypto_load(void) {
  if (dynlib_open(&dynlib_crypto_lib) != 0) return;
#define DYNLIB_CRYPTO_BIND(f) \
  dynlib_crypto_table.p_##f = (__typeof__(dynlib_crypto_table.p_##f))dynlib_sym(&dynlib_crypto_lib, #f);
  DYNLIB_CRYPTO_SYMBOLS(DYNLIB_CRYPTO_BIND)
#undef DYNLIB_CRYPTO_BIND
  dynlib_done(&dynlib_crypto_lib);
}

int dynlib_crypto_ready(char *err, size_t en) {
  pthread_once(&dynlib_crypto_lib.once, dynlib_crypto_load);
  return dynlib_status(&dynlib_crypto_lib, err, en);
}

const dynlib_crypto_api *dynlib_crypto(void) {
  pthread_once(&dynlib_crypto_lib.once, dynlib_crypto_load);
  if (!dynlib_crypto_lib.ok) dynlib_unloaded(&dynlib_crypto_lib);
  return &dynlib_crypto_table;
}
