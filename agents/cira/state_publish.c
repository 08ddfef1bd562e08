/*
 * A device's retained state (dmt/v1/<tenant>/devices/<guid>/state) and the
 * devices-table row behind it. Connection changes are written in batches
 * (one UPDATE ... FROM unnest(...) RETURNING per run of connects or
 * disconnects, every cira.batch_ms or 1000 changes), one batch at a time so
 * the writes of a device stay in order. The row decides what is published,
 * so that several instances converge: "connected" once the row names us,
 * "disconnected" only if the row still named us (otherwise the device has
 * moved to another instance, or a surviving peer already released it, and
 * its state is not ours to publish). Every query carries the tenant. Power
 * states learnt from the device update the retained state directly and are
 * "power" events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cira.h"
#include "dmt/payloads.h"
#include "dmt/pg.h"

#define BATCH_MAX 1000


static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void snapshot_take(const struct cira_conn *c, struct state_snapshot *n) {
  const struct cira_device *d = c->dev;
  memset(n, 0, sizeof *n);
  memcpy(n->guid, c->guid, sizeof n->guid);
  if (d) {
    memcpy(n->tenant, d->tenant, sizeof n->tenant);
    memcpy(n->amt_version, d->amt_version, sizeof n->amt_version);
    memcpy(n->mode, d->mode, sizeof n->mode);
    n->hostname = dup_or_null(d->hostname);
    n->friendly_name = dup_or_null(d->friendly_name);
    n->tags = dup_or_null(d->tags);
  }
  n->power_state = c->power_state;
  n->connected_ms = c->connected_ms;
  uint64_t now = dmt_loop_now(c->srv->loop), idle = now > c->last_rx_ms ? now - c->last_rx_ms : 0;
  n->seen_ms = dmt_wall_ms() - idle;
}

void snapshot_release(struct state_snapshot *n) {
  free(n->hostname);
  free(n->friendly_name);
  free(n->tags);
  n->hostname = n->friendly_name = n->tags = NULL;
}

void state_publish(struct cira_server *s, const struct state_snapshot *n) {
  char *tags[64];
  size_t ntags = 0;
  char *tagbuf = n->tags ? strdup(n->tags) : NULL;
  for (char *save = NULL, *t = tagbuf ? strtok_r(tagbuf, "\x1f", &save) : NULL; t && ntags < 64;
       t = strtok_r(NULL, "\x1f", &save))
    tags[ntags++] = t;
  uint64_t now = dmt_wall_ms();
  struct dmt_device_state st = {
      .guid = (char *)n->guid, .tenant = (char *)n->tenant, .connected = n->connected, .instance = s->instance,
      .hostname = n->hostname, .friendly_name = n->friendly_name, .tags = tags, .tags_count = ntags,
      .amt_version = n->amt_version[0] ? (char *)n->amt_version : NULL, .mode = n->mode[0] ? (char *)n->mode : NULL,
      .power_state = n->power_state, .updated_ms = (int64_t)now, .last_seen_ms = (int64_t)(n->seen_ms ? n->seen_ms : now),
      .present = DMT_DEVICE_STATE_CONNECTED | DMT_DEVICE_STATE_POWER_STATE | DMT_DEVICE_STATE_UPDATED_MS |
                 DMT_DEVICE_STATE_LAST_SEEN_MS | DMT_DEVICE_STATE_TAGS};
  if (n->connected_ms) {
    st.last_connected_ms = (int64_t)n->connected_ms;
    st.present |= DMT_DEVICE_STATE_LAST_CONNECTED_MS;
  }
  if (!n->connected) {
    st.last_disconnected_ms = (int64_t)now;
    st.present |= DMT_DEVICE_STATE_LAST_DISCONNECTED_MS;
    st.disconnect_reason = n->reason[0] ? (char *)n->reason : NULL;
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256], topic[192];
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/state", dmt_topic_tenant(n->tenant), n->guid);
  if (dmt_device_state_encode(&st, &sb, err, sizeof err) == 0) {
    struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1, .retain = true};
    dmt_mqtt_publish(s->mqtt, &p);
  } else {
    DMT_WARN(&s->log, "state_encode_failed", "guid=%s error=\"%s\"", n->guid, err);
  }
  msgpack_sbuffer_destroy(&sb);
  free(tagbuf);
}

void state_publish_conn(struct cira_conn *c) {
  struct state_snapshot n;
  snapshot_take(c, &n);
  n.connected = true;
  state_publish(c->srv, &n);
  snapshot_release(&n);
}

void state_delete(struct cira_server *s, const char *tenant, const char *guid) {
  char topic[192];
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/state", dmt_topic_tenant(tenant), guid);
  struct dmt_mqtt_publish p = {.topic = topic, .payload = "", .len = 0, .qos = 1, .retain = true};
  dmt_mqtt_publish(s->mqtt, &p);
}

void state_power_observed(struct cira_conn *c, int64_t power, int64_t os, const char *how, const char *requester) {
  if (power <= 0 || power > 65535 || c->state != CONN_ACTIVE) return;
  c->os_power_state = (uint8_t)(os >= 0 && os <= 255 ? os : 0);
  if (c->power_state == (uint16_t)power) return;
  uint16_t before = c->power_state;
  c->power_state = (uint16_t)power;
  state_publish_conn(c);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 3);
  shape_str(&pk, "from");
  msgpack_pack_int(&pk, before);
  shape_str(&pk, "to");
  msgpack_pack_int64(&pk, power);
  shape_str(&pk, "how");
  shape_str(&pk, how);
  char msg[96];
  snprintf(msg, sizeof msg, "power state %u -> %lld (%s)", before, (long long)power, how);
  event_emit(c->srv, c->dev->tenant, c->guid, "power", how, true, requester, msg, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
}

/* ---- batched connection-state writes ---- */

