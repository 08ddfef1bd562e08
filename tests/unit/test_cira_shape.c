/*
 * From WS-Man responses to DMT's JSON bodies (agents/cira/shape.c). The
 * responses are AMT-style envelopes built and parsed by the real codec
 * (common/wsman_*), so the trees have exactly the shape the terminator sees;
 * the results are compared as JSON with what DMT's routes answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cira.h"
#include "dmt/amt_logs.h"
#include "dmt/mptree.h"

#define ENUM_NS "http://schemas.xmlsoap.org/ws/2004/09/enumeration"

/* Trees live until the test ends. */
static msgpack_unpacked trees[16];
static struct dmt_wsman_response resps[16];
static int ntrees;

static int setup(void **state) {
  dmt_wsman_init();
  return 0;
}

static void free_trees(void) {
  for (int i = 0; i < ntrees; i++) {
    msgpack_unpacked_destroy(&trees[i]);
    dmt_wsman_response_free(&resps[i]);
  }
  ntrees = 0;
}

/* An AMT answer to a Get of cls whose Body holds body_xml ("g:" is the class's namespace). */
static const msgpack_object *answer(const char *cls, const char *body_xml) {
  struct dmt_buf req, out;
  dmt_buf_init(&req, 0);
  dmt_buf_init(&out, 0);
  assert_int_equal(dmt_wsman_get(&req, cls, "7", NULL, 0), 0);
  struct dmt_wsman_request r;
  char err[256];
  assert_int_equal(dmt_wsman_parse_request((const char *)dmt_buf_ptr(&req), dmt_buf_size(&req), &r, err, sizeof err), 0);
  assert_int_equal(dmt_wsman_build_response(&out, &r, 1, body_xml), 0);
  int i = ntrees++;
  assert_int_equal(dmt_wsman_parse_response((const char *)dmt_buf_ptr(&out), dmt_buf_size(&out), &resps[i], err,
                                            sizeof err), 0);
  msgpack_unpacked_init(&trees[i]);
  size_t off = 0;
  assert_int_equal(msgpack_unpack_next(&trees[i], resps[i].tree.data, resps[i].tree.size, &off), MSGPACK_UNPACK_SUCCESS);
  dmt_wsman_request_free(&r);
  dmt_buf_free(&req);
  dmt_buf_free(&out);
  return &trees[i].data;
}

struct packed {
  msgpack_sbuffer sb;
  msgpack_packer pk;
};

static void packed_init(struct packed *p) {
  msgpack_sbuffer_init(&p->sb);
  msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

/* Compares the packed result with JSON text; frees the buffer. */
static void assert_json(struct packed *p, const char *want) {
  json_t *got = dmt_mp_buf_to_json(p->sb.data, p->sb.size);
  json_t *exp = json_loads(want, 0, NULL);
  assert_non_null(got);
  assert_non_null(exp);
  if (!json_equal(got, exp)) {
    char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
    fprintf(stderr, "got:  %s\nwant: %s\n", g, want);
    free(g);
    fail();
  }
  json_decref(got);
  json_decref(exp);
  msgpack_sbuffer_destroy(&p->sb);
}

static json_t *as_json(struct packed *p) {
  json_t *j = dmt_mp_buf_to_json(p->sb.data, p->sb.size);
  msgpack_sbuffer_destroy(&p->sb);
  return j;
}

static void test_return_value(void **state) {
  const msgpack_object *t = answer("CIM_PowerManagementService",
                                   "<g:RequestPowerStateChange_OUTPUT><g:ReturnValue>0</g:ReturnValue>"
                                   "</g:RequestPowerStateChange_OUTPUT>");
  struct packed p;
  packed_init(&p);
  shape_return(&p.pk, t, "RequestPowerStateChange_OUTPUT");
  json_t *j = as_json(&p);
  json_t *body = json_object_get(j, "Body");
  assert_int_equal(json_object_size(body), 2);
  assert_int_equal(json_integer_value(json_object_get(body, "ReturnValue")), 0);
  assert_string_equal(json_string_value(json_object_get(body, "ReturnValueStr")), "SUCCESS");
  assert_non_null(json_object_get(json_object_get(j, "Header"), "RelatesTo")); /* the response's own header */
  json_decref(j);
  assert_int_equal(shape_return_value(t, "RequestPowerStateChange_OUTPUT"), 0);

  t = answer("CIM_PowerManagementService",
             "<g:RequestPowerStateChange_OUTPUT><g:ReturnValue>2</g:ReturnValue></g:RequestPowerStateChange_OUTPUT>");
  packed_init(&p);
  shape_return(&p.pk, t, "RequestPowerStateChange_OUTPUT");
  j = as_json(&p);
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "Body"), "ReturnValueStr")), "NOT_READY");
  json_decref(j);
  /* no output at all: ReturnValue -1, UNKNOWN_ERROR (never a crash) */
  t = answer("CIM_PowerManagementService", "");
  packed_init(&p);
  shape_return(&p.pk, t, "RequestPowerStateChange_OUTPUT");
  j = as_json(&p);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "Body"), "ReturnValue")), -1);
  json_decref(j);
  free_trees();
}

