/*
 * dmtctl events: follow the tenant's event stream live, filtered in the
 * topic (dmt/v1/<tenant>/devices/<guid|+>/events/<kind|#>, plus the
 * tenant-level dmt/v1/<tenant>/events/<kind|#>), one line per event
 * ("time kind guid outcome message") or JSON lines.
 *
 * --since first replays the persisted log through the bridge
 * (GET /api/v1/events?since=...) and then goes live without a gap or a
 * duplicate: the live subscription is made (and confirmed) before the
 * history is read, live events are held while the history prints, the tail
 * of the log is read once more after a short settle time (an event
 * published just before we subscribed may reach the table a moment later),
 * and everything is de-duplicated by event id across the boundary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/mptree.h"
#include "dmt/payloads.h"
#include "dmtctl.h"

#define PAGE 500
#define SETTLE_MS 1000u
#define TAIL_OVERLAP_MS 60000u
#define DEDUP_KEEP_MS 600000u

/* ---- de-duplication ---- */

void ctl_evdedup_init(struct ctl_evdedup *d, uint64_t horizon_ms) {
  dmt_strmap_init(&d->ids);
  d->horizon_ms = horizon_ms;
}

struct prune {
  uint64_t before;
  char **dead;
  size_t n, cap;
};

static void prune_one(const char *key, void *value, void *ud) {
  struct prune *p = ud;
  if ((uint64_t)(uintptr_t)value < p->before && p->n < p->cap) p->dead[p->n++] = strdup(key);
}

bool ctl_evdedup_admit(struct ctl_evdedup *d, const char *id, uint64_t ts_ms) {
  if (!id || !*id) return true;
  if (ts_ms < d->horizon_ms) return true; /* before the live stream could have delivered it */
  if (dmt_strmap_has(&d->ids, id)) return false;
  dmt_strmap_put(&d->ids, id, (void *)(uintptr_t)ts_ms, NULL);
  if (d->ids.len % 4096 == 0 && ts_ms > DEDUP_KEEP_MS) { /* keep memory bounded while following for days */
    struct prune p = {ts_ms - DEDUP_KEEP_MS, calloc(d->ids.len, sizeof(char *)), 0, d->ids.len};
    if (p.dead) dmt_strmap_foreach(&d->ids, prune_one, &p);
    for (size_t i = 0; i < p.n; i++) {
      dmt_strmap_del(&d->ids, p.dead[i]);
      free(p.dead[i]);
    }
    free(p.dead);
  }
  return true;
}

void ctl_evdedup_free(struct ctl_evdedup *d) { dmt_strmap_free(&d->ids); }

/* ---- one event shape for both sources ---- */

static const json_t *first_of(const json_t *o, const char *const *names) {
  for (; *names; names++) {
    const json_t *v = json_object_get(o, *names);
    if (v && !json_is_null(v)) return v;
  }
  return NULL;
}

static void copy_str(json_t *out, const char *key, const json_t *v) {
  if (json_is_string(v)) json_object_set_new(out, key, json_string(json_string_value(v)));
}

json_t *ctl_event_normalize(const json_t *in) {
  static const char *const ids[] = {"id", "eventId", "event_id", NULL};
  static const char *const ms[] = {"ts_ms", "tsMs", "timestamp_ms", NULL};
  static const char *const times[] = {"ts", "timestamp", "time", "createdAt", NULL};
  static const char *const tenants[] = {"tenant", "tenantId", "tenant_id", NULL};
  static const char *const guids[] = {"guid", "deviceId", "device_id", NULL};
  if (!json_is_object(in)) return NULL;
  const json_t *id = first_of(in, ids), *kind = json_object_get(in, "kind");
  if (!json_is_string(id) || !json_is_string(kind)) return NULL;
  uint64_t ts = 0;
  const json_t *t = first_of(in, ms);
  if (json_is_integer(t)) {
    ts = (uint64_t)json_integer_value(t);
  } else if ((t = first_of(in, times))) {
    if (json_is_string(t)) {
      if (ctl_parse_time(json_string_value(t), 0, &ts) != 0) ts = 0;
    } else if (json_is_number(t)) {
      double v = json_number_value(t);
      ts = (uint64_t)(v > 1e12 ? v : v * 1000.0);
    }
  }
  char when[40];
  json_t *out = json_object();
  copy_str(out, "id", id);
  json_object_set_new(out, "ts_ms", json_integer((json_int_t)ts));
  json_object_set_new(out, "time", json_string(ctl_time_fmt(ts, when, sizeof when)));
  copy_str(out, "tenant", first_of(in, tenants));
  copy_str(out, "guid", first_of(in, guids));
  copy_str(out, "kind", kind);
  static const char *const plain[] = {"action", "outcome", "requester", "source", "message"};
  for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) copy_str(out, plain[i], json_object_get(in, plain[i]));
  const json_t *data = json_object_get(in, "data");
  if (data && !json_is_null(data)) json_object_set(out, "data", (json_t *)data);
  return out;
}

