/*
 * Admin control mode activation as firmware checks it: the provisioning
 * chain from AddNextCertInChain (order, issuer signatures, self-signed root,
 * length), the root hash against the trusted hash table (SHA-1/256/384), the
 * AMT activation EKU, the DNS suffix, and the RSASSA-PKCS1-v1_5 / SHA-256
 * signature over ConfigurationNonce || McNonce with the leaf's key: a valid
 * signature activates, a tampered one fails with AUTH_FAILED exactly like
 * real firmware, and the whole IPS_HostBasedSetupService exchange runs over
 * WS-Man the way RPS drives it (rps-activation.md §1.9, §2.4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "dmt/digest.h"
#include "dmt/tls.h"
#include "sim_fixture.h"

struct pki {
  EVP_PKEY *root_key, *leaf_key, *other_key;
  X509 *root, *leaf, *leaf_no_eku, *other_root;
  uint8_t *root_der, *leaf_der, *leaf_no_eku_der, *other_root_der;
  int root_len, leaf_len, leaf_no_eku_len, other_root_len;
  struct sim_hash trusted;
};

static struct pki P;

static X509 *issue(const char *cn, bool ca, const char *eku, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key) {
  char err[256];
  struct dmt_cert_spec s = {.common_name = cn, .org = "Test", .is_ca = ca, .ext_key_usage = eku, .days_before = 1,
                            .days_valid = 30};
  X509 *x = dmt_tls_issue(&s, key, issuer, issuer_key, err, sizeof err);
  if (!x) fprintf(stderr, "issue: %s\n", err);
  return x;
}

static int setup(void **state) {
  P.root_key = dmt_tls_rsa_key(2048);
  P.leaf_key = dmt_tls_rsa_key(2048);
  P.other_key = dmt_tls_rsa_key(2048);
  P.root = issue("CA Custom Root Certificate", true, NULL, P.root_key, NULL, NULL);
  P.leaf = issue("intel.vprodemo.com", false, "serverAuth," AMT_ACM_EKU_OID, P.leaf_key, P.root, P.root_key);
  P.leaf_no_eku = issue("intel.vprodemo.com", false, "serverAuth", P.leaf_key, P.root, P.root_key);
  P.other_root = issue("Another Root", true, NULL, P.other_key, NULL, NULL);
  P.root_len = i2d_X509(P.root, &P.root_der);
  P.leaf_len = i2d_X509(P.leaf, &P.leaf_der);
  P.leaf_no_eku_len = i2d_X509(P.leaf_no_eku, &P.leaf_no_eku_der);
  P.other_root_len = i2d_X509(P.other_root, &P.other_root_der);
  unsigned n = 0;
  X509_digest(P.root, EVP_sha256(), P.trusted.md, &n);
  P.trusted.len = (uint8_t)n;
  return P.root && P.leaf && P.leaf_no_eku && P.other_root ? 0 : -1;
}

static int teardown(void **state) {
  X509_free(P.root);
  X509_free(P.leaf);
  X509_free(P.leaf_no_eku);
  X509_free(P.other_root);
  OPENSSL_free(P.root_der);
  OPENSSL_free(P.leaf_der);
  OPENSSL_free(P.leaf_no_eku_der);
  OPENSSL_free(P.other_root_der);
  EVP_PKEY_free(P.root_key);
  EVP_PKEY_free(P.leaf_key);
  EVP_PKEY_free(P.other_key);
  return 0;
}

/* What RPS does: RSASSA-PKCS1-v1_5 with SHA-256 over ConfigurationNonce || McNonce. */
static size_t sign(const uint8_t nonce[20], const uint8_t mc[20], uint8_t *sig, size_t cap) {
  uint8_t data[40];
  memcpy(data, nonce, 20);
  memcpy(data + 20, mc, 20);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  size_t len = cap;
  assert_int_equal(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, P.leaf_key), 1);
  assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING), 1);
  assert_int_equal(EVP_DigestSign(ctx, sig, &len, data, sizeof data), 1);
  EVP_MD_CTX_free(ctx);
  return len;
}

static void full_chain(struct sim_acm_chain *ch) {
  assert_int_equal(amt_chain_add(ch, P.leaf_der, (size_t)P.leaf_len, true, false), AMT_CHAIN_SUCCESS);
  assert_false(ch->complete);
  assert_int_equal(amt_chain_add(ch, P.root_der, (size_t)P.root_len, false, true), AMT_CHAIN_SUCCESS);
  assert_true(ch->complete);
}

