/*
 * Log verbs: the device's audit log (AMT_AuditLog.ReadRecords, newest
 * first, {totalCnt, records}) and event log (AMT_MessageLog
 * PositionToFirstRecord + GetRecords, an array), decoded from AMT's binary
 * records into DMT's field names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command.h"
#include "dmt/amt_logs.h"
#include "dmt/mptree.h"

static void pack_str(msgpack_packer *pk, const char *s) { msgpack_pack_str_with_body(pk, s, strlen(s)); }

static void iso_time(uint32_t ts, char out[32]) {
  time_t t = (time_t)ts;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

static void pack_kv_int(msgpack_packer *pk, const char *k, int64_t v) {
  pack_str(pk, k);
  msgpack_pack_int64(pk, v);
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v) {
  pack_str(pk, k);
  pack_str(pk, v);
}

/* ---- audit log ---- */

static void audit_read(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  const msgpack_object *out = dmt_mp_get(wsman_body(call), "ReadRecords_OUTPUT");
  int64_t total = 0;
  dmt_mp_int(dmt_mp_get(out, "TotalRecordCount"), &total);
  const msgpack_object *recs = dmt_mp_get(out, "EventRecords");
  size_t n = dmt_mp_list_len(recs);
  struct dmt_audit_record decoded[16];
  size_t ok = 0;
  for (size_t i = 0; i < n && ok < 16; i++) {
    char b64[1024];
    uint8_t raw[768];
    int len;
    if (dmt_mp_text(dmt_mp_list_at(recs, i), b64, sizeof b64) && (len = dmt_base64_decode(b64, raw, sizeof raw)) > 0 &&
        dmt_audit_record_decode(raw, (size_t)len, &decoded[ok]) == 0)
      ok++;
  }
  msgpack_packer *pk = &c->pk;
  msgpack_pack_map(pk, 2);
  pack_kv_int(pk, "totalCnt", total);
  pack_str(pk, "records");
  msgpack_pack_array(pk, ok);
  for (size_t k = ok; k-- > 0;) { /* newest first */
    const struct dmt_audit_record *r = &decoded[k];
    char when[32], ex[80] = "";
    iso_time(r->timestamp, when);
    for (unsigned b = 0; b < r->ex_len && b < 32; b++) snprintf(ex + 2 * b, 3, "%02x", r->ex[b]);
    msgpack_pack_map(pk, 11);
    pack_kv_int(pk, "AuditAppID", r->app_id);
    pack_kv_int(pk, "EventID", r->event_id);
    pack_kv_int(pk, "InitiatorType", r->initiator_type);
    pack_kv_str(pk, "AuditApp", dmt_audit_app_name(r->app_id));
    pack_kv_str(pk, "Event", dmt_audit_event_name(r->app_id, r->event_id));
    pack_kv_str(pk, "Initiator", r->initiator_type == 2 ? "Local" : r->initiator);
    pack_kv_str(pk, "Time", when);
    pack_kv_int(pk, "MCLocationType", r->mc_location_type);
    pack_kv_str(pk, "NetAddress", r->net_address);
    pack_kv_str(pk, "Ex", ex);
    pack_str(pk, "ExStr");
    msgpack_pack_nil(pk);
  }
  cmd_done(c, 200, c->acc.data, c->acc.size);
}

void verb_audit_log(struct cmd *c) {
  int64_t start = 0;
  cmd_arg_int(c, "start_index", &start);
  if (start < 0) {
    cmd_fail(c, 400, "bad_request", "start_index must be 0 or more");
    return;
  }
  char idx[24];
  snprintf(idx, sizeof idx, "%lld", (long long)start + 1); /* AMT numbers records from 1 */
  struct dmt_wsman_param p[] = {{"StartIndex", idx, false}};
  cmd_invoke(c, "AMT_AuditLog", "ReadRecords", p, 1, audit_read);
}

/* ---- event log ---- */

static void events_read(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  const msgpack_object *recs = dmt_mp_path(wsman_body(call), "GetRecords_OUTPUT.RecordArray");
  size_t n = dmt_mp_list_len(recs);
  msgpack_packer *pk = &c->pk;
  msgpack_pack_array(pk, n);
  for (size_t i = 0; i < n; i++) {
    char b64[64];
    uint8_t raw[48];
    struct dmt_event_record r = {0};
    if (!dmt_mp_text(dmt_mp_list_at(recs, i), b64, sizeof b64) || dmt_base64_decode(b64, raw, sizeof raw) != DMT_EVENT_RECORD_LEN) {
      msgpack_pack_nil(pk);
      continue;
    }
    dmt_event_record_decode(raw, &r);
    char when[32];
    iso_time(r.timestamp, when);
    msgpack_pack_map(pk, 13);
    pack_kv_int(pk, "DeviceAddress", r.device_address);
    pack_kv_int(pk, "EventSensorType", r.sensor_type);
    pack_kv_int(pk, "EventType", r.event_type);
    pack_kv_int(pk, "EventOffset", r.event_offset);
    pack_kv_int(pk, "EventSourceType", r.source_type);
    pack_kv_int(pk, "EventSeverity", r.severity);
    pack_kv_int(pk, "SensorNumber", r.sensor_number);
    pack_kv_int(pk, "Entity", r.entity);
    pack_kv_int(pk, "EntityInstance", r.entity_instance);
    pack_str(pk, "EventData");
    msgpack_pack_array(pk, 8);
    for (int b = 0; b < 8; b++) msgpack_pack_int(pk, r.data[b]);
    pack_kv_str(pk, "TimeStamp", when);
    pack_kv_str(pk, "EntityStr", dmt_event_entity_name(r.entity));
    pack_kv_str(pk, "Desc", dmt_event_description(&r));
  }
  cmd_done(c, 200, c->acc.data, c->acc.size);
}

static void events_positioned(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  char iter[32] = "1";
  dmt_mp_text(dmt_mp_path(wsman_body(call), "PositionToFirstRecord_OUTPUT.IterationIdentifier"), iter, sizeof iter);
  struct dmt_wsman_param p[] = {{"IterationIdentifier", iter, false}, {"MaxReadRecords", "390", false}};
  cmd_invoke(c, "AMT_MessageLog", "GetRecords", p, 2, events_read);
}

void verb_event_log(struct cmd *c) { cmd_invoke(c, "AMT_MessageLog", "PositionToFirstRecord", NULL, 0, events_positioned); }
