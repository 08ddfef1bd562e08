/*
 * Power verbs, following DMT's WS-Man call sequences (mps-cira.md §2.6) and
 * answering DMT's response bodies (§3.3-3.4):
 *   power_state        {powerstate, OSPowerSavingState}
 *   power_action       Get+Put AMT_BootSettingData (options cleared), the OS
 *                      power-saving path for 500/501 and for power-up from
 *                      power saving, then RequestPowerStateChange
 *   power_capabilities DMT's name -> code map from versions + boot capabilities
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "dmt/mptree.h"

/* CIM codes DMT passes to RequestPowerStateChange (others are answered INVALID_PARAMETER as DMT does). */
static bool cim_power_code(int64_t a) { return a >= 2 && a <= 14; }

static const char *const boot_flags[] = {"BIOSPause", "BIOSSetup", "ConfigurationDataReset", "EnforceSecureBoot",
                                         "ForcedProgressEvents", "LockKeyboard", "LockPowerButton", "LockResetButton",
                                         "LockSleepButton", "ReflashBIOS", "SecureErase", "UseIDER", "UseSOL",
                                         "UseSafeMode", "UserPasswordBypass"};

/* {"Header": <call header>, "Body": {"ReturnValue": n, "ReturnValueStr": name}} */
static void pack_return(struct cmd *c, struct wsman_call *call, const char *output) {
  const msgpack_object *hdr = dmt_mp_get(wsman_tree(call), "Header");
  int64_t rv = -1;
  char path[96];
  snprintf(path, sizeof path, "%s.ReturnValue", output);
  dmt_mp_int(dmt_mp_path(wsman_body(call), path), &rv);
  msgpack_packer *pk = &c->pk;
  msgpack_pack_map(pk, 2);
  msgpack_pack_str_with_body(pk, "Header", 6);
  if (hdr) msgpack_pack_object(pk, *hdr);
  else msgpack_pack_map(pk, 0);
  msgpack_pack_str_with_body(pk, "Body", 4);
  msgpack_pack_map(pk, 2);
  msgpack_pack_str_with_body(pk, "ReturnValue", 11);
  msgpack_pack_int64(pk, rv);
  msgpack_pack_str_with_body(pk, "ReturnValueStr", 14);
  const char *name = amt_status_name(rv);
  msgpack_pack_str_with_body(pk, name, strlen(name));
}

/*
 * A power state change (commanded or observed) updates the retained state and
 * is an event of kind `power` (schemas/topics.md), data {from, to[, action]}.
 */
static void power_changed(struct cmd *c, uint16_t ps, const char *action, int64_t code) {
  struct cira_conn *conn = c->conn;
  uint16_t from = conn->power_state;
  if (from == ps) return;
  conn->power_state = ps;
  registry_publish_state(conn, true, NULL);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, code >= 0 ? 3 : 2);
  msgpack_pack_str_with_body(&pk, "from", 4);
  msgpack_pack_int64(&pk, from);
  msgpack_pack_str_with_body(&pk, "to", 2);
  msgpack_pack_int64(&pk, ps);
  if (code >= 0) {
    msgpack_pack_str_with_body(&pk, "action", 6);
    msgpack_pack_int64(&pk, code);
  }
  char msg[96];
  snprintf(msg, sizeof msg, "power state %u -> %u", from, ps);
  event_emit(c->srv, c->tenant, c->guid, "power", action, true, c->requester, msg, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
}

/* ---- power_state ---- */

static void state_pulled(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  const msgpack_object *items = dmt_mp_path(wsman_body(call), "PullResponse.Items.CIM_AssociatedPowerManagementService");
  int64_t ps = 0;
  if (!dmt_mp_int(dmt_mp_get(dmt_mp_list_at(items, 0), "PowerState"), &ps)) {
    cmd_fail(c, 400, "device_error", "the device did not report a power state");
    return;
  }
  power_changed(c, (uint16_t)ps, "power_observed", -1);
  msgpack_pack_map(&c->pk, 2);
  msgpack_pack_str_with_body(&c->pk, "powerstate", 10);
  msgpack_pack_int64(&c->pk, ps);
  msgpack_pack_str_with_body(&c->pk, "OSPowerSavingState", 18);
  msgpack_pack_int64(&c->pk, c->n[0]);
  cmd_done(c, 200, c->acc.data, c->acc.size);
}

static void state_os(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  c->n[0] = 0;
  dmt_mp_int(dmt_mp_path(wsman_body(call), "IPS_PowerManagementService.OSPowerSavingState"), &c->n[0]);
  cmd_enum(c, "CIM_ServiceAvailableToElement", state_pulled);
}

void verb_power_state(struct cmd *c) { cmd_get(c, "IPS_PowerManagementService", state_os); }

/* ---- power_action ---- */

