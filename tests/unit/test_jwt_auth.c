/*
 * Unit tests for Keycloak token verification (dmt/jwt_auth.h), JWKS loading
 * (dmt/jwks.h) and base64url: every acceptance and every rejection reason,
 * including the forgeries (alg none, HS256 keyed with the public key, a
 * foreign key under a trusted kid, a spliced payload).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "dmt/b64url.h"
#include "dmt/jwks.h"
#include "dmt/jwt_auth.h"
#include "jwtkit.h"

#define ISS "https://kc.test/realms/master"

static struct jwtkit_key k1, k2;
static struct dmt_jwks *keys;
static struct dmt_jwt_verifier *ver;
static time_t now;

static int setup(void **state) {
  now = time(NULL);
  if (jwtkit_key_new(&k1, "k1", 2048) || jwtkit_key_new(&k2, "k2", 2048)) return -1;
  const struct jwtkit_key *pub[] = {&k1};
  char *jwks = jwtkit_jwks(pub, 1), err[256];
  keys = dmt_jwks_parse(jwks, strlen(jwks), err, sizeof err);
  free(jwks);
  struct dmt_jwt_config cfg = {.issuer = ISS, .audience = "dmt-broker, dmt-bridge", .clock_skew = 5};
  ver = dmt_jwt_verifier_new(&cfg, err, sizeof err);
  return keys && ver ? 0 : -1;
}

static int teardown(void **state) {
  dmt_jwks_free(keys);
  dmt_jwt_verifier_free(ver);
  jwtkit_key_free(&k1);
  jwtkit_key_free(&k2);
  return 0;
}

/* Verifies a token built from the given claims, signed by k under kid. */
static int verify_claims(const struct jwtkit_key *k, const char *kid, const char *claims, struct dmt_identity *id) {
  char *tok = jwtkit_sign(k, kid, claims);
  assert_non_null(tok);
  int rc = dmt_jwt_verify(ver, keys, tok, now, id);
  free(tok);
  return rc;
}

static int verify_simple(const char *iss, const char *aud, long long exp, const char *roles) {
  char *claims = jwtkit_claims(iss, aud, exp, "alice", roles);
  struct dmt_identity id;
  int rc = verify_claims(&k1, "k1", claims, &id);
  dmt_identity_clear(&id);
  free(claims);
  return rc;
}

static void test_valid_token_maps_roles(void **state) {
  char *claims = jwtkit_claims(ISS, "\"dmt-broker\"", now + 300, "alice",
                               "T1_im-rw,T2_im-r,offline_access,org1_T3_m,T2_im-r,T1_im-r,_default_im-r");
  struct dmt_identity id;
  assert_int_equal(verify_claims(&k1, "k1", claims, &id), DMT_JWT_OK);
  assert_string_equal(id.name, "alice");
  assert_int_equal(id.exp, now + 300);
  assert_int_equal(id.grants.n, 3);
  assert_int_equal(dmt_grants_perm(&id.grants, "T1", 2), DMT_PERM_READ_WRITE); /* rw wins over a later r */
  assert_int_equal(dmt_grants_perm(&id.grants, "T2", 2), DMT_PERM_READ);
  assert_int_equal(dmt_grants_perm(&id.grants, "_default", 8), DMT_PERM_READ);
  assert_int_equal(dmt_grants_perm(&id.grants, "T3", 2), DMT_PERM_NONE);
  dmt_identity_clear(&id);
  free(claims);
}

static void test_audience_forms(void **state) {
  assert_int_equal(verify_simple(ISS, "[\"account\",\"dmt-bridge\"]", now + 60, "T_im-r"), DMT_JWT_OK);
  assert_int_equal(verify_simple(ISS, "\"account\"", now + 60, "T_im-r"), DMT_JWT_BAD_AUDIENCE);
  assert_int_equal(verify_simple(ISS, "[\"account\"]", now + 60, "T_im-r"), DMT_JWT_BAD_AUDIENCE);
  assert_int_equal(verify_simple(ISS, NULL, now + 60, "T_im-r"), DMT_JWT_BAD_AUDIENCE);
  assert_int_equal(verify_simple(ISS, "42", now + 60, "T_im-r"), DMT_JWT_BAD_AUDIENCE);
}

static void test_issuer_and_times(void **state) {
  assert_int_equal(verify_simple("https://evil/realms/master", "\"dmt-broker\"", now + 60, "T_im-r"), DMT_JWT_BAD_ISSUER);
  assert_int_equal(verify_simple(NULL, "\"dmt-broker\"", now + 60, "T_im-r"), DMT_JWT_BAD_ISSUER);
  assert_int_equal(verify_simple(ISS, "\"dmt-broker\"", now - 60, "T_im-r"), DMT_JWT_EXPIRED);
  assert_int_equal(verify_simple(ISS, "\"dmt-broker\"", now - 2, "T_im-r"), DMT_JWT_OK); /* within the 5 s skew */
  assert_int_equal(verify_simple(ISS, "\"dmt-broker\"", now - 5, "T_im-r"), DMT_JWT_EXPIRED);
  assert_int_equal(verify_simple(ISS, "\"dmt-broker\"", 0, "T_im-r"), DMT_JWT_BAD_CLAIMS); /* no exp */
}

