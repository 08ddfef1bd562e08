/*
 * Unit tests for agent service credentials (dmt/svc_auth.h): hashes written by
 * Mosquitto's own mosquitto_passwd verify here (same $7$ scheme), our lines
 * round-trip, wrong/short secrets and unknown users fail, malformed files are
 * refused without echoing their content, and reload diffs name exactly the
 * users whose sessions must be cut.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmt/svc_auth.h"

/* Produced by `mosquitto_passwd -b f svctest <secret>` (Mosquitto 2.0.11), user renamed. */
#define MOSQ_LONG_SECRET "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg"
#define MOSQ_LONG                                                                                                      \
  "svc:test:$7$101$yJRUdzFK+zr0Crwc$tGJ9H9T5kmctj40j8XGTf9v+Uifau+0K6vBeVwYo4fm5HismeIFt5rm5aa4krwvwlKR/Mfwjt2SUXFXa9l" \
  "skLg=="
#define MOSQ_SHORT                                                                                                     \
  "svc:short:$7$101$x43A2h3pt4NwfQvB$w6jBCikStziROzgcoOnuvmcnfUhkpxdURNG/sMvIQt+S9Km5mttGvej9e9fLnIUvAlrfHHVa2TxFuWfJo" \
  "oeBoQ=="

static struct dmt_svc_creds *parse(const char *text) {
  char err[256];
  return dmt_svc_creds_parse(text, strlen(text), err, sizeof err);
}

static void test_mosquitto_passwd_vectors(void **state) {
  struct dmt_svc_creds *c = parse("# agents\n" MOSQ_LONG "\r\n\n" MOSQ_SHORT "\n");
  assert_non_null(c);
  assert_int_equal(dmt_svc_creds_count(c), 2);
  assert_true(dmt_svc_creds_check(c, "svc:test", MOSQ_LONG_SECRET));
  assert_false(dmt_svc_creds_check(c, "svc:test", MOSQ_LONG_SECRET "x"));
  assert_false(dmt_svc_creds_check(c, "svc:test", "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXh"));
  assert_false(dmt_svc_creds_check(c, "svc:other", MOSQ_LONG_SECRET));
  /* The hash matches "short", but secrets under 32 characters are refused outright. */
  assert_false(dmt_svc_creds_check(c, "svc:short", "short"));
  assert_false(dmt_svc_creds_check(c, "svc:test", NULL));
  assert_false(dmt_svc_creds_check(c, NULL, MOSQ_LONG_SECRET));
  dmt_svc_creds_free(c);
}

static void test_round_trip(void **state) {
  char secret[44], line[512], line2[512];
  assert_int_equal(dmt_svc_new_secret(secret), 0);
  assert_int_equal(strlen(secret), 43);
  assert_int_equal(dmt_svc_hash_line("svc:cira", secret, DMT_SVC_ITERATIONS, line, sizeof line), 0);
  assert_int_equal(dmt_svc_hash_line("svc:cira", secret, DMT_SVC_ITERATIONS, line2, sizeof line2), 0);
  assert_string_not_equal(line, line2); /* fresh salt each time */
  assert_null(strstr(line, secret));
  struct dmt_svc_creds *c = parse(line);
  assert_non_null(c);
  assert_true(dmt_svc_creds_check(c, "svc:cira", secret));
  secret[0] ^= 1;
  assert_false(dmt_svc_creds_check(c, "svc:cira", secret));
  dmt_svc_creds_free(c);
  char other[44];
  assert_int_equal(dmt_svc_new_secret(other), 0);
  assert_string_not_equal(other, secret);
  /* Refused inputs. */
  assert_int_equal(dmt_svc_hash_line("cira", other, 1000, line, sizeof line), -1);
  assert_int_equal(dmt_svc_hash_line("svc:cira", "too-short", 1000, line, sizeof line), -1);
  assert_int_equal(dmt_svc_hash_line("svc:cira", other, 0, line, sizeof line), -1);
  assert_int_equal(dmt_svc_hash_line("svc:cira", other, 1000, line, 40), -1);
}

static void test_malformed_files(void **state) {
  const char *bad[] = {
      "svc:a:$6$101$yJRUdzFK+zr0Crwc$tGJ9",       /* other scheme */
      "svc:a:$7$0$yJRUdzFK+zr0Crwc$AAAA",         /* zero iterations */
      "svc:a:$7$101$yJRUdzFK+zr0Crwc$AAAA",       /* hash too short */
      "svc:a:$7$101$$AAAA",                       /* no salt */
      "svc:a",                                    /* no hash */
      "cira:$7$101$yJRUdzFK+zr0Crwc$AAAA",        /* not an svc: name */
      "svc:A:$7$101$yJRUdzFK+zr0Crwc$AAAA",       /* upper case */
      "svc:-a:$7$101$yJRUdzFK+zr0Crwc$AAAA",      /* leading punctuation */
      MOSQ_LONG "\n" MOSQ_LONG,                   /* duplicate */
      "svc:a:$7$101$yJRU*zFK+zr0Crwc$" "AAAA",    /* bad base64 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char err[256] = "";
    assert_null(dmt_svc_creds_parse(bad[i], strlen(bad[i]), err, sizeof err));
    assert_non_null(strstr(err, "line "));
    assert_null(strstr(err, "AAAA")); /* never echoes the file */
    assert_null(strstr(err, "zr0Crwc"));
  }
  char err[256];
  assert_null(dmt_svc_creds_load_file("/nonexistent/agents.passwd", err, sizeof err));
  assert_true(dmt_svc_username_valid("svc:rps-2.eu_w"));
  assert_false(dmt_svc_username_valid("svc:"));
  assert_false(dmt_svc_username_valid("svc:a b"));
  assert_false(dmt_svc_username_valid("SVC:a"));
}

static void note(const char *user, void *ud) {
  char *seen = ud;
  strcat(seen, user);
  strcat(seen, ";");
}

static void test_changed(void **state) {
  char s1[44], s2[44], l1[512], l2[512], l2b[512], text[2048];
  dmt_svc_new_secret(s1);
  dmt_svc_new_secret(s2);
  dmt_svc_hash_line("svc:one", s1, 100, l1, sizeof l1);
  dmt_svc_hash_line("svc:two", s2, 100, l2, sizeof l2);
  dmt_svc_hash_line("svc:two", s1, 100, l2b, sizeof l2b);
  snprintf(text, sizeof text, "%s\n%s\n%s\n", l1, l2, MOSQ_LONG);
  struct dmt_svc_creds *old = parse(text);
  snprintf(text, sizeof text, "%s\n%s\n", l1, l2b); /* svc:two re-keyed, svc:test removed */
  struct dmt_svc_creds *new = parse(text);
  char seen[256] = "";
  dmt_svc_creds_changed(old, new, note, seen);
  assert_string_equal(seen, "svc:two;svc:test;");
  seen[0] = '\0';
  dmt_svc_creds_changed(new, new, note, seen);
  assert_string_equal(seen, "");
  dmt_svc_creds_free(old);
  dmt_svc_creds_free(new);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mosquitto_passwd_vectors),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_malformed_files),
      cmocka_unit_test(test_changed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
