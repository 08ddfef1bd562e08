/*
 * Tenant isolation, table-driven over every route the bridge serves (EMF
 * mode). Tenant A creates one object of every kind (a connected device,
 * CIRA/802.1x/wireless/proxy configs, a domain, a profile referencing them)
 * and snapshots them; then tenant B calls every route with A's names and
 * GUID. For each call: the exact status (404 for A's objects, B's own empty
 * lists, 400 when B references A's objects), and no A marker in the answer
 * unless B itself sent it. Afterwards A's objects are byte-for-byte unchanged
 * (versions included) and not one command reached A's device topics. The
 * table must cover every route: a route added without a row fails the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge.h"
#include "bridge_fixture.h"
#include "dmt/log.h"
#include "dmt/mqtt.h"
#include "dmt/tls.h"
#include "harness.h"
#include "jwtkit.h"

#define TA "7a000000-0000-4000-8000-0000000000a1"
#define TB "7b000000-0000-4000-8000-0000000000b2"
#define GA "a1a1a1a1-0000-4000-8000-000000000001"

static struct jwtkit_key key;
static struct bt_bridge br;
static char *dsn, *dir, *tok_a, *tok_b, *pfx, *cert64;
static struct dmt_workq obs_q;
static struct dmt_mqtt *observer;
static int commands_seen;
static const struct dmt_log lg = {.out = NULL, .min = DMT_LOG_WARN, .component = "observer"};

static const char *const markers[] = {GA, "tenantAcira", "tenantA8021x", "tenantAwifi", "tenantAproxy",
                                      "tenantAdomain", "tenantAprofile", "tenantA-tag", "tenantA-host", "tenanta"};

static void on_cmd(void *ud, const struct dmt_mqtt_msg *m) {
  fprintf(stderr, "command published: %s\n", m->topic);
  commands_seen++;
}

static json_t *as(const char *token, const char *tenant, const char *method, const char *path, const char *body,
                  int status, char **raw) {
  struct bt_response r;
  assert_int_equal(bt_http(br.mps_port, method, path, bt_auth_headers(token, tenant), body, body ? strlen(body) : 0, &r), 0);
  if (r.status != status) {
    char got[512];
    snprintf(got, sizeof got, "%d %s", r.status, r.body);
    bt_response_free(&r);
    fail_msg("%s %s as %s: got %s, want %d", method, path, tenant, got, status);
  }
  json_t *j = bt_json(&r);
  if (raw) *raw = strdup(r.body);
  bt_response_free(&r);
  return j;
}

#define CIRA(name) \
  "{\"configName\":\"" name "\",\"mpsServerAddress\":\"192.168.8.50\",\"mpsPort\":4433,\"username\":\"admin\",\"commonName\":\"192.168.8.50\",\"serverAddressFormat\":3,\"authMethod\":2,\"mpsRootCertificate\":\"x\"}"
#define IEEE(name, wired) \
  "{\"profileName\":\"" name "\",\"authenticationProtocol\":0,\"pxeTimeout\":120,\"wiredInterface\":" wired "}"
#define WIFI(name) \
  "{\"profileName\":\"" name "\",\"authenticationMethod\":4,\"encryptionMethod\":4,\"ssid\":\"s\",\"pskPassphrase\":\"Intel@123\",\"linkPolicy\":[14]}"
#define PROXY(name) \
  "{\"name\":\"" name "\",\"address\":\"www.tenanta-proxy.com\",\"port\":8080,\"networkDnsSuffix\":\"intel.com\"}"
#define PROFILE(name, cira)                                                                                         \
  "{\"profileName\":\"" name "\",\"activation\":\"ccmactivate\",\"generateRandomPassword\":true,"                 \
  "\"generateRandomMEBxPassword\":true,\"dhcpEnabled\":true,\"ciraConfigName\":\"" cira "\",\"wifiConfigs\":"      \
  "[{\"profileName\":\"tenantAwifi\",\"priority\":1}],\"proxyConfigs\":[{\"name\":\"tenantAproxy\",\"priority\":1}],"\
  "\"ieee8021xProfileName\":\"tenantA8021x\"}"

static char domain_body[16384], domain_b_body[16384], cert_body[8192];

/* A's objects as A sees them before B starts: compared byte for byte afterwards. */
static const char *const snapshot_paths[] = {
    "/api/v1/devices/" GA, "/api/v1/admin/ciraconfigs/tenantAcira", "/api/v1/admin/ieee8021xconfigs/tenantA8021x",
    "/api/v1/admin/wirelessconfigs/tenantAwifi", "/api/v1/admin/proxyconfigs/tenantAproxy",
    "/api/v1/admin/domains/tenantAdomain", "/api/v1/admin/profiles/tenantAprofile"};
