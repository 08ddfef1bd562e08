/*
 * Integration test of the tenancy plugin inside the real Mosquitto 2.0: a
 * private broker with dmt_auth_plugin.so, a JWKS and token made here (this
 * test plays Keycloak), agent credentials made with dmt/svc_auth.h, and MQTT
 * v5 clients (mqtt5_probe.c). Every denial is shown twice - by the SUBACK /
 * PUBACK / CONNACK reason code and by the message that never arrives, proved
 * with a sentinel sent after it on the same path - and every allowed path by
 * a message that does arrive.
 *
 * Set DMT_TEST_BROKER_VALGRIND=1 to run the broker (and so the plugin) under
 * valgrind; the test then fails on any memory error valgrind reports.
 */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/svc_auth.h"
#include "harness.h"
#include "jwtkit.h"
#include "mqtt5_probe.h"

#define ISS "https://kc.test/realms/master"
#define AUD "\"dmt-broker\""
#define DENIED PROBE_NOT_AUTHORIZED
#define VALGRIND_FAILED 99

struct broker {
  char *dir;
  char conf[700], log[700];
  int port;
  pid_t pid;
};

static struct {
  struct broker b;  /* the broker every test uses: JWKS file, agents file */
  char jwks[700], agents[700];
  bool valgrind;
  struct jwtkit_key k1, k2, k3;
  char cira[44], rps[44];
  char *issued[64];
  size_t nissued;
} T;

/* ---- fixtures ---- */

static const char *token_full(const struct jwtkit_key *k, const char *kid, const char *iss, const char *aud,
                              long long exp_in, const char *user, const char *roles) {
  char *claims = jwtkit_claims(iss, aud, (long long)time(NULL) + exp_in, user, roles);
  char *tok = jwtkit_sign(k, kid, claims);
  free(claims);
  assert_non_null(tok);
  assert_true(T.nissued < sizeof T.issued / sizeof T.issued[0]);
  return T.issued[T.nissued++] = tok;
}

static const char *token(const char *user, const char *roles) {
  return token_full(&T.k1, "k1", ISS, AUD, 600, user, roles);
}

static int write_agents(const char *const *users, const char *const *secrets, size_t n) {
  char tmp[720], text[2048] = "# agents (test)\n";
  for (size_t i = 0; i < n; i++) {
    char line[512];
    if (dmt_svc_hash_line(users[i], secrets[i], DMT_SVC_ITERATIONS, line, sizeof line) != 0) return -1;
    strcat(text, line);
    strcat(text, "\n");
  }
  /* Written beside and renamed over, as a Kubernetes volume update does. */
  snprintf(tmp, sizeof tmp, "%s.new", T.agents);
  return jwtkit_write_file(tmp, text) == 0 && rename(tmp, T.agents) == 0 ? 0 : -1;
}

static int write_jwks(const struct jwtkit_key *const *keys, size_t n) {
  char tmp[720], *text = jwtkit_jwks(keys, n);
  snprintf(tmp, sizeof tmp, "%s.new", T.jwks);
  int rc = jwtkit_write_file(tmp, text) == 0 && rename(tmp, T.jwks) == 0 ? 0 : -1;
  free(text);
  return rc;
}

static char *read_log(const struct broker *b) {
  FILE *f = fopen(b->log, "rb");
  if (!f) return strdup("");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = '\0';
  fclose(f);
  return buf;
}

/* True when one line of a broker's log holds both strings (waits up to timeout_ms). */
static bool broker_log_has(const struct broker *br, const char *a, const char *b, int timeout_ms) {
  uint64_t deadline = dmt_test_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    char *log = read_log(br);
    bool found = false;
    for (char *line = strtok(log, "\n"); line && !found; line = strtok(NULL, "\n"))
      found = strstr(line, a) && strstr(line, b);
    free(log);
    if (found || dmt_test_now_ms() > deadline) return found;
    usleep(50000);
  }
}

static bool log_line_with(const char *a, const char *b, int timeout_ms) { return broker_log_has(&T.b, a, b, timeout_ms); }

