/*
 * dmtctl devices list|get: the tenant's devices as the retained `state`
 * topics describe them (schemas/topics.md). One subscription, no polling and
 * no bridge: the barrier in ctl_session_subscribe() tells when the broker has
 * delivered every retained state.
 */
#include <stdlib.h>
#include <string.h>

#include "dmtctl.h"

static const char *state_text(const json_t *st, const char *key, char *buf, size_t len) {
  return ctl_json_text(json_object_get(st, key), buf, len);
}

static const char *state_time(const json_t *st, const char *key, char *buf, size_t len) {
  const json_t *v = json_object_get(st, key);
  if (!json_is_integer(v) || json_integer_value(v) <= 0) {
    buf[0] = '\0';
    return buf;
  }
  return ctl_time_fmt((uint64_t)json_integer_value(v), buf, len);
}

static const char *status_text(const json_t *st) {
  return json_is_true(json_object_get(st, "connected")) ? "connected" : "disconnected";
}

static const char *power_text(const json_t *st) {
  const json_t *p = json_object_get(st, "power_state");
  return ctl_power_name(json_is_integer(p) ? json_integer_value(p) : 0);
}

static bool status_matches(const json_t *st, const char *want) {
  return !want || !strcmp(want, status_text(st));
}

static int run_list(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  const char *tag = ctl_arg(a, "tag"), *status = ctl_arg(a, "status");
  if (status && strcmp(status, "connected") && strcmp(status, "disconnected"))
    return ctl_fail(c, CTL_USAGE, "--status must be connected or disconnected");
  struct ctl_session *s;
  int rc = ctl_session_open(c, &s);
  if (rc != CTL_OK) return rc;
  struct ctl_snapshot snap;
  rc = ctl_snapshot_load(s, &snap, NULL, 0);
  if (rc != CTL_OK) {
    ctl_snapshot_free(&snap);
    ctl_session_close(s);
    return rc;
  }
  size_t n;
  const char **guids = tag ? ctl_snapshot_by_tag(&snap, tag, &n) : ctl_snapshot_all(&snap, &n);
  json_t *list = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *st = ctl_snapshot_get(&snap, guids[i]);
    if (status_matches(st, status)) json_array_append(list, st);
  }
  size_t shown = json_array_size(list);
  if (c->fmt == CTL_FMT_JSON || c->fmt == CTL_FMT_YAML) {
    ctl_print_value(c, list);
  } else if (c->fmt == CTL_FMT_NAME) {
    size_t i;
    json_t *st;
    json_array_foreach(list, i, st) fprintf(c->out, "%s\n", json_string_value(json_object_get(st, "guid")));
  } else if (shown == 0) {
    fprintf(c->err, "No devices found in tenant %s.\n", c->tenant_topic);
  } else {
    bool wide = c->fmt == CTL_FMT_WIDE;
    static const char *const narrow_h[] = {"GUID", "HOSTNAME", "STATUS", "POWER", "AMT", "TAGS"};
    static const char *const wide_h[] = {"GUID", "HOSTNAME", "STATUS", "POWER", "AMT", "TAGS",
                                         "MODE", "INSTANCE", "FRIENDLY NAME", "UPDATED"};
    struct ctl_table t;
    ctl_table_init(&t, wide ? wide_h : narrow_h, wide ? 10 : 6);
    size_t i;
    json_t *st;
    json_array_foreach(list, i, st) {
      char host[300], ver[64], tags[1024], mode[16], inst[160], fname[300], upd[40];
      const char *row[] = {json_string_value(json_object_get(st, "guid")), state_text(st, "hostname", host, sizeof host),
                           status_text(st), power_text(st), state_text(st, "amt_version", ver, sizeof ver),
                           state_text(st, "tags", tags, sizeof tags), state_text(st, "mode", mode, sizeof mode),
                           state_text(st, "instance", inst, sizeof inst),
                           state_text(st, "friendly_name", fname, sizeof fname),
                           state_time(st, "updated_ms", upd, sizeof upd)};
      ctl_table_row(&t, row);
    }
    ctl_table_print(c->out, &t);
    ctl_table_free(&t);
  }
  json_decref(list);
  free(guids);
  ctl_snapshot_free(&snap);
  ctl_session_close(s);
  return CTL_OK;
}

