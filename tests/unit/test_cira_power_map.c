/*
 * DMT's power and boot action codes (agents/cira/power_map.c): the validator
 * set, which path each code takes, what a boot option sets up (as DMT's
 * bootOptions), the state a successful action leads to, AMT's status names
 * and the OCR parameter blocks, byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cira.h"

static void test_validator_set(void **state) {
  static const int valid[] = {2,   3,   4,   5,   6,   7,   8,   10,  11,  12,  13,  14,  15,  16,  17,  100, 101,
                              104, 105, 106, 107, 108, 109, 110, 200, 201, 202, 203, 300, 301, 400, 401, 500, 501};
  int n = 0;
  for (int a = -5; a < 1000; a++) {
    bool want = false;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) want |= valid[i] == a;
    struct power_plan p;
    assert_int_equal(power_action_valid(a), want);
    assert_int_equal(power_plan_for(a, &p), want ? 0 : -1);
    n += want;
  }
  assert_int_equal(n, 34);
  struct power_plan p;
  assert_int_equal(power_plan_for(9, &p), -1); /* Power Cycle (Off-Hard) is not in DMT's set */
  assert_int_equal(power_plan_for(INT64_MAX, &p), -1);
}

static void test_cim_path(void **state) {
  static const struct {
    int action, expected;
  } cases[] = {{2, 2},  {3, 3},  {4, 4},  {5, 2},  {6, 6},  {7, 7},  {8, 8},  {10, 2},
               {11, 2}, {12, 8}, {13, 6}, {14, 2}, {15, 2}, {16, 2}, {17, 2}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct power_plan p;
    assert_int_equal(power_plan_for(cases[i].action, &p), 0);
    assert_int_equal(p.path, POWER_PATH_CIM);
    assert_int_equal(p.cim_state, cases[i].action); /* the code itself goes to RequestPowerStateChange */
    assert_int_equal(p.expected_power, cases[i].expected);
    assert_int_equal(p.wake_os_first, cases[i].action == 2);
  }
}

static void test_os_path(void **state) {
  struct power_plan p;
  assert_int_equal(power_plan_for(500, &p), 0);
  assert_int_equal(p.path, POWER_PATH_OS);
  assert_int_equal(p.os_target, 2);
  assert_int_equal(power_plan_for(501, &p), 0);
  assert_int_equal(p.os_target, 3);
}

