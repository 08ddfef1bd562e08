/*
 * Client control mode activation of a pre-provisioning device
 * (rps-activation.md §2.3). Digest credentials start as the local system
 * account the client reported ($$OsAdmin + its HECI password); Setup sets the
 * admin password (the profile's, or a random one) as the HA1 of user admin;
 * a Setup that times out is checked with an HBS Get before giving up.
 *
 *   GENERAL_SETTINGS -> SETUP -ok-> DELAY -> UPDATE_CREDENTIALS -> SAVE_RECORD -> POST_ACTIVATION
 *                         \-timeout-> CHECK_MODE -ok-> DELAY
 */
#include <stdio.h>
#include <string.h>

#include "rps.h"

enum { S_GENERAL_SETTINGS, S_SETUP, S_CHECK_MODE, S_DELAY, S_UPDATE_CREDENTIALS, S_SAVE_RECORD, S_POST };

static void setup_enter(struct rps_job *j) {
  char hash[DMT_DIGEST_HEX];
  amt_network_admin_password(j->realm, j->amt_password, hash);
  struct dmt_wsman_param p[] = {{"NetAdminPassEncryptionType", "2", false}, {"NetworkAdminPassword", hash, false}};
  ws_invoke(j, "IPS_HostBasedSetupService", "Setup", NULL, 0, p, 2);
  memset(hash, 0, sizeof hash);
}

static void activated(struct rps_job *j) {
  j->activated = true;
  snprintf(j->st.status, sizeof j->st.status, "Client control mode.");
}

static int setup_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (wsman_return_value(r, "Setup") != 0) return FE_FAIL;
  activated(j);
  return FE_OK;
}

static int check_mode_reply(struct rps_job *j, const struct wsman_reply *r) {
  int ev = step_check_mode_reply(j, r);
  if (ev == FE_OK) activated(j);
  return ev;
}

static const struct flow_state states[] = {
    [S_GENERAL_SETTINGS] = {.name = "GET_GENERAL_SETTINGS", .enter = step_general_settings,
                            .reply = step_general_settings_reply},
    [S_SETUP] = {.name = "SETUP", .enter = setup_enter, .reply = setup_reply,
                 .fail = "Failed to activate in client control mode.",
                 .on = {{FE_OK, FLOW_TO(S_DELAY)}, {FE_TIMEOUT, FLOW_TO(S_CHECK_MODE)}}},
    [S_CHECK_MODE] = {.name = "CHECK_ACTIVATION_ON_AMT", .enter = step_check_mode, .reply = check_mode_reply,
                      .fail = "Failed to activate in client control mode."},
    [S_DELAY] = {.name = "DELAYED_TRANSITION", .enter = step_delay},
    [S_UPDATE_CREDENTIALS] = {.name = "UPDATE_CREDENTIALS", .enter = step_update_credentials},
    [S_SAVE_RECORD] = {.name = "SAVE_DEVICE_RECORD", .enter = step_save_record,
                       .fail = "Failed to save device information to Secret Provider"},
    [S_POST] = {.name = "POST_ACTIVATION", .call = &flow_post_activation, .soft = true},
};

const struct flow flow_ccm = {"ccm", states, sizeof states / sizeof states[0], NULL};
