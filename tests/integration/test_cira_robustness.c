/*
 * The CIRA terminator against hostile and broken devices, with real TLS,
 * PostgreSQL and Mosquitto. A small in-test APF client (encoders from
 * common/apf, byte-exact per mps-cira.md) plays devices the simulator will
 * not: messages split byte by byte or batched in one write, out-of-order and
 * malformed messages, fuzzed streams, a second login for a held GUID, wrong
 * passwords until throttled, silent and slow devices, an HTTP client on the
 * CIRA port, old TLS. Meanwhile ten simulated devices keep working: every
 * attack must hurt only its own connection. Also: command deadlines give a
 * clear timeout (not DMT's 90 s hang), busy / expired / duplicate commands,
 * audit events with the requester, no database query per keepalive, and the
 * root CA served as DMT's /api/v1/ciracert.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/amt_guid.h"
#include "dmt/apf.h"
#include "dmt/mptree.h"
#include "dmt/mqtt.h"
#include "dmt/payloads.h"
#include "dmt/tls.h"
#include "dmt/workq.h"
#include "apf_client.h"
#include "harness.h"

#define NSIM 10   /* simulated devices that must stay unharmed */
#define NRAW 40   /* devices played by the raw client */
#define KEEPALIVE_S 2

static struct {
  char *dsn, *dir;
  char key[65], tenant[40], instance[64], fleet[700], control[700], sim_log[700];
  struct dmt_test_cira cira;
  pid_t sim;
  struct dmt_fleet_device *devs; /* [0, NSIM) simulated, then raw */
  struct dmt_test_mqtt *mq;
  SSL_CTX *ctx;
} W;

static const struct dmt_fleet_device *raw_dev(int i) { return &W.devs[NSIM + i]; }

static bool raw_connect_from_src(struct raw *r, const char *source) {
  return raw_connect_from(r, W.ctx, W.cira.port, source);
}
static bool raw_connect(struct raw *r) { return raw_connect_from_src(r, NULL); }
static bool raw_login_from(struct raw *r, const char *source, const char *guid, const char *user, const char *pass) {
  return raw_login_as(r, W.ctx, W.cira.port, source, guid, user, pass);
}
static bool raw_login(struct raw *r, const struct dmt_fleet_device *d) {
  return raw_login_from(r, NULL, d->guid, d->mps_user, d->mps_password);
}

/* ------------------------------------------------------------------ an MQTT requester with full control */

struct reply {
  char corr[64];
  int count;
  int code;
  char error[32];
  json_t *result;
};

static struct {
  struct dmt_mqtt *c;
  struct dmt_workq q;
  bool up;
  struct reply r[64];
  int n;
} RQ;

static void rq_on_message(void *ud, const struct dmt_mqtt_msg *m) {
  if (!m->correlation || m->correlation_len >= 64) return;
  struct reply *r = NULL;
  for (int i = 0; i < RQ.n && !r; i++)
    if (strlen(RQ.r[i].corr) == m->correlation_len && !memcmp(RQ.r[i].corr, m->correlation, m->correlation_len))
      r = &RQ.r[i];
  if (!r) {
    if (RQ.n == 64) return;
    r = &RQ.r[RQ.n++];
    memcpy(r->corr, m->correlation, m->correlation_len);
  }
  struct dmt_command_reply cr;
  char err[128];
  if (dmt_command_reply_decode(m->payload, m->len, &cr, err, sizeof err) != 0) return;
  r->count++;
  r->code = (int)cr.code;
  snprintf(r->error, sizeof r->error, "%s", cr.error ? cr.error : "");
  json_decref(r->result);
  r->result = cr.result ? dmt_mp_buf_to_json(cr.result, cr.result_len) : NULL;
  dmt_command_reply_free(&cr);
}

static void rq_on_connection(void *ud, bool up) { RQ.up = up; }

static void rq_open(void) {
  dmt_workq_init(&RQ.q, NULL, NULL);
  struct dmt_mqtt_opts o = {.url = dmt_test_mqtt_url(), .client_id = "robustness-requester", .owner = &RQ.q,
                            .on_message = rq_on_message, .on_connection = rq_on_connection};
  char err[256];
  RQ.c = dmt_mqtt_new(&o, err, sizeof err);
  dmt_mqtt_start(RQ.c);
  dmt_mqtt_subscribe(RQ.c, "dmt/v1/+/replies/robustness-requester/#", 1);
  for (int i = 0; i < 500 && !RQ.up; i++) {
    dmt_workq_run(&RQ.q);
    usleep(10000);
  }
  usleep(200000); /* the subscription settles */
}

static void rq_close(void) {
  dmt_mqtt_free(RQ.c);
  dmt_workq_run(&RQ.q);
  dmt_workq_destroy(&RQ.q);
  for (int i = 0; i < RQ.n; i++) json_decref(RQ.r[i].result);
}

