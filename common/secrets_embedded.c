/*
 * Embedded secret store: each secret is a JSON object encrypted with
 * AES-256-GCM (OpenSSL EVP) under the current key, stored in dmt.secrets with
 * its key id and a fresh 96-bit nonce. The tenant and path are bound as
 * additional authenticated data, so a ciphertext copied to another row does
 * not decrypt. Older keys stay readable until dmt_secrets_rotate() has
 * re-encrypted every row under the current one; rotation rewrites a row only
 * if it still holds the ciphertext that was decrypted (compare-and-set on
 * key_id + nonce), so a concurrent put is never overwritten with older data.
 * The key table lives in memory excluded from core dumps.
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

/*
 * Encrypts obj for (tenant, path) under the current key and writes it: an
 * upsert, or - when cas_key_id is set - an update that only applies while the
 * row still holds (cas_key_id, cas_nonce). Returns the rows written or -1.
 */
static long store(struct embedded *e, PGconn *db, const char *tenant, const char *path, const json_t *obj,
                  const char *cas_key_id, const char *cas_nonce, char *err, size_t errlen) {
  char *plain = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
  uint8_t nonce[NONCE_LEN], *ct = NULL;
  size_t ctlen = 0;
  int sealed = plain ? seal(&e->keys[0], tenant, path, plain, strlen(plain), nonce, &ct, &ctlen) : -1;
  if (plain) OPENSSL_cleanse(plain, strlen(plain));
  free(plain);
  if (sealed != 0) {
    snprintf(err, errlen, "encryption failed");
    return -1;
  }
  size_t n1, n2;
  unsigned char *en = PQescapeByteaConn(db, nonce, NONCE_LEN, &n1), *ec = PQescapeByteaConn(db, ct, ctlen, &n2);
  free(ct);
  const char *p[] = {tenant, path, e->keys[0].id, (const char *)en, (const char *)ec, cas_key_id, cas_nonce};
  const char *upsert = "INSERT INTO dmt.secrets (tenant_id, path, key_id, nonce, ciphertext, updated_at) "
                       "VALUES ($1, $2, $3, $4::bytea, $5::bytea, now()) ON CONFLICT (tenant_id, path) "
                       "DO UPDATE SET key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, "
                       "ciphertext = EXCLUDED.ciphertext, updated_at = now()";
  const char *cas = "UPDATE dmt.secrets SET key_id = $3, nonce = $4::bytea, ciphertext = $5::bytea, updated_at = now() "
                    "WHERE tenant_id = $1 AND path = $2 AND key_id = $6 AND nonce = $7::bytea";
  PGresult *r = NULL;
  int rc = (en && ec) ? dmt_pg_exec(db, cas_key_id ? cas : upsert, cas_key_id ? 7 : 5, p, &r, err, errlen)
                      : DMT_PG_ERROR;
  PQfreemem(en);
  PQfreemem(ec);
  long rows = rc == DMT_PG_OK ? atol(PQcmdTuples(r)) : -1;
  PQclear(r);
  return rows;
}

static int e_put(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, const json_t *obj,
                 char *err, size_t errlen) {
  return store((struct embedded *)s, db, tenant, path, obj, NULL, NULL, err, errlen) < 0 ? DMT_SECRETS_ERROR
                                                                                          : DMT_SECRETS_OK;
}

static int e_del(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, char *err, size_t errlen) {
  const char *p[] = {tenant, path};
  return map_pg(dmt_pg_exec(db, "DELETE FROM dmt.secrets WHERE tenant_id = $1 AND path = $2", 2, p, NULL, err, errlen));
}

#define ROTATE_BATCH "200"

