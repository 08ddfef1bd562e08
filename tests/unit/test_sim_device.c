/*
 * The simulated device model: identity (GUID <-> SMBIOS UUID bytes with the
 * reference vectors of mps-cira.md §1.8, the same bytes in PROTOCOLVERSION
 * and PlatformGUID, templated GUIDs), the power state machine with the
 * firmware's errors for transitions it cannot make, and the persistence
 * round trip (and a corrupt state file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/amt_guid.h"
#include "dmt/apf.h"
#include "dmt/tls.h"
#include "sim_fixture.h"

static void hex_to_bytes(const char *hex, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char two[3] = {hex[2 * i], hex[2 * i + 1], 0};
    out[i] = (uint8_t)strtoul(two, NULL, 16);
  }
}

static void test_guid_reference_vectors(void **state) {
  static const struct { const char *guid, *uuid_hex; } vectors[] = {
      {"4c4c4544-004b-4210-8033-b6c04f504633", "44454C4C4B0010428033B6C04F504633"}, /* mps APFProcessor.test.ts */
      {"d162b380-c330-11e3-82a5-40a8f0a2a536", "80B362D130C3E31182A540A8F0A2A536"}, /* the AMT 9.1 capture */
  };
  struct sim *s = fixture_sim(1, "pre", NULL);
  for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    struct sim_device d;
    sim_device_init(s, &d, 0, vectors[i].guid);
    uint8_t expect[16];
    hex_to_bytes(vectors[i].uuid_hex, expect, 16);
    assert_memory_equal(d.uuid, expect, 16);
    assert_string_equal(d.guid, vectors[i].guid);
    /* PlatformGUID is the same bytes, uppercase hex (the MPS fixture's 44454C4C...) */
    char platform[33];
    sim_device_platform_guid(&d, platform);
    assert_string_equal(platform, vectors[i].uuid_hex);
    /* and PROTOCOLVERSION carries them raw at offset 13 */
    struct dmt_buf pv;
    dmt_buf_init(&pv, 0);
    dmt_apf_put_protocol_version(&pv, 1, 0, DMT_APF_TRIGGER_PERIODIC, d.uuid);
    assert_int_equal(dmt_buf_size(&pv), 93);
    assert_memory_equal(dmt_buf_ptr(&pv) + 13, expect, 16);
    char back[37];
    dmt_amt_uuid_to_guid(dmt_buf_ptr(&pv) + 13, back);
    assert_string_equal(back, vectors[i].guid);
    dmt_buf_free(&pv);
    sim_device_free(&d);
  }
  /* An uppercase GUID names the same device (DMT keys by the lowercase form). */
  struct sim_device d;
  sim_device_init(s, &d, 0, "4C4C4544-004B-4210-8033-B6C04F504633");
  assert_string_equal(d.guid, "4c4c4544-004b-4210-8033-b6c04f504633");
  sim_device_free(&d);
  fixture_sim_free(s);
}

static void test_templated_guids_and_realm(void **state) {
  struct sim *s = fixture_sim(300, "acm", NULL);
  assert_string_equal(s->devices[0].guid, FIXTURE_GUID_PREFIX "000000000000");
  assert_string_equal(s->devices[299].guid, FIXTURE_GUID_PREFIX "00000000012b");
  assert_ptr_equal(sim_fleet_find(s, FIXTURE_GUID_PREFIX "00000000012B"), &s->devices[299]);
  assert_null(sim_fleet_find(s, "00000000-0000-0000-0000-000000000000"));
  char realm[40], other[40];
  sim_device_realm(&s->devices[0], realm);
  sim_device_realm(&s->devices[1], other);
  assert_int_equal(strlen(realm), 39);
  assert_int_equal(strncmp(realm, "Digest:", 7), 0);
  assert_string_not_equal(realm, other); /* one realm per device, stable */
  for (size_t i = 1; i < 300; i++) assert_memory_not_equal(s->devices[i].uuid, s->devices[i - 1].uuid, 16);
  /* the LSA password handed to RPC differs per device */
  assert_string_not_equal(s->devices[0].lsa_password, s->devices[1].lsa_password);
  fixture_sim_free(s);
}

static void test_power_transitions(void **state) {
  struct sim *s = fixture_sim(1, "acm", NULL);
  struct sim_device *d = &s->devices[0];
  static const struct { long request; int rv; uint8_t after; } steps[] = {
      {2, AMT_RV_NOT_READY, 2},      /* power on when on */
      {8, AMT_RV_SUCCESS, 8},        /* off (soft) */
      {8, AMT_RV_NOT_READY, 8},      /* off when off */
      {10, AMT_RV_NOT_READY, 8},     /* reset needs a running machine */
      {4, AMT_RV_NOT_READY, 8},      /* sleep needs the OS */
      {2, AMT_RV_SUCCESS, 2},        /* on */
      {10, AMT_RV_SUCCESS, 2},       /* reset: back on */
      {5, AMT_RV_SUCCESS, 2},        /* power cycle */
      {4, AMT_RV_SUCCESS, 4},        /* sleep deep */
      {2, AMT_RV_SUCCESS, 2},        /* wake */
      {7, AMT_RV_SUCCESS, 7},        /* hibernate */
      {6, AMT_RV_NOT_READY, 7},      /* hard off of a hibernating machine: not from that state */
      {2, AMT_RV_SUCCESS, 2},
      {6, AMT_RV_SUCCESS, 6},        /* off (hard) */
      {99, AMT_RV_INVALID_PARAMETER, 6},
      {0, AMT_RV_INVALID_PARAMETER, 6},
  };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    assert_int_equal(amt_power_request(d, steps[i].request), steps[i].rv);
    assert_int_equal(d->power_state, steps[i].after);
  }
  fixture_sim_free(s);
}