static void rq_send(const char *guid, const char *verb, const char *args_json, const char *corr, int64_t deadline_ms,
                    const char *requester) {
  msgpack_sbuffer args, sb;
  msgpack_sbuffer_init(&args);
  msgpack_sbuffer_init(&sb);
  if (args_json) {
    json_t *j = json_loads(args_json, 0, NULL);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    dmt_json_to_mp(j, &pk);
    json_decref(j);
  }
  struct dmt_command_request req = {.verb = (char *)verb, .deadline_ms = deadline_ms,
                                    .present = DMT_COMMAND_REQUEST_DEADLINE_MS};
  if (args.size) {
    req.args = (uint8_t *)args.data;
    req.args_len = args.size;
  }
  char err[128], topic[256], reply[160];
  dmt_command_request_encode(&req, &sb, err, sizeof err);
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/cmd/%s", W.tenant, guid, verb);
  snprintf(reply, sizeof reply, "dmt/v1/%s/replies/robustness-requester/r", W.tenant);
  struct dmt_mqtt_user_prop up[] = {{"dmt-requester", requester ? requester : "robustness-test"}};
  struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1, .response_topic = reply,
                               .correlation = corr, .correlation_len = strlen(corr), .expiry_s = 30, .user = up,
                               .nuser = 1};
  dmt_mqtt_publish(RQ.c, &p);
  msgpack_sbuffer_destroy(&sb);
  msgpack_sbuffer_destroy(&args);
}