static void test_power_state(void **state) {
  const msgpack_object *ips = answer("IPS_PowerManagementService",
                                     "<g:IPS_PowerManagementService><g:OSPowerSavingState>2</g:OSPowerSavingState>"
                                     "</g:IPS_PowerManagementService>");
  const msgpack_object *pull = answer(
      "CIM_ServiceAvailableToElement",
      "<PullResponse xmlns=\"" ENUM_NS "\"><Items><h:CIM_AssociatedPowerManagementService "
      "xmlns:h=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_AssociatedPowerManagementService\">"
      "<h:AvailableRequestedPowerStates>2</h:AvailableRequestedPowerStates><h:PowerState>8</h:PowerState>"
      "</h:CIM_AssociatedPowerManagementService></Items><EndOfSequence></EndOfSequence></PullResponse>");
  int64_t power = 0;
  assert_true(shape_power_state_of(pull, &power));
  assert_int_equal(power, 8);
  assert_int_equal(shape_os_state(ips), 2);
  struct packed p;
  packed_init(&p);
  shape_power_state(&p.pk, power, shape_os_state(ips));
  assert_json(&p, "{\"powerstate\":8,\"OSPowerSavingState\":2}");
  assert_false(shape_power_state_of(ips, &power)); /* no power state in it */
  assert_int_equal(shape_os_state(pull), 0);
  packed_init(&p);
  shape_os_result(&p.pk, 0, os_power_status_name(0));
  assert_json(&p, "{\"Body\":{\"ReturnValue\":0,\"ReturnValueStr\":\"COMPLETED_WITH_NO_ERROR\"}}");
  free_trees();
}

static void software(char *out, size_t n, const char *amt_version) {
  snprintf(out, n,
    "<PullResponse xmlns=\"" ENUM_NS "\"><Items>"
    "<h:CIM_SoftwareIdentity xmlns:h=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_SoftwareIdentity\">"
    "<h:InstanceID>Flash</h:InstanceID><h:IsEntity>true</h:IsEntity><h:VersionString>16.1.27</h:VersionString>"
    "</h:CIM_SoftwareIdentity>"
    "<h:CIM_SoftwareIdentity xmlns:h=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_SoftwareIdentity\">"
    "<h:InstanceID>AMT</h:InstanceID><h:IsEntity>true</h:IsEntity><h:VersionString>%s</h:VersionString>"
    "</h:CIM_SoftwareIdentity></Items><EndOfSequence></EndOfSequence></PullResponse>", amt_version);
}

