/*
 * Maintenance tasks of DMT's RPS (rps-activation.md §2.9), on an activated
 * device with its admin password (checked against the stored one unless -f),
 * and the time synchronisation also run after every activation.
 *
 *   synctime        GetLowAccuracyTimeSynch -> Ta0; SetHighAccuracyTimeSynch(Ta0, Tm1, Tm2), Unix seconds
 *   changepassword  GeneralSettings (realm) -> SetAdminAclEntryEx(admin, base64 HA1 of the new password:
 *                   the given one or a random one) -> devices/<guid>.AMT_PASSWORD -> terminator `refresh`
 *   synchostname    GeneralSettings Get -> Put with HostName = payload hostnameInfo.hostname
 *   syncip          EthernetPortSettings Enumerate/Pull -> Put with the payload's static addresses
 *                   (refused when AMT uses DHCP)
 *   syncdeviceinfo  no WS-Man: the row's device_info from the payload
 * Terminal message: {"Status":"<task> completed succesfully"} (sic, as DMT) or "<task> failed <detail>".
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dmt/events.h"
#include "rps.h"

/* ---- time ---- */

static void get_low(struct rps_job *j) {
  ws_invoke(j, "AMT_TimeSynchronizationService", "GetLowAccuracyTimeSynch", NULL, 0, NULL, 0);
}

static int get_low_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (wsman_return_value(r, "GetLowAccuracyTimeSynch") != 0) return FE_FAIL;
  j->ta0 = wsman_int(r, "GetLowAccuracyTimeSynch_OUTPUT.Ta0", -1);
  return j->ta0 >= 0 ? FE_OK : FE_FAIL;
}

static void set_high(struct rps_job *j) {
  char ta0[24], tm[24];
  snprintf(ta0, sizeof ta0, "%lld", (long long)j->ta0);
  snprintf(tm, sizeof tm, "%lld", (long long)time(NULL));
  struct dmt_wsman_param p[] = {{"Ta0", ta0, false}, {"Tm1", tm, false}, {"Tm2", tm, false}};
  ws_invoke(j, "AMT_TimeSynchronizationService", "SetHighAccuracyTimeSynch", NULL, 0, p, 3);
}

static int set_high_reply(struct rps_job *j, const struct wsman_reply *r) {
  return wsman_return_value(r, "SetHighAccuracyTimeSynch") == 0 ? FE_OK : FE_FAIL;
}

static const struct flow_state time_states[] = {
    {.name = "GET_LOW_ACCURACY_TIME_SYNCH", .enter = get_low, .reply = get_low_reply,
     .fail = "Failed to get low accuracy time synch"},
    {.name = "SET_HIGH_ACCURACY_TIME_SYNCH", .enter = set_high, .reply = set_high_reply,
     .fail = "Failed to set high accuracy time synch"},
};

const struct flow flow_timesync = {"timesync", time_states, sizeof time_states / sizeof time_states[0], NULL};

/* ---- password ---- */

static void new_password(struct rps_job *j) {
  if (j->args.task_arg && *j->args.task_arg) snprintf(j->amt_password, sizeof j->amt_password, "%s", j->args.task_arg);
  else if (amt_random_password(j->amt_password, sizeof j->amt_password) != 0) {
    flow_post(j, FE_FAIL);
    return;
  }
  flow_post(j, FE_OK);
}

static void password_saved(struct rps_job *j, bool ok) {
  flow_post(j, ok ? FE_OK : FE_FAIL);
  job_unref(j);
}

static void save_password(struct rps_job *j) {
  job_ref(j);
  if (device_register_update_password(j, password_saved) != 0) {
    job_unref(j);
    flow_post(j, FE_FAIL);
  }
}

static void refresh_terminator(struct rps_job *j) {
  /* DMT calls MPS DELETE /api/v1/devices/refresh/<guid>: the holder re-reads the credentials */
  char topic[192];
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/cmd/refresh", dmt_topic_tenant(j->tenant), j->guid);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str_with_body(&pk, "verb", 4);
  msgpack_pack_str_with_body(&pk, "refresh", 7);
  msgpack_pack_str_with_body(&pk, "deadline_ms", 11);
  msgpack_pack_int64(&pk, (int64_t)time(NULL) * 1000 + 30000);
  struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1, .expiry_s = 30};
  dmt_mqtt_publish(j->srv->mqtt, &p);
  msgpack_sbuffer_destroy(&sb);
  flow_post(j, FE_OK);
}

static const struct flow_state password_states[] = {
    {.name = "GET_GENERAL_SETTINGS", .enter = step_general_settings, .reply = step_general_settings_reply},
    {.name = "NEW_PASSWORD", .enter = new_password},
    {.name = "SET_ADMIN_ACL_ENTRY_EX", .enter = step_change_password, .reply = step_change_password_reply,
     .fail = "Failed to update AMT admin password"},
    {.name = "SAVE_PASSWORD_TO_SECRET_PROVIDER", .enter = save_password,
     .fail = "Failed to save the new password to the secret provider"},
    {.name = "REFRESH_TERMINATOR", .enter = refresh_terminator},
};

const struct flow flow_change_password = {"changepassword", password_states,
                                                 sizeof password_states / sizeof password_states[0], NULL};

