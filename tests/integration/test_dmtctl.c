/*
 * Every dmtctl command against the running stack: real Mosquitto, real
 * PostgreSQL, the CIRA terminator and the fleet simulator (12 devices), with
 * dmtctl run as a process. Each test checks what is printed and the exit
 * code: help for every command, configuration precedence, completion,
 * devices list/get in every format, power actions and state (and that the
 * simulated device really changed), offline / not found / timeout /
 * partial outcomes, info, events (live, filtered by device and kind, JSON
 * lines, persisted), auth failure against a broker that checks passwords,
 * an unreachable broker and bridge, and deactivation.
 * (profiles|ciraconfigs|domains and events --since against a real bridge:
 * test_dmtctl_bridge.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/mqtt.h"
#include "dmt/payloads.h"
#include "dmt/workq.h"
#include "dmtctl_stack.h"

#define N 12
#define T 30000

static struct stack S;
static struct ctl_env E;

static const char *guid(size_t i) { return S.devs[i].guid; }

static int setup(void **state) {
  /* devices 0-3 carry tag rack-a instead of lab1 */
  if (stack_start(&S, "dmtctl", N, "7c7c0000-0000-4000-8000-",
                  "UPDATE dmt.devices SET tags = ARRAY['sim','rack-a'] WHERE guid::text < "
                  "'7c7c0000-0000-4000-8000-000000000004'") != 0)
    return -1;
  ctl_env_init(&E, dmt_test_mqtt_url(), S.tenant);
  return stack_wait_connected(&S, 60000) ? 0 : -1;
}

static int teardown(void **state) {
  stack_stop(&S);
  return 0;
}

#define RUN(r, ...) run_ctl((r), &E, T, __VA_ARGS__, NULL)

static void expect(struct run *r, int code, const char *in_out, const char *in_err) {
  if (r->status != code || (in_out && !strstr(r->out, in_out)) || (in_err && !strstr(r->err, in_err)))
    fprintf(stderr, "exit %d (want %d)\n--- stdout\n%s--- stderr\n%s---\n", r->status, code, r->out, r->err);
  assert_int_equal(r->status, code);
  if (in_out) assert_non_null(strstr(r->out, in_out));
  if (in_err) assert_non_null(strstr(r->err, in_err));
}

/* ---- help, configuration, completion ---- */

static void test_help_for_every_command(void **state) {
  struct run r;
  RUN(&r, "--help");
  expect(&r, 0, "Usage: dmtctl <command>", NULL);
  assert_non_null(strstr(r.out, "Exit codes:"));
  /* every command listed in the top-level help has its own help */
  const char *p = strstr(r.out, "Commands:\n");
  assert_non_null(p);
  p += 10;
  size_t seen = 0;
  while (*p == ' ') {
    char name[64] = "";
    const char *e = strstr(p + 2, "  ");
    snprintf(name, sizeof name, "%.*s", (int)(e - p - 2), p + 2);
    char *words[3] = {NULL};
    char buf[64];
    snprintf(buf, sizeof buf, "%s", name);
    words[0] = strtok(buf, " ");
    words[1] = strtok(NULL, " ");
    struct run h;
    if (words[1]) run_ctl(&h, &E, T, words[0], words[1], "--help", NULL);
    else run_ctl(&h, &E, T, words[0], "--help", NULL);
    char want[96];
    snprintf(want, sizeof want, "Usage: dmtctl %s", name);
    expect(&h, 0, want, NULL);
    assert_non_null(strstr(h.out, "Global flags:"));
    assert_non_null(strstr(h.out, "  3  denied"));
    run_free(&h);
    seen++;
    p = strchr(p, '\n') + 1;
  }
  assert_true(seen >= 30);
  run_free(&r);

  RUN(&r, "help", "power", "off");
  expect(&r, 0, "Usage: dmtctl power off <guid>... | --tag TAG", NULL);
  assert_non_null(strstr(r.out, "DMT power action 8"));
  run_free(&r);
  run_ctl(&r, &E, T, NULL);
  expect(&r, 0, "Commands:", NULL);
  run_free(&r);
  RUN(&r, "devices");
  expect(&r, 1, NULL, "devices list");
  run_free(&r);
  RUN(&r, "explode");
  expect(&r, 1, NULL, "unknown command `explode`");
  run_free(&r);
  RUN(&r, "power", "off", "--bogus");
  expect(&r, 1, NULL, "unknown flag --bogus");
  run_free(&r);
  RUN(&r, "info");
  expect(&r, 1, NULL, "takes <guid>");
  run_free(&r);
  RUN(&r, "info", "not-a-guid");
  expect(&r, 1, NULL, "is not a device GUID");
  run_free(&r);
  RUN(&r, "devices", "list", "-o", "xml");
  expect(&r, 1, NULL, "output format `xml`");
  run_free(&r);
  RUN(&r, "devices", "list", "--timeout", "0");
  expect(&r, 1, NULL, "timeout");
  run_free(&r);
  RUN(&r, "power", "off");
  expect(&r, 1, NULL, "no device");
  run_free(&r);
  RUN(&r, "power", "off", guid(0), "--tag", "lab1");
  expect(&r, 1, NULL, "not both");
  run_free(&r);
}

