/*
 * dmtctl's pure parts: flag parsing, output formats (tables, YAML quoting),
 * times and durations, the exit-code rules, event normalisation and the
 * de-duplication that joins the persisted history to the live stream,
 * the progress bar text, URL helpers, and the completion scripts' shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "dmtctl.h"

/* ---- helpers ---- */

static char *capture_buf;
static size_t capture_len;

static FILE *capture(void) { return open_memstream(&capture_buf, &capture_len); }

static char *captured(FILE *f) {
  fclose(f);
  return capture_buf; /* caller frees */
}

static int dummy_run(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) { return 0; }

static const struct ctl_flag test_globals[] = {
    {"broker", 0, "URL", "broker", NULL},
    {"output", 'o', "FORMAT", "format", "table|json"},
    {"verbose", 'v', NULL, "verbose", NULL},
    {NULL, 0, NULL, NULL, NULL},
};
static const struct ctl_flag tag_flags[] = {{"tag", 0, "TAG", "tag", NULL}, {"yes", 'y', NULL, "yes", NULL}, {NULL, 0, NULL, NULL, NULL}};
static const struct ctl_cmd cmd_list = {"devices list", "", "list", "", tag_flags, 0, 0, dummy_run, 0, NULL};
static const struct ctl_cmd cmd_off = {"power off", "<guid>...", "off", "", tag_flags, 0, -1, dummy_run, 8, "guid"};
static const struct ctl_cmd cmd_info = {"info", "<guid>", "info", "", NULL, 1, 1, dummy_run, 0, "guid"};
static const struct ctl_cmd *const test_cmds[] = {&cmd_list, &cmd_off, &cmd_info};

static int parse(struct ctl_args *a, const struct ctl_cmd **cmd, const char **group, char *err, ...) {
  char *argv[32];
  int argc = 0;
  va_list ap;
  va_start(ap, err);
  for (char *s; (s = va_arg(ap, char *)) && argc < 32;) argv[argc++] = s;
  va_end(ap);
  return ctl_parse(argc, argv, test_globals, test_cmds, 3, cmd, group, a, err, 256);
}

/* ---- args ---- */

static void test_args_commands_and_flags_anywhere(void **state) {
  struct ctl_args *a = calloc(1, sizeof *a);
  const struct ctl_cmd *cmd;
  const char *group;
  char err[256];
  assert_int_equal(parse(a, &cmd, &group, err, "-o", "json", "power", "off", "--tag=lab1", "g1", "--broker", "tcp://x",
                         "g2", "-ojson", "-v", NULL), 0);
  assert_ptr_equal(cmd, &cmd_off);
  assert_int_equal(a->npos, 2);
  assert_string_equal(a->pos[0], "g1");
  assert_string_equal(a->pos[1], "g2");
  assert_string_equal(ctl_arg(a, "broker"), "tcp://x");
  assert_string_equal(ctl_arg(a, "output"), "json");
  assert_string_equal(ctl_arg(a, "tag"), "lab1");
  assert_true(ctl_has(a, "verbose"));
  assert_false(ctl_has(a, "yes"));
  /* -- ends flags; -h anywhere asks for help */
  assert_int_equal(parse(a, &cmd, &group, err, "info", "--", "--not-a-flag", NULL), 0);
  assert_ptr_equal(cmd, &cmd_info);
  assert_string_equal(a->pos[0], "--not-a-flag");
  assert_int_equal(parse(a, &cmd, &group, err, "power", "off", "-h", NULL), 0);
  assert_true(a->help);
  /* a group word alone */
  assert_int_equal(parse(a, &cmd, &group, err, "devices", NULL), 0);
  assert_null(cmd);
  assert_string_equal(group, "devices");
  free(a);
}

