/*
 * The Vault back end of the secret store against the Vault KV v2 double
 * (vault_double.c - a test double written from Vault's documented API, not
 * Vault): DMT's path layout for the default tenant and the tenants/<id>/
 * mapping for others, whole-object writes, permanent deletes, reading what
 * DMT wrote, token renewal before expiry (the double enforces expiry, so
 * requests that keep working prove it), Kubernetes login and re-login at the
 * role's max TTL, and failures that are errors without a token, JWT or secret
 * in any message or log line. The embedded back end is what every other test
 * uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/log.h"
#include "dmt/secrets.h"
#include "harness.h"
#include "jwtkit.h"
#include "vault_double.h"

#define ROOT "hvs.root-token-for-tests"
#define JWT "eyJhbGciOiJSUzI1NiJ9.k8s-service-account.jwt-value"
#define GUID "0f5c2b1e-1111-2222-3333-444455556666"
#define SECRET_VALUE "amt-P@ssw0rd-1"

/* A log captured in memory, to show what the store writes there. */
struct capture {
  char *text;
  size_t len;
  FILE *f;
  struct dmt_log log;
};

static void capture_open(struct capture *c) {
  memset(c, 0, sizeof *c);
  c->f = open_memstream(&c->text, &c->len);
  c->log = (struct dmt_log){.out = c->f, .min = DMT_LOG_DEBUG, .component = "test"};
}

static void capture_close(struct capture *c) {
  fclose(c->f);
  free(c->text);
}

static struct dmt_secrets *open_vault(struct vault_double *d, const char *token, const char *role, const char *jwt_file,
                                      const struct dmt_log *log) {
  char addr[64], err[256] = "";
  snprintf(addr, sizeof addr, "http://127.0.0.1:%d", vault_double_port(d));
  struct dmt_secrets_config cfg = {.backend = "vault", .vault_address = addr, .vault_token = token,
                                   .vault_k8s_role = role, .vault_k8s_jwt_file = jwt_file, .log = log};
  struct dmt_secrets *s = dmt_secrets_open(&cfg, err, sizeof err);
  if (!s) fail_msg("open: %s", err);
  return s;
}

static json_t *device_secret(const char *amt) {
  return json_pack("{s:s, s:s, s:s}", "AMT_PASSWORD", amt, "MEBX_PASSWORD", "mebx-pw", "MPS_PASSWORD", "mps-pw");
}

