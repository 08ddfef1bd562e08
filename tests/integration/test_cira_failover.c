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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "apf_client.h"
#include "dmt/tls.h"
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
  /* N simulated devices, and one more played by the in-test APF client */
  W.devs = dmt_fleet_provision(W.dsn, W.key, "test", W.tenant, "8c8c0000-0000-4000-8000-", N + 1, err, sizeof err);
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

static bool row_on(const char *guid, const char *instance) {
  char sql[300];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM dmt.devices WHERE guid = '%s' AND connection_status AND mps_instance = '%s'", guid,
           instance);
  return dmt_test_pg_count(W.dsn, sql) == 1;
}

/*
 * One device, two live connections on two instances (a half-open tunnel the
 * old instance has not noticed yet): when the device logs in through the
 * other instance, the first drops its copy at once, so exactly one instance
 * holds the device and executes its commands; nothing says "disconnected".
 */
static void test_takeover_across_instances(void **state) {
  char ic[64], err[256];
  snprintf(ic, sizeof ic, "cira-c-%d", (int)getpid());
  struct dmt_test_cira c = W.b;
  c.instance = ic;
  c.port = dmt_test_free_port();
  c.health_port = dmt_test_free_port();
  assert_int_equal(dmt_test_cira_start(&c), 0);
  SSL_CTX *ctx = dmt_tls_client_ctx(W.b.root_pem, true, err, sizeof err);
  assert_non_null(ctx);
  const struct dmt_fleet_device *d = &W.devs[N];
  struct dmt_test_mqtt *ev = dmt_test_mqtt_open(dmt_test_mqtt_url(), "failover-events");
  char filter[160];
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/%s/events/#", W.tenant, d->guid);
  dmt_test_mqtt_subscribe(ev, filter);
  struct raw on_c, on_b;
  assert_true(raw_login_as(&on_c, ctx, c.port, NULL, d->guid, d->mps_user, d->mps_password));
  for (int i = 0; i < 100 && !row_on(d->guid, ic); i++) usleep(50000);
  assert_true(row_on(d->guid, ic));
  assert_true(raw_login_as(&on_b, ctx, W.b.port, NULL, d->guid, d->mps_user, d->mps_password));
  assert_true(raw_closed(&on_c, 5000));
  assert_true(on_c.got_disconnect);
  assert_int_equal(on_c.disconnect_reason, DMT_APF_DISC_BY_APPLICATION);
  for (int i = 0; i < 100 && !row_on(d->guid, W.ib); i++) usleep(50000);
  assert_true(row_on(d->guid, W.ib));
  assert_true(raw_keepalive_ok(&on_b, 5));
  /* a command is executed once, by the instance that holds the device */
  assert_int_equal(dmt_test_command(W.mq, W.tenant, d->guid, "refresh", NULL, 10000, NULL, NULL), 200);
  char sql[300];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.events WHERE guid = '%s' AND kind = 'command'", d->guid);
  long n = 0;
  for (int i = 0; i < 50 && n < 1; i++) {
    n = dmt_test_pg_count(W.dsn, sql);
    usleep(100000);
  }
  usleep(500000);
  assert_int_equal(dmt_test_pg_count(W.dsn, sql), 1);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.events WHERE guid = '%s' AND kind = 'command' AND source = '%s'",
           d->guid, W.ib);
  assert_int_equal(dmt_test_pg_count(W.dsn, sql), 1);
  assert_int_equal(dmt_test_mqtt_state_of(W.mq, d->guid, NULL), 1);
  dmt_test_mqtt_pump(ev);
  assert_int_equal(dmt_test_mqtt_count_suffix(ev, "/events/disconnected"), 0);
  assert_true(dmt_test_mqtt_count_suffix(ev, "/events/connected") >= 2);
  raw_free(&on_b);
  raw_free(&on_c);
  dmt_test_mqtt_close(ev);
  SSL_CTX_free(ctx);
  int st = dmt_test_stop(c.pid, SIGTERM, 10000);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_devices_spread_over_both),
      cmocka_unit_test(test_commands_reach_either_instance),
      cmocka_unit_test(test_sigkill_converges),
      cmocka_unit_test(test_takeover_across_instances),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