/* Waits until `corr` has at least `count` replies. */
static struct reply *rq_wait(const char *corr, int count, int timeout_ms) {
  uint64_t deadline = dmt_test_now_ms() + (uint64_t)timeout_ms;
  do {
    dmt_workq_run(&RQ.q);
    for (int i = 0; i < RQ.n; i++)
      if (!strcmp(RQ.r[i].corr, corr) && RQ.r[i].count >= count) return &RQ.r[i];
    usleep(5000);
  } while (dmt_test_now_ms() < deadline);
  return NULL;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ fixture */

static const char *const cira_env[] = {
    "DMT_CIRA_KEEPALIVE_S=2",            "DMT_CIRA_KEEPALIVE_OPTIONS_DELAY_MS=500",
    "DMT_CIRA_HANDSHAKE_MS=3000",        "DMT_CIRA_LASTSEEN_FLUSH_MS=5000",
    "DMT_CIRA_POWER_REFRESH_S=0",        "DMT_CIRA_MAX_COMMANDS=2",
    "DMT_CIRA_AUTH_FREE_FAILURES=3",     "DMT_CIRA_AUTH_SOURCE_FREE_FAILURES=5",
    "DMT_CIRA_WSMAN_TIMEOUT_MS=20000",   NULL};

static int setup(void **state) {
  W.dsn = dmt_test_pg_create_db("robust");
  W.dir = dmt_test_tmpdir("robust");
  snprintf(W.key, sizeof W.key, "%s", dmt_test_secrets_key());
  snprintf(W.tenant, sizeof W.tenant, "t-robust-%d", (int)getpid());
  snprintf(W.instance, sizeof W.instance, "cira-robust-%d", (int)getpid());
  char err[256];
  W.devs = dmt_fleet_provision(W.dsn, W.key, "test", W.tenant, "9d9d0000-0000-4000-8000-", NSIM + NRAW, err,
                               sizeof err);
  if (!W.devs) {
    fprintf(stderr, "provision: %s\n", err);
    return -1;
  }
  W.mq = dmt_test_mqtt_open(dmt_test_mqtt_url(), "robustness-observer");
  char filter[128];
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/#", W.tenant);
  dmt_test_mqtt_subscribe(W.mq, filter);
  dmt_test_mqtt_subscribe(W.mq, "dmt/_sys/events/#");
  rq_open();
  W.cira = (struct dmt_test_cira){.dsn = W.dsn, .secrets_key = W.key, .instance = W.instance, .runtime_dir = W.dir,
                                  .port = dmt_test_free_port(), .health_port = dmt_test_free_port(),
                                  .extra_env = cira_env};
  if (dmt_test_cira_start(&W.cira) != 0) return -1;
  W.ctx = dmt_tls_client_ctx(W.cira.root_pem, true, err, sizeof err);
  if (!W.ctx) return -1;
  snprintf(W.fleet, sizeof W.fleet, "%s/fleet.json", W.dir);
  snprintf(W.control, sizeof W.control, "%s/sim.sock", W.dir);
  snprintf(W.sim_log, sizeof W.sim_log, "%s/sim.log", W.dir);
  dmt_fleet_write(W.fleet, W.devs, NSIM, "127.0.0.1", W.cira.port);
  W.sim = dmt_test_sim_start(W.fleet, W.cira.root_pem, W.control, W.sim_log);
  return W.sim > 0 ? 0 : -1;
}

static int teardown(void **state) {
  if (W.sim > 0) dmt_test_stop(W.sim, SIGTERM, 5000);
  if (W.cira.pid > 0) {
    int st = dmt_test_stop(W.cira.pid, SIGTERM, 15000);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fprintf(stderr, "dmt-cira exit status %d (see %s)\n", st, W.cira.log);
  }
  dmt_test_mqtt_close(W.mq);
  rq_close();
  SSL_CTX_free(W.ctx);
  free(W.devs);
  return 0;
}

/* The simulated fleet is whole and answers: what every attack must leave untouched. */
static bool sim_all_connected(void *arg);

static void assert_bystanders_fine(void) {
  assert_true(dmt_test_alive(W.cira.pid));
  assert_true(dmt_test_wait_until(sim_all_connected, NULL, 15000));
  json_t *res = NULL;
  assert_int_equal(dmt_test_command(W.mq, W.tenant, W.devs[1].guid, "power_state", NULL, 10000, NULL, &res), 200);
  json_decref(res);
}

static bool sim_all_connected(void *arg) { return dmt_test_sim_connected(W.control) == NSIM; }

/* As a consumer would: commands once the retained state says connected (we subscribe before saying so). */
static bool states_connected(void *arg) {
  size_t c, d;
  dmt_test_mqtt_states(W.mq, &c, &d);
  return c == NSIM;
}

/* ------------------------------------------------------------------ tests */

static void test_bystanders_connect(void **state) {
  assert_true(dmt_test_wait_until(sim_all_connected, NULL, 30000));
  assert_true(dmt_test_wait_until(states_connected, NULL, 30000));
  assert_bystanders_fine();
}

static void test_framing_split_and_batched(void **state) {
  /* every byte in its own read */
  struct raw r;
  assert_true(raw_connect(&r));
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  put_login(&b, raw_dev(0)->guid, raw_dev(0)->mps_user, raw_dev(0)->mps_password);
  assert_true(raw_send(&r, &b, 1));
  assert_true(raw_expect(&r, DMT_APF_SERVICE_ACCEPT, NULL, 5000));
  assert_true(raw_expect(&r, DMT_APF_USERAUTH_SUCCESS, NULL, 5000));
  put_forwards(&b, 2);
  assert_true(raw_send(&r, &b, 3));
  assert_true(raw_expect(&r, DMT_APF_SERVICE_ACCEPT, NULL, 5000));
  struct dmt_apf_msg m;
  assert_true(raw_expect(&r, DMT_APF_REQUEST_SUCCESS, &m, 5000));
  assert_int_equal(m.u.request_success.port, 16993);
  assert_true(raw_expect(&r, DMT_APF_REQUEST_SUCCESS, &m, 5000));
  assert_int_equal(m.u.request_success.port, 16992);
  /* only two forwards, no 5900: the keepalive options still come, after the delay */
  assert_true(raw_expect(&r, DMT_APF_KEEPALIVE_OPTIONS_REQUEST, &m, 5000));
  assert_int_equal(m.u.keepalive_options.interval, KEEPALIVE_S);
  assert_int_equal(m.u.keepalive_options.timeout, 3 * KEEPALIVE_S);
  assert_true(raw_keepalive_ok(&r, 0x42));
  raw_free(&r);

  /* the whole session in one write: every message answered, in order */
  assert_true(raw_connect(&r));
  put_login(&b, raw_dev(1)->guid, raw_dev(1)->mps_user, raw_dev(1)->mps_password);
  put_forwards(&b, 7);
  dmt_apf_put_keepalive_request(&b, 7);
  dmt_apf_put_keepalive_options_reply(&b, KEEPALIVE_S, 3 * KEEPALIVE_S);
  assert_true(raw_send(&r, &b, 0));
  assert_true(raw_expect(&r, DMT_APF_SERVICE_ACCEPT, NULL, 5000));
  assert_true(raw_expect(&r, DMT_APF_USERAUTH_SUCCESS, NULL, 5000));
  assert_true(raw_expect(&r, DMT_APF_SERVICE_ACCEPT, NULL, 5000));
  for (int i = 0; i < 7; i++) assert_true(raw_expect(&r, DMT_APF_REQUEST_SUCCESS, NULL, 5000));
  assert_true(raw_expect(&r, DMT_APF_KEEPALIVE_REPLY, &m, 5000)); /* options came at 5900, skipped by expect */
  assert_int_equal(m.u.keepalive.cookie, 7);
  int st = -1;
  for (int i = 0; i < 200 && st != 1; i++) {
    st = dmt_test_mqtt_state_of(W.mq, raw_dev(1)->guid, NULL);
    usleep(20000);
  }
  assert_int_equal(st, 1);
  raw_free(&r);
}

struct bad_case {
  const char *what;
  bool login_first;
  void (*put)(struct dmt_buf *b);
};

static void put_data_before_login(struct dmt_buf *b) { dmt_apf_put_channel_data(b, 4, "hello", 5); }
static void put_unknown_type(struct dmt_buf *b) {
  static const uint8_t junk[] = {0x07, 0xde, 0xad, 0xbe, 0xef};
  dmt_buf_append(b, junk, sizeof junk);
}
static void put_unknown_global(struct dmt_buf *b) {
  dmt_buf_append_u8(b, DMT_APF_GLOBAL_REQUEST);
  dmt_buf_append_str(b, "make-coffee", 11);
  dmt_buf_append_u8(b, 1);
  dmt_buf_append_u32be(b, 0);
}
static void put_long_string(struct dmt_buf *b) {
  dmt_buf_append_u8(b, DMT_APF_SERVICE_REQUEST);
  dmt_buf_append_u32be(b, 5000); /* over the 2048 limit: refused before it is buffered */
}
static void put_auth_before_version(struct dmt_buf *b) {
  dmt_apf_put_userauth_password(b, "someone", DMT_APF_SERVICE_PFWD, "secret");
}
static void put_huge_data(struct dmt_buf *b) {
  dmt_buf_append_u8(b, DMT_APF_CHANNEL_DATA);
  dmt_buf_append_u32be(b, 4);
  dmt_buf_append_u32be(b, 2u << 20); /* 2 MiB: over the 1 MiB limit */
}
static void put_second_userauth(struct dmt_buf *b) { dmt_apf_put_userauth_password(b, "x", "y", "z"); }
static void put_bad_flag(struct dmt_buf *b) {
  dmt_buf_append_u8(b, DMT_APF_USERAUTH_REQUEST);
  dmt_buf_append_str(b, "u", 1);
  dmt_buf_append_str(b, DMT_APF_SERVICE_PFWD, 18);
  dmt_buf_append_str(b, "password", 8);
  dmt_buf_append_u8(b, 1); /* change-password flag set */
  dmt_buf_append_str(b, "p", 1);
}

static void test_malformed_closes_only_that_connection(void **state) {
  static const struct bad_case cases[] = {
      {"channel data before login", false, put_data_before_login},
      {"unknown message type", true, put_unknown_type},
      {"unknown global request", true, put_unknown_global},
      {"string longer than 2048", false, put_long_string},
      {"userauth before protocol version", false, put_auth_before_version},
      {"channel data over 1 MiB", true, put_huge_data},
      {"second userauth after login", true, put_second_userauth},
      {"unknown type before login", false, put_unknown_type},
  };
  struct raw keeper; /* a raw device in the middle of things */
  assert_true(raw_login(&keeper, raw_dev(2)));
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct raw r;
    if (cases[i].login_first) assert_true(raw_login(&r, raw_dev(3)));
    else assert_true(raw_connect(&r));
    struct dmt_buf b;
    dmt_buf_init(&b, 0);
    cases[i].put(&b);
    assert_true(raw_send(&r, &b, 0));
    if (!raw_closed(&r, 5000)) fail_msg("%s: connection not closed", cases[i].what);
    if (!r.got_disconnect || r.disconnect_reason != DMT_APF_DISC_PROTOCOL_ERROR)
      fail_msg("%s: no DISCONNECT(PROTOCOL_ERROR) (got %d, reason %u)", cases[i].what, r.got_disconnect,
               r.disconnect_reason);
    raw_free(&r);
  }
  /* the refused change-password flag before login is a decoding error too */
  struct raw r;
  assert_true(raw_connect(&r));
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  uint8_t uuid[16];
  dmt_amt_guid_to_uuid(raw_dev(3)->guid, uuid);
  dmt_apf_put_protocol_version(&b, 1, 0, 4, uuid);
  put_bad_flag(&b);
  assert_true(raw_send(&r, &b, 0));
  assert_true(raw_closed(&r, 5000));
  raw_free(&r);
  assert_true(raw_keepalive_ok(&keeper, 99));
  raw_free(&keeper);
  assert_bystanders_fine();
}

