/*
 * Instance liveness (schemas/topics.md). Each terminator publishes a retained
 * dmt/_sys/instances/<id> {online:true} and leaves {online:false} as its MQTT
 * will. When a peer goes offline (crash, kill, network loss) the surviving
 * instances race to claim its devices with one
 * UPDATE ... WHERE mps_instance = <dead> RETURNING; only the winner gets
 * rows, and it republishes those devices as disconnected (skipping any that
 * already reconnected to it). The same claim runs for our own name at start
 * (rows a previous run of ours left behind) and at a clean shutdown.
 *
 * If our own will fires while we are alive (we lost the broker for longer
 * than the keepalive), peers release our devices although we still hold
 * them: we announce ourselves online again and, a little later, re-assert
 * every device we hold (row and retained state), so the state converges back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cira.h"
#include "dmt/payloads.h"
#include "dmt/pg.h"

#define INSTANCES_FILTER "dmt/_sys/instances/+"
#define REASSERT_DELAY_MS 3000u

static int encode_status(struct cira_server *s, bool online, msgpack_sbuffer *sb) {
  char err[128];
  struct dmt_instance_status st = {.instance = s->instance, .agent = "cira", .online = online,
                                   .started_ms = (int64_t)dmt_wall_ms(),
                                   .present = DMT_INSTANCE_STATUS_ONLINE | DMT_INSTANCE_STATUS_STARTED_MS};
  return dmt_instance_status_encode(&st, sb, err, sizeof err);
}

static void publish_status(struct cira_server *s, bool online) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char topic[192];
  snprintf(topic, sizeof topic, "dmt/_sys/instances/%s", s->instance);
  if (encode_status(s, online, &sb) == 0) {
    struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1, .retain = true};
    dmt_mqtt_publish(s->mqtt, &p);
  }
  msgpack_sbuffer_destroy(&sb);
}

int instances_start(struct cira_server *s) {
  publish_status(s, true);
  dmt_mqtt_subscribe(s->mqtt, INSTANCES_FILTER, 1);
  dmt_mqtt_subscribe(s->mqtt, TAKEOVER_FILTER, 1);
  return 0;
}

static void reassert_one(struct cira_conn *c, void *ud) { state_reassert(c); }

static void on_reassert(struct dmt_loop *loop, struct dmt_timer *t) {
  struct cira_server *s = t->ud;
  if (s->shutting_down || !s->devices.len) return;
  DMT_INFO(&s->log, "devices_reasserted", "devices=%zu", s->devices.len);
  registry_each(s, reassert_one, NULL);
}

static void schedule_reassert(struct cira_server *s) { dmt_timer_start(s->loop, &s->reassert_timer, REASSERT_DELAY_MS); }

void instances_init(struct cira_server *s) { dmt_timer_init(&s->reassert_timer, on_reassert, s); }

void instances_on_connection(struct cira_server *s, bool up) {
  if (!up) {
    DMT_WARN(&s->log, "mqtt_down", "devices=%zu effect=\"states and events are buffered\"", s->devices.len);
    return;
  }
  /* (Re)announce: a broker restart may have lost the retained status, a long outage fired our will. */
  instances_start(s);
  if (++s->mqtt_ups > 1) schedule_reassert(s);
}

struct claim {
  struct cira_server *srv;
  char dead[128];
  PGresult *rows;
};

static int claim_devices(PGconn *db, void *arg) {
  struct claim *k = arg;
  const char *p[] = {k->dead};
  char err[256];
  /* Instance-scoped rather than tenant-scoped: an instance serves every tenant. */
  return dmt_pg_exec(db,
                     "UPDATE dmt.devices SET connection_status = false, mps_instance = NULL, last_disconnected = now() "
                     "WHERE mps_instance = $1 RETURNING guid::text, tenant_id, coalesce(hostname, ''), "
                     "coalesce(friendly_name, ''), array_to_string(tags, chr(31)), "
                     "coalesce(device_info->>'fwVersion', ''), extract(epoch from last_connected)::float8 * 1000",
                     1, p, &k->rows, err, sizeof err);
}

static void claimed(void *arg, int rc) {
  struct claim *k = arg;
  struct cira_server *s = k->srv;
  int n = k->rows ? PQntuples(k->rows) : 0, published = 0;
  bool own = !strcmp(k->dead, s->instance);
  char why[192];
  snprintf(why, sizeof why, "terminator instance %s %s", k->dead, own ? "restarted or shut down" : "went offline");
  for (int i = 0; i < n; i++) {
    struct state_snapshot g = {0};
    snprintf(g.guid, sizeof g.guid, "%s", PQgetvalue(k->rows, i, 0));
    if (registry_find(s, g.guid)) continue; /* already back, on us: our own write follows */
    snprintf(g.tenant, sizeof g.tenant, "%s", PQgetvalue(k->rows, i, 1));
    const char *h = PQgetvalue(k->rows, i, 2), *f = PQgetvalue(k->rows, i, 3), *t = PQgetvalue(k->rows, i, 4);
    g.hostname = *h ? (char *)h : NULL;
    g.friendly_name = *f ? (char *)f : NULL;
    g.tags = *t ? (char *)t : NULL;
    snprintf(g.amt_version, sizeof g.amt_version, "%s", PQgetvalue(k->rows, i, 5));
    g.connected_ms = (uint64_t)strtod(PQgetvalue(k->rows, i, 6), NULL);
    snprintf(g.reason, sizeof g.reason, "%.127s", why);
    state_publish(s, &g);
    event_emit(s, g.tenant, g.guid, "disconnected", "instance_lost", true, NULL, why, NULL, 0);
    published++;
  }
  if (n || rc != DMT_PG_OK)
    DMT_INFO(&s->log, "instance_cleanup", "instance=%s claimed=%d republished=%d ok=%d", k->dead, n, published,
             rc == DMT_PG_OK);
  if (own) s->shutdown_claimed = true;
  PQclear(k->rows);
  free(k);
}

static void claim(struct cira_server *s, const char *instance) {
  struct claim *k = calloc(1, sizeof *k);
  if (k) {
    k->srv = s;
    snprintf(k->dead, sizeof k->dead, "%s", instance);
  }
  if (!k || dmt_db_submit(s->db, claim_devices, claimed, k) != 0) {
    free(k);
    if (!strcmp(instance, s->instance)) s->shutdown_claimed = true;
  }
}

void instances_on_message(struct cira_server *s, const struct dmt_mqtt_msg *m) {
  const char *id = m->topic + strlen("dmt/_sys/instances/");
  if (m->len == 0) return;
  struct dmt_instance_status st;
  char err[128];
  if (dmt_instance_status_decode(m->payload, m->len, &st, err, sizeof err) != 0) return;
  if (!strcmp(id, s->instance)) {
    if (!st.online && !s->shutting_down) {
      /* Our will: peers are releasing our devices while we still hold them. */
      DMT_WARN(&s->log, "own_will_seen", "devices=%zu action=\"announce and re-assert\"", s->devices.len);
      publish_status(s, true);
      schedule_reassert(s);
    }
  } else if (!strcmp(st.agent, "cira") && !st.online) {
    DMT_INFO(&s->log, "peer_offline", "instance=%s", id);
    claim(s, id);
  }
  dmt_instance_status_free(&st);
}

void instances_release_own(struct cira_server *s) {
  s->shutdown_claimed = false;
  claim(s, s->instance);
}

void instances_mark_shutdown(struct cira_server *s) { publish_status(s, false); }
