/*
 * Activation through to the CIRA terminator, and remote deactivation back
 * through it, with every real component running: Mosquitto, PostgreSQL,
 * dmt-cira (the terminator, which writes MPSCerts at start), dmt-rps, and
 * dmt-sim. The RPC side of activation is the STAND-IN
 * (tests/harness/rps_standin.c) because dmt-sim's RPC mode is not on main
 * yet: the stand-in plays rpc-go + AMT for the activation and keeps what RPS
 * configured through WS-Man (AddMpServer address/port/user/password and the
 * root from AddTrustedRootCertificate). Those exact values become dmt-sim's
 * fleet file and trust anchor, so the test proves that what RPS installed and
 * what it stored (dmt.devices row, devices/<guid> secret) let the device log
 * in to the real terminator: each device appears connected in its tenant's
 * state topic. Then, over MQTT:
 *   provisioning/cmd/deactivate {guid}   -> the terminator unprovisions the
 *     simulated AMT over CIRA, RPS removes the record, the retained state is
 *     cleared, a deactivation event is published
 *   an unknown device -> 404 unknown_device; a device no terminator holds ->
 *   404 offline; a request past its deadline -> 408 expired; no guid -> 400;
 *   cira_reconfigure -> 501 (needs a WS-Man relay verb at the terminator).
 * When dmt-sim gains its RPC mode, the activation half can use it instead of
 * the stand-in (see docs/rps.md "Tests").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rps_fixture.h"
#include "rps_standin.h"

#define N 3

static struct rps_world W;
static struct standin *S;
static struct dmt_test_cira C;
static struct dmt_test_mqtt *MQ;
static char TENANT[40], CIRA_INSTANCE[64], FLEET[700], CONTROL[700], SIM_LOG[700], ROOT_PEM[700];
static pid_t SIM;
static char GUIDS[N][37];
static struct sdev *DEVS[N];

static int setup(void **state) {
  if (rps_world_init(&W, "rps_e2e") != 0) return -1;
  snprintf(TENANT, sizeof TENANT, "tenant-e%d", (int)getpid());
  snprintf(CIRA_INSTANCE, sizeof CIRA_INSTANCE, "cira-rps-e2e-%d", (int)getpid());
  C = (struct dmt_test_cira){.dsn = W.dsn, .secrets_key = W.key, .instance = CIRA_INSTANCE, .runtime_dir = W.dir,
                             .port = dmt_test_free_port(), .health_port = dmt_test_free_port()};
  if (dmt_test_cira_start(&C) != 0) return -1; /* writes MPSCerts */
  /* the CIRA config names the terminator; its root field is stale on purpose: MPSCerts wins */
  if (rps_add_cira(&W, TENANT, "cira1", "127.0.0.1", C.port, "ciraUser1", NULL, "c3RhbGU=") != 0) return -1;
  if (rps_add_profile(&W, TENANT, "ccm1", "ccmactivate", "Ccm@Passw0rd1", NULL, "cira1", "{\"e2e\"}") != 0) return -1;
  MQ = dmt_test_mqtt_open(dmt_test_mqtt_url(), "rps-e2e-observer");
  char filter[128];
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/#", TENANT);
  dmt_test_mqtt_subscribe(MQ, filter);
  if (rps_world_start(&W) != 0) return -1;
  S = standin_new();
  snprintf(FLEET, sizeof FLEET, "%s/fleet.json", W.dir);
  snprintf(CONTROL, sizeof CONTROL, "%s/sim.sock", W.dir);
  snprintf(SIM_LOG, sizeof SIM_LOG, "%s/sim.log", W.dir);
  snprintf(ROOT_PEM, sizeof ROOT_PEM, "%s/installed-root.pem", W.dir);
  return S && MQ ? 0 : -1;
}

static int teardown(void **state) {
  if (SIM > 0) dmt_test_stop(SIM, SIGTERM, 5000);
  standin_free(S);
  int st = rps_world_stop(&W);
  if (C.pid > 0) dmt_test_stop(C.pid, SIGTERM, 10000);
  dmt_test_mqtt_close(MQ);
  return st == 0 ? 0 : -1;
}