/* xorshift: a reproducible fuzz stream */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void test_fuzzed_streams(void **state) {
  int closed = 0, total = 0;
  for (int i = 0; i < 120; i++) {
    struct raw r;
    char source[32];
    snprintf(source, sizeof source, "127.0.%d.%d", 10 + i % 4, 1 + i % 200); /* failures spread over sources */
    bool after_login = i % 2;
    const struct dmt_fleet_device *d = raw_dev(30 + i % 10);
    if (after_login) {
      if (!raw_login_from(&r, source, d->guid, d->mps_user, d->mps_password)) {
        raw_free(&r);
        continue; /* throttled by an earlier mutated login: also a rejection */
      }
    } else if (!raw_connect_from_src(&r, source)) {
      raw_free(&r);
      fail_msg("fuzz %d: cannot connect from %s", i, source);
    }
    struct dmt_buf b;
    dmt_buf_init(&b, 0);
    if (i % 3 == 0) { /* a valid session, mutated */
      put_login(&b, d->guid, d->mps_user, d->mps_password);
      put_forwards(&b, 4);
      for (size_t k = 0; k < dmt_buf_size(&b); k++)
        if (next_rand() % 16 == 0) b.data[b.off + k] = (uint8_t)next_rand();
    } else { /* random bytes, sometimes starting with a plausible type */
      size_t n = 1 + next_rand() % 3000;
      for (size_t k = 0; k < n; k++) dmt_buf_append_u8(&b, (uint8_t)next_rand());
      static const uint8_t types[] = {1, 5, 50, 80, 90, 91, 94, 97, 192, 208};
      if (i % 3 == 1) b.data[b.off] = types[next_rand() % sizeof types];
    }
    raw_send(&r, &b, 64 + next_rand() % 700);
    total++;
    /* refused at once, or at the latest by the login deadline, the slow-sender or the idle check */
    if (raw_closed(&r, 8000)) closed++;
    raw_free(&r);
  }
  fprintf(stderr, "fuzzed connections: %d, closed by the terminator: %d\n", total, closed);
  assert_true(total >= 60);
  assert_int_equal(closed, total);
  assert_bystanders_fine();
}

