/*
 * dmt-dev-token: a stand-in for Keycloak on a developer machine, so the
 * broker's token logins can be used without one. Development only: the
 * signing key is a plain file and the issuer is https://dmt.invalid/dev,
 * which brokers/mosquitto.dev.conf trusts and the production configuration
 * never does.
 *
 *   dmt-dev-token init <dir>                        <dir>/dev-signing-key.pem (0600) and <dir>/jwks.json
 *   dmt-dev-token mint <dir> <user> <roles> [ttl]    an RS256 access token on stdout (roles comma-separated,
 *                                                    e.g. _default_im-rw; ttl in seconds, default 3600)
 */
#include <fcntl.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dmt/jwks.h"

#define ISSUER "https://dmt.invalid/dev"
#define AUDIENCE "dmt-broker"
#define KID "dev-1"

static int usage(void) {
  fprintf(stderr, "usage: dmt-dev-token init <dir>\n"
                  "       dmt-dev-token mint <dir> <user> <role,role...> [ttl-seconds]\n");
  return 2;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = calloc(1, 16384);
  size_t n = buf ? fread(buf, 1, 16383, f) : 0;
  fclose(f);
  if (buf && n == 0) {
    free(buf);
    buf = NULL;
  }
  return buf;
}

static int write_file(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  return close(fd) == 0 && n == (ssize_t)strlen(text) ? 0 : -1;
}

static int init(const char *dir) {
  char key_path[4096], jwks_path[4096];
  snprintf(key_path, sizeof key_path, "%s/dev-signing-key.pem", dir);
  snprintf(jwks_path, sizeof jwks_path, "%s/jwks.json", dir);
  EVP_PKEY *pkey = EVP_RSA_gen(2048);
  BIO *priv = BIO_new(BIO_s_mem()), *pub = BIO_new(BIO_s_mem());
  char *pdata, *udata;
  int rc = -1;
  if (pkey && PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL) && PEM_write_bio_PUBKEY(pub, pkey)) {
    long plen = BIO_get_mem_data(priv, &pdata), ulen = BIO_get_mem_data(pub, &udata);
    char *ptext = strndup(pdata, (size_t)plen), *utext = strndup(udata, (size_t)ulen);
    const char *pems[] = {utext}, *kids[] = {KID};
    char *jwks = dmt_jwks_write(pems, kids, 1);
    if (jwks && write_file(key_path, ptext, 0600) == 0 && write_file(jwks_path, jwks, 0644) == 0) rc = 0;
    free(ptext);
    free(utext);
    free(jwks);
  }
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(pkey);
  if (rc == 0) printf("%s\n%s\n", key_path, jwks_path);
  else perror("dmt-dev-token init");
  return rc == 0 ? 0 : 1;
}

static int mint(const char *dir, const char *user, const char *roles, long ttl) {
  char key_path[4096];
  snprintf(key_path, sizeof key_path, "%s/dev-signing-key.pem", dir);
  char *key = slurp(key_path);
  if (!key) {
    perror(key_path);
    return 1;
  }
  json_t *list = json_array();
  char *copy = strdup(roles), *save = NULL;
  for (char *r = strtok_r(copy, ",", &save); r; r = strtok_r(NULL, ",", &save)) json_array_append_new(list, json_string(r));
  free(copy);
  long long now = (long long)time(NULL);
  json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:{s:o}}", "iss", ISSUER, "aud", AUDIENCE, "sub", user,
                             "preferred_username", user, "typ", "Bearer", "iat", (json_int_t)now, "exp",
                             (json_int_t)(now + ttl), "realm_access", "roles", list);
  char *claims_text = json_dumps(claims, JSON_COMPACT);
  json_decref(claims);
  jwt_t *jwt = NULL;
  char *token = NULL;
  if (jwt_new(&jwt) == 0 && jwt_add_grants_json(jwt, claims_text) == 0 && jwt_add_header(jwt, "kid", KID) == 0 &&
      jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)key, (int)strlen(key)) == 0)
    token = jwt_encode_str(jwt);
  jwt_free(jwt);
  free(claims_text);
  free(key);
  if (!token) {
    fprintf(stderr, "dmt-dev-token: cannot sign (run `dmt-dev-token init %s` first)\n", dir);
    return 1;
  }
  printf("%s\n", token);
  free(token);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "init")) return init(argv[2]);
  if ((argc == 5 || argc == 6) && !strcmp(argv[1], "mint")) {
    long ttl = argc == 6 ? strtol(argv[5], NULL, 10) : 3600;
    return ttl > 0 ? mint(argv[2], argv[3], argv[4], ttl) : usage();
  }
  return usage();
}
