/*
 * The embedded secret store against a real PostgreSQL (its own database on
 * the test cluster): round trip, ciphertext at rest, tampering of any part of
 * a row detected (ciphertext, tag, nonce, a row moved to another path or
 * tenant), wrong and unknown keys rejected, and rotation re-encrypting every
 * row - checked in the table (key_id and nonce changed) and by reading with
 * the new key alone - across more rows than one rotation batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "dmt/pg.h"
#include "dmt/secrets.h"
#include "harness.h"

#define SECRET_VALUE "amt-P@ssw0rd-at-rest"
#define GUID "0f5c2b1e-1111-2222-3333-444455556666"
#define MANY 450 /* more than one rotation batch (200) */

static char *dsn;
static PGconn *db;
static char key1[65], key2[65];

static int setup(void **state) {
  char err[256];
  dsn = dmt_test_pg_create_db("secrets");
  if (!dsn || !(db = dmt_pg_connect(dsn, err, sizeof err)) || dmt_pg_migrate(db, NULL, err, sizeof err) < 0) return -1;
  snprintf(key1, sizeof key1, "%s", dmt_test_secrets_key());
  snprintf(key2, sizeof key2, "%s", dmt_test_secrets_key());
  return 0;
}

static int teardown(void **state) {
  PQfinish(db);
  free(dsn);
  return 0;
}

static struct dmt_secrets *store(const char *key, const char *id, const char *old_keys) {
  char err[256];
  struct dmt_secrets_config cfg = {.key = key, .key_id = id, .old_keys = old_keys};
  struct dmt_secrets *s = dmt_secrets_open(&cfg, err, sizeof err);
  if (!s) fail_msg("open: %s", err);
  return s;
}

static void sql(const char *stmt) {
  char err[256];
  if (dmt_pg_exec(db, stmt, 0, NULL, NULL, err, sizeof err) != DMT_PG_OK) fail_msg("%s: %s", stmt, err);
}

static long count(const char *query) { return dmt_test_pg_count(dsn, query); }

static json_t *secret(const char *amt) { return json_pack("{s:s, s:s}", "AMT_PASSWORD", amt, "MPS_PASSWORD", "mps-pw"); }

static int get(struct dmt_secrets *s, const char *tenant, const char *path, json_t **out, char *err, size_t errlen) {
  return dmt_secrets_get(s, db, tenant, path, out, err, errlen);
}

