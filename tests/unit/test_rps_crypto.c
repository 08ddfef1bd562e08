/*
 * The RPS agent's cryptography against known answers
 * (../shared/reference/rps-activation.md §1.8, §1.9, §2.4):
 *  - NetworkAdminPassword = MD5("admin:<realm>:<password>") hex, and the
 *    SetAdminAclEntryEx base64 form, with the reference's and
 *    go-wsman-messages' vectors;
 *  - the AdminSetup signature: RSASSA-PKCS1-v1_5/SHA-256 over
 *    ConfigurationNonce || McNonce, (a) bit for bit the reference's vector
 *    made with the public vprodemo provisioning certificate (read from the
 *    shared DMT Postman collection; skipped where that is not beside the
 *    checkout), (b) a vector for a test key committed here, computed with
 *    `openssl dgst -sha256 -sign` (an independent implementation);
 *  - PKCS#12 loading: chain order leaf -> root whatever the file order, root
 *    fingerprints, key/cert mismatch, wrong password, legacy RC2 encryption;
 *  - root hash matching by length (SHA-1/256/384), the certificate/suffix
 *    rule, DMT's random password rule, the digest realm check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "dmt/tls.h"
#include "rps.h"

/* §1.9 */
static const char *const config_nonce_b64 = "SkqopmngrtkhdvcteznRbEdgqpc=";
static const char *const reference_signature =
    "rVK2ndsX+hpad3247y295QJt9ULnwU3qOtLLyPRWnyVHnIn150uXNrdKeC7DAEcsMxz6pSdYTn0Q17upkO7RPWBpIdKYHNOBoB67d7CDFOoeBZBHD"
    "PiOlszfutwW3lSQCZ2DTmdSoZh3hseDAZc/pHsa0w48pk7/6ZqvxO0Mh3wML4sbGI+NN/61EJrfE9TbvTbwiYuH/fZVmUNo3PrUxBfGgJfkCG8sR"
    "JGJSEPkVaErr0qp3VU+/1F8W1AwwvQxWGZQ+4HeZYHO6nDYHgv+NzaTTL1m427dU+nBjeOURmBt9IMkDdwcRFyOgzzdv+oUGXFJHLhvYblsZLJU20YrU"
    "g==";
/* openssl dgst -sha256 -sign tests/unit/data/rps_kat_key.pem over the same 40 bytes */
static const char *const kat_signature_file = RPS_TEST_DATA "/rps_kat_signature.txt";

static void mc_nonce(uint8_t out[20]) {
  for (int i = 0; i < 20; i++) out[i] = (uint8_t)(i + 1);
}

static void config_nonce(uint8_t **out, size_t *len) {
  assert_int_equal(rps_b64_decode(config_nonce_b64, strlen(config_nonce_b64), out, len), 0);
  assert_int_equal(*len, 20);
}

static void test_network_admin_password_vectors(void **state) {
  char h[DMT_DIGEST_HEX];
  /* §1.8 (CCM, profile password Sim@Passw0rd1) and §1.9 (ACM, Acm@Passw0rd1) */
  amt_network_admin_password("Digest:A3829B3827DE4D33D4449B366831FD01", "Sim@Passw0rd1", h);
  assert_string_equal(h, "8e3d887ccb6e62e6e2d06427617fcc1c");
  amt_network_admin_password("Digest:A3829B3827DE4D33D4449B366831FD01", "Acm@Passw0rd1", h);
  assert_string_equal(h, "dd04fc28fd625653aaca2cff5ecef690");
  /* go-wsman-messages' createMD5Hash vectors */
  amt_network_admin_password("digestRealm1", "adminPassword1", h);
  assert_string_equal(h, "7eab95087308c968d56947a05e916d6b");
  amt_network_admin_password("digestRealm2", "adminPassword2", h);
  assert_string_equal(h, "b404159c55fafd0b4a8e7d64833c7f26");
  amt_network_admin_password("Digest:Realm", "bebb3497d69b544c732651365cc3462d", h);
  assert_string_equal(h, "f73b2c17b1ecbd7a235ec37d66cbed71");
  /* SetAdminAclEntryEx: the same HA1 as base64 of its 16 bytes (§2.4) */
  char b[32];
  amt_acl_digest_password("Digest:A3829B3827DE4D33D4449B366831FD01", "Sim@Passw0rd1", b);
  assert_string_equal(b, "jj2IfMtuYubi0GQnYX/MHA==");
}

