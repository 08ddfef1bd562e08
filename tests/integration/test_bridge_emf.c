/*
 * EMF mode against a real dmt-bridge: Keycloak-style RS256 tokens (from a
 * JWKS file) are required on every non-public route. Each way a request can
 * fail authentication or authorisation gets its exact status and a JSON
 * error: no token, forged signature, alg none, HS256 keyed with the public
 * key, expired, wrong audience, wrong issuer (401); missing ActiveProjectID
 * with several projects, a project the token does not grant, a read-only role
 * using a mutating route (403). A single-project token without
 * ActiveProjectID (a south call) works in its project; _default is DMT's
 * default tenant; public routes need no token; /authorize is DMT's 405.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge_fixture.h"
#include "harness.h"
#include "jwtkit.h"

#define A "7a000000-0000-4000-8000-00000000000a"
#define B "7b000000-0000-4000-8000-00000000000b"
#define C "7c000000-0000-4000-8000-00000000000c"

static struct jwtkit_key key, rogue;
static struct bt_bridge br;
static char *dsn, *dir;

static int setup(void **state) {
  if (jwtkit_key_new(&key, "kc-1", 2048) || jwtkit_key_new(&rogue, "kc-1", 2048)) return -1;
  dsn = dmt_test_pg_create_db("bridge_emf");
  dir = dmt_test_tmpdir("bridge-emf");
  return bt_bridge_start(&br, dsn, dmt_test_secrets_key(), dir, bt_emf_args(&key, dir));
}

static int teardown(void **state) {
  int rc = bt_bridge_stop(&br);
  jwtkit_key_free(&key);
  jwtkit_key_free(&rogue);
  free(dsn);
  free(dir);
  return rc == 0 ? 0 : -1;
}

/* Sends and checks the status and, for errors, the JSON error shape; returns the body as JSON. */
static json_t *req(const char *method, const char *path, const char *headers, const char *body, int status,
                   const char *message) {
  struct bt_response r;
  assert_int_equal(bt_http(br.rps_port, method, path, headers, body, body ? strlen(body) : 0, &r), 0);
  if (r.status != status) fail_msg("%s %s: got %d %s, want %d", method, path, r.status, r.body, status);
  json_t *j = bt_json(&r);
  bt_response_free(&r);
  if (status == 401 || status == 403) {
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "error")), status == 401 ? "Unauthorized" : "Forbidden");
    if (message) assert_string_equal(json_string_value(json_object_get(j, "message")), message);
  }
  return j;
}

#define CIRA_BODY(name)                                                                                      \
  "{\"configName\":\"" name "\",\"mpsServerAddress\":\"192.168.8.50\",\"mpsPort\":4433,\"username\":\"admin\"," \
  "\"commonName\":\"192.168.8.50\",\"serverAddressFormat\":3,\"authMethod\":2,\"mpsRootCertificate\":\"x\"}"

static void test_token_failures_are_401(void **state) {
  char *good = bt_token(&key, A "_im-rw", 300);
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", NULL, NULL, 401, "a bearer token is required"));
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", "Authorization: Basic dXNlcjpwYXNz\r\n", NULL, 401, NULL));

  char *claims = jwtkit_claims(BT_ISSUER, "\"" BT_AUDIENCE "\"", (long long)time(NULL) + 300, "mallory", A "_im-rw");
  char *forged = jwtkit_sign(&rogue, "kc-1", claims); /* another key under the trusted kid */
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", bt_auth_headers(forged, A), NULL, 401, "bad signature"));
  char *none = jwtkit_sign_none(claims);
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", bt_auth_headers(none, A), NULL, 401, "malformed token")); /* no signature segment */
  char *hs = jwtkit_sign_hs256((const unsigned char *)key.pub_pem, strlen(key.pub_pem), "kc-1", claims);
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", bt_auth_headers(hs, A), NULL, 401, "algorithm is not RS256"));
  /* the same claims with a valid signature pass: the rejections above are the signature's */
  char *valid = jwtkit_sign(&key, "kc-1", claims);
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", bt_auth_headers(valid, A), NULL, 200, NULL));

  char *expired = bt_token(&key, A "_im-rw", -60);
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", bt_auth_headers(expired, A), NULL, 401, "token expired"));
  char *c2 = jwtkit_claims(BT_ISSUER, "\"another-service\"", (long long)time(NULL) + 300, "u", A "_im-rw");
  char *aud = jwtkit_sign(&key, "kc-1", c2);
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", bt_auth_headers(aud, A), NULL, 401, "wrong audience"));
  char *c3 = jwtkit_claims("https://evil.test/realms/emf", "\"" BT_AUDIENCE "\"", (long long)time(NULL) + 300, "u",
                           A "_im-rw");
  char *iss = jwtkit_sign(&key, "kc-1", c3);
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", bt_auth_headers(iss, A), NULL, 401, "wrong issuer"));
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", "Authorization: Bearer not.a.token\r\n", NULL, 401,
                  "malformed token"));
  /* the amt and device routes are fenced the same way */
  json_decref(req("GET", "/api/v1/devices", NULL, NULL, 401, NULL));
  json_decref(req("GET", "/api/v1/amt/power/state/" A, bt_auth_headers(expired, A), NULL, 401, NULL));
  free(good);
  free(claims);
  free(forged);
  free(none);
  free(hs);
  free(valid);
  free(expired);
  free(c2);
  free(aud);
  free(c3);
  free(iss);
}

