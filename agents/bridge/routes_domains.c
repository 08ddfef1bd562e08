/*
 * RPS domain profiles (/api/v1/admin/domains): the provisioning certificate
 * is validated on create exactly as DMT's RPS does (pfx.c; password, suffix,
 * validity, chain, EKU...), then stored with its password in the secret store
 * under certs/<name> {CERT, CERT_PASSWORD}; the table only gets DMT's
 * placeholders ("CERT", "CERT_PASSWORD") and the earliest expiry. Both the
 * name and the suffix are unique per tenant. PATCH re-runs no certificate
 * check (as DMT) but recomputes the expiry of a new certificate.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/pg.h"

#define DOMAIN_JSON                                                                                             \
  "json_build_object('profileName', x.name, 'domainSuffix', x.domain_suffix, 'provisioningCertStorageFormat', " \
  "x.provisioning_cert_storage_format, 'expirationDate', dmt.js_ts(x.expiration_date), 'tenantId', "            \
  "x.tenant_id, 'version', x.xmin::text)"

static const char *const domain_secrets[] = {"certs/", NULL};
static const struct br_kind domain_kind = {"Domain", "dmt.domains", "name", DOMAIN_JSON, "domain", domain_secrets,
                                           NULL, 0};

static const char *const formats[] = {"raw", "string", NULL};

static bool name_ud(const char *s) { return br_fmt_name_ud(s); }

/* DMT's provisioningCertValidator: every certificate check, reported on provisioningCert. */
static bool pfx_valid(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  const char *pw = json_string_value(br_body_get(v, "provisioningCertPassword"));
  const char *cert = json_string_value(value);
  if (!pw || !*pw || !cert || !*cert) return true;
  const char *suffix = json_string_value(br_body_get(v, "domainSuffix"));
  struct br_pfx_info scratch, *info = v->ud ? v->ud : &scratch;
  return br_pfx_check(cert, pw, suffix ? suffix : "", true, info, msg, msglen) == 0;
}

BR_CHAIN(create_chain,
         V_FIELD("profileName", BR_REQUIRED, V_NOT_EMPTY("AMT Domain profile name is required"),
                 V_MATCH(name_ud, "AMT Domain profile name accepts letters, numbers, hyphens (-), and underscores (_)")),
         V_FIELD("provisioningCertPassword", BR_REQUIRED, V_NOT_EMPTY("Provisioning Cert Password is required"),
                 V_LEN(0, 64, "Password should not exceed 64 characters in length")),
         V_FIELD("domainSuffix", BR_REQUIRED, V_NOT_EMPTY("Domain suffix name is required")),
         V_FIELD("provisioningCert", BR_REQUIRED, V_NOT_EMPTY("Provisioning certificate is required"),
                 V_CUSTOM(pfx_valid, NULL)),
         V_FIELD("provisioningCertStorageFormat", BR_REQUIRED, V_NOT_EMPTY("Provisioning Cert Storage Format is required"),
                 V_IN(formats, "Provisioning Cert Storage Format should be either 'raw' or 'string'")));

BR_CHAIN(update_chain,
         V_FIELD("profileName", BR_REQUIRED, V_NOT_EMPTY("AMT Domain profile name is required"),
                 V_MATCH(name_ud, "AMT Domain profile name accepts letters, numbers, hyphens (-), and underscores (_)")),
         V_FIELD("provisioningCertStorageFormat", BR_REQUIRED,
                 V_IN(formats, "Provisioning Cert Storage Format is either \"raw\" or \"string\"")),
         V_FIELD("provisioningCertPassword", BR_REQUIRED, V_LEN(0, 64, "Password should not exceed 64 characters in length")));

static void duplicate(struct br_out *o, const char *name) {
  char msg[400];
  snprintf(msg, sizeof msg, "Domain %s ID or Suffix already exists", name);
  br_out_error(o, 400, "Unique key violation", msg);
}

static bool put_cert(PGconn *c, struct br_txn *t, const char *name, const char *cert, const char *pw, struct br_out *o) {
  json_t *obj = json_pack("{s:s,s:s}", "CERT", cert, "CERT_PASSWORD", pw);
  bool ok = obj && br_admin_secret_put(c, t, "certs/", name, obj, o);
  dmt_secrets_wipe(obj);
  return ok;
}

static int create_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  struct br_pfx_info info = {0};
  if (!br_admin_validate(c, t, &create_chain, &info, o)) return DMT_PG_OK;
  const json_t *b = t->body;
  const char *name = br_jstr(b, "profileName");
  char exp[32];
  snprintf(exp, sizeof exp, "%lld", (long long)info.not_after_min);
  const char *p[] = {t->who.tenant, name, br_jstr(b, "domainSuffix"), br_jstr(b, "provisioningCertStorageFormat"), exp,
                     t->who.subject};
  if (!br_admin_begin(c, t, name, o)) return DMT_PG_OK;
  int rc = br_sql_json(c, o, 201,
                       "INSERT INTO dmt.domains AS x (tenant_id, name, domain_suffix, provisioning_cert, "
                       "provisioning_cert_storage_format, provisioning_cert_key, expiration_date, created_by) VALUES "
                       "($1, $2, $3, 'CERT', $4, 'CERT_PASSWORD', to_timestamp($5::bigint), left($6, 40)) "
                       "RETURNING (" DOMAIN_JSON ")::text",
                       6, p);
  if (rc <= 0) {
    br_sql_rollback(c);
    if (!strcmp(o->sqlstate, "23505")) duplicate(o, name);
    else br_out_unexpected(o, "POST", name);
    return DMT_PG_OK;
  }
  if (!put_cert(c, t, name, br_jstr(b, "provisioningCert"), br_jstr(b, "provisioningCertPassword"), o)) {
    br_sql_rollback(c); /* DMT deletes the row when the Vault write fails: here it never commits */
    return DMT_PG_OK;
  }
  br_admin_finish(c, t, &domain_kind, name, "create", o);
  return DMT_PG_OK;
}

