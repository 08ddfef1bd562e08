/*
 * What every RPS admin object (domains, profiles, CIRA configs, wireless,
 * 802.1x and proxy configs) shares, so the route files hold only what is
 * particular to each: paged lists ({data,totalCount} with $count), get by
 * case-insensitive name, delete (reference checks, secrets, config event),
 * DMT's not-found/conflict bodies, optimistic concurrency on xmin (409, or 412
 * when If-Match was sent, with the current row and its ETag), validation with
 * database access, and secrets under DMT's Vault layout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/pg.h"

const char *br_jstr(const json_t *obj, const char *key) { return json_string_value(json_object_get(obj, key)); }

char *br_jsql(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return NULL;
  if (json_is_string(v)) return strdup(json_string_value(v));
  if (json_is_true(v)) return strdup("true");
  if (json_is_false(v)) return strdup("false");
  if (json_is_number(v)) {
    char b[64];
    br_js_string(v, b, sizeof b);
    return strdup(b);
  }
  return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

int br_admin_fetch(PGconn *c, const struct br_kind *k, const char *tenant, const char *name, struct br_out *o,
                   int status) {
  char sql[4096];
  snprintf(sql, sizeof sql, "SELECT (%s)::text FROM %s x WHERE x.tenant_id = $1 AND lower(x.%s) = lower($2)", k->json,
           k->table, k->name_col);
  const char *p[] = {tenant, name};
  return br_sql_json(c, o, status, sql, 2, p);
}

bool br_admin_canonical(PGconn *c, const struct br_kind *k, const char *tenant, const char *name, char *out,
                        size_t outlen) {
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE tenant_id = $1 AND lower(%s) = lower($2)", k->name_col, k->table,
           k->name_col);
  const char *p[] = {tenant, name};
  struct br_out scratch = {0};
  PGresult *r = br_sql(c, &scratch, sql, 2, p);
  bool found = r && PQntuples(r) > 0;
  if (found) snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return found;
}

void br_admin_conflict(PGconn *c, struct br_txn *t, const struct br_kind *k, const char *name, struct br_out *o) {
  int status = t->req.if_match ? 412 : 409;
  if (br_admin_fetch(c, k, t->who.tenant, name, o, status) != 1) {
    br_out_not_found(o, k->label, name);
    return;
  }
  json_t *row = json_loadb(o->body, o->len, 0, NULL);
  const char *v = json_string_value(json_object_get(row, "version"));
  if (v) snprintf(o->etag, sizeof o->etag, "%s", v);
  json_decref(row);
}

const char *br_admin_version(struct br_txn *t, char *buf, size_t buflen) {
  if (t->req.if_match) { /* DMT's if-match middleware: the header overrides body.version */
    snprintf(buf, buflen, "%s", t->req.if_match);
    return buf;
  }
  const json_t *v = json_object_get(t->body, "version");
  if (json_is_string(v)) snprintf(buf, buflen, "%s", json_string_value(v));
  else if (json_is_integer(v)) snprintf(buf, buflen, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v)) snprintf(buf, buflen, "%.0f", json_real_value(v));
  else return NULL;
  return buf;
}

bool br_admin_validate(PGconn *c, struct br_txn *t, const struct br_chain *chain, void *ud, struct br_out *o) {
  struct br_vctx v;
  br_vctx_init(&v, t, c);
  v.ud = ud;
  json_t *errors = json_array();
  if (br_validate(chain, &v, errors) == 0) {
    json_decref(errors);
    return true;
  }
  br_out_validation(o, errors);
  return false;
}

bool br_admin_secret_put(PGconn *c, struct br_txn *t, const char *prefix, const char *name, json_t *obj,
                         struct br_out *o) {
  char path[300], err[256];
  br_secret_path(path, sizeof path, prefix, name);
  int rc = t->srv->secrets ? dmt_secrets_put(t->srv->secrets, c, t->who.tenant, path, obj, err, sizeof err)
                           : DMT_SECRETS_ERROR;
  if (rc != DMT_SECRETS_OK) {
    DMT_ERROR(&t->srv->log, "secret_write_failed", "prefix=%s", prefix); /* never the secret or its name's value */
    br_out_message(o, 500, "the secret store is unavailable");
    return false;
  }
  return true;
}

bool br_admin_secret_del(PGconn *c, struct br_txn *t, const char *prefix, const char *name, struct br_out *o) {
  char path[300], err[256];
  br_secret_path(path, sizeof path, prefix, name);
  int rc = t->srv->secrets ? dmt_secrets_delete(t->srv->secrets, c, t->who.tenant, path, err, sizeof err)
                           : DMT_SECRETS_ERROR;
  if (rc != DMT_SECRETS_OK && rc != DMT_SECRETS_NOT_FOUND) {
    br_out_message(o, 500, "the secret store is unavailable");
    return false;
  }
  return true;
}

bool br_admin_begin(PGconn *c, struct br_txn *t, const char *name, struct br_out *o) {
  if (br_sql_begin(c, o)) return true;
  br_out_unexpected(o, br_method_name(t->req.method), name);
  return false;
}

bool br_json_eq_int(const json_t *v, long long n) {
  if (json_is_integer(v)) return json_integer_value(v) == n;
  if (json_is_real(v)) return json_real_value(v) == (double)n;
  return false;
}

