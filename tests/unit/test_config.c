/* Unit tests for configuration precedence, secrets handling and flag parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/config.h"

static const struct dmt_config_key keys[] = {
    DMT_CONFIG_COMMON_KEYS,
    {"cira.port", "DMT_CIRA_PORT", "MPSPORT", "4433", "CIRA listener port", 0},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static void clear_env(void) {
  unsetenv("DMT_CIRA_PORT");
  unsetenv("MPSPORT");
  unsetenv("DMT_MQTT_PASSWORD");
  unsetenv("DMT_MQTT_PASSWORD_FILE");
  unsetenv("DMT_CONFIG_FILE");
}

static char *write_tmp(const char *content) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/dmt-cfg-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, content, strlen(content)), (int)strlen(content));
  close(fd);
  return path;
}

static void test_defaults(void **state) {
  clear_env();
  struct dmt_config c;
  dmt_config_init(&c, keys, NKEYS);
  assert_string_equal(dmt_config_str(&c, "cira.port"), "4433");
  assert_int_equal(dmt_config_int(&c, "cira.port", 0), 4433);
  assert_null(dmt_config_str(&c, "mqtt.password"));
  assert_true(dmt_config_bool(&c, "db.migrate", false));
  dmt_config_free(&c);
}

static void test_precedence(void **state) {
  clear_env();
  struct dmt_config c;
  char err[256];
  dmt_config_init(&c, keys, NKEYS);
  char *file = write_tmp("# comment\ncira.port = 5000\nlog.level=\"debug\"\n");
  assert_int_equal(dmt_config_load_file(&c, file, err, sizeof err), 0);
  unlink(file);
  assert_string_equal(dmt_config_str(&c, "cira.port"), "5000");
  assert_string_equal(dmt_config_str(&c, "log.level"), "debug");
  setenv("MPSPORT", "6000", 1); /* DMT's name beats the file */
  assert_int_equal(dmt_config_load_env(&c, err, sizeof err), 0);
  assert_string_equal(dmt_config_str(&c, "cira.port"), "6000");
  setenv("DMT_CIRA_PORT", "7000", 1); /* ours beats DMT's */
  assert_int_equal(dmt_config_load_env(&c, err, sizeof err), 0);
  assert_string_equal(dmt_config_str(&c, "cira.port"), "7000");
  dmt_config_free(&c);
  clear_env();
}

static void test_unknown_key_in_file(void **state) {
  struct dmt_config c;
  char err[256];
  dmt_config_init(&c, keys, NKEYS);
  char *file = write_tmp("cira.prot = 1\n");
  assert_int_equal(dmt_config_load_file(&c, file, err, sizeof err), -1);
  unlink(file);
  assert_non_null(strstr(err, "unknown setting `cira.prot`"));
  dmt_config_free(&c);
}

static void test_secret_file_and_masking(void **state) {
  clear_env();
  struct dmt_config c;
  char err[256];
  dmt_config_init(&c, keys, NKEYS);
  char *file = write_tmp("s3cr3t-value\n");
  setenv("DMT_MQTT_PASSWORD_FILE", file, 1);
  assert_int_equal(dmt_config_load_env(&c, err, sizeof err), 0);
  unlink(file);
  assert_string_equal(dmt_config_str(&c, "mqtt.password"), "s3cr3t-value");
  char *dump = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&dump, &len);
  dmt_config_dump(&c, f);
  fclose(f);
  assert_null(strstr(dump, "s3cr3t"));
  assert_non_null(strstr(dump, "mqtt.password=(set)"));
  free(dump);
  dmt_config_free(&c);
  clear_env();
}

static void test_flags(void **state) {
  clear_env();
  struct dmt_config c;
  char err[256];
  dmt_config_init(&c, keys, NKEYS);
  char *argv[] = {"agent", "--cira.port=8000", "--log.level=warn", NULL};
  assert_int_equal(dmt_config_from_args(&c, 3, argv, err, sizeof err), 0);
  assert_int_equal(dmt_config_int(&c, "cira.port", 0), 8000);
  char *bad[] = {"agent", "--nope=1", NULL};
  assert_int_equal(dmt_config_from_args(&c, 2, bad, err, sizeof err), -1);
  assert_non_null(strstr(err, "unknown setting --nope"));
  char *positional[] = {"agent", "stray", NULL};
  assert_int_equal(dmt_config_from_args(&c, 2, positional, err, sizeof err), -1);
  dmt_config_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_precedence),
      cmocka_unit_test(test_unknown_key_in_file),
      cmocka_unit_test(test_secret_file_and_masking),
      cmocka_unit_test(test_flags),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
