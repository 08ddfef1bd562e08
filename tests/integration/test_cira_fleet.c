/*
 * The CIRA terminator end to end with real Mosquitto, PostgreSQL, TLS and the
 * fleet simulator: N simulated devices connect and authenticate (rows,
 * retained states); commands published on a device's cmd topic run WS-Man
 * through APF and change the simulated device (power); wrong passwords, a
 * spoofed GUID and a garbage APF stream are refused without affecting the
 * others; a terminator shutdown marks its devices disconnected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/tls.h"
#include "harness.h"

#ifndef FLEET_SIZE
#define FLEET_SIZE 1000
#endif

struct world {
  char *dsn, *dir;
  const char *key;
  char tenant[40], fleet[600], control[600], sim_log[600], instance[64];
  struct dmt_test_cira cira;
  pid_t sim;
  struct dmt_fleet_device *devs;
  size_t n;
  struct dmt_test_mqtt *mq;
};

static struct world W;

static int setup(void **state) {
  struct world *w = &W;
  w->n = FLEET_SIZE;
  w->dsn = dmt_test_pg_create_db("cira");
  w->dir = dmt_test_tmpdir("cira");
  w->key = strdup(dmt_test_secrets_key());
  snprintf(w->tenant, sizeof w->tenant, "tenant-%d", (int)getpid());
  snprintf(w->instance, sizeof w->instance, "cira-test-%d", (int)getpid());
  static const char *const env[] = {"DMT_CIRA_KEEPALIVE_S=5", "DMT_CIRA_POWER_REFRESH_S=10",
                                    "DMT_CIRA_POWER_REFRESH_JITTER_S=0", NULL};
  w->cira = (struct dmt_test_cira){.dsn = w->dsn, .secrets_key = w->key, .instance = w->instance,
                                   .runtime_dir = w->dir, .port = dmt_test_free_port(),
                                   .health_port = dmt_test_free_port(), .extra_env = env};
  snprintf(w->sim_log, sizeof w->sim_log, "%s/sim.log", w->dir);
  snprintf(w->fleet, sizeof w->fleet, "%s/fleet.json", w->dir);
  snprintf(w->control, sizeof w->control, "%s/sim.sock", w->dir);
  /* n good devices, one whose password is wrong in the fleet, one GUID nobody provisioned */
  char perr[256];
  w->devs = dmt_fleet_provision(w->dsn, w->key, "test", w->tenant, "6a6a0000-0000-4000-8000-", w->n + 1, perr, sizeof perr);
  if (!w->devs) {
    fprintf(stderr, "provision: %s\n", perr);
    return -1;
  }
  struct dmt_fleet_device *fleet = calloc(w->n + 2, sizeof *fleet);
  memcpy(fleet, w->devs, (w->n + 1) * sizeof *fleet);
  snprintf(fleet[w->n].mps_password, sizeof fleet[w->n].mps_password, "NotThePassword1");
  fleet[w->n + 1] = w->devs[0];
  snprintf(fleet[w->n + 1].guid, sizeof fleet[w->n + 1].guid, "7b7b0000-0000-4000-8000-000000000001");
  dmt_fleet_write(w->fleet, fleet, w->n + 2, "127.0.0.1", w->cira.port);
  free(fleet);

  w->mq = dmt_test_mqtt_open(dmt_test_mqtt_url(), "cira-fleet-test");
  char filter[128];
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/#", w->tenant);
  dmt_test_mqtt_subscribe(w->mq, filter);
  dmt_test_mqtt_subscribe(w->mq, "dmt/_sys/events/#");

  if (dmt_test_cira_start(&w->cira) != 0) return -1;
  w->sim = dmt_test_sim_start(w->fleet, w->cira.root_pem, w->control, w->sim_log);
  return w->sim > 0 ? 0 : -1;
}

static int teardown(void **state) {
  struct world *w = &W;
  if (w->sim > 0) dmt_test_stop(w->sim, SIGTERM, 5000);
  if (w->cira.pid > 0) dmt_test_stop(w->cira.pid, SIGTERM, 10000);
  dmt_test_mqtt_close(w->mq);
  return 0;
}