static void test_args_errors(void **state) {
  struct ctl_args *a = calloc(1, sizeof *a);
  const struct ctl_cmd *cmd;
  const char *group;
  char err[256];
  assert_int_equal(parse(a, &cmd, &group, err, "nope", NULL), -1);
  assert_non_null(strstr(err, "unknown command `nope`"));
  assert_int_equal(parse(a, &cmd, &group, err, "devices", "delete", NULL), -1);
  assert_non_null(strstr(err, "devices delete"));
  /* command flags only after the command words */
  assert_int_equal(parse(a, &cmd, &group, err, "--tag", "x", "power", "off", NULL), -1);
  assert_non_null(strstr(err, "unknown flag --tag"));
  assert_int_equal(parse(a, &cmd, &group, err, "info", "--tag", "x", NULL), -1);
  assert_non_null(strstr(err, "for `dmtctl info`"));
  assert_int_equal(parse(a, &cmd, &group, err, "info", "--broker", NULL), -1);
  assert_non_null(strstr(err, "needs a value"));
  assert_int_equal(parse(a, &cmd, &group, err, "power", "off", "--yes=1", NULL), -1);
  assert_non_null(strstr(err, "takes no value"));
  free(a);
}

/* ---- output ---- */

static void test_yaml_quoting(void **state) {
  char b[256];
  assert_string_equal(ctl_yaml_scalar("lab1", b, sizeof b), "lab1");
  assert_string_equal(ctl_yaml_scalar("4c4c4544-004b-4210-8033-b6c04f504633", b, sizeof b),
                      "4c4c4544-004b-4210-8033-b6c04f504633");
  assert_string_equal(ctl_yaml_scalar("16.1.27", b, sizeof b), "16.1.27");
  assert_string_equal(ctl_yaml_scalar("16.1", b, sizeof b), "\"16.1\"");
  assert_string_equal(ctl_yaml_scalar("1_000", b, sizeof b), "\"1_000\"");
  assert_string_equal(ctl_yaml_scalar("1e5", b, sizeof b), "\"1e5\"");
  assert_string_equal(ctl_yaml_scalar("190:20:30", b, sizeof b), "\"190:20:30\"");
  assert_string_equal(ctl_yaml_scalar("00005A5A", b, sizeof b), "00005A5A");
  assert_string_equal(ctl_yaml_scalar("true", b, sizeof b), "\"true\"");
  assert_string_equal(ctl_yaml_scalar("No", b, sizeof b), "\"No\"");
  assert_string_equal(ctl_yaml_scalar("", b, sizeof b), "\"\"");
  assert_string_equal(ctl_yaml_scalar("0x1F", b, sizeof b), "\"0x1F\"");
  assert_string_equal(ctl_yaml_scalar("a: b", b, sizeof b), "\"a: b\"");
  assert_string_equal(ctl_yaml_scalar("- x", b, sizeof b), "\"- x\"");
  assert_string_equal(ctl_yaml_scalar("x #y", b, sizeof b), "\"x #y\"");
  assert_string_equal(ctl_yaml_scalar("two\nlines \"q\"", b, sizeof b), "\"two\\nlines \\\"q\\\"\"");
  assert_string_equal(ctl_yaml_scalar("Digest:00005A5A", b, sizeof b), "Digest:00005A5A");
  assert_string_equal(ctl_yaml_scalar("2025-01-31T12:00:00Z", b, sizeof b), "\"2025-01-31T12:00:00Z\"");
}

static void test_yaml_document(void **state) {
  json_t *v = json_loads("{\"guid\":\"g\",\"connected\":true,\"power_state\":8,\"tags\":[\"a\",\"yes\"],"
                         "\"empty\":[],\"nested\":{\"x\":null,\"list\":[{\"k\":1,\"m\":2},[3]]},\"none\":{}}",
                         0, NULL);
  FILE *f = capture();
  ctl_print_yaml(f, v);
  char *s = captured(f);
  assert_string_equal(s, "guid: g\n"
                         "connected: true\n"
                         "power_state: 8\n"
                         "tags:\n"
                         "  - a\n"
                         "  - \"yes\"\n"
                         "empty: []\n"
                         "nested:\n"
                         "  x: null\n"
                         "  list:\n"
                         "    - k: 1\n"
                         "      m: 2\n"
                         "    - - 3\n"
                         "none: {}\n");
  free(s);
  json_decref(v);
}

static void test_table(void **state) {
  static const char *const h[] = {"GUID", "STATUS", "TAGS"};
  struct ctl_table t;
  ctl_table_init(&t, h, 3);
  const char *r1[] = {"aaaa", "connected", "x,y"};
  const char *r2[] = {"b", NULL, ""};
  ctl_table_row(&t, r1);
  ctl_table_row(&t, r2);
  FILE *f = capture();
  ctl_table_print(f, &t);
  char *s = captured(f);
  assert_string_equal(s, "GUID  STATUS     TAGS\n"
                         "aaaa  connected  x,y\n"
                         "b     -          -\n");
  free(s);
  ctl_table_free(&t);
}

