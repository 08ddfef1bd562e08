/*
 * Power and boot classes of the simulated AMT. RequestPowerStateChange takes
 * effect on the device's power state (and persists); a transition the
 * platform cannot make from its current state (off -> off, on -> on, sleep
 * while off, ...) answers PT_STATUS NOT_READY (2) and a code that is not a
 * CIM power state INVALID_PARAMETER (36), which DMT reports as
 * ReturnValueStr NOT_READY / INVALID_PARAMETER (mps-cira.md §3.4).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* CIM PowerState values (mps-cira.md §3.4). */
enum {
  PS_ON = 2,
  PS_SLEEP_LIGHT = 3,
  PS_SLEEP_DEEP = 4,
  PS_POWER_CYCLE_SOFT = 5,
  PS_OFF_HARD = 6,
  PS_HIBERNATE = 7,
  PS_OFF_SOFT = 8,
  PS_POWER_CYCLE_HARD = 9,
  PS_MASTER_BUS_RESET = 10,
  PS_NMI = 11,
  PS_OFF_SOFT_GRACEFUL = 12,
  PS_OFF_HARD_GRACEFUL = 13,
  PS_MASTER_BUS_RESET_GRACEFUL = 14,
  PS_POWER_CYCLE_SOFT_GRACEFUL = 15,
  PS_POWER_CYCLE_HARD_GRACEFUL = 16,
};

static bool is_on(const struct sim_device *d) { return d->power_state == PS_ON; }

static void set_state(struct sim_device *d, uint8_t state) {
  d->power_state = state;
  if (state == PS_ON) d->os_power_saving = 2; /* a booting OS starts at full power */
  d->sim->count.power_changes++;
  sim_device_save(d);
}

void amt_power_set(struct sim_device *d, uint8_t state) { set_state(d, state); }

int amt_power_request(struct sim_device *d, long requested) {
  uint8_t next;
  switch (requested) {
    case PS_ON: /* from any off, sleep or hibernate state */
      if (is_on(d)) return AMT_RV_NOT_READY;
      next = PS_ON;
      break;
    case PS_POWER_CYCLE_SOFT:
    case PS_POWER_CYCLE_HARD:
    case PS_MASTER_BUS_RESET:
    case PS_NMI:
    case PS_MASTER_BUS_RESET_GRACEFUL:
    case PS_POWER_CYCLE_SOFT_GRACEFUL:
    case PS_POWER_CYCLE_HARD_GRACEFUL: /* resets and cycles: the machine must be running */
      if (!is_on(d)) return AMT_RV_NOT_READY;
      next = PS_ON;
      break;
    case PS_OFF_SOFT:
    case PS_OFF_SOFT_GRACEFUL:
      if (!is_on(d)) return AMT_RV_NOT_READY;
      next = PS_OFF_SOFT;
      break;
    case PS_OFF_HARD:
    case PS_OFF_HARD_GRACEFUL:
      if (!is_on(d)) return AMT_RV_NOT_READY;
      next = PS_OFF_HARD;
      break;
    case PS_SLEEP_LIGHT:
    case PS_SLEEP_DEEP:
    case PS_HIBERNATE: /* the OS must be up to go to sleep */
      if (!is_on(d)) return AMT_RV_NOT_READY;
      next = (uint8_t)requested;
      break;
    default:
      return AMT_RV_INVALID_PARAMETER;
  }
  set_state(d, next);
  return AMT_RV_SUCCESS;
}

