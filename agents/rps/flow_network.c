/*
 * Network settings from the profile (rps-activation.md §2.6 b):
 *
 *   GENERAL_SETTINGS_PUT  only when SharedFQDN, AMTNetworkEnabled or RmcpPingResponseEnabled need fixing
 *   ENUM/PULL EthernetPortSettings
 *   PUT_ETHERNET          DHCP profile: DHCPEnabled, IpSyncEnabled, !SharedStaticIp, static fields dropped;
 *                         static profile: !DHCPEnabled, IpSyncEnabled = profile (default true),
 *                         SharedStaticIp = IpSyncEnabled (an address must exist without IP sync).
 *                         AMT echoes the instance: the three flags must read back as asked.
 *   WIRELESS              profiles with Wi-Fi configs are reported as not applied (EMF: WLAN is out of
 *                         scope; the Wi-Fi state machine of DMT is not implemented)
 *   ADD_PROXY (loop)      IPS_HTTPProxyService.AddProxyAccessPoint per linked proxy config
 * The flow's outcome lands in Network / WiredNetwork / WirelessNetwork / CIRAProxy; it never fails the job.
 */
#include <stdio.h>
#include <string.h>

#include "rps.h"

enum { S_PUT_GENERAL, S_ENUM_ETH, S_PULL_ETH, S_PUT_ETH, S_WIRELESS, S_ADD_PROXY };

static void put_general(struct rps_job *j) {
  if (!j->gs_known || !j->general || (j->gs_shared_fqdn && j->gs_network_enabled && j->gs_rmcp_ping)) {
    flow_post(j, FE_OK);
    return;
  }
  struct dmt_wsman_param set[] = {{"AMTNetworkEnabled", "1", false}, {"RmcpPingResponseEnabled", "true", false},
                                  {"SharedFQDN", "true", false}};
  ws_put_instance(j, "AMT_GeneralSettings", j->general, NULL, 0, NULL, set, 3);
}

static void put_eth(struct rps_job *j) {
  const struct rps_profile *p = &j->lk.profile;
  if (!j->wired_present || !j->wired) {
    snprintf(j->st.wired.details, sizeof j->st.wired.details, "No wired network port reported by AMT");
    flow_post(j, FE_ALT);
    return;
  }
  struct dmt_wsman_selector sel[] = {{"InstanceID", json_string_value(json_object_get(j->wired, "InstanceID"))}};
  if (!sel[0].value) {
    flow_post(j, FE_FAIL);
    return;
  }
  if (p->dhcp != 0) { /* DHCP (the default when the column is NULL) */
    static const char *const drop[] = {"IPAddress", "SubnetMask", "DefaultGateway", "PrimaryDNS", "SecondaryDNS",
                                       NULL};
    struct dmt_wsman_param set[] = {{"DHCPEnabled", "true", false}, {"IpSyncEnabled", "true", false},
                                    {"SharedStaticIp", "false", false}};
    ws_put_instance(j, "AMT_EthernetPortSettings", j->wired, sel, 1, drop, set, 3);
    return;
  }
  bool sync = p->ip_sync != 0;
  if (!sync && (!json_object_get(j->wired, "IPAddress") || !json_object_get(j->wired, "SubnetMask"))) {
    flow_fail_text(j, "Failed to put to ethernet port settings: no static address without IP sync");
    flow_post(j, FE_FAIL);
    return;
  }
  struct dmt_wsman_param set[] = {{"DHCPEnabled", "false", false}, {"IpSyncEnabled", sync ? "true" : "false", false},
                                  {"SharedStaticIp", sync ? "true" : "false", false}};
  ws_put_instance(j, "AMT_EthernetPortSettings", j->wired, sel, 1, NULL, set, 3);
}

static bool read_bool(const struct wsman_reply *r, const char *path, bool *out) {
  const msgpack_object *o = wsman_get_obj(r, path);
  if (!o || o->type != MSGPACK_OBJECT_BOOLEAN) return false;
  *out = o->via.boolean;
  return true;
}

static int put_eth_reply(struct rps_job *j, const struct wsman_reply *r) {
  const struct rps_profile *p = &j->lk.profile;
  bool dhcp, sync, shared;
  bool want_dhcp = p->dhcp != 0, want_sync = want_dhcp || p->ip_sync != 0;
  if (!wsman_ok(r) || !read_bool(r, "AMT_EthernetPortSettings.DHCPEnabled", &dhcp) ||
      !read_bool(r, "AMT_EthernetPortSettings.IpSyncEnabled", &sync) ||
      !read_bool(r, "AMT_EthernetPortSettings.SharedStaticIp", &shared) || dhcp != want_dhcp || sync != want_sync ||
      shared != (!want_dhcp && want_sync)) {
    flow_fail_text(j, "Failed to put to ethernet port settings");
    return FE_FAIL;
  }
  return FE_OK;
}

