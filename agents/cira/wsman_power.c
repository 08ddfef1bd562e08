/*
 * Power verbs, following DMT's WS-Man call sequences (mps-cira.md §2.6) and
 * answering DMT's response bodies (§3.3-3.4):
 *   power_state        Get IPS_PowerManagementService, E/P CIM_ServiceAvailableToElement
 *                      -> {powerstate, OSPowerSavingState}
 *   power_action       Get+Put AMT_BootSettingData (options cleared) then, by code
 *                      (power_map.c): RequestPowerStateChange (waking an OS in power
 *                      saving first for power up), the OS power-saving path for 500/501,
 *                      or the boot-options sequence for the extended codes
 *   boot_options       DMT's bootOptions: CCM check, boot source lookup (PBA/WinRE),
 *                      Get AMT_BootSettingData, ChangeBootOrder(), Put, SetBootConfigRole,
 *                      ChangeBootOrder(source), RequestPowerStateChange(reset or on)
 *   power_capabilities DMT's name -> code map from the AMT version and AMT_BootCapabilities
 * and the background power-state read that keeps the retained state's
 * power_state current (DMT's power_state_refresh_* settings).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cira.h"
#include "dmt/amt_logs.h"
#include "dmt/mptree.h"

#define ADDRESSING "http://schemas.xmlsoap.org/ws/2004/08/addressing"
#define WSMAN_XSD "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
#define BOOT_CONFIG_ID "Intel(r) AMT: Boot Configuration 0"
#define SLOT_BOOT_DATA 0
#define SLOT_OS 1

/* An endpoint reference to an instance, as wsman-messages writes it into method parameters. */
static void epr(char *out, size_t n, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel) {
  char uri[256];
  dmt_wsman_resource_uri(cls, uri, sizeof uri);
  int k = snprintf(out, n,
                   "<Address xmlns=\"" ADDRESSING "\">" ADDRESSING "</Address><ReferenceParameters xmlns=\"" ADDRESSING
                   "\"><ResourceURI xmlns=\"" WSMAN_XSD "\">%s</ResourceURI><SelectorSet xmlns=\"" WSMAN_XSD "\">",
                   uri);
  for (size_t i = 0; i < nsel && k > 0 && (size_t)k < n; i++)
    k += snprintf(out + k, n - (size_t)k, "<Selector Name=\"%s\">%s</Selector>", sel[i].name, sel[i].value);
  if (k > 0 && (size_t)k < n) snprintf(out + k, n - (size_t)k, "</SelectorSet></ReferenceParameters>");
}

/* ---- power_state and the background read ---- */

static void state_pulled(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  int64_t power = 0;
  if (!shape_power_state_of(wsman_tree(call), &power)) {
    cmd_fail(c, 400, "device_error", "the device did not report a power state");
    return;
  }
  state_power_observed(c->conn, power, c->n[0], c->internal ? "refresh" : "observed", c->requester);
  shape_power_state(&c->pk, power, c->n[0]);
  cmd_done(c, 200);
}

static void state_os(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  c->n[0] = shape_os_state(wsman_tree(call));
  cmd_enum(c, "CIM_ServiceAvailableToElement", state_pulled);
}

void verb_power_state(struct cmd *c) { cmd_get(c, "IPS_PowerManagementService", state_os); }

void verb_power_refresh(struct cmd *c) { verb_power_state(c); }

static void start_refresh(struct cira_conn *c);

/* Devices due while every slot is busy wait in a FIFO, so none starves behind devices that keep arriving first. */
static bool wait_push(struct cira_server *s, struct cira_conn *c) {
  if (s->power_wait_len == s->power_wait_cap) {
    size_t cap = s->power_wait_cap ? s->power_wait_cap * 2 : 256;
    struct cira_conn **v = malloc(cap * sizeof *v);
    if (!v) return false;
    for (size_t i = 0; i < s->power_wait_len; i++) v[i] = s->power_wait[(s->power_wait_head + i) % s->power_wait_cap];
    free(s->power_wait);
    s->power_wait = v;
    s->power_wait_cap = cap;
    s->power_wait_head = 0;
  }
  s->power_wait[(s->power_wait_head + s->power_wait_len++) % s->power_wait_cap] = c;
  conn_ref(c);
  c->power_queued = true;
  return true;
}

