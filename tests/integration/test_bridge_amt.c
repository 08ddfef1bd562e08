/*
 * /api/v1/amt/... (and devices disconnect/refresh) over the real broker, with a
 * small in-test responder standing in for the CIRA terminator (it subscribes
 * to the device's cmd topic as a terminator holding the device would, and
 * answers command_request with command_reply on the Response Topic with the
 * Correlation Data). Proves: the MQTT v5 request (topic, verb, args, response
 * topic, correlation, expiry, deadline); reply -> DMT body mapping (200,
 * device errors, offline -> DMT's 404, ReturnValue != 0 -> 400 for consent);
 * "not connected" answered from the database without publishing; no reply ->
 * DMT's 404 after the deadline, never a hang; a reply sent into another
 * tenant's inbox is ignored; validation runs before the device lookup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge_fixture.h"
#include "dmt/evloop.h"
#include "dmt/log.h"
#include "dmt/mptree.h"
#include "dmt/mqtt.h"
#include "dmt/payloads.h"
#include "harness.h"

#define GUID "5a5a0000-0000-4000-8000-000000000001"
#define GUID_OFF "5a5a0000-0000-4000-8000-000000000002"
#define GUID_UNKNOWN "5a5a0000-0000-4000-8000-0000000000ff"

static const struct dmt_log lg = {.out = NULL, .min = DMT_LOG_WARN, .component = "stand-in"};

/* ---- the stand-in terminator ---- */

struct standin {
  struct dmt_workq q;
  struct dmt_mqtt *m;
  pthread_t thread;
  atomic_bool stop, up;
  atomic_int received;
  pthread_mutex_t mu;
  char last_topic[256], last_verb[64], last_response_topic[256];
  json_t *last_args;
  bool last_had_expiry;
  int64_t last_deadline_ms;
  char tenant[64];
};

static struct standin S;

static void reply(struct standin *s, const struct dmt_mqtt_msg *m, const char *topic, const char *status, int code,
                  const char *error, const char *message, const char *result_json) {
  struct dmt_command_reply r = {.status = (char *)status, .code = code, .error = (char *)error,
                                .message = (char *)message, .present = DMT_COMMAND_REPLY_CODE};
  msgpack_sbuffer res, out;
  msgpack_sbuffer_init(&res);
  msgpack_sbuffer_init(&out);
  if (result_json) {
    json_t *j = json_loads(result_json, 0, NULL);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &res, msgpack_sbuffer_write);
    dmt_json_to_mp(j, &pk);
    json_decref(j);
    r.result = (uint8_t *)res.data;
    r.result_len = res.size;
  }
  char err[256];
  assert_int_equal(dmt_command_reply_encode(&r, &out, err, sizeof err), 0);
  struct dmt_mqtt_publish p = {.topic = topic, .payload = out.data, .len = out.size, .qos = 1,
                               .correlation = m->correlation, .correlation_len = m->correlation_len};
  dmt_mqtt_publish(s->m, &p);
  msgpack_sbuffer_destroy(&res);
  msgpack_sbuffer_destroy(&out);
}

static void on_message(void *ud, const struct dmt_mqtt_msg *m) {
  struct standin *s = ud;
  struct dmt_command_request req;
  char err[256];
  if (dmt_command_request_decode(m->payload, m->len, &req, err, sizeof err) != 0) return;
  pthread_mutex_lock(&s->mu);
  snprintf(s->last_topic, sizeof s->last_topic, "%s", m->topic);
  snprintf(s->last_verb, sizeof s->last_verb, "%s", req.verb);
  snprintf(s->last_response_topic, sizeof s->last_response_topic, "%s", m->response_topic ? m->response_topic : "");
  json_decref(s->last_args);
  s->last_args = req.args ? dmt_mp_buf_to_json(req.args, req.args_len) : NULL;
  s->last_had_expiry = m->has_expiry;
  s->last_deadline_ms = req.deadline_ms;
  pthread_mutex_unlock(&s->mu);
  atomic_fetch_add(&s->received, 1);
  const char *v = req.verb, *rt = m->response_topic;
  if (!strcmp(v, "power_state")) reply(s, m, rt, "ok", 200, NULL, NULL, "{\"powerstate\":2,\"OSPowerSavingState\":0}");
  else if (!strcmp(v, "power_action"))
    reply(s, m, rt, "ok", 200, NULL, NULL, "{\"Header\":{},\"Body\":{\"ReturnValue\":0,\"ReturnValueStr\":\"SUCCESS\"}}");
  else if (!strcmp(v, "general_settings")) reply(s, m, rt, "error", 500, "device_error", "WS-Man fault: access denied", NULL);
  else if (!strcmp(v, "features")) reply(s, m, rt, "error", 404, "offline", "the device is not connected", NULL);
  else if (!strcmp(v, "user_consent_request"))
    reply(s, m, rt, "ok", 200, NULL, NULL, "{\"Header\":{},\"Body\":{\"ReturnValue\":2,\"ReturnValueStr\":\"NOT_READY\"}}");
  else if (!strcmp(v, "disconnect")) reply(s, m, rt, "ok", 200, NULL, NULL, "{}");
  else if (!strcmp(v, "hardware_info")) {
    /* an attacker-like reply: right correlation, but into another tenant's inbox */
    char wrong[256];
    const char *inbox = strstr(rt, "/replies/");
    snprintf(wrong, sizeof wrong, "dmt/v1/other-tenant%s", inbox ? inbox : "/replies/x");
    reply(s, m, wrong, "ok", 200, NULL, NULL, "{\"stolen\":true}");
  } else if (!strcmp(v, "event_log")) {
    reply(s, m, rt, "error", 501, "unsupported", "unknown command verb", NULL);
  }
  /* "version" and everything else: no answer, as when no terminator holds the device */
  dmt_command_request_free(&req);
}

