/*
 * dmtctl power on|off|reset|cycle|sleep|hibernate|soft-off|soft-reset and
 * power state, for one device, many GUIDs or every device with a tag. Each
 * device gets its own MQTT request (devices/<guid>/cmd/power_action with
 * DMT's action code, or power_state); at most --parallel are in flight; the
 * result is a per-device table and a summary line.
 */
#include <stdio.h>
#include <string.h>

#include "dmtctl.h"

static int run_action(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  struct ctl_session *s;
  int rc = ctl_session_open(c, &s);
  if (rc != CTL_OK) return rc;
  json_t *args = json_pack("{s:i}", "action", cmd->code);
  struct ctl_snapshot snap = {0};
  struct ctl_item *items = NULL;
  size_t n = 0;
  rc = ctl_targets(c, s, a, "power_action", args, &snap, &items, &n);
  if (rc == CTL_OK) {
    for (size_t i = 0; i < n; i++) {
      items[i].check_return = true;
      items[i].return_key = "Body";
    }
    ctl_bulk_run(s, items, n, &snap, cmd->name);
    if (ctl_session_interrupted(s)) rc = 130;
    int rep = ctl_report(c, cmd->name, items, n, NULL, 0);
    if (rc == CTL_OK) rc = rep;
  }
  ctl_items_free(items, n);
  ctl_snapshot_free(&snap);
  json_decref(args);
  ctl_session_close(s);
  return rc;
}

static const char *cell_power(const struct ctl_item *it, char *buf, size_t len) {
  const json_t *ps = json_object_get(it->result, "powerstate");
  if (!json_is_integer(ps)) return "";
  snprintf(buf, len, "%s (%lld)", ctl_power_name(json_integer_value(ps)), (long long)json_integer_value(ps));
  return buf;
}

static const char *cell_os(const struct ctl_item *it, char *buf, size_t len) {
  const json_t *os = json_object_get(it->result, "OSPowerSavingState");
  if (!json_is_integer(os)) return "";
  snprintf(buf, len, "%s", ctl_os_power_name(json_integer_value(os)));
  return buf;
}

static int run_state(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  struct ctl_session *s;
  int rc = ctl_session_open(c, &s);
  if (rc != CTL_OK) return rc;
  struct ctl_snapshot snap = {0};
  struct ctl_item *items = NULL;
  size_t n = 0;
  rc = ctl_targets(c, s, a, "power_state", NULL, &snap, &items, &n);
  if (rc == CTL_OK) {
    ctl_bulk_run(s, items, n, &snap, cmd->name);
    static const struct ctl_column cols[] = {{"POWER", cell_power}, {"OS POWER", cell_os}};
    int rep = ctl_report(c, cmd->name, items, n, cols, 2);
    rc = ctl_session_interrupted(s) ? 130 : rep;
  }
  ctl_items_free(items, n);
  ctl_snapshot_free(&snap);
  ctl_session_close(s);
  return rc;
}

static const struct ctl_flag target_flags[] = {
    {"tag", 0, "TAG[,TAG...]", "every device carrying one of these tags (instead of GUIDs)", NULL},
    {NULL, 0, NULL, NULL, NULL},
};

#define POWER_CMD(word, what, code)                                                                     \
  {"power " word, "<guid>... | --tag TAG", "Power action: " what " (DMT action " #code ")",               \
   "Sends DMT power action " #code " (" what ") to each device as an MQTT request\n"                     \
   "(devices/<guid>/cmd/power_action) and prints one result per device. Devices the\n"                  \
   "retained state shows as disconnected are reported offline without sending.\n\n"                     \
   "Examples:\n"                                                                                         \
   "  dmtctl power " word " 4c4c4544-004b-4210-8033-b6c04f504633\n"                                     \
   "  dmtctl power " word " --tag lab1 --parallel 128",                                                  \
   target_flags, 0, -1, run_action, code, "guid"}

const struct ctl_cmd ctl_cmds_power[] = {
    POWER_CMD("on", "power up", 2),
    POWER_CMD("off", "power down, hard", 8),
    POWER_CMD("reset", "master bus reset", 10),
    POWER_CMD("cycle", "power cycle", 5),
    POWER_CMD("sleep", "deep sleep; needs the OS agent", 4),
    POWER_CMD("hibernate", "hibernate; needs the OS agent", 7),
    POWER_CMD("soft-off", "graceful shutdown; needs the OS agent", 12),
    POWER_CMD("soft-reset", "graceful reset; needs the OS agent", 14),
    {"power state", "<guid>... | --tag TAG", "Read the power state (CIM PowerState and OS power saving state)",
     "Asks each device for its power state (devices/<guid>/cmd/power_state):\n"
     "CIM PowerState 2 on, 3 light sleep, 4 deep sleep, 6 off (hard), 7 hibernate,\n"
     "8 off (soft), 13 off (hard, graceful); OSPowerSavingState 2 full power, 3 saving.\n\n"
     "Examples:\n"
     "  dmtctl power state 4c4c4544-004b-4210-8033-b6c04f504633\n"
     "  dmtctl power state --tag lab1 -o json",
     target_flags, 0, -1, run_state, 0, "guid"},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, 0, NULL},
};
