/*
 * Last-seen times without a database query per keepalive (DMT's MPS runs
 * three per keepalive per device: about 1 000 queries/s for 10 000 devices).
 * Traffic only sets a flag on the connection; every cira.lastseen_flush_ms
 * the devices seen since the previous flush are written in a few batched,
 * tenant-scoped UPDATEs of up to 5 000 rows, and only rows still naming this
 * instance are touched.
 */
#include <stdlib.h>
#include <string.h>

#include "cira.h"
#include "dmt/pg.h"

#define LASTSEEN_BATCH 5000

struct lastseen_job {
  struct dmt_buf guids, tenants;
  char instance[128];
  size_t n;
};

void lastseen_touch(struct cira_conn *c) { c->seen = true; }

static int write_lastseen(PGconn *db, void *arg) {
  struct lastseen_job *j = arg;
  const char *p[] = {(const char *)j->guids.data, (const char *)j->tenants.data, j->instance};
  char err[256];
  return dmt_pg_exec(db,
                     "UPDATE dmt.devices d SET last_seen = now() FROM unnest($1::uuid[], $2::varchar[]) "
                     "AS u(guid, tenant) WHERE d.guid = u.guid AND d.tenant_id = u.tenant AND d.mps_instance = $3",
                     3, p, NULL, err, sizeof err);
}

static void job_free(struct lastseen_job *j) {
  dmt_buf_free(&j->guids);
  dmt_buf_free(&j->tenants);
  free(j);
}

static void written(void *arg, int rc) { job_free(arg); }

struct collect {
  struct cira_server *s;
  struct lastseen_job *job;
};

static void submit(struct collect *col) {
  struct lastseen_job *j = col->job;
  col->job = NULL;
  if (!j) return;
  dmt_buf_append(&j->guids, "}", 2); /* with the NUL */
  dmt_buf_append(&j->tenants, "}", 2);
  if (dmt_db_submit(col->s->db, write_lastseen, written, j) != 0) {
    DMT_WARN(&col->s->log, "db_queue_full", "write=last_seen devices=%zu", j->n);
    job_free(j);
  }
}

static void collect_seen(const char *guid, void *value, void *ud) {
  struct collect *col = ud;
  struct cira_conn *c = value;
  if (!c->seen || !c->dev) return;
  c->seen = false;
  if (!col->job) {
    if (!(col->job = calloc(1, sizeof *col->job))) return;
    dmt_buf_init(&col->job->guids, 0);
    dmt_buf_init(&col->job->tenants, 0);
    memcpy(col->job->instance, col->s->instance, sizeof col->job->instance);
  }
  pg_array_append(&col->job->guids, guid);
  pg_array_append(&col->job->tenants, c->dev->tenant);
  if (++col->job->n == LASTSEEN_BATCH) submit(col);
}

void lastseen_flush(struct cira_server *s) {
  if (!s->set.lastseen) return;
  struct collect col = {s, NULL};
  dmt_strmap_foreach(&s->devices, collect_seen, &col);
  submit(&col);
}
