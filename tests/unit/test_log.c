/* Unit tests for structured logging: format, level filter, value quoting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmt/log.h"

static char *capture(enum dmt_log_level min, enum dmt_log_level lvl, const char *kv) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  struct dmt_log lg = {.out = f, .min = min, .component = "unit"};
  dmt_log_write(&lg, lvl, "probe", "%s", kv);
  fclose(f);
  return buf;
}

static void test_line_shape(void **state) {
  char *line = capture(DMT_LOG_INFO, DMT_LOG_WARN, "guid=abc n=3");
  assert_non_null(strstr(line, " level=warn comp=unit event=probe guid=abc n=3\n"));
  assert_memory_equal(line, "ts=", 3);
  free(line);
}

static void test_level_filter(void **state) {
  char *line = capture(DMT_LOG_WARN, DMT_LOG_INFO, "x=1");
  assert_string_equal(line, "");
  free(line);
}

static void test_quote(void **state) {
  char out[64];
  assert_string_equal(dmt_log_kv_quote("plain-value_1.2", out, sizeof out), "plain-value_1.2");
  assert_string_equal(dmt_log_kv_quote("two words", out, sizeof out), "\"two words\"");
  /* A hostile value cannot inject a new field or line. */
  assert_string_equal(dmt_log_kv_quote("a\" level=error\n", out, sizeof out),
                      "\"a\\\" level=error\\n\"");
  assert_string_equal(dmt_log_kv_quote("", out, sizeof out), "\"\"");
  assert_string_equal(dmt_log_kv_quote("\x01", out, sizeof out), "\"\\x01\"");
  /* Truncation keeps the closing quote. */
  char small[6];
  assert_string_equal(dmt_log_kv_quote("a b c d e", small, sizeof small), "\"a b\"");
}

static void test_level_parse(void **state) {
  enum dmt_log_level l;
  assert_int_equal(dmt_log_level_parse("DEBUG", &l), 0);
  assert_int_equal(l, DMT_LOG_DEBUG);
  assert_int_equal(dmt_log_level_parse("verbose", &l), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_line_shape),
      cmocka_unit_test(test_level_filter),
      cmocka_unit_test(test_quote),
      cmocka_unit_test(test_level_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
