/*
 * The secret store front end (see dmt/secrets.h): path validation, key
 * parsing, back-end selection, the wipe helper and the memory back ends keep
 * their keys and tokens in. The back ends live in secrets_embedded.c
 * (AES-256-GCM in PostgreSQL) and secrets_vault.c (Vault KV v2).
 */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dmt/config.h"
#include "secrets_internal.h"

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = tolower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int dmt_secrets_parse_key(const char *text, uint8_t key[32]) {
  size_t n = text ? strlen(text) : 0;
  if (n == 64) {
    for (size_t i = 0; i < 32; i++) {
      int hi = hexval((unsigned char)text[2 * i]), lo = hexval((unsigned char)text[2 * i + 1]);
      if (hi < 0 || lo < 0) return -1;
      key[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
  }
  if (n == 44) { /* base64 of 32 bytes */
    uint8_t out[33];
    if (EVP_DecodeBlock(out, (const unsigned char *)text, 44) != 33 || text[43] != '=' || text[42] == '=') return -1;
    memcpy(key, out, 32);
    OPENSSL_cleanse(out, sizeof out);
    return 0;
  }
  return -1;
}

bool dmt_secrets_path_valid(const char *tenant, const char *path) {
  if (!tenant || !path || !*path || strlen(tenant) > 64 || strlen(path) > 256) return false;
  if (path[0] == '/' || strstr(path, "..") || strstr(path, "//")) return false;
  for (const char *p = path; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("/_-.@", *p)) return false;
  for (const char *p = tenant; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') return false;
  return true;
}

void dmt_secrets_config_from(const struct dmt_config *c, struct dmt_secrets_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->backend = dmt_config_str(c, "secrets.backend");
  cfg->key = dmt_config_str(c, "secrets.key");
  cfg->key_id = dmt_config_str(c, "secrets.key_id");
  cfg->old_keys = dmt_config_str(c, "secrets.old_keys");
  cfg->vault_address = dmt_config_str(c, "secrets.vault.address");
  cfg->vault_token = dmt_config_str(c, "secrets.vault.token");
  cfg->vault_mount_path = dmt_config_str(c, "secrets.vault.mount_path");
  cfg->vault_k8s_role = dmt_config_str(c, "secrets.vault.k8s_role");
  cfg->vault_k8s_jwt_file = dmt_config_str(c, "secrets.vault.k8s_jwt_file");
  cfg->vault_k8s_mount = dmt_config_str(c, "secrets.vault.k8s_mount");
  cfg->vault_ca_file = dmt_config_str(c, "secrets.vault.ca_file");
}

void *dmt_secrets_secure_alloc(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  madvise(p, size, MADV_DONTDUMP); /* never in a core dump */
  mlock(p, size);                  /* best effort: never in swap (needs RLIMIT_MEMLOCK) */
  return p;                        /* zero-filled */
}

void dmt_secrets_secure_free(void *p, size_t size) {
  if (!p) return;
  OPENSSL_cleanse(p, size);
  munlock(p, size);
  munmap(p, size);
}

struct dmt_secrets *dmt_secrets_open(const struct dmt_secrets_config *cfg, char *err, size_t errlen) {
  const char *backend = cfg->backend ? cfg->backend : "embedded";
  if (!strcmp(backend, "embedded")) return dmt_secrets_embedded_open(cfg, err, errlen);
  if (!strcmp(backend, "vault")) return dmt_secrets_vault_open(cfg, err, errlen);
  snprintf(err, errlen, "unknown secrets back end `%s` (embedded or vault)", backend);
  return NULL;
}

void dmt_secrets_close(struct dmt_secrets *s) {
  if (s) s->ops->close(s);
}

int dmt_secrets_get(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, json_t **out,
                    char *err, size_t errlen) {
  *out = NULL;
  if (!dmt_secrets_path_valid(tenant, path)) {
    snprintf(err, errlen, "invalid secret path");
    return DMT_SECRETS_BAD_INPUT;
  }
  return s->ops->get(s, db, tenant, path, out, err, errlen);
}

int dmt_secrets_put(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, const json_t *obj,
                    char *err, size_t errlen) {
  if (!dmt_secrets_path_valid(tenant, path) || !json_is_object(obj)) {
    snprintf(err, errlen, "invalid secret path or value");
    return DMT_SECRETS_BAD_INPUT;
  }
  return s->ops->put(s, db, tenant, path, obj, err, errlen);
}

int dmt_secrets_delete(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, char *err,
                       size_t errlen) {
  if (!dmt_secrets_path_valid(tenant, path)) {
    snprintf(err, errlen, "invalid secret path");
    return DMT_SECRETS_BAD_INPUT;
  }
  return s->ops->del(s, db, tenant, path, err, errlen);
}

long dmt_secrets_rotate(struct dmt_secrets *s, PGconn *db, char *err, size_t errlen) {
  if (!s->ops->rotate) {
    snprintf(err, errlen, "this back end rotates keys itself");
    return -1;
  }
  return s->ops->rotate(s, db, err, errlen);
}

int dmt_secrets_health(struct dmt_secrets *s, PGconn *db, char *err, size_t errlen) {
  return s->ops->health(s, db, err, errlen);
}

void dmt_secrets_wipe(json_t *obj) {
  if (!obj) return;
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    if (json_is_string(v)) OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
  }
  json_decref(obj);
}