static void test_capabilities(void **state) {
  char xml[2048];
  software(xml, sizeof xml, "16.1.27");
  const msgpack_object *sw = answer("CIM_SoftwareIdentity", xml);
  assert_int_equal(shape_amt_major(sw), 16);
  const msgpack_object *caps =
      answer("AMT_BootCapabilities", "<g:AMT_BootCapabilities><g:BIOSSetup>true</g:BIOSSetup>"
                                     "<g:SecureErase>false</g:SecureErase><g:ForceDiagnosticBoot>false"
                                     "</g:ForceDiagnosticBoot></g:AMT_BootCapabilities>");
  struct packed p;
  packed_init(&p);
  shape_capabilities(&p.pk, 16, caps);
  assert_json(&p, "{\"Power up\":2,\"Power cycle\":5,\"Power down\":8,\"Reset\":10,\"Soft-off\":12,"
                  "\"Soft-reset\":14,\"Sleep\":4,\"Hibernate\":7,\"Power up to BIOS\":100,\"Reset to BIOS\":101,"
                  "\"Reset to IDE-R Floppy\":200,\"Power on to IDE-R Floppy\":201,\"Reset to IDE-R CDROM\":202,"
                  "\"Power on to IDE-R CDROM\":203,\"Reset to PXE\":400,\"Power on to PXE\":401}");
  /* AMT 9: no soft, sleep or hibernate entries; no BIOSSetup: no BIOS entries; diagnostics when offered */
  caps = answer("AMT_BootCapabilities", "<g:AMT_BootCapabilities><g:BIOSSetup>false</g:BIOSSetup>"
                                        "<g:SecureErase>true</g:SecureErase><g:ForceDiagnosticBoot>true"
                                        "</g:ForceDiagnosticBoot></g:AMT_BootCapabilities>");
  packed_init(&p);
  shape_capabilities(&p.pk, 9, caps);
  assert_json(&p, "{\"Power up\":2,\"Power cycle\":5,\"Power down\":8,\"Reset\":10,\"Reset to Secure Erase\":104,"
                  "\"Reset to IDE-R Floppy\":200,\"Power on to IDE-R Floppy\":201,\"Reset to IDE-R CDROM\":202,"
                  "\"Power on to IDE-R CDROM\":203,\"Power on to diagnostic\":300,\"Reset to diagnostic\":301,"
                  "\"Reset to PXE\":400,\"Power on to PXE\":401}");
  software(xml, sizeof xml, "11.8.50");
  assert_int_equal(shape_amt_major(answer("CIM_SoftwareIdentity", xml)), 11);
  free_trees();
}

static void test_version_entries(void **state) {
  char xml[2048];
  software(xml, sizeof xml, "16.1.27");
  const msgpack_object *sw = answer("CIM_SoftwareIdentity", xml);
  const msgpack_object *setup = answer("AMT_SetupAndConfigurationService",
                                       "<g:AMT_SetupAndConfigurationService><g:ProvisioningMode>1</g:ProvisioningMode>"
                                       "<g:ProvisioningState>2</g:ProvisioningState></g:AMT_SetupAndConfigurationService>");
  struct packed p;
  packed_init(&p);
  msgpack_pack_map(&p.pk, 2);
  shape_str(&p.pk, "CIM_SoftwareIdentity");
  shape_pull_entry(&p.pk, sw, "CIM_SoftwareIdentity");
  shape_str(&p.pk, "AMT_SetupAndConfigurationService");
  shape_get_entry(&p.pk, setup, "AMT_SetupAndConfigurationService");
  json_t *j = as_json(&p);
  json_t *si = json_object_get(j, "CIM_SoftwareIdentity");
  assert_int_equal(json_integer_value(json_object_get(si, "status")), 200);
  assert_int_equal(json_array_size(json_object_get(si, "responses")), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(si, "responses"), 1),
                                                        "VersionString")),
                      "16.1.27");
  json_t *sc = json_object_get(j, "AMT_SetupAndConfigurationService");
  assert_int_equal(json_integer_value(json_object_get(sc, "status")), 200);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(sc, "response"), "ProvisioningState")), 2);
  assert_non_null(json_object_get(json_object_get(sc, "responses"), "Header"));
  assert_non_null(json_object_get(json_object_get(json_object_get(sc, "responses"), "Body"),
                                  "AMT_SetupAndConfigurationService"));
  json_decref(j);
  /* a Get that did not return the class: status 400, response null */
  packed_init(&p);
  shape_get_entry(&p.pk, setup, "CIM_Chassis");
  j = as_json(&p);
  assert_int_equal(json_integer_value(json_object_get(j, "status")), 400);
  assert_true(json_is_null(json_object_get(j, "response")));
  json_decref(j);
  free_trees();
}

