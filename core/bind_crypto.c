/* bind_crypto.c: the Lua `crypto` module: random tokens, hashes, HMAC,
 * base64url, PKCE and constant-time comparison. The key ring is in keyring.c. */
#include <pthread.h>
#include <string.h>
#include <lauxlib.h>
#include "crypto.h"
#include "dynlib_crypto.h"
#include "engine.h"

#define RANDOM_MAX 65536
#define PKCE_BYTES 32

static void push_b64url(lua_State *L, const unsigned char *p, size_t n) {
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, crypto_b64url_len(n) + 1);
  crypto_b64url_encode(p, n, out);
  luaL_pushresultsize(&b, crypto_b64url_len(n));
}

static void push_hex(lua_State *L, const unsigned char *p, size_t n) {
  static const char hex[] = "0123456789abcdef";
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, 2 * n);
  for (size_t i = 0; i < n; i++) { out[2 * i] = hex[p[i] >> 4]; out[2 * i + 1] = hex[p[i] & 15]; }
  luaL_pushresultsize(&b, 2 * n);
}

/* libcrypto is opened by the first function here that needs it: a missing
 * one is `unavailable`, naming it (crypto_random would abort). */
static void need_crypto(lua_State *L) {
  char why[512];
  if (dynlib_crypto_ready(why, sizeof why) != 0) mcpl_lua_error(L, "unavailable", "%s", why);
}

static size_t check_count(lua_State *L, int idx, lua_Integer def) {
  lua_Integer n = luaL_optinteger(L, idx, def);
  if (n < 1 || n > RANDOM_MAX)
    mcpl_lua_error(L, "invalid_argument", "byte count must be 1..%d", RANDOM_MAX);
  return (size_t)n;
}

/* crypto.random(n) -> n random bytes */
static int l_random(lua_State *L) {
  size_t n = check_count(L, 1, 32);
  need_crypto(L);
  luaL_Buffer b;
  unsigned char *p = (unsigned char *)luaL_buffinitsize(L, &b, n);
  if (crypto_random(p, n) != 0) return mcpl_lua_error(L, "internal", "no randomness available");
  luaL_pushresultsize(&b, n);
  return 1;
}

/* crypto.random_token([nbytes=32]) -> base64url of nbytes random bytes */
static int l_random_token(lua_State *L) {
  size_t n = check_count(L, 1, 32);
  need_crypto(L);
  unsigned char buf[RANDOM_MAX];
  if (crypto_random(buf, n) != 0) return mcpl_lua_error(L, "internal", "no randomness available");
  push_b64url(L, buf, n);
  OPENSSL_cleanse(buf, n);
  return 1;
}

/* SHA-256 with the algorithm fetched once: OpenSSL's one-shot SHA256()
 * looks it up again on every call, which costs more than hashing a short
 * text (discovery hashes one per tool). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

static void sha256(lua_State *L, const char *s, size_t n, unsigned char *md) {
  need_crypto(L);
  pthread_once(&sha256_once, sha256_fetch);
  if (sha256_md && EVP_Digest(s, n, md, NULL, sha256_md, NULL)) return;
  if (!SHA256((const unsigned char *)s, n, md)) mcpl_lua_error(L, "internal", "SHA-256 failed");
}

static int l_sha256(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  unsigned char md[SHA256_DIGEST_LENGTH];
  sha256(L, s, n, md);
  push_hex(L, md, sizeof md);
  return 1;
}

static int l_sha256_b64url(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  unsigned char md[SHA256_DIGEST_LENGTH];
  sha256(L, s, n, md);
  push_b64url(L, md, sizeof md);
  return 1;
}

/* crypto.hmac_sha256(key, s [, "hex"|"raw"|"b64url"]) -> digest (hex by default) */
static int l_hmac_sha256(lua_State *L) {
  size_t kn, n;
  const char *k = luaL_checklstring(L, 1, &kn);
  const char *s = luaL_checklstring(L, 2, &n);
  static const char *const forms[] = {"hex", "raw", "b64url", NULL};
  int form = luaL_checkoption(L, 3, "hex", forms);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdn = 0;
  need_crypto(L);
  if (kn > 0x7fffffff || !HMAC(EVP_sha256(), k, (int)kn, (const unsigned char *)s, n, md, &mdn))
    return mcpl_lua_error(L, "internal", "HMAC failed");
  if (form == 0) push_hex(L, md, mdn);
  else if (form == 1) lua_pushlstring(L, (const char *)md, mdn);
  else push_b64url(L, md, mdn);
  OPENSSL_cleanse(md, sizeof md);
  return 1;
}

static int l_b64url_encode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  push_b64url(L, (const unsigned char *)s, n);
  return 1;
}

/* crypto.base64url_decode(s) -> bytes, or nil, error for invalid input */
static int l_b64url_decode(lua_State *L) {
  size_t n, outn = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  while (n > 0 && s[n - 1] == '=') n--; /* tolerate padding from peers */
  luaL_Buffer b;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n * 3 / 4 + 1);
  if (crypto_b64url_decode(s, n, out, &outn) != 0) {
    lua_pushnil(L);
    mcpl_push_error(L, "invalid_argument", "not valid base64url");
    return 2;
  }
  luaL_pushresultsize(&b, outn);
  return 1;
}

/* crypto.base64_encode(s): standard alphabet with padding (HTTP Basic auth). */
static int l_b64_encode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (n > 0x3fffffff) return mcpl_lua_error(L, "too_large", "input too large");
  need_crypto(L);
  luaL_Buffer b;
  size_t cap = 4 * ((n + 2) / 3) + 1;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, cap);
  int w = EVP_EncodeBlock(out, (const unsigned char *)s, (int)n);
  luaL_pushresultsize(&b, (size_t)w);
  return 1;
}

/* crypto.pkce() -> verifier, challenge (S256) */
static int l_pkce(lua_State *L) {
  unsigned char r[PKCE_BYTES], md[SHA256_DIGEST_LENGTH];
  char verifier[64];
  need_crypto(L);
  if (crypto_random(r, sizeof r) != 0) return mcpl_lua_error(L, "internal", "no randomness available");
  crypto_b64url_encode(r, sizeof r, verifier);
  SHA256((const unsigned char *)verifier, strlen(verifier), md);
  lua_pushstring(L, verifier);
  push_b64url(L, md, sizeof md);
  OPENSSL_cleanse(r, sizeof r);
  OPENSSL_cleanse(verifier, sizeof verifier);
  return 2;
}

/* crypto.constant_time_equal(a, b): time depends on lengths only. */
static int l_ct_equal(lua_State *L) {
  size_t an, bn;
  const char *a = luaL_checklstring(L, 1, &an);
  const char *b = luaL_checklstring(L, 2, &bn);
  need_crypto(L);
  lua_pushboolean(L, an == bn && CRYPTO_memcmp(a, b, an) == 0);
  return 1;
}

int luaopen_mcpl_crypto(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"random", l_random}, {"random_token", l_random_token}, {"sha256", l_sha256},
    {"sha256_b64url", l_sha256_b64url}, {"hmac_sha256", l_hmac_sha256},
    {"base64url_encode", l_b64url_encode}, {"base64url_decode", l_b64url_decode},
    {"base64_encode", l_b64_encode}, {"pkce", l_pkce}, {"constant_time_equal", l_ct_equal},
    {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
