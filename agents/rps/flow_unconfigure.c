/*
 * Unconfiguration: wipes what an earlier configuration left, in DMT's order
 * (rps-activation.md §2.6 a), so that re-running activation converges:
 *
 *   ENUM/PULL EthernetPortSettings (wired = "Settings 0" with a MAC, wireless = "Settings 1")
 *   [wired]    IEEE8021xSettings Get -> Put disabled when Enabled is 2 or 6
 *   [wireless] CIM_WiFiEndpointSettings Enumerate/Pull -> Delete each with Priority != 0
 *   IPS_HTTPProxyAccessPoint Enumerate/Pull -> Delete each
 *   AMT_RemoteAccessPolicyRule Delete "User Initiated", "Alert", "Periodic" (absent = 400, fine)
 *   AMT_ManagementPresenceRemoteSAP Enumerate/Pull -> Delete each
 *   AMT_PublicKeyCertificate Enumerate/Pull -> Delete each (in-use ones may refuse: fine)
 *   AMT_EnvironmentDetectionSettingData Get -> Put without DetectionStrings
 * Every step is soft: a leftover never blocks activation. TLS settings are
 * not touched (we never enable TLS: AMT <= 18 without the TLS tunnel stays on
 * 16992, as DMT 2.40 does).
 */
#include <stdio.h>
#include <string.h>

#include "dmt/mptree.h"
#include "rps.h"

enum {
  S_ENUM_ETH,
  S_PULL_ETH,
  S_GET_8021X,
  S_PUT_8021X,
  S_ENUM_WIFI,
  S_PULL_WIFI,
  S_DELETE_WIFI,
  S_ENUM_PROXY,
  S_PULL_PROXY,
  S_DELETE_PROXY,
  S_RULES,
  S_DELETE_RULE,
  S_ENUM_SAP,
  S_PULL_SAP,
  S_DELETE_SAP,
  S_ENUM_CERTS,
  S_PULL_CERTS,
  S_DELETE_CERT,
  S_GET_ENV,
  S_PUT_ENV,
};

/* Enumerate replies: keep the context for the Pull. */
int step_enum_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r) || !r->resp.enumeration_context[0]) return FE_FAIL;
  snprintf(j->enum_ctx, sizeof j->enum_ctx, "%s", r->resp.enumeration_context);
  return FE_OK;
}

/* Collects `field` of each item of cls into j->names (filter may reject items). */
static size_t collect(struct rps_job *j, const struct wsman_reply *r, const char *cls, const char *field,
                      bool (*filter)(const msgpack_object *item)) {
  name_list_clear(&j->names);
  const msgpack_object *items = wsman_pull_items(r, cls);
  for (size_t i = 0; items && i < dmt_mp_list_len(items); i++) {
    const msgpack_object *it = dmt_mp_list_at(items, i);
    char v[256];
    if (filter && !filter(it)) continue;
    if (dmt_mp_text(dmt_mp_get(it, field), v, sizeof v) && v[0]) name_list_add(&j->names, v);
  }
  return j->names.n;
}

void step_enum_ethernet(struct rps_job *j) { ws_enumerate(j, "AMT_EthernetPortSettings"); }
void step_pull_ethernet(struct rps_job *j) { ws_pull(j, "AMT_EthernetPortSettings", j->enum_ctx); }

/* Also used by flow_network.c: classifies the ports and keeps the wired instance. */
int step_pull_ethernet_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  j->wired_present = j->wifi_present = false;
  json_decref(j->wired);
  j->wired = NULL;
  const msgpack_object *items = wsman_pull_items(r, "AMT_EthernetPortSettings");
  for (size_t i = 0; items && i < dmt_mp_list_len(items); i++) {
    const msgpack_object *it = dmt_mp_list_at(items, i);
    char id[128], mac[64];
    if (!dmt_mp_text(dmt_mp_get(it, "InstanceID"), id, sizeof id)) continue;
    bool supported = dmt_mp_text(dmt_mp_get(it, "MACAddress"), mac, sizeof mac) && mac[0];
    if (strstr(id, "Settings 0") && supported) {
      j->wired_present = true;
      j->wired = dmt_mp_to_json(it);
    } else if (strstr(id, "Settings 1") && supported) {
      j->wifi_present = true;
    }
  }
  return FE_OK;
}

static void get_8021x(struct rps_job *j) {
  if (!j->wired_present) flow_post(j, FE_ALT);
  else ws_get(j, "IPS_IEEE8021xSettings", NULL, 0);
}

static int get_8021x_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  long long en = wsman_int(r, "IPS_IEEE8021xSettings.Enabled", 3);
  json_decref(j->saved);
  j->saved = wsman_instance_json(r, "IPS_IEEE8021xSettings");
  return (en == 2 || en == 6) && j->saved ? FE_OK : FE_ALT;
}

static void put_8021x(struct rps_job *j) {
  struct dmt_wsman_param set[] = {{"Enabled", "3", false}};
  ws_put_instance(j, "IPS_IEEE8021xSettings", j->saved, NULL, 0, NULL, set, 1);
}