static struct cira_conn *wait_pop(struct cira_server *s) {
  if (!s->power_wait_len) return NULL;
  struct cira_conn *c = s->power_wait[s->power_wait_head];
  s->power_wait_head = (s->power_wait_head + 1) % s->power_wait_cap;
  s->power_wait_len--;
  c->power_queued = false;
  return c;
}

void power_wait_free(struct cira_server *s) {
  struct cira_conn *c;
  while ((c = wait_pop(s))) conn_unref(c);
  free(s->power_wait);
  s->power_wait = NULL;
  s->power_wait_cap = 0;
}

static void refresh_ended(struct cmd *c, const char *error) {
  struct cira_conn *conn = c->conn;
  struct cira_server *s = c->srv;
  if (s->power_reads) s->power_reads--;
  conn->power_reading = false;
  DMT_DEBUG(&s->log, "power_refresh", "guid=%s error=%s power=%u", conn->guid, error ? error : "-",
            conn->power_state);
  uint64_t interval = 1000ull * s->set.power_refresh_s;
  /* DMT suspends the reads of a device after a timeout until it reconnects; a timeout under a reconnect
   * storm is as likely ours as the device's, so it backs off like any other failure instead. */
  if (!error) {
    conn->power_failures = 0;
    conn->power_due_ms = dmt_loop_now(s->loop) + interval;
  } else {
    /* As DMT: the delay doubles per consecutive failure, up to 64 intervals and at most a day. */
    if (conn->power_failures < 6) conn->power_failures++;
    uint64_t delay = interval << conn->power_failures;
    if (delay > 24ull * 3600 * 1000) delay = 24ull * 3600 * 1000;
    conn->power_due_ms = dmt_loop_now(s->loop) + delay;
  }
  struct cira_conn *next;
  while (s->power_reads < s->set.power_max_concurrent && (next = wait_pop(s))) {
    if (next->state == CONN_ACTIVE && !next->power_reading) start_refresh(next);
    conn_unref(next);
  }
}

static void start_refresh(struct cira_conn *c) {
  struct cira_server *s = c->srv;
  c->power_reading = true;
  s->power_reads++;
  if (!commands_internal(c, "power_refresh", verb_power_refresh, refresh_ended)) {
    c->power_reading = false;
    s->power_reads--;
  }
}

void power_on_keepalive(struct cira_conn *c) {
  struct cira_server *s = c->srv;
  if (!s->set.power_refresh_s || c->power_reading || c->power_queued || !c->power_due_ms) return;
  if (dmt_loop_now(s->loop) < c->power_due_ms) return;
  if (s->power_reads < s->set.power_max_concurrent) start_refresh(c);
  else wait_push(s, c);
}

void power_schedule_first(struct cira_conn *c) {
  struct cira_server *s = c->srv;
  if (!s->set.power_refresh_s) return;
  uint64_t jitter = s->set.power_jitter_s ? (uint64_t)(c->serial * 7919u) % (1000ull * s->set.power_jitter_s) : 0;
  c->power_due_ms = dmt_loop_now(s->loop) + jitter + 1; /* the next keepalive (or options reply) after it */
}

/* ---- AMT_BootSettingData: the instance as read, with DMT's fields set ---- */

struct boot_field {
  const char *name;
  char value[64];
  const char *big; /* long values (the OCR parameter block) */
  bool drop;       /* leave the field out of the Put */
};

static void set_field(struct boot_field *f, size_t *n, size_t max, const char *name, const char *value) {
  for (size_t i = 0; i < *n; i++)
    if (!strcmp(f[i].name, name)) {
      snprintf(f[i].value, sizeof f[i].value, "%s", value);
      return;
    }
  if (*n < max) {
    f[*n] = (struct boot_field){.name = name};
    snprintf(f[*n].value, sizeof f[*n].value, "%s", value);
    (*n)++;
  }
}

