/*
 * RPS admin routes beyond what DMT's collection asserts (EMF mode, one tenant
 * per token): credentials end up only in the secret store under the caller's
 * tenant and DMT's layout (certs/<domain>, profiles/<name>, TLS/<name>,
 * CIRAConfigs/<name>, Wireless/<name>, IEEE8021x/<name>), never in a table
 * column, an event or a response; deleting an object deletes its secrets;
 * every create/update/delete publishes one tenant "config" event and writes
 * the same event to dmt.events, a failed one neither; GET /api/v1/events
 * filters by time range, kind and device and stays within the tenant;
 * optimistic concurrency answers 409, or 412 with If-Match, and 304 for a
 * matching If-None-Match.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "bridge_fixture.h"
#include "dmt/log.h"
#include "dmt/mptree.h"
#include "dmt/mqtt.h"
#include "dmt/payloads.h"
#include "dmt/secrets.h"
#include "dmt/workq.h"
#include "harness.h"
#include "jwtkit.h"

#define TA "7a000000-0000-4000-8000-0000000000a1"
#define TB "7b000000-0000-4000-8000-0000000000b2"
#define DEV_A "d0000000-0000-4000-8000-0000000000a1"
#define DEV_B "d0000000-0000-4000-8000-0000000000b2"

/* credentials posted below: none may appear anywhere but in dmt.secrets (encrypted) */
#define PFX_PW "Pfx#Pass123"
#define AMT_PW "Amt@Pass1234"
#define MPS_PW "Mps@Pass1234"
#define PSK_PW "Psk#Pass1234"
#define IEEE_PW "Ieee#Pass123"
static const char *const credentials[] = {PFX_PW, AMT_PW, MPS_PW, PSK_PW, IEEE_PW};

static struct jwtkit_key key;
static struct bt_bridge br;
static char *dsn, *dir, *tok_a, *tok_b, *pfx, secrets_key[80];
static struct dmt_secrets *store;
static const struct dmt_log lg = {.out = NULL, .min = DMT_LOG_WARN, .component = "test"};

/* ---- an observer of every tenant's config events ---- */

struct seen_event {
  char topic[160], id[40], tenant[80], action[64], outcome[16], requester[256];
  json_t *data;
};
static struct dmt_workq obs_q;
static struct dmt_mqtt *observer;
static struct seen_event events[64];
static size_t nevents;

static void on_event(void *ud, const struct dmt_mqtt_msg *m) {
  struct dmt_event ev;
  char err[256];
  if (nevents >= 64 || dmt_event_decode(m->payload, m->len, &ev, err, sizeof err) != 0) {
    fprintf(stderr, "undecodable event on %s: %s\n", m->topic, err);
    abort();
  }
  struct seen_event *e = &events[nevents++];
  snprintf(e->topic, sizeof e->topic, "%s", m->topic);
  snprintf(e->id, sizeof e->id, "%s", ev.id ? ev.id : "");
  snprintf(e->tenant, sizeof e->tenant, "%s", ev.tenant ? ev.tenant : "");
  snprintf(e->action, sizeof e->action, "%s", ev.action ? ev.action : "");
  snprintf(e->outcome, sizeof e->outcome, "%s", ev.outcome ? ev.outcome : "");
  snprintf(e->requester, sizeof e->requester, "%s", ev.requester ? ev.requester : "");
  e->data = ev.data ? dmt_mp_buf_to_json(ev.data, ev.data_len) : NULL;
  assert_string_equal(ev.kind, "config");
  dmt_event_free(&ev);
}

static void events_reset(void) {
  dmt_workq_run(&obs_q);
  for (size_t i = 0; i < nevents; i++) json_decref(events[i].data);
  nevents = 0;
}

/* Waits for n events (or 3 s); returns how many arrived. */
static size_t events_wait(size_t n) {
  for (int i = 0; i < 150 && nevents < n; i++) {
    usleep(20000);
    dmt_workq_run(&obs_q);
  }
  usleep(100000); /* and nothing more */
  dmt_workq_run(&obs_q);
  return nevents;
}

/* ---- HTTP ---- */

