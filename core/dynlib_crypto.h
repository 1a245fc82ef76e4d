/* dynlib_crypto.h: libcrypto through a table of pointers filled by dlopen on
 * first use; included after OpenSSL's headers, so calls read as its own. */
#ifndef MCPL_DYNLIB_CRYPTO_H
#define MCPL_DYNLIB_CRYPTO_H

#include <stddef.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

/* Every libcrypto function the engine calls (the sk_X509_* macros of
 * OpenSSL's headers call the OPENSSL_sk_* ones). One used elsewhere but not
 * listed here is an undefined reference when mcplink or libmcplink.so is
 * linked (neither links libcrypto): add it to both lists. */
#define DYNLIB_CRYPTO_SYMBOLS(X) \
  X(CRYPTO_memcmp) X(ERR_clear_error) X(EVP_CIPHER_CTX_ctrl) X(EVP_CIPHER_CTX_free) \
  X(EVP_CIPHER_CTX_new) X(EVP_CipherFinal_ex) X(EVP_CipherInit_ex) X(EVP_CipherUpdate) \
  X(EVP_Digest) X(EVP_EncodeBlock) X(EVP_MD_fetch) X(EVP_aes_256_gcm) X(EVP_sha256) X(HMAC) \
  X(OPENSSL_sk_new_null) \
  X(OPENSSL_sk_num) X(OPENSSL_sk_pop_free) X(OPENSSL_sk_push) X(OPENSSL_sk_value) \
  X(PEM_read_X509) X(RAND_bytes) X(SHA256) X(X509_CRL_free) X(X509_LOOKUP_ctrl) \
  X(X509_LOOKUP_get_method_data) X(X509_LOOKUP_get_store) X(X509_LOOKUP_hash_dir) \
  X(X509_LOOKUP_meth_free) X(X509_LOOKUP_meth_new) X(X509_LOOKUP_meth_set_free) \
  X(X509_LOOKUP_meth_set_get_by_subject) X(X509_LOOKUP_meth_set_new_item) \
  X(X509_LOOKUP_set_method_data) X(X509_LOOKUP_store) X(X509_OBJECT_get0_X509) \
  X(X509_OBJECT_get0_X509_CRL) X(X509_OBJECT_retrieve_by_subject) X(X509_OBJECT_set1_X509) \
  X(X509_OBJECT_set1_X509_CRL) X(X509_STORE_add_cert) X(X509_STORE_add_lookup) X(X509_STORE_free) \
  X(X509_STORE_get0_objects) X(X509_STORE_lock) X(X509_STORE_new) X(X509_STORE_unlock) \
  X(X509_STORE_up_ref) X(X509_free) X(X509_get_default_cert_file) \
  X(X509_get_default_cert_file_env) X(X509_load_cert_crl_file)

typedef struct {
#define DYNLIB_CRYPTO_FIELD(f) __typeof__(f) *p_##f;
  DYNLIB_CRYPTO_SYMBOLS(DYNLIB_CRYPTO_FIELD)
#undef DYNLIB_CRYPTO_FIELD
} dynlib_crypto_api;

/* Loads libcrypto once (the first caller of either function, from any
 * thread; the others wait). dynlib_crypto_ready: 0, or -1 with why in err
 * ("libcrypto.so.3 could not be loaded ..."). The crypto module's entry
 * points check it; dynlib_crypto() itself aborts when the library is not
 * there (libcurl and libpq need it too: with libcurl loaded, it is). */
int dynlib_crypto_ready(char *err, size_t en);
const dynlib_crypto_api *dynlib_crypto(void);

/* Wiping needs no library: glibc's explicit_bzero is not optimised away
 * either, so a command that only wipes a key it read never opens libcrypto. */
