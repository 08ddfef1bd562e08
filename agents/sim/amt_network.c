/*
 * Network, redirection and user-consent classes of the simulated AMT: what
 * RPS's unconfiguration, network and features state machines read and write
 * (rps-activation.md §2.6 a-c) and what MPS's features and user-consent
 * endpoints call (mps-cira.md §2.6). A simulated device is a wired desktop:
 * one AMT_EthernetPortSettings instance ("Settings 0", shared MAC), no
 * wireless, proxy, 802.1x, TLS credential or key-pair instances, and two TLS
 * setting entries that are disabled. Puts are validated, stored and echoed.
 */
#include <arpa/inet.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

#define WIRED_INSTANCE "Intel(r) AMT Ethernet Port Settings 0"
#define OPTIN_STATE_NONE 0
#define OPTIN_STATE_DISPLAYED 2
#define OPTIN_STATE_RECEIVED 3
#define OPTIN_ALL 0xFFFFFFFFu

static void ip_text(uint32_t v, char out[16]) {
  struct in_addr a = {.s_addr = htonl(v)};
  inet_ntop(AF_INET, &a, out, 16);
}

static uint32_t dhcp_address(const struct sim_device *d) {
  /* 10.0.0.0/8, unique per device index, never .0 or .255 */
  uint32_t i = d->index;
  return (10u << 24) | (((i / 250) & 0xFFFF) << 8) | (i % 250 + 2);
}

static void ethernet_port(struct sim_device *d, struct amt_emit *e) {
  char mac[24], ip[16], mask[16], gw[16], dns[16];
  snprintf(mac, sizeof mac, "a4-ae-12-%02x-%02x-%02x", d->uuid[13], d->uuid[14], d->uuid[15]);
  bool stat = !d->dhcp;
  ip_text(stat ? d->static_ip : dhcp_address(d), ip);
  ip_text(stat ? d->static_mask : 0xFFFF0000u, mask);
  ip_text(stat ? d->static_gateway : (dhcp_address(d) & 0xFFFFFF00u) | 1u, gw);
  ip_text(stat ? d->static_dns : (dhcp_address(d) & 0xFFFFFF00u) | 1u, dns);
  const struct amt_prop p[] = {{"DHCPEnabled", d->dhcp ? "true" : "false"}, {"DefaultGateway", gw},
                               {"ElementName", "Intel(r) AMT Ethernet Port Settings"}, {"IPAddress", ip},
                               {"InstanceID", WIRED_INSTANCE}, {"IpSyncEnabled", d->ip_sync ? "true" : "false"},
                               {"LinkIsUp", "true"}, {"LinkPolicy", "1"}, {"LinkPolicy", "14"},
                               {"LinkPolicy", "16"}, {"MACAddress", mac}, {"PhysicalConnectionType", "0"},
                               {"PrimaryDNS", dns}, {"SharedDynamicIP", "true"}, {"SharedMAC", "true"},
                               {"SharedStaticIp", d->shared_static_ip ? "true" : "false"}, {"SubnetMask", mask}};
  amt_emit_instance(e, "AMT_EthernetPortSettings", p, sizeof p / sizeof p[0]);
}

static bool parse_ip(const struct dmt_wsman_request *w, const char *name, uint32_t *out) {
  const char *v = dmt_wsman_request_param(w, name);
  struct in_addr a;
  if (!v || inet_pton(AF_INET, v, &a) != 1) return false;
  *out = ntohl(a.s_addr);
  return true;
}

static void ethernet_put(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                         struct amt_fault *f) {
  const char *id = dmt_wsman_request_selector(w, "InstanceID");
  if (id && strcmp(id, WIRED_INSTANCE)) {
    amt_fault_invalid_selectors(f);
    return;
  }
  bool dhcp = amt_param_bool(w, "DHCPEnabled", d->dhcp);
  bool ip_sync = amt_param_bool(w, "IpSyncEnabled", d->ip_sync);
  bool shared_static = amt_param_bool(w, "SharedStaticIp", d->shared_static_ip);
  uint32_t ip = d->static_ip, mask = d->static_mask, gw = d->static_gateway, dns = d->static_dns;
  if (!dhcp && !ip_sync) {
    /* A static address that is not synchronised from the host needs the address itself. */
    if (!parse_ip(w, "IPAddress", &ip) || !parse_ip(w, "SubnetMask", &mask)) {
      amt_fault_invalid_parameter(f);
      return;
    }
    parse_ip(w, "DefaultGateway", &gw);
    parse_ip(w, "PrimaryDNS", &dns);
  } else if (!dhcp) {
    ip = dhcp_address(d); /* synchronised from the host OS */
    mask = 0xFFFF0000u;
    gw = dns = (ip & 0xFFFFFF00u) | 1u;
  }
  if (dhcp) shared_static = false;
  d->dhcp = dhcp;
  d->ip_sync = ip_sync;
  d->shared_static_ip = shared_static;
  d->static_ip = ip;
  d->static_mask = mask;
  d->static_gateway = gw;
  d->static_dns = dns;
  sim_device_save(d);
  struct amt_emit e = {.b = b, .w = w, .limit = 1};
  ethernet_port(d, &e);
}