static size_t sim_connected(void) { return dmt_test_sim_connected(W.control); }

static bool all_connected(void *arg) {
  size_t c, d;
  dmt_test_mqtt_states(W.mq, &c, &d);
  return sim_connected() == W.n && c == W.n;
}

static void test_fleet_connects(void **state) {
  assert_true(dmt_test_wait_until(all_connected, NULL, 120000));
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.devices WHERE connection_status AND mps_instance = '%s'",
           W.instance);
  long rows = -1;
  for (int i = 0; i < 100 && rows != (long)W.n; i++) {
    rows = dmt_test_pg_count(W.dsn, sql);
    usleep(100000);
  }
  assert_int_equal(rows, (long)W.n);
}

static void test_bad_logins_refused(void **state) {
  /* the wrong-password device and the spoofed GUID never get in, and their failures are audited */
  assert_int_equal(dmt_test_mqtt_state_of(W.mq, W.devs[W.n].guid, NULL), -1);
  size_t audited = 0;
  for (int i = 0; i < 100 && audited < 2; i++) {
    audited = dmt_test_mqtt_count_suffix(W.mq, "/events/auth_failure");
    usleep(100000);
  }
  assert_true(audited >= 2);
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.events WHERE kind = 'auth_failure'");
  assert_true(dmt_test_pg_count(W.dsn, sql) >= 2);
  const char *r = dmt_test_sim_control(W.control, "stats");
  assert_non_null(r);
  assert_non_null(strstr(r, "auth_failures "));
  assert_false(strstr(r, "auth_failures 0\n") != NULL);
}

static void test_power_commands(void **state) {
  const char *guid = W.devs[3].guid;
  json_t *res = NULL;
  char *err = NULL;
  int code = dmt_test_command(W.mq, W.tenant, guid, "power_state", NULL, 10000, &err, &res);
  assert_int_equal(code, 200);
  assert_int_equal(json_integer_value(json_object_get(res, "powerstate")), 2);
  json_decref(res);
  code = dmt_test_command(W.mq, W.tenant, guid, "power_action", "{\"action\":8}", 10000, &err, &res);
  assert_int_equal(code, 200);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "Body"), "ReturnValue")), 0);
  assert_string_equal(json_string_value(json_object_get(json_object_get(res, "Body"), "ReturnValueStr")), "SUCCESS");
  json_decref(res);
  /* the simulated device really is off, and says so */
  char cmd[96];
  snprintf(cmd, sizeof cmd, "state %s", guid);
  const char *st = dmt_test_sim_control(W.control, cmd);
  assert_non_null(st);
  assert_non_null(strstr(st, "ready 8"));
  code = dmt_test_command(W.mq, W.tenant, guid, "power_state", NULL, 10000, &err, &res);
  assert_int_equal(code, 200);
  assert_int_equal(json_integer_value(json_object_get(res, "powerstate")), 8);
  json_decref(res);
  /* powering off an off machine is the firmware's NOT_READY, answered, not an error */
  code = dmt_test_command(W.mq, W.tenant, guid, "power_action", "{\"action\":8}", 10000, &err, &res);
  assert_int_equal(code, 200);
  assert_string_equal(json_string_value(json_object_get(json_object_get(res, "Body"), "ReturnValueStr")), "NOT_READY");
  json_decref(res);
  code = dmt_test_command(W.mq, W.tenant, guid, "power_action", "{\"action\":2}", 10000, &err, &res);
  assert_int_equal(code, 200);
  json_decref(res);
  /* the retained state followed */
  int power = 0;
  for (int i = 0; i < 100 && power != 2; i++) {
    dmt_test_mqtt_state_of(W.mq, guid, &power);
    usleep(20000);
  }
  assert_int_equal(power, 2);
}