static void power_mgmt_service(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {
      {"CreationClassName", "CIM_PowerManagementService"}, {"ElementName", "Intel(r) AMT Power Management Service"},
      {"EnabledState", "5"}, {"Name", "Intel(r) AMT Power Management Service"}, {"RequestedState", "12"},
      {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"}};
  amt_emit_instance(e, "CIM_PowerManagementService", p, sizeof p / sizeof p[0]);
}

static void power_mgmt_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                              struct amt_fault *f) {
  if (strcmp(w->method, "RequestPowerStateChange")) {
    amt_fault_not_supported(f);
    return;
  }
  long v = amt_param_long(w, "PowerState", -1);
  amt_return(b, "RequestPowerStateChange", v < 0 ? AMT_RV_INVALID_PARAMETER : amt_power_request(d, v), NULL);
}

static void associated_power(struct sim_device *d, struct amt_emit *e) {
  char state[8];
  snprintf(state, sizeof state, "%u", d->power_state);
  struct amt_prop p[16] = {{"PowerState", state}};
  size_t n = 1;
  static const char *from_on[] = {"8", "11", "12", "13", "14", "5", "10", "4", "7"};
  if (is_on(d)) {
    for (size_t i = 0; i < sizeof from_on / sizeof from_on[0]; i++)
      p[n++] = (struct amt_prop){"AvailableRequestedPowerStates", from_on[i]};
  } else {
    p[n++] = (struct amt_prop){"AvailableRequestedPowerStates", "2"};
  }
  p[n++] = (struct amt_prop){"RequestedPowerState", state};
  amt_emit_instance(e, "CIM_AssociatedPowerManagementService", p, n);
}

static void ips_power(struct sim_device *d, struct amt_emit *e) {
  char s[8];
  snprintf(s, sizeof s, "%u", is_on(d) ? d->os_power_saving : 0);
  const struct amt_prop p[] = {{"CreationClassName", "IPS_PowerManagementService"},
                               {"ElementName", "Intel(r) AMT Power Management Service"},
                               {"EnabledState", "5"},
                               {"Name", "Intel(r) AMT Power Management Service"},
                               {"OSPowerSavingState", s},
                               {"SystemCreationClassName", "CIM_ComputerSystem"},
                               {"SystemName", "Intel(r) AMT"}};
  amt_emit_instance(e, "IPS_PowerManagementService", p, sizeof p / sizeof p[0]);
}

static void ips_power_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                             struct amt_fault *f) {
  if (strcmp(w->method, "RequestOSPowerSavingStateChange")) {
    amt_fault_not_supported(f);
    return;
  }
  long v = amt_param_long(w, "OSPowerSavingState", -1);
  int rv = AMT_RV_SUCCESS;
  if (v != 2 && v != 3) rv = AMT_RV_INVALID_PARAMETER;
  else if (!is_on(d)) rv = AMT_RV_NOT_READY;
  else d->os_power_saving = (uint8_t)v;
  amt_return(b, "RequestOSPowerSavingStateChange", rv, NULL);
}

static const char *const boot_setting_flags[] = {
    "BIOSPause", "BIOSSetup", "ConfigurationDataReset", "EnforceSecureBoot", "ForcedProgressEvents", "LockKeyboard",
    "LockPowerButton", "LockResetButton", "LockSleepButton", "ReflashBIOS", "SecureErase", "UseIDER", "UseSOL",
    "UseSafeMode", "UserPasswordBypass"};

static void boot_setting_data(struct sim_device *d, struct amt_emit *e) {
  struct amt_prop p[32] = {{"BIOSLastStatus", "2"},
                           {"BIOSLastStatus", "0"},
                           {"BootMediaIndex", "0"},
                           {"ElementName", "Intel(r) AMT Boot Configuration Settings"},
                           {"FirmwareVerbosity", "0"},
                           {"IDERBootDevice", "0"},
                           {"InstanceID", "Intel(r) AMT:BootSettingData 0"},
                           {"OptionsCleared", d->boot_options_set ? "false" : "true"},
                           {"OwningEntity", "Intel(r) AMT"}};
  size_t n = 9;
  for (size_t i = 0; i < sizeof boot_setting_flags / sizeof boot_setting_flags[0]; i++)
    p[n++] = (struct amt_prop){boot_setting_flags[i], "false"};
  amt_emit_instance(e, "AMT_BootSettingData", p, n);
}

static void boot_setting_put(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                             struct amt_fault *f) {
  d->boot_options_set = false;
  for (size_t i = 0; i < w->nparams; i++)
    for (size_t k = 0; k < sizeof boot_setting_flags / sizeof boot_setting_flags[0]; k++)
      if (!strcmp(w->params[i].name, boot_setting_flags[k]) && !strcmp(w->params[i].value, "true"))
        d->boot_options_set = true;
  struct amt_emit e = {.b = b, .w = w, .limit = 1}; /* AMT echoes the stored instance */
  boot_setting_data(d, &e);
}

