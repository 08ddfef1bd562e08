/*
 * Every failure the issue lists, against the running agent with real
 * PostgreSQL and Mosquitto (RPC client and AMT played by the STAND-IN of
 * tests/harness/rps_standin.c): each produces DMT's text for the RPC client,
 * a failure event in dmt.events, and leaves no partial record (no row, no
 * devices/<guid> secret, or the earlier record untouched). The one exception
 * is the record rule's last clause: a client that disconnects after the
 * device confirmed its new credentials leaves a complete, consistent record.
 *
 *   unknown profile, profile of another tenant, missing password
 *   expired provisioning certificate, certificate not matching the DNS suffix
 *   DNS suffix without a domain, root hash not trusted by the device
 *   device in admin mode with a CCM profile, wrong AMT password (stored and at AMT)
 *   RPC disconnect before activation, after activation (record kept, consistent)
 *   WS-Man fault, timeout (no answer; Setup timeout checked on AMT), bad digest realm
 *   AddNextCertInChain / AdminSetup refused by the firmware
 *   CIRA step refused: the job succeeds with CIRAConnection failed (DMT's semantics)
 *   protocol version, binary frame, message over 100 KiB, TLS-enforced device
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/digest.h"
#include "harness.h"
#include "rps_fixture.h"
#include "rps_standin.h"

#define RPS_BIG (110 * 1024) /* over DMT's 100 KiB */

static struct rps_world W;
static struct standin *S;
static char TENANT[40];
static struct rps_pki PKI, EXPIRED, OTHER_CN;

static int setup(void **state) {
  if (rps_world_init(&W, "rps_fail") != 0) return -1;
  snprintf(TENANT, sizeof TENANT, "tenant-f%d", (int)getpid());
  char pem[4096], b64[4096];
  if (rps_make_root(pem, sizeof pem, b64, sizeof b64) != 0 || rps_put_mpscerts(&W, pem) != 0) return -1;
  if (rps_add_cira(&W, TENANT, "cira1", "127.0.0.1", 4433, "ciraUser1", "Shared@Mps1", b64) != 0) return -1;
  if (rps_add_profile(&W, TENANT, "ccm1", "ccmactivate", "Ccm@Passw0rd1", NULL, "cira1", NULL) != 0) return -1;
  if (rps_add_profile(&W, TENANT, "ccmplain", "ccmactivate", "Ccm@Passw0rd1", NULL, NULL, NULL) != 0) return -1;
  if (rps_add_profile(&W, TENANT, "acm1", "acmactivate", "Acm@Passw0rd1", "Mebx@Passw0rd1", NULL, NULL) != 0) return -1;
  if (rps_make_pki(&PKI, "amt.good.test", 365, "pw") || rps_make_pki(&EXPIRED, "amt.expired.test", -1, "pw") ||
      rps_make_pki(&OTHER_CN, "amt.elsewhere.example", 365, "pw"))
    return -1;
  if (rps_add_domain(&W, TENANT, "good", "good.test", PKI.pfx, PKI.pfx_len, "pw") ||
      rps_add_domain(&W, TENANT, "expired", "expired.test", EXPIRED.pfx, EXPIRED.pfx_len, "pw") ||
      rps_add_domain(&W, TENANT, "mismatch", "mismatch.test", OTHER_CN.pfx, OTHER_CN.pfx_len, "pw"))
    return -1;
  W.env[0] = "DMT_RPS_WSMAN_TIMEOUT_MS=400";
  W.env[1] = "DMT_RPS_WSMAN_ATTEMPTS=2";
  if (rps_world_start(&W) != 0) return -1;
  S = standin_new();
  return S ? 0 : -1;
}

static int teardown(void **state) {
  standin_free(S);
  int st = rps_world_stop(&W);
  rps_pki_free(&PKI);
  rps_pki_free(&EXPIRED);
  rps_pki_free(&OTHER_CN);
  return st == 0 ? 0 : -1;
}

static unsigned seq;

static const char *guid(void) {
  static char g[37];
  snprintf(g, sizeof g, "f0f0f0f0-0000-4000-8000-%012u", ++seq);
  return g;
}

static const struct sresult *run(struct sdev_spec *spec, const char *line, const char *tenant, const char *password) {
  struct sdev *d = standin_device(S, spec);
  assert_int_equal(standin_run(S, d, W.url, line, tenant ? tenant : TENANT, password), 0);
  assert_true(standin_wait(S, &d, 1, 30000));
  return standin_result(d);
}

