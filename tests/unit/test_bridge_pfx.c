/*
 * Provisioning-certificate checks (agents/bridge/pfx.c) on PKCS#12 files built
 * here with OpenSSL: each rule of rps-activation.md §3.4 rejects exactly the
 * file that breaks it, with DMT's message, in DMT's order; a legacy RC2 file
 * (as one of DMT's Postman PFXs is) decrypts; the earliest notAfter is
 * reported. Also the MPS certificate-upload check (DER/PEM, expiry).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bridge.h"
#include "dmt/tls.h"

#define AMT_EKU "2.16.840.1.113741.1.2.3"
#define DECRYPT                                                                                              \
  "Unable to decrypt provisioning certificate. Please check that the password is correct, and that the " \
  "certificate is a valid certificate."

static EVP_PKEY *root_key, *leaf_key, *other_key;

static int setup(void **state) {
  br_pfx_init();
  root_key = dmt_tls_rsa_key(2048);
  leaf_key = dmt_tls_rsa_key(2048);
  other_key = dmt_tls_rsa_key(2048);
  return root_key && leaf_key && other_key ? 0 : -1;
}

static int teardown(void **state) {
  EVP_PKEY_free(root_key);
  EVP_PKEY_free(leaf_key);
  EVP_PKEY_free(other_key);
  br_pfx_cleanup();
  return 0;
}

static X509 *make_root(const char *cn, EVP_PKEY *k, int before, int valid) {
  char err[256];
  struct dmt_cert_spec s = {.common_name = cn, .is_ca = true, .days_before = before, .days_valid = valid};
  X509 *x = dmt_tls_issue(&s, k, NULL, NULL, err, sizeof err);
  assert_non_null(x);
  return x;
}

static X509 *make_leaf(const char *cn, EVP_PKEY *k, X509 *issuer, EVP_PKEY *issuer_key, const char *eku, int before,
                       int valid) {
  char err[256];
  struct dmt_cert_spec s = {.common_name = cn, .ext_key_usage = eku, .days_before = before, .days_valid = valid};
  X509 *x = dmt_tls_issue(&s, k, issuer, issuer_key, err, sizeof err);
  assert_non_null(x);
  return x;
}

/* base64 PKCS#12 of key + certs (the first one is the leaf), encrypted with nid_cert/nid_key. */
static char *pfx(const char *pass, EVP_PKEY *key, X509 *leaf, X509 *const *chain, int nchain, int nid_cert,
                 int nid_key) {
  STACK_OF(X509) *ca = sk_X509_new_null();
  for (int i = 0; i < nchain; i++) sk_X509_push(ca, chain[i]);
  PKCS12 *p12 = PKCS12_create(pass, "test", key, leaf, ca, nid_key, nid_cert, 2048, 1, 0);
  sk_X509_free(ca);
  assert_non_null(p12);
  unsigned char *der = NULL;
  int n = i2d_PKCS12(p12, &der);
  PKCS12_free(p12);
  char *b64 = malloc((size_t)n * 2 + 4);
  EVP_EncodeBlock((unsigned char *)b64, der, n);
  OPENSSL_free(der);
  return b64;
}

static int check(const char *b64, const char *pass, const char *suffix, struct br_pfx_info *info, char *msg) {
  return br_pfx_check(b64, pass, suffix, true, info, msg, 512);
}

static void test_valid_chain(void **state) {
  X509 *root = make_root("Test Root", root_key, 1, 3650);
  X509 *leaf = make_leaf("intel.vprodemo.com", leaf_key, root, root_key, "serverAuth," AMT_EKU, 1, 365);
  char *b64 = pfx("P@ssw0rd", leaf_key, leaf, &root, 1, NID_aes_256_cbc, NID_aes_256_cbc);
  struct br_pfx_info info;
  char msg[512] = "";
  assert_int_equal(check(b64, "P@ssw0rd", "vprodemo.com", &info, msg), 0);
  assert_string_equal(info.cn, "intel.vprodemo.com");
  /* the earliest notAfter is the leaf's (365 days, the root has 3650) */
  int64_t days = (info.not_after_min - (int64_t)time(NULL)) / 86400;
  assert_true(days >= 364 && days <= 365);
  /* the last two labels must match: a deeper suffix of the same domain is fine, another domain is not */
  assert_int_equal(check(b64, "P@ssw0rd", "x.vprodemo.com", &info, msg), 0);
  assert_int_equal(check(b64, "P@ssw0rd", "vprodemo.org", &info, msg), -1);
  assert_string_equal(msg, "FQDN not associated with provisioning certificate");
  /* parse-only mode (PATCH) skips the suffix rule */
  assert_int_equal(br_pfx_check(b64, "P@ssw0rd", NULL, false, &info, msg, sizeof msg), 0);
  free(b64);
  X509_free(root);
  X509_free(leaf);
}