static void test_digest_response_vector(void **state) {
  /* §1.8: the second Get, authenticated as $$OsAdmin with the LSA password */
  struct dmt_digest_challenge c;
  assert_int_equal(dmt_digest_parse_challenge("Digest realm=\"Digest:A3829B3827DE4D33D4449B366831FD01\", "
                                              "nonce=\"dxNzCQ9JBAAAAAAAd2N7c6tYmUl0FFzQ\",stale=\"false\",qop=\"auth\"",
                                              &c),
                   0);
  char ha1[DMT_DIGEST_HEX];
  dmt_digest_ha1("$$OsAdmin", c.realm, "Lsa-Pa55word-From-HECI", ha1);
  assert_string_equal(ha1, "68516fee2dc8b9c1e85e2aaac3d59311");
  char auth[512];
  assert_true(dmt_digest_authorization("$$OsAdmin", "Lsa-Pa55word-From-HECI", &c, "POST", "/wsman", 1, "k2f9x", auth,
                                       sizeof auth) > 0);
  assert_non_null(strstr(auth, "response=\"5234b3b8e92aec8e58977d9b7fb9d8a7\""));
  assert_non_null(strstr(auth, "nc=\"00000001\",cnonce=\"k2f9x\""));
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) {
    buf[n] = '\0';
    if (len) *len = (size_t)n;
  }
  return buf;
}

static EVP_PKEY *kat_key(void) {
  FILE *f = fopen(RPS_TEST_DATA "/rps_kat_key.pem", "r");
  assert_non_null(f);
  EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  assert_non_null(k);
  return k;
}

static void test_signature_independent_vector(void **state) {
  uint8_t *cn, mc[20];
  size_t cnl;
  config_nonce(&cn, &cnl);
  mc_nonce(mc);
  EVP_PKEY *k = kat_key();
  char *sig = NULL;
  assert_int_equal(acm_sign(k, cn, cnl, mc, sizeof mc, &sig), 0);
  char *want = read_file(kat_signature_file, NULL);
  assert_non_null(want);
  want[strcspn(want, "\r\n")] = '\0';
  assert_string_equal(sig, want);
  /* the order matters: McNonce || ConfigurationNonce is another signature */
  char *swapped = NULL;
  assert_int_equal(acm_sign(k, mc, sizeof mc, cn, cnl, &swapped), 0);
  assert_string_not_equal(swapped, want);
  free(swapped);
  free(want);
  free(sig);
  free(cn);
  EVP_PKEY_free(k);
}

/* The vprodemo PFX of DMT's Postman collection (Apache-2.0, ../shared/conformance/dmt). */
static int vprodemo_pfx(uint8_t **p12, size_t *len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/conformance/dmt/rps.postman_collection.json", DMT_SHARED_DIR);
  json_t *root = json_load_file(path, 0, NULL);
  if (!root) return -1;
  int rc = -1;
  json_t *stack[64];
  size_t n = 0;
  stack[n++] = json_object_get(root, "item");
  while (n > 0 && rc != 0) {
    json_t *items = stack[--n];
    for (size_t i = 0; i < json_array_size(items) && rc != 0; i++) {
      json_t *it = json_array_get(items, i);
      if (json_object_get(it, "item") && n < 64) stack[n++] = json_object_get(it, "item");
      const char *name = json_string_value(json_object_get(it, "name"));
      if (!name || strcmp(name, "Create Domain (vprodemo)")) continue;
      const char *raw =
          json_string_value(json_object_get(json_object_get(json_object_get(it, "request"), "body"), "raw"));
      json_t *body = raw ? json_loads(raw, 0, NULL) : NULL;
      const char *cert = json_string_value(json_object_get(body, "provisioningCert"));
      if (cert && rps_b64_decode(cert, strlen(cert), p12, len) == 0) rc = 0;
      json_decref(body);
    }
  }
  json_decref(root);
  return rc;
}

