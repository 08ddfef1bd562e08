/*
 * /api/v1/amt/...: every MPS device-command route. Each route validates its
 * input as DMT does (validators run before ciraMiddleware, so a bad body is a
 * 400 even for a disconnected device), then becomes one command verb on the
 * device's cmd topic (amt_command.c); the terminator's reply carries the
 * DMT-shaped result tree, converted to JSON as is. Verbs a terminator does
 * not implement come back as 501 Not Implemented in DMT's error shape.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/mptree.h"

enum args_kind { ARGS_NONE, ARGS_BODY, ARGS_POWER, ARGS_BOOT, ARGS_AUDIT };

struct amt_spec {
  const char *verb;
  enum args_kind args;
  const char *extra_param; /* second route parameter passed in args under this name */
  br_reply_fn reply;       /* NULL: default mapping */
};

/* ------------------------------------------------------------ validators */

/* DMTFCombinedPowerStates (mps-cira.md §3.4) */
static const char *const combined_states[] = {"2",   "3",   "4",   "5",   "6",   "7",   "8",   "10",  "11",  "12",
                                              "13",  "14",  "15",  "16",  "17",  "100", "101", "104", "105", "106",
                                              "107", "108", "109", "110", "200", "201", "202", "203", "300", "301",
                                              "400", "401", "500", "501", NULL};
/* DMTFPowerExtendedStates: the boot-option codes */
static const char *const extended_states[] = {"100", "101", "104", "105", "106", "107", "108", "109", "110", "200",
                                              "201", "202", "203", "300", "301", "400", "401", NULL};
static const char *const consent_values[] = {"kvm", "all", "none", NULL};

static bool looks_like_url(const char *s) { return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8); }

static bool cert_check(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  char s[16384];
  br_js_string(value, s, sizeof s);
  return br_x509_check_b64(s, msg, msglen) == 0;
}

static bool instance_or_handle(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  const json_t *id = json_object_get(v->params, "instanceId");
  if ((id && br_js_truthy(id)) || br_js_truthy(br_body_get(v, "handle"))) return true;
  snprintf(msg, msglen, "At least one of instanceId or handle must be provided");
  return false;
}

static bool wireless_state_name(const char *s) {
  return !strcmp(s, "WifiDisabled") || !strcmp(s, "WifiEnabledS0") || !strcmp(s, "WifiEnabledS0SxAC") ||
         !strcmp(s, "32768") || !strcmp(s, "32769") || !strcmp(s, "32770");
}

static bool ipv4(const char *s) { return br_fmt_ipv4_strict(s); }

BR_CHAIN(audit_chain, V_FIELD_AT(BR_LOC_QUERY, "startIndex", BR_OPTIONAL, V_INT(0, BR_LL_MAX, NULL)));
BR_CHAIN(power_chain, V_FIELD("action", BR_REQUIRED, V_IN(combined_states, NULL), V_NUMERIC(NULL)));
BR_CHAIN(boot_chain, V_FIELD("action", BR_REQUIRED, V_IN(extended_states, NULL), V_NUMERIC(NULL)),
         V_FIELD("useSOL", BR_REQUIRED, V_BOOL(NULL)),
         V_FIELD("bootDetails.url", BR_OPTIONAL, V_MATCH(looks_like_url, NULL)),
         V_FIELD("bootDetails.username", BR_OPTIONAL, V_STRING(NULL)),
         V_FIELD("bootDetails.password", BR_OPTIONAL, V_STRING(NULL)),
         V_FIELD("bootDetails.bootPath", BR_OPTIONAL, V_STRING(NULL)),
         V_FIELD("bootDetails.enforceSecureBoot", BR_OPTIONAL, V_BOOL(NULL)));
BR_CHAIN(features_chain, V_FIELD("userConsent", BR_REQUIRED, V_IN(consent_values, NULL), V_STRING(NULL)),
         V_FIELD("enableSOL", BR_REQUIRED, V_BOOL(NULL)), V_FIELD("enableIDER", BR_REQUIRED, V_BOOL(NULL)),
         V_FIELD("enableKVM", BR_REQUIRED, V_BOOL(NULL)), V_FIELD("ocr", BR_OPTIONAL, V_BOOL(NULL)),
         V_FIELD("enablePlatformErase", BR_OPTIONAL, V_BOOL(NULL)));
BR_CHAIN(consent_chain, V_FIELD("consentCode", BR_REQUIRED, V_NOT_EMPTY(NULL), V_NUMERIC(NULL)));
BR_CHAIN(cert_add_chain,
         V_FIELD("cert", BR_REQUIRED, V_NOT_EMPTY("Certificate is required"), V_CUSTOM(cert_check, NULL)),
         V_FIELD("isTrusted", BR_REQUIRED, V_BOOL("isTrusted must be a boolean value")));
