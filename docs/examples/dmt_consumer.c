/*
 * dmt-consumer: a small north-side consumer of the control plane's MQTT
 * streams, written against plain Eclipse Paho C (synchronous MQTTClient,
 * MQTT v5) and msgpack-c only, as a team outside this repository would. It
 * is built with the project so it cannot rot, and the event-stream
 * integration tests run it. See docs/consumer-example.md.
 *
 *   dmt-consumer eim   --broker URL --tenant T [--token-file F]
 *       How EIM tracks devices: one SUBSCRIBE for devices/+/state and
 *       devices/+/events/#; the retained states arrive first (the snapshot,
 *       retain flag set), then only changes. No polling. The end of the
 *       snapshot is marked without any publish permission: after the first
 *       retained state, we subscribe once more to that exact topic; the
 *       broker resends its retained state after all the others.
 *
 *   dmt-consumer obaas --broker URL --tenant T --client-id ID [--group G]
 *       How OBaaS consumes events: $share/<group>/... with a persistent
 *       session (Clean Start 0, Session Expiry), QoS 1, a stable client id per
 *       replica; replicas in the same group split the stream.
 *
 * Output, one line per message (stdout, line-buffered):
 *   snapshot <guid> connected=<0|1> power=<n>      retained state (EIM)
 *   snapshot-complete <devices>                    end of the retained snapshot (EIM)
 *   change <guid> connected=<0|1> power=<n>        live state change (EIM)
 *   deleted <guid>                                 empty retained state: device removed (EIM)
 *   event <id> <kind> <guid|-> <outcome> <ts_ms>   an event (both modes)
 */
#include <MQTTClient.h>
#include <msgpack.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { stop = 1; }

struct opts {
  const char *mode, *broker, *tenant, *token_file, *username, *client_id, *group;
  int session_expiry_s;
  long count;      /* exit after this many event lines (0 = never) */
  int idle_exit_s; /* exit after this long without a message (0 = never) */
};

/* ---- msgpack: read a few fields of a map payload ---- */

static const msgpack_object *get(const msgpack_object *map, const char *key) {
  if (map->type != MSGPACK_OBJECT_MAP) return NULL;
  size_t kl = strlen(key);
  for (uint32_t i = 0; i < map->via.map.size; i++) {
    const msgpack_object_kv *kv = &map->via.map.ptr[i];
    if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == kl && !memcmp(kv->key.via.str.ptr, key, kl))
      return &kv->val;
  }
  return NULL;
}

static void str_of(const msgpack_object *map, const char *key, char *out, size_t len) {
  const msgpack_object *v = get(map, key);
  if (v && v->type == MSGPACK_OBJECT_STR) snprintf(out, len, "%.*s", (int)v->via.str.size, v->via.str.ptr);
  else snprintf(out, len, "-");
}

static long long int_of(const msgpack_object *map, const char *key) {
  const msgpack_object *v = get(map, key);
  if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) return (long long)v->via.u64;
  if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return (long long)v->via.i64;
  if (v && v->type == MSGPACK_OBJECT_BOOLEAN) return v->via.boolean;
  return 0;
}

/* ---- handling one message ---- */

struct state {
  char marker[256]; /* the exact topic re-subscribed to mark the snapshot's end */
  long devices, events;
  bool snapshot_done;
  time_t subscribed_at;
};

static void guid_of_topic(const char *topic, char *out, size_t len) {
  /* dmt/v1/<tenant>/devices/<guid>/... */
  const char *d = strstr(topic, "/devices/");
  if (!d) {
    snprintf(out, len, "-");
    return;
  }
  d += 9;
  const char *e = strchr(d, '/');
  snprintf(out, len, "%.*s", (int)(e ? e - d : (long)strlen(d)), d);
}

static void snapshot_complete(MQTTClient cl, struct state *st) {
  st->snapshot_done = true;
  if (st->marker[0]) {
    MQTTResponse r = MQTTClient_unsubscribe5(cl, st->marker, NULL);
    MQTTResponse_free(r);
  }
  printf("snapshot-complete %ld\n", st->devices);
}