static void test_replace_only_after_auth(void **state) {
  const struct dmt_fleet_device *d = raw_dev(4);
  struct raw first;
  assert_true(raw_login(&first, d));
  char its_disconnects[96];
  snprintf(its_disconnects, sizeof its_disconnects, "%s/events/disconnected", d->guid);
  size_t disconnected_before = dmt_test_mqtt_count_suffix(W.mq, its_disconnects);
  /* a spoofer with the GUID but without its password: refused, the device keeps its connection */
  struct raw spoof;
  assert_false(raw_login_from(&spoof, "127.0.0.3", d->guid, d->mps_user, "NotThePassword1"));
  assert_true(raw_closed(&spoof, 5000));
  assert_int_equal(spoof.disconnect_reason, DMT_APF_DISC_INVALID_CREDENTIALS);
  raw_free(&spoof);
  assert_true(raw_keepalive_ok(&first, 1));
  /* the real device again (a new session): the old connection goes, quietly */
  struct raw second;
  assert_true(raw_login(&second, d));
  assert_true(raw_closed(&first, 5000));
  assert_int_equal(first.disconnect_reason, DMT_APF_DISC_BY_APPLICATION);
  raw_free(&first);
  assert_true(raw_keepalive_ok(&second, 2));
  usleep(500000);
  assert_int_equal(dmt_test_mqtt_state_of(W.mq, d->guid, NULL), 1);
  assert_int_equal(dmt_test_mqtt_count_suffix(W.mq, its_disconnects), disconnected_before);
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.devices WHERE guid = '%s' AND connection_status", d->guid);
  assert_int_equal(dmt_test_pg_count(W.dsn, sql), 1);
  raw_free(&second);
}

static void test_throttling_and_audit(void **state) {
  const struct dmt_fleet_device *d = raw_dev(5);
  /* per GUID: three free failures, then blocked, also for the right password, until the block ends */
  for (int i = 0; i < 4; i++) {
    struct raw r;
    assert_false(raw_login_from(&r, "127.0.0.3", d->guid, d->mps_user, "wrong-password"));
    raw_free(&r);
  }
  struct raw r;
  assert_false(raw_login(&r, d));
  raw_free(&r);
  usleep(1200000); /* the first block is one second */
  assert_true(raw_login(&r, d));
  raw_free(&r);
  /* per source: failures on many GUIDs from one address block that address only */
  for (int i = 0; i < 6; i++) {
    char guid[40];
    snprintf(guid, sizeof guid, "0badbeef-0000-4000-8000-%012d", i);
    assert_false(raw_login_from(&r, "127.0.0.2", guid, "cirauser0", "guess"));
    raw_free(&r);
  }
  assert_false(raw_login_from(&r, "127.0.0.2", raw_dev(6)->guid, raw_dev(6)->mps_user, raw_dev(6)->mps_password));
  raw_free(&r);
  assert_true(raw_login(&r, raw_dev(6))); /* from 127.0.0.1 */
  raw_free(&r);
  /* every refusal is an audit event, persisted; none carries a password */
  char sql[512];
  usleep(500000);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.events WHERE kind = 'auth_failure' AND guid = '%s'", d->guid);
  assert_true(dmt_test_pg_count(W.dsn, sql) >= 5);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM dmt.events WHERE kind = 'auth_failure' AND data->>'reason' LIKE '%%throttled%%'");
  assert_true(dmt_test_pg_count(W.dsn, sql) >= 2);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM dmt.events WHERE kind = 'auth_failure' AND (data::text LIKE '%%wrong-password%%' "
           "OR message LIKE '%%wrong-password%%' OR data::text LIKE '%%%s%%')",
           d->mps_password);
  assert_int_equal(dmt_test_pg_count(W.dsn, sql), 0);
  assert_true(dmt_test_mqtt_count_suffix(W.mq, "/events/auth_failure") >= 8);
  assert_bystanders_fine();
}

