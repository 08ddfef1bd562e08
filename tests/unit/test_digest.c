/*
 * Digest auth known-answer vectors: RFC 2617's example, the reference's DMT
 * exchange (rps-activation.md §1.8) and go-wsman-messages' admin hashes; the
 * exact Authorization format DMT sends; server-side parsing and verification.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dmt/digest.h"

static void test_rfc2617_vector(void **state) {
  char ha1[33], resp[33];
  dmt_digest_ha1("Mufasa", "testrealm@host.com", "Circle Of Life", ha1);
  dmt_digest_response(ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", 1, "0a4f113b", "GET", "/dir/index.html", resp);
  assert_string_equal(resp, "6629fae49393a05397450978507c4ef1");
}

static void test_reference_vectors(void **state) {
  char ha1[33], resp[33];
  const char *realm = "Digest:A3829B3827DE4D33D4449B366831FD01";
  dmt_digest_ha1("$$OsAdmin", realm, "Lsa-Pa55word-From-HECI", ha1);
  assert_string_equal(ha1, "68516fee2dc8b9c1e85e2aaac3d59311");
  dmt_digest_response(ha1, "dxNzCQ9JBAAAAAAAd2N7c6tYmUl0FFzQ", 1, "k2f9x", "POST", "/wsman", resp);
  assert_string_equal(resp, "5234b3b8e92aec8e58977d9b7fb9d8a7");
  /* AMT's NetworkAdminPassword (Setup / AdminSetup) is HA1 for user admin. */
  dmt_digest_ha1("admin", realm, "Sim@Passw0rd1", ha1);
  assert_string_equal(ha1, "8e3d887ccb6e62e6e2d06427617fcc1c");
  dmt_digest_ha1("admin", "digestRealm1", "adminPassword1", ha1);
  assert_string_equal(ha1, "7eab95087308c968d56947a05e916d6b");
  dmt_digest_ha1("admin", "digestRealm2", "adminPassword2", ha1);
  assert_string_equal(ha1, "b404159c55fafd0b4a8e7d64833c7f26");
}

static void test_authorization_format(void **state) {
  struct dmt_digest_challenge c;
  assert_int_equal(dmt_digest_parse_challenge(
                       "Digest realm=\"Digest:A3829B3827DE4D33D4449B366831FD01\", "
                       "nonce=\"dxNzCQ9JBAAAAAAAd2N7c6tYmUl0FFzQ\",stale=\"false\",qop=\"auth\"", &c), 0);
  char out[512];
  assert_true(dmt_digest_authorization("$$OsAdmin", "Lsa-Pa55word-From-HECI", &c, "POST", "/wsman", 1,
                                       "k2f9x", out, sizeof out) > 0);
  assert_string_equal(out,
                      "Digest username=\"$$OsAdmin\",realm=\"Digest:A3829B3827DE4D33D4449B366831FD01\","
                      "nonce=\"dxNzCQ9JBAAAAAAAd2N7c6tYmUl0FFzQ\",uri=\"/wsman\",qop=\"auth\","
                      "response=\"5234b3b8e92aec8e58977d9b7fb9d8a7\",nc=\"00000001\",cnonce=\"k2f9x\"");
  char small[20];
  assert_int_equal(dmt_digest_authorization("u", "p", &c, "POST", "/wsman", 1, "x", small, sizeof small), -1);
}