static void test_config_precedence_and_secrecy(void **state) {
  char *dir = dmt_test_tmpdir("ctlcfg");
  char cfg[700], tok[700], bad[700];
  snprintf(cfg, sizeof cfg, "%s/config", dir);
  snprintf(tok, sizeof tok, "%s/token", dir);
  snprintf(bad, sizeof bad, "%s/bad", dir);
  FILE *f = fopen(tok, "w");
  fputs("eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.sig-XYZZY\n", f);
  fclose(f);
  f = fopen(cfg, "w");
  fprintf(f, "# dmtctl settings\ntenant = from-file\noutput = yaml\ntimeout = 5s\nparallel = 7\ntoken_file = %s\n", tok);
  fclose(f);
  f = fopen(bad, "w");
  fputs("tennant = typo\n", f);
  fclose(f);
  struct ctl_env env;
  ctl_env_init(&env, dmt_test_mqtt_url(), "from-env");
  struct run r;
  /* file < env < flag */
  run_ctl(&r, &env, T, "config", "view", "--config", cfg, NULL);
  expect(&r, 0, "tenant: from-env\n", NULL); /* output = yaml came from the file */
  assert_non_null(strstr(r.out, "timeout: 5s\n"));
  assert_non_null(strstr(r.out, "parallel: \"7\"\n"));
  assert_non_null(strstr(r.out, "token: (set)\n"));
  assert_null(strstr(r.out, "XYZZY"));
  assert_null(strstr(r.err, "XYZZY"));
  run_free(&r);
  run_ctl(&r, &env, T, "config", "view", "--config", cfg, "--tenant", "from-flag", "-o", "table", "--timeout=9s", NULL);
  expect(&r, 0, "tenant = from-flag\n", NULL);
  assert_non_null(strstr(r.out, "timeout = 9s\n"));
  run_free(&r);
  /* DMTCTL_CONFIG names the file too; a typo in it is an error, not ignored */
  char kv[760];
  struct ctl_env env2;
  ctl_env_init(&env2, dmt_test_mqtt_url(), "t");
  snprintf(kv, sizeof kv, "DMTCTL_CONFIG=%s", bad);
  ctl_env_add(&env2, kv);
  run_ctl(&r, &env2, T, "config", "view", NULL);
  expect(&r, 1, NULL, "unknown setting `tennant`");
  run_free(&r);
  /* the default file ~/.config/dmtctl/config (XDG_CONFIG_HOME) */
  struct ctl_env env3;
  memset(&env3, 0, sizeof env3);
  snprintf(kv, sizeof kv, "XDG_CONFIG_HOME=%s", dir);
  ctl_env_add(&env3, kv);
  char xdg[760];
  snprintf(xdg, sizeof xdg, "%s/dmtctl", dir);
  mkdir(xdg, 0700);
  snprintf(xdg, sizeof xdg, "%s/dmtctl/config", dir);
  f = fopen(xdg, "w");
  fputs("broker = tcp://broker.example:1883\n", f);
  fclose(f);
  run_ctl(&r, &env3, T, "config", "view", NULL);
  expect(&r, 0, "broker = tcp://broker.example:1883\n", NULL);
  run_free(&r);
  /* a missing token file is a configuration error */
  run_ctl(&r, &env, T, "devices", "list", "--token-file", "/nonexistent/token", NULL);
  expect(&r, 1, NULL, "cannot read the token file");
  run_free(&r);
  free(dir);
}

static char *bash_complete(const char *line_words, int cword) {
  char *dir = dmt_test_tmpdir("compl");
  char script[700], cmd[4096];
  snprintf(script, sizeof script, "%s/c.bash", dir);
  struct run r;
  const char *args[] = {"completion", "bash", NULL};
  run_prog(&r, &E, T, dmtctl_bin(), args);
  assert_int_equal(r.status, 0);
  FILE *f = fopen(script, "w");
  fputs(r.out, f);
  fclose(f);
  run_free(&r);
  char bindir[1024];
  snprintf(bindir, sizeof bindir, "%s", dmtctl_bin());
  *strrchr(bindir, '/') = '\0';
  snprintf(cmd, sizeof cmd,
           "PATH=%s:$PATH; source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _dmtctl; printf '%%s\\n' \"${COMPREPLY[@]}\" | sort",
           bindir, script, line_words, cword);
  const char *bargs[] = {"-c", cmd, NULL};
  run_prog(&r, &E, T, "/bin/bash", bargs);
  assert_int_equal(r.status, 0);
  free(r.err);
  free(dir);
  return r.out;
}

