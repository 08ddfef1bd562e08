/*
 * Migrations against a real PostgreSQL: they apply to an empty database, a
 * second run applies nothing, two processes racing both succeed with each
 * migration applied exactly once, and an edited migration is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/log.h"
#include "dmt/pg.h"
#include "harness.h"

static const struct dmt_log quiet = {.out = NULL, .min = DMT_LOG_WARN, .component = "test"};

static long count_rows(PGconn *c, const char *sql) {
  PGresult *r;
  char err[256];
  if (dmt_pg_exec(c, sql, 0, NULL, &r, err, sizeof err) != DMT_PG_OK) fail_msg("%s", err);
  long n = atol(PQgetvalue(r, 0, 0));
  PQclear(r);
  return n;
}

static void test_apply_and_idempotent(void **state) {
  char *dsn = dmt_test_pg_create_db("migr");
  assert_non_null(dsn);
  char err[512];
  PGconn *c = dmt_pg_connect(dsn, err, sizeof err);
  assert_non_null(c);
  assert_true(dmt_migrations_count >= 1);
  assert_int_equal(dmt_pg_migrate(c, &quiet, err, sizeof err), (int)dmt_migrations_count);
  assert_int_equal(dmt_pg_migrate(c, &quiet, err, sizeof err), 0);
  assert_int_equal(count_rows(c, "SELECT count(*) FROM dmt.schema_migrations"), (long)dmt_migrations_count);
  /* The tables DMT's MPS and RPS keep exist in our schema, each with tenant_id. */
  const char *tables[] = {"devices", "ciraconfigs", "profiles", "domains", "wirelessconfigs",
                          "ieee8021xconfigs", "proxyconfigs", "events", "secrets"};
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM information_schema.columns WHERE table_schema='dmt' "
             "AND table_name='%s' AND column_name='tenant_id'", tables[i]);
    assert_int_equal(count_rows(c, sql), 1);
  }
  /* Nothing of ours leaked into public. */
  assert_int_equal(count_rows(c, "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'"), 0);
  PQfinish(c);
  free(dsn);
}

static void test_concurrent_start(void **state) {
  char *dsn = dmt_test_pg_create_db("race");
  assert_non_null(dsn);
  enum { N = 4 };
  int pipes[N][2];
  pid_t pids[N];
  for (int i = 0; i < N; i++) {
    assert_int_equal(pipe(pipes[i]), 0);
    pids[i] = fork();
    if (pids[i] == 0) {
      char err[512];
      PGconn *c = dmt_pg_connect(dsn, err, sizeof err);
      int n = c ? dmt_pg_migrate(c, &quiet, err, sizeof err) : -1;
      if (n < 0) fprintf(stderr, "child migrate: %s\n", err);
      ssize_t w = write(pipes[i][1], &n, sizeof n);
      (void)w;
      _exit(n < 0 ? 1 : 0);
    }
  }
  int total = 0;
  for (int i = 0; i < N; i++) {
    int n = -1, st;
    assert_int_equal(read(pipes[i][0], &n, sizeof n), (int)sizeof n);
    waitpid(pids[i], &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(n >= 0);
    total += n;
    close(pipes[i][0]);
    close(pipes[i][1]);
  }
  /* Between them, every migration was applied exactly once. */
  assert_int_equal(total, (int)dmt_migrations_count);
  char err[512];
  PGconn *c = dmt_pg_connect(dsn, err, sizeof err);
  assert_int_equal(count_rows(c, "SELECT count(*) FROM dmt.schema_migrations"), (long)dmt_migrations_count);
  PQfinish(c);
  free(dsn);
}

static void test_edited_migration_refused(void **state) {
  char *dsn = dmt_test_pg_create_db("edit");
  char err[512];
  PGconn *c = dmt_pg_connect(dsn, err, sizeof err);
  assert_non_null(c);
  assert_true(dmt_pg_migrate(c, &quiet, err, sizeof err) > 0);
  assert_int_equal(dmt_pg_exec(c, "UPDATE dmt.schema_migrations SET checksum = 'x' WHERE version = 1", 0,
                               NULL, NULL, err, sizeof err),
                   DMT_PG_OK);
  assert_int_equal(dmt_pg_migrate(c, &quiet, err, sizeof err), -1);
  assert_non_null(strstr(err, "checksum mismatch"));
  PQfinish(c);
  free(dsn);
}

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_apply_and_idempotent),
      cmocka_unit_test(test_concurrent_start),
      cmocka_unit_test(test_edited_migration_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