static void test_info_commands(void **state) {
  const char *guid = W.devs[5].guid;
  json_t *res = NULL;
  char *err = NULL;
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "general_settings", NULL, 10000, &err, &res), 200);
  assert_non_null(json_object_get(json_object_get(json_object_get(res, "Body"), "AMT_GeneralSettings"), "DigestRealm"));
  json_decref(res);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "version", NULL, 10000, &err, &res), 200);
  assert_int_equal(json_array_size(json_object_get(json_object_get(res, "CIM_SoftwareIdentity"), "responses")), 11);
  json_decref(res);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "hardware_info", NULL, 20000, &err, &res), 200);
  assert_int_equal(json_object_size(res), 10);
  assert_int_equal(json_array_size(json_object_get(json_object_get(res, "CIM_PhysicalMemory"), "responses")), 2);
  json_decref(res);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "audit_log", "{\"start_index\":0}", 10000, &err, &res), 200);
  assert_int_equal(json_integer_value(json_object_get(res, "totalCnt")), 14);
  assert_int_equal(json_array_size(json_object_get(res, "records")), 10);
  json_decref(res);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "event_log", NULL, 10000, &err, &res), 200);
  assert_int_equal(json_array_size(res), 6);
  json_decref(res);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "power_capabilities", NULL, 10000, &err, &res), 200);
  assert_int_equal(json_integer_value(json_object_get(res, "Power up to BIOS")), 100);
  json_decref(res);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "features", NULL, 10000, &err, &res), 200);
  assert_true(json_is_boolean(json_object_get(res, "KVM")));
  json_decref(res);
  /* unknown verb, missing args, a device we do not hold */
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "self_destruct", NULL, 5000, &err, &res), 501);
  free(err);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "power_action", "{}", 5000, &err, &res), 400);
  free(err);
}

/* Background reads (DMT's power_state_refresh_*) put every device's power state into its retained state. */
static bool all_powers_known(void *arg) {
  for (size_t i = 0; i < W.n; i++) {
    int power = 0;
    if (dmt_test_mqtt_state_of(W.mq, W.devs[i].guid, &power) != 1 || power == 0) return false;
  }
  return true;
}

static void test_power_state_refreshed(void **state) {
  bool ok = dmt_test_wait_until(all_powers_known, NULL, 90000);
  for (size_t i = 0; !ok && i < W.n; i++) {
    int power = 0, st = dmt_test_mqtt_state_of(W.mq, W.devs[i].guid, &power);
    if (st != 1 || power == 0) fprintf(stderr, "no power state: %s (state %d power %d)\n", W.devs[i].guid, st, power);
  }
  assert_true(ok);
}

static json_t *body_of(json_t *res) { return json_object_get(res, "Body"); }

static const char *rv_str(json_t *res) { return json_string_value(json_object_get(body_of(res), "ReturnValueStr")); }

static void expect_power(const char *guid, const char *want) {
  char cmd[96];
  snprintf(cmd, sizeof cmd, "state %s", guid);
  const char *st = dmt_test_sim_control(W.control, cmd);
  assert_non_null(st);
  if (!strstr(st, want)) fail_msg("device %s: %s, wanted %s", guid, st, want);
}