static void test_wrong_password_and_garbage(void **state) {
  X509 *root = make_root("Test Root", root_key, 1, 3650);
  X509 *leaf = make_leaf("a.test.com", leaf_key, root, root_key, AMT_EKU, 1, 365);
  char *b64 = pfx("right-one", leaf_key, leaf, &root, 1, NID_aes_256_cbc, NID_aes_256_cbc);
  struct br_pfx_info info;
  char msg[512];
  assert_int_equal(check(b64, "wrong-one", "test.com", &info, msg), -1);
  assert_string_equal(msg, DECRYPT);
  assert_int_equal(check("dGVzdA==", "x", "test.com", &info, msg), -1);
  assert_string_equal(msg, DECRYPT);
  assert_int_equal(check("", "x", "test.com", &info, msg), -1);
  assert_string_equal(msg, DECRYPT);
  free(b64);
  X509_free(root);
  X509_free(leaf);
}

static void test_legacy_rc2(void **state) {
  X509 *root = make_root("Legacy Root", root_key, 1, 3650);
  X509 *leaf = make_leaf("test.test.com", leaf_key, root, root_key, AMT_EKU, 1, 365);
  char *b64 = pfx("Intel123!", leaf_key, leaf, &root, 1, NID_pbe_WithSHA1And40BitRC2_CBC,
                  NID_pbe_WithSHA1And3_Key_TripleDES_CBC);
  struct br_pfx_info info;
  char msg[512] = "";
  assert_int_equal(check(b64, "Intel123!", "test.com", &info, msg), 0);
  free(b64);
  X509_free(root);
  X509_free(leaf);
}

static void test_validity(void **state) {
  X509 *root = make_root("Root", root_key, 10, 3650);
  X509 *expired = make_leaf("a.test.com", leaf_key, root, root_key, AMT_EKU, 10, -1);
  X509 *future = make_leaf("a.test.com", leaf_key, root, root_key, AMT_EKU, -2, 365);
  struct br_pfx_info info;
  char msg[512];
  char *b64 = pfx("pw", leaf_key, expired, &root, 1, NID_aes_256_cbc, NID_aes_256_cbc);
  assert_int_equal(check(b64, "pw", "test.com", &info, msg), -1);
  assert_string_equal(msg, "Uploaded certificate has expired");
  free(b64);
  b64 = pfx("pw", leaf_key, future, &root, 1, NID_aes_256_cbc, NID_aes_256_cbc);
  assert_int_equal(check(b64, "pw", "test.com", &info, msg), -1);
  assert_true(!strncmp(msg, "Uploaded certificate is not yet valid: notBefore date ", 54));
  assert_non_null(strstr(msg, "Z is in the future"));
  free(b64);
  X509_free(root);
  X509_free(expired);
  X509_free(future);
}

static void test_root_keysize_key_chain_eku(void **state) {
  struct br_pfx_info info;
  char msg[512];
  X509 *root = make_root("Root", root_key, 1, 3650);
  /* no self-signed certificate in the file */
  X509 *leaf = make_leaf("a.test.com", leaf_key, root, root_key, AMT_EKU, 1, 365);
  char *b64 = pfx("pw", leaf_key, leaf, NULL, 0, NID_aes_256_cbc, NID_aes_256_cbc);
  assert_int_equal(check(b64, "pw", "test.com", &info, msg), -1);
  assert_string_equal(msg, "Provisioning certificate does not contain a root certificate");
  free(b64);
  /* a 1024-bit key */
  EVP_PKEY *small = dmt_tls_rsa_key(1024);
  X509 *weak = make_leaf("a.test.com", small, root, root_key, AMT_EKU, 1, 365);
  b64 = pfx("pw", small, weak, &root, 1, NID_aes_256_cbc, NID_aes_256_cbc);
  assert_int_equal(check(b64, "pw", "test.com", &info, msg), -1);
  assert_string_equal(msg, "Certificate key size 1024 bits is below the minimum required 2048 bits for AMT");
  free(b64);
  /* the key does not belong to certificate 0 */
  X509 *both[] = {leaf, root};
  b64 = pfx("pw", other_key, NULL, both, 2, NID_aes_256_cbc, NID_aes_256_cbc);
  assert_int_equal(check(b64, "pw", "test.com", &info, msg), -1);
  assert_string_equal(msg, "Private key in the PFX does not match the leaf certificate public key");
  free(b64);
  /* the root present is not the leaf's issuer */
  X509 *stranger = make_root("Stranger Root", other_key, 1, 3650);
  b64 = pfx("pw", leaf_key, leaf, &stranger, 1, NID_aes_256_cbc, NID_aes_256_cbc);
  assert_int_equal(check(b64, "pw", "test.com", &info, msg), -1);
  assert_string_equal(msg, "Certificate chain is broken: cannot find issuer for a certificate in the chain");
  free(b64);
  /* a forged issuer: same name as the root, signed by another key */
  X509 *forged = make_root("Root", other_key, 1, 3650);
  b64 = pfx("pw", leaf_key, leaf, &forged, 1, NID_aes_256_cbc, NID_aes_256_cbc);
  assert_int_equal(check(b64, "pw", "test.com", &info, msg), -1);
  if (strncmp(msg, "Certificate chain signature verification failed:", 48)) fail_msg("got: %s", msg);
  free(b64);
  /* no AMT activation EKU on the leaf */
  X509 *plain = make_leaf("a.test.com", leaf_key, root, root_key, "serverAuth", 1, 365);
  b64 = pfx("pw", leaf_key, plain, &root, 1, NID_aes_256_cbc, NID_aes_256_cbc);
  assert_int_equal(check(b64, "pw", "test.com", &info, msg), -1);
  assert_string_equal(msg, "Leaf certificate is missing the Intel AMT Activation EKU OID (2.16.840.1.113741.1.2.3)");
  free(b64);
  EVP_PKEY_free(small);
  X509_free(root);
  X509_free(leaf);
  X509_free(weak);
  X509_free(stranger);
  X509_free(forged);
  X509_free(plain);
}