static void action_done(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  pack_return(c, call, "RequestPowerStateChange_OUTPUT");
  int64_t rv = -1;
  dmt_mp_int(dmt_mp_path(wsman_body(call), "RequestPowerStateChange_OUTPUT.ReturnValue"), &rv);
  if (rv == 0) {
    int64_t a = c->n[0];
    power_changed(c, (uint16_t)(a == 8 || a == 12 ? 8 : a == 6 || a == 13 ? 6 : (a == 4 || a == 7 || a == 3) ? a : 2),
                  "power_action", a);
  }
  cmd_done(c, 200, c->acc.data, c->acc.size);
}

static void request_power_change(struct cmd *c) {
  char code[16];
  snprintf(code, sizeof code, "%lld", (long long)c->n[0]);
  struct dmt_wsman_param p[] = {
      {"PowerState", code, false},
      {"ManagedElement",
       "<Address xmlns=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\">http://schemas.xmlsoap.org/ws/2004/08/"
       "addressing</Address><ReferenceParameters xmlns=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\">"
       "<ResourceURI xmlns=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\">http://schemas.dmtf.org/wbem/wscim/1/"
       "cim-schema/2/CIM_ComputerSystem</ResourceURI><SelectorSet xmlns=\"http://schemas.dmtf.org/wbem/wsman/1/"
       "wsman.xsd\"><Selector Name=\"CreationClassName\">CIM_ComputerSystem</Selector><Selector Name=\"Name\">"
       "ManagedSystem</Selector></SelectorSet></ReferenceParameters>",
       true}};
  cmd_invoke(c, "CIM_PowerManagementService", "RequestPowerStateChange", p, 2, action_done);
}

static void os_saving_done(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  if (c->n[0] == 500 || c->n[0] == 501) { /* the OS path is the whole action */
    const msgpack_object *out = dmt_mp_get(wsman_body(call), "RequestOSPowerSavingStateChange_OUTPUT");
    int64_t rv = -1;
    dmt_mp_int(dmt_mp_get(out, "ReturnValue"), &rv);
    msgpack_pack_map(&c->pk, 1);
    msgpack_pack_str_with_body(&c->pk, "Body", 4);
    msgpack_pack_map(&c->pk, 2);
    msgpack_pack_str_with_body(&c->pk, "ReturnValue", 11);
    msgpack_pack_int64(&c->pk, rv);
    msgpack_pack_str_with_body(&c->pk, "ReturnValueStr", 14);
    const char *name = amt_status_name(rv);
    msgpack_pack_str_with_body(&c->pk, name, strlen(name));
    cmd_done(c, 200, c->acc.data, c->acc.size);
    return;
  }
  request_power_change(c);
}

static void os_state_read(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  int64_t os = 0;
  dmt_mp_int(dmt_mp_path(wsman_body(call), "IPS_PowerManagementService.OSPowerSavingState"), &os);
  int64_t target = c->n[0] == 501 ? 3 : 2;
  if (c->n[0] == 2 && os != 3) { /* power up with the OS at full power: nothing to wake */
    request_power_change(c);
    return;
  }
  char v[8];
  snprintf(v, sizeof v, "%lld", (long long)target);
  struct dmt_wsman_param p[] = {{"OSPowerSavingState", v, false}};
  cmd_invoke(c, "IPS_PowerManagementService", "RequestOSPowerSavingStateChange", p, 1, os_saving_done);
}

static void boot_data_put(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  if (c->n[0] == 500 || c->n[0] == 501 || c->n[0] == 2) {
    cmd_get(c, "IPS_PowerManagementService", os_state_read);
    return;
  }
  if (!cim_power_code(c->n[0])) {
    /* DMT's quirk (mps-cira.md §3.4): an accepted but non-CIM code answers INVALID_PARAMETER, HTTP 200. */
    msgpack_pack_map(&c->pk, 1);
    msgpack_pack_str_with_body(&c->pk, "Body", 4);
    msgpack_pack_map(&c->pk, 2);
    msgpack_pack_str_with_body(&c->pk, "ReturnValue", 11);
    msgpack_pack_int64(&c->pk, 36);
    msgpack_pack_str_with_body(&c->pk, "ReturnValueStr", 14);
    msgpack_pack_str_with_body(&c->pk, "INVALID_PARAMETER", 17);
    cmd_done(c, 200, c->acc.data, c->acc.size);
    return;
  }
  request_power_change(c);
}

static void boot_data_read(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  const msgpack_object *bsd = dmt_mp_get(wsman_body(call), "AMT_BootSettingData");
  struct dmt_wsman_param props[32];
  char names[32][64], values[32][64];
  size_t n = 0;
  /* The instance is written back as read, with every boot option cleared (UseSOL as asked). */
  for (uint32_t i = 0; bsd && bsd->type == MSGPACK_OBJECT_MAP && i < bsd->via.map.size && n < 32; i++) {
    const msgpack_object *k = &bsd->via.map.ptr[i].key;
    if (k->type != MSGPACK_OBJECT_STR || k->via.str.size >= sizeof names[0]) continue;
    snprintf(names[n], sizeof names[n], "%.*s", (int)k->via.str.size, k->via.str.ptr);
    bool flag = false;
    for (size_t f = 0; f < sizeof boot_flags / sizeof boot_flags[0]; f++) flag |= !strcmp(boot_flags[f], names[n]);
    if (flag) snprintf(values[n], sizeof values[n], "%s",
                       !strcmp(names[n], "UseSOL") && cmd_arg_bool(c, "use_sol", false) ? "true" : "false");
    else if (!dmt_mp_text(&bsd->via.map.ptr[i].val, values[n], sizeof values[n])) continue;
    props[n] = (struct dmt_wsman_param){names[n], values[n], false};
    n++;
  }
  struct dmt_wsman_selector sel[] = {{"InstanceID", "Intel(r) AMT:BootSettingData 0"}};
  cmd_put(c, "AMT_BootSettingData", sel, 1, props, n, boot_data_put);
}

