/*
 * dmt-secrets-rotate: re-encrypts every secret of the embedded store under
 * the current key and exits. The rotation procedure (docs/security.md):
 * make the new key current (secrets.key / secrets.key_id) and list the old
 * one in secrets.old_keys, roll the agents, run this, then drop the old key.
 * Safe while agents run: a row is rewritten only if it still holds what was
 * decrypted, and rotating twice is a no-op.
 */
#include <stdio.h>
#include <stdlib.h>

#include "dmt/config.h"
#include "dmt/log.h"
#include "dmt/pg.h"
#include "dmt/secrets.h"

static const struct dmt_config_key keys[] = {DMT_CONFIG_COMMON_KEYS};

int main(int argc, char **argv) {
  struct dmt_config cfg;
  char err[512];
  int rc = dmt_config_startup(&cfg, keys, sizeof keys / sizeof keys[0], argc, argv, "dmt-secrets-rotate");
  if (rc >= 0) return rc;
  struct dmt_log lg = {.out = stderr, .min = DMT_LOG_INFO, .component = "secrets-rotate"};
  dmt_log_level_parse(dmt_config_str(&cfg, "log.level"), &lg.min);
  struct dmt_secrets_config sc;
  dmt_secrets_config_from(&cfg, &sc);
  sc.log = &lg;
  struct dmt_secrets *s = dmt_secrets_open(&sc, err, sizeof err);
  PGconn *c = s ? dmt_pg_connect(dmt_config_str(&cfg, "db.dsn"), err, sizeof err) : NULL;
  long n = c ? dmt_secrets_rotate(s, c, err, sizeof err) : -1;
  if (n < 0) DMT_ERROR(&lg, "rotate_failed", "error=\"%s\"", err);
  else DMT_INFO(&lg, "rotate_done", "rewritten=%ld key_id=%s", n, dmt_config_str(&cfg, "secrets.key_id"));
  PQfinish(c);
  dmt_secrets_close(s);
  dmt_config_free(&cfg);
  return n < 0 ? 1 : 0;
}
