/*
 * Identity, version, feature and hardware inventory classes of the simulated
 * AMT, with plausible values derived from the device so every device answers
 * differently (serial numbers, MACs) and PlatformGUID matches the APF UUID.
 */
#include <stdio.h>
#include <string.h>

#include "amt_classes.h"

static void general_settings(struct sim_device *d, struct dmt_buf *b, bool pull) {
  char fqdn[160];
  snprintf(fqdn, sizeof fqdn, "%s.%s", d->hostname, d->dns_suffix);
  const struct amt_prop p[] = {
      {"AMTNetworkEnabled", "1"}, {"DDNSPeriodicUpdateInterval", "1440"}, {"DDNSTTL", "900"},
      {"DDNSUpdateByDHCPServerEnabled", "true"}, {"DDNSUpdateEnabled", "false"}, {"DHCPv6ConfigurationTimeout", "0"},
      {"DigestRealm", d->realm}, {"DomainName", d->dns_suffix}, {"ElementName", "Intel(r) AMT: General Settings"},
      {"HostName", d->hostname}, {"HostOSFQDN", fqdn}, {"IdleWakeTimeout", "65535"},
      {"InstanceID", "Intel(r) AMT: General Settings"}, {"NetworkInterfaceEnabled", "true"},
      {"PingResponseEnabled", "true"}, {"PowerSource", "0"}, {"PreferredAddressFamily", "0"},
      {"PresenceNotificationInterval", "0"}, {"PrivacyLevel", "0"}, {"RmcpPingResponseEnabled", "true"},
      {"SharedFQDN", "true"}, {"ThunderboltDockEnabled", "0"}, {"WsmanOnlyMode", "false"}};
  amt_instance(b, "AMT_GeneralSettings", pull, p, sizeof p / sizeof p[0]);
}

static void software_identity(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop entries[][3] = {
      {{"InstanceID", "Flash"}, {"IsEntity", "true"}, {"VersionString", d->amt_version}},
      {{"InstanceID", "Netstack"}, {"IsEntity", "true"}, {"VersionString", d->amt_version}},
      {{"InstanceID", "AMTApps"}, {"IsEntity", "true"}, {"VersionString", d->amt_version}},
      {{"InstanceID", "AMT"}, {"IsEntity", "true"}, {"VersionString", d->amt_version}},
      {{"InstanceID", "Sku"}, {"IsEntity", "true"}, {"VersionString", d->amt_sku}},
      {{"InstanceID", "VendorID"}, {"IsEntity", "true"}, {"VersionString", "8086"}},
      {{"InstanceID", "Build Number"}, {"IsEntity", "true"}, {"VersionString", d->amt_build}},
      {{"InstanceID", "Recovery Version"}, {"IsEntity", "true"}, {"VersionString", d->amt_version}},
      {{"InstanceID", "Recovery Build Num"}, {"IsEntity", "true"}, {"VersionString", d->amt_build}},
      {{"InstanceID", "Legacy Mode"}, {"IsEntity", "true"}, {"VersionString", "False"}},
      {{"InstanceID", "AMT FW Core Version"}, {"IsEntity", "true"}, {"VersionString", d->amt_version}}};
  for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
    amt_instance(b, "CIM_SoftwareIdentity", pull, entries[i], 3);
    if (!pull) break;
  }
}