BR_CHAIN(cert_delete_chain, V_FIELD("instanceId", BR_OPTIONAL, V_STRING("instanceId must be a string")),
         V_FIELD("handle", BR_OPTIONAL, V_STRING("handle must be a string")),
         V_FIELD("instanceId", BR_REQUIRED, V_CUSTOM(instance_or_handle, NULL)));
BR_CHAIN(kvm_chain, V_FIELD("displayIndex", BR_REQUIRED, V_INT(0, 255, NULL)));
BR_CHAIN(link_chain, V_FIELD("linkPreference", BR_REQUIRED, V_INT(1, 2, "linkPreference must be 1 (ME) or 2 (HOST)")),
         V_FIELD("timeout", BR_REQUIRED, V_INT(0, BR_LL_MAX, "timeout must be a non-negative integer")),
         V_FIELD_AT(BR_LOC_QUERY, "instanceID", BR_OPTIONAL, V_STRING(NULL)));
BR_CHAIN(wired_chain, V_FIELD("dhcpEnabled", BR_REQUIRED, V_BOOL("dhcpEnabled must be a boolean")),
         V_FIELD("ipSyncEnabled", BR_OPTIONAL, V_BOOL("ipSyncEnabled must be a boolean")),
         V_FIELD("ipAddress", BR_FALSY, V_MATCH(ipv4, "ipAddress must be a valid IPv4 address")),
         V_FIELD("subnetMask", BR_FALSY, V_MATCH(ipv4, "subnetMask must be a valid IPv4 address")),
         V_FIELD("defaultGateway", BR_FALSY, V_MATCH(ipv4, "defaultGateway must be a valid IPv4 address")),
         V_FIELD("primaryDNS", BR_FALSY, V_MATCH(ipv4, "primaryDNS must be a valid IPv4 address")),
         V_FIELD("secondaryDNS", BR_FALSY, V_MATCH(ipv4, "secondaryDNS must be a valid IPv4 address")));
BR_CHAIN(wireless_state_chain,
         V_FIELD("state", BR_REQUIRED, V_EXISTS("state is required"), V_BAIL,
                 V_MATCH(wireless_state_name, "state must be one of WifiDisabled, WifiEnabledS0, WifiEnabledS0SxAC")));
BR_CHAIN(profile_sync_chain,
         V_FIELD("localProfileSync", BR_NULLABLE, V_BOOL_STRICT("localProfileSync must be a boolean")),
         V_FIELD("uefiProfileSync", BR_NULLABLE, V_BOOL_STRICT("uefiProfileSync must be a boolean")));
BR_CHAIN(wireless_profile_chain, V_FIELD("profileName", BR_REQUIRED, V_NOT_EMPTY("profileName is required")),
         V_FIELD("ssid", BR_REQUIRED, V_NOT_EMPTY("ssid is required")),
         V_FIELD("priority", BR_OPTIONAL, V_INT(1, 255, "priority must be an integer between 1 and 255")));

/* ------------------------------------------------------------ replies */

/* DMT answers 404 (not connected) when a power-state query times out. */
static void reply_power_state(struct br_txn *t, int code, const char *error, const char *message,
                              const json_t *result) {
  if (error && (!strcmp(error, "timeout") || !strcmp(error, "expired"))) error = "offline";
  br_amt_default_reply(t, code, error, message, result);
}

/* User-consent routes: 400 with the same body when the device's ReturnValue is not 0. */
static void reply_consent(struct br_txn *t, int code, const char *error, const char *message, const json_t *result) {
  const json_t *rv = result ? json_object_get(json_object_get(result, "Body"), "ReturnValue") : NULL;
  if (!error && json_is_integer(rv) && json_integer_value(rv) != 0) {
    br_respond_json(t, 400, json_deep_copy(result));
    return;
  }
  br_amt_default_reply(t, code, error, message, result);
}

/* ------------------------------------------------------------ handler */

static long long to_int(const json_t *v) {
  char s[64];
  br_js_string(v, s, sizeof s);
  return strtoll(s, NULL, 10);
}

static bool to_bool(const json_t *v) {
  char s[64];
  br_js_string(v, s, sizeof s);
  return !(s[0] == '\0' || !strcmp(s, "0") || !strcmp(s, "false"));
}

