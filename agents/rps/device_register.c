/*
 * The device record: the dmt.devices row (tenant, hostname, profile tags,
 * friendly name, DNS suffix, mps_username = the CIRA config's username,
 * device_info as DMT's RPS posts it to MPS, §2.10) and the devices/<guid>
 * secret {AMT_PASSWORD, MEBX_PASSWORD (ACM), MPS_PASSWORD (CIRA)} that the
 * terminator reads for the CIRA login and WS-Man digest.
 *
 * Both are written in one PostgreSQL transaction (the embedded secret store
 * runs its SQL on the same connection), so a reader never sees a row without
 * its secret or a secret without its row. A device re-activated from
 * pre-provisioning under another tenant loses its old record in the same
 * transaction. Deletion (deactivation) removes both, also in one
 * transaction. The values are copied when the write is submitted: the
 * worker never reads the job.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmt/pg.h"
#include "rps.h"

enum reg_kind { REG_SAVE, REG_DELETE, REG_PASSWORD, REG_INFO };

struct reg_req {
  struct rps_job *j;
  void (*done)(struct rps_job *j, bool ok);
  enum reg_kind kind;
  char tenant[65], guid[37];
  char *hostname, *friendly_name, *dns_suffix, *tags, *mps_username, *device_info;
  json_t *secret;
  uint64_t t0;
  char err[256];
};

static void req_free(struct reg_req *q) {
  free(q->hostname);
  free(q->friendly_name);
  free(q->dns_suffix);
  free(q->tags);
  free(q->mps_username);
  free(q->device_info);
  dmt_secrets_wipe(q->secret);
  free(q);
}

/* A PostgreSQL text[] literal with every element quoted. */
static char *tags_literal(char **tags, size_t n) {
  size_t cap = 3;
  for (size_t i = 0; i < n; i++) cap += 2 * strlen(tags[i]) + 3;
  char *out = malloc(cap), *w = out;
  if (!out) return NULL;
  *w++ = '{';
  for (size_t i = 0; i < n; i++) {
    if (i) *w++ = ',';
    *w++ = '"';
    for (const char *p = tags[i]; *p; p++) {
      if (*p == '"' || *p == '\\') *w++ = '\\';
      *w++ = *p;
    }
    *w++ = '"';
  }
  *w++ = '}';
  *w = '\0';
  return out;
}

static int rollback(PGconn *db, int rc) {
  char err[128];
  if (PQstatus(db) == CONNECTION_OK) dmt_pg_exec(db, "ROLLBACK", 0, NULL, NULL, err, sizeof err);
  return rc == DMT_PG_CONN_LOST || PQstatus(db) != CONNECTION_OK ? DMT_PG_CONN_LOST : DMT_PG_ERROR;
}

static int secret_rc(PGconn *db, int src) {
  if (src == DMT_SECRETS_OK || src == DMT_SECRETS_NOT_FOUND) return DMT_PG_OK;
  return PQstatus(db) != CONNECTION_OK ? DMT_PG_CONN_LOST : DMT_PG_ERROR;
}

