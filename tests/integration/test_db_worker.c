/*
 * The database worker against a real PostgreSQL: jobs run off the owner
 * thread and complete on it, in order; and when PostgreSQL stops, queued
 * writes wait and are all applied once it is back (the test stops and
 * restarts the server), so an agent loses nothing across a database restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/db.h"
#include "dmt/log.h"
#include "dmt/pg.h"
#include "dmt/workq.h"
#include "harness.h"

static const struct dmt_log lg = {.out = NULL, .min = DMT_LOG_ERROR, .component = "test"};

struct state {
  struct dmt_workq q;
  pthread_t owner;
  int done, failed, wrong_thread;
  int order[256];
};

struct insert {
  struct state *st;
  int n;
};

static int insert_row(PGconn *c, void *arg) {
  struct insert *ins = arg;
  char n[16], err[256];
  snprintf(n, sizeof n, "%d", ins->n);
  const char *p[] = {n};
  return dmt_pg_exec(c, "INSERT INTO dmt.events (id, tenant_id, ts, kind, outcome, message) "
                        "VALUES (gen_random_uuid(), 'db-test', now(), 'config', 'success', $1)",
                     1, p, NULL, err, sizeof err);
}

static void inserted(void *arg, int rc) {
  struct insert *ins = arg;
  struct state *st = ins->st;
  if (!pthread_equal(pthread_self(), st->owner)) st->wrong_thread++;
  if (rc == DMT_PG_OK) st->order[st->done++ % 256] = ins->n;
  else st->failed++;
  free(ins);
}

static void submit(struct dmt_db *db, struct state *st, int n) {
  struct insert *ins = malloc(sizeof *ins);
  ins->st = st;
  ins->n = n;
  assert_int_equal(dmt_db_submit(db, insert_row, inserted, ins), 0);
}

struct waiter {
  struct state *st;
  int want;
};

static bool all_done(void *arg) {
  struct waiter *w = arg;
  dmt_workq_run(&w->st->q);
  return w->st->done + w->st->failed >= w->want;
}

static long rows(const char *dsn) {
  char err[256];
  PGconn *c = dmt_pg_connect(dsn, err, sizeof err);
  PGresult *r;
  assert_int_equal(dmt_pg_exec(c, "SELECT count(*) FROM dmt.events WHERE tenant_id='db-test'", 0, NULL,
                               &r, err, sizeof err),
                   DMT_PG_OK);
  long n = atol(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return n;
}

static struct dmt_db *open_db(const char *dsn, struct state *st) {
  dmt_workq_init(&st->q, NULL, NULL);
  st->owner = pthread_self();
  struct dmt_db_opts o = {.dsn = dsn, .log = &lg, .owner = &st->q, .migrate = true};
  char err[256];
  struct dmt_db *db = dmt_db_new(&o, err, sizeof err);
  assert_non_null(db);
  assert_int_equal(dmt_db_start(db), 0);
  return db;
}

static void test_jobs_complete_in_order_on_owner(void **state) {
  char *dsn = dmt_test_pg_create_db("dbw");
  struct state st = {0};
  struct dmt_db *db = open_db(dsn, &st);
  for (int i = 0; i < 100; i++) submit(db, &st, i);
  struct waiter w = {&st, 100};
  assert_true(dmt_test_wait_until(all_done, &w, 20000));
  assert_int_equal(st.failed, 0);
  assert_int_equal(st.wrong_thread, 0);
  for (int i = 0; i < 100; i++) assert_int_equal(st.order[i], i);
  assert_true(dmt_db_connected(db));
  assert_int_equal(rows(dsn), 100);
  dmt_db_free(db, 1000);
  dmt_workq_destroy(&st.q);
  free(dsn);
}

static void test_writes_survive_database_restart(void **state) {
  char *dsn = dmt_test_pg_create_db("dbr");
  struct state st = {0};
  struct dmt_db *db = open_db(dsn, &st);
  for (int i = 0; i < 20; i++) submit(db, &st, i);
  struct waiter w = {&st, 20};
  assert_true(dmt_test_wait_until(all_done, &w, 20000));

  assert_int_equal(dmt_test_pg_stop(), 0);
  for (int i = 20; i < 70; i++) submit(db, &st, i); /* queued while the database is down */
  sleep(1);
  dmt_workq_run(&st.q);
  assert_true(st.done < 70);
  assert_false(dmt_db_connected(db));
  assert_int_equal(st.failed, 0);

  assert_int_equal(dmt_test_pg_start(), 0);
  struct waiter w2 = {&st, 70};
  assert_true(dmt_test_wait_until(all_done, &w2, 30000));
  assert_int_equal(st.failed, 0);
  assert_int_equal(rows(dsn), 70);
  assert_true(dmt_db_connected(db));
  dmt_db_free(db, 1000);
  dmt_workq_destroy(&st.q);
  free(dsn);
}

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_need_env("DMT_TEST_PGDATA");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jobs_complete_in_order_on_owner),
      cmocka_unit_test(test_writes_survive_database_restart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
