/*
 * Remote access (CIRA) configuration classes of the simulated AMT, as RPS's
 * CIRA state machine drives them (rps-activation.md §2.6e, mps-cira.md §1.1):
 *   AMT_RemoteAccessService        AddMpServer (address, format, port, user,
 *                                  password, CN), AddRemoteAccessPolicyRule
 *                                  (periodic: ExtendedData = u32 type, u32 seconds)
 *   AMT_ManagementPresenceRemoteSAP the MPS entry (Enumerate/Pull/Get/Delete)
 *   AMT_RemoteAccessPolicyRule     the rules (Delete of an absent one is a 400 fault)
 *   AMT_RemoteAccessPolicyAppliesToMPS  rule -> MPS links (Put sets MpsType)
 *   AMT_UserInitiatedConnectionService  RequestStateChange 32768..32771
 *   AMT_EnvironmentDetectionSettingData DetectionStrings (inside the enterprise,
 *                                  CIRA stays down)
 * Every change re-evaluates the tunnel: a device with an MPS and a periodic
 * policy, outside its enterprise, calls home; removing either hangs up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define MPS_SAP_NAME "Intel(r) AMT:Management Presence Server 0"
#define TRIGGER_USER_INITIATED 0
#define TRIGGER_PERIODIC 2
#define AUTH_USER_PASSWORD 2

static const char *const rule_names[] = {"User Initiated", "Alert", "Periodic"}; /* by Trigger */

static void ras_instances(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"CreationClassName", "AMT_RemoteAccessService"},
                               {"ElementName", "Intel(r) AMT Remote Access Service"},
                               {"Name", "Intel(r) AMT Remote Access Service"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"}};
  amt_emit_instance(e, "AMT_RemoteAccessService", p, sizeof p / sizeof p[0]);
}

static const struct dmt_wsman_selector sap_selectors[] = {{"CreationClassName", "AMT_ManagementPresenceRemoteSAP"},
                                                          {"Name", MPS_SAP_NAME},
                                                          {"SystemCreationClassName", "CIM_ComputerSystem"},
                                                          {"SystemName", "Intel(r) AMT"}};

static void add_mp_server(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b) {
  struct sim *s = d->sim;
  const char *host = dmt_wsman_request_param(w, "AccessInfo");
  const char *user = dmt_wsman_request_param(w, "Username");
  const char *password = dmt_wsman_request_param(w, "Password");
  const char *cn = dmt_wsman_request_param(w, "CN");
  long format = amt_param_long(w, "InfoFormat", -1), port = amt_param_long(w, "Port", -1);
  long auth = amt_param_long(w, "AuthMethod", -1);
  /* Mutual TLS (AuthMethod 1) is not simulated: only username/password, which is all DMT uses. */
  if (!host || !*host || strlen(host) > 255 || (format != 3 && format != 4 && format != 201) || port < 1 ||
      port > 65535 || auth != AUTH_USER_PASSWORD || !user || !*user || strlen(user) > 32 || !password ||
      strlen(password) >= sizeof d->cira->password || d->mode == SIM_MODE_PRE) {
    amt_return(b, "AddMpServer", AMT_RV_INVALID_PARAMETER, NULL);
    return;
  }
  /* One MPS entry; a repeated AddMpServer (RPS re-sends on timeouts) replaces it. */
  struct sim_cira_config *c = sim_device_cira(d);
  c->host = sim_intern(s, host);
  c->info_format = (uint8_t)format;
  c->port = (uint16_t)port;
  c->user = sim_intern(s, user);
  snprintf(c->password, sizeof c->password, "%s", password);
  c->cn = cn && *cn ? sim_intern(s, cn) : NULL;
  c->alt_host = NULL;
  c->has_mps = true;
  sim_device_save(d);
  struct dmt_buf extra;
  dmt_buf_init(&extra, 0);
  dmt_buf_printf(&extra, "<g:MpServer>");
  amt_epr(&extra, "AMT_ManagementPresenceRemoteSAP", sap_selectors, 4);
  dmt_buf_printf(&extra, "</g:MpServer>");
  dmt_buf_append_u8(&extra, 0);
  amt_return(b, "AddMpServer", AMT_RV_SUCCESS, (const char *)dmt_buf_ptr(&extra));
  dmt_buf_free(&extra);
  sim_cira_reconsider(d);
}

