/* AMT audit and event log records (see dmt/amt_logs.h). */
#include "dmt/amt_logs.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

int dmt_audit_record_encode(struct dmt_buf *out, const struct dmt_audit_record *r) {
  uint8_t b[256];
  size_t n = 0;
  size_t ilen = strlen(r->initiator), alen = strlen(r->net_address);
  if (ilen > 63 || alen > 63 || r->ex_len > sizeof r->ex) return -1;
  b[n++] = (uint8_t)(r->app_id >> 8);
  b[n++] = (uint8_t)r->app_id;
  b[n++] = (uint8_t)(r->event_id >> 8);
  b[n++] = (uint8_t)r->event_id;
  b[n++] = r->initiator_type;
  if (r->initiator_type == 0) {
    b[n++] = (uint8_t)ilen;
    memcpy(b + n, r->initiator, ilen);
    n += ilen;
  } else if (r->initiator_type == 1) {
    memset(b + n, 0, 4);
    n += 4;
    b[n++] = (uint8_t)ilen;
    memcpy(b + n, r->initiator, ilen);
    n += ilen;
  }
  for (int i = 3; i >= 0; i--) b[n++] = (uint8_t)(r->timestamp >> (8 * i));
  b[n++] = r->mc_location_type;
  b[n++] = (uint8_t)alen;
  memcpy(b + n, r->net_address, alen);
  n += alen;
  b[n++] = r->ex_len;
  memcpy(b + n, r->ex, r->ex_len);
  n += r->ex_len;
  return dmt_buf_append(out, b, n);
}

int dmt_audit_record_decode(const uint8_t *p, size_t len, struct dmt_audit_record *r) {
  memset(r, 0, sizeof *r);
  size_t o = 0;
#define NEED(k) \
  if ((k) > len - o) return -1
  NEED(5);
  r->app_id = (uint16_t)(p[0] << 8 | p[1]);
  r->event_id = (uint16_t)(p[2] << 8 | p[3]);
  r->initiator_type = p[4];
  o = 5;
  if (r->initiator_type == 0 || r->initiator_type == 1) {
    if (r->initiator_type == 1) {
      NEED(4);
      o += 4;
    }
    NEED(1);
    size_t l = p[o++];
    NEED(l);
    snprintf(r->initiator, sizeof r->initiator, "%.*s", (int)(l < 63 ? l : 63), (const char *)p + o);
    o += l;
  }
  NEED(6);
  r->timestamp = (uint32_t)p[o] << 24 | (uint32_t)p[o + 1] << 16 | (uint32_t)p[o + 2] << 8 | p[o + 3];
  o += 4;
  r->mc_location_type = p[o++];
  size_t al = p[o++];
  NEED(al);
  snprintf(r->net_address, sizeof r->net_address, "%.*s", (int)(al < 63 ? al : 63), (const char *)p + o);
  o += al;
  if (o < len) {
    size_t el = p[o++];
    NEED(el);
    r->ex_len = (uint8_t)(el < sizeof r->ex ? el : sizeof r->ex);
    memcpy(r->ex, p + o, r->ex_len);
  }
#undef NEED
  return 0;
}

const char *dmt_audit_app_name(uint16_t app_id) {
  static const char *names[] = {"Security Admin", "RCO", "Redirection Manager", "Firmware Update Manager",
                                "Security Audit Log", "Network Time", "Network Administration",
                                "Storage Administration", "Event Manager", "Circuit Breaker Manager",
                                "Agent Presence Manager", "Wireless Configuration", "EAC", "KVM",
                                "User Opt-In", "Screen Blanking", "Watchdog Timer", "Platform Power Management"};
  return app_id >= 16 && app_id < 16 + sizeof names / sizeof names[0] ? names[app_id - 16] : "Unknown";
}

