/*
 * The RPC protocol pieces of the RPS agent (../shared/reference/rps-activation.md
 * §1.2-1.5, §2.1, §2.2, §2.8, §2.9): the envelope (strict decode, exact
 * encode), base64, the device payload (uuid array, length, required keys),
 * the command line with minimist's quirks, the protocol version check, DNS
 * suffix candidates, JavaScript number rendering, DMT's Validator rules and
 * texts, the firmware version gate and the status JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rps.h"

static void test_envelope_decode(void **state) {
  struct rpc_msg m;
  char err[256];
  const char *ok = "{\"method\":\"activate --profile p1\",\"apiKey\":\"key\",\"appVersion\":\"v2.52.4\","
                   "\"protocolVersion\":\"4.0.0\",\"status\":\"ok\",\"message\":\"ok\",\"fqdn\":\"\",\"tenantId\":\"t1\","
                   "\"payload\":\"eyJ9\",\"extra\":[1,2]}";
  assert_int_equal(rpc_msg_decode(ok, strlen(ok), &m, err, sizeof err), 0);
  assert_string_equal(m.method, "activate --profile p1");
  assert_string_equal(m.protocol_version, "4.0.0");
  assert_string_equal(m.tenant_id, "t1");
  assert_string_equal(m.payload, "eyJ9");
  rpc_msg_free(&m);
  const char *null_payload = "{\"method\":\"response\",\"payload\":null}";
  assert_int_equal(rpc_msg_decode(null_payload, strlen(null_payload), &m, err, sizeof err), 0);
  assert_null(m.payload);
  rpc_msg_free(&m);
  /* rejects */
  const char *bad[] = {"", "[]", "\"x\"", "{\"method\":1}", "{\"payload\":\"x\"}", "{\"method\":\"\"}",
                       "{\"method\":\"a\",\"payload\":{}}", "{\"method\":\"a\",\"method\":\"b\"}",
                       "{\"method\":\"a\"} trailing", "{\"method\":\"a\",\"tenantId\":true}", "{\"method\":\"a\\u0000b\"}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&m, 0, sizeof m);
    assert_int_equal(rpc_msg_decode(bad[i], strlen(bad[i]), &m, err, sizeof err), -1);
    assert_null(m.method);
  }
  /* over 100 KiB: refused before parsing */
  size_t big = RPS_MAX_MESSAGE + 1;
  char *huge = malloc(big + 1);
  memset(huge, ' ', big);
  memcpy(huge, "{\"method\":\"a\"}", 14);
  huge[big] = '\0';
  assert_int_equal(rpc_msg_decode(huge, big, &m, err, sizeof err), -1);
  assert_non_null(strstr(err, "larger"));
  huge[RPS_MAX_MESSAGE] = '\0';
  assert_int_equal(rpc_msg_decode(huge, RPS_MAX_MESSAGE, &m, err, sizeof err), 0);
  rpc_msg_free(&m);
  free(huge);
}

static void test_envelope_encode(void **state) {
  char *s = rpc_msg_encode("wsman", "ok", "", "UE9TVA==");
  assert_string_equal(s, "{\"method\":\"wsman\",\"apiKey\":\"xxxxx\",\"appVersion\":\"" RPS_APP_VERSION
                         "\",\"protocolVersion\":\"4.0.0\",\"status\":\"ok\",\"message\":\"\","
                         "\"payload\":\"UE9TVA==\",\"tenantId\":\"\"}");
  free(s);
  s = rpc_msg_encode("error", "failed", "quote \" here", NULL);
  assert_non_null(strstr(s, "\"message\":\"quote \\\" here\",\"payload\":null"));
  free(s);
}

