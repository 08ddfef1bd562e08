/*
 * CIRA configuration (rps-activation.md §2.6 e; mps-cira.md §1.1): the
 * device is told to call home to the terminator.
 *
 *   PREPARE            MPS password: the CIRA config's (CIRAConfigs/<c>) or a random one per device
 *   ADD_TRUSTED_ROOT   AMT_PublicKeyManagementService.AddTrustedRootCertificate(terminator root, DER b64)
 *   SAVE_RECORD        devices/<guid> gains MPS_PASSWORD, the row mps_username (before AddMpServer, as
 *                      DMT: the terminator must know the password before the device can dial)
 *   ADD_MPS            AMT_RemoteAccessService.AddMpServer(AccessInfo, InfoFormat, Port, AuthMethod 2,
 *                      Username, Password, CN only for IPv4 addresses)
 *   ENUM/PULL SAP      AMT_ManagementPresenceRemoteSAP -> its Name
 *   ADD_PERIODIC       AddRemoteAccessPolicyRule(Trigger 2, TunnelLifeTime 0, ExtendedData = uint32 0,
 *                      uint32 interval big-endian; DMT: 25 s) with the SAP as MpServer
 *   ADD_USER_INITIATED AddRemoteAccessPolicyRule(Trigger 0, TunnelLifeTime 300)
 *   ADD_ALERT          AddRemoteAccessPolicyRule(Trigger 1, TunnelLifeTime 300) (DMT adds none)
 *   ENUM/PULL APPLIES  AMT_RemoteAccessPolicyAppliesToMPS -> policy rule names
 *   PUT_APPLIES (loop) MpsType 2 (both), OrderOfAccess 0, selected by ManagedElement + PolicySet EPRs
 *   USER_INITIATED     AMT_UserInitiatedConnectionService.RequestStateChange(32771)
 *   GET/PUT_ENV        EnvironmentDetectionSettingData: DetectionStrings = [disable_cira_domain_name or
 *                      "<uuid>.com"], so the device always believes it is outside and keeps CIRA up
 * A failure is reported in CIRAConnection (DMT's step texts); the job still succeeds.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/events.h"
#include "dmt/mptree.h"
#include "rps.h"

enum {
  S_PREPARE,
  S_ADD_ROOT,
  S_SAVE,
  S_ADD_MPS,
  S_ENUM_SAP,
  S_PULL_SAP,
  S_ADD_PERIODIC,
  S_ADD_USER_INITIATED,
  S_ADD_ALERT,
  S_ENUM_APPLIES,
  S_PULL_APPLIES,
  S_PUT_APPLIES,
  S_USER_INITIATED,
  S_GET_ENV,
  S_PUT_ENV,
};

#define SAP_CLASS "AMT_ManagementPresenceRemoteSAP"
#define RULE_CLASS "AMT_RemoteAccessPolicyRule"

static void prepare(struct rps_job *j) {
  const struct rps_cira *c = &j->lk.cira;
  if (c->mps_password && *c->mps_password) snprintf(j->mps_password, sizeof j->mps_password, "%s", c->mps_password);
  else if (amt_random_password(j->mps_password, sizeof j->mps_password) != 0) {
    flow_post(j, FE_FAIL);
    return;
  }
  flow_post(j, FE_OK);
}

static void add_root(struct rps_job *j) {
  if (!j->lk.cira.root_der_b64) {
    flow_post(j, FE_FAIL);
    return;
  }
  struct dmt_wsman_param p[] = {{"CertificateBlob", j->lk.cira.root_der_b64, false}};
  ws_invoke(j, "AMT_PublicKeyManagementService", "AddTrustedRootCertificate", NULL, 0, p, 1);
}

static int add_root_reply(struct rps_job *j, const struct wsman_reply *r) {
  return wsman_return_value(r, "AddTrustedRootCertificate") == 0 ? FE_OK : FE_FAIL;
}

static void add_mps(struct rps_job *j) {
  const struct rps_cira *c = &j->lk.cira;
  char fmt[16], port[16], auth[16];
  snprintf(fmt, sizeof fmt, "%d", c->format);
  snprintf(port, sizeof port, "%d", c->port);
  snprintf(auth, sizeof auth, "%d", c->auth_method ? c->auth_method : 2);
  struct dmt_wsman_param p[] = {{"AccessInfo", c->address, false}, {"InfoFormat", fmt, false},
                                {"Port", port, false},           {"AuthMethod", auth, false},
                                {"Username", c->username, false}, {"Password", j->mps_password, false},
                                {"CN", c->common_name, false}};
  size_t n = c->format == 3 && c->common_name[0] ? 7 : 6;
  ws_invoke(j, "AMT_RemoteAccessService", "AddMpServer", NULL, 0, p, n);
}

static int add_mps_reply(struct rps_job *j, const struct wsman_reply *r) {
  return wsman_return_value(r, "AddMpServer") == 0 ? FE_OK : FE_FAIL;
}

static void enum_sap(struct rps_job *j) { ws_enumerate(j, SAP_CLASS); }
static void pull_sap(struct rps_job *j) { ws_pull(j, SAP_CLASS, j->enum_ctx); }

static int pull_sap_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  const msgpack_object *items = wsman_pull_items(r, SAP_CLASS);
  if (!items || !dmt_mp_text(dmt_mp_get(dmt_mp_list_at(items, 0), "Name"), j->sap_name, sizeof j->sap_name) ||
      !j->sap_name[0])
    return FE_FAIL;
  return FE_OK;
}

/* AddRemoteAccessPolicyRule with the SAP as MpServer. */
static void add_rule(struct rps_job *j, const char *trigger, const char *lifetime, const char *extended) {
  struct dmt_buf epr;
  dmt_buf_init(&epr, 0);
  struct dmt_wsman_selector sap[] = {{"CreationClassName", SAP_CLASS},
                                     {"Name", j->sap_name},
                                     {"SystemCreationClassName", "CIM_ComputerSystem"},
                                     {"SystemName", "Intel(r) AMT"}};
  if (dmt_wsman_epr(&epr, SAP_CLASS, sap, 4) != 0 || dmt_buf_append_u8(&epr, 0) != 0) {
    dmt_buf_free(&epr);
    flow_post(j, FE_FAIL);
    return;
  }
  struct dmt_wsman_param p[] = {{"Trigger", trigger, false},
                                {"TunnelLifeTime", lifetime, false},
                                {"ExtendedData", extended, false},
                                {"MpServer", (const char *)dmt_buf_ptr(&epr), true}};
  ws_invoke(j, "AMT_RemoteAccessService", "AddRemoteAccessPolicyRule", NULL, 0, p, 4);
  dmt_buf_free(&epr);
}

