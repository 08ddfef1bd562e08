/*
 * DMT's status object (rps-activation.md §1.7): the terminal message's
 * `message` is this object as a JSON string: the flat strings Status,
 * Network, CIRAConnection, TLSConfiguration (rpc-go reads only these) and
 * Components, one entry per configuration area, with Result Success /
 * Failure / NotApplicable. Also the small name list the flows iterate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rps.h"

void name_list_clear(struct name_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

int name_list_add(struct name_list *l, const char *s) {
  char **v = realloc(l->v, (l->n + 1) * sizeof *v);
  if (!v) return -1;
  l->v = v;
  if (!(v[l->n] = strdup(s))) return -1;
  l->n++;
  return 0;
}

/* ---- status (§1.7) ---- */

static json_t *component(const struct rps_component *c, const char *na_details) {
  json_t *o = json_object();
  json_object_set_new(o, "Result", json_string(c->result ? c->result : "NotApplicable"));
  if (c->mode[0]) json_object_set_new(o, "Mode", json_string(c->mode));
  const char *d = c->result ? c->details : na_details;
  if (d && *d) json_object_set_new(o, "Details", json_string(d));
  return o;
}

char *rps_status_json(const struct rps_status *st) {
  json_t *o = json_object();
  json_object_set_new(o, "Status", json_string(st->status));
  if (st->activation.result || st->wired.result || st->cira_conn.result) {
    json_t *c = json_object();
    json_object_set_new(c, "Activation", component(&st->activation, "Activation not part of this configuration"));
    json_object_set_new(c, "WiredNetwork", component(&st->wired, "Wired network not part of this configuration"));
    json_object_set_new(c, "WirelessNetwork",
                        component(&st->wireless, "Wireless network not part of this configuration"));
    json_object_set_new(c, "TLS", component(&st->tls_c, "TLS not part of this configuration"));
    json_object_set_new(c, "CIRAProxy", component(&st->cira_proxy, "CIRA proxy not part of this configuration"));
    json_object_set_new(c, "CIRAConnection", component(&st->cira_conn, "CIRA not part of this configuration"));
    json_object_set_new(o, "Components", c);
  }
  if (st->network[0]) json_object_set_new(o, "Network", json_string(st->network));
  if (st->cira[0]) json_object_set_new(o, "CIRAConnection", json_string(st->cira));
  if (st->tls[0]) json_object_set_new(o, "TLSConfiguration", json_string(st->tls));
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  return s;
}