static void test_json_text(void **state) {
  char b[64];
  json_t *v = json_loads("[\"a\",2,true,null]", 0, NULL);
  assert_string_equal(ctl_json_text(v, b, sizeof b), "a,2,true,");
  assert_string_equal(ctl_json_text(json_array_get(v, 1), b, sizeof b), "2");
  assert_string_equal(ctl_json_text(NULL, b, sizeof b), "");
  json_decref(v);
  enum ctl_format fmt;
  assert_int_equal(ctl_parse_format("yaml", &fmt), 0);
  assert_int_equal(fmt, CTL_FMT_YAML);
  assert_int_equal(ctl_parse_format("xml", &fmt), -1);
}

/* ---- times ---- */

static void test_times(void **state) {
  char b[40];
  assert_string_equal(ctl_time_fmt(1738324800123ull, b, sizeof b), "2025-01-31T12:00:00.123Z");
  uint64_t ms;
  assert_int_equal(ctl_parse_duration_ms("30s", &ms), 0);
  assert_int_equal(ms, 30000);
  assert_int_equal(ctl_parse_duration_ms("500ms", &ms), 0);
  assert_int_equal(ms, 500);
  assert_int_equal(ctl_parse_duration_ms("2m", &ms), 0);
  assert_int_equal(ms, 120000);
  assert_int_equal(ctl_parse_duration_ms("1.5h", &ms), 0);
  assert_int_equal(ms, 5400000);
  assert_int_equal(ctl_parse_duration_ms("10", &ms), 0);
  assert_int_equal(ms, 10000);
  assert_int_equal(ctl_parse_duration_ms("10 s", &ms), -1);
  assert_int_equal(ctl_parse_duration_ms("-1s", &ms), -1);
  assert_int_equal(ctl_parse_duration_ms("1w", &ms), -1);
  uint64_t now = 1738324800000ull;
  assert_int_equal(ctl_parse_time("10m", now, &ms), 0);
  assert_int_equal(ms, now - 600000);
  assert_int_equal(ctl_parse_time("2025-01-31T12:00:00Z", now, &ms), 0);
  assert_int_equal(ms, 1738324800000ull);
  assert_int_equal(ctl_parse_time("2025-01-31T12:00:00.250Z", now, &ms), 0);
  assert_int_equal(ms, 1738324800250ull);
  assert_int_equal(ctl_parse_time("2025-01-31T13:00:00+01:00", now, &ms), 0);
  assert_int_equal(ms, 1738324800000ull);
  assert_int_equal(ctl_parse_time("2025-01-31 12:00", now, &ms), 0);
  assert_int_equal(ms, 1738324800000ull);
  assert_int_equal(ctl_parse_time("2025-01-31", now, &ms), 0);
  assert_int_equal(ms, 1738281600000ull);
  assert_int_equal(ctl_parse_time("1738324800123", now, &ms), 0);
  assert_int_equal(ms, 1738324800123ull);
  assert_int_equal(ctl_parse_time("30", now, &ms), -1); /* ambiguous: seconds ago? epoch? */
  assert_int_equal(ctl_parse_time("2025-13-01", now, &ms), -1);
  assert_int_equal(ctl_parse_time("yesterday", now, &ms), -1);
}

/* ---- rules ---- */