static void test_version_and_completion(void **state) {
  struct run r;
  RUN(&r, "version");
  expect(&r, 0, "dmtctl 0.1.0", NULL);
  run_free(&r);
  char *c = bash_complete("dmtctl po", 1);
  assert_string_equal(c, "power\n");
  free(c);
  c = bash_complete("dmtctl power o", 2);
  assert_string_equal(c, "off\non\n");
  free(c);
  c = bash_complete("dmtctl power off --t", 3);
  assert_string_equal(c, "--tag\n--tenant\n--timeout\n--token-file\n");
  free(c);
  c = bash_complete("dmtctl devices list -o ''", 4);
  assert_string_equal(c, "json\nname\ntable\nwide\nyaml\n");
  free(c);
  c = bash_complete("dmtctl events --kind po", 3);
  assert_string_equal(c, "power\n");
  free(c);
  /* device GUIDs complete from the live retained states */
  c = bash_complete("dmtctl power state 7c7c", 3);
  assert_int_equal(count_lines(c), N);
  assert_non_null(strstr(c, guid(N - 1)));
  free(c);
  RUN(&r, "completion", "zsh");
  expect(&r, 0, "#compdef dmtctl", NULL);
  if (access("/usr/bin/zsh", X_OK) == 0 || access("/bin/zsh", X_OK) == 0) {
    char *dir = dmt_test_tmpdir("zsh");
    char path[700], cmd[800];
    snprintf(path, sizeof path, "%s/_dmtctl", dir);
    FILE *f = fopen(path, "w");
    fputs(r.out, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "zsh -n %s", path);
    assert_int_equal(system(cmd), 0);
    free(dir);
  }
  run_free(&r);
  RUN(&r, "completion", "fish");
  expect(&r, 1, NULL, "not a supported shell");
  run_free(&r);
}

/* ---- devices ---- */

static void test_devices_list_and_get(void **state) {
  struct run r;
  RUN(&r, "devices", "list");
  expect(&r, 0, "GUID                                  HOSTNAME", NULL);
  assert_int_equal(count_lines(r.out), N + 1);
  assert_int_equal(count_matching(r.out, "  connected  "), N);
  assert_int_equal(count_matching(r.out, "sim,rack-a"), 4);
  run_free(&r);
  RUN(&r, "devices", "list", "-o", "json");
  expect(&r, 0, NULL, NULL);
  json_t *arr = json_loads(r.out, 0, NULL);
  assert_true(json_is_array(arr));
  assert_int_equal(json_array_size(arr), N);
  assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "guid")), guid(0));
  assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "tenant")), S.tenant);
  assert_true(json_is_true(json_object_get(json_array_get(arr, 5), "connected")));
  json_decref(arr);
  run_free(&r);
  RUN(&r, "devices", "list", "-o", "yaml");
  expect(&r, 0, "- guid: 7c7c0000-0000-4000-8000-000000000000\n", NULL);
  assert_int_equal(count_matching(r.out, "guid: "), N);
  assert_int_equal(count_matching(r.out, "  connected: true"), N);
  run_free(&r);
  RUN(&r, "devices", "list", "-o", "name");
  expect(&r, 0, NULL, NULL);
  assert_int_equal(count_lines(r.out), N);
  assert_true(!strncmp(r.out, guid(0), 36));
  run_free(&r);
  RUN(&r, "devices", "list", "--tag", "rack-a", "-o", "name");
  expect(&r, 0, NULL, NULL);
  assert_int_equal(count_lines(r.out), 4);
  run_free(&r);
  RUN(&r, "devices", "list", "--tag", "rack-a,lab1", "-o", "wide");
  expect(&r, 0, "INSTANCE", NULL);
  assert_int_equal(count_matching(r.out, S.instance), N);
  run_free(&r);
  RUN(&r, "devices", "list", "--status", "disconnected");
  expect(&r, 0, NULL, "No devices found");
  assert_string_equal(r.out, "");
  run_free(&r);
  /* tenants are separate namespaces */
  RUN(&r, "devices", "list", "--tenant", "someone-else", "-o", "json");
  expect(&r, 0, "[]", NULL);
  run_free(&r);

  RUN(&r, "devices", "get", guid(2));
  expect(&r, 0, "Status:             connected\n", NULL);
  assert_non_null(strstr(r.out, "Tags:               sim,rack-a\n"));
  assert_non_null(strstr(r.out, "AMT version:        16.1.27\n"));
  run_free(&r);
  char upper[37];
  for (int i = 0; i < 37; i++) upper[i] = (char)((guid(2)[i] >= 'a' && guid(2)[i] <= 'f') ? guid(2)[i] - 32 : guid(2)[i]);
  RUN(&r, "devices", "get", upper, "-o", "json"); /* GUIDs are case-insensitive on input */
  expect(&r, 0, NULL, NULL);
  json_t *o = json_loads(r.out, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(o, "guid")), guid(2));
  assert_string_equal(json_string_value(json_object_get(o, "instance")), S.instance);
  json_decref(o);
  run_free(&r);
  RUN(&r, "devices", "get", "7c7c0000-0000-4000-8000-0000000000ff");
  expect(&r, 4, NULL, "not found");
  run_free(&r);
}

