/* Unit tests for the string hash map, checked against a plain array model under churn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmt/strmap.h"

static void test_basic(void **state) {
  struct dmt_strmap m;
  dmt_strmap_init(&m);
  int a = 1, b = 2;
  void *old = &a;
  assert_null(dmt_strmap_get(&m, "x"));
  assert_int_equal(dmt_strmap_put(&m, "x", &a, &old), 0);
  assert_null(old);
  assert_int_equal(dmt_strmap_put(&m, "x", &b, &old), 0);
  assert_ptr_equal(old, &a);
  assert_ptr_equal(dmt_strmap_get(&m, "x"), &b);
  assert_int_equal(m.len, 1);
  assert_ptr_equal(dmt_strmap_del(&m, "x"), &b);
  assert_null(dmt_strmap_del(&m, "x"));
  assert_int_equal(m.len, 0);
  dmt_strmap_free(&m);
}

#define N 5000
static void test_churn_against_model(void **state) {
  struct dmt_strmap m;
  dmt_strmap_init(&m);
  static intptr_t model[N]; /* 0 = absent, else value */
  memset(model, 0, sizeof model);
  unsigned seed = 42;
  for (int step = 0; step < 200000; step++) {
    int k = (int)(rand_r(&seed) % N);
    char key[32];
    snprintf(key, sizeof key, "guid-%08x", k * 2654435761u);
    if (rand_r(&seed) % 3) {
      intptr_t v = step + 1;
      assert_int_equal(dmt_strmap_put(&m, key, (void *)v, NULL), 0);
      model[k] = v;
    } else {
      intptr_t got = (intptr_t)dmt_strmap_del(&m, key);
      assert_int_equal(got, model[k]);
      model[k] = 0;
    }
  }
  size_t live = 0;
  for (int k = 0; k < N; k++) {
    char key[32];
    snprintf(key, sizeof key, "guid-%08x", k * 2654435761u);
    assert_int_equal((intptr_t)dmt_strmap_get(&m, key), model[k]);
    if (model[k]) live++;
  }
  assert_int_equal(m.len, live);
  dmt_strmap_free(&m);
}

static void count(const char *k, void *v, void *ud) { (*(size_t *)ud)++; }

static void test_foreach(void **state) {
  struct dmt_strmap m;
  dmt_strmap_init(&m);
  for (int i = 0; i < 100; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    dmt_strmap_put(&m, key, NULL, NULL);
  }
  size_t n = 0;
  dmt_strmap_foreach(&m, count, &n);
  assert_int_equal(n, 100);
  assert_true(dmt_strmap_has(&m, "k42"));
  dmt_strmap_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic),
      cmocka_unit_test(test_churn_against_model),
      cmocka_unit_test(test_foreach),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
