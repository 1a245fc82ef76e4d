/* crypto.h: internal crypto API (OpenSSL 3) shared by the crypto and store
 * bindings: random bytes, base64url, AES-256-GCM sealing under the key ring. */
#ifndef MCPL_CRYPTO_H
#define MCPL_CRYPTO_H

#include <stddef.h>
#include "engine.h"

#define CRYPTO_KEY_LEN 32
#define CRYPTO_NONCE_LEN 12
#define CRYPTO_TAG_LEN 16
#define CRYPTO_KID_MAX 32        /* "k-" + 16 hex + NUL fits easily */
#define CRYPTO_ERR_MAX 512
#define CRYPTO_SEAL_PREFIX "v1:"  /* sealed text: v1:<kid>:<b64url(nonce|ct|tag)> */

/* Fills buf with n cryptographically random bytes. Returns 0, -1 on failure. */
int crypto_random(void *buf, size_t n);

/* base64url without padding. crypto_b64url_len(n) is the encoded length. */
size_t crypto_b64url_len(size_t n);
void crypto_b64url_encode(const unsigned char *in, size_t n, char *out); /* NUL-terminates */
/* Decodes into out (capacity at least n*3/4+1). Returns 0, -1 on bad input. */
int crypto_b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outn);

/* ---- key ring (core/keyring.c); engine-wide, thread-safe --------------- */

typedef struct {
  char kid[CRYPTO_KID_MAX];
  long long created;   /* unix seconds */
  int current;
} crypto_key_info;

/* Is a key ring loaded for this engine? */
int crypto_ring_loaded(mcpl_engine *e);
/* Loads the key file; when it does not exist and may_create is set, creates
 * it (mode 0600) with one fresh key. Returns an mcpl_code; err gets a
 * message without secret values. */
int crypto_ring_load(mcpl_engine *e, int may_create, char *err, size_t errn);
/* Adds a fresh key, makes it current and rewrites the key file atomically.
 * kid receives its id. */
int crypto_ring_add(mcpl_engine *e, char kid[CRYPTO_KID_MAX], char *err, size_t errn);
/* Removes a key that is not current from the ring and the key file. */
int crypto_ring_remove(mcpl_engine *e, const char *kid, char *err, size_t errn);
/* Copies up to max key infos; returns the number of keys in the ring. */
int crypto_ring_list(mcpl_engine *e, crypto_key_info *out, int max);

/* Seals plaintext under the current key with aad bound in. *out is a
 * malloc'd NUL-terminated sealed text. Returns an mcpl_code. */
int crypto_seal(mcpl_engine *e, const char *aad, size_t aadn, const unsigned char *pt,
                size_t ptn, char **out, char *err, size_t errn);
/* Opens sealed text; *pt is malloc'd (NUL-terminated, length *ptn); the
 * caller must crypto_wipe_free it. key_unavailable names the key id. */
int crypto_open(mcpl_engine *e, const char *aad, size_t aadn, const char *sealed,
                unsigned char **pt, size_t *ptn, char *err, size_t errn);
/* The key id recorded in sealed text; 0, or -1 when it is not sealed text. */
int crypto_sealed_kid(const char *sealed, char kid[CRYPTO_KID_MAX]);
/* OPENSSL_cleanse then free. */
void crypto_wipe_free(void *p, size_t n);

#endif
