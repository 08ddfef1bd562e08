/*
 * From WS-Man response trees ({"Header","Body"} in DMT's xml2js shape) to
 * exactly the JSON bodies DMT's /api/v1/amt routes answer (mps-cira.md
 * §3.3-3.4), packed as msgpack for command_reply.result. Pure functions of
 * their inputs, so every shape is unit-tested without a device.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cira.h"
#include "dmt/amt_logs.h"
#include "dmt/mptree.h"

void shape_str(msgpack_packer *pk, const char *s) { msgpack_pack_str_with_body(pk, s, strlen(s)); }

static void kv_int(msgpack_packer *pk, const char *k, int64_t v) {
  shape_str(pk, k);
  msgpack_pack_int64(pk, v);
}

static void kv_str(msgpack_packer *pk, const char *k, const char *v) {
  shape_str(pk, k);
  shape_str(pk, v);
}

static void kv_bool(msgpack_packer *pk, const char *k, bool v) {
  shape_str(pk, k);
  if (v) msgpack_pack_true(pk);
  else msgpack_pack_false(pk);
}

static bool is_true(const msgpack_object *o) { return o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean; }

const msgpack_object *shape_body(const msgpack_object *tree) { return dmt_mp_get(tree, "Body"); }

/* {"Header": <Header>, "Body": {<the method output's fields>, "ReturnValueStr": <AMT name>}} */
void shape_return(msgpack_packer *pk, const msgpack_object *tree, const char *output) {
  const msgpack_object *hdr = dmt_mp_get(tree, "Header");
  const msgpack_object *out = dmt_mp_get(shape_body(tree), output);
  int64_t rv = -1;
  dmt_mp_int(dmt_mp_get(out, "ReturnValue"), &rv);
  msgpack_pack_map(pk, 2);
  shape_str(pk, "Header");
  if (hdr) msgpack_pack_object(pk, *hdr);
  else msgpack_pack_map(pk, 0);
  shape_str(pk, "Body");
  uint32_t n = 0;
  bool has_rv = false;
  if (out && out->type == MSGPACK_OBJECT_MAP) {
    for (uint32_t i = 0; i < out->via.map.size; i++) {
      const msgpack_object *k = &out->via.map.ptr[i].key;
      if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 14 && !memcmp(k->via.str.ptr, "ReturnValueStr", 14))
        continue;
      has_rv |= k->type == MSGPACK_OBJECT_STR && k->via.str.size == 11 && !memcmp(k->via.str.ptr, "ReturnValue", 11);
      n++;
    }
  }
  msgpack_pack_map(pk, n + 1 + !has_rv);
  if (out && out->type == MSGPACK_OBJECT_MAP) {
    for (uint32_t i = 0; i < out->via.map.size; i++) {
      const msgpack_object *k = &out->via.map.ptr[i].key;
      if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 14 && !memcmp(k->via.str.ptr, "ReturnValueStr", 14))
        continue;
      msgpack_pack_object(pk, *k);
      msgpack_pack_object(pk, out->via.map.ptr[i].val);
    }
  }
  if (!has_rv) kv_int(pk, "ReturnValue", rv);
  kv_str(pk, "ReturnValueStr", amt_status_name(rv));
}

int64_t shape_return_value(const msgpack_object *tree, const char *output) {
  int64_t rv = -1;
  dmt_mp_int(dmt_mp_get(dmt_mp_get(shape_body(tree), output), "ReturnValue"), &rv);
  return rv;
}

/* The OS power-saving path answers {"Body": {"ReturnValue": n, "ReturnValueStr": s}} (no Header). */
void shape_os_result(msgpack_packer *pk, int64_t rv, const char *name) {
  msgpack_pack_map(pk, 1);
  shape_str(pk, "Body");
  msgpack_pack_map(pk, 2);
  kv_int(pk, "ReturnValue", rv);
  kv_str(pk, "ReturnValueStr", name);
}

int64_t shape_os_state(const msgpack_object *ips_tree) {
  int64_t os = 0;
  dmt_mp_int(dmt_mp_path(shape_body(ips_tree), "IPS_PowerManagementService.OSPowerSavingState"), &os);
  return os;
}

