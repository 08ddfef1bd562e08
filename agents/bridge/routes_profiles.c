/*
 * RPS AMT profiles (/api/v1/admin/profiles): DMT's amtProfileValidator rules
 * (including the checks that read the database: wifi/proxy/802.1x profiles
 * must exist, the 802.1x one must be wired), the create defaults (user
 * consent, KVM on, TLS signing authority), PATCH merging as DMT's editProfile
 * does, wifi and proxy links with priorities, static AMT/MEBx passwords kept
 * only in the secret store (profiles/<name>), and a self-signed TLS pair
 * generated into TLS/<name> for TLS profiles. Names referenced by a profile
 * are resolved case-insensitively (DMT stores them as citext).
 */
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/pg.h"
#include "dmt/tls.h"

#define PROFILE_JSON                                                                                              \
  "json_build_object('profileName', x.profile_name, 'activation', x.activation, 'ciraConfigName', "              \
  "x.cira_config_name, 'generateRandomPassword', x.generate_random_password, 'generateRandomMEBxPassword', "     \
  "x.generate_random_mebx_password, 'tags', x.tags, 'dhcpEnabled', x.dhcp_enabled, 'ipSyncEnabled', "            \
  "x.ip_sync_enabled, 'localWifiSyncEnabled', x.local_wifi_sync_enabled, 'uefiWifiSyncEnabled', "                \
  "x.uefi_wifi_sync_enabled, 'tlsMode', x.tls_mode, 'tlsSigningAuthority', x.tls_signing_authority, "             \
  "'userConsent', x.user_consent, 'iderEnabled', x.ider_enabled, 'kvmEnabled', x.kvm_enabled, 'solEnabled', "    \
  "x.sol_enabled, 'ieee8021xProfileName', x.ieee8021x_profile_name, 'tenantId', x.tenant_id, 'version', "         \
  "x.xmin::text, 'wifiConfigs', coalesce((SELECT json_agg(json_build_object('profileName', "                     \
  "w.wireless_profile_name, 'priority', w.priority) ORDER BY w.priority) FROM dmt.profiles_wirelessconfigs w "   \
  "WHERE w.tenant_id = x.tenant_id AND w.profile_name = x.profile_name), '[]'::json), 'proxyConfigs', "          \
  "coalesce((SELECT json_agg(json_build_object('name', p.proxy_config_name, 'priority', p.priority) ORDER BY "   \
  "p.priority) FROM dmt.profiles_proxyconfigs p WHERE p.tenant_id = x.tenant_id AND p.profile_name = "            \
  "x.profile_name), '[]'::json))"

static const char *const profile_secrets[] = {"profiles/", "TLS/", NULL};
static const struct br_kind profile_kind = {"AMT", "dmt.profiles", "profile_name", PROFILE_JSON, "profile",
                                            profile_secrets, NULL, 0};
/* only table and name column are used: canonical-name lookups */
static const struct br_kind cira_names = {.table = "dmt.ciraconfigs", .name_col = "cira_config_name"};
static const struct br_kind wifi_names = {.table = "dmt.wirelessconfigs", .name_col = "wireless_profile_name"};
static const struct br_kind proxy_names = {.table = "dmt.proxyconfigs", .name_col = "proxy_config_name"};
static const struct br_kind ieee_names = {.table = "dmt.ieee8021xconfigs", .name_col = "profile_name"};

#define ACM "acmactivate"
#define CCM "ccmactivate"

/* ------------------------------------------------------------ validators */

static const char *const client_actions[] = {"invalid",       "acmactivate", "ccmactivate", "deactivate",
                                             "ciraconfig",    "networkConfig", "tlsConfig", "maintenance", NULL};
static const char *const authorities[] = {"SelfSigned", "MicrosoftCA", NULL};
static const char *const consents[] = {"None", "All", "KVM", NULL};

#define ACT_MSG \
  "Activation accepts either acmactivate (admin control activation) or ccmactivate (client control mode activation)"
#define PW_RULE                                                                                                   \
  " password is required field should contains at least one lowercase letter, one uppercase letter, one numeric " \
  "digit,and one special character and password length should be in between 8 to 32."
#define TLS_MSG                                                                                                  \
  "tlsMode must be set to one of these values: 1 (Server Authentication Only), 2 (Server and Non-TLS "          \
  "Authentication), 3 (Mutual TLS only), 4 (Mutual and Non-TLS authentication)"

static bool profile_name(const char *s) { return br_fmt_profile_name(s); }
static bool strong(const char *s) { return br_fmt_strong_password(s); }

static bool absent(const json_t *v) { return !v || json_is_null(v); }
static bool is_true(const json_t *v) { return json_is_true(v); }
static bool str_is(const json_t *v, const char *s) { return json_is_string(v) && !strcmp(json_string_value(v), s); }

static bool activation_create(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  if (absent(br_body_get(v, "amtPassword")) && !br_js_truthy(br_body_get(v, "generateRandomPassword"))) {
    snprintf(msg, msglen, "Either generateRandomPassword should be enabled or provide amtPassword");
    return false;
  }
  if (str_is(value, ACM) && absent(br_body_get(v, "mebxPassword")) &&
      !br_js_truthy(br_body_get(v, "generateRandomMEBxPassword"))) {
    snprintf(msg, msglen, "MEBx Password is required for acmactivate");
    return false;
  }
  return true;
}