static int save_work(PGconn *db, void *arg) {
  struct reg_req *q = arg;
  struct dmt_secrets *sec = q->j->srv->secrets;
  char path[64];
  snprintf(path, sizeof path, "devices/%s", q->guid);
  if (!sec) {
    snprintf(q->err, sizeof q->err, "no secret store");
    return DMT_PG_ERROR;
  }
  int rc = dmt_pg_exec(db, "BEGIN", 0, NULL, NULL, q->err, sizeof q->err);
  if (rc != DMT_PG_OK) return rc;
  const char *g[] = {q->guid};
  PGresult *r = NULL;
  rc = dmt_pg_exec(db, "SELECT tenant_id FROM dmt.devices WHERE guid = $1::uuid FOR UPDATE", 1, g, &r, q->err,
                   sizeof q->err);
  if (rc != DMT_PG_OK) return rollback(db, rc);
  if (PQntuples(r) > 0 && strcmp(PQgetvalue(r, 0, 0), q->tenant) != 0) {
    /* a stale record in another tenant (the device was unprovisioned without us): it goes */
    char old[65];
    snprintf(old, sizeof old, "%s", PQgetvalue(r, 0, 0));
    const char *p[] = {q->guid, old};
    rc = dmt_pg_exec(db, "DELETE FROM dmt.devices WHERE guid = $1::uuid AND tenant_id = $2", 2, p, NULL, q->err,
                     sizeof q->err);
    if (rc == DMT_PG_OK) rc = secret_rc(db, dmt_secrets_delete(sec, db, old, path, q->err, sizeof q->err));
    if (rc != DMT_PG_OK) {
      PQclear(r);
      return rollback(db, rc);
    }
  }
  PQclear(r);
  int src = dmt_secrets_put(sec, db, q->tenant, path, q->secret, q->err, sizeof q->err);
  if (src != DMT_SECRETS_OK) return rollback(db, secret_rc(db, src));
  const char *p[] = {q->guid, q->tenant, q->hostname, q->tags, q->mps_username, q->friendly_name, q->dns_suffix,
                     q->device_info};
  rc = dmt_pg_exec(db,
                   "INSERT INTO dmt.devices (guid, tenant_id, hostname, tags, mps_username, friendly_name, dns_suffix, "
                   "device_info) VALUES ($1::uuid, $2, $3, $4::text[], $5, $6, $7, $8::jsonb) ON CONFLICT (guid) DO "
                   "UPDATE SET hostname = EXCLUDED.hostname, tags = EXCLUDED.tags, mps_username = "
                   "EXCLUDED.mps_username, friendly_name = EXCLUDED.friendly_name, dns_suffix = EXCLUDED.dns_suffix, "
                   "device_info = EXCLUDED.device_info",
                   8, p, NULL, q->err, sizeof q->err);
  if (rc != DMT_PG_OK) return rollback(db, rc);
  rc = dmt_pg_exec(db, "COMMIT", 0, NULL, NULL, q->err, sizeof q->err);
  return rc == DMT_PG_OK ? rc : rollback(db, rc);
}

static int delete_work(PGconn *db, void *arg) {
  struct reg_req *q = arg;
  struct dmt_secrets *sec = q->j->srv->secrets;
  char path[64];
  snprintf(path, sizeof path, "devices/%s", q->guid);
  int rc = dmt_pg_exec(db, "BEGIN", 0, NULL, NULL, q->err, sizeof q->err);
  if (rc != DMT_PG_OK) return rc;
  const char *p[] = {q->guid, q->tenant};
  rc = dmt_pg_exec(db, "DELETE FROM dmt.devices WHERE guid = $1::uuid AND tenant_id = $2", 2, p, NULL, q->err,
                   sizeof q->err);
  if (rc == DMT_PG_OK && sec) rc = secret_rc(db, dmt_secrets_delete(sec, db, q->tenant, path, q->err, sizeof q->err));
  if (rc != DMT_PG_OK) return rollback(db, rc);
  rc = dmt_pg_exec(db, "COMMIT", 0, NULL, NULL, q->err, sizeof q->err);
  return rc == DMT_PG_OK ? rc : rollback(db, rc);
}

static void reg_done(void *arg, int rc) {
  struct reg_req *q = arg;
  struct rps_job *j = q->j;
  j->t_db += rps_now_us() - q->t0;
  bool ok = rc == DMT_PG_OK;
  static const char *const what[] = {"record_save_failed", "record_delete_failed", "password_save_failed",
                                     "device_info_save_failed"};
  if (!ok) DMT_ERROR(&j->srv->log, what[q->kind], "job=%s guid=%s error=\"%s\"", j->id, j->guid, q->err);
  else if (q->kind == REG_SAVE || q->kind == REG_PASSWORD) j->record_saved = true; /* the device's credentials are stored */
  void (*done)(struct rps_job *, bool) = q->done;
  req_free(q);
  done(j, ok);
}

static int submit(struct reg_req *q, int (*work)(PGconn *, void *)) {
  q->t0 = rps_now_us();
  if (dmt_db_submit(q->j->srv->db, work, reg_done, q) != 0) {
    req_free(q);
    return -1;
  }
  return 0;
}

static char *device_info_json(const struct rps_job *j) {
  char now[32];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "fwVersion", j->dev.ver, "fwBuild", j->dev.build,
                        "fwSku", j->dev.sku, "currentMode", job_mode_name(j->target), "features", j->dev.features,
                        "ipAddress", j->dev.ip.ip, "lastUpdated", now);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