/* ---- host name ---- */

static void put_hostname(struct rps_job *j) {
  if (!j->general || !j->dev.os_hostname[0]) {
    flow_fail_text(j, "no host name to set");
    flow_post(j, FE_FAIL);
    return;
  }
  struct dmt_wsman_param set[] = {{"HostName", j->dev.os_hostname, false}};
  ws_put_instance(j, "AMT_GeneralSettings", j->general, NULL, 0, NULL, set, 1);
}

static const struct flow_state hostname_states[] = {
    {.name = "GET_GENERAL_SETTINGS", .enter = step_general_settings, .reply = step_general_settings_reply},
    {.name = "PUT_GENERAL_SETTINGS", .enter = put_hostname, .fail = "Failed to put general settings"},
};

const struct flow flow_sync_hostname = {"synchostname", hostname_states,
                                               sizeof hostname_states / sizeof hostname_states[0], NULL};

/* ---- IP ---- */

static void put_ip(struct rps_job *j) {
  if (!j->wired_present || !j->wired) {
    flow_fail_text(j, "no wired port");
    flow_post(j, FE_FAIL);
    return;
  }
  if (json_is_true(json_object_get(j->wired, "DHCPEnabled"))) {
    flow_fail_text(j, "AMT is configured for DHCP");
    flow_post(j, FE_FAIL);
    return;
  }
  const struct rpc_ip_config *ip = &j->dev.ip;
  struct dmt_wsman_selector sel[] = {{"InstanceID", json_string_value(json_object_get(j->wired, "InstanceID"))}};
  struct dmt_wsman_param set[] = {{"IPAddress", ip->ip, false}, {"SubnetMask", ip->netmask, false},
                                  {"DefaultGateway", ip->gateway, false}, {"PrimaryDNS", ip->dns1, false},
                                  {"SecondaryDNS", ip->dns2, false}};
  if (!sel[0].value || !ip->ip[0]) {
    flow_fail_text(j, "no IP address given");
    flow_post(j, FE_FAIL);
    return;
  }
  ws_put_instance(j, "AMT_EthernetPortSettings", j->wired, sel, 1, NULL, set, ip->dns2[0] ? 5 : 4);
}

static const struct flow_state ip_states[] = {
    {.name = "ENUMERATE_ETHERNET_PORT_SETTINGS", .enter = step_enum_ethernet, .reply = step_enum_reply},
    {.name = "PULL_ETHERNET_PORT_SETTINGS", .enter = step_pull_ethernet, .reply = step_pull_ethernet_reply},
    {.name = "PUT_ETHERNET_PORT_SETTINGS", .enter = put_ip, .fail = "Failed to put ethernet port settings"},
};

const struct flow flow_sync_ip = {"syncip", ip_states, sizeof ip_states / sizeof ip_states[0], NULL};

/* ---- device info ---- */

static void info_saved(struct rps_job *j, bool ok) {
  flow_post(j, ok ? FE_OK : FE_FAIL);
  job_unref(j);
}

static void save_info(struct rps_job *j) {
  job_ref(j);
  if (device_register_update_info(j, info_saved) != 0) {
    job_unref(j);
    flow_post(j, FE_FAIL);
  }
}

static const struct flow_state info_states[] = {
    {.name = "SAVE_DEVICE_INFO", .enter = save_info, .fail = "Failed to save device information"},
};

const struct flow flow_sync_device_info = {"syncdeviceinfo", info_states, 1, NULL};

/* ---- dispatch ---- */

static bool task_is(const struct rps_job *j, const char *t) { return j->args.task && !strcmp(j->args.task, t); }
static bool not_synctime(const struct rps_job *j) { return !task_is(j, "synctime"); }
static bool not_changepassword(const struct rps_job *j) { return !task_is(j, "changepassword"); }
static bool not_synchostname(const struct rps_job *j) { return !task_is(j, "synchostname"); }
static bool not_syncip(const struct rps_job *j) { return !task_is(j, "syncip"); }
static bool not_syncdeviceinfo(const struct rps_job *j) { return !task_is(j, "syncdeviceinfo"); }

static void done(struct rps_job *j, bool ok) {
  if (ok) snprintf(j->st.status, sizeof j->st.status, "%s completed succesfully", j->args.task);
  else {
    char detail[sizeof j->fail_text];
    snprintf(detail, sizeof detail, "%s", j->fail_text);
    snprintf(j->fail_text, sizeof j->fail_text, "%.32s failed %.400s", j->args.task, detail);
  }
}

static const struct flow_state maintenance_states[] = {
    {.name = "SYNC_TIME", .call = &flow_timesync, .skip = not_synctime},
    {.name = "CHANGE_PASSWORD", .call = &flow_change_password, .skip = not_changepassword},
    {.name = "SYNC_HOST_NAME", .call = &flow_sync_hostname, .skip = not_synchostname},
    {.name = "SYNC_IP", .call = &flow_sync_ip, .skip = not_syncip},
    {.name = "SYNC_DEVICE_INFO", .call = &flow_sync_device_info, .skip = not_syncdeviceinfo},
};

const struct flow flow_maintenance = {"maintenance", maintenance_states,
                                      sizeof maintenance_states / sizeof maintenance_states[0], done};