struct conn_op {
  struct state_snapshot snap;
  struct cira_conn *conn; /* connects: referenced until published */
  bool applied;
  bool quiet;             /* a re-assertion: state again, no new "connected" event */
};

struct conn_batch {
  struct cira_server *srv;
  char instance[128];
  struct conn_op *ops;
  size_t n, cap;
  char error[256];
};

static struct conn_batch *batch_new(struct cira_server *s) {
  struct conn_batch *b = calloc(1, sizeof *b);
  if (b) {
    b->srv = s;
    snprintf(b->instance, sizeof b->instance, "%s", s->instance);
  }
  return b;
}

static void batch_free(struct conn_batch *b) {
  if (!b) return;
  for (size_t i = 0; i < b->n; i++) {
    snapshot_release(&b->ops[i].snap);
    if (b->ops[i].conn) conn_unref(b->ops[i].conn);
  }
  free(b->ops);
  free(b);
}

/* PostgreSQL array literal of quoted elements. */
void pg_array_append(struct dmt_buf *a, const char *v) {
  dmt_buf_append(a, dmt_buf_size(a) ? ",\"" : "{\"", 2);
  for (; *v; v++) {
    if (*v == '"' || *v == '\\') dmt_buf_append_u8(a, '\\');
    dmt_buf_append_u8(a, (uint8_t)*v);
  }
  dmt_buf_append_u8(a, '"');
}

static int run_ops(PGconn *db, struct conn_batch *b, size_t from, size_t to) {
  bool connected = b->ops[from].snap.connected;
  struct dmt_buf guids, tenants;
  dmt_buf_init(&guids, 0);
  dmt_buf_init(&tenants, 0);
  for (size_t i = from; i < to; i++) {
    pg_array_append(&guids, b->ops[i].snap.guid);
    pg_array_append(&tenants, b->ops[i].snap.tenant);
  }
  dmt_buf_append(&guids, "}", 2);
  dmt_buf_append(&tenants, "}", 2);
  const char *p[] = {(const char *)guids.data, (const char *)tenants.data, b->instance};
  PGresult *r = NULL;
  int rc = dmt_pg_exec(db,
                       connected
                           ? "UPDATE dmt.devices d SET connection_status = true, mps_instance = $3, "
                             "last_connected = now(), last_seen = now() FROM unnest($1::uuid[], $2::varchar[]) "
                             "AS u(guid, tenant) WHERE d.guid = u.guid AND d.tenant_id = u.tenant RETURNING d.guid::text"
                           : "UPDATE dmt.devices d SET connection_status = false, mps_instance = NULL, "
                             "last_disconnected = now() FROM unnest($1::uuid[], $2::varchar[]) AS u(guid, tenant) "
                             "WHERE d.guid = u.guid AND d.tenant_id = u.tenant AND d.mps_instance = $3 "
                             "RETURNING d.guid::text",
                       3, p, &r, b->error, sizeof b->error);
  dmt_buf_free(&guids);
  dmt_buf_free(&tenants);
  if (rc != DMT_PG_OK) return rc;
  struct dmt_strmap hit;
  dmt_strmap_init(&hit);
  for (int i = 0; i < PQntuples(r); i++) dmt_strmap_put(&hit, PQgetvalue(r, i, 0), NULL, NULL);
  for (size_t i = from; i < to; i++) b->ops[i].applied = dmt_strmap_has(&hit, b->ops[i].snap.guid);
  dmt_strmap_free(&hit);
  PQclear(r);
  return DMT_PG_OK;
}