/* DMT's setBootData: every option cleared, then the boot-path specifics (BIOS setup, IDE-R) and UseSOL. */
static size_t boot_overrides(const struct power_plan *p, bool use_sol, struct boot_field *f, size_t max) {
  static const char *const off[] = {"BIOSPause", "ConfigurationDataReset", "ForcedProgressEvents", "LockKeyboard",
                                    "LockPowerButton", "LockResetButton", "LockSleepButton", "ReflashBIOS",
                                    "UseSafeMode", "UserPasswordBypass", "SecureErase"};
  size_t n = 0;
  for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) set_field(f, &n, max, off[i], "false");
  bool boot = p->path == POWER_PATH_BOOT;
  set_field(f, &n, max, "BIOSSetup", boot && p->bios_setup ? "true" : "false");
  set_field(f, &n, max, "BootMediaIndex", "0");
  set_field(f, &n, max, "FirmwareVerbosity", "0");
  set_field(f, &n, max, "IDERBootDevice", boot && p->ider_boot_device ? "1" : "0");
  set_field(f, &n, max, "UseIDER", boot && p->use_ider ? "true" : "false");
  set_field(f, &n, max, "UseSOL", use_sol ? "true" : "false");
  return n;
}

/* Puts AMT_BootSettingData: the fields read (in AMT's order) with ours applied, then ours that were missing. */
static void put_boot_data(struct cmd *c, const struct boot_field *f, size_t nf, cmd_next_fn next) {
  const msgpack_object *bsd = dmt_mp_get(shape_body(cmd_saved(c, SLOT_BOOT_DATA)), "AMT_BootSettingData");
  enum { MAXP = 64 };
  struct dmt_wsman_param props[MAXP];
  char names[MAXP][64], values[MAXP][96];
  bool used[32] = {false};
  size_t n = 0;
  for (uint32_t i = 0; bsd && bsd->type == MSGPACK_OBJECT_MAP && i < bsd->via.map.size && n < MAXP; i++) {
    const msgpack_object *k = &bsd->via.map.ptr[i].key;
    if (k->type != MSGPACK_OBJECT_STR || k->via.str.size >= sizeof names[0]) continue;
    snprintf(names[n], sizeof names[n], "%.*s", (int)k->via.str.size, k->via.str.ptr);
    const struct boot_field *mine = NULL;
    for (size_t j = 0; j < nf; j++)
      if (!strcmp(f[j].name, names[n])) {
        mine = &f[j];
        used[j] = true;
      }
    if (mine && mine->drop) continue;
    const char *v = mine ? (mine->big ? mine->big : mine->value) : NULL;
    if (!v) {
      if (!dmt_mp_text(&bsd->via.map.ptr[i].val, values[n], sizeof values[n])) continue; /* arrays, nil */
      v = values[n];
    }
    props[n] = (struct dmt_wsman_param){names[n], v, false};
    n++;
  }
  for (size_t j = 0; j < nf && n < MAXP; j++)
    if (!used[j] && !f[j].drop) props[n++] = (struct dmt_wsman_param){f[j].name, f[j].big ? f[j].big : f[j].value, false};
  struct dmt_wsman_selector sel[] = {{"InstanceID", "Intel(r) AMT:BootSettingData 0"}};
  cmd_put(c, "AMT_BootSettingData", sel, 1, props, n, next);
}

/* ---- RequestPowerStateChange ---- */

static void power_changed(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  shape_return(&c->pk, wsman_tree(call), "RequestPowerStateChange_OUTPUT");
  if (shape_return_value(wsman_tree(call), "RequestPowerStateChange_OUTPUT") == 0 && c->plan.expected_power)
    state_power_observed(c->conn, c->plan.expected_power, c->conn->os_power_state, "commanded", c->requester);
  cmd_done(c, 200);
}

