/*
 * Unit tests for the generated msgpack payload codecs: round trips of every
 * message and rejection (never a crash) of malformed input: truncation, wrong
 * types, oversize strings, duplicates, trailing bytes, deep nesting, length
 * bombs and invalid UTF-8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmt/payloads.h"

static void test_device_state_round_trip(void **state) {
  struct dmt_device_state in = {0}, out;
  in.guid = "4c4c4544-004b-4210-8033-b6c04f504633";
  in.tenant = "";
  in.connected = true;
  in.power_state = 2;
  in.updated_ms = 1790000000123;
  char *tags[] = {"lab1", "rack-7"};
  in.tags = tags;
  in.tags_count = 2;
  in.present = DMT_DEVICE_STATE_CONNECTED | DMT_DEVICE_STATE_POWER_STATE | DMT_DEVICE_STATE_UPDATED_MS;
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256];
  assert_int_equal(dmt_device_state_encode(&in, &sb, err, sizeof err), 0);
  assert_int_equal(dmt_device_state_decode(sb.data, sb.size, &out, err, sizeof err), 0);
  assert_string_equal(out.guid, in.guid);
  assert_string_equal(out.tenant, "");
  assert_true(out.connected);
  assert_int_equal(out.power_state, 2);
  assert_int_equal(out.updated_ms, 1790000000123);
  assert_true(out.present & DMT_DEVICE_STATE_POWER_STATE);
  assert_false(out.present & DMT_DEVICE_STATE_LAST_SEEN_MS);
  assert_null(out.instance);
  assert_int_equal(out.tags_count, 2);
  assert_string_equal(out.tags[1], "rack-7");
  dmt_device_state_free(&out);
  msgpack_sbuffer_destroy(&sb);
}

static void test_reply_with_any_result(void **state) {
  /* result = {"powerstate": 2, "OSPowerSavingState": [1, "x"]} */
  msgpack_sbuffer res;
  msgpack_sbuffer_init(&res);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &res, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str_with_body(&pk, "powerstate", 10);
  msgpack_pack_int(&pk, 2);
  msgpack_pack_str_with_body(&pk, "OSPowerSavingState", 18);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_str_with_body(&pk, "x", 1);

  struct dmt_command_reply in = {0}, out;
  in.status = "ok";
  in.code = 200;
  in.present = DMT_COMMAND_REPLY_CODE;
  in.result = (uint8_t *)res.data;
  in.result_len = res.size;
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256];
  assert_int_equal(dmt_command_reply_encode(&in, &sb, err, sizeof err), 0);
  assert_int_equal(dmt_command_reply_decode(sb.data, sb.size, &out, err, sizeof err), 0);
  assert_string_equal(out.status, "ok");
  assert_int_equal(out.code, 200);
  assert_int_equal(out.result_len, res.size);
  assert_memory_equal(out.result, res.data, res.size);
  dmt_command_reply_free(&out);
  msgpack_sbuffer_destroy(&sb);
  msgpack_sbuffer_destroy(&res);
}

static void test_event_optional_absent(void **state) {
  struct dmt_event in = {0}, out;
  in.id = "0b4f3c2a-1111-4222-8333-444455556666";
  in.ts_ms = 1;
  in.tenant = "t1";
  in.kind = "power";
  in.outcome = "success";
  in.present = DMT_EVENT_TS_MS;
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256];
  assert_int_equal(dmt_event_encode(&in, &sb, err, sizeof err), 0);
  assert_int_equal(dmt_event_decode(sb.data, sb.size, &out, err, sizeof err), 0);
  assert_string_equal(out.kind, "power");
  assert_null(out.guid);
  dmt_event_free(&out);
  msgpack_sbuffer_destroy(&sb);
}

static void test_encode_refuses_invalid(void **state) {
  struct dmt_device_state in = {0};
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256];
  in.guid = "g";
  in.tenant = "t";
  /* connected and updated_ms missing */
  assert_int_equal(dmt_device_state_encode(&in, &sb, err, sizeof err), -1);
  assert_non_null(strstr(err, "required field `connected`"));
  in.present = DMT_DEVICE_STATE_CONNECTED | DMT_DEVICE_STATE_UPDATED_MS | DMT_DEVICE_STATE_POWER_STATE;
  in.power_state = 70000; /* schema maximum is 65535 */
  assert_int_equal(dmt_device_state_encode(&in, &sb, err, sizeof err), -1);
  assert_non_null(strstr(err, "out of range"));
  in.power_state = 2;
  char longguid[64];
  memset(longguid, 'a', sizeof longguid - 1);
  longguid[63] = '\0';
  in.guid = longguid; /* maxLength 36 */
  assert_int_equal(dmt_device_state_encode(&in, &sb, err, sizeof err), -1);
  msgpack_sbuffer_destroy(&sb);
}

/* Builds a device_state-like map by hand so tests can inject faults. */
static void pack_valid_state(msgpack_packer *pk, int extra_pairs) {
  msgpack_pack_map(pk, (size_t)(4 + extra_pairs));
  msgpack_pack_str_with_body(pk, "guid", 4);
  msgpack_pack_str_with_body(pk, "abc", 3);
  msgpack_pack_str_with_body(pk, "tenant", 6);
  msgpack_pack_str_with_body(pk, "", 0);
  msgpack_pack_str_with_body(pk, "connected", 9);
  msgpack_pack_true(pk);
  msgpack_pack_str_with_body(pk, "updated_ms", 10);
  msgpack_pack_int(pk, 5);
}

