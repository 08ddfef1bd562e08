/*
 * The simulated device's WS-Man responder, seen from the wire: AMT's digest
 * dance (401 with realm Digest:<hex>, qop="auth", a nonce and Connection:
 * close; the nonce stays good; wrong passwords and foreign nonces refused;
 * $$OsAdmin only on the host side), RelatesTo = MessageID, chunked 200s,
 * the fault for unknown classes, Enumerate/Pull paging and context expiry,
 * Put validation and echo, Delete of an absent policy rule (400), power
 * changes taking effect, and the CIRA configuration calls that make a device
 * want to call home.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmt/digest.h"
#include "sim_fixture.h"

static struct sim *S;

static int setup(void **state) {
  S = fixture_sim(2, "acm", NULL);
  return 0;
}

static int teardown(void **state) {
  fixture_sim_free(S);
  return 0;
}

static void test_first_request_gets_amt_401(void **state) {
  struct sim_device *d = &S->devices[0];
  char *env = fixture_get("AMT_GeneralSettings");
  struct fixture_response r;
  fixture_http(d, SIM_TRANSPORT_CIRA, NULL, env, &r);
  assert_int_equal(r.http.status, 401);
  assert_true(r.close_after);
  assert_string_equal(dmt_http_header(&r.http, "Connection"), "close");
  const char *www = dmt_http_header(&r.http, "WWW-Authenticate");
  assert_non_null(www);
  char realm[40], expect[80];
  sim_device_realm(d, realm);
  snprintf(expect, sizeof expect, "Digest realm=\"%s\"", realm);
  assert_int_equal(strncmp(www, expect, strlen(expect)), 0);
  assert_non_null(strstr(www, "qop=\"auth\""));
  assert_non_null(strstr(www, "nonce=\""));
  assert_true(dmt_digest_realm_valid(realm));
  assert_non_null(strstr(dmt_http_header(&r.http, "Server"), "Intel(R) Active Management Technology 16.1.27"));
  assert_non_null(strstr((const char *)dmt_buf_ptr(&r.http.body), "</html>"));
  struct dmt_digest_challenge c;
  assert_int_equal(dmt_digest_parse_challenge(www, &c), 0);
  fixture_response_free(&r);

  /* the same nonce is handed out again: firmware keeps it */
  fixture_http(d, SIM_TRANSPORT_CIRA, NULL, env, &r);
  assert_non_null(strstr(dmt_http_header(&r.http, "WWW-Authenticate"), c.nonce));
  fixture_response_free(&r);

  /* a correct digest answer is accepted on any later channel, with any nc */
  char auth[1024];
  dmt_digest_authorization("admin", FIXTURE_AMT_PASSWORD, &c, "POST", "/wsman", 7, "abc", auth, sizeof auth);
  fixture_http(d, SIM_TRANSPORT_CIRA, auth, env, &r);
  assert_int_equal(r.http.status, 200);
  assert_string_equal(dmt_http_header(&r.http, "Transfer-Encoding"), "chunked");
  assert_string_equal(dmt_http_header(&r.http, "Content-Type"), "application/soap+xml; charset=UTF-8");
  fixture_response_free(&r);

  /* wrong password, foreign nonce, other realm: 401 */
  dmt_digest_authorization("admin", "Wr0ng@Passw0rd", &c, "POST", "/wsman", 8, "abc", auth, sizeof auth);
  fixture_http(d, SIM_TRANSPORT_CIRA, auth, env, &r);
  assert_int_equal(r.http.status, 401);
  fixture_response_free(&r);
  struct dmt_digest_challenge forged = c;
  snprintf(forged.nonce, sizeof forged.nonce, "%s", "00000000000000000000000000000000");
  dmt_digest_authorization("admin", FIXTURE_AMT_PASSWORD, &forged, "POST", "/wsman", 9, "abc", auth, sizeof auth);
  fixture_http(d, SIM_TRANSPORT_CIRA, auth, env, &r);
  assert_int_equal(r.http.status, 401);
  fixture_response_free(&r);
  struct dmt_digest_challenge other_realm = c;
  sim_device_realm(&S->devices[1], other_realm.realm);
  dmt_digest_authorization("admin", FIXTURE_AMT_PASSWORD, &other_realm, "POST", "/wsman", 10, "abc", auth, sizeof auth);
  fixture_http(d, SIM_TRANSPORT_CIRA, auth, env, &r);
  assert_int_equal(r.http.status, 401);
  fixture_response_free(&r);
  free(env);
}