static json_t *call(const char *token, const char *tenant, const char *method, const char *path, const char *body,
                    const char *extra_headers, int status, struct bt_response *keep) {
  struct bt_response r;
  char headers[8192];
  snprintf(headers, sizeof headers, "%s%s", bt_auth_headers(token, tenant), extra_headers ? extra_headers : "");
  assert_int_equal(bt_http(br.rps_port, method, path, headers, body, body ? strlen(body) : 0, &r), 0);
  if (r.status != status) {
    char got[600];
    snprintf(got, sizeof got, "%d %s", r.status, r.body);
    bt_response_free(&r);
    fail_msg("%s %s: got %s, want %d", method, path, got, status);
  }
  for (size_t i = 0; i < sizeof credentials / sizeof credentials[0]; i++)
    if (strstr(r.body, credentials[i])) fail_msg("%s %s answered a credential: %s", method, path, r.body);
  json_t *j = bt_json(&r);
  if (keep) *keep = r;
  else bt_response_free(&r);
  return j;
}
#define A(m, p, b, s) json_decref(call(tok_a, TA, m, p, b, NULL, s, NULL))
#define B(m, p, b, s) json_decref(call(tok_b, TB, m, p, b, NULL, s, NULL))

static char *sqlv(const char *fmt, ...) {
  char sql[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  return bt_sql_value(dsn, sql);
}

static void assert_sql(const char *expect, const char *fmt, ...) {
  char sql[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  char *v = bt_sql_value(dsn, sql);
  if (!v || strcmp(v, expect) != 0) {
    char got[256];
    snprintf(got, sizeof got, "%s", v ? v : "(null)");
    free(v);
    fail_msg("%s: got %s, want %s", sql, got, expect);
  }
  free(v);
}

/* The secret at path in tenant, or NULL if there is none (free with dmt_secrets_wipe). */
static json_t *secret(const char *tenant, const char *path) {
  PGconn *c = PQconnectdb(dsn);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  json_t *obj = NULL;
  char err[256];
  int rc = dmt_secrets_get(store, c, tenant, path, &obj, err, sizeof err);
  PQfinish(c);
  if (rc == DMT_SECRETS_NOT_FOUND) return NULL;
  if (rc != DMT_SECRETS_OK) fail_msg("secret %s/%s: %d %s", tenant, path, rc, err);
  return obj;
}

static const char *sfield(const json_t *o, const char *k) {
  const char *v = json_string_value(json_object_get(o, k));
  assert_non_null(v);
  return v;
}

/* No column of any table but dmt.secrets, and no ciphertext, holds a credential in clear. */
static void assert_no_credential_in_tables(void) {
  char *tables = sqlv("SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = 'dmt'");
  assert_non_null(tables);
  for (char *save = NULL, *tbl = strtok_r(tables, ",", &save); tbl; tbl = strtok_r(NULL, ",", &save)) {
    for (size_t i = 0; i < sizeof credentials / sizeof credentials[0]; i++) {
      char want[8];
      snprintf(want, sizeof want, "0");
      if (!strcmp(tbl, "secrets"))
        assert_sql(want, "SELECT count(*) FROM dmt.secrets WHERE position(convert_to('%s', 'UTF8') IN ciphertext) > 0",
                   credentials[i]);
      else
        assert_sql(want, "SELECT count(*) FROM dmt.%s x WHERE x::text LIKE '%%%s%%'", tbl, credentials[i]);
    }
  }
  free(tables);
}

/* ---- bodies ---- */

static char domain_body[16384];
#define CIRA_BODY(name, pw)                                                                                          \
  "{\"configName\":\"" name "\",\"mpsServerAddress\":\"192.168.8.50\",\"mpsPort\":4433,\"username\":\"admin\","   \
  "\"commonName\":\"192.168.8.50\",\"serverAddressFormat\":3,\"authMethod\":2,\"mpsRootCertificate\":\"x\","      \
  "\"password\":\"" pw "\"}"
#define WIFI_BODY(name)                                                                                              \
  "{\"profileName\":\"" name "\",\"authenticationMethod\":4,\"encryptionMethod\":4,\"ssid\":\"s\","                \
  "\"pskPassphrase\":\"" PSK_PW "\",\"linkPolicy\":[14]}"
#define IEEE_BODY(name)                                                                                              \
  "{\"profileName\":\"" name "\",\"authenticationProtocol\":2,\"pxeTimeout\":120,\"wiredInterface\":true,"         \
  "\"username\":\"u\",\"password\":\"" IEEE_PW "\"}"
#define PROXY_BODY(name, port)                                                                                       \
  "{\"name\":\"" name "\",\"address\":\"proxy.example.com\",\"port\":" port ",\"networkDnsSuffix\":\"example.com\"}"
#define PROFILE_BODY(name)                                                                                           \
  "{\"profileName\":\"" name "\",\"activation\":\"ccmactivate\",\"generateRandomPassword\":false,"                \
  "\"amtPassword\":\"" AMT_PW "\",\"generateRandomMEBxPassword\":false,\"dhcpEnabled\":true,"                      \
  "\"tlsMode\":1,\"tlsSigningAuthority\":\"SelfSigned\"}"
#define PROFILE_CIRA_BODY(name, cira)                                                                                \
  "{\"profileName\":\"" name "\",\"activation\":\"ccmactivate\",\"generateRandomPassword\":true,"                 \
  "\"generateRandomMEBxPassword\":true,\"dhcpEnabled\":true,\"ciraConfigName\":\"" cira "\"}"

static int setup(void **state) {
  if (jwtkit_key_new(&key, "kc-rps", 2048)) return -1;
  dsn = dmt_test_pg_create_db("bridge_rps");
  dir = dmt_test_tmpdir("bridge-rps");
  snprintf(secrets_key, sizeof secrets_key, "%s", dmt_test_secrets_key());
  if (bt_bridge_start(&br, dsn, secrets_key, dir, bt_emf_args(&key, dir)) != 0) return -1;
  tok_a = bt_token(&key, TA "_im-rw", 3600);
  tok_b = bt_token(&key, TB "_im-rw", 3600);
  pfx = bt_make_pfx("prov.example.com", PFX_PW);
  snprintf(domain_body, sizeof domain_body,
           "{\"profileName\":\"dom1\",\"domainSuffix\":\"example.com\",\"provisioningCert\":\"%s\","
           "\"provisioningCertStorageFormat\":\"raw\",\"provisioningCertPassword\":\"" PFX_PW "\"}", pfx);
  char err[256];
  struct dmt_secrets_config sc = {.backend = "embedded", .key = secrets_key, .key_id = "test", .log = &lg};
  store = dmt_secrets_open(&sc, err, sizeof err);
  if (!store) return -1;

  dmt_workq_init(&obs_q, NULL, NULL);
  char id[64];
  snprintf(id, sizeof id, "rps-observer-%d", (int)getpid());
  struct dmt_mqtt_opts o = {.url = dmt_test_mqtt_url(), .client_id = id, .log = &lg, .owner = &obs_q,
                            .on_message = on_event};
  observer = dmt_mqtt_new(&o, err, sizeof err);
  if (!observer) return -1;
  dmt_mqtt_subscribe(observer, "dmt/v1/+/events/config", 1);
  dmt_mqtt_start(observer);
  sleep(1);
  return 0;
}

static int teardown(void **state) {
  int rc = bt_bridge_stop(&br);
  dmt_mqtt_free(observer);
  events_reset();
  dmt_workq_destroy(&obs_q);
  dmt_secrets_close(store);
  jwtkit_key_free(&key);
  free(tok_a);
  free(tok_b);
  free(pfx);
  free(dsn);
  free(dir);
  return rc == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ secrets */

static void test_credentials_live_only_in_the_secret_store(void **state) {
  A("POST", "/api/v1/admin/domains", domain_body, 201);
  A("POST", "/api/v1/admin/ciraconfigs", CIRA_BODY("cira1", MPS_PW), 201);
  A("POST", "/api/v1/admin/wirelessconfigs", WIFI_BODY("wifi1"), 201);
  A("POST", "/api/v1/admin/ieee8021xconfigs", IEEE_BODY("ieee1"), 201);
  A("POST", "/api/v1/admin/profiles", PROFILE_BODY("prof1"), 201);

  /* the rows hold DMT's placeholders */
  assert_sql("CERT|CERT_PASSWORD",
             "SELECT provisioning_cert || '|' || provisioning_cert_key FROM dmt.domains WHERE tenant_id = '" TA "'");
  assert_sql("AMT_PASSWORD", "SELECT amt_password FROM dmt.profiles WHERE tenant_id = '" TA "'");

  /* the secrets, under tenant A and DMT's paths */
  json_t *s = secret(TA, "certs/dom1");
  assert_non_null(s);
  assert_string_equal(sfield(s, "CERT"), pfx);
  assert_string_equal(sfield(s, "CERT_PASSWORD"), PFX_PW);
  dmt_secrets_wipe(s);
  assert_null(secret("", "certs/dom1")); /* not in the default tenant */
  assert_null(secret(TB, "certs/dom1"));
  s = secret(TA, "profiles/prof1");
  assert_non_null(s);
  assert_string_equal(sfield(s, "AMT_PASSWORD"), AMT_PW);
  dmt_secrets_wipe(s);
  s = secret(TA, "CIRAConfigs/cira1");
  assert_non_null(s);
  assert_string_equal(sfield(s, "MPS_PASSWORD"), MPS_PW);
  dmt_secrets_wipe(s);
  s = secret(TA, "Wireless/wifi1");
  assert_non_null(s);
  assert_string_equal(sfield(s, "PSK_PASSPHRASE"), PSK_PW);
  dmt_secrets_wipe(s);
  s = secret(TA, "IEEE8021x/ieee1");
  assert_non_null(s);
  assert_string_equal(sfield(s, "PASSWORD"), IEEE_PW);
  dmt_secrets_wipe(s);

  /* the self-signed TLS pair: a root and a leaf it signed, with their keys */
  s = secret(TA, "TLS/prof1");
  assert_non_null(s);
  BIO *bio = BIO_new_mem_buf(sfield(s, "ROOT_CERTIFICATE"), -1);
  X509 *root = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  bio = BIO_new_mem_buf(sfield(s, "ISSUED_CERTIFICATE"), -1);
  X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  bio = BIO_new_mem_buf(sfield(s, "ISSUED_KEY"), -1);
  EVP_PKEY *leaf_key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  BIO_free(bio);
  assert_non_null(root);
  assert_non_null(leaf);
  assert_non_null(leaf_key);
  EVP_PKEY *root_pub = X509_get0_pubkey(root);
  assert_int_equal(X509_verify(leaf, root_pub), 1);
  assert_int_equal(X509_check_private_key(leaf, leaf_key), 1);
  X509_free(root);
  X509_free(leaf);
  EVP_PKEY_free(leaf_key);
  dmt_secrets_wipe(s);

  /* nowhere else: no column, no event row, no ciphertext in clear */
  assert_no_credential_in_tables();

  /* reads never answer a credential (call() checks every body) */
  A("GET", "/api/v1/admin/domains/dom1", NULL, 200);
  A("GET", "/api/v1/admin/profiles/prof1", NULL, 200);
  A("GET", "/api/v1/admin/ciraconfigs/cira1", NULL, 200);
  A("GET", "/api/v1/admin/wirelessconfigs/wifi1", NULL, 200);
  A("GET", "/api/v1/admin/ieee8021xconfigs/ieee1", NULL, 200);

  /* a domain update with a new password keeps the certificate and replaces the password */
  char *version = sqlv("SELECT xmin::text FROM dmt.domains WHERE name = 'dom1'");
  char body[256];
  snprintf(body, sizeof body,
           "{\"profileName\":\"dom1\",\"domainSuffix\":\"example.com\",\"provisioningCertStorageFormat\":\"raw\","
           "\"provisioningCertPassword\":\"wrong\",\"version\":\"%s\"}", version);
  free(version);
  json_t *err = call(tok_a, TA, "PATCH", "/api/v1/admin/domains", body, NULL, 400, NULL);
  assert_non_null(err); /* the stored certificate does not open with that password */
  json_decref(err);
  s = secret(TA, "certs/dom1");
  assert_string_equal(sfield(s, "CERT_PASSWORD"), PFX_PW); /* unchanged by a refused update */
  dmt_secrets_wipe(s);

  /* deleting an object deletes its secrets */
  A("DELETE", "/api/v1/admin/profiles/prof1", NULL, 204);
  assert_null(secret(TA, "profiles/prof1"));
  assert_null(secret(TA, "TLS/prof1"));
  A("DELETE", "/api/v1/admin/domains/dom1", NULL, 204);
  assert_null(secret(TA, "certs/dom1"));
  A("DELETE", "/api/v1/admin/ciraconfigs/cira1", NULL, 204);
  assert_null(secret(TA, "CIRAConfigs/cira1"));
  A("DELETE", "/api/v1/admin/wirelessconfigs/wifi1", NULL, 204);
  assert_null(secret(TA, "Wireless/wifi1"));
  A("DELETE", "/api/v1/admin/ieee8021xconfigs/ieee1", NULL, 204);
  assert_null(secret(TA, "IEEE8021x/ieee1"));
  assert_sql("0", "SELECT count(*) FROM dmt.secrets");
}

/* ------------------------------------------------------------------ config events */

struct op {
  const char *method, *path, *body;
  int status;
  const char *action; /* expected event action, NULL = none */
  const char *name;
};

static void test_config_events_published_and_persisted(void **state) {
  bt_sql(dsn, "DELETE FROM dmt.events");
  events_reset();
  static const struct op ops[] = {
      {"POST", "/api/v1/admin/ciraconfigs", CIRA_BODY("cira2", ""), 201, "ciraconfig_create", "cira2"},
      {"POST", "/api/v1/admin/ciraconfigs", CIRA_BODY("cira2", ""), 400, NULL, NULL}, /* duplicate: no event */
      {"PATCH", "/api/v1/admin/ciraconfigs", "{\"configName\":\"cira2\",\"mpsPort\":4434}", 200, "ciraconfig_update", "cira2"},
      {"POST", "/api/v1/admin/proxyconfigs", PROXY_BODY("proxy2", "8080"), 201, "proxy_create", "proxy2"},
      {"PATCH", "/api/v1/admin/proxyconfigs", PROXY_BODY("proxy2", "8081"), 200, "proxy_update", "proxy2"},
      {"POST", "/api/v1/admin/wirelessconfigs", WIFI_BODY("wifi2"), 201, "wireless_create", "wifi2"},
      {"POST", "/api/v1/admin/ieee8021xconfigs", IEEE_BODY("ieee2"), 201, "ieee8021x_create", "ieee2"},
      {"POST", "/api/v1/admin/domains", NULL /* domain_body */, 201, "domain_create", "dom1"},
      {"POST", "/api/v1/admin/profiles", PROFILE_CIRA_BODY("prof2", "nosuch"), 400, NULL, NULL}, /* no event */
      {"POST", "/api/v1/admin/profiles", PROFILE_CIRA_BODY("prof3", "cira2"), 201, "profile_create", "prof3"},
      {"DELETE", "/api/v1/admin/ciraconfigs/cira2", NULL, 400, NULL, NULL}, /* still referenced (DMT: 400 FK) */
      {"DELETE", "/api/v1/admin/profiles/prof3", NULL, 204, "profile_delete", "prof3"},
      {"DELETE", "/api/v1/admin/profiles/nosuch", NULL, 404, NULL, NULL},
      {"DELETE", "/api/v1/admin/ciraconfigs/cira2", NULL, 204, "ciraconfig_delete", "cira2"},
      {"DELETE", "/api/v1/admin/proxyconfigs/proxy2", NULL, 204, "proxy_delete", "proxy2"},
      {"DELETE", "/api/v1/admin/wirelessconfigs/wifi2", NULL, 204, "wireless_delete", "wifi2"},
      {"DELETE", "/api/v1/admin/ieee8021xconfigs/ieee2", NULL, 204, "ieee8021x_delete", "ieee2"},
      {"DELETE", "/api/v1/admin/domains/dom1", NULL, 204, "domain_delete", "dom1"},
  };
  size_t want = 0;
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    const struct op *op = &ops[i];
    json_decref(call(tok_a, TA, op->method, op->path, op->body ? op->body : domain_body, NULL, op->status, NULL));
    size_t got = events_wait(want + (op->action ? 1 : 0));
    if (!op->action) {
      if (got != want) fail_msg("%s %s (%d) published an event", op->method, op->path, op->status);
      continue;
    }
    if (got != want + 1) fail_msg("%s %s: %zu events, want %zu", op->method, op->path, got, want + 1);
    const struct seen_event *e = &events[want++];
    assert_string_equal(e->topic, "dmt/v1/" TA "/events/config");
    assert_string_equal(e->tenant, TA);
    assert_string_equal(e->action, op->action);
    assert_string_equal(e->outcome, "success");
    assert_string_equal(e->requester, "user");
    assert_non_null(e->data);
    assert_string_equal(json_string_value(json_object_get(e->data, "name")), op->name);
    /* the same event, persisted */
    assert_sql(op->action, "SELECT action FROM dmt.events WHERE id = '%s' AND tenant_id = '" TA "' AND kind = 'config'",
               e->id);
  }
  char n[16];
  snprintf(n, sizeof n, "%zu", want);
  assert_sql(n, "SELECT count(*) FROM dmt.events");

  /* another tenant's change goes to its own topic */
  events_reset();
  B("POST", "/api/v1/admin/proxyconfigs", PROXY_BODY("proxyb", "8080"), 201);
  assert_int_equal(events_wait(1), 1);
  assert_string_equal(events[0].topic, "dmt/v1/" TB "/events/config");
  assert_string_equal(events[0].tenant, TB);
  events_reset();
}

/* ------------------------------------------------------------------ GET /api/v1/events */

static json_t *events_get(const char *token, const char *tenant, const char *query, int status) {
  char path[512];
  snprintf(path, sizeof path, "/api/v1/events%s", query);
  return call(token, tenant, "GET", path, NULL, NULL, status, NULL);
}

static void test_events_route_time_range_filters_and_tenant(void **state) {
  bt_sql(dsn, "DELETE FROM dmt.events");
  /* ten events of tenant A one minute apart (device and tenant-level), and some of tenant B */
  for (int i = 0; i < 10; i++) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO dmt.events (id, tenant_id, guid, ts, kind, action, outcome, message) VALUES "
             "(gen_random_uuid(), '" TA "', %s, timestamptz '2030-01-01 00:00:00Z' + interval '%d minutes', '%s', "
             "'a%d', 'success', 'm%d')",
             i % 2 ? "'" DEV_A "'" : "NULL", i, i % 2 ? "power" : "config", i, i);
    assert_int_equal(bt_sql(dsn, sql), 0);
  }
  assert_int_equal(bt_sql(dsn, "INSERT INTO dmt.events (id, tenant_id, guid, ts, kind, outcome) SELECT gen_random_uuid(), '" TB
                               "', '" DEV_B "', timestamptz '2030-01-01 00:00:00Z' + n * interval '1 minute', 'power', "
                               "'success' FROM generate_series(0, 4) n"),
                   0);

  json_t *j = events_get(tok_a, TA, "?$count=true", 200);
  assert_int_equal(json_integer_value(json_object_get(j, "totalCount")), 10);
  json_t *data = json_object_get(j, "data");
  assert_int_equal(json_array_size(data), 10);
  for (size_t i = 0; i < 10; i++) { /* oldest first */
    char want[8];
    snprintf(want, sizeof want, "a%zu", i);
    json_t *e = json_array_get(data, i);
    assert_string_equal(json_string_value(json_object_get(e, "action")), want);
    assert_string_equal(json_string_value(json_object_get(e, "tenantId")), TA);
  }
  /* the tsMs of the fourth event, for the unix-millisecond form */
  long long ts3 = (long long)json_integer_value(json_object_get(json_array_get(data, 3), "tsMs"));
  assert_string_equal(json_string_value(json_object_get(json_array_get(data, 3), "ts")), "2030-01-01T00:03:00.000Z");
  json_decref(j);

  char q[256];
  snprintf(q, sizeof q, "?since=%lld", ts3); /* inclusive */
  j = events_get(tok_a, TA, q, 200);
  assert_int_equal(json_array_size(j), 7);
  assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "action")), "a3");
  json_decref(j);
  j = events_get(tok_a, TA, "?since=2030-01-01T00:03:00Z&until=2030-01-01T00:06:00.000Z", 200); /* until exclusive */
  assert_int_equal(json_array_size(j), 3);
  assert_string_equal(json_string_value(json_object_get(json_array_get(j, 2), "action")), "a5");
  json_decref(j);
  j = events_get(tok_a, TA, "?kind=power&$count=true", 200);
  assert_int_equal(json_integer_value(json_object_get(j, "totalCount")), 5);
  json_decref(j);
  j = events_get(tok_a, TA, "?deviceId=" DEV_A "&kind=power&since=2030-01-01T00:04:00Z", 200);
  assert_int_equal(json_array_size(j), 3); /* a5, a7, a9 */
  assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "guid")), DEV_A);
  json_decref(j);
  j = events_get(tok_a, TA, "?guid=" DEV_A, 200);
  assert_int_equal(json_array_size(j), 5);
  json_decref(j);
  j = events_get(tok_a, TA, "?$top=2&$skip=3", 200);
  assert_int_equal(json_array_size(j), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "action")), "a3");
  json_decref(j);

  /* tenant A asking for tenant B's device: nothing; B sees only its own */
  j = events_get(tok_a, TA, "?deviceId=" DEV_B, 200);
  assert_int_equal(json_array_size(j), 0);
  json_decref(j);
  j = events_get(tok_b, TB, "?$count=true", 200);
  assert_int_equal(json_integer_value(json_object_get(j, "totalCount")), 5);
  json_decref(j);

  /* bad parameters: DMT's validation body */
  j = events_get(tok_a, TA, "?since=yesterday", 400);
  json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
  assert_string_equal(json_string_value(json_object_get(e0, "path")), "since");
  assert_string_equal(json_string_value(json_object_get(e0, "location")), "query");
  json_decref(j);
  json_decref(events_get(tok_a, TA, "?deviceId=nope", 400));
  json_decref(events_get(tok_a, TA, "?kind=Power%27--", 400));
  json_decref(events_get(tok_a, TA, "?$top=-1", 400));
}

