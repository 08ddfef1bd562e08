/*
 * MQTT v5 client for agents, over Paho's MQTTAsync. What it adds to Paho:
 *  - every callback is marshalled onto the agent's own thread through a
 *    dmt_workq (Paho calls back on its own threads: we never share agent state
 *    with them);
 *  - it connects, reconnects with back-off (also when the very first connect
 *    fails) and re-subscribes every filter it was asked for after each
 *    (re)connect, in batches, so a terminator holding 100k per-device
 *    subscriptions recovers from a broker restart by itself;
 *  - publishes made while disconnected are buffered and sent on reconnect;
 *  - MQTT v5 request/response properties in plain structs.
 */
#ifndef DMT_MQTT_H
#define DMT_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dmt_log;
struct dmt_workq;
struct dmt_mqtt;

#define DMT_MQTT_MAX_USER_PROPS 8

struct dmt_mqtt_user_prop {
  const char *key;
  const char *value;
};

/* A received message. Valid only during the on_message callback. */
struct dmt_mqtt_msg {
  const char *topic;
  const void *payload;
  size_t len;
  int qos;
  bool retained;
  const char *response_topic;       /* NULL if absent */
  const void *correlation;          /* NULL if absent */
  size_t correlation_len;
  bool has_expiry;
  uint32_t expiry_s;                /* remaining Message Expiry Interval */
  size_t nuser;
  struct dmt_mqtt_user_prop user[DMT_MQTT_MAX_USER_PROPS];
};

/* Looks up a user property by key; NULL if absent. */
const char *dmt_mqtt_msg_user_prop(const struct dmt_mqtt_msg *m, const char *key);

struct dmt_mqtt_publish {
  const char *topic;
  const void *payload;
  size_t len;
  int qos;                 /* 0 or 1 (the contract uses 1) */
  bool retain;
  const char *response_topic;
  const void *correlation;
  size_t correlation_len;
  uint32_t expiry_s;       /* Message Expiry Interval; 0 = none */
  const struct dmt_mqtt_user_prop *user;
  size_t nuser;
  /* Optional: called on the owner thread once the broker acknowledged (ok) or the publish failed. */
  void (*done)(void *arg, bool ok);
  void *done_arg;
};

struct dmt_mqtt_opts {
  const char *url;             /* tcp://host:1883, ssl://host:8883 */
  const char *client_id;
  const char *username;
  const char *password;
  const char *ca_file, *cert_file, *key_file;
  int keepalive_s;             /* default 30 */
  bool persistent_session;     /* clean start off + session expiry (durable consumers) */
  uint32_t session_expiry_s;
  /* Will, published by the broker if we vanish (retained if will_retain). */
  const char *will_topic;
  const void *will_payload;
  size_t will_len;
  bool will_retain;
  int max_buffered;            /* publishes queued while disconnected; default 100000 */
  const struct dmt_log *log;
  struct dmt_workq *owner;     /* where callbacks run */
  void (*on_message)(void *ud, const struct dmt_mqtt_msg *m);
  void (*on_connection)(void *ud, bool up);
  /*
   * Optional: each failed connect attempt (the client keeps retrying with
   * back-off). reason is the MQTT v5 CONNACK reason code when the broker
   * answered (0x86 bad user name or password, 0x87 not authorised, ...), or -1
   * when it could not be reached. Lets a command-line tool give up at once.
   */
  void (*on_connect_failed)(void *ud, int reason);
  void *ud;
};

struct dmt_mqtt *dmt_mqtt_new(const struct dmt_mqtt_opts *opts, char *err, size_t errlen);
/* Starts connecting in the background. */
int dmt_mqtt_start(struct dmt_mqtt *m);
/* Disconnects cleanly (the will is not sent) and frees everything. */
void dmt_mqtt_free(struct dmt_mqtt *m);

/* Any thread. Queues the message; returns 0, or -1 when the buffer is full. */
int dmt_mqtt_publish(struct dmt_mqtt *m, const struct dmt_mqtt_publish *p);
/* Remembered and re-established after every reconnect. */
int dmt_mqtt_subscribe(struct dmt_mqtt *m, const char *filter, int qos);
int dmt_mqtt_unsubscribe(struct dmt_mqtt *m, const char *filter);
size_t dmt_mqtt_subscription_count(struct dmt_mqtt *m);
/* Publishes not yet acknowledged by the broker (queued or in flight). */
size_t dmt_mqtt_pending(struct dmt_mqtt *m);
/* Waits up to timeout_ms for dmt_mqtt_pending() to reach 0; returns what is left. */
size_t dmt_mqtt_drain(struct dmt_mqtt *m, int timeout_ms);
bool dmt_mqtt_is_connected(struct dmt_mqtt *m);

#endif
