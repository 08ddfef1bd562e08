/*
 * WS-Man envelopes: requests as DMT builds them (rps-activation.md §1.6),
 * the AMT side parsing them and answering, responses turned into DMT-shaped
 * JSON, faults, and hostile XML refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmt/mptree.h"
#include "dmt/wsman.h"

static const char *cstr(struct dmt_buf *b) {
  dmt_buf_append_u8(b, 0);
  b->len--;
  return (const char *)dmt_buf_ptr(b);
}

static void test_get_request_exact(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  assert_int_equal(dmt_wsman_get(&b, "AMT_GeneralSettings", "0", NULL, 0), 0);
  assert_string_equal(
      cstr(&b),
      "<?xml version=\"1.0\" encoding=\"utf-8\"?><Envelope xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
      "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" "
      "xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" xmlns=\"http://www.w3.org/2003/05/soap-envelope\">"
      "<Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action><a:To>/wsman</a:To>"
      "<w:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings</w:ResourceURI>"
      "<a:MessageID>0</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/"
      "anonymous</a:Address></a:ReplyTo><w:OperationTimeout>PT60S</w:OperationTimeout></Header><Body></Body>"
      "</Envelope>");
  dmt_buf_free(&b);
}

static void test_setup_invoke_body(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  struct dmt_wsman_param p[] = {{"NetAdminPassEncryptionType", "2", false},
                                {"NetworkAdminPassword", "8e3d887ccb6e62e6e2d06427617fcc1c", false}};
  assert_int_equal(dmt_wsman_invoke(&b, "IPS_HostBasedSetupService", "Setup", "3", NULL, 0, p, 2), 0);
  const char *s = cstr(&b);
  assert_non_null(strstr(s, "<a:Action>http://intel.com/wbem/wscim/1/ips-schema/1/IPS_HostBasedSetupService/Setup</a:Action>"));
  assert_non_null(strstr(s, "<Body><h:Setup_INPUT xmlns:h=\"http://intel.com/wbem/wscim/1/ips-schema/1/"
                            "IPS_HostBasedSetupService\"><h:NetAdminPassEncryptionType>2</h:NetAdminPassEncryptionType>"
                            "<h:NetworkAdminPassword>8e3d887ccb6e62e6e2d06427617fcc1c</h:NetworkAdminPassword>"
                            "</h:Setup_INPUT></Body></Envelope>"));
  dmt_buf_free(&b);
  assert_int_equal(dmt_wsman_invoke(&b, "XYZ_Unknown", "M", "1", NULL, 0, NULL, 0), -1);
}

/* EPR parameters and EPR-valued selectors (AddRemoteAccessPolicyRule, RemoteAccessPolicyAppliesToMPS Put). */
static void test_epr_param_and_selector(void **state) {
  struct dmt_buf epr, b;
  dmt_buf_init(&epr, 0);
  dmt_buf_init(&b, 0);
  struct dmt_wsman_selector sap[] = {{"Name", "Intel(r) AMT:Management Presence Server 0"}};
  assert_int_equal(dmt_wsman_epr(&epr, "AMT_ManagementPresenceRemoteSAP", sap, 1), 0);
  const char *e = cstr(&epr);
  assert_string_equal(e, "<a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address>"
                         "<a:ReferenceParameters><w:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/"
                         "AMT_ManagementPresenceRemoteSAP</w:ResourceURI><w:SelectorSet><w:Selector Name=\"Name\">"
                         "Intel(r) AMT:Management Presence Server 0</w:Selector></w:SelectorSet>"
                         "</a:ReferenceParameters>");
  struct dmt_wsman_param p[] = {{"Trigger", "2", false}, {"MpServer", e, true}};
  assert_int_equal(dmt_wsman_invoke(&b, "AMT_RemoteAccessService", "AddRemoteAccessPolicyRule", "7", NULL, 0, p, 2), 0);
  /* the request is well-formed XML the AMT side can parse, with the EPR kept as structure */
  struct dmt_wsman_request w;
  char err[256];
  const char *s = cstr(&b);
  assert_int_equal(dmt_wsman_parse_request(s, strlen(s), &w, err, sizeof err), 0);
  assert_string_equal(w.method, "AddRemoteAccessPolicyRule");
  const char *mp = dmt_wsman_request_param(&w, "MpServer");
  assert_non_null(mp);
  assert_non_null(strstr(mp, "Management Presence Server 0"));
  dmt_wsman_request_free(&w);
  /* EPR-valued selectors in a Put's header */
  dmt_buf_reset(&b);
  struct dmt_buf sels;
  dmt_buf_init(&sels, 0);
  struct dmt_wsman_selector rule[] = {{"PolicyRuleName", "Periodic"}};
  assert_int_equal(dmt_wsman_selector_epr(&sels, "ManagedElement", "AMT_ManagementPresenceRemoteSAP", sap, 1), 0);
  assert_int_equal(dmt_wsman_selector_epr(&sels, "PolicySet", "AMT_RemoteAccessPolicyRule", rule, 1), 0);
  struct dmt_wsman_param props[] = {{"MpsType", "2", false}, {"OrderOfAccess", "0", false}};
  assert_int_equal(dmt_wsman_put_xml_selectors(&b, "AMT_RemoteAccessPolicyAppliesToMPS", "8", cstr(&sels), props, 2), 0);
  s = cstr(&b);
  assert_non_null(strstr(s, "<w:OperationTimeout>PT60S</w:OperationTimeout><w:SelectorSet><w:Selector "
                            "Name=\"ManagedElement\"><a:EndpointReference><a:Address>"));
  assert_non_null(strstr(s, "</w:SelectorSet></Header><Body><h:AMT_RemoteAccessPolicyAppliesToMPS xmlns:h="));
  assert_non_null(strstr(s, "<h:MpsType>2</h:MpsType><h:OrderOfAccess>0</h:OrderOfAccess>"));
  assert_int_equal(dmt_wsman_parse_request(s, strlen(s), &w, err, sizeof err), 0);
  assert_int_equal(w.op, DMT_WSMAN_OP_PUT);
  assert_int_equal(w.nselectors, 2);
  dmt_wsman_request_free(&w);
  dmt_buf_free(&sels);
  assert_int_equal(dmt_wsman_epr(&epr, "XYZ_Nope", NULL, 0), -1);
  dmt_buf_free(&epr);
  dmt_buf_free(&b);
}