/* ---- power ---- */

static void power_ok(const char *action, size_t dev, int sim_power) {
  struct run r;
  RUN(&r, "power", action, guid(dev));
  char summary[96];
  snprintf(summary, sizeof summary, "power %s: 1 device: 1 ok\n", action);
  expect(&r, 0, summary, NULL);
  assert_non_null(strstr(r.out, "ok      SUCCESS"));
  run_free(&r);
  if (sim_power >= 0) assert_int_equal(stack_sim_power(&S, guid(dev)), sim_power);
}

static bool retained_power_is(void *arg) {
  int power = -1;
  dmt_test_mqtt_state_of(S.mq, guid(0), &power);
  return power == *(int *)arg;
}

static void test_power_actions(void **state) {
  struct run r;
  RUN(&r, "power", "state", guid(0));
  expect(&r, 0, "on (2)  full-power  ok", NULL);
  assert_non_null(strstr(r.out, "power state: 1 device: 1 ok\n"));
  run_free(&r);
  power_ok("off", 0, 8);
  /* the retained state followed, and devices get shows it */
  int eight = 8;
  assert_true(dmt_test_wait_until(retained_power_is, &eight, 5000));
  RUN(&r, "devices", "get", guid(0));
  expect(&r, 0, "Power:              off-soft (8)\n", NULL);
  run_free(&r);
  /* off again: the firmware's NOT_READY is a failure with its name */
  RUN(&r, "power", "off", guid(0));
  expect(&r, 8, "failed  NOT_READY (ReturnValue 2)", NULL);
  assert_non_null(strstr(r.out, "power off: 1 device: 1 failed\n"));
  run_free(&r);
  power_ok("on", 0, 2);
  power_ok("cycle", 0, 2);
  power_ok("reset", 0, 2);
  power_ok("sleep", 0, 4);
  power_ok("on", 0, 2);
  power_ok("hibernate", 0, 7);
  power_ok("on", 0, 2);
  power_ok("soft-off", 0, 8);
  power_ok("on", 0, 2);
  power_ok("soft-reset", 0, 2);
  RUN(&r, "power", "state", guid(0), "-o", "json");
  expect(&r, 0, NULL, NULL);
  json_t *doc = json_loads(r.out, 0, NULL);
  json_t *res = json_array_get(json_object_get(doc, "results"), 0);
  assert_string_equal(json_string_value(json_object_get(res, "result")), "ok");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "reply"), "powerstate")), 2);
  json_decref(doc);
  run_free(&r);
  /* by tag, several devices */
  RUN(&r, "power", "state", "--tag", "rack-a");
  expect(&r, 0, "power state: 4 devices: 4 ok\n", NULL);
  assert_int_equal(count_matching(r.out, "on (2)"), 4);
  run_free(&r);
  RUN(&r, "power", "state", "--tag", "no-such-tag");
  expect(&r, 4, NULL, "no device in tenant");
  run_free(&r);
}

static bool is_disconnected(void *arg) { return dmt_test_mqtt_state_of(S.mq, arg, NULL) == 0; }

static void test_offline_not_found_timeout_partial(void **state) {
  const char *off = guid(11);
  assert_non_null(stack_sim(&S, "fault %s wrongpass", off));
  assert_non_null(stack_sim(&S, "fault %s drop", off));
  assert_true(dmt_test_wait_until(is_disconnected, (void *)off, 15000));
  struct run r;
  RUN(&r, "power", "off", off);
  expect(&r, 5, "offline  the device is not connected", NULL);
  run_free(&r);
  RUN(&r, "power", "state", guid(10), off);
  expect(&r, 2, "power state: 2 devices: 1 ok, 1 offline\n", NULL);
  run_free(&r);
  RUN(&r, "devices", "list", "--status", "disconnected", "-o", "name");
  expect(&r, 0, off, NULL);
  assert_int_equal(count_lines(r.out), 1);
  run_free(&r);
  RUN(&r, "power", "state", "7c7c0000-0000-4000-8000-0000000000ee");
  expect(&r, 4, "not-found", NULL);
  run_free(&r);
  RUN(&r, "power", "state", guid(10), "7c7c0000-0000-4000-8000-0000000000ee", off);
  expect(&r, 2, "1 ok, 1 offline, 1 not-found", NULL);
  run_free(&r);
  /* a device that stops answering: the terminator gives up at our deadline */
  assert_non_null(stack_sim(&S, "fault %s stall", guid(9)));
  uint64_t t0 = dmt_test_now_ms();
  RUN(&r, "power", "state", guid(9), "--timeout", "2s");
  expect(&r, 6, "timeout", NULL);
  assert_true(dmt_test_now_ms() - t0 < 10000);
  run_free(&r);
  RUN(&r, "info", guid(11));
  expect(&r, 5, NULL, "offline");
  run_free(&r);
  assert_non_null(stack_sim(&S, "fault %s unstall", guid(9)));
}

