/*
 * Test-only token kit: RSA keys, the JWKS that publishes them and tokens
 * signed with libjwt, so unit, integration and fuzz tests act as Keycloak
 * without one. Also forges the tokens an attacker would try (alg none, HS256
 * keyed with the public key, another key under a trusted kid).
 */
#ifndef DMT_TEST_JWTKIT_H
#define DMT_TEST_JWTKIT_H

#include <openssl/evp.h>

struct jwtkit_key {
  EVP_PKEY *pkey;
  char *priv_pem, *pub_pem;
  char kid[64];
};

/* A fresh RSA key (bits >= 1024) published under kid. 0 or -1. */
int jwtkit_key_new(struct jwtkit_key *k, const char *kid, int bits);
void jwtkit_key_free(struct jwtkit_key *k);

/* {"keys":[...]} for n keys (malloc'd). */
char *jwtkit_jwks(const struct jwtkit_key *const *keys, size_t n);

/*
 * Claims JSON (malloc'd): iss, aud (a JSON value as text, e.g. "\"dmt\"" or
 * "[\"a\",\"b\"]"; NULL = none), exp (0 = none), preferred_username, and
 * realm_access.roles from a comma-separated list.
 */
char *jwtkit_claims(const char *iss, const char *aud_json, long long exp, const char *user, const char *roles_csv);

/* RS256 token over claims_json, signed by k, header kid = kid (NULL = none). malloc'd. */
char *jwtkit_sign(const struct jwtkit_key *k, const char *kid, const char *claims_json);
/* alg "none", no signature. */
char *jwtkit_sign_none(const char *claims_json);
/* HS256 keyed with the given bytes (an attacker using the published public key as HMAC key). */
char *jwtkit_sign_hs256(const unsigned char *key, size_t len, const char *kid, const char *claims_json);

/* Writes text to path (0600). 0 or -1. */
int jwtkit_write_file(const char *path, const char *text);

#endif
