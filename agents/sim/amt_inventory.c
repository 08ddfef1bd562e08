/*
 * Identity, version and hardware inventory classes of the simulated AMT, with
 * plausible values derived from the device so every device answers
 * differently (serial numbers, asset tags) while PlatformGUID is exactly the
 * UUID the device sends over APF (mps-cira.md §1.8). AMT_GeneralSettings
 * reports the digest realm and takes a Put of the host name (RPS's
 * synchostname) and the network flags RPS fixes up (rps-activation.md §2.6b).
 */
#include <stdio.h>
#include <string.h>

#include "sim.h"

static void general_settings(struct sim_device *d, struct amt_emit *e) {
  char fqdn[128], realm[40];
  snprintf(fqdn, sizeof fqdn, "%s.%s", d->hostname, d->dns_suffix ? d->dns_suffix : "");
  sim_device_realm(d, realm);
  const struct amt_prop p[] = {
      {"AMTNetworkEnabled", "1"}, {"DDNSPeriodicUpdateInterval", "1440"}, {"DDNSTTL", "900"},
      {"DDNSUpdateByDHCPServerEnabled", "true"}, {"DDNSUpdateEnabled", "false"}, {"DHCPv6ConfigurationTimeout", "0"},
      {"DigestRealm", realm}, {"DomainName", d->dns_suffix}, {"ElementName", "Intel(r) AMT: General Settings"},
      {"HostName", d->hostname}, {"HostOSFQDN", fqdn}, {"IdleWakeTimeout", "65535"},
      {"InstanceID", "Intel(r) AMT: General Settings"}, {"NetworkInterfaceEnabled", "true"},
      {"PingResponseEnabled", "true"}, {"PowerSource", "0"}, {"PreferredAddressFamily", "0"},
      {"PresenceNotificationInterval", "0"}, {"PrivacyLevel", "0"}, {"RmcpPingResponseEnabled", "true"},
      {"SharedFQDN", "true"}, {"ThunderboltDockEnabled", "0"}, {"WsmanOnlyMode", "false"}};
  amt_emit_instance(e, "AMT_GeneralSettings", p, sizeof p / sizeof p[0]);
}

static void general_settings_put(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                                 struct amt_fault *f) {
  const char *host = dmt_wsman_request_param(w, "HostName");
  if (host) {
    if (!*host || strlen(host) >= sizeof d->hostname) {
      amt_fault_invalid_parameter(f);
      return;
    }
    snprintf(d->hostname, sizeof d->hostname, "%s", host);
    sim_device_save(d);
  }
  struct amt_emit e = {.b = b, .w = w, .limit = 1};
  general_settings(d, &e);
}

static void software_identity(struct sim_device *d, struct amt_emit *e) {
  const struct sim_model *m = d->model;
  const char *const entries[][2] = {
      {"Flash", m->version},         {"Netstack", m->version},       {"AMTApps", m->version},
      {"AMT", m->version},           {"Sku", m->sku},                {"VendorID", "8086"},
      {"Build Number", m->build},    {"Recovery Version", m->version}, {"Recovery Build Num", m->build},
      {"Legacy Mode", "False"},      {"AMT FW Core Version", m->version}};
  for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
    const struct amt_prop p[] = {{"InstanceID", entries[i][0]}, {"IsEntity", "true"}, {"VersionString", entries[i][1]}};
    amt_emit_instance(e, "CIM_SoftwareIdentity", p, 3);
  }
}

static void serial_of(const struct sim_device *d, const char *kind, char *out, size_t n) {
  snprintf(out, n, "%s%02X%02X%02X%02X", kind, d->uuid[12], d->uuid[13], d->uuid[14], d->uuid[15]);
}

static void computer_system_package(struct sim_device *d, struct amt_emit *e) {
  char guid_hex[33];
  sim_device_platform_guid(d, guid_hex);
  const struct amt_prop p[] = {{"PlatformGUID", guid_hex}};
  amt_emit_instance(e, "CIM_ComputerSystemPackage", p, 1);
}

static void chassis(struct sim_device *d, struct amt_emit *e) {
  char sn[32];
  serial_of(d, "CH", sn, sizeof sn);
  const struct amt_prop p[] = {{"ChassisPackageType", "3"}, {"CreationClassName", "CIM_Chassis"},
                               {"ElementName", "Managed System Chassis"}, {"Manufacturer", "Simulated Systems Inc."},
                               {"Model", "SimBook 9000"}, {"OperationalStatus", "0"}, {"PackageType", "3"},
                               {"SerialNumber", sn}, {"Tag", "CIM_Chassis"}, {"Version", "1.0"}};
  amt_emit_instance(e, "CIM_Chassis", p, sizeof p / sizeof p[0]);
}

static void card(struct sim_device *d, struct amt_emit *e) {
  char sn[32];
  serial_of(d, "MB", sn, sizeof sn);
  const struct amt_prop p[] = {{"CreationClassName", "CIM_Card"}, {"ElementName", "Managed System Base Board"},
                               {"Manufacturer", "Simulated Systems Inc."}, {"Model", "SIM-Q670"},
                               {"OperationalStatus", "0"}, {"PackageType", "9"}, {"SerialNumber", sn},
                               {"Tag", "CIM_Card"}, {"Version", "A01"}};
  amt_emit_instance(e, "CIM_Card", p, sizeof p / sizeof p[0]);
}