static bool gen_random_is_false(struct br_vctx *v, const json_t *value) {
  return json_is_false(br_body_get(v, "generateRandomPassword"));
}
static bool gen_random_mebx_is_false(struct br_vctx *v, const json_t *value) {
  return json_is_false(br_body_get(v, "generateRandomMEBxPassword"));
}

static bool random_amt(struct br_vctx *v, const json_t *value, char *msg, size_t msglen, bool create) {
  bool pwd = !absent(br_body_get(v, "amtPassword"));
  if (is_true(value) && pwd) {
    snprintf(msg, msglen,
             "Either generate Random AMT Password should be enabled or should provide AMT Password but not both");
    return false;
  }
  if (create && !is_true(value) && !pwd) {
    snprintf(msg, msglen, "If generate random AMT password is disabled, amtPassword is mandatory");
    return false;
  }
  return true;
}
static bool random_amt_create(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  return random_amt(v, value, msg, msglen, true);
}
static bool random_amt_update(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  return random_amt(v, value, msg, msglen, false);
}

static bool random_mebx(struct br_vctx *v, const json_t *value, char *msg, size_t msglen, bool create) {
  if (!str_is(br_body_get(v, "activation"), ACM)) return true;
  bool pwd = !absent(br_body_get(v, "mebxPassword"));
  if (is_true(value) && pwd) {
    snprintf(msg, msglen,
             "Either generate MEBx password should be enabled or should provide MEBx password, but not both");
    return false;
  }
  if (create && !is_true(value) && !pwd) {
    snprintf(msg, msglen, "If generate random MEBx password is disabled, mebxPassword is mandatory");
    return false;
  }
  return true;
}
static bool random_mebx_create(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  return random_mebx(v, value, msg, msglen, true);
}
static bool random_mebx_update(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  return random_mebx(v, value, msg, msglen, false);
}

static bool cira_vs_tls(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  if (!absent(br_body_get(v, "tlsMode"))) {
    snprintf(msg, msglen, "CIRA cannot be configured if TLS is enabled");
    return false;
  }
  return true;
}

static bool consent_ccm(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  if (str_is(br_body_get(v, "activation"), CCM) && !str_is(value, "All")) {
    snprintf(msg, msglen, "User consent is required for all the actions in client control mode");
    return false;
  }
  return true;
}

/* 1 exists, 0 missing (also when validating without a database: assume it exists -> 1) */
static int exists_ci(struct br_vctx *v, const struct br_kind *k, const char *name) {
  if (!v->db) return 1;
  char out[300];
  return br_admin_canonical(v->db, k, v->tenant, name ? name : "", out, sizeof out) ? 1 : 0;
}

/* Checks the priorities and the existence of a list of {<key>, priority} links. */
static bool links(struct br_vctx *v, const json_t *value, char *msg, size_t msglen, const char *key, size_t max,
                  const char *max_msg, const char *what, const struct br_kind *k) {
  if (json_array_size(value) > max) {
    snprintf(msg, msglen, "%s", max_msg);
    return false;
  }
  size_t i;
  const json_t *cfg;
  json_array_foreach(value, i, cfg) {
    const json_t *pr = json_object_get(cfg, "priority");
    if (json_is_number(pr) && (json_number_value(pr) < 1 || json_number_value(pr) > 255 ||
                               json_number_value(pr) != (double)(long long)json_number_value(pr))) {
      snprintf(msg, msglen, "%s config priority should be an integer and between 1 and 255", what);
      return false;
    }
    if (!json_is_integer(pr)) {
      snprintf(msg, msglen, "%s config priority should be an integer and between 1 and 255", what);
      return false;
    }
  }
  char missing[512] = "";
  size_t used = 0;
  json_array_foreach(value, i, cfg) {
    const char *name = json_string_value(json_object_get(cfg, key));
    if (exists_ci(v, k, name) == 0)
      used += (size_t)snprintf(missing + used, used < sizeof missing ? sizeof missing - used : 0, "%s%s",
                               used ? "," : "", name ? name : "");
  }
  if (used) {
    snprintf(msg, msglen, "%s configs %s does not exists in db", what, missing);
    return false;
  }
  return true;
}

static bool wifi_create(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  if (!json_is_array(value)) return true;
  if (!br_js_truthy(br_body_get(v, "dhcpEnabled")) && json_array_size(value) > 0) {
    snprintf(msg, msglen, "Wifi supports only DHCP in AMT");
    return false;
  }
  return links(v, value, msg, msglen, "profileName", 8, "A maximum of 8 wifi profiles can be stored at a time.",
               "wifi", &wifi_names);
}

static bool wifi_update(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  if (!json_is_array(value)) return true;
  if (json_array_size(value) > 0 && absent(br_body_get(v, "dhcpEnabled"))) {
    snprintf(msg, msglen, "DHCP enabled should be true");
    return false;
  }
  return wifi_create(v, value, msg, msglen);
}

static bool proxy_links(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  if (!json_is_array(value)) return true;
  return links(v, value, msg, msglen, "name", 15, "A maximum of 15 proxy profiles can be stored at a time.", "proxy",
               &proxy_names);
}