/* ---- info ---- */

static void test_info(void **state) {
  struct run r;
  RUN(&r, "info", guid(1));
  expect(&r, 0, "AMT version:    16.1.27\n", NULL);
  assert_non_null(strstr(r.out, "Provisioning:   admin control mode (ACM), post-provisioning\n"));
  assert_non_null(strstr(r.out, "Model:          SimBook 9000\n"));
  assert_non_null(strstr(r.out, "Memory:         32.0 GiB in 2 modules\n"));
  run_free(&r);
  RUN(&r, "info", guid(1), "-o", "json");
  expect(&r, 0, NULL, NULL);
  json_t *o = json_loads(r.out, 0, NULL);
  assert_non_null(json_object_get(json_object_get(json_object_get(o, "general_settings"), "Body"), "AMT_GeneralSettings"));
  assert_int_equal(json_object_size(json_object_get(o, "hardware_info")), 10);
  assert_non_null(json_object_get(json_object_get(o, "version"), "CIM_SoftwareIdentity"));
  json_decref(o);
  run_free(&r);
  RUN(&r, "info", guid(1), "-o", "yaml");
  expect(&r, 0, "general_settings:\n  Header:\n", NULL);
  run_free(&r);
}

/* ---- events ---- */

static bool bg_err_has(void *arg) {
  struct bg *b = arg;
  char *s = read_text(b->err_path);
  bool ok = strstr(s, "dmtctl: following") != NULL;
  free(s);
  return ok;
}

static void test_events_live(void **state) {
  char *dir = dmt_test_tmpdir("events");
  struct bg ev;
  const char *args[] = {"events", "--device", guid(2), "--limit", "4", "-v", NULL};
  assert_int_equal(bg_start(&ev, &E, dir, "events", dmtctl_bin(), args), 0);
  assert_true(dmt_test_wait_until(bg_err_has, &ev, 10000));
  struct run r;
  RUN(&r, "power", "state", guid(3)); /* another device: filtered out by the broker */
  run_free(&r);
  RUN(&r, "power", "off", guid(2));
  expect(&r, 0, NULL, NULL);
  run_free(&r);
  RUN(&r, "power", "on", guid(2));
  expect(&r, 0, NULL, NULL);
  run_free(&r);
  assert_int_equal(bg_wait(&ev, 15000), 0);
  char *out = read_text(ev.out_path);
  assert_int_equal(count_lines(out), 4);
  assert_int_equal(count_matching(out, guid(2)), 4);
  assert_int_equal(count_matching(out, guid(3)), 0);
  assert_int_equal(count_matching(out, "  power         "), 2);
  assert_int_equal(count_matching(out, "  command       "), 2);
  assert_int_equal(count_matching(out, "power state 2 -> 8"), 1);
  assert_int_equal(count_matching(out, "power_action: ok"), 2);
  assert_int_equal(count_matching(out, "Z  "), 4); /* each line starts with its RFC 3339 time */
  free(out);

  /* by kind, as JSON lines; the same event is in dmt.events */
  const char *args2[] = {"events", "--kind", "power", "--limit", "1", "-o", "json", "-v", NULL};
  assert_int_equal(bg_start(&ev, &E, dir, "events2", dmtctl_bin(), args2), 0);
  assert_true(dmt_test_wait_until(bg_err_has, &ev, 10000));
  RUN(&r, "power", "state", guid(3)); /* a command event only (its power state is known already) */
  run_free(&r);
  RUN(&r, "power", "off", guid(4));
  run_free(&r);
  assert_int_equal(bg_wait(&ev, 15000), 0);
  out = read_text(ev.out_path);
  json_t *e = json_loads(out, 0, NULL);
  assert_non_null(e);
  assert_string_equal(json_string_value(json_object_get(e, "kind")), "power");
  assert_string_equal(json_string_value(json_object_get(e, "guid")), guid(4));
  assert_string_equal(json_string_value(json_object_get(e, "outcome")), "success");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "data"), "to")), 8);
  long persisted = -1;
  for (int i = 0; i < 100 && persisted != 1; i++, usleep(50000))
    persisted = stack_sql(&S, "SELECT count(*) FROM dmt.events WHERE id = '%s' AND kind = 'power'",
                          json_string_value(json_object_get(e, "id")));
  assert_int_equal(persisted, 1);
  json_decref(e);
  free(out);
  RUN(&r, "power", "on", guid(4));
  run_free(&r);

  /* Ctrl-C ends a follow cleanly */
  const char *args3[] = {"events", "-v", NULL};
  assert_int_equal(bg_start(&ev, &E, dir, "events3", dmtctl_bin(), args3), 0);
  assert_true(dmt_test_wait_until(bg_err_has, &ev, 10000));
  assert_int_equal(bg_stop(&ev, SIGINT), 0);
  free(dir);
}

