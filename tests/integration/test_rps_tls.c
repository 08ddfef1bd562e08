/*
 * The agent's WebSocket on TLS (rps.tls_cert_file/rps.tls_key_file): a CCM
 * activation over wss:// succeeds (the STAND-IN client, tests/harness/
 * rps_standin.c, connects like `rpc -n`), and a plain ws:// client gets no
 * service on the TLS port. Also runs with a non-zero post-activation delay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/tls.h"
#include "harness.h"
#include "rps_fixture.h"
#include "rps_standin.h"

static struct rps_world W;
static struct standin *S;
static char TENANT[40], CERT_ENV[700], KEY_ENV[700];

static int setup(void **state) {
  if (rps_world_init(&W, "rps_tls") != 0) return -1;
  snprintf(TENANT, sizeof TENANT, "tenant-t%d", (int)getpid());
  if (rps_add_profile(&W, TENANT, "ccm1", "ccmactivate", "Ccm@Passw0rd1", NULL, NULL, NULL) != 0) return -1;
  char err[256], cert[600], key[600];
  EVP_PKEY *k = dmt_tls_rsa_key(2048);
  const char *ips[] = {"127.0.0.1", NULL};
  struct dmt_cert_spec spec = {.common_name = "127.0.0.1", .ip_addrs = ips, .ext_key_usage = "serverAuth",
                               .days_before = 1, .days_valid = 30};
  X509 *x = dmt_tls_issue(&spec, k, NULL, NULL, err, sizeof err);
  snprintf(cert, sizeof cert, "%s/rps.pem", W.dir);
  snprintf(key, sizeof key, "%s/rps.key", W.dir);
  if (!x || dmt_tls_write_cert(cert, &x, 1, err, sizeof err) || dmt_tls_write_key(key, k, err, sizeof err)) return -1;
  X509_free(x);
  EVP_PKEY_free(k);
  snprintf(CERT_ENV, sizeof CERT_ENV, "DMT_RPS_TLS_CERT_FILE=%s", cert);
  snprintf(KEY_ENV, sizeof KEY_ENV, "DMT_RPS_TLS_KEY_FILE=%s", key);
  W.env[0] = CERT_ENV;
  W.env[1] = KEY_ENV;
  W.env[2] = "DMT_RPS_DELAY_MS=300";
  if (rps_world_start(&W) != 0) return -1;
  S = standin_new();
  return S ? 0 : -1;
}

static int teardown(void **state) {
  standin_free(S);
  return rps_world_stop(&W) == 0 ? 0 : -1;
}

static void test_wss_activation(void **state) {
  char url[160];
  snprintf(url, sizeof url, "wss://127.0.0.1:%d/activate", W.port);
  struct sdev_spec s = {.guid = "7175aaaa-0000-4000-8000-000000000001", .fqdn = "corp.example"};
  struct sdev *d = standin_device(S, &s);
  uint64_t t0 = dmt_test_now_ms();
  assert_int_equal(standin_run(S, d, url, "activate --profile ccm1", TENANT, NULL), 0);
  assert_true(standin_wait(S, &d, 1, 30000));
  const struct sresult *r = standin_result(d);
  assert_string_equal(r->method, "success");
  assert_int_equal(r->mode, 1);
  assert_true(dmt_test_now_ms() - t0 >= 300); /* the post-activation delay was waited */
  assert_int_equal(rps_device_rows(&W, s.guid), 1);
  /* plain WebSocket on the TLS port: no service */
  s.guid = "7175aaaa-0000-4000-8000-000000000002";
  struct sdev *p = standin_device(S, &s);
  assert_int_equal(standin_run(S, p, W.url, "activate --profile ccm1", TENANT, NULL), 0);
  assert_true(standin_wait(S, &p, 1, 30000));
  assert_string_not_equal(standin_result(p)->method, "success");
  assert_int_equal(rps_device_rows(&W, s.guid), 0);
}

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_wss_activation)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
