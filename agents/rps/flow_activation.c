/*
 * Steps shared by the activation flows (CCM, ACM, reconfiguration) and the
 * post-activation chain (rps-activation.md §2.3-2.6):
 *
 *   GENERAL_SETTINGS   AMT_GeneralSettings Get; DigestRealm must be
 *                      "Digest:" + 32 hex ("Not a valid digest realm.")
 *   CHECK_MODE         after a Setup/AdminSetup timeout: HBS Get, the mode
 *                      tells whether the device did activate
 *   DELAY              DMT's delay_timer after activation (rps.delay_ms)
 *   UPDATE_CREDENTIALS digest user admin with the password the device holds
 *   CHANGE_PASSWORD    SetAdminAclEntryEx(admin, base64 HA1) for activated
 *                      devices: the profile's (or a new random) password
 *   SET_MEBX           SetMEBxPassword (ACM)
 *   SAVE_RECORD        the device record (device_register.c)
 *
 * flow_post_activation: time sync, unconfiguration, network, features, CIRA;
 * each is `soft` (a failure is reported in the status strings and the job
 * still succeeds, as DMT's sub-machines behave, §1.7).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/mptree.h"
#include "rps.h"

void step_general_settings(struct rps_job *j) { ws_get(j, "AMT_GeneralSettings", NULL, 0); }

static bool flag(const struct wsman_reply *r, const char *path) {
  const msgpack_object *o = wsman_get_obj(r, path);
  if (!o) return false;
  if (o->type == MSGPACK_OBJECT_BOOLEAN) return o->via.boolean;
  int64_t v;
  return dmt_mp_int(o, &v) && v == 1;
}

int step_general_settings_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  if (!wsman_text(r, "AMT_GeneralSettings.DigestRealm", j->realm, sizeof j->realm) || !amt_realm_valid(j->realm)) {
    flow_fail_text(j, "Not a valid digest realm.");
    return FE_FAIL;
  }
  j->gs_known = true;
  j->gs_shared_fqdn = flag(r, "AMT_GeneralSettings.SharedFQDN");
  j->gs_network_enabled = flag(r, "AMT_GeneralSettings.AMTNetworkEnabled");
  j->gs_rmcp_ping = flag(r, "AMT_GeneralSettings.RmcpPingResponseEnabled");
  wsman_text(r, "AMT_GeneralSettings.HostName", j->gs_hostname, sizeof j->gs_hostname);
  json_decref(j->general);
  j->general = wsman_instance_json(r, "AMT_GeneralSettings");
  return FE_OK;
}

void step_check_mode(struct rps_job *j) { ws_get(j, "IPS_HostBasedSetupService", NULL, 0); }

int step_check_mode_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  long long mode = wsman_int(r, "IPS_HostBasedSetupService.CurrentControlMode", -1);
  return mode == (long long)j->target ? FE_OK : FE_FAIL;
}

static void delay_done(lws_sorted_usec_list_t *sul) {
  struct rps_job *j = lws_container_of(sul, struct rps_job, t_delay);
  job_mark_wait(j); /* waiting, not working */
  job_mark_work(j);
  flow_post(j, FE_OK);
}

void step_delay(struct rps_job *j) {
  if (j->srv->set.delay_ms == 0) {
    flow_post(j, FE_OK);
    return;
  }
  job_mark_wait(j);
  rps_timer_start(j->srv, &j->t_delay, delay_done, j->srv->set.delay_ms);
}

void step_update_credentials(struct rps_job *j) {
  wsman_set_credentials(j, RPS_ADMIN_USER, j->activated ? j->amt_password : j->dev.password);
  flow_post(j, FE_OK);
}

void step_change_password(struct rps_job *j) {
  char digest[32];
  amt_acl_digest_password(j->realm, j->amt_password, digest);
  struct dmt_wsman_param p[] = {{"Username", RPS_ADMIN_USER, false}, {"DigestPassword", digest, false}};
  ws_invoke(j, "AMT_AuthorizationService", "SetAdminAclEntryEx", NULL, 0, p, 2);
  memset(digest, 0, sizeof digest);
}

int step_change_password_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (wsman_return_value(r, "SetAdminAclEntryEx") != 0) return FE_FAIL;
  j->activated = true; /* the device now holds amt_password */
  j->record_saved = false;
  return FE_OK;
}

void step_set_mebx(struct rps_job *j) {
  if (j->target != MODE_ACM) {
    flow_post(j, FE_OK);
    return;
  }
  struct dmt_wsman_param p[] = {{"Password", j->mebx_password, false}};
  ws_invoke(j, "AMT_SetupAndConfigurationService", "SetMEBxPassword", NULL, 0, p, 1);
}

int step_set_mebx_reply(struct rps_job *j, const struct wsman_reply *r) {
  return wsman_return_value(r, "SetMEBxPassword") == 0 ? FE_OK : FE_FAIL;
}

static void record_saved(struct rps_job *j, bool ok) {
  if (!j->ended && ok) {
    if (!j->st.activation.result) {
      /* DMT's Components.Activation: sentence-cased Status without the trailing period */
      j->st.activation.result = "Success";
      snprintf(j->st.activation.mode, sizeof j->st.activation.mode, "%s", j->target == MODE_ACM ? "ACM" : "CCM");
      size_t n = strlen(j->st.status);
      snprintf(j->st.activation.details, sizeof j->st.activation.details, "%.*s",
               (int)(n && j->st.status[n - 1] == '.' ? n - 1 : n), j->st.status);
      if (j->st.activation.details[0] >= 'a' && j->st.activation.details[0] <= 'z') j->st.activation.details[0] -= 32;
    }
  }
  flow_post(j, ok ? FE_OK : FE_FAIL);
  job_unref(j);
}

void step_save_record(struct rps_job *j) {
  job_ref(j);
  if (device_register_save(j, record_saved) != 0) {
    job_unref(j);
    flow_post(j, FE_FAIL);
  }
}

bool skip_unless_acm(const struct rps_job *j) { return j->target != MODE_ACM; }

/* ---- post-activation chain ---- */

static bool skip_timesync(const struct rps_job *j) { return !j->srv->set.time_sync; }
static bool skip_cira(const struct rps_job *j) { return !j->lk.profile.cira_name[0]; }

static const struct flow_state post_states[] = {
    {.name = "TIME_SYNC", .call = &flow_timesync, .skip = skip_timesync, .soft = true},
    {.name = "UNCONFIGURATION", .call = &flow_unconfigure, .soft = true},
    {.name = "NETWORK_CONFIGURATION", .call = &flow_network, .soft = true},
    {.name = "FEATURES_CONFIGURATION", .call = &flow_features, .soft = true},
    {.name = "CIRA", .call = &flow_cira, .skip = skip_cira, .soft = true},
};

const struct flow flow_post_activation = {"post_activation", post_states, sizeof post_states / sizeof post_states[0],
                                          NULL};