static void test_boot_options_and_os_power(void **state) {
  const char *guid = W.devs[9].guid;
  json_t *res = NULL;
  char *err = NULL;
  /* reset to BIOS setup, then power off and power on to PXE */
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "boot_options", "{\"action\":101,\"use_sol\":true}", 10000, &err,
                                    &res), 200);
  assert_string_equal(rv_str(res), "SUCCESS");
  json_decref(res);
  expect_power(guid, "ready 2");
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "power_action", "{\"action\":8}", 10000, &err, &res), 200);
  json_decref(res);
  expect_power(guid, "ready 8");
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "boot_options", "{\"action\":401}", 10000, &err, &res), 200);
  assert_string_equal(rv_str(res), "SUCCESS");
  json_decref(res);
  expect_power(guid, "ready 2");
  /* a boot code through power_action means the same boot (DMT answered INVALID_PARAMETER without acting) */
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "power_action", "{\"action\":202}", 10000, &err, &res), 200);
  assert_string_equal(rv_str(res), "SUCCESS");
  json_decref(res);
  /* UEFI HTTPS boot carries its OCR parameters; without a URL it is refused before anything runs */
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "boot_options",
                                    "{\"action\":105,\"boot_details\":{\"url\":\"https://boot.example/x.efi\"}}", 10000,
                                    &err, &res), 200);
  assert_string_equal(rv_str(res), "SUCCESS");
  json_decref(res);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "boot_options", "{\"action\":105}", 10000, &err, &res), 400);
  assert_string_equal(err, "bad_request");
  free(err);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "boot_options",
                                    "{\"action\":107,\"boot_details\":{\"bootPath\":\"\\\\EFI\\\\nope.efi\"}}", 10000,
                                    &err, &res), 400);
  free(err);
  /* codes outside DMT's set */
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "boot_options", "{\"action\":2}", 5000, &err, &res), 400);
  free(err);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "power_action", "{\"action\":9}", 5000, &err, &res), 400);
  free(err);
  /* NMI */
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "power_action", "{\"action\":11}", 10000, &err, &res), 200);
  assert_string_equal(rv_str(res), "SUCCESS");
  json_decref(res);
  /* the OS power-saving path and DMT's answers for it */
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "power_action", "{\"action\":501}", 10000, &err, &res), 200);
  assert_int_equal(json_integer_value(json_object_get(body_of(res), "ReturnValue")), 0);
  assert_string_equal(rv_str(res), "COMPLETED_WITH_NO_ERROR");
  assert_null(json_object_get(res, "Header"));
  json_decref(res);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "power_state", NULL, 10000, &err, &res), 200);
  assert_int_equal(json_integer_value(json_object_get(res, "OSPowerSavingState")), 3);
  json_decref(res);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "power_action", "{\"action\":501}", 10000, &err, &res), 200);
  assert_string_equal(rv_str(res), "COMPLETED_WITH_NO_ERROR"); /* already there: nothing to do */
  json_decref(res);
  /* power up of a running machine whose OS saves power: the OS is woken first, the power-up itself is NOT_READY */
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "power_action", "{\"action\":2}", 10000, &err, &res), 200);
  assert_string_equal(rv_str(res), "NOT_READY");
  json_decref(res);
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "power_state", NULL, 10000, &err, &res), 200);
  assert_int_equal(json_integer_value(json_object_get(res, "OSPowerSavingState")), 2);
  json_decref(res);
}

static void test_garbage_apf_only_hurts_itself(void **state) {
  char e[512];
  SSL_CTX *ctx = dmt_tls_client_ctx(NULL, false, e, sizeof e);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)W.cira.port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  assert_int_equal(SSL_connect(ssl), 1);
  unsigned char junk[4096];
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 131 + 7);
  junk[0] = 0x5e; /* CHANNEL_DATA before any login */
  SSL_write(ssl, junk, sizeof junk);
  char buf[64];
  int r = SSL_read(ssl, buf, sizeof buf); /* DISCONNECT then close */
  assert_true(r <= 0 || (unsigned char)buf[0] == 1);
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  /* a device in the middle of things still answers */
  json_t *res = NULL;
  assert_int_equal(dmt_test_command(W.mq, W.tenant, W.devs[7].guid, "power_state", NULL, 10000, NULL, &res), 200);
  json_decref(res);
  assert_int_equal(sim_connected(), W.n);
}

static bool all_disconnected(void *arg) {
  size_t c, d;
  dmt_test_mqtt_states(W.mq, &c, &d);
  return c == 0 && d >= W.n;
}

static void test_shutdown_marks_devices_disconnected(void **state) {
  int st = dmt_test_stop(W.cira.pid, SIGTERM, 20000);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  W.cira.pid = 0;
  assert_true(dmt_test_wait_until(all_disconnected, NULL, 30000));
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.devices WHERE connection_status");
  assert_int_equal(dmt_test_pg_count(W.dsn, sql), 0);
}

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fleet_connects),
      cmocka_unit_test(test_bad_logins_refused),
      cmocka_unit_test(test_power_commands),
      cmocka_unit_test(test_info_commands),
      cmocka_unit_test(test_power_state_refreshed),
      cmocka_unit_test(test_boot_options_and_os_power),
      cmocka_unit_test(test_garbage_apf_only_hurts_itself),
      cmocka_unit_test(test_shutdown_marks_devices_disconnected),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
