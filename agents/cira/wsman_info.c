/*
 * Information verbs, in DMT's response shapes (mps-cira.md §3.3):
 *   general_settings  the AMT_GeneralSettings envelope {Header, Body}
 *   version           {CIM_SoftwareIdentity:{responses,status}, AMT_SetupAndConfigurationService:{response,responses,status}}
 *   hardware_info     ten inventory classes, each {response?, responses, status}
 *   features          {userConsent, redirection, KVM, SOL, IDER, optInState, kvmAvailable, ...}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "dmt/mptree.h"

static void pack_str(msgpack_packer *pk, const char *s) { msgpack_pack_str_with_body(pk, s, strlen(s)); }

/* {"response": <Body.Class>, "responses": {Header, Body}, "status": 200} for a Get. */
static void pack_get_entry(msgpack_packer *pk, struct wsman_call *call, const char *cls) {
  const msgpack_object *obj = dmt_mp_get(wsman_body(call), cls);
  msgpack_pack_map(pk, 3);
  pack_str(pk, "response");
  if (obj) msgpack_pack_object(pk, *obj);
  else msgpack_pack_nil(pk);
  pack_str(pk, "responses");
  msgpack_pack_object(pk, *wsman_tree(call));
  pack_str(pk, "status");
  msgpack_pack_int(pk, obj ? 200 : 400);
}

/* {"responses": [items...], "status": 200} for an Enumerate+Pull. */
static void pack_pull_entry(msgpack_packer *pk, struct wsman_call *call, const char *cls) {
  char path[128];
  snprintf(path, sizeof path, "PullResponse.Items.%s", cls);
  const msgpack_object *items = dmt_mp_path(wsman_body(call), path);
  size_t n = dmt_mp_list_len(items);
  msgpack_pack_map(pk, 2);
  pack_str(pk, "responses");
  msgpack_pack_array(pk, n);
  for (size_t i = 0; i < n; i++) msgpack_pack_object(pk, *dmt_mp_list_at(items, i));
  pack_str(pk, "status");
  msgpack_pack_int(pk, 200);
}

/* ---- general_settings ---- */

static void settings_read(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  if (!dmt_mp_get(wsman_body(call), "AMT_GeneralSettings")) {
    cmd_fail(c, 400, "device_error", "the device returned no general settings");
    return;
  }
  msgpack_pack_object(&c->pk, *wsman_tree(call));
  cmd_done(c, 200, c->acc.data, c->acc.size);
}

void verb_general_settings(struct cmd *c) { cmd_get(c, "AMT_GeneralSettings", settings_read); }

/* ---- version ---- */

static void version_setup(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  pack_str(&c->pk, "AMT_SetupAndConfigurationService");
  pack_get_entry(&c->pk, call, "AMT_SetupAndConfigurationService");
  cmd_done(c, 200, c->acc.data, c->acc.size);
}

static void version_software(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  msgpack_pack_map(&c->pk, 2);
  pack_str(&c->pk, "CIM_SoftwareIdentity");
  pack_pull_entry(&c->pk, call, "CIM_SoftwareIdentity");
  cmd_get(c, "AMT_SetupAndConfigurationService", version_setup);
}

void verb_version(struct cmd *c) { cmd_enum(c, "CIM_SoftwareIdentity", version_software); }

/* ---- hardware_info: one call per class, in DMT's order ---- */

static const struct { const char *cls; bool pull; } hw_steps[] = {
    {"CIM_ComputerSystemPackage", false}, {"CIM_Chassis", false},        {"CIM_Card", false},
    {"CIM_BIOSElement", false},           {"CIM_Processor", true},       {"CIM_PhysicalMemory", true},
    {"CIM_MediaAccessDevice", true},      {"CIM_PhysicalPackage", true}, {"CIM_SystemPackaging", true},
    {"CIM_Chip", true},
};
#define HW_STEPS (sizeof hw_steps / sizeof hw_steps[0])

