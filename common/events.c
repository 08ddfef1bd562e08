/*
 * Event emission shared by agents (see dmt/events.h): one record, published
 * on MQTT and inserted into dmt.events by a database worker. The INSERT is
 * idempotent on the event id, so a job retried after a lost connection
 * cannot duplicate the row.
 */
#include "dmt/events.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/db.h"
#include "dmt/evloop.h"
#include "dmt/mptree.h"
#include "dmt/mqtt.h"
#include "dmt/payloads.h"
#include "dmt/pg.h"

const char *dmt_topic_tenant(const char *tenant) { return (!tenant || !*tenant) ? "_default" : tenant; }

void dmt_uuid4(char out[37]) {
  uint8_t b[16];
  if (RAND_bytes(b, sizeof b) != 1) memset(b, 0, sizeof b);
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
           b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

struct event_row {
  char id[37], tenant[65], guid[37], kind[32], action[64], outcome[16], requester[256], source[128], message[1024];
  uint64_t ts_ms;
  char *data_json;
};

static int insert_event(PGconn *db, void *arg) {
  struct event_row *e = arg;
  char ts[32], err[256];
  snprintf(ts, sizeof ts, "%.3f", (double)e->ts_ms / 1000.0);
  const char *p[] = {e->id, e->tenant, e->guid[0] ? e->guid : NULL, ts, e->kind, e->action[0] ? e->action : NULL,
                     e->outcome, e->requester[0] ? e->requester : NULL, e->source, e->message, e->data_json};
  return dmt_pg_exec(db,
                     "INSERT INTO dmt.events (id, tenant_id, guid, ts, kind, action, outcome, requester, source, "
                     "message, data) VALUES ($1, $2, $3, to_timestamp($4), $5, $6, $7, $8, $9, $10, $11::jsonb) "
                     "ON CONFLICT (id) DO NOTHING",
                     11, p, NULL, err, sizeof err);
}

static void inserted(void *arg, int rc) {
  struct event_row *e = arg;
  free(e->data_json);
  free(e);
}

int dmt_event_emit(struct dmt_mqtt *mqtt, struct dmt_db *db, const struct dmt_event_spec *s) {
  struct event_row *e = calloc(1, sizeof *e);
  if (!e) return -1;
  dmt_uuid4(e->id);
  e->ts_ms = dmt_wall_ms();
  snprintf(e->tenant, sizeof e->tenant, "%s", s->tenant ? s->tenant : "");
  snprintf(e->guid, sizeof e->guid, "%s", s->guid ? s->guid : "");
  snprintf(e->kind, sizeof e->kind, "%s", s->kind);
  snprintf(e->action, sizeof e->action, "%s", s->action ? s->action : "");
  snprintf(e->outcome, sizeof e->outcome, "%s", s->success ? "success" : "failure");
  snprintf(e->requester, sizeof e->requester, "%s", s->requester ? s->requester : "");
  snprintf(e->source, sizeof e->source, "%s", s->source ? s->source : "");
  snprintf(e->message, sizeof e->message, "%s", s->message ? s->message : "");
  if (s->data && s->data_len) {
    json_t *j = dmt_mp_buf_to_json(s->data, s->data_len);
    e->data_json = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
  }
  struct dmt_event ev = {.id = e->id, .ts_ms = (int64_t)e->ts_ms, .tenant = e->tenant,
                         .guid = s->guid ? e->guid : NULL, .kind = e->kind, .action = s->action ? e->action : NULL,
                         .outcome = e->outcome, .requester = s->requester ? e->requester : NULL,
                         .source = e->source, .message = e->message, .present = DMT_EVENT_TS_MS};
  if (s->data && s->data_len) {
    ev.data = (uint8_t *)s->data;
    ev.data_len = s->data_len;
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256], topic[256];
  int rc = dmt_event_encode(&ev, &sb, err, sizeof err);
  if (rc == 0 && mqtt) {
    if (!s->tenant) snprintf(topic, sizeof topic, "dmt/_sys/events/%s", e->kind);
    else if (s->guid)
      snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/events/%s", dmt_topic_tenant(s->tenant), e->guid, e->kind);
    else snprintf(topic, sizeof topic, "dmt/v1/%s/events/%s", dmt_topic_tenant(s->tenant), e->kind);
    struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1};
    dmt_mqtt_publish(mqtt, &p);
  }
  msgpack_sbuffer_destroy(&sb);
  if (rc != 0 || !db || dmt_db_submit(db, insert_event, inserted, e) != 0) inserted(e, -1);
  return rc == 0 ? 0 : -1;
}