static int update_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  if (!br_admin_validate(c, t, &update_chain, NULL, o)) return DMT_PG_OK;
  const json_t *b = t->body;
  const char *name = br_jstr(b, "profileName");
  char stored[300], vbuf[64], exp[32] = "", err[256];
  if (!br_admin_canonical(c, &domain_kind, t->who.tenant, name, stored, sizeof stored)) {
    br_out_not_found(o, "Domain", name);
    return DMT_PG_OK;
  }
  const char *cert = br_jstr(b, "provisioningCert"), *pw = br_jstr(b, "provisioningCertPassword");
  bool new_cert = cert && *cert, new_pw = pw && *pw;
  json_t *old = NULL;
  if (new_cert != new_pw) { /* the other half comes from the secret store */
    char path[320];
    br_secret_path(path, sizeof path, "certs/", stored);
    if (!t->srv->secrets ||
        dmt_secrets_get(t->srv->secrets, c, t->who.tenant, path, &old, err, sizeof err) != DMT_SECRETS_OK) {
      br_out_unexpected(o, "PATCH", name);
      return DMT_PG_OK;
    }
  }
  const char *use_cert = new_cert ? cert : br_jstr(old, "CERT"), *use_pw = new_pw ? pw : br_jstr(old, "CERT_PASSWORD");
  if (new_cert || new_pw) {
    /* DMT re-runs none of the creation checks here; we still make sure the stored pair opens (a new
     * password alone that does not open the stored certificate is refused, DMT would store it). */
    struct br_pfx_info info;
    char msg[512];
    const char *field = new_cert ? "provisioningCert" : "provisioningCertPassword";
    if (br_pfx_check(use_cert ? use_cert : "", use_pw ? use_pw : "", NULL, false, &info, msg, sizeof msg) != 0) {
      dmt_secrets_wipe(old);
      json_t *errors = json_array();
      json_array_append_new(errors, br_verror(new_cert ? json_object_get(b, field) : NULL, msg, field,
                                              "body"));
      br_out_validation(o, errors);
      return DMT_PG_OK;
    }
    if (new_cert) snprintf(exp, sizeof exp, "%lld", (long long)info.not_after_min);
  }
  const char *p[] = {t->who.tenant, stored, br_jstr(b, "domainSuffix"), br_jstr(b, "provisioningCertStorageFormat"),
                     exp[0] ? exp : NULL, br_admin_version(t, vbuf, sizeof vbuf)};
  if (br_admin_begin(c, t, name, o)) {
    int rc = br_sql_json(c, o, 200,
                         "UPDATE dmt.domains x SET domain_suffix = coalesce($3, domain_suffix), "
                         "provisioning_cert_storage_format = coalesce($4, provisioning_cert_storage_format), "
                         "expiration_date = coalesce(to_timestamp($5::bigint), expiration_date) WHERE tenant_id = $1 "
                         "AND name = $2 AND ($6::text IS NULL OR xmin::text = $6) RETURNING (" DOMAIN_JSON ")::text",
                         6, p);
    if (rc <= 0) {
      br_sql_rollback(c);
      if (rc == 0) br_admin_conflict(c, t, &domain_kind, stored, o);
      else if (!strcmp(o->sqlstate, "23505")) duplicate(o, name);
      else br_out_unexpected(o, "PATCH", name);
    } else if ((new_cert || new_pw) && !(use_cert && use_pw && put_cert(c, t, stored, use_cert, use_pw, o))) {
      br_sql_rollback(c);
      if (o->status != 500) br_out_unexpected(o, "PATCH", name);
    } else {
      br_admin_finish(c, t, &domain_kind, stored, "update", o);
    }
  }
  dmt_secrets_wipe(old);
  return DMT_PG_OK;
}

static void create(struct br_txn *t) { br_db_run(t, create_work); }
static void update(struct br_txn *t) { br_db_run(t, update_work); }

#define BASE "/api/v1/admin/domains"
static const struct br_route routes[] = {
    {.methods = BR_M_GET, .pattern = BASE, .handler = br_admin_list, .chain = NULL, .flags = 0, .data = &domain_kind},
    {.methods = BR_M_GET, .pattern = BASE "/:domainName", .handler = br_admin_get, .chain = NULL, .flags = 0, .data = &domain_kind},
    {.methods = BR_M_POST, .pattern = BASE, .handler = create, .chain = NULL, .flags = BR_RF_WRITE, .data = &domain_kind, .job_chain = &create_chain},
    {.methods = BR_M_PATCH, .pattern = BASE, .handler = update, .chain = NULL, .flags = BR_RF_WRITE, .data = &domain_kind, .job_chain = &update_chain},
    {.methods = BR_M_DELETE, .pattern = BASE "/:domainName", .handler = br_admin_delete, .chain = NULL, .flags = BR_RF_WRITE, .data = &domain_kind},
};

const struct br_route_table br_routes_domains = {routes, sizeof routes / sizeof routes[0]};
