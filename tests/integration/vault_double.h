/*
 * Vault KV v2 double: a small HTTP server, written from HashiCorp Vault's
 * documented API, that the Vault back end of the secret store is tested
 * against (Vault itself cannot be installed on the build machines). It is a
 * test double, not Vault: it implements only what dmt/secrets.h uses -
 *   GET    /v1/sys/health
 *   POST   /v1/auth/kubernetes/login          {"role","jwt"} -> auth.client_token, lease_duration, renewable
 *   GET    /v1/auth/token/lookup-self          -> data.ttl, data.renewable
 *   POST   /v1/auth/token/renew-self           -> auth.lease_duration (capped by the token's max TTL)
 *   GET    /v1/secret/data/<path>              -> data.data, data.metadata.version; 404 when absent
 *   POST   /v1/secret/data/<path>  {"data":{}} -> data.version
 *   DELETE /v1/secret/metadata/<path>          -> 204 (all versions)
 * with token expiry enforced (403 "permission denied" for an expired or
 * unknown X-Vault-Token), so renewal is proven by requests that keep working.
 */
#ifndef DMT_TEST_VAULT_DOUBLE_H
#define DMT_TEST_VAULT_DOUBLE_H

#include <stdbool.h>

struct vault_double_config {
  const char *root_token; /* a pre-issued token (NULL = none) */
  long root_ttl;          /* seconds; 0 = never expires */
  long root_max_ttl;      /* seconds from start; renewals never go past it */
  bool root_renewable;
  const char *k8s_role, *k8s_jwt; /* the one login the Kubernetes auth method accepts */
  long login_ttl, login_max_ttl;  /* leases of tokens issued by login */
};

struct vault_double_stats {
  int logins, failed_logins, lookups, renewals, denied, reads, writes, deletes;
};

struct vault_double;

/* Listens on 127.0.0.1 (a free port) and serves on its own thread. NULL on failure. */
struct vault_double *vault_double_start(const struct vault_double_config *cfg);
int vault_double_port(const struct vault_double *d);
void vault_double_stop(struct vault_double *d);

void vault_double_stats(struct vault_double *d, struct vault_double_stats *out);
/* The secret stored at a KV path such as "secret/data/devices/<guid>", as JSON text (malloc'd), or NULL. */
char *vault_double_get(struct vault_double *d, const char *kv_path);
/* Stores a secret (JSON object text) as if someone else - DMT - had written it. */
void vault_double_put(struct vault_double *d, const char *kv_path, const char *json_object);

#endif
