/*
 * RPS CIRA configs (/api/v1/admin/ciraconfigs): DMT's ciraValidator rules and
 * messages, the static MPS password kept in the secret store
 * (CIRAConfigs/<name> {MPS_PASSWORD}) and never in the table or a response,
 * PATCH merging the body over the stored row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/pg.h"

#define CIRA_JSON                                                                                                \
  "json_build_object('configName', x.cira_config_name, 'mpsServerAddress', x.mps_server_address, 'mpsPort', " \
  "x.mps_port, 'username', x.user_name, 'commonName', x.common_name, 'serverAddressFormat', "                  \
  "x.server_address_format, 'authMethod', x.auth_method, 'mpsRootCertificate', x.mps_root_certificate, "       \
  "'proxyDetails', x.proxydetails, 'tenantId', x.tenant_id, 'version', x.xmin::text)"

static const char *const cira_secrets[] = {"CIRAConfigs/", NULL};
static const struct br_ref_check cira_refs[] = {
    {"SELECT EXISTS (SELECT 1 FROM dmt.profiles WHERE tenant_id = $1 AND lower(cira_config_name) = lower($2))",
     "CIRA Config: %s is associated with an AMT profile"},
};
static const struct br_kind cira_kind = {"CIRA",   "dmt.ciraconfigs", "cira_config_name", CIRA_JSON, "ciraconfig",
                                         cira_secrets, cira_refs, 1};

/* ------------------------------------------------------------ validators */

static const char *const formats[] = {"3", "4", "201", NULL};
static const char *const methods[] = {"1", "2", NULL};

static bool ipv4(const char *s) { return br_fmt_ipv4_dmt(s); }
static bool alnum(const char *s) { return br_fmt_alnum(s); }
static bool name_ud(const char *s) { return br_fmt_name_ud(s); }

/* ciraValidator.ts serverAddressFormatValidator (JavaScript === comparisons kept) */
static bool server_address(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  const json_t *fmt = br_body_get(v, "serverAddressFormat");
  if (!fmt || json_is_null(fmt)) {
    snprintf(msg, msglen, "serverAddressFormat is required");
    return false;
  }
  if (!value || json_is_null(value)) return true;
  const char *s = json_string_value(value);
  if (!s && (br_json_eq_int(fmt, 3) || br_json_eq_int(fmt, 4) || br_json_eq_int(fmt, 201))) {
    snprintf(msg, msglen, "value.match is not a function");
    return false;
  }
  if (br_json_eq_int(fmt, 3)) {
    if (!br_fmt_ipv4_dmt(s)) {
      snprintf(msg, msglen, "serverAddressFormat 3 requires IPV4 server address");
      return false;
    }
    const json_t *cn = br_body_get(v, "commonName");
    if (!cn || json_is_null(cn)) {
      snprintf(msg, msglen, "commonName is required when serverAddressFormat is 3");
      return false;
    }
  } else if (br_json_eq_int(fmt, 4)) {
    if (!br_fmt_ipv6_dmt(s)) {
      snprintf(msg, msglen, "serverAddressFormat 4 requires IPV6 server address");
      return false;
    }
  } else if (br_json_eq_int(fmt, 201)) {
    if (!br_fmt_fqdn_dmt(s) && !br_fmt_ipv4_dmt(s)) {
      snprintf(msg, msglen, "serverAddressFormat 201 requires FQDN server address");
      return false;
    }
  }
  return true;
}

static bool format_not_fqdn(struct br_vctx *v, const json_t *value) {
  return !br_json_eq_int(br_body_get(v, "serverAddressFormat"), 201);
}

static bool address_given(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  const json_t *a = br_body_get(v, "mpsServerAddress");
  if (!a || json_is_null(a)) {
    snprintf(msg, msglen, "Server address is required to update");
    return false;
  }
  return true;
}

static bool port_update(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  double d = json_is_number(value) ? json_number_value(value) : 0;
  if (!json_is_number(value) || d <= 1024 || d >= 49151) {
    snprintf(msg, msglen, "MPS Port value should range between 1024 and 49151");
    return false;
  }
  return true;
}

static bool format_and_address(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  const json_t *f = br_body_get(v, "serverAddressFormat"), *a = br_body_get(v, "mpsServerAddress");
  if (!f || json_is_null(f) || !a || json_is_null(a)) {
    snprintf(msg, msglen, "serverAddressFormat and mpsServerAddress is required");
    return false;
  }
  return true;
}

#define CN_IPV4_MSG "Cert. Hostname(CN) should be an IP address."