static void add_policy_rule(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b) {
  long trigger = amt_param_long(w, "Trigger", -1), lifetime = amt_param_long(w, "TunnelLifeTime", 0);
  const char *mp = dmt_wsman_request_param(w, "MpServer"); /* the EPR, flattened to its text */
  if (!d->cira || !d->cira->has_mps || trigger < 0 || trigger > 2 || lifetime < 0 ||
      (mp && !strstr(mp, MPS_SAP_NAME))) {
    amt_return(b, "AddRemoteAccessPolicyRule", AMT_RV_INVALID_PARAMETER, NULL);
    return;
  }
  struct sim_cira_config *c = d->cira;
  if (trigger == TRIGGER_PERIODIC) {
    /* ExtendedData: u32 periodic type (0 = every N seconds), u32 N, big-endian (RPS: AAAAAAAAABk= = 25 s). */
    uint8_t *x = NULL;
    int n = sim_base64_decode(dmt_wsman_request_param(w, "ExtendedData"), &x);
    uint32_t type = n == 8 ? (uint32_t)x[0] << 24 | x[1] << 16 | x[2] << 8 | x[3] : 1;
    uint32_t secs = n == 8 ? (uint32_t)x[4] << 24 | x[5] << 16 | x[6] << 8 | x[7] : 0;
    free(x);
    if (type != 0 || secs == 0) {
      amt_return(b, "AddRemoteAccessPolicyRule", AMT_RV_INVALID_PARAMETER, NULL);
      return;
    }
    c->periodic = true;
    c->periodic_interval_s = secs;
    c->periodic_lifetime_s = (uint32_t)lifetime;
  } else if (trigger == TRIGGER_USER_INITIATED) {
    c->user_initiated = true;
    c->user_initiated_lifetime_s = (uint32_t)lifetime;
  }
  sim_device_save(d);
  const struct dmt_wsman_selector sel[] = {{"CreationClassName", "AMT_RemoteAccessPolicyRule"},
                                           {"PolicyRuleName", rule_names[trigger]},
                                           {"SystemCreationClassName", "CIM_ComputerSystem"},
                                           {"SystemName", "Intel(r) AMT"}};
  struct dmt_buf extra;
  dmt_buf_init(&extra, 0);
  dmt_buf_printf(&extra, "<g:PolicyRule>");
  amt_epr(&extra, "AMT_RemoteAccessPolicyRule", sel, 4);
  dmt_buf_printf(&extra, "</g:PolicyRule>");
  dmt_buf_append_u8(&extra, 0);
  amt_return(b, "AddRemoteAccessPolicyRule", AMT_RV_SUCCESS, (const char *)dmt_buf_ptr(&extra));
  dmt_buf_free(&extra);
  sim_cira_reconsider(d);
}

static void ras_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                       struct amt_fault *f) {
  if (!strcmp(w->method, "AddMpServer")) add_mp_server(d, w, b);
  else if (!strcmp(w->method, "AddRemoteAccessPolicyRule")) add_policy_rule(d, w, b);
  else amt_fault_not_supported(f);
}

