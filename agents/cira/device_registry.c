/*
 * The registry of authenticated devices (GUID -> connection) and what hangs
 * off it: replacing an older connection of the same GUID only after the new
 * one authenticated, the retained state and connected/disconnected events,
 * per-device command subscriptions, the devices-table updates, and last-seen
 * batching (one UPDATE per period for all devices, never one per keepalive).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/apf.h"
#include "dmt/payloads.h"
#include "dmt/pg.h"
#include "wsman_client.h"

#define LASTSEEN_BATCH 4000

struct cira_conn *registry_find(struct cira_server *s, const char *guid) { return dmt_strmap_get(&s->devices, guid); }

/* What a state message says about a device, copied so it can outlive the connection. */
struct snapshot {
  struct cira_server *srv;
  struct cira_conn *conn; /* connected case: referenced until the DB update completes */
  char guid[37], tenant[65], hostname[64], friendly_name[64], tags[512], amt_version[32], mode[8];
  uint16_t power_state;
  uint64_t connected_ms;
  bool connected;
  char reason[128];
  long affected;
};

static void snapshot_of(struct cira_conn *c, struct snapshot *n) {
  n->srv = c->srv;
  memcpy(n->guid, c->guid, sizeof n->guid);
  memcpy(n->tenant, c->tenant, sizeof n->tenant);
  memcpy(n->hostname, c->hostname, sizeof n->hostname);
  memcpy(n->friendly_name, c->friendly_name, sizeof n->friendly_name);
  memcpy(n->tags, c->tags, sizeof n->tags);
  memcpy(n->amt_version, c->amt_version, sizeof n->amt_version);
  memcpy(n->mode, c->mode, sizeof n->mode);
  n->power_state = c->power_state;
  n->connected_ms = c->connected_ms;
}

static void publish_snapshot(const struct snapshot *n) {
  struct cira_server *s = n->srv;
  char *tags[64];
  size_t ntags = 0;
  char tagbuf[sizeof n->tags];
  snprintf(tagbuf, sizeof tagbuf, "%s", n->tags);
  for (char *save = NULL, *t = tagbuf[0] ? strtok_r(tagbuf, "\x1f", &save) : NULL; t && ntags < 64;
       t = strtok_r(NULL, "\x1f", &save))
    tags[ntags++] = t;
  uint64_t now = dmt_wall_ms();
  struct dmt_device_state st = {
      .guid = (char *)n->guid, .tenant = (char *)n->tenant, .connected = n->connected, .instance = s->instance,
      .hostname = n->hostname[0] ? (char *)n->hostname : NULL,
      .friendly_name = n->friendly_name[0] ? (char *)n->friendly_name : NULL, .tags = tags, .tags_count = ntags,
      .amt_version = n->amt_version[0] ? (char *)n->amt_version : NULL, .mode = n->mode[0] ? (char *)n->mode : NULL,
      .power_state = n->power_state, .updated_ms = (int64_t)now, .last_connected_ms = (int64_t)n->connected_ms,
      .last_seen_ms = (int64_t)now,
      .present = DMT_DEVICE_STATE_CONNECTED | DMT_DEVICE_STATE_POWER_STATE | DMT_DEVICE_STATE_UPDATED_MS |
                 DMT_DEVICE_STATE_LAST_CONNECTED_MS | DMT_DEVICE_STATE_LAST_SEEN_MS | DMT_DEVICE_STATE_TAGS};
  if (!n->connected) {
    st.last_disconnected_ms = (int64_t)now;
    st.present |= DMT_DEVICE_STATE_LAST_DISCONNECTED_MS;
    st.disconnect_reason = n->reason[0] ? (char *)n->reason : NULL;
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256], topic[192];
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/state", tenant_topic(n->tenant), n->guid);
  if (dmt_device_state_encode(&st, &sb, err, sizeof err) == 0) {
    struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1, .retain = true};
    dmt_mqtt_publish(s->mqtt, &p);
  } else {
    DMT_WARN(&s->log, "state_encode_failed", "guid=%s error=\"%s\"", n->guid, err);
  }
  msgpack_sbuffer_destroy(&sb);
}

void registry_publish_state(struct cira_conn *c, bool connected, const char *reason) {
  struct snapshot n = {0};
  snapshot_of(c, &n);
  n.connected = connected;
  snprintf(n.reason, sizeof n.reason, "%s", reason ? reason : "");
  publish_snapshot(&n);
}

/*
 * The devices-table update decides what is published, so that states from
 * several instances converge: "connected" once our instance owns the row,
 * "disconnected" only if the row still names us (otherwise the device has
 * already moved to another instance and its state is theirs to publish).
 */
static int write_connection(PGconn *db, void *arg) {
  struct snapshot *n = arg;
  const char *p[] = {n->guid, n->tenant, n->srv->instance};
  char err[256];
  PGresult *r;
  int rc = dmt_pg_exec(db,
                       n->connected ? "UPDATE dmt.devices SET connection_status = true, mps_instance = $3, "
                                      "last_connected = now(), last_seen = now() WHERE guid = $1 AND tenant_id = $2"
                                    : "UPDATE dmt.devices SET connection_status = false, mps_instance = NULL, "
                                      "last_disconnected = now() WHERE guid = $1 AND tenant_id = $2 AND mps_instance = $3",
                       3, p, &r, err, sizeof err);
  if (rc == DMT_PG_OK) {
    n->affected = atol(PQcmdTuples(r));
    PQclear(r);
  }
  return rc;
}

