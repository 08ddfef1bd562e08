/* Internal: the secret store's back-end interface (see dmt/secrets.h). */
#ifndef DMT_SECRETS_INTERNAL_H
#define DMT_SECRETS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmt/secrets.h"

struct dmt_secrets_ops {
  void (*close)(struct dmt_secrets *s);
  int (*get)(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, json_t **out, char *err,
             size_t errlen);
  int (*put)(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, const json_t *obj, char *err,
             size_t errlen);
  int (*del)(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, char *err, size_t errlen);
  long (*rotate)(struct dmt_secrets *s, PGconn *db, char *err, size_t errlen);
  int (*health)(struct dmt_secrets *s, PGconn *db, char *err, size_t errlen);
};

struct dmt_secrets {
  const struct dmt_secrets_ops *ops;
};

/* Zeroed memory kept out of core dumps (and, when allowed, out of swap); for keys and tokens. */
void *dmt_secrets_secure_alloc(size_t size);
/* Zeroes and releases memory from dmt_secrets_secure_alloc. NULL is fine. */
void dmt_secrets_secure_free(void *p, size_t size);

/* 64 hex digits or base64 of 32 bytes. */
int dmt_secrets_parse_key(const char *text, uint8_t key[32]);
bool dmt_secrets_path_valid(const char *tenant, const char *path);

struct dmt_secrets *dmt_secrets_embedded_open(const struct dmt_secrets_config *cfg, char *err, size_t errlen);
struct dmt_secrets *dmt_secrets_vault_open(const struct dmt_secrets_config *cfg, char *err, size_t errlen);

#endif
