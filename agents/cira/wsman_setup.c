/*
 * Remote deactivation: AMT_SetupAndConfigurationService.Unprovision(1). As
 * DMT's MPS does on success, the device row and its credentials are removed
 * (tenant-scoped) and its retained state is deleted (an empty retained
 * payload); the connection is marked so its coming close (the device drops
 * its tunnel once unprovisioned) publishes nothing that would resurrect it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cira.h"
#include "dmt/mptree.h"
#include "dmt/pg.h"

struct cleanup {
  struct cira_server *srv;
  char tenant[65], guid[37];
};

static int remove_device(PGconn *db, void *arg) {
  struct cleanup *k = arg;
  char path[64], err[256];
  snprintf(path, sizeof path, "devices/%s", k->guid);
  const char *p[] = {k->guid, k->tenant};
  int rc = dmt_pg_exec(db, "DELETE FROM dmt.devices WHERE guid = $1 AND tenant_id = $2", 2, p, NULL, err, sizeof err);
  if (rc != DMT_PG_OK) return rc;
  if (k->srv->secrets && dmt_secrets_delete(k->srv->secrets, db, k->tenant, path, err, sizeof err) == DMT_SECRETS_ERROR &&
      PQstatus(db) != CONNECTION_OK)
    return DMT_PG_CONN_LOST;
  return DMT_PG_OK;
}

static void removed(void *arg, int rc) {
  struct cleanup *k = arg;
  if (rc == DMT_PG_OK) state_delete(k->srv, k->tenant, k->guid);
  else DMT_ERROR(&k->srv->log, "deactivate_cleanup_failed", "guid=%s", k->guid);
  free(k);
}

static void unprovisioned(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  const msgpack_object *out = dmt_mp_get(shape_body(wsman_tree(call)), "Unprovision_OUTPUT");
  int64_t rv = -1;
  dmt_mp_int(dmt_mp_get(out, "ReturnValue"), &rv);
  if (rv != 0) { /* DMT answers the output object itself, still with 200 */
    if (out) msgpack_pack_object(&c->pk, *out);
    else msgpack_pack_map(&c->pk, 0);
    cmd_done(c, 200);
    return;
  }
  c->conn->deactivated = true;
  struct cleanup *k = calloc(1, sizeof *k);
  if (k) {
    k->srv = c->srv;
    snprintf(k->tenant, sizeof k->tenant, "%s", c->tenant);
    snprintf(k->guid, sizeof k->guid, "%s", c->guid);
    if (dmt_db_submit(c->srv->db, remove_device, removed, k) != 0) free(k);
  }
  msgpack_pack_map(&c->pk, 1);
  shape_str(&c->pk, "status");
  shape_str(&c->pk, "SUCCESS");
  cmd_done(c, 200);
}

void verb_deactivate(struct cmd *c) {
  struct dmt_wsman_param p[] = {{"ProvisioningMode", "1", false}};
  cmd_invoke(c, "AMT_SetupAndConfigurationService", "Unprovision", NULL, 0, p, 1, unprovisioned);
}
