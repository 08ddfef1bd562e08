/*
 * Activation of a device that is already activated with a profile of the same
 * (or, for ACM devices, admin) mode (rps-activation.md §2.5): the client gave
 * the AMT admin password (checked against the stored one when there is one,
 * and by AMT itself through digest), the admin password is replaced by the
 * profile's (or a new random one), the MEBx password is set for ACM, the
 * record is rewritten and the post-activation chain runs again (DMT probes
 * AMT_TLSSettingData unauthenticated first; we do not need to).
 *
 *   GENERAL_SETTINGS -> CHANGE_PASSWORD -> UPDATE_CREDENTIALS -> SET_MEBX (ACM)
 *     -> SAVE_RECORD -> POST_ACTIVATION
 */
#include "rps.h"

enum { S_GENERAL_SETTINGS, S_CHANGE_PASSWORD, S_UPDATE_CREDENTIALS, S_SET_MEBX, S_SAVE_RECORD, S_POST };

static const struct flow_state states[] = {
    [S_GENERAL_SETTINGS] = {.name = "GET_GENERAL_SETTINGS", .enter = step_general_settings,
                            .reply = step_general_settings_reply},
    [S_CHANGE_PASSWORD] = {.name = "CHANGE_AMT_PASSWORD", .enter = step_change_password,
                           .reply = step_change_password_reply, .fail = "Failed to update AMT admin password."},
    [S_UPDATE_CREDENTIALS] = {.name = "UPDATE_CREDENTIALS", .enter = step_update_credentials},
    [S_SET_MEBX] = {.name = "SET_MEBX_PASSWORD", .enter = step_set_mebx, .reply = step_set_mebx_reply,
                    .fail = "Failed to set MEBx password."},
    [S_SAVE_RECORD] = {.name = "SAVE_DEVICE_RECORD", .enter = step_save_record,
                       .fail = "Failed to save device information to Secret Provider"},
    [S_POST] = {.name = "POST_ACTIVATION", .call = &flow_post_activation, .soft = true},
};

const struct flow flow_reconfigure = {"reconfigure", states, sizeof states / sizeof states[0], NULL};