static bool ieee_wired(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  return br_ieee8021x_matches(v, value, true, msg, msglen);
}

#define COMMON_TAIL                                                                                    \
  V_FIELD("tlsMode", BR_NULLABLE, V_INT(1, 4, TLS_MSG)),                                                        \
      V_FIELD("tlsSigningAuthority", BR_NULLABLE,                                                                \
              V_IN(authorities, "TLS Signing Authority must be one of SelfSigned,MicrosoftCA")),                 \
      V_FIELD("ciraConfigName", BR_NULLABLE, V_CUSTOM(cira_vs_tls, NULL)),                                       \
      V_FIELD("tags", BR_NULLABLE, V_ARRAY(NULL)), V_FIELD("tags.*", BR_OPTIONAL, V_STRING(NULL))

#define COMMON_FLAGS                                                                                             \
  V_FIELD("ipSyncEnabled", BR_NULLABLE, V_BOOL("ipSyncEnabled must be a boolean")),                             \
      V_FIELD("localWifiSyncEnabled", BR_NULLABLE, V_BOOL("localWifiSyncEnabled must be a boolean")),            \
      V_FIELD("uefiWifiSyncEnabled", BR_NULLABLE, V_BOOL("uefiWifiSyncEnabled must be a boolean"))

#define CONSENT_AND_REDIRECTION                                                                                   \
  V_FIELD("userConsent", BR_NULLABLE, V_IN(consents, "User consent must be one of None,All,KVM"),                \
          V_CUSTOM(consent_ccm, NULL)),                                                                          \
      V_FIELD("iderEnabled", BR_NULLABLE, V_BOOL("IDER enabled must be a boolean")),                             \
      V_FIELD("kvmEnabled", BR_NULLABLE, V_BOOL("KVM enabled must be a boolean")),                               \
      V_FIELD("solEnabled", BR_NULLABLE, V_BOOL("Serial Over Lan (sol) enabled must be a boolean"))

BR_CHAIN(create_chain,
         V_FIELD("profileName", BR_REQUIRED, V_NOT_EMPTY("AMT profile name is required"),
                 V_MATCH(profile_name, "AMT profile name accepts letters, numbers, special characters and no spaces")),
         V_FIELD("activation", BR_REQUIRED, V_NOT_EMPTY("Activation is required"), V_IN(client_actions, ACT_MSG),
                 V_CUSTOM(activation_create, NULL)),
         V_FIELD("amtPassword", BR_OPTIONAL, V_IF(gen_random_is_false), V_MATCH(strong, "AMT" PW_RULE)),
         V_FIELD("generateRandomPassword", BR_REQUIRED, V_DEFAULT("false"),
                 V_BOOL("Generate random AMT password must be a boolean true or false"),
                 V_CUSTOM(random_amt_create, NULL)),
         V_FIELD("mebxPassword", BR_NULLABLE, V_MATCH(strong, "MEBx" PW_RULE)),
         V_FIELD("generateRandomMEBxPassword", BR_REQUIRED, V_DEFAULT("false"),
                 V_BOOL("Generate random MEBx password must be a boolean true or false"),
                 V_CUSTOM(random_mebx_create, NULL)),
         COMMON_TAIL, V_FIELD("dhcpEnabled", BR_REQUIRED, V_NOT_EMPTY(NULL), V_BOOL("DHCP enabled must be a boolean")),
         COMMON_FLAGS, V_FIELD("wifiConfigs", BR_NULLABLE, V_ARRAY(NULL), V_CUSTOM(wifi_create, NULL)),
         V_FIELD("proxyConfigs", BR_NULLABLE, V_ARRAY(NULL), V_CUSTOM(proxy_links, NULL)),
         V_FIELD("ieee8021xProfileName", BR_NULLABLE, V_CUSTOM(ieee_wired, NULL)), CONSENT_AND_REDIRECTION);

BR_CHAIN(update_chain,
         V_FIELD("profileName", BR_REQUIRED, V_NOT_EMPTY("AMT profile name is required"),
                 V_MATCH(profile_name, "AMT profile name accepts letters, numbers, special characters and no spaces")),
         V_FIELD("activation", BR_REQUIRED, V_IN(client_actions, ACT_MSG)),
         V_FIELD("amtPassword", BR_OPTIONAL, V_IF(gen_random_is_false), V_MATCH(strong, "AMT" PW_RULE)),
         V_FIELD("generateRandomPassword", BR_OPTIONAL,
                 V_BOOL("Generate random AMT password must be a boolean true or false"),
                 V_CUSTOM(random_amt_update, NULL)),
         V_FIELD("mebxPassword", BR_NULLABLE, V_IF(gen_random_mebx_is_false), V_MATCH(strong, "MEBx" PW_RULE)),
         V_FIELD("generateRandomMEBxPassword", BR_OPTIONAL,
                 V_BOOL("Generate random MEBx password must be a boolean true or false"),
                 V_CUSTOM(random_mebx_update, NULL)),
         COMMON_TAIL, V_FIELD("dhcpEnabled", BR_OPTIONAL, V_BOOL("DHCP enabled must be a boolean")),
         COMMON_FLAGS, V_FIELD("wifiConfigs", BR_NULLABLE, V_ARRAY(NULL), V_CUSTOM(wifi_update, NULL)),
         V_FIELD("proxyConfigs", BR_NULLABLE, V_ARRAY(NULL), V_CUSTOM(proxy_links, NULL)),
         V_FIELD("ieee8021xProfileName", BR_NULLABLE, V_CUSTOM(ieee_wired, NULL)), CONSENT_AND_REDIRECTION,
         V_FIELD("version", BR_REQUIRED, V_NOT_EMPTY("Version is required to patch/update a record.")));

