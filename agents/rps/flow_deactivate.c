/*
 * Deactivation (rps-activation.md §2.8), both ways.
 *
 * Local (RPC "deactivate --password <pw> [-f]"): digest user admin with the
 * given password; the record goes only after AMT confirms the unprovisioning.
 *   UNPROVISION (AMT_SetupAndConfigurationService.Unprovision(1); ReturnValue 0)
 *   -> DELETE_RECORD (row + devices/<guid>, one transaction) -> CLEAR_STATE
 *
 * Remote (MQTT dmt/v1/<tenant>/provisioning/cmd/deactivate {guid}): through
 * the terminator holding the device's CIRA connection.
 *   CHECK_DEVICE (the row exists in this tenant: else unknown_device)
 *   -> RELAY (devices/<guid>/cmd/deactivate, await the terminator's reply)
 *   -> DELETE_RECORD -> CLEAR_STATE
 * CLEAR_STATE publishes an empty retained state: the device is no longer managed.
 */
#include <stdio.h>
#include <string.h>

#include "dmt/events.h"
#include "rps.h"

enum { L_UNPROVISION, L_DELETE, L_CLEAR };
enum { R_CHECK, R_RELAY, R_DELETE, R_CLEAR };

static void unprovision(struct rps_job *j) {
  struct dmt_wsman_param p[] = {{"ProvisioningMode", "1", false}};
  ws_invoke(j, "AMT_SetupAndConfigurationService", "Unprovision", NULL, 0, p, 1);
}

static int unprovision_reply(struct rps_job *j, const struct wsman_reply *r) {
  return wsman_return_value(r, "Unprovision") == 0 ? FE_OK : FE_FAIL;
}

static void deleted(struct rps_job *j, bool ok) {
  flow_post(j, ok ? FE_OK : FE_FAIL);
  job_unref(j);
}

static void delete_record(struct rps_job *j) {
  job_ref(j);
  if (device_register_delete(j, deleted) != 0) {
    job_unref(j);
    flow_post(j, FE_FAIL);
  }
}

static void clear_state(struct rps_job *j) {
  char topic[192];
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/state",
           dmt_topic_tenant(j->lk.record.exists ? j->lk.record.tenant : j->tenant), j->guid);
  struct dmt_mqtt_publish p = {.topic = topic, .payload = "", .len = 0, .qos = 1, .retain = true};
  dmt_mqtt_publish(j->srv->mqtt, &p);
  flow_post(j, FE_OK);
}

static void done(struct rps_job *j, bool ok) {
  if (ok) snprintf(j->st.status, sizeof j->st.status, "Deactivated");
}

static const struct flow_state local_states[] = {
    [L_UNPROVISION] = {.name = "UNPROVISIONING", .enter = unprovision, .reply = unprovision_reply,
                       .fail = "Unknown error has occured"},
    [L_DELETE] = {.name = "REMOVE_DEVICE_RECORD", .enter = delete_record,
                  .fail = "Failed to remove device from secret provider"},
    [L_CLEAR] = {.name = "CLEAR_DEVICE_STATE", .enter = clear_state},
};

const struct flow flow_deactivate_local = {"deactivate", local_states, sizeof local_states / sizeof local_states[0],
                                           done};

static void check_device(struct rps_job *j) {
  if (!j->lk.record.exists || strcmp(j->lk.record.tenant, j->tenant) != 0) {
    j->reply_code = 404;
    snprintf(j->reply_error, sizeof j->reply_error, "unknown_device");
    flow_fail_text(j, "no such device in this tenant");
    flow_post(j, FE_FAIL);
    return;
  }
  flow_post(j, FE_OK);
}

static void relay(struct rps_job *j) {
  if (provisioning_relay(j, "deactivate", j->relay_ms) != 0) flow_post(j, FE_FAIL);
}

static const struct flow_state remote_states[] = {
    [R_CHECK] = {.name = "CHECK_DEVICE", .enter = check_device},
    [R_RELAY] = {.name = "DEACTIVATE_THROUGH_TERMINATOR", .enter = relay},
    [R_DELETE] = {.name = "REMOVE_DEVICE_RECORD", .enter = delete_record,
                  .fail = "Failed to remove device from secret provider"},
    [R_CLEAR] = {.name = "CLEAR_DEVICE_STATE", .enter = clear_state},
};

const struct flow flow_deactivate_remote = {"remote_deactivate", remote_states,
                                            sizeof remote_states / sizeof remote_states[0], done};
