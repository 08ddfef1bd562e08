/*
 * Events: every connection change, refused login, power change and command
 * outcome is published at once on the tenant's namespace (schemas/topics.md)
 * and persisted to dmt.events, so a consumer that was down can catch up by
 * time range. Rows are inserted in batches (one INSERT ... SELECT FROM
 * unnest(...) per 500 events or per cira.batch_ms), which keeps a reconnect
 * storm of 100k devices from turning into 100k round trips. Events about a
 * GUID nobody provisioned (no tenant) go to the agents-only dmt/_sys/events
 * namespace and are stored under DMT's default tenant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cira.h"
#include "dmt/events.h"
#include "dmt/mptree.h"
#include "dmt/payloads.h"
#include "dmt/pg.h"

#define EVENT_BATCH 500

struct event_batch {
  struct dmt_buf col[11]; /* array literals: id tenant guid ts kind action outcome requester source message data */
  size_t n;
};


/* A NULL element when v is NULL, else the quoted value. */
static void append_nullable(struct dmt_buf *a, const char *v) {
  if (v) {
    pg_array_append(a, v);
    return;
  }
  dmt_buf_append(a, dmt_buf_size(a) ? ",NULL" : "{NULL", 5);
}

static void batch_free(struct event_batch *b) {
  if (!b) return;
  for (int i = 0; i < 11; i++) dmt_buf_free(&b->col[i]);
  free(b);
}

static int insert_events(PGconn *db, void *arg) {
  struct event_batch *b = arg;
  const char *p[11];
  for (int i = 0; i < 11; i++) p[i] = (const char *)b->col[i].data;
  char err[256];
  return dmt_pg_exec(db,
                     "INSERT INTO dmt.events (id, tenant_id, guid, ts, kind, action, outcome, requester, source, "
                     "message, data) SELECT id, tenant, guid, to_timestamp(ts), kind, action, outcome, requester, "
                     "source, message, data FROM unnest($1::uuid[], $2::varchar[], $3::uuid[], $4::float8[], "
                     "$5::varchar[], $6::varchar[], $7::varchar[], $8::varchar[], $9::varchar[], $10::varchar[], "
                     "$11::jsonb[]) AS u(id, tenant, guid, ts, kind, action, outcome, requester, source, message, data) "
                     "ON CONFLICT (id) DO NOTHING",
                     11, p, NULL, err, sizeof err);
}

static void inserted(void *arg, int rc) { batch_free(arg); }

static void flush(struct cira_server *s) {
  struct event_batch *b = s->events;
  s->events = NULL;
  dmt_timer_stop(s->loop, &s->events_timer);
  if (!b || !b->n) {
    batch_free(b);
    return;
  }
  for (int i = 0; i < 11; i++) dmt_buf_append(&b->col[i], "}", 2);
  if (dmt_db_submit(s->db, insert_events, inserted, b) != 0) {
    DMT_WARN(&s->log, "db_queue_full", "write=events rows=%zu", b->n);
    batch_free(b);
  }
}

static void on_flush_timer(struct dmt_loop *loop, struct dmt_timer *t) { flush(t->ud); }

void events_init(struct cira_server *s) { dmt_timer_init(&s->events_timer, on_flush_timer, s); }

void events_flush(struct cira_server *s) {
  if (s->events) flush(s);
}

static void persist(struct cira_server *s, const struct dmt_event *ev, const char *data_json) {
  if (!s->events) {
    if (!(s->events = calloc(1, sizeof *s->events))) return;
    for (int i = 0; i < 11; i++) dmt_buf_init(&s->events->col[i], 0);
  }
  struct event_batch *b = s->events;
  char ts[32];
  snprintf(ts, sizeof ts, "%.3f", (double)ev->ts_ms / 1000.0);
  pg_array_append(&b->col[0], ev->id);
  pg_array_append(&b->col[1], ev->tenant);
  append_nullable(&b->col[2], ev->guid);
  pg_array_append(&b->col[3], ts);
  pg_array_append(&b->col[4], ev->kind);
  append_nullable(&b->col[5], ev->action);
  pg_array_append(&b->col[6], ev->outcome);
  append_nullable(&b->col[7], ev->requester);
  append_nullable(&b->col[8], ev->source);
  append_nullable(&b->col[9], ev->message);
  append_nullable(&b->col[10], data_json);
  if (++b->n >= EVENT_BATCH) {
    flush(s);
  } else if (!dmt_timer_armed(&s->events_timer)) {
    dmt_timer_start(s->loop, &s->events_timer, s->set.batch_ms);
  }
}

void event_emit(struct cira_server *s, const char *tenant, const char *guid, const char *kind, const char *action,
                bool success, const char *requester, const char *message, const void *data, size_t data_len) {
  char id[37], msg[1025];
  dmt_uuid4(id);
  snprintf(msg, sizeof msg, "%s", message ? message : "");
  struct dmt_event ev = {.id = id, .ts_ms = (int64_t)dmt_wall_ms(), .tenant = (char *)(tenant ? tenant : ""),
                         .guid = (char *)guid, .kind = (char *)kind, .action = (char *)action,
                         .outcome = success ? "success" : "failure",
                         .requester = requester && *requester ? (char *)requester : NULL, .source = s->instance,
                         .message = msg, .present = DMT_EVENT_TS_MS};
  if (data && data_len) {
    ev.data = (uint8_t *)data;
    ev.data_len = data_len;
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256], topic[256];
  if (!tenant) snprintf(topic, sizeof topic, "dmt/_sys/events/%s", kind);
  else if (guid) snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/events/%s", dmt_topic_tenant(tenant), guid, kind);
  else snprintf(topic, sizeof topic, "dmt/v1/%s/events/%s", dmt_topic_tenant(tenant), kind);
  if (dmt_event_encode(&ev, &sb, err, sizeof err) == 0) {
    struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1};
    dmt_mqtt_publish(s->mqtt, &p);
  } else {
    DMT_WARN(&s->log, "event_encode_failed", "kind=%s error=\"%s\"", kind, err);
  }
  msgpack_sbuffer_destroy(&sb);
  char *data_json = NULL;
  if (data && data_len) {
    json_t *j = dmt_mp_buf_to_json(data, data_len);
    data_json = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
  }
  persist(s, &ev, data_json);
  free(data_json);
}