static void add_periodic(struct rps_job *j) {
  /* ExtendedData: uint32 0 (interval type), uint32 seconds, big-endian (DMT: AAAAAAAAABk= for 25 s) */
  uint32_t be[2] = {0, htonl(j->srv->set.cira_interval_s)};
  char *ext = rps_b64_encode((const uint8_t *)be, sizeof be);
  if (!ext) {
    flow_post(j, FE_FAIL);
    return;
  }
  add_rule(j, "2", "0", ext);
  free(ext);
}

static void add_user_initiated(struct rps_job *j) { add_rule(j, "0", "300", ""); }
static void add_alert(struct rps_job *j) { add_rule(j, "1", "300", ""); }

static int add_rule_reply(struct rps_job *j, const struct wsman_reply *r) {
  return wsman_return_value(r, "AddRemoteAccessPolicyRule") == 0 ? FE_OK : FE_FAIL;
}

static void enum_applies(struct rps_job *j) { ws_enumerate(j, "AMT_RemoteAccessPolicyAppliesToMPS"); }
static void pull_applies(struct rps_job *j) { ws_pull(j, "AMT_RemoteAccessPolicyAppliesToMPS", j->enum_ctx); }

/*
 * The rule name of an item: PolicySet.ReferenceParameters.SelectorSet.Selector is the list of
 * selector values (our tree drops the Name attributes); AMT orders them CreationClassName,
 * PolicyRuleName, SystemCreationClassName, SystemName: the one that is none of the fixed values.
 */