static void test_signature_reference_vector(void **state) {
  uint8_t *p12 = NULL;
  size_t len = 0;
  if (vprodemo_pfx(&p12, &len) != 0) {
    print_message("shared conformance material not found under %s: reference vector not checked\n", DMT_SHARED_DIR);
    skip();
  }
  struct acm_chain *c = NULL;
  char err[256];
  assert_int_equal(acm_chain_load(p12, len, "P@ssw0rd", &c, err, sizeof err), 0);
  /* §1.9: two certificates, leaf first, and the root's fingerprints */
  assert_int_equal(c->ncerts, 2);
  assert_string_equal(c->leaf_cn, "intel.vprodemo.com");
  char *h[] = {"82F2ED575DB4ABE462499CF550DBFF9584980D70A0272894639C3653B9AD932C"};
  assert_true(acm_root_trusted(c, h, 1));
  char *h1[] = {"00", "47d7b7db23f3e300189f54802482b1bd18b945ef"};
  assert_true(acm_root_trusted(c, h1, 2));
  char *leaf[] = {"0e599e5f687c7a1bf48a15e1d272530676b2171597271f9a7f8c8ad983a1f7e0"};
  assert_false(acm_root_trusted(c, leaf, 1)); /* the leaf's hash is not the root's */
  assert_true(acm_domain_matches(c->leaf_cn, "vprodemo.com"));
  assert_true(acm_domain_matches(c->leaf_cn, "a.b.VPRODEMO.com."));
  assert_false(acm_domain_matches(c->leaf_cn, "vprodemo.org"));
  uint8_t *cn, mc[20];
  size_t cnl;
  config_nonce(&cn, &cnl);
  mc_nonce(mc);
  char *sig = NULL;
  assert_int_equal(acm_sign(c->key, cn, cnl, mc, sizeof mc, &sig), 0);
  assert_string_equal(sig, reference_signature);
  free(sig);
  free(cn);
  /* a wrong password is refused */
  struct acm_chain *bad = NULL;
  assert_int_equal(acm_chain_load(p12, len, "wrong", &bad, err, sizeof err), -1);
  assert_null(bad);
  acm_chain_unref(c);
  free(p12);
}

/* ---- chains built here ---- */

struct pki {
  EVP_PKEY *rk, *ik, *lk, *other;
  X509 *root, *inter, *leaf;
};

static void pki_make(struct pki *p, int leaf_days_valid) {
  char err[256];
  p->rk = dmt_tls_rsa_key(2048);
  p->ik = dmt_tls_rsa_key(2048);
  p->lk = dmt_tls_rsa_key(2048);
  p->other = dmt_tls_rsa_key(2048);
  struct dmt_cert_spec root = {.common_name = "Test Provisioning Root", .is_ca = true, .days_before = 1,
                               .days_valid = 3650};
  struct dmt_cert_spec inter = {.common_name = "Test Provisioning Issuing CA", .is_ca = true, .days_before = 1,
                                .days_valid = 3650};
  struct dmt_cert_spec leaf = {.common_name = "rps.example.com", .ext_key_usage = "serverAuth,2.16.840.1.113741.1.2.3",
                               .days_before = 2, .days_valid = leaf_days_valid};
  p->root = dmt_tls_issue(&root, p->rk, NULL, NULL, err, sizeof err);
  p->inter = dmt_tls_issue(&inter, p->ik, p->root, p->rk, err, sizeof err);
  p->leaf = dmt_tls_issue(&leaf, p->lk, p->inter, p->ik, err, sizeof err);
  assert_non_null(p->root);
  assert_non_null(p->inter);
  assert_non_null(p->leaf);
}