static void on_conn(void *ud, bool up) { atomic_store(&((struct standin *)ud)->up, up); }

static void *pump(void *arg) {
  struct standin *s = arg;
  while (!atomic_load(&s->stop)) {
    dmt_workq_run(&s->q);
    usleep(2000);
  }
  return NULL;
}

static bool standin_up(void *arg) { return atomic_load(&((struct standin *)arg)->up); }

/* ---- fixture ---- */

static char *dsn, *dir;
static struct bt_bridge B;

static int setup(void **state) {
  dsn = dmt_test_pg_create_db("bridge_amt");
  dir = dmt_test_tmpdir("bridge-amt");
  snprintf(S.tenant, sizeof S.tenant, "_default");
  pthread_mutex_init(&S.mu, NULL);
  dmt_workq_init(&S.q, NULL, NULL);
  char id[64], err[256], filter[128];
  snprintf(id, sizeof id, "standin-%d", (int)getpid());
  struct dmt_mqtt_opts o = {.url = dmt_test_mqtt_url(), .client_id = id, .log = &lg, .owner = &S.q,
                            .on_message = on_message, .on_connection = on_conn, .ud = &S};
  S.m = dmt_mqtt_new(&o, err, sizeof err);
  /* like a terminator holding GUID: only that device's commands */
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/" GUID "/cmd/#", S.tenant);
  dmt_mqtt_subscribe(S.m, filter, 1);
  dmt_mqtt_start(S.m);
  pthread_create(&S.thread, NULL, pump, &S);
  if (!dmt_test_wait_until(standin_up, &S, 10000)) return -1;
  usleep(300000); /* SUBACK */
  const char *extra[] = {"--bridge.command_timeout_ms=1500", "--bridge.command_grace_ms=500", NULL};
  if (bt_bridge_start(&B, dsn, dmt_test_secrets_key(), dir, extra) != 0) return -1;
  /* one connected device, one known but disconnected (rows as the terminator keeps them) */
  return bt_sql(dsn, "INSERT INTO dmt.devices (guid, tenant_id, connection_status, mps_instance) VALUES "
                     "('" GUID "', '', true, 'cira-x'), ('" GUID_OFF "', '', false, NULL)");
}

static int teardown(void **state) {
  int rc = bt_bridge_stop(&B);
  atomic_store(&S.stop, true);
  pthread_join(S.thread, NULL);
  dmt_mqtt_free(S.m);
  dmt_workq_destroy(&S.q);
  json_decref(S.last_args);
  free(dsn);
  free(dir);
  return rc == 0 ? 0 : -1; /* the bridge must exit cleanly (no sanitizer report) */
}

static json_t *call(const char *method, const char *path, const char *body, int expect_status) {
  struct bt_response r;
  assert_int_equal(bt_http(B.mps_port, method, path, NULL, body, body ? strlen(body) : 0, &r), 0);
  if (r.status != expect_status) fail_msg("%s %s: status %d, body %s", method, path, r.status, r.body);
  json_t *j = bt_json(&r);
  bt_response_free(&r);
  return j;
}

static void assert_not_connected(json_t *j, const char *guid) {
  char desc[128];
  snprintf(desc, sizeof desc, "guid : %s", guid);
  assert_string_equal(json_string_value(json_object_get(j, "error")),
                      "Device not found/connected. Please connect again using CIRA.");
  assert_string_equal(json_string_value(json_object_get(j, "errorDescription")), desc);
}