static void test_exit_rules(void **state) {
  assert_int_equal(ctl_exit_from_error("offline"), CTL_OFFLINE);
  assert_int_equal(ctl_exit_from_error("unknown_device"), CTL_NOT_FOUND);
  assert_int_equal(ctl_exit_from_error("timeout"), CTL_TIMEOUT);
  assert_int_equal(ctl_exit_from_error("expired"), CTL_TIMEOUT);
  assert_int_equal(ctl_exit_from_error("device_error"), CTL_FAILED);
  assert_int_equal(ctl_exit_from_error("busy"), CTL_FAILED);
  assert_int_equal(ctl_exit_from_error("something_new"), CTL_FAILED);
  enum ctl_exit all_ok[] = {CTL_OK, CTL_OK}, all_off[] = {CTL_OFFLINE, CTL_OFFLINE},
                mixed[] = {CTL_OK, CTL_OFFLINE}, two_fail[] = {CTL_TIMEOUT, CTL_OFFLINE};
  assert_int_equal(ctl_exit_merge(all_ok, 2), CTL_OK);
  assert_int_equal(ctl_exit_merge(all_off, 2), CTL_OFFLINE);
  assert_int_equal(ctl_exit_merge(mixed, 2), CTL_PARTIAL);
  assert_int_equal(ctl_exit_merge(two_fail, 2), CTL_PARTIAL);
  assert_int_equal(ctl_exit_merge(NULL, 0), CTL_OK);
  /* distinct codes, documented numbers */
  assert_int_equal(CTL_AUTH, 3);
  assert_int_equal(CTL_NOT_FOUND, 4);
  assert_int_equal(CTL_OFFLINE, 5);
  assert_int_equal(CTL_TIMEOUT, 6);
}

static void test_guid_and_tenant(void **state) {
  char g[37];
  assert_true(ctl_guid_norm("4C4C4544-004B-4210-8033-B6C04F504633", g));
  assert_string_equal(g, "4c4c4544-004b-4210-8033-b6c04f504633");
  assert_false(ctl_guid_norm("4c4c4544004b42108033b6c04f504633", g));
  assert_false(ctl_guid_norm("4c4c4544-004b-4210-8033-b6c04f50463z", g));
  assert_false(ctl_guid_norm("+", g));
  assert_true(ctl_tenant_valid("0a1b2c3d-project_1"));
  assert_false(ctl_tenant_valid("a/b"));
  assert_false(ctl_tenant_valid("#"));
  assert_false(ctl_tenant_valid(""));
  assert_string_equal(ctl_power_name(8), "off-soft");
  assert_string_equal(ctl_os_power_name(3), "power-saving");
}

static void test_item_return_value(void **state) {
  struct ctl_item it = {.status = CTL_OK};
  it.result = json_loads("{\"Body\":{\"ReturnValue\":2,\"ReturnValueStr\":\"NOT_READY\"}}", 0, NULL);
  ctl_item_check_return(&it, "Body");
  assert_int_equal(it.status, CTL_FAILED);
  assert_string_equal(it.message, "NOT_READY (ReturnValue 2)");
  struct ctl_item ok = {.status = CTL_OK};
  ok.result = json_loads("{\"Body\":{\"ReturnValue\":0,\"ReturnValueStr\":\"SUCCESS\"}}", 0, NULL);
  ctl_item_check_return(&ok, "Body");
  assert_int_equal(ok.status, CTL_OK);
  free(it.error);
  free(it.message);
  json_decref(it.result);
  json_decref(ok.result);
}

static void test_report(void **state) {
  struct ctl c = {.fmt = CTL_FMT_TABLE, .err = stderr};
  struct ctl_item items[3] = {{.guid = "g1", .verb = "power_action", .status = CTL_OK},
                              {.guid = "g2", .verb = "power_action", .status = CTL_OFFLINE},
                              {.guid = "g3", .verb = "power_action", .status = CTL_OK}};
  items[0].result = json_loads("{\"Body\":{\"ReturnValue\":0,\"ReturnValueStr\":\"SUCCESS\"}}", 0, NULL);
  items[1].message = strdup("the device is not connected");
  FILE *f = capture();
  c.out = f;
  assert_int_equal(ctl_report(&c, "power off", items, 3, NULL, 0), CTL_PARTIAL);
  char *s = captured(f);
  assert_string_equal(s, "GUID  RESULT   DETAIL\n"
                         "g1    ok       SUCCESS\n"
                         "g2    offline  the device is not connected\n"
                         "g3    ok       -\n"
                         "\npower off: 3 devices: 2 ok, 1 offline\n");
  free(s);
  c.fmt = CTL_FMT_JSON;
  f = capture();
  c.out = f;
  ctl_report(&c, "power off", items, 3, NULL, 0);
  s = captured(f);
  json_t *doc = json_loads(s, 0, NULL);
  assert_int_equal(json_integer_value(json_object_get(doc, "total")), 3);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "counts"), "ok")), 2);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "counts"), "offline")), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(doc, "results"), 1), "result")),
                      "offline");
  json_decref(doc);
  free(s);
  json_decref(items[0].result);
  free(items[1].message);
}