static void redirection_service(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop p[] = {{"AccessLog", "0"}, {"CreationClassName", "AMT_RedirectionService"},
                               {"ElementName", "Intel(r) AMT Redirection Service"}, {"EnabledState", "32771"},
                               {"ListenerEnabled", "true"}, {"Name", "Intel(r) AMT Redirection Service"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"}};
  amt_instance(b, "AMT_RedirectionService", pull, p, sizeof p / sizeof p[0]);
}

static void optin_service(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop p[] = {{"CanModifyOptInPolicy", "1"}, {"CreationClassName", "IPS_OptInService"},
                               {"ElementName", "Intel(r) AMT OptIn Service"}, {"Name", "Intel(r) AMT OptIn Service"},
                               {"OptInCodeTimeout", "120"}, {"OptInDisplayTimeout", "300"},
                               {"OptInRequired", d->mode == SIM_MODE_CCM ? "4294967295" : "1"}, {"OptInState", "0"},
                               {"SystemName", "Intel(r) AMT"}};
  amt_instance(b, "IPS_OptInService", pull, p, sizeof p / sizeof p[0]);
}

static void generic_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                           struct amt_fault *f) {
  amt_return(b, w->method, 0, NULL);
}

static void generic_put_echo(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                             struct amt_fault *f) {
  struct amt_prop p[DMT_WSMAN_MAX_PARAMS];
  for (size_t i = 0; i < w->nparams; i++) p[i] = (struct amt_prop){w->params[i].name, w->params[i].value};
  amt_instance(b, w->class_name, false, p, w->nparams);
}

static void kvm_sap(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop p[] = {{"CreationClassName", "CIM_KVMRedirectionSAP"},
                               {"ElementName", "KVM Redirection Service Access Point"}, {"EnabledState", "2"},
                               {"Name", "KVM Redirection Service Access Point"}, {"RequestedState", "5"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}};
  amt_instance(b, "CIM_KVMRedirectionSAP", pull, p, sizeof p / sizeof p[0]);
}

static void ethernet_port(struct sim_device *d, struct dmt_buf *b, bool pull) {
  char mac[24];
  snprintf(mac, sizeof mac, "a4-ae-12-%02x-%02x-%02x", d->uuid[13], d->uuid[14], d->uuid[15]);
  const struct amt_prop p[] = {{"DHCPEnabled", "true"}, {"DefaultGateway", "192.168.0.1"},
                               {"ElementName", "Intel(r) AMT Ethernet Port Settings"},
                               {"IPAddress", "192.168.0.10"}, {"InstanceID", "Intel(r) AMT Ethernet Port Settings 0"},
                               {"IpSyncEnabled", "true"}, {"LinkIsUp", "true"}, {"LinkPolicy", "1"},
                               {"LinkPolicy", "14"}, {"LinkPolicy", "16"}, {"MACAddress", mac},
                               {"PhysicalConnectionType", "0"}, {"PrimaryDNS", "192.168.0.1"},
                               {"SharedDynamicIP", "true"}, {"SharedMAC", "true"}, {"SharedStaticIp", "false"},
                               {"SubnetMask", "255.255.255.0"}};
  amt_instance(b, "AMT_EthernetPortSettings", pull, p, sizeof p / sizeof p[0]);
}

/* ---- hardware ---- */

static void serial_of(const struct sim_device *d, const char *kind, char *out, size_t n) {
  snprintf(out, n, "%s%02X%02X%02X%02X", kind, d->uuid[12], d->uuid[13], d->uuid[14], d->uuid[15]);
}

static void computer_system_package(struct sim_device *d, struct dmt_buf *b, bool pull) {
  char guid_hex[33];
  for (int i = 0; i < 16; i++) snprintf(guid_hex + 2 * i, 3, "%02X", d->uuid[i]);
  const struct amt_prop p[] = {{"PlatformGUID", guid_hex}};
  amt_instance(b, "CIM_ComputerSystemPackage", pull, p, 1);
}

static void chassis(struct sim_device *d, struct dmt_buf *b, bool pull) {
  char sn[32];
  serial_of(d, "CH", sn, sizeof sn);
  const struct amt_prop p[] = {{"ChassisPackageType", "3"}, {"CreationClassName", "CIM_Chassis"},
                               {"ElementName", "Managed System Chassis"}, {"Manufacturer", "Simulated Systems Inc."},
                               {"Model", "SimBook 9000"}, {"OperationalStatus", "0"}, {"PackageType", "3"},
                               {"SerialNumber", sn}, {"Tag", "CIM_Chassis"}, {"Version", "1.0"}};
  amt_instance(b, "CIM_Chassis", pull, p, sizeof p / sizeof p[0]);
}

static void card(struct sim_device *d, struct dmt_buf *b, bool pull) {
  char sn[32];
  serial_of(d, "MB", sn, sizeof sn);
  const struct amt_prop p[] = {{"CreationClassName", "CIM_Card"}, {"ElementName", "Managed System Base Board"},
                               {"Manufacturer", "Simulated Systems Inc."}, {"Model", "SIM-Q670"},
                               {"OperationalStatus", "0"}, {"PackageType", "9"}, {"SerialNumber", sn},
                               {"Tag", "CIM_Card"}, {"Version", "A01"}};
  amt_instance(b, "CIM_Card", pull, p, sizeof p / sizeof p[0]);
}

static void bios_element(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop p[] = {{"ElementName", "Primary BIOS"}, {"Manufacturer", "Simulated Systems Inc."},
                               {"Name", "Primary BIOS"}, {"OperationalStatus", "0"}, {"PrimaryBIOS", "true"},
                               {"ReleaseDate", "2025-06-01T00:00:00Z"}, {"SoftwareElementID", "SIM.1.2.3"},
                               {"SoftwareElementState", "2"}, {"TargetOperatingSystem", "66"},
                               {"Version", "SIM.1.2.3"}};
  amt_instance(b, "CIM_BIOSElement", pull, p, sizeof p / sizeof p[0]);
}

static void processor(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop p[] = {{"CPUStatus", "1"}, {"CreationClassName", "CIM_Processor"},
                               {"CurrentClockSpeed", "2600"}, {"DeviceID", "CPU 0"}, {"ElementName", "Managed System CPU"},
                               {"EnabledState", "2"}, {"ExternalBusClockSpeed", "100"}, {"Family", "198"},
                               {"HealthState", "0"}, {"MaxClockSpeed", "8300"}, {"OperationalStatus", "0"},
                               {"RequestedState", "12"}, {"Role", "Central"}, {"Stepping", "2"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "ManagedSystem"},
                               {"UpgradeMethod", "1"}};
  amt_instance(b, "CIM_Processor", pull, p, sizeof p / sizeof p[0]);
}

static void physical_memory(struct sim_device *d, struct dmt_buf *b, bool pull) {
  for (int slot = 0; slot < 2; slot++) {
    char tag[24], sn[32];
    snprintf(tag, sizeof tag, "9876543210 %d", slot);
    serial_of(d, slot ? "M1" : "M0", sn, sizeof sn);
    const struct amt_prop p[] = {{"BankLabel", slot ? "BANK 1" : "BANK 0"}, {"Capacity", "17179869184"},
                                 {"CreationClassName", "CIM_PhysicalMemory"}, {"ElementName", "Managed System Memory Chip"},
                                 {"FormFactor", "13"}, {"Manufacturer", "Simulated Memory"},
                                 {"MemoryType", "34"}, {"PartNumber", "SIM16G4800"}, {"SerialNumber", sn},
                                 {"Speed", "4800"}, {"Tag", tag}};
    amt_instance(b, "CIM_PhysicalMemory", pull, p, sizeof p / sizeof p[0]);
    if (!pull) break;
  }
}

static void media_access(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop p[] = {{"Capabilities", "4"}, {"CreationClassName", "CIM_MediaAccessDevice"},
                               {"DeviceID", "MEDIA DEV 0"}, {"ElementName", "Managed System Media Access Device"},
                               {"EnabledDefault", "2"}, {"EnabledState", "0"}, {"MaxMediaSize", "512110190"},
                               {"OperationalStatus", "0"}, {"RequestedState", "12"}, {"Security", "2"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "ManagedSystem"}};
  amt_instance(b, "CIM_MediaAccessDevice", pull, p, sizeof p / sizeof p[0]);
}

static void physical_package(struct sim_device *d, struct dmt_buf *b, bool pull) {
  card(d, b, pull);
  if (pull) chassis(d, b, pull);
}

static void system_packaging(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop p[] = {{"Antecedent", "CIM_Chassis"}, {"Dependent", "CIM_ComputerSystem"}};
  amt_instance(b, "CIM_SystemPackaging", pull, p, 2);
}

static void chip(struct sim_device *d, struct dmt_buf *b, bool pull) {
  const struct amt_prop p[] = {{"CanBeFRUed", "true"}, {"CreationClassName", "CIM_Chip"},
                               {"ElementName", "Managed System Processor Chip"}, {"Manufacturer", "Intel(R) Corporation"},
                               {"OperationalStatus", "0"}, {"Tag", "CPU 0"}, {"Version", "Intel(R) Core(TM) i7"}};
  amt_instance(b, "CIM_Chip", pull, p, sizeof p / sizeof p[0]);
}

const struct amt_class amt_inventory_classes[] = {
    {"AMT_GeneralSettings", general_settings, generic_put_echo, NULL, NULL},
    {"CIM_SoftwareIdentity", software_identity, NULL, NULL, NULL},
    {"AMT_RedirectionService", redirection_service, generic_put_echo, generic_invoke, NULL},
    {"IPS_OptInService", optin_service, generic_put_echo, generic_invoke, NULL},
    {"CIM_KVMRedirectionSAP", kvm_sap, NULL, generic_invoke, NULL},
    {"AMT_EthernetPortSettings", ethernet_port, generic_put_echo, NULL, NULL},
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
