/* crypto.c: random bytes, base64url and AES-256-GCM sealing of secrets.
 * Sealed text records its key id; the AAD binds it to one row's field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "crypto.h"
#include "dynlib_crypto.h"

/* Without libcrypto this aborts, saying why (dynlib_crypto()): a caller that
 * can report an error checks dynlib_crypto_ready first. */
int crypto_random(void *buf, size_t n) {
  if (n > (size_t)0x7fffffff) return -1;
  return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

void crypto_wipe_free(void *p, size_t n) {
  if (!p) return;
  OPENSSL_cleanse(p, n);
  free(p);
}

/* ---- base64url ----------------------------------------------------------- */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t crypto_b64url_len(size_t n) { return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0); }

void crypto_b64url_encode(const unsigned char *in, size_t n, char *out) {
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
    out[o++] = B64URL[v >> 18 & 63]; out[o++] = B64URL[v >> 12 & 63];
    out[o++] = B64URL[v >> 6 & 63];  out[o++] = B64URL[v & 63];
  }
  if (n - i == 1) {
    unsigned v = (unsigned)in[i] << 16;
    out[o++] = B64URL[v >> 18 & 63]; out[o++] = B64URL[v >> 12 & 63];
  } else if (n - i == 2) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
    out[o++] = B64URL[v >> 18 & 63]; out[o++] = B64URL[v >> 12 & 63];
    out[o++] = B64URL[v >> 6 & 63];
  }
  out[o] = 0;
}

static int b64url_val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

int crypto_b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outn) {
  /* Strict: no padding, no whitespace, and unused trailing bits must be zero
   * so that every byte string has exactly one encoding. */
  if (n % 4 == 1) return -1;
  size_t o = 0;
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64url_val(in[i]);
    if (v < 0) return -1;
    acc = (acc << 6 | (unsigned)v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  if (bits && (acc & ((1u << bits) - 1))) return -1;
  *outn = o;
  return 0;
}

/* ---- AES-256-GCM ----------------------------------------------------------- */

int crypto_sealed_kid(const char *sealed, char kid[CRYPTO_KID_MAX]) {
  size_t pl = strlen(CRYPTO_SEAL_PREFIX);
  if (!sealed || strncmp(sealed, CRYPTO_SEAL_PREFIX, pl) != 0) return -1;
  const char *k = sealed + pl, *colon = strchr(k, ':');
  if (!colon || colon == k || (size_t)(colon - k) >= CRYPTO_KID_MAX) return -1;
  memcpy(kid, k, (size_t)(colon - k));
  kid[colon - k] = 0;
  return 0;
}

/* One GCM pass; enc selects the direction. For decryption tag is input. */
static int gcm(int enc, const unsigned char *key, const unsigned char *nonce, const char *aad,
               size_t aadn, const unsigned char *in, size_t n, unsigned char *out,
               unsigned char *tag) {
  int ok = 0, len = 0;
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (!c || n > 0x7fffffff || aadn > 0x7fffffff) goto done;
  if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1) goto done;
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, CRYPTO_NONCE_LEN, NULL) != 1) goto done;
  if (EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) != 1) goto done;
  if (EVP_CipherUpdate(c, NULL, &len, (const unsigned char *)aad, (int)aadn) != 1) goto done;
  if (n && EVP_CipherUpdate(c, out, &len, in, (int)n) != 1) goto done;
  if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CRYPTO_TAG_LEN, tag) != 1) goto done;
  if (EVP_CipherFinal_ex(c, out + len, &len) != 1) goto done;
  if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CRYPTO_TAG_LEN, tag) != 1) goto done;
  ok = 1;
done:
  EVP_CIPHER_CTX_free(c);
  return ok;
}

int crypto_seal(const unsigned char key[CRYPTO_KEY_LEN], const char *kid, const char *aad,
                size_t aadn, const unsigned char *pt, size_t ptn, char **out, char *err,
                size_t errn) {
  unsigned char *raw = NULL;
  int rc = MCPL_E_INTERNAL;
  *out = NULL;
  if (dynlib_crypto_ready(err, errn) != 0) return MCPL_E_UNAVAILABLE;
  size_t rawn = CRYPTO_NONCE_LEN + ptn + CRYPTO_TAG_LEN;
  raw = malloc(rawn);
  if (!raw) { snprintf(err, errn, "out of memory"); goto done; }
  if (crypto_random(raw, CRYPTO_NONCE_LEN) != 0) { snprintf(err, errn, "no randomness"); goto done; }
  if (!gcm(1, key, raw, aad, aadn, pt, ptn, raw + CRYPTO_NONCE_LEN, raw + CRYPTO_NONCE_LEN + ptn)) {
    snprintf(err, errn, "encryption failed");
    goto done;
  }
  size_t pl = strlen(CRYPTO_SEAL_PREFIX), kl = strlen(kid);
  *out = malloc(pl + kl + 1 + crypto_b64url_len(rawn) + 1);
  if (!*out) { snprintf(err, errn, "out of memory"); goto done; }
  memcpy(*out, CRYPTO_SEAL_PREFIX, pl);
  memcpy(*out + pl, kid, kl);
  (*out)[pl + kl] = ':';
  crypto_b64url_encode(raw, rawn, *out + pl + kl + 1);
  rc = MCPL_OK;
done:
  free(raw);
  return rc;
}

int crypto_open(const unsigned char key[CRYPTO_KEY_LEN], const char *aad, size_t aadn,
                const char *sealed, unsigned char **pt, size_t *ptn, char *err, size_t errn) {
  char kid[CRYPTO_KID_MAX];
  unsigned char *raw = NULL;
  *pt = NULL;
  *ptn = 0;
  if (dynlib_crypto_ready(err, errn) != 0) return MCPL_E_UNAVAILABLE;
  if (crypto_sealed_kid(sealed, kid) != 0) {
    snprintf(err, errn, "stored secret is not in a known sealed format");
    return MCPL_E_INTERNAL;
  }
  int rc = MCPL_E_INTERNAL;
  const char *b = sealed + strlen(CRYPTO_SEAL_PREFIX) + strlen(kid) + 1;
  size_t bn = strlen(b), rawn = 0;
  raw = malloc(bn * 3 / 4 + 1);
  if (!raw) { snprintf(err, errn, "out of memory"); goto done; }
  if (crypto_b64url_decode(b, bn, raw, &rawn) != 0 || rawn < CRYPTO_NONCE_LEN + CRYPTO_TAG_LEN) {
    snprintf(err, errn, "stored secret sealed with key '%s' is damaged", kid);
    goto done;
  }
  size_t n = rawn - CRYPTO_NONCE_LEN - CRYPTO_TAG_LEN;
  *pt = malloc(n + 1);
  if (!*pt) { snprintf(err, errn, "out of memory"); goto done; }
  if (!gcm(0, key, raw, aad, aadn, raw + CRYPTO_NONCE_LEN, n, *pt, raw + CRYPTO_NONCE_LEN + n)) {
    /* A wrong key and a ciphertext moved to another row look the same to
     * GCM; both mean this key cannot open this value here. */
    crypto_wipe_free(*pt, n + 1);
    *pt = NULL;
    snprintf(err, errn, "key '%s' cannot decrypt this secret (wrong key, or the value "
             "was moved from another record)", kid);
    rc = MCPL_E_KEY_UNAVAILABLE;
    goto done;
  }
  (*pt)[n] = 0;
  *ptn = n;
  rc = MCPL_OK;
done:
  free(raw);
  return rc;
}
