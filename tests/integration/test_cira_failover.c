/*
 * Two terminator instances sharing one database and broker, devices split
 * between them (each device lists the other instance as its secondary MPS,
 * as firmware's remote access policy allows). Commands reach each device
 * through whichever instance holds it. Then one instance is SIGKILLed: its
 * MQTT will fires, the survivor claims its devices and publishes them
 * disconnected, the devices fail over and come back connected through the
 * survivor; devices that cannot come back (stalled) stay shown disconnected;
 * no device is left shown as connected on the dead instance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define N 200

static struct {
  char *dsn, *dir;
  char key[65], tenant[40], fleet[700], control[700], sim_log[700], ia[64], ib[64];
  struct dmt_test_cira a, b;
  pid_t sim;
  struct dmt_fleet_device *devs;
  struct dmt_test_mqtt *mq;
} W;

static long on_instance(const char *instance) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.devices WHERE connection_status AND mps_instance = '%s'",
           instance);
  return dmt_test_pg_count(W.dsn, sql);
}

static int setup(void **state) {
  W.dsn = dmt_test_pg_create_db("failover");
  W.dir = dmt_test_tmpdir("failover");
  snprintf(W.key, sizeof W.key, "%s", dmt_test_secrets_key());
  snprintf(W.tenant, sizeof W.tenant, "t-failover-%d", (int)getpid());
  snprintf(W.ia, sizeof W.ia, "cira-a-%d", (int)getpid());
  snprintf(W.ib, sizeof W.ib, "cira-b-%d", (int)getpid());
  char err[256];
  W.devs = dmt_fleet_provision(W.dsn, W.key, "test", W.tenant, "8c8c0000-0000-4000-8000-", N, err, sizeof err);
  if (!W.devs) return -1;
  W.mq = dmt_test_mqtt_open(dmt_test_mqtt_url(), "failover-test");
  char filter[128];
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/+/state", W.tenant);
  dmt_test_mqtt_subscribe(W.mq, filter);
  W.a = (struct dmt_test_cira){.dsn = W.dsn, .secrets_key = W.key, .instance = W.ia, .runtime_dir = W.dir,
                               .port = dmt_test_free_port(), .health_port = dmt_test_free_port()};
  if (dmt_test_cira_start(&W.a) != 0) return -1;
  W.b = W.a;
  W.b.instance = W.ib;
  W.b.port = dmt_test_free_port();
  W.b.health_port = dmt_test_free_port();
  if (dmt_test_cira_start(&W.b) != 0) return -1;
  snprintf(W.fleet, sizeof W.fleet, "%s/fleet.json", W.dir);
  snprintf(W.control, sizeof W.control, "%s/sim.sock", W.dir);
  snprintf(W.sim_log, sizeof W.sim_log, "%s/sim.log", W.dir);
  dmt_fleet_write_split(W.fleet, W.devs, N, "127.0.0.1", W.a.port, W.b.port);
  /* Both instances share one identity (MPSCerts): either root file will do. */
  W.sim = dmt_test_sim_start(W.fleet, W.a.root_pem, W.control, W.sim_log);
  return W.sim > 0 ? 0 : -1;
}

static int teardown(void **state) {
  if (W.sim > 0) dmt_test_stop(W.sim, SIGTERM, 5000);
  if (W.a.pid > 0) dmt_test_stop(W.a.pid, SIGTERM, 10000);
  if (W.b.pid > 0) dmt_test_stop(W.b.pid, SIGTERM, 10000);
  dmt_test_mqtt_close(W.mq);
  free(W.devs);
  return 0;
}

static bool split_connected(void *arg) {
  size_t c, d;
  dmt_test_mqtt_states(W.mq, &c, &d);
  return dmt_test_sim_connected(W.control) == N && c == N && on_instance(W.ia) + on_instance(W.ib) == N;
}

static void test_devices_spread_over_both(void **state) {
  assert_true(dmt_test_wait_until(split_connected, NULL, 60000));
  assert_int_equal(on_instance(W.ia), N / 2);
  assert_int_equal(on_instance(W.ib), N / 2);
}

static void test_commands_reach_either_instance(void **state) {
  for (int i = 0; i < 6; i++) { /* even devices sit on A, odd ones on B */
    json_t *res = NULL;
    assert_int_equal(dmt_test_command(W.mq, W.tenant, W.devs[i].guid, "power_state", NULL, 10000, NULL, &res), 200);
    assert_int_equal(json_integer_value(json_object_get(res, "powerstate")), 2);
    json_decref(res);
  }
}

#define STALLED 5 /* devices of A that freeze and never reconnect */

static bool converged(void *arg) {
  size_t c, d;
  dmt_test_mqtt_states(W.mq, &c, &d);
  return on_instance(W.ia) == 0 && on_instance(W.ib) == N - STALLED && c == N - STALLED && d == STALLED;
}

static void test_sigkill_converges(void **state) {
  for (int i = 0; i < STALLED; i++) {
    char cmd[96];
    snprintf(cmd, sizeof cmd, "fault %s stall", W.devs[10 + 2 * i].guid); /* even: held by A */
    assert_non_null(strstr(dmt_test_sim_control(W.control, cmd), "ok 1"));
  }
  dmt_test_stop(W.a.pid, SIGKILL, 1000);
  W.a.pid = 0;
  /* The survivor claims A's devices: the stalled ones stay disconnected, the rest return via B. */
  assert_true(dmt_test_wait_until(converged, NULL, 60000));
  for (int i = 0; i < STALLED; i++) assert_int_equal(dmt_test_mqtt_state_of(W.mq, W.devs[10 + 2 * i].guid, NULL), 0);
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.devices WHERE mps_instance = '%s'", W.ia);
  assert_int_equal(dmt_test_pg_count(W.dsn, sql), 0);
  /* and a command to a device that used to be on A is now answered by B */
  json_t *res = NULL;
  assert_int_equal(dmt_test_command(W.mq, W.tenant, W.devs[0].guid, "power_state", NULL, 10000, NULL, &res), 200);
  json_decref(res);
}

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_devices_spread_over_both),
      cmocka_unit_test(test_commands_reach_either_instance),
      cmocka_unit_test(test_sigkill_converges),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