json_t *ctl_event_from_msgpack(const void *payload, size_t len) {
  struct dmt_event ev;
  char err[256];
  if (dmt_event_decode(payload, len, &ev, err, sizeof err) != 0) return NULL;
  dmt_event_free(&ev);
  json_t *raw = dmt_mp_buf_to_json(payload, len); /* validated above */
  json_t *out = ctl_event_normalize(raw);
  json_decref(raw);
  return out;
}

static const char *str_or(const json_t *ev, const char *key, const char *dflt) {
  const char *s = json_string_value(json_object_get(ev, key));
  return s && *s ? s : dflt;
}

void ctl_event_line(const json_t *ev, bool wide, char *buf, size_t len) {
  char when[40];
  ctl_time_fmt((uint64_t)json_integer_value(json_object_get(ev, "ts_ms")), when, sizeof when);
  const char *msg = str_or(ev, "message", str_or(ev, "action", "-"));
  int n = snprintf(buf, len, "%s  %-12s  %-36s  %-7s  %s", when, str_or(ev, "kind", "-"), str_or(ev, "guid", "-"),
                   str_or(ev, "outcome", "-"), msg);
  if (wide && n > 0 && (size_t)n < len)
    snprintf(buf + n, len - (size_t)n, "  action=%s requester=%s source=%s id=%s", str_or(ev, "action", "-"),
             str_or(ev, "requester", "-"), str_or(ev, "source", "-"), str_or(ev, "id", "-"));
  /* one event, one line: control characters from a device never break the stream */
  for (char *p = buf; *p; p++)
    if ((unsigned char)*p < 0x20) *p = ' ';
}

/* ---- the command ---- */

struct follow {
  struct ctl *c;
  struct ctl_session *s;
  struct ctl_evdedup dedup;
  bool holding;       /* catching up: live events wait in `held` */
  json_t *held;
  long limit;         /* 0 = none */
  long printed;
  bool done;
};

static void print_event(struct follow *f, const json_t *ev) {
  if (f->done) return;
  if (!ctl_evdedup_admit(&f->dedup, json_string_value(json_object_get(ev, "id")),
                         (uint64_t)json_integer_value(json_object_get(ev, "ts_ms"))))
    return;
  struct ctl *c = f->c;
  if (c->fmt == CTL_FMT_JSON) {
    char *s = json_dumps(ev, JSON_COMPACT);
    fprintf(c->out, "%s\n", s);
    free(s);
  } else if (c->fmt == CTL_FMT_YAML) {
    fprintf(c->out, "---\n");
    ctl_print_yaml(c->out, ev);
  } else if (c->fmt == CTL_FMT_NAME) {
    fprintf(c->out, "%s\n", str_or(ev, "id", "-"));
  } else {
    char line[2048];
    ctl_event_line(ev, c->fmt == CTL_FMT_WIDE, line, sizeof line);
    fprintf(c->out, "%s\n", line);
  }
  fflush(c->out);
  f->printed++;
  if (f->limit && f->printed >= f->limit) {
    f->done = true;
    ctl_session_stop(f->s);
  }
}

static void on_live(void *ud, const struct dmt_mqtt_msg *m) {
  struct follow *f = ud;
  if (!strstr(m->topic, "/events/")) return;
  json_t *ev = ctl_event_from_msgpack(m->payload, m->len);
  if (!ev) {
    if (f->c->verbose) fprintf(f->c->err, "dmtctl: ignoring a malformed event on %s\n", m->topic);
    return;
  }
  if (f->holding) json_array_append(f->held, ev);
  else print_event(f, ev);
  json_decref(ev);
}

static int cmp_events(const void *a, const void *b) {
  const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
  json_int_t tx = json_integer_value(json_object_get(x, "ts_ms")), ty = json_integer_value(json_object_get(y, "ts_ms"));
  if (tx != ty) return tx < ty ? -1 : 1;
  return strcmp(str_or(x, "id", ""), str_or(y, "id", ""));
}

