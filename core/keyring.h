/* keyring.h: the key ring's internal interface for crypto.c (seal/open look
 * keys up here). Everyone else uses the crypto_ring_* functions of crypto.h. */
#ifndef MCPL_KEYRING_H
#define MCPL_KEYRING_H

#include "crypto.h"

/* Copies the key with id kid (NULL: the current key) into key and its id into
 * kid_out. A kid not in memory triggers a reload of a changed key file.
 * Returns an mcpl_code; key_unavailable names the key id. */
int keyring_get(mcpl_engine *e, const char *kid, unsigned char key[CRYPTO_KEY_LEN],
                char kid_out[CRYPTO_KID_MAX], char *err, size_t errn);

/* Engine lifecycle (called by crypto_engine_init/fini): loads an existing
 * key file, refusing one readable by group or others. */
int keyring_engine_init(mcpl_engine *e, char **err);
void keyring_engine_fini(mcpl_engine *e);

#endif
