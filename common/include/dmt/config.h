/*
 * Configuration: a fixed table of keys per agent, each with a default, an
 * environment variable, optionally the DMT variable it replaces (so a DMT
 * deployment's environment keeps working), and a one-line doc used by
 * --help and docs/configuration.md. Precedence, lowest first:
 * default < config file < DMT-named env var < our env var < explicit set
 * (command-line flags). Secret keys also accept `<ENV>_FILE` naming a file
 * whose content is the value (Kubernetes Secret mounts) and are never printed.
 */
#ifndef DMT_CONFIG_H
#define DMT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define DMT_CFG_SECRET 0x1u

struct dmt_config_key {
  const char *name;    /* "mqtt.url"; the file uses this name */
  const char *env;     /* "DMT_MQTT_URL" */
  const char *dmt_env; /* DMT's name for the same setting, e.g. "MPS_PORT", or NULL */
  const char *def;     /* default value or NULL */
  const char *doc;
  unsigned flags;
};

struct dmt_config {
  const struct dmt_config_key *keys;
  size_t nkeys;
  char **values; /* parallel to keys; NULL = unset */
};

int dmt_config_init(struct dmt_config *c, const struct dmt_config_key *keys, size_t nkeys);
void dmt_config_free(struct dmt_config *c);

/* `name = value` lines, '#' comments, optional quotes. Unknown keys are errors. */
int dmt_config_load_file(struct dmt_config *c, const char *path, char *err, size_t errlen);
/* Applies environment variables (and *_FILE for secret keys). */
int dmt_config_load_env(struct dmt_config *c, char *err, size_t errlen);
int dmt_config_set(struct dmt_config *c, const char *name, const char *value);

/* Value or NULL; name must be a declared key (asserts otherwise). */
const char *dmt_config_str(const struct dmt_config *c, const char *name);
long dmt_config_int(const struct dmt_config *c, const char *name, long fallback);
bool dmt_config_bool(const struct dmt_config *c, const char *name, bool fallback);

/* Prints keys, env names and docs (for --help). */
void dmt_config_usage(const struct dmt_config *c, FILE *out);
/* Writes the effective configuration as "name=value" lines, secrets masked. */
void dmt_config_dump(const struct dmt_config *c, FILE *out);

/*
 * The usual start-up sequence for an agent: defaults, then the file named by
 * --config/-c or DMT_CONFIG_FILE, then env, then `--name=value` flags.
 * Returns 0, 1 when --help was printed (caller exits 0), or -1 with err set.
 */
int dmt_config_from_args(struct dmt_config *c, int argc, char **argv, char *err, size_t errlen);

/* The start of every program's main: dmt_config_init, then dmt_config_from_args.
 * Returns -1 when the program goes on, else its exit status (0 after --help, 2 on a
 * bad setting, reported on stderr as "<prog>: <error>"), c being freed then. */
int dmt_config_startup(struct dmt_config *c, const struct dmt_config_key *keys, size_t nkeys, int argc, char **argv,
                       const char *prog);

/* Keys every agent shares; agents append their own after these. */
#define DMT_CONFIG_COMMON_KEYS                                                                   \
  {"log.level", "DMT_LOG_LEVEL", NULL, "info", "debug, info, warn or error", 0},                 \
  {"instance.id", "DMT_INSTANCE_ID", NULL, NULL,                                                 \
   "this instance's name (default: <agent>-<hostname>-<pid>)", 0},                                \
  {"mqtt.url", "DMT_MQTT_URL", NULL, "tcp://127.0.0.1:1883", "broker URL (tcp:// or ssl://)", 0}, \
  {"mqtt.username", "DMT_MQTT_USERNAME", NULL, NULL, "service username at the broker", 0},       \
  {"mqtt.password", "DMT_MQTT_PASSWORD", NULL, NULL, "service secret at the broker",             \
   DMT_CFG_SECRET},                                                                              \
  {"mqtt.ca_file", "DMT_MQTT_CA_FILE", NULL, NULL, "CA bundle to verify the broker (ssl://)", 0}, \
  {"mqtt.cert_file", "DMT_MQTT_CERT_FILE", NULL, NULL, "client certificate (ssl://)", 0},         \
  {"mqtt.key_file", "DMT_MQTT_KEY_FILE", NULL, NULL, "client key (ssl://)", DMT_CFG_SECRET},      \
  {"db.dsn", "DMT_DB_DSN", NULL, "host=127.0.0.1 port=5432 dbname=dmt",                          \
   "PostgreSQL connection string (libpq keyword/value or URI)", DMT_CFG_SECRET},                 \
  {"db.migrate", "DMT_DB_MIGRATE", NULL, "true", "apply schemas/sql migrations at start", 0},            \
  {"secrets.backend", "DMT_SECRETS_BACKEND", NULL, "embedded", "embedded or vault", 0},                  \
  {"secrets.key", "DMT_SECRETS_KEY", NULL, NULL,                                                       \
   "AES-256 key of the embedded store (64 hex digits or base64)", DMT_CFG_SECRET},                     \
  {"secrets.key_id", "DMT_SECRETS_KEY_ID", NULL, "k1", "id of secrets.key (stored with each secret)", 0}, \
  {"secrets.old_keys", "DMT_SECRETS_OLD_KEYS", NULL, NULL,                                             \
   "previous keys still readable during rotation: id:key,id:key", DMT_CFG_SECRET},                     \
  {"secrets.vault.address", "DMT_VAULT_ADDRESS", NULL, NULL, "Vault address, e.g. https://vault:8200", 0}, \
  {"secrets.vault.token", "DMT_VAULT_TOKEN", NULL, NULL,                                               \
   "static Vault token (renewed before expiry); unset = Kubernetes login", DMT_CFG_SECRET},            \
  {"secrets.vault.mount_path", "DMT_VAULT_MOUNT_PATH", NULL, "secret/data/",                           \
   "KV v2 data prefix, as DMT's secrets_path", 0},                                                    \
  {"secrets.vault.k8s_role", "DMT_VAULT_K8S_ROLE", NULL, NULL, "Vault Kubernetes auth role", 0},        \
  {"secrets.vault.k8s_jwt_file", "DMT_VAULT_K8S_JWT_FILE", NULL,                                       \
   "/var/run/secrets/kubernetes.io/serviceaccount/token", "service account token for the Vault login", 0}, \
  {"secrets.vault.k8s_mount", "DMT_VAULT_K8S_MOUNT", NULL, "kubernetes",                               \
   "mount path of Vault's Kubernetes auth method", 0},                                                \
  {"secrets.vault.ca_file", "DMT_VAULT_CA_FILE", NULL, NULL, "CA bundle to verify Vault (https)", 0}

#endif