static void enum_wifi(struct rps_job *j) {
  if (!j->wifi_present) flow_post(j, FE_ALT);
  else ws_enumerate(j, "CIM_WiFiEndpointSettings");
}

static void pull_wifi(struct rps_job *j) { ws_pull(j, "CIM_WiFiEndpointSettings", j->enum_ctx); }

static bool nonzero_priority(const msgpack_object *it) {
  int64_t p = 0;
  return dmt_mp_int(dmt_mp_get(it, "Priority"), &p) && p != 0;
}

static int pull_wifi_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  return collect(j, r, "CIM_WiFiEndpointSettings", "InstanceID", nonzero_priority) ? FE_OK : FE_ALT;
}

static void delete_named(struct rps_job *j, const char *cls, const char *selector) {
  struct dmt_wsman_selector sel[] = {{selector, j->names.v[j->names.i]}};
  ws_delete(j, cls, sel, 1);
}

/* Loop replies: next name (alt, back to the same state) or done; a refused delete does not stop the loop. */
static int loop_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r))
    DMT_DEBUG(&j->srv->log, "unconfigure_delete_refused", "job=%s guid=%s item=\"%s\" status=%d", j->id, j->guid,
              j->names.v[j->names.i], r->http_status);
  return ++j->names.i < j->names.n ? FE_ALT : FE_OK;
}

static void delete_wifi(struct rps_job *j) { delete_named(j, "CIM_WiFiEndpointSettings", "InstanceID"); }

static void enum_proxy(struct rps_job *j) { ws_enumerate(j, "IPS_HTTPProxyAccessPoint"); }
static void pull_proxy(struct rps_job *j) { ws_pull(j, "IPS_HTTPProxyAccessPoint", j->enum_ctx); }

static int pull_proxy_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  return collect(j, r, "IPS_HTTPProxyAccessPoint", "Name", NULL) ? FE_OK : FE_ALT;
}

static void delete_proxy(struct rps_job *j) { delete_named(j, "IPS_HTTPProxyAccessPoint", "Name"); }

static void rules(struct rps_job *j) {
  name_list_clear(&j->names);
  name_list_add(&j->names, "User Initiated");
  name_list_add(&j->names, "Alert");
  name_list_add(&j->names, "Periodic");
  flow_post(j, FE_OK);
}

static void delete_rule(struct rps_job *j) { delete_named(j, "AMT_RemoteAccessPolicyRule", "PolicyRuleName"); }

static void enum_sap(struct rps_job *j) { ws_enumerate(j, "AMT_ManagementPresenceRemoteSAP"); }
static void pull_sap(struct rps_job *j) { ws_pull(j, "AMT_ManagementPresenceRemoteSAP", j->enum_ctx); }

static int pull_sap_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  return collect(j, r, "AMT_ManagementPresenceRemoteSAP", "Name", NULL) ? FE_OK : FE_ALT;
}

static void delete_sap(struct rps_job *j) { delete_named(j, "AMT_ManagementPresenceRemoteSAP", "Name"); }

static void enum_certs(struct rps_job *j) { ws_enumerate(j, "AMT_PublicKeyCertificate"); }
static void pull_certs(struct rps_job *j) { ws_pull(j, "AMT_PublicKeyCertificate", j->enum_ctx); }

static int pull_certs_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  return collect(j, r, "AMT_PublicKeyCertificate", "InstanceID", NULL) ? FE_OK : FE_ALT;
}

static void delete_cert(struct rps_job *j) { delete_named(j, "AMT_PublicKeyCertificate", "InstanceID"); }

static void get_env(struct rps_job *j) { ws_get(j, "AMT_EnvironmentDetectionSettingData", NULL, 0); }

static int get_env_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  json_decref(j->saved);
  j->saved = wsman_instance_json(r, "AMT_EnvironmentDetectionSettingData");
  return j->saved && json_object_get(j->saved, "DetectionStrings") ? FE_OK : FE_ALT;
}

static void put_env(struct rps_job *j) {
  static const char *const drop[] = {"DetectionStrings", NULL};
  ws_put_instance(j, "AMT_EnvironmentDetectionSettingData", j->saved, NULL, 0, drop, NULL, 0);
}