static void test_power_action_request_and_reply(void **state) {
  int before = atomic_load(&S.received);
  json_t *j = call("POST", "/api/v1/amt/power/action/" GUID, "{\"action\": 8, \"useSOL\": false}", 200);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "Body"), "ReturnValue")), 0);
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "Body"), "ReturnValueStr")), "SUCCESS");
  json_decref(j);
  assert_int_equal(atomic_load(&S.received), before + 1);
  pthread_mutex_lock(&S.mu);
  assert_string_equal(S.last_topic, "dmt/v1/_default/devices/" GUID "/cmd/power_action");
  assert_string_equal(S.last_verb, "power_action");
  assert_true(S.last_had_expiry);
  char expect[200];
  snprintf(expect, sizeof expect, "dmt/v1/_default/replies/%s", B.instance);
  assert_string_equal(S.last_response_topic, expect);
  assert_int_equal(json_integer_value(json_object_get(S.last_args, "action")), 8);
  assert_true(json_is_false(json_object_get(S.last_args, "use_sol")));
  int64_t left = S.last_deadline_ms - (int64_t)dmt_wall_ms();
  assert_true(left > 0 && left <= 1500);
  pthread_mutex_unlock(&S.mu);
  j = call("GET", "/api/v1/amt/power/state/" GUID, NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(j, "powerstate")), 2);
  json_decref(j);
}

static void test_reply_mapping(void **state) {
  json_t *j = call("GET", "/api/v1/amt/generalSettings/" GUID, NULL, 500);
  assert_string_equal(json_string_value(json_object_get(j, "error")), "Internal Server Error");
  assert_string_equal(json_string_value(json_object_get(j, "errorDescription")), "WS-Man fault: access denied");
  json_decref(j);
  j = call("GET", "/api/v1/amt/features/" GUID, NULL, 404); /* the holder says offline */
  assert_not_connected(j, GUID);
  json_decref(j);
  j = call("GET", "/api/v1/amt/userConsentCode/" GUID, NULL, 400); /* ReturnValue != 0 */
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "Body"), "ReturnValue")), 2);
  json_decref(j);
  j = call("GET", "/api/v1/amt/log/event/" GUID, NULL, 501);
  assert_string_equal(json_string_value(json_object_get(j, "error")), "Not Implemented");
  json_decref(j);
  j = call("DELETE", "/api/v1/devices/disconnect/" GUID, NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(j, "success")), 200);
  assert_string_equal(json_string_value(json_object_get(j, "description")),
                      "Device CIRA connection disconnected : " GUID);
  json_decref(j);
}

static void test_not_connected_answered_without_publishing(void **state) {
  int before = atomic_load(&S.received);
  uint64_t t0 = dmt_test_now_ms();
  json_t *j = call("GET", "/api/v1/amt/power/state/" GUID_OFF, NULL, 404);
  assert_not_connected(j, GUID_OFF);
  json_decref(j);
  j = call("GET", "/api/v1/amt/power/state/" GUID_UNKNOWN, NULL, 404);
  assert_not_connected(j, GUID_UNKNOWN);
  json_decref(j);
  j = call("GET", "/api/v1/amt/hardwareInfo/1", NULL, 404); /* DMT's suites use guid "1" */
  assert_not_connected(j, "1");
  json_decref(j);
  assert_true(dmt_test_now_ms() - t0 < 1000); /* no waiting for a deadline */
  usleep(200000);
  assert_int_equal(atomic_load(&S.received), before);
}

static void test_no_reply_is_404_after_the_deadline(void **state) {
  uint64_t t0 = dmt_test_now_ms();
  json_t *j = call("GET", "/api/v1/amt/version/" GUID, NULL, 404);
  uint64_t took = dmt_test_now_ms() - t0;
  assert_not_connected(j, GUID);
  json_decref(j);
  assert_true(took >= 1900 && took < 5000); /* deadline 1500 ms + grace 500 ms, and no hang */
}

static void test_reply_in_another_tenants_inbox_is_ignored(void **state) {
  json_t *j = call("GET", "/api/v1/amt/hardwareInfo/" GUID, NULL, 404);
  assert_not_connected(j, GUID);
  assert_null(json_object_get(j, "stolen"));
  json_decref(j);
}

static void test_validation_before_lookup(void **state) {
  int before = atomic_load(&S.received);
  json_t *j = call("POST", "/api/v1/amt/power/action/" GUID, "{\"action\": 9, \"useSOL\": false}", 400);
  json_t *e = json_array_get(json_object_get(j, "errors"), 0);
  assert_string_equal(json_string_value(json_object_get(e, "path")), "action");
  assert_string_equal(json_string_value(json_object_get(e, "msg")), "Invalid value");
  json_decref(j);
  j = call("POST", "/api/v1/amt/certificates/" GUID_UNKNOWN, "{\"cert\": \"\", \"isTrusted\": true}", 400);
  e = json_array_get(json_object_get(j, "errors"), 0);
  assert_string_equal(json_string_value(json_object_get(e, "msg")), "Certificate is required");
  json_decref(j);
  assert_int_equal(atomic_load(&S.received), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_power_action_request_and_reply),
      cmocka_unit_test(test_reply_mapping),
      cmocka_unit_test(test_not_connected_answered_without_publishing),
      cmocka_unit_test(test_no_reply_is_404_after_the_deadline),
      cmocka_unit_test(test_reply_in_another_tenants_inbox_is_ignored),
      cmocka_unit_test(test_validation_before_lookup),
  };
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_need_env("DMT_TEST_MQTT_URL");
  return cmocka_run_group_tests(tests, setup, teardown);
}
