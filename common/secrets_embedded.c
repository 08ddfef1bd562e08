/*
 * Embedded secret store: each secret is a JSON object encrypted with
 * AES-256-GCM (OpenSSL EVP) under the current key, stored in dmt.secrets with
 * its key id and a fresh 96-bit nonce. The tenant and path are bound as
 * additional authenticated data, so a ciphertext copied to another row does
 * not decrypt. Older keys stay readable until dmt_secrets_rotate() has
 * re-encrypted every row under the current one.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/pg.h"
#include "secrets_internal.h"

#define MAX_KEYS 8
#define NONCE_LEN 12
#define TAG_LEN 16

struct key {
  char id[64];
  uint8_t bytes[32];
};

struct embedded {
  struct dmt_secrets base;
  struct key keys[MAX_KEYS]; /* keys[0] is current */
  size_t nkeys;
};

static const struct key *find_key(const struct embedded *e, const char *id) {
  for (size_t i = 0; i < e->nkeys; i++)
    if (!strcmp(e->keys[i].id, id)) return &e->keys[i];
  return NULL;
}

static size_t aad(const char *tenant, const char *path, uint8_t *out, size_t cap) {
  int n = snprintf((char *)out, cap, "%s%c%s", tenant, 0, path);
  return n < 0 ? 0 : (size_t)n;
}

static int seal(const struct key *k, const char *tenant, const char *path, const char *plain, size_t plen,
                uint8_t nonce[NONCE_LEN], uint8_t **ct, size_t *ctlen) {
  uint8_t a[400];
  size_t alen = aad(tenant, path, a, sizeof a);
  if (RAND_bytes(nonce, NONCE_LEN) != 1) return -1;
  *ct = malloc(plen + TAG_LEN);
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int len = 0, fin = 0, ok = *ct && c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, k->bytes, nonce) &&
                          EVP_EncryptUpdate(c, NULL, &len, a, (int)alen) &&
                          EVP_EncryptUpdate(c, *ct, &len, (const uint8_t *)plain, (int)plen) &&
                          EVP_EncryptFinal_ex(c, *ct + len, &fin) &&
                          EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, *ct + plen);
  EVP_CIPHER_CTX_free(c);
  if (!ok) {
    free(*ct);
    *ct = NULL;
    return -1;
  }
  *ctlen = plen + TAG_LEN;
  return 0;
}

/* Returns the malloc'd plaintext (NUL-terminated) or NULL when authentication fails. */
static char *open_sealed(const struct key *k, const char *tenant, const char *path, const uint8_t *nonce,
                         const uint8_t *ct, size_t ctlen) {
  if (ctlen < TAG_LEN) return NULL;
  uint8_t a[400];
  size_t alen = aad(tenant, path, a, sizeof a), plen = ctlen - TAG_LEN;
  char *plain = malloc(plen + 1);
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int len = 0, fin = 0;
  int ok = plain && c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, k->bytes, nonce) &&
           EVP_DecryptUpdate(c, NULL, &len, a, (int)alen) &&
           EVP_DecryptUpdate(c, (uint8_t *)plain, &len, ct, (int)plen) &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(ct + plen)) &&
           EVP_DecryptFinal_ex(c, (uint8_t *)plain + len, &fin) > 0;
  EVP_CIPHER_CTX_free(c);
  if (!ok) {
    if (plain) OPENSSL_cleanse(plain, plen);
    free(plain);
    return NULL;
  }
  plain[plen] = '\0';
  return plain;
}

static int map_pg(int rc) { return rc == DMT_PG_OK ? DMT_SECRETS_OK : DMT_SECRETS_ERROR; }

static int decrypt_row(struct embedded *e, const char *tenant, const char *path, PGresult *r, int row, json_t **out,
                       char *err, size_t errlen) {
  const struct key *k = find_key(e, PQgetvalue(r, row, 0));
  if (!k) {
    snprintf(err, errlen, "secret is encrypted under an unknown key id");
    return DMT_SECRETS_TAMPERED;
  }
  size_t nlen = 0, clen = 0;
  uint8_t *nonce = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, 1), &nlen);
  uint8_t *ct = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, 2), &clen);
  char *plain = (nonce && nlen == NONCE_LEN && ct) ? open_sealed(k, tenant, path, nonce, ct, clen) : NULL;
  PQfreemem(nonce);
  PQfreemem(ct);
  if (!plain) {
    snprintf(err, errlen, "secret failed authentication (wrong key or altered data)");
    return DMT_SECRETS_TAMPERED;
  }
  *out = json_loads(plain, JSON_REJECT_DUPLICATES, NULL);
  OPENSSL_cleanse(plain, strlen(plain));
  free(plain);
  if (!json_is_object(*out)) {
    json_decref(*out);
    *out = NULL;
    snprintf(err, errlen, "secret is not a JSON object");
    return DMT_SECRETS_TAMPERED;
  }
  return DMT_SECRETS_OK;
}

static int e_get(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, json_t **out, char *err,
                 size_t errlen) {
  const char *p[] = {tenant, path};
  PGresult *r;
  int rc = dmt_pg_exec(db, "SELECT key_id, nonce, ciphertext FROM dmt.secrets WHERE tenant_id = $1 AND path = $2", 2,
                       p, &r, err, errlen);
  if (rc != DMT_PG_OK) return map_pg(rc);
  rc = PQntuples(r) == 0 ? DMT_SECRETS_NOT_FOUND : decrypt_row((struct embedded *)s, tenant, path, r, 0, out, err, errlen);
  PQclear(r);
  return rc;
}

