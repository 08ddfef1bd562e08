/*
 * Tenant-level "config" events (schemas/topics.md): whenever a profile, CIRA
 * config, domain, wireless, 802.1x or proxy config is created, changed or
 * deleted, a dmt.events row is written in the same transaction as the change
 * (so the log never shows a change that was rolled back, nor misses one that
 * committed) and, once the response is out, the same event is published on
 * dmt/v1/<tenant>/events/config (schemas/payloads/event.json).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/evloop.h"
#include "dmt/events.h"
#include "dmt/mptree.h"
#include "dmt/payloads.h"

bool br_event_config(PGconn *c, struct br_txn *t, struct br_out *o, const char *object_type, const char *name,
                     const char *operation) {
  struct br_server *s = t->srv;
  char id[37], action[64], ts[32], message[600];
  dmt_uuid4(id);
  uint64_t now = dmt_wall_ms();
  snprintf(action, sizeof action, "%s_%s", object_type, operation);
  snprintf(ts, sizeof ts, "%.3f", (double)now / 1000.0);
  snprintf(message, sizeof message, "%s %s %s", object_type, name, operation);
  json_t *data = json_pack("{s:s,s:s,s:s}", "type", object_type, "name", name, "operation", operation);
  char *data_text = json_dumps(data, JSON_COMPACT);
  const char *p[] = {id, t->who.tenant, ts, action, t->who.subject[0] ? t->who.subject : NULL, s->instance, message,
                     data_text};
  bool ok = br_sql_ok(c, o,
                      "INSERT INTO dmt.events (id, tenant_id, ts, kind, action, outcome, requester, source, message, data) "
                      "VALUES ($1::uuid, $2, to_timestamp($3::double precision), 'config', $4, 'success', $5, $6, $7, $8::jsonb)",
                      8, p);
  free(data_text);
  if (!ok) {
    json_decref(data);
    return false;
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  dmt_json_to_mp(data, &pk);
  json_decref(data);
  struct dmt_event ev = {.id = id, .ts_ms = (int64_t)now, .tenant = t->who.tenant, .kind = "config", .action = action,
                         .outcome = "success", .requester = t->who.subject[0] ? t->who.subject : NULL,
                         .source = s->instance, .message = message, .data = (uint8_t *)sb.data, .data_len = sb.size,
                         .present = DMT_EVENT_TS_MS};
  msgpack_sbuffer out;
  msgpack_sbuffer_init(&out);
  char err[256];
  if (dmt_event_encode(&ev, &out, err, sizeof err) == 0) {
    char topic[160];
    snprintf(topic, sizeof topic, "dmt/v1/%s/events/config", dmt_topic_tenant(t->who.tenant));
    free(o->event_topic);
    free(o->event_msg);
    o->event_topic = strdup(topic);
    o->event_msg = malloc(out.size);
    if (o->event_msg) memcpy(o->event_msg, out.data, out.size);
    o->event_len = o->event_msg ? out.size : 0;
  }
  msgpack_sbuffer_destroy(&out);
  msgpack_sbuffer_destroy(&sb);
  return true;
}

void br_event_publish(struct br_server *s, struct br_out *o) {
  if (s->mqtt && o->event_topic && o->event_msg) {
    struct dmt_mqtt_publish p = {.topic = o->event_topic, .payload = o->event_msg, .len = o->event_len, .qos = 1};
    dmt_mqtt_publish(s->mqtt, &p);
  }
  free(o->event_topic);
  free(o->event_msg);
  o->event_topic = NULL;
  o->event_msg = NULL;
  o->event_len = 0;
}