static int decode_state(const void *buf, size_t len, char *err, size_t errlen) {
  struct dmt_device_state out;
  int rc = dmt_device_state_decode(buf, len, &out, err, errlen);
  if (rc == 0) dmt_device_state_free(&out);
  return rc;
}

static void test_decode_rejects(void **state) {
  char err[256];
  msgpack_sbuffer sb;
  msgpack_packer pk;

  /* a valid baseline, then every truncation of it */
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  pack_valid_state(&pk, 0);
  assert_int_equal(decode_state(sb.data, sb.size, err, sizeof err), 0);
  for (size_t cut = 0; cut < sb.size; cut++)
    assert_int_equal(decode_state(sb.data, cut, err, sizeof err), -1);
  /* trailing garbage */
  msgpack_pack_int(&pk, 1);
  assert_int_equal(decode_state(sb.data, sb.size, err, sizeof err), -1);
  assert_non_null(strstr(err, "trailing"));
  msgpack_sbuffer_destroy(&sb);

  /* unknown keys are skipped; duplicates and wrong types are not */
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  pack_valid_state(&pk, 1);
  msgpack_pack_str_with_body(&pk, "future_field", 12);
  msgpack_pack_array(&pk, 0);
  assert_int_equal(decode_state(sb.data, sb.size, err, sizeof err), 0);
  msgpack_sbuffer_destroy(&sb);

  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  pack_valid_state(&pk, 1);
  msgpack_pack_str_with_body(&pk, "guid", 4);
  msgpack_pack_str_with_body(&pk, "again", 5);
  assert_int_equal(decode_state(sb.data, sb.size, err, sizeof err), -1);
  assert_non_null(strstr(err, "duplicate key `guid`"));
  msgpack_sbuffer_destroy(&sb);

  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  pack_valid_state(&pk, 1);
  msgpack_pack_str_with_body(&pk, "power_state", 11);
  msgpack_pack_str_with_body(&pk, "on", 2);
  assert_int_equal(decode_state(sb.data, sb.size, err, sizeof err), -1);
  assert_non_null(strstr(err, "`power_state` must be an integer"));
  msgpack_sbuffer_destroy(&sb);

  /* oversized string (hostname maxLength 256) */
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  pack_valid_state(&pk, 1);
  msgpack_pack_str_with_body(&pk, "hostname", 8);
  char big[300];
  memset(big, 'h', sizeof big);
  msgpack_pack_str_with_body(&pk, big, sizeof big);
  assert_int_equal(decode_state(sb.data, sb.size, err, sizeof err), -1);
  assert_non_null(strstr(err, "longer than 256"));
  msgpack_sbuffer_destroy(&sb);

  /* invalid UTF-8 */
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  pack_valid_state(&pk, 1);
  msgpack_pack_str_with_body(&pk, "hostname", 8);
  msgpack_pack_str_with_body(&pk, "\xc3\x28", 2);
  assert_int_equal(decode_state(sb.data, sb.size, err, sizeof err), -1);
  assert_non_null(strstr(err, "UTF-8"));
  msgpack_sbuffer_destroy(&sb);

  /* tags must be an array of strings */
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  pack_valid_state(&pk, 1);
  msgpack_pack_str_with_body(&pk, "tags", 4);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_str_with_body(&pk, "ok", 2);
  msgpack_pack_int(&pk, 3);
  assert_int_equal(decode_state(sb.data, sb.size, err, sizeof err), -1);
  assert_non_null(strstr(err, "`tags` must be a string"));
  msgpack_sbuffer_destroy(&sb);

  /* missing required field */
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str_with_body(&pk, "guid", 4);
  msgpack_pack_str_with_body(&pk, "abc", 3);
  assert_int_equal(decode_state(sb.data, sb.size, err, sizeof err), -1);
  assert_non_null(strstr(err, "required field"));
  msgpack_sbuffer_destroy(&sb);

  /* not a map */
  const unsigned char arr[] = {0x91, 0x01};
  assert_int_equal(decode_state(arr, sizeof arr, err, sizeof err), -1);
  assert_non_null(strstr(err, "must be a map"));
}

static void test_decode_rejects_bombs(void **state) {
  char err[256];
  /* map32 claiming 4 billion pairs in 5 bytes */
  const unsigned char map_bomb[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
  assert_int_equal(decode_state(map_bomb, sizeof map_bomb, err, sizeof err), -1);
  /* str32 claiming 4 GiB */
  const unsigned char str_bomb[] = {0x81, 0xa4, 'g', 'u', 'i', 'd', 0xdb, 0xff, 0xff, 0xff, 0xf0, 'x'};
  assert_int_equal(decode_state(str_bomb, sizeof str_bomb, err, sizeof err), -1);
  /* 1000 nested arrays */
  unsigned char deep[1001];
  memset(deep, 0x91, 1000);
  deep[1000] = 0x01;
  assert_int_equal(dmt_msgpack_check(deep, sizeof deep, 32, err, sizeof err), -1);
  assert_non_null(strstr(err, "nesting"));
  assert_int_equal(decode_state(deep, sizeof deep, err, sizeof err), -1);
  /* reserved type byte */
  const unsigned char reserved[] = {0xc1};
  assert_int_equal(dmt_msgpack_check(reserved, 1, 32, err, sizeof err), -1);
  /* empty */
  assert_int_equal(decode_state("", 0, err, sizeof err), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_device_state_round_trip),
      cmocka_unit_test(test_reply_with_any_result),
      cmocka_unit_test(test_event_optional_absent),
      cmocka_unit_test(test_encode_refuses_invalid),
      cmocka_unit_test(test_decode_rejects),
      cmocka_unit_test(test_decode_rejects_bombs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