static void no_record(const char *g) {
  assert_int_equal(rps_device_rows(&W, g), 0);
  assert_false(rps_device_secret(&W, TENANT, g, NULL));
  assert_false(rps_device_secret(&W, "other-tenant", g, NULL));
}

static void failure_event(const char *g, const char *kind) {
  long n = 0;
  for (int i = 0; i < 200 && n == 0; i++, usleep(25000)) n = rps_event_count(&W, g, kind, "failure");
  assert_int_equal(n, 1);
  assert_int_equal(rps_event_count(&W, g, kind, "success"), 0);
}

/* A plain-text refusal (DMT's Validator): error/failed with exactly this text. */
static void plain(const struct sresult *r, const char *text) {
  assert_string_equal(r->method, "error");
  assert_string_equal(r->status, "failed");
  assert_string_equal(r->message, text);
}

/* A failure of the activation machine: the status JSON with Status = text. */
static void machine(const struct sresult *r, const char *text) {
  assert_string_equal(r->method, "error");
  assert_string_equal(r->status, "failed");
  json_t *j = json_loads(r->message, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "Status")), text);
  json_decref(j);
}

static char expect[512];
#define TEXT(...) (snprintf(expect, sizeof expect, __VA_ARGS__), expect)

static void test_profiles_and_password(void **state) {
  struct sdev_spec s = {.guid = guid(), .fqdn = "corp.example"};
  const struct sresult *r = run(&s, "activate --profile nope", NULL, NULL);
  plain(r, TEXT("Device %s activation failed. nope does not match list of available AMT profiles.", s.guid));
  assert_int_equal(r->wsman_requests, 0);
  no_record(s.guid);
  failure_event(s.guid, "activation");
  /* a profile of another tenant is unknown here */
  s.guid = guid();
  r = run(&s, "activate --profile ccm1", "other-tenant", NULL);
  plain(r, TEXT("Device %s activation failed. ccm1 does not match list of available AMT profiles.", s.guid));
  no_record(s.guid);
  /* names compare case-insensitively, as DMT's citext */
  s.guid = guid();
  r = run(&s, "activate --profile CCMPLAIN", NULL, NULL);
  assert_string_equal(r->method, "success");
  /* no password in the payload */
  s.guid = guid();
  r = run(&s, "activate --profile ccm1 --password", NULL, NULL);
  assert_string_equal(r->method, "success"); /* "--password" alone is "" (falsy): the payload's LSA password stands */
}

static void test_acm_certificates(void **state) {
  char *good[] = {PKI.root_sha256}, *expired[] = {EXPIRED.root_sha256}, *other[] = {OTHER_CN.root_sha256};
  struct sdev_spec s = {.guid = guid(), .fqdn = "expired.test", .trusted_hashes = expired, .ntrusted = 1};
  const struct sresult *r = run(&s, "activate --profile acm1", NULL, NULL);
  machine(r, TEXT("Device %s activation failed. The provisioning certificate of domain expired is expired.", s.guid));
  assert_int_equal(r->wsman_requests, 0);
  no_record(s.guid);
  failure_event(s.guid, "activation");

  s = (struct sdev_spec){.guid = guid(), .fqdn = "mismatch.test", .trusted_hashes = other, .ntrusted = 1};
  r = run(&s, "activate --profile acm1", NULL, NULL);
  machine(r, TEXT("Device %s activation failed. The provisioning certificate of domain mismatch "
                  "(amt.elsewhere.example) does not match the device's DNS suffix mismatch.test.",
                  s.guid));
  no_record(s.guid);

  s = (struct sdev_spec){.guid = guid(), .fqdn = "nowhere.example", .trusted_hashes = good, .ntrusted = 1};
  r = run(&s, "activate --profile acm1", NULL, NULL);
  plain(r, TEXT("Device %s activation failed. Specified AMT domain suffix: nowhere.example does not match list of "
                "available AMT domain suffixes.",
                s.guid));
  no_record(s.guid);
  failure_event(s.guid, "activation");

  char *untrusted[] = {"82f2ed575db4abe462499cf550dbff9584980d70a0272894639c3653b9ad932c"};
  s = (struct sdev_spec){.guid = guid(), .fqdn = "x.good.test", .trusted_hashes = untrusted, .ntrusted = 1};
  r = run(&s, "activate --profile acm1", NULL, NULL);
  machine(r, "Invalid domain certificate, hash does not exists in list of trusted root certificates on AMT");
  assert_int_equal(r->wsman_requests, 0);
  no_record(s.guid);
  failure_event(s.guid, "activation");

  s = (struct sdev_spec){.guid = guid(), .fqdn = "good.test", .no_cert_hashes = true};
  r = run(&s, "activate --profile acm1", NULL, NULL);
  plain(r, TEXT("Device %s activation failed. Missing certificate hashes from the device.", s.guid));
  no_record(s.guid);

  /* the firmware refuses the chain, or the AdminSetup */
  s = (struct sdev_spec){.guid = guid(), .fqdn = "good.test", .trusted_hashes = good, .ntrusted = 1,
                         .fail_method = "AddNextCertInChain", .fail_rv = 4};
  r = run(&s, "activate --profile acm1", NULL, NULL);
  machine(r, TEXT("Device %s activation failed. Error while adding the certificates to AMT.", s.guid));
  no_record(s.guid);
  failure_event(s.guid, "activation");
  s = (struct sdev_spec){.guid = guid(), .fqdn = "good.test", .trusted_hashes = good, .ntrusted = 1,
                         .fail_method = "AdminSetup", .fail_rv = 5};
  r = run(&s, "activate --profile acm1", NULL, NULL);
  machine(r, "Failed to activate in admin control mode.");
  assert_int_equal(r->mode, 0);
  no_record(s.guid);
  failure_event(s.guid, "activation");
}

