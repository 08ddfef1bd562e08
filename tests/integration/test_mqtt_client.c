/*
 * The common/ MQTT client against a real Mosquitto: a msgpack payload
 * published by one client arrives decoded on another with its MQTT v5
 * request/response properties intact; and a client survives a broker restart
 * (the test stops and restarts a private Mosquitto), re-subscribes by itself
 * and delivers to the broker what was published while it was down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/log.h"
#include "dmt/mqtt.h"
#include "dmt/payloads.h"
#include "dmt/workq.h"
#include "harness.h"

static const struct dmt_log lg = {.out = NULL, .min = DMT_LOG_WARN, .component = "test"};

/* One "agent thread": the test thread drains this queue while it waits. */
struct inbox {
  struct dmt_workq q;
  int up_events, down_events;
  int received;
  char topic[256];
  char payload[4096];
  size_t len;
  char response_topic[256];
  char correlation[64];
  size_t correlation_len;
  bool has_expiry;
  char requester[64];
  int probes; /* messages on the probe topic */
};

#define PROBE_TOPIC "dmt/v1/t/devices/g/events/connected"

static void on_message(void *ud, const struct dmt_mqtt_msg *m) {
  struct inbox *in = ud;
  in->received++;
  if (!strcmp(m->topic, PROBE_TOPIC)) in->probes++;
  snprintf(in->topic, sizeof in->topic, "%s", m->topic);
  in->len = m->len < sizeof in->payload ? m->len : sizeof in->payload;
  memcpy(in->payload, m->payload, in->len);
  snprintf(in->response_topic, sizeof in->response_topic, "%s", m->response_topic ? m->response_topic : "");
  in->correlation_len = m->correlation_len < sizeof in->correlation ? m->correlation_len : 0;
  if (m->correlation) memcpy(in->correlation, m->correlation, in->correlation_len);
  in->has_expiry = m->has_expiry;
  const char *req = dmt_mqtt_msg_user_prop(m, "x-test");
  snprintf(in->requester, sizeof in->requester, "%s", req ? req : "");
}

static void on_connection(void *ud, bool up) {
  struct inbox *in = ud;
  if (up) in->up_events++;
  else in->down_events++;
}

static struct dmt_mqtt *client(const char *url, const char *id, struct inbox *in) {
  dmt_workq_init(&in->q, NULL, NULL);
  struct dmt_mqtt_opts o = {.url = url, .client_id = id, .log = &lg, .owner = &in->q,
                            .on_message = on_message, .on_connection = on_connection, .ud = in};
  char err[256];
  struct dmt_mqtt *m = dmt_mqtt_new(&o, err, sizeof err);
  assert_non_null(m);
  assert_int_equal(dmt_mqtt_start(m), 0);
  return m;
}

struct wait2 {
  struct inbox *a, *b;
  int want_a_up, want_received;
};

static bool pump(void *arg) {
  struct wait2 *w = arg;
  dmt_workq_run(&w->a->q);
  if (w->b) dmt_workq_run(&w->b->q);
  return w->a->up_events >= w->want_a_up && (!w->b || w->b->received >= w->want_received);
}

static void test_msgpack_round_trip_with_properties(void **state) {
  const char *url = dmt_test_mqtt_url();
  struct inbox pub_in = {0}, sub_in = {0};
  char id[64], tenant[64], topic[256];
  snprintf(tenant, sizeof tenant, "t%d", (int)getpid());
  snprintf(id, sizeof id, "pub-%d", (int)getpid());
  struct dmt_mqtt *pub = client(url, id, &pub_in);
  snprintf(id, sizeof id, "sub-%d", (int)getpid());
  struct dmt_mqtt *sub = client(url, id, &sub_in);
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/+/cmd/#", tenant);
  assert_int_equal(dmt_mqtt_subscribe(sub, topic, 1), 0);
  struct wait2 w = {&sub_in, &pub_in, 1, 0};
  assert_true(dmt_test_wait_until(pump, &w, 10000));
  usleep(200000); /* let the SUBACK land before publishing */

  struct dmt_command_request req = {.verb = "power_action", .deadline_ms = 1790000000000,
                                    .present = DMT_COMMAND_REQUEST_DEADLINE_MS};
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256];
  assert_int_equal(dmt_command_request_encode(&req, &sb, err, sizeof err), 0);
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/4c4c4544-004b-4210-8033-b6c04f504633/cmd/power_action", tenant);
  char reply_to[128];
  snprintf(reply_to, sizeof reply_to, "dmt/v1/%s/replies/pub", tenant);
  struct dmt_mqtt_user_prop up = {"x-test", "alice"};
  struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1,
                               .response_topic = reply_to, .correlation = "corr-1", .correlation_len = 6,
                               .expiry_s = 30, .user = &up, .nuser = 1};
  assert_int_equal(dmt_mqtt_publish(pub, &p), 0);
  struct wait2 got = {&sub_in, NULL, 1, 0};
  got.b = &sub_in;
  got.want_received = 1;
  assert_true(dmt_test_wait_until(pump, &got, 10000));
  assert_string_equal(sub_in.topic, topic);
  assert_string_equal(sub_in.response_topic, reply_to);
  assert_int_equal(sub_in.correlation_len, 6);
  assert_memory_equal(sub_in.correlation, "corr-1", 6);
  assert_true(sub_in.has_expiry);
  assert_string_equal(sub_in.requester, "alice");
  struct dmt_command_request out;
  assert_int_equal(dmt_command_request_decode(sub_in.payload, sub_in.len, &out, err, sizeof err), 0);
  assert_string_equal(out.verb, "power_action");
  assert_int_equal(out.deadline_ms, 1790000000000);
  dmt_command_request_free(&out);
  msgpack_sbuffer_destroy(&sb);
  dmt_mqtt_free(pub);
  dmt_mqtt_free(sub);
  dmt_workq_destroy(&pub_in.q);
  dmt_workq_destroy(&sub_in.q);
}

