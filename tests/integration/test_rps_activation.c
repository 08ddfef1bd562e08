/*
 * The RPS agent end to end with real Mosquitto, PostgreSQL and sockets, its
 * RPC client and AMT played by the STAND-IN of tests/harness/rps_standin.c
 * (until dmt-sim's RPC mode is on main):
 *  - CCM activation with a CIRA profile: DMT's terminal message, the device
 *    activated with the profile's password, the record (row + secret) as the
 *    terminator needs it, CIRA configured through WS-Man with the record's
 *    MPS credentials and the terminator's root, time synchronised, the
 *    activation event on the tenant's topic and in dmt.events;
 *  - random per-device AMT and MPS passwords;
 *  - ACM activation with a provisioning certificate made here: the stand-in
 *    verifies the signature over ConfigurationNonce || McNonce like firmware;
 *    MEBx set; the CCM -> ACM upgrade;
 *  - re-activation of an activated device (password replaced, record updated);
 *  - local deactivation (wrong password refused, record kept; right password:
 *    device unprovisioned, record gone, event);
 *  - maintenance tasks (synctime, changepassword, synchostname, syncip,
 *    syncdeviceinfo).
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

static struct rps_world W;
static struct standin *S;
static struct dmt_test_mqtt *MQ;
static char TENANT[40], ROOT_PEM[4096], ROOT_B64[4096];
static struct rps_pki PKI;

static int setup(void **state) {
  if (rps_world_init(&W, "rps_act") != 0) return -1;
  snprintf(TENANT, sizeof TENANT, "tenant-%d", (int)getpid());
  if (rps_make_root(ROOT_PEM, sizeof ROOT_PEM, ROOT_B64, sizeof ROOT_B64) != 0) return -1;
  if (rps_put_mpscerts(&W, ROOT_PEM) != 0) return -1;
  if (rps_add_cira(&W, TENANT, "cira1", "127.0.0.1", 4433, "ciraUser1", NULL, "bm90LXRoZS1yb290") != 0) return -1;
  if (rps_add_profile(&W, TENANT, "ccm1", "ccmactivate", "Ccm@Passw0rd1", NULL, "cira1", "{\"lab\",\"row 2\"}") != 0)
    return -1;
  if (rps_add_profile(&W, TENANT, "ccmrandom", "ccmactivate", NULL, NULL, "cira1", NULL) != 0) return -1;
  if (rps_add_profile(&W, TENANT, "acm1", "acmactivate", "Acm@Passw0rd1", "Mebx@Passw0rd1", NULL, "{\"acm\"}") != 0)
    return -1;
  if (rps_make_pki(&PKI, "amt.vprodemo.test", 365, "P@ssw0rd") != 0) return -1;
  if (rps_add_domain(&W, TENANT, "vprodemo", "vprodemo.test", PKI.pfx, PKI.pfx_len, "P@ssw0rd") != 0) return -1;
  MQ = dmt_test_mqtt_open(dmt_test_mqtt_url(), "rps-activation-test");
  char filter[128];
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/+/events/#", TENANT);
  dmt_test_mqtt_subscribe(MQ, filter);
  if (rps_world_start(&W) != 0) return -1;
  S = standin_new();
  return S ? 0 : -1;
}

static int teardown(void **state) {
  standin_free(S);
  int st = rps_world_stop(&W); /* a clean exit: no leak, no sanitizer report */
  dmt_test_mqtt_close(MQ);
  rps_pki_free(&PKI);
  return st == 0 ? 0 : -1;
}

static struct sdev *run(const struct sdev_spec *spec, const char *line, const char *password) {
  struct sdev *d = standin_device(S, spec);
  assert_int_equal(standin_run(S, d, W.url, line, TENANT, password), 0);
  assert_true(standin_wait(S, &d, 1, 30000));
  return d;
}

static struct sdev *rerun(struct sdev *d, const char *line, const char *password) {
  assert_int_equal(standin_run(S, d, W.url, line, TENANT, password), 0);
  assert_true(standin_wait(S, &d, 1, 30000));
  return d;
}

static json_t *status_of(const struct sresult *r) {
  json_t *j = json_loads(r->message ? r->message : "", 0, NULL);
  if (!j) print_message("terminal message: %s %s \"%s\"\n", r->method, r->status, r->message ? r->message : "");
  assert_non_null(j);
  return j;
}

static const char *jstr(json_t *o, const char *path) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  json_t *cur = o;
  for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, ".")) cur = json_object_get(cur, tok);
  return json_string_value(cur);
}

static bool event_seen(void *guid) {
  char suffix[128];
  snprintf(suffix, sizeof suffix, "%s/events/activation", (const char *)guid);
  return dmt_test_mqtt_count_suffix(MQ, suffix) > 0;
}