static int write_row(struct embedded *e, PGconn *db, const char *tenant, const char *path, const char *plain,
                     char *err, size_t errlen) {
  uint8_t nonce[NONCE_LEN], *ct = NULL;
  size_t ctlen = 0;
  if (seal(&e->keys[0], tenant, path, plain, strlen(plain), nonce, &ct, &ctlen) != 0) {
    snprintf(err, errlen, "encryption failed");
    return DMT_SECRETS_ERROR;
  }
  size_t n1, n2;
  unsigned char *en = PQescapeByteaConn(db, nonce, NONCE_LEN, &n1);
  unsigned char *ec = PQescapeByteaConn(db, ct, ctlen, &n2);
  free(ct);
  const char *p[] = {tenant, path, e->keys[0].id, (const char *)en, (const char *)ec};
  int rc = (en && ec) ? dmt_pg_exec(db,
                                    "INSERT INTO dmt.secrets (tenant_id, path, key_id, nonce, ciphertext, updated_at) "
                                    "VALUES ($1, $2, $3, $4::bytea, $5::bytea, now()) ON CONFLICT (tenant_id, path) "
                                    "DO UPDATE SET key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, "
                                    "ciphertext = EXCLUDED.ciphertext, updated_at = now()",
                                    5, p, NULL, err, errlen)
                      : DMT_PG_ERROR;
  PQfreemem(en);
  PQfreemem(ec);
  return map_pg(rc);
}

static int e_put(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, const json_t *obj,
                 char *err, size_t errlen) {
  char *plain = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
  if (!plain) return DMT_SECRETS_BAD_INPUT;
  int rc = write_row((struct embedded *)s, db, tenant, path, plain, err, errlen);
  OPENSSL_cleanse(plain, strlen(plain));
  free(plain);
  return rc;
}

static int e_del(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, char *err, size_t errlen) {
  const char *p[] = {tenant, path};
  return map_pg(dmt_pg_exec(db, "DELETE FROM dmt.secrets WHERE tenant_id = $1 AND path = $2", 2, p, NULL, err, errlen));
}

static long e_rotate(struct dmt_secrets *s, PGconn *db, char *err, size_t errlen) {
  struct embedded *e = (struct embedded *)s;
  const char *p[] = {e->keys[0].id};
  PGresult *r;
  if (dmt_pg_exec(db, "SELECT key_id, nonce, ciphertext, tenant_id, path FROM dmt.secrets WHERE key_id <> $1", 1, p,
                  &r, err, errlen) != DMT_PG_OK)
    return -1;
  long done = 0;
  for (int i = 0; i < PQntuples(r); i++) {
    const char *tenant = PQgetvalue(r, i, 3), *path = PQgetvalue(r, i, 4);
    json_t *obj = NULL;
    if (decrypt_row(e, tenant, path, r, i, &obj, err, errlen) != DMT_SECRETS_OK) {
      done = -1;
      break;
    }
    int rc = e_put(s, db, tenant, path, obj, err, errlen);
    dmt_secrets_wipe(obj);
    if (rc != DMT_SECRETS_OK) {
      done = -1;
      break;
    }
    done++;
  }
  PQclear(r);
  return done;
}

static int e_health(struct dmt_secrets *s, PGconn *db, char *err, size_t errlen) {
  return map_pg(dmt_pg_exec(db, "SELECT 1 FROM dmt.secrets LIMIT 1", 0, NULL, NULL, err, errlen));
}

static void e_close(struct dmt_secrets *s) {
  OPENSSL_cleanse(((struct embedded *)s)->keys, sizeof ((struct embedded *)s)->keys);
  free(s);
}

static const struct dmt_secrets_ops embedded_ops = {e_close, e_get, e_put, e_del, e_rotate, e_health};

struct dmt_secrets *dmt_secrets_embedded_open(const struct dmt_secrets_config *cfg, char *err, size_t errlen) {
  struct embedded *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->base.ops = &embedded_ops;
  if (!cfg->key || dmt_secrets_parse_key(cfg->key, e->keys[0].bytes) != 0) {
    snprintf(err, errlen, "secrets key must be 32 bytes as 64 hex digits or base64");
    free(e);
    return NULL;
  }
  snprintf(e->keys[0].id, sizeof e->keys[0].id, "%s", cfg->key_id && *cfg->key_id ? cfg->key_id : "k1");
  e->nkeys = 1;
  /* old_keys: "id:key,id:key" */
  char *list = cfg->old_keys ? strdup(cfg->old_keys) : NULL, *save = NULL;
  for (char *item = list ? strtok_r(list, ",", &save) : NULL; item && e->nkeys < MAX_KEYS;
       item = strtok_r(NULL, ",", &save)) {
    char *colon = strchr(item, ':');
    struct key *k = &e->keys[e->nkeys];
    if (!colon || dmt_secrets_parse_key(colon + 1, k->bytes) != 0) {
      snprintf(err, errlen, "old secrets keys must be `id:key` pairs");
      OPENSSL_cleanse(list, strlen(list));
      free(list);
      e_close(&e->base);
      return NULL;
    }
    snprintf(k->id, sizeof k->id, "%.*s", (int)(colon - item), item);
    e->nkeys++;
  }
  if (list) OPENSSL_cleanse(list, strlen(list));
  free(list);
  return &e->base;
}

struct dmt_secrets *dmt_secrets_vault_open(const struct dmt_secrets_config *cfg, char *err, size_t errlen) {
  snprintf(err, errlen, "the Vault back end is not available in this build (use the embedded back end)");
  return NULL;
}