/* Starts Mosquitto with the plugin and plugin_opts (more plugin_opt_* lines). */
static int broker_start(struct broker *b, const char *plugin_opts) {
  b->port = dmt_test_free_port();
  snprintf(b->conf, sizeof b->conf, "%s/mosquitto-%d.conf", b->dir, b->port);
  snprintf(b->log, sizeof b->log, "%s/mosquitto-%d.log", b->dir, b->port);
  FILE *f = fopen(b->conf, "w");
  if (!f) return -1;
  fprintf(f,
          "per_listener_settings false\nallow_anonymous false\npersistence false\n%s"
          "listener %d 127.0.0.1\nmax_inflight_messages 1000\n"
          "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
          "plugin %s\nplugin_opt_issuer " ISS "\nplugin_opt_audience dmt-broker\nplugin_opt_clock_skew 0\n%s",
          geteuid() == 0 ? "user root\n" : "", b->port, dmt_test_bin("brokers/dmt_auth_plugin.so"), plugin_opts);
  fclose(f);
  char *plain[] = {"/usr/sbin/mosquitto", "-c", b->conf, NULL};
  char *vg[] = {"/usr/bin/valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
                "/usr/sbin/mosquitto", "-c", b->conf, NULL};
  b->pid = dmt_test_spawn(T.valgrind ? vg : plain, NULL, b->log);
  if (b->pid > 0 && dmt_test_wait_port(b->port, T.valgrind ? 60000 : 5000)) return 0;
  char *log = read_log(b);
  fprintf(stderr, "broker did not start:\n%s\n", log);
  free(log);
  return -1;
}

/* SIGTERM; true when it exited cleanly (plugin cleanup ran; under valgrind, no errors). */
static bool broker_stop(struct broker *b) {
  int st = dmt_test_stop(b->pid, SIGTERM, T.valgrind ? 60000 : 10000);
  bool clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  if (!clean) {
    char *log = read_log(b);
    fprintf(stderr, "broker exit status %d (%s):\n%s\n", st,
            WIFEXITED(st) && WEXITSTATUS(st) == VALGRIND_FAILED ? "valgrind found errors" : "not clean", log);
    free(log);
  }
  return clean;
}

static int start_main_broker(void) {
  T.b.dir = dmt_test_tmpdir("tenancy");
  if (!T.b.dir) return -1;
  snprintf(T.jwks, sizeof T.jwks, "%s/jwks.json", T.b.dir);
  snprintf(T.agents, sizeof T.agents, "%s/agents.passwd", T.b.dir);
  const struct jwtkit_key *pub[] = {&T.k1};
  const char *users[] = {"svc:cira", "svc:rps"}, *secrets[] = {T.cira, T.rps};
  if (write_jwks(pub, 1) != 0 || write_agents(users, secrets, 2) != 0) return -1;
  char opts[2000];
  snprintf(opts, sizeof opts, "plugin_opt_jwks_file %s\nplugin_opt_agents_file %s\nplugin_opt_file_check_interval 1\n",
           T.jwks, T.agents);
  T.valgrind = getenv("DMT_TEST_BROKER_VALGRIND") && *getenv("DMT_TEST_BROKER_VALGRIND") == '1';
  return broker_start(&T.b, opts);
}

static int setup(void **state) {
  if (jwtkit_key_new(&T.k1, "k1", 2048) || jwtkit_key_new(&T.k2, "k2", 2048) || jwtkit_key_new(&T.k3, "k3", 2048) ||
      dmt_svc_new_secret(T.cira) || dmt_svc_new_secret(T.rps))
    return -1;
  return start_main_broker();
}

static int teardown(void **state) {
  bool clean = broker_stop(&T.b);
  for (size_t i = 0; i < T.nissued; i++) free(T.issued[i]);
  jwtkit_key_free(&T.k1);
  jwtkit_key_free(&T.k2);
  jwtkit_key_free(&T.k3);
  free(T.b.dir);
  return clean ? 0 : -1;
}

