/*
 * Driving a running dmt-sim through its control socket, observed from the
 * strict CIRA server: every fault does what it says on the wire (drop: the
 * tunnel is cut without DISCONNECT and comes back; wrongpass: USERAUTH
 * refused until rightpass; badframe: a message of unknown type; refuse-channel:
 * CHANNEL_OPEN_FAILURE; slow: answers held back; stall: nothing moves until
 * unstall; reboot: back after the boot time), local power events and WS-Man
 * power changes take effect, and after a SIGTERM (counters printed) a restart
 * on the same state directory brings every device back as it was: power
 * state, a host name changed over WS-Man (seen in the tcpip-forward
 * requests), and an MPS changed with AddMpServer (the device calls the new
 * one, with the new credentials).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "apf_server.h"
#include "dmt/digest.h"
#include "dmt/http.h"
#include "dmt/wsman.h"
#include "harness.h"

#define N 12
#define KEEPALIVE_S 1
#define GUID_PREFIX "4d4d0000-0000-4000-8000-"
#define MPS_USER "ciraUser2"
#define MPS_PASSWORD "Mps@Passw0rd2"
#define AMT_PASSWORD "Amt@Passw0rd2"

static struct {
  char *dir;
  struct apf_pki pki;
  char control[600], log[600], state[600];
  struct apf_server *srv, *srv2;
  pid_t sim;
  int wsman_port;
} W;

static const char *guid(size_t i) {
  static char g[8][37];
  static int k;
  k = (k + 1) % 8;
  snprintf(g[k], 37, GUID_PREFIX "%012zx", i);
  return g[k];
}

static const char *ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *ctl(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  const char *r = dmt_test_sim_control(W.control, line);
  return r ? r : "";
}

static pid_t start_sim(void) {
  char count[32], port[32], prefix[64], user[64], pw[64], amt[64], root[700], c[700], st[700], local[48];
  snprintf(local, sizeof local, "--sim.wsman_port=%d", W.wsman_port);
  snprintf(count, sizeof count, "--sim.count=%d", N);
  snprintf(port, sizeof port, "--sim.mps_port=%d", apf_server_port(W.srv));
  snprintf(prefix, sizeof prefix, "--sim.guid_prefix=%s", GUID_PREFIX);
  snprintf(user, sizeof user, "--sim.mps_username=%s", MPS_USER);
  snprintf(pw, sizeof pw, "--sim.mps_password=%s", MPS_PASSWORD);
  snprintf(amt, sizeof amt, "--sim.amt_password=%s", AMT_PASSWORD);
  snprintf(root, sizeof root, "--sim.mps_ca=%s", W.pki.root);
  snprintf(c, sizeof c, "--sim.control=%s", W.control);
  snprintf(st, sizeof st, "--sim.state_dir=%s", W.state);
  char *argv[] = {(char *)dmt_test_bin("agents/sim/dmt-sim"), count, port, prefix, user, pw, amt, root, c, st, local,
                  "--sim.reconnect_min_ms=200", "--sim.reconnect_max_ms=400", "--sim.boot_ms=300",
                  "--log.level=warn", NULL};
  unlink(W.control);
  pid_t pid = dmt_test_spawn(argv, NULL, W.log);
  for (int i = 0; i < 250 && access(W.control, F_OK) != 0; i++) usleep(20000);
  return pid;
}

static void expect_all(struct apf_server *s) {
  for (size_t i = 0; i < N; i++) {
    char host[24];
    snprintf(host, sizeof host, "sim-%05zu", i);
    apf_server_expect(s, guid(i), MPS_USER, MPS_PASSWORD, host);
  }
}

static int setup(void **state) {
  W.dir = dmt_test_tmpdir("sim-control");
  snprintf(W.control, sizeof W.control, "%s/sim.sock", W.dir);
  snprintf(W.log, sizeof W.log, "%s/sim.log", W.dir);
  snprintf(W.state, sizeof W.state, "%s/state", W.dir);
  if (apf_test_pki(W.dir, &W.pki) != 0) return -1;
  W.srv = apf_server_start(W.pki.cert, W.pki.key, KEEPALIVE_S);
  W.srv2 = apf_server_start(W.pki.cert, W.pki.key, KEEPALIVE_S);
  if (!W.srv || !W.srv2) return -1;
  expect_all(W.srv);
  W.wsman_port = dmt_test_free_port();
  W.sim = start_sim();
  return W.sim > 0 ? 0 : -1;
}

static int teardown(void **state) {
  if (W.sim > 0) dmt_test_stop(W.sim, SIGKILL, 1000);
  apf_server_stop(W.srv);
  apf_server_stop(W.srv2);
  return 0;
}

struct wait_sessions {
  struct apf_server *srv;
  size_t index, at_least;
};

static bool sessions_reached(void *arg) {
  struct wait_sessions *w = arg;
  return apf_server_sessions_of(w->srv, guid(w->index)) >= w->at_least && apf_server_is_ready(w->srv, guid(w->index));
}

static void wait_sessions(struct apf_server *srv, size_t index, size_t at_least) {
  struct wait_sessions w = {srv, index, at_least};
  assert_true(dmt_test_wait_until(sessions_reached, &w, 20000));
}

static bool all_ready(void *arg) {
  struct apf_server_stats st;
  apf_server_stats(arg, &st);
  return st.ready == N;
}

static void assert_no_violations(void) {
  struct apf_server_stats st;
  apf_server_stats(W.srv, &st);
  if (st.violations != st.bad_frames) fprintf(stderr, "%s", apf_server_violations(W.srv));
  assert_int_equal(st.violations, st.bad_frames); /* only the injected bad frame is off-layout */
}