/* ------------------------------------------------------------ the stored profile */

struct profile {
  char name[300];
  char activation[32];
  bool gen_random, gen_random_mebx;
  bool amt_static, mebx_static; /* the row holds a placeholder: a static password is in the secret store */
  char *tags_json;              /* JSON array text or NULL */
  const char *dhcp, *ip_sync, *local_wifi, *uefi_wifi, *ider, *kvm, *sol; /* "true"/"false"/NULL */
  char tls_mode[8];             /* "" = NULL */
  char authority[32];
  char consent[16];
  char cira[300], ieee[300];    /* canonical names, "" = NULL */
};

static const char *tf(bool b) { return b ? "true" : "false"; }

static const char *opt_bool(const json_t *v, const char *fallback) {
  if (json_is_boolean(v)) return tf(json_is_true(v));
  if (json_is_string(v) || json_is_integer(v)) { /* validated loose booleans ("true", "1") */
    char s[16];
    br_js_string(v, s, sizeof s);
    return tf(!strcmp(s, "true") || !strcmp(s, "1"));
  }
  return fallback;
}

static void render_tags(const json_t *v, char **out) {
  free(*out);
  *out = json_is_array(v) ? json_dumps(v, JSON_COMPACT) : NULL;
}

static const char *col(const json_t *row, const char *k) {
  const json_t *v = json_object_get(row, k);
  return json_is_true(v) ? "true" : json_is_false(v) ? "false" : NULL;
}

/* Loads the stored row (raw columns) into p; false when absent. */
static bool load(PGconn *c, struct br_out *o, const char *tenant, const char *name, struct profile *p, json_t **row) {
  const char *prm[] = {tenant, name};
  struct br_out scratch = {0};
  int rc = br_sql_json(c, &scratch, 200,
                       "SELECT row_to_json(x)::text FROM dmt.profiles x WHERE tenant_id = $1 AND lower(profile_name) = "
                       "lower($2) FOR UPDATE",
                       2, prm);
  *row = rc == 1 ? json_loadb(scratch.body, scratch.len, 0, NULL) : NULL;
  br_out_reset(&scratch);
  if (!*row) return false;
  json_t *r = *row;
  snprintf(p->name, sizeof p->name, "%s", br_jstr(r, "profile_name"));
  snprintf(p->activation, sizeof p->activation, "%s", br_jstr(r, "activation") ? br_jstr(r, "activation") : "");
  p->gen_random = json_is_true(json_object_get(r, "generate_random_password"));
  p->gen_random_mebx = json_is_true(json_object_get(r, "generate_random_mebx_password"));
  p->amt_static = !absent(json_object_get(r, "amt_password"));
  p->mebx_static = !absent(json_object_get(r, "mebx_password"));
  render_tags(json_object_get(r, "tags"), &p->tags_json);
  p->dhcp = col(r, "dhcp_enabled");
  p->ip_sync = col(r, "ip_sync_enabled");
  p->local_wifi = col(r, "local_wifi_sync_enabled");
  p->uefi_wifi = col(r, "uefi_wifi_sync_enabled");
  p->ider = col(r, "ider_enabled");
  p->kvm = col(r, "kvm_enabled");
  p->sol = col(r, "sol_enabled");
  const json_t *tm = json_object_get(r, "tls_mode");
  if (json_is_integer(tm)) snprintf(p->tls_mode, sizeof p->tls_mode, "%lld", (long long)json_integer_value(tm));
  snprintf(p->authority, sizeof p->authority, "%s",
           br_jstr(r, "tls_signing_authority") ? br_jstr(r, "tls_signing_authority") : "");
  snprintf(p->consent, sizeof p->consent, "%s", br_jstr(r, "user_consent") ? br_jstr(r, "user_consent") : "");
  snprintf(p->cira, sizeof p->cira, "%s", br_jstr(r, "cira_config_name") ? br_jstr(r, "cira_config_name") : "");
  snprintf(p->ieee, sizeof p->ieee, "%s", br_jstr(r, "ieee8021x_profile_name") ? br_jstr(r, "ieee8021x_profile_name") : "");
  (void)o;
  return true;
}

/* DMT's adjustTlsConfiguration: no TLS, no authority; TLS without one means SelfSigned. */
static void adjust_tls(struct profile *p) {
  if (!p->tls_mode[0]) p->authority[0] = '\0';
  else if (!p->authority[0]) snprintf(p->authority, sizeof p->authority, "SelfSigned");
}

