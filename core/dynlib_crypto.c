/* dynlib_crypto.c: libcrypto (libcrypto.so.3) opened on first use: a command that
 * seals, opens, hashes and signs nothing (server list) never maps it. */
#include "dynlib.h"
#include "dynlib_crypto.h"

DYNLIB_MODULE(dynlib_crypto_api, dynlib_crypto_ready, dynlib_crypto, DYNLIB_CRYPTO_SYMBOLS,
              "libcrypto.so.3", "libssl3", NULL)