#define NSNAP (sizeof snapshot_paths / sizeof snapshot_paths[0])
static char *snapshot[NSNAP];

static int setup(void **state) {
  if (jwtkit_key_new(&key, "kc-t", 2048)) return -1;
  dsn = dmt_test_pg_create_db("bridge_tenancy");
  dir = dmt_test_tmpdir("bridge-tenancy");
  if (bt_bridge_start(&br, dsn, dmt_test_secrets_key(), dir, bt_emf_args(&key, dir)) != 0) return -1;
  tok_a = bt_token(&key, TA "_im-rw", 3600);
  tok_b = bt_token(&key, TB "_im-rw", 3600);
  pfx = bt_make_pfx("prov.tenanta.com", "P@ssw0rd");
  snprintf(domain_body, sizeof domain_body,
           "{\"profileName\":\"tenantAdomain\",\"domainSuffix\":\"tenanta.com\",\"provisioningCert\":\"%s\","
           "\"provisioningCertStorageFormat\":\"raw\",\"provisioningCertPassword\":\"P@ssw0rd\"}", pfx);
  snprintf(domain_b_body, sizeof domain_b_body,
           "{\"profileName\":\"tenantBdomain\",\"domainSuffix\":\"tenanta.com\",\"provisioningCert\":\"%s\","
           "\"provisioningCertStorageFormat\":\"raw\",\"provisioningCertPassword\":\"P@ssw0rd\"}", pfx);
  /* a valid certificate for the AMT certificate-upload route */
  char err[256];
  EVP_PKEY *k = dmt_tls_rsa_key(2048);
  struct dmt_cert_spec cs = {.common_name = "upload", .days_before = 1, .days_valid = 30};
  X509 *x = dmt_tls_issue(&cs, k, NULL, NULL, err, sizeof err);
  unsigned char *der = NULL;
  int n = i2d_X509(x, &der);
  cert64 = malloc((size_t)n * 2 + 4);
  EVP_EncodeBlock((unsigned char *)cert64, der, n);
  OPENSSL_free(der);
  X509_free(x);
  EVP_PKEY_free(k);
  snprintf(cert_body, sizeof cert_body, "{\"cert\":\"%s\",\"isTrusted\":true}", cert64);

  /* tenant A's world */
  json_decref(as(tok_a, TA, "POST", "/api/v1/devices",
                 "{\"guid\":\"" GA "\",\"hostname\":\"tenantA-host\",\"tags\":[\"tenantA-tag\"]}", 201, NULL));
  bt_sql(dsn, "UPDATE dmt.devices SET connection_status = true, mps_instance = 'cira-a' WHERE guid = '" GA "'");
  json_decref(as(tok_a, TA, "POST", "/api/v1/admin/ciraconfigs", CIRA("tenantAcira"), 201, NULL));
  json_decref(as(tok_a, TA, "POST", "/api/v1/admin/ieee8021xconfigs", IEEE("tenantA8021x", "true"), 201, NULL));
  json_decref(as(tok_a, TA, "POST", "/api/v1/admin/ieee8021xconfigs", IEEE("tenantA8021xw", "false"), 201, NULL));
  json_decref(as(tok_a, TA, "POST", "/api/v1/admin/wirelessconfigs", WIFI("tenantAwifi"), 201, NULL));
  json_decref(as(tok_a, TA, "POST", "/api/v1/admin/proxyconfigs", PROXY("tenantAproxy"), 201, NULL));
  json_decref(as(tok_a, TA, "POST", "/api/v1/admin/domains", domain_body, 201, NULL));
  json_decref(as(tok_a, TA, "POST", "/api/v1/admin/profiles", PROFILE("tenantAprofile", "tenantAcira"), 201, NULL));
  for (size_t i = 0; i < NSNAP; i++) json_decref(as(tok_a, TA, "GET", snapshot_paths[i], NULL, 200, &snapshot[i]));

  /* a service-wide observer of every device command topic */
  dmt_workq_init(&obs_q, NULL, NULL);
  char id[64];
  snprintf(id, sizeof id, "tenancy-observer-%d", (int)getpid());
  struct dmt_mqtt_opts o = {.url = dmt_test_mqtt_url(), .client_id = id, .log = &lg, .owner = &obs_q, .on_message = on_cmd};
  observer = dmt_mqtt_new(&o, err, sizeof err);
  dmt_mqtt_subscribe(observer, "dmt/v1/+/devices/+/cmd/#", 1);
  dmt_mqtt_start(observer);
  sleep(1);
  return 0;
}

