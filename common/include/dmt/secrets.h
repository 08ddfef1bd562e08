/*
 * Secret store: device AMT/MPS/MEBx passwords, provisioning certificates and
 * other credentials, addressed by tenant + path in DMT's Vault layout
 * (devices/<guid>, profiles/<name>, certs/<domain>, CIRAConfigs/<name>,
 * Wireless/<name>, MPSCerts). A secret is a flat JSON object of string fields
 * (e.g. {"AMT_PASSWORD": "...", "MPS_PASSWORD": "..."}); a put replaces the
 * whole object, as Vault KV v2 does.
 *
 * Two back ends behind one interface:
 *  - embedded (default): AES-256-GCM in dmt.secrets, key from a file or the
 *    environment, key id stored per row so keys can be rotated;
 *  - vault: HashiCorp Vault KV v2 with token renewal and Kubernetes login.
 *    The default tenant ("") uses DMT's own paths (<mount>devices/<guid>,
 *    <mount>MPSCerts, ...), so a Vault that DMT populated keeps working;
 *    tenant T uses <mount>tenants/T/<path> (a default-tenant path may not
 *    start with "tenants/"). A static token is renewed in the background at
 *    two thirds of its lease; with a Kubernetes role the store logs in with
 *    the pod's service account token and logs in again when the lease cannot
 *    be renewed further (or Vault answers 403).
 *
 * Key material and Vault tokens live in memory excluded from core dumps
 * (MADV_DONTDUMP) and are zeroed when the store is closed.
 *
 * The embedded back end runs its SQL on the PGconn the caller passes, so the
 * caller decides which thread blocks (agents call it from their database
 * worker, never from their event loop). The vault back end ignores `db`.
 *
 * Nothing returned here may be logged. Release every object obtained from
 * dmt_secrets_get() with dmt_secrets_wipe(), which zeroes the strings before
 * freeing them.
 */
#ifndef DMT_SECRETS_H
#define DMT_SECRETS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

struct dmt_log;
struct dmt_secrets;

enum dmt_secrets_status {
  DMT_SECRETS_OK = 0,
  DMT_SECRETS_NOT_FOUND = 1,
  DMT_SECRETS_ERROR = -1,      /* back end unreachable, SQL error, ... (retryable) */
  DMT_SECRETS_TAMPERED = -2,   /* authentication tag mismatch: wrong key or altered row */
  DMT_SECRETS_BAD_INPUT = -3,  /* path/tenant/object malformed */
};

struct dmt_secrets_config {
  const char *backend;         /* "embedded" (default) or "vault" */
  /* embedded: current key, 32 bytes as 64 hex chars or base64, and its id;
   * optional previous keys ("id:key,id:key") kept readable during rotation. */
  const char *key;
  const char *key_id;
  const char *old_keys;
  /* vault */
  const char *vault_address;   /* e.g. http://vault:8200 */
  const char *vault_token;     /* static token, or NULL with k8s auth */
  const char *vault_mount_path;/* KV v2 data prefix, default "secret/data/" */
  const char *vault_k8s_role;  /* Kubernetes auth role; JWT read from the service account file */
  const char *vault_k8s_jwt_file;
  const char *vault_k8s_mount; /* Kubernetes auth mount, default "kubernetes" */
  const char *vault_ca_file;   /* CA bundle for https:// Vault; NULL = system CAs */
  const struct dmt_log *log;
};

struct dmt_config;
/* Fills cfg from the DMT_CONFIG_COMMON_KEYS settings (strings stay owned by c). */
void dmt_secrets_config_from(const struct dmt_config *c, struct dmt_secrets_config *cfg);

struct dmt_secrets *dmt_secrets_open(const struct dmt_secrets_config *cfg, char *err, size_t errlen);
void dmt_secrets_close(struct dmt_secrets *s);

/* On DMT_SECRETS_OK, *out is a new JSON object owned by the caller (free with dmt_secrets_wipe). */
int dmt_secrets_get(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path,
                    json_t **out, char *err, size_t errlen);
int dmt_secrets_put(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path,
                    const json_t *obj, char *err, size_t errlen);
int dmt_secrets_delete(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path,
                       char *err, size_t errlen);

/* Embedded back end: re-encrypts every row not under the current key. Returns rows rewritten or <0. */
long dmt_secrets_rotate(struct dmt_secrets *s, PGconn *db, char *err, size_t errlen);

/* Health for /health routes: 0 when the back end is usable. */
int dmt_secrets_health(struct dmt_secrets *s, PGconn *db, char *err, size_t errlen);

/* Zeroes every string value in obj, then releases it. NULL is fine. */
void dmt_secrets_wipe(json_t *obj);

#endif
