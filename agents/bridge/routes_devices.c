/*
 * MPS device routes (mps-cira.md §3.2): list with DMT's filters and paging,
 * stats, tags, get, create-as-upsert, update, delete, plus the three that
 * need the device connected (redirectstatus, disconnect, refresh). Rows are
 * rendered to DMT's JSON by PostgreSQL itself (json_build_object), so the
 * bridge copies text instead of rebuilding objects.
 *
 * Tenancy: every statement filters on the caller's tenant, except where
 * standalone mode reproduces DMT (GET /devices/:guid answers 204 for a device
 * of another tenant; POST takes the tenant from the body). In EMF mode those
 * become 404 and the caller's tenant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/pg.h"

#define TS(col) "dmt.js_ts(" col ")"
#define DEVICE_JSON_BASE                                                                                       \
  "'guid', d.guid, 'hostname', d.hostname, 'tags', d.tags, 'mpsInstance', d.mps_instance, 'connectionStatus', " \
  "d.connection_status, 'mpsusername', d.mps_username, 'tenantId', d.tenant_id, 'friendlyName', "              \
  "d.friendly_name, 'dnsSuffix', d.dns_suffix, 'deviceInfo', d.device_info"
#define DEVICE_JSON_LIST "json_build_object(" DEVICE_JSON_BASE ")"
#define DEVICE_JSON_FULL                                                                                   \
  "json_build_object(" DEVICE_JSON_BASE ", 'lastConnected', " TS("d.last_connected") ", 'lastSeen', " TS( \
      "d.last_seen") ", 'lastDisconnected', " TS("d.last_disconnected") ")"

static bool is_standalone(const struct br_txn *t) { return t->srv->auth.mode == BR_AUTH_STANDALONE; }

/* ------------------------------------------------------------ validators */

static const char *const zero_one[] = {"0", "1", NULL};
static const char *const and_or[] = {"AND", "OR", NULL};
static const char *const bools[] = {"true", "false", "1", "0", NULL};

static bool dns_suffix(const char *s) { return br_fmt_dns_suffix(s); }
static bool iso8601(const char *s) { return br_fmt_iso8601(s); }

/* deviceValidator.ts validator(), with DMT's newer dnsSuffix rules */
BR_CHAIN(device_chain, V_FIELD("guid", BR_REQUIRED, V_UUID(NULL), V_STRING(NULL)),
         V_FIELD("friendlyName", BR_NULLABLE, V_STRING(NULL),
                 V_LEN(0, 256, "friendlyName must be at most 256 characters")),
         V_FIELD("hostname", BR_NULLABLE, V_STRING(NULL), V_LEN(0, 255, "Hostname must be less than 256 characters")),
         V_FIELD("mpsusername", BR_NULLABLE, V_STRING(NULL)),
         V_FIELD("connect", BR_NULLABLE, V_MATCH(iso8601, NULL)),
         V_FIELD("disconnect", BR_NULLABLE, V_MATCH(iso8601, NULL)),
         V_FIELD("tags", BR_OPTIONAL, V_ARRAY("tags should be an array of strings")),
         V_FIELD("tags.*", BR_OPTIONAL, V_STRING("tags should be an array of strings")),
         V_FIELD("deviceInfo", BR_NULLABLE, V_OBJECT("deviceInfo should be an object if provided")),
         V_FIELD("dnsSuffix", BR_NULLABLE, V_STRING("dnsSuffix must be a string"),
                 V_LEN(0, 255, "dnsSuffix must be less than 256 characters"),
                 V_MATCH(dns_suffix, "dnsSuffix must be a valid DNS suffix")));

BR_CHAIN(guid_param_chain, V_FIELD_AT(BR_LOC_PARAMS, "guid", BR_REQUIRED, V_UUID(NULL)));

BR_CHAIN(delete_chain, V_FIELD_AT(BR_LOC_PARAMS, "guid", BR_REQUIRED, V_UUID(NULL)),
         V_FIELD_AT(BR_LOC_QUERY, "isSecretToBeDeleted", BR_OPTIONAL, V_IN(bools, NULL)));