static char *envelope_get(const char *cls) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  dmt_wsman_get(&b, cls, "1", NULL, 0);
  dmt_buf_append_u8(&b, 0);
  return (char *)b.data;
}

static int wsman(size_t i, const char *envelope, struct apf_wsman_result *r, int timeout_ms) {
  return apf_server_wsman(W.srv, guid(i), envelope, AMT_PASSWORD, 81920, 0, r, timeout_ms);
}

static void test_all_connect(void **state) {
  assert_true(dmt_test_wait_until(all_ready, W.srv, 30000));
  assert_int_equal(dmt_test_sim_connected(W.control), N);
  assert_no_violations();
}

static void test_drop_and_reconnect(void **state) {
  struct apf_server_stats before;
  apf_server_stats(W.srv, &before);
  assert_non_null(strstr(ctl("fault %s drop", guid(0)), "ok 1"));
  wait_sessions(W.srv, 0, 2);
  struct apf_server_stats after;
  apf_server_stats(W.srv, &after);
  assert_int_equal(after.disconnects, before.disconnects); /* a cut cable says no goodbye */
  assert_no_violations();
}

static bool auth_failed(void *arg) {
  struct apf_server_stats st;
  apf_server_stats(W.srv, &st);
  return st.auth_failures >= 2;
}

static void test_wrong_password(void **state) {
  assert_non_null(strstr(ctl("fault %s wrongpass", guid(1)), "ok 1"));
  assert_true(dmt_test_wait_until(auth_failed, NULL, 20000));
  assert_false(apf_server_is_ready(W.srv, guid(1)));
  assert_null(strstr(ctl("stats"), "auth_failures 0\n"));
  assert_non_null(strstr(ctl("fault %s rightpass", guid(1)), "ok 1"));
  wait_sessions(W.srv, 1, 2);
  assert_no_violations();
}

static bool bad_frame_seen(void *arg) {
  struct apf_server_stats st;
  apf_server_stats(W.srv, &st);
  return st.bad_frames >= 1;
}

static void test_bad_frame(void **state) {
  assert_non_null(strstr(ctl("fault %s badframe", guid(2)), "ok 1"));
  assert_true(dmt_test_wait_until(bad_frame_seen, NULL, 10000));
  wait_sessions(W.srv, 2, 2); /* the server hung up; the device came back */
}

static void test_refused_channel(void **state) {
  char *env = envelope_get("AMT_GeneralSettings");
  struct apf_wsman_result r;
  assert_non_null(strstr(ctl("fault %s refuse-channel", guid(3)), "ok 1"));
  assert_int_equal(wsman(3, env, &r, 10000), 0);
  assert_true(r.refused);
  apf_wsman_result_free(&r);
  assert_non_null(strstr(ctl("fault %s accept-channel", guid(3)), "ok 1"));
  assert_int_equal(wsman(3, env, &r, 10000), 0);
  assert_false(r.refused);
  assert_int_equal(r.status, 200);
  apf_wsman_result_free(&r);
  free(env);
}

static void test_slow_responses(void **state) {
  char *env = envelope_get("AMT_GeneralSettings");
  struct apf_wsman_result r;
  assert_non_null(strstr(ctl("fault %s slow 700", guid(4)), "ok 1"));
  assert_int_equal(wsman(4, env, &r, 10000), 0);
  assert_int_equal(r.status, 200);
  assert_true(r.elapsed_ms >= 700);
  apf_wsman_result_free(&r);
  assert_non_null(strstr(ctl("fault %s fast", guid(4)), "ok 1"));
  assert_int_equal(wsman(4, env, &r, 10000), 0);
  assert_true(r.elapsed_ms < 700);
  apf_wsman_result_free(&r);
  free(env);
}

