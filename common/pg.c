/* PostgreSQL connection, statement and migration helpers (see dmt/pg.h). */
#include "dmt/pg.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/log.h"

/* Any fixed 64-bit number works; this one spells "dmt-migr" so it is recognisable in pg_locks. */
#define MIGRATION_LOCK_KEY "7236567914712229746"

PGconn *dmt_pg_connect(const char *dsn, char *err, size_t errlen) {
  PGconn *c = PQconnectdb(dsn);
  if (PQstatus(c) != CONNECTION_OK) {
    snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(c));
    err[strcspn(err, "\n")] = '\0';
    PQfinish(c);
    return NULL;
  }
  return c;
}

int dmt_pg_exec_state(PGconn *c, const char *sql, int nparams, const char *const *params,
                      PGresult **out, char sqlstate[6], char *err, size_t errlen) {
  if (out) *out = NULL;
  if (sqlstate) sqlstate[0] = '\0';
  PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    if (out) *out = r;
    else PQclear(r);
    return DMT_PG_OK;
  }
  char state[6] = "";
  const char *field = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  if (field) snprintf(state, sizeof state, "%s", field);
  if (sqlstate) memcpy(sqlstate, state, sizeof state);
  snprintf(err, errlen, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
  err[strcspn(err, "\n")] = '\0';
  PQclear(r);
  /* Class 08 = connection exception; 57P01..03 = admin shutdown / crash / cannot connect now. */
  if (PQstatus(c) != CONNECTION_OK || !strncmp(state, "08", 2) || !strncmp(state, "57P", 3))
    return DMT_PG_CONN_LOST;
  return DMT_PG_ERROR;
}

int dmt_pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params, PGresult **out,
                char *err, size_t errlen) {
  return dmt_pg_exec_state(c, sql, nparams, params, out, NULL, err, errlen);
}

static void sha256_hex(const char *s, char out[65]) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
  for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int exec_simple(PGconn *c, const char *sql, char *err, size_t errlen) {
  PGresult *r = PQexec(c, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok) {
    snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    err[strcspn(err, "\n")] = '\0';
  }
  PQclear(r);
  return ok ? 0 : -1;
}

/* Returns 1 if applied with the same checksum, 0 if not applied, -1 on mismatch/error. */
static int applied_state(PGconn *c, const struct dmt_migration *mg, const char *sum, char *err,
                         size_t errlen) {
  char version[16];
  snprintf(version, sizeof version, "%d", mg->version);
  const char *p[] = {version};
  PGresult *r;
  if (dmt_pg_exec(c, "SELECT checksum FROM dmt.schema_migrations WHERE version = $1", 1, p, &r, err,
                  errlen) != DMT_PG_OK)
    return -1;
  int rc = 0;
  if (PQntuples(r) == 1) {
    if (strcmp(PQgetvalue(r, 0, 0), sum) == 0) {
      rc = 1;
    } else {
      snprintf(err, errlen, "migration %04d_%s was edited after it was applied (checksum mismatch)",
               mg->version, mg->name);
      rc = -1;
    }
  }
  PQclear(r);
  return rc;
}

static int apply_one(PGconn *c, const struct dmt_migration *mg, const char *sum, char *err,
                     size_t errlen) {
  if (exec_simple(c, "BEGIN", err, errlen) != 0) return -1;
  char version[16];
  snprintf(version, sizeof version, "%d", mg->version);
  const char *p[] = {version, mg->name, sum};
  if (exec_simple(c, mg->sql, err, errlen) != 0 ||
      dmt_pg_exec(c, "INSERT INTO dmt.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                  3, p, NULL, err, errlen) != DMT_PG_OK) {
    char ignored[128];
    exec_simple(c, "ROLLBACK", ignored, sizeof ignored);
    return -1;
  }
  return exec_simple(c, "COMMIT", err, errlen);
}

int dmt_pg_migrate(PGconn *c, const struct dmt_log *lg, char *err, size_t errlen) {
  if (exec_simple(c, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", err, errlen) != 0) return -1;
  int applied = 0;
  if (exec_simple(c,
                  "CREATE SCHEMA IF NOT EXISTS dmt;"
                  "CREATE TABLE IF NOT EXISTS dmt.schema_migrations ("
                  " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                  " applied_at timestamptz NOT NULL DEFAULT now())",
                  err, errlen) != 0) {
    applied = -1;
    goto unlock;
  }
  for (size_t i = 0; i < dmt_migrations_count; i++) {
    const struct dmt_migration *mg = &dmt_migrations[i];
    char sum[65];
    sha256_hex(mg->sql, sum);
    int st = applied_state(c, mg, sum, err, errlen);
    if (st < 0) {
      applied = -1;
      break;
    }
    if (st == 1) continue;
    if (apply_one(c, mg, sum, err, errlen) != 0) {
      char msg[512];
      snprintf(msg, sizeof msg, "migration %04d_%s failed: %s", mg->version, mg->name, err);
      snprintf(err, errlen, "%s", msg);
      applied = -1;
      break;
    }
    DMT_INFO(lg, "migration_applied", "version=%d name=%s", mg->version, mg->name);
    applied++;
  }
unlock:;
  char ignored[128];
  exec_simple(c, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", ignored, sizeof ignored);
  return applied;
}