static void test_ccm_with_cira(void **state) {
  struct sdev_spec spec = {.guid = "a1a1a1a1-0000-4000-8000-000000000001", .mode = 0, .fqdn = "corp.example",
                           .hostname = "host-ccm", .friendly_name = "Front desk"};
  struct sdev *d = run(&spec, "activate --profile ccm1", NULL);
  const struct sresult *r = standin_result(d);
  assert_string_equal(r->method, "success");
  assert_string_equal(r->status, "success");
  json_t *st = status_of(r);
  assert_string_equal(jstr(st, "Status"), "Client control mode.");
  assert_string_equal(jstr(st, "Network"), "Wired Network Configured");
  assert_string_equal(jstr(st, "CIRAConnection"), "Configured");
  assert_string_equal(jstr(st, "Components.Activation.Result"), "Success");
  assert_string_equal(jstr(st, "Components.Activation.Mode"), "CCM");
  assert_string_equal(jstr(st, "Components.Activation.Details"), "Client control mode");
  assert_string_equal(jstr(st, "Components.CIRAConnection.Result"), "Success");
  json_decref(st);
  /* the device: client control mode with the profile's password (HA1 of admin) */
  assert_int_equal(r->mode, 1);
  char ha1[DMT_DIGEST_HEX];
  dmt_digest_ha1("admin", r->realm, "Ccm@Passw0rd1", ha1);
  assert_string_equal(ha1, r->admin_ha1);
  assert_true(r->unauthorized >= 1); /* digest as AMT: the first request was challenged */
  assert_true(r->time_synced);
  assert_true(r->dhcp && r->ipsync && !r->shared_static);
  /* CIRA: terminator root from MPSCerts, the config's address and user, a per-device password, the three policies */
  assert_true(r->mps);
  assert_string_equal(r->mps_host, "127.0.0.1");
  assert_int_equal(r->mps_port, 4433);
  assert_string_equal(r->mps_user, "ciraUser1");
  assert_int_equal(strlen(r->mps_password), 16);
  assert_string_equal(r->mps_cn, "127.0.0.1");
  assert_int_equal(r->mps_format, 3);
  assert_string_equal(r->root_b64, ROOT_B64);
  assert_int_equal(r->policies, 7);
  assert_int_equal(r->periodic_interval, 25);
  assert_int_equal(r->mps_type_puts, 3);
  assert_int_equal(r->user_initiated_state, 32771);
  assert_true(r->env_detection_set);
  /* the record: one row in the tenant, the secret with the passwords the device holds */
  assert_int_equal(rps_device_rows(&W, spec.guid), 1);
  char *tenant = rps_query_text(&W, "SELECT tenant_id || '|' || mps_username || '|' || array_to_string(tags, ',') || "
                                    "'|' || friendly_name || '|' || hostname || '|' || (device_info->>'currentMode') "
                                    "FROM dmt.devices WHERE guid = $1::uuid",
                                spec.guid);
  char want[256];
  snprintf(want, sizeof want, "%s|ciraUser1|lab,row 2|Front desk|host-ccm|ccm", TENANT);
  assert_string_equal(tenant, want);
  free(tenant);
  json_t *sec = NULL;
  assert_true(rps_device_secret(&W, TENANT, spec.guid, &sec));
  assert_string_equal(json_string_value(json_object_get(sec, "AMT_PASSWORD")), "Ccm@Passw0rd1");
  assert_string_equal(json_string_value(json_object_get(sec, "MPS_PASSWORD")), r->mps_password);
  assert_null(json_object_get(sec, "MEBX_PASSWORD"));
  json_decref(sec);
  /* the event, on the tenant's topic and in dmt.events */
  assert_true(dmt_test_wait_until(event_seen, (void *)spec.guid, 10000));
  long n = 0;
  for (int i = 0; i < 100 && n == 0; i++, usleep(50000)) n = rps_event_count(&W, spec.guid, "activation", "success");
  assert_int_equal(n, 1);
  char *action = rps_query_text(&W, "SELECT action || '|' || message || '|' || (data->>'step') FROM dmt.events "
                                    "WHERE guid = $1::uuid AND kind = 'activation'",
                                spec.guid);
  assert_string_equal(action, "ccm_activate|Client control mode.|cira.PUT_ENVIRONMENT_DETECTION_SETTINGS");
  free(action);
  /* no secret ever reaches an event */
  char *data = rps_query_text(&W, "SELECT data::text FROM dmt.events WHERE guid = $1::uuid", spec.guid);
  assert_null(strstr(data, "Ccm@Passw0rd1"));
  assert_null(strstr(data, r->mps_password));
  free(data);
}