bool shape_power_state_of(const msgpack_object *pull_tree, int64_t *power) {
  const msgpack_object *items =
      dmt_mp_path(shape_body(pull_tree), "PullResponse.Items.CIM_AssociatedPowerManagementService");
  return dmt_mp_int(dmt_mp_get(dmt_mp_list_at(items, 0), "PowerState"), power);
}

void shape_power_state(msgpack_packer *pk, int64_t power, int64_t os) {
  msgpack_pack_map(pk, 2);
  kv_int(pk, "powerstate", power);
  kv_int(pk, "OSPowerSavingState", os);
}

int64_t shape_amt_major(const msgpack_object *software_pull_tree) {
  const msgpack_object *items = dmt_mp_path(shape_body(software_pull_tree), "PullResponse.Items.CIM_SoftwareIdentity");
  for (size_t i = 0; i < dmt_mp_list_len(items); i++) {
    char id[32], ver[32];
    const msgpack_object *it = dmt_mp_list_at(items, i);
    if (dmt_mp_text(dmt_mp_get(it, "InstanceID"), id, sizeof id) && !strcmp(id, "AMT") &&
        dmt_mp_text(dmt_mp_get(it, "VersionString"), ver, sizeof ver))
      return strtoll(ver, NULL, 10);
  }
  return 0;
}

void shape_capabilities(msgpack_packer *pk, int64_t amt_major, const msgpack_object *caps_tree) {
  const msgpack_object *caps = dmt_mp_get(shape_body(caps_tree), "AMT_BootCapabilities");
  static const struct {
    const char *name;
    int code;
    const char *needs; /* AMT_BootCapabilities flag that must be true, or NULL */
    bool amt10;        /* only when the AMT major version is above 9 */
  } entries[] = {
      {"Power up", 2, NULL, false},
      {"Power cycle", 5, NULL, false},
      {"Power down", 8, NULL, false},
      {"Reset", 10, NULL, false},
      {"Soft-off", 12, NULL, true},
      {"Soft-reset", 14, NULL, true},
      {"Sleep", 4, NULL, true},
      {"Hibernate", 7, NULL, true},
      {"Power up to BIOS", 100, "BIOSSetup", false},
      {"Reset to BIOS", 101, "BIOSSetup", false},
      {"Reset to Secure Erase", 104, "SecureErase", false},
      {"Reset to IDE-R Floppy", 200, NULL, false},
      {"Power on to IDE-R Floppy", 201, NULL, false},
      {"Reset to IDE-R CDROM", 202, NULL, false},
      {"Power on to IDE-R CDROM", 203, NULL, false},
      {"Power on to diagnostic", 300, "ForceDiagnosticBoot", false},
      {"Reset to diagnostic", 301, "ForceDiagnosticBoot", false},
      {"Reset to PXE", 400, NULL, false},
      {"Power on to PXE", 401, NULL, false},
  };
  enum { N = sizeof entries / sizeof entries[0] };
  bool keep[N];
  size_t n = 0;
  for (size_t i = 0; i < N; i++) {
    keep[i] = (!entries[i].amt10 || amt_major > 9) && (!entries[i].needs || is_true(dmt_mp_get(caps, entries[i].needs)));
    n += keep[i];
  }
  msgpack_pack_map(pk, n);
  for (size_t i = 0; i < N; i++)
    if (keep[i]) kv_int(pk, entries[i].name, entries[i].code);
}

/* {"response": <Body.Class>, "responses": {Header, Body}, "status": 200|400} for a Get. */
void shape_get_entry(msgpack_packer *pk, const msgpack_object *tree, const char *cls) {
  const msgpack_object *obj = dmt_mp_get(shape_body(tree), cls);
  msgpack_pack_map(pk, 3);
  shape_str(pk, "response");
  if (obj) msgpack_pack_object(pk, *obj);
  else msgpack_pack_nil(pk);
  shape_str(pk, "responses");
  if (tree) msgpack_pack_object(pk, *tree);
  else msgpack_pack_nil(pk);
  kv_int(pk, "status", obj ? 200 : 400);
}