static int teardown(void **state) {
  int rc = bt_bridge_stop(&br);
  dmt_mqtt_free(observer);
  dmt_workq_destroy(&obs_q);
  for (size_t i = 0; i < NSNAP; i++) free(snapshot[i]);
  jwtkit_key_free(&key);
  free(tok_a);
  free(tok_b);
  free(pfx);
  free(cert64);
  free(dsn);
  free(dir);
  return rc == 0 ? 0 : -1;
}

struct tcase {
  unsigned method;
  const char *pattern; /* the route, as in the route table */
  const char *path;    /* the request, with A's names and GUID */
  const char *body;
  int status;          /* what B must get */
};

#define AMT(m, p, body) {m, "/api/v1/amt/" p ":guid", "/api/v1/amt/" p GA, body, 404}
#define V1 "{\"version\":\"1\""
static struct tcase cases[] = {
    /* service routes: no tenant data */
    {BR_M_GET, "/api/v1/health", "/api/v1/health", NULL, 200},
    {BR_M_GET, "/api/v1/admin/health", "/api/v1/admin/health", NULL, 200},
    {BR_M_GET, "/api/v1/version", "/api/v1/version", NULL, 200},
    {BR_M_GET, "/api/v1/admin/version", "/api/v1/admin/version", NULL, 200},
    {BR_M_GET, "/api/v1/admin", "/api/v1/admin", NULL, 200},
    {BR_M_GET, "/api/v1/ciracert", "/api/v1/ciracert", NULL, 500}, /* no terminator has made the CA here */
    {BR_M_POST, "/api/v1/authorize", "/api/v1/authorize", "{\"username\":\"u\",\"password\":\"p\"}", 405},
    {BR_M_GET, "/api/v1/authorize/redirection/:guid", "/api/v1/authorize/redirection/" GA, NULL, 404},
    /* devices */
    {BR_M_GET, "/api/v1/devices", "/api/v1/devices?$count=true", NULL, 200},
    {BR_M_GET, "/api/v1/devices/stats", "/api/v1/devices/stats", NULL, 200},
    {BR_M_GET, "/api/v1/devices/tags", "/api/v1/devices/tags", NULL, 200},
    {BR_M_GET, "/api/v1/devices/redirectstatus/:guid", "/api/v1/devices/redirectstatus/" GA, NULL, 404},
    {BR_M_GET, "/api/v1/devices/:guid", "/api/v1/devices/" GA, NULL, 404},
    /* a GUID names one physical device: B cannot take A's (refused, A's row untouched) */
    {BR_M_POST, "/api/v1/devices", "/api/v1/devices", "{\"guid\":\"" GA "\",\"hostname\":\"hijack\"}", 400},
    {BR_M_PATCH, "/api/v1/devices", "/api/v1/devices", "{\"guid\":\"" GA "\",\"hostname\":\"hijack\"}", 404},
    {BR_M_DELETE, "/api/v1/devices/refresh/:guid", "/api/v1/devices/refresh/" GA, NULL, 404},
    {BR_M_DELETE, "/api/v1/devices/disconnect/:guid", "/api/v1/devices/disconnect/" GA, NULL, 404},
    {BR_M_DELETE, "/api/v1/devices/:guid", "/api/v1/devices/" GA, NULL, 404},
    {BR_M_GET, "/api/v1/events", "/api/v1/events?$count=true", NULL, 200},
    /* device commands: A's device is connected, but not in B */
    AMT(BR_M_GET, "log/audit/", NULL),
    AMT(BR_M_GET, "log/event/", NULL),
    AMT(BR_M_GET, "generalSettings/", NULL),
    AMT(BR_M_GET, "hardwareInfo/", NULL),
    AMT(BR_M_POST, "power/action/", "{\"action\":8,\"useSOL\":false}"),
    AMT(BR_M_POST, "power/bootOptions/", "{\"action\":100,\"useSOL\":false}"),
    AMT(BR_M_GET, "power/capabilities/", NULL),
    AMT(BR_M_GET, "power/state/", NULL),
    AMT(BR_M_GET, "power/bootSources/", NULL),
    AMT(BR_M_GET, "features/", NULL),
    AMT(BR_M_POST, "features/", "{\"userConsent\":\"none\",\"enableSOL\":false,\"enableIDER\":false,\"enableKVM\":false}"),
    AMT(BR_M_GET, "boot/capabilities/", NULL),
    AMT(BR_M_POST, "boot/rpe/", "{}"),
    AMT(BR_M_POST, "rpe/", "{}"),
    AMT(BR_M_GET, "boot/remoteErase/", NULL),
    AMT(BR_M_POST, "boot/remoteErase/", "{}"),
    AMT(BR_M_GET, "version/", NULL),
    AMT(BR_M_DELETE, "deactivate/", NULL),
    AMT(BR_M_GET, "userConsentCode/cancel/", NULL),
    AMT(BR_M_GET, "userConsentCode/", NULL),
    AMT(BR_M_POST, "userConsentCode/", "{\"consentCode\":123456}"),
    AMT(BR_M_GET, "alarmOccurrences/", NULL),
    AMT(BR_M_POST, "alarmOccurrences/", "{}"),
    AMT(BR_M_DELETE, "alarmOccurrences/", "{}"),
    AMT(BR_M_GET, "certificates/", NULL),
    AMT(BR_M_POST, "certificates/", cert_body),
    {BR_M_DELETE, "/api/v1/amt/certificates/:guid/:instanceId", "/api/v1/amt/certificates/" GA "/inst-1", NULL, 404},
    AMT(BR_M_GET, "kvm/displays/", NULL),
    AMT(BR_M_PUT, "kvm/displays/", "{\"displayIndex\":0}"),
    AMT(BR_M_POST, "network/linkPreference/", "{\"linkPreference\":1,\"timeout\":300}"),
    AMT(BR_M_GET, "networkSettings/", NULL),
    AMT(BR_M_GET, "networkSettings/wired/", NULL),
    AMT(BR_M_PATCH, "networkSettings/wired/", "{\"dhcpEnabled\":true}"),
    AMT(BR_M_GET, "networkSettings/wireless/state/", NULL),
    AMT(BR_M_POST, "networkSettings/wireless/state/", "{\"state\":\"WifiEnabledS0\"}"),
    AMT(BR_M_GET, "networkSettings/wireless/profileSync/", NULL),
    AMT(BR_M_POST, "networkSettings/wireless/profileSync/", "{\"localProfileSync\":true}"),
    AMT(BR_M_GET, "networkSettings/wireless/profile/", NULL),
    AMT(BR_M_POST, "networkSettings/wireless/profile/", "{\"profileName\":\"home\",\"ssid\":\"s\",\"priority\":1}"),
    AMT(BR_M_PATCH, "networkSettings/wireless/profile/", "{\"profileName\":\"home\",\"ssid\":\"s\",\"priority\":1}"),
    {BR_M_DELETE, "/api/v1/amt/networkSettings/wireless/profile/:guid/:profileName",
     "/api/v1/amt/networkSettings/wireless/profile/" GA "/home", NULL, 404},
    /* RPS objects: B sees an empty world, cannot touch A's, cannot reference A's */
    {BR_M_GET, "/api/v1/admin/ciraconfigs", "/api/v1/admin/ciraconfigs?$count=true", NULL, 200},
    {BR_M_GET, "/api/v1/admin/ciraconfigs/:ciraConfigName", "/api/v1/admin/ciraconfigs/tenantAcira", NULL, 404},
    {BR_M_POST, "/api/v1/admin/ciraconfigs", "/api/v1/admin/ciraconfigs", CIRA("tenantBcira"), 201},
    {BR_M_PATCH, "/api/v1/admin/ciraconfigs", "/api/v1/admin/ciraconfigs", "{\"configName\":\"tenantAcira\",\"mpsPort\":5000}", 404},
    {BR_M_DELETE, "/api/v1/admin/ciraconfigs/:ciraConfigName", "/api/v1/admin/ciraconfigs/tenantAcira", NULL, 404},
    {BR_M_GET, "/api/v1/admin/ieee8021xconfigs", "/api/v1/admin/ieee8021xconfigs", NULL, 200},
    {BR_M_GET, "/api/v1/admin/ieee8021xconfigs/:profileName", "/api/v1/admin/ieee8021xconfigs/tenantA8021x", NULL, 404},
    {BR_M_POST, "/api/v1/admin/ieee8021xconfigs", "/api/v1/admin/ieee8021xconfigs", IEEE("tenantB8021x", "true"), 201},
    {BR_M_PATCH, "/api/v1/admin/ieee8021xconfigs", "/api/v1/admin/ieee8021xconfigs",
     "{\"profileName\":\"tenantA8021x\",\"authenticationProtocol\":0,\"pxeTimeout\":1,\"wiredInterface\":true,\"version\":\"1\"}", 404},
    {BR_M_DELETE, "/api/v1/admin/ieee8021xconfigs/:profileName", "/api/v1/admin/ieee8021xconfigs/tenantA8021x", NULL, 404},
    {BR_M_GET, "/api/v1/admin/wirelessconfigs", "/api/v1/admin/wirelessconfigs", NULL, 200},
    {BR_M_GET, "/api/v1/admin/wirelessconfigs/:profileName", "/api/v1/admin/wirelessconfigs/tenantAwifi", NULL, 404},
    /* referencing A's 802.1x profile from B: it does not exist for B */
    {BR_M_POST, "/api/v1/admin/wirelessconfigs", "/api/v1/admin/wirelessconfigs",
     "{\"profileName\":\"tenantBwifi\",\"authenticationMethod\":5,\"encryptionMethod\":4,\"ssid\":\"s\",\"ieee8021xProfileName\":\"tenantA8021xw\"}", 400},
    {BR_M_PATCH, "/api/v1/admin/wirelessconfigs", "/api/v1/admin/wirelessconfigs",
     "{\"profileName\":\"tenantAwifi\",\"authenticationMethod\":4,\"encryptionMethod\":4,\"ssid\":\"x\",\"pskPassphrase\":\"Intel@123\",\"version\":\"1\"}", 404},
    {BR_M_DELETE, "/api/v1/admin/wirelessconfigs/:profileName", "/api/v1/admin/wirelessconfigs/tenantAwifi", NULL, 404},
    {BR_M_GET, "/api/v1/admin/proxyconfigs", "/api/v1/admin/proxyconfigs", NULL, 200},
    {BR_M_GET, "/api/v1/admin/proxyconfigs/:name", "/api/v1/admin/proxyconfigs/tenantAproxy", NULL, 404},
    /* same address and port as A's: unique per tenant only */
    {BR_M_POST, "/api/v1/admin/proxyconfigs", "/api/v1/admin/proxyconfigs",
     "{\"name\":\"tenantBproxy\",\"address\":\"www.tenanta-proxy.com\",\"port\":8080,\"networkDnsSuffix\":\"intel.com\"}", 201},
    {BR_M_PATCH, "/api/v1/admin/proxyconfigs", "/api/v1/admin/proxyconfigs",
     "{\"name\":\"tenantAproxy\",\"address\":\"www.other.com\",\"port\":1,\"networkDnsSuffix\":\"intel.com\"}", 404},
    {BR_M_DELETE, "/api/v1/admin/proxyconfigs/:name", "/api/v1/admin/proxyconfigs/tenantAproxy", NULL, 404},
    {BR_M_GET, "/api/v1/admin/domains", "/api/v1/admin/domains", NULL, 200},
    {BR_M_GET, "/api/v1/admin/domains/:domainName", "/api/v1/admin/domains/tenantAdomain", NULL, 404},
    /* the same suffix (and certificate) in another tenant is that tenant's own domain */
    {BR_M_POST, "/api/v1/admin/domains", "/api/v1/admin/domains", domain_b_body, 201},
    {BR_M_PATCH, "/api/v1/admin/domains", "/api/v1/admin/domains",
     "{\"profileName\":\"tenantAdomain\",\"domainSuffix\":\"x.com\",\"provisioningCertStorageFormat\":\"raw\",\"version\":\"1\"}", 404},
    {BR_M_DELETE, "/api/v1/admin/domains/:domainName", "/api/v1/admin/domains/tenantAdomain", NULL, 404},
    {BR_M_GET, "/api/v1/admin/profiles", "/api/v1/admin/profiles", NULL, 200},
    {BR_M_GET, "/api/v1/admin/profiles/:profileName", "/api/v1/admin/profiles/tenantAprofile", NULL, 404},
    /* B's profile naming A's CIRA config, wifi, proxy and 802.1x profiles: none exists for B */
    {BR_M_POST, "/api/v1/admin/profiles", "/api/v1/admin/profiles", PROFILE("tenantBprofile", "tenantAcira"), 400},
    {BR_M_PATCH, "/api/v1/admin/profiles", "/api/v1/admin/profiles",
     "{\"profileName\":\"tenantAprofile\",\"activation\":\"ccmactivate\",\"generateRandomPassword\":true,\"version\":\"1\"}", 404},
    {BR_M_DELETE, "/api/v1/admin/profiles/:profileName", "/api/v1/admin/profiles/tenantAprofile", NULL, 404},
};
#define NCASES (sizeof cases / sizeof cases[0])