static json_t *build_args(struct br_txn *t, const struct amt_spec *sp) {
  json_t *body = json_is_object(t->body) ? t->body : NULL;
  json_t *a = NULL;
  switch (sp->args) {
    case ARGS_NONE: a = NULL; break;
    case ARGS_BODY: a = body ? json_deep_copy(body) : json_object(); break;
    case ARGS_POWER:
      a = json_pack("{s:I,s:b}", "action", (json_int_t)to_int(json_object_get(body, "action")), "use_sol",
                    to_bool(json_object_get(body, "useSOL")));
      break;
    case ARGS_BOOT:
      a = json_pack("{s:I,s:b}", "action", (json_int_t)to_int(json_object_get(body, "action")), "use_sol",
                    to_bool(json_object_get(body, "useSOL")));
      if (json_is_object(json_object_get(body, "bootDetails")))
        json_object_set(a, "boot_details", json_object_get(body, "bootDetails"));
      break;
    case ARGS_AUDIT: {
      const char *si = br_query(t, "startIndex");
      a = json_pack("{s:I}", "start_index", (json_int_t)(si ? strtoll(si, NULL, 10) : 0));
      break;
    }
  }
  if (sp->extra_param && t->nparams > 1) {
    if (!a) a = json_object();
    json_object_set_new(a, sp->extra_param, json_string(br_param(t, 1)));
  }
  return a;
}

static void amt_route(struct br_txn *t) {
  const struct amt_spec *sp = t->route->data;
  json_t *args = build_args(t, sp);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  if (args) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (dmt_json_to_mp(args, &pk) != 0) {
      json_decref(args);
      msgpack_sbuffer_destroy(&sb);
      br_out_amt_error(&t->out, 400, "arguments nested too deeply");
      br_send(t);
      return;
    }
    json_decref(args);
  }
  br_amt_command(t, br_param(t, 0), sp->verb, sb.data, sb.size, sp->reply);
  msgpack_sbuffer_destroy(&sb);
}

#define SPEC(name, ...) static const struct amt_spec name = {__VA_ARGS__}
SPEC(s_audit, "audit_log", ARGS_AUDIT, NULL, NULL);
SPEC(s_event, "event_log", ARGS_NONE, NULL, NULL);
SPEC(s_general, "general_settings", ARGS_NONE, NULL, NULL);
SPEC(s_hw, "hardware_info", ARGS_NONE, NULL, NULL);
SPEC(s_power_action, "power_action", ARGS_POWER, NULL, NULL);
SPEC(s_boot, "boot_options", ARGS_BOOT, NULL, NULL);
SPEC(s_caps, "power_capabilities", ARGS_NONE, NULL, NULL);
SPEC(s_state, "power_state", ARGS_NONE, NULL, reply_power_state);
SPEC(s_features, "features", ARGS_NONE, NULL, NULL);
SPEC(s_set_features, "set_features", ARGS_BODY, NULL, NULL);
SPEC(s_boot_caps, "boot_capabilities", ARGS_NONE, NULL, NULL);
SPEC(s_set_rpe, "set_rpe", ARGS_BODY, NULL, NULL);
SPEC(s_send_rpe, "send_rpe", ARGS_BODY, NULL, NULL);
SPEC(s_version, "version", ARGS_NONE, NULL, NULL);
SPEC(s_deactivate, "deactivate", ARGS_NONE, NULL, NULL);
SPEC(s_boot_sources, "boot_sources", ARGS_NONE, NULL, NULL);
SPEC(s_consent_cancel, "user_consent_cancel", ARGS_NONE, NULL, reply_consent);
SPEC(s_consent_request, "user_consent_request", ARGS_NONE, NULL, reply_consent);
SPEC(s_consent_send, "user_consent_send", ARGS_BODY, NULL, reply_consent);
SPEC(s_alarms, "alarm_occurrences", ARGS_NONE, NULL, NULL);
SPEC(s_alarm_add, "alarm_add", ARGS_BODY, NULL, NULL);
SPEC(s_alarm_delete, "alarm_delete", ARGS_BODY, NULL, NULL);
SPEC(s_certs, "certificates", ARGS_NONE, NULL, NULL);
SPEC(s_cert_add, "certificate_add", ARGS_BODY, NULL, NULL);
SPEC(s_cert_delete, "certificate_delete", ARGS_BODY, "instanceId", NULL);
SPEC(s_kvm, "kvm_displays", ARGS_NONE, NULL, NULL);
SPEC(s_kvm_set, "set_kvm_displays", ARGS_BODY, NULL, NULL);
SPEC(s_link, "link_preference", ARGS_BODY, NULL, NULL);
SPEC(s_net, "network_settings", ARGS_NONE, NULL, NULL);
SPEC(s_wired, "wired_settings", ARGS_NONE, NULL, NULL);
SPEC(s_wired_set, "set_wired_settings", ARGS_BODY, NULL, NULL);
SPEC(s_wstate, "wireless_state", ARGS_NONE, NULL, NULL);
SPEC(s_wstate_set, "set_wireless_state", ARGS_BODY, NULL, NULL);
SPEC(s_wsync, "wireless_profile_sync", ARGS_NONE, NULL, NULL);
SPEC(s_wsync_set, "set_wireless_profile_sync", ARGS_BODY, NULL, NULL);
SPEC(s_wprofiles, "wireless_profiles", ARGS_NONE, NULL, NULL);
SPEC(s_wprofile_add, "wireless_profile_add", ARGS_BODY, NULL, NULL);
SPEC(s_wprofile_update, "wireless_profile_update", ARGS_BODY, NULL, NULL);
SPEC(s_wprofile_delete, "wireless_profile_delete", ARGS_NONE, "profileName", NULL);