static void test_chain_rules(void **state) {
  struct sim_acm_chain ch = {0};
  /* must start with the leaf */
  assert_int_equal(amt_chain_add(&ch, P.root_der, (size_t)P.root_len, false, true), AMT_CHAIN_INVALID_STATE);
  /* garbage is an invalid parameter */
  uint8_t junk[40] = {0x30, 0x03, 1, 2, 3};
  assert_int_equal(amt_chain_add(&ch, junk, sizeof junk, true, false), AMT_CHAIN_INVALID_PARAM);
  /* a root that did not issue the leaf breaks the chain */
  assert_int_equal(amt_chain_add(&ch, P.leaf_der, (size_t)P.leaf_len, true, false), AMT_CHAIN_SUCCESS);
  assert_int_equal(amt_chain_add(&ch, P.other_root_der, (size_t)P.other_root_len, false, true),
                   AMT_CHAIN_CERT_VERIFY_FAILED);
  assert_int_equal(ch.n, 0); /* discarded */
  /* the right one completes it; nothing may follow the root */
  full_chain(&ch);
  assert_int_equal(amt_chain_add(&ch, P.root_der, (size_t)P.root_len, false, true), AMT_CHAIN_INVALID_STATE);
  /* a new leaf starts over; more than four certificates is too long */
  assert_int_equal(amt_chain_add(&ch, P.leaf_der, (size_t)P.leaf_len, true, false), AMT_CHAIN_SUCCESS);
  assert_int_equal(ch.n, 1);
  amt_chain_free(&ch);
  struct sim_acm_chain longc = {0};
  assert_int_equal(amt_chain_add(&longc, P.root_der, (size_t)P.root_len, true, false), AMT_CHAIN_SUCCESS);
  for (int i = 0; i < 3; i++)
    assert_int_equal(amt_chain_add(&longc, P.root_der, (size_t)P.root_len, false, false), AMT_CHAIN_SUCCESS);
  assert_int_equal(amt_chain_add(&longc, P.root_der, (size_t)P.root_len, false, true), AMT_CHAIN_LENGTH_EXCEEDED);
  amt_chain_free(&longc);
}

static void test_signature_valid_and_tampered(void **state) {
  struct sim_acm_chain ch = {0};
  full_chain(&ch);
  uint8_t nonce[20], mc[20], sig[512];
  RAND_bytes(nonce, sizeof nonce);
  for (int i = 0; i < 20; i++) mc[i] = (uint8_t)(i + 1); /* the reference's McNonce 0x01..0x14 */
  size_t sig_len = sign(nonce, mc, sig, sizeof sig);
  const char *why = NULL;
  assert_int_equal(amt_acm_verify(&ch, &P.trusted, 1, "vprodemo.com", nonce, mc, 20, 2, sig, sig_len, &why),
                   AMT_HBS_SUCCESS);
  /* a sub-domain of the certificate's domain is fine too */
  assert_int_equal(amt_acm_verify(&ch, &P.trusted, 1, "site1.vprodemo.com", nonce, mc, 20, 2, sig, sig_len, NULL),
                   AMT_HBS_SUCCESS);

  uint8_t bad[512];
  memcpy(bad, sig, sig_len);
  bad[sig_len / 2] ^= 0x01; /* one bit */
  assert_int_equal(amt_acm_verify(&ch, &P.trusted, 1, "vprodemo.com", nonce, mc, 20, 2, bad, sig_len, &why),
                   AMT_HBS_AUTH_FAILED);
  assert_non_null(strstr(why, "signature"));
  /* the right signature over another nonce (a replay) */
  uint8_t other[20];
  memcpy(other, nonce, 20);
  other[0] ^= 0xFF;
  assert_int_equal(amt_acm_verify(&ch, &P.trusted, 1, "vprodemo.com", other, mc, 20, 2, sig, sig_len, NULL),
                   AMT_HBS_AUTH_FAILED);
  /* SHA-1 signing algorithm with a SHA-256 signature */
  assert_int_equal(amt_acm_verify(&ch, &P.trusted, 1, "vprodemo.com", nonce, mc, 20, 1, sig, sig_len, NULL),
                   AMT_HBS_AUTH_FAILED);
  /* malformed inputs */
  assert_int_equal(amt_acm_verify(&ch, &P.trusted, 1, "vprodemo.com", nonce, mc, 19, 2, sig, sig_len, NULL),
                   AMT_HBS_INVALID_PARAM);
  assert_int_equal(amt_acm_verify(&ch, &P.trusted, 1, "vprodemo.com", nonce, mc, 20, 3, sig, sig_len, NULL),
                   AMT_HBS_INVALID_PARAM);
  amt_chain_free(&ch);
}