static bool all_connected(void *arg) {
  for (int i = 0; i < N; i++)
    if (dmt_test_mqtt_state_of(MQ, GUIDS[i], NULL) != 1) return false;
  return true;
}

static void test_activate_then_call_home(void **state) {
  for (int i = 0; i < N; i++) {
    snprintf(GUIDS[i], sizeof GUIDS[i], "e2e2e2e2-0000-4000-8000-%012d", i + 1);
    struct sdev_spec s = {.guid = GUIDS[i], .fqdn = "corp.example", .hostname = "e2e-host"};
    DEVS[i] = standin_device(S, &s);
    assert_int_equal(standin_run(S, DEVS[i], W.url, "activate --profile ccm1", TENANT, NULL), 0);
  }
  assert_true(standin_wait(S, DEVS, N, 60000));
  struct dmt_fleet_device fleet[N];
  memset(fleet, 0, sizeof fleet);
  for (int i = 0; i < N; i++) {
    const struct sresult *r = standin_result(DEVS[i]);
    assert_string_equal(r->method, "success");
    assert_true(r->mps);
    assert_int_equal(r->mps_port, C.port);
    assert_string_equal(r->mps_user, "ciraUser1");
    snprintf(fleet[i].guid, sizeof fleet[i].guid, "%s", GUIDS[i]);
    snprintf(fleet[i].tenant, sizeof fleet[i].tenant, "%s", TENANT);
    snprintf(fleet[i].mps_user, sizeof fleet[i].mps_user, "%s", r->mps_user);
    snprintf(fleet[i].mps_password, sizeof fleet[i].mps_password, "%s", r->mps_password);
    snprintf(fleet[i].amt_password, sizeof fleet[i].amt_password, "Ccm@Passw0rd1");
  }
  /* the device trusts exactly what RPS installed with AddTrustedRootCertificate */
  assert_int_equal(rps_write_pem(ROOT_PEM, standin_result(DEVS[0])->root_b64), 0);
  assert_int_equal(dmt_fleet_write(FLEET, fleet, N, standin_result(DEVS[0])->mps_host, C.port), 0);
  SIM = dmt_test_sim_start(FLEET, ROOT_PEM, CONTROL, SIM_LOG);
  assert_true(SIM > 0);
  /* each device logs in with the record RPS wrote and shows up connected in the tenant's state topic */
  assert_true(dmt_test_wait_until(all_connected, NULL, 60000));
  char sql[300];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM dmt.devices WHERE tenant_id = '%s' AND connection_status AND mps_instance = '%s'",
           TENANT, CIRA_INSTANCE);
  long rows = 0;
  for (int i = 0; i < 100 && rows != N; i++, usleep(100000)) rows = dmt_test_pg_count(W.dsn, sql);
  assert_int_equal(rows, N);
  /* and answers a command through the terminator with the AMT password RPS stored */
  json_t *res = NULL;
  char *err = NULL;
  assert_int_equal(dmt_test_command(MQ, TENANT, GUIDS[0], "general_settings", NULL, 10000, &err, &res), 200);
  json_decref(res);
}

/* A fresh subscriber sees no retained "connected" state for the device (none at all, or disconnected). */
static bool not_connected_for_newcomers(void *g) {
  struct dmt_test_mqtt *m = dmt_test_mqtt_open(dmt_test_mqtt_url(), "rps-e2e-newcomer");
  char filter[160];
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/%s/state", TENANT, (const char *)g);
  dmt_test_mqtt_subscribe(m, filter);
  usleep(300000);
  int st = dmt_test_mqtt_state_of(m, g, NULL);
  dmt_test_mqtt_close(m);
  return st != 1;
}