static long e_rotate(struct dmt_secrets *s, PGconn *db, char *err, size_t errlen) {
  struct embedded *e = (struct embedded *)s;
  long done = 0;
  char after_tenant[80] = "", *after_path = strdup("");
  bool first = true;
  for (;;) {
    /* Keyset pagination: each row is visited once even if it cannot be rewritten. */
    const char *p[] = {e->keys[0].id, after_tenant, after_path, first ? "t" : "f"};
    PGresult *r;
    if (!after_path || dmt_pg_exec(db,
                                   "SELECT key_id, nonce, ciphertext, tenant_id, path FROM dmt.secrets WHERE key_id <> $1 "
                                   "AND ($4 OR (tenant_id, path) > ($2, $3)) ORDER BY tenant_id, path LIMIT " ROTATE_BATCH,
                                   4, p, &r, err, errlen) != DMT_PG_OK) {
      done = -1;
      break;
    }
    int rows = PQntuples(r);
    for (int i = 0; i < rows && done >= 0; i++) {
      const char *tenant = PQgetvalue(r, i, 3), *path = PQgetvalue(r, i, 4);
      json_t *obj = NULL;
      char why[128];
      if (decrypt_row(e, tenant, path, r, i, &obj, why, sizeof why) != DMT_SECRETS_OK) {
        snprintf(err, errlen, "cannot rotate tenant=\"%s\" path=\"%s\": %s", tenant, path, why);
        done = -1;
        break;
      }
      /* 0 rows: a put replaced it meanwhile (under the current key), which is as good. */
      long rc = store(e, db, tenant, path, obj, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), err, errlen);
      dmt_secrets_wipe(obj);
      done = rc < 0 ? -1 : done + rc;
    }
    if (done >= 0 && rows > 0) {
      snprintf(after_tenant, sizeof after_tenant, "%s", PQgetvalue(r, rows - 1, 3));
      free(after_path);
      after_path = strdup(PQgetvalue(r, rows - 1, 4));
      first = false;
    }
    PQclear(r);
    if (done < 0 || rows < atoi(ROTATE_BATCH)) break;
  }
  free(after_path);
  return done;
}

static int e_health(struct dmt_secrets *s, PGconn *db, char *err, size_t errlen) {
  return map_pg(dmt_pg_exec(db, "SELECT 1 FROM dmt.secrets LIMIT 1", 0, NULL, NULL, err, errlen));
}

static void e_close(struct dmt_secrets *s) { dmt_secrets_secure_free(s, sizeof(struct embedded)); }

static const struct dmt_secrets_ops embedded_ops = {e_close, e_get, e_put, e_del, e_rotate, e_health};

static bool id_taken(const struct embedded *e, const char *id, size_t len) {
  for (size_t i = 0; i < e->nkeys; i++)
    if (strlen(e->keys[i].id) == len && memcmp(e->keys[i].id, id, len) == 0) return true;
  return false;
}

/* old_keys: "id:key,id:key". 0 or -1 with err set. */
static int add_old_keys(struct embedded *e, const char *text, char *err, size_t errlen) {
  for (const char *item = text; item && *item;) {
    const char *end = strchr(item, ','), *colon = memchr(item, ':', end ? (size_t)(end - item) : strlen(item));
    size_t len = end ? (size_t)(end - item) : strlen(item);
    char keytext[128];
    if (!colon || colon == item || (size_t)(colon - item) >= sizeof e->keys[0].id ||
        len - (size_t)(colon - item) - 1 >= sizeof keytext) {
      snprintf(err, errlen, "old secrets keys must be `id:key` pairs separated by commas");
      return -1;
    }
    if (e->nkeys == MAX_KEYS || id_taken(e, item, (size_t)(colon - item))) {
      snprintf(err, errlen, "old secrets keys: at most %d keys, each id once (and not the current key's id)",
               MAX_KEYS - 1);
      return -1;
    }
    struct key *k = &e->keys[e->nkeys];
    snprintf(keytext, sizeof keytext, "%.*s", (int)(len - (size_t)(colon - item) - 1), colon + 1);
    int rc = dmt_secrets_parse_key(keytext, k->bytes);
    OPENSSL_cleanse(keytext, sizeof keytext);
    if (rc != 0) {
      snprintf(err, errlen, "old secrets key `%.*s` must be 32 bytes as 64 hex digits or base64", (int)(colon - item),
               item);
      return -1;
    }
    snprintf(k->id, sizeof k->id, "%.*s", (int)(colon - item), item);
    e->nkeys++;
    item = end ? end + 1 : NULL;
  }
  return 0;
}

struct dmt_secrets *dmt_secrets_embedded_open(const struct dmt_secrets_config *cfg, char *err, size_t errlen) {
  struct embedded *e = dmt_secrets_secure_alloc(sizeof *e);
  if (!e) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  e->base.ops = &embedded_ops;
  const char *id = cfg->key_id && *cfg->key_id ? cfg->key_id : "k1";
  if (!cfg->key || dmt_secrets_parse_key(cfg->key, e->keys[0].bytes) != 0) {
    snprintf(err, errlen, "secrets key must be 32 bytes as 64 hex digits or base64");
  } else if (strlen(id) >= sizeof e->keys[0].id || strchr(id, ':') || strchr(id, ',')) {
    snprintf(err, errlen, "secrets key id must be under %zu characters, without ':' or ','", sizeof e->keys[0].id);
  } else {
    snprintf(e->keys[0].id, sizeof e->keys[0].id, "%s", id);
    e->nkeys = 1;
    if (add_old_keys(e, cfg->old_keys, err, errlen) == 0) return &e->base;
  }
  e_close(&e->base);
  return NULL;
}
