/*
 * Service credentials of our agents at the broker: username `svc:<name>` and
 * a long random secret (at least DMT_SVC_MIN_SECRET characters; the broker
 * refuses shorter ones before hashing). The broker keeps only salted
 * PBKDF2-HMAC-SHA512 hashes, one `svc:<name>:$7$<iterations>$<salt>$<hash>`
 * line each (salt and hash in standard base64) - the hash encoding of
 * Mosquitto's own password files, so the scheme is a known one; the username
 * may hold ':' here because a line is split at its last ':'. Comparison is
 * constant-time and costs the same for unknown users. `dmt-broker-passwd`
 * writes these lines.
 */
#ifndef DMT_SVC_AUTH_H
#define DMT_SVC_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define DMT_SVC_PREFIX "svc:"
#define DMT_SVC_NAME_MAX 63
#define DMT_SVC_MIN_SECRET 32
#define DMT_SVC_MAX_SECRET 1024
#define DMT_SVC_ITERATIONS 1000  /* secrets are random, so iterations only need to slow an offline guess a little */

struct dmt_svc_creds;

/* `svc:` followed by [a-z0-9][a-z0-9._-]{0,62}. */
bool dmt_svc_username_valid(const char *username);

/* Parses a credentials file's text; NULL with err (line number, never content) on error. */
struct dmt_svc_creds *dmt_svc_creds_parse(const char *text, size_t len, char *err, size_t errlen);
struct dmt_svc_creds *dmt_svc_creds_load_file(const char *path, char *err, size_t errlen);
void dmt_svc_creds_free(struct dmt_svc_creds *c);
size_t dmt_svc_creds_count(const struct dmt_svc_creds *c);

/* True when username is listed and secret matches. */
bool dmt_svc_creds_check(const struct dmt_svc_creds *c, const char *username, const char *secret);

/* Calls fn for every username of old that new lacks or lists with another hash (to cut those sessions). */
void dmt_svc_creds_changed(const struct dmt_svc_creds *old, const struct dmt_svc_creds *new,
                           void (*fn)(const char *username, void *ud), void *ud);

/* Writes "<username>:$7$..." (no newline) with a fresh random salt. 0 or -1. */
int dmt_svc_hash_line(const char *username, const char *secret, unsigned iterations, char *out, size_t outlen);

/* A new random secret: 32 random bytes as 43 base64url characters. 0 or -1. */
int dmt_svc_new_secret(char out[44]);

#endif