static void ieee8021x_settings(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"AvailableInS0", "true"}, {"ElementName", "Intel(r) AMT: 8021X Settings"},
                               {"Enabled", "3"}, {"InstanceID", "Intel(r) AMT: 8021X Settings"},
                               {"PxeTimeout", "120"}};
  amt_emit_instance(e, "IPS_IEEE8021xSettings", p, sizeof p / sizeof p[0]);
}

/* Puts the simulator does not need to remember (802.1x off, TLS off) are accepted and echoed. */
static void echo_put(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b, struct amt_fault *f) {
  struct amt_prop p[DMT_WSMAN_MAX_PARAMS];
  for (size_t i = 0; i < w->nparams; i++) p[i] = (struct amt_prop){w->params[i].name, w->params[i].value};
  struct amt_emit e = {.b = b, .w = w, .limit = 1};
  amt_emit_instance(&e, w->class_name, p, w->nparams);
}

static void tls_setting_data(struct sim_device *d, struct amt_emit *e) {
  static const char *const ids[][2] = {{"Intel(r) AMT 802.3 TLS Settings", "true"},
                                       {"Intel(r) AMT LMS TLS Settings", "true"}};
  for (size_t i = 0; i < 2; i++) {
    const struct amt_prop p[] = {{"AcceptNonSecureConnections", ids[i][1]}, {"ElementName", ids[i][0]},
                                 {"Enabled", "false"}, {"InstanceID", ids[i][0]},
                                 {"MutualAuthentication", "false"}};
    amt_emit_instance(e, "AMT_TLSSettingData", p, sizeof p / sizeof p[0]);
  }
}

/* Classes a simulated device has no instance of (wireless, proxies, TLS credentials, key pairs). */
static void no_instances(struct sim_device *d, struct amt_emit *e) {}

static void redirection_service(struct sim_device *d, struct amt_emit *e) {
  char state[8];
  snprintf(state, sizeof state, "%u", d->redirection_state);
  bool listener = d->redirection_state != 32768 || d->kvm_enabled;
  const struct amt_prop p[] = {{"AccessLog", "0"}, {"CreationClassName", "AMT_RedirectionService"},
                               {"ElementName", "Intel(r) AMT Redirection Service"}, {"EnabledState", state},
                               {"ListenerEnabled", listener ? "true" : "false"},
                               {"Name", "Intel(r) AMT Redirection Service"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"}};
  amt_emit_instance(e, "AMT_RedirectionService", p, sizeof p / sizeof p[0]);
}

static void redirection_put(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                            struct amt_fault *f) {
  struct amt_emit e = {.b = b, .w = w, .limit = 1};
  redirection_service(d, &e);
}

static void redirection_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                               struct amt_fault *f) {
  if (strcmp(w->method, "RequestStateChange")) {
    amt_fault_not_supported(f);
    return;
  }
  long v = amt_param_long(w, "RequestedState", -1);
  if (v < 32768 || v > 32771) {
    amt_return(b, "RequestStateChange", AMT_RV_INVALID_PARAMETER, NULL);
    return;
  }
  d->redirection_state = (uint16_t)v;
  sim_device_save(d);
  amt_return(b, "RequestStateChange", AMT_RV_SUCCESS, NULL);
}

static void kvm_sap(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"CreationClassName", "CIM_KVMRedirectionSAP"},
                               {"ElementName", "KVM Redirection Service Access Point"},
                               {"EnabledState", d->kvm_enabled ? "2" : "3"},
                               {"Name", "KVM Redirection Service Access Point"}, {"RequestedState", "5"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}};
  amt_emit_instance(e, "CIM_KVMRedirectionSAP", p, sizeof p / sizeof p[0]);
}

static void kvm_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                       struct amt_fault *f) {
  if (strcmp(w->method, "RequestStateChange")) {
    amt_fault_not_supported(f);
    return;
  }
  long v = amt_param_long(w, "RequestedState", -1);
  if (v != 2 && v != 3) {
    amt_return(b, "RequestStateChange", AMT_RV_INVALID_PARAMETER, NULL);
    return;
  }
  d->kvm_enabled = v == 2;
  sim_device_save(d);
  amt_return(b, "RequestStateChange", AMT_RV_SUCCESS, NULL);
}