static void test_order_of_checks(void **state) {
  /* an expired certificate for the wrong domain: the suffix rule comes first, as in DMT */
  X509 *root = make_root("Root", root_key, 10, 3650);
  X509 *leaf = make_leaf("a.other.org", leaf_key, root, root_key, "serverAuth", 10, -1);
  char *b64 = pfx("pw", leaf_key, leaf, &root, 1, NID_aes_256_cbc, NID_aes_256_cbc);
  struct br_pfx_info info;
  char msg[512];
  assert_int_equal(check(b64, "pw", "test.com", &info, msg), -1);
  assert_string_equal(msg, "FQDN not associated with provisioning certificate");
  assert_int_equal(check(b64, "pw", "x.other.org", &info, msg), -1);
  assert_string_equal(msg, "Uploaded certificate has expired");
  free(b64);
  X509_free(root);
  X509_free(leaf);
}

static void test_non_rsa(void **state) {
  EVP_PKEY *ec = EVP_EC_gen("P-256");
  assert_non_null(ec);
  X509 *root = make_root("EC Root", ec, 1, 3650);
  char *b64 = pfx("pw", ec, root, NULL, 0, NID_aes_256_cbc, NID_aes_256_cbc);
  struct br_pfx_info info;
  char msg[512];
  assert_int_equal(check(b64, "pw", "test.com", &info, msg), -1);
  assert_string_equal(msg, "Unsupported provisioning certificate: an RSA-keyed certificate is required");
  free(b64);
  X509_free(root);
  EVP_PKEY_free(ec);
}

static void test_x509_upload(void **state) {
  X509 *root = make_root("Upload", root_key, 1, 30);
  X509 *old = make_root("Old", root_key, 30, -1);
  unsigned char *der = NULL;
  int n = i2d_X509(root, &der);
  char b64[8192], msg[256];
  EVP_EncodeBlock((unsigned char *)b64, der, n);
  OPENSSL_free(der);
  assert_int_equal(br_x509_check_b64(b64, msg, sizeof msg), 0);
  /* base64 of a PEM works too */
  char *pem = dmt_tls_cert_pem(root);
  char pem64[8192];
  EVP_EncodeBlock((unsigned char *)pem64, (unsigned char *)pem, (int)strlen(pem));
  assert_int_equal(br_x509_check_b64(pem64, msg, sizeof msg), 0);
  free(pem);
  assert_int_equal(br_x509_check_b64("dummy", msg, sizeof msg), -1);
  assert_string_equal(msg, "Invalid certificate format (not valid DER or PEM)");
  der = NULL;
  n = i2d_X509(old, &der);
  EVP_EncodeBlock((unsigned char *)b64, der, n);
  OPENSSL_free(der);
  assert_int_equal(br_x509_check_b64(b64, msg, sizeof msg), -1);
  assert_string_equal(msg, "Certificate has expired");
  X509_free(root);
  X509_free(old);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_chain),      cmocka_unit_test(test_wrong_password_and_garbage),
      cmocka_unit_test(test_legacy_rc2),       cmocka_unit_test(test_validity),
      cmocka_unit_test(test_root_keysize_key_chain_eku), cmocka_unit_test(test_order_of_checks),
      cmocka_unit_test(test_non_rsa),          cmocka_unit_test(test_x509_upload),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