static void request_power_change(struct cmd *c) {
  char code[16], me[1024];
  snprintf(code, sizeof code, "%d", c->plan.cim_state);
  const struct dmt_wsman_selector cs[] = {{"CreationClassName", "CIM_ComputerSystem"}, {"Name", "ManagedSystem"}};
  epr(me, sizeof me, "CIM_ComputerSystem", cs, 2);
  struct dmt_wsman_param p[] = {{"PowerState", code, false}, {"ManagedElement", me, true}};
  cmd_invoke(c, "CIM_PowerManagementService", "RequestPowerStateChange", NULL, 0, p, 2, power_changed);
}

/* ---- the OS power-saving path (500/501), with DMT's answers ---- */

static void os_changed(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  int64_t rv = shape_return_value(wsman_tree(call), "RequestOSPowerSavingStateChange_OUTPUT");
  if (rv == 0) c->conn->os_power_state = (uint8_t)c->plan.os_target;
  shape_os_result(&c->pk, rv, os_power_status_name(rv));
  cmd_done(c, 200);
}

static void request_os_change(struct cmd *c, int target, cmd_next_fn next) {
  char v[8];
  snprintf(v, sizeof v, "%d", target);
  struct dmt_wsman_param p[] = {{"OSPowerSavingState", v, false}};
  cmd_invoke(c, "IPS_PowerManagementService", "RequestOSPowerSavingStateChange", NULL, 0, p, 1, next);
}

static void os_state_for_os_path(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  int64_t os = shape_os_state(wsman_tree(call));
  c->conn->os_power_state = (uint8_t)(os >= 0 && os <= 3 ? os : 0);
  if (os == 0) shape_os_result(&c->pk, 1, "OS_POWER_STATE_UNKNOWN");
  else if (os == 1) shape_os_result(&c->pk, 2, "OS_POWER_STATE_UNSUPPORTED");
  else if (os == c->plan.os_target) shape_os_result(&c->pk, 0, os_power_status_name(0));
  else {
    request_os_change(c, c->plan.os_target, os_changed);
    return;
  }
  cmd_done(c, 200);
}

/* Power up: an OS in power saving is first brought to full power (the result does not stop the action). */
static void woke_os(struct cmd *c, struct wsman_call *call) {
  if (call->error == WSMAN_TIMEOUT || call->error == WSMAN_CLOSED) {
    cmd_check(c, call);
    return;
  }
  request_power_change(c);
}

static void os_state_before_power_up(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  if (shape_os_state(wsman_tree(call)) == 3) request_os_change(c, 2, woke_os);
  else request_power_change(c);
}

static void boot_cleared(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  if (c->plan.path == POWER_PATH_OS) cmd_get(c, "IPS_PowerManagementService", os_state_for_os_path);
  else if (c->plan.wake_os_first) cmd_get(c, "IPS_PowerManagementService", os_state_before_power_up);
  else request_power_change(c);
}

static void boot_read_for_action(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  cmd_keep(c, SLOT_BOOT_DATA, call);
  struct boot_field f[24];
  size_t n = boot_overrides(&c->plan, false, f, 24); /* DMT's power action always clears UseSOL */
  put_boot_data(c, f, n, boot_cleared);
}

/* ---- the boot-options sequence ---- */

static void boot_start(struct cmd *c);

static void boot_order_set(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  request_power_change(c);
}

static void change_boot_order(struct cmd *c, const char *source, cmd_next_fn next) {
  const struct dmt_wsman_selector sel[] = {{"InstanceID", BOOT_CONFIG_ID}};
  if (!source || !*source) {
    cmd_invoke(c, "CIM_BootConfigSetting", "ChangeBootOrder", sel, 1, NULL, 0, next);
    return;
  }
  char src[1024];
  const struct dmt_wsman_selector ss[] = {{"InstanceID", source}};
  epr(src, sizeof src, "CIM_BootSourceSetting", ss, 1);
  struct dmt_wsman_param p[] = {{"Source", src, true}};
  cmd_invoke(c, "CIM_BootConfigSetting", "ChangeBootOrder", sel, 1, p, 1, next);
}

static void boot_role_set(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  if (c->text[0]) change_boot_order(c, c->text, boot_order_set); /* text: the boot source */
  else request_power_change(c);
}

