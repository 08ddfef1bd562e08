/*
 * The terminator's failed-login limiter (agents/cira/limiter.c): free
 * failures, exponential blocks with a ceiling, the quiet window, expiry,
 * the table cap, and IPv6 sources counted per /64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cira.h"

static const struct limiter_policy policy = {
    .free_failures = 3, .window_ms = 600000, .base_block_ms = 1000, .max_block_ms = 300000, .max_entries = 100};

static void test_free_failures_then_doubling(void **state) {
  struct cira_limiter l;
  limiter_init(&l, &policy);
  uint64_t t = 1000000;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(limiter_fail(&l, "ip:10.0.0.1", t), 0);
    assert_int_equal(limiter_blocked_for(&l, "ip:10.0.0.1", t), 0);
  }
  assert_int_equal(limiter_fail(&l, "ip:10.0.0.1", t), 1000);
  assert_int_equal(limiter_blocked_for(&l, "ip:10.0.0.1", t), 1000);
  assert_int_equal(limiter_blocked_for(&l, "ip:10.0.0.1", t + 999), 1);
  assert_int_equal(limiter_blocked_for(&l, "ip:10.0.0.1", t + 1000), 0);
  assert_int_equal(limiter_fail(&l, "ip:10.0.0.1", t + 1000), 2000);
  assert_int_equal(limiter_fail(&l, "ip:10.0.0.1", t + 3000), 4000);
  /* other keys are unaffected */
  assert_int_equal(limiter_blocked_for(&l, "ip:10.0.0.2", t + 3000), 0);
  assert_int_equal(limiter_blocked_for(&l, "guid:x", t + 3000), 0);
  limiter_free(&l);
}

static void test_ceiling(void **state) {
  struct cira_limiter l;
  limiter_init(&l, &policy);
  uint64_t t = 5000, b = 0;
  for (int i = 0; i < 60; i++) b = limiter_fail(&l, "guid:g", t += 10);
  assert_int_equal(b, 300000);
  assert_int_equal(limiter_blocked_for(&l, "guid:g", t), 300000);
  limiter_free(&l);
}

static void test_quiet_window_resets(void **state) {
  struct cira_limiter l;
  limiter_init(&l, &policy);
  uint64_t t = 0;
  for (int i = 0; i < 4; i++) limiter_fail(&l, "k", t);
  assert_true(limiter_blocked_for(&l, "k", t) > 0);
  t += policy.window_ms + 1; /* long after: the count starts over */
  assert_int_equal(limiter_fail(&l, "k", t), 0);
  limiter_reset(&l, "k");
  assert_int_equal(limiter_blocked_for(&l, "k", t), 0);
  limiter_free(&l);
}

static void test_expire_and_cap(void **state) {
  struct cira_limiter l;
  limiter_init(&l, &policy);
  char key[32];
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "ip:192.0.2.%d", i);
    limiter_fail(&l, key, 0);
  }
  assert_int_equal(l.map.len, 100);
  /* full of live entries: a new key is not tracked, an old one still counts */
  assert_int_equal(limiter_fail(&l, "ip:198.51.100.1", 10), 0);
  assert_int_equal(l.map.len, 100);
  assert_int_equal(l.untracked, 1);
  limiter_fail(&l, "ip:192.0.2.1", 10);
  limiter_fail(&l, "ip:192.0.2.1", 10);
  assert_int_equal(limiter_fail(&l, "ip:192.0.2.1", 10), 1000);
  /* past the window, unblocked entries go; the blocked one stays while blocked */
  assert_int_equal(limiter_expire(&l, policy.window_ms + 5), 99);
  assert_int_equal(l.map.len, 1);
  /* and a new key is tracked again once there is room (expiry also runs on demand) */
  assert_int_equal(limiter_fail(&l, "ip:198.51.100.1", policy.window_ms + 6), 0);
  assert_int_equal(l.map.len, 2);
  limiter_free(&l);
}

static void test_keys(void **state) {
  char a[LIMITER_KEY_LEN], b[LIMITER_KEY_LEN];
  limiter_source_key("203.0.113.9", a);
  assert_string_equal(a, "ip:203.0.113.9");
  limiter_source_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", a);
  limiter_source_key("2001:db8:1:2::1", b);
  assert_string_equal(a, b); /* one /64 is one source */
  assert_string_equal(a, "ip:2001:db8:1:2::/64");
  limiter_source_key("2001:db8:1:3::1", b);
  assert_string_not_equal(a, b);
  limiter_guid_key("4c4c4544-004b-4210-8033-b6c04f504633", a);
  assert_string_equal(a, "guid:4c4c4544-004b-4210-8033-b6c04f504633");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_free_failures_then_doubling), cmocka_unit_test(test_ceiling),
      cmocka_unit_test(test_quiet_window_resets),         cmocka_unit_test(test_expire_and_cap),
      cmocka_unit_test(test_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