static void hw_next(struct cmd *c, struct wsman_call *call);

static void hw_issue(struct cmd *c) {
  if (hw_steps[c->n[2]].pull) cmd_enum(c, hw_steps[c->n[2]].cls, hw_next);
  else cmd_get(c, hw_steps[c->n[2]].cls, hw_next);
}

static void hw_next(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  const char *cls = hw_steps[c->n[2]].cls;
  pack_str(&c->pk, cls);
  if (hw_steps[c->n[2]].pull) pack_pull_entry(&c->pk, call, cls);
  else pack_get_entry(&c->pk, call, cls);
  if ((size_t)++c->n[2] == HW_STEPS) {
    cmd_done(c, 200, c->acc.data, c->acc.size);
    return;
  }
  hw_issue(c);
}

void verb_hardware_info(struct cmd *c) {
  msgpack_pack_map(&c->pk, HW_STEPS);
  c->n[2] = 0;
  hw_issue(c);
}

/* ---- features ---- */

static void features_kvm(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  int64_t kvm_state = 0;
  bool kvm_available = dmt_mp_int(dmt_mp_path(wsman_body(call), "CIM_KVMRedirectionSAP.EnabledState"), &kvm_state);
  int64_t redir = c->n[0], opt_required = c->n[1], opt_state = c->n[2];
  const char *consent = opt_required == 0 ? "none" : opt_required == 1 ? "kvm" : "all";
  msgpack_packer *pk = &c->pk;
  msgpack_pack_map(pk, 12);
  pack_str(pk, "userConsent");
  pack_str(pk, consent);
  pack_str(pk, "redirection");
  if (c->n[3]) msgpack_pack_true(pk); else msgpack_pack_false(pk);
  pack_str(pk, "KVM");
  if (kvm_state == 2 || kvm_state == 6) msgpack_pack_true(pk); else msgpack_pack_false(pk);
  pack_str(pk, "SOL");
  if (redir == 32770 || redir == 32771) msgpack_pack_true(pk); else msgpack_pack_false(pk);
  pack_str(pk, "IDER");
  if (redir == 32769 || redir == 32771) msgpack_pack_true(pk); else msgpack_pack_false(pk);
  pack_str(pk, "optInState");
  msgpack_pack_int64(pk, opt_state);
  pack_str(pk, "kvmAvailable");
  if (kvm_available) msgpack_pack_true(pk); else msgpack_pack_false(pk);
  static const char *const unsupported[] = {"ocr", "httpsBootSupported", "winREBootSupported", "localPBABootSupported",
                                            "remoteErase"};
  for (size_t i = 0; i < 5; i++) {
    pack_str(pk, unsupported[i]);
    msgpack_pack_false(pk);
  }
  cmd_done(c, 200, c->acc.data, c->acc.size);
}

static void features_optin(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  const msgpack_object *o = dmt_mp_get(wsman_body(call), "IPS_OptInService");
  c->n[1] = c->n[2] = 0;
  dmt_mp_int(dmt_mp_get(o, "OptInRequired"), &c->n[1]);
  dmt_mp_int(dmt_mp_get(o, "OptInState"), &c->n[2]);
  cmd_get(c, "CIM_KVMRedirectionSAP", features_kvm);
}

static void features_redirection(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  const msgpack_object *r = dmt_mp_get(wsman_body(call), "AMT_RedirectionService");
  c->n[0] = 0;
  dmt_mp_int(dmt_mp_get(r, "EnabledState"), &c->n[0]);
  const msgpack_object *listener = dmt_mp_get(r, "ListenerEnabled");
  c->n[3] = listener && listener->type == MSGPACK_OBJECT_BOOLEAN && listener->via.boolean;
  cmd_get(c, "IPS_OptInService", features_optin);
}

void verb_features(struct cmd *c) { cmd_get(c, "AMT_RedirectionService", features_redirection); }