static void put_eth_result(struct rps_job *j, bool ok) {
  j->st.wired.result = ok ? "Success" : "Failure";
  snprintf(j->st.network, sizeof j->st.network, "%s",
           ok ? "Wired Network Configured" : j->fail_text[0] ? j->fail_text : "Failed to put to ethernet port settings");
  if (ok && j->lk.profile.ieee8021x[0]) {
    /* 802.1x needs DMT's Enterprise Assistant: not offered (EMF: LAN 802.1x out of scope) */
    j->st.wired.result = "Failure";
    snprintf(j->st.wired.details, sizeof j->st.wired.details,
             "Wired network configured; 802.1x profile %s not applied (not supported)", j->lk.profile.ieee8021x);
  } else {
    snprintf(j->st.wired.details, sizeof j->st.wired.details, "%s", j->st.network);
  }
}

static void wireless(struct rps_job *j) {
  if (j->st.wired.result == NULL && j->wired_present) put_eth_result(j, false); /* the Put step failed early */
  if (j->lk.profile.nwifi > 0) {
    j->st.wireless.result = "Failure";
    snprintf(j->st.wireless.details, sizeof j->st.wireless.details,
             "Wireless profiles not applied (wireless configuration is not supported)");
  }
  j->proxy_index = 0;
  flow_post(j, FE_OK);
}

static void add_proxy(struct rps_job *j) {
  const struct rps_profile *p = &j->lk.profile;
  if (j->proxy_index >= p->nproxies) {
    flow_post(j, FE_OK);
    return;
  }
  const struct rps_proxy *x = &p->proxies[j->proxy_index];
  char fmt[16], port[16];
  snprintf(fmt, sizeof fmt, "%d", x->info_format);
  snprintf(port, sizeof port, "%d", x->port);
  struct dmt_wsman_param params[] = {{"AccessInfo", x->address, false}, {"InfoFormat", fmt, false},
                                     {"Port", port, false}, {"NetworkDnsSuffix", x->dns_suffix, false}};
  ws_invoke(j, "IPS_HTTPProxyService", "AddProxyAccessPoint", NULL, 0, params, 4);
}

static int add_proxy_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (wsman_return_value(r, "AddProxyAccessPoint") != 0) {
    flow_fail_text(j, "Failed to add proxy %s", j->lk.profile.proxies[j->proxy_index].address);
    return FE_FAIL;
  }
  return ++j->proxy_index < j->lk.profile.nproxies ? FE_ALT : FE_OK;
}

static int put_eth_reply_recorded(struct rps_job *j, const struct wsman_reply *r) {
  int ev = put_eth_reply(j, r);
  put_eth_result(j, ev == FE_OK);
  return ev;
}

static void done(struct rps_job *j, bool ok) {
  if (j->lk.profile.nproxies) {
    j->st.cira_proxy.result = ok ? "Success" : "Failure";
    snprintf(j->st.cira_proxy.details, sizeof j->st.cira_proxy.details, "%s",
             ok ? "Proxy Configured" : (j->fail_text[0] ? j->fail_text : "Failed to add proxy"));
    if (!ok) snprintf(j->st.network, sizeof j->st.network, "%s", j->st.cira_proxy.details);
  }
}

static const struct flow_state states[] = {
    [S_PUT_GENERAL] = {.name = "PUT_GENERAL_SETTINGS", .enter = put_general, .soft = true},
    [S_ENUM_ETH] = {.name = "ENUMERATE_ETHERNET_PORT_SETTINGS", .enter = step_enum_ethernet,
                    .reply = step_enum_reply, .on = {{FE_FAIL, FLOW_TO(S_WIRELESS)}, {FE_TIMEOUT, FLOW_TO(S_WIRELESS)}}},
    [S_PULL_ETH] = {.name = "PULL_ETHERNET_PORT_SETTINGS", .enter = step_pull_ethernet,
                    .reply = step_pull_ethernet_reply, .soft = true},
    [S_PUT_ETH] = {.name = "PUT_ETHERNET_PORT_SETTINGS", .enter = put_eth, .reply = put_eth_reply_recorded,
                   .soft = true, .fail = "Failed to put to ethernet port settings"},
    [S_WIRELESS] = {.name = "WIRELESS_CONFIGURATION", .enter = wireless},
    [S_ADD_PROXY] = {.name = "ADD_PROXY_ACCESS_POINT", .enter = add_proxy, .reply = add_proxy_reply,
                     .on = {{FE_ALT, FLOW_TO(S_ADD_PROXY)}}},
};

const struct flow flow_network = {"network", states, sizeof states / sizeof states[0], done};