static void handle(MQTTClient cl, struct state *st, const char *topic, MQTTClient_message *m) {
  if (!st->snapshot_done && m->retained && st->marker[0] && !strcmp(topic, st->marker)) {
    snapshot_complete(cl, st); /* the marker: every other retained state came before it */
    return;
  }
  char guid[64];
  guid_of_topic(topic, guid, sizeof guid);
  size_t tl = strlen(topic);
  bool is_state = tl > 6 && !strcmp(topic + tl - 6, "/state");
  if (is_state && m->payloadlen == 0) {
    printf("deleted %s\n", guid);
    return;
  }
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  if (msgpack_unpack_next(&up, m->payload, (size_t)m->payloadlen, &off) != MSGPACK_UNPACK_SUCCESS ||
      up.data.type != MSGPACK_OBJECT_MAP) {
    fprintf(stderr, "malformed payload on %s\n", topic);
    msgpack_unpacked_destroy(&up);
    return;
  }
  if (is_state) {
    /* retained => part of the snapshot; a live change is forwarded with the retain flag cleared */
    bool snap = m->retained && !st->snapshot_done;
    if (snap) st->devices++;
    if (snap && !st->marker[0]) { /* first retained state: ask for it again as the end marker */
      snprintf(st->marker, sizeof st->marker, "%s", topic);
      MQTTResponse r = MQTTClient_subscribe5(cl, st->marker, 1, NULL, NULL);
      MQTTResponse_free(r);
    }
    printf("%s %s connected=%lld power=%lld\n", snap ? "snapshot" : "change", guid, int_of(&up.data, "connected"),
           int_of(&up.data, "power_state"));
  } else {
    char id[64], kind[40], outcome[24], g[64];
    str_of(&up.data, "id", id, sizeof id);
    str_of(&up.data, "kind", kind, sizeof kind);
    str_of(&up.data, "outcome", outcome, sizeof outcome);
    str_of(&up.data, "guid", g, sizeof g);
    printf("event %s %s %s %s %lld\n", id, kind, g, outcome, int_of(&up.data, "ts_ms"));
    st->events++;
  }
  msgpack_unpacked_destroy(&up);
}

/* ---- connection ---- */

static char *read_token(const char *path) {
  if (!path) return NULL;
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
  buf[n] = '\0';
  return strdup(buf);
}

static int connect_and_subscribe(MQTTClient cl, const struct opts *o, const char *token, struct state *st) {
  MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer5;
  MQTTProperties props = MQTTProperties_initializer;
  bool obaas = !strcmp(o->mode, "obaas");
  co.keepAliveInterval = 30;
  co.cleanstart = obaas ? 0 : 1; /* OBaaS: keep the session (and what was queued) across restarts */
  co.username = token ? (o->username ? o->username : "consumer") : NULL;
  co.password = token;
  if (obaas) {
    MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
    p.value.integer4 = (unsigned)o->session_expiry_s;
    MQTTProperties_add(&props, &p);
  }
  MQTTResponse r = MQTTClient_connect5(cl, &co, &props, NULL);
  MQTTProperties_free(&props);
  if (r.reasonCode != MQTTREASONCODE_SUCCESS) {
    fprintf(stderr, "connect refused: %s (%d)\n", MQTTReasonCode_toString(r.reasonCode), r.reasonCode);
    MQTTResponse_free(r);
    return -1;
  }
  MQTTResponse_free(r);

  char f[2][320];
  int n = 0;
  if (obaas) {
    snprintf(f[n++], sizeof f[0], "$share/%s/dmt/v1/%s/devices/+/events/#", o->group, o->tenant);
    snprintf(f[n++], sizeof f[0], "$share/%s/dmt/v1/%s/events/#", o->group, o->tenant);
  } else {
    snprintf(f[n++], sizeof f[0], "dmt/v1/%s/devices/+/state", o->tenant);
    snprintf(f[n++], sizeof f[0], "dmt/v1/%s/devices/+/events/#", o->tenant);
  }
  char *filters[2] = {f[0], f[1]};
  int qos[2] = {1, 1};
  MQTTSubscribe_options so[2] = {MQTTSubscribe_options_initializer, MQTTSubscribe_options_initializer};
  r = MQTTClient_subscribeMany5(cl, n, filters, qos, so, NULL);
  int rc = r.reasonCode < 0x80 ? 0 : -1;
  for (int i = 0; r.reasonCodes && i < r.reasonCodeCount; i++)
    if (r.reasonCodes[i] >= 0x80) rc = -1;
  MQTTResponse_free(r);
  if (rc != 0) {
    fprintf(stderr, "subscription refused\n");
    return -1;
  }
  st->snapshot_done = obaas;
  st->devices = 0;
  st->marker[0] = '\0';
  st->subscribed_at = time(NULL);
  return 0;
}