/* metadataQueryValidator() (odata is checked by the handler, first, as DMT's chain order has it) */
BR_CHAIN(list_chain, V_FIELD("tags", BR_OPTIONAL, V_STRING(NULL)),
         V_FIELD("hostname", BR_OPTIONAL, V_LEN(0, 256, NULL), V_STRING(NULL)),
         V_FIELD("status", BR_OPTIONAL, V_NUMERIC(NULL), V_IN(zero_one, NULL)),
         V_FIELD("method", BR_OPTIONAL, V_IN(and_or, NULL), V_STRING(NULL)));

/* ------------------------------------------------------------ list, stats, tags */

struct list_q {
  struct br_page page;
  char *hostname, *friendly, *tags_json, *status;
  bool and_tags;
};

static void list_free(void *p) {
  struct list_q *q = p;
  free(q->hostname);
  free(q->friendly);
  free(q->tags_json);
  free(q->status);
  free(q);
}

static int list_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  struct list_q *q = t->ctx;
  char top[32], skip[32];
  snprintf(top, sizeof top, "%lld", q->page.top);
  snprintf(skip, sizeof skip, "%lld", q->page.skip);
  /* precedence (DMT getAll): hostname > friendlyName > tags > plain; hostname/friendlyName are not paged */
  const char *filter = " AND $4::text IS NULL";
  const char *arg = NULL;
  bool paged = true;
  if (q->hostname) {
    filter = " AND hostname = $4";
    arg = q->hostname;
    paged = false;
  } else if (q->friendly) {
    filter = " AND friendly_name = $4";
    arg = q->friendly;
    paged = false;
  } else if (q->tags_json) {
    filter = q->and_tags ? " AND tags @> ARRAY(SELECT json_array_elements_text($4::json))"
                         : " AND tags && ARRAY(SELECT json_array_elements_text($4::json))";
    arg = q->tags_json;
  }
  char sql[1500];
  snprintf(sql, sizeof sql,
           "WITH page AS (SELECT * FROM dmt.devices WHERE tenant_id = $1%s ORDER BY guid LIMIT $2 OFFSET $3) "
           "SELECT coalesce(json_agg(" DEVICE_JSON_LIST " ORDER BY d.guid), '[]')::text, %s "
           "FROM page d WHERE $5::int IS NULL OR d.connection_status = ($5::int = 1)",
           filter, q->page.count ? "(SELECT count(*) FROM dmt.devices WHERE tenant_id = $1)" : "0");
  const char *p[] = {t->who.tenant, paged ? top : NULL, paged ? skip : "0", arg, q->status};
  PGresult *r = br_sql(c, o, sql, 5, p);
  if (!r) {
    br_out_empty(o, 500);
    return DMT_PG_OK;
  }
  br_out_page(o, r, q->page.count);
  PQclear(r);
  return DMT_PG_OK;
}

static char *qdup(struct br_txn *t, const char *k) {
  const char *v = br_query(t, k);
  return v ? strdup(v) : NULL;
}

static void list(struct br_txn *t) {
  struct br_vctx v;
  br_vctx_init(&v, t, NULL);
  json_t *errors = json_array();
  struct list_q *q = calloc(1, sizeof *q);
  br_odata_parse(&v, &q->page, 25, 0, errors);
  br_validate(&list_chain, &v, errors);
  if (json_array_size(errors)) {
    list_free(q);
    br_out_validation(&t->out, errors);
    br_send(t);
    return;
  }
  json_decref(errors);
  q->hostname = qdup(t, "hostname");
  q->friendly = qdup(t, "friendlyName");
  q->status = qdup(t, "status");
  const char *tags = br_query(t, "tags");
  if (tags) {
    json_t *arr = json_array();
    char *copy = strdup(tags), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
      json_array_append_new(arr, json_string(tok));
    free(copy);
    q->tags_json = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    const char *m = br_query(t, "method");
    q->and_tags = m && !strcmp(m, "AND");
  }
  t->ctx = q;
  t->ctx_free = list_free;
  br_db_run(t, list_work);
}