static bool write_row(PGconn *c, struct br_txn *t, struct br_out *o, const struct profile *p, bool insert,
                      const char *version, int *updated) {
  const char *prm[] = {t->who.tenant,
                       p->name,
                       p->activation,
                       p->gen_random ? NULL : "AMT_PASSWORD",
                       tf(p->gen_random),
                       p->cira[0] ? p->cira : NULL,
                       p->mebx_static ? "MEBX_PASSWORD" : NULL,
                       tf(p->gen_random_mebx),
                       p->tags_json,
                       p->dhcp,
                       p->ip_sync,
                       p->local_wifi,
                       p->uefi_wifi,
                       p->tls_mode[0] ? p->tls_mode : NULL,
                       p->authority[0] ? p->authority : NULL,
                       p->consent[0] ? p->consent : NULL,
                       p->ider,
                       p->kvm,
                       p->sol,
                       p->ieee[0] ? p->ieee : NULL,
                       version};
  PGresult *r;
  if (insert)
    r = br_sql(c, o,
               "INSERT INTO dmt.profiles (tenant_id, profile_name, activation, amt_password, generate_random_password, "
               "cira_config_name, mebx_password, generate_random_mebx_password, tags, dhcp_enabled, ip_sync_enabled, "
               "local_wifi_sync_enabled, uefi_wifi_sync_enabled, tls_mode, tls_signing_authority, user_consent, "
               "ider_enabled, kvm_enabled, sol_enabled, ieee8021x_profile_name) VALUES ($1, $2, $3, $4, $5::bool, $6, $7, "
               "$8::bool, CASE WHEN $9::json IS NULL THEN NULL ELSE ARRAY(SELECT json_array_elements_text($9::json)) END, "
               "$10::bool, $11::bool, $12::bool, $13::bool, $14::int, $15, $16, $17::bool, $18::bool, $19::bool, $20) "
               "RETURNING 1",
               20, prm);
  else
    r = br_sql(c, o,
               "UPDATE dmt.profiles SET activation = $3, amt_password = $4, generate_random_password = $5::bool, "
               "cira_config_name = $6, mebx_password = $7, generate_random_mebx_password = $8::bool, "
               "tags = CASE WHEN $9::json IS NULL THEN NULL ELSE ARRAY(SELECT json_array_elements_text($9::json)) END, "
               "dhcp_enabled = $10::bool, ip_sync_enabled = $11::bool, local_wifi_sync_enabled = $12::bool, "
               "uefi_wifi_sync_enabled = $13::bool, tls_mode = $14::int, tls_signing_authority = $15, user_consent = $16, "
               "ider_enabled = $17::bool, kvm_enabled = $18::bool, sol_enabled = $19::bool, ieee8021x_profile_name = $20 "
               "WHERE tenant_id = $1 AND profile_name = $2 AND ($21::text IS NULL OR xmin::text = $21) RETURNING 1",
               21, prm);
  if (!r) return false;
  *updated = PQntuples(r);
  PQclear(r);
  return true;
}

/* Replaces the profile's wifi or proxy links with body[key] ({<name_key>, priority}), names made canonical. */
static bool write_links(PGconn *c, struct br_txn *t, struct br_out *o, const char *profile, const json_t *list,
                        bool wifi) {
  const char *p[] = {t->who.tenant, profile};
  if (!br_sql_ok(c, o,
                 wifi ? "DELETE FROM dmt.profiles_wirelessconfigs WHERE tenant_id = $1 AND profile_name = $2"
                      : "DELETE FROM dmt.profiles_proxyconfigs WHERE tenant_id = $1 AND profile_name = $2",
                 2, p))
    return false;
  size_t i;
  const json_t *cfg;
  json_array_foreach(list, i, cfg) {
    const char *name = br_jstr(cfg, wifi ? "profileName" : "name");
    char canon[300], prio[32];
    if (!name || !br_admin_canonical(c, wifi ? &wifi_names : &proxy_names, t->who.tenant, name, canon, sizeof canon))
      return false;
    snprintf(prio, sizeof prio, "%lld", (long long)json_integer_value(json_object_get(cfg, "priority")));
    const char *q[] = {t->who.tenant, profile, canon, prio, t->who.subject};
    if (!br_sql_ok(c, o,
                   wifi ? "INSERT INTO dmt.profiles_wirelessconfigs (tenant_id, profile_name, wireless_profile_name, "
                          "priority, created_by) VALUES ($1, $2, $3, $4::int, left($5, 40))"
                        : "INSERT INTO dmt.profiles_proxyconfigs (tenant_id, profile_name, proxy_config_name, priority, "
                          "created_by) VALUES ($1, $2, $3, $4::int, left($5, 40))",
                   5, q))
      return false;
  }
  return true;
}