struct coverage {
  size_t missing;
};

static void check_covered(const struct br_route *r, void *ud) {
  struct coverage *cv = ud;
  for (unsigned m = 1; m <= BR_M_OTHER; m <<= 1) {
    if (!(r->methods & m)) continue;
    bool found = false;
    for (size_t i = 0; i < NCASES && !found; i++) found = cases[i].method == m && !strcmp(cases[i].pattern, r->pattern);
    if (!found) {
      fprintf(stderr, "no tenancy case for %s %s\n", br_method_name(m), r->pattern);
      cv->missing++;
    }
  }
}

static void test_every_route_is_in_the_table(void **state) {
  struct coverage cv = {0};
  br_routes_foreach(check_covered, &cv);
  assert_int_equal(cv.missing, 0);
}

static void test_tenant_b_cannot_see_change_or_command_tenant_a(void **state) {
  for (size_t i = 0; i < NCASES; i++) {
    const struct tcase *c = &cases[i];
    char *raw = NULL;
    json_decref(as(tok_b, TB, br_method_name(c->method), c->path, c->body, c->status, &raw));
    for (size_t k = 0; k < sizeof markers / sizeof markers[0]; k++) {
      bool sent = strstr(c->path, markers[k]) || (c->body && strstr(c->body, markers[k]));
      if (!sent && strstr(raw, markers[k]))
        fail_msg("%s %s as B leaked \"%s\": %s", br_method_name(c->method), c->path, markers[k], raw);
    }
    free(raw);
  }
  /* A's world is exactly as it was, versions included */
  for (size_t i = 0; i < NSNAP; i++) {
    char *now = NULL;
    json_decref(as(tok_a, TA, "GET", snapshot_paths[i], NULL, 200, &now));
    assert_string_equal(now, snapshot[i]);
    free(now);
  }
  /* no command was ever published for any device */
  usleep(300000);
  dmt_workq_run(&obs_q);
  assert_int_equal(commands_seen, 0);
  /* and B's own objects stay B's */
  char *raw = NULL;
  json_t *j = as(tok_a, TA, "GET", "/api/v1/admin/ciraconfigs", NULL, 200, &raw);
  assert_int_equal(json_array_size(j), 1);
  assert_null(strstr(raw, "tenantB"));
  json_decref(j);
  free(raw);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_route_is_in_the_table),
      cmocka_unit_test(test_tenant_b_cannot_see_change_or_command_tenant_a),
  };
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_need_env("DMT_TEST_MQTT_URL");
  return cmocka_run_group_tests(tests, setup, teardown);
}
