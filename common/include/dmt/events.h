/*
 * Emitting an event (schemas/payloads/event.json) the way the contract asks:
 * published on the tenant's namespace (schemas/topics.md) and persisted to
 * dmt.events through a database worker, so a consumer that was down catches
 * up by time range. The topic is
 *   dmt/v1/<tenant>/devices/<guid>/events/<kind>   (guid set)
 *   dmt/v1/<tenant>/events/<kind>                  (no guid)
 *   dmt/_sys/events/<kind>                         (tenant NULL: no tenant known)
 * with DMT's default tenant "" spelled "_default". Never put a secret in
 * message or data.
 */
#ifndef DMT_EVENTS_H
#define DMT_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

struct dmt_mqtt;
struct dmt_db;

struct dmt_event_spec {
  const char *tenant;     /* NULL: system namespace */
  const char *guid;       /* NULL for tenant-level events */
  const char *kind;       /* activation, deactivation, ... */
  const char *action;     /* optional */
  bool success;
  const char *requester;  /* optional */
  const char *source;     /* agent instance */
  const char *message;    /* optional */
  const void *data;       /* optional msgpack map */
  size_t data_len;
};

/* "_default" for "" (or NULL), else the tenant itself. */
const char *dmt_topic_tenant(const char *tenant);

/* A random (version 4) UUID, lowercase. */
void dmt_uuid4(char out[37]);

/*
 * Publishes (QoS 1) and queues the INSERT. Either may be NULL (publish only /
 * persist only). Returns 0, or -1 when the event could not be encoded.
 */
int dmt_event_emit(struct dmt_mqtt *mqtt, struct dmt_db *db, const struct dmt_event_spec *e);

#endif
