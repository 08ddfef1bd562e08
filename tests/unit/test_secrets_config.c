/*
 * Unit tests for the secret store's set-up, without a database: key and key-id
 * parsing (hex, base64, rotation lists, duplicate ids that would make rows
 * undecryptable), errors that never echo key material, address validation
 * before any SQL, and the configuration keys (file/env) feeding both back ends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmt/config.h"
#include "dmt/secrets.h"

#define HEX1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define HEX2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define B64 "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8="

static struct dmt_secrets *try_open(const char *key, const char *id, const char *old, char *err, size_t errlen) {
  struct dmt_secrets_config cfg = {.key = key, .key_id = id, .old_keys = old};
  err[0] = '\0';
  return dmt_secrets_open(&cfg, err, errlen);
}

static void test_keys(void **state) {
  char err[256];
  struct dmt_secrets *s = try_open(HEX1, NULL, NULL, err, sizeof err);
  assert_non_null(s);
  dmt_secrets_close(s);
  s = try_open(B64, "2026-11", "old-1:" HEX2 ",old-0:" B64, err, sizeof err);
  assert_non_null(s);
  dmt_secrets_close(s);

  const struct {
    const char *key, *id, *old;
  } bad[] = {
      {NULL, "k1", NULL},
      {"00112233", "k1", NULL},
      {HEX1 "00", "k1", NULL},
      {"zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", "k1", NULL},
      {"ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8", "k1", NULL}, /* base64 without padding */
      {HEX1, "k:1", NULL},
      {HEX1, "k1", "k0"},
      {HEX1, "k1", "k0:" HEX1 "ff"},
      {HEX1, "k1", ":" HEX2},
      {HEX1, "k1", "k1:" HEX2},                /* the current key's id again */
      {HEX1, "k1", "k0:" HEX2 ",k0:" HEX1},    /* an old id twice */
      {HEX1, "k1", "a:" HEX2 ",b:" HEX2 ",c:" HEX2 ",d:" HEX2 ",e:" HEX2 ",f:" HEX2 ",g:" HEX2 ",h:" HEX2},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    s = try_open(bad[i].key, bad[i].id, bad[i].old, err, sizeof err);
    if (s) fail_msg("case %zu opened", i);
    assert_true(err[0] != '\0');
    assert_null(strstr(err, "0011223344"));
    assert_null(strstr(err, "ffeeddccbb"));
  }
  struct dmt_secrets_config unknown = {.backend = "plaintext", .key = HEX1};
  assert_null(dmt_secrets_open(&unknown, err, sizeof err));
}

static void test_addresses_checked_before_sql(void **state) {
  char err[256];
  struct dmt_secrets *s = try_open(HEX1, "k1", NULL, err, sizeof err);
  json_t *obj = json_pack("{s:s}", "AMT_PASSWORD", "x"), *got = NULL;
  const struct {
    const char *tenant, *path;
  } bad[] = {{"", ""},           {"", "/abs"},     {"", "a/../b"},      {"", "a//b"},
             {"", "a b"},        {"t/1", "x"},     {"t 1", "x"},        {NULL, "x"},
             {"", NULL},         {"", "devices/\n"}};
  /* db is NULL: these must be refused without touching it. */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(dmt_secrets_get(s, NULL, bad[i].tenant, bad[i].path, &got, err, sizeof err), DMT_SECRETS_BAD_INPUT);
    assert_int_equal(dmt_secrets_put(s, NULL, bad[i].tenant, bad[i].path, obj, err, sizeof err), DMT_SECRETS_BAD_INPUT);
    assert_int_equal(dmt_secrets_delete(s, NULL, bad[i].tenant, bad[i].path, err, sizeof err), DMT_SECRETS_BAD_INPUT);
  }
  json_t *arr = json_array();
  assert_int_equal(dmt_secrets_put(s, NULL, "", "devices/x", arr, err, sizeof err), DMT_SECRETS_BAD_INPUT);
  json_decref(arr);
  json_decref(obj);
  dmt_secrets_wipe(NULL);
  dmt_secrets_close(s);
}

static void test_configuration_keys(void **state) {
  static const struct dmt_config_key keys[] = {DMT_CONFIG_COMMON_KEYS};
  struct dmt_config c;
  char err[256];
  assert_int_equal(dmt_config_init(&c, keys, sizeof keys / sizeof keys[0]), 0);
  setenv("DMT_SECRETS_BACKEND", "vault", 1);
  setenv("DMT_VAULT_ADDRESS", "https://vault.example:8200", 1);
  setenv("DMT_VAULT_K8S_ROLE", "dmt", 1);
  setenv("DMT_VAULT_CA_FILE", "/etc/dmt/vault/ca.crt", 1);
  assert_int_equal(dmt_config_load_env(&c, err, sizeof err), 0);
  struct dmt_secrets_config sc;
  dmt_secrets_config_from(&c, &sc);
  assert_string_equal(sc.backend, "vault");
  assert_string_equal(sc.vault_address, "https://vault.example:8200");
  assert_string_equal(sc.vault_k8s_role, "dmt");
  assert_string_equal(sc.vault_ca_file, "/etc/dmt/vault/ca.crt");
  assert_string_equal(sc.vault_mount_path, "secret/data/");
  assert_string_equal(sc.vault_k8s_mount, "kubernetes");
  assert_string_equal(sc.vault_k8s_jwt_file, "/var/run/secrets/kubernetes.io/serviceaccount/token");
  assert_null(sc.vault_token);
  assert_string_equal(sc.key_id, "k1");
  /* The token is a secret setting: never printed by the configuration dump. */
  setenv("DMT_VAULT_TOKEN", "hvs.do-not-print", 1);
  assert_int_equal(dmt_config_load_env(&c, err, sizeof err), 0);
  char *dump = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&dump, &len);
  dmt_config_dump(&c, f);
  fclose(f);
  assert_null(strstr(dump, "hvs.do-not-print"));
  free(dump);
  dmt_config_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys),
      cmocka_unit_test(test_addresses_checked_before_sql),
      cmocka_unit_test(test_configuration_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