static void test_events_argument_errors_and_no_bridge(void **state) {
  struct run r;
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", dmt_test_free_port());
  RUN(&r, "events", "--since", "10m", "--bridge", url);
  expect(&r, 7, NULL, "event history: cannot connect");
  run_free(&r);
  RUN(&r, "events", "--until", "1h");
  expect(&r, 1, NULL, "--until needs --since");
  run_free(&r);
  RUN(&r, "events", "--since", "last tuesday");
  expect(&r, 1, NULL, "--since `last tuesday`");
  run_free(&r);
  RUN(&r, "events", "--kind", "power/#");
  expect(&r, 1, NULL, "is not an event kind");
  run_free(&r);
  RUN(&r, "events", "--no-follow");
  expect(&r, 1, NULL, "--no-follow needs --since");
  run_free(&r);
  RUN(&r, "profiles", "list", "--bridge", url);
  expect(&r, 7, NULL, "cannot connect to 127.0.0.1");
  run_free(&r);
}

/* ---- auth and reachability ---- */

static void test_auth_failure_and_unreachable(void **state) {
  /* a private broker that checks user name and password, as the JWT plugin will */
  char *dir = dmt_test_tmpdir("authbroker");
  char pw[700], conf[700], log[700], tok[700], bad[700], cmd[1600];
  snprintf(pw, sizeof pw, "%s/passwd", dir);
  snprintf(conf, sizeof conf, "%s/mosquitto.conf", dir);
  snprintf(log, sizeof log, "%s/mosquitto.log", dir);
  snprintf(tok, sizeof tok, "%s/good.token", dir);
  snprintf(bad, sizeof bad, "%s/bad.token", dir);
  const char *secret = "tok-3f9c2a1b7e-SECRET";
  snprintf(cmd, sizeof cmd, "mosquitto_passwd -b -c %s dmtctl %s", pw, secret);
  assert_int_equal(system(cmd), 0);
  FILE *f = fopen(tok, "w");
  fprintf(f, "%s\n", secret);
  fclose(f);
  f = fopen(bad, "w");
  fprintf(f, "tok-wrong-SECRET2\n");
  fclose(f);
  int port = dmt_test_free_port();
  f = fopen(conf, "w");
  fprintf(f, "listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n%s", port, pw,
          geteuid() == 0 ? "user root\n" : "");
  fclose(f);
  char *margv[] = {"/usr/sbin/mosquitto", "-c", conf, NULL};
  pid_t broker = dmt_test_spawn(margv, NULL, log);
  assert_true(dmt_test_wait_port(port, 5000));
  char url[64];
  snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
  struct run r;
  RUN(&r, "devices", "list", "--broker", url, "--token-file", tok);
  expect(&r, 0, NULL, "No devices found");
  run_free(&r);
  RUN(&r, "devices", "list", "--broker", url, "--token-file", bad, "-v");
  expect(&r, 3, NULL, "refused our credentials");
  assert_null(strstr(r.err, "SECRET"));
  assert_null(strstr(r.out, "SECRET"));
  run_free(&r);
  RUN(&r, "power", "off", guid(0), "--broker", url);
  expect(&r, 3, NULL, "refused our credentials");
  run_free(&r);
  dmt_test_stop(broker, SIGTERM, 5000);
  /* nobody listening */
  RUN(&r, "devices", "list", "--broker", url);
  expect(&r, 7, NULL, "cannot reach the broker");
  run_free(&r);
  free(dir);
}

/*
 * A broker whose ACL lets north clients read state/events and publish only
 * commands, as the tenancy plugin does: the probe to our own inbox is
 * refused, so the snapshot barrier falls back to the re-subscribe marker
 * (and to a quiet period when nothing is retained).
 */