static void test_server_parses_and_answers(void **state) {
  struct dmt_buf req, resp;
  dmt_buf_init(&req, 0);
  dmt_buf_init(&resp, 0);
  struct dmt_wsman_selector sel[] = {{"Name", "Intel(r) AMT Power Management Service"}};
  struct dmt_wsman_param p[] = {{"PowerState", "8", false},
                                {"ManagedElement", "<Address xmlns=\"x\">http://a</Address>", true}};
  dmt_wsman_invoke(&req, "CIM_PowerManagementService", "RequestPowerStateChange", "7", sel, 1, p, 2);
  struct dmt_wsman_request r;
  char err[256];
  assert_int_equal(dmt_wsman_parse_request((const char *)dmt_buf_ptr(&req), dmt_buf_size(&req), &r, err, sizeof err), 0);
  assert_int_equal(r.op, DMT_WSMAN_OP_INVOKE);
  assert_string_equal(r.class_name, "CIM_PowerManagementService");
  assert_string_equal(r.method, "RequestPowerStateChange");
  assert_string_equal(r.message_id, "7");
  assert_string_equal(dmt_wsman_request_selector(&r, "Name"), "Intel(r) AMT Power Management Service");
  assert_string_equal(dmt_wsman_request_param(&r, "PowerState"), "8");
  assert_string_equal(dmt_wsman_request_param(&r, "ManagedElement"), "http://a");
  assert_int_equal(dmt_wsman_build_response(&resp, &r, 0x2a,
                                            "<g:RequestPowerStateChange_OUTPUT><g:ReturnValue>0</g:ReturnValue>"
                                            "</g:RequestPowerStateChange_OUTPUT>"), 0);
  struct dmt_wsman_response out;
  assert_int_equal(dmt_wsman_parse_response((const char *)dmt_buf_ptr(&resp), dmt_buf_size(&resp), &out, err, sizeof err), 0);
  assert_string_equal(out.relates_to, "7");
  assert_string_equal(out.message_id, "uuid:00000000-8086-8086-8086-00000000002A");
  assert_string_equal(out.action, "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PowerManagementService/"
                                  "RequestPowerStateChangeResponse");
  assert_false(out.is_fault);
  json_t *j = dmt_mp_buf_to_json(out.tree.data, out.tree.size);
  json_t *rv = json_object_get(json_object_get(json_object_get(j, "Body"), "RequestPowerStateChange_OUTPUT"), "ReturnValue");
  assert_true(json_is_integer(rv));
  assert_int_equal(json_integer_value(rv), 0);
  /* xml2js parseNumbers: DMT's JSON carries RelatesTo 7 as a number, and so do we. */
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "Header"), "RelatesTo")), 7);
  json_decref(j);
  dmt_wsman_response_free(&out);
  dmt_wsman_request_free(&r);
  dmt_buf_free(&req);
  dmt_buf_free(&resp);
}

