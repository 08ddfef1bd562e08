/*
 * 1,000 simulated devices in one dmt-sim process against a strict in-test
 * CIRA server (apf_server.c) that checks every byte of PROTOCOLVERSION, the
 * service requests, USERAUTH and the seven tcpip-forward requests against
 * the reference layouts, sends KEEPALIVE_OPTIONS and times the keepalives
 * that follow. On a sample of devices it runs WS-Man Gets through APF
 * channels as DMT's MPS does: the 401 with Connection: close on the first
 * channel, the digest retry on a second, a 200 in chunks with RelatesTo =
 * MessageID, the server's window respected and the device's own window
 * returned with WINDOW_ADJUST. Devices refuse an MPS whose certificate does
 * not chain to their root or does not name the MPS address, and a shutdown
 * sends DISCONNECT on every tunnel and prints the counters.
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

#include "apf_server.h"
#include "dmt/wsman.h"
#include "harness.h"

#define N 1000
#define SAMPLE_EVERY 100
#define KEEPALIVE_S 2
#define GUID_PREFIX "3e3e0000-0000-4000-8000-"
#define MPS_USER "ciraUser1"
#define MPS_PASSWORD "Mps@Passw0rd1"
#define AMT_PASSWORD "Amt@Passw0rd1"

static struct {
  char *dir;
  struct apf_pki pki;
  char control[600], log[600], control2[600], log2[600], fleet2[600];
  struct apf_server *srv, *untrusted, *misnamed, *legacy, *modern;
  pid_t sim, sim2;
} W;

static void guid_of(size_t i, char out[37]) { snprintf(out, 37, GUID_PREFIX "%012zx", i); }

static int setup(void **state) {
  W.dir = dmt_test_tmpdir("sim-apf");
  snprintf(W.control, sizeof W.control, "%s/sim.sock", W.dir);
  snprintf(W.log, sizeof W.log, "%s/sim.log", W.dir);
  if (apf_test_pki(W.dir, &W.pki) != 0) return -1;
  W.srv = apf_server_start(W.pki.cert, W.pki.key, KEEPALIVE_S);
  if (!W.srv) return -1;
  for (size_t i = 0; i < N; i++) {
    char guid[37], host[24];
    guid_of(i, guid);
    snprintf(host, sizeof host, "sim-%05zu", i);
    apf_server_expect(W.srv, guid, MPS_USER, MPS_PASSWORD, host);
  }
  char count[32], port[32], prefix[64], user[64], pw[64], amt[64], root[700], ctl[700];
  snprintf(count, sizeof count, "--sim.count=%d", N);
  snprintf(port, sizeof port, "--sim.mps_port=%d", apf_server_port(W.srv));
  snprintf(prefix, sizeof prefix, "--sim.guid_prefix=%s", GUID_PREFIX);
  snprintf(user, sizeof user, "--sim.mps_username=%s", MPS_USER);
  snprintf(pw, sizeof pw, "--sim.mps_password=%s", MPS_PASSWORD);
  snprintf(amt, sizeof amt, "--sim.amt_password=%s", AMT_PASSWORD);
  snprintf(root, sizeof root, "--sim.mps_ca=%s", W.pki.root);
  snprintf(ctl, sizeof ctl, "--sim.control=%s", W.control);
  char *argv[] = {(char *)dmt_test_bin("agents/sim/dmt-sim"), count, port, prefix, user, pw, amt, root, ctl,
                  "--sim.mps_host=127.0.0.1", "--sim.connect_rate=1000", "--sim.reconnect_min_ms=500",
                  "--log.level=warn", NULL};
  W.sim = dmt_test_spawn(argv, NULL, W.log);
  for (int i = 0; i < 250 && access(W.control, F_OK) != 0; i++) usleep(20000);
  return W.sim > 0 ? 0 : -1;
}

static int teardown(void **state) {
  if (W.sim > 0) dmt_test_stop(W.sim, SIGKILL, 1000);
  if (W.sim2 > 0) dmt_test_stop(W.sim2, SIGKILL, 1000);
  apf_server_stop(W.srv);
  apf_server_stop(W.untrusted);
  apf_server_stop(W.misnamed);
  apf_server_stop(W.legacy);
  apf_server_stop(W.modern);
  return 0;
}

static bool all_ready(void *arg) {
  struct apf_server_stats st;
  apf_server_stats(W.srv, &st);
  return st.ready == N || st.violations > 0;
}

static void test_fleet_handshakes_byte_exact(void **state) {
  assert_true(dmt_test_wait_until(all_ready, NULL, 180000));
  struct apf_server_stats st;
  apf_server_stats(W.srv, &st);
  if (st.violations) fprintf(stderr, "%s", apf_server_violations(W.srv));
  assert_int_equal(st.violations, 0);
  assert_int_equal(st.ready, N);
  assert_int_equal(st.sessions, N); /* nobody needed a second attempt */
  assert_int_equal(st.auth_failures, 0);
  assert_int_equal(dmt_test_sim_connected(W.control), N);
}

