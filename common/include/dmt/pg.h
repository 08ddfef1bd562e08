/*
 * PostgreSQL helpers over libpq: connecting, parameterised statements with one
 * error convention, and the migration runner.
 *
 * Migrations are the files schemas/sql/NNNN_name.sql, embedded into the
 * library at build time (so a container image or a Helm hook Job needs no
 * files beside the binary). dmt_pg_migrate() applies the missing ones in
 * order, each in its own transaction, under a PostgreSQL advisory lock, so
 * several agents starting at once are safe; dmt.schema_migrations records
 * version, name, SHA-256 and time, and a migration edited after it was
 * applied is refused rather than silently ignored.
 */
#ifndef DMT_PG_H
#define DMT_PG_H

#include <libpq-fe.h>
#include <stddef.h>

struct dmt_log;

enum {
  DMT_PG_OK = 0,
  DMT_PG_ERROR = -1,     /* statement failed (constraint, syntax, ...) */
  DMT_PG_CONN_LOST = -2, /* connection is broken: reconnect and retry */
};

struct dmt_migration {
  int version;
  const char *name;
  const char *sql;
};

/* The embedded migrations, ordered by version. */
extern const struct dmt_migration dmt_migrations[];
extern const size_t dmt_migrations_count;

/* Connects (blocking). Returns NULL with err set. */
PGconn *dmt_pg_connect(const char *dsn, char *err, size_t errlen);

/*
 * Runs a statement with text parameters (NULL entries are SQL NULL).
 * *out (if non-NULL) receives the result on success; the caller PQclear()s it.
 * Returns DMT_PG_OK, DMT_PG_ERROR or DMT_PG_CONN_LOST; err gets the server's message.
 * If sqlstate is non-NULL it receives the 5-char SQLSTATE of a failure ("" if none).
 */
int dmt_pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params, PGresult **out,
                char *err, size_t errlen);
int dmt_pg_exec_state(PGconn *c, const char *sql, int nparams, const char *const *params,
                      PGresult **out, char sqlstate[6], char *err, size_t errlen);

/* Applies pending migrations. Returns the number applied, or -1 with err set. */
int dmt_pg_migrate(PGconn *c, const struct dmt_log *lg, char *err, size_t errlen);

#endif