/* A self-signed root and a client certificate it issues (DMT: oact-<name>, oact-issued-<name>). */
static json_t *tls_pair(const char *name, char *err, size_t errlen) {
  char root_cn[320], leaf_cn[320];
  snprintf(root_cn, sizeof root_cn, "oact-%s", name);
  snprintf(leaf_cn, sizeof leaf_cn, "oact-issued-%s", name);
  EVP_PKEY *rk = dmt_tls_rsa_key(2048), *lk = dmt_tls_rsa_key(2048);
  struct dmt_cert_spec root = {.common_name = root_cn, .org = "Intel", .is_ca = true, .days_before = 1,
                               .days_valid = 20 * 365};
  struct dmt_cert_spec leaf = {.common_name = leaf_cn, .org = "Intel", .days_before = 1, .days_valid = 20 * 365,
                               .ext_key_usage = "clientAuth,2.16.840.1.113741.1.2.1"};
  X509 *rc = rk ? dmt_tls_issue(&root, rk, NULL, NULL, err, errlen) : NULL;
  X509 *lc = rc && lk ? dmt_tls_issue(&leaf, lk, rc, rk, err, errlen) : NULL;
  json_t *out = NULL;
  if (lc) {
    char *rpem = dmt_tls_cert_pem(rc), *lpem = dmt_tls_cert_pem(lc), *rkey = dmt_tls_key_pem(rk), *lkey = dmt_tls_key_pem(lk);
    if (rpem && lpem && rkey && lkey)
      out = json_pack("{s:s,s:s,s:s,s:s}", "ROOT_CERTIFICATE", rpem, "ROOT_KEY", rkey, "ISSUED_CERTIFICATE", lpem,
                      "ISSUED_KEY", lkey);
    free(rpem);
    free(lpem);
    if (rkey) OPENSSL_cleanse(rkey, strlen(rkey));
    if (lkey) OPENSSL_cleanse(lkey, strlen(lkey));
    free(rkey);
    free(lkey);
  }
  X509_free(rc);
  X509_free(lc);
  EVP_PKEY_free(rk);
  EVP_PKEY_free(lk);
  return out;
}

static bool ensure_tls(PGconn *c, struct br_txn *t, struct br_out *o, const struct profile *p) {
  if (strcmp(p->authority, "SelfSigned") != 0) return true;
  char path[320], err[256];
  br_secret_path(path, sizeof path, "TLS/", p->name);
  json_t *existing = NULL;
  if (t->srv->secrets && dmt_secrets_get(t->srv->secrets, c, t->who.tenant, path, &existing, err, sizeof err) ==
                             DMT_SECRETS_OK) {
    dmt_secrets_wipe(existing);
    return true;
  }
  json_t *pair = tls_pair(p->name, err, sizeof err);
  if (!pair) {
    br_out_message(o, 500, "could not generate the TLS certificates");
    return false;
  }
  bool ok = br_admin_secret_put(c, t, "TLS/", p->name, pair, o);
  dmt_secrets_wipe(pair);
  return ok;
}

static bool resolve(PGconn *c, struct br_txn *t, struct br_out *o, struct profile *p, bool insert) {
  const char *cira = br_jstr(t->body, "ciraConfigName");
  p->cira[0] = '\0';
  if (cira && !br_admin_canonical(c, &cira_names, t->who.tenant, cira, p->cira, sizeof p->cira)) {
    char msg[400];
    snprintf(msg, sizeof msg, insert ? "Referenced constraint %s doesn't exist" : "Referenced config %s doesn't exist",
             cira);
    br_out_error(o, 400, "Foreign key constraint violation", msg);
    return false;
  }
  const char *ieee = br_jstr(t->body, "ieee8021xProfileName");
  p->ieee[0] = '\0';
  if (ieee && !br_admin_canonical(c, &ieee_names, t->who.tenant, ieee, p->ieee, sizeof p->ieee)) {
    char msg[400];
    snprintf(msg, sizeof msg, "Referenced constraint %s doesn't exist", ieee);
    br_out_error(o, 400, "Foreign key constraint violation", msg);
    return false;
  }
  return true;
}

static bool put_passwords(PGconn *c, struct br_txn *t, struct br_out *o, const struct profile *p, const char *amt,
                          const char *mebx) {
  if (p->gen_random && p->gen_random_mebx) return true;
  json_t *obj = json_pack("{s:s,s:s}", "AMT_PASSWORD", p->gen_random ? "" : (amt ? amt : ""), "MEBX_PASSWORD",
                          p->gen_random_mebx ? "" : (mebx ? mebx : ""));
  bool ok = br_admin_secret_put(c, t, "profiles/", p->name, obj, o);
  dmt_secrets_wipe(obj);
  return ok;
}

static void profile_clear(struct profile *p) { free(p->tags_json); }

/* ------------------------------------------------------------ create */