static bool keepalives_checked(void *arg) {
  struct apf_server_stats st;
  apf_server_stats(W.srv, &st);
  return st.keepalive_checked == N || st.violations > 0;
}

static void test_keepalives_at_negotiated_interval(void **state) {
  assert_true(dmt_test_wait_until(keepalives_checked, NULL, 60000));
  struct apf_server_stats st;
  apf_server_stats(W.srv, &st);
  if (st.violations) fprintf(stderr, "%s", apf_server_violations(W.srv));
  assert_int_equal(st.keepalive_early, 0);
  assert_int_equal(st.keepalive_checked, N);
}

static void check_exchange(const char *guid, size_t pad) {
  struct dmt_buf env;
  dmt_buf_init(&env, 0);
  dmt_wsman_get(&env, "AMT_GeneralSettings", "4711", NULL, 0);
  dmt_buf_append_u8(&env, 0);
  struct apf_wsman_result r;
  int rc = apf_server_wsman(W.srv, guid, (const char *)env.data, AMT_PASSWORD, 512, pad, &r, 20000);
  if (rc != 0) fprintf(stderr, "%s: %s\n", guid, r.error);
  assert_int_equal(rc, 0);
  assert_false(r.refused);
  /* the first, unauthenticated request: AMT's 401, Connection: close, and the device closes the channel */
  assert_int_equal(r.first_status, 401);
  assert_true(r.first_connection_close);
  assert_true(r.first_closed);
  assert_int_equal(strlen(r.realm), 39);
  assert_int_equal(strncmp(r.realm, "Digest:", 7), 0);
  /* the digest retry on a new channel */
  assert_int_equal(r.status, 200);
  assert_true(r.chunked);
  assert_true(r.window_respected); /* a 512-byte window: the answer came in credited pieces */
  if (pad) assert_true(r.device_adjusted);
  struct dmt_wsman_response resp;
  char err[256];
  assert_int_equal(dmt_wsman_parse_response(r.body, strlen(r.body), &resp, err, sizeof err), 0);
  assert_string_equal(resp.relates_to, "4711");
  assert_non_null(strstr(r.body, r.realm)); /* DigestRealm is the realm of the challenge */
  dmt_wsman_response_free(&resp);
  apf_wsman_result_free(&r);
  dmt_buf_free(&env);
}

static void test_wsman_through_channels(void **state) {
  for (size_t i = 0; i < N; i += SAMPLE_EVERY) {
    char guid[37];
    guid_of(i, guid);
    check_exchange(guid, 0);
  }
  /* a request larger than half the device's window makes it hand credits back */
  char guid[37];
  guid_of(N - 1, guid);
  check_exchange(guid, 20000);
  struct apf_server_stats st;
  apf_server_stats(W.srv, &st);
  if (st.violations) fprintf(stderr, "%s", apf_server_violations(W.srv));
  assert_int_equal(st.violations, 0);
  const char *stats = dmt_test_sim_control(W.control, "stats");
  assert_non_null(strstr(stats, "wsman.AMT_GeneralSettings "));
}

static bool tls_refused(void *arg) {
  const char *r = dmt_test_sim_control(W.control2, "stats");
  const char *p = r ? strstr(r, "tls_failures ") : NULL;
  return p && atoi(p + 13) >= 6;
}

static bool legacy_device_in(void *arg) { return apf_server_is_ready(W.legacy, "5f5f0000-0000-4000-8000-000000000003"); }