static json_t *base_claims(void) {
  char *text = jwtkit_claims(ISS, "\"dmt-broker\"", now + 60, "bob", "T_im-rw");
  json_t *c = json_loads(text, 0, NULL);
  free(text);
  return c;
}

static int check(json_t *claims) {
  struct dmt_identity id;
  int rc = dmt_jwt_check_claims(ver, claims, now, &id);
  dmt_identity_clear(&id);
  json_decref(claims);
  return rc;
}

static void test_claim_types(void **state) {
  json_t *c = base_claims();
  json_object_set_new(c, "exp", json_string("9999999999"));
  assert_int_equal(check(c), DMT_JWT_BAD_CLAIMS);
  c = base_claims();
  json_object_set_new(c, "nbf", json_integer(now + 60));
  assert_int_equal(check(c), DMT_JWT_NOT_YET_VALID);
  c = base_claims();
  json_object_set_new(c, "nbf", json_integer(now + 3));
  assert_int_equal(check(c), DMT_JWT_OK);
  c = base_claims();
  json_object_set_new(c, "typ", json_string("ID"));
  assert_int_equal(check(c), DMT_JWT_BAD_CLAIMS);
  c = base_claims();
  json_object_set_new(c, "realm_access", json_pack("{s:s}", "roles", "T_im-rw"));
  assert_int_equal(check(c), DMT_JWT_BAD_CLAIMS);
  c = base_claims();
  json_object_del(c, "preferred_username");
  json_object_del(c, "sub");
  assert_int_equal(check(c), DMT_JWT_BAD_CLAIMS);
  c = base_claims();
  json_object_set_new(c, "realm_access", json_pack("{s:[s,s]}", "roles", "T_im-admin", "bad tenant!_im-rw"));
  assert_int_equal(check(c), DMT_JWT_NO_GRANTS);
  assert_int_equal(check(json_array()), DMT_JWT_BAD_CLAIMS);
}

static void test_name_is_sanitised(void **state) {
  json_t *c = base_claims();
  json_object_set_new(c, "preferred_username", json_string("eve\" level=error\n"));
  struct dmt_identity id;
  assert_int_equal(dmt_jwt_check_claims(ver, c, now, &id), DMT_JWT_OK);
  assert_string_equal(id.name, "eve__level_error_");
  dmt_identity_clear(&id);
  json_decref(c);
}

static void test_too_many_tenants(void **state) {
  json_t *c = base_claims(), *roles = json_array();
  for (int i = 0; i <= DMT_JWT_MAX_GRANTS; i++) {
    char r[32];
    snprintf(r, sizeof r, "t%d_im-r", i);
    json_array_append_new(roles, json_string(r));
  }
  json_object_set_new(c, "realm_access", json_pack("{s:o}", "roles", roles));
  assert_int_equal(check(c), DMT_JWT_BAD_CLAIMS);
}

static void test_client_roles_and_custom_suffixes(void **state) {
  char err[128];
  struct dmt_jwt_config cfg = {.issuer = ISS, .audience = "dmt-broker", .roles_rw = "dmt-admin,im-rw",
                               .roles_ro = "dmt-viewer", .roles_client = "dmt"};
  struct dmt_jwt_verifier *v = dmt_jwt_verifier_new(&cfg, err, sizeof err);
  assert_non_null(v);
  json_t *c = base_claims();
  json_object_set_new(c, "realm_access", json_pack("{s:[s]}", "roles", "A_dmt-viewer"));
  json_object_set_new(c, "resource_access",
                      json_pack("{s:{s:[s]}, s:{s:[s]}}", "dmt", "roles", "B_dmt-admin", "other", "roles", "C_dmt-admin"));
  struct dmt_identity id;
  assert_int_equal(dmt_jwt_check_claims(v, c, now, &id), DMT_JWT_OK);
  assert_int_equal(dmt_grants_perm(&id.grants, "A", 1), DMT_PERM_READ);
  assert_int_equal(dmt_grants_perm(&id.grants, "B", 1), DMT_PERM_READ_WRITE);
  assert_int_equal(dmt_grants_perm(&id.grants, "C", 1), DMT_PERM_NONE); /* another client's roles don't count */
  assert_int_equal(dmt_grants_perm(&id.grants, "T", 1), DMT_PERM_NONE); /* im-r is not configured here */
  dmt_identity_clear(&id);
  json_decref(c);
  dmt_jwt_verifier_free(v);

  struct dmt_jwt_config bad = {.issuer = ISS, .audience = "x", .roles_rw = "im rw"};
  assert_null(dmt_jwt_verifier_new(&bad, err, sizeof err));
  struct dmt_jwt_config noaud = {.issuer = ISS, .audience = " , "};
  assert_null(dmt_jwt_verifier_new(&noaud, err, sizeof err));
  struct dmt_jwt_config noiss = {.audience = "x"};
  assert_null(dmt_jwt_verifier_new(&noiss, err, sizeof err));
}

