/*
 * Power and boot classes of the simulated AMT. Power state changes take
 * effect (and persist); transitions a real platform cannot make from its
 * current state answer AMT's NOT_READY (2), unknown codes INVALID_PARAMETER
 * (36), as DMT sees from firmware.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amt_classes.h"

#define RV_SUCCESS 0
#define RV_NOT_READY 2
#define RV_INVALID_PARAMETER 36

static bool is_on(const struct sim_device *d) { return d->power_state == 2; }

/* Applies a CIM RequestPowerStateChange; returns AMT's ReturnValue. */
static int change_power(struct sim_device *d, long requested) {
  uint16_t next;
  switch (requested) {
    case 2: /* power on: from any off, sleep or hibernate state */
      if (is_on(d)) return RV_NOT_READY;
      next = 2;
      break;
    case 5: case 9: case 10: case 11: case 14: case 15: case 16: /* cycles, resets, NMI */
      if (!is_on(d)) return RV_NOT_READY;
      next = 2;
      break;
    case 8: case 12: /* off soft, off soft graceful */
      if (!is_on(d)) return RV_NOT_READY;
      next = 8;
      break;
    case 6: case 13: /* off hard, off hard graceful */
      if (!is_on(d)) return RV_NOT_READY;
      next = 6;
      break;
    case 3: case 4: case 7: /* sleep light, sleep deep, hibernate: the OS must be up */
      if (!is_on(d) || d->os_power_saving == 0) return RV_NOT_READY;
      next = (uint16_t)requested;
      break;
    default:
      return RV_INVALID_PARAMETER;
  }
  d->power_state = next;
  d->sim->count.power_changes++;
  sim_device_save(d);
  return RV_SUCCESS;
}

static void power_mgmt_service(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop p[] = {
      {"CreationClassName", "CIM_PowerManagementService"}, {"ElementName", "Intel(r) AMT Power Management Service"},
      {"EnabledState", "5"}, {"Name", "Intel(r) AMT Power Management Service"}, {"RequestedState", "12"},
      {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"}};
  amt_instance(b, "CIM_PowerManagementService", pull, p, sizeof p / sizeof p[0]);
}

static void power_mgmt_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                              struct amt_fault *f) {
  if (strcmp(w->method, "RequestPowerStateChange")) {
    f->subcode = "b:ActionNotSupported";
    f->reason = "The action is not supported by the service.";
    return;
  }
  const char *ps = dmt_wsman_request_param(w, "PowerState");
  char *end;
  long v = ps ? strtol(ps, &end, 10) : -1;
  amt_return(b, "RequestPowerStateChange", (ps && !*end) ? change_power(d, v) : RV_INVALID_PARAMETER, NULL);
}

static void associated_power(struct sim_device *d, struct dmt_buf *b, bool pull, const char *cls) {
  char state[8];
  snprintf(state, sizeof state, "%u", d->power_state);
  struct amt_prop p[16] = {{"PowerState", state}};
  size_t n = 1;
  static const char *on_states[] = {"8", "11", "12", "13", "14", "5", "10", "4", "7"};
  if (is_on(d)) {
    for (size_t i = 0; i < sizeof on_states / sizeof on_states[0]; i++)
      p[n++] = (struct amt_prop){"AvailableRequestedPowerStates", on_states[i]};
  } else {
    p[n++] = (struct amt_prop){"AvailableRequestedPowerStates", "2"};
  }
  p[n++] = (struct amt_prop){"RequestedPowerState", state};
  amt_instance(b, cls, pull, p, n);
}

static void associated_power_cls(struct sim_device *d, struct dmt_buf *b, bool pull) {
  associated_power(d, b, pull, "CIM_AssociatedPowerManagementService");
}

/* DMT pulls CIM_ServiceAvailableToElement and reads Items.CIM_AssociatedPowerManagementService. */
static void service_available(struct sim_device *d, struct dmt_buf *b, bool pull) {
  associated_power(d, b, true, "CIM_AssociatedPowerManagementService");
}

static void ips_power(struct sim_device *d, struct dmt_buf *b, bool pull) {
  char s[8];
  snprintf(s, sizeof s, "%u", is_on(d) ? d->os_power_saving : 0);
  const struct amt_prop p[] = {{"CreationClassName", "IPS_PowerManagementService"},
                               {"ElementName", "Intel(r) AMT Power Management Service"},
                               {"EnabledState", "5"},
                               {"Name", "Intel(r) AMT Power Management Service"},
                               {"OSPowerSavingState", s},
                               {"SystemName", "Intel(r) AMT"}};
  amt_instance(b, "IPS_PowerManagementService", pull, p, sizeof p / sizeof p[0]);
}

static void ips_power_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                             struct amt_fault *f) {
  if (strcmp(w->method, "RequestOSPowerSavingStateChange")) {
    f->subcode = "b:ActionNotSupported";
    f->reason = "The action is not supported by the service.";
    return;
  }
  const char *s = dmt_wsman_request_param(w, "OSPowerSavingState");
  int v = s ? atoi(s) : -1;
  int rv = RV_SUCCESS;
  if (v != 2 && v != 3) rv = RV_INVALID_PARAMETER;
  else if (!is_on(d)) rv = RV_NOT_READY;
  else d->os_power_saving = (uint8_t)v;
  amt_return(b, "RequestOSPowerSavingStateChange", rv, NULL);
}