#define R(m, p, spec, chn)                                                                              \
  {.methods = (m), .pattern = "/api/v1/amt/" p, .handler = amt_route, .chain = (chn),                  \
   .flags = BR_RF_AMT | ((m) & BR_M_WRITE ? BR_RF_WRITE : 0), .data = &(spec)}
static const struct br_route routes[] = {
    R(BR_M_GET, "log/audit/:guid", s_audit, &audit_chain),
    R(BR_M_GET, "log/event/:guid", s_event, NULL),
    R(BR_M_GET, "generalSettings/:guid", s_general, NULL),
    R(BR_M_GET, "hardwareInfo/:guid", s_hw, NULL),
    R(BR_M_POST, "power/action/:guid", s_power_action, &power_chain),
    R(BR_M_POST, "power/bootOptions/:guid", s_boot, &boot_chain),
    R(BR_M_GET, "power/capabilities/:guid", s_caps, NULL),
    R(BR_M_GET, "power/state/:guid", s_state, NULL),
    R(BR_M_GET, "power/bootSources/:guid", s_boot_sources, NULL),
    R(BR_M_GET, "features/:guid", s_features, NULL),
    R(BR_M_POST, "features/:guid", s_set_features, &features_chain),
    R(BR_M_GET, "boot/capabilities/:guid", s_boot_caps, NULL),
    R(BR_M_POST, "boot/rpe/:guid", s_set_rpe, NULL),
    R(BR_M_POST, "rpe/:guid", s_send_rpe, NULL),
    R(BR_M_GET, "boot/remoteErase/:guid", s_boot_caps, NULL),
    R(BR_M_POST, "boot/remoteErase/:guid", s_send_rpe, NULL),
    R(BR_M_GET, "version/:guid", s_version, NULL),
    R(BR_M_DELETE, "deactivate/:guid", s_deactivate, NULL),
    R(BR_M_GET, "userConsentCode/cancel/:guid", s_consent_cancel, NULL),
    R(BR_M_GET, "userConsentCode/:guid", s_consent_request, NULL),
    R(BR_M_POST, "userConsentCode/:guid", s_consent_send, &consent_chain),
    R(BR_M_GET, "alarmOccurrences/:guid", s_alarms, NULL),
    R(BR_M_POST, "alarmOccurrences/:guid", s_alarm_add, NULL),
    R(BR_M_DELETE, "alarmOccurrences/:guid", s_alarm_delete, NULL),
    R(BR_M_GET, "certificates/:guid", s_certs, NULL),
    R(BR_M_POST, "certificates/:guid", s_cert_add, &cert_add_chain),
    R(BR_M_DELETE, "certificates/:guid/:instanceId", s_cert_delete, &cert_delete_chain),
    R(BR_M_GET, "kvm/displays/:guid", s_kvm, NULL),
    R(BR_M_PUT, "kvm/displays/:guid", s_kvm_set, &kvm_chain),
    R(BR_M_POST, "network/linkPreference/:guid", s_link, &link_chain),
    R(BR_M_GET, "networkSettings/:guid", s_net, NULL),
    R(BR_M_GET, "networkSettings/wired/:guid", s_wired, NULL),
    R(BR_M_PATCH, "networkSettings/wired/:guid", s_wired_set, &wired_chain),
    R(BR_M_GET, "networkSettings/wireless/state/:guid", s_wstate, NULL),
    R(BR_M_POST, "networkSettings/wireless/state/:guid", s_wstate_set, &wireless_state_chain),
    R(BR_M_GET, "networkSettings/wireless/profileSync/:guid", s_wsync, NULL),
    R(BR_M_POST, "networkSettings/wireless/profileSync/:guid", s_wsync_set, &profile_sync_chain),
    R(BR_M_GET, "networkSettings/wireless/profile/:guid", s_wprofiles, NULL),
    R(BR_M_POST, "networkSettings/wireless/profile/:guid", s_wprofile_add, &wireless_profile_chain),
    R(BR_M_PATCH, "networkSettings/wireless/profile/:guid", s_wprofile_update, &wireless_profile_chain),
    R(BR_M_DELETE, "networkSettings/wireless/profile/:guid/:profileName", s_wprofile_delete, NULL),
};

const struct br_route_table br_routes_amt = {routes, sizeof routes / sizeof routes[0]};
