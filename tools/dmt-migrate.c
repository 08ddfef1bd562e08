/*
 * dmt-migrate: applies the embedded schemas/sql migrations and exits. Agents
 * migrate at start too; this exists for `./dmt up` and for the Helm hook Job
 * that prepares a shared EMF database before any agent starts.
 */
#include <stdio.h>
#include <stdlib.h>

#include "dmt/config.h"
#include "dmt/log.h"
#include "dmt/pg.h"

static const struct dmt_config_key keys[] = {DMT_CONFIG_COMMON_KEYS};

int main(int argc, char **argv) {
  struct dmt_config cfg;
  char err[512];
  int rc = dmt_config_startup(&cfg, keys, sizeof keys / sizeof keys[0], argc, argv, "dmt-migrate");
  if (rc >= 0) return rc;
  struct dmt_log lg = {.out = stderr, .min = DMT_LOG_INFO, .component = "migrate"};
  dmt_log_level_parse(dmt_config_str(&cfg, "log.level"), &lg.min);
  PGconn *c = dmt_pg_connect(dmt_config_str(&cfg, "db.dsn"), err, sizeof err);
  if (!c) {
    DMT_ERROR(&lg, "db_connect_failed", "error=\"%s\"", err);
    dmt_config_free(&cfg);
    return 1;
  }
  int n = dmt_pg_migrate(c, &lg, err, sizeof err);
  if (n < 0) DMT_ERROR(&lg, "migrate_failed", "error=\"%s\"", err);
  else DMT_INFO(&lg, "migrate_done", "applied=%d known=%zu", n, dmt_migrations_count);
  PQfinish(c);
  dmt_config_free(&cfg);
  return n < 0 ? 1 : 0;
}