static void test_base64(void **state) {
  uint8_t *o;
  size_t n;
  assert_int_equal(rps_b64_decode("aGVsbG8=", 8, &o, &n), 0);
  assert_int_equal(n, 5);
  assert_memory_equal(o, "hello", 5);
  free(o);
  assert_int_equal(rps_b64_decode("", 0, &o, &n), 0);
  assert_int_equal(n, 0);
  free(o);
  const char *bad[] = {"aGVsbG8", "aGVs\nbG8=", "aGVsbG8==", "a=Vs", "aGVs bG8=", "====", "aGVsbG=8"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(rps_b64_decode(bad[i], strlen(bad[i]), &o, &n), -1);
  char *e = rps_b64_encode((const uint8_t *)"hello", 5);
  assert_string_equal(e, "aGVsbG8=");
  free(e);
}

static void test_payload(void **state) {
  struct rpc_device d;
  char err[256];
  const char *p = "{\"ver\":\"16.1.25\",\"build\":\"2124\",\"sku\":\"16392\",\"features\":\"AMT Pro Corporate\","
                  "\"uuid\":\"4C4C4544-004B-4210-8033-B6C04F504633\",\"username\":\"$$OsAdmin\",\"password\":\"P\","
                  "\"currentMode\":0,\"hostname\":\"H\",\"fqdn\":\"vprodemo.com\",\"client\":\"RPC\","
                  "\"certHashes\":[\"AB\",\"cd\"],\"ipConfiguration\":{\"dhcp\":true,\"static\":false,\"ipsync\":true,"
                  "\"ipAddress\":\"10.0.0.2\",\"netmask\":\"\",\"gateway\":\"\",\"primaryDns\":\"\",\"secondaryDns\":\"\"},"
                  "\"hostnameInfo\":{\"dnsSuffixOS\":\"corp\",\"hostname\":\"h1\"},\"friendlyName\":\"F\"}";
  assert_int_equal(rpc_device_decode((const uint8_t *)p, strlen(p), "c1", &d, err, sizeof err), 0);
  assert_string_equal(d.uuid, "4c4c4544-004b-4210-8033-b6c04f504633");
  assert_int_equal(d.current_mode, 0);
  assert_string_equal(d.fqdn, "vprodemo.com");
  assert_int_equal(d.ncert_hashes, 2);
  assert_string_equal(d.cert_hashes[0], "ab");
  assert_true(d.ip.present && d.ip.dhcp && d.ip.ipsync);
  assert_string_equal(d.ip.ip, "10.0.0.2");
  assert_string_equal(d.os_hostname, "h1");
  assert_string_equal(d.friendly_name, "F");
  rpc_device_free(&d);
  /* §1.5: a 16-byte uuid array: 0-3, 4-5, 6-7 little-endian, 8-9 big-endian, 10-15 hex */
  const char *arr = "{\"ver\":\"16\",\"build\":\"1\",\"client\":\"RPC\",\"uuid\":[68,69,76,76,75,0,16,66,128,51,182,"
                    "192,79,80,70,51]}";
  assert_int_equal(rpc_device_decode((const uint8_t *)arr, strlen(arr), "c1", &d, err, sizeof err), 0);
  assert_string_equal(d.uuid, "4c4c4544-004b-4210-8033-b6c04f504633");
  assert_int_equal(d.current_mode, -1);
  rpc_device_free(&d);
  struct {
    const char *json, *err;
  } bad[] = {
      {"not json", "Failed to parse client message payload."},
      {"{\"ver\":\"16\",\"build\":\"1\",\"uuid\":\"4c4c4544-004b-4210-8033-b6c04f504633\"}", "Invalid payload from client"},
      {"{\"client\":\"RPC\",\"build\":\"1\",\"uuid\":\"4c4c4544-004b-4210-8033-b6c04f504633\"}", "Invalid payload from client"},
      {"{\"client\":\"RPC\",\"ver\":\"16\",\"build\":\"\",\"uuid\":\"x\"}", "Invalid payload from client"},
      {"{\"client\":\"RPC\",\"ver\":\"16\",\"build\":\"1\",\"uuid\":\"short\"}", "c1 - uuid not valid length"},
      {"{\"client\":\"RPC\",\"ver\":\"16\",\"build\":\"1\",\"uuid\":\"4c4c4544-004b-4210-8033-b6c04f50463z\"}",
       "c1 - uuid not valid"},
      {"{\"client\":\"RPC\",\"ver\":\"16\",\"build\":\"1\",\"uuid\":[1,2,3]}", "c1 - uuid not valid length"},
      {"{\"client\":\"RPC\",\"ver\":\"16\",\"build\":\"1\",\"uuid\":\"4c4c4544-004b-4210-8033-b6c04f504633\","
       "\"certHashes\":\"x\"}",
       "Invalid payload from client"},
      {"{\"client\":\"RPC\",\"ver\":{},\"build\":\"1\",\"uuid\":\"4c4c4544-004b-4210-8033-b6c04f504633\"}",
       "Invalid payload from client"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(rpc_device_decode((const uint8_t *)bad[i].json, strlen(bad[i].json), "c1", &d, err, sizeof err),
                     -1);
    assert_true(strncmp(err, bad[i].err, strlen(bad[i].err)) == 0);
  }
}

struct cmd_case {
  const char *line, *method, *profile, *password, *task, *task_arg;
  bool force;
};

static void test_command_line(void **state) {
  const struct cmd_case cases[] = {
      {"activate --profile p1", "activate", "p1", NULL, NULL, NULL, false},
      {"activate --profile 0123", "activate", "123", NULL, NULL, NULL, false}, /* a number */
      {"activate --profile 1e3", "activate", "1000", NULL, NULL, NULL, false},
      {"activate --profile 0x1A", "activate", "26", NULL, NULL, NULL, false},
      {"activate --profile=p2 --password P@ss", "activate", "p2", "P@ss", NULL, NULL, false},
      {"activate --profile a --profile b", "activate", "a,b", NULL, NULL, NULL, false},
      {"activate --profile", "activate", "true", NULL, NULL, NULL, false},
      {"activate --profile -f", "activate", "true", NULL, NULL, NULL, true},
      {"  activate --profile p1  ", "activate", "p1", NULL, NULL, NULL, false},
      {"deactivate --password P@ss -f", "deactivate", NULL, "P@ss", NULL, NULL, true},
      {"deactivate --password 12345678", "deactivate", NULL, "12345678", NULL, NULL, false}, /* a string flag */
      {"deactivate --force", "deactivate", NULL, NULL, NULL, NULL, true},
      {"deactivate --no-force", "deactivate", NULL, NULL, NULL, NULL, false},
      /* rpc-go's single dash: -p -a -s -s -w -o -r -d, d = the password, password "" (falsy) */
      {"maintenance -password P@ss --synctime", "maintenance", NULL, NULL, "synctime", NULL, false},
      {"maintenance -password P@ss --changepassword NewP@ss1", "maintenance", NULL, NULL, "changepassword", "NewP@ss1",
       false},
      {"maintenance --password P --changepassword", "maintenance", NULL, "P", "changepassword", NULL, false},
      {"maintenance --syncip", "maintenance", NULL, NULL, "syncip", NULL, false},
      {"maintenance --synchostname", "maintenance", NULL, NULL, "synchostname", NULL, false},
      {"maintenance --syncdeviceinfo", "maintenance", NULL, NULL, "syncdeviceinfo", NULL, false},
      {"-password1 activate", "-password1 activate", NULL, NULL, NULL, NULL, false}, /* no text assumed */
      {"--text deactivate --password x", "deactivate", NULL, "x", NULL, NULL, false},
      {"activate -e --profile p1", "activate -e --profile p1", NULL, NULL, NULL, NULL, false},
      {"activate -- --profile p1", "activate", NULL, NULL, NULL, NULL, false},
      {"activate -p secret", "activate", NULL, "secret", NULL, NULL, false},
      {"activate -psecret1", "activate", NULL, "secret1", NULL, NULL, false}, /* ends with a number: value */
      {"", "", NULL, NULL, NULL, NULL, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct cmd_case *c = &cases[i];
    struct rpc_command r;
    rpc_command_parse(c->line, &r);
    print_message("case \"%s\"\n", c->line);
    assert_string_equal(r.method, c->method);
    if (c->profile) assert_string_equal(r.profile, c->profile);
    else assert_null(r.profile);
    if (c->password) assert_string_equal(r.password, c->password);
    else assert_null(r.password);
    if (c->task) assert_string_equal(r.task, c->task);
    else assert_null(r.task);
    if (c->task_arg) assert_string_equal(r.task_arg, c->task_arg);
    else assert_null(r.task_arg);
    assert_int_equal(r.force, c->force);
    rpc_command_free(&r);
  }
}

static void test_js_numbers(void **state) {
  const struct {
    double v;
    const char *s;
  } cases[] = {{123, "123"},   {1000, "1000"}, {0.5, "0.5"},       {-0.0, "0"},       {1e21, "1e+21"},
               {1.5e-7, "1.5e-7"}, {0.000001, "0.000001"}, {123456789012, "123456789012"}, {0.1, "0.1"},
               {1.0 / 3, "0.3333333333333333"}, {-42.25, "-42.25"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[64];
    rps_js_number_string(cases[i].v, out, sizeof out);
    assert_string_equal(out, cases[i].s);
  }
}

static void test_version(void **state) {
  char err[128];
  assert_int_equal(rpc_version_check("4.0.0", "4.0.0", err, sizeof err), 1);
  assert_int_equal(rpc_version_check("4.0", "4.0.0", err, sizeof err), 1);
  assert_int_equal(rpc_version_check("4", "4.0.0", err, sizeof err), 1);
  assert_int_equal(rpc_version_check("4.0.1", "4.0.0", err, sizeof err), 0);
  assert_int_equal(rpc_version_check("4.1.0", "4.0.0", err, sizeof err), 0);
  assert_int_equal(rpc_version_check("3.9.9", "4.0.0", err, sizeof err), 0);
  assert_int_equal(rpc_version_check("5.0.0", "4.0.0", err, sizeof err), 0);
  assert_int_equal(rpc_version_check("4.0.0", "4.2.0", err, sizeof err), 1); /* server minor newer */
  assert_int_equal(rpc_version_check("4abc", "4.0.0", err, sizeof err), 1);  /* parseInt */
  assert_int_equal(rpc_version_check("4.0.0.0", "4.0.0", err, sizeof err), -1);
  assert_string_equal(err, "invalid version string length");
  assert_int_equal(rpc_version_check("x.0", "4.0.0", err, sizeof err), -1);
  assert_string_equal(err, "failed to parse major");
  assert_int_equal(rpc_version_check("4.y", "4.0.0", err, sizeof err), -1);
  assert_string_equal(err, "failed to parse minor");
  assert_int_equal(rpc_version_check("4.0.", "4.0.0", err, sizeof err), -1);
  assert_string_equal(err, "failed to parse revision");
}

static void test_suffix_candidates(void **state) {
  char c[8][256];
  assert_int_equal(rps_suffix_candidates("a.b.vprodemo.com", c, 8), 3);
  assert_string_equal(c[0], "a.b.vprodemo.com");
  assert_string_equal(c[1], "b.vprodemo.com");
  assert_string_equal(c[2], "vprodemo.com");
  assert_int_equal(rps_suffix_candidates("vprodemo.com", c, 8), 1);
  assert_int_equal(rps_suffix_candidates("localdomain", c, 8), 0);
  assert_int_equal(rps_suffix_candidates("", c, 8), 0);
}

/* ---- validation ---- */

static struct rps_job *job(int mode, const char *activation, const char *pw, const char *stored) {
  struct rps_job *j = calloc(1, sizeof *j);
  snprintf(j->guid, sizeof j->guid, "4c4c4544-004b-4210-8033-b6c04f504633");
  snprintf(j->id, sizeof j->id, "client-1");
  snprintf(j->dev.uuid, sizeof j->dev.uuid, "%s", j->guid);
  snprintf(j->dev.ver, sizeof j->dev.ver, "16.1.25");
  snprintf(j->dev.build, sizeof j->dev.build, "2124");
  snprintf(j->dev.password, sizeof j->dev.password, "%s", pw);
  snprintf(j->dev.fqdn, sizeof j->dev.fqdn, "vprodemo.com");
  j->dev.current_mode = mode;
  j->dev.has_cert_hashes = true;
  j->args.profile = strdup("p1");
  if (activation) {
    j->lk.profile.found = true;
    snprintf(j->lk.profile.name, sizeof j->lk.profile.name, "p1");
    snprintf(j->lk.profile.activation, sizeof j->lk.profile.activation, "%s", activation);
  }
  j->lk.domain.found = true;
  j->lk.domain.p12 = (uint8_t *)"x";
  if (stored) {
    j->lk.record.exists = true;
    j->lk.record.amt_password = strdup(stored);
  }
  return j;
}

static void job_free(struct rps_job *j) {
  free(j->args.profile);
  free(j->args.task);
  free(j->lk.record.amt_password);
  free(j);
}

static void expect(struct rps_job *j, int (*fn)(struct rps_job *, char *, size_t), const char *err_want) {
  char err[512] = "";
  int rc = fn(j, err, sizeof err);
  if (err_want) {
    assert_int_equal(rc, -1);
    assert_string_equal(err, err_want);
  } else {
    if (rc) print_message("unexpected: %s\n", err);
    assert_int_equal(rc, 0);
  }
  job_free(j);
}

#define UUID "4c4c4544-004b-4210-8033-b6c04f504633"

static void test_validate_activation(void **state) {
  struct rps_job *j = job(0, "ccmactivate", "lsa", NULL);
  char err[512];
  assert_int_equal(validate_activation(j, err, sizeof err), 0);
  assert_int_equal(j->target, MODE_CCM);
  assert_int_equal(j->device_mode, MODE_NONE);
  job_free(j);
  expect(job(0, NULL, "lsa", NULL), validate_activation,
         "Device " UUID " activation failed. p1 does not match list of available AMT profiles.");
  expect(job(2, "ccmactivate", "pw", NULL), validate_activation, "Device " UUID " already enabled in admin control mode.");
  expect(job(7, "ccmactivate", "pw", NULL), validate_activation, "Device " UUID " activation failed. It is in unknown mode.");
  expect(job(1, "ccmactivate", "wrong", "right"), validate_activation,
         "AMT password DOES NOT match stored version for Device " UUID);
  j = job(1, "acmactivate", "right", "right");
  assert_int_equal(validate_activation(j, err, sizeof err), 0);
  assert_true(j->upgrade);
  assert_string_equal(j->st.status, "Upgraded to admin control mode.");
  job_free(j);
  j = job(2, "acmactivate", "pw", NULL);
  assert_int_equal(validate_activation(j, err, sizeof err), 0);
  assert_string_equal(j->st.status, "already enabled in admin mode.");
  job_free(j);
  j = job(0, "acmactivate", "lsa", NULL);
  j->dev.has_cert_hashes = false;
  expect(j, validate_activation, "Device " UUID " activation failed. Missing certificate hashes from the device.");
  j = job(0, "acmactivate", "lsa", NULL);
  j->dev.fqdn[0] = '\0';
  expect(j, validate_activation, "Device " UUID " activation failed. Missing DNS Suffix.");
  j = job(0, "acmactivate", "lsa", NULL);
  j->lk.domain.found = false;
  expect(j, validate_activation,
         "Device " UUID " activation failed. Specified AMT domain suffix: vprodemo.com does not match list of "
         "available AMT domain suffixes.");
  /* an activated device registered in another tenant: a machine-level failure ('!') */
  j = job(1, "ccmactivate", "pw", "pw");
  snprintf(j->lk.record.tenant, sizeof j->lk.record.tenant, "other");
  expect(j, validate_activation, "!Device belongs to another tenant. Please unprovision and re-activate device.");
  j = job(0, "nonsense", "lsa", NULL);
  expect(j, validate_activation, "Device " UUID " activation failed. Failed to get activation mode for the profile :p1");
}

static void test_validate_deactivation(void **state) {
  expect(job(1, NULL, "pw", "pw"), validate_deactivation, NULL);
  expect(job(0, NULL, "pw", "pw"), validate_deactivation, "Device " UUID " is in pre-provisioning mode.");
  expect(job(3, NULL, "pw", "pw"), validate_deactivation, "Device " UUID " deactivation failed. It is in unknown mode: 3.");
  expect(job(2, NULL, "bad", "pw"), validate_deactivation, "AMT password DOES NOT match stored version for Device " UUID);
  expect(job(2, NULL, "pw", NULL), validate_deactivation, "AMT password DOES NOT match stored version for Device " UUID);
  struct rps_job *j = job(2, NULL, "bad", "pw");
  j->args.force = true;
  expect(j, validate_deactivation, NULL);
}

static void test_validate_maintenance(void **state) {
  struct rps_job *j = job(1, NULL, "pw", "pw");
  expect(j, validate_maintenance, "client-1 - missing maintenance task in message");
  j = job(0, NULL, "pw", "pw");
  j->args.task = strdup("synctime");
  expect(j, validate_maintenance, "Device " UUID " is in pre-provisioning mode.");
  j = job(1, NULL, "pw", "pw");
  j->args.task = strdup("syncip");
  expect(j, validate_maintenance, "client-1 - missing ipConfiguration");
  j = job(1, NULL, "bad", "pw");
  j->args.task = strdup("synctime");
  j->lk.want_record = true;
  expect(j, validate_maintenance, "AMT password DOES NOT match stored version for Device " UUID);
  j = job(1, NULL, "pw", "pw");
  j->args.task = strdup("synctime");
  j->lk.want_record = true;
  expect(j, validate_maintenance, NULL);
}

static void test_version_gate(void **state) {
  struct rpc_device d = {.uuid = UUID};
  char err[256];
  snprintf(d.ver, sizeof d.ver, "11.6.1");
  snprintf(d.build, sizeof d.build, "2999");
  assert_int_equal(validate_amt_version(&d, "activation", err, sizeof err), -1);
  assert_string_equal(err, "Device " UUID " activation failed. Please check with your OEM for a firmware update.");
  snprintf(d.build, sizeof d.build, "3000");
  assert_int_equal(validate_amt_version(&d, "activation", err, sizeof err), 0);
  snprintf(d.ver, sizeof d.ver, "6.2");
  assert_int_equal(validate_amt_version(&d, "deactivation", err, sizeof err), -1);
  assert_string_equal(err, "Device " UUID " deactivation failed. AMT version: 6.2. Version less than 7 cannot be "
                           "remotely configured ");
  snprintf(d.ver, sizeof d.ver, "16.1.25");
  snprintf(d.build, sizeof d.build, "1");
  assert_int_equal(validate_amt_version(&d, "activation", err, sizeof err), 0);
}

static void test_status_json(void **state) {
  struct rps_status st = {0};
  snprintf(st.status, sizeof st.status, "Deactivated");
  char *s = rps_status_json(&st);
  assert_string_equal(s, "{\"Status\":\"Deactivated\"}");
  free(s);
  snprintf(st.status, sizeof st.status, "Client control mode.");
  st.activation.result = "Success";
  snprintf(st.activation.mode, sizeof st.activation.mode, "CCM");
  snprintf(st.activation.details, sizeof st.activation.details, "Client control mode");
  st.wired.result = "Success";
  snprintf(st.wired.details, sizeof st.wired.details, "Wired Network Configured");
  snprintf(st.network, sizeof st.network, "Wired Network Configured");
  snprintf(st.cira, sizeof st.cira, "Configured");
  s = rps_status_json(&st);
  json_t *j = json_loads(s, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "Status")), "Client control mode.");
  assert_string_equal(json_string_value(json_object_get(j, "Network")), "Wired Network Configured");
  assert_string_equal(json_string_value(json_object_get(j, "CIRAConnection")), "Configured");
  assert_null(json_object_get(j, "TLSConfiguration"));
  json_t *c = json_object_get(j, "Components");
  assert_string_equal(json_string_value(json_object_get(json_object_get(c, "Activation"), "Mode")), "CCM");
  assert_string_equal(json_string_value(json_object_get(json_object_get(c, "TLS"), "Result")), "NotApplicable");
  assert_string_equal(json_string_value(json_object_get(json_object_get(c, "WiredNetwork"), "Result")), "Success");
  json_decref(j);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_envelope_decode),     cmocka_unit_test(test_envelope_encode),
      cmocka_unit_test(test_base64),              cmocka_unit_test(test_payload),
      cmocka_unit_test(test_command_line),        cmocka_unit_test(test_js_numbers),
      cmocka_unit_test(test_version),             cmocka_unit_test(test_suffix_candidates),
      cmocka_unit_test(test_validate_activation), cmocka_unit_test(test_validate_deactivation),
      cmocka_unit_test(test_validate_maintenance), cmocka_unit_test(test_version_gate),
      cmocka_unit_test(test_status_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