static bool rule_name(const msgpack_object *item, char *out, size_t outlen) {
  const msgpack_object *sels = dmt_mp_path(item, "PolicySet.ReferenceParameters.SelectorSet.Selector");
  for (size_t i = 0; sels && i < dmt_mp_list_len(sels); i++) {
    if (!dmt_mp_text(dmt_mp_list_at(sels, i), out, outlen)) continue;
    if (strcmp(out, RULE_CLASS) && strcmp(out, "CIM_ComputerSystem") && strcmp(out, "Intel(r) AMT")) return true;
  }
  return false;
}

static int pull_applies_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  name_list_clear(&j->names);
  const msgpack_object *items = wsman_pull_items(r, "AMT_RemoteAccessPolicyAppliesToMPS");
  for (size_t i = 0; items && i < dmt_mp_list_len(items); i++) {
    char name[128];
    if (rule_name(dmt_mp_list_at(items, i), name, sizeof name)) name_list_add(&j->names, name);
  }
  return j->names.n ? FE_OK : FE_ALT;
}

static void put_applies(struct rps_job *j) {
  struct dmt_buf sels, me, ps;
  dmt_buf_init(&sels, 0);
  dmt_buf_init(&me, 0);
  dmt_buf_init(&ps, 0);
  struct dmt_wsman_selector sap[] = {{"CreationClassName", SAP_CLASS},
                                     {"Name", j->sap_name},
                                     {"SystemCreationClassName", "CIM_ComputerSystem"},
                                     {"SystemName", "Intel(r) AMT"}};
  struct dmt_wsman_selector rule[] = {{"CreationClassName", RULE_CLASS},
                                      {"PolicyRuleName", j->names.v[j->names.i]},
                                      {"SystemCreationClassName", "CIM_ComputerSystem"},
                                      {"SystemName", "Intel(r) AMT"}};
  int rc = dmt_wsman_selector_epr(&sels, "ManagedElement", SAP_CLASS, sap, 4) |
           dmt_wsman_selector_epr(&sels, "PolicySet", RULE_CLASS, rule, 4) | dmt_wsman_epr(&me, SAP_CLASS, sap, 4) |
           dmt_wsman_epr(&ps, RULE_CLASS, rule, 4) | dmt_buf_append_u8(&sels, 0) | dmt_buf_append_u8(&me, 0) |
           dmt_buf_append_u8(&ps, 0);
  if (rc == 0) {
    struct dmt_wsman_param p[] = {{"ManagedElement", (const char *)dmt_buf_ptr(&me), true},
                                  {"MpsType", "2", false},
                                  {"OrderOfAccess", "0", false},
                                  {"PolicySet", (const char *)dmt_buf_ptr(&ps), true}};
    ws_put_xml_selectors(j, "AMT_RemoteAccessPolicyAppliesToMPS", (const char *)dmt_buf_ptr(&sels), p, 4);
  } else {
    flow_post(j, FE_FAIL);
  }
  dmt_buf_free(&sels);
  dmt_buf_free(&me);
  dmt_buf_free(&ps);
}

static int put_applies_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  return ++j->names.i < j->names.n ? FE_ALT : FE_OK;
}

static void user_initiated(struct rps_job *j) {
  struct dmt_wsman_param p[] = {{"RequestedState", "32771", false}};
  ws_invoke(j, "AMT_UserInitiatedConnectionService", "RequestStateChange", NULL, 0, p, 1);
}

static int user_initiated_reply(struct rps_job *j, const struct wsman_reply *r) {
  return wsman_return_value(r, "RequestStateChange") == 0 ? FE_OK : FE_FAIL;
}

static void get_env(struct rps_job *j) { ws_get(j, "AMT_EnvironmentDetectionSettingData", NULL, 0); }

static int get_env_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  json_decref(j->saved);
  j->saved = wsman_instance_json(r, "AMT_EnvironmentDetectionSettingData");
  return j->saved ? FE_OK : FE_FAIL;
}

static void put_env(struct rps_job *j) {
  char domain[300];
  const char *fixed = j->srv->set.disable_cira_domain_name;
  if (fixed && *fixed) snprintf(domain, sizeof domain, "%s", fixed);
  else {
    char u[37];
    dmt_uuid4(u);
    snprintf(domain, sizeof domain, "%s.com", u);
  }
  struct dmt_wsman_param set[] = {{"DetectionStrings", domain, false}};
  ws_put_instance(j, "AMT_EnvironmentDetectionSettingData", j->saved, NULL, 0, NULL, set, 1);
}