static const struct sim_cert *make_cert(struct sim *s) {
  char err[256];
  EVP_PKEY *k = dmt_tls_rsa_key(2048);
  struct dmt_cert_spec spec = {.common_name = "MPSRoot-abc123", .org = "unknown", .is_ca = true, .days_valid = 30};
  X509 *x = dmt_tls_issue(&spec, k, NULL, NULL, err, sizeof err);
  unsigned char *der = NULL;
  int len = i2d_X509(x, &der);
  const struct sim_cert *c = sim_cert_intern(s, der, (size_t)len);
  OPENSSL_free(der);
  X509_free(x);
  EVP_PKEY_free(k);
  return c;
}

static void test_persistence_round_trip(void **state) {
  char dir[] = "/tmp/sim-state-XXXXXX";
  assert_non_null(mkdtemp(dir));
  struct sim *s = fixture_sim(3, "pre", dir);
  struct sim_device *d = &s->devices[1];
  d->mode = SIM_MODE_CCM;
  sim_device_set_amt_password(d, "N3w@Passw0rd");
  d->power_state = 8;
  d->dhcp = false;
  d->static_ip = 0x0A000105;
  snprintf(d->hostname, sizeof d->hostname, "%s", "renamed-host");
  d->detection_strings = strdup("a.example.com\nb.example.com");
  const struct sim_cert *root = make_cert(s);
  d->trust = sim_trust_with(s, NULL, root);
  struct sim_cira_config *c = sim_device_cira(d);
  c->host = sim_intern(s, "mps.example.com");
  c->port = 4433;
  c->info_format = 201;
  c->user = sim_intern(s, "ciraUser1");
  snprintf(c->password, sizeof c->password, "%s", "Mps@Passw0rd");
  c->has_mps = c->periodic = true;
  c->periodic_interval_s = 25;
  sim_device_save(d);
  char ha1[33], lsa[20];
  memcpy(ha1, d->amt_ha1, sizeof ha1);
  memcpy(lsa, d->lsa_password, sizeof lsa);
  char root_hex[65];
  memcpy(root_hex, root->sha256_hex, sizeof root_hex);
  fixture_sim_free(s);

  /* a new process: the certificate table starts empty, the device comes back as it was */
  s = fixture_sim(3, "pre", dir);
  d = &s->devices[1];
  assert_int_equal(d->mode, SIM_MODE_CCM);
  assert_string_equal(d->amt_ha1, ha1);
  assert_string_equal(d->lsa_password, lsa);
  assert_int_equal(d->power_state, 8);
  assert_false(d->dhcp);
  assert_int_equal(d->static_ip, 0x0A000105);
  assert_string_equal(d->hostname, "renamed-host");
  assert_string_equal(d->detection_strings, "a.example.com\nb.example.com");
  assert_non_null(d->trust);
  assert_int_equal(d->trust->n, 1);
  assert_string_equal(d->trust->certs[0]->sha256_hex, root_hex);
  assert_non_null(d->cira);
  assert_string_equal(d->cira->host, "mps.example.com");
  assert_string_equal(d->cira->user, "ciraUser1");
  assert_string_equal(d->cira->password, "Mps@Passw0rd");
  assert_true(d->cira->periodic);
  assert_true(sim_device_wants_cira(d));
  /* the other devices had nothing saved and stay factory-fresh */
  assert_int_equal(s->devices[0].mode, SIM_MODE_PRE);
  assert_null(s->devices[0].cira);

  /* a corrupt file is reported and leaves the defaults */
  char path[256];
  snprintf(path, sizeof path, "%s/%s.json", dir, s->devices[2].guid);
  FILE *f = fopen(path, "w");
  fputs("{\"mode\": 2, ", f);
  fclose(f);
  assert_int_equal(sim_device_restore(&s->devices[2]), -1);
  assert_int_equal(s->devices[2].mode, SIM_MODE_PRE);

  /* unprovisioning erases it all, on disk too */
  sim_device_unprovision(d);
  fixture_sim_free(s);
  s = fixture_sim(3, "pre", dir);
  d = &s->devices[1];
  assert_int_equal(d->mode, SIM_MODE_PRE);
  assert_null(d->cira);
  assert_null(d->trust);
  assert_string_equal(d->amt_ha1, "");
  fixture_sim_free(s);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_guid_reference_vectors),
      cmocka_unit_test(test_templated_guids_and_realm),
      cmocka_unit_test(test_power_transitions),
      cmocka_unit_test(test_persistence_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