/* ---- events ---- */

static void test_event_normalize(void **state) {
  /* our schema's names */
  json_t *a = json_loads("{\"id\":\"e1\",\"ts_ms\":1738324800123,\"tenant\":\"t\",\"guid\":\"g\",\"kind\":\"power\","
                         "\"outcome\":\"success\",\"message\":\"m\",\"data\":{\"from\":2,\"to\":8}}", 0, NULL);
  json_t *n = ctl_event_normalize(a);
  assert_string_equal(json_string_value(json_object_get(n, "time")), "2025-01-31T12:00:00.123Z");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(n, "data"), "to")), 8);
  json_decref(n);
  json_decref(a);
  /* DMT-style camelCase with an ISO timestamp, as a bridge may answer */
  a = json_loads("{\"eventId\":\"e2\",\"timestamp\":\"2025-01-31T12:00:00.5Z\",\"tenantId\":\"t\","
                 "\"deviceId\":\"g\",\"kind\":\"command\",\"outcome\":\"failure\",\"data\":null}", 0, NULL);
  n = ctl_event_normalize(a);
  assert_string_equal(json_string_value(json_object_get(n, "id")), "e2");
  assert_int_equal(json_integer_value(json_object_get(n, "ts_ms")), 1738324800500);
  assert_string_equal(json_string_value(json_object_get(n, "tenant")), "t");
  assert_string_equal(json_string_value(json_object_get(n, "guid")), "g");
  assert_null(json_object_get(n, "data"));
  char line[512];
  ctl_event_line(n, false, line, sizeof line);
  assert_string_equal(line, "2025-01-31T12:00:00.500Z  command       g                                     failure  -");
  json_decref(n);
  json_decref(a);
  /* epoch seconds as a number; missing id or kind is rejected */
  a = json_loads("{\"id\":\"e3\",\"ts\":1738324800,\"kind\":\"config\",\"outcome\":\"success\",\"message\":\"a\\nb\"}", 0, NULL);
  n = ctl_event_normalize(a);
  assert_int_equal(json_integer_value(json_object_get(n, "ts_ms")), 1738324800000);
  ctl_event_line(n, true, line, sizeof line);
  assert_non_null(strstr(line, "a b  action=- requester=- source=- id=e3")); /* newline flattened */
  json_decref(n);
  json_decref(a);
  a = json_loads("{\"ts_ms\":1,\"kind\":\"power\"}", 0, NULL);
  assert_null(ctl_event_normalize(a));
  json_decref(a);
}

static void test_event_dedup_across_boundary(void **state) {
  struct ctl_evdedup d;
  ctl_evdedup_init(&d, 1000);
  /* history: two old events (below the horizon, not remembered) and two recent ones */
  assert_true(ctl_evdedup_admit(&d, "old1", 10));
  assert_true(ctl_evdedup_admit(&d, "old2", 999));
  assert_true(ctl_evdedup_admit(&d, "h1", 1000));
  assert_true(ctl_evdedup_admit(&d, "h2", 2000));
  assert_int_equal(d.ids.len, 2);
  /* the live stream repeats h2 and brings l1; the tail re-read repeats h1 and l1 */
  assert_false(ctl_evdedup_admit(&d, "h2", 2000));
  assert_true(ctl_evdedup_admit(&d, "l1", 3000));
  assert_false(ctl_evdedup_admit(&d, "h1", 1000));
  assert_false(ctl_evdedup_admit(&d, "l1", 3000));
  assert_true(ctl_evdedup_admit(&d, NULL, 5000)); /* no id: cannot be de-duplicated, always shown */
  ctl_evdedup_free(&d);
  /* memory stays bounded: ids far older than the newest are forgotten */
  ctl_evdedup_init(&d, 0);
  char id[32];
  for (unsigned i = 0; i < 3 * 4096; i++) {
    snprintf(id, sizeof id, "e%u", i);
    assert_true(ctl_evdedup_admit(&d, id, 1000000000ull + (uint64_t)i * 1000u));
  }
  assert_true(d.ids.len < 3 * 4096);
  ctl_evdedup_free(&d);
}