static int usage(void) {
  fprintf(stderr, "usage: dmt-consumer eim|obaas --broker URL --tenant T [--token-file F] [--username U]\n"
                  "       [--client-id ID] [--group G] [--session-expiry S] [--count N] [--idle-exit S]\n");
  return 2;
}

int main(int argc, char **argv) {
  struct opts o = {.broker = "tcp://127.0.0.1:1883", .tenant = "_default", .group = "obaas", .session_expiry_s = 3600};
  if (argc < 2) return usage();
  o.mode = argv[1];
  if (strcmp(o.mode, "eim") && strcmp(o.mode, "obaas")) return usage();
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--broker")) o.broker = v;
    else if (!strcmp(k, "--tenant")) o.tenant = v;
    else if (!strcmp(k, "--token-file")) o.token_file = v;
    else if (!strcmp(k, "--username")) o.username = v;
    else if (!strcmp(k, "--client-id")) o.client_id = v;
    else if (!strcmp(k, "--group")) o.group = v;
    else if (!strcmp(k, "--session-expiry")) o.session_expiry_s = atoi(v);
    else if (!strcmp(k, "--count")) o.count = atol(v);
    else if (!strcmp(k, "--idle-exit")) o.idle_exit_s = atoi(v);
    else return usage();
  }
  char idbuf[64];
  if (!o.client_id) {
    if (!strcmp(o.mode, "obaas")) {
      fprintf(stderr, "obaas mode needs --client-id: a stable id per replica is what keeps its session\n");
      return 2;
    }
    snprintf(idbuf, sizeof idbuf, "eim-example-%d", (int)getpid());
    o.client_id = idbuf;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  char *token = read_token(o.token_file);
  struct state st = {0};

  MQTTClient cl;
  MQTTClient_createOptions cr = MQTTClient_createOptions_initializer;
  cr.MQTTVersion = MQTTVERSION_5;
  if (MQTTClient_createWithOptions(&cl, o.broker, o.client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &cr) !=
      MQTTCLIENT_SUCCESS) {
    fprintf(stderr, "cannot create a client for %s\n", o.broker);
    return 1;
  }
  int rc = 0, idle = 0;
  if (connect_and_subscribe(cl, &o, token, &st) != 0) {
    rc = 1;
    stop = 1;
  } else {
    fprintf(stderr, "%s consumer %s subscribed\n", o.mode, o.client_id);
  }
  while (!stop) {
    char *topic = NULL;
    int tlen = 0;
    MQTTClient_message *m = NULL;
    int r = MQTTClient_receive(cl, &topic, &tlen, &m, 1000);
    if (r != MQTTCLIENT_SUCCESS && r != MQTTCLIENT_TOPICNAME_TRUNCATED) {
      /* connection lost: reconnect; EIM gets a fresh snapshot, OBaaS its queued share */
      fprintf(stderr, "connection lost; reconnecting\n");
      sleep(1);
      if (connect_and_subscribe(cl, &o, token, &st) == 0) fprintf(stderr, "reconnected\n");
      continue;
    }
    if (!m) {
      /* no retained state at all within 2 s: the tenant has no devices yet */
      if (!st.snapshot_done && !st.marker[0] && time(NULL) - st.subscribed_at >= 2) snapshot_complete(cl, &st);
      if (o.idle_exit_s && ++idle >= o.idle_exit_s) break;
      continue;
    }
    idle = 0;
    handle(cl, &st, topic, m);
    MQTTClient_freeMessage(&m);
    MQTTClient_free(topic);
    if (o.count && st.events >= o.count) break;
  }
  MQTTClient_disconnect5(cl, 1000, MQTTREASONCODE_SUCCESS, NULL); /* a clean disconnect keeps an OBaaS session */
  MQTTClient_destroy(&cl);
  free(token);
  return rc;
}
