/*
 * The duplicate-correlation cache (agents/cira/cmd_cache.c): a request is
 * executed once, a redelivery while it runs is dropped, one after it gets
 * the same reply; entries expire after their TTL and the cache never holds
 * more than its cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cira.h"

static void test_once(void **state) {
  struct cmd_cache c;
  cmd_cache_init(&c, 10, 1000);
  const uint8_t *r = NULL;
  size_t n = 0;
  assert_int_equal(cmd_cache_begin(&c, "t/g/01", 0, &r, &n), CMD_CACHE_NEW);
  assert_int_equal(cmd_cache_begin(&c, "t/g/01", 1, &r, &n), CMD_CACHE_PENDING);
  cmd_cache_finish(&c, "t/g/01", "reply-1", 7);
  assert_int_equal(cmd_cache_begin(&c, "t/g/01", 2, &r, &n), CMD_CACHE_DONE);
  assert_int_equal(n, 7);
  assert_memory_equal(r, "reply-1", 7);
  /* finishing twice keeps the first answer */
  cmd_cache_finish(&c, "t/g/01", "other", 5);
  assert_int_equal(cmd_cache_begin(&c, "t/g/01", 3, &r, &n), CMD_CACHE_DONE);
  assert_memory_equal(r, "reply-1", 7);
  /* a different correlation id, or the same id for another device, is a new request */
  assert_int_equal(cmd_cache_begin(&c, "t/g/02", 3, &r, &n), CMD_CACHE_NEW);
  assert_int_equal(cmd_cache_begin(&c, "t/h/01", 3, &r, &n), CMD_CACHE_NEW);
  cmd_cache_free(&c);
}

static void test_ttl(void **state) {
  struct cmd_cache c;
  cmd_cache_init(&c, 10, 1000);
  const uint8_t *r;
  size_t n;
  cmd_cache_begin(&c, "a", 0, &r, &n);
  cmd_cache_finish(&c, "a", "x", 1);
  cmd_cache_begin(&c, "b", 500, &r, &n);
  cmd_cache_expire(&c, 999);
  assert_int_equal(cmd_cache_size(&c), 2);
  cmd_cache_expire(&c, 1000);
  assert_int_equal(cmd_cache_size(&c), 1);
  /* after its TTL a correlation id is new again */
  assert_int_equal(cmd_cache_begin(&c, "a", 1001, &r, &n), CMD_CACHE_NEW);
  assert_int_equal(cmd_cache_begin(&c, "b", 1400, &r, &n), CMD_CACHE_PENDING);
  assert_int_equal(cmd_cache_begin(&c, "b", 1500, &r, &n), CMD_CACHE_NEW);
  cmd_cache_free(&c);
}

static void test_cap_evicts_oldest(void **state) {
  struct cmd_cache c;
  cmd_cache_init(&c, 100, 60000);
  const uint8_t *r;
  size_t n;
  char key[16];
  for (int i = 0; i < 1000; i++) { /* also makes the ring grow and wrap */
    snprintf(key, sizeof key, "k%d", i);
    assert_int_equal(cmd_cache_begin(&c, key, (uint64_t)i, &r, &n), CMD_CACHE_NEW);
    if (i % 2) cmd_cache_finish(&c, key, key, strlen(key));
    assert_true(cmd_cache_size(&c) <= 100);
  }
  assert_int_equal(cmd_cache_size(&c), 100);
  assert_int_equal(cmd_cache_begin(&c, "k999", 1000, &r, &n), CMD_CACHE_DONE);
  assert_int_equal(cmd_cache_begin(&c, "k900", 1000, &r, &n), CMD_CACHE_PENDING);
  assert_int_equal(cmd_cache_begin(&c, "k899", 1000, &r, &n), CMD_CACHE_NEW); /* evicted */
  cmd_cache_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_once), cmocka_unit_test(test_ttl),
                                     cmocka_unit_test(test_cap_evicts_oldest)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
