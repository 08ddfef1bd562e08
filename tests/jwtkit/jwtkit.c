/* Test-only token kit (see jwtkit.h). */
#include "jwtkit.h"

#include <fcntl.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmt/jwks.h"

static char *bio_text(BIO *b) {
  char *data;
  long len = BIO_get_mem_data(b, &data);
  char *s = malloc((size_t)len + 1);
  memcpy(s, data, (size_t)len);
  s[len] = '\0';
  return s;
}

int jwtkit_key_new(struct jwtkit_key *k, const char *kid, int bits) {
  memset(k, 0, sizeof *k);
  k->pkey = EVP_RSA_gen((unsigned)bits);
  if (!k->pkey) return -1;
  BIO *priv = BIO_new(BIO_s_mem()), *pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, k->pkey, NULL, NULL, 0, NULL, NULL);
  PEM_write_bio_PUBKEY(pub, k->pkey);
  k->priv_pem = bio_text(priv);
  k->pub_pem = bio_text(pub);
  BIO_free(priv);
  BIO_free(pub);
  snprintf(k->kid, sizeof k->kid, "%s", kid ? kid : "");
  return 0;
}

void jwtkit_key_free(struct jwtkit_key *k) {
  EVP_PKEY_free(k->pkey);
  free(k->priv_pem);
  free(k->pub_pem);
  memset(k, 0, sizeof *k);
}

char *jwtkit_jwks(const struct jwtkit_key *const *keys, size_t n) {
  const char *pems[8], *kids[8];
  for (size_t i = 0; i < n && i < 8; i++) {
    pems[i] = keys[i]->pub_pem;
    kids[i] = keys[i]->kid[0] ? keys[i]->kid : NULL;
  }
  return dmt_jwks_write(pems, kids, n < 8 ? n : 8);
}

char *jwtkit_claims(const char *iss, const char *aud_json, long long exp, const char *user, const char *roles_csv) {
  json_t *c = json_object(), *roles = json_array();
  if (iss) json_object_set_new(c, "iss", json_string(iss));
  if (aud_json) json_object_set_new(c, "aud", json_loads(aud_json, JSON_DECODE_ANY, NULL));
  if (exp) json_object_set_new(c, "exp", json_integer(exp));
  if (user) json_object_set_new(c, "preferred_username", json_string(user));
  json_object_set_new(c, "sub", json_string("0f7c7d0e-5c2a-4d1e-9a43-3d2f0e0b6a11"));
  json_object_set_new(c, "typ", json_string("Bearer"));
  char *list = strdup(roles_csv ? roles_csv : ""), *save = NULL;
  for (char *r = strtok_r(list, ",", &save); r; r = strtok_r(NULL, ",", &save)) json_array_append_new(roles, json_string(r));
  free(list);
  json_object_set_new(c, "realm_access", json_pack("{s:o}", "roles", roles));
  char *text = json_dumps(c, JSON_COMPACT);
  json_decref(c);
  return text;
}

static char *sign(jwt_alg_t alg, const unsigned char *key, size_t len, const char *kid, const char *claims) {
  jwt_t *jwt = NULL;
  char *out = NULL;
  if (jwt_new(&jwt) == 0 && jwt_add_grants_json(jwt, claims) == 0 && (!kid || jwt_add_header(jwt, "kid", kid) == 0) &&
      jwt_set_alg(jwt, alg, key, (int)len) == 0)
    out = jwt_encode_str(jwt);
  jwt_free(jwt);
  return out;
}

char *jwtkit_sign(const struct jwtkit_key *k, const char *kid, const char *claims) {
  return sign(JWT_ALG_RS256, (const unsigned char *)k->priv_pem, strlen(k->priv_pem), kid, claims);
}

char *jwtkit_sign_none(const char *claims) { return sign(JWT_ALG_NONE, NULL, 0, NULL, claims); }

char *jwtkit_sign_hs256(const unsigned char *key, size_t len, const char *kid, const char *claims) {
  return sign(JWT_ALG_HS256, key, len, kid, claims);
}

int jwtkit_write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  size_t len = strlen(text);
  ssize_t n = write(fd, text, len);
  close(fd);
  return n == (ssize_t)len ? 0 : -1;
}