static struct probe *north(const char *client_id, const char *tok) {
  struct probe *p = probe_connect(T.b.port, client_id, "north", tok, NULL, NULL);
  assert_int_equal(probe_connack(p), 0);
  return p;
}

static struct probe *agent(const char *client_id, const char *user, const char *secret) {
  struct probe *p = probe_connect(T.b.port, client_id, user, secret, NULL, NULL);
  assert_int_equal(probe_connack(p), 0);
  return p;
}

/* The agent publishes to itself and waits: everything the broker routed to it before has arrived. */
static void agent_sync(struct probe *a, const char *tag) {
  char topic[128];
  snprintf(topic, sizeof topic, "dmt/v1/_sync/events/%s", tag);
  assert_int_equal(probe_publish(a, topic, tag, false, NULL), 0);
  assert_true(probe_wait_message(a, topic, tag, 5000));
}

/* ---- tests ---- */

static void test_allowed_traffic_and_requester_stamp(void **state) {
  struct probe *cira = agent("cira-1", "svc:cira", T.cira);
  struct probe *eim = north("eim-a", token("alice", "A_im-rw"));
  assert_int_equal(probe_subscribe(cira, "dmt/v1/+/devices/+/cmd/#"), 1);
  assert_int_equal(probe_subscribe(eim, "dmt/v1/A/devices/+/state"), 1);
  assert_int_equal(probe_subscribe(eim, "dmt/v1/A/replies/eim-a/#"), 1);

  /* Agent -> north: device state, stamped with the agent; its on-behalf-of is kept. */
  const char *agent_props[] = {"dmt-on-behalf-of=user:carol", NULL};
  assert_int_equal(probe_publish(cira, "dmt/v1/A/devices/g1/state", "on", false, agent_props), 0);
  assert_true(probe_wait_message(eim, "dmt/v1/A/devices/g1/state", "on", 5000));
  char who[160], behalf[160];
  int n = 0;
  assert_true(probe_properties(eim, "dmt/v1/A/devices/g1/state", who, sizeof who, &n, behalf, sizeof behalf));
  assert_string_equal(who, "svc:cira");
  assert_int_equal(n, 1);
  assert_string_equal(behalf, "user:carol");

  /* North -> agent: a command whose forged requester and on-behalf-of are replaced / dropped. */
  const char *forged[] = {"dmt-requester=svc:root", "x-trace=42", "dmt-on-behalf-of=admin", "dmt-requester=svc:rps",
                          NULL};
  assert_int_equal(probe_publish(eim, "dmt/v1/A/devices/g1/cmd/power_state", "req", false, forged), 0);
  assert_true(probe_wait_message(cira, "dmt/v1/A/devices/g1/cmd/power_state", "req", 5000));
  assert_true(probe_properties(cira, "dmt/v1/A/devices/g1/cmd/power_state", who, sizeof who, &n, behalf, sizeof behalf));
  assert_string_equal(who, "user:alice");
  assert_int_equal(n, 1);
  assert_string_equal(behalf, "");

  /* Agent -> the requester's own inbox. */
  assert_int_equal(probe_publish(cira, "dmt/v1/A/replies/eim-a/1", "ok", false, NULL), 0);
  assert_true(probe_wait_message(eim, "dmt/v1/A/replies/eim-a/1", "ok", 5000));

  /* A shared subscription inside the own tenant works. */
  struct probe *obaas = north("obaas-a-1", token("obaas", "A_im-r"));
  assert_int_equal(probe_subscribe(obaas, "$share/obaas/dmt/v1/A/devices/+/events/#"), 1);
  assert_int_equal(probe_publish(cira, "dmt/v1/A/devices/g1/events/power", "ev", false, NULL), 0);
  assert_true(probe_wait_message(obaas, "dmt/v1/A/devices/g1/events/power", "ev", 5000));
  probe_close(obaas);
  probe_close(eim);
  probe_close(cira);
}

