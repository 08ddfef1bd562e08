/*
 * Audit and event logs of the simulated AMT: a handful of plausible records
 * per device, returned the way firmware does (AMT_AuditLog.ReadRecords in
 * blocks of ten with base64 records, AMT_MessageLog.GetRecords with 21-byte
 * platform event records).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/amt_logs.h"
#include "sim.h"

#define AUDIT_RECORDS 14u
#define EVENT_RECORDS 6u

static void audit_record(const struct sim_device *d, unsigned i, struct dmt_audit_record *r) {
  static const uint16_t kinds[][2] = {{16, 0}, {16, 1}, {17, 0}, {17, 1}, {17, 3}, {18, 8}, {18, 9}, {21, 0}};
  memset(r, 0, sizeof *r);
  r->app_id = kinds[i % 8][0];
  r->event_id = kinds[i % 8][1];
  r->initiator_type = 0;
  snprintf(r->initiator, sizeof r->initiator, "admin");
  r->timestamp = 1767225600u + i * 3600u + (uint32_t)d->index; /* 2026-01-01 onwards */
  r->mc_location_type = 0;
  snprintf(r->net_address, sizeof r->net_address, "192.168.0.%u", 20 + (i % 200));
}

static void audit_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                         struct amt_fault *f) {
  if (strcmp(w->method, "ReadRecords")) {
    amt_fault_not_supported(f);
    return;
  }
  const char *si = dmt_wsman_request_param(w, "StartIndex");
  unsigned start = si ? (unsigned)strtoul(si, NULL, 10) : 1;
  if (start == 0) start = 1;
  struct dmt_buf out;
  dmt_buf_init(&out, 0);
  unsigned n = 0;
  dmt_buf_printf(&out, "<g:TotalRecordCount>%u</g:TotalRecordCount>", AUDIT_RECORDS);
  struct dmt_buf recs;
  dmt_buf_init(&recs, 0);
  for (unsigned i = start; i <= AUDIT_RECORDS && n < 10; i++, n++) {
    struct dmt_audit_record r;
    struct dmt_buf bin;
    dmt_buf_init(&bin, 0);
    audit_record(d, i - 1, &r);
    dmt_audit_record_encode(&bin, &r);
    dmt_buf_printf(&recs, "<g:EventRecords>");
    dmt_base64_encode(dmt_buf_ptr(&bin), dmt_buf_size(&bin), &recs);
    dmt_buf_printf(&recs, "</g:EventRecords>");
    dmt_buf_free(&bin);
  }
  dmt_buf_printf(&out, "<g:RecordsReturned>%u</g:RecordsReturned>", n);
  dmt_buf_append(&out, dmt_buf_ptr(&recs), dmt_buf_size(&recs));
  dmt_buf_append_u8(&out, 0);
  amt_return(b, "ReadRecords", 0, (const char *)dmt_buf_ptr(&out));
  dmt_buf_free(&recs);
  dmt_buf_free(&out);
}

static void audit_instance(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"CreationClassName", "AMT_AuditLog"}, {"ElementName", "Intel(r) AMT Audit Log"},
                               {"EnabledState", "2"}, {"Name", "Intel(r) AMT:Audit Log"}, {"StoragePolicy", "1"}};
  amt_emit_instance(e, "AMT_AuditLog", p, sizeof p / sizeof p[0]);
}

static void message_log_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                               struct amt_fault *f) {
  if (!strcmp(w->method, "PositionToFirstRecord")) {
    amt_return(b, "PositionToFirstRecord", 0, "<g:IterationIdentifier>1</g:IterationIdentifier>");
    return;
  }
  if (strcmp(w->method, "GetRecords")) {
    amt_fault_not_supported(f);
    return;
  }
  struct dmt_buf out;
  dmt_buf_init(&out, 0);
  dmt_buf_printf(&out, "<g:IterationIdentifier>%u</g:IterationIdentifier><g:NoMoreRecords>true</g:NoMoreRecords>",
                 EVENT_RECORDS + 1);
  for (unsigned i = 0; i < EVENT_RECORDS; i++) {
    struct dmt_event_record r = {.timestamp = 1767225600u + i * 60u, .device_address = 255, .sensor_type = 15,
                                 .event_type = 111, .event_offset = 2, .source_type = 104, .severity = 1,
                                 .sensor_number = 255, .entity = 34, .entity_instance = 0};
    r.data[0] = 64;
    r.data[1] = (uint8_t)(i % 2 ? 3 : 1);
    uint8_t raw[DMT_EVENT_RECORD_LEN];
    dmt_event_record_encode(raw, &r);
    dmt_buf_printf(&out, "<g:RecordArray>");
    dmt_base64_encode(raw, sizeof raw, &out);
    dmt_buf_printf(&out, "</g:RecordArray>");
  }
  dmt_buf_append_u8(&out, 0);
  amt_return(b, "GetRecords", 0, (const char *)dmt_buf_ptr(&out));
  dmt_buf_free(&out);
}

static void message_log_instance(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"CreationClassName", "AMT_MessageLog"}, {"ElementName", "Intel(r) AMT Message Log"},
                               {"MaxNumberOfRecords", "390"}, {"Name", "Intel(r) AMT:MessageLog 1"},
                               {"NumberOfRecords", "6"}};
  amt_emit_instance(e, "AMT_MessageLog", p, sizeof p / sizeof p[0]);
}

const struct amt_class amt_log_classes[] = {
    {"AMT_AuditLog", audit_instance, NULL, audit_invoke, NULL},
    {"AMT_MessageLog", message_log_instance, NULL, message_log_invoke, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