static void boot_capabilities(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {
      {"BIOSPause", "true"}, {"BIOSReflash", "true"}, {"BIOSSecureBoot", "true"}, {"BIOSSetup", "true"},
      {"ConfigurationDataReset", "true"}, {"ElementName", "Intel(r) AMT: Boot Capabilities"},
      {"ForceCDorDVDBoot", "true"}, {"ForceDiagnosticBoot", "false"}, {"ForceHardDriveBoot", "true"},
      {"ForceHardDriveSafeModeBoot", "false"}, {"ForcePXEBoot", "true"}, {"ForcedProgressEvents", "true"},
      {"IDER", "true"}, {"InstanceID", "Intel(r) AMT:BootCapabilities 0"}, {"KeyboardLock", "true"},
      {"PowerButtonLock", "false"}, {"ResetButtonLock", "false"}, {"SOL", "true"}, {"SecureErase", "false"},
      {"SleepButtonLock", "false"}, {"UserPasswordBypass", "true"}, {"VerbosityQuiet", "true"},
      {"VerbosityScreenBlank", "false"}, {"VerbosityVerbose", "true"}};
  amt_emit_instance(e, "AMT_BootCapabilities", p, sizeof p / sizeof p[0]);
}

static void boot_config_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                               struct amt_fault *f) {
  if (!strcmp(w->method, "ChangeBootOrder") || !strcmp(w->method, "SetBootConfigRole") ||
      !strcmp(w->method, "RequestStateChange"))
    amt_return(b, w->method, AMT_RV_SUCCESS, NULL);
  else amt_fault_not_supported(f);
}

static void boot_config_setting(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"ElementName", "Intel(r) AMT: Boot Configuration"},
                               {"InstanceID", "Intel(r) AMT: Boot Configuration 0"}};
  amt_emit_instance(e, "CIM_BootConfigSetting", p, 2);
}

static void boot_service(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"CreationClassName", "CIM_BootService"}, {"ElementName", "Intel(r) AMT Boot Service"},
                               {"EnabledState", "32769"}, {"Name", "Intel(r) AMT Boot Service"},
                               {"OperationalStatus", "0"}, {"RequestedState", "12"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"}};
  amt_emit_instance(e, "CIM_BootService", p, sizeof p / sizeof p[0]);
}

static void boot_source_setting(struct sim_device *d, struct amt_emit *e) {
  static const char *const sources[][2] = {{"Intel(r) AMT: Force Hard-drive Boot", "CIM:Hard-Disk:1"},
                                           {"Intel(r) AMT: Force PXE Boot", "CIM:Network:1"},
                                           {"Intel(r) AMT: Force CD/DVD Boot", "CIM:CD/DVD:1"}};
  for (size_t i = 0; i < 3; i++) {
    const struct amt_prop p[] = {{"ElementName", "Intel(r) AMT: Boot Source"}, {"FailThroughSupported", "2"},
                                 {"InstanceID", sources[i][0]}, {"StructuredBootString", sources[i][1]}};
    amt_emit_instance(e, "CIM_BootSourceSetting", p, sizeof p / sizeof p[0]);
  }
}

const struct amt_class amt_power_classes[] = {
    {"CIM_PowerManagementService", power_mgmt_service, NULL, power_mgmt_invoke, NULL},
    {"CIM_AssociatedPowerManagementService", associated_power, NULL, NULL, NULL},
    /* DMT pulls CIM_ServiceAvailableToElement and reads Items.CIM_AssociatedPowerManagementService. */
    {"CIM_ServiceAvailableToElement", associated_power, NULL, NULL, NULL},
    {"IPS_PowerManagementService", ips_power, NULL, ips_power_invoke, NULL},
    {"AMT_BootSettingData", boot_setting_data, boot_setting_put, NULL, NULL},
    {"AMT_BootCapabilities", boot_capabilities, NULL, NULL, NULL},
    {"CIM_BootConfigSetting", boot_config_setting, NULL, boot_config_invoke, NULL},
    {"CIM_BootService", boot_service, NULL, boot_config_invoke, NULL},
    {"CIM_BootSourceSetting", boot_source_setting, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