static void test_event_from_msgpack(void **state) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 5);
  const char *kv[] = {"id", "e9", "tenant", "t", "kind", "connected", "outcome", "success"};
  for (int i = 0; i < 8; i++) msgpack_pack_str_with_body(&pk, kv[i], strlen(kv[i]));
  msgpack_pack_str_with_body(&pk, "ts_ms", 5);
  msgpack_pack_uint64(&pk, 1738324800000ull);
  json_t *ev = ctl_event_from_msgpack(sb.data, sb.size);
  assert_non_null(ev);
  assert_string_equal(json_string_value(json_object_get(ev, "kind")), "connected");
  json_decref(ev);
  assert_null(ctl_event_from_msgpack(sb.data, sb.size - 1)); /* truncated */
  msgpack_sbuffer_destroy(&sb);
}

/* ---- progress, URLs, completion ---- */

static void test_progress_text(void **state) {
  char b[128];
  ctl_progress_render(b, sizeof b, 250, 500, 245, 5, 10);
  assert_string_equal(b, "[#####.....] 250/500  ok 245  failed 5");
  ctl_progress_render(b, sizeof b, 500, 500, 500, 0, 10);
  assert_string_equal(b, "[##########] 500/500  ok 500  failed 0");
}

static void test_urls(void **state) {
  char u[256] = "/api/v1/events";
  ctl_url_param(u, sizeof u, "since", "2025-01-31T12:00:00.000Z");
  ctl_url_param(u, sizeof u, "$top", "500");
  assert_string_equal(u, "/api/v1/events?since=2025-01-31T12%3A00%3A00.000Z&$top=500");
  static const struct dmt_config_key keys[] = {
      {"bridge", NULL, NULL, "http://127.0.0.1:3000", "", 0},
      {"rps_bridge", NULL, NULL, NULL, "", 0},
  };
  struct ctl c = {0};
  dmt_config_init(&c.cfg, keys, 2);
  char b[256];
  assert_string_equal(ctl_rps_url(&c, b, sizeof b), "http://127.0.0.1:8081");
  dmt_config_set(&c.cfg, "bridge", "https://orch.example.com/mps");
  assert_string_equal(ctl_rps_url(&c, b, sizeof b), "https://orch.example.com/mps");
  dmt_config_set(&c.cfg, "rps_bridge", "https://orch.example.com/rps");
  assert_string_equal(ctl_rps_url(&c, b, sizeof b), "https://orch.example.com/rps");
  dmt_config_free(&c.cfg);
}

static void test_completion_scripts(void **state) {
  FILE *f = capture();
  assert_int_equal(ctl_completion_print(f, "bash", test_globals, test_cmds, 3), 0);
  char *s = captured(f);
  assert_non_null(strstr(s, "complete -F _dmtctl dmtctl"));
  assert_non_null(strstr(s, "[\"devices\"]=\"list\""));
  assert_non_null(strstr(s, "[\"power\"]=\"off\""));
  assert_non_null(strstr(s, "[\"power off\"]=\"--tag --yes -y\""));
  assert_non_null(strstr(s, "[\"--output\"]=\"table json\""));
  assert_non_null(strstr(s, "local top=\"devices power info\""));
  free(s);
  f = capture();
  assert_int_equal(ctl_completion_print(f, "zsh", test_globals, test_cmds, 3), 0);
  s = captured(f);
  assert_non_null(strstr(s, "#compdef dmtctl"));
  assert_non_null(strstr(s, "'power off' '__guids'"));
  free(s);
  f = capture();
  assert_int_equal(ctl_completion_print(f, "fish", test_globals, test_cmds, 3), -1);
  free(captured(f));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_args_commands_and_flags_anywhere),
      cmocka_unit_test(test_args_errors),
      cmocka_unit_test(test_yaml_quoting),
      cmocka_unit_test(test_yaml_document),
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_json_text),
      cmocka_unit_test(test_times),
      cmocka_unit_test(test_exit_rules),
      cmocka_unit_test(test_guid_and_tenant),
      cmocka_unit_test(test_item_return_value),
      cmocka_unit_test(test_report),
      cmocka_unit_test(test_event_normalize),
      cmocka_unit_test(test_event_dedup_across_boundary),
      cmocka_unit_test(test_event_from_msgpack),
      cmocka_unit_test(test_progress_text),
      cmocka_unit_test(test_urls),
      cmocka_unit_test(test_completion_scripts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