static int run_get(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  char guid[37];
  if (!ctl_guid_norm(a->pos[0], guid))
    return ctl_fail(c, CTL_USAGE, "`%s` is not a device GUID (8-4-4-4-12 hex digits)", a->pos[0]);
  struct ctl_session *s;
  int rc = ctl_session_open(c, &s);
  if (rc != CTL_OK) return rc;
  struct ctl_snapshot snap;
  const char *one[] = {guid};
  rc = ctl_snapshot_load(s, &snap, one, 1);
  json_t *st = rc == CTL_OK ? ctl_snapshot_get(&snap, guid) : NULL;
  if (rc == CTL_OK && !st)
    rc = ctl_fail(c, CTL_NOT_FOUND, "device %s not found in tenant %s (no published state)", guid, c->tenant_topic);
  if (st) {
    if (c->fmt == CTL_FMT_JSON || c->fmt == CTL_FMT_YAML) {
      ctl_print_value(c, st);
    } else if (c->fmt == CTL_FMT_NAME) {
      fprintf(c->out, "%s\n", guid);
    } else {
      char b[12][300];
      const json_t *ps = json_object_get(st, "power_state");
      char power[64];
      snprintf(power, sizeof power, "%s (%lld)", power_text(st), json_is_integer(ps) ? (long long)json_integer_value(ps) : 0LL);
      const char *keys[] = {"GUID", "Tenant", "Status", "Power", "Hostname", "Friendly name", "Tags", "AMT version",
                            "Mode", "Instance", "Last connected", "Last seen", "Last disconnected",
                            "Disconnect reason", "Updated"};
      const char *vals[] = {guid, c->tenant_topic, status_text(st), power, state_text(st, "hostname", b[0], 300),
                            state_text(st, "friendly_name", b[1], 300), state_text(st, "tags", b[2], 300),
                            state_text(st, "amt_version", b[3], 300), state_text(st, "mode", b[4], 300),
                            state_text(st, "instance", b[5], 300), state_time(st, "last_connected_ms", b[6], 300),
                            state_time(st, "last_seen_ms", b[7], 300), state_time(st, "last_disconnected_ms", b[8], 300),
                            state_text(st, "disconnect_reason", b[9], 300), state_time(st, "updated_ms", b[10], 300)};
      ctl_print_kv(c->out, keys, vals, sizeof keys / sizeof keys[0]);
    }
  }
  ctl_snapshot_free(&snap);
  ctl_session_close(s);
  return rc;
}

static const struct ctl_flag list_flags[] = {
    {"tag", 0, "TAG[,TAG...]", "only devices carrying one of these tags", NULL},
    {"status", 0, "STATUS", "only connected or disconnected devices", "connected|disconnected"},
    {NULL, 0, NULL, NULL, NULL},
};

const struct ctl_cmd ctl_cmds_devices[] = {
    {"devices list", "", "List the tenant's devices from their retained state",
     "Subscribes once to dmt/v1/<tenant>/devices/+/state and prints what the broker\n"
     "holds retained for every device: connection, power state, AMT version, tags.\n"
     "No polling and no bridge: the state is what the terminators published.\n\n"
     "Examples:\n"
     "  dmtctl devices list\n"
     "  dmtctl devices list --tag lab1 --status connected -o wide\n"
     "  dmtctl devices list -o name | xargs dmtctl power state",
     list_flags, 0, 0, run_list, 0, NULL},
    {"devices get", "<guid>", "Show one device's retained state",
     "Examples:\n"
     "  dmtctl devices get 4c4c4544-004b-4210-8033-b6c04f504633\n"
     "  dmtctl devices get 4c4c4544-004b-4210-8033-b6c04f504633 -o json",
     NULL, 1, 1, run_get, 0, "guid"},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, 0, NULL},
};
