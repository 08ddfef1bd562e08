/*
 * Instance liveness (schemas/topics.md): each terminator publishes a
 * retained dmt/_sys/instances/<id> {online:true} and leaves {online:false} as
 * its MQTT will. When a peer goes offline (crash, kill, network loss), the
 * surviving instances race to claim its devices with one
 * UPDATE ... WHERE mps_instance = <dead> RETURNING; only the winner gets rows,
 * and it republishes those devices as disconnected, skipping any that have
 * already reconnected to it. On a clean shutdown an instance does the same
 * for its own devices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/payloads.h"
#include "dmt/pg.h"
#include "wsman_client.h"

#define INSTANCES_FILTER "dmt/_sys/instances/+"

static int encode_status(struct cira_server *s, bool online, msgpack_sbuffer *sb) {
  char err[128];
  struct dmt_instance_status st = {.instance = s->instance, .agent = "cira", .online = online,
                                   .started_ms = (int64_t)dmt_wall_ms(),
                                   .present = DMT_INSTANCE_STATUS_ONLINE | DMT_INSTANCE_STATUS_STARTED_MS};
  return dmt_instance_status_encode(&st, sb, err, sizeof err);
}

int instances_start(struct cira_server *s) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char topic[192];
  snprintf(topic, sizeof topic, "dmt/_sys/instances/%s", s->instance);
  int rc = encode_status(s, true, &sb);
  struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1, .retain = true};
  if (rc == 0) rc = dmt_mqtt_publish(s->mqtt, &p);
  msgpack_sbuffer_destroy(&sb);
  dmt_mqtt_subscribe(s->mqtt, INSTANCES_FILTER, 1);
  return rc;
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
  return dmt_pg_exec(db,
                     "UPDATE dmt.devices SET connection_status = false, mps_instance = NULL, last_disconnected = now() "
                     "WHERE mps_instance = $1 RETURNING guid, tenant_id, coalesce(hostname, ''), "
                     "coalesce(friendly_name, ''), array_to_string(tags, chr(31))",
                     1, p, &k->rows, err, sizeof err);
}

static void claimed(void *arg, int rc) {
  struct claim *k = arg;
  struct cira_server *s = k->srv;
  int n = k->rows ? PQntuples(k->rows) : 0, published = 0;
  for (int i = 0; i < n; i++) {
    const char *guid = PQgetvalue(k->rows, i, 0);
    if (registry_find(s, guid)) continue; /* already back, on us */
    struct cira_conn ghost = {.srv = s};
    snprintf(ghost.guid, sizeof ghost.guid, "%s", guid);
    snprintf(ghost.tenant, sizeof ghost.tenant, "%s", PQgetvalue(k->rows, i, 1));
    snprintf(ghost.hostname, sizeof ghost.hostname, "%s", PQgetvalue(k->rows, i, 2));
    snprintf(ghost.friendly_name, sizeof ghost.friendly_name, "%s", PQgetvalue(k->rows, i, 3));
    snprintf(ghost.tags, sizeof ghost.tags, "%s", PQgetvalue(k->rows, i, 4));
    char why[192];
    snprintf(why, sizeof why, "terminator instance %s %s", k->dead,
             strcmp(k->dead, s->instance) ? "went offline" : "shut down");
    registry_publish_state(&ghost, false, why);
    event_emit(s, ghost.tenant, ghost.guid, "disconnected", "instance_lost", true, NULL, why, NULL, 0);
    published++;
  }
  if (n) DMT_INFO(&s->log, "instance_cleanup", "dead=%s claimed=%d republished=%d", k->dead, n, published);
  if (!strcmp(k->dead, s->instance)) s->shutdown_claimed = true;
  PQclear(k->rows);
  free(k);
}

static void claim(struct cira_server *s, const char *instance) {
  struct claim *k = calloc(1, sizeof *k);
  if (!k) return;
  k->srv = s;
  snprintf(k->dead, sizeof k->dead, "%s", instance);
  if (dmt_db_submit(s->db, claim_devices, claimed, k) != 0) {
    free(k);
    if (!strcmp(instance, s->instance)) s->shutdown_claimed = true;
  }
}

void instances_on_message(struct cira_server *s, const struct dmt_mqtt_msg *m) {
  const char *id = m->topic + strlen("dmt/_sys/instances/");
  if (m->len == 0 || !strcmp(id, s->instance)) return;
  struct dmt_instance_status st;
  char err[128];
  if (dmt_instance_status_decode(m->payload, m->len, &st, err, sizeof err) != 0) return;
  if (!strcmp(st.agent, "cira") && !st.online) {
    DMT_INFO(&s->log, "peer_offline", "instance=%s", id);
    claim(s, id);
  }
  dmt_instance_status_free(&st);
}

void instances_release_own(struct cira_server *s) { claim(s, s->instance); }

void instances_mark_shutdown(struct cira_server *s) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char topic[192];
  snprintf(topic, sizeof topic, "dmt/_sys/instances/%s", s->instance);
  if (encode_status(s, false, &sb) == 0) {
    struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1, .retain = true};
    dmt_mqtt_publish(s->mqtt, &p);
  }
  msgpack_sbuffer_destroy(&sb);
}