static void optin_service(struct sim_device *d, struct amt_emit *e) {
  char required[16], state[4];
  snprintf(required, sizeof required, "%u", d->optin_required);
  snprintf(state, sizeof state, "%u", d->optin_state);
  const struct amt_prop p[] = {{"CanModifyOptInPolicy", d->mode == SIM_MODE_ACM ? "1" : "0"},
                               {"CreationClassName", "IPS_OptInService"},
                               {"ElementName", "Intel(r) AMT OptIn Service"}, {"Name", "Intel(r) AMT OptIn Service"},
                               {"OptInCodeTimeout", "120"}, {"OptInDisplayTimeout", "300"},
                               {"OptInRequired", required}, {"OptInState", state},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"}};
  amt_emit_instance(e, "IPS_OptInService", p, sizeof p / sizeof p[0]);
}

static void optin_put(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                      struct amt_fault *f) {
  long v = amt_param_long(w, "OptInRequired", -1);
  if (v != 0 && v != 1 && v != (long)OPTIN_ALL) {
    amt_fault_invalid_parameter(f);
    return;
  }
  /* Client control mode always requires consent for everything: the policy cannot be changed there. */
  if (d->mode == SIM_MODE_ACM) d->optin_required = (uint32_t)v;
  sim_device_save(d);
  struct amt_emit e = {.b = b, .w = w, .limit = 1};
  optin_service(d, &e);
}

static void optin_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                         struct amt_fault *f) {
  if (!strcmp(w->method, "StartOptIn")) {
    uint32_t r;
    RAND_bytes((uint8_t *)&r, sizeof r);
    d->optin_code = r % 1000000u; /* the six digits the user reads off the screen (control: optin <guid>) */
    d->optin_state = OPTIN_STATE_DISPLAYED;
    amt_return(b, "StartOptIn", AMT_RV_SUCCESS, NULL);
  } else if (!strcmp(w->method, "SendOptInCode")) {
    long code = amt_param_long(w, "OptInCode", -1);
    bool ok = d->optin_state == OPTIN_STATE_DISPLAYED && code == (long)d->optin_code;
    if (ok) d->optin_state = OPTIN_STATE_RECEIVED;
    amt_return(b, "SendOptInCode", ok ? AMT_RV_SUCCESS : AMT_RV_INVALID_PARAMETER, NULL);
  } else if (!strcmp(w->method, "CancelOptIn")) {
    d->optin_state = OPTIN_STATE_NONE;
    amt_return(b, "CancelOptIn", AMT_RV_SUCCESS, NULL);
  } else {
    amt_fault_not_supported(f);
  }
}

static void time_sync(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"CreationClassName", "AMT_TimeSynchronizationService"},
                               {"ElementName", "Intel(r) AMT Time Synchronization Service"},
                               {"EnabledState", "5"}, {"Name", "Intel(r) AMT Time Synchronization Service"},
                               {"RequestedState", "12"}, {"SystemCreationClassName", "CIM_ComputerSystem"},
                               {"SystemName", "Intel(r) AMT"}};
  amt_emit_instance(e, "AMT_TimeSynchronizationService", p, sizeof p / sizeof p[0]);
}

static void time_sync_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                             struct amt_fault *f) {
  if (!strcmp(w->method, "GetLowAccuracyTimeSynch")) {
    char extra[64];
    snprintf(extra, sizeof extra, "<g:Ta0>%lld</g:Ta0>", (long long)time(NULL));
    amt_return(b, "GetLowAccuracyTimeSynch", AMT_RV_SUCCESS, extra);
  } else if (!strcmp(w->method, "SetHighAccuracyTimeSynch")) {
    bool ok = amt_param_long(w, "Ta0", -1) >= 0 && amt_param_long(w, "Tm1", -1) >= 0 &&
              amt_param_long(w, "Tm2", -1) >= 0;
    amt_return(b, "SetHighAccuracyTimeSynch", ok ? AMT_RV_SUCCESS : AMT_RV_INVALID_PARAMETER, NULL);
  } else {
    amt_fault_not_supported(f);
  }
}

const struct amt_class amt_network_classes[] = {
    {"AMT_EthernetPortSettings", ethernet_port, ethernet_put, NULL, NULL},
    {"IPS_IEEE8021xSettings", ieee8021x_settings, echo_put, NULL, NULL},
    {"CIM_WiFiEndpointSettings", no_instances, NULL, NULL, NULL},
    {"IPS_HTTPProxyAccessPoint", no_instances, NULL, NULL, NULL},
    {"AMT_TLSSettingData", tls_setting_data, echo_put, NULL, NULL},
    {"AMT_TLSCredentialContext", no_instances, NULL, NULL, NULL},
    {"AMT_PublicPrivateKeyPair", no_instances, NULL, NULL, NULL},
    {"AMT_RedirectionService", redirection_service, redirection_put, redirection_invoke, NULL},
    {"CIM_KVMRedirectionSAP", kvm_sap, NULL, kvm_invoke, NULL},
    {"IPS_OptInService", optin_service, optin_put, optin_invoke, NULL},
    {"AMT_TimeSynchronizationService", time_sync, NULL, time_sync_invoke, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