static void publish_states(const char *url, const char *user, const char *pw, const char *tenant, int n) {
  struct dmt_workq q;
  dmt_workq_init(&q, NULL, NULL);
  struct dmt_mqtt_opts o = {.url = url, .client_id = "agent-publisher", .username = user, .password = pw, .owner = &q};
  char err[256];
  struct dmt_mqtt *m = dmt_mqtt_new(&o, err, sizeof err);
  assert_non_null(m);
  dmt_mqtt_start(m);
  for (int i = 0; i < 500 && !dmt_mqtt_is_connected(m); i++) usleep(10000);
  assert_true(dmt_mqtt_is_connected(m));
  for (int i = 0; i < n; i++) {
    char guid[37], topic[160];
    snprintf(guid, sizeof guid, "7f7f0000-0000-4000-8000-%012x", i);
    struct dmt_device_state st = {.guid = guid, .tenant = (char *)tenant, .connected = i % 2 == 0, .power_state = 2,
                                  .updated_ms = 1700000000000,
                                  .present = DMT_DEVICE_STATE_CONNECTED | DMT_DEVICE_STATE_POWER_STATE |
                                             DMT_DEVICE_STATE_UPDATED_MS};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(dmt_device_state_encode(&st, &sb, err, sizeof err), 0);
    snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/state", tenant, guid);
    struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1, .retain = true};
    assert_int_equal(dmt_mqtt_publish(m, &p), 0);
    msgpack_sbuffer_destroy(&sb);
  }
  usleep(500000);
  dmt_mqtt_free(m);
  dmt_workq_run(&q);
  dmt_workq_destroy(&q);
}

static void test_acl_broker_refusing_inbox_writes(void **state) {
  char *dir = dmt_test_tmpdir("aclbroker");
  char pw[700], acl[700], conf[700], log[700], tok[700], cmd[1600];
  snprintf(pw, sizeof pw, "%s/passwd", dir);
  snprintf(acl, sizeof acl, "%s/acl", dir);
  snprintf(conf, sizeof conf, "%s/mosquitto.conf", dir);
  snprintf(log, sizeof log, "%s/mosquitto.log", dir);
  snprintf(tok, sizeof tok, "%s/north.token", dir);
  snprintf(cmd, sizeof cmd, "mosquitto_passwd -b -c %s agent agent-secret && mosquitto_passwd -b %s north north-secret",
           pw, pw);
  assert_int_equal(system(cmd), 0);
  FILE *f = fopen(acl, "w");
  fputs("user agent\ntopic readwrite dmt/#\n\n"
        "user north\ntopic read dmt/v1/acl/devices/+/state\ntopic read dmt/v1/acl/devices/+/events/#\n"
        "topic read dmt/v1/acl/events/#\ntopic read dmt/v1/acl/replies/#\ntopic write dmt/v1/acl/devices/+/cmd/+\n"
        "topic read dmt/v1/empty/devices/+/state\ntopic read dmt/v1/empty/replies/#\n",
        f);
  fclose(f);
  f = fopen(tok, "w");
  fputs("north-secret\n", f);
  fclose(f);
  int port = dmt_test_free_port();
  f = fopen(conf, "w");
  fprintf(f, "listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nacl_file %s\nlog_type all\n%s", port, pw, acl,
          geteuid() == 0 ? "user root\n" : "");
  fclose(f);
  char *margv[] = {"/usr/sbin/mosquitto", "-c", conf, NULL};
  pid_t broker = dmt_test_spawn(margv, NULL, log);
  assert_true(dmt_test_wait_port(port, 5000));
  char url[64];
  snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
  publish_states(url, "agent", "agent-secret", "acl", 20);
  struct ctl_env env;
  ctl_env_init(&env, url, "acl");
  char kv[760];
  snprintf(kv, sizeof kv, "DMTCTL_TOKEN_FILE=%s", tok);
  ctl_env_add(&env, kv);
  ctl_env_add(&env, "DMTCTL_USERNAME=north");
  struct run r;
  run_ctl(&r, &env, T, "devices", "list", "-o", "name", NULL);
  expect(&r, 0, "7f7f0000-0000-4000-8000-000000000013\n", NULL);
  assert_int_equal(count_lines(r.out), 20);
  run_free(&r);
  run_ctl(&r, &env, T, "devices", "list", "--status", "disconnected", NULL);
  expect(&r, 0, NULL, NULL);
  assert_int_equal(count_matching(r.out, "disconnected"), 10);
  run_free(&r);
  run_ctl(&r, &env, T, "devices", "get", "7f7f0000-0000-4000-8000-000000000004", NULL);
  expect(&r, 0, "Status:             connected\n", NULL);
  run_free(&r);
  run_ctl(&r, &env, T, "devices", "list", "--tenant", "empty", NULL);
  expect(&r, 0, NULL, "No devices found in tenant empty");
  run_free(&r);
  dmt_test_stop(broker, SIGTERM, 5000);
  /* the broker really refused the probe */
  char *blog = read_text(log);
  assert_non_null(strstr(blog, "Denied PUBLISH"));
  free(blog);
  free(dir);
}

/* A broker restart while following: dmtctl says so, reconnects, re-subscribes and keeps following. */
static bool err_has(void *arg) {
  const char **x = arg;
  char *s = read_text(x[0]);
  bool ok = strstr(s, x[1]) != NULL;
  free(s);
  return ok;
}