static int stats_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  const char *p[] = {t->who.tenant};
  if (br_sql_json(c, o, 200,
                  "SELECT json_build_object('totalCount', count(*), 'connectedCount', "
                  "count(*) FILTER (WHERE connection_status), 'disconnectedCount', "
                  "greatest(count(*) - count(*) FILTER (WHERE connection_status), 0))::text "
                  "FROM dmt.devices WHERE tenant_id = $1",
                  1, p) < 0)
    br_out_empty(o, 500);
  return DMT_PG_OK;
}

static void stats(struct br_txn *t) { br_db_run(t, stats_work); }

static int tags_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  const char *p[] = {t->who.tenant};
  if (br_sql_json(c, o, 200,
                  "SELECT coalesce(json_agg(tag ORDER BY tag), '[]')::text FROM "
                  "(SELECT DISTINCT unnest(tags) AS tag FROM dmt.devices WHERE tenant_id = $1) x",
                  1, p) < 0)
    br_out_empty(o, 500);
  return DMT_PG_OK;
}

static void tags(struct br_txn *t) { br_db_run(t, tags_work); }

/* ------------------------------------------------------------ get, upsert, update, delete */

static int get_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  const char *guid = br_param(t, 0);
  if (!is_standalone(t)) {
    const char *p[] = {guid, t->who.tenant};
    int rc = br_sql_json(c, o, 200,
                         "SELECT " DEVICE_JSON_FULL "::text FROM dmt.devices d WHERE guid = $1::uuid AND tenant_id = $2",
                         2, p);
    if (rc < 0) br_out_empty(o, 500);
    else if (rc == 0) br_out_empty(o, 404);
    return DMT_PG_OK;
  }
  /* DMT: looked up in every tenant; another tenant's device is 204 (req.tenantId, else ?tenantId=) */
  const char *tenant = t->who.tenant[0] ? t->who.tenant : (br_query(t, "tenantId") ? br_query(t, "tenantId") : "");
  const char *p[] = {guid};
  PGresult *r = br_sql(c, o, "SELECT tenant_id, " DEVICE_JSON_FULL "::text FROM dmt.devices d WHERE guid = $1::uuid", 1, p);
  if (!r) {
    br_out_empty(o, 500);
    return DMT_PG_OK;
  }
  if (PQntuples(r) == 0) br_out_empty(o, 404);
  else if (strcmp(PQgetvalue(r, 0, 0), tenant) != 0) br_out_empty(o, 204);
  else br_out_raw(o, 200, NULL, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
  PQclear(r);
  return DMT_PG_OK;
}

static void get(struct br_txn *t) { br_db_run(t, get_work); }

/* Body fields a client may set (connection columns belong to the terminator). */
struct dev_fields {
  const char *present[6];
  char *value[6];
};
static const char *const field_names[6] = {"hostname", "tags", "mpsusername", "friendlyName", "dnsSuffix", "deviceInfo"};

static void fields_from_body(const json_t *body, struct dev_fields *f) {
  for (int i = 0; i < 6; i++) {
    const json_t *v = json_object_get(body, field_names[i]);
    f->present[i] = v ? "true" : "false";
    f->value[i] = NULL;
    if (!v || json_is_null(v)) continue;
    if (json_is_string(v)) f->value[i] = strdup(json_string_value(v));
    else f->value[i] = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY); /* tags array, deviceInfo object */
  }
}

static void fields_free(struct dev_fields *f) {
  for (int i = 0; i < 6; i++) free(f->value[i]);
}

#define SET_FIELDS                                                                                   \
  "hostname = CASE WHEN $3::bool THEN $4 ELSE hostname END, "                                        \
  "tags = CASE WHEN $5::bool THEN ARRAY(SELECT json_array_elements_text($6::json)) ELSE tags END, " \
  "mps_username = CASE WHEN $7::bool THEN $8 ELSE mps_username END, "                                \
  "friendly_name = CASE WHEN $9::bool THEN $10 ELSE friendly_name END, "                             \
  "dns_suffix = CASE WHEN $11::bool THEN $12 ELSE dns_suffix END, "                                  \
  "device_info = CASE WHEN $13::bool THEN $14::jsonb ELSE device_info END"