static void boot_data_put(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  char cfg[1024];
  const struct dmt_wsman_selector sel[] = {{"InstanceID", BOOT_CONFIG_ID}};
  epr(cfg, sizeof cfg, "CIM_BootConfigSetting", sel, 1);
  struct dmt_wsman_param p[] = {{"BootConfigSetting", cfg, true}, {"Role", "1", false}};
  cmd_invoke(c, "CIM_BootService", "SetBootConfigRole", NULL, 0, p, 2, boot_role_set);
}

/* boot_details.<key> as text into out; NULL if absent. */
static const char *detail(const struct cmd *c, const char *key, char *out, size_t n) {
  return dmt_mp_text(dmt_mp_get(cmd_arg(c, "boot_details"), key), out, n) ? out : NULL;
}

static struct boot_field *field(struct boot_field *f, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(f[i].name, name)) return &f[i];
  return NULL;
}

static void boot_order_cleared(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  struct boot_field f[24];
  size_t n = boot_overrides(&c->plan, cmd_arg_bool(c, "use_sol", false), f, 20);
  struct dmt_buf tlv, b64;
  dmt_buf_init(&tlv, 0);
  dmt_buf_init(&b64, 0);
  if (c->plan.ocr != OCR_NONE) {
    /* DMT's setCommonBootProps for UEFI HTTPS / PBA / WinRE boot, with the OCR parameter block. */
    const char *why = NULL;
    char url[320], user[64], pass[64];
    int count = 0, rc = c->plan.ocr == OCR_HTTPS
                            ? ocr_https_params(detail(c, "url", url, sizeof url), detail(c, "username", user, sizeof user),
                                               detail(c, "password", pass, sizeof pass), &tlv, &count, &why)
                            : ocr_file_params(c->text + 160, &tlv, &count, &why);
    if (rc != 0 || dmt_base64_encode(dmt_buf_ptr(&tlv), dmt_buf_size(&tlv), &b64) != 0 ||
        dmt_buf_append_u8(&b64, 0) != 0) {
      dmt_buf_free(&tlv);
      dmt_buf_free(&b64);
      cmd_fail(c, 400, "bad_request", why ? why : "invalid boot details");
      return;
    }
    char cnt[8];
    snprintf(cnt, sizeof cnt, "%d", count);
    const msgpack_object *esb = dmt_mp_get(cmd_arg(c, "boot_details"), "enforceSecureBoot");
    set_field(f, &n, 24, "UseIDER", "false");
    set_field(f, &n, 24, "BIOSSetup", "false");
    set_field(f, &n, 24, "UseSOL", "false");
    set_field(f, &n, 24, "UserPasswordBypass", "false");
    set_field(f, &n, 24, "ForcedProgressEvents", "true");
    if (esb && esb->type == MSGPACK_OBJECT_BOOLEAN) set_field(f, &n, 24, "EnforceSecureBoot", esb->via.boolean ? "true" : "false");
    set_field(f, &n, 24, "UefiBootNumberOfParams", cnt);
    set_field(f, &n, 24, "UefiBootParametersArray", "");
    set_field(f, &n, 24, "BIOSLastStatus", "");
    struct boot_field *arr = field(f, n, "UefiBootParametersArray"), *last = field(f, n, "BIOSLastStatus");
    if (arr) arr->big = (const char *)dmt_buf_ptr(&b64);
    if (last) last->drop = true;
  }
  put_boot_data(c, f, n, boot_data_put);
  dmt_buf_free(&tlv);
  dmt_buf_free(&b64);
}

static void boot_read(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  cmd_keep(c, SLOT_BOOT_DATA, call);
  change_boot_order(c, NULL, boot_order_cleared);
}

/* PBA/WinRE: the boot source is the CIM_BootSourceSetting whose BootString is the boot path (WinRE: or the
 * OCR boot option whose BIOS string mentions WinRe). c->text holds the source, c->text + 160 the path. */
