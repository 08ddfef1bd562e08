/*
 * RPS wireless configs (/api/v1/admin/wirelessconfigs): DMT's
 * wirelessValidator (PSK length for PSK methods, an 802.1x profile required
 * for 802.1x methods and forbidden otherwise, and that profile must exist and
 * be a wireless one), the PSK passphrase kept in the secret store
 * (Wireless/<name> {PSK_PASSPHRASE}) with a placeholder in the table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/pg.h"

#define WIRELESS_JSON                                                                                           \
  "json_build_object('profileName', x.wireless_profile_name, 'authenticationMethod', x.authentication_method, " \
  "'encryptionMethod', x.encryption_method, 'ssid', x.ssid, 'pskValue', x.psk_value, 'linkPolicy', "            \
  "x.link_policy, 'ieee8021xProfileName', x.ieee8021x_profile_name, 'tenantId', x.tenant_id, 'version', "      \
  "x.xmin::text)"

static const char *const wireless_secrets[] = {"Wireless/", NULL};
static const struct br_ref_check wireless_refs[] = {
    {"SELECT EXISTS (SELECT 1 FROM dmt.profiles_wirelessconfigs WHERE tenant_id = $1 AND "
     "lower(wireless_profile_name) = lower($2))",
     "Wireless profile: %s is associated with an AMT Profile."},
};
static const struct br_kind wireless_kind = {"Wireless", "dmt.wirelessconfigs", "wireless_profile_name", WIRELESS_JSON,
                                             "wireless", wireless_secrets, wireless_refs, 1};
static const struct br_kind ieee_names = {.table = "dmt.ieee8021xconfigs", .name_col = "profile_name"};

static const char *const auth_methods[] = {"4", "5", "6", "7", NULL};
static const char *const enc_methods[] = {"3", "4", NULL};

static bool alnum(const char *s) { return br_fmt_alnum(s); }

static bool auth_is_psk(struct br_vctx *v, const json_t *value) {
  const json_t *m = br_body_get(v, "authenticationMethod");
  return br_json_eq_int(m, 4) || br_json_eq_int(m, 6);
}
static bool auth_is_8021x(struct br_vctx *v, const json_t *value) {
  const json_t *m = br_body_get(v, "authenticationMethod");
  return br_json_eq_int(m, 5) || br_json_eq_int(m, 7);
}
static bool auth_not_8021x(struct br_vctx *v, const json_t *value) { return !auth_is_8021x(v, value); }

static bool ieee_wireless(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  return br_ieee8021x_matches(v, value, false, msg, msglen);
}

static bool link_policy(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  if (!json_is_array(value)) return true;
  size_t i;
  const json_t *e;
  json_array_foreach(value, i, e) {
    if (!json_is_integer(e)) {
      snprintf(msg, msglen, "Array does not contain integers");
      return false;
    }
  }
  json_array_foreach(value, i, e) {
    long long n = json_integer_value(e);
    if (n != 1 && n != 14 && n != 16 && n != 224) {
      snprintf(msg, msglen,
               "Array values should be either 1: available on S0 AC, 14: available on Sx AC, 16: available on S0 "
               "DC, 224: available on Sx DC");
      return false;
    }
  }
  return true;
}

#define WIRELESS_FIELDS                                                                                            \
  V_FIELD("profileName", BR_REQUIRED, V_NOT_EMPTY("Wireless profile name is required"),                           \
          V_MATCH(alnum, "Wireless profile name should be alphanumeric"),                                         \
          V_LEN(0, 32, "Wireless profile name maximum length is 32")),                                            \
      V_FIELD("authenticationMethod", BR_REQUIRED, V_NOT_EMPTY("Authentication method is required"),               \
              V_IN(auth_methods, "Authentication method must be one of 4:WPA PSK, 5:WPA IEEE 802.1x, 6:WPA2 PSK, " \
                                 "7:WPA2 IEEE 802.1x")),                                                          \
      V_FIELD("encryptionMethod", BR_REQUIRED, V_NOT_EMPTY("Encryption method is required"),                       \
              V_IN(enc_methods, "Encryption method must be one of 3:TKIP, 4:CCMP")),                               \
      V_FIELD("ssid", BR_REQUIRED, V_NOT_EMPTY("SSID is required"), V_LEN(0, 32, "Maximum length is 32")),          \
      V_FIELD("pskPassphrase", BR_REQUIRED, V_IF(auth_is_psk),                                                      \
              V_LEN(8, 63, "PSK Passphrase length should be greater than or equal to 8 and less than or equal to 63")), \
      V_FIELD("ieee8021xProfileName", BR_REQUIRED, V_IF(auth_is_8021x),                                             \
              V_NOT_EMPTY("ieee8021xProfileName is required")),                                                    \
      V_FIELD("ieee8021xProfileName", BR_REQUIRED, V_IF(auth_not_8021x),                                            \
              V_EMPTY("ieee8021xProfileName can not be specified with the provided authenticationMethod")),        \
      V_FIELD("ieee8021xProfileName", BR_NULLABLE, V_CUSTOM(ieee_wireless, NULL)),                                 \
      V_FIELD("linkPolicy", BR_OPTIONAL, V_ARRAY("LinkPolicy should be an array of integers"),                     \
              V_CUSTOM(link_policy, NULL))

BR_CHAIN(create_chain, WIRELESS_FIELDS);
BR_CHAIN(update_chain, WIRELESS_FIELDS,
         V_FIELD("version", BR_REQUIRED, V_NOT_EMPTY("Version is required to patch/update a record.")));

static bool store_psk(PGconn *c, struct br_txn *t, const char *name, struct br_out *o) {
  const char *psk = br_jstr(t->body, "pskPassphrase");
  if (!psk || !*psk) return true;
  json_t *obj = json_pack("{s:s}", "PSK_PASSPHRASE", psk);
  bool ok = br_admin_secret_put(c, t, "Wireless/", name, obj, o);
  dmt_secrets_wipe(obj);
  return ok;
}

/* Shared by create and update: $1 tenant, $2 name, $3 auth, $4 enc, $5 ssid, $6 psk placeholder, $7 link policy
 * (JSON), $8 802.1x profile, $9 creator (insert) or version (update). */