static int update_row(PGconn *c, struct br_out *o, const char *guid, const char *tenant, struct dev_fields *f,
                      int status) {
  const char *p[14] = {guid, tenant};
  for (int i = 0; i < 6; i++) {
    p[2 + 2 * i] = f->present[i];
    p[3 + 2 * i] = f->value[i];
  }
  return br_sql_json(c, o, status,
                     "UPDATE dmt.devices d SET " SET_FIELDS " WHERE guid = $1::uuid AND tenant_id = $2 RETURNING "
                     DEVICE_JSON_LIST "::text",
                     14, p);
}

static int upsert_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  const char *guid = json_string_value(json_object_get(t->body, "guid"));
  const char *tenant = t->who.tenant;
  const json_t *bt = json_object_get(t->body, "tenantId");
  if (is_standalone(t) && json_is_string(bt)) tenant = json_string_value(bt); /* DMT: tenant from the body */
  if (tenant[0] && !br_fmt_tenant(tenant)) {
    br_out_error(o, 400, "Incorrect URI or Bad Request", "invalid tenantId");
    return DMT_PG_OK;
  }
  struct dev_fields f;
  fields_from_body(t->body, &f);
  int rc = update_row(c, o, guid, tenant, &f, 200);
  if (rc == 0) {
    const char *p[14] = {guid, tenant};
    for (int i = 0; i < 6; i++) {
      p[2 + 2 * i] = f.present[i];
      p[3 + 2 * i] = f.value[i];
    }
    rc = br_sql_json(c, o, 201,
                     "INSERT INTO dmt.devices AS d (guid, tenant_id, hostname, tags, mps_username, friendly_name, "
                     "dns_suffix, device_info) VALUES ($1::uuid, $2, CASE WHEN $3::bool THEN $4 END, "
                     "coalesce(CASE WHEN $5::bool THEN ARRAY(SELECT json_array_elements_text($6::json)) END, '{}'), "
                     "CASE WHEN $7::bool THEN $8 END, CASE WHEN $9::bool THEN $10 END, CASE WHEN $11::bool THEN $12 END, "
                     "CASE WHEN $13::bool THEN $14::jsonb END) RETURNING " DEVICE_JSON_LIST "::text",
                     14, p);
    if (rc < 0 && !strcmp(o->sqlstate, "23505")) {
      char msg[128];
      snprintf(msg, sizeof msg, "Device ID: %s already exists", guid);
      br_out_error(o, 400, "Unique key violation", msg);
      rc = 1;
    }
  }
  if (rc < 0) br_out_empty(o, 500);
  fields_free(&f);
  return DMT_PG_OK;
}

static void upsert(struct br_txn *t) { br_db_run(t, upsert_work); }

static int patch_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  const char *guid = json_string_value(json_object_get(t->body, "guid"));
  struct dev_fields f;
  fields_from_body(t->body, &f);
  int rc = update_row(c, o, guid, t->who.tenant, &f, 200);
  fields_free(&f);
  if (rc == 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "Device ID %s not found", guid);
    br_out_error(o, 404, "NOT FOUND", msg);
  } else if (rc < 0) {
    br_out_empty(o, 500);
  }
  return DMT_PG_OK;
}

static void patch(struct br_txn *t) { br_db_run(t, patch_work); }

static int delete_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  const char *guid = br_param(t, 0);
  const char *p[] = {guid, t->who.tenant};
  PGresult *r = br_sql(c, o, "DELETE FROM dmt.devices WHERE guid = $1::uuid AND tenant_id = $2 RETURNING 1", 2, p);
  if (!r) {
    br_out_empty(o, 500);
    return DMT_PG_OK;
  }
  bool gone = PQntuples(r) > 0;
  PQclear(r);
  if (!gone) {
    char msg[128];
    snprintf(msg, sizeof msg, "Device ID %s not found", guid);
    br_out_error(o, 404, "NOT FOUND", msg);
    return DMT_PG_OK;
  }
  const char *del = br_query(t, "isSecretToBeDeleted");
  if (del && (!strcmp(del, "true") || !strcmp(del, "1")) && t->srv->secrets) {
    char path[128], err[256];
    br_secret_path(path, sizeof path, "devices/", guid);
    dmt_secrets_delete(t->srv->secrets, c, t->who.tenant, path, err, sizeof err);
  }
  br_out_empty(o, 204);
  return DMT_PG_OK;
}

