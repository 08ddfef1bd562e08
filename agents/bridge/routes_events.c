/*
 * GET /api/v1/events: the persisted audit/event log (dmt.events) of the
 * caller's tenant, oldest first, so a consumer that was down can catch up by
 * time range: since (inclusive) / until (exclusive) as ISO 8601 or unix
 * milliseconds, deviceId (alias guid), kind, and $top (default 100, at most
 * 1000) / $skip / $count as on every list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/pg.h"

static bool when(const char *s) {
  if (!*s) return false;
  bool digits = true;
  for (const char *p = s; *p; p++) digits &= *p >= '0' && *p <= '9';
  return (digits && strlen(s) <= 15) || br_fmt_iso8601(s);
}

static bool kind(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 32) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || *s == '_')) return false;
  return true;
}

#define WHEN_MSG "must be an ISO 8601 date or unix milliseconds"
BR_CHAIN(events_chain, V_FIELD_AT(BR_LOC_QUERY, "since", BR_OPTIONAL, V_MATCH(when, "since " WHEN_MSG)),
         V_FIELD_AT(BR_LOC_QUERY, "until", BR_OPTIONAL, V_MATCH(when, "until " WHEN_MSG)),
         V_FIELD_AT(BR_LOC_QUERY, "deviceId", BR_OPTIONAL, V_UUID("deviceId must be a device GUID")),
         V_FIELD_AT(BR_LOC_QUERY, "guid", BR_OPTIONAL, V_UUID("guid must be a device GUID")),
         V_FIELD_AT(BR_LOC_QUERY, "kind", BR_OPTIONAL, V_MATCH(kind, "kind must be an event kind (e.g. power, config)")));

#define TS_ARG(n) "CASE WHEN $" #n " ~ '^[0-9]+$' THEN to_timestamp($" #n "::bigint / 1000.0) ELSE $" #n "::timestamptz END"

static int events_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  const struct br_page *pg = t->ctx;
  char top[32], skip[32];
  snprintf(top, sizeof top, "%lld", pg->top);
  snprintf(skip, sizeof skip, "%lld", pg->skip);
  const char *guid = br_query(t, "deviceId") ? br_query(t, "deviceId") : br_query(t, "guid");
  const char *p[] = {t->who.tenant, br_query(t, "since"), br_query(t, "until"), guid, br_query(t, "kind"), top, skip};
  char sql[2048];
  snprintf(sql, sizeof sql,
           "WITH f AS (SELECT * FROM dmt.events e WHERE e.tenant_id = $1 AND ($2::text IS NULL OR e.ts >= " TS_ARG(2) ") "
           "AND ($3::text IS NULL OR e.ts < " TS_ARG(3) ") AND ($4::uuid IS NULL OR e.guid = $4::uuid) "
           "AND ($5::text IS NULL OR e.kind = $5)) "
           "SELECT coalesce(json_agg(j ORDER BY ts, id), '[]')::text, %s FROM (SELECT json_build_object('id', e.id, "
           "'ts', dmt.js_ts(e.ts), 'tsMs', (extract(epoch FROM e.ts) * 1000)::bigint, 'tenantId', e.tenant_id, "
           "'guid', e.guid, 'kind', e.kind, 'action', e.action, 'outcome', e.outcome, 'requester', e.requester, "
           "'source', e.source, 'message', e.message, 'data', e.data) AS j, e.ts, e.id FROM f e ORDER BY e.ts, e.id "
           "LIMIT $6::bigint OFFSET $7::bigint) s",
           pg->count ? "(SELECT count(*) FROM f)" : "0");
  PGresult *r = br_sql(c, o, sql, 7, p);
  if (!r) {
    if (!strncmp(o->sqlstate, "22", 2)) br_out_error(o, 400, "Incorrect URI or Bad Request", "invalid time range");
    else br_out_unexpected(o, "GET", "events");
    return DMT_PG_OK;
  }
  br_out_page(o, r, pg->count);
  PQclear(r);
  return DMT_PG_OK;
}

static void events(struct br_txn *t) { br_list_paged(t, 100, 1000, events_work); }

static const struct br_route routes[] = {
    {.methods = BR_M_GET, .pattern = "/api/v1/events", .handler = events, .chain = &events_chain, .flags = 0, .data = NULL},
};

const struct br_route_table br_routes_events = {routes, sizeof routes / sizeof routes[0]};
