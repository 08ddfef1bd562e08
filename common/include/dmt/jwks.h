/*
 * A JSON Web Key Set (RFC 7517) as Keycloak publishes it at
 * /realms/<realm>/protocol/openid-connect/certs, reduced to what RS256
 * verification needs: for each RSA signing key its `kid` and the public key
 * as PEM (the form libjwt 1.10 takes). Keys that are not RSA, are marked for
 * encryption (`use: enc`), name another algorithm, or are shorter than 2048
 * bits are skipped, so one Keycloak realm's set loads as is. A key set is
 * immutable once built; reloading builds a new one.
 */
#ifndef DMT_JWKS_H
#define DMT_JWKS_H

#include <stddef.h>

#define DMT_JWKS_MAX_KEYS 32
#define DMT_JWKS_MAX_BYTES (256 * 1024)

struct dmt_jwks;

/* Parses a JWKS document. NULL with err set when it is malformed or holds no usable key. */
struct dmt_jwks *dmt_jwks_parse(const char *json, size_t len, char *err, size_t errlen);
/* Reads and parses a file (at most DMT_JWKS_MAX_BYTES). */
struct dmt_jwks *dmt_jwks_load_file(const char *path, char *err, size_t errlen);
void dmt_jwks_free(struct dmt_jwks *k);

/* dmt_jwks_fetch results. */
enum { DMT_JWKS_FETCHED = 0, DMT_JWKS_UNREACHABLE = -1, DMT_JWKS_REFUSED = -2 };
/* GETs and parses a JWKS (blocking: call it from a worker thread). On FETCHED *out
 * holds the keys; otherwise err says why: the fetch failed (UNREACHABLE, with the
 * HTTP status) or the document was refused by dmt_jwks_parse (REFUSED). */
int dmt_jwks_fetch(const char *url, const char *ca_file, long timeout_s, struct dmt_jwks **out, char *err,
                   size_t errlen);

size_t dmt_jwks_count(const struct dmt_jwks *k);
/*
 * The PEM public key for kid, or NULL. With kid NULL (a token without a kid
 * header) the key is found only when the set holds exactly one key.
 */
const char *dmt_jwks_find(const struct dmt_jwks *k, const char *kid, size_t *pem_len);

/*
 * The other direction, for development keys and tests: a JWKS document
 * ({"keys":[...]}, malloc'd) publishing n RSA public keys given as PEM, each
 * under its kid (NULL = none), marked use=sig, alg=RS256. NULL on error.
 */
char *dmt_jwks_write(const char *const *pub_pems, const char *const *kids, size_t n);

#endif