static void test_os_admin_only_on_the_host_side(void **state) {
  struct sim_device *d = &S->devices[1];
  char *env = fixture_get("AMT_GeneralSettings");
  struct dmt_wsman_response resp;
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_LOCAL, "$$OsAdmin", d->lsa_password, env, &resp), 200);
  dmt_wsman_response_free(&resp);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "$$OsAdmin", d->lsa_password, env, &resp), 401);
  dmt_wsman_response_free(&resp);
  free(env);
}

static void test_get_general_settings(void **state) {
  struct sim_device *d = &S->devices[0];
  char *env = fixture_get("AMT_GeneralSettings");
  struct dmt_wsman_response resp;
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  assert_string_equal(resp.relates_to, "11");
  assert_int_equal(strncmp(resp.message_id, "uuid:00000000-8086-8086-8086-", 29), 0);
  assert_string_equal(resp.action, "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse");
  json_t *j = fixture_json(&resp);
  char realm[40];
  sim_device_realm(d, realm);
  assert_string_equal(json_string_value(fixture_path(j, "Body.AMT_GeneralSettings.DigestRealm")), realm);
  assert_int_equal(json_integer_value(fixture_path(j, "Body.AMT_GeneralSettings.AMTNetworkEnabled")), 1);
  assert_true(json_is_true(fixture_path(j, "Body.AMT_GeneralSettings.SharedFQDN")));
  assert_true(json_is_true(fixture_path(j, "Body.AMT_GeneralSettings.RmcpPingResponseEnabled")));
  json_decref(j);
  dmt_wsman_response_free(&resp);
  free(env);
}

static void test_unknown_class_fault(void **state) {
  struct sim_device *d = &S->devices[0];
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  dmt_wsman_get(&b, "CIM_FlyingSaucer", "21", NULL, 0);
  dmt_buf_append_u8(&b, 0);
  struct dmt_wsman_response resp;
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, (char *)b.data, &resp), 400);
  assert_true(resp.is_fault);
  assert_string_equal(resp.fault_code, "a:Sender");
  assert_string_equal(resp.fault_subcode, "b:DestinationUnreachable");
  assert_string_equal(resp.relates_to, "21");
  dmt_wsman_response_free(&resp);
  dmt_buf_free(&b);
}

static void test_enumerate_pull_paging(void **state) {
  struct sim_device *d = &S->devices[0];
  char *env = fixture_enumerate("CIM_SoftwareIdentity");
  struct dmt_wsman_response resp;
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  char ctx[128];
  snprintf(ctx, sizeof ctx, "%s", resp.enumeration_context);
  assert_int_equal(strlen(ctx), 36);
  dmt_wsman_response_free(&resp);
  free(env);

  env = fixture_pull("CIM_SoftwareIdentity", ctx, 4);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  assert_false(resp.end_of_sequence);
  json_t *j = fixture_json(&resp);
  assert_int_equal(json_array_size(fixture_path(j, "Body.PullResponse.Items.CIM_SoftwareIdentity")), 4);
  json_decref(j);
  dmt_wsman_response_free(&resp);
  free(env);

  env = fixture_pull("CIM_SoftwareIdentity", ctx, 999);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  assert_true(resp.end_of_sequence);
  j = fixture_json(&resp);
  json_t *items = fixture_path(j, "Body.PullResponse.Items.CIM_SoftwareIdentity");
  assert_int_equal(json_array_size(items), 7); /* 11 in all */
  assert_string_equal(json_string_value(json_object_get(json_array_get(items, 6), "InstanceID")),
                      "AMT FW Core Version");
  json_decref(j);
  dmt_wsman_response_free(&resp);

  /* the context is spent once EndOfSequence went out */
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 400);
  assert_string_equal(resp.fault_subcode, "wsen:InvalidEnumerationContext");
  dmt_wsman_response_free(&resp);
  free(env);

  /* an empty class enumerates to an empty Items and EndOfSequence */
  env = fixture_enumerate("IPS_HTTPProxyAccessPoint");
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  snprintf(ctx, sizeof ctx, "%s", resp.enumeration_context);
  dmt_wsman_response_free(&resp);
  free(env);
  env = fixture_pull("IPS_HTTPProxyAccessPoint", ctx, 999);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  assert_true(resp.end_of_sequence);
  dmt_wsman_response_free(&resp);
  free(env);
}

