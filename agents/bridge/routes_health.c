/*
 * Service routes: health (MPS /api/v1/health, RPS /api/v1/admin/health),
 * version (both), the RPS admin root, and the MPS root CA (/api/v1/ciracert).
 *
 * Health answers DMT's shape {"db":{...},"secretStore":{...}} plus our
 * "broker" entry, and 503 when PostgreSQL, the secret store or the MQTT
 * broker is unusable. It probes the database with SELECT 1 within
 * bridge.health_timeout_ms, so an unreachable database shows up as 503
 * promptly instead of a request stuck behind reconnecting workers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/pg.h"

struct health {
  bool db_ok, secrets_ok, admin;
};

static json_t *health_body(struct br_txn *t, const struct health *h) {
  struct br_server *s = t->srv;
  const char *backend = dmt_config_str(s->cfg, "secrets.backend");
  bool vault = backend && !strcmp(backend, "vault");
  json_t *status = json_pack("{s:b,s:b,s:b,s:s}", "initialized", s->secrets != NULL, "sealed", !h->secrets_ok,
                             "standby", false, "version", vault ? "vault" : "dmt-embedded");
  return json_pack("{s:{s:s,s:s},s:{s:s,s:o},s:{s:s,s:s}}", "db", "name", "POSTGRES", "status",
                   h->db_ok ? "OK" : "UNREACHABLE", "secretStore", "name", vault ? "VAULT" : "EMBEDDED", "status",
                   status, "broker", "name", "MQTT", "status", s->mqtt_up ? "OK" : "UNREACHABLE");
}

static void health_answer(struct br_txn *t, const struct health *h) {
  bool ok = h->db_ok && h->secrets_ok && t->srv->mqtt_up;
  br_respond_json(t, ok ? 200 : 503, health_body(t, h));
}

static int health_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  struct health *h = t->ctx;
  h->db_ok = br_sql_ok(c, o, "SELECT 1", 0, NULL);
  char err[256];
  h->secrets_ok = h->db_ok && t->srv->secrets && dmt_secrets_health(t->srv->secrets, c, err, sizeof err) == 0;
  return DMT_PG_OK; /* status 0: continue in health_then */
}

static void health_then(struct br_txn *t) { health_answer(t, t->ctx); }

static void health_timeout(struct br_txn *t) {
  struct health h = {0}; /* the probe did not come back in time: the database counts as unreachable */
  br_out_json(&t->out, 503, health_body(t, &h));
}

static void health(struct br_txn *t) {
  struct health *h = calloc(1, sizeof *h);
  if (!h) {
    br_out_empty(&t->out, 500);
    br_send(t);
    return;
  }
  t->ctx = h;
  t->ctx_free = free;
  t->then = health_then;
  t->on_timeout = health_timeout;
  br_txn_arm_timeout(t, t->srv->health_timeout_ms);
  br_db_run(t, health_work);
}

static void version(struct br_txn *t) {
  br_respond_json(t, 200, json_pack("{s:s}", "serviceVersion", BR_SERVICE_VERSION));
}

static void admin_version(struct br_txn *t) {
  br_respond_json(t, 200, json_pack("{s:s,s:s}", "serviceVersion", BR_RPS_SERVICE_VERSION, "protocolVersion",
                                    BR_RPS_PROTOCOL_VERSION));
}

static void admin_root(struct br_txn *t) {
  br_respond_json(t, 200, json_pack("{s:s}", "message", "admin path. use admin/profiles"));
}

static void send_pem(struct br_out *o, const char *pem, size_t len) {
  br_out_raw(o, 200, "text/plain; charset=utf-8", pem, len);
}

static int ciracert_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  struct br_server *s = t->srv;
  json_t *obj = NULL;
  char err[256];
  int rc = s->secrets ? dmt_secrets_get(s->secrets, c, "", "MPSCerts", &obj, err, sizeof err) : DMT_SECRETS_ERROR;
  const char *pem = rc == DMT_SECRETS_OK ? json_string_value(json_object_get(obj, "ROOT_CERTIFICATE")) : NULL;
  if (pem) send_pem(o, pem, strlen(pem));
  else if (rc == DMT_SECRETS_NOT_FOUND || (rc == DMT_SECRETS_OK && !pem))
    br_out_amt_error(o, 500, "the CIRA root certificate is not available yet (no terminator has created it)");
  else br_out_amt_error(o, 500, "the secret store is unavailable");
  dmt_secrets_wipe(obj);
  return DMT_PG_OK;
}

static void ciracert(struct br_txn *t) {
  const char *file = t->srv->ciracert_file;
  if (file) {
    FILE *f = fopen(file, "rb");
    char buf[65536];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    if (n) send_pem(&t->out, buf, n);
    else br_out_amt_error(&t->out, 500, "cannot read the CIRA root certificate file");
    br_send(t);
    return;
  }
  br_db_run(t, ciracert_work);
}

static const struct br_route routes[] = {
    {.methods = BR_M_GET, .pattern = "/api/v1/health", .handler = health, .chain = NULL, .flags = BR_RF_PUBLIC},
    {.methods = BR_M_GET, .pattern = "/api/v1/admin/health", .handler = health, .chain = NULL, .flags = BR_RF_PUBLIC},
    {.methods = BR_M_GET, .pattern = "/api/v1/version", .handler = version, .chain = NULL, .flags = BR_RF_PUBLIC},
    {.methods = BR_M_GET, .pattern = "/api/v1/admin/version", .handler = admin_version, .chain = NULL, .flags = BR_RF_PUBLIC},
    {.methods = BR_M_GET, .pattern = "/api/v1/admin", .handler = admin_root, .chain = NULL, .flags = BR_RF_PUBLIC},
    {.methods = BR_M_GET, .pattern = "/api/v1/ciracert", .handler = ciracert, .chain = NULL, .flags = 0},
};

const struct br_route_table br_routes_health = {routes, sizeof routes / sizeof routes[0]};