static void test_round_trip_in_dmt_layout(void **state) {
  struct vault_double_config dc = {.root_token = ROOT};
  struct vault_double *d = vault_double_start(&dc);
  assert_non_null(d);
  struct dmt_secrets *s = open_vault(d, ROOT, NULL, NULL, NULL);
  char err[256];
  json_t *obj = device_secret(SECRET_VALUE), *got = NULL;

  /* Default tenant: DMT's own path. */
  assert_int_equal(dmt_secrets_put(s, NULL, "", "devices/" GUID, obj, err, sizeof err), DMT_SECRETS_OK);
  char *stored = vault_double_get(d, "secret/data/devices/" GUID);
  assert_non_null(stored);
  assert_string_equal(stored, "{\"AMT_PASSWORD\":\"" SECRET_VALUE "\",\"MEBX_PASSWORD\":\"mebx-pw\",\"MPS_PASSWORD\":\"mps-pw\"}");
  free(stored);
  assert_int_equal(dmt_secrets_get(s, NULL, "", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_OK);
  assert_true(json_equal(got, obj));
  dmt_secrets_wipe(got);

  /* Another tenant: under tenants/<id>/, invisible to the default tenant and to a third one. */
  json_t *t_obj = device_secret("tenant-t-pw");
  assert_int_equal(dmt_secrets_put(s, NULL, "T1", "devices/" GUID, t_obj, err, sizeof err), DMT_SECRETS_OK);
  stored = vault_double_get(d, "secret/data/tenants/T1/devices/" GUID);
  assert_non_null(stored);
  free(stored);
  assert_int_equal(dmt_secrets_get(s, NULL, "T1", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_OK);
  assert_true(json_equal(got, t_obj));
  dmt_secrets_wipe(got);
  assert_int_equal(dmt_secrets_get(s, NULL, "T2", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_NOT_FOUND);
  assert_int_equal(dmt_secrets_get(s, NULL, "", "tenants/T1/devices/" GUID, &got, err, sizeof err), DMT_SECRETS_BAD_INPUT);

  /* A put replaces the whole object. */
  json_t *smaller = json_pack("{s:s}", "MPS_PASSWORD", "only");
  assert_int_equal(dmt_secrets_put(s, NULL, "", "devices/" GUID, smaller, err, sizeof err), DMT_SECRETS_OK);
  assert_int_equal(dmt_secrets_get(s, NULL, "", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_OK);
  assert_true(json_equal(got, smaller));
  dmt_secrets_wipe(got);

  /* What DMT wrote is read as is (nested objects too, as DMT's MPSCerts). */
  vault_double_put(d, "secret/data/devices/dmt-written", "{\"AMT_PASSWORD\":\"from-dmt\",\"MPS_PASSWORD\":\"m\"}");
  vault_double_put(d, "secret/data/MPSCerts", "{\"mps_tls_config\":{\"cert\":\"PEM\"},\"root_key\":\"KEY\"}");
  assert_int_equal(dmt_secrets_get(s, NULL, "", "devices/dmt-written", &got, err, sizeof err), DMT_SECRETS_OK);
  assert_string_equal(json_string_value(json_object_get(got, "AMT_PASSWORD")), "from-dmt");
  dmt_secrets_wipe(got);
  assert_int_equal(dmt_secrets_get(s, NULL, "", "MPSCerts", &got, err, sizeof err), DMT_SECRETS_OK);
  assert_string_equal(json_string_value(json_object_get(json_object_get(got, "mps_tls_config"), "cert")), "PEM");
  dmt_secrets_wipe(got);

  /* Delete removes every version (metadata path); deleting again is fine. */
  assert_int_equal(dmt_secrets_delete(s, NULL, "", "devices/" GUID, err, sizeof err), DMT_SECRETS_OK);
  assert_null(vault_double_get(d, "secret/data/devices/" GUID));
  assert_int_equal(dmt_secrets_get(s, NULL, "", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_NOT_FOUND);
  assert_int_equal(dmt_secrets_delete(s, NULL, "", "devices/" GUID, err, sizeof err), DMT_SECRETS_OK);
  assert_int_equal(dmt_secrets_get(s, NULL, "T1", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_OK);
  dmt_secrets_wipe(got);

  assert_int_equal(dmt_secrets_health(s, NULL, err, sizeof err), DMT_SECRETS_OK);
  assert_int_equal(dmt_secrets_rotate(s, NULL, err, sizeof err), -1); /* Vault manages its own keys */
  struct vault_double_stats st;
  vault_double_stats(d, &st);
  assert_int_equal(st.denied, 0);
  assert_int_equal(st.deletes, 2);
  json_decref(obj);
  json_decref(t_obj);
  json_decref(smaller);
  dmt_secrets_close(s);
  vault_double_stop(d);
}

static void test_static_token_renewed_before_expiry(void **state) {
  /* A 4 s token: without renewal, every request after 4 s would be refused. */
  struct vault_double_config dc = {.root_token = ROOT, .root_ttl = 4, .root_max_ttl = 600, .root_renewable = true};
  struct vault_double *d = vault_double_start(&dc);
  struct capture cap;
  capture_open(&cap);
  struct dmt_secrets *s = open_vault(d, ROOT, NULL, NULL, &cap.log);
  char err[256];
  json_t *obj = device_secret(SECRET_VALUE), *got = NULL;
  assert_int_equal(dmt_secrets_put(s, NULL, "", "devices/" GUID, obj, err, sizeof err), DMT_SECRETS_OK);
  sleep(7); /* idle: only the background renewer talks to Vault */
  assert_int_equal(dmt_secrets_get(s, NULL, "", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_OK);
  assert_true(json_equal(got, obj));
  dmt_secrets_wipe(got);
  struct vault_double_stats st;
  vault_double_stats(d, &st);
  assert_int_equal(st.lookups, 1);
  assert_true(st.renewals >= 2);
  assert_int_equal(st.denied, 0);
  dmt_secrets_close(s);
  fflush(cap.f);
  assert_non_null(strstr(cap.text, "event=vault_token_renewed"));
  assert_null(strstr(cap.text, ROOT));
  capture_close(&cap);
  json_decref(obj);
  vault_double_stop(d);
}

static void test_kubernetes_login_and_relogin(void **state) {
  /* Leases of 3 s that can be renewed up to 5 s: the store must log in again. */
  struct vault_double_config dc = {.k8s_role = "dmt", .k8s_jwt = JWT, .login_ttl = 3, .login_max_ttl = 5};
  struct vault_double *d = vault_double_start(&dc);
  char *dir = dmt_test_tmpdir("vault"), jwt_file[700];
  snprintf(jwt_file, sizeof jwt_file, "%s/token", dir);
  assert_int_equal(jwtkit_write_file(jwt_file, JWT "\n"), 0);
  struct capture cap;
  capture_open(&cap);
  struct dmt_secrets *s = open_vault(d, NULL, "dmt", jwt_file, &cap.log);
  struct vault_double_stats st;
  vault_double_stats(d, &st);
  assert_int_equal(st.logins, 1); /* logged in at open */
  char err[256];
  json_t *obj = device_secret(SECRET_VALUE), *got = NULL;
  assert_int_equal(dmt_secrets_put(s, NULL, "T1", "profiles/p1", obj, err, sizeof err), DMT_SECRETS_OK);
  sleep(8);
  assert_int_equal(dmt_secrets_get(s, NULL, "T1", "profiles/p1", &got, err, sizeof err), DMT_SECRETS_OK);
  assert_true(json_equal(got, obj));
  dmt_secrets_wipe(got);
  assert_int_equal(dmt_secrets_health(s, NULL, err, sizeof err), DMT_SECRETS_OK);
  vault_double_stats(d, &st);
  assert_true(st.logins >= 2);   /* a fresh login once renewal stopped giving full leases */
  assert_true(st.renewals >= 1);
  assert_int_equal(st.denied, 0);
  assert_int_equal(st.failed_logins, 0);
  dmt_secrets_close(s);
  fflush(cap.f);
  assert_non_null(strstr(cap.text, "event=vault_login method=kubernetes role=dmt"));
  assert_null(strstr(cap.text, "k8s-service-account"));
  assert_null(strstr(cap.text, "hvs.double"));
  capture_close(&cap);
  json_decref(obj);
  unlink(jwt_file);
  free(dir);
  vault_double_stop(d);
}

static void test_failures_are_errors_without_secrets(void **state) {
  char err[256];
  json_t *got = NULL, *obj = device_secret(SECRET_VALUE);
  struct capture cap;
  capture_open(&cap);

  /* A static token that cannot be renewed expires: requests fail as retryable errors naming the status. */
  struct vault_double_config dc = {.root_token = ROOT, .root_ttl = 2, .root_renewable = false,
                                   .k8s_role = "dmt", .k8s_jwt = JWT, .login_ttl = 60};
  struct vault_double *d = vault_double_start(&dc);
  struct dmt_secrets *s = open_vault(d, ROOT, NULL, NULL, &cap.log);
  assert_int_equal(dmt_secrets_put(s, NULL, "", "devices/" GUID, obj, err, sizeof err), DMT_SECRETS_OK);
  sleep(3);
  assert_int_equal(dmt_secrets_get(s, NULL, "", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_ERROR);
  assert_non_null(strstr(err, "403"));
  assert_null(strstr(err, ROOT));
  assert_int_equal(dmt_secrets_health(s, NULL, err, sizeof err), DMT_SECRETS_ERROR);
  dmt_secrets_close(s);

  /* A Kubernetes login Vault refuses: the store opens, requests fail, nothing leaks. */
  char *dir = dmt_test_tmpdir("vault"), jwt_file[700];
  snprintf(jwt_file, sizeof jwt_file, "%s/token", dir);
  assert_int_equal(jwtkit_write_file(jwt_file, "eyJ.not-the-right-service-account.jwt"), 0);
  s = open_vault(d, NULL, "dmt", jwt_file, &cap.log);
  assert_int_equal(dmt_secrets_get(s, NULL, "", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_ERROR);
  assert_null(strstr(err, "not-the-right"));
  dmt_secrets_close(s);
  struct vault_double_stats st;
  vault_double_stats(d, &st);
  assert_true(st.failed_logins >= 1);

  /* Vault gone: an error, not a hang or a crash. */
  s = open_vault(d, ROOT, NULL, NULL, &cap.log);
  vault_double_stop(d);
  assert_int_equal(dmt_secrets_get(s, NULL, "", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_ERROR);
  assert_non_null(strstr(err, "Vault unreachable"));
  assert_int_equal(dmt_secrets_health(s, NULL, err, sizeof err), DMT_SECRETS_ERROR);
  dmt_secrets_close(s);

  fflush(cap.f);
  assert_non_null(strstr(cap.text, "event=vault_login_failed"));
  assert_non_null(strstr(cap.text, "event=vault_token_expiring"));
  const char *never[] = {ROOT, "not-the-right", SECRET_VALUE, "mebx-pw", "hvs.double"};
  for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
    if (strstr(cap.text, never[i])) fail_msg("\"%s\" appears in the log", never[i]);
  capture_close(&cap);
  json_decref(obj);
  unlink(jwt_file);
  free(dir);
}

static void test_configuration_errors(void **state) {
  char err[256];
  const struct dmt_secrets_config bad[] = {
      {.backend = "vault", .vault_address = "vault:8200", .vault_token = ROOT},
      {.backend = "vault", .vault_address = "http://v:8200", .vault_token = ROOT, .vault_mount_path = "secret/"},
      {.backend = "vault", .vault_address = "http://v:8200"},
      {.backend = "vault", .vault_address = "http://v:8200", .vault_token = "hvs.x\r\nX-Evil: 1"},
      {.backend = "vault-ish", .vault_address = "http://v:8200", .vault_token = ROOT},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    assert_null(dmt_secrets_open(&bad[i], err, sizeof err));
    assert_true(err[0] != '\0');
    assert_null(strstr(err, ROOT));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_in_dmt_layout),
      cmocka_unit_test(test_static_token_renewed_before_expiry),
      cmocka_unit_test(test_kubernetes_login_and_relogin),
      cmocka_unit_test(test_failures_are_errors_without_secrets),
      cmocka_unit_test(test_configuration_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