static int create_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  if (!br_admin_validate(c, t, &create_chain, NULL, o)) return DMT_PG_OK;
  const json_t *b = t->body;
  struct profile p = {0};
  snprintf(p.name, sizeof p.name, "%s", br_jstr(b, "profileName"));
  snprintf(p.activation, sizeof p.activation, "%s", br_jstr(b, "activation"));
  bool acm = !strcmp(p.activation, ACM);
  p.gen_random = !strcmp(opt_bool(json_object_get(b, "generateRandomPassword"), "false"), "true");
  p.gen_random_mebx = !strcmp(opt_bool(json_object_get(b, "generateRandomMEBxPassword"), "false"), "true");
  p.mebx_static = acm && !p.gen_random_mebx;
  render_tags(json_object_get(b, "tags"), &p.tags_json);
  p.dhcp = opt_bool(json_object_get(b, "dhcpEnabled"), "false");
  p.ip_sync = opt_bool(json_object_get(b, "ipSyncEnabled"), NULL);
  p.local_wifi = opt_bool(json_object_get(b, "localWifiSyncEnabled"), NULL);
  p.uefi_wifi = opt_bool(json_object_get(b, "uefiWifiSyncEnabled"), NULL);
  p.ider = opt_bool(json_object_get(b, "iderEnabled"), "false");
  p.kvm = opt_bool(json_object_get(b, "kvmEnabled"), "true");
  p.sol = opt_bool(json_object_get(b, "solEnabled"), "false");
  const json_t *tm = json_object_get(b, "tlsMode");
  if (!absent(tm)) br_js_string(tm, p.tls_mode, sizeof p.tls_mode);
  snprintf(p.authority, sizeof p.authority, "%s", br_jstr(b, "tlsSigningAuthority") ? br_jstr(b, "tlsSigningAuthority") : "");
  adjust_tls(&p);
  const char *consent = br_jstr(b, "userConsent");
  snprintf(p.consent, sizeof p.consent, "%s", consent ? consent : acm ? "KVM" : "All");
  int n = 0;
  if (resolve(c, t, o, &p, true) && br_admin_begin(c, t, p.name, o)) {
    if (!write_row(c, t, o, &p, true, NULL, &n)) {
      br_sql_rollback(c);
      if (!strcmp(o->sqlstate, "23505")) {
        char msg[400];
        snprintf(msg, sizeof msg, "AMT profile %s already exists", p.name);
        br_out_error(o, 400, "Unique key violation", msg);
      } else {
        br_out_unexpected(o, "POST", p.name);
      }
    } else if (!write_links(c, t, o, p.name, json_object_get(b, "wifiConfigs"), true) ||
               !write_links(c, t, o, p.name, json_object_get(b, "proxyConfigs"), false)) {
      br_sql_rollback(c);
      br_out_unexpected(o, "POST", p.name);
    } else if (!put_passwords(c, t, o, &p, br_jstr(b, "amtPassword"), br_jstr(b, "mebxPassword")) ||
               !ensure_tls(c, t, o, &p) || br_admin_fetch(c, &profile_kind, t->who.tenant, p.name, o, 201) != 1) {
      br_sql_rollback(c);
      if (o->status != 500) br_out_unexpected(o, "POST", p.name);
    } else {
      br_admin_finish(c, t, &profile_kind, p.name, "create", o);
    }
  }
  profile_clear(&p);
  return DMT_PG_OK;
}

static void create(struct br_txn *t) { br_db_run(t, create_work); }

/* ------------------------------------------------------------ update (DMT editProfile) */

static bool stored_password(PGconn *c, struct br_txn *t, const char *name, const char *field, char *out, size_t outlen) {
  char path[320], err[256];
  br_secret_path(path, sizeof path, "profiles/", name);
  json_t *obj = NULL;
  if (!t->srv->secrets || dmt_secrets_get(t->srv->secrets, c, t->who.tenant, path, &obj, err, sizeof err) != DMT_SECRETS_OK)
    return false;
  const char *v = br_jstr(obj, field);
  if (v) snprintf(out, outlen, "%s", v);
  dmt_secrets_wipe(obj);
  return v != NULL;
}