bool br_admin_finish(PGconn *c, struct br_txn *t, const struct br_kind *k, const char *name, const char *operation,
                     struct br_out *o) {
  if (br_event_config(c, t, o, k->event_type, name, operation) && br_sql_commit(c, o)) return true;
  br_sql_rollback(c);
  br_out_drop_event(o);
  br_out_unexpected(o, br_method_name(t->req.method), name);
  return false;
}

/* ------------------------------------------------------------ list */

static int list_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  const struct br_kind *k = t->route->data;
  const struct br_page *pg = t->ctx;
  char sql[4096], top[32], skip[32], count[256] = "0";
  snprintf(top, sizeof top, "%lld", pg->top);
  snprintf(skip, sizeof skip, "%lld", pg->skip);
  if (pg->count) snprintf(count, sizeof count, "(SELECT count(*) FROM %s WHERE tenant_id = $1)", k->table);
  snprintf(sql, sizeof sql,
           "SELECT coalesce(json_agg(j ORDER BY n), '[]')::text, %s FROM "
           "(SELECT (%s) AS j, lower(x.%s) AS n FROM %s x WHERE x.tenant_id = $1 ORDER BY lower(x.%s) "
           "LIMIT $2 OFFSET $3) s",
           count, k->json, k->name_col, k->table, k->name_col);
  const char *p[] = {t->who.tenant, top, skip};
  PGresult *r = br_sql(c, o, sql, 3, p);
  if (!r) {
    br_out_unexpected(o, "GET", k->label);
    return DMT_PG_OK;
  }
  br_out_page(o, r, pg->count);
  PQclear(r);
  return DMT_PG_OK;
}

void br_list_paged(struct br_txn *t, long long default_top, long long max_top, br_work_fn work) {
  struct br_vctx v;
  br_vctx_init(&v, t, NULL);
  json_t *errors = json_array();
  struct br_page *pg = calloc(1, sizeof *pg);
  if (!pg || br_odata_parse(&v, pg, default_top, max_top, errors) > 0) {
    free(pg);
    br_out_validation(&t->out, errors);
    br_send(t);
    return;
  }
  json_decref(errors);
  t->ctx = pg;
  t->ctx_free = free;
  br_db_run(t, work);
}

void br_admin_list(struct br_txn *t) { br_list_paged(t, 25, 0, list_work); }

/* ------------------------------------------------------------ get */

static int get_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  const struct br_kind *k = t->route->data;
  int rc = br_admin_fetch(c, k, t->who.tenant, br_param(t, 0), o, 200);
  if (rc == 0) br_out_not_found(o, k->label, br_param(t, 0));
  else if (rc < 0) br_out_unexpected(o, "GET", br_param(t, 0));
  return DMT_PG_OK;
}

void br_admin_get(struct br_txn *t) { br_db_run(t, get_work); }

/* ------------------------------------------------------------ delete */

/* A reference message with the object's name in place of its "%s". */
static void ref_message(char *out, size_t outlen, const char *tmpl, const char *name) {
  const char *mark = strstr(tmpl, "%s");
  if (!mark) snprintf(out, outlen, "%s", tmpl);
  else snprintf(out, outlen, "%.*s%s%s", (int)(mark - tmpl), tmpl, name, mark + 2);
}

static int delete_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  const struct br_kind *k = t->route->data;
  const char *name = br_param(t, 0);
  const char *p[] = {t->who.tenant, name};
  for (size_t i = 0; i < k->nrefs; i++) {
    PGresult *r = br_sql(c, o, k->refs[i].sql, 2, p);
    if (!r) {
      br_out_unexpected(o, "DELETE", name);
      return DMT_PG_OK;
    }
    bool used = PQntuples(r) > 0 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (used) {
      char msg[400];
      ref_message(msg, sizeof msg, k->refs[i].message, name);
      br_out_error(o, 400, "Foreign key violation", msg);
      return DMT_PG_OK;
    }
  }
  char sql[512];
  snprintf(sql, sizeof sql, "DELETE FROM %s WHERE tenant_id = $1 AND lower(%s) = lower($2) RETURNING %s", k->table,
           k->name_col, k->name_col);
  if (!br_sql_begin(c, o)) {
    br_out_unexpected(o, "DELETE", name);
    return DMT_PG_OK;
  }
  PGresult *r = br_sql(c, o, sql, 2, p);
  if (!r) {
    br_sql_rollback(c);
    if (!strcmp(o->sqlstate, "23503") && k->nrefs) {
      char msg[400];
      ref_message(msg, sizeof msg, k->refs[0].message, name);
      br_out_error(o, 400, "Foreign key violation", msg);
    } else {
      br_out_unexpected(o, "DELETE", name);
    }
    return DMT_PG_OK;
  }
  if (PQntuples(r) == 0) {
    PQclear(r);
    br_sql_rollback(c);
    br_out_not_found(o, k->label, name);
    return DMT_PG_OK;
  }
  char stored[300];
  snprintf(stored, sizeof stored, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  for (const char *const *s = k->secrets; s && *s; s++)
    if (!br_admin_secret_del(c, t, *s, stored, o)) {
      br_sql_rollback(c);
      return DMT_PG_OK;
    }
  if (br_admin_finish(c, t, k, stored, "delete", o)) br_out_raw(o, 204, NULL, NULL, 0);
  return DMT_PG_OK;
}

void br_admin_delete(struct br_txn *t) { br_db_run(t, delete_work); }
