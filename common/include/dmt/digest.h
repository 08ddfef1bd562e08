/*
 * HTTP Digest authentication (RFC 2617, MD5, qop=auth) as AMT and DMT use it
 * for WS-Management (../shared/reference/mps-cira.md §2.2-2.3,
 * ../shared/reference/rps-activation.md §1.6). Client side: parse AMT's
 * challenge, compute the response, format the Authorization value exactly as
 * DMT does. Server side (the simulator is the AMT): parse an Authorization
 * value and verify it in constant time against a stored HA1. MD5 comes from
 * OpenSSL; nonces from its CSPRNG. Pure: no I/O.
 */
#ifndef DMT_DIGEST_H
#define DMT_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DMT_DIGEST_HEX 33 /* 32 hex digits + NUL */

struct dmt_digest_challenge {
  char realm[128];
  char nonce[128];
  char opaque[128];
  bool qop_auth;   /* the server offered qop=auth (AMT 16 offers "auth-int, auth": we pick auth) */
  bool stale;
};

/* Parses a WWW-Authenticate value ("Digest realm=..., nonce=..."); -1 if not a usable Digest challenge. */
int dmt_digest_parse_challenge(const char *value, struct dmt_digest_challenge *c);

/* HA1 = MD5(user:realm:password), lowercase hex. Also AMT's "NetworkAdminPassword" for user admin. */
void dmt_digest_ha1(const char *user, const char *realm, const char *password, char out[DMT_DIGEST_HEX]);
/* The same 16 bytes raw (SetAdminAclEntryEx wants them base64-encoded). */
void dmt_digest_ha1_raw(const char *user, const char *realm, const char *password, uint8_t out[16]);

/* response = MD5(HA1:nonce:nc:cnonce:auth:MD5(method:uri)) with nc as 8 lowercase hex. */
void dmt_digest_response(const char *ha1, const char *nonce, uint32_t nc, const char *cnonce,
                         const char *method, const char *uri, char out[DMT_DIGEST_HEX]);

/*
 * Formats the Authorization header value exactly as DMT sends it:
 * Digest username="..",realm="..",nonce="..",uri="..",qop="auth",response="..",nc="..",cnonce=".."
 * Returns the length written, or -1 if out is too small.
 */
int dmt_digest_authorization(const char *user, const char *password, const struct dmt_digest_challenge *c,
                             const char *method, const char *uri, uint32_t nc, const char *cnonce,
                             char *out, size_t outlen);

/* Random lowercase hex string of 2*nbytes digits (nonces, cnonces). */
int dmt_digest_random_hex(char *out, size_t nbytes);

/* Server side: the fields of an Authorization: Digest value. */
struct dmt_digest_credentials {
  char username[128];
  char realm[128];
  char nonce[128];
  char uri[256];
  char response[64];
  char qop[16];
  char nc[16];
  char cnonce[128];
};

/* Accepts quoted or unquoted values, any order, commas inside quotes. -1 if malformed. */
int dmt_digest_parse_authorization(const char *value, struct dmt_digest_credentials *c);

/*
 * Verifies credentials against the expected user, realm and nonce and the
 * stored HA1, in constant time over the response. method is the request's.
 */
bool dmt_digest_verify(const struct dmt_digest_credentials *c, const char *method, const char *user,
                       const char *realm, const char *nonce, const char *ha1);

/* AMT realms look like "Digest:" followed by 32 hex digits. */
bool dmt_digest_realm_valid(const char *realm);

#endif