static void test_challenge_variants(void **state) {
  struct dmt_digest_challenge c;
  /* AMT 16 offers auth-int too: we use auth. */
  assert_int_equal(dmt_digest_parse_challenge("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int, auth\"", &c), 0);
  assert_true(c.qop_auth);
  assert_int_equal(dmt_digest_parse_challenge("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"", &c), 0);
  assert_false(c.qop_auth);
  assert_int_equal(dmt_digest_parse_challenge("Digest realm=r,nonce=n,stale=TRUE", &c), 0);
  assert_true(c.stale);
  assert_int_equal(dmt_digest_parse_challenge("Basic realm=\"r\"", &c), -1);
  assert_int_equal(dmt_digest_parse_challenge("Digest realm=\"r\"", &c), -1);          /* no nonce */
  assert_int_equal(dmt_digest_parse_challenge("Digest realm=\"unterminated", &c), -1);
  assert_int_equal(dmt_digest_parse_challenge("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256", &c), -1);
}

static void test_server_verify(void **state) {
  const char *realm = "Digest:A3829B3827DE4D33D4449B366831FD01";
  const char *nonce = "dxNzCQ9JBAAAAAAAd2N7c6tYmUl0FFzQ";
  struct dmt_digest_challenge c = {0};
  strcpy(c.realm, realm);
  strcpy(c.nonce, nonce);
  c.qop_auth = true;
  char header[512], ha1[33];
  dmt_digest_authorization("admin", "Sim@Passw0rd1", &c, "POST", "/wsman", 3, "z7w0c", header, sizeof header);
  dmt_digest_ha1("admin", realm, "Sim@Passw0rd1", ha1);
  struct dmt_digest_credentials cr;
  assert_int_equal(dmt_digest_parse_authorization(header, &cr), 0);
  assert_string_equal(cr.nc, "00000003");
  assert_true(dmt_digest_verify(&cr, "POST", "admin", realm, nonce, ha1));
  /* wrong password, user, nonce, method */
  char wrong[33];
  dmt_digest_ha1("admin", realm, "Other@Passw0rd1", wrong);
  assert_false(dmt_digest_verify(&cr, "POST", "admin", realm, nonce, wrong));
  assert_false(dmt_digest_verify(&cr, "POST", "root", realm, nonce, ha1));
  assert_false(dmt_digest_verify(&cr, "POST", "admin", realm, "other-nonce", ha1));
  assert_false(dmt_digest_verify(&cr, "GET", "admin", realm, nonce, ha1));
  /* unquoted values in another order, with a comma inside quotes elsewhere */
  char reordered[512];
  snprintf(reordered, sizeof reordered,
           "Digest cnonce=\"z7w0c\", nc=00000003, qop=auth, response=\"%s\", uri=\"/wsman\", "
           "nonce=\"%s\", realm=\"%s\", username=\"admin\", opaque=\"a,b\"", cr.response, nonce, realm);
  struct dmt_digest_credentials cr2;
  assert_int_equal(dmt_digest_parse_authorization(reordered, &cr2), 0);
  assert_true(dmt_digest_verify(&cr2, "POST", "admin", realm, nonce, ha1));
  /* malformed */
  assert_int_equal(dmt_digest_parse_authorization("Digest username", &cr2), -1);
  assert_int_equal(dmt_digest_parse_authorization("Digest username=\"admin\"", &cr2), -1);
  char longv[1024] = "Digest username=\"";
  memset(longv + strlen(longv), 'a', 700);
  strcat(longv, "\"");
  assert_int_equal(dmt_digest_parse_authorization(longv, &cr2), -1);
}

static void test_realm_and_nonce(void **state) {
  assert_true(dmt_digest_realm_valid("Digest:A4070000000000000000000000000000"));
  assert_false(dmt_digest_realm_valid("Gist:A4070000000000000000000000000000"));
  assert_false(dmt_digest_realm_valid("Digest:A40700000000000000000000000000000"));
  assert_false(dmt_digest_realm_valid("Digest:G4070000000000000000000000000000"));
  char a[33], b[33];
  assert_int_equal(dmt_digest_random_hex(a, 16), 0);
  assert_int_equal(dmt_digest_random_hex(b, 16), 0);
  assert_int_equal(strlen(a), 32);
  assert_string_not_equal(a, b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc2617_vector),
      cmocka_unit_test(test_reference_vectors),
      cmocka_unit_test(test_authorization_format),
      cmocka_unit_test(test_challenge_variants),
      cmocka_unit_test(test_server_verify),
      cmocka_unit_test(test_realm_and_nonce),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