static void publish_done(void *arg, bool ok) { *(int *)arg = ok ? 1 : -1; }

struct probe {
  struct dmt_mqtt *pub;
  struct inbox *sub_in;
  int sent;
};

/* Publishes a probe on every poll until the subscriber sees one. */
static bool probe_arrives(void *arg) {
  struct probe *pr = arg;
  dmt_workq_run(&pr->sub_in->q);
  if (pr->sub_in->probes > 0) return true;
  struct dmt_mqtt_publish p = {.topic = PROBE_TOPIC, .payload = "y", .len = 1, .qos = 1};
  if (pr->sent++ % 10 == 0) dmt_mqtt_publish(pr->pub, &p);
  return false;
}

static void test_survives_broker_restart(void **state) {
  struct dmt_test_broker broker = {0};
  assert_int_equal(dmt_test_broker_start(&broker, 0), 0);
  char url[64];
  snprintf(url, sizeof url, "tcp://127.0.0.1:%d", broker.port);
  struct inbox pub_in = {0}, sub_in = {0};
  struct dmt_mqtt *pub = client(url, "restart-pub", &pub_in);
  struct dmt_mqtt *sub = client(url, "restart-sub", &sub_in);
  assert_int_equal(dmt_mqtt_subscribe(sub, "dmt/v1/t/devices/+/events/#", 1), 0);
  struct wait2 w = {&sub_in, &pub_in, 1, 0};
  assert_true(dmt_test_wait_until(pump, &w, 10000));

  dmt_test_broker_stop(&broker);
  for (int i = 0; i < 100 && (sub_in.down_events == 0 || pub_in.down_events == 0); i++) {
    dmt_workq_run(&sub_in.q);
    dmt_workq_run(&pub_in.q);
    usleep(50000);
  }
  assert_true(sub_in.down_events >= 1);
  assert_false(dmt_mqtt_is_connected(sub));

  /* Published while the broker is down: buffered, then acknowledged by the broker once it is back. */
  int acked = 0;
  struct dmt_mqtt_publish p = {.topic = "dmt/v1/t/devices/g/events/power", .payload = "x", .len = 1,
                               .qos = 1, .done = publish_done, .done_arg = &acked};
  assert_int_equal(dmt_mqtt_publish(pub, &p), 0);
  dmt_workq_run(&pub_in.q);
  assert_int_equal(acked, 0);

  assert_int_equal(dmt_test_broker_start(&broker, broker.port), 0);
  struct wait2 back = {&sub_in, NULL, 2, 0};
  assert_true(dmt_test_wait_until(pump, &back, 20000));
  assert_int_equal(sub_in.up_events, 2);
  for (int i = 0; i < 400 && acked == 0; i++) {
    dmt_workq_run(&pub_in.q);
    usleep(50000);
  }
  assert_int_equal(acked, 1);

  /* The client re-subscribed by itself: messages published now arrive. */
  struct probe pr = {pub, &sub_in, 0};
  assert_true(dmt_test_wait_until(probe_arrives, &pr, 20000));
  assert_int_equal(dmt_mqtt_subscription_count(sub), 1);

  dmt_mqtt_free(pub);
  dmt_mqtt_free(sub);
  dmt_workq_destroy(&pub_in.q);
  dmt_workq_destroy(&sub_in.q);
  dmt_test_broker_stop(&broker);
}

int main(void) {
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_msgpack_round_trip_with_properties),
      cmocka_unit_test(test_survives_broker_restart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
