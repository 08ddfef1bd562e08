/*
 * The RPS agent driven by the fleet simulator's RPC mode (dmt-sim plays
 * rpc-go and AMT for every device), with the real terminator, Mosquitto and
 * PostgreSQL: 200 simulated devices activate at once in CCM with CIRA, every
 * one succeeds and calls home to dmt-cira with what RPS configured, and
 * appears connected in its tenant's state topic; five more activate in ACM
 * (AdminSetup with the provisioning certificate made here, the simulator
 * checking the chain, the DNS suffix and the signature as firmware does);
 * deactivation both ways (RPC from the simulator, MQTT through the terminator)
 * removes their records.
 *
 * Needs dmt-sim with its RPC mode (branch `sim`): when the dmt-sim of this
 * tree has none (no sim.rpc_url setting), the test reports itself skipped.
 * DMT_TEST_SIM_BIN runs another build of the simulator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rps_fixture.h"

#define N 200   /* CCM at once */
#define NACM 5  /* then ACM (fresh, AdminSetup) */
#define PREFIX "5e5e0000-0000-4000-8000-"

static struct rps_world W;
static struct dmt_test_cira C;
static struct dmt_test_mqtt *MQ;
static struct rps_pki PKI;
static char TENANT[40], CIRA_INSTANCE[64], CONTROL[700], SIM_LOG[700], SIM_BIN[1024];
static pid_t SIM;

static const char *sim_bin(void) {
  const char *b = getenv("DMT_TEST_SIM_BIN");
  snprintf(SIM_BIN, sizeof SIM_BIN, "%s", b && *b ? b : dmt_test_bin("agents/sim/dmt-sim"));
  return SIM_BIN;
}

/* true if this dmt-sim has the RPC mode */
static bool sim_has_rpc(void) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s --help 2>&1 | grep -q sim.rpc_url", sim_bin());
  return system(cmd) == 0;
}

/* One control command; the whole reply (up to the "ok"/"error" line) into out. */
static bool control(const char *cmd, char *out, size_t outlen) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", CONTROL);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    if (fd >= 0) close(fd);
    return false;
  }
  char line[512];
  snprintf(line, sizeof line, "%s\n", cmd);
  if (write(fd, line, strlen(line)) < 0) {
    close(fd);
    return false;
  }
  size_t n = 0;
  out[0] = '\0';
  for (;;) {
    ssize_t r = read(fd, out + n, outlen - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    out[n] = '\0';
    const char *last = out;
    for (const char *p = out; (p = strchr(p, '\n')) && p[1]; p++) last = p + 1;
    if ((!strncmp(last, "ok", 2) || !strncmp(last, "error", 5)) && out[n - 1] == '\n') break;
  }
  close(fd);
  return n > 0;
}

static long stat_of(const char *name) {
  char buf[8192];
  if (!control("stats", buf, sizeof buf)) return -1;
  const char *p = strstr(buf, name);
  return p ? atol(p + strlen(name) + 1) : -1;
}

static int setup(void **state) {
  if (rps_world_init(&W, "rps_sim") != 0) return -1;
  snprintf(TENANT, sizeof TENANT, "tenant-m%d", (int)getpid());
  snprintf(CIRA_INSTANCE, sizeof CIRA_INSTANCE, "cira-rps-sim-%d", (int)getpid());
  C = (struct dmt_test_cira){.dsn = W.dsn, .secrets_key = W.key, .instance = CIRA_INSTANCE, .runtime_dir = W.dir,
                             .port = dmt_test_free_port(), .health_port = dmt_test_free_port()};
  if (dmt_test_cira_start(&C) != 0) return -1;
  if (rps_add_cira(&W, TENANT, "cira1", "127.0.0.1", C.port, "simUser1", NULL, "c3RhbGU=") != 0) return -1;
  if (rps_add_profile(&W, TENANT, "ccm", "ccmactivate", "Ccm@Passw0rd1", NULL, "cira1", "{\"sim\"}") != 0) return -1;
  if (rps_add_profile(&W, TENANT, "acm", "acmactivate", "Acm@Passw0rd1", NULL, "cira1", "{\"sim\"}") != 0) return -1;
  if (rps_make_pki(&PKI, "amt.simfleet.test", 365, "pw") != 0) return -1;
  if (rps_add_domain(&W, TENANT, "simfleet", "simfleet.test", PKI.pfx, PKI.pfx_len, "pw") != 0) return -1;
  MQ = dmt_test_mqtt_open(dmt_test_mqtt_url(), "rps-sim-observer");
  char filter[128];
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/#", TENANT);
  dmt_test_mqtt_subscribe(MQ, filter);
  W.env[0] = "DMT_RPS_DB_WORKERS=8";
  if (rps_world_start(&W) != 0) return -1;
  snprintf(CONTROL, sizeof CONTROL, "%s/sim.sock", W.dir);
  snprintf(SIM_LOG, sizeof SIM_LOG, "%s/sim.log", W.dir);
  char count[32], hashes[128], ctl[800], prefix[64];
  snprintf(count, sizeof count, "--sim.count=%d", N + NACM);
  snprintf(prefix, sizeof prefix, "--sim.guid_prefix=%s", PREFIX);
  snprintf(hashes, sizeof hashes, "--sim.acm_root_hashes=%s", PKI.root_sha256);
  snprintf(ctl, sizeof ctl, "--sim.control=%s", CONTROL);
  char *argv[] = {SIM_BIN, count, prefix, "--sim.mode=pre", "--sim.dns_suffix=simfleet.test", hashes, ctl,
                  "--sim.rpc_rate=1000", "--sim.connect_rate=1000", "--sim.reconnect_min_ms=500",
                  "--log.level=warn", NULL};
  SIM = dmt_test_spawn(argv, NULL, SIM_LOG);
  for (int i = 0; i < 250 && access(CONTROL, F_OK) != 0; i++) usleep(20000);
  return SIM > 0 && MQ ? 0 : -1;
}