static void test_forgeries(void **state) {
  char *claims = jwtkit_claims(ISS, "\"dmt-broker\"", now + 60, "mallory", "T_im-rw");
  struct dmt_identity id;
  /* A foreign key under the trusted kid. */
  assert_int_equal(verify_claims(&k2, "k1", claims, &id), DMT_JWT_BAD_SIGNATURE);
  /* An unknown kid. */
  assert_int_equal(verify_claims(&k2, "k2", claims, &id), DMT_JWT_UNKNOWN_KEY);
  /* No kid: the only key of the set is used. */
  assert_int_equal(verify_claims(&k1, NULL, claims, &id), DMT_JWT_OK);
  dmt_identity_clear(&id);
  /* alg none. */
  char *none = jwtkit_sign_none(claims), none_sig[4096];
  assert_int_equal(dmt_jwt_verify(ver, keys, none, now, &id), DMT_JWT_MALFORMED); /* empty signature */
  snprintf(none_sig, sizeof none_sig, "%sc2ln", none);
  assert_int_equal(dmt_jwt_verify(ver, keys, none_sig, now, &id), DMT_JWT_BAD_ALG);
  /* HS256 keyed with the published public key (algorithm confusion). */
  size_t pem_len;
  const char *pem = dmt_jwks_find(keys, "k1", &pem_len);
  char *hs = jwtkit_sign_hs256((const unsigned char *)pem, pem_len, "k1", claims);
  assert_int_equal(dmt_jwt_verify(ver, keys, hs, now, &id), DMT_JWT_BAD_ALG);
  /* A valid signature with another token's payload spliced in. */
  char *good = jwtkit_sign(&k1, "k1", claims);
  char *other_claims = jwtkit_claims(ISS, "\"dmt-broker\"", now + 60, "mallory", "T_im-rw,U_im-rw");
  char *other = jwtkit_sign(&k2, "k1", other_claims);
  char spliced[8192];
  const char *g1 = strchr(good, '.'), *g2 = strchr(g1 + 1, '.');
  const char *o1 = strchr(other, '.'), *o2 = strchr(o1 + 1, '.');
  snprintf(spliced, sizeof spliced, "%.*s%.*s%s", (int)(g1 - good), good, (int)(o2 - o1), o1, g2);
  assert_int_equal(dmt_jwt_verify(ver, keys, spliced, now, &id), DMT_JWT_BAD_SIGNATURE);
  free(none);
  free(hs);
  free(good);
  free(other);
  free(other_claims);
  free(claims);
}

static void test_malformed(void **state) {
  struct dmt_identity id;
  const char *bad[] = {"", "abc", "a.b", "a.b.c.d", "a..c", "eyJhbGciOiJSUzI1NiJ9.e30.", "eyJhbGciOiJSUzI1NiJ9.e30.a b",
                       "eyJhbGciOiJSUzI1NiJ9=.e30.c2ln", "e30.e30.c2ln"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = dmt_jwt_verify(ver, keys, bad[i], now, &id);
    assert_true(rc == DMT_JWT_MALFORMED || rc == DMT_JWT_BAD_ALG);
  }
  assert_int_equal(dmt_jwt_verify(ver, keys, NULL, now, &id), DMT_JWT_MALFORMED);
  /* {"alg":"RS256","alg":"none"}: duplicate members are refused. */
  char hdr[128];
  const char *dup = "{\"alg\":\"RS256\",\"alg\":\"none\"}";
  dmt_b64url_encode((const unsigned char *)dup, strlen(dup), hdr, sizeof hdr);
  char tok[256];
  snprintf(tok, sizeof tok, "%s.e30.c2ln", hdr);
  assert_int_equal(dmt_jwt_verify(ver, keys, tok, now, &id), DMT_JWT_MALFORMED);
  /* A crit header is refused even with RS256. */
  const char *crit = "{\"alg\":\"RS256\",\"crit\":[\"exp\"]}";
  dmt_b64url_encode((const unsigned char *)crit, strlen(crit), hdr, sizeof hdr);
  snprintf(tok, sizeof tok, "%s.e30.c2ln", hdr);
  assert_int_equal(dmt_jwt_verify(ver, keys, tok, now, &id), DMT_JWT_BAD_ALG);
  /* Over the size cap. */
  char *huge = malloc(DMT_JWT_MAX_TOKEN + 10);
  memset(huge, 'a', DMT_JWT_MAX_TOKEN + 9);
  huge[5] = huge[10] = '.';
  huge[DMT_JWT_MAX_TOKEN + 9] = '\0';
  assert_int_equal(dmt_jwt_verify(ver, keys, huge, now, &id), DMT_JWT_MALFORMED);
  free(huge);
}