static void test_activated_devices(void **state) {
  /* admin mode with a CCM profile: refused, the existing record untouched */
  struct sdev_spec s = {.guid = guid(), .mode = 2, .fqdn = "corp.example", .admin_password = "Acm@Old1pw"};
  assert_int_equal(rps_add_record(&W, TENANT, s.guid, "Acm@Old1pw", "ciraUser1", "Mps@Old1pw"), 0);
  const struct sresult *r = run(&s, "activate --profile ccm1", NULL, "Acm@Old1pw");
  plain(r, TEXT("Device %s already enabled in admin control mode.", s.guid));
  assert_int_equal(r->wsman_requests, 0);
  json_t *sec = NULL;
  assert_true(rps_device_secret(&W, TENANT, s.guid, &sec));
  assert_string_equal(json_string_value(json_object_get(sec, "AMT_PASSWORD")), "Acm@Old1pw");
  assert_string_equal(json_string_value(json_object_get(sec, "MPS_PASSWORD")), "Mps@Old1pw");
  json_decref(sec);
  char *host = rps_query_text(&W, "SELECT hostname FROM dmt.devices WHERE guid = $1::uuid", s.guid);
  assert_string_equal(host, "seeded");
  free(host);
  failure_event(s.guid, "activation");

  /* a wrong AMT password against the stored one */
  s = (struct sdev_spec){.guid = guid(), .mode = 1, .fqdn = "corp.example", .admin_password = "Ccm@Old1pw"};
  assert_int_equal(rps_add_record(&W, TENANT, s.guid, "Ccm@Old1pw", NULL, NULL), 0);
  r = run(&s, "activate --profile ccm1", NULL, "Not@The1pw");
  plain(r, TEXT("AMT password DOES NOT match stored version for Device %s", s.guid));
  assert_true(rps_device_secret(&W, TENANT, s.guid, &sec));
  assert_string_equal(json_string_value(json_object_get(sec, "AMT_PASSWORD")), "Ccm@Old1pw");
  json_decref(sec);

  /* nothing stored, and AMT refuses the password itself: three 401s */
  s = (struct sdev_spec){.guid = guid(), .mode = 1, .fqdn = "corp.example", .admin_password = "Real@Passw0rd1"};
  r = run(&s, "activate --profile ccm1", NULL, "Wrong@Passw0rd1");
  machine(r, "Unable to authenticate with AMT");
  assert_int_equal(r->unauthorized, 3);
  no_record(s.guid);
  failure_event(s.guid, "activation");

  /* a record in another tenant: the activated device is refused (DMT's tenant check) */
  s = (struct sdev_spec){.guid = guid(), .mode = 1, .fqdn = "corp.example", .admin_password = "Ccm@Old1pw"};
  assert_int_equal(rps_add_record(&W, "other-tenant", s.guid, "Ccm@Old1pw", NULL, NULL), 0);
  r = run(&s, "activate --profile ccm1", NULL, "Ccm@Old1pw");
  machine(r, "Device belongs to another tenant. Please unprovision and re-activate device.");
  assert_true(rps_device_secret(&W, "other-tenant", s.guid, NULL));
  assert_false(rps_device_secret(&W, TENANT, s.guid, NULL));
}