static void test_features(void **state) {
  struct features_in in = {
      answer("AMT_RedirectionService", "<g:AMT_RedirectionService><g:EnabledState>32771</g:EnabledState>"
                                       "<g:ListenerEnabled>true</g:ListenerEnabled></g:AMT_RedirectionService>"),
      answer("IPS_OptInService", "<g:IPS_OptInService><g:OptInRequired>4294967295</g:OptInRequired>"
                                 "<g:OptInState>0</g:OptInState></g:IPS_OptInService>"),
      answer("CIM_KVMRedirectionSAP",
             "<g:CIM_KVMRedirectionSAP><g:EnabledState>6</g:EnabledState></g:CIM_KVMRedirectionSAP>"),
      answer("CIM_BootService", "<g:CIM_BootService><g:EnabledState>32769</g:EnabledState></g:CIM_BootService>"),
      answer("AMT_BootCapabilities", "<g:AMT_BootCapabilities><g:ForceUEFIHTTPSBoot>true</g:ForceUEFIHTTPSBoot>"
                                     "<g:ForceWinREBoot>true</g:ForceWinREBoot><g:ForceUEFIPBABoot>false"
                                     "</g:ForceUEFIPBABoot><g:PlatformErase>3</g:PlatformErase>"
                                     "</g:AMT_BootCapabilities>"),
      answer("AMT_BootSettingData", "<g:AMT_BootSettingData><g:UEFIHTTPSBootEnabled>true</g:UEFIHTTPSBootEnabled>"
                                    "<g:WinREBootEnabled>false</g:WinREBootEnabled><g:UEFILocalPBABootEnabled>true"
                                    "</g:UEFILocalPBABootEnabled><g:PlatformErase>false</g:PlatformErase>"
                                    "</g:AMT_BootSettingData>"),
      answer("CIM_BootSourceSetting",
             "<PullResponse xmlns=\"" ENUM_NS "\"><Items>"
             "<h:CIM_BootSourceSetting xmlns:h=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_BootSourceSetting\">"
             "<h:InstanceID>Intel(r) AMT: Force OCR UEFI HTTPS Boot 1</h:InstanceID><h:BIOSBootString>x</h:BIOSBootString>"
             "</h:CIM_BootSourceSetting>"
             "<h:CIM_BootSourceSetting xmlns:h=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_BootSourceSetting\">"
             "<h:InstanceID>Intel(r) AMT: Force OCR UEFI Boot Option 2</h:InstanceID>"
             "<h:BIOSBootString>Windows WinRe</h:BIOSBootString></h:CIM_BootSourceSetting>"
             "</Items><EndOfSequence></EndOfSequence></PullResponse>"),
  };
  struct packed p;
  packed_init(&p);
  shape_features(&p.pk, &in);
  assert_json(&p, "{\"userConsent\":\"all\",\"redirection\":true,\"KVM\":true,\"SOL\":true,\"IDER\":true,"
                  "\"optInState\":0,\"kvmAvailable\":true,\"ocr\":true,\"httpsBootSupported\":true,"
                  "\"winREBootSupported\":false,\"localPBABootSupported\":false,\"remoteEraseEnabled\":false,"
                  "\"remoteEraseSupported\":true,\"platformEraseCaps\":3}");
  /* a device without KVM or OCR classes */
  struct features_in none = {in.redirection, in.optin, NULL, NULL, NULL, NULL, NULL};
  packed_init(&p);
  shape_features(&p.pk, &none);
  json_t *j = as_json(&p);
  assert_false(json_is_true(json_object_get(j, "kvmAvailable")));
  assert_false(json_is_true(json_object_get(j, "ocr")));
  assert_int_equal(json_object_size(j), 14);
  json_decref(j);
  free_trees();
}