static void print_sorted(struct follow *f, json_t *arr) {
  size_t n = json_array_size(arr);
  json_t **v = calloc(n ? n : 1, sizeof *v);
  for (size_t i = 0; v && i < n; i++) v[i] = json_array_get(arr, i);
  if (v) qsort(v, n, sizeof *v, cmp_events);
  for (size_t i = 0; v && i < n; i++) print_event(f, v[i]);
  free(v);
}

/* Appends the persisted events in [since, until) matching the filters to out. */
static int fetch_history(struct ctl *c, uint64_t since, uint64_t until, const char *guid, const char *kind,
                         json_t *out) {
  const char *bridge = ctl_bridge_url(c);
  if (!bridge) return ctl_fail(c, CTL_USAGE, "--since needs the bridge: set --bridge or DMTCTL_BRIDGE");
  for (size_t skip = 0;; skip += PAGE) {
    char path[1024] = "/api/v1/events", t[40], num[24];
    ctl_url_param(path, sizeof path, "since", ctl_time_fmt(since, t, sizeof t));
    if (until) ctl_url_param(path, sizeof path, "until", ctl_time_fmt(until, t, sizeof t));
    if (guid) ctl_url_param(path, sizeof path, "guid", guid);
    if (kind) ctl_url_param(path, sizeof path, "kind", kind);
    snprintf(num, sizeof num, "%d", PAGE);
    ctl_url_param(path, sizeof path, "$top", num);
    snprintf(num, sizeof num, "%zu", skip);
    ctl_url_param(path, sizeof path, "$skip", num);
    struct ctl_http_resp r;
    char err[512];
    int rc = ctl_http(c, "GET", bridge, path, NULL, &r, err, sizeof err);
    if (rc != CTL_OK) return ctl_fail(c, rc, "event history: %s", err);
    if (ctl_http_exit(r.status) != CTL_OK) {
      char e[256];
      rc = ctl_fail(c, ctl_http_exit(r.status), "event history: the bridge answered %d: %s", r.status,
                    ctl_http_error_text(&r, e, sizeof e));
      ctl_http_resp_free(&r);
      return rc;
    }
    const json_t *list = json_is_array(r.json) ? r.json : json_object_get(r.json, "data");
    if (!json_is_array(list)) {
      ctl_http_resp_free(&r);
      return ctl_fail(c, CTL_FAILED, "event history: the bridge's answer is not a list of events");
    }
    size_t i, n = json_array_size(list);
    json_t *x;
    json_array_foreach(list, i, x) {
      json_t *ev = ctl_event_normalize(x);
      if (ev) json_array_append_new(out, ev);
    }
    ctl_http_resp_free(&r);
    if (n < PAGE) return CTL_OK;
  }
}