/* {"responses": [items...], "status": 200} for an Enumerate+Pull. */
void shape_pull_entry(msgpack_packer *pk, const msgpack_object *pull_tree, const char *cls) {
  char path[128];
  snprintf(path, sizeof path, "PullResponse.Items.%s", cls);
  const msgpack_object *items = dmt_mp_path(shape_body(pull_tree), path);
  size_t n = dmt_mp_list_len(items);
  msgpack_pack_map(pk, 2);
  shape_str(pk, "responses");
  msgpack_pack_array(pk, n);
  for (size_t i = 0; i < n; i++) msgpack_pack_object(pk, *dmt_mp_list_at(items, i));
  kv_int(pk, "status", 200);
}

static bool starts_with(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

void shape_features(msgpack_packer *pk, const struct features_in *in) {
  const msgpack_object *r = dmt_mp_get(shape_body(in->redirection), "AMT_RedirectionService");
  const msgpack_object *o = dmt_mp_get(shape_body(in->optin), "IPS_OptInService");
  const msgpack_object *k = dmt_mp_get(shape_body(in->kvm), "CIM_KVMRedirectionSAP");
  const msgpack_object *bs = dmt_mp_get(shape_body(in->boot_service), "CIM_BootService");
  const msgpack_object *caps = dmt_mp_get(shape_body(in->capabilities), "AMT_BootCapabilities");
  const msgpack_object *data = dmt_mp_get(shape_body(in->boot_data), "AMT_BootSettingData");
  const msgpack_object *src = dmt_mp_path(shape_body(in->sources), "PullResponse.Items.CIM_BootSourceSetting");
  int64_t redir_state = 0, kvm_state = 0, opt_required = -1, opt_state = 0, boot_state = 0, erase_caps = 0;
  dmt_mp_int(dmt_mp_get(r, "EnabledState"), &redir_state);
  dmt_mp_int(dmt_mp_get(o, "OptInRequired"), &opt_required);
  dmt_mp_int(dmt_mp_get(o, "OptInState"), &opt_state);
  bool kvm_available = k != NULL && dmt_mp_int(dmt_mp_get(k, "EnabledState"), &kvm_state);
  dmt_mp_int(dmt_mp_get(bs, "EnabledState"), &boot_state);
  dmt_mp_int(dmt_mp_get(caps, "PlatformErase"), &erase_caps);
  bool https = false, winre = false, pba = false;
  for (size_t i = 0; i < dmt_mp_list_len(src); i++) {
    char id[256] = "", bios[256] = "";
    const msgpack_object *it = dmt_mp_list_at(src, i);
    dmt_mp_text(dmt_mp_get(it, "InstanceID"), id, sizeof id);
    dmt_mp_text(dmt_mp_get(it, "BIOSBootString"), bios, sizeof bios);
    https |= starts_with(id, "Intel(r) AMT: Force OCR UEFI HTTPS Boot");
    winre |= starts_with(id, "Intel(r) AMT: Force OCR UEFI Boot Option") && strstr(bios, "WinRe");
    pba |= starts_with(id, "Intel(r) AMT: Force OCR UEFI Boot Option") && strstr(bios, "PBA");
  }
  const char *consent = opt_required == 0 ? "none" : opt_required == 1 ? "kvm" : opt_required == 4294967295 ? "all" : NULL;
  msgpack_pack_map(pk, 14);
  shape_str(pk, "userConsent");
  if (consent) shape_str(pk, consent);
  else msgpack_pack_nil(pk);
  kv_bool(pk, "redirection", is_true(dmt_mp_get(r, "ListenerEnabled")));
  kv_bool(pk, "KVM", kvm_state == 2 || kvm_state == 6); /* Enabled, EnabledButOffline */
  kv_bool(pk, "SOL", (redir_state & 2) != 0);
  kv_bool(pk, "IDER", (redir_state & 1) != 0);
  kv_int(pk, "optInState", opt_state);
  kv_bool(pk, "kvmAvailable", kvm_available);
  kv_bool(pk, "ocr", boot_state == 32769 || boot_state == 32771);
  kv_bool(pk, "httpsBootSupported",
          https && is_true(dmt_mp_get(caps, "ForceUEFIHTTPSBoot")) && is_true(dmt_mp_get(data, "UEFIHTTPSBootEnabled")));
  kv_bool(pk, "winREBootSupported",
          winre && is_true(dmt_mp_get(data, "WinREBootEnabled")) && is_true(dmt_mp_get(caps, "ForceWinREBoot")));
  kv_bool(pk, "localPBABootSupported",
          pba && is_true(dmt_mp_get(data, "UEFILocalPBABootEnabled")) && is_true(dmt_mp_get(caps, "ForceUEFIPBABoot")));
  kv_bool(pk, "remoteEraseEnabled", is_true(dmt_mp_get(data, "PlatformErase")));
  kv_bool(pk, "remoteEraseSupported", erase_caps != 0);
  kv_int(pk, "platformEraseCaps", erase_caps);
}

static void iso_time(uint32_t ts, char out[32]) {
  time_t t = (time_t)ts;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

size_t shape_audit_log(msgpack_packer *pk, const msgpack_object *tree) {
  const msgpack_object *out = dmt_mp_get(shape_body(tree), "ReadRecords_OUTPUT");
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
  msgpack_pack_map(pk, 2);
  kv_int(pk, "totalCnt", total);
  shape_str(pk, "records");
  msgpack_pack_array(pk, ok);
  for (size_t k = ok; k-- > 0;) { /* newest first */
    const struct dmt_audit_record *r = &decoded[k];
    char when[32], ex[80] = "";
    iso_time(r->timestamp, when);
    for (unsigned b = 0; b < r->ex_len && b < 32; b++) snprintf(ex + 2 * b, 3, "%02x", r->ex[b]);
    msgpack_pack_map(pk, 11);
    kv_int(pk, "AuditAppID", r->app_id);
    kv_int(pk, "EventID", r->event_id);
    kv_int(pk, "InitiatorType", r->initiator_type);
    kv_str(pk, "AuditApp", dmt_audit_app_name(r->app_id));
    kv_str(pk, "Event", dmt_audit_event_name(r->app_id, r->event_id));
    kv_str(pk, "Initiator", r->initiator_type == 2 ? "Local" : r->initiator);
    kv_str(pk, "Time", when);
    kv_int(pk, "MCLocationType", r->mc_location_type);
    kv_str(pk, "NetAddress", r->net_address);
    kv_str(pk, "Ex", ex);
    shape_str(pk, "ExStr");
    msgpack_pack_nil(pk);
  }
  return ok;
}

size_t shape_event_log(msgpack_packer *pk, const msgpack_object *tree) {
  const msgpack_object *recs = dmt_mp_path(shape_body(tree), "GetRecords_OUTPUT.RecordArray");
  size_t n = dmt_mp_list_len(recs), good = 0;
  struct dmt_event_record *r = calloc(n ? n : 1, sizeof *r);
  bool *ok = calloc(n ? n : 1, sizeof *ok);
  for (size_t i = 0; r && ok && i < n; i++) {
    char b64[64];
    uint8_t raw[48];
    if (dmt_mp_text(dmt_mp_list_at(recs, i), b64, sizeof b64) &&
        dmt_base64_decode(b64, raw, sizeof raw) == DMT_EVENT_RECORD_LEN) {
      dmt_event_record_decode(raw, &r[i]);
      ok[i] = true;
      good++;
    }
  }
  /* Records that do not decode are left out (DMT would throw on them). */
  msgpack_pack_array(pk, good);
  for (size_t i = 0; r && ok && i < n; i++) {
    if (!ok[i]) continue;
    char when[32];
    iso_time(r[i].timestamp, when);
    msgpack_pack_map(pk, 13);
    kv_int(pk, "DeviceAddress", r[i].device_address);
    kv_int(pk, "EventSensorType", r[i].sensor_type);
    kv_int(pk, "EventType", r[i].event_type);
    kv_int(pk, "EventOffset", r[i].event_offset);
    kv_int(pk, "EventSourceType", r[i].source_type);
    kv_int(pk, "EventSeverity", r[i].severity);
    kv_int(pk, "SensorNumber", r[i].sensor_number);
    kv_int(pk, "Entity", r[i].entity);
    kv_int(pk, "EntityInstance", r[i].entity_instance);
    shape_str(pk, "EventData");
    msgpack_pack_array(pk, 8);
    for (int b = 0; b < 8; b++) msgpack_pack_int(pk, r[i].data[b]);
    kv_str(pk, "TimeStamp", when);
    kv_str(pk, "EntityStr", dmt_event_entity_name(r[i].entity));
    kv_str(pk, "Desc", dmt_event_description(&r[i]));
  }
  free(r);
  free(ok);
  return good;
}