static int write_batch(PGconn *db, void *arg) {
  struct conn_batch *b = arg;
  /* Runs of the same kind, in order, so a connect then disconnect of one device lands as it happened. */
  if (dmt_pg_exec(db, "BEGIN", 0, NULL, NULL, b->error, sizeof b->error) != DMT_PG_OK) return DMT_PG_CONN_LOST;
  for (size_t from = 0; from < b->n;) {
    size_t to = from + 1;
    while (to < b->n && b->ops[to].snap.connected == b->ops[from].snap.connected) to++;
    int rc = run_ops(db, b, from, to);
    if (rc != DMT_PG_OK) {
      char ignored[64];
      dmt_pg_exec(db, "ROLLBACK", 0, NULL, NULL, ignored, sizeof ignored);
      return rc;
    }
    from = to;
  }
  return dmt_pg_exec(db, "COMMIT", 0, NULL, NULL, b->error, sizeof b->error);
}

static void batch_written(void *arg, int rc) {
  struct conn_batch *b = arg;
  struct cira_server *s = b->srv;
  if (rc != DMT_PG_OK)
    DMT_ERROR(&s->log, "connection_state_write_failed", "devices=%zu error=\"%s\"", b->n, b->error);
  for (size_t i = 0; i < b->n; i++) {
    struct conn_op *op = &b->ops[i];
    if (!op->applied && rc == DMT_PG_OK) continue; /* not ours (any more): someone else publishes */
    if (op->snap.connected) {
      struct cira_conn *c = op->conn;
      if (c->state != CONN_ACTIVE || !c->registered) continue; /* gone meanwhile: its disconnect follows */
      state_publish_conn(c);
      if (!op->quiet)
        event_emit(s, op->snap.tenant, op->snap.guid, "connected", "cira_connect", true, NULL, c->peer, NULL, 0);
    } else {
      state_publish(s, &op->snap);
      event_emit(s, op->snap.tenant, op->snap.guid, "disconnected", "cira_disconnect", true, NULL, op->snap.reason,
                 NULL, 0);
    }
  }
  batch_free(b);
  s->batch_running = false;
  if (s->batch && s->batch->n) state_flush_batch(s);
}

void state_flush_batch(struct cira_server *s) {
  dmt_timer_stop(s->loop, &s->batch_timer);
  if (s->batch_running || !s->batch || !s->batch->n) return;
  struct conn_batch *b = s->batch;
  s->batch = NULL;
  s->batch_running = true;
  if (dmt_db_submit(s->db, write_batch, batch_written, b) != 0) {
    DMT_WARN(&s->log, "db_queue_full", "write=connection_state devices=%zu", b->n);
    batch_written(b, DMT_PG_ERROR);
  }
}

static struct conn_op *queue_op(struct cira_conn *c, bool connected, const char *reason) {
  struct cira_server *s = c->srv;
  if (!s->batch && !(s->batch = batch_new(s))) return NULL;
  struct conn_batch *b = s->batch;
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    struct conn_op *ops = realloc(b->ops, cap * sizeof *ops);
    if (!ops) return NULL;
    b->ops = ops;
    b->cap = cap;
  }
  struct conn_op *op = &b->ops[b->n++];
  memset(op, 0, sizeof *op);
  snapshot_take(c, &op->snap);
  op->snap.connected = connected;
  snprintf(op->snap.reason, sizeof op->snap.reason, "%s", reason ? reason : "");
  if (connected) {
    op->conn = c;
    conn_ref(c);
  }
  return op;
}

static void schedule(struct cira_server *s) {
  if (s->batch && s->batch->n >= BATCH_MAX) state_flush_batch(s);
  else if (!dmt_timer_armed(&s->batch_timer)) dmt_timer_start(s->loop, &s->batch_timer, s->set.batch_ms);
}

void state_connection_changed(struct cira_conn *c, bool connected, const char *reason) {
  if (queue_op(c, connected, reason)) schedule(c->srv);
}

void state_reassert(struct cira_conn *c) {
  struct conn_op *op = queue_op(c, true, NULL);
  if (!op) return;
  op->quiet = true;
  schedule(c->srv);
}

void state_batch_free(struct cira_server *s) {
  batch_free(s->batch);
  s->batch = NULL;
}