static void done(struct rps_job *j, bool ok) {
  snprintf(j->st.cira, sizeof j->st.cira, "%s", ok ? "Configured" : j->fail_text);
  j->st.cira_conn.result = ok ? "Success" : "Failure";
  snprintf(j->st.cira_conn.details, sizeof j->st.cira_conn.details, "%s", j->st.cira);
}

static void save(struct rps_job *j) { step_save_record(j); }

static const struct flow_state states[] = {
    [S_PREPARE] = {.name = "SET_MPS_PASSWORD", .enter = prepare, .fail = "Failed getSecretAtPath"},
    [S_ADD_ROOT] = {.name = "ADD_TRUSTED_ROOT_CERTIFICATE", .enter = add_root, .reply = add_root_reply,
                    .fail = "Failed to add trusted root certificate"},
    [S_SAVE] = {.name = "SAVE_MPS_PASSWORD_TO_SECRET_PROVIDER", .enter = save,
                .fail = "Failed to save mps password to secret provider"},
    [S_ADD_MPS] = {.name = "ADD_MPS", .enter = add_mps, .reply = add_mps_reply, .fail = "Failed to add mps"},
    [S_ENUM_SAP] = {.name = "ENUMERATE_MANAGEMENT_PRESENCE_REMOTE_SAP", .enter = enum_sap, .reply = step_enum_reply,
                    .fail = "Failed to enumerate Management Presence Remote SAP"},
    [S_PULL_SAP] = {.name = "PULL_MANAGEMENT_PRESENCE_REMOTE_SAP", .enter = pull_sap, .reply = pull_sap_reply,
                    .fail = "Failed to Pull Management Presence Remote SAP"},
    [S_ADD_PERIODIC] = {.name = "ADD_REMOTE_ACCESS_POLICY_RULE", .enter = add_periodic, .reply = add_rule_reply,
                        .fail = "Failed to add remote policy access rule"},
    [S_ADD_USER_INITIATED] = {.name = "ADD_USER_INITIATED_REMOTE_ACCESS_POLICY_RULE", .enter = add_user_initiated,
                              .reply = add_rule_reply, .fail = "Failed to add User Initiated remote policy access rule"},
    [S_ADD_ALERT] = {.name = "ADD_ALERT_REMOTE_ACCESS_POLICY_RULE", .enter = add_alert, .reply = add_rule_reply,
                     .fail = "Failed to add Alert remote policy access rule"},
    [S_ENUM_APPLIES] = {.name = "ENUMERATE_REMOTE_ACCESS_POLICY_APPLIESTOMPS", .enter = enum_applies,
                        .reply = step_enum_reply, .fail = "Failed to enumerate remote access policy rule"},
    [S_PULL_APPLIES] = {.name = "PULL_REMOTE_ACCESS_POLICY_APPLIESTOMPS", .enter = pull_applies,
                        .reply = pull_applies_reply, .fail = "Failed to pull AMT_RemoteAccessPolicyAppliesToMPS",
                        .on = {{FE_ALT, FLOW_TO(S_USER_INITIATED)}}},
    [S_PUT_APPLIES] = {.name = "PUT_REMOTE_ACCESS_POLICY_APPLIESTOMPS", .enter = put_applies,
                       .reply = put_applies_reply, .fail = "Failed to put AMT_RemoteAccessPolicyAppliesToMPS",
                       .on = {{FE_ALT, FLOW_TO(S_PUT_APPLIES)}}},
    [S_USER_INITIATED] = {.name = "USER_INITIATED_CONNECTION_SERVICE", .enter = user_initiated,
                          .reply = user_initiated_reply, .fail = "Failed to update User Initiated Connection Service"},
    [S_GET_ENV] = {.name = "GET_ENVIRONMENT_DETECTION_SETTINGS", .enter = get_env, .reply = get_env_reply,
                   .fail = "Failed to get environment detection settings"},
    [S_PUT_ENV] = {.name = "PUT_ENVIRONMENT_DETECTION_SETTINGS", .enter = put_env,
                   .fail = "Failed to put environment detection settings"},
};

const struct flow flow_cira = {"cira", states, sizeof states / sizeof states[0], done};