static void test_round_trip(void **state) {
  struct dmt_secrets *s = store(key1, "k1", NULL);
  char err[256];
  json_t *obj = secret(SECRET_VALUE), *got = NULL;
  assert_int_equal(dmt_secrets_put(s, db, "", "devices/" GUID, obj, err, sizeof err), DMT_SECRETS_OK);
  assert_int_equal(get(s, "", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_OK);
  assert_true(json_equal(got, obj));
  dmt_secrets_wipe(got);
  /* At rest: key id, a 96-bit nonce, and no plaintext in the row. */
  assert_int_equal(count("SELECT count(*) FROM dmt.secrets WHERE path = 'devices/" GUID "' AND key_id = 'k1' "
                         "AND octet_length(nonce) = 12 AND position(convert_to('" SECRET_VALUE "', 'UTF8') in ciphertext) = 0"),
                   1);
  /* Every write takes a fresh nonce. */
  assert_int_equal(dmt_secrets_put(s, db, "T1", "devices/" GUID, obj, err, sizeof err), DMT_SECRETS_OK);
  assert_int_equal(count("SELECT count(DISTINCT nonce) FROM dmt.secrets WHERE path = 'devices/" GUID "'"), 2);
  /* A put replaces the whole object; tenants are separate. */
  json_t *small = json_pack("{s:s}", "MPS_PASSWORD", "only");
  assert_int_equal(dmt_secrets_put(s, db, "T1", "devices/" GUID, small, err, sizeof err), DMT_SECRETS_OK);
  assert_int_equal(get(s, "T1", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_OK);
  assert_true(json_equal(got, small));
  dmt_secrets_wipe(got);
  assert_int_equal(get(s, "T2", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_NOT_FOUND);
  assert_int_equal(get(s, "", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_OK);
  assert_true(json_equal(got, obj));
  dmt_secrets_wipe(got);
  /* Delete, and malformed addresses refused before any SQL. */
  assert_int_equal(dmt_secrets_delete(s, db, "T1", "devices/" GUID, err, sizeof err), DMT_SECRETS_OK);
  assert_int_equal(get(s, "T1", "devices/" GUID, &got, err, sizeof err), DMT_SECRETS_NOT_FOUND);
  assert_int_equal(get(s, "", "../etc", &got, err, sizeof err), DMT_SECRETS_BAD_INPUT);
  assert_int_equal(get(s, "a b", "devices/x", &got, err, sizeof err), DMT_SECRETS_BAD_INPUT);
  assert_int_equal(dmt_secrets_health(s, db, err, sizeof err), DMT_SECRETS_OK);
  json_decref(obj);
  json_decref(small);
  dmt_secrets_close(s);
}

static void expect_tampered(struct dmt_secrets *s, const char *tenant, const char *path) {
  char err[256] = "";
  json_t *got = NULL;
  int rc = get(s, tenant, path, &got, err, sizeof err);
  if (rc != DMT_SECRETS_TAMPERED) fail_msg("%s/%s: %d, expected TAMPERED", tenant, path, rc);
  assert_null(got);
  assert_null(strstr(err, SECRET_VALUE));
}

static void test_tampering_detected(void **state) {
  struct dmt_secrets *s = store(key1, "k1", NULL);
  char err[256];
  json_t *obj = secret(SECRET_VALUE);
  const char *paths[] = {"tamper/ct", "tamper/tag", "tamper/nonce", "tamper/moved"};
  for (size_t i = 0; i < 4; i++) assert_int_equal(dmt_secrets_put(s, db, "T1", paths[i], obj, err, sizeof err), 0);
  sql("UPDATE dmt.secrets SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) WHERE path = 'tamper/ct'");
  sql("UPDATE dmt.secrets SET ciphertext = set_byte(ciphertext, octet_length(ciphertext) - 1, "
      "get_byte(ciphertext, octet_length(ciphertext) - 1) # 128) WHERE path = 'tamper/tag'");
  sql("UPDATE dmt.secrets SET nonce = set_byte(nonce, 11, get_byte(nonce, 11) # 1) WHERE path = 'tamper/nonce'");
  /* A whole, untouched row copied to another path, and to another tenant: the AAD binds it to its place. */
  sql("INSERT INTO dmt.secrets (tenant_id, path, key_id, nonce, ciphertext) "
      "SELECT tenant_id, 'tamper/copied', key_id, nonce, ciphertext FROM dmt.secrets WHERE path = 'tamper/moved'");
  sql("INSERT INTO dmt.secrets (tenant_id, path, key_id, nonce, ciphertext) "
      "SELECT 'T2', path, key_id, nonce, ciphertext FROM dmt.secrets WHERE path = 'tamper/moved'");
  expect_tampered(s, "T1", "tamper/ct");
  expect_tampered(s, "T1", "tamper/tag");
  expect_tampered(s, "T1", "tamper/nonce");
  expect_tampered(s, "T1", "tamper/copied");
  expect_tampered(s, "T2", "tamper/moved");
  json_t *got = NULL;
  assert_int_equal(get(s, "T1", "tamper/moved", &got, err, sizeof err), DMT_SECRETS_OK); /* the original is fine */
  dmt_secrets_wipe(got);
  json_decref(obj);
  dmt_secrets_close(s);
}

static void test_wrong_key_rejected(void **state) {
  struct dmt_secrets *s = store(key1, "k1", NULL);
  char err[256];
  json_t *obj = secret(SECRET_VALUE);
  assert_int_equal(dmt_secrets_put(s, db, "", "wrongkey/x", obj, err, sizeof err), DMT_SECRETS_OK);
  dmt_secrets_close(s);
  struct dmt_secrets *other = store(key2, "k1", NULL); /* another key under the same id */
  expect_tampered(other, "", "wrongkey/x");
  dmt_secrets_close(other);
  struct dmt_secrets *unknown = store(key1, "k9", NULL); /* the right bytes, but the row names k1 */
  expect_tampered(unknown, "", "wrongkey/x");
  dmt_secrets_close(unknown);
  json_decref(obj);
}

static void test_rotation_reencrypts(void **state) {
  char err[256], path[64];
  json_t *obj = secret(SECRET_VALUE), *got = NULL;
  sql("DELETE FROM dmt.secrets");
  struct dmt_secrets *old = store(key1, "k1", NULL);
  for (int i = 0; i < MANY; i++) {
    snprintf(path, sizeof path, "devices/rot-%04d", i);
    assert_int_equal(dmt_secrets_put(old, db, i % 2 ? "T1" : "", path, obj, err, sizeof err), DMT_SECRETS_OK);
  }
  sql("CREATE TABLE before_rotation AS SELECT tenant_id, path, nonce FROM dmt.secrets");

  /* The new key is current; the old one stays readable until rotation is done. */
  char old_keys[80];
  snprintf(old_keys, sizeof old_keys, "k1:%s", key1);
  struct dmt_secrets *next = store(key2, "k2", old_keys);
  assert_int_equal(get(next, "T1", "devices/rot-0001", &got, err, sizeof err), DMT_SECRETS_OK);
  assert_true(json_equal(got, obj));
  dmt_secrets_wipe(got);
  assert_int_equal(dmt_secrets_put(next, db, "", "devices/fresh", obj, err, sizeof err), DMT_SECRETS_OK);

  long n = dmt_secrets_rotate(next, db, err, sizeof err);
  if (n != MANY) fail_msg("rotate: %ld (%s), expected %d", n, err, MANY);
  assert_int_equal(count("SELECT count(*) FROM dmt.secrets WHERE key_id = 'k1'"), 0);
  assert_int_equal(count("SELECT count(*) FROM dmt.secrets WHERE key_id = 'k2'"), MANY + 1);
  assert_int_equal(count("SELECT count(*) FROM dmt.secrets s JOIN before_rotation b USING (tenant_id, path) "
                         "WHERE s.nonce = b.nonce"),
                   0);
  sql("DROP TABLE before_rotation");
  assert_int_equal(dmt_secrets_rotate(next, db, err, sizeof err), 0); /* nothing left */
  dmt_secrets_close(next);

  /* Only the new key is needed now; the old one alone no longer reads anything. */
  struct dmt_secrets *only_new = store(key2, "k2", NULL);
  for (int i = 0; i < MANY; i += 37) {
    snprintf(path, sizeof path, "devices/rot-%04d", i);
    assert_int_equal(get(only_new, i % 2 ? "T1" : "", path, &got, err, sizeof err), DMT_SECRETS_OK);
    assert_true(json_equal(got, obj));
    dmt_secrets_wipe(got);
  }
  dmt_secrets_close(only_new);
  expect_tampered(old, "T1", "devices/rot-0001");
  dmt_secrets_close(old);
  json_decref(obj);
}

static void test_rotation_stops_at_an_unreadable_row(void **state) {
  char err[256] = "";
  sql("DELETE FROM dmt.secrets");
  sql("INSERT INTO dmt.secrets (tenant_id, path, key_id, nonce, ciphertext) "
      "VALUES ('T1', 'devices/orphan', 'k0', '\\x000000000000000000000000', '\\x00112233445566778899aabbccddeeff00')");
  char old_keys[80];
  snprintf(old_keys, sizeof old_keys, "k1:%s", key1);
  struct dmt_secrets *s = store(key2, "k2", old_keys);
  assert_int_equal(dmt_secrets_rotate(s, db, err, sizeof err), -1);
  assert_non_null(strstr(err, "devices/orphan")); /* which row, never what it holds */
  assert_non_null(strstr(err, "unknown key id"));
  dmt_secrets_close(s);
}

static void test_rotation_tool(void **state) {
  char err[256], path[64];
  json_t *obj = secret(SECRET_VALUE);
  sql("DELETE FROM dmt.secrets");
  struct dmt_secrets *old = store(key1, "k1", NULL);
  for (int i = 0; i < 5; i++) {
    snprintf(path, sizeof path, "profiles/p%d", i);
    assert_int_equal(dmt_secrets_put(old, db, "T1", path, obj, err, sizeof err), DMT_SECRETS_OK);
  }
  dmt_secrets_close(old);
  /* The operator's procedure: new key current, old key listed, run the tool (keys from files, as Kubernetes mounts them). */
  char *dir = dmt_test_tmpdir("rotate"), key_file[700], old_file[700], log[700];
  snprintf(key_file, sizeof key_file, "%s/key", dir);
  snprintf(old_file, sizeof old_file, "%s/old_keys", dir);
  snprintf(log, sizeof log, "%s/rotate.log", dir);
  FILE *f = fopen(key_file, "w");
  fprintf(f, "%s\n", key2);
  fclose(f);
  f = fopen(old_file, "w");
  fprintf(f, "k1:%s\n", key1);
  fclose(f);
  char e_dsn[600], e_key[760], e_old[760];
  snprintf(e_dsn, sizeof e_dsn, "DMT_DB_DSN=%s", dsn);
  snprintf(e_key, sizeof e_key, "DMT_SECRETS_KEY_FILE=%s", key_file);
  snprintf(e_old, sizeof e_old, "DMT_SECRETS_OLD_KEYS_FILE=%s", old_file);
  char *env[] = {e_dsn, e_key, e_old, "DMT_SECRETS_KEY_ID=k2", NULL};
  char *argv[] = {(char *)dmt_test_bin("tools/dmt-secrets-rotate"), NULL};
  pid_t pid = dmt_test_spawn(argv, env, log);
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_int_equal(count("SELECT count(*) FROM dmt.secrets WHERE key_id = 'k2'"), 5);
  assert_int_equal(count("SELECT count(*) FROM dmt.secrets WHERE key_id <> 'k2'"), 0);
  f = fopen(log, "r");
  char line[1024], all[8192] = "";
  while (f && fgets(line, sizeof line, f)) strncat(all, line, sizeof all - strlen(all) - 1);
  if (f) fclose(f);
  assert_non_null(strstr(all, "event=rotate_done rewritten=5 key_id=k2"));
  assert_null(strstr(all, key1));
  assert_null(strstr(all, key2));
  json_decref(obj);
  free(dir);
}

int main(void) {
  dmt_test_need_env("DMT_TEST_PG_DSN");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_tampering_detected),
      cmocka_unit_test(test_wrong_key_rejected),
      cmocka_unit_test(test_rotation_reencrypts),
      cmocka_unit_test(test_rotation_stops_at_an_unreadable_row),
      cmocka_unit_test(test_rotation_tool),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