static void test_tenant_fence_subscribe(void **state) {
  struct probe *cira = agent("cira-fence", "svc:cira", T.cira);
  struct probe *eim = north("eim-fence", token("alice", "A_im-rw"));
  const char *forbidden[] = {
      "dmt/v1/B/devices/+/state", "dmt/v1/+/devices/+/state", "dmt/v1/#", "#", "dmt/#", "+/v1/B/#", "dmt/+/B/#",
      "$share/g/dmt/v1/B/devices/+/events/#", "$share/g/dmt/v1/+/devices/+/events/#", "$share/g/#", "$SYS/#",
      "$SYS/broker/uptime", "dmt/_sys/#", "dmt/_sys/instances/+", "dmt/v1/A/replies/other/#",
      "dmt/v1/A/replies/+/#", "dmt/v1/A/devices/+/cmd/#",
  };
  for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
    int rc = probe_subscribe(eim, forbidden[i]);
    if (rc != DENIED) fail_msg("subscribe %s: SUBACK %d, expected 0x87", forbidden[i], rc);
  }
  /* The broadest allowed filter: every message under A passes the per-message check or not. */
  assert_int_equal(probe_subscribe(eim, "dmt/v1/A/#"), 1);
  const char *leaks[] = {"dmt/v1/B/devices/g/state", "dmt/v1/B/devices/g/events/power", "dmt/v1/B/replies/eim-fence/1",
                         "dmt/_sys/instances/x", "dmt/v1/A/replies/other/1", "dmt/v1/A/devices/g/cmd/power_state",
                         "dmt/v1/A/provisioning/cmd/deactivate"};
  for (size_t i = 0; i < sizeof leaks / sizeof leaks[0]; i++) {
    int rc = probe_publish(cira, leaks[i], "leak", false, NULL);
    assert_true(rc == 0 || rc == PROBE_NO_SUBSCRIBERS);
  }
  /* Same publisher, later message: once the sentinel is in, any leak would be too. */
  assert_int_equal(probe_publish(cira, "dmt/v1/A/devices/sentinel/state", "s", false, NULL), 0);
  assert_true(probe_wait_message(eim, "dmt/v1/A/devices/sentinel/state", "s", 5000));
  assert_int_equal(probe_total(eim), 1);
  assert_true(log_line_with("client=eim-fence access=subscribe topic=\"$share/g/dmt/v1/B", "tenant not granted", 2000));
  probe_close(eim);
  probe_close(cira);
}

static void test_tenant_fence_publish(void **state) {
  struct probe *cira = agent("cira-pub", "svc:cira", T.cira);
  assert_int_equal(probe_subscribe(cira, "dmt/#"), 1);
  struct probe *eim = north("eim-pub", token("alice", "A_im-rw"));
  const struct {
    const char *topic;
    bool retain;
  } forbidden[] = {{"dmt/v1/B/devices/g/cmd/power_action", false},
                   {"dmt/v1/B/provisioning/cmd/deactivate", false},
                   {"dmt/_sys/instances/cira-1", false},
                   {"dmt/v1/A/devices/g/state", false},
                   {"dmt/v1/A/devices/g/events/power", false},
                   {"dmt/v1/A/events/config", false},
                   {"dmt/v1/A/replies/eim-pub/1", false},
                   {"dmt/v1/A/devices/g/cmd/power_action", true},
                   {"$SYS/broker/x", false},
                   {"elsewhere/x", false}};
  for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
    int rc = probe_publish(eim, forbidden[i].topic, "evil", forbidden[i].retain, NULL);
    if (rc != DENIED) fail_msg("publish %s retain=%d: PUBACK %d, expected 0x87", forbidden[i].topic, forbidden[i].retain, rc);
  }
  assert_int_equal(probe_publish(eim, "dmt/v1/A/devices/g/cmd/sentinel", "s", false, NULL), 0);
  assert_true(probe_wait_message(cira, "dmt/v1/A/devices/g/cmd/sentinel", "s", 5000));
  assert_int_equal(probe_total(cira), 1);
  probe_close(eim);
  probe_close(cira);
}

