/*
 * Database work for requests, off the lws thread. A handler submits a work
 * function; a dmt_db worker runs it with its own PGconn, filling the
 * transaction's job_out (never touching anything else the loop owns), and
 * the completion comes back through the workq to answer the client.
 *
 * A job carries a deadline: when PostgreSQL is unreachable the worker blocks
 * reconnecting and jobs wait; a job that finally starts after its deadline
 * (the client already got a 503 from the request timeout) does nothing, so a
 * write is never applied after its caller was told it failed. Connection
 * loss inside a job is reported as an error, not retried, for the same
 * reason (the statement's fate is unknown; the caller sees a 5xx).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/evloop.h"
#include "dmt/pg.h"

struct job {
  struct br_txn *t;
  br_work_fn fn;
};

static int job_work(PGconn *c, void *arg) {
  struct job *j = arg;
  struct br_txn *t = j->t;
  if (atomic_load(&t->abandoned) || dmt_wall_ms() > t->job_deadline_ms) return DMT_PG_ERROR;
  int rc = j->fn(c, t, &t->job_out);
  return rc == DMT_PG_CONN_LOST ? DMT_PG_ERROR : rc;
}

static void job_done(void *arg, int rc) {
  struct job *j = arg;
  struct br_txn *t = j->t;
  free(j);
  if (!t->responded) {
    if (t->job_out.status == 0 && t->then) {
      br_out_reset(&t->job_out);
      void (*then)(struct br_txn *) = t->then;
      t->then = NULL;
      then(t);
    } else {
      if (t->job_out.status == 0) br_out_unexpected(&t->job_out, br_method_name(t->req.method), t->req.path);
      br_respond_out(t, &t->job_out);
    }
  }
  br_txn_unref(t);
}

void br_db_run(struct br_txn *t, br_work_fn fn) {
  struct br_server *s = t->srv;
  struct job *j = calloc(1, sizeof *j);
  if (!j || !s->db) {
    free(j);
    br_out_message(&t->out, 503, "database unavailable");
    br_send(t);
    return;
  }
  j->t = t;
  j->fn = fn;
  br_out_reset(&t->job_out);
  /* leave the worker a margin before the request timeout answers for it */
  int budget = s->request_timeout_ms > 2000 ? s->request_timeout_ms - 1000 : s->request_timeout_ms / 2;
  t->job_deadline_ms = dmt_wall_ms() + (uint64_t)budget;
  br_txn_ref(t);
  if (dmt_db_submit(s->db, job_work, job_done, j) != 0) {
    free(j);
    br_txn_unref(t);
    br_out_message(&t->out, 503, "database queue full");
    br_send(t);
  }
}

/* ------------------------------------------------------------ SQL helpers */

static const struct dmt_log *sql_log;

void br_sql_log(const struct dmt_log *lg) { sql_log = lg; }

PGresult *br_sql(PGconn *c, struct br_out *o, const char *sql, int n, const char *const *params) {
  PGresult *res = NULL;
  char err[512];
  o->sqlstate[0] = '\0';
  int rc = dmt_pg_exec_state(c, sql, n, params, &res, o->sqlstate, err, sizeof err);
  if (rc != DMT_PG_OK) {
    /* constraint violations are expected answers (duplicates, references): debug only */
    char q[600];
    if (sql_log)
      dmt_log_write(sql_log, !strncmp(o->sqlstate, "23", 2) ? DMT_LOG_DEBUG : DMT_LOG_WARN, "sql_failed",
                    "sqlstate=%s error=%s", o->sqlstate, dmt_log_kv_quote(err, q, sizeof q));
    return NULL;
  }
  return res;
}

bool br_sql_ok(PGconn *c, struct br_out *o, const char *sql, int n, const char *const *params) {
  PGresult *r = br_sql(c, o, sql, n, params);
  PQclear(r);
  return r != NULL;
}

bool br_sql_begin(PGconn *c, struct br_out *o) { return br_sql_ok(c, o, "BEGIN", 0, NULL); }

bool br_sql_commit(PGconn *c, struct br_out *o) { return br_sql_ok(c, o, "COMMIT", 0, NULL); }

void br_sql_rollback(PGconn *c) {
  PGresult *r = PQexec(c, "ROLLBACK");
  PQclear(r);
}

int br_sql_json(PGconn *c, struct br_out *o, int status, const char *sql, int n, const char *const *params) {
  PGresult *r = br_sql(c, o, sql, n, params);
  if (!r) return -1;
  int rows = PQntuples(r);
  if (rows > 0 && !PQgetisnull(r, 0, 0)) br_out_raw(o, status, NULL, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
  PQclear(r);
  return rows > 0 ? 1 : 0;
}

void br_out_page(struct br_out *o, PGresult *r, bool count) {
  if (!count) {
    br_out_raw(o, 200, NULL, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    return;
  }
  size_t n = (size_t)PQgetlength(r, 0, 0) + 64;
  char *body = malloc(n);
  if (!body) {
    br_out_empty(o, 500);
    return;
  }
  int len = snprintf(body, n, "{\"data\":%s,\"totalCount\":%s}", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
  br_out_raw(o, 200, NULL, body, (size_t)len);
  free(body);
}

/*
 * The secret store accepts [A-Za-z0-9/_.@-] in paths. DMT's names are wider (a profile name may
 * hold $!%*#?&'()+,:;<=>[\]~^), so other bytes are written as "@XX"; '@' itself, and the dots of a
 * "..", are escaped the same way. Plain names map to DMT's Vault layout unchanged.
 */
void br_secret_path(char *out, size_t outlen, const char *prefix, const char *name) {
  size_t n = (size_t)snprintf(out, outlen, "%s", prefix);
  for (const char *p = name; *p && n + 4 < outlen; p++) {
    unsigned char c = (unsigned char)*p;
    bool plain = isalnum(c) || c == '_' || c == '-' || (c == '.' && p[1] != '.' && (p == name || p[-1] != '.'));
    if (plain) out[n++] = (char)c;
    else n += (size_t)snprintf(out + n, outlen - n, "@%02X", c);
  }
  out[n < outlen ? n : outlen - 1] = '\0';
}