static void test_keepalive_idle_and_slowloris(void **state) {
  /* a device that goes silent is dropped after three intervals, with DISCONNECT(CONNECTION_TIMED_OUT) */
  const struct dmt_fleet_device *d = raw_dev(7);
  struct raw r;
  assert_true(raw_login(&r, d));
  uint64_t t0 = dmt_test_now_ms();
  assert_true(raw_closed(&r, 10000));
  uint64_t took = dmt_test_now_ms() - t0;
  assert_true(r.got_disconnect);
  assert_int_equal(r.disconnect_reason, DMT_APF_DISC_CONNECTION_TIMED_OUT);
  assert_true(took >= 3000u * KEEPALIVE_S - 500 && took < 3000u * KEEPALIVE_S + 2500);
  raw_free(&r);
  int st = 1;
  for (int i = 0; i < 200 && st != 0; i++) {
    st = dmt_test_mqtt_state_of(W.mq, d->guid, NULL);
    usleep(20000);
  }
  assert_int_equal(st, 0);

  /* no TLS at all, and a login that stalls halfway: both cut at the login deadline (3 s) */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)W.cira.port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_true(raw_connect(&r));
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  uint8_t uuid[16] = {0};
  dmt_apf_put_protocol_version(&b, 1, 0, 4, uuid);
  b.len -= 40; /* half of it */
  assert_true(raw_send(&r, &b, 0));
  assert_true(raw_closed(&r, 6000));
  char c;
  struct timeval tv = {6, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  assert_int_equal(read(fd, &c, 1), 0); /* closed by the terminator */
  close(fd);
  raw_free(&r);

  /* after login, a message that trickles in a byte at a time (each byte resets the idle timer) */
  assert_true(raw_login(&r, raw_dev(8)));
  dmt_apf_put_channel_data(&b, 4, "0123456789", 10);
  bool closed = false;
  for (size_t k = 0; k < dmt_buf_size(&b) - 1 && !closed; k++) {
    if (!raw_write(&r, dmt_buf_ptr(&b) + k, 1)) closed = true;
    struct dmt_apf_msg m;
    if (raw_next(&r, &m, 900) < 0) closed = true;
  }
  dmt_buf_free(&b);
  assert_true(closed || raw_closed(&r, 3000));
  assert_int_equal(r.disconnect_reason, DMT_APF_DISC_PROTOCOL_ERROR);
  raw_free(&r);
  assert_bystanders_fine();
}

static void test_no_query_per_keepalive(void **state) {
  const struct dmt_fleet_device *d = raw_dev(9);
  struct raw r;
  assert_true(raw_login(&r, d));
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT (extract(epoch from last_seen) * 1000)::bigint FROM dmt.devices WHERE guid = '%s'", d->guid);
  usleep(300000);
  long before = dmt_test_pg_count(W.dsn, sql);
  assert_true(before > 0);
  /* keepalives every 250 ms for a while: none of them writes last_seen ... */
  bool moved = false;
  for (int i = 0; i < 8; i++) {
    assert_true(raw_keepalive_ok(&r, (uint32_t)i));
    usleep(250000);
    moved |= dmt_test_pg_count(W.dsn, sql) != before;
  }
  /* ... until the periodic batch (5 s here) writes it once. Allow one flush inside the window. */
  long after = before;
  for (int i = 0; i < 40 && after == before; i++) {
    assert_true(raw_keepalive_ok(&r, 100));
    usleep(250000);
    after = dmt_test_pg_count(W.dsn, sql);
  }
  assert_true(after > before);
  if (moved) {
    /* the flush may have fallen inside the first window: then it must not move again right away */
    long now_val = dmt_test_pg_count(W.dsn, sql);
    for (int i = 0; i < 4; i++) {
      assert_true(raw_keepalive_ok(&r, 200));
      usleep(250000);
    }
    assert_int_equal(dmt_test_pg_count(W.dsn, sql), now_val);
  }
  raw_free(&r);
}

static void test_http_probe_and_ciracert(void **state) {
  struct raw r;
  assert_true(raw_connect(&r));
  const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_true(raw_write(&r, req, sizeof req - 1));
  char buf[512] = "";
  int n = 0, got;
  for (int i = 0; i < 50 && (got = SSL_read(r.ssl, buf + n, (int)sizeof buf - 1 - n)) != 0; i++)
    if (got > 0) n += got;
  buf[n > 0 ? n : 0] = '\0';
  assert_non_null(strstr(buf, "HTTP/1.1 200"));
  assert_non_null(strstr(buf, "CIRA"));
  raw_free(&r);
  /* the root CA, as DMT's /api/v1/ciracert serves it */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)W.cira.health_port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  const char get[] = "GET /api/v1/ciracert HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(write(fd, get, sizeof get - 1), (ssize_t)sizeof get - 1);
  static char resp[16384];
  size_t len = 0;
  ssize_t k;
  while ((k = read(fd, resp + len, sizeof resp - 1 - len)) > 0) len += (size_t)k;
  resp[len] = '\0';
  close(fd);
  assert_non_null(strstr(resp, "HTTP/1.1 200"));
  FILE *f = fopen(W.cira.root_pem, "r");
  static char pem[8192];
  size_t pl = fread(pem, 1, sizeof pem - 1, f);
  pem[pl] = '\0';
  fclose(f);
  assert_true(pl > 100);
  assert_non_null(strstr(resp, "-----BEGIN CERTIFICATE-----"));
  assert_non_null(strstr(resp, pem));
}

