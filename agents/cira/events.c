/*
 * Events: every connection change, refused login and command outcome is
 * published on the tenant's namespace (schemas/topics.md) and persisted to
 * dmt.events through the database worker, so a consumer that was down can
 * catch up by time range. Events about unknown devices (no tenant) go to the
 * agents-only system namespace.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/mptree.h"
#include "dmt/payloads.h"
#include "dmt/pg.h"
#include "wsman_client.h"

const char *tenant_topic(const char *tenant) { return (!tenant || !*tenant) ? "_default" : tenant; }

static void uuid4(char out[37]) {
  uint8_t b[16];
  RAND_bytes(b, sizeof b);
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
  char ts[32];
  snprintf(ts, sizeof ts, "%.3f", (double)e->ts_ms / 1000.0);
  const char *p[] = {e->id, e->tenant, e->guid[0] ? e->guid : NULL, ts, e->kind, e->action[0] ? e->action : NULL,
                     e->outcome, e->requester[0] ? e->requester : NULL, e->source, e->message, e->data_json};
  char err[256];
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

void event_emit(struct cira_server *s, const char *tenant, const char *guid, const char *kind, const char *action,
                bool success, const char *requester, const char *message, const void *data, size_t data_len) {
  struct event_row *e = calloc(1, sizeof *e);
  if (!e) return;
  uuid4(e->id);
  e->ts_ms = dmt_wall_ms();
  snprintf(e->tenant, sizeof e->tenant, "%s", tenant ? tenant : "");
  snprintf(e->guid, sizeof e->guid, "%s", guid ? guid : "");
  snprintf(e->kind, sizeof e->kind, "%s", kind);
  snprintf(e->action, sizeof e->action, "%s", action ? action : "");
  snprintf(e->outcome, sizeof e->outcome, "%s", success ? "success" : "failure");
  snprintf(e->requester, sizeof e->requester, "%s", requester ? requester : "");
  snprintf(e->source, sizeof e->source, "%s", s->instance);
  snprintf(e->message, sizeof e->message, "%s", message ? message : "");
  if (data && data_len) {
    json_t *j = dmt_mp_buf_to_json(data, data_len);
    e->data_json = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
  }

  struct dmt_event ev = {.id = e->id, .ts_ms = (int64_t)e->ts_ms, .tenant = e->tenant, .guid = guid ? e->guid : NULL,
                         .kind = e->kind, .action = action ? e->action : NULL, .outcome = e->outcome,
                         .requester = requester ? e->requester : NULL, .source = e->source, .message = e->message,
                         .present = DMT_EVENT_TS_MS};
  if (data && data_len) {
    ev.data = (uint8_t *)data;
    ev.data_len = data_len;
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256], topic[256];
  if (!tenant) snprintf(topic, sizeof topic, "dmt/_sys/events/%s", kind);
  else if (guid) snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/events/%s", tenant_topic(tenant), guid, kind);
  else snprintf(topic, sizeof topic, "dmt/v1/%s/events/%s", tenant_topic(tenant), kind);
  if (dmt_event_encode(&ev, &sb, err, sizeof err) == 0) {
    struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1};
    dmt_mqtt_publish(s->mqtt, &p);
  } else {
    DMT_WARN(&s->log, "event_encode_failed", "error=\"%s\"", err);
  }
  msgpack_sbuffer_destroy(&sb);
  if (dmt_db_submit(s->db, insert_event, inserted, e) != 0) inserted(e, -1);
}