static void test_trust_eku_and_suffix(void **state) {
  struct sim_acm_chain ch = {0};
  full_chain(&ch);
  uint8_t nonce[20] = {9}, mc[20] = {7}, sig[512];
  size_t sig_len = sign(nonce, mc, sig, sizeof sig);
  const char *why = NULL;
  /* the root is not in the device's hash table */
  struct sim_hash other = P.trusted;
  other.md[0] ^= 1;
  assert_int_equal(amt_acm_verify(&ch, &other, 1, "vprodemo.com", nonce, mc, 20, 2, sig, sig_len, &why),
                   AMT_HBS_AUTH_FAILED);
  assert_non_null(strstr(why, "hash"));
  /* SHA-1 and SHA-384 entries match by length */
  struct sim_hash sha1 = {0}, sha384 = {0};
  unsigned n = 0;
  X509_digest(P.root, EVP_sha1(), sha1.md, &n);
  sha1.len = (uint8_t)n;
  X509_digest(P.root, EVP_sha384(), sha384.md, &n);
  sha384.len = (uint8_t)n;
  assert_true(amt_hash_trusted(P.root, &sha1, 1));
  assert_true(amt_hash_trusted(P.root, &sha384, 1));
  assert_false(amt_hash_trusted(P.other_root, &sha384, 1));
  /* DNS suffix of another domain */
  assert_int_equal(amt_acm_verify(&ch, &P.trusted, 1, "example.org", nonce, mc, 20, 2, sig, sig_len, &why),
                   AMT_HBS_AUTH_FAILED);
  assert_int_equal(amt_acm_verify(&ch, &P.trusted, 1, "notvprodemo.com", nonce, mc, 20, 2, sig, sig_len, NULL),
                   AMT_HBS_AUTH_FAILED);
  amt_chain_free(&ch);
  /* a leaf without the AMT activation EKU */
  assert_int_equal(amt_chain_add(&ch, P.leaf_no_eku_der, (size_t)P.leaf_no_eku_len, true, false), AMT_CHAIN_SUCCESS);
  assert_int_equal(amt_chain_add(&ch, P.root_der, (size_t)P.root_len, false, true), AMT_CHAIN_SUCCESS);
  assert_int_equal(amt_acm_verify(&ch, &P.trusted, 1, "vprodemo.com", nonce, mc, 20, 2, sig, sig_len, &why),
                   AMT_HBS_AUTH_FAILED);
  assert_non_null(strstr(why, "EKU"));
  amt_chain_free(&ch);
  /* no chain at all */
  assert_int_equal(amt_acm_verify(NULL, &P.trusted, 1, "vprodemo.com", nonce, mc, 20, 2, sig, sig_len, NULL),
                   AMT_HBS_INVALID_STATE);
}

static char *b64(const uint8_t *p, size_t n) { return sim_base64_encode(p, n); }

/* The RPS sequence over WS-Man; returns AdminSetup's ReturnValue. */
static long admin_setup_over_wsman(struct sim_device *d, bool tamper) {
  struct dmt_wsman_response resp;
  char *env = fixture_get("IPS_HostBasedSetupService");
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_LOCAL, "$$OsAdmin", d->lsa_password, env, &resp), 200);
  free(env);
  json_t *j = fixture_json(&resp);
  assert_int_equal(json_integer_value(fixture_path(j, "Body.IPS_HostBasedSetupService.CurrentControlMode")), 0);
  assert_int_equal(json_integer_value(fixture_path(j, "Body.IPS_HostBasedSetupService.CertChainStatus")), 0);
  uint8_t *nonce = NULL;
  assert_int_equal(sim_base64_decode(json_string_value(
                                         fixture_path(j, "Body.IPS_HostBasedSetupService.ConfigurationNonce")),
                                     &nonce),
                   20);
  json_decref(j);
  dmt_wsman_response_free(&resp);

  char *leaf = b64(P.leaf_der, (size_t)P.leaf_len), *root = b64(P.root_der, (size_t)P.root_len);
  struct dmt_wsman_param c1[] = {{"NextCertificate", leaf, false}, {"IsLeafCertificate", "true", false},
                                 {"IsRootCertificate", "false", false}};
  struct dmt_wsman_param c2[] = {{"NextCertificate", root, false}, {"IsLeafCertificate", "false", false},
                                 {"IsRootCertificate", "true", false}};
  env = fixture_invoke("IPS_HostBasedSetupService", "AddNextCertInChain", c1, 3);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_LOCAL, "$$OsAdmin", d->lsa_password, env, &resp), 200);
  assert_int_equal(fixture_return_value(&resp, "AddNextCertInChain"), 0);
  dmt_wsman_response_free(&resp);
  free(env);
  env = fixture_invoke("IPS_HostBasedSetupService", "AddNextCertInChain", c2, 3);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_LOCAL, "$$OsAdmin", d->lsa_password, env, &resp), 200);
  assert_int_equal(fixture_return_value(&resp, "AddNextCertInChain"), 0);
  dmt_wsman_response_free(&resp);
  free(env);

  uint8_t mc[20], sig[512];
  RAND_bytes(mc, sizeof mc);
  size_t sig_len = sign(nonce, mc, sig, sizeof sig);
  if (tamper) sig[3] ^= 0x80;
  char realm[40], ha1[33];
  sim_device_realm(d, realm);
  dmt_digest_ha1("admin", realm, "Acm@Passw0rd1", ha1);
  char *mc64 = b64(mc, 20), *sig64 = b64(sig, sig_len);
  struct dmt_wsman_param a[] = {{"NetAdminPassEncryptionType", "2", false}, {"NetworkAdminPassword", ha1, false},
                                {"McNonce", mc64, false}, {"SigningAlgorithm", "2", false},
                                {"DigitalSignature", sig64, false}};
  env = fixture_invoke("IPS_HostBasedSetupService", "AdminSetup", a, 5);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_LOCAL, "$$OsAdmin", d->lsa_password, env, &resp), 200);
  long rv = fixture_return_value(&resp, "AdminSetup");
  dmt_wsman_response_free(&resp);
  free(env);
  free(leaf);
  free(root);
  free(mc64);
  free(sig64);
  free(nonce);
  return rv;
}

