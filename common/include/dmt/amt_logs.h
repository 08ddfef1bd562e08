/*
 * AMT's binary log records, as carried base64-encoded in WS-Man responses:
 * AMT_AuditLog.ReadRecords EventRecords (variable length, big-endian) and
 * AMT_MessageLog.GetRecords RecordArray (21-byte platform event records,
 * little-endian timestamp), with the names DMT prints for them. Pure codec.
 */
#ifndef DMT_AMT_LOGS_H
#define DMT_AMT_LOGS_H

#include <stddef.h>
#include <stdint.h>

#include "dmt/buf.h"

struct dmt_audit_record {
  uint16_t app_id, event_id;
  uint8_t initiator_type; /* 0 HTTP digest, 1 Kerberos SID, 2 local, 3 KVM default port */
  char initiator[64];     /* digest user name, or Kerberos domain */
  uint32_t timestamp;     /* seconds since the Unix epoch */
  uint8_t mc_location_type;
  char net_address[64];
  uint8_t ex[32];
  uint8_t ex_len;
};

/* Appends one record's binary form; 0 or -1. */
int dmt_audit_record_encode(struct dmt_buf *out, const struct dmt_audit_record *r);
/* Decodes one record of exactly len bytes; 0 or -1. */
int dmt_audit_record_decode(const uint8_t *p, size_t len, struct dmt_audit_record *r);
const char *dmt_audit_app_name(uint16_t app_id);
const char *dmt_audit_event_name(uint16_t app_id, uint16_t event_id);

#define DMT_EVENT_RECORD_LEN 21
struct dmt_event_record {
  uint32_t timestamp;
  uint8_t device_address, sensor_type, event_type, event_offset, source_type, severity, sensor_number, entity,
      entity_instance;
  uint8_t data[8];
};

void dmt_event_record_encode(uint8_t out[DMT_EVENT_RECORD_LEN], const struct dmt_event_record *r);
void dmt_event_record_decode(const uint8_t in[DMT_EVENT_RECORD_LEN], struct dmt_event_record *r);
const char *dmt_event_entity_name(uint8_t entity);
const char *dmt_event_description(const struct dmt_event_record *r);

/* Base64 helpers (OpenSSL EVP). decode returns the length or -1. */
int dmt_base64_encode(const uint8_t *in, size_t len, struct dmt_buf *out);
int dmt_base64_decode(const char *in, uint8_t *out, size_t outlen);

#endif