static int update_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  if (!br_admin_validate(c, t, &update_chain, NULL, o)) return DMT_PG_OK;
  const json_t *b = t->body;
  const char *name = br_jstr(b, "profileName");
  char vbuf[64];
  const char *version = br_admin_version(t, vbuf, sizeof vbuf);
  if (!br_admin_begin(c, t, name, o)) return DMT_PG_OK;
  struct profile old = {0}, p = {0};
  json_t *row = NULL;
  char amt_pw[64] = "", mebx_pw[64] = "";
  if (!load(c, o, t->who.tenant, name, &old, &row)) {
    br_sql_rollback(c);
    br_out_not_found(o, "AMT", name);
    goto out;
  }
  p = old;
  p.tags_json = NULL;
  /* passwords and their random flags (handleAMTPassword / handleGenerateRandomPassword) */
  const json_t *amt = json_object_get(b, "amtPassword"), *mebx = json_object_get(b, "mebxPassword");
  bool new_amt = !absent(amt), new_mebx = !absent(mebx);
  if (br_js_truthy(json_object_get(b, "generateRandomPassword"))) p.gen_random = true;
  else p.gen_random = new_amt ? false : old.gen_random;
  if (br_js_truthy(json_object_get(b, "generateRandomMEBxPassword"))) p.gen_random_mebx = true;
  else p.gen_random_mebx = new_mebx ? false : old.gen_random_mebx;
  const char *act = br_jstr(b, "activation");
  if (act) snprintf(p.activation, sizeof p.activation, "%s", act);
  bool acm = !strcmp(p.activation, ACM);
  if (!acm) p.gen_random_mebx = false;
  bool stored_mebx = !old.gen_random_mebx && !strcmp(old.activation, ACM);
  if (acm && !p.gen_random_mebx && !new_mebx && !stored_mebx) {
    br_sql_rollback(c);
    br_out_error(o, 400, "Error", "MEBx password is required for acmactivate");
    goto out;
  }
  if (new_amt) snprintf(amt_pw, sizeof amt_pw, "%s", json_string_value(amt));
  else if (!p.gen_random && !old.gen_random && !stored_password(c, t, old.name, "AMT_PASSWORD", amt_pw, sizeof amt_pw)) {
    br_sql_rollback(c);
    br_out_unexpected(o, "PATCH", old.name);
    goto out;
  }
  if (new_mebx) snprintf(mebx_pw, sizeof mebx_pw, "%s", json_string_value(mebx));
  else if (acm && !p.gen_random_mebx && stored_mebx &&
           !stored_password(c, t, old.name, "MEBX_PASSWORD", mebx_pw, sizeof mebx_pw)) {
    br_sql_rollback(c);
    br_out_unexpected(o, "PATCH", old.name);
    goto out;
  }
  p.mebx_static = acm && !p.gen_random_mebx;
  /* the rest of getUpdatedData: absent fields keep their value, except the three DMT always takes from the body */
  const json_t *tags = json_object_get(b, "tags");
  if (!absent(tags)) render_tags(tags, &p.tags_json);
  else p.tags_json = old.tags_json ? strdup(old.tags_json) : NULL;
  p.dhcp = opt_bool(json_object_get(b, "dhcpEnabled"), old.dhcp);
  p.ip_sync = opt_bool(json_object_get(b, "ipSyncEnabled"), old.ip_sync);
  p.local_wifi = opt_bool(json_object_get(b, "localWifiSyncEnabled"), old.local_wifi);
  p.uefi_wifi = opt_bool(json_object_get(b, "uefiWifiSyncEnabled"), old.uefi_wifi);
  p.ider = opt_bool(json_object_get(b, "iderEnabled"), old.ider);
  p.kvm = opt_bool(json_object_get(b, "kvmEnabled"), old.kvm);
  p.sol = opt_bool(json_object_get(b, "solEnabled"), old.sol);
  p.tls_mode[0] = '\0';
  const json_t *tm = json_object_get(b, "tlsMode");
  if (!absent(tm)) br_js_string(tm, p.tls_mode, sizeof p.tls_mode);
  if (br_jstr(b, "tlsSigningAuthority")) snprintf(p.authority, sizeof p.authority, "%s", br_jstr(b, "tlsSigningAuthority"));
  adjust_tls(&p);
  if (br_jstr(b, "userConsent")) snprintf(p.consent, sizeof p.consent, "%s", br_jstr(b, "userConsent"));
  int n = 0;
  if (!resolve(c, t, o, &p, false)) {
    br_sql_rollback(c);
    goto out;
  }
  if (!write_row(c, t, o, &p, false, version, &n)) {
    br_sql_rollback(c);
    br_out_unexpected(o, "PATCH", old.name);
    goto out;
  }
  if (n == 0) {
    br_sql_rollback(c);
    br_admin_conflict(c, t, &profile_kind, old.name, o);
    goto out;
  }
  /* handleWifiConfigs (on the body's dhcpEnabled, as DMT does) and handleProxyConfigs */
  bool old_dhcp = old.dhcp && !strcmp(old.dhcp, "true"), new_dhcp = br_js_truthy(json_object_get(b, "dhcpEnabled"));
  bool links_ok = true;
  if (old_dhcp || new_dhcp)
    links_ok = write_links(c, t, o, old.name, new_dhcp ? json_object_get(b, "wifiConfigs") : NULL, true);
  links_ok = links_ok && write_links(c, t, o, old.name, json_object_get(b, "proxyConfigs"), false);
  bool secrets_ok = links_ok && (!(old.amt_static || old.mebx_static) ||
                                 br_admin_secret_del(c, t, "profiles/", old.name, o)) &&
                    put_passwords(c, t, o, &p, amt_pw, mebx_pw) && ensure_tls(c, t, o, &p);
  if (!secrets_ok || br_admin_fetch(c, &profile_kind, t->who.tenant, old.name, o, 200) != 1) {
    br_sql_rollback(c);
    if (o->status != 500) br_out_unexpected(o, "PATCH", old.name);
    goto out;
  }
  br_admin_finish(c, t, &profile_kind, old.name, "update", o);
out:
  OPENSSL_cleanse(amt_pw, sizeof amt_pw);
  OPENSSL_cleanse(mebx_pw, sizeof mebx_pw);
  json_decref(row);
  profile_clear(&old);
  profile_clear(&p);
  return DMT_PG_OK;
}

static void update(struct br_txn *t) { br_db_run(t, update_work); }

#define BASE "/api/v1/admin/profiles"
static const struct br_route routes[] = {
    {.methods = BR_M_GET, .pattern = BASE, .handler = br_admin_list, .chain = NULL, .flags = 0, .data = &profile_kind},
    {.methods = BR_M_GET, .pattern = BASE "/:profileName", .handler = br_admin_get, .chain = NULL, .flags = 0, .data = &profile_kind},
    {.methods = BR_M_POST, .pattern = BASE, .handler = create, .chain = NULL, .flags = BR_RF_WRITE, .data = &profile_kind, .job_chain = &create_chain},
    {.methods = BR_M_PATCH, .pattern = BASE, .handler = update, .chain = NULL, .flags = BR_RF_WRITE, .data = &profile_kind, .job_chain = &update_chain},
    {.methods = BR_M_DELETE, .pattern = BASE "/:profileName", .handler = br_admin_delete, .chain = NULL, .flags = BR_RF_WRITE, .data = &profile_kind},
};

const struct br_route_table br_routes_profiles = {routes, sizeof routes / sizeof routes[0]};