static void test_logs(void **state) {
  struct dmt_buf raw, b64a, b64b;
  dmt_buf_init(&raw, 0);
  dmt_buf_init(&b64a, 0);
  dmt_buf_init(&b64b, 0);
  struct dmt_audit_record r1 = {.app_id = 17, .event_id = 0, .initiator_type = 0, .initiator = "admin",
                                .timestamp = 1700000000, .mc_location_type = 0, .net_address = "10.0.0.5"};
  struct dmt_audit_record r2 = r1;
  r2.event_id = 1;
  r2.timestamp = 1700000100;
  assert_int_equal(dmt_audit_record_encode(&raw, &r1), 0);
  dmt_base64_encode(dmt_buf_ptr(&raw), dmt_buf_size(&raw), &b64a);
  dmt_buf_free(&raw);
  dmt_buf_init(&raw, 0);
  assert_int_equal(dmt_audit_record_encode(&raw, &r2), 0);
  dmt_base64_encode(dmt_buf_ptr(&raw), dmt_buf_size(&raw), &b64b);
  char xml[2048];
  snprintf(xml, sizeof xml,
           "<g:ReadRecords_OUTPUT><g:TotalRecordCount>14</g:TotalRecordCount><g:RecordsReturned>2</g:RecordsReturned>"
           "<g:EventRecords>%.*s</g:EventRecords><g:EventRecords>%.*s</g:EventRecords><g:ReturnValue>0</g:ReturnValue>"
           "</g:ReadRecords_OUTPUT>",
           (int)dmt_buf_size(&b64a), (const char *)dmt_buf_ptr(&b64a), (int)dmt_buf_size(&b64b),
           (const char *)dmt_buf_ptr(&b64b));
  struct packed p;
  packed_init(&p);
  assert_int_equal(shape_audit_log(&p.pk, answer("AMT_AuditLog", xml)), 2);
  json_t *j = as_json(&p);
  assert_int_equal(json_integer_value(json_object_get(j, "totalCnt")), 14);
  json_t *recs = json_object_get(j, "records");
  assert_int_equal(json_array_size(recs), 2);
  json_t *first = json_array_get(recs, 0); /* newest first */
  assert_string_equal(json_string_value(json_object_get(first, "Event")), "Performed Power Down");
  assert_string_equal(json_string_value(json_object_get(first, "AuditApp")), "RCO");
  assert_string_equal(json_string_value(json_object_get(first, "Initiator")), "admin");
  assert_string_equal(json_string_value(json_object_get(first, "NetAddress")), "10.0.0.5");
  assert_string_equal(json_string_value(json_object_get(first, "Time")), "2023-11-14T22:15:00.000Z");
  assert_true(json_is_null(json_object_get(first, "ExStr")));
  json_decref(j);

  uint8_t ev[DMT_EVENT_RECORD_LEN];
  struct dmt_event_record e = {.timestamp = 1700000000, .sensor_type = 15, .event_type = 111, .entity = 34,
                               .severity = 8, .data = {1, 2, 3, 4, 5, 6, 7, 8}};
  dmt_event_record_encode(ev, &e);
  dmt_buf_free(&b64a);
  dmt_buf_init(&b64a, 0);
  dmt_base64_encode(ev, sizeof ev, &b64a);
  snprintf(xml, sizeof xml,
           "<g:GetRecords_OUTPUT><g:IterationIdentifier>1</g:IterationIdentifier><g:NoMoreRecords>true"
           "</g:NoMoreRecords><g:RecordArray>%.*s</g:RecordArray><g:RecordArray>not base64!</g:RecordArray>"
           "<g:ReturnValue>0</g:ReturnValue></g:GetRecords_OUTPUT>",
           (int)dmt_buf_size(&b64a), (const char *)dmt_buf_ptr(&b64a));
  packed_init(&p);
  assert_int_equal(shape_event_log(&p.pk, answer("AMT_MessageLog", xml)), 1);
  j = as_json(&p);
  assert_int_equal(json_array_size(j), 1);
  json_t *one = json_array_get(j, 0);
  assert_int_equal(json_integer_value(json_object_get(one, "EventSensorType")), 15);
  assert_int_equal(json_integer_value(json_object_get(one, "Entity")), 34);
  assert_string_equal(json_string_value(json_object_get(one, "EntityStr")), dmt_event_entity_name(34));
  assert_int_equal(json_array_size(json_object_get(one, "EventData")), 8);
  assert_string_equal(json_string_value(json_object_get(one, "TimeStamp")), "2023-11-14T22:13:20.000Z");
  json_decref(j);
  dmt_buf_free(&raw);
  dmt_buf_free(&b64a);
  dmt_buf_free(&b64b);
  free_trees();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_return_value),    cmocka_unit_test(test_power_state), cmocka_unit_test(test_capabilities),
      cmocka_unit_test(test_version_entries), cmocka_unit_test(test_features),    cmocka_unit_test(test_logs),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