BR_CHAIN(insert_chain,
         V_FIELD("configName", BR_REQUIRED, V_NOT_EMPTY("CIRA profile name is required"),
                 V_MATCH(name_ud, "CIRA profile name accepts letters, numbers, underscore and hyphen only")),
         V_FIELD("serverAddressFormat", BR_REQUIRED, V_NOT_EMPTY("MPS server address format is required"),
                 V_IN(formats, "MPS server address format should be either 3(IPV4) , 4(IPV6) or 201(FQDN)")),
         V_FIELD("mpsServerAddress", BR_REQUIRED, V_NOT_EMPTY("MPS server address is required"),
                 V_CUSTOM(server_address, NULL)),
         V_FIELD("mpsPort", BR_REQUIRED, V_NOT_EMPTY("MPS port is required"),
                 V_INT(1024, 49151, "MPS Port value should range between 1024 and 49151")),
         V_FIELD("username", BR_REQUIRED, V_NOT_EMPTY("MPS user name is required"),
                 V_MATCH(alnum, "MPS user name should be alphanumeric"),
                 V_LEN(5, 16, "MPS user name length should be in between 5 to 16")),
         V_FIELD("commonName", BR_OPTIONAL, V_IF(format_not_fqdn), V_MATCH(ipv4, CN_IPV4_MSG)),
         V_FIELD("authMethod", BR_REQUIRED, V_NOT_EMPTY("Authentication method is required"),
                 V_IN(methods, "Authentication method should be either 1 (Mutual Auth) or 2 (username and password)")),
         V_FIELD("mpsRootCertificate", BR_REQUIRED, V_NOT_EMPTY("MPS public root certificate is required")),
         V_FIELD("password", BR_NULLABLE, V_STRING(NULL), V_LEN(0, 63, "MPS password must be at most 63 characters")));

BR_CHAIN(update_chain,
         V_FIELD("configName", BR_REQUIRED, V_NOT_EMPTY("CIRA profile name is required"),
                 V_MATCH(name_ud, "CIRA profile name accepts letters, numbers, underscore and hyphen only")),
         V_FIELD("serverAddressFormat", BR_OPTIONAL,
                 V_IN(formats, "MPS server address format 3(IPV4) , 4(IPV6) or 201(FQDN)"),
                 V_CUSTOM(address_given, NULL)),
         V_FIELD("mpsServerAddress", BR_OPTIONAL, V_CUSTOM(server_address, NULL)),
         V_FIELD("mpsPort", BR_OPTIONAL, V_CUSTOM(port_update, NULL)),
         V_FIELD("username", BR_OPTIONAL, V_MATCH(alnum, "MPS user name should be alphanumeric"),
                 V_LEN(5, 16, "MPS user name length should be in between 5 to 16")),
         V_FIELD("commonName", BR_OPTIONAL, V_IF(format_not_fqdn), V_MATCH(ipv4, CN_IPV4_MSG),
                 V_CUSTOM(format_and_address, NULL)),
         V_FIELD("authMethod", BR_OPTIONAL,
                 V_IN(methods, "Authentication method accepts either 1 - Mutual Auth or 2 -username/password)")),
         V_FIELD("regeneratePassword", BR_OPTIONAL, V_BOOL(NULL)),
         V_FIELD("password", BR_NULLABLE, V_STRING(NULL), V_LEN(0, 63, "MPS password must be at most 63 characters")));

/* ------------------------------------------------------------ create / update */

static bool store_password(PGconn *c, struct br_txn *t, const char *name, struct br_out *o) {
  const char *pw = br_jstr(t->body, "password");
  if (!pw || !*pw) return true;
  json_t *obj = json_pack("{s:s}", "MPS_PASSWORD", pw);
  bool ok = br_admin_secret_put(c, t, "CIRAConfigs/", name, obj, o);
  dmt_secrets_wipe(obj);
  return ok;
}

