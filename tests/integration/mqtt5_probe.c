/*
 * Test-only MQTT v5 probe (see mqtt5_probe.h). libmosquitto runs its network
 * loop on its own thread; callbacks record into the probe under a mutex and
 * the test thread polls. A probe never reconnects: after a refused CONNACK or
 * a lost connection it disconnects for good, so the broker sees exactly the
 * attempts a test makes.
 */
#include "mqtt5_probe.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dmt/topic_acl.h"

#define MAX_MSGS 512

struct msg {
  char topic[256], payload[128], requester[160], behalf[160];
  int nrequester;
};

struct probe {
  struct mosquitto *m;
  pthread_mutex_t mu;
  int connack, disconnect_reason;
  bool was_connected, dropped;
  int sub_mid, sub_rc, pub_mid, pub_rc;
  struct msg msgs[MAX_MSGS];
  size_t nmsgs;
};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls cond(p, arg) under the lock every 5 ms until it holds or timeout_ms passes. */
static bool wait_cond(struct probe *p, bool (*cond)(struct probe *, const void *), const void *arg, int timeout_ms) {
  long long deadline = now_ms() + timeout_ms;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    bool ok = cond(p, arg);
    pthread_mutex_unlock(&p->mu);
    if (ok || now_ms() > deadline) return ok;
    usleep(5000);
  }
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *props) {
  struct probe *p = obj;
  pthread_mutex_lock(&p->mu);
  p->connack = rc;
  p->was_connected = rc == 0;
  pthread_mutex_unlock(&p->mu);
  if (rc != 0) mosquitto_disconnect(m);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props) {
  struct probe *p = obj;
  pthread_mutex_lock(&p->mu);
  if (p->was_connected && !p->dropped) {
    p->dropped = true;
    p->disconnect_reason = rc;
  }
  pthread_mutex_unlock(&p->mu);
  mosquitto_disconnect(m); /* no automatic reconnect */
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted,
                         const mosquitto_property *props) {
  struct probe *p = obj;
  pthread_mutex_lock(&p->mu);
  p->sub_mid = mid;
  p->sub_rc = n > 0 ? granted[0] : PROBE_NO_ANSWER;
  pthread_mutex_unlock(&p->mu);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int rc, const mosquitto_property *props) {
  struct probe *p = obj;
  pthread_mutex_lock(&p->mu);
  p->pub_mid = mid;
  p->pub_rc = rc;
  pthread_mutex_unlock(&p->mu);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props) {
  struct probe *p = obj;
  struct msg rec = {0};
  snprintf(rec.topic, sizeof rec.topic, "%s", msg->topic);
  snprintf(rec.payload, sizeof rec.payload, "%.*s", msg->payloadlen, msg->payload ? (const char *)msg->payload : "");
  bool skip = false;
  char *name = NULL, *value = NULL;
  for (const mosquitto_property *pr = props;
       (pr = mosquitto_property_read_string_pair(pr, MQTT_PROP_USER_PROPERTY, &name, &value, skip)); skip = true) {
    if (!strcmp(name, "dmt-requester")) {
      if (rec.nrequester++ == 0) snprintf(rec.requester, sizeof rec.requester, "%s", value);
    } else if (!strcmp(name, "dmt-on-behalf-of")) {
      snprintf(rec.behalf, sizeof rec.behalf, "%s", value);
    }
    free(name);
    free(value);
  }
  pthread_mutex_lock(&p->mu);
  if (p->nmsgs < MAX_MSGS) p->msgs[p->nmsgs++] = rec;
  pthread_mutex_unlock(&p->mu);
}

static bool connack_known(struct probe *p, const void *arg) { return p->connack != PROBE_NO_ANSWER; }