#define OPENSSL_cleanse explicit_bzero
#define CRYPTO_memcmp (*dynlib_crypto()->p_CRYPTO_memcmp)
#define ERR_clear_error (*dynlib_crypto()->p_ERR_clear_error)
#define EVP_CIPHER_CTX_ctrl (*dynlib_crypto()->p_EVP_CIPHER_CTX_ctrl)
#define EVP_CIPHER_CTX_free (*dynlib_crypto()->p_EVP_CIPHER_CTX_free)
#define EVP_CIPHER_CTX_new (*dynlib_crypto()->p_EVP_CIPHER_CTX_new)
#define EVP_CipherFinal_ex (*dynlib_crypto()->p_EVP_CipherFinal_ex)
#define EVP_Digest (*dynlib_crypto()->p_EVP_Digest)
#define EVP_MD_fetch (*dynlib_crypto()->p_EVP_MD_fetch)
#define EVP_CipherInit_ex (*dynlib_crypto()->p_EVP_CipherInit_ex)
#define EVP_CipherUpdate (*dynlib_crypto()->p_EVP_CipherUpdate)
#define EVP_EncodeBlock (*dynlib_crypto()->p_EVP_EncodeBlock)
#define EVP_aes_256_gcm (*dynlib_crypto()->p_EVP_aes_256_gcm)
#define EVP_sha256 (*dynlib_crypto()->p_EVP_sha256)
#define HMAC (*dynlib_crypto()->p_HMAC)
#define OPENSSL_sk_new_null (*dynlib_crypto()->p_OPENSSL_sk_new_null)
#define OPENSSL_sk_num (*dynlib_crypto()->p_OPENSSL_sk_num)
#define OPENSSL_sk_pop_free (*dynlib_crypto()->p_OPENSSL_sk_pop_free)
#define OPENSSL_sk_push (*dynlib_crypto()->p_OPENSSL_sk_push)
#define OPENSSL_sk_value (*dynlib_crypto()->p_OPENSSL_sk_value)
#define PEM_read_X509 (*dynlib_crypto()->p_PEM_read_X509)
#define RAND_bytes (*dynlib_crypto()->p_RAND_bytes)
#define SHA256 (*dynlib_crypto()->p_SHA256)
#define X509_CRL_free (*dynlib_crypto()->p_X509_CRL_free)
#define X509_LOOKUP_ctrl (*dynlib_crypto()->p_X509_LOOKUP_ctrl)
#define X509_LOOKUP_get_method_data (*dynlib_crypto()->p_X509_LOOKUP_get_method_data)
#define X509_LOOKUP_get_store (*dynlib_crypto()->p_X509_LOOKUP_get_store)
#define X509_LOOKUP_hash_dir (*dynlib_crypto()->p_X509_LOOKUP_hash_dir)
#define X509_LOOKUP_meth_free (*dynlib_crypto()->p_X509_LOOKUP_meth_free)
#define X509_LOOKUP_meth_new (*dynlib_crypto()->p_X509_LOOKUP_meth_new)
#define X509_LOOKUP_meth_set_free (*dynlib_crypto()->p_X509_LOOKUP_meth_set_free)
#define X509_LOOKUP_meth_set_get_by_subject (*dynlib_crypto()->p_X509_LOOKUP_meth_set_get_by_subject)
#define X509_LOOKUP_meth_set_new_item (*dynlib_crypto()->p_X509_LOOKUP_meth_set_new_item)
#define X509_LOOKUP_set_method_data (*dynlib_crypto()->p_X509_LOOKUP_set_method_data)
#define X509_LOOKUP_store (*dynlib_crypto()->p_X509_LOOKUP_store)
#define X509_OBJECT_get0_X509 (*dynlib_crypto()->p_X509_OBJECT_get0_X509)
#define X509_OBJECT_get0_X509_CRL (*dynlib_crypto()->p_X509_OBJECT_get0_X509_CRL)
#define X509_OBJECT_retrieve_by_subject (*dynlib_crypto()->p_X509_OBJECT_retrieve_by_subject)
#define X509_OBJECT_set1_X509 (*dynlib_crypto()->p_X509_OBJECT_set1_X509)
#define X509_OBJECT_set1_X509_CRL (*dynlib_crypto()->p_X509_OBJECT_set1_X509_CRL)
#define X509_STORE_add_cert (*dynlib_crypto()->p_X509_STORE_add_cert)
#define X509_STORE_add_lookup (*dynlib_crypto()->p_X509_STORE_add_lookup)
#define X509_STORE_free (*dynlib_crypto()->p_X509_STORE_free)
#define X509_STORE_get0_objects (*dynlib_crypto()->p_X509_STORE_get0_objects)
#define X509_STORE_lock (*dynlib_crypto()->p_X509_STORE_lock)
#define X509_STORE_new (*dynlib_crypto()->p_X509_STORE_new)
#define X509_STORE_unlock (*dynlib_crypto()->p_X509_STORE_unlock)
#define X509_STORE_up_ref (*dynlib_crypto()->p_X509_STORE_up_ref)
#define X509_free (*dynlib_crypto()->p_X509_free)
#define X509_get_default_cert_file (*dynlib_crypto()->p_X509_get_default_cert_file)
#define X509_get_default_cert_file_env (*dynlib_crypto()->p_X509_get_default_cert_file_env)
#define X509_load_cert_crl_file (*dynlib_crypto()->p_X509_load_cert_crl_file)

#endif