static void test_random_passwords(void **state) {
  struct sdev_spec spec = {.guid = "a1a1a1a1-0000-4000-8000-000000000002", .mode = 0, .fqdn = "corp.example"};
  struct sdev *d = run(&spec, "activate --profile ccmrandom", NULL);
  const struct sresult *r = standin_result(d);
  assert_string_equal(r->method, "success");
  json_t *sec = NULL;
  assert_true(rps_device_secret(&W, TENANT, spec.guid, &sec));
  char amt[64];
  snprintf(amt, sizeof amt, "%s", json_string_value(json_object_get(sec, "AMT_PASSWORD")));
  assert_int_equal(strlen(amt), 16);
  /* the device holds exactly the stored password */
  char ha1[DMT_DIGEST_HEX];
  dmt_digest_ha1("admin", r->realm, amt, ha1);
  assert_string_equal(ha1, r->admin_ha1);
  assert_string_equal(json_string_value(json_object_get(sec, "MPS_PASSWORD")), r->mps_password);
  json_decref(sec);
  /* a second device gets other passwords */
  spec.guid = "a1a1a1a1-0000-4000-8000-000000000003";
  struct sdev *d2 = run(&spec, "activate --profile ccmrandom", NULL);
  assert_string_equal(standin_result(d2)->method, "success");
  json_t *sec2 = NULL;
  assert_true(rps_device_secret(&W, TENANT, spec.guid, &sec2));
  assert_string_not_equal(json_string_value(json_object_get(sec2, "AMT_PASSWORD")), amt);
  assert_string_not_equal(standin_result(d2)->mps_password, r->mps_password);
  json_decref(sec2);
}

static void test_acm_and_deactivation(void **state) {
  char *hashes[] = {"0000000000000000000000000000000000000000", PKI.root_sha256};
  struct sdev_spec spec = {.guid = "a1a1a1a1-0000-4000-8000-000000000010", .mode = 0, .fqdn = "site1.vprodemo.test",
                           .trusted_hashes = hashes, .ntrusted = 2};
  struct sdev *d = run(&spec, "activate --profile acm1", NULL);
  const struct sresult *r = standin_result(d);
  json_t *st = status_of(r);
  assert_string_equal(r->method, "success");
  assert_string_equal(jstr(st, "Status"), "Activated to admin control mode.");
  assert_string_equal(jstr(st, "Components.Activation.Mode"), "ACM");
  assert_null(jstr(st, "CIRAConnection")); /* no CIRA in this profile */
  assert_string_equal(jstr(st, "Components.CIRAConnection.Result"), "NotApplicable");
  json_decref(st);
  assert_int_equal(r->mode, 2);
  assert_true(r->admin_signature_verified);
  assert_int_equal(r->cert_chain_len, 3);
  assert_true(r->mebx_set);
  assert_false(r->mps);
  json_t *sec = NULL;
  assert_true(rps_device_secret(&W, TENANT, spec.guid, &sec));
  assert_string_equal(json_string_value(json_object_get(sec, "AMT_PASSWORD")), "Acm@Passw0rd1");
  assert_string_equal(json_string_value(json_object_get(sec, "MEBX_PASSWORD")), "Mebx@Passw0rd1");
  assert_null(json_object_get(sec, "MPS_PASSWORD"));
  json_decref(sec);
  char *mode = rps_query_text(&W, "SELECT device_info->>'currentMode' FROM dmt.devices WHERE guid = $1::uuid", spec.guid);
  assert_string_equal(mode, "acm");
  free(mode);

  /* deactivation with a wrong password: refused before AMT is touched, record kept */
  struct sdev *dd = d;
  standin_run(S, dd, W.url, "deactivate --password Wrong@Passw0rd1", TENANT, NULL);
  assert_true(standin_wait(S, &dd, 1, 30000));
  r = standin_result(dd);
  assert_string_equal(r->method, "error");
  assert_string_equal(r->status, "failed");
  assert_string_equal(r->message, "AMT password DOES NOT match stored version for Device a1a1a1a1-0000-4000-8000-000000000010");
  assert_int_equal(r->wsman_requests, 0);
  assert_int_equal(rps_device_rows(&W, spec.guid), 1);
  /* the right one (rpc-go's payload password) */
  standin_run(S, dd, W.url, "deactivate --password Acm@Passw0rd1", TENANT, "Acm@Passw0rd1");
  assert_true(standin_wait(S, &dd, 1, 30000));
  r = standin_result(dd);
  assert_string_equal(r->method, "success");
  assert_string_equal(r->message, "{\"Status\":\"Deactivated\"}");
  assert_int_equal(r->mode, 0);
  assert_int_equal(rps_device_rows(&W, spec.guid), 0);
  assert_false(rps_device_secret(&W, TENANT, spec.guid, NULL));
  long n = 0;
  for (int i = 0; i < 100 && n == 0; i++, usleep(50000)) n = rps_event_count(&W, spec.guid, "deactivation", "success");
  assert_int_equal(n, 1);
}