static void test_jwks_parsing(void **state) {
  char err[256];
  struct jwtkit_key small;
  assert_int_equal(jwtkit_key_new(&small, "small", 1024), 0);
  const struct jwtkit_key *both[] = {&k1, &k2}, *weak[] = {&small}, *dup[] = {&k1, &k1};
  char *text = jwtkit_jwks(both, 2);
  struct dmt_jwks *s = dmt_jwks_parse(text, strlen(text), err, sizeof err);
  assert_non_null(s);
  assert_int_equal(dmt_jwks_count(s), 2);
  assert_non_null(dmt_jwks_find(s, "k2", NULL));
  assert_null(dmt_jwks_find(s, NULL, NULL)); /* no kid is ambiguous with two keys */
  assert_null(dmt_jwks_find(s, "k3", NULL));
  assert_string_equal(dmt_jwks_find(s, "k1", NULL), k1.pub_pem); /* written and read back to the same key */
  dmt_jwks_free(s);
  free(text);
  const char *not_rsa[] = {"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"};
  assert_null(dmt_jwks_write(not_rsa, NULL, 1));

  text = jwtkit_jwks(weak, 1);
  assert_null(dmt_jwks_parse(text, strlen(text), err, sizeof err));
  free(text);
  text = jwtkit_jwks(dup, 2);
  assert_null(dmt_jwks_parse(text, strlen(text), err, sizeof err));
  assert_non_null(strstr(err, "kid"));
  free(text);

  /* Encryption keys and other key types are skipped; a set of only those is refused. */
  const char *mixed = "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"},"
                      "{\"kty\":\"RSA\",\"use\":\"enc\",\"kid\":\"x\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
                      "{\"kty\":\"RSA\",\"alg\":\"RSA-OAEP\",\"kid\":\"y\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}";
  assert_null(dmt_jwks_parse(mixed, strlen(mixed), err, sizeof err));
  const char *junk[] = {"", "[]", "{\"keys\":{}}", "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"z\",\"n\":\"!!\",\"e\":\"AQAB\"}]}"};
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) assert_null(dmt_jwks_parse(junk[i], strlen(junk[i]), err, sizeof err));
  assert_null(dmt_jwks_load_file("/nonexistent/jwks.json", err, sizeof err));
  jwtkit_key_free(&small);
}

static void test_b64url(void **state) {
  char enc[32];
  uint8_t dec[32];
  assert_int_equal(dmt_b64url_encode((const uint8_t *)"foobar", 6, enc, sizeof enc), 8);
  assert_string_equal(enc, "Zm9vYmFy");
  assert_int_equal(dmt_b64url_encode((const uint8_t *)"\xfb\xff", 2, enc, sizeof enc), 3);
  assert_string_equal(enc, "-_8");
  assert_int_equal(dmt_b64url_decode("-_8", 3, dec, sizeof dec), 2);
  assert_memory_equal(dec, "\xfb\xff", 2);
  assert_int_equal(dmt_b64url_decode("-_9", 3, dec, sizeof dec), -1); /* non-zero trailing bits */
  assert_int_equal(dmt_b64url_decode("Zg==", 4, dec, sizeof dec), -1); /* padding */
  assert_int_equal(dmt_b64url_decode("Z", 1, dec, sizeof dec), -1);
  assert_int_equal(dmt_b64url_decode("Zm+v", 4, dec, sizeof dec), -1); /* standard alphabet */
  assert_int_equal(dmt_b64url_decode("Zm9vYmFy", 8, dec, 5), -1);     /* capacity */
  assert_int_equal(dmt_b64url_encode((const uint8_t *)"foobar", 6, enc, 8), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_token_maps_roles),
      cmocka_unit_test(test_audience_forms),
      cmocka_unit_test(test_issuer_and_times),
      cmocka_unit_test(test_claim_types),
      cmocka_unit_test(test_name_is_sanitised),
      cmocka_unit_test(test_too_many_tenants),
      cmocka_unit_test(test_client_roles_and_custom_suffixes),
      cmocka_unit_test(test_forgeries),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_jwks_parsing),
      cmocka_unit_test(test_b64url),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