static void boot_sources(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  const msgpack_object *items = dmt_mp_path(shape_body(wsman_tree(call)), "PullResponse.Items.CIM_BootSourceSetting");
  char pathbuf[160];
  const char *path = detail(c, "bootPath", pathbuf, sizeof pathbuf);
  c->text[0] = '\0';
  snprintf(c->text + 160, 160, "%s", path ? path : "");
  for (size_t i = 0; i < dmt_mp_list_len(items) && !c->text[0]; i++) {
    const msgpack_object *it = dmt_mp_list_at(items, i);
    char id[160] = "", boot[160] = "", bios[160] = "";
    dmt_mp_text(dmt_mp_get(it, "InstanceID"), id, sizeof id);
    dmt_mp_text(dmt_mp_get(it, "BootString"), boot, sizeof boot);
    dmt_mp_text(dmt_mp_get(it, "BIOSBootString"), bios, sizeof bios);
    if (path && *path) {
      if (!strcmp(boot, path)) snprintf(c->text, 160, "%s", id);
    } else if (c->plan.ocr == OCR_WINRE && strstr(bios, "WinRe") &&
               !strncmp(id, "Intel(r) AMT: Force OCR UEFI Boot Option", 40)) {
      snprintf(c->text, 160, "%s", id);
      snprintf(c->text + 160, 160, "%s", boot);
    }
  }
  if (!c->text[0]) {
    cmd_fail(c, 400, "bad_request", "no boot source of the device matches boot_details.bootPath");
    return;
  }
  cmd_get(c, "AMT_BootSettingData", boot_read);
}

static void boot_after_mode_check(struct cmd *c) {
  snprintf(c->text, 160, "%s", c->plan.boot_source ? c->plan.boot_source : "");
  if (c->plan.ocr == OCR_PBA || c->plan.ocr == OCR_WINRE) cmd_enum(c, "CIM_BootSourceSetting", boot_sources);
  else cmd_get(c, "AMT_BootSettingData", boot_read);
}

static void boot_mode_read(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  int64_t mode = 0;
  dmt_mp_int(dmt_mp_path(shape_body(wsman_tree(call)), "AMT_SetupAndConfigurationService.ProvisioningMode"), &mode);
  if (mode == 4) {
    cmd_fail(c, 400, "bad_request", "enforceSecureBoot cannot be disabled on a device in Client Control Mode");
    return;
  }
  boot_after_mode_check(c);
}

static void boot_start(struct cmd *c) {
  const msgpack_object *esb = dmt_mp_get(cmd_arg(c, "boot_details"), "enforceSecureBoot");
  if (esb && esb->type == MSGPACK_OBJECT_BOOLEAN && !esb->via.boolean)
    cmd_get(c, "AMT_SetupAndConfigurationService", boot_mode_read);
  else
    boot_after_mode_check(c);
}

static bool plan_from_args(struct cmd *c, bool boot_only) {
  int64_t action;
  if (!cmd_arg_int(c, "action", &action)) {
    cmd_fail(c, 400, "bad_request", "args.action (integer) is required");
    return false;
  }
  if (power_plan_for(action, &c->plan) != 0 || (boot_only && action < 100)) {
    cmd_fail(c, 400, "bad_request", boot_only ? "args.action is not one of DMT's boot option codes"
                                              : "args.action is not one of DMT's power action codes");
    return false;
  }
  return true;
}

void verb_power_action(struct cmd *c) {
  if (!plan_from_args(c, false)) return;
  if (c->plan.path == POWER_PATH_BOOT) boot_start(c);
  else cmd_get(c, "AMT_BootSettingData", boot_read_for_action);
}

void verb_boot_options(struct cmd *c) {
  if (!plan_from_args(c, true)) return;
  if (c->plan.path == POWER_PATH_OS) cmd_get(c, "AMT_BootSettingData", boot_read_for_action);
  else boot_start(c);
}

/* ---- power_capabilities ---- */

static void caps_boot(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  shape_capabilities(&c->pk, c->n[1], wsman_tree(call));
  cmd_done(c, 200);
}

static void caps_version(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  c->n[1] = shape_amt_major(wsman_tree(call));
  cmd_get(c, "AMT_BootCapabilities", caps_boot);
}

void verb_power_capabilities(struct cmd *c) { cmd_enum(c, "CIM_SoftwareIdentity", caps_version); }
