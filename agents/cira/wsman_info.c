/*
 * Information verbs, in DMT's call sequences and response shapes
 * (mps-cira.md §2.6, §3.3; shapes in shape.c):
 *   general_settings  Get AMT_GeneralSettings -> {Header, Body}
 *   version           E/P CIM_SoftwareIdentity, Get AMT_SetupAndConfigurationService
 *   hardware_info     ten inventory classes in DMT's order, each {response?, responses, status}
 *   features          redirection, opt-in, KVM SAP and the OCR data (boot service,
 *                     capabilities, boot settings, boot sources)
 */
#include <stdio.h>
#include <string.h>

#include "cira.h"
#include "dmt/mptree.h"

/* ---- general_settings ---- */

static void settings_read(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  if (!dmt_mp_get(shape_body(wsman_tree(call)), "AMT_GeneralSettings")) {
    cmd_fail(c, 400, "device_error", "the device returned no general settings");
    return;
  }
  msgpack_pack_object(&c->pk, *wsman_tree(call));
  cmd_done(c, 200);
}

void verb_general_settings(struct cmd *c) { cmd_get(c, "AMT_GeneralSettings", settings_read); }

/* ---- version ---- */

static void version_setup(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  shape_str(&c->pk, "AMT_SetupAndConfigurationService");
  shape_get_entry(&c->pk, wsman_tree(call), "AMT_SetupAndConfigurationService");
  cmd_done(c, 200);
}

static void version_software(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  msgpack_pack_map(&c->pk, 2);
  shape_str(&c->pk, "CIM_SoftwareIdentity");
  shape_pull_entry(&c->pk, wsman_tree(call), "CIM_SoftwareIdentity");
  cmd_get(c, "AMT_SetupAndConfigurationService", version_setup);
}

void verb_version(struct cmd *c) { cmd_enum(c, "CIM_SoftwareIdentity", version_software); }

/* ---- hardware_info: one call per class, in DMT's order ---- */

static const struct {
  const char *cls;
  bool pull;
} hw_steps[] = {
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
  shape_str(&c->pk, cls);
  if (hw_steps[c->n[2]].pull) shape_pull_entry(&c->pk, wsman_tree(call), cls);
  else shape_get_entry(&c->pk, wsman_tree(call), cls);
  if ((size_t)++c->n[2] == HW_STEPS) {
    cmd_done(c, 200);
    return;
  }
  hw_issue(c);
}

void verb_hardware_info(struct cmd *c) {
  msgpack_pack_map(&c->pk, HW_STEPS);
  c->n[2] = 0;
  hw_issue(c);
}

/* ---- features: seven reads kept in the command's slots, shaped at the end ---- */

static const struct {
  const char *cls;
  bool pull;
  bool optional; /* a device without it (no KVM) still answers */
} feature_steps[] = {
    {"AMT_RedirectionService", false, false}, {"IPS_OptInService", false, false},
    {"CIM_KVMRedirectionSAP", false, true},   {"CIM_BootService", false, true},
    {"AMT_BootCapabilities", false, true},    {"AMT_BootSettingData", false, true},
    {"CIM_BootSourceSetting", true, true},
};
#define FEATURE_STEPS (sizeof feature_steps / sizeof feature_steps[0])

static void features_next(struct cmd *c, struct wsman_call *call) {
  size_t i = (size_t)c->n[0];
  if (call->error == WSMAN_FAULT && feature_steps[i].optional) {
    /* leave the slot empty */
  } else if (cmd_check(c, call)) {
    return;
  } else {
    cmd_keep(c, (unsigned)i, call);
  }
  if (++c->n[0] < (int64_t)FEATURE_STEPS) {
    size_t k = (size_t)c->n[0];
    if (feature_steps[k].pull) cmd_enum(c, feature_steps[k].cls, features_next);
    else cmd_get(c, feature_steps[k].cls, features_next);
    return;
  }
  struct features_in in = {cmd_saved(c, 0), cmd_saved(c, 1), cmd_saved(c, 2), cmd_saved(c, 3),
                           cmd_saved(c, 4), cmd_saved(c, 5), cmd_saved(c, 6)};
  shape_features(&c->pk, &in);
  cmd_done(c, 200);
}

void verb_features(struct cmd *c) {
  c->n[0] = 0;
  cmd_get(c, feature_steps[0].cls, features_next);
}
