/*
 * JWKS loading (see dmt/jwks.h). The RSA public key is rebuilt from the JWK's
 * modulus and exponent through OpenSSL 3's EVP_PKEY_fromdata and written out
 * as a SubjectPublicKeyInfo PEM, which libjwt reads back for verification;
 * dmt_jwks_write() does the reverse for keys we publish ourselves.
 */
#include "dmt/jwks.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/b64url.h"

#define MIN_RSA_BITS 2048
#define MAX_RSA_BYTES 1024 /* 8192-bit modulus */
#define MAX_KID 128

struct jwk {
  char kid[MAX_KID + 1];
  bool has_kid;
  char *pem;
  size_t pem_len;
};

struct dmt_jwks {
  struct jwk keys[DMT_JWKS_MAX_KEYS];
  size_t n;
};

static BIGNUM *b64_bignum(const char *text, size_t cap) {
  size_t len = strlen(text);
  uint8_t *raw = malloc(DMT_B64URL_DECODED_MAX(len));
  long n = raw ? dmt_b64url_decode(text, len, raw, DMT_B64URL_DECODED_MAX(len)) : -1;
  BIGNUM *bn = (n > 0 && (size_t)n <= cap) ? BN_bin2bn(raw, (int)n, NULL) : NULL;
  free(raw);
  return bn;
}

/* PEM of the RSA public key (n, e); NULL if the numbers are unusable. */
static char *rsa_pem(const char *n64, const char *e64, size_t *pem_len) {
  BIGNUM *n = b64_bignum(n64, MAX_RSA_BYTES), *e = b64_bignum(e64, 8);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = NULL;
  EVP_PKEY *pkey = NULL;
  BIO *bio = NULL;
  char *pem = NULL;
  if (!n || !e || !bld || BN_num_bits(n) < MIN_RSA_BITS || BN_is_zero(e) || !BN_is_odd(e) ||
      !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
      !(params = OSSL_PARAM_BLD_to_param(bld)) || !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) ||
      EVP_PKEY_fromdata_init(ctx) <= 0 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0 ||
      !(bio = BIO_new(BIO_s_mem())) || !PEM_write_bio_PUBKEY(bio, pkey))
    goto out;
  char *data;
  long len = BIO_get_mem_data(bio, &data);
  if (len > 0 && (pem = malloc((size_t)len + 1))) {
    memcpy(pem, data, (size_t)len);
    pem[len] = '\0';
    *pem_len = (size_t)len;
  }
out:
  BIO_free(bio);
  EVP_PKEY_free(pkey);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(n);
  BN_free(e);
  return pem;
}

static const char *str_member(const json_t *o, const char *name) {
  return json_string_value(json_object_get(o, name));
}

/* 1 = added, 0 = skipped (not an RSA signing key for RS256), -1 = malformed. */
static int add_key(struct dmt_jwks *k, const json_t *jwk, char *err, size_t errlen) {
  if (!json_is_object(jwk)) return 0;
  const char *kty = str_member(jwk, "kty"), *use = str_member(jwk, "use"), *alg = str_member(jwk, "alg");
  const char *kid = str_member(jwk, "kid"), *n = str_member(jwk, "n"), *e = str_member(jwk, "e");
  if (!kty || strcmp(kty, "RSA") != 0) return 0;
  if (use && strcmp(use, "sig") != 0) return 0;
  if (alg && strcmp(alg, "RS256") != 0) return 0;
  if (json_object_get(jwk, "kid") && (!kid || strlen(kid) > MAX_KID)) {
    snprintf(err, errlen, "a key has an invalid kid");
    return -1;
  }
  for (size_t i = 0; kid && i < k->n; i++) {
    if (k->keys[i].has_kid && strcmp(k->keys[i].kid, kid) == 0) {
      snprintf(err, errlen, "two keys share one kid");
      return -1;
    }
  }
  if (k->n == DMT_JWKS_MAX_KEYS) {
    snprintf(err, errlen, "more than %d signing keys", DMT_JWKS_MAX_KEYS);
    return -1;
  }
  struct jwk *out = &k->keys[k->n];
  if (!n || !e || !(out->pem = rsa_pem(n, e, &out->pem_len))) {
    snprintf(err, errlen, "an RSA key has a missing or unusable modulus/exponent (at least %d bits)", MIN_RSA_BITS);
    return -1;
  }
  out->has_kid = kid != NULL;
  snprintf(out->kid, sizeof out->kid, "%s", kid ? kid : "");
  k->n++;
  return 1;
}