static const char *pull_response =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a:Envelope xmlns:a=\"http://www.w3.org/2003/05/soap-envelope\" "
    "xmlns:b=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" xmlns:g=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\" "
    "xmlns:h=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_SoftwareIdentity\"><a:Header>"
    "<b:RelatesTo>2</b:RelatesTo><b:Action a:mustUnderstand=\"true\">http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse</b:Action>"
    "</a:Header><a:Body><g:PullResponse><g:Items>"
    "<h:CIM_SoftwareIdentity><h:InstanceID>Flash</h:InstanceID><h:IsEntity>true</h:IsEntity><h:VersionString>16.1.27</h:VersionString></h:CIM_SoftwareIdentity>"
    "<h:CIM_SoftwareIdentity><h:InstanceID>Build Number</h:InstanceID><h:IsEntity>true</h:IsEntity><h:VersionString>2225</h:VersionString></h:CIM_SoftwareIdentity>"
    "<h:CIM_SoftwareIdentity><h:InstanceID>Sku</h:InstanceID><h:IsEntity>true</h:IsEntity><h:VersionString>16392</h:VersionString><h:Empty/></h:CIM_SoftwareIdentity>"
    "</g:Items><g:EndOfSequence></g:EndOfSequence></g:PullResponse></a:Body></a:Envelope>";