static void pki_free(struct pki *p) {
  EVP_PKEY_free(p->rk);
  EVP_PKEY_free(p->ik);
  EVP_PKEY_free(p->lk);
  EVP_PKEY_free(p->other);
  X509_free(p->root);
  X509_free(p->inter);
  X509_free(p->leaf);
}

/* A PKCS#12 of key + leaf with `extra` (in that order), encrypted with nid_cert/nid_key (0 = defaults). */
static uint8_t *make_p12(EVP_PKEY *key, X509 *leaf, X509 **extra, int nextra, int nid, size_t *len) {
  STACK_OF(X509) *ca = sk_X509_new_null();
  for (int i = 0; i < nextra; i++) sk_X509_push(ca, extra[i]);
  PKCS12 *p12 = PKCS12_create("Secret-P12", "friendly", key, leaf, ca, nid, nid, 0, 0, 0);
  sk_X509_free(ca);
  if (!p12) return NULL;
  unsigned char *der = NULL;
  int n = i2d_PKCS12(p12, &der);
  PKCS12_free(p12);
  uint8_t *out = malloc((size_t)n);
  memcpy(out, der, (size_t)n);
  OPENSSL_free(der);
  *len = (size_t)n;
  return out;
}

static void hex_digest(X509 *x, const EVP_MD *md, char *out) {
  uint8_t d[64];
  unsigned n = 0;
  X509_digest(x, md, d, &n);
  for (unsigned i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_chain_order_and_hashes(void **state) {
  assert_int_equal(acm_init_providers(), 0);
  struct pki p;
  pki_make(&p, 365);
  /* root before intermediate in the file: the loader orders by issuer */
  X509 *extra[] = {p.root, p.inter};
  size_t len;
  uint8_t *der = make_p12(p.lk, p.leaf, extra, 2, 0, &len);
  assert_non_null(der);
  struct acm_chain *c = NULL;
  char err[256];
  assert_int_equal(acm_chain_load(der, len, "Secret-P12", &c, err, sizeof err), 0);
  assert_int_equal(c->ncerts, 3);
  char *want[3];
  X509 *order[] = {p.leaf, p.inter, p.root};
  for (int i = 0; i < 3; i++) {
    unsigned char *d = NULL;
    int n = i2d_X509(order[i], &d);
    want[i] = rps_b64_encode(d, (size_t)n);
    OPENSSL_free(d);
    assert_string_equal(c->certs_b64[i], want[i]);
    assert_null(strchr(c->certs_b64[i], '\n')); /* one line, no PEM armour */
    free(want[i]);
  }
  char h1[41], h256[65], h384[97], hl[65];
  hex_digest(p.root, EVP_sha1(), h1);
  hex_digest(p.root, EVP_sha256(), h256);
  hex_digest(p.root, EVP_sha384(), h384);
  hex_digest(p.leaf, EVP_sha256(), hl);
  char *a[] = {h1}, *b[] = {h256}, *d3[] = {h384}, *l[] = {hl};
  assert_true(acm_root_trusted(c, a, 1));
  assert_true(acm_root_trusted(c, b, 1));
  assert_true(acm_root_trusted(c, d3, 1));
  assert_false(acm_root_trusted(c, l, 1));
  h256[10] = h256[10] == '0' ? '1' : '0';
  assert_false(acm_root_trusted(c, b, 1));
  /* a hash of the right value but the wrong length does not count */
  h1[39] = '\0';
  assert_false(acm_root_trusted(c, a, 1));
  /* the signature verifies with the leaf's public key */
  uint8_t cn[20] = {9}, mc[20] = {7};
  char *sig = NULL;
  assert_int_equal(acm_sign(c->key, cn, 20, mc, 20, &sig), 0);
  uint8_t *raw;
  size_t rawlen;
  assert_int_equal(rps_b64_decode(sig, strlen(sig), &raw, &rawlen), 0);
  uint8_t data[40];
  memcpy(data, cn, 20);
  memcpy(data + 20, mc, 20);
  EVP_MD_CTX *v = EVP_MD_CTX_new();
  assert_int_equal(EVP_DigestVerifyInit(v, NULL, EVP_sha256(), NULL, X509_get0_pubkey(p.leaf)), 1);
  assert_int_equal(EVP_DigestVerify(v, raw, rawlen, data, 40), 1);
  EVP_MD_CTX_free(v);
  free(raw);
  free(sig);
  acm_chain_unref(c);
  free(der);
  /* an incomplete chain (no root) is refused */
  X509 *only_inter[] = {p.inter};
  der = make_p12(p.lk, p.leaf, only_inter, 1, 0, &len);
  assert_int_equal(acm_chain_load(der, len, "Secret-P12", &c, err, sizeof err), -1);
  assert_non_null(strstr(err, "Failed to extract domain certificate"));
  free(der);
  /* legacy RC2-40 encryption (old PFX files) loads with the legacy provider */
  der = make_p12(p.lk, p.leaf, extra, 2, NID_pbe_WithSHA1And40BitRC2_CBC, &len);
  assert_non_null(der);
  assert_int_equal(acm_chain_load(der, len, "Secret-P12", &c, err, sizeof err), 0);
  assert_int_equal(c->ncerts, 3);
  acm_chain_unref(c);
  free(der);
  /* garbage */
  assert_int_equal(acm_chain_load((const uint8_t *)"nope", 4, "x", &c, err, sizeof err), -1);
  pki_free(&p);
}

static void test_chain_validity_window(void **state) {
  struct pki p;
  pki_make(&p, -1); /* the leaf expired yesterday */
  X509 *extra[] = {p.inter, p.root};
  size_t len;
  uint8_t *der = make_p12(p.lk, p.leaf, extra, 2, 0, &len);
  struct acm_chain *c = NULL;
  char err[256];
  assert_int_equal(acm_chain_load(der, len, "Secret-P12", &c, err, sizeof err), 0);
  assert_true(c->not_after_min < (int64_t)time(NULL));
  assert_true(c->not_before_max <= (int64_t)time(NULL));
  acm_chain_unref(c);
  free(der);
  pki_free(&p);
}

static void test_random_password_rule(void **state) {
  for (int i = 0; i < 500; i++) {
    char pw[17];
    assert_int_equal(amt_random_password(pw, sizeof pw), 0);
    assert_int_equal(strlen(pw), 16);
    bool up = false, lo = false, dig = false, sp = false;
    for (const char *c = pw; *c; c++) {
      assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!@#$%^*()", *c));
      up |= *c >= 'A' && *c <= 'Z';
      lo |= *c >= 'a' && *c <= 'z';
      dig |= *c >= '0' && *c <= '9';
      sp |= strchr("$@!%*#?", *c) != NULL;
    }
    assert_true(up && lo && dig && sp);
  }
  char small[8];
  assert_int_equal(amt_random_password(small, sizeof small), -1);
}

static void test_realm(void **state) {
  assert_true(amt_realm_valid("Digest:A4070000000000000000000000000000"));
  assert_true(amt_realm_valid("Digest:a3829b3827de4d33d4449b366831fd01"));
  assert_false(amt_realm_valid("Gist:A4070000000000000000000000000000"));
  assert_false(amt_realm_valid("Digest:A40700000000000000000000000000000"));
  assert_false(amt_realm_valid("Digest:A407000000000000000000000000000G"));
  assert_false(amt_realm_valid(NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_network_admin_password_vectors),
      cmocka_unit_test(test_digest_response_vector),
      cmocka_unit_test(test_signature_independent_vector),
      cmocka_unit_test(test_signature_reference_vector),
      cmocka_unit_test(test_chain_order_and_hashes),
      cmocka_unit_test(test_chain_validity_window),
      cmocka_unit_test(test_random_password_rule),
      cmocka_unit_test(test_realm),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