static void test_timeout_busy_expired_duplicate(void **state) {
  const char *slow = W.devs[2].guid, *ok = W.devs[3].guid;
  char cmd[128];
  /* a device that stops answering: a clear timeout at the deadline, not a hang */
  snprintf(cmd, sizeof cmd, "fault %s stall", slow);
  assert_non_null(strstr(dmt_test_sim_control(W.control, cmd), "ok"));
  uint64_t t0 = dmt_test_now_ms();
  rq_send(slow, "power_state", NULL, "timeout-1", now_ms() + 2000, NULL);
  /* two commands run on it at once (cira.max_commands=2 here): a third is busy */
  rq_send(slow, "general_settings", NULL, "busy-a", now_ms() + 2000, NULL);
  usleep(200000);
  rq_send(slow, "version", NULL, "busy-b", now_ms() + 2000, NULL);
  struct reply *busy = rq_wait("busy-b", 1, 3000);
  assert_non_null(busy);
  assert_int_equal(busy->code, 409);
  assert_string_equal(busy->error, "busy");
  struct reply *r = rq_wait("timeout-1", 1, 6000);
  assert_non_null(r);
  assert_int_equal(r->code, 408);
  assert_string_equal(r->error, "timeout");
  uint64_t took = dmt_test_now_ms() - t0;
  assert_true(took >= 1500 && took < 4000);
  snprintf(cmd, sizeof cmd, "fault %s unstall", slow);
  dmt_test_sim_control(W.control, cmd);

  /* a command whose deadline has passed is refused, not executed */
  const char *stats = dmt_test_sim_control(W.control, "stats");
  (void)stats;
  snprintf(cmd, sizeof cmd, "state %s", ok);
  assert_non_null(strstr(dmt_test_sim_control(W.control, cmd), "ready 2"));
  rq_send(ok, "power_action", "{\"action\":8}", "expired-1", now_ms() - 1000, NULL);
  r = rq_wait("expired-1", 1, 5000);
  assert_non_null(r);
  assert_int_equal(r->code, 408);
  assert_string_equal(r->error, "expired");
  assert_non_null(strstr(dmt_test_sim_control(W.control, cmd), "ready 2")); /* still on */

  /* the same correlation id twice: executed once, both answers the same */
  rq_send(ok, "power_action", "{\"action\":8}", "dup-1", now_ms() + 10000, "alice@example");
  rq_send(ok, "power_action", "{\"action\":8}", "dup-1", now_ms() + 10000, "alice@example");
  r = rq_wait("dup-1", 1, 10000);
  assert_non_null(r);
  assert_int_equal(r->code, 200);
  assert_string_equal(json_string_value(json_object_get(json_object_get(r->result, "Body"), "ReturnValueStr")),
                      "SUCCESS");
  usleep(700000);
  /* one execution: had the duplicate run, the device (now off) would have answered NOT_READY */
  rq_send(ok, "power_action", "{\"action\":8}", "dup-1", now_ms() + 10000, "alice@example");
  r = rq_wait("dup-1", 2, 5000);
  assert_non_null(r);
  assert_int_equal(r->code, 200);
  assert_string_equal(json_string_value(json_object_get(json_object_get(r->result, "Body"), "ReturnValueStr")),
                      "SUCCESS");
  assert_non_null(strstr(dmt_test_sim_control(W.control, cmd), "ready 8"));
  /* and every command is an audit event with its requester */
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM dmt.events WHERE kind = 'command' AND guid = '%s' AND action = 'power_action' "
           "AND requester = 'alice@example' AND outcome = 'success' AND data->>'code' = '200'",
           ok);
  long audited = 0;
  for (int i = 0; i < 50 && audited < 1; i++) {
    audited = dmt_test_pg_count(W.dsn, sql);
    usleep(100000);
  }
  assert_int_equal(audited, 1);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM dmt.events WHERE kind = 'command' AND guid = '%s' AND outcome = 'failure' "
           "AND data->>'error' IN ('busy', 'timeout')",
           slow);
  assert_true(dmt_test_pg_count(W.dsn, sql) >= 2);
  /* the power event and retained state followed the command */
  int power = 0;
  for (int i = 0; i < 100 && power != 8; i++) {
    dmt_test_mqtt_state_of(W.mq, ok, &power);
    usleep(20000);
  }
  assert_int_equal(power, 8);
  assert_true(dmt_test_mqtt_count_suffix(W.mq, "/events/power") >= 1);
  assert_bystanders_fine();
}