const char *dmt_audit_event_name(uint16_t app_id, uint16_t event_id) {
  static const struct { uint16_t app, event; const char *name; } events[] = {
      {16, 0, "Provisioning Started"},      {16, 1, "Provisioning Completed"},
      {16, 2, "ACL Entry Added"},           {16, 3, "ACL Entry Modified"},
      {16, 4, "ACL Entry Removed"},         {16, 5, "ACL Access with Invalid Credentials"},
      {16, 6, "ACL Entry State"},           {16, 7, "TLS State Changed"},
      {16, 17, "Unprovisioning Started"},   {16, 20, "Power Package Modified"},
      {17, 0, "Performed Power Up"},        {17, 1, "Performed Power Down"},
      {17, 2, "Performed Power Cycle"},     {17, 3, "Performed Reset"},
      {17, 4, "Set Boot Options"},          {18, 0, "IDER Session Opened"},
      {18, 1, "IDER Session Closed"},       {18, 2, "IDER Enabled"},
      {18, 3, "IDER Disabled"},             {18, 4, "SoL Session Opened"},
      {18, 5, "SoL Session Closed"},        {18, 6, "SoL Enabled"},
      {18, 7, "SoL Disabled"},              {18, 8, "KVM Session Started"},
      {18, 9, "KVM Session Ended"},         {19, 0, "Firmware Updated"},
      {21, 0, "Intel(R) AMT Time Set"},     {29, 0, "KVM Enabled"},
      {29, 1, "KVM Disabled"},              {30, 0, "Opt-In Policy Change"},
      {30, 1, "Send Consent Code Event"},   {30, 2, "Start Opt-In Blocked Event"},
  };
  for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
    if (events[i].app == app_id && events[i].event == event_id) return events[i].name;
  return "Unknown";
}

void dmt_event_record_encode(uint8_t out[DMT_EVENT_RECORD_LEN], const struct dmt_event_record *r) {
  for (int i = 0; i < 4; i++) out[i] = (uint8_t)(r->timestamp >> (8 * i)); /* little-endian */
  out[4] = r->device_address;
  out[5] = r->sensor_type;
  out[6] = r->event_type;
  out[7] = r->event_offset;
  out[8] = r->source_type;
  out[9] = r->severity;
  out[10] = r->sensor_number;
  out[11] = r->entity;
  out[12] = r->entity_instance;
  memcpy(out + 13, r->data, 8);
}

void dmt_event_record_decode(const uint8_t in[DMT_EVENT_RECORD_LEN], struct dmt_event_record *r) {
  r->timestamp = (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
  r->device_address = in[4];
  r->sensor_type = in[5];
  r->event_type = in[6];
  r->event_offset = in[7];
  r->source_type = in[8];
  r->severity = in[9];
  r->sensor_number = in[10];
  r->entity = in[11];
  r->entity_instance = in[12];
  memcpy(r->data, in + 13, 8);
}

const char *dmt_event_entity_name(uint8_t entity) {
  switch (entity) {
    case 3: return "Processor";
    case 7: return "System Board";
    case 8: return "Memory Module";
    case 20: return "Power Supply";
    case 23: return "System Chassis";
    case 29: return "Fan Device";
    case 34: return "BIOS";
    case 35: return "Operating System";
    case 38: return "Intel(r) ME";
    default: return "Unknown";
  }
}

const char *dmt_event_description(const struct dmt_event_record *r) {
  if (r->sensor_type == 15 && r->event_type == 111) {
    switch (r->data[1]) {
      case 1: return "System memory initialization";
      case 3: return "Starting operating system boot process";
      case 19: return "Performing PCI configuration";
      default: return "Platform firmware progress";
    }
  }
  if (r->sensor_type == 6) return "Authentication failed";
  if (r->sensor_type == 35) return "Watchdog timer expired";
  return "Platform event";
}

int dmt_base64_encode(const uint8_t *in, size_t len, struct dmt_buf *out) {
  size_t need = 4 * ((len + 2) / 3) + 1;
  uint8_t *w = dmt_buf_reserve(out, need);
  if (!w) return -1;
  int n = EVP_EncodeBlock(w, in, (int)len);
  dmt_buf_commit(out, (size_t)n);
  return 0;
}

int dmt_base64_decode(const char *in, uint8_t *out, size_t outlen) {
  size_t len = strlen(in);
  while (len && (in[len - 1] == '\n' || in[len - 1] == ' ')) len--;
  if (len % 4 || 3 * (len / 4) > outlen + 2) return -1;
  uint8_t tmp[3 * 1024];
  uint8_t *dst = 3 * (len / 4) <= outlen ? out : (3 * (len / 4) <= sizeof tmp ? tmp : NULL);
  if (!dst) return -1;
  int n = EVP_DecodeBlock(dst, (const unsigned char *)in, (int)len);
  if (n < 0) return -1;
  if (len >= 1 && in[len - 1] == '=') n--;
  if (len >= 2 && in[len - 2] == '=') n--;
  if ((size_t)n > outlen) return -1;
  if (dst != out) memcpy(out, dst, (size_t)n);
  return n;
}
