/*
 * Fixtures for the REST bridge's integration tests: start dmt-bridge as a
 * real process on free ports against a test database and the shared broker,
 * and a small blocking HTTP/1.1 client to talk to it over real sockets.
 */
#ifndef DMT_TEST_BRIDGE_FIXTURE_H
#define DMT_TEST_BRIDGE_FIXTURE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct bt_bridge {
  pid_t pid;
  int mps_port, rps_port;
  char log[700];
  char instance[64];
  bool tls;  /* set before start when extra configures TLS: start then waits for the ports only */
};

/*
 * Starts dmt-bridge (standalone mode, admin "standalone"/"G@ppm0ym", JWT secret "mpssecret") on free ports,
 * against dsn and DMT_TEST_MQTT_URL, with the secrets key; extra ("--key=value", NULL-terminated, may be NULL)
 * are appended. Waits until both ports answer. 0 or -1.
 */
int bt_bridge_start(struct bt_bridge *b, const char *dsn, const char *secrets_key, const char *dir,
                    const char *const *extra);
/* SIGTERM, then the exit status: 0 means a clean exit (no sanitizer report, no leak). */
int bt_bridge_stop(struct bt_bridge *b);

struct bt_response {
  int status;
  char *body;      /* NUL-terminated, may be empty */
  size_t len;
  char headers[4096];
};

/*
 * Sends one request (Connection: close) and reads the answer. headers: extra header lines, each ending in
 * "\r\n" (may be NULL). Returns 0, or -1 on a socket error (status 0).
 */
int bt_http(int port, const char *method, const char *path, const char *headers, const char *body, size_t body_len,
            struct bt_response *r);
void bt_response_free(struct bt_response *r);
/* Value of a response header (case-insensitive name), copied into out; false if absent. */
bool bt_header(const struct bt_response *r, const char *name, char *out, size_t outlen);
/* Parses the body as JSON (NULL if it is not). */
json_t *bt_json(const struct bt_response *r);

/* ---- EMF mode: a Keycloak stand-in (tests/jwtkit) ---- */

#define BT_ISSUER "https://kc.test/realms/emf"
#define BT_AUDIENCE "dmt-bridge"

struct jwtkit_key;
/* Writes <dir>/jwks.json publishing key; fills args (static storage) with the EMF options for bt_bridge_start. */
const char *const *bt_emf_args(const struct jwtkit_key *key, const char *dir);
/* An access token signed by key for roles ("A_im-rw,B_im-r"), user "user", valid for exp_in seconds. malloc'd. */
char *bt_token(const struct jwtkit_key *key, const char *roles, long exp_in);
/* "Authorization: Bearer <token>\r\n" plus "ActiveProjectID: <p>\r\n" when project is not NULL (static). */
const char *bt_auth_headers(const char *token, const char *project);

/* Runs one SQL statement on dsn: 0 or -1. */
int bt_sql(const char *dsn, const char *sql);
/* First column of the first row as a malloc'd string, or NULL. */
char *bt_sql_value(const char *dsn, const char *sql);

/* A base64 PKCS#12 provisioning certificate for cn (root + leaf with the AMT activation EKU). malloc'd. */
char *bt_make_pfx(const char *cn, const char *password);

#endif