static const char *const boot_setting_fields[] = {
    "BIOSPause", "BIOSSetup", "ConfigurationDataReset", "EnforceSecureBoot", "ForcedProgressEvents", "LockKeyboard",
    "LockPowerButton", "LockResetButton", "LockSleepButton", "ReflashBIOS", "SecureErase", "UseIDER", "UseSOL",
    "UseSafeMode", "UserPasswordBypass"};

static void boot_setting_data(struct sim_device *d, struct dmt_buf *b, bool pull) {
  struct amt_prop p[32] = {{"BootMediaIndex", "0"},
                           {"ElementName", "Intel(r) AMT Boot Configuration Settings"},
                           {"FirmwareVerbosity", "0"},
                           {"IDERBootDevice", "0"},
                           {"InstanceID", "Intel(r) AMT:BootSettingData 0"},
                           {"OptionsCleared", d->boot_settings_dirty ? "false" : "true"},
                           {"OwningEntity", "Intel(r) AMT"}};
  size_t n = 7;
  for (size_t i = 0; i < sizeof boot_setting_fields / sizeof boot_setting_fields[0]; i++)
    p[n++] = (struct amt_prop){boot_setting_fields[i], "false"};
  amt_instance(b, "AMT_BootSettingData", pull, p, n);
}

static void boot_setting_put(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                             struct amt_fault *f) {
  /* AMT echoes the stored instance. */
  d->boot_settings_dirty = false;
  for (size_t i = 0; i < w->nparams; i++)
    if (!strcmp(w->params[i].value, "true")) d->boot_settings_dirty = true;
  boot_setting_data(d, b, false);
}

static void boot_capabilities(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop p[] = {
      {"BIOSPause", "true"}, {"BIOSReflash", "true"}, {"BIOSSecureBoot", "true"}, {"BIOSSetup", "true"},
      {"ConfigurationDataReset", "true"}, {"ElementName", "Intel(r) AMT: Boot Capabilities"},
      {"ForceCDorDVDBoot", "true"}, {"ForceDiagnosticBoot", "false"}, {"ForceHardDriveBoot", "true"},
      {"ForceHardDriveSafeModeBoot", "false"}, {"ForcePXEBoot", "true"}, {"ForcedProgressEvents", "true"},
      {"IDER", "true"}, {"InstanceID", "Intel(r) AMT:BootCapabilities 0"}, {"KeyboardLock", "true"},
      {"PowerButtonLock", "false"}, {"ResetButtonLock", "false"}, {"SOL", "true"}, {"SecureErase", "false"},
      {"SleepButtonLock", "false"}, {"UserPasswordBypass", "true"}, {"VerbosityQuiet", "true"},
      {"VerbosityScreenBlank", "false"}, {"VerbosityVerbose", "true"}};
  amt_instance(b, "AMT_BootCapabilities", pull, p, sizeof p / sizeof p[0]);
}

static void boot_config_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                               struct amt_fault *f) {
  if (!strcmp(w->method, "ChangeBootOrder")) amt_return(b, "ChangeBootOrder", RV_SUCCESS, NULL);
  else if (!strcmp(w->method, "SetBootConfigRole")) amt_return(b, "SetBootConfigRole", RV_SUCCESS, NULL);
  else if (!strcmp(w->method, "RequestStateChange")) amt_return(b, "RequestStateChange", RV_SUCCESS, NULL);
  else {
    f->subcode = "b:ActionNotSupported";
    f->reason = "The action is not supported by the service.";
  }
}

static void boot_config_setting(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop p[] = {{"ElementName", "Intel(r) AMT: Boot Configuration"},
                               {"InstanceID", "Intel(r) AMT: Boot Configuration 0"}};
  amt_instance(b, "CIM_BootConfigSetting", pull, p, 2);
}

static void boot_service(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop p[] = {{"CreationClassName", "CIM_BootService"}, {"ElementName", "Intel(r) AMT Boot Service"},
                               {"EnabledState", "32769"}, {"Name", "Intel(r) AMT Boot Service"},
                               {"OperationalStatus", "0"}, {"RequestedState", "12"}};
  amt_instance(b, "CIM_BootService", pull, p, sizeof p / sizeof p[0]);
}

static void boot_source_setting(struct sim_device *d, struct dmt_buf *b, bool pull) {
  static const char *ids[] = {"Intel(r) AMT: Force Hard-drive Boot", "Intel(r) AMT: Force PXE Boot",
                              "Intel(r) AMT: Force CD/DVD Boot"};
  for (size_t i = 0; i < 3; i++) {
    const struct amt_prop p[] = {{"ElementName", "Intel(r) AMT: Boot Source"}, {"InstanceID", ids[i]},
                                 {"StructuredBootString", "CIM:Hard-Disk:1"}};
    amt_instance(b, "CIM_BootSourceSetting", pull, p, 3);
    if (!pull) break;
  }
}

const struct amt_class amt_power_classes[] = {
    {"CIM_PowerManagementService", power_mgmt_service, NULL, power_mgmt_invoke, NULL},
    {"CIM_AssociatedPowerManagementService", associated_power_cls, NULL, NULL, NULL},
    {"CIM_ServiceAvailableToElement", service_available, NULL, NULL, NULL},
    {"IPS_PowerManagementService", ips_power, NULL, ips_power_invoke, NULL},
    {"AMT_BootSettingData", boot_setting_data, boot_setting_put, NULL, NULL},
    {"AMT_BootCapabilities", boot_capabilities, NULL, NULL, NULL},
    {"CIM_BootConfigSetting", boot_config_setting, NULL, boot_config_invoke, NULL},
    {"CIM_BootService", boot_service, NULL, boot_config_invoke, NULL},
    {"CIM_BootSourceSetting", boot_source_setting, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