static void test_boot_path(void **state) {
  static const struct {
    int action, power;
    bool bios, ider;
    int ider_dev;
    const char *source;
    enum ocr_kind ocr;
  } cases[] = {
      {100, 2, true, false, 0, NULL, OCR_NONE},
      {101, 10, true, false, 0, NULL, OCR_NONE},
      {104, 2, false, false, 0, NULL, OCR_NONE},
      {105, 10, false, false, 0, "Intel(r) AMT: Force OCR UEFI HTTPS Boot", OCR_HTTPS},
      {106, 2, false, false, 0, "Intel(r) AMT: Force OCR UEFI HTTPS Boot", OCR_HTTPS},
      {107, 10, false, false, 0, NULL, OCR_PBA},
      {108, 2, false, false, 0, NULL, OCR_PBA},
      {109, 10, false, false, 0, NULL, OCR_WINRE},
      {110, 2, false, false, 0, NULL, OCR_WINRE},
      {200, 10, false, true, 0, NULL, OCR_NONE},
      {201, 2, false, true, 0, NULL, OCR_NONE},
      {202, 10, false, true, 1, "Intel(r) AMT: Force CD/DVD Boot", OCR_NONE},
      {203, 2, false, true, 1, "Intel(r) AMT: Force CD/DVD Boot", OCR_NONE},
      {300, 2, false, false, 0, NULL, OCR_NONE},
      {301, 10, false, false, 0, NULL, OCR_NONE},
      {400, 10, false, false, 0, "Intel(r) AMT: Force PXE Boot", OCR_NONE},
      {401, 2, false, false, 0, "Intel(r) AMT: Force PXE Boot", OCR_NONE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct power_plan p;
    assert_int_equal(power_plan_for(cases[i].action, &p), 0);
    assert_int_equal(p.path, POWER_PATH_BOOT);
    assert_int_equal(p.cim_state, cases[i].power);
    assert_int_equal(p.bios_setup, cases[i].bios);
    assert_int_equal(p.use_ider, cases[i].ider);
    assert_int_equal(p.ider_boot_device, cases[i].ider_dev);
    if (cases[i].source) assert_string_equal(p.boot_source, cases[i].source);
    else assert_null(p.boot_source);
    assert_int_equal(p.ocr, cases[i].ocr);
    assert_int_equal(p.expected_power, 2);
  }
}

static void test_status_names(void **state) {
  assert_string_equal(amt_status_name(0), "SUCCESS");
  assert_string_equal(amt_status_name(2), "NOT_READY");
  assert_string_equal(amt_status_name(0x12), "BLOCK_LOCKED_BY_OTHER");
  assert_string_equal(amt_status_name(0x24), "INVALID_PARAMETER");
  assert_string_equal(amt_status_name(0x81b), "AUDIT_FAIL");
  assert_string_equal(amt_status_name(0x100a), "URL_REQUIRED");
  assert_string_equal(amt_status_name(-1), "UNKNOWN_ERROR");
  assert_string_equal(amt_status_name(0x817), "UNKNOWN_ERROR");
  assert_string_equal(os_power_status_name(0), "COMPLETED_WITH_NO_ERROR");
  assert_string_equal(os_power_status_name(4099), "BUSY");
  assert_string_equal(os_power_status_name(7), "UNKNOWN_ERROR");
}

static void test_ocr_https(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  const char *why = NULL;
  int count = 0;
  assert_int_equal(ocr_https_params("https://b.example/boot.efi", "u", "pw", &b, &count, &why), 0);
  assert_int_equal(count, 4);
  static const uint8_t want[] = {
      0x86, 0x80, 0x01, 0x00, 26, 0, 0, 0, 'h', 't', 't', 'p', 's', ':', '/', '/', 'b', '.', 'e', 'x', 'a', 'm',
      'p', 'l', 'e', '/', 'b', 'o', 'o', 't', '.', 'e', 'f', 'i',                 /* network device path */
      0x86, 0x80, 20, 0, 1, 0, 0, 0, 1,                                           /* sync root CA: true */
      0x86, 0x80, 40, 0, 1, 0, 0, 0, 'u',                                         /* user name */
      0x86, 0x80, 41, 0, 2, 0, 0, 0, 'p', 'w'};                                   /* password */
  assert_int_equal(dmt_buf_size(&b), sizeof want);
  assert_memory_equal(dmt_buf_ptr(&b), want, sizeof want);
  dmt_buf_free(&b);
  dmt_buf_init(&b, 0);
  assert_int_equal(ocr_https_params("https://b.example/x", NULL, "", &b, &count, &why), 0);
  assert_int_equal(count, 2);
  assert_int_equal(ocr_https_params("ftp://b.example/x", NULL, NULL, &b, &count, &why), -1);
  assert_non_null(why);
  assert_int_equal(ocr_https_params(NULL, NULL, NULL, &b, &count, &why), -1);
  assert_int_equal(ocr_https_params("https://x", "seventeen-chars!!", NULL, &b, &count, &why), -1);
  dmt_buf_free(&b);
}

static void test_ocr_file(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  const char *why = NULL;
  int count = 0;
  assert_int_equal(ocr_file_params("\\EFI\\pba.efi", &b, &count, &why), 0);
  assert_int_equal(count, 2);
  static const uint8_t want[] = {0x86, 0x80, 2, 0, 12, 0, 0, 0, '\\', 'E', 'F', 'I', '\\', 'p', 'b', 'a', '.',
                                 'e', 'f', 'i', 0x86, 0x80, 3, 0, 2, 0, 0, 0, 12, 0};
  assert_int_equal(dmt_buf_size(&b), sizeof want);
  assert_memory_equal(dmt_buf_ptr(&b), want, sizeof want);
  char longpath[400];
  memset(longpath, 'a', sizeof longpath - 1);
  longpath[sizeof longpath - 1] = '\0';
  assert_int_equal(ocr_file_params(longpath, &b, &count, &why), -1);
  assert_int_equal(ocr_file_params("", &b, &count, &why), -1);
  dmt_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validator_set), cmocka_unit_test(test_cim_path),     cmocka_unit_test(test_os_path),
      cmocka_unit_test(test_boot_path),     cmocka_unit_test(test_status_names), cmocka_unit_test(test_ocr_https),
      cmocka_unit_test(test_ocr_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