static void test_pull_items_become_array(void **state) {
  struct dmt_wsman_response r;
  char err[256];
  assert_int_equal(dmt_wsman_parse_response(pull_response, strlen(pull_response), &r, err, sizeof err), 0);
  assert_true(r.end_of_sequence);
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  assert_int_equal(msgpack_unpack_next(&up, r.tree.data, r.tree.size, &off), MSGPACK_UNPACK_SUCCESS);
  const msgpack_object *items = dmt_mp_path(&up.data, "Body.PullResponse.Items.CIM_SoftwareIdentity");
  assert_int_equal(dmt_mp_list_len(items), 3);
  char text[64];
  assert_true(dmt_mp_text(dmt_mp_path(&up.data, "Body.PullResponse.Items.CIM_SoftwareIdentity[0].VersionString"), text, sizeof text));
  assert_string_equal(text, "16.1.27"); /* not a number: stays text */
  int64_t sku;
  assert_true(dmt_mp_int(dmt_mp_get(dmt_mp_list_at(items, 2), "VersionString"), &sku));
  assert_int_equal(sku, 16392);
  assert_int_equal(dmt_mp_get(dmt_mp_list_at(items, 2), "VersionString")->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
  assert_int_equal(dmt_mp_get(dmt_mp_list_at(items, 0), "IsEntity")->type, MSGPACK_OBJECT_BOOLEAN);
  const msgpack_object *empty = dmt_mp_get(dmt_mp_list_at(items, 2), "Empty");
  assert_int_equal(empty->type, MSGPACK_OBJECT_STR);
  assert_int_equal(empty->via.str.size, 0);
  assert_null(dmt_mp_path(&up.data, "Body.Nope"));
  assert_null(dmt_mp_path(&up.data, "Body.PullResponse.Items.CIM_SoftwareIdentity[3]"));
  msgpack_unpacked_destroy(&up);
  dmt_wsman_response_free(&r);
}

static void test_fault_round_trip(void **state) {
  struct dmt_buf req, resp;
  dmt_buf_init(&req, 0);
  dmt_buf_init(&resp, 0);
  dmt_wsman_get(&req, "CIM_Chip", "5", NULL, 0);
  struct dmt_wsman_request r;
  char err[256];
  assert_int_equal(dmt_wsman_parse_request((const char *)dmt_buf_ptr(&req), dmt_buf_size(&req), &r, err, sizeof err), 0);
  assert_int_equal(r.op, DMT_WSMAN_OP_GET);
  assert_int_equal(dmt_wsman_build_fault(&resp, &r, 1, "a:Sender", "b:DestinationUnreachable",
                                         "No route can be determined to reach the destination role defined by the "
                                         "WS-Addressing To."), 0);
  struct dmt_wsman_response out;
  assert_int_equal(dmt_wsman_parse_response((const char *)dmt_buf_ptr(&resp), dmt_buf_size(&resp), &out, err, sizeof err), 0);
  assert_true(out.is_fault);
  assert_string_equal(out.fault_code, "a:Sender");
  assert_string_equal(out.fault_subcode, "b:DestinationUnreachable");
  assert_non_null(strstr(out.fault_reason, "No route can be determined"));
  assert_string_equal(out.relates_to, "5");
  dmt_wsman_response_free(&out);
  dmt_wsman_request_free(&r);
  dmt_buf_free(&req);
  dmt_buf_free(&resp);
}

static int parse_resp(const char *xml, char *err, size_t errlen) {
  struct dmt_wsman_response r;
  int rc = dmt_wsman_parse_response(xml, strlen(xml), &r, err, errlen);
  dmt_wsman_response_free(&r);
  return rc;
}

static void test_hostile_xml(void **state) {
  char err[256];
  const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE e [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
                    "<Envelope><Body><a>&x;</a></Body></Envelope>";
  assert_int_equal(parse_resp(xxe, err, sizeof err), -1);
  const char *lol = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">"
                    "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;\">]>"
                    "<Envelope><Body><a>&d;&d;&d;&d;</a></Body></Envelope>";
  assert_int_equal(parse_resp(lol, err, sizeof err), -1);
  assert_int_equal(parse_resp("<!DOCTYPE e><Envelope><Body/></Envelope>", err, sizeof err), -1);
  assert_non_null(strstr(err, "DTD"));
  char deep[4096] = "<Envelope><Body>";
  for (int i = 0; i < 100; i++) strcat(deep, "<x>");
  for (int i = 0; i < 100; i++) strcat(deep, "</x>");
  strcat(deep, "</Body></Envelope>");
  assert_int_equal(parse_resp(deep, err, sizeof err), -1);
  assert_non_null(strstr(err, "deeper"));
  assert_int_equal(parse_resp("<Envelope><Body>", err, sizeof err), -1);
  assert_int_equal(parse_resp("not xml at all", err, sizeof err), -1);
  assert_int_equal(parse_resp("<Other><Body/></Other>", err, sizeof err), -1);
  assert_int_equal(parse_resp("<Envelope><Body><a>\xff\xfe</a></Body></Envelope>", err, sizeof err), -1);
  struct dmt_wsman_request r;
  assert_int_equal(dmt_wsman_parse_request("<Envelope><Header/><Body/></Envelope>", 37, &r, err, sizeof err), -1);
}

static void test_escape(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  dmt_wsman_escape(&b, "a<b>&\"c'");
  assert_string_equal(cstr(&b), "a&lt;b&gt;&amp;&quot;c&apos;");
  dmt_buf_free(&b);
  char uri[256];
  assert_int_equal(dmt_wsman_resource_uri("CIM_Chassis", uri, sizeof uri), 0);
  assert_string_equal(uri, "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_Chassis");
  assert_int_equal(dmt_wsman_resource_uri("Foo", uri, sizeof uri), -1);
}

int main(void) {
  dmt_wsman_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_request_exact),
      cmocka_unit_test(test_setup_invoke_body),
      cmocka_unit_test(test_epr_param_and_selector),
      cmocka_unit_test(test_server_parses_and_answers),
      cmocka_unit_test(test_pull_items_become_array),
      cmocka_unit_test(test_fault_round_trip),
      cmocka_unit_test(test_hostile_xml),
      cmocka_unit_test(test_escape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