static void bios_element(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"ElementName", "Primary BIOS"}, {"Manufacturer", "Simulated Systems Inc."},
                               {"Name", "Primary BIOS"}, {"OperationalStatus", "0"}, {"PrimaryBIOS", "true"},
                               {"@ReleaseDate", "<h:Datetime xmlns:h=\"http://schemas.dmtf.org/wbem/wscim/1/common\">"
                                               "2025-06-01T00:00:00Z</h:Datetime>"},
                               {"SoftwareElementID", "SIM.1.2.3"}, {"SoftwareElementState", "2"},
                               {"TargetOperatingSystem", "66"}, {"Version", "SIM.1.2.3"}};
  amt_emit_instance(e, "CIM_BIOSElement", p, sizeof p / sizeof p[0]);
}

static void processor(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"CPUStatus", "1"}, {"CreationClassName", "CIM_Processor"},
                               {"CurrentClockSpeed", "2600"}, {"DeviceID", "CPU 0"},
                               {"ElementName", "Managed System CPU"}, {"EnabledState", "2"},
                               {"ExternalBusClockSpeed", "100"}, {"Family", "198"}, {"HealthState", "0"},
                               {"MaxClockSpeed", "8300"}, {"OperationalStatus", "0"}, {"RequestedState", "12"},
                               {"Role", "Central"}, {"Stepping", "2"}, {"SystemCreationClassName", "CIM_ComputerSystem"},
                               {"SystemName", "ManagedSystem"}, {"UpgradeMethod", "1"}};
  amt_emit_instance(e, "CIM_Processor", p, sizeof p / sizeof p[0]);
}

static void physical_memory(struct sim_device *d, struct amt_emit *e) {
  for (int slot = 0; slot < 2; slot++) {
    char tag[24], sn[32];
    snprintf(tag, sizeof tag, "9876543210 %d", slot);
    serial_of(d, slot ? "M1" : "M0", sn, sizeof sn);
    const struct amt_prop p[] = {{"BankLabel", slot ? "BANK 1" : "BANK 0"}, {"Capacity", "17179869184"},
                                 {"CreationClassName", "CIM_PhysicalMemory"},
                                 {"ElementName", "Managed System Memory Chip"}, {"FormFactor", "13"},
                                 {"Manufacturer", "Simulated Memory"}, {"MemoryType", "34"},
                                 {"PartNumber", "SIM16G4800"}, {"SerialNumber", sn}, {"Speed", "4800"},
                                 {"Tag", tag}};
    amt_emit_instance(e, "CIM_PhysicalMemory", p, sizeof p / sizeof p[0]);
  }
}

static void media_access(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"Capabilities", "4"}, {"CreationClassName", "CIM_MediaAccessDevice"},
                               {"DeviceID", "MEDIA DEV 0"}, {"ElementName", "Managed System Media Access Device"},
                               {"EnabledDefault", "2"}, {"EnabledState", "0"}, {"MaxMediaSize", "512110190"},
                               {"OperationalStatus", "0"}, {"RequestedState", "12"}, {"Security", "2"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "ManagedSystem"}};
  amt_emit_instance(e, "CIM_MediaAccessDevice", p, sizeof p / sizeof p[0]);
}

/* CIM_PhysicalPackage enumerates both the base board and the chassis, as firmware does. */
static void physical_package(struct sim_device *d, struct amt_emit *e) {
  card(d, e);
  chassis(d, e);
}

static void system_packaging(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"Antecedent", "CIM_Chassis"}, {"Dependent", "CIM_ComputerSystem"}};
  amt_emit_instance(e, "CIM_SystemPackaging", p, 2);
}

static void chip(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"CanBeFRUed", "true"}, {"CreationClassName", "CIM_Chip"},
                               {"ElementName", "Managed System Processor Chip"},
                               {"Manufacturer", "Intel(R) Corporation"}, {"OperationalStatus", "0"},
                               {"Tag", "CPU 0"}, {"Version", "Intel(R) Core(TM) i7"}};
  amt_emit_instance(e, "CIM_Chip", p, sizeof p / sizeof p[0]);
}

const struct amt_class amt_inventory_classes[] = {
    {"AMT_GeneralSettings", general_settings, general_settings_put, NULL, NULL},
    {"CIM_SoftwareIdentity", software_identity, NULL, NULL, NULL},
    {"CIM_ComputerSystemPackage", computer_system_package, NULL, NULL, NULL},
    {"CIM_Chassis", chassis, NULL, NULL, NULL},
    {"CIM_Card", card, NULL, NULL, NULL},
    {"CIM_BIOSElement", bios_element, NULL, NULL, NULL},
    {"CIM_Processor", processor, NULL, NULL, NULL},
    {"CIM_PhysicalMemory", physical_memory, NULL, NULL, NULL},
    {"CIM_MediaAccessDevice", media_access, NULL, NULL, NULL},
    {"CIM_PhysicalPackage", physical_package, NULL, NULL, NULL},
    {"CIM_SystemPackaging", system_packaging, NULL, NULL, NULL},
    {"CIM_Chip", chip, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