static int teardown(void **state) {
  if (SIM > 0) dmt_test_stop(SIM, SIGTERM, 10000);
  int st = rps_world_stop(&W);
  if (C.pid > 0) dmt_test_stop(C.pid, SIGTERM, 10000);
  dmt_test_mqtt_close(MQ);
  rps_pki_free(&PKI);
  return st == 0 ? 0 : -1;
}

static const char *guid(int i) {
  static char g[37];
  snprintf(g, sizeof g, PREFIX "%012x", i);
  return g;
}

static bool rpc_done(void *want) {
  long ok = stat_of("rpc_succeeded"), bad = stat_of("rpc_failed");
  return ok + bad >= (long)(intptr_t)want;
}

static bool all_connected(void *arg) {
  size_t c, d;
  dmt_test_mqtt_states(MQ, &c, &d);
  return c >= (size_t)(intptr_t)arg;
}

static void test_200_ccm_then_call_home(void **state) {
  char cmd[300], buf[4096];
  for (int i = 0; i < N; i++) {
    snprintf(cmd, sizeof cmd, "activate %s %s ccm %s", guid(i), W.url, TENANT);
    assert_true(control(cmd, buf, sizeof buf));
    assert_int_equal(strncmp(buf, "ok", 2), 0);
  }
  assert_true(dmt_test_wait_until(rpc_done, (void *)(intptr_t)N, 240000));
  assert_int_equal(stat_of("rpc_succeeded"), N);
  assert_int_equal(stat_of("rpc_failed"), 0);
  snprintf(cmd, sizeof cmd, "rpc %s", guid(7));
  assert_true(control(cmd, buf, sizeof buf));
  assert_non_null(strstr(buf, "success"));
  /* every device dials the terminator with what RPS installed and stored, and shows up connected */
  assert_true(dmt_test_wait_until(all_connected, (void *)(intptr_t)N, 180000));
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.devices WHERE tenant_id = '%s' AND mps_username = 'simUser1'",
           TENANT);
  assert_int_equal(dmt_test_pg_count(W.dsn, sql), N);
}

static void test_acm(void **state) {
  char cmd[300], buf[4096];
  long before = stat_of("rpc_succeeded");
  for (int i = N; i < N + NACM; i++) {
    snprintf(cmd, sizeof cmd, "activate %s %s acm %s", guid(i), W.url, TENANT);
    assert_true(control(cmd, buf, sizeof buf));
    if (strncmp(buf, "ok", 2)) print_message("%s -> %s", cmd, buf);
    assert_int_equal(strncmp(buf, "ok", 2), 0);
  }
  assert_true(dmt_test_wait_until(rpc_done, (void *)(intptr_t)(before + NACM + stat_of("rpc_failed")), 60000));
  assert_int_equal(stat_of("rpc_succeeded"), before + NACM);
  for (int i = N; i < N + NACM; i++) {
    snprintf(cmd, sizeof cmd, "state %s", guid(i));
    assert_true(control(cmd, buf, sizeof buf));
    assert_non_null(strstr(buf, " 2\n")); /* admin control mode */
    json_t *sec = NULL;
    assert_true(rps_device_secret(&W, TENANT, guid(i), &sec));
    assert_string_equal(json_string_value(json_object_get(sec, "AMT_PASSWORD")), "Acm@Passw0rd1");
    json_decref(sec);
  }
}

static void test_deactivation_both_ways(void **state) {
  char cmd[300], buf[4096];
  /* RPC, from the simulated device */
  long before = stat_of("rpc_succeeded");
  snprintf(cmd, sizeof cmd, "deactivate %s %s Ccm@Passw0rd1", guid(1), W.url);
  assert_true(control(cmd, buf, sizeof buf));
  assert_true(dmt_test_wait_until(rpc_done, (void *)(intptr_t)(before + 1 + stat_of("rpc_failed")), 30000));
  assert_int_equal(rps_device_rows(&W, guid(1)), 0);
  assert_false(rps_device_secret(&W, TENANT, guid(1), NULL));
  /* MQTT, through the terminator holding the device */
  char args[96], *error = NULL;
  snprintf(args, sizeof args, "{\"guid\":\"%s\"}", guid(2));
  assert_int_equal(rps_provisioning_command(TENANT, "deactivate", args, 20000, 25000, &error, NULL, NULL), 200);
  assert_int_equal(rps_device_rows(&W, guid(2)), 0);
  snprintf(cmd, sizeof cmd, "state %s", guid(2));
  assert_true(control(cmd, buf, sizeof buf));
  assert_non_null(strstr(buf, " 0\n"));
}

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_mqtt_url();
  if (!sim_has_rpc()) {
    printf("dmt-sim (%s) has no RPC mode yet (branch sim): skipped\n", SIM_BIN);
    return DMT_TEST_SKIP;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_200_ccm_then_call_home),
      cmocka_unit_test(test_acm),
      cmocka_unit_test(test_deactivation_both_ways),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