static void test_read_only_role(void **state) {
  struct probe *cira = agent("cira-ro", "svc:cira", T.cira);
  assert_int_equal(probe_subscribe(cira, "dmt/#"), 1);
  struct probe *viewer = north("viewer-a", token("victor", "A_im-r"));
  assert_int_equal(probe_subscribe(viewer, "dmt/v1/A/devices/+/state"), 1);
  assert_int_equal(probe_subscribe(viewer, "dmt/v1/A/replies/viewer-a/#"), 1);
  assert_int_equal(probe_publish(cira, "dmt/v1/A/devices/g2/state", "off", false, NULL), 0);
  assert_true(probe_wait_message(viewer, "dmt/v1/A/devices/g2/state", "off", 5000));
  assert_int_equal(probe_publish(viewer, "dmt/v1/A/devices/g2/cmd/power_action", "x", false, NULL), DENIED);
  assert_int_equal(probe_publish(viewer, "dmt/v1/A/provisioning/cmd/deactivate", "x", false, NULL), DENIED);
  agent_sync(cira, "ro");
  assert_int_equal(probe_count(cira, "dmt/v1/A/#"), 1); /* only the agent's own state */
  assert_int_equal(probe_count(cira, "dmt/v1/A/+/+/cmd/#"), 0);
  assert_int_equal(probe_count(cira, "dmt/v1/A/provisioning/#"), 0);
  assert_true(log_line_with("client=viewer-a access=publish", "read-only role", 2000));
  probe_close(viewer);
  probe_close(cira);
}