void verb_power_action(struct cmd *c) {
  if (!cmd_arg_int(c, "action", &c->n[0])) {
    cmd_fail(c, 400, "bad_request", "args.action (integer) is required");
    return;
  }
  cmd_get(c, "AMT_BootSettingData", boot_data_read);
}

/* ---- boot_options: the boot-option variants route through the same path with the reset/power-on code ---- */

void verb_boot_options(struct cmd *c) {
  int64_t action;
  if (!cmd_arg_int(c, "action", &action) || action < 100) {
    cmd_fail(c, 400, "bad_request", "args.action must be a boot option code (100 and up)");
    return;
  }
  /* Even codes power on, odd ones reset (DMT's table: 100/101, 400/401, ...); BIOS setup is 100/101. */
  static const struct { int64_t code; int64_t cim; } map[] = {
      {100, 2}, {101, 10}, {105, 10}, {106, 2}, {107, 10}, {108, 2}, {109, 10}, {110, 2},
      {202, 10}, {203, 2}, {300, 2}, {301, 10}, {400, 10}, {401, 2}};
  c->n[0] = 0;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (map[i].code == action) c->n[0] = map[i].cim;
  if (!c->n[0]) {
    cmd_fail(c, 501, "unsupported", "boot option not supported");
    return;
  }
  cmd_get(c, "AMT_BootSettingData", boot_data_read);
}

/* ---- power_capabilities ---- */

static void caps_boot(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  const msgpack_object *caps = dmt_mp_get(wsman_body(call), "AMT_BootCapabilities");
  struct { const char *name; int code; const char *needs; bool amt10; } entries[] = {
      {"Power up", 2, NULL, false},       {"Power cycle", 5, NULL, false},
      {"Power down", 8, NULL, false},     {"Reset", 10, NULL, false},
      {"Soft-off", 12, NULL, true},       {"Soft-reset", 14, NULL, true},
      {"Sleep", 4, NULL, true},           {"Hibernate", 7, NULL, true},
      {"Power up to BIOS", 100, "BIOSSetup", false}, {"Reset to BIOS", 101, "BIOSSetup", false},
      {"Reset to Secure Erase", 104, "SecureErase", false},
      {"Reset to IDE-R Floppy", 200, NULL, false}, {"Power on to IDE-R Floppy", 201, NULL, false},
      {"Reset to IDE-R CDROM", 202, NULL, false},  {"Power on to IDE-R CDROM", 203, NULL, false},
      {"Power on to diagnostic", 300, "ForceDiagnosticBoot", false},
      {"Reset to diagnostic", 301, "ForceDiagnosticBoot", false},
      {"Reset to PXE", 400, NULL, false},          {"Power on to PXE", 401, NULL, false}};
  size_t n = 0;
  bool keep[32];
  for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
    keep[i] = true;
    if (entries[i].amt10 && c->n[1] <= 9) keep[i] = false; /* sleep, hibernate and soft actions need AMT 10+ */
    if (entries[i].needs) {
      const msgpack_object *v = dmt_mp_get(caps, entries[i].needs);
      keep[i] = v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
    }
    n += keep[i];
  }
  msgpack_pack_map(&c->pk, n);
  for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
    if (!keep[i]) continue;
    msgpack_pack_str_with_body(&c->pk, entries[i].name, strlen(entries[i].name));
    msgpack_pack_int(&c->pk, entries[i].code);
  }
  cmd_done(c, 200, c->acc.data, c->acc.size);
}

static void caps_version(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  const msgpack_object *items = dmt_mp_path(wsman_body(call), "PullResponse.Items.CIM_SoftwareIdentity");
  c->n[1] = 0;
  for (size_t i = 0; i < dmt_mp_list_len(items); i++) {
    char id[32], ver[32];
    const msgpack_object *it = dmt_mp_list_at(items, i);
    if (dmt_mp_text(dmt_mp_get(it, "InstanceID"), id, sizeof id) && !strcmp(id, "AMT") &&
        dmt_mp_text(dmt_mp_get(it, "VersionString"), ver, sizeof ver))
      c->n[1] = strtoll(ver, NULL, 10);
  }
  cmd_get(c, "AMT_BootCapabilities", caps_boot);
}

void verb_power_capabilities(struct cmd *c) { cmd_enum(c, "CIM_SoftwareIdentity", caps_version); }