static void test_admin_setup_over_wsman(void **state) {
  struct sim *s = fixture_sim(2, "pre", NULL);
  s->acm_hashes = malloc(sizeof P.trusted);
  s->acm_hashes[0] = P.trusted;
  s->nacm_hashes = 1;

  struct sim_device *d = &s->devices[0];
  assert_int_equal(admin_setup_over_wsman(d, false), AMT_HBS_SUCCESS);
  assert_int_equal(d->mode, SIM_MODE_ACM);
  assert_int_equal(s->count.activations_acm, 1);
  /* the new admin password works, and the device says so */
  char *env = fixture_get("IPS_HostBasedSetupService");
  struct dmt_wsman_response resp;
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", "Acm@Passw0rd1", env, &resp), 200);
  json_t *j = fixture_json(&resp);
  assert_int_equal(json_integer_value(fixture_path(j, "Body.IPS_HostBasedSetupService.CurrentControlMode")), 2);
  json_decref(j);
  dmt_wsman_response_free(&resp);
  free(env);

  struct sim_device *t = &s->devices[1];
  assert_int_equal(admin_setup_over_wsman(t, true), AMT_HBS_AUTH_FAILED);
  assert_int_equal(t->mode, SIM_MODE_PRE);
  assert_string_equal(t->amt_ha1, "");
  assert_int_equal(s->count.activations_acm, 1);
  fixture_sim_free(s);
}

static void test_ccm_setup_then_upgrade_refused_without_chain(void **state) {
  struct sim *s = fixture_sim(1, "pre", NULL);
  struct sim_device *d = &s->devices[0];
  char realm[40], ha1[33];
  sim_device_realm(d, realm);
  dmt_digest_ha1("admin", realm, "Ccm@Passw0rd1", ha1);
  struct dmt_wsman_param p[] = {{"NetAdminPassEncryptionType", "2", false}, {"NetworkAdminPassword", ha1, false}};
  char *env = fixture_invoke("IPS_HostBasedSetupService", "Setup", p, 2);
  struct dmt_wsman_response resp;
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_LOCAL, "$$OsAdmin", d->lsa_password, env, &resp), 200);
  assert_int_equal(fixture_return_value(&resp, "Setup"), 0);
  dmt_wsman_response_free(&resp);
  assert_int_equal(d->mode, SIM_MODE_CCM);
  /* a second Setup (RPS re-sends on timeouts) finds the device already in client control mode */
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", "Ccm@Passw0rd1", env, &resp), 200);
  assert_int_equal(fixture_return_value(&resp, "Setup"), AMT_HBS_INVALID_STATE);
  dmt_wsman_response_free(&resp);
  free(env);
  struct dmt_wsman_param u[] = {{"McNonce", "AQIDBAUGBwgJCgsMDQ4PEBESExQ=", false}, {"SigningAlgorithm", "2", false},
                                {"DigitalSignature", "AAAA", false}};
  env = fixture_invoke("IPS_HostBasedSetupService", "UpgradeClientToAdmin", u, 3);
  assert_int_equal(fixture_wsman(d, SIM_TRANSPORT_CIRA, "admin", "Ccm@Passw0rd1", env, &resp), 200);
  assert_int_equal(fixture_return_value(&resp, "UpgradeClientToAdmin"), AMT_HBS_INVALID_STATE);
  dmt_wsman_response_free(&resp);
  free(env);
  assert_int_equal(d->mode, SIM_MODE_CCM);
  fixture_sim_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chain_rules),
      cmocka_unit_test(test_signature_valid_and_tampered),
      cmocka_unit_test(test_trust_eku_and_suffix),
      cmocka_unit_test(test_admin_setup_over_wsman),
      cmocka_unit_test(test_ccm_setup_then_upgrade_refused_without_chain),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
