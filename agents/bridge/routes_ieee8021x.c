/*
 * RPS 802.1x configs (/api/v1/admin/ieee8021xconfigs): DMT's
 * ieee8021xValidator (protocols allowed per interface kind, PXE timeout for
 * wired profiles). A password, when given, goes to the secret store
 * (IEEE8021x/<name> {PASSWORD}); the table only keeps a placeholder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridge.h"
#include "dmt/pg.h"

/*
 * A profile or wireless config may name an 802.1x config only when it exists
 * and is for the same kind of interface (DMT's wording in both messages).
 */
bool br_ieee8021x_matches(struct br_vctx *v, const json_t *value, bool wired_wanted, char *msg, size_t msglen) {
  char name[300];
  br_js_string(value, name, sizeof name);
  if (!v->db) return true;
  const char *p[] = {v->tenant, name};
  struct br_out scratch = {0};
  PGresult *r = br_sql(v->db, &scratch,
                       "SELECT wired_interface FROM dmt.ieee8021xconfigs WHERE tenant_id = $1 AND lower(profile_name) = lower($2)",
                       2, p);
  int rows = r ? PQntuples(r) : 0;
  bool wired = rows > 0 && PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (rows == 0) {
    snprintf(msg, msglen, "Ieee8021x profile %s does not exist in db", name);
    return false;
  }
  if (wired != wired_wanted) {
    snprintf(msg, msglen, "Ieee8021x profile %s is for %s interfaces", name, wired ? "wired" : "wireless");
    return false;
  }
  return true;
}

#define IEEE_JSON                                                                                               \
  "json_build_object('profileName', x.profile_name, 'authenticationProtocol', x.auth_protocol, 'servername', " \
  "x.servername, 'domain', x.domain, 'username', x.username, 'roamingIdentity', x.roaming_identity, "          \
  "'activeInS0', x.active_in_s0, 'pxeTimeout', x.pxe_timeout, 'wiredInterface', x.wired_interface, "           \
  "'tenantId', x.tenant_id, 'version', x.xmin::text)"

static const char *const ieee_secrets[] = {"IEEE8021x/", NULL};
static const struct br_ref_check ieee_refs[] = {
    {"SELECT EXISTS (SELECT 1 FROM dmt.wirelessconfigs WHERE tenant_id = $1 AND lower(ieee8021x_profile_name) = "
     "lower($2))",
     "802.1x config: %s is associated with a wireless profile."},
    {"SELECT EXISTS (SELECT 1 FROM dmt.profiles WHERE tenant_id = $1 AND lower(ieee8021x_profile_name) = lower($2))",
     "802.1x config: %s is associated with an AMT Profile."},
};
static const struct br_kind ieee_kind = {"802.1x", "dmt.ieee8021xconfigs", "profile_name", IEEE_JSON, "ieee8021x",
                                         ieee_secrets, ieee_refs, 2};

static bool alnum(const char *s) { return br_fmt_alnum(s); }

static bool wired_true(struct br_vctx *v, const json_t *value) {
  char s[16];
  br_js_string(br_body_get(v, "wiredInterface"), s, sizeof s);
  return !strcasecmp(s, "true");
}

static bool auth_protocol(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  static const long long wired[] = {0, 3, 5, 10, 2}, wireless[] = {0, 2};
  bool is_wired = br_js_truthy(br_body_get(v, "wiredInterface"));
  const long long *set = is_wired ? wired : wireless;
  size_t n = is_wired ? 5 : 2;
  for (size_t i = 0; i < n; i++)
    if (br_json_eq_int(value, set[i])) return true;
  snprintf(msg, msglen, "Authentication protocol must be one of %s",
           is_wired ? "0:EAP-TLS, 3:PEAPv1/EAP-GTC, 5:EAP-FAST/GTC, 10:EAP-FAST/TLS, 2:PEAPv0/EAP-MSCHAPv2"
                    : "0:EAP-TLS, 2:PEAPv0/EAP-MSCHAPv2");
  return false;
}

static bool pxe_timeout(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  if (!json_is_number(value)) {
    snprintf(msg, msglen, "PXE Timeout must be number");
    return false;
  }
  double d = json_number_value(value);
  if (d < 0 || d > 86400) {
    snprintf(msg, msglen, "PXE Timeout value should be 0 - 86400");
    return false;
  }
  return true;
}

#define IEEE_FIELDS                                                                                              \
  V_FIELD("profileName", BR_REQUIRED, V_NOT_EMPTY("802.1x profile name is required"),                           \
          V_MATCH(alnum, "802.1x profile name should be alphanumeric"),                                         \
          V_LEN(0, 32, "802.1x profile name maximum length is 32")),                                            \
      V_FIELD("wiredInterface", BR_REQUIRED, V_NOT_EMPTY("Wired interface flag is required")),                   \
      V_FIELD("authenticationProtocol", BR_REQUIRED, V_NOT_EMPTY("Authentication protocol is required"),         \
              V_CUSTOM(auth_protocol, NULL)),                                                                    \
      V_FIELD("pxeTimeout", BR_REQUIRED, V_IF(wired_true), V_NOT_EMPTY("PXE Timeout is required"),               \
              V_CUSTOM(pxe_timeout, NULL))

