/*
 * DMT conformance: DMT's own Postman collections (MPS and RPS, from
 * ../shared/conformance/dmt/) run by newman against a real dmt-bridge
 * (DMT-standalone mode) and a real dmt-cira terminator on a fresh database.
 * tests/conformance/check_newman.js then requires that every failed assertion
 * is an exception listed in tests/conformance/EXCEPTIONS.md, and that every
 * listed exception still fails. `./dmt test` installs newman (npm) and sets
 * DMT_TEST_NEWMAN; without it the test is skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge_fixture.h"
#include "harness.h"

static char conformance_dir[600];

static int run(char *const argv[], const char *log) {
  pid_t pid = dmt_test_spawn(argv, NULL, log);
  if (pid <= 0) return -1;
  int st;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void newman(const char *bin, const char *collection, const char *env, int port, const char *report,
                   const char *log) {
  char col[600], envf[600], host[64], exp[700];
  snprintf(col, sizeof col, "%s/%s", conformance_dir, collection);
  snprintf(envf, sizeof envf, "%s/%s", conformance_dir, env);
  snprintf(host, sizeof host, "host=127.0.0.1:%d", port);
  snprintf(exp, sizeof exp, "%s", report);
  char *argv[] = {(char *)bin, "run", col, "-e", envf, "--env-var", host, "--reporters", "cli,json",
                  "--reporter-json-export", exp, "--timeout-request", "60000", "--color", "off", NULL};
  /* newman exits non-zero when any assertion fails: the checker decides what that means */
  int rc = run(argv, log);
  assert_true(rc >= 0);
}

static void test_dmt_collections(void **state) {
  const char *newman_bin = getenv("DMT_TEST_NEWMAN");
  if (!newman_bin || !*newman_bin) {
    fprintf(stderr, "DMT_TEST_NEWMAN unset (./dmt test installs newman): skipping\n");
    exit(DMT_TEST_SKIP);
  }
  dmt_test_need_env("DMT_TEST_PG_DSN");
  const char *shared = getenv("DMT_SHARED_DIR") ? getenv("DMT_SHARED_DIR") : DMT_SHARED_DIR;
  snprintf(conformance_dir, sizeof conformance_dir, "%s/conformance/dmt", shared);
  char probe[700];
  snprintf(probe, sizeof probe, "%s/MPS.postman_collection.json", conformance_dir);
  if (access(probe, R_OK) != 0) fail_msg("DMT's collections not found under %s (set DMT_SHARED_DIR)", conformance_dir);
  char *dsn = dmt_test_pg_create_db("conformance");
  char *dir = dmt_test_tmpdir("conformance");
  assert_non_null(dsn);
  assert_non_null(dir);
  char *key = strdup(dmt_test_secrets_key());
  char instance[64];
  snprintf(instance, sizeof instance, "cira-conformance-%d", (int)getpid());
  /* the real terminator: it creates the MPS root CA that /api/v1/ciracert serves */
  struct dmt_test_cira cira = {.dsn = dsn, .secrets_key = key, .instance = instance, .runtime_dir = dir,
                               .port = dmt_test_free_port(), .health_port = dmt_test_free_port()};
  assert_int_equal(dmt_test_cira_start(&cira), 0);
  struct bt_bridge b = {0};
  assert_int_equal(bt_bridge_start(&b, dsn, key, dir, NULL), 0);

  char mps[700], rps[700], log[700];
  snprintf(mps, sizeof mps, "%s/mps-report.json", dir);
  snprintf(rps, sizeof rps, "%s/rps-report.json", dir);
  snprintf(log, sizeof log, "%s/newman.log", dir);
  newman(newman_bin, "MPS.postman_collection.json", "MPS.postman_environment.json", b.mps_port, mps, log);
  newman(newman_bin, "rps.postman_collection.json", "rps.postman_environment.json", b.rps_port, rps, log);

  char checker[600], exceptions[600], a1[720], a2[720];
  snprintf(checker, sizeof checker, "%s/tests/conformance/check_newman.js", DMT_SOURCE_DIR);
  snprintf(exceptions, sizeof exceptions, "%s/tests/conformance/EXCEPTIONS.md", DMT_SOURCE_DIR);
  snprintf(a1, sizeof a1, "mps:%s", mps);
  snprintf(a2, sizeof a2, "rps:%s", rps);
  char *argv[] = {"/usr/bin/env", "node", checker, exceptions, a1, a2, NULL};
  int rc = run(argv, NULL); /* prints the summary and every failure to the test's output */
  if (rc != 0) fprintf(stderr, "newman output: %s\nbridge log: %s\n", log, b.log);
  assert_int_equal(rc, 0);

  assert_int_equal(bt_bridge_stop(&b), 0); /* clean exit: no sanitizer report in the bridge */
  dmt_test_stop(cira.pid, SIGTERM, 10000);
  free(key);
  free(dsn);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_dmt_collections)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