static void test_upgrade_and_reconfigure(void **state) {
  /* a CCM device (admin password known and stored) meets the ACM profile: UpgradeClientToAdmin */
  char *hashes[] = {PKI.root_sha256};
  struct sdev_spec spec = {.guid = "a1a1a1a1-0000-4000-8000-000000000020", .mode = 1, .fqdn = "vprodemo.test",
                           .admin_password = "Old@Passw0rd1", .trusted_hashes = hashes, .ntrusted = 1};
  assert_int_equal(rps_add_record(&W, TENANT, spec.guid, "Old@Passw0rd1", NULL, NULL), 0);
  struct sdev *d = run(&spec, "activate --profile acm1", "Old@Passw0rd1");
  const struct sresult *r = standin_result(d);
  json_t *st = status_of(r);
  assert_string_equal(r->method, "success");
  assert_string_equal(jstr(st, "Status"), "Upgraded to admin control mode.");
  json_decref(st);
  assert_int_equal(r->mode, 2);
  assert_true(r->admin_signature_verified);
  json_t *sec = NULL;
  assert_true(rps_device_secret(&W, TENANT, spec.guid, &sec));
  assert_string_equal(json_string_value(json_object_get(sec, "AMT_PASSWORD")), "Acm@Passw0rd1");
  json_decref(sec);
  /* and again: an ACM device with the ACM profile is reconfigured (password given = the stored one) */
  rerun(d, "activate --profile acm1", "Acm@Passw0rd1");
  r = standin_result(d);
  st = status_of(r);
  assert_string_equal(r->method, "success");
  assert_string_equal(jstr(st, "Status"), "already enabled in admin mode.");
  json_decref(st);
  assert_int_equal(rps_device_rows(&W, spec.guid), 1);
}

static void test_maintenance(void **state) {
  struct sdev_spec spec = {.guid = "a1a1a1a1-0000-4000-8000-000000000030", .mode = 0, .fqdn = "corp.example",
                           .hostname = "before"};
  struct sdev *d = run(&spec, "activate --profile ccm1", NULL);
  assert_string_equal(standin_result(d)->method, "success");
  rerun(d, "maintenance -password Ccm@Passw0rd1 --synctime", "Ccm@Passw0rd1");
  assert_string_equal(standin_result(d)->method, "success");
  assert_string_equal(standin_result(d)->message, "{\"Status\":\"synctime completed succesfully\"}");
  rerun(d, "maintenance --synchostname", "Ccm@Passw0rd1");
  assert_string_equal(standin_result(d)->method, "success");
  assert_string_equal(standin_result(d)->hostname_set, "before");
  rerun(d, "maintenance --syncdeviceinfo", "Ccm@Passw0rd1");
  assert_string_equal(standin_result(d)->method, "success");
  rerun(d, "maintenance --syncip", "Ccm@Passw0rd1");
  assert_string_equal(standin_result(d)->method, "error"); /* AMT uses DHCP after the DHCP profile */
  assert_non_null(strstr(standin_result(d)->message, "syncip failed"));
  rerun(d, "maintenance -password Ccm@Passw0rd1 --changepassword New@Passw0rd2", "Ccm@Passw0rd1");
  assert_string_equal(standin_result(d)->method, "success");
  json_t *sec = NULL;
  assert_true(rps_device_secret(&W, TENANT, spec.guid, &sec));
  assert_string_equal(json_string_value(json_object_get(sec, "AMT_PASSWORD")), "New@Passw0rd2");
  assert_non_null(json_object_get(sec, "MPS_PASSWORD")); /* kept */
  json_decref(sec);
  /* the old password no longer passes */
  rerun(d, "maintenance --synctime", "Ccm@Passw0rd1");
  assert_string_equal(standin_result(d)->method, "error");
  rerun(d, "maintenance --synctime", "New@Passw0rd2");
  assert_string_equal(standin_result(d)->method, "success");
  long n = 0;
  for (int i = 0; i < 100 && n < 5; i++, usleep(50000)) n = rps_event_count(&W, spec.guid, "maintenance", "success");
  assert_int_equal(n, 5);
}

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ccm_with_cira),   cmocka_unit_test(test_random_passwords),
      cmocka_unit_test(test_acm_and_deactivation), cmocka_unit_test(test_upgrade_and_reconfigure),
      cmocka_unit_test(test_maintenance),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