static int create_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  if (!br_admin_validate(c, t, &insert_chain, NULL, o)) return DMT_PG_OK;
  const json_t *b = t->body;
  const char *name = br_jstr(b, "configName");
  char *v[8] = {br_jsql(b, "mpsServerAddress"), br_jsql(b, "mpsPort"),   br_jsql(b, "username"),
                br_jsql(b, "commonName"),       br_jsql(b, "serverAddressFormat"), br_jsql(b, "authMethod"),
                br_jsql(b, "mpsRootCertificate"), br_jsql(b, "proxyDetails")};
  const char *p[] = {t->who.tenant, name, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
  if (br_admin_begin(c, t, name, o)) {
    int rc = br_sql_json(c, o, 201,
                         "INSERT INTO dmt.ciraconfigs AS x (tenant_id, cira_config_name, mps_server_address, mps_port, "
                         "user_name, common_name, server_address_format, auth_method, mps_root_certificate, proxydetails) "
                         "VALUES ($1, $2, $3, $4::int, $5, $6, $7::int, $8::int, $9, $10) RETURNING (" CIRA_JSON ")::text",
                         10, p);
    if (rc < 0) {
      br_sql_rollback(c);
      if (!strcmp(o->sqlstate, "23505")) {
        char msg[300];
        snprintf(msg, sizeof msg, "CIRA Config %s already exists.", name);
        br_out_error(o, 400, "Unique key violation", msg);
      } else {
        br_out_unexpected(o, "POST", name);
      }
    } else if (!store_password(c, t, name, o)) {
      br_sql_rollback(c);
    } else {
      br_admin_finish(c, t, &cira_kind, name, "create", o);
    }
  }
  for (int i = 0; i < 8; i++) free(v[i]);
  return DMT_PG_OK;
}

static void create(struct br_txn *t) { br_db_run(t, create_work); }

static int update_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  if (!br_admin_validate(c, t, &update_chain, NULL, o)) return DMT_PG_OK;
  const json_t *b = t->body;
  const char *name = br_jstr(b, "configName");
  char stored[300], vbuf[64];
  if (!br_admin_canonical(c, &cira_kind, t->who.tenant, name, stored, sizeof stored)) {
    br_out_not_found(o, "CIRA", name);
    return DMT_PG_OK;
  }
  const char *version = br_admin_version(t, vbuf, sizeof vbuf);
  char *v[8] = {br_jsql(b, "mpsServerAddress"), br_jsql(b, "mpsPort"),   br_jsql(b, "username"),
                br_jsql(b, "commonName"),       br_jsql(b, "serverAddressFormat"), br_jsql(b, "authMethod"),
                br_jsql(b, "mpsRootCertificate"), br_jsql(b, "proxyDetails")};
  const char *p[] = {t->who.tenant, stored, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], version};
  if (br_admin_begin(c, t, name, o)) {
    int rc = br_sql_json(c, o, 200,
                         "UPDATE dmt.ciraconfigs x SET mps_server_address = coalesce($3, mps_server_address), "
                         "mps_port = coalesce($4::int, mps_port), user_name = coalesce($5, user_name), "
                         "common_name = coalesce($6, common_name), "
                         "server_address_format = coalesce($7::int, server_address_format), "
                         "auth_method = coalesce($8::int, auth_method), "
                         "mps_root_certificate = coalesce($9, mps_root_certificate), "
                         "proxydetails = coalesce($10, proxydetails) "
                         "WHERE tenant_id = $1 AND cira_config_name = $2 AND ($11::text IS NULL OR xmin::text = $11) "
                         "RETURNING (" CIRA_JSON ")::text",
                         11, p);
    if (rc <= 0) {
      br_sql_rollback(c);
      if (rc == 0) br_admin_conflict(c, t, &cira_kind, stored, o);
      else br_out_unexpected(o, "PATCH", name);
    } else if (!store_password(c, t, stored, o)) {
      br_sql_rollback(c);
    } else {
      br_admin_finish(c, t, &cira_kind, stored, "update", o);
    }
  }
  for (int i = 0; i < 8; i++) free(v[i]);
  return DMT_PG_OK;
}

static void update(struct br_txn *t) { br_db_run(t, update_work); }

#define BASE "/api/v1/admin/ciraconfigs"
static const struct br_route routes[] = {
    {.methods = BR_M_GET, .pattern = BASE, .handler = br_admin_list, .chain = NULL, .flags = 0, .data = &cira_kind},
    {.methods = BR_M_GET, .pattern = BASE "/:ciraConfigName", .handler = br_admin_get, .chain = NULL, .flags = 0, .data = &cira_kind},
    {.methods = BR_M_POST, .pattern = BASE, .handler = create, .chain = NULL, .flags = BR_RF_WRITE, .data = &cira_kind, .job_chain = &insert_chain},
    {.methods = BR_M_PATCH, .pattern = BASE, .handler = update, .chain = NULL, .flags = BR_RF_WRITE, .data = &cira_kind, .job_chain = &update_chain},
    {.methods = BR_M_DELETE, .pattern = BASE "/:ciraConfigName", .handler = br_admin_delete, .chain = NULL, .flags = BR_RF_WRITE, .data = &cira_kind},
};

const struct br_route_table br_routes_ciraconfigs = {routes, sizeof routes / sizeof routes[0]};
