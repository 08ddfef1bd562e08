/*
 * AMT features from the profile (rps-activation.md §2.6 c): redirection
 * (IDE-R, SOL), KVM and user consent.
 *
 *   GET_REDIRECTION, GET_OPTIN, GET_KVM
 *   -> [redirection changed] SET_REDIRECTION (RequestStateChange 32768 + IDER + 2*SOL)
 *                            SET_KVM (RequestStateChange 2 enabled / 3 disabled)
 *                            PUT_REDIRECTION (ListenerEnabled = any, AccessLog dropped)
 *   -> [opt-in changed]      PUT_OPTIN (OptInRequired: None 0, KVM 1, All 4294967295)
 * Profile defaults as DMT: IDE-R off, KVM on, SOL off, consent All in CCM (AMT insists) and KVM in ACM.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rps.h"

enum { S_GET_REDIR, S_GET_OPTIN, S_GET_KVM, S_SET_REDIR, S_SET_KVM, S_PUT_REDIR, S_PUT_OPTIN };

static void get_redir(struct rps_job *j) { ws_get(j, "AMT_RedirectionService", NULL, 0); }
static void get_optin(struct rps_job *j) { ws_get(j, "IPS_OptInService", NULL, 0); }
static void get_kvm(struct rps_job *j) { ws_get(j, "CIM_KVMRedirectionSAP", NULL, 0); }

static int get_redir_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  json_decref(j->saved);
  j->saved = wsman_instance_json(r, "AMT_RedirectionService");
  return j->saved ? FE_OK : FE_FAIL;
}

static int get_optin_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  json_decref(j->optin);
  j->optin = wsman_instance_json(r, "IPS_OptInService");
  j->optin_required = wsman_int(r, "IPS_OptInService.OptInRequired", -1);
  return j->optin ? FE_OK : FE_FAIL;
}

static long long desired_optin(const struct rps_job *j) {
  const char *c = j->lk.profile.user_consent;
  if (j->target == MODE_CCM) return 4294967295LL;
  if (!strcasecmp(c, "None")) return 0;
  if (!strcasecmp(c, "All")) return 4294967295LL;
  return 1; /* KVM, the ACM default */
}

static int get_kvm_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  const struct rps_profile *p = &j->lk.profile;
  bool ider = p->ider == 1, sol = p->sol == 1, kvm = p->kvm != 0;
  j->kvm_current = (int)wsman_int(r, "CIM_KVMRedirectionSAP.EnabledState", -1);
  j->redir_state = 32768 + (ider ? 1 : 0) + (sol ? 2 : 0);
  j->kvm_state = kvm ? 2 : 3;
  long long cur = json_integer_value(json_object_get(j->saved, "EnabledState"));
  bool kvm_on = j->kvm_current == 2 || j->kvm_current == 6;
  json_t *listener = json_object_get(j->saved, "ListenerEnabled");
  bool want_listener = ider || sol || kvm;
  j->redir_changed = cur != j->redir_state || kvm_on != kvm || !json_is_boolean(listener) ||
                     json_is_true(listener) != want_listener;
  j->optin_changed = j->optin_required != desired_optin(j);
  return FE_OK;
}

static void set_redir(struct rps_job *j) {
  if (!j->redir_changed) {
    flow_post(j, FE_ALT);
    return;
  }
  char st[16];
  snprintf(st, sizeof st, "%d", j->redir_state);
  struct dmt_wsman_param p[] = {{"RequestedState", st, false}};
  ws_invoke(j, "AMT_RedirectionService", "RequestStateChange", NULL, 0, p, 1);
}

static void set_kvm(struct rps_job *j) {
  char st[16];
  snprintf(st, sizeof st, "%d", j->kvm_state);
  struct dmt_wsman_param p[] = {{"RequestedState", st, false}};
  ws_invoke(j, "CIM_KVMRedirectionSAP", "RequestStateChange", NULL, 0, p, 1);
}

static int state_change_reply(struct rps_job *j, const struct wsman_reply *r) {
  return wsman_return_value(r, "RequestStateChange") == 0 ? FE_OK : FE_FAIL;
}

static void put_redir(struct rps_job *j) {
  const struct rps_profile *p = &j->lk.profile;
  bool listener = p->ider == 1 || p->sol == 1 || p->kvm != 0;
  char st[16];
  snprintf(st, sizeof st, "%d", j->redir_state);
  static const char *const drop[] = {"AccessLog", NULL};
  struct dmt_wsman_param set[] = {{"EnabledState", st, false}, {"ListenerEnabled", listener ? "true" : "false", false}};
  ws_put_instance(j, "AMT_RedirectionService", j->saved, NULL, 0, drop, set, 2);
}

static void put_optin(struct rps_job *j) {
  if (!j->optin_changed || !j->optin) {
    flow_post(j, FE_OK);
    return;
  }
  char v[24];
  snprintf(v, sizeof v, "%lld", desired_optin(j));
  struct dmt_wsman_param set[] = {{"OptInRequired", v, false}};
  ws_put_instance(j, "IPS_OptInService", j->optin, NULL, 0, NULL, set, 1);
}

static void done(struct rps_job *j, bool ok) {
  if (!ok) DMT_WARN(&j->srv->log, "features_not_configured", "job=%s guid=%s step=%s", j->id, j->guid, j->step);
}

static const struct flow_state states[] = {
    [S_GET_REDIR] = {.name = "GET_REDIRECTION_SERVICE", .enter = get_redir, .reply = get_redir_reply},
    [S_GET_OPTIN] = {.name = "GET_OPT_IN_SERVICE", .enter = get_optin, .reply = get_optin_reply},
    [S_GET_KVM] = {.name = "GET_KVM_REDIRECTION_SAP", .enter = get_kvm, .reply = get_kvm_reply},
    [S_SET_REDIR] = {.name = "SET_REDIRECTION_SERVICE", .enter = set_redir, .reply = state_change_reply,
                     .on = {{FE_ALT, FLOW_TO(S_PUT_OPTIN)}}},
    [S_SET_KVM] = {.name = "SET_KVM_REDIRECTION_SAP", .enter = set_kvm, .reply = state_change_reply},
    [S_PUT_REDIR] = {.name = "PUT_REDIRECTION_SERVICE", .enter = put_redir},
    [S_PUT_OPTIN] = {.name = "PUT_OPT_IN_SERVICE", .enter = put_optin},
};

const struct flow flow_features = {"features", states, sizeof states / sizeof states[0], done};