int device_register_save(struct rps_job *j, void (*done)(struct rps_job *j, bool ok)) {
  struct reg_req *q = calloc(1, sizeof *q);
  if (!q) return -1;
  q->j = j;
  q->done = done;
  snprintf(q->tenant, sizeof q->tenant, "%s", j->tenant);
  snprintf(q->guid, sizeof q->guid, "%s", j->guid);
  q->hostname = strdup(j->dev.hostname);
  q->friendly_name = j->dev.friendly_name[0] ? strdup(j->dev.friendly_name) : NULL;
  q->dns_suffix = strdup(j->dev.fqdn);
  q->tags = tags_literal(j->lk.profile.tags, j->lk.profile.ntags);
  q->mps_username = j->mps_password[0] && j->lk.cira.found ? strdup(j->lk.cira.username) : NULL;
  q->device_info = device_info_json(j);
  q->secret = json_object();
  json_object_set_new(q->secret, "AMT_PASSWORD", json_string(j->amt_password));
  if (j->target == MODE_ACM && j->mebx_password[0])
    json_object_set_new(q->secret, "MEBX_PASSWORD", json_string(j->mebx_password));
  if (j->mps_password[0]) json_object_set_new(q->secret, "MPS_PASSWORD", json_string(j->mps_password));
  if (!q->hostname || !q->dns_suffix || !q->tags || !q->device_info) {
    req_free(q);
    return -1;
  }
  return submit(q, save_work);
}

/* changepassword: the secret gets the new AMT password, keeping the other fields; the row stays. */
static int password_work(PGconn *db, void *arg) {
  struct reg_req *q = arg;
  struct dmt_secrets *sec = q->j->srv->secrets;
  char path[64];
  snprintf(path, sizeof path, "devices/%s", q->guid);
  if (!sec) return DMT_PG_ERROR;
  return secret_rc(db, dmt_secrets_put(sec, db, q->tenant, path, q->secret, q->err, sizeof q->err));
}

int device_register_update_password(struct rps_job *j, void (*done)(struct rps_job *j, bool ok)) {
  const struct rps_record *rec = &j->lk.record;
  if (!rec->exists) return -1;
  struct reg_req *q = calloc(1, sizeof *q);
  if (!q) return -1;
  q->j = j;
  q->done = done;
  q->kind = REG_PASSWORD;
  snprintf(q->tenant, sizeof q->tenant, "%s", rec->tenant);
  snprintf(q->guid, sizeof q->guid, "%s", j->guid);
  q->secret = json_object();
  json_object_set_new(q->secret, "AMT_PASSWORD", json_string(j->amt_password));
  if (rec->mebx_password) json_object_set_new(q->secret, "MEBX_PASSWORD", json_string(rec->mebx_password));
  if (rec->mps_password) json_object_set_new(q->secret, "MPS_PASSWORD", json_string(rec->mps_password));
  return submit(q, password_work);
}

/* syncdeviceinfo: merges the payload's firmware facts into device_info. */
static int info_work(PGconn *db, void *arg) {
  struct reg_req *q = arg;
  const char *p[] = {q->guid, q->tenant, q->device_info};
  PGresult *r = NULL;
  int rc = dmt_pg_exec(db,
                       "UPDATE dmt.devices SET device_info = coalesce(device_info, '{}'::jsonb) || $3::jsonb "
                       "WHERE guid = $1::uuid AND tenant_id = $2 RETURNING 1",
                       3, p, &r, q->err, sizeof q->err);
  if (rc != DMT_PG_OK) return rc;
  int n = PQntuples(r);
  PQclear(r);
  if (n == 0) {
    snprintf(q->err, sizeof q->err, "device not registered");
    return DMT_PG_ERROR;
  }
  return DMT_PG_OK;
}

int device_register_update_info(struct rps_job *j, void (*done)(struct rps_job *j, bool ok)) {
  struct reg_req *q = calloc(1, sizeof *q);
  if (!q) return -1;
  q->j = j;
  q->done = done;
  q->kind = REG_INFO;
  snprintf(q->tenant, sizeof q->tenant, "%s", j->lk.record.exists ? j->lk.record.tenant : j->tenant);
  snprintf(q->guid, sizeof q->guid, "%s", j->guid);
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "fwVersion", j->dev.ver, "fwBuild", j->dev.build, "fwSku",
                        j->dev.sku, "features", j->dev.features, "ipAddress", j->dev.ip.ip);
  q->device_info = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!q->device_info) {
    req_free(q);
    return -1;
  }
  return submit(q, info_work);
}

int device_register_delete(struct rps_job *j, void (*done)(struct rps_job *j, bool ok)) {
  struct reg_req *q = calloc(1, sizeof *q);
  if (!q) return -1;
  q->j = j;
  q->done = done;
  q->kind = REG_DELETE;
  snprintf(q->tenant, sizeof q->tenant, "%s", j->lk.record.exists ? j->lk.record.tenant : j->tenant);
  snprintf(q->guid, sizeof q->guid, "%s", j->guid);
  return submit(q, delete_work);
}
