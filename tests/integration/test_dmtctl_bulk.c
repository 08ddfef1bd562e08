/*
 * Bulk power over 500 simulated devices with a correct summary. All 500
 * carry tag `bulk`; before the run 10 of them are already off (the firmware
 * answers NOT_READY) and 5 are offline (their CIRA password was changed, so
 * they cannot log back in). `dmtctl power off --tag bulk` must then report
 * exactly 485 ok, 10 failed, 5 offline (exit 2), send nothing to the offline
 * five (the terminator audits exactly 495 commands), show its progress, and
 * leave every reachable device really powered off in the simulator; a
 * `power on --tag bulk` brings them back with a table summary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmtctl_stack.h"

#define N 500
#define PRE_OFF 10
#define OFFLINE 5

static struct stack S;
static struct ctl_env E;

static int setup(void **state) {
  if (stack_start(&S, "bulk", N, "7d7d0000-0000-4000-8000-", "UPDATE dmt.devices SET tags = ARRAY['sim','bulk']") != 0)
    return -1;
  ctl_env_init(&E, dmt_test_mqtt_url(), S.tenant);
  return stack_wait_connected(&S, 180000) ? 0 : -1;
}

static int teardown(void **state) {
  stack_stop(&S);
  return 0;
}

static bool offline_ones_down(void *arg) {
  for (size_t i = PRE_OFF; i < PRE_OFF + OFFLINE; i++)
    if (dmt_test_mqtt_state_of(S.mq, S.devs[i].guid, NULL) != 0) return false;
  return true;
}

static void test_bulk_power_off_500(void **state) {
  /* 10 devices already off */
  const char *args[PRE_OFF + 3] = {"power", "off"};
  for (size_t i = 0; i < PRE_OFF; i++) args[2 + i] = S.devs[i].guid;
  struct run r;
  run_prog(&r, &E, 60000, dmtctl_bin(), args);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "power off: 10 devices: 10 ok\n"));
  run_free(&r);
  /* 5 devices offline for good */
  for (size_t i = PRE_OFF; i < PRE_OFF + OFFLINE; i++) {
    assert_non_null(stack_sim(&S, "fault %s wrongpass", S.devs[i].guid));
    assert_non_null(stack_sim(&S, "fault %s drop", S.devs[i].guid));
  }
  assert_true(dmt_test_wait_until(offline_ones_down, NULL, 30000));
  long before = stack_sql(&S, "SELECT count(*) FROM dmt.events WHERE kind = 'command' AND action = 'power_action'");
  assert_int_equal(before, PRE_OFF);

  uint64_t t0 = dmt_test_now_ms();
  run_ctl(&r, &E, 180000, "power", "off", "--tag", "bulk", "-o", "json", "--progress", "--parallel", "64", NULL);
  uint64_t took = dmt_test_now_ms() - t0;
  fprintf(stderr, "power off --tag bulk over %d devices: %.1f s\n", N, (double)took / 1000.0);
  assert_int_equal(r.status, 2); /* partial */
  json_t *doc = json_loads(r.out, 0, NULL);
  assert_non_null(doc);
  assert_int_equal(json_integer_value(json_object_get(doc, "total")), N);
  json_t *counts = json_object_get(doc, "counts");
  assert_int_equal(json_integer_value(json_object_get(counts, "ok")), N - PRE_OFF - OFFLINE);
  assert_int_equal(json_integer_value(json_object_get(counts, "failed")), PRE_OFF);
  assert_int_equal(json_integer_value(json_object_get(counts, "offline")), OFFLINE);
  assert_int_equal(json_object_size(counts), 3);
  json_t *results = json_object_get(doc, "results");
  assert_int_equal(json_array_size(results), N);
  for (size_t i = 0; i < N; i++) {
    json_t *x = json_array_get(results, i);
    assert_string_equal(json_string_value(json_object_get(x, "guid")), S.devs[i].guid); /* sorted like the fleet */
    const char *res = json_string_value(json_object_get(x, "result"));
    const char *detail = json_string_value(json_object_get(x, "detail"));
    if (i < PRE_OFF) {
      assert_string_equal(res, "failed");
      assert_string_equal(detail, "NOT_READY (ReturnValue 2)");
    } else if (i < PRE_OFF + OFFLINE) {
      assert_string_equal(res, "offline");
    } else {
      assert_string_equal(res, "ok");
      assert_string_equal(detail, "SUCCESS");
    }
  }
  json_decref(doc);
  /* the progress bar ran to the end on stderr */
  assert_non_null(strstr(r.err, "500/500  ok 485  failed 15"));
  run_free(&r);

  /* nothing was sent to the offline five: the terminator audited exactly 495 commands */
  long after = -1;
  for (int i = 0; i < 200 && after < before + N - OFFLINE; i++, usleep(50000))
    after = stack_sql(&S, "SELECT count(*) FROM dmt.events WHERE kind = 'command' AND action = 'power_action'");
  usleep(500000);
  after = stack_sql(&S, "SELECT count(*) FROM dmt.events WHERE kind = 'command' AND action = 'power_action'");
  assert_int_equal(after, before + N - OFFLINE);
  /* and the simulated devices really are off (the offline ones untouched) */
  for (size_t i = 0; i < N; i++)
    assert_int_equal(stack_sim_power(&S, S.devs[i].guid), (i >= PRE_OFF && i < PRE_OFF + OFFLINE) ? 2 : 8);

  /* back on, table output */
  run_ctl(&r, &E, 180000, "power", "on", "--tag", "bulk", "--no-progress", NULL);
  assert_int_equal(r.status, 2);
  assert_non_null(strstr(r.out, "\npower on: 500 devices: 495 ok, 5 offline\n"));
  assert_int_equal(count_matching(r.out, "  ok       SUCCESS"), N - OFFLINE);
  assert_int_equal(count_matching(r.out, "  offline  "), OFFLINE);
  assert_string_equal(r.err, "");
  run_free(&r);
  for (size_t i = 0; i < N; i++) assert_int_equal(stack_sim_power(&S, S.devs[i].guid), 2);
}

int main(void) {
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_bulk_power_off_500)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