static void test_project_and_permission_failures_are_403(void **state) {
  char *two = bt_token(&key, A "_im-rw," B "_im-r", 300);
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", bt_auth_headers(two, NULL), NULL, 403,
                  "ActiveProjectID is required (the token grants several projects)"));
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", bt_auth_headers(two, C), NULL, 403,
                  "ActiveProjectID is not one of the token's projects"));
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", bt_auth_headers(two, "../" A), NULL, 403,
                  "ActiveProjectID is not a valid project id"));
  /* read-only on B: reads are fine, every mutating route is refused */
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", bt_auth_headers(two, B), NULL, 200, NULL));
  const char *msg = "the token's roles do not allow changes in this project";
  json_decref(req("POST", "/api/v1/admin/ciraconfigs", bt_auth_headers(two, B), CIRA_BODY("rocfg"), 403, msg));
  json_decref(req("DELETE", "/api/v1/admin/ciraconfigs/rocfg", bt_auth_headers(two, B), NULL, 403, msg));
  json_decref(req("POST", "/api/v1/amt/power/action/" A, bt_auth_headers(two, B), "{\"action\":2,\"useSOL\":false}",
                  403, msg));
  json_decref(req("DELETE", "/api/v1/devices/" A, bt_auth_headers(two, B), NULL, 403, msg));
  /* a token whose roles grant no project at all */
  char *none = bt_token(&key, "offline_access,uma_authorization", 300);
  json_decref(req("GET", "/api/v1/admin/ciraconfigs", bt_auth_headers(none, A), NULL, 403, "token grants no tenant"));
  /* nothing was written to B */
  char *rows = bt_sql_value(dsn, "SELECT count(*) FROM dmt.ciraconfigs WHERE tenant_id = '" B "'");
  assert_string_equal(rows, "0");
  free(rows);
  free(two);
  free(none);
}

static void test_south_call_and_default_tenant(void **state) {
  char *one = bt_token(&key, A "_im-rw", 300);
  json_t *j = req("POST", "/api/v1/admin/ciraconfigs", bt_auth_headers(one, NULL), CIRA_BODY("southcfg"), 201, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "tenantId")), A);
  json_decref(j);
  j = req("GET", "/api/v1/admin/ciraconfigs/southcfg", bt_auth_headers(one, A), NULL, 200, NULL);
  json_decref(j);
  /* DMT's default tenant: role _default_im-rw, ActiveProjectID _default, stored as "" */
  char *def = bt_token(&key, "_default_im-rw", 300);
  j = req("POST", "/api/v1/admin/ciraconfigs", bt_auth_headers(def, "_default"), CIRA_BODY("defcfg"), 201, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "tenantId")), "");
  json_decref(j);
  free(one);
  free(def);
}

static void test_public_routes_and_login(void **state) {
  json_decref(req("GET", "/api/v1/admin/health", NULL, NULL, 200, NULL));
  json_decref(req("GET", "/api/v1/admin/version", NULL, NULL, 200, NULL));
  json_decref(req("GET", "/api/v1/version", NULL, NULL, 200, NULL));
  json_t *j = req("POST", "/api/v1/authorize", NULL, "{\"username\":\"standalone\",\"password\":\"G@ppm0ym\"}", 405, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "message")), "Authentication disabled on MPS");
  json_decref(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_token_failures_are_401),
      cmocka_unit_test(test_project_and_permission_failures_are_403),
      cmocka_unit_test(test_south_call_and_default_tenant),
      cmocka_unit_test(test_public_routes_and_login),
  };
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_need_env("DMT_TEST_MQTT_URL");
  return cmocka_run_group_tests(tests, setup, teardown);
}
