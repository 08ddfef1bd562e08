/*
 * Many activations at once against one agent (RPC clients and AMT played by
 * the STAND-IN, tests/harness/rps_standin.c): 200 CCM activations with CIRA
 * and random passwords, then 100 ACM activations sharing one provisioning
 * certificate (decrypted once, signed on the pool), all started together.
 * Every one must succeed with its own record whose passwords are the ones the
 * device holds, and the agent must stay clean (exit status 0 under ASan).
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

#ifndef CCM_DEVICES
#define CCM_DEVICES 200
#endif
#ifndef ACM_DEVICES
#define ACM_DEVICES 100
#endif

static struct rps_world W;
static struct standin *S;
static char TENANT[40];
static struct rps_pki PKI;

static int setup(void **state) {
  if (rps_world_init(&W, "rps_scale") != 0) return -1;
  snprintf(TENANT, sizeof TENANT, "tenant-s%d", (int)getpid());
  char pem[4096], b64[4096];
  if (rps_make_root(pem, sizeof pem, b64, sizeof b64) != 0 || rps_put_mpscerts(&W, pem) != 0) return -1;
  if (rps_add_cira(&W, TENANT, "cira1", "127.0.0.1", 4433, "ciraUser1", NULL, b64) != 0) return -1;
  if (rps_add_profile(&W, TENANT, "ccm", "ccmactivate", NULL, NULL, "cira1", NULL) != 0) return -1;
  if (rps_add_profile(&W, TENANT, "acm", "acmactivate", NULL, NULL, "cira1", NULL) != 0) return -1;
  if (rps_make_pki(&PKI, "amt.fleet.test", 365, "pw") != 0) return -1;
  if (rps_add_domain(&W, TENANT, "fleet", "fleet.test", PKI.pfx, PKI.pfx_len, "pw") != 0) return -1;
  W.env[0] = "DMT_RPS_DB_WORKERS=8";
  if (rps_world_start(&W) != 0) return -1;
  S = standin_new();
  return S ? 0 : -1;
}

static int teardown(void **state) {
  standin_free(S);
  int st = rps_world_stop(&W);
  rps_pki_free(&PKI);
  return st == 0 ? 0 : -1;
}

static void run_many(size_t n, const char *prefix, const char *profile, const char *fqdn, int mode_after) {
  struct sdev **devs = calloc(n, sizeof *devs);
  char *hashes[] = {PKI.root_sha256};
  char guids[512][37];
  for (size_t i = 0; i < n; i++) {
    snprintf(guids[i], sizeof guids[i], "%s-0000-4000-8000-%012zu", prefix, i);
    struct sdev_spec s = {.guid = guids[i], .fqdn = fqdn, .trusted_hashes = hashes, .ntrusted = 1};
    devs[i] = standin_device(S, &s);
  }
  char line[64];
  snprintf(line, sizeof line, "activate --profile %s", profile);
  uint64_t t0 = dmt_test_now_ms();
  for (size_t i = 0; i < n; i++) assert_int_equal(standin_run(S, devs[i], W.url, line, TENANT, NULL), 0);
  assert_true(standin_wait(S, devs, n, 240000));
  uint64_t ms = dmt_test_now_ms() - t0;
  size_t ok = 0;
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    const struct sresult *r = standin_result(devs[i]);
    if (!strcmp(r->method, "success") && r->mode == mode_after && r->mps) ok++;
    else print_message("%s: %s %s\n", guids[i], r->method, r->message ? r->message : "");
    if (r->ms > worst) worst = r->ms;
  }
  print_message("%zu %s activations at once: %zu succeeded in %llu ms (slowest %.0f ms)\n", n, profile, ok,
                (unsigned long long)ms, worst);
  assert_int_equal(ok, n);
  /* every record is there and each device holds exactly its stored password */
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.devices WHERE tenant_id = '%s' AND guid::text LIKE '%s%%'",
           TENANT, prefix);
  assert_int_equal(dmt_test_pg_count(W.dsn, sql), (long)n);
  for (size_t i = 0; i < n; i += n / 10) {
    const struct sresult *r = standin_result(devs[i]);
    json_t *sec = NULL;
    assert_true(rps_device_secret(&W, TENANT, guids[i], &sec));
    char ha1[DMT_DIGEST_HEX];
    dmt_digest_ha1("admin", r->realm, json_string_value(json_object_get(sec, "AMT_PASSWORD")), ha1);
    assert_string_equal(ha1, r->admin_ha1);
    assert_string_equal(json_string_value(json_object_get(sec, "MPS_PASSWORD")), r->mps_password);
    json_decref(sec);
  }
  free(devs);
}

static void test_ccm_200(void **state) { run_many(CCM_DEVICES, "c0c0c0c0", "ccm", "corp.example", 1); }
static void test_acm_100(void **state) { run_many(ACM_DEVICES, "a0a0a0a0", "acm", "fleet.test", 2); }

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_ccm_200), cmocka_unit_test(test_acm_100)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