struct dmt_jwks *dmt_jwks_parse(const char *text, size_t len, char *err, size_t errlen) {
  if (len > DMT_JWKS_MAX_BYTES) {
    snprintf(err, errlen, "JWKS larger than %d bytes", DMT_JWKS_MAX_BYTES);
    return NULL;
  }
  json_error_t jerr;
  json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  json_t *keys = json_object_get(doc, "keys");
  if (!json_is_array(keys)) {
    snprintf(err, errlen, "not a JWKS document (no \"keys\" array)");
    json_decref(doc);
    return NULL;
  }
  struct dmt_jwks *k = calloc(1, sizeof *k);
  size_t i;
  json_t *jwk;
  int rc = k ? 0 : -1;
  json_array_foreach(keys, i, jwk) {
    if (rc < 0 || (rc = add_key(k, jwk, err, errlen)) < 0) break;
  }
  json_decref(doc);
  if (rc >= 0 && k->n == 0) {
    snprintf(err, errlen, "no RSA signing key (RS256, at least %d bits) in the JWKS", MIN_RSA_BITS);
    rc = -1;
  }
  if (rc < 0) {
    dmt_jwks_free(k);
    return NULL;
  }
  return k;
}

struct dmt_jwks *dmt_jwks_load_file(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot open JWKS file %s", path);
    return NULL;
  }
  char *buf = malloc(DMT_JWKS_MAX_BYTES + 1);
  size_t n = buf ? fread(buf, 1, DMT_JWKS_MAX_BYTES + 1, f) : 0;
  fclose(f);
  struct dmt_jwks *k = buf ? dmt_jwks_parse(buf, n, err, errlen) : NULL;
  free(buf);
  return k;
}

void dmt_jwks_free(struct dmt_jwks *k) {
  if (!k) return;
  for (size_t i = 0; i < k->n; i++) free(k->keys[i].pem);
  free(k);
}

size_t dmt_jwks_count(const struct dmt_jwks *k) { return k ? k->n : 0; }

const char *dmt_jwks_find(const struct dmt_jwks *k, const char *kid, size_t *pem_len) {
  if (!k) return NULL;
  const struct jwk *hit = NULL;
  if (!kid) {
    if (k->n == 1) hit = &k->keys[0];
  } else {
    for (size_t i = 0; i < k->n && !hit; i++)
      if (k->keys[i].has_kid && strcmp(k->keys[i].kid, kid) == 0) hit = &k->keys[i];
  }
  if (hit && pem_len) *pem_len = hit->pem_len;
  return hit ? hit->pem : NULL;
}

/* A BIGNUM parameter of pkey as a base64url JSON string. */
static json_t *bn_param(const EVP_PKEY *pkey, const char *name) {
  BIGNUM *bn = NULL;
  json_t *out = NULL;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) == 1) {
    size_t n = (size_t)BN_num_bytes(bn);
    unsigned char *raw = malloc(n ? n : 1);
    char *text = malloc(DMT_B64URL_ENCODED_SIZE(n));
    if (raw && text && BN_bn2bin(bn, raw) >= 0 && dmt_b64url_encode(raw, n, text, DMT_B64URL_ENCODED_SIZE(n)) >= 0)
      out = json_string(text);
    free(raw);
    free(text);
  }
  BN_free(bn);
  return out;
}

char *dmt_jwks_write(const char *const *pub_pems, const char *const *kids, size_t n) {
  json_t *arr = json_array();
  bool ok = arr != NULL;
  for (size_t i = 0; i < n && ok; i++) {
    BIO *bio = BIO_new_mem_buf(pub_pems[i], -1);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    json_t *jn = pkey && EVP_PKEY_is_a(pkey, "RSA") ? bn_param(pkey, OSSL_PKEY_PARAM_RSA_N) : NULL;
    json_t *je = jn ? bn_param(pkey, OSSL_PKEY_PARAM_RSA_E) : NULL;
    json_t *jwk = je ? json_pack("{s:s, s:s, s:s, s:o, s:o}", "kty", "RSA", "use", "sig", "alg", "RS256", "n", jn, "e", je)
                     : NULL;
    if (!jwk) {
      json_decref(jn);
      json_decref(je);
      ok = false;
    } else {
      if (kids && kids[i]) json_object_set_new(jwk, "kid", json_string(kids[i]));
      json_array_append_new(arr, jwk);
    }
    EVP_PKEY_free(pkey);
    BIO_free(bio);
  }
  json_t *doc = ok ? json_pack("{s:o}", "keys", arr) : NULL;
  if (!ok) json_decref(arr);
  char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  return text;
}