static void test_put_validates_and_echoes(void **state) {
  struct sim_device *d = &S->devices[0];
  struct dmt_wsman_param bad[] = {{"InstanceID", "Intel(r) AMT Ethernet Port Settings 0", false},
                                  {"DHCPEnabled", "false", false}, {"IpSyncEnabled", "false", false}};
  char *env = fixture_put("AMT_EthernetPortSettings", bad, 3);
  struct dmt_wsman_response resp;
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 400);
  assert_true(d->dhcp);
  dmt_wsman_response_free(&resp);
  free(env);
  struct dmt_wsman_param good[] = {{"InstanceID", "Intel(r) AMT Ethernet Port Settings 0", false},
                                   {"DHCPEnabled", "false", false}, {"IpSyncEnabled", "false", false},
                                   {"SharedStaticIp", "false", false}, {"IPAddress", "192.168.7.20", false},
                                   {"SubnetMask", "255.255.255.0", false}, {"DefaultGateway", "192.168.7.1", false}};
  env = fixture_put("AMT_EthernetPortSettings", good, 7);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  json_t *j = fixture_json(&resp);
  assert_false(json_is_true(fixture_path(j, "Body.AMT_EthernetPortSettings.DHCPEnabled")));
  assert_string_equal(json_string_value(fixture_path(j, "Body.AMT_EthernetPortSettings.IPAddress")), "192.168.7.20");
  json_decref(j);
  dmt_wsman_response_free(&resp);
  free(env);
  assert_false(d->dhcp);
}

static void test_power_through_wsman(void **state) {
  struct sim_device *d = &S->devices[1];
  struct dmt_wsman_param off[] = {{"PowerState", "8", false}};
  char *env = fixture_invoke("CIM_PowerManagementService", "RequestPowerStateChange", off, 1);
  struct dmt_wsman_response resp;
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  assert_int_equal(fixture_return_value(&resp, "RequestPowerStateChange"), 0);
  dmt_wsman_response_free(&resp);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  assert_int_equal(fixture_return_value(&resp, "RequestPowerStateChange"), AMT_RV_NOT_READY);
  dmt_wsman_response_free(&resp);
  free(env);
  env = fixture_get("CIM_AssociatedPowerManagementService");
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  json_t *j = fixture_json(&resp);
  assert_int_equal(json_integer_value(fixture_path(j, "Body.CIM_AssociatedPowerManagementService.PowerState")), 8);
  json_decref(j);
  dmt_wsman_response_free(&resp);
  free(env);
  amt_power_request(d, 2);
}

