/*
 * Integration-test harness. Tests talk to real services: the Mosquitto and
 * PostgreSQL that `./dmt test` starts (their addresses come from the
 * environment), plus private brokers and agent processes a test spawns and
 * kills itself. A test with no services configured exits 77 (ctest: skipped),
 * which the summary shows, so a misconfigured run cannot pass silently.
 */
#ifndef DMT_TEST_HARNESS_H
#define DMT_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define DMT_TEST_SKIP 77

/* Value of an environment variable a test needs; exits 77 when unset. */
const char *dmt_test_need_env(const char *name);

/* MQTT URL of the shared test broker (DMT_TEST_MQTT_URL). */
const char *dmt_test_mqtt_url(void);

/*
 * Creates a fresh, empty database on the shared test cluster (DMT_TEST_PG_DSN
 * names the maintenance database) and returns a malloc'd DSN for it. Every
 * test gets its own database so tests never see each other's rows.
 */
char *dmt_test_pg_create_db(const char *prefix);

/*
 * Stops / starts the shared test PostgreSQL (DMT_TEST_PG_BIN, DMT_TEST_PGDATA)
 * for fault tests. Only integration tests, which never run concurrently, may
 * use these. Return 0 on success.
 */
int dmt_test_pg_stop(void);
int dmt_test_pg_start(void);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int dmt_test_free_port(void);

/* A fresh directory under the build tree's test scratch area (malloc'd). */
char *dmt_test_tmpdir(const char *prefix);

/* Path of a built binary, e.g. dmt_test_bin("agents/cira/dmt-cira"). Static buffer. */
const char *dmt_test_bin(const char *relpath);

/*
 * Starts argv[0] with extra environment entries ("K=V", NULL-terminated; may
 * be NULL) appended to the current environment, stdout+stderr to logfile (or
 * inherited if NULL). Returns the pid or -1.
 */
pid_t dmt_test_spawn(char *const argv[], char *const extra_env[], const char *logfile);

/* Sends sig and waits up to timeout_ms; escalates to SIGKILL. Returns exit status or -1. */
int dmt_test_stop(pid_t pid, int sig, int timeout_ms);

/* True if the process is still running (not reaped). */
bool dmt_test_alive(pid_t pid);

/* Polls cond every 20 ms until it returns true or timeout_ms passes. */
bool dmt_test_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms);

/* Waits until something accepts TCP connections on 127.0.0.1:port. */
bool dmt_test_wait_port(int port, int timeout_ms);

/* A private Mosquitto for tests that stop and restart the broker. */
struct dmt_test_broker {
  pid_t pid;
  int port;
  char conf[512];
  char log[512];
};
int dmt_test_broker_start(struct dmt_test_broker *b, int port /* 0 = pick one */);
void dmt_test_broker_stop(struct dmt_test_broker *b);

/* Monotonic milliseconds. */
uint64_t dmt_test_now_ms(void);

#endif

/* ---- fleet fixtures: see tools/fleet.h (dmt_fleet_provision, dmt_fleet_write) ---- */

#include "fleet.h"

/* A random AES-256 key as 64 hex digits (static buffer). */
const char *dmt_test_secrets_key(void);

/* Sends one line to a dmt-sim control socket and returns the first reply line (static buffer) or NULL. */
const char *dmt_test_sim_control(const char *socket_path, const char *command);

/* Runs a SQL query returning one integer (first column of the first row), or -1. */
long dmt_test_pg_count(const char *dsn, const char *sql);

/* ---- an MQTT observer/requester for tests (drained on the test thread) ---- */

#include <jansson.h>

struct dmt_test_mqtt;

struct dmt_test_mqtt *dmt_test_mqtt_open(const char *url, const char *client_id);
void dmt_test_mqtt_close(struct dmt_test_mqtt *m);
void dmt_test_mqtt_subscribe(struct dmt_test_mqtt *m, const char *filter);
/* Processes what arrived so far. */
void dmt_test_mqtt_pump(struct dmt_test_mqtt *m);
bool dmt_test_mqtt_connected(struct dmt_test_mqtt *m);
/* Latest device_state per device seen so far: counts of connected / disconnected devices. */
void dmt_test_mqtt_states(struct dmt_test_mqtt *m, size_t *connected, size_t *disconnected);
/* Latest state of one device: 1 connected, 0 disconnected, -1 unknown; power state into *power if non-NULL. */
int dmt_test_mqtt_state_of(struct dmt_test_mqtt *m, const char *guid, int *power);
/* Messages whose topic ends with suffix (e.g. "/events/auth_failure"). */
size_t dmt_test_mqtt_count_suffix(struct dmt_test_mqtt *m, const char *suffix);

/*
 * Publishes devices/<guid>/cmd/<verb> with args (JSON text or NULL) and a
 * deadline, waits for the reply; returns the reply's code, or -1 on timeout.
 * *error / *result (may be NULL) receive the error string and the result as JSON (caller frees).
 */
int dmt_test_command(struct dmt_test_mqtt *m, const char *tenant, const char *guid, const char *verb,
                     const char *args_json, int timeout_ms, char **error, json_t **result);

/* ---- agents under test ---- */

struct dmt_test_cira {
  const char *dsn, *secrets_key, *instance, *runtime_dir;
  int port, health_port;
  const char *const *extra_env; /* more "K=V" settings (NULL-terminated), applied after the defaults */
  char log[600];
  char root_pem[700]; /* filled: the root CA devices must trust */
  pid_t pid;
};

/* Starts dmt-cira against the shared broker; waits for its port. 0 or -1. */
int dmt_test_cira_start(struct dmt_test_cira *c);

/* Starts dmt-sim on a fleet file trusting root_pem, with a control socket; returns the pid. */
pid_t dmt_test_sim_start(const char *fleet, const char *root_pem, const char *control, const char *log);
/* Devices with an established CIRA session, from the simulator's control socket. */
size_t dmt_test_sim_connected(const char *control);
