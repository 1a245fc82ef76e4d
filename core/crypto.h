/* crypto.h: internal crypto primitives (OpenSSL 3): random bytes, base64url,
 * AES-256-GCM sealing under a given key. The key ring (keyring.h) is above. */
#ifndef MCPL_CRYPTO_H
#define MCPL_CRYPTO_H

#include <stddef.h>
#include "mcplink.h"

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

/* Seals plaintext under key (whose id kid the sealed text records) with aad
 * bound in. *out is a malloc'd NUL-terminated sealed text. Returns an
 * mcpl_code. The key ring (keyring.c) picks the key. */
int crypto_seal(const unsigned char key[CRYPTO_KEY_LEN], const char *kid, const char *aad,
                size_t aadn, const unsigned char *pt, size_t ptn, char **out, char *err,
                size_t errn);
/* Opens sealed text with key, the key of the id it records; *pt is malloc'd
 * (NUL-terminated, length *ptn); the caller must crypto_wipe_free it. A key
 * that does not open it is key_unavailable, naming the key id. */
int crypto_open(const unsigned char key[CRYPTO_KEY_LEN], const char *aad, size_t aadn,
                const char *sealed, unsigned char **pt, size_t *ptn, char *err, size_t errn);
/* The key id recorded in sealed text; 0, or -1 when it is not sealed text. */
int crypto_sealed_kid(const char *sealed, char kid[CRYPTO_KID_MAX]);
/* OPENSSL_cleanse then free. */
void crypto_wipe_free(void *p, size_t n);

#endif