static void test_disconnect(void **state) {
  /* the client goes away while Setup is in flight: AMT never activated, nothing written */
  struct sdev_spec s = {.guid = guid(), .fqdn = "corp.example", .drop_call = "Setup"};
  const struct sresult *r = run(&s, "activate --profile ccm1", NULL, NULL);
  assert_string_equal(r->method, "");
  no_record(s.guid);
  failure_event(s.guid, "activation");
  char *data = rps_query_text(&W, "SELECT (data->>'client_disconnected') || '|' || (data->>'step') FROM dmt.events "
                                  "WHERE guid = $1::uuid",
                              s.guid);
  assert_string_equal(data, "true|ccm.SETUP");
  free(data);
  /* later, during the MEBx step: the device holds the new password, so the record is complete and consistent */
  char *good[] = {PKI.root_sha256};
  s = (struct sdev_spec){.guid = guid(), .fqdn = "good.test", .trusted_hashes = good, .ntrusted = 1,
                         .drop_call = "SetMEBxPassword"};
  r = run(&s, "activate --profile acm1", NULL, NULL);
  assert_int_equal(r->mode, 2);
  failure_event(s.guid, "activation");
  json_t *sec = NULL;
  for (int i = 0; i < 100 && !rps_device_secret(&W, TENANT, s.guid, &sec); i++) usleep(20000);
  assert_non_null(sec);
  char ha1[DMT_DIGEST_HEX];
  dmt_digest_ha1("admin", r->realm, json_string_value(json_object_get(sec, "AMT_PASSWORD")), ha1);
  assert_string_equal(ha1, r->admin_ha1);
  json_decref(sec);
  assert_int_equal(rps_device_rows(&W, s.guid), 1);
}

static void test_wsman_failures(void **state) {
  /* a SOAP fault on Setup */
  struct sdev_spec s = {.guid = guid(), .fqdn = "corp.example", .fault_call = "Setup"};
  const struct sresult *r = run(&s, "activate --profile ccm1", NULL, NULL);
  machine(r, "Failed to activate in client control mode.");
  no_record(s.guid);
  failure_event(s.guid, "activation");
  /* no answer at all */
  s = (struct sdev_spec){.guid = guid(), .fqdn = "corp.example", .stall_call = "Get AMT_GeneralSettings"};
  r = run(&s, "activate --profile ccm1", NULL, NULL);
  machine(r, "Timed out waiting for the device");
  assert_int_equal(r->wsman_requests, 2); /* DMT_RPS_WSMAN_ATTEMPTS=2 */
  no_record(s.guid);
  failure_event(s.guid, "activation");
  /* Setup unanswered: the mode is checked on AMT before giving up (it did not activate) */
  s = (struct sdev_spec){.guid = guid(), .fqdn = "corp.example", .stall_call = "Setup"};
  r = run(&s, "activate --profile ccm1", NULL, NULL);
  machine(r, "Failed to activate in client control mode.");
  no_record(s.guid);
  /* a realm that is not AMT's */
  s = (struct sdev_spec){.guid = guid(), .fqdn = "corp.example", .realm = "Gist:A3829B3827DE4D33D4449B366831FD01"};
  r = run(&s, "activate --profile ccm1", NULL, NULL);
  machine(r, "Not a valid digest realm.");
  no_record(s.guid);
  failure_event(s.guid, "activation");
  /* a refused CIRA step does not fail the job (DMT): reported in CIRAConnection, record complete */
  s = (struct sdev_spec){.guid = guid(), .fqdn = "corp.example", .fail_method = "AddMpServer", .fail_rv = 1};
  r = run(&s, "activate --profile ccm1", NULL, NULL);
  assert_string_equal(r->method, "success");
  json_t *j = json_loads(r->message, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "CIRAConnection")), "Failed to add mps");
  assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(j, "Components"),
                                                                         "CIRAConnection"),
                                                         "Result")),
                      "Failure");
  json_decref(j);
  json_t *sec = NULL;
  assert_true(rps_device_secret(&W, TENANT, s.guid, &sec));
  assert_string_equal(json_string_value(json_object_get(sec, "MPS_PASSWORD")), "Shared@Mps1"); /* the config's */
  json_decref(sec);
}