static void delete_device(struct br_txn *t) { br_db_run(t, delete_work); }

/* ------------------------------------------------------------ connected-device routes */

static int redirect_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  const char *p[] = {br_param(t, 0), t->who.tenant};
  PGresult *r = br_sql(c, o, "SELECT connection_status FROM dmt.devices WHERE guid = $1::uuid AND tenant_id = $2", 2, p);
  if (!r) {
    br_out_empty(o, 500);
    return DMT_PG_OK;
  }
  if (PQntuples(r) > 0 && PQgetvalue(r, 0, 0)[0] == 't')
    /* the bridge relays no redirection (KVM/SOL/IDER) sessions itself */
    br_out_text(o, 200, "{\"isKVMConnected\":false,\"isSOLConnected\":false,\"isIDERConnected\":false}");
  else br_out_not_connected(o, br_param(t, 0));
  PQclear(r);
  return DMT_PG_OK;
}

static void redirect_status(struct br_txn *t) { br_db_run(t, redirect_work); }

static void reply_success(struct br_txn *t, int code, const char *error, const char *message, const char *what) {
  if (error) {
    br_amt_default_reply(t, code, error, message, NULL);
    return;
  }
  char desc[200];
  snprintf(desc, sizeof desc, "%s : %s", what, br_param(t, 0));
  br_respond_json(t, 200, json_pack("{s:i,s:s}", "success", 200, "description", desc));
}

static void reply_disconnect(struct br_txn *t, int code, const char *error, const char *message, const json_t *r) {
  reply_success(t, code, error, message, "Device CIRA connection disconnected");
}

static void reply_refresh(struct br_txn *t, int code, const char *error, const char *message, const json_t *r) {
  reply_success(t, code, error, message, "Device info refreshed");
}

static void disconnect(struct br_txn *t) { br_amt_command(t, br_param(t, 0), "disconnect", NULL, 0, reply_disconnect); }

static void refresh(struct br_txn *t) { br_amt_command(t, br_param(t, 0), "refresh", NULL, 0, reply_refresh); }

static const struct br_route routes[] = {
    {.methods = BR_M_GET, .pattern = "/api/v1/devices", .handler = list, .chain = NULL, .flags = 0, .data = NULL},
    {.methods = BR_M_GET, .pattern = "/api/v1/devices/stats", .handler = stats, .chain = NULL, .flags = 0, .data = NULL},
    {.methods = BR_M_GET, .pattern = "/api/v1/devices/tags", .handler = tags, .chain = NULL, .flags = 0, .data = NULL},
    {.methods = BR_M_GET, .pattern = "/api/v1/devices/redirectstatus/:guid", .handler = redirect_status, .chain = &guid_param_chain, .flags = 0, .data = NULL},
    {.methods = BR_M_GET, .pattern = "/api/v1/devices/:guid", .handler = get, .chain = &guid_param_chain, .flags = 0, .data = NULL},
    {.methods = BR_M_POST, .pattern = "/api/v1/devices", .handler = upsert, .chain = &device_chain, .flags = BR_RF_WRITE, .data = NULL},
    {.methods = BR_M_PATCH, .pattern = "/api/v1/devices", .handler = patch, .chain = &device_chain, .flags = BR_RF_WRITE, .data = NULL},
    {.methods = BR_M_DELETE, .pattern = "/api/v1/devices/refresh/:guid", .handler = refresh, .chain = &device_chain, .flags = BR_RF_WRITE | BR_RF_AMT, .data = NULL},
    {.methods = BR_M_DELETE, .pattern = "/api/v1/devices/disconnect/:guid", .handler = disconnect, .chain = &guid_param_chain, .flags = BR_RF_WRITE | BR_RF_AMT, .data = NULL},
    {.methods = BR_M_DELETE, .pattern = "/api/v1/devices/:guid", .handler = delete_device, .chain = &delete_chain, .flags = BR_RF_WRITE, .data = NULL},
};

const struct br_route_table br_routes_devices = {routes, sizeof routes / sizeof routes[0]};
