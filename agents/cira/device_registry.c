/*
 * The registry of authenticated devices (GUID -> connection). A second
 * connection for a GUID replaces the first only once it has authenticated
 * (a spoofer without the credentials cannot kick the real device off), and
 * the old connection leaves quietly: it writes no disconnected row and
 * publishes nothing, because the device is still connected. Across
 * instances the same rule holds through a takeover notice: the instance that
 * registers a device says so on dmt/_sys/cira/takeover/<guid>, and any other
 * instance still holding a connection of that GUID (a half-open one, or a
 * device that failed over) drops it quietly, so exactly one instance holds
 * and serves each device and a command is never executed twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cira.h"
#include "dmt/payloads.h"

struct cira_conn *registry_find(struct cira_server *s, const char *guid) { return dmt_strmap_get(&s->devices, guid); }

static void publish_takeover(struct cira_conn *c) {
  struct dmt_device_state st = {.guid = c->guid, .tenant = c->dev->tenant, .connected = true,
                                .instance = c->srv->instance, .updated_ms = (int64_t)c->connected_ms,
                                .present = DMT_DEVICE_STATE_CONNECTED | DMT_DEVICE_STATE_UPDATED_MS};
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[128], topic[96];
  snprintf(topic, sizeof topic, "dmt/_sys/cira/takeover/%s", c->guid);
  if (dmt_device_state_encode(&st, &sb, err, sizeof err) == 0) {
    struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1};
    dmt_mqtt_publish(c->srv->mqtt, &p);
  }
  msgpack_sbuffer_destroy(&sb);
}

/* Takes the GUID from an older connection (ours), which then closes without touching the device's state. */
static void retire(struct cira_conn *old, const char *why) {
  struct cira_server *s = old->srv;
  old->replaced = true;
  old->registered = false;
  if (dmt_strmap_get(&s->devices, old->guid) == old) dmt_strmap_del(&s->devices, old->guid);
  commands_subscribe(old, false);
  s->count.takeovers++;
  conn_close(old, DMT_APF_DISC_BY_APPLICATION, why);
}

void registry_register(struct cira_conn *c) {
  struct cira_server *s = c->srv;
  struct cira_conn *old = dmt_strmap_get(&s->devices, c->guid);
  bool resubscribe = true;
  if (old && old != c) {
    /* Same instance: the subscription stays; only the connection behind it changes. */
    old->replaced = true;
    old->registered = false;
    dmt_strmap_del(&s->devices, c->guid);
    resubscribe = strcmp(old->dev->tenant, c->dev->tenant) != 0;
    if (resubscribe) commands_subscribe(old, false);
    s->count.takeovers++;
    conn_close(old, DMT_APF_DISC_BY_APPLICATION, "replaced by a newer connection of the same device");
  }
  if (dmt_strmap_put(&s->devices, c->guid, c, NULL) != 0) {
    conn_close(c, DMT_APF_DISC_TEMPORARILY_UNAVAILABLE, "out of memory");
    return;
  }
  c->registered = true;
  c->state = CONN_ACTIVE;
  c->connected_ms = dmt_wall_ms();
  s->count.authenticated++;
  conn_authenticated(c);
  dmt_apf_put_userauth_success(&c->out);
  conn_flush(c);
  if (c->state != CONN_ACTIVE) return;
  if (resubscribe) commands_subscribe(c, true);
  publish_takeover(c);
  power_schedule_first(c);
  state_connection_changed(c, true, NULL);
  DMT_INFO(&s->log, "device_connected", "guid=%s tenant=%s peer=%s", c->guid, dmt_topic_tenant(c->dev->tenant), c->peer);
}

void registry_unregister(struct cira_conn *c, const char *reason) {
  struct cira_server *s = c->srv;
  if (c->replaced || !c->registered) return;
  c->registered = false;
  if (dmt_strmap_get(&s->devices, c->guid) == c) dmt_strmap_del(&s->devices, c->guid);
  commands_subscribe(c, false);
  if (s->shutting_down || c->deactivated) return; /* released in bulk / state already deleted */
  state_connection_changed(c, false, reason);
  DMT_INFO(&s->log, "device_disconnected", "guid=%s reason=\"%s\"", c->guid, reason);
}

void registry_on_takeover(struct cira_server *s, const struct dmt_mqtt_msg *m) {
  struct dmt_device_state st;
  char err[128];
  if (dmt_device_state_decode(m->payload, m->len, &st, err, sizeof err) != 0) return;
  struct cira_conn *c = registry_find(s, st.guid);
  /* Only a newer registration elsewhere wins (a late notice must not drop a device that came back here). */
  if (c && st.instance && strcmp(st.instance, s->instance) != 0 && (uint64_t)st.updated_ms >= c->connected_ms) {
    char why[200];
    snprintf(why, sizeof why, "device reconnected through instance %.120s", st.instance);
    DMT_INFO(&s->log, "device_taken_over", "guid=%s by=%s", c->guid, st.instance);
    retire(c, why);
  }
  dmt_device_state_free(&st);
}

struct each_ctx {
  struct cira_conn **v;
  size_t n;
};

static void collect(const char *key, void *value, void *ud) {
  struct each_ctx *x = ud;
  struct cira_conn *c = value;
  conn_ref(c);
  x->v[x->n++] = c;
}

void registry_each(struct cira_server *s, void (*fn)(struct cira_conn *c, void *ud), void *ud) {
  struct each_ctx x = {calloc(s->devices.len + 1, sizeof(struct cira_conn *)), 0};
  if (!x.v) return;
  dmt_strmap_foreach(&s->devices, collect, &x);
  for (size_t i = 0; i < x.n; i++) {
    if (x.v[i]->state == CONN_ACTIVE) fn(x.v[i], ud);
    conn_unref(x.v[i]);
  }
  free(x.v);
}