static void test_remote_deactivation(void **state) {
  char args[96], *error = NULL, *message = NULL;
  json_t *result = NULL;
  snprintf(args, sizeof args, "{\"guid\":\"%s\"}", GUIDS[0]);
  int code = rps_provisioning_command(TENANT, "deactivate", args, 20000, 25000, &error, &message, &result);
  if (code != 200) print_message("deactivate: %d %s %s\n", code, error ? error : "-", message ? message : "-");
  assert_int_equal(code, 200);
  assert_string_equal(json_string_value(json_object_get(result, "status")), "Deactivated");
  json_decref(result);
  /* the record is gone, the simulated AMT is unprovisioned, the device leaves the state topic */
  assert_int_equal(rps_device_rows(&W, GUIDS[0]), 0);
  assert_false(rps_device_secret(&W, TENANT, GUIDS[0], NULL));
  char cmd[96];
  snprintf(cmd, sizeof cmd, "state %s", GUIDS[0]);
  const char *st = dmt_test_sim_control(CONTROL, cmd);
  assert_non_null(st);
  assert_non_null(strstr(st, " 0\n") ? st : strstr(st, " 0"));
  assert_true(dmt_test_wait_until(not_connected_for_newcomers, GUIDS[0], 10000));
  long n = 0;
  for (int i = 0; i < 100 && n == 0; i++, usleep(50000)) n = rps_event_count(&W, GUIDS[0], "deactivation", "success");
  assert_int_equal(n, 1);
  char *action = rps_query_text(&W, "SELECT action || '|' || coalesce(requester, '') FROM dmt.events WHERE guid = "
                                    "$1::uuid AND kind = 'deactivation'",
                                GUIDS[0]);
  assert_string_equal(action, "remote_deactivate|rps-test");
  free(action);
  /* the others are still connected */
  assert_int_equal(dmt_test_mqtt_state_of(MQ, GUIDS[1], NULL), 1);
}

static void test_command_refusals(void **state) {
  char *error = NULL;
  int code = rps_provisioning_command(TENANT, "deactivate", "{\"guid\":\"e2e2e2e2-0000-4000-8000-0000000000ff\"}",
                                      10000, 15000, &error, NULL, NULL);
  assert_int_equal(code, 404);
  assert_string_equal(error, "unknown_device");
  free(error);
  /* another tenant's device is unknown here */
  char args[96];
  snprintf(args, sizeof args, "{\"guid\":\"%s\"}", GUIDS[1]);
  code = rps_provisioning_command("someone-else", "deactivate", args, 10000, 15000, &error, NULL, NULL);
  assert_int_equal(code, 404);
  free(error);
  assert_int_equal(rps_device_rows(&W, GUIDS[1]), 1);
  code = rps_provisioning_command(TENANT, "deactivate", args, -1000, 15000, &error, NULL, NULL);
  assert_int_equal(code, 408);
  assert_string_equal(error, "expired");
  free(error);
  code = rps_provisioning_command(TENANT, "deactivate", "{}", 10000, 15000, &error, NULL, NULL);
  assert_int_equal(code, 400);
  free(error);
  code = rps_provisioning_command(TENANT, "cira_reconfigure", args, 10000, 15000, &error, NULL, NULL);
  assert_int_equal(code, 501);
  assert_string_equal(error, "unsupported");
  free(error);
  /* nobody holds the device once the simulator is gone: offline, and the record stays */
  dmt_test_stop(SIM, SIGTERM, 5000);
  SIM = 0;
  code = rps_provisioning_command(TENANT, "deactivate", args, 3000, 10000, &error, NULL, NULL);
  assert_int_equal(code, 404);
  assert_string_equal(error, "offline");
  free(error);
  assert_int_equal(rps_device_rows(&W, GUIDS[1]), 1);
  assert_true(rps_device_secret(&W, TENANT, GUIDS[1], NULL));
  long n = 0;
  for (int i = 0; i < 100 && n == 0; i++, usleep(50000)) n = rps_event_count(&W, GUIDS[1], "deactivation", "failure");
  assert_true(n >= 1);
}

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_activate_then_call_home),
      cmocka_unit_test(test_remote_deactivation),
      cmocka_unit_test(test_command_refusals),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
