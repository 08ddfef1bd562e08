/*
 * Fixtures for the RPS agent's integration tests and benchmark: a private
 * database, dmt-rps started against it and the shared broker, the objects the
 * REST bridge would have written (profiles, CIRA configs, domains with their
 * provisioning certificates, MPSCerts) written the same way (rows + secrets),
 * provisioning certificates generated on the spot (valid, expired, with any
 * CN), and queries on what the agent wrote (device rows, secrets, events).
 */
#ifndef DMT_TEST_RPS_FIXTURE_H
#define DMT_TEST_RPS_FIXTURE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct rps_world {
  char *dsn, *dir;
  char key[80];
  char instance[64];
  int port;
  char url[128];
  char log[600];
  pid_t pid;
  /* extra environment for dmt-rps ("K=V"), NULL-terminated */
  const char *env[16];
};

/* Creates the database (migrated) and secret key; does not start the agent. */
int rps_world_init(struct rps_world *w, const char *name);
/* Starts dmt-rps (DMT_RPS_DELAY_MS=0 unless w->env says otherwise) and waits for its port. */
int rps_world_start(struct rps_world *w);
/* SIGTERM and wait; returns the exit status (0 = clean, sanitizers included). */
int rps_world_stop(struct rps_world *w);

/* Writes like the bridge: row + profiles/<name> secret. amt/mebx NULL = random per device. */
int rps_add_profile(struct rps_world *w, const char *tenant, const char *name, const char *activation,
                    const char *amt_password, const char *mebx_password, const char *cira, const char *tags_literal);
/* Row + (if password) CIRAConfigs/<name>; the root in the row is DER base64. */
int rps_add_cira(struct rps_world *w, const char *tenant, const char *name, const char *address, int port,
                 const char *user, const char *password, const char *root_der_b64);
/* MPSCerts {ROOT_CERTIFICATE: pem} as the terminator writes it. */
int rps_put_mpscerts(struct rps_world *w, const char *root_pem);
/* Row + certs/<name> {CERT: base64 pfx, CERT_PASSWORD}. */
int rps_add_domain(struct rps_world *w, const char *tenant, const char *name, const char *suffix,
                   const unsigned char *pfx, size_t pfx_len, const char *pfx_password);
/* A device record as an earlier activation would have left it. */
int rps_add_record(struct rps_world *w, const char *tenant, const char *guid, const char *amt_password,
                   const char *mps_user, const char *mps_password);

/* Rows of dmt.devices for guid (any tenant), and whether devices/<guid> exists in tenant. */
long rps_device_rows(struct rps_world *w, const char *guid);
bool rps_device_secret(struct rps_world *w, const char *tenant, const char *guid, json_t **out);
/* SELECT of one text value (first row/column) or NULL (malloc'd). */
char *rps_query_text(struct rps_world *w, const char *sql, const char *param);
/* Events of kind for guid with outcome ("success"/"failure") in dmt.events. */
long rps_event_count(struct rps_world *w, const char *guid, const char *kind, const char *outcome);

/*
 * Publishes dmt/v1/<tenant>/provisioning/cmd/<verb> {args} (deadline = now +
 * deadline_ms, which may be negative) as an MQTT v5 request and waits up to
 * wait_ms for the reply. Returns its code (-1 on no reply); error/result are
 * filled when non-NULL (caller frees).
 */
int rps_provisioning_command(const char *tenant, const char *verb, const char *args_json, long deadline_ms,
                             int wait_ms, char **error, char **message, json_t **result);
/* A DER certificate in base64 written as a PEM file. */
int rps_write_pem(const char *path, const char *der_b64);

/* A provisioning certificate chain leaf -> intermediate -> root as a PKCS#12, and the root's SHA-256 hex. */
struct rps_pki {
  unsigned char *pfx;
  size_t pfx_len;
  char root_sha256[65];
  char root_pem[4096];
};
/* leaf_cn e.g. "amt.example.com"; days_valid < 0 makes an expired leaf. */
int rps_make_pki(struct rps_pki *p, const char *leaf_cn, int days_valid, const char *password);
void rps_pki_free(struct rps_pki *p);

/* A self-signed CA (PEM) and its DER base64, for CIRA roots. */
int rps_make_root(char *pem, size_t pemlen, char *der_b64, size_t b64len);

#endif