static void sap_instances(struct sim_device *d, struct amt_emit *e) {
  const struct sim_cira_config *c = d->cira;
  if (!c || !c->has_mps) return;
  char format[8], port[8];
  snprintf(format, sizeof format, "%u", c->info_format);
  snprintf(port, sizeof port, "%u", c->port);
  const struct amt_prop p[] = {{"AccessInfo", c->host}, {"CN", c->cn},
                               {"CreationClassName", "AMT_ManagementPresenceRemoteSAP"},
                               {"ElementName", "Intel(r) AMT:Management Presence Server"}, {"InfoFormat", format},
                               {"Name", MPS_SAP_NAME}, {"Port", port},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"}};
  amt_emit_instance(e, "AMT_ManagementPresenceRemoteSAP", p, sizeof p / sizeof p[0]);
}

static void sap_delete(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                       struct amt_fault *f) {
  const char *name = dmt_wsman_request_selector(w, "Name");
  struct sim_cira_config *c = d->cira;
  if (!c || !c->has_mps || (name && strcmp(name, MPS_SAP_NAME))) {
    amt_fault_invalid_selectors(f);
    return;
  }
  /* The policies pointing at the MPS go with it. */
  c->has_mps = c->periodic = c->user_initiated = false;
  sim_device_save(d);
  sim_cira_reconsider(d);
}

static void rule_instance(struct amt_emit *e, int trigger, uint32_t lifetime, uint32_t interval) {
  char trig[4], life[12], ext[16] = "";
  snprintf(trig, sizeof trig, "%d", trigger);
  snprintf(life, sizeof life, "%u", lifetime);
  if (trigger == TRIGGER_PERIODIC) {
    uint8_t x[8] = {0, 0, 0, 0, (uint8_t)(interval >> 24), (uint8_t)(interval >> 16), (uint8_t)(interval >> 8),
                    (uint8_t)interval};
    char *b64 = sim_base64_encode(x, 8);
    snprintf(ext, sizeof ext, "%s", b64);
    free(b64);
  }
  const struct amt_prop p[] = {{"CreationClassName", "AMT_RemoteAccessPolicyRule"},
                               {"ElementName", "Intel(r) AMT:Remote Access Policy"},
                               {"ExtendedData", ext[0] ? ext : NULL}, {"PolicyRuleName", rule_names[trigger]},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"},
                               {"Trigger", trig}, {"TunnelLifeTime", life}};
  amt_emit_instance(e, "AMT_RemoteAccessPolicyRule", p, sizeof p / sizeof p[0]);
}

static void rule_instances(struct sim_device *d, struct amt_emit *e) {
  const struct sim_cira_config *c = d->cira;
  if (!c) return;
  if (c->user_initiated) rule_instance(e, TRIGGER_USER_INITIATED, c->user_initiated_lifetime_s, 0);
  if (c->periodic) rule_instance(e, TRIGGER_PERIODIC, c->periodic_lifetime_s, c->periodic_interval_s);
}

static void rule_delete(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                        struct amt_fault *f) {
  const char *name = dmt_wsman_request_selector(w, "PolicyRuleName");
  struct sim_cira_config *c = d->cira;
  bool *rule = NULL;
  if (c && name && !strcmp(name, rule_names[TRIGGER_PERIODIC]) && c->periodic) rule = &c->periodic;
  else if (c && name && !strcmp(name, rule_names[TRIGGER_USER_INITIATED]) && c->user_initiated)
    rule = &c->user_initiated;
  if (!rule) { /* RPS's unconfiguration expects a 400 for a rule that does not exist */
    amt_fault_invalid_selectors(f);
    return;
  }
  *rule = false;
  sim_device_save(d);
  sim_cira_reconsider(d);
}

static void applies_instance(struct sim_device *d, struct amt_emit *e, int trigger) {
  const struct dmt_wsman_selector rule[] = {{"CreationClassName", "AMT_RemoteAccessPolicyRule"},
                                            {"PolicyRuleName", rule_names[trigger]},
                                            {"SystemCreationClassName", "CIM_ComputerSystem"},
                                            {"SystemName", "Intel(r) AMT"}};
  struct dmt_buf me, ps;
  dmt_buf_init(&me, 0);
  dmt_buf_init(&ps, 0);
  amt_epr(&me, "AMT_ManagementPresenceRemoteSAP", sap_selectors, 4);
  amt_epr(&ps, "AMT_RemoteAccessPolicyRule", rule, 4);
  dmt_buf_append_u8(&me, 0);
  dmt_buf_append_u8(&ps, 0);
  char type[4];
  snprintf(type, sizeof type, "%u", d->cira->mps_type);
  const struct amt_prop p[] = {{"@ManagedElement", (const char *)dmt_buf_ptr(&me)},
                               {"MpsType", type},
                               {"OrderOfAccess", "0"},
                               {"@PolicySet", (const char *)dmt_buf_ptr(&ps)}};
  amt_emit_instance(e, "AMT_RemoteAccessPolicyAppliesToMPS", p, sizeof p / sizeof p[0]);
  dmt_buf_free(&me);
  dmt_buf_free(&ps);
}

static void applies_instances(struct sim_device *d, struct amt_emit *e) {
  const struct sim_cira_config *c = d->cira;
  if (!c || !c->has_mps) return;
  if (c->user_initiated) applies_instance(d, e, TRIGGER_USER_INITIATED);
  if (c->periodic) applies_instance(d, e, TRIGGER_PERIODIC);
}

static void applies_put(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                        struct amt_fault *f) {
  long type = amt_param_long(w, "MpsType", -1);
  if (!d->cira || !d->cira->has_mps || type < 0 || type > 2) {
    amt_fault_invalid_parameter(f);
    return;
  }
  d->cira->mps_type = (uint8_t)type;
  sim_device_save(d);
  /* Echo the link the selector set names (RPS patches PolicySet into the header). */
  const char *rule = dmt_wsman_request_param(w, "PolicySet");
  int trigger = rule && strstr(rule, rule_names[TRIGGER_USER_INITIATED]) ? TRIGGER_USER_INITIATED : TRIGGER_PERIODIC;
  struct amt_emit e = {.b = b, .w = w, .limit = 1};
  applies_instance(d, &e, trigger);
}

static void uic_instances(struct sim_device *d, struct amt_emit *e) {
  char state[8];
  snprintf(state, sizeof state, "%u", d->user_initiated_state);
  const struct amt_prop p[] = {{"CreationClassName", "AMT_UserInitiatedConnectionService"},
                               {"ElementName", "Intel(r) AMT User Initiated Connection Service"},
                               {"EnabledState", state}, {"Name", "Intel(r) AMT User Initiated Connection Service"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"}};
  amt_emit_instance(e, "AMT_UserInitiatedConnectionService", p, sizeof p / sizeof p[0]);
}

static void uic_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                       struct amt_fault *f) {
  if (strcmp(w->method, "RequestStateChange")) {
    amt_fault_not_supported(f);
    return;
  }
  long v = amt_param_long(w, "RequestedState", -1);
  int rv = AMT_RV_INVALID_PARAMETER;
  if (v >= 32768 && v <= 32771) { /* disabled, BIOS, OS, BIOS and OS */
    d->user_initiated_state = (uint16_t)v;
    sim_device_save(d);
    rv = AMT_RV_SUCCESS;
  }
  amt_return(b, "RequestStateChange", rv, NULL);
}

static void env_instances(struct sim_device *d, struct amt_emit *e) {
  struct amt_prop p[16] = {{"DetectionAlgorithm", "0"}};
  size_t n = 1;
  char *copy = d->detection_strings ? strdup(d->detection_strings) : NULL, *save = NULL;
  for (char *t = copy ? strtok_r(copy, "\n", &save) : NULL; t && n < 13; t = strtok_r(NULL, "\n", &save))
    p[n++] = (struct amt_prop){"DetectionStrings", t};
  p[n++] = (struct amt_prop){"ElementName", "Intel(r) AMT Environment Detection Settings"};
  p[n++] = (struct amt_prop){"InstanceID", "Intel(r) AMT Environment Detection Settings"};
  amt_emit_instance(e, "AMT_EnvironmentDetectionSettingData", p, n);
  free(copy);
}

static void env_put(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b, struct amt_fault *f) {
  const char *v[12];
  size_t n = dmt_wsman_request_params(w, "DetectionStrings", v, 12);
  size_t len = 0;
  for (size_t i = 0; i < n; i++) len += strlen(v[i]) + 1;
  char *joined = n ? malloc(len) : NULL;
  if (joined) {
    joined[0] = '\0';
    for (size_t i = 0; i < n; i++) {
      if (i) strcat(joined, "\n");
      strcat(joined, v[i]);
    }
  }
  free(d->detection_strings);
  d->detection_strings = joined && *joined ? joined : NULL;
  if (d->detection_strings != joined) free(joined);
  sim_device_save(d);
  struct amt_emit e = {.b = b, .w = w, .limit = 1};
  env_instances(d, &e);
  sim_cira_reconsider(d);
}

const struct amt_class amt_remote_access_classes[] = {
    {"AMT_RemoteAccessService", ras_instances, NULL, ras_invoke, NULL},
    {"AMT_ManagementPresenceRemoteSAP", sap_instances, NULL, NULL, sap_delete},
    {"AMT_RemoteAccessPolicyRule", rule_instances, NULL, NULL, rule_delete},
    {"AMT_RemoteAccessPolicyAppliesToMPS", applies_instances, applies_put, NULL, NULL},
    {"AMT_UserInitiatedConnectionService", uic_instances, NULL, uic_invoke, NULL},
    {"AMT_EnvironmentDetectionSettingData", env_instances, env_put, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
