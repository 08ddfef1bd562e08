/*
 * Keycloak access-token verification and the mapping from token roles to
 * tenant permissions, shared by the broker plugin and the REST bridge so the
 * two can never disagree on who may do what.
 *
 * Verification: RS256 only (the header is checked before any key is used, so
 * `alg: none` and HS256-with-the-public-key tokens never reach libjwt), key
 * chosen by `kid` from a JWKS, signature checked by libjwt, then `iss`
 * (exact), `aud` (string or array, one of the configured audiences), `exp`
 * (required), `nbf`, with a clock-skew allowance. A `typ` claim, when present,
 * must say "Bearer" (Keycloak marks ID and refresh tokens otherwise).
 *
 * Roles: Keycloak lists them in realm_access.roles (and, when roles_client is
 * set, resource_access.<client>.roles). EMF names a project role
 * `<projectUUID>_<role>`; a role `<tenant>_<suffix>` grants read-write on
 * <tenant> when <suffix> is in roles_rw (default "im-rw", EMF's infrastructure
 * manager read-write role) and read-only when it is in roles_ro (default
 * "im-r"). DMT's default tenant is `_default` (role `_default_im-rw`).
 *
 * No I/O here except what dmt/jwks.h reads; nothing is logged, and no error
 * carries the token.
 */
#ifndef DMT_JWT_AUTH_H
#define DMT_JWT_AUTH_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "dmt/jwks.h"
#include "dmt/topic_acl.h"

#define DMT_JWT_MAX_TOKEN 16384   /* default cap on the encoded token */
#define DMT_JWT_MAX_GRANTS 256    /* tenants one token may grant */
#define DMT_IDENTITY_NAME_MAX 128

enum dmt_jwt_status {
  DMT_JWT_OK = 0,
  DMT_JWT_MALFORMED = -1,      /* not three base64url JSON segments, or too long */
  DMT_JWT_BAD_ALG = -2,        /* anything but RS256, or a `crit` header */
  DMT_JWT_UNKNOWN_KEY = -3,    /* no key with the token's kid */
  DMT_JWT_BAD_SIGNATURE = -4,
  DMT_JWT_EXPIRED = -5,
  DMT_JWT_NOT_YET_VALID = -6,
  DMT_JWT_BAD_ISSUER = -7,
  DMT_JWT_BAD_AUDIENCE = -8,
  DMT_JWT_BAD_CLAIMS = -9,     /* exp missing, wrong claim types, not an access token, too many tenants */
  DMT_JWT_NO_GRANTS = -10,     /* valid, but no role grants any tenant */
};

struct dmt_jwt_config {
  const char *issuer;       /* required: the exact `iss`, e.g. https://kc.example/realms/master */
  const char *audience;     /* required: comma-separated accepted audiences */
  long clock_skew;          /* seconds tolerated on exp and nbf */
  size_t max_token_len;     /* 0 = DMT_JWT_MAX_TOKEN */
  const char *roles_rw;     /* comma-separated role suffixes; NULL = "im-rw" */
  const char *roles_ro;     /* NULL = "im-r" */
  const char *roles_client; /* also read resource_access.<client>.roles; NULL = realm roles only */
};

struct dmt_identity {
  char name[DMT_IDENTITY_NAME_MAX + 1]; /* preferred_username, else sub; only [A-Za-z0-9._@:+-] kept */
  long long exp;                        /* token expiry, seconds since the epoch */
  struct dmt_grants grants;             /* owned; released by dmt_identity_clear() */
};

struct dmt_jwt_verifier;

struct dmt_jwt_verifier *dmt_jwt_verifier_new(const struct dmt_jwt_config *cfg, char *err, size_t errlen);
void dmt_jwt_verifier_free(struct dmt_jwt_verifier *v);
long dmt_jwt_verifier_skew(const struct dmt_jwt_verifier *v);

/* Verifies token against keys at time now; fills *out on DMT_JWT_OK (clear it either way). */
int dmt_jwt_verify(const struct dmt_jwt_verifier *v, const struct dmt_jwks *keys, const char *token, time_t now,
                   struct dmt_identity *out);

/*
 * The steps of dmt_jwt_verify that need no key, exposed for tests, the fuzz
 * target and callers that verified the signature another way.
 * dmt_jwt_parse_header: 0 when the header says RS256 (kid copied, "" if none).
 * dmt_jwt_check_claims: claims of an authenticated token -> identity.
 */
int dmt_jwt_parse_header(const struct dmt_jwt_verifier *v, const char *token, char *kid, size_t kidlen);
int dmt_jwt_check_claims(const struct dmt_jwt_verifier *v, const json_t *claims, time_t now,
                         struct dmt_identity *out);

void dmt_identity_clear(struct dmt_identity *id);
const char *dmt_jwt_strerror(int status);

#endif