static void test_cira_configuration_calls(void **state) {
  struct sim_device *d = &S->devices[1];
  struct dmt_wsman_response resp;
  assert_false(sim_device_wants_cira(d));
  /* RPS's unconfiguration deletes the user-initiated rule first and expects a 400 when it is absent */
  char *env = fixture_delete("AMT_RemoteAccessPolicyRule", "PolicyRuleName", "User Initiated");
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 400);
  dmt_wsman_response_free(&resp);
  free(env);

  struct dmt_wsman_param mps[] = {{"AccessInfo", "mps.vprodemo.com", false}, {"InfoFormat", "201", false},
                                  {"Port", "4433", false},                   {"AuthMethod", "2", false},
                                  {"Username", "ciraUser1", false},          {"Password", "Mps@Passw0rd1", false}};
  env = fixture_invoke("AMT_RemoteAccessService", "AddMpServer", mps, 6);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  assert_int_equal(fixture_return_value(&resp, "AddMpServer"), 0);
  dmt_wsman_response_free(&resp);
  free(env);
  assert_false(sim_device_wants_cira(d)); /* no policy yet */

  struct dmt_wsman_param rule[] = {{"Trigger", "2", false}, {"TunnelLifeTime", "0", false},
                                   {"ExtendedData", "AAAAAAAAABk=", false}};
  env = fixture_invoke("AMT_RemoteAccessService", "AddRemoteAccessPolicyRule", rule, 3);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  assert_int_equal(fixture_return_value(&resp, "AddRemoteAccessPolicyRule"), 0);
  dmt_wsman_response_free(&resp);
  free(env);
  assert_true(sim_device_wants_cira(d));
  assert_int_equal(d->cira->periodic_interval_s, 25);
  assert_string_equal(d->cira->user, "ciraUser1");

  /* the MPS entry is visible as AMT_ManagementPresenceRemoteSAP */
  env = fixture_enumerate("AMT_ManagementPresenceRemoteSAP");
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  char ctx[128];
  snprintf(ctx, sizeof ctx, "%s", resp.enumeration_context);
  dmt_wsman_response_free(&resp);
  free(env);
  env = fixture_pull("AMT_ManagementPresenceRemoteSAP", ctx, 999);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  json_t *j = fixture_json(&resp);
  assert_string_equal(
      json_string_value(fixture_path(j, "Body.PullResponse.Items.AMT_ManagementPresenceRemoteSAP.Name")),
      "Intel(r) AMT:Management Presence Server 0");
  json_decref(j);
  dmt_wsman_response_free(&resp);
  free(env);

  /* inside the enterprise (environment detection names our domain) the tunnel is not wanted */
  struct dmt_wsman_param env_det[] = {{"DetectionStrings", "vprodemo.com", false}};
  env = fixture_put("AMT_EnvironmentDetectionSettingData", env_det, 1);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  dmt_wsman_response_free(&resp);
  free(env);
  assert_false(sim_device_wants_cira(d));
  struct dmt_wsman_param env_out[] = {{"DetectionStrings", "7c0bd3c5-0b4c-4dba-8e36-7b0fb1e5f8ba.com", false}};
  env = fixture_put("AMT_EnvironmentDetectionSettingData", env_out, 1);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  dmt_wsman_response_free(&resp);
  free(env);
  assert_true(sim_device_wants_cira(d));

  /* deleting the MPS takes the policies with it */
  env = fixture_delete("AMT_ManagementPresenceRemoteSAP", "Name", "Intel(r) AMT:Management Presence Server 0");
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  dmt_wsman_response_free(&resp);
  free(env);
  assert_false(sim_device_wants_cira(d));
}

static void test_unprovision(void **state) {
  struct sim_device *d = &S->devices[0];
  struct dmt_wsman_param p[] = {{"ProvisioningMode", "1", false}};
  char *env = fixture_invoke("AMT_SetupAndConfigurationService", "Unprovision", p, 1);
  struct dmt_wsman_response resp;
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 200);
  assert_int_equal(fixture_return_value(&resp, "Unprovision"), 0);
  dmt_wsman_response_free(&resp);
  dmt_workq_run(dmt_loop_workq(S->loop));
  assert_int_equal(d->mode, SIM_MODE_PRE);
  assert_string_equal(d->amt_ha1, "");
  /* the admin account is gone: the same credentials no longer work */
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", FIXTURE_AMT_PASSWORD, env, &resp), 401);
  dmt_wsman_response_free(&resp);
  free(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_request_gets_amt_401),
      cmocka_unit_test(test_os_admin_only_on_the_host_side),
      cmocka_unit_test(test_get_general_settings),
      cmocka_unit_test(test_unknown_class_fault),
      cmocka_unit_test(test_enumerate_pull_paging),
      cmocka_unit_test(test_put_validates_and_echoes),
      cmocka_unit_test(test_power_through_wsman),
      cmocka_unit_test(test_cira_configuration_calls),
      cmocka_unit_test(test_unprovision),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