/* ------------------------------------------------------------------ concurrency */

static void test_versions_etags_409_412_304(void **state) {
  A("POST", "/api/v1/admin/proxyconfigs", PROXY_BODY("proxy3", "8080"), 201);
  struct bt_response r;
  json_t *j = call(tok_a, TA, "GET", "/api/v1/admin/proxyconfigs/proxy3", NULL, NULL, 200, &r);
  char etag[128], version[64], hdr[256];
  assert_true(bt_header(&r, "ETag", etag, sizeof etag));
  snprintf(version, sizeof version, "%s", json_string_value(json_object_get(j, "version")));
  json_decref(j);
  bt_response_free(&r);

  /* unchanged: 304 with no body */
  snprintf(hdr, sizeof hdr, "If-None-Match: %s\r\n", etag);
  j = call(tok_a, TA, "GET", "/api/v1/admin/proxyconfigs/proxy3", NULL, hdr, 304, &r);
  assert_null(j);
  assert_int_equal(r.len, 0);
  bt_response_free(&r);

  /* a stale version in the body: 409 with the current object */
  j = call(tok_a, TA, "PATCH", "/api/v1/admin/proxyconfigs",
           "{\"name\":\"proxy3\",\"address\":\"proxy.example.com\",\"port\":1,\"networkDnsSuffix\":\"example.com\","
           "\"version\":\"1\"}", NULL, 409, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "version")), version);
  assert_int_equal(json_integer_value(json_object_get(j, "port")), 8080);
  json_decref(j);
  /* a stale If-Match: 412, the header wins over a correct body version */
  char body[256];
  snprintf(body, sizeof body,
           "{\"name\":\"proxy3\",\"address\":\"proxy.example.com\",\"port\":2,\"networkDnsSuffix\":\"example.com\","
           "\"version\":\"%s\"}", version);
  j = call(tok_a, TA, "PATCH", "/api/v1/admin/proxyconfigs", body, "If-Match: 1\r\n", 412, &r);
  assert_true(bt_header(&r, "ETag", etag, sizeof etag));
  bt_response_free(&r);
  json_decref(j);
  /* the right version: 200, and a new version */
  j = call(tok_a, TA, "PATCH", "/api/v1/admin/proxyconfigs", body, NULL, 200, NULL);
  assert_int_equal(json_integer_value(json_object_get(j, "port")), 2);
  assert_string_not_equal(json_string_value(json_object_get(j, "version")), version);
  json_decref(j);
  /* replaying the same version now conflicts */
  json_decref(call(tok_a, TA, "PATCH", "/api/v1/admin/proxyconfigs", body, NULL, 409, NULL));
  A("DELETE", "/api/v1/admin/proxyconfigs/proxy3", NULL, 204);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_credentials_live_only_in_the_secret_store),
      cmocka_unit_test(test_config_events_published_and_persisted),
      cmocka_unit_test(test_events_route_time_range_filters_and_tenant),
      cmocka_unit_test(test_versions_etags_409_412_304),
  };
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_need_env("DMT_TEST_MQTT_URL");
  return cmocka_run_group_tests(tests, setup, teardown);
}