static void test_stall_and_unstall(void **state) {
  char *env = envelope_get("AMT_GeneralSettings");
  struct apf_wsman_result r;
  assert_non_null(strstr(ctl("fault %s stall", guid(5)), "ok 1"));
  assert_int_equal(wsman(5, env, &r, 1500), -1); /* nothing answers */
  apf_wsman_result_free(&r);
  assert_non_null(strstr(ctl("fault %s unstall", guid(5)), "ok 1"));
  /* the stalled exchange completes first; then the device serves new ones */
  int rc = -1;
  for (int i = 0; i < 100 && rc != 0; i++) {
    rc = wsman(5, env, &r, 5000);
    if (rc != 0) usleep(100000);
    else assert_int_equal(r.status, 200);
    apf_wsman_result_free(&r);
  }
  assert_int_equal(rc, 0);
  free(env);
  assert_no_violations();
}

static void test_reboot(void **state) {
  assert_non_null(strstr(ctl("fault %s reboot", guid(6)), "ok 1"));
  wait_sessions(W.srv, 6, 2);
  char *env = envelope_get("AMT_GeneralSettings");
  struct apf_wsman_result r;
  assert_int_equal(wsman(6, env, &r, 10000), 0);
  assert_int_equal(r.status, 200); /* a new nonce after the restart: the 401 dance again */
  assert_int_equal(r.first_status, 401);
  apf_wsman_result_free(&r);
  free(env);
}

static void test_power(void **state) {
  /* WS-Man power off through the tunnel */
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  struct dmt_wsman_param p[] = {{"PowerState", "8", false}};
  dmt_wsman_invoke(&b, "CIM_PowerManagementService", "RequestPowerStateChange", "2", NULL, 0, p, 1);
  dmt_buf_append_u8(&b, 0);
  struct apf_wsman_result r;
  assert_int_equal(wsman(7, (char *)b.data, &r, 10000), 0);
  assert_non_null(strstr(r.body, "<g:ReturnValue>0</g:ReturnValue>"));
  apf_wsman_result_free(&r);
  assert_non_null(strstr(ctl("state %s", guid(7)), "ok ready 8"));
  /* the same again is the firmware's NOT_READY */
  assert_int_equal(wsman(7, (char *)b.data, &r, 10000), 0);
  assert_non_null(strstr(r.body, "<g:ReturnValue>2</g:ReturnValue>"));
  apf_wsman_result_free(&r);
  dmt_buf_free(&b);
  /* a local power event shows in WS-Man */
  assert_non_null(strstr(ctl("power %s hibernate", guid(10)), "ok 1"));
  char *env = envelope_get("CIM_AssociatedPowerManagementService");
  assert_int_equal(wsman(10, env, &r, 10000), 0);
  assert_non_null(strstr(r.body, "<g:PowerState>7</g:PowerState>"));
  apf_wsman_result_free(&r);
  free(env);
  assert_non_null(strstr(ctl("power %s on", guid(10)), "ok 1"));
  assert_non_null(strstr(ctl("power %s warp-speed", guid(10)), "error"));
}

static void test_configuration_changes(void **state) {
  /* a new host name (RPS synchostname) and a new MPS (AddMpServer) on two devices */
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  struct dmt_wsman_param host[] = {{"HostName", "renamed-08", false}};
  dmt_wsman_put(&b, "AMT_GeneralSettings", "3", NULL, 0, host, 1);
  dmt_buf_append_u8(&b, 0);
  struct apf_wsman_result r;
  assert_int_equal(wsman(8, (char *)b.data, &r, 10000), 0);
  assert_non_null(strstr(r.body, "<g:HostName>renamed-08</g:HostName>"));
  apf_wsman_result_free(&r);
  dmt_buf_free(&b);
  char port[16];
  snprintf(port, sizeof port, "%d", apf_server_port(W.srv2));
  struct dmt_wsman_param mps[] = {{"AccessInfo", "127.0.0.1", false}, {"InfoFormat", "3", false},
                                  {"Port", port, false},              {"AuthMethod", "2", false},
                                  {"Username", "otherUser9", false},  {"Password", "Other@Passw0rd9", false},
                                  {"CN", "127.0.0.1", false}};
  dmt_buf_init(&b, 0);
  dmt_wsman_invoke(&b, "AMT_RemoteAccessService", "AddMpServer", "4", NULL, 0, mps, 7);
  dmt_buf_append_u8(&b, 0);
  assert_int_equal(wsman(9, (char *)b.data, &r, 10000), 0);
  assert_non_null(strstr(r.body, "<g:ReturnValue>0</g:ReturnValue>"));
  apf_wsman_result_free(&r);
  dmt_buf_free(&b);
  /* the live tunnel stays where it is until the device reconnects, then it presents what changed */
  assert_true(apf_server_is_ready(W.srv, guid(9)));
  apf_server_expect(W.srv, guid(8), MPS_USER, MPS_PASSWORD, "renamed-08");
  apf_server_expect(W.srv2, guid(9), "otherUser9", "Other@Passw0rd9", "sim-00009");
}