static void test_devices_verify_the_mps(void **state) {
  /* one device to an MPS whose certificate does not chain to its root, one to an MPS whose certificate
   * chains but names another host; and two AMT 11 devices, whose old TLS only a legacy-enabled MPS takes */
  W.untrusted = apf_server_start(W.pki.other_cert, W.pki.other_key, KEEPALIVE_S);
  W.misnamed = apf_server_start(W.pki.named_cert, W.pki.named_key, KEEPALIVE_S);
  W.legacy = apf_server_start_tls(W.pki.cert, W.pki.key, KEEPALIVE_S, true);
  W.modern = apf_server_start_tls(W.pki.cert, W.pki.key, KEEPALIVE_S, false);
  snprintf(W.fleet2, sizeof W.fleet2, "%s/fleet2.json", W.dir);
  snprintf(W.control2, sizeof W.control2, "%s/sim2.sock", W.dir);
  snprintf(W.log2, sizeof W.log2, "%s/sim2.log", W.dir);
  FILE *f = fopen(W.fleet2, "w");
  fprintf(f,
          "{\"mps\":{\"host\":\"127.0.0.1\",\"root_ca\":\"%s\",\"username\":\"%s\",\"password\":\"%s\"},\"devices\":["
          "{\"guid\":\"5f5f0000-0000-4000-8000-000000000001\",\"mps_port\":%d},"
          "{\"guid\":\"5f5f0000-0000-4000-8000-000000000002\",\"mps_port\":%d},"
          "{\"guid\":\"5f5f0000-0000-4000-8000-000000000003\",\"mps_port\":%d,\"amt_version\":\"11.8.55\"},"
          "{\"guid\":\"5f5f0000-0000-4000-8000-000000000004\",\"mps_port\":%d,\"amt_version\":\"11.8.55\"}]}\n",
          W.pki.root, MPS_USER, MPS_PASSWORD, apf_server_port(W.untrusted), apf_server_port(W.misnamed),
          apf_server_port(W.legacy), apf_server_port(W.modern));
  fclose(f);
  apf_server_expect(W.untrusted, "5f5f0000-0000-4000-8000-000000000001", MPS_USER, MPS_PASSWORD, "sim-00000");
  apf_server_expect(W.misnamed, "5f5f0000-0000-4000-8000-000000000002", MPS_USER, MPS_PASSWORD, "sim-00001");
  apf_server_expect(W.legacy, "5f5f0000-0000-4000-8000-000000000003", MPS_USER, MPS_PASSWORD, "sim-00002");
  apf_server_expect(W.modern, "5f5f0000-0000-4000-8000-000000000004", MPS_USER, MPS_PASSWORD, "sim-00003");
  char fl[700], ctl[700];
  snprintf(fl, sizeof fl, "--sim.fleet=%s", W.fleet2);
  snprintf(ctl, sizeof ctl, "--sim.control=%s", W.control2);
  char *argv[] = {(char *)dmt_test_bin("agents/sim/dmt-sim"), fl, ctl, "--sim.reconnect_min_ms=200",
                  "--sim.reconnect_max_ms=400", "--log.level=error", NULL};
  W.sim2 = dmt_test_spawn(argv, NULL, W.log2);
  for (int i = 0; i < 250 && access(W.control2, F_OK) != 0; i++) usleep(20000);
  assert_true(dmt_test_wait_until(tls_refused, NULL, 30000));
  struct apf_server_stats a, b;
  apf_server_stats(W.untrusted, &a);
  apf_server_stats(W.misnamed, &b);
  assert_true(a.connections >= 2 && b.connections >= 2); /* they tried, and kept trying */
  assert_int_equal(a.sessions + b.sessions, 0);
  assert_true(dmt_test_wait_until(legacy_device_in, NULL, 20000));
  struct apf_server_stats m;
  apf_server_stats(W.modern, &m);
  assert_true(m.connections >= 1);
  assert_int_equal(m.sessions, 0); /* AMT 11's suites are not in a modern server's list */
  assert_int_equal(dmt_test_sim_connected(W.control2), 1);
  dmt_test_stop(W.sim2, SIGTERM, 5000);
  W.sim2 = 0;
}

static bool all_disconnected(void *arg) {
  struct apf_server_stats st;
  apf_server_stats(W.srv, &st);
  return st.disconnects >= N;
}

static void test_shutdown_disconnects_and_prints_counters(void **state) {
  int status = dmt_test_stop(W.sim, SIGTERM, 20000);
  W.sim = 0;
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_true(dmt_test_wait_until(all_disconnected, NULL, 10000));
  struct apf_server_stats st;
  apf_server_stats(W.srv, &st);
  assert_int_equal(st.violations, 0);
  FILE *f = fopen(W.log, "r");
  assert_non_null(f);
  char line[256];
  bool connected = false, keepalives = false;
  while (fgets(line, sizeof line, f)) {
    unsigned long v;
    if (sscanf(line, "connected %lu", &v) == 1 && v == N) connected = true;
    if (sscanf(line, "keepalives_sent %lu", &v) == 1 && v >= 2 * N) keepalives = true;
  }
  fclose(f);
  assert_true(connected);
  assert_true(keepalives);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fleet_handshakes_byte_exact),
      cmocka_unit_test(test_keepalives_at_negotiated_interval),
      cmocka_unit_test(test_wsman_through_channels),
      cmocka_unit_test(test_devices_verify_the_mps),
      cmocka_unit_test(test_shutdown_disconnects_and_prints_counters),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