static void test_events_survive_broker_restart(void **state) {
  struct dmt_test_broker b = {0};
  assert_int_equal(dmt_test_broker_start(&b, 0), 0);
  char url[64];
  snprintf(url, sizeof url, "tcp://127.0.0.1:%d", b.port);
  struct ctl_env env;
  ctl_env_init(&env, url, "restart");
  char *dir = dmt_test_tmpdir("evrestart");
  struct bg ev;
  const char *args[] = {"events", "--limit", "1", "-v", NULL};
  assert_int_equal(bg_start(&ev, &env, dir, "events", dmtctl_bin(), args), 0);
  const char *following[] = {ev.err_path, "dmtctl: following"};
  assert_true(dmt_test_wait_until(err_has, following, 10000));
  dmt_test_broker_stop(&b);
  const char *lost[] = {ev.err_path, "connection to the broker lost"};
  assert_true(dmt_test_wait_until(err_has, lost, 10000));
  assert_int_equal(dmt_test_broker_start(&b, b.port), 0);
  const char *back[] = {ev.err_path, "reconnected to the broker"};
  assert_true(dmt_test_wait_until(err_has, back, 20000));
  usleep(300000); /* its subscription is re-established right after the reconnect */
  /* an event after the restart is printed */
  struct dmt_workq q;
  dmt_workq_init(&q, NULL, NULL);
  struct dmt_mqtt_opts o = {.url = url, .client_id = "restart-publisher", .owner = &q};
  char err[256];
  struct dmt_mqtt *m = dmt_mqtt_new(&o, err, sizeof err);
  dmt_mqtt_start(m);
  for (int i = 0; i < 500 && !dmt_mqtt_is_connected(m); i++) usleep(10000);
  struct dmt_event e = {.id = "0b0b0b0b-0000-4000-8000-000000000001", .ts_ms = 1800000000000, .tenant = "restart",
                        .guid = "0b0b0b0b-0000-4000-8000-000000000002", .kind = "connected", .outcome = "success",
                        .message = "after the restart", .present = DMT_EVENT_TS_MS};
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  assert_int_equal(dmt_event_encode(&e, &sb, err, sizeof err), 0);
  struct dmt_mqtt_publish p = {.topic = "dmt/v1/restart/devices/0b0b0b0b-0000-4000-8000-000000000002/events/connected",
                               .payload = sb.data, .len = sb.size, .qos = 1};
  assert_int_equal(dmt_mqtt_publish(m, &p), 0);
  assert_int_equal(bg_wait(&ev, 15000), 0);
  char *out = read_text(ev.out_path);
  assert_non_null(strstr(out, "connected     0b0b0b0b-0000-4000-8000-000000000002  success  after the restart"));
  free(out);
  msgpack_sbuffer_destroy(&sb);
  dmt_mqtt_free(m);
  dmt_workq_run(&q);
  dmt_workq_destroy(&q);
  dmt_test_broker_stop(&b);
  free(dir);
}

/* ---- deactivate (last: the device leaves the fleet) ---- */

static void test_deactivate(void **state) {
  struct run r;
  RUN(&r, "deactivate", guid(6));
  expect(&r, 1, NULL, "add --yes");
  run_free(&r);
  assert_int_equal(stack_sql(&S, "SELECT count(*) FROM dmt.devices WHERE guid = '%s'", guid(6)), 1);
  RUN(&r, "deactivate", guid(6), "--yes");
  expect(&r, 0, "ok      SUCCESS", NULL);
  assert_non_null(strstr(r.out, "deactivate: 1 device: 1 ok\n"));
  run_free(&r);
  long rows = -1;
  for (int i = 0; i < 100 && rows != 0; i++, usleep(50000))
    rows = stack_sql(&S, "SELECT count(*) FROM dmt.devices WHERE guid = '%s'", guid(6));
  assert_int_equal(rows, 0);
  RUN(&r, "deactivate", guid(11), "-y");
  expect(&r, 5, "offline", NULL);
  run_free(&r);
}

int main(void) {
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_for_every_command),
      cmocka_unit_test(test_config_precedence_and_secrecy),
      cmocka_unit_test(test_version_and_completion),
      cmocka_unit_test(test_devices_list_and_get),
      cmocka_unit_test(test_power_actions),
      cmocka_unit_test(test_info),
      cmocka_unit_test(test_events_live),
      cmocka_unit_test(test_events_argument_errors_and_no_bridge),
      cmocka_unit_test(test_offline_not_found_timeout_partial),
      cmocka_unit_test(test_auth_failure_and_unreachable),
      cmocka_unit_test(test_acl_broker_refusing_inbox_writes),
      cmocka_unit_test(test_events_survive_broker_restart),
      cmocka_unit_test(test_deactivate),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