static void test_rejected_tokens(void **state) {
  /* alg none (with a dummy signature so it is not merely malformed) and HS256 keyed with the public key. */
  char *claims = jwtkit_claims(ISS, AUD, (long long)time(NULL) + 600, "mallory", "A_im-rw");
  char *none_tok = jwtkit_sign_none(claims), none_sig[4096];
  snprintf(none_sig, sizeof none_sig, "%sc2ln", none_tok);
  char *hs = jwtkit_sign_hs256((const unsigned char *)T.k1.pub_pem, strlen(T.k1.pub_pem), "k1", claims);
  T.issued[T.nissued++] = hs;
  const struct {
    const char *client, *user, *password, *reason;
  } cases[] = {
      {"bad-forged", "north", token_full(&T.k2, "k1", ISS, AUD, 600, "mallory", "A_im-rw"), "bad signature"},
      {"bad-expired", "north", token_full(&T.k1, "k1", ISS, AUD, -10, "alice", "A_im-rw"), "token expired"},
      {"bad-aud", "north", token_full(&T.k1, "k1", ISS, "\"account\"", 600, "alice", "A_im-rw"), "wrong audience"},
      {"bad-iss", "north", token_full(&T.k1, "k1", "https://evil/realms/x", AUD, 600, "alice", "A_im-rw"),
       "wrong issuer"},
      {"bad-kid", "north", token_full(&T.k2, "k2", ISS, AUD, 600, "mallory", "A_im-rw"), "no key for the token's kid"},
      {"bad-none", "north", none_sig, "algorithm is not RS256"},
      {"bad-hs256", "north", hs, "algorithm is not RS256"},
      {"bad-roles", "north", token("alice", "offline_access,B_im-admin"), "token grants no tenant"},
      {"bad-garbage", "north", "not-a-token", "malformed token"},
      {"bad-empty", "north", NULL, "no token in the password"},
      {"a/b", "north", token("alice", "A_im-rw"), "client id must be"},
      {"bad-svc-token", "svc:cira", token("alice", "A_im-rw"), "unknown agent or wrong secret"},
      {"bad-svc-secret", "svc:cira", "0123456789abcdef0123456789abcdef0123456789a", "unknown agent or wrong secret"},
      {"bad-svc-unknown", "svc:nobody", T.cira, "unknown agent or wrong secret"},
      {"bad-svc-short", "svc:cira", "short", "unknown agent or wrong secret"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct probe *p = probe_connect(T.b.port, cases[i].client, cases[i].user, cases[i].password, NULL, NULL);
    int rc = probe_connack(p);
    probe_close(p);
    if (rc == 0 || rc == PROBE_NO_ANSWER) fail_msg("%s: CONNACK %d, expected a refusal", cases[i].client, rc);
    char who[64];
    snprintf(who, sizeof who, "client=%s", cases[i].client);
    if (!log_line_with(who, cases[i].reason, 2000)) fail_msg("%s: no log line with reason \"%s\"", cases[i].client, cases[i].reason);
  }
  free(claims);
  free(none_tok);
}

static void test_agents_across_tenants(void **state) {
  struct probe *cira = agent("cira-x", "svc:cira", T.cira);
  struct probe *rps = agent("rps-x", "svc:rps", T.rps);
  assert_int_equal(probe_subscribe(cira, "dmt/v1/+/devices/+/cmd/#"), 1);
  assert_int_equal(probe_subscribe(rps, "$share/dmt-rps/dmt/v1/+/provisioning/cmd/#"), 1);
  assert_int_equal(probe_subscribe(rps, "dmt/_sys/instances/+"), 1);
  assert_int_equal(probe_subscribe(rps, "$SYS/broker/version"), 1);
  struct probe *a = north("eim-xa", token("alice", "A_im-rw"));
  struct probe *b = north("eim-xb", token("bob", "B_im-rw"));
  assert_int_equal(probe_subscribe(a, "dmt/v1/A/devices/+/state"), 1);
  assert_int_equal(probe_subscribe(b, "dmt/v1/B/devices/+/state"), 1);

  assert_int_equal(probe_publish(a, "dmt/v1/A/devices/ga/cmd/power_action", "a", false, NULL), 0);
  assert_int_equal(probe_publish(b, "dmt/v1/B/devices/gb/cmd/power_action", "b", false, NULL), 0);
  assert_int_equal(probe_publish(a, "dmt/v1/A/provisioning/cmd/deactivate", "pa", false, NULL), 0);
  assert_int_equal(probe_publish(b, "dmt/v1/B/provisioning/cmd/deactivate", "pb", false, NULL), 0);
  assert_true(probe_wait_message(cira, "dmt/v1/A/devices/ga/cmd/power_action", "a", 5000));
  assert_true(probe_wait_message(cira, "dmt/v1/B/devices/gb/cmd/power_action", "b", 5000));
  assert_true(probe_wait_message(rps, "dmt/v1/A/provisioning/cmd/deactivate", "pa", 5000));
  assert_true(probe_wait_message(rps, "dmt/v1/B/provisioning/cmd/deactivate", "pb", 5000));
  assert_true(probe_wait_message(rps, "$SYS/broker/version", NULL, 5000)); /* retained by the broker */

  assert_int_equal(probe_publish(cira, "dmt/v1/B/devices/gb/state", "b-state", false, NULL), 0);
  assert_int_equal(probe_publish(cira, "dmt/v1/A/devices/ga/state", "a-state", false, NULL), 0);
  assert_true(probe_wait_message(b, "dmt/v1/B/devices/gb/state", "b-state", 5000));
  assert_true(probe_wait_message(a, "dmt/v1/A/devices/ga/state", "a-state", 5000));
  assert_int_equal(probe_total(a), 1);

  /* Instance status and the MQTT will still work once the agent is gone (the ACL needs no session state). */
  struct probe *cira2 = probe_connect(T.b.port, "cira-2", "svc:cira", T.cira, "dmt/_sys/instances/cira-2", "offline");
  assert_int_equal(probe_connack(cira2), 0);
  assert_int_equal(probe_publish(cira2, "dmt/_sys/instances/cira-2", "online", true, NULL), 0);
  assert_true(probe_wait_message(rps, "dmt/_sys/instances/cira-2", "online", 5000));
  probe_drop(cira2);
  assert_true(probe_wait_message(rps, "dmt/_sys/instances/cira-2", "offline", 5000));
  assert_int_equal(probe_publish(rps, "dmt/_sys/instances/cira-2", "", true, NULL), 0); /* clear the retained status */
  probe_close(a);
  probe_close(b);
  probe_close(rps);
  probe_close(cira);
}

static void test_token_expiry_cuts_off(void **state) {
  struct probe *cira = agent("cira-exp", "svc:cira", T.cira);
  struct probe *steady = north("steady", token("alice", "A_im-r"));
  uint64_t t0 = dmt_test_now_ms();
  const char *brief_token = token_full(&T.k1, "k1", ISS, AUD, 3, "alice", "A_im-r");
  struct probe *brief = north("brief", brief_token);
  assert_int_equal(probe_subscribe(brief, "dmt/v1/A/devices/+/state"), 1);
  assert_int_equal(probe_publish(cira, "dmt/v1/A/devices/g/state", "before", false, NULL), 0);
  assert_true(probe_wait_message(brief, "dmt/v1/A/devices/g/state", "before", 5000));
  int reason = 0;
  assert_true(probe_wait_disconnect(brief, 9000, &reason));
  uint64_t after = dmt_test_now_ms() - t0;
  assert_true(after >= 1500);   /* not before its expiry (whole seconds) */
  assert_int_equal(reason, 0x98); /* MQTT v5 "administrative action" */
  assert_true(log_line_with("event=token_expired client=brief", "effect=disconnected", 2000));
  /* Coming back with the same token is refused. */
  struct probe *again = probe_connect(T.b.port, "brief-again", "north", brief_token, NULL, NULL);
  assert_int_not_equal(probe_connack(again), 0);
  probe_close(again);
  assert_true(log_line_with("client=brief-again", "token expired", 2000));
  /* Its session and subscriptions are gone; a client with a valid token was not touched. */
  assert_int_equal(probe_publish(cira, "dmt/v1/A/devices/g/state", "after", false, NULL), PROBE_NO_SUBSCRIBERS);
  assert_int_equal(probe_count(brief, "dmt/v1/A/devices/g/state"), 1);
  assert_false(probe_wait_disconnect(steady, 0, NULL));
  probe_close(brief);
  probe_close(steady);
  probe_close(cira);
}

static void test_key_and_credential_reload(void **state) {
  /* A token from a key Keycloak rotated in is refused, then accepted once the JWKS file changes. */
  const char *rotated = token_full(&T.k3, "k3", ISS, AUD, 600, "alice", "A_im-r");
  struct probe *p = probe_connect(T.b.port, "rotated-1", "north", rotated, NULL, NULL);
  assert_int_not_equal(probe_connack(p), 0);
  probe_close(p);
  const struct jwtkit_key *both[] = {&T.k1, &T.k3};
  assert_int_equal(write_jwks(both, 2), 0);
  assert_true(log_line_with("event=jwks_loaded", "keys=2", 5000));
  p = north("rotated-2", rotated);
  probe_close(p);

  /* Removing an agent from agents_file and SIGHUP cuts its session at once and refuses it after. */
  struct probe *rps = agent("rps-revoked", "svc:rps", T.rps);
  const char *users[] = {"svc:cira"}, *secrets[] = {T.cira};
  assert_int_equal(write_agents(users, secrets, 1), 0);
  kill(T.b.pid, SIGHUP);
  assert_true(probe_wait_disconnect(rps, 5000, NULL));
  assert_true(log_line_with("event=agent_revoked user=svc:rps", "effect=disconnected", 2000));
  probe_close(rps);
  p = probe_connect(T.b.port, "rps-again", "svc:rps", T.rps, NULL, NULL);
  assert_int_not_equal(probe_connack(p), 0);
  probe_close(p);
  struct probe *cira = agent("cira-still", "svc:cira", T.cira);
  probe_close(cira);
}

/* Keycloak's certs endpoint, reduced to serving whatever JWKS the test sets. */
static struct {
  int fd, port, hits;
  bool stop;
  char *body;
  pthread_t thread;
  pthread_mutex_t mu;
} K = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *certs_endpoint(void *arg) {
  struct pollfd pfd = {.fd = K.fd, .events = POLLIN};
  while (!K.stop) {
    if (poll(&pfd, 1, 100) <= 0) continue;
    int c = accept(K.fd, NULL, NULL);
    if (c < 0) continue;
    char req[4096];
    ssize_t n = read(c, req, sizeof req); /* one small GET; its content does not matter */
    pthread_mutex_lock(&K.mu);
    char head[160];
    int hlen = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n\r\n", strlen(K.body));
    if (n > 0 && write(c, head, (size_t)hlen) == hlen && write(c, K.body, strlen(K.body)) > 0) K.hits++;
    pthread_mutex_unlock(&K.mu);
    close(c);
  }
  return NULL;
}

static void certs_serve(const struct jwtkit_key *const *keys, size_t n) {
  char *body = jwtkit_jwks(keys, n);
  pthread_mutex_lock(&K.mu);
  free(K.body);
  K.body = body;
  pthread_mutex_unlock(&K.mu);
}

static void test_jwks_url_follows_key_rotation(void **state) {
  const struct jwtkit_key *one[] = {&T.k1}, *two[] = {&T.k1, &T.k3};
  certs_serve(one, 1);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  K.fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(bind(K.fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(K.fd, 8), 0);
  getsockname(K.fd, (struct sockaddr *)&a, &len);
  K.port = ntohs(a.sin_port);
  assert_int_equal(pthread_create(&K.thread, NULL, certs_endpoint, NULL), 0);

  struct broker b2 = {.dir = T.b.dir};
  char opts[300];
  snprintf(opts, sizeof opts, "plugin_opt_jwks_url http://127.0.0.1:%d/realms/master/protocol/openid-connect/certs\n",
           K.port);
  assert_int_equal(broker_start(&b2, opts), 0);
  assert_true(broker_log_has(&b2, "event=jwks_loaded source=url", "keys=1", 2000));
  struct probe *p = probe_connect(b2.port, "url-1", "north", token("alice", "A_im-r"), NULL, NULL);
  assert_int_equal(probe_connack(p), 0);
  probe_close(p);

  /* Keycloak rotates: the new kid is refused once, which makes the plugin fetch early, then accepted. */
  certs_serve(two, 2);
  const char *rotated = token_full(&T.k3, "k3", ISS, AUD, 600, "alice", "A_im-r");
  p = probe_connect(b2.port, "url-2", "north", rotated, NULL, NULL);
  assert_int_not_equal(probe_connack(p), 0);
  probe_close(p);
  assert_true(broker_log_has(&b2, "event=jwks_loaded source=url", "keys=2", 5000));
  p = probe_connect(b2.port, "url-3", "north", rotated, NULL, NULL);
  assert_int_equal(probe_connack(p), 0);
  probe_close(p);
  /* Agents are not configured on this broker: an svc: login is refused. */
  p = probe_connect(b2.port, "url-agent", "svc:cira", T.cira, NULL, NULL);
  assert_int_not_equal(probe_connack(p), 0);
  probe_close(p);
  assert_true(broker_stop(&b2));

  K.stop = true;
  pthread_join(K.thread, NULL);
  close(K.fd);
  assert_int_equal(K.hits, 2); /* at start, and once for the unknown kid */
  free(K.body);
}

static void test_no_secret_in_broker_log(void **state) {
  char *log = read_log(&T.b);
  assert_non_null(strstr(log, "event=auth_ok")); /* the log is the broker's, and it was written */
  assert_null(strstr(log, T.cira));
  assert_null(strstr(log, T.rps));
  for (size_t i = 0; i < T.nissued; i++) {
    const char *sig = strrchr(T.issued[i], '.');
    if (strstr(log, T.issued[i]) || (sig && strlen(sig) > 10 && strstr(log, sig + 1)))
      fail_msg("token %zu appears in the broker log", i);
  }
  free(log);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_allowed_traffic_and_requester_stamp),
      cmocka_unit_test(test_tenant_fence_subscribe),
      cmocka_unit_test(test_tenant_fence_publish),
      cmocka_unit_test(test_read_only_role),
      cmocka_unit_test(test_rejected_tokens),
      cmocka_unit_test(test_agents_across_tenants),
      cmocka_unit_test(test_token_expiry_cuts_off),
      cmocka_unit_test(test_key_and_credential_reload),
      cmocka_unit_test(test_jwks_url_follows_key_rotation),
      cmocka_unit_test(test_no_secret_in_broker_log),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