#define SOFT .soft = true
static const struct flow_state states[] = {
    [S_ENUM_ETH] = {.name = "ENUMERATE_ETHERNET_PORT_SETTINGS", .enter = step_enum_ethernet, .reply = step_enum_reply, SOFT,
                    .on = {{FE_FAIL, FLOW_TO(S_ENUM_PROXY)}, {FE_TIMEOUT, FLOW_TO(S_ENUM_PROXY)}}},
    [S_PULL_ETH] = {.name = "PULL_ETHERNET_PORT_SETTINGS", .enter = step_pull_ethernet, .reply = step_pull_ethernet_reply, SOFT},
    [S_GET_8021X] = {.name = "GET_8021X_PROFILE", .enter = get_8021x, .reply = get_8021x_reply, SOFT,
                     .on = {{FE_ALT, FLOW_TO(S_ENUM_WIFI)}}},
    [S_PUT_8021X] = {.name = "DISABLE_IEEE8021X_WIRED", .enter = put_8021x, SOFT},
    [S_ENUM_WIFI] = {.name = "ENUMERATE_WIFI_ENDPOINT_SETTINGS", .enter = enum_wifi, .reply = step_enum_reply, SOFT,
                     .on = {{FE_ALT, FLOW_TO(S_ENUM_PROXY)}, {FE_FAIL, FLOW_TO(S_ENUM_PROXY)}}},
    [S_PULL_WIFI] = {.name = "PULL_WIFI_ENDPOINT_SETTINGS", .enter = pull_wifi, .reply = pull_wifi_reply, SOFT,
                     .on = {{FE_ALT, FLOW_TO(S_ENUM_PROXY)}, {FE_FAIL, FLOW_TO(S_ENUM_PROXY)}}},
    [S_DELETE_WIFI] = {.name = "DELETE_WIFI_ENDPOINT_SETTINGS", .enter = delete_wifi, .reply = loop_reply, SOFT,
                       .on = {{FE_ALT, FLOW_TO(S_DELETE_WIFI)}}},
    [S_ENUM_PROXY] = {.name = "ENUMERATE_HTTP_PROXY_ACCESS_POINT", .enter = enum_proxy, .reply = step_enum_reply, SOFT,
                      .on = {{FE_FAIL, FLOW_TO(S_RULES)}, {FE_TIMEOUT, FLOW_TO(S_RULES)}}},
    [S_PULL_PROXY] = {.name = "PULL_HTTP_PROXY_ACCESS_POINT", .enter = pull_proxy, .reply = pull_proxy_reply, SOFT,
                      .on = {{FE_ALT, FLOW_TO(S_RULES)}, {FE_FAIL, FLOW_TO(S_RULES)}}},
    [S_DELETE_PROXY] = {.name = "DELETE_HTTP_PROXY_ACCESS_POINT", .enter = delete_proxy, .reply = loop_reply, SOFT,
                        .on = {{FE_ALT, FLOW_TO(S_DELETE_PROXY)}}},
    [S_RULES] = {.name = "REMOTE_ACCESS_POLICY_RULES", .enter = rules},
    [S_DELETE_RULE] = {.name = "DELETE_REMOTE_ACCESS_POLICY_RULE", .enter = delete_rule, .reply = loop_reply, SOFT,
                       .on = {{FE_ALT, FLOW_TO(S_DELETE_RULE)}}},
    [S_ENUM_SAP] = {.name = "ENUMERATE_MANAGEMENT_PRESENCE_REMOTE_SAP", .enter = enum_sap, .reply = step_enum_reply, SOFT,
                    .on = {{FE_FAIL, FLOW_TO(S_ENUM_CERTS)}, {FE_TIMEOUT, FLOW_TO(S_ENUM_CERTS)}}},
    [S_PULL_SAP] = {.name = "PULL_MANAGEMENT_PRESENCE_REMOTE_SAP", .enter = pull_sap, .reply = pull_sap_reply, SOFT,
                    .on = {{FE_ALT, FLOW_TO(S_ENUM_CERTS)}, {FE_FAIL, FLOW_TO(S_ENUM_CERTS)}}},
    [S_DELETE_SAP] = {.name = "DELETE_MANAGEMENT_PRESENCE_REMOTE_SAP", .enter = delete_sap, .reply = loop_reply,
                      SOFT, .on = {{FE_ALT, FLOW_TO(S_DELETE_SAP)}}},
    [S_ENUM_CERTS] = {.name = "ENUMERATE_PUBLIC_KEY_CERTIFICATE", .enter = enum_certs, .reply = step_enum_reply, SOFT,
                      .on = {{FE_FAIL, FLOW_TO(S_GET_ENV)}, {FE_TIMEOUT, FLOW_TO(S_GET_ENV)}}},
    [S_PULL_CERTS] = {.name = "PULL_PUBLIC_KEY_CERTIFICATE", .enter = pull_certs, .reply = pull_certs_reply, SOFT,
                      .on = {{FE_ALT, FLOW_TO(S_GET_ENV)}, {FE_FAIL, FLOW_TO(S_GET_ENV)}}},
    [S_DELETE_CERT] = {.name = "DELETE_PUBLIC_KEY_CERTIFICATE", .enter = delete_cert, .reply = loop_reply, SOFT,
                       .on = {{FE_ALT, FLOW_TO(S_DELETE_CERT)}}},
    [S_GET_ENV] = {.name = "GET_ENVIRONMENT_DETECTION_SETTINGS", .enter = get_env, .reply = get_env_reply, SOFT,
                   .on = {{FE_ALT, FLOW_END_OK}}},
    [S_PUT_ENV] = {.name = "PUT_ENVIRONMENT_DETECTION_SETTINGS", .enter = put_env, SOFT},
};

const struct flow flow_unconfigure = {"unconfiguration", states, sizeof states / sizeof states[0], NULL};
