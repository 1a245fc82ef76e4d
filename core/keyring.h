/* keyring.h: the key ring (keyring.c): the engine's AES-256 keys from its key
 * file, and sealing and opening secrets with them (crypto.c does the cipher). */
#ifndef MCPL_KEYRING_H
#define MCPL_KEYRING_H

#include <stddef.h>
#include "crypto.h"
#include "engine.h"

/* Engine-wide and thread-safe. keyring_engine_init (engine.h) loads an
 * existing key file at open, refusing one readable by group or others. */

typedef struct {
  char kid[CRYPTO_KID_MAX];
  long long created;   /* unix seconds */
  int current;
} keyring_key_info;

/* Is a key ring loaded for this engine? */
int keyring_loaded(mcpl_engine *e);
/* Loads the key file; when it does not exist and may_create is set, creates
 * it (mode 0600) with one fresh key. Returns an mcpl_code; err gets a
 * message without secret values. */
int keyring_load(mcpl_engine *e, int may_create, char *err, size_t errn);
/* Adds a fresh key, makes it current and rewrites the key file atomically.
 * kid receives its id. */
int keyring_add(mcpl_engine *e, char kid[CRYPTO_KID_MAX], char *err, size_t errn);
/* Removes a key that is not current from the ring and the key file. */
int keyring_remove(mcpl_engine *e, const char *kid, char *err, size_t errn);
/* Copies up to max key infos; returns the number of keys in the ring. */
int keyring_list(mcpl_engine *e, keyring_key_info *out, int max);

/* Seals plaintext under the current key with aad bound in (crypto_seal).
 * Returns an mcpl_code. */
int keyring_seal(mcpl_engine *e, const char *aad, size_t aadn, const unsigned char *pt,
                 size_t ptn, char **out, char *err, size_t errn);
/* Opens sealed text with the key it names (crypto_open). A key id not in
 * memory makes the ring read a rewritten key file first; key_unavailable
 * names the key id. */
int keyring_open(mcpl_engine *e, const char *aad, size_t aadn, const char *sealed,
                 unsigned char **pt, size_t *ptn, char *err, size_t errn);
/* keyring_open for a secret about to be used: what it opens is kept for a
 * short while and answers the next use of the same sealed text (keyring.c
 * says how it stays right); keyring_forget wipes what is kept of one row's
 * secrets (a row that changed or went), keyring_opened_count says how many
 * are kept. Key rotation opens with keyring_open, keeping nothing. */
int keyring_open_kept(mcpl_engine *e, const char *aad, size_t aadn, const char *sealed,
                      unsigned char **pt, size_t *ptn, char *err, size_t errn);
void keyring_forget(mcpl_engine *e, const char *table, const char *id);
int keyring_opened_count(mcpl_engine *e);

#endif