BR_CHAIN(create_chain, IEEE_FIELDS);
BR_CHAIN(update_chain, IEEE_FIELDS,
         V_FIELD("version", BR_REQUIRED, V_NOT_EMPTY("Version is required to patch/update a record.")));

static int write_work(PGconn *c, struct br_txn *t, struct br_out *o, bool insert) {
  if (!br_admin_validate(c, t, insert ? &create_chain : &update_chain, NULL, o)) return DMT_PG_OK;
  const json_t *b = t->body;
  const char *name = br_jstr(b, "profileName");
  char stored[300], vbuf[64];
  if (!insert && !br_admin_canonical(c, &ieee_kind, t->who.tenant, name, stored, sizeof stored)) {
    br_out_not_found(o, "802.1x", name);
    return DMT_PG_OK;
  }
  const char *target = insert ? name : stored;
  char *v[8] = {br_jsql(b, "authenticationProtocol"), br_jsql(b, "servername"), br_jsql(b, "domain"),
                br_jsql(b, "username"), br_jsql(b, "roamingIdentity"), br_jsql(b, "activeInS0"),
                br_jsql(b, "pxeTimeout"), br_jsql(b, "wiredInterface")};
  const char *pw = br_jstr(b, "password");
  const char *p[] = {t->who.tenant, target, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                     pw && *pw ? "PASSWORD" : NULL, insert ? NULL : br_admin_version(t, vbuf, sizeof vbuf)};
  if (br_admin_begin(c, t, target, o)) {
    int rc = insert ? br_sql_json(c, o, 201,
                                  "INSERT INTO dmt.ieee8021xconfigs AS x (tenant_id, profile_name, auth_protocol, "
                                  "servername, domain, username, roaming_identity, active_in_s0, pxe_timeout, "
                                  "wired_interface, password) VALUES ($1, $2, $3::int, $4, $5, $6, $7, $8::bool, "
                                  "$9::int, $10::bool, $11) RETURNING (" IEEE_JSON ")::text",
                                  11, p)
                    : br_sql_json(c, o, 200,
                                  "UPDATE dmt.ieee8021xconfigs x SET auth_protocol = $3::int, servername = $4, domain = "
                                  "$5, username = $6, roaming_identity = $7, active_in_s0 = $8::bool, pxe_timeout = "
                                  "$9::int, wired_interface = $10::bool, password = coalesce($11, password) WHERE "
                                  "tenant_id = $1 AND profile_name = $2 AND ($12::text IS NULL OR xmin::text = $12) "
                                  "RETURNING (" IEEE_JSON ")::text",
                                  12, p);
    bool ok = rc > 0;
    if (ok && pw && *pw) {
      json_t *obj = json_pack("{s:s}", "PASSWORD", pw);
      ok = br_admin_secret_put(c, t, "IEEE8021x/", target, obj, o);
      dmt_secrets_wipe(obj);
      if (!ok) rc = 1; /* o already holds the 500 */
    }
    if (!ok) {
      br_sql_rollback(c);
      if (rc == 0) br_admin_conflict(c, t, &ieee_kind, target, o);
      else if (rc < 0 && !strcmp(o->sqlstate, "23505")) {
        char msg[400];
        snprintf(msg, sizeof msg, "802.1x config: %s already exists", name);
        br_out_error(o, 400, "Unique key violation", msg);
      } else if (rc < 0) {
        br_out_unexpected(o, insert ? "POST" : "PATCH", name);
      }
    } else {
      br_admin_finish(c, t, &ieee_kind, target, insert ? "create" : "update", o);
    }
  }
  for (int i = 0; i < 8; i++) free(v[i]);
  return DMT_PG_OK;
}

static int create_work(PGconn *c, struct br_txn *t, struct br_out *o) { return write_work(c, t, o, true); }
static int update_work(PGconn *c, struct br_txn *t, struct br_out *o) { return write_work(c, t, o, false); }
static void create(struct br_txn *t) { br_db_run(t, create_work); }
static void update(struct br_txn *t) { br_db_run(t, update_work); }

#define BASE "/api/v1/admin/ieee8021xconfigs"
static const struct br_route routes[] = {
    {.methods = BR_M_GET, .pattern = BASE, .handler = br_admin_list, .chain = NULL, .flags = 0, .data = &ieee_kind},
    {.methods = BR_M_GET, .pattern = BASE "/:profileName", .handler = br_admin_get, .chain = NULL, .flags = 0, .data = &ieee_kind},
    {.methods = BR_M_POST, .pattern = BASE, .handler = create, .chain = NULL, .flags = BR_RF_WRITE, .data = &ieee_kind, .job_chain = &create_chain},
    {.methods = BR_M_PATCH, .pattern = BASE, .handler = update, .chain = NULL, .flags = BR_RF_WRITE, .data = &ieee_kind, .job_chain = &update_chain},
    {.methods = BR_M_DELETE, .pattern = BASE "/:profileName", .handler = br_admin_delete, .chain = NULL, .flags = BR_RF_WRITE, .data = &ieee_kind},
};

const struct br_route_table br_routes_ieee8021x = {routes, sizeof routes / sizeof routes[0]};