static bool valid_kind(const char *k) {
  if (!*k || strlen(k) > 32) return false;
  for (const char *p = k; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
  return true;
}

static int run_events(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  const char *dev = ctl_arg(a, "device"), *kind = ctl_arg(a, "kind");
  const char *since_s = ctl_arg(a, "since"), *until_s = ctl_arg(a, "until"), *limit_s = ctl_arg(a, "limit");
  char guid[37] = "";
  if (dev && !ctl_guid_norm(dev, guid)) return ctl_fail(c, CTL_USAGE, "--device `%s` is not a device GUID", dev);
  if (kind && !valid_kind(kind))
    return ctl_fail(c, CTL_USAGE, "--kind `%s` is not an event kind (connected, disconnected, power, command, ...)",
                    kind);
  uint64_t now = dmt_wall_ms(), since = 0, until = 0;
  if (since_s && ctl_parse_time(since_s, now, &since) != 0)
    return ctl_fail(c, CTL_USAGE, "--since `%s`: use a duration (10m, 2h, 7d) or a time (2025-01-31T12:00:00Z)",
                    since_s);
  if (until_s && ctl_parse_time(until_s, now, &until) != 0)
    return ctl_fail(c, CTL_USAGE, "--until `%s`: use a duration or a time", until_s);
  if (until_s && !since_s) return ctl_fail(c, CTL_USAGE, "--until needs --since");
  bool follow_live = !until_s && !ctl_has(a, "no-follow");
  if (!follow_live && !since_s) return ctl_fail(c, CTL_USAGE, "--no-follow needs --since");
  long limit = 0;
  if (limit_s) {
    char *end;
    limit = strtol(limit_s, &end, 10);
    if (*end || limit <= 0) return ctl_fail(c, CTL_USAGE, "--limit needs a positive number");
  }

  struct follow f = {.c = c, .limit = limit, .held = json_array()};
  ctl_evdedup_init(&f.dedup, 0);
  int rc = CTL_OK;
  struct ctl_session *s = NULL;
  uint64_t t0 = now;
  if (follow_live) {
    rc = ctl_session_open(c, &s);
    if (rc != CTL_OK) goto out;
    f.s = s;
    char filters[2][256];
    size_t nf = 0;
    snprintf(filters[nf++], 256, "dmt/v1/%s/devices/%s/events/%s", c->tenant_topic, guid[0] ? guid : "+",
             kind ? kind : "#");
    if (!guid[0]) snprintf(filters[nf++], 256, "dmt/v1/%s/events/%s", c->tenant_topic, kind ? kind : "#");
    const char *fl[] = {filters[0], filters[1]};
    f.holding = since_s != NULL;
    ctl_session_on_message(s, on_live, &f);
    rc = ctl_session_subscribe(s, fl, nf);
    if (rc != CTL_OK) goto out;
    t0 = dmt_wall_ms();
    if (c->verbose) fprintf(c->err, "dmtctl: following %s%s%s\n", fl[0], nf > 1 ? " and " : "", nf > 1 ? fl[1] : "");
    /* Only events after the subscription (minus clock skew) can arrive twice. */
    f.dedup.horizon_ms = t0 > TAIL_OVERLAP_MS ? t0 - TAIL_OVERLAP_MS : 0;
  }
  if (since_s) {
    json_t *hist = json_array();
    rc = fetch_history(c, since, until, guid[0] ? guid : NULL, kind, hist);
    if (rc == CTL_OK) print_sorted(&f, hist);
    json_decref(hist);
    if (rc != CTL_OK || !follow_live || f.done) goto out;
    /* The tail: events published just before the subscription may be persisted a moment later. */
    ctl_session_run_for(s, SETTLE_MS);
    if (ctl_session_interrupted(s)) goto out;
    json_t *tail = json_array();
    uint64_t from = t0 > TAIL_OVERLAP_MS ? t0 - TAIL_OVERLAP_MS : 0;
    rc = fetch_history(c, from > since ? from : since, 0, guid[0] ? guid : NULL, kind, tail);
    if (rc == CTL_OK) {
      json_array_extend(tail, f.held);
      print_sorted(&f, tail);
    }
    json_decref(tail);
    json_array_clear(f.held);
    f.holding = false;
    if (rc != CTL_OK || f.done) goto out;
  }
  if (follow_live) ctl_session_run(s);
out:
  ctl_session_close(s);
  ctl_evdedup_free(&f.dedup);
  json_decref(f.held);
  return rc;
}

static const struct ctl_flag event_flags[] = {
    {"device", 0, "GUID", "only this device's events (filtered by the broker)", "guid"},
    {"kind", 0, "KIND", "only this kind (filtered by the broker)",
     "connected|disconnected|auth_failure|power|command|activation|deactivation|maintenance|config"},
    {"since", 0, "TIME", "first replay the persisted log from TIME (10m, 2h, 7d, or RFC 3339) through the bridge",
     NULL},
    {"until", 0, "TIME", "replay up to TIME and stop (with --since)", NULL},
    {"no-follow", 0, NULL, "replay (--since) and stop instead of following live", NULL},
    {"limit", 0, "N", "stop after N events", NULL},
    {NULL, 0, NULL, NULL, NULL},
};

const struct ctl_cmd ctl_cmds_events[] = {
    {"events", "", "Follow the tenant's device events live (optionally replaying the log first)",
     "Subscribes to dmt/v1/<tenant>/devices/<guid|+>/events/<kind|#> (and the tenant's\n"
     "own dmt/v1/<tenant>/events/...) and prints one line per event until Ctrl-C:\n"
     "  time  kind  guid  outcome  message\n"
     "-o json prints JSON lines, -o wide adds action, requester, source and id.\n"
     "--since replays the persisted log through the bridge first (GET /api/v1/events)\n"
     "and continues live with neither a gap nor a duplicate.\n\n"
     "Examples:\n"
     "  dmtctl events\n"
     "  dmtctl events --kind power --device 4c4c4544-004b-4210-8033-b6c04f504633\n"
     "  dmtctl events --since 2h -o json | jq .\n"
     "  dmtctl events --since 2025-01-31T00:00:00Z --until 2025-02-01T00:00:00Z",
     event_flags, 0, 0, run_events, 0, NULL},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, 0, NULL},
};