/* One HTTP exchange with the local WS-Man port; the response is parsed into *out. */
static void local_http(const char *authorization, const char *envelope, struct dmt_http_parser *out) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)W.wsman_port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  struct dmt_buf req;
  dmt_buf_init(&req, 0);
  dmt_http_build_wsman_request_chunked(&req, authorization, guid(11), 16992, envelope, strlen(envelope));
  assert_int_equal(write(fd, dmt_buf_ptr(&req), dmt_buf_size(&req)), (ssize_t)dmt_buf_size(&req));
  dmt_http_parser_init(out, false, 1u << 20);
  uint8_t buf[8192];
  int rc = DMT_HTTP_MORE;
  ssize_t n;
  while (rc == DMT_HTTP_MORE && (n = read(fd, buf, sizeof buf)) > 0) {
    size_t used;
    rc = dmt_http_parse(out, buf, (size_t)n, &used);
  }
  assert_int_equal(rc, DMT_HTTP_DONE);
  close(fd);
  dmt_buf_free(&req);
}

static void test_local_wsman_port(void **state) {
  char *env = envelope_get("AMT_GeneralSettings");
  struct dmt_http_parser r;
  local_http(NULL, env, &r);
  assert_int_equal(r.status, 401);
  assert_string_equal(dmt_http_header(&r, "Connection"), "close");
  struct dmt_digest_challenge ch;
  assert_int_equal(dmt_digest_parse_challenge(dmt_http_header(&r, "WWW-Authenticate"), &ch), 0);
  dmt_http_parser_free(&r);
  char auth[1024];
  dmt_digest_authorization("admin", AMT_PASSWORD, &ch, "POST", "/wsman", 1, "beef", auth, sizeof auth);
  local_http(auth, env, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr((const char *)dmt_buf_ptr(&r.body), ch.realm)); /* the realm in DigestRealm */
  dmt_http_parser_free(&r);
  free(env);
}

static void test_fleet_wide_fault(void **state) {
  assert_non_null(strstr(ctl("fault all drop"), "ok 12"));
  assert_non_null(strstr(ctl("fault all no-such-fault"), "error"));
  for (size_t i = 0; i < N; i++)
    if (i != 9) wait_sessions(W.srv, i, 2);
  wait_sessions(W.srv2, 9, 1); /* the new MPS, with the new credentials */
}

static bool sim_is_back(void *arg) {
  return apf_server_sessions_of(W.srv2, guid(9)) >= 2 && apf_server_is_ready(W.srv2, guid(9)) &&
         apf_server_sessions_of(W.srv, guid(8)) >= 3 && apf_server_is_ready(W.srv, guid(8)) &&
         apf_server_sessions_of(W.srv, guid(7)) >= 3 && apf_server_is_ready(W.srv, guid(7));
}

static void test_restart_keeps_state(void **state) {
  int st = dmt_test_stop(W.sim, SIGTERM, 20000);
  W.sim = 0;
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  FILE *f = fopen(W.log, "r");
  char line[256];
  unsigned long faults = 0;
  while (f && fgets(line, sizeof line, f)) sscanf(line, "faults_injected %lu", &faults);
  if (f) fclose(f);
  assert_true(faults >= 10);

  W.sim = start_sim();
  assert_true(W.sim > 0);
  assert_true(dmt_test_wait_until(sim_is_back, NULL, 30000));
  assert_non_null(strstr(ctl("state %s", guid(7)), "ok ready 8")); /* still off */
  assert_non_null(strstr(ctl("info %s", guid(9)), "\"username\":\"otherUser9\""));
  struct apf_server_stats s2;
  apf_server_stats(W.srv2, &s2);
  assert_int_equal(s2.violations, 0);
  assert_no_violations();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_connect),         cmocka_unit_test(test_drop_and_reconnect),
      cmocka_unit_test(test_wrong_password),      cmocka_unit_test(test_bad_frame),
      cmocka_unit_test(test_refused_channel),     cmocka_unit_test(test_slow_responses),
      cmocka_unit_test(test_stall_and_unstall),   cmocka_unit_test(test_reboot),
      cmocka_unit_test(test_power),               cmocka_unit_test(test_configuration_changes),
      cmocka_unit_test(test_local_wsman_port),
      cmocka_unit_test(test_fleet_wide_fault),    cmocka_unit_test(test_restart_keeps_state),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