static int write_work(PGconn *c, struct br_txn *t, struct br_out *o, bool insert) {
  if (!br_admin_validate(c, t, insert ? &create_chain : &update_chain, NULL, o)) return DMT_PG_OK;
  const json_t *b = t->body;
  const char *name = br_jstr(b, "profileName");
  char stored[300], ieee[300] = "", vbuf[64];
  if (!insert && !br_admin_canonical(c, &wireless_kind, t->who.tenant, name, stored, sizeof stored)) {
    br_out_not_found(o, "Wireless", name);
    return DMT_PG_OK;
  }
  const char *ieee_in = br_jstr(b, "ieee8021xProfileName");
  if (ieee_in && *ieee_in) br_admin_canonical(c, &ieee_names, t->who.tenant, ieee_in, ieee, sizeof ieee);
  char *auth = br_jsql(b, "authenticationMethod"), *enc = br_jsql(b, "encryptionMethod"), *lp = br_jsql(b, "linkPolicy");
  const char *psk = br_jstr(b, "pskPassphrase") && *br_jstr(b, "pskPassphrase") ? "PSK_PASSPHRASE" : NULL;
  const char *p[] = {t->who.tenant, insert ? name : stored, auth, enc, br_jstr(b, "ssid"), psk, lp,
                     ieee[0] ? ieee : NULL, insert ? t->who.subject : br_admin_version(t, vbuf, sizeof vbuf)};
  const char *target = insert ? name : stored;
  if (br_admin_begin(c, t, target, o)) {
    int rc = insert
                 ? br_sql_json(c, o, 201,
                               "INSERT INTO dmt.wirelessconfigs AS x (tenant_id, wireless_profile_name, "
                               "authentication_method, encryption_method, ssid, psk_passphrase, link_policy, "
                               "ieee8021x_profile_name, created_by) VALUES ($1, $2, $3::int, $4::int, $5, $6, "
                               "CASE WHEN $7::json IS NULL THEN NULL ELSE ARRAY(SELECT json_array_elements_text($7::json)::int) END, "
                               "$8, left($9, 40)) RETURNING (" WIRELESS_JSON ")::text",
                               9, p)
                 : br_sql_json(c, o, 200,
                               "UPDATE dmt.wirelessconfigs x SET authentication_method = $3::int, encryption_method = "
                               "$4::int, ssid = $5, psk_passphrase = coalesce($6, psk_passphrase), link_policy = "
                               "CASE WHEN $7::json IS NULL THEN link_policy ELSE ARRAY(SELECT "
                               "json_array_elements_text($7::json)::int) END, ieee8021x_profile_name = $8 "
                               "WHERE tenant_id = $1 AND wireless_profile_name = $2 AND ($9::text IS NULL OR "
                               "xmin::text = $9) RETURNING (" WIRELESS_JSON ")::text",
                               9, p);
    if (rc <= 0) {
      br_sql_rollback(c);
      if (rc == 0) br_admin_conflict(c, t, &wireless_kind, target, o);
      else if (!strcmp(o->sqlstate, "23505")) {
        char msg[400];
        snprintf(msg, sizeof msg, "Wireless profile %s already exists", name);
        br_out_error(o, 400, "Unique key violation", msg);
      } else {
        br_out_unexpected(o, insert ? "POST" : "PATCH", name);
      }
    } else if (!store_psk(c, t, target, o)) {
      br_sql_rollback(c);
    } else {
      br_admin_finish(c, t, &wireless_kind, target, insert ? "create" : "update", o);
    }
  }
  free(auth);
  free(enc);
  free(lp);
  return DMT_PG_OK;
}

static int create_work(PGconn *c, struct br_txn *t, struct br_out *o) { return write_work(c, t, o, true); }
static int update_work(PGconn *c, struct br_txn *t, struct br_out *o) { return write_work(c, t, o, false); }
static void create(struct br_txn *t) { br_db_run(t, create_work); }
static void update(struct br_txn *t) { br_db_run(t, update_work); }

#define BASE "/api/v1/admin/wirelessconfigs"
static const struct br_route routes[] = {
    {.methods = BR_M_GET, .pattern = BASE, .handler = br_admin_list, .chain = NULL, .flags = 0, .data = &wireless_kind},
    {.methods = BR_M_GET, .pattern = BASE "/:profileName", .handler = br_admin_get, .chain = NULL, .flags = 0, .data = &wireless_kind},
    {.methods = BR_M_POST, .pattern = BASE, .handler = create, .chain = NULL, .flags = BR_RF_WRITE, .data = &wireless_kind, .job_chain = &create_chain},
    {.methods = BR_M_PATCH, .pattern = BASE, .handler = update, .chain = NULL, .flags = BR_RF_WRITE, .data = &wireless_kind, .job_chain = &update_chain},
    {.methods = BR_M_DELETE, .pattern = BASE "/:profileName", .handler = br_admin_delete, .chain = NULL, .flags = BR_RF_WRITE, .data = &wireless_kind},
};

const struct br_route_table br_routes_wireless = {routes, sizeof routes / sizeof routes[0]};