static void test_protocol_refusals(void **state) {
  struct sdev_spec s = {.guid = guid(), .fqdn = "corp.example",
                        .raw_first = "{\"method\":\"activate --profile ccm1\",\"protocolVersion\":\"5.0.0\","
                                     "\"payload\":\"\"}"};
  const struct sresult *r = run(&s, "", NULL, NULL);
  plain(r, "protocol version NOT supported: 5.0.0");
  s = (struct sdev_spec){.guid = guid(), .raw_first = "{\"method\":\"heartbeat_response\",\"payload\":\"\"}"};
  r = run(&s, "", NULL, NULL);
  plain(r, "Device undefined Not a supported method received from AMT device");
  s = (struct sdev_spec){.guid = guid(), .raw_first = "not json"};
  r = run(&s, "", NULL, NULL);
  assert_string_equal(r->method, "error");
  /* a binary frame and a text message over 100 KiB close the socket without a reply, as DMT */
  s = (struct sdev_spec){.guid = guid(), .fqdn = "corp.example", .binary_first = true};
  r = run(&s, "activate --profile ccm1", NULL, NULL);
  assert_true(r->closed_by_server);
  assert_string_equal(r->method, "");
  char *big = malloc(RPS_BIG + 1);
  memset(big, ' ', RPS_BIG);
  memcpy(big, "{\"method\":\"activate\"", 20);
  big[RPS_BIG - 1] = '}';
  big[RPS_BIG] = '\0';
  s = (struct sdev_spec){.guid = guid(), .raw_first = big};
  r = run(&s, "", NULL, NULL);
  free(big);
  assert_true(r->closed_by_server);
  assert_string_equal(r->method, "");
  /* AMT 19+ TLS-enforced devices need the TLS tunnel, which this server does not offer */
  s = (struct sdev_spec){.guid = guid(), .fqdn = "corp.example", .tls_enforced = true};
  r = run(&s, "activate --profile ccm1", NULL, NULL);
  assert_string_equal(r->method, "error");
  assert_non_null(strstr(r->message, "TLS tunnel mode"));
  no_record(s.guid);
  /* a tenant id that cannot be a topic level or a secret-store key */
  s = (struct sdev_spec){.guid = guid(), .fqdn = "corp.example"};
  r = run(&s, "activate --profile ccm1", "bad/tenant+#", NULL);
  plain(r, TEXT("Device %s: invalid tenantId", s.guid));
  no_record(s.guid);
  /* one job per device: a second client for a device being provisioned is refused, the first goes on */
  struct sdev_spec slow = {.guid = guid(), .fqdn = "corp.example", .stall_call = "Setup"};
  struct sdev_spec twin = {.guid = slow.guid, .fqdn = "corp.example"};
  struct sdev *a = standin_device(S, &slow), *b = standin_device(S, &twin);
  assert_int_equal(standin_run(S, a, W.url, "activate --profile ccm1", TENANT, NULL), 0);
  usleep(200000); /* a is waiting for Setup */
  assert_int_equal(standin_run(S, b, W.url, "activate --profile ccm1", TENANT, NULL), 0);
  assert_true(standin_wait(S, &b, 1, 30000));
  plain(standin_result(b), TEXT("Device %s is already being provisioned by another connection", slow.guid));
  assert_true(standin_wait(S, &a, 1, 30000));
  machine(standin_result(a), "Failed to activate in client control mode.");
  no_record(slow.guid);
  /* the server is still fine */
  s = (struct sdev_spec){.guid = guid(), .fqdn = "corp.example"};
  r = run(&s, "activate --profile ccmplain", NULL, NULL);
  assert_string_equal(r->method, "success");
}

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_profiles_and_password), cmocka_unit_test(test_acm_certificates),
      cmocka_unit_test(test_activated_devices),     cmocka_unit_test(test_disconnect),
      cmocka_unit_test(test_wsman_failures),        cmocka_unit_test(test_protocol_refusals),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