/* Old TLS is refused unless the legacy switch is on. */
static bool tls_handshake(int port, int max_version, const char *ciphers) {
  char e[256];
  SSL_CTX *ctx = dmt_tls_client_ctx(NULL, false, e, sizeof e);
  SSL_CTX_set_security_level(ctx, 0);
  SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
  SSL_CTX_set_max_proto_version(ctx, max_version);
  if (ciphers) SSL_CTX_set_cipher_list(ctx, ciphers);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bool ok = false;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    ok = SSL_connect(ssl) == 1;
    SSL_free(ssl);
  }
  close(fd);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

static void test_tls_policy(void **state) {
  assert_true(tls_handshake(W.cira.port, TLS1_3_VERSION, NULL));
  assert_false(tls_handshake(W.cira.port, TLS1_1_VERSION, NULL));
  assert_false(tls_handshake(W.cira.port, TLS1_2_VERSION, "AES256-SHA")); /* RSA key exchange */
  static const char *const legacy_env[] = {"DMT_CIRA_TLS_LEGACY=true", NULL};
  char inst[80];
  snprintf(inst, sizeof inst, "%s-legacy", W.instance);
  struct dmt_test_cira legacy = {.dsn = W.dsn, .secrets_key = W.key, .instance = inst, .runtime_dir = W.dir,
                                 .port = dmt_test_free_port(), .health_port = dmt_test_free_port(),
                                 .extra_env = legacy_env};
  assert_int_equal(dmt_test_cira_start(&legacy), 0);
  assert_true(tls_handshake(legacy.port, TLS1_VERSION, NULL));
  assert_true(tls_handshake(legacy.port, TLS1_1_VERSION, NULL));
  assert_true(tls_handshake(legacy.port, TLS1_2_VERSION, "AES256-SHA"));
  int st = dmt_test_stop(legacy.pid, SIGTERM, 10000);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Remote deactivation: unprovisioned, row and credentials gone, retained state deleted and not resurrected. */
static void test_deactivate(void **state) {
  const char *guid = W.devs[9].guid;
  char its_disconnects[96];
  snprintf(its_disconnects, sizeof its_disconnects, "%s/events/disconnected", guid);
  size_t before = dmt_test_mqtt_count_suffix(W.mq, its_disconnects);
  json_t *res = NULL;
  assert_int_equal(dmt_test_command(W.mq, W.tenant, guid, "deactivate", NULL, 10000, NULL, &res), 200);
  assert_string_equal(json_string_value(json_object_get(res, "status")), "SUCCESS");
  json_decref(res);
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.devices WHERE guid = '%s'", guid);
  long rows = 1;
  for (int i = 0; i < 50 && rows; i++) {
    rows = dmt_test_pg_count(W.dsn, sql);
    usleep(100000);
  }
  assert_int_equal(rows, 0);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.secrets WHERE path = 'devices/%s'", guid);
  assert_int_equal(dmt_test_pg_count(W.dsn, sql), 0);
  sleep(2); /* the device drops its tunnel after answering */
  char cmd[96];
  snprintf(cmd, sizeof cmd, "state %s", guid);
  const char *st = dmt_test_sim_control(W.control, cmd);
  if (!st || !strstr(st, "ok idle")) fail_msg("device after deactivation: %s", st ? st : "(no answer)");
  assert_int_equal(dmt_test_mqtt_count_suffix(W.mq, its_disconnects), before);
  struct dmt_test_mqtt *late = dmt_test_mqtt_open(dmt_test_mqtt_url(), "robustness-late");
  char topic[160];
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/state", W.tenant, guid);
  dmt_test_mqtt_subscribe(late, topic);
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/state", W.tenant, W.devs[8].guid);
  dmt_test_mqtt_subscribe(late, topic);
  for (int i = 0; i < 50 && dmt_test_mqtt_state_of(late, W.devs[8].guid, NULL) != 1; i++) usleep(20000);
  assert_int_equal(dmt_test_mqtt_state_of(late, W.devs[8].guid, NULL), 1); /* retained states do arrive */
  assert_int_equal(dmt_test_mqtt_state_of(late, guid, NULL), -1);         /* but not the deleted one */
  dmt_test_mqtt_close(late);
}

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bystanders_connect),
      cmocka_unit_test(test_framing_split_and_batched),
      cmocka_unit_test(test_malformed_closes_only_that_connection),
      cmocka_unit_test(test_fuzzed_streams),
      cmocka_unit_test(test_replace_only_after_auth),
      cmocka_unit_test(test_throttling_and_audit),
      cmocka_unit_test(test_keepalive_idle_and_slowloris),
      cmocka_unit_test(test_no_query_per_keepalive),
      cmocka_unit_test(test_http_probe_and_ciracert),
      cmocka_unit_test(test_timeout_busy_expired_duplicate),
      cmocka_unit_test(test_tls_policy),
      cmocka_unit_test(test_deactivate),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