struct probe *probe_connect(int port, const char *client_id, const char *username, const char *password,
                            const char *will_topic, const char *will_payload) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, (void (*)(void))mosquitto_lib_init);
  struct probe *p = calloc(1, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
  p->connack = p->sub_rc = p->pub_rc = PROBE_NO_ANSWER;
  p->m = mosquitto_new(client_id, true, p);
  mosquitto_int_option(p->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  mosquitto_reconnect_delay_set(p->m, 1, 1, false);
  if (username || password) mosquitto_username_pw_set(p->m, username, password);
  if (will_topic)
    mosquitto_will_set_v5(p->m, will_topic, (int)strlen(will_payload), will_payload, 1, true, NULL);
  mosquitto_connect_v5_callback_set(p->m, on_connect);
  mosquitto_disconnect_v5_callback_set(p->m, on_disconnect);
  mosquitto_subscribe_v5_callback_set(p->m, on_subscribe);
  mosquitto_publish_v5_callback_set(p->m, on_publish);
  mosquitto_message_v5_callback_set(p->m, on_message);
  if (mosquitto_connect_bind_v5(p->m, "127.0.0.1", port, 30, NULL, NULL) == MOSQ_ERR_SUCCESS) {
    mosquitto_loop_start(p->m);
    wait_cond(p, connack_known, NULL, 5000);
  }
  return p;
}

int probe_connack(struct probe *p) {
  pthread_mutex_lock(&p->mu);
  int rc = p->connack;
  pthread_mutex_unlock(&p->mu);
  return rc;
}

static void destroy(struct probe *p) {
  mosquitto_loop_stop(p->m, true);
  mosquitto_destroy(p->m);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

void probe_close(struct probe *p) {
  if (!p) return;
  mosquitto_disconnect(p->m);
  destroy(p);
}

void probe_drop(struct probe *p) { destroy(p); }

static bool sub_answered(struct probe *p, const void *mid) { return p->sub_mid == *(const int *)mid; }
static bool pub_answered(struct probe *p, const void *mid) { return p->pub_mid == *(const int *)mid; }

int probe_subscribe(struct probe *p, const char *filter) {
  int mid = 0;
  int rc = mosquitto_subscribe_v5(p->m, &mid, filter, 1, 0, NULL);
  if (rc != MOSQ_ERR_SUCCESS || !wait_cond(p, sub_answered, &mid, 5000)) return PROBE_NO_ANSWER;
  pthread_mutex_lock(&p->mu);
  rc = p->sub_rc;
  pthread_mutex_unlock(&p->mu);
  return rc;
}

int probe_publish(struct probe *p, const char *topic, const char *payload, bool retain, const char *const *user_props) {
  mosquitto_property *props = NULL;
  for (size_t i = 0; user_props && user_props[i]; i++) {
    char name[128];
    const char *eq = strchr(user_props[i], '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq - user_props[i]), user_props[i]);
    mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, name, eq + 1);
  }
  int mid = 0;
  int rc = mosquitto_publish_v5(p->m, &mid, topic, (int)strlen(payload), payload, 1, retain, props);
  mosquitto_property_free_all(&props);
  if (rc != MOSQ_ERR_SUCCESS || !wait_cond(p, pub_answered, &mid, 5000)) return PROBE_NO_ANSWER;
  pthread_mutex_lock(&p->mu);
  rc = p->pub_rc;
  pthread_mutex_unlock(&p->mu);
  return rc;
}

struct want {
  const char *topic, *payload;
};

static bool has_message(struct probe *p, const void *arg) {
  const struct want *w = arg;
  for (size_t i = 0; i < p->nmsgs; i++)
    if (!strcmp(p->msgs[i].topic, w->topic) && (!w->payload || !strcmp(p->msgs[i].payload, w->payload))) return true;
  return false;
}

bool probe_wait_message(struct probe *p, const char *topic, const char *payload, int timeout_ms) {
  struct want w = {topic, payload};
  return wait_cond(p, has_message, &w, timeout_ms);
}

size_t probe_count(struct probe *p, const char *filter) {
  size_t n = 0;
  pthread_mutex_lock(&p->mu);
  for (size_t i = 0; i < p->nmsgs; i++) n += dmt_topic_matches(filter, p->msgs[i].topic);
  pthread_mutex_unlock(&p->mu);
  return n;
}

size_t probe_total(struct probe *p) {
  pthread_mutex_lock(&p->mu);
  size_t n = p->nmsgs;
  pthread_mutex_unlock(&p->mu);
  return n;
}

bool probe_properties(struct probe *p, const char *topic, char *requester, size_t rlen, int *nrequester,
                      char *behalf, size_t blen) {
  bool found = false;
  pthread_mutex_lock(&p->mu);
  for (size_t i = p->nmsgs; i-- > 0 && !found;) {
    if (strcmp(p->msgs[i].topic, topic) != 0) continue;
    snprintf(requester, rlen, "%s", p->msgs[i].requester);
    snprintf(behalf, blen, "%s", p->msgs[i].behalf);
    *nrequester = p->msgs[i].nrequester;
    found = true;
  }
  pthread_mutex_unlock(&p->mu);
  return found;
}

static bool dropped(struct probe *p, const void *arg) { return p->dropped; }

bool probe_wait_disconnect(struct probe *p, int timeout_ms, int *reason) {
  bool ok = wait_cond(p, dropped, NULL, timeout_ms);
  pthread_mutex_lock(&p->mu);
  if (reason) *reason = p->disconnect_reason;
  pthread_mutex_unlock(&p->mu);
  return ok;
}