static void written(void *arg, int rc) {
  struct snapshot *n = arg;
  struct cira_server *s = n->srv;
  if (n->connected) {
    struct cira_conn *c = n->conn;
    if (c->state == CONN_ACTIVE && c->registered) {
      snapshot_of(c, n); /* newest facts */
      publish_snapshot(n);
      event_emit(s, n->tenant, n->guid, "connected", "cira_connect", true, NULL, c->peer, NULL, 0);
    }
    conn_unref(c);
  } else if (n->affected > 0 || rc != DMT_PG_OK) {
    publish_snapshot(n);
    event_emit(s, n->tenant, n->guid, "disconnected", "cira_disconnect", true, NULL, n->reason, NULL, 0);
  }
  free(n);
}

static void update_connection(struct cira_conn *c, bool connected, const char *reason) {
  struct snapshot *n = calloc(1, sizeof *n);
  if (!n) return;
  snapshot_of(c, n);
  n->connected = connected;
  snprintf(n->reason, sizeof n->reason, "%s", reason ? reason : "");
  if (connected) {
    n->conn = c;
    conn_ref(c);
  }
  if (dmt_db_submit(c->srv->db, write_connection, written, n) != 0) {
    DMT_WARN(&c->srv->log, "db_queue_full", "guid=%s write=connection_status", c->guid);
    written(n, DMT_PG_ERROR);
  }
}

void registry_register(struct cira_conn *c) {
  struct cira_server *s = c->srv;
  struct cira_conn *old = dmt_strmap_get(&s->devices, c->guid);
  if (old && old != c) {
    /* The newest authenticated connection wins; the old one leaves quietly (no disconnected state). */
    old->replaced = true;
    old->registered = false;
    dmt_strmap_del(&s->devices, c->guid);
    commands_subscribe(old, false);
    conn_close(old, DMT_APF_DISC_BY_APPLICATION, "replaced by a newer connection of the same device");
  }
  dmt_strmap_put(&s->devices, c->guid, c, NULL);
  c->registered = true;
  c->state = CONN_ACTIVE;
  c->connected_ms = dmt_wall_ms();
  s->count.authenticated++;
  dmt_timer_start(s->loop, &c->timer, 3000u * s->keepalive_s);
  dmt_apf_put_userauth_success(&c->out);
  conn_flush(c);
  commands_subscribe(c, true);
  update_connection(c, true, NULL);
  DMT_INFO(&s->log, "device_connected", "guid=%s tenant=%s peer=%s", c->guid, tenant_topic(c->tenant), c->peer);
}

void registry_unregister(struct cira_conn *c, const char *reason) {
  struct cira_server *s = c->srv;
  if (c->replaced || !c->registered) return;
  c->registered = false;
  if (dmt_strmap_get(&s->devices, c->guid) == c) dmt_strmap_del(&s->devices, c->guid);
  dmt_strmap_del(&s->lastseen, c->guid);
  commands_subscribe(c, false);
  if (s->shutting_down) return; /* released in bulk by instances_release_own() */
  update_connection(c, false, reason);
  DMT_INFO(&s->log, "device_disconnected", "guid=%s reason=\"%s\"", c->guid, reason);
}

void registry_touch(struct cira_conn *c) {
  if (!dmt_strmap_has(&c->srv->lastseen, c->guid)) dmt_strmap_put(&c->srv->lastseen, c->guid, NULL, NULL);
}

struct lastseen_batch {
  char *guids; /* PostgreSQL array literal */
  char instance[128];
};

static int write_lastseen(PGconn *db, void *arg) {
  struct lastseen_batch *b = arg;
  const char *p[] = {b->guids, b->instance};
  char err[256];
  return dmt_pg_exec(db, "UPDATE dmt.devices SET last_seen = now() WHERE guid = ANY($1::uuid[]) AND mps_instance = $2",
                     2, p, NULL, err, sizeof err);
}

static void lastseen_written(void *arg, int rc) {
  struct lastseen_batch *b = arg;
  free(b->guids);
  free(b);
}

struct collect {
  struct cira_server *s;
  struct dmt_buf arr;
  size_t n;
};

static void submit_batch(struct collect *col) {
  if (!col->n) return;
  dmt_buf_append(&col->arr, "}", 2); /* with NUL */
  struct lastseen_batch *b = calloc(1, sizeof *b);
  b->guids = (char *)col->arr.data; /* take the buffer */
  snprintf(b->instance, sizeof b->instance, "%s", col->s->instance);
  dmt_buf_init(&col->arr, 0);
  col->n = 0;
  if (dmt_db_submit(col->s->db, write_lastseen, lastseen_written, b) != 0) lastseen_written(b, -1);
}

static void collect_guid(const char *guid, void *value, void *ud) {
  struct collect *col = ud;
  dmt_buf_append(&col->arr, col->n ? "," : "{", 1);
  dmt_buf_append(&col->arr, guid, strlen(guid));
  if (++col->n == LASTSEEN_BATCH) submit_batch(col);
}

void registry_flush_lastseen(struct cira_server *s) {
  if (s->lastseen.len == 0) return;
  struct collect col = {s, {0}, 0};
  dmt_buf_init(&col.arr, 0);
  dmt_strmap_foreach(&s->lastseen, collect_guid, &col);
  submit_batch(&col);
  dmt_buf_free(&col.arr);
  dmt_strmap_free(&s->lastseen);
}
